"""Raw text → masked-LM pretraining examples (BERT, RoBERTa, ALBERT,
ELECTRA, SpanBERT objectives) as TFRecord or Parquet shards, as an Apache
Beam job.

Usage:
  python -m pipelines.mlm --input='corpus/*.txt' --output=out/ \\
      [--vocab_file=vocab.txt] [--preset=bert|roberta|albert|electra]
      [--dupe_factor=10 …] [Beam flags]

``python -m pipelines.mlm --help`` lists every flag. ``run(argv)`` parses and
checks the options and files, ``build(pipeline, …)`` only wires the stages.
"""

# pylint: disable=wrong-import-position
from pipelines import interrupts

if __name__ == "__main__":
  import gc
  gc.disable()  # for the imports, until main()'s direct.collect_less()
  # Importing Beam and TensorFlow takes seconds: until run() installs its
  # watch, a Ctrl-C ends the process with one line, not a traceback.
  interrupts.end_quietly_while_starting()
  # DirectRunner worker processes import Beam on the other cores while
  # this process does (runners/prestart.py).
  import sys
  from runners import prestart
  prestart.start(prestart.wanted_processes(sys.argv[1:]))
  # Only as the program: a process that imports this module keeps Beam's
  # optional integrations (runners/lean_beam.py).
  from runners import lean_beam
  lean_beam.import_beam()

import argparse
import faulthandler
import json
import logging
import os
import signal
import sys
import time
import uuid
from typing import Dict, List, NamedTuple, Optional, Sequence

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems
from apache_beam.options.pipeline_options import (PipelineOptions,
                                                  StandardOptions)

from pipelines import cli
from pipelines import outputs
from pipelines import progress
from pipelines import resume
from pipelines.output_lock import OutputBusy, OutputLock
from pipelines.scratch import ScratchDir
from pipelines.options import (MlmOptions, UsageError, compression_warning,
                               example_layout,
                               input_patterns, instance_params,
                               language_plan, needs_language_count,
                               masking_params, preset_family_warning,
                               resolve, s3_client_kwargs,
                               tokenizer_settings, unknown_flags, validate)
from runners import direct, flink
from runners.argv import given_options
from transforms.examples import WriteExamples, write_schema
from transforms.instances import (CreateInstances, pool_builder,
                                  sequence_layout)
from transforms.masking import MaskTokens
from transforms import languages
from transforms import mds
from transforms import megatron
from transforms import pool_files
from transforms import s3_clients
from transforms.paths import InputError, MatchedInput, match_input
from transforms.reading import ReadDocuments, check_first_file
from transforms.rejects import REJECTED_DIR, WriteRejected
from transforms.sentences import SplitSentences
from transforms.tokenization import (Tokenize, Vocabulary, VocabularyError,
                                     cased_vocabulary_warning,
                                     fast_path_warning)

def build(pipeline: beam.Pipeline, opts: MlmOptions, vocab: Vocabulary,
          matched: Optional[MatchedInput] = None, *,
          s3_client_kwargs: Optional[dict] = None,
          pool_dir: Optional[str] = None,
          reuse: Optional[resume.ResumePlan] = None,
          plan: Optional[languages.LanguagePlan] = None,
          spread: bool = True):
  """Wires the stages; returns the PCollection of written shard names.
  ``matched``: the input as ``check`` matched it (matched here from
  ``--input`` if not given). ``pool_dir``: gather the pools through files
  there (see CreateInstances). ``plan``: each document's language and
  passes (``language_plan``; computed here from the flags when not given).
  ``reuse``: what a stopped run finished
  (pipelines/resume.py), with ``pool_dir`` its pool directory: a reused
  spilled stage replaces the stages up to the pools, and the pool groups
  whose shards are written are skipped. ``spread=False``: the graph of a
  job with one worker (``runners.direct.one_worker``), without the
  Reshuffles that only spread the work over workers."""
  if matched is None:
    matched = match_input(input_patterns(opts))
  if plan is None:
    plan = language_plan(opts, matched)
  done_dir = FileSystems.join(pool_dir, resume.SHARDS_DIR) if pool_dir else None
  reused = reuse is not None and reuse.spilled is not None
  if opts.output_format == "megatron":
    if pool_dir is None:
      raise ValueError("--output_format=megatron needs a pool directory")
    if reused:
      grouped = _reused_stages(pipeline, opts, pool_dir, matched, reuse,
                               megatron.documents_for_pool, spread)
    else:
      grouped = (_tokenized(pipeline, opts, s3_client_kwargs, matched,
                            spread)
                 | "PoolDocuments" >> megatron.PoolDocuments(
                     seed=opts.random_seed,
                     pool_size=opts.random_next_pool_size, pool_dir=pool_dir,
                     spread=spread))
    return grouped | "WriteMegatron" >> megatron.WriteMegatron(
        opts.output, packing=opts.packing, vocab_size=vocab.size,
        pool_dir=pool_dir, done_dir=done_dir,
        reused=megatron.reused_fragments(
            reuse.done.values()) if reused else ())
  if reused:
    layout = sequence_layout(vocab)
    batches = _reused_stages(
        pipeline, opts, pool_dir, matched, reuse,
        pool_builder(instance_params(opts, layout.pair_separators, plan),
                     layout), spread)
  else:
    batches = _first_stages(pipeline, opts, vocab, s3_client_kwargs,
                            pool_dir, matched, plan, spread)
  masked = batches | "MaskTokens" >> MaskTokens(
      masking_params(opts), vocab_size=vocab.size, mask_id=vocab.mask_id,
      is_continuation=vocab.is_continuation,
      special_ids=(vocab.cls_id, vocab.sep_id))
  if opts.output_format == "mds":
    return masked | "WriteMds" >> mds.WriteMds(
        opts.output, vocab_size=vocab.size, pairs=opts.packing == "pairs",
        sentence_task=opts.sentence_task,
        shard_bytes_limit=opts.mds_shard_bytes, compression=opts.compression,
        done_dir=done_dir,
        reused=mds.reused_entries(reuse.done.values()) if reused else ())
  return (
      masked
      | "WriteExamples" >> WriteExamples(
          opts.output, layout=example_layout(opts),
          num_shards=opts.num_shards, compression=opts.compression,
          output_format=opts.output_format, done_dir=done_dir))


def _first_stages(pipeline, opts, vocab, s3_client_kwargs, pool_dir,
                  matched: MatchedInput, plan, spread: bool):
  """Input files → instance batches: read, split, tokenize, pool."""
  tokenized = _tokenized(pipeline, opts, s3_client_kwargs, matched, spread)
  layout = sequence_layout(vocab)
  return tokenized | "CreateInstances" >> CreateInstances(
      instance_params(opts, layout.pair_separators, plan), layout=layout,
      pool_size=opts.random_next_pool_size, pool_dir=pool_dir, spread=spread)


def _tokenized(pipeline, opts, s3_client_kwargs, matched: MatchedInput,
               spread: bool):
  """Input files → tokenized documents: read, split, tokenize; what cannot
  be used is written to ``_rejected/``."""
  docs, read_rejects = pipeline | "ReadDocuments" >> ReadDocuments(
      matched, input_format=opts.input_format,
      text_field=opts.text_field, max_line_bytes=opts.max_line_bytes,
      max_doc_bytes=opts.max_document_bytes,
      language_field=opts.language_field, spread=spread)
  docs, split_rejects = docs | "SplitSentences" >> SplitSentences(
      opts.input_format)
  tokenized, tokenize_rejects = docs | "Tokenize" >> Tokenize(
      tokenizer_settings(opts, s3_client_kwargs),
      threads=opts.tokenizer_threads)
  _ = ((read_rejects, split_rejects, tokenize_rejects)
       | "GatherRejected" >> beam.Flatten()
       | "WriteRejected" >> WriteRejected(opts.output, matched.root))
  return tokenized


def _reused_stages(pipeline, opts, pool_dir, matched: MatchedInput,
                   reuse: resume.ResumePlan, build_pool, spread: bool):
  """A stopped run's spill files → what ``build_pool`` makes of the pools
  of the groups it did not write (instance batches, or a Megatron run's
  documents), each group's between its ``GroupMark`` s; its records set
  aside written again."""
  _ = (pipeline
       | "ReusedRejected" >> beam.Create(
           sorted(f.rejected for f in reuse.spilled if f.rejected),
           reshuffle=spread)
       | "ReadRejected" >> beam.FlatMap(resume.saved_rejected, pool_dir)
       | "WriteRejected" >> WriteRejected(opts.output, matched.root))
  return (pipeline
          # Read as a side input only: nothing to spread.
          | "ReusedSpill" >> beam.Create(reuse.spilled, reshuffle=False)
          | "CreateInstances" >> pool_files.InstancesFromSpill(
              build_pool, opts.random_next_pool_size, pool_dir,
              frozenset(reuse.done), spread=spread))


def _help_parser() -> argparse.ArgumentParser:
  parser = argparse.ArgumentParser(
      prog="python -m pipelines.mlm",
      description="Turn raw text into masked-LM pretraining examples "
      "(BERT's by default; RoBERTa, ALBERT, ELECTRA and SpanBERT objectives "
      "by flag or --preset) as sharded TFRecord or Parquet files. Beam "
      "flags such as "
      "--runner, --direct_num_workers, --flink_master or --s3_endpoint_url "
      "pass through to Beam.")
  MlmOptions._add_argparse_args(parser)  # pylint: disable=protected-access
  return parser


class Checked(NamedTuple):
  """What ``check`` found: the parsed options, the vocabulary, the S3
  settings for smart-open, and the input, matched once."""
  options: PipelineOptions
  opts: MlmOptions
  vocab: Vocabulary
  s3_client_kwargs: Optional[dict]
  matched: MatchedInput


def check(argv: Sequence[str]) -> Checked:
  """Parses and checks everything that can be checked before the pipeline
  starts. Raises ``UsageError`` with the one line to print."""
  unknown = unknown_flags(argv)
  if unknown:
    raise UsageError("unknown flag %s (see --help)" % unknown[0].split("=")[0])
  options = PipelineOptions(list(argv))
  opts = options.view_as(MlmOptions)
  given = given_options(argv)
  direct.apply_defaults(options, given)
  flink.apply_defaults(options, given, opts.output or "")
  resolve(opts)
  validate(opts)
  FileSystems.set_options(options)
  s3_clients.share_s3_clients()
  outputs.check_output_path(opts.output)
  try:
    matched = match_input(input_patterns(opts))
  except InputError as e:
    raise UsageError(str(e)) from None
  outputs.refuse_reading_own_files(input_patterns(opts), matched.paths,
                                   opts.output, opts.pool_dir)
  if not needs_language_count(opts):
    language_plan(opts, matched)  # raises UsageError before any work
  try:
    check_first_file(matched.paths, opts.input_format, opts.text_field,
                     opts.language_field)
  except InputError as e:
    raise UsageError(str(e)) from None
  s3_kwargs = s3_client_kwargs(options)
  try:
    tokenizer, vocab = tokenizer_settings(opts, s3_kwargs).load()
  except VocabularyError as e:
    raise UsageError(str(e)) from None
  # What the tokenizer really does (a tokenizer file's normalizer decides
  # when --do_lower_case is left out): the workers and summary.json use it.
  opts.do_lower_case = vocab.lower_case
  separators = sequence_layout(vocab).pair_separators
  if opts.packing == "pairs" and opts.max_seq_length < 4 + separators:
    raise UsageError(
        "--max_seq_length must be at least %d for segment pairs in this "
        "tokenizer's layout (%s A %s B %s and a token on each side), got %d"
        % (4 + separators, vocab.tokens[vocab.cls_id],
           vocab.tokens[vocab.sep_id] * separators, vocab.tokens[vocab.sep_id],
           opts.max_seq_length))
  path = opts.spm_model_file or opts.tokenizer_file or opts.vocab_file
  for warning in (
      cased_vocabulary_warning(
          tokenizer, vocab, path,
          tokenizer_file=vocab.family != "wordpiece"
          or bool(opts.tokenizer_file)),
      preset_family_warning(opts.preset, vocab.family, path),
      fast_path_warning(tokenizer),
      compression_warning(opts, matched)):
    if warning:
      print(warning, file=sys.stderr)
  return Checked(options, opts, vocab, s3_kwargs, matched)


def pool_shuffle(opts: MlmOptions) -> str:
  """``--pool_shuffle=auto`` made concrete: 'files', on every runner. The
  files go where every worker reaches them (``pool_directory``); a
  GroupByKey needs memory in proportion to the corpus, on the DirectRunner
  and on Flink through Beam 2.62's job server alike (docs/flink.md, "Memory on
  Flink")."""
  return "files" if opts.pool_shuffle == "auto" else opts.pool_shuffle


def groupbykey_warning(opts: MlmOptions, runner: str) -> Optional[str]:
  """What to tell the user who sends the pools through a cluster runner's
  GroupByKey, or None."""
  if runner == direct.LOCAL_RUNNER or pool_shuffle(opts) != "groupbykey":
    return None
  return ("the random-next pools go through a GroupByKey of %d copies of the "
          "tokenized corpus. On Flink, Beam 2.62's runner holds each worker's "
          "share of it in the TaskManager's heap until the stage ends, so give "
          "the TaskManagers heap for about %d x the tokenized corpus / "
          "parallelism, or leave --pool_shuffle at auto to gather the pools "
          "through files in OUTPUT/_pools (docs/flink.md, \"Memory on Flink\")."
          % (opts.dupe_factor, opts.dupe_factor))


def pool_directory(opts: MlmOptions, runner: str) -> Optional[str]:
  """The run's directory for the pool files, or None for a GroupByKey: in
  ``--pool_dir`` if given, else in ``resume.default_parent``; named from
  the output (``resume.pool_directory``), so that ``--resume`` finds what a
  stopped run left there."""
  if pool_shuffle(opts) != "files":
    return None
  parent = opts.pool_dir or resume.default_parent(
      opts.output, runner == direct.LOCAL_RUNNER)
  return resume.pool_directory(parent, opts.output)


def _failed(output: str, reason: str) -> int:
  print("error: the pipeline failed (%s). %s holds no complete output (no "
        "summary.json, an %s marker); run the same command again to start "
        "over (it cleans up first), or add --resume to reuse the work it "
        "finished" % (reason, output, outputs.INCOMPLETE_MARKER),
        file=sys.stderr)
  return 1


def run(argv: Optional[Sequence[str]] = None) -> int:
  """Runs the job; returns the process exit status. SIGINT and SIGTERM end
  it from the start (pipelines/interrupts.py)."""
  started = time.monotonic()
  argv = list(sys.argv[1:] if argv is None else argv)
  if "--help" in argv or "-h" in argv:
    _help_parser().print_help()
    return 0
  state = _RunState()
  watch = interrupts.InterruptWatch(state.interrupted)
  watch.install()
  try:
    return _checked_run(argv, started, watch, state)
  finally:
    watch.uninstall()


class _RunState:
  """How far the run got, for the line an interrupt prints."""

  def __init__(self):
    self.output: Optional[str] = None  # set once marked _INCOMPLETE
    self.finished = False  # summary.json written, the marker removed

  def interrupted(self, signal_name: str) -> str:
    if self.output is None:
      return ("error: interrupted by %s before the job started; nothing was "
              "written" % signal_name)
    if self.finished:
      return ("error: interrupted by %s as the job ended; %s was already "
              "complete (its %s is written)" % (signal_name, self.output,
                                                outputs.SUMMARY))
    return ("error: interrupted by %s: the job was stopped and its processes "
            "ended; %s holds no complete output (%s marks it); run the same "
            "command again to clean up and start over, or add --resume to "
            "reuse the work it finished"
            % (signal_name, self.output, outputs.INCOMPLETE_MARKER))


def _checked_run(argv: List[str], started: float,
                 watch: interrupts.InterruptWatch, state: "_RunState") -> int:
  try:
    checked = check(argv)
  except UsageError as e:
    print("error: %s" % e, file=sys.stderr)
    return 2
  output = checked.opts.output
  lock = OutputLock(output, checked.s3_client_kwargs)
  made_output = "://" not in output and not os.path.exists(output)
  watch.add(lock.release)
  try:
    lock.acquire()
  except OutputBusy as e:
    print("error: %s" % e, file=sys.stderr)
    return 2
  except Exception as e:  # pylint: disable=broad-except
    print("error: cannot write to --output %s: %s" % (output, cli.first_line(e, last=True)),
          file=sys.stderr)
    return 1
  scratch = ScratchDir()
  opts = checked.opts
  pool_dir = pool_directory(
      opts, checked.options.view_as(StandardOptions).runner)
  record = resume.run_record(option_values(opts), checked.matched.files)
  reuse = resume.ResumePlan()
  try:
    try:
      if opts.resume and pool_dir:
        reuse = resume.plan(pool_dir, output, record,
                            opts.random_next_pool_size)
      # The stopped run's OUTPUT/_pools stays only when it is what this
      # run reuses (not when --pool_dir or the runner put the pools
      # elsewhere this time).
      keep = reuse.shards + ([outputs.POOLS_DIR] if reuse.spilled is not None
                             else [])
      stale = outputs.check_prepare(output, opts.overwrite,
                                    resume=opts.resume, keep=keep)
      # From here an interrupt leaves the output marked _INCOMPLETE.
      state.output = output
      outputs.mark_and_clear(output, stale)
      for prefix in {output, pool_dir or output}:
        aborted = outputs.abort_stale_uploads(prefix,
                                              checked.s3_client_kwargs)
        if aborted:
          logging.warning("aborted %d unfinished S3 uploads below %s (left "
                          "by a run that was killed)", aborted, prefix)
    except UsageError as e:
      print("error: %s" % e, file=sys.stderr)
      return 2
    except Exception as e:  # pylint: disable=broad-except
      print("error: cannot write to --output %s: %s"
            % (output, cli.first_line(e, last=True)), file=sys.stderr)
      return 1
    made_output = False
    scratch.enter()
    watch.add(scratch.exit)
    return _run_job(checked, started, watch, state, pool_dir, reuse, record)
  finally:
    scratch.exit()
    lock.release()
    if made_output:
      try:
        os.rmdir(output)  # made for the lock; the run wrote nothing
      except OSError:
        pass


def _run_job(checked: Checked, started: float,
             watch: interrupts.InterruptWatch, state: _RunState,
             pool_dir: Optional[str], reuse: resume.ResumePlan,
             record: Dict) -> int:
  """Runs the pipeline in the prepared output; returns the exit status.
  The pool directory is removed when the job finishes, and kept for
  ``--resume`` when it fails or is stopped."""
  options, opts, vocab, _, _ = checked
  runner = options.view_as(StandardOptions).runner
  warning = groupbykey_warning(opts, runner)
  if warning:
    logging.warning(warning)
  if opts.resume:
    print("resume: %s" % reuse.describe(_groups(reuse, opts)),
          file=sys.stderr)
  # An interrupt stops the workers first (added first, so it runs before
  # the scratch folder and the lock are released).
  watch.add_first(interrupts.stop_descendants)
  try:
    with resume.PoolDirectory(
        pool_dir, reuse, record,
        own_parent=not opts.pool_dir and "://" not in opts.output) as pools:
      try:
        return _run_pipeline(checked, started, pool_dir, reuse, watch, state)
      finally:
        # Kept for --resume until summary.json is written: a run refused
        # for its records set aside, or one that cannot write its summary,
        # resumes with nothing to build again.
        pools.finished = state.finished
  except resume.PoolDirectoryError as e:
    print("error: %s" % e, file=sys.stderr)
    return 1


def _groups(reuse: resume.ResumePlan, opts: MlmOptions) -> Optional[int]:
  if reuse.spilled is None:
    return None
  return resume.num_groups(reuse.spilled, opts.random_next_pool_size)


def _add_languages(summary: Dict, opts: MlmOptions,
                   plan: Optional[languages.LanguagePlan]) -> None:
  """Moves each language's instance tokens out of the counters into
  summary.json's ``languages`` (``languages.report``), for a corpus with
  languages."""
  counts = summary["counts"]
  tokens = {name: counts.pop(name) for name in list(counts)
            if name.startswith(languages.TOKENS_PREFIX)}
  if plan is not None:
    summary["languages"] = languages.report(
        plan, opts.language_sampling_alpha, tokens)
    if opts.output_format == "megatron":
      # Its sequences are written without their language: no count.
      for entry in summary["languages"].values():
        entry.pop("instance_tokens", None)
        entry.pop("share", None)


def _count_languages(options, opts: MlmOptions, matched: MatchedInput
                     ) -> Dict[str, int]:
  """The first pass of a sampled ``--language_field`` corpus: a Beam job
  that reads every record and sums the bytes of text of each language
  (``languages.CountLanguageBytes``); its result goes through a file in
  the output directory, removed once read. Raises what the job raised."""
  path = FileSystems.join(opts.output, "_language_bytes-%s.json"
                          % uuid.uuid4().hex[:12])
  try:
    with beam.Pipeline(options=options) as pipeline:
      docs, _ = pipeline | "ReadDocuments" >> ReadDocuments(
          matched, input_format=opts.input_format,
          text_field=opts.text_field, max_line_bytes=opts.max_line_bytes,
          max_doc_bytes=opts.max_document_bytes,
          language_field=opts.language_field,
          spread=not direct.one_worker(options))
      _ = (docs
           | "CountLanguageBytes" >> languages.CountLanguageBytes()
           | "Write" >> beam.Map(lambda sizes: cli.write_file(
               path, json.dumps(sizes).encode("utf-8"))))
    with FileSystems.open(path) as f:
      return json.loads(f.read().decode("utf-8"))
  finally:
    try:
      if FileSystems.exists(path):
        FileSystems.delete([path])
    except Exception:  # pylint: disable=broad-except
      logging.warning("could not remove %s", path)


def option_values(opts: MlmOptions) -> Dict:
  """Every option of the project and its value, as summary.json lists
  them."""
  return {name: getattr(opts, name)
          for name in sorted(vars(_help_parser().parse_args([])))}


def _run_pipeline(checked: Checked, started, pool_dir, reuse, watch,
                  state) -> int:
  """Builds and runs the pipeline, then writes summary.json."""
  options, opts, vocab, s3_kwargs, matched = checked
  sizes = None
  if needs_language_count(opts):
    try:
      sizes = _count_languages(options, opts, matched)
      plan = language_plan(opts, matched, sizes)
    except UsageError as e:
      cli.error(str(e))
      return 1
    except Exception as e:  # pylint: disable=broad-except
      return _failed(opts.output, "counting each language's bytes: %s"
                     % cli.first_line(e, last=True))
  else:
    plan = language_plan(opts, matched)
  pipeline = beam.Pipeline(options=options)
  build(pipeline, opts, vocab, matched, s3_client_kwargs=s3_kwargs,
        pool_dir=pool_dir, reuse=reuse, plan=plan,
        spread=not direct.one_worker(options))
  to_read = (matched.total_bytes
             - reuse.tally().counts.get("input_bytes", 0))
  try:
    result = _run_with_progress(pipeline, options, opts, to_read, watch)
  except _JobFailed as e:
    return _failed(opts.output, str(e))

  summary = outputs.collect_metrics(result)
  resume.add_reused(summary, reuse)
  _add_languages(summary, opts, plan)
  too_many = outputs.too_many_rejected(summary, opts.max_rejected_fraction)
  if too_many:
    print("error: %s They are listed in %s; %s holds no complete output (no "
          "summary.json)." % (too_many, FileSystems.join(
              opts.output, REJECTED_DIR), opts.output), file=sys.stderr)
    return 1
  outputs.remove_if_empty(FileSystems.join(opts.output, REJECTED_DIR))
  layout = example_layout(opts)
  outputs.describe_run(summary, opts.output_format, layout, matched,
                       option_values(opts),
                       options.view_as(StandardOptions).runner)
  if opts.output_format == "mds":
    summary["features"] = {c.name: c.encoding for c in mds.columns(
        vocab.size, opts.packing == "pairs", opts.sentence_task)}
  if opts.resume:
    summary["resumed"] = reuse.summary(_groups(reuse, opts))
  try:
    if opts.output_format == "tfrecord":
      write_schema(opts.output, layout)
    path = outputs.finish(opts.output, summary)
  except Exception as e:  # pylint: disable=broad-except
    return _failed(opts.output, "writing %s: %s" % (
        outputs.SUMMARY, cli.first_line(e, last=True)))
  state.finished = True
  return _report(summary, opts, matched, time.monotonic() - started, path)


class _JobFailed(Exception):
  """The job raised or ended in a state other than DONE; the message says
  which."""


def _run_with_progress(pipeline: beam.Pipeline, options: PipelineOptions,
                       opts: MlmOptions, to_read: int,
                       watch: interrupts.InterruptWatch):
  """Runs the pipeline to its end with live progress (``to_read``: input
  bytes left to read); returns its result. Raises ``_JobFailed``."""
  runner = options.view_as(StandardOptions).runner
  shown = progress_source(runner, options, opts.quiet)
  if isinstance(shown, flink.RestProgress):
    watch.add_first(shown.cancel)  # a job on a cluster ends with its launcher
  live = (progress.Progress(to_read, shown, log_seconds=opts.progress_seconds,
                            display=not opts.quiet)
          if shown is not None else None)
  beam_logger = logging.getLogger("apache_beam")
  beam_level = beam_logger.level
  if live is not None and live.is_bar:
    # Beam's INFO lines (each worker's start, each shard renamed) would
    # scroll the bar away; its warnings still show.
    beam_logger.setLevel(logging.WARNING)
  try:
    if live is not None:
      live.start()
    result = pipeline.run()
    final_state = result.wait_until_finish()
  except Exception as e:  # pylint: disable=broad-except
    logging.debug("pipeline failure", exc_info=True)
    raise _JobFailed(cli.first_line(e, last=True)) from None
  finally:
    if live is not None:
      live.stop()
    beam_logger.setLevel(beam_level)
    if isinstance(shown, progress.FileTally):
      shown.close()
  if str(final_state).split(".")[-1] not in ("DONE", "None"):
    raise _JobFailed("it ended in state %s" % final_state)
  return result


def _report(summary: Dict, opts: MlmOptions, matched: MatchedInput,
            seconds: float, path: str) -> int:
  """Prints how the finished run went; returns its exit status (1 when it
  made no example)."""
  counts = summary["counts"]
  if not counts.get("instances"):
    print("error: no examples were made: %d documents had any token (%d "
          "binary files skipped, %d empty documents dropped); see %s"
          % (counts.get("documents", 0), counts.get("binary_files_skipped", 0),
             counts.get("empty_documents_dropped", 0), path), file=sys.stderr)
    return 1
  rejected = ""
  if counts.get("rejected_records", 0):
    rejected = "%s; listed in %s" % (
        outputs.by_reason(summary["rejected"]),
        FileSystems.join(opts.output, REJECTED_DIR))
  logging.info("wrote %d instances from %d documents to %s; %d records set "
               "aside%s; summary in %s", counts.get("instances", 0),
               counts.get("documents", 0), opts.output,
               counts.get("rejected_records", 0),
               " (%s)" % rejected if rejected else "", path)
  lost = progress.lost_text_warning(counts, opts.input_format)
  if lost:
    print(lost, file=sys.stderr)
  print(progress.summary_line(counts, matched.total_bytes, seconds, rejected),
        file=sys.stderr)
  return 0


def progress_source(runner: str, options: PipelineOptions, quiet: bool):
  """Where live progress comes from on ``runner``: the workers' tally files
  on the DirectRunner (none with ``quiet``), Flink's REST API on a Flink
  cluster (polled with ``quiet`` too, for the job id and UI address it
  prints); None elsewhere."""
  if runner == direct.LOCAL_RUNNER:
    return None if quiet else progress.FileTally()
  return flink.progress_source(runner, options)


def main() -> None:
  # Beam's INFO lines only with --log_level=info. A failing job's
  # tracebacks (Beam logs each, the workers' too) become one log line each;
  # the error: line says what failed.
  cli.configure_logging(sys.argv[1:])
  # kill -USR1 <pid> prints every thread's stack: what a job that seems
  # stuck is waiting for.
  faulthandler.register(signal.SIGUSR1, all_threads=True)
  direct.collect_less()
  code = run()
  # An interrupt's clean-up, once begun, ends the process itself.
  interrupts.hold_if_ending()
  # Everything the run wrote is closed and its worker processes have ended;
  # the teardown would cost 6% of a 20 MB job's CPU.
  direct.exit_now(code)


if __name__ == "__main__":
  main()
