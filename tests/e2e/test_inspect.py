"""python -m pipelines.inspect, as a user runs it: on valid outputs of every
format and objective, and on shards corrupted here in each way a file can
be."""

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from tests.helpers import (REPO, VOCAB, load_vocab_list, one_error_line,
                           read_examples, run_cli, shard_files,
                           write_lines_corpus)


def inspect(*args, check=None):
  proc = subprocess.run([sys.executable, "-m", "pipelines.inspect"]
                        + list(args), cwd=REPO, capture_output=True,
                        text=True, timeout=300,
                        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"))
  if check is not None:
    assert proc.returncode == check, proc.stdout + proc.stderr
  return proc


@pytest.fixture(scope="module", name="outputs")
def _outputs(tmp_path_factory):
  base = tmp_path_factory.mktemp("inspect")
  corpus = write_lines_corpus(str(base / "corpus"), num_files=2,
                              docs_per_file=12, seed=5)
  made = {}
  for name, flags in {
      "tfrecord": ["--num_shards=2"],
      "parquet": ["--output_format=parquet", "--num_shards=2"],
      "sop_span": ["--preset=albert", "--span_masking=geometric",
                   "--max_seq_length=128", "--compression=gzip"],
      "roberta": ["--preset=roberta", "--max_seq_length=128"],
  }.items():
    out = str(base / name)
    run_cli(["--input=" + ",".join(corpus), "--output=" + out,
             "--dupe_factor=2"] + flags)
    made[name] = out
  return made


def test_a_valid_output_is_checked_and_decoded(outputs):
  out = outputs["tfrecord"]
  proc = inspect(out, "--num=3", check=0)
  examples = read_examples(out)
  shards = [os.path.basename(p) for p in shard_files(out)]
  for shard in shards:
    assert "%s: " % shard in proc.stdout
  assert "2 shards, %d records" % len(examples) in proc.stdout
  # The first three examples, decoded with BERT's vocabulary (the first
  # shard can be empty: few batches, dealt to shards in turn).
  first = next(s for s in shards if os.path.getsize(os.path.join(out, s)))
  vocab = load_vocab_list()
  headers = [l for l in proc.stdout.splitlines() if " record " in l]
  assert len(headers) == 3 and headers[0].startswith(first + " record 0")
  assert "next sentence label" in headers[0]
  blocks = proc.stdout.split(first + " record ")[1:]
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  from transforms.examples import ExampleLayout, feature_spec  # pylint: disable=import-outside-toplevel
  spec = feature_spec(ExampleLayout())
  raw = next(iter(tf.data.TFRecordDataset([os.path.join(out, first)])))
  example = {k: v.numpy() for k, v in tf.io.parse_single_example(
      raw, spec).items()}
  weights = example["masked_lm_weights"] > 0
  positions = example["masked_lm_positions"][weights]
  originals = example["masked_lm_ids"][weights]
  block = blocks[0]
  for position, original in zip(positions, originals):
    shown = vocab[example["input_ids"][position]]
    assert "{%s→%s}" % (shown, vocab[original]) in block
  assert "%d masked" % len(positions) in block
  label = int(example["next_sentence_labels"][0])
  assert ("label %d (%s)" % (label, "B is random" if label else
                              "B follows A")) in headers[0]


@pytest.mark.parametrize("name, expect", [
    ("parquet", "next sentence label"),
    ("sop_span", "sentence order label"),
    ("roberta", "A: "),
])
def test_every_format_and_mode_is_read(outputs, name, expect):
  proc = inspect(outputs[name], "--num=2", check=0)
  assert "valid" in proc.stdout and expect in proc.stdout
  if name == "roberta":  # dynamic masking: no masks, no label
    assert "masked" not in proc.stdout.split("records")[-1]
    assert "label" not in proc.stdout.split("records")[-1]


def read_examples_of(path):
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  return list(tf.data.TFRecordDataset([path]))


def _copy(outputs, name, tmp_path):
  out = str(tmp_path / name)
  shutil.copytree(outputs[name], out)
  return out


def _shard(out):
  """The output's biggest shard (with few batches one can be empty)."""
  return max(shard_files(out), key=os.path.getsize)


def test_a_flipped_byte_is_found_with_its_shard_and_record(outputs, tmp_path):
  out = _copy(outputs, "tfrecord", tmp_path)
  path = _shard(out)
  data = bytearray(open(path, "rb").read())
  data[len(data) // 2] ^= 0x40
  open(path, "wb").write(bytes(data))
  proc = inspect(out, check=1)
  line = one_error_line(proc.stderr)
  assert os.path.basename(path) in line and " record " in line
  assert "CRC" in line


def test_a_cut_shard_is_found(outputs, tmp_path):
  out = _copy(outputs, "tfrecord", tmp_path)
  path = _shard(out)
  data = open(path, "rb").read()
  open(path, "wb").write(data[:-7])
  line = one_error_line(inspect(out, check=1).stderr)
  # The size differs from summary.json's before any record is read.
  assert os.path.basename(path) in line and "summary.json says" in line


def test_a_cut_record_is_found_when_the_size_is_not_recorded(outputs,
                                                             tmp_path):
  out = _copy(outputs, "tfrecord", tmp_path)
  path = _shard(out)
  data = open(path, "rb").read()
  open(path, "wb").write(data[:-7])
  summary_path = os.path.join(out, "summary.json")
  summary = json.load(open(summary_path))
  for shard in summary["shards"]:
    shard["bytes"] = None
  json.dump(summary, open(summary_path, "w"))
  line = one_error_line(inspect(out, check=1).stderr)
  assert "ends inside the record" in line and " record " in line


def test_a_missing_shard_and_a_wrong_count_are_found(outputs, tmp_path):
  out = _copy(outputs, "tfrecord", tmp_path)
  os.remove(_shard(out))
  assert "missing" in one_error_line(inspect(out, check=1).stderr)
  # Each shard's records as its writer counted them, in summary.json.
  out = _copy(outputs, "tfrecord", tmp_path / "per_shard")
  summary_path = os.path.join(out, "summary.json")
  summary = json.load(open(summary_path))
  counts = {s["path"]: s["records"] for s in summary["shards"]}
  assert sum(counts.values()) == summary["counts"]["instances"]
  assert counts == {os.path.basename(p): len(read_examples_of(p))
                    for p in shard_files(out)}
  biggest = os.path.basename(_shard(out))
  for shard in summary["shards"]:
    if shard["path"] == biggest:
      shard["records"] -= 1
  json.dump(summary, open(summary_path, "w"))
  line = one_error_line(inspect(out, check=1).stderr)
  assert biggest in line and "summary.json says %d" % (
      counts[biggest] - 1) in line
  out = _copy(outputs, "parquet", tmp_path / "count")
  summary_path = os.path.join(out, "summary.json")
  summary = json.load(open(summary_path))
  summary["counts"]["instances"] += 1
  json.dump(summary, open(summary_path, "w"))
  assert "counts %d instances" % summary["counts"]["instances"] in (
      one_error_line(inspect(out, check=1).stderr))


def test_a_record_with_values_no_run_makes_is_found(outputs, tmp_path):
  """A well-framed record whose masked position lies past the sequence."""
  # pylint: disable=import-outside-toplevel
  from transforms.examples import frame_records
  import tensorflow as tf
  out = _copy(outputs, "tfrecord", tmp_path)
  path = _shard(out)
  raw = [r.numpy() for r in tf.data.TFRecordDataset([path])]
  example = tf.train.Example.FromString(raw[2])
  positions = example.features.feature["masked_lm_positions"].int64_list
  positions.value[0] = 127
  raw[2] = example.SerializeToString()
  data = b"".join(raw)
  framed = frame_records(data, list(np.cumsum([len(r) for r in raw])))
  open(path, "wb").write(framed)
  summary_path = os.path.join(out, "summary.json")
  summary = json.load(open(summary_path))
  for shard in summary["shards"]:
    if shard["path"] == os.path.basename(path):
      shard["bytes"] = len(framed)
  json.dump(summary, open(summary_path, "w"))
  line = one_error_line(inspect(out, check=1).stderr)
  assert "%s record 2" % os.path.basename(path) in line
  assert "masked positions" in line


def test_a_corrupt_parquet_page_is_found(outputs, tmp_path):
  out = _copy(outputs, "parquet", tmp_path)
  path = _shard(out)
  data = bytearray(open(path, "rb").read())
  data[200] ^= 0xFF  # inside the first column chunk's first page
  open(path, "wb").write(bytes(data))
  line = one_error_line(inspect(out, check=1).stderr)
  assert os.path.basename(path) in line


def test_a_plain_tfrecord_file_of_berts_script_is_read(outputs, tmp_path):
  path = str(tmp_path / "reference.tfrecord")
  shutil.copy(_shard(outputs["tfrecord"]), path)
  proc = inspect(path, "--num=1", "--vocab_file=" + VOCAB, check=0)
  assert "reference.tfrecord record 0" in proc.stdout


def test_bad_arguments(outputs, tmp_path):
  assert "no summary.json" in one_error_line(
      inspect(str(tmp_path), check=2).stderr)
  assert "no shard" in one_error_line(inspect(outputs["tfrecord"],
                                           "--shard=part-9", check=2).stderr)
  assert inspect(outputs["tfrecord"], "--num=-1").returncode == 2
  proc = inspect(outputs["tfrecord"], "--vocab_file=" + str(
      tmp_path / "nope.txt"), check=2)
  assert "nope.txt" in one_error_line(proc.stderr)


def _edit_summary(out, edit):
  path = os.path.join(out, "summary.json")
  with open(path) as f:
    summary = json.load(f)
  with open(path, "w") as f:
    f.write(edit(summary))


def _summary_folder(out):
  os.remove(os.path.join(out, "summary.json"))
  os.mkdir(os.path.join(out, "summary.json"))


def _shard_folder(out):
  path = _shard(out)
  os.remove(path)
  os.mkdir(path)


def _corrupt_gzip(out):
  path = _shard(out)
  data = bytearray(open(path, "rb").read())
  for i in range(len(data) // 3, len(data) // 3 + 64):
    data[i] ^= 0xA5
  open(path, "wb").write(bytes(data))


@pytest.mark.parametrize("name, break_it, flags, code, message", [
    ("tfrecord", lambda out: _edit_summary(out, lambda s: "[]"), [], 2,
     "is not a summary of pipelines.mlm: not a JSON object"),
    ("tfrecord", lambda out: _edit_summary(out, lambda s: "{\"shards\": "),
     [], 2, "cannot read"),
    ("tfrecord", lambda out: _edit_summary(out, lambda s: json.dumps(
        dict(s, shards="part-0"))), [], 2, "'shards' is not a list"),
    ("tfrecord", lambda out: _edit_summary(out, lambda s: json.dumps(
        dict(s, features={"input_ids": "int64"}))), [], 2,
     "feature input_ids has type 'int64'"),
    ("tfrecord", _summary_folder, [], 2, "cannot read"),
    ("tfrecord", _shard_folder, ["--no_validate"], 1, "cannot be opened"),
    ("parquet", _shard_folder, ["--no_validate"], 1, "cannot be opened"),
    ("sop_span", _corrupt_gzip, [], 1, ".tfrecord.gz record "),
    ("tfrecord", lambda out: None, ["--num=many"], 2,
     "argument --num: invalid int value"),
])
def test_every_failure_is_one_error_line(outputs, tmp_path, name, break_it,
                                         flags, code, message):
  """Unreadable and malformed summaries, unreadable shards, a corrupt gzip
  stream, a bad flag: exactly one error: line, no traceback."""
  out = _copy(outputs, name, tmp_path)
  break_it(out)
  proc = inspect(out, *flags)
  assert proc.returncode == code, proc.stderr
  assert message in one_error_line(proc.stderr), proc.stderr
  assert "Traceback" not in proc.stderr


def test_the_document_counters_are_checked_to_add_up(outputs, tmp_path):
  """documents_read = documents kept + dropped + set aside
  (transforms.metrics.document_balance): a real output's summary holds
  it; one more document read than accounted for is an error naming both
  numbers."""
  out = outputs["tfrecord"]
  with open(os.path.join(out, "summary.json"), encoding="utf-8") as f:
    counts = json.load(f)["counts"]
  read, kept = counts["documents_read"], counts["documents"]
  assert read == 24 and kept == 24  # 2 files of 12 documents, all kept
  proc = inspect(out, "--num=0", check=0)
  assert "summary.json: 24 documents read = 24 kept + 0 dropped or set " \
      "aside" in proc.stdout
  out = _copy(outputs, "tfrecord", tmp_path)
  _edit_summary(out, lambda s: json.dumps(dict(s, counts=dict(
      s["counts"], documents_read=s["counts"]["documents_read"] + 1))))
  proc = inspect(out, "--num=0", check=1)
  line = one_error_line(proc.stderr)
  assert "summary.json counts 25 documents_read" in line
  assert "add up to 24 (documents 24)" in line
  assert "Traceback" not in proc.stderr


@pytest.mark.parametrize("missing", ["documents_read", "documents"])
def test_a_summary_without_the_document_counters_is_not_balanced(
    outputs, tmp_path, missing):
  """Summaries written before documents_read counted every record (or
  without these counters at all) are read as before."""
  out = _copy(outputs, "parquet", tmp_path)
  _edit_summary(out, lambda s: json.dumps(dict(s, counts={
      k: v for k, v in s["counts"].items() if k != missing})))
  proc = inspect(out, "--num=0", check=0)
  assert "documents read" not in proc.stdout
