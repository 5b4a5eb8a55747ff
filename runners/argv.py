"""Flags read from a command line as given, before Beam parses it: the
runner presets (runners/direct.py, runners/flink.py) add only what the user
left out."""

from typing import Optional, Sequence


def has_flag(argv: Sequence[str], name: str) -> bool:
  """Whether ``argv`` gives ``name`` (``--name`` or ``--name=value``)."""
  return any(a == name or a.startswith(name + "=") for a in argv)


def flag_value(argv: Sequence[str], name: str) -> Optional[str]:
  """The value ``argv`` gives ``name`` (``--name=value`` or ``--name
  value``), or None."""
  for i, a in enumerate(argv):
    if a.startswith(name + "="):
      return a.split("=", 1)[1]
    if a == name and i + 1 < len(argv):
      return argv[i + 1]
  return None
