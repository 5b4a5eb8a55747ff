"""The output directory's life cycle: refuse, clean, mark, summarize.

* A run holds the output's lock (``_LOCK``, pipelines/output_lock.py) from
  before it looks at the directory until it ends.
* A non-empty ``--output`` is refused unless ``--overwrite`` is given.
* A run writes ``_INCOMPLETE`` first and removes it last, after
  ``summary.json`` (the manifest: shard list with sizes, counts, options). A
  directory with ``_INCOMPLETE`` at its top is an interrupted run of this
  tool: the next run removes it without needing ``--overwrite``.
* Only what this tool writes is ever removed (``own_entry``): a directory
  that holds anything else is refused, with or without ``--overwrite``.
* Everything goes through Beam's FileSystems, so s3:// works like a path.
"""

import json
import logging
import os
import re
import shutil
import time
from typing import Dict, List, Optional, Sequence

from apache_beam.io.filesystem import BeamIOError
from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics.metric import MetricsFilter

from pipelines.options import UsageError
from pipelines.output_lock import LOCK_NAME
from transforms import mds
from transforms import megatron
from transforms import metrics
from transforms import paths
from transforms import rejects
from transforms.examples import ExampleLayout, feature_lengths
from transforms.shards import SHARD_PREFIX, SHARD_RECORDS_PREFIX

INCOMPLETE_MARKER = "_INCOMPLETE"
SUMMARY = "summary.json"
POOLS_DIR = "_pools"
SCHEMA_DIR = "transformed_metadata"
# The top-level names pipelines.mlm writes besides its shards (own_entry).
OWN_NAMES = frozenset([INCOMPLETE_MARKER, LOCK_NAME, SUMMARY, POOLS_DIR,
                       SCHEMA_DIR, rejects.REJECTED_DIR])
# Beam's file sinks write each shard in a folder named so, then rename it.
_BEAM_TEMP_PREFIX = "beam-temp-"


def _dir(path: str) -> str:
  return path.rstrip("/") + "/"


def list_contents(output_dir: str) -> List[str]:
  """Every file below ``output_dir`` (recursively for object stores)."""
  if not FileSystems.exists(output_dir) and not output_dir.startswith("s3://"):
    return []
  try:
    return sorted(f.path for f in paths.match_below(output_dir))
  except BeamIOError:
    return []


def check_output_path(output_dir: str) -> None:
  """Raises ``UsageError`` for an ``--output`` holding ``*``, ``?`` or
  ``[``: Beam's file sinks match their own temporary files by patterns
  made from it, and would fail at the end of the job."""
  bad = sorted(set(output_dir) & set("*?["))
  if bad:
    raise UsageError("--output %s holds %s, which Beam's file writers read as "
                     "a pattern; choose a folder name without *, ? or ["
                     % (output_dir, " and ".join(repr(c) for c in bad)))


# Shard names as Beam's file sinks make them here: part-NNNNN-of-NNNNN with
# the format's suffix (transforms/examples.py, transforms/parquet.py).
_SHARD_NAME = re.compile(r"^%s-\d{5,}-of-\d{5,}(\.tfrecord(\.gz)?|\.parquet)$"
                         % re.escape(SHARD_PREFIX))
# The Megatron dataset's pair (transforms/megatron.py).
MEGATRON_NAMES = frozenset(name + suffix
                           for name in megatron.DATASET_NAMES.values()
                           for suffix in (megatron.BIN_SUFFIX,
                                          megatron.IDX_SUFFIX))


# MDS shards (transforms/mds.py): shard.GGGGG.KKKK.mds, .mds.gz compressed.
_MDS_SHARD = re.compile(r"^shard\.\d{5,}\.\d{4,}\.mds(\.gz)?$")


def own_entry(name: str) -> bool:
  """Whether ``name``, an entry at the top of an output directory, is one
  that pipelines.mlm writes: shards (``part-00000-of-00004.tfrecord``),
  the Megatron dataset (``text_sentence.bin``, ``.idx``), MDS shards
  (``shard.00000.0000.mds``) and their ``index.json``,
  ``summary.json``, ``_rejected/``, ``transformed_metadata/``, ``_pools/``,
  the markers, and the temporary folders Beam's writers use while they
  write. (``summary.json`` is also checked to be this tool's, by
  ``foreign_entries``.)"""
  return (name in OWN_NAMES or bool(_SHARD_NAME.match(name))
          or name in MEGATRON_NAMES or bool(_MDS_SHARD.match(name))
          or name == mds.INDEX or name.startswith(_BEAM_TEMP_PREFIX))


def is_own_summary(path: str) -> bool:
  """Whether ``path`` is a summary.json this tool wrote (a JSON object with
  its ``counts``, ``options`` and ``shards``), not someone else's file of
  that name."""
  try:
    with FileSystems.open(path) as f:
      value = json.loads(f.read(16 << 20).decode("utf-8"))
  except Exception:  # pylint: disable=broad-except
    return False
  return isinstance(value, dict) and {"counts", "options", "shards"} <= set(
      value)


def foreign_entries(output_dir: str, entries: Dict[str, str]) -> List[str]:
  """Paths of the ``entries`` (``top_entries``) this tool did not write."""
  foreign = [path for name, path in entries.items() if not own_entry(name)]
  summary = entries.get(SUMMARY)
  if summary is not None and not is_own_summary(
      FileSystems.join(output_dir, SUMMARY)):
    foreign.append(summary)
  index = entries.get(mds.INDEX)
  if index is not None and not _is_own_index(
      FileSystems.join(output_dir, mds.INDEX)):
    foreign.append(index)
  return foreign


def _is_own_index(path: str) -> bool:
  """Whether ``path`` is an MDS ``index.json`` this tool wrote."""
  try:
    with FileSystems.open(path) as f:
      return mds.is_index(f.read(64 << 20))
  except Exception:  # pylint: disable=broad-except
    return False


def _top_name(output_dir: str, path: str) -> str:
  return path[len(_dir(output_dir)):].split("/", 1)[0]


def top_entries(output_dir: str) -> Dict[str, str]:
  """The entries at the top of ``output_dir``, each name with one path of
  it: on a local disk its files and folders (empty ones too), on an object
  store the first name of each key below it."""
  if "://" not in output_dir:
    if not os.path.isdir(output_dir):
      return {}
    return {name: os.path.join(output_dir, name)
            for name in sorted(os.listdir(output_dir))}
  entries: Dict[str, str] = {}
  for path in list_contents(output_dir):
    entries.setdefault(_top_name(output_dir, path), path)
  return entries


def check_prepare(output_dir: str, overwrite: bool, resume: bool = False,
                  keep: Sequence[str] = ()) -> List[str]:
  """Checks the output directory before any work; returns the top-level
  entries ``clear`` will remove (an earlier or interrupted output of this
  tool).

  An empty or new directory needs nothing. A directory that holds a
  finished output of this tool needs ``--overwrite``; one that holds an
  interrupted run (``_INCOMPLETE`` at its top level) does not. Anything
  this tool did not write is never deleted: raises ``UsageError`` naming
  it. The caller holds the output's lock (``output_lock``), whose file is
  left alone.

  With ``resume``, an interrupted run's ``keep`` entries (its pool files and
  finished shards, pipelines/resume.py) stay; a finished output is refused:
  there is nothing to resume."""
  entries = top_entries(output_dir)
  entries.pop(LOCK_NAME, None)
  if not entries:
    return []
  interrupted = INCOMPLETE_MARKER in entries
  if resume and not interrupted and SUMMARY in entries and is_own_summary(
      FileSystems.join(output_dir, SUMMARY)):
    raise UsageError(
        "--resume: %s holds a finished run (its %s); there is nothing to "
        "resume: pass --overwrite instead of --resume to make it again"
        % (output_dir, SUMMARY))
  if not interrupted and not overwrite:
    raise UsageError(
        "output directory %s is not empty (%d entries, e.g. %s); pass "
        "--overwrite to replace its contents, or choose another --output"
        % (output_dir, len(entries), next(iter(entries.values()))))
  foreign = foreign_entries(output_dir, entries)
  if foreign:
    raise UsageError(
        "output directory %s holds %d entries that pipelines.mlm does not "
        "write (e.g. %s); they are never deleted: move them away or choose "
        "another --output" % (output_dir, len(foreign), foreign[0]))
  if interrupted and resume:
    return [name for name in entries if name not in set(keep)]
  if interrupted:
    logging.warning("%s holds an interrupted run (%s present); removing "
                    "what it wrote", output_dir, INCOMPLETE_MARKER)
  else:
    logging.info("--overwrite: removing %s from %s", ", ".join(entries),
                 output_dir)
  return list(entries)


def mark_and_clear(output_dir: str, names: List[str]) -> None:
  """Marks ``output_dir`` ``_INCOMPLETE``, then removes ``names`` (from
  ``check_prepare``), ``summary.json`` first: an interruption at any point
  leaves a directory that says it is incomplete, never one that looks
  finished with part of its shards gone."""
  if not output_dir.startswith("s3://"):
    try:
      FileSystems.mkdirs(output_dir)
    except (BeamIOError, OSError):
      pass  # already there
  with FileSystems.create(FileSystems.join(output_dir, INCOMPLETE_MARKER)) as f:
    f.write(b"a run of pipelines.mlm started at %d and has not finished\n"
            % int(time.time()))
  names = [n for n in names if n != INCOMPLETE_MARKER]
  if SUMMARY in names:
    _delete(output_dir, [SUMMARY])
    names.remove(SUMMARY)
  _delete(output_dir, names)


def abort_stale_uploads(prefix: str,
                        s3_client_kwargs: Optional[dict] = None) -> int:
  """Aborts every unfinished S3 multipart upload below ``prefix`` (an
  ``s3://bucket/folder``; anything else: nothing to do) and returns how many
  there were. Beam's S3 filesystem writes each file of 8 MiB or more as a
  multipart upload (``transforms/s3_clients.py``): a worker killed while
  writing a shard or a spill file leaves its parts stored, and billed, but
  listed nowhere. Called once this run holds the output's lock, so none of
  them is a live run's. A bucket's root is left alone (other programs'
  uploads may be there), and so is a store that does not let this client
  list uploads (a warning says so)."""
  bucket, _, key = prefix[len("s3://"):].partition("/")
  if not prefix.startswith("s3://") or not key.strip("/"):
    return 0
  try:
    return _abort_uploads(bucket, key.rstrip("/") + "/", s3_client_kwargs)
  except Exception as e:  # pylint: disable=broad-except
    logging.warning("could not list or abort unfinished S3 uploads below "
                    "%s: %s", prefix, rejects.describe(e, last=True))
    return 0


def _abort_uploads(bucket: str, key: str,
                   s3_client_kwargs: Optional[dict]) -> int:
  import boto3  # pylint: disable=import-outside-toplevel
  client = boto3.client("s3", **(s3_client_kwargs or {}))
  aborted = 0
  paginator = client.get_paginator("list_multipart_uploads")
  for page in paginator.paginate(Bucket=bucket, Prefix=key):
    for upload in page.get("Uploads", []):
      client.abort_multipart_upload(Bucket=bucket, Key=upload["Key"],
                                    UploadId=upload["UploadId"])
      aborted += 1
  return aborted


def _delete(output_dir: str, names: List[str]) -> None:
  """Deletes the top-level entries ``names`` of ``output_dir`` (files and
  folders; on an object store every key below each)."""
  if "://" in output_dir:
    FileSystems.delete([p for p in list_contents(output_dir)
                        if _top_name(output_dir, p) in names])
    return
  for name in names:
    path = os.path.join(output_dir, name)
    if os.path.isdir(path) and not os.path.islink(path):
      shutil.rmtree(path)
    else:
      os.remove(path)


def refuse_reading_own_files(patterns: Sequence[str], files: Sequence[str],
                             output_dir: str, pool_dir: Optional[str]) -> None:
  """Raises ``UsageError`` when the input would take in the job's own
  files: a matched file below ``--output`` or ``--pool_dir``, or a pattern
  that matches where the job writes (its ``_INCOMPLETE`` marker, say) even
  though nothing is there yet. The job would train on its own marker, or
  on the output of its last run."""
  places = [("--output", output_dir)]
  if pool_dir:
    places.append(("--pool_dir", pool_dir))
  for flag, place in places:
    for f in files:
      path = getattr(f, "path", f)
      if paths.is_below(path, place):
        raise UsageError(
            "--input matches %s, which is below %s=%s: the job would read "
            "its own output; narrow the pattern or write elsewhere"
            % (path, flag, place))
    probe = FileSystems.join(place, INCOMPLETE_MARKER)
    for pattern in patterns:
      if paths.pattern_matches(pattern, probe):
        raise UsageError(
            "--input pattern %r also matches the files the job writes in "
            "%s=%s (such as %s): the job would read its own output; narrow "
            "the pattern or write elsewhere" % (pattern, flag, place, probe))


def remove_if_empty(directory: str) -> None:
  """Removes a local ``directory`` that holds no file (a writer that wrote
  nothing can leave its folder behind); object stores have no folders."""
  if "://" in directory or not os.path.isdir(directory):
    return
  if not any(files for _, _, files in os.walk(directory)):
    shutil.rmtree(directory)


def shard_list(output_dir: str) -> List[Dict[str, object]]:
  """The output's data files (shards, or the Megatron dataset's pair) with
  their sizes."""
  found = list(paths.match_below(output_dir, SHARD_PREFIX + "-*"))
  found += [f for pattern in ("text_*" + megatron.BIN_SUFFIX,
                              "text_*" + megatron.IDX_SUFFIX)
            for f in paths.match_below(output_dir, pattern)
            if f.path.rsplit("/", 1)[-1] in MEGATRON_NAMES]
  found += [f for f in paths.match_below(output_dir, mds.SHARD_PATTERN)
            if _MDS_SHARD.match(f.path.rsplit("/", 1)[-1])]
  return [{"path": f.path.rsplit("/", 1)[-1], "bytes": f.size}
          for f in sorted(found, key=lambda f: f.path)]


def collect_metrics(result) -> Dict[str, Dict]:
  """Counters and distributions of the ``mlm`` namespace, summed over steps:
  ``{"counts": …, "rejected": {reason: records set aside}, "distributions":
  …}``. Committed values where the runner has them, attempted ones
  otherwise."""
  query = result.metrics().query(MetricsFilter().with_namespace(
      metrics.NAMESPACE))
  counts: Dict[str, int] = {name: 0 for name in metrics.COUNTERS}
  rejected: Dict[str, int] = {}
  shard_records: Dict[str, int] = {}
  for c in query["counters"]:
    value = c.committed if c.committed is not None else c.attempted
    name = c.key.metric.name
    if name.startswith(rejects.REASON_PREFIX):
      reason = name[len(rejects.REASON_PREFIX):]
      rejected[reason] = rejected.get(reason, 0) + int(value or 0)
    elif name.startswith(SHARD_RECORDS_PREFIX):
      shard = name[len(SHARD_RECORDS_PREFIX):]
      shard_records[shard] = shard_records.get(shard, 0) + int(value or 0)
    else:
      counts[name] = counts.get(name, 0) + int(value or 0)
  dists: Dict[str, Dict] = {}
  for d in query["distributions"]:
    value = d.committed if d.committed is not None else d.attempted
    if value is None or not value.count:
      continue
    agg = dists.setdefault(d.key.metric.name, {"count": 0, "sum": 0,
                                               "min": value.min,
                                               "max": value.max})
    agg["count"] += value.count
    agg["sum"] += value.sum
    agg["min"] = min(agg["min"], value.min)
    agg["max"] = max(agg["max"], value.max)
  for agg in dists.values():
    agg["mean"] = agg["sum"] / agg["count"]
  return {"counts": dict(sorted(counts.items())),
          "rejected": dict(sorted(rejected.items())),
          "distributions": dict(sorted(dists.items())),
          "shard_records": shard_records}


def finish(output_dir: str, summary: Dict) -> str:
  """Writes summary.json, then removes the _INCOMPLETE marker."""
  summary = dict(summary)
  summary["shards"] = shard_list(output_dir)
  # Each shard's records, as its writer counted them (pipelines.inspect
  # checks them).
  records = summary.pop("shard_records", {})
  if records:  # counters of zero are not kept: an empty shard has none
    for shard in summary["shards"]:
      shard["records"] = records.get(shard["path"], 0)
  path = FileSystems.join(output_dir, SUMMARY)
  with FileSystems.create(path) as f:
    f.write(json.dumps(summary, indent=2, sort_keys=True).encode("utf-8"))
  FileSystems.delete([FileSystems.join(output_dir, INCOMPLETE_MARKER)])
  return path


def output_features(output_format: str,
                    layout: ExampleLayout) -> Dict[str, str]:
  """What each record holds, for summary.json: TFRecord features with their
  fixed length, or Parquet columns with their Arrow type."""
  if output_format == "megatron":
    return {"tokens": "token ids of each sequence (.bin), lengths, pointers "
                      "and document indices (.idx)"}
  if output_format == "parquet":
    # pylint: disable=import-outside-toplevel
    from transforms import parquet
    return {f.name: str(f.type) for f in parquet.schema(
        layout.masks, layout.sentence_task, layout.token_boundary,
        layout.langs)}
  return {name: "int64[%d]" % n if name != "masked_lm_weights"
          else "float32[%d]" % n
          for name, n in feature_lengths(layout).items()}


def describe_run(summary: Dict, output_format: str, layout: ExampleLayout,
                 matched: paths.MatchedInput, options: Dict,
                 runner: str) -> None:
  """Adds to ``summary`` what the run made and from what: the format and
  features of its records, its input (root, files, bytes), every option
  and the runner."""
  summary["format"] = output_format
  summary["features"] = output_features(output_format, layout)
  summary["input_root"] = matched.root
  summary["input_files"] = {"count": len(matched.files),
                            "bytes": matched.total_bytes,
                            "paths": matched.paths}
  summary["options"] = options
  summary["runner"] = runner


def by_reason(rejected: Dict[str, int]) -> str:
  return ", ".join("%s %d" % (reason, n) for reason, n in
                   sorted(rejected.items(), key=lambda kv: (-kv[1], kv[0])))


def too_many_rejected(summary: Dict, max_fraction: float) -> Optional[str]:
  """Why the share of records set aside is over ``max_fraction``, or None.
  The share is ``rejected_records`` over every record read:
  ``documents_read`` (which counts the documents set aside too) plus the
  files and streams set aside whole (``metrics.FILE_REJECT_REASONS``)."""
  counts = summary["counts"]
  rejected = counts.get("rejected_records", 0)
  seen = counts.get("documents_read", 0) + sum(
      n for reason, n in summary["rejected"].items()
      if reason in metrics.FILE_REJECT_REASONS)
  if not rejected or rejected <= max_fraction * seen:
    return None
  return ("%d of %d records (%.1f%%) were set aside, more than "
          "--max_rejected_fraction=%g allows (%s). Is --input_format (or "
          "--text_field) right for these files?"
          % (rejected, seen, 100.0 * rejected / seen, max_fraction,
             by_reason(summary["rejected"])))
