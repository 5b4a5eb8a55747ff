"""ReadDocuments: files → ``(doc_id, [text lines])``, one element per document.

Three input formats:

* ``lines``: BERT's format. One sentence per line; a blank line (after
  Unicode ``strip()``) ends a document. File boundaries also end one.
* ``wikiextractor``: each ``<doc …>`` … ``</doc>`` block is one document. Its
  first non-blank line is the article title and is dropped.
* ``jsonl``: one JSON object per line; the document text is one field.

Documents are found by a splittable ``FileBasedSource``: a large file is read
as byte ranges by several workers. Each document is *claimed* at one byte
offset (``lines``: the blank line before it, or offset 0; ``wikiextractor``:
its ``<doc`` line; ``jsonl``: its own line) and belongs to the range holding
that offset; a reader finishes its last document past the end of its range and
skips the tail of the previous range's document at its start. Nothing reads a
whole file to find boundaries.

Dirty bytes are repaired and counted, never fatal: invalid UTF-8 (replaced by
U+FFFD, which the BERT normalizer deletes), NUL bytes (removed), CRLF (the CR
removed), lone CR (a line break), a UTF-8 byte order mark (removed). Lines
longer than ``max_line_bytes`` are cut at whitespace into pieces so that no
step holds a huge line (JSONL lines, which cannot be parsed in pieces, are
kept whole up to ``MAX_JSONL_LINE_BYTES`` and dropped and counted beyond).
"""

import functools
import json
import logging
import os
import re
from typing import Callable, Iterable, Iterator, List, Optional, Tuple

import apache_beam as beam
from apache_beam.io import filebasedsource
from apache_beam.io.filesystem import CompressionTypes

from transforms import metrics

FORMATS = ("lines", "wikiextractor", "jsonl")
DEFAULT_MAX_LINE_BYTES = 1 << 20
DEFAULT_MAX_DOCUMENT_BYTES = 8 << 20
BINARY_PROBE_BYTES = 8192
MAX_JSONL_LINE_BYTES = 64 << 20
_BLOCK = 1 << 20
_BOM = b"\xef\xbb\xbf"
_WHITESPACE_BYTES = b" \t\x0b\x0c"
_DOC_OPEN = re.compile(r"^\s*<doc(\s[^>]*)?>\s*$")
_DOC_CLOSE = re.compile(r"^\s*</doc>\s*$")

# A document as it leaves the reader: (doc_id, lines).
Document = Tuple[str, List[str]]
# What the format parsers see: (byte offset of the physical line, text).
Line = Tuple[int, str]
Count = Callable[[str, int], None]


def _no_count(name: str, n: int = 1) -> None:
  del name, n


def iter_raw_lines(f, start: int, max_line_bytes: Optional[int],
                   count: Count = _no_count) -> Iterator[Tuple[int, bytes]]:
  """Yields ``(offset, bytes)`` for each line of ``f`` from its current
  position, which is file offset ``start``.

  Newlines are stripped. With ``max_line_bytes``, a longer line is yielded in
  pieces cut at whitespace (or at a UTF-8 character boundary), each with its
  own offset, and counted as ``long_line_pieces``. Without it (JSONL), lines
  over ``MAX_JSONL_LINE_BYTES`` are skipped and counted.
  """
  buf = b""
  pos = 0  # start of the current line in buf
  offset = start  # file offset of buf[pos]
  eof = False
  limit = max_line_bytes or MAX_JSONL_LINE_BYTES
  while True:
    nl = buf.find(b"\n", pos, pos + limit + 1)
    if nl >= 0:
      yield offset, buf[pos:nl]
      offset += nl + 1 - pos
      pos = nl + 1
    elif len(buf) - pos > limit:
      if max_line_bytes:
        cut = _cut_point(buf[pos:pos + limit + 1], limit)
        count("long_line_pieces", 1)
        yield offset, buf[pos:pos + cut]
        offset += cut
        pos += cut
      else:
        # A JSONL line too long to parse: skip to its end, count it.
        count("oversized_lines_dropped", 1)
        offset += len(buf) - pos
        buf, pos = b"", 0
        while not eof:
          chunk = f.read(_BLOCK)
          eof = not chunk
          nl = chunk.find(b"\n")
          if nl >= 0:
            offset += nl + 1
            buf = chunk[nl + 1:]
            break
          offset += len(chunk)
    elif not eof:
      chunk = f.read(_BLOCK)
      if chunk:
        buf = buf[pos:] + chunk
        pos = 0
      else:
        eof = True
    else:
      if pos < len(buf):
        yield offset, buf[pos:]
      return


def _cut_point(buf: bytes, limit: int) -> int:
  """Where to cut an over-long line: after the last whitespace, else at a
  UTF-8 character boundary, never at 0."""
  best = max(buf.rfind(b, 0, limit) for b in (b" ", b"\t"))
  if best > 0:
    return best + 1
  cut = limit
  while cut > 1 and (buf[cut] & 0xC0) == 0x80:
    cut -= 1
  return cut


def clean_line(raw: bytes, count: Count = _no_count) -> List[str]:
  """Decodes one physical line into its logical lines, repairing and counting
  CR, NUL and invalid UTF-8."""
  if raw.endswith(b"\r"):
    raw = raw[:-1]
    count("crlf_line_endings", 1)
  if b"\x00" in raw:
    count("nul_bytes_removed", raw.count(b"\x00"))
    raw = raw.replace(b"\x00", b"")
  parts = [raw]
  if b"\r" in raw:
    parts = raw.split(b"\r")
    count("lone_cr_line_breaks", len(parts) - 1)
  out = []
  for part in parts:
    try:
      out.append(part.decode("utf-8"))
    except UnicodeDecodeError:
      count("invalid_utf8_lines", 1)
      out.append(part.decode("utf-8", errors="replace"))
  return out


def group_lines_format(lines: Iterable[Line], at_file_start: bool,
                       max_doc_bytes: int = DEFAULT_MAX_DOCUMENT_BYTES,
                       count: Count = _no_count
                       ) -> Iterator[Tuple[int, List[str]]]:
  """BERT lines format: yields ``(claim_offset, sentences)`` per document.

  The claim offset is that of the blank line right before the document, or
  0 for a document that opens the file. When not at the file start, the first
  run of non-blank lines is the tail of an earlier range's document: skipped.
  A document longer than ``max_doc_bytes`` is yielded in parts (same claim),
  counted as ``long_documents_split``.
  """
  claim = 0 if at_file_start else None
  doc: List[str] = []
  size = 0
  in_tail = not at_file_start
  for offset, text in lines:
    if text.strip():
      if in_tail:
        continue
      doc.append(text)
      size += len(text)
      if size >= max_doc_bytes:
        count("long_documents_split", 1)
        yield claim, doc
        doc, size = [], 0
    else:
      in_tail = False
      if doc:
        yield claim, doc
        doc, size = [], 0
      claim = offset
  if doc:
    yield claim, doc


def group_wikiextractor_format(lines: Iterable[Line], count: Count = _no_count,
                               max_doc_bytes: int = DEFAULT_MAX_DOCUMENT_BYTES
                               ) -> Iterator[Tuple[int, List[str]]]:
  """WikiExtractor: yields ``(offset of <doc>, lines)`` per article, title
  dropped. A ``<doc>`` with no ``</doc>`` ends at the next ``<doc>`` or at the
  end of the file and is counted as ``unterminated_wiki_docs``. An article
  longer than ``max_doc_bytes`` is yielded in parts."""
  claim = None
  doc: Optional[List[str]] = None
  size = 0
  title_pending = False
  for offset, text in lines:
    if _DOC_OPEN.match(text):
      if doc is not None:
        count("unterminated_wiki_docs", 1)
        if doc:
          yield claim, doc
      claim, doc, size, title_pending = offset, [], 0, True
    elif doc is not None:
      if _DOC_CLOSE.match(text):
        if doc:
          yield claim, doc
        doc = None
      elif text.strip():
        if title_pending:
          title_pending = False  # the article's title: not a sentence
          continue
        doc.append(text)
        size += len(text)
        if size >= max_doc_bytes:
          count("long_documents_split", 1)
          yield claim, doc
          doc, size = [], 0
    elif text.strip() and claim is not None:
      count("lines_outside_wiki_docs", 1)
  if doc is not None:
    count("unterminated_wiki_docs", 1)
    if doc:
      yield claim, doc


def group_jsonl_format(lines: Iterable[Line]) -> Iterator[Tuple[int, List[str]]]:
  """JSONL: every non-blank line is one document, claimed at its offset."""
  for offset, text in lines:
    if text.strip():
      yield offset, [text]


def jsonl_paragraphs(line: str, text_field: str, count: Count = _no_count
                     ) -> Optional[List[str]]:
  """The non-blank lines of ``text_field`` of one JSONL line, or None (counted)
  when the line is not a JSON object with a string in that field."""
  try:
    obj = json.loads(line)
  except ValueError:
    count("malformed_jsonl_lines", 1)
    return None
  if not isinstance(obj, dict) or text_field not in obj:
    count("jsonl_lines_missing_text_field", 1)
    return None
  text = obj[text_field]
  if not isinstance(text, str):
    count("jsonl_lines_missing_text_field", 1)
    return None
  return [t for t in text.splitlines() if t.strip()]


def looks_binary(head: bytes) -> bool:
  """Whether the first bytes of a file say it is not text: more than 1% NUL
  bytes, or more than 10% of it invalid UTF-8. (UTF-16 text counts as
  binary: convert it to UTF-8 first.)"""
  if not head:
    return False
  if head.count(b"\x00") * 100 > len(head):
    return True
  replaced = head.decode("utf-8", errors="replace").count("\ufffd")
  return replaced * 10 > len(head)


class DocumentSource(filebasedsource.FileBasedSource):
  """A splittable source of documents in one of ``FORMATS``."""

  def __init__(self, file_pattern: str, input_format: str = "lines",
               max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
               max_doc_bytes: int = DEFAULT_MAX_DOCUMENT_BYTES):
    super().__init__(file_pattern,
                     compression_type=CompressionTypes.AUTO,
                     splittable=True,
                     validate=False)
    if input_format not in FORMATS:
      raise ValueError("unknown input format %r" % input_format)
    self._format = input_format
    self._max_line_bytes = max_line_bytes
    self._max_doc_bytes = max_doc_bytes

  def read_records(self, file_name, offset_range_tracker):
    count = metrics.count
    start = offset_range_tracker.start_position()
    base = os.path.basename(file_name)
    with self.open_file(file_name) as f:
      head = f.read(BINARY_PROBE_BYTES)
    if looks_binary(head):
      # Every range of the file decides alike; the first one counts it.
      if start == 0:
        count("binary_files_skipped", 1)
        logging.warning("skipping %s: it looks binary, not text", file_name)
      return
    with self.open_file(file_name) as f:
      if start > 0:
        f.seek(start - 1)
        # Skip the rest of the line holding byte start-1: it belongs to the
        # range before. The first line read then starts at or after `start`.
        first = start - 1 + _skip_line(f)
      else:
        first = 0
      raw = iter_raw_lines(
          f, first,
          None if self._format == "jsonl" else self._max_line_bytes, count)
      lines = self._logical_lines(raw, at_file_start=(first == 0), count=count)
      if self._format == "lines":
        docs = group_lines_format(lines, at_file_start=(first == 0),
                                  max_doc_bytes=self._max_doc_bytes,
                                  count=count)
      elif self._format == "wikiextractor":
        docs = group_wikiextractor_format(lines, count, self._max_doc_bytes)
      else:
        docs = group_jsonl_format(lines)
      last_claim, k = None, 0
      for claim, doc_lines in docs:
        if claim != last_claim:
          if not offset_range_tracker.try_claim(claim):
            return
          last_claim, k = claim, 0
          yield "%s:%d" % (base, claim), doc_lines
        else:
          # Several documents can share one claim (lone-CR line breaks inside
          # one physical line); a suffix keeps their ids apart.
          k += 1
          yield "%s:%d#%d" % (base, claim, k), doc_lines

  @staticmethod
  def _logical_lines(raw: Iterable[Tuple[int, bytes]], at_file_start: bool,
                     count: Count) -> Iterator[Line]:
    for offset, data in raw:
      if at_file_start and offset == 0 and data.startswith(_BOM):
        count("byte_order_marks_removed", 1)
        data = data[len(_BOM):]
      for text in clean_line(data, count):
        yield offset, text


def _skip_line(f) -> int:
  """Reads past the next newline; returns how many bytes were consumed."""
  consumed = 0
  while True:
    chunk = f.readline(_BLOCK)
    if not chunk:
      return consumed
    consumed += len(chunk)
    if chunk.endswith(b"\n"):
      return consumed


def _make_source(file_name: str, input_format: str, max_line_bytes: int,
                 max_doc_bytes: int) -> DocumentSource:
  return DocumentSource(file_name, input_format, max_line_bytes, max_doc_bytes)


class _ParseDocument(beam.DoFn):
  """Format-specific clean-up of a raw document: JSONL objects are decoded,
  and documents left with no text are dropped and counted."""

  def __init__(self, input_format: str, text_field: str):
    self._format = input_format
    self._text_field = text_field

  def process(self, element):
    doc_id, lines = element
    if self._format == "jsonl":
      lines = jsonl_paragraphs(lines[0], self._text_field, metrics.count)
      if lines is None:
        return
    if not lines:
      metrics.count("empty_documents_dropped", 1)
      return
    metrics.count("documents_read", 1)
    yield doc_id, lines


class ReadDocuments(beam.PTransform):
  """Reads every file matching ``patterns`` as documents.

  Output: ``(doc_id, [text lines])``; ``doc_id`` is ``basename:offset``
  (with ``#k`` for the k-th extra document sharing that offset).
  """

  def __init__(self, patterns: List[str], input_format: str = "lines",
               text_field: str = "text",
               max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
               max_doc_bytes: int = DEFAULT_MAX_DOCUMENT_BYTES,
               desired_bundle_size: int = 1 << 20):
    super().__init__()
    self._patterns = list(patterns)
    self._format = input_format
    self._text_field = text_field
    self._max_line_bytes = max_line_bytes
    self._max_doc_bytes = max_doc_bytes
    self._desired_bundle_size = desired_bundle_size

  def expand(self, pbegin):
    source_from_file = functools.partial(
        _make_source, input_format=self._format,
        max_line_bytes=self._max_line_bytes, max_doc_bytes=self._max_doc_bytes)
    return (
        pbegin
        | "Patterns" >> beam.Create(sorted(self._patterns))
        | "ReadRanges" >> filebasedsource.ReadAllFiles(
            splittable=True,
            compression_type=CompressionTypes.AUTO,
            desired_bundle_size=self._desired_bundle_size,
            min_bundle_size=1 << 20,
            source_from_file=source_from_file)
        | "Parse" >> beam.ParDo(_ParseDocument(self._format, self._text_field)))
