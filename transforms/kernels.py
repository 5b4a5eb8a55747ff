"""The optional C kernels and the switch between them and numpy.

Three steps of the job have a C version beside their Python/numpy one,
built by setup.py as optional extensions where a C compiler is found
(without one the install goes on, and Python does the work): the TFRecord
encoder (``transforms/_record_encoder.c``, used by examples.py), BERT's
token masking without whole words (``transforms/_masking_kernel.c``, used
by masking.py) and segment pairs with NSP, SOP or no sentence task
(``transforms/_pairs_kernel.c``, used by instances.py, drawing from the
pool's ``random.Random`` as the Python does). Each gives the same bytes and arrays as its Python path
(tests/unit/test_examples.py, test_masking.py, test_instances.py compare
them); only the CPU time differs. ``MLM_NUMPY_ONLY=1`` in the environment
keeps all three on Python (to compare, or to rule the C out).
"""

import os
from types import ModuleType
from typing import Optional

try:
  from transforms import _record_encoder  # pylint: disable=no-name-in-module
except ImportError:
  _record_encoder = None
try:
  from transforms import _masking_kernel  # pylint: disable=no-name-in-module
except ImportError:
  _masking_kernel = None
try:
  from transforms import _pairs_kernel  # pylint: disable=no-name-in-module
except ImportError:
  _pairs_kernel = None

NUMPY_ONLY_ENV = "MLM_NUMPY_ONLY"
# Read once; tests set it directly.
numpy_only = os.environ.get(NUMPY_ONLY_ENV, "") not in ("", "0")


def record_encoder() -> Optional[ModuleType]:
  """The C TFRecord encoder, or None (not built, or ``numpy_only``)."""
  return None if numpy_only else _record_encoder


def masking_kernel() -> Optional[ModuleType]:
  """The C masking kernel, or None (not built, or ``numpy_only``)."""
  return None if numpy_only else _masking_kernel


def pairs_kernel() -> Optional[ModuleType]:
  """The C builder of segment pairs (NSP, SOP, none), or None (not built,
  or ``numpy_only``)."""
  return None if numpy_only else _pairs_kernel


def built() -> dict:
  """Which kernels this install has: name → bool."""
  return {"record_encoder": _record_encoder is not None,
          "masking_kernel": _masking_kernel is not None,
          "pairs_kernel": _pairs_kernel is not None}
