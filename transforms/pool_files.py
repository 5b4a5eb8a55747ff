"""The random-next pools gathered through files instead of a GroupByKey.

Beam's DirectRunner keeps all of a GroupByKey's data in its own process's
memory, and Beam 2.62's Flink runner holds each worker's whole output to a
GroupByKey in the TaskManager's heap. Grouping every document pass by pool
that way holds dupe_factor copies of the tokenized corpus, growing with the
corpus. Instead the grouping goes through files in a directory of any Beam
filesystem that every worker can reach: a local folder on one machine, an
``s3://`` prefix on a cluster whose hosts share nothing else.

* ``SpillDocuments``: each worker gathers the tokenized documents it makes
  into files (about ``FILE_BYTES`` of documents each). A file holds one
  record per document *pass* (``--dupe_factor`` records per document),
  sorted by the pass's ``entry_hash``, each record carrying its hash; beside
  it, a sparse index holds the hash and byte offset of every
  ``SPARSE_EVERY``-th record. The elements out are ``SpillFile`` s: a name,
  the number of records and of bytes.
* A pool is a range of hashes (``transforms.pools.pool_bounds``), and a *group* of
  consecutive pools is one too (``num_groups``: about ``GROUP_BYTES`` of
  records, at least ``MIN_GROUPS`` groups), so a group's records are one
  contiguous byte range of every file, found in the sparse index. A worker
  reads that range from each file (one ranged read per file: few requests
  on an object store), builds the group's pools one after the other and
  moves on to the next group.

The pools, their entries and so the examples are the same as through the
GroupByKey (tests/unit/test_instances.py runs both). Memory: a worker holds one
file's worth of documents while writing, and one group's records while
reading, plus the sparse indexes (16 bytes per ``SPARSE_EVERY`` records);
the runner holds group ids and ``SpillFile`` s. Disk or object store: the
records, ``--dupe_factor`` copies of the tokenized corpus (about half a byte
per byte of English text each), removed after the run.
"""

import array
import collections
import dataclasses
import io
import json
import math
import os
import struct
import uuid
from typing import (AbstractSet, Callable, Dict, Iterator, List, Optional,
                    Sequence, Tuple, Union)

import apache_beam as beam
import numpy as np
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems
from apache_beam.transforms.window import GlobalWindow
from apache_beam.utils.timestamp import MIN_TIMESTAMP
from apache_beam.utils.windowed_value import WindowedValue

from transforms import metrics, paths, rejects, s3_clients, shards
from transforms.pools import entry_hashes, num_pools, pool_bounds
from transforms.tokenization import TokenizedDocument

FILE_BYTES = 32 << 20
GROUP_BYTES = 64 << 20
MIN_GROUPS = 64
SPARSE_EVERY = 64
DATA_SUFFIX = ".docs"
INDEX_SUFFIX = ".index.npy"
REJECTED_SUFFIX = ".rejected.jsonl"
# The spilled stage's record of its files, written once it is done.
MANIFEST = "spilled.json"
SPARSE_DTYPE = np.dtype([("hash", "<u8"), ("offset", "<u8")])
# A record: the pass's entry hash, the dupe pass, doc id length, ids length
# (bytes), sentence count, the ids' dtype as a numpy type string of 3 bytes;
# then the doc id, the ids and the sentence lengths.
_HEADER = struct.Struct("<QHIII3s")
_PASS = struct.Struct("<QH")  # the header's first two fields
# Each document's passes: one number for all (--dupe_factor), or a function
# of the document id (InstanceParams.passes_of).
Passes = Union[int, Callable[[str], int]]


@dataclasses.dataclass(frozen=True)
class SpillFile:
  """One spill file: ``name`` (in the pool directory), its record count and
  its size in bytes (0 and 0 for an entry that only carries counts).
  ``tally``: what the work up to this file counted (``metrics.Tally`` as
  JSON), ``rejected``: the name of the file holding the records it set
  aside, or "" — so a resumed run can reuse the stage whole
  (pipelines/resume.py)."""
  name: str
  records: int
  size: int
  tally: str = ""
  rejected: str = ""


def write_manifest(directory: str, files: Sequence[SpillFile]) -> None:
  """Records the spilled stage as done: every ``SpillFile`` it made, in
  ``directory``/``MANIFEST``."""
  paths.write_whole(_path(directory, MANIFEST), json.dumps(
      [dataclasses.asdict(f) for f in sorted(files, key=lambda f: f.name)],
      sort_keys=True).encode("utf-8"))


def read_manifest(directory: str) -> Optional[List[SpillFile]]:
  """The ``SpillFile`` s ``write_manifest`` recorded in ``directory``, or
  None when there is no readable manifest."""
  try:
    return [SpillFile(**value) for value in json.loads(
        paths.read_bytes(_path(directory, MANIFEST)))]
  except Exception:  # pylint: disable=broad-except
    return None


def write_rejected(directory: str, records: Sequence[rejects.Rejected]) -> str:
  """Saves records set aside before the spill as JSON lines in
  ``directory``; returns the file's name."""
  name = uuid.uuid4().hex + REJECTED_SUFFIX
  paths.write_whole(_path(directory, name), b"".join(
      json.dumps(dataclasses.asdict(r), sort_keys=True).encode("utf-8")
      + b"\n" for r in records))
  return name


def read_rejected(directory: str, name: str) -> Iterator[rejects.Rejected]:
  """The records ``write_rejected`` saved in ``directory``/``name``."""
  for line in paths.read_bytes(_path(directory, name)).splitlines():
    if line.strip():
      yield rejects.Rejected(**json.loads(line))


def encode_document(doc: TokenizedDocument) -> bytes:
  """The part of a record after its hash and dupe pass."""
  doc_id = doc.doc_id.encode("utf-8")
  ids = doc.ids.tobytes()
  lengths = doc.sentence_lengths.astype("<i4", copy=False).tobytes()
  return b"".join((struct.pack("<III3s", len(doc_id), len(ids),
                               doc.sentence_lengths.size,
                               doc.ids.dtype.str.encode("ascii")),
                   doc_id, ids, lengths))


def decode_records(data: bytes, lo: int, hi: int
                   ) -> Iterator[Tuple[int, int, TokenizedDocument]]:
  """``(hash, dupe pass, document)`` of the records in ``data`` (whole
  records, back to back) whose hash is in ``[lo, hi)``."""
  view = memoryview(data)
  pos = 0
  while pos < len(data):
    h, dupe, id_len, ids_len, sentences, dtype = _HEADER.unpack_from(data, pos)
    start = pos + _HEADER.size
    pos = start + id_len + ids_len + 4 * sentences
    if not lo <= h < hi:
      continue
    dtype = _DTYPES.get(dtype) or _DTYPES.setdefault(
        dtype, np.dtype(dtype.decode("ascii")))
    doc_id = bytes(view[start:start + id_len]).decode("utf-8")
    start += id_len
    ids = np.frombuffer(data, dtype=dtype, count=ids_len // dtype.itemsize,
                        offset=start)
    lengths = np.frombuffer(data, dtype=_LENGTHS, count=sentences,
                            offset=start + ids_len)
    if _LENGTHS != np.int32:  # a big-endian machine
      lengths = lengths.astype(np.int32)
    yield h, dupe, TokenizedDocument(doc_id, ids, lengths)


# The token dtypes of the records, by their code (``encode_document``).
_DTYPES: Dict[bytes, np.dtype] = {}
_LENGTHS = np.dtype("<i4")


def _path(directory: str, name: str) -> str:
  return FileSystems.join(directory, name)


class SpillBuffer:
  """The records of one spill file as they are gathered: each document's
  encoding once (``encode_document``) and the hash of each of its passes.
  ``passes``: every document's number of passes (``--dupe_factor``), or a
  function from a document id to its number (multilingual sampling:
  ``InstanceParams.passes_of``). ``size``: the bytes held, about what the
  file will hold per pass."""

  def __init__(self, seed: int, passes: Passes):
    self._seed = seed
    self._passes = passes
    self._bodies: List[bytes] = []
    self._body_of = array.array("I")  # each pass's body
    self._dupes = array.array("H")  # each pass's number
    self._hashes = array.array("Q")
    self.size = 0

  def add(self, doc: TokenizedDocument) -> None:
    passes = (self._passes if isinstance(self._passes, int)
              else self._passes(doc.doc_id))
    if not passes:
      return
    self._bodies.append(encode_document(doc))
    self._hashes.extend(entry_hashes(self._seed, doc.doc_id, passes))
    self._body_of.extend([len(self._bodies) - 1] * passes)
    self._dupes.extend(range(passes))
    self.size += len(self._bodies[-1]) + 8 * passes

  def write(self, directory: str) -> SpillFile:
    """Writes the records (every pass, sorted by hash; equal hashes by
    document then pass) and their sparse index into ``directory``."""
    name = uuid.uuid4().hex
    hashes = np.frombuffer(self._hashes, dtype=np.uint64)
    entries = np.argsort(hashes, kind="stable")
    sparse = np.zeros(-(-entries.size // SPARSE_EVERY), dtype=SPARSE_DTYPE)
    offset = 0
    with FileSystems.create(_path(directory, name + DATA_SUFFIX),
                            compression_type=CompressionTypes.UNCOMPRESSED
                            ) as f:
      for k, (entry, h) in enumerate(zip(entries.tolist(),
                                         hashes[entries].tolist())):
        if k % SPARSE_EVERY == 0:
          sparse[k // SPARSE_EVERY] = (h, offset)
        body = self._bodies[self._body_of[entry]]
        f.write(_PASS.pack(h, self._dupes[entry]))
        f.write(body)
        offset += _PASS.size + len(body)
    buffer = io.BytesIO()
    np.save(buffer, sparse, allow_pickle=False)
    with FileSystems.create(_path(directory, name + INDEX_SUFFIX),
                            compression_type=CompressionTypes.UNCOMPRESSED
                            ) as f:
      f.write(buffer.getvalue())
    return SpillFile(name, int(entries.size), offset)


def write_file(directory: str, docs: Sequence[TokenizedDocument], seed: int,
               passes: "Passes") -> SpillFile:
  """Writes the records of ``docs`` (every dupe pass, sorted by hash) and
  their sparse index into ``directory``."""
  buffer = SpillBuffer(seed, passes)
  for doc in docs:
    buffer.add(doc)
  return buffer.write(directory)


def byte_range(sparse: np.ndarray, size: int, lo: int, hi: int
               ) -> Tuple[int, int]:
  """The bytes of a file (``size`` bytes, sparse index ``sparse``) that hold
  every record whose hash is in ``[lo, hi)``: from the last indexed record
  below ``lo`` to the first indexed one at or above ``hi``. A few records
  outside the range come along; ``decode_records`` drops them."""
  hashes = sparse["hash"]
  first = int(np.searchsorted(hashes, np.uint64(lo), side="left")) - 1
  start = int(sparse["offset"][first]) if first >= 0 else 0
  if hi >> 64:
    return start, size
  last = int(np.searchsorted(hashes, np.uint64(hi), side="left"))
  return start, int(sparse["offset"][last]) if last < len(hashes) else size


def num_groups(pools: int, size: int) -> int:
  """Groups of consecutive pools: about ``GROUP_BYTES`` of the ``size``
  bytes of records each, at least ``MIN_GROUPS`` to spread over the
  workers, at most one per pool."""
  return max(1, min(pools, max(MIN_GROUPS, math.ceil(size / GROUP_BYTES))))


def group_pools(group: int, groups: int, pools: int) -> range:
  """The pools of ``group``: a run of consecutive pools, never empty."""
  return range(group * pools // groups, (group + 1) * pools // groups)


class _SpillDoFn(beam.DoFn):
  """Tokenized documents → ``SpillFile`` s (see the module docstring).

  A document is encoded as it arrives and only its bytes and the hashes of
  its passes are kept (``SpillBuffer``), so a worker holds about
  ``file_bytes`` while it gathers a file, not the documents' objects.

  Each ``SpillFile`` carries what the bundle's steps counted since the
  last one, and the records they set aside are saved beside it: a
  ``metrics.Tally`` opened when the bundle starts gathers both, since the
  steps from the reading on run fused with this one, on its thread. With
  the manifest ``_PlanGroups`` writes, that makes the stage reusable whole
  by ``--resume``."""

  def __init__(self, directory: str, seed: int, passes: "Passes",
               file_bytes: int = FILE_BYTES):
    self._directory = directory
    self._seed = seed
    self._passes = passes
    self._file_bytes = file_bytes
    self._buffer = SpillBuffer(seed, passes)

  def setup(self):
    s3_clients.share_s3_clients()
    # The driver made a local directory on its own machine; a worker on
    # another host makes it too. If that host does not share the mount,
    # the files written here are missing elsewhere and ReadPools fails on
    # opening them: no pool is read short. Object stores need no folders.
    if "://" not in self._directory:
      os.makedirs(self._directory, exist_ok=True)

  def start_bundle(self):
    self._buffer = SpillBuffer(self._seed, self._passes)
    # Spill files written when the tally filled up with records set aside
    # (the steps before this one set them aside, so they show up here
    # only at the next document or at the bundle's end).
    self._pending: List[SpillFile] = []
    metrics.start_tally(self._tally_full)

  def _tally_full(self) -> None:
    self._pending.append(self._flush())

  def process(self, doc: TokenizedDocument):
    yield from self._take_pending()
    self._buffer.add(doc)
    if self._buffer.size >= self._file_bytes:
      yield self._flush()

  def _take_pending(self) -> List[SpillFile]:
    pending, self._pending = self._pending, []
    return pending

  def finish_bundle(self):
    for spilled in self._take_pending():
      yield WindowedValue(spilled, MIN_TIMESTAMP, [GlobalWindow()])
    if self._buffer.size or metrics.current_tally():
      yield WindowedValue(self._flush(), MIN_TIMESTAMP, [GlobalWindow()])
    metrics.stop_tally()

  def _flush(self) -> SpillFile:
    spilled = (self._buffer.write(self._directory) if self._buffer.size
               else SpillFile("", 0, 0))
    tally = metrics.current_tally() or metrics.Tally()
    rejected = (write_rejected(self._directory, tally.rejected)
                if tally.rejected else "")
    self._buffer = SpillBuffer(self._seed, self._passes)
    metrics.start_tally(self._tally_full)
    return dataclasses.replace(spilled, tally=json.dumps(tally.to_json()),
                               rejected=rejected)


# A pool's id and its entries, (dupe pass, document) → its instance
# batches: instances.pool_builder's, with the objective's settings bound.
PoolBuilder = Callable[[int, Sequence[Tuple[int, TokenizedDocument]]],
                       Iterator]


class _ReadPoolGroupDoFn(beam.DoFn):
  """Group id → the instances of the group's pools, read from the files
  and built by ``build``."""

  def __init__(self, directory: str, build: PoolBuilder, pool_size: int):
    self._directory = directory
    self._build = build
    self._pool_size = pool_size
    self._indexes: Dict[str, np.ndarray] = {}

  def setup(self):
    s3_clients.share_s3_clients()
    self._indexes = {}

  def _read(self, name: str, suffix: str, start: int = 0,
            stop: Optional[int] = None) -> bytes:
    return paths.read_bytes(_path(self._directory, name + suffix), start,
                            stop)

  def _index(self, name: str) -> np.ndarray:
    if name not in self._indexes:
      self._indexes[name] = np.load(io.BytesIO(self._read(name, INDEX_SUFFIX)),
                                    allow_pickle=False)
    return self._indexes[name]

  def entries(self, lo: int, hi: int, files: Sequence[SpillFile]
              ) -> Iterator[Tuple[int, int, TokenizedDocument]]:
    """``(hash, dupe pass, document)`` of every record with a hash in
    ``[lo, hi)``, one ranged read per file."""
    for spilled in sorted(files, key=lambda f: f.name):
      if not spilled.records:
        continue  # counts only
      start, stop = byte_range(self._index(spilled.name), spilled.size, lo, hi)
      if stop > start:
        yield from decode_records(
            self._read(spilled.name, DATA_SUFFIX, start, stop), lo, hi)

  def process(self, group: int, files: List[SpillFile]):
    """Yields the group's ``InstanceBatch`` es between its two
    ``shards.GroupMark`` s. What the steps fused after this one count for
    the group goes to a ``metrics.Tally`` of its own, which the shard
    writer saves with the group's shard (transforms/examples.py)."""
    metrics.start_tally()
    pools = num_pools(sum(f.records for f in files),
                                self._pool_size)
    groups = num_groups(pools, sum(f.size for f in files))
    members = group_pools(group, groups, pools)
    yield shards.GroupMark(group, groups, end=False)
    lo = pool_bounds(members.start, pools)[0]
    hi = pool_bounds(members.stop - 1, pools)[1]
    by_pool = collections.defaultdict(list)
    for h, dupe, doc in self.entries(lo, hi, files):
      by_pool[(h * pools) >> 64].append((dupe, doc))
    for pool in members:
      if by_pool[pool]:
        yield from self._build(pool, by_pool.pop(pool))
    yield shards.GroupMark(group, groups, end=True)

  def finish_bundle(self):
    metrics.stop_tally()

  def teardown(self):
    self._indexes = {}


class _PlanGroups(beam.DoFn):
  """Once every document is spilled: records the spilled stage as done
  (``write_manifest``), then yields the id of every group of pools still to
  build: all but those in ``done``, groups whose shards a run with the same
  flags and input already wrote (pipelines/resume.py). Run again after a
  failure, it writes the same manifest."""

  def __init__(self, directory: str, pool_size: int,
               done: AbstractSet[int] = frozenset()):
    self._directory = directory
    self._pool_size = pool_size
    self._done = frozenset(done)

  def setup(self):
    s3_clients.share_s3_clients()

  def process(self, unused_element, files: List[SpillFile]) -> Iterator[int]:
    write_manifest(self._directory, files)
    pools = num_pools(sum(f.records for f in files),
                                self._pool_size)
    for group in range(num_groups(pools, sum(f.size for f in files))):
      if group not in self._done:
        yield group


class SpillDocuments(beam.PTransform):
  """Tokenized documents (and the ``rejects.Rejected`` records set aside
  before them, if they are flattened in) → ``SpillFile`` s in
  ``directory``."""

  def __init__(self, directory: str, seed: int, passes: "Passes"):
    super().__init__()
    self._directory = directory
    self._seed = seed
    self._passes = passes

  def expand(self, docs):
    return docs | "Spill" >> beam.ParDo(_SpillDoFn(
        self._directory, self._seed, self._passes))


class InstancesFromSpill(beam.PTransform):
  """``SpillFile`` s → instance batches (made by ``build``), each group's
  between its ``shards.GroupMark`` s; the groups in ``done`` are
  skipped. ``spread``: redistribute the groups over the workers (a
  Reshuffle; ``False`` for a job with one worker)."""

  def __init__(self, build: PoolBuilder, pool_size: int, directory: str,
               done: AbstractSet[int] = frozenset(), *, spread: bool = True):
    super().__init__()
    self._build = build
    self._pool_size = pool_size
    self._directory = directory
    self._done = done
    self._spread = spread

  def expand(self, files):
    groups = (
        files.pipeline
        | "Start" >> beam.Impulse()
        | "GroupIds" >> beam.ParDo(
            _PlanGroups(self._directory, self._pool_size, self._done),
            files=beam.pvalue.AsList(files)))
    if self._spread:
      groups |= "Spread" >> beam.Reshuffle()
    return (
        groups
        | "ReadPools" >> beam.ParDo(
            _ReadPoolGroupDoFn(self._directory, self._build, self._pool_size),
            files=beam.pvalue.AsList(files)))


class CreateInstancesFromFiles(beam.PTransform):
  """Tokenized documents → ``InstanceBatch`` es (and ``GroupMark`` s), the
  pools gathered through files in ``directory`` (any Beam filesystem; the
  caller removes it): ``SpillDocuments``, then ``InstancesFromSpill``
  (``spread`` as there)."""

  def __init__(self, build: PoolBuilder, seed: int, passes: "Passes",
               pool_size: int, directory: str, *, spread: bool = True):
    super().__init__()
    self._spread = spread
    self._build = build
    self._seed = seed
    self._passes = passes
    self._pool_size = pool_size
    self._directory = directory

  def expand(self, docs):
    files = docs | "SpillDocuments" >> SpillDocuments(
        self._directory, self._seed, self._passes)
    return files | InstancesFromSpill(self._build, self._pool_size,
                                      self._directory, spread=self._spread)
