"""The Tokenize stage of each tokenizer family against that family's own
fast tokenizer alone, on the same sentences, per CPU-second on one core.

Usage:
  python -m benchmarks.tokenizer_families --input=wiki_00[,wiki_01] \\
      [--input_format=wikiextractor] [--rounds=3] [--vocab_size=16000] \\
      [--markdown] [--readme]

The text: ``--input``'s documents (WikiExtractor or lines format), split
into sentences as the pipeline splits them (blingfire). Vocabularies of
each family are learned here from that text by the libraries themselves:
a byte-level BPE (``tokenizers``' ``ByteLevelBPETokenizer``, RoBERTa's
special tokens), a Unigram SentencePiece model laid out as XLM-R's
released one (read with fairseq's ids), and an uncased one with ALBERT's
special pieces, learned from the lower-cased text and run with ALBERT's
text rules; WordPiece uses BERT's uncased ``vocab.txt`` the project
ships.

Measured, in this process, with every library held to one thread
(``RAYON_NUM_THREADS=1``, ``num_threads=1``), the fastest of ``--rounds``
(CPU seconds of the process, ``time.process_time``, each round begun with
a full garbage collection):

* the pipeline's stage body, ``tokenization.tokenize_documents`` over
  batches of 64 documents (what ``Tokenize`` does per batch: encode, then
  ids per document, sentence lengths, counts, special ids made unknown);
* the family's library alone on the same sentences, batch by batch:
  ``tokenizers``' ``encode_batch`` (``BertWordPieceTokenizer`` for
  WordPiece, ``ByteLevelBPETokenizer`` for BPE) or ``sentencepiece``'s
  ``encode(..., out_type=int)``.

Printed and written (``--markdown``: docs/benchmarks/tokenizer_families.md;
``--readme``: the table, without the rounds, between the README's
``tokenizer-families`` markers): MB of text per CPU-second for each, and the stage's speed as a
share of its library's (issue target: at least 0.8).
"""

import argparse
import gc
import os
import re
import sys
import tempfile
import time
from typing import Callable, List, Sequence, Tuple

os.environ["RAYON_NUM_THREADS"] = "1"
os.environ["TOKENIZERS_PARALLELISM"] = "false"

# pylint: disable=wrong-import-position
from benchmarks import provenance
from transforms import reading, sentences, tokenization

REPO = provenance.REPO
BATCH = 64
ROBERTA_SPECIALS = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]
README_MARK = "tokenizer-families"
TARGET = 0.8
# MB of text per CPU-second the WordPiece stage must reach with its fast path.
WORDPIECE_TARGET = 50.0


def read_documents(paths: Sequence[str], input_format: str
                   ) -> List[Tuple[str, List[str]]]:
  """Each document's sentences, as the pipeline's reader and splitter make
  them (plain functions, no Beam)."""
  split = sentences.load_splitter()
  docs = []
  for path in paths:
    with open(path, encoding="utf-8") as f:
      lines = [(i, line.rstrip("\n")) for i, line in enumerate(f)]
    if input_format == "wikiextractor":
      grouped = reading.group_wikiextractor_format(lines)
    else:
      grouped = reading.group_lines_format(lines, True)
    for offset, paragraphs in grouped:
      doc = sentences.split_paragraphs(paragraphs, split)
      if doc:
        docs.append(("%s:%d" % (os.path.basename(path), offset), doc))
  return docs


def train_models(docs, folder: str, vocab_size: int):
  """(bpe tokenizer.json, XLM-R-style .model, ALBERT-style .model) learned
  from the documents' sentences."""
  # pylint: disable=import-outside-toplevel
  import sentencepiece
  from tokenizers import ByteLevelBPETokenizer
  text = os.path.join(folder, "text.txt")
  with open(text, "w", encoding="utf-8") as f:
    for _, doc in docs:
      f.write("\n".join(doc) + "\n")
  bpe = ByteLevelBPETokenizer()
  bpe.train([text], vocab_size=vocab_size, special_tokens=ROBERTA_SPECIALS,
            show_progress=False)
  bpe.save_model(folder)
  # ALBERT's released models are uncased: learned from lower-cased text, as
  # its text rules send the text (--do_lower_case defaults to true there).
  lowered = os.path.join(folder, "lowered.txt")
  with open(text, encoding="utf-8") as f, open(lowered, "w",
                                               encoding="utf-8") as out:
    for line in f:
      out.write(line.lower())
  models = {}
  for name, extra in (
      # SentencePiece's defaults (<unk> <s> </s>, no <pad> or <mask>), as
      # XLM-R's released sentencepiece.bpe.model: read with fairseq's ids.
      ("xlmr", {}),
      ("albert", dict(pad_id=0, unk_id=1, bos_id=-1, eos_id=-1,
                      pad_piece="<pad>", unk_piece="<unk>",
                      control_symbols="[CLS],[SEP],[MASK]"))):
    sentencepiece.SentencePieceTrainer.train(
        input=lowered if name == "albert" else text,
        model_prefix=os.path.join(folder, name),
        vocab_size=vocab_size, model_type="unigram", minloglevel=2,
        hard_vocab_limit=False,
        input_sentence_size=2000000, shuffle_input_sentence=True,
        num_threads=2, **extra)
    models[name] = os.path.join(folder, name + ".model")
  return (os.path.join(folder, "vocab.json"),
          os.path.join(folder, "merges.txt"), models)


def cpu_seconds(run: Callable[[], None], rounds: int) -> List[float]:
  """CPU seconds of each of ``rounds`` runs, each begun with a full garbage
  collection, so that no run pays for what an earlier one left."""
  times = []
  for _ in range(rounds):
    gc.collect()
    start = time.process_time()
    run()
    times.append(time.process_time() - start)
  return times


def batches(docs):
  return [docs[i:i + BATCH] for i in range(0, len(docs), BATCH)]


def families(docs, folder: str, vocab_size: int, vocab_txt: str):
  """``(family, ours, library)``: the stage over the batches, and its
  library alone over the same sentences."""
  # pylint: disable=import-outside-toplevel
  import sentencepiece
  from tokenizers import BertWordPieceTokenizer, ByteLevelBPETokenizer
  vocab_json, merges, models = train_models(docs, folder, vocab_size)
  grouped = batches(docs)
  flat = [[s for _, doc in batch for s in doc] for batch in grouped]
  cases = []

  def stage(tokenizer, vocab):
    def run():
      # nanotoken caches the words it has seen: every round starts cold,
      # as a worker does on new text.
      if getattr(tokenizer, "fast_path", None) is not None:
        tokenizer.fast_path.clear_cache()
      for batch in grouped:
        tokenization.tokenize_documents(batch, tokenizer, vocab)
    return run

  plain = BertWordPieceTokenizer(vocab_txt, lowercase=True)

  def wordpiece_alone():
    for sents in flat:
      plain.encode_batch(sents, add_special_tokens=False)
  for fast, label in ((True, "WordPiece (BERT uncased; nanotoken where it "
                       "is BERT's, else exact)"),
                      (False, "WordPiece (BERT uncased, exact path only)")):
    tok, vocab = tokenization.load_tokenizer(vocab_file=vocab_txt,
                                             fast_wordpiece=fast)
    if fast and tok.fast_path is None:
      print("no fast WordPiece path: %s" % tok.fast_path_unavailable)
      continue
    cases.append((label, stage(tok, vocab),
                  "`tokenizers` BertWordPieceTokenizer", wordpiece_alone))

  tok, vocab = tokenization.load_tokenizer(vocab_file=vocab_json,
                                           merges_file=merges)
  bpe = ByteLevelBPETokenizer(vocab_json, merges)

  def bpe_alone():
    for sents in flat:
      bpe.encode_batch(sents)
  cases.append(("byte-level BPE (RoBERTa)", stage(tok, vocab),
                "`tokenizers` ByteLevelBPETokenizer", bpe_alone))

  for name, rules, label in (("xlmr", False, "SentencePiece Unigram (XLM-R)"),
                             ("albert", True,
                              "SentencePiece Unigram (ALBERT's text rules)")):
    tok, vocab = tokenization.load_tokenizer(spm_model_file=models[name],
                                             albert_rules=rules)
    processor = sentencepiece.SentencePieceProcessor(model_file=models[name])

    def spm_alone(processor=processor):
      for sents in flat:
        processor.encode(sents, out_type=int, num_threads=1)
    cases.append((label, stage(tok, vocab), "`sentencepiece` encode",
                  spm_alone))
  return cases


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--input", required=True,
                      help="Comma-separated text files (local).")
  parser.add_argument("--input_format", default="wikiextractor",
                      choices=("wikiextractor", "lines"))
  parser.add_argument("--rounds", type=int, default=3)
  parser.add_argument("--vocab_size", type=int, default=16000)
  parser.add_argument("--vocab_file", default=os.path.join(
      REPO, "pipelines", "vocab", "bert-base-uncased-vocab.txt"))
  parser.add_argument("--readme", action="store_true",
                      help="Also write the table into README.md between its "
                      "tokenizer-families markers.")
  provenance.add_markdown_flag(parser, "tokenizer_families.md")
  args = parser.parse_args(argv)
  paths = [p for p in args.input.split(",") if p]
  docs = read_documents(paths, args.input_format)
  mb = sum(len(s.encode("utf-8")) for _, doc in docs for s in doc) / 1e6
  print("%d documents, %.2f MB of sentences" % (len(docs), mb))
  rows, rounds, speeds = [], [], {}
  with tempfile.TemporaryDirectory() as folder:
    for family, ours, library, alone in families(docs, folder,
                                                 args.vocab_size,
                                                 args.vocab_file):
      # Interleaved, so that both see the same machine.
      ours_t, alone_t = [], []
      for _ in range(args.rounds):
        ours_t += cpu_seconds(ours, 1)
        alone_t += cpu_seconds(alone, 1)
      ratio = min(alone_t) / min(ours_t)
      speeds[family] = mb / min(ours_t)
      print("%-45s ours %.2f MB/CPU-s (%s)  %s %.2f MB/CPU-s (%s)  %.2fx"
            % (family, mb / min(ours_t), " ".join("%.2f" % t for t in ours_t),
               library, mb / min(alone_t),
               " ".join("%.2f" % t for t in alone_t), ratio))
      rows.append([family, "%.2f" % (mb / min(ours_t)), library,
                   "%.2f" % (mb / min(alone_t)), "%.2f" % ratio,
                   "yes" if ratio >= TARGET else "**no**"])
      rounds.append("- %s: stage %s; library %s" % (
          family, " ".join("%.3f" % t for t in ours_t),
          " ".join("%.3f" % t for t in alone_t)))
  table = provenance.table(
      ["family", "Tokenize stage, MB/CPU-s", "library alone",
       "library, MB/CPU-s", "stage / library", "at least %.1f" % TARGET],
      rows)
  report = [
      "%s (%.2f MB of sentences, %d documents); vocabularies of %s learned "
      "from it, BERT's uncased vocab.txt for WordPiece. One thread, fastest "
      "of %d rounds." % (", ".join(os.path.basename(p) for p in paths), mb,
                         len(docs), "{:,}".format(args.vocab_size),
                         args.rounds), "", *table, "",
      "The stage is `tokenization.tokenize_documents` over batches of %d "
      "documents (the Tokenize DoFn's body); the library alone encodes the "
      "same sentences in the same batches and does nothing else." % BATCH,
      *[line for family, speed in speeds.items() if "nanotoken" in family
        for line in ("", "WordPiece's stage with its fast path: %.1f "
                     "MB/CPU-s (target at least %.0f: %s)." % (
                         speed, WORDPIECE_TARGET,
                         "met" if speed >= WORDPIECE_TARGET
                         else "**not met**"))]]
  every_round = ["", "Every round, CPU seconds (the two sides interleaved):",
                 "", *rounds]
  print("\n".join(report + every_round))
  path = provenance.markdown_path(args.markdown, "tokenizer_families.md")
  argv_used = sys.argv[1:] if argv is None else argv
  if path:
    provenance.write_page(path, "Tokenizer families: the stage against each "
                          "library alone", argv_used, report + every_round)
  if args.readme:
    provenance.write_readme_section(README_MARK, argv_used, report)


if __name__ == "__main__":
  main()
