"""Tokenize: ``(doc_id, [sentences])`` → ``TokenizedDocument``.

From a BERT ``vocab.txt`` the tokenizer is BERT's ``FullTokenizer``: BERT's
text rules (normalization.py: cleaning, CJK spacing, lower-casing, accent
stripping, punctuation splitting) applied in Python over whole documents,
then Hugging Face ``tokenizers`` for the whitespace split and greedy
WordPiece (``[UNK]``, at most 200 characters a word, no special tokens added,
so a literal "[MASK]" in the text is tokenized as text). Doing the rules in
Python rather than with ``tokenizers``' BertNormalizer and BertPreTokenizer
halves the tokenizer's CPU time and follows BERT where those differ (private
use characters, Greek final sigma, one CJK range, code points newer or older
than their Unicode tables); tests/unit/test_tokenization.py checks the result
against BERT's own tokenization.py (PyPI ``bert-tensorflow``).

Any ``tokenizer.json`` can be used instead (``--tokenizer_file``); it runs
with its own normalizer (whether that lower-cases is what ``--do_lower_case``
then records, and a contradicting flag is refused: ``load_tokenizer``) and
pre-tokenizer, but its special added tokens
([CLS], [MASK], ...) are not matched in the text, so that raw text never
yields a special token's id. Both files are read through smart-open, so
local paths, ``s3://`` and ``https://`` all work.
"""

import dataclasses
import hashlib
import json
import os
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

import apache_beam as beam
import numpy as np

from transforms import fast_wordpiece
from transforms import metrics
from transforms import tokenizer_families as families
from transforms import normalization
from transforms import rejects
from transforms.sentencepiece_tokenizer import (SentencePieceTokenizer,
                                              flatten_ids)

SENTENCE_SEPARATOR = "\n"


class VocabularyError(ValueError):
  """The vocabulary or tokenizer file cannot be used."""


@dataclasses.dataclass(frozen=True)
class TokenizedDocument:
  """One document as token ids: ``ids`` holds every sentence's tokens back to
  back; ``sentence_lengths[i]`` is the number of tokens of sentence i."""
  doc_id: str
  ids: np.ndarray
  sentence_lengths: np.ndarray

  def pack(self) -> Tuple[str, str, bytes, bytes]:
    """Plain strings and bytes, which Beam's coders move without pickling
    (a document crosses the pool shuffle dupe_factor times)."""
    return (self.doc_id, self.ids.dtype.str, self.ids.tobytes(),
            self.sentence_lengths.tobytes())

  @staticmethod
  def unpack(packed: Tuple[str, str, bytes, bytes]) -> "TokenizedDocument":
    doc_id, dtype, ids, lengths = packed
    return TokenizedDocument(doc_id, np.frombuffer(ids, dtype=np.dtype(dtype)),
                             np.frombuffer(lengths, dtype=np.int32))

  def sentences(self) -> List[np.ndarray]:
    ends = np.cumsum(self.sentence_lengths)
    return np.split(self.ids, ends[:-1])


@dataclasses.dataclass
class Vocabulary:
  """What instance creation and masking need to know about the vocabulary."""
  tokens: List[str]  # in id order
  cls_id: int
  sep_id: int
  mask_id: int
  unk_id: int
  # bool per id: the piece continues the word before it, by its family's
  # rule (tokenizer_families.continuation_pieces).
  is_continuation: np.ndarray
  sentence_separator_id: int = -1  # see load_tokenizer
  # Whether the tokenizer lower-cases its input (see load_tokenizer): what
  # --do_lower_case really does, recorded in summary.json.
  lower_case: Optional[bool] = None
  family: str = "wordpiece"  # one of tokenizer_families.FAMILIES
  # The id padding takes: 0 for WordPiece (as google-research/bert pads,
  # whatever id 0 is), the pad token's id for the other families.
  pad_id: int = 0
  special_tokens: Optional[Dict[str, str]] = None  # role → token

  @property
  def size(self) -> int:
    return len(self.tokens)

  @property
  def id_dtype(self):
    """The narrowest dtype that holds every id (halves the shuffle for BERT's
    30,522-entry vocabulary)."""
    return np.uint16 if self.size <= 0xFFFF else np.int32

  @property
  def has_upper_case(self) -> bool:
    """Whether any token but the bracketed ones ([CLS], [unused0], ...)
    changes under ``str.lower``: a cased vocabulary, whose upper-case tokens
    --do_lower_case would never produce."""
    return any(t != t.lower() for t in self.tokens
               if not (t.startswith("[") and t.endswith("]")))


# The extensions smart_open (9.x) decompresses as it reads.
SMART_OPEN_COMPRESSED = (".gz", ".bz2", ".zst", ".xz", ".lz4")


def read_bytes(path: str, s3_client_kwargs: Optional[dict] = None) -> bytes:
  """Reads a (small) file from a local path, s3:// or https://.

  ``s3_client_kwargs`` configure the boto3 client for s3:// (endpoint,
  region, credentials); by default boto3's own chain decides. Raises
  VocabularyError naming the file. A local file that is not compressed
  (no extension of ``SMART_OPEN_COMPRESSED``) is read with ``open``, as
  smart_open would: importing smart_open, with the clients of every store
  it supports, took 0.04-0.05 CPU s of each process's start.
  """
  if "://" not in path and not path.lower().endswith(SMART_OPEN_COMPRESSED):
    try:
      with open(os.path.expanduser(path), "rb") as f:
        return f.read()
    except OSError as e:
      raise VocabularyError("cannot read %s: %s" % (path, _short(e))) from None
  import smart_open  # pylint: disable=import-outside-toplevel
  transport_params = None
  if path.startswith("s3://") and s3_client_kwargs:
    import boto3  # pylint: disable=import-outside-toplevel
    transport_params = {"client": boto3.client("s3", **s3_client_kwargs)}
  try:
    with smart_open.open(path, "rb", transport_params=transport_params) as f:
      return f.read()
  except Exception as e:  # pylint: disable=broad-except
    raise VocabularyError("cannot read %s: %s" % (path, _short(e))) from None


def read_text(path: str, s3_client_kwargs: Optional[dict] = None) -> str:
  """``read_bytes`` as UTF-8 text; raises VocabularyError."""
  data = read_bytes(path, s3_client_kwargs)
  try:
    return data.decode("utf-8")
  except UnicodeDecodeError as e:
    raise VocabularyError("%s is not UTF-8 text (%s)" % (path, e)) from None


def _short(e: Exception) -> str:
  text = str(e).strip().splitlines()
  return "%s: %s" % (type(e).__name__, text[0] if text else "")


def parse_vocab(text: str, path: str) -> List[str]:
  """vocab.txt → tokens in id order: line i is id i, stripped of whitespace
  at both ends (``str.strip``; a blank line is the token "").

  Lines are read as BERT's ``load_vocab`` reads them, with TensorFlow's
  ``GFile.readline``: they end at "\\n" only (U+2028, NEL, form feed and the
  other breaks of ``str.splitlines`` are parts of a token, or stripped), a
  final "\\n" ends the last line rather than starting another, and every
  "\\r" is dropped (TensorFlow's ``BufferedInputStream::ReadLine`` does), so
  CRLF files work and "a\\rb" is the token "ab".

  Every line takes an id, as in google-research/bert's master and TF Model
  Garden (``vocab[token] = index; index += 1``): a repeated token keeps its
  last id (see ``_wordpiece``). The 1.0.4 ``bert-tensorflow`` package
  instead skips repeats (``if token not in vocab: vocab[token] =
  len(vocab)``), which shifts every later id; without repeats the two agree.

  Raises VocabularyError if there is no line.
  """
  lines = text.replace("\r", "").split("\n")
  if not lines[-1]:
    lines.pop()  # what follows the last "\n", or an empty file
  if not lines:
    raise VocabularyError("vocabulary %s is empty" % path)
  return [line.strip() for line in lines]


def build_tokenizer(tokens: Sequence[str], do_lower_case: bool):
  """A ``tokenizers.Tokenizer`` in the standard BERT configuration
  (BertNormalizer, BertPreTokenizer, WordPiece): what ``--tokenizer_file``
  users export, and the benchmark's "tokenizer alone"."""
  # pylint: disable=import-outside-toplevel
  from tokenizers import normalizers, pre_tokenizers
  tokenizer = _wordpiece(tokens)
  tokenizer.normalizer = normalizers.BertNormalizer(
      clean_text=True, handle_chinese_chars=True, strip_accents=None,
      lowercase=do_lower_case)
  tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
  return tokenizer


def _wordpiece(tokens: Sequence[str]):
  """A WordPiece model of ``tokens`` (line i of vocab.txt is id i).

  A repeated token keeps its last id, as in BERT; each id it leaves behind
  goes to a stand-in, " [repeat of id i]", that no word matches (words hold
  no whitespace, tokens none at their ends). Without the stand-ins
  WordPiece's size would fall short of ``len(tokens)``, and the next added
  token (the sentence separator, see load_tokenizer) would take a line's id.
  """
  from tokenizers import Tokenizer, models  # pylint: disable=import-outside-toplevel
  vocab: Dict[str, int] = {}
  for i, token in enumerate(tokens):
    vocab[token] = i
  if len(vocab) < len(tokens):
    kept = set(vocab.values())
    vocab.update((" [repeat of id %d]" % i, i)
                 for i in range(len(tokens)) if i not in kept)
  return Tokenizer(models.WordPiece(
      vocab, unk_token="[UNK]", max_input_chars_per_word=200))


class BertTokenizer:
  """BERT's FullTokenizer: ``normalization.normalize`` in Python, then a
  ``tokenizers`` WordPiece that splits at whitespace only (the exact path);
  with ``fast``, ``nanotoken`` for the sentences it tokenizes as BERT does
  (``fast_wordpiece``; ``fast_path`` is then set, else
  ``fast_path_unavailable`` says why not).

  Offers the parts of ``tokenizers.Tokenizer``'s interface that the pipeline
  and its users need (``encode``, ``encode_batch_fast``, ``token_to_id``,
  ``to_str``), so either kind of tokenizer can be passed around.
  """

  def __init__(self, tokens: Sequence[str], do_lower_case: bool,
               fast: bool = True):
    from tokenizers import pre_tokenizers  # pylint: disable=import-outside-toplevel
    self._lower = do_lower_case
    self._wordpiece = build_tokenizer(tokens, do_lower_case)
    # Written before the changes below: to_str's standard configuration.
    self._json = self._wordpiece.to_str()
    # The exact path normalizes in Python and splits at whitespace only.
    self._wordpiece.normalizer = None
    self._wordpiece.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    self.fast_path = None
    self.fast_path_unavailable = (
        fast_wordpiece.fast_path_unavailable() if fast
        else "turned off (--fast_wordpiece=false)")
    if self.fast_path_unavailable is None:
      try:
        self.fast_path = fast_wordpiece.FastWordPiece(self._json,
                                                      do_lower_case)
      except Exception as e:  # pylint: disable=broad-except
        # An alpha library: whatever stops it, the exact path still works.
        self.fast_path_unavailable = "%s could not load it (%s)" % (
            fast_wordpiece.LIBRARY, _short(e))

  @property
  def do_lower_case(self) -> bool:
    return self._lower

  def normalize(self, text: str) -> str:
    return normalization.normalize(text, self._lower)

  def encode(self, text: str, add_special_tokens: bool = False):
    return self._wordpiece.encode(self.normalize(text),
                                  add_special_tokens=add_special_tokens)

  def encode_batch_fast(self, texts: Sequence[str],
                        add_special_tokens: bool = False):
    return self._wordpiece.encode_batch_fast(
        [self.normalize(t) for t in texts],
        add_special_tokens=add_special_tokens)

  def encode_batch(self, texts: Sequence[str],
                   add_special_tokens: bool = False):
    return self._wordpiece.encode_batch(
        [self.normalize(t) for t in texts],
        add_special_tokens=add_special_tokens)

  def encode_flat(self, sentences: Sequence[str],
                  safe: Optional[np.ndarray] = None
                  ) -> Tuple[np.ndarray, np.ndarray]:
    """The sentences' ids back to back (int64) and each one's length: the
    ``safe`` ones (per sentence; ``fast_path.safe`` when None) by
    ``nanotoken``, the others by the exact path. Without a fast path, all
    by the exact path."""
    if self.fast_path is None:
      return self._exact_flat(sentences)
    if safe is None:
      safe = self.fast_path.safe(sentences)
    if safe.all():
      return self.fast_path.encode_flat(sentences)
    chosen = safe.tolist()
    fast = self.fast_path.encode_flat(
        [s for s, ok in zip(sentences, chosen) if ok])
    exact = self._exact_flat([s for s, ok in zip(sentences, chosen) if not ok])
    return fast_wordpiece.merge_flat(safe, fast, exact)

  def _exact_flat(self, sentences: Sequence[str]
                  ) -> Tuple[np.ndarray, np.ndarray]:
    """``encode_flat`` by the exact path. A line break is whitespace to
    BERT, but the sentence separator to this tokenizer (load_tokenizer):
    it goes as a space."""
    return flatten_ids([e.ids for e in self.encode_batch_fast(
        [s.replace(SENTENCE_SEPARATOR, " ") for s in sentences])])

  def add_special_tokens(self, tokens) -> int:
    return self._wordpiece.add_special_tokens(tokens)

  def token_to_id(self, token: str) -> Optional[int]:
    return self._wordpiece.token_to_id(token)

  def to_str(self) -> str:
    """The standard ``tokenizers`` BERT configuration of this vocabulary as
    ``tokenizer.json`` text (for ``--tokenizer_file`` and other tools), without
    the sentence separator load_tokenizer adds."""
    return self._json


def parse_tokenizer_json(text: str, path: str):
  """tokenizer.json text → ``(tokenizers.Tokenizer, tokens in id order)``.

  The file's special added tokens ([CLS], [SEP], [MASK], [PAD], [UNK] in a
  released BERT tokenizer.json) are left out of the tokenizer, which would
  otherwise match them in raw text; the tokens keep them at their ids, and
  a WordPiece, BPE or WordLevel model that lacks one in its vocabulary gets
  it there, at its id (WordPiece needs its [UNK] there; ``tokenizers``
  itself renumbers added tokens that the model lacks). Non-special added
  tokens stay. Padding and truncation are turned off: whole documents are
  encoded, and padding would add [PAD] ids.

  Raises VocabularyError if the file cannot be loaded, or if an added token
  does not end up at the id the file gives it.
  """
  from tokenizers import Tokenizer  # pylint: disable=import-outside-toplevel
  try:
    config = json.loads(text)
    added = config.get("added_tokens") or []
    special = {t["id"]: t["content"] for t in added if t.get("special")}
    config["added_tokens"] = [t for t in added if not t.get("special")]
    model_vocab = config["model"].get("vocab")
    if isinstance(model_vocab, dict):
      for i, token in special.items():
        model_vocab.setdefault(token, i)
    config["padding"] = config["truncation"] = None
    tokenizer = Tokenizer.from_str(json.dumps(config))
  except Exception as e:  # pylint: disable=broad-except
    raise VocabularyError("tokenizer file %s cannot be loaded: %s"
                          % (path, _short(e))) from None
  size = max([tokenizer.get_vocab_size(with_added_tokens=True)]
             + [i + 1 for i in special])
  tokens = [tokenizer.id_to_token(i) or special.get(i, "")
            for i in range(size)]
  for t in added:
    loaded = tokens[t["id"]] if t["id"] < size else None
    if loaded != t["content"]:
      raise VocabularyError(
          "tokenizer file %s gives added token %r the id %d, which loads as "
          "%r" % (path, t["content"], t["id"], loaded))
  return tokenizer, tokens


# Upper-case text that a lower-casing normalizer turns into its lower-case
# form: ASCII, Latin-1 with accents, Greek and Cyrillic letters.
_CASE_PROBE = ("THE QUICK BROWN FOX JUMPS OVER A LAZY DOG "
               "\u00c0\u00c9\u00d6 \u0391\u0392\u0393 \u0410\u0411\u0412")


def normalizer_lowercases(tokenizer) -> bool:
  """Whether ``tokenizer`` lower-cases text before its model sees it.

  ``tokenizer``: a ``tokenizers.Tokenizer``, judged by its ``normalizer``
  (a BertNormalizer with ``lowercase=True``, a Lowercase, a Sequence that
  holds one, a SentencePiece charsmap that case-folds: true; no normalizer,
  or one without such a step: false), or a ``BertTokenizer`` (its
  ``do_lower_case``). The normalizer is run rather than its settings read,
  so every kind is judged alike: it lower-cases when the upper-case letters
  of ``_CASE_PROBE`` come out as their lower-case forms do.
  """
  own = getattr(tokenizer, "do_lower_case", None)
  if own is not None:  # BertTokenizer, SentencePieceTokenizer
    return own
  normalizer = tokenizer.normalizer
  if normalizer is None:
    return False
  return (normalizer.normalize_str(_CASE_PROBE)
          == normalizer.normalize_str(_CASE_PROBE.lower()))


def _lower_case_word(lowercases: bool) -> str:
  return "lower-cases" if lowercases else "does not lower-case"


def load_tokenizer(vocab_file: Optional[str] = None,
                   tokenizer_file: Optional[str] = None,
                   do_lower_case: Optional[bool] = None,
                   s3_client_kwargs: Optional[dict] = None, *,
                   spm_model_file: Optional[str] = None,
                   merges_file: Optional[str] = None,
                   albert_rules: bool = False,
                   special_token_overrides: Optional[Dict[str, str]] = None,
                   fast_wordpiece: bool = True):
  """Returns ``(tokenizer, Vocabulary)``; raises VocabularyError with a
  message naming the file and the problem.

  The file decides the family (transforms/tokenizer_families.py):
  ``spm_model_file``, a SentencePiece ``.model`` (with ``albert_rules``,
  ALBERT's text rules: transforms/sentencepiece_tokenizer.py); else
  ``tokenizer_file``, a Hugging Face ``tokenizer.json`` (WordPiece, BPE or
  Unigram model); else ``vocab_file`` with ``merges_file``, RoBERTa's
  ``vocab.json`` and ``merges.txt`` (byte-level BPE); else ``vocab_file``,
  BERT's ``vocab.txt``. ``special_token_overrides``: role (cls, sep, mask,
  pad, unk) → the token to use instead of the family's.
  ``fast_wordpiece``: with BERT's ``vocab.txt``, whether ``nanotoken``
  takes the sentences it tokenizes as BERT does (``BertTokenizer``).

  ``do_lower_case``: with ``vocab_file``, whether BERT's rules lower-case
  (None: true, as in BERT). With ``tokenizer_file`` the file's normalizer
  decides (``normalizer_lowercases``); None takes what it does, and a value
  that contradicts it raises VocabularyError (the output would not be cased
  as asked). With a SentencePiece model, whether the text is lower-cased
  first (None: true with ALBERT's rules, as ALBERT's script does; false
  without, as XLM-R). ``Vocabulary.lower_case`` says what the tokenizer
  does.
  """
  if spm_model_file:
    tokenizer, tokens, family, path = _load_sentencepiece(
        spm_model_file, do_lower_case, albert_rules, s3_client_kwargs)
    prefix, lower_case = "", tokenizer.do_lower_case
  elif tokenizer_file:
    tokenizer, tokens = parse_tokenizer_json(
        read_text(tokenizer_file, s3_client_kwargs), tokenizer_file)
    family = tokenizer_file_family(tokenizer)
    prefix = getattr(tokenizer.model, "continuing_subword_prefix", None) or "##"
    path = tokenizer_file
    lower_case = normalizer_lowercases(tokenizer)
    if do_lower_case is not None and do_lower_case != lower_case:
      raise VocabularyError(
          "the normalizer of tokenizer file %s %s its input, but "
          "--do_lower_case=%s asks for the opposite: leave --do_lower_case "
          "out (the file decides) or use a tokenizer file whose normalizer "
          "%s" % (tokenizer_file, _lower_case_word(lower_case),
                  str(do_lower_case).lower(),
                  _lower_case_word(do_lower_case)))
  elif merges_file:
    tokenizer, tokens = byte_level_bpe(
        read_text(vocab_file, s3_client_kwargs), vocab_file,
        read_text(merges_file, s3_client_kwargs), merges_file,
        bool(do_lower_case))
    family, prefix, path = "bpe", "", vocab_file
    lower_case = bool(do_lower_case)
  else:
    text = read_text(vocab_file, s3_client_kwargs)
    tokens = parse_vocab(text, vocab_file)
    lower_case = True if do_lower_case is None else do_lower_case
    tokenizer = BertTokenizer(tokens, lower_case, fast=fast_wordpiece)
    family, prefix, path = "wordpiece", "##", vocab_file
  try:
    specials = families.special_tokens(family, tokens, path,
                                       special_token_overrides)
  except families.SpecialTokenError as e:
    raise VocabularyError(str(e)) from None
  ids = {}
  for i, token in enumerate(tokens):
    ids[token] = i
  separator_id = -1
  if family == "wordpiece":
    separator_id = _add_sentence_separator(tokenizer, tokens, path)
  vocab = Vocabulary(
      tokens=tokens, cls_id=ids[specials.cls], sep_id=ids[specials.sep],
      mask_id=ids[specials.mask], unk_id=ids[specials.unk],
      sentence_separator_id=separator_id,
      is_continuation=families.continuation_pieces(
          family, tokens, specials.as_dict().values(), prefix),
      lower_case=lower_case, family=family,
      pad_id=0 if family == "wordpiece" else ids[specials.pad],
      special_tokens=specials.as_dict())
  return tokenizer, vocab


def _add_sentence_separator(tokenizer, tokens: Sequence[str],
                            path: str) -> int:
  """Adds ``SENTENCE_SEPARATOR`` to a WordPiece tokenizer as a special
  token; returns its id.

  Whole documents are encoded in one string each, sentences joined by
  "\n" (no sentence holds one: the reader splits lines on it). "\n" as an
  added special token comes out as its own id, which marks the sentence
  boundaries; it is never in the output. One string per document instead
  of one per sentence saves about 15% of the tokenizer's time. The other
  families encode each sentence on its own (``encode_sentences``): a
  byte-level or SentencePiece model treats the start of its input apart.
  """
  from tokenizers import AddedToken  # pylint: disable=import-outside-toplevel
  tokenizer.add_special_tokens([AddedToken(SENTENCE_SEPARATOR, special=True,
                                           normalized=False)])
  separator_id = tokenizer.token_to_id(SENTENCE_SEPARATOR)
  if separator_id < len(tokens) and tokens[separator_id] != SENTENCE_SEPARATOR:
    raise VocabularyError("%s: no free id for the sentence separator (%d is "
                          "%r)" % (path, separator_id, tokens[separator_id]))
  return separator_id


def tokenizer_file_family(tokenizer) -> str:
  """The family of a loaded ``tokenizer.json`` (``tokenizers.Tokenizer``):
  see ``tokenizer_families.tokenizer_json_family``."""
  try:
    return families.tokenizer_json_family(json.loads(tokenizer.to_str()))
  except ValueError as e:
    raise VocabularyError("tokenizer file: %s" % e) from None


def _load_sentencepiece(path: str, do_lower_case: Optional[bool],
                        albert_rules: bool,
                        s3_client_kwargs: Optional[dict]):
  """``(SentencePieceTokenizer, pieces, "sentencepiece", path)``."""
  lower = albert_rules if do_lower_case is None else do_lower_case
  try:
    tokenizer = SentencePieceTokenizer(
        read_bytes(path, s3_client_kwargs), lower, albert_rules)
  except VocabularyError:
    raise
  except Exception as e:  # pylint: disable=broad-except
    raise VocabularyError("SentencePiece model %s cannot be loaded: %s"
                          % (path, _short(e))) from None
  return tokenizer, tokenizer.pieces(), "sentencepiece", path


def byte_level_bpe(vocab_text: str, vocab_path: str, merges_text: str,
                   merges_path: str, lower_case: bool = False):
  """RoBERTa's ``vocab.json`` and ``merges.txt`` → ``(tokenizers.Tokenizer,
  tokens in id order)``: GPT-2's byte-level BPE as ``RobertaTokenizer``
  configures it (ByteLevel pre-tokenizer without a prefix space, GPT-2's
  split pattern), lower-casing first if ``lower_case``. Raises
  VocabularyError naming the file that cannot be read."""
  # pylint: disable=import-outside-toplevel
  from tokenizers import Tokenizer, decoders, models, normalizers
  from tokenizers import pre_tokenizers
  try:
    tokens = families.read_vocab_json(vocab_text, vocab_path)
  except ValueError as e:
    raise VocabularyError(str(e)) from None
  merges = []
  for n, line in enumerate(merges_text.split("\n"), 1):
    line = line.rstrip("\r")
    if not line or (n == 1 and line.startswith("#version")):
      continue
    pair = line.split(" ")
    if len(pair) != 2:
      raise VocabularyError("%s line %d is not a merge (two tokens and a "
                            "space): %r" % (merges_path, n, line[:80]))
    merges.append((pair[0], pair[1]))
  try:
    tokenizer = Tokenizer(models.BPE({t: i for i, t in enumerate(tokens)},
                                     merges))
  except Exception as e:  # pylint: disable=broad-except
    raise VocabularyError("%s and %s do not make a BPE model: %s"
                          % (vocab_path, merges_path, _short(e))) from None
  tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
  tokenizer.decoder = decoders.ByteLevel()
  if lower_case:
    tokenizer.normalizer = normalizers.Lowercase()
  return tokenizer, tokens


# The tokenizer this process loaded last, by ``TokenizerSettings._cache_key``.
_LOADED: Dict[str, Tuple] = {}


@dataclasses.dataclass(frozen=True, kw_only=True)
class TokenizerSettings:
  """Which tokenizer the job loads (the flags of the same names; see
  ``load_tokenizer``): ``vocab_file`` (BERT's ``vocab.txt``, or RoBERTa's
  ``vocab.json`` with ``merges_file``), ``tokenizer_file`` (a Hugging Face
  ``tokenizer.json``) or ``spm_model_file`` (a SentencePiece ``.model``),
  the first of the last two given winning over ``vocab_file``;
  ``do_lower_case``; ``albert_rules`` (ALBERT's text rules for a
  SentencePiece model); ``fast_wordpiece`` (BERT's vocab.txt tokenized by
  ``nanotoken`` where it gives BERT's ids: ``BertTokenizer``);
  ``special_tokens`` (role → token, overriding the
  family's); ``s3_client_kwargs``: smart-open's S3 client settings for
  files on S3."""
  vocab_file: Optional[str] = None
  tokenizer_file: Optional[str] = None
  spm_model_file: Optional[str] = None
  merges_file: Optional[str] = None
  do_lower_case: Optional[bool] = None
  albert_rules: bool = False
  fast_wordpiece: bool = True
  special_tokens: Optional[Dict[str, str]] = None
  s3_client_kwargs: Optional[dict] = None

  def load(self):
    """``(tokenizer, Vocabulary)``; raises VocabularyError. Loaded once per
    process for local files unchanged since (``_LOADED``): the launcher's
    check and a DoFn in the same process (the DirectRunner's one worker)
    share it."""
    key = self._cache_key()
    if key is not None and key in _LOADED:
      return _LOADED[key]
    loaded = self._load()
    if key is not None:
      _LOADED.clear()
      _LOADED[key] = loaded
      # The launcher then runs with the casing the files decided.
      resolved = dataclasses.replace(
          self, do_lower_case=loaded[1].lower_case)._cache_key()
      if resolved is not None:
        _LOADED[resolved] = loaded
    return loaded

  def _cache_key(self) -> Optional[str]:
    """What ``load`` depends on: the settings and each file's name and
    content (a BLAKE2b digest: a vocabulary is a few MB at most); None
    for a file on S3, missing or unreadable."""
    files = [f for f in (self.vocab_file, self.tokenizer_file,
                         self.spm_model_file, self.merges_file) if f]
    if any("://" in f for f in files):
      return None
    digests = []
    for name in files:
      try:
        with open(name, "rb") as f:
          digests.append((name, hashlib.file_digest(f, "blake2b").hexdigest()
                          if hasattr(hashlib, "file_digest")
                          else hashlib.blake2b(f.read()).hexdigest()))
      except OSError:
        return None
    return repr((sorted((k, repr(v)) for k, v in vars(self).items()),
                 digests))

  def _load(self):
    one_file = self.spm_model_file or self.tokenizer_file
    return load_tokenizer(
        vocab_file=None if one_file else self.vocab_file,
        tokenizer_file=None if self.spm_model_file else self.tokenizer_file,
        do_lower_case=self.do_lower_case,
        s3_client_kwargs=self.s3_client_kwargs,
        spm_model_file=self.spm_model_file,
        merges_file=None if one_file else self.merges_file,
        albert_rules=self.albert_rules,
        special_token_overrides=self.special_tokens,
        fast_wordpiece=self.fast_wordpiece)


# A tokenizer file's vocabulary may hold a few capitalized words that are no
# sign of a cased model (names in added tokens, byte-level leftovers); more
# than this many whole words with capitals are.
CASED_WORDS_HANDFUL = 5


def upper_case_words(tokenizer, vocab: Vocabulary) -> List[str]:
  """The tokens of ``vocab`` that are whole words with a capital letter, in
  id order: not a continuation piece, not a bracketed ``[X]`` or ``<x>``
  special token, and, as the tokenizer's decoder writes the token
  (byte-level ``ĠThe`` as " The", SentencePiece ``▁The`` as "The"; the
  token itself without a decoder), letters only, one of them upper-case.
  A lower-casing normalizer never produces them."""
  decoder = getattr(tokenizer, "decoder", None)
  words = []
  for i, token in enumerate(vocab.tokens):
    if vocab.is_continuation[i] or (token[:1], token[-1:]) in (
        ("[", "]"), ("<", ">")):
      continue
    text = token.replace(families.SPM_SPACE, " ")
    if decoder is not None:
      try:
        text = decoder.decode([token])
      except Exception:  # pylint: disable=broad-except
        pass  # undecodable: judged as it is written
    text = text.strip()
    if text.isalpha() and text != text.lower():
      words.append(token)
  return words


def cased_vocabulary_warning(tokenizer, vocab: Vocabulary, path: str,
                             tokenizer_file: bool) -> Optional[str]:
  """A ``warning:`` line when ``tokenizer`` lower-cases its input but
  ``vocab`` (read from ``path``) is a cased model's, or None.

  A ``vocab.txt`` is cased when any token but the bracketed ones has an
  upper-case letter (``Vocabulary.has_upper_case``; BERT's uncased
  vocabularies have none); a tokenizer file's when more than
  ``CASED_WORDS_HANDFUL`` whole words have a capital
  (``upper_case_words``)."""
  if not vocab.lower_case:
    return None
  if not tokenizer_file:
    if not vocab.has_upper_case:
      return None
    return ("warning: --do_lower_case is true (the default, as in BERT) but "
            "the vocabulary %s holds upper-case tokens, so they can never be "
            "produced: for a cased model pass --do_lower_case=false" % path)
  words = upper_case_words(tokenizer, vocab)
  if len(words) <= CASED_WORDS_HANDFUL:
    return None
  if getattr(tokenizer, "do_lower_case", None) is not None:
    return ("warning: the text is lower-cased (--do_lower_case; true by "
            "default with ALBERT's text rules) but the model %s holds %d "
            "whole words with capitals (%s, ...), which can never be "
            "produced: for a cased model pass --do_lower_case=false"
            % (path, len(words), ", ".join(words[:5])))
  return ("warning: the normalizer of tokenizer file %s lower-cases its "
          "input, but its vocabulary holds %d whole words with capitals (%s, "
          "...), which can never be produced: a cased model's vocabulary "
          "wants a normalizer that keeps case (BertNormalizer with "
          "lowercase=false, no Lowercase)"
          % (path, len(words), ", ".join(words[:5])))


def fast_path_warning(tokenizer) -> Optional[str]:
  """A ``warning:`` line where BERT's WordPiece was asked for its fast path
  (``BertTokenizer``) and cannot have it; None otherwise."""
  why = getattr(tokenizer, "fast_path_unavailable", None)
  if why is None or why.startswith("turned off"):
    return None
  return ("warning: every sentence takes the exact WordPiece path, the same "
          "ids about 20 times slower: %s" % why)


def limit_threads(threads: int) -> None:
  """``tokenizers`` runs a thread pool on every core unless told otherwise,
  which makes Beam's worker count meaningless; call before the first batch."""
  if threads == 1:
    os.environ["TOKENIZERS_PARALLELISM"] = "false"
  elif threads > 1:
    os.environ["RAYON_NUM_THREADS"] = str(threads)


def tokenize_documents(docs: Iterable[Tuple[str, List[str]]], tokenizer,
                       vocab: Vocabulary
                       ) -> Tuple[List[TokenizedDocument], Dict[str, int]]:
  """Tokenizes a batch of documents with one call of the tokenizer: one
  string per sentence (``_encode_each``), but for BERT's WordPiece without
  its fast path, one per document, sentences joined by the separator
  (``_encode_joined``, ``_add_sentence_separator``).

  Sentences that yield no token are dropped; documents left with no sentence
  are dropped. Returns the documents and the counts of what happened.
  """
  docs = list(docs)
  counts = {"sentences": 0, "empty_sentences_dropped": 0, "tokens": 0,
            "unknown_tokens": 0, "documents": 0,
            "empty_documents_dropped": 0}
  if (vocab.family == "wordpiece"
      and getattr(tokenizer, "fast_path", None) is None):
    per_doc = _encode_joined(docs, tokenizer, vocab.sentence_separator_id)
  else:
    per_doc = _encode_each(docs, tokenizer, vocab, counts)
  out = []
  for (doc_id, sentences), (ids, lengths) in zip(docs, per_doc):
    kept = lengths > 0
    counts["empty_sentences_dropped"] += len(sentences) - int(kept.sum())
    if not kept.any():
      counts["empty_documents_dropped"] += 1
      continue
    ids = ids.astype(vocab.id_dtype)
    lengths = lengths[kept].astype(np.int32)
    counts["documents"] += 1
    counts["sentences"] += int(lengths.size)
    counts["tokens"] += int(ids.size)
    counts["unknown_tokens"] += int(np.count_nonzero(ids == vocab.unk_id))
    out.append(TokenizedDocument(doc_id, ids, lengths))
  return out, counts


def _encode_joined(docs, tokenizer, separator: int
                   ) -> List[Tuple[np.ndarray, np.ndarray]]:
  """Per document, its ids (separators out) and each sentence's length."""
  texts = [SENTENCE_SEPARATOR.join(sentences) for _, sentences in docs]
  encode = getattr(tokenizer, "encode_batch_fast", tokenizer.encode_batch)
  out = []
  for enc in (encode(texts, add_special_tokens=False) if texts else []):
    raw = np.array(enc.ids, dtype=np.int64)
    # Sentence i spans between separators i-1 and i.
    bounds = np.concatenate(([-1], np.flatnonzero(raw == separator),
                             [raw.size]))
    out.append((raw[raw != separator], np.diff(bounds) - 1))
  return out


def encode_sentences(tokenizer, sentences: Sequence[str]) -> List[List[int]]:
  """Each sentence's ids, without special tokens, in one call: the
  tokenizer's own ``encode_sentences`` (a SentencePiece model), else
  ``tokenizers``' batch encoding."""
  own = getattr(tokenizer, "encode_sentences", None)
  if own is not None:
    return own(sentences)
  encode = getattr(tokenizer, "encode_batch_fast", tokenizer.encode_batch)
  return [e.ids for e in encode(list(sentences), add_special_tokens=False)]


def encode_flat(tokenizer, sentences: Sequence[str]
                ) -> Tuple[np.ndarray, np.ndarray]:
  """Every sentence's ids back to back (int64) and each one's length: the
  tokenizer's own ``encode_flat`` (a SentencePiece model), else
  ``encode_sentences`` laid out flat."""
  own = getattr(tokenizer, "encode_flat", None)
  if own is not None:
    return own(sentences)
  return flatten_ids(encode_sentences(tokenizer, sentences))


def _encode_each(docs, tokenizer, vocab: Vocabulary, counts: Dict[str, int]
                 ) -> List[Tuple[np.ndarray, np.ndarray]]:
  """Per document, its ids and each sentence's length, every sentence of
  the batch encoded on its own (``counts`` gets how many BERT's WordPiece
  left to its exact path). In the other families a special token's id
  that the model made of the text (a SentencePiece model's user-defined
  ``<mask>``, a Unigram vocabulary's ``<s>``) becomes the unknown token's:
  raw text never yields a control id."""
  flat = [s for _, sentences in docs for s in sentences]
  if not flat:
    return [(np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64))
            for _ in docs]
  fast = getattr(tokenizer, "fast_path", None)
  if fast is not None:
    safe = fast.safe(flat)
    counts["wordpiece_exact_path_sentences"] = int(safe.size - safe.sum())
    ids, lengths = tokenizer.encode_flat(flat, safe)
  else:
    ids, lengths = encode_flat(tokenizer, flat)
  if vocab.family != "wordpiece":
    # (BERT's rules split "[CLS]" into three words; and WordPiece's pad id
    # is 0 whatever token 0 is, which text may well make.)
    special = np.zeros(ids.shape, dtype=bool)
    for i in {vocab.cls_id, vocab.sep_id, vocab.mask_id, vocab.pad_id}:
      special |= ids == i
    ids[special] = vocab.unk_id
  # Each document's sentences, then their tokens, are one run of each.
  sentence_ends = np.cumsum([len(sentences) for _, sentences in docs])
  token_ends = np.concatenate(([0], np.cumsum(lengths)))
  out, start = [], 0
  for end in sentence_ends.tolist():
    out.append((ids[token_ends[start]:token_ends[end]], lengths[start:end]))
    start = end
  return out


class _TokenizeDoFn(beam.DoFn):
  """Tokenizes batches of documents; the tokenizer loads once per worker."""

  def __init__(self, settings: TokenizerSettings, threads: int):
    self._settings = settings
    self._threads = threads
    self._tokenizer = None
    self._vocab = None

  def setup(self):
    limit_threads(self._threads)
    self._tokenizer, self._vocab = self._settings.load()
    threads = self._threads if self._threads > 0 else -1
    if hasattr(self._tokenizer, "num_threads"):  # SentencePiece
      self._tokenizer.num_threads = threads
    if getattr(self._tokenizer, "fast_path", None) is not None:  # nanotoken
      self._tokenizer.fast_path.num_threads = threads

  def process(self, batch: List[Tuple[str, Sequence[str]]]):
    try:
      results = [tokenize_documents(batch, self._tokenizer, self._vocab)]
    except Exception:  # pylint: disable=broad-except
      # One document broke the batch: tokenize them one by one and set aside
      # the ones that raise.
      results = []
      for doc in batch:
        try:
          results.append(tokenize_documents([doc], self._tokenizer,
                                            self._vocab))
        except Exception as e:  # pylint: disable=broad-except
          yield rejects.reject_exception(doc[0], "tokenize", e,
                                         SENTENCE_SEPARATOR.join(doc[1]))
    for docs, counts in results:
      for name, n in counts.items():
        metrics.count(name, n)
      for doc in docs:
        metrics.observe("sentences_per_document", doc.sentence_lengths.size)
        yield doc


class Tokenize(beam.PTransform):
  """Output: ``(documents, rejected)``: a ``TokenizedDocument`` per document
  that has any token, and a ``rejects.Rejected`` per document whose
  tokenization raised."""

  def __init__(self, settings: TokenizerSettings, *, threads: int = 1):
    super().__init__()
    self._settings = settings
    self._threads = threads

  def expand(self, docs):
    encoded = (
        docs
        # One encode_batch call per group of documents: the tokenizer's
        # per-call overhead dwarfs its per-sentence cost on short inputs.
        | "Batch" >> beam.BatchElements(min_batch_size=8, max_batch_size=128)
        | "Encode" >> beam.ParDo(
            _TokenizeDoFn(self._settings, self._threads)).with_outputs(
                rejects.REJECTED, main="documents"))
    return encoded.documents, encoded[rejects.REJECTED]
