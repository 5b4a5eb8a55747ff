"""The wikidump reader against WikiExtractor, side by side on one dump.

Usage:
  pip install -e '.[bench]'          # wikiextractor 3.1.0, psutil
  python -m benchmarks.wikidump_speed [--dump=…-pages-articles….xml.bz2] \\
      [--copies=10] [--workers=1,2] [--rounds=2]

The dump: by default the 206 pages of English Wikipedia (6.1 MB of XML) that
gensim ships as test data (``gensim/test/test_data/enwiki-latest-pages-
articles1.xml-p000000010p000030302-shortened.bz2`` in the gensim 4.4.0 wheel,
fetched with ``pip download`` into ``.cache/bench``); ``--dump`` takes any
``pages-articles`` dump. Its pages are repeated ``--copies`` times into one
multistream ``.bz2`` with its index (Wikimedia's layout), which both tools
read.

Measured, each tool in its own process tree (CPU time summed over every
process, sampled by psutil; the fastest of ``--rounds``):

* WikiExtractor (``python -m wikiextractor.WikiExtractor --processes N``),
  as users run it (templates expanded) and with ``--no-templates``, which
  does what the wikidump reader does with templates (drops them);
* the wikidump reader as a Beam job on the DirectRunner with N workers:
  ``ReadDocuments(input_format="wikidump")`` writing each article's text;
* the reader's plain functions in this process (no Beam): the cost of the
  algorithm alone.

Printed: articles/s, MB of XML/s per CPU-second, and the wall time for each
N; then the text both make of the dump's articles: words per article (ours
over WikiExtractor's, mean and total, also against WikiExtractor with its
section-heading lines removed, as the reader drops headings) and markup left
over (``{{``, ``[[``, ``|}``, ``<ref``).
"""

import argparse
import bz2
import collections
import glob
import html
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
import xml.etree.ElementTree as ET
from typing import Dict, List, Tuple

from benchmarks import provenance
from benchmarks.compare import REPO, Measured

GENSIM = "gensim==4.4.0"
GENSIM_DUMP = ("gensim/test/test_data/enwiki-latest-pages-articles1.xml-"
               "p000000010p000030302-shortened.bz2")
MARKUP = ("{{", "[[", "|}", "<ref")
_WORDS = re.compile(r"\S+")
_HEADING = re.compile(r"^(=+)\s*(.*?)\s*\1\s*$", re.MULTILINE)
_WIKIEXTRACTOR_DOC = re.compile(
    r'<doc id="[^"]*" url="[^"]*" title="([^"]*)">\n(.*?)\n</doc>', re.DOTALL)


def default_dump(cache: str) -> str:
  """gensim's shortened English Wikipedia dump, from its wheel on PyPI."""
  path = os.path.join(cache, os.path.basename(GENSIM_DUMP))
  if os.path.exists(path):
    return path
  os.makedirs(cache, exist_ok=True)
  subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps",
                  "--only-binary=:all:", "-d", cache, GENSIM], check=True,
                 stdout=subprocess.DEVNULL)
  [wheel] = glob.glob(os.path.join(cache, "gensim-4.4.0-*.whl"))
  with zipfile.ZipFile(wheel) as z, open(path, "wb") as f:
    f.write(z.read(GENSIM_DUMP))
  return path


def load_pages(dump: str) -> Tuple[str, List[bytes]]:
  """The dump's header (up to its first page) and every ``<page>``."""
  from transforms import wikidump  # pylint: disable=import-outside-toplevel
  opener = bz2.open if dump.endswith(".bz2") else open
  with opener(dump, "rb") as f:
    data = f.read()
  header = data[:data.index(b"<page>")].decode("utf-8")
  return header, [p for _, p in wikidump.PageSplitter().feed(data)]


def write_copies(header: str, pages: List[bytes], copies: int,
                 directory: str) -> str:
  """``pages`` ``copies`` times as a multistream dump with its index."""
  # pylint: disable=import-outside-toplevel
  from tests.wikidumps import write_multistream_xml
  entries = []
  for k in range(copies):
    for page in pages:
      element = ET.fromstring(page)
      page_id = int(element.findtext("id")) + k * 10_000_000
      entries.append((page_id, element.findtext("title"),
                      "  " + page.decode("utf-8") + "\n"))
  path = os.path.join(directory, "enwiki-bench-pages-articles-multistream"
                      ".xml.bz2")
  write_multistream_xml(path, header, entries, path.replace(
      "multistream.xml", "multistream-index.txt"))
  return path


def run_wikiextractor(dump: str, workers: int, workdir: str,
                      templates: bool) -> Dict:
  out = os.path.join(workdir, "wikiextractor_%d_%s" % (workers, templates))
  shutil.rmtree(out, ignore_errors=True)
  cmd = [sys.executable, "-m", "wikiextractor.WikiExtractor", dump, "-o", out,
         "--processes", str(workers), "--bytes", "100M", "--quiet"]
  if not templates:
    cmd.append("--no-templates")
  result = Measured(cmd, log=out + ".log").run()
  texts = {}
  for path in sorted(glob.glob(os.path.join(out, "*", "wiki_*"))):
    with open(path, encoding="utf-8") as f:
      for title, body in _WIKIEXTRACTOR_DOC.findall(f.read()):
        # Its first line repeats the title.
        texts.setdefault(html.unescape(title), body.split("\n", 1)[-1])
  result["articles"] = sum(1 for path in glob.glob(os.path.join(
      out, "*", "wiki_*")) for line in open(path, encoding="utf-8")
                           if line.startswith("<doc "))
  result["texts"] = texts
  return result


def run_reader(dump: str, workers: int, workdir: str) -> Dict:
  out = os.path.join(workdir, "wikidump_%d" % workers)
  shutil.rmtree(out, ignore_errors=True)
  os.makedirs(out)
  cmd = [sys.executable, "-m", "benchmarks.wikidump_speed", "--extract",
         "--dump=" + dump, "--out=" + out, "--workers=%d" % workers]
  result = Measured(cmd, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"),
                    log=out + ".log").run()
  result["articles"] = sum(
      1 for path in glob.glob(os.path.join(out, "articles*"))
      for line in open(path, encoding="utf-8") if line.strip())
  return result


def extract(dump: str, out: str, workers: int) -> None:
  """The Beam job run_reader measures: one JSON line per article."""
  # pylint: disable=import-outside-toplevel
  import apache_beam as beam
  from apache_beam.options.pipeline_options import PipelineOptions
  from runners import direct
  from transforms.reading import ReadDocuments
  options = PipelineOptions(["--direct_num_workers=%d" % workers])
  direct.apply_defaults(options, {"direct_num_workers"})
  with beam.Pipeline(options=options) as p:
    docs, _ = p | ReadDocuments([dump], input_format="wikidump")
    _ = (docs | beam.Map(lambda d: json.dumps(d[1], ensure_ascii=False))
         | beam.io.WriteToText(os.path.join(out, "articles")))


def reader_functions(pages: List[bytes]) -> Tuple[Dict, Dict[str, str]]:
  """The reader's plain functions over ``pages`` in this process: CPU
  seconds, and each article's text by title."""
  # pylint: disable=import-outside-toplevel
  from transforms import wikidump
  start = time.process_time()
  texts, articles = {}, 0
  for page in pages:
    parsed = wikidump.parse_page(page)
    paragraphs = wikidump.article_paragraphs(parsed)
    if paragraphs is not None:
      texts[parsed.title] = "\n".join(paragraphs)
      articles += 1
  return {"cpu_s": time.process_time() - start,
          "articles": articles}, texts


def compare_texts(ours: Dict[str, str], theirs: Dict[str, str],
                  headings: Dict[str, List[str]]) -> Dict:
  common = sorted(set(ours) & set(theirs))
  ratios, ours_total, theirs_total, theirs_no_headings = [], 0, 0, 0
  for title in common:
    mine = len(_WORDS.findall(ours[title]))
    lines = theirs[title].split("\n")
    heading_lines = {h + ("" if h[-1:] in "!?" else ".")
                     for h in headings.get(title, [])}
    theirs_words = len(_WORDS.findall(theirs[title]))
    without = sum(len(_WORDS.findall(l)) for l in lines
                  if l.strip() not in heading_lines)
    ours_total += mine
    theirs_total += theirs_words
    theirs_no_headings += without
    if without:
      ratios.append(mine / without)
  ratios.sort()
  markup = {name: {m: sum(t.count(m) for t in texts.values())
                   for m in MARKUP}
            for name, texts in (("wikidump", ours), ("wikiextractor", theirs))}
  return {
      "articles_compared": len(common),
      "only_wikidump": len(set(ours) - set(theirs)),
      "only_wikiextractor": len(set(theirs) - set(ours)),
      "words_per_article_wikidump": ours_total / max(1, len(common)),
      "words_per_article_wikiextractor": theirs_total / max(1, len(common)),
      "total_ratio": ours_total / max(1, theirs_total),
      "total_ratio_without_headings": ours_total / max(1, theirs_no_headings),
      "median_article_ratio_without_headings":
          ratios[len(ratios) // 2] if ratios else None,
      "markup_left": markup,
  }


MEANING = (
    "CPU seconds are summed over each tool's whole process tree, sampled by "
    "psutil; the wikidump reader runs as a Beam job on the DirectRunner "
    "(start-up, reading, writing each article's text). WikiExtractor "
    "expands templates as users run it; `--no-templates` drops them, as the "
    "reader does. WikiExtractor counts disambiguation pages and "
    "template-only stubs as articles; the reader leaves them out. Words "
    "are compared on the articles both keep; WikiExtractor keeps section "
    "headings, which the reader drops, hence the ratio without them.")


def speed_lines(rows: List[Dict], alone: Dict, xml_mb: float) -> List[str]:
  """The table's ratios in sentences: per core against WikiExtractor, two
  workers against one, and the reader's functions alone."""
  def row(tool, n):
    return next((r for r in rows if r["tool"] == tool and r["workers"] == n),
                None)
  lines = ["- The reader's functions alone (no Beam, one process): %.1f CPU "
           "s, %.2f MB of XML/s." % (alone["cpu_s"], xml_mb / alone["cpu_s"])]
  ours = row("wikidump (Beam)", 1)
  for tool in ("wikiextractor", "wikiextractor --no-templates"):
    theirs = row(tool, 1)
    if ours and theirs:
      lines.append("- Per CPU-second, one worker, the reader does %.2fx the "
                   "XML of %s." % (theirs["cpu_s"] / ours["cpu_s"], tool))
  for tool in ("wikidump (Beam)", "wikiextractor --no-templates"):
    one, two = row(tool, 1), row(tool, 2)
    if one and two:
      lines.append("- %s, two workers against one: %.2fx (one worker's wall "
                   "seconds over two workers')." % (
                       tool, one["wall_s"] / two["wall_s"]))
  return lines


def text_lines(text: Dict) -> List[str]:
  """``compare_texts``' figures, against both WikiExtractor runs, as a
  table."""
  keys = [("articles_compared", "articles both keep", "%d"),
          ("only_wikidump", "articles only the reader keeps", "%d"),
          ("only_wikiextractor", "articles only WikiExtractor keeps", "%d"),
          ("words_per_article_wikidump", "words per article, the reader",
           "%.1f"),
          ("words_per_article_wikiextractor",
           "words per article, WikiExtractor", "%.1f"),
          ("total_ratio", "the reader's words / WikiExtractor's", "%.3f"),
          ("total_ratio_without_headings",
           "the same, WikiExtractor's heading lines left out", "%.3f"),
          ("median_article_ratio_without_headings",
           "the same, median article", "%.3f")]
  body = [[label] + [fmt % text[k][key] if text[k][key] is not None else "-"
                     for k in ("no_templates", "templates")]
          for key, label, fmt in keys]
  for tool in ("wikidump", "wikiextractor"):
    body.append(["markup left in %s's text (%s)" % (
        "the reader" if tool == "wikidump" else "WikiExtractor",
        ", ".join("`%s`" % m for m in MARKUP))] + [
            ", ".join(str(text[k]["markup_left"][tool][m]) for m in MARKUP)
            for k in ("no_templates", "templates")])
  return ["Text against WikiExtractor:", ""] + provenance.table(
      ["measure", "`--no-templates`", "templates expanded"], body)


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--dump", default=None)
  parser.add_argument("--copies", type=int, default=10)
  parser.add_argument("--workers", default="1,2")
  parser.add_argument("--rounds", type=int, default=2)
  parser.add_argument("--workdir", default=None)
  parser.add_argument("--json", default=None, help="Also write the figures "
                      "here.")
  parser.add_argument("--cache", default=os.path.join(REPO, ".cache", "bench"),
                      help="Where the default dump is fetched to, once "
                      "(default %(default)s).")
  provenance.add_markdown_flag(parser, "wikidump_speed.md")
  parser.add_argument("--extract", action="store_true", help=argparse.SUPPRESS)
  parser.add_argument("--out", help=argparse.SUPPRESS)
  args = parser.parse_args(argv)
  if args.extract:
    extract(args.dump, args.out, int(args.workers))
    return
  dump = args.dump or default_dump(args.cache)
  workdir = args.workdir or tempfile.mkdtemp(prefix="wikidump_speed_")
  os.makedirs(workdir, exist_ok=True)
  header, pages = load_pages(dump)
  xml_mb = sum(map(len, pages)) * args.copies / 1e6
  bench_dump = write_copies(header, pages, args.copies, workdir)
  print("dump: %s, %d pages x %d copies = %.1f MB of page XML, multistream "
        "%.1f MB" % (dump, len(pages), args.copies, xml_mb,
                     os.path.getsize(bench_dump) / 1e6))

  alone, our_texts = reader_functions(pages * args.copies)
  print("reader functions alone (no Beam, 1 process): %d articles, %.1f CPU "
        "s: %.0f articles/s, %.2f MB/s" % (
            alone["articles"], alone["cpu_s"],
            alone["articles"] / alone["cpu_s"], xml_mb / alone["cpu_s"]))

  runs = collections.defaultdict(list)
  texts = {}
  workers = [int(w) for w in args.workers.split(",")]
  for _ in range(args.rounds):  # rounds interleaved: the machine is noisy
    for n in workers:
      for templates in (True, False):
        r = run_wikiextractor(bench_dump, n, workdir, templates)
        texts.setdefault(templates, r.pop("texts"))
        runs[("wikiextractor" + ("" if templates else " --no-templates"),
              n)].append(r)
      runs[("wikidump (Beam)", n)].append(run_reader(bench_dump, n, workdir))
  rows = []
  body = []
  for (name, n), results in sorted(runs.items(), key=lambda kv: (kv[0][1],
                                                                  kv[0][0])):
    wall = min(r["wall_s"] for r in results)
    cpu = min(r["cpu_s"] for r in results)
    articles = results[0]["articles"]
    rows.append({"tool": name, "workers": n, "articles": articles,
                 "wall_s": wall, "cpu_s": cpu,
                 "cpu_s_all": [round(r["cpu_s"], 1) for r in results]})
    body.append([name, n, "{:,}".format(articles), "%.1f" % wall,
                 "%.1f" % cpu, "%.0f" % (articles / wall),
                 "%.1f" % (articles / cpu), "%.2f" % (xml_mb / cpu)])
  report = [
      "Dump: %s, %d pages x %d copies = %.1f MB of page XML in one "
      "multistream `.bz2` of %.1f MB with its index; the fastest of %d "
      "interleaved round(s)." % (
          os.path.basename(dump), len(pages), args.copies, xml_mb,
          os.path.getsize(bench_dump) / 1e6, args.rounds), "",
      *provenance.table(["tool", "workers", "articles", "wall s", "CPU s",
                         "articles/s", "articles/CPU-s", "MB XML/CPU-s"],
                        body), ""]
  report += speed_lines(rows, alone, xml_mb)
  headings = {}
  for page in pages:
    element = ET.fromstring(page)
    headings[element.findtext("title")] = [
        h for _, h in _HEADING.findall(element.findtext("revision/text") or "")]
  text = {}
  for templates in (False, True):
    text["templates" if templates else "no_templates"] = compare_texts(
        our_texts, texts[templates], headings)
  report += [""] + text_lines(text) + ["", MEANING]
  print()
  print("\n".join(report))
  path = provenance.markdown_path(args.markdown, "wikidump_speed.md")
  if path:
    provenance.write_page(path, "The wikidump reader against WikiExtractor",
                          sys.argv[1:] if argv is None else argv, report)
  if args.json:
    with open(args.json, "w") as f:
      json.dump({"dump": dump, "copies": args.copies, "xml_mb": xml_mb,
                 "reader_functions": alone, "runs": rows, "text": text}, f,
                indent=1)


if __name__ == "__main__":
  main()
