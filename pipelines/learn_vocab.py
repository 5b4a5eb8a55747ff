"""Learn a WordPiece, byte-level BPE or Unigram vocabulary from a corpus.

An Apache Beam job: BERT's WordPiece ``vocab.txt``, RoBERTa's byte-level
BPE ``tokenizer.json`` or ALBERT's SentencePiece Unigram ``.model``.

Usage:
  python -m pipelines.learn_vocab --input='corpus/*.txt' --output=vocab.txt \\
      [--model=wordpiece|bpe|unigram] [--vocab_size=N] \\
      [--input_format=lines|wikiextractor|jsonl|parquet|wikidump] \\
      [--do_lower_case=BOOL] [--albert_text_rules=BOOL] [--max_words=1000000] \\
      [Beam flags]

Reads the corpus as ``pipelines.mlm`` does (same formats, compression,
runners) and counts the words the chosen model's learner sees in Beam
(``transforms.vocabulary.CountWords``; for ``bpe`` sentence by sentence,
split as ``pipelines.mlm`` splits them); then learns the vocabulary from the
``--max_words`` most frequent on this machine, which holds no more words
than that:

* ``wordpiece`` (default): ``tokenizers``' WordPiece trainer, written in
  BERT's layout (``--output`` any name but a ``.json`` or ``.model`` one);
  ``pipelines.mlm --vocab_file`` takes it.
* ``bpe``: ``tokenizers``' BPE trainer over the 256 bytes, RoBERTa's
  special tokens and configuration, one Hugging Face ``tokenizer.json``
  (``--output`` ending in ``.json``); ``pipelines.mlm --preset=roberta
  --tokenizer_file`` takes it.
* ``unigram``: ``sentencepiece``'s trainer with ALBERT's options, given the
  counts themselves; ``--output`` ends in ``.model`` and the ``.vocab`` is
  written beside it; ``pipelines.mlm --preset=albert --spm_model_file``
  takes it, as ``sentencepiece`` itself does.

An existing ``--output`` (or ``.vocab``) is replaced only with
``--overwrite``. Every failure is one ``error:`` line and a non-zero exit
status (2 for a bad flag, input or output path, found before any work; 1
when the job or the learning fails), and leaves no partial file: the files
are written under temporary names beside ``--output`` and renamed into
place when all are complete (``pipelines.cli``), and the word counts the
job hands over go to a temporary file that is always removed.
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
import threading
import uuid
from typing import Dict, List, Optional, Sequence

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems
from apache_beam.options.pipeline_options import PipelineOptions

from pipelines import cli, outputs
from pipelines.options import (MlmOptions, UsageError, compression_warning,
                               file_languages,
                               input_languages, input_patterns,
                               language_errors, unknown_flags)
from pipelines.scratch import ScratchDir
from runners import direct
from runners.argv import given_options
from transforms import languages
from transforms import paths
from transforms import vocabulary
from transforms.reading import ReadDocuments, check_first_file
from transforms.rejects import REJECTED_DIR, WriteRejected
from transforms.sentences import SplitSentences


class LearnVocabOptions(PipelineOptions):
  """The flags of ``python -m pipelines.learn_vocab`` that the MLM job does
  not have; ``--input``, ``--input_format``, ``--text_field``, ``--output``,
  ``--do_lower_case``, ``--albert_text_rules`` and ``--overwrite`` are
  ``MlmOptions``' (one flag, one meaning, in both commands)."""

  @classmethod
  def _add_argparse_args(cls, parser):
    group = parser.add_argument_group("vocabulary")
    group.add_argument(
        "--model", default="wordpiece", choices=vocabulary.MODELS,
        help="What to learn. wordpiece: BERT's vocab.txt (for "
        "--vocab_file). bpe: RoBERTa's byte-level BPE, a tokenizer.json "
        "(for --tokenizer_file with --preset=roberta). unigram: ALBERT's "
        "SentencePiece Unigram, a .model and its .vocab (for "
        "--spm_model_file with --preset=albert).")
    group.add_argument(
        "--vocab_size", type=int, default=None,
        help="Tokens in the vocabulary, the special ones included. "
        "Default: BERT's %d with wordpiece (%d of them reserved slots), "
        "RoBERTa's %d with bpe, ALBERT's %d with unigram. Fewer come out "
        "when the corpus has no more to learn." % (
            vocabulary.DEFAULT_VOCAB_SIZES["wordpiece"],
            len(vocabulary.RESERVED), vocabulary.DEFAULT_VOCAB_SIZES["bpe"],
            vocabulary.DEFAULT_VOCAB_SIZES["unigram"]))
    group.add_argument("--max_words", type=int, default=1000000,
                       help="Distinct words kept for learning, the most "
                       "frequent first: what bounds the memory of the count "
                       "and of the learner (what each learner holds per "
                       "word: docs/benchmarks/vocab_memory.md).")


SHARED_FLAGS = ("--input", "--input_format", "--text_field", "--output",
                "--do_lower_case", "--albert_text_rules", "--overwrite",
                "--language_field", "--language_sampling_alpha")

# What --output names for each model, and what to name it instead.
OUTPUT_NAMES = {"wordpiece": "a vocab.txt", "bpe": "a tokenizer.json",
                "unigram": "a SentencePiece .model (its .vocab beside it)"}


def _help_parser() -> argparse.ArgumentParser:
  parser = argparse.ArgumentParser(prog="python -m pipelines.learn_vocab",
                                   description=__doc__.split("\n")[0])
  shared = argparse.ArgumentParser(add_help=False)
  MlmOptions._add_argparse_args(shared)  # pylint: disable=protected-access
  group = parser.add_argument_group("input and output")
  for action in shared._actions:  # pylint: disable=protected-access
    if action.option_strings and action.option_strings[0] in SHARED_FLAGS:
      help_text = {
          "output": "The file to write (local or s3://): with "
                    "--model=wordpiece a vocab.txt (any name but a .json "
                    "or .model one), bpe a tokenizer.json (ending in "
                    ".json), unigram a .model (ending in .model; the "
                    ".vocab is written beside it).",
          "overwrite": "Replace an existing --output (without it, an "
                       "existing file is refused before any work).",
          "do_lower_case": "Lower-case the text (wordpiece: and strip "
                           "accents, as BERT's uncased models). Default: "
                           "true with wordpiece (BERT) and unigram "
                           "(ALBERT), false with bpe (RoBERTa).",
          "albert_text_rules": "With --model=unigram: count the words as "
                               "pipelines.mlm --albert_text_rules hands "
                               "the text to the model (whitespace runs to "
                               "one space, accents stripped). Default: "
                               "true, as --preset=albert.",
      }.get(action.dest, action.help)
      group.add_argument(*action.option_strings, default=action.default,
                         help=help_text, choices=action.choices,
                         metavar=action.metavar)
  LearnVocabOptions._add_argparse_args(parser)  # pylint: disable=protected-access
  return parser


def output_files(model: str, output: str) -> List[str]:
  """The files ``--model=model --output=output`` writes: ``output``, and
  for ``unigram`` its ``.vocab`` beside it (``x.model`` → ``x.vocab``)."""
  if model == "unigram":
    return [output, output[:-len(".model")] + ".vocab"]
  return [output]


def check_output_name(model: str, output: str) -> None:
  """Raises ``UsageError`` when ``output``'s name does not fit ``model``:
  bpe writes a ``.json`` (not ``vocab.json``, RoBERTa's other format),
  unigram a ``.model``, wordpiece anything else."""
  name = output.rstrip("/").rsplit("/", 1)[-1].lower()
  wanted = {"bpe": ".json", "unigram": ".model"}.get(model)
  if wanted and not name.endswith(wanted):
    raise UsageError("--model=%s writes %s: --output must end in %s (e.g. "
                     "%s), got %s" % (model, OUTPUT_NAMES[model], wanted,
                                      "tokenizer.json" if model == "bpe"
                                      else "spm.model", output))
  if model == "bpe" and name == "vocab.json":
    raise UsageError("--model=bpe writes one tokenizer.json, not RoBERTa's "
                     "vocab.json and merges.txt: name --output e.g. "
                     "tokenizer.json, got %s" % output)
  if model == "wordpiece":
    for ending, other in ((".json", "bpe"), (".model", "unigram")):
      if name.endswith(ending):
        raise UsageError("--model=wordpiece writes BERT's vocab.txt, but "
                         "--output %s ends in %s, which --model=%s writes: "
                         "name it e.g. vocab.txt, or pass --model=%s"
                         % (output, ending, other, other))


def refuse_reading_own_output(patterns: Sequence[str],
                              files: Sequence[paths.InputFile],
                              outputs: Sequence[str]) -> None:
  """Raises ``UsageError`` when the input would take in what this command
  writes: the vocabulary files (``outputs``), its word counts, or the
  records set aside beside it (``--input='corpus/**'
  --output=corpus/vocab.txt`` read its own last vocabulary as text)."""
  folder = FileSystems.split(outputs[0])[0]
  written = list(outputs) + [FileSystems.join(folder, REJECTED_DIR,
                                              "rejected.jsonl")]
  for f in files:
    if any(paths.same_file(f.path, o) for o in outputs) or paths.is_below(
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
  any work, with the defaults that depend on ``--model`` filled in;
  raises UsageError."""
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
    raise UsageError("--output is required (the vocabulary file to write)")
  check_output_name(opts.model, opts.output)
  if opts.vocab_size is None:
    opts.vocab_size = vocabulary.DEFAULT_VOCAB_SIZES[opts.model]
  least = vocabulary.MIN_VOCAB_SIZES[opts.model]
  if opts.vocab_size < least:
    raise UsageError("--vocab_size must be at least %d with --model=%s (%s "
                     "and room for 200 learned tokens), got %d" % (
                         least, opts.model, {
                             "wordpiece": "BERT's %d reserved slots"
                                          % len(vocabulary.RESERVED),
                             "bpe": "RoBERTa's %d special tokens, the %d "
                                    "bytes" % (vocabulary.SPECIAL_TOKENS["bpe"],
                                               vocabulary.BYTE_ALPHABET),
                             "unigram": "ALBERT's %d special and "
                                        "user-defined pieces"
                                        % vocabulary.SPECIAL_TOKENS[
                                            "unigram"]}[opts.model],
                         opts.vocab_size))
  if opts.max_words < 100:
    raise UsageError("--max_words must be at least 100, got %d"
                     % opts.max_words)
  if opts.albert_text_rules is not None and opts.model != "unigram":
    raise UsageError("--albert_text_rules applies to --model=unigram only "
                     "(got --model=%s)" % opts.model)
  if opts.do_lower_case is None:
    # BERT's and ALBERT's default; RoBERTa is cased. (MlmOptions leaves it
    # None.)
    opts.do_lower_case = opts.model != "bpe"
  if opts.albert_text_rules is None:
    opts.albert_text_rules = opts.model == "unigram"  # as --preset=albert
  language_errors(opts)
  outputs = output_files(opts.model, opts.output)
  FileSystems.set_options(options)
  try:
    matched = paths.match_input(input_patterns(opts))
    refuse_reading_own_output(input_patterns(opts), matched.files, outputs)
    check_first_file(matched.paths, opts.input_format, opts.text_field,
                     opts.language_field)
  except paths.InputError as e:
    raise UsageError(str(e)) from None
  if opts.language_sampling_alpha is not None:
    _language_of(opts, matched)  # raises UsageError before any work
    if not opts.language_field:
      try:
        languages.sampling_passes(dict(_tagged_plan(opts, matched).sizes),
                                  opts.language_sampling_alpha, 1)
      except ValueError as e:
        raise UsageError(str(e)) from None
    warning = compression_warning(opts, matched)
    if warning:
      print(warning, file=sys.stderr)
  for path in outputs:
    cli.check_writable(path, "--output", overwrite=bool(opts.overwrite))
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
  # An interrupt that comes while the vocabulary files are written waits
  # for them, then removes them: the run it ends wrote nothing, as its
  # error line says, whenever the signal comes.
  commit = _Commit()
  watch = interrupts.InterruptWatch(
      lambda name: "error: interrupted by %s: the word count was stopped; %s "
      "was not written" % (name, opts.output),
      [interrupts.stop_descendants, lambda: _delete_with_temps(counts_path),
       lambda: _remove_beam_temp(rejected_dir),
       lambda: _remove_if_empty(rejected_dir), commit.undo, scratch.exit])
  scratch.enter()
  watch.install()
  try:
    return _learn(options, opts, matched, counts_path, rejected_dir, commit)
  finally:
    watch.uninstall()
    scratch.exit()


class _Commit:
  """The vocabulary files written by this run (``write``), which an
  interrupt's clean-up removes (``undo``): after the files are in place, or,
  while they are being written, once they are."""

  def __init__(self):
    self._lock = threading.Lock()
    self._written: List[str] = []

  def write(self, files) -> None:
    with self._lock:
      cli.write_files(files)
      self._written.extend(path for path, _ in files)

  def undo(self) -> None:
    with self._lock:
      for path in self._written:
        _delete_quietly(path)


def _learn(options, opts, matched: paths.MatchedInput, counts_path: str,
           rejected_dir: str, commit: Optional[_Commit] = None) -> int:
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
      counted = json.loads(f.read().decode("utf-8"))
    if opts.language_sampling_alpha is None:
      word_counts = [tuple(kv) for kv in counted]
    else:
      word_counts, summary["languages"] = _sampled(opts, matched, counted)
  finally:
    _delete_quietly(counts_path)
    _remove_if_empty(rejected_dir)
  try:
    files, sizes = _fit(opts, word_counts)
  except ValueError as e:
    rejected = summary["counts"].get("rejected_records", 0)
    cli.error("%s: the input held no text (%d documents read%s)" % (
        e, summary["counts"].get("documents_read", 0),
        ", %d records set aside, listed in %s" % (rejected, rejected_dir)
        if rejected else ""))
    return 1
  except RuntimeError as e:  # sentencepiece's trainer
    cli.error("sentencepiece could not learn from the %d words: %s; %s was "
              "not written" % (len(word_counts), _sentencepiece_message(e),
                               opts.output))
    return 1
  try:
    (commit or _Commit()).write(files)
  except Exception as e:  # pylint: disable=broad-except
    cli.error("cannot write %s: %s; nothing was written there"
              % (opts.output, cli.first_line(e)))
    return 1
  rejected_count = summary["counts"].get("rejected_records", 0)
  # The command's own closing line (shown whatever --log_level says).
  print(
      "done: wrote %s: %d tokens (%s) from %d words, %d distinct kept, of %d "
      "documents%s; %d records set aside%s" % (
      " and ".join(path for path, _ in files), sizes[0], sizes[1],
      summary["counts"].get("words", 0), len(word_counts),
      summary["counts"].get("documents_read", 0),
      "; languages weighted for alpha %g: %s" % (
          opts.language_sampling_alpha, ", ".join(
              "%s x%.3g" % (lang, v["weight"])
              for lang, v in summary["languages"].items()))
      if "languages" in summary else "", rejected_count,
      " (%s; listed in %s)" % (
          ", ".join("%s %d" % kv for kv in summary["rejected"].items()),
          FileSystems.join(FileSystems.split(opts.output)[0], REJECTED_DIR))
      if rejected_count else ""), file=sys.stderr)
  return 0


def _fit(opts, word_counts):
  """Learns the vocabulary from the counts: ``([(path, bytes)] to write,
  (tokens, what they are))``. Raises ValueError when there are no words,
  RuntimeError when sentencepiece cannot learn."""
  special = vocabulary.SPECIAL_TOKENS[opts.model]
  if opts.model == "bpe":
    text = vocabulary.learn_byte_level_bpe(
        word_counts, opts.vocab_size, do_lower_case=opts.do_lower_case)
    size = len(json.loads(text)["model"]["vocab"])
    return [(opts.output, text.encode("utf-8"))], (
        size, "%d special, %d bytes, %d merged" % (
            special, vocabulary.BYTE_ALPHABET,
            size - special - vocabulary.BYTE_ALPHABET))
  if opts.model == "unigram":
    model, vocab = vocabulary.learn_unigram(word_counts, opts.vocab_size)
    size = vocab.count(b"\n")
    return list(zip(output_files(opts.model, opts.output), (model, vocab))), (
        size, "%d special and user-defined, %d learned" % (
            special, size - special))
  learned = vocabulary.learn_wordpiece(
      word_counts, opts.vocab_size - len(vocabulary.RESERVED))
  tokens = vocabulary.bert_layout(learned, opts.vocab_size)
  return [(opts.output, ("\n".join(tokens) + "\n").encode("utf-8"))], (
      len(tokens), "%d reserved, %d learned" % (special,
                                                len(tokens) - special))


def _language_of(opts, matched: paths.MatchedInput):
  """The function from a document id to its language: its file's (tags on
  --input) or its record's (--language_field). Raises UsageError as
  ``options.file_languages`` does."""
  if opts.language_field:
    return languages.document_language
  return _tagged_plan(opts, matched).language_of


def _tagged_plan(opts, matched: paths.MatchedInput) -> languages.LanguagePlan:
  """Each file's language and size (no passes: nothing is passed over
  here)."""
  files = [(paths.relative_name(f.path, matched.root), language, f.size)
           for f, language in file_languages(input_languages(opts), matched)]
  sizes: Dict[str, int] = {}
  for _, language, size in files:
    sizes[language] = sizes.get(language, 0) + size
  return languages.LanguagePlan(
      files=tuple(sorted((name, lang) for name, lang, _ in files)),
      sizes=tuple(sorted(sizes.items())), seed=0)


def _sampled(opts, matched: paths.MatchedInput, counted):
  """The counts of the job (each language's words, and its bytes of text)
  → ``(word counts to fit, {language: (bytes, target share, weight)})``:
  each language's counts times ``q_i / p_i`` (``languages.sampling_passes``
  with one pass), so that it makes the share of the counts XLM's sampling
  gives it. p_i as ``pipelines.mlm`` measures it: the matched files' bytes
  for languages tagged on --input, the bytes of text counted in the job
  for --language_field."""
  if opts.language_field:
    sizes = {lang: n for lang, n in counted["bytes"].items() if n > 0}
  else:
    sizes = dict(_tagged_plan(opts, matched).sizes)
  try:
    weights = languages.sampling_passes(sizes, opts.language_sampling_alpha,
                                        1)
  except ValueError as e:
    raise UsageError(str(e)) from None
  shares = languages.target_shares(sizes, opts.language_sampling_alpha)
  word_counts = vocabulary.sample_word_counts(
      {lang: counted["words"].get(lang, []) for lang in sizes}, weights,
      opts.max_words)
  return word_counts, {lang: {"bytes": sizes[lang],
                              "target_share": round(shares[lang], 6),
                              "weight": round(weights[lang], 6)}
                       for lang in sorted(sizes)}


def _sentencepiece_message(e: RuntimeError) -> str:
  """sentencepiece's own words, without the source place and the check
  that failed (``INTERNAL: src/trainer_interface.cc(638) [...] Vocabulary
  size is smaller ...``)."""
  text = cli.first_line(e)
  return text.split("] ", 1)[1] if "] " in text else text


def _count_words(options, opts, matched: paths.MatchedInput,
                 counts_path: str):
  """Runs the Beam job that writes the most frequent words' counts to
  ``counts_path``; returns its result. Raises what the job raised."""
  with beam.Pipeline(options=options) as pipeline:
    docs, rejected = pipeline | "ReadDocuments" >> ReadDocuments(
        matched, input_format=opts.input_format,
        text_field=opts.text_field,
        language_field=opts.language_field)
    if opts.model == "bpe":
      # A sentence's first word has no space before it (ByteLevel without
      # a prefix space): counted sentence by sentence, as pipelines.mlm
      # splits and encodes them.
      docs, split_rejected = docs | "SplitSentences" >> SplitSentences(
          opts.input_format)
      rejected = ((rejected, split_rejected)
                  | "GatherRejected" >> beam.Flatten())
    # Records the reader sets aside are listed beside the vocabulary.
    _ = rejected | "WriteRejected" >> WriteRejected(
        FileSystems.split(opts.output)[0], matched.root)
    words = vocabulary.WordRules(model=opts.model,
                                 do_lower_case=opts.do_lower_case,
                                 albert_rules=opts.albert_text_rules)
    if opts.language_sampling_alpha is None:
      _ = (docs
           | "CountWords" >> vocabulary.CountWords(words=words,
                                                   max_words=opts.max_words)
           | "WriteCounts" >> beam.Map(_write_json, counts_path))
    else:
      # Each language's words and bytes, weighted on this machine.
      sizes = docs | "CountLanguageBytes" >> languages.CountLanguageBytes(
          _language_of(opts, matched))
      _ = (docs
           | "CountWords" >> vocabulary.CountWordsByLanguage(
               words=words, max_words=opts.max_words,
               language_of=_language_of(opts, matched))
           | "WriteCounts" >> beam.Map(
               lambda by_language, sizes, path: _write_json(
                   {"words": by_language, "bytes": sizes}, path),
               sizes=beam.pvalue.AsSingleton(sizes), path=counts_path))
  return pipeline.result


def _write_json(top, path):
  cli.write_file(path, json.dumps(top).encode("utf-8"))


def _delete_quietly(path: str) -> None:
  try:
    if FileSystems.exists(path):
      FileSystems.delete([path])
  except Exception as e:  # pylint: disable=broad-except
    logging.warning("could not remove %s: %s", path, cli.first_line(e))


def _delete_with_temps(path: str) -> None:
  """Removes ``path`` and the temporary files it is written through
  (``path`` + ``cli.TEMP_INFIX`` …): a worker stopped while writing the
  counts leaves its temporary file."""
  folder, name = FileSystems.split(path)
  try:
    found = paths.match_below(folder, paths.escape_glob(name) + "*")
  except Exception as e:  # pylint: disable=broad-except
    logging.warning("could not list %s: %s", folder, cli.first_line(e))
    found = []
  for f in found:
    _delete_quietly(f.path)
  _delete_quietly(path)


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
