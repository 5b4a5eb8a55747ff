"""Stable, process-independent keys and seeds.

Python's ``hash()`` of a str changes with PYTHONHASHSEED, so every key and
every random seed in the pipeline comes from BLAKE2b over explicit parts.
"""

import hashlib


def stable_hash(*parts) -> int:
  """A 64-bit integer that depends only on ``parts`` (str, bytes or int)."""
  h = hashlib.blake2b(digest_size=8)
  for part in parts:
    if isinstance(part, bytes):
      data = part
    else:
      data = str(part).encode("utf-8")
    # Length-prefix each part so ("ab", "c") and ("a", "bc") differ.
    h.update(len(data).to_bytes(4, "little"))
    h.update(data)
  return int.from_bytes(h.digest(), "little")
