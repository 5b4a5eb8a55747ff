"""Masked-LM predictions: counts, rounding, 80/10/10, whole words, padding."""

import numpy as np

from transforms import masking
from transforms.instances import InstanceBatch

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
