"""Which files a job reads: every matched file exactly once, whatever its
name; never a folder; never the job's own output."""

import json
import os

import pytest

from tests.helpers import (assert_refused, digest, read_examples, run_cli,
                           sample_documents)
from transforms import paths

ARGS = ["--dupe_factor=1", "--quiet"]


def _write_docs(path, docs):
  """A lines-format file of ``docs`` (lists of sentences)."""
  os.makedirs(os.path.dirname(path), exist_ok=True)
  with open(path, "w", encoding="utf-8") as f:
    f.write("\n\n".join("\n".join(d) for d in docs) + "\n")


def _two_docs(i):
  docs = sample_documents()
  return [docs[(2 * i) % len(docs)], docs[(2 * i + 1) % len(docs)]]


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
    _write_docs(str(root / name), _two_docs(i))
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
    _write_docs(str(root / name), _two_docs(i))
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
  _write_docs(str(folder / "a.txt"), _two_docs(0))
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
  _write_docs(str(tmp_path / "corpus/sub/a.txt"), _two_docs(0))
  proc = assert_refused(["--input=" + str(tmp_path / pattern),
                         "--output=" + str(tmp_path / output)],
                        "would read its own output")
  assert "Traceback" not in proc.stderr
  assert not (tmp_path / output).exists()


def test_a_pattern_that_reaches_the_pool_dir_is_refused(tmp_path):
  _write_docs(str(tmp_path / "corpus/a.txt"), _two_docs(0))
  assert_refused(["--input=" + str(tmp_path / "corpus/**"),
                  "--output=" + str(tmp_path / "out"),
                  "--pool_dir=" + str(tmp_path / "corpus/pools")],
                 "--pool_dir")


def test_match_files_unit(tmp_path):
  (tmp_path / "x[1].txt").write_text("a\n")
  (tmp_path / "x1.txt").write_text("b\n")
  (tmp_path / "empty").mkdir()
  found = paths.match_files([str(tmp_path / "*.txt"),
                             str(tmp_path / "x1.txt")])
  assert [f.path for f in found] == [str(tmp_path / "x1.txt"),
                                     str(tmp_path / "x[1].txt")]
  assert [f.size for f in found] == [2, 2]
  with pytest.raises(paths.InputError, match="no file matches"):
    paths.match_files([str(tmp_path / "nothing*")])
  with pytest.raises(paths.InputError, match="is a folder"):
    paths.match_files([str(tmp_path / "empty")])  # even with no file in it
  with pytest.raises(paths.InputError, match="is a folder"):
    paths.match_files([str(tmp_path)])
  # Named as itself, a file with glob characters in its name is that file
  # when, as a pattern, the name matches nothing (as in a shell).
  (tmp_path / "y[2].txt").write_text("c\n")
  assert [f.path for f in paths.match_files([str(tmp_path / "y[2].txt")])
          ] == [str(tmp_path / "y[2].txt")]
  assert paths.range_bytes(str(tmp_path / "x[1].txt"), 1, 10) == 1
  assert paths.pattern_matches(str(tmp_path / "**"),
                               str(tmp_path / "o" / "_INCOMPLETE"))
  assert not paths.pattern_matches(str(tmp_path / "*.txt"),
                                   str(tmp_path / "o" / "_INCOMPLETE"))
  assert [f.path for f in paths.match_below(str(tmp_path), "x[[]*")] == [
      str(tmp_path / "x[1].txt")]


def test_brackets_in_a_folder_name_given_literally(tmp_path):
  """``data[2024]/*`` matches nothing as a character class; taken
  literally, it is that folder's files."""
  _write_docs(str(tmp_path / "data[2024]" / "a.txt"), _two_docs(0))
  found = paths.match_files([str(tmp_path / "data[2024]" / "*")])
  assert [f.path for f in found] == [str(tmp_path / "data[2024]" / "a.txt")]


def test_a_file_seen_through_a_link_is_read_once(tmp_path):
  _write_docs(str(tmp_path / "c" / "a.txt"), _two_docs(0))
  os.symlink(str(tmp_path / "c"), str(tmp_path / "link"))
  found = paths.match_files([str(tmp_path / "c" / "*.txt"),
                             str(tmp_path / "link" / "*.txt")])
  assert len(found) == 1


def test_brackets_that_also_name_a_file_are_warned_about(tmp_path, caplog):
  _write_docs(str(tmp_path / "br[ack]" / "x.txt"), _two_docs(0))
  _write_docs(str(tmp_path / "brk" / "y.txt"), _two_docs(1))
  found = paths.match_files([str(tmp_path / "br[ack]" / "*")])
  assert [f.path for f in found] == [str(tmp_path / "brk" / "y.txt")]
  assert "character class" in caplog.text and "br[ack]/x.txt" in caplog.text
