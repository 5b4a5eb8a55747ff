"""--preset=albert's records as ALBERT's own trainer reads them: the input
function of google-research/albert's run_pretraining.py (PyPI
albert-tensorflow 1.1, run by oracles/references.py) parses them unchanged,
with masks made here (--masked_lm_budget=0) and with masking left to it
(--masked_lm_budget > 0, from token_boundary), and gets what the pipeline
wrote."""

import re
import subprocess

import pytest

from oracles import references
from pipelines import records
from tests.helpers import SHIPPED_TEXT, run_cli
from transforms import tokenizer_families as families

INPUT = "--input=" + ",".join(SHIPPED_TEXT)
LENGTH, PREDICTIONS = 64, 20


def _run(model, out, flags=()):
  run_cli([INPUT, "--output=" + out, "--spm_model_file=" + model,
           "--preset=albert", "--max_seq_length=%d" % LENGTH,
           "--dupe_factor=2", "--do_lower_case=false"] + list(flags))
  output = records.open_output(out)
  files = [output.shard_path(s["path"]) for s in output.shards]
  mine = [e for s in output.shards for e in records.examples(output,
                                                             s["path"])]
  return output, files, mine


def _padded(values, width):
  return list(values) + [0] * (width - len(values))


def _expected_boundary(example, processor):
  """ALBERT's token_boundary of the example's original tokens, as its
  create_masked_lm_predictions fills it: 1 for [CLS] and [SEP], else 1 for
  a start piece by _is_start_piece_sp (the pieces' text from the model
  itself), 0 in the padding."""
  ids = example.input_ids.copy()
  ids[example.masked_positions] = example.masked_ids
  pieces = [processor.id_to_piece(int(i)) for i in ids]
  return _padded([1 if p in ("[CLS]", "[SEP]")
                  else int(families.albert_is_start_piece(p))
                  for p in pieces], LENGTH)


def test_albert_run_pretraining_reads_the_albert_preset(spm_models,
                                                         tmp_path):
  """Every example as ALBERT's input_fn gives it to its model, under
  --masked_lm_budget=0 (the masked_lm_* features) and 0.15 (token_boundary
  instead), equals the example the pipeline wrote as pipelines.records
  reads it back; token_boundary is 1 at [CLS], [SEP] and the start pieces
  of the original tokens, 0 at continuation pieces (masked ones too) and
  in the padding."""
  import sentencepiece  # pylint: disable=import-outside-toplevel
  model = spm_models["albert"]
  processor = sentencepiece.SentencePieceProcessor(model_file=model)
  output, files, mine = _run(model, str(tmp_path / "albert"))
  assert output.options["token_boundary"] is True
  assert output.features["token_boundary"] == "int64[%d]" % LENGTH
  assert mine
  offline, in_trainer = references.albert_input_fn(
      files, LENGTH, PREDICTIONS, [0, 0.15], len(mine))
  assert len(offline) == len(in_trainer) == len(mine)
  assert "token_boundary" not in offline[0]
  assert "masked_lm_positions" not in in_trainer[0]
  masked_continuations = continuations = 0
  for example, a, b in zip(mine, offline, in_trainer):
    n = len(example.input_ids)
    for parsed in (a, b):
      assert parsed["input_ids"] == _padded(example.input_ids, LENGTH)
      assert parsed["input_mask"] == [1] * n + [0] * (LENGTH - n)
      assert parsed["segment_ids"] == _padded(example.segment_ids, LENGTH)
      assert parsed["next_sentence_labels"] == [example.label]
    k = len(example.masked_positions)
    assert a["masked_lm_positions"] == _padded(example.masked_positions,
                                               PREDICTIONS)
    assert a["masked_lm_ids"] == _padded(example.masked_ids, PREDICTIONS)
    assert a["masked_lm_weights"] == [1.0] * k + [0.0] * (PREDICTIONS - k)
    assert b["token_boundary"] == _padded(example.token_boundary, LENGTH)
    want = _expected_boundary(example, processor)
    assert b["token_boundary"] == want
    continuations += want[:n].count(0)
    masked_continuations += sum(1 for p in example.masked_positions
                                if not want[p])
  # The rule is exercised: continuation pieces, masked ones among them.
  assert continuations > 100 and masked_continuations > 10


def test_albert_masks_in_its_trainer_from_the_dynamic_preset(spm_models,
                                                             tmp_path):
  """--preset=albert --masking=none writes no masked_lm_* features: ALBERT's
  input_fn reads the records with --masked_lm_budget > 0, token_boundary
  for the masking it does itself, and refuses them without (it asks for the
  masked_lm_* features)."""
  _, files, mine = _run(spm_models["albert"], str(tmp_path / "dynamic"),
                        ["--masking=none"])
  [parsed] = references.albert_input_fn(files, LENGTH, PREDICTIONS, [0.15],
                                        len(mine))
  assert [p["token_boundary"] for p in parsed] == [
      _padded(e.token_boundary, LENGTH) for e in mine]
  assert [p["input_ids"] for p in parsed] == [
      _padded(e.input_ids, LENGTH) for e in mine]
  with pytest.raises(subprocess.CalledProcessError) as refused:
    references.albert_input_fn(files, LENGTH, PREDICTIONS, [0], 1)
  assert re.search(r"Feature: masked_lm_\w+ \(data type: \w+\) is required",
                   refused.value.stderr), refused.value.stderr[-2000:]
