"""The pipeline on the local Flink cluster, one fixed configuration, growing
corpora: does the TaskManager's memory stay put?

Usage:
  python -m benchmarks.flink_memory --corpus=wiki20.txt,wiki200.txt
  python -m benchmarks.flink_memory --generate_mb=20,200 --taskmanager_memory=2g

Starts ``runners.local_flink`` with ``--taskmanager_memory`` (one
TaskManager, ``--slots`` slots), runs ``python -m pipelines.mlm`` on each
corpus through its job server with ``--parallelism`` and the same flags,
stops the cluster, and prints per corpus: wall seconds, instances, and the
peak resident memory of the TaskManager JVM, of the Beam worker pool with
the Python workers it starts (where the DoFns run), and of the job server,
each sampled every 0.2 s.
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from typing import Dict, List

import psutil

from benchmarks.compare import DEFAULT_VOCAB, REPO, generate_corpus
from runners import local_flink


def _tree_rss(pid: int) -> int:
  try:
    root = psutil.Process(pid)
    procs = [root] + root.children(recursive=True)
  except psutil.NoSuchProcess:
    return 0
  total = 0
  for p in procs:
    try:
      total += p.memory_info().rss
    except psutil.NoSuchProcess:
      pass
  return total


def run_one(corpus: str, cluster: Dict, args, workdir: str) -> Dict:
  roles = {p["role"]: p["pid"] for p in cluster["processes"]}
  watched = {"taskmanager": roles["taskmanager-0"],
             "worker_pool": roles["worker-pool"],
             "job_server": roles["job-server"]}
  peaks = {name: 0 for name in watched}
  done = threading.Event()

  def sample():
    while not done.is_set():
      for name, pid in watched.items():
        peaks[name] = max(peaks[name], _tree_rss(pid))
      done.wait(0.2)

  out = os.path.join(workdir, "out_" + os.path.basename(corpus))
  log = os.path.join(workdir, os.path.basename(corpus) + ".log")
  cmd = [sys.executable, "-m", "pipelines.mlm", "--input=" + corpus,
         "--output=" + out, "--overwrite", "--vocab_file=" + args.vocab_file,
         "--dupe_factor=%d" % args.dupe_factor,
         "--random_next_pool_size=%d" % args.random_next_pool_size,
         "--runner=PortableRunner",
         "--job_endpoint=" + cluster["job_endpoint"],
         "--parallelism=%d" % args.parallelism]
  sampler = threading.Thread(target=sample, daemon=True)
  sampler.start()
  start = time.time()
  with open(log, "w") as f:
    rc = subprocess.call(cmd, cwd=REPO, stdout=f, stderr=subprocess.STDOUT)
  wall = time.time() - start
  done.set()
  sampler.join()
  if rc != 0:
    raise RuntimeError("the job failed (exit %d); see %s" % (rc, log))
  with open(os.path.join(out, "summary.json")) as f:
    instances = json.load(f)["counts"]["instances"]
  shutil.rmtree(out, ignore_errors=True)
  return {"corpus_mb": os.path.getsize(corpus) / 1e6, "wall_s": wall,
          "instances": instances,
          **{name + "_peak_mb": peak / 1e6 for name, peak in peaks.items()}}


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  source = parser.add_mutually_exclusive_group()
  source.add_argument("--corpus", help="Comma-separated lines-format files.")
  source.add_argument("--generate_mb", default="20,200",
                      help="Comma-separated sizes of corpora generated from "
                      "the sample text (default 20,200).")
  parser.add_argument("--taskmanager_memory", default="2g")
  parser.add_argument("--taskmanager_off_heap", default="256m")
  parser.add_argument("--slots", type=int, default=2)
  parser.add_argument("--parallelism", type=int, default=2)
  parser.add_argument("--dupe_factor", type=int, default=5)
  parser.add_argument(
      "--random_next_pool_size", type=int, default=100,
      help="A pool reaches the Python workers as one element, and Beam's "
      "runner-side data plane lets about 100 messages through before it "
      "waits for the worker: with Wikipedia-length documents (about 8 KB of "
      "token ids each) pools of 1000 would put close to 1 GB in the "
      "TaskManager's direct memory per slot. 100 keeps it near 100 MB.")
  parser.add_argument("--vocab_file", default=DEFAULT_VOCAB)
  parser.add_argument("--json", help="Also write the results here.")
  args = parser.parse_args(argv)

  workdir = tempfile.mkdtemp(prefix="mlm-flink-bench-")
  if args.corpus:
    corpora = [c.strip() for c in args.corpus.split(",") if c.strip()]
  else:
    corpora = []
    for mb in args.generate_mb.split(","):
      path = os.path.join(workdir, "generated_%smb.txt" % mb.strip())
      generate_corpus(path, float(mb))
      corpora.append(path)
  print("starting the local cluster: 1 TaskManager, %s, %d slots" % (
      args.taskmanager_memory, args.slots), flush=True)
  cluster = local_flink.start(taskmanagers=1, slots=args.slots,
                              taskmanager_memory=args.taskmanager_memory,
                              taskmanager_off_heap=args.taskmanager_off_heap)
  rows: List[Dict] = []
  try:
    for corpus in corpora:
      row = run_one(corpus, cluster, args, workdir)
      rows.append(row)
      print("%s: %.1f s" % (corpus, row["wall_s"]), flush=True)
  finally:
    local_flink.stop()
  print()
  print("TaskManager process size %s (task off-heap %s), %d slots, "
        "parallelism %d, dupe_factor %d, random_next_pool_size %d" % (
            args.taskmanager_memory, args.taskmanager_off_heap, args.slots,
            args.parallelism, args.dupe_factor, args.random_next_pool_size))
  print("| corpus MB | wall s | MB/s | instances | TaskManager peak RSS MB | "
        "worker pool + Python workers peak RSS MB | job server peak RSS MB |")
  print("|---|---|---|---|---|---|---|")
  for r in rows:
    print("| %.1f | %.1f | %.2f | {:,} | %.0f | %.0f | %.0f |".format(
        r["instances"]) % (r["corpus_mb"], r["wall_s"],
                           r["corpus_mb"] / r["wall_s"],
                           r["taskmanager_peak_mb"], r["worker_pool_peak_mb"],
                           r["job_server_peak_mb"]))
  if args.json:
    with open(args.json, "w") as f:
      json.dump(rows, f, indent=2)


if __name__ == "__main__":
  main()
