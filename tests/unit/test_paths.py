"""transforms/paths.py: which files a pattern names, each once, glob
characters and links included (the CLI's refusals: tests/e2e/test_inputs.py)."""

import os

import pytest

from tests.helpers import two_sample_docs, write_docs
from transforms import paths


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
  # A compressed file's one range to infinity is clipped to the file's
  # size, found under its own name; a split range is its own length.
  assert paths.range_bytes(str(tmp_path / "x[1].txt"), 1, float("inf")) == 1
  assert paths.range_bytes(str(tmp_path / "x[1].txt"), 1, 2) == 1
  assert paths.pattern_matches(str(tmp_path / "**"),
                               str(tmp_path / "o" / "_INCOMPLETE"))
  assert not paths.pattern_matches(str(tmp_path / "*.txt"),
                                   str(tmp_path / "o" / "_INCOMPLETE"))
  assert [f.path for f in paths.match_below(str(tmp_path), "x[[]*")] == [
      str(tmp_path / "x[1].txt")]


def test_brackets_in_a_folder_name_given_literally(tmp_path):
  """``data[2024]/*`` matches nothing as a character class; taken
  literally, it is that folder's files."""
  write_docs(str(tmp_path / "data[2024]" / "a.txt"), two_sample_docs(0))
  found = paths.match_files([str(tmp_path / "data[2024]" / "*")])
  assert [f.path for f in found] == [str(tmp_path / "data[2024]" / "a.txt")]


def test_a_file_seen_through_a_link_is_read_once(tmp_path):
  write_docs(str(tmp_path / "c" / "a.txt"), two_sample_docs(0))
  os.symlink(str(tmp_path / "c"), str(tmp_path / "link"))
  found = paths.match_files([str(tmp_path / "c" / "*.txt"),
                             str(tmp_path / "link" / "*.txt")])
  assert len(found) == 1


def test_brackets_that_also_name_a_file_are_warned_about(tmp_path, caplog):
  write_docs(str(tmp_path / "br[ack]" / "x.txt"), two_sample_docs(0))
  write_docs(str(tmp_path / "brk" / "y.txt"), two_sample_docs(1))
  found = paths.match_files([str(tmp_path / "br[ack]" / "*")])
  assert [f.path for f in found] == [str(tmp_path / "brk" / "y.txt")]
  assert "character class" in caplog.text and "br[ack]/x.txt" in caplog.text


def test_read_bytes_reads_the_range_asked_for(tmp_path):
  path = tmp_path / "data.bin"
  data = bytes(range(256)) * 4
  path.write_bytes(data)
  assert paths.read_bytes(str(path)) == data
  assert paths.read_bytes(str(path), 10) == data[10:]
  assert paths.read_bytes(str(path), 10, 300) == data[10:300]
  assert paths.read_bytes(str(path), 1000, 5000) == data[1000:]  # file ends
  assert paths.read_bytes(str(path), 7, 7) == b""
  with pytest.raises(OSError):
    paths.read_bytes(str(tmp_path / "missing.bin"))
