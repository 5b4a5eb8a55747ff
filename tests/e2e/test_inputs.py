"""Which files a job reads: every matched file exactly once, whatever its
name; never a folder; never the job's own output."""

import json
import os

import pytest

from tests.helpers import (assert_refused, digest, read_examples, run_cli,
                           two_sample_docs, write_docs)

ARGS = ["--dupe_factor=1", "--quiet"]


def _summary(out):
  with open(os.path.join(out, "summary.json"), encoding="utf-8") as f:
    return json.load(f)


# Each layout: the files to write (two documents each) and the pattern that
# names them all. Every file is read once: 2 documents each.
LAYOUTS = {
    # doc[1].txt, as a glob, matches doc1.txt: it was read as doc1.txt.
    "brackets_in_a_file_name": (["collide/doc1.txt", "collide/doc[1].txt"],
                                "collide/*.txt"),
    # A folder named br[ack]: its files, as globs, match nothing.
    "brackets_in_a_folder_name": (["br[ack]/f.txt"], "br*/*.txt"),
    # Glob characters of every kind, and a file below a folder with them.
    "every_glob_character": (["g/a*b.txt", "g/a?b.txt", "g/[x]/c.txt",
                              "g/plain.txt"], "g/**"),
    # ** across a tree seven files deep.
    "a_tree": (["t/a/1.txt", "t/a/2.txt", "t/a/b/3.txt", "t/a/b/4.txt",
                "t/a/b/c/5.txt", "t/a/b/c/6.txt", "t/d/7.txt"],
               "t/**/*.txt"),
}


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_every_matched_file_is_read_exactly_once(layout, tmp_path):
  names, pattern = LAYOUTS[layout]
  root = tmp_path / "in"
  for i, name in enumerate(names):
    write_docs(str(root / name), two_sample_docs(i))
  out = str(tmp_path / "out")
  run_cli(["--input=" + str(root / pattern), "--output=" + out] + ARGS)
  summary = _summary(out)
  assert summary["counts"]["documents_read"] == 2 * len(names)
  assert summary["counts"]["documents"] == 2 * len(names)
  listed = summary["input_files"]["paths"]
  assert sorted(listed) == sorted(str(root / n) for n in names)
  assert summary["input_files"]["count"] == len(names)


def test_the_same_files_give_the_same_output_however_they_are_named(
    tmp_path):
  root = tmp_path / "in"
  names = ["a.txt", "b[1].txt", "sub/c.txt"]
  for i, name in enumerate(names):
    write_docs(str(root / name), two_sample_docs(i))
  spellings = [
      [str(root / "**")],
      [str(root / n) for n in names],
      # Overlapping patterns: a file two of them match is read once.
      [str(root / "*.txt"), str(root / "b[[]1].txt"), str(root / "sub/*"),
       str(root / "a.txt")],
  ]
  digests, counts = set(), set()
  for k, patterns in enumerate(spellings):
    out = str(tmp_path / ("out%d" % k))
    run_cli(["--input=" + ",".join(patterns), "--output=" + out] + ARGS)
    digests.add(digest(read_examples(out)))
    summary = _summary(out)
    counts.add((summary["input_files"]["count"],
                summary["counts"]["documents_read"]))
  assert counts == {(3, 6)}
  assert len(digests) == 1


@pytest.mark.parametrize("spelling", ["{d}", "{d}/"])
def test_a_folder_is_refused_with_the_pattern_to_use(spelling, tmp_path):
  folder = tmp_path / "corpus"
  write_docs(str(folder / "a.txt"), two_sample_docs(0))
  out = tmp_path / "out"
  proc = assert_refused(["--input=" + spelling.format(d=folder),
                         "--output=" + str(out)], "is a folder")
  assert "%s/*" % folder in proc.stderr and "%s/**" % folder in proc.stderr
  assert not out.exists()


@pytest.mark.parametrize("pattern,output", [
    ("corpus/**", "corpus/out"),      # would read its own _INCOMPLETE
    ("corpus/*/*", "corpus/out"),
    ("corpus/**", "corpus/sub/out"),
])
def test_a_pattern_that_reaches_the_output_is_refused(pattern, output,
                                                      tmp_path):
  write_docs(str(tmp_path / "corpus/sub/a.txt"), two_sample_docs(0))
  proc = assert_refused(["--input=" + str(tmp_path / pattern),
                         "--output=" + str(tmp_path / output)],
                        "would read its own output")
  assert "Traceback" not in proc.stderr
  assert not (tmp_path / output).exists()


def test_a_pattern_that_reaches_the_pool_dir_is_refused(tmp_path):
  write_docs(str(tmp_path / "corpus/a.txt"), two_sample_docs(0))
  assert_refused(["--input=" + str(tmp_path / "corpus/**"),
                  "--output=" + str(tmp_path / "out"),
                  "--pool_dir=" + str(tmp_path / "corpus/pools")],
                 "--pool_dir")
