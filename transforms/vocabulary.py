"""CountWords: documents → the most frequent words of a corpus, and the
vocabularies learned from them (``python -m pipelines.learn_vocab``): BERT's
WordPiece ``vocab.txt``, RoBERTa's byte-level BPE ``tokenizer.json``,
ALBERT's SentencePiece Unigram ``.model``.

A word is what the model's learner sees once the text is normalized and
split as the pipeline's tokenizer of that family takes it (``WordRules``):

* ``wordpiece``: BERT's text rules (``BertNormalizer``: control characters
  removed, whitespace unified, CJK characters spaced, lower-casing and
  accent stripping when uncased) and its pre-tokenization
  (``BertPreTokenizer``: whitespace and punctuation), both from
  ``tokenizers``, as the pipeline's own tokenizer uses them
  (``transforms/tokenization.py``).
* ``bpe``: GPT-2's byte-level pre-tokenization as RoBERTa's tokenizer has
  it (``tokenizers``' ``ByteLevel`` without a prefix space: GPT-2's regex
  split, each byte written as one character, a space as ``Ġ``), after
  ``tokenizers``' ``Lowercase`` when asked. A sentence's first word has no
  ``Ġ``, so words are counted sentence by sentence, as the pipeline encodes
  them (``pipelines.learn_vocab`` splits sentences first).
* ``unigram``: SentencePiece's words: the text as the pipeline hands it to
  the model (ALBERT's text rules, ``albert_preprocess``, when asked; else
  lower-cased when asked), normalized by SentencePiece's own ``nmt_nfkc``
  rules (NFKC, control characters removed, whitespace unified and runs of it
  collapsed) and split at its spaces, as ``sentencepiece``'s trainer splits
  sentences (``split_by_whitespace``).

Counting is a Beam combiner; the top ``max_words`` are kept with
``Top.Of``, whose accumulators hold at most that many words, so memory does
not grow with the corpus.

Each learner runs on one machine and takes ``(word, count)`` pairs, so the
counts can be weighed (per language, say) before it: ``learn_wordpiece``
(``tokenizers``' WordPiece trainer; why not TF Text's learner is said there;
laid out as BERT's ``vocab.txt`` by ``bert_layout``), ``learn_byte_level_bpe``
(``tokenizers``' BPE trainer) and ``learn_unigram`` (``sentencepiece``'s
trainer, with ALBERT's options). Each holds at most the ``max_words`` words
it is given; what that costs is said in each.
"""

import collections
import dataclasses
import json
import math
import os
import tempfile
from typing import Callable, Dict, Iterable, Iterator, List, Sequence, Tuple

import apache_beam as beam

from transforms import metrics
from transforms.tokenizer_families import ALBERT_TOKENS, ROBERTA_TOKENS

MODELS = ("wordpiece", "bpe", "unigram")

# BERT's vocab.txt: [PAD], [unused0..98], [UNK], [CLS], [SEP], [MASK],
# [unused99..993], then the pieces (google-research/bert's uncased and cased
# vocabularies alike: [UNK] is id 100, [CLS] 101, [SEP] 102, [MASK] 103).
RESERVED = (["[PAD]"] + ["[unused%d]" % i for i in range(99)]
            + ["[UNK]", "[CLS]", "[SEP]", "[MASK]"]
            + ["[unused%d]" % i for i in range(99, 994)])
MIN_VOCAB_SIZE = len(RESERVED) + 200

# RoBERTa's special tokens where fairseq's dictionary puts them: <s> 0,
# <pad> 1, </s> 2, <unk> 3 first, <mask> last (roberta-base: 50264 of 50265).
BPE_FIRST = (ROBERTA_TOKENS.cls, ROBERTA_TOKENS.pad, ROBERTA_TOKENS.sep,
             ROBERTA_TOKENS.unk)
BPE_LAST = ROBERTA_TOKENS.mask
BYTE_ALPHABET = 256
# Pairs seen fewer times are not merged: tokenizers' ByteLevelBPETokenizer's
# default, kept by Hugging Face's recipe for a RoBERTa from scratch
# (huggingface.co/blog/how-to-train, which puts <mask> at 4, not last).
BPE_MIN_FREQUENCY = 2

# ALBERT's SentencePiece options, as google-research/albert's README gives
# the spm_train command of its 30k-clean.model: <pad> 0, <unk> 1, no <s> or
# </s>, [CLS] [SEP] [MASK] control symbols (2, 3, 4), these punctuation
# marks user-defined symbols (always pieces of their own, 5..12),
# character coverage 0.99995, Unigram.
UNIGRAM_CONTROL = (ALBERT_TOKENS.cls, ALBERT_TOKENS.sep, ALBERT_TOKENS.mask)
UNIGRAM_USER_DEFINED = ("(", ")", '"', "-", ".", "\u2013", "\u00a3",
                        "\u20ac")
UNIGRAM_OPTIONS = dict(
    model_type="unigram", pad_id=0, unk_id=1, bos_id=-1, eos_id=-1,
    pad_piece=ALBERT_TOKENS.pad, unk_piece=ALBERT_TOKENS.unk,
    control_symbols=list(UNIGRAM_CONTROL),
    user_defined_symbols=list(UNIGRAM_USER_DEFINED),
    character_coverage=0.99995)

# Tokens each model reserves before it learns any, and the smallest
# --vocab_size each takes: those and room for 200 learned ones.
SPECIAL_TOKENS = {
    "wordpiece": len(RESERVED),
    "bpe": len(BPE_FIRST) + 1,
    "unigram": 2 + len(UNIGRAM_CONTROL) + len(UNIGRAM_USER_DEFINED)}
MIN_VOCAB_SIZES = {"wordpiece": MIN_VOCAB_SIZE,
                   "bpe": SPECIAL_TOKENS["bpe"] + BYTE_ALPHABET + 200,
                   "unigram": SPECIAL_TOKENS["unigram"] + 200}
# BERT's, RoBERTa's and ALBERT's sizes.
DEFAULT_VOCAB_SIZES = {"wordpiece": 30522, "bpe": 50265, "unigram": 30000}


def bert_word_splitter(do_lower_case: bool):
  """A function from text to BERT's words (normalized, pre-tokenized)."""
  # pylint: disable=import-outside-toplevel
  from tokenizers import normalizers, pre_tokenizers
  normalizer = normalizers.BertNormalizer(
      clean_text=True, handle_chinese_chars=True,
      strip_accents=do_lower_case, lowercase=do_lower_case)
  pre_tokenizer = pre_tokenizers.BertPreTokenizer()

  def words(text: str) -> List[str]:
    return [w for w, _ in pre_tokenizer.pre_tokenize_str(
        normalizer.normalize_str(text))]
  return words


def byte_level_word_splitter(do_lower_case: bool):
  """A function from one sentence to the words byte-level BPE sees, as
  RoBERTa's tokenizer makes them (``ByteLevel(add_prefix_space=False)``;
  ``Lowercase`` first if ``do_lower_case``): ``"Hi  there."`` →
  ``["Hi", "Ġ", "Ġthere", "."]``."""
  # pylint: disable=import-outside-toplevel
  from tokenizers import normalizers, pre_tokenizers
  lower = normalizers.Lowercase() if do_lower_case else None
  pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False,
                                           use_regex=True)

  def words(text: str) -> List[str]:
    if lower is not None:
      text = lower.normalize_str(text)
    return [w for w, _ in pre_tokenizer.pre_tokenize_str(text)]
  return words


def sentencepiece_word_splitter(do_lower_case: bool, albert_rules: bool):
  """A function from text to SentencePiece's words: the text as
  ``SentencePieceTokenizer.prepare`` hands it to the model (ALBERT's text
  rules with ``albert_rules``, lower-cased with ``do_lower_case``),
  normalized by ``sentencepiece``'s ``nmt_nfkc`` rules and split at its
  spaces, without the word-start mark ``▁`` (the trainer adds it):
  ``"Ｈｉ\\u3000there ﬁne"`` → ``["Hi", "there", "fine"]``."""
  import sentencepiece  # pylint: disable=import-outside-toplevel
  # pylint: disable=import-outside-toplevel
  from transforms.sentencepiece_tokenizer import albert_preprocess
  normalizer = sentencepiece.SentencePieceNormalizer(
      rule_name="nmt_nfkc", add_dummy_prefix=False, escape_whitespaces=False,
      remove_extra_whitespaces=True)

  def words(text: str) -> List[str]:
    if albert_rules:
      text = albert_preprocess(text, do_lower_case)
    elif do_lower_case:
      text = text.lower()
    return [w for w in normalizer.normalize(text).split(" ") if w]
  return words


@dataclasses.dataclass(frozen=True, kw_only=True)
class WordRules:
  """What a word is for one model's learner (see the module's docstring):
  small, picklable settings for the Beam workers; ``splitter()`` builds the
  function from text to words. ``albert_rules`` applies to ``unigram``
  only."""
  model: str = "wordpiece"
  do_lower_case: bool = True
  albert_rules: bool = False

  def __post_init__(self):
    if self.model not in MODELS:
      raise ValueError("model %r is not one of %s"
                       % (self.model, ", ".join(MODELS)))

  def splitter(self) -> Callable[[str], List[str]]:
    if self.model == "bpe":
      return byte_level_word_splitter(self.do_lower_case)
    if self.model == "unigram":
      return sentencepiece_word_splitter(self.do_lower_case,
                                         self.albert_rules)
    return bert_word_splitter(self.do_lower_case)


def count_words(texts: Iterable[str], split) -> Dict[str, int]:
  """Word counts of ``texts`` with ``split`` (``WordRules.splitter()``)."""
  counts: Dict[str, int] = collections.Counter()
  for text in texts:
    counts.update(split(text))
  return counts


# The most word occurrences the tokenizers trainers are given: counts above
# are scaled down (each kept word at least once), so learning time stays
# bounded.
MAX_FED_WORDS = 100_000_000
_FEED_CHUNK = 4096


def _usable(word_counts: Sequence[Tuple[str, int]]) -> List[Tuple[str, int]]:
  """The pairs with a positive count and a word that is not blank; raises
  ValueError when none is left."""
  kept = [(w, int(c)) for w, c in word_counts if c > 0 and w.strip()]
  if not kept:
    raise ValueError("no words to learn a vocabulary from")
  return kept


def _repeated(word_counts: Sequence[Tuple[str, int]]) -> Iterator[str]:
  """Text for a ``tokenizers`` trainer that splits at whitespace: each word
  as often as it was counted, ``_FEED_CHUNK`` at a time joined by spaces;
  when the counts add up to more than ``MAX_FED_WORDS`` they are divided by
  one factor first (rounded up), which keeps their proportions."""
  total = sum(c for _, c in word_counts)
  scale = max(1, -(-total // MAX_FED_WORDS))
  for word, count in word_counts:
    left = -(-count // scale)
    while left:
      n = min(left, _FEED_CHUNK)
      yield " ".join([word] * n)
      left -= n


def learn_wordpiece(word_counts: Sequence[Tuple[str, int]], pieces: int
                    ) -> List[str]:
  """At most ``pieces`` WordPiece tokens learned from ``(word, count)``
  pairs by ``tokenizers``' ``WordPieceTrainer`` (its alphabet, single
  characters and their ``##`` forms, first, then the merges). The trainer
  takes text, so each word is given as often as it was counted
  (``_repeated``: scaled down past ``MAX_FED_WORDS``). Raises ValueError
  when there is nothing to learn from. Memory: the trainer's tables of the
  distinct words given and of their pieces, in proportion to them
  (measured by benchmarks/vocab_memory.py: docs/benchmarks/vocab_memory.md).

  Chosen over TF Text's learner, which works from counts directly, by
  ``benchmarks/vocab_learners.py`` on the same counts: fewer pieces per
  held-out word (Wikipedia 1.311 against 1.360, generated text 1.183
  against 1.304), a full vocabulary (TF Text's stops short of the size
  asked for), and 70-100 times less CPU (docs/inputs-and-outputs.md, "A
  vocabulary from the corpus")."""
  # pylint: disable=import-outside-toplevel
  from tokenizers import Tokenizer, models, pre_tokenizers, trainers
  word_counts = _usable(word_counts)
  tokenizer = Tokenizer(models.WordPiece(unk_token="[UNK]"))
  # The words are BERT's already (normalized, pre-tokenized).
  tokenizer.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
  trainer = trainers.WordPieceTrainer(
      vocab_size=pieces, special_tokens=[], continuing_subword_prefix="##",
      show_progress=False)
  tokenizer.train_from_iterator(_repeated(word_counts), trainer=trainer)
  vocab = tokenizer.get_vocab()
  return sorted(vocab, key=vocab.get)


def bert_layout(learned: Sequence[str], vocab_size: int) -> List[str]:
  """BERT's reserved slots, then the learned pieces (none twice, none of
  the reserved names), ``vocab_size`` tokens at most."""
  seen = set(RESERVED)
  tokens = list(RESERVED)
  for piece in learned:
    if piece not in seen and piece.strip() and len(tokens) < vocab_size:
      seen.add(piece)
      tokens.append(piece)
  return tokens


def learn_byte_level_bpe(word_counts: Sequence[Tuple[str, int]],
                         vocab_size: int, *, do_lower_case: bool = False
                         ) -> str:
  """A RoBERTa-style byte-level BPE learned from ``(word, count)`` pairs
  (words as ``byte_level_word_splitter`` makes them), as the text of a
  Hugging Face ``tokenizer.json`` of at most ``vocab_size`` tokens.

  ``tokenizers``' ``BpeTrainer`` learns the merges, with the 256 bytes as
  its alphabet and ``BPE_MIN_FREQUENCY``; the tokens are ``<s>`` 0,
  ``<pad>`` 1, ``</s>`` 2, ``<unk>`` 3, the bytes, the merged pieces, and
  ``<mask>`` last, as in RoBERTa's dictionary; the tokenizer is configured
  as ``RobertaTokenizer`` configures it (``ByteLevel`` pre-tokenizer and
  decoder without a prefix space, ``RobertaProcessing`` with ``<s>`` and
  ``</s>``; a ``Lowercase`` normalizer if ``do_lower_case``). The trainer
  takes text, so each word is given as often as it was counted
  (``_repeated``: scaled down past ``MAX_FED_WORDS``); the same counts
  give the same merges as training on the text itself. Fewer tokens than
  asked come out when the words have no more pairs seen twice.

  Raises ValueError when there is nothing to learn from. Memory: the
  trainer's tables of the distinct words given, their pieces and where
  each pair is, in proportion to the words (measured by
  benchmarks/vocab_memory.py: docs/benchmarks/vocab_memory.md).
  """
  # pylint: disable=import-outside-toplevel
  from tokenizers import (Tokenizer, decoders, models, normalizers,
                          pre_tokenizers, processors, trainers)
  word_counts = _usable(word_counts)
  tokenizer = Tokenizer(models.BPE())
  # The words are byte-level already; byte-level text holds no whitespace.
  tokenizer.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
  trainer = trainers.BpeTrainer(
      vocab_size=vocab_size - 1, min_frequency=BPE_MIN_FREQUENCY,
      special_tokens=list(BPE_FIRST),
      initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
      show_progress=False)
  tokenizer.train_from_iterator(_repeated(word_counts), trainer=trainer)
  config = json.loads(tokenizer.to_str())
  vocab = config["model"]["vocab"]
  mask_id = len(vocab)
  vocab[BPE_LAST] = mask_id
  # As RobertaTokenizer adds it: a space before <mask> belongs to it.
  config["added_tokens"].append({
      "id": mask_id, "content": BPE_LAST, "single_word": False,
      "lstrip": True, "rstrip": False, "normalized": False,
      "special": True})
  tokenizer = Tokenizer.from_str(json.dumps(config))
  if do_lower_case:
    tokenizer.normalizer = normalizers.Lowercase()
  tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(
      add_prefix_space=False, trim_offsets=True, use_regex=True)
  tokenizer.decoder = decoders.ByteLevel()
  tokenizer.post_processor = processors.RobertaProcessing(
      (ROBERTA_TOKENS.sep, vocab[ROBERTA_TOKENS.sep]),
      (ROBERTA_TOKENS.cls, vocab[ROBERTA_TOKENS.cls]),
      trim_offsets=True, add_prefix_space=False)
  return tokenizer.to_str()


def learn_unigram(word_counts: Sequence[Tuple[str, int]], vocab_size: int
                  ) -> Tuple[bytes, bytes]:
  """A SentencePiece Unigram model learned from ``(word, count)`` pairs
  (words as ``sentencepiece_word_splitter`` makes them): ``(the .model
  file's bytes, the .vocab file's bytes)``, as ``sentencepiece`` writes
  them, at most ``vocab_size`` pieces.

  ``sentencepiece``'s trainer is given the counts themselves, one
  ``word<TAB>count`` line per word (``input_format="tsv"``), with ALBERT's
  options (``UNIGRAM_OPTIONS``: <pad> 0, <unk> 1, [CLS] [SEP] [MASK]
  control symbols, ALBERT's user-defined punctuation, its character
  coverage) and ``hard_vocab_limit=False`` (fewer pieces when the words
  hold no more). The model's normalizer is ``nmt_nfkc``, as ALBERT's.

  Its expectation-maximization steps see exactly the words and counts that
  training on the text would give them (sentencepiece splits sentences at
  whitespace first). Its seed pieces differ: sentencepiece takes them from
  a suffix array of its input lines, here the words one by one instead of
  whole sentences (and in TSV input each word once, its count unused:
  sentencepiece's doc/options.md on ``input_format``, google/sentencepiece
  issue 967). So a model learned from counts shares most of its pieces
  with one learned from the text, not all: 93% of 1,000 on the shipped
  sample (tests/e2e/test_vocabulary_families.py), about 94% of 2,000 to
  8,000 on this project's docs and on Beam's Python source, with 1.5% more
  pieces per held-out word on the latter.

  The pairs are given most frequent first (then by word), whatever their
  order: the seed pieces depend on it. A tab or line break in a word is a
  space to it (sentencepiece's normalizer makes one of either). Raises
  ValueError when there is nothing to learn from, RuntimeError with
  sentencepiece's message when it cannot learn (a ``vocab_size`` below the
  characters it must keep). Memory: the words and counts, the suffix array
  over each word written twice, and at most a million seed pieces
  (measured by benchmarks/vocab_memory.py: docs/benchmarks/vocab_memory.md).
  """
  import sentencepiece  # pylint: disable=import-outside-toplevel
  # sentencepiece's seed pieces depend on the order of its input lines:
  # most frequent first, then by word, whatever order the pairs come in.
  word_counts = sorted(
      ((w.replace("\t", " ").replace("\n", " ").replace("\r", " "), c)
       for w, c in _usable(word_counts)), key=lambda wc: (-wc[1], wc[0]))
  with tempfile.TemporaryDirectory() as folder:
    prefix = os.path.join(folder, "unigram")
    sentencepiece.SentencePieceTrainer.train(
        sentence_iterator=("%s\t%d" % wc for wc in word_counts),
        input_format="tsv", model_prefix=prefix, vocab_size=vocab_size,
        hard_vocab_limit=False, minloglevel=2, **UNIGRAM_OPTIONS)
    with open(prefix + ".model", "rb") as f:
      model = f.read()
    with open(prefix + ".vocab", "rb") as f:
      vocab = f.read()
  return model, vocab


class _CountWordsDoFn(beam.DoFn):
  """Counts the words of each bundle's texts; emits ``(word, n)`` when the
  bundle ends, so the shuffle carries each word once per bundle."""

  def __init__(self, words: WordRules):
    self._words = words
    self._split = None
    self._counts = None

  def setup(self):
    self._split = self._words.splitter()

  def start_bundle(self):
    self._counts = collections.Counter()

  def process(self, element):
    _, texts = element
    for text in texts:
      words = self._split(text)
      metrics.count("words", len(words))
      self._counts.update(words)

  def finish_bundle(self):
    # pylint: disable=import-outside-toplevel
    from apache_beam.transforms.window import GlobalWindow
    from apache_beam.utils.timestamp import MIN_TIMESTAMP
    from apache_beam.utils.windowed_value import WindowedValue
    for word, n in self._counts.items():
      yield WindowedValue((word, n), MIN_TIMESTAMP, [GlobalWindow()])
    self._counts = None


class CountWords(beam.PTransform):
  """Documents ``(doc_id, texts)`` → one element: the ``max_words`` most
  frequent words as ``[(word, count)]``, most frequent first (ties: the
  word that sorts last first).

  Args:
    words: what a word is (``WordRules``: the model, lower-casing, ALBERT's
      text rules). For ``bpe`` each text should be one sentence.
    max_words: distinct words kept; ``Top.Of``'s accumulators hold at most
      this many, so memory does not grow with the corpus.
  """

  def __init__(self, *, words: WordRules, max_words: int):
    super().__init__()
    self._words = words
    self._max_words = max_words

  def expand(self, docs):
    return (
        docs
        | "CountPerBundle" >> beam.ParDo(_CountWordsDoFn(self._words))
        | "Sum" >> beam.CombinePerKey(sum)
        | "Top" >> beam.combiners.Top.Of(self._max_words,
                                         key=lambda kv: (kv[1], kv[0])))


class _CountLanguageWordsDoFn(_CountWordsDoFn):
  """``_CountWordsDoFn`` keyed by each document's language: emits
  ``((language, word), n)`` when the bundle ends."""

  def __init__(self, words: WordRules, language_of: Callable[[str], str]):
    super().__init__(words)
    self._language_of = language_of

  def process(self, element):
    doc_id, texts = element
    language = self._language_of(doc_id)
    for text in texts:
      words = self._split(text)
      metrics.count("words", len(words))
      self._counts.update((language, w) for w in words)


class CountWordsByLanguage(beam.PTransform):
  """Documents ``(doc_id, texts)`` → one element: for each language (of
  ``language_of(doc_id)``), its ``max_words`` most frequent words as
  ``[(word, count)]``, most frequent first. ``words`` and ``max_words`` as
  ``CountWords``; each language's ``Top.Of`` holds at most ``max_words``
  words."""

  def __init__(self, *, words: WordRules, max_words: int,
               language_of: Callable[[str], str]):
    super().__init__()
    self._words = words
    self._max_words = max_words
    self._language_of = language_of

  def expand(self, docs):
    return (
        docs
        | "CountPerBundle" >> beam.ParDo(_CountLanguageWordsDoFn(
            self._words, self._language_of))
        | "Sum" >> beam.CombinePerKey(sum)
        | "ByLanguage" >> beam.Map(lambda kv: (kv[0][0], (kv[0][1], kv[1])))
        | "Top" >> beam.combiners.Top.PerKey(
            self._max_words, key=lambda wc: (wc[1], wc[0]))
        | "Gather" >> beam.combiners.ToDict())


def sample_word_counts(by_language: Dict[str, Sequence[Tuple[str, int]]],
                       weights: Dict[str, float], max_words: int
                       ) -> List[Tuple[str, int]]:
  """Each language's word counts times its weight (XLM's sampling: the
  passes ``languages.sampling_passes`` gives it with one pass in all,
  ``q_i / p_i``), summed over the languages, rounded up, the ``max_words``
  most frequent (ties: the word that sorts last first, as ``CountWords``).
  So a language makes a share q_i of the counts a learner fits, as it makes
  of the examples."""
  # Summed in one order (the languages sorted), whatever order the runner
  # hands them over in: the rounding then cannot depend on it.
  total: Dict[str, float] = collections.defaultdict(float)
  for language in sorted(by_language):
    weight = weights[language]
    for word, count in by_language[language]:
      total[word] += count * weight
  ranked = sorted(((w, max(1, math.ceil(c))) for w, c in total.items()),
                  key=lambda wc: (wc[1], wc[0]), reverse=True)
  return ranked[:max_words]
