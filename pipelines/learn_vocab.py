"""Learn a BERT WordPiece ``vocab.txt`` from a corpus, as an Apache Beam job.

Usage:
  python -m pipelines.learn_vocab --input='corpus/*.txt' --output=vocab.txt \\
      [--input_format=lines|wikiextractor|jsonl|parquet|wikidump] [--vocab_size=30522] \\
      [--do_lower_case=true] [--max_words=1000000] [Beam flags]

Reads the corpus as ``pipelines.mlm`` does (same formats, compression,
runners), counts BERT's words in Beam (``transforms.vocabulary.CountWords``),
then learns the pieces from the counts on this machine with ``tokenizers``'
WordPiece trainer and writes them in BERT's layout; ``pipelines.mlm
--vocab_file`` takes the file as it is.

An existing ``--output`` is replaced only with ``--overwrite``. Every failure
is one ``error:`` line and a non-zero exit status (2 for a bad flag, input
or output path, found before any work; 1 when the job fails), and leaves no
partial file: the vocabulary is written under a temporary name beside
``--output`` and renamed into place when complete (``pipelines.cli``), and
the word counts the job hands over go to a temporary file that is always
removed.
"""

# pylint: disable=wrong-import-position
from pipelines import interrupts

if __name__ == "__main__":
  interrupts.end_quietly_while_starting()  # see pipelines/mlm.py

import argparse
import json
import logging
import os
import shutil
import sys
import uuid
from typing import Optional, Sequence

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems
from apache_beam.options.pipeline_options import PipelineOptions

from pipelines import cli, outputs
from pipelines.options import (MlmOptions, UsageError, input_patterns,
                               unknown_flags)
from pipelines.scratch import ScratchDir
from runners import direct
from runners.argv import given_options
from transforms import paths
from transforms import vocabulary
from transforms.reading import ReadDocuments, check_first_file
from transforms.rejects import REJECTED_DIR, WriteRejected


class LearnVocabOptions(PipelineOptions):
  """The flags of ``python -m pipelines.learn_vocab`` that the MLM job does
  not have; ``--input``, ``--input_format``, ``--text_field``, ``--output``,
  ``--do_lower_case`` and ``--overwrite`` are ``MlmOptions``' (one flag, one
  meaning, in both commands)."""

  @classmethod
  def _add_argparse_args(cls, parser):
    group = parser.add_argument_group("vocabulary")
    group.add_argument("--vocab_size", type=int, default=30522,
                       help="Tokens in the vocabulary, BERT's %d reserved "
                       "slots included (BERT's: 30522)."
                       % len(vocabulary.RESERVED))
    group.add_argument("--max_words", type=int, default=1000000,
                       help="Distinct words kept for learning, the most "
                       "frequent first: what bounds the memory of the count "
                       "and of the learner.")


SHARED_FLAGS = ("--input", "--input_format", "--text_field", "--output",
                "--do_lower_case", "--overwrite")


def _help_parser() -> argparse.ArgumentParser:
  parser = argparse.ArgumentParser(prog="python -m pipelines.learn_vocab",
                                   description=__doc__.split("\n")[0])
  shared = argparse.ArgumentParser(add_help=False)
  MlmOptions._add_argparse_args(shared)  # pylint: disable=protected-access
  group = parser.add_argument_group("input and output")
  for action in shared._actions:  # pylint: disable=protected-access
    if action.option_strings and action.option_strings[0] in SHARED_FLAGS:
      help_text = {
          "output": "The vocab.txt to write (local or s3://).",
          "overwrite": "Replace an existing --output (without it, an "
                       "existing file is refused before any work).",
          "do_lower_case": "Lower-case and strip accents (uncased models; "
                           "default true, as in BERT).",
      }.get(action.dest, action.help)
      group.add_argument(*action.option_strings, default=action.default,
                         help=help_text, choices=action.choices,
                         metavar=action.metavar)
  LearnVocabOptions._add_argparse_args(parser)  # pylint: disable=protected-access
  return parser


def refuse_reading_own_output(patterns: Sequence[str],
                              files: Sequence[paths.InputFile],
                              output: str) -> None:
  """Raises ``UsageError`` when the input would take in what this command
  writes: the vocabulary, its word counts, or the records set aside beside
  it (``--input='corpus/**' --output=corpus/vocab.txt`` read its own last
  vocabulary as text)."""
  folder = FileSystems.split(output)[0]
  written = [output, FileSystems.join(folder, REJECTED_DIR, "rejected.jsonl")]
  for f in files:
    if paths.same_file(f.path, output) or paths.is_below(
        f.path, FileSystems.join(folder, REJECTED_DIR)):
      raise UsageError("--input matches %s, which this command writes: "
                       "narrow the pattern or write elsewhere" % f.path)
  for pattern in patterns:
    for path in written:
      if paths.pattern_matches(pattern, path):
        raise UsageError("--input pattern %r also matches %s, which this "
                         "command writes: narrow the pattern or write "
                         "elsewhere" % (pattern, path))


def check(argv: Sequence[str]):
  """``(options, LearnVocabOptions, paths.MatchedInput)``, checked before
  any work; raises UsageError."""
  unknown = unknown_flags(argv)
  if unknown:
    raise UsageError("unknown flag %s (see --help)" % unknown[0].split("=")[0])
  options = PipelineOptions(list(argv))
  direct.apply_defaults(options, given_options(argv))
  opts = argparse.Namespace(**options.view_as(MlmOptions).get_all_options(
      retain_unknown_options=False))
  if not opts.input:
    raise UsageError("--input is required (a file pattern, or several "
                     "separated by commas)")
  if not opts.output:
    raise UsageError("--output is required (the vocab.txt to write)")
  if opts.vocab_size < vocabulary.MIN_VOCAB_SIZE:
    raise UsageError("--vocab_size must be at least %d (BERT's %d reserved "
                     "slots and room for the pieces), got %d"
                     % (vocabulary.MIN_VOCAB_SIZE, len(vocabulary.RESERVED),
                        opts.vocab_size))
  if opts.max_words < 100:
    raise UsageError("--max_words must be at least 100, got %d"
                     % opts.max_words)
  if opts.do_lower_case is None:
    opts.do_lower_case = True  # BERT's default (MlmOptions leaves it None)
  FileSystems.set_options(options)
  try:
    matched = paths.match_input(input_patterns(opts))
    refuse_reading_own_output(input_patterns(opts), matched.files,
                              opts.output)
    check_first_file(matched.paths, opts.input_format, opts.text_field)
  except paths.InputError as e:
    raise UsageError(str(e)) from None
  cli.check_writable(opts.output, "--output", overwrite=bool(opts.overwrite))
  return options, opts, matched


def run(argv: Optional[Sequence[str]] = None) -> int:
  """Runs the command; returns its exit status. A failure it does not
  foresee raises (``main`` makes it one ``error:`` line)."""
  argv = list(sys.argv[1:] if argv is None else argv)
  if "--help" in argv or "-h" in argv:
    _help_parser().print_help()
    return 0
  try:
    options, opts, matched = check(argv)
  except UsageError as e:
    cli.error(str(e))
    return 2
  # The counts go from the job to this process through a file beside the
  # output (every worker reaches it), under a temporary name, always removed.
  counts_path = "%s%scounts-%s.json" % (opts.output, cli.TEMP_INFIX,
                                         uuid.uuid4().hex[:12])
  rejected_dir = FileSystems.join(FileSystems.split(opts.output)[0],
                                  REJECTED_DIR)
  scratch = ScratchDir()
  watch = interrupts.InterruptWatch(
      lambda name: "error: interrupted by %s: the word count was stopped; %s "
      "was not written" % (name, opts.output),
      [interrupts.stop_descendants, lambda: _delete_quietly(counts_path),
       lambda: _remove_beam_temp(rejected_dir),
       lambda: _remove_if_empty(rejected_dir), scratch.exit])
  scratch.enter()
  watch.install()
  try:
    return _learn(options, opts, matched, counts_path, rejected_dir)
  finally:
    watch.uninstall()
    scratch.exit()


def _learn(options, opts, matched: paths.MatchedInput, counts_path: str,
           rejected_dir: str) -> int:
  """Counts the words, learns the vocabulary and writes it; returns the
  exit status."""
  try:
    try:
      result = _count_words(options, opts, matched, counts_path)
    except Exception as e:  # pylint: disable=broad-except
      logging.debug("the word count failed", exc_info=True)
      _remove_beam_temp(rejected_dir)
      cli.error("the word count failed (%s); %s was not written"
                % (cli.first_line(e, last=True), opts.output))
      return 1
    summary = outputs.collect_metrics(result)
    with FileSystems.open(counts_path) as f:
      word_counts = [tuple(kv) for kv in json.loads(f.read().decode("utf-8"))]
  finally:
    _delete_quietly(counts_path)
    _remove_if_empty(rejected_dir)
  try:
    learned = vocabulary.learn_wordpiece(
        word_counts, opts.vocab_size - len(vocabulary.RESERVED))
  except ValueError as e:
    rejected = summary["counts"].get("rejected_records", 0)
    cli.error("%s: the input held no text (%d documents read%s)" % (
        e, summary["counts"].get("documents_read", 0),
        ", %d records set aside, listed in %s" % (rejected, rejected_dir)
        if rejected else ""))
    return 1
  tokens = vocabulary.bert_layout(learned, opts.vocab_size)
  try:
    cli.write_file(opts.output, ("\n".join(tokens) + "\n").encode("utf-8"))
  except Exception as e:  # pylint: disable=broad-except
    cli.error("cannot write %s: %s; nothing was written there"
              % (opts.output, cli.first_line(e)))
    return 1
  rejected_count = summary["counts"].get("rejected_records", 0)
  # The command's own closing line (shown whatever --log_level says).
  print(
      "done: wrote %s: %d tokens (%d reserved, %d learned) from %d words, %d "
      "distinct kept, of %d documents; %d records set aside%s" % (
      opts.output, len(tokens), len(vocabulary.RESERVED),
      len(tokens) - len(vocabulary.RESERVED),
      summary["counts"].get("words", 0), len(word_counts),
      summary["counts"].get("documents_read", 0), rejected_count,
      " (%s; listed in %s)" % (
          ", ".join("%s %d" % kv for kv in summary["rejected"].items()),
          FileSystems.join(FileSystems.split(opts.output)[0], REJECTED_DIR))
      if rejected_count else ""), file=sys.stderr)
  return 0


def _count_words(options, opts, matched: paths.MatchedInput,
                 counts_path: str):
  """Runs the Beam job that writes the most frequent words' counts to
  ``counts_path``; returns its result. Raises what the job raised."""
  with beam.Pipeline(options=options) as pipeline:
    docs, rejected = pipeline | "ReadDocuments" >> ReadDocuments(
        matched, input_format=opts.input_format,
        text_field=opts.text_field)
    # Records the reader sets aside are listed beside the vocabulary.
    _ = rejected | "WriteRejected" >> WriteRejected(
        FileSystems.split(opts.output)[0], matched.root)
    _ = (docs
         | "CountWords" >> vocabulary.CountWords(
             words=vocabulary.WordRules(do_lower_case=opts.do_lower_case),
             max_words=opts.max_words)
         | "WriteCounts" >> beam.Map(_write_json, counts_path))
  return pipeline.result


def _write_json(top, path):
  cli.write_file(path, json.dumps(top).encode("utf-8"))


def _delete_quietly(path: str) -> None:
  try:
    if FileSystems.exists(path):
      FileSystems.delete([path])
  except Exception as e:  # pylint: disable=broad-except
    logging.warning("could not remove %s: %s", path, cli.first_line(e))


def _remove_beam_temp(folder: str) -> None:
  """Removes the ``beam-temp-*`` files a failed job's listing of set-aside
  records left in ``folder``."""
  try:
    if "://" not in folder:
      if os.path.isdir(folder):
        for name in os.listdir(folder):
          if name.startswith("beam-temp-"):
            shutil.rmtree(os.path.join(folder, name), ignore_errors=True)
      return
    left = FileSystems.match([FileSystems.join(folder, "beam-temp-*")])
    paths = [m.path for m in left[0].metadata_list]
    if paths:
      FileSystems.delete(paths)
  except Exception as e:  # pylint: disable=broad-except
    logging.warning("could not remove the temporary files in %s: %s", folder,
                    cli.first_line(e))


def _remove_if_empty(folder: str) -> None:
  """Removes a local ``folder`` the job made but left empty (no record was
  set aside); an object store has no empty folders."""
  if "://" not in folder and os.path.isdir(folder) and not os.listdir(folder):
    os.rmdir(folder)


def main(argv: Optional[Sequence[str]] = None) -> int:
  cli.configure_logging(sys.argv[1:] if argv is None else argv)
  code = cli.run_command(run, argv, what="learn_vocab")
  interrupts.hold_if_ending()
  return code


if __name__ == "__main__":
  # The vocabulary is written and closed: no interpreter teardown (half a
  # second, during which a signal would find Python's default handlers).
  direct.exit_now(main())
