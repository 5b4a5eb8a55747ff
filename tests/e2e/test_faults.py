"""Faults: a run killed half way, a worker process killed mid-run. Nothing
that looks complete is left behind, the next run cleans up, and the examples
in the end are exactly those of an undisturbed run."""

import glob
import os
import signal
import subprocess
import sys
import time

import psutil
import pytest

from runners import direct
from tests.helpers import REPO, digest, read_examples, run_cli, write_lines_corpus


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
  directory = str(tmp_path_factory.mktemp("faultcorpus"))
  # About 3 MB: the job runs for several seconds, long enough to be killed
  # in the middle.
  return write_lines_corpus(directory, num_files=4, docs_per_file=3500, seed=11)


ARGS = ["--dupe_factor=3", "--random_next_pool_size=500"]


@pytest.fixture(scope="module")
def clean_digest(corpus, tmp_path_factory):
  out = str(tmp_path_factory.mktemp("clean") / "out")
  run_cli(["--input=" + ",".join(corpus), "--output=" + out] + ARGS)
  return digest(read_examples(out))


def _start(args, log_path):
  """Starts the CLI in a process group of its own; its output goes to
  ``log_path`` (a pipe nobody reads while the test waits could fill up and
  stall the job)."""
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
  with open(log_path, "w") as log:
    return subprocess.Popen([sys.executable, "-m", "pipelines.mlm"] + args,
                            cwd=REPO, env=env, stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True)


def _wait_for(predicate, timeout=60, interval=0.05):
  deadline = time.time() + timeout
  while time.time() < deadline:
    if predicate():
      return True
    time.sleep(interval)
  return False


def _group_alive(pgid):
  """Processes still in process group ``pgid``."""
  alive = []
  for p in psutil.process_iter(["pid"]):
    try:
      if os.getpgid(p.pid) == pgid and p.status() != psutil.STATUS_ZOMBIE:
        alive.append(p)
    except (psutil.Error, ProcessLookupError):
      pass
  return alive


def _stop_group(proc):
  """Kills what is left of the job's process group and reaps the driver."""
  try:
    os.killpg(proc.pid, signal.SIGKILL)
  except ProcessLookupError:
    pass
  proc.wait()


def test_killed_run_leaves_nothing_complete_and_rerun_cleans_up(
    corpus, clean_digest, tmp_path):
  out = str(tmp_path / "out")
  proc = _start(["--input=" + ",".join(corpus), "--output=" + out] + ARGS,
                str(tmp_path / "log"))
  try:
    # Well into the job: some pool groups' shards written, not all. The
    # whole job is frozen there (SIGSTOP), checked to be still running,
    # then killed: no timing decides where it stops.
    assert _wait_for(lambda: len(glob.glob(os.path.join(
        out, "_pools", "*", "shards", "*.json"))) >= 3, interval=0.002)
    os.killpg(proc.pid, signal.SIGSTOP)
    assert proc.poll() is None, "the job ended before it could be killed"
    assert "summary.json" not in os.listdir(out)
  finally:
    _stop_group(proc)
  left = os.listdir(out)
  assert "summary.json" not in left and "_INCOMPLETE" in left
  # The next run, without --overwrite, recognises the interrupted run.
  run_cli(["--input=" + ",".join(corpus), "--output=" + out] + ARGS)
  assert "_INCOMPLETE" not in os.listdir(out)
  assert "_pools" not in os.listdir(out)  # the killed run's pool files too
  assert digest(read_examples(out)) == clean_digest


# When a worker is killed: as soon as it starts (before it has its job: the
# launcher replaces it, with a warning), while it reads an input file (a
# bundle of the first stage), while it writes an output shard (a bundle of
# the last stage).
KILL_MOMENTS = ("starting", "reading", "writing")


@pytest.mark.parametrize("moment", KILL_MOMENTS)
def test_killed_worker_process_fails_clearly(corpus, clean_digest, tmp_path,
                                             moment):
  """A worker killed in the middle of the job fails it within seconds with
  one error line: no hang, no summary.json, nothing left running, and a
  rerun gives the clean examples. One killed before it has its job is
  replaced, and the job completes.

  Deterministic: the worker is frozen (SIGSTOP) at the moment named, the
  moment is checked again on the frozen process, then it is killed."""
  out = str(tmp_path / "out")
  proc = _start(["--input=" + ",".join(corpus), "--output=" + out,
                 "--direct_num_workers=2",
                 "--direct_running_mode=multi_processing"] + ARGS,
                str(tmp_path / "log"))
  try:
    parent = psutil.Process(proc.pid)
    inputs = {os.path.realpath(p) for p in corpus}

    def at_moment(p):
      files = {os.path.realpath(f.path) for f in p.open_files()}
      if moment == "reading":
        return bool(inputs & files)
      if moment == "writing":
        return any(f.startswith(os.path.realpath(out) + os.sep)
                   and os.sep + "_pools" + os.sep not in f
                   and not f.endswith("_INCOMPLETE") for f in files)
      # Starting: started with the launcher, and not connected to it yet.
      return ("--prestarted" in p.cmdline()
              and not any(c.status == psutil.CONN_ESTABLISHED
                          for c in p.net_connections()))

    def freeze_worker_at_moment():
      """A worker frozen at the moment, or None (none is there yet)."""
      try:
        for p in parent.children(recursive=True):
          if ("-m " + direct.WORKER_MODULE in " ".join(p.cmdline())
              and at_moment(p)):
            p.suspend()
            if at_moment(p):  # still there once frozen
              return p
            p.resume()
      except psutil.Error:
        pass
      return None

    frozen = []
    assert _wait_for(lambda: frozen.append(freeze_worker_at_moment())
                     or frozen[-1] is not None, timeout=120, interval=0.01), (
                         "no worker was seen %s" % moment)
    victim = frozen[-1]
    assert proc.poll() is None
    victim.kill()
    killed_at = time.time()
    try:
      proc.wait(timeout=120)
    except subprocess.TimeoutExpired:
      os.kill(proc.pid, signal.SIGUSR1)  # the driver prints its stacks
      time.sleep(2)
      with open(str(tmp_path / "log")) as f:
        raise AssertionError("the job did not end after its worker was "
                             "killed:\n" + f.read()[-12000:]) from None
    took = time.time() - killed_at
    with open(str(tmp_path / "log")) as f:
      stderr = f.read()
    if moment == "starting":
      # The worker seen first is the one the launcher started as it began
      # (runners/prestart.py), killed long before the launcher is ready to
      # hand it its job: the launcher says so, starts another in its place,
      # and the job is whole.
      assert "in its place" in stderr, stderr[-3000:]
      assert proc.returncode == 0, stderr[-3000:]
      assert "summary.json" in os.listdir(out)
      assert digest(read_examples(out)) == clean_digest
      assert _wait_for(lambda: not _group_alive(proc.pid), timeout=10)
      return
    assert proc.returncode == 1, stderr[-3000:]
    errors = [l for l in stderr.splitlines() if l.startswith("error:")]
    assert len(errors) == 1, stderr[-3000:]
    assert "the pipeline failed" in errors[0], errors[0]
    assert "worker process" in errors[0], errors[0]
    assert "summary.json" not in os.listdir(out)
    assert "_INCOMPLETE" in os.listdir(out)
    assert "_pools" in os.listdir(out)  # kept for --resume
    # Nothing of the job outlives it: the surviving worker was stopped.
    assert _wait_for(lambda: not _group_alive(proc.pid), timeout=10), (
        _group_alive(proc.pid))
    print("job failed %.1f s after the worker was killed" % took)
  finally:
    _stop_group(proc)
  run_cli(["--input=" + ",".join(corpus), "--output=" + out] + ARGS)
  assert digest(read_examples(out)) == clean_digest
