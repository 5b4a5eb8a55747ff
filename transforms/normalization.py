"""BERT's text rules, done as a few passes over whole strings.

google-research/bert's ``BasicTokenizer`` walks the text one character at a
time: it deletes NUL, U+FFFD and control characters (Unicode category C*
except tab, newline and carriage return), puts spaces around CJK ideographs,
splits on whitespace, and then, per word, lower-cases, decomposes (NFD),
deletes non-spacing marks (Mn) and splits punctuation (ASCII symbols and
category P*) off as words of their own.

``normalize`` produces a string on which splitting at whitespace gives
exactly those words: each rule is one regular-expression pass (or a built-in
string method) over the whole text, with the character classes built from
this Python's ``unicodedata``, the same tables BERT's own code consults. The
tokenizer then only has to split at whitespace and look up word pieces, which
is about twice as fast as ``tokenizers``' own BERT normalizer and
pre-tokenizer (see tokenization.py), and it follows BERT where those differ
(final sigma, one CJK range, newer Unicode characters).

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


def _kind(category: str) -> int:
  if category[0] == "C":
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


def _runs(mask: np.ndarray, offset: int) -> List[Tuple[int, int]]:
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
def _classes(astral: bool) -> _Classes:
  """The character classes of the Basic Multilingual Plane, or of the planes
  above it. They are kept apart because Python's ``re`` tests a class of
  BMP characters with a bitmap, and one that reaches past U+FFFF range by
  range, which is many times slower on the hundreds of ranges here; text
  rarely has a character above U+FFFF, so the second set is seldom built."""
  lo, hi = (0x10000, 0x110000) if astral else (0, 0x10000)
  kinds = np.array(list(map(_KIND_OF_CATEGORY.__getitem__,
                            map(unicodedata.category, map(chr, range(lo, hi))))),
                   dtype=np.int8)
  control = kinds == _CONTROL
  punctuation = kinds == _PUNCTUATION
  if not astral:
    control[[ord("\t"), ord("\n"), ord("\r")]] = False
    control[0xFFFD] = True  # U+FFFD is "So"; BERT deletes it all the same
    for a, b in _ASCII_PUNCTUATION:
      punctuation[a:b + 1] = True
  return _Classes(
      control=re.compile(_char_class(_runs(control, lo))),
      mark=re.compile(_char_class(_runs(kinds == _MARK, lo))),
      punctuation=re.compile("(%s)" % _char_class(_runs(punctuation, lo))))


_ASCII_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_ASCII_PUNCTUATION_GROUP = re.compile(
    "(%s)" % _char_class(list(_ASCII_PUNCTUATION)))
_CJK = re.compile("(%s)" % _char_class(list(CJK_RANGES)))
_ABOVE_BMP = re.compile("[\U00010000-\U0010ffff]")


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
    return _ASCII_PUNCTUATION_GROUP.sub(r" \1 ", text)
  passes = [_classes(False)]
  if _ABOVE_BMP.search(text):
    passes.append(_classes(True))
  for classes in passes:
    text = classes.control.sub("", text)
  text = _CJK.sub(r" \1 ", text)
  if lower:
    text = unicodedata.normalize("NFD", text.lower())
    for classes in passes:
      text = classes.mark.sub("", text)
  for classes in passes:
    text = classes.punctuation.sub(r" \1 ", text)
  return text
