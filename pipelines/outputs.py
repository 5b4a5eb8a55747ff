"""The output directory's life cycle: refuse, clean, mark, summarize.

* A non-empty ``--output`` is refused unless ``--overwrite`` is given.
* A run writes ``_INCOMPLETE`` first and removes it last, after
  ``summary.json`` (the manifest: shard list with sizes, counts, options). A
  directory that holds ``_INCOMPLETE`` is an interrupted run of this tool:
  the next run removes it without needing ``--overwrite``.
* Everything goes through Beam's FileSystems, so s3:// works like a path.
"""

import json
import logging
import os
import shutil
import time
from typing import Dict, List

from apache_beam.io.filesystem import BeamIOError
from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics.metric import MetricsFilter

from pipelines.options import UsageError
from transforms import metrics
from transforms import rejects
from transforms.examples import SHARD_PREFIX, SHARD_RECORDS_PREFIX

INCOMPLETE_MARKER = "_INCOMPLETE"
SUMMARY = "summary.json"


def _dir(path: str) -> str:
  return path.rstrip("/") + "/"


def list_contents(output_dir: str) -> List[str]:
  """Every file below ``output_dir`` (recursively for object stores)."""
  if not FileSystems.exists(output_dir) and not output_dir.startswith("s3://"):
    return []
  try:
    result = FileSystems.match([_dir(output_dir) + "**"])[0]
  except BeamIOError:
    return []
  return sorted(m.path for m in result.metadata_list)


def prepare(output_dir: str, overwrite: bool) -> None:
  """Checks and readies the output directory, before any work starts."""
  contents = list_contents(output_dir)
  if contents:
    interrupted = any(p.endswith("/" + INCOMPLETE_MARKER) for p in contents)
    if interrupted:
      logging.warning("%s holds an interrupted run (%s present); removing it",
                      output_dir, INCOMPLETE_MARKER)
    elif not overwrite:
      raise UsageError(
          "output directory %s is not empty (%d files, e.g. %s); pass "
          "--overwrite to replace its contents, or choose another --output"
          % (output_dir, len(contents), contents[0]))
    else:
      logging.info("--overwrite: removing %d files from %s", len(contents),
                   output_dir)
    _delete(output_dir, contents)
  if not output_dir.startswith("s3://"):
    try:
      FileSystems.mkdirs(output_dir)
    except (BeamIOError, OSError):
      pass  # already there
  with FileSystems.create(FileSystems.join(output_dir, INCOMPLETE_MARKER)) as f:
    f.write(b"a run of pipelines.mlm started at %d and has not finished\n"
            % int(time.time()))


def _delete(output_dir: str, contents: List[str]) -> None:
  if output_dir.startswith("s3://"):
    FileSystems.delete(contents)
  else:
    FileSystems.delete([output_dir])


def remove_if_empty(directory: str) -> None:
  """Removes a local ``directory`` that holds no file (a writer that wrote
  nothing can leave its folder behind); object stores have no folders."""
  if "://" in directory or not os.path.isdir(directory):
    return
  if not any(files for _, _, files in os.walk(directory)):
    shutil.rmtree(directory)


def shard_list(output_dir: str) -> List[Dict[str, object]]:
  result = FileSystems.match([FileSystems.join(output_dir, SHARD_PREFIX + "-*")])
  return [{"path": m.path.rsplit("/", 1)[-1], "bytes": m.size_in_bytes}
          for m in sorted(result[0].metadata_list, key=lambda m: m.path)]


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
