"""Masked-LM predictions: counts, rounding, 80/10/10, whole words, padding;
n-gram masking against TF Model Garden's code, SpanBERT's spans, and no
masking (left to training time)."""

import collections
import os
import random
import typing

import numpy as np
import pytest

from oracles import references
from tests.helpers import REPO, load_vocab_list, sample_documents
from transforms import instances, masking
from transforms.instances import InstanceBatch
from transforms.tokenization import build_tokenizer

CLS, SEP, MASK = 101, 102, 103
VOCAB_SIZE = 1000


def _batch(rows, a_lengths, L=32):
  """rows: token lists without [CLS]/[SEP]; split after a_lengths tokens."""
  n = len(rows)
  tokens = np.zeros((n, L), dtype=np.int32)
  lengths = np.zeros(n, dtype=np.int32)
  for r, (row, la) in enumerate(zip(rows, a_lengths)):
    full = [CLS] + row[:la] + [SEP] + row[la:] + [SEP]
    tokens[r, :len(full)] = full
    lengths[r] = len(full)
  return InstanceBatch((0, 0), tokens, lengths,
                       np.array(a_lengths, dtype=np.int32),
                       np.zeros(n, dtype=bool))


def _no_continuation():
  return np.zeros(VOCAB_SIZE, dtype=bool)


def test_num_to_predict_rounds_half_to_even_and_clips():
  lengths = np.array([1, 3, 10, 30, 50, 70, 128, 200])
  got = masking.num_to_predict(lengths, 0.15, 20).tolist()
  expected = [min(20, max(1, int(round(n * 0.15)))) for n in lengths.tolist()]
  assert got == expected
  # 0.5 cases: 10 * 0.25 = 2.5 → 2 and 30 * 0.25 = 7.5 → 8, like Python 3.
  assert masking.num_to_predict(np.array([10, 30]), 0.25, 20).tolist() == [2, 8]


def test_masked_positions_counts_and_padding():
  rows = [list(range(500, 500 + n)) for n in (5, 20, 29)]
  batch = _batch(rows, [2, 10, 14])
  params = masking.MaskingParams(masked_lm_prob=0.15, max_predictions_per_seq=4)
  out, counts = masking.mask_batch(batch, params, VOCAB_SIZE, MASK,
                                   _no_continuation(), np.random.default_rng(0))
  expected_n = [1, 3, 4]  # round(8*.15)=1, round(23*.15)=3, min(4, 5)=4
  for r in range(3):
    n = int(out.masked_lm_weights[r].sum())
    assert n == expected_n[r]
    pos = out.masked_lm_positions[r, :n]
    assert list(pos) == sorted(pos)
    assert np.all(out.masked_lm_positions[r, n:] == 0)
    assert np.all(out.masked_lm_ids[r, n:] == 0)
    assert np.all(out.masked_lm_weights[r, n:] == 0)
    # Labels are the original tokens; never [CLS]/[SEP].
    assert np.array_equal(out.masked_lm_ids[r, :n], batch.tokens[r, pos])
    assert not set(batch.tokens[r, pos].tolist()) & {CLS, SEP}
    L = batch.lengths[r]
    assert out.input_mask[r].tolist() == [1] * L + [0] * (32 - L)
    assert np.all(out.input_ids[r, L:] == 0)
    # Only chosen positions changed.
    changed = np.nonzero(out.input_ids[r] != batch.tokens[r])[0]
    assert set(changed.tolist()) <= set(pos.tolist())
  assert counts["masked_tokens"] == sum(expected_n)


def test_eighty_ten_ten():
  rng = np.random.default_rng(1)
  rows = [rng.integers(200, 900, size=120).tolist() for _ in range(400)]
  batch = _batch(rows, [60] * 400, L=128)
  params = masking.MaskingParams(masked_lm_prob=0.15, max_predictions_per_seq=20)
  out, counts = masking.mask_batch(batch, params, VOCAB_SIZE, MASK,
                                   _no_continuation(), np.random.default_rng(2))
  total = counts["masked_tokens"]
  assert total == 400 * 18  # round(123 * 0.15) = 18
  assert abs(counts["masked_as_mask_token"] / total - 0.8) < 0.02
  assert abs(counts["masked_kept_original"] / total - 0.1) < 0.015
  assert abs(counts["masked_replaced_random"] / total - 0.1) < 0.015
  # Every candidate position is about equally likely.
  hits = np.zeros(128)
  for r in range(400):
    n = int(out.masked_lm_weights[r].sum())
    hits[out.masked_lm_positions[r, :n]] += 1
  inner = np.concatenate([hits[1:61], hits[62:122]])
  assert hits[0] == hits[61] == hits[122] == 0
  assert inner.min() > 20 and inner.max() < 100


def test_choose_tokens_is_a_uniform_sample_of_the_candidates():
  rng = np.random.default_rng(5)
  n, L, P = 6000, 10, 12  # more predictions allowed than positions
  cand = rng.random((n, L)) < 0.7
  n_pred = rng.integers(1, 13, size=n)
  positions = masking.choose_tokens(cand, n_pred, P, np.random.default_rng(6))
  assert positions.shape == (n, P) and positions.dtype == np.int32
  for r in range(n):
    real = positions[r][positions[r] < L].tolist()
    assert real == sorted(set(real))  # ascending, no position twice
    assert all(cand[r, real])
    assert len(real) == min(n_pred[r], cand[r].sum())
    assert positions[r, len(real):].tolist() == [L] * (P - len(real))
  # Rows with every position a candidate and three to choose: each
  # position in 3/10 of them, each pair in 3*2/(10*9).
  full = np.ones((20000, L), dtype=bool)
  picks = masking.choose_tokens(full, np.full(20000, 3), 3,
                                np.random.default_rng(7))
  hit = np.zeros((20000, L), dtype=bool)
  hit[np.arange(20000)[:, None], picks] = True
  assert np.all(np.abs(hit.mean(axis=0) - 0.3) < 0.015)
  pairs = (hit[:, :, None] & hit[:, None, :]).mean(axis=0)
  off = pairs[~np.eye(L, dtype=bool)]
  assert np.all(np.abs(off - 6 / 90) < 0.012)
  with pytest.raises(ValueError):
    masking.choose_tokens(full[:2], np.array([4, 1]), 3, rng)


def test_ascending_positions_lists_each_rows_chosen_positions():
  chosen = np.zeros((3, 8), dtype=bool)
  chosen[0, [6, 1, 3]] = True
  chosen[2, 7] = True
  assert masking.ascending_positions(chosen, 4).tolist() == [
      [1, 3, 6, 8], [8, 8, 8, 8], [7, 8, 8, 8]]


def test_whole_word_groups():
  cont = np.zeros(VOCAB_SIZE, dtype=bool)
  cont[[600, 601]] = True  # "##" pieces
  #            w   w  ##  ##  w  | ## w  ##
  rows = [[500, 501, 600, 601, 502, 600, 503, 601]]
  batch = _batch(rows, [5])
  cand, group = masking.word_groups(batch, cont, whole_word=True)
  # Positions: 0 CLS, 1-5 A, 6 SEP, 7-9 B, 10 SEP.
  assert group[0, :11].tolist() == [-1, 0, 1, 1, 1, 2, -1, 2, 3, 3, -1]
  _, plain = masking.word_groups(batch, cont, whole_word=False)
  assert plain[0, :11].tolist() == [-1, 0, 1, 2, 3, 4, -1, 5, 6, 7, -1]


def test_whole_word_masking_takes_whole_groups_that_fit():
  cont = np.zeros(VOCAB_SIZE, dtype=bool)
  cont[600:700] = True
  rng = np.random.default_rng(3)
  rows = []
  for _ in range(200):
    row = []
    while len(row) < 40:
      row.append(int(rng.integers(200, 500)))
      row.extend(int(x) for x in rng.integers(600, 700, size=rng.integers(0, 3)))
    rows.append(row[:40])
  batch = _batch(rows, [20] * 200, L=48)
  params = masking.MaskingParams(masked_lm_prob=0.15, max_predictions_per_seq=20,
                                 do_whole_word_mask=True)
  out, _ = masking.mask_batch(batch, params, VOCAB_SIZE, MASK, cont,
                              np.random.default_rng(4))
  _, group = masking.word_groups(batch, cont, whole_word=True)
  for r in range(200):
    n = int(out.masked_lm_weights[r].sum())
    assert 1 <= n <= 6  # round(43 * 0.15) = 6
    chosen = set(out.masked_lm_positions[r, :n].tolist())
    for g in {int(group[r, p]) for p in chosen}:
      members = set(np.nonzero(group[r] == g)[0].tolist())
      assert members <= chosen  # never part of a word


def test_masking_is_keyed():
  rows = [list(range(300, 340))] * 8
  batch = _batch(rows, [20] * 8, L=48)
  params = masking.MaskingParams()
  a, _ = masking.mask_batch(batch, params, VOCAB_SIZE, MASK, _no_continuation(),
                            masking.batch_rng(1, (0, 0)))
  b, _ = masking.mask_batch(batch, params, VOCAB_SIZE, MASK, _no_continuation(),
                            masking.batch_rng(1, (0, 0)))
  c, _ = masking.mask_batch(batch, params, VOCAB_SIZE, MASK, _no_continuation(),
                            masking.batch_rng(1, (0, 1)))
  assert np.array_equal(a.input_ids, b.input_ids)
  assert not np.array_equal(a.input_ids, c.input_ids)
  # Identical rows within a batch still get different masks.
  assert len({tuple(r) for r in a.masked_lm_positions.tolist()}) > 1


# --- n-gram and span masking, and masking left to training time ------------

def _rows_batch(rows, width, labels=None):
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
  batch = _rows_batch(rows, 128)
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
  batch = _rows_batch(rows, 512)
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
  batch = _rows_batch(rows, 64)
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
  batch = _rows_batch(rows, 64)
  out, counts = masking.mask_batch(batch, masking.MaskingParams(
      masking="none"), 5000, MASK, _continuation(), np.random.default_rng(3))
  assert not counts
  assert np.array_equal(out.input_ids, batch.tokens)
  assert out.masked_lm_positions.shape == (20, 0)
  assert not out.num_predictions.any()


# --- n-gram masking against TF Model Garden's own code ----------------------

@pytest.fixture(scope="module")
def model_garden():
  """TF Model Garden's create_pretraining_data.py from PyPI: the reference
  for --max_ngram_size (oracles/references.py)."""
  return references.ensure_model_garden(
      os.path.join(REPO, ".cache", "tools", "model-garden"))


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
  reference = references.model_garden_ngram_masking(
      [[vocab[t] for t in r] for r in rows], vocab, reps, model_garden)
  cont = np.array([t.startswith("##") for t in vocab])
  width = max(len(r) for r in rows)
  batch = _rows_batch(rows, width)
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
  batch = _rows_batch(rows, 8)
  for size in (3, 4, 5, 6):
    out, counts = masking.mask_batch(
        batch, masking.MaskingParams(max_ngram_size=size, masked_lm_prob=1.0),
        5000, MASK, _continuation(), np.random.default_rng(size),
        special_ids=(CLS, SEP))
    assert out.num_predictions.tolist() == [2, 3, 2]
    assert counts["masked_ngrams"] >= 3


# --- MaskTokens on a TestPipeline --------------------------------------------

def _sentence_batches(num_batches=4, rows=40, width=64, seed=0):
  """InstanceBatches of [CLS] A [SEP] B [SEP] rows of word ids (1000-29999,
  never a special id), zero padded."""
  rng = np.random.default_rng(seed)
  out = []
  for b in range(num_batches):
    lengths = rng.integers(12, width + 1, size=rows).astype(np.int32)
    a_lengths = (lengths - 3) // 2
    tokens = np.zeros((rows, width), np.int32)
    for i, (n, a) in enumerate(zip(lengths, a_lengths)):
      words = rng.integers(1000, 30000, size=n - 3)
      tokens[i, :n] = np.concatenate([[CLS], words[:a], [SEP], words[a:],
                                      [SEP]])
    out.append(InstanceBatch((7, b), tokens, lengths, a_lengths,
                             rng.integers(0, 2, size=rows).astype(np.uint8)))
  return out


def test_mask_tokens_transform_masks_each_batch_by_its_key():
  """MaskTokens on Beam: each batch masked as ``mask_batch`` masks it with
  the batch's own keyed generator (so the runner and the bundles change
  nothing), the labels putting back exactly the tokens, [CLS]/[SEP] and
  padding never chosen, 80/10/10 over the whole output, and a group
  mark passed through in its place."""
  import apache_beam as beam  # pylint: disable=import-outside-toplevel
  from apache_beam.testing.util import BeamAssertException, assert_that  # pylint: disable=import-outside-toplevel
  from tests.helpers import local_test_pipeline  # pylint: disable=import-outside-toplevel
  from transforms.shards import GroupMark  # pylint: disable=import-outside-toplevel
  batches = _sentence_batches()
  params = masking.MaskingParams(random_seed=99)
  cont = np.zeros(30522, bool)
  mark = GroupMark(3, 5, end=True)
  expected = {b.key: masking.mask_batch(
      b, params, 30522, MASK, cont, masking.batch_rng(99, b.key),
      special_ids=(CLS, SEP))[0] for b in batches}
  originals = {b.key: b for b in batches}

  def check(elements):
    marks = [e for e in elements if isinstance(e, GroupMark)]
    masked = [e for e in elements if not isinstance(e, GroupMark)]
    if marks != [mark] or sorted(m.key for m in masked) != sorted(expected):
      raise BeamAssertException("marks %s, keys %s" % (
          marks, [m.key for m in masked]))
    shown = collections.Counter()
    for m in masked:
      want, batch = expected[m.key], originals[m.key]
      for name in ("input_ids", "masked_lm_positions", "masked_lm_ids",
                   "num_predictions", "next_sentence_labels"):
        if not np.array_equal(getattr(m, name), getattr(want, name)):
          raise BeamAssertException("%s differs for %s" % (name, m.key))
      for i in range(len(m)):
        k = int(m.num_predictions[i])
        positions = m.masked_lm_positions[i, :k].astype(np.int64)
        restored = m.input_ids[i].copy()
        restored[positions] = m.masked_lm_ids[i, :k]
        chosen = batch.tokens[i, positions]
        if (not np.array_equal(restored, batch.tokens[i]) or k == 0
            or np.isin(chosen, (CLS, SEP, 0)).any()
            or positions.max() >= batch.lengths[i]):
          raise BeamAssertException("row %d of %s" % (i, m.key))
        ids = m.input_ids[i, positions]
        shown["mask"] += int(np.count_nonzero(ids == MASK))
        shown["kept"] += int(np.count_nonzero(ids == chosen))
        shown["all"] += k
    if abs(shown["mask"] / shown["all"] - 0.8) > 0.06 or abs(
        shown["kept"] / shown["all"] - 0.1) > 0.05:
      raise BeamAssertException("80/10/10: %s" % shown)

  with local_test_pipeline() as p:
    # Any: the pools' reader yields marks and batches alike, untyped.
    masked = (p | beam.Create(batches + [mark]).with_output_types(typing.Any)
              | masking.MaskTokens(params, vocab_size=30522, mask_id=MASK,
                                   is_continuation=cont,
                                   special_ids=(CLS, SEP)))
    assert_that(masked, check)


# --- ALBERT's token_boundary ---------------------------------------------------

def _wordpiece_batch(rows, L=16):
  """An InstanceBatch of [CLS] A [SEP] B [SEP] rows given as WordPiece
  strings of the bundled vocabulary (A and B split at "|"), and the
  vocabulary's continuation table."""
  from transforms import tokenizer_families as families  # pylint: disable=import-outside-toplevel
  vocab = load_vocab_list()
  ids = {t: i for i, t in enumerate(vocab)}
  tokens = np.zeros((len(rows), L), dtype=np.int32)
  lengths, a_lengths = [], []
  for r, text in enumerate(rows):
    a, b = text.split(" | ")
    full = ["[CLS]"] + a.split() + ["[SEP]"] + b.split() + ["[SEP]"]
    tokens[r, :len(full)] = [ids[t] for t in full]
    lengths.append(len(full))
    a_lengths.append(len(a.split()))
  cont = families.continuation_pieces(
      "wordpiece", vocab, families.BERT_TOKENS.as_dict().values())
  batch = InstanceBatch((0, 0), tokens, np.array(lengths, np.int32),
                        np.array(a_lengths, np.int32),
                        np.zeros(len(rows), np.uint8))
  return batch, cont, vocab


def test_token_boundary_marks_word_starts_wordpiece():
  """1 at [CLS], each [SEP] and each piece that is not a ## piece (ALBERT's
  _is_start_piece_bert), 0 at ## pieces and in the padding."""
  batch, cont, _ = _wordpiece_batch(["the light ##house | play ##ing ##s",
                                     "rock ##able | un"])
  got = masking.token_boundary(batch, cont)
  assert got.dtype == np.uint8 and got.shape == (2, 16)
  assert got[0].tolist() == [1, 1, 1, 0, 1, 1, 0, 0, 1] + [0] * 7
  assert got[1].tolist() == [1, 1, 0, 1, 1, 1] + [0] * 10


def test_token_boundary_marks_word_starts_sentencepiece():
  """By ALBERT's _is_start_piece_sp: a ▁ piece, a punctuation piece and a
  piece with a foreign character start a word; special tokens (XLM-R's <s>
  and </s> here, RoBERTa's layout with two separators) count as starts."""
  from transforms import tokenizer_families as families  # pylint: disable=import-outside-toplevel
  pieces = ["<s>", "<pad>", "</s>", "<unk>", "\u2581hel", "lo", ",", "s",
            "\u00e9t\u00e9", "<mask>"]
  cont = families.continuation_pieces("sentencepiece", pieces,
                                      families.ROBERTA_TOKENS.as_dict()
                                      .values())
  row = [0, 4, 5, 6, 2, 2, 4, 7, 8, 3, 2]  # <s> A </s></s> B </s>
  tokens = np.ones((1, 14), np.int32)  # padded with <pad>
  tokens[0, :len(row)] = row
  batch = InstanceBatch((0, 0), tokens, np.array([len(row)], np.int32),
                        np.array([3], np.int32), np.zeros(1, np.uint8),
                        separators=2, segment_b=0)
  assert masking.token_boundary(batch, cont)[0].tolist() == [
      1, 1, 0, 1, 1, 1, 1, 0, 1, 1, 1, 0, 0, 0]


@pytest.mark.parametrize("params", [
    masking.MaskingParams(masked_lm_prob=0.5),
    masking.MaskingParams(masked_lm_prob=0.5, do_whole_word_mask=True),
    masking.MaskingParams(masked_lm_prob=0.5, max_ngram_size=3),
    masking.MaskingParams(masking="none"),
], ids=["static", "whole_word", "ngrams", "none"])
def test_mask_batch_adds_the_token_boundary_of_the_original_tokens(params):
  """With MaskingParams.token_boundary the masked batch carries
  ``token_boundary`` of the tokens before masking (a masked ## piece stays
  0, [MASK] being no piece of the text), whatever chooses the masks, and
  the masks are the same as without it: it draws nothing."""
  import dataclasses  # pylint: disable=import-outside-toplevel
  batch, cont, _ = _wordpiece_batch(
      ["the light ##house play ##ing ##s | rock ##able un light ##house",
       "play ##ing ##s | the rock ##s"] * 20)
  mask_id = load_vocab_list().index("[MASK]")
  without, counts = masking.mask_batch(batch, params, 30522, mask_id, cont,
                                       np.random.default_rng(5))
  with_it, counts_with = masking.mask_batch(
      batch, dataclasses.replace(params, token_boundary=True), 30522,
      mask_id, cont, np.random.default_rng(5))
  assert without.token_boundary is None
  assert np.array_equal(with_it.token_boundary,
                        masking.token_boundary(batch, cont))
  for field in dataclasses.fields(without):
    if field.name != "token_boundary":
      assert np.array_equal(getattr(with_it, field.name),
                            getattr(without, field.name)), field.name
  assert counts_with == counts
  if params.masking != "none":
    # Some masked position holds a ## piece: its boundary is still 0.
    rows, cols = np.nonzero(with_it.input_ids != batch.tokens)
    assert (with_it.token_boundary[rows, cols] == 0).any()


@pytest.mark.parametrize("params", [
    masking.MaskingParams(masked_lm_prob=0.5),
    masking.MaskingParams(masked_lm_prob=0.5, max_ngram_size=3),
    masking.MaskingParams(masked_lm_prob=0.5, span_masking="geometric"),
    masking.MaskingParams(masking="none"),
], ids=["static", "ngrams", "spans", "none"])
def test_mask_batch_carries_each_rows_language(params):
  """A batch of a multilingual corpus (InstanceBatch.languages) comes out
  of masking with the same languages, and ``langs`` is each row's id at
  every position, padding included (XLM's ``x.clone().fill_(lang_id)``);
  the masks are those of the same batch without languages: nothing is
  drawn for them."""
  import dataclasses  # pylint: disable=import-outside-toplevel
  batch, cont, _ = _wordpiece_batch(
      ["the light ##house play ##ing ##s | rock ##able un light ##house",
       "play ##ing ##s | the rock ##s"] * 20)
  ids = np.arange(len(batch), dtype=np.uint16) % 3
  tagged = dataclasses.replace(batch, languages=ids)
  mask_id = load_vocab_list().index("[MASK]")
  without, counts = masking.mask_batch(batch, params, 30522, mask_id, cont,
                                       np.random.default_rng(5))
  with_it, counts_with = masking.mask_batch(tagged, params, 30522, mask_id,
                                            cont, np.random.default_rng(5))
  assert without.languages is None
  with pytest.raises(ValueError, match="no languages"):
    _ = without.langs
  assert np.array_equal(with_it.languages, ids)
  assert with_it.langs.shape == batch.tokens.shape
  assert (with_it.langs == ids[:, None]).all()
  for field in dataclasses.fields(without):
    if field.name != "languages":
      assert np.array_equal(getattr(with_it, field.name),
                            getattr(without, field.name)), field.name
  assert counts_with == counts


def _random_pairs(rng, n, L, separators, vocab_size):
  """Segment pairs of random lengths (some too short to mask anything) in
  a [n, L] batch, with [SEP]s inside the segments now and then."""
  tokens = np.zeros((n, L), dtype=np.int32)
  lengths = rng.integers(2, L + 1, size=n).astype(np.int32)
  a_lengths = np.zeros(n, dtype=np.int32)
  for r, length in enumerate(lengths.tolist()):
    body = length - 2 - separators
    if body < 2:
      lengths[r] = 2 + (length > 2)
      tokens[r, :lengths[r]] = [CLS] + [500] * (lengths[r] - 2) + [SEP]
      a_lengths[r] = lengths[r] - 2
      continue
    a = int(rng.integers(1, body))
    ids = rng.integers(1000, vocab_size, size=body)
    ids[rng.random(body) < 0.03] = SEP
    row = ([CLS] + ids[:a].tolist() + [SEP] * separators + ids[a:].tolist()
           + [SEP])
    tokens[r, :len(row)] = row
    a_lengths[r] = a
  return InstanceBatch((3, 4), tokens, lengths, a_lengths,
                       rng.integers(0, 2, size=n).astype(np.uint8),
                       separators=separators)


@pytest.mark.parametrize("L, P, separators, prob, vocab_size, special", [
    (128, 20, 1, 0.15, 30522, (CLS, SEP)),  # BERT's
    (128, 20, 1, 0.15, 30522, ()),
    (64, 10, 2, 0.15, 50265, (CLS, SEP, 7)),  # two separators
    (16, 20, 1, 0.15, 30522, (CLS, SEP)),  # more slots than tokens
    (32, 5, 1, 0.9, 30522, (CLS, SEP)),  # every row asks for all its slots
    (256, 40, 1, 0.15, 250002, (CLS, SEP)),  # int32 ids
    (512, 76, 1, 0.15, 30522, (SEP,)),
    (128, 0, 1, 0.15, 30522, (CLS, SEP)),  # --max_predictions_per_seq=0
])
def test_the_c_kernel_masks_as_numpy_does(monkeypatch, L, P, separators,
                                          prob, vocab_size, special):
  """The C masking kernel (BERT's token masking without whole words) and
  the numpy path give the same features and counts from the same
  generator, for several layouts, with and without token_boundary, and
  for an empty batch. (The statistical tests above check the masking
  itself.)"""
  from transforms import kernels  # pylint: disable=import-outside-toplevel
  if kernels.masking_kernel() is None:
    pytest.skip("the masking kernel is not built here (no C compiler)")
  import dataclasses  # pylint: disable=import-outside-toplevel
  rng = np.random.default_rng(L * P + separators)
  cont = rng.random(vocab_size) < 0.3
  for n, boundary in ((300, False), (50, True), (0, False)):
    batch = _random_pairs(rng, n, L, separators, vocab_size)
    params = masking.MaskingParams(masked_lm_prob=prob,
                                   max_predictions_per_seq=P,
                                   token_boundary=boundary)
    outcomes = []
    for numpy_only in (False, True):
      monkeypatch.setattr(kernels, "numpy_only", numpy_only)
      outcomes.append(masking.mask_batch(
          batch, params, vocab_size, MASK, cont,
          masking.batch_rng(5, batch.key), special))
    (c, c_counts), (ref, ref_counts) = outcomes
    assert c_counts == ref_counts
    for field in dataclasses.fields(c):
      got, want = getattr(c, field.name), getattr(ref, field.name)
      if isinstance(want, np.ndarray):
        assert got.dtype == want.dtype, field.name
        assert np.array_equal(got, want), field.name
      else:
        assert got == want, field.name
    if n and P:
      assert c_counts["masked_tokens"] > 0


def test_the_c_kernel_chooses_nothing_when_no_prediction_is_asked():
  """Rows of many candidates and no prediction asked (``n_pred`` 0, as
  ``--max_predictions_per_seq=0`` asks): nothing is chosen, nothing is
  read or written outside the row, whatever the keys (all zero here: the
  smallest there are)."""
  from transforms import kernels  # pylint: disable=import-outside-toplevel
  kernel = kernels.masking_kernel()
  if kernel is None:
    pytest.skip("the masking kernel is not built here (no C compiler)")
  n, L, P = 4, 200, 3
  tokens = np.full((n, L), 500, dtype=np.int32)
  tokens[:, 0], tokens[:, L - 1] = CLS, SEP
  lengths = np.full(n, L, dtype=np.int32)
  a_lengths = np.full(n, L // 2, dtype=np.int32)
  input_ids = tokens.astype(np.uint16)
  positions = np.full((n, P), 9, dtype=np.uint16)
  masked_ids = np.full((n, P), 9, dtype=np.uint16)
  num = np.full(n, 9, dtype=np.int32)
  counts = kernel.mask_tokens(
      tokens, lengths, a_lengths, 1, np.array([CLS, SEP], dtype=np.int32),
      np.zeros(n * L, dtype=np.uint64), np.zeros(n, dtype=np.int64),
      np.zeros((n, P), dtype=np.float32), np.zeros((n, P), dtype=np.float32),
      np.zeros((n, P), dtype=np.int32), MASK, input_ids, positions,
      masked_ids, num)
  assert counts == (0, 0, 0, 0)
  assert (positions == 0).all() and (masked_ids == 0).all()
  assert (num == 0).all() and (input_ids == tokens).all()
