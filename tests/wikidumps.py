"""Writes small MediaWiki XML dumps for the tests, in the export schema 0.11
(https://www.mediawiki.org/xml/export-0.11.xsd): plain XML, single-stream
bz2, and Wikimedia's multistream layout with its index.

The multistream layout, as Wikimedia's dumps have it: one bz2 stream for the
``<mediawiki>``/``<siteinfo>`` header, one stream per ``pages_per_stream``
pages, one stream for the closing tag; the index is bz2-compressed text, one
line ``offset:page_id:title`` per page, ``offset`` being the byte offset of
the page's stream in the dump.
"""

import bz2
import dataclasses
import gzip
import os
import random
from typing import List, Optional, Sequence, Tuple
from xml.sax.saxutils import escape, quoteattr

from tests.helpers import sample_documents

NAMESPACES = [(-2, "Media"), (-1, "Special"), (0, ""), (1, "Talk"),
              (2, "User"), (6, "File"), (10, "Template"), (14, "Category")]


@dataclasses.dataclass
class WikiPage:
  title: str
  text: str
  namespace: int = 0
  redirect: Optional[str] = None
  page_id: int = 0


def header(namespaces=NAMESPACES, lang: str = "en",
           dbname: Optional[str] = None, base: Optional[str] = None,
           xml_lang: bool = True) -> str:
  """The ``<mediawiki>`` opening and ``<siteinfo>``: ``lang`` as the
  element's ``xml:lang`` (unless not ``xml_lang``), ``<dbname>`` ``dbname``
  (``lang`` + "wiki" by default), ``<base>`` when given."""
  lines = ['<mediawiki xmlns="http://www.mediawiki.org/xml/export-0.11/" '
           'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
           'version="0.11"%s>' % (' xml:lang="%s"' % lang if xml_lang else ""),
           "  <siteinfo>", "    <sitename>Wikipedia</sitename>",
           "    <dbname>%s</dbname>" % escape(
               lang + "wiki" if dbname is None else dbname)]
  if base is not None:
    lines.append("    <base>%s</base>" % escape(base))
  lines += ["    <case>first-letter</case>", "    <namespaces>"]
  for key, name in namespaces:
    if name:
      lines.append('      <namespace key="%d" case="first-letter">%s'
                   '</namespace>' % (key, escape(name)))
    else:
      lines.append('      <namespace key="%d" case="first-letter" />' % key)
  lines += ["    </namespaces>", "  </siteinfo>", ""]
  return "\n".join(lines)


FOOTER = "</mediawiki>\n"


def page_xml(page: WikiPage) -> str:
  lines = ["  <page>", "    <title>%s</title>" % escape(page.title),
           "    <ns>%d</ns>" % page.namespace, "    <id>%d</id>" % page.page_id]
  if page.redirect is not None:
    lines.append("    <redirect title=%s />" % quoteattr(page.redirect))
  lines += ["    <revision>", "      <id>%d</id>" % (page.page_id * 10),
            "      <timestamp>2026-01-01T00:00:00Z</timestamp>",
            "      <contributor>", "        <username>Test</username>",
            "        <id>1</id>", "      </contributor>",
            "      <model>wikitext</model>", "      <format>text/x-wiki</format>",
            '      <text bytes="%d" xml:space="preserve">%s</text>'
            % (len(page.text.encode()), escape(page.text)),
            "    </revision>", "  </page>", ""]
  return "\n".join(lines)


def numbered(pages: Sequence[WikiPage]) -> List[WikiPage]:
  """``pages`` with ids 1, 2, … where they have none."""
  return [dataclasses.replace(p, page_id=p.page_id or i + 1)
          for i, p in enumerate(pages)]


def dump_text(pages: Sequence[WikiPage], **kwargs) -> str:
  return header(**kwargs) + "".join(map(page_xml, numbered(pages))) + FOOTER


def write_plain(path: str, pages: Sequence[WikiPage], **kwargs) -> None:
  with open(path, "w", encoding="utf-8") as f:
    f.write(dump_text(pages, **kwargs))


def write_single_stream_bz2(path: str, pages: Sequence[WikiPage]) -> None:
  with open(path, "wb") as f:
    f.write(bz2.compress(dump_text(pages).encode("utf-8")))


def write_multistream(path: str, pages: Sequence[WikiPage],
                      index_path: Optional[str] = None,
                      pages_per_stream: int = 100) -> List[int]:
  """Writes the dump (and its index when ``index_path`` is given); returns
  the byte offset of every stream."""
  pages = numbered(pages)
  return write_multistream_xml(
      path, header(), [(p.page_id, p.title, page_xml(p)) for p in pages],
      index_path, pages_per_stream)


def read_index(path: str) -> List[Tuple[int, str]]:
  """The lines of a multistream index: ``(offset, "page_id:title")``."""
  with bz2.open(path, "rt", encoding="utf-8") as f:
    return [(int(line.split(":", 1)[0]), line.rstrip("\n").split(":", 1)[1])
            for line in f if line.strip()]


def write_index(path: str, lines: Sequence[Tuple[int, str]]) -> None:
  """A multistream index of ``(offset, "page_id:title")`` lines."""
  with open(path, "wb") as f:
    f.write(bz2.compress("".join("%d:%s\n" % line for line in lines)
                         .encode("utf-8")))


def write_multistream_xml(path: str, header_xml: str,
                          pages: Sequence[Tuple[int, str, str]],
                          index_path: Optional[str] = None,
                          pages_per_stream: int = 100) -> List[int]:
  """The multistream layout of ``header_xml`` and ``pages`` (``(page_id,
  title, <page> XML)``), closed by ``</mediawiki>``; returns the byte offset
  of every stream."""
  groups = [pages[i:i + pages_per_stream]
            for i in range(0, len(pages), pages_per_stream)]
  streams = ([header_xml] + ["".join(xml for _, _, xml in group)
                             for group in groups] + [FOOTER])
  offsets, index_lines, offset = [], [], 0
  with open(path, "wb") as f:
    for i, text in enumerate(streams):
      data = bz2.compress(text.encode("utf-8"))
      offsets.append(offset)
      if 0 < i <= len(groups):
        index_lines += ["%d:%d:%s" % (offset, page_id, title)
                        for page_id, title, _ in groups[i - 1]]
      f.write(data)
      offset += len(data)
  if index_path is not None:
    with open(index_path, "wb") as f:
      f.write(bz2.compress(("\n".join(index_lines) + "\n").encode("utf-8")))
  return offsets



def write_streams_bz2(path: str, text: bytes, cuts: Sequence[int]
                      ) -> List[Tuple[int, int]]:
  """``text`` (a whole dump's XML) as ``pbzip2`` writes it: cut at the byte
  positions ``cuts`` wherever they fall (inside a tag too), each piece its
  own bz2 stream, one after another in one file. Returns, for every stream,
  the position in ``text`` of its first byte and its byte offset in the
  file."""
  bounds = [0] + sorted(set(c for c in cuts if 0 < c < len(text))) + [
      len(text)]
  streams, offset = [], 0
  with open(path, "wb") as f:
    for begin, end in zip(bounds, bounds[1:]):
      streams.append((begin, offset))
      offset += f.write(bz2.compress(text[begin:end]))
  return streams


def sample_pages(n=60, seed=0):
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


def write_every_layout(directory: str, pages: Sequence[WikiPage]) -> dict:
  """``pages`` as a dump in every layout the reader takes, in
  ``directory``: plain XML, single-stream bz2, gzip, and multistream bz2
  with its index (7 pages a stream). Returns their paths by layout and
  the multistream's stream offsets (``offsets``)."""
  paths = {
      "xml": os.path.join(directory, "testwiki-pages-articles.xml"),
      "bz2": os.path.join(directory, "testwiki-pages-articles.xml.bz2"),
      "gz": os.path.join(directory, "testwiki-pages-articles.xml.gz"),
      "multistream": os.path.join(
          directory, "testwiki-pages-articles-multistream.xml.bz2"),
      "index": os.path.join(
          directory, "testwiki-pages-articles-multistream-index.txt.bz2"),
  }
  write_plain(paths["xml"], pages)
  write_single_stream_bz2(paths["bz2"], pages)
  with open(paths["xml"], "rb") as f, gzip.open(paths["gz"], "wb") as g:
    g.write(f.read())
  offsets = write_multistream(paths["multistream"], pages,
                              paths["index"], pages_per_stream=7)
  paths["offsets"] = offsets
  return paths

