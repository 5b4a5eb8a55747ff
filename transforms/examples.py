"""WriteExamples: ``MaskedBatch`` → ``tf.train.Example`` records in sharded
TFRecord files, plus the schema as tensorflow-transform metadata.

The features are exactly those of google-research/bert's
``create_pretraining_data.py``, fixed length and zero padded, so
``run_pretraining.py`` and TF Model Garden's BERT loaders read them unchanged.

Examples are serialized by a small protobuf encoder written against the
``tf.train.Example`` wire format, a whole batch's varints at once in numpy:
building protos field by field costs more than everything else per instance.
``tests/test_examples.py`` checks the bytes parse to the same values with
TensorFlow's own parser.
"""

import os
import random
from typing import Dict, Iterable, Iterator, List, Tuple

import apache_beam as beam
import numpy as np
from apache_beam.io import tfrecordio
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

from transforms import keys
from transforms.masking import MaskedBatch

INT_FEATURES = ("input_ids", "input_mask", "segment_ids",
                "masked_lm_positions", "masked_lm_ids")
FLOAT_FEATURES = ("masked_lm_weights",)
LABEL_FEATURE = "next_sentence_labels"
FEATURE_NAMES = INT_FEATURES + FLOAT_FEATURES + (LABEL_FEATURE,)
SHARD_PREFIX = "part"
# Records are dealt into this many shuffle groups (or --num_shards, if more).
SHUFFLE_GROUPS = 64
# Records held by each group's shuffle buffer on its way to the writer.
SHUFFLE_BUFFER = 8192
# TensorFlow is imported only for the schema; keep its C++ start-up chatter
# out of the job's log.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def feature_lengths(max_seq_length: int, max_predictions_per_seq: int
                    ) -> Dict[str, int]:
  return {
      "input_ids": max_seq_length,
      "input_mask": max_seq_length,
      "segment_ids": max_seq_length,
      "masked_lm_positions": max_predictions_per_seq,
      "masked_lm_ids": max_predictions_per_seq,
      "masked_lm_weights": max_predictions_per_seq,
      "next_sentence_labels": 1,
  }


def feature_spec(max_seq_length: int, max_predictions_per_seq: int):
  """The ``tf.io.parse_example`` spec of the records (BERT's own)."""
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  lengths = feature_lengths(max_seq_length, max_predictions_per_seq)
  return {
      name: tf.io.FixedLenFeature(
          [n], tf.float32 if name in FLOAT_FEATURES else tf.int64)
      for name, n in lengths.items()
  }


def _varint(n: int) -> bytes:
  out = bytearray()
  while n >= 0x80:
    out.append((n & 0x7F) | 0x80)
    n >>= 7
  out.append(n)
  return bytes(out)


def varint_encode(values: np.ndarray):
  """Packed varint bytes of non-negative ints, row by row.

  Returns ``(data, row_ends)``: ``data`` holds every row's varints back to
  back and row ``i`` is ``data[row_ends[i-1]:row_ends[i]]``.
  """
  v = np.ascontiguousarray(values, dtype=np.int64)
  if v.size and v.min() < 0:
    raise ValueError("negative feature value")
  v = v.astype(np.uint64)
  sizes = np.ones(v.shape, dtype=np.int64)
  bound = np.uint64(1 << 7)
  while True:
    more = v >= bound
    if not more.any():
      break
    sizes += more
    if bound >= np.uint64(1 << 56):
      break
    bound = bound << np.uint64(7)
  flat_v = v.ravel()
  flat_sizes = sizes.ravel()
  ends = np.cumsum(flat_sizes)
  starts = ends - flat_sizes
  out = np.zeros(int(ends[-1]) if ends.size else 0, dtype=np.uint8)
  for k in range(int(flat_sizes.max()) if flat_sizes.size else 0):
    sel = flat_sizes > k
    byte = (flat_v[sel] >> np.uint64(7 * k)) & np.uint64(0x7F)
    byte |= np.where(flat_sizes[sel] > k + 1, np.uint64(0x80), np.uint64(0))
    out[starts[sel] + k] = byte.astype(np.uint8)
  row_ends = np.cumsum(sizes.reshape(v.shape[0], -1).sum(axis=1))
  return out.tobytes(), row_ends.tolist()


class _Prefixes(dict):
  """Bytes that precede a feature's packed values, by payload length: the
  map-entry header, the key, the Feature and list headers. Payload lengths
  take few distinct values, so each prefix is built once."""

  def __init__(self, name: str, feature_field: bytes):
    super().__init__()
    self._key = b"\x0a" + _varint(len(name)) + name.encode()
    self._field = feature_field  # Feature.int64_list or Feature.float_list

  def __missing__(self, n: int) -> bytes:
    values = b"\x0a" + _varint(n)  # the list's packed `value` field
    feature = self._field + _varint(len(values) + n) + values
    entry_len = len(self._key) + 1 + len(_varint(len(feature) + n)) + len(
        feature) + n
    prefix = (b"\x0a" + _varint(entry_len) + self._key + b"\x12"
              + _varint(len(feature) + n) + feature)
    self[n] = prefix
    return prefix


_INT64_LIST = b"\x1a"  # Feature field 3, length-delimited
_FLOAT_LIST = b"\x12"  # Feature field 2, length-delimited
_PREFIXES = {name: _Prefixes(name, _INT64_LIST)
             for name in INT_FEATURES + (LABEL_FEATURE,)}
_PREFIXES.update({name: _Prefixes(name, _FLOAT_LIST)
                  for name in FLOAT_FEATURES})


def serialize_batch(batch: MaskedBatch) -> List[bytes]:
  """One serialized ``tf.train.Example`` per instance of ``batch``.

  Wire format: Example.features (field 1) → Features.feature map entries
  (field 1) → {key, Feature{int64_list | float_list{packed value}}}.
  """
  n = len(batch)
  columns = []
  for name in INT_FEATURES + (LABEL_FEATURE,):
    data, ends = varint_encode(getattr(batch, name).reshape(n, -1))
    columns.append((_PREFIXES[name], data, [0] + ends))
  weights = np.ascontiguousarray(batch.masked_lm_weights, dtype="<f4")
  w_data = weights.tobytes()
  w_row = weights.shape[1] * 4
  w_prefix = _PREFIXES["masked_lm_weights"][w_row]
  out = []
  for i in range(n):
    parts = []
    for prefixes, data, ends in columns:
      start, end = ends[i], ends[i + 1]
      parts.append(prefixes[end - start])
      parts.append(data[start:end])
    parts.append(w_prefix)
    parts.append(w_data[i * w_row:(i + 1) * w_row])
    features = b"".join(parts)
    out.append(b"\x0a" + _varint(len(features)) + features)
  return out


def shard_suffix(compression: str) -> str:
  return ".tfrecord.gz" if compression == "gzip" else ".tfrecord"


def schema_text(max_seq_length: int, max_predictions_per_seq: int) -> str:
  """The records' schema as a tensorflow-metadata ``Schema`` in text form:
  one fixed-shape, always-present INT or FLOAT feature per BERT feature
  (what tensorflow-transform writes for a ``FixedLenFeature`` spec). Built
  from the metadata protos alone, so the job never imports TensorFlow."""
  # pylint: disable=import-outside-toplevel
  from google.protobuf import text_format
  from tensorflow_metadata.proto.v0 import schema_pb2
  schema = schema_pb2.Schema()
  lengths = feature_lengths(max_seq_length, max_predictions_per_seq)
  for name in sorted(lengths):
    feature = schema.feature.add()
    feature.name = name
    feature.type = (schema_pb2.FLOAT if name in FLOAT_FEATURES
                    else schema_pb2.INT)
    feature.presence.min_fraction = 1.0
    feature.shape.dim.add().size = lengths[name]
  return text_format.MessageToString(schema)


def write_schema(output_dir: str, max_seq_length: int,
                 max_predictions_per_seq: int) -> str:
  """Writes ``transformed_metadata/schema.pbtxt`` so that
  ``tft.TFTransformOutput(output_dir).transformed_feature_spec()`` returns
  the feature spec. Goes through Beam's FileSystems, so s3:// works too."""
  path = FileSystems.join(output_dir, "transformed_metadata", "schema.pbtxt")
  with FileSystems.create(path) as f:
    f.write(schema_text(max_seq_length, max_predictions_per_seq).encode())
  return path


def scatter(records: List[bytes], groups: int, rng: np.random.Generator
            ) -> Iterator[Tuple[int, List[bytes]]]:
  """Deals a batch's records at random into ``groups`` lists, in random
  order within each; yields the non-empty ``(group, records)``."""
  n = len(records)
  perm = rng.permutation(n)
  assign = rng.integers(0, groups, size=n)
  order = perm[np.argsort(assign[perm], kind="stable")]
  sizes = np.bincount(assign, minlength=groups)
  start = 0
  for g in np.nonzero(sizes)[0].tolist():
    end = start + int(sizes[g])
    yield g, [records[i] for i in order[start:end].tolist()]
    start = end


def shuffle_stream(chunks: Iterable[List[bytes]], capacity: int,
                   rng: random.Random) -> Iterator[bytes]:
  """Records of ``chunks`` in random order through a buffer of ``capacity``
  (like tf.data's shuffle buffer): memory stays bounded however long the
  stream is."""
  buffer: List[bytes] = []
  for chunk in chunks:
    for record in chunk:
      if len(buffer) < capacity:
        buffer.append(record)
      else:
        j = rng.randrange(capacity)
        yield buffer[j]
        buffer[j] = record
  rng.shuffle(buffer)
  yield from buffer


class _SerializeAndScatter(beam.DoFn):

  def __init__(self, groups: int, seed: int):
    self._groups = groups
    self._seed = seed

  def process(self, batch: MaskedBatch):
    records = serialize_batch(batch)
    rng = np.random.default_rng(keys.stable_hash("shuffle", self._seed,
                                                 *batch.key))
    yield from scatter(records, self._groups, rng)


class _Unscatter(beam.DoFn):

  def __init__(self, seed: int, capacity: int):
    self._seed = seed
    self._capacity = capacity

  def process(self, element):
    group, chunks = element
    rng = random.Random(keys.stable_hash("unscatter", self._seed, group))
    yield from shuffle_stream(chunks, self._capacity, rng)


class WriteExamples(beam.PTransform):
  """Serializes, shuffles and writes the examples.

  Output: the list of shard file names written.
  """

  def __init__(self, output_dir: str, num_shards: int = 0,
               compression: str = "none", seed: int = 0,
               shuffle_groups: int = SHUFFLE_GROUPS,
               shuffle_buffer: int = SHUFFLE_BUFFER):
    super().__init__()
    self._output_dir = output_dir
    self._num_shards = num_shards
    self._compression = compression
    self._seed = seed
    self._groups = max(shuffle_groups, num_shards)
    self._buffer = shuffle_buffer

  def expand(self, batches):
    return (
        batches
        # The shuffle stays: without it each shard would hold whole pools in
        # document order, while BERT's input pipeline only shuffles within a
        # window of records; it also spreads the writing across workers. It
        # moves lists of records, not single records: Beam's per-element
        # cost would otherwise exceed the cost of making the examples.
        | "SerializeAndScatter" >> beam.ParDo(
            _SerializeAndScatter(self._groups, self._seed))
        # Output: (group, [[record, ...], ...]) from batches all over.
        | "Shuffle" >> beam.GroupByKey()
        | "Unscatter" >> beam.ParDo(_Unscatter(self._seed, self._buffer))
        | "Write" >> tfrecordio.WriteToTFRecord(
            file_path_prefix=FileSystems.join(self._output_dir, SHARD_PREFIX),
            file_name_suffix=shard_suffix(self._compression),
            num_shards=self._num_shards,
            compression_type=(CompressionTypes.GZIP
                              if self._compression == "gzip"
                              else CompressionTypes.UNCOMPRESSED)))
