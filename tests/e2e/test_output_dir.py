"""The output directory is the job's alone: one run at a time holds it, only
what this tool writes is ever deleted, and nothing the job creates is left
in the temporary directory."""

import os
import signal
import subprocess
import sys

import pytest

from pipelines import output_lock, outputs, scratch
from tests.helpers import (REPO, assert_refused, one_error_line, run_cli,
                           stop_cli_when, write_lines_corpus)

ARGS = ["--dupe_factor=1", "--quiet"]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
  return write_lines_corpus(str(tmp_path_factory.mktemp("corpus")),
                            num_files=2, docs_per_file=10)


def _input(corpus):
  return "--input=" + ",".join(corpus)


def _tree(root):
  """Every file below ``root`` with its text."""
  found = {}
  for folder, _, names in os.walk(root):
    for name in names:
      path = os.path.join(folder, name)
      with open(path, "rb") as f:
        found[os.path.relpath(path, root)] = f.read()
  return found


# --- Never delete what the job did not write --------------------------------


def test_an_incomplete_marker_below_the_top_is_not_an_interrupted_run(
    corpus, tmp_path):
  parent = tmp_path / "parent"
  (parent / "old_run").mkdir(parents=True)
  (parent / "old_run" / "_INCOMPLETE").write_text("a run started")
  (parent / "photos").mkdir()
  (parent / "photos" / "precious.txt").write_text("keep me")
  before = _tree(str(parent))
  assert_refused([_input(corpus), "--output=%s" % parent] + ARGS,
                 "is not empty")
  assert_refused([_input(corpus), "--output=%s" % parent, "--overwrite"]
                 + ARGS, "does not write")
  assert _tree(str(parent)) == before


def test_overwrite_removes_only_this_tools_output(corpus, tmp_path):
  out = tmp_path / "out"
  run_cli([_input(corpus), "--output=%s" % out, "--num_shards=3"] + ARGS)
  # A second run with --overwrite replaces it: fewer shards, none left over.
  run_cli([_input(corpus), "--output=%s" % out, "--overwrite",
           "--num_shards=1"] + ARGS)
  assert sorted(os.listdir(out)) == ["part-00000-of-00001.tfrecord",
                                     "summary.json", "transformed_metadata"]
  # A file of someone else's beside it: --overwrite refuses, deletes nothing.
  (out / "notes.txt").write_text("mine")
  before = _tree(str(out))
  proc = assert_refused([_input(corpus), "--output=%s" % out, "--overwrite"]
                        + ARGS, "does not write")
  assert "notes.txt" in one_error_line(proc.stderr)
  assert _tree(str(out)) == before


def test_overwrite_of_a_home_directory_deletes_nothing(corpus, tmp_path):
  home = tmp_path / "home"
  (home / ".ssh").mkdir(parents=True)
  (home / ".ssh" / "id_ed25519").write_text("secret")
  (home / "thesis.tex").write_text("years of work")
  before = _tree(str(home))
  assert_refused([_input(corpus), "--output=%s" % home, "--overwrite"] + ARGS,
                 "never deleted")
  assert _tree(str(home)) == before


def test_an_interrupted_run_beside_other_files_is_refused(corpus, tmp_path):
  out = tmp_path / "out"
  out.mkdir()
  (out / "_INCOMPLETE").write_text("a run started")
  (out / "part-00000-of-00002.tfrecord").write_bytes(b"half a shard")
  (out / "precious.txt").write_text("keep me")
  before = _tree(str(out))
  assert_refused([_input(corpus), "--output=%s" % out] + ARGS,
                 "precious.txt")
  assert _tree(str(out)) == before
  # Without the stranger, the interrupted run is cleared and redone.
  (out / "precious.txt").unlink()
  run_cli([_input(corpus), "--output=%s" % out] + ARGS)
  assert "summary.json" in os.listdir(out)
  assert "part-00000-of-00002.tfrecord" not in os.listdir(out)


def test_overwrite_leaves_files_named_like_ours_but_not_ours(corpus, tmp_path):
  """A thesis folder: part-1-intro.tex, part-2-methods.tex and a
  summary.json of its own. --overwrite deleted all three."""
  out = tmp_path / "thesis"
  out.mkdir()
  (out / "part-1-intro.tex").write_text("\\section{Intro}")
  (out / "part-2-methods.tex").write_text("\\section{Methods}")
  before = _tree(str(out))
  assert_refused([_input(corpus), "--output=%s" % out, "--overwrite"] + ARGS,
                 "never deleted")
  assert _tree(str(out)) == before
  (out / "part-1-intro.tex").unlink()
  (out / "part-2-methods.tex").unlink()
  (out / "summary.json").write_text('{"chapters": 5}')
  before = _tree(str(out))
  assert_refused([_input(corpus), "--output=%s" % out, "--overwrite"] + ARGS,
                 "summary.json")
  assert _tree(str(out)) == before


def test_clearing_an_old_output_marks_it_first(corpus, tmp_path, monkeypatch):
  """An interrupt while an earlier output is removed leaves a directory
  that says it is incomplete: the marker goes first, summary.json next."""
  out = tmp_path / "out"
  run_cli([_input(corpus), "--output=%s" % out, "--num_shards=3"] + ARGS)
  names = outputs.check_prepare(str(out), overwrite=True)
  assert sorted(names) == sorted(os.listdir(out))
  deleted = []

  def interrupted_delete(output_dir, which):
    deleted.append(list(which))
    raise KeyboardInterrupt  # stopped after the first deletion

  monkeypatch.setattr(outputs, "_delete", interrupted_delete)
  with pytest.raises(KeyboardInterrupt):
    outputs.mark_and_clear(str(out), names)
  assert deleted == [["summary.json"]]
  assert "_INCOMPLETE" in os.listdir(out)


def test_an_output_name_with_glob_characters_is_refused(corpus, tmp_path):
  assert_refused([_input(corpus), "--output=%s" % (tmp_path / "run[1]")]
                 + ARGS, "pattern")
  assert not (tmp_path / "run[1]").exists()


def test_an_unwritable_output_is_one_error_line(corpus, tmp_path):
  blocker = tmp_path / "a_file"
  blocker.write_text("not a folder")
  proc = run_cli([_input(corpus), "--output=%s" % (blocker / "out")] + ARGS,
                 check=False)
  assert proc.returncode != 0
  assert "cannot write to --output" in one_error_line(proc.stderr)
  assert "Traceback" not in proc.stderr


# --- Nothing left in the temporary directory -----------------------------


def test_nothing_is_left_in_the_temporary_directory(corpus, tmp_path):
  tmp = tmp_path / "tmp"
  tmp.mkdir()
  # Left by runs that were SIGKILLed: one whose process is gone, one whose
  # process (this test) is alive.
  dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                        capture_output=True, text=True, check=True)
  stale = tmp / (scratch.folder_prefix(int(dead.stdout)) + "abc")
  (stale / "beam-pipeline-temp1").mkdir(parents=True)
  live = tmp / (scratch.folder_prefix(os.getpid()) + "def")
  live.mkdir()
  # Another machine's (a TMPDIR shared between containers): its pid means
  # nothing here.
  elsewhere = tmp / ("%s%s@another-host-ghi" % (scratch.PREFIX,
                                                dead.stdout.strip()))
  elsewhere.mkdir()
  (tmp / "someone-elses.txt").write_text("keep")
  run_cli([_input(corpus), "--output=%s" % (tmp_path / "out"),
           "--direct_num_workers=2", "--dupe_factor=1"],
          env={"TMPDIR": str(tmp)})
  assert sorted(os.listdir(tmp)) == sorted([live.name, elsewhere.name,
                                            "someone-elses.txt"])


# --- One run per output at a time ---------------------------------------


@pytest.mark.parametrize("overwrite", [[], ["--overwrite"]])
def test_a_second_run_of_the_same_output_is_refused(corpus, tmp_path,
                                                     overwrite):
  """The first run is frozen (SIGSTOP) once it holds the lock, so the second
  surely starts while it runs; thawed, it finishes unharmed."""
  out = tmp_path / "out"
  lock = out / output_lock.LOCK_NAME

  def refused_while_frozen(pid):
    before = _tree(str(out))
    proc = assert_refused([_input(corpus), "--output=%s" % out] + overwrite
                          + ARGS, "in use by a running job")
    assert "pid %d" % pid in proc.stderr
    assert _tree(str(out)) == before
    os.killpg(pid, signal.SIGCONT)

  first = stop_cli_when([_input(corpus), "--output=%s" % out] + ARGS,
                        lambda: lock.exists() and lock.stat().st_size > 0,
                        signal.SIGSTOP, str(tmp_path / "first.log"),
                        timeout=120, poll=0.05, end_within=300,
                        after_signal=refused_while_frozen)
  assert first.stopped and first.returncode == 0, first.output
  assert "summary.json" in os.listdir(out)
  assert output_lock.LOCK_NAME not in os.listdir(out)


def test_a_lock_whose_holder_was_killed_is_taken_over(corpus, tmp_path):
  out = tmp_path / "out"
  out.mkdir()
  holder = subprocess.Popen(
      [sys.executable, "-c",
       "import sys, time; sys.path.insert(0, %r)\n"
       "from pipelines import output_lock\n"
       "output_lock.OutputLock(%r).acquire()\n"
       "print('held', flush=True); time.sleep(600)" % (REPO, str(out))],
      stdout=subprocess.PIPE, text=True)
  try:
    assert holder.stdout.readline().strip() == "held"
    with pytest.raises(output_lock.OutputBusy, match="pid %d" % holder.pid):
      output_lock.OutputLock(str(out)).acquire()
  finally:
    holder.kill()
    holder.wait()
  # SIGKILL releases it: the file is left, the lock is not.
  assert (out / output_lock.LOCK_NAME).exists()
  run_cli([_input(corpus), "--output=%s" % out] + ARGS)
  assert "summary.json" in os.listdir(out)
  assert output_lock.LOCK_NAME not in os.listdir(out)
