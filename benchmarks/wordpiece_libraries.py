"""WordPiece libraries against google-research/bert on the same lines: how
fast each tokenizes (MB of text per CPU-second, one thread) and how many
lines come out with BERT's ids.

Usage:
  python -m benchmarks.wordpiece_libraries --input=wiki_00[,wiki_01] \\
      [--rounds=3] [--vocab_file=vocab.txt] [--markdown]

The text: the input files' lines, WikiExtractor's ``<doc>`` markup and
blank lines left out. Every library gets BERT's uncased ``vocab.txt`` in
BERT's configuration (``tokenization.build_tokenizer``'s ``tokenizer.json``:
BertNormalizer, BertPreTokenizer, WordPiece; for TF Text, the vocabulary
with ``lower_case_nfd_strip_accents``), the lines in batches of
``BATCH``, no special tokens, and one thread; each runs in a process of its
own, and its fastest round counts (CPU seconds of the encode calls alone,
``time.process_time``; nanotoken's cache of words seen is emptied before
every round, so that no round is faster for having seen the text):

* ``tokenizers`` as installed (0.23.3) and its 1.0 release candidate
  (installed with ``--no-deps`` into ``.cache/tools/tokenizers-rc``);
* ``nanotoken`` (``encode_batch``, ``parallel=False``);
* TF Text's ``FastBertTokenizer`` (``tensorflow-text`` installed with
  ``--no-deps`` into ``.cache/tools/tf-text``, run on the project's
  TensorFlow, one intra- and one inter-op thread);
* this project's tokenizer with its fast path and with its exact path
  alone (``BertTokenizer.encode_flat``).

BERT's ids are the exact path's (tests/unit/test_tokenization.py checks it
against google-research/bert's own code on every code point); each
library's ids are compared line by line with them and with ``tokenizers``
0.23.3's. Printed, and with ``--markdown`` written to
docs/benchmarks/wordpiece_libraries.md.
"""

import argparse
import importlib.metadata
import json
import os
import subprocess
import sys
import tempfile
import time
from typing import Callable, List, Sequence, Tuple

import numpy as np

from benchmarks import provenance
from transforms import tokenization

REPO = provenance.REPO
BATCH = 1024
TOOLS = os.path.join(REPO, ".cache", "tools")
# name → (pip requirement installed into .cache/tools/<folder>, folder)
EXTRA_INSTALLS = {
    "tokenizers-rc": ("tokenizers==1.0.0rc3", "tokenizers-rc"),
    "tf-text": ("tensorflow-text==2.21.1", "tf-text"),
}
# (name, label, extra install or None), in the table's order.
LIBRARIES = (
    ("tokenizers", "`tokenizers` (BertNormalizer + BertPreTokenizer + "
     "WordPiece, `encode_batch`)", None),
    ("tokenizers-rc", "`tokenizers` release candidate (same "
     "`tokenizer.json`)", "tokenizers-rc"),
    ("nanotoken", "`nanotoken` (same `tokenizer.json`)", None),
    ("tf-text", "TF Text `FastBertTokenizer`", "tf-text"),
    ("exact", "this project, exact path alone (`--fast_wordpiece=false`)",
     None),
    ("project", "this project (nanotoken where it is BERT's, else exact)",
     None),
)


def read_lines(paths: Sequence[str]) -> List[str]:
  lines = []
  for path in paths:
    with open(path, encoding="utf-8") as f:
      for line in f:
        line = line.strip()
        if line and not line.startswith(("<doc ", "</doc>")):
          lines.append(line)
  return lines


def ensure_extra(name: str) -> str:
  """The folder ``EXTRA_INSTALLS[name]`` is installed in (installed on
  first use, without its dependencies: the project's venv has them)."""
  requirement, folder = EXTRA_INSTALLS[name]
  target = os.path.join(TOOLS, folder)
  marker = os.path.join(target, ".installed")
  if not os.path.exists(marker):
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet",
                    "--no-deps", "--target", target, requirement], check=True)
    with open(marker, "w", encoding="utf-8") as f:
      f.write(requirement + "\n")
  return target


# --- One library, in a process of its own ------------------------------------


def _encoder(name: str, vocab_file: str, tokenizer_json: str
             ) -> Tuple[str, Callable, Callable]:
  """``(version, encode, forget)``: ``encode(lines)`` → each line's ids;
  ``forget()`` empties the library's cache of words seen (nanotoken's), so
  that every round starts cold."""
  # pylint: disable=import-outside-toplevel
  if name in ("tokenizers", "tokenizers-rc"):
    import tokenizers
    # (The release candidate has no Tokenizer.from_str, nor the
    # normalizers module build_tokenizer uses.)
    tokenizer = tokenizers.Tokenizer.from_file(tokenizer_json)
    encode = getattr(tokenizer, "encode_batch_fast", tokenizer.encode_batch)
    return tokenizers.__version__, lambda lines: [
        e.ids for e in encode(lines, add_special_tokens=False)], lambda: None
  if name == "nanotoken":
    import nanotoken
    with open(tokenizer_json, encoding="utf-8") as f:
      tokenizer = nanotoken.WordPieceTokenizer.from_json(f.read())

    def nanotoken_encode(lines):
      ids, offsets = tokenizer.encode_batch(lines, add_special_tokens=False,
                                            parallel=False)
      return np.split(ids, offsets[1:-1])
    return (importlib.metadata.version("nanotoken"), nanotoken_encode,
            tokenizer.clear_cache)
  from transforms import tokenization
  if name == "tf-text":
    with open(vocab_file, encoding="utf-8") as f:
      tokens = tokenization.parse_vocab(f.read(), vocab_file)
    import tensorflow as tf
    import tensorflow_text
    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    tokenizer = tensorflow_text.FastBertTokenizer(
        vocab=tokens, token_out_type=tf.int64,
        lower_case_nfd_strip_accents=True)

    def tf_text_encode(lines):
      ragged = tokenizer.tokenize(tf.constant(lines))
      return np.split(ragged.flat_values.numpy(),
                      ragged.row_splits.numpy()[1:-1])
    return tensorflow_text.__version__, tf_text_encode, lambda: None
  tokenizer, _ = tokenization.load_tokenizer(
      vocab_file=vocab_file, fast_wordpiece=name == "project")
  if name == "project" and tokenizer.fast_path is None:
    raise RuntimeError(tokenizer.fast_path_unavailable)

  def project_encode(lines):
    ids, lengths = tokenizer.encode_flat(lines)
    return np.split(ids, np.cumsum(lengths)[:-1])
  return (importlib.metadata.version("mlm-pipeline"), project_encode,
          tokenizer.fast_path.clear_cache if tokenizer.fast_path
          else lambda: None)


def run_worker(name: str, folder: str, vocab_file: str, rounds: int) -> None:
  """Encodes the lines ``rounds`` times; writes the ids of the last round
  and every round's CPU seconds to ``folder``/``name``.npz."""
  with open(os.path.join(folder, "lines.json"), encoding="utf-8") as f:
    lines = json.load(f)
  version, encode, forget = _encoder(name, vocab_file,
                                     os.path.join(folder, "tokenizer.json"))
  batches = [lines[i:i + BATCH] for i in range(0, len(lines), BATCH)]
  times = []
  for _ in range(rounds):
    rows = []
    forget()
    start = time.process_time()
    for batch in batches:
      rows += encode(batch)
    times.append(time.process_time() - start)
  lengths = np.array([len(r) for r in rows], dtype=np.int64)
  ids = (np.concatenate([np.asarray(r, dtype=np.int64) for r in rows])
         if rows else np.zeros(0, dtype=np.int64))
  np.savez(os.path.join(folder, name + ".npz"), ids=ids, lengths=lengths, times=np.array(times),
           version=np.array(version))


def measure(name: str, extra: str, vocab_file: str, rounds: int,
            folder: str):
  """``(version, CPU seconds per round, each line's ids)`` of one library,
  run in a child process (one thread)."""
  out = os.path.join(folder, name + ".npz")
  env = dict(os.environ, RAYON_NUM_THREADS="1", TOKENIZERS_PARALLELISM="false",
             OMP_NUM_THREADS="1", TF_CPP_MIN_LOG_LEVEL="3")
  if extra:
    env["PYTHONPATH"] = os.pathsep.join(
        [ensure_extra(extra), REPO, env.get("PYTHONPATH", "")])
  else:
    env["PYTHONPATH"] = os.pathsep.join([REPO, env.get("PYTHONPATH", "")])
  subprocess.run([sys.executable, "-m", "benchmarks.wordpiece_libraries",
                  "--worker=" + name, "--worker_folder=" + folder,
                  "--vocab_file=" + vocab_file, "--rounds=%d" % rounds],
                 check=True, env=env, cwd=REPO)
  data = np.load(out)
  rows = np.split(data["ids"], np.cumsum(data["lengths"])[:-1])
  return str(data["version"]), data["times"].tolist(), rows


def same_lines(rows, reference) -> int:
  return sum(1 for a, b in zip(rows, reference)
             if a.size == b.size and bool((a == b).all()))


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--input", help="Comma-separated text files (local).")
  parser.add_argument("--rounds", type=int, default=3)
  parser.add_argument("--vocab_file", default=os.path.join(
      REPO, "pipelines", "vocab", "bert-base-uncased-vocab.txt"))
  parser.add_argument("--worker", help=argparse.SUPPRESS)
  parser.add_argument("--worker_folder", help=argparse.SUPPRESS)
  provenance.add_markdown_flag(parser, "wordpiece_libraries.md")
  args = parser.parse_args(argv)
  if args.worker:
    run_worker(args.worker, args.worker_folder, args.vocab_file, args.rounds)
    return
  if not args.input:
    parser.error("--input is required")
  paths = [p for p in args.input.split(",") if p]
  lines = read_lines(paths)
  mb = sum(len(line.encode("utf-8")) for line in lines) / 1e6
  results = {}
  with tempfile.TemporaryDirectory() as folder:
    with open(os.path.join(folder, "lines.json"), "w",
              encoding="utf-8") as f:
      json.dump(lines, f)
    with open(args.vocab_file, encoding="utf-8") as f:
      tokens = tokenization.parse_vocab(f.read(), args.vocab_file)
    with open(os.path.join(folder, "tokenizer.json"), "w",
              encoding="utf-8") as f:
      f.write(tokenization.build_tokenizer(tokens, True).to_str())
    for name, _, extra in LIBRARIES:
      results[name] = measure(name, extra, args.vocab_file, args.rounds,
                              folder)
      print("%-14s %.2f MB/CPU-s (%s)" % (
          name, mb / min(results[name][1]),
          " ".join("%.3f" % t for t in results[name][1])), flush=True)
  bert = results["exact"][2]
  plain = results["tokenizers"][2]
  rows = []
  for name, label, _ in LIBRARIES:
    version, times, ids = results[name]
    rows.append([label, version, "%.2f" % (mb / min(times)),
                 "{:,} / {:,}".format(same_lines(ids, bert), len(lines)),
                 "{:,} / {:,}".format(same_lines(ids, plain), len(lines))])
  report = [
      "%s: %s lines, %.2f MB; BERT's uncased vocab.txt; batches of %d "
      "lines, one thread, fastest of %d rounds." % (
          ", ".join(os.path.basename(p) for p in paths),
          "{:,}".format(len(lines)), mb, BATCH, args.rounds), "",
      *provenance.table(["library", "version", "MB per CPU-second",
                         "lines with BERT's ids",
                         "lines with `tokenizers` %s's ids"
                         % results["tokenizers"][0]], rows), "",
      "BERT's ids are the exact path's, which tests/unit/test_tokenization.py "
      "checks against google-research/bert's own tokenization.py on every "
      "code point.", "",
      "Every round, CPU seconds:", "",
      *["- %s: %s" % (name, " ".join("%.3f" % t for t in results[name][1]))
        for name, _, _ in LIBRARIES]]
  print("\n".join(report))
  path = provenance.markdown_path(args.markdown, "wordpiece_libraries.md")
  if path:
    provenance.write_page(path, "WordPiece libraries against BERT",
                          sys.argv[1:] if argv is None else argv, report)


if __name__ == "__main__":
  main()
