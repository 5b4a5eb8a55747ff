"""Records set aside: one bad record or file never ends a job, and never
vanishes.

A stage that cannot use a record (a JSONL line that is not JSON, a document
whose tokenization raises, a file that cannot be read to its end) yields a
``Rejected`` on its ``REJECTED`` output instead of failing the bundle. Each
one is counted twice, as ``rejected_records`` and as ``rejected/<reason>``
(``summary.json`` lists the second kind under ``"rejected"``), and
``WriteRejected`` writes them as JSON lines under ``OUTPUT/_rejected/``::

  {"file": "corpus/AA/wiki_00", "offset": 1234, "doc_id": "AA/wiki_00:1234",
   "stage": "tokenize", "reason": "tokenize_error", "error": "ValueError: …",
   "sample": "the first 200 characters of the record"}

``offset`` is the byte offset in the (decompressed) file where the record
starts, or where reading stopped for a file that could not be read to its
end.
"""

import dataclasses
import json
from typing import Optional, Tuple

import apache_beam as beam
from apache_beam.coders import coders
from apache_beam.io import filebasedsink
from apache_beam.io.filesystem import CompressionTypes

from transforms import languages
from transforms import metrics
from transforms import shards

# The tag of the rejected output of the stages that can reject.
REJECTED = "rejected"
REJECTED_DIR = "_rejected"
SAMPLE_CHARS = 200
# Counter prefix of the per-reason counts.
REASON_PREFIX = "rejected/"


@dataclasses.dataclass(frozen=True)
class Rejected:
  """One record set aside. ``doc_id`` is ``path:offset`` as the reader makes
  it (see reading.ReadDocuments), ``reason`` a short name that counts it."""
  doc_id: str
  stage: str
  reason: str
  error: str
  sample: str = ""


def tagged(record: Rejected) -> beam.pvalue.TaggedOutput:
  """``record`` for the ``REJECTED`` output, counted (and kept in this
  thread's open ``metrics.Tally``, which saves it with the pool files for
  ``--resume``)."""
  metrics.count("rejected_records", 1)
  metrics.count(REASON_PREFIX + record.reason, 1)
  tally = metrics.current_tally()
  if tally is not None:
    tally.add_rejected(record)
  return beam.pvalue.TaggedOutput(REJECTED, record)


def reject(doc_id: str, stage: str, reason: str, error: str,
           sample: str = "") -> beam.pvalue.TaggedOutput:
  """A new ``Rejected`` for the ``REJECTED`` output, counted. Lone
  surrogates in ``error`` or ``sample`` (text no UTF-8 encoder takes, often
  why the record failed) become ``\\udxxx`` escapes."""
  return tagged(Rejected(doc_id, stage, reason, _encodable(error),
                         _encodable(sample[:SAMPLE_CHARS])))


def _encodable(text: str) -> str:
  return text.encode("utf-8", "backslashreplace").decode("utf-8")


def reject_exception(doc_id: str, stage: str, error: BaseException,
                     sample: str = "") -> beam.pvalue.TaggedOutput:
  """A record whose ``stage`` raised ``error``: reason ``<stage>_error``."""
  return reject(doc_id, stage, stage + "_error", describe(error), sample)


def describe(error: BaseException, last: bool = False) -> str:
  """``Type: first line of the message`` (its last line with ``last``: a
  wrapped error's own message, after the wrapper's context)."""
  lines = [l for l in str(error).splitlines() if l.strip()]
  return "%s: %s" % (type(error).__name__,
                     (lines[-1] if last else lines[0]) if lines else "")


def split_doc_id(doc_id: str) -> Tuple[str, Optional[int]]:
  """``"dir/file:123#2"`` (or ``"dir/file:123@en"``, a record's language
  at its end: ``languages.with_language``) → ``("dir/file", 123)``; the
  offset is None where the id holds none."""
  if languages.document_language(doc_id):
    doc_id = doc_id.rsplit("@", 1)[0]
  path, sep, rest = doc_id.rpartition(":")
  offset = rest.split("#", 1)[0]
  if not sep or not offset.isdigit():
    return doc_id, None
  return path, int(offset)


def to_json(record: Rejected, input_root: str) -> str:
  """One JSON line; ``file`` is the input file's full name."""
  path, offset = split_doc_id(record.doc_id)
  return json.dumps({
      "file": input_root + path, "offset": offset, "doc_id": record.doc_id,
      "stage": record.stage, "reason": record.reason, "error": record.error,
      "sample": record.sample}, ensure_ascii=False, sort_keys=True)


class _JsonLinesSink(filebasedsink.FileBasedSink):
  """Beam's file sink for text lines: ``PREFIX-SSSSS-of-NNNNN.jsonl``."""

  def __init__(self, file_path_prefix: str):
    super().__init__(file_path_prefix, coder=coders.StrUtf8Coder(),
                     file_name_suffix=".jsonl", num_shards=0,
                     mime_type="application/x-ndjson",
                     compression_type=CompressionTypes.UNCOMPRESSED)

  def write_encoded_record(self, file_handle, encoded_value):
    file_handle.write(encoded_value + b"\n")


class WriteRejected(beam.PTransform):
  """Writes ``Rejected`` records as ``OUTPUT/_rejected/rejected-*.jsonl``;
  writes nothing when there are none (``shards.WriteShards``, where
  Beam's own text writer would log a warning that means nothing to a
  user)."""

  def __init__(self, output_dir: str, input_root: str):
    super().__init__()
    self._prefix = output_dir.rstrip("/") + "/" + REJECTED_DIR + "/rejected"
    self._input_root = input_root

  def expand(self, records):
    root = self._input_root
    return (records
            | "ToJson" >> beam.Map(lambda r: (1, to_json(r, root)))
            | "Write" >> shards.WriteShards(_JsonLinesSink(self._prefix), 0,
                                            empty_ok=True,
                                            count_records=False))
