"""Where a benchmark's figures come from: the machine, the commit, the
command and the date, written at the head of every page a benchmark
writes into ``docs/benchmarks/`` (those pages are never edited by hand);
and the flag and the Markdown table every benchmark writes them with."""

import argparse
import datetime
import os
import platform
import shlex
import subprocess
import sys
from typing import Optional, Sequence

import psutil

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PAGES = os.path.join(REPO, "docs", "benchmarks")
# The lines every page's head has, each "- NAME: ...": tests/unit/test_docs.py
# checks them.
HEAD_FIELDS = ("machine", "commit", "command", "date")


def commit() -> str:
  """The checked-out commit, with ``+changes`` when the tree differs from
  it in anything but Markdown (the pages and the README's tables are what
  benchmarks write, and no document changes what the next one
  measures)."""
  try:
    head = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"],
                          cwd=REPO, capture_output=True, text=True,
                          check=True).stdout.strip()
    dirty = subprocess.run(["git", "status", "--porcelain", "--", ".",
                            ":(exclude)*.md", ":(exclude)docs/benchmarks"],
                           cwd=REPO, capture_output=True, text=True,
                           check=True).stdout.strip()
  except (OSError, subprocess.CalledProcessError):
    return "unknown (not a git checkout)"
  return head + (" +changes" if dirty else "")


def machine() -> str:
  """CPU model, cores, memory and OS of this machine."""
  model = platform.processor() or platform.machine()
  try:
    with open("/proc/cpuinfo") as f:
      for line in f:
        if line.startswith("model name"):
          model = line.split(":", 1)[1].strip()
          break
  except OSError:
    pass
  return "%s, %d cores, %.0f GB memory, %s %s" % (
      model, os.cpu_count() or 0, psutil.virtual_memory().total / 2**30,
      platform.system(), platform.release())


def header(title: str, argv: Sequence[str]) -> str:
  """A page's head: its title and how its figures were made."""
  command = "python -m %s %s" % (
      os.path.splitext(os.path.relpath(sys.argv[0], REPO))[0].replace(
          os.sep, "."), " ".join(shlex.quote(a) for a in argv))
  return "\n".join([
      "# " + title, "",
      "Written by the benchmark below; do not edit by hand, run it again.", "",
      "- machine: " + machine(),
      "- commit: " + commit(),
      "- command: `%s`" % command.strip(),
      "- date: " + datetime.datetime.now(datetime.timezone.utc).strftime(
          "%Y-%m-%d %H:%M UTC"),
      "", ""])


def write_page(path: str, title: str, argv: Sequence[str],
               body: Sequence[str]) -> None:
  """Writes ``docs/benchmarks/...``: ``header`` then the ``body`` lines."""
  # The head first: the page itself, once opened, would make the tree look
  # changed.
  text = header(title, argv) + "\n".join(body).rstrip("\n") + "\n"
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  with open(path, "w") as f:
    f.write(text)


def add_markdown_flag(parser: argparse.ArgumentParser, page: str) -> None:
  """``--markdown[=PATH]``: also write the report as a page with its
  provenance, by default ``docs/benchmarks/PAGE`` (``markdown_path``)."""
  parser.add_argument(
      "--markdown", nargs="?", const=True, default=None, metavar="PATH",
      help="Also write the report as a page with its provenance (docs/"
      "benchmarks/%s when given without a path)." % page)


def markdown_path(value, page: str) -> Optional[str]:
  """Where ``--markdown`` (``value``) writes: None when not given, PATH
  when given one, else ``docs/benchmarks/PAGE``."""
  if value is None:
    return None
  return os.path.join(PAGES, page) if value is True else value


def table(head: Sequence[str], rows: Sequence[Sequence]) -> list:
  """A Markdown table's lines: ``head`` and one line per row, each cell
  as ``str`` gives it."""
  return (["| %s |" % " | ".join(head), "|" + "---|" * len(head)]
          + ["| %s |" % " | ".join(str(c) for c in row) for row in rows])


def write_readme_section(mark: str, argv: Sequence[str],
                         body: Sequence[str]) -> None:
  """Replaces what README.md holds between ``<!-- MARK -->`` and ``<!--
  /MARK -->`` with ``body`` under one line of provenance (machine, commit,
  command, date): a table the README shows, written by the script that
  measures it. Raises ValueError when the README lacks the markers."""
  path = os.path.join(REPO, "README.md")
  with open(path, encoding="utf-8") as f:
    text = f.read()
  start, end = "<!-- %s -->" % mark, "<!-- /%s -->" % mark
  if start not in text or end not in text:
    raise ValueError("README.md has no %s ... %s markers" % (start, end))
  head = header("", argv).split("\n")
  fields = [line[2:] for line in head if line.startswith("- ")]
  section = "\n".join(
      ["", "Written by the benchmark; " + "; ".join(fields) + ".", ""]
      + list(body) + [""])
  before, rest = text.split(start, 1)
  after = rest.split(end, 1)[1]
  with open(path, "w", encoding="utf-8") as f:
    f.write(before + start + "\n" + section.strip("\n") + "\n" + end + after)
