"""What a running job shows: the progress bar on a terminal (read from a
pseudo-terminal), progress lines in a log, --quiet, the closing summary line
and the warning when most of the text was thrown away."""

import json
import os
import pty
import select
import subprocess
import sys
import time

import pytest

from tests.helpers import REPO, run_cli, write_lines_corpus


@pytest.fixture(scope="module", name="corpus")
def _corpus(tmp_path_factory):
  return write_lines_corpus(str(tmp_path_factory.mktemp("progress")),
                            num_files=3, docs_per_file=40, seed=11)


def _on_terminal(args, timeout=300):
  """Runs the CLI with stdout and stderr on a pseudo-terminal; returns
  (exit status, everything the terminal showed)."""
  master, slave = pty.openpty()
  proc = subprocess.Popen([sys.executable, "-m", "pipelines.mlm"] + args,
                          cwd=REPO, stdout=slave, stderr=slave,
                          stdin=subprocess.DEVNULL,
                          env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2",
                                   COLUMNS="120"))
  os.close(slave)
  chunks, deadline = [], time.monotonic() + timeout
  try:
    while time.monotonic() < deadline:
      ready, _, _ = select.select([master], [], [], 1.0)
      if not ready:
        if proc.poll() is not None:
          break
        continue
      try:
        data = os.read(master, 65536)
      except OSError:  # EIO: the child closed the terminal
        break
      if not data:
        break
      chunks.append(data)
    return proc.wait(timeout=30), b"".join(chunks).decode("utf-8", "replace")
  finally:
    if proc.poll() is None:
      proc.kill()
      proc.wait()
    os.close(master)


def test_a_terminal_shows_a_progress_bar_then_the_summary_line(corpus,
                                                               tmp_path):
  out = str(tmp_path / "out")
  code, shown = _on_terminal(["--input=" + ",".join(corpus),
                              "--output=" + out, "--dupe_factor=3",
                              "--direct_num_workers=2"])
  assert code == 0, shown[-3000:]
  # tqdm redraws its line with carriage returns: input bytes with a bar,
  # the documents and instances beside it.
  redraws = [part for part in shown.split("\r") if part.startswith("input:")]
  assert len(redraws) >= 2, shown[-3000:]
  assert any("%|" in r and "docs" in r and "instances" in r for r in redraws)
  total = sum(os.path.getsize(p) for p in corpus)
  assert any("/%.1fk" % (total / 1e3) in r or "100%" in r for r in redraws)
  with open(os.path.join(out, "summary.json")) as f:
    counts = json.load(f)["counts"]
  last = [l for l in shown.replace("\r", "\n").splitlines() if l.strip()][-1]
  assert last.startswith("done: {:,} documents, {:,} instances, 0 records "
                         "set aside".format(counts["documents"],
                                            counts["instances"])), last


def test_a_log_gets_progress_lines_and_quiet_turns_them_off(corpus, tmp_path):
  # The job runs about half a second on this corpus, no more: a line every
  # 10 ms leaves no doubt that some fall inside it (at 0.5 s one may not).
  proc = run_cli(["--input=" + ",".join(corpus), "--output=" + str(
      tmp_path / "a"), "--dupe_factor=3", "--progress_seconds=0.01"])
  lines = proc.stderr.splitlines()
  shown = [l for l in lines if l.startswith("progress: ")]
  assert shown, proc.stderr[-3000:]
  assert all(" MB (" in l and " documents, " in l and "elapsed" in l
             for l in shown)
  assert lines[-1].startswith("done: ")
  proc = run_cli(["--input=" + ",".join(corpus), "--output=" + str(
      tmp_path / "b"), "--dupe_factor=3", "--progress_seconds=0.01",
                  "--quiet"])
  assert not [l for l in proc.stderr.splitlines()
              if l.startswith("progress: ")]
  assert proc.stderr.splitlines()[-1].startswith("done: ")


def test_a_corpus_without_sentence_breaks_is_warned_about(tmp_path):
  # One 3,000-word line per document: in the lines format each line is one
  # "sentence", cut to the sequence.
  words = ("alpha beta gamma delta epsilon zeta eta theta iota kappa "
           * 300).strip()
  path = tmp_path / "one_line_per_doc.txt"
  path.write_text("\n\n".join([words] * 6) + "\n")
  proc = run_cli(["--input=" + str(path), "--output=" + str(tmp_path / "o"),
                  "--dupe_factor=2", "--quiet"])
  warnings = [l for l in proc.stderr.splitlines()
              if l.startswith("warning: most of the text")]
  assert len(warnings) == 1, proc.stderr[-3000:]
  assert "truncated_tokens" in warnings[0] and "--input_format" in warnings[0]
  assert proc.stderr.splitlines()[-1].startswith("done: ")


def test_no_warning_when_the_text_is_kept(corpus, tmp_path):
  proc = run_cli(["--input=" + corpus[0], "--output=" + str(tmp_path / "o"),
                  "--dupe_factor=2", "--quiet"])
  assert "warning: most of the text" not in proc.stderr
