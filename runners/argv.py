"""Which options a command line gives, read before Beam parses it: the
runner presets (runners/direct.py, runners/flink.py) set on the parsed
``PipelineOptions`` only what the user left out."""

from typing import FrozenSet, Sequence


def given_options(argv: Sequence[str]) -> FrozenSet[str]:
  """The option names ``argv`` sets (``--name``, ``--name=value`` or
  ``--name value``), without their dashes: ``{"runner", "flink_master"}``
  for ``--runner=FlinkRunner --flink_master host:8081``."""
  return frozenset(a[2:].split("=", 1)[0] for a in argv
                   if a.startswith("--") and len(a) > 2)
