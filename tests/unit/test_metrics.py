"""The counters add up: for every input format, ``documents_read`` is the
documents kept, plus those dropped (``metrics.DROP_REASONS``), plus the
records set aside that are documents (``metrics.document_balance``).

Random corpora of every format, full of the records a reader drops or sets
aside, go through the job's real stages (ReadDocuments → SplitSentences →
Tokenize on Beam); the counters come from the pipeline's result as
summary.json takes them (``outputs.collect_metrics``). Each corpus is made
knowing what every record in it must become, so each term of the identity
is checked against its exact value too, not only their sum.
"""

import collections
import functools
import json
import os
import tempfile
from typing import Dict, List, Tuple

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipelines import outputs
from tests import wikidumps
from tests.helpers import VOCAB, local_test_pipeline
from tests.wikidumps import WikiPage
from transforms import metrics, paths, reading
from transforms.sentences import SplitSentences, load_splitter, split_paragraphs
from transforms.tokenization import (Tokenize, TokenizerSettings, load_tokenizer,
                                     tokenize_documents)

# Each example runs a Beam pipeline (about half a second): a few per format.
SETTINGS = settings(max_examples=8, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow,
                                           HealthCheck.data_too_large])

# Lines that hold a token, and lines that are not blank (Python's strip()
# leaves them) but that BERT's normalizer deletes whole.
_REAL = ["Hello world.", "The cat sat on the mat.",
         "Caf\u00e9 au lait, s'il vous pla\u00eet.", "one\rtwo"]
_NO_TOKEN = ["\u200b", "\u0301", "\u200b \u200b", "\ufffd", "\u2060\u00ad"]
# Lines the lines format reads as blank (NUL bytes are removed first).
_BLANK = ["", " ", "\t \t", "\u3000", "\x00", "\x0c"]


def _text_line():
  """``(text, holds_a_token)``."""
  return st.one_of(st.sampled_from(_REAL).map(lambda t: (t, True)),
                   st.sampled_from(_NO_TOKEN).map(lambda t: (t, False)))


def run_stages(directory: str, input_format: str) -> Dict[str, Dict]:
  """The counters of ReadDocuments → SplitSentences → Tokenize over every
  file in ``directory``, wired as ``pipelines.mlm.build`` wires them:
  ``outputs.collect_metrics`` of the run, ``{"counts", "rejected", …}``."""
  matched = paths.match_input([os.path.join(directory, "*")])
  with local_test_pipeline() as p:
    docs, _ = p | "ReadDocuments" >> reading.ReadDocuments(
        matched, input_format=input_format)
    docs, _ = docs | "SplitSentences" >> SplitSentences(input_format)
    _ = docs | "Tokenize" >> Tokenize(TokenizerSettings(
        vocab_file=VOCAB, do_lower_case=True))
  return outputs.collect_metrics(p.result)


def assert_balanced(summary: Dict[str, Dict], documents_read: int,
                    terms: Dict[str, int]) -> None:
  """``document_balance`` holds, with ``documents_read`` and each of its
  ``terms`` (zeros left out) at the values the corpus was made to give."""
  read, accounted, found = metrics.document_balance(summary["counts"],
                                                    summary["rejected"])
  assert read == accounted, (read, found)
  assert found == {k: v for k, v in terms.items() if v}
  assert read == documents_read


# --- lines -----------------------------------------------------------------

# At least 8 KiB of clean text first: the binary probe (reading.looks_binary)
# then never mistakes a file of many NUL or invalid bytes for binary.
_LINES_HEADER = "".join("Header sentence %03d of the first document.\n" % i
                        for i in range(220)).encode()
assert len(_LINES_HEADER) > reading.BINARY_PROBE_BYTES


def _lines_content():
  """``(bytes, holds_a_token)``: text, NUL bytes in text, invalid UTF-8."""
  as_bytes = lambda pair: (pair[0].encode("utf-8"), pair[1])
  return st.one_of(_text_line().map(as_bytes),
                   st.sampled_from([(b"a\x00b tokens", True),
                                    (b"\x00Word\x00", True),
                                    (b"\xff\xfe", False),
                                    (b"\xc3", False)]))


@st.composite
def lines_files(draw, header: bool = True
                ) -> Tuple[List[bytes], Dict[str, int]]:
  """1 to 3 files of the lines format and what they must give; each starts
  with ``_LINES_HEADER`` when ``header``."""
  blank = st.sampled_from(_BLANK).map(lambda t: t.encode("utf-8"))
  expected = collections.Counter()
  files = []
  for _ in range(draw(st.integers(1, 3))):
    lines = []
    if header:
      lines += [(_LINES_HEADER.rstrip(b"\n"), True), (b"", None)]
      expected["documents"] += 1
    lines += [(b, None) for b in draw(st.lists(blank, max_size=2))]
    docs = draw(st.lists(st.tuples(
        st.lists(_lines_content(), min_size=1, max_size=4),
        st.lists(blank, min_size=1, max_size=3)), max_size=6))
    for doc, separators in docs:
      lines += doc + [(b, None) for b in separators]
      if any(real for _, real in doc):
        expected["documents"] += 1
      else:
        expected["empty_documents_dropped"] += 1
    data = b""
    for text, _ in lines:
      data += text + draw(st.sampled_from([b"\n", b"\r\n"]))
    if draw(st.booleans()):
      data = data.rstrip(b"\r\n")  # no newline at the end
    files.append(data)
  return files, dict(expected)


@SETTINGS
@given(corpus=lines_files())
def test_lines_counters_add_up(corpus):
  files, expected = corpus
  with tempfile.TemporaryDirectory() as d:
    for i, data in enumerate(files):
      with open(os.path.join(d, "part%d.txt" % i), "wb") as f:
        f.write(data)
    summary = run_stages(d, "lines")
  assert_balanced(summary, sum(expected.values()), expected)
  assert summary["rejected"] == {}


# --- wikiextractor ---------------------------------------------------------


@st.composite
def wikiextractor_file(draw) -> Tuple[bytes, Dict[str, int]]:
  """One WikiExtractor file: articles, articles with only a title, bare
  ``<doc>`` blocks, some without ``</doc>``, stray lines between; and the
  counts it must give."""
  stray = st.sampled_from(["stray text", "", "  "])
  expected = collections.Counter()
  leading = draw(st.lists(stray, max_size=2))
  lines = list(leading)
  outside = sum(1 for t in leading if t.strip())
  blocks = draw(st.lists(st.tuples(
      st.sampled_from(["article", "title_only", "bare"]),
      st.lists(_text_line(), min_size=1, max_size=3), st.booleans(),
      st.lists(stray, max_size=2)), max_size=6))
  for i, (kind, body, terminated, strays) in enumerate(blocks):
    lines.append('<doc id="%d" url="https://w/?curid=%d" title="T%d">'
                 % (i, i, i))
    if kind != "bare":
      lines.append("Title %d" % i)
    if kind == "article":
      for text, _ in body:
        lines += draw(st.sampled_from([[], [""]])) + [text]
    if kind == "article" and any(real for _, real in body):
      expected["documents"] += 1
    else:
      expected["empty_documents_dropped"] += 1
    if terminated:
      lines.append("</doc>")
      lines += strays
      outside += sum(1 for t in strays if t.strip())
    else:
      expected["unterminated"] += 1
  ending = draw(st.sampled_from(["\n", "\r\n"]))
  data = "".join(t + ending for t in lines).encode("utf-8")
  expected["outside"] = outside
  return data, dict(expected)


@SETTINGS
@given(corpus=st.lists(wikiextractor_file(), min_size=1, max_size=2))
def test_wikiextractor_counters_add_up(corpus):
  expected = collections.Counter()
  with tempfile.TemporaryDirectory() as d:
    for i, (data, counts) in enumerate(corpus):
      expected.update(counts)
      with open(os.path.join(d, "wiki_%02d" % i), "wb") as f:
        f.write(data)
    summary = run_stages(d, "wikiextractor")
  terms = {"documents": expected["documents"],
           "empty_documents_dropped": expected["empty_documents_dropped"]}
  assert_balanced(summary, sum(terms.values()), terms)
  assert summary["counts"]["unterminated_wiki_docs"] == expected[
      "unterminated"]
  assert summary["counts"]["lines_outside_wiki_docs"] == expected["outside"]
  assert summary["rejected"] == {}


# --- jsonl -----------------------------------------------------------------

# (line, what becomes of it): "documents", "empty_documents_dropped",
# "rejected/<reason>", or None for a line that is no record.
_MISSING = "rejected/jsonl_lines_missing_text_field"
_MALFORMED = "rejected/malformed_jsonl_lines"
_JSONL_LINES = [
    (json.dumps({"text": "Good text.\n\nSecond paragraph here."}),
     "documents"),
    (json.dumps({"id": 7, "text": "\u00dcn\u00efc\u00f6d\u00e9 w\u00f6rds"},
                ensure_ascii=False), "documents"),
    ('{"text": "Lone \\ud800 surrogate words."}', "documents"),
    ('{"text": "\\udc00"}', "empty_documents_dropped"),
    ('{"text": null}', _MISSING),
    ('{"text": ""}', "empty_documents_dropped"),
    ('{"text": " \\n\\t \\u3000"}', "empty_documents_dropped"),
    ('{"text": "\\u200b\\u200b"}', "empty_documents_dropped"),
    ('{"text": "\\u0301"}', "empty_documents_dropped"),
    ('{"text": ["a list", "of texts"]}', _MISSING),
    ('{"text": 42}', _MISSING),
    ('{"body": "no text field"}', _MISSING),
    ('["an", "array"]', _MISSING),
    ("not json at all", _MALFORMED),
    ('{"text": "cut sh', _MALFORMED),
    ("\u200b", _MALFORMED),
    ("", None),
    ("  \t", None),
]


@st.composite
def jsonl_file(draw) -> Tuple[bytes, Dict[str, int]]:
  """One JSONL file and the counts it must give."""
  picked = draw(st.lists(st.sampled_from(_JSONL_LINES), max_size=14))
  expected = collections.Counter(fate for _, fate in picked if fate)
  expected["surrogates"] = sum("\\ud" in line for line, _ in picked)
  data = "".join(line + draw(st.sampled_from(["\n", "\r\n"]))
                 for line, _ in picked)
  return data.encode("utf-8"), dict(expected)


@SETTINGS
@given(corpus=st.lists(jsonl_file(), min_size=1, max_size=2))
def test_jsonl_counters_add_up(corpus):
  expected = collections.Counter()
  with tempfile.TemporaryDirectory() as d:
    for i, (data, counts) in enumerate(corpus):
      expected.update(counts)
      with open(os.path.join(d, "part%d.jsonl" % i), "wb") as f:
        f.write(data)
    summary = run_stages(d, "jsonl")
  surrogates = expected.pop("surrogates")
  assert_balanced(summary, sum(expected.values()), expected)
  assert summary["counts"]["lone_surrogates_replaced"] == surrogates


def test_documents_a_later_stage_sets_aside_are_in_the_balance(
    tmp_path, monkeypatch):
  """A document whose sentence split raises, and one whose tokenization
  raises, are read, then set aside (``split_error``, ``tokenize_error``)."""
  # pylint: disable=import-outside-toplevel
  from transforms import sentences, tokenization
  real_splitter, real_tokenize = (sentences.load_splitter,
                                  tokenization.tokenize_documents)

  def splitter():
    split = real_splitter()

    def fragile(text):
      if "SPLITBAD" in text:
        raise RuntimeError("splitter failure")
      return split(text)
    return fragile

  def tokenize(docs, tokenizer, vocab):
    docs = list(docs)
    if any("TOKBAD" in s for _, lines in docs for s in lines):
      raise RuntimeError("tokenizer failure")
    return real_tokenize(docs, tokenizer, vocab)

  monkeypatch.setattr(sentences, "load_splitter", splitter)
  monkeypatch.setattr(tokenization, "tokenize_documents", tokenize)
  (tmp_path / "in").mkdir()
  texts = ["A good one.", "SPLITBAD text.", "TOKBAD text.",
           "Another good one.", "\u200b"]
  (tmp_path / "in" / "a.jsonl").write_text(
      "".join(json.dumps({"text": t}) + "\n" for t in texts),
      encoding="utf-8")
  summary = run_stages(str(tmp_path / "in"), "jsonl")
  assert_balanced(summary, 5, {"documents": 2, "empty_documents_dropped": 1,
                               "rejected/split_error": 1,
                               "rejected/tokenize_error": 1})


# --- parquet ---------------------------------------------------------------

# (value, what becomes of the row) for a column of strings.
_PARQUET_TEXTS = [
    ("A row of text.", "documents"),
    ("First paragraph.\n\nSecond paragraph.", "documents"),
    ("", "empty_documents_dropped"),
    (" \n\t ", "empty_documents_dropped"),
    ("\u200b", "empty_documents_dropped"),
    (None, "parquet_null_texts"),
]
# Columns of other types: every non-null value is no text.
_PARQUET_OTHER = {"int64": [7, -1, 0], "binary": [b"bytes", b""]}


@st.composite
def parquet_file(draw, no_column: bool = True
                 ) -> Tuple[Tuple[str, List[list]], Dict[str, int]]:
  """``((column type, [values of each row group]), expected counts)``.
  Row groups may be empty; a file of type ``no_column`` (drawn when
  ``no_column``) has no ``text`` column: it is set aside whole, as
  unreadable."""
  kinds = ["string", "string", "large_string", "int64", "binary"]
  kind = draw(st.sampled_from(kinds + (["no_column"] if no_column else [])))
  expected = collections.Counter()
  if kind in ("string", "large_string"):
    rows = st.sampled_from(_PARQUET_TEXTS)
  elif kind == "no_column":
    rows = st.just(("Text nobody reads.", None))
  else:
    rows = st.sampled_from(_PARQUET_OTHER[kind] + [None]).map(
        lambda v: (v, "parquet_non_string_texts" if v is not None
                   else "parquet_null_texts"))
  groups = draw(st.lists(st.lists(rows, max_size=5), max_size=4))
  if kind == "no_column":
    groups.append([("More text nobody reads.", None)])
    expected["unreadable_files"] = 1
  for group in groups:
    expected.update(fate for _, fate in group if fate)
  return (kind, [[v for v, _ in g] for g in groups]), dict(expected)


def write_parquet_groups(path: str, kind: str, groups: List[list]) -> None:
  """One ``write_table`` per row group (an empty one writes an empty row
  group), with ``pyarrow.parquet.ParquetWriter``."""
  import pyarrow as pa  # pylint: disable=import-outside-toplevel
  import pyarrow.parquet as pq  # pylint: disable=import-outside-toplevel
  name = "body" if kind == "no_column" else "text"
  arrow_type = {"no_column": pa.string(), "string": pa.string(),
                "large_string": pa.large_string(), "int64": pa.int64(),
                "binary": pa.binary()}[kind]
  schema = pa.schema([(name, arrow_type), ("row", pa.int64())])
  with pq.ParquetWriter(path, schema) as writer:
    for group in groups:
      writer.write_table(pa.table({name: group,
                                   "row": list(range(len(group)))},
                                  schema=schema))


@SETTINGS
@given(corpus=st.lists(parquet_file(), min_size=1, max_size=3))
def test_parquet_counters_add_up(corpus):
  expected = collections.Counter()
  with tempfile.TemporaryDirectory() as d:
    for i, ((kind, groups), counts) in enumerate(corpus):
      expected.update(counts)
      write_parquet_groups(os.path.join(d, "part%d.parquet" % i), kind,
                           groups)
    summary = run_stages(d, "parquet")
  unreadable = expected.pop("unreadable_files", 0)
  # A file set aside whole holds no document read: not in the identity.
  assert summary["rejected"] == (
      {"unreadable_files": unreadable} if unreadable else {})
  assert_balanced(summary, sum(expected.values()), expected)


# --- wikidump --------------------------------------------------------------

# (page, the counter it lands in), ``%d`` filled with the page's number.
_WIKI_PAGES = [
    (lambda i: WikiPage("Article %d" % i, "'''Article %d''' is a [[thing]] "
                        "in a place.\n\nIt has two paragraphs." % i),
     "documents"),
    (lambda i: WikiPage("Redirect %d" % i, "#REDIRECT [[Article 0]]",
                        redirect="Article 0"), "wiki_pages_skipped_redirect"),
    (lambda i: WikiPage("Talk:Article %d" % i, "A comment.", namespace=1),
     "wiki_pages_skipped_namespace"),
    (lambda i: WikiPage("Template:T%d" % i, "Some {{{1}}} text.",
                        namespace=10), "wiki_pages_skipped_namespace"),
    (lambda i: WikiPage("Name %d" % i, "'''Name''' may refer to:\n* [[A]]\n"
                        "* [[B]]\n{{disambiguation}}"),
     "wiki_pages_skipped_disambiguation"),
    (lambda i: WikiPage("Stub %d" % i, "{{Stub}}[[Category:Stubs]]"),
     "wiki_pages_empty"),
    (lambda i: WikiPage("Blank %d" % i, ""), "wiki_pages_empty"),
    (lambda i: WikiPage("Odd %d" % i, "\u200b \u0301"), "wiki_pages_empty"),
]


@SETTINGS
@given(kinds=st.lists(st.integers(0, len(_WIKI_PAGES) - 1), min_size=1,
                      max_size=10),
       layout=st.sampled_from(["plain", "bz2", "multistream"]))
def test_wikidump_counters_add_up(kinds, layout):
  pages = [_WIKI_PAGES[k][0](i) for i, k in enumerate(kinds)]
  expected = collections.Counter(_WIKI_PAGES[k][1] for k in kinds)
  with tempfile.TemporaryDirectory() as d:
    if layout == "plain":
      wikidumps.write_plain(os.path.join(d, "wiki.xml"), pages)
    elif layout == "bz2":
      wikidumps.write_single_stream_bz2(os.path.join(d, "wiki.xml.bz2"),
                                        pages)
    else:
      wikidumps.write_multistream(
          os.path.join(d, "wiki-pages-articles-multistream.xml.bz2"), pages,
          pages_per_stream=3)
    summary = run_stages(d, "wikidump")
  assert_balanced(summary, len(pages), expected)
  assert summary["counts"]["wiki_pages_read"] == len(pages)
  assert summary["rejected"] == {}


# --- counters and splits ---------------------------------------------------


@functools.lru_cache(maxsize=None)
def _tokenizer():
  return load_tokenizer(vocab_file=VOCAB, do_lower_case=True)


def _counts_by_ranges(path: str, input_format: str, bundle_size: int
                      ) -> Dict[str, int]:
  """The identity's counters of one file read as byte ranges of
  ``bundle_size`` bytes, through the job's own steps run by hand:
  ``_ReadRange`` and ``_ParseDocument`` of every range, then
  ``split_paragraphs`` and ``tokenize_documents``."""
  # pylint: disable=protected-access
  counts = collections.Counter()
  count = lambda name, n=1: counts.update({name: n})
  read = reading._ReadRange(functools.partial(
      reading._make_source, input_format=input_format,
      max_line_bytes=reading.DEFAULT_MAX_LINE_BYTES,
      max_doc_bytes=reading.DEFAULT_MAX_DOCUMENT_BYTES,
      root=os.path.dirname(path) + "/"))
  parse = reading._ParseDocument(input_format, "text")
  docs = []
  real_count = metrics.count
  metrics.count = count
  try:
    for part in reading.file_ranges(paths.match_files([path]), bundle_size,
                                    1, input_format == "parquet"):
      for record in read.process(part):
        for out in parse.process(record):
          if isinstance(out, tuple):
            docs.append(out)
  finally:
    metrics.count = real_count
  if input_format != "lines":
    splitter = load_splitter()
    docs = [(i, split_paragraphs(p, splitter)) for i, p in docs]
  tokenizer, vocab = _tokenizer()
  _, tokenized = tokenize_documents(docs, tokenizer, vocab)
  counts.update(tokenized)
  names = ("documents_read", "documents", "rejected_records") + (
      metrics.DROP_REASONS)
  return {name: n for name, n in counts.items() if n and (
      name in names or name.startswith("rejected/"))}


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.too_slow,
                                 HealthCheck.data_too_large])
@given(corpus=st.one_of(
    lines_files(header=False).map(lambda c: ("lines", c[0][0])),
    jsonl_file().map(lambda c: ("jsonl", c[0])),
    # A file without the column: test_a_parquet_file_without_the_column_
    # is_set_aside_once.
    parquet_file(no_column=False).map(lambda c: ("parquet", c[0]))),
       bundle_size=st.integers(1, 300))
def test_counts_do_not_depend_on_how_a_file_is_split(corpus, bundle_size):
  """However a file is cut into byte ranges, each record is counted once:
  the same counts as the file read whole."""
  input_format, data = corpus
  with tempfile.TemporaryDirectory() as d:
    path = os.path.join(d, "part." + input_format)
    if input_format == "parquet":
      write_parquet_groups(path, *data)
    else:
      with open(path, "wb") as f:
        f.write(data)
    whole = _counts_by_ranges(path, input_format, 1 << 30)
    assert _counts_by_ranges(path, input_format, bundle_size) == whole


@pytest.mark.parametrize("bundle_size", [1, 5, 20])
def test_title_only_wikiextractor_articles_count_once_whatever_the_split(
    tmp_path, bundle_size):
  path = tmp_path / "wiki_00"
  path.write_bytes(b'<doc id="1">\nOne\nText one.\n</doc>\n'
                   b'<doc id="2">\nTitle only\n</doc>\n'
                   b'<doc id="3">\nThree\nText three.\n</doc>\n')
  whole = _counts_by_ranges(str(path), "wikiextractor", 1 << 30)
  assert whole == {"documents_read": 3, "documents": 2,
                   "empty_documents_dropped": 1}
  assert _counts_by_ranges(str(path), "wikiextractor", bundle_size) == whole


def test_title_only_wikiextractor_article_after_a_range_end_counts_once(
    tmp_path):
  """In the job: a file of 2 MiB or more is read as ranges of 1 MiB; the
  title-only article just past the first range's end was counted by both
  ranges (documents_read 4 of 3 articles, empty_documents_dropped 2, still
  balanced). Stray lines (ignored, never tokenized) fill the file."""
  stray = "".join("stray line %04d %s\n" % (i, "x" * 1000)
                  for i in range(1100))
  (tmp_path / "in").mkdir()
  (tmp_path / "in" / "wiki_00").write_text(
      '<doc id="1">\nOne\nText one.\n</doc>\n%s<doc id="2">\nTitle only\n'
      '</doc>\n<doc id="3">\nThree\nText three.\n</doc>\n%s'
      % (stray, stray), encoding="utf-8")
  assert os.path.getsize(tmp_path / "in" / "wiki_00") > 2 << 20
  summary = run_stages(str(tmp_path / "in"), "wikiextractor")
  assert_balanced(summary, 3, {"documents": 2, "empty_documents_dropped": 1})


@pytest.mark.parametrize("bundle_size", [1, 100])
def test_a_parquet_file_without_the_column_is_set_aside_once(
    tmp_path, bundle_size):
  path = str(tmp_path / "body.parquet")
  write_parquet_groups(path, "no_column", [["First text."], [],
                                           ["Second text."]])
  whole = _counts_by_ranges(path, "parquet", 1 << 30)
  assert whole == {"rejected_records": 1, "rejected/unreadable_files": 1}
  assert _counts_by_ranges(path, "parquet", bundle_size) == whole
