"""transforms/kernels.py: the optional C kernels are built where a C
compiler is, and are on unless MLM_NUMPY_ONLY says otherwise. What each
computes is compared with its Python path in test_examples.py (the
encoder), test_masking.py (the masking) and test_instances.py (the
segment pairs)."""

import os
import shutil
import subprocess
import sys
import sysconfig

import pytest

from tests.helpers import REPO
from transforms import kernels


def _compiler() -> bool:
  return bool(shutil.which(
      (sysconfig.get_config_var("CC") or "cc").split()[0]))


@pytest.mark.parametrize("name", ["record_encoder", "masking_kernel",
                                  "pairs_kernel"])
def test_each_kernel_is_built_where_a_compiler_is(name):
  """setup.py builds transforms/_NAME.c where there is a C compiler (as on
  CI); otherwise the comparisons with the Python paths would compare them
  with themselves."""
  if not _compiler():
    pytest.skip("no C compiler here: the Python paths do the work")
  assert kernels.built()[name], (
      "transforms/_%s.c was not built: run pip install -e . again and read "
      "its output" % name)


def test_mlm_numpy_only_turns_every_kernel_off():
  code = ("from transforms import kernels; print(kernels.record_encoder(), "
          "kernels.masking_kernel(), kernels.pairs_kernel())")
  for value, off in (("1", True), ("", False)):
    env = dict(os.environ, MLM_NUMPY_ONLY=value)
    printed = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env,
                             capture_output=True, text=True, check=True,
                             timeout=60).stdout.split()
    if off:
      assert printed == ["None"] * 3
    elif _compiler():
      assert "None" not in printed
  assert not kernels.numpy_only
