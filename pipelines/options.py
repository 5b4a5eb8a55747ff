"""Command-line options of ``python -m pipelines.mlm``.

The algorithm flags keep the names and defaults of google-research/bert's
``create_pretraining_data.py`` so that a command line can be migrated by
copy-paste. Beam's own flags (``--runner``, ``--direct_num_workers``,
``--flink_master``, ``--s3_endpoint_url`` …) are Beam's and pass through.
"""

import argparse
import glob
import os
from typing import Dict, List, Optional, Sequence, Tuple

from apache_beam.io.filesystem import CompressionTypes
from apache_beam.options.pipeline_options import PipelineOptions, S3Options

from transforms import languages, mds, megatron, paths
from transforms.examples import ExampleLayout
from transforms.instances import (DEFAULT_POOL_SIZE, PACKINGS, SENTENCE_TASKS,
                                  InstanceParams)
from transforms.masking import MASKINGS, SPAN_MASKINGS, MaskingParams
from transforms.reading import (DEFAULT_MAX_DOCUMENT_BYTES,
                                DEFAULT_MAX_LINE_BYTES, FORMATS)
from transforms.tokenization import TokenizerSettings

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


OUTPUT_FORMATS = ("tfrecord", "parquet", "megatron", "mds")
DEFAULT_OUTPUT_FORMAT = "tfrecord"

# What each objective's paper and reference code use; --preset=NAME sets
# these, and any flag given on the command line wins. Flags that are not
# listed keep their defaults (BERT's).
PRESETS = {
    # Devlin et al. 2019; google-research/bert create_pretraining_data.py.
    "bert": {"sentence_task": "nsp", "packing": "pairs", "masking": "static",
             "max_seq_length": 128},
    # Liu et al. 2019, sections 4.1-4.2 and Table 2: no NSP, FULL-SENTENCES,
    # dynamic masking, sequences of 512 tokens.
    "roberta": {"sentence_task": "none", "packing": "full_sentences",
                "masking": "none", "max_seq_length": 512},
    # Lan et al. 2020; google-research/albert create_pretraining_data.py
    # (random_next_sentence=False, ngram=3, do_whole_word_mask=True,
    # max_seq_length=512).
    "albert": {"sentence_task": "sop", "packing": "pairs", "masking": "static",
               "max_ngram_size": 3, "do_whole_word_mask": True,
               "max_seq_length": 512},
    # Clark et al. 2020; google-research/electra build_pretraining_dataset.py:
    # no sentence task, segment pairs of 128 tokens, masking in the trainer.
    "electra": {"sentence_task": "none", "packing": "pairs",
                "masking": "none", "max_seq_length": 128},
    # Conneau et al. 2020 (XLM-R), section 3: RoBERTa's recipe over a
    # SentencePiece vocabulary, languages sampled with alpha = 0.3, 512
    # tokens, masking in the trainer.
    "xlmr": {"sentence_task": "none", "packing": "full_sentences",
             "masking": "none", "max_seq_length": 512,
             "language_sampling_alpha": 0.3},
    # Megatron-LM's BERT (Shoeybi et al. 2019; NVIDIA/Megatron-LM README,
    # "Data Preprocessing": preprocess_data.py --split-sentences for BERT):
    # token ids one sentence per sequence, documents marked; its BERT dataset
    # pairs, truncates to --seq-length and masks at training time.
    "megatron-bert": {"sentence_task": "none", "output_format": "megatron",
                      "packing": "sentences", "masking": "none"},
    # ModernBERT (Warner et al. 2024, "Smarter, Better, Faster, Longer",
    # section 2.2: no NSP, 1,024-token sequences in pretraining before the
    # 8,192 context extension; its 30% masking rate is the trainer's,
    # applied per batch). Its trainer packs unpadded samples into batches
    # itself, attention kept within each sample, so a sample here stays
    # inside its document (RoBERTa's DOC-SENTENCES). MDS for Composer.
    "modernbert": {"sentence_task": "none", "output_format": "mds",
                   "packing": "doc_sentences", "masking": "none",
                   "max_seq_length": 1024},
}
# The tokenizer family each preset's model was trained with
# (transforms/tokenizer_families.py).
PRESET_FAMILIES = {"bert": ("wordpiece",), "electra": ("wordpiece",),
                   # XLM-R is RoBERTa's recipe over SentencePiece.
                   "roberta": ("bpe", "sentencepiece"),
                   "albert": ("sentencepiece",),
                   "xlmr": ("sentencepiece",),
                   "megatron-bert": ("wordpiece",),
                   # A BPE like OLMo's (Warner et al. 2024, section 2.2).
                   "modernbert": ("bpe",)}
FAMILY_NAMES = {"wordpiece": "WordPiece (BERT's)",
                "bpe": "byte-level BPE (RoBERTa's)",
                "sentencepiece": "SentencePiece (ALBERT's, XLM-R's)"}


def preset_family_warning(preset: Optional[str], family: str,
                          path: str) -> Optional[str]:
  """A ``warning:`` line when ``--preset`` names a model of another
  tokenizer family than the file's (``path``, of ``family``), or None."""
  expected = PRESET_FAMILIES.get(preset or "")
  if expected is None or family in expected:
    return None
  return ("warning: --preset=%s is the recipe of a model with a %s "
          "tokenizer, but %s is a %s one: the examples follow the tokenizer "
          "given (its special tokens and word boundaries), so no released "
          "%s checkpoint reads them as its own"
          % (preset, " or ".join(FAMILY_NAMES[f] for f in expected), path,
             FAMILY_NAMES[family],
             preset))


# The defaults of the flags a preset may set (None in argparse, so that a
# flag given on the command line can be told from one left out).
# --dupe_factor's default is 10, or 1 with --masking=none: the trainer masks
# each epoch anew, so copies would only repeat the same sequences.
BASE_DEFAULTS = {"sentence_task": "nsp", "packing": "pairs",
                 "masking": "static", "max_ngram_size": 0,
                 "do_whole_word_mask": False, "max_seq_length": 128,
                 "language_sampling_alpha": None}


def preset_help() -> str:
  """Each preset's expansion, for --help and the docs."""
  return "; ".join(
      "%s = %s" % (name, " ".join("--%s=%s" % (k, str(v).lower()
                                               if isinstance(v, bool) else v)
                                  for k, v in flags.items()))
      for name, flags in PRESETS.items())


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
        "s3:// URLs. .gz, .bz2 and .zst files are decompressed "
        "transparently. A multilingual corpus tags each pattern with its "
        "language: en=wiki/en/*,sw=wiki/sw/* (every pattern tagged, or "
        "none); no instance then mixes two languages.")
    group.add_argument(
        "--input_format", default="lines", choices=FORMATS,
        help="lines: one sentence per line, a blank line ends a document "
        "(BERT's format). wikiextractor: WikiExtractor output, each <doc> is "
        "a document, its title line dropped. jsonl: one JSON object per line. "
        "parquet: one document per row of the --text_field column, files "
        "split across workers by row groups. wikidump: a MediaWiki "
        "pages-articles XML dump (.xml, .bz2 or multistream .bz2, split "
        "across workers by its bz2 streams), one document per article.")
    group.add_argument(
        "--language_field", default=None,
        help="With --input_format=jsonl or parquet: the field (column) "
        "naming each record's language (a tag such as en or zh-Hans), "
        "instead of languages tagged on --input; a record without one is "
        "set aside (records_missing_language).")
    group.add_argument(
        "--language_sampling_alpha", type=float, default=None,
        help="With languages in --input or --language_field: pass over each "
        "language's documents so that it makes a share q_i of the output "
        "proportional to p_i^A, p_i its share of the input's bytes (XLM, "
        "XLM-R: 0.3), and the whole as much as --dupe_factor passes would. "
        "With --language_field the bytes are counted by a first pass over "
        "the input. Left out: every language --dupe_factor times.")
    group.add_argument(
        "--text_field", default="text",
        help="With --input_format=jsonl or parquet: the field (column) "
        "holding the text.")
    group.add_argument(
        "--output", default=None,
        help="Output directory (local or s3://). Receives part-*.tfrecord "
        "shards, summary.json and transformed_metadata/.")
    group.add_argument(
        "--num_shards", type=int, default=0,
        help="Number of output shards. 0: one per group of random-next "
        "pools, each written whole under its final name (and reused by "
        "--resume); a count costs a shuffle of every example.")
    group.add_argument(
        "--compression", default="none", choices=("none", "gzip"),
        help="Compression of the TFRecord shards (gzip: .tfrecord.gz) or "
        "of the MDS shards (gzip: MDS's gz, .mds.gz).")
    group.add_argument(
        "--output_format", default=None, choices=OUTPUT_FORMATS,
        help="tfrecord (default; megatron with --preset=megatron-bert, mds "
        "with --preset=modernbert): "
        "BERT's tf.train.Example features. parquet: "
        "zstd-compressed Parquet shards with Hugging Face's column names "
        "(input_ids, attention_mask, token_type_ids, labels, "
        "next_sentence_label / sentence_order_label), for PyTorch trainers. "
        "megatron: Megatron-LM's indexed dataset, one text_sentence.bin/.idx "
        "pair per run (text_document with --packing=doc) of token ids, which "
        "Megatron's BERT dataset masks and pairs at training time. mds: "
        "MosaicML Streaming's MDS shards and index.json (input_ids, "
        "token_type_ids for segment pairs, the sentence label), unpadded and "
        "unmasked (--masking=none), for mosaicml-streaming readers "
        "(Composer; ModernBERT's non-streaming loader).")
    group.add_argument(
        "--mds_shard_bytes", type=int, default=mds.DEFAULT_SHARD_BYTES,
        help="With --output_format=mds: a shard's size limit in bytes before "
        "compression (MDS's size_limit; default 64 MiB, MDSWriter's).")
    flag(group, "--overwrite", "Replace the contents of a non-empty --output.")
    flag(group, "--resume", "Continue a run that failed or was stopped, "
         "with the same flags and input: reuse its finished work (every "
         "document spilled to the pool files, each shard written) and make "
         "the rest. The examples and summary.json are those of an "
         "uninterrupted run. With nothing to reuse the run starts over.")
    flag(group, "--quiet", "No live progress (a bar on a terminal, a "
         "progress: line every --progress_seconds otherwise); the closing "
         "summary line and warnings stay.")
    group.add_argument(
        "--log_level", default="warning", choices=LOG_LEVELS,
        help="What the run logs besides its own lines (progress, warnings, "
        "done:): info shows Beam's lines too (each stage and worker), debug "
        "everything.")
    group.add_argument(
        "--progress_seconds", type=float, default=30.0,
        help="Seconds between progress: lines when stderr is not a terminal "
        "(a log, CI).")
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
        help="A Hugging Face tokenizer.json to use instead of --vocab_file: "
        "a WordPiece model (BERT's family), a byte-level BPE (RoBERTa's) or "
        "a Unigram or Metaspace BPE (SentencePiece's). Its vocabulary must "
        "hold its family's special tokens (docs/tokenizer.md).")
    group.add_argument(
        "--spm_model_file", default=None,
        help="A SentencePiece .model (ALBERT's, XLM-R's) to use instead of "
        "--vocab_file, run by the sentencepiece library; special tokens "
        "ALBERT's ([CLS] [SEP] [MASK] <pad> <unk>) when it holds [CLS], "
        "else <s> </s> <mask> <pad> <unk>. A model laid out as XLM-R's "
        "released sentencepiece.bpe.model (<unk> <s> </s> first, no <pad> "
        "or <mask>) gets fairseq's ids, as XLM-R was trained with them.")
    group.add_argument(
        "--merges_file", default=None,
        help="RoBERTa's merges.txt: with it, --vocab_file is RoBERTa's "
        "vocab.json, and the tokenizer GPT-2's byte-level BPE.")
    flag(group, "--albert_text_rules", "With --spm_model_file: ALBERT's "
         "text rules (whitespace runs to one space, accents stripped, a "
         "piece ending in a digit and a comma split again), as ALBERT's "
         "create_pretraining_data.py. Default: true with --preset=albert.",
         default=None)
    for role, bert, other in (("cls", "[CLS]", "<s>"), ("sep", "[SEP]", "</s>"),
                              ("mask", "[MASK]", "<mask>"),
                              ("pad", "[PAD]", "<pad>"),
                              ("unk", "[UNK]", "<unk>")):
      group.add_argument(
          "--%s_token" % role, default=None,
          help="The %s token, if not the tokenizer family's (%s for "
          "WordPiece, %s for byte-level BPE)." % (role, bert, other))
    # None: left out, told apart from an explicit value (see resolve and
    # transforms.tokenization.load_tokenizer).
    flag(group, "--do_lower_case", "Lower-case (and, with BERT's rules or "
         "ALBERT's, strip accents) for uncased models. Default: true with "
         "--vocab_file=vocab.txt, as in BERT; with --tokenizer_file, what the "
         "file's normalizer does (a value that contradicts it is refused); "
         "with --spm_model_file, --albert_text_rules' value, as in ALBERT's "
         "script; false with --merges_file.", default=None)
    flag(group, "--fast_wordpiece", "With --vocab_file=vocab.txt: "
         "tokenize with nanotoken the sentences whose every character it "
         "treats as google-research/bert does (the same ids, ten to twenty "
         "times faster), the rest by the exact path; false: every sentence "
         "by the exact path.", default=True)
    group.add_argument(
        "--tokenizer_threads", type=int, default=1,
        help="Threads of the tokenizer in each worker. 1 keeps Beam's worker "
        "count honest; 0 lets tokenizers use every core.")

    group = parser.add_argument_group(
        "objective (defaults: BERT's; a preset sets several at once)")
    group.add_argument(
        "--preset", default=None, choices=sorted(PRESETS),
        help="Set the objective flags as a paper's reference code does; "
        "flags given explicitly win. " + preset_help() + ".")
    group.add_argument(
        "--sentence_task", default=None, choices=SENTENCE_TASKS,
        help="nsp (default): BERT's next-sentence prediction, B is random "
        "half the time. sop: ALBERT's sentence-order prediction, B is the "
        "real continuation, swapped half the time. none: no sentence label.")
    group.add_argument(
        "--packing", default=None, choices=PACKINGS + megatron.PACKINGS,
        help="pairs (default): BERT's segments A and B. full_sentences / "
        "doc_sentences: RoBERTa's, whole sentences packed up to "
        "--max_seq_length in one segment, across document boundaries (with "
        "a [SEP] between documents) or not. Packing needs "
        "--sentence_task=none. With --output_format=megatron: sentences "
        "(default; one sequence per sentence, as Megatron's preprocess_data."
        "py --split-sentences) or doc (one per document).")
    group.add_argument(
        "--masking", default=None, choices=MASKINGS,
        help="static (default): mask once per dupe pass, here. none: write "
        "no masked_lm features, for masking at training time (dynamic "
        "masking); --dupe_factor then defaults to 1.")
    flag(group, "--token_boundary", "Also write ALBERT's token_boundary "
         "feature (a column of that name in Parquet): per position, 1 where "
         "the original token starts a word ([CLS] and [SEP] included, by "
         "the tokenizer family's rule, whatever is masked), 0 at "
         "continuation pieces and in the padding, as google-research/"
         "albert's create_pretraining_data.py writes it; its "
         "run_pretraining.py reads it with --masked_lm_budget (masking in "
         "the trainer). Default: true with --preset=albert and TFRecord "
         "output (Hugging Face's collators do not pad the Parquet column).",
         default=None)
    flag(group, "--langs_feature", "Also write XLM's langs feature (a column "
         "of that name in Parquet): each example's language id at every "
         "position, the padding included, as XLM's trainer fills the langs "
         "tensor its language embeddings read; a language's id is its "
         "index in the sorted list of the languages, recorded in "
         "summary.json's languages. Needs the languages before the job: "
         "tags on --input, or --language_field with "
         "--language_sampling_alpha (whose first pass finds them).")
    group.add_argument(
        "--max_ngram_size", type=int, default=None,
        help="Mask whole-word n-grams of 1..N words, weighted 1/n (TF Model "
        "Garden's flag, ALBERT's ngram); implies whole-word masking. 0 or "
        "1 (default 0): single words or pieces.")
    group.add_argument(
        "--span_masking", default="none", choices=SPAN_MASKINGS,
        help="geometric: SpanBERT's spans of whole words, lengths drawn from "
        "a geometric distribution (--span_p) up to --max_span_length, one "
        "80/10/10 decision per span.")
    group.add_argument("--span_p", type=float, default=0.2,
                       help="p of the span lengths' geometric distribution.")
    group.add_argument("--max_span_length", type=int, default=10,
                       help="Longest span, in whole words.")

    group = parser.add_argument_group("instances and masking (as BERT)")
    group.add_argument("--max_seq_length", type=int, default=None,
                       help="Maximum sequence length, [CLS] and [SEP]s "
                       "included (default 128).")
    group.add_argument("--max_predictions_per_seq", type=int, default=20,
                       help="Maximum number of masked-LM predictions per sequence.")
    group.add_argument("--masked_lm_prob", type=float, default=0.15,
                       help="Fraction of tokens to mask, in [0, 1] (at least one "
                       "per sequence, as in BERT).")
    group.add_argument("--random_seed", type=int, default=12345,
                       help="Seed of every random choice; same seed, same output.")
    group.add_argument("--dupe_factor", type=int, default=None,
                       help="Passes over the input, each with different masks "
                       "(default 10, or 1 with --masking=none).")
    group.add_argument("--short_seq_prob", type=float, default=0.1,
                       help="Probability of a shorter target length, in [0, 1].")
    flag(group, "--do_whole_word_mask", "Mask whole words: all WordPieces of a word "
         "together (default false).", default=None)
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
        "reach. The run works in a folder inside it named from --output, "
        "removed when the run finishes and kept for --resume when it fails "
        "or is stopped. Default: OUTPUT/_pools (on S3 too: the "
        "workers write the output there anyway), or the system's temp "
        "directory on the DirectRunner when --output is not local. The "
        "files hold dupe_factor copies of the tokenized documents: about "
        "half a byte per byte of English text each.")


POOL_SHUFFLES = ("auto", "files", "groupbykey")
LOG_LEVELS = ("debug", "info", "warning", "error")


class UsageError(Exception):
  """A problem with the command line or its files, found before any work."""


def resolve(opts: MlmOptions) -> None:
  """Fills in the objective flags left out (None): ``--output_format`` from
  ``--preset`` or ``DEFAULT_OUTPUT_FORMAT``, the others from ``--preset``,
  then from ``BASE_DEFAULTS``; ``--dupe_factor`` is 10, or 1 with
  ``--masking=none``; ``--albert_text_rules`` and ``--token_boundary`` are
  true with ``--preset=albert``, false otherwise; ``--do_lower_case`` is
  true, as in BERT, unless a ``--tokenizer_file`` is to decide it. A
  preset's choice of what static masking masks is dropped when
  ``--masking=none`` is asked for, its n-grams when ``--span_masking``
  is."""
  preset = dict(PRESETS.get(opts.preset or "", {}))
  if opts.output_format is None:
    opts.output_format = preset.get("output_format", DEFAULT_OUTPUT_FORMAT)
  preset.pop("output_format", None)
  if opts.output_format == "megatron":
    # Megatron pairs and masks at training time: one pass, nothing masked,
    # so a preset's masking choices and language sampling do not apply.
    preset.update(packing=megatron.PACKINGS[0], sentence_task="none",
                  masking="none")
    for name in tuple(MASKING_CHOICES) + ("language_sampling_alpha",):
      preset.pop(name, None)
  if not input_languages(opts) and not opts.language_field:
    # A corpus without language tags is one language: nothing to sample.
    preset.pop("language_sampling_alpha", None)
  if opts.masking == "none":
    for name in MASKING_CHOICES:
      preset.pop(name, None)
  if opts.span_masking != "none":
    # Spans asked for replace the preset's n-grams (two ways to choose).
    preset.pop("max_ngram_size", None)
  for name, default in BASE_DEFAULTS.items():
    if getattr(opts, name) is None:
      setattr(opts, name, preset.get(name, default))
  if opts.dupe_factor is None:
    opts.dupe_factor = 1 if opts.masking == "none" else 10
  if opts.albert_text_rules is None:
    opts.albert_text_rules = opts.preset == "albert"
  if opts.token_boundary is None:
    # ALBERT's run_pretraining.py reads TFRecords; Hugging Face's collators
    # do not pad the column in Parquet, so there it is asked for.
    opts.token_boundary = (opts.preset == "albert"
                           and opts.output_format == "tfrecord")
  if (opts.do_lower_case is None and not opts.tokenizer_file
      and not opts.spm_model_file and not opts.merges_file):
    opts.do_lower_case = True  # BERT's default
  # With another tokenizer a --do_lower_case left out stays None: the file
  # or the family decides once the file is read (pipelines.mlm.check).


# Flags that choose what static masking masks, with their "off" values.
MASKING_CHOICES = {"max_ngram_size": 0, "do_whole_word_mask": False,
                   "span_masking": "none"}


def objective_errors(opts: MlmOptions):
  """The combinations of objective flags that cannot work, as messages."""
  megatron_problems = list(megatron_errors(opts)) + list(mds_errors(opts))
  if megatron_problems:  # the format decides what the other flags mean
    yield from megatron_problems
    return
  if opts.packing != "pairs" and opts.sentence_task != "none":
    yield ("--packing=%s makes one segment per sequence, so there is no "
           "sentence pair for --sentence_task=%s: pass --sentence_task=none "
           "(or --packing=pairs)" % (opts.packing, opts.sentence_task))
  if opts.masking == "none":
    for name, off in MASKING_CHOICES.items():
      if getattr(opts, name) not in (off, 1 if name == "max_ngram_size"
                                     else off):
        yield ("--%s chooses what static masking masks; with --masking=none "
               "nothing is masked here (the trainer masks): drop it or pass "
               "--masking=static" % name)
  if opts.max_ngram_size > 1 and opts.span_masking != "none":
    yield ("--max_ngram_size and --span_masking=%s are two ways to choose "
           "masked words: pass one" % opts.span_masking)
  if opts.output_format == "parquet" and opts.compression != "none":
    yield ("--compression applies to TFRecord shards; Parquet shards are "
           "always zstd-compressed: drop --compression")


def mds_errors(opts: MlmOptions):
  """What ``--output_format=mds`` cannot go with, as messages."""
  if opts.output_format != "mds":
    return
  if opts.masking != "none":
    yield ("--output_format=mds writes unmasked sequences for a trainer "
           "that masks them (dynamic masking): pass --masking=none or a "
           "preset that has it (modernbert, roberta, electra, xlmr)")
  if opts.num_shards:
    yield ("--output_format=mds cuts its shards by --mds_shard_bytes: drop "
           "--num_shards")
  if not 1024 <= opts.mds_shard_bytes <= mds.MAX_SHARD_BYTES:
    yield ("--mds_shard_bytes must be at least 1024 and below 2**32 (MDS "
           "offsets are 32-bit), got %d" % opts.mds_shard_bytes)
  if opts.pool_shuffle == "groupbykey":
    yield ("--output_format=mds writes a shard sequence per pool group, "
           "through the pool files: drop --pool_shuffle=groupbykey")
  if opts.token_boundary or opts.langs_feature:
    yield ("--output_format=mds writes input_ids, token_type_ids and the "
           "sentence label only: drop --token_boundary and --langs_feature")


def megatron_errors(opts: MlmOptions):
  """What ``--output_format=megatron`` cannot go with, as messages: it
  writes each document's token ids once, and Megatron's BERT dataset
  pairs, truncates and masks them at training time."""
  if opts.output_format != "megatron":
    if opts.packing in megatron.PACKINGS:
      yield ("--packing=%s is a layout of --output_format=megatron; pass "
             "--output_format=megatron or one of %s"
             % (opts.packing, ", ".join(PACKINGS)))
    return
  if opts.packing not in megatron.PACKINGS:
    yield ("--output_format=megatron writes one sequence per sentence "
           "(--packing=sentences, the default) or per document "
           "(--packing=doc), not --packing=%s" % opts.packing)
  if opts.sentence_task != "none":
    yield ("--output_format=megatron has no sentence task: Megatron's BERT "
           "dataset pairs the sentences at training time; drop "
           "--sentence_task")
  if opts.masking != "none":
    yield ("--output_format=megatron writes token ids unmasked: Megatron "
           "masks at training time; drop --masking")
  if opts.dupe_factor != 1:
    yield ("--output_format=megatron writes each document once (the trainer "
           "masks anew each epoch): drop --dupe_factor")
  if opts.compression != "none" or opts.num_shards:
    yield ("--output_format=megatron writes one uncompressed .bin/.idx "
           "pair per run: drop --compression and --num_shards")
  if opts.pool_shuffle == "groupbykey":
    yield ("--output_format=megatron orders the documents through the pool "
           "files: drop --pool_shuffle=groupbykey")
  if opts.language_sampling_alpha is not None:
    yield ("--language_sampling_alpha repeats documents of some languages; "
           "--output_format=megatron writes each document once: drop it")
  if opts.token_boundary or opts.langs_feature:
    yield ("--output_format=megatron writes token ids only: drop "
           "--token_boundary and --langs_feature")


def validate(opts: MlmOptions) -> None:
  """Raises UsageError naming the first option value that cannot work."""
  if not opts.input or not [p for p in opts.input.split(",") if p.strip()]:
    raise UsageError("--input is required (a file pattern, or several "
                     "separated by commas)")
  if opts.progress_seconds <= 0:
    raise UsageError("--progress_seconds must be positive, got %g"
                     % opts.progress_seconds)
  if not opts.output:
    raise UsageError("--output is required (a directory)")
  if not (opts.vocab_file or opts.tokenizer_file or opts.spm_model_file):
    raise UsageError("--vocab_file, --tokenizer_file or --spm_model_file is "
                     "required")
  if opts.tokenizer_file and opts.spm_model_file:
    raise UsageError("--tokenizer_file and --spm_model_file both name a "
                     "tokenizer: give one")
  if opts.merges_file and (opts.tokenizer_file or opts.spm_model_file):
    raise UsageError("--merges_file goes with --vocab_file=vocab.json, not "
                     "with --tokenizer_file or --spm_model_file")
  if opts.merges_file and opts.vocab_file == DEFAULT_VOCAB:
    raise UsageError("--merges_file needs --vocab_file=PATH/vocab.json (the "
                     "vocabulary of the same byte-level BPE)")
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
      (opts.max_ngram_size >= 0, "--max_ngram_size must be 0 (off) or more, "
       "got %d" % opts.max_ngram_size),
      (0 < opts.span_p <= 1, "--span_p must be in (0, 1], got %g"
       % opts.span_p),
      (opts.max_span_length >= 1, "--max_span_length must be at least 1, "
       "got %d" % opts.max_span_length),
  ]
  for ok, message in checks:
    if not ok:
      raise UsageError(message)
  for message in objective_errors(opts):
    raise UsageError(message)
  language_errors(opts)
  if opts.resume and opts.overwrite:
    raise UsageError("--resume keeps a stopped run's finished work and "
                     "--overwrite replaces the output: pass one of them")
  if opts.resume and opts.pool_shuffle == "groupbykey":
    raise UsageError("--resume reuses the pool files; --pool_shuffle="
                     "groupbykey keeps nothing to reuse: drop one of them")


def _input_entries(opts: MlmOptions) -> List[Tuple[Optional[str], str]]:
  """``--input``'s entries as ``(language or None, pattern)``. An entry
  that reads as a tag but names local files as it is (a Hive-style folder
  such as ``lang=en/*``) is a path; one whose both readings name files is
  refused (UsageError)."""
  out = []
  for entry in (p.strip() for p in (opts.input or "").split(",")):
    if not entry:
      continue
    language, pattern = languages.split_language(entry)
    if language and _names_local_files(entry):
      if _names_local_files(pattern):
        raise UsageError(
            "--input %r names files both as it is and as language %s's "
            "pattern %r: write ./%s for the path, or tag it as %s=%s"
            % (entry, language, pattern, entry, language, pattern))
      language, pattern = None, entry
    out.append((language, pattern))
  return out


def _names_local_files(pattern: str) -> bool:
  return "://" not in pattern and (os.path.exists(pattern)
                                   or bool(glob.glob(pattern)))


def input_patterns(opts: MlmOptions) -> List[str]:
  """The ``--input`` patterns (their language tags left out), local ones
  made absolute: a Flink worker runs in a directory of its own, where a
  relative path finds nothing (document ids do not change: they are
  relative to the input root)."""
  return [p if "://" in p else os.path.abspath(p)
          for _, p in _input_entries(opts)]


def input_languages(opts: MlmOptions) -> List[Tuple[str, str]]:
  """``(language, pattern)`` of each ``--input`` entry when they carry
  language tags (patterns as ``input_patterns`` makes them); empty when
  none does."""
  entries = _input_entries(opts)
  if not any(language for language, _ in entries):
    return []
  return [(language or "", pattern) for (language, _), pattern in
          zip(entries, input_patterns(opts))]


def language_errors(opts: MlmOptions) -> None:
  """Raises UsageError for language tags on some --input entries only,
  --langs_feature without tags, or --language_sampling_alpha without tags
  or out of (0, 1]."""
  entries = _input_entries(opts)
  tagged = [language for language, _ in entries if language]
  if tagged and len(tagged) < len(entries):
    untagged = next(p for language, p in entries if not language)
    raise UsageError("--input tags some patterns with a language and not "
                     "%s: tag every one (LANG=PATTERN) or none" % untagged)
  if opts.language_field and tagged:
    raise UsageError("--language_field and language tags on --input are two "
                     "ways to give languages: use one")
  if opts.language_field and opts.input_format not in ("jsonl", "parquet"):
    raise UsageError("--language_field needs --input_format=jsonl or parquet "
                     "(records with fields), got %s" % opts.input_format)
  if opts.langs_feature and not (tagged or (
      opts.language_field and opts.language_sampling_alpha is not None)):
    raise UsageError("--langs_feature needs the languages before the job: tag "
                     "each --input pattern with one (en=wiki/en/*,sw=wiki/sw/*)"
                     ", or with --language_field give --language_sampling_"
                     "alpha (1 keeps every language's share), whose first "
                     "pass finds them")
  alpha = opts.language_sampling_alpha
  if alpha is not None and not (tagged or opts.language_field):
    raise UsageError("--language_sampling_alpha needs languages: tag each "
                     "--input pattern with one (en=wiki/en/*,sw=wiki/sw/*) "
                     "or name the field that holds them (--language_field)")
  if alpha is not None and not 0 < alpha <= 1:
    raise UsageError("--language_sampling_alpha must be in (0, 1], got %g"
                     % alpha)


def needs_language_count(opts: MlmOptions) -> bool:
  """Whether each language's bytes must be counted by a pass over the
  input before the job: languages from a field, sampled."""
  return bool(opts.language_field) and opts.language_sampling_alpha is not None


def language_plan(opts: MlmOptions, matched: paths.MatchedInput,
                  field_sizes: Optional[Dict[str, int]] = None
                  ) -> Optional[languages.LanguagePlan]:
  """Each document's language and each language's passes, or None for a
  corpus without languages. ``field_sizes``: with ``--language_field`` and
  sampling, the bytes of each language the first pass counted. Raises
  UsageError for a file two languages' patterns match, a language no file
  was matched for, or a sampled --language_field without its sizes."""
  if opts.language_field:
    if needs_language_count(opts) and not field_sizes:
      raise UsageError("the records named no language in --language_field=%s"
                       % opts.language_field)
    try:
      return languages.field_plan(field_sizes, opts.language_sampling_alpha,
                                  opts.dupe_factor, opts.random_seed)
    except ValueError as e:
      raise UsageError(str(e)) from None
  tagged = input_languages(opts)
  if not tagged:
    return None
  files = [(paths.relative_name(f.path, matched.root), language, f.size)
           for f, language in file_languages(tagged, matched)]
  try:
    return languages.plan(files, opts.language_sampling_alpha,
                          opts.dupe_factor, opts.random_seed)
  except ValueError as e:
    raise UsageError(str(e)) from None


def compression_warning(opts: MlmOptions, matched: paths.MatchedInput
                        ) -> Optional[str]:
  """A ``warning:`` line when languages tagged on --input are sampled from
  their files' bytes and some are compressed and others not (a compressed
  byte holds several of text, so the shares would be skewed); else None."""
  if opts.language_sampling_alpha is None or opts.language_field:
    return None
  tagged = input_languages(opts)
  if not tagged:
    return None
  compressed = {}
  for f, language in file_languages(tagged, matched):
    kind = CompressionTypes.detect_compression_type(f.path)
    compressed.setdefault(language, set()).add(
        kind != CompressionTypes.UNCOMPRESSED)
  if len({flag for flags in compressed.values() for flag in flags}) < 2:
    return None
  return ("warning: --language_sampling_alpha takes each language's share "
          "from its files' bytes, and some of them are compressed and others "
          "not (%s): the shares count compressed bytes as text; compress all "
          "alike, or name each record's language with --language_field, "
          "whose first pass counts the text itself"
          % ", ".join("%s %s" % (lang, "compressed" if flags == {True}
                                 else "mixed" if len(flags) > 1
                                 else "plain")
                      for lang, flags in sorted(compressed.items())))


def file_languages(tagged: Sequence[Tuple[str, str]],
                   matched: paths.MatchedInput
                   ) -> List[Tuple[paths.InputFile, str]]:
  """Each matched file with its language: each tagged pattern is matched
  on its own, as ``paths.match_files`` matches (its bracket and literal
  fallbacks included), so every file the input matched gets the language
  of the pattern that matched it. Raises UsageError for a file two
  languages' patterns match, or one no tagged pattern matched."""
  assigned: Dict[str, str] = {}
  for language, pattern in tagged:
    try:
      found = paths.match_files([pattern])
    except paths.InputError as e:
      raise UsageError("%s (language %s)" % (e, language)) from None
    for f in found:
      key = paths.file_key(f.path)
      if assigned.setdefault(key, language) != language:
        raise UsageError("%s is matched by the patterns of %s: give each "
                         "file one language" % (f.path, " and ".join(
                             sorted({assigned[key], language}))))
  out = []
  for f in matched.files:
    language = assigned.get(paths.file_key(f.path))
    if language is None:
      raise UsageError("%s has no language: no tagged --input pattern "
                       "matched it" % f.path)
    out.append((f, language))
  return out


def unknown_flags(argv: Sequence[str]) -> List[str]:
  """Flags that neither this project nor any Beam options class knows: a
  typo would otherwise be dropped with a log line and the default used.
  Raises UsageError for a known flag with a value it cannot take."""
  parser = argparse.ArgumentParser(add_help=False, allow_abbrev=False,
                                   exit_on_error=False)

  def add_all(cls):
    for sub in cls.__subclasses__():
      try:
        sub._add_argparse_args(parser)  # pylint: disable=protected-access
      except argparse.ArgumentError:
        pass  # declared twice by two option classes
      add_all(sub)

  # Beam's parser knows add_value_provider_argument; plain argparse does not.
  parser.add_value_provider_argument = parser.add_argument
  add_all(PipelineOptions)
  try:
    _, unknown = parser.parse_known_args(list(argv))
  except argparse.ArgumentError as e:
    # A bad value (an invalid choice, a non-number): one line, not
    # argparse's usage text for every Beam flag.
    raise UsageError(str(e)) from None
  return [a for a in unknown if a.startswith("--")]


def s3_client_kwargs(options: PipelineOptions) -> Optional[dict]:
  """boto3 client settings from Beam's S3 flags, for smart-open reads."""
  s3 = options.view_as(S3Options)
  kwargs = {}
  for flag, key in (("s3_endpoint_url", "endpoint_url"),
                    ("s3_region_name", "region_name"),
                    ("s3_access_key_id", "aws_access_key_id"),
                    ("s3_secret_access_key", "aws_secret_access_key"),
                    ("s3_session_token", "aws_session_token")):
    value = getattr(s3, flag, None)
    if value:
      kwargs[key] = value
  return kwargs or None


# --- The flags as the stages' settings ---------------------------------------


def instance_params(opts: MlmOptions, pair_separators: int = 1,
                    plan: Optional[languages.LanguagePlan] = None
                    ) -> InstanceParams:
  """What CreateInstances takes from the flags; ``pair_separators`` as the
  tokenizer's ``SequenceLayout`` has it; ``plan``: ``language_plan``'s."""
  return InstanceParams(
      max_seq_length=opts.max_seq_length, short_seq_prob=opts.short_seq_prob,
      dupe_factor=opts.dupe_factor, random_seed=opts.random_seed,
      sentence_task=opts.sentence_task, packing=opts.packing,
      pair_separators=pair_separators, language_plan=plan)


def masking_params(opts: MlmOptions) -> MaskingParams:
  """What MaskTokens takes from the flags."""
  return MaskingParams(
      masked_lm_prob=opts.masked_lm_prob,
      max_predictions_per_seq=opts.max_predictions_per_seq,
      do_whole_word_mask=opts.do_whole_word_mask,
      random_seed=opts.random_seed, masking=opts.masking,
      max_ngram_size=opts.max_ngram_size, span_masking=opts.span_masking,
      span_p=opts.span_p, max_span_length=opts.max_span_length,
      token_boundary=bool(opts.token_boundary))


def example_layout(opts: MlmOptions) -> ExampleLayout:
  """What each record holds, from the flags."""
  return ExampleLayout(
      max_seq_length=opts.max_seq_length,
      max_predictions_per_seq=opts.max_predictions_per_seq,
      masking=opts.masking, sentence_task=opts.sentence_task,
      token_boundary=bool(opts.token_boundary),
      langs=bool(opts.langs_feature))


def tokenizer_settings(opts: MlmOptions,
                       s3_kwargs: Optional[dict] = None) -> TokenizerSettings:
  """Which tokenizer the flags name; ``s3_kwargs`` as ``s3_client_kwargs``
  gives them."""
  return TokenizerSettings(
      vocab_file=opts.vocab_file, tokenizer_file=opts.tokenizer_file,
      spm_model_file=opts.spm_model_file, merges_file=opts.merges_file,
      do_lower_case=opts.do_lower_case,
      albert_rules=bool(opts.albert_text_rules),
      fast_wordpiece=opts.fast_wordpiece,
      special_tokens={role: getattr(opts, role + "_token")
                      for role in ("cls", "sep", "mask", "pad", "unk")
                      if getattr(opts, role + "_token")} or None,
      s3_client_kwargs=s3_kwargs)
