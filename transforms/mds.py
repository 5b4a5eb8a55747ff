"""MosaicML Streaming's MDS shards (``--output_format=mds``): what
Composer trainers (ModernBERT's among them) read with
``streaming.StreamingDataset`` or ``LocalDataset``, masking at training
time.

The format, as mosaicml-streaming 0.13 writes it (``MDSWriter``,
``JointWriter``, ``encodings.NDArray``), all little-endian:

* A shard: the sample count (uint32), the offset of every sample and of
  the end (uint32 ``[n + 1]``, from the file's start), the shard's
  configuration as JSON (keys sorted), then the samples.
* A sample: a uint32 size for each column of no fixed size, then every
  column's bytes, columns in name order. ``ndarray:DTYPE`` (a 1-d array):
  one byte ``ndim << 2 | shape dtype`` (1 dimension; 0: uint8, 1: uint16,
  2: uint32 lengths), the length, then the values. A scalar ``uint8``: one
  byte.
* ``index.json``: ``{"shards": [...], "version": 2}``; each shard's entry
  is its configuration plus ``samples``, ``raw_data`` and ``zip_data``
  (basename, bytes, hashes; ``zip_data`` is the compressed file, or null).

Which trainers read it: mosaicml-streaming's own datasets, and so
ModernBERT's ``NoStreamingDataset`` (``streaming: false``, its pretraining
configurations' choice), which reads ``ndarray`` columns from a split's
folder (``--output=DATA/train``) of raw shards. ModernBERT's
``StreamingTextDataset`` (``streaming: true``) reads ``input_ids`` as int64
``bytes`` instead (llm-foundry's older layout), which this does not write.

Columns (``columns``): ``input_ids`` (uint16 for a vocabulary of at most
65,536 ids, uint32 above), ``token_type_ids`` (uint8) where sequences have
two segments (``--packing=pairs``), and the sentence label
(``next_sentence_label`` / ``sentence_order_label``, uint8) with a sentence
task. Rows are unpadded, so there is no ``attention_mask`` (all ones): the
trainer's collator pads and makes it. Nothing is masked here.

Shards are cut per pool group, in the group's order, when the next sample
would take the shard past ``--mds_shard_bytes`` (MDS's own rule: the
header, each sample plus its 4-byte offset), and named
``shard.GGGGG.KKKK.mds`` (group, shard within it), so any worker writes
any group and the files, and ``index.json`` (written last, by one step,
the shards in name order), are the same for any number of workers. Each
group is recorded with its shards' entries once they are written
(``shards.write_group_record``): a resumed run (pipelines/resume.py)
builds the others and lists the recorded entries in ``index.json`` with
its own.
"""

import dataclasses
import gzip
import json
from typing import (Dict, Iterable, Iterator, List, Optional, Sequence,
                    Tuple)

import apache_beam as beam
import numpy as np
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

from transforms import metrics, s3_clients, shards
from transforms.masking import MaskedBatch

INDEX = "index.json"
SHARD_PATTERN = "shard.*.mds*"
DEFAULT_SHARD_BYTES = 1 << 26  # MDSWriter's size_limit
# Offsets are uint32: MDSWriter refuses a size_limit from 2**32 on.
MAX_SHARD_BYTES = (1 << 32) - 1
# --compression's values here, as MDS names them (the file's suffix too).
COMPRESSIONS = {"none": None, "gzip": "gz"}
LABEL_COLUMNS = {"nsp": "next_sentence_label", "sop": "sentence_order_label"}
_SHAPE_DTYPES = ((1 << 8, 0, "<u1"), (1 << 16, 1, "<u2"), (1 << 32, 2, "<u4"))


@dataclasses.dataclass(frozen=True)
class Column:
  """One MDS column: its name, encoding and fixed size in bytes (None for
  a size per sample)."""
  name: str
  encoding: str
  size: Optional[int]


def ids_dtype(vocab_size: int) -> np.dtype:
  """The smallest unsigned type holding every id of the vocabulary."""
  return np.dtype("<u2" if vocab_size <= 1 << 16 else "<u4")


def columns(vocab_size: int, pairs: bool, sentence_task: str
            ) -> List[Column]:
  """The columns of a run's samples, in name order (as MDS stores them)."""
  cols = [Column("input_ids", "ndarray:" + ids_dtype(vocab_size).name, None)]
  if pairs:
    cols.append(Column("token_type_ids", "ndarray:uint8", None))
  if sentence_task in LABEL_COLUMNS:
    cols.append(Column(LABEL_COLUMNS[sentence_task], "uint8", 1))
  return sorted(cols, key=lambda c: c.name)


def shard_config(cols: Sequence[Column], compression: Optional[str],
                 size_limit: int) -> Dict:
  """A shard's configuration, as MDSWriter.get_config makes it."""
  return {"column_encodings": [c.encoding for c in cols],
          "column_names": [c.name for c in cols],
          "column_sizes": [c.size for c in cols],
          "compression": compression, "format": "mds", "hashes": [],
          "size_limit": size_limit, "version": 2}


def _ndarray_1d(values: np.ndarray) -> bytes:
  """``ndarray:DTYPE``'s bytes of a non-empty 1-d array (dtype fixed by the
  column, shape stored)."""
  n = values.size
  for below, code, dtype in _SHAPE_DTYPES:
    if n < below:
      return (bytes([(1 << 2) | code]) + np.array([n], dtype).tobytes()
              + values.tobytes())
  raise ValueError("a sequence of %d tokens" % n)


def encode_batch(batch: MaskedBatch, cols: Sequence[Column],
                 dtype: np.dtype) -> List[bytes]:
  """Each row of ``batch`` as an MDS sample of ``cols`` (unpadded)."""
  names = {c.name for c in cols}
  ids = batch.input_ids.astype(dtype)
  segments = (batch.segment_ids.astype(np.uint8)
              if "token_type_ids" in names else None)
  labels = batch.next_sentence_labels.astype(np.uint8)
  out = []
  for row, length in enumerate(batch.lengths.tolist()):
    parts = {"input_ids": _ndarray_1d(ids[row, :length])}
    if segments is not None:
      parts["token_type_ids"] = _ndarray_1d(segments[row, :length])
    sizes = [len(parts[c.name]) for c in cols if c.size is None]
    for c in cols:
      if c.size is not None:  # the sentence label
        parts[c.name] = bytes([int(labels[row])])
    out.append(np.array(sizes, "<u4").tobytes()
               + b"".join(parts[c.name] for c in cols))
  return out


def shard_bytes(samples: Sequence[bytes], config: Dict) -> bytes:
  """A joint shard: count, offsets, configuration, samples."""
  config_data = json.dumps(config, sort_keys=True).encode("utf-8")
  n = len(samples)
  header = 4 + 4 * (n + 1) + len(config_data)
  offsets = np.concatenate([[0], np.cumsum([len(s) for s in samples])])
  return (np.array([n], "<u4").tobytes()
          + (offsets + header).astype("<u4").tobytes() + config_data
          + b"".join(samples))


def decode_shard(data: bytes) -> Tuple[Dict, List[Dict[str, object]]]:
  """A raw (decompressed) shard's configuration and samples, each a dict
  of its columns (1-d ``ndarray`` columns as numpy arrays, scalars as
  ints). Raises ValueError where the bytes do not hold together."""
  if len(data) < 8:
    raise ValueError("%d bytes: no MDS shard header" % len(data))
  n = int(np.frombuffer(data, "<u4", 1)[0])
  if len(data) < 4 + 4 * (n + 1):
    raise ValueError("%d samples announced, the offsets run past the end"
                     % n)
  offsets = np.frombuffer(data, "<u4", n + 1, 4).astype(np.int64)
  config_start = 4 + 4 * (n + 1)
  if offsets[0] < config_start or offsets[-1] != len(data) or (
      np.diff(offsets) < 0).any():
    raise ValueError("sample offsets that do not fit the %d bytes"
                     % len(data))
  try:
    config = json.loads(data[config_start:offsets[0]].decode("utf-8"))
    names, encodings = config["column_names"], config["column_encodings"]
    sizes = config["column_sizes"]
  except (ValueError, KeyError, UnicodeDecodeError) as e:
    raise ValueError("no readable shard configuration (%s)" % e) from None
  variable = [i for i, size in enumerate(sizes) if size is None]
  samples = []
  for a, b in zip(offsets[:-1].tolist(), offsets[1:].tolist()):
    sample, at = {}, a + 4 * len(variable)
    if at > b:
      raise ValueError("a sample of %d bytes without its column sizes"
                       % (b - a))
    lengths = np.frombuffer(data, "<u4", len(variable), a).tolist()
    by_column = dict(zip(variable, lengths))
    for i, (name, encoding) in enumerate(zip(names, encodings)):
      size = sizes[i] if sizes[i] is not None else by_column[i]
      if at + size > b or size < 1:
        raise ValueError("a column %s of %d bytes in a sample of %d"
                         % (name, size, b - a))
      piece = data[at:at + size]
      at += size
      sample[name] = _decode(encoding, piece)
    if at != b:
      raise ValueError("a sample whose columns take %d bytes of its %d"
                       % (at - a, b - a))
    samples.append(sample)
  return config, samples


def _decode(encoding: str, piece: bytes):
  if encoding.startswith("ndarray:"):
    dtype = np.dtype(encoding.split(":")[1]).newbyteorder("<")
    head = piece[0]
    ndim, code = head >> 2, head & 3
    shape_dtype = np.dtype(["<u1", "<u2", "<u4", "<u8"][code])
    start = 1 + ndim * shape_dtype.itemsize
    if ndim != 1 or start > len(piece) or (
        len(piece) - start) % dtype.itemsize:
      raise ValueError("an array column of %d bytes that is no 1-d %s array"
                       % (len(piece), dtype.name))
    shape = np.frombuffer(piece, shape_dtype, ndim, 1)
    values = np.frombuffer(piece, dtype, offset=start)
    if ndim != 1 or values.size != int(shape[0]):
      raise ValueError("an array of shape %s holding %d values"
                       % (shape.tolist(), values.size))
    return values
  if encoding in ("uint8", "int8"):
    return int(np.frombuffer(piece, encoding, 1)[0])
  raise ValueError("an encoding this project does not write: %s" % encoding)


def index_problem(index: Dict, shard_files: Dict[str, int]) -> Optional[str]:
  """Why ``index`` (a parsed ``index.json``) does not describe the shards
  in ``shard_files`` (``{basename: bytes}``) as a reader needs, or None:
  every file listed once with its size, and no shard left out."""
  try:
    entries = index["shards"]
    listed = [(e["zip_data"] or e["raw_data"]) for e in entries]
    names = [f["basename"] for f in listed]
  except (KeyError, TypeError) as e:
    return "index.json is not an MDS index (%s)" % e
  if index.get("version") != 2:
    return "index.json is version %r, not 2" % index.get("version")
  for name, entry in zip(names, listed):
    if name not in shard_files:
      return "index.json lists %s, which is missing" % name
    if entry["bytes"] != shard_files[name]:
      return "%s holds %d bytes, index.json says %d" % (
          name, shard_files[name], entry["bytes"])
  left_out = sorted(set(shard_files) - set(names))
  if left_out:
    return "%s is not in index.json" % left_out[0]
  if len(set(names)) != len(names):
    return "index.json lists a shard twice"
  return None


def is_index(data: bytes) -> bool:
  """Whether ``data`` is an ``index.json`` this project writes: version 2,
  every shard of format ``mds`` under one of its shard names."""
  try:
    index = json.loads(data.decode("utf-8"))
    return index.get("version") == 2 and all(
        e.get("format") == "mds"
        and str(e["raw_data"]["basename"]).startswith("shard.")
        for e in index["shards"])
  except Exception:  # pylint: disable=broad-except
    return False


def _create(path: str):
  return FileSystems.create(path,
                            compression_type=CompressionTypes.UNCOMPRESSED)


class _WriteShardsDoFn(beam.DoFn):
  """Each pool group's batches (between its ``shards.GroupMark`` s) → MDS
  shards of at most ``size_limit`` bytes; outputs each shard's
  ``index.json`` entry with its ``(group, k)``. With ``done_dir``, each
  group's shards and entries are recorded there once all are written
  (``shards.write_group_record``), for ``--resume``."""

  def __init__(self, output_dir: str, cols: Sequence[Column],
               dtype: np.dtype, size_limit: int,
               compression: Optional[str], done_dir: Optional[str] = None):
    self._output_dir = output_dir
    self._cols = list(cols)
    self._dtype = np.dtype(dtype)
    self._size_limit = size_limit
    self._compression = compression
    self._done_dir = done_dir
    self._config = shard_config(cols, compression, size_limit)
    self._config_bytes = len(json.dumps(self._config,
                                        sort_keys=True).encode("utf-8"))
    self._group = -1
    self._k = 0
    self._samples: List[bytes] = []
    self._size = 0
    self._written: List[Tuple[Tuple[int, int], Dict]] = []

  def setup(self):
    s3_clients.share_s3_clients()

  def _reset(self):
    self._samples, self._size = [], 4 + 4 + self._config_bytes

  def process(self, element):
    if isinstance(element, shards.GroupMark):
      if not element.end:
        self._group, self._k, self._written = element.group, 0, []
        self._reset()
        return
      if self._samples:
        yield self._flush()
      if self._done_dir:
        shards.write_group_record(
            self._done_dir, element,
            [_written_file(entry) for _, entry in self._written],
            entries=[[list(key), entry] for key, entry in self._written])
      self._written = []
      return
    for sample in encode_batch(element, self._cols, self._dtype):
      size = len(sample) + 4
      if self._samples and self._size_limit < self._size + size:
        yield self._flush()
      self._samples.append(sample)
      self._size += size

  def _flush(self) -> Tuple[Tuple[int, int], Dict]:
    raw = shard_bytes(self._samples, self._config)
    basename = "shard.%05d.%04d.mds" % (self._group, self._k)
    entry = dict(self._config, samples=len(self._samples),
                 raw_data={"basename": basename, "bytes": len(raw),
                           "hashes": {}}, zip_data=None)
    data = raw
    if self._compression == "gz":
      data = gzip.compress(raw, compresslevel=9, mtime=0)
      basename += ".gz"
      entry["zip_data"] = {"basename": basename, "bytes": len(data),
                           "hashes": {}}
    with _create(FileSystems.join(self._output_dir, basename)) as f:
      f.write(data)
    metrics.count(shards.SHARD_RECORDS_PREFIX + basename, len(self._samples))
    key = (self._group, self._k)
    self._written.append((key, entry))
    self._k += 1
    self._reset()
    return key, entry

  def finish_bundle(self):
    if self._samples:
      raise RuntimeError("a pool group's batches ended without its "
                         "GroupMark")


def _written_file(entry: Dict) -> Tuple[str, int]:
  """The ``(basename, bytes)`` of the file an ``index.json`` entry names."""
  stored = entry["zip_data"] or entry["raw_data"]
  return stored["basename"], stored["bytes"]


def reused_entries(records: Iterable[Dict]
                   ) -> List[Tuple[Tuple[int, int], Dict]]:
  """The ``index.json`` entries, with their ``(group, k)``, of the groups a
  stopped run finished (their records, ``shards.write_group_record``)."""
  return [((int(key[0]), int(key[1])), entry)
          for record in records for key, entry in record["entries"]]


def write_index(unused_element, entries, output_dir: str,
                reused: Sequence[Tuple[Tuple[int, int], Dict]] = ()
                ) -> Iterator[str]:
  """Writes ``index.json`` with every shard's entry, this run's
  (``entries``) and those of the groups a stopped run finished
  (``reused``), in (group, k) order; with no shard, writes nothing (the
  run reports that no example was made)."""
  s3_clients.share_s3_clients()
  ordered = [entry for _, entry in sorted(list(entries) + list(reused),
                                          key=lambda e: e[0])]
  if ordered:
    path = FileSystems.join(output_dir, INDEX)
    with _create(path) as f:
      f.write(json.dumps({"shards": ordered, "version": 2},
                         sort_keys=True).encode("utf-8"))
    yield path


class WriteMds(beam.PTransform):
  """Masked batches, grouped between ``shards.GroupMark`` s (the pools read
  from files) → MDS shards and ``index.json`` in ``output_dir``. With
  ``done_dir``, each group is recorded there when written (``--resume``);
  ``reused``: the entries of the groups a stopped run finished
  (``reused_entries``), listed in the index with this run's. Output: the
  index's path."""

  def __init__(self, output_dir: str, *, vocab_size: int, pairs: bool,
               sentence_task: str, shard_bytes_limit: int = DEFAULT_SHARD_BYTES,
               compression: str = "none", done_dir: Optional[str] = None,
               reused: Sequence[Tuple[Tuple[int, int], Dict]] = ()):
    super().__init__()
    self._output_dir = output_dir
    self._cols = columns(vocab_size, pairs, sentence_task)
    self._dtype = ids_dtype(vocab_size)
    self._size_limit = shard_bytes_limit
    self._compression = COMPRESSIONS[compression]
    self._done_dir = done_dir
    self._reused = list(reused)

  def expand(self, batches):
    entries = batches | "WriteShards" >> beam.ParDo(_WriteShardsDoFn(
        self._output_dir, self._cols, self._dtype, self._size_limit,
        self._compression, self._done_dir))
    return (batches.pipeline
            | "Once" >> beam.Impulse()
            | "WriteIndex" >> beam.FlatMap(write_index,
                                           beam.pvalue.AsList(entries),
                                           self._output_dir, self._reused))
