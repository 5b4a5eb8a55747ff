"""Ctrl-C and SIGTERM end a job within seconds, with one line, leaving no
process of it running and its output marked incomplete; a rerun cleans up.

A terminal sends SIGINT to the whole foreground process group, so the
signal goes to the group here too, at random moments of the job: while
Beam imports, while it checks, while the workers run, while it writes.
``MLM_INTERRUPT_TRIES`` sets how many tries (8 by default; the README
quotes a run of 20).
"""

import os
import random
import signal
import subprocess
import sys
import time

import pytest

from pipelines import interrupts
from tests.helpers import REPO, digest, read_examples, run_cli

TRIES = int(os.environ.get("MLM_INTERRUPT_TRIES", "8"))
# The bound: every interrupt ends the job within this many seconds.
END_WITHIN_SECONDS = 10.0


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
  """About 4 MB of lines: the job runs long enough to be hit while its
  workers run."""
  from tests.helpers import sample_documents  # pylint: disable=import-outside-toplevel
  rng = random.Random(7)
  docs = sample_documents()
  folder = tmp_path_factory.mktemp("corpus")
  paths = []
  for i in range(4):
    path = str(folder / ("part%d.txt" % i))
    with open(path, "w", encoding="utf-8") as f:
      for _ in range(1500):
        doc = list(rng.choice(docs))
        rng.shuffle(doc)
        f.write("\n".join(doc) + "\n\n")
    paths.append(path)
  return paths


def _group_alive(pgid):
  """The processes of group ``pgid`` still running (zombies are over)."""
  alive = []
  for entry in os.listdir("/proc"):
    if not entry.isdigit():
      continue
    try:
      with open("/proc/%s/stat" % entry) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
      continue
    if int(fields[2]) == pgid and fields[0] != "Z":
      alive.append(int(entry))
  return alive


def test_every_interrupt_ends_the_job_cleanly(corpus, tmp_path):
  rng = random.Random(int(os.environ.get("MLM_INTERRUPT_SEED", "2312")))
  args = ["--input=" + ",".join(corpus), "--direct_num_workers=2",
          "--dupe_factor=5"]
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
  outcomes = []
  for attempt in range(TRIES):
    out = str(tmp_path / ("out%d" % attempt))
    sig = rng.choice([signal.SIGINT, signal.SIGTERM])
    delay = rng.uniform(0.1, 6.0)
    proc = subprocess.Popen(
        [sys.executable, "-m", "pipelines.mlm", "--output=" + out] + args,
        cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        text=True, start_new_session=True)
    try:
      time.sleep(delay)
      sent = time.monotonic()
      try:
        os.killpg(proc.pid, sig)
      except ProcessLookupError:
        pass  # already over
      try:
        _, stderr = proc.communicate(timeout=END_WITHIN_SECONDS)
      except subprocess.TimeoutExpired:
        pytest.fail("try %d: %s at %.1f s: the job still ran %.0f s later"
                    % (attempt, sig.name, delay, END_WITHIN_SECONDS))
      took = time.monotonic() - sent
      # Nothing of the job runs on (its workers are in its process group).
      assert _wait_gone(proc.pid), _group_alive(proc.pid)
    finally:
      try:
        os.killpg(proc.pid, signal.SIGKILL)
      except ProcessLookupError:
        pass
      proc.wait()
    if proc.returncode == 0:
      outcomes.append("finished first")
      continue  # the job was over before the signal
    errors = [l for l in stderr.splitlines() if l.startswith("error:")]
    assert proc.returncode == 128 + sig, (attempt, proc.returncode, stderr)
    assert len(errors) == 1 and "interrupted by %s" % sig.name in errors[0], (
        stderr)
    assert "Traceback" not in stderr
    left = os.listdir(out) if os.path.exists(out) else []
    assert "_LOCK" not in left, left
    # The pool files stay for --resume, in an output marked incomplete.
    assert "_pools" not in left or "_INCOMPLETE" in left, left
    if "as the job ended" in errors[0]:
      # The signal came after summary.json: the output is whole, and said so.
      assert "summary.json" in left and "_INCOMPLETE" not in left, left
    else:
      assert "summary.json" not in left, left
      assert "_INCOMPLETE" in left or not left, left
    outcomes.append("%s after %.1f s, ended in %.2f s" % (sig.name, delay,
                                                          took))
  print("\n".join(outcomes))
  assert any("ended" in o for o in outcomes)


def _wait_gone(pgid, timeout=5.0):
  deadline = time.monotonic() + timeout
  while time.monotonic() < deadline:
    if not _group_alive(pgid):
      return True
    time.sleep(0.05)
  return False


def test_a_rerun_after_an_interrupt_cleans_up(corpus, tmp_path):
  out = str(tmp_path / "out")
  args = ["--input=" + corpus[0], "--dupe_factor=1"]
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
  proc = subprocess.Popen(
      [sys.executable, "-m", "pipelines.mlm", "--output=" + out] + args,
      cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
      text=True, start_new_session=True)
  try:
    deadline = time.monotonic() + 120
    while not os.path.exists(os.path.join(out, "_INCOMPLETE")):
      assert time.monotonic() < deadline and proc.poll() is None
      time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGINT)
    _, stderr = proc.communicate(timeout=END_WITHIN_SECONDS)
  finally:
    try:
      os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
      pass
    proc.wait()
  assert proc.returncode == 130, stderr
  assert "_INCOMPLETE" in os.listdir(out)
  run_cli(["--output=" + out] + args)
  clean = str(tmp_path / "clean")
  run_cli(["--output=" + clean] + args)
  assert digest(read_examples(out)) == digest(read_examples(clean))


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


@pytest.mark.parametrize("sig,delay", [(signal.SIGINT, 1.0),
                                       (signal.SIGINT, 3.0),
                                       (signal.SIGTERM, 3.5)])
def test_learn_vocab_ends_on_an_interrupt(corpus, tmp_path, sig, delay):
  tmp = tmp_path / "tmp"
  tmp.mkdir()
  out = tmp_path / "vocab" / "vocab.txt"
  out.parent.mkdir()
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", TMPDIR=str(tmp))
  proc = subprocess.Popen(
      [sys.executable, "-m", "pipelines.learn_vocab",
       "--input=" + ",".join(corpus), "--output=%s" % out,
       "--vocab_size=1200", "--direct_num_workers=2"],
      cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
      text=True, start_new_session=True)
  try:
    time.sleep(delay)
    os.killpg(proc.pid, sig)
    _, stderr = proc.communicate(timeout=END_WITHIN_SECONDS)
    assert _wait_gone(proc.pid), _group_alive(proc.pid)
  finally:
    try:
      os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
      pass
    proc.wait()
  if proc.returncode == 0:
    pytest.skip("the vocabulary was learned before the signal")
  assert proc.returncode == 128 + sig, stderr
  errors = [l for l in stderr.splitlines() if l.startswith("error:")]
  assert len(errors) == 1 and "interrupted by %s" % sig.name in errors[0]
  assert "Traceback" not in stderr
  assert os.listdir(out.parent) == []  # no vocabulary, nothing partial
  assert os.listdir(tmp) == []


def test_workers_end_with_a_killed_launcher(corpus, tmp_path):
  """SIGKILL to the launcher alone (an OOM kill): its DirectRunner workers
  end with it (they ran on, orphaned, for minutes)."""
  out = str(tmp_path / "out")
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
  proc = subprocess.Popen(
      [sys.executable, "-m", "pipelines.mlm", "--output=" + out,
       "--input=" + ",".join(corpus), "--direct_num_workers=2",
       "--dupe_factor=3"],
      cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
      start_new_session=True)
  try:
    deadline = time.monotonic() + 120
    while len(interrupts.descendants(proc.pid)) < 2:
      assert time.monotonic() < deadline and proc.poll() is None
      time.sleep(0.05)
    time.sleep(0.5)  # the workers are at work
    proc.kill()
    proc.wait()
    assert _wait_gone(proc.pid, timeout=10), _group_alive(proc.pid)
  finally:
    try:
      os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
      pass
    proc.wait()
