"""A local S3-compatible server for tests and benchmarks: moto's server
(``moto[server]``, in the test and bench extras), on loopback or on the
local Flink cluster's bridge (``runners.local_flink --hosts``), where every
host of the cluster reaches it.

  with local_s3.server(host) as url:   # e.g. http://127.0.0.1:PORT
    ... --s3_endpoint_url=URL ...

It runs in a process group of its own and is stopped on every path. Any
access key is accepted; objects live in the server's memory.
"""

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from typing import Iterator


def _free_port(host: str) -> int:
  with socket.socket() as s:
    s.bind((host, 0))
    return s.getsockname()[1]


@contextlib.contextmanager
def server(host: str = "127.0.0.1", timeout: float = 30.0) -> Iterator[str]:
  """Starts the server on ``host``; yields its URL; stops it."""
  port = _free_port(host)
  moto = os.path.join(os.path.dirname(sys.executable), "moto_server")
  proc = subprocess.Popen([moto, "-H", host, "-p", str(port)],
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                          start_new_session=True)
  url = "http://%s:%d" % (host, port)
  try:
    deadline = time.time() + timeout
    while True:
      try:
        urllib.request.urlopen(url, timeout=1)
        break
      except OSError:
        if time.time() > deadline or proc.poll() is not None:
          raise RuntimeError("the moto S3 server did not start on %s" % url)
        time.sleep(0.2)
    yield url
  finally:
    try:
      os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
      pass
    proc.wait(timeout=10)
