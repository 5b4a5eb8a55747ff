"""One run per output at a time: ``OUTPUT/_LOCK``, beside ``_INCOMPLETE``.

A run takes the lock before it looks at, cleans or writes its ``--output``,
and gives it back on every way out (success, failure, an interrupt). A
second run of the same ``--output`` is refused with one line naming the run
that holds it; it never touches the first one's files.

* **Local output** (also a shared filesystem): the lock is an advisory
  ``flock`` on ``_LOCK``, which the kernel releases the moment the holder's
  process ends, however it ends (SIGKILL and OOM-kill included). So a lock
  is taken over exactly when its holder is gone. The file itself holds the
  holder's description (host, pid, start time, command) for the message.
* **s3:// output**: object stores have no locks. ``_LOCK`` is created with a
  conditional write (``If-None-Match: *``), so of two runs starting at once
  only one creates it. The holder rewrites it every ``HEARTBEAT_SECONDS``.
  It is taken over (a conditional overwrite, ``If-Match`` its ETag, so only
  one of several runs wins) when its holder is provably gone: a process on
  this machine (same host name and boot id) that no longer runs, or a
  holder elsewhere whose heartbeat is older than ``STALE_SECONDS``.
"""

import fcntl
import json
import logging
import os
import socket
import sys
import threading
import time
import uuid
from typing import Dict, Optional

LOCK_NAME = "_LOCK"
HEARTBEAT_SECONDS = 30.0
# A holder on another machine whose lock went this long without a heartbeat
# is gone (it rewrites it every HEARTBEAT_SECONDS while it runs).
STALE_SECONDS = 600.0


class OutputBusy(Exception):
  """The output is locked by a run that is still going; the message names
  it."""


def _boot_id() -> str:
  try:
    with open("/proc/sys/kernel/random/boot_id") as f:
      return f.read().strip()
  except OSError:
    return ""


def _process_start(pid: int) -> Optional[str]:
  """The start time of process ``pid`` in clock ticks since boot (field 22
  of ``/proc/PID/stat``), which tells a process from a later one reusing
  its number; None if there is no such process (or no ``/proc``)."""
  try:
    with open("/proc/%d/stat" % pid) as f:
      stat = f.read()
  except OSError:
    return None
  return stat[stat.rindex(")") + 2:].split()[19]


def holder_description(run_id: str) -> Dict[str, object]:
  """What a lock records of its holder: this process."""
  now = time.time()
  return {"run_id": run_id, "host": socket.gethostname(),
          "boot_id": _boot_id(), "pid": os.getpid(),
          "process_start": _process_start(os.getpid()),
          "started": now, "heartbeat": now,
          "command": " ".join([os.path.basename(sys.argv[0])]
                              + sys.argv[1:])[:500]}


def holder_gone(holder: Dict[str, object], now: float) -> bool:
  """Whether the run ``holder`` describes has provably ended: a process of
  this machine that no longer exists (or whose number now belongs to a
  later process), or a holder whose heartbeat stopped ``STALE_SECONDS``
  ago."""
  if (holder.get("host") == socket.gethostname()
      and holder.get("boot_id") == _boot_id() and holder.get("boot_id")):
    pid = holder.get("pid")
    if not isinstance(pid, int):
      return True
    start = _process_start(pid)
    return start is None or start != holder.get("process_start")
  heartbeat = holder.get("heartbeat")
  return (not isinstance(heartbeat, (int, float))
          or now - heartbeat > STALE_SECONDS)


def describe(holder: Dict[str, object], output: str) -> str:
  started = holder.get("started")
  when = (time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(started))
          if isinstance(started, (int, float)) else "an unknown time")
  return ("%s is in use by a running job (pid %s on %s, started %s: %s); "
          "wait for it to end or stop it, or choose another --output"
          % (output, holder.get("pid", "?"), holder.get("host", "?"), when,
             holder.get("command") or "?"))


class _LocalLock:
  """``flock`` on ``OUTPUT/_LOCK`` (see the module docstring)."""

  def __init__(self, output: str, run_id: str):
    self.output = output
    self.path = os.path.join(output, LOCK_NAME)
    self.run_id = run_id
    self._fd: Optional[int] = None

  def acquire(self) -> None:
    os.makedirs(self.output, exist_ok=True)
    while True:
      fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
      try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
      except BlockingIOError:
        holder = _read_json(os.read(fd, 1 << 16))
        os.close(fd)
        raise OutputBusy(describe(holder, self.output)) from None
      # The holder before us may have removed the file after we opened it:
      # a lock on a removed file guards nothing. Open it again.
      try:
        same = os.path.samestat(os.fstat(fd), os.stat(self.path))
      except FileNotFoundError:
        same = False
      if same:
        break
      os.close(fd)
    os.ftruncate(fd, 0)
    os.write(fd, json.dumps(holder_description(self.run_id)).encode("utf-8"))
    os.fsync(fd)
    self._fd = fd

  def release(self) -> None:
    fd, self._fd = self._fd, None
    if fd is None:
      return
    try:
      os.unlink(self.path)  # while still held: nobody else has it
    except OSError:
      pass
    os.close(fd)


class _S3Lock:
  """A conditionally written ``OUTPUT/_LOCK`` object with a heartbeat (see
  the module docstring)."""

  def __init__(self, output: str, run_id: str,
               s3_client_kwargs: Optional[dict]):
    bucket_key = output[len("s3://"):].rstrip("/")
    self.bucket, _, prefix = bucket_key.partition("/")
    self.key = (prefix + "/" if prefix else "") + LOCK_NAME
    self.output = output
    self.run_id = run_id
    self._kwargs = dict(s3_client_kwargs or {})
    self._client = None
    self._etag: Optional[str] = None
    self._holder: Optional[Dict[str, object]] = None
    self._stop = threading.Event()
    self._thread: Optional[threading.Thread] = None
    self._mutex = threading.Lock()

  def _s3(self):
    if self._client is None:
      import boto3  # pylint: disable=import-outside-toplevel
      self._client = boto3.client("s3", **self._kwargs)
    return self._client

  def _put(self, holder, **condition) -> str:
    body = json.dumps(holder).encode("utf-8")
    return self._s3().put_object(Bucket=self.bucket, Key=self.key, Body=body,
                                 **condition)["ETag"]

  def acquire(self) -> None:
    from botocore.exceptions import ClientError  # pylint: disable=import-outside-toplevel
    holder = holder_description(self.run_id)
    for _ in range(5):
      try:
        self._etag = self._put(holder, IfNoneMatch="*")
        break
      except ClientError as e:
        if not _precondition_failed(e):
          raise
      try:
        current = self._s3().get_object(Bucket=self.bucket, Key=self.key)
      except ClientError as e:
        if _missing(e):
          continue  # released in between: try to create it again
        raise
      other = _read_json(current["Body"].read())
      if not holder_gone(other, time.time()):
        raise OutputBusy(describe(other, self.output))
      logging.warning("%s/%s: its run (pid %s on %s) is gone; taking the "
                      "lock over", self.output, LOCK_NAME, other.get("pid"),
                      other.get("host"))
      try:
        self._etag = self._put(holder, IfMatch=current["ETag"])
        break
      except ClientError as e:
        if not (_precondition_failed(e) or _missing(e)):
          raise
    else:
      raise OutputBusy("%s: another run keeps taking its lock; try again"
                       % self.output)
    self._holder = holder
    self._thread = threading.Thread(target=self._beat, name="output-lock",
                                     daemon=True)
    self._thread.start()

  def _beat(self) -> None:
    while not self._stop.wait(HEARTBEAT_SECONDS):
      with self._mutex:
        if self._etag is None:
          return
        self._holder["heartbeat"] = time.time()
        try:
          self._etag = self._put(self._holder, IfMatch=self._etag)
        except Exception as e:  # pylint: disable=broad-except
          logging.warning("could not renew the lock %s/%s: %s", self.output,
                          LOCK_NAME, e)

  def release(self) -> None:
    self._stop.set()
    with self._mutex:
      etag, self._etag = self._etag, None
    if etag is None:
      return
    try:
      current = self._s3().get_object(Bucket=self.bucket, Key=self.key)
      if _read_json(current["Body"].read()).get("run_id") == self.run_id:
        self._s3().delete_object(Bucket=self.bucket, Key=self.key)
    except Exception as e:  # pylint: disable=broad-except
      logging.warning("could not remove the lock %s/%s: %s", self.output,
                      LOCK_NAME, e)


def _precondition_failed(e) -> bool:
  error = e.response.get("Error", {})
  return (error.get("Code") in ("PreconditionFailed", "412")
          or e.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
          == 412)


def _missing(e) -> bool:
  return e.response.get("Error", {}).get("Code") in ("NoSuchKey", "404")


def _read_json(data: bytes) -> Dict[str, object]:
  try:
    value = json.loads(data.decode("utf-8"))
    return value if isinstance(value, dict) else {}
  except ValueError:
    return {}


class OutputLock:
  """The lock of one ``--output`` (local path or ``s3://``).

  ``acquire()`` raises ``OutputBusy`` when another run holds it; ``release()``
  gives it back and may be called more than once, from any thread."""

  def __init__(self, output: str, s3_client_kwargs: Optional[dict] = None):
    self.run_id = uuid.uuid4().hex
    if output.startswith("s3://"):
      self._impl = _S3Lock(output, self.run_id, s3_client_kwargs)
    elif "://" in output:
      self._impl = None  # no lock on other stores (none is supported yet)
    else:
      self._impl = _LocalLock(output, self.run_id)

  def acquire(self) -> None:
    if self._impl is not None:
      self._impl.acquire()

  def release(self) -> None:
    if self._impl is not None:
      self._impl.release()
