"""transforms/tokenizer_families.py, transforms/sentencepiece_tokenizer.py
and the families in transforms/tokenization.load_tokenizer: byte-level BPE
and SentencePiece ids against each family's reference code, its special
tokens and its word boundaries.

The vocabularies are trained here from the text the project ships
(corpora/sample and corpora/multilingual); nothing is downloaded but the
reference packages from PyPI."""

import os

import numpy as np
import pytest

from oracles import references
from tests.helpers import (REPO, ROBERTA_SPECIALS, code_points, shipped_lines,
                           train_byte_level_bpe, train_sentencepiece_models)
from transforms import instances, tokenization
from transforms import tokenizer_families as families

# Lines where ALBERT's digit-comma rule and its text rules act (the last,
# digits no model here knows before commas, also on unknown pieces).
ALBERT_CASES = ["In 1,990, 2,500 and 7, the count was 12,345,678.",
                "Price: 5,50 € or ²,3 and ３, then  spaced\tout   text.",
                "Crème brûlée, naïve café; ΆΈΉ, Ǆ, ﬁ 1,",
                "", "   ", "9,", ",", "a,b,1,c",
                "Mongolian \u1811, NKo \u07c3,, \u1811,\u07c3, 9,\u1811,"]


@pytest.fixture(scope="module")
def bpe(tmp_path_factory):
  return train_byte_level_bpe(str(tmp_path_factory.mktemp("bpe")))


@pytest.fixture(scope="module")
def gpt2_encoder(bpe):
  """RoBERTa's own byte-level BPE: fairseq 0.8.0's port of GPT-2's
  encoder.py, from PyPI's source release."""
  vocab, merges, _ = bpe
  return references.fairseq_gpt2_encoder(
      os.path.join(REPO, ".cache", "tools", "fairseq"), vocab, merges)


# Every SWEEP_STEP-th code point here; every one in
# tests/e2e/test_tokenizer_sweeps.py (a minute of CPU).
SWEEP_STEP = 97


def test_byte_level_bpe_ids_are_robertas(bpe, gpt2_encoder):
  check_byte_level_bpe(bpe, gpt2_encoder, SWEEP_STEP)


def check_byte_level_bpe(bpe, gpt2_encoder, step):
  """Ids from vocab.json + merges.txt and from tokenizer.json equal those of
  transformers' RobertaTokenizer and tokenizers' ByteLevelBPETokenizer on
  the shipped text and every ``step``-th code point, and fairseq's GPT-2
  encoder (plain Python) on the shipped text and every ``13 * step``-th."""
  # pylint: disable=import-outside-toplevel
  from tokenizers import ByteLevelBPETokenizer
  from transformers import RobertaTokenizer
  vocab, merges, tokenizer_json = bpe
  from_pair, pair_vocab = tokenization.load_tokenizer(vocab_file=vocab,
                                                      merges_file=merges)
  from_json, json_vocab = tokenization.load_tokenizer(
      tokenizer_file=tokenizer_json)
  assert pair_vocab.family == json_vocab.family == "bpe"
  assert pair_vocab.tokens == json_vocab.tokens
  roberta = RobertaTokenizer.from_pretrained(os.path.dirname(vocab))
  plain = ByteLevelBPETokenizer.from_file(vocab, merges)
  for lines in (shipped_lines(), code_points(step)):
    ours = tokenization.encode_sentences(from_pair, lines)
    assert ours == tokenization.encode_sentences(from_json, lines)
    assert ours == [e.ids for e in plain.encode_batch(lines)]
    assert ours == roberta(lines, add_special_tokens=False)["input_ids"]
  for lines in (shipped_lines(), code_points(13 * step)):
    assert tokenization.encode_sentences(from_pair, lines) == [
        gpt2_encoder.encode(line) for line in lines]


def test_byte_level_bpe_specials_and_word_starts(bpe, gpt2_encoder):
  """RoBERTa's special tokens from the file; a piece starts a word exactly
  where fairseq's GPT2BPE.is_beginning_of_word says (its text, decoded by
  GPT-2's encoder, starts with a space), special tokens always."""
  vocab, merges, _ = bpe
  _, loaded = tokenization.load_tokenizer(vocab_file=vocab,
                                          merges_file=merges)
  assert loaded.special_tokens == {"cls": "<s>", "sep": "</s>",
                                   "mask": "<mask>", "pad": "<pad>",
                                   "unk": "<unk>"}
  assert (loaded.cls_id, loaded.pad_id, loaded.sep_id, loaded.unk_id,
          loaded.mask_id) == (0, 1, 2, 3, 4)
  starts = [i < len(ROBERTA_SPECIALS)
            or gpt2_encoder.decode([i]).startswith(" ")
            for i in range(len(loaded.tokens))]
  assert (~loaded.is_continuation).tolist() == starts
  assert 0 < sum(starts) < len(starts)


@pytest.fixture(scope="module")
def spm_models(tmp_path_factory):
  return train_sentencepiece_models(str(tmp_path_factory.mktemp("spm")))


def test_sentencepiece_ids_are_the_models_own(spm_models):
  check_sentencepiece(spm_models, SWEEP_STEP)


def check_sentencepiece(spm_models, step):
  """Without ALBERT's rules the ids are SentencePieceProcessor.encode's, on
  the shipped text and every ``step``-th code point, cased and
  lower-cased."""
  import sentencepiece  # pylint: disable=import-outside-toplevel
  for name in ("xlmr", "albert_bpe"):
    model = spm_models[name]
    processor = sentencepiece.SentencePieceProcessor(model_file=model)
    for lower in (False, True):
      tokenizer, vocab = tokenization.load_tokenizer(
          spm_model_file=model, do_lower_case=lower)
      assert vocab.family == "sentencepiece" and vocab.lower_case is lower
      for lines in (shipped_lines() + ALBERT_CASES, code_points(step)):
        want = processor.encode([l.lower() if lower else l for l in lines])
        assert tokenization.encode_sentences(tokenizer, lines) == want


def test_xlmr_released_layout_is_fairseqs(spm_models):
  check_xlmr_released(spm_models, SWEEP_STEP)


def check_xlmr_released(spm_models, step):
  """A model laid out as XLM-R's released sentencepiece.bpe.model (<unk>
  <s> </s> first, no <pad> or <mask>) is read through fairseq's dictionary
  as transformers 4's XLMRobertaTokenizer reads it (installed in a venv of
  its own): the same tokens at the same ids, the same ids for the shipped
  text and every ``step``-th code point, and its pair layout."""
  model = spm_models["xlmr_released"]
  python = references.ensure_xlmr_reference(
      os.path.join(REPO, ".cache", "tools", "xlmr-reference-venv"))
  tokenizer, vocab = tokenization.load_tokenizer(spm_model_file=model)
  assert tokenizer.fairseq_layout
  for lines in (shipped_lines(), code_points(step)):
    reference = references.xlmr_slow_tokenizer(python, model, lines)
    assert vocab.tokens == reference["tokens"]
    assert tokenization.encode_sentences(tokenizer, lines) == reference["ids"]
  assert vocab.special_tokens == families.ROBERTA_TOKENS.as_dict()
  assert (vocab.cls_id, vocab.pad_id, vocab.sep_id, vocab.unk_id,
          vocab.mask_id) == (0, 1, 2, 3, len(vocab.tokens) - 1)
  # The pipeline lays a pair out as the reference does (<s> A </s></s> B
  # </s>, type ids 0), padded with <pad>.
  batch = instances._to_batch(  # pylint: disable=protected-access
      (0, 0), [(np.array([10, 11]), np.array([12]), False)], 9,
      instances.sequence_layout(vocab))
  assert batch.tokens[0].tolist() == reference["pair"] + [1, 1]
  assert batch.segment_ids()[0, :7].tolist() == reference["pair_types"]


def _albert_full_tokenizer(model):
  """ALBERT's own FullTokenizer (PyPI albert-tensorflow 1.1). Its
  constructor logs through TensorFlow 1's tf.logging, which TensorFlow 2
  keeps under tf.compat.v1."""
  # pylint: disable=import-outside-toplevel
  import tensorflow as tf
  from albert import tokenization as albert
  albert.tf = tf.compat.v1
  return albert, albert.FullTokenizer(None, spm_model_file=model)


def test_albert_rules_are_alberts_own(spm_models):
  check_albert_rules(spm_models, SWEEP_STEP)


def check_albert_rules(spm_models, step):
  """With ALBERT's rules the ids are those ALBERT's create_pretraining_data
  makes: tokenization.preprocess_text, then FullTokenizer.tokenize and
  convert_tokens_to_ids, cased and lower-cased, on the shipped text, lines
  where its digit-comma rule acts, and every ``7 * step``-th code point;
  also with a model that does not know the comma."""
  for name in ("albert", "albert_bpe", "albert_no_comma"):
    model = spm_models[name]
    albert, reference = _albert_full_tokenizer(model)
    for lower in (False, True):
      tokenizer, _ = tokenization.load_tokenizer(
          spm_model_file=model, do_lower_case=lower, albert_rules=True)
      for lines in (shipped_lines() + ALBERT_CASES, code_points(7 * step)):
        want = [reference.convert_tokens_to_ids(reference.tokenize(
            albert.preprocess_text(line, lower=lower))) for line in lines]
        assert tokenization.encode_sentences(tokenizer, lines) == want


def test_sentencepiece_special_tokens_by_layout(spm_models):
  """ALBERT's special tokens where the model holds [CLS], XLM-R's
  otherwise; the pad id is the model's."""
  _, albert = tokenization.load_tokenizer(spm_model_file=spm_models["albert"])
  assert albert.special_tokens == families.ALBERT_TOKENS.as_dict()
  assert albert.pad_id == 0 and albert.tokens[albert.cls_id] == "[CLS]"
  _, xlmr = tokenization.load_tokenizer(spm_model_file=spm_models["xlmr"])
  assert xlmr.special_tokens == families.ROBERTA_TOKENS.as_dict()
  assert (xlmr.cls_id, xlmr.pad_id, xlmr.sep_id) == (0, 1, 2)


def test_a_missing_special_token_is_one_line_naming_it(spm_models, bpe):
  with pytest.raises(tokenization.VocabularyError,
                     match=r"lacks <cls> \(a sentencepiece vocabulary; name "
                     r"others with --cls_token\); its special-looking "
                     r"tokens: <pad>, <unk>, \[CLS\], \[SEP\], \[MASK\]"):
    tokenization.load_tokenizer(spm_model_file=spm_models["albert"],
                                special_token_overrides={"cls": "<cls>"})
  vocab, merges, _ = bpe
  _, loaded = tokenization.load_tokenizer(
      vocab_file=vocab, merges_file=merges,
      special_token_overrides={"mask": "<unk>"})
  assert loaded.mask_id == 3


def test_albert_word_starts():
  """ALBERT's _is_start_piece_sp (google-research/albert
  create_pretraining_data.py, not on PyPI): cases of each clause."""
  start = families.albert_is_start_piece
  assert start("\u2581the") and start("<pad>") and start(",") and start("[")
  assert not start("ing") and not start("s") and not start("!!")
  # The apostrophe is not among ALBERT's punctuation, nor a letter: a
  # piece holding one starts a word by the last clause.
  assert start("'") and start("'s") and start("s'")
  assert start("\u00e9t\u00e9") and start("\u5e74")  # foreign characters
  tokens = ["<pad>", "[CLS]", "\u2581hello", "llo", ",", "\u00e9"]
  cont = families.continuation_pieces("sentencepiece", tokens,
                                      ["<pad>", "[CLS]"])
  assert cont.tolist() == [False, False, False, True, False, False]


def test_tokenizer_json_family():
  assert families.tokenizer_json_family(
      {"model": {"type": "WordPiece"}}) == "wordpiece"
  assert families.tokenizer_json_family(
      {"model": {"type": "Unigram"}}) == "sentencepiece"
  assert families.tokenizer_json_family(
      {"model": {"type": "BPE"}, "pre_tokenizer": {"type": "ByteLevel"}}
  ) == "bpe"
  assert families.tokenizer_json_family(
      {"model": {"type": "BPE"}, "pre_tokenizer": {
          "type": "Sequence", "pretokenizers": [{"type": "Metaspace"}]}}
  ) == "sentencepiece"
  # BPE that is neither byte-level nor Metaspace, and WordLevel: BERT's
  # family (its special tokens, ## continuations).
  assert families.tokenizer_json_family(
      {"model": {"type": "BPE"}, "pre_tokenizer": {"type": "Whitespace"}}
  ) == "wordpiece"
  assert families.tokenizer_json_family(
      {"model": {"type": "WordLevel"}}) == "wordpiece"
  assert families.tokenizer_json_family(
      {"model": {"type": "BPE"}, "decoder": {"type": "ByteLevel"}}) == "bpe"
  with pytest.raises(ValueError, match="Unigram models are read"):
    families.tokenizer_json_family({"model": {"type": "Trie"}})


def test_vocab_json_needs_each_id_once():
  assert families.read_vocab_json('{"a": 1, "b": 0}', "v.json") == ["b", "a"]
  for bad in ('{"a": 0, "b": 0}', '{"a": 2}', "[1]", "not json"):
    with pytest.raises(ValueError):
      families.read_vocab_json(bad, "v.json")


def test_raw_text_never_yields_a_special_id(spm_models):
  """A SentencePiece model matches its user-defined <mask> in the text (as
  sentencepiece itself does): the pipeline makes that id the unknown
  token's, and counts it."""
  tokenizer, vocab = tokenization.load_tokenizer(
      spm_model_file=spm_models["xlmr"])
  assert vocab.mask_id in tokenization.encode_sentences(
      tokenizer, ["a <mask> b"])[0]
  docs, counts = tokenization.tokenize_documents(
      [("d", ["a <mask> b", "plain text"])], tokenizer, vocab)
  ids = docs[0].ids.tolist()
  assert vocab.mask_id not in ids and vocab.unk_id in ids
  assert counts["unknown_tokens"] >= 1
