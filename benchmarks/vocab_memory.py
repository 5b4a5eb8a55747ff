"""What each vocabulary learner of ``pipelines.learn_vocab`` adds to the
peak memory of the process, for the distinct words it is given.

Usage:
  python -m benchmarks.vocab_memory [--words=100000,1000000] [--markdown]

For each number of distinct words and each model (``wordpiece``, ``bpe``,
``unigram``), a process of its own generates that many distinct words
(letters, 4 to 18 of them, 11 on average; counts from a Zipf law, the most
frequent word a million times), notes its peak resident memory
(``ru_maxrss``), fits the model's learner (``transforms.vocabulary``) at its
default vocabulary size, and notes the peak again: the difference is what
the fit adds (its words, their pieces, the learner's own tables). The
(word, count) pairs themselves, as Python objects, are in the first figure
and not in the difference. CPU seconds of the fit are printed too.
"""

import argparse
import json
import os
import subprocess
import sys

from benchmarks import provenance

MODELS = ("wordpiece", "bpe", "unigram")
_CHILD = r"""
import json, random, resource, sys, time
from transforms import vocabulary
model, n = sys.argv[1], int(sys.argv[2])
rng = random.Random(n)
letters = "abcdefghijklmnopqrstuvwxyz"
seen, words = set(), []
while len(words) < n:
  w = "".join(rng.choice(letters) for _ in range(rng.randint(4, 18)))
  if w not in seen:
    seen.add(w)
    words.append(w)
counts = [(w, max(1, int(1000000 / (k + 1)))) for k, w in enumerate(words)]
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
start = time.process_time()
size = vocabulary.DEFAULT_VOCAB_SIZES[model]
if model == "wordpiece":
  vocabulary.learn_wordpiece(counts, size - len(vocabulary.RESERVED))
elif model == "bpe":
  vocabulary.learn_byte_level_bpe(counts, size, do_lower_case=False)
else:
  vocabulary.learn_unigram(counts, size)
cpu = time.process_time() - start
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"before_kb": before, "after_kb": after, "cpu": cpu}))
"""


def measure(model: str, words: int) -> dict:
  """One fit in a process of its own: peak KB before and after, CPU s."""
  proc = subprocess.run([sys.executable, "-c", _CHILD, model, str(words)],
                        cwd=provenance.REPO, capture_output=True, text=True,
                        check=True,
                        env=dict(os.environ, RAYON_NUM_THREADS="1",
                                 TOKENIZERS_PARALLELISM="false"))
  return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--words", default="100000,1000000",
                      help="Numbers of distinct words, comma separated.")
  provenance.add_markdown_flag(parser, "vocab_memory.md")
  args = parser.parse_args(argv)
  rows = []
  for n in [int(w) for w in args.words.split(",")]:
    row = ["{:,}".format(n)]
    for model in MODELS:
      m = measure(model, n)
      added = (m["after_kb"] - m["before_kb"]) / 1024.0
      print("%9d words %-9s +%7.0f MB (%.2f KB a word), %.0f CPU s"
            % (n, model, added, added * 1024 / n, m["cpu"]), flush=True)
      row.append("%.0f MB (%.2f KB a word), %.0f CPU s"
                 % (added, added * 1024 / n, m["cpu"]))
    rows.append(row)
  report = [
      "Peak resident memory each learner's fit adds, for distinct words of "
      "4 to 18 letters with Zipf counts, at each model's default vocabulary "
      "size; one process per fit (`tokenizers` on one thread, "
      "`sentencepiece` with its trainer's own threads: CPU s is the sum "
      "over them).", "",
      *provenance.table(["distinct words"] + ["`%s`" % m for m in MODELS],
                        rows), "",
      "`--max_words` (default 1,000,000) bounds the words a fit is given; "
      "the (word, count) pairs themselves, as Python objects, take some "
      "150 bytes a word more, before the fit."]
  print("\n".join(report))
  path = provenance.markdown_path(args.markdown, "vocab_memory.md")
  if path:
    provenance.write_page(path, "Vocabulary learners: memory",
                          sys.argv[1:] if argv is None else argv, report)


if __name__ == "__main__":
  main()
