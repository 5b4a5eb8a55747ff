"""pipelines/report.py's statistics, exact on a small output written here
record by record (the command: tests/e2e/test_report.py)."""

import numpy as np
import pytest

from pipelines import records
from pipelines import report
from tests.helpers import VOCAB, write_known_output


@pytest.fixture(name="known")
def _known(tmp_path):
  """Three examples whose statistics are worked out by hand
  (tests/helpers.py's ``write_known_output``)."""
  return write_known_output(str(tmp_path / "known"))


def test_statistics_of_a_known_output_are_exact(known):
  from transforms.tokenization import load_tokenizer  # pylint: disable=import-outside-toplevel
  _, vocab = load_tokenizer(vocab_file=VOCAB)
  output = records.open_output(known)
  examples = report.sample_examples(output, 10, 0)
  stats = report.statistics(examples, vocab.tokens, {"a": 10, "b": 30},
                            vocab.mask_id, vocab.unk_id,
                            (vocab.cls_id, vocab.sep_id, 0))
  assert stats.examples == 3
  assert stats.sequence_lengths.tolist() == [7, 6, 4]
  assert stats.predictions.tolist() == [2, 1, 0]
  assert stats.shown == {"[MASK]": 1, "random": 1, "original": 1}
  assert stats.labels == {1: 1, 0: 2}
  assert sorted(stats.run_lengths.tolist()) == [1, 2]
  assert stats.masked_tokens == {"cat": 1, "sat": 1, "mat": 1}
  # Text tokens with the originals restored: the cat sat on / a mat [UNK] /
  # [UNK] is.
  assert (stats.tokens, stats.unknown_tokens) == (4 + 3 + 2, 2)
  summary = stats.summary()
  assert summary["mean_sequence_length"] == pytest.approx(17 / 3)
  assert summary["share_label_1"] == pytest.approx(1 / 3)
  assert summary["unknown_token_rate"] == pytest.approx(2 / 9)
  assert summary["bytes"] == 40 and summary["shards"] == 2


def test_masked_runs():
  assert report.masked_runs(np.array([3, 4, 5, 9, 12, 13])) == [3, 1, 2]
  assert report.masked_runs(np.array([], np.int64)) == []


def test_sampling_reads_no_more_than_asked(known):
  output = records.open_output(known)
  assert len(report.sample_examples(output, 2, 0)) == 2


def _example(ids, boundary, positions=(), originals=()):
  return records.Example("s", 0, np.array(ids), np.zeros(len(ids), np.int64),
                         np.array(positions, np.int64),
                         np.array(originals, np.int64), None,
                         None if boundary is None else np.array(boundary))


def test_word_starts_come_from_the_token_boundary():
  """The share of text tokens ([CLS], [SEP] and padding left out) that
  start a word, where the examples hold ALBERT's token_boundary; None
  (and no comparison row) where they do not."""
  cls, sep, mask = 101, 102, 103
  with_boundary = [
      _example([cls, 7, 8, 9, sep], [1, 1, 0, 1, 1]),
      _example([cls, 7, mask, sep, 10, sep], [1, 1, 0, 1, 1, 1], [2], [8]),
  ]
  stats = report.statistics(with_boundary, ["t"] * 200, {"a": 1}, mask, 100,
                            (cls, sep, 0))
  assert (stats.boundary_tokens, stats.word_starts) == (6, 4)
  assert stats.summary()["share_word_start"] == pytest.approx(4 / 6)
  plain = report.statistics([_example([cls, 7, 8, sep], None)], ["t"] * 200,
                            {"a": 1}, mask, 100, (cls, sep, 0))
  assert plain.summary()["share_word_start"] is None
  rows = {r["statistic"]: r for r in report.compare(stats, stats)}
  row = rows["word starts among text tokens (token_boundary)"]
  assert row["output"] == row["other"] == pytest.approx(4 / 6)
  assert not any("token_boundary" in r for r in
                 [r["statistic"] for r in report.compare(stats, plain)])
