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

import unicodedata
from typing import List, Optional, Sequence

from transforms.tokenizer_families import SPM_SPACE


def albert_preprocess(text: str, lower: bool) -> str:
  """ALBERT's ``preprocess_text``: whitespace runs to one space (the ends
  stripped), NFKD, combining marks dropped, lower-cased if ``lower``."""
  text = unicodedata.normalize("NFKD", " ".join(text.strip().split()))
  text = "".join(c for c in text if not unicodedata.combining(c))
  return text.lower() if lower else text


def _digit_before_comma(text: str) -> bool:
  """Whether a comma in ``text`` follows a digit (``str.isdigit``, as
  ALBERT's test); visits the commas only."""
  k = text.find(",", 1)
  while k > 0:
    if text[k - 1].isdigit():
      return True
    k = text.find(",", k + 1)
  return False


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
    """Each sentence's ids, one ``encode`` call for all of them."""
    texts = [self.prepare(s) for s in sentences]
    ids = self._sp.encode(texts, out_type=int, num_threads=self.num_threads)
    if self._albert:
      for i, text in enumerate(texts):
        if "," in text or not text.isascii():
          # A piece can end in a digit and a comma only where the model's
          # normalized text has them (NFKC makes "²﹐" "2,").
          if _digit_before_comma(self._sp.normalize(text)):
            ids[i] = self._albert_ids(text)
    if self._fairseq:
      ids = [fairseq_ids(row) for row in ids]
    return ids

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
