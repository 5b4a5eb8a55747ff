"""A run's fixed start: what every job pays before and around its work.

Usage:
  python -m benchmarks.start_time [--workers=1,2] [--repeat=5]
      [--baseline=REVISION] [--markdown] [--readme]

Runs ``python -m pipelines.mlm`` on the shipped sample corpus
(``corpora/sample``, 16 KB: the work itself takes milliseconds) with
``--log_level=debug``, and measures per run:

* **to the first bundle**: from the launch to the first "Scheduling
  bundle" line Beam's FnApiRunner logs (Python's start, Beam's import, the
  checks, the vocabulary, the pipeline's construction);
* **to the first stage done**: from the launch to the second "Running
  bundle for stage" line: the FnApiRunner gives every worker a part of
  each stage (an empty one too) and starts the next stage once all have
  answered, so this is when every worker, worker processes included, has
  run a bundle;
* **whole run**: from the launch to the process's end, every fixed cost of
  a job together (with worker processes: until they are started, have
  taken their bundles and have ended);
* **CPU s**: of the launcher and every process it waited for
  (``RUSAGE_CHILDREN``).

``--baseline=REVISION``: the project's files at that git revision (``git
archive``, as ``benchmarks.stage_profile`` does) are run the same way,
each round right before the checked-out code. Each figure is the fastest
of ``--repeat`` rounds, with every round listed.

Printed, and written with ``--markdown`` to docs/benchmarks/start_time.md
and with ``--readme`` into the README between its ``start-time`` markers.
"""

import argparse
import datetime
import glob
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from typing import Dict, List

from benchmarks import provenance
from benchmarks.compare import REPO
from benchmarks.stage_profile import add_round_flags, checkout, short_commit

README_MARK = "start-time"
SAMPLE = os.path.join(REPO, "corpora", "sample")
FIRST_BUNDLE = "Scheduling bundle"
STAGE_STARTED = "Running bundle for stage"


def run_once(code: str, corpus: str, out: str, workers: int) -> Dict:
  """One run of the project in folder ``code`` on ``corpus``; its three
  figures in seconds. Raises RuntimeError when the run fails or logs no
  bundle."""
  cmd = [sys.executable, "-m", "pipelines.mlm", "--input=" + corpus,
         "--output=" + out, "--overwrite", "--quiet", "--log_level=debug",
         "--direct_num_workers=%d" % workers]
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
  before = resource.getrusage(resource.RUSAGE_CHILDREN)
  launched = time.time()
  done = subprocess.run(cmd, cwd=code, env=env, capture_output=True,
                        text=True, check=False)
  ended = time.time()
  after = resource.getrusage(resource.RUSAGE_CHILDREN)
  if done.returncode:
    raise RuntimeError("the run failed:\n" + done.stderr[-3000:])
  lines = done.stderr.splitlines()
  first = next((line for line in lines if FIRST_BUNDLE in line), None)
  stages = [line for line in lines if STAGE_STARTED in line]
  if first is None or len(stages) < 2:
    raise RuntimeError("the run logged no %r line or fewer than two %r "
                       "lines" % (FIRST_BUNDLE, STAGE_STARTED))

  def seconds(line: str) -> float:
    # Python's logging writes local time, to the millisecond.
    logged = datetime.datetime.strptime(line[:23], "%Y-%m-%d %H:%M:%S,%f")
    return logged.timestamp() - launched

  return {"first_bundle_s": seconds(first),
          "first_stage_s": seconds(stages[1]),
          "whole_s": ended - launched,
          "cpu_s": (after.ru_utime - before.ru_utime
                    + after.ru_stime - before.ru_stime)}


FIGURES = (("first_bundle_s", "to the first bundle, s"),
           ("first_stage_s", "to the first stage done, s"),
           ("whole_s", "whole run, s"),
           ("cpu_s", "CPU s"))


def report(results: Dict, versions: List[str], workers: List[int],
           args) -> List[str]:
  """The table: one row per version and worker count, each figure the
  fastest round and every round after it."""
  rows = []
  for name in versions:
    for n in workers:
      rounds = results[name, n]
      cells = ["%.3f (%s)" % (min(r[key] for r in rounds),
                              ", ".join("%.2f" % r[key] for r in rounds))
               for key, _ in FIGURES]
      label = name if not args.baseline else (
          "before (%s)" % short_commit(args.baseline) if name == "before"
          else "now")
      rows.append([label, n] + cells)
  lines = ["The shipped sample corpus (%d files, %.0f KB), BERT's defaults, "
           "`--log_level=debug`; each figure the fastest of %d rounds (every "
           "round in brackets)%s." % (
               len(glob.glob(os.path.join(SAMPLE, "*.txt"))),
               sum(os.path.getsize(p) for p in glob.glob(
                   os.path.join(SAMPLE, "*.txt"))) / 1e3, args.repeat,
               "; each round runs the versions one after the other"
               if args.baseline else ""), ""]
  lines += provenance.table(
      ["code", "workers"] + [label for _, label in FIGURES], rows)
  if args.baseline:
    lines.append("")
    for n in workers:
      changes = []
      for key, label in FIGURES:
        before = min(r[key] for r in results["before", n])
        now = min(r[key] for r in results["now", n])
        changes.append("%s %.3f -> %.3f (%.0f%% less)" % (
            label.rsplit(",", 1)[0], before, now, 100 * (1 - now / before)))
      lines.append("- %d worker(s): %s." % (n, "; ".join(changes)))
  return lines


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--workers", default="1,2",
                      help="Comma-separated --direct_num_workers values.")
  add_round_flags(parser, repeat=5)
  provenance.add_markdown_flag(parser, "start_time.md")
  args = parser.parse_args(argv)
  try:
    workers = [int(w) for w in args.workers.split(",")]
  except ValueError:
    parser.error("--workers: comma-separated integers, got %r" % args.workers)
  if args.repeat < 1 or any(w < 1 for w in workers):
    parser.error("--repeat and every --workers value must be at least 1")
  workdir = tempfile.mkdtemp(prefix="mlm-start-")
  try:
    versions = [("now", REPO)]
    if args.baseline:
      versions.insert(0, ("before", checkout(args.baseline, workdir)))
    corpus = os.path.join(SAMPLE, "*.txt")
    out = os.path.join(workdir, "out")
    results: Dict = {(name, n): [] for name, _ in versions for n in workers}
    for i in range(args.repeat):
      for n in workers:
        for name, code in versions:
          result = run_once(code, corpus, out, n)
          results[name, n].append(result)
          print("round %d, %s, %d worker(s): first bundle %.3f s, first "
                "stage %.3f s, whole %.3f s, %.2f CPU s" % (
                    i + 1, name, n, result["first_bundle_s"],
                    result["first_stage_s"], result["whole_s"],
                    result["cpu_s"]), flush=True)
  finally:
    shutil.rmtree(workdir, ignore_errors=True)
  lines = report(results, [name for name, _ in versions], workers, args)
  print("\n".join(lines))
  argv_used = sys.argv[1:] if argv is None else argv
  path = provenance.markdown_path(args.markdown, "start_time.md")
  if path:
    provenance.write_page(path, "A run's fixed start", argv_used, lines)
  if args.readme:
    provenance.write_readme_section(README_MARK, argv_used, lines)


if __name__ == "__main__":
  main()
