"""--resume: a run killed or stopped at several points, then resumed, gives
exactly the examples and the summary counts of an uninterrupted run, and
reuses what the stopped run finished (its spilled stage, its shards)."""

import glob
import json
import os
import signal

import pytest

from pipelines import resume
from tests.helpers import (assert_refused, digest, read_examples, run_cli,
                           stop_cli_when, write_lines_corpus)

ARGS = ["--dupe_factor=3", "--random_next_pool_size=500", "--quiet"]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
  directory = str(tmp_path_factory.mktemp("resumecorpus"))
  # About 3 MB: 64 pool groups (so 64 shards), a few seconds of work.
  paths = write_lines_corpus(directory, num_files=4, docs_per_file=3500,
                             seed=11)
  # JSON lines with some that are not JSON: records set aside, which a
  # resumed run must list and count as the clean run does.
  bad = os.path.join(directory, "extra.jsonl")
  with open(bad, "w") as f:
    for i in range(400):
      if i % 50 == 7:
        f.write("{not json %d\n" % i)
      else:
        f.write(json.dumps({"text": "Document %d has a sentence. And then "
                                    "another one about %d things." % (i, i)})
                + "\n")
  return {"lines": paths, "jsonl": [bad]}


def _input(corpus, fmt):
  if fmt == "jsonl":
    return ["--input=" + corpus["jsonl"][0], "--input_format=jsonl",
            "--max_rejected_fraction=0.1"]
  return ["--input=" + ",".join(corpus["lines"])]


def _outcome(out):
  """What must not differ between a clean and a resumed run."""
  with open(os.path.join(out, "summary.json")) as f:
    summary = json.load(f)
  rejected = []
  for path in sorted(glob.glob(os.path.join(out, "_rejected", "*.jsonl"))):
    with open(path) as f:
      rejected.extend(f.read().splitlines())
  return {"digest": digest(read_examples(out)),
          "counts": summary["counts"], "rejected": summary["rejected"],
          "distributions": summary["distributions"],
          "shard_records": {s["path"]: s["records"]
                            for s in summary["shards"]},
          "rejected_lines": sorted(rejected)}, summary


@pytest.fixture(scope="module")
def clean(corpus, tmp_path_factory):
  outcomes = {}
  for fmt in ("lines", "jsonl"):
    out = str(tmp_path_factory.mktemp("clean") / fmt)
    run_cli(_input(corpus, fmt) + ["--output=" + out] + ARGS)
    outcomes[fmt] = _outcome(out)[0]
  assert outcomes["jsonl"]["rejected"] == {"malformed_jsonl_lines": 8}
  return outcomes


def _pool_dir(out):
  found = glob.glob(os.path.join(out, "_pools", "mlm-pools-*"))
  return found[0] if found else None


# When the run is stopped: as it starts (its pool directory just made), once
# the spilled stage is done (its manifest written), and once some shards
# are written; by SIGKILL (a crash: nothing cleans up) or SIGTERM (an
# orderly stop). The minimum reuse each point guarantees: spilled stage,
# shards.
POINTS = {
    "starting": (lambda d: os.path.exists(
        os.path.join(d, resume.RUN_RECORD)), False, 0),
    "spilled": (lambda d: os.path.exists(
        os.path.join(d, "spilled.json")), True, 0),
    "shards": (lambda d: len(glob.glob(
        os.path.join(d, resume.SHARDS_DIR, "*.json"))) >= 5, True, 5),
}


def _stop_at(args, out, point, sig, log_path, env=None):
  """Runs the CLI and stops it with ``sig`` once ``point`` is reached in
  its pool directory; returns whether it was stopped (False: it finished
  first)."""
  reached = POINTS[point][0]

  def at_point():
    directory = _pool_dir(out)
    return bool(directory) and reached(directory)

  return stop_cli_when(args, at_point, sig, log_path, env=env).interrupted


@pytest.mark.parametrize("fmt, point, sig", [
    ("lines", "starting", signal.SIGKILL),
    ("lines", "spilled", signal.SIGTERM),
    ("lines", "shards", signal.SIGKILL),
    ("jsonl", "spilled", signal.SIGKILL),
])
def test_stopped_run_resumes_to_the_clean_examples_and_counts(
    corpus, clean, fmt, point, sig, tmp_path):
  out = str(tmp_path / "out")
  args = _input(corpus, fmt) + ["--output=" + out] + ARGS
  assert _stop_at(args, out, point, sig, str(tmp_path / "log")), (
      "the run finished before it was stopped")
  left = os.listdir(out)
  assert "_INCOMPLETE" in left and "summary.json" not in left, left
  assert _pool_dir(out), "the stopped run's pool files were removed"

  result = run_cli(args + ["--resume"])
  line = [l for l in result.stderr.splitlines() if l.startswith("resume:")]
  assert len(line) == 1, result.stderr
  outcome, summary = _outcome(out)
  assert outcome == clean[fmt]
  _, spilled_reused, shards_reused = POINTS[point]
  reused = summary["resumed"]
  if spilled_reused:
    assert reused["spilled_stage_reused"], reused
  assert reused["shards_reused"] >= shards_reused, reused
  print("%s %s at %s: %s; %s" % (fmt, sig.name, point, line[0], reused))
  # Finished: the pool files are gone, nothing marks the output incomplete.
  assert "_pools" not in os.listdir(out)
  assert "_INCOMPLETE" not in os.listdir(out)


def test_resume_after_the_job_finished_starts_over(corpus, clean, tmp_path):
  """A run whose job finished (its pool files removed) but that stopped
  before its summary: the resumed run has nothing to reuse and makes it
  all again."""
  out = str(tmp_path / "out")
  args = _input(corpus, "lines") + ["--output=" + out] + ARGS
  run_cli(args)
  # As if the run had died between its last shard and its summary.
  os.remove(os.path.join(out, "summary.json"))
  with open(os.path.join(out, "_INCOMPLETE"), "w") as f:
    f.write("stopped\n")
  # The pool directory went with the finished run: nothing to reuse.
  result = run_cli(args + ["--resume"])
  assert "nothing to reuse" in result.stderr
  assert _outcome(out)[0] == clean["lines"]


def test_resume_refuses_other_flags_a_finished_output_and_overwrite(
    corpus, tmp_path):
  out = str(tmp_path / "out")
  args = _input(corpus, "lines") + ["--output=" + out] + ARGS
  assert _stop_at(args, out, "spilled", signal.SIGKILL, str(tmp_path / "log"))
  changed = [a.replace("--dupe_factor=3", "--dupe_factor=4") for a in args]
  assert_refused(changed + ["--resume"],
                 "--dupe_factor was 3, now 4")
  assert_refused(args + ["--resume", "--overwrite"],
                 "--resume keeps a stopped run's finished work")
  assert_refused(args + ["--resume", "--pool_shuffle=groupbykey"],
                 "--pool_shuffle=groupbykey keeps nothing to reuse")
  # The refusals touched nothing: the resume still reuses the spill.
  result = run_cli(args + ["--resume"])
  assert "reusing the spilled stage" in result.stderr
  assert_refused(args + ["--resume"], "holds a finished run")


def test_resume_on_an_empty_output_runs_from_the_start(corpus, clean,
                                                       tmp_path):
  out = str(tmp_path / "out")
  result = run_cli(_input(corpus, "lines") + ["--output=" + out, "--resume"]
                   + ARGS)
  assert "resume: nothing to reuse" in result.stderr
  assert _outcome(out)[0] == clean["lines"]


def test_a_run_refused_for_its_rejects_resumes_with_a_higher_limit(
    corpus, clean, tmp_path):
  """A run whose job finished but that was refused for its share of records
  set aside keeps its pool files: --resume with a higher
  --max_rejected_fraction (which changes no example), and --output spelled
  relative instead of absolute, builds nothing again."""
  from tests.helpers import REPO  # pylint: disable=import-outside-toplevel
  out = str(tmp_path / "out")
  strict = [a for a in _input(corpus, "jsonl")
            if not a.startswith("--max_rejected_fraction")]
  refused = run_cli(strict + ["--output=" + out] + ARGS, check=False)
  assert refused.returncode == 1, refused.stderr
  assert "set aside, more than --max_rejected_fraction" in refused.stderr
  assert _pool_dir(out), "the refused run's pool files were removed"
  result = run_cli(_input(corpus, "jsonl")
                   + ["--output=" + os.path.relpath(out, REPO), "--resume"]
                   + ARGS)
  outcome, summary = _outcome(out)
  assert outcome == clean["jsonl"]
  reused = summary["resumed"]
  assert reused["spilled_stage_reused"], reused
  assert reused["shards_reused"] == reused["shards"], reused
  assert "and %d of %d shards" % (reused["shards"], reused["shards"]) in (
      result.stderr)


# The trainers' formats keep their finished work too: a Megatron run its
# fragments (in the pool directory), an MDS run its shards and their
# index.json entries. Both write the same bytes for any run, so a resumed
# run's files are compared byte for byte with a clean run's.
TRAINER_FORMATS = {
    "megatron": ["--preset=megatron-bert"],
    # Small shards: a group's records list several.
    "mds": ["--preset=modernbert", "--mds_shard_bytes=16384"],
}


@pytest.fixture(scope="module")
def trainer_corpus(corpus, tmp_path_factory):
  """The lines corpus's documents as JSON lines, one in 50 of them not
  JSON (2% set aside: more than the default --max_rejected_fraction)."""
  path = str(tmp_path_factory.mktemp("trainercorpus") / "docs.jsonl")
  docs = []
  for name in corpus["lines"]:
    with open(name, encoding="utf-8") as f:
      docs.extend(d.replace("\n", " ") for d in f.read().split("\n\n")
                  if d.strip())
  with open(path, "w", encoding="utf-8") as f:
    for i, doc in enumerate(docs):
      f.write("{not json %d\n" % i if i % 50 == 7
              else json.dumps({"text": doc}) + "\n")
  return path


def _trainer_args(trainer_corpus, fmt, out, limit="0.1"):
  args = ["--input=" + trainer_corpus, "--input_format=jsonl",
          "--output=" + out, "--random_next_pool_size=500", "--quiet"]
  if limit:
    args.append("--max_rejected_fraction=" + limit)
  return args + TRAINER_FORMATS[fmt]


def _trainer_outcome(out):
  """Every file of the output, its bytes (summary.json's counts instead of
  its own bytes, which hold the run's time), and the records set aside."""
  files = {}
  for root, _, names in os.walk(out):
    for name in names:
      path = os.path.join(root, name)
      rel = os.path.relpath(path, out)
      if rel != "summary.json":
        with open(path, "rb") as f:
          files[rel] = (sorted(f.read().splitlines())
                        if rel.startswith("_rejected") else f.read())
  with open(os.path.join(out, "summary.json")) as f:
    summary = json.load(f)
  return {"files": files, "counts": summary["counts"],
          "rejected": summary["rejected"],
          "distributions": summary["distributions"],
          "shard_records": {s["path"]: s["records"]
                            for s in summary["shards"]}}, summary


@pytest.fixture(scope="module")
def trainer_clean(trainer_corpus, tmp_path_factory):
  outcomes = {}
  for fmt in TRAINER_FORMATS:
    out = str(tmp_path_factory.mktemp("trainerclean") / fmt)
    run_cli(_trainer_args(trainer_corpus, fmt, out))
    outcomes[fmt] = _trainer_outcome(out)[0]
    assert outcomes[fmt]["rejected"]["malformed_jsonl_lines"] > 0
  assert any(name.endswith(".bin")
             for name in outcomes["megatron"]["files"])
  assert len([n for n in outcomes["mds"]["files"] if n.startswith(
      "shard.")]) > 64, "expected several MDS shards per pool group"
  return outcomes


@pytest.mark.parametrize("fmt", sorted(TRAINER_FORMATS))
def test_a_killed_trainer_format_run_resumes_to_the_same_files(
    trainer_corpus, trainer_clean, fmt, tmp_path):
  out = str(tmp_path / "out")
  args = _trainer_args(trainer_corpus, fmt, out)
  assert _stop_at(args, out, "spilled", signal.SIGKILL,
                  str(tmp_path / "log")), "the run finished before it was stopped"
  result = run_cli(args + ["--resume"])
  assert "reusing the spilled stage" in result.stderr, result.stderr
  outcome, summary = _trainer_outcome(out)
  assert outcome == trainer_clean[fmt]
  assert summary["resumed"]["spilled_stage_reused"], summary["resumed"]
  assert "_pools" not in os.listdir(out)


@pytest.mark.parametrize("fmt", sorted(TRAINER_FORMATS))
def test_a_trainer_format_run_resumes_its_unfinished_groups_only(
    trainer_corpus, trainer_clean, fmt, tmp_path):
  """A run whose job finished but that was refused for its share of
  records set aside keeps its pool directory with every group's record;
  every third group's record and files are then removed, as if it had
  stopped before writing them. The resumed run builds those groups only,
  keeps the others' files as they are, and its output is the clean run's,
  byte for byte."""
  out = str(tmp_path / "out")
  refused = run_cli(_trainer_args(trainer_corpus, fmt, out, limit=None),
                    check=False)
  assert refused.returncode == 1, refused.stderr
  pool_dir = _pool_dir(out)
  records = sorted(glob.glob(os.path.join(pool_dir, resume.SHARDS_DIR,
                                          "*.json")))
  assert len(records) > 10, records
  kept, removed = {}, 0
  for i, path in enumerate(records):
    with open(path) as f:
      record = json.load(f)
    files = ([os.path.join(out, n) for n, _ in record["files"]]
             + [os.path.join(pool_dir, n) for n, _ in record["pool_files"]])
    assert files, record  # every group of this corpus wrote something
    if i % 3:
      kept.update((p, os.stat(p).st_mtime_ns) for p in files)
      continue
    for name in files + [path]:
      os.remove(name)
    removed += 1
  result = run_cli(_trainer_args(trainer_corpus, fmt, out) + ["--resume"])
  assert "and %d of %d shards" % (len(records) - removed, len(records)) in (
      result.stderr), result.stderr
  outcome, summary = _trainer_outcome(out)
  assert outcome == trainer_clean[fmt]
  assert summary["resumed"]["shards_reused"] == len(records) - removed
  if fmt == "mds":  # the finished groups' shards were not written again
    assert {p: os.stat(p).st_mtime_ns for p in kept} == kept
