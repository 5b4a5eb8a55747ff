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
from typing import Dict, List

import apache_beam as beam
import numpy as np
from apache_beam.io import tfrecordio
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

from transforms.masking import MaskedBatch

INT_FEATURES = ("input_ids", "input_mask", "segment_ids",
                "masked_lm_positions", "masked_lm_ids")
FLOAT_FEATURES = ("masked_lm_weights",)
LABEL_FEATURE = "next_sentence_labels"
FEATURE_NAMES = INT_FEATURES + FLOAT_FEATURES + (LABEL_FEATURE,)
SHARD_PREFIX = "part"
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


def _map_entry(name: str, feature: bytes) -> bytes:
  key = name.encode()
  entry = b"\x0a" + _varint(len(key)) + key + b"\x12" + _varint(
      len(feature)) + feature
  return b"\x0a" + _varint(len(entry)) + entry


def _int64_feature(packed: bytes) -> bytes:
  inner = b"\x0a" + _varint(len(packed)) + packed  # Int64List.value
  return b"\x1a" + _varint(len(inner)) + inner  # Feature.int64_list


def _float_feature(packed: bytes) -> bytes:
  inner = b"\x0a" + _varint(len(packed)) + packed  # FloatList.value
  return b"\x12" + _varint(len(inner)) + inner  # Feature.float_list


def serialize_batch(batch: MaskedBatch) -> List[bytes]:
  """One serialized ``tf.train.Example`` per instance of ``batch``."""
  n = len(batch)
  columns = []
  for name in INT_FEATURES + (LABEL_FEATURE,):
    data, ends = varint_encode(getattr(batch, name).reshape(n, -1))
    columns.append((name, data, ends, _int64_feature))
  weights = np.ascontiguousarray(batch.masked_lm_weights, dtype="<f4")
  w_data = weights.tobytes()
  w_row = weights.shape[1] * 4
  out = []
  for i in range(n):
    parts = []
    for name, data, ends, wrap in columns:
      start = ends[i - 1] if i else 0
      parts.append(_map_entry(name, wrap(data[start:ends[i]])))
    parts.append(_map_entry(
        "masked_lm_weights", _float_feature(w_data[i * w_row:(i + 1) * w_row])))
    features = b"".join(parts)
    out.append(b"\x0a" + _varint(len(features)) + features)
  return out


def shard_suffix(compression: str) -> str:
  return ".tfrecord.gz" if compression == "gzip" else ".tfrecord"


def write_schema(output_dir: str, max_seq_length: int,
                 max_predictions_per_seq: int) -> str:
  """Writes the feature spec as tensorflow-transform metadata
  (``transformed_metadata/schema.pbtxt``) so that
  ``tft.TFTransformOutput(output_dir).transformed_feature_spec()`` returns it.
  Goes through Beam's FileSystems, so s3:// works too."""
  # pylint: disable=import-outside-toplevel
  from google.protobuf import text_format
  from tensorflow_transform.tf_metadata import schema_utils
  schema = schema_utils.schema_from_feature_spec(
      feature_spec(max_seq_length, max_predictions_per_seq))
  path = FileSystems.join(output_dir, "transformed_metadata", "schema.pbtxt")
  with FileSystems.create(path) as f:
    f.write(text_format.MessageToString(schema).encode("utf-8"))
  return path


class WriteExamples(beam.PTransform):
  """Serializes, shuffles and writes the examples.

  Output: the list of shard file names written.
  """

  def __init__(self, output_dir: str, num_shards: int = 0,
               compression: str = "none"):
    super().__init__()
    self._output_dir = output_dir
    self._num_shards = num_shards
    self._compression = compression

  def expand(self, batches):
    return (
        batches
        | "Serialize" >> beam.FlatMap(serialize_batch)
        # The reshuffle stays: without it each shard would hold whole pools
        # in document order, and BERT's input pipeline only shuffles within
        # a window of records. It also spreads the writing across workers.
        | "Shuffle" >> beam.Reshuffle()
        | "Write" >> tfrecordio.WriteToTFRecord(
            file_path_prefix=FileSystems.join(self._output_dir, SHARD_PREFIX),
            file_name_suffix=shard_suffix(self._compression),
            num_shards=self._num_shards,
            compression_type=(CompressionTypes.GZIP
                              if self._compression == "gzip"
                              else CompressionTypes.UNCOMPRESSED)))
