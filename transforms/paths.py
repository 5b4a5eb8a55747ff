"""The input files of a job, matched once, and the names documents get.

``match_input`` turns ``--input`` patterns into the files the job reads
(``MatchedInput``), once, before the pipeline starts: the readers take those paths as
they are and never treat them as patterns again (a file named ``doc[1].txt``
is that file, not a glob that matches ``doc1.txt``).

Document ids name files relative to the input root: ``input_root`` is the
longest directory prefix of every matched file, so ``text/AA/wiki_00`` and
``text/AB/wiki_00`` get distinct ids while the ids do not depend on where the
corpus lives (a local folder or an ``s3://`` prefix) nor on the order of the
files.

Pattern syntax is Beam's (``FileSystem.translate_pattern``): ``*`` within
one folder, ``**`` across folders (``DIR/**/*.txt`` needs at least one folder
below ``DIR``; ``DIR/**`` takes every file below it), ``?`` and ``[…]`` as in
fnmatch.
"""

import functools
import logging
import math
import os
import re
import uuid
import warnings
from typing import (Dict, Iterable, List, NamedTuple, Optional, Sequence,
                    Tuple, Union)

from apache_beam.io.filesystem import CompressionTypes, FileSystem
from apache_beam.io.filesystems import FileSystems

from transforms import metrics, s3_clients

_GLOB_CHARS = re.compile(r"[*?\[]")


class InputError(ValueError):
  """An ``--input`` pattern that cannot be read as asked: it matches nothing,
  names a folder, or cannot be listed. The message says which and why."""


class InputFile(NamedTuple):
  """One matched file: its path as the filesystem spells it, its size in
  bytes and when it last changed (seconds since the epoch, as its
  filesystem reports it: a local file's mtime, an S3 object's
  LastModified)."""
  path: str
  size: int
  modified: float = 0.0


def file_key(path: str) -> str:
  """What makes two names of a file one: its real path on local disk (a
  link and its target are one), the URL elsewhere."""
  return path if "://" in path else os.path.realpath(path)


def match_files(patterns: Sequence[str]) -> List[InputFile]:
  """Every file the ``patterns`` match, each once, sorted by path.

  A file matched by several patterns, or by two spellings of it (a folder
  and a link to it), is listed once, under the first name found. ``[…]``
  is a character class; a pattern that matches nothing is tried with its
  ``[`` taken literally (``data[2024]/*``), and a pattern whose brackets
  would also name other files literally is warned about. Raises
  ``InputError`` for a pattern that matches nothing, a folder given as a
  pattern (a local directory, or an ``s3://`` prefix that holds objects
  below it), or a listing that fails."""
  files: Dict[str, InputFile] = {}
  for pattern in patterns:
    matched = _match(pattern)
    if not matched and "[" in pattern:
      matched = _match(_literal_brackets(pattern))
    elif "[" in pattern:
      _warn_if_brackets_also_name(pattern, matched)
    if not matched and _GLOB_CHARS.search(pattern) and _is_file(pattern):
      # A file whose name holds glob characters, named as itself (as a
      # shell passes a glob that matches nothing): that file.
      matched = [FileSystems.get_filesystem(pattern).metadata(pattern)]
    if not matched or (len(matched) == 1 and _is_local_dir(matched[0].path)):
      if not _GLOB_CHARS.search(pattern) and _holds_files(pattern):
        folder = pattern.rstrip("/")
        raise InputError(
            "--input %r is a folder, not a file: give a pattern of the files "
            "to read, '%s/*' for those in it or '%s/**' for every file below "
            "it" % (pattern, folder, folder))
      raise InputError("no file matches --input pattern %r" % pattern)
    for m in matched:
      if _is_local_dir(m.path):
        continue  # a folder matched by a glob: its files are not asked for
      key = file_key(m.path)
      if key not in files:
        files[key] = InputFile(m.path, m.size_in_bytes,
                               m.last_updated_in_seconds)
  if not files:
    raise InputError("--input %s matches only folders, no file"
                     % ", ".join(repr(p) for p in patterns))
  return sorted(files.values())


def _match(pattern: str):
  try:
    with warnings.catch_warnings():
      warnings.simplefilter("ignore", FutureWarning)  # see match_below
      return FileSystems.match([pattern])[0].metadata_list
  except Exception as e:  # pylint: disable=broad-except
    raise InputError("cannot list --input pattern %r: %s"
                     % (pattern, _first_line(e))) from None


def _literal_brackets(pattern: str) -> str:
  return pattern.replace("[", "[[]")


def _warn_if_brackets_also_name(pattern: str, matched) -> None:
  literal = _match(_literal_brackets(pattern))
  others = sorted({m.path for m in literal} - {m.path for m in matched})
  if others:
    logging.warning(
        "--input pattern %r: [...] is a character class, so it reads %d "
        "files but not %s, whose name holds the brackets; write '[[]' for a "
        "literal '['", pattern, len(matched), others[0])


def _is_local_dir(path: str) -> bool:
  return "://" not in path and os.path.isdir(path)


def _is_file(path: str) -> bool:
  try:
    return FileSystems.exists(path) and not _is_local_dir(path)
  except Exception:  # pylint: disable=broad-except
    return False


def _holds_files(pattern: str) -> bool:
  """Whether ``pattern`` (no glob characters) is a folder holding files."""
  if _is_local_dir(pattern):
    return True
  try:
    below = FileSystems.match([pattern.rstrip("/") + "/**"], limits=[1])
    return bool(below[0].metadata_list)
  except Exception:  # pylint: disable=broad-except
    return False


def escape_glob(path: str) -> str:
  """``path`` as a pattern that matches only itself: each ``*``, ``?`` and
  ``[`` in brackets (Beam's pattern syntax has no other quoting)."""
  return re.sub(r"([*?\[])", r"[\1]", path)


def match_below(folder: str, tail: str = "**") -> List[InputFile]:
  """The files below ``folder`` (a path, never a pattern, whatever
  characters it holds) that match the pattern ``tail``."""
  pattern = escape_glob(folder.rstrip("/") + "/") + tail
  with warnings.catch_warnings():
    # An escaped "[" reads "[[]", which Python's re flags as a possible
    # nested set in some future version; today it is the literal "[".
    warnings.simplefilter("ignore", FutureWarning)
    matched = FileSystems.match([pattern])[0].metadata_list
  return [InputFile(m.path, m.size_in_bytes, m.last_updated_in_seconds)
          for m in matched]


def pattern_matches(pattern: str, path: str) -> bool:
  """Whether ``path`` would be matched by ``pattern`` under Beam's pattern
  syntax (the file need not exist). Local patterns are compared as
  absolute paths."""
  if "://" not in pattern:
    pattern = os.path.abspath(pattern) + ("/" if pattern.endswith("/") else "")
    path = os.path.abspath(path)
  if pattern.endswith("/"):
    pattern += "*"
  return re.match(FileSystem.translate_pattern(pattern), path) is not None


def same_file(a: str, b: str) -> bool:
  """Whether two paths name the same file (local paths with links
  resolved; object-store paths as strings)."""
  if "://" in a or "://" in b:
    return a == b
  return os.path.realpath(a) == os.path.realpath(b)


def is_below(path: str, folder: str) -> bool:
  """Whether ``path`` lies inside ``folder`` (local paths compared
  absolute and with links resolved; object-store paths as strings)."""
  if "://" in folder or "://" in path:
    return path.startswith(folder.rstrip("/") + "/")
  path, folder = os.path.realpath(path), os.path.realpath(folder)
  return os.path.commonpath([path, folder]) == folder


def _first_line(e: Exception) -> str:
  lines = [l for l in str(e).splitlines() if l.strip()]
  return lines[-1] if lines else type(e).__name__


def input_root(paths: Iterable[str]) -> str:
  """The longest directory prefix (ending in ``/``, or empty) shared by
  ``paths``: document ids are file names relative to it."""
  paths = list(paths)
  if not paths:
    return ""
  prefix = os.path.commonprefix(paths)
  return prefix[:prefix.rfind("/") + 1]


class MatchedInput(NamedTuple):
  """``--input`` as matched once at launch (``match_input``): the files,
  each once, sorted by path, and the root that document ids are relative
  to. Every later step (the checks, the readers, the run record for
  ``--resume``, summary.json) reads this value; none matches the patterns
  again."""
  files: Tuple[InputFile, ...]
  root: str

  @property
  def paths(self) -> List[str]:
    return [f.path for f in self.files]

  @property
  def total_bytes(self) -> int:
    return sum(f.size for f in self.files)


def match_input(patterns: Iterable[str]) -> MatchedInput:
  """``patterns`` matched (``match_files``) with their ``input_root``.
  Raises ``InputError`` as ``match_files`` does."""
  files = match_files(list(patterns))
  return MatchedInput(tuple(files), input_root(f.path for f in files))


def relative_name(file_name: str, root: str) -> str:
  """``file_name`` relative to ``root``; its base name if outside it."""
  if root and file_name.startswith(root):
    return file_name[len(root):]
  return file_name.rsplit("/", 1)[-1]


def range_bytes(file_name: str, start: int, stop: Union[int, float]) -> int:
  """Bytes of ``file_name`` in ``[start, stop)``. A range of a file the
  reader splits (``reading.file_ranges``) lies within the file as matched,
  so its bytes are its length; a compressed file is read as one range to
  infinity, clipped to the file's size (one metadata request). The name is
  a path, never matched as a pattern."""
  if stop != math.inf:  # OffsetRangeTracker.OFFSET_INFINITY
    return max(0, int(stop) - start)
  size = FileSystems.get_filesystem(file_name).metadata(
      file_name).size_in_bytes
  return max(0, min(stop, size) - start)


def counting_input_bytes(read_records):
  """Decorates a ``FileBasedSource.read_records`` to count its byte range as
  ``input_bytes`` once the range is done (the live progress's measure)."""
  @functools.wraps(read_records)
  def wrapper(self, file_name, offset_range_tracker):
    start = offset_range_tracker.start_position() or 0
    stop = offset_range_tracker.stop_position()
    try:
      yield from read_records(self, file_name, offset_range_tracker)
    finally:
      try:
        metrics.count("input_bytes", range_bytes(file_name, start, stop))
      except Exception:  # pylint: disable=broad-except
        pass  # a file gone or unreachable now: the progress skips it
  return wrapper


def read_bytes(path: str, start: int = 0, stop: Optional[int] = None
               ) -> bytes:
  """Bytes ``[start, stop)`` of the file ``path`` (to its end where ``stop``
  is None; fewer where the file ends first). On S3, one ranged request
  (``s3_clients.get_bytes``); elsewhere through Beam's filesystems. Raises
  ``FileNotFoundError`` for a missing file, ``OSError`` for one that cannot
  be read."""
  if path.startswith("s3://"):
    return s3_clients.get_bytes(path, start, stop)
  if stop is not None and stop <= start:
    return b""
  with FileSystems.open(path,
                        compression_type=CompressionTypes.UNCOMPRESSED) as f:
    if start:
      f.seek(start)
    return f.read() if stop is None else f.read(stop - start)


def write_whole(path: str, data: bytes) -> None:
  """Writes ``data`` to ``path`` so that a reader finds all of it or
  nothing: on a local disk aside, then renamed; an object store shows an
  object only once its upload is complete."""
  if "://" in path:
    with FileSystems.create(
        path, compression_type=CompressionTypes.UNCOMPRESSED) as f:
      f.write(data)
    return
  aside = "%s.%s.tmp" % (path, uuid.uuid4().hex)
  with open(aside, "wb") as f:
    f.write(data)
  os.replace(aside, path)
