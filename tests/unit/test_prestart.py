"""Worker processes started with the launcher (runners/prestart.py)."""

import io
import logging
import os
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
    started = time.monotonic()
    prestart.discard()
  # It read end-of-file (once its imports were done) and exited 0.
  assert time.monotonic() - started < 10
  assert not any(prestart.PRESTART_FLAG in c for c in _children_cmdlines())
  assert prestart.take() is None


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
    taken.stdin.close()  # as discard() does
    assert taken.wait(timeout=30) == 0
  finally:
    prestart.discard()


def test_a_waiting_worker_ends_with_its_launcher(tmp_path):
  """The launcher killed (SIGKILL) while its worker waits: the worker ends
  too (PR_SET_PDEATHSIG, and end-of-file on its pipe)."""
  pid_file = tmp_path / "pid"
  launcher = subprocess.Popen(
      [sys.executable, "-c",
       "import sys, time\n"
       "from runners import prestart\n"
       "prestart.start(1)\n"
       "open(sys.argv[1], 'w').write(str(prestart._waiting[0].pid))\n"
       "time.sleep(600)\n", str(pid_file)], cwd=REPO)
  try:
    deadline = time.monotonic() + 30
    while not pid_file.exists() or not pid_file.read_text():
      assert time.monotonic() < deadline, "the launcher started no worker"
      time.sleep(0.05)
    worker = psutil.Process(int(pid_file.read_text()))
    assert prestart.PRESTART_FLAG in worker.cmdline()
  finally:
    launcher.kill()
    launcher.wait()
  worker.wait(timeout=30)
  assert not psutil.pid_exists(worker.pid) or (
      worker.status() == psutil.STATUS_ZOMBIE)
