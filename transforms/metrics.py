"""One namespace for every counter the pipeline keeps.

``summary.json`` is written from these counters after the job finishes, so a
number in the summary and the Beam metric of the same name always agree.
"""

import collections
import functools
import json
import os
import threading
import time
from typing import Callable, Dict, Optional, Tuple

from apache_beam.metrics import Metrics

NAMESPACE = "mlm"

# Every counter the pipeline keeps, with what it counts. summary.json lists
# all of them, zeros included, so a reader can tell "none" from "not counted".
COUNTERS = {
    # Reading
    "input_bytes": "bytes of input read (of compressed files, the "
                   "compressed bytes; counted as each byte range is done)",
    "documents_read": "document records the readers found (a JSONL "
                      "line, a Parquet row, a dump page, a part of a split "
                      "document …), before anything is dropped or set "
                      "aside: documents_read = documents + dropped (by "
                      "reason, DROP_REASONS) + records set aside (by "
                      "reason, all but FILE_REJECT_REASONS)",
    "byte_order_marks_removed": "UTF-8 byte order marks removed at file starts",
    "crlf_line_endings": "lines whose CR of a CRLF ending was removed",
    "lone_cr_line_breaks": "lone CR characters read as line breaks",
    "nul_bytes_removed": "NUL bytes removed",
    "invalid_utf8_lines": "lines with invalid UTF-8 (bad bytes → U+FFFD, "
                          "which the tokenizer deletes)",
    "binary_files_skipped": "input files that look binary (NUL bytes or "
                            "mostly invalid UTF-8 in the first 8 KiB)",
    "long_line_pieces": "cuts made in lines longer than --max_line_bytes",
    "long_documents_split": "cuts made in documents longer than "
                            "--max_document_bytes",
    "rejected_records": "records set aside, listed in OUTPUT/_rejected/ and "
                        "counted by reason under \"rejected\" in "
                        "summary.json",
    "lone_surrogates_replaced": "lone surrogates in JSONL strings, replaced "
                                "by U+FFFD",
    "unterminated_wiki_docs": "<doc> blocks without </doc> (ended at the "
                              "next <doc> or the end of the file)",
    "lines_outside_wiki_docs": "non-blank lines outside any <doc>, ignored",
    "parquet_null_texts": "Parquet rows whose text column is null, dropped",
    "parquet_non_string_texts": "Parquet rows whose text column holds no "
                                "string, dropped",
    "empty_documents_dropped": "documents with no text (an empty JSONL text, "
                               "a WikiExtractor article with only its "
                               "title) or, after tokenizing, no token",
    "wiki_pages_read": "pages of --input_format=wikidump dumps read",
    "wiki_pages_skipped_namespace": "dump pages outside namespace 0 "
                                    "(talk, user, file, template … pages)",
    "wiki_pages_skipped_redirect": "dump pages that are redirects",
    "wiki_pages_skipped_disambiguation": "dump pages that are disambiguation "
                                         "pages",
    "wiki_pages_empty": "articles with no text left once markup is removed",
    "wiki_pages_unparsed": "articles whose wikitext mwparserfromhell "
                           "rejected, cleaned by patterns instead",
    "wiki_indexes_not_matching_dump": "multistream indexes whose offsets "
                                      "are not where the dump's bz2 streams "
                                      "begin (not used: the dump is "
                                      "scanned)",
    "wiki_pages_malformed_xml": "dump pages that are not well-formed XML, "
                                "their text taken out by pattern",
    # Tokenizing
    "documents": "documents with at least one token",
    "sentences": "sentences with at least one token",
    "tokens": "WordPiece tokens in those sentences",
    "unknown_tokens": "[UNK] tokens among them",
    "empty_sentences_dropped": "sentences that yield no token, dropped",
    "wordpiece_exact_path_sentences": "sentences the fast WordPiece path "
                                      "(nanotoken) left to the exact one: "
                                      "they hold a character where the two "
                                      "differ",
    # Vocabulary learning (pipelines.learn_vocab)
    "words": "words pipelines.learn_vocab counted, as its --model's "
             "learner takes them (BERT's, byte-level BPE's or "
             "SentencePiece's words: transforms/vocabulary.py)",
    # Instances
    "instances": "examples written (with --output_format=megatron: "
                 "sequences written, one per sentence or document)",
    "random_next_instances": "examples whose B is a random next segment "
                             "(NSP label 1)",
    "swapped_instances": "SOP examples labelled 1: A and B swapped, or B "
                         "random for a one-sentence chunk",
    "sop_random_next": "SOP examples of a one-sentence chunk, whose B is "
                       "random (as ALBERT does)",
    "long_sentences_split": "sentences longer than a packed sequence, cut "
                            "into pieces",
    "document_end_sequences": "doc_sentences sequences cut short by the end "
                              "of their document",
    "document_separators": "[SEP] tokens between documents in "
                           "full_sentences sequences",
    "random_next_from_same_document": "random-next B taken from the same "
                                      "document (a one-document pool)",
    "instance_tokens": "tokens of A and B in the examples written (the "
                       "text kept; [CLS] and [SEP] not counted)",
    "truncated_instances": "pairs truncated to --max_seq_length",
    "megatron_documents": "documents in the Megatron dataset's index "
                          "(--output_format=megatron)",
    "truncated_tokens": "tokens removed by that truncation",
    # Masking
    "masked_tokens": "masked-LM predictions",
    "masked_as_mask_token": "predictions shown as [MASK]",
    "masked_kept_original": "predictions shown as the original token",
    "masked_replaced_random": "predictions shown as a random token",
    "masked_ngrams": "n-grams masked with --max_ngram_size (each length "
                     "counted as masked_ngrams_of_<n>_words)",
    "masked_spans": "spans masked by --span_masking=geometric (each length "
                    "counted as masked_spans_of_<n>_words)",
}


# Counters of document records dropped on purpose, each counted in
# documents_read too (document_balance).
DROP_REASONS = ("empty_documents_dropped", "parquet_null_texts",
                "parquet_non_string_texts", "wiki_pages_skipped_namespace",
                "wiki_pages_skipped_redirect",
                "wiki_pages_skipped_disambiguation", "wiki_pages_empty")
# Reasons of records set aside that stand for a file or a part of one (a
# file that cannot be read on, a corrupt bz2 stream), not for a document:
# the documents lost in them were never read.
FILE_REJECT_REASONS = ("unreadable_files", "corrupt_wiki_streams")


def document_balance(counts: Dict[str, int], rejected: Dict[str, int]
                     ) -> Tuple[int, int, Dict[str, int]]:
  """Checks the identity every reader keeps: ``(documents_read, accounted,
  terms)``, where ``accounted`` = documents (kept) + each reason in
  ``DROP_REASONS`` + each reason of ``rejected`` (summary.json's "rejected")
  that is not in ``FILE_REJECT_REASONS``, and ``terms`` lists the non-zero
  parts. The two numbers are equal for a run whose counters are whole."""
  terms = {"documents": counts.get("documents", 0)}
  for reason in DROP_REASONS:
    terms[reason] = counts.get(reason, 0)
  for reason, n in rejected.items():
    if reason not in FILE_REJECT_REASONS:
      terms["rejected/" + reason] = n
  terms = {k: v for k, v in terms.items() if v}
  return counts.get("documents_read", 0), sum(terms.values()), terms


@functools.lru_cache(maxsize=None)
def _counter(name: str):
  return Metrics.counter(NAMESPACE, name)


@functools.lru_cache(maxsize=None)
def _distribution(name: str):
  return Metrics.distribution(NAMESPACE, name)


class Tally:
  """The counters and distributions one piece of work made, kept beside
  Beam's metrics so that a run that stops can save what its finished work
  counted and ``--resume`` adds it back (pipelines/resume.py): a spilled
  stage's counts with its pool files, a pool group's with its shard.

  ``counts``: counter name → total. ``distributions``: name → ``[count,
  sum, min, max]``, as Beam's distribution cells hold them. ``rejected``:
  the records set aside (``rejects.tagged``), saved apart (not in
  ``to_json``). ``on_full``: called once ``rejected`` holds
  ``REJECTED_PER_TALLY`` records, to save them and open a new tally, so
  that a bundle whose every record is set aside holds a bounded number."""

  def __init__(self, on_full: Optional[Callable[[], None]] = None):
    self.counts: Dict[str, int] = collections.Counter()
    self.distributions: Dict[str, list] = {}
    self.rejected: list = []
    self._on_full = on_full

  def add_rejected(self, record) -> None:
    self.rejected.append(record)
    if self._on_full is not None and len(self.rejected) >= REJECTED_PER_TALLY:
      self._on_full()

  def __bool__(self) -> bool:
    return bool(self.counts or self.distributions or self.rejected)

  def observe(self, name: str, value: int) -> None:
    d = self.distributions.get(name)
    if d is None:
      self.distributions[name] = [1, value, value, value]
    else:
      d[0] += 1
      d[1] += value
      d[2] = min(d[2], value)
      d[3] = max(d[3], value)

  def merge(self, other: "Tally") -> None:
    self.counts.update(other.counts)
    for name, (n, total, low, high) in other.distributions.items():
      d = self.distributions.get(name)
      if d is None:
        self.distributions[name] = [n, total, low, high]
      else:
        d[0] += n
        d[1] += total
        d[2] = min(d[2], low)
        d[3] = max(d[3], high)

  def to_json(self) -> Dict:
    return {"counts": dict(sorted(self.counts.items())),
            "distributions": dict(sorted(self.distributions.items()))}

  @staticmethod
  def from_json(value: Dict) -> "Tally":
    tally = Tally()
    tally.counts.update({k: int(v) for k, v in value["counts"].items()})
    tally.distributions = {k: [int(x) for x in v]
                           for k, v in value["distributions"].items()}
    return tally


# The tally the DoFns running on this thread add to, if one is open: a
# bundle of a fused stage runs on one thread, element by element through
# every step, so what a step counts while a piece of work flows through it
# lands in that work's tally.
_thread = threading.local()


# Records set aside one tally holds before its ``on_full`` saves them (a
# few hundred bytes each).
REJECTED_PER_TALLY = 10000


def start_tally(on_full: Optional[Callable[[], None]] = None) -> Tally:
  """Opens a new tally for this thread and returns it (``on_full``: see
  ``Tally``)."""
  _thread.tally = Tally(on_full)
  return _thread.tally


def current_tally() -> Optional[Tally]:
  """This thread's open tally, or None."""
  return getattr(_thread, "tally", None)


def stop_tally() -> None:
  _thread.tally = None


# What the plain reading functions take to count with: ``count`` in a
# pipeline, ``no_count`` elsewhere (tests, benchmarks).
Count = Callable[[str, int], None]


def no_count(name: str, n: int = 1) -> None:
  del name, n


def count(name: str, n: int = 1) -> None:
  """Adds ``n`` to the counter ``mlm/name`` (and to the live progress
  tally, for the counters in ``PROGRESS_COUNTERS``, and to this thread's
  open ``Tally``)."""
  if n:
    _counter(name).inc(int(n))
    tally = getattr(_thread, "tally", None)
    if tally is not None:
      tally.counts[name] += int(n)
    if name in PROGRESS_COUNTERS and os.environ.get(PROGRESS_DIR_ENV):
      _tally(name, int(n))


# Live progress (pipelines/progress.py). Beam's metrics reach the launching
# process only when a bundle ends, and on the DirectRunner in batch a stage
# runs as one bundle per worker: they say nothing until a stage is over. So
# each worker process also keeps a tally of a few counters, which a thread of
# its own writes, once a second when it changed, to a file of the process's
# in the folder the launcher names in this variable; the launcher sums the
# files.
PROGRESS_DIR_ENV = "MLM_PROGRESS_DIR"
PROGRESS_COUNTERS = ("input_bytes", "documents_read", "instances",
                     "rejected_records")
_PROGRESS_SECONDS = 1.0
_progress = {"counts": collections.Counter(), "dirty": False,
             "writer": None, "directory": None}
_progress_lock = threading.Lock()


def _tally(name: str, n: int) -> None:
  directory = os.environ.get(PROGRESS_DIR_ENV)
  with _progress_lock:
    if directory != _progress["directory"]:
      # Another run in this process (the launcher runs the only worker of
      # an in_memory job itself): its tally starts from zero.
      _progress["counts"] = collections.Counter()
      _progress["directory"] = directory
    _progress["counts"][name] += n
    _progress["dirty"] = True
    if _progress["writer"] is None:
      _progress["writer"] = threading.Thread(
          target=_write_progress_forever, name="mlm-progress", daemon=True)
      _progress["writer"].start()


def _write_progress_forever() -> None:
  while True:
    time.sleep(_PROGRESS_SECONDS)
    flush_progress()


def flush_progress() -> None:
  """Writes this process's tally now if it changed (a worker about to
  exit, the launcher before its last look)."""
  with _progress_lock:
    if not _progress["dirty"] or not _progress["directory"]:
      return
    _progress["dirty"] = False
    counts = dict(_progress["counts"])
    directory = _progress["directory"]
  write_progress(directory, counts)


def write_progress(directory: str, counts: Dict[str, int]) -> None:
  """Replaces this process's progress file in ``directory`` (written
  aside, then renamed: a reader never sees half a file)."""
  path = os.path.join(directory, "%d.json" % os.getpid())
  try:
    with open(path + ".tmp", "w") as f:
      json.dump(counts, f)
    os.replace(path + ".tmp", path)
  except OSError:
    pass  # progress is best effort; the job's own metrics are exact


def observe(name: str, value: int) -> None:
  """Records one value in the distribution ``mlm/name`` (and in this
  thread's open ``Tally``)."""
  _distribution(name).update(int(value))
  tally = getattr(_thread, "tally", None)
  if tally is not None:
    tally.observe(name, int(value))
