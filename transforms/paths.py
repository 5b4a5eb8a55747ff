"""Document ids name files relative to the input root.

``input_root`` is the longest directory prefix of every matched file, so
``text/AA/wiki_00`` and ``text/AB/wiki_00`` get distinct ids while the ids do
not depend on where the corpus lives (a local folder or an ``s3://`` prefix)
nor on the order of the files.
"""

import os
from typing import Iterable

from apache_beam.io.filesystems import FileSystems


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
