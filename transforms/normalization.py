"""BERT's text rules, done as a few passes over whole strings.

google-research/bert's ``BasicTokenizer`` walks the text one character at a
time: it deletes NUL, U+FFFD and control characters (Unicode categories Cc
and Cf, except tab, newline and carriage return; private-use, unassigned and
surrogate code points stay, as parts of words), puts spaces around CJK
ideographs, splits on whitespace, and then, per word, lower-cases, decomposes
(NFD), deletes non-spacing marks (Mn) and splits punctuation (ASCII symbols
and category P*) off as words of their own.

``normalize`` produces a string on which splitting at whitespace gives
exactly those words: each rule is one regular-expression pass (or a built-in
string method) over the whole text, with the character classes of the Basic
Multilingual Plane built from this Python's ``unicodedata``, the tables
BERT's own code consults; the rare characters above U+FFFF are looked up one
by one. The tokenizer then only has to split at whitespace and look up word
pieces, which is about twice as fast as ``tokenizers``' own BERT normalizer
and pre-tokenizer (see tokenization.py).

tests/unit/test_tokenization.py checks, for every code point, cased and uncased,
that these words are those of BERT's own tokenization.py (PyPI
``bert-tensorflow``) run on this Python: both read the same ``unicodedata``,
so no code point differs. ``tokenizers``' BertNormalizer and
BertPreTokenizer differ (tokenizers 0.23 against Python 3.11's Unicode 14):
they delete private-use characters (Co, 137,468 code points, which BERT
keeps), start BERT's CJK range U+2B820 at U+2B920, lower-case a word-final
Greek sigma to σ, and their older or newer Unicode tables make 559 more code
points (119 cased) punctuation, marks, format characters or cased letters
on one side only.

Lone surrogates (U+D800-U+DFFF, only possible in a str decoded from JSON
escapes) pass through ``normalize`` as parts of words, as through BERT's
code, but ``tokenizers`` refuses any str holding one (TypeError), so the
reader replaces them before tokenization.

Whole-text lower-casing equals BERT's per-word lower-casing: the only
context-dependent rule, Greek final sigma, looks across case-ignorable
characters, and whitespace is not one of them.
"""

import dataclasses
import functools
import re
import unicodedata
from typing import List, Tuple

import numpy as np

# The CJK blocks that BERT's _is_chinese_char lists.
CJK_RANGES = ((0x4E00, 0x9FFF), (0x3400, 0x4DBF), (0x20000, 0x2A6DF),
              (0x2A700, 0x2B73F), (0x2B740, 0x2B81F), (0x2B820, 0x2CEAF),
              (0xF900, 0xFAFF), (0x2F800, 0x2FA1F))

# BERT counts these ASCII symbols as punctuation whatever their category.
_ASCII_PUNCTUATION = ((33, 47), (58, 64), (91, 96), (123, 126))

_OTHER, _CONTROL, _MARK, _PUNCTUATION = 0, 1, 2, 3


# BERT's _is_control: Cc and Cf only (Co, Cn and Cs are kept).
_CONTROL_CATEGORIES = ("Cc", "Cf")


def _kind(category: str) -> int:
  if category in _CONTROL_CATEGORIES:
    return _CONTROL
  if category == "Mn":
    return _MARK
  if category[0] == "P":
    return _PUNCTUATION
  return _OTHER


_KIND_OF_CATEGORY = {c: _kind(c) for c in (
    "Cc Cf Cn Co Cs Ll Lm Lo Lt Lu Mc Me Mn Nd Nl No Pc Pd Pe Pf Pi Po Ps "
    "Sc Sk Sm So Zl Zp Zs").split()}


def _escape(cp: int) -> str:
  return "\\u%04x" % cp if cp <= 0xFFFF else "\\U%08x" % cp


def _char_class(ranges: List[Tuple[int, int]]) -> str:
  return "[%s]" % "".join(
      _escape(lo) if lo == hi else "%s-%s" % (_escape(lo), _escape(hi))
      for lo, hi in ranges)


def runs(mask: np.ndarray, offset: int) -> List[Tuple[int, int]]:
  """The runs of True in ``mask`` as inclusive code point ranges."""
  edges = np.flatnonzero(np.diff(np.concatenate(
      ([0], mask.astype(np.int8), [0]))))
  return [(offset + int(lo), offset + int(hi) - 1)
          for lo, hi in zip(edges[0::2], edges[1::2])]


@dataclasses.dataclass(frozen=True)
class _Classes:
  control: "re.Pattern"  # deleted
  mark: "re.Pattern"  # deleted after NFD, when lower-casing
  punctuation: "re.Pattern"  # spaced out


@functools.lru_cache(maxsize=None)
def _bmp_classes() -> _Classes:
  """The character classes of the Basic Multilingual Plane. Python's ``re``
  tests a class of BMP characters with a bitmap, fast whatever the number of
  ranges; characters above U+FFFF (rare in text) are handled one at a time
  by ``_astral``."""
  kinds = np.array(list(map(_KIND_OF_CATEGORY.__getitem__,
                            map(unicodedata.category, map(chr, range(0x10000))))),
                   dtype=np.int8)
  control = kinds == _CONTROL
  control[[ord("\t"), ord("\n"), ord("\r")]] = False
  control[0xFFFD] = True  # U+FFFD is "So"; BERT deletes it all the same
  punctuation = kinds == _PUNCTUATION
  for a, b in _ASCII_PUNCTUATION:
    punctuation[a:b + 1] = True
  return _Classes(
      control=re.compile(_char_class(runs(control, 0))),
      mark=re.compile(_char_class(runs(kinds == _MARK, 0))),
      punctuation=re.compile("(%s)" % _char_class(runs(punctuation, 0))))


def _is_cjk(cp: int) -> bool:
  return any(lo <= cp <= hi for lo, hi in CJK_RANGES)


def _astral_clean(match: "re.Match") -> str:
  """A character above U+FFFF, before lower-casing: deleted if a control
  character, spaced out if a CJK ideograph."""
  ch = match.group()
  if unicodedata.category(ch) in _CONTROL_CATEGORIES:
    return ""
  return " %s " % ch if _is_cjk(ord(ch)) else ch


def _astral_split(match: "re.Match", lower: bool) -> str:
  """A character above U+FFFF, after NFD: deleted if a mark (when
  lower-casing), spaced out if punctuation."""
  ch = match.group()
  category = unicodedata.category(ch)
  if lower and category == "Mn":
    return ""
  return " %s " % ch if category[0] == "P" else ch


_ASCII_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_ASCII_PUNCTUATION_GROUP = re.compile(
    "(%s)" % _char_class(list(_ASCII_PUNCTUATION)))
_CJK_BMP = re.compile("(%s)" % _char_class(
    [r for r in CJK_RANGES if r[1] <= 0xFFFF]))
_ABOVE_BMP = re.compile("[\U00010000-\U0010ffff]")


def _space_out(pattern: "re.Pattern", text: str) -> str:
  """Spaces around every match of ``pattern`` (one capturing group): a split
  and a join, three times faster than ``sub`` with a template."""
  return " ".join(pattern.split(text))


def normalize(text: str, lower: bool = True) -> str:
  """``text`` with BERT's rules applied, ready to split at whitespace.

  Whitespace is left as it is (tab, newline, and every Zs, Zl or Zp
  character separate words both here, after the deletions, and for a
  splitter that uses Unicode's White_Space property).
  """
  if text.isascii():  # O(1) in CPython; ASCII needs no Unicode tables
    text = _ASCII_CONTROL.sub("", text)
    if lower:
      text = text.lower()
    return _space_out(_ASCII_PUNCTUATION_GROUP, text)
  classes = _bmp_classes()
  astral = _ABOVE_BMP.search(text) is not None
  text = classes.control.sub("", text)
  if astral:
    text = _ABOVE_BMP.sub(_astral_clean, text)
  text = _CJK_BMP.sub(r" \1 ", text)
  if lower:
    text = classes.mark.sub("", unicodedata.normalize("NFD", text.lower()))
  text = _space_out(classes.punctuation, text)
  if astral:
    text = _ABOVE_BMP.sub(functools.partial(_astral_split, lower=lower), text)
  return text
