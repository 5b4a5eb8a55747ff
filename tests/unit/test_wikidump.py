"""--input_format=wikidump: MediaWiki XML dumps read without WikiExtractor.

The dumps are written by tests/wikidumps.py from wikitext written here."""

import bisect
import bz2
import collections
import importlib.util
import json
import os
import random
import re

import mwparserfromhell
import pytest

from tests import wikidumps
from tests.helpers import REPO, read_ranges
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


@pytest.fixture(name="dumps")
def _dumps(tmp_path):
  return wikidumps.write_every_layout(str(tmp_path), wikidumps.sample_pages())


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


def _read(path, bundle_size=None, **kwargs):
  """Every element the source yields, range by range when ``bundle_size``."""
  return read_ranges(wikidump.WikiDumpSource(path, **kwargs), bundle_size)


def _articles(elements):
  return sorted((doc_id, tuple(paragraphs)) for doc_id, paragraphs in elements)


def _texts(elements):
  return sorted(tuple(paragraphs) for _, paragraphs in elements)


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


# --- Streams cut anywhere, as pbzip2 writes them -----------------------------

PBZIP_NAME = "dewiki-pages-articles.xml.bz2"


def _titled_pages(n):
  """``n`` German articles, each one paragraph that starts with its title,
  of lengths that vary."""
  return [WikiPage("Seite %d" % i, "'''Seite %d''' ist ein Artikel über "
                   "[[Hamburg|die Stadt]]. %s" % (
                       i, "Er hat noch einen Satz. " * (i % 13)))
          for i in range(n)]


def _expected_reads(text, streams):
  """``(doc id, title)`` of every page of the dump ``text`` written as
  ``streams`` (``wikidumps.write_streams_bz2``), sorted: a page is read by
  the range that claims the stream where its ``<page>`` tag begins, which
  its id names (``#k``: the k-th page that begins there)."""
  starts = [begin for begin, _ in streams]
  expected, pages_begun = [], collections.Counter()
  for i, m in enumerate(re.finditer(b"<page>", text)):
    j = bisect.bisect_right(starts, m.start()) - 1
    k = pages_begun[j]
    pages_begun[j] += 1
    expected.append(("%s:%d%s" % (PBZIP_NAME, streams[j][1],
                                  "#%d" % k if k else ""), "Seite %d" % i))
  return sorted(expected)


def _reads(elements):
  """``(doc id, title)`` of every article read, sorted; nothing set
  aside."""
  assert [e for e in elements if isinstance(e, rejects.Rejected)] == []
  return sorted((doc_id, paragraphs[0].split(" ist ")[0])
                for doc_id, paragraphs in elements)


@pytest.fixture(name="titled_dump", scope="module")
def _titled_dump():
  """The XML of a dump of 40 articles and where each page's tags begin."""
  text = wikidumps.dump_text(_titled_pages(40), lang="de").encode()
  tags = {tag: [m.start() for m in re.finditer(re.escape(tag), text)]
          for tag in (b"<page>", b"</page>", b"<title>")}
  assert len(tags[b"<page>"]) == len(tags[b"</page>"]) == 40
  return text, tags


# (tag, bytes into it): where in every other page the streams are cut.
CUTS = ([(b"<page>", k) for k in range(7)]  # before it, in "<page", after
        + [(b"</page>", k) for k in range(8)]
        + [(b"<title>", 3)]  # inside a page
        + [(b"<page>", -1)])  # right before its "<"


@pytest.mark.parametrize("tag, into", CUTS)
@pytest.mark.parametrize("bundle_size", [None, 1, 300, 2000])
def test_pages_of_streams_cut_mid_tag_are_read_once(titled_dump, tag, into,
                                                    bundle_size, tmp_path):
  """A page cut across two streams, its tags too, is read once, whatever
  ranges the file is split into: by the range that claims the stream where
  its ``<page>`` tag begins."""
  text, tags = titled_dump
  path = str(tmp_path / PBZIP_NAME)
  streams = wikidumps.write_streams_bz2(
      path, text, [position + into for position in tags[tag][1::2]])
  assert len(streams) == 21
  assert _reads(_read(path, bundle_size)) == _expected_reads(text, streams)


@pytest.mark.parametrize("bundle_size", [None, 1, 97, 700])
def test_a_page_tag_spread_over_streams_of_a_byte_is_read_once(
    titled_dump, bundle_size, tmp_path):
  """Streams of one byte each: "<", "p", "a", "g", "e" (and of "</page>"
  too), so that a range claims a stream holding a piece of a tag only."""
  text, tags = titled_dump
  cuts = []
  for tag in (b"<page>", b"</page>"):
    for position in tags[tag][2::5]:
      cuts += range(position, position + len(tag) + 1)
  path = str(tmp_path / PBZIP_NAME)
  streams = wikidumps.write_streams_bz2(path, text, cuts)
  assert _reads(_read(path, bundle_size)) == _expected_reads(text, streams)


def test_pbzip2_blocks_of_a_german_dump_are_read_once(tmp_path):
  """The reviewer's case, scaled down: a German dump cut into blocks of a
  fixed size (as ``pbzip2 -b`` cuts its input), each its own stream, the
  cuts wherever they fall, read whole and in ranges of several sizes; and
  random cuts, half of them inside a ``<page>`` tag."""
  text = wikidumps.dump_text(_titled_pages(600), lang="de").encode()
  path = str(tmp_path / PBZIP_NAME)
  pages = [m.start() for m in re.finditer(b"<page>", text)]
  rng = random.Random(7)
  layouts = [range(block, len(text), block) for block in (4999, 20000)]
  layouts += [[rng.randrange(len(text)) for _ in range(30)]
              + [rng.choice(pages) + rng.randint(1, 5) for _ in range(30)]
              for _ in range(2)]
  for cuts in layouts:
    streams = wikidumps.write_streams_bz2(path, text, cuts)
    expected = _expected_reads(text, streams)
    assert len(expected) == 600
    size = os.path.getsize(path)
    for bundle_size in (None, 997, size // 7, size // 2):
      assert _reads(_read(path, bundle_size)) == expected, (
          len(streams), bundle_size)


# --- A multistream index that does not fit its dump -------------------------

DUMP_NAME = "testwiki-pages-articles-multistream.xml.bz2"


def _many_pages(n, tag):
  """``n`` short articles of lengths that vary, so that two dumps of
  different ``tag`` have their streams at different offsets."""
  return [WikiPage("%s %d" % (tag, i), "'''%s %d''' is article %d. %s" % (
      tag, i, i, "It has a sentence more. " * (i % 17))) for i in range(n)]


@pytest.fixture(name="indexed", scope="module")
def _indexed(tmp_path_factory):
  """One 4,500-page multistream dump (100 pages a stream), in folders that
  each hold it with another index beside it, named as ``index_path_for``
  expects: ``own`` its own, ``none`` no index, ``other`` the index of
  another dump of 4,500 pages, ``shifted+3`` and ``shifted-3`` its own with
  every offset moved by 3 bytes."""
  root = tmp_path_factory.mktemp("indexes")
  index_name = wikidump.index_path_for(DUMP_NAME)
  paths = {}
  for kind in ("own", "none", "other", "shifted+3", "shifted-3", "another"):
    (root / kind).mkdir()
    paths[kind] = str(root / kind / DUMP_NAME)
  wikidumps.write_multistream(paths["own"], _many_pages(4500, "Page"),
                              str(root / "own" / index_name))
  wikidumps.write_multistream(paths["another"], _many_pages(4500, "Other"),
                              str(root / "other" / index_name))
  data = open(paths["own"], "rb").read()
  for kind in ("none", "other", "shifted+3", "shifted-3"):
    with open(paths[kind], "wb") as f:
      f.write(data)
  own_index = wikidumps.read_index(str(root / "own" / index_name))
  for shift in (3, -3):
    wikidumps.write_index(str(root / ("shifted%+d" % shift) / index_name),
                          [(offset + shift, rest) for offset, rest in
                           own_index])
  return paths


@pytest.fixture(name="scanned", scope="module")
def _scanned(indexed):
  """The articles of the ``indexed`` dump read without an index, by
  bundle size."""
  reads = {}

  def read(bundle_size):
    if bundle_size not in reads:
      reads[bundle_size] = _articles(_read(indexed["none"], bundle_size))
    return reads[bundle_size]
  return read


@pytest.mark.parametrize("bundle_size", [None, 4000, 30000])
@pytest.mark.parametrize("kind", ["other", "shifted+3", "shifted-3", "own"])
def test_an_index_that_does_not_fit_its_dump_is_set_aside(
    indexed, scanned, kind, bundle_size, monkeypatch, caplog):
  # A fresh worker process: nothing known of any index yet.
  monkeypatch.setattr(wikidump, "_INDEX_CHECKS", {})
  wikidump.stream_offsets.cache_clear()
  assert len(scanned(bundle_size)) == 4500
  counts = collections.Counter()
  monkeypatch.setattr(wikidump.metrics, "count",
                      lambda name, n=1: counts.update({name: n}))
  with caplog.at_level("WARNING"):
    out = _read(indexed[kind], bundle_size)
  assert not [e for e in out if isinstance(e, rejects.Rejected)]
  # The same articles under the same ids as a read without any index.
  assert _articles(out) == scanned(bundle_size)
  index = wikidump.index_path_for(indexed[kind])
  said = [r.getMessage() for r in caplog.records if index in r.getMessage()]
  if kind == "own":
    assert not said and not counts["wiki_indexes_not_matching_dump"]
    assert wikidump._INDEX_CHECKS[(index, indexed[kind])].offsets
  else:
    # Said once, by name, for the whole read; nothing blamed on the dump.
    assert len(said) == 1 and "does not fit" in said[0], said
    assert counts["wiki_indexes_not_matching_dump"] == 1
    assert not counts["corrupt_wiki_streams"]


def test_an_index_is_checked_at_the_offset_a_range_uses(indexed, scanned,
                                                        monkeypatch, caplog):
  # An index whose sampled offsets fit but one other does not: the range
  # that would start there finds it and scans instead.
  monkeypatch.setattr(wikidump, "_INDEX_CHECKS", {})
  monkeypatch.setattr(wikidump, "INDEX_SAMPLE", 2)  # the first and the last
  directory = os.path.dirname(indexed["none"])
  index = wikidump.index_path_for(indexed["own"])
  lines = wikidumps.read_index(index)
  offsets = sorted({offset for offset, _ in lines})
  # The first stream of the range that starts mid-file.
  middle = os.path.getsize(indexed["own"]) // 2 // 4000 * 4000
  wrong = min(offset for offset in offsets if offset >= middle)
  assert offsets[0] < wrong < offsets[-1]
  partial = os.path.join(directory, "..", "partial")
  os.makedirs(partial, exist_ok=True)
  dump = os.path.join(partial, DUMP_NAME)
  with open(dump, "wb") as f:
    f.write(open(indexed["own"], "rb").read())
  wikidumps.write_index(wikidump.index_path_for(dump), [
      (offset + 5 if offset == wrong else offset, rest)
      for offset, rest in lines])
  wikidump.stream_offsets.cache_clear()
  with caplog.at_level("WARNING"):
    out = _read(dump, 4000)
  assert _articles(out) == scanned(4000)
  assert [r for r in caplog.records if "does not fit" in r.getMessage()
          and "offset %d " % (wrong + 5) in r.getMessage()]


def test_a_stream_header_is_recognised_where_it_begins(tmp_path):
  path = tmp_path / "streams.bz2"
  first, empty = bz2.compress(b"<page>x</page>"), bz2.compress(b"")
  path.write_bytes(first + empty + b"BZh0" + b"\0" * 20)
  with open(path, "rb") as f:
    assert wikidump.is_stream_start(f, 0)
    assert wikidump.is_stream_start(f, len(first))  # an empty stream
    for offset in (1, len(first) - 1, len(first) + len(empty), 10 ** 9, -1):
      assert not wikidump.is_stream_start(f, offset), offset
    assert wikidump.first_misfit(f, (0, len(first))) is None
    assert wikidump.first_misfit(f, (0, 3, len(first))) == 3


# --- Namespace names of every language --------------------------------------

# The Media, File and Category namespaces as these wikis' <siteinfo> names
# them (their dumps list no aliases).
SITE_NAMESPACES = {
    "de": [(-2, "Medium"), (0, ""), (6, "Datei"), (14, "Kategorie")],
    "fr": [(-2, "Média"), (0, ""), (6, "Fichier"), (14, "Catégorie")],
    "es": [(-2, "Medio"), (0, ""), (6, "Archivo"), (14, "Categoría")],
    "ru": [(-2, "Медиа"), (0, ""), (6, "Файл"), (14, "Категория")],
}


def _alias_data():
  with open(wikidump.NAMESPACE_ALIASES_PATH, encoding="utf-8") as f:
    return json.load(f)


def _accepted_names(lang):
  """Every name MediaWiki accepts for the three namespaces on a wiki in
  ``lang``: the data file, made from MediaWiki's own Messages*.php, with
  English's."""
  data = _alias_data()
  return sorted({n for names in data["always"].values() for n in names}
                | {n for names in data["languages"][lang].values()
                   for n in names})


def _spellings(name):
  """Ways a link may write a namespace name that MediaWiki reads as it:
  any case (Language::lc), underscores for spaces, spaces around it
  (MediaWikiTitleCodec::splitTitleString)."""
  return sorted({name, name.lower(), name.upper(),
                 name[0].swapcase() + name[1:], name.replace(" ", "_"),
                 " %s " % name, name + "_"})


def test_the_alias_data_is_mediawikis():
  data = _alias_data()
  assert data["source"].startswith("MediaWiki 1.39.17:")
  assert data["always"] == {"-2": ["Media"], "6": ["File", "Image"],
                            "14": ["Category"]}
  languages = data["languages"]
  assert len(languages) > 350
  # The names a German, Spanish, French and Russian editor writes.
  assert languages["de"] == {"-2": ["Medium"], "6": ["Bild", "Datei"],
                             "14": ["Kategorie"]}
  assert {"Imagen", "Archivo"} <= set(languages["es"]["6"])
  assert "Fichier" in languages["fr"]["6"]
  assert {"Изображение", "Файл"} <= set(languages["ru"]["6"])
  assert data["codes"]["als"] == "gsw"


@pytest.mark.parametrize("lang", sorted(SITE_NAMESPACES))
def test_file_and_category_links_under_every_name_leave_no_text(lang,
                                                                tmp_path):
  lines, expected = [], []
  for name in _accepted_names(lang):
    for spelled in _spellings(name):
      for link in ("[[%s:Hamburg.jpg|mini|links|Hafen von Hamburg]]",
                   "[[%s:Hafen von Hamburg]]", "[[ %s:Hafen|Hamburg]]"):
        lines.append("Satz %d %s und [[Hamburg|die Stadt]] endet." % (
            len(lines), link % spelled))
        expected.append("Satz %d und die Stadt endet." % len(expected))
  path = str(tmp_path / ("%swiki-pages-articles.xml" % lang))
  wikidumps.write_plain(path, [WikiPage("Hamburg", "\n".join(lines))],
                        namespaces=SITE_NAMESPACES[lang], lang=lang)
  wikidump.hidden_namespaces_of.cache_clear()
  [(_, paragraphs)] = _read(path)
  assert paragraphs == expected


@pytest.mark.parametrize("lang", sorted(SITE_NAMESPACES))
def test_a_leading_colon_makes_a_visible_link(lang):
  hidden = wikidump.hidden_link_namespaces(b"<siteinfo/>", lang)
  category = SITE_NAMESPACES[lang][3][1]
  # Parser::handleInternalLinks2: spaces trimmed, then a colon forces an
  # ordinary link, shown as its title less the colon.
  assert wikidump.wikitext_paragraphs(
      "Siehe [[:%s:Hamburg]] und [[ :%s:Hafen|den Hafen]]." % (
          category, category), hidden) == [
              "Siehe %s:Hamburg und den Hafen." % category]
  # A colon that names no namespace is part of an ordinary title.
  assert wikidump.wikitext_paragraphs(
      "[[Star Wars: Episode I|Episode I]] bleibt.", hidden) == [
          "Episode I bleibt."]


@pytest.mark.parametrize("header, hides_bild", [
    # xml:lang of <mediawiki>, as XmlDumpWriter writes the content language.
    (dict(lang="de", dbname="mywiki"), True),
    # No xml:lang: <base>'s host, then <dbname>.
    (dict(lang="en", xml_lang=False, dbname="mywiki",
          base="https://de.wikipedia.org/wiki/Wikipedia:Hauptseite"), True),
    (dict(lang="en", xml_lang=False, dbname="dewiki"), True),
    # A deprecated code (LanguageCode): als is Alemannic, gsw.
    (dict(lang="als", xml_lang=False), True),
    # No code the data has: the languages whose File is called Datei.
    (dict(lang="xx", namespaces=SITE_NAMESPACES["de"]), True),
    # English: Bild is no namespace there.
    (dict(lang="en"), False),
])
def test_a_dumps_language_is_found_in_its_head(header, hides_bild, tmp_path):
  path = str(tmp_path / "somewiki-pages-articles.xml")
  wikidumps.write_plain(path, [WikiPage("A", "a")], **header)
  wikidump.hidden_namespaces_of.cache_clear()
  hidden = wikidump.hidden_namespaces_of(path)
  assert wikidump.HIDDEN_LINK_NAMESPACES <= hidden
  assert ("bild" in hidden) == hides_bild


def test_every_languages_names_are_hidden_on_its_wiki():
  data = _alias_data()
  for lang, by_key in data["languages"].items():
    hidden = wikidump.hidden_link_namespaces(b"<siteinfo/>", lang)
    for name in {n for names in by_key.values() for n in names}:
      for spelled in _spellings(name):
        assert wikidump._link_is_hidden(spelled + ":X", hidden), (lang,
                                                                  spelled)
  # The BCP 47 codes a dump's xml:lang may hold reach MediaWiki's.
  assert "датотека" in wikidump.hidden_link_namespaces(b"<siteinfo/>",
                                                      "sr-Cyrl")


def _load_generator():
  spec = importlib.util.spec_from_file_location(
      "make_namespace_aliases", os.path.join(
          REPO, "tests", "tools", "make_namespace_aliases.py"))
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


def test_the_alias_generator_resolves_as_mediawiki_does(tmp_path):
  # A MediaWiki tree of four languages, written as its files are.
  messages = tmp_path / "languages" / "messages"
  messages.mkdir(parents=True)
  (messages / "MessagesEn.php").write_text(
      "<?php\n$namespaceNames = [\n\tNS_MEDIA => 'Media',\n"
      "\tNS_FILE => 'File',\n\tNS_CATEGORY => 'Category',\n];\n"
      "$namespaceAliases = [\n\t'Image' => NS_FILE,\n"
      "\t'Image_talk' => NS_FILE_TALK,\n];\n")
  (messages / "MessagesAa.php").write_text(
      "<?php\n$namespaceNames = [\n\tNS_FILE => 'Aa_file', // a comment\n"
      "];\n$namespaceAliases = [\n\t\"Aa_\\\"old\\\"\" => NS_FILE,\n];\n")
  (messages / "MessagesAb.php").write_text(
      "<?php\n$fallback = 'aa';\n$namespaceNames = [ NS_CATEGORY => 'X' ];\n"
      "$namespaceNames = [ NS_CATEGORY => 'Ab_cat' ];\n")
  (messages / "MessagesAb_latn.php").write_text(
      "<?php\n$fallback = 'ab';\n$namespaceNames = [ NS_FILE => 'Latin' ];\n")
  converters = tmp_path / "includes" / "language" / "converters"
  converters.mkdir(parents=True)
  (converters / "AbConverter.php").write_text(
      "<?php\nclass AbConverter extends LanguageConverter {\n"
      "\tpublic function getMainCode(): string {\n\t\treturn 'ab';\n\t}\n"
      "\tpublic function getLanguageVariants(): array {\n"
      "\t\treturn [ 'ab', 'ab-latn' ];\n\t}\n}\n")
  data_dir = tmp_path / "includes" / "languages" / "data"
  data_dir.mkdir(parents=True)
  (data_dir / "Names.php").write_text(
      "<?php\nnamespace MediaWiki\\Languages\\Data;\nclass Names {\n"
      "\t/** @phpcs-require-sorted-array */\n\tpublic static $names = [\n"
      "\t\t'aa' => 'Afar', # Afar\n\t\t'ab' => 'аԥсшәа', # Abkhaz\n"
      "\t\t'nb' => 'norsk bokmål', # Norwegian\n\t];\n}\n")
  config = tmp_path / "operations-mediawiki-config"
  (config / "wmf-config").mkdir(parents=True)
  (config / "langlist").write_text("aa\nab\nnew\n")
  (config / "wmf-config" / "interwiki.php").write_text(
      "<?php\nreturn [\n\t'__list:_wiki' => 'aa ab new nb jp w',\n"
      "\t'__list:_wikivoyage' => 'aa ab new nb jp wikipedia voy',\n];\n")
  (tmp_path / "includes" / "Defines.php").write_text(
      "<?php\ndefine( 'MW_VERSION', '9.9.9' );\n")
  (tmp_path / "includes" / "language" / "LanguageCode.php").write_text(
      "<?php\nclass LanguageCode {\n"
      "\tprivate const DEPRECATED_LANGUAGE_CODE_MAPPING = [\n"
      "\t\t'old' => 'aa',\n\t];\n"
      "\tprivate const NON_STANDARD_LANGUAGE_CODE_MAPPING = [\n"
      "\t\t'ab-latn' => 'ab-Latn-XY',\n\t];\n}\n")
  data = _load_generator().build(str(tmp_path), "a test tree", str(config),
                                 "a test checkout")
  assert data["source"].startswith("MediaWiki 9.9.9:")
  assert data["codes"] == {"old": "aa", "ab-latn-xy": "ab-latn"}
  languages = data["languages"]
  assert languages["aa"] == {"6": ["Aa \"old\"", "Aa file"]}
  # Its fallback's names where it has none, every alias along the
  # sequence, the last of two assignments, its variant's name.
  assert languages["ab"] == {"6": ["Aa \"old\"", "Aa file", "Latin"],
                             "14": ["Ab cat"]}
  # A $fallback list is not followed further: aa is not in ab-latn's.
  assert languages["ab-latn"] == {"6": ["Latin"], "14": ["Ab cat"]}
  assert "en" not in languages
  # The Wikipedias' interwiki prefixes that are language editions (new,
  # though this Names.php lacks it) or that Names.php names (nb); not jp
  # (an alias of ja that Names.php does not name) nor w (Wikipedia).
  assert data["interlanguage"]["prefixes"] == ["aa", "ab", "nb", "new"]
  assert data["interlanguage"]["origin"] == "a test checkout"
  # A language edition the interwiki map lacks: the files do not fit.
  (config / "langlist").write_text("aa\nab\nnew\nxyz\n")
  with pytest.raises(SystemExit, match="xyz"):
    _load_generator().build(str(tmp_path), "a test tree", str(config))


# --- Interlanguage links and other links with a colon ------------------------

# Links whose prefix is no interwiki prefix of a Wikipedia that names a
# language: ordinary links to main-namespace articles whose titles hold a
# colon. mwparserfromhell's strip_code shows such a link as MediaWiki does
# (its text, or its title): a real oracle here, as no prefix is an
# interwiki.
COLON_TITLES = [
    "Die Serie [[CSI: Miami]] lief lange.",
    "Ihr Ableger [[CSI: NY|CSI New York]] auch.",
    "Ein Artikel über [[USA: Land]] fehlt.",
    "[[Star Wars: Episode I|Episode I]] und [[Mission: Impossible]].",
    "[[Talk about: it]], [[FBI: Most Wanted]] und [[Re: Zero]] bleiben.",
]


def _refuse(_):
  raise ValueError("the parser gives up")


@pytest.mark.parametrize("wikitext", COLON_TITLES)
def test_links_whose_prefix_is_no_language_show_their_text(wikitext):
  expected = [mwparserfromhell.parse(wikitext).strip_code().strip()]
  assert wikidump.wikitext_paragraphs(wikitext) == expected
  # The same when the parser gives up and patterns clean the text.
  assert wikidump.wikitext_paragraphs(wikitext, parse=_refuse) == expected


@pytest.mark.parametrize("wikitext, paragraphs", [
    # At the end of an English article, as interlanguage links stood before
    # Wikidata.
    ("Hamburg is a city.\n\n[[de:Hamburg]]\n[[fr:Hambourg]]\n"
     "[[zh-min-nan:Hamburg]]\n[[simple:Hamburg]]\n[[be-x-old:Гамбург]]",
     ["Hamburg is a city."]),
    # Any case, spaces around the colon (MediaWikiTitleCodec), an alias
    # prefix of the map that Names.php names (nb), a text after the bar.
    ("A [[DE : Hamburg]] B [[ nb:Oslo ]] C [[fr:Paris|Paris]] D",
     ["A B C D"]),
    # A leading colon makes an ordinary link, shown less the colon.
    ("See [[:de:Hamburg]] and [[:fr:Paris|the French article]].",
     ["See de:Hamburg and the French article."]),
    # A prefix of the interwiki map that names no language is a link to
    # another wiki, shown (wikt: Wiktionary, w: Wikipedia).
    ("A [[wikt:Stadt|word]] and [[w:Hamburg]].", ["A word and w:Hamburg."]),
])
def test_interlanguage_links_leave_no_text(wikitext, paragraphs):
  """MediaWiki's rule (``Parser::handleInternalLinks2``, 1.39): a link
  ``[[prefix:Title]]`` without a leading colon whose prefix is an interwiki
  prefix of the wiki and names a language (``LanguageNameUtils::
  getLanguageName``: ``Names.php``) is an interlanguage link: it goes to
  the page's language links and leaves no text. On Wikipedias those
  prefixes are the language editions' codes and a few aliases (Wikimedia's
  interwiki map: ``interlanguage`` in the data file). mwparserfromhell
  knows no interwikis (it shows ``de:Hamburg``): no oracle here."""
  assert wikidump.wikitext_paragraphs(wikitext) == paragraphs
  assert wikidump.wikitext_paragraphs(wikitext, parse=_refuse) == paragraphs


def test_the_interlanguage_prefixes_are_the_wikipedias():
  data = _alias_data()["interlanguage"]
  assert "interwiki.php" in data["source"] and "langlist" in data["source"]
  assert "operations-mediawiki-config" in data["origin"]
  prefixes = set(data["prefixes"])
  assert 350 < len(prefixes) < 500
  assert prefixes == wikidump.interlanguage_prefixes()
  # Language editions, of three letters and more too, and the aliases of
  # the map that Names.php names.
  assert {"de", "en", "fr", "simple", "zh-min-nan", "be-x-old", "be-tarask",
          "bat-smg", "roa-rup", "war", "new", "nb", "zh-cn"} <= prefixes
  # Prefixes of the map that name no language, and prefixes of none.
  assert not {"w", "wikt", "jp", "cz", "dk", "epo", "en-simple", "csi",
              "usa", "fbi"} & prefixes


def test_an_english_articles_links_through_the_reader(tmp_path):
  path = str(tmp_path / "enwiki-pages-articles.xml")
  wikidumps.write_plain(path, [WikiPage("CSI: Miami", (
      "'''[[CSI: Miami]]''' is a spin-off of [[CSI: Crime Scene "
      "Investigation|CSI]], like [[CSI: NY|CSI New York]].\n\n"
      "[[Category:Television]]\n[[de:CSI: Miami]]\n"
      "[[fr:Les Experts : Miami]]"))])
  wikidump.hidden_namespaces_of.cache_clear()
  [(_, paragraphs)] = _read(path)
  assert paragraphs == [
      "CSI: Miami is a spin-off of CSI, like CSI New York."]

# --- <nowiki> and <pre> keep their text --------------------------------------


def _lines(text):
  """Non-blank lines, their runs of spaces made one (the reader collapses
  spaces that markup leaves; the characters are what is compared)."""
  return [" ".join(line.split()) for line in text.split("\n") if line.strip()]


@pytest.mark.parametrize("wikitext", [
    "<nowiki>{{cite web}}</nowiki>",
    "See <nowiki>{{cite web|url=x}}</nowiki> for the template.",
    "A <nowiki>[[not a link]]</nowiki> here.",
    "<nowiki>[[Paris|the capital]] and [[File:X.jpg|thumb|x]]</nowiki>",
    "<nowiki>'''x'''</nowiki> and <nowiki>''y''</nowiki>",
    "Entities: <nowiki>&lt;b&gt; &amp; &eacute; &#233; &#xE9; &foo;</nowiki>",
    "<nowiki><!-- not a comment --></nowiki> shown",
    "<nowiki><ref>not a reference</ref></nowiki>",
    "<NoWiki>[[a]]</NOWIKI> and <nowiki foo=\"bar\">[[b]]</nowiki >",
    "[[Paris]]<nowiki/>ian and [[Paris]]<nowiki />s",
    "<nowiki>__NOTOC__ ~~~~ * x # y</nowiki>",
    "<nowiki>{| a table |}</nowiki> after",
    "Before <nowiki>a\n\nb</nowiki> after",
    "[[Paris|<nowiki>the [[capital]]</nowiki>]] of France",
    "'''<nowiki>bold</nowiki>''' and (<nowiki>{{x}}</nowiki>)",
    "a <!-- <nowiki>x</nowiki> --> b",
    "{{template|<nowiki>x</nowiki>}}text",
    "<nowiki>unclosed [[link]] stays",
    "<pre>{{x}} [[y]] '''z''' &lt;tag&gt;</pre>",
    "<pre>line one\nline two</pre>",
])
def test_nowiki_and_pre_show_their_text_as_mediawiki_does(wikitext):
  # The reference: mwparserfromhell's strip_code, which keeps the contents
  # of <nowiki> and <pre> as written, entities decoded.
  expected = _lines(mwparserfromhell.parse(wikitext).strip_code())
  assert [" ".join(p.split())
          for p in wikidump.wikitext_paragraphs(wikitext)] == expected


def test_nowiki_inside_pre_is_dropped_as_mediawiki_does():
  # CoreTagHooks::pre (MediaWiki 1.39.17) removes <nowiki> tags inside a
  # <pre>, keeping their text; strip_code keeps the tags.
  assert wikidump.wikitext_paragraphs(
      "<pre>a <nowiki>[[b]]</nowiki> c</pre>") == ["a [[b]] c"]


def test_nowiki_is_kept_when_the_parser_gives_up():
  def refuse(_):
    raise ValueError("the parser gives up")

  assert wikidump.wikitext_paragraphs(
      "<nowiki>{{x}} [[y]] <b>z</b></nowiki> and [[w|v]]",
      parse=refuse) == ["{{x}} [[y]] <b>z</b> and v"]


def test_literals_are_set_aside_before_any_pattern():
  text, literals = wikidump.protect_literals(
      "a<!--c--><nowiki>{{t}}</nowiki>\ue000b<pre/>c<nowiki></nowiki>d")
  assert literals == ["{{t}}"]
  assert text == "a\ue0000\ue001bcd"
  assert wikidump.restore_literals(text, literals) == "a{{t}}bcd"
  # Thousands of unclosed tags are text, read in linear time.
  text = "<nowiki>a" * 20000 + "<pre>b" * 20000
  assert wikidump.protect_literals(text) == (text, [])
