"""ReadDocuments: files → ``(doc_id, [text lines])``, one element per document.

The input formats:

* ``lines``: BERT's format. One sentence per line; a blank line (after
  Unicode ``strip()``) ends a document. File boundaries also end one.
* ``wikiextractor``: each ``<doc …>`` … ``</doc>`` block is one document. Its
  first non-blank line is the article title and is dropped.
* ``jsonl``: one JSON object per line; the document text is one field.
* ``parquet``: one document per row of a column (``ParquetDocumentSource``).
* ``wikidump``: MediaWiki XML dumps, one document per article
  (transforms/wikidump.py).

Documents of the first three are found by a splittable ``FileBasedSource``:
a large file is read as byte ranges by several workers. Each document is *claimed* at one byte
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
kept whole up to ``MAX_JSONL_LINE_BYTES`` and set aside beyond).

Records that cannot be used are set aside, never fatal and never silent
(transforms/rejects.py): JSONL lines that are not a JSON object with a string
``text_field``, JSONL lines over ``MAX_JSONL_LINE_BYTES``, documents whose
parsing raises, and files that cannot be read to their end (a cut or corrupt
compressed stream, an I/O error). Of such a file, the documents completed
before the fault are kept; the one the fault cut short is lost with the rest
of the file, and the rejected record names the file and the byte offset where
reading stopped.

Document ids are ``path:offset``: ``path`` is the file's name relative to the
input root, the longest directory prefix of every matched file
(``input_root``), so ``text/AA/wiki_00`` and ``text/AB/wiki_00`` get distinct
ids while the ids do not depend on where the corpus lives (a local folder or
an ``s3://`` prefix) nor on the order of the files.
"""

import functools
import io
import json
import logging
import re
from typing import (Callable, Dict, Iterable, Iterator, List, Optional,
                    Sequence, Tuple, Union)

import apache_beam as beam
from apache_beam.io import filebasedsource
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems
from apache_beam.io.range_trackers import OffsetRangeTracker
from apache_beam.io.restriction_trackers import OffsetRange

from transforms import languages
from transforms import metrics
from transforms import rejects
from transforms import s3_clients
from transforms.paths import (InputError, InputFile, MatchedInput, counting_input_bytes,
                              match_input, relative_name)

FORMATS = ("lines", "wikiextractor", "jsonl", "parquet", "wikidump")
DEFAULT_MAX_LINE_BYTES = 1 << 20
# Formats whose sources split compressed files themselves.
_OWN_SPLITTING = ("parquet", "wikidump")
DEFAULT_MAX_DOCUMENT_BYTES = 8 << 20
BINARY_PROBE_BYTES = 8192
MAX_JSONL_LINE_BYTES = 64 << 20
_BLOCK = 1 << 20
# Input ranges (``range_size``): a corpus is cut into about this many,
# each at least MIN_RANGE_BYTES and at most MAX_RANGE_BYTES.
RANGES_PER_CORPUS = 256
MIN_RANGE_BYTES = 1 << 20
MAX_RANGE_BYTES = 8 << 20
# The most a range's reader buffers (an S3 object's reader asks for its
# buffer's size in each request: DocumentSource.open_file).
_MAX_RANGE_BUFFER = 64 << 20
_BOM = b"\xef\xbb\xbf"
_DOC_OPEN = re.compile(r"^\s*<doc(\s[^>]*)?>\s*$")
_DOC_CLOSE = re.compile(r"^\s*</doc>\s*$")

# A document as it leaves the reader: (doc_id, lines).
Document = Tuple[str, List[str]]
# What the format parsers see: (byte offset of the physical line, text).
Line = Tuple[int, str]
_EOL = re.compile(b"[\r\n]")


def iter_raw_lines(f, start: int, max_line_bytes: Optional[int],
                   count: metrics.Count = metrics.no_count) -> Iterator[Tuple[int, bytes]]:
  """Yields ``(offset, bytes)`` for each line of ``f`` from its current
  position, which is file offset ``start``.

  A line ends at LF, CRLF or a lone CR (old Mac text: a file of CR-only
  lines is as many lines, not one line that a range split would cut);
  the ending is stripped and a CRLF or lone CR counted
  (``crlf_line_endings``, ``lone_cr_line_breaks``). With
  ``max_line_bytes``, a longer line is yielded in pieces cut at whitespace
  (or at a UTF-8 character boundary), each with its own offset, and counted
  as ``long_line_pieces``. Without it (JSONL), a line over
  ``MAX_JSONL_LINE_BYTES`` is skipped and yielded as ``(offset, None)``,
  for the caller to set aside. Raises ``EOFError`` at the end of a
  compressed stream that is cut short (``check_stream_end``), before its
  last line.
  """
  buf = b""
  pos = 0  # start of the current line in buf
  offset = start  # file offset of buf[pos]
  eof = False
  limit = max_line_bytes or MAX_JSONL_LINE_BYTES
  while True:
    # The common case at once: a run of whole lines, none over the limit
    # and none with a CR, split in one call.
    last = buf.rfind(b"\n", pos)
    if last - pos > 1:
      run = buf[pos:last]
      if b"\r" not in run:
        lines = run.split(b"\n")
        if max(map(len, lines)) <= limit:
          for line in lines:
            yield offset, line
            offset += len(line) + 1
          pos = last + 1
          continue
    m = _EOL.search(buf, pos, pos + limit + 1)
    if m and (buf[m.start()] != 13 or m.start() + 1 < len(buf) or eof):
      end = m.start()
      after = end + 1
      if buf[end] == 13:  # CR: CRLF, or a lone CR
        if after < len(buf) and buf[after] == 10:
          after += 1
          count("crlf_line_endings", 1)
        else:
          count("lone_cr_line_breaks", 1)
      yield offset, buf[pos:end]
      offset += after - pos
      pos = after
    elif not m and len(buf) - pos > limit:
      if max_line_bytes:
        cut = _cut_point(buf[pos:pos + limit + 1], limit)
        count("long_line_pieces", 1)
        yield offset, buf[pos:pos + cut]
        offset += cut
        pos += cut
      else:
        # A JSONL line too long to parse: skip to its end.
        yield offset, None
        offset += len(buf) - pos
        buf, pos = b"", 0
        while not eof:
          chunk = f.read(_BLOCK)
          eof = not chunk
          if eof:
            check_stream_end(f)
          nl = _EOL.search(chunk)
          if nl:
            skip = nl.start() + 1
            if chunk[nl.start()] == 13 and chunk[skip:skip + 1] == b"\n":
              skip += 1
            offset += skip
            buf = chunk[skip:]
            break
          offset += len(chunk)
    elif not eof:
      chunk = f.read(_BLOCK)
      if chunk:
        buf = buf[pos:] + chunk
        pos = 0
      else:
        eof = True
        check_stream_end(f)
    else:
      if pos < len(buf):
        yield offset, buf[pos:]
      return


def check_stream_end(f) -> None:
  """Raises ``EOFError`` when ``f``, read to its end, is a compressed file
  whose stream stopped before its end-of-stream marker (a cut ``.gz`` or
  ``.bz2``): Beam's ``CompressedFile`` (2.77) ends such a file silently, as
  if it were whole."""
  decompressor = getattr(f, "_decompressor", None)  # Beam's CompressedFile
  if decompressor is not None and not getattr(decompressor, "eof", True):
    raise EOFError("the compressed stream ends before its end-of-stream "
                   "marker: the file is cut short")


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


def clean_line(raw: bytes, count: metrics.Count = metrics.no_count) -> List[str]:
  """Decodes one line (its ending already cut by ``iter_raw_lines``),
  repairing and counting NUL bytes and invalid UTF-8. Returns one logical
  line, or several where the line still holds a CR (a caller that did not
  split at CRs)."""
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
                       count: metrics.Count = metrics.no_count
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


def group_wikiextractor_format(lines: Iterable[Line], count: metrics.Count = metrics.no_count,
                               max_doc_bytes: int = DEFAULT_MAX_DOCUMENT_BYTES,
                               at_file_start: bool = True
                               ) -> Iterator[Tuple[int, List[str]]]:
  """WikiExtractor: yields ``(offset of <doc>, lines)`` per article, title
  dropped. A ``<doc>`` with no ``</doc>`` ends at the next ``<doc>`` or at the
  end of the file and is counted as ``unterminated_wiki_docs``. An article
  longer than ``max_doc_bytes`` is yielded in parts. An article with no line
  but its title is yielded with no lines (``_ParseDocument`` drops it as
  ``empty_documents_dropped``). Non-blank lines
  outside every ``<doc>`` are counted as ``lines_outside_wiki_docs``; when
  not ``at_file_start``, the lines before the first ``<doc>`` are the tail of
  the previous range's article and are skipped."""
  claim = None
  doc: Optional[List[str]] = None
  size = 0
  title_pending = False
  parts = 0  # parts of the current article already yielded

  def end_article():
    # An article with only its title is yielded empty, claimed like any
    # other (so a range that reads past its end does not count the next
    # range's), then counted read and dropped; the empty end of an article
    # already yielded in parts is nothing more.
    return bool(doc) or not parts

  for offset, text in lines:
    if _DOC_OPEN.match(text):
      if doc is not None:
        count("unterminated_wiki_docs", 1)
        if end_article():
          yield claim, doc
      claim, doc, size, title_pending, parts = offset, [], 0, True, 0
    elif doc is not None:
      if _DOC_CLOSE.match(text):
        if end_article():
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
          doc, size, parts = [], 0, parts + 1
    elif text.strip() and (claim is not None or at_file_start):
      count("lines_outside_wiki_docs", 1)
  if doc is not None:
    count("unterminated_wiki_docs", 1)
    if end_article():
      yield claim, doc


def group_jsonl_format(lines: Iterable[Tuple[int, Optional[str]]]
                       ) -> Iterator[Tuple[int, Optional[List[str]]]]:
  """JSONL: every non-blank line is one document, claimed at its offset. An
  oversized line (text None) comes out as ``(offset, None)``."""
  for offset, text in lines:
    if text is None:
      yield offset, None
    elif text.strip():
      yield offset, [text]


class RecordError(ValueError):
  """A record that cannot be used; ``reason`` names the counter."""

  def __init__(self, reason: str, message: str):
    super().__init__(message)
    self.reason = reason


class _NotText:
  """Stands for an integer too long for Python's ``int`` (over 4,300 digits
  by default): valid JSON, but never text."""


def _parse_int(digits: str):
  try:
    return int(digits)
  except ValueError:
    return _NotText()


_SURROGATE = re.compile("[\ud800-\udfff]")


def language_value(value, field: str) -> str:
  """A record's language: ``value`` of ``--language_field`` if it is a
  language tag (``languages.LANGUAGE_TAG``: "en", "zh-Hans"). Raises
  ``RecordError`` (``records_missing_language``) otherwise."""
  if isinstance(value, str) and languages.LANGUAGE_TAG.fullmatch(value):
    return value
  raise RecordError(
      "records_missing_language",
      "no language tag in field %r (--language_field): %s" % (
          field, "missing" if value is None else
          "%r" % (value[:40] if isinstance(value, str) else value)))


def jsonl_document(line: str, text_field: str,
                   language_field: Optional[str] = None,
                   count: metrics.Count = metrics.no_count
                   ) -> Tuple[List[str], Optional[str]]:
  """``jsonl_paragraphs`` of the line, and with ``language_field`` the
  record's language (``language_value``; raises ``RecordError`` as both
  do)."""
  obj = _jsonl_object(line, text_field)
  language = (language_value(obj.get(language_field), language_field)
              if language_field else None)
  return _jsonl_text(obj, text_field, count), language


def jsonl_paragraphs(line: str, text_field: str, count: metrics.Count = metrics.no_count
                     ) -> List[str]:
  """The non-blank lines of ``text_field`` of one JSONL line.

  Raises ``RecordError`` with reason ``malformed_jsonl_lines`` (not JSON, or
  nested deeper than Python's parser goes, about 1,000 levels: RFC 8259 lets
  a parser limit the depth), or ``jsonl_lines_missing_text_field`` (not an
  object, or no string in that field). Any valid JSON object is read,
  whatever its other fields hold (integers of any length included). Lone
  surrogates (``"\\ud800"`` escapes, which no UTF-8 text holds) become
  U+FFFD, counted as ``lone_surrogates_replaced``.
  """
  return _jsonl_text(_jsonl_object(line, text_field), text_field, count)


def _jsonl_object(line: str, text_field: str) -> Dict:
  try:
    obj = json.loads(line, parse_int=_parse_int)
  except ValueError as e:
    raise RecordError("malformed_jsonl_lines", "not JSON: %s" % e) from None
  except RecursionError:
    raise RecordError("malformed_jsonl_lines",
                      "JSON nested too deep for Python's parser") from None
  if not isinstance(obj, dict):
    raise RecordError("jsonl_lines_missing_text_field",
                      "a JSON %s, not an object" % type(obj).__name__)
  return obj


def _jsonl_text(obj: Dict, text_field: str, count: metrics.Count) -> List[str]:
  text = obj.get(text_field)
  if not isinstance(text, str):
    raise RecordError(
        "jsonl_lines_missing_text_field",
        "no field %r" % text_field if text_field not in obj else
        "field %r holds %s, not a string" % (text_field,
                                             type(text).__name__))
  surrogates = len(_SURROGATE.findall(text))
  if surrogates:
    count("lone_surrogates_replaced", surrogates)
    text = _SURROGATE.sub("\ufffd", text)
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
  """A splittable source of documents in one of ``FORMATS``.

  Yields ``(doc_id, lines)`` per document, and ``rejects.Rejected`` for a
  record set aside (an oversized JSONL line; a file that cannot be read to
  its end)."""

  def __init__(self, file_pattern: str, input_format: str = "lines",
               max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
               max_doc_bytes: int = DEFAULT_MAX_DOCUMENT_BYTES,
               root: str = ""):
    super().__init__(file_pattern,
                     compression_type=CompressionTypes.AUTO,
                     splittable=True,
                     validate=False)
    if input_format not in FORMATS:
      raise ValueError("unknown input format %r" % input_format)
    self._format = input_format
    self._max_line_bytes = max_line_bytes
    self._max_doc_bytes = max_doc_bytes
    self._root = root

  def open_file(self, file_name, buffer_size: Optional[int] = None):
    """``file_name`` as Beam's source opens it, decompressed by its name;
    with ``buffer_size``, an uncompressed S3 object is read ``buffer_size``
    bytes per request (``s3_clients.ObjectReader``): about what the range
    being read needs, where Beam's S3 reader asks for 16 MiB."""
    if (buffer_size and file_name.startswith("s3://")
        and CompressionTypes.detect_compression_type(file_name)
        == CompressionTypes.UNCOMPRESSED):
      return io.BufferedReader(s3_clients.ObjectReader(file_name),
                               buffer_size)
    return super().open_file(file_name)

  @counting_input_bytes
  def read_records(self, file_name, offset_range_tracker):
    start = offset_range_tracker.start_position()
    name = relative_name(file_name, self._root)
    position = [start]  # where reading got to, for a fault's report
    try:
      yield from self._read(file_name, name, offset_range_tracker, position)
    except Exception as e:  # pylint: disable=broad-except
      # A file that cannot be read to its end (a cut or corrupt compressed
      # stream, an I/O error): what was read is kept, the fault reported.
      logging.warning("cannot read %s past byte %d: %s", file_name,
                      position[0], rejects.describe(e))
      yield rejects.Rejected("%s:%d" % (name, position[0]), "read",
                             "unreadable_files", rejects.describe(e))

  def _read(self, file_name, name, offset_range_tracker, position):
    count = metrics.count
    start = offset_range_tracker.start_position()
    with self.open_file(file_name, BINARY_PROBE_BYTES) as f:
      head = f.read(BINARY_PROBE_BYTES)
    if looks_binary(head):
      # Every range of the file decides alike; the first one counts it.
      if start == 0:
        count("binary_files_skipped", 1)
        logging.warning("skipping %s: it looks binary, not text", file_name)
      return
    # The range, the line it cuts at its start and the document it cuts
    # at its end (a block), in one request on S3.
    stop = offset_range_tracker.stop_position()
    with self.open_file(file_name, min(
        _MAX_RANGE_BUFFER,
        max(stop - start, 0) + 2 * _BLOCK)) as f:
      if start > 0:
        f.seek(start - 1)
        # Skip the rest of the line holding byte start-1: it belongs to the
        # range before. The first line read then starts at or after `start`.
        first = start - 1 + _skip_line(f)
      else:
        first = 0
      raw = _tracked(iter_raw_lines(
          f, first,
          None if self._format == "jsonl" else self._max_line_bytes, count),
                     position)
      lines = self._logical_lines(raw, at_file_start=(first == 0), count=count)
      if self._format == "lines":
        docs = group_lines_format(lines, at_file_start=(first == 0),
                                  max_doc_bytes=self._max_doc_bytes,
                                  count=count)
      elif self._format == "wikiextractor":
        docs = group_wikiextractor_format(lines, count, self._max_doc_bytes,
                                          at_file_start=(first == 0))
      else:
        docs = group_jsonl_format(lines)
      last_claim, k = None, 0
      for claim, doc_lines in docs:
        if claim != last_claim:
          if not offset_range_tracker.try_claim(claim):
            return
          last_claim, k = claim, 0
          doc_id = "%s:%d" % (name, claim)
        else:
          # Several documents can share one claim (lone-CR line breaks inside
          # one physical line); a suffix keeps their ids apart.
          k += 1
          doc_id = "%s:%d#%d" % (name, claim, k)
        if doc_lines is None:
          yield rejects.Rejected(
              doc_id, "read", "oversized_lines_dropped",
              "a JSONL line over %d bytes" % MAX_JSONL_LINE_BYTES)
        else:
          yield doc_id, doc_lines

  @staticmethod
  def _logical_lines(raw: Iterable[Tuple[int, Optional[bytes]]],
                     at_file_start: bool, count: metrics.Count) -> Iterator[Line]:
    for offset, data in raw:
      if data is None:
        yield offset, None  # an oversized JSONL line
        continue
      if at_file_start and offset == 0 and data.startswith(_BOM):
        count("byte_order_marks_removed", 1)
        data = data[len(_BOM):]
      text = None
      if b"\r" not in data and b"\x00" not in data:
        try:  # what clean_line does with a line that needs no repair
          text = data.decode("utf-8")
        except UnicodeDecodeError:
          pass
      if text is not None:
        yield offset, text
        continue
      for text in clean_line(data, count):
        yield offset, text


def _tracked(raw: Iterable[Tuple[int, Optional[bytes]]], position: List[int]):
  """``raw`` lines, noting in ``position[0]`` the offset of the last one."""
  for offset, data in raw:
    position[0] = offset
    yield offset, data


def _skip_line(f) -> int:
  """Reads past the end of the current line (LF, CRLF or a lone CR, as
  ``iter_raw_lines`` ends lines) and leaves ``f`` there; returns how many
  bytes that is. ``f`` must be seekable (only uncompressed files are read
  from a range's middle)."""
  base = f.tell()
  consumed = 0
  while True:
    chunk = f.read(_BLOCK)
    if not chunk:
      break
    m = _EOL.search(chunk)
    if m is None:
      consumed += len(chunk)
      continue
    end = m.start() + 1
    if chunk[m.start()] == 13:
      if end == len(chunk):
        end += 1 if f.read(1) == b"\n" else 0
      elif chunk[end] == 10:
        end += 1
    consumed += end
    break
  f.seek(base + consumed)
  return consumed


def parquet_row_group_offsets(parquet_file) -> List[Tuple[int, int]]:
  """``(offset, group)`` for each row group of a ``pyarrow.parquet.
  ParquetFile`` that holds rows, sorted by offset: where the group's first
  column chunk starts in bytes (its dictionary page, or data page when it
  has none). An empty row group is left out: it holds nothing to read, and
  writers give it offsets of 0 (pyarrow's ``ParquetWriter`` given an empty
  table does), out of order with the rest. The sort makes the claims grow
  whatever order the footer lists the groups in."""
  offsets = []
  metadata = parquet_file.metadata
  for i in range(metadata.num_row_groups):
    group = metadata.row_group(i)
    if group.num_rows == 0:
      continue
    column = group.column(0)
    offset = column.data_page_offset
    if column.has_dictionary_page and column.dictionary_page_offset:
      offset = min(offset, column.dictionary_page_offset)
    offsets.append((offset, i))
  return sorted(offsets)


def parquet_texts(values, count: metrics.Count = metrics.no_count
                  ) -> Iterator[Tuple[int, str]]:
  """``(row, text)`` for each string value of a column's row group; a null
  (``parquet_null_texts``) or a non-string value (``parquet_non_string_texts``)
  is counted as read and dropped."""
  for row, value in enumerate(values):
    if value is None:
      count("documents_read", 1)
      count("parquet_null_texts", 1)
    elif not isinstance(value, str):
      count("documents_read", 1)
      count("parquet_non_string_texts", 1)
    else:
      yield row, value


class ParquetDocumentSource(filebasedsource.FileBasedSource):
  """The ``text_field`` column of Parquet files, one document per row, split
  across workers by row groups (a row group is claimed at the byte offset
  where it starts, as Beam's own Parquet source does).

  Yields ``(doc_id, paragraphs)`` with ``doc_id`` = ``path:offset#row``
  (the row group's offset, the row within it), and ``rejects.Rejected`` for
  a file that cannot be read (not Parquet, no such column)."""

  def __init__(self, file_pattern: str, text_field: str, root: str = "",
               language_field: Optional[str] = None):
    super().__init__(file_pattern,
                     compression_type=CompressionTypes.UNCOMPRESSED,
                     splittable=True, validate=False)
    self._text_field = text_field
    self._root = root
    self._language_field = language_field

  @counting_input_bytes
  def read_records(self, file_name, offset_range_tracker):
    import pyarrow.parquet as pq  # pylint: disable=import-outside-toplevel
    name = relative_name(file_name, self._root)
    start = offset_range_tracker.start_position() or 0
    claimed = start
    in_group = False  # a fault before any row group is the whole file's
    try:
      with self.open_file(file_name) as f:
        parquet_file = pq.ParquetFile(f)
        names = parquet_file.schema_arrow.names
        for field, flag in ((self._text_field, "--text_field"),
                            (self._language_field, "--language_field")):
          if field and field not in names:
            raise ValueError("no column %r (%s); its columns: %s"
                             % (field, flag, ", ".join(names)))
        for offset, group in parquet_row_group_offsets(parquet_file):
          if offset < start:
            continue
          if not offset_range_tracker.try_claim(offset):
            return
          claimed, in_group = offset, True
          table = parquet_file.read_row_group(
              group, columns=[self._text_field] + (
                  [self._language_field] if self._language_field else []))
          tags = (table.column(1).to_pylist() if self._language_field
                  else None)
          for row, text in parquet_texts(table.column(0).to_pylist(),
                                         metrics.count):
            doc_id = "%s:%d#%d" % (name, offset, row)
            if tags is not None:
              try:
                doc_id = languages.with_language(doc_id, language_value(
                    tags[row], self._language_field))
              except RecordError as e:
                yield rejects.Rejected(doc_id, "read", e.reason, str(e),
                                       text[:rejects.SAMPLE_CHARS])
                continue
            paragraphs = [t for t in text.splitlines() if t.strip()]
            if paragraphs:
              yield doc_id, paragraphs
            else:  # a document record, read and dropped here
              metrics.count("documents_read", 1)
              metrics.count("empty_documents_dropped", 1)
    except Exception as e:  # pylint: disable=broad-except
      if not in_group and start > 0:
        return  # every range of the file meets it: the first one reports
      logging.warning("cannot read %s past byte %d: %s", file_name, claimed,
                      rejects.describe(e))
      yield rejects.Rejected("%s:%d" % (name, claimed), "read",
                             "unreadable_files", rejects.describe(e))


def _wikidump():
  """transforms/wikidump.py, imported by the jobs that read dumps only: its
  two dozen regular expressions took 7 ms of every other job's start."""
  from transforms import wikidump  # pylint: disable=import-outside-toplevel
  return wikidump


def _make_source(file_name: str, input_format: str, max_line_bytes: int,
                 max_doc_bytes: int, root: str, text_field: str = "text",
                 language_field: Optional[str] = None):
  if input_format == "parquet":
    return ParquetDocumentSource(file_name, text_field, root, language_field)
  if input_format == "wikidump":
    return _wikidump().WikiDumpSource(file_name, root)
  return DocumentSource(file_name, input_format, max_line_bytes, max_doc_bytes,
                        root)


class _ParseDocument(beam.DoFn):
  """Format-specific clean-up of a raw document: JSONL objects are decoded,
  documents left with no text are dropped and counted, and records the
  reader or the parse set aside go to the ``REJECTED`` output."""

  def __init__(self, input_format: str, text_field: str,
               language_field: Optional[str] = None):
    self._format = input_format
    self._text_field = text_field
    self._language_field = language_field

  def process(self, element: Union[rejects.Rejected, Tuple[str, List[str]]]):
    if isinstance(element, rejects.Rejected):
      yield rejects.tagged(element)
      return
    doc_id, lines = element
    try:
      if self._format == "jsonl":
        lines, language = jsonl_document(lines[0], self._text_field,
                                         self._language_field, metrics.count)
        if language:
          doc_id = languages.with_language(doc_id, language)
    except RecordError as e:
      yield rejects.reject(doc_id, "parse", e.reason, str(e), lines[0])
      return
    except Exception as e:  # pylint: disable=broad-except
      yield rejects.reject_exception(doc_id, "parse", e, lines[0])
      return
    if not lines:
      metrics.count("empty_documents_dropped", 1)
      return
    yield doc_id, lines


def range_size(total_bytes: int) -> int:
  """The bytes of each input range for a corpus of ``total_bytes``: its
  ``1/RANGES_PER_CORPUS``, within ``[MIN_RANGE_BYTES, MAX_RANGE_BYTES]``.
  Many ranges keep the workers evenly busy; each one costs two requests on
  an object store (the binary probe, then the range with up to
  ``2 * _BLOCK`` past its end for the document it cuts), so from 256 MB on
  the ranges grow: a 1 MiB range of an S3 object reads 3 MiB."""
  return int(min(MAX_RANGE_BYTES,
                 max(MIN_RANGE_BYTES, total_bytes // RANGES_PER_CORPUS)))


def file_ranges(files: Sequence[InputFile], desired_bundle_size: int,
                min_bundle_size: int, split_compressed: bool
                ) -> Iterator[Tuple[str, int, int]]:
  """``(path, start, stop)`` byte ranges that cover each file once.

  A file Beam reads through a decompressor (``.gz``, ``.bz2``, … by its
  name) is one range to ``OFFSET_INFINITY`` unless ``split_compressed``
  (Parquet and dumps, whose sources find their own row groups and bz2
  streams). An empty file is one empty range."""
  for f in files:
    compressed = (CompressionTypes.detect_compression_type(f.path)
                  != CompressionTypes.UNCOMPRESSED)
    if compressed and not split_compressed:
      yield f.path, 0, OffsetRangeTracker.OFFSET_INFINITY
      continue
    if f.size == 0:
      # Read too, as one empty range: a text file yields nothing, while an
      # empty Parquet file (no footer) is set aside, not skipped unsaid.
      yield f.path, 0, 0
      continue
    for split in OffsetRange(0, f.size).split(desired_bundle_size,
                                              min_bundle_size):
      yield f.path, split.start, split.stop


class _ReadRange(beam.DoFn):
  """Reads one byte range of one file with the format's source. The path is
  the file's own name, never matched again as a pattern (a file named
  ``doc[1].txt`` is read as itself). Every document record the source gives
  (a document, or one set aside) counts as ``documents_read``; records the
  sources drop themselves count there as they drop them."""

  def __init__(self, source_from_file: Callable[[str], object]):
    self._source_from_file = source_from_file

  def setup(self):
    s3_clients.share_s3_clients()

  def process(self, element: Tuple[str, int, Union[int, float]]):
    # stop: OffsetRangeTracker.OFFSET_INFINITY (a float) for a compressed
    # file read whole.
    path, start, stop = element
    source = self._source_from_file(path)
    for record in source.read_records(path, OffsetRangeTracker(start, stop)):
      if not (isinstance(record, rejects.Rejected)
              and record.reason in metrics.FILE_REJECT_REASONS):
        metrics.count("documents_read", 1)
      yield record


class ReadDocuments(beam.PTransform):
  """Reads every matched file as documents, each file once.

  Output: a pair of PCollections, ``(documents, rejected)``: documents are
  ``(doc_id, [text lines])`` with ``doc_id`` = ``path:offset`` (``path``
  relative to the input's root; ``#k`` added for the k-th extra document
  sharing that offset; with ``language_field``, a JSONL or Parquet
  record's language in that field, ``@language`` added:
  ``languages.with_language``); rejected are ``rejects.Rejected``.

  Args:
    source: the ``paths.MatchedInput`` to read, or ``--input`` patterns,
      then matched once here (``paths.match_input``).
    desired_bundle_size: the bytes of each file range; by default
      ``range_size`` of the matched files' total.
    spread: redistribute the file ranges over the workers (a Reshuffle).
      ``False`` for a job with one worker, where it has nothing to spread
      and its stages only lengthen the job's start
      (``runners.direct.one_worker``).
  Raises ``paths.InputError`` (when matching) as ``match_files`` does.
  """

  def __init__(self, source: Union[MatchedInput, Sequence[str]], *,
               input_format: str = "lines", text_field: str = "text",
               max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
               max_doc_bytes: int = DEFAULT_MAX_DOCUMENT_BYTES,
               desired_bundle_size: Optional[int] = None,
               language_field: Optional[str] = None, spread: bool = True):
    super().__init__()
    self._language_field = language_field
    self._spread = spread
    self._input = (source if isinstance(source, MatchedInput)
                   else match_input(source))
    self._format = input_format
    self._text_field = text_field
    self._max_line_bytes = max_line_bytes
    self._max_doc_bytes = max_doc_bytes
    self._desired_bundle_size = desired_bundle_size

  def expand(self, pbegin):
    root = self._input.root
    source_from_file = functools.partial(
        _make_source, input_format=self._format,
        max_line_bytes=self._max_line_bytes, max_doc_bytes=self._max_doc_bytes,
        root=root, text_field=self._text_field,
        language_field=self._language_field)
    ranges = list(file_ranges(
        self._input.files,
        self._desired_bundle_size or range_size(
            sum(f.size for f in self._input.files)),
        min_bundle_size=MIN_RANGE_BYTES,
        split_compressed=self._format in _OWN_SPLITTING))
    parsed = (
        pbegin
        # Create's reshuffle spreads the ranges over the workers.
        | "Ranges" >> beam.Create(ranges, reshuffle=self._spread)
        | "ReadRanges" >> beam.ParDo(_ReadRange(source_from_file))
        | "Parse" >> beam.ParDo(_ParseDocument(
            self._format, self._text_field,
            self._language_field)).with_outputs(
                rejects.REJECTED, main="documents"))
    return parsed.documents, parsed[rejects.REJECTED]


def check_first_file(paths: Sequence[str], input_format: str,
                     text_field: str,
                     language_field: Optional[str] = None) -> None:
  """Raises ``InputError`` when the first of a pattern's ``paths`` cannot be
  read as ``input_format`` (Parquet: its columns; dumps: its XML root), so a
  wrong format or column fails before the job; another bad file is set aside
  during the job."""
  if input_format == "parquet":
    check_parquet_column(paths[0], text_field)
    if language_field:
      check_parquet_column(paths[0], language_field, "--language_field")
  elif input_format == "wikidump":
    wikidump = _wikidump()
    dumps = [p for p in paths if not wikidump.is_index_file(p)]
    if not dumps:
      raise InputError("%s holds only multistream indexes, no dump "
                       "(--input_format=wikidump)" % paths[0])
    wikidump.check_wikidump(dumps[0])


def check_parquet_column(path: str, text_field: str,
                         flag: str = "--text_field") -> None:
  """Raises ``InputError`` unless ``path`` is a Parquet file with a column
  ``text_field`` (the first file of each pattern is checked before the
  job; another file without it is set aside during the job)."""
  import pyarrow.parquet as pq  # pylint: disable=import-outside-toplevel
  try:
    with FileSystems.open(path) as f:
      names = pq.ParquetFile(f).schema_arrow.names
  except Exception as e:  # pylint: disable=broad-except
    raise InputError("cannot read %s as Parquet (--input_format=parquet): %s"
                     % (path, rejects.describe(e, last=True))) from None
  if text_field not in names:
    raise InputError("%s has no column %r (%s); its columns: %s"
                     % (path, text_field, flag, ", ".join(names))) from None
