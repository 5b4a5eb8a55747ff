"""Wikipedia's own dumps as documents, without WikiExtractor.

Reads MediaWiki ``pages-articles`` XML dumps (export schema 0.10/0.11,
https://www.mediawiki.org/xml/export-0.11.xsd): ``<mediawiki>``, a
``<siteinfo>`` header naming the namespaces, then one ``<page>`` per page with
its ``<title>``, ``<ns>``, ``<redirect title=…/>`` when it is one, and the
wikitext of its revision in ``<revision><text>``.

One document per article: namespace 0 only; redirects and disambiguation
pages skipped; the wikitext turned into paragraphs of plain text
(``wikitext_paragraphs``), which the sentence stage then splits. Links into
the File, Media and Category namespaces show nothing under any name
MediaWiki accepts for the wiki's language (``hidden_link_namespaces``, from
``wiki_namespace_aliases.json``), nor do interlanguage links, whose prefix
is one of the Wikipedias' language prefixes (``interlanguage_prefixes``,
from the same file); other links with a colon (``[[CSI: Miami]]``) show
their text; ``<nowiki>`` and ``<pre>`` keep their text literally
(``protect_literals``).

How a file is split across workers (``WikiDumpSource``):

* ``.bz2`` — plain or *multistream*. A multistream dump
  (``…-pages-articles-multistream.xml.bz2``) is a concatenation of bz2
  streams: the first holds the header, each next one 100 pages. Each stream is
  claimed at its byte offset, so byte ranges of one file go to different
  workers and none decompresses what it does not own. A range finds its first
  stream with the index (``…-multistream-index.txt.bz2`` beside the dump,
  lines ``offset:page_id:title``) when there is one, and otherwise by scanning
  the compressed bytes for a stream header (``BZh`` + level + the block magic
  ``0x314159265359``); each further stream starts where the previous one
  ended. Streams need not end where pages do (``pbzip2`` writes blocks of
  a fixed size, cut mid-tag): a page belongs to the stream where its
  ``<page>`` tag begins, and the range claiming that stream reads on past
  its end until the page is out. An index is trusted only where it fits its
  dump: a few of its offsets (``first_misfit``), and the one a range is
  about to use, must be where a stream header begins. One that does not
  fit (another dump's, or shifted) is said once, by the range at byte 0, as
  a warning and ``wiki_indexes_not_matching_dump``, and the dump is scanned
  instead: no page is lost to it. A single-stream ``.bz2`` is one stream:
  one worker reads it.
* Plain ``.xml``: each page is claimed at the offset of its ``<page>`` tag.
* Other compressions (``.gz``, ``.zst``): one worker reads the whole file.

Pages are cut out of the decompressed bytes one at a time (``PageSplitter``),
so memory per worker is bounded by one page (a page over
``MAX_PAGE_BYTES`` is set aside as ``oversized_wiki_pages``). A bz2 stream
that cannot be decompressed is set aside as one ``corrupt_wiki_streams``
record (its pages are lost) and reading goes on at the next stream header.

Counters: ``wiki_pages_read`` (every page claimed), ``wiki_pages_skipped_
namespace``, ``wiki_pages_skipped_redirect``, ``wiki_pages_skipped_
disambiguation``, ``wiki_pages_empty`` (an article with no text left),
``wiki_pages_unparsed`` (wikitext mwparserfromhell rejected: kept through a
plainer regex clean-up), ``wiki_pages_malformed_xml`` (a page that is not
well-formed XML: its text taken out by pattern), ``wiki_indexes_not_
matching_dump`` (a multistream index whose offsets are not the dump's
streams: not used).

Document ids are ``path:offset#k``: the offset of the page's bz2 stream (of
its ``<page>`` tag in plain XML), ``#k`` for the k-th page of a stream.
"""

import bisect
import bz2
import functools
import html
import json
import logging
import os
import re
import xml.etree.ElementTree as ET
from typing import (Callable, Dict, FrozenSet, Iterator, List, NamedTuple,
                    Optional, Tuple)

from apache_beam.io import filebasedsource
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

from transforms import metrics
from transforms import rejects
from transforms.paths import InputError, counting_input_bytes, relative_name

# Wikipedia's own limit on a page's wikitext is 2 MiB; escaped as XML with its
# revision metadata a page stays far below this.
MAX_PAGE_BYTES = 32 << 20
# Compressed bytes fed to the decompressor at a time.
_CHUNK = 1 << 18
# The start of a bz2 stream: "BZh", the block size 1-9, then the first
# block's magic (pi in BCD), or the end-of-stream magic for an empty stream.
_STREAM_HEADER = re.compile(rb"BZh[1-9](?:1AY&SY|\x17rE8P\x90)")
_HEADER_BYTES = 10
_SITEINFO_BYTES = 1 << 20
_PAGE_OPEN = b"<page>"
_PAGE_CLOSE = b"</page>"

# Namespaces whose links show nothing in an article's text, by English names
# and aliases (as ``namespace_key`` writes them). Each dump adds the names its
# <siteinfo> declares and those MediaWiki gives its language
# (``hidden_link_namespaces``).
HIDDEN_LINK_NAMESPACES = frozenset({"file", "image", "media", "category"})
_HIDDEN_NAMESPACE_KEYS = ("-2", "6", "14")  # Media, File, Category
# The names and aliases of those namespaces in every language MediaWiki has,
# made by tests/tools/make_namespace_aliases.py from MediaWiki's own files
# (the file names the release).
NAMESPACE_ALIASES_PATH = os.path.join(os.path.dirname(__file__),
                                      "wiki_namespace_aliases.json")
# MediaWiki's title whitespace (MediaWikiTitleCodec::splitTitleString): runs of
# these are one space; bidi marks are dropped.
_TITLE_SPACES = re.compile(
    "[ _\xa0\u1680\u180e\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+")
_BIDI_MARKS = re.compile("[\u200e\u200f\u202a-\u202e]+")
# <dbname> of a Wikimedia wiki: the language code (its dashes as
# underscores) and the project.
_DBNAME = re.compile(r"^([a-z][a-z0-9_]*?)(?:wiki|wiktionary|wikibooks|"
                     r"wikinews|wikiquote|wikisource|wikiversity|wikivoyage)$")
_MEDIAWIKI_LANG = re.compile(rb"<mediawiki\b[^>]*?\sxml:lang=[\"']([^\"']+)")

# Templates that mark a disambiguation page (English Wikipedia's
# Template:Disambiguation and its redirects and variants), or the magic word.
_DISAMBIGUATION = re.compile(
    r"\{\{\s*(?:disambiguation|disambig|disamb|dab|dbig|hndis|geodis|"
    r"numberdis|letter-numbercombdisambig|mathdab|schooldis|shipindex)"
    r"\s*(?:\||\}\})|__DISAMBIG__", re.IGNORECASE)

# A comment, or the opening of a tag whose contents MediaWiki shows literally
# (CoreTagHooks::nowiki and ::pre); its end is looked for on its own.
_COMMENT_OR_LITERAL = re.compile(r"<!--|<(nowiki|pre)(?=[\s/>])",
                                 re.IGNORECASE)
_LITERAL_CLOSE = {name: re.compile(r"</%s\s*>" % name, re.IGNORECASE)
                  for name in ("nowiki", "pre")}
# CoreTagHooks::pre drops <nowiki> tags inside a <pre>, keeping their text.
_NOWIKI_IN_PRE = re.compile(r"<nowiki>(.*?)</nowiki>", re.IGNORECASE | re.DOTALL)
# Where the k-th literal stands while the rest is cleaned up: private-use
# characters, which no pattern below and no parser node changes (as
# MediaWiki's own strip markers stand in for them).
_LITERAL_MARK = "\ue000%d\ue001"
_LITERAL_MARKS = re.compile("\ue000(\\d+)\ue001")
_REF = re.compile(r"<ref\b[^>]*?/>|<ref\b[^>]*>.*?(?:</ref\s*>|\Z)",
                  re.DOTALL | re.IGNORECASE)
# Templates ({{…}}) and tables ({|…|}, whose delimiters start a line).
_BLOCK_TOKEN = re.compile(r"\{\{|\}\}|^[ \t]*\{\||^[ \t]*\|\}", re.MULTILINE)
# [[target]] or [[target|text]] with no namespace and no nested link.
_SIMPLE_LINK = re.compile(r"\[\[([^\[\]|:]*)(?:\|([^\[\]]*))?\]\]")
_MAGIC_WORD = re.compile(r"__[A-Z]+__")
_LEFTOVER_QUOTES = re.compile(r"'{2,}")
_EMPTY_PARENTHESES = re.compile(r"\([ \t]*[,;:]?[ \t]*\)")
_SPACE_BEFORE_PUNCTUATION = re.compile(r" +(?=[,.;:!?)])")
_SPACES = re.compile(r"[ \t]{2,}")
# Tags whose contents are not article text.
DROPPED_TAGS = frozenset({
    "ref", "references", "math", "chem", "ce", "score", "timeline", "gallery",
    "imagemap", "graph", "syntaxhighlight", "source", "table", "templatedata",
    "templatestyles", "mapframe", "maplink", "inputbox", "categorytree",
    "includeonly", "hiero", "charinsert", "indicator", "section"})
# A list item (*, #) or a definition term (;), dropped as WikiExtractor
# drops them; indented lines (:) are kept.
_LIST_MARK = "\x00"
_LIST_MARKUP = ("*", "#", ";")

class CorruptStream(NamedTuple):
  """A bz2 stream that cannot be decompressed: its pages are lost."""
  error: str


class Page(NamedTuple):
  """One ``<page>`` of a dump. ``namespace`` is its ``<ns>`` ("0" for
  articles), ``text`` the wikitext of its revision."""
  title: str
  namespace: str
  redirect: bool
  text: str


# --- Pages out of the XML ---------------------------------------------------


class PageSplitter:
  """Cuts a dump's decompressed bytes, fed in pieces, into ``<page>`` …
  ``</page>`` byte strings (no text of a page holds a literal ``<page>``: the
  XML escapes every ``<``). Bytes before the first ``<page>`` (the header, or
  the tail of a page that began before a reader's range) are skipped.

  ``feed`` yields ``(offset, page)``, ``offset`` counting the bytes fed
  before the page's ``<page>`` tag; a page over ``max_page_bytes`` comes out
  as ``(offset, None)`` once its end is found, its bytes dropped as they
  come."""

  def __init__(self, max_page_bytes: int = MAX_PAGE_BYTES):
    self._max = max_page_bytes
    self._buf = bytearray()
    self._base = 0  # offset of self._buf[0] in the bytes fed
    self._page_start = None  # offset of the open page's <page>
    self._oversized = False
    self._searched = 0  # self._buf[:_searched] holds no end tag

  @property
  def open_page_start(self) -> Optional[int]:
    """Offset of a page begun and not yet ended, or None."""
    return self._page_start

  @property
  def unfinished_start(self) -> Optional[int]:
    """Offset of the first byte of a page not yet cut out: an open page's
    ``<page>``, or else the bytes fed last when they may be a ``<page>`` tag
    cut short (``<``, ``<p`` … ``<page``: the tag goes on in the bytes fed
    next); None when the bytes fed hold neither."""
    if self._page_start is not None:
      return self._page_start
    # With no page open, feed keeps fewer bytes than a tag.
    i = self._buf.rfind(b"<")
    if i >= 0 and _PAGE_OPEN.startswith(bytes(self._buf[i:])):
      return self._base + i
    return None

  def feed(self, data: bytes) -> Iterator[Tuple[int, Optional[bytes]]]:
    self._buf += data
    while True:
      if self._page_start is None:
        i = self._buf.find(_PAGE_OPEN)
        if i < 0:
          # Keep what could be the start of a split <page> tag.
          keep = len(_PAGE_OPEN) - 1
          drop = max(0, len(self._buf) - keep)
          del self._buf[:drop]
          self._base += drop
          return
        del self._buf[:i]
        self._base += i
        self._page_start = self._base
        self._searched = 0
      j = self._buf.find(_PAGE_CLOSE, max(0, self._searched))
      if j < 0:
        self._searched = max(0, len(self._buf) - len(_PAGE_CLOSE) + 1)
        if len(self._buf) > self._max:
          # Too big to hold: drop its bytes, remember it was oversized.
          self._oversized = True
          drop = self._searched
          del self._buf[:drop]
          self._base += drop
          self._searched = 0
        return
      end = j + len(_PAGE_CLOSE)
      oversized = self._oversized or end > self._max
      page = None if oversized else bytes(self._buf[:end])
      start = self._page_start
      del self._buf[:end]
      self._base += end
      self._page_start, self._oversized, self._searched = None, False, 0
      yield start, page


_TEXT = re.compile(rb"<text\b[^>]*?(?:/>|>(.*?)(?:</text>|\Z))", re.DOTALL)
_FIELD = {name: re.compile(rb"<%s>(.*?)</%s>" % (name, name), re.DOTALL)
          for name in (b"title", b"ns")}


def parse_page(xml: bytes, count: metrics.Count = metrics.no_count) -> Page:
  """The fields of one ``<page>`` element (its bytes, as ``PageSplitter``
  cuts them). A page that is not well-formed XML (``wiki_pages_malformed_
  xml``) has its fields taken out by pattern, the text's XML entities
  resolved. Raises ``ValueError`` when no ``<text>`` can be found at all."""
  try:
    element = ET.fromstring(xml)
  except ET.ParseError:
    count("wiki_pages_malformed_xml", 1)
    return _parse_page_by_pattern(xml)
  return Page(title=element.findtext("title") or "",
              namespace=(element.findtext("ns") or "0").strip(),
              redirect=element.find("redirect") is not None,
              text=element.findtext("revision/text") or "")


def _parse_page_by_pattern(xml: bytes) -> Page:
  def field(name):
    m = _FIELD[name].search(xml)
    return html.unescape(m.group(1).decode("utf-8", "replace")) if m else ""
  text = _TEXT.search(xml)
  if text is None:
    raise ValueError("a <page> without a <text> element")
  return Page(title=field(b"title"), namespace=field(b"ns").strip() or "0",
              redirect=b"<redirect" in xml,
              text=html.unescape((text.group(1) or b"").decode(
                  "utf-8", "replace")))


def is_disambiguation(wikitext: str) -> bool:
  """Whether the page is a disambiguation page (its template or
  ``__DISAMBIG__``)."""
  return _DISAMBIGUATION.search(wikitext) is not None


def namespace_key(name: str) -> str:
  """``name`` as MediaWiki compares namespace names: bidi marks dropped,
  spaces and underscores (and the other title whitespace) one space, no
  space at either end, lower case (``MediaWikiTitleCodec::
  splitTitleString``, ``Language::getNsIndex``)."""
  return _TITLE_SPACES.sub(" ", _BIDI_MARKS.sub("", name)).strip().lower()


class NamespaceNames(NamedTuple):
  """``wiki_namespace_aliases.json``: ``languages`` maps a MediaWiki
  language code to the ``namespace_key`` of every name and alias of the
  Media, File and Category namespaces in it (English's left out: always
  hidden); ``codes`` maps other codes a dump may give (deprecated, BCP 47)
  to MediaWiki's; ``by_name`` maps each name to the languages that have
  it; ``interlanguage``, the prefixes of interlanguage links
  (``interlanguage_prefixes``)."""
  languages: Dict[str, FrozenSet[str]]
  codes: Dict[str, str]
  by_name: Dict[str, FrozenSet[str]]
  source: str
  interlanguage: FrozenSet[str]


@functools.lru_cache(maxsize=1)
def namespace_names() -> NamespaceNames:
  """The data file, read once per process. Raises ``OSError`` or
  ``ValueError`` when it is missing or not what the generator writes."""
  with open(NAMESPACE_ALIASES_PATH, encoding="utf-8") as f:
    data = json.load(f)
  languages = {
      code: frozenset(namespace_key(n) for names in by_key.values()
                      for n in names)
      for code, by_key in data["languages"].items()}
  by_name = {}
  for code, names in languages.items():
    for name in names:
      by_name.setdefault(name, set()).add(code)
  return NamespaceNames(
      languages=languages, codes=data["codes"],
      by_name={n: frozenset(c) for n, c in by_name.items()},
      source=data["source"],
      interlanguage=frozenset(namespace_key(p) for p in
                              data["interlanguage"]["prefixes"]))


def interlanguage_prefixes() -> FrozenSet[str]:
  """The prefixes that make ``[[prefix:Title]]`` an interlanguage link,
  which MediaWiki leaves out of the text (``Parser::handleInternalLinks2``:
  an interwiki prefix of the wiki that names a language). A dump carries no
  interwiki table; these are the Wikipedias' (Wikimedia's interwiki map
  less its prefixes that name no language: every language edition's code,
  ``langlist``, and ``nb``, ``zh-cn``, ``zh-tw``, ``egl``), as
  tests/tools/make_namespace_aliases.py writes them into
  ``wiki_namespace_aliases.json``. Other prefixes with a colon are part of
  an ordinary title (``[[CSI: Miami]]``)."""
  return namespace_names().interlanguage


def _language_codes(site: ET.Element, language: Optional[str]) -> List[str]:
  """The codes a dump gives its language by, most trusted first: the
  ``xml:lang`` of its ``<mediawiki>`` (``language``: the content language,
  as ``XmlDumpWriter`` writes it), the host of ``<base>``
  (``de.wikipedia.org``) and ``<dbname>`` (``dewiki``, ``zh_yuewiki``)."""
  codes = [language] if language else []
  base = _child_text(site, "base")
  m = re.match(r"^[a-z]+://([a-z0-9-]+)\.", base)
  if m:
    codes.append(m.group(1))
  m = _DBNAME.match(_child_text(site, "dbname"))
  if m:
    codes.append(m.group(1).replace("_", "-"))
  return [c.strip().lower() for c in codes]


def _child_text(element: ET.Element, name: str) -> str:
  for child in element:
    if child.tag.rsplit("}", 1)[-1] == name:
      return (child.text or "").strip()
  return ""


def hidden_link_namespaces(siteinfo_xml: bytes,
                           language: Optional[str] = None) -> FrozenSet[str]:
  """The names (as ``namespace_key`` writes them) of the Media, File and
  Category namespaces of the dump whose ``<siteinfo>`` element is
  ``siteinfo_xml``: English's canonical names and aliases, the names its
  ``<siteinfo>`` declares, and every name and alias MediaWiki gives them in
  the wiki's language (``namespace_names``; a dump lists no aliases).

  The language is the first code of ``_language_codes`` the data has
  (``language`` is the ``xml:lang`` of ``<mediawiki>``). A dump none of
  whose codes the data has takes the names of every language that names one
  of these namespaces as its ``<siteinfo>`` does. Malformed XML gives the
  English names (and ``language``'s)."""
  names = set(HIDDEN_LINK_NAMESPACES)
  data = namespace_names()
  try:
    site = ET.fromstring(siteinfo_xml)
  except ET.ParseError:
    site = ET.Element("siteinfo")
  declared = set()
  for namespace in site.iter():
    if (namespace.tag.rsplit("}", 1)[-1] == "namespace"
        and namespace.get("key") in _HIDDEN_NAMESPACE_KEYS
        and namespace.text and namespace_key(namespace.text)):
      declared.add(namespace_key(namespace.text))
  names |= declared
  for code in _language_codes(site, language):
    code = data.codes.get(code, code)
    if code in data.languages:
      return frozenset(names | data.languages[code])
  for name in declared:
    for code in data.by_name.get(name, ()):
      names |= data.languages[code]
  return frozenset(names)


# --- Wikitext to text -------------------------------------------------------


def protect_literals(wikitext: str) -> Tuple[str, List[str]]:
  """``wikitext`` without its comments, each ``<nowiki>…</nowiki>`` and
  ``<pre>…</pre>`` replaced by a mark (``_LITERAL_MARK`` % k) that no later
  pass changes, and the literals: the text each shows. That is its
  characters as written, HTML entities decoded (``html.unescape``): MediaWiki
  1.39's ``CoreTagHooks::nowiki`` and ``::pre`` escape only ``<`` and ``>``
  and leave entities for the browser to decode, and ``pre`` drops the
  ``<nowiki>`` tags inside it. Templates, links, quotes, tables, tags and
  magic words inside are text.

  Scanned left to right as MediaWiki's preprocessor does, so what opens
  first wins: a comment inside ``<nowiki>`` is text, a ``<nowiki>`` inside a
  comment is gone. Tag names are case-insensitive and may carry attributes;
  ``<nowiki/>`` shows nothing. An opening tag whose closing tag never comes
  is text; a comment that never ends runs to the end. The private-use
  characters U+E000 and U+E001, which the marks are made of, are removed
  from ``wikitext`` first."""
  text = wikitext.replace("\ue000", "").replace("\ue001", "")
  out, literals, position, unclosed = [], [], 0, set()
  search_from = 0
  while True:
    m = _COMMENT_OR_LITERAL.search(text, search_from)
    if m is None:
      break
    if m.group(1) is None:  # a comment
      end = text.find("-->", m.end())
      out.append(text[position:m.start()])
      position = search_from = len(text) if end < 0 else end + 3
      continue
    name = m.group(1).lower()
    tag_end = text.find(">", m.end())
    if tag_end < 0:
      break  # no tag at all from here on
    if text[tag_end - 1] == "/":  # <nowiki/>
      literal, end = "", tag_end + 1
    else:
      close = (None if name in unclosed
               else _LITERAL_CLOSE[name].search(text, tag_end + 1))
      if close is None:
        # Text, and so is every later opening of the same tag (MediaWiki's
        # preprocessor remembers it too, which keeps this linear).
        unclosed.add(name)
        search_from = m.end()
        continue
      literal, end = text[tag_end + 1:close.start()], close.end()
      if name == "pre":
        literal = _NOWIKI_IN_PRE.sub(r"\1", literal)
      literal = html.unescape(literal)
    out.append(text[position:m.start()])
    if literal:
      out.append(_LITERAL_MARK % len(literals))
      literals.append(literal)
    position = search_from = end
  out.append(text[position:])
  return "".join(out), literals


def restore_literals(text: str, literals: List[str]) -> str:
  """``text`` with the marks of ``protect_literals`` replaced by their
  literals (a mark whose markup was dropped is simply gone)."""
  if not literals:
    return text
  return _LITERAL_MARKS.sub(lambda m: literals[int(m.group(1))], text)


def drop_templates_and_tables(text: str) -> str:
  """``text`` without its templates (``{{…}}``, nested) and tables
  (``{|`` … ``|}`` at line starts). An opener never closed is taken as text,
  as MediaWiki shows it (its own ``{{`` dropped). One pass: every closed
  pair is a span to drop; the spans are merged at the end."""
  drop = []  # (start, end) spans to remove
  stack = []  # open blocks: (opener, start, end of the opener)
  open_count = {"{{": 0, "{|": 0}
  for m in _BLOCK_TOKEN.finditer(text):
    token = m.group().strip()
    if token in open_count:
      stack.append((token, m.start(), m.end()))
      open_count[token] += 1
      continue
    opener = "{{" if token == "}}" else "{|"
    if not open_count[opener]:
      continue  # a closer without an opener is text
    while True:  # blocks left open inside this one go with it
      kind, start, _ = stack.pop()
      open_count[kind] -= 1
      if kind == opener:
        break
    drop.append((start, m.end()))
  drop.extend((start, end) for _, start, end in stack)
  if not drop:
    return text
  drop.sort()
  out, position = [], 0
  for start, end in drop:
    if start > position:
      out.append(text[position:start])
    position = max(position, end)
  out.append(text[position:])
  return "".join(out)


def _link_is_hidden(title: str, hidden: FrozenSet[str]) -> bool:
  """Whether ``[[title…]]`` shows nothing: a link into a ``hidden``
  namespace or an interlanguage link (its prefix one of
  ``interlanguage_prefixes``), prefixes compared as ``namespace_key``
  writes names (``MediaWikiTitleCodec::splitTitleString`` trims the spaces
  around the colon; namespace and interwiki lookups ignore case). A leading
  colon (after spaces, as ``Parser::handleInternalLinks2`` trims them)
  makes it an ordinary, visible link."""
  title = title.lstrip(" ")
  if ":" not in title or title.startswith(":"):
    return False
  prefix = namespace_key(title.split(":", 1)[0])
  return prefix in hidden or prefix in interlanguage_prefixes()


@functools.lru_cache(maxsize=1)
def _node_types():
  from mwparserfromhell import nodes  # pylint: disable=import-outside-toplevel
  return nodes


def _render(nodes, hidden: FrozenSet[str], out: List[str]) -> None:
  mw = _node_types()
  for node in nodes:
    if isinstance(node, mw.Text):
      out.append(node.value)
    elif isinstance(node, mw.Wikilink):
      title = str(node.title)
      if _link_is_hidden(title, hidden):
        continue
      if node.text is not None:
        _render(node.text.nodes, hidden, out)
      else:
        shown = []
        _render(node.title.nodes, hidden, shown)
        # [[:Category:X]] links to the page and shows its title, less the
        # colon (and the spaces before it).
        shown = "".join(shown).lstrip(" ")
        out.append(shown[1:] if shown.startswith(":") else shown)
    elif isinstance(node, mw.ExternalLink):
      if node.title is not None:
        _render(node.title.nodes, hidden, out)
    elif isinstance(node, mw.Tag):
      markup = node.wiki_markup
      tag = str(node.tag).strip().lower()
      if markup in _LIST_MARKUP and tag in ("li", "dt"):
        out.append(_LIST_MARK)
      elif tag == "br":
        out.append(" ")
      elif tag not in DROPPED_TAGS and node.contents is not None:
        _render(node.contents.nodes, hidden, out)
    elif isinstance(node, mw.HTMLEntity):
      out.append(node.normalize())
    elif isinstance(node, mw.Heading):
      # Section headings are dropped; the heading's line ends a paragraph.
      out.append("\n")
    # Templates, arguments and comments show nothing.


@functools.lru_cache(maxsize=1)
def _parser():
  import mwparserfromhell  # pylint: disable=import-outside-toplevel
  # Bold and italic quotes are left as text (and removed afterwards):
  # parsing them is the tokenizer's slowest path.
  return functools.partial(mwparserfromhell.parse, skip_style_tags=True)


def _link_text(m: re.Match) -> str:
  return m.group(1) if m.group(2) is None else m.group(2)


_PATTERN_LINK = re.compile(r"\[\[([^\]|]*)(?:\|([^\]]*))?\]\]")


def _plain_by_pattern(text: str, hidden: FrozenSet[str]) -> str:
  """A rougher clean-up for wikitext the parser rejects."""

  def link(m):
    if _link_is_hidden(m.group(1), hidden):  # files, categories, languages
      return ""
    if m.group(2) is not None:
      return m.group(2)
    shown = m.group(1).lstrip(" ")
    return shown[1:] if shown.startswith(":") else shown

  text = _PATTERN_LINK.sub(link, text)
  text = re.sub(r"\[https?://\S+\s*([^\]]*)\]", r"\1", text)
  text = re.sub(r"^=+.*?=+\s*$", "", text, flags=re.MULTILINE)
  text = re.sub(r"^[*#;].*$", "", text, flags=re.MULTILINE)
  text = re.sub(r"<[^>]*>", "", text)
  return html.unescape(text)


def wikitext_paragraphs(wikitext: str,
                        hidden: FrozenSet[str] = HIDDEN_LINK_NAMESPACES,
                        count: metrics.Count = metrics.no_count,
                        parse: Optional[Callable] = None) -> List[str]:
  """The paragraphs of plain text an article's wikitext shows, in order.

  Removed: comments, references, templates, tables, files and images,
  categories and interlanguage links (links into ``hidden`` namespaces or
  with a prefix of ``interlanguage_prefixes``), section headings, list
  items (``*``, ``#``, ``;`` lines), HTML tags (their text kept, except
  ``DROPPED_TAGS``) and bold/italic quotes. Kept: the text of links
  (``[[Paris|the capital]]`` → ``the capital``, ``[[Paris]]`` → ``Paris``,
  ``[[CSI: Miami]]`` → ``CSI: Miami``, ``[[:Category:X]]`` →
  ``Category:X``, ``[[:de:Hamburg]]`` → ``de:Hamburg``) and of external
  links, indented lines, and the contents of
  ``<nowiki>`` and ``<pre>`` as they are written (``protect_literals``: set
  aside before any pattern runs, put back last; the line breaks in them end
  paragraphs). Comments, references, templates, tables and links into the
  main namespace are resolved by patterns first; the rest of the structure is
  parsed by ``mwparserfromhell`` (``parse``; bold and italic quotes left
  as text, then removed). Text the parser rejects is cleaned by patterns
  instead and counted as ``wiki_pages_unparsed``.
  """
  text, literals = protect_literals(wikitext)
  text = drop_templates_and_tables(_REF.sub("", text))
  # Links into the main namespace, most of an article's markup, are resolved
  # here: building mwparserfromhell's node tree costs several times more.
  text = _SIMPLE_LINK.sub(_link_text, text)
  if parse is None:
    parse = _parser()
  try:
    out = []
    _render(parse(text).nodes, hidden, out)
    rendered = "".join(out)
  except Exception:  # pylint: disable=broad-except
    count("wiki_pages_unparsed", 1)
    rendered = _plain_by_pattern(text, hidden)
  # Each pattern works within a line (none crosses a newline).
  rendered = _LEFTOVER_QUOTES.sub("", _MAGIC_WORD.sub("", rendered))
  rendered = _EMPTY_PARENTHESES.sub("", rendered)
  rendered = _SPACES.sub(" ", _SPACE_BEFORE_PUNCTUATION.sub("", rendered))
  paragraphs = []
  for line in rendered.split("\n"):
    if line.startswith(_LIST_MARK):
      continue
    line = line.replace(_LIST_MARK, "").strip().lstrip(":").strip()
    if not line or line[0] in "|!{}":
      continue  # markup left over, judged before the literals are back
    # A literal's own line breaks end paragraphs, as other lines' do.
    for paragraph in restore_literals(line, literals).split("\n"):
      paragraph = paragraph.strip()
      if any(c.isalnum() for c in paragraph):
        paragraphs.append(paragraph)
  return paragraphs


def article_paragraphs(page: Page, hidden: FrozenSet[str] = HIDDEN_LINK_NAMESPACES,
                       count: metrics.Count = metrics.no_count) -> Optional[List[str]]:
  """The paragraphs of an article, or None for a page that is none (counted
  by why: another namespace, a redirect, a disambiguation page, no text)."""
  if page.namespace != "0":
    count("wiki_pages_skipped_namespace", 1)
    return None
  if page.redirect:
    count("wiki_pages_skipped_redirect", 1)
    return None
  if is_disambiguation(page.text):
    count("wiki_pages_skipped_disambiguation", 1)
    return None
  paragraphs = wikitext_paragraphs(page.text, hidden, count)
  if not paragraphs:
    count("wiki_pages_empty", 1)
    return None
  return paragraphs


# --- Streams of a multistream .bz2 ------------------------------------------


def index_path_for(dump_path: str) -> Optional[str]:
  """Where a multistream dump's index lies by Wikimedia's naming
  (``…-multistream.xml.bz2`` → ``…-multistream-index.txt.bz2``,
  ``…-multistream1.xml-p1p41242.bz2`` → ``…-multistream-index1.txt-p1p41242
  .bz2``), or None for a name that is not a multistream dump's."""
  head, _, name = dump_path.rpartition("/")
  if "multistream" not in name or ".xml" not in name:
    return None
  name = name.replace("multistream", "multistream-index", 1)
  name = name.replace(".xml", ".txt", 1)
  return head + "/" + name if head else name


def is_index_file(path: str) -> bool:
  """Whether ``path`` is named as a multistream index (not a dump)."""
  name = path.rpartition("/")[2]
  return "-index" in name and ".txt" in name


class IndexCheck(NamedTuple):
  """What a worker found of a dump's index: ``offsets`` to use, or None when
  the index cannot be read or does not fit the dump (which is then scanned
  for its streams); ``misfit``, an offset it lists where no bz2 stream
  begins."""
  offsets: Optional[Tuple[int, ...]]
  misfit: Optional[int] = None


# Each (index, dump) pair as this worker process found it: an index is read
# and checked once per process.
_INDEX_CHECKS: Dict[Tuple[str, str], IndexCheck] = {}
# How many of an index's offsets are checked before any is used: the first,
# the last and evenly spaced ones between. Each costs a seek and a read of
# the dump (on object stores, a ranged request).
INDEX_SAMPLE = 4


@functools.lru_cache(maxsize=16)
def stream_offsets(index_path: str) -> Tuple[int, ...]:
  """The distinct stream offsets an index lists (lines
  ``offset:page_id:title``), ascending. Cached: each worker process reads an
  index once. Raises ``OSError``/``ValueError`` for an unreadable index."""
  offsets = []
  with FileSystems.open(index_path,
                        compression_type=CompressionTypes.AUTO) as f:
    while True:
      line = f.readline()
      if not line:
        break
      if not line.strip():
        continue
      offset = int(line.split(b":", 1)[0])
      if not offsets or offset != offsets[-1]:
        offsets.append(offset)
  offsets.sort()
  return tuple(offsets)


def is_stream_start(f, offset: int) -> bool:
  """Whether a bz2 stream header (``_STREAM_HEADER``: ``BZh``, the level
  ``1``-``9``, then the block magic ``0x314159265359`` or, for an empty
  stream, the end-of-stream magic ``0x177245385090``) begins at byte
  ``offset`` of the seekable binary file ``f``. False past its end."""
  if offset < 0:
    return False
  f.seek(offset)
  return _STREAM_HEADER.match(f.read(_HEADER_BYTES)) is not None


def first_misfit(f, offsets: Tuple[int, ...],
                 sample: Optional[int] = None) -> Optional[int]:
  """The first of ``sample`` (``INDEX_SAMPLE`` by default) of ``offsets``
  (the first, the last and evenly spaced ones between) where no bz2 stream
  begins in ``f``, or None when every one does. An index of another dump,
  or one whose offsets are shifted, fails at its first offset already,
  almost surely."""
  sample = INDEX_SAMPLE if sample is None else sample
  n = len(offsets)
  if not n:
    return None
  picks = sorted({round(k * (n - 1) / max(1, sample - 1))
                  for k in range(min(sample, n))})
  for i in picks:
    if not is_stream_start(f, offsets[i]):
      return offsets[i]
  return None


def find_stream_start(f, start: int, stop: int) -> Optional[int]:
  """The first offset in ``[start, stop)`` of the seekable binary file ``f``
  where a bz2 stream header begins, by scanning; None when there is none."""
  f.seek(start)
  position, tail = start, b""
  # A header that starts just before stop may end past it: read that far.
  while position < stop + _HEADER_BYTES - 1:
    block = f.read(_CHUNK)
    if not block:
      return None
    data = tail + block
    m = _STREAM_HEADER.search(data)
    if m is not None:
      found = position - len(tail) + m.start()
      return found if found < stop else None
    tail = data[-(_HEADER_BYTES - 1):]
    position += len(block)
  return None


@functools.lru_cache(maxsize=64)
def hidden_namespaces_of(file_name: str) -> FrozenSet[str]:
  """``hidden_link_namespaces`` of a dump's ``<siteinfo>`` and the
  ``xml:lang`` of its ``<mediawiki>`` (read from its first MiB,
  decompressed), or the English names when its head cannot be read.
  Cached: each worker reads a file's header once. Raises what
  ``namespace_names`` raises."""
  try:
    head = _head(file_name)
  except Exception as e:  # pylint: disable=broad-except
    # The pages are read (or set aside) on their own; links just fall back
    # to the English names.
    logging.warning("cannot read the <siteinfo> of %s (%s): hiding links "
                    "into the English namespace names", file_name,
                    rejects.describe(e))
    return HIDDEN_LINK_NAMESPACES
  start, end = head.find(b"<siteinfo>"), head.find(b"</siteinfo>")
  m = _MEDIAWIKI_LANG.search(head, 0, start if start >= 0 else len(head))
  language = m.group(1).decode("ascii", "replace") if m else None
  if start < 0 or end < start:
    return hidden_link_namespaces(b"<siteinfo/>", language)
  return hidden_link_namespaces(head[start:end + len(b"</siteinfo>")],
                                language)


def _head(file_name: str) -> bytes:
  """The first ``_SITEINFO_BYTES`` of a dump, decompressed; of a ``.bz2``,
  of its first stream only (a corrupt later stream must not matter)."""
  if CompressionTypes.detect_compression_type(file_name) != (
      CompressionTypes.BZIP2):
    with FileSystems.open(file_name,
                          compression_type=CompressionTypes.AUTO) as f:
      return f.read(_SITEINFO_BYTES)
  decompressor, head = bz2.BZ2Decompressor(), b""
  with FileSystems.open(file_name, compression_type=(
      CompressionTypes.UNCOMPRESSED)) as f:
    while not decompressor.eof and len(head) < _SITEINFO_BYTES:
      block = f.read(_CHUNK)
      if not block:
        break
      head += decompressor.decompress(block, _SITEINFO_BYTES - len(head))
      while (not decompressor.eof and not decompressor.needs_input
             and len(head) < _SITEINFO_BYTES):
        head += decompressor.decompress(b"", _SITEINFO_BYTES - len(head))
  return head


def _report_misfit(index: str, file_name: str, offset: int) -> None:
  """One warning and one ``wiki_indexes_not_matching_dump`` for an index
  that does not fit its dump (nothing is lost: the dump is scanned)."""
  logging.warning("the index %s does not fit %s: no bz2 stream begins at "
                  "its offset %d (the index of another dump?); scanning %s "
                  "for its streams instead", index, file_name, offset,
                  file_name)
  metrics.count("wiki_indexes_not_matching_dump", 1)


# --- The source -------------------------------------------------------------


class WikiDumpSource(filebasedsource.FileBasedSource):
  """Articles of MediaWiki XML dumps, split across workers as the module
  docstring says. Yields ``(doc_id, paragraphs)`` per article and
  ``rejects.Rejected`` for a page set aside (oversized, no ``<text>``, its
  conversion raised) or a file that cannot be read to its end."""

  def __init__(self, file_pattern: str, root: str = "",
               max_page_bytes: int = MAX_PAGE_BYTES,
               use_index: bool = True):
    super().__init__(file_pattern,
                     compression_type=CompressionTypes.UNCOMPRESSED,
                     splittable=True, validate=False)
    self._root = root
    self._max_page_bytes = max_page_bytes
    self._use_index = use_index

  @counting_input_bytes
  def read_records(self, file_name, offset_range_tracker):
    start = offset_range_tracker.start_position() or 0
    name = relative_name(file_name, self._root)
    if is_index_file(file_name):
      if start == 0:
        logging.info("%s is a multistream index, not a dump: used by its "
                     "dump, not read as one", file_name)
      return
    position = [start]
    # Outside the try: a missing namespace data file is an installation
    # fault, not the dump's.
    hidden = hidden_namespaces_of(file_name)
    try:
      k, last_claim = 0, None
      for claim, page in self._pages(file_name, offset_range_tracker,
                                     position):
        k = k + 1 if claim == last_claim else 0
        last_claim = claim
        doc_id = "%s:%d" % (name, claim) + ("#%d" % k if k else "")
        if isinstance(page, CorruptStream):
          logging.warning("cannot decompress the bz2 stream at byte %d of "
                          "%s: %s", claim, file_name, page.error)
          yield rejects.Rejected("%s:%d" % (name, claim), "read",
                                 "corrupt_wiki_streams", page.error)
          k, last_claim = 0, None
          continue
        metrics.count("wiki_pages_read", 1)
        if page is None:
          yield rejects.Rejected(
              doc_id, "read", "oversized_wiki_pages",
              "a <page> over %d bytes" % self._max_page_bytes)
          continue
        try:
          paragraphs = article_paragraphs(parse_page(page, metrics.count),
                                          hidden, metrics.count)
        except Exception as e:  # pylint: disable=broad-except
          yield rejects.Rejected(
              doc_id, "read", "wiki_page_error", rejects.describe(e),
              page[:rejects.SAMPLE_CHARS].decode("utf-8", "replace"))
          continue
        if paragraphs is not None:
          yield doc_id, paragraphs
        else:
          # A page read and dropped (article_paragraphs counted why).
          metrics.count("documents_read", 1)
    except Exception as e:  # pylint: disable=broad-except
      logging.warning("cannot read %s past byte %d: %s", file_name,
                      position[0], rejects.describe(e))
      yield rejects.Rejected("%s:%d" % (name, position[0]), "read",
                             "unreadable_files", rejects.describe(e))

  def _pages(self, file_name, tracker, position
             ) -> Iterator[Tuple[int, Optional[bytes]]]:
    """``(claim, page bytes)`` of each page this range owns."""
    kind = CompressionTypes.detect_compression_type(file_name)
    if kind == CompressionTypes.BZIP2:
      yield from self._bz2_pages(file_name, tracker, position)
    elif kind == CompressionTypes.UNCOMPRESSED:
      yield from self._plain_pages(file_name, tracker, position)
    else:
      yield from self._whole_file_pages(file_name, kind, tracker, position)

  def _plain_pages(self, file_name, tracker, position):
    start = tracker.start_position() or 0
    splitter = PageSplitter(self._max_page_bytes)
    with FileSystems.open(file_name, compression_type=(
        CompressionTypes.UNCOMPRESSED)) as f:
      f.seek(start)
      while True:
        block = f.read(_CHUNK)
        for offset, page in splitter.feed(block):
          position[0] = start + offset
          if not tracker.try_claim(start + offset):
            return
          yield start + offset, page
        if not block:
          return

  def _whole_file_pages(self, file_name, kind, tracker, position):
    # gzip and zstd streams cannot be entered midway: the range holding
    # offset 0 reads the whole file.
    if (tracker.start_position() or 0) > 0 or not tracker.try_claim(0):
      return
    splitter = PageSplitter(self._max_page_bytes)
    with FileSystems.open(file_name, compression_type=kind) as f:
      while True:
        block = f.read(_CHUNK)
        for offset, page in splitter.feed(block):
          position[0] = offset
          yield offset, page
        if not block:
          return

  def _first_stream(self, f, file_name, start, stop) -> Optional[int]:
    """The first stream at or after ``start`` (before ``stop``): the
    index's next offset when the index fits the dump (``_index``) and a
    stream begins there, else found by scanning."""
    index = index_path_for(file_name) if self._use_index else None
    check = self._index(f, file_name, index) if index else IndexCheck(None)
    if start == 0:
      # The range at byte 0 has no use for the index, but it alone says
      # that the index does not fit: once for the job, not once per worker.
      if check.misfit is not None:
        _report_misfit(index, file_name, check.misfit)
      return 0
    if check.offsets is not None:
      i = bisect.bisect_left(check.offsets, start)
      if i < len(check.offsets):
        offset = check.offsets[i]
        # The offset this range is about to rely on, checked too. A misfit
        # the sample missed is said here, once per worker that meets it.
        if is_stream_start(f, offset):
          return offset if offset < stop else None
        _INDEX_CHECKS[(index, file_name)] = IndexCheck(None)
        _report_misfit(index, file_name, offset)
      # Past the index's last stream: the closing tag's stream, or streams
      # an index cut short (or stale) does not list. Scan.
    return find_stream_start(f, start, stop)

  @staticmethod
  def _index(f, file_name, index) -> IndexCheck:
    """``index`` read and its offsets checked against the dump ``f``
    (``first_misfit``), once per worker process. No index there is none to
    use; one that cannot be read is said so (once per process) and not
    used."""
    key = (index, file_name)
    if key not in _INDEX_CHECKS:
      if not FileSystems.exists(index):
        _INDEX_CHECKS[key] = IndexCheck(None)
        return _INDEX_CHECKS[key]
      try:
        offsets = stream_offsets(index)
      except Exception as e:  # pylint: disable=broad-except
        logging.warning("cannot use the index %s (%s): scanning %s for its "
                        "streams instead", index, rejects.describe(e),
                        file_name)
        _INDEX_CHECKS[key] = IndexCheck(None)
      else:
        misfit = first_misfit(f, offsets)
        _INDEX_CHECKS[key] = IndexCheck(None if misfit is not None
                                        else offsets, misfit)
    return _INDEX_CHECKS[key]

  def _bz2_pages(self, file_name, tracker, position):
    """``(claim, page)`` of each page whose ``<page>`` tag begins (its
    ``<``) in a stream this range claims, wherever the page ends. Streams
    need not end where pages do (``pbzip2`` cuts its input into blocks of
    a fixed size, mid-tag): a page, or its ``<page>`` tag, cut across
    streams is read by the range that claims the stream where it begins,
    which reads on into streams it does not claim until that page is out.
    A range whose first stream begins inside a page, or inside its tag,
    skips to the next ``<page>`` (``PageSplitter``)."""
    start = tracker.start_position() or 0
    stop = tracker.stop_position()
    splitter = PageSplitter(self._max_page_bytes)
    with FileSystems.open(file_name, compression_type=(
        CompressionTypes.UNCOMPRESSED)) as f:
      stream = self._first_stream(f, file_name, start, stop)
      fed = 0  # decompressed bytes fed to the splitter
      # (fed when the stream began, its offset), from the stream where the
      # page not yet cut out begins.
      stream_starts = []
      unclaimed = None  # the first stream this range could not claim

      def owner(offset):
        """The stream the byte ``offset`` (of those fed) came from."""
        j = bisect.bisect_right(stream_starts, (offset, float("inf")))
        return stream_starts[j - 1][1]

      while stream is not None:
        if unclaimed is None and not tracker.try_claim(stream):
          unclaimed = stream
        if unclaimed is not None:
          # Read on only to finish a page (or a <page> tag) begun in a
          # stream this range claimed.
          begun = splitter.unfinished_start
          if begun is None or owner(begun) >= unclaimed:
            return
        claimed = unclaimed is None
        position[0] = stream
        f.seek(stream)
        decompressor = bz2.BZ2Decompressor()
        stream_starts.append((fed, stream))
        length, corrupt = 0, False
        while not decompressor.eof:
          block = f.read(_CHUNK)
          if not block:
            if length == 0:
              return  # the end of the file
            raise EOFError("the bz2 stream at byte %d ends before its "
                           "end-of-stream marker (a cut file?)" % stream)
          try:
            data = decompressor.decompress(block)
          except OSError as e:
            # A corrupt stream (or, about once in 2**72 bytes scanned,
            # header bytes inside another stream): set aside as one record,
            # and the range reads on from the next stream header.
            if not claimed:
              return  # another range's stream: it reports it
            yield stream, CorruptStream(rejects.describe(e))
            corrupt = True
            break
          length += len(block)
          for offset, page in splitter.feed(data):
            # The page belongs to the stream where its <page> tag begins.
            page_owner = owner(offset)
            if not claimed and page_owner >= unclaimed:
              return  # a page of a stream another range owns
            yield page_owner, page
            if not claimed:
              return  # the page begun in our last stream is out
          fed += len(data)
        if corrupt:
          # A page begun before it is lost with it; start afresh.
          splitter = PageSplitter(self._max_page_bytes)
          fed, stream_starts = 0, []
          stream = find_stream_start(f, stream + 1, stop)
          continue
        stream = stream + length - len(decompressor.unused_data)
        if splitter.unfinished_start is None:
          stream_starts.clear()


# How much of a dump's start check_wikidump reads for its <mediawiki>.
DUMP_HEAD_BYTES = 64 << 10


def check_wikidump(path: str) -> None:
  """Raises ``paths.InputError`` unless the (decompressed) start of
  ``path`` holds a ``<mediawiki`` element, as every MediaWiki XML dump's
  does."""
  try:
    with FileSystems.open(path) as f:
      head = f.read(DUMP_HEAD_BYTES)
  except Exception as e:  # pylint: disable=broad-except
    raise InputError("cannot read %s (--input_format=wikidump): %s"
                     % (path, rejects.describe(e, last=True))) from None
  if b"<mediawiki" not in head:
    raise InputError("%s does not look like a MediaWiki XML dump "
                     "(--input_format=wikidump): no <mediawiki> element in "
                     "its first %d KiB" % (path, DUMP_HEAD_BYTES >> 10))
