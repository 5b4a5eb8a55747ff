"""pipelines/records.py: ALBERT's token_boundary and XLM's langs read back and
checked (the rest of what inspect checks: tests/e2e/test_inspect.py)."""

import numpy as np
import pytest

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


def _langs_output(tmp_path, output_format, batch):
  """An output of one shard holding ``batch`` with XLM's langs, and a
  summary.json that gives languages en (id 0), fr (1) and sw (2)."""
  import json  # pylint: disable=import-outside-toplevel
  import pyarrow.parquet as pq  # pylint: disable=import-outside-toplevel
  from transforms import examples, parquet  # pylint: disable=import-outside-toplevel
  layout = examples.ExampleLayout(max_seq_length=16,
                                  max_predictions_per_seq=5, langs=True)
  if output_format == "parquet":
    name = "part-00000-of-00001.parquet"
    pq.write_table(parquet.to_table(batch, langs=True), str(tmp_path / name))
    features = {f.name: str(f.type)
                for f in parquet.schema(True, "nsp", langs=True)}
  else:
    name = "part-00000-of-00001.tfrecord"
    (tmp_path / name).write_bytes(examples.serialize_framed(batch,
                                                            langs=True))
    features = {k: "int64[%d]" % n if k != "masked_lm_weights" else
                "float32[%d]" % n
                for k, n in examples.feature_lengths(layout).items()}
  summary = {"format": output_format, "features": features,
             "shards": [{"path": name}],
             "languages": {"en": {"id": 0}, "fr": {"id": 1},
                           "sw": {"id": 2}}}
  (tmp_path / "summary.json").write_text(json.dumps(summary))
  return records.open_output(str(tmp_path)), name


@pytest.mark.parametrize("output_format", ["tfrecord", "parquet"])
def test_langs_is_read_back_as_each_examples_language(tmp_path,
                                                      output_format):
  """XLM's langs reads back as one id per example (the TFRecord row holds
  it at every position, padding included; the Parquet row at every
  token); summary.json names the ids; a row of two ids is refused."""
  import dataclasses  # pylint: disable=import-outside-toplevel
  from tests.unit.test_examples import _random_batch, _with_languages  # pylint: disable=import-outside-toplevel
  batch = _with_languages(_random_batch(n=8))
  output, name = _langs_output(tmp_path, output_format, batch)
  assert output.language_names == {0: "en", 1: "fr", 2: "sw"}
  read = list(records.examples(output, name))
  assert [e.langs for e in read] == batch.languages.tolist()
  assert read[0].token_boundary is None
  # Every id is one of summary.json's; an id outside them is named.
  good = _example([CLS, 7, SEP], [1, 1, 1])
  good.langs = 2
  assert records.check_example(good, 1000, CLS, SEP, None, {0, 1, 2}) is None
  stray = dataclasses.replace(good, langs=7)
  assert records.check_example(stray, 1000, CLS, SEP) is None
  assert records.check_example(stray, 1000, CLS, SEP, None, {0, 1, 2}) == (
      "langs holds language id 7, summary.json's languages have 0, 1, 2")
  # A row whose langs changes (in the padding of a TFRecord, at a token in
  # Parquet, whose rows have no padding) is refused.
  column = -1 if output_format == "tfrecord" else 1
  assert batch.lengths[3] < batch.input_ids.shape[1]

  class Mixed(type(batch)):
    @property
    def langs(self):
      out = super().langs.copy()
      out[3, column] += 1
      return out

  mixed = Mixed(**{f.name: getattr(batch, f.name)
                   for f in dataclasses.fields(batch)})
  output, name = _langs_output(tmp_path, output_format, mixed)
  with pytest.raises(records.InvalidOutput, match="record 3: langs is not "
                     "one language id over the row"):
    list(records.examples(output, name))


def test_inspect_names_the_language():
  from pipelines import inspect  # pylint: disable=import-outside-toplevel
  example = _example([CLS, 7, SEP], [1, 1, 1])
  example.token_boundary = None
  example.langs = 1
  vocab = ["t%d" % i for i in range(200)]
  assert "language sw (langs 1)" in inspect.render(
      example, vocab, "none", {0: "en", 1: "sw"})[0]
  example.langs = None
  assert "language" not in inspect.render(example, vocab, "none")[0]
