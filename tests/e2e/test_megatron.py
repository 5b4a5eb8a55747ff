"""``--output_format=megatron`` read back by Megatron-LM's own reader
(megatron-core's ``IndexedDataset``, in a venv of its own:
oracles/references.py), every sequence checked against google-research/
bert's tokenizer over the input's sentences."""

import collections
import json
import os
import shutil

import pytest

from oracles import references
from tests.helpers import (REPO, VOCAB, assert_refused, one_error_line,
                           run_cli, run_tool, sample_documents)

SAMPLE = os.path.join(REPO, "corpora", "sample", "*.txt")


@pytest.fixture(scope="module")
def bert_ids():
  """google-research/bert's FullTokenizer (uncased), as ids: the
  sequences the output must hold."""
  from absl import flags
  from bert import tokenization
  if not flags.FLAGS.is_parsed():
    flags.FLAGS.mark_as_parsed()
  tokenizer = tokenization.FullTokenizer(VOCAB, do_lower_case=True)

  def ids(text):
    return tokenizer.convert_tokens_to_ids(tokenizer.tokenize(text))

  return ids


def _expected_documents(bert_ids):
  """Each sample document as a tuple of its sentences' ids (the sample is
  one sentence per line, documents apart by a blank line)."""
  return [tuple(tuple(ids) for ids in map(bert_ids, doc) if ids)
          for doc in sample_documents()]


def _documents(read):
  """The reader's sequences grouped by its document indices."""
  bounds = read["document_indices"]
  assert bounds[0] == 0 and bounds == sorted(bounds)
  return [tuple(tuple(s) for s in read["sequences"][a:b])
          for a, b in zip(bounds, bounds[1:])]


def _summary(output):
  with open(os.path.join(output, "summary.json"), encoding="utf-8") as f:
    return json.load(f)


def test_sentences_read_by_megatron_are_berts_and_the_same_for_any_workers(
    readers_python, bert_ids, tmp_path):
  outputs = {}
  for workers in (1, 2):
    out = str(tmp_path / ("w%d" % workers))
    run_cli(["--input=" + SAMPLE, "--output=" + out,
             "--output_format=megatron", "--direct_num_workers=%d" % workers])
    outputs[workers] = out
    assert sorted(os.listdir(out)) == ["summary.json", "text_sentence.bin",
                                       "text_sentence.idx"]
  for suffix in (".bin", ".idx"):
    with open(os.path.join(outputs[1], "text_sentence" + suffix), "rb") as a, \
        open(os.path.join(outputs[2], "text_sentence" + suffix), "rb") as b:
      assert a.read() == b.read(), suffix

  read = references.megatron_read(
      readers_python, os.path.join(outputs[1], "text_sentence"))
  assert read["dtype"] == "uint16"  # BERT's 30,522 ids, as Megatron picks
  expected = _expected_documents(bert_ids)
  found = _documents(read)
  assert collections.Counter(found) == collections.Counter(expected)
  summary = _summary(outputs[1])
  counts = summary["counts"]
  assert counts["instances"] == len(read["sequences"])
  assert counts["megatron_documents"] == len(expected)
  assert counts["instance_tokens"] == sum(read["sequence_lengths"])
  assert summary["format"] == "megatron"
  assert {s["path"]: s.get("records") for s in summary["shards"]} == {
      "text_sentence.bin": len(read["sequences"]), "text_sentence.idx": 0}


def test_doc_packing_is_one_sequence_per_document(
    readers_python, bert_ids, tmp_path):
  out = str(tmp_path / "doc")
  run_cli(["--input=" + SAMPLE, "--output=" + out, "--output_format=megatron",
           "--packing=doc"])
  read = references.megatron_read(readers_python,
                                  os.path.join(out, "text_document"))
  expected = [tuple(i for sentence in doc for i in sentence)
              for doc in _expected_documents(bert_ids)]
  found = [tuple(s) for s in read["sequences"]]
  assert collections.Counter(found) == collections.Counter(expected)
  assert read["document_indices"] == list(range(len(expected) + 1))


def test_a_vocabulary_of_65500_ids_or_more_writes_int32(
    readers_python, bert_ids, tmp_path):
  """Megatron's rule for the token dtype: int32 from 65,500 ids. The ids
  of BERT's own tokens are unchanged by the extra entries at the end."""
  vocab = str(tmp_path / "big_vocab.txt")
  shutil.copy(VOCAB, vocab)
  with open(vocab, "a", encoding="utf-8") as f:
    for i in range(40000):
      f.write("[extra%d]\n" % i)
  out = str(tmp_path / "big")
  run_cli(["--input=" + SAMPLE, "--output=" + out, "--output_format=megatron",
           "--vocab_file=" + vocab])
  read = references.megatron_read(readers_python,
                                  os.path.join(out, "text_sentence"))
  assert read["dtype"] == "int32"
  assert collections.Counter(_documents(read)) == collections.Counter(
      _expected_documents(bert_ids))


@pytest.mark.parametrize("flags, message", [
    (["--masking=static"], "Megatron masks at training time"),
    (["--sentence_task=nsp"], "has no sentence task"),
    (["--dupe_factor=5"], "writes each document once"),
    (["--packing=pairs"], "not --packing=pairs"),
    (["--num_shards=4"], "one uncompressed .bin/.idx pair"),
])
def test_flags_megatron_cannot_take_are_refused(flags, message, tmp_path):
  assert_refused(["--input=" + SAMPLE, "--output=" + str(tmp_path / "o"),
                  "--output_format=megatron"] + flags, message)


def test_a_megatron_layout_without_megatron_is_refused(tmp_path):
  assert_refused(["--input=" + SAMPLE, "--output=" + str(tmp_path / "o"),
                  "--packing=doc"], "a layout of --output_format=megatron")


def test_a_megatron_output_is_replaced_only_when_asked(tmp_path):
  out = str(tmp_path / "o")
  args = ["--input=" + SAMPLE, "--output=" + out, "--output_format=megatron"]
  run_cli(args)
  assert_refused(args, "--overwrite")
  run_cli(args + ["--overwrite"])
  assert sorted(os.listdir(out)) == ["summary.json", "text_sentence.bin",
                                     "text_sentence.idx"]



def test_inspect_checks_and_shows_it_and_report_reads_it(tmp_path):
  out = str(tmp_path / "o")
  run_cli(["--input=" + SAMPLE, "--output=" + out,
           "--output_format=megatron"])
  shown = run_tool("inspect", [out, "--num=2"])
  assert shown.returncode == 0, shown.stderr
  sequences = _summary(out)["counts"]["instances"]
  assert ("text_sentence: %d sequences in %d documents, uint16 tokens"
          % (sequences, len(sample_documents()))) in shown.stdout
  assert "text_sentence sequence 1 (document 0): " in shown.stdout
  # report: the sequences' statistics, and --compare against a run with
  # one sequence per document (longer sequences, fewer of them).
  doc = str(tmp_path / "doc")
  run_cli(["--input=" + SAMPLE, "--output=" + doc, "--output_format=megatron",
           "--packing=doc"])
  report = run_tool("report", [out, "--compare=" + doc, "--json=" + str(
      tmp_path / "report.json"), "--out=" + str(tmp_path / "plots")])
  assert report.returncode == 0, report.stderr
  with open(tmp_path / "report.json", encoding="utf-8") as f:
    found = json.load(f)
  assert found["statistics"]["o"]["examples"] == sequences
  assert found["statistics"]["doc"]["examples"] == len(sample_documents())
  assert found["statistics"]["o"]["mean_predictions"] == 0
  stats = found["statistics"]
  assert (stats["o"]["mean_sequence_length"]
          < stats["doc"]["mean_sequence_length"])
  assert found["comparison"]
  # A .bin cut short: the index no longer describes it.
  path = os.path.join(out, "text_sentence.bin")
  with open(path, "rb") as f:
    data = f.read()
  with open(path, "wb") as f:
    f.write(data[:-2])
  bad = run_tool("inspect", [out])
  assert bad.returncode == 1
  assert "text_sentence.bin: %d bytes, summary.json says %d" % (
      len(data) - 2, len(data)) in one_error_line(bad.stderr)
