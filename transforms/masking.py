"""MaskTokens: ``InstanceBatch`` → ``MaskedBatch`` (masked-LM predictions).

BERT's ``create_masked_lm_predictions``, done for a whole batch at once with
numpy:

* Candidates are every real position except ``[CLS]`` and ``[SEP]``. With
  whole-word masking a ``##`` piece joins the group before it (as in BERT,
  even across the first ``[SEP]``).
* ``n = min(max_predictions_per_seq, max(1, round(len * masked_lm_prob)))``
  with round-half-to-even, like Python 3's ``round``.
* Groups are taken in random order while they fit in ``n``; a group that
  would overflow is skipped.
* Each chosen position becomes ``[MASK]`` with probability 0.8, else keeps its
  token or gets a random vocabulary id (over all ids, as BERT does), 50/50.
  Whole-word masking decides this per piece, as BERT does.

Randomness comes from a numpy generator keyed by (seed, batch key).
"""

import dataclasses
from typing import Dict, Tuple

import apache_beam as beam
import numpy as np

from transforms import keys
from transforms import metrics
from transforms.instances import InstanceBatch, segment_ids


@dataclasses.dataclass
class MaskingParams:
  masked_lm_prob: float = 0.15
  max_predictions_per_seq: int = 20
  do_whole_word_mask: bool = False
  random_seed: int = 12345


@dataclasses.dataclass
class MaskedBatch:
  """Masked instances in compact form (narrow dtypes, nothing derivable
  stored). The properties give BERT's features, zero padded."""
  key: Tuple[int, int]  # the InstanceBatch's key
  input_ids: np.ndarray  # [n, max_seq_length], masked, zero padded
  lengths: np.ndarray  # int32 [n]: real tokens, [CLS] and [SEP]s included
  a_lengths: np.ndarray  # int32 [n]: tokens of segment A
  masked_lm_positions: np.ndarray  # uint16 [n, max_predictions], ascending
  masked_lm_ids: np.ndarray  # [n, max_predictions]: the original tokens
  num_predictions: np.ndarray  # int32 [n]
  next_sentence_labels: np.ndarray  # uint8 [n]: 1 = random next

  def __len__(self):
    return int(self.lengths.size)

  @property
  def input_mask(self) -> np.ndarray:
    cols = np.arange(self.input_ids.shape[1])[None, :]
    return (cols < self.lengths[:, None]).astype(np.uint8)

  @property
  def segment_ids(self) -> np.ndarray:
    return segment_ids(self.lengths, self.a_lengths, self.input_ids.shape[1])

  @property
  def masked_lm_weights(self) -> np.ndarray:
    cols = np.arange(self.masked_lm_positions.shape[1])[None, :]
    return (cols < self.num_predictions[:, None]).astype(np.float32)




def num_to_predict(lengths: np.ndarray, masked_lm_prob: float,
                   max_predictions: int) -> np.ndarray:
  """Predictions per instance; ``np.rint`` rounds half to even like Python."""
  n = np.rint(lengths.astype(np.float64) * masked_lm_prob).astype(np.int64)
  return np.minimum(max_predictions, np.maximum(1, n))


def candidates(batch: InstanceBatch) -> np.ndarray:
  """bool [n, L]: positions that may be masked."""
  cols = np.arange(batch.tokens.shape[1])[None, :]
  lengths = batch.lengths[:, None]
  first_sep = (batch.a_lengths + 1)[:, None]
  return ((cols > 0) & (cols < lengths - 1) & (cols != first_sep))


def word_groups(batch: InstanceBatch, is_continuation: np.ndarray,
                whole_word: bool) -> Tuple[np.ndarray, np.ndarray]:
  """``(cand, group)``: the candidate mask and, per position, the index of its
  group within its row (-1 for non-candidates)."""
  cand = candidates(batch)
  starts = cand.copy()
  if whole_word:
    cont = is_continuation[batch.tokens] & cand
    # A ## piece starts a group only when no group exists yet in its row.
    seen_before = np.cumsum(cand, axis=1) > 1
    starts &= ~(cont & seen_before)
  group = np.cumsum(starts, axis=1) - 1
  group[~cand] = -1
  return cand, group


def choose_positions(cand: np.ndarray, group: np.ndarray, n_pred: np.ndarray,
                     rng: np.random.Generator) -> np.ndarray:
  """bool [n, L]: the positions chosen for prediction."""
  n, L = cand.shape
  if np.array_equal(group[cand], (np.cumsum(cand, axis=1) - 1)[cand]):
    # Every group is one position: a random permutation of the candidates,
    # first n_pred of them.
    # Random keys made distinct by the column, so that "the n_pred smallest"
    # is exact: the keys at or below the n_pred-th smallest.
    noise = rng.integers(0, 1 << 40, size=(n, L)) * L + np.arange(L)[None, :]
    noise[~cand] = np.iinfo(np.int64).max
    limit = np.minimum(n_pred, cand.sum(axis=1)) - 1
    threshold = np.take_along_axis(np.sort(noise, axis=1),
                                   np.maximum(limit, 0)[:, None], axis=1)
    return cand & (noise <= threshold) & (limit >= 0)[:, None]
  chosen = np.zeros_like(cand)
  for r in range(n):
    g = group[r]
    n_groups = int(g.max()) + 1
    if n_groups <= 0:
      continue
    sizes = np.bincount(g[g >= 0], minlength=n_groups)
    taken = np.zeros(n_groups, dtype=bool)
    total, limit = 0, int(n_pred[r])
    for k in rng.permutation(n_groups):
      if total >= limit:
        break
      if total + sizes[k] > limit:
        continue
      taken[k] = True
      total += sizes[k]
    chosen[r] = (g >= 0) & taken[np.maximum(g, 0)]
  return chosen


def mask_batch(batch: InstanceBatch, params: MaskingParams, vocab_size: int,
               mask_id: int, is_continuation: np.ndarray,
               rng: np.random.Generator) -> Tuple[MaskedBatch, Dict[str, int]]:
  """Masks every instance of ``batch``; returns the features and counts."""
  n, L = batch.tokens.shape
  P = params.max_predictions_per_seq
  cand, group = word_groups(batch, is_continuation, params.do_whole_word_mask)
  n_pred = num_to_predict(batch.lengths, params.masked_lm_prob, P)
  chosen = choose_positions(cand, group, n_pred, rng)

  tokens = batch.tokens
  id_dtype = np.uint16 if vocab_size <= np.iinfo(np.uint16).max else np.int32
  u = rng.random((n, L), dtype=np.float32)
  keep_or_random = rng.random((n, L), dtype=np.float32)
  random_ids = rng.integers(0, vocab_size, size=(n, L), dtype=np.int32)
  to_mask = chosen & (u < 0.8)
  to_keep = chosen & ~to_mask & (keep_or_random < 0.5)
  to_random = chosen & ~to_mask & ~to_keep
  input_ids = np.where(to_mask, mask_id,
                       np.where(to_random, random_ids, tokens)).astype(id_dtype)

  # Chosen positions in ascending order, padded with 0.
  cols = np.arange(L, dtype=np.int32)[None, :]
  pos_sorted = np.sort(np.where(chosen, cols, L), axis=1)[:, :P]
  if pos_sorted.shape[1] < P:
    # More predictions allowed than positions (BERT pads them, as here).
    pos_sorted = np.pad(pos_sorted, ((0, 0), (0, P - pos_sorted.shape[1])),
                        constant_values=L)
  real = pos_sorted < L
  positions = np.where(real, pos_sorted, 0)
  ids = np.where(real, np.take_along_axis(tokens, positions, axis=1), 0)

  masked = MaskedBatch(
      key=batch.key,
      input_ids=input_ids,
      lengths=batch.lengths.astype(np.int32),
      a_lengths=batch.a_lengths.astype(np.int32),
      masked_lm_positions=positions.astype(np.uint16),
      masked_lm_ids=ids.astype(id_dtype),
      num_predictions=real.sum(axis=1).astype(np.int32),
      next_sentence_labels=batch.is_random_next.astype(np.uint8))
  counts = {
      "masked_tokens": int(np.count_nonzero(chosen)),
      "masked_as_mask_token": int(np.count_nonzero(to_mask)),
      "masked_kept_original": int(np.count_nonzero(to_keep)),
      "masked_replaced_random": int(np.count_nonzero(to_random)),
  }
  return masked, counts


def batch_rng(seed: int, key) -> np.random.Generator:
  return np.random.default_rng(keys.stable_hash("mask", seed, *key))


class _MaskDoFn(beam.DoFn):

  def __init__(self, params: MaskingParams, vocab_size: int, mask_id: int,
               is_continuation: np.ndarray):
    self._params = params
    self._vocab_size = vocab_size
    self._mask_id = mask_id
    self._is_continuation = is_continuation

  def process(self, batch: InstanceBatch):
    masked, counts = mask_batch(
        batch, self._params, self._vocab_size, self._mask_id,
        self._is_continuation, batch_rng(self._params.random_seed, batch.key))
    for name, n in counts.items():
      metrics.count(name, n)
    yield masked


class MaskTokens(beam.PTransform):
  """Output: ``MaskedBatch`` per ``InstanceBatch``."""

  def __init__(self, params: MaskingParams, vocab_size: int, mask_id: int,
               is_continuation: np.ndarray):
    super().__init__()
    self._args = (params, vocab_size, mask_id, is_continuation)

  def expand(self, batches):
    return batches | "Mask" >> beam.ParDo(_MaskDoFn(*self._args))
