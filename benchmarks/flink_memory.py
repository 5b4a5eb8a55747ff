"""The pipeline on a local Flink cluster of several hosts that share nothing
but an object store, one fixed configuration, growing corpora: does memory
stay put?

Usage:
  python -m benchmarks.flink_memory --generate_mb=20,200
  python -m benchmarks.flink_memory --corpus=wiki20.txt,wiki200.txt \
      --taskmanagers=2 --taskmanager_memory=1536m

Starts ``runners.local_flink`` with ``--hosts`` (the JobManager and the job
server on one host, each TaskManager with its own Beam worker pool on
another: network namespaces, so root) and an S3 server (SeaweedFS) on the hosts'
bridge (``runners.local_s3``), uploads each corpus and the vocabulary
there, runs ``python -m pipelines.mlm`` from S3 to S3 through the job
server with the pipeline's default pool settings (the pools go through
files in ``OUTPUT/_pools`` on S3), and prints per corpus: wall seconds,
MB/s, instances, and the peak resident memory of each TaskManager JVM, of
each worker pool with the Python workers it starts (where the DoFns run),
and of the job server, sampled every 0.2 s. Each corpus runs on a cluster
started for it, so that a row shows what its corpus needs: a TaskManager
keeps the classes of the jobs before until a full garbage collection
unloads them (metaspace, capped by ``taskmanager.memory.jvm-metaspace.size``),
which ``--same_cluster`` (every corpus on one cluster, in turn) shows.
``--one_host`` runs the old layout instead: one TaskManager, one worker
pool, local files.
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
from typing import Dict, List, Optional

import psutil

from benchmarks.compare import DEFAULT_VOCAB, REPO, generate_corpus
from runners import local_flink, local_s3
from transforms.instances import DEFAULT_POOL_SIZE

# Fake keys: the local server takes any; on EC2 the instance profile gives
# real ones.
S3_ENV = {"AWS_ACCESS_KEY_ID": "AKIAMLMBENCHMARK0000",
          "AWS_SECRET_ACCESS_KEY": "benchmark-secret-not-a-real-key",
          "AWS_DEFAULT_REGION": "us-east-1"}
BUCKET = "bench"


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


def run_one(corpus: str, cluster: Dict, args, workdir: str,
            s3_url: Optional[str]) -> Dict:
  """One job; returns its figures. With ``s3_url``, input, vocabulary and
  output are on that S3 server."""
  watched = {p["role"]: p["pid"] for p in cluster["processes"]
             if p["role"].startswith(("taskmanager", "worker-pool",
                                      "job-server"))}
  peaks = {name: 0 for name in watched}
  done = threading.Event()

  def sample():
    while not done.is_set():
      for name, pid in watched.items():
        peaks[name] = max(peaks[name], _tree_rss(pid))
      done.wait(0.2)

  name = os.path.basename(corpus)
  log = os.path.join(workdir, name + ".log")
  if s3_url:
    client = _s3_client(s3_url)
    client.upload_file(corpus, BUCKET, "corpus/%s/%s" % (name, name))
    flags = ["--input=s3://%s/corpus/%s/*" % (BUCKET, name),
             "--output=s3://%s/output/%s" % (BUCKET, name),
             "--vocab_file=s3://%s/vocab/vocab.txt" % BUCKET,
             "--s3_endpoint_url=" + s3_url, "--s3_region_name=us-east-1"]
  else:
    out = os.path.join(workdir, "out_" + name)
    flags = ["--input=" + corpus, "--output=" + out, "--overwrite",
             "--vocab_file=" + args.vocab_file]
  cmd = [sys.executable, "-m", "pipelines.mlm"] + flags + [
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
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=f, stderr=subprocess.STDOUT,
                            env=dict(os.environ, **S3_ENV))
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
    if s3_url:
      summary = client.get_object(Bucket=BUCKET, Key="output/%s/summary.json"
                                  % name)["Body"].read()
      _delete_prefix(client, "output/%s/" % name)
      _delete_prefix(client, "corpus/%s/" % name)
    else:
      with open(os.path.join(out, "summary.json"), "rb") as f:
        summary = f.read()
      shutil.rmtree(out, ignore_errors=True)
    instances = json.loads(summary)["counts"]["instances"]
  else:
    _cancel_running_jobs(cluster)
  return {"corpus_mb": os.path.getsize(corpus) / 1e6, "wall_s": wall,
          "instances": instances, "result": result,
          "peaks_mb": {name: peak / 1e6 for name, peak in peaks.items()}}


def _s3_client(url: str):
  import boto3  # pylint: disable=import-outside-toplevel
  return boto3.client("s3", endpoint_url=url, region_name="us-east-1",
                      aws_access_key_id=S3_ENV["AWS_ACCESS_KEY_ID"],
                      aws_secret_access_key=S3_ENV["AWS_SECRET_ACCESS_KEY"])


def _delete_prefix(client, prefix: str) -> None:
  for page in client.get_paginator("list_objects_v2").paginate(
      Bucket=BUCKET, Prefix=prefix):
    for obj in page.get("Contents", []):
      client.delete_object(Bucket=BUCKET, Key=obj["Key"])


def _cancel_running_jobs(cluster: Dict) -> None:
  """Frees the slots that a failed or stalled job still holds."""
  rest = lambda path, **kw: local_flink.rest(path, cluster["rest_port"],
                                             host=cluster["address"], **kw)
  for job in rest("/jobs/overview")["jobs"]:
    if job["state"] not in ("FINISHED", "FAILED", "CANCELED"):
      rest("/jobs/%s?mode=cancel" % job["jid"], method="PATCH")


def _run_on_cluster(corpora: List[str], taskmanagers: int, args,
                    workdir: str) -> List[Dict]:
  """Starts a local cluster, runs each corpus on it in turn, stops it."""
  print("starting the local cluster: %d TaskManager(s) of %s, %d slot(s) "
        "each, %s" % (taskmanagers, args.taskmanager_memory, args.slots,
                      "one host" if args.one_host else "one host each"),
        flush=True)
  cluster = local_flink.start(taskmanagers=taskmanagers, slots=args.slots,
                              taskmanager_memory=args.taskmanager_memory,
                              taskmanager_off_heap=args.taskmanager_off_heap,
                              hosts=not args.one_host)
  rows: List[Dict] = []
  try:
    if args.one_host:
      for corpus in corpora:
        rows.append(run_one(corpus, cluster, args, workdir, None))
        print("%s: %.1f s" % (corpus, rows[-1]["wall_s"]), flush=True)
    else:
      with local_s3.server(local_flink.HOSTS_BRIDGE_ADDRESS) as url:
        client = _s3_client(url)
        client.create_bucket(Bucket=BUCKET)
        client.upload_file(args.vocab_file, BUCKET, "vocab/vocab.txt")
        for corpus in corpora:
          rows.append(run_one(corpus, cluster, args, workdir, url))
          print("%s: %.1f s" % (corpus, rows[-1]["wall_s"]), flush=True)
  finally:
    local_flink.stop()
  return rows


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  source = parser.add_mutually_exclusive_group()
  source.add_argument("--corpus", help="Comma-separated lines-format files.")
  source.add_argument("--generate_mb", default="20,200",
                      help="Comma-separated sizes of corpora generated from "
                      "the sample text (default 20,200).")
  parser.add_argument("--one_host", action="store_true",
                      help="One TaskManager and worker pool on this "
                      "machine's own network, local files (no root needed).")
  parser.add_argument("--same_cluster", action="store_true",
                      help="Run every corpus on one cluster, one job after "
                      "another (what a long-lived session cluster holds "
                      "from job to job), instead of each on a fresh one.")
  parser.add_argument("--taskmanagers", type=int, default=2)
  parser.add_argument("--taskmanager_memory", default="1536m")
  parser.add_argument("--taskmanager_off_heap", default="256m")
  parser.add_argument("--slots", type=int, default=1,
                      help="Task slots per TaskManager.")
  parser.add_argument("--parallelism", type=int, default=2)
  parser.add_argument("--dupe_factor", type=int, default=5)
  parser.add_argument("--random_next_pool_size", type=int,
                      default=DEFAULT_POOL_SIZE)
  parser.add_argument(
      "--pool_shuffle", choices=("auto", "files", "groupbykey"),
      default="auto",
      help="The pipeline's flag; 'auto', its default, means files in "
      "OUTPUT/_pools. 'groupbykey': through Flink, where Beam 2.62's runner "
      "holds each worker's whole share of the document passes in the "
      "TaskManager's heap (README).")
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
  taskmanagers = 1 if args.one_host else args.taskmanagers
  saved = {k: os.environ.get(k) for k in S3_ENV}
  os.environ.update(S3_ENV)  # the worker pools inherit it
  rows: List[Dict] = []
  try:
    # Each corpus on a cluster of its own, so that a row shows what its
    # corpus needs; with --same_cluster one cluster runs them in turn.
    for batch in ([corpora] if args.same_cluster else
                  [[c] for c in corpora]):
      rows.extend(_run_on_cluster(batch, taskmanagers, args, workdir))
  finally:
    for k, v in saved.items():
      if v is None:
        os.environ.pop(k, None)
      else:
        os.environ[k] = v
  print()
  print("%d TaskManager(s), process size %s (task off-heap %s), %d slot(s) "
        "each, parallelism %d, dupe_factor %d, random_next_pool_size %d, "
        "pool_shuffle %s, %s" % (
            taskmanagers, args.taskmanager_memory, args.taskmanager_off_heap,
            args.slots, args.parallelism, args.dupe_factor,
            args.random_next_pool_size, args.pool_shuffle,
            "one host, local files" if args.one_host else
            "a host per TaskManager, S3 only") + (
                ", one cluster for all" if args.same_cluster else
                ", a fresh cluster per corpus"))
  roles = sorted(rows[0]["peaks_mb"]) if rows else []
  print("| corpus MB | wall s | MB/s | instances | %s |" % " | ".join(
      "%s peak RSS MB" % r for r in roles))
  print("|---|---|---|---|%s" % ("---|" * len(roles)))
  for r in rows:
    peaks = " | ".join("%.0f" % r["peaks_mb"][role] for role in roles)
    if r["result"] != "ok":
      print("| %.1f | %s | | | %s |" % (r["corpus_mb"], r["result"], peaks))
      continue
    print("| %.1f | %.1f | %.2f | {:,} | %s |".format(r["instances"]) % (
        r["corpus_mb"], r["wall_s"], r["corpus_mb"] / r["wall_s"], peaks))
  if args.json:
    with open(args.json, "w") as f:
      json.dump(rows, f, indent=2)


if __name__ == "__main__":
  main()
