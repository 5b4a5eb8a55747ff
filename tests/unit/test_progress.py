"""pipelines/progress.py: the progress and summary lines, the lost-text
warning, and the workers' tallies summed (what a terminal and a log show:
tests/e2e/test_progress.py)."""

import json
import os

from pipelines import progress
from transforms import metrics


def test_lines_say_what_they_count():
  line = progress.progress_line({"input_bytes": 25_000_000,
                                 "documents_read": 1234, "instances": 5678,
                                 "rejected_records": 2},
                                100_000_000, 10.0)
  assert line == ("25.0/100.0 MB (25%), 1,234 documents, 5,678 instances, "
                  "2 set aside, 2.50 MB/s, elapsed 0:10, ETA 0:30")
  assert progress.summary_line({"documents": 3, "instances": 40,
                                "rejected_records": 1}, 5_000_000, 2.0) == (
      "done: 3 documents, 40 instances, 1 records set aside, 2.0 s, "
      "2.50 MB/s (5.0 MB of input)")
  assert progress.lost_text_warning({"instance_tokens": 10,
                                     "truncated_tokens": 9}, "lines") is None
  assert "no sentence breaks" in progress.lost_text_warning(
      {"instance_tokens": 10, "truncated_tokens": 11}, "lines")


def test_worker_tallies_are_summed():
  tally = progress.FileTally()
  try:
    assert os.environ[metrics.PROGRESS_DIR_ENV] == tally.directory
    metrics.write_progress(tally.directory, {"instances": 3})
    with open(os.path.join(tally.directory, "99999.json"), "w") as f:
      json.dump({"instances": 4, "input_bytes": 10}, f)
    with open(os.path.join(tally.directory, "half.json"), "w") as f:
      f.write("{\"instan")  # a file being replaced: skipped this poll
    assert tally() == {"instances": 7, "input_bytes": 10}
  finally:
    tally.close()
  assert metrics.PROGRESS_DIR_ENV not in os.environ
  assert not os.path.exists(tally.directory)
