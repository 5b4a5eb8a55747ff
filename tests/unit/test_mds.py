"""transforms/mds.py's plain functions: columns, samples and shards as
mosaicml-streaming 0.13's MDSWriter lays them out (its own reader reads
them in tests/e2e/test_mds.py)."""

import json

import numpy as np
import pytest

from transforms import mds
from transforms.masking import MaskedBatch


def _batch(rows, a_lengths, labels):
  n, width = len(rows), max(map(len, rows))
  ids = np.zeros((n, width), np.int32)
  for i, row in enumerate(rows):
    ids[i, :len(row)] = row
  empty = np.zeros((n, 0), np.uint16)
  return MaskedBatch((0, 0), ids, np.array(list(map(len, rows)), np.int32),
                     np.array(a_lengths, np.int32), empty, empty.astype(
                         np.int32), np.zeros(n, np.int32),
                     np.array(labels, np.uint8))


def test_columns_by_mode_in_name_order():
  assert [c.name for c in mds.columns(30522, False, "none")] == ["input_ids"]
  cols = mds.columns(30522, True, "sop")
  assert [(c.name, c.encoding, c.size) for c in cols] == [
      ("input_ids", "ndarray:uint16", None),
      ("sentence_order_label", "uint8", 1),
      ("token_type_ids", "ndarray:uint8", None)]
  assert mds.columns(65536, False, "none")[0].encoding == "ndarray:uint16"
  assert mds.columns(65537, False, "none")[0].encoding == "ndarray:uint32"


def test_a_shard_decodes_to_its_samples():
  cols = mds.columns(30522, True, "nsp")
  batch = _batch([[101, 7, 102, 8, 102], [101, 9, 102]], [1, 1], [1, 0])
  samples = mds.encode_batch(batch, cols, np.dtype("<u2"))
  config = mds.shard_config(cols, None, 1 << 26)
  data = mds.shard_bytes(samples, config)
  n = int(np.frombuffer(data, "<u4", 1)[0])
  offsets = np.frombuffer(data, "<u4", n + 1, 4)
  assert n == 2 and offsets[-1] == len(data)
  found_config, decoded = mds.decode_shard(data)
  assert found_config == config
  assert json.dumps(config, sort_keys=True).encode() in data
  assert decoded[0]["input_ids"].tolist() == [101, 7, 102, 8, 102]
  assert decoded[0]["token_type_ids"].tolist() == [0, 0, 0, 1, 1]
  assert decoded[0]["next_sentence_label"] == 1
  assert decoded[1]["input_ids"].tolist() == [101, 9, 102]
  assert decoded[1]["next_sentence_label"] == 0
  # ndarray:uint16, one dimension of uint8 length: 0b100 | 0, then 5.
  assert samples[0][4 * 2:4 * 2 + 2] == bytes([4, 5])
  with pytest.raises(ValueError):
    mds.decode_shard(data[:-1])
  # A sample whose column size says 0, or more than the sample holds.
  start = int(offsets[0])
  for size in (0, 1000):
    broken = bytearray(data)
    broken[start:start + 4] = np.array([size], "<u4").tobytes()
    with pytest.raises(ValueError, match="a column input_ids"):
      mds.decode_shard(bytes(broken))


def test_index_problem_names_what_a_reader_would_miss():
  index = {"version": 2, "shards": [
      {"raw_data": {"basename": "shard.00000.0000.mds", "bytes": 10},
       "zip_data": None},
      {"raw_data": {"basename": "shard.00001.0000.mds", "bytes": 7},
       "zip_data": {"basename": "shard.00001.0000.mds.gz", "bytes": 5}}]}
  files = {"shard.00000.0000.mds": 10, "shard.00001.0000.mds.gz": 5}
  assert mds.index_problem(index, files) is None
  assert "holds 11 bytes" in mds.index_problem(
      index, dict(files, **{"shard.00000.0000.mds": 11}))
  assert "is not in index.json" in mds.index_problem(
      index, dict(files, **{"shard.00002.0000.mds": 3}))
  assert "which is missing" in mds.index_problem(
      index, {"shard.00000.0000.mds": 10})
  assert not mds.is_index(b'{"my": "own index"}')


def test_the_modernbert_preset_writes_packed_unmasked_mds():
  from pipelines import options  # pylint: disable=import-outside-toplevel
  opts = options.MlmOptions(["--input=x", "--output=y",
                             "--preset=modernbert"])
  options.resolve(opts)
  assert (opts.output_format, opts.packing, opts.masking, opts.sentence_task,
          opts.max_seq_length, opts.dupe_factor) == (
              "mds", "doc_sentences", "none", "none", 1024, 1)
  assert list(options.objective_errors(opts)) == []
