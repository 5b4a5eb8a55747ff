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
import time

import psutil
import pytest

from pipelines import interrupts
from tests.helpers import digest, read_examples, run_cli, stop_cli_when

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


def test_every_interrupt_ends_the_job_cleanly(corpus, tmp_path):
  rng = random.Random(int(os.environ.get("MLM_INTERRUPT_SEED", "2312")))
  args = ["--input=" + ",".join(corpus), "--direct_num_workers=2",
          "--dupe_factor=5"]
  outcomes = []
  for attempt in range(TRIES):
    out = str(tmp_path / ("out%d" % attempt))
    sig = rng.choice([signal.SIGINT, signal.SIGTERM])
    delay = rng.uniform(0.1, 6.0)
    start = time.monotonic()
    run = stop_cli_when(["--output=" + out] + args,
                        lambda: time.monotonic() - start >= delay, sig,
                        str(tmp_path / ("log%d" % attempt)),
                        end_within=END_WITHIN_SECONDS)
    assert run.ended_in is not None, (
        "try %d: %s at %.1f s: the job still ran %.0f s later"
        % (attempt, sig.name, delay, END_WITHIN_SECONDS))
    # Nothing of the job runs on (its workers are in its process group).
    assert not run.survivors, run.survivors
    stderr = run.output
    if run.returncode == 0:
      outcomes.append("finished first")
      continue  # the job was over before the signal
    errors = [l for l in stderr.splitlines() if l.startswith("error:")]
    assert run.returncode == 128 + sig, (attempt, run.returncode, stderr)
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
                                                          run.ended_in))
  print("\n".join(outcomes))
  assert any("ended" in o for o in outcomes)


def test_a_rerun_after_an_interrupt_cleans_up(corpus, tmp_path):
  out = str(tmp_path / "out")
  args = ["--input=" + corpus[0], "--dupe_factor=1"]
  run = stop_cli_when(["--output=" + out] + args,
                      lambda: os.path.exists(os.path.join(out, "_INCOMPLETE")),
                      signal.SIGINT, str(tmp_path / "log"), timeout=120,
                      poll=0.02, end_within=END_WITHIN_SECONDS)
  assert run.stopped and run.returncode == 130, run.output
  assert "_INCOMPLETE" in os.listdir(out)
  run_cli(["--output=" + out] + args)
  clean = str(tmp_path / "clean")
  run_cli(["--output=" + clean] + args)
  assert digest(read_examples(out)) == digest(read_examples(clean))


@pytest.mark.parametrize("sig,delay", [(signal.SIGINT, 1.0),
                                       (signal.SIGINT, 3.0),
                                       (signal.SIGTERM, 3.5)])
def test_learn_vocab_ends_on_an_interrupt(corpus, tmp_path, sig, delay):
  """The signal comes ``delay`` s after the start; should the vocabulary be
  learned before that (a fast moment of a shared machine), the run is
  repeated with the signal sooner, so the interrupt is always tested."""
  for attempt in range(4):
    run, out, tmp = _learn_vocab_stopped(corpus, tmp_path / str(attempt), sig,
                                         delay / 2 ** attempt)
    if run.returncode != 0:
      break
  stderr = run.output
  assert run.returncode == 128 + sig, stderr
  errors = [l for l in stderr.splitlines() if l.startswith("error:")]
  assert len(errors) == 1 and "interrupted by %s" % sig.name in errors[0]
  assert "Traceback" not in stderr
  assert os.listdir(out.parent) == []  # no vocabulary, nothing partial
  assert os.listdir(tmp) == []


def _learn_vocab_stopped(corpus, tmp_path, sig, delay):
  tmp = tmp_path / "tmp"
  tmp.mkdir(parents=True)
  out = tmp_path / "vocab" / "vocab.txt"
  out.parent.mkdir()
  start = time.monotonic()
  run = stop_cli_when(["--input=" + ",".join(corpus), "--output=%s" % out,
                       "--vocab_size=1200", "--direct_num_workers=2"],
                      lambda: time.monotonic() - start >= delay, sig,
                      str(tmp_path / "log"), env={"TMPDIR": str(tmp)},
                      end_within=END_WITHIN_SECONDS,
                      module="pipelines.learn_vocab")
  assert run.ended_in is not None, "still running %.0f s after %s" % (
      END_WITHIN_SECONDS, sig.name)
  assert not run.survivors, run.survivors
  return run, out, tmp


def test_workers_end_with_a_killed_launcher(corpus, tmp_path):
  """SIGKILL to the launcher alone (an OOM kill): its DirectRunner workers
  end with it (they ran on, orphaned, for minutes)."""
  out = str(tmp_path / "out")
  launcher = []

  def workers_at_work():
    """The launcher's two worker processes are in the job: each holds a
    connection to it (a prestarted worker has none until its job comes,
    runners/prestart.py)."""
    connected = 0
    for pid in interrupts.descendants(launcher[0]):
      try:
        connected += any(c.status == psutil.CONN_ESTABLISHED
                         for c in psutil.Process(pid).net_connections())
      except psutil.Error:
        pass
    return connected >= 2

  # Three workers: two worker processes and the launcher (runners/direct.py).
  run = stop_cli_when(["--output=" + out, "--input=" + ",".join(corpus),
                       "--direct_num_workers=3", "--dupe_factor=3"],
                      workers_at_work, signal.SIGKILL, str(tmp_path / "log"),
                      timeout=120, poll=0.05, to_group=False, grace=10,
                      on_start=launcher.append)
  assert run.stopped, run.output
  assert not run.survivors, run.survivors
