"""Command-line options of ``python -m pipelines.mlm``.

The algorithm flags keep the names and defaults of google-research/bert's
``create_pretraining_data.py`` so that a command line can be migrated by
copy-paste. Beam's own flags (``--runner``, ``--direct_num_workers``,
``--flink_master``, ``--s3_endpoint_url`` …) are Beam's and pass through.
"""

import argparse
import os

from apache_beam.options.pipeline_options import PipelineOptions

from transforms.instances import DEFAULT_POOL_SIZE
from transforms.reading import (DEFAULT_MAX_DOCUMENT_BYTES,
                                DEFAULT_MAX_LINE_BYTES, FORMATS)

PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))
DEFAULT_VOCAB = os.path.join(PACKAGE_DIR, "vocab", "bert-base-uncased-vocab.txt")


def parse_bool(value) -> bool:
  """``--flag``, ``--flag=true`` and ``--flag=false`` (also 1/0, yes/no)."""
  if isinstance(value, bool):
    return value
  text = str(value).strip().lower()
  if text in ("true", "1", "yes", "y", "on"):
    return True
  if text in ("false", "0", "no", "n", "off"):
    return False
  raise argparse.ArgumentTypeError("expected true or false, got %r" % value)


class MlmOptions(PipelineOptions):
  """Options of the MLM pretraining-data pipeline."""

  @classmethod
  def _add_argparse_args(cls, parser):
    def flag(group, name, help_text, default=False):
      group.add_argument(name, type=parse_bool, nargs="?", const=True,
                          default=default, metavar="BOOL", help=help_text)

    group = parser.add_argument_group("input and output")
    group.add_argument(
        "--input", default=None,
        help="Input file pattern(s), comma separated: local paths, globs or "
        "s3:// URLs. .gz and .bz2 files are decompressed transparently.")
    group.add_argument(
        "--input_format", default="lines", choices=FORMATS,
        help="lines: one sentence per line, a blank line ends a document "
        "(BERT's format). wikiextractor: WikiExtractor output, each <doc> is "
        "a document, its title line dropped. jsonl: one JSON object per line.")
    group.add_argument(
        "--text_field", default="text",
        help="With --input_format=jsonl: the field holding the text.")
    group.add_argument(
        "--output", default=None,
        help="Output directory (local or s3://). Receives part-*.tfrecord "
        "shards, summary.json and transformed_metadata/.")
    group.add_argument(
        "--num_shards", type=int, default=0,
        help="Number of output shards; 0 lets the runner choose.")
    group.add_argument(
        "--compression", default="none", choices=("none", "gzip"),
        help="Compression of the TFRecord shards (gzip: .tfrecord.gz).")
    flag(group, "--overwrite", "Replace the contents of a non-empty --output.")
    group.add_argument(
        "--max_line_bytes", type=int, default=DEFAULT_MAX_LINE_BYTES,
        help="Lines longer than this are cut at whitespace into pieces "
        "(counted as long_line_pieces) so that memory stays bounded.")
    group.add_argument(
        "--max_rejected_fraction", type=float, default=0.001,
        help="Fail the job when more than this share of the records read is "
        "set aside as unusable (listed in OUTPUT/_rejected/, counted by "
        "reason in summary.json), so a wrong --input_format is not taken "
        "for a few bad records. 1 never fails.")
    group.add_argument(
        "--max_document_bytes", type=int, default=DEFAULT_MAX_DOCUMENT_BYTES,
        help="Documents longer than this are cut into parts at line "
        "boundaries (counted as long_documents_split).")

    group = parser.add_argument_group("tokenizer")
    group.add_argument(
        "--vocab_file", default=DEFAULT_VOCAB,
        help="BERT WordPiece vocab.txt (local, s3:// or https://). Default: "
        "the bundled BERT uncased vocabulary.")
    group.add_argument(
        "--tokenizer_file", default=None,
        help="A Hugging Face tokenizer.json to use instead of --vocab_file. "
        "Its vocabulary must hold [CLS], [SEP], [MASK] and [UNK].")
    flag(group, "--do_lower_case", "Lower-case and strip accents (uncased models).",
         default=True)
    group.add_argument(
        "--tokenizer_threads", type=int, default=1,
        help="Threads of the tokenizer in each worker. 1 keeps Beam's worker "
        "count honest; 0 lets tokenizers use every core.")

    group = parser.add_argument_group("instances and masking (as BERT)")
    group.add_argument("--max_seq_length", type=int, default=128,
                       help="Maximum sequence length, [CLS] and [SEP]s included.")
    group.add_argument("--max_predictions_per_seq", type=int, default=20,
                       help="Maximum number of masked-LM predictions per sequence.")
    group.add_argument("--masked_lm_prob", type=float, default=0.15,
                       help="Fraction of tokens to mask, in [0, 1] (at least one "
                       "per sequence, as in BERT).")
    group.add_argument("--random_seed", type=int, default=12345,
                       help="Seed of every random choice; same seed, same output.")
    group.add_argument("--dupe_factor", type=int, default=10,
                       help="Passes over the input, each with different masks.")
    group.add_argument("--short_seq_prob", type=float, default=0.1,
                       help="Probability of a shorter target length, in [0, 1].")
    flag(group, "--do_whole_word_mask", "Mask whole words: all WordPieces of a word "
         "together.")
    group.add_argument(
        "--random_next_pool_size", type=int, default=DEFAULT_POOL_SIZE,
        help="Document passes per random-next pool: B of a random-next pair "
        "comes from another document of the same pool. Each dupe pass of each "
        "document goes to a random pool drawn from the whole corpus; a worker "
        "holds one pool at a time.")
    group.add_argument(
        "--pool_shuffle", choices=POOL_SHUFFLES, default="auto",
        help="How document passes are gathered into pools. 'files' (what "
        "'auto', the default, means on every runner): through files in "
        "--pool_dir, read back one group of pools at a time, so memory does "
        "not grow with the corpus. 'groupbykey': a Beam GroupByKey, which "
        "needs memory for dupe_factor copies of the tokenized corpus (the "
        "DirectRunner's, and on Flink through Beam 2.62 the TaskManagers' "
        "heap). Both give the same examples.")
    group.add_argument(
        "--pool_dir", default=None,
        help="Where the pool files go: a directory of any filesystem Beam "
        "knows (a local path, s3://...) that this machine and every worker "
        "reach. The run works in a new folder inside it and removes that "
        "folder when it ends. Default: OUTPUT/_pools (on S3 too: the "
        "workers write the output there anyway), or the system's temp "
        "directory on the DirectRunner when --output is not local. The "
        "files hold dupe_factor copies of the tokenized documents: about "
        "half a byte per byte of English text each.")


POOL_SHUFFLES = ("auto", "files", "groupbykey")


class UsageError(Exception):
  """A problem with the command line or its files, found before any work."""


def validate(opts: MlmOptions) -> None:
  """Raises UsageError naming the first option value that cannot work."""
  if not opts.input or not [p for p in opts.input.split(",") if p.strip()]:
    raise UsageError("--input is required (a file pattern, or several "
                     "separated by commas)")
  if not opts.output:
    raise UsageError("--output is required (a directory)")
  if not opts.vocab_file and not opts.tokenizer_file:
    raise UsageError("--vocab_file or --tokenizer_file is required")
  checks = [
      (opts.max_seq_length >= 5, "--max_seq_length must be at least 5 "
       "([CLS], [SEP], [SEP] and a token on each side), got %d"
       % opts.max_seq_length),
      # BERT predicts max(1, round(len x masked_lm_prob)) tokens, at most
      # max_predictions_per_seq, and pads the prediction features to that
      # length whatever max_seq_length is: every such value works.
      (0 <= opts.masked_lm_prob <= 1, "--masked_lm_prob must be in [0, 1], "
       "got %g" % opts.masked_lm_prob),
      (opts.max_predictions_per_seq >= 0, "--max_predictions_per_seq must be "
       "0 or more, got %d" % opts.max_predictions_per_seq),
      (opts.dupe_factor >= 1, "--dupe_factor must be at least 1, got %d"
       % opts.dupe_factor),
      (0 <= opts.short_seq_prob <= 1, "--short_seq_prob must be in [0, 1], "
       "got %g" % opts.short_seq_prob),
      (opts.num_shards >= 0, "--num_shards must be 0 (runner chooses) or "
       "more, got %d" % opts.num_shards),
      (opts.random_next_pool_size >= 2, "--random_next_pool_size must be at "
       "least 2, got %d" % opts.random_next_pool_size),
      (opts.max_line_bytes >= 1024, "--max_line_bytes must be at least 1024, "
       "got %d" % opts.max_line_bytes),
      (opts.max_document_bytes >= opts.max_line_bytes,
       "--max_document_bytes must be at least --max_line_bytes (%d), got %d"
       % (opts.max_line_bytes, opts.max_document_bytes)),
      (0 <= opts.max_rejected_fraction <= 1, "--max_rejected_fraction must "
       "be in [0, 1], got %g" % opts.max_rejected_fraction),
      (opts.tokenizer_threads >= 0, "--tokenizer_threads must be 0 or more, "
       "got %d" % opts.tokenizer_threads),
  ]
  for ok, message in checks:
    if not ok:
      raise UsageError(message)


def input_patterns(opts: MlmOptions):
  return [p.strip() for p in opts.input.split(",") if p.strip()]
