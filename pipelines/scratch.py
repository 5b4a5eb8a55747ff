"""A private temporary folder for each run, removed when the run ends.

Beam and this project put files in the system's temporary directory while a
job runs: the DirectRunner's pipeline temp folders, the workers' pid files
(``runners/direct.py``), the live progress's tally files, the Flink
submission's ``submission_environment_dependencies.txt``, the pool files of
an ``s3://`` output on the DirectRunner. ``ScratchDir`` points ``TMPDIR``
(and ``tempfile.tempdir``) of this process and of every process it starts at
one folder of its own, ``mlm-run-PID@HOST-XXXX``, and removes it whole on
exit, so nothing a job creates is left behind. A run killed with SIGKILL
cannot clean up; the next run on the same machine removes every such folder
of that machine whose process ``PID`` is no longer alive
(``sweep_stale``), and only those. (The workers of a killed DirectRunner
job end with it: runners/worker.py.)
"""

import logging
import os
import re
import shutil
import socket
import tempfile
from typing import List, Optional

PREFIX = "mlm-run-"
_NAME = re.compile(r"^%s(\d+)@(.+)-[^-]+$" % re.escape(PREFIX))


def _host() -> str:
  return re.sub(r"[^A-Za-z0-9.]+", "_", socket.gethostname()) or "host"


def folder_prefix(pid: int) -> str:
  """The start of the name of process ``pid``'s folder on this machine:
  ``mlm-run-PID@HOST-`` (a temporary directory shared by several machines
  or containers holds each one's folders apart)."""
  return "%s%d@%s-" % (PREFIX, pid, _host())


def pid_alive(pid: int) -> bool:
  """Whether a process ``pid`` exists on this machine (it may belong to
  another user: then it exists, and counts as alive)."""
  try:
    os.kill(pid, 0)
  except ProcessLookupError:
    return False
  except PermissionError:
    return True
  return True


def sweep_stale(parent: str) -> List[str]:
  """Removes the ``mlm-run-PID-*`` folders in ``parent`` whose process is
  gone; returns their paths. A folder whose pid is alive (this run's, a run
  beside it, or an unrelated process that reuses the number) is kept."""
  removed = []
  try:
    names = os.listdir(parent)
  except OSError:
    return removed
  host = _host()
  for name in names:
    m = _NAME.match(name)
    path = os.path.join(parent, name)
    if (m and m.group(2) == host and os.path.isdir(path)
        and not pid_alive(int(m.group(1)))):
      shutil.rmtree(path, ignore_errors=True)
      if not os.path.exists(path):
        removed.append(path)
  if removed:
    logging.info("removed %d temporary folders of runs that were killed: %s",
                 len(removed), ", ".join(removed))
  return removed


class ScratchDir:
  """This run's temporary folder (see the module docstring).

  ``enter()`` sweeps stale folders, makes the folder and points ``TMPDIR``
  at it; ``exit()`` removes it and restores ``TMPDIR``. Both are safe to
  call more than once (an interrupted run may call ``exit`` from its signal
  watcher while the main thread also ends)."""

  def __init__(self, parent: Optional[str] = None):
    self.parent = parent or tempfile.gettempdir()
    self.path: Optional[str] = None
    self._saved_env: Optional[str] = None
    self._saved_tempdir: Optional[str] = None

  def enter(self) -> str:
    sweep_stale(self.parent)
    self.path = tempfile.mkdtemp(prefix=folder_prefix(os.getpid()),
                                 dir=self.parent)
    self._saved_env = os.environ.get("TMPDIR")
    self._saved_tempdir = tempfile.tempdir
    os.environ["TMPDIR"] = self.path
    tempfile.tempdir = self.path
    return self.path

  def exit(self) -> None:
    path, self.path = self.path, None
    if path is None:
      return
    if self._saved_env is None:
      os.environ.pop("TMPDIR", None)
    else:
      os.environ["TMPDIR"] = self._saved_env
    tempfile.tempdir = self._saved_tempdir
    shutil.rmtree(path, ignore_errors=True)

  def __enter__(self) -> str:
    return self.enter()

  def __exit__(self, *exc) -> None:
    self.exit()
