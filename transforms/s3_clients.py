"""Beam's S3 filesystem made cheaper: one boto3 client per process and
settings, lighter writes, and ranged reads that ask for their bytes alone.

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

It also makes Beam's S3 writes and the ranged reads of this project cost
less per byte and per request (``_lean_uploader_class``, ``get_bytes``):
the writer keeps its buffer in a ``bytearray`` where Beam's concatenates
``bytes`` (2.4 CPU-seconds per GB written, a job writes about 15 bytes to S3
per byte of text), starts a multipart upload only once an object fills one
part and writes a smaller one with one ``PutObject``, and sends the parts
of a larger one from upload threads while the worker goes on; a ranged read
asks for its bytes alone, with no ``HeadObject`` first.
"""

import collections
import concurrent.futures
import errno
import importlib
import io
import os
import sys
import threading
import time
import types
from typing import Dict, Optional, Tuple

from apache_beam.options import pipeline_options

_FIELDS = ("s3_access_key_id", "s3_secret_access_key", "s3_session_token",
           "s3_endpoint_url", "s3_region_name", "s3_api_version",
           "s3_verify", "s3_disable_ssl")
_CLIENT_MODULE = "apache_beam.io.aws.clients.s3.boto3_client"
_S3IO_MODULE = "apache_beam.io.aws.s3io"
# The size of each part of a multipart upload; an object smaller than this
# is written with one PutObject: boto3's own defaults (TransferConfig's
# multipart_threshold and multipart_chunksize, 8 MiB). S3 takes parts of
# 5 MiB to 5 GiB and at most 10,000 of them (S3 User Guide, "Amazon S3
# multipart upload limits"): objects up to 78 GiB.
PART_BYTES = 8 << 20
# Parts of one object uploading while its writer goes on filling the next:
# a writer that has this many in flight waits for the oldest. Memory per
# open object: this many parts, one cut and waiting for its turn, and the
# one being filled (32 MiB).
PARTS_IN_FLIGHT = 2
# The threads that upload parts, one pool per process, shared by its
# writers.
_UPLOAD_THREADS = 4
# How often get_bytes tries a read that breaks off, and the first pause.
_GET_TRIES = 4
_GET_BACKOFF_S = 0.5
_lock = threading.Lock()
_installed = False
# The last PipelineOptions settings_key read, and its key.
_last_key: Tuple[object, Tuple] = (None, ())
# The process that made the upload threads, and their pool.
_uploads: Tuple[int, Optional[concurrent.futures.ThreadPoolExecutor]] = (
    0, None)


def settings_key(options) -> Tuple:
  """The S3 settings that make a client different: from PipelineOptions (its
  S3Options view) or from a dict, as Beam's wrapper reads either."""
  global _last_key  # pylint: disable=global-statement
  if not isinstance(options, pipeline_options.PipelineOptions):
    return _key([options.get(name) for name in _FIELDS])
  last = _last_key  # one read: upload and close threads call this too
  if last[0] is options:
    return last[1]
  # A view of the options parses them again: about a millisecond for every
  # S3 request made through Beam's filesystem. A job's options do not
  # change once it runs, so the last object's key is kept (with the object,
  # so its id is never another's): an options object whose S3 settings
  # change after its first S3 request would keep its old key.
  s3 = options.view_as(pipeline_options.S3Options)
  key = _key([getattr(s3, name, None) for name in _FIELDS])
  _last_key = (options, key)
  return key


def _key(values: list) -> Tuple:
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
      _lighten_uploads(s3io)
      _installed = True
      return True
    try:
      from apache_beam.io.aws import s3io  # pylint: disable=import-outside-toplevel
      from apache_beam.io.aws.clients.s3 import boto3_client  # pylint: disable=import-outside-toplevel
    except ImportError:
      return False
    if boto3_client.boto3 is None:
      return False
    _share(boto3_client)
    _lighten_uploads(s3io)
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


def _lighten_uploads(s3io) -> None:
  """Makes Beam's S3 IO (module ``s3io``) open its writes with
  ``_lean_uploader_class``."""
  if getattr(s3io.S3Uploader, "lean", False):
    return
  s3io.S3Uploader = _lean_uploader_class(s3io.S3Uploader, s3io.parse_s3_path)


def _upload_threads() -> concurrent.futures.ThreadPoolExecutor:
  """This process's pool of ``_UPLOAD_THREADS`` upload threads (a new one
  in a forked child: threads do not survive a fork)."""
  global _uploads  # pylint: disable=global-statement
  with _lock:
    if _uploads[0] != os.getpid():
      _uploads = (os.getpid(), concurrent.futures.ThreadPoolExecutor(
          _UPLOAD_THREADS, thread_name_prefix="s3-upload"))
    return _uploads[1]


def _lean_uploader_class(base, parse_s3_path):
  """Beam's ``S3Uploader`` (``base``, apache_beam/io/aws/s3io.py), writing
  the same objects with fewer copies and requests, and without waiting on
  each part.

  Beam's adds each write (128 KiB from its ``BufferedWriter``) to a
  ``bytes`` buffer, which copies the whole buffer every time: 20 copies of
  each byte on the way to a 5 MiB part. Here the buffer is a ``bytearray``
  and each part is copied out of it once. Beam's starts a multipart upload
  when the file is opened, so every object costs at least three requests;
  here the upload starts when the first ``PART_BYTES`` part is full, and an
  object smaller than that is one ``PutObject`` (and may be empty). Beam's
  sends each part before the write that filled it returns, so the worker
  computes nothing while the store takes it; here up to ``PARTS_IN_FLIGHT``
  parts of an object are sent by upload threads while the worker goes on.
  An object shows up only once it is whole, when its file is closed, either
  way; an error in any part is raised by the next write or by the close."""
  # pylint: disable=import-outside-toplevel
  from apache_beam.io.aws.clients.s3 import messages

  class LeanUploader(base):
    """Beam's S3Uploader with a bytearray buffer, a lazy multipart upload
    and parts sent in the background (``_lean_uploader_class``)."""
    lean = True

    def __init__(self, client, path, mime_type="application/octet-stream"):  # pylint: disable=super-init-not-called
      # Beam's constructor sets these and then starts the upload.
      self._client = client
      self._path = path
      self._bucket, self._name = parse_s3_path(path)
      self._mime_type = mime_type
      self.part_number = 1
      self.buffer = bytearray()
      self.last_error = None
      self.upload_id = None
      self.parts = []
      self._in_flight = collections.deque()

    def put(self, data) -> None:
      while self._in_flight and self._in_flight[0].done():
        self._wait_for_oldest()  # raises a part's error as soon as it is in
      if self.last_error is not None:
        raise self.last_error  # pylint: disable=raising-bad-type
      self.buffer += data
      while len(self.buffer) >= PART_BYTES:
        if self.upload_id is None:
          self._start_upload()
        with memoryview(self.buffer) as view:
          part = bytes(view[:PART_BYTES])
        del self.buffer[:PART_BYTES]
        self._send(part)

    def finish(self) -> None:
      if self.last_error is not None:
        raise self.last_error  # pylint: disable=raising-bad-type
      if self.upload_id is None and hasattr(self._client, "client"):
        self._put_whole(bytes(self.buffer))
        self.buffer = bytearray()
        return
      if self.upload_id is None:  # a client other than Beam's boto3 one
        self._start_upload()
      if self.buffer or self.part_number == 1:
        part, self.buffer = bytes(self.buffer), bytearray()
        self._send(part)
      while self._in_flight:
        self._wait_for_oldest()
      super().finish()  # completes the upload with self.parts

    def _send(self, part: bytes) -> None:
      while len(self._in_flight) >= PARTS_IN_FLIGHT:
        self._wait_for_oldest()
      number, self.part_number = self.part_number, self.part_number + 1
      self._in_flight.append(
          _upload_threads().submit(self._upload_part, number, part))

    def _upload_part(self, number: int, data: bytes) -> dict:
      # On an upload thread; Beam's wrapper and its boto3 client are
      # thread-safe for this (no download state is touched).
      response = self._client.upload_part(messages.UploadPartRequest(
          self._bucket, self._name, self.upload_id, number, data))
      return {"ETag": response.etag, "PartNumber": response.part_number}

    def _wait_for_oldest(self) -> None:
      try:
        self.parts.append(self._in_flight.popleft().result())
      except Exception as e:  # pylint: disable=broad-except
        # As Beam's _write_to_s3 reports a part's error.
        self.last_error = e
        if isinstance(e, messages.S3ClientError) and e.code == 404:
          raise IOError(errno.ENOENT, "Not found: %s" % self._path) from e
        raise

    def _put_whole(self, data: bytes) -> None:
      try:
        self._client.client.put_object(
            Bucket=self._bucket, Key=self._name, Body=data,
            ContentType=self._mime_type)
      except Exception as e:  # pylint: disable=broad-except
        # As Beam's wrapper reports its other requests' errors.
        from apache_beam.io.aws.clients.s3 import boto3_client  # pylint: disable=import-outside-toplevel
        self.last_error = messages.S3ClientError(
            str(e), boto3_client.get_http_error_code(e))
        raise self.last_error from e

  LeanUploader.__name__ = LeanUploader.__qualname__ = "LeanUploader"
  return LeanUploader


def get_bytes(path: str, start: int = 0, stop: Optional[int] = None
              ) -> bytes:
  """Bytes ``[start, stop)`` of the S3 object ``path`` (``s3://bucket/key``;
  to its end where ``stop`` is None): one ranged ``GetObject`` through the
  process's shared client, with the S3 settings Beam's filesystems were
  given (``FileSystems.set_options``, as a worker's harness does). Beam's
  ``FileSystems.open`` asks for the object's size first (``HeadObject``)
  and then for everything from ``start`` to the object's end, and reading
  part of a file leaves the rest in flight. Fewer bytes where the object
  ends first, none from past its end. Raises ``FileNotFoundError`` for a
  missing object and ``OSError`` naming ``path`` for any other error. A
  read that breaks off (no HTTP status) or a server error is tried again,
  up to ``_GET_TRIES`` times in all, as Beam's reads are (botocore itself
  retries a request that gets no answer, not a body cut short)."""
  # pylint: disable=import-outside-toplevel
  from apache_beam.io.aws import s3io
  from apache_beam.io.aws.clients.s3 import boto3_client
  from apache_beam.io.filesystems import FileSystems
  if stop is not None and stop <= start:
    return b""
  share_s3_clients()
  filesystem = FileSystems.get_filesystem(path)
  client = s3io.S3IO(options=getattr(filesystem, "_options", None) or {}
                     ).client.client
  bucket, key = s3io.parse_s3_path(path)
  wanted = {}
  if start or stop is not None:
    wanted["Range"] = "bytes=%d-%s" % (start, "" if stop is None
                                       else stop - 1)
  attempt = 0
  while True:
    try:
      data = client.get_object(Bucket=bucket, Key=key, **wanted)["Body"].read()
    except Exception as e:  # pylint: disable=broad-except
      status = boto3_client.get_http_error_code(e)
      if status == 404:
        raise FileNotFoundError(errno.ENOENT, "Not found: %s" % path) from e
      if status == 416:
        return b""  # the range starts at or past the object's end
      attempt += 1
      if (status is None or status >= 500) and attempt < _GET_TRIES:
        time.sleep(_GET_BACKOFF_S * 2 ** (attempt - 1))
        continue
      raise OSError("could not read %s: %s" % (path, e)) from e
    if stop is not None and len(data) > stop - start:
      # A store that ignored the Range: never more than was asked for.
      raise OSError("%s: asked for %d bytes from %d, got %d" % (
          path, stop - start, start, len(data)))
    return data


class ObjectReader(io.RawIOBase):
  """A seekable raw reader of the S3 object ``path``: each ``readinto`` is
  one ranged ``GetObject`` for the bytes it asks for (``get_bytes``), so an
  ``io.BufferedReader`` over it fetches its buffer size at a time. Beam's
  S3 reader fetches 16 MiB from wherever a file is opened, however little
  is read: a 1 MiB input range, opened twice (transforms/reading.py), read
  32 MiB. ``SEEK_END`` asks for the object's size once (``HeadObject``)."""

  def __init__(self, path: str):
    super().__init__()
    self._path = path
    self._position = 0
    self._size: Optional[int] = None

  def readable(self) -> bool:
    return True

  def seekable(self) -> bool:
    return True

  def tell(self) -> int:
    return self._position

  def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
    if whence == io.SEEK_SET:
      position = offset
    elif whence == io.SEEK_CUR:
      position = self._position + offset
    elif whence == io.SEEK_END:
      if self._size is None:
        # pylint: disable=import-outside-toplevel
        from apache_beam.io.filesystems import FileSystems
        self._size = FileSystems.get_filesystem(self._path).size(self._path)
      position = self._size + offset
    else:
      raise ValueError("whence must be 0, 1 or 2, not %r" % whence)
    if position < 0:
      raise OSError(errno.EINVAL, "negative position in %s" % self._path)
    self._position = position
    return position

  def readinto(self, buffer) -> int:
    wanted = len(buffer)
    if self._size is not None:
      wanted = min(wanted, self._size - self._position)
    if wanted <= 0:
      return 0
    data = get_bytes(self._path, self._position, self._position + wanted)
    buffer[:len(data)] = data
    self._position += len(data)
    if len(data) < wanted:  # the object ends here: ask no more past it
      self._size = self._position
    return len(data)

  def readall(self) -> bytes:
    if self._size is not None and self._position >= self._size:
      return b""
    data = get_bytes(self._path, self._position)
    self._position += len(data)
    self._size = self._position
    return data
