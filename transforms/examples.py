"""WriteExamples: ``MaskedBatch`` → ``tf.train.Example`` records in sharded
TFRecord files (or Parquet files, see ``transforms.parquet``), plus the
schema as tensorflow-transform metadata.

The features are exactly those of google-research/bert's
``create_pretraining_data.py``, fixed length and zero padded, so
``run_pretraining.py`` and TF Model Garden's BERT loaders read them unchanged.
ALBERT's script writes its sentence-order label under the same name,
``next_sentence_labels``. With ``--masking=none`` the ``masked_lm_*``
features are not written, with ``--sentence_task=none`` the label is not.
With ``--token_boundary`` (the default of ``--preset=albert``) the records
also hold ALBERT's ``token_boundary`` (which tokens start a word,
``masking.token_boundary``), as google-research/albert's
``create_pretraining_data.py`` writes it, so that its ``run_pretraining.py``
parses them unchanged, ``--masked_lm_budget`` (masking in the trainer) too.
With ``--langs_feature`` (a corpus with language tags) they hold XLM's
``langs`` as well: the example's language id at every position, padding
included (``MaskedBatch.langs``), the ids summary.json's ``languages``
records.

Examples are serialized by a small protobuf encoder written against the
``tf.train.Example`` wire format, a whole batch's varints at once in numpy:
building protos field by field costs more than everything else per instance.
``tests/unit/test_examples.py`` checks the bytes parse to the same values with
TensorFlow's own parser.
"""

import dataclasses
import functools
import os
import struct
from typing import Dict, List, Optional, Tuple

import apache_beam as beam
import google_crc32c
import numpy as np
from apache_beam.coders import coders
from apache_beam.io import filebasedsink
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

from transforms import kernels
from transforms.masking import MaskedBatch
from transforms.shards import SHARD_PREFIX, GroupMark, WriteShards

INT_FEATURES = ("input_ids", "input_mask", "segment_ids",
                "masked_lm_positions", "masked_lm_ids")
FLOAT_FEATURES = ("masked_lm_weights",)
LABEL_FEATURE = "next_sentence_labels"
FEATURE_NAMES = INT_FEATURES + FLOAT_FEATURES + (LABEL_FEATURE,)
# ALBERT's feature of the word starts, [max_seq_length] int64, written only
# with ExampleLayout.token_boundary.
BOUNDARY_FEATURE = "token_boundary"
# XLM's language ids, [max_seq_length] int64, written only with
# ExampleLayout.langs.
LANGS_FEATURE = "langs"
# TensorFlow is imported only for the schema; keep its C++ start-up chatter
# out of the job's log.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


MASKED_FEATURES = ("masked_lm_positions", "masked_lm_ids",
                   "masked_lm_weights")


@dataclasses.dataclass(frozen=True, kw_only=True)
class ExampleLayout:
  """What one record holds: BERT's fixed-length features, ``max_seq_length``
  tokens and ``max_predictions_per_seq`` masked positions, without the
  ``masked_lm_*`` features when ``masking`` is ``"none"`` and without the
  sentence label when ``sentence_task`` is ``"none"``; with ALBERT's
  ``token_boundary`` (``max_seq_length`` values) when ``token_boundary``,
  and XLM's ``langs`` (``max_seq_length`` values) when ``langs``."""
  max_seq_length: int = 128
  max_predictions_per_seq: int = 20
  masking: str = "static"  # one of masking.MASKINGS
  sentence_task: str = "nsp"  # one of instances.SENTENCE_TASKS
  token_boundary: bool = False
  langs: bool = False

  @property
  def masks(self) -> bool:
    return self.masking != "none"

  @property
  def label(self) -> bool:
    return self.sentence_task != "none"


def feature_lengths(layout: ExampleLayout) -> Dict[str, int]:
  """Each feature the records hold and its fixed length, in the order
  ALBERT's script adds them (``token_boundary`` after ``segment_ids``),
  XLM's ``langs`` after the token features."""
  lengths = {
      "input_ids": layout.max_seq_length,
      "input_mask": layout.max_seq_length,
      "segment_ids": layout.max_seq_length,
      BOUNDARY_FEATURE: layout.max_seq_length,
      LANGS_FEATURE: layout.max_seq_length,
      "masked_lm_positions": layout.max_predictions_per_seq,
      "masked_lm_ids": layout.max_predictions_per_seq,
      "masked_lm_weights": layout.max_predictions_per_seq,
      "next_sentence_labels": 1,
  }
  if not layout.masks:
    for name in MASKED_FEATURES:
      del lengths[name]
  if not layout.label:
    del lengths[LABEL_FEATURE]
  if not layout.token_boundary:
    del lengths[BOUNDARY_FEATURE]
  if not layout.langs:
    del lengths[LANGS_FEATURE]
  return lengths


def feature_spec(layout: ExampleLayout):
  """The ``tf.io.parse_example`` spec of the records (BERT's own, with
  ALBERT's ``token_boundary`` and XLM's ``langs`` when the layout has
  them)."""
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  return {
      name: tf.io.FixedLenFeature(
          [n], tf.float32 if name in FLOAT_FEATURES else tf.int64)
      for name, n in feature_lengths(layout).items()
  }


def _varint(n: int) -> bytes:
  out = bytearray()
  while n >= 0x80:
    out.append((n & 0x7F) | 0x80)
    n >>= 7
  out.append(n)
  return bytes(out)


def varint_columns(values: np.ndarray, top: Optional[int] = None
                   ) -> Tuple[np.ndarray, np.ndarray]:
  """Varints of non-negative ints, laid out in columns.

  Returns ``(bytes, present)``, both ``[rows, values_per_row * slots]``:
  every value gets ``slots`` byte slots, at least the size of the largest
  value's varint (1, 2 or 4 slots up to four bytes, so that a value's
  bytes are one little-endian uint16 or uint32 and every step works on
  whole words), and ``present`` marks the slots its varint uses. Keeping
  the present bytes in row-major order (``bytes[present]``) gives each
  row's varints back to back. ``top``: the largest value, when the caller
  knows it (no pass over the values to find it or to check for negatives).
  """
  v = np.ascontiguousarray(values)
  rows = v.shape[0]
  v = v.reshape(rows, -1)
  if top is None:
    if v.size and v.min() < 0:
      raise ValueError("negative feature value")
    top = int(v.max()) if v.size else 0
  width = max(1, (top.bit_length() + 6) // 7)
  if width == 1:
    return v.astype(np.uint8), np.ones(v.shape, dtype=bool)
  if width <= 4:
    # Byte k of the word: bits 7k..7k+6 of the value, the continuation bit
    # where byte k+1 exists; the present word has 1 in each byte used.
    word_type = np.dtype("<u2" if width == 2 else "<u4")
    v = v.astype(word_type)
    word = v & word_type.type(0x7F)
    used = np.ones(v.shape, dtype=word_type)
    for k in range(1, width):
      more = (v >= (1 << (7 * k))).astype(word_type)
      word |= (v << word_type.type(k)) & word_type.type(0x7F << (8 * k))
      word |= more << word_type.type(8 * k - 1)
      used |= more << word_type.type(8 * k)
    word = word.astype(word_type, copy=False)
    return (word.view(np.uint8).reshape(rows, -1),
            used.view(bool).reshape(rows, -1))
  v = v.astype(np.int64, copy=False)
  # Byte k of every value, with the continuation bit where byte k+1 exists.
  out = np.empty(v.shape + (width,), dtype=np.uint8)
  present = np.empty(v.shape + (width,), dtype=bool)
  present[..., 0] = True
  for k in range(width):
    if k + 1 < width:
      present[..., k + 1] = v >= (1 << (7 * (k + 1)))
      out[..., k] = ((v >> (7 * k)) & 0x7F) | (present[..., k + 1] << 7)
    else:
      out[..., k] = (v >> (7 * k)) & 0x7F
  return out.reshape(rows, -1), present.reshape(rows, -1)


class _Prefixes(dict):
  """Bytes that precede a feature's packed values, by payload length: the
  map-entry header, the key, the Feature and list headers. Payload lengths
  take few distinct values, so each prefix is built once."""

  def __init__(self, name: str, feature_field: bytes):
    super().__init__()
    self._key = b"\x0a" + _varint(len(name)) + name.encode()
    self._field = feature_field  # Feature.int64_list or Feature.float_list
    self._table = None  # (bytes, used) per payload length; see columns()

  def __missing__(self, n: int) -> bytes:
    values = b"\x0a" + _varint(n)  # the list's packed `value` field
    feature = self._field + _varint(len(values) + n) + values
    entry_len = len(self._key) + 1 + len(_varint(len(feature) + n)) + len(
        feature) + n
    prefix = (b"\x0a" + _varint(entry_len) + self._key + b"\x12"
              + _varint(len(feature) + n) + feature)
    self[n] = prefix
    return prefix

  def columns(self, lengths: np.ndarray
              ) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per row, the prefix for its payload length, laid out as
    ``varint_columns`` lays out bytes: ``[rows, longest prefix]``, which
    slots are used, and how many (``[rows]``). Reads a table of every length
    up to the largest seen."""
    top = int(lengths.max())
    table = self._table
    if table is None or top >= table[0].shape[0]:
      parts = [self[k] for k in range(max(top + 1, 256))]
      width = max(len(p) for p in parts)
      table = (np.zeros((len(parts), width), dtype=np.uint8),
               np.zeros((len(parts), width), dtype=bool),
               np.array([len(p) for p in parts], dtype=np.int64))
      for k, part in enumerate(parts):
        table[0][k, :len(part)] = np.frombuffer(part, dtype=np.uint8)
        table[1][k, :len(part)] = True
      self._table = table
    return table[0][lengths], table[1][lengths], table[2][lengths]


_INT64_LIST = b"\x1a"  # Feature field 3, length-delimited
_FLOAT_LIST = b"\x12"  # Feature field 2, length-delimited
_PREFIXES = {name: _Prefixes(name, _INT64_LIST)
             for name in INT_FEATURES + (LABEL_FEATURE, BOUNDARY_FEATURE,
                                         LANGS_FEATURE)}
_PREFIXES.update({name: _Prefixes(name, _FLOAT_LIST)
                  for name in FLOAT_FEATURES})


# Feature names as the C encoder takes them (transforms/kernels.py).
_KEYS = {name: name.encode("utf-8") for name in _PREFIXES}


# Features whose values are 0 or 1 by construction: no pass over them to
# find the widest varint.
_BINARY_FEATURES = ("input_mask", "segment_ids", LABEL_FEATURE,
                    BOUNDARY_FEATURE)


def _fixed_width(name: str, payload: np.ndarray, columns: List[np.ndarray],
                 present: List[np.ndarray]) -> int:
  """Appends to ``_serialize``'s matrix a feature whose payload
  (``[rows, bytes]``) is as long in every row, so one prefix serves all
  rows and every byte is kept; returns the bytes it adds to each row."""
  n, width = payload.shape
  prefix = np.frombuffer(_PREFIXES[name][width], dtype=np.uint8)
  columns += [np.broadcast_to(prefix, (n, prefix.size)), payload]
  present.append(np.ones((n, prefix.size + width), dtype=bool))
  return prefix.size + width


def _serialize(batch: MaskedBatch, masks: bool = True, label: bool = True,
               boundary: bool = False, langs: bool = False,
               framed: bool = False) -> Tuple[bytes, List[int]]:
  """The serialized ``tf.train.Example`` of every instance of ``batch``,
  back to back, and where each ends.

  Wire format: Example.features (field 1) → Features.feature map entries
  (field 1) → {key, Feature{int64_list | float_list{packed value}}}. Each
  record is laid out as one row of a byte matrix, every field in columns
  wide enough for its longest form, with a mask of the bytes each row uses;
  one masked read of the matrix then gives all the records back to back.
  ``masks``: write the ``masked_lm_*`` features; ``label``: write
  ``next_sentence_labels``; ``boundary``: write ``token_boundary`` (the
  batch's, which must be there: ValueError otherwise); ``langs``: write
  ``langs`` (``MaskedBatch.langs``: the batch must carry its languages,
  ValueError otherwise). ``framed``: each record framed as a TFRecord
  (``frame_records``), the ends being those of the frames: the frame's
  header is one more column of the matrix, its CRC-32C of the record is
  written into the bytes the masked read leaves for it.
  """
  n = len(batch)
  if not n:
    return b"", []
  if boundary and batch.token_boundary is None:
    raise ValueError("the batch has no token_boundary to write (MaskingParams"
                     ".token_boundary was off)")
  if langs and batch.languages is None:
    raise ValueError("the batch has no languages to write langs from (a "
                     "corpus without language tags)")
  names = [name for name in INT_FEATURES + (LABEL_FEATURE,)
           if (masks or name not in MASKED_FEATURES)
           and (label or name != LABEL_FEATURE)]
  if boundary:
    names.insert(names.index("segment_ids") + 1, BOUNDARY_FEATURE)
  if langs:
    names.insert(names.index(BOUNDARY_FEATURE if boundary else "segment_ids")
                 + 1, LANGS_FEATURE)
  encoder = kernels.record_encoder()
  if encoder is not None:
    features = _encoder_features(batch, names, masks)
    if features is not None:
      data, ends = encoder.encode(features, n, framed)
      return data, np.frombuffer(ends, dtype=np.int64).tolist()
  columns: List[np.ndarray] = []
  present: List[np.ndarray] = []
  features_len = np.zeros(n, dtype=np.int64)
  for name in names:
    values = getattr(batch, name).reshape(n, -1)
    binary = name in _BINARY_FEATURES and (
        name != "segment_ids" or batch.segment_b <= 1)
    payload, used = varint_columns(values, top=1 if binary else None)
    # Bytes per row: one per value where every varint is one byte long.
    if payload.shape[1] == values.shape[1]:  # every varint one byte
      features_len += _fixed_width(name, payload, columns, present)
      continue
    lengths = np.count_nonzero(used, axis=1)
    prefix, prefix_used, prefix_lengths = _PREFIXES[name].columns(lengths)
    columns += [prefix, payload]
    present += [prefix_used, used]
    features_len += prefix_lengths + lengths
  if masks:
    weights = np.ascontiguousarray(batch.masked_lm_weights, dtype="<f4")
    features_len += _fixed_width("masked_lm_weights",
                                 weights.view(np.uint8).reshape(n, -1),
                                 columns, present)
  # The Example: field 1 tag, the varint length of the Features, then them.
  size, size_used = varint_columns(features_len[:, None])
  columns = [np.full((n, 1), 0x0A, dtype=np.uint8), size] + columns
  present = [np.ones((n, 1), dtype=bool), size_used] + present
  record_lengths = 1 + np.count_nonzero(size_used, axis=1) + features_len
  if framed:
    # TFRecord's frame: the header (length, its CRC) by record length, and
    # four bytes for the record's CRC.
    distinct, which = np.unique(record_lengths, return_inverse=True)
    headers = np.frombuffer(b"".join(map(_record_header, distinct.tolist())),
                            dtype=np.uint8).reshape(-1, _HEADER_BYTES)
    columns = [headers[which]] + columns + [np.zeros((n, 4), np.uint8)]
    present = ([np.ones((n, _HEADER_BYTES), dtype=bool)] + present
               + [np.ones((n, 4), dtype=bool)])
    frame_lengths = record_lengths + _HEADER_BYTES + 4
  else:
    frame_lengths = record_lengths
  matrix = np.concatenate(columns, axis=1)
  keep = np.concatenate(present, axis=1)
  # np.compress on the flat arrays: several times faster than matrix[keep].
  out = np.compress(keep.ravel(), matrix.ravel())
  ends = np.cumsum(frame_lengths)
  if framed:
    data = out.tobytes()
    starts = (ends - 4 - record_lengths).tolist()
    crcs = np.fromiter(
        map(google_crc32c.value,
            [data[a:b] for a, b in zip(starts, (ends - 4).tolist())]),
        dtype=np.uint32, count=n)
    masked = ((crcs >> 15) | (crcs << 17)) + np.uint32(_CRC_MASK_DELTA)
    out[(ends - 4)[:, None] + np.arange(4)] = (
        masked.astype("<u4").view(np.uint8).reshape(n, 4))
  return out.tobytes(), ends.tolist()


def _encoder_features(batch: MaskedBatch, names: List[str], masks: bool
                      ) -> Optional[List[Tuple]]:
  """The C encoder's features (``_record_encoder.encode``), in ``_serialize``'s
  order: each int feature's values as they are (ValueError for a negative
  one, as ``varint_columns`` raises), ``input_mask``, ``segment_ids`` and
  the weights as intervals of the batch's lengths (nothing computed here);
  None when a feature's type is wider than 32 bits (the numpy path takes
  it)."""
  n = len(batch)
  no_lo = np.full(n, -1, dtype=np.int32)
  lengths = np.ascontiguousarray(batch.lengths, dtype=np.int32)
  width = batch.input_ids.shape[1]
  features: List[Tuple] = []
  for name in names:
    if name == "input_mask":
      features.append((_KEYS[name], False, width, no_lo, lengths, 1))
      continue
    if name == "segment_ids":
      features.append((_KEYS[name], False, width, np.ascontiguousarray(
          batch.a_lengths + batch.separators, dtype=np.int32), lengths,
                       int(batch.segment_b)))
      continue
    values = getattr(batch, name).reshape(n, -1)
    if (values.dtype.itemsize > 4 or values.dtype.kind not in "iub"
        or not values.dtype.isnative):
      return None
    if values.dtype.kind == "i" and values.size and values.min() < 0:
      raise ValueError("negative feature value")
    features.append((_KEYS[name], False, np.ascontiguousarray(
        values.view(np.uint8) if values.dtype.kind == "b" else values)))
  if masks:
    features.append((_KEYS["masked_lm_weights"], True,
                     batch.masked_lm_positions.shape[1], no_lo,
                     np.ascontiguousarray(batch.num_predictions,
                                          dtype=np.int32), 1))
  return features


def serialize_batch(batch: MaskedBatch, masks: bool = True,
                    label: bool = True, boundary: bool = False,
                    langs: bool = False) -> List[bytes]:
  """One serialized ``tf.train.Example`` per instance of ``batch`` (the
  features as ``_serialize`` chooses them)."""
  out, record_ends = _serialize(batch, masks, label, boundary, langs)
  records, start = [], 0
  for end in record_ends:
    records.append(out[start:end])
    start = end
  return records


_U64 = struct.Struct("<Q")
_U32 = struct.Struct("<I")


_CRC_MASK_DELTA = 0xA282EAD8
_HEADER_BYTES = 12  # a TFRecord's uint64 length and the CRC of it


def masked_crc(data: bytes) -> int:
  """TFRecord's masked CRC-32C: rotated right by 15 bits, plus a constant."""
  crc = google_crc32c.value(data)
  return ((((crc >> 15) | (crc << 17)) & 0xFFFFFFFF)
          + _CRC_MASK_DELTA) & 0xFFFFFFFF


def _masked_crc(data: bytes) -> bytes:
  return _U32.pack(masked_crc(data))


@functools.lru_cache(maxsize=4096)
def _record_header(length: int) -> bytes:
  size = _U64.pack(length)
  return size + _masked_crc(size)


def frame_records(data: bytes, record_ends: List[int]) -> bytes:
  """TFRecord file bytes for the records stored back to back in ``data``:
  each is framed as its little-endian uint64 length, the masked CRC-32C of
  that length, the record, and the masked CRC-32C of the record (the format
  of ``tf.io.TFRecordWriter`` and Beam's ``WriteToTFRecord``)."""
  parts: List[bytes] = []
  start = 0
  for end in record_ends:
    record = data[start:end]
    parts += (_record_header(end - start), record, _masked_crc(record))
    start = end
  return b"".join(parts)


def serialize_framed(batch: MaskedBatch, masks: bool = True,
                     label: bool = True, boundary: bool = False,
                     langs: bool = False) -> bytes:
  """``batch`` as a run of framed TFRecord records, ready to append to a
  shard."""
  return _serialize(batch, masks, label, boundary, langs, framed=True)[0]


def shard_suffix(compression: str) -> str:
  return ".tfrecord.gz" if compression == "gzip" else ".tfrecord"


def schema_text(layout: ExampleLayout) -> str:
  """The records' schema as a tensorflow-metadata ``Schema`` in text form:
  one fixed-shape, always-present INT or FLOAT feature per feature of
  ``feature_lengths`` (what tensorflow-transform writes for a
  ``FixedLenFeature`` spec). Built from the metadata protos alone, so the
  job never imports TensorFlow."""
  # pylint: disable=import-outside-toplevel
  from google.protobuf import text_format
  from tensorflow_metadata.proto.v0 import schema_pb2
  schema = schema_pb2.Schema()
  lengths = feature_lengths(layout)
  for name in sorted(lengths):
    feature = schema.feature.add()
    feature.name = name
    feature.type = (schema_pb2.FLOAT if name in FLOAT_FEATURES
                    else schema_pb2.INT)
    feature.presence.min_fraction = 1.0
    feature.shape.dim.add().size = lengths[name]
  return text_format.MessageToString(schema)


def write_schema(output_dir: str, layout: ExampleLayout) -> str:
  """Writes ``transformed_metadata/schema.pbtxt`` so that
  ``tft.TFTransformOutput(output_dir).transformed_feature_spec()`` returns
  the feature spec. Goes through Beam's FileSystems, so s3:// works too."""
  path = FileSystems.join(output_dir, "transformed_metadata", "schema.pbtxt")
  with FileSystems.create(path) as f:
    f.write(schema_text(layout).encode())
  return path


class _FramedTFRecordSink(filebasedsink.FileBasedSink):
  """A TFRecord sink whose elements are runs of already framed records (one
  batch each), appended to the shard as they are.

  Files, shard names, temp-file handling and compression are Beam's
  ``FileBasedSink``, as for ``WriteToTFRecord``; what differs is only that
  one element carries a whole batch. With one element per record, Beam's
  per-element work (window assignment, the write DoFn, four small writes a
  record) cost more CPU than masking and serialization together.
  """

  def __init__(self, file_path_prefix: str, file_name_suffix: str,
               num_shards: int, compression_type: str):
    super().__init__(file_path_prefix, coder=coders.BytesCoder(),
                     file_name_suffix=file_name_suffix,
                     num_shards=num_shards,
                     mime_type="application/octet-stream",
                     compression_type=compression_type)

  def write_encoded_record(self, file_handle, value):
    file_handle.write(value)


class WriteExamples(beam.PTransform):
  """Serializes and writes the examples; output: the shard file names.

  No shuffle here: the instances arrive shuffled. Each dupe pass of each
  document went to a random pool (CreateInstances), and each pool's
  instances come out in random order, so a shard holds random pools' worth of
  random document passes in random order, and the passes of one document
  land in different shards. A separate shuffle of the records would move
  three times the bytes of the documents for no gain in mixing that BERT's
  input pipeline (interleaved shards, shuffle buffer) would notice.

  A batch stays one element up to the file: it is serialized and framed as
  TFRecords in one step and appended to a shard whole (see
  ``_FramedTFRecordSink``), in the same stage (see ``WriteShards``). With
  ``num_shards`` set, whole batches are dealt to the shards, so shard sizes
  differ by up to a batch.

  ``output_format="parquet"``: Parquet shards with Hugging Face's column
  names instead (``transforms.parquet``), through the same steps.
  ``layout``: which features there are to write (the lengths are the
  batches' own).
  ``done_dir``: with the pools read from files (whose batches come grouped
  between ``GroupMark`` s) and ``num_shards`` 0, one shard per pool group,
  each recorded there when written (``_WriteGroupsDoFn``), so that a
  resumed run reuses it.
  """

  def __init__(self, output_dir: str, *,
               layout: ExampleLayout = ExampleLayout(), num_shards: int = 0,
               compression: str = "none", output_format: str = "tfrecord",
               done_dir: Optional[str] = None):
    super().__init__()
    self._done_dir = done_dir
    self._output_dir = output_dir
    self._num_shards = num_shards
    self._compression = compression
    self._format = output_format
    self._masks = layout.masks
    self._sentence_task = layout.sentence_task
    self._boundary = layout.token_boundary
    self._langs = layout.langs

  def expand(self, batches):
    prefix = FileSystems.join(self._output_dir, SHARD_PREFIX)
    if self._format == "parquet":
      # pylint: disable=import-outside-toplevel
      from transforms import parquet
      sink = parquet.ParquetSink(prefix, self._num_shards, self._masks,
                                 self._sentence_task, self._boundary,
                                 self._langs)
      to_element = functools.partial(parquet.to_table, masks=self._masks,
                                     sentence_task=self._sentence_task,
                                     boundary=self._boundary,
                                     langs=self._langs)
    else:
      sink = _FramedTFRecordSink(
          prefix, file_name_suffix=shard_suffix(self._compression),
          num_shards=self._num_shards,
          compression_type=(CompressionTypes.GZIP
                            if self._compression == "gzip"
                            else CompressionTypes.UNCOMPRESSED))
      to_element = functools.partial(
          serialize_framed, masks=self._masks,
          label=self._sentence_task != "none", boundary=self._boundary,
          langs=self._langs)
    return (
        batches
        | "Serialize" >> beam.Map(_serialized, to_element)
        | "Write" >> WriteShards(sink, self._num_shards, self._done_dir))


def _serialized(batch, to_element):
  """``(records, what the sink appends)`` of a batch; a ``GroupMark`` as
  it is."""
  if isinstance(batch, GroupMark):
    return batch
  return len(batch), to_element(batch)
