"""The three tokenizer families: which one a vocabulary file belongs to, its
special tokens, and where its words start.

* ``wordpiece`` (BERT, ELECTRA): a BERT ``vocab.txt``, or a
  ``tokenizer.json`` whose model is WordPiece. Special tokens ``[CLS]
  [SEP] [MASK] [PAD] [UNK]``. A piece continues the word before it when it
  starts with the model's continuing prefix (``##``), as in
  google-research/bert's whole-word masking.
* ``bpe`` (GPT-2's byte-level BPE: RoBERTa): a ``tokenizer.json`` whose
  pre-tokenizer is ByteLevel, or RoBERTa's ``vocab.json`` and
  ``merges.txt``. Special tokens ``<s> </s> <mask> <pad> <unk>``. A piece
  starts a word when its text starts with a space (``Ġ`` in the
  vocabulary), as fairseq's whole-word masking decides
  (``GPT2BPE.is_beginning_of_word``); a special token starts one too.
* ``sentencepiece`` (Unigram or BPE: ALBERT, XLM-R): a SentencePiece
  ``.model`` (``--spm_model_file``), or a ``tokenizer.json`` whose
  pre-tokenizer is Metaspace. Special tokens ALBERT's ``[CLS] [SEP]
  [MASK] <pad> <unk>`` when the vocabulary holds ``[CLS]``, XLM-R's ``<s>
  </s> <mask> <pad> <unk>`` otherwise. A piece starts a word as ALBERT's
  ``create_pretraining_data.py`` decides (``_is_start_piece_sp``): it starts
  with ``▁`` or ``<``, is one punctuation character, or holds a character
  that is neither an English letter nor that punctuation ("foreign
  characters" are whole pieces there).

Each special token can be named by a flag instead (``--cls_token`` …);
``special_tokens`` resolves them and says in one line which are missing.
"""

import dataclasses
import json
from typing import Dict, List, Optional, Sequence

import numpy as np

FAMILIES = ("wordpiece", "bpe", "sentencepiece")
ROLES = ("cls", "sep", "mask", "pad", "unk")

# The space byte as byte-level BPE writes it (GPT-2's bytes_to_unicode maps
# 0x20 to U+0120).
BYTE_LEVEL_SPACE = "\u0120"
# SentencePiece's word-start mark (U+2581).
SPM_SPACE = "\u2581"
# ALBERT's _is_start_piece_sp: this punctuation is a word of its own, and
# with the English letters it is what a continuation piece may hold. It is
# ASCII's punctuation less the apostrophe and "<=>", as ALBERT's string
# literal spells it ('!"#$%&\"()*+,-./:;?@[\\]^_`{|}~').
_ALBERT_PUNCTUATION = frozenset('!"#$%&()*+,-./:;?@[\\]^_`{|}~')
_ALBERT_CONTINUATION_CHARS = _ALBERT_PUNCTUATION | frozenset(
    "abcdefghijklmnopqrstuvwxyz")


@dataclasses.dataclass(frozen=True, kw_only=True)
class SpecialTokens:
  """The text of each special token the examples use."""
  cls: str
  sep: str
  mask: str
  pad: str
  unk: str

  def as_dict(self) -> Dict[str, str]:
    return dataclasses.asdict(self)


BERT_TOKENS = SpecialTokens(cls="[CLS]", sep="[SEP]", mask="[MASK]",
                            pad="[PAD]", unk="[UNK]")
ROBERTA_TOKENS = SpecialTokens(cls="<s>", sep="</s>", mask="<mask>",
                               pad="<pad>", unk="<unk>")
ALBERT_TOKENS = SpecialTokens(cls="[CLS]", sep="[SEP]", mask="[MASK]",
                              pad="<pad>", unk="<unk>")


class SpecialTokenError(ValueError):
  """A special token the examples need is not in the vocabulary."""


def default_special_tokens(family: str, tokens: Sequence[str]
                           ) -> SpecialTokens:
  """The family's special tokens; for SentencePiece, ALBERT's when the
  vocabulary holds ``[CLS]``, XLM-R's otherwise."""
  if family == "wordpiece":
    return BERT_TOKENS
  if family == "bpe":
    return ROBERTA_TOKENS
  return ALBERT_TOKENS if "[CLS]" in set(tokens) else ROBERTA_TOKENS


def special_tokens(family: str, tokens: Sequence[str], path: str,
                   overrides: Optional[Dict[str, Optional[str]]] = None
                   ) -> SpecialTokens:
  """The family's special tokens with ``overrides`` (role → token text,
  None: the default) applied. Raises ``SpecialTokenError`` naming each one
  missing from ``tokens`` (the vocabulary of ``path``), the flags that
  name others, and the special-looking tokens the file has. A WordPiece
  vocabulary needs no pad token: BERT pads with id 0 whatever it is."""
  chosen = default_special_tokens(family, tokens).as_dict()
  chosen.update({k: v for k, v in (overrides or {}).items() if v})
  present = set(tokens)
  missing = [role for role, token in chosen.items()
             if token not in present
             and not (role == "pad" and family == "wordpiece")]
  if missing:
    found = [t for t in tokens if _looks_special(t)]
    raise SpecialTokenError(
        "vocabulary %s lacks %s (a %s vocabulary; name others with %s); its "
        "special-looking tokens: %s"
        % (path, ", ".join(chosen[r] for r in missing), family,
           ", ".join("--%s_token" % r for r in missing),
           ", ".join(found[:12]) + (" ..." if len(found) > 12 else "")
           if found else "none"))
  return SpecialTokens(**chosen)


def _looks_special(token: str) -> bool:
  return len(token) > 2 and ((token[0], token[-1]) in (("[", "]"),
                                                       ("<", ">")))


def albert_is_start_piece(piece: str) -> bool:
  """Whether a SentencePiece piece starts a word, by the rule of
  google-research/albert's ``_is_start_piece_sp`` (as it runs under
  Python 3): it starts with ``▁`` or ``<``, is one of its punctuation
  characters, or holds a character whose lower case is neither an English
  letter nor that punctuation."""
  return (piece.startswith((SPM_SPACE, "<")) or piece in _ALBERT_PUNCTUATION
          or not all(c.lower() in _ALBERT_CONTINUATION_CHARS for c in piece))


def continuation_pieces(family: str, tokens: Sequence[str],
                        specials: Sequence[str],
                        wordpiece_prefix: str = "##") -> np.ndarray:
  """bool per id: the piece continues the word before it (whole-word,
  n-gram and span masking group it with that word). Special tokens never
  continue one."""
  if family == "wordpiece":
    out = [t.startswith(wordpiece_prefix) and len(t) > len(wordpiece_prefix)
           for t in tokens]
  elif family == "bpe":
    out = [not t.startswith(BYTE_LEVEL_SPACE) for t in tokens]
  else:
    out = [not albert_is_start_piece(t) for t in tokens]
  special = set(specials)
  return np.array([c and t not in special for c, t in zip(out, tokens)],
                  dtype=bool)


def wordpiece_words(tokens: Sequence[str]) -> List[str]:
  """WordPiece tokens → the words they spell: each ``##`` piece joined to
  the piece before it (a leading ``##`` piece stands as a word)."""
  words: List[str] = []
  for token in tokens:
    if token.startswith("##") and words:
      words[-1] += token[2:]
    else:
      words.append(token)
  return words


def tokenizer_json_family(config: Dict) -> str:
  """The family of a parsed ``tokenizer.json``: its model's type, and for
  BPE its pre-tokenizer or decoder (ByteLevel: ``bpe``; Metaspace:
  ``sentencepiece``, as SentencePiece BPE models convert; another, such as
  Whitespace with a ``##`` prefix: ``wordpiece``, BERT's special tokens and
  word rule, as WordLevel models too). Raises ValueError for a model none of
  the families has."""
  model = (config.get("model") or {}).get("type")
  if model in ("WordPiece", "WordLevel"):
    return "wordpiece"
  if model == "Unigram":
    return "sentencepiece"
  if model == "BPE":
    kinds = (_component_types(config.get("pre_tokenizer"))
             + _component_types(config.get("decoder")))
    if "Metaspace" in kinds:
      return "sentencepiece"
    if "ByteLevel" in kinds:
      return "bpe"
    return "wordpiece"
  raise ValueError("its model is %s; WordPiece, WordLevel, BPE and Unigram "
                   "models are read" % (model or "missing"))


def _component_types(component: Optional[Dict]) -> List[str]:
  """The types of a normalizer or pre-tokenizer and of those in it (a
  Sequence's)."""
  if not component:
    return []
  kinds = [component.get("type")]
  for key in ("pretokenizers", "normalizers", "decoders"):
    for inner in component.get(key) or []:
      kinds.extend(_component_types(inner))
  return kinds


def read_vocab_json(text: str, path: str) -> List[str]:
  """RoBERTa's ``vocab.json`` (token → id) → tokens in id order. Raises
  ValueError when it is not such a mapping or its ids leave gaps."""
  try:
    vocab = json.loads(text)
  except ValueError as e:
    raise ValueError("%s is not JSON (%s)" % (path, e)) from None
  if not isinstance(vocab, dict) or not all(
      isinstance(i, int) for i in vocab.values()):
    raise ValueError("%s is not a vocab.json (a JSON object of token to id)"
                     % path)
  tokens = [""] * len(vocab)
  for token, i in vocab.items():
    if not 0 <= i < len(vocab) or tokens[i]:
      raise ValueError("%s gives ids that are not 0..%d, each once"
                       % (path, len(vocab) - 1))
    tokens[i] = token
  return tokens
