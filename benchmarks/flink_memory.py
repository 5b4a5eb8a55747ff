"""The pipeline on a local Flink cluster of several hosts that share nothing
but an object store, one fixed configuration, growing corpora: how fast,
where the time goes, and does memory stay put?

Usage (as root: the hosts are network namespaces):
  python -m benchmarks.flink_memory --generate_mb=20,200
  python -m benchmarks.flink_memory --generate_mb=200,1000 --direct_baseline \
      --py_spy --json results.json
  python -m benchmarks.flink_memory --corpus=wiki20.txt,wiki200.txt \
      --taskmanagers=2 --taskmanager_memory=1536m

Starts ``runners.local_flink`` with ``--hosts`` (the JobManager and the job
server on one host, each TaskManager with its own Beam worker pool on
another) and an S3 server (SeaweedFS) on the hosts' bridge
(``runners.local_s3``), uploads each corpus and the vocabulary there, runs
``python -m pipelines.mlm`` from S3 to S3 through the job server with the
pipeline's default settings, and prints per corpus:

* wall seconds, MB/s, instances, and the peak resident memory of each
  TaskManager JVM, of each worker pool with the Python workers it starts
  (where the DoFns run), and of the job server, sampled every 0.2 s;
* the job's start: seconds from launch to the job service's RUNNING, to the
  Flink job, to the first Python worker; every stage (Flink vertex) with
  its start and end from the REST API; the CPU-seconds of every role;
* with ``--py_spy``, the Python workers' samples split by stage
  (``PROFILE_STAGES``) and their hottest functions;
* with ``--direct_baseline``, the same corpora on the DirectRunner with as
  many worker processes as the cluster has slots, whether its counts equal
  the cluster run's, and for both the rate once started and the fixed start
  (the line through the smallest and the largest corpus);
* with ``--direct_s3_baseline``, the same again with input, pools and
  output on an S3 server on this machine's loopback, as the cluster has
  them: the two engines with the same store, its CPU counted apart.

Each corpus runs on a cluster started for it, so that a row shows what its
corpus needs; ``--same_cluster`` runs them all on one cluster, in turn.
``--one_host`` runs one TaskManager and worker pool on this machine's own
network with local files instead.
"""

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from typing import Dict, List, Optional, Sequence, Tuple

import psutil

from benchmarks import provenance
from benchmarks.compare import DEFAULT_VOCAB, REPO, Measured, generate_corpus
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


class CpuMeter:
  """CPU-seconds (user + system) of process trees, sampled: the last figure
  seen for every process that was ever in a tree counts, so a Python worker
  that exits between samples keeps what it used up to the sample before.
  Thread-safe: a sampling thread and the thread that adds the launcher's
  tree share it (unlocked, an ``add`` during a ``sample`` ended the
  sampling thread with "dictionary changed size during iteration", and the
  run's peaks and first worker were read from its last sample only)."""

  def __init__(self, roots: Dict[str, int]):
    self._lock = threading.Lock()
    self.roots: Dict[str, int] = {}
    self._seen: Dict[str, Dict[int, float]] = {}
    self.first_child: Dict[str, float] = {}
    self._start_children: Dict[str, set] = {}
    for role, pid in roots.items():
      self.add(role, pid)

  def add(self, role: str, pid: int) -> None:
    """Measures the tree of ``pid`` from now on; its children already there
    do not count as its first child."""
    children = set(self._children(pid))
    with self._lock:
      self.roots[role] = pid
      self._seen[role] = {}
      self._start_children[role] = children

  @staticmethod
  def _children(pid: int) -> List[int]:
    try:
      return [c.pid for c in psutil.Process(pid).children(recursive=True)]
    except psutil.NoSuchProcess:
      return []

  def sample(self) -> None:
    with self._lock:
      self._sample()

  def _sample(self) -> None:
    for role, pid in self.roots.items():
      try:
        procs = [psutil.Process(pid)] + psutil.Process(pid).children(
            recursive=True)
      except psutil.NoSuchProcess:
        continue
      for p in procs:
        try:
          t = p.cpu_times()
        except psutil.NoSuchProcess:
          continue
        self._seen[role][p.pid] = t.user + t.system
        if (p.pid != pid and p.pid not in self._start_children[role]
            and role not in self.first_child):
          self.first_child[role] = time.time()

  def seconds(self) -> Dict[str, float]:
    with self._lock:
      return {role: sum(seen.values()) for role, seen in self._seen.items()}


def _stage_times(cluster: Dict, job_name: str, since: float) -> Dict:
  """The job's Flink vertices (stages) from the REST API, each with its
  start and end relative to ``since`` (the launch), and the job's own."""
  rest = lambda path: local_flink.rest(path, cluster["rest_port"],
                                       host=cluster["address"])
  jobs = [j for j in rest("/jobs/overview")["jobs"] if j["name"] == job_name
          and j["start-time"] >= (since - 5) * 1000]
  if not jobs:
    return {}
  path = "/jobs/" + max(jobs, key=lambda j: j["start-time"])["jid"]
  job = rest(path)
  # The launcher may end a moment before the JobManager records the job's
  # and its last stage's end (seen: "job ended None s").
  deadline = time.time() + 30
  while ((job["state"] not in ("FINISHED", "FAILED", "CANCELED")
          or not job.get("end-time") or job["end-time"] <= 0)
         and time.time() < deadline):
    time.sleep(0.5)
    job = rest(path)
  rel = lambda ms: round(ms / 1000 - since, 1) if ms and ms > 0 else None
  return {"submitted_s": rel(job["start-time"]), "ended_s": rel(
      job["end-time"]), "state": job["state"],
          "stages": [{"name": v["name"][:160], "start_s": rel(v["start-time"]),
                      "end_s": rel(v["end-time"]),
                      "parallelism": v["parallelism"], "status": v["status"]}
                     for v in job["vertices"]]}


def _s3_server_pid() -> Optional[int]:
  for child in psutil.Process().children(recursive=True):
    try:
      if child.name() == "weed" or "weed" in " ".join(child.cmdline()[:1]):
        return child.pid
    except psutil.NoSuchProcess:
      pass
  return None


def run_one(corpus: str, cluster: Dict, args, workdir: str,
            s3_url: Optional[str]) -> Dict:
  """One job; returns its figures. With ``s3_url``, input, vocabulary and
  output are on that S3 server."""
  watched = {p["role"]: p["pid"] for p in cluster["processes"]
             if p["role"].startswith(("taskmanager", "worker-pool",
                                      "job-server"))}
  peaks = {name: 0 for name in watched}
  cpu_roots = {p["role"]: p["pid"] for p in cluster["processes"]}
  s3_pid = _s3_server_pid() if s3_url else None
  if s3_pid:
    cpu_roots["s3-server"] = s3_pid
  meter = CpuMeter(cpu_roots)
  meter.sample()
  cpu_before = meter.seconds()
  done = threading.Event()

  sampling_failed: List[BaseException] = []

  def sample():
    try:
      while not done.is_set():
        for name, pid in watched.items():
          peaks[name] = max(peaks[name], _tree_rss(pid))
        meter.sample()
        done.wait(0.2)
    except BaseException as e:  # reported by the run, not lost with the thread
      sampling_failed.append(e)
      raise

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
    flags = ["--input=" + os.path.join(os.path.dirname(corpus), "*"),
             "--output=" + out, "--overwrite",
             "--vocab_file=" + args.vocab_file]
  cmd = [sys.executable, "-m", "pipelines.mlm"] + flags + [
      "--dupe_factor=%d" % args.dupe_factor,
      "--random_next_pool_size=%d" % args.random_next_pool_size,
      "--pool_shuffle=" + args.pool_shuffle,
      "--runner=PortableRunner",
      "--job_endpoint=" + cluster["job_endpoint"],
      "--parallelism=%d" % args.parallelism,
      # Beam's "Job state changed to RUNNING" line marks the job service's
      # start: logged at info only.
      "--log_level=info"]
  sampler = threading.Thread(target=sample, daemon=True)
  sampler.start()
  start = time.time()
  result = "ok"
  marks: Dict[str, float] = {}

  def copy_log(stream, f):
    # The launcher's lines, each with the seconds since launch.
    for line in stream:
      now = time.time() - start
      if "Job state changed to RUNNING" in line:
        marks.setdefault("job_service_running_s", round(now, 1))
      f.write("%7.2f %s" % (now, line))
    f.flush()

  with open(log, "w") as f:
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True,
                            env=dict(os.environ, **S3_ENV))
    copier = threading.Thread(target=copy_log, args=(proc.stdout, f),
                              daemon=True)
    copier.start()
    meter.add("launcher", proc.pid)
    profiles = _start_profiles(args, cluster, workdir, name)
    try:
      rc = proc.wait(timeout=args.timeout)
      if rc != 0:
        result = "failed (exit %d, log %s)" % (rc, log)
    except subprocess.TimeoutExpired:
      proc.kill()
      proc.wait()
      result = "no end after %d s (log %s)" % (args.timeout, log)
    copier.join()
  wall = time.time() - start
  done.set()
  sampler.join()
  if sampling_failed:
    raise RuntimeError("sampling the cluster's processes failed: %r"
                       % sampling_failed[0])
  meter.sample()
  cpu = {role: round(s - cpu_before.get(role, 0.0), 1)
         for role, s in meter.seconds().items()}
  first_worker = min((t for role, t in meter.first_child.items()
                      if role.startswith("worker-pool")), default=None)
  try:
    stages = _stage_times(cluster, flink_job_name(flags), start)
  except OSError:
    stages = {}
  for p, _ in profiles:
    p.send_signal(signal.SIGINT)  # py-spy writes its file and exits
    try:
      p.wait(timeout=60)
    except subprocess.TimeoutExpired:
      p.kill()
      p.wait()
  profile = profile_summary([out for _, out in profiles
                             if os.path.exists(out)]) if profiles else None
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
    counts = json.loads(summary)["counts"]
    instances = counts["instances"]
  else:
    counts = None
    _cancel_running_jobs(cluster)
  return {"corpus_mb": os.path.getsize(corpus) / 1e6, "wall_s": wall,
          "instances": instances, "result": result, "counts": counts,
          "peaks_mb": {name: peak / 1e6 for name, peak in peaks.items()},
          "cpu_s": cpu, "first_worker_s": (round(first_worker - start, 1)
                                           if first_worker else None),
          "flink": stages, "profile": profile, **marks}


def run_direct(corpus: str, args, workdir: str, workers: int) -> Dict:
  """The same job on the DirectRunner with ``workers`` worker processes,
  local files: its wall and CPU seconds and its counts."""
  out = os.path.join(workdir, "direct_" + os.path.basename(corpus))
  cmd = [sys.executable, "-m", "pipelines.mlm",
         "--input=" + os.path.join(os.path.dirname(corpus), "*"),
         "--output=" + out, "--overwrite", "--vocab_file=" + args.vocab_file,
         "--dupe_factor=%d" % args.dupe_factor,
         "--random_next_pool_size=%d" % args.random_next_pool_size,
         "--pool_shuffle=" + args.pool_shuffle,
         "--direct_num_workers=%d" % workers]
  measured = Measured(cmd, log=out + ".log").run()
  with open(os.path.join(out, "summary.json")) as f:
    counts = json.load(f)["counts"]
  shutil.rmtree(out, ignore_errors=True)
  return dict(measured, counts=counts, workers=workers)


def run_direct_s3(corpus: str, args, workdir: str, workers: int,
                  s3_url: str) -> Dict:
  """The same job on the DirectRunner with ``workers`` worker processes,
  input, vocabulary, pools and output on the S3 server ``s3_url`` as on
  the cluster: its wall and CPU seconds, the S3 server's CPU seconds and
  its counts."""
  name = os.path.basename(corpus)
  client = _s3_client(s3_url)
  client.upload_file(corpus, BUCKET, "corpus/%s/%s" % (name, name))
  cmd = [sys.executable, "-m", "pipelines.mlm",
         "--input=s3://%s/corpus/%s/*" % (BUCKET, name),
         "--output=s3://%s/direct/%s" % (BUCKET, name),
         "--vocab_file=s3://%s/vocab/vocab.txt" % BUCKET,
         "--s3_endpoint_url=" + s3_url, "--s3_region_name=us-east-1",
         "--dupe_factor=%d" % args.dupe_factor,
         "--random_next_pool_size=%d" % args.random_next_pool_size,
         "--pool_shuffle=" + args.pool_shuffle,
         "--direct_num_workers=%d" % workers]
  server = psutil.Process(_s3_server_pid())
  before = sum(server.cpu_times()[:2])
  measured = Measured(cmd, env=dict(os.environ, **S3_ENV),
                      log=os.path.join(workdir, "direct_s3_%s.log" % name)
                      ).run()
  s3_cpu = sum(server.cpu_times()[:2]) - before
  summary = client.get_object(Bucket=BUCKET, Key="direct/%s/summary.json"
                              % name)["Body"].read()
  _delete_prefix(client, "direct/%s/" % name)
  _delete_prefix(client, "corpus/%s/" % name)
  return dict(measured, counts=json.loads(summary)["counts"],
              workers=workers, s3_cpu_s=s3_cpu)


def steady_state(rows: List[Dict], key: str = "wall_s") -> Optional[Dict]:
  """Throughput once started, from the smallest and the largest corpus:
  MB/s = (MB_large - MB_small) / (s_large - s_small), and the fixed start
  the line through both gives at 0 MB."""
  done = sorted((r for r in rows if r.get(key)), key=lambda r: r["corpus_mb"])
  if len(done) < 2 or done[-1][key] <= done[0][key]:
    return None
  small, large = done[0], done[-1]
  rate = (large["corpus_mb"] - small["corpus_mb"]) / (large[key] - small[key])
  return {"mb_s": rate, "start_s": small[key] - small["corpus_mb"] / rate}


# Which stage a sampled Python stack belongs to: the stage of the deepest
# frame in the stack that is one of its DoFns or functions (in a fused Beam
# stage the downstream DoFns run inside the upstream ones' calls).
PROFILE_STAGES = (
    ("read and tokenize", ("_ReadRange.", "_ParseDocument.", "_SplitDoFn.",
                           "_TokenizeDoFn.", "_SpillDoFn.")),
    ("instances, masking and writing", ("_ReadPoolGroupDoFn.", "_MaskDoFn.",
                                        "_WriteBundleDoFn.", "_WriteGroupsDoFn.",
                                        "serialize_framed",
                                        "_finalize ", "WriteExamples.")),
    # The parts of S3 objects (pool files, shards) that upload threads send
    # while the stages go on (transforms/s3_clients.py).
    ("S3 part uploads (upload threads)", ("LeanUploader._upload_part",)),
)
IDLE_FRAMES = ("Condition.wait", "channel_spin", "_serve (", "Event.wait",
               "select (", "poll (", "_wait_once")


def _stage_of(frames: List[str], stages) -> Optional[str]:
  for frame in reversed(frames):
    for name, marks in stages:
      if any(m in frame for m in marks):
        return name
  return None


def profile_summary(paths: List[str], top: int = 8,
                    stages=PROFILE_STAGES) -> Dict:
  """py-spy's collapsed stacks (``--format raw``) of the worker pools and
  their workers, summed: busy samples per stage (``stages``: (name, marks)
  pairs, ``PROFILE_STAGES`` by default; a stack in none of them that
  imports modules is a worker starting, the rest is the SDK harness
  itself), and the functions with the most samples of their own in each."""
  found: Dict[str, Dict] = {}
  for path in paths:
    with open(path, errors="replace") as f:
      for line in f:
        stack, _, count = line.rstrip("\n").rpartition(" ")
        if not count.isdigit():
          continue
        frames = stack.split(";")
        if any(idle in frames[-1] for idle in IDLE_FRAMES):
          continue
        stage = _stage_of(frames, stages)
        if stage is None:
          stage = ("worker start-up (imports)" if any(
              "_find_and_load" in frame for frame in frames)
                   else "SDK harness and gRPC")
        entry = found.setdefault(stage, {"samples": 0, "self": {}})
        entry["samples"] += int(count)
        # A function's samples of its own, whatever its line.
        own = re.sub(r":\d+\)$", ")", frames[-1])
        entry["self"][own] = entry["self"].get(own, 0) + int(count)
  total = sum(e["samples"] for e in found.values()) or 1
  return {name: {"share": e["samples"] / total, "samples": e["samples"],
                 "top": sorted(e["self"].items(), key=lambda kv: -kv[1])[:top]}
          for name, e in sorted(found.items(), key=lambda kv: -kv[1]["samples"])}


def flink_job_name(flags: List[str]) -> str:
  from runners import flink  # pylint: disable=import-outside-toplevel
  out = [f.split("=", 1)[1] for f in flags if f.startswith("--output=")][0]
  return flink.job_name(out)


def _start_profiles(args, cluster: Dict, workdir: str, name: str
                    ) -> List[Tuple[subprocess.Popen, str]]:
  """With ``--py_spy``: py-spy records every worker pool and the Python
  workers it starts (``--subprocesses``) for the whole job, into
  WORKDIR/NAME.pyspy-ROLE.txt (collapsed stacks, one line per stack with
  its sample count). Returns each py-spy process with its file."""
  if not args.py_spy:
    return []
  spy = shutil.which("py-spy") or os.path.join(os.path.dirname(
      sys.executable), "py-spy")
  procs = []
  for p in cluster["processes"]:
    if p["role"].startswith("worker-pool"):
      out = os.path.join(workdir, "%s.pyspy-%s.txt" % (name, p["role"]))
      procs.append((subprocess.Popen(
          [spy, "record", "--pid", str(p["pid"]), "--subprocesses",
           "--format", "raw", "--rate", "50", "--nonblocking", "-o", out],
          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL), out))
  return procs


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


def _corpus_path(workdir: str, name: str) -> str:
  """WORKDIR/corpora/NAME/NAME, NAME made unique (a corpus given twice, as
  in ``--generate_mb=5,5,5 --same_cluster``, runs under -2, -3...)."""
  base, ext = os.path.splitext(name)
  for n in range(1, 1000):
    unique = name if n == 1 else "%s-%d%s" % (base, n, ext)
    folder = os.path.join(workdir, "corpora", unique)
    if not os.path.exists(folder):
      os.makedirs(folder)
      return os.path.join(folder, unique)
  raise ValueError("too many corpora named %s" % name)


# EC2 on-demand list prices, us-east-1, USD an hour (aws.amazon.com/ec2/
# pricing/on-demand, aws.amazon.com/vpc/pricing): Terraform's default
# TaskManager and JobManager types (terraform/variables.tf) and the NAT
# gateway (S3 traffic takes the free gateway endpoint).
PRICE_TASKMANAGER = 0.34  # c6i.2xlarge: 8 vCPUs, 16 GiB
PRICE_JOBMANAGER = 0.096  # m6i.large
PRICE_NAT = 0.045
SLOTS_PER_HOST = 4  # one per physical core of a c6i.2xlarge
ESTIMATES = ((100e3, "100 GB", 8), (1e6, "1 TB", 32))  # MB, name, hosts


def estimate_lines(per_slot: float, largest: Dict) -> List[str]:
  """What 100 GB and 1 TB need on EC2, from two rates: ``per_slot`` as
  measured (MB/s, with this machine's S3 server and JVMs on the workers'
  cores), and the Python work's own (the largest run's corpus over its
  workers' CPU-seconds: a slot on a core that runs nothing else)."""
  worker_cpu = sum(v for k, v in largest["cpu_s"].items()
                   if k.startswith("worker-pool"))
  per_core = largest["corpus_mb"] / worker_cpu if worker_cpu else 0.0
  lines = ["What 100 GB and 1 TB need on EC2 (derived, not run): c6i.2xlarge "
           "TaskManagers with %d slots each, an m6i.large JobManager, a NAT "
           "gateway, on-demand in us-east-1. Hours at %.3f MB/s per slot "
           "(measured here) / %.2f MB/s per slot (the workers' own CPU cost, "
           "%.0f CPU-seconds per GB):" % (
               SLOTS_PER_HOST, per_slot, per_core,
               1000 / per_core if per_core else 0),
           "",
           "| corpus | hosts x slots | hours | EC2 cost, USD |",
           "|---|---|---|---|"]
  for mb, name, hosts in ESTIMATES:
    slots = hosts * SLOTS_PER_HOST
    hours = [mb / (rate * slots) / 3600 for rate in (per_slot, per_core)
             if rate]
    cost = hosts * PRICE_TASKMANAGER + PRICE_JOBMANAGER + PRICE_NAT
    lines.append("| %s | %d x %d = %d | %s | %s |" % (
        name, hosts, SLOTS_PER_HOST, slots,
        " / ".join("%.1f" % h for h in hours),
        " / ".join("%.1f" % (h * cost) for h in hours)))
  return lines


def report_lines(rows: List[Dict], direct_rows: List[Dict], args,
                 taskmanagers: int, slots: int,
                 direct_s3_rows: Sequence[Dict] = ()) -> List[str]:
  """The results as Markdown lines: the Flink runs, where their time went,
  the DirectRunner baselines (local files; the same S3 server) and the
  per-slot ratios."""
  lines: List[str] = []

  def out(text: str = "") -> None:
    lines.append(text)

  out()
  out("%d TaskManager(s), process size %s (task off-heap %s), %d slot(s) "
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
  out("| corpus MB | wall s | MB/s | instances | %s |" % " | ".join(
      "%s peak RSS MB" % r for r in roles))
  out("|---|---|---|---|%s" % ("---|" * len(roles)))
  for r in rows:
    peaks = " | ".join("%.0f" % r["peaks_mb"][role] for role in roles)
    if r["result"] != "ok":
      out("| %.1f | %s | | | %s |" % (r["corpus_mb"], r["result"], peaks))
      continue
    out("| %.1f | %.1f | %.2f | {:,} | %s |".format(r["instances"]) % (
        r["corpus_mb"], r["wall_s"], r["corpus_mb"] / r["wall_s"], peaks))
  for r in rows:
    out()
    out("%.1f MB: launch to the job service's RUNNING %s s, to the Flink "
          "job %s s, to the first Python worker %s s, job ended %s s" % (
              r["corpus_mb"], r.get("job_service_running_s"),
              r["flink"].get("submitted_s"),
              r["first_worker_s"], r["flink"].get("ended_s")))
    out("  CPU-seconds: " + ", ".join(
        "%s %.1f" % kv for kv in sorted(r["cpu_s"].items())))
    for name, entry in (r.get("profile") or {}).items():
      out("  py-spy, %s: %.0f%% of the workers' busy samples; most of their "
            "own: %s" % (name, 100 * entry["share"], "; ".join(
                "%s %d" % (frame[:70], n) for frame, n in entry["top"][:4])))
    for stage in r["flink"].get("stages", []):
      out("  stage %6s-%6s s  x%d  %s" % (stage["start_s"], stage["end_s"],
                                          stage["parallelism"],
                                          stage["name"][:110]))
  if direct_rows:
    out()
    out("DirectRunner, %d worker processes, local files, same corpora:"
          % slots)
    out("| corpus MB | wall s | CPU s | MB/s per worker | same counts as "
          "Flink |")
    out("|---|---|---|---|---|")
    for r, f in zip(direct_rows, rows):
      out("| %.1f | %.1f | %.1f | %.2f | %s |" % (
          r["corpus_mb"], r["wall_s"], r["cpu_s"],
          r["corpus_mb"] / r["wall_s"] / slots,
          "yes" if f.get("counts") == r["counts"] else "NO"))
  if direct_s3_rows:
    out()
    out("DirectRunner, %d worker processes, input, pools and output on an "
        "S3 server (SeaweedFS, this machine's loopback) as on the cluster:"
        % slots)
    out("| corpus MB | wall s | CPU s | S3 server CPU s | MB/s per worker | "
        "same counts as Flink |")
    out("|---|---|---|---|---|---|")
    for r, f in zip(direct_s3_rows, rows):
      out("| %.1f | %.1f | %.1f | %.1f | %.2f | %s |" % (
          r["corpus_mb"], r["wall_s"], r["cpu_s"], r["s3_cpu_s"],
          r["corpus_mb"] / r["wall_s"] / slots,
          "yes" if f.get("counts") == r["counts"] else "NO"))
  flink_fit = steady_state([r for r in rows if r["result"] == "ok"])
  direct_fit = steady_state(direct_rows)
  direct_s3_fit = steady_state(list(direct_s3_rows))
  if flink_fit:
    out()
    out("Flink once started: %.2f MB/s, %.3f MB/s per slot; fixed start "
          "%.1f s (the line through the smallest and largest corpus)"
          % (flink_fit["mb_s"], flink_fit["mb_s"] / slots,
             flink_fit["start_s"]))
  if direct_fit:
    out("DirectRunner once started: %.2f MB/s, %.3f MB/s per worker; "
          "fixed start %.1f s" % (direct_fit["mb_s"],
                                  direct_fit["mb_s"] / slots,
                                  direct_fit["start_s"]))
  if direct_s3_fit:
    out("DirectRunner on S3 once started: %.2f MB/s, %.3f MB/s per worker; "
        "fixed start %.1f s" % (direct_s3_fit["mb_s"],
                                direct_s3_fit["mb_s"] / slots,
                                direct_s3_fit["start_s"]))
  if flink_fit and direct_fit:
    out("per slot / per DirectRunner worker: %.0f%%"
        % (100 * flink_fit["mb_s"] / direct_fit["mb_s"]))
  if flink_fit and direct_s3_fit:
    out("per slot / per DirectRunner worker on the same S3 server: %.0f%%"
        % (100 * flink_fit["mb_s"] / direct_s3_fit["mb_s"]))
  ok = [r for r in rows if r["result"] == "ok"]
  if flink_fit and ok and not args.one_host:
    out()
    for line in estimate_lines(flink_fit["mb_s"] / slots,
                               max(ok, key=lambda r: r["corpus_mb"])):
      out(line)
  return lines


def main(argv=None):
  # SIGTERM (kill, a CI timeout) ends the run through its finally blocks, so
  # the cluster and the S3 server are stopped, as with Ctrl-C; without this
  # Python dies at once and leaves them running.
  signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
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
      "TaskManager's heap (docs/flink.md).")
  parser.add_argument("--timeout", type=int, default=3600,
                      help="Seconds a job may run before it counts as "
                      "stalled and is cancelled (default %(default)s).")
  parser.add_argument("--vocab_file", default=DEFAULT_VOCAB)
  parser.add_argument("--py_spy", action="store_true",
                      help="Profile the Python workers with py-spy (see "
                      "_start_profiles); the files are named in the output.")
  parser.add_argument("--direct_baseline", action="store_true",
                      help="Also run each corpus on the DirectRunner with "
                      "as many worker processes as the cluster has slots, "
                      "local files, and compare: MB/s per slot beside MB/s "
                      "per worker core, and the counts of both runs.")
  parser.add_argument("--direct_s3_baseline", action="store_true",
                      help="Also run each corpus on the DirectRunner with "
                      "as many worker processes as the cluster has slots, "
                      "input, pools and output on an S3 server on this "
                      "machine's loopback: the engines compared with the "
                      "same store (its CPU counted apart).")
  parser.add_argument("--json", help="Also write the results here.")
  parser.add_argument("--markdown", help="Also write the report as a page "
                      "with its provenance (docs/benchmarks/flink.md).")
  args = parser.parse_args(argv)
  workdir = tempfile.mkdtemp(prefix="mlm-flink-bench-")
  try:
    _measure(args, workdir, sys.argv[1:] if argv is None else argv)
  finally:
    # The corpora (generated or copied: GBs) go; the logs and py-spy files
    # the report and its errors name stay.
    shutil.rmtree(os.path.join(workdir, "corpora"), ignore_errors=True)
    print("logs and profiles: %s" % workdir, flush=True)


def _measure(args, workdir: str, command: List[str]) -> None:
  """Runs what ``args`` ask for in ``workdir`` and reports it."""
  # Each corpus alone in a folder named as it is (WORKDIR/corpora/NAME/NAME),
  # as on S3 (s3://bench/corpus/NAME/NAME): the document ids, paths below
  # that folder, and so the examples are the same on every runner.
  corpora = []
  if args.corpus:
    for given in (c.strip() for c in args.corpus.split(",") if c.strip()):
      path = _corpus_path(workdir, os.path.basename(given))
      shutil.copyfile(given, path)
      corpora.append(path)
  else:
    for mb in args.generate_mb.split(","):
      path = _corpus_path(workdir, "generated_%smb.txt" % mb.strip())
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
  slots = taskmanagers * args.slots
  direct_rows: List[Dict] = []
  if args.direct_baseline:
    for corpus in corpora:
      direct_rows.append(dict(run_direct(corpus, args, workdir, slots),
                              corpus_mb=os.path.getsize(corpus) / 1e6))
      print("%s on the DirectRunner: %.1f s" % (corpus,
                                               direct_rows[-1]["wall_s"]),
            flush=True)
  direct_s3_rows: List[Dict] = []
  if args.direct_s3_baseline:
    with local_s3.server() as url:
      client = _s3_client(url)
      client.create_bucket(Bucket=BUCKET)
      client.upload_file(args.vocab_file, BUCKET, "vocab/vocab.txt")
      for corpus in corpora:
        direct_s3_rows.append(dict(
            run_direct_s3(corpus, args, workdir, slots, url),
            corpus_mb=os.path.getsize(corpus) / 1e6))
        print("%s on the DirectRunner, S3: %.1f s" % (
            corpus, direct_s3_rows[-1]["wall_s"]), flush=True)
  report = report_lines(rows, direct_rows, args, taskmanagers, slots,
                        direct_s3_rows)
  print("\n".join(report))
  if args.markdown:
    provenance.write_page(
        args.markdown, "Flink throughput against the DirectRunner",
        command, report)
  if args.json:
    with open(args.json, "w") as f:
      json.dump({"flink": rows, "direct": direct_rows,
                 "direct_s3": direct_s3_rows,
                 "direct_s3_steady": steady_state(direct_s3_rows),
                 "flink_steady": steady_state(
                     [r for r in rows if r["result"] == "ok"]),
                 "direct_steady": steady_state(direct_rows)},
                f, indent=2)


if __name__ == "__main__":
  main()
