"""The hand-written tf.train.Example encoder against TensorFlow's parser."""

import numpy as np
import tensorflow as tf

from transforms import examples
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


def test_serialized_examples_parse_with_tensorflow():
  batch = _random_batch()
  records = examples.serialize_batch(batch)
  assert len(records) == 50
  spec = examples.feature_spec(16, 5)
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
  examples.write_schema(str(tmp_path), 64, 10)
  spec = tft.TFTransformOutput(str(tmp_path)).transformed_feature_spec()
  assert spec == examples.feature_spec(64, 10)


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
