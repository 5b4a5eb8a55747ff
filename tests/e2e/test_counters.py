"""The counters add up through the command line: the issue's twenty JSON
lines (each format on Beam's stages: tests/unit/test_metrics.py)."""

import json
import os
import subprocess
import sys

from tests.helpers import REPO, run_cli
from transforms import metrics


def test_the_issues_twenty_jsonl_lines(tmp_path):
  """10 good lines and 10 others: null, "", whitespace, a lone combining
  mark, zero-width spaces, a list, not JSON, an array, a blank line, a
  missing field."""
  good = [json.dumps({"text": "Document number %d has a sentence." % i})
          for i in range(10)]
  bad = ['{"text": null}', '{"text": ""}', '{"text": "   "}',
         '{"text": "\\u0301"}', '{"text": "\\u200b\\u200b"}',
         '{"text": ["a", "b"]}', "not json", '[1, 2, 3]', "",
         '{"title": "no text"}']
  corpus = tmp_path / "in.jsonl"
  corpus.write_text("\n".join(good[:5] + bad + good[5:]) + "\n",
                    encoding="utf-8")
  out = str(tmp_path / "out")
  run_cli(["--input=" + str(corpus), "--input_format=jsonl",
           "--output=" + out, "--max_rejected_fraction=1", "--quiet"])
  with open(os.path.join(out, "summary.json"), encoding="utf-8") as f:
    summary = json.load(f)
  counts = summary["counts"]
  assert counts["documents"] == 10
  assert counts["documents_read"] == 19
  assert counts["empty_documents_dropped"] == 4
  assert counts["rejected_records"] == 5
  assert summary["rejected"] == {"jsonl_lines_missing_text_field": 4,
                                 "malformed_jsonl_lines": 1}
  assert metrics.document_balance(counts, summary["rejected"]) == (
      19, 19, {"documents": 10, "empty_documents_dropped": 4,
               "rejected/jsonl_lines_missing_text_field": 4,
               "rejected/malformed_jsonl_lines": 1})
  # pipelines.inspect checks the same identity.
  proc = subprocess.run([sys.executable, "-m", "pipelines.inspect", out,
                         "--num=0"], cwd=REPO, capture_output=True, text=True,
                        timeout=300, check=False)
  assert proc.returncode == 0, proc.stderr
  assert ("summary.json: 19 documents read = 10 kept + 9 dropped or set "
          "aside") in proc.stdout
