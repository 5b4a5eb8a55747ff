"""A Flink cluster of several hosts that share no directory, as on EC2.

``runners.local_flink.start(hosts=True)`` lays the cluster out as the EC2
cluster is: the JobManager and the job server on one host, each TaskManager
on another with its own Beam worker pool on that host's ``localhost:50000``
and its own working and temporary directories (a host is a network
namespace with its own loopback and address). Input, vocabulary and output
live on S3 (a SeaweedFS server on this machine's side of the hosts' bridge,
which every host reaches), so the only thing the hosts share is the object
store. Needs root (``ip netns``), as CI runs.
"""

import glob
import json
import os
import signal
import subprocess
import sys
import tempfile
import time

import boto3
import psutil
import pytest

from runners import local_flink
from tests.helpers import (REPO, VOCAB, cluster_job_args, digest,
                           download_prefix, environment, free_port,
                           local_cluster, local_s3_server, read_examples,
                           run_cli, write_lines_corpus)

pytestmark = pytest.mark.flink

# Restarts 3 s apart outlast the 20 s in which the JobManager drops a dead
# TaskManager (runners/flink_node.py's heartbeat settings).
RESTART_ATTEMPTS = 10
FAKE_KEYS = {"AWS_ACCESS_KEY_ID": "AKIAFAKEFAKEFAKE1234",
             "AWS_SECRET_ACCESS_KEY": "fAkEsEcReT/do-not-print-me+0123456789",
             "AWS_DEFAULT_REGION": "us-east-1"}


@pytest.fixture(scope="module")
def s3_keys():
  """Fake keys in this process's environment, which the cluster's worker
  pools inherit, as an instance profile gives them on EC2."""
  with environment(FAKE_KEYS):
    yield FAKE_KEYS


@pytest.fixture(scope="module")
def hosts_cluster(s3_keys):
  del s3_keys
  # With every TaskManager lost, a job fails after about
  # RESTART_ATTEMPTS * (3 + 10) s here (runners/flink_node.py's
  # flink_config), so that the test of that ends in minutes.
  with local_cluster(taskmanagers=2, slots=1, taskmanager_memory="1536m",
                     hosts=True, rest_port=free_port(), job_port=_job_port(),
                     restart_attempts=RESTART_ATTEMPTS, restart_delay_s=3,
                     slot_timeout_s=10) as state:
    yield state
  for i in range(3):
    assert not os.path.exists("/var/run/netns/" + local_flink.host_name(i))


def _job_port():
  """A free port with the two below it free too (artifacts, expansion)."""
  return free_port(free_below=2)


@pytest.fixture(scope="module")
def s3_url(hosts_cluster):
  # On this machine's side of the bridge: the driver and every host reach
  # it there (each host's own 127.0.0.1 is its own).
  del hosts_cluster
  with local_s3_server(local_flink.HOSTS_BRIDGE_ADDRESS) as url:
    yield url


def _taskmanagers_that_worked(cluster, jid):
  """TaskManager ids that ran a subtask which read or wrote records."""
  rest = lambda path: local_flink.rest(path, cluster["rest_port"],
                                       host=cluster["address"])
  worked = set()
  for vertex in rest("/jobs/" + jid)["vertices"]:
    per_tm = rest("/jobs/%s/vertices/%s/taskmanagers" % (jid, vertex["id"]))
    for tm in per_tm["taskmanagers"]:
      m = tm.get("metrics", {})
      if m.get("read-records", 0) or m.get("write-records", 0):
        worked.add(tm["taskmanager-id"])
  return worked


def test_hosts_have_their_own_pools_and_directories(hosts_cluster):
  hosts = hosts_cluster["hosts"]
  assert len(hosts) == 3 and len({h["address"] for h in hosts}) == 3
  assert hosts_cluster["address"] == hosts[0]["address"]  # the JobManager's
  roles = {p["role"] for p in hosts_cluster["processes"]}
  assert roles == {"jobmanager", "taskmanager-0", "taskmanager-1",
                   "worker-pool-0", "worker-pool-1", "job-server"}
  overview = local_flink.rest("/overview", hosts_cluster["rest_port"],
                              host=hosts_cluster["address"])
  assert overview["taskmanagers"] == 2
  # Each TaskManager announces its own host's address.
  tms = local_flink.rest("/taskmanagers", hosts_cluster["rest_port"],
                         host=hosts_cluster["address"])["taskmanagers"]
  addresses = {tm["id"].rsplit(":", 1)[0] for tm in tms}
  assert addresses == {h["address"] for h in hosts[1:]}, tms
  assert len({h["tmp"] for h in hosts}) == 3
  # No worker pool listens on this machine's own loopback.
  assert not local_flink._port_open(local_flink.WORKER_POOL_PORT)  # pylint: disable=protected-access


def test_job_on_hosts_sharing_only_s3_matches_the_direct_runner(
    hosts_cluster, s3_url, tmp_path):
  client = boto3.client("s3", endpoint_url=s3_url, region_name="us-east-1")
  client.create_bucket(Bucket="data")
  local = str(tmp_path / "corpus")
  paths = write_lines_corpus(local, num_files=4, docs_per_file=40, seed=7)
  for path in paths:
    client.upload_file(path, "data", "corpus/" + os.path.basename(path))
  client.upload_file(VOCAB, "data", "vocab/vocab.txt")
  direct_out = str(tmp_path / "direct")
  run_cli(["--input=" + ",".join(paths), "--output=" + direct_out,
           "--dupe_factor=3"])
  expected = digest(read_examples(direct_out))

  temp_before = set(glob.glob(os.path.join(tempfile.gettempdir(),
                                           "mlm-pools-*")))
  # The command shape of the EC2 cluster (terraform output job_command),
  # with the default pool settings.
  run_cli(cluster_job_args("data", "run-1", hosts_cluster["job_endpoint"], 2,
                           "us-east-1") +
          ["--vocab_file=s3://data/vocab/vocab.txt", "--dupe_factor=3",
           "--s3_endpoint_url=" + s3_url])
  keys = download_prefix(client, "data", "output/run-1/",
                         str(tmp_path / "from_s3"))
  assert "output/run-1/summary.json" in keys
  assert digest(read_examples(str(tmp_path / "from_s3"))) == expected

  jobs = local_flink.rest("/jobs/overview", hosts_cluster["rest_port"],
                          host=hosts_cluster["address"])["jobs"]
  ours = [j for j in jobs if j["name"] == "mlm-pipeline-run-1"]
  assert len(ours) == 1 and ours[0]["state"] == "FINISHED", jobs
  assert len(_taskmanagers_that_worked(hosts_cluster, ours[0]["jid"])) == 2

  # The pools went through files (the default), in the object store: none
  # on any host's disk or in this machine's temp directory, and the run
  # removed them from S3.
  job = local_flink.rest("/jobs/" + ours[0]["jid"], hosts_cluster["rest_port"],
                         host=hosts_cluster["address"])
  assert any("PoolFiles" in v["name"] for v in job["vertices"])
  assert set(glob.glob(os.path.join(tempfile.gettempdir(),
                                    "mlm-pools-*"))) == temp_before
  for host in hosts_cluster["hosts"]:
    assert not glob.glob(os.path.join(host["dir"], "**", "*.docs"),
                         recursive=True)
  assert not [k for k in keys if "_pools" in k]
  left = client.list_objects_v2(Bucket="data", Prefix="output/run-1/_pools")
  assert not left.get("Contents")


def _rest(cluster, path):
  return local_flink.rest(path, cluster["rest_port"], host=cluster["address"])


def _fault_job(cluster, s3_url, tmp_path, bucket, output):
  """A corpus on S3 and the clean examples of it (the DirectRunner's);
  returns (the cluster job's flags, the clean digest, the S3 client)."""
  client = boto3.client("s3", endpoint_url=s3_url, region_name="us-east-1")
  client.create_bucket(Bucket=bucket)
  paths = write_lines_corpus(str(tmp_path / "corpus"), num_files=4,
                             docs_per_file=600, seed=9)
  for path in paths:
    client.upload_file(path, bucket, "corpus/" + os.path.basename(path))
  client.upload_file(VOCAB, bucket, "vocab/vocab.txt")
  direct_out = str(tmp_path / "direct")
  run_cli(["--input=" + ",".join(paths), "--output=" + direct_out,
           "--dupe_factor=3"])
  args = cluster_job_args(bucket, output, cluster["job_endpoint"], 2,
                          "us-east-1") + [
                              "--vocab_file=s3://%s/vocab/vocab.txt" % bucket,
                              "--dupe_factor=3", "--s3_endpoint_url=" + s3_url]
  with open(os.path.join(direct_out, "summary.json")) as f:
    counts = json.load(f)["counts"]
  return args, (digest(read_examples(direct_out)), counts), client


def _kill_host_mid_job(cluster, args, log_path, job_name, then=None,
                       taskmanagers=(1,)):
  """Starts the job; once TaskManager 1's worker pool runs a Python worker
  for it (a worker of an earlier job may still be there: TaskManagers keep
  them a while, runners/flink.py), freezes the hosts' TaskManagers
  (SIGSTOP), checks the job is running, and kills each host's TaskManager
  and worker pool (their process groups), as a crashed instance loses them;
  then calls ``then()``. Returns the CLI's exit status and output."""
  # The processes now (an earlier test may have restarted the host).
  roles = {p["role"]: p["pid"] for p in local_flink.read_state()["processes"]}
  host = [psutil.Process(roles["%s-%d" % (role, i)])
          for i in taskmanagers for role in ("taskmanager", "worker-pool")]
  pool = psutil.Process(roles["worker-pool-1"])
  earlier = {c.pid for c in pool.children(recursive=True)}
  with open(log_path, "w") as log:
    proc = subprocess.Popen([sys.executable, "-m", "pipelines.mlm"] + args,
                            cwd=REPO, stdout=log, stderr=subprocess.STDOUT,
                            env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"),
                            start_new_session=True)
  try:
    deadline = time.time() + 300
    while not {c.pid for c in pool.children(recursive=True)} - earlier:
      assert proc.poll() is None and time.time() < deadline, open(
          log_path).read()[-3000:]
      time.sleep(0.05)
    for p in host[::2]:
      p.suspend()
    jobs = _rest(cluster, "/jobs/overview")["jobs"]
    assert [j["state"] for j in jobs if j["name"] == job_name] == [
        "RUNNING"]
    for p in host:
      os.killpg(p.pid, signal.SIGKILL)
    if then:
      then()
    proc.wait(timeout=600)
  finally:
    if proc.poll() is None:
      os.killpg(proc.pid, signal.SIGKILL)
      proc.wait()
      for job in _rest(cluster, "/jobs/overview")["jobs"]:  # nor running
        if job["name"] == job_name and job["state"] not in (
            "FINISHED", "FAILED", "CANCELED"):
          local_flink.rest("/jobs/%s?mode=cancel" % job["jid"],
                           cluster["rest_port"], method="PATCH",
                           host=cluster["address"])
    for p in host:  # never left frozen
      if p.is_running() and p.status() == psutil.STATUS_STOPPED:
        os.killpg(p.pid, signal.SIGKILL)
  return proc.returncode, open(log_path).read()


def test_a_taskmanager_host_that_dies_and_comes_back_is_survived(
    hosts_cluster, s3_url, tmp_path):
  """A TaskManager host killed mid-job and started again (as systemd does
  on EC2): Flink restarts the stages that ran there (blocking exchanges,
  region failover), the job finishes, and its examples are exactly the
  clean run's, none lost and none twice; nothing temporary is left.
  ``MLM_HOST_LOSS_TRIES=10`` runs it ten times on the one cluster."""
  args, expected, client = _fault_job(hosts_cluster, s3_url, tmp_path,
                                      "comeback", "run-2")
  tries = int(os.environ.get("MLM_HOST_LOSS_TRIES", "1"))
  try:
    for i in range(tries):
      out = "run-2" if i == 0 else "run-2-%d" % i
      _survive_host_loss(hosts_cluster, client,
                         [a.replace("output/run-2", "output/" + out)
                          for a in args], expected, tmp_path / out, out)
  finally:
    _restart_dead_taskmanagers()


def _survive_host_loss(hosts_cluster, client, args, expected, tmp_path, out):
  tmp_path.mkdir()
  rc, output = _kill_host_mid_job(
      hosts_cluster, args, str(tmp_path / "job.log"), "mlm-pipeline-" + out,
      then=lambda: local_flink.restart_taskmanager(1))
  assert rc == 0, output[-3000:]
  jobs = [j for j in _rest(hosts_cluster, "/jobs/overview")["jobs"]
          if j["name"] == "mlm-pipeline-" + out]
  assert [j["state"] for j in jobs] == ["FINISHED"], jobs
  jid = jobs[0]["jid"]
  # The loss happened and was recovered from, stage by stage.
  config = _rest(hosts_cluster, "/jobs/%s/config" % jid)
  assert config["execution-config"]["execution-mode"] == "BATCH_FORCED"
  history = _rest(hosts_cluster, "/jobs/%s/exceptions" % jid)[
      "exceptionHistory"]["entries"]
  assert history, "Flink saw no failure: the kill came too late"
  keys = download_prefix(client, "comeback", "output/%s/" % out,
                         str(tmp_path / "out"))
  assert "output/%s/summary.json" % out in keys
  assert not [k for k in keys if "_pools" in k or "_INCOMPLETE" in k
              or "beam-temp" in k]
  assert digest(read_examples(str(tmp_path / "out"))) == expected[0]
  # The counts of the attempts Flink restarted are not added in.
  with open(str(tmp_path / "out" / "summary.json")) as f:
    counts = json.load(f)["counts"]
  for name in ("documents", "documents_read", "instances", "masked_tokens",
               "tokens"):
    assert counts[name] == expected[1][name], name
  # Both hosts worked (the restarted TaskManager has an id of its own).
  assert len(_taskmanagers_that_worked(hosts_cluster, jid)) >= 2


def test_a_taskmanager_host_that_stays_away_leaves_the_job_to_the_others(
    hosts_cluster, s3_url, tmp_path):
  """A host that does not come back: each restarted stage needs only the
  slots of its own parallel instances (blocking exchanges make every one a
  region of its own), so the job finishes on the hosts left, with the clean
  run's examples."""
  args, expected, client = _fault_job(hosts_cluster, s3_url, tmp_path,
                                      "away", "run-3")
  try:
    rc, output = _kill_host_mid_job(hosts_cluster, args,
                                    str(tmp_path / "job.log"),
                                    "mlm-pipeline-run-3")
    assert rc == 0, output[-3000:]
    keys = download_prefix(client, "away", "output/run-3/",
                           str(tmp_path / "out"))
    assert "output/run-3/summary.json" in keys
    assert digest(read_examples(str(tmp_path / "out"))) == expected[0]
  finally:
    _restart_dead_taskmanagers()


def test_every_taskmanager_host_lost_fails_the_job_clearly(
    hosts_cluster, s3_url, tmp_path):
  """No TaskManager left and none back within the restarts (here 10, each
  waiting 10 s for slots): the job fails, the CLI prints one error line and
  leaves no summary.json; once the hosts are back the same command cleans
  up and gives the clean examples."""
  args, expected, client = _fault_job(hosts_cluster, s3_url, tmp_path,
                                      "fault", "run-4")
  try:
    rc, output = _kill_host_mid_job(hosts_cluster, args,
                                    str(tmp_path / "job.log"),
                                    "mlm-pipeline-run-4", taskmanagers=(0, 1))
    assert rc == 1, output[-3000:]
    errors = [l for l in output.splitlines() if l.startswith("error:")]
    assert len(errors) == 1 and "the pipeline failed" in errors[0], (
        output[-3000:])
    keys = [o["Key"] for o in client.list_objects_v2(
        Bucket="fault", Prefix="output/run-4/").get("Contents", [])]
    assert "output/run-4/summary.json" not in keys
    assert "output/run-4/_INCOMPLETE" in keys
  finally:
    _restart_dead_taskmanagers()
  run_cli(args)
  keys = download_prefix(client, "fault", "output/run-4/",
                         str(tmp_path / "rerun"))
  assert "output/run-4/summary.json" in keys
  assert not [k for k in keys if "_pools" in k or "_INCOMPLETE" in k]
  assert digest(read_examples(str(tmp_path / "rerun"))) == expected[0]


def _restart_dead_taskmanagers():
  # pylint: disable=protected-access
  state = local_flink.read_state()
  dead = [i for i in range(state["taskmanagers"])
          if not all(local_flink._alive(p["pid"]) for p in state["processes"]
                     if p["role"] in ("taskmanager-%d" % i,
                                      "worker-pool-%d" % i))]
  if dead:
    local_flink.restart_taskmanagers(dead)
