"""MaskTokens: ``InstanceBatch`` → ``MaskedBatch`` (masked-LM predictions).

``--masking=static`` masks each instance once, here; ``--masking=none``
(``no_masking``) writes the instances unmasked, for masking at training time
(dynamic masking, as RoBERTa, ELECTRA and ModernBERT do).

Static masking is BERT's ``create_masked_lm_predictions``, done for a whole
batch at once with numpy:

* Candidates are every real position except ``[CLS]`` and ``[SEP]``. With
  whole-word masking a ``##`` piece joins the group before it (as in BERT,
  even across the first ``[SEP]``).
* ``n = min(max_predictions_per_seq, max(1, round(len * masked_lm_prob)))``
  with round-half-to-even, like Python 3's ``round``.
* Which positions: one plain function per strategy. ``choose_tokens``
  (BERT: a uniform sample of ``n`` candidates), ``choose_positions``
  (whole-word masking: words taken in random order while they fit in
  ``n``; one that would overflow is skipped), ``choose_ngrams`` (TF Model
  Garden's ``--max_ngram_size``: whole-word n-grams weighted 1/n) and
  ``choose_spans`` (SpanBERT's geometric spans of whole words).
* Each chosen position becomes ``[MASK]`` with probability 0.8, else keeps its
  token or gets a random vocabulary id (over all ids, as BERT does), 50/50.
  BERT and whole-word masking decide this per piece, as google-research/bert
  does; n-gram masking once per n-gram, as Model Garden does, and span
  masking once per span, as SpanBERT does (random ids are drawn per piece).

With ``MaskingParams.token_boundary`` (``--token_boundary``) each batch
also carries ALBERT's ``token_boundary`` feature (``token_boundary()``):
which of the original tokens start a word. It draws nothing, so the masks
are the same with it or without.

Each row's language id (``InstanceBatch.languages``, a corpus with
language tags) passes through to ``MaskedBatch.languages``, whence the
writers make XLM's ``langs`` (``--langs_feature``); nothing is drawn for
it either.

Randomness comes from a numpy generator keyed by (seed, batch key).
"""

import dataclasses
from typing import Dict, Optional, Sequence, Tuple

import apache_beam as beam
import numpy as np

from transforms import kernels
from transforms import keys
from transforms import metrics
from transforms.instances import InstanceBatch, segment_ids
from transforms.shards import GroupMark


MASKINGS = ("static", "none")
SPAN_MASKINGS = ("none", "geometric")


@dataclasses.dataclass(frozen=True, kw_only=True)
class MaskingParams:
  """Which positions are masked and how (the flags of the same names)."""
  masked_lm_prob: float = 0.15
  max_predictions_per_seq: int = 20
  do_whole_word_mask: bool = False
  random_seed: int = 12345
  masking: str = "static"  # one of MASKINGS
  # TF Model Garden's --max_ngram_size: whole-word n-grams of 1..N words,
  # weighted 1/n; 0 = off.
  max_ngram_size: int = 0
  span_masking: str = "none"  # one of SPAN_MASKINGS
  span_p: float = 0.2  # SpanBERT's geometric p
  max_span_length: int = 10  # in whole words
  # ALBERT's token_boundary feature: each original token's word start
  # (--token_boundary; see token_boundary()). Chooses nothing.
  token_boundary: bool = False


@dataclasses.dataclass
class MaskedBatch:
  """Masked instances in compact form (narrow dtypes, nothing derivable
  stored). The properties give BERT's features, padded as the instances
  were (``SequenceLayout.pad_id`` in ``input_ids``, 0 elsewhere)."""
  key: Tuple[int, int]  # the InstanceBatch's key
  input_ids: np.ndarray  # [n, max_seq_length], masked, padded
  lengths: np.ndarray  # int32 [n]: real tokens, [CLS] and [SEP]s included
  a_lengths: np.ndarray  # int32 [n]: tokens of segment A
  masked_lm_positions: np.ndarray  # uint16 [n, max_predictions], ascending
  masked_lm_ids: np.ndarray  # [n, max_predictions]: the original tokens
  num_predictions: np.ndarray  # int32 [n]
  # uint8 [n]: the sentence label (NSP: 1 = random next; SOP: 1 = swapped)
  next_sentence_labels: np.ndarray
  separators: int = 1  # the InstanceBatch's (its SequenceLayout's)
  segment_b: int = 1
  # uint8 [n, max_seq_length]: ALBERT's token_boundary of the original
  # tokens (see token_boundary()); None unless MaskingParams asks for it.
  token_boundary: Optional[np.ndarray] = None
  # uint16 [n]: each row's language id (the InstanceBatch's languages);
  # None for a corpus without language tags. See langs.
  languages: Optional[np.ndarray] = None

  def __len__(self):
    return int(self.lengths.size)

  @property
  def langs(self) -> np.ndarray:
    """XLM's ``langs``, [n, max_seq_length]: the row's language id at every
    position, the padding included, as XLM's trainer fills it
    (``x.clone().fill_(lang_id)``). Raises ValueError without
    ``languages``."""
    if self.languages is None:
      raise ValueError("the batch has no languages (a corpus without "
                       "language tags)")
    return np.repeat(self.languages[:, None], self.input_ids.shape[1],
                     axis=1)

  @property
  def input_mask(self) -> np.ndarray:
    cols = np.arange(self.input_ids.shape[1])[None, :]
    return (cols < self.lengths[:, None]).view(np.uint8)

  @property
  def segment_ids(self) -> np.ndarray:
    return segment_ids(self.lengths, self.a_lengths, self.input_ids.shape[1],
                       self.separators, self.segment_b)

  @property
  def masked_lm_weights(self) -> np.ndarray:
    cols = np.arange(self.masked_lm_positions.shape[1])[None, :]
    return (cols < self.num_predictions[:, None]).astype(np.float32)



def token_boundary(batch: InstanceBatch,
                   is_continuation: np.ndarray) -> np.ndarray:
  """uint8 [n, max_seq_length]: ALBERT's ``token_boundary`` feature of the
  batch's original (unmasked) tokens: 1 at each position up to
  ``lengths`` whose token starts a word, 0 at continuation pieces and in
  the padding.

  As google-research/albert's ``create_pretraining_data.py`` fills it in
  ``create_masked_lm_predictions``: 1 at ``[CLS]`` and ``[SEP]``, 1 at a
  start piece (``_is_start_piece_sp`` for a SentencePiece model, not a
  ``##`` piece otherwise), whether or not whole words are masked; its
  writer pads it with 0. Here the start pieces are those
  ``is_continuation`` (bool per id, ``tokenizer_families
  .continuation_pieces``: the family's rule, and a special token never
  continues a word) does not mark, so every special token of the layout
  (``[CLS]``, each ``[SEP]``, RoBERTa's ``<s>`` and ``</s>``) is 1.
  """
  cols = np.arange(batch.tokens.shape[1])[None, :]
  starts = ~is_continuation[batch.tokens] & (cols < batch.lengths[:, None])
  return starts.astype(np.uint8)


def num_to_predict(lengths: np.ndarray, masked_lm_prob: float,
                   max_predictions: int) -> np.ndarray:
  """Predictions per instance; ``np.rint`` rounds half to even like Python."""
  n = np.rint(lengths.astype(np.float64) * masked_lm_prob).astype(np.int64)
  return np.minimum(max_predictions, np.maximum(1, n))


def candidates(batch: InstanceBatch,
               special_ids: Sequence[int] = ()) -> np.ndarray:
  """bool [n, L]: positions that may be masked: not ``[CLS]``, not a
  ``[SEP]`` closing a segment (the batch's separators after A, the last
  one), not padding, and no token of ``special_ids`` (the ``[SEP]``
  between packed documents)."""
  cols = np.arange(batch.tokens.shape[1])[None, :]
  lengths = batch.lengths[:, None]
  after_a = batch.a_lengths[:, None]
  cand = ((cols > 0) & (cols < lengths - 1)
          & ((cols <= after_a) | (cols > after_a + batch.separators)))
  for special in special_ids:
    cand &= batch.tokens != special
  return cand


def word_groups(batch: InstanceBatch, is_continuation: np.ndarray,
                whole_word: bool, special_ids: Sequence[int] = ()
                ) -> Tuple[np.ndarray, np.ndarray]:
  """``(cand, group)``: the candidate mask and, per position, the index of its
  group within its row (-1 for non-candidates)."""
  cand = candidates(batch, special_ids)
  starts = cand.copy()
  if whole_word:
    cont = is_continuation[batch.tokens] & cand
    # A ## piece starts a group only when no group exists yet in its row.
    seen_before = np.cumsum(cand, axis=1) > 1
    starts &= ~(cont & seen_before)
  group = np.cumsum(starts, axis=1) - 1
  group[~cand] = -1
  return cand, group


def choose_tokens(cand: np.ndarray, n_pred: np.ndarray,
                  max_predictions: int, rng: np.random.Generator
                  ) -> np.ndarray:
  """BERT's choice without whole words: each row's ``min(n_pred,
  candidates)`` positions, a uniform sample of its candidates (``cand``,
  bool [n, L]) without replacement, as the first ``n_pred`` of BERT's
  shuffled candidates are.

  Returns int32 [n, max_predictions]: the chosen positions in ascending
  order, padded with ``L``. Each position gets a random 64-bit key whose
  low bits are replaced by its column, so that keys are distinct and the
  ``n_pred`` smallest are exact; one sort of the keys, then one of the
  ``max_predictions`` columns kept. ``rng`` must draw 64 random bits per
  raw value (PCG64, numpy's ``default_rng``; ``batch_rng``). Raises
  ValueError if a row asks for more than ``max_predictions``.
  """
  n, L = cand.shape
  if n and int(n_pred.max()) > max_predictions:
    raise ValueError("n_pred above max_predictions")
  bits = max(1, (L - 1).bit_length())
  keys = rng.bit_generator.random_raw(n * L).reshape(n, L)
  keys >>= np.uint64(bits)
  keys <<= np.uint64(bits)
  keys |= np.arange(L, dtype=np.uint64)[None, :]
  keys[~cand] = np.iinfo(np.uint64).max
  k = min(max_predictions, L)
  smallest = np.sort(keys, axis=1)[:, :k]
  limit = np.minimum(n_pred, np.count_nonzero(cand, axis=1))
  positions = np.where(np.arange(k)[None, :] < limit[:, None],
                       (smallest & np.uint64((1 << bits) - 1)).astype(np.int32),
                       L)
  positions.sort(axis=1)
  if k < max_predictions:
    positions = np.pad(positions, ((0, 0), (0, max_predictions - k)),
                       constant_values=L)
  return positions


def ascending_positions(chosen: np.ndarray,
                        max_predictions: int) -> np.ndarray:
  """int32 [n, max_predictions]: each row's chosen positions (``chosen``,
  bool [n, L], at most ``max_predictions`` a row) in ascending order,
  padded with ``L``; the layout ``choose_tokens`` returns."""
  n, L = chosen.shape
  rows, cols = _nonzero(chosen)
  per_row = np.bincount(rows, minlength=n)
  slot = np.arange(rows.size) - np.repeat(np.cumsum(per_row) - per_row,
                                          per_row)
  positions = np.full((n, max_predictions), L, dtype=np.int32)
  positions[rows, slot] = cols
  return positions


def choose_positions(cand: np.ndarray, group: np.ndarray, n_pred: np.ndarray,
                     rng: np.random.Generator) -> np.ndarray:
  """bool [n, L]: the positions chosen for prediction, whole groups
  (``word_groups``) taken in random order while they fit in ``n_pred``."""
  n, L = cand.shape
  if np.array_equal(group[cand], (np.cumsum(cand, axis=1) - 1)[cand]):
    # Every group is one position: BERT's choice of single tokens.
    positions = choose_tokens(cand, n_pred, L, rng)
    chosen = np.zeros_like(cand)
    rows, slots = _nonzero(positions < L)
    chosen[rows, positions[rows, slots]] = True
    return chosen
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


@dataclasses.dataclass
class WordTable:
  """The whole words of each row, for n-gram and span masking: word ``w``
  of row ``r`` is positions ``[begin[r, w], end[r, w])``; words with the
  same ``run`` id are adjacent (nothing between them: no ``[SEP]``, no
  padding). ``word_of`` gives each candidate position's word (-1
  elsewhere)."""
  begin: np.ndarray  # int64 [n, W]
  end: np.ndarray  # int64 [n, W]
  run: np.ndarray  # int64 [n, W]
  count: np.ndarray  # int64 [n]: words in the row
  word_of: np.ndarray  # int64 [n, L]


def word_table(cand: np.ndarray, continuation: np.ndarray) -> WordTable:
  """Words of candidate positions: a word starts at a candidate that is not
  a continuation piece (``continuation``, bool [n, L], by the tokenizer
  family's rule: a ``##`` piece for WordPiece) or that follows a
  non-candidate, and takes the continuation pieces after it (as Model Garden's
  ``_tokens_to_grams``: a word never spans a ``[SEP]``)."""
  n, width = cand.shape
  prev = np.zeros_like(cand)
  prev[:, 1:] = cand[:, :-1]
  starts = cand & (~continuation | ~prev)
  word_of = np.cumsum(starts, axis=1) - 1
  word_of[~cand] = -1
  # A word ends where the next position does not continue it.
  continues = np.zeros_like(cand)
  continues[:, :-1] = cand[:, 1:] & continuation[:, 1:] & cand[:, :-1]
  # Row by row in order, one start and one end per word: the first
  # count[r] slots of row r.
  count = starts.sum(axis=1)
  words = max(int(count.max()) if n else 0, 1)
  slots = np.arange(words)[None, :] < count[:, None]
  begin = np.zeros((n, words), dtype=np.int64)
  end = np.zeros((n, words), dtype=np.int64)
  run = np.full((n, words), -1, dtype=np.int64)
  begin[slots] = np.flatnonzero(starts) % width
  end[slots] = np.flatnonzero(cand & ~continues) % width + 1
  # Adjacent words: no non-candidate between them.
  run[slots] = np.cumsum(cand & ~prev, axis=1)[starts]
  return WordTable(begin, end, run, count.astype(np.int64), word_of)


def _positions(table: WordTable, word_taken: np.ndarray,
               word_unit: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
  """Word-level choices as ``(chosen, unit)`` over positions: each
  candidate position looks up its word (``word_of``)."""
  word = np.maximum(table.word_of, 0)
  chosen = np.take_along_axis(word_taken, word, axis=1) & (table.word_of >= 0)
  unit = np.where(chosen, np.take_along_axis(word_unit, word, axis=1), -1)
  return chosen, unit.astype(np.int32)


def _nonzero(mask: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
  """``np.nonzero`` of a 2-D mask, in the same order, several times faster
  (numpy's 2-D nonzero is slow for its size)."""
  return np.divmod(np.flatnonzero(mask), mask.shape[1])


def _spans_of(rows: np.ndarray, first: np.ndarray, sizes: np.ndarray
              ) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
  """``(row, word, i)`` for every word of ``sizes[i]`` words from
  ``first[i]`` in row ``rows[i]``."""
  owner = np.repeat(np.arange(rows.size), sizes)
  offset = np.arange(owner.size) - np.repeat(np.cumsum(sizes) - sizes, sizes)
  return rows[owner], first[owner] + offset, owner


def _draw_starts(valid: np.ndarray, popped: np.ndarray, k: np.ndarray,
                 active: np.ndarray, has: np.ndarray, count: np.ndarray,
                 rng: np.random.Generator, rounds: int = 3) -> np.ndarray:
  """int64 [block, a]: for each draw ``has`` marks, the first word of an
  n-gram of ``k + 1`` words of row ``active[column]``, uniform among the
  starts ``valid`` for that size and not ``popped`` yet (then marked
  popped); 0 where ``has`` is False.

  This is the next n-gram of a random order of each size's n-grams, as
  Model Garden shuffles them, drawn lazily: a row takes a few of its
  n-grams, so shuffling them all (an argsort of every row) cost more than
  the rest of the choice. Each draw is uniform over the whole row's starts
  and drawn again when it is not valid or taken (by an earlier block, or
  by an earlier step of this one, which wins); after ``rounds`` tries the
  few draws left pick among their free starts directly. Equal draws are
  settled by step order, never by value, so the starts each size pops are
  a uniform sample without replacement, as the shuffle's prefix is.
  """
  steps, columns = _nonzero(has)  # step order first
  start = np.zeros(has.shape, dtype=np.int64)
  if not steps.size:
    return start
  _, n, words = valid.shape
  sizes, rows = k[steps, columns], active[columns]
  span = count[rows] - sizes  # starts that leave room for the n-gram
  pending = np.arange(steps.size)
  for _ in range(rounds):
    s, r = sizes[pending], rows[pending]
    i = np.minimum((rng.random(pending.size) * span[pending]).astype(np.int64),
                   span[pending] - 1)
    ok = np.flatnonzero(valid[s, r, i] & ~popped[s, r, i])
    # The first of equal draws (in step order) takes the start.
    _, first = np.unique((s[ok] * n + r[ok]) * words + i[ok],
                         return_index=True)
    won = ok[first]
    popped[s[won], r[won], i[won]] = True
    start[steps[pending[won]], columns[pending[won]]] = i[won]
    left = np.ones(pending.size, dtype=bool)
    left[won] = False
    pending = pending[left]
    if not pending.size:
      return start
  for j in pending.tolist():
    free = np.flatnonzero(valid[sizes[j], rows[j]] & ~popped[sizes[j], rows[j]])
    i = int(free[rng.integers(free.size)])
    popped[sizes[j], rows[j], i] = True
    start[steps[j], columns[j]] = i
  return start


def choose_ngrams(table: WordTable, n_pred: np.ndarray, max_ngram_size: int,
                  rng: np.random.Generator, block: int = 8
                  ) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
  """``(chosen, unit, words)``: positions chosen by n-gram masking, as TF
  Model Garden's ``create_pretraining_data.py --max_ngram_size=N`` chooses
  them; per position the index of its n-gram in the row (-1 elsewhere); and
  how many n-grams of 1..N words were taken (``words[k]``: k+1 words).

  The units are n-grams of 1..N adjacent whole words (none spans a
  ``[SEP]``), each size's in a random order. Until the row's budget
  ``n_pred`` (in pieces) is spent or no n-gram is left, Model Garden draws
  a size n with weight 1/n, drops the size for good if n words cannot fit
  any more (n words are at least n pieces) or draws again if its n-grams
  are used up, takes that size's next n-gram, and keeps it unless it would
  overflow the budget or overlaps one taken before. So does this, for
  every row at once: the draws and the n-gram each would take come
  ``block`` steps at a time, then the steps run in order.
  """
  n, words = table.begin.shape
  sizes = np.arange(max_ngram_size)  # index k: k + 1 words
  index = np.arange(words)
  # valid[k, r, i]: an n-gram of k + 1 words starts at word i.
  valid = np.zeros((max_ngram_size, n, words), dtype=bool)
  for k in sizes:
    if k >= words:
      break  # no row has k + 1 words
    ok = index + k < table.count[:, None]
    if k:
      ok[:, :words - k] &= (table.run[:, :words - k] == table.run[:, k:])
      ok[:, words - k:] = False
    valid[k] = ok
  popped = np.zeros_like(valid)
  available = valid.sum(axis=2)
  used = np.zeros((max_ngram_size, n), dtype=np.int64)
  budget = n_pred.astype(np.int64)
  taken = np.zeros(n, dtype=np.int64)
  word_taken = np.zeros((n, words), dtype=bool)
  word_unit = np.full((n, words), -1, dtype=np.int64)
  units = np.zeros(n, dtype=np.int64)
  counts = np.zeros(max_ngram_size, dtype=np.int64)
  cumulative = np.cumsum(1.0 / (sizes + 1.0))
  active = np.flatnonzero((budget > 0) & (table.count > 0))
  while active.size:
    a = active.size
    k = np.searchsorted(cumulative, rng.random((block, a)) * cumulative[-1],
                        side="right")
    # The pop of each draw: earlier draws of its size (in this block and
    # before); a draw of a dropped size pops nothing that matters.
    onehot = k[None, :, :] == sizes[:, None, None]  # [K, block, a]
    before = np.cumsum(onehot, axis=1) - onehot
    pop = (used[:, active][:, None, :] + before)
    pop = np.take_along_axis(pop, k[None], axis=0)[0]  # [block, a]
    used[:, active] += onehot.sum(axis=1)
    has = pop < available[k, active[None, :]]
    start = _draw_starts(valid, popped, k, active, has, table.count, rng)
    stop = np.minimum(start + k, words - 1)  # the n-gram's last word
    first_token = table.begin[active[None, :], start]
    end_token = table.end[active[None, :], stop]
    length = end_token - first_token
    # Words masked before this block, in the n-gram's range of words.
    masked = np.cumsum(word_taken[active], axis=1)  # [a, words]
    rows_index = np.arange(a)[None, :]
    before = np.where(start > 0,
                      masked[rows_index, np.maximum(start - 1, 0)], 0)
    free = masked[rows_index, stop] - before == 0
    # Two n-grams of the block that share a position cannot both be kept.
    clash = ((first_token[:, None, :] < end_token[None, :, :])
             & (first_token[None, :, :] < end_token[:, None, :]))
    room = budget[active] - taken[active]
    kept = np.zeros((block, a), dtype=bool)
    for t in range(block):
      ok = has[t] & free[t] & (length[t] <= room)
      if t:
        ok &= ~(kept[:t] & clash[:t, t]).any(axis=0)
      kept[t] = ok
      room = room - np.where(ok, length[t], 0)
    taken[active] = budget[active] - room
    step, column = _nonzero(kept)  # in step order
    order_in_row = np.argsort(column, kind="stable")
    step, column = step[order_in_row], column[order_in_row]
    rows = active[column]
    rank = np.arange(rows.size) - np.searchsorted(column, column)
    unit_of = units[rows] + rank
    units[active] += kept.sum(axis=0)
    size = k[step, column] + 1
    pair_rows, pair_words, owner = _spans_of(rows, start[step, column], size)
    word_taken[pair_rows, pair_words] = True
    word_unit[pair_rows, pair_words] = unit_of[owner]
    counts += np.bincount(size - 1, minlength=max_ngram_size)
    room = budget[active] - taken[active]
    still_open = ((used[:, active] < available[:, active])
                  & (sizes[:, None] + 1 <= room[None, :])).any(axis=0)
    active = active[(room > 0) & still_open]
  chosen, unit = _positions(table, word_taken, word_unit)
  return chosen, unit, counts


def span_length_probabilities(p: float, max_span_length: int) -> np.ndarray:
  """SpanBERT's span lengths (Joshi et al. 2020, section 3.1): a geometric
  distribution Geo(p) over 1..max_span_length words, renormalized (their
  code's ``len_distrib``); with p=0.2 and 10 words the mean is 3.8."""
  lengths = np.arange(1, max_span_length + 1)
  probs = p * (1 - p) ** (lengths - 1)
  return probs / probs.sum()


def choose_spans(table: WordTable, n_pred: np.ndarray, span_p: float,
                 max_span_length: int, rng: np.random.Generator
                 ) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
  """``(chosen, span, words)``: positions chosen by SpanBERT's span
  masking; per position the index of its span in the row (-1 elsewhere);
  and how many spans of 1..max_span_length words were taken.

  Until the row's budget ``n_pred`` (in pieces) is spent: draw a span
  length in whole words (``span_length_probabilities``) and an anchor, a
  random candidate position, whose word starts the span; the span takes
  that word and the adjacent words after it, as many as the length asks,
  while they fit in the budget and are not masked yet. An anchor already
  masked, or whose word alone would overflow the budget, is drawn again (at
  most 2 × the row's words times in a row). Every row runs this loop at
  once, one span per round.
  """
  n, words = table.begin.shape
  cumulative = np.cumsum(span_length_probabilities(span_p, max_span_length))
  cand_rows, cand_cols = _nonzero(table.word_of >= 0)
  per_row = np.bincount(cand_rows, minlength=n)
  first = np.concatenate([[0], np.cumsum(per_row)[:-1]])
  budget = n_pred.astype(np.int64)
  taken = np.zeros(n, dtype=np.int64)
  misses = np.zeros(n, dtype=np.int64)
  word_taken = np.zeros((n, words), dtype=bool)
  word_unit = np.full((n, words), -1, dtype=np.int64)
  spans = np.zeros(n, dtype=np.int64)
  counts = np.zeros(max_span_length, dtype=np.int64)
  active = np.flatnonzero((budget > 0) & (per_row > 0))
  while active.size:
    want = np.searchsorted(cumulative, rng.random(active.size) * cumulative[-1],
                           side="right") + 1
    want = np.minimum(want, max_span_length)
    pick = first[active] + (rng.random(active.size)
                            * per_row[active]).astype(np.int64)
    w = table.word_of[active, cand_cols[pick]]
    begin = table.begin[active, w]
    room = budget[active] - taken[active]
    ok = ~word_taken[active, w] & (table.end[active, w] - begin <= room)
    misses[active[~ok]] += 1
    rows, w, begin, room, want = (active[ok], w[ok], begin[ok], room[ok],
                                  want[ok])
    last = w.copy()
    growing = np.ones(rows.size, dtype=bool)
    for j in range(1, max_span_length):
      nxt = np.minimum(w + j, words - 1)
      growing &= ((j < want) & (w + j < table.count[rows])
                  & (table.run[rows, nxt] == table.run[rows, w])
                  & ~word_taken[rows, nxt]
                  & (table.end[rows, nxt] - begin <= room))
      last = np.where(growing, w + j, last)
    pair_rows, pair_words, _ = _spans_of(rows, w, last - w + 1)
    word_taken[pair_rows, pair_words] = True
    word_unit[pair_rows, pair_words] = spans[pair_rows]
    spans[rows] += 1
    taken[rows] += table.end[rows, last] - begin
    misses[rows] = 0
    np.add.at(counts, last - w, 1)
    active = active[(taken[active] < budget[active])
                    & (misses[active] < 2 * table.count[active])]
  chosen, unit = _positions(table, word_taken, word_unit)
  return chosen, unit, counts


def mask_batch(batch: InstanceBatch, params: MaskingParams, vocab_size: int,
               mask_id: int, is_continuation: np.ndarray,
               rng: np.random.Generator, special_ids: Sequence[int] = ()
               ) -> Tuple[MaskedBatch, Dict[str, int]]:
  """Masks every instance of ``batch`` with the strategy of ``params``;
  returns the features and counts. ``special_ids``: tokens never masked
  besides the layout's ``[CLS]`` and ``[SEP]`` s (the ``[SEP]`` between
  packed documents). With ``params.token_boundary`` the features hold
  ``token_boundary(batch, is_continuation)`` too; the batch's
  ``languages`` are carried over as they are."""
  boundary = (token_boundary(batch, is_continuation)
              if params.token_boundary else None)
  if params.masking == "none":
    return dataclasses.replace(no_masking(batch),
                               token_boundary=boundary), {}
  n, L = batch.tokens.shape
  P = params.max_predictions_per_seq
  whole_word = (params.do_whole_word_mask or params.max_ngram_size > 0
                or params.span_masking != "none")
  n_pred = num_to_predict(batch.lengths, params.masked_lm_prob, P)
  kernel = kernels.masking_kernel()
  if kernel is not None and not whole_word:
    return _mask_tokens_in_c(kernel, batch, n_pred, P, vocab_size, mask_id,
                             rng, special_ids, boundary)
  # With units (n-grams, spans): one 80/10/10 decision per unit.
  unit: Optional[np.ndarray] = None
  unit_words = np.zeros(0, dtype=np.int64)
  if params.span_masking == "geometric":
    chosen, unit, unit_words = choose_spans(
        word_table(candidates(batch, special_ids),
                   is_continuation[batch.tokens]),
        n_pred, params.span_p, params.max_span_length, rng)
    positions = ascending_positions(chosen, P)
  elif params.max_ngram_size > 1:
    chosen, unit, unit_words = choose_ngrams(
        word_table(candidates(batch, special_ids),
                   is_continuation[batch.tokens]),
        n_pred, params.max_ngram_size, rng)
    positions = ascending_positions(chosen, P)
  elif whole_word:
    cand, group = word_groups(batch, is_continuation, whole_word,
                              special_ids)
    positions = ascending_positions(
        choose_positions(cand, group, n_pred, rng), P)
  else:
    positions = choose_tokens(candidates(batch, special_ids), n_pred, P, rng)

  # The 80/10/10 draws, one per prediction slot (per unit with units).
  tokens = batch.tokens
  id_dtype = np.uint16 if vocab_size <= np.iinfo(np.uint16).max else np.int32
  real = positions < L
  at = np.where(real, positions, 0)
  u = rng.random((n, P), dtype=np.float32)
  keep_or_random = rng.random((n, P), dtype=np.float32)
  random_ids = rng.integers(0, vocab_size, size=(n, P), dtype=np.int32)
  if unit is not None:
    # The draws at the unit's index stand for all of its positions.
    index = np.maximum(np.take_along_axis(unit, at, axis=1), 0)
    u = np.take_along_axis(u, index, axis=1)
    keep_or_random = np.take_along_axis(keep_or_random, index, axis=1)
  to_mask = real & (u < 0.8)
  to_keep = real & ~to_mask & (keep_or_random < 0.5)
  to_random = real & ~to_mask & ~to_keep
  original = np.take_along_axis(tokens, at, axis=1)
  input_ids = tokens.astype(id_dtype)
  rows, slots = _nonzero(real)
  input_ids[rows, positions[rows, slots]] = np.where(
      to_mask, mask_id, np.where(to_random, random_ids, original))[real]

  masked = MaskedBatch(
      key=batch.key,
      input_ids=input_ids,
      lengths=batch.lengths.astype(np.int32),
      a_lengths=batch.a_lengths.astype(np.int32),
      masked_lm_positions=at.astype(np.uint16),
      masked_lm_ids=np.where(real, original, 0).astype(id_dtype),
      num_predictions=np.count_nonzero(real, axis=1).astype(np.int32),
      next_sentence_labels=batch.labels.astype(np.uint8),
      separators=batch.separators, segment_b=batch.segment_b,
      token_boundary=boundary, languages=batch.languages)
  counts = {
      "masked_tokens": int(np.count_nonzero(real)),
      "masked_as_mask_token": int(np.count_nonzero(to_mask)),
      "masked_kept_original": int(np.count_nonzero(to_keep)),
      "masked_replaced_random": int(np.count_nonzero(to_random)),
  }
  if unit is not None:
    kind = "spans" if params.span_masking == "geometric" else "ngrams"
    counts["masked_" + kind] = int(unit_words.sum())
    for k, n_units in enumerate(unit_words.tolist()):
      counts["masked_%s_of_%d_words" % (kind, k + 1)] = n_units
  return masked, counts


def no_masking(batch: InstanceBatch) -> MaskedBatch:
  """The instances as they are, with no predictions (``--masking=none``)."""
  n, L = batch.tokens.shape
  id_dtype = np.int32
  empty = np.zeros((n, 0), dtype=np.uint16)
  return MaskedBatch(
      key=batch.key, input_ids=batch.tokens.astype(id_dtype, copy=False),
      lengths=batch.lengths.astype(np.int32),
      a_lengths=batch.a_lengths.astype(np.int32),
      masked_lm_positions=empty, masked_lm_ids=empty.astype(id_dtype),
      num_predictions=np.zeros(n, dtype=np.int32),
      next_sentence_labels=batch.labels.astype(np.uint8),
      separators=batch.separators, segment_b=batch.segment_b,
      languages=batch.languages)


def _mask_tokens_in_c(kernel, batch: InstanceBatch, n_pred: np.ndarray,
                      P: int, vocab_size: int, mask_id: int,
                      rng: np.random.Generator, special_ids: Sequence[int],
                      boundary: Optional[np.ndarray]
                      ) -> Tuple[MaskedBatch, Dict[str, int]]:
  """``mask_batch`` without whole words, its choice and replacement done by
  the C kernel (transforms/_masking_kernel.c, transforms/kernels.py) from
  the same draws of ``rng``, in the same order, as ``choose_tokens`` and
  ``mask_batch`` make them: the same features and counts."""
  n, L = batch.tokens.shape
  if n and int(n_pred.max()) > P:
    raise ValueError("n_pred above max_predictions")
  keys = rng.bit_generator.random_raw(n * L)
  u = rng.random((n, P), dtype=np.float32)
  keep_or_random = rng.random((n, P), dtype=np.float32)
  random_ids = rng.integers(0, vocab_size, size=(n, P), dtype=np.int32)
  id_dtype = np.uint16 if vocab_size <= np.iinfo(np.uint16).max else np.int32
  input_ids = np.ascontiguousarray(batch.tokens, dtype=id_dtype)
  if input_ids is batch.tokens:
    input_ids = input_ids.copy()  # the kernel writes into it
  positions = np.empty((n, P), dtype=np.uint16)
  masked_ids = np.empty((n, P), dtype=id_dtype)
  num_predictions = np.empty(n, dtype=np.int32)
  lengths = np.ascontiguousarray(batch.lengths, dtype=np.int32)
  a_lengths = np.ascontiguousarray(batch.a_lengths, dtype=np.int32)
  masked, as_mask, kept, replaced = kernel.mask_tokens(
      np.ascontiguousarray(batch.tokens, dtype=np.int32), lengths, a_lengths,
      batch.separators, np.asarray(special_ids, dtype=np.int32), keys,
      np.ascontiguousarray(n_pred, dtype=np.int64), u, keep_or_random,
      random_ids, mask_id, input_ids, positions, masked_ids, num_predictions)
  return MaskedBatch(
      key=batch.key, input_ids=input_ids, lengths=lengths,
      a_lengths=a_lengths, masked_lm_positions=positions,
      masked_lm_ids=masked_ids, num_predictions=num_predictions,
      next_sentence_labels=batch.labels.astype(np.uint8),
      separators=batch.separators, segment_b=batch.segment_b,
      token_boundary=boundary, languages=batch.languages), {
          "masked_tokens": masked, "masked_as_mask_token": as_mask,
          "masked_kept_original": kept, "masked_replaced_random": replaced}


def batch_rng(seed: int, key) -> np.random.Generator:
  return np.random.default_rng(keys.stable_hash("mask", seed, *key))


class _MaskDoFn(beam.DoFn):

  def __init__(self, params: MaskingParams, *, vocab_size: int, mask_id: int,
               is_continuation: np.ndarray, special_ids: Sequence[int] = ()):
    self._params = params
    self._vocab_size = vocab_size
    self._mask_id = mask_id
    self._is_continuation = is_continuation
    self._special_ids = tuple(special_ids)

  def process(self, batch: InstanceBatch):
    if isinstance(batch, GroupMark):
      yield batch  # for the shard writer
      return
    masked, counts = mask_batch(
        batch, self._params, self._vocab_size, self._mask_id,
        self._is_continuation, batch_rng(self._params.random_seed, batch.key),
        self._special_ids)
    for name, n in counts.items():
      metrics.count(name, n)
    yield masked


class MaskTokens(beam.PTransform):
  """Output: ``MaskedBatch`` per ``InstanceBatch``; an
  ``shards.GroupMark`` passes through in its place."""

  def __init__(self, params: MaskingParams, *, vocab_size: int, mask_id: int,
               is_continuation: np.ndarray, special_ids: Sequence[int] = ()):
    super().__init__()
    self._params = params
    self._vocab = dict(vocab_size=vocab_size, mask_id=mask_id,
                       is_continuation=is_continuation,
                       special_ids=special_ids)

  def expand(self, batches):
    return batches | "Mask" >> beam.ParDo(_MaskDoFn(self._params,
                                                    **self._vocab))
