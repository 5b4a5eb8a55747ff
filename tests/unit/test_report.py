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
