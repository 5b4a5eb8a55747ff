"""Where one DirectRunner worker's CPU time goes, stage by stage.

Usage:
  python -m benchmarks.stage_profile [--corpus=FILE | --generate_mb=20] \\
      [--repeat=3] [--markdown] [--readme]

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

from benchmarks import provenance
from benchmarks.compare import (DEFAULT_VOCAB, REPO, Measured,
                                add_corpus_flags, corpus_file)
from benchmarks.flink_memory import profile_summary

README_MARK = "stage-profile"
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


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  add_corpus_flags(parser)
  parser.add_argument("--repeat", type=int, default=3)
  parser.add_argument("--readme", action="store_true")
  provenance.add_markdown_flag(parser, "stage_profile.md")
  args = parser.parse_args(argv)
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
  with tempfile.TemporaryDirectory() as workdir:
    corpus = corpus_file(args, workdir)
    mb = os.path.getsize(corpus) / 1e6
    out = os.path.join(workdir, "out")
    cpu = []
    for i in range(args.repeat):
      run = Measured(pipeline_command(corpus, out), env=env).run()
      cpu.append(run["cpu_s"])
      print("round %d: %.1f CPU s" % (i + 1, run["cpu_s"]), flush=True)
    spy = shutil.which("py-spy") or os.path.join(
        os.path.dirname(sys.executable), "py-spy")
    samples = os.path.join(workdir, "samples.txt")
    subprocess.run([spy, "record", "--format", "raw", "--rate", "200",
                    "--nonblocking", "-o", samples, "--"]
                   + pipeline_command(corpus, out), env=env, cwd=REPO,
                   check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
    summary = profile_summary([samples], top=3, stages=STAGES)
  best = min(cpu)
  rows = []
  for name, entry in summary.items():
    rows.append([OTHER_NAMES.get(name, name), "%.0f%%" % (100 * entry["share"]),
                 "%.2f" % (entry["share"] * best),
                 "; ".join("`%s` %d%%" % (frame.split(" (")[0],
                                          round(100 * n / entry["samples"]))
                           for frame, n in entry["top"])])
  report = [
      "%s, %.1f MB; one worker, dupe_factor 5, max_seq_length 128; fastest of "
      "%d rounds: %.2f CPU s (%.2f MB per CPU-second; every round: %s). "
      "Stages by py-spy's samples of one more run." % (
          os.path.basename(args.corpus) if args.corpus
          else "generated from the shipped sample text", mb, args.repeat,
          best, mb / best, ", ".join("%.2f" % c for c in cpu)), "",
      *provenance.table(["stage", "share of samples", "CPU s",
                         "most samples of their own"], rows)]
  print("\n".join(report))
  argv_used = sys.argv[1:] if argv is None else argv
  path = provenance.markdown_path(args.markdown, "stage_profile.md")
  if path:
    provenance.write_page(path, "Where the CPU time goes, stage by stage",
                          argv_used, report)
  if args.readme:
    provenance.write_readme_section(README_MARK, argv_used, report)


if __name__ == "__main__":
  main()
