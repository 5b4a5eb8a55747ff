"""Pool arithmetic: which random-next pool each document pass goes to.

Each dupe pass of each document is an *entry* with a 64-bit keyed hash
(``entry_hash``); ``pools`` pools split the hash range into equal runs
(``pool_bounds``), so a pool is one run of any list of entries sorted by hash
(what transforms/pool_files.py relies on) and an entry's pool is
``pool_of``. Shared by the instance builder (transforms/instances.py) and the
pool files.
"""

import math
from typing import List, Tuple

from transforms import keys


def num_pools(num_entries: int, pool_size: int) -> int:
  """Pools of about ``pool_size`` entries, at least one."""
  return max(1, int(math.ceil(num_entries / float(pool_size))))


def entry_hash(seed: int, doc_id: str, dupe: int) -> int:
  """The 64-bit hash that places one document pass among the pools."""
  return keys.stable_hash("pool", seed, doc_id, dupe)


def entry_hashes(seed: int, doc_id: str, passes: int) -> List[int]:
  """``entry_hash`` of each of a document's ``passes`` passes."""
  return keys.stable_hashes(("pool", seed, doc_id), range(passes))


def pool_of(seed: int, doc_id: str, dupe: int, pools: int) -> int:
  """The pool of one document's dupe pass: each pass of a document goes to
  its own random pool, so its instances spread over the output. Pools are
  ranges of ``entry_hash`` (see ``pool_bounds``), so that a pool is one run of
  any list of entries sorted by hash (transforms/pool_files.py)."""
  return (entry_hash(seed, doc_id, dupe) * pools) >> 64


def pool_bounds(pool: int, pools: int) -> Tuple[int, int]:
  """The hashes of ``pool``: ``lo <= entry_hash < hi`` (``hi`` may be
  2**64)."""
  return -(-(pool << 64) // pools), -(-((pool + 1) << 64) // pools)
