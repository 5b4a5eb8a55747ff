"""python -m pipelines.learn_vocab --model=bpe and --model=unigram on the
text the project ships: the files load in the libraries themselves with
RoBERTa's and ALBERT's special tokens, pipelines.mlm makes examples with
them, the counts are those of the text, and what is refused before any
work."""

import collections
import io
import json
import os
import subprocess
import sys

import pytest

from tests.helpers import (REPO, SHIPPED_TEXT, one_error_line, read_examples,
                           run_cli, shipped_lines)

INPUT = "--input=" + ",".join(SHIPPED_TEXT)
SIZE = 1000


def _learn(out, extra=(), check=True):
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
  proc = subprocess.run([sys.executable, "-m", "pipelines.learn_vocab",
                         INPUT, "--output=" + str(out)] + list(extra),
                        cwd=REPO, env=env, capture_output=True, text=True,
                        timeout=600)
  if check:
    assert proc.returncode == 0, proc.stderr[-3000:]
  return proc


@pytest.fixture(scope="module")
def learned(tmp_path_factory):
  """A byte-level BPE and an ALBERT Unigram model (its text rules,
  lower-cased) learned from the shipped text, and a Unigram model of the
  text as it is (neither rules nor lower-casing)."""
  root = tmp_path_factory.mktemp("families")
  done = {}
  for name, out, flags in (
      ("bpe", root / "tokenizer.json", ["--model=bpe"]),
      ("unigram", root / "albert.model", ["--model=unigram"]),
      ("unigram_raw", root / "raw.model",
       ["--model=unigram", "--albert_text_rules=false",
        "--do_lower_case=false"])):
    proc = _learn(out, flags + ["--vocab_size=%d" % SIZE])
    done[name] = (str(out), proc.stderr)
  return done


def test_bpe_is_a_roberta_tokenizer_json(learned):
  from tokenizers import Tokenizer, pre_tokenizers  # pylint: disable=import-outside-toplevel
  path, stderr = learned["bpe"]
  assert ("done: wrote %s: %d tokens (5 special, 256 bytes, %d merged)"
          % (path, SIZE, SIZE - 261)) in stderr
  tokenizer = Tokenizer.from_file(path)
  assert tokenizer.get_vocab_size() == SIZE
  assert [tokenizer.id_to_token(i) for i in range(4)] == [
      "<s>", "<pad>", "</s>", "<unk>"]
  assert tokenizer.id_to_token(SIZE - 1) == "<mask>"
  assert set(pre_tokenizers.ByteLevel.alphabet()) <= set(
      tokenizer.get_vocab())
  # RoBERTa's pair layout, and text back whole (any byte, no unknown).
  pair = tokenizer.encode("The harbor town.", "Some notes.")
  assert pair.ids[0] == 0 and pair.ids[-1] == 2
  assert pair.tokens.count("</s>") == 3 and "\u0120harbor" in pair.tokens
  text = "The harbor town \u2014 caf\u00e9 \u4e2d\u6587 \U0001f600."
  assert tokenizer.decode(tokenizer.encode(text).ids) == text
  config = json.loads(open(path, encoding="utf-8").read())
  assert config["normalizer"] is None  # cased, as RoBERTa


def test_bpe_merges_are_those_of_training_on_the_text(learned):
  """The counts are exact: tokenizers' own trainer given the text itself
  (one sentence per line, as the lines format reads it) learns the same
  merges and the same vocabulary."""
  # pylint: disable=import-outside-toplevel
  from tokenizers import Tokenizer, models, pre_tokenizers, trainers
  reference = Tokenizer(models.BPE())
  reference.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
  reference.train_from_iterator(shipped_lines(), trainer=trainers.BpeTrainer(
      vocab_size=SIZE - 1, min_frequency=2,
      special_tokens=["<s>", "<pad>", "</s>", "<unk>"],
      initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
      show_progress=False))
  expected = json.loads(reference.to_str())["model"]
  with open(learned["bpe"][0], encoding="utf-8") as f:
    model = json.load(f)["model"]
  assert model["merges"] == expected["merges"]
  assert model["vocab"] == dict(expected["vocab"], **{"<mask>": SIZE - 1})


def test_bpe_counts_sentence_by_sentence(tmp_path):
  """In a format whose lines are paragraphs (jsonl), the words are counted
  per sentence as the MLM job splits and encodes them, so each sentence's
  first word has no space: the same merges as tokenizers' training on
  blingfire's sentences of the paragraphs."""
  # pylint: disable=import-outside-toplevel
  import blingfire
  from tests.helpers import sample_documents
  from tokenizers import Tokenizer, models, pre_tokenizers, trainers
  docs = [" ".join(doc) for doc in sample_documents()]
  corpus = tmp_path / "c.jsonl"
  corpus.write_text("".join(json.dumps({"text": d}) + "\n" for d in docs))
  out = tmp_path / "t.json"
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
  proc = subprocess.run(
      [sys.executable, "-m", "pipelines.learn_vocab", "--input=%s" % corpus,
       "--input_format=jsonl", "--model=bpe", "--output=%s" % out,
       "--vocab_size=600"], cwd=REPO, env=env, capture_output=True,
      text=True, timeout=600)
  assert proc.returncode == 0, proc.stderr[-3000:]
  sentences = [s for d in docs
               for s in blingfire.text_to_sentences(d).split("\n") if s]
  assert len(sentences) > len(docs)
  reference = Tokenizer(models.BPE())
  reference.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
  reference.train_from_iterator(sentences, trainer=trainers.BpeTrainer(
      vocab_size=599, min_frequency=2,
      special_tokens=["<s>", "<pad>", "</s>", "<unk>"],
      initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
      show_progress=False))
  with open(out, encoding="utf-8") as f:
    model = json.load(f)["model"]
  assert model["merges"] == json.loads(reference.to_str())["model"]["merges"]


def _pieces(sp):
  return [(sp.id_to_piece(i), sp.get_score(i))
          for i in range(sp.get_piece_size())]


def test_unigram_is_an_albert_sentencepiece_model(learned):
  import sentencepiece  # pylint: disable=import-outside-toplevel
  path, stderr = learned["unigram"]
  vocab_path = path[:-len(".model")] + ".vocab"
  assert ("done: wrote %s and %s: %d tokens (13 special and user-defined, "
          "%d learned)" % (path, vocab_path, SIZE, SIZE - 13)) in stderr
  sp = sentencepiece.SentencePieceProcessor(model_file=path)
  assert sp.get_piece_size() == SIZE
  assert [sp.id_to_piece(i) for i in range(5)] == [
      "<pad>", "<unk>", "[CLS]", "[SEP]", "[MASK]"]
  assert sp.pad_id() == 0 and sp.unk_id() == 1
  assert sp.bos_id() == sp.eos_id() == -1
  assert all(sp.is_control(i) for i in (2, 3, 4))
  assert sp.encode("[CLS]", out_type=str) != ["[CLS]"]  # never from text
  assert sp.encode("a(b", out_type=str)[-2:] == ["(", "b"]  # user-defined
  # Lower-cased and accent-free (ALBERT's rules): no upper case, no accent.
  assert not any(p != p.lower() for p, _ in _pieces(sp)[13:])
  assert "\u00e9" not in "".join(p for p, _ in _pieces(sp))
  assert b"nmt_nfkc" in sp.serialized_model_proto()
  # The .vocab beside it: sentencepiece's, each piece and its score.
  with open(vocab_path, encoding="utf-8") as f:
    rows = [line.rstrip("\n").split("\t") for line in f]
  assert [(p, float(s)) for p, s in rows] == [
      (p, pytest.approx(s, abs=1e-4)) for p, s in _pieces(sp)]


def test_unigram_counts_are_exact(learned):
  """What is exact and what is not. The model equals sentencepiece's
  trainer given the text's own word counts (each line normalized by
  nmt_nfkc and split at its spaces, counted here): the job's counts are
  the text's. Trained on the text itself, sentencepiece sees the same
  words and counts in its EM steps, but takes its seed pieces from whole
  lines, not words (learn_unigram's docstring): the same characters, most
  of the same pieces, not all."""
  import sentencepiece  # pylint: disable=import-outside-toplevel
  from transforms.vocabulary import UNIGRAM_OPTIONS  # pylint: disable=import-outside-toplevel
  learned_sp = sentencepiece.SentencePieceProcessor(
      model_file=learned["unigram_raw"][0])
  normalizer = sentencepiece.SentencePieceNormalizer(
      rule_name="nmt_nfkc", add_dummy_prefix=False, escape_whitespaces=False)
  counts = collections.Counter(
      w for line in shipped_lines()
      for w in normalizer.normalize(line).split(" ") if w)
  options = dict(UNIGRAM_OPTIONS, vocab_size=SIZE, hard_vocab_limit=False,
                 minloglevel=2)
  from_counts = io.BytesIO()
  sentencepiece.SentencePieceTrainer.train(
      sentence_iterator=iter(["%s\t%d" % kv for kv in sorted(
          counts.items(), key=lambda kv: (-kv[1], kv[0]))]),
      input_format="tsv", model_writer=from_counts, **options)
  assert _pieces(learned_sp) == _pieces(sentencepiece.SentencePieceProcessor(
      model_proto=from_counts.getvalue()))
  from_text = io.BytesIO()
  sentencepiece.SentencePieceTrainer.train(
      sentence_iterator=iter(shipped_lines()), model_writer=from_text,
      **options)
  text_sp = sentencepiece.SentencePieceProcessor(
      model_proto=from_text.getvalue())
  ours = {p for p, _ in _pieces(learned_sp)}
  theirs = {p for p, _ in _pieces(text_sp)}
  assert ({p for p in ours if len(p) == 1}
          == {p for p in theirs if len(p) == 1})
  assert len(ours & theirs) >= 0.9 * len(theirs), len(ours & theirs)


def test_the_mlm_job_takes_them(learned, tmp_path):
  """--preset=roberta with the tokenizer.json, --preset=albert with the
  .model: examples, RoBERTa's <s> and ALBERT's [CLS] first, no warning."""
  for flags, first_id, read in (
      (["--preset=roberta", "--tokenizer_file=" + learned["bpe"][0]], 0,
       dict(masking="none", sentence_task="none")),
      (["--preset=albert", "--spm_model_file=" + learned["unigram"][0]], 2,
       {})):
    out = str(tmp_path / flags[0][len("--preset="):])
    proc = run_cli([INPUT, "--output=" + out, "--max_seq_length=64",
                    "--dupe_factor=1"] + flags)
    assert "warning" not in proc.stderr, proc.stderr
    examples = read_examples(out, max_seq_length=64, **read)
    assert examples and all(ex["input_ids"][0] == first_id
                            for ex in examples)


@pytest.mark.parametrize("flags,message", [
    (["--model=wordpeice", "--output=OUT/v.txt"],
     "argument --model: invalid choice: 'wordpeice'"),
    (["--model=bpe", "--output=OUT/v.txt"],
     "--model=bpe writes a tokenizer.json: --output must end in .json"),
    (["--model=bpe", "--output=OUT/vocab.json"],
     "not RoBERTa's vocab.json and merges.txt"),
    (["--model=unigram", "--output=OUT/spm.txt"],
     "--output must end in .model"),
    (["--output=OUT/spm.model"],
     "--model=wordpiece writes BERT's vocab.txt, but --output"),
    (["--model=bpe", "--output=OUT/t.json", "--vocab_size=460"],
     "--vocab_size must be at least 461 with --model=bpe"),
    (["--model=unigram", "--output=OUT/s.model", "--vocab_size=212"],
     "--vocab_size must be at least 213 with --model=unigram"),
    (["--output=OUT/v.txt", "--vocab_size=1198"],
     "--vocab_size must be at least 1199 with --model=wordpiece"),
    (["--model=bpe", "--output=OUT/t.json", "--albert_text_rules"],
     "--albert_text_rules applies to --model=unigram only"),
    (["--model=unigram", "--output=OUT/old.model"],
     "old.vocab exists; pass --overwrite"),
])
def test_refused_before_any_work(tmp_path, flags, message):
  (tmp_path / "old.vocab").write_text("<pad>\t0\n")
  flags = [f.replace("OUT", str(tmp_path)) for f in flags]
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
  proc = subprocess.run([sys.executable, "-m", "pipelines.learn_vocab",
                         INPUT] + flags, cwd=REPO, env=env,
                        capture_output=True, text=True, timeout=300)
  assert proc.returncode == 2, proc.stderr
  assert message in one_error_line(proc.stderr)
  assert os.listdir(tmp_path) == ["old.vocab"]


def test_a_model_too_small_for_its_characters_is_one_error_line(tmp_path):
  """sentencepiece keeps every character of the text (ALBERT's coverage):
  a --vocab_size under their count fails after the count, with its
  reason, and writes nothing."""
  proc = _learn(tmp_path / "s.model", ["--model=unigram",
                                       "--albert_text_rules=false",
                                       "--vocab_size=213"], check=False)
  assert proc.returncode == 1, proc.stderr
  error = one_error_line(proc.stderr)
  assert "Vocabulary size is smaller than required_chars. 213 vs" in error
  assert "Traceback" not in proc.stderr
  assert os.listdir(tmp_path) == []
