"""The reader through the command line: a Parquet file with an empty row
group (the reader itself: tests/unit/test_reading.py)."""

import json
import os

from transforms import rejects


def _write_row_groups(path, groups, name="text"):
  """A Parquet file written with ``ParquetWriter``, one ``write_table`` per
  entry of ``groups`` (an empty list writes an empty row group)."""
  import pyarrow as pa  # pylint: disable=import-outside-toplevel
  import pyarrow.parquet as pq  # pylint: disable=import-outside-toplevel
  schema = pa.schema([(name, pa.string())])
  with pq.ParquetWriter(str(path), schema) as writer:
    for texts in groups:
      writer.write_table(pa.table({name: texts}, schema=schema))
  return str(path)


_GROUPS_15_0_15 = [["Group one row %d says something." % i for i in range(15)],
                   [],
                   ["Group three row %d says more." % i for i in range(15)]]


def test_parquet_with_an_empty_row_group_through_the_cli(tmp_path):
  from tests.helpers import run_cli  # pylint: disable=import-outside-toplevel
  (tmp_path / "in").mkdir()
  path = _write_row_groups(tmp_path / "in" / "groups.parquet",
                           _GROUPS_15_0_15)
  out = str(tmp_path / "out")
  run_cli(["--input=" + path, "--input_format=parquet", "--output=" + out,
           "--quiet"])
  with open(os.path.join(out, "summary.json"), encoding="utf-8") as f:
    summary = json.load(f)
  assert summary["counts"]["documents"] == 30
  assert summary["counts"]["documents_read"] == 30
  assert summary["rejected"] == {}
  assert not os.path.exists(os.path.join(out, rejects.REJECTED_DIR))
