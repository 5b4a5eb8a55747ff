"""The objectives beyond BERT's: sentence-order prediction, segment pairs
without a sentence task, RoBERTa's packing, n-gram and span masking, masking
at training time, presets, and their refusals."""

import collections
import glob
import json
import os
import random
import re
import subprocess
import sys

import numpy as np
import pytest

from benchmarks import fidelity
from pipelines import options
from tests.helpers import (REPO, VOCAB, assert_refused, digest,
                           load_vocab_list, read_examples, read_parquet_rows,
                           run_cli, sample_documents, write_lines_corpus)
from transforms import instances, masking
from transforms.tokenization import build_tokenizer

CLS, SEP, MASK = 101, 102, 103


def _pool(num_docs, rng, min_sentences=1, max_sentences=8, min_len=2,
          max_len=9):
  """Documents whose token ids say where they come from: doc * 100000 +
  sentence * 100 + position (all above the special ids)."""
  pool, where = [], {}
  for d in range(num_docs):
    ids, offsets = [], [0]
    for s in range(rng.randint(min_sentences, max_sentences)):
      for p in range(rng.randint(min_len, max_len)):
        token = (d + 1) * 100000 + s * 100 + p
        ids.append(token)
        where[token] = (d, s)
      offsets.append(len(ids))
    pool.append((np.array(ids, dtype=np.int32), offsets))
  return pool, where


def _sentences(tokens, where):
  return [where[int(t)] for t in tokens]


def _zero():
  return collections.Counter()


def test_sop_b_is_the_continuation_swapped_half_the_time():
  rng = random.Random(1)
  pool, where = _pool(60, rng)
  params = instances.InstanceParams(max_seq_length=48, sentence_task="sop")
  counts = _zero()
  same_doc = {0: 0, 1: 0}
  rows = 0
  for _ in range(20):
    for index in range(len(pool)):
      for a, b, label in instances.create_sop_instances_from_document(
          index, pool, rng, params, counts):
        rows += 1
        sa, sb = _sentences(a, where), _sentences(b, where)
        assert len(a) + len(b) <= params.max_num_tokens
        if {d for d, _ in sb} != {index}:
          # A one-sentence chunk: B from another document, labelled 1, as
          # ALBERT does.
          assert label and {d for d, _ in sa} == {index}
          continue
        same_doc[int(label)] += 1
        first, second = (sb, sa) if label else (sa, sb)
        # The first segment's sentences all come before the second's.
        assert max(s for _, s in first) < min(s for _, s in second)
  random_b = rows - same_doc[0] - same_doc[1]
  assert random_b == counts["sop_random_next"] > 0
  share = same_doc[1] / (same_doc[0] + same_doc[1])
  assert 0.46 < share < 0.54, share


def test_sop_labels_in_the_batch_and_counters():
  rng = random.Random(2)
  pool, _ = _pool(30, rng, min_sentences=2)
  entries = []
  for i, (ids, offsets) in enumerate(pool):
    from transforms.tokenization import TokenizedDocument  # pylint: disable=import-outside-toplevel
    entries.append((0, TokenizedDocument("d%d" % i, ids,
                                         np.diff(offsets).astype(np.int32))))
  params = instances.InstanceParams(max_seq_length=48, sentence_task="sop")
  batches = [b for b, _ in instances.instances_for_pool(0, entries, params,
                                                        CLS, SEP)]
  labels = np.concatenate([b.labels for b in batches])
  assert set(labels.tolist()) == {0, 1}
  # Every instance is a pair: [CLS] A [SEP] B [SEP].
  for b in batches:
    assert np.all(b.lengths > b.a_lengths + 2)
    rows = np.arange(len(b))
    assert np.all(b.tokens[rows, b.lengths - 1] == SEP)


def test_pairs_without_a_sentence_task():
  rng = random.Random(3)
  pool, where = _pool(40, rng)
  params = instances.InstanceParams(max_seq_length=40, sentence_task="none")
  singles = 0
  for index in range(len(pool)):
    for a, b, label in instances.create_segment_pairs_from_document(
        index, pool, rng, params, _zero()):
      assert not label
      assert {d for d, _ in _sentences(a, where)} == {index}
      if b is None:
        singles += 1
        assert len(a) <= params.max_num_tokens + 1
        continue
      sa, sb = _sentences(a, where), _sentences(b, where)
      assert {d for d, _ in sb} == {index}  # never another document
      assert max(s for _, s in sa) < min(s for _, s in sb)
  assert singles
  # The layout of a single segment: [CLS] A [SEP], segment ids all 0.
  batch = instances._to_batch(  # pylint: disable=protected-access
      (0, 0), [(np.array([7, 8, 9]), None, False),
               (np.array([5]), np.array([6, 6]), False)], 10, CLS, SEP)
  assert batch.tokens[0].tolist() == [CLS, 7, 8, 9, SEP, 0, 0, 0, 0, 0]
  assert batch.lengths.tolist() == [5, 6]
  assert batch.tokens[1].tolist() == [CLS, 5, SEP, 6, 6, SEP, 0, 0, 0, 0]
  assert batch.segment_ids()[0].tolist() == [0] * 10
  assert batch.segment_ids()[1].tolist() == [0, 0, 0, 1, 1, 1, 0, 0, 0, 0]


def test_doc_sentences_packs_whole_sentences_of_one_document():
  rng = random.Random(4)
  pool, _ = _pool(50, rng, max_len=30)
  # A sentence longer than a sequence is split, never dropped.
  long_ids = np.arange(5000000, 5000075, dtype=np.int32)
  pool.append((long_ids, [0, 75]))
  params = instances.InstanceParams(max_seq_length=32, packing="doc_sentences",
                                    sentence_task="none")
  counts = _zero()
  made = 0
  for index, (ids, offsets) in enumerate(pool):
    seqs = [a for a, b, _ in instances.pack_doc_sentences(
        index, pool, None, params, counts)]
    made += len(seqs)
    assert all(b is None for _, b, _ in instances.pack_doc_sentences(
        index, pool, None, params, _zero()))
    assert all(0 < len(s) <= 30 for s in seqs)
    # Nothing lost, nothing twice, in order, within the document.
    assert np.array_equal(np.concatenate(seqs), ids)
    # Every sequence but a split sentence's pieces starts at a sentence.
    starts = np.cumsum([0] + [len(s) for s in seqs])[:-1]
    if index < 50:
      assert set(starts.tolist()) <= set(offsets)
  assert counts["long_sentences_split"] >= 1
  assert counts["document_end_sequences"] >= 1
  # As few sequences as any packing of whole sentences can make (a
  # dynamic program over every feasible cut, not the greedy rule).
  fewest, _ = fidelity.whole_sentence_ceiling(
      [np.diff(offsets).tolist() for _, offsets in pool], 32,
      cross_documents=False)
  assert made == fewest


def test_full_sentences_crosses_documents_with_a_separator():
  rng = random.Random(5)
  pool, _ = _pool(80, rng, max_len=30)
  params = instances.InstanceParams(max_seq_length=64,
                                    packing="full_sentences",
                                    sentence_task="none")
  counts = _zero()
  seqs = [a for a, _, _ in instances.pack_full_sentences(pool, params, SEP,
                                                          counts)]
  assert all(0 < len(s) <= 62 for s in seqs)
  assert all(s[0] != SEP and s[-1] != SEP for s in seqs)
  stream = np.concatenate(seqs)
  # Without the separators: every document's tokens, in pool order, once.
  assert np.array_equal(stream[stream != SEP],
                        np.concatenate([ids for ids, _ in pool]))
  assert np.count_nonzero(stream == SEP) == counts["document_separators"] > 0
  # A separator stands exactly where one document ends and the next begins,
  # and wherever a sequence goes on into the next document.
  for s in seqs:
    for i in range(1, len(s) - 1):
      if s[i] == SEP:
        assert s[i - 1] // 100000 + 1 == s[i + 1] // 100000
      elif s[i + 1] != SEP:
        assert s[i] // 100000 == s[i + 1] // 100000
  # Sequences are full: as few as any packing of whole sentences with
  # separators can make (a dynamic program over every feasible cut).
  fewest, _ = fidelity.whole_sentence_ceiling(
      [np.diff(offsets).tolist() for _, offsets in pool], 64,
      cross_documents=True)
  assert len(seqs) == fewest


@pytest.fixture(scope="module")
def fairseq():
  """fairseq 0.8.0's TokenBlockDataset from PyPI's source release: RoBERTa's
  own packer, the reference for both packings."""
  return fidelity.ensure_fairseq(
      os.path.join(REPO, ".cache", "tools", "fairseq"))


def _sample_pool():
  """The sample corpus's documents as (ids, sentence offsets), tokenized by
  the pipeline's tokenizer: 24 documents, 138 sentences of up to 23
  tokens."""
  tokenizer = build_tokenizer(load_vocab_list(), True)
  pool = []
  for doc in sample_documents():
    sentences = [s for s in (tokenizer.encode(t).ids for t in doc) if s]
    pool.append((np.array([t for s in sentences for t in s], np.int32),
                 np.cumsum([0] + [len(s) for s in sentences]).tolist()))
  return pool


def _packing_pools(max_seq_length):
  """The pools both packings are compared with fairseq's on: the sample
  text, and 300 random documents with sentences of up to
  ``max_seq_length + 10`` tokens (some split)."""
  return (_sample_pool(),
          _pool(300, random.Random(max_seq_length),
                max_len=max_seq_length + 10)[0])


def _pack(pool, packing, max_seq_length, fairseq):
  """Real tokens of each sequence the pipeline's packer and fairseq's make
  of ``pool``, and the packer's counters."""
  params = instances.InstanceParams(max_seq_length=max_seq_length,
                                    packing=packing, sentence_task="none")
  counts = _zero()
  rows = (instances.pack_full_sentences(pool, params, SEP, counts)
          if packing == "full_sentences" else
          (row for index in range(len(pool)) for row in
           instances.pack_doc_sentences(index, pool, None, params, counts)))
  ours = [len(a) + 2 for a, _, _ in rows]
  reference = fidelity.fairseq_blocks(
      [np.diff(offsets).tolist() for _, offsets in pool], max_seq_length,
      packing == "full_sentences", fairseq)
  return ours, reference, counts


@pytest.mark.parametrize("max_seq_length", [16, 32, 64, 128])
def test_doc_sentences_cuts_where_fairseq_cuts(fairseq, max_seq_length):
  for pool in _packing_pools(max_seq_length):
    ours, reference, counts = _pack(pool, "doc_sentences", max_seq_length,
                                    fairseq)
    # Sequence by sequence, the same sentences as break_mode="complete_doc",
    # long sentences split included.
    assert ours == reference
    assert counts["document_end_sequences"] > 0
  assert counts["long_sentences_split"] > 0


@pytest.mark.parametrize("max_seq_length", [16, 32, 64, 128])
def test_full_sentences_fills_as_fairseq_does(fairseq, max_seq_length):
  for pool in _packing_pools(max_seq_length):
    ours, reference, counts = _pack(pool, "full_sentences", max_seq_length,
                                    fairseq)
    # (Tokens, order and separators sequence by sequence:
    # test_full_sentences_crosses_documents_with_a_separator.)
    assert max(ours) <= max_seq_length
    assert counts["document_separators"] > 0
    # Both are greedy; break_mode="complete" may also begin or end a block
    # with a document's separator, where the pipeline leaves it out, so it
    # never needs fewer sequences (the packer's count is also the fewest
    # any packing makes, by the test above). Their fill is the same within
    # the 2%.
    assert len(ours) <= len(reference)
    assert np.mean(ours) >= 0.98 * np.mean(reference)
  assert counts["long_sentences_split"] > 0


def _batch(rows, width, labels=None):
  rows = [np.asarray(r, dtype=np.int32) for r in rows]
  tokens = np.zeros((len(rows), width), dtype=np.int32)
  for i, r in enumerate(rows):
    tokens[i, :len(r)] = r
  lengths = np.array([len(r) for r in rows], dtype=np.int32)
  return instances.InstanceBatch(
      (0, 0), tokens, lengths, lengths - 2,
      np.zeros(len(rows), np.uint8) if labels is None else labels)


def _packed_rows(rng, n, width):
  """[CLS] words [SEP] words … [SEP]: whole words of 1-3 pieces (pieces
  2000+, continuations 3000+), documents separated by [SEP]."""
  rows = []
  for _ in range(n):
    row = [CLS]
    while len(row) < width - 5:
      if rng.random() < 0.05 and row[-1] != CLS:
        row.append(SEP)
      row.append(2000 + rng.randint(0, 900))
      for _ in range(rng.choice([0, 0, 0, 1, 2])):
        row.append(3000 + rng.randint(0, 900))
    row.append(SEP)
    rows.append(row[:width - 1] + [SEP] if len(row) > width else row)
  return rows


def _continuation(vocab_size=5000):
  cont = np.zeros(vocab_size, dtype=bool)
  cont[3000:4000] = True
  return cont


def _words_of(row, cont):
  """[begin, end) of each whole word of a row."""
  words, begin = [], None
  for i, t in enumerate(row):
    if t in (CLS, SEP):
      if begin is not None:
        words.append((begin, i))
      begin = None
    elif cont[t] and begin is not None:
      continue
    else:
      if begin is not None:
        words.append((begin, i))
      begin = i
  return words


@pytest.mark.parametrize("mode", ["ngram", "span"])
def test_ngrams_and_spans_are_whole_adjacent_words_decided_once(mode):
  rng = random.Random(6)
  rows = _packed_rows(rng, 300, 128)
  batch = _batch(rows, 128)
  cont = _continuation()
  params = (masking.MaskingParams(max_ngram_size=3) if mode == "ngram" else
            masking.MaskingParams(span_masking="geometric"))
  out, counts = masking.mask_batch(batch, params, 5000, MASK, cont,
                                   np.random.default_rng(0),
                                   special_ids=(CLS, SEP))
  kind = "ngrams" if mode == "ngram" else "spans"
  assert counts["masked_" + kind] == sum(
      v for k, v in counts.items() if k.startswith("masked_%s_of_" % kind))
  budget = masking.num_to_predict(batch.lengths, 0.15, 20)
  mask_shares = []
  for r, row in enumerate(rows):
    positions = out.masked_lm_positions[r, :out.num_predictions[r]]
    assert 0 < len(positions) <= budget[r]
    assert all(row[p] not in (CLS, SEP) for p in positions)
    chosen = set(positions.tolist())
    words = _words_of(row, cont)
    # Whole words only.
    for begin, end in words:
      inside = chosen & set(range(begin, end))
      assert not inside or inside == set(range(begin, end))
    # Maximal runs of chosen positions never cross a [SEP].
    for p in chosen:
      if p + 1 in chosen:
        assert row[p + 1] not in (CLS, SEP)
    masked = out.input_ids[r][positions] == MASK
    mask_shares.append(masked.mean())
  # One 80/10/10 decision per unit: a row's [MASK] share moves in steps of
  # whole units, so rows where it is neither 0 nor 1 are rarer than with a
  # decision per piece; overall about 80% of the units are [MASK].
  total = counts["masked_tokens"]
  assert 0.74 < counts["masked_as_mask_token"] / total < 0.86


def test_span_lengths_follow_spanberts_geometric_distribution():
  rng = random.Random(7)
  # Long rows of one-piece words, few spans each: the lengths drawn are
  # rarely cut by the budget or by other spans.
  rows = [[CLS] + [2000 + rng.randint(0, 900) for _ in range(509)] + [SEP]
          for _ in range(400)]
  batch = _batch(rows, 512)
  params = masking.MaskingParams(span_masking="geometric",
                                 max_predictions_per_seq=80)
  _, counts = masking.mask_batch(batch, params, 5000, MASK, _continuation(),
                                 np.random.default_rng(1),
                                 special_ids=(CLS, SEP))
  observed = np.array([counts.get("masked_spans_of_%d_words" % k, 0)
                       for k in range(1, 11)], dtype=float)
  expected = masking.span_length_probabilities(0.2, 10)
  # The budget trims the last span of a row and a span stops at a word
  # masked before (both shift lengths down a little), so compare loosely,
  # and the distribution's mean with SpanBERT's (3.8 words).
  shares = observed / observed.sum()
  assert np.all(np.abs(shares - expected) < 0.04), (shares, expected)
  assert shares[0] > shares[1] > shares[2] > shares[3] > shares[4]
  assert abs(expected @ np.arange(1, 11) - 3.8) < 0.05
  assert 3.2 < (shares @ np.arange(1, 11)) < 4.0


def test_packed_separators_are_never_masked():
  rng = random.Random(8)
  rows = _packed_rows(rng, 200, 64)
  batch = _batch(rows, 64)
  out, _ = masking.mask_batch(batch, masking.MaskingParams(
      masked_lm_prob=0.5, max_predictions_per_seq=60), 5000, MASK,
                              _continuation(), np.random.default_rng(2),
                              special_ids=(CLS, SEP))
  for r, row in enumerate(rows):
    positions = out.masked_lm_positions[r, :out.num_predictions[r]]
    assert all(row[p] != SEP for p in positions)


def test_masking_none_leaves_the_tokens_as_they_are():
  rng = random.Random(9)
  rows = _packed_rows(rng, 20, 64)
  batch = _batch(rows, 64)
  out, counts = masking.mask_batch(batch, masking.MaskingParams(
      masking="none"), 5000, MASK, _continuation(), np.random.default_rng(3))
  assert not counts
  assert np.array_equal(out.input_ids, batch.tokens)
  assert out.masked_lm_positions.shape == (20, 0)
  assert not out.num_predictions.any()


# --- flags, presets and refusals -------------------------------------------

def _resolved(flags):
  from apache_beam.options.pipeline_options import PipelineOptions  # pylint: disable=import-outside-toplevel
  opts = PipelineOptions(["--input=x", "--output=y"] + flags).view_as(
      options.MlmOptions)
  options.resolve(opts)
  return opts


def test_presets_expand_and_explicit_flags_win():
  bert = _resolved([])
  assert (bert.sentence_task, bert.packing, bert.masking, bert.dupe_factor,
          bert.max_seq_length, bert.max_ngram_size) == (
              "nsp", "pairs", "static", 10, 128, 0)
  roberta = _resolved(["--preset=roberta"])
  assert (roberta.sentence_task, roberta.packing, roberta.masking,
          roberta.dupe_factor, roberta.max_seq_length) == (
              "none", "full_sentences", "none", 1, 512)
  albert = _resolved(["--preset=albert"])
  assert (albert.sentence_task, albert.max_ngram_size,
          albert.do_whole_word_mask, albert.max_seq_length) == (
              "sop", 3, True, 512)
  electra = _resolved(["--preset=electra"])
  assert (electra.sentence_task, electra.packing, electra.masking,
          electra.max_seq_length, electra.dupe_factor) == (
              "none", "pairs", "none", 128, 1)
  mine = _resolved(["--preset=roberta", "--max_seq_length=128",
                    "--packing=doc_sentences", "--dupe_factor=3"])
  assert (mine.max_seq_length, mine.packing, mine.masking,
          mine.dupe_factor) == (128, "doc_sentences", "none", 3)
  # Asking for masking at training time drops the preset's masking choice.
  albert_dynamic = _resolved(["--preset=albert", "--masking=none"])
  assert albert_dynamic.max_ngram_size == 0
  assert not albert_dynamic.do_whole_word_mask
  options.validate(albert_dynamic)
  # Spans asked for replace the preset's n-grams.
  albert_spans = _resolved(["--preset=albert", "--span_masking=geometric"])
  assert albert_spans.max_ngram_size == 0 and albert_spans.sentence_task == "sop"
  options.validate(albert_spans)
  # A flag given with the default's value still wins over the preset.
  assert _resolved(["--preset=roberta", "--max_seq_length=128"]
                   ).max_seq_length == 128


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
                           masks, task)
  assert len(examples) == summary["counts"]["instances"] > 0
  names = set(examples[0])
  assert ("next_sentence_labels" in names) == (task != "none")
  assert ("masked_lm_ids" in names) == (masks == "static")
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
  segments, masks and labels, in Hugging Face's column names."""
  flags = ["--preset=albert", "--max_seq_length=128", "--random_seed=7"]
  tf_out = _run(tmp_path, "tf", flags)
  pq_out = _run(tmp_path, "pq", flags + ["--output_format=parquet"])
  assert sorted(os.listdir(pq_out))[0].endswith(".parquet")
  summary = _summary(pq_out)
  assert summary["format"] == "parquet"
  assert set(summary["features"]) == {"input_ids", "attention_mask",
                                      "token_type_ids", "labels",
                                      "sentence_order_label"}
  assert summary["shards"][0]["path"].endswith(".parquet")
  from_tf = set()
  for ex in read_examples(tf_out, 128, 20, "static", "sop"):
    n = int(ex["input_mask"].sum())
    labels = np.full(n, -100)
    k = int(ex["masked_lm_weights"].sum())
    labels[ex["masked_lm_positions"][:k]] = ex["masked_lm_ids"][:k]
    from_tf.add((tuple(ex["input_ids"][:n].tolist()),
                 tuple(ex["segment_ids"][:n].tolist()),
                 tuple(labels.tolist()), int(ex["next_sentence_labels"][0])))
  rows = read_parquet_rows(pq_out)
  from_pq = set()
  for row in rows:
    assert row["attention_mask"].tolist() == [1] * len(row["input_ids"])
    from_pq.add((tuple(row["input_ids"].tolist()),
                 tuple(row["token_type_ids"].tolist()),
                 tuple(row["labels"].tolist()),
                 int(row["sentence_order_label"])))
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


# --- n-gram masking against TF Model Garden's own code ----------------------

MODEL_GARDEN = "tf-models-official==2.20.0"
MODEL_GARDEN_SCRIPT = r"""
import collections, json, random, sys
import official.nlp.data.create_pretraining_data as mg
rows, vocab_words, reps = json.load(sys.stdin)
sizes, predictions, kinds = collections.Counter(), 0, collections.Counter()
for rep in range(reps):
  rng = random.Random(rep)
  random.seed(rep)  # Model Garden draws the n-gram sizes from random.choices
  for tokens in rows:
    budget = min(20, max(1, int(round(len(tokens) * 0.15))))
    grams = mg._tokens_to_grams(tokens)
    for gram in mg._masking_ngrams(grams, 3, budget, rng) or []:
      sizes[sum(1 for g in grams if gram.begin <= g.begin and
                g.end <= gram.end)] += 1
    out, positions, labels = mg.create_masked_lm_predictions(
        tokens, 0.15, 20, vocab_words, rng, True, 3)
    predictions += len(positions)
    for p, label in zip(positions, labels):
      kinds["mask" if out[p] == "[MASK]" else
            "kept" if out[p] == label else "random"] += 1
print(json.dumps({"sizes": sizes, "predictions": predictions,
                  "kinds": kinds}))
"""


@pytest.fixture(scope="module")
def model_garden():
  """TF Model Garden's create_pretraining_data.py from PyPI (with
  sentencepiece, which its tokenization module imports), beside this venv's
  TensorFlow: the reference for --max_ngram_size."""
  target = os.path.join(REPO, ".cache", "tools", "model-garden")
  if not os.path.exists(os.path.join(target, "official", "nlp", "data",
                                     "create_pretraining_data.py")):
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet",
                    "--no-deps", "--target", target, MODEL_GARDEN,
                    "sentencepiece==0.2.3"], check=True)
  return target


def _sample_rows(vocab):
  """[CLS] A [SEP] B [SEP] rows of real sentences, up to 128 tokens."""
  tokenizer = build_tokenizer(vocab, True)
  rows = []
  for doc in sample_documents():
    ids = [tokenizer.encode(s).ids for s in doc]
    for i in range(0, len(ids) - 1, 2):
      a, b = ids[i][:60], ids[i + 1][:60]
      rows.append([CLS] + a + [SEP] + b + [SEP])
  return rows


def test_ngram_masking_matches_model_garden(model_garden):
  vocab = load_vocab_list()
  rows = _sample_rows(vocab)
  reps = 30
  proc = subprocess.run(
      [sys.executable, "-c", MODEL_GARDEN_SCRIPT],
      input=json.dumps([[[vocab[t] for t in r] for r in rows], vocab, reps]),
      capture_output=True, text=True, check=True,
      env=dict(os.environ, PYTHONPATH=model_garden, TF_CPP_MIN_LOG_LEVEL="3"))
  reference = json.loads(proc.stdout.strip().splitlines()[-1])
  cont = np.array([t.startswith("##") for t in vocab])
  width = max(len(r) for r in rows)
  batch = _batch(rows, width)
  batch.a_lengths = np.array([r.index(SEP) - 1 for r in rows], np.int32)
  ours = collections.Counter()
  for rep in range(reps):
    _, counts = masking.mask_batch(
        batch, masking.MaskingParams(max_ngram_size=3), len(vocab), MASK,
        cont, np.random.default_rng(rep), special_ids=(CLS, SEP))
    ours.update(counts)
  ref_sizes = np.array([reference["sizes"].get(str(k), 0) for k in (1, 2, 3)],
                       dtype=float)
  our_sizes = np.array([ours["masked_ngrams_of_%d_words" % k]
                        for k in (1, 2, 3)], dtype=float)
  # The share of masked n-grams by length, within 2 points.
  assert np.all(np.abs(our_sizes / our_sizes.sum()
                       - ref_sizes / ref_sizes.sum()) < 0.02), (
                           our_sizes, ref_sizes)
  # Predictions per example, within 2%.
  ref_mean = reference["predictions"] / (reps * len(rows))
  our_mean = ours["masked_tokens"] / (reps * len(rows))
  assert abs(our_mean - ref_mean) < 0.02 * ref_mean, (our_mean, ref_mean)
  # 80/10/10 (decided per n-gram in both), within 2 points.
  ref_kinds = reference["kinds"]
  total = sum(ref_kinds.values())
  for ours_name, ref_name in (("masked_as_mask_token", "mask"),
                              ("masked_kept_original", "kept"),
                              ("masked_replaced_random", "random")):
    assert abs(ours[ours_name] / ours["masked_tokens"]
               - ref_kinds[ref_name] / total) < 0.02, ours_name


def test_ngrams_longer_than_every_row():
  """Rows of two or three words with --max_ngram_size=5: no n-gram of 4 or
  5 words exists, and nothing breaks (a short batch, a pool's last)."""
  rows = [[CLS, 2001, 2002, SEP], [CLS, 2003, 3004, 2005, SEP],
          [CLS, 2006, SEP, 2007, SEP]]
  batch = _batch(rows, 8)
  for size in (3, 4, 5, 6):
    out, counts = masking.mask_batch(
        batch, masking.MaskingParams(max_ngram_size=size, masked_lm_prob=1.0),
        5000, MASK, _continuation(), np.random.default_rng(size),
        special_ids=(CLS, SEP))
    assert out.num_predictions.tolist() == [2, 3, 2]
    assert counts["masked_ngrams"] >= 3
