"""The reader through the command line: a Parquet file with an empty row
group (the reader itself: tests/unit/test_reading.py)."""

import json
import os

from tests.helpers import PARQUET_GROUPS_15_0_15, write_parquet_row_groups
from transforms import rejects


def test_parquet_with_an_empty_row_group_through_the_cli(tmp_path):
  from tests.helpers import run_cli  # pylint: disable=import-outside-toplevel
  (tmp_path / "in").mkdir()
  path = write_parquet_row_groups(tmp_path / "in" / "groups.parquet",
                                  PARQUET_GROUPS_15_0_15)
  out = str(tmp_path / "out")
  run_cli(["--input=" + path, "--input_format=parquet", "--output=" + out,
           "--quiet"])
  with open(os.path.join(out, "summary.json"), encoding="utf-8") as f:
    summary = json.load(f)
  assert summary["counts"]["documents"] == 30
  assert summary["counts"]["documents_read"] == 30
  assert summary["rejected"] == {}
  assert not os.path.exists(os.path.join(out, rejects.REJECTED_DIR))
