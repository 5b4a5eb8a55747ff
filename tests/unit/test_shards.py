"""The one-shard-per-group writer of transforms/shards.py closes each shard
in the background while the next group is made, and a bundle ends only
once its closes have: a failed close fails the bundle and records no group.
(What the shards hold: tests/unit/test_examples.py.)"""

import json
import os
import threading

import pytest
from apache_beam import coders
from apache_beam.io import filebasedsink

from transforms import shards
from transforms.shards import GroupMark


class _Sink(filebasedsink.FileBasedSink):
  """Appends bytes; each close runs ``on_close(written)`` first, with the
  bytes written to that file."""

  def __init__(self, prefix, on_close):
    super().__init__(prefix, coder=coders.BytesCoder(),
                     file_name_suffix=".bin")
    self.on_close = on_close
    self.written = {}

  def write_record(self, file_handle, value):
    file_handle.write(value)
    self.written[id(file_handle)] = self.written.get(id(file_handle),
                                                     b"") + value

  def close(self, file_handle):
    self.on_close(self.written.pop(id(file_handle)))
    super().close(file_handle)


def _group(writer, group, groups, values):
  names = list(writer.process(GroupMark(group, groups, end=False)))
  for value in values:
    names += list(writer.process((1, value)))
  return names + list(writer.process(GroupMark(group, groups, end=True)))


def _writer(tmp_path, on_close):
  writer = shards._WriteGroupsDoFn(  # pylint: disable=protected-access
      _Sink(str(tmp_path / "out" / "part"), on_close),
      str(tmp_path / "out" / "tmp"), str(tmp_path / "done"))
  writer.setup()
  writer.start_bundle()
  return writer


def test_a_shard_closes_while_the_next_group_is_made(tmp_path):
  release = threading.Event()
  closed_after_release = []
  writer = _writer(tmp_path, lambda written: closed_after_release.append(
      release.wait(30)))
  try:
    first = _group(writer, 0, 2, [b"a", b"b"])  # returns, its close held
    assert not os.path.exists(shards.group_record_path(
        str(tmp_path / "done"), 0))
    second = _group(writer, 1, 2, [b"c"])
    release.set()
    list(writer.finish_bundle() or [])
    # The bundle ended after its closes: every shard and record is there.
    assert closed_after_release == [True, True]
    for group in (0, 1):
      assert os.path.exists(shards.group_record_path(
          str(tmp_path / "done"), group))
  finally:
    release.set()
    writer.teardown()
  assert [os.path.basename(n) for n in first + second] == [
      "part-00000-of-00002.bin", "part-00001-of-00002.bin"]
  assert (tmp_path / "out" / "part-00000-of-00002.bin").read_bytes() == b"ab"
  for group, size in ((0, 2), (1, 1)):
    with open(shards.group_record_path(str(tmp_path / "done"), group)) as f:
      assert json.load(f)["files"] == [
          ["part-%05d-of-00002.bin" % group, size]]


def test_a_failed_close_fails_the_bundle_and_records_no_group(
    tmp_path, caplog, monkeypatch):
  """Each failed close is reported: the first one fails the bundle, the
  others are logged; a group whose close failed has no record and no
  shard, the others are whole. (Two closes at once: the third group's
  waits for the first group's, which succeeds.)"""
  monkeypatch.setattr(shards, "CLOSES_IN_FLIGHT", 2)
  def on_close(written):
    if written != b"group 0":
      raise OSError("the store refused " + written.decode())

  writer = _writer(tmp_path, on_close)
  try:
    for group in range(3):
      _group(writer, group, 3, [b"group %d" % group])
    with pytest.raises(OSError, match="refused"):
      list(writer.finish_bundle() or [])
  finally:
    writer.teardown()
  assert "another shard's close failed too: OSError" in caplog.text
  done = str(tmp_path / "done")
  assert [os.path.exists(shards.group_record_path(done, g))
          for g in range(3)] == [True, False, False]
  assert sorted(p.name for p in (tmp_path / "out").iterdir()
                if p.is_file()) == ["part-00000-of-00003.bin"]
