"""Where a benchmark's figures come from: the machine, the commit, the
command and the date, written at the head of every page a benchmark
writes into ``docs/benchmarks/`` (those pages are never edited by hand)."""

import datetime
import os
import platform
import shlex
import subprocess
import sys
from typing import Sequence

import psutil

from benchmarks.compare import REPO


def commit() -> str:
  """The checked-out commit, with ``+changes`` when the tree differs."""
  try:
    head = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"],
                          cwd=REPO, capture_output=True, text=True,
                          check=True).stdout.strip()
    dirty = subprocess.run(["git", "status", "--porcelain", "--", "."],
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
