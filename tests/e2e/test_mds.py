"""``--output_format=mds`` read back by MosaicML Streaming's own reader
(mosaicml-streaming's ``LocalDataset``, in a venv of its own:
oracles/references.py), every sample checked against the same run's
examples written as Parquet."""

import gzip
import json
import os

import pytest

from oracles import references
from tests.helpers import (REPO, assert_refused, one_error_line,
                           read_parquet_rows, run_cli, run_tool,
                           write_lines_corpus)

SAMPLE = os.path.join(REPO, "corpora", "sample", "*.txt")


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
  """Enough documents for several pool groups with a small pool size."""
  return ",".join(write_lines_corpus(str(tmp_path_factory.mktemp("mds")),
                                     num_files=3, docs_per_file=20, seed=11))


def _parquet_rows(output):
  return [{k: (v.tolist() if hasattr(v, "tolist") else v)
           for k, v in row.items()} for row in read_parquet_rows(output)]


@pytest.mark.parametrize("flags, columns", [
    # ModernBERT's and RoBERTa's layout: packed sentences, no segments.
    (["--preset=roberta"], ["input_ids"]),
    # ELECTRA's: segment pairs without a sentence task.
    (["--preset=electra"], ["input_ids", "token_type_ids"]),
    # Pairs with ALBERT's sentence order, masked by the trainer.
    (["--sentence_task=sop", "--masking=none"],
     ["input_ids", "sentence_order_label", "token_type_ids"]),
])
def test_mds_read_by_streaming_holds_the_runs_examples(
    readers_python, corpus, flags, columns, tmp_path):
  common = ["--input=" + corpus, "--max_seq_length=64",
            "--random_next_pool_size=8", "--mds_shard_bytes=4096"] + flags
  outs = {}
  for workers in (1, 2):
    outs[workers] = str(tmp_path / ("w%d" % workers))
    run_cli(common + ["--output=" + outs[workers], "--output_format=mds",
                      "--direct_num_workers=%d" % workers])
  names = sorted(os.listdir(outs[1]))
  assert names == sorted(os.listdir(outs[2]))
  shards = [n for n in names if n.startswith("shard.")]
  assert len(shards) > 2  # several groups, several shards within one
  for name in shards + ["index.json"]:
    with open(os.path.join(outs[1], name), "rb") as a, \
        open(os.path.join(outs[2], name), "rb") as b:
      assert a.read() == b.read(), name

  read = references.mds_read(readers_python, outs[1])
  assert read["dtypes"]["input_ids"] == "uint16"
  parquet = str(tmp_path / "parquet")
  run_cli(common + ["--output=" + parquet, "--output_format=parquet"])
  expected = _parquet_rows(parquet)
  samples = read["samples"]
  assert len(samples) == len(expected)
  with open(os.path.join(outs[1], "summary.json"), encoding="utf-8") as f:
    summary = json.load(f)
  assert summary["counts"]["instances"] == len(samples)
  assert sum(s["records"] for s in summary["shards"]
             if s["path"].startswith("shard.")) == len(samples)
  for sample, row in zip(samples, expected):
    assert sorted(sample) == columns
    assert sample["input_ids"] == row["input_ids"]
    if "token_type_ids" in sample:
      assert sample["token_type_ids"] == row["token_type_ids"]
    if "sentence_order_label" in sample:
      assert sample["sentence_order_label"] == row["sentence_order_label"]
  with open(os.path.join(outs[1], shards[0]), "rb") as f:
    assert len(f.read()) <= 4096


def test_gzip_compressed_mds_is_read_the_same(readers_python, tmp_path):
  plain, packed = str(tmp_path / "plain"), str(tmp_path / "gz")
  common = ["--input=" + SAMPLE, "--output_format=mds", "--preset=roberta",
            "--max_seq_length=128"]
  run_cli(common + ["--output=" + plain])
  run_cli(common + ["--output=" + packed, "--compression=gzip"])
  zipped = sorted(n for n in os.listdir(packed) if n.startswith("shard."))
  assert zipped and all(n.endswith(".mds.gz") for n in zipped)
  with open(os.path.join(packed, zipped[0]), "rb") as f, \
      open(os.path.join(plain, zipped[0][:-3]), "rb") as g:
    # The same samples; the configuration inside names the compression.
    unpacked, raw = gzip.decompress(f.read()), g.read()
    assert b'"compression": "gz"' in unpacked
    end = b'"version": 2}'
    assert unpacked[:4] == raw[:4]  # the sample count
    assert (unpacked[unpacked.index(end) + len(end):]
            == raw[raw.index(end) + len(end):])  # the samples
  assert (references.mds_read(readers_python, packed)
          == references.mds_read(readers_python, plain))


@pytest.mark.parametrize("flags, message", [
    ([], "pass --masking=none"),  # BERT's static masks
    (["--preset=roberta", "--num_shards=2"], "drop --num_shards"),
    (["--preset=roberta", "--mds_shard_bytes=10"], "at least 1024"),
    (["--preset=roberta", "--mds_shard_bytes=4294967296"], "below 2**32"),
])
def test_flags_mds_cannot_take_are_refused(flags, message, tmp_path):
  assert_refused(["--input=" + SAMPLE, "--output=" + str(tmp_path / "o"),
                  "--output_format=mds"] + flags, message)



def test_inspect_and_report_read_mds(tmp_path):
  out = str(tmp_path / "o")
  run_cli(["--input=" + SAMPLE, "--output=" + out, "--output_format=mds",
           "--preset=electra"])
  shown = run_tool("inspect", [out, "--num=1"])
  assert shown.returncode == 0, shown.stderr
  assert "every record's layout, features and values hold" in shown.stdout
  assert "index.json lists every shard" in shown.stdout
  assert "shard.00000.0000.mds record 0: " in shown.stdout
  report = run_tool("report", [out, "--out=" + str(tmp_path / "plots")])
  assert report.returncode == 0, report.stderr
  # A shard whose offsets run past its end.
  shard = os.path.join(out, "shard.00000.0000.mds")
  with open(shard, "rb") as f:
    data = f.read()
  with open(shard, "wb") as f:
    f.write(data[:-3])
  bad = run_tool("inspect", [out])
  assert bad.returncode == 1
  assert "shard.00000.0000.mds" in one_error_line(bad.stderr)


def test_inspect_checks_index_json_and_a_foreign_one_is_never_removed(
    tmp_path):
  out = str(tmp_path / "o")
  args = ["--input=" + SAMPLE, "--output=" + out, "--output_format=mds",
          "--preset=roberta", "--max_seq_length=64", "--mds_shard_bytes=2048"]
  run_cli(args)
  index_path = os.path.join(out, "index.json")
  with open(index_path, encoding="utf-8") as f:
    index = json.load(f)
  index["shards"].pop()
  with open(index_path, "w", encoding="utf-8") as f:
    json.dump(index, f)
  bad = run_tool("inspect", [out, "--num=0"])
  assert bad.returncode == 1
  assert "is not in index.json" in one_error_line(bad.stderr)
  # Someone else's index.json: the output is refused, even with
  # --overwrite, and the file stays.
  other = tmp_path / "theirs"
  other.mkdir()
  (other / "index.json").write_text('{"my": "own index"}')
  refused = run_cli(["--input=" + SAMPLE, "--output=" + str(other),
                     "--output_format=parquet", "--preset=roberta",
                     "--overwrite"], check=False)
  assert refused.returncode == 2, refused.stderr
  assert (other / "index.json").read_text() == '{"my": "own index"}'
