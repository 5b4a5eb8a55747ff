"""Pipeline against the reference, side by side, on one corpus.

Usage:
  python -m benchmarks.compare --generate_mb=20 --workers=1,2
  python -m benchmarks.compare --corpus=wiki.txt --workers=1,2,4 --no_reference
  python -m benchmarks.compare --modes=all --no_reference --repeat=3

Runs, one after the other on the same input and settings:
  * ``tokenizer``: ``tokenizers``' standard BERT WordPiece alone
    (BertNormalizer, BertPreTokenizer; encode_batch on one thread, a line at
    a time), the yardstick the targets name;
  * ``reference``: TF Model Garden's ``create_pretraining_data`` (a port of
    google-research/bert's script), installed by this script into a venv of
    its own because it pins another TensorFlow;
  * ``pipeline``: ``python -m pipelines.mlm`` on the DirectRunner, once per
    worker count.
and prints text MB/s (total and per CPU-second), instances/s, CPU seconds,
wall seconds and peak RSS (summed over the process tree, sampled every
0.1 s), with ratios against the reference and against one worker.

With ``--modes``, the pipeline runs once per objective mode instead (one
worker, the same corpus, ``--max_seq_length`` and ``--dupe_factor`` for
all, so that the work per pass compares), and the table gives each mode's
CPU time against BERT's (``MODES``).
"""

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from typing import Dict, List, Optional

import psutil

from benchmarks import provenance
from benchmarks.provenance import REPO
SAMPLE_DIR = os.path.join(REPO, "corpora", "sample")
DEFAULT_VOCAB = os.path.join(REPO, "pipelines", "vocab",
                             "bert-base-uncased-vocab.txt")
REFERENCE_PACKAGES = ["tensorflow==2.21.0", "tf-keras==2.21.0",
                      "sentencepiece==0.2.3", "absl-py", "gin-config"]
REFERENCE_NO_DEPS = ["tf-models-official==2.20.0"]


# Each mode's flags on top of the common ones (--max_seq_length,
# --dupe_factor and the rest are the same for every mode).
MODES = {
    "bert": [],
    "sop": ["--sentence_task=sop"],
    "ngram": ["--max_ngram_size=3"],
    "span": ["--span_masking=geometric"],
    "albert": ["--preset=albert"],
    "pairs_none": ["--sentence_task=none"],
    "doc_sentences": ["--sentence_task=none", "--packing=doc_sentences"],
    "full_sentences": ["--sentence_task=none", "--packing=full_sentences"],
    "roberta": ["--preset=roberta"],
    "electra": ["--preset=electra"],
    "bert_parquet": ["--output_format=parquet"],
}


def generate_corpus(path: str, megabytes: float, seed: int = 0) -> None:
  """A lines-format corpus of ``megabytes`` MB made from the shipped sample:
  documents of 3–40 sentences drawn at random from it."""
  sentences = []
  for name in sorted(os.listdir(SAMPLE_DIR)):
    with open(os.path.join(SAMPLE_DIR, name), encoding="utf-8") as f:
      sentences.extend(line.strip() for line in f if line.strip())
  rng = random.Random(seed)
  target = int(megabytes * 1e6)
  written = 0
  with open(path, "w", encoding="utf-8") as f:
    while written < target:
      doc = "\n".join(rng.choice(sentences)
                      for _ in range(rng.randint(3, 40))) + "\n\n"
      f.write(doc)
      written += len(doc.encode("utf-8"))


def add_corpus_flags(parser: argparse.ArgumentParser) -> None:
  """``--corpus`` or ``--generate_mb`` (``corpus_file`` reads them)."""
  source = parser.add_mutually_exclusive_group()
  source.add_argument("--corpus", help="A lines-format corpus file.")
  source.add_argument("--generate_mb", type=float, default=20.0,
                      help="Generate a corpus of this many MB from the "
                      "project's sample text (default 20).")


def corpus_file(args: argparse.Namespace, workdir: str) -> str:
  """``--corpus``, or a corpus of ``--generate_mb`` generated in
  ``workdir``."""
  if args.corpus:
    return args.corpus
  corpus = os.path.join(workdir, "corpus.txt")
  generate_corpus(corpus, args.generate_mb)
  return corpus


class Measured:
  """Runs a command; samples the CPU time and RSS of its process tree."""

  def __init__(self, cmd: List[str], env: Optional[Dict[str, str]] = None,
               cwd: str = REPO, log: Optional[str] = None):
    self.cmd, self.env, self.cwd, self.log = cmd, env, cwd, log

  def run(self) -> Dict[str, float]:
    out = open(self.log, "w") if self.log else subprocess.DEVNULL
    start = time.time()
    proc = subprocess.Popen(self.cmd, env=self.env, cwd=self.cwd, stdout=out,
                            stderr=subprocess.STDOUT)
    root = psutil.Process(proc.pid)
    cpu: Dict[int, float] = {}
    peak = [0]
    done = threading.Event()

    def sample():
      while not done.is_set():
        try:
          procs = [root] + root.children(recursive=True)
        except psutil.NoSuchProcess:
          break
        rss = 0
        for p in procs:
          try:
            t = p.cpu_times()
            cpu[p.pid] = t.user + t.system
            rss += p.memory_info().rss
          except psutil.NoSuchProcess:
            pass
        peak[0] = max(peak[0], rss)
        done.wait(0.1)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    rc = proc.wait()
    wall = time.time() - start
    done.set()
    sampler.join()
    if self.log:
      out.close()
    if rc != 0:
      raise RuntimeError("%s failed (exit %d); see %s" % (self.cmd[:4], rc,
                                                           self.log))
    return {"wall_s": wall, "cpu_s": sum(cpu.values()),
            "peak_rss_mb": peak[0] / 1e6}


def ensure_reference(venv: str) -> str:
  python = os.path.join(venv, "bin", "python")
  probe = [python, "-c", "import official.nlp.data.create_pretraining_data"]
  if os.path.exists(python) and subprocess.run(
      probe, capture_output=True).returncode == 0:
    return python
  print("installing the reference into %s (a few minutes, once)" % venv,
        flush=True)
  subprocess.check_call([sys.executable, "-m", "venv", venv])
  pip = [python, "-m", "pip", "install", "-q"]
  subprocess.check_call(pip + REFERENCE_PACKAGES)
  subprocess.check_call(pip + ["--no-deps"] + REFERENCE_NO_DEPS)
  return python


def run_tokenizer_alone(corpus: str, vocab: str, workdir: str):
  script = (
      "import sys, os\n"
      "os.environ['TOKENIZERS_PARALLELISM'] = 'false'\n"
      "sys.path.insert(0, %r)\n"
      "from transforms.tokenization import build_tokenizer, parse_vocab\n"
      "tok = build_tokenizer(parse_vocab(open(%r, encoding='utf-8').read(),"
      " ''), True)\n"
      "batch = []\n"
      "for line in open(%r, encoding='utf-8'):\n"
      "  if line.strip():\n"
      "    batch.append(line)\n"
      "    if len(batch) == 1024:\n"
      "      tok.encode_batch_fast(batch, add_special_tokens=False); batch = []\n"
      "tok.encode_batch_fast(batch, add_special_tokens=False)\n"
      % (REPO, vocab, corpus))
  return Measured([sys.executable, "-c", script],
                  log=os.path.join(workdir, "tokenizer.log")).run()


def run_reference(python: str, corpus: str, vocab: str, args, workdir: str):
  out = os.path.join(workdir, "reference.tfrecord")
  log = os.path.join(workdir, "reference.log")
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="")
  result = Measured([
      python, "-m", "official.nlp.data.create_pretraining_data",
      "--input_file=" + corpus, "--output_file=" + out,
      "--vocab_file=" + vocab, "--do_lower_case=True",
      "--max_seq_length=%d" % args.max_seq_length,
      "--max_predictions_per_seq=%d" % args.max_predictions_per_seq,
      "--masked_lm_prob=0.15", "--random_seed=12345",
      "--dupe_factor=%d" % args.dupe_factor], env=env, log=log).run()
  with open(log) as f:
    for line in f:
      if "Wrote" in line and "total instances" in line:
        result["instances"] = int(line.split("Wrote")[1].split()[0])
  return result


def run_pipeline(corpus: str, vocab: str, workers: int, args, workdir: str,
                 mode: str = "bert"):
  out = os.path.join(workdir, "pipeline_%s_%d" % (mode, workers))
  log = os.path.join(workdir, "pipeline_%s_%d.log" % (mode, workers))
  cmd = [sys.executable, "-m", "pipelines.mlm", "--input=" + corpus,
         "--output=" + out, "--overwrite", "--vocab_file=" + vocab,
         "--max_predictions_per_seq=%d" % args.max_predictions_per_seq,
         "--direct_num_workers=%d" % workers] + MODES[mode] + [
             # After the mode's flags: the same length and passes for all.
             "--max_seq_length=%d" % args.max_seq_length,
             "--dupe_factor=%d" % args.dupe_factor]
  if workers > 1:
    cmd.append("--direct_running_mode=multi_processing")
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
  result = Measured(cmd, env=env, log=log).run()
  with open(os.path.join(out, "summary.json")) as f:
    result["instances"] = json.load(f)["counts"]["instances"]
  shutil.rmtree(out, ignore_errors=True)
  return result


def _best(runs) -> List[Dict]:
  """Each configuration's fastest round (CPU and wall) and highest memory."""
  rows = []
  for (name, workers), results in runs.items():
    best = dict(results[0])
    best.update(cpu_s=min(r["cpu_s"] for r in results),
                wall_s=min(r["wall_s"] for r in results),
                peak_rss_mb=max(r["peak_rss_mb"] for r in results),
                cpu_s_all=[round(r["cpu_s"], 1) for r in results])
    rows.append(dict(best, name=name, workers=workers))
  return rows


README_MARK = "compare"  # the README's section (--readme)
# The targets the tables are read against (docs/benchmarks.md).
TARGET_CPU_EFFICIENCY = 30.0  # one worker, per CPU-second, vs the reference
TARGET_PEAK_RSS_MB = 272  # one worker at 20 MB; at most this
TARGET_TWO_WORKERS = 1.8  # two workers' wall time against one's, at 200 MB
TWO_WORKERS_TARGET_MB = 200
TARGET_MODE_COST = 1.3  # each mode's CPU seconds against BERT's


def table(rows, mb: float) -> str:
  """The worker-count runs as a Markdown table; ``mb``: the corpus in MB."""
  ref = next((r for r in rows if r["name"] == "reference"), None)
  one = next((r for r in rows if r["name"] == "pipeline" and r["workers"] == 1),
             None)
  head = ["run", "workers", "wall s", "CPU s", "MB/s", "MB/s per CPU-s",
          "instances", "instances/s", "peak RSS MB",
          "CPU-efficiency vs reference", "speed-up vs 1 worker"]
  body = []
  for r in rows:
    inst = r.get("instances")
    body.append([
        r["name"], r.get("workers", 1), "%.1f" % r["wall_s"],
        "%.1f" % r["cpu_s"], "%.2f" % (mb / r["wall_s"]),
        "%.2f" % (mb / r["cpu_s"]), "{:,}".format(inst) if inst else "-",
        "{:,.0f}".format(inst / r["wall_s"]) if inst else "-",
        "%.0f" % r["peak_rss_mb"],
        "%.1fx" % (ref["cpu_s"] / r["cpu_s"]) if ref and r is not ref else "-",
        "%.2fx" % (one["wall_s"] / r["wall_s"])
        if one and r["name"] == "pipeline" else "-"])
  return "\n".join(provenance.table(head, body))


def mode_table(rows) -> str:
  """The objective-mode runs as a Markdown table, CPU against ``bert``."""
  bert = next((r for r in rows if r["name"] == "bert"), None)
  head = ["mode", "flags", "CPU s", "wall s", "instances", "peak RSS MB",
          "CPU vs bert"]
  body = [[r["name"], " ".join("`%s`" % f for f in MODES[r["name"]])
           or "(defaults)", "%.1f" % r["cpu_s"], "%.1f" % r["wall_s"],
           "{:,}".format(r["instances"]), "%.0f" % r["peak_rss_mb"],
           "%.2fx" % (r["cpu_s"] / bert["cpu_s"]) if bert else "-"]
          for r in rows]
  return "\n".join(provenance.table(head, body))


def _met(value: float, target: float) -> str:
  return "met" if value >= target else "not met"


def verdict(rows, mb: float = 200.0) -> List[str]:
  """The worker-count table read against the targets, a sentence each.
  ``mb``: the corpus's size; the two-worker target is for 200 MB, and a
  smaller corpus's speed-up is only reported."""
  ref = next((r for r in rows if r["name"] == "reference"), None)
  tok = next((r for r in rows if r["name"] == "tokenizer"), None)
  pipe = {r["workers"]: r for r in rows if r["name"] == "pipeline"}
  lines = []
  if ref and 1 in pipe:
    ratio = ref["cpu_s"] / pipe[1]["cpu_s"]
    lines.append(
        "- One worker against the reference, per CPU-second: %.1fx (target "
        "%.0fx: %s). Peak RSS %.0f MB against the reference's %.0f MB "
        "(target at most %d MB and below the reference's: %s)." % (
            ratio, TARGET_CPU_EFFICIENCY, _met(ratio, TARGET_CPU_EFFICIENCY),
            pipe[1]["peak_rss_mb"], ref["peak_rss_mb"], TARGET_PEAK_RSS_MB,
            "met" if pipe[1]["peak_rss_mb"] <= min(TARGET_PEAK_RSS_MB,
                                                   ref["peak_rss_mb"])
            else "not met"))
  if tok and 1 in pipe:
    lines.append(
        "- The whole pipeline, one worker, takes %.2fx the CPU time of "
        "`tokenizers`' BERT tokenizer alone (stretch target: within 2x)."
        % (pipe[1]["cpu_s"] / tok["cpu_s"]))
  if 1 in pipe and 2 in pipe:
    speed_up = pipe[1]["wall_s"] / pipe[2]["wall_s"]
    if mb >= TWO_WORKERS_TARGET_MB * 0.95:
      lines.append(
          "- Two workers against one, wall time: %.2fx (target %.1fx at %d "
          "MB: %s)." % (speed_up, TARGET_TWO_WORKERS, TWO_WORKERS_TARGET_MB,
                        _met(speed_up, TARGET_TWO_WORKERS)))
    else:
      lines.append(
          "- Two workers against one, wall time: %.2fx. The %.1fx target is "
          "for %d MB (docs/benchmarks/compare_200mb.md): on %.0f MB the "
          "fixed start, which two workers cannot share, weighs more."
          % (speed_up, TARGET_TWO_WORKERS, TWO_WORKERS_TARGET_MB, mb))
  return lines


def mode_verdict(rows) -> List[str]:
  """The mode table read against the target, in a sentence."""
  bert = next((r for r in rows if r["name"] == "bert"), None)
  if not bert:
    return []
  over = ["%s %.2fx" % (r["name"], r["cpu_s"] / bert["cpu_s"]) for r in rows
          if r["cpu_s"] / bert["cpu_s"] > TARGET_MODE_COST]
  return ["Target: every mode, and Parquet (`bert_parquet`) against TFRecord, "
          "within %.1fx of `bert`'s CPU seconds: %s." % (
              TARGET_MODE_COST,
              "met by every mode" if not over else
              "not met by " + ", ".join(over))]


WORKERS_MEANING = (
    "Each program runs alone, one after the other, on the same corpus. CPU "
    "seconds and peak RSS are summed over the whole process tree (the "
    "DirectRunner's worker processes included), sampled every 0.1 s. "
    "CPU-efficiency is the reference's CPU seconds over the run's; speed-up "
    "is one worker's wall seconds over the run's. `tokenizer` is "
    "`tokenizers`' standard BERT WordPiece alone, the yardstick; "
    "`reference` is TF Model Garden's `create_pretraining_data`. A shared "
    "machine's speed changes from minute to minute, and not by the same "
    "factor for every program; `--repeat` interleaves rounds and keeps each "
    "run's fastest.")
MODES_MEANING = (
    "Every mode runs on one worker with the same corpus, `max_seq_length` and "
    "`dupe_factor`, so that the work per pass compares; its flags are those "
    "of `benchmarks.compare.MODES` before those two. Modes without random-"
    "next segments (SOP, the packings, the presets without static masking) "
    "make fewer instances (`instances`), hence often less CPU than `bert`.")


def setting(corpus: str, mb: float, args, one_worker: bool = False) -> str:
  """The corpus and the settings every run of the table shares."""
  return ("Corpus: %s, %.1f MB; `max_seq_length` %d, "
          "`max_predictions_per_seq` %d, `dupe_factor` %d, vocabulary %s%s; "
          "%s." % (
              "generated from the shipped sample text" if not args.corpus
              else os.path.basename(corpus), mb, args.max_seq_length,
              args.max_predictions_per_seq, args.dupe_factor,
              os.path.basename(args.vocab_file),
              ", one worker" if one_worker else "",
              "each run's fastest of %d interleaved rounds" % args.repeat
              if args.repeat > 1 else "one round"))


def _write_page(args, argv, page: str, title: str, report: List[str]) -> None:
  path = provenance.markdown_path(args.markdown, page)
  if path:
    provenance.write_page(path, title, sys.argv[1:] if argv is None else argv,
                          report)


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  add_corpus_flags(parser)
  parser.add_argument("--workers", default="1,2",
                      help="Comma-separated DirectRunner worker counts.")
  parser.add_argument("--dupe_factor", type=int, default=5)
  parser.add_argument("--max_seq_length", type=int, default=128)
  parser.add_argument("--max_predictions_per_seq", type=int, default=20)
  parser.add_argument("--vocab_file", default=DEFAULT_VOCAB)
  parser.add_argument("--no_reference", action="store_true",
                      help="Skip the reference run.")
  parser.add_argument("--reference_venv",
                      default=os.path.join(REPO, ".cache", "reference-venv"),
                      help="A venv with the reference; installed there if it "
                      "lacks it (default %(default)s).")
  parser.add_argument("--repeat", type=int, default=1,
                      help="Rounds of all runs, interleaved; the table shows "
                      "each run's fastest round (for shared, noisy "
                      "machines).")
  parser.add_argument("--json", help="Also write the results here.")
  parser.add_argument("--readme", action="store_true",
                      help="Also write the table and what it meets into "
                      "README.md, between its compare markers (not with "
                      "--modes).")
  provenance.add_markdown_flag(parser, "compare.md (compare_modes.md with "
                               "--modes)")
  parser.add_argument("--modes", default=None,
                      help="Comma-separated objective modes (%s) or 'all': "
                      "compare them instead of worker counts." % ", ".join(
                          MODES))
  args = parser.parse_args(argv)
  if args.readme and args.modes:
    parser.error("--readme writes the worker-count table, not --modes'")
  modes = (list(MODES) if args.modes == "all" else
           args.modes.split(",") if args.modes else None)

  workdir = tempfile.mkdtemp(prefix="mlm-bench-")
  corpus = corpus_file(args, workdir)
  mb = os.path.getsize(corpus) / 1e6
  print("corpus: %s (%.1f MB); machine: %d cores, %.0f GB; logs in %s" % (
      corpus, mb, psutil.cpu_count(), psutil.virtual_memory().total / 1e9,
      workdir), flush=True)

  # Each round runs every configuration once; with --repeat, the rounds
  # interleave them, so that a slow spell of a shared machine hits all of
  # them, and the table keeps each one's fastest round (CPU and wall) and
  # its highest memory.
  runs: Dict[tuple, List[Dict[str, float]]] = {}
  if modes:
    for round_index in range(args.repeat):
      for mode in modes:
        r = run_pipeline(corpus, args.vocab_file, 1, args, workdir, mode)
        runs.setdefault((mode, 1), []).append(r)
        print("%s (round %d): %.1f s wall, %.1f CPU s" % (
            mode, round_index + 1, r["wall_s"], r["cpu_s"]), flush=True)
    rows = _best(runs)
    report = [setting(corpus, mb, args, one_worker=True), "",
              mode_table(rows), "", "CPU s per round: " + "; ".join(
                  "%s %s" % (row["name"], ", ".join(
                      "%.1f" % c for c in row["cpu_s_all"])) for row in rows),
              ""] + mode_verdict(rows) + ["", MODES_MEANING]
    print()
    print("\n".join(report))
    _write_page(args, argv, "compare_modes.md",
                "What each objective mode costs", report)
    if args.json:
      with open(args.json, "w") as f:
        json.dump({"corpus_mb": mb, "rows": rows}, f, indent=2)
    return
  python = None if args.no_reference else ensure_reference(args.reference_venv)
  for round_index in range(args.repeat):
    label = " (round %d of %d)" % (round_index + 1, args.repeat) \
        if args.repeat > 1 else ""
    r = run_tokenizer_alone(corpus, args.vocab_file, workdir)
    runs.setdefault(("tokenizer", 1), []).append(r)
    print("tokenizer alone%s: %.1f CPU s" % (label, r["cpu_s"]), flush=True)
    if python:
      r = run_reference(python, corpus, args.vocab_file, args, workdir)
      runs.setdefault(("reference", 1), []).append(r)
      print("reference%s: %.1f s wall, %.1f CPU s" % (label, r["wall_s"],
                                                      r["cpu_s"]), flush=True)
    for workers in [int(w) for w in args.workers.split(",")]:
      r = run_pipeline(corpus, args.vocab_file, workers, args, workdir)
      runs.setdefault(("pipeline", workers), []).append(r)
      print("pipeline, %d worker(s)%s: %.1f s wall, %.1f CPU s" % (
          workers, label, r["wall_s"], r["cpu_s"]), flush=True)
  rows = _best(runs)
  report = [setting(corpus, mb, args), "", table(rows, mb), ""]
  if args.repeat > 1:
    report += ["CPU s per round: " + "; ".join(
        "%s, %d worker(s) %s" % (row["name"], row["workers"], ", ".join(
            "%.1f" % c for c in row["cpu_s_all"])) for row in rows), ""]
  report += verdict(rows, mb) + ["", WORKERS_MEANING]
  print()
  print("\n".join(report))
  _write_page(args, argv, "compare.md",
              "The pipeline against the reference", report)
  if args.readme:
    provenance.write_readme_section(
        README_MARK, sys.argv[1:] if argv is None else argv,
        [setting(corpus, mb, args), "", table(rows, mb), ""]
        + verdict(rows, mb))
  if args.json:
    with open(args.json, "w") as f:
      json.dump({"corpus_mb": mb, "rows": rows}, f, indent=2)


if __name__ == "__main__":
  main()
