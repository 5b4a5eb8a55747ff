"""CreateInstances: tokenized documents → batches of unmasked instances.

How a pool's document passes become sequences is one plain function per mode
(``ROW_BUILDERS``): with ``packing="pairs"``, segment pairs A/B for the
sentence task, BERT's next-sentence prediction
(``create_instances_from_document``), ALBERT's sentence-order prediction
(``create_sop_instances_from_document``) or none
(``create_segment_pairs_from_document``); with ``packing="doc_sentences"``
or ``"full_sentences"``, RoBERTa's packing of whole sentences into one
segment (``pack_doc_sentences``, ``pack_full_sentences``).

The pairs follow google-research/bert's ``create_instances_from_document``
(see docs/how-it-works.md), with three changes that make it
distributable and reproducible:

* Each dupe pass of each document is an *entry*, sent to a random pool
  (``pool_of``: a keyed hash of seed, document id and pass). Pools hold about
  ``random_next_pool_size`` entries drawn from the whole corpus; a worker
  holds one pool at a time, never the corpus.
* The random-next segment B comes from a random entry of the same pool that
  is another document.
* Randomness is keyed: a pool's entries are sorted, then drawn from one
  ``random.Random`` seeded from a stable hash of (seed, pool), and the pool's
  instances are shuffled by a generator keyed the same way. Which entries
  make up a pool depends only on the seed and the documents, so nothing
  depends on workers, bundles, runners or file order, and the pools double
  as the output's shuffle.

Output elements are ``InstanceBatch`` es, a few hundred instances each as
numpy arrays, to keep Beam's per-element cost off the per-instance path.
"""

import bisect
import dataclasses
import functools
import itertools
import random
import zlib
from typing import Callable, Dict, Iterator, List, Optional, Sequence, Tuple

import apache_beam as beam
import numpy as np

from transforms import kernels
from transforms import keys
from transforms import languages
from transforms import metrics
from transforms import pool_files
from transforms.pools import num_pools, pool_of
from transforms.tokenization import TokenizedDocument

DEFAULT_POOL_SIZE = 1000
# The counter of instances with sentence label 1, per sentence task.
LABEL_COUNTERS = {"nsp": "random_next_instances", "sop": "swapped_instances"}
BATCH_SIZE = 512


SENTENCE_TASKS = ("nsp", "sop", "none")
PACKINGS = ("pairs", "full_sentences", "doc_sentences")


@dataclasses.dataclass(frozen=True, kw_only=True)
class InstanceParams:
  """How documents become instances (the flags of the same names, and
  ``pair_separators``: the separators between A and B, 1 in BERT's layout,
  2 in RoBERTa's, see ``SequenceLayout``)."""
  max_seq_length: int = 128
  short_seq_prob: float = 0.1
  dupe_factor: int = 10
  random_seed: int = 12345
  sentence_task: str = "nsp"  # one of SENTENCE_TASKS
  packing: str = "pairs"  # one of PACKINGS
  pair_separators: int = 1
  # Multilingual corpora: each document's language and passes
  # (transforms/languages.py); None: one language, dupe_factor passes.
  language_plan: Optional[languages.LanguagePlan] = None

  def passes_of(self, doc_id: str) -> int:
    """How many times a document is passed over."""
    if self.language_plan is None:
      return self.dupe_factor
    return self.language_plan.passes_of(doc_id)

  @property
  def max_num_tokens(self) -> int:
    """Tokens A and B may hold together: [CLS] A [SEP] B [SEP] (or
    <s> A </s></s> B </s>) in max_seq_length."""
    return self.max_seq_length - 2 - self.pair_separators


@dataclasses.dataclass(frozen=True, kw_only=True)
class SequenceLayout:
  """Where an instance's tokens go in its row of ``max_seq_length``:
  ``[CLS] A [SEP] B [SEP]`` with segment ids 0, then 1 for B and its
  ``[SEP]`` (BERT, ALBERT: google-research/bert), or, with
  ``pair_separators=2`` and ``segment_b=0``, ``<s> A </s></s> B </s>`` with
  segment ids all 0 (RoBERTa, XLM-R: fairseq, and Hugging Face's
  ``RobertaProcessing``). One segment is ``[CLS] A [SEP]`` in both. The
  rest of the row is ``pad_id`` (0 in BERT's layout, as BERT pads)."""
  cls_id: int
  sep_id: int
  pad_id: int = 0
  pair_separators: int = 1
  segment_b: int = 1


def sequence_layout(vocab) -> SequenceLayout:
  """The layout of ``vocab``'s family (a ``tokenization.Vocabulary``):
  RoBERTa's where its cls token is ``<s>`` (byte-level BPE, XLM-R's
  SentencePiece), padded with its pad id; BERT's otherwise (WordPiece,
  ALBERT's SentencePiece), padded with 0."""
  if vocab.tokens[vocab.cls_id] == "<s>":
    return SequenceLayout(cls_id=vocab.cls_id, sep_id=vocab.sep_id,
                          pad_id=vocab.pad_id, pair_separators=2,
                          segment_b=0)
  return SequenceLayout(cls_id=vocab.cls_id, sep_id=vocab.sep_id,
                        pad_id=vocab.pad_id)


@dataclasses.dataclass
class InstanceBatch:
  """Instances as rows: ``tokens[i, :lengths[i]]`` is
  ``[CLS] A [SEP] B [SEP]`` with ``a_lengths[i]`` tokens in A and
  ``separators`` [SEP]s between A and B (``SequenceLayout``), or
  ``[CLS] A [SEP]`` for a single segment (``lengths == a_lengths + 2``);
  the rest of the row is padding. A packed segment may hold ``[SEP]``
  between documents."""
  key: Tuple[int, int]  # (pool, batch index within the pool)
  tokens: np.ndarray  # int32 [n, max_seq_length]
  lengths: np.ndarray  # int32 [n]
  a_lengths: np.ndarray  # int32 [n]
  # uint8 [n]: the sentence label. NSP: 1 = B is a random next segment;
  # SOP: 1 = A and B swapped (or, as in ALBERT, B random for a one-sentence
  # chunk); 0 without a sentence task.
  labels: np.ndarray
  separators: int = 1  # SequenceLayout.pair_separators
  segment_b: int = 1  # SequenceLayout.segment_b
  # uint16 [n]: each row's language, its index in the sorted language list
  # (LanguagePlan.languages), for a corpus with language tags; None
  # without. A row is in one language (instances_for_pool).
  languages: Optional[np.ndarray] = None

  def __len__(self):
    return int(self.lengths.size)

  def segment_ids(self) -> np.ndarray:
    return segment_ids(self.lengths, self.a_lengths, self.tokens.shape[1],
                       self.separators, self.segment_b)


def segment_ids(lengths: np.ndarray, a_lengths: np.ndarray, width: int,
                separators: int = 1, segment_b: int = 1) -> np.ndarray:
  """uint8 [n, width]: 0 through the [SEP]s after A, ``segment_b`` for B and
  its [SEP], 0 in the padding."""
  cols = np.arange(width)[None, :]
  in_b = ((cols > (a_lengths + separators)[:, None])
          & (cols < lengths[:, None]))
  if segment_b == 1:
    return in_b.view(np.uint8)
  return (in_b * segment_b).astype(np.uint8)


def truncation_lengths(len_a: int, len_b: int, max_num_tokens: int
                       ) -> Tuple[int, int]:
  """How many tokens BERT's ``truncate_seq_pair`` removes from A and from B.

  It removes one token at a time from the longer side (B on a tie) until the
  pair fits; this is that loop in closed form.
  """
  excess = len_a + len_b - max_num_tokens
  if excess <= 0:
    return 0, 0
  gap = abs(len_a - len_b)
  if gap >= excess:
    return (excess, 0) if len_a > len_b else (0, excess)
  rest = excess - gap  # equal lengths from here on: B, A, B, A, ...
  cut_a, cut_b = rest // 2, rest - rest // 2
  if len_a > len_b:
    cut_a += gap
  else:
    cut_b += gap
  return cut_a, cut_b


def truncate_seq_pair(a: np.ndarray, b: np.ndarray, max_num_tokens: int,
                      rng: random.Random) -> Tuple[np.ndarray, np.ndarray, int]:
  """Truncates the pair to ``max_num_tokens``; each removed token comes off
  the front or the back of its side with probability 1/2. Returns the new
  pair and the number of tokens removed."""
  if len(a) + len(b) <= max_num_tokens:
    return a, b, 0
  cut_a, cut_b = truncation_lengths(len(a), len(b), max_num_tokens)
  if cut_a:
    front = _coin_flips(rng, cut_a)
    a = a[front:len(a) - (cut_a - front)]
  if cut_b:
    front = _coin_flips(rng, cut_b)
    b = b[front:len(b) - (cut_b - front)]
  return a, b, cut_a + cut_b


def _coin_flips(rng: random.Random, n: int) -> int:
  """Heads among ``n`` fair coin flips: Binomial(n, 1/2), in O(n/64)."""
  return bin(rng.getrandbits(n)).count("1")


def _randint(rng: random.Random, low: int, high: int) -> int:
  """A uniform int in [low, high]: ``random.randint``'s distribution (up to
  a bias below 2**-40 for the small ranges here) at a quarter of its cost,
  which counted with several draws per instance."""
  return low + int(rng.random() * (high - low + 1))


def target_length(rng: random.Random, params: InstanceParams) -> int:
  """Tokens to aim for in a document pass: usually the maximum, sometimes a
  random short length so that the model sees short sequences too."""
  if rng.random() < params.short_seq_prob:
    return _randint(rng, 2, params.max_num_tokens)
  return params.max_num_tokens


# A pool document: its token ids back to back, and the offsets where its
# sentences start, plus the end (sentence i is ids[offsets[i]:offsets[i+1]]).
PoolDocument = Tuple[np.ndarray, List[int]]


def pool_document(doc: TokenizedDocument) -> PoolDocument:
  return doc.ids, list(itertools.accumulate(doc.sentence_lengths.tolist(),
                                            initial=0))


@dataclasses.dataclass(slots=True)
class _Chunk:
  """BERT's chunk of a document pass: sentences ``first..last``, segment A
  its first ``a_end`` sentences, grown towards ``target`` tokens."""
  first: int
  last: int
  a_end: int
  target: int

  def put_back_b(self) -> None:
    """B came from elsewhere: the chunk's sentences after A go back, so the
    next chunk starts with them."""
    self.last = self.first + self.a_end - 1


def _chunks(offsets: List[int], rng: random.Random,
            params: InstanceParams) -> Iterator[_Chunk]:
  """The chunks of one document pass, as every pair builder walks them:
  the pass draws a target length, then each chunk grows a sentence at a
  time until it holds ``target`` tokens or the document ends (a binary
  search over the sentence offsets), and A's end is drawn when the chunk
  has two sentences or more. The next chunk starts after ``chunk.last``,
  which the caller may lower (``put_back_b``)."""
  num_sentences = len(offsets) - 1
  target = target_length(rng, params)
  first = 0
  while first < num_sentences:
    last = _chunk_end(offsets, first, target)
    chunk_sentences = last - first + 1
    a_end = (_randint(rng, 1, chunk_sentences - 1) if chunk_sentences >= 2
             else 1)
    chunk = _Chunk(first, last, a_end, target)
    yield chunk
    first = chunk.last + 1


def create_instances_from_document(
    doc_index: int, pool: Sequence[PoolDocument], rng: random.Random,
    params: InstanceParams, counts: Dict[str, int],
    doc_ids: Optional[Sequence[str]] = None
) -> Iterator[Tuple[np.ndarray, np.ndarray, bool]]:
  """Yields ``(tokens_a, tokens_b, is_random_next)`` for one document pass.

  ``pool`` holds every entry of the pool; ``pool[doc_index]`` is the one
  at hand; ``doc_ids`` names their documents (default: all distinct).
  Segments are runs of whole sentences, so A and B are slices (views) of a
  document's ids: nothing is copied here.
  """
  if doc_ids is None:
    doc_ids = range(len(pool))
  ids, offsets = pool[doc_index]
  for chunk in _chunks(offsets, rng, params):
    first, a_end = chunk.first, chunk.a_end
    tokens_a = ids[offsets[first]:offsets[first + a_end]]
    if chunk.last == first or rng.random() < 0.5:
      is_random_next = True
      tokens_b = _random_segment(doc_index, pool, doc_ids,
                                 chunk.target - len(tokens_a), rng, counts)
      chunk.put_back_b()
    else:
      is_random_next = False
      tokens_b = ids[offsets[first + a_end]:offsets[chunk.last + 1]]
    tokens_a, tokens_b, removed = truncate_seq_pair(
        tokens_a, tokens_b, params.max_num_tokens, rng)
    _count_truncation(counts, removed)
    yield tokens_a, tokens_b, is_random_next


def _random_segment(doc_index: int, pool: Sequence[PoolDocument],
                    doc_ids: Sequence[str], target_b: int, rng: random.Random,
                    counts: Dict[str, int]) -> np.ndarray:
  """BERT's random B: whole sentences of another document of the pool, from
  a random one on, until ``target_b`` tokens or that document's end."""
  other = _random_other_document(doc_index, doc_ids, rng, counts)
  other_ids, other_offsets = pool[other]
  start = _randint(rng, 0, len(other_offsets) - 2)
  end = bisect.bisect_left(other_offsets, other_offsets[start] + target_b,
                           start + 1, len(other_offsets) - 1)
  return other_ids[other_offsets[start]:other_offsets[end]]


def _chunk_end(offsets: List[int], first: int, target: int) -> int:
  """The last sentence of the chunk that starts at sentence ``first``: the
  first one that brings it to ``target`` tokens, or the document's last."""
  return bisect.bisect_left(offsets, offsets[first] + target, first + 1,
                            len(offsets) - 1) - 1


def create_sop_instances_from_document(
    doc_index: int, pool: Sequence[PoolDocument], rng: random.Random,
    params: InstanceParams, counts: Dict[str, int],
    doc_ids: Optional[Sequence[str]] = None
) -> Iterator[Tuple[np.ndarray, np.ndarray, bool]]:
  """ALBERT's sentence-order prediction (google-research/albert
  ``create_pretraining_data.py`` with ``random_next_sentence=False``):
  yields ``(tokens_a, tokens_b, label)``.

  Chunks and A are BERT's (``create_instances_from_document``). B is the
  rest of the chunk, the actual continuation of A; with probability 1/2
  the two are swapped and the label is 1. A chunk of one sentence has no
  continuation: ALBERT then takes B from another document, as BERT's random
  next, and labels it 1 too (counted as ``sop_random_next``); its unused
  segments go back as in BERT.
  """
  if doc_ids is None:
    doc_ids = range(len(pool))
  ids, offsets = pool[doc_index]
  for chunk in _chunks(offsets, rng, params):
    first, a_end = chunk.first, chunk.a_end
    tokens_a = ids[offsets[first]:offsets[first + a_end]]
    if chunk.last == first:
      label = True
      counts["sop_random_next"] += 1
      tokens_b = _random_segment(doc_index, pool, doc_ids,
                                 chunk.target - len(tokens_a), rng, counts)
      chunk.put_back_b()
    else:
      tokens_b = ids[offsets[first + a_end]:offsets[chunk.last + 1]]
      label = rng.random() < 0.5
      if label:
        tokens_a, tokens_b = tokens_b, tokens_a
    tokens_a, tokens_b, removed = truncate_seq_pair(
        tokens_a, tokens_b, params.max_num_tokens, rng)
    _count_truncation(counts, removed)
    yield tokens_a, tokens_b, label


def create_segment_pairs_from_document(
    doc_index: int, pool: Sequence[PoolDocument], rng: random.Random,
    params: InstanceParams, counts: Dict[str, int],
    doc_ids: Optional[Sequence[str]] = None
) -> Iterator[Tuple[np.ndarray, Optional[np.ndarray], bool]]:
  """Segment pairs with no sentence task: BERT's chunks and A, B always the
  rest of the chunk (its actual continuation), no label. A one-sentence
  chunk is a single segment, ``[CLS] A [SEP]`` (B is None), with room for
  one more token. Yields ``(tokens_a, tokens_b, False)``."""
  del doc_ids  # no other document is ever needed
  ids, offsets = pool[doc_index]
  for chunk in _chunks(offsets, rng, params):
    first, last, a_end = chunk.first, chunk.last, chunk.a_end
    if last > first:
      tokens_a, tokens_b, removed = truncate_seq_pair(
          ids[offsets[first]:offsets[first + a_end]],
          ids[offsets[first + a_end]:offsets[last + 1]],
          params.max_num_tokens, rng)
    else:
      tokens_a, _, removed = truncate_seq_pair(
          ids[offsets[first]:offsets[last + 1]], ids[:0],
          params.max_seq_length - 2, rng)
      tokens_b = None
    _count_truncation(counts, removed)
    yield tokens_a, tokens_b, False


def _count_truncation(counts: Dict[str, int], removed: int) -> None:
  if removed:
    counts["truncated_instances"] += 1
    counts["truncated_tokens"] += removed


def _sentences(doc: PoolDocument, max_tokens: int,
               counts: Dict[str, int]) -> Iterator[np.ndarray]:
  """The document's sentences; one longer than ``max_tokens`` comes as
  pieces of ``max_tokens`` and a rest (``long_sentences_split``), never
  dropped."""
  ids, offsets = doc
  for i in range(len(offsets) - 1):
    sentence = ids[offsets[i]:offsets[i + 1]]
    if sentence.size <= max_tokens:
      yield sentence
      continue
    counts["long_sentences_split"] += 1
    for start in range(0, sentence.size, max_tokens):
      yield sentence[start:start + max_tokens]


def pack_doc_sentences(
    doc_index: int, pool: Sequence[PoolDocument], rng: random.Random,
    params: InstanceParams, counts: Dict[str, int],
    doc_ids: Optional[Sequence[str]] = None
) -> Iterator[Tuple[np.ndarray, None, bool]]:
  """RoBERTa's DOC-SENTENCES (Liu et al. 2019, section 4.2): contiguous
  whole sentences of one document, as many as fit in ``max_seq_length - 2``
  tokens (``[CLS] … [SEP]``, one segment). A sequence never crosses the
  document's end, so the last one of a document may be short
  (``document_end_sequences``). Deterministic: no randomness is drawn.
  Yields ``(tokens, None, False)``."""
  del rng, doc_ids
  max_tokens = params.max_seq_length - 2
  current: List[np.ndarray] = []
  size = 0
  for sentence in _sentences(pool[doc_index], max_tokens, counts):
    if size + sentence.size > max_tokens:
      yield np.concatenate(current), None, False
      current, size = [], 0
    current.append(sentence)
    size += sentence.size
  if current:
    if size < max_tokens:
      counts["document_end_sequences"] += 1
    yield np.concatenate(current), None, False


def pack_full_sentences(pool: Sequence[PoolDocument], params: InstanceParams,
                        sep_id: int, counts: Dict[str, int]
                        ) -> Iterator[Tuple[np.ndarray, None, bool]]:
  """RoBERTa's FULL-SENTENCES (Liu et al. 2019, section 4.2): contiguous
  whole sentences, as many as fit in ``max_seq_length - 2`` tokens
  (``[CLS] … [SEP]``, one segment), crossing from one document into the
  next with an extra ``[SEP]`` between them (``document_separators``). The
  documents follow one another in the pool's order (a random sample of the
  corpus, sorted), so only the pool's last sequence may be short.
  Deterministic: no randomness is drawn. Yields ``(tokens, None, False)``."""
  max_tokens = params.max_seq_length - 2
  separator = np.array([sep_id], dtype=pool[0][0].dtype if pool else np.int32)
  current: List[np.ndarray] = []
  size = 0
  for index, doc in enumerate(pool):
    if index and current:
      if size + 1 >= max_tokens:
        yield np.concatenate(current), None, False
        current, size = [], 0
      else:
        current.append(separator)
        size += 1
        counts["document_separators"] += 1
    for sentence in _sentences(doc, max_tokens, counts):
      if size + sentence.size > max_tokens:
        if current and current[-1] is separator:
          current.pop()  # a sequence does not end on the documents' [SEP]
          size -= 1
          counts["document_separators"] -= 1
        yield np.concatenate(current), None, False
        current, size = [], 0
      current.append(sentence)
      size += sentence.size
  if current:
    yield np.concatenate(current), None, False


# A row: (tokens A, tokens B or None for one segment, sentence label).
Row = Tuple[np.ndarray, Optional[np.ndarray], bool]
# What every row builder takes: the pool's documents, their ids, the pool's
# generator, the settings, the [SEP] id and the counters to add to.
RowBuilder = Callable[[Sequence[PoolDocument], Sequence[str], random.Random,
                       InstanceParams, int, Dict[str, int]], Iterator[Row]]


def _each_document(builder) -> RowBuilder:
  """A builder of one document pass's rows, run over the pool in order."""

  def build(pool, doc_ids, rng, params, sep_id, counts):
    del sep_id  # a pair's [SEP]s are laid out by _to_batch
    for index in range(len(pool)):
      yield from builder(index, pool, rng, params, counts, doc_ids)

  return build


def _whole_pool(packer) -> RowBuilder:
  """A packer of the whole pool; it draws no randomness."""

  def build(pool, doc_ids, rng, params, sep_id, counts):
    del doc_ids, rng
    return packer(pool, params, sep_id, counts)

  return build


# How a pool's entries become rows, per (packing, sentence task).
ROW_BUILDERS: Dict[Tuple[str, str], RowBuilder] = {
    ("pairs", "nsp"): _each_document(create_instances_from_document),
    ("pairs", "sop"): _each_document(create_sop_instances_from_document),
    ("pairs", "none"): _each_document(create_segment_pairs_from_document),
    ("doc_sentences", "none"): _each_document(pack_doc_sentences),
    ("full_sentences", "none"): _whole_pool(pack_full_sentences),
}


def _random_other_document(doc_index: int, doc_ids: Sequence[str],
                           rng: random.Random, counts: Dict[str, int]) -> int:
  """Another entry of the pool that is not the same document (an entry is a
  document in one dupe pass, so a document can be in a pool twice). Like
  BERT, ten tries, then the document itself."""
  size = len(doc_ids)
  if size >= 2:
    for _ in range(10):
      other = _randint(rng, 0, size - 2)
      other = other + 1 if other >= doc_index else other
      if doc_ids[other] != doc_ids[doc_index]:
        return other
  counts["random_next_from_same_document"] += 1
  return doc_index


def instances_for_pool(pool_id: int,
                       entries: Sequence[Tuple[int, TokenizedDocument]],
                       params: InstanceParams, layout: SequenceLayout,
                       batch_size: int = BATCH_SIZE
                       ) -> Iterator[Tuple[InstanceBatch, Dict[str, int]]]:
  """All instances of one pool, in random order, in batches.

  An entry is ``(dupe pass, document)``. Entries are sorted first (a
  GroupByKey hands them over in no fixed order), then turned into instances
  in that order with one generator keyed by (seed, pool); the pool's
  instances are then shuffled by another keyed the same way, which is the
  output's shuffle. With a ``params.language_plan`` each language's entries
  make their rows apart, and the batches carry each row's language id
  (``InstanceBatch.languages``).
  """
  entries = sorted_entries(entries)
  kernel = kernels.pairs_kernel()
  if (kernel is not None and params.language_plan is None
      and params.packing == "pairs" and params.sentence_task in _C_PAIRS
      and all(doc.sentence_lengths.size for _, doc in entries)):
    yield from _pairs_in_c(kernel, pool_id, entries, params, layout,
                           batch_size)
    return
  rows: List[Row] = []
  row_languages: List[int] = []  # with a plan: each row's language id
  counts = _zero_counts()
  build = ROW_BUILDERS[(params.packing, params.sentence_task)]
  if params.language_plan is None:
    streams = [("", entries)]
  else:
    # Each language's entries apart: no instance mixes two languages, and
    # random next segments come from the same language.
    streams = languages.split_by_language(entries, params.language_plan)
    language_ids = params.language_plan.language_ids()
  for language, stream in streams:
    pool = [pool_document(doc) for _, doc in stream]
    doc_ids = [doc.doc_id for _, doc in stream]
    rng = random.Random(keys.stable_hash("instances", params.random_seed,
                                         pool_id, *([language] if language
                                                    else [])))
    made = build(pool, doc_ids, rng, params, layout.sep_id, counts)
    if language:
      made = list(made)
      counts[languages.TOKENS_PREFIX + language] = sum(
          a.size + (0 if b is None else b.size) for a, b, _ in made)
      if language_ids:
        row_languages.extend([language_ids[language]] * len(made))
    rows.extend(made)
  order = np.random.default_rng(keys.stable_hash(
      "pool-order", params.random_seed, pool_id)).permutation(len(rows))
  rows = [rows[i] for i in order.tolist()]
  # Ids only where the plan knows the languages before the job (not for
  # --language_field without sampling).
  ids = (None if params.language_plan is None
         or not params.language_plan.languages
         else np.array(row_languages, dtype=np.uint16)[order])
  L = params.max_seq_length
  starts = list(range(0, len(rows), batch_size)) or [0]
  for batch_index, start in enumerate(starts):
    last = batch_index == len(starts) - 1
    yield (_to_batch((pool_id, batch_index), rows[start:start + batch_size], L,
                     layout, None if ids is None
                     else ids[start:start + batch_size]),
           counts if last else _zero_counts())


# The segment-pair builders the C kernel does too, by sentence task: its
# mode (transforms/_pairs_kernel.c).
_C_PAIRS = {"nsp": 0, "sop": 1, "none": 2}


def _pairs_in_c(kernel, pool_id: int,
                entries: Sequence[Tuple[int, TokenizedDocument]],
                params: InstanceParams, layout: SequenceLayout,
                batch_size: int
                ) -> Iterator[Tuple[InstanceBatch, Dict[str, int]]]:
  """``instances_for_pool`` for segment pairs of one language (BERT's NSP,
  ALBERT's SOP or no sentence task), the pairs made and laid out by the C
  kernel (transforms/_pairs_kernel.c, transforms/kernels.py) from the same
  generator's state: the same batches and counts as
  ``create_instances_from_document``, ``create_sop_instances_from_document``
  or ``create_segment_pairs_from_document``, and ``_to_batch``. ``entries``
  are sorted, each with a sentence."""
  docs = [doc for _, doc in entries]
  rng = random.Random(keys.stable_hash("instances", params.random_seed,
                                       pool_id))
  codes: Dict[str, int] = {}
  rows_bytes, truncated, truncated_tokens, same_document, sop_random = (
      kernel.pair_rows(
          rng.getstate()[1],
          np.concatenate([doc.sentence_lengths for doc in docs]
                         or [np.zeros(0)]).astype(np.int64),
          np.array([doc.sentence_lengths.size for doc in docs],
                   dtype=np.int64),
          np.array([codes.setdefault(doc.doc_id, len(codes))
                    for doc in docs], dtype=np.int64),
          params.max_num_tokens, params.short_seq_prob,
          _C_PAIRS[params.sentence_task], params.max_seq_length - 2))
  counts = _zero_counts()
  counts["truncated_instances"] = truncated
  counts["truncated_tokens"] = truncated_tokens
  counts["random_next_from_same_document"] = same_document
  counts["sop_random_next"] = sop_random
  rows = np.frombuffer(rows_bytes, dtype=np.int64).reshape(-1, 5)
  order = np.random.default_rng(keys.stable_hash(
      "pool-order", params.random_seed, pool_id)).permutation(len(rows))
  rows = rows[order]
  flat = np.concatenate([doc.ids for doc in docs] or [np.zeros(0)]).astype(
      np.int32)
  L, k = params.max_seq_length, layout.pair_separators
  starts = list(range(0, len(rows), batch_size)) or [0]
  for batch_index, start in enumerate(starts):
    part = np.ascontiguousarray(rows[start:start + batch_size])
    n = len(part)
    tokens = np.empty((n, L), dtype=np.int32)
    lengths = np.empty(n, dtype=np.int32)
    a_lengths = np.empty(n, dtype=np.int32)
    labels = np.empty(n, dtype=np.uint8)
    kernel.fill_batch(flat, part, layout.cls_id, layout.sep_id, layout.pad_id,
                      k, tokens, lengths, a_lengths, labels)
    yield (InstanceBatch((pool_id, batch_index), tokens, lengths, a_lengths,
                         labels, separators=k, segment_b=layout.segment_b),
           counts if batch_index == len(starts) - 1 else _zero_counts())


def _entry_key(entry: Tuple[int, TokenizedDocument]) -> Tuple[str, int, int]:
  return entry[1].doc_id, entry[0], entry[1].ids.size


def sorted_entries(entries: Sequence[Tuple[int, TokenizedDocument]]
                    ) -> List[Tuple[int, TokenizedDocument]]:
  """``entries`` by document id, dupe pass and token count. Ids only
  collide for same-named files in different folders: then the content
  decides, through a checksum (that copies nothing) of those entries
  alone."""
  ordered = []
  for _, same in itertools.groupby(sorted(entries, key=_entry_key),
                                   key=_entry_key):
    same = list(same)
    if len(same) > 1:
      same.sort(key=lambda e: zlib.crc32(e[1].ids))
    ordered.extend(same)
  return ordered


def _zero_counts() -> Dict[str, int]:
  return {"truncated_instances": 0, "truncated_tokens": 0,
          "random_next_from_same_document": 0, "sop_random_next": 0,
          "long_sentences_split": 0, "document_end_sequences": 0,
          "document_separators": 0}


def _to_batch(key, rows, max_seq_length: int, layout: SequenceLayout,
              row_languages: Optional[np.ndarray] = None) -> InstanceBatch:
  """Lays rows out as ``[CLS] A [SEP] B [SEP]`` (``layout``'s separators
  between A and B; ``[CLS] A [SEP]`` when B is None) in a padded matrix:
  the rows' segments are joined once and put, in row-major order, where a
  mask of every row's A and B columns says. ``row_languages``: each row's
  language id (``InstanceBatch.languages``), or None."""
  n = len(rows)
  k = layout.pair_separators
  tokens = np.full((n, max_seq_length), layout.pad_id, dtype=np.int32)
  if n:
    segments_a, segments_b, labels = zip(*rows)
    has_b = np.fromiter(map(_is_not_none, segments_b), dtype=bool, count=n)
    if not has_b.all():
      segments_b = [_EMPTY if b is None else b for b in segments_b]
    a_lengths = np.fromiter(map(len, segments_a), dtype=np.int64, count=n)
    b_lengths = np.fromiter(map(len, segments_b), dtype=np.int64, count=n)
    labels = np.fromiter(labels, dtype=np.uint8, count=n)
    cols = np.arange(max_seq_length)[None, :]
    b_start = (a_lengths + 1 + k)[:, None]
    where = (((cols >= 1) & (cols <= a_lengths[:, None]))
             | ((cols >= b_start) & (cols < b_start + b_lengths[:, None])))
    tokens[where] = np.concatenate(list(itertools.chain.from_iterable(
        zip(segments_a, segments_b))))
    rows_index = np.arange(n)
    tokens[:, 0] = layout.cls_id
    tokens[rows_index, a_lengths + 1] = layout.sep_id
    for extra in range(2, k + 1):
      tokens[rows_index[has_b], (a_lengths + extra)[has_b]] = layout.sep_id
    tokens[rows_index[has_b], (a_lengths + b_lengths + 1 + k)[has_b]] = (
        layout.sep_id)
  else:
    has_b = np.zeros(0, dtype=bool)
    a_lengths = b_lengths = np.zeros(0, dtype=np.int64)
    labels = np.zeros(0, dtype=np.uint8)
  lengths = (a_lengths + b_lengths + 2 + k * has_b).astype(np.int32)
  return InstanceBatch(key, tokens, lengths, a_lengths.astype(np.int32),
                       labels, separators=k, segment_b=layout.segment_b,
                       languages=row_languages)


_EMPTY = np.zeros(0, dtype=np.int32)


def _is_not_none(value) -> bool:
  return value is not None


def instance_tokens(batch: InstanceBatch) -> int:
  """Tokens of A and B in the batch's instances (``[CLS]``/``[SEP]`` not
  counted): the text the examples keep."""
  has_b = batch.lengths > batch.a_lengths + 2
  return int((batch.lengths.astype(np.int64) - 2
              - batch.separators * has_b).sum())


def build_pool(pool_id: int, entries: Sequence[Tuple[int, TokenizedDocument]],
               params: InstanceParams, layout: SequenceLayout
               ) -> Iterator[InstanceBatch]:
  """``instances_for_pool`` with its counters kept; the DoFns' body."""
  metrics.observe("entries_per_pool", len(entries))
  for batch, counts in instances_for_pool(pool_id, entries, params, layout):
    for name, n in counts.items():
      metrics.count(name, n)
    if len(batch):
      metrics.count("instances", len(batch))
      metrics.count("instance_tokens", instance_tokens(batch))
      if params.sentence_task != "none":
        metrics.count(LABEL_COUNTERS[params.sentence_task],
                      int(np.count_nonzero(batch.labels)))
      yield batch


def pool_builder(params: InstanceParams, layout: SequenceLayout
                 ) -> Callable[[int, Sequence[Tuple[int, TokenizedDocument]]],
                               Iterator[InstanceBatch]]:
  """``build_pool`` with the settings bound: what the pools read from files
  are turned into instances with (transforms/pool_files.py). Raises
  ValueError when ``params`` and ``layout`` disagree on the separators
  between A and B."""
  if params.pair_separators != layout.pair_separators:
    raise ValueError("the instances leave room for %d separators between A "
                     "and B, the layout puts %d" % (params.pair_separators,
                                                     layout.pair_separators))
  return functools.partial(build_pool, params=params, layout=layout)


class _CreateInstancesDoFn(beam.DoFn):
  """A pool from a GroupByKey: (pool, [(dupe pass, packed document)])."""

  def __init__(self, build):
    self._build = build  # pool_builder's

  def process(self, element):
    pool_id, packed = element
    entries = [(dupe, TokenizedDocument.unpack(doc)) for dupe, doc in packed]
    yield from self._build(pool_id, entries)


class CreateInstances(beam.PTransform):
  """Output: ``InstanceBatch`` es covering every document and dupe pass.

  Two ways to gather the pools, with the same pools and the same output:
  files in ``pool_dir``, a directory of any Beam filesystem (a local folder,
  an ``s3://`` prefix) that every worker can reach
  (transforms/pool_files.py), or a Beam GroupByKey (``pool_dir=None``). The
  GroupByKey's input is dupe_factor copies of the tokenized corpus: the
  DirectRunner holds it in memory, and Beam 2.62's Flink runner holds a
  worker's share of it in the TaskManager's heap (docs/flink.md, "Memory on
  Flink"); the files keep memory flat on both. ``spread``: with the
  files, redistribute the pool groups over the workers (as in
  ``pool_files.InstancesFromSpill``; ``False`` for a job with one worker).
  """

  def __init__(self, params: InstanceParams, *, layout: SequenceLayout,
               pool_size: int = DEFAULT_POOL_SIZE,
               pool_dir: Optional[str] = None, spread: bool = True):
    super().__init__()
    self._spread = spread
    self._params = params
    self._build = pool_builder(params, layout)
    self._pool_size = pool_size
    self._pool_dir = pool_dir

  def expand(self, docs):
    params = self._params
    passes = (params.dupe_factor if params.language_plan is None
              else params.passes_of)
    if self._pool_dir is not None:
      return docs | "PoolFiles" >> pool_files.CreateInstancesFromFiles(
          self._build, params.random_seed, passes, self._pool_size,
          self._pool_dir, spread=self._spread)
    # The pools' count from the number of document passes.
    total = (docs
             | "CountPasses" >> beam.Map(
                 lambda doc: params.passes_of(doc.doc_id))
             | "SumPasses" >> beam.CombineGlobally(sum))
    seed, pool_size = params.random_seed, self._pool_size

    def assign(doc, n):
      pools = num_pools(n, pool_size)
      packed = doc.pack()
      for dupe in range(params.passes_of(doc.doc_id)):
        yield pool_of(seed, doc.doc_id, dupe, pools), (dupe, packed)

    return (
        docs
        | "AssignPools" >> beam.FlatMap(assign,
                                        n=beam.pvalue.AsSingleton(total))
        # Output: (pool, [(dupe pass, packed TokenizedDocument)]): a random
        # sample of the corpus' document passes.
        | "GroupPools" >> beam.GroupByKey()
        | "Build" >> beam.ParDo(
            _CreateInstancesDoFn(self._build)))
