"""Instance creation, step by step against BERT's algorithm."""

import collections
import random

import apache_beam as beam
import numpy as np
import pytest
from apache_beam.testing.util import assert_that, equal_to

from tests.helpers import local_test_pipeline
from transforms import instances, shards
from transforms import pools as pool_math
from transforms.tokenization import TokenizedDocument

CLS, SEP = 101, 102


def _reference_truncation(len_a, len_b, max_num_tokens):
  """BERT's truncate_seq_pair loop, counting which side loses each token."""
  cut_a = cut_b = 0
  while len_a + len_b > max_num_tokens:
    if len_a > len_b:
      len_a -= 1
      cut_a += 1
    else:
      len_b -= 1
      cut_b += 1
  return cut_a, cut_b


def test_truncation_lengths_match_the_reference_loop():
  for len_a in range(0, 40):
    for len_b in range(0, 40):
      for m in (2, 5, 17, 30):
        assert instances.truncation_lengths(len_a, len_b, m) == \
            _reference_truncation(len_a, len_b, m), (len_a, len_b, m)


def test_truncate_seq_pair_removes_from_both_ends():
  rng = random.Random(0)
  fronts = collections.Counter()
  a = np.arange(100)
  b = np.arange(100, 110)
  for _ in range(200):
    ta, tb, removed = instances.truncate_seq_pair(a, b, 30, rng)
    assert removed == 80 and len(ta) == 20 and len(tb) == 10
    assert np.array_equal(tb, b)
    # A stays a contiguous slice of the original.
    assert np.array_equal(ta, np.arange(ta[0], ta[0] + 20))
    fronts[int(ta[0])] += 1
  # Tokens came off the front in about half of the 80 removals.
  mean_front = sum(k * v for k, v in fronts.items()) / 200
  assert 34 < mean_front < 46


def _doc(doc_id, sentence_lengths, start=1000):
  ids, pos = [], start
  for n in sentence_lengths:
    ids.extend(range(pos, pos + n))
    pos += n
  return TokenizedDocument(doc_id, np.array(ids, dtype=np.int32),
                           np.array(sentence_lengths, dtype=np.int32))


def _run_doc(doc_index, pool, params, seed=0):
  counts = collections.Counter()
  rng = random.Random(seed)
  out = list(instances.create_instances_from_document(
      doc_index, [instances.pool_document(d) for d in pool], rng, params,
      counts))
  return out, counts


def test_chunks_reach_the_target_and_b_continues_a():
  params = instances.InstanceParams(max_seq_length=23, short_seq_prob=0.0)
  doc = _doc("d", [5] * 12)  # 60 tokens, target 20: chunks of 4 sentences
  other = _doc("o", [3] * 10, start=5000)
  for seed in range(30):
    rows, _ = _run_doc(0, [doc, other], params, seed)
    for a, b, is_random in rows:
      assert 1 <= len(a) and 1 <= len(b) and len(a) + len(b) <= 20
      if not is_random:
        # Actual next: B starts right where A ends, in the same document.
        assert b[0] == a[-1] + 1
        assert b[0] < 5000
      else:
        assert b[0] >= 5000  # from the other document


def test_random_next_comes_from_another_document_and_segments_are_put_back():
  params = instances.InstanceParams(max_seq_length=1000, short_seq_prob=0.0)
  # One chunk holds the whole document; with random next, the unused
  # segments go back and make further instances.
  doc = _doc("d", [4, 4, 4, 4])
  others = [_doc("o%d" % i, [6, 6], start=5000 + 100 * i) for i in range(5)]
  seen_random = seen_more = 0
  for seed in range(100):
    rows, _ = _run_doc(0, [doc] + others, params, seed)
    a_tokens = np.concatenate([a for a, _, _ in rows])
    # Every sentence of the document appears in some A or actual-next B.
    covered = set(a_tokens.tolist())
    for a, b, is_random in rows:
      if not is_random:
        covered |= set(b.tolist())
      else:
        seen_random += 1
        assert b.min() >= 5000
    assert covered == set(range(1000, 1016))
    if len(rows) > 1:
      seen_more += 1
  assert seen_random > 30 and seen_more > 10


def test_single_sentence_chunk_forces_random_next():
  params = instances.InstanceParams(max_seq_length=10, short_seq_prob=0.0)
  doc = _doc("d", [20])  # one long sentence
  other = _doc("o", [2, 2], start=5000)
  rows, counts = _run_doc(0, [doc, other], params)
  assert len(rows) == 1
  a, b, is_random = rows[0]
  assert is_random and len(a) + len(b) == 7
  assert counts["truncated_instances"] == 1
  assert counts["truncated_tokens"] == 20 + 2 - 7


def test_one_document_corpus_falls_back_to_itself():
  params = instances.InstanceParams(max_seq_length=32, short_seq_prob=0.0)
  rows, counts = _run_doc(0, [_doc("d", [3])], params)
  assert rows and rows[0][2]
  assert counts["random_next_from_same_document"] == 1


def test_short_targets_follow_short_seq_prob():
  params = instances.InstanceParams(max_seq_length=128, short_seq_prob=0.3)
  rng = random.Random(1)
  targets = [instances.target_length(rng, params) for _ in range(5000)]
  short = [t for t in targets if t != 125]
  assert 0.27 < len(short) / 5000 < 0.33
  assert min(short) >= 2 and max(short) <= 125


def test_instances_for_pool_layout_and_determinism():
  params = instances.InstanceParams(max_seq_length=32, dupe_factor=3,
                                    short_seq_prob=0.1, random_seed=7)
  docs = [_doc("d%d" % i, [3 + i % 5] * (2 + i % 6), start=1000 + 100 * i)
          for i in range(20)]
  entries = [(p, d) for d in docs for p in range(2)]
  first = list(instances.instances_for_pool(0, entries, params, CLS, SEP,
                                              batch_size=16))
  again = list(instances.instances_for_pool(0, list(reversed(entries)),
                                              params, CLS, SEP, batch_size=16))
  assert len(first) == len(again) > 1
  for (b1, _), (b2, _) in zip(first, again):
    assert np.array_equal(b1.tokens, b2.tokens)
  batches = [b for b, _ in first]
  assert [b.key for b in batches] == [(0, i) for i in range(len(batches))]
  for batch in batches:
    assert batch.tokens.shape[1] == 32
    for row, n, la in zip(batch.tokens, batch.lengths, batch.a_lengths):
      assert row[0] == CLS and row[la + 1] == SEP and row[n - 1] == SEP
      assert np.all(row[n:] == 0)
      assert SEP not in row[1:la + 1] and SEP not in row[la + 2:n - 1]
    seg = batch.segment_ids()
    for r in range(len(batch)):
      la, n = batch.a_lengths[r], batch.lengths[r]
      assert seg[r, :la + 2].sum() == 0 and seg[r, la + 2:n].min() == 1
      assert seg[r, n:].sum() == 0
  # The pool's instances come out shuffled, not document by document.
  firsts = [int(b.tokens[r, 1]) // 100 for b in batches for r in range(len(b))]
  runs = sum(1 for x, y in zip(firsts, firsts[1:]) if x != y)
  assert runs > len(firsts) * 0.6
  # Two passes of one document differ.
  total = sum(len(b) for b in batches)
  assert total > 40


def test_random_next_never_comes_from_the_same_document():
  params = instances.InstanceParams(max_seq_length=64, short_seq_prob=0.0)
  d = _doc("d", [5])
  other = _doc("o", [5, 5], start=5000)
  pool = [instances.pool_document(x) for x in (d, d, other)]
  counts = collections.Counter()
  for seed in range(50):
    rows = list(instances.create_instances_from_document(
        0, pool, random.Random(seed), params, counts, ["d", "d", "o"]))
    for _, b, is_random in rows:
      assert is_random and b.min() >= 5000
  assert counts["random_next_from_same_document"] == 0


def test_num_pools():
  assert pool_math.num_pools(0, 1000) == 1
  assert pool_math.num_pools(1000, 1000) == 1
  assert pool_math.num_pools(1001, 1000) == 2


@pytest.mark.parametrize("through", ["groupbykey", "files"])
def test_create_instances_transform_is_independent_of_input_order(
    through, tmp_path):
  """The same instances from the plain functions, from a GroupByKey and from
  pool files, whatever the order of the documents."""
  pool_dir = str(tmp_path / "pools") if through == "files" else None
  params = instances.InstanceParams(max_seq_length=24, dupe_factor=2)
  docs = [_doc("d%d" % i, [4] * (1 + i % 4), start=100 * i) for i in range(30)]
  # Expected: the plain functions over the same pools.
  n_pools = pool_math.num_pools(len(docs) * 2, 7)
  pools = collections.defaultdict(list)
  for d in docs:
    for p in range(2):
      pools[pool_math.pool_of(params.random_seed, d.doc_id, p, n_pools)].append(
          (p, d))
  expected = []
  for pool_id, pool in pools.items():
    for batch, _ in instances.instances_for_pool(pool_id, pool, params, CLS,
                                                   SEP):
      expected.extend(tuple(r) for r in batch.tokens.tolist())
  assert len(pools) >= 7
  for order in (docs, list(reversed(docs))):
    with local_test_pipeline() as p:
      rows = (p | beam.Create(order)
              | instances.CreateInstances(params, CLS, SEP, pool_size=7,
                                          pool_dir=pool_dir)
              | beam.FlatMap(_rows))
      assert_that(rows, equal_to(expected))


def _rows(element):
  """An InstanceBatch's token rows; none for a GroupMark (pool files)."""
  if isinstance(element, shards.GroupMark):
    return []
  return [tuple(r) for r in element.tokens.tolist()]


def test_pools_are_hash_ranges():
  for pools in (1, 2, 7, 1000, 3 ** 30):
    bounds = [pool_math.pool_bounds(p, pools) for p in range(min(pools, 50))]
    assert bounds[0][0] == 0
    for (_, hi), (lo, _) in zip(bounds, bounds[1:]):
      assert hi == lo
    if pools <= 50:
      assert bounds[-1][1] == 1 << 64
    for i in range(200):
      h = pool_math.entry_hash(5, "doc%d" % i, i % 3)
      p = pool_math.pool_of(5, "doc%d" % i, i % 3, pools)
      lo, hi = pool_math.pool_bounds(p, pools)
      assert 0 <= p < pools and lo <= h < hi


def test_pool_files_round_trip(tmp_path):
  """Every document pass is read back, whole, from the group of pools that
  holds its hash, with one ranged read per file."""
  from transforms import pool_files
  docs = [_doc("d%d" % i, [3 + i % 4] * (1 + i % 3), start=100 * i)
          for i in range(400)]
  docs.append(TokenizedDocument("wide", np.array([70000, 5], dtype=np.int32),
                                np.array([2], dtype=np.int32)))
  files = [pool_files.write_file(str(tmp_path), docs[:250], 9, 3),
           pool_files.write_file(str(tmp_path), docs[250:], 9, 3)]
  assert [f.records for f in files] == [750, 453]
  reader = pool_files._ReadPoolGroupDoFn(str(tmp_path), None, 10)
  reader.setup()
  pools, groups = 50, 7
  seen = []
  for group in range(groups):
    members = pool_files.group_pools(group, groups, pools)
    lo = pool_math.pool_bounds(members.start, pools)[0]
    hi = pool_math.pool_bounds(members.stop - 1, pools)[1]
    for h, dupe, doc in reader.entries(lo, hi, files):
      assert h == pool_math.entry_hash(9, doc.doc_id, dupe)
      assert pool_math.pool_of(9, doc.doc_id, dupe, pools) in members
      seen.append((doc.doc_id, dupe))
      original = next(d for d in docs if d.doc_id == doc.doc_id)
      assert np.array_equal(doc.ids, original.ids)
      assert doc.ids.dtype == original.ids.dtype
      assert np.array_equal(doc.sentence_lengths, original.sentence_lengths)
  reader.teardown()
  assert sorted(seen) == sorted((d.doc_id, k) for d in docs for k in range(3))


def test_pool_groups_cover_every_pool_once():
  from transforms import pool_files
  for pools, size in ((1, 0), (7, 10 << 30), (1000, 1), (100000, 100 << 30)):
    groups = pool_files.num_groups(pools, size)
    members = [p for g in range(groups)
               for p in pool_files.group_pools(g, groups, pools)]
    assert members == list(range(pools))
    assert all(len(pool_files.group_pools(g, groups, pools))
               for g in range(groups))
  assert pool_files.num_groups(100000, 100 << 30) == 1600  # 64 MB each
  assert pool_files.num_groups(1000, 1) == pool_files.MIN_GROUPS


def test_byte_range_holds_every_record_of_a_hash_range():
  from transforms import pool_files
  hashes = np.sort(np.random.default_rng(3).integers(0, 1 << 63, 1000,
                                                     dtype=np.uint64) * 2)
  offsets = np.arange(1000, dtype=np.uint64) * 10
  every = pool_files.SPARSE_EVERY
  sparse = np.zeros(-(-1000 // every), dtype=pool_files.SPARSE_DTYPE)
  sparse["hash"], sparse["offset"] = hashes[::every], offsets[::every]
  for lo, hi in ((0, 1 << 64), (int(hashes[100]), int(hashes[500])),
                 (int(hashes[999]) + 1, 1 << 64), (0, int(hashes[0]))):
    start, stop = pool_files.byte_range(sparse, 10000, lo, hi)
    inside = np.flatnonzero((hashes >= lo) & (hashes < hi))
    if inside.size:
      assert start <= offsets[inside[0]] and offsets[inside[-1]] + 10 <= stop
    # At most one sparse step too much on each side.
    assert stop - start <= 10 * (inside.size + 2 * every)


def test_instances_match_berts_own_function_in_distribution():
  """The oracle is google-research/bert's create_instances_from_document
  (bert-tensorflow on PyPI), on the sample corpus' token lists: over 40
  seeds each, the mean number of instances, their mean length and the
  random-next share agree within 4 standard errors. (One seed says little:
  a document's target length is drawn once per pass, so counts move by a
  few percent from seed to seed.)"""
  from bert import create_pretraining_data as reference  # pylint: disable=import-outside-toplevel
  from tests.helpers import load_vocab_list, sample_documents  # pylint: disable=import-outside-toplevel
  from transforms.tokenization import build_tokenizer  # pylint: disable=import-outside-toplevel
  tokenizer = build_tokenizer(load_vocab_list(), True)
  docs = [[tokenizer.encode(s).ids for s in doc] for doc in sample_documents()]
  docs = [[s for s in d if s] for d in docs]
  docs = [d for d in docs if d]
  as_words = [[[str(t) for t in s] for s in d] for d in docs]
  dupe = 5
  pool, doc_ids = [], []
  for _ in range(dupe):
    for i, d in enumerate(docs):
      pool.append((np.array([t for s in d for t in s], dtype=np.int32),
                   [0] + np.cumsum([len(s) for s in d]).tolist()))
      doc_ids.append(i)
  params = instances.InstanceParams(max_seq_length=64, short_seq_prob=0.1)
  theirs, ours = [], []
  for seed in range(40):
    rng = random.Random(seed)
    made = [inst for _ in range(dupe) for i in range(len(as_words))
            for inst in reference.create_instances_from_document(
                as_words, i, 64, 0.1, 0.15, 10, ["x"], rng)]
    theirs.append((len(made), np.mean([len(m.tokens) for m in made]),
                   np.mean([m.is_random_next for m in made])))
    rng = random.Random(seed)
    rows = [row for index in range(len(pool))
            for row in instances.create_instances_from_document(
                index, pool, rng, params, collections.Counter(), doc_ids)]
    ours.append((len(rows), np.mean([len(a) + len(b) + 3 for a, b, _ in rows]),
                 np.mean([r[2] for r in rows])))
  theirs, ours = np.array(theirs), np.array(ours)
  for column, name in enumerate(("instances", "length", "random next")):
    error = np.sqrt(theirs[:, column].var() / 40 + ours[:, column].var() / 40)
    gap = abs(theirs[:, column].mean() - ours[:, column].mean())
    assert gap < 4 * error + 1e-9, (name, theirs[:, column].mean(),
                                     ours[:, column].mean(), error)
