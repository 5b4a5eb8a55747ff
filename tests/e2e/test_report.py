"""python -m pipelines.report as a user runs it: the report's page as a
browser would read it, comparisons of real runs, and every failure one
error line (its statistics: tests/unit/test_report.py)."""

import base64
import html.parser
import io
import json
import os
import subprocess
import sys

import pytest

from tests.helpers import (REPO, one_error_line, run_cli, write_known_output,
                           write_lines_corpus)


@pytest.fixture(name="known")
def _known(tmp_path):
  """Three examples whose statistics are worked out by hand
  (tests/helpers.py's ``write_known_output``)."""
  return write_known_output(str(tmp_path / "known"))


class _Page(html.parser.HTMLParser):
  def __init__(self):
    super().__init__()
    self.images, self.rows, self.differs = [], 0, 0

  def handle_starttag(self, tag, attrs):
    attrs = dict(attrs)
    if tag == "img":
      self.images.append(attrs["src"])
    if tag == "tr":
      self.rows += 1
      if attrs.get("class") == "differs":
        self.differs += 1


def _report(*args):
  return subprocess.run([sys.executable, "-m", "pipelines.report"]
                        + list(args), cwd=REPO, capture_output=True,
                        text=True, timeout=600,
                        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"))


@pytest.fixture(scope="module", name="pair")
def _pair(tmp_path_factory):
  base = tmp_path_factory.mktemp("report")
  corpus = write_lines_corpus(str(base / "corpus"), num_files=2,
                              docs_per_file=25, seed=9)
  outs = {}
  for name, flags in {"seed1": ["--random_seed=1"],
                      "seed2": ["--random_seed=2"],
                      "heavy": ["--random_seed=3", "--masked_lm_prob=0.3",
                                "--max_predictions_per_seq=40"]}.items():
    outs[name] = str(base / name)
    run_cli(["--input=" + ",".join(corpus), "--output=" + outs[name],
             "--dupe_factor=3", "--num_shards=2"] + flags)
  return outs


def _decode_images(page):
  from PIL import Image  # pylint: disable=import-outside-toplevel
  sizes = []
  for src in page.images:
    assert src.startswith("data:image/png;base64,")
    image = Image.open(io.BytesIO(base64.b64decode(src.split(",", 1)[1])))
    image.load()
    sizes.append(image.size)
  return sizes


def test_compare_page_embeds_every_plot_and_flags_real_differences(
    pair, tmp_path):
  page_path = str(tmp_path / "report.html")
  proc = _report(pair["seed1"], "--compare=" + pair["heavy"],
                 "--html=" + page_path, "--json=" + str(tmp_path / "r.json"))
  assert proc.returncode == 0, proc.stderr
  page = _Page()
  page.feed(open(page_path, encoding="utf-8").read())
  sizes = _decode_images(page)
  # Sequence lengths, predictions, shown, labels, runs, top tokens, [UNK],
  # shard sizes: each a 7x3.6 (top tokens 9x3.6) inch figure at 100 dpi.
  assert len(sizes) == 8
  assert all(h == 360 and w in (700, 900) for w, h in sizes)
  # The same PNGs beside the page, and the six main ones in one picture.
  assert sorted(os.listdir(str(tmp_path / "report_plots"))) == sorted(
      ["sequence_lengths.png", "predictions.png", "shown.png", "labels.png",
       "masked_runs.png", "masked_tokens.png", "unknown.png",
       "shard_sizes.png", "overview.png"])
  result = json.load(open(str(tmp_path / "r.json")))
  by_name = {r["statistic"]: r for r in result["comparison"]}
  # Twice the masking rate: more predictions per example, told apart.
  assert by_name["predictions per example (mean)"]["differs"]
  assert page.differs >= 1


def test_two_seeds_of_one_configuration_look_the_same(pair, tmp_path):
  proc = _report(pair["seed1"], "--compare=" + pair["seed2"],
                 "--json=" + str(tmp_path / "r.json"),
                 "--plots_dir=" + str(tmp_path / "plots"))
  assert proc.returncode == 0, proc.stderr
  result = json.load(open(str(tmp_path / "r.json")))
  tests = {r["statistic"]: r["p_value"] for r in result["comparison"]}
  assert tests["predictions per example (mean)"] > 0.01
  assert tests["shown as [MASK] / random / original"] > 0.01
  assert tests["sentence label 1 (share)"] > 0.01
  # One observation per document pass: documents x --dupe_factor 3.
  documents = json.load(open(os.path.join(pair["seed1"], "summary.json")))[
      "counts"]["documents"]
  lengths = next(r for r in result["comparison"]
                 if r["statistic"] == "sequence length (mean)")
  assert lengths["effective_n"] == [documents * 3, documents * 3]


def test_a_plain_tfrecord_file_works_as_the_other(pair, tmp_path):
  shard = sorted(p for p in os.listdir(pair["seed2"]) if p.startswith(
      "part-"))[0]
  proc = _report(pair["seed1"], "--compare=" + os.path.join(
      pair["seed2"], shard), "--plots_dir=" + str(tmp_path / "plots"))
  assert proc.returncode == 0, proc.stderr
  assert shard[:14] in proc.stdout


def test_a_missing_output_is_one_error_line(tmp_path):
  proc = _report(str(tmp_path / "nothing"))
  assert proc.returncode == 2
  one_error_line(proc.stderr)


def _report_limited(limit_bytes, *args):
  """The report with every file it writes limited to ``limit_bytes``
  (RLIMIT_FSIZE, which binds root too): a write past it fails with EFBIG,
  as on a full disk."""
  import resource  # pylint: disable=import-outside-toplevel

  def limit():
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit_bytes, limit_bytes))
  return subprocess.run([sys.executable, "-m", "pipelines.report"]
                        + list(args), cwd=REPO, capture_output=True,
                        text=True, timeout=600, preexec_fn=limit,
                        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"))


def _files_below(folder):
  return sorted(os.path.relpath(os.path.join(d, f), folder)
                for d, _, files in os.walk(folder) for f in files)


def test_bad_destinations_are_refused_before_any_work(known, tmp_path):
  """Unwritable places (under a regular file: refused as root too), a
  folder where a file goes and the reverse, existing files without
  --overwrite: one error line, exit 2, nothing written."""
  regular = tmp_path / "regular"
  regular.write_text("a file\n")
  folder = tmp_path / "folder"
  folder.mkdir()
  page = tmp_path / "page.html"
  page.write_text("former page")
  plots = tmp_path / "plots"
  plots.mkdir()
  (plots / "overview.png").write_bytes(b"former plot")
  fresh = str(tmp_path / "fresh")
  for flags, message in (
      (["--html=%s/r.html" % regular], "is not a folder"),
      (["--json=%s" % folder, "--plots_dir=" + fresh], "is a folder"),
      (["--plots_dir=%s" % regular], "is a file, not a folder"),
      (["--html=%s" % page], "page.html exists; pass --overwrite"),
      (["--plots_dir=%s" % plots], "already holds plots (overview.png)"),
      (["--sample=0", "--plots_dir=" + fresh], "--sample must be at least"),
      (["--sample=x", "--plots_dir=" + fresh], "argument --sample"),
      (["--vocab_file=%s/none.txt" % tmp_path, "--plots_dir=" + fresh],
       "none.txt")):
    proc = _report(known, *flags)
    assert proc.returncode == 2, (flags, proc.stderr)
    assert message in one_error_line(proc.stderr), proc.stderr
    assert "Traceback" not in proc.stderr
  assert page.read_text() == "former page"
  assert _files_below(str(plots)) == ["overview.png"]
  assert _files_below(str(folder)) == [] and not os.path.exists(fresh)
  assert regular.read_text() == "a file\n"


def test_a_malformed_summary_is_one_error_line(known, tmp_path):
  with open(os.path.join(known, "summary.json"), "w") as f:
    f.write("[1, 2]")
  proc = _report(known, "--plots_dir=" + str(tmp_path / "plots"))
  assert proc.returncode == 2
  assert "not a JSON object" in one_error_line(proc.stderr)
  assert "Traceback" not in proc.stderr


def test_a_full_disk_is_one_error_line_and_leaves_no_partial_file(known,
                                                                  tmp_path):
  """The first PNG does not fit: one error line, exit 1, no file half
  written (nor a temporary one left); with room, --overwrite replaces a
  former report whole."""
  work = tmp_path / "work"  # the known output is in tmp_path
  work.mkdir()
  plots = work / "plots"
  page = work / "r.html"
  args = [known, "--plots_dir=" + str(plots), "--html=" + str(page),
          "--json=" + str(work / "r.json")]
  proc = _report_limited(4096, *args)
  assert proc.returncode == 1, proc.stderr
  assert "File too large" in one_error_line(proc.stderr)
  assert "Traceback" not in proc.stderr
  assert _files_below(str(work)) == []
  assert _report(*args).returncode == 0
  before = open(page, "rb").read()
  proc = _report_limited(len(before) - 1, *(args + ["--overwrite"]))
  assert proc.returncode == 1 and "Traceback" not in proc.stderr
  assert "File too large" in one_error_line(proc.stderr)
  assert open(page, "rb").read() == before  # the former page, whole
  assert not [f for f in _files_below(str(work)) if "incomplete" in f]
  proc = _report(*(args + ["--overwrite"]))
  assert proc.returncode == 0, proc.stderr
  assert sorted(_files_below(str(work))) == sorted(
      ["r.html", "r.json"] + ["plots/" + f for f in os.listdir(plots)])
