"""The local Flink cluster tooling and real Flink jobs (the presets and the
configuration, without a cluster: tests/unit/test_flink.py and
test_flink_node.py).

``runners.local_flink`` starts a real Flink 1.19 standalone cluster (a
JobManager and a TaskManager as separate processes), Beam's Python worker
pool and Beam's Flink job server. The job is submitted to the job server,
Flink schedules it on the TaskManager, and its Python work runs in the
worker pool (the EXTERNAL environment), as on the EC2 cluster.
"""

import glob
import json
import os
import signal
import socket
import time

import pytest

from pipelines import resume
from runners import flink_node, local_flink
from tests.helpers import (REPO, digest, free_port, local_cluster,
                           read_examples, run_cli, stop_cli_when,
                           write_lines_corpus)

pytestmark = pytest.mark.flink


@pytest.fixture(scope="module")
def cluster():
  with local_cluster(taskmanagers=1, slots=2, taskmanager_memory="2g",
                     rest_port=free_port(), job_port=free_port(free_below=2)) as state:
    yield state


def _port_open(port):
  with socket.socket() as s:
    s.settimeout(0.5)
    return s.connect_ex(("localhost", port)) == 0


def _alive(pid):
  try:
    os.kill(pid, 0)
    return True
  except OSError:
    return False


def test_cluster_processes_and_rest_api(cluster):
  roles = {p["role"]: p["pid"] for p in cluster["processes"]}
  assert set(roles) == {"jobmanager", "taskmanager-0", "worker-pool",
                        "job-server"}
  assert len(set(roles.values())) == 4 and all(map(_alive, roles.values()))
  overview = local_flink.rest("/overview", cluster["rest_port"])
  assert overview["taskmanagers"] == 1 and overview["slots-total"] == 2
  assert overview["flink-version"] == flink_node.FLINK_VERSION
  assert _port_open(local_flink.WORKER_POOL_PORT)


def _vertex_names(cluster, job_name):
  jobs = local_flink.rest("/jobs/overview", cluster["rest_port"])["jobs"]
  ours = [j for j in jobs if j["name"] == job_name]
  assert len(ours) == 1 and ours[0]["state"] == "FINISHED", jobs
  job = local_flink.rest("/jobs/" + ours[0]["jid"], cluster["rest_port"])
  return [v["name"] for v in job["vertices"]]


def test_flink_runs_the_job_with_the_same_examples(cluster, tmp_path):
  corpus = write_lines_corpus(str(tmp_path / "corpus"), num_files=2,
                              docs_per_file=15, seed=5)
  direct_out = str(tmp_path / "direct")
  run_cli(["--input=" + ",".join(corpus), "--output=" + direct_out,
           "--dupe_factor=2"])
  expected = digest(read_examples(direct_out))
  # Relative paths, as a user types them: the workers run elsewhere, so the
  # job makes them absolute (the ids, relative to the input root, agree).
  relative = [os.path.relpath(p, REPO) for p in corpus]
  flink = ["--input=" + ",".join(relative), "--dupe_factor=2",
           "--runner=PortableRunner",
           "--job_endpoint=" + cluster["job_endpoint"],
           "--parallelism=2"]
  # The output is local, so the workers share this filesystem: the pools go
  # through files in OUTPUT/_pools (removed after the run), as on the
  # DirectRunner.
  files_out = str(tmp_path / "on_flink")
  tmp = tmp_path / "tmp"
  tmp.mkdir()
  proc = run_cli(flink + ["--output=" + files_out, "--progress_seconds=1",
                          "--flink_master=localhost:%d"
                          % cluster["rest_port"]], env={"TMPDIR": str(tmp)})
  assert digest(read_examples(files_out)) == expected
  # Nothing of the submission is left in the temporary directory (Beam's
  # submission_environment_dependencies.txt folder was).
  assert os.listdir(tmp) == []
  # Live progress from Flink's REST API: the job's id and UI address once
  # it is found, then progress lines with its stages.
  jobs = local_flink.rest("/jobs/overview", cluster["rest_port"])["jobs"]
  [job] = [j for j in jobs if j["name"] == "mlm-pipeline-on-flink"]
  assert ("Flink job %s: http://localhost:%d/#/job/running/%s/overview"
          % (job["jid"], cluster["rest_port"], job["jid"])) in proc.stderr
  shown = [l for l in proc.stderr.splitlines() if l.startswith("progress: ")
           and " stages done" in l]
  assert shown, proc.stderr[-3000:]
  assert proc.stderr.splitlines()[-1].startswith("done: ")
  # Flink ran it: the JobManager lists the job, finished, under its name.
  names = _vertex_names(cluster, "mlm-pipeline-on-flink")
  assert any("PoolFiles" in n for n in names), names
  assert not os.path.exists(os.path.join(files_out, "_pools"))
  # Only file names leave the stage that masks and writes the examples: no
  # stage of their writing starts at a side input (transforms/examples.py).
  # (The records set aside are written the same way, from the stages that
  # set them aside.)
  assert not any(("WriteBundles" in n or "WriteGroups" in n)
                 and "WriteRejected" not in n for n in names), names
  # Through Flink's GroupByKey: the same examples.
  gbk_out = str(tmp_path / "on_flink_gbk")
  run_cli(flink + ["--output=" + gbk_out, "--pool_shuffle=groupbykey"])
  assert digest(read_examples(gbk_out)) == expected
  names = _vertex_names(cluster, "mlm-pipeline-on-flink-gbk")
  assert any("GroupPools" in n for n in names), names


@pytest.mark.parametrize("flags", [
    ["--output_format=megatron"],
    ["--preset=modernbert", "--mds_shard_bytes=4096"],
], ids=["megatron", "mds"])
def test_flink_writes_the_same_trainer_dataset(cluster, flags, tmp_path):
  """--output_format=megatron and mds on Flink, two slots: every byte of
  the .bin/.idx pair, or of the MDS shards and index.json, as the
  DirectRunner writes them (their trainers' own readers read those:
  tests/e2e/test_megatron.py, test_mds.py)."""
  corpus = write_lines_corpus(str(tmp_path / "corpus"), num_files=2,
                              docs_per_file=15, seed=6)
  common = ["--input=" + ",".join(corpus)] + flags
  direct_out = str(tmp_path / "direct")
  run_cli(common + ["--output=" + direct_out])
  flink_out = str(tmp_path / "on_flink")
  run_cli(common + ["--output=" + flink_out, "--runner=PortableRunner",
                    "--job_endpoint=" + cluster["job_endpoint"],
                    "--parallelism=2"])
  names = sorted(n for n in os.listdir(direct_out) if n != "summary.json")
  assert len(names) >= 2, names
  assert sorted(n for n in os.listdir(flink_out)
                if n != "summary.json") == names
  for name in names:
    with open(os.path.join(direct_out, name), "rb") as a, \
        open(os.path.join(flink_out, name), "rb") as b:
      assert a.read() == b.read(), name
  assert not os.path.exists(os.path.join(flink_out, "_pools"))


def test_ctrl_c_on_the_launcher_cancels_the_flink_job(cluster, tmp_path):
  """The launcher's Ctrl-C ends the job on the cluster too, not only the
  launcher: Flink lists it CANCELED."""
  corpus = write_lines_corpus(str(tmp_path / "corpus"), num_files=2,
                              docs_per_file=200, seed=6)
  out = str(tmp_path / "cancelled")
  name = "mlm-pipeline-cancelled"
  args = ["--input=" + ",".join(corpus), "--output=" + out,
          "--dupe_factor=5", "--runner=PortableRunner",
          "--job_endpoint=" + cluster["job_endpoint"], "--parallelism=2",
          "--flink_master=localhost:%d" % cluster["rest_port"], "--quiet"]

  def job(states):
    jobs = local_flink.rest("/jobs/overview", cluster["rest_port"])["jobs"]
    return [j for j in jobs if j["name"] == name and j["state"] in states]

  run = stop_cli_when(args, lambda: job({"RUNNING"}), signal.SIGINT,
                      str(tmp_path / "log"), timeout=180, poll=0.2,
                      end_within=10)
  assert run.stopped, run.output or "no job"
  assert run.returncode == 130, run.output
  assert "interrupted by SIGINT" in run.output
  deadline = time.monotonic() + 60
  while not job({"CANCELED"}):
    assert time.monotonic() < deadline, local_flink.rest(
        "/jobs/overview", cluster["rest_port"])
    time.sleep(0.5)
  assert "_INCOMPLETE" in os.listdir(out)


def _no_running_job(cluster):
  jobs = local_flink.rest("/jobs/overview", cluster["rest_port"])["jobs"]
  return not [j for j in jobs if j["state"] not in
              ("FINISHED", "CANCELED", "FAILED")]


@pytest.mark.parametrize("point", ["spilled", "shards"])
def test_a_stopped_flink_job_resumes_to_the_clean_examples(cluster, point,
                                                           tmp_path):
  """Stopped (SIGTERM: the launcher cancels its Flink job) once the spilled
  stage is done, or once some shards are written, then resumed on Flink:
  the examples and counts of an uninterrupted DirectRunner run."""
  corpus = write_lines_corpus(str(tmp_path / "corpus"), num_files=4,
                              docs_per_file=3500, seed=11)
  common = ["--input=" + ",".join(corpus), "--dupe_factor=3",
            "--random_next_pool_size=500", "--quiet"]
  direct_out = str(tmp_path / "direct")
  run_cli(common + ["--output=" + direct_out])
  with open(os.path.join(direct_out, "summary.json")) as f:
    expected = json.load(f)["counts"]
  out = str(tmp_path / "on_flink")
  args = common + ["--output=" + out, "--runner=PortableRunner",
                   "--job_endpoint=" + cluster["job_endpoint"],
                   "--parallelism=2",
                   "--flink_master=localhost:%d" % cluster["rest_port"]]

  def reached():
    found = glob.glob(os.path.join(out, "_pools", "mlm-pools-*"))
    if not found:
      return False
    if point == "spilled":
      return os.path.exists(os.path.join(found[0], "spilled.json"))
    return len(glob.glob(os.path.join(found[0], resume.SHARDS_DIR,
                                      "*.json"))) >= 3

  assert stop_cli_when(args, reached, signal.SIGTERM,
                       str(tmp_path / "log")).interrupted
  assert "_INCOMPLETE" in os.listdir(out)
  deadline = time.time() + 60
  while not _no_running_job(cluster) and time.time() < deadline:
    time.sleep(0.5)
  assert _no_running_job(cluster)
  proc = run_cli(args + ["--resume"])
  assert "resume: reusing the spilled stage" in proc.stderr, proc.stderr
  assert digest(read_examples(out)) == digest(read_examples(direct_out))
  with open(os.path.join(out, "summary.json")) as f:
    summary = json.load(f)
  assert summary["counts"] == expected
  if point == "shards":
    assert summary["resumed"]["shards_reused"] >= 3, summary["resumed"]
  print("Flink, stopped at %s: %s" % (point, summary["resumed"]))
