"""Worker processes started with the launcher (runners/prestart.py)."""

import io
import logging
import os
import signal
import subprocess
import sys
import time

import psutil
import pytest

from runners import prestart
from tests.helpers import REPO

pytestmark = pytest.mark.unit


@pytest.mark.parametrize("argv, processes", [
    ([], 0),
    (["--direct_num_workers=1"], 0),
    (["--direct_num_workers=2"], 1),
    (["--direct_num_workers", "4", "--input=x"], 3),
    (["--direct_num_workers=0"], 0),  # Beam's "as many as cores": left to it
    (["--direct_num_workers=two"], 0),  # Beam's parser reports it
    (["--direct_num_workers=2", "--runner=DirectRunner"], 1),
    (["--direct_num_workers=2", "--runner=FlinkRunner"], 0),
    (["--direct_num_workers=2", "--flink_master=host:8081"], 0),
    (["--direct_num_workers=2", "--direct_running_mode=in_memory"], 0),
    (["--direct_num_workers=3",
      "--direct_running_mode=multi_processing"], 2),
    (["--direct_num_workers=2", "--help"], 0),
])
def test_wanted_processes_follow_the_runner_presets(argv, processes):
  assert prestart.wanted_processes(argv) == processes


def test_wait_for_job_reads_one_environment_or_end_of_file():
  env = {"WORKER_ID": "worker_1", "PIPELINE_OPTIONS": '{"a": "é"}'}
  written = []

  class Pipe(io.BytesIO):

    def close(self):
      written.append(self.getvalue())
      super().close()

  process = type("P", (), {"stdin": Pipe()})()
  prestart.hand_over(process, env)
  assert process.stdin.closed
  assert prestart.wait_for_job(io.BytesIO(written[0])) == env
  assert prestart.wait_for_job(io.BytesIO(b"")) is None


def _children_cmdlines():
  return [" ".join(p.cmdline()) for p in psutil.Process().children()
          if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]


def test_a_waiting_worker_ends_when_discarded(monkeypatch):
  monkeypatch.chdir(REPO)
  prestart.start(1)
  try:
    assert any(prestart.PRESTART_FLAG in c for c in _children_cmdlines())
  finally:
    prestart.discard()  # kills and reaps it
  assert not any(prestart.PRESTART_FLAG in c for c in _children_cmdlines())
  assert prestart.take() is None


def test_an_unused_worker_reads_end_of_file_and_exits(monkeypatch):
  monkeypatch.chdir(REPO)
  prestart.start(1)
  try:
    process = prestart.take()
    process.stdin.close()  # the launcher ended without handing over
    assert process.wait(timeout=60) == 0
  finally:
    prestart.discard()


def test_a_worker_that_died_waiting_is_skipped_with_a_warning(monkeypatch,
                                                              caplog):
  monkeypatch.chdir(REPO)
  prestart.start(2)
  try:
    first = prestart._waiting[0]  # pylint: disable=protected-access
    first.kill()
    first.wait()
    with caplog.at_level(logging.WARNING):
      taken = prestart.take()
    assert taken is not None and taken.pid != first.pid
    assert taken.poll() is None
    assert "%d ended" % first.pid in caplog.text
    assert "in its place" in caplog.text
    taken.kill()
    taken.wait()
  finally:
    prestart.discard()


def test_workers_start_with_sigint_ignored(monkeypatch):
  """As Beam's worker command line has it (``trap '' INT``): a Ctrl-C in
  the worker's first instants leaves no traceback. The launcher's own
  handler is back afterwards."""
  monkeypatch.chdir(REPO)
  before = signal.getsignal(signal.SIGINT)
  prestart.start(1)
  try:
    assert signal.getsignal(signal.SIGINT) is before
    pid = prestart._waiting[0].pid  # pylint: disable=protected-access
    with open("/proc/%d/status" % pid) as f:
      ignored = next(int(line.split()[1], 16) for line in f
                     if line.startswith("SigIgn:"))
    assert ignored & (1 << (signal.SIGINT - 1))
  finally:
    prestart.discard()


def test_apply_environment_drops_what_the_launcher_removed(monkeypatch):
  monkeypatch.setenv("MLM_TEST_KEPT", "old")
  monkeypatch.setenv("MLM_TEST_REMOVED", "x")
  monkeypatch.setenv("MLM_TEST_SET_ON_IMPORT", "y")
  started_with = {"MLM_TEST_KEPT": "old", "MLM_TEST_REMOVED": "x"}
  prestart.apply_environment({"MLM_TEST_KEPT": "new", "WORKER_ID": "w1"},
                             started_with)
  assert os.environ["MLM_TEST_KEPT"] == "new"
  assert os.environ["WORKER_ID"] == "w1"
  assert "MLM_TEST_REMOVED" not in os.environ
  assert os.environ["MLM_TEST_SET_ON_IMPORT"] == "y"
  monkeypatch.delenv("WORKER_ID")


def test_a_waiting_worker_ends_with_its_launcher(tmp_path):
  """The launcher killed (SIGKILL) while its worker waits: the worker ends
  too, by PR_SET_PDEATHSIG alone: a sleeping process of the launcher's
  holds the write end of the worker's pipe, so no end-of-file comes."""
  pids = tmp_path / "pids"
  launcher = subprocess.Popen(
      [sys.executable, "-c",
       "import subprocess, sys, time\n"
       "from runners import prestart\n"
       "prestart.start(1)\n"
       "worker = prestart._waiting[0]\n"
       "holder = subprocess.Popen(['sleep', '600'],\n"
       "                          pass_fds=[worker.stdin.fileno()])\n"
       "open(sys.argv[1], 'w').write('%d %d' % (worker.pid, holder.pid))\n"
       "time.sleep(600)\n", str(pids)], cwd=REPO)
  holder = None
  try:
    deadline = time.monotonic() + 60
    while not pids.exists() or len(pids.read_text().split()) < 2:
      assert time.monotonic() < deadline, "the launcher started no worker"
      time.sleep(0.05)
    worker_pid, holder_pid = (int(p) for p in pids.read_text().split())
    worker, holder = psutil.Process(worker_pid), psutil.Process(holder_pid)
    assert prestart.PRESTART_FLAG in worker.cmdline()
    # Its first lines ask for the signal; 0.2 CPU s in, it imports Beam.
    while sum(worker.cpu_times()[:2]) < 0.2:
      assert time.monotonic() < deadline, "the worker did not start"
      time.sleep(0.02)
    launcher.kill()
    launcher.wait()
    worker.wait(timeout=30)
    assert not worker.is_running() or (
        worker.status() == psutil.STATUS_ZOMBIE)
    assert holder.is_running()  # the pipe stayed open all along
  finally:
    if launcher.poll() is None:
      launcher.kill()
      launcher.wait()
    if holder is not None and holder.is_running():
      holder.kill()
