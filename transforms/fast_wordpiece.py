"""BERT's WordPiece tokenization at library speed: PyPI's ``nanotoken`` for
the sentences whose every character it treats as google-research/bert
does, this project's exact path (``normalization.normalize`` and ``tokenizers``'
WordPiece) for the rest.

``nanotoken`` (MIT; abi3 wheels for CPython 3.10+ on Linux x86_64 and
aarch64, macOS and Windows) runs a ``tokenizer.json``'s BertNormalizer,
BertPreTokenizer and WordPiece in Rust with the output of Hugging Face
``tokenizers``, at about 60 MB of English Wikipedia per CPU-second on one
thread, about 200 once its cache holds the text's words
(docs/benchmarks/wordpiece_libraries.md). ``tokenizers`` is not
google-research/bert: it deletes private-use characters, starts BERT's
last CJK range later, lower-cases a word-final Σ to σ and reads other
Unicode tables (normalization.py lists the differences). So each
character is judged once, ahead of time: ``probe_differences`` runs every
code point through both, in four contexts (alone, between letters, after
one, before one), with a vocabulary that holds every character (so a word
comes back character by character and nothing hides behind ``[UNK]``),
and marks each code point whose words differ. The marks are shipped
(``fast_wordpiece_unsafe.json``, written by ``python -m
transforms.fast_wordpiece``), one set per casing, for the ``nanotoken``
version and the Unicode version of Python's ``unicodedata`` they were made
with: BERT's rules read Python's tables, so another Python version needs
its own marks. A sentence holding a marked character takes the exact path
(``safe_sentences``: one look-up per character of the non-ASCII sentences,
as one NumPy array).

``nanotoken`` is an alpha release (0.1.0, first published three months
before this was written), so the pipeline never depends on it: where it is
missing, another version, or the marks are for another Unicode version,
every sentence takes the exact path (``fast_path_unavailable`` says why),
with the same ids. tests/unit/test_fast_wordpiece.py checks both paths
against google-research/bert's own tokenizer on the same lines;
tests/e2e/test_tokenizer_sweeps.py makes the marks again and checks every
code point.
"""

import argparse
import functools
import importlib.metadata
import json
import os
import unicodedata
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from transforms import normalization
from transforms import tokenizer_families

LIBRARY = "nanotoken"
TABLE_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                          "fast_wordpiece_unsafe.json")
CODE_POINTS = 0x110000
SURROGATES = (0xD800, 0xE000)
# Each code point is probed in these contexts ("{}" is the code point): on
# its own, inside a word, ending one after a cased letter (where Greek final
# sigma applies) and starting one.
PROBES = ("{}", "a{}b", "A{}", "{}a")


def library_version() -> Optional[str]:
  """The installed ``nanotoken``'s version, None where it is not installed."""
  try:
    return importlib.metadata.version(LIBRARY)
  except importlib.metadata.PackageNotFoundError:
    return None


@functools.lru_cache(maxsize=None)
def _read_table(path: str) -> dict:
  with open(path, encoding="utf-8") as f:
    return json.load(f)


def fast_path_unavailable(path: Optional[str] = None) -> Optional[str]:
  """Why the fast path cannot run here (a sentence), or None where it can:
  ``nanotoken`` installed, at the version the marks (``path``, the shipped
  ``TABLE_FILE`` by default) were made with, and this Python's Unicode
  version theirs."""
  path = path or TABLE_FILE
  version = library_version()
  if version is None:
    return "%s is not installed" % LIBRARY
  table = _read_table(path)
  if version != table["nanotoken"]:
    return ("%s %s is installed; the marks in %s are for %s" %
            (LIBRARY, version, os.path.basename(path), table["nanotoken"]))
  if unicodedata.unidata_version != table["unicode"]:
    return ("this Python's Unicode tables are %s; the marks in %s are for %s "
            "(python -m transforms.fast_wordpiece makes them for this one)" %
            (unicodedata.unidata_version, os.path.basename(path),
             table["unicode"]))
  return None


def unsafe_table(lower: bool, path: Optional[str] = None) -> np.ndarray:
  """Per code point (0-0x10FFFF), whether a sentence holding it takes the
  exact path: the marks of that casing (``path``, the shipped
  ``TABLE_FILE`` by default), and the surrogates (which neither UTF-8 nor
  ``tokenizers`` takes)."""
  return _unsafe_table(lower, path or TABLE_FILE)


@functools.lru_cache(maxsize=None)
def _unsafe_table(lower: bool, path: str) -> np.ndarray:
  table = np.zeros(CODE_POINTS, dtype=bool)
  for start, end in _read_table(path)["uncased" if lower else "cased"]:
    table[start:end + 1] = True
  table[SURROGATES[0]:SURROGATES[1]] = True
  return table


def safe_sentences(sentences: Sequence[str], unsafe: np.ndarray
                   ) -> np.ndarray:
  """Per sentence (bool), whether it holds no marked character. ASCII
  sentences are decided by ``str.isascii`` (no ASCII character is marked:
  ``FastWordPiece`` checks); the others together, as one array of code
  points."""
  safe = np.fromiter(map(str.isascii, sentences), dtype=bool,
                     count=len(sentences))
  others = np.flatnonzero(~safe)
  if not others.size:
    return safe
  texts = [sentences[i] for i in others.tolist()]
  codes = np.frombuffer("".join(texts).encode("utf-32-le", "surrogatepass"),
                        dtype=np.uint32)
  ends = np.cumsum(np.fromiter(map(len, texts), dtype=np.int64,
                               count=len(texts)))
  marked = np.searchsorted(ends, np.flatnonzero(unsafe[codes]), side="right")
  ok = np.ones(len(texts), dtype=bool)
  ok[marked] = False
  safe[others] = ok
  return safe


class FastWordPiece:
  """``nanotoken`` over a WordPiece vocabulary in BERT's configuration
  (``tokenizer_json``: BertNormalizer, BertPreTokenizer, WordPiece) and the
  marks of its casing. Raises ValueError where a marked ASCII character
  would break ``safe_sentences``' shortcut."""

  def __init__(self, tokenizer_json: str, lower: bool,
               path: Optional[str] = None):
    import nanotoken  # pylint: disable=import-outside-toplevel
    self._tokenizer = nanotoken.WordPieceTokenizer.from_json(tokenizer_json)
    self._unsafe = unsafe_table(lower, path)
    if self._unsafe[:128].any():
      raise ValueError("%s marks ASCII characters" % (path or TABLE_FILE))
    # Threads of one encode call; 1 (the default) keeps Beam's worker count
    # honest, as --tokenizer_threads does for the other libraries.
    self.num_threads = 1

  def safe(self, sentences: Sequence[str]) -> np.ndarray:
    return safe_sentences(sentences, self._unsafe)

  def clear_cache(self) -> None:
    """Forgets the words ``nanotoken`` has cached (its speed on text it has
    seen before is several times its speed on new text)."""
    self._tokenizer.clear_cache()

  def encode_flat(self, sentences: Sequence[str]
                  ) -> Tuple[np.ndarray, np.ndarray]:
    """The sentences' ids back to back (int64) and each one's length
    (int64), without special tokens. Only for safe sentences."""
    if not sentences:
      return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    ids, offsets = self._tokenizer.encode_batch(
        list(sentences), add_special_tokens=False,
        parallel=self.num_threads != 1)
    return ids.astype(np.int64), np.diff(offsets)


def merge_flat(safe: np.ndarray, fast: Tuple[np.ndarray, np.ndarray],
               exact: Tuple[np.ndarray, np.ndarray]
               ) -> Tuple[np.ndarray, np.ndarray]:
  """Two flat encodings (ids back to back, lengths) of the safe and the
  other sentences → one, in the sentences' order (``safe``: per sentence,
  which of the two has it)."""
  lengths = np.zeros(safe.size, dtype=np.int64)
  lengths[safe] = fast[1]
  lengths[~safe] = exact[1]
  starts = np.cumsum(lengths) - lengths
  ids = np.empty(int(lengths.sum()), dtype=np.int64)
  for part, (part_ids, part_lengths) in ((safe, fast), (~safe, exact)):
    if part_ids.size:
      part_starts = np.cumsum(part_lengths) - part_lengths
      ids[np.repeat(starts[part] - part_starts, part_lengths)
          + np.arange(part_ids.size)] = part_ids
  return ids, lengths


# --- Making the marks -------------------------------------------------------


def _probe_tokenizer_json(lower: bool) -> Tuple[str, Dict[int, str]]:
  """A ``tokenizer.json`` in BERT's configuration (as
  ``tokenization.build_tokenizer`` writes it) whose vocabulary holds every
  character and its ``##`` continuation, and its id → token map."""
  # pylint: disable=import-outside-toplevel
  from tokenizers import Tokenizer, models, normalizers, pre_tokenizers
  chars = [chr(c) for c in range(CODE_POINTS)
           if not SURROGATES[0] <= c < SURROGATES[1]]
  tokens = ["[UNK]"] + chars + ["##" + c for c in chars]
  tokenizer = Tokenizer(models.WordPiece(
      {t: i for i, t in enumerate(tokens)}, unk_token="[UNK]",
      max_input_chars_per_word=200))
  tokenizer.normalizer = normalizers.BertNormalizer(
      clean_text=True, handle_chinese_chars=True, strip_accents=None,
      lowercase=lower)
  tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
  return tokenizer.to_str(), dict(enumerate(tokens))


def probe_differences(lower: bool) -> np.ndarray:
  """Per code point, whether ``nanotoken``'s words differ from BERT's
  (``normalization.normalize`` split at whitespace, checked against BERT's
  own code for every code point by tests/unit/test_tokenization.py) in any
  of ``PROBES``. About a minute and 2 GB of memory."""
  import nanotoken  # pylint: disable=import-outside-toplevel
  tokenizer_json, token_of = _probe_tokenizer_json(lower)
  tokenizer = nanotoken.WordPieceTokenizer.from_json(tokenizer_json)
  code_points = [c for c in range(CODE_POINTS)
                 if not SURROGATES[0] <= c < SURROGATES[1]]
  differs = np.zeros(CODE_POINTS, dtype=bool)
  for probe in PROBES:
    lines = [probe.format(chr(c)) for c in code_points]
    ids, offsets = tokenizer.encode_batch(lines, add_special_tokens=False)
    ids = ids.tolist()
    for i, (c, line) in enumerate(zip(code_points, lines)):
      ours = tokenizer_families.wordpiece_words(
          [token_of[t] for t in ids[offsets[i]:offsets[i + 1]]])
      if ours != normalization.normalize(line, lower).split():
        differs[c] = True
  return differs


def make_table() -> dict:
  """The marks for the installed ``nanotoken`` and this Python."""
  table = {"nanotoken": library_version(),
           "unicode": unicodedata.unidata_version}
  for name, lower in (("uncased", True), ("cased", False)):
    table[name] = [list(run) for run in normalization.runs(
        probe_differences(lower), 0)]
  return table


def main(argv=None):
  parser = argparse.ArgumentParser(
      description="Marks the code points where nanotoken's WordPiece "
      "differs from google-research/bert's, for this Python.")
  parser.add_argument("--output", default=TABLE_FILE)
  args = parser.parse_args(argv)
  table = make_table()
  with open(args.output, "w", encoding="utf-8") as f:
    json.dump(table, f, indent=0)
    f.write("\n")
  for name in ("uncased", "cased"):
    print("%s: %d code points marked in %d runs" % (
        name, sum(e - s + 1 for s, e in table[name]), len(table[name])))


if __name__ == "__main__":
  main()
