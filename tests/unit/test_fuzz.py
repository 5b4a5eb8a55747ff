"""Property-based fuzzing of the readers and of the instance builder."""

import os
import tempfile

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.helpers import read_source
from transforms import examples, instances, masking, reading
from transforms.tokenization import TokenizedDocument

SETTINGS = settings(max_examples=150, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])

# Bytes rich in the characters the readers care about.
_INTERESTING = st.sampled_from([b"\n", b"\r", b"\r\n", b"\n\n", b" ", b"\t",
                                b"\x00", b"\xff", b"\xef\xbb\xbf", b"\xe2\x80",
                                b"<doc id=\"1\">", b"</doc>", b"{\"text\": \"a\"}",
                                b"word", b"x" * 40])
_CONTENT = st.lists(st.one_of(_INTERESTING, st.binary(max_size=30)),
                    max_size=60).map(b"".join)


def _read(path, fmt, bundle_size=None):
  return read_source(path, fmt, bundle_size, max_line_bytes=1024,
                     max_doc_bytes=2048)


@SETTINGS
@given(data=_CONTENT, fmt=st.sampled_from(reading.FORMATS),
       bundle_size=st.integers(min_value=1, max_value=200))
def test_readers_never_crash_and_splits_agree(data, fmt, bundle_size):
  with tempfile.TemporaryDirectory() as d:
    path = os.path.join(d, "f.txt")
    with open(path, "wb") as f:
      f.write(data)
    whole = _read(path, fmt)
    assert sorted(_read(path, fmt, bundle_size)) == sorted(whole)
    ids = [doc_id for doc_id, _ in whole]
    assert len(ids) == len(set(ids))
    for _, lines in whole:
      # A WikiExtractor article with only its title comes out empty (the
      # parse step drops it); every other document has lines.
      assert lines or fmt == "wikiextractor"
      assert all(isinstance(t, str) and "\n" not in t for t in lines)
      if fmt != "jsonl":
        assert all(t.strip() for t in lines)


_DOCS = st.lists(
    st.lists(st.lists(st.integers(min_value=200, max_value=999), min_size=1,
                      max_size=40), min_size=1, max_size=8),
    min_size=1, max_size=12)


@SETTINGS
@given(docs=_DOCS, max_seq_length=st.integers(min_value=5, max_value=64),
       masked_lm_prob=st.floats(min_value=0.0, max_value=1.0),
       max_predictions=st.integers(min_value=0, max_value=80),
       short_seq_prob=st.floats(min_value=0.0, max_value=1.0),
       whole_word=st.booleans(), seed=st.integers(0, 2 ** 32))
def test_every_example_has_the_bert_layout(docs, max_seq_length, masked_lm_prob,
                                           max_predictions, short_seq_prob,
                                           whole_word, seed):
  CLS, SEP, MASK, VOCAB = 101, 102, 103, 1000
  BERT_LAYOUT = instances.SequenceLayout(cls_id=CLS, sep_id=SEP)
  tokenized = [
      TokenizedDocument("d%d" % i,
                        np.array([t for s in doc for t in s], dtype=np.uint16),
                        np.array([len(s) for s in doc], dtype=np.int32))
      for i, doc in enumerate(docs)]
  params = instances.InstanceParams(max_seq_length=max_seq_length,
                                    short_seq_prob=short_seq_prob,
                                    dupe_factor=1, random_seed=seed)
  mparams = masking.MaskingParams(masked_lm_prob=masked_lm_prob,
                                  max_predictions_per_seq=max_predictions,
                                  do_whole_word_mask=whole_word,
                                  random_seed=seed)
  is_cont = np.zeros(VOCAB, dtype=bool)
  is_cont[500:700] = True
  total = 0
  entries = [(p, doc) for doc in tokenized for p in range(2)]
  for batch, _ in instances.instances_for_pool(0, entries, params,
                                               BERT_LAYOUT, batch_size=7):
    masked, counts = masking.mask_batch(batch, mparams, VOCAB, MASK, is_cont,
                                        masking.batch_rng(seed, batch.key))
    records = examples.serialize_batch(masked)
    assert len(records) == len(batch)
    seg = masked.segment_ids
    for r in range(len(batch)):
      n, la = int(batch.lengths[r]), int(batch.a_lengths[r])
      row = batch.tokens[r]
      assert 5 <= n <= max_seq_length and la >= 1 and n - la - 3 >= 1
      assert row[0] == CLS and row[la + 1] == SEP and row[n - 1] == SEP
      assert np.count_nonzero(row[:n] == SEP) == 2 and not row[n:].any()
      assert not seg[r, :la + 2].any() and seg[r, la + 2:n].all()
      assert not seg[r, n:].any()
      k = int(masked.num_predictions[r])
      assert k <= max_predictions
      # As in BERT, a whole word that would overflow n is skipped, so with
      # whole-word masking an instance can end up with no prediction.
      assert k >= 1 or whole_word or max_predictions == 0
      assert masked.masked_lm_positions.shape[1] == max_predictions
      pos = masked.masked_lm_positions[r, :k].astype(int)
      assert list(pos) == sorted(set(pos))
      assert all(0 < p < n - 1 and p != la + 1 for p in pos)
      assert np.array_equal(masked.masked_lm_ids[r, :k], row[pos])
      assert not masked.masked_lm_positions[r, k:].any()
      changed = np.flatnonzero(masked.input_ids[r] != row)
      assert set(changed.tolist()) <= set(pos.tolist())
    total += len(batch)
  assert total >= 2 * len(docs)  # every document, every pass
