"""What every command does at its edges: one ``error:`` line for any
failure, output files checked before the work and written whole.

Used by ``pipelines.learn_vocab``, ``pipelines.inspect`` and
``pipelines.report``:

* ``run_command`` runs a command's main function and turns an exception it
  did not expect into one ``error:`` line on stderr and exit status 1 (the
  traceback goes to the debug log), so no failure prints a traceback;
* ``check_writable`` refuses, before any work, an output path that cannot be
  written (under a regular file, a folder where a file is to go, a place
  the process may not write) or that exists when replacing it was not
  asked for;
* ``write_file`` writes an output under a temporary name beside it and
  renames it into place only when complete, so a failure (a full disk, a
  lost connection) leaves the former file or none, never a partial one;
  ``write_files`` does so for several files at once (a SentencePiece
  ``.model`` and its ``.vocab``), renaming none until all are written.
"""

import argparse
import errno
import logging
import os
import sys
import uuid
from typing import Callable, List, Optional, Sequence, Tuple

from pipelines.options import LOG_LEVELS, UsageError

# What a temporary file beside an output is called: OUTPUT + this + a
# random part (see write_file); a leftover of a killed process reads as one.
TEMP_INFIX = ".incomplete-"


def first_line(e: BaseException, last: bool = False) -> str:
  """``e`` as ``Type: message``, the message cut to one non-empty line: its
  first, or with ``last`` its last (a Beam pipeline's failure holds the
  workers' tracebacks, whose last line is the original error)."""
  lines = [l.strip() for l in str(e).splitlines() if l.strip()]
  text = (lines[-1] if last else lines[0]) if lines else ""
  return "%s: %s" % (type(e).__name__, text) if text else type(e).__name__


def error(message: str) -> None:
  """Prints ``error: message`` on stderr, as one line."""
  print("error: %s" % " ".join(message.split("\n")), file=sys.stderr)


def run_command(main: Callable[[Optional[Sequence[str]]], int],
                argv: Optional[Sequence[str]] = None,
                what: str = "the command") -> int:
  """``main(argv)``'s exit status; an exception it lets through becomes one
  ``error:`` line naming ``what`` failed and why (``first_line``) and exit
  status 1 (130 for Ctrl-C). argparse's own exits (``--help``, a bad flag:
  status 2 with its usage line) pass through."""
  try:
    return main(argv)
  except KeyboardInterrupt:
    error("%s was interrupted" % what)
    return 130
  except UsageError as e:
    error(str(e))
    return 2
  except Exception as e:  # pylint: disable=broad-except
    logging.debug("%s failed", what, exc_info=True)
    error("%s failed: %s" % (what, first_line(e, last=True)))
    return 1


class ArgumentParser(argparse.ArgumentParser):
  """argparse's parser whose refusals (a bad or missing argument) are one
  ``error:`` line naming the problem and exit status 2, not its usage
  text."""

  def error(self, message: str):
    error("%s (see %s --help)" % (message, self.prog))
    sys.exit(2)


class _OneLineRecords(logging.Filter):
  """Cuts a log record to its first line and drops its traceback, unless
  debug logging is on: Beam logs a failing DoFn's exception with its
  traceback before the job raises it."""

  def filter(self, record: logging.LogRecord) -> bool:
    if logging.getLogger().isEnabledFor(logging.DEBUG):
      return True
    if (record.exc_info or record.exc_text
        or "\n" in record.getMessage()):
      lines = record.getMessage().splitlines()
      record.msg, record.args = (lines[0] if lines else ""), ()
      record.exc_info = record.exc_text = record.stack_info = None
    return True


def configure_logging(argv: Sequence[str]) -> None:
  """Logs at ``--log_level`` (in ``argv``; ``warning`` by default: a run
  shows the project's own lines, not Beam's INFO), one line a record
  (``one_line_logs``). An unknown level is left for the option parser to
  refuse."""
  level = "warning"
  for i, arg in enumerate(argv):
    if arg.startswith("--log_level="):
      level = arg.split("=", 1)[1]
    elif arg == "--log_level" and i + 1 < len(argv):
      level = argv[i + 1]
  if level.lower() not in LOG_LEVELS:
    level = "warning"
  logging.basicConfig(level=getattr(logging, level.upper()),
                      format="%(asctime)s %(levelname)s %(message)s")
  one_line_logs()


def one_line_logs() -> None:
  """Makes every handler of the root logger print records as one line, no
  traceback (``_OneLineRecords``); call after ``logging.basicConfig``."""
  for handler in logging.getLogger().handlers:
    if not any(isinstance(f, _OneLineRecords) for f in handler.filters):
      handler.addFilter(_OneLineRecords())


def _is_remote(path: str) -> bool:
  return "://" in path


def check_writable(path: str, flag: str, overwrite: Optional[bool] = None,
                   directory: bool = False) -> None:
  """Raises ``UsageError`` (one line naming ``flag`` and ``path``) unless
  ``path`` can be written: for a local path, it is not an existing folder
  (a file, ``directory=False``) or file (``directory=True``), and the
  nearest folder above it that exists is a folder this process may write
  in. Nothing is created. With ``overwrite`` False an existing file is
  refused (pass ``--overwrite``); None does not check. A remote path
  (``s3://``) is only checked for existence, through Beam's FileSystems.
  """
  if _is_remote(path):
    if overwrite is False and not directory:
      from apache_beam.io.filesystems import FileSystems  # pylint: disable=import-outside-toplevel
      if FileSystems.exists(path):
        raise UsageError("%s %s exists; pass --overwrite to replace it"
                         % (flag, path))
    return
  path = os.path.abspath(path)
  if os.path.isdir(path) and not directory:
    raise UsageError("%s %s is a folder; it names the file to write"
                     % (flag, path))
  if os.path.lexists(path) and not os.path.isdir(path):
    if directory:
      raise UsageError("%s %s is a file, not a folder" % (flag, path))
    if overwrite is False:
      raise UsageError("%s %s exists; pass --overwrite to replace it"
                       % (flag, path))
  parent = path if directory and os.path.isdir(path) else os.path.dirname(path)
  while not os.path.lexists(parent):
    parent = os.path.dirname(parent)
  if not os.path.isdir(parent):
    raise UsageError("cannot write %s %s: %s is not a folder"
                     % (flag, path, parent))
  if not os.access(parent, os.W_OK | os.X_OK):
    raise UsageError("cannot write %s %s: no permission to write in %s"
                     % (flag, path, parent))


def write_file(path: str, data: bytes) -> None:
  """Writes ``data`` to ``path`` whole or not at all.

  Local: into ``path`` + ``TEMP_INFIX`` + a random part in the same folder
  (made if missing), flushed to disk (fsync), then renamed over ``path``
  (``os.replace``, atomic on one filesystem); the file gets the usual
  permissions (0666 less the umask). Remote (``s3://``, any of Beam's
  FileSystems): the same under the temporary name, then
  ``FileSystems.rename`` (on S3 a copy, which makes the object appear
  whole). On any failure the temporary file is removed and the error
  raised; ``path`` keeps what it held before.
  """
  write_files([(path, data)])


def write_files(files: Sequence[Tuple[str, bytes]]) -> None:
  """Writes each ``(path, data)`` as ``write_file`` does, all or none:
  every file is written under its temporary name first, and only when all
  are complete are they renamed into place, in the order given. On a
  failure while writing, every temporary file is removed and the error
  raised; each path keeps what it held before. (A rename that fails after
  others succeeded, which takes a filesystem failing between two renames in
  one folder, leaves those others in place.)
  """
  staged: List[Tuple[str, str]] = []
  try:
    for path, data in files:
      temp = "%s%s%s" % (path, TEMP_INFIX, uuid.uuid4().hex[:12])
      staged.append((temp, path))
      if _is_remote(path):
        _stage_remote(temp, data)
      else:
        _stage_local(path, temp, data)
    for temp, path in staged:
      if _is_remote(path):
        from apache_beam.io.filesystems import FileSystems  # pylint: disable=import-outside-toplevel
        FileSystems.rename([temp], [path])
      else:
        os.replace(temp, path)
  except BaseException:
    for temp, path in staged:
      if _is_remote(path):
        _delete_remote_quietly(temp)
      else:
        _remove_quietly(temp)
    raise


def _stage_local(path: str, temp: str, data: bytes) -> None:
  folder = os.path.dirname(os.path.abspath(path))
  os.makedirs(folder, exist_ok=True)
  fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
  with os.fdopen(fd, "wb") as f:
    f.write(data)
    f.flush()
    os.fsync(f.fileno())


def _remove_quietly(path: str) -> None:
  try:
    os.remove(path)
  except OSError as e:
    if e.errno != errno.ENOENT:
      logging.warning("could not remove %s: %s", path, first_line(e))


def _stage_remote(temp: str, data: bytes) -> None:
  # pylint: disable=import-outside-toplevel
  from apache_beam.io.filesystems import FileSystems
  f = FileSystems.create(temp)
  try:
    f.write(data)
  finally:
    f.close()


def _delete_remote_quietly(temp: str) -> None:
  # pylint: disable=import-outside-toplevel
  from apache_beam.io.filesystems import FileSystems
  try:
    if FileSystems.exists(temp):
      FileSystems.delete([temp])
  except Exception as e:  # pylint: disable=broad-except
    logging.warning("could not remove %s: %s", temp, first_line(e))
