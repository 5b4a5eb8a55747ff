"""What the live progress costs: the same job with and without it.

Usage:
  python -m benchmarks.progress_cost [--generate_mb=20] [--workers=2] [--rounds=3]

Runs ``pipelines.mlm`` on a generated corpus (benchmarks.compare's) with
progress lines every second (``--progress_seconds=1``, stderr not a
terminal) and with ``--quiet``, rounds interleaved, and prints the CPU
seconds of each run's whole process tree and the median difference.
"""

import argparse
import os
import shutil
import statistics
import sys
import tempfile

from benchmarks import provenance
from benchmarks.compare import DEFAULT_VOCAB, Measured, generate_corpus

BUDGET = 0.02  # what the progress may cost, a share of the job's CPU time


def run(corpus: str, out: str, workers: int, flags, log: str):
  shutil.rmtree(out, ignore_errors=True)
  cmd = [sys.executable, "-m", "pipelines.mlm", "--input=" + corpus,
         "--output=" + out, "--vocab_file=" + DEFAULT_VOCAB,
         "--dupe_factor=5", "--direct_num_workers=%d" % workers] + flags
  return Measured(cmd, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"),
                  log=log).run()


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--generate_mb", type=float, default=20)
  parser.add_argument("--workers", type=int, default=2)
  parser.add_argument("--rounds", type=int, default=3)
  parser.add_argument("--workdir", default=None)
  provenance.add_markdown_flag(parser, "progress_cost.md")
  args = parser.parse_args(argv)
  workdir = args.workdir or tempfile.mkdtemp(prefix="progress_cost_")
  os.makedirs(workdir, exist_ok=True)
  corpus = os.path.join(workdir, "corpus.txt")
  if not os.path.exists(corpus):
    generate_corpus(corpus, args.generate_mb)
  cpu = {"progress": [], "quiet": []}
  wall = {"progress": [], "quiet": []}
  for i in range(args.rounds):
    for name, flags in (("progress", ["--progress_seconds=1"]),
                        ("quiet", ["--quiet"])):
      r = run(corpus, os.path.join(workdir, "out"), args.workers, flags,
              os.path.join(workdir, "%s_%d.log" % (name, i)))
      cpu[name].append(r["cpu_s"])
      wall[name].append(r["wall_s"])
      print("round %d %-8s %.1f CPU s, %.1f s wall" % (
          i + 1, name, r["cpu_s"], r["wall_s"]), flush=True)
  with_progress = statistics.median(cpu["progress"])
  quiet = statistics.median(cpu["quiet"])
  cost = (with_progress - quiet) / quiet
  every = cpu["progress"] + cpu["quiet"]
  report = [
      "A generated %g MB corpus, %d worker(s), `--dupe_factor=5`, %d "
      "interleaved rounds of each run." % (args.generate_mb, args.workers,
                                          args.rounds), "",
      *provenance.table(
          ["round", "with progress: CPU s", "wall s", "`--quiet`: CPU s",
           "wall s"],
          [[i + 1, "%.1f" % cpu["progress"][i], "%.1f" % wall["progress"][i],
            "%.1f" % cpu["quiet"][i], "%.1f" % wall["quiet"][i]]
           for i in range(args.rounds)]), "",
      "Median CPU: %.1f s with progress, %.1f s quiet: %+.1f%%; every run "
      "took %.1f-%.1f CPU s, a spread of %.0f%% of the quiet median." % (
          with_progress, quiet, 100 * cost, min(every), max(every),
          100 * (max(every) - min(every)) / quiet), "",
      "CPU seconds are summed over each run's whole process tree. With "
      "progress, a line goes to stderr every second (`--progress_seconds=1`, "
      "stderr not a terminal). The budget is %.0f%% of the job: %s." % (
          100 * BUDGET,
          "the median difference is within it" if cost <= BUDGET else
          "the median difference exceeds it" + (
              ", but by less than the runs' own spread" if
              with_progress - quiet < max(every) - min(every) else ""))]
  print("\n".join(report))
  path = provenance.markdown_path(args.markdown, "progress_cost.md")
  if path:
    provenance.write_page(path, "What the live progress costs",
                          sys.argv[1:] if argv is None else argv, report)


if __name__ == "__main__":
  main()
