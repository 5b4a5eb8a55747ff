"""Faults: a run killed half way, a worker process killed mid-run. Nothing
that looks complete is left behind, the next run cleans up, and the examples
in the end are exactly those of an undisturbed run."""

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


def _start(args):
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
  return subprocess.Popen([sys.executable, "-m", "pipelines.mlm"] + args,
                          cwd=REPO, env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True,
                          start_new_session=True)


def _wait_for(predicate, timeout=60):
  deadline = time.time() + timeout
  while time.time() < deadline:
    if predicate():
      return True
    time.sleep(0.05)
  return False


def test_killed_run_leaves_nothing_complete_and_rerun_cleans_up(
    corpus, clean_digest, tmp_path):
  out = str(tmp_path / "out")
  proc = _start(["--input=" + ",".join(corpus), "--output=" + out] + ARGS)
  assert _wait_for(lambda: os.path.exists(os.path.join(out, "_INCOMPLETE")))
  time.sleep(1.2)  # well into the job
  assert proc.poll() is None, "the job ended before it could be killed"
  os.killpg(proc.pid, signal.SIGKILL)
  proc.wait()
  left = os.listdir(out)
  assert "summary.json" not in left and "_INCOMPLETE" in left
  # The next run, without --overwrite, recognises the interrupted run.
  run_cli(["--input=" + ",".join(corpus), "--output=" + out] + ARGS)
  assert "_INCOMPLETE" not in os.listdir(out)
  assert "_pools" not in os.listdir(out)  # the killed run's pool files too
  assert digest(read_examples(out)) == clean_digest


def test_killed_worker_process_fails_clearly_or_recovers(corpus, clean_digest,
                                                         tmp_path):
  out = str(tmp_path / "out")
  proc = _start(["--input=" + ",".join(corpus), "--output=" + out,
                 "--direct_num_workers=2",
                 "--direct_running_mode=multi_processing"] + ARGS)
  parent = psutil.Process(proc.pid)

  def workers():
    try:
      return [p for p in parent.children(recursive=True)
              if "-m " + direct.WORKER_MODULE in " ".join(p.cmdline())]
    except psutil.Error:
      return []

  assert _wait_for(lambda: len(workers()) >= 2)
  time.sleep(1.5)
  victims = workers()
  assert victims, "the job ended before a worker could be killed"
  victims[-1].kill()
  stdout, stderr = proc.communicate(timeout=300)
  if proc.returncode == 0:
    # Recovered: then every example is there, once.
    assert digest(read_examples(out)) == clean_digest
  else:
    assert proc.returncode == 1
    last = [l for l in stderr.splitlines() if l.startswith("error:")]
    assert len(last) == 1 and "the pipeline failed" in last[0], stderr[-3000:]
    assert "summary.json" not in os.listdir(out)
    assert "_pools" not in os.listdir(out)  # removed by the failed run
    run_cli(["--input=" + ",".join(corpus), "--output=" + out] + ARGS)
    assert digest(read_examples(out)) == clean_digest
