"""CreateInstances: tokenized documents → batches of unmasked NSP instances.

The algorithm is google-research/bert's ``create_instances_from_document``
(see the README's "Algorithm" section), with two changes that make it
distributable and reproducible:

* The random-next segment B comes from a random *other* document of the same
  pool. Pools ("buckets") hold about ``random_next_pool_size`` documents each,
  drawn by a keyed hash of the document id from the whole corpus, so no worker
  ever holds more than one pool.
* Randomness is keyed: each (document, dupe pass) gets its own
  ``random.Random`` seeded from a stable hash of (seed, doc id, pass), so the
  output does not depend on workers, bundles, runners or file order.

Output elements are ``InstanceBatch`` es, a few hundred instances each as
numpy arrays, to keep Beam's per-element cost off the per-instance path.
"""

import dataclasses
import math
import random
from typing import Dict, Iterator, List, Sequence, Tuple

import apache_beam as beam
import numpy as np

from transforms import keys
from transforms import metrics
from transforms.tokenization import TokenizedDocument

DEFAULT_POOL_SIZE = 1000
BATCH_SIZE = 512


@dataclasses.dataclass
class InstanceParams:
  max_seq_length: int = 128
  short_seq_prob: float = 0.1
  dupe_factor: int = 10
  random_seed: int = 12345

  @property
  def max_num_tokens(self) -> int:
    return self.max_seq_length - 3  # [CLS] A [SEP] B [SEP]


@dataclasses.dataclass
class InstanceBatch:
  """Instances as rows: ``tokens[i, :lengths[i]]`` is
  ``[CLS] A [SEP] B [SEP]`` with ``a_lengths[i]`` tokens in A; the rest of
  the row is 0."""
  key: Tuple[int, int]  # (bucket, batch index within the bucket)
  tokens: np.ndarray  # int32 [n, max_seq_length]
  lengths: np.ndarray  # int32 [n]
  a_lengths: np.ndarray  # int32 [n]
  is_random_next: np.ndarray  # bool [n]

  def __len__(self):
    return int(self.lengths.size)

  def segment_ids(self) -> np.ndarray:
    cols = np.arange(self.tokens.shape[1])[None, :]
    first_sep = (self.a_lengths + 1)[:, None]
    return ((cols > first_sep) & (cols < self.lengths[:, None])).astype(np.int32)


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


def target_length(rng: random.Random, params: InstanceParams) -> int:
  """Tokens to aim for in a document pass: usually the maximum, sometimes a
  random short length so that the model sees short sequences too."""
  if rng.random() < params.short_seq_prob:
    return rng.randint(2, params.max_num_tokens)
  return params.max_num_tokens


# A pool document: its token ids back to back, and the offsets where its
# sentences start, plus the end (sentence i is ids[offsets[i]:offsets[i+1]]).
PoolDocument = Tuple[np.ndarray, List[int]]


def pool_document(doc: TokenizedDocument) -> PoolDocument:
  return doc.ids, [0] + np.cumsum(doc.sentence_lengths).tolist()


def create_instances_from_document(
    doc_index: int, pool: Sequence[PoolDocument], rng: random.Random,
    params: InstanceParams, counts: Dict[str, int]
) -> Iterator[Tuple[np.ndarray, np.ndarray, bool]]:
  """Yields ``(tokens_a, tokens_b, is_random_next)`` for one document pass.

  ``pool`` holds every document of the bucket; ``pool[doc_index]`` is the
  one at hand. Segments are runs of whole sentences, so A and B are slices
  (views) of a document's ids: nothing is copied here.
  """
  ids, offsets = pool[doc_index]
  num_sentences = len(offsets) - 1
  target = target_length(rng, params)
  first = 0  # first sentence of the current chunk
  i = 0
  while i < num_sentences:
    chunk_sentences = i - first + 1
    if i == num_sentences - 1 or offsets[i + 1] - offsets[first] >= target:
      a_end = (rng.randint(1, chunk_sentences - 1) if chunk_sentences >= 2
               else 1)
      tokens_a = ids[offsets[first]:offsets[first + a_end]]
      if chunk_sentences == 1 or rng.random() < 0.5:
        is_random_next = True
        other = _random_other_document(doc_index, len(pool), rng, counts)
        other_ids, other_offsets = pool[other]
        target_b = target - len(tokens_a)
        start = rng.randint(0, len(other_offsets) - 2)
        end = start + 1
        while (end < len(other_offsets) - 1
               and other_offsets[end] - other_offsets[start] < target_b):
          end += 1
        tokens_b = other_ids[other_offsets[start]:other_offsets[end]]
        # The unused segments go back: the next chunk starts with them.
        i = first + a_end - 1
      else:
        is_random_next = False
        tokens_b = ids[offsets[first + a_end]:offsets[i + 1]]
      tokens_a, tokens_b, removed = truncate_seq_pair(
          tokens_a, tokens_b, params.max_num_tokens, rng)
      if removed:
        counts["truncated_instances"] += 1
        counts["truncated_tokens"] += removed
      yield tokens_a, tokens_b, is_random_next
      first = i + 1
    i += 1


def _random_other_document(doc_index: int, pool_size: int, rng: random.Random,
                           counts: Dict[str, int]) -> int:
  if pool_size < 2:
    # A corpus of one document: like the reference, fall back to itself.
    counts["random_next_from_same_document"] += 1
    return doc_index
  other = rng.randint(0, pool_size - 2)
  return other + 1 if other >= doc_index else other


def num_buckets(num_documents: int, pool_size: int) -> int:
  """Pools of about ``pool_size`` documents, at least one."""
  return max(1, int(math.ceil(num_documents / float(pool_size))))


def instances_for_bucket(bucket: int, docs: Sequence[TokenizedDocument],
                         params: InstanceParams, cls_id: int, sep_id: int,
                         batch_size: int = BATCH_SIZE
                         ) -> Iterator[Tuple[InstanceBatch, Dict[str, int]]]:
  """All instances of one pool, all dupe passes, in batches.

  Documents are sorted by id (and content) first: a GroupByKey hands them
  over in no fixed order.
  """
  docs = sorted(docs, key=lambda d: (d.doc_id, d.ids.tobytes()))
  pool = [pool_document(d) for d in docs]
  L = params.max_seq_length
  rows: List[Tuple[np.ndarray, np.ndarray, bool]] = []
  counts = _zero_counts()
  batch_index = 0
  for doc_index, doc in enumerate(docs):
    # One generator per document, its dupe passes drawn one after another:
    # keyed by the document alone, so still independent of everything else.
    rng = random.Random(keys.stable_hash("instances", params.random_seed,
                                         doc.doc_id))
    for _ in range(params.dupe_factor):
      for row in create_instances_from_document(doc_index, pool, rng, params,
                                                counts):
        rows.append(row)
        if len(rows) == batch_size:
          yield _to_batch((bucket, batch_index), rows, L, cls_id, sep_id), counts
          rows, counts, batch_index = [], _zero_counts(), batch_index + 1
  if rows or any(counts.values()):
    yield _to_batch((bucket, batch_index), rows, L, cls_id, sep_id), counts


def _zero_counts() -> Dict[str, int]:
  return {"truncated_instances": 0, "truncated_tokens": 0,
          "random_next_from_same_document": 0}


def _to_batch(key, rows, max_seq_length, cls_id, sep_id) -> InstanceBatch:
  n = len(rows)
  tokens = np.zeros((n, max_seq_length), dtype=np.int32)
  lengths = np.empty(n, dtype=np.int32)
  a_lengths = np.empty(n, dtype=np.int32)
  is_random_next = np.empty(n, dtype=bool)
  for r, (a, b, rand) in enumerate(rows):
    la, lb = len(a), len(b)
    row = tokens[r]
    row[0] = cls_id
    row[1:1 + la] = a
    row[1 + la] = sep_id
    row[2 + la:2 + la + lb] = b
    row[2 + la + lb] = sep_id
    lengths[r] = la + lb + 3
    a_lengths[r] = la
    is_random_next[r] = rand
  return InstanceBatch(key, tokens, lengths, a_lengths, is_random_next)


class _CreateInstancesDoFn(beam.DoFn):

  def __init__(self, params: InstanceParams, cls_id: int, sep_id: int):
    self._params = params
    self._cls_id = cls_id
    self._sep_id = sep_id

  def process(self, element):
    bucket, docs = element
    docs = list(docs)
    metrics.observe("documents_per_pool", len(docs))
    for batch, counts in instances_for_bucket(
        bucket, docs, self._params, self._cls_id, self._sep_id):
      for name, n in counts.items():
        metrics.count(name, n)
      if len(batch):
        metrics.count("instances", len(batch))
        metrics.count("random_next_instances",
                      int(np.count_nonzero(batch.is_random_next)))
        yield batch


class CreateInstances(beam.PTransform):
  """Output: ``InstanceBatch`` es covering every document and dupe pass."""

  def __init__(self, params: InstanceParams, cls_id: int, sep_id: int,
               pool_size: int = DEFAULT_POOL_SIZE):
    super().__init__()
    self._params = params
    self._cls_id = cls_id
    self._sep_id = sep_id
    self._pool_size = pool_size

  def expand(self, docs):
    seed, pool_size = self._params.random_seed, self._pool_size
    total = docs | "CountDocuments" >> beam.combiners.Count.Globally()

    def assign(doc, n):
      return keys.bucket_of(seed, doc.doc_id, num_buckets(n, pool_size)), doc

    return (
        docs
        | "AssignPools" >> beam.Map(assign, n=beam.pvalue.AsSingleton(total))
        # Output: (bucket, [TokenizedDocument]) — one random-next pool.
        | "GroupPools" >> beam.GroupByKey()
        | "Build" >> beam.ParDo(
            _CreateInstancesDoFn(self._params, self._cls_id, self._sep_id)))
