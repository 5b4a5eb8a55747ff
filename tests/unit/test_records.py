"""pipelines/records.py: ALBERT's token_boundary read back and checked
(the rest of what inspect checks: tests/e2e/test_inspect.py)."""

import numpy as np

from pipelines import records

CLS, SEP, MASK = 101, 102, 103


def _example(ids, boundary, positions=(), originals=()):
  return records.Example("part-0", 4, np.array(ids, np.int64),
                         np.zeros(len(ids), np.int64),
                         np.array(positions, np.int64),
                         np.array(originals, np.int64), 0,
                         np.array(boundary, np.int64))


def test_token_boundary_is_checked():
  """0 and 1 only, 1 at [CLS] and the last [SEP], and, given the
  vocabulary's continuation pieces, its word starts of the original tokens
  (the masked ones put back)."""
  cont = np.zeros(1000, bool)
  cont[500] = True  # a ## piece
  # [CLS] 7 ##500 [SEP] 9 [SEP], the ## piece shown as [MASK].
  good = _example([CLS, 7, MASK, SEP, 9, SEP], [1, 1, 0, 1, 1, 1], [2], [500])
  assert records.check_example(good, 1000, CLS, SEP) is None
  assert records.check_example(good, 1000, CLS, SEP, cont) is None
  for boundary, message in (
      ([1, 1, 2, 1, 1, 1], "values other than 0 and 1"),
      ([0, 1, 0, 1, 1, 1], "not 1 at [CLS] and the last [SEP]"),
      ([1, 1, 0, 1, 1, 0], "not 1 at [CLS] and the last [SEP]")):
    bad = _example([CLS, 7, MASK, SEP, 9, SEP], boundary, [2], [500])
    assert message in records.check_example(bad, 1000, CLS, SEP)
  wrong = _example([CLS, 7, MASK, SEP, 9, SEP], [1, 1, 1, 1, 0, 1], [2],
                   [500])
  assert records.check_example(wrong, 1000, CLS, SEP) is None
  assert "token_boundary is 1 at position 2" in records.check_example(
      wrong, 1000, CLS, SEP, cont)


def test_a_plain_file_of_alberts_script_is_read(tmp_path):
  """A TFRecord file without summary.json whose records hold ALBERT's
  token_boundary besides BERT's seven features reads as one (its
  token_boundary unpadded); one that is not 0 in the padding is
  refused."""
  import pytest  # pylint: disable=import-outside-toplevel
  from tests.unit.test_examples import _random_batch, _with_boundary  # pylint: disable=import-outside-toplevel
  from transforms import examples  # pylint: disable=import-outside-toplevel
  batch = _with_boundary(_random_batch(n=6))
  path = tmp_path / "albert.tfrecord"
  path.write_bytes(examples.serialize_framed(batch, boundary=True))
  output = records.open_output(str(path))
  read = list(records.examples(output, "albert.tfrecord"))
  assert len(read) == 6
  for i, example in enumerate(read):
    n = int(batch.lengths[i])
    assert example.token_boundary.tolist() == (
        batch.token_boundary[i, :n].tolist())
  batch.token_boundary[3, -1] = 1
  assert batch.lengths[3] < batch.token_boundary.shape[1]
  path.write_bytes(examples.serialize_framed(batch, boundary=True))
  with pytest.raises(records.InvalidOutput, match="record 3: token_boundary "
                     "is not 0 in the padding"):
    list(records.examples(records.open_output(str(path)), "albert.tfrecord"))
