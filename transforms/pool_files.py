"""The random-next pools gathered through files instead of a GroupByKey.

Beam's DirectRunner keeps all of a GroupByKey's data in its own process's
memory, and Beam 2.62's Flink runner holds each worker's whole output to a
GroupByKey in the TaskManager's heap. Grouping every document pass by pool
that way holds dupe_factor copies of the tokenized corpus, growing with the
corpus. Where the workers share a filesystem (one machine, or a shared
mount), the grouping can go through a directory that every worker reads:

* ``SpillDocuments``: each worker appends the tokenized documents it makes to
  files of about 32 MB (each document once, ``--dupe_factor`` or not), and
  writes beside each an index with one row per dupe pass: the pass's
  ``entry_hash``, the document's offset and size, sorted by hash. The
  elements out are the file names.
* A pool is a range of hashes (``instances.pool_bounds``), so its entries
  are one run of rows in every index: ``ReadPools`` finds each pool's runs by
  binary search, reads the documents they name and builds the pool's
  instances, one pool at a time.

The pools, their entries and so the examples are the same as through the
GroupByKey (tests/test_instances.py runs both). Memory: a worker holds one
file's worth of documents while writing, and one pool while reading (the
indexes are memory-mapped); the runner holds pool ids and file names.
"""

import os
import struct
import uuid
from typing import Dict, Iterator, List, Tuple

import apache_beam as beam
import numpy as np
from apache_beam.transforms.window import GlobalWindow
from apache_beam.utils.timestamp import MIN_TIMESTAMP
from apache_beam.utils.windowed_value import WindowedValue

from transforms import instances
from transforms.tokenization import TokenizedDocument

FILE_BYTES = 32 << 20
DATA_SUFFIX = ".docs"
INDEX_SUFFIX = ".index.npy"
INDEX_DTYPE = np.dtype([("hash", "<u8"), ("offset", "<u8"), ("size", "<u4"),
                        ("dupe", "<u2")])
# A document record: doc id length, ids length (bytes), sentence count,
# the ids' dtype as a numpy type string of 3 bytes; then the three parts.
_HEADER = struct.Struct("<III3s")


def encode_document(doc: TokenizedDocument) -> bytes:
  doc_id = doc.doc_id.encode("utf-8")
  ids = doc.ids.tobytes()
  lengths = doc.sentence_lengths.astype("<i4", copy=False).tobytes()
  return b"".join((_HEADER.pack(len(doc_id), len(ids), doc.sentence_lengths.size,
                                doc.ids.dtype.str.encode("ascii")),
                   doc_id, ids, lengths))


def decode_document(data: bytes) -> TokenizedDocument:
  id_len, ids_len, sentences, dtype = _HEADER.unpack_from(data)
  start = _HEADER.size
  doc_id = data[start:start + id_len].decode("utf-8")
  start += id_len
  ids = np.frombuffer(data, dtype=np.dtype(dtype.decode("ascii")),
                      count=ids_len // np.dtype(dtype.decode("ascii")).itemsize,
                      offset=start)
  lengths = np.frombuffer(data, dtype="<i4", count=sentences,
                          offset=start + ids_len)
  return TokenizedDocument(doc_id, ids, lengths.astype(np.int32, copy=False))


def write_file(directory: str, docs: List[TokenizedDocument], seed: int,
               dupe_factor: int) -> str:
  """Writes ``docs`` and their index; returns the files' common name."""
  name = uuid.uuid4().hex
  rows = np.zeros(len(docs) * dupe_factor, dtype=INDEX_DTYPE)
  offset = 0
  path = os.path.join(directory, name)
  with open(path + DATA_SUFFIX, "wb") as f:
    for i, doc in enumerate(docs):
      record = encode_document(doc)
      f.write(record)
      for dupe in range(dupe_factor):
        rows[i * dupe_factor + dupe] = (
            instances.entry_hash(seed, doc.doc_id, dupe), offset, len(record),
            dupe)
      offset += len(record)
  rows.sort(order="hash", kind="stable")
  with open(path + INDEX_SUFFIX, "wb") as f:
    np.save(f, rows, allow_pickle=False)
  return name


def pool_rows(index: np.ndarray, pool: int, pools: int) -> np.ndarray:
  """The rows of a hash-sorted index that belong to ``pool``."""
  lo, hi = instances.pool_bounds(pool, pools)
  hashes = index["hash"]
  start = int(np.searchsorted(hashes, np.uint64(lo), side="left"))
  end = (len(hashes) if hi >> 64 else
         int(np.searchsorted(hashes, np.uint64(hi), side="left")))
  return index[start:end]


class _SpillDoFn(beam.DoFn):
  """Tokenized documents → file names (see the module docstring)."""

  def __init__(self, directory: str, seed: int, dupe_factor: int,
               file_bytes: int = FILE_BYTES):
    self._directory = directory
    self._seed = seed
    self._dupe_factor = dupe_factor
    self._file_bytes = file_bytes
    self._docs: List[TokenizedDocument] = []
    self._size = 0

  def setup(self):
    # The driver made it, on its own machine. If this worker's host does not
    # share that mount, the files written here are missing elsewhere and
    # ReadPools fails on opening them: no pool is read short.
    os.makedirs(self._directory, exist_ok=True)

  def start_bundle(self):
    self._docs, self._size = [], 0

  def process(self, doc: TokenizedDocument):
    self._docs.append(doc)
    self._size += doc.ids.nbytes + doc.sentence_lengths.nbytes + 64
    if self._size >= self._file_bytes:
      yield self._flush()

  def finish_bundle(self):
    if self._docs:
      yield WindowedValue(self._flush(), MIN_TIMESTAMP, [GlobalWindow()])

  def _flush(self) -> str:
    name = write_file(self._directory, self._docs, self._seed,
                      self._dupe_factor)
    self._docs, self._size = [], 0
    return name


class _ReadPoolsDoFn(beam.DoFn):
  """Pool id → the pool's instances, read from the files."""

  def __init__(self, directory: str, params: instances.InstanceParams,
               cls_id: int, sep_id: int, pool_size: int):
    self._directory = directory
    self._params = params
    self._cls_id = cls_id
    self._sep_id = sep_id
    self._pool_size = pool_size
    self._indexes: Dict[str, np.ndarray] = {}
    self._fds: Dict[str, int] = {}

  def setup(self):
    self._indexes, self._fds = {}, {}

  def _index(self, name: str) -> np.ndarray:
    if name not in self._indexes:
      # Memory-mapped: a binary search touches a few pages, so the indexes
      # of a large corpus need not fit in a worker's memory.
      self._indexes[name] = np.load(
          os.path.join(self._directory, name + INDEX_SUFFIX),
          mmap_mode="r", allow_pickle=False)
      self._fds[name] = os.open(
          os.path.join(self._directory, name + DATA_SUFFIX), os.O_RDONLY)
    return self._indexes[name]

  def entries(self, pool: int, pools: int, names: List[str]
              ) -> List[Tuple[int, TokenizedDocument]]:
    out = []
    for name in sorted(names):
      for row in pool_rows(self._index(name), pool, pools).tolist():
        _, offset, size, dupe = row
        out.append((dupe, decode_document(
            os.pread(self._fds[name], size, offset))))
    return out

  def process(self, pool: int, names: List[str], total: int
              ) -> Iterator[instances.InstanceBatch]:
    pools = instances.num_pools(total * self._params.dupe_factor,
                                self._pool_size)
    yield from instances.build_pool(pool, self.entries(pool, pools, names),
                                    self._params, self._cls_id, self._sep_id)

  def teardown(self):
    for fd in self._fds.values():
      os.close(fd)
    self._indexes, self._fds = {}, {}


class CreateInstancesFromFiles(beam.PTransform):
  """Tokenized documents → ``InstanceBatch`` es, the pools gathered through
  files in ``directory`` (created if missing; the caller removes it)."""

  def __init__(self, params: instances.InstanceParams, cls_id: int,
               sep_id: int, pool_size: int, directory: str, total):
    super().__init__()
    self._params = params
    self._cls_id = cls_id
    self._sep_id = sep_id
    self._pool_size = pool_size
    self._directory = directory
    self._total = total  # PCollection: the number of documents

  def expand(self, docs):
    os.makedirs(self._directory, exist_ok=True)
    params = self._params
    names = docs | "SpillDocuments" >> beam.ParDo(_SpillDoFn(
        self._directory, params.random_seed, params.dupe_factor))
    pool_size = self._pool_size

    def pool_ids(_, total):
      return range(instances.num_pools(total * params.dupe_factor, pool_size))

    return (
        docs.pipeline
        | "Start" >> beam.Impulse()
        | "PoolIds" >> beam.FlatMap(
            pool_ids, total=beam.pvalue.AsSingleton(self._total))
        # Spread the pools over the workers.
        | "Spread" >> beam.Reshuffle()
        | "ReadPools" >> beam.ParDo(
            _ReadPoolsDoFn(self._directory, params, self._cls_id,
                           self._sep_id, pool_size),
            names=beam.pvalue.AsList(names),
            total=beam.pvalue.AsSingleton(self._total)))
