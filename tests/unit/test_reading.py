"""The document reader: format parsing, repair of dirty bytes, and splitting
of large files into byte ranges without losing or repeating a document."""

import bz2
import collections
import gzip
import io
import json
import os
import random

import apache_beam as beam
import pytest
import zstandard
from apache_beam.testing.util import assert_that, equal_to

from tests.helpers import (PARQUET_GROUPS_15_0_15, local_test_pipeline,
                           read_source, write_parquet_row_groups)
from transforms import paths
from transforms import reading
from transforms import rejects


def _lines(*texts):
  """(offset, text) pairs with offsets as in a file joined by newlines."""
  out, offset = [], 0
  for t in texts:
    out.append((offset, t))
    offset += len(t.encode()) + 1
  return out


def test_lines_format_groups_on_blank_lines():
  lines = _lines("a1", "a2", "", "  \u3000 ", "b1", "", "c1")
  docs = list(reading.group_lines_format(lines, at_file_start=True))
  assert [d for _, d in docs] == [["a1", "a2"], ["b1"], ["c1"]]
  # Claims: 0 for the first document, else the blank line right before.
  assert [c for c, _ in docs] == [0, lines[3][0], lines[5][0]]


def test_lines_format_skips_the_previous_ranges_tail():
  lines = _lines("tail", "", "b1")
  docs = list(reading.group_lines_format(lines, at_file_start=False))
  assert [d for _, d in docs] == [["b1"]]


def test_clean_line_repairs_and_counts():
  counts = collections.Counter()

  def count(name, n=1):
    counts[name] += n

  assert reading.clean_line(b"abc\r", count) == ["abc"]
  assert reading.clean_line(b"a\x00b\x00", count) == ["ab"]
  assert reading.clean_line(b"one\rtwo", count) == ["one", "two"]
  assert reading.clean_line(b"caf\xe9", count) == ["caf\ufffd"]
  assert counts == {"crlf_line_endings": 1, "nul_bytes_removed": 2,
                    "lone_cr_line_breaks": 1, "invalid_utf8_lines": 1}


def test_long_lines_are_cut_at_whitespace():
  data = (b"word " * 1000) + b"\nshort\n"
  pieces = list(reading.iter_raw_lines(io.BytesIO(data), 0, 1024))
  assert all(len(p) <= 1024 for _, p in pieces)
  assert b"".join(p for _, p in pieces[:-1]) == b"word " * 1000
  assert pieces[-1] == (5000 + 1, b"short")
  # Every piece but the last ends at a word boundary.
  assert all(p.endswith(b" ") for _, p in pieces[:-2])


def test_long_line_without_whitespace_is_cut_at_character_boundaries():
  data = ("é" * 3000).encode()
  pieces = list(reading.iter_raw_lines(io.BytesIO(data), 0, 1025))
  assert b"".join(p for _, p in pieces) == data
  for _, p in pieces:
    p.decode("utf-8")  # no piece splits a character


def test_wikiextractor_documents_drop_titles():
  counts = collections.Counter()
  lines = _lines('<doc id="1" url="u" title="T">', "Title One", "", "Para one.",
                 "", "Para two.", "</doc>", "stray", '<doc id="2">', "Title Two",
                 "Only para.")
  docs = list(reading.group_wikiextractor_format(
      lines, lambda n, k=1: counts.update({n: k})))
  assert [d for _, d in docs] == [["Para one.", "Para two."], ["Only para."]]
  assert [c for c, _ in docs] == [0, lines[8][0]]
  assert counts == {"unterminated_wiki_docs": 1, "lines_outside_wiki_docs": 1}


def test_wikiextractor_counts_every_dropped_piece():
  counts = collections.Counter()
  lines = _lines("stray one", "stray two", "", '<doc id="1" title="T">',
                 "Title only", "</doc>", '<doc id="2">', "Title", "", "Text.",
                 "</doc>", '<doc id="3">', "Unterminated title only")
  docs = list(reading.group_wikiextractor_format(
      lines, lambda n, k=1: counts.update({n: k})))
  assert [d for _, d in docs] == [[], ["Text."], []]
  # Articles with only a title come out empty, for the range that claims
  # them to count (read, then dropped by _ParseDocument).
  assert counts == {"lines_outside_wiki_docs": 2,
                    "unterminated_wiki_docs": 1}
  # Not at the file start, the lines before the first <doc> are the tail of
  # the previous range's article (that range counts them), not strays.
  counts.clear()
  list(reading.group_wikiextractor_format(
      lines, lambda n, k=1: counts.update({n: k}), at_file_start=False))
  assert counts["lines_outside_wiki_docs"] == 0


def test_jsonl_paragraphs():
  counts = collections.Counter()
  count = lambda n, k=1: counts.update({n: k})
  assert reading.jsonl_paragraphs(
      json.dumps({"text": "P one.\n\nP two.", "id": 3}), "text", count) == [
          "P one.", "P two."]
  for line, reason in [
      ("{not json", "malformed_jsonl_lines"),
      ('{"text": "x"} trailing', "malformed_jsonl_lines"),
      ('{"body": "x"}', "jsonl_lines_missing_text_field"),
      ('{"text": 5}', "jsonl_lines_missing_text_field"),
      ('{"text": %s}' % ("7" * 5000), "jsonl_lines_missing_text_field"),
      ('[1, 2]', "jsonl_lines_missing_text_field")]:
    with pytest.raises(reading.RecordError) as e:
      reading.jsonl_paragraphs(line, "text", count)
    assert e.value.reason == reason, line
  assert not counts


def test_valid_json_is_read_whatever_its_other_fields_hold():
  counts = collections.Counter()
  count = lambda n, k=1: counts.update({n: k})
  # Python's json refuses integers over 4,300 digits; they are valid JSON.
  line = '{"id": %s, "text": "Kept text."}' % ("9" * 5000)
  assert reading.jsonl_paragraphs(line, "text", count) == ["Kept text."]
  line = '{"n": -%s.5e3, "a": [[{}]], "text": "Also kept."}' % ("1" * 5000)
  assert reading.jsonl_paragraphs(line, "text", count) == ["Also kept."]
  # A lone surrogate escape is valid JSON but no text: replaced, counted.
  assert reading.jsonl_paragraphs('{"text": "a\\ud800b"}', "text",
                                  count) == ["a\ufffdb"]
  assert counts == {"lone_surrogates_replaced": 1}


def test_document_ids_are_unique_across_folders(tmp_path):
  """WikiExtractor's own layout: text/AA/wiki_00, text/AB/wiki_00."""
  for folder in ("AA", "AB"):
    os.makedirs(str(tmp_path / "text" / folder))
    _write(tmp_path / "text" / folder, "wiki_00",
           b'<doc id="1">\nTitle\nText of %s.\n</doc>\n' % folder.encode())
  pattern = str(tmp_path / "text" / "*" / "wiki_00")
  root = paths.match_input([pattern]).root
  assert root == str(tmp_path / "text") + "/"
  ids = sorted(i for f in ("AA", "AB") for i, _ in read_source(
      str(tmp_path / "text" / f / "wiki_00"), "wikiextractor", root=root))
  assert ids == ["AA/wiki_00:0", "AB/wiki_00:0"]
  # The ids do not depend on where the corpus lives, nor on file order.
  assert paths.input_root(["s3://bucket/x/text/AB/wiki_00",
                             "s3://bucket/x/text/AA/wiki_00"]) == (
                                 "s3://bucket/x/text/")
  assert paths.input_root(["/data/one.txt"]) == "/data/"
  assert reading.relative_name("/data/one.txt", "/data/") == "one.txt"


def test_truncated_compressed_file_is_reported_and_keeps_what_was_read(
    tmp_path):
  data = b"".join(b"Sentence %d of document %d.\n\n" % (i, i)
                  for i in range(20000))
  whole = gzip.compress(data)
  path = _write(tmp_path, "cut.txt.gz", whole[:len(whole) // 2])
  out = _read_all(path, "lines")
  docs = [r for r in out if not isinstance(r, rejects.Rejected)]
  rejected = [r for r in out if isinstance(r, rejects.Rejected)]
  assert len(rejected) == 1
  assert rejected[0].reason == "unreadable_files"
  assert rejected[0].stage == "read"
  assert "EOFError" in rejected[0].error
  name, offset = rejects.split_doc_id(rejected[0].doc_id)
  assert name == "cut.txt.gz" and 0 < offset < len(data)
  # Every document before the fault is kept, whole.
  assert 1000 < len(docs) < 20000
  assert [d for _, d in docs] == [["Sentence %d of document %d." % (i, i)]
                                  for i in range(len(docs))]


def _read_all(path, fmt, bundle_size=None):
  return read_source(path, fmt, bundle_size)


def _write(tmp_path, name, data: bytes):
  path = os.path.join(str(tmp_path), name)
  with open(path, "wb") as f:
    f.write(data)
  return path


def _lines_corpus(n=60):
  parts = []
  for i in range(n):
    parts.append("\n".join("doc %d sentence %d %s" % (i, j, "x" * (i % 7))
                           for j in range(1 + i % 4)))
  # Some documents are separated by several blank or whitespace lines.
  return ("\n\n".join(parts[:30]) + "\n\n \n\t\n" + "\n\n".join(parts[30:])
          + "\n").encode()


@pytest.mark.parametrize("bundle_size", [1, 7, 33, 100, 1000])
def test_splits_read_every_document_once_lines(tmp_path, bundle_size):
  path = _write(tmp_path, "c.txt", _lines_corpus())
  whole = _read_all(path, "lines")
  assert len(whole) == 60
  assert sorted(_read_all(path, "lines", bundle_size)) == sorted(whole)


@pytest.mark.parametrize("bundle_size", [1, 13, 64, 500])
def test_splits_read_every_document_once_wikiextractor(tmp_path, bundle_size):
  docs = []
  for i in range(40):
    docs.append('<doc id="%d" url="x" title="T%d">\nT%d\n\nFirst %d.\n\n'
                'Second %d.\n</doc>\n' % (i, i, i, i, i))
  path = _write(tmp_path, "wiki", "".join(docs).encode())
  whole = _read_all(path, "wikiextractor")
  assert [d for _, d in whole][:2] == [["First 0.", "Second 0."],
                                       ["First 1.", "Second 1."]]
  assert len(whole) == 40
  assert sorted(_read_all(path, "wikiextractor", bundle_size)) == sorted(whole)


@pytest.mark.parametrize("bundle_size", [1, 10, 77])
def test_splits_read_every_document_once_jsonl(tmp_path, bundle_size):
  lines = [json.dumps({"text": "Doc %d. It has text." % i}) for i in range(50)]
  path = _write(tmp_path, "c.jsonl", ("\n".join(lines) + "\n").encode())
  whole = _read_all(path, "jsonl")
  assert len(whole) == 50
  assert sorted(_read_all(path, "jsonl", bundle_size)) == sorted(whole)


def test_compressed_files_read_like_plain_ones(tmp_path):
  data = _lines_corpus()
  plain = _read_all(_write(tmp_path, "c.txt", data), "lines")
  gz = _read_all(_write(tmp_path, "c.txt.gz", gzip.compress(data)), "lines")
  bz = _read_all(_write(tmp_path, "c.txt.bz2", bz2.compress(data)), "lines")
  zst = _read_all(_write(tmp_path, "c.txt.zst",
                         zstandard.ZstdCompressor().compress(data)), "lines")
  strip = lambda docs: sorted(d for _, d in docs)
  assert strip(gz) == strip(plain) == strip(bz) == strip(zst)
  # Ids are basename:offset, offsets in the decompressed stream.
  assert sorted(i.split(":")[1] for i, _ in gz) == sorted(
      i.split(":")[1] for i, _ in plain)


def test_lone_cr_documents_get_distinct_ids(tmp_path):
  path = _write(tmp_path, "mac.txt", b"a one\ra two\r\rb one\r\rc one\r")
  docs = _read_all(path, "lines")
  assert [d for _, d in docs] == [["a one", "a two"], ["b one"], ["c one"]]
  assert len({i for i, _ in docs}) == 3


def test_byte_order_mark_is_removed(tmp_path):
  path = _write(tmp_path, "bom.txt", b"\xef\xbb\xbfFirst line.\nSecond.\n")
  assert [d for _, d in _read_all(path, "lines")] == [["First line.",
                                                        "Second."]]


def test_read_documents_transform(tmp_path):
  _write(tmp_path, "a.txt", b"a1\na2\n\nb1\n")
  _write(tmp_path, "b.jsonl", b"")
  _write(tmp_path, "c.txt", b"c1\r\n\r\n\r\nd1\r\n")
  pattern = os.path.join(str(tmp_path), "*.txt")
  with local_test_pipeline() as p:
    docs, rejected = p | reading.ReadDocuments([pattern])
    assert_that(docs, equal_to([("a.txt:0", ["a1", "a2"]),
                                ("a.txt:6", ["b1"]),
                                ("c.txt:0", ["c1"]),
                                ("c.txt:6", ["d1"])]))
    assert_that(rejected, equal_to([]), label="no rejects")


@pytest.mark.parametrize("spread", [True, False])
def test_read_documents_transform_reads_plain_and_compressed_files(tmp_path,
                                                                   spread):
  """A compressed file is one range read to its end (its stop is
  ``OffsetRangeTracker.OFFSET_INFINITY``, a float) beside the plain files'
  ranges: the graph builds with Beam's type checks and reads both, spread
  over the workers or not."""
  _write(tmp_path, "a.txt", b"a1\na2\n\nb1\n")
  _write(tmp_path, "c.txt.gz", gzip.compress(b"c1\n\nd1\n"))
  with local_test_pipeline() as p:
    docs, rejected = p | reading.ReadDocuments(
        [os.path.join(str(tmp_path), "*")], spread=spread)
    assert_that(docs, equal_to([("a.txt:0", ["a1", "a2"]),
                                ("a.txt:6", ["b1"]),
                                ("c.txt.gz:0", ["c1"]),
                                ("c.txt.gz:3", ["d1"])]))
    assert_that(rejected, equal_to([]), label="no rejects")


def test_read_documents_jsonl_sets_bad_lines_aside(tmp_path):
  _write(tmp_path, "a.jsonl",
         b'{"body": "One. Two."}\nnot json\n{"body": "Three."}\n{"text": "x"}\n')
  with local_test_pipeline() as p:
    docs, rejected = p | reading.ReadDocuments(
        [os.path.join(str(tmp_path), "a.jsonl")], input_format="jsonl",
        text_field="body")
    assert_that(docs, equal_to([("a.jsonl:0", ["One. Two."]),
                                ("a.jsonl:31", ["Three."])]))
    assert_that(
        rejected | beam.Map(lambda r: (r.doc_id, r.stage, r.reason, r.sample)),
        equal_to([("a.jsonl:22", "parse", "malformed_jsonl_lines", "not json"),
                  ("a.jsonl:50", "parse", "jsonl_lines_missing_text_field",
                   '{"text": "x"}')]), label="rejected")


def _parquet(path, texts, row_group_size=7, name="text"):
  import pyarrow as pa  # pylint: disable=import-outside-toplevel
  import pyarrow.parquet as pq  # pylint: disable=import-outside-toplevel
  pq.write_table(pa.table({name: texts, "id": list(range(len(texts)))}),
                 str(path), row_group_size=row_group_size)
  return str(path)


def _read_parquet(path, bundle_size=None, text_field="text"):
  source = reading.ParquetDocumentSource(path, text_field)
  bundles = ([None] if bundle_size is None else
             source.split(desired_bundle_size=bundle_size))
  out = []
  for bundle in bundles:
    src = source if bundle is None else bundle.source
    tracker = src.get_range_tracker(
        None if bundle is None else bundle.start_position,
        None if bundle is None else bundle.stop_position)
    out.extend(src.read(tracker))
  return out


@pytest.mark.parametrize("bundle_size", [None, 1, 200, 1000])
def test_parquet_rows_are_documents_split_by_row_groups(tmp_path,
                                                        bundle_size):
  texts = ["Row %d says one thing.\nAnd then a second paragraph." % i
           for i in range(60)]
  texts[5] = None
  texts[9] = "   "
  path = _parquet(tmp_path / "c.parquet", texts)
  docs = _read_parquet(path, bundle_size)
  # Every row with text once, whatever the split; ids stable.
  assert len(docs) == 58
  assert len({d for d, _ in docs}) == 58
  assert sorted(docs) == sorted(_read_parquet(path))
  assert all(len(paragraphs) == 2 for _, paragraphs in docs)
  offsets = {d.split(":")[1].split("#")[0] for d, _ in docs}
  assert len(offsets) == 9  # 60 rows in row groups of 7


def test_parquet_nulls_and_non_strings_are_counted(tmp_path):
  counts = collections.Counter()
  values = ["text", None, 3, "more", None]
  assert list(reading.parquet_texts(values, lambda n, k=1: counts.update(
      {n: k}))) == [(0, "text"), (3, "more")]
  # Each dropped row is a document record read: documents_read counts it.
  assert counts == {"parquet_null_texts": 2, "parquet_non_string_texts": 1,
                    "documents_read": 3}


def test_parquet_without_the_column_is_set_aside(tmp_path):
  path = _parquet(tmp_path / "other.parquet", ["a", "b"], name="body")
  [rejected] = _read_parquet(path)
  assert isinstance(rejected, rejects.Rejected)
  assert rejected.reason == "unreadable_files"


def _datasets_texts(path, tmp_path, monkeypatch):
  """The ``text`` column as Hugging Face ``datasets`` reads it, offline,
  with its cache under ``tmp_path``."""
  for name in ("HF_DATASETS_OFFLINE", "HF_HUB_OFFLINE"):
    monkeypatch.setenv(name, "1")
  monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
  import datasets  # pylint: disable=import-outside-toplevel
  # Read at its import: set too for a process that imported it before.
  monkeypatch.setattr(datasets.config, "HF_DATASETS_OFFLINE", True)
  monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True, raising=False)
  datasets.disable_progress_bars()
  dataset = datasets.load_dataset("parquet", data_files=path, split="train",
                                  cache_dir=str(tmp_path / "hf-cache"))
  return list(dataset["text"])


@pytest.mark.parametrize("bundle_size", [None, 1, 64, 200])
def test_parquet_with_an_empty_row_group_reads_what_datasets_reads(
    tmp_path, monkeypatch, bundle_size):
  """Row groups of 15, 0 and 15 rows (pyarrow gives the empty one offsets
  of 0): every row read once, as ``datasets`` reads the file, whole or in
  small ranges."""
  path = write_parquet_row_groups(tmp_path / "groups.parquet",
                                  PARQUET_GROUPS_15_0_15)
  import pyarrow.parquet as pq  # pylint: disable=import-outside-toplevel
  assert [pq.ParquetFile(path).metadata.row_group(i).num_rows
          for i in range(3)] == [15, 0, 15]
  expected = _datasets_texts(path, tmp_path, monkeypatch)
  assert len(expected) == 30
  out = _read_parquet(path, bundle_size)
  assert not [r for r in out if isinstance(r, rejects.Rejected)]
  assert len({doc_id for doc_id, _ in out}) == 30
  assert sorted("\n".join(paragraphs) for _, paragraphs in out) == sorted(
      expected)


@pytest.mark.parametrize("fmt", ["lines", "wikiextractor", "jsonl"])
def test_cr_only_line_endings_read_as_lf_in_every_split(tmp_path, fmt):
  """Old Mac text (lines ended by a lone CR): every document read once in
  any split, as the same text with LF endings is (same offsets, one byte
  per ending). Reading treated the whole file as one line, and a range
  after the first skipped 'the rest of its line', the whole file."""
  rng = random.Random(11)
  docs = []
  for d in range(300):
    sentences = ["Sentence %d of document %d says %s." % (
        s, d, " ".join(rng.choice(["alpha", "beta", "gamma"])
                       for _ in range(rng.randint(1, 12))))
                 for s in range(rng.randint(1, 6))]
    docs.append(sentences)
  if fmt == "lines":
    text = "\n\n".join("\n".join(d) for d in docs) + "\n"
  elif fmt == "wikiextractor":
    text = "".join('<doc id="%d">\nTitle %d\n%s\n</doc>\n' % (
        i, i, "\n".join(d)) for i, d in enumerate(docs))
  else:
    text = "".join(json.dumps({"text": " ".join(d)}) + "\n" for d in docs)
  lf = _write(tmp_path, "lf.txt", text.encode())
  cr = _write(tmp_path, "cr.txt", text.replace("\n", "\r").encode())
  crlf = _write(tmp_path, "crlf.txt", text.replace("\n", "\r\n").encode())
  def read(path, bundle_size=None):  # ids without the file's name
    return sorted((i.split(":", 1)[1], d)
                  for i, d in read_source(path, fmt, bundle_size))

  expected = read(lf)
  assert len(expected) == len(docs)
  for bundle_size in (None, 1000, 4096, 100000):
    assert read(cr, bundle_size) == expected, bundle_size
    got = read_source(crlf, fmt, bundle_size)
    assert sorted(d for _, d in got) == sorted(d for _, d in expected)
    assert len({i for i, _ in got}) == len(docs)


def test_line_endings_are_counted_once_each(tmp_path):
  counts = collections.Counter()
  path = _write(tmp_path, "mixed.txt", b"a\r\nb\rc\nd\r\r\ne")
  with open(path, "rb") as f:
    lines = list(reading.iter_raw_lines(
        f, 0, 1 << 20, lambda n, k=1: counts.update({n: k})))
  assert lines == [(0, b"a"), (3, b"b"), (5, b"c"), (7, b"d"), (9, b""),
                   (11, b"e")]
  assert counts == {"crlf_line_endings": 2, "lone_cr_line_breaks": 2}


def test_empty_files_are_read_and_an_empty_parquet_is_set_aside(tmp_path):
  _write(tmp_path, "empty.txt", b"")
  _write(tmp_path, "empty.parquet", b"")
  _write(tmp_path, "a.txt", b"one\n")
  with local_test_pipeline() as p:
    docs, rejected = p | reading.ReadDocuments(
        [str(tmp_path / "*.txt")])
    assert_that(docs, equal_to([("a.txt:0", ["one"])]))
    assert_that(rejected, equal_to([]), label="no rejects")
  with local_test_pipeline() as p:
    docs, rejected = p | reading.ReadDocuments(
        [str(tmp_path / "*.parquet")], input_format="parquet")
    assert_that(docs, equal_to([]))
    assert_that(rejected | beam.Map(lambda r: (r.doc_id, r.reason)),
                equal_to([("empty.parquet:0", "unreadable_files")]),
                label="set aside")


def test_range_size_grows_with_the_corpus_within_its_bounds():
  """Small corpora are cut into 1 MiB ranges; from 256 MiB on, into about
  RANGES_PER_CORPUS of them, never over 8 MiB each."""
  size = reading.range_size
  assert size(0) == size(5 << 20) == size(256 << 20) == 1 << 20
  assert size(1 << 30) == 4 << 20
  assert size(2 << 30) == size(100 << 30) == 8 << 20
