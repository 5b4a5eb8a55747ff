"""TF Text's WordPiece learner against ``tokenizers``' WordPiece trainer, on
the same word counts.

Usage:
  pip install -e '.[bench]'   # TF Text's learner
  python -m benchmarks.vocab_learners --train=corpus.txt --held_out=other.txt \\
      [--pieces=1500]

Counts the words of ``--train`` (lines format) as ``pipelines.learn_vocab``
does, learns ``--pieces`` pieces with each learner from those counts
(``tokenizers`` takes text, so it is given each word as often as it was
counted; ``transforms.vocabulary.learn_wordpiece``), lays both out as BERT's vocab.txt, and prints for each: seconds
to learn, pieces per word and ``[UNK]`` share on ``--held_out``.
"""

import argparse
import os
import sys
import time
from typing import List, Sequence, Tuple

from benchmarks import provenance
from transforms import vocabulary
from transforms.tokenization import build_tokenizer


def learn_wordpiece_tf_text(word_counts: Sequence[Tuple[str, int]],
                            pieces: int) -> List[str]:
  """The alternative the benchmark compares: TF Text's
  WordPiece learner (``wordpiece_tokenizer_learner_lib.learn``, the
  algorithm of TF Text's BERT vocabulary guide), which works from counts:
  single characters and their ``##`` forms, then the pieces a binary search
  on the count threshold keeps. Needs ``tensorflow-text`` (the ``bench``
  extras)."""
  # pylint: disable=import-outside-toplevel
  from tensorflow_text.tools.wordpiece_vocab import (
      wordpiece_tokenizer_learner_lib as learner)
  if not word_counts:
    raise ValueError("no words to learn a vocabulary from")
  return learner.learn(list(word_counts), vocab_size=pieces,
                       reserved_tokens=[], lower_thresh=1,
                       include_joiner_token=True)


def _lines(path):
  with open(path, encoding="utf-8") as f:
    return [line.strip() for line in f if line.strip()]


def evaluate(tokens, lines):
  tokenizer = build_tokenizer(tokens, True)
  split = vocabulary.bert_word_splitter(True)
  unk = tokens.index("[UNK]")
  words = pieces = unknown = 0
  for line in lines:
    words += len(split(line))
    ids = tokenizer.encode(line).ids
    pieces += len(ids)
    unknown += ids.count(unk)
  return pieces / words, unknown / pieces


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--train", required=True)
  parser.add_argument("--held_out", required=True)
  parser.add_argument("--pieces", type=int, default=1500)
  provenance.add_markdown_flag(parser, "vocab_learners.md")
  args = parser.parse_args(argv)
  counts = vocabulary.count_words(_lines(args.train),
                                  vocabulary.bert_word_splitter(True))
  word_counts = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
  held_out = _lines(args.held_out)
  print("%d words, %d distinct" % (sum(counts.values()), len(counts)))
  rows = []
  for name, learn in (("tf_text", learn_wordpiece_tf_text),
                      ("tokenizers", vocabulary.learn_wordpiece)):
    start = time.process_time()
    learned = learn(word_counts, args.pieces)
    seconds = time.process_time() - start
    tokens = vocabulary.bert_layout(learned, len(vocabulary.RESERVED)
                                    + args.pieces)
    per_word, unknown = evaluate(tokens, held_out)
    print("%-10s %6.2f CPU s, %d tokens, %.3f pieces per held-out word, "
          "%.4f [UNK]" % (name, seconds, len(tokens), per_word, unknown))
    rows.append(["TF Text" if name == "tf_text" else "`tokenizers`",
                 "%.1f" % seconds, "{:,}".format(len(tokens)),
                 "%.3f" % per_word, "%.4f" % unknown])
  report = [
      "Learned from %s (%.1f MB, %s words, %s distinct), %s pieces; "
      "measured on %s (%.1f MB)." % (
          os.path.basename(args.train), os.path.getsize(args.train) / 1e6,
          "{:,}".format(sum(counts.values())), "{:,}".format(len(counts)),
          "{:,}".format(args.pieces), os.path.basename(args.held_out),
          os.path.getsize(args.held_out) / 1e6), "",
      *provenance.table(["learner", "CPU s", "tokens",
                         "pieces per held-out word", "`[UNK]` share"], rows),
      "",
      "Both learn from the same word counts (`tokenizers` takes text, so it "
      "is given each word as often as it was counted); both vocabularies are "
      "laid out as BERT's vocab.txt. Fewer pieces per held-out word is the "
      "better vocabulary; CPU s is the learning alone."]
  print("\n".join(report))
  path = provenance.markdown_path(args.markdown, "vocab_learners.md")
  if path:
    provenance.write_page(path, "WordPiece learners: TF Text and tokenizers",
                          sys.argv[1:] if argv is None else argv, report)


if __name__ == "__main__":
  main()
