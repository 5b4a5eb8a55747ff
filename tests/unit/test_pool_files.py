"""transforms/pool_files.py: the spill step's tally of records set aside stays bounded."""

import json

import numpy as np

from transforms import metrics
from transforms import pool_files
from transforms import rejects
from transforms.tokenization import TokenizedDocument


def test_a_bundle_of_records_set_aside_is_saved_in_bounded_tallies(
    tmp_path, monkeypatch):
  """Every record set aside in a bundle is saved with the spill files, at
  most REJECTED_PER_TALLY per file, and the counts add up; a bundle of
  nothing else (every record bad) never holds more than that many."""
  monkeypatch.setattr(metrics, "REJECTED_PER_TALLY", 3)
  spill = pool_files._SpillDoFn(str(tmp_path), seed=1, passes=2)  # pylint: disable=protected-access
  spill.setup()
  spill.start_bundle()
  out = []
  held = []
  for i in range(8):
    rejects.reject("a.txt:%d" % i, "read", "bad_json", "not JSON")
    held.append(len(metrics.current_tally().rejected))
  out.extend(spill.process(TokenizedDocument(
      "b.txt:0", np.arange(5, dtype=np.int32), np.array([2, 3], np.int32))))
  for i in range(8, 10):
    rejects.reject("a.txt:%d" % i, "read", "bad_json", "not JSON")
  out.extend(w.value for w in spill.finish_bundle())
  assert max(held) < 3
  saved = [r for f in out if f.rejected
           for r in pool_files.read_rejected(str(tmp_path), f.rejected)]
  assert sorted(r.doc_id for r in saved) == sorted(
      "a.txt:%d" % i for i in range(10))
  assert all(len(list(pool_files.read_rejected(str(tmp_path), f.rejected)))
             <= 3 for f in out if f.rejected)
  counts = sum((metrics.Tally.from_json(json.loads(f.tally)).counts
                for f in out), metrics.Tally().counts)
  assert counts["rejected_records"] == 10
  assert counts["rejected/bad_json"] == 10
  assert sum(f.records for f in out) == 2  # the document, two passes


def test_entry_hashes_are_each_passes_entry_hash():
  """``entry_hashes`` (the prefix hashed once) gives ``entry_hash`` of
  every pass, for ids of any characters."""
  from transforms import pools  # pylint: disable=import-outside-toplevel
  for seed, doc_id in ((0, ""), (12345, "a.txt:0"), (2 ** 40, "wiki/é:77#2")):
    assert pools.entry_hashes(seed, doc_id, 7) == [
        pools.entry_hash(seed, doc_id, dupe) for dupe in range(7)]
  assert pools.entry_hashes(1, "x", 0) == []
