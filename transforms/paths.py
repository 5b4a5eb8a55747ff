"""Document ids name files relative to the input root.

``input_root`` is the longest directory prefix of every matched file, so
``text/AA/wiki_00`` and ``text/AB/wiki_00`` get distinct ids while the ids do
not depend on where the corpus lives (a local folder or an ``s3://`` prefix)
nor on the order of the files.
"""

import functools
import os
from typing import Iterable

from apache_beam.io.filesystems import FileSystems

from transforms import metrics


def input_root(paths: Iterable[str]) -> str:
  """The longest directory prefix (ending in ``/``, or empty) shared by
  ``paths``: document ids are file names relative to it."""
  paths = list(paths)
  if not paths:
    return ""
  prefix = os.path.commonprefix(paths)
  return prefix[:prefix.rfind("/") + 1]


def match_input_root(patterns: Iterable[str]) -> str:
  """``input_root`` of every file matching ``patterns`` (Beam's FileSystems:
  local paths, globs, ``s3://``), spelled as the readers will see them."""
  paths = []
  for result in FileSystems.match(list(patterns)):
    paths.extend(m.path for m in result.metadata_list)
  return input_root(paths)


def relative_name(file_name: str, root: str) -> str:
  """``file_name`` relative to ``root``; its base name if outside it."""
  if root and file_name.startswith(root):
    return file_name[len(root):]
  return file_name.rsplit("/", 1)[-1]


def range_bytes(file_name: str, start: int, stop: int) -> int:
  """Bytes of ``file_name`` in ``[start, stop)``, ``stop`` clipped to the
  file's size (a compressed file is read as one range to infinity)."""
  matched = FileSystems.match([file_name])[0].metadata_list
  size = matched[0].size_in_bytes if matched else 0
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
