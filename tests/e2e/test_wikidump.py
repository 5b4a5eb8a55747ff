"""--input_format=wikidump through the command line: a dump to TFRecords
with its counts, refusals, and a wrong index in the summary. The dumps are
written by tests/wikidumps.py."""

import json
import os

import pytest

from tests import wikidumps
from tests.helpers import one_error_line, run_cli, shard_files
from transforms import wikidump


EXPECTED_SKIPS = {"wiki_pages_skipped_redirect": 6,
                  "wiki_pages_skipped_namespace": 6,
                  "wiki_pages_skipped_disambiguation": 6,
                  "wiki_pages_empty": 3}


@pytest.fixture(name="dumps")
def _dumps(tmp_path):
  return wikidumps.write_every_layout(str(tmp_path), wikidumps.sample_pages())


def test_dump_to_tfrecords_with_its_counts(dumps, tmp_path):
  out = str(tmp_path / "out")
  # The index file matches the input pattern too: it is used, not read.
  run_cli(["--input=" + os.path.join(os.path.dirname(dumps["multistream"]),
                                     "*-multistream*.bz2"),
           "--input_format=wikidump", "--output=" + out, "--dupe_factor=2",
           "--direct_num_workers=2",
           "--direct_running_mode=multi_processing"])
  with open(os.path.join(out, "summary.json"), encoding="utf-8") as f:
    summary = json.load(f)
  counts = summary["counts"]
  assert counts["wiki_pages_read"] == len(wikidumps.sample_pages())
  for name, value in EXPECTED_SKIPS.items():
    assert counts[name] == value, name
  # Every page is a document record read; the skipped ones are dropped.
  assert counts["documents_read"] == len(wikidumps.sample_pages())
  assert counts["documents"] == 60
  assert counts["wiki_pages_unparsed"] == 0
  assert counts["instances"] > 0 and shard_files(out)
  assert summary["rejected"] == {}


def test_a_file_that_is_no_dump_is_refused_before_work(tmp_path):
  path = tmp_path / "notes.txt"
  path.write_text("just some text\n")
  proc = run_cli(["--input=" + str(path), "--input_format=wikidump",
                  "--output=" + str(tmp_path / "out")], check=False)
  assert proc.returncode == 2
  assert "MediaWiki XML dump" in one_error_line(proc.stderr), proc.stderr


# --- A multistream index that does not fit its dump -------------------------


def test_a_dump_read_with_another_dumps_index_says_so_in_its_summary(
    dumps, tmp_path):
  directory = tmp_path / "mismatched"
  directory.mkdir()
  dump = directory / os.path.basename(dumps["multistream"])
  dump.write_bytes(open(dumps["multistream"], "rb").read())
  # The index of the same pages written 5 to a stream instead of 7.
  wikidumps.write_multistream(str(tmp_path / "other.xml.bz2"), wikidumps.sample_pages(),
                              wikidump.index_path_for(str(dump)),
                              pages_per_stream=5)
  out = str(tmp_path / "out")
  run_cli(["--input=" + str(dump), "--input_format=wikidump",
           "--output=" + out, "--direct_num_workers=2",
           "--direct_running_mode=multi_processing"])
  with open(os.path.join(out, "summary.json"), encoding="utf-8") as f:
    summary = json.load(f)
  assert summary["counts"]["wiki_indexes_not_matching_dump"] == 1
  # Every page read, every article kept, nothing set aside.
  assert summary["counts"]["wiki_pages_read"] == len(wikidumps.sample_pages())
  assert summary["counts"]["documents"] == 60
  assert summary["rejected"] == {}
