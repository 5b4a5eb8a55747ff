"""The S3 writer of transforms/s3_clients.py against a fake S3 client: its
parts go up on upload threads while the writer goes on, never more than
``PARTS_IN_FLIGHT`` of an object at once, and an error in any part is
raised, never lost. (Against a real S3 server: tests/cluster/test_s3.py.)"""

import errno
import threading
import time

import pytest

from transforms import s3_clients

PART = 1024


class _FakeS3:
  """Beam's S3 client wrapper's upload calls; each part upload runs
  ``on_part(number)`` first."""

  def __init__(self, on_part=lambda number: None):
    self.on_part = on_part
    self.uploaded = {}
    self.completed = None
    self.running = 0
    self.most_at_once = 0
    self._lock = threading.Lock()

  def create_multipart_upload(self, request):
    del request
    return type("Response", (), {"upload_id": "u1"})

  def upload_part(self, request):
    with self._lock:
      self.running += 1
      self.most_at_once = max(self.most_at_once, self.running)
    try:
      self.on_part(request.part_number)
      self.uploaded[request.part_number] = bytes(request.bytes)
      return type("Response", (), {"etag": "e%d" % request.part_number,
                                   "part_number": request.part_number})
    finally:
      with self._lock:
        self.running -= 1

  def complete_multipart_upload(self, request):
    self.completed = request.parts


@pytest.fixture
def uploader(monkeypatch):
  from apache_beam.io.aws import s3io  # pylint: disable=import-outside-toplevel
  monkeypatch.setattr(s3_clients, "PART_BYTES", PART)
  beams = s3io.S3Uploader
  while getattr(beams, "lean", False):  # share_s3_clients() ran before
    beams = beams.__bases__[0]
  cls = s3_clients._lean_uploader_class(beams, s3io.parse_s3_path)  # pylint: disable=protected-access
  return lambda client: cls(client, "s3://bucket/key.bin")


def _data(n):
  return bytes(i % 251 for i in range(n))


def test_parts_go_up_while_the_writer_goes_on(uploader):
  """Two parts are written and the write returns while both uploads are
  still held back by the store; the close waits for them and completes
  the upload with every part in order."""
  release, entered = threading.Event(), threading.Semaphore(0)

  def on_part(number):
    if number <= 2:
      entered.release()
      assert release.wait(30)

  client = _FakeS3(on_part)
  writer = uploader(client)
  data = _data(2 * PART + 100)
  try:
    writer.put(memoryview(data))  # returns with parts 1 and 2 in flight
    assert entered.acquire(timeout=30) and entered.acquire(timeout=30)
    assert client.completed is None and not client.uploaded
  finally:
    release.set()
  writer.finish()
  assert client.completed == [{"ETag": "e%d" % n, "PartNumber": n}
                              for n in (1, 2, 3)]
  assert b"".join(client.uploaded[n] for n in (1, 2, 3)) == data


def test_no_more_than_parts_in_flight_at_once(uploader):
  client = _FakeS3(lambda number: time.sleep(0.02))
  writer = uploader(client)
  data = _data(9 * PART)
  for at in range(0, len(data), 300):
    writer.put(memoryview(data[at:at + 300]))
  writer.finish()
  assert 1 <= client.most_at_once <= s3_clients.PARTS_IN_FLIGHT
  assert [p["PartNumber"] for p in client.completed] == list(range(1, 10))
  assert b"".join(client.uploaded[n] for n in range(1, 10)) == data


@pytest.mark.parametrize("code", [500, 404])
def test_a_failed_part_is_raised_and_the_upload_not_completed(uploader,
                                                             code):
  """A part the store refuses fails the next write or the close, as
  Beam's writer reports it (404: ``IOError`` ENOENT), and every write and
  close after it fails too: the object never shows up."""
  from apache_beam.io.aws.clients.s3 import messages  # pylint: disable=import-outside-toplevel

  def on_part(number):
    if number == 1:
      raise messages.S3ClientError("refused", code)

  client = _FakeS3(on_part)
  writer = uploader(client)
  writer.put(memoryview(_data(PART + 10)))
  expected = IOError if code == 404 else messages.S3ClientError
  with pytest.raises(expected) as raised:
    # The next write raises it once the part has failed, or the close.
    while True:
      writer.put(memoryview(b"x"))
      if writer._in_flight and writer._in_flight[0].done():  # pylint: disable=protected-access
        writer.put(memoryview(b"x"))  # raises now
        break
      time.sleep(0.01)
  assert writer.last_error is not None
  if code == 404:
    assert raised.value.errno == errno.ENOENT
  with pytest.raises(Exception):
    writer.put(memoryview(b"more"))
  with pytest.raises(Exception):
    writer.finish()
  assert client.completed is None
