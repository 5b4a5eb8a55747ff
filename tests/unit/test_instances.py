"""Instance creation, step by step against BERT's algorithm, and the modes
beyond it: sentence order, pairs without a sentence task, and RoBERTa's two
packings against fairseq's own packer."""

import collections
import os
import random

import apache_beam as beam
import numpy as np
import pytest
from apache_beam.testing.util import assert_that, equal_to

from oracles import references
from tests.helpers import (REPO, load_vocab_list, local_test_pipeline,
                           sample_documents)
from transforms import instances, shards
from transforms import pools as pool_math
from transforms.tokenization import TokenizedDocument, build_tokenizer

CLS, SEP = 101, 102
BERT_LAYOUT = instances.SequenceLayout(cls_id=CLS, sep_id=SEP)


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


def test_instances_for_pool_orders_colliding_documents_by_content():
  """Two documents with the same id, dupe pass and size (same-named files
  in two folders) are put in order by their content: any arrival order
  gives the same instances."""
  params = instances.InstanceParams(max_seq_length=32, dupe_factor=1,
                                    short_seq_prob=0.0, random_seed=3)
  twins = [_doc("same", [4, 5, 6], start=s) for s in (2000, 1000, 3000)]
  others = [_doc("d%d" % i, [3, 4, 5], start=5000 + 100 * i)
            for i in range(4)]
  entries = [(0, d) for d in twins + others]
  runs = [[b.tokens for b, _ in instances.instances_for_pool(
      0, order, params, BERT_LAYOUT)]
          for order in (entries, entries[::-1], entries[1:] + entries[:1])]
  for run in runs[1:]:
    assert len(run) == len(runs[0])
    assert all(np.array_equal(a, b) for a, b in zip(run, runs[0]))


def test_instances_for_pool_layout_and_determinism():
  params = instances.InstanceParams(max_seq_length=32, dupe_factor=3,
                                    short_seq_prob=0.1, random_seed=7)
  docs = [_doc("d%d" % i, [3 + i % 5] * (2 + i % 6), start=1000 + 100 * i)
          for i in range(20)]
  entries = [(p, d) for d in docs for p in range(2)]
  first = list(instances.instances_for_pool(0, entries, params, BERT_LAYOUT,
                                              batch_size=16))
  again = list(instances.instances_for_pool(0, list(reversed(entries)),
                                              params, BERT_LAYOUT,
                                              batch_size=16))
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
    for batch, _ in instances.instances_for_pool(pool_id, pool, params, BERT_LAYOUT):
      expected.extend(tuple(r) for r in batch.tokens.tolist())
  assert len(pools) >= 7
  for order in (docs, list(reversed(docs))):
    with local_test_pipeline() as p:
      rows = (p | beam.Create(order)
              | instances.CreateInstances(params, layout=BERT_LAYOUT,
                                          pool_size=7,
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


# --- Beyond BERT's pairs: sentence order, no sentence task, RoBERTa's packings

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
    entries.append((0, TokenizedDocument("d%d" % i, ids,
                                         np.diff(offsets).astype(np.int32))))
  params = instances.InstanceParams(max_seq_length=48, sentence_task="sop")
  batches = [b for b, _ in instances.instances_for_pool(0, entries, params, BERT_LAYOUT)]
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
               (np.array([5]), np.array([6, 6]), False)], 10, BERT_LAYOUT)
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
  fewest, _ = references.whole_sentence_ceiling(
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
  fewest, _ = references.whole_sentence_ceiling(
      [np.diff(offsets).tolist() for _, offsets in pool], 64,
      cross_documents=True)
  assert len(seqs) == fewest


@pytest.fixture(scope="module")
def fairseq():
  """fairseq 0.8.0's TokenBlockDataset from PyPI's source release: RoBERTa's
  own packer, the reference for both packings."""
  return references.ensure_fairseq(
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
  reference = references.fairseq_blocks(
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




ROBERTA_LAYOUT = instances.SequenceLayout(cls_id=0, sep_id=2, pad_id=1,
                                          pair_separators=2, segment_b=0)


def test_roberta_layout_is_robertaprocessings():
  """RoBERTa's layout against tokenizers' RobertaProcessing (what RoBERTa's
  and XLM-R's tokenizer.json add): <s> A </s></s> B </s> for a pair, <s> A
  </s> for one segment, type ids all 0; padded with the pad id."""
  # pylint: disable=import-outside-toplevel
  from tokenizers import Tokenizer, models, pre_tokenizers, processors
  vocab = {"<s>": 0, "<pad>": 1, "</s>": 2, "<unk>": 3}
  vocab.update(("w%d" % i, 4 + i) for i in range(20))
  reference = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
  reference.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
  reference.post_processor = processors.RobertaProcessing(("</s>", 2),
                                                          ("<s>", 0))
  a, b = "w1 w2 w3", "w4 w5"
  ids = lambda text: np.array([vocab[w] for w in text.split()])
  batch = instances._to_batch(  # pylint: disable=protected-access
      (0, 0), [(ids(a), ids(b), False), (ids(a), None, False)], 12,
      ROBERTA_LAYOUT)
  for row, encoding in enumerate((reference.encode(a, b), reference.encode(a))):
    n = int(batch.lengths[row])
    assert batch.tokens[row, :n].tolist() == encoding.ids
    assert batch.segment_ids()[row, :n].tolist() == encoding.type_ids
    assert batch.tokens[row, n:].tolist() == [1] * (12 - n)
  assert instances.instance_tokens(batch) == 5 + 3


def test_roberta_pairs_fit_and_never_mask_a_separator():
  """In RoBERTa's layout a pair costs four special tokens: every row fits
  max_seq_length, and neither separator between A and B is a masking
  candidate."""
  # pylint: disable=import-outside-toplevel
  from transforms import masking
  params = instances.InstanceParams(max_seq_length=24, short_seq_prob=0.0,
                                    sentence_task="none", pair_separators=2)
  docs = [_doc("d%d" % i, [5 + i % 4] * (3 + i % 5), start=1000 + 100 * i)
          for i in range(30)]
  entries = [(0, d) for d in docs]
  batches = [b for b, _ in instances.instances_for_pool(0, entries, params,
                                                        ROBERTA_LAYOUT)]
  pairs = 0
  for batch in batches:
    cand = masking.candidates(batch)
    for row in range(len(batch)):
      n, la = int(batch.lengths[row]), int(batch.a_lengths[row])
      assert n <= 24 and batch.tokens[row, 0] == 0
      if n > la + 2:  # a pair
        pairs += 1
        assert batch.tokens[row, la + 1] == batch.tokens[row, la + 2] == 2
        assert not cand[row, la + 1] and not cand[row, la + 2]
        assert cand[row, la] and cand[row, la + 3]
      assert batch.tokens[row, n - 1] == 2 and not cand[row, n - 1]
  assert pairs > 10
  with pytest.raises(ValueError, match="room for 1 separators"):
    instances.pool_builder(instances.InstanceParams(), ROBERTA_LAYOUT)


def _kernel_pool(rng, num_docs, max_sentences, max_len, zero_len=False):
  """Entries of random documents, some passed twice (the same document in
  two dupe passes), with sentences long and short."""
  entries = []
  for d in range(num_docs):
    lengths = rng.integers(0 if zero_len else 1, max_len + 1,
                           size=int(rng.integers(1, max_sentences + 1)))
    doc = TokenizedDocument(
        "doc%d" % d, rng.integers(1000, 30000, size=int(lengths.sum()))
        .astype(np.int32), lengths.astype(np.int32))
    for dupe in range(1 + (d % 3 == 0)):
      entries.append((dupe, doc))
  rng.shuffle(entries)
  return entries


@pytest.mark.parametrize("task", ["nsp", "sop", "none"])
@pytest.mark.parametrize("max_seq_length, short_seq_prob, separators", [
    (128, 0.1, 1),  # BERT's
    (32, 0.1, 1),  # much truncation
    (16, 1.0, 1),  # every pass a short target
    (24, 0.0, 2),  # RoBERTa's layout
    (512, 0.1, 1),  # long sentences, many coin flips at once
])
def test_the_pairs_kernel_makes_the_python_paths_instances(
    monkeypatch, max_seq_length, short_seq_prob, separators, task):
  """The C builder of segment pairs (BERT's NSP, ALBERT's SOP, no sentence
  task) and the Python path give the same batches and counts from the
  same keyed generator: pools of one entry (no other document), of one
  document twice (every random next from itself), of many, with sentences
  of 0 tokens and sentences longer than a sequence, in batches of several
  sizes. (The tests above check the Python path against BERT's and
  ALBERT's.)"""
  from transforms import kernels  # pylint: disable=import-outside-toplevel
  if kernels.pairs_kernel() is None:
    pytest.skip("the pairs kernel is not built here (no C compiler)")
  import dataclasses  # pylint: disable=import-outside-toplevel
  rng = np.random.default_rng(max_seq_length + separators)
  params = instances.InstanceParams(max_seq_length=max_seq_length,
                                    short_seq_prob=short_seq_prob,
                                    pair_separators=separators,
                                    sentence_task=task,
                                    random_seed=int(rng.integers(1 << 30)))
  layout = instances.SequenceLayout(cls_id=101, sep_id=102, pad_id=7,
                                    pair_separators=separators,
                                    segment_b=1 if separators == 1 else 0)
  one = TokenizedDocument("one", np.arange(1000, 1010, dtype=np.int32),
                          np.array([4, 6], dtype=np.int32))
  pools = [[(0, one)], [(0, one), (1, one)], [],
           _kernel_pool(rng, 40, 12, max_seq_length // 3),
           _kernel_pool(rng, 25, 5, max_seq_length * 2),
           _kernel_pool(rng, 30, 20, 9, zero_len=True)]
  made = 0
  for pool_id, entries in enumerate(pools):
    for batch_size in (7, 512):
      outcomes = []
      for numpy_only in (False, True):
        monkeypatch.setattr(kernels, "numpy_only", numpy_only)
        outcomes.append(list(instances.instances_for_pool(
            pool_id, entries, params, layout, batch_size=batch_size)))
      c, python = outcomes
      assert len(c) == len(python)
      for (got, got_counts), (want, want_counts) in zip(c, python):
        assert got_counts == want_counts
        made += len(want)
        for field in dataclasses.fields(want):
          a, b = getattr(got, field.name), getattr(want, field.name)
          if isinstance(b, np.ndarray):
            assert a.dtype == b.dtype and np.array_equal(a, b), field.name
          else:
            assert a == b, field.name
  assert made > 100
