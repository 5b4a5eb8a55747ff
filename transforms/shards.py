"""Sharded file writing for Beam's file sinks, in the shape this project
needs: the writes fuse with the steps that make the records (``WriteShards``:
no side input, see its docstring), one shard per pool group when the pools
are read from files (``_WriteGroupsDoFn``, so a resumed run reuses whole
shards), and no file and no warning when there is nothing to write.

The examples (transforms/examples.py) and the records set aside
(transforms/rejects.py) are written through it.
"""

import collections
import concurrent.futures
import dataclasses
import json
import logging
import random
import uuid
from typing import Optional, Sequence, Tuple, Union

import apache_beam as beam
from apache_beam.io import filebasedsink
from apache_beam.io.filesystems import FileSystems
from apache_beam.transforms.window import GlobalWindow
from apache_beam.utils.timestamp import MIN_TIMESTAMP
from apache_beam.utils.windowed_value import WindowedValue

from transforms import metrics
from transforms import paths
from transforms import s3_clients

SHARD_PREFIX = "part"
# Counter prefix of each shard's record count (outputs.collect_metrics).
SHARD_RECORDS_PREFIX = "shard_records/"
# Shards a writer closes in the background (the upload's last part, the
# shard's size, its group's record) while it goes on with the next group;
# with this many closing, it waits for the oldest.
CLOSES_IN_FLIGHT = 2


@dataclasses.dataclass(frozen=True)
class GroupMark:
  """Where pool group ``group`` of ``groups`` begins (``end`` False) and
  ends (``end`` True) among the batches, when the pools are read from files
  (transforms/pool_files.py): masking passes it on, and the shard writer
  writes each group's batches into a shard of its own
  (``_WriteGroupsDoFn``)."""
  group: int
  groups: int
  end: bool


def _make_temp_dir(temp_dir: str) -> None:
  """Creates ``temp_dir`` where the filesystem has folders (not on S3);
  another worker may have made it first."""
  try:
    FileSystems.mkdirs(temp_dir)
  except IOError:
    pass


def group_record_path(done_dir: str, group: int) -> str:
  """Where the record of pool group ``group``'s finished shard goes."""
  return FileSystems.join(done_dir, "%05d.json" % group)


def write_group_record(done_dir: str, mark: GroupMark,
                       files: Sequence[Tuple[str, int]],
                       pool_files: Sequence[Tuple[str, int]] = (),
                       tally: Optional[metrics.Tally] = None,
                       **written) -> None:
  """Records pool group ``mark.group`` as finished, once all it writes is
  written (``group_record_path``), for ``--resume`` (pipelines/resume.py):
  ``files``, ``(name, bytes)`` of each file it wrote in the output folder
  (none for a group with no instance); ``pool_files``, the same of each it
  wrote in the pool directory; ``written``, what the format's last step
  needs of the group (JSON values); and ``tally``, what the steps since the
  pools' reading counted for it (by default this thread's
  ``metrics.Tally``). Written again after a failure, it holds the same."""
  if "://" not in done_dir:
    _make_temp_dir(done_dir)
  if tally is None:
    tally = metrics.current_tally() or metrics.Tally()
  record = dict(written, group=mark.group, groups=mark.groups,
                files=[[name, int(size)] for name, size in files],
                pool_files=[[name, int(size)] for name, size in pool_files],
                tally=tally.to_json())
  paths.write_whole(group_record_path(done_dir, mark.group),
                    json.dumps(record, sort_keys=True).encode("utf-8"))


def group_shard_name(sink: filebasedsink.FileBasedSink, group: int,
                     groups: int) -> str:
  """The full name of group ``group``'s shard: ``part-GGGGG-of-NNNNN`` with
  the format's suffix, as Beam's sinks name the shards."""
  return "%s-%05d-of-%05d%s" % (sink.file_path_prefix.get(), group, groups,
                                sink.file_name_suffix.get())


class _WriteGroupsDoFn(beam.DoFn):
  """One shard per group of pools (``num_shards`` 0, pools read from
  files). A group's batches arrive together between its two ``GroupMark``
  s, so its shard is written whole under its final name
  (``group_shard_name``: straight to it on an object store, which shows an
  object only once it is complete; on a local disk aside in ``temp_dir``,
  then renamed), with no rename step at the end of the job. Then the
  group's record goes to ``done_dir`` (``write_group_record``: the shard's
  name and size and what the group counted), which a resumed run reuses
  (pipelines/resume.py). A group built again after a failure writes the
  same bytes under the same name. A group with no instance writes no shard
  (Beam's S3 writer cannot write an empty object), only its record.
  Outputs each shard's name.

  A shard is closed on a thread of its own (``_finish_group``) while the
  next group is made, up to ``CLOSES_IN_FLIGHT`` at once: on S3 the close
  waits for the store to take the last part (or the whole of a shard under
  one part) and the group's record, time in which the worker made nothing.
  The bundle ends only once every close has ended, and raises the first
  close's error: a shard's name leaves the DoFn before its close ends, but
  a bundle that fails is not committed, so nothing downstream sees it."""

  def __init__(self, sink: filebasedsink.FileBasedSink, temp_dir: str,
               done_dir: str):
    self._sink = sink
    self._temp_dir = temp_dir
    self._done_dir = done_dir
    self._handle = None
    self._path = ""
    self._final = ""
    self._records = 0
    self._closer = None
    self._closing = collections.deque()

  def setup(self):
    s3_clients.share_s3_clients()
    if "://" not in self._temp_dir:
      _make_temp_dir(self._temp_dir)
    if "://" not in self._done_dir:
      _make_temp_dir(self._done_dir)
    self._closer = concurrent.futures.ThreadPoolExecutor(
        CLOSES_IN_FLIGHT, thread_name_prefix="shard-close")

  def start_bundle(self):
    self._handle = None
    self._closing = collections.deque()

  def process(self, element: Union[GroupMark, Tuple[int, object]]):
    if isinstance(element, GroupMark):
      if not element.end:
        self._final = group_shard_name(self._sink, element.group,
                                       element.groups)
        self._handle, self._records = None, 0
      else:
        yield from self._close(element)
      return
    records, value = element
    if self._handle is None:
      self._open(self._final)
    self._sink.write_record(self._handle, value)
    self._records += records

  def _open(self, final: str) -> None:
    self._path = (final if "://" in final else
                  FileSystems.join(self._temp_dir, uuid.uuid4().hex))
    self._handle = self._sink.open(self._path)
    self._records = 0

  def _close(self, mark: GroupMark):
    while len(self._closing) >= CLOSES_IN_FLIGHT:
      self._closing.popleft().result()
    handle, self._handle = self._handle, None
    if handle is not None:
      # Counted here, on the bundle's thread, where Beam's metrics and the
      # group's tally are.
      metrics.count(SHARD_RECORDS_PREFIX + self._final.rsplit("/", 1)[-1],
                    self._records)
    # What the group counted, as it is now: the thread's tally is the next
    # group's before the close ends.
    tally = metrics.Tally()
    tally.merge(metrics.current_tally() or metrics.Tally())
    self._closing.append(self._closer.submit(
        self._finish_group, mark, handle, self._path, self._final, tally))
    if handle is not None:
      yield self._final

  def _finish_group(self, mark: GroupMark, handle, path: str, final: str,
                    tally: metrics.Tally) -> None:
    """Closes group ``mark.group``'s shard (``handle``, written at
    ``path``; None for no shard), names it ``final`` and records the group
    as finished (``write_group_record``)."""
    files = []
    if handle is not None:
      self._sink.close(handle)
      if path != final:
        FileSystems.rename([path], [final])
      files.append((final.rsplit("/", 1)[-1], FileSystems.get_filesystem(
          final).metadata(final).size_in_bytes))
    write_group_record(self._done_dir, mark, files, tally=tally)

  def finish_bundle(self):
    # Every close ends before the bundle does, the failed ones too (a retry
    # of the bundle writes the same names).
    errors = []
    while self._closing:
      error = self._closing.popleft().exception()
      if error is not None:
        errors.append(error)
    for error in errors[1:]:
      logging.error("another shard's close failed too: %s: %s",
                    type(error).__name__, error)
    if errors:
      raise errors[0]
    if self._handle is not None:
      raise RuntimeError("a pool group's batches ended without its GroupMark")

  def teardown(self):
    if self._closer is not None:
      self._closer.shutdown(wait=True)
      self._closer = None


class _WriteBundleDoFn(beam.DoFn):
  """Appends each element to this bundle's temporary file of ``sink`` in
  ``temp_dir``; outputs the file's name when the bundle ends."""

  def __init__(self, sink: filebasedsink.FileBasedSink, temp_dir: str):
    self._sink = sink
    self._temp_dir = temp_dir
    self._writer = None
    self._records = 0

  def setup(self):
    s3_clients.share_s3_clients()
    _make_temp_dir(self._temp_dir)

  def start_bundle(self):
    self._writer = None

  def process(self, element: Union[GroupMark, Tuple[int, object]]):
    if isinstance(element, GroupMark):
      return
    records, value = element
    if self._writer is None:
      self._writer = self._sink.open_writer(self._temp_dir,
                                            uuid.uuid4().hex)
      self._records = 0
    self._writer.write(value)
    self._records += records

  def finish_bundle(self):
    if self._writer is not None:
      name, self._writer = self._writer.close(), None
      yield WindowedValue((name, self._records), MIN_TIMESTAMP,
                          [GlobalWindow()])


def _write_keyed(element, sink, temp_dir):
  """One shard's elements (``num_shards`` set) into one temporary file;
  yields ``(file name, records)``."""
  s3_clients.share_s3_clients()
  _make_temp_dir(temp_dir)
  writer = sink.open_writer(temp_dir, uuid.uuid4().hex)
  records = 0
  for n, value in element[1]:
    writer.write(value)
    records += n
  yield writer.close(), records


def _finalize(unused_element, sink, temp_dir: str, written, min_shards: int,
              count_records: bool = True):
  """Renames the temporary files to the final shard names (empty shards up
  to ``min_shards``), then removes ``temp_dir``: Beam's ``FileBasedSink``
  steps, as ``iobase.Write`` runs them. With ``count_records``, counts each
  final shard's records as ``SHARD_RECORDS_PREFIX + name`` (summary.json
  lists them with the shards): ``finalize_write`` gives the i-th of the
  sorted temporary files the i-th shard name. With no file and
  ``min_shards`` 0, writes nothing (where Beam's own writer warns)."""
  s3_clients.share_s3_clients()
  written = list(written)
  if not written and not min_shards:
    if FileSystems.exists(temp_dir):
      FileSystems.delete([temp_dir])
    return
  _make_temp_dir(temp_dir)
  for _ in range(min_shards - len(written)):
    written.append((sink.open_writer(temp_dir, uuid.uuid4().hex).close(), 0))
  names = [name for name, _ in written]
  records = dict(written)
  sink.pre_finalize(temp_dir, names)
  for i, name in enumerate(sorted(names)):
    if not count_records:
      break
    shard = sink._get_final_name(i, len(names))  # pylint: disable=protected-access
    metrics.count(SHARD_RECORDS_PREFIX + shard.rsplit("/", 1)[-1],
                  records[name])
  yield from sink.finalize_write(temp_dir, names, None)


def _remove_temp_dir(unused_element, temp_dir: str, written):
  """After every group's shard is written (``written``: their names):
  removes ``temp_dir``, where they were written aside, and yields the
  names."""
  written = list(written)
  if FileSystems.exists(temp_dir):
    FileSystems.delete([temp_dir])
  yield from written


class WriteShards(beam.PTransform):
  """``iobase.Write(sink)`` in another shape: the DoFn that writes the data
  gets the temporary directory when the graph is built, not through a side
  input.

  Why: Beam's Java pipeline fuser (the Flink job server's) starts a new stage
  at every ParDo with a side input. ``iobase.Write`` gives the writing ParDo
  one (the temporary directory), so every serialized example would leave the
  Python worker for the Flink TaskManager and come back to be written. Beam
  2.62's Flink runner holds a bundle's whole output in the TaskManager's
  heap until the bundle ends, and in batch a bundle is a worker's whole share
  of the stage: a 200 MB corpus then needs gigabytes of heap (docs/flink.md, "Memory
  on Flink"). Here the write fuses with the masking and serialization before
  it, and only file names leave the stage.

  With ``num_shards`` set, batches are dealt to the shards round robin and
  each shard is written whole after a GroupByKey (as ``iobase.Write`` does),
  which does send every example through the runner's shuffle.

  Input: ``(records, value)`` pairs, ``value`` what the sink appends (and
  ``GroupMark`` s, see ``_WriteGroupsDoFn``). ``empty_ok``: no file at all
  when there is no input (else one empty shard). ``count_records``: count
  each shard's records (``SHARD_RECORDS_PREFIX``).
  """

  def __init__(self, sink: filebasedsink.FileBasedSink, num_shards: int,
               done_dir: Optional[str] = None, empty_ok: bool = False,
               count_records: bool = True):
    super().__init__()
    self._sink = sink
    self._num_shards = num_shards
    self._done_dir = done_dir
    self._min_shards = 0 if empty_ok else max(1, num_shards)
    self._count_records = count_records

  def expand(self, pcoll):
    # Beside the shards, named as the sink names it: FileSystems.split makes
    # a local path absolute, as the paths the sink's finalize_write matches
    # against are (a relative temp_dir would find none of its files).
    base, _ = FileSystems.split(self._sink.file_path_prefix.get())
    temp_dir = FileSystems.join(
        base, "beam-temp-%s-%s" % (SHARD_PREFIX, uuid.uuid4().hex))
    sink, num_shards = self._sink, self._num_shards
    if self._done_dir and not num_shards:
      names = pcoll | "WriteGroups" >> beam.ParDo(
          _WriteGroupsDoFn(sink, temp_dir, self._done_dir))
      return (pcoll.pipeline
              | "Once" >> beam.Impulse()
              | "Finalize" >> beam.FlatMap(_remove_temp_dir, temp_dir,
                                           beam.pvalue.AsList(names)))
    if num_shards:
      names = (
          pcoll
          | "DealToShards" >> beam.ParDo(_DealToShards(num_shards))
          | "GroupShards" >> beam.GroupByKey()
          | "WriteShards" >> beam.FlatMap(_write_keyed, sink, temp_dir))
    else:
      names = pcoll | "WriteBundles" >> beam.ParDo(
          _WriteBundleDoFn(sink, temp_dir))
    return (
        pcoll.pipeline
        | "Once" >> beam.Impulse()
        | "Finalize" >> beam.FlatMap(_finalize, sink, temp_dir,
                                     beam.pvalue.AsList(names),
                                     self._min_shards, self._count_records))


class _DealToShards(beam.DoFn):
  """(shard, element), shards in turn from a random start per bundle."""

  def __init__(self, num_shards: int):
    self._num_shards = num_shards
    self._next = 0

  def start_bundle(self):
    self._next = random.randrange(self._num_shards)

  def process(self, element):
    if isinstance(element, GroupMark):
      return
    self._next = (self._next + 1) % self._num_shards
    yield self._next, element
