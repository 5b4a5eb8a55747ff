"""--input_format=wikidump: MediaWiki XML dumps read without WikiExtractor.

The dumps are written by tests/wikidumps.py from wikitext written here."""

import collections
import gzip
import json
import os
import random

import pytest

from tests import wikidumps
from tests.helpers import (one_error_line, read_ranges, run_cli,
                           sample_documents, shard_files)
from tests.wikidumps import WikiPage
from transforms import rejects
from transforms import wikidump

PARIS = """{{Short description|Capital of France}}
{{Infobox settlement|name=Paris|population={{formatnum:2102650}}|image=[[File:Paris.jpg]]}}
'''Paris''' is the [[capital city|capital]] and largest city of [[France]].<ref name="pop">{{cite web|url=https://insee.fr|title=Population}}</ref> About two million people live there.<ref name="pop"/>
<!-- editors: keep this short -->

== History ==
The [[Parisii]] founded the town in the third century BC.[[File:Lutetia.jpg|thumb|right|Map of [[Lutetia]] in 300 BC]]
* a list item that WikiExtractor drops
# a numbered item
; a definition term
: An indented remark stays.
{| class="wikitable"
|-
! Year !! Population
|-
| 1900 || 2,714,068
|}
See [https://www.paris.fr the city's site] and the [[:Category:Cities in France]] page &amp; more.
<gallery>
File:Eiffel.jpg|The tower
</gallery>
Its [[Eiffel Tower|tower]] has <math>324\\,m</math> and <span style="x">a height</span> of note.<br/>It stands.

[[Category:Capitals in Europe]]
[[de:Paris]]
[[zh-min-nan:Pa-lî]]
__NOTOC__
"""

PARIS_PARAGRAPHS = [
    "Paris is the capital and largest city of France. About two million "
    "people live there.",
    "The Parisii founded the town in the third century BC.",
    "An indented remark stays.",
    "See the city's site and the Category:Cities in France page & more.",
    "Its tower has and a height of note. It stands.",
]


def test_wikitext_becomes_the_paragraphs_an_article_shows():
  assert wikidump.wikitext_paragraphs(PARIS) == PARIS_PARAGRAPHS
  # No markup is left over.
  text = "\n".join(PARIS_PARAGRAPHS)
  for markup in ("{{", "}}", "[[", "]]", "|}", "<ref", "'''", "==", "<!--",
                 "File:", "Lutetia", "list item", "Year", "__"):
    assert markup not in text


@pytest.mark.parametrize("wikitext, paragraphs", [
    ("[[Paris|the capital]] of [[France]]", ["the capital of France"]),
    ("[[Paris]]ian cafes", ["Parisian cafes"]),
    ("a {{unclosed template and text", ["a unclosed template and text"]),
    ("{{a|{{b|{{c}}}}}}text {{x|y}} end", ["text end"]),
    ("{{Infobox|a=1\n|b=2\n}}\nBody.", ["Body."]),
    ("x<ref>r {{cite|a}}</ref> y", ["x y"]),
    ("<!-- unclosed comment\nhidden", []),
    ("== Only a heading ==", []),
    ("''italic'' and '''bold''' and '''''both'''''", [
        "italic and bold and both"]),
    ("A [[Image:X.png|thumb|a caption]] B", ["A B"]),
    ("[[:fr:Paris]] and [[wikt:word|word]]", ["fr:Paris and word"]),
])
def test_wikitext_cases(wikitext, paragraphs):
  assert wikidump.wikitext_paragraphs(wikitext) == paragraphs


def test_a_dumps_own_file_namespace_hides_its_links():
  header = wikidumps.header(namespaces=[(6, "Fichier"), (14, "Catégorie")],
                            lang="fr")
  siteinfo = header[header.index("<siteinfo>"):header.index("</siteinfo>")]
  hidden = wikidump.hidden_link_namespaces(
      (siteinfo + "</siteinfo>").encode())
  assert {"fichier", "catégorie", "file", "category"} <= hidden
  assert wikidump.wikitext_paragraphs(
      "A [[Fichier:X.png|vignette|légende]] B [[Catégorie:Villes]]",
      hidden) == ["A B"]


def test_markup_the_parser_rejects_is_counted_and_kept_as_text():
  counts = collections.Counter()

  def refuse(_):
    raise ValueError("the parser gives up")

  paragraphs = wikidump.wikitext_paragraphs(
      "== H ==\nThe [[Seine|river]] and [[Loire]].[[Category:Rivers]]\n"
      "* item\n<b>bold</b> text", count=lambda n, k=1: counts.update({n: k}),
      parse=refuse)
  assert paragraphs == ["The river and Loire.", "bold text"]
  assert counts == {"wiki_pages_unparsed": 1}


def test_disambiguation_pages_are_recognised():
  assert wikidump.is_disambiguation("'''Paris''' may mean:\n{{disambiguation}}")
  assert wikidump.is_disambiguation("{{Dab|geo}}")
  assert wikidump.is_disambiguation("x __DISAMBIG__")
  # An inline clean-up tag is not a disambiguation page.
  assert not wikidump.is_disambiguation("[[Mercury]]{{disambiguation needed}}")


def test_pages_are_cut_out_whatever_the_pieces_fed(tmp_path):
  text = wikidumps.dump_text([WikiPage("A", "alpha"), WikiPage("B", "beta"),
                              WikiPage("C", "x" * 5000)]).encode()
  whole = list(wikidump.PageSplitter().feed(text))
  assert [wikidump.parse_page(p).title for _, p in whole] == ["A", "B", "C"]
  assert all(text[o:o + 6] == b"<page>" for o, _ in whole)
  rng = random.Random(0)
  splitter, pieces, i = wikidump.PageSplitter(), [], 0
  while i < len(text):
    n = rng.randint(1, 40)
    pieces.extend(splitter.feed(text[i:i + n]))
    i += n
  assert pieces == whole
  # A page over the limit comes out as None, the others intact.
  small = list(wikidump.PageSplitter(max_page_bytes=2000).feed(text))
  assert [p is None for _, p in small] == [False, False, True]
  assert small[:2] == whole[:2]


def test_malformed_page_xml_keeps_its_text():
  counts = collections.Counter()
  page = wikidump.parse_page(
      b"<page><title>T &amp; U</title><ns>0</ns><revision><text>a &lt;b"
      b" \xff</text><bogus></revision></page>",
      lambda n, k=1: counts.update({n: k}))
  assert page == wikidump.Page("T & U", "0", False, "a <b \ufffd")
  assert counts == {"wiki_pages_malformed_xml": 1}
  with pytest.raises(ValueError):
    wikidump.parse_page(b"<page><title>T</title><ns>0")


def test_index_names_follow_wikimedias():
  assert wikidump.index_path_for(
      "s3://b/enwiki-20260601-pages-articles-multistream.xml.bz2") == (
          "s3://b/enwiki-20260601-pages-articles-multistream-index.txt.bz2")
  assert wikidump.index_path_for(
      "enwiki-20260601-pages-articles-multistream3.xml-p151574p311329.bz2") == (
          "enwiki-20260601-pages-articles-multistream-index3.txt-p151574p311329"
          ".bz2")
  assert wikidump.index_path_for("enwiki-pages-articles.xml.bz2") is None
  assert wikidump.is_index_file(
      "/d/enwiki-20260601-pages-articles-multistream-index.txt.bz2")


def _pages(n=60, seed=0):
  """Articles of the sample corpus's sentences, with the pages a dump also
  holds: a redirect, a talk page, a template, a disambiguation page and an
  article of templates only."""
  rng = random.Random(seed)
  docs = sample_documents()
  pages = []
  for i in range(n):
    doc = rng.choice(docs)
    body = " ".join(doc[:rng.randint(1, len(doc))])
    pages.append(WikiPage(
        "Article %d" % i,
        "{{Infobox|n=%d}}\n'''Article %d''' is [[about|a page]]. %s<ref>r</ref>"
        "\n\n== More ==\n%s\n[[Category:Tests]]" % (
            i, i, body, " ".join(rng.choice(docs)))))
    if i % 10 == 3:
      pages.append(WikiPage("Redirect %d" % i, "#REDIRECT [[Article %d]]" % i,
                            redirect="Article %d" % i))
    if i % 10 == 5:
      pages.append(WikiPage("Talk:Article %d" % i, "A comment.", namespace=1))
    if i % 10 == 7:
      pages.append(WikiPage("Article %d (disambiguation)" % i,
                            "'''X''' may be:\n* [[A]]\n{{disambiguation}}"))
    if i % 20 == 9:
      pages.append(WikiPage("Stub %d" % i, "{{Stub}}[[Category:Stubs]]"))
  return pages


EXPECTED_SKIPS = {"wiki_pages_skipped_redirect": 6,
                  "wiki_pages_skipped_namespace": 6,
                  "wiki_pages_skipped_disambiguation": 6,
                  "wiki_pages_empty": 3}


def _read(path, bundle_size=None, **kwargs):
  """Every element the source yields, range by range when ``bundle_size``."""
  return read_ranges(wikidump.WikiDumpSource(path, **kwargs), bundle_size)


def _articles(elements):
  return sorted((doc_id, tuple(paragraphs)) for doc_id, paragraphs in elements)


def _texts(elements):
  return sorted(tuple(paragraphs) for _, paragraphs in elements)


@pytest.fixture(name="dumps")
def _dumps(tmp_path):
  pages = _pages()
  paths = {
      "xml": str(tmp_path / "testwiki-pages-articles.xml"),
      "bz2": str(tmp_path / "testwiki-pages-articles.xml.bz2"),
      "gz": str(tmp_path / "testwiki-pages-articles.xml.gz"),
      "multistream": str(tmp_path /
                         "testwiki-pages-articles-multistream.xml.bz2"),
      "index": str(tmp_path /
                   "testwiki-pages-articles-multistream-index.txt.bz2"),
  }
  wikidumps.write_plain(paths["xml"], pages)
  wikidumps.write_single_stream_bz2(paths["bz2"], pages)
  with open(paths["xml"], "rb") as f, gzip.open(paths["gz"], "wb") as g:
    g.write(f.read())
  offsets = wikidumps.write_multistream(paths["multistream"], pages,
                                        paths["index"], pages_per_stream=7)
  paths["offsets"] = offsets
  return paths


def test_every_layout_reads_the_same_articles(dumps):
  plain = _read(dumps["xml"])
  assert len(plain) == 60  # the three template-only stubs are empty
  for layout in ("bz2", "gz", "multistream"):
    assert _texts(_read(dumps[layout])) == _texts(plain), layout
  assert ("Article 0 is a page." in plain[0][1][0]
          and not any("Infobox" in p or "More" == p for p in plain[0][1]))


@pytest.mark.parametrize("bundle_size", [1, 700, 5000])
def test_multistream_ranges_read_every_article_once(dumps, bundle_size,
                                                    monkeypatch):
  whole = _articles(_read(dumps["multistream"]))
  # The header's namespaces and the index are read once per process (and
  # cached) with Beam's bz2 reader, which the count below would see too.
  wikidump.hidden_namespaces_of(dumps["multistream"])
  wikidump.stream_offsets(dumps["index"])
  for use_index in (True, False):
    decompressed = []
    real = wikidump.bz2.BZ2Decompressor

    class Counting:  # pylint: disable=too-few-public-methods
      def __init__(self):
        self._d = real()
        decompressed.append(self)

      def __getattr__(self, name):
        return getattr(self._d, name)

    monkeypatch.setattr(wikidump.bz2, "BZ2Decompressor", Counting)
    split = _articles(_read(dumps["multistream"], bundle_size,
                            use_index=use_index))
    monkeypatch.setattr(wikidump.bz2, "BZ2Decompressor", real)
    assert split == whole, use_index
    # Each stream of pages is decompressed by one range, no stream twice (a
    # worker never reads the whole file); the header and the closing tag's
    # streams at most once (a range the index lists no stream for is done).
    pages_streams = len(dumps["offsets"]) - 2
    assert pages_streams <= len(decompressed) <= pages_streams + 2, use_index
  # Ids name the stream: every article's offset is a stream's.
  assert {int(doc_id.split(":")[1].split("#")[0]) for doc_id, _ in whole} <= (
      set(dumps["offsets"]))


@pytest.mark.parametrize("bundle_size", [1, 997, 6000])
def test_plain_xml_ranges_read_every_article_once(dumps, bundle_size):
  assert _articles(_read(dumps["xml"], bundle_size)) == _articles(
      _read(dumps["xml"]))


def test_single_stream_and_gzip_dumps_are_read_once_whatever_the_split(dumps):
  for layout in ("bz2", "gz"):
    assert _articles(_read(dumps[layout], 500)) == _articles(
        _read(dumps[layout])), layout


def test_a_cut_multistream_dump_keeps_what_came_before_the_cut(dumps, tmp_path):
  with open(dumps["multistream"], "rb") as f:
    data = f.read()
  cut_at = dumps["offsets"][4] + 40
  cut = tmp_path / "cut-pages-articles-multistream.xml.bz2"
  cut.write_bytes(data[:cut_at])
  out = _read(str(cut), use_index=False)
  kept = [e for e in out if not isinstance(e, rejects.Rejected)]
  [rejected] = [e for e in out if isinstance(e, rejects.Rejected)]
  assert rejected.reason == "unreadable_files"
  assert rejected.doc_id.endswith(":%d" % dumps["offsets"][4])
  assert "end-of-stream" in rejected.error
  assert _texts(kept) == _texts(
      [e for e in _read(dumps["multistream"])
       if int(e[0].split(":")[1].split("#")[0]) < dumps["offsets"][4]])


def test_an_oversized_page_is_set_aside(tmp_path):
  path = str(tmp_path / "big-pages-articles.xml")
  wikidumps.write_plain(path, [WikiPage("Small", "Some text here."),
                               WikiPage("Big", "word " * 3000),
                               WikiPage("After", "More text.")])
  out = _read(path, max_page_bytes=4096)
  assert [e[1] for e in out if not isinstance(e, rejects.Rejected)] == [
      ["Some text here."], ["More text."]]
  [rejected] = [e for e in out if isinstance(e, rejects.Rejected)]
  assert rejected.reason == "oversized_wiki_pages"


def test_dump_to_tfrecords_with_its_counts(dumps, tmp_path):
  out = str(tmp_path / "out")
  # The index file matches the input pattern too: it is used, not read.
  run_cli(["--input=" + os.path.join(os.path.dirname(dumps["multistream"]),
                                     "*-multistream*.bz2"),
           "--input_format=wikidump", "--output=" + out, "--dupe_factor=2",
           "--direct_num_workers=2",
           "--direct_running_mode=multi_processing"])
  with open(os.path.join(out, "summary.json"), encoding="utf-8") as f:
    summary = json.load(f)
  counts = summary["counts"]
  assert counts["wiki_pages_read"] == len(_pages())
  for name, value in EXPECTED_SKIPS.items():
    assert counts[name] == value, name
  assert counts["documents_read"] == 60
  assert counts["wiki_pages_unparsed"] == 0
  assert counts["instances"] > 0 and shard_files(out)
  assert summary["rejected"] == {}


def test_a_file_that_is_no_dump_is_refused_before_work(tmp_path):
  path = tmp_path / "notes.txt"
  path.write_text("just some text\n")
  proc = run_cli(["--input=" + str(path), "--input_format=wikidump",
                  "--output=" + str(tmp_path / "out")], check=False)
  assert proc.returncode == 2
  assert "MediaWiki XML dump" in one_error_line(proc.stderr), proc.stderr


def test_a_stream_header_across_the_range_end_is_found(monkeypatch, tmp_path):
  header = b"BZh91AY&SY"
  path = tmp_path / "scan.bin"
  path.write_bytes(b"x" * 100 + header + b"y" * 50)
  monkeypatch.setattr(wikidump, "_CHUNK", 51)
  with open(path, "rb") as f:
    # The header starts at 100, inside [0, 102); its last byte is at 109.
    assert wikidump.find_stream_start(f, 0, 102) == 100
    assert wikidump.find_stream_start(f, 0, 100) is None
    assert wikidump.find_stream_start(f, 101, 200) is None


@pytest.mark.parametrize("bundle_size", [None, 700])
def test_a_corrupt_stream_is_set_aside_and_the_rest_read(dumps, tmp_path,
                                                         bundle_size):
  with open(dumps["multistream"], "rb") as f:
    data = bytearray(f.read())
  offsets = dumps["offsets"]
  bad = offsets[3]
  for i in range(bad + 20, bad + 60):  # inside its compressed blocks
    data[i] ^= 0x55
  path = tmp_path / "bad-pages-articles-multistream.xml.bz2"
  path.write_bytes(bytes(data))
  out = _read(str(path), bundle_size, use_index=False)
  rejected = [e for e in out if isinstance(e, rejects.Rejected)]
  assert [(r.reason, r.doc_id.rsplit(":", 1)[1]) for r in rejected] == [
      ("corrupt_wiki_streams", str(bad))]
  kept = {int(e[0].split(":")[1].split("#")[0]) for e in out
          if not isinstance(e, rejects.Rejected)}
  whole = {int(doc_id.split(":")[1].split("#")[0])
           for doc_id, _ in _read(dumps["multistream"])}
  assert kept == whole - {bad}


def test_an_index_cut_short_still_reads_every_stream(dumps, tmp_path):
  import bz2  # pylint: disable=import-outside-toplevel
  with bz2.open(dumps["index"], "rt") as f:
    lines = f.read().splitlines()
  directory = tmp_path / "short"
  directory.mkdir()
  dump = directory / os.path.basename(dumps["multistream"])
  dump.write_bytes(open(dumps["multistream"], "rb").read())
  index = directory / os.path.basename(dumps["index"])
  index.write_bytes(bz2.compress(("\n".join(lines[:len(lines) // 3])
                                  + "\n").encode()))
  assert _articles(_read(str(dump), 700)) == _articles(
      _read(dumps["multistream"]))


def test_thousands_of_unclosed_templates_are_text():
  text = "{{ a " * 20000
  assert wikidump.drop_templates_and_tables(text) == " a " * 20000
  assert wikidump.drop_templates_and_tables(
      "x {{a {{b}} c}} y {{d {{e}} f") == "x  y d  f"
  # A table starts a line; a closer without an opener is text.
  assert wikidump.drop_templates_and_tables("a }} b {| c\n|} d") == (
      "a }} b {| c\n|} d")
  assert wikidump.drop_templates_and_tables("a\n{| c\n|-\n|}\nd") == "a\n\nd"
