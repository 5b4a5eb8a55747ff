"""CountWords: documents → the most frequent words of a corpus, and the
WordPiece vocabulary learned from them (``python -m pipelines.learn_vocab``).

Words are what BERT's tokenizer sees before WordPiece: BERT's text rules
(``BertNormalizer``: control characters removed, whitespace unified, CJK
characters spaced, lower-casing and accent stripping when uncased) and its
pre-tokenization (``BertPreTokenizer``: whitespace and punctuation), both
from ``tokenizers``, as the pipeline's own tokenizer uses them
(``transforms/tokenization.py``). Counting is a Beam combiner; the top
``max_words`` are kept with ``Top.Of``, whose accumulators hold at most that
many words, so memory does not grow with the corpus.

The vocabulary is learned from the counts on one machine by ``tokenizers``'
WordPiece trainer (``learn_wordpiece``; why not TF Text's learner is said
there) and laid out as BERT's ``vocab.txt`` is (``bert_layout``).
"""

import collections
from typing import Dict, Iterable, List, Sequence, Tuple

import apache_beam as beam

from transforms import metrics

# BERT's vocab.txt: [PAD], [unused0..98], [UNK], [CLS], [SEP], [MASK],
# [unused99..993], then the pieces (google-research/bert's uncased and cased
# vocabularies alike: [UNK] is id 100, [CLS] 101, [SEP] 102, [MASK] 103).
RESERVED = (["[PAD]"] + ["[unused%d]" % i for i in range(99)]
            + ["[UNK]", "[CLS]", "[SEP]", "[MASK]"]
            + ["[unused%d]" % i for i in range(99, 994)])
MIN_VOCAB_SIZE = len(RESERVED) + 200


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


def count_words(texts: Iterable[str], split) -> Dict[str, int]:
  """Word counts of ``texts`` with ``split`` (``bert_word_splitter``)."""
  counts: Dict[str, int] = collections.Counter()
  for text in texts:
    counts.update(split(text))
  return counts


# The most word occurrences the learner is given: counts above are scaled
# down (each kept word at least once), so learning time stays bounded.
MAX_FED_WORDS = 100_000_000
_FEED_CHUNK = 4096


def learn_wordpiece(word_counts: Sequence[Tuple[str, int]], pieces: int
                    ) -> List[str]:
  """At most ``pieces`` WordPiece tokens learned from ``(word, count)``
  pairs by ``tokenizers``' ``WordPieceTrainer`` (its alphabet, single
  characters and their ``##`` forms, first, then the merges). The trainer
  takes text, so each word is given as often as it was counted, in chunks;
  when the counts add up to more than ``MAX_FED_WORDS`` they are divided by
  one factor first (rounded up), which keeps their proportions. Raises
  ValueError when there is nothing to learn from.

  Chosen over TF Text's learner, which works from counts directly, by
  ``benchmarks/vocab_learners.py`` on the same counts: fewer pieces per
  held-out word (Wikipedia 1.311 against 1.360, generated text 1.183
  against 1.304), a full vocabulary (TF Text's stops short of the size
  asked for), and 70-100 times less CPU (docs/inputs-and-outputs.md, "A vocabulary from the
  corpus")."""
  # pylint: disable=import-outside-toplevel
  from tokenizers import Tokenizer, models, pre_tokenizers, trainers
  word_counts = [(w, int(c)) for w, c in word_counts if c > 0 and w.strip()]
  if not word_counts:
    raise ValueError("no words to learn a vocabulary from")
  total = sum(c for _, c in word_counts)
  scale = max(1, -(-total // MAX_FED_WORDS))
  tokenizer = Tokenizer(models.WordPiece(unk_token="[UNK]"))
  # The words are BERT's already (normalized, pre-tokenized).
  tokenizer.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
  trainer = trainers.WordPieceTrainer(
      vocab_size=pieces, special_tokens=[], continuing_subword_prefix="##",
      show_progress=False)

  def feed():
    for word, count in word_counts:
      left = -(-count // scale)
      while left:
        n = min(left, _FEED_CHUNK)
        yield " ".join([word] * n)
        left -= n
  tokenizer.train_from_iterator(feed(), trainer=trainer)
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


class _CountWordsDoFn(beam.DoFn):
  """Counts the words of each bundle's paragraphs; emits ``(word, n)`` when
  the bundle ends, so the shuffle carries each word once per bundle."""

  def __init__(self, do_lower_case: bool):
    self._do_lower_case = do_lower_case
    self._split = None
    self._counts = None

  def setup(self):
    self._split = bert_word_splitter(self._do_lower_case)

  def start_bundle(self):
    self._counts = collections.Counter()

  def process(self, element):
    _, paragraphs = element
    for text in paragraphs:
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
  """Documents ``(doc_id, paragraphs)`` → one element: the ``max_words``
  most frequent words as ``[(word, count)]``, most frequent first."""

  def __init__(self, do_lower_case: bool, max_words: int):
    super().__init__()
    self._do_lower_case = do_lower_case
    self._max_words = max_words

  def expand(self, docs):
    return (
        docs
        | "CountPerBundle" >> beam.ParDo(_CountWordsDoFn(self._do_lower_case))
        | "Sum" >> beam.CombinePerKey(sum)
        | "Top" >> beam.combiners.Top.Of(self._max_words,
                                         key=lambda kv: (kv[1], kv[0])))
