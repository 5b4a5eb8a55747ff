"""An independent, plain-Python statement of BERT's FullTokenizer rules
(google-research/bert tokenization.py, as described in its docstrings and the
BERT paper's appendix), written here for the tests: clean the text, space out
CJK ideographs, split on whitespace, lower-case and strip accents, split off
punctuation, then greedy longest-match-first WordPiece."""

import unicodedata

# CJK Unified Ideographs blocks that BERT treats as one-character words.
CJK_RANGES = ((0x4E00, 0x9FFF), (0x3400, 0x4DBF), (0x20000, 0x2A6DF),
              (0x2A700, 0x2B73F), (0x2B740, 0x2B81F), (0x2B820, 0x2CEAF),
              (0xF900, 0xFAFF), (0x2F800, 0x2FA1F))


def _whitespace(ch):
  return ch in " \t\n\r" or unicodedata.category(ch) == "Zs"


def _control(ch):
  if ch in "\t\n\r":
    return False
  return unicodedata.category(ch).startswith("C")


def _punctuation(ch):
  cp = ord(ch)
  if 33 <= cp <= 47 or 58 <= cp <= 64 or 91 <= cp <= 96 or 123 <= cp <= 126:
    return True
  return unicodedata.category(ch).startswith("P")


def _cjk(cp):
  return any(lo <= cp <= hi for lo, hi in CJK_RANGES)


def basic_tokens(text, lower=True):
  cleaned = []
  for ch in text:
    cp = ord(ch)
    if cp == 0 or cp == 0xFFFD or _control(ch):
      continue
    if _whitespace(ch):
      cleaned.append(" ")
    elif _cjk(cp):
      cleaned.append(" %s " % ch)
    else:
      cleaned.append(ch)
  words = []
  for word in "".join(cleaned).split():
    if lower:
      word = word.lower()
      word = "".join(c for c in unicodedata.normalize("NFD", word)
                     if unicodedata.category(c) != "Mn")
    current = ""
    for ch in word:
      if _punctuation(ch):
        if current:
          words.append(current)
          current = ""
        words.append(ch)
      else:
        current += ch
    if current:
      words.append(current)
  return words


def wordpiece(word, vocab, unk="[UNK]", max_chars=200):
  if len(word) > max_chars:
    return [unk]
  pieces, start = [], 0
  while start < len(word):
    end = len(word)
    piece = None
    while start < end:
      candidate = word[start:end]
      if start > 0:
        candidate = "##" + candidate
      if candidate in vocab:
        piece = candidate
        break
      end -= 1
    if piece is None:
      return [unk]
    pieces.append(piece)
    start = end
  return pieces


def full_tokenize(text, vocab, lower=True):
  out = []
  for word in basic_tokens(text, lower):
    out.extend(wordpiece(word, vocab))
  return out
