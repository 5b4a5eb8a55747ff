"""Docs that cannot drift: the generated reference pages equal what the code
makes of them now, the README's two commands are the ones that work (the
sample corpus, the CI), and every flag and counter the docs name exists."""

import glob
import os
import re

import pytest

from pipelines import reference
from pipelines.options import UsageError, unknown_flags
from tests.helpers import REPO
from transforms import metrics

DOCS = [os.path.join(REPO, "README.md")] + sorted(
    glob.glob(os.path.join(REPO, "docs", "**", "*.md"), recursive=True))


def _read(path):
  with open(path, encoding="utf-8") as f:
    return f.read()


@pytest.mark.parametrize("page", sorted(reference.PAGES))
def test_generated_pages_are_current(page):
  made = getattr(reference, reference.PAGES[page])()
  assert _read(os.path.join(REPO, page)) == made, (
      "%s is out of date: run python -m pipelines.reference" % page)


def test_readme_commands_are_the_ones_ci_and_the_sample_use():
  readme = _read(os.path.join(REPO, "README.md"))
  ci = _read(os.path.join(REPO, ".ci", "run"))
  test_command = [l.strip() for l in ci.splitlines()
                  if "pytest" in l and not l.startswith("#")]
  assert len(test_command) == 1
  assert "    " + test_command[0] + "\n" in readme
  sample = [l.strip() for l in readme.splitlines()
            if "pipelines.mlm" in l and "corpora/sample" in l]
  assert sample, "the README's first command runs the sample corpus"
  assert glob.glob(os.path.join(REPO, "corpora", "sample", "*.txt"))


def test_every_flag_the_docs_give_the_main_command_exists():
  """In every command line of the docs that runs ``pipelines.mlm``, and in
  every flag table row, each flag is the project's or Beam's."""
  unknown = set()
  for path in DOCS:
    for line in _read(path).splitlines():
      if not ("pipelines.mlm" in line or line.startswith("| `--")):
        continue
      if "pipelines.mlm" in line and "python" not in line:
        continue  # prose naming the module, not a command
      flags = re.findall(r"(?<![\w-])(--[a-z][a-z0-9_]*)", line)
      if line.startswith("| `--"):
        flags = flags[:1]  # the row's own flag
      for flag in set(flags) - {"--help"}:  # run() answers --help itself
        try:
          if unknown_flags([flag]):
            unknown.add("%s in %s" % (flag, os.path.relpath(path, REPO)))
        except UsageError:
          pass  # known; it only wants a value
  assert not unknown, sorted(unknown)


def test_every_counter_the_docs_name_exists():
  named = set()
  for path in DOCS:
    text = _read(path)
    named.update(re.findall(r"counted as `([a-z_]+)`", text))
    named.update(re.findall(r"counter `([a-z_]+)`", text))
  assert named, "the docs name counters"
  assert not named - set(metrics.COUNTERS), sorted(named - set(
      metrics.COUNTERS))


def test_every_project_file_the_docs_and_docstrings_name_exists():
  """A path such as ``tests/unit/test_examples.py`` or
  ``benchmarks/compare.py`` named in a page or a module's docstring is
  there: files that move leave no stale pointer behind."""
  sources = DOCS + sorted(
      p for folder in ("pipelines", "transforms", "runners", "benchmarks",
                       "oracles", "tests")
      for p in glob.glob(os.path.join(REPO, folder, "**", "*.py"),
                         recursive=True))
  named = re.compile(r"\b((?:pipelines|transforms|runners|benchmarks|oracles"
                     r"|tests|docs)/[\w/.-]*\w\.(?:py|md))\b")
  missing = sorted({"%s: %s" % (os.path.relpath(source, REPO), path)
                    for source in sources
                    for path in named.findall(_read(source))
                    if not os.path.exists(os.path.join(REPO, path))
                    # a page's link, relative to the page
                    and not os.path.exists(os.path.join(
                        os.path.dirname(source), path))})
  assert not missing, missing


BENCHMARK_PAGES = sorted(glob.glob(os.path.join(REPO, "docs", "benchmarks",
                                                "*.md")))
# benchmarks/provenance.py's header lines, each "- FIELD: value".
_HEAD = {"machine": r".+ cores, .+ memory.*", "commit": r"[0-9a-f]{7,40}( .+)?",
         "command": r"`python -m benchmarks\.\w+.*`",
         "date": r"\d{4}-\d\d-\d\d \d\d:\d\d UTC"}


def test_benchmark_pages_say_where_their_figures_come_from():
  """Every page in docs/benchmarks/ begins as a benchmark writes it: a
  title, then the machine, the commit, the command and the date."""
  assert BENCHMARK_PAGES
  wrong = []
  for path in BENCHMARK_PAGES:
    lines = _read(path).splitlines()
    head = lines[:12]
    if not head or not head[0].startswith("# "):
      wrong.append("%s: no title" % os.path.basename(path))
    for field, pattern in _HEAD.items():
      if not any(re.fullmatch(r"- %s: %s" % (field, pattern), l)
                 for l in head):
        wrong.append("%s: no '- %s:' line" % (os.path.basename(path), field))
  assert not wrong, wrong


def _links(path):
  """The local Markdown links of a page, as paths from the repository."""
  found = []
  for target in re.findall(r"\]\(([^)\s]+)\)", _read(path)):
    target = target.split("#")[0]
    if target and "://" not in target:
      found.append(os.path.normpath(os.path.join(os.path.dirname(path),
                                                 target)))
  return found


def test_every_linked_benchmark_page_exists_and_the_index_links_each():
  """A link to a page in docs/benchmarks/ leads to one; docs/benchmarks.md,
  the index, links every such page."""
  folder = os.path.join(REPO, "docs", "benchmarks")
  missing = ["%s links %s" % (os.path.relpath(page, REPO),
                              os.path.relpath(target, REPO))
             for page in DOCS for target in _links(page)
             if os.path.dirname(target) == folder
             and not os.path.exists(target)]
  assert not missing, missing
  index = set(_links(os.path.join(REPO, "docs", "benchmarks.md")))
  unlisted = [os.path.basename(p) for p in BENCHMARK_PAGES if p not in index]
  assert not unlisted, "docs/benchmarks.md does not link %s" % unlisted
