"""Stable, process-independent keys and seeds.

Python's ``hash()`` of a str changes with PYTHONHASHSEED, so every key and
every random seed in the pipeline comes from BLAKE2b over explicit parts.
"""

import hashlib
from typing import Iterable, List, Sequence


def _update(h, part) -> None:
  data = part if isinstance(part, bytes) else str(part).encode("utf-8")
  # Length-prefix each part so ("ab", "c") and ("a", "bc") differ.
  h.update(len(data).to_bytes(4, "little"))
  h.update(data)


def stable_hash(*parts) -> int:
  """A 64-bit integer that depends only on ``parts`` (str, bytes or int)."""
  h = hashlib.blake2b(digest_size=8)
  for part in parts:
    _update(h, part)
  return int.from_bytes(h.digest(), "little")


def stable_hashes(prefix: Sequence, lasts: Iterable) -> List[int]:
  """``[stable_hash(*prefix, last) for last in lasts]``, the prefix hashed
  once."""
  start = hashlib.blake2b(digest_size=8)
  for part in prefix:
    _update(start, part)
  out = []
  for last in lasts:
    h = start.copy()
    _update(h, last)
    out.append(int.from_bytes(h.digest(), "little"))
  return out
