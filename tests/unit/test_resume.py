"""pipelines/resume.py: what a stopped run finished, found and checked, and
the tallies it is resumed with (runs stopped and resumed:
tests/e2e/test_resume.py)."""

import json
import os

import pytest

from pipelines import resume
from transforms import metrics


def test_tally_sums_counts_and_distributions():
  metrics.start_tally()
  try:
    metrics.count("tokens", 5)
    metrics.count("tokens", 2)
    metrics.observe("sentences_per_document", 3)
    metrics.observe("sentences_per_document", 9)
    first = metrics.current_tally()
  finally:
    metrics.stop_tally()
  metrics.count("tokens", 100)  # no tally open: Beam's counter only
  assert first.counts == {"tokens": 7}
  assert first.distributions == {"sentences_per_document": [2, 12, 3, 9]}
  second = metrics.Tally.from_json(json.loads(json.dumps(first.to_json())))
  second.merge(first)
  assert second.counts == {"tokens": 14}
  assert second.distributions == {"sentences_per_document": [4, 24, 3, 9]}


def _spill(directory, docs, seed=9):
  from transforms import pool_files  # pylint: disable=import-outside-toplevel
  return pool_files.write_file(directory, docs, seed, 2)


def test_plan_checks_flags_files_and_shards(tmp_path):
  """resume.plan reuses the spill only when every file is there at its
  size, a shard only when it is there at its recorded size, and refuses a
  run record with other flags or input."""
  import numpy as np  # pylint: disable=import-outside-toplevel
  from pipelines.options import UsageError  # pylint: disable=import-outside-toplevel
  from transforms import paths, pool_files  # pylint: disable=import-outside-toplevel
  from transforms.tokenization import TokenizedDocument  # pylint: disable=import-outside-toplevel
  pool_dir, out = str(tmp_path / "pools"), str(tmp_path / "out")
  os.makedirs(out)
  docs = [TokenizedDocument("d%d" % i, np.arange(5, 9 + i % 3, dtype=np.int32),
                            np.array([4 + i % 3], dtype=np.int32))
          for i in range(40)]
  record = resume.run_record({"dupe_factor": 2, "quiet": True},
                             [paths.InputFile("/c/a.txt", 10)])
  # No record of a run: nothing to reuse.
  assert resume.plan(pool_dir, out, record, 10) == resume.ResumePlan()
  resume.prepare_pool_dir(pool_dir, resume.ResumePlan(), record)
  assert resume.plan(pool_dir, out, record, 10).spilled is None  # no spill
  os.makedirs(os.path.join(pool_dir, resume.SHARDS_DIR))
  files = [_spill(pool_dir, docs[:20]), _spill(pool_dir, docs[20:])]
  pool_files.write_manifest(pool_dir, files)
  groups = resume.num_groups(files, 10)
  for g, size in ((0, 3), (1, 4)):
    name = "part-%05d-of-%05d.tfrecord" % (g, groups)
    with open(os.path.join(out, name), "wb") as f:
      f.write(b"x" * 3)  # shard 1 is shorter than its record says
    with open(os.path.join(pool_dir, resume.SHARDS_DIR, "%05d.json" % g),
              "w") as f:
      json.dump({"group": g, "groups": groups, "files": [[name, size]],
                 "pool_files": [],
                 "tally": {"counts": {"instances": 4},
                           "distributions": {}}}, f)
  # Files a group wrote in the pool directory (a Megatron fragment) are
  # checked there; a record of another layout (an earlier version's) is
  # not reused.
  os.makedirs(os.path.join(pool_dir, "megatron"))
  with open(os.path.join(pool_dir, "megatron", "00002.bin"), "wb") as f:
    f.write(b"x" * 5)
  for g, fragment_size in ((2, 5), (3, 6)):
    with open(os.path.join(pool_dir, resume.SHARDS_DIR, "%05d.json" % g),
              "w") as f:
      json.dump({"group": g, "groups": groups, "files": [],
                 "pool_files": [["megatron/%05d.bin" % 2, fragment_size]],
                 "tally": {"counts": {}, "distributions": {}}}, f)
  with open(os.path.join(pool_dir, resume.SHARDS_DIR, "00004.json"),
            "w") as f:
    json.dump({"group": 4, "groups": groups, "shard": "", "bytes": 0,
               "tally": {"counts": {}, "distributions": {}}}, f)
  reuse = resume.plan(pool_dir, out, record, 10)
  assert reuse.spilled == sorted(files, key=lambda f: f.name)
  assert sorted(reuse.done) == [0, 2]
  assert reuse.shards == ["part-00000-of-%05d.tfrecord" % groups]
  assert reuse.tally().counts == {"instances": 4}
  # A flag that does not change the examples may change; one that does not.
  quiet = resume.run_record({"dupe_factor": 2, "quiet": False},
                            [paths.InputFile("/c/a.txt", 10)])
  assert resume.plan(pool_dir, out, quiet, 10).spilled is not None
  other = resume.run_record({"dupe_factor": 3, "quiet": True},
                            [paths.InputFile("/c/a.txt", 10)])
  with pytest.raises(UsageError, match="--dupe_factor was 2, now 3"):
    resume.plan(pool_dir, out, other, 10)
  grown = resume.run_record({"dupe_factor": 2, "quiet": True},
                            [paths.InputFile("/c/a.txt", 11)])
  with pytest.raises(UsageError, match="the input was 1 files, 10 bytes"):
    resume.plan(pool_dir, out, grown, 10)
  # Same name and size, other content: its time of last change says so.
  edited = resume.run_record({"dupe_factor": 2, "quiet": True},
                             [paths.InputFile("/c/a.txt", 10, 86400.0)])
  with pytest.raises(UsageError, match="/c/a.txt changed since the stopped "
                     "run .same size, modified at 1970-01-02 00:00:00 UTC"):
    resume.plan(pool_dir, out, edited, 10)
  # A spill file cut short: the spilled stage runs again, and no shard is
  # reused without it.
  with open(os.path.join(pool_dir, files[0].name + pool_files.DATA_SUFFIX),
            "ab") as f:
    f.write(b"more")
  assert resume.plan(pool_dir, out, record, 10) == resume.ResumePlan()


def test_saved_rejected_records_round_trip(tmp_path):
  from transforms import pool_files, rejects  # pylint: disable=import-outside-toplevel
  records = [rejects.Rejected("a.txt:5", "parse", "malformed_jsonl_lines",
                              "JSONDecodeError: x", "{bad \udcff"),
             rejects.Rejected("b.txt:0", "read", "unreadable_files", "OSError")]
  name = pool_files.write_rejected(str(tmp_path), records)
  assert resume.saved_rejected(name, str(tmp_path)) == records


@pytest.mark.parametrize("flag,base,began,same", [
    # A run begun with ALBERT's preset (on by default) is not resumed with
    # --token_boundary=false.
    ("token_boundary", ["--input=x", "--preset=albert"], [],
     ["--token_boundary=true"]),
    ("langs_feature", ["--input=en=x,sw=z"], ["--langs_feature"],
     ["--langs_feature=true"]),
])
def test_a_run_resumes_only_with_the_extra_features_it_began_with(
    tmp_path, flag, base, began, same):
  """--token_boundary and --langs_feature change the records (a feature
  more or less), so they are part of the run record: the same value
  resumes, the other is refused."""
  from apache_beam.options.pipeline_options import PipelineOptions  # pylint: disable=import-outside-toplevel
  from pipelines.mlm import option_values  # pylint: disable=import-outside-toplevel
  from pipelines.options import MlmOptions, UsageError, resolve  # pylint: disable=import-outside-toplevel
  from transforms import paths  # pylint: disable=import-outside-toplevel

  def record(flags):
    opts = PipelineOptions(base + ["--output=y"] + flags).view_as(MlmOptions)
    resolve(opts)
    return resume.run_record(option_values(opts),
                             [paths.InputFile("/c/a.txt", 10)])

  assert flag not in resume.FREE_OPTIONS
  pool_dir, out = str(tmp_path / "pools"), str(tmp_path / "out")
  os.makedirs(out)
  resume.prepare_pool_dir(pool_dir, resume.ResumePlan(), record(began))
  assert resume.plan(pool_dir, out, record(same), 10).spilled is None
  with pytest.raises(UsageError, match="--%s was true, now false" % flag):
    resume.plan(pool_dir, out, record(["--%s=false" % flag]), 10)
