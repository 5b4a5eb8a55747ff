"""The hand-written tf.train.Example encoder against TensorFlow's parser;
ALBERT's token_boundary and XLM's langs in both formats."""

import dataclasses

import numpy as np
import pyarrow as pa
import pytest
import tensorflow as tf

from transforms import examples, kernels, parquet
from transforms.masking import MaskedBatch


def _random_batch(n=50, L=16, P=5, seed=0):
  rng = np.random.default_rng(seed)
  lengths = rng.integers(5, L + 1, size=n).astype(np.int32)
  input_ids = rng.integers(1, 40000, size=(n, L)).astype(np.int32)
  input_ids[np.arange(L)[None, :] >= lengths[:, None]] = 0
  input_ids[0, :8] = [0, 1, 127, 128, 16383, 16384, 2 ** 21 - 1, 2 ** 21]
  num = rng.integers(0, P + 1, size=n).astype(np.int32)
  positions = np.sort(rng.integers(1, 5, size=(n, P)), axis=1).astype(np.uint16)
  positions[np.arange(P)[None, :] >= num[:, None]] = 0
  return MaskedBatch(
      key=(0, 0),
      input_ids=input_ids,
      lengths=lengths,
      a_lengths=(lengths // 2 - 1).astype(np.int32),
      masked_lm_positions=positions,
      masked_lm_ids=rng.integers(0, 30522, size=(n, P)).astype(np.uint16),
      num_predictions=num,
      next_sentence_labels=rng.integers(0, 2, size=n).astype(np.uint8))


def test_varints_match_protobuf():
  values = np.array([[0, 1, 127, 128, 300, 16384, 2 ** 31, 2 ** 40],
                     [5, 0, 0, 0, 0, 0, 0, 1]])
  columns, used = examples.varint_columns(values)
  for row, row_used, row_values in zip(columns, used, values):
    expected = b"".join(examples._varint(int(v)) for v in row_values)
    assert row[row_used].tobytes() == expected


@pytest.mark.parametrize("top,dtype", [
    (top, dtype)
    for top in (1, 127, 128, 16383, 16384, 2 ** 21 - 1, 2 ** 21, 2 ** 28 - 1,
                2 ** 28)
    for dtype in (np.uint16, np.int32, np.uint32, np.int64)
    if top <= np.iinfo(dtype).max])
def test_varints_of_every_width_match_protobuf(top, dtype):
  """Each width's layout (one, two, four slots a value, or one per byte
  beyond four) gives protobuf's own varint bytes."""
  from google.protobuf.internal.encoder import _VarintBytes
  rng = np.random.default_rng(top)
  values = rng.integers(0, top + 1, size=(6, 11)).astype(dtype)
  values[0, 0], values[1, 3] = top, 0
  columns, used = examples.varint_columns(values)
  known, known_used = examples.varint_columns(values, top=top)
  assert np.array_equal(columns[used], known[known_used])
  for row, row_used, row_values in zip(columns, used, values):
    expected = b"".join(_VarintBytes(int(v)) for v in row_values)
    assert row[row_used].tobytes() == expected


def test_serialized_examples_parse_with_tensorflow():
  batch = _random_batch()
  records = examples.serialize_batch(batch)
  assert len(records) == 50
  spec = examples.feature_spec(examples.ExampleLayout(
      max_seq_length=16, max_predictions_per_seq=5))
  for i, record in enumerate(records):
    proto = tf.train.Example.FromString(record)
    assert set(proto.features.feature) == set(examples.FEATURE_NAMES)
    parsed = tf.io.parse_single_example(record, spec)
    for name in examples.FEATURE_NAMES:
      want = getattr(batch, name)[i].astype(np.float64)
      got = parsed[name].numpy()
      assert np.array_equal(got.astype(np.float64),
                            np.reshape(want, got.shape)), name
  # The same bytes TensorFlow would write for the same values, up to the
  # order of map entries (which protobuf leaves open).
  proto = tf.train.Example.FromString(records[3])
  again = tf.train.Example.FromString(proto.SerializeToString())
  assert again == proto


def test_schema_is_tft_metadata(tmp_path):
  import tensorflow_transform as tft
  layout = examples.ExampleLayout(max_seq_length=64,
                                  max_predictions_per_seq=10)
  examples.write_schema(str(tmp_path), layout)
  spec = tft.TFTransformOutput(str(tmp_path)).transformed_feature_spec()
  assert spec == examples.feature_spec(layout)


def test_framed_batch_is_tfrecord_file_content(tmp_path):
  """serialize_framed gives the bytes TensorFlow's TFRecordWriter writes for
  the same records, and TFRecordDataset reads them back."""
  batch = _random_batch(n=30)
  records = examples.serialize_batch(batch)
  path = str(tmp_path / "want.tfrecord")
  with tf.io.TFRecordWriter(path) as writer:
    for record in records:
      writer.write(record)
  framed = examples.serialize_framed(batch)
  with open(path, "rb") as f:
    assert framed == f.read()
  (tmp_path / "got.tfrecord").write_bytes(framed + framed)
  read = [r.numpy() for r in tf.data.TFRecordDataset(
      str(tmp_path / "got.tfrecord"))]
  assert read == records + records
  assert examples.frame_records(b"", []) == b""


def test_write_examples_writes_one_shard_per_pool_group(tmp_path):
  """With the pools read from files, each group's batches (between its
  GroupMarks) become one shard named after the group, written whole; an
  empty group writes no shard; each group's record names its shard, its
  size and what was counted for it."""
  import json
  import apache_beam as beam
  from transforms import metrics
  from transforms import shards
  from transforms.shards import GroupMark
  from tests.helpers import local_test_pipeline

  batches = {0: [_random_batch(n=7, seed=1), _random_batch(n=5, seed=2)],
             1: [], 2: [_random_batch(n=3, seed=3)]}

  def group(g):
    metrics.start_tally()  # as the pools' reader does for each group
    metrics.count("instances", sum(len(b) for b in batches[g]))
    yield GroupMark(g, 3, end=False)
    yield from batches[g]
    yield GroupMark(g, 3, end=True)

  out, done = str(tmp_path / "out"), str(tmp_path / "done")
  with local_test_pipeline() as p:
    _ = (p | beam.Create([0, 1, 2]) | beam.FlatMap(group)
         | examples.WriteExamples(out, done_dir=done))
  for g in range(3):
    name = "part-%05d-of-00003.tfrecord" % g
    framed = b"".join(examples.serialize_framed(b) for b in batches[g])
    n = sum(len(b) for b in batches[g])
    with open(shards.group_record_path(done, g)) as f:
      record = json.load(f)
    if not n:  # no shard for an empty group, only its record
      assert not (tmp_path / "out" / name).exists()
      assert record["files"] == [] and record["pool_files"] == []
      continue
    with open(tmp_path / "out" / name, "rb") as f:
      assert f.read() == framed
    assert record["files"] == [[name, len(framed)]]
    assert record["tally"]["counts"] == (
        {"instances": n, shards.SHARD_RECORDS_PREFIX + name: n} if n
        else {})
  assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
      "part-00000-of-00003.tfrecord", "part-00002-of-00003.tfrecord"]


def test_write_examples_shards_parse_with_tensorflow(tmp_path):
  """WriteExamples on Beam, dealing batches to a fixed number of shards:
  the shards are named part-NNNNN-of-00002.tfrecord, TensorFlow parses
  every record with BERT's feature spec, and the examples read back are
  the batches' rows, each once, feature for feature."""
  import apache_beam as beam  # pylint: disable=import-outside-toplevel
  from tests.helpers import local_test_pipeline, read_examples  # pylint: disable=import-outside-toplevel
  batches = [_random_batch(n=n, seed=s) for s, n in ((4, 30), (5, 11),
                                                     (6, 19))]
  out = str(tmp_path / "out")
  with local_test_pipeline() as p:
    _ = (p | beam.Create(batches)
         | examples.WriteExamples(out, num_shards=2))
  assert sorted(f.name for f in (tmp_path / "out").iterdir()) == [
      "part-00000-of-00002.tfrecord", "part-00001-of-00002.tfrecord"]
  parsed = read_examples(out, max_seq_length=16, max_predictions_per_seq=5)

  def rows(features):
    return sorted(
        (tuple(f["input_ids"]), tuple(f["input_mask"]), tuple(f["segment_ids"]),
         tuple(f["masked_lm_positions"]),
         tuple(f["masked_lm_ids"][f["masked_lm_weights"] > 0]),
         tuple(f["masked_lm_weights"]), int(f["next_sentence_labels"][0]))
        for f in features)

  expected = []
  for b in batches:
    for i in range(len(b)):
      expected.append({
          "input_ids": b.input_ids[i], "input_mask": b.input_mask[i],
          "segment_ids": b.segment_ids[i],
          "masked_lm_positions": b.masked_lm_positions[i],
          "masked_lm_ids": b.masked_lm_ids[i],
          "masked_lm_weights": b.masked_lm_weights[i],
          "next_sentence_labels": b.next_sentence_labels[i:i + 1]})
  assert len(parsed) == sum(len(b) for b in batches) == 60
  assert rows(parsed) == rows(expected)


def _with_boundary(batch, seed=0):
  """``batch`` with a token_boundary: random 0/1 within each row's length,
  1 at its first and last token, 0 in the padding."""
  import dataclasses  # pylint: disable=import-outside-toplevel
  n, L = batch.input_ids.shape
  cols = np.arange(L)[None, :]
  boundary = np.random.default_rng(seed).integers(0, 2, size=(n, L))
  boundary[(cols == 0) | (cols == batch.lengths[:, None] - 1)] = 1
  boundary[cols >= batch.lengths[:, None]] = 0
  return dataclasses.replace(batch, token_boundary=boundary.astype(np.uint8))


def test_token_boundary_is_written_as_albert_writes_it():
  """With ``boundary`` the records hold ALBERT's token_boundary as well,
  [max_seq_length] int64 after BERT's token features, and parse with the
  layout's spec; without it the records are byte for byte those of a
  batch that carries none, and a batch without one cannot be written with
  one."""
  plain = _random_batch(n=20)
  batch = _with_boundary(plain)
  layout = examples.ExampleLayout(max_seq_length=16,
                                  max_predictions_per_seq=5,
                                  token_boundary=True)
  assert list(examples.feature_lengths(layout))[:4] == [
      "input_ids", "input_mask", "segment_ids", "token_boundary"]
  spec = examples.feature_spec(layout)
  assert spec["token_boundary"] == tf.io.FixedLenFeature([16], tf.int64)
  records = examples.serialize_batch(batch, boundary=True)
  for i, record in enumerate(records):
    proto = tf.train.Example.FromString(record)
    assert set(proto.features.feature) == set(examples.FEATURE_NAMES) | {
        "token_boundary"}
    parsed = tf.io.parse_single_example(record, spec)
    assert parsed["token_boundary"].numpy().tolist() == (
        batch.token_boundary[i].tolist())
    assert parsed["input_ids"].numpy().tolist() == (
        batch.input_ids[i].tolist())
  assert examples.serialize_framed(batch) == examples.serialize_framed(plain)
  assert examples.serialize_batch(batch, masks=False, label=False) == (
      examples.serialize_batch(plain, masks=False, label=False))
  with pytest.raises(ValueError, match="no token_boundary"):
    examples.serialize_batch(plain, boundary=True)
  with pytest.raises(ValueError, match="no token_boundary"):
    parquet.to_table(plain, boundary=True)


@pytest.mark.parametrize("extra,task,names", [
    ({"token_boundary": True}, "sop", ["next_sentence_labels",
                                       "token_boundary"]),
    ({"langs": True}, "none", ["langs"])])
def test_schema_with_an_extra_feature_is_tft_metadata(tmp_path, extra, task,
                                                     names):
  """ALBERT's token_boundary and XLM's langs in the schema TFT reads."""
  import tensorflow_transform as tft
  layout = examples.ExampleLayout(max_seq_length=64, masking="none",
                                  sentence_task=task, **extra)
  examples.write_schema(str(tmp_path), layout)
  spec = tft.TFTransformOutput(str(tmp_path)).transformed_feature_spec()
  assert spec == examples.feature_spec(layout)
  assert sorted(spec) == sorted(["input_ids", "input_mask", "segment_ids"]
                                + names)


def _written(tmp_path, batches, layout, output_format):
  """What WriteExamples wrote of ``batches`` with ``layout`` as one shard:
  Parquet rows, or the TFRecords parsed with the layout's features."""
  import apache_beam as beam  # pylint: disable=import-outside-toplevel
  from tests.helpers import (local_test_pipeline, read_examples,  # pylint: disable=import-outside-toplevel
                             read_parquet_rows)
  out = str(tmp_path / "out")
  with local_test_pipeline() as p:
    _ = (p | beam.Create(batches)
         | examples.WriteExamples(out, layout=layout, num_shards=1,
                                  output_format=output_format))
  if output_format == "parquet":
    return read_parquet_rows(out)
  return read_examples(out, max_seq_length=layout.max_seq_length,
                       max_predictions_per_seq=layout.max_predictions_per_seq,
                       token_boundary=layout.token_boundary,
                       langs=layout.langs)


@pytest.mark.parametrize("output_format", ["tfrecord", "parquet"])
def test_write_examples_writes_the_token_boundary_the_layout_asks_for(
    tmp_path, output_format):
  """WriteExamples with ``layout.token_boundary``: TFRecord features and a
  Parquet column of that name, each example's row unpadded in Parquet
  (int8) and padded with 0 in TFRecord, as the batches hold it."""
  batches = [_with_boundary(_random_batch(n=n, seed=s), seed=s)
             for s, n in ((7, 13), (8, 9))]
  layout = examples.ExampleLayout(max_seq_length=16,
                                  max_predictions_per_seq=5,
                                  token_boundary=True)
  rows = _written(tmp_path, batches, layout, output_format)
  want = sorted((tuple(b.input_ids[i, :b.lengths[i]].tolist()),
                 tuple(b.token_boundary[i, :b.lengths[i]].tolist()))
                for b in batches for i in range(len(b)))
  if output_format == "parquet":
    assert parquet.schema(True, "nsp", True).field(
        "token_boundary").type == pa.list_(pa.int8())
    got = [(tuple(r["input_ids"].tolist()), tuple(r["token_boundary"].tolist()))
           for r in rows]
  else:
    got = []
    for r in rows:
      n = int(r["input_mask"].sum())
      assert not r["token_boundary"][n:].any()
      got.append((tuple(r["input_ids"][:n].tolist()),
                  tuple(r["token_boundary"][:n].tolist())))
  assert sorted(got) == want


def _with_languages(batch, seed=0):
  """``batch`` with each row's language id (0-2)."""
  import dataclasses  # pylint: disable=import-outside-toplevel
  ids = np.random.default_rng(seed).integers(0, 3, size=len(batch))
  return dataclasses.replace(batch, languages=ids.astype(np.uint16))


def test_langs_is_written_as_xlm_reads_it():
  """With ``langs`` the records hold XLM's langs too, [max_seq_length]
  int64 after the token features (after token_boundary when both are
  there): the row's language id at every position, padding included.
  Without it the records are byte for byte those of a batch that carries
  no languages, and a batch without languages cannot be written with
  it."""
  plain = _random_batch(n=20)
  batch = _with_languages(plain)
  layout = examples.ExampleLayout(max_seq_length=16,
                                  max_predictions_per_seq=5, langs=True)
  assert list(examples.feature_lengths(layout))[:4] == [
      "input_ids", "input_mask", "segment_ids", "langs"]
  assert list(examples.feature_lengths(examples.ExampleLayout(
      token_boundary=True, langs=True)))[3:5] == ["token_boundary", "langs"]
  spec = examples.feature_spec(layout)
  assert spec["langs"] == tf.io.FixedLenFeature([16], tf.int64)
  records = examples.serialize_batch(batch, langs=True)
  for i, record in enumerate(records):
    proto = tf.train.Example.FromString(record)
    assert set(proto.features.feature) == set(examples.FEATURE_NAMES) | {
        "langs"}
    parsed = tf.io.parse_single_example(record, spec)
    assert parsed["langs"].numpy().tolist() == [int(batch.languages[i])] * 16
    assert parsed["input_ids"].numpy().tolist() == (
        batch.input_ids[i].tolist())
  both = _with_boundary(batch)
  for record in examples.serialize_batch(both, boundary=True, langs=True):
    parsed = tf.io.parse_single_example(record, examples.feature_spec(
        examples.ExampleLayout(max_seq_length=16, max_predictions_per_seq=5,
                               token_boundary=True, langs=True)))
    assert parsed["langs"].shape == parsed["token_boundary"].shape == (16,)
  # Off: the bytes of a batch without languages, every layout.
  assert examples.serialize_framed(batch) == examples.serialize_framed(plain)
  assert examples.serialize_batch(batch, masks=False, label=False) == (
      examples.serialize_batch(plain, masks=False, label=False))
  assert examples.serialize_framed(_with_boundary(batch), boundary=True) == (
      examples.serialize_framed(_with_boundary(plain), boundary=True))
  table = parquet.to_table(batch)
  assert table.equals(parquet.to_table(plain))
  assert "langs" not in table.column_names
  with pytest.raises(ValueError, match="no languages"):
    examples.serialize_batch(plain, langs=True)
  with pytest.raises(ValueError, match="no languages"):
    parquet.to_table(plain, langs=True)


@pytest.mark.parametrize("output_format", ["tfrecord", "parquet"])
def test_write_examples_writes_the_langs_the_layout_asks_for(tmp_path,
                                                             output_format):
  """WriteExamples with ``layout.langs``: a TFRecord feature and a Parquet
  column (int32, unpadded as the other columns) of that name, each row's
  language id at every position."""
  batches = [_with_languages(_random_batch(n=n, seed=s), seed=s)
             for s, n in ((7, 13), (8, 9))]
  layout = examples.ExampleLayout(max_seq_length=16,
                                  max_predictions_per_seq=5, langs=True)
  rows = _written(tmp_path, batches, layout, output_format)
  want = sorted((tuple(b.input_ids[i, :b.lengths[i]].tolist()),
                 int(b.languages[i]))
                for b in batches for i in range(len(b)))
  got = []
  if output_format == "parquet":
    assert parquet.schema(True, "nsp", langs=True).field(
        "langs").type == pa.list_(pa.int32())
    for r in rows:
      assert len(r["langs"]) == len(r["input_ids"])
      assert len(set(r["langs"].tolist())) == 1
      got.append((tuple(r["input_ids"].tolist()), int(r["langs"][0])))
  else:
    for r in rows:
      n = int(r["input_mask"].sum())
      assert len(set(r["langs"].tolist())) == 1  # padding too
      got.append((tuple(r["input_ids"][:n].tolist()), int(r["langs"][0])))
  assert sorted(got) == want


@pytest.mark.parametrize("options", [
    dict(masks=m, label=l, boundary=b, langs=g, framed=f)
    for m in (True, False) for l in (True, False) for b in (True, False)
    for g in (True, False) for f in (True, False)])
@pytest.mark.parametrize("variant", ["plain", "pairs2", "roberta_segments",
                                     "wide_ids", "empty"])
def test_c_encoder_writes_the_numpy_paths_bytes(monkeypatch, options,
                                                variant):
  """The C encoder and the numpy path write the same bytes, for every
  combination of features, framed or not, with two separators or RoBERTa's
  segment ids, ids of every varint width up to five bytes (uint32), and an
  empty batch. (The tests above check the bytes against TensorFlow.)"""
  if kernels.record_encoder() is None:
    pytest.skip("the C encoder is not built here (no C compiler)")
  batch = _with_languages(_with_boundary(_random_batch(n=40, seed=7)))
  if variant == "pairs2":
    batch = dataclasses.replace(batch, separators=2)
  elif variant == "roberta_segments":
    batch = dataclasses.replace(batch, segment_b=0)
  elif variant == "wide_ids":
    ids = batch.input_ids.astype(np.uint32)
    ids[1, :6] = [2 ** 28 - 1, 2 ** 28, 2 ** 32 - 1, 2 ** 31, 2 ** 14, 5]
    batch = dataclasses.replace(batch, input_ids=ids)
  elif variant == "empty":
    batch = dataclasses.replace(batch, **{
        f.name: getattr(batch, f.name)[:0]
        for f in dataclasses.fields(batch)
        if isinstance(getattr(batch, f.name), np.ndarray)})
  c = examples._serialize(batch, **options)
  monkeypatch.setattr(kernels, "numpy_only", True)
  assert examples._serialize(batch, **options) == c


def test_c_encoder_takes_the_numpy_path_for_wide_types_and_refuses_negatives(
    monkeypatch):
  batch = _random_batch(n=10)
  wide = batch.input_ids.astype(np.int64)
  assert examples._encoder_features(
      dataclasses.replace(batch, input_ids=wide), ["input_ids"], True) is None
  swapped = batch.input_ids.astype(">i4")  # not the machine's byte order
  assert examples._encoder_features(
      dataclasses.replace(batch, input_ids=swapped), ["input_ids"],
      True) is None
  assert examples._serialize(dataclasses.replace(
      batch, input_ids=swapped)) == examples._serialize(batch)
  negative = batch.input_ids.copy()
  negative[2, 3] = -1
  with pytest.raises(ValueError, match="negative feature value"):
    examples._serialize(dataclasses.replace(batch, input_ids=negative))
  monkeypatch.setattr(kernels, "numpy_only", True)
  with pytest.raises(ValueError, match="negative feature value"):
    examples._serialize(dataclasses.replace(batch, input_ids=negative))


def test_c_encoders_crc32c_is_tfrecords():
  """Both ways the C encoder computes CRC-32C (the CPU's instruction, the
  tables) give TFRecord's masked CRC of google-crc32c."""
  if kernels.record_encoder() is None:
    pytest.skip("the C encoder is not built here (no C compiler)")
  rng = np.random.default_rng(3)
  for n in (0, 1, 7, 8, 9, 15, 16, 17, 100, 4097):
    data = rng.integers(0, 256, size=n, dtype=np.uint8).tobytes()
    for portable in (False, True):
      assert kernels.record_encoder().masked_crc32c(data, portable) == (
          examples.masked_crc(data)), (n, portable)
