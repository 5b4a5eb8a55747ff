"""Where one DirectRunner worker's CPU time goes, stage by stage.

Usage:
  python -m benchmarks.stage_profile [--corpus=FILE | --generate_mb=20] \\
      [--repeat=3] [--baseline=REVISION] [--markdown] [--readme]

Runs ``python -m pipelines.mlm`` with BERT's defaults (``dupe_factor`` 5,
``max_seq_length`` 128, one worker, the bundled uncased vocabulary) on
the corpus: ``--repeat`` times as it is, for its CPU seconds (the fastest
round; ``compare.Measured``), and once under py-spy (``--rate 200``,
``--nonblocking``) for where they go. Each busy sample counts for the
stage of the deepest frame in its stack that is one of the stage's DoFns
or functions (``STAGES``; ``flink_memory.profile_summary``); samples in
none are the start (imports, under ``_find_and_load``) or Beam's own work
(bundles, coders, the runner). A stage's CPU seconds are its share of the
samples times the run's CPU seconds.

``--baseline=REVISION``: the project's files at that git revision (``git
archive`` into a temporary folder) run the same way, each round right
before the checked-out code's, and the report sets the two side by side:
the whole job and each stage, before and now.

Printed, and written with ``--markdown`` to docs/benchmarks/stage_profile.md
and with ``--readme`` into the README between its ``stage-profile``
markers.
"""

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from typing import Dict, List

from benchmarks import provenance
from benchmarks.compare import (DEFAULT_VOCAB, REPO, Measured,
                                add_corpus_flags, corpus_file)
from benchmarks.flink_memory import profile_summary

README_MARK = "stage-profile"
# The project's top-level packages, which a --baseline revision must have.
PACKAGES = ("pipelines", "transforms", "runners")
STAGES = (
    ("reading and parsing", ("_ReadRange.", "_ParseDocument.",
                             "DocumentSource.")),
    ("sentence splitting", ("_SplitDoFn.",)),
    ("tokenizing", ("_TokenizeDoFn.",)),
    ("pools spilled to files", ("_SpillDoFn.",)),
    ("pools read back", ("decode_records", "_PlanGroups.")),
    ("instances (sequences built)", ("build_pool",)),
    ("masking", ("_MaskDoFn.",)),
    ("serializing and writing", ("serialize_framed", "_WriteBundleDoFn.",
                                 "_WriteGroupsDoFn.", "_DealToShards.",
                                 "_finalize ", "WriteExamples.")),
)
OTHER_NAMES = {"worker start-up (imports)": "start-up (imports)",
               "SDK harness and gRPC": "Beam itself (bundles, coders, runner)"}


def pipeline_command(corpus: str, out: str):
  return [sys.executable, "-m", "pipelines.mlm", "--input=" + corpus,
          "--output=" + out, "--overwrite", "--vocab_file=" + DEFAULT_VOCAB,
          "--max_seq_length=128", "--max_predictions_per_seq=20",
          "--dupe_factor=5", "--direct_num_workers=1", "--quiet"]


def checkout(revision: str, workdir: str) -> str:
  """The project's files at ``revision`` (``git archive``, nothing in the
  repository touched), in a folder of ``workdir``; returns it. Raises
  SystemExit with an ``error:`` line if git does not know the revision."""
  folder = os.path.join(workdir, "baseline")
  os.makedirs(folder)
  archive = subprocess.run(["git", "archive", "--format=tar", revision],
                           cwd=REPO, capture_output=True)
  if archive.returncode:
    raise SystemExit("error: --baseline=%s: %s" % (
        revision, archive.stderr.decode(errors="replace").strip()))
  subprocess.run(["tar", "-x", "-C", folder], input=archive.stdout,
                 check=True)
  # A package the revision lacks would be imported from this checkout
  # (the editable install): two versions mixed in one run.
  missing = [name for name in PACKAGES
             if not os.path.isdir(os.path.join(folder, name))]
  if missing:
    raise SystemExit("error: --baseline=%s has no %s package; its run would "
                     "take this checkout's" % (revision, ", ".join(missing)))
  return folder


def short_commit(revision: str) -> str:
  return subprocess.run(["git", "rev-parse", "--short=12", revision],
                        cwd=REPO, capture_output=True, text=True,
                        check=True).stdout.strip()


def profile(corpus: str, out: str, code: str, samples: str, env) -> Dict:
  """One more run of the code in folder ``code`` under py-spy; its stages
  (``flink_memory.profile_summary``)."""
  spy = shutil.which("py-spy") or os.path.join(
      os.path.dirname(sys.executable), "py-spy")
  subprocess.run([spy, "record", "--format", "raw", "--rate", "200",
                  "--nonblocking", "-o", samples, "--"]
                 + pipeline_command(corpus, out), env=env, cwd=code,
                 check=True, stdout=subprocess.DEVNULL,
                 stderr=subprocess.DEVNULL)
  return profile_summary([samples], top=3, stages=STAGES)


def add_round_flags(parser: argparse.ArgumentParser, repeat: int) -> None:
  """``--repeat`` (rounds, ``repeat`` by default), ``--baseline`` (a
  revision measured round for round beside this one, see ``checkout``) and
  ``--readme``: the flags of the benchmarks that compare two versions."""
  parser.add_argument("--repeat", type=int, default=repeat)
  parser.add_argument(
      "--baseline", metavar="REVISION",
      help="Also measure the project as it was at this git revision, round "
      "for round beside the checked-out one, and report both.")
  parser.add_argument("--readme", action="store_true")


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  add_corpus_flags(parser)
  add_round_flags(parser, repeat=3)
  provenance.add_markdown_flag(parser, "stage_profile.md")
  args = parser.parse_args(argv)
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
  with tempfile.TemporaryDirectory() as workdir:
    corpus = corpus_file(args, workdir)
    mb = os.path.getsize(corpus) / 1e6
    out = os.path.join(workdir, "out")
    versions = [("now", REPO)]
    if args.baseline:
      versions.insert(0, ("before", checkout(args.baseline, workdir)))
    cpu: Dict[str, List[float]] = {name: [] for name, _ in versions}
    # Round for round, so that both see the same machine.
    for i in range(args.repeat):
      for name, code in versions:
        run = Measured(pipeline_command(corpus, out), env=env,
                       cwd=code).run()
        cpu[name].append(run["cpu_s"])
        print("round %d, %s: %.1f CPU s" % (i + 1, name, run["cpu_s"]),
              flush=True)
    summary = {name: profile(corpus, out, code,
                             os.path.join(workdir, name + ".txt"), env)
               for name, code in versions}
  corpus_line = "%s, %.1f MB; one worker, dupe_factor 5, max_seq_length 128" % (
      os.path.basename(args.corpus) if args.corpus
      else "generated from the shipped sample text", mb)
  if args.baseline:
    report = compared(args, summary, cpu, corpus_line, mb)
  else:
    report = alone(args, summary["now"], cpu["now"], corpus_line, mb)
  print("\n".join(report))
  argv_used = sys.argv[1:] if argv is None else argv
  path = provenance.markdown_path(args.markdown, "stage_profile.md")
  if path:
    provenance.write_page(path, "Where the CPU time goes, stage by stage",
                          argv_used, report)
  if args.readme:
    provenance.write_readme_section(README_MARK, argv_used, report)


def _rounds(cpu: List[float]) -> str:
  return ", ".join("%.2f" % c for c in cpu)


def _stage_seconds(summary: Dict, best: float) -> Dict[str, float]:
  return {OTHER_NAMES.get(name, name): entry["share"] * best
          for name, entry in summary.items()}


def _top(entry: Dict) -> str:
  return "; ".join("`%s` %d%%" % (frame.split(" (")[0],
                                  round(100 * n / entry["samples"]))
                   for frame, n in entry["top"])


def alone(args, summary: Dict, cpu: List[float], corpus_line: str,
          mb: float) -> List[str]:
  """The report of the checked-out code alone: each stage's share of the
  samples, its CPU seconds and its busiest functions."""
  best = min(cpu)
  rows = [[OTHER_NAMES.get(name, name), "%.0f%%" % (100 * entry["share"]),
           "%.2f" % (entry["share"] * best), _top(entry)]
          for name, entry in summary.items()]
  return [
      "%s; fastest of %d rounds: %.2f CPU s (%.2f MB per CPU-second; every "
      "round: %s). Stages by py-spy's samples of one more run." % (
          corpus_line, args.repeat, best, mb / best, _rounds(cpu)), "",
      *provenance.table(["stage", "share of samples", "CPU s",
                         "most samples of their own"], rows)]


def compared(args, summary: Dict, cpu: Dict[str, List[float]],
             corpus_line: str, mb: float) -> List[str]:
  """The report of the baseline beside the checked-out code: the whole
  job's fastest rounds and each stage's CPU seconds, before and now."""
  best = {name: min(c) for name, c in cpu.items()}
  seconds = {name: _stage_seconds(summary[name], best[name])
             for name in summary}
  names = sorted(set(seconds["before"]) | set(seconds["now"]),
                 key=lambda n: -seconds["before"].get(n, 0.0))
  rows = [["**whole job**", "**%.2f**" % best["before"],
           "**%.2f**" % best["now"],
           "**%.2f**" % (best["before"] / best["now"]), ""]]
  for name in names:
    before, now = seconds["before"].get(name, 0.0), seconds["now"].get(name,
                                                                        0.0)
    rows.append([name, "%.2f" % before, "%.2f" % now,
                 "%.2f" % (before / now) if now else "-",
                 _top(summary["now"][_raw_name(name)])
                 if _raw_name(name) in summary["now"] else ""])
  return [
      "%s. Before: commit %s (`--baseline=%s`); now: the commit above. "
      "Each round runs both, one after the other; fastest of %d rounds: "
      "%.2f CPU s before (%.2f MB per CPU-second; every round: %s), %.2f "
      "now (%.2f; every round: %s). A stage's CPU seconds are its share of "
      "py-spy's samples of one more run of each, times that version's "
      "fastest round." % (
          corpus_line, short_commit(args.baseline), args.baseline,
          args.repeat, best["before"], mb / best["before"],
          _rounds(cpu["before"]), best["now"], mb / best["now"],
          _rounds(cpu["now"])), "",
      *provenance.table(["stage", "CPU s before", "CPU s now",
                         "before / now", "most samples of their own now"],
                        rows)]


def _raw_name(name: str) -> str:
  for raw, shown in OTHER_NAMES.items():
    if shown == name:
      return raw
  return name


if __name__ == "__main__":
  main()
