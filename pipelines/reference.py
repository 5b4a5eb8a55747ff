"""The reference pages written from the code, so that they cannot drift:
``docs/flags.md`` from the options classes (``pipelines.mlm``'s, then
``pipelines.learn_vocab``'s) and ``docs/counters.md`` from
``transforms.metrics.COUNTERS``. ``python -m pipelines.reference`` writes
both; tests/unit/test_docs.py fails when a page and the code differ."""

import argparse
import os

from pipelines import learn_vocab
from pipelines import options
from transforms import metrics
from transforms import rejects
from transforms import shards

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PAGES = {"docs/flags.md": "flag_reference", "docs/counters.md":
         "counter_reference"}


def flag_reference() -> str:
  """docs/flags.md: every flag of ``python -m pipelines.mlm`` by group, with
  its default, its choices and its help, as ``--help`` gives them, then
  those of ``python -m pipelines.learn_vocab`` (tests/unit/test_docs.py
  fails when the page and this differ)."""
  parser = argparse.ArgumentParser(add_help=False)
  options.MlmOptions._add_argparse_args(parser)  # pylint: disable=protected-access
  lines = ["# Flags of `python -m pipelines.mlm`", "",
           "Generated from the options classes by `python -m "
           "pipelines.reference`; do not edit by hand. "
           "Booleans take `--flag`, `--flag=true` or `--flag=false`. "
           "Beam's own flags (`--runner`, `--direct_num_workers`, "
           "`--flink_master`, `--s3_endpoint_url`, …) pass through to Beam; "
           "a flag neither knows is an error."]
  lines += _flag_tables(parser, "##")
  lines += ["", "# Flags of `python -m pipelines.learn_vocab`", "",
            "The flags it shares with `pipelines.mlm` mean the same; their "
            "help here is `learn_vocab --help`'s. Beam's flags pass through "
            "as above."]
  lines += _flag_tables(learn_vocab._help_parser(), "##")  # pylint: disable=protected-access
  return "\n".join(lines) + "\n"


def _flag_tables(parser: argparse.ArgumentParser, heading: str):
  """One table per argument group of ``parser`` (``--help`` left out)."""
  lines = []
  for group in parser._action_groups:  # pylint: disable=protected-access
    actions = [a for a in group._group_actions  # pylint: disable=protected-access
               if a.option_strings and a.dest != "help"]
    if not actions:
      continue
    lines += ["", heading + " " + group.title[0].upper() + group.title[1:],
              "", "| flag | default | meaning |", "|---|---|---|"]
    for action in actions:
      default = action.default
      if isinstance(default, str) and os.path.isabs(default):
        # A bundled file: where it is in the repository, not on this machine.
        default = os.path.relpath(default, os.path.dirname(
            os.path.dirname(os.path.abspath(__file__))))
      if default is None:
        default = "—"
      elif isinstance(default, bool):
        default = str(default).lower()
      meaning = " ".join((action.help or "").split())
      if action.choices:
        meaning += " One of: %s." % ", ".join(
            "`%s`" % c for c in action.choices)
      lines.append("| `%s` | %s | %s |" % (
          action.option_strings[0],
          "`%s`" % default if default != "—" else default,
          meaning.replace("|", "\\|")))
  return lines


def counter_reference() -> str:
  """docs/counters.md: every counter summary.json lists, with what it
  counts."""
  lines = ["# Counters in `summary.json`", "",
           "Generated from `transforms/metrics.py` by `python -m "
           "pipelines.reference`; do not edit by hand. `summary.json` "
           "lists every counter under `counts`, zeros included; the records "
           "set aside are also counted by reason under `rejected` (counters "
           "`%s<reason>`), and each shard's records under `shards` (counters "
           "`%s<shard>`)." % (rejects.REASON_PREFIX,
                              shards.SHARD_RECORDS_PREFIX),
           "", "| counter | counts |", "|---|---|"]
  for name, meaning in sorted(metrics.COUNTERS.items()):
    lines.append("| `%s` | %s |" % (name, " ".join(meaning.split())))
  return "\n".join(lines) + "\n"


def write_pages() -> None:
  for path, function in PAGES.items():
    with open(os.path.join(REPO, path), "w", encoding="utf-8") as f:
      f.write(globals()[function]())


if __name__ == "__main__":
  write_pages()
