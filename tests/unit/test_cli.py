"""pipelines/cli.py: one error line for any failure, output paths checked
before the work, files written whole."""

import logging
import os
import sys

import pytest

from pipelines import cli
from pipelines.options import UsageError


def test_first_line():
  assert cli.first_line(ValueError("bad\nvalue\n")) == "ValueError: bad"
  assert cli.first_line(RuntimeError("Traceback:\n  x\nOSError: full\n"),
                        last=True) == "RuntimeError: OSError: full"
  assert cli.first_line(KeyError()) == "KeyError"


def test_run_command_turns_every_failure_into_one_line(capsys):
  def fails(exception):
    def main(argv):
      raise exception
    return main
  for exception, code, line in (
      (OSError(28, "No space left on device"), 1,
       "error: tool failed: OSError: [Errno 28] No space left on device"),
      (UsageError("--x is wrong"), 2, "error: --x is wrong"),
      (KeyboardInterrupt(), 130, "error: tool was interrupted"),
      (RuntimeError("a\nlong\n\nstory"), 1,
       "error: tool failed: RuntimeError: story")):
    assert cli.run_command(fails(exception), [], what="tool") == code
    assert capsys.readouterr().err == line + "\n"
  assert cli.run_command(lambda argv: 3, []) == 3
  with pytest.raises(SystemExit):  # argparse's exits pass through
    cli.run_command(fails(SystemExit(0)), [])


def test_argument_parser_refuses_in_one_line(capsys):
  parser = cli.ArgumentParser(prog="tool")
  parser.add_argument("--n", type=int)
  with pytest.raises(SystemExit) as exited:
    parser.parse_args(["--n=x"])
  assert exited.value.code == 2
  assert capsys.readouterr().err == (
      "error: argument --n: invalid int value: 'x' (see tool --help)\n")


def test_one_line_logs():
  """A record with a traceback, or of several lines, prints as its first
  line (unless debug logging is on)."""
  root = logging.getLogger()
  handler = logging.StreamHandler()
  root.addHandler(handler)
  level = root.level
  try:
    cli.one_line_logs()
    cli.one_line_logs()  # one filter per handler, however often called
    assert sum(isinstance(f, cli._OneLineRecords)  # pylint: disable=protected-access
               for f in handler.filters) == 1
    try:
      raise ValueError("inner")
    except ValueError:
      exc_info = sys.exc_info()
    record = logging.LogRecord("apache_beam", logging.ERROR, "f", 1,
                               "first %s\nsecond", ("x",), exc_info)
    root.setLevel(logging.INFO)
    assert handler.filter(record)
    assert record.getMessage() == "first x" and record.exc_info is None
    # A traceback that comes in the arguments (a worker's, forwarded).
    record = logging.LogRecord("apache_beam", logging.ERROR, "f", 1,
                               "Worker: %s", ("Traceback:\n  line\nError",),
                               None)
    assert handler.filter(record)
    assert record.getMessage() == "Worker: Traceback:"
  finally:
    root.setLevel(level)
    root.removeHandler(handler)


def test_check_writable(tmp_path):
  regular = tmp_path / "regular"
  regular.write_text("x")
  folder = tmp_path / "folder"
  folder.mkdir()
  cli.check_writable(str(tmp_path / "new" / "deeper" / "v.txt"), "--output")
  cli.check_writable(str(regular), "--output")  # overwrite None: no check
  cli.check_writable(str(regular), "--output", overwrite=True)
  cli.check_writable(str(folder), "--plots_dir", directory=True)
  cli.check_writable(str(tmp_path / "new"), "--plots_dir", directory=True)
  for args, kwargs, message in (
      ((str(regular / "v.txt"), "--output"), {}, "is not a folder"),
      ((str(regular / "a" / "b"), "--output"), {}, "is not a folder"),
      ((str(folder), "--output"), {}, "is a folder"),
      ((str(regular), "--output"), {"overwrite": False},
       "exists; pass --overwrite"),
      ((str(regular), "--plots_dir"), {"directory": True},
       "is a file, not a folder")):
    with pytest.raises(UsageError, match=message):
      cli.check_writable(*args, **kwargs)
  assert not (tmp_path / "new").exists()  # nothing was made


def test_write_file_is_whole_or_nothing(tmp_path, monkeypatch):
  path = tmp_path / "sub" / "out.txt"
  cli.write_file(str(path), b"first")
  assert path.read_bytes() == b"first"
  assert oct(path.stat().st_mode & 0o777) == oct(0o666 & ~_umask())
  cli.write_file(str(path), b"second")
  assert path.read_bytes() == b"second"

  def no_room(fd):
    raise OSError(28, "No space left on device")
  monkeypatch.setattr(os, "fsync", no_room)
  with pytest.raises(OSError, match="No space left"):
    cli.write_file(str(path), b"third, cut short")
  assert path.read_bytes() == b"second"  # the former file, whole
  assert os.listdir(path.parent) == ["out.txt"]  # no temporary file left


def _umask():
  mask = os.umask(0)
  os.umask(mask)
  return mask


def test_write_file_through_filesystems(tmp_path, monkeypatch):
  """The remote branch (what s3:// takes), run on Beam's local filesystem:
  written under a temporary name, renamed into place; on a failure the
  temporary object is deleted and the target left as it was."""
  from apache_beam.io.filesystems import FileSystems  # pylint: disable=import-outside-toplevel
  monkeypatch.setattr(cli, "_is_remote", lambda path: True)
  path = str(tmp_path / "out.txt")
  cli.write_file(path, b"whole")
  assert open(path, "rb").read() == b"whole"
  renamed = []

  def failing_rename(sources, destinations):
    renamed.append(sources[0])
    raise IOError("connection lost")
  monkeypatch.setattr(FileSystems, "rename", failing_rename)
  with pytest.raises(IOError, match="connection lost"):
    cli.write_file(path, b"never seen")
  assert cli.TEMP_INFIX in renamed[0]
  assert open(path, "rb").read() == b"whole"
  assert os.listdir(tmp_path) == ["out.txt"]


def test_write_files_renames_none_until_all_are_written(tmp_path,
                                                        monkeypatch):
  """A .model and its .vocab: when the second cannot be written, the first
  is not renamed into place either; both keep what they held."""
  model, vocab = tmp_path / "spm.model", tmp_path / "spm.vocab"
  cli.write_files([(str(model), b"model 1"), (str(vocab), b"vocab 1")])
  assert (model.read_bytes(), vocab.read_bytes()) == (b"model 1", b"vocab 1")
  synced = []

  def second_has_no_room(fd):
    synced.append(fd)
    if len(synced) == 2:
      raise OSError(28, "No space left on device")
  monkeypatch.setattr(os, "fsync", second_has_no_room)
  with pytest.raises(OSError, match="No space left"):
    cli.write_files([(str(model), b"model 2"), (str(vocab), b"vocab 2")])
  assert (model.read_bytes(), vocab.read_bytes()) == (b"model 1", b"vocab 1")
  assert sorted(os.listdir(tmp_path)) == ["spm.model", "spm.vocab"]
