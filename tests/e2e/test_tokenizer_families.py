"""Each tokenizer family through the command line: a SentencePiece model
with --preset=albert masks whole words by ALBERT's rule, byte-level BPE from
a tokenizer.json or vocab.json + merges.txt makes the same examples with
RoBERTa's special tokens, and what is refused before any work."""

import os
import subprocess
import sys

import numpy as np
import pytest

from tests.helpers import (REPO, SHIPPED_TEXT, assert_refused, digest,
                           read_examples, run_cli)
from transforms import tokenization

INPUT = "--input=" + ",".join(SHIPPED_TEXT)


def _inspect(output):
  return subprocess.run([sys.executable, "-m", "pipelines.inspect", output,
                         "--num=1"], cwd=REPO, capture_output=True,
                        text=True, timeout=300,
                        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"))


def _words_masked_in_part(examples, vocab):
  """Words of which some pieces but not all were chosen for prediction.
  Words as the n-gram masking of --preset=albert takes them (TF Model
  Garden's _tokens_to_grams): a start piece and the continuation pieces
  after it, never across [CLS] or [SEP] (a segment that truncation began
  mid-word starts a word there)."""
  partial = whole = 0
  for ex in examples:
    length = int(ex["input_mask"].sum())
    weights = ex["masked_lm_weights"] > 0
    positions = ex["masked_lm_positions"][weights]
    # The original ids: the labels put back where predicted.
    ids = ex["input_ids"][:length].copy()
    ids[positions] = ex["masked_lm_ids"][weights]
    special = (ids == vocab.cls_id) | (ids == vocab.sep_id)
    after_special = np.concatenate(([True], special[:-1]))
    starts = special | ~vocab.is_continuation[ids] | after_special
    word = np.cumsum(starts)
    chosen = np.zeros(length, dtype=bool)
    chosen[positions] = True
    for w in np.unique(word[chosen]):
      pieces = chosen[word == w]
      if pieces.size > 1:
        partial += int(not pieces.all())
        whole += int(pieces.all())
  return partial, whole


def test_albert_preset_with_a_sentencepiece_model(spm_models, tmp_path):
  """--preset=albert (whole-word n-grams) over ALBERT's SentencePiece model:
  every word of several pieces is masked whole, none in part; the
  special tokens are the model's."""
  model = spm_models["albert"]
  out = str(tmp_path / "albert")
  proc = run_cli([INPUT, "--output=" + out, "--spm_model_file=" + model,
                  "--preset=albert", "--max_seq_length=64",
                  "--dupe_factor=3", "--do_lower_case=false"])
  assert "warning" not in proc.stderr, proc.stderr
  _, vocab = tokenization.load_tokenizer(spm_model_file=model,
                                         albert_rules=True,
                                         do_lower_case=False)
  examples = read_examples(out, max_seq_length=64)
  assert examples
  partial, whole = _words_masked_in_part(examples, vocab)
  assert partial == 0 and whole > 20, (partial, whole)
  first = examples[0]["input_ids"]
  assert first[0] == vocab.cls_id == 2  # [CLS], after <pad> and <unk>
  # pipelines.inspect decodes and checks it with the model summary.json
  # names ([CLS] first, ids in the vocabulary), not BERT's vocabulary.
  proc = _inspect(out)
  assert proc.returncode == 0, proc.stdout + proc.stderr
  assert " valid" in proc.stdout and "\u2581" in proc.stdout  # its pieces


def test_byte_level_bpe_from_either_file_makes_the_same_examples(bpe,
                                                                tmp_path):
  vocab_json, merges, tokenizer_json = bpe
  flags = [INPUT, "--preset=roberta", "--max_seq_length=64"]
  from_json = str(tmp_path / "json")
  run_cli(flags + ["--output=" + from_json, "--tokenizer_file=" +
                   tokenizer_json])
  from_pair = str(tmp_path / "pair")
  proc = run_cli(flags + ["--output=" + from_pair, "--vocab_file=" +
                          vocab_json, "--merges_file=" + merges])
  assert "warning" not in proc.stderr, proc.stderr
  options = dict(max_seq_length=64, masking="none", sentence_task="none")
  examples = read_examples(from_pair, **options)
  assert digest(read_examples(from_json, **options)) == digest(examples)
  # <s> ... </s>, with </s> between documents too.
  row = examples[0]["input_ids"]
  length = int(examples[0]["input_mask"].sum())
  assert row[0] == 0 and row[length - 1] == 2
  # Padded with RoBERTa's <pad> (1), not 0 (its <s>).
  assert all(ex["input_ids"][int(ex["input_mask"].sum()):].tolist()
             == [1] * (64 - int(ex["input_mask"].sum())) for ex in examples)
  assert any(ex["input_mask"].sum() < 64 for ex in examples)
  proc = _inspect(from_pair)
  assert proc.returncode == 0, proc.stdout + proc.stderr
  assert " valid" in proc.stdout


def test_xlmr_released_model_through_the_command(spm_models, tmp_path):
  """XLM-R's released model layout (no <pad>, no <mask>) with
  --preset=roberta: fairseq's ids (<s> 0, <pad> 1, </s> 2, <mask> last),
  RoBERTa's layout, and inspect decodes it."""
  model = spm_models["xlmr_released"]
  out = str(tmp_path / "xlmr")
  proc = run_cli([INPUT, "--output=" + out, "--spm_model_file=" + model,
                  "--preset=roberta", "--max_seq_length=64"])
  assert "warning" not in proc.stderr, proc.stderr
  _, vocab = tokenization.load_tokenizer(spm_model_file=model)
  assert (vocab.pad_id, vocab.mask_id) == (1, len(vocab.tokens) - 1)
  examples = read_examples(out, max_seq_length=64, masking="none",
                           sentence_task="none")
  assert examples
  for ex in examples:
    n = int(ex["input_mask"].sum())
    assert ex["input_ids"][0] == 0 and ex["input_ids"][n - 1] == 2
    assert ex["input_ids"][n:].tolist() == [1] * (64 - n)
    # Inside: pieces, and </s> between documents; never <s> or <pad>.
    assert not np.isin(ex["input_ids"][1:n - 1], [0, 1]).any()
  assert any(ex["input_mask"].sum() < 64 for ex in examples)
  proc = _inspect(out)
  assert proc.returncode == 0, proc.stdout + proc.stderr
  assert " valid" in proc.stdout and "\u2581" in proc.stdout


def test_a_preset_of_another_family_warns(tmp_path):
  proc = run_cli([INPUT, "--output=" + str(tmp_path / "out"),
                  "--preset=roberta", "--max_seq_length=64"])
  warnings = [l for l in proc.stderr.splitlines() if l.startswith("warning:")]
  assert len(warnings) == 1 and "--preset=roberta" in warnings[0]
  assert "WordPiece" in warnings[0], warnings


@pytest.mark.parametrize("flags,message", [
    (["--spm_model_file=MODEL", "--cls_token=<cls>"],
     "lacks <cls> (a sentencepiece vocabulary; name others with "
     "--cls_token); its special-looking tokens: <pad>, <unk>, [CLS]"),
    (["--spm_model_file=MODEL", "--tokenizer_file=x.json"],
     "--tokenizer_file and --spm_model_file both name a tokenizer"),
    (["--merges_file=m.txt"], "--merges_file needs --vocab_file="),
    (["--spm_model_file=" + os.path.join(REPO, "setup.py")],
     "SentencePiece model"),
    (["--spm_model_file=XLMR", "--max_seq_length=5"],
     "--max_seq_length must be at least 6 for segment pairs in this "
     "tokenizer's layout (<s> A </s></s> B </s>"),
])
def test_refused_before_any_work(spm_models, tmp_path, flags, message):
  flags = [f.replace("MODEL", spm_models["albert"]).replace(
      "XLMR", spm_models["xlmr"]) for f in flags]
  assert_refused([INPUT, "--output=" + str(tmp_path / "out")] + flags,
                 message)
  assert not os.path.exists(str(tmp_path / "out"))
