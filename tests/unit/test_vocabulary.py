"""transforms/vocabulary.py: each model's words, CountWords on a
TestPipeline, and the learners against the libraries trained on the text
itself."""

import collections
import json
import pickle
import random

import apache_beam as beam
import pytest
from apache_beam.testing.util import assert_that, equal_to

from tests.helpers import local_test_pipeline, shipped_lines
from transforms import tokenization
from transforms import vocabulary
from transforms.sentencepiece_tokenizer import SentencePieceTokenizer


def test_byte_level_words_are_robertas():
  split = vocabulary.byte_level_word_splitter(False)
  assert split("Hi  there.") == ["Hi", "\u0120", "\u0120there", "."]
  assert split("It's café") == ["It", "'s", "\u0120caf\u00c3\u00a9"]
  assert vocabulary.byte_level_word_splitter(True)("Hi THERE") == [
      "hi", "\u0120there"]
  # What the pipeline's byte-level BPE (RoBERTa's configuration) splits.
  tokenizer, _ = tokenization.byte_level_bpe(
      json.dumps({"<unk>": 0}), "vocab.json", "#version: 0.2\n",
      "merges.txt")
  text = "A  sentence, with\tspaces 12 and \u00e9t\u00e9 \u4e2d\u6587!"
  assert split(text) == [
      w for w, _ in tokenizer.pre_tokenizer.pre_tokenize_str(text)]


def test_sentencepiece_words():
  plain = vocabulary.sentencepiece_word_splitter(False, False)
  # nmt_nfkc: full-width letters, the ideographic space, the fi ligature,
  # a control character removed, a zero-width space a space.
  assert plain("\uff28i\u3000there  \ufb01ne a\x1cb c\u200bd") == [
      "Hi", "there", "fine", "ab", "c", "d"]
  assert plain("Caf\u00e9") == ["Caf\u00e9"]
  lower = vocabulary.sentencepiece_word_splitter(True, False)
  assert lower("Caf\u00e9 OK") == ["caf\u00e9", "ok"]
  albert = vocabulary.sentencepiece_word_splitter(True, True)
  assert albert("Caf\u00e9  \u00c9T\u00c9") == ["cafe", "ete"]
  # The words of the text as the pipeline hands it to a learned model and
  # as that model's own normalizer makes of it (▁ at each word start).
  model, _ = vocabulary.learn_unigram([("one", 2), ("two", 1)], 213)
  text = "\u00c9l\u00e8ve  OK\u3000x \ufb01 a\tb"
  for lower_case, rules in ((True, True), (False, True), (True, False),
                            (False, False)):
    tokenizer = SentencePieceTokenizer(model, lower_case, rules)
    normalized = tokenizer._sp.normalize(tokenizer.prepare(text))  # pylint: disable=protected-access
    assert vocabulary.sentencepiece_word_splitter(lower_case, rules)(
        text) == [w for w in normalized.split("\u2581") if w]


def test_word_rules():
  rules = vocabulary.WordRules(model="unigram", do_lower_case=False,
                               albert_rules=True)
  assert pickle.loads(pickle.dumps(rules)) == rules
  assert rules.splitter()("R\u00e9sum\u00e9 one") == ["Resume", "one"]
  assert vocabulary.WordRules().splitter()("Don't") == ["don", "'", "t"]
  assert vocabulary.WordRules(model="bpe", do_lower_case=False).splitter()(
      "Don't") == ["Don", "'t"]
  with pytest.raises(ValueError, match="model 'gpt' is not one of"):
    vocabulary.WordRules(model="gpt")


@pytest.mark.parametrize("model,expected", [
    ("wordpiece", [("the", 3), ("cat", 2), (".", 2), ("a", 1)]),
    ("bpe", [("\u0120cat", 2), (".", 2), ("\u0120the", 1), ("the", 1)]),
    ("unigram", [("the", 2), ("cat.", 2), ("a", 1), ("The", 1)]),
])
def test_count_words(model, expected):
  """Two documents, one text per sentence; the top four, most frequent
  first, ties broken by the word that sorts last. Lower-cased for
  wordpiece only; byte-level words carry their space."""
  docs = [("a:0", ["The cat.", "the cat."]), ("b:0", ["a the"])]
  words = vocabulary.WordRules(model=model, do_lower_case=model == "wordpiece",
                               albert_rules=False)
  with local_test_pipeline() as p:
    top = (p | beam.Create(docs)
           | vocabulary.CountWords(words=words, max_words=4))
    assert_that(top, equal_to([expected]))


def _text_counts(lines, split):
  return collections.Counter(w for line in lines for w in split(line))


def test_bpe_from_counts_is_bpe_from_the_text():
  """The same words and counts make the same merges as tokenizers'
  trainer given the text, whatever order the counts come in."""
  # pylint: disable=import-outside-toplevel
  from tokenizers import Tokenizer, models, pre_tokenizers, trainers
  lines = shipped_lines()
  counts = list(_text_counts(
      lines, vocabulary.byte_level_word_splitter(False)).items())
  random.Random(0).shuffle(counts)
  learned = json.loads(vocabulary.learn_byte_level_bpe(counts, 700))
  reference = Tokenizer(models.BPE())
  reference.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
  reference.train_from_iterator(lines, trainer=trainers.BpeTrainer(
      vocab_size=699, min_frequency=2, special_tokens=["<s>", "<pad>",
                                                       "</s>", "<unk>"],
      initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
      show_progress=False))
  expected = json.loads(reference.to_str())["model"]
  assert learned["model"]["merges"] == expected["merges"]
  assert learned["model"]["vocab"] == dict(expected["vocab"], **{"<mask>": 699})


def test_bpe_layout_is_robertas():
  from tokenizers import pre_tokenizers  # pylint: disable=import-outside-toplevel
  counts = _text_counts(shipped_lines(),
                        vocabulary.byte_level_word_splitter(True))
  text = vocabulary.learn_byte_level_bpe(list(counts.items()), 600,
                                         do_lower_case=True)
  config = json.loads(text)
  vocab = config["model"]["vocab"]
  assert len(vocab) == 600
  by_id = sorted(vocab, key=vocab.get)
  assert by_id[:4] == ["<s>", "<pad>", "</s>", "<unk>"]
  assert by_id[-1] == "<mask>"
  assert set(by_id[4:260]) == set(pre_tokenizers.ByteLevel.alphabet())
  assert [(t["id"], t["content"], t["special"]) for t in
          config["added_tokens"]] == [(0, "<s>", True), (1, "<pad>", True),
                                      (2, "</s>", True), (3, "<unk>", True),
                                      (599, "<mask>", True)]
  assert config["normalizer"]["type"] == "Lowercase"
  assert config["pre_tokenizer"] == {"type": "ByteLevel",
                                     "add_prefix_space": False,
                                     "trim_offsets": True, "use_regex": True}
  assert config["post_processor"]["type"] == "RobertaProcessing"
  assert config["post_processor"]["cls"] == ["<s>", 0]
  assert config["post_processor"]["sep"] == ["</s>", 2]
  with pytest.raises(ValueError, match="no words"):
    vocabulary.learn_byte_level_bpe([("", 3), ("x", 0)], 600)


def _pieces(model: bytes):
  import sentencepiece  # pylint: disable=import-outside-toplevel
  sp = sentencepiece.SentencePieceProcessor(model_proto=model)
  return sp, [(sp.id_to_piece(i), sp.get_score(i))
              for i in range(sp.get_piece_size())]


def test_unigram_layout_is_alberts():
  counts = _text_counts(shipped_lines(),
                        vocabulary.sentencepiece_word_splitter(True, True))
  model, vocab = vocabulary.learn_unigram(list(counts.items()), 600)
  sp, pieces = _pieces(model)
  assert sp.get_piece_size() == 600
  assert [p for p, _ in pieces[:13]] == [
      "<pad>", "<unk>", "[CLS]", "[SEP]", "[MASK]", "(", ")", '"', "-", ".",
      "\u2013", "\u00a3", "\u20ac"]
  assert sp.pad_id() == 0 and sp.unk_id() == 1 and sp.bos_id() == -1
  assert [sp.is_control(i) for i in range(2, 6)] == [True, True, True, False]
  # User-defined symbols are pieces of their own, even inside a word.
  assert sp.encode("x(y", out_type=str) == ["\u2581", "x", "(", "y"]
  assert vocab.decode("utf-8").splitlines()[:3] == ["<pad>\t0", "<unk>\t0",
                                                    "[CLS]\t0"]
  assert len(vocab.decode("utf-8").splitlines()) == 600
  with pytest.raises(ValueError, match="no words"):
    vocabulary.learn_unigram([], 600)
  with pytest.raises(RuntimeError, match="Vocabulary size is smaller"):
    vocabulary.learn_unigram(list(counts.items()), 100)


def test_unigram_takes_the_counts_as_sentencepiece_does():
  """learn_unigram is sentencepiece's trainer given word<TAB>count lines:
  the same pieces and scores whatever order the pairs come in, and a tab
  or a line break in a word is the space sentencepiece would make of it."""
  import io  # pylint: disable=import-outside-toplevel
  import sentencepiece  # pylint: disable=import-outside-toplevel
  counts = _text_counts(shipped_lines(),
                        vocabulary.sentencepiece_word_splitter(False, False))
  ordered = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
  shuffled = list(ordered)
  random.Random(1).shuffle(shuffled)
  _, learned = _pieces(vocabulary.learn_unigram(shuffled, 700)[0])
  reference = io.BytesIO()
  sentencepiece.SentencePieceTrainer.train(
      sentence_iterator=iter(["%s\t%d" % kv for kv in ordered]),
      input_format="tsv", model_writer=reference, vocab_size=700,
      hard_vocab_limit=False, minloglevel=2, **vocabulary.UNIGRAM_OPTIONS)
  assert learned == _pieces(reference.getvalue())[1]
  # "a\tb" counted twice is "a b": the words a and b, twice each.
  _, with_tab = _pieces(vocabulary.learn_unigram(
      [("alpha\tbeta", 2), ("gamma", 1)], 213)[0])
  _, with_space = _pieces(vocabulary.learn_unigram(
      [("alpha beta", 2), ("gamma", 1)], 213)[0])
  assert with_tab == with_space
