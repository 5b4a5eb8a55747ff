"""pipelines/outputs.py: which entries of an output directory are this tool's
(the only ones ``--overwrite`` ever deletes)."""

from pipelines import outputs


def test_own_entries():
  for name in ("part-00000-of-00004.tfrecord", "part-00001-of-00002.parquet",
               "summary.json", "_rejected", "transformed_metadata", "_pools",
               "_INCOMPLETE", "_LOCK", "beam-temp-part-0a1b"):
    assert outputs.own_entry(name), name
  for name in ("precious.txt", "photos", "partner.txt", ".ssh", "summary",
               "part-1-intro.tex", "part-00000-of-00004.tex",
               "part-00000.tfrecord"):
    assert not outputs.own_entry(name), name
