import os
import sys

import pytest

# Tests import the project from the checkout, installed or not.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

HERE = os.path.dirname(os.path.abspath(__file__))
# Each tier is a folder and a marker of the same name (tests/README.md):
# ``pytest -m unit`` picks a tier without a list of files to keep up.
TIERS = ("unit", "e2e", "cluster")


def pytest_collection_modifyitems(items):
  for item in items:
    tier = os.path.relpath(str(item.path), HERE).split(os.sep)[0]
    if tier not in TIERS:
      raise pytest.UsageError(
          "%s is in no tier: put it in tests/unit, tests/e2e or tests/cluster"
          % item.nodeid)
    item.add_marker(getattr(pytest.mark, tier))
