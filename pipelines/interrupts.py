"""Ctrl-C and SIGTERM end the job, within seconds, leaving nothing running.

A Python signal handler runs only when the main thread next executes
Python code; a job's main thread waits inside Beam and gRPC, and once a
``KeyboardInterrupt`` does arrive the interpreter still waits for the
runner's non-daemon threads, which wait for workers: a Ctrl-C could leave
the job alive for minutes. ``InterruptWatch`` does not depend on the main
thread. The C-level signal handler writes the signal's number into a
socket (``signal.set_wakeup_fd``) the moment it arrives; a watcher thread
reading that socket then

1. silences the log and the other threads' output,
2. runs the clean-up steps it was given (each bounded, each failure
   ignored): stop the job's processes, remove temporary files, give back
   the output's lock,
3. prints one line saying the job was interrupted, and
4. ends the process with ``128 + signal`` (130 for SIGINT, 143 for
   SIGTERM), without waiting for any thread.

A second signal in the first two seconds of that is ignored (a double
Ctrl-C); a later one ends the process at once.
"""

import logging
import os
import signal
import socket
import sys
import threading
import time
from typing import Callable, Dict, List, Optional, Sequence

SIGNALS = (signal.SIGINT, signal.SIGTERM)
# Set once a watcher has begun ending the process: the main thread must not
# exit on its own meanwhile (``hold_if_ending``).
ENDING = threading.Event()
# How long the job's processes get to end after SIGTERM before SIGKILL.
TERMINATE_GRACE_SECONDS = 3.0
# How long a thread that fails waits for an interrupt's clean-up to begin
# before its traceback is printed (``_quiet_while_ending``).
THREAD_ERROR_WAIT_SECONDS = 1.0
# A second signal this soon after the first is ignored (the clean-up,
# usually 0.1 s, finishes); a later one ends the process at once.
SECOND_SIGNAL_GRACE_SECONDS = 2.0


def descendants(pid: int) -> List[int]:
  """The pids of every process below ``pid`` (children, their children, …),
  read from ``/proc``; empty where there is no ``/proc``."""
  children: Dict[int, List[int]] = {}
  try:
    entries = os.listdir("/proc")
  except OSError:
    return []
  for entry in entries:
    if not entry.isdigit():
      continue
    try:
      with open("/proc/%s/stat" % entry) as f:
        stat = f.read()
    except OSError:
      continue  # ended meanwhile
    ppid = int(stat[stat.rindex(")") + 2:].split()[1])
    children.setdefault(ppid, []).append(int(entry))
  found, todo = [], [pid]
  while todo:
    for child in children.get(todo.pop(), []):
      found.append(child)
      todo.append(child)
  return found


def stop_processes(pids: Sequence[int],
                   grace: float = TERMINATE_GRACE_SECONDS) -> None:
  """SIGTERM to each of ``pids``, then SIGKILL to those still alive after
  ``grace`` seconds."""
  for pid in pids:
    _signal(pid, signal.SIGTERM)
  deadline = time.monotonic() + grace
  alive = list(pids)
  while alive and time.monotonic() < deadline:
    time.sleep(0.05)
    alive = [p for p in alive if _running(p)]
  for pid in alive:
    _signal(pid, signal.SIGKILL)


def stop_descendants(grace: float = TERMINATE_GRACE_SECONDS) -> None:
  """Stops every process this one started, and theirs."""
  stop_processes(descendants(os.getpid()), grace)


def _signal(pid: int, sig: int) -> None:
  try:
    os.kill(pid, sig)
  except (ProcessLookupError, PermissionError):
    pass


def _running(pid: int) -> bool:
  """Whether ``pid`` is alive and not a zombie (a zombie has ended; only its
  parent's wait is missing)."""
  try:
    with open("/proc/%d/stat" % pid) as f:
      stat = f.read()
    return stat[stat.rindex(")") + 2:].split()[0] != "Z"
  except OSError:
    try:
      os.kill(pid, 0)
      return True
    except OSError:
      return False


def _ended_while_starting(signum, frame) -> None:
  del frame
  os.write(2, b"error: interrupted by %s while starting; nothing was written\n"
           % signal.Signals(signum).name.encode())
  os._exit(128 + signum)  # pylint: disable=protected-access


def end_quietly_while_starting() -> None:
  """Until a command installs its ``InterruptWatch``: SIGINT or SIGTERM ends
  the process with one line (it has started nothing yet) instead of a
  ``KeyboardInterrupt`` traceback from the middle of an import."""
  for sig in SIGNALS:
    signal.signal(sig, _ended_while_starting)


def hold_if_ending(seconds: float = 60.0) -> None:
  """Waits while an interrupt's clean-up ends the process: a main thread
  about to exit (its job failed because its workers were stopped) leaves
  the exit, and its status, to the watcher."""
  if ENDING.is_set():
    time.sleep(seconds)


def _quiet_while_ending(previous: Callable) -> Callable:
  """A ``threading.excepthook`` that prints nothing for a thread that fails
  because an interrupt is ending the job: a signal sent to the whole process
  group stops the workers at once, and Beam's gRPC threads in this process
  fail with their connections before the watcher has begun (``ENDING``);
  the watcher's one line says what happened. Any other thread's failure is
  printed by ``previous``, ``THREAD_ERROR_WAIT_SECONDS`` later."""

  def hook(args) -> None:
    if ENDING.wait(THREAD_ERROR_WAIT_SECONDS):
      return
    previous(args)

  return hook


class InterruptWatch:
  """Ends the process cleanly on SIGINT or SIGTERM (see the module
  docstring). Install it from the main thread.

  Args:
    message: the line printed once the clean-up ran, given the signal's
      name (``"SIGINT"``).
    cleanups: steps run in order by the watcher thread; add more with
      ``add``.
  """

  def __init__(self, message: Callable[[str], str],
               cleanups: Sequence[Callable[[], None]] = ()):
    self._message = message
    self._cleanups: List[Callable[[], None]] = list(cleanups)
    self._reader: Optional[socket.socket] = None
    self._writer: Optional[socket.socket] = None
    self._saved = {}
    self._saved_fd = -1
    self._thread: Optional[threading.Thread] = None
    self._saved_excepthook: Optional[Callable] = None

  def add(self, cleanup: Callable[[], None]) -> None:
    """Runs ``cleanup`` after the steps given so far."""
    self._cleanups.append(cleanup)

  def add_first(self, cleanup: Callable[[], None]) -> None:
    """Runs ``cleanup`` before the steps given so far."""
    self._cleanups.insert(0, cleanup)

  def install(self) -> None:
    """Takes over SIGINT and SIGTERM; a no-op outside the main thread
    (where Python cannot set signal handlers)."""
    if threading.current_thread() is not threading.main_thread():
      return
    self._reader, self._writer = socket.socketpair()
    self._writer.setblocking(False)
    self._saved_fd = signal.set_wakeup_fd(self._writer.fileno(),
                                          warn_on_full_buffer=False)
    for sig in SIGNALS:
      # The Python-level handler does nothing: the watcher thread acts.
      # (A handler must be set for the wakeup fd to be written.)
      self._saved[sig] = signal.signal(sig, lambda signum, frame: None)
    self._saved_excepthook = threading.excepthook
    threading.excepthook = _quiet_while_ending(threading.excepthook)
    self._thread = threading.Thread(target=self._watch, daemon=True,
                                    name="interrupt-watch")
    self._thread.start()

  def uninstall(self) -> None:
    """Back to the handlers before ``install`` (from the main thread)."""
    if self._reader is None:
      return
    for sig, handler in self._saved.items():
      signal.signal(sig, handler)
    signal.set_wakeup_fd(self._saved_fd)
    threading.excepthook = self._saved_excepthook
    self._writer.close()  # ends the watcher's read
    self._reader, self._writer = None, None

  def _watch(self) -> None:
    reader = self._reader
    try:
      data = reader.recv(1)
    except OSError:
      return
    if not data:
      return  # uninstalled
    signum = data[0]
    # From here on a second signal ends the process at once.
    threading.Thread(target=self._second, args=(reader, signum),
                     daemon=True).start()
    self._end(signum)

  @staticmethod
  def _second(reader: socket.socket, first: int) -> None:
    """A second signal while the clean-up runs: ignored for
    ``SECOND_SIGNAL_GRACE_SECONDS`` (an impatient double Ctrl-C), then it
    ends the process at once."""
    began = time.monotonic()
    while True:
      try:
        data = reader.recv(1)
      except OSError:
        return
      if not data:
        return
      if time.monotonic() - began >= SECOND_SIGNAL_GRACE_SECONDS:
        os.write(2, b"error: interrupted again; ended at once, before the "
                 b"clean-up finished\n")
        os._exit(128 + first)  # pylint: disable=protected-access

  def _end(self, signum: int) -> None:
    ENDING.set()
    name = signal.Signals(signum).name
    logging.disable(logging.CRITICAL)
    devnull = open(os.devnull, "w")  # pylint: disable=consider-using-with
    sys.stdout, sys.stderr = devnull, devnull
    for cleanup in self._cleanups:
      try:
        cleanup()
      except Exception:  # pylint: disable=broad-except
        pass
    try:
      os.write(2, (self._message(name) + "\n").encode("utf-8"))
    except OSError:
      pass
    os._exit(128 + signum)  # pylint: disable=protected-access
