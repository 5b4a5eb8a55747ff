"""pipelines/interrupts.py: a process's descendants found, and stopped with
the grace they are given (the CLI interrupted: tests/e2e/test_interrupts.py)."""

import os
import subprocess
import sys
import threading
import time

from pipelines import interrupts


def test_descendants_and_stop_processes_unit():
  child = subprocess.Popen(
      [sys.executable, "-c",
       "import subprocess, sys, time\n"
       "subprocess.Popen([sys.executable, '-c', 'import time; "
       "time.sleep(600)'])\n"
       "print('ready', flush=True); time.sleep(600)"],
      stdout=subprocess.PIPE, text=True)
  try:
    assert child.stdout.readline().strip() == "ready"
    found = interrupts.descendants(os.getpid())
    assert child.pid in found and len(interrupts.descendants(child.pid)) == 1
    grandchild = interrupts.descendants(child.pid)[0]
    interrupts.stop_processes([child.pid, grandchild], grace=2.0)
    child.wait(timeout=10)
    deadline = time.monotonic() + 10
    while os.path.exists("/proc/%d" % grandchild):
      with open("/proc/%d/stat" % grandchild) as f:
        if f.read().rsplit(")", 1)[1].split()[0] == "Z":
          break
      assert time.monotonic() < deadline
      time.sleep(0.05)
  finally:
    child.kill()
    child.wait()




def test_a_thread_failing_while_an_interrupt_ends_the_job_prints_nothing(
    monkeypatch):
  """The excepthook InterruptWatch installs: a thread that fails once the
  watcher is ending the process (or within the wait for it) prints no
  traceback; a failure with no interrupt reaches the previous hook."""
  seen = []
  monkeypatch.setattr(interrupts, "THREAD_ERROR_WAIT_SECONDS", 0.05)
  hook = interrupts._quiet_while_ending(seen.append)
  monkeypatch.setattr(interrupts, "ENDING", threading.Event())
  hook("no interrupt")
  assert seen == ["no interrupt"]
  interrupts.ENDING.set()
  hook("while ending")
  assert seen == ["no interrupt"]
