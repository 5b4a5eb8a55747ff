"""DirectRunner worker processes started with the launcher, not after it.

In ``multi_processing`` mode Beam's FnApiRunner starts its worker
processes when the first stage runs, once the launcher has imported Beam,
loaded the vocabulary and built the pipeline. Each worker then spends
0.6-0.7 CPU seconds importing Beam and this project before it can take a
bundle, and the whole job waits for them: on the development machine
(2 cores) the first bundle of a two-worker job reached the workers 0.67 s
after it was scheduled, on top of the launcher's own second.

A program that will run ``--direct_num_workers=N`` workers (N - 1 worker
processes and itself, ``runners.direct``) calls ``start(N - 1)`` as it
begins (``pipelines.mlm``, before it imports Beam): each
process runs ``runners.worker`` with ``PRESTART_FLAG``, imports what every
worker needs while the launcher starts on the other core, and waits. When
the FnApiRunner asks for a worker, ``runners.direct`` takes a waiting
process (``take``) and hands it what Beam would have started a new one
with (``hand_over``: the environment, with the control and logging
addresses, the pipeline options and the worker id); without one it starts
a process as Beam does.

A waiting process ends with the launcher: its standard input is a pipe
from the launcher, whose end of it closes when the launcher exits (the
worker then reads end-of-file), and Linux kills it when the launcher's main
thread ends (``end_with_the_launcher``). The runner kills those it did not
use (``discard``).

A waiting process has imported the stages' modules before it gets the
environment the launcher hands over: what a module reads from the
environment as it is imported is the launcher's environment as the
launcher began (``MLM_NUMPY_ONLY``, read by ``transforms.kernels``, is one;
the launcher never changes it). The handed-over environment replaces the
rest: variables the launcher has since removed are removed, those a
module of the worker set as it was imported stay (``apply_environment``).

This module imports nothing from Beam: the launcher calls it first.
"""

import ctypes
import json
import logging
import os
import signal
import subprocess
import sys
import threading
from typing import Dict, List, Optional, Sequence

# The worker program's flag for a process that waits for its job.
PRESTART_FLAG = "--prestarted"
WORKER_MODULE = "runners.worker"

# Logged when a waiting process ended before its job: another is started.
REPLACED = ("worker process %d ended (exit status %s) while it waited for "
            "its job; starting another in its place")

_lock = threading.Lock()
_waiting: List[subprocess.Popen] = []


def wanted_processes(argv: Sequence[str]) -> int:
  """How many worker processes the DirectRunner will start for the command
  line ``argv``, read as ``runners.direct.apply_defaults`` will set the
  options: N - 1 for ``--direct_num_workers=N`` (N > 1; the launcher is
  the N-th worker, ``runners.direct``) with no other runner than the
  DirectRunner, no ``--flink_master`` and ``--direct_running_mode``
  unset or ``multi_processing``; otherwise 0. Reads ``--name=value`` and
  ``--name value``; a value it cannot read gives 0 (Beam's parser reports
  it later)."""
  values: Dict[str, str] = {}
  for i, arg in enumerate(argv):
    if not arg.startswith("--"):
      continue
    name, eq, value = arg[2:].partition("=")
    if not eq:
      value = argv[i + 1] if i + 1 < len(argv) else ""
    values[name] = value
  if "help" in values or "flink_master" in values:
    return 0
  runner = values.get("runner", "").lower()
  if runner not in ("", "directrunner", "direct", "runners.direct.localrunner"):
    return 0
  if values.get("direct_running_mode", "multi_processing") != "multi_processing":
    return 0
  try:
    workers = int(values.get("direct_num_workers", "1"))
  except ValueError:
    return 0
  return workers - 1 if workers > 1 else 0


def start(count: int) -> None:
  """Starts ``count`` worker processes that wait for their job. Call it
  from the main thread: the processes start with SIGINT ignored (as Beam's
  worker command line has them, ``trap '' INT``), set so in this process
  for the moment it starts them, and Linux ends them with the thread that
  started them (``end_with_the_launcher``)."""
  if count <= 0:
    return
  # An ignored signal stays ignored across exec: a Ctrl-C in the worker's
  # first instants, before its own code runs, leaves no traceback.
  previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
  try:
    with _lock:
      for _ in range(count):
        _waiting.append(subprocess.Popen(
            [sys.executable, "-m", WORKER_MODULE, PRESTART_FLAG],
            stdin=subprocess.PIPE))
  finally:
    signal.signal(signal.SIGINT, previous)


def take() -> Optional[subprocess.Popen]:
  """A waiting worker process, or None when none is left (or running)."""
  with _lock:
    while _waiting:
      process = _waiting.pop(0)
      if process.poll() is None:
        return process
      process.stdin.close()
      logging.warning(REPLACED, process.pid, process.returncode)
  return None


def hand_over(process: subprocess.Popen, env: Dict[str, str]) -> None:
  """Gives a process from ``take()`` its environment (``env``, all of it):
  the worker applies it and starts Beam's harness. Raises OSError
  (BrokenPipeError) when the process has ended meanwhile."""
  try:
    process.stdin.write(json.dumps(dict(env)).encode("utf-8") + b"\n")
  finally:
    process.stdin.close()


def discard() -> None:
  """Kills the processes still waiting (they hold nothing but their
  imports) and reaps them."""
  with _lock:
    left = _waiting[:]
    del _waiting[:]
  for process in left:
    process.stdin.close()
    process.kill()
  for process in left:
    process.wait()


def wait_for_job(stream=None) -> Optional[Dict[str, str]]:
  """In a waiting worker: blocks until the launcher hands over; returns the
  environment, or None at end-of-file (the launcher ended or discarded
  it)."""
  stream = stream if stream is not None else sys.stdin.buffer
  line = stream.readline()
  if not line.strip():
    return None
  return json.loads(line.decode("utf-8"))


def apply_environment(env: Dict[str, str], started_with: Dict[str, str]
                      ) -> None:
  """In a waiting worker given ``env``: ``os.environ`` becomes ``env``,
  plus what this process's imports set that ``started_with`` (its
  environment as it started) lacked."""
  for name in list(os.environ):
    if name not in env and name in started_with:
      del os.environ[name]
  os.environ.update(env)


def end_with_the_launcher() -> None:
  """Asks Linux to SIGKILL this process when the thread that started it
  ends (``PR_SET_PDEATHSIG``): a launcher killed with SIGKILL left its
  workers running for minutes. Exits at once when the launcher is already
  gone; a no-op where ``prctl`` is missing."""
  try:
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
  except (AttributeError, OSError):
    return
  if os.getppid() == 1:  # the launcher was already gone
    os._exit(1)  # pylint: disable=protected-access
