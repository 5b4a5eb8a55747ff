"""``--resume``: a failed or stopped run's finished work, found and reused.

What a run leaves that another can reuse, all in its pool directory
(``pool_directory``: one per output, ``OUTPUT/_pools/mlm-pools-<hash>`` by
default), which a run keeps when it fails or is stopped and removes when
it finishes:

* ``RUN_RECORD``: the flags and input files of the run (``run_record``). A
  resumed run must have the same ones: what the examples depend on.
* the spilled stage (transforms/pool_files.py): once every document is
  read, tokenized and spilled, ``spilled.json`` lists the spill files (each
  checked here by name and size) with what that stage counted and the
  records it set aside. A resumed run then starts at the pools.
* each pool group's output (transforms/shards.py ``write_group_record``):
  its record in ``shards/`` names the files it wrote (a TFRecord or
  Parquet shard, MDS shards, or a Megatron fragment in the pool
  directory), their sizes, what its steps counted and what the format's
  last step needs of it (an MDS shard's ``index.json`` entry, a Megatron
  fragment's counts). A resumed run builds only the groups without a
  record whose files are all there at those sizes.

The examples are the same as an uninterrupted run's: every stage's output
depends only on the seed, the flags and the documents (keyed randomness),
never on which run made it. So are the counts in ``summary.json``: the
reused work's saved counts are added to the new run's (``add_reused``).
Finer reuse is not kept: a run stopped inside the spilled stage reads the
corpus again.
"""

import dataclasses
import hashlib
import json
import logging
import os
import shutil
import tempfile
import time
from typing import Dict, List, Optional, Sequence

from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

from pipelines import outputs
from pipelines.options import UsageError
from transforms import pools
from transforms import metrics
from transforms import paths
from transforms import pool_files
from transforms import rejects
from transforms import shards

RUN_RECORD = "run.json"
SHARDS_DIR = "shards"
# Options that change nothing in the examples, so a resumed run may change
# them (how the run shows itself, where and how fast it works), or that the
# record holds in another form: the output names the pool directory itself
# (spelled relative or absolute), the input is recorded as the files it
# matched, and --resume needs the pool files whatever --pool_shuffle says.
FREE_OPTIONS = frozenset(["resume", "overwrite", "quiet", "progress_seconds",
                          "log_level", "tokenizer_threads", "fast_wordpiece",
                          "pool_dir",
                          "max_rejected_fraction", "output", "input",
                          "pool_shuffle"])


@dataclasses.dataclass(frozen=True)
class ResumePlan:
  """What a run reuses: ``spilled``, the spill files of a finished spilled
  stage (None: the stage runs); ``done``, pool group → the record of its
  finished shard (transforms/examples.py), reused when ``spilled`` is."""
  spilled: Optional[List[pool_files.SpillFile]] = None
  done: Dict[int, Dict] = dataclasses.field(default_factory=dict)

  @property
  def shards(self) -> List[str]:
    """The names of the files the finished groups wrote in the output
    folder, which the resumed run keeps."""
    return sorted(name for record in self.done.values()
                  for name, _ in record["files"])

  def tally(self) -> metrics.Tally:
    """What the reused work counted."""
    total = metrics.Tally()
    for f in self.spilled or ():
      if f.tally:
        total.merge(metrics.Tally.from_json(json.loads(f.tally)))
    for record in self.done.values():
      total.merge(metrics.Tally.from_json(record["tally"]))
    return total

  def describe(self, groups: Optional[int]) -> str:
    if self.spilled is None:
      return "nothing to reuse: the run starts from the input"
    read = self.tally().counts.get("input_bytes", 0)
    return ("reusing the spilled stage (%d pool files, %.1f MB of input read) and "
            "%d of %d shards" % (sum(1 for f in self.spilled if f.records),
                                 read / 1e6, len(self.done), groups or 0))

  def summary(self, groups: Optional[int]) -> Dict:
    """summary.json's ``resumed``."""
    return {"spilled_stage_reused": self.spilled is not None,
            "spill_files": sum(1 for f in self.spilled or () if f.records),
            "input_bytes_reused": self.tally().counts.get("input_bytes", 0),
            "shards_reused": len(self.done), "shards": groups or 0}


def pool_directory(parent: str, output: str) -> str:
  """The pool directory of the run writing ``output``, in ``parent``: named
  from the output, so a resumed run finds it."""
  if "://" not in output:
    output = os.path.abspath(output)
  name = "mlm-pools-%s" % hashlib.sha256(
      output.rstrip("/").encode("utf-8")).hexdigest()[:16]
  return FileSystems.join(parent, name) if "://" in parent else os.path.join(
      parent, name)


def default_parent(output: str, local_runner: bool) -> str:
  """Where the pool directory goes without ``--pool_dir``: ``OUTPUT/_pools``
  (a local folder or an object-store prefix every worker reaches, since
  they all write the output there), or on the DirectRunner with an object
  store output the system's temp directory (a local disk is faster than a
  round trip to the store)."""
  if "://" not in output:
    return os.path.join(output, outputs.POOLS_DIR)
  if local_runner:
    return tempfile.gettempdir()
  return FileSystems.join(output, outputs.POOLS_DIR)


def run_record(options: Dict, files: Sequence[paths.InputFile]) -> Dict:
  """What a run's examples depend on: every option but ``FREE_OPTIONS``,
  and each input file's name, size and time of last change."""
  return {"options": {k: v for k, v in sorted(options.items())
                      if k not in FREE_OPTIONS},
          # Whole seconds: S3 gives a listing milliseconds, a HEAD request
          # not, and --input may name a file either way.
          "input_files": [[f.path, f.size, int(f.modified)]
                          for f in files]}


def _read_json(path: str):
  try:
    with FileSystems.open(path, compression_type=CompressionTypes
                          .UNCOMPRESSED) as f:
      return json.loads(f.read())
  except Exception:  # pylint: disable=broad-except
    return None


def _difference(before: Dict, now: Dict) -> str:
  for name in sorted(set(before["options"]) | set(now["options"])):
    was, is_ = before["options"].get(name), now["options"].get(name)
    if was != is_:
      return "--%s was %s, now %s" % (name, json.dumps(was), json.dumps(is_))
  was, is_ = before["input_files"], now["input_files"]
  if [f[:2] for f in was] != [f[:2] for f in is_]:
    return ("the input was %d files, %d bytes; now %d files, %d bytes"
            % (len(was), sum(f[1] for f in was), len(is_),
               sum(f[1] for f in is_)))
  for old, new in zip(was, is_):
    if old != new:
      return ("%s changed since the stopped run (same size, modified at %s, "
              "was %s)" % (new[0], _when(new[-1]),
                           _when(old[2]) if len(old) > 2 else "not recorded"))
  return ""


def _when(seconds: float) -> str:
  return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(seconds))


def _size(path: str) -> Optional[int]:
  try:
    return FileSystems.match([path])[0].metadata_list[0].size_in_bytes
  except Exception:  # pylint: disable=broad-except
    return None


def _spill_intact(pool_dir: str, files: Sequence[pool_files.SpillFile]
                  ) -> bool:
  """Whether every spill file is there at its size, with its index and its
  set-aside records."""
  join = FileSystems.join
  for f in files:
    if f.records and (
        _size(join(pool_dir, f.name + pool_files.DATA_SUFFIX)) != f.size
        or _size(join(pool_dir, f.name + pool_files.INDEX_SUFFIX)) is None):
      return False
    if f.rejected and _size(join(pool_dir, f.rejected)) is None:
      return False
  return True


def num_groups(files: Sequence[pool_files.SpillFile], pool_size: int) -> int:
  """How many pool groups (and so shards) the spilled files make."""
  return pool_files.num_groups(
      pools.num_pools(sum(f.records for f in files), pool_size),
      sum(f.size for f in files))


def plan(pool_dir: str, output: str, record: Dict,
         pool_size: int) -> ResumePlan:
  """What the run that left ``pool_dir`` finished and this one, with the
  same ``record`` (``run_record``), can reuse. Raises ``UsageError`` when
  that run had other flags or input."""
  before = _read_json(FileSystems.join(pool_dir, RUN_RECORD))
  if before is None:
    return ResumePlan()
  difference = _difference(before, record)
  if difference:
    raise UsageError(
        "--resume: the run that stopped in %s had other flags or input (%s); "
        "run with those, or without --resume to start over"
        % (output, difference))
  spilled = pool_files.read_manifest(pool_dir)
  if spilled is None:
    return ResumePlan()
  if not _spill_intact(pool_dir, spilled):
    logging.warning("--resume: some pool files in %s are missing or have "
                    "another size; the spilled stage runs again", pool_dir)
    return ResumePlan()
  groups = num_groups(spilled, pool_size)
  done = {}
  for match in FileSystems.match(
      [FileSystems.join(pool_dir, SHARDS_DIR, "*.json")])[0].metadata_list:
    value = _read_json(match.path)
    if _group_intact(value, groups, output, pool_dir):
      done[int(value["group"])] = value
  return ResumePlan(spilled, done)


def _group_intact(record, groups: int, output: str, pool_dir: str) -> bool:
  """Whether ``record`` (transforms/shards.py ``write_group_record``) is a
  finished group of a run of ``groups`` groups whose every file is there
  at its size: those in ``output`` and those in ``pool_dir``. A group with
  no instance has no file."""
  try:
    if record.get("groups") != groups:
      return False
    wanted = ([(FileSystems.join(output, name), size)
               for name, size in record["files"]]
              + [(FileSystems.join(pool_dir, name), size)
                 for name, size in record["pool_files"]])
    int(record["group"])
    metrics.Tally.from_json(record["tally"])
  except (AttributeError, KeyError, TypeError, ValueError):
    return False  # another version's record, or not one
  return all(_size(path) == size for path, size in wanted)


class PoolDirectoryError(OSError):
  """The pool directory cannot be emptied or written."""


def prepare_pool_dir(pool_dir: str, reuse: ResumePlan, record: Dict) -> None:
  """Empties ``pool_dir`` unless ``reuse`` reuses what is in it, then
  writes the run's record. Raises ``PoolDirectoryError`` when it cannot be
  emptied (another run's spill left beside this run's record could be
  taken for this run's by a later ``--resume``) or written."""
  try:
    if reuse.spilled is None:
      remove(pool_dir, strict=True)
    if "://" not in pool_dir:
      os.makedirs(pool_dir, exist_ok=True)
    paths.write_whole(FileSystems.join(pool_dir, RUN_RECORD),
                      json.dumps(record, sort_keys=True).encode("utf-8"))
  except Exception as e:  # pylint: disable=broad-except
    raise PoolDirectoryError("cannot prepare the pool directory %s: %s"
                             % (pool_dir, rejects.describe(e, last=True))
                             ) from None


class PoolDirectory:
  """The run's pool directory (``path``; None for a GroupByKey, which needs
  none) for a ``with`` block: on entry emptied unless ``reuse`` reuses what
  is in it, and the run's ``record`` written; on exit removed if
  ``finished`` was set (the job finished), else kept for ``--resume``. The
  folder holding it goes too when then empty, if it is the run's own
  (``OUTPUT/_pools``: ``own_parent``) or the run made it: never another
  folder."""

  def __init__(self, path: Optional[str], reuse: ResumePlan, record: Dict,
               own_parent: bool):
    self.path = path
    self.finished = False
    self._reuse = reuse
    self._record = record
    self._parent = None
    if path and "://" not in path:
      parent = os.path.dirname(path)
      if own_parent or not os.path.isdir(parent):
        self._parent = parent

  def __enter__(self) -> "PoolDirectory":
    if self.path:
      prepare_pool_dir(self.path, self._reuse, self._record)
    return self

  def __exit__(self, *exc) -> None:
    if not self.path or not self.finished:
      return
    remove(self.path)
    if self._parent:
      try:
        os.rmdir(self._parent)
      except OSError:
        pass  # not empty: another run's pools are in it


def remove(pool_dir: str, strict: bool = False) -> None:
  """Removes ``pool_dir`` and everything in it, if it is there. With
  ``strict``, raises ``OSError`` when something of it is left."""
  if "://" not in pool_dir:
    shutil.rmtree(pool_dir, ignore_errors=True)
    if strict and os.path.exists(pool_dir):
      raise OSError("cannot remove %s" % pool_dir)
    return
  prefix = pool_dir.rstrip("/") + "/"
  try:
    left = [m.path for m in FileSystems.match([prefix + "**"])[0].metadata_list]
    if left:
      FileSystems.delete(left)
  except Exception as e:  # pylint: disable=broad-except
    if strict:
      raise OSError("cannot remove %s: %s" % (pool_dir, e)) from None


def saved_rejected(name: str, pool_dir: str) -> List[rejects.Rejected]:
  """The records set aside that the spilled stage saved in ``name``."""
  return list(pool_files.read_rejected(pool_dir, name))


def add_reused(summary: Dict, reuse: ResumePlan) -> None:
  """Adds what the reused work counted to ``summary`` (from
  ``outputs.collect_metrics``): counters, records set aside by reason,
  shard records and distributions."""
  tally = reuse.tally()
  counts, rejected = summary["counts"], summary["rejected"]
  shard_records = summary.setdefault("shard_records", {})
  for name, n in tally.counts.items():
    if name.startswith(rejects.REASON_PREFIX):
      reason = name[len(rejects.REASON_PREFIX):]
      rejected[reason] = rejected.get(reason, 0) + n
    elif name.startswith(shards.SHARD_RECORDS_PREFIX):
      shard = name[len(shards.SHARD_RECORDS_PREFIX):]
      shard_records[shard] = shard_records.get(shard, 0) + n
    else:
      counts[name] = counts.get(name, 0) + n
  dists = summary["distributions"]
  for name, (n, total, low, high) in tally.distributions.items():
    agg = dists.setdefault(name, {"count": 0, "sum": 0, "min": low,
                                  "max": high})
    agg["count"] += n
    agg["sum"] += total
    agg["min"] = min(agg["min"], low)
    agg["max"] = max(agg["max"], high)
    agg["mean"] = agg["sum"] / agg["count"]
  summary["counts"] = dict(sorted(counts.items()))
  summary["rejected"] = dict(sorted(rejected.items()))
