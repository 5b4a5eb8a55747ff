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
from transforms.instances import DEFAULT_POOL_SIZE


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
         "--pool_shuffle=" + args.pool_shuffle,
         "--runner=PortableRunner",
         "--job_endpoint=" + cluster["job_endpoint"],
         "--parallelism=%d" % args.parallelism]
  sampler = threading.Thread(target=sample, daemon=True)
  sampler.start()
  start = time.time()
  result = "ok"
  with open(log, "w") as f:
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=f, stderr=subprocess.STDOUT)
    try:
      rc = proc.wait(timeout=args.timeout)
      if rc != 0:
        result = "failed (exit %d, log %s)" % (rc, log)
    except subprocess.TimeoutExpired:
      proc.kill()
      proc.wait()
      result = "no end after %d s (log %s)" % (args.timeout, log)
  wall = time.time() - start
  done.set()
  sampler.join()
  instances = None
  if result == "ok":
    with open(os.path.join(out, "summary.json")) as f:
      instances = json.load(f)["counts"]["instances"]
  else:
    _cancel_running_jobs(cluster)
  shutil.rmtree(out, ignore_errors=True)
  return {"corpus_mb": os.path.getsize(corpus) / 1e6, "wall_s": wall,
          "instances": instances, "result": result,
          **{name + "_peak_mb": peak / 1e6 for name, peak in peaks.items()}}


def _cancel_running_jobs(cluster: Dict) -> None:
  """Frees the slots that a failed or stalled job still holds."""
  for job in local_flink.rest("/jobs/overview",
                              cluster["rest_port"])["jobs"]:
    if job["state"] not in ("FINISHED", "FAILED", "CANCELED"):
      local_flink.rest("/jobs/%s?mode=cancel" % job["jid"],
                       cluster["rest_port"], method="PATCH")


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
  parser.add_argument("--random_next_pool_size", type=int,
                      default=DEFAULT_POOL_SIZE)
  parser.add_argument(
      "--pool_shuffle", choices=("files", "groupbykey"), default="files",
      help="'files' (the pipeline's default here, the output being local): "
      "the pools go through files the workers share. 'groupbykey': through "
      "Flink, where Beam 2.62's runner holds each worker's whole share of "
      "the document passes in the TaskManager's heap (README).")
  parser.add_argument("--timeout", type=int, default=3600,
                      help="Seconds a job may run before it counts as "
                      "stalled and is cancelled (default %(default)s).")
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
        "parallelism %d, dupe_factor %d, random_next_pool_size %d, "
        "pool_shuffle %s" % (
            args.taskmanager_memory, args.taskmanager_off_heap, args.slots,
            args.parallelism, args.dupe_factor, args.random_next_pool_size,
            args.pool_shuffle))
  print("| corpus MB | wall s | MB/s | instances | TaskManager peak RSS MB | "
        "worker pool + Python workers peak RSS MB | job server peak RSS MB |")
  print("|---|---|---|---|---|---|---|")
  for r in rows:
    if r["result"] != "ok":
      print("| %.1f | %s | | | %.0f | %.0f | %.0f |" % (
          r["corpus_mb"], r["result"], r["taskmanager_peak_mb"],
          r["worker_pool_peak_mb"], r["job_server_peak_mb"]))
      continue
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
