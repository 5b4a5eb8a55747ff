"""A SentencePiece model (``--spm_model_file``, ALBERT's and XLM-R's
``.model``) as the pipeline's tokenizer, run by the ``sentencepiece``
library itself.

With ``albert_rules`` the text goes as google-research/albert's
``create_pretraining_data.py`` sends it (``tokenization.preprocess_text``,
then ``encode_pieces``): runs of whitespace become one space, the text is
NFKD-normalized and its combining marks dropped, lower-cased with
``do_lower_case``, and a piece that ends in a digit and a comma is encoded
again without its ``▁`` and the comma split off. Without, the text goes to
the model as it is (lower-cased with ``do_lower_case``), as fairseq's XLM-R
preprocessing sends it; the model's own normalizer still applies.

A model laid out as XLM-R's released ``sentencepiece.bpe.model`` is (its
first pieces ``<unk> <s> </s>``, no ``<pad>`` and no ``<mask>``) is read
with fairseq's dictionary over it, as XLM-R was trained and as
``transformers``' ``XLMRobertaTokenizer`` reads it: ``<s> <pad> </s>
<unk>`` are ids 0-3, every other piece is its SentencePiece id plus one,
and ``<mask>`` follows the last piece (``fairseq_ids``).
tests/unit/test_tokenizer_families.py checks both against the reference
code (``sentencepiece`` and PyPI's ``albert-tensorflow``).
"""

import functools
import itertools
import unicodedata
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from transforms.tokenizer_families import SPM_SPACE


def albert_preprocess(text: str, lower: bool) -> str:
  """ALBERT's ``preprocess_text``: whitespace runs to one space (the ends
  stripped), NFKD, combining marks dropped, lower-cased if ``lower``.

  Done with less work where the result is the same: text that is
  printable (so its only whitespace is the ASCII space) with no space
  doubled or at an end is its own whitespace-collapsed form; ASCII text is
  its own NFKD form and holds no combining mark."""
  if not (text.isprintable() and "  " not in text and text[:1] != " "
          and text[-1:] != " "):
    text = " ".join(text.split())
  if not text.isascii():
    text = unicodedata.normalize("NFKD", text).translate(_combining_marks())
  return text.lower() if lower else text


def albert_preprocess_batch(texts: Sequence[str], lower: bool) -> List[str]:
  """``albert_preprocess`` of each text, the NFKD and the combining marks
  done once for all the texts that are not ASCII (joined by newlines,
  which none holds once its whitespace is collapsed, and filtered as one
  array of code points)."""
  out = [t if (t.isprintable() and "  " not in t and t[:1] != " "
               and t[-1:] != " ") else " ".join(t.split()) for t in texts]
  others = [i for i, t in enumerate(out) if not t.isascii()]
  if others:
    joined = unicodedata.normalize("NFKD", "\n".join(out[i] for i in others))
    codes = np.frombuffer(joined.encode("utf-32-le"), dtype=np.uint32)
    kept = codes[~_combining_table()[codes]].tobytes().decode("utf-32-le")
    for i, text in zip(others, kept.split("\n")):
      out[i] = text
  return [t.lower() for t in out] if lower else out


@functools.lru_cache(maxsize=None)
def _combining_table() -> np.ndarray:
  """Per code point, whether it is a combining mark (``_combining_marks``)."""
  table = np.zeros(0x110000, dtype=bool)
  table[np.fromiter(_combining_marks(), dtype=np.int64)] = True
  return table


@functools.lru_cache(maxsize=None)
def _combining_marks() -> Dict[int, None]:
  """``str.translate``'s table that drops every character
  ``unicodedata.combining`` calls a combining mark (a non-zero canonical
  combining class); built once, on the first text that is not ASCII."""
  return {code: None for code in range(0x110000)
          if unicodedata.combining(chr(code))}


def flatten_ids(rows: Sequence[Sequence[int]]
                ) -> Tuple[np.ndarray, np.ndarray]:
  """Rows of ids → ``(ids back to back, lengths)``, both int64, without a
  Python step per token."""
  lengths = np.fromiter(map(len, rows), dtype=np.int64, count=len(rows))
  ids = np.fromiter(itertools.chain.from_iterable(rows), dtype=np.int64,
                    count=int(lengths.sum()))
  return ids, lengths


# fairseq's Dictionary puts these four first; XLM-R's dictionary then lists
# the model's pieces from its fourth on (ids shifted by one), and its
# <mask> last (fairseq's RobertaModel.from_pretrained for XLM-R; transformers'
# XLMRobertaTokenizer: fairseq_tokens_to_ids, fairseq_offset = 1).
FAIRSEQ_HEAD = ("<s>", "<pad>", "</s>", "<unk>")
FAIRSEQ_MODEL_HEAD = ["<unk>", "<s>", "</s>"]
FAIRSEQ_OFFSET = 1


def has_fairseq_layout(pieces: Sequence[str]) -> bool:
  """Whether a model's pieces (in id order) are laid out as XLM-R's
  released model: ``<unk> <s> </s>`` first, no ``<pad>``, no ``<mask>``."""
  return (list(pieces[:3]) == FAIRSEQ_MODEL_HEAD
          and "<pad>" not in pieces and "<mask>" not in pieces)


def fairseq_ids(model_ids: Sequence[int]) -> List[int]:
  """A model's ids → fairseq's dictionary ids over it: each plus one, the
  unknown piece (model id 0) fairseq's ``<unk>`` (3)."""
  return [i + FAIRSEQ_OFFSET if i else FAIRSEQ_HEAD.index("<unk>")
          for i in model_ids]


class SentencePieceTokenizer:
  """Encodes sentences with a SentencePiece model (``model``: the
  ``.model`` file's bytes). Offers what the pipeline calls on a tokenizer:
  ``encode_sentences``, ``token_to_id``, ``pieces``, ``do_lower_case``."""

  def __init__(self, model: bytes, do_lower_case: bool, albert_rules: bool):
    import sentencepiece  # pylint: disable=import-outside-toplevel
    self._sp = sentencepiece.SentencePieceProcessor(model_proto=model)
    self._lower = do_lower_case
    self._albert = albert_rules
    # Threads of one encode call (-1: every core); the Tokenize stage sets
    # --tokenizer_threads here, 1 by default, so that Beam's worker count
    # stays honest.
    self.num_threads = 1
    model_pieces = [self._sp.id_to_piece(i)
                    for i in range(self._sp.get_piece_size())]
    self._fairseq = has_fairseq_layout(model_pieces)
    if self._fairseq:
      self._pieces = (list(FAIRSEQ_HEAD) + model_pieces[3:] + ["<mask>"])
    else:
      self._pieces = model_pieces
    self._ids = {p: i for i, p in enumerate(self._pieces)}
    # The pieces ALBERT's digit-comma rule encodes again.
    self._digit_comma = np.array(
        [len(p) > 1 and p[-1] == "," and p[-2].isdigit()
         for p in model_pieces], dtype=bool)
    self._comma_unknown = self._sp.piece_to_id(",") == self._sp.unk_id()
    self._comma_splits: Dict[int, np.ndarray] = {}

  @property
  def do_lower_case(self) -> bool:
    return self._lower

  @property
  def albert_rules(self) -> bool:
    return self._albert

  @property
  def fairseq_layout(self) -> bool:
    """Whether ids are fairseq's dictionary's over the model (XLM-R's)."""
    return self._fairseq

  def pieces(self) -> List[str]:
    """Every token, in id order (with ``fairseq_layout``, fairseq's
    dictionary: ``<s> <pad> </s> <unk>``, the model's pieces from its
    fourth, ``<mask>``)."""
    return list(self._pieces)

  def token_to_id(self, token: str) -> Optional[int]:
    return self._ids.get(token)

  def prepare(self, text: str) -> str:
    """The text as the model gets it."""
    if self._albert:
      return albert_preprocess(text, self._lower)
    return text.lower() if self._lower else text

  def encode_sentences(self, sentences: Sequence[str]) -> List[List[int]]:
    """Each sentence's ids (``encode_flat`` cut back into rows)."""
    if not sentences:
      return []
    ids, lengths = self.encode_flat(sentences)
    return [row.tolist() for row in np.split(ids, np.cumsum(lengths)[:-1])]

  def encode_flat(self, sentences: Sequence[str]
                  ) -> Tuple[np.ndarray, np.ndarray]:
    """Every sentence's ids back to back (int64) and each one's length
    (int64), one ``encode`` call for all of them and no Python step per
    token."""
    ids, lengths = self._model_ids(sentences)
    if self._fairseq:
      ids = np.where(ids == 0, FAIRSEQ_HEAD.index("<unk>"),
                     ids + FAIRSEQ_OFFSET)
    return ids, lengths

  def _model_ids(self, sentences: Sequence[str]
                 ) -> Tuple[np.ndarray, np.ndarray]:
    """The model's own ids of the sentences (ALBERT's rules applied), laid
    out flat as ``encode_flat``'s."""
    if not self._albert:
      return self._encode([self.prepare(s) for s in sentences])
    texts = albert_preprocess_batch(sentences, self._lower)
    if self._comma_unknown:
      # An unknown piece is a run of characters the model does not know, so
      # it ends in a digit and a comma only for a model that does not know
      # the comma: such a model's text goes the way ALBERT's code goes, by
      # the pieces' text.
      return flatten_ids([self._albert_ids(text) for text in texts])
    return self._split_digit_commas(*self._encode(texts))

  def _encode(self, texts: List[str]) -> Tuple[np.ndarray, np.ndarray]:
    """The texts' ids back to back (int64) and each one's length, one
    ``encode`` call for all of them."""
    return flatten_ids(self._sp.encode(texts, out_type=int,
                                       num_threads=self.num_threads))

  def _split_digit_commas(self, ids: np.ndarray, lengths: np.ndarray
                          ) -> Tuple[np.ndarray, np.ndarray]:
    """ALBERT's digit-comma rule (``_albert_ids``) on flat ids of a model
    that knows the comma: each piece that ends in a digit and a comma
    replaced by ``_comma_split``'s ids, lengths grown to match."""
    hits = np.flatnonzero(self._digit_comma[ids])
    if not hits.size:
      return ids, lengths
    parts, grown, start = [], [], 0
    for at, piece in zip(hits.tolist(), ids[hits].tolist()):
      again = self._comma_split(piece)
      parts += [ids[start:at], again]
      grown.append(again.size - 1)
      start = at + 1
    parts.append(ids[start:])
    lengths = lengths.copy()
    np.add.at(lengths, np.searchsorted(np.cumsum(lengths), hits, side="right"),
              np.array(grown, dtype=np.int64))
    return np.concatenate(parts), lengths

  def _comma_split(self, piece: int) -> np.ndarray:
    """The ids ALBERT's digit-comma rule puts for the piece ``piece``: its
    text without ``▁`` and without its comma encoded again, then the comma
    (``_albert_ids``); one encode per piece, remembered."""
    again = self._comma_splits.get(piece)
    if again is None:
      text = self._sp.id_to_piece(piece)
      again = np.array(
          self._sp.encode(text[:-1].replace(SPM_SPACE, ""), out_type=int)
          + [self._sp.piece_to_id(",")], dtype=np.int64)
      self._comma_splits[piece] = again
    return again

  def _albert_ids(self, text: str) -> List[int]:
    """ALBERT's ``encode_pieces`` and ``PieceToId``, as they run under
    Python 3: a piece ending in a digit and a comma is encoded again
    without its ``▁`` (the model adds its own), and the comma follows as a
    piece of its own. ALBERT's step that would then drop that added ``▁``
    compares text with bytes under Python 3 and never applies."""
    out: List[int] = []
    for piece in self._sp.encode(text, out_type=str):
      if len(piece) > 1 and piece[-1] == "," and piece[-2].isdigit():
        again = self._sp.encode(piece[:-1].replace(SPM_SPACE, ""),
                                out_type=str)
        out.extend(self._sp.piece_to_id(p) for p in again + [","])
      else:
        out.append(self._sp.piece_to_id(piece))
    return out
