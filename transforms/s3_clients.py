"""One boto3 S3 client per process and settings for Beam's S3 filesystem.

Beam's ``S3FileSystem`` (apache_beam/io/aws, Beam 2.77) builds a new
``S3IO``, and with it a new boto3 session and client, for every ``open``,
``create``, ``metadata``, ``match`` and ``rename``. Building a client loads
botocore's S3 service model from JSON: about 40-100 ms of CPU each time on
the machines this project is measured on. A pipeline on S3 opens objects
per input range, per spill file and per group of pools
(transforms/pool_files.py), thousands of times per GB: profiled with py-spy
on the multi-host Flink cluster (docs/flink.md, "Throughput on Flink"),
building clients took 47% of the Python workers' busy samples.

``share_s3_clients()`` makes Beam's client wrapper reuse one boto3 client per
set of S3 settings (endpoint, region, keys, SSL) in this process. Low-level
boto3 clients are thread-safe (boto3's guide, "Multithreading or
multiprocessing with clients"); the wrapper's own per-download state stays
per wrapper, as before. Every DoFn that reads or writes files calls it in
``setup()``, and the launcher before the job; calling it again does nothing.
"""

import importlib
import sys
import threading
import types
from typing import Dict, Tuple

from apache_beam.options import pipeline_options

_FIELDS = ("s3_access_key_id", "s3_secret_access_key", "s3_session_token",
           "s3_endpoint_url", "s3_region_name", "s3_api_version",
           "s3_verify", "s3_disable_ssl")
_CLIENT_MODULE = "apache_beam.io.aws.clients.s3.boto3_client"
_S3IO_MODULE = "apache_beam.io.aws.s3io"
_lock = threading.Lock()
_installed = False


def settings_key(options) -> Tuple:
  """The S3 settings that make a client different: from PipelineOptions (its
  S3Options view) or from a dict, as Beam's wrapper reads either."""
  if isinstance(options, pipeline_options.PipelineOptions):
    s3 = options.view_as(pipeline_options.S3Options)
    values = [getattr(s3, name, None) for name in _FIELDS]
  else:
    values = [options.get(name) for name in _FIELDS]
  values[-1] = bool(values[-1])  # s3_disable_ssl: unset is False
  return tuple(values)


def share_s3_clients() -> bool:
  """Installs the shared client into Beam's S3 filesystem; returns False
  where Beam's AWS extra (boto3) is not installed. Where Beam's S3 IO
  imports its boto3 wrapper on first use (runners/lean_beam.py), boto3 is
  not imported here either: the wrapper is shared once it is imported."""
  global _installed  # pylint: disable=global-statement
  with _lock:
    if _installed:
      return True
    s3io = sys.modules.get(_S3IO_MODULE)
    if (_CLIENT_MODULE not in sys.modules and s3io is not None
        and getattr(s3io, "BOTO3_INSTALLED", False)
        and not isinstance(getattr(s3io, "boto3_client", None),
                           types.ModuleType)):
      s3io.boto3_client = _SharedOnFirstUse(s3io)
      _installed = True
      return True
    try:
      from apache_beam.io.aws.clients.s3 import boto3_client  # pylint: disable=import-outside-toplevel
    except ImportError:
      return False
    if boto3_client.boto3 is None:
      return False
    _share(boto3_client)
    _installed = True
    return True


def _share(module) -> None:
  """Makes Beam's boto3 wrapper class in ``module`` share its clients."""
  if getattr(module.Client, "shared_clients", None) is None:
    module.Client = _shared_client_class(module.Client)


class _SharedOnFirstUse:
  """Stands for Beam's boto3 wrapper module in its S3 IO (``s3io``) until
  an ``s3://`` path needs it: then imports it, shares its clients and puts
  the module in its place."""

  def __init__(self, s3io):
    self._s3io = s3io

  def __getattr__(self, name):
    module = importlib.import_module(_CLIENT_MODULE)
    with _lock:
      _share(module)
      self._s3io.boto3_client = module
    return getattr(module, name)


def _shared_client_class(base):
  clients: Dict[Tuple, object] = {}

  class SharedClient(base):
    """Beam's boto3 wrapper with the boto3 client of its settings shared."""

    def __init__(self, options):  # pylint: disable=super-init-not-called
      key = settings_key(options)
      with _lock:
        client = clients.get(key)
      if client is None:
        super().__init__(options)
        with _lock:
          # Another thread may have made one meanwhile: use that one.
          self.client = clients.setdefault(key, self.client)
        return
      # What the wrapper's constructor sets besides the client: the state
      # of the download it streams from (none yet).
      self.client = client
      self._download_request = None
      self._download_stream = None
      self._download_pos = 0

  SharedClient.__name__ = SharedClient.__qualname__ = "SharedClient"
  SharedClient.shared_clients = clients
  return SharedClient
