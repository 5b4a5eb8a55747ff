"""The objectives beyond BERT's through the command line: each mode writes
the features it promises, TFRecord and Parquet hold the same rows, Hugging
Face loads the Parquet, presets in --help, and the refused combinations
(the packers and maskers themselves: tests/unit/test_instances.py and
tests/unit/test_masking.py)."""

import glob
import json
import os
import re

import numpy as np
import pytest

from pipelines import options
from tests.helpers import (VOCAB, assert_refused, digest, read_examples,
                           read_parquet_rows, run_cli, write_lines_corpus)

CLS, SEP, MASK = 101, 102, 103


# --- presets and refusals ----------------------------------------------------

def test_help_shows_each_presets_expansion():
  proc = run_cli(["--help"])
  text = " ".join(proc.stdout.split())
  for name in options.PRESETS:
    assert name + " = --sentence_task=" in text, name
  assert ("roberta = --sentence_task=none --packing=full_sentences "
          "--masking=none --max_seq_length=512") in text


@pytest.mark.parametrize("flags,message", [
    (["--packing=full_sentences"], "--packing=full_sentences makes one "
     "segment per sequence"),
    (["--packing=doc_sentences", "--sentence_task=sop"],
     "pass --sentence_task=none"),
    (["--preset=roberta", "--sentence_task=nsp"], "--sentence_task=nsp"),
    (["--masking=none", "--max_ngram_size=3"], "--max_ngram_size chooses"),
    (["--masking=none", "--span_masking=geometric"], "--span_masking chooses"),
    (["--masking=none", "--do_whole_word_mask"], "--do_whole_word_mask"),
    (["--max_ngram_size=3", "--span_masking=geometric"], "pass one"),
    (["--output_format=parquet", "--compression=gzip"], "zstd"),
    (["--span_p=0"], "--span_p must be in (0, 1]"),
    (["--max_span_length=0"], "--max_span_length must be at least 1"),
    (["--max_ngram_size=-1"], "--max_ngram_size must be 0"),
    (["--preset=gpt"], "--preset"),
    (["--sentence_task=mlm"], "--sentence_task"),
    (["--output_format=json"], "--output_format"),
])
def test_impossible_combinations_are_refused(tmp_path, flags, message):
  assert_refused(["--input=corpora/sample/*.txt",
                  "--output=" + str(tmp_path / "out"),
                  "--vocab_file=" + VOCAB] + flags, message)
  assert not (tmp_path / "out").exists()


# --- end to end: every mode, both formats ------------------------------------

def _run(tmp_path, name, flags, inputs=None):
  out = str(tmp_path / name)
  run_cli(["--input=" + (inputs or "corpora/sample/*.txt"), "--output=" + out,
           "--vocab_file=" + VOCAB] + flags)
  return out


def _summary(out):
  with open(os.path.join(out, "summary.json")) as f:
    return json.load(f)


@pytest.mark.parametrize("flags,task,masks", [
    (["--preset=roberta", "--max_seq_length=64"], "none", "none"),
    (["--preset=electra"], "none", "none"),
    (["--preset=albert", "--max_seq_length=128"], "sop", "static"),
    (["--sentence_task=none", "--packing=doc_sentences"], "none", "static"),
    (["--span_masking=geometric", "--dupe_factor=2"], "nsp", "static"),
])
def test_each_mode_writes_the_features_it_promises(tmp_path, flags, task,
                                                  masks):
  out = _run(tmp_path, "out", flags)
  summary = _summary(out)
  opts = summary["options"]
  assert (opts["sentence_task"], opts["masking"]) == (task, masks)
  length = opts["max_seq_length"]
  examples = read_examples(out, length, opts["max_predictions_per_seq"],
                           masks, task, opts["token_boundary"])
  assert len(examples) == summary["counts"]["instances"] > 0
  names = set(examples[0])
  assert ("next_sentence_labels" in names) == (task != "none")
  assert ("masked_lm_ids" in names) == (masks == "static")
  # ALBERT's word starts: its preset's default, no other's.
  assert ("token_boundary" in names) == ("--preset=albert" in flags)
  assert set(summary["features"]) == names
  with open(os.path.join(out, "transformed_metadata", "schema.pbtxt")) as f:
    assert set(re.findall(r'name: "(\w+)"', f.read())) == names
  for ex in examples:
    ids = ex["input_ids"][ex["input_mask"] == 1]
    assert ids[0] == CLS and ids[-1] == SEP
    if opts["packing"] != "pairs":
      assert not ex["segment_ids"].any()
    if masks == "none":
      assert MASK not in ids.tolist()
  if task == "sop":
    labels = [int(e["next_sentence_labels"][0]) for e in examples]
    assert sum(labels) == summary["counts"]["swapped_instances"]
  if opts["span_masking"] == "geometric":
    assert summary["counts"]["masked_spans"] > 0


def test_parquet_holds_what_the_tfrecords_hold(tmp_path):
  """The same run as TFRecord and as Parquet: row for row the same tokens,
  segments, masks, labels and (ALBERT's preset) word starts, in Hugging
  Face's column names (token_boundary keeps ALBERT's)."""
  flags = ["--preset=albert", "--max_seq_length=128", "--random_seed=7",
           "--token_boundary"]  # the preset's default for TFRecord only
  tf_out = _run(tmp_path, "tf", flags)
  pq_out = _run(tmp_path, "pq", flags + ["--output_format=parquet"])
  assert sorted(os.listdir(pq_out))[0].endswith(".parquet")
  summary = _summary(pq_out)
  assert summary["format"] == "parquet"
  assert set(summary["features"]) == {"input_ids", "attention_mask",
                                      "token_type_ids", "token_boundary",
                                      "labels", "sentence_order_label"}
  assert summary["shards"][0]["path"].endswith(".parquet")
  from_tf = set()
  for ex in read_examples(tf_out, 128, 20, "static", "sop", True):
    n = int(ex["input_mask"].sum())
    assert not ex["token_boundary"][n:].any()
    labels = np.full(n, -100)
    k = int(ex["masked_lm_weights"].sum())
    labels[ex["masked_lm_positions"][:k]] = ex["masked_lm_ids"][:k]
    from_tf.add((tuple(ex["input_ids"][:n].tolist()),
                 tuple(ex["segment_ids"][:n].tolist()),
                 tuple(labels.tolist()), int(ex["next_sentence_labels"][0]),
                 tuple(ex["token_boundary"][:n].tolist())))
  rows = read_parquet_rows(pq_out)
  from_pq = set()
  for row in rows:
    assert row["attention_mask"].tolist() == [1] * len(row["input_ids"])
    from_pq.add((tuple(row["input_ids"].tolist()),
                 tuple(row["token_type_ids"].tolist()),
                 tuple(row["labels"].tolist()),
                 int(row["sentence_order_label"]),
                 tuple(row["token_boundary"].tolist())))
  assert len(rows) == summary["counts"]["instances"]
  assert from_pq == from_tf


def test_hugging_face_loads_and_batches_the_parquet_shards(tmp_path):
  """What the README shows a PyTorch user: datasets loads the shards with
  nothing but their names, transformers' collators batch them (numpy, so
  no torch here)."""
  import datasets  # pylint: disable=import-outside-toplevel
  from transformers import (BertTokenizerFast,  # pylint: disable=import-outside-toplevel
                            DataCollatorForLanguageModeling,
                            DataCollatorForTokenClassification)
  datasets.disable_progress_bars()
  tokenizer = BertTokenizerFast(vocab_file=VOCAB)
  cache = str(tmp_path / "hf-cache")
  dynamic = _run(tmp_path, "roberta", ["--preset=roberta",
                                       "--max_seq_length=64",
                                       "--output_format=parquet"])
  files = sorted(glob.glob(os.path.join(dynamic, "part-*.parquet")))
  ds = datasets.load_dataset("parquet", data_files=files, cache_dir=cache,
                             split="train")
  assert ds.column_names == ["input_ids", "attention_mask", "token_type_ids"]
  assert len(ds) == _summary(dynamic)["counts"]["instances"]
  collate = DataCollatorForLanguageModeling(tokenizer, mlm_probability=0.15,
                                            return_tensors="np")
  batch = collate([ds[i] for i in range(8)])
  assert batch["input_ids"].shape == batch["labels"].shape
  assert batch["input_ids"].shape[1] <= 64
  static = _run(tmp_path, "bert", ["--output_format=parquet"])
  ds = datasets.load_dataset("parquet", data_files=sorted(glob.glob(
      os.path.join(static, "part-*.parquet"))), cache_dir=cache,
                             split="train")
  assert "labels" in ds.column_names and "next_sentence_label" in ds.column_names
  collate = DataCollatorForTokenClassification(tokenizer, return_tensors="np")
  batch = collate([ds[i] for i in range(8)])
  width = batch["input_ids"].shape[1]
  assert batch["labels"].shape == (8, width)
  # Padding is ignored by the loss (-100), like unmasked positions.
  padded = batch["attention_mask"] == 0
  assert (batch["labels"][padded] == -100).all()
  assert batch["next_sentence_label"].shape == (8,)


def test_packing_and_parquet_are_deterministic(tmp_path):
  """full_sentences into Parquet: the same rows whatever the worker count
  or the order the files are given in."""
  paths = write_lines_corpus(str(tmp_path / "corpus"), num_files=4,
                             docs_per_file=25, seed=3)
  flags = ["--preset=roberta", "--max_seq_length=64",
           "--output_format=parquet", "--random_next_pool_size=20"]
  one = _run(tmp_path, "one", flags, ",".join(paths))
  two = _run(tmp_path, "two", flags + ["--direct_num_workers=2",
                                       "--direct_running_mode=multi_processing",
                                       "--num_shards=3"],
             ",".join(reversed(paths)))
  assert digest(read_parquet_rows(one)) == digest(read_parquet_rows(two))
  assert len(glob.glob(os.path.join(two, "part-*-of-00003.parquet"))) == 3
  counts = _summary(one)["counts"]
  assert counts["document_separators"] > 0
  # Full sequences: on average close to the maximum, short only at pool
  # ends and where the next sentence did not fit.
  lengths = [len(r["input_ids"]) for r in read_parquet_rows(one)]
  assert np.mean(lengths) > 0.85 * 64


def test_parquet_refuses_to_overwrite_and_marks_incomplete(tmp_path):
  out = _run(tmp_path, "out", ["--output_format=parquet"])
  proc = run_cli(["--input=corpora/sample/*.txt", "--output=" + out,
                  "--output_format=parquet"], check=False)
  assert proc.returncode == 2 and "is not empty" in proc.stderr
  assert not os.path.exists(os.path.join(out, "_INCOMPLETE"))


