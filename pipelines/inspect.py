"""Check an output and print examples decoded back to text.

Usage:
  python -m pipelines.inspect OUTPUT [--num=5] [--shard=part-00003-of-00008.tfrecord]
      [--vocab_file=…] [--no_validate] [Beam's S3 flags: --s3_endpoint_url=…]

``OUTPUT`` is what ``pipelines.mlm --output`` wrote (a local folder or an
``s3://`` prefix, TFRecord or Parquet), or one plain TFRecord file such as
google-research/bert's ``create_pretraining_data.py`` writes.

First every shard is validated (``pipelines.records.validate``): each
record's CRCs, its features against the schema in ``summary.json``, its
values (ids in the vocabulary, ``[CLS]`` … ``[SEP]``, segments, masked
positions, labels, ALBERT's ``token_boundary`` against the vocabulary's
word starts, XLM's ``langs``: one id over the row, one of the languages
``summary.json`` records), each shard's size, the number of records against the
instances ``summary.json`` counts, and that its document counters add up
(``documents_read`` = documents kept + dropped + set aside, the identity
``transforms.metrics.document_balance`` states; not checked for a summary
written before those counters). Then the first ``--num`` examples (of
``--shard`` when given) are printed with the vocabulary ``summary.json``
records (``--vocab_file`` overrides it): segments A and B, each masked
position as ``{shown→original}``, the sentence label, how many tokens
start a word when the records hold ALBERT's ``token_boundary``, and the
language when they hold XLM's ``langs``.

Exit status: 0 when everything holds; 1 with one ``error:`` line naming the
shard and the record when anything is invalid (a shard that cannot be read,
a corrupt record), or any other failure, also one ``error:`` line; 2 for a
bad flag or an output that cannot be opened (missing, an unreadable or
malformed ``summary.json``, a vocabulary that cannot be loaded). Nothing is
written.
"""

from typing import Dict, List, Optional, Sequence

from apache_beam.io.filesystems import FileSystems
from apache_beam.options.pipeline_options import PipelineOptions

from pipelines import cli, records
from pipelines.options import s3_client_kwargs
from runners import direct
from transforms import tokenizer_families

LABELS = {
    "nsp": ("next sentence", {0: "B follows A", 1: "B is random"}),
    "sop": ("sentence order", {0: "in order", 1: "swapped"}),
}


def detokenize(tokens: Sequence[str]) -> str:
  """WordPiece tokens as text: ``##`` pieces joined to the piece before."""
  return " ".join(tokenizer_families.wordpiece_words(tokens))


def render(example: records.Example, vocab: Sequence[str],
           sentence_task: str,
           language_names: Optional[Dict[int, str]] = None) -> List[str]:
  """The lines that show one example: header, A, B, masked predictions.
  ``language_names``: ``{id: language}`` (``Output.language_names``) to
  name the language of an example with XLM's ``langs``."""
  def token(i):
    return vocab[i] if 0 <= i < len(vocab) else "<id %d>" % i
  shown = [token(i) for i in example.input_ids]
  masked = dict(zip(example.masked_positions.tolist(),
                    example.masked_ids.tolist()))
  marked = list(shown)
  for position, original in masked.items():
    marked[position] = "{%s→%s}" % (shown[position], token(original))
  header = "%s record %d: %d tokens" % (example.shard, example.index,
                                        len(shown))
  if example.token_boundary is not None:
    header += " (%d word starts, [CLS] and [SEP]s included)" % int(
        example.token_boundary.sum())
  if example.langs is not None:
    header += ", language %s (langs %d)" % (
        (language_names or {}).get(example.langs, "?"), example.langs)
  if example.label is not None and sentence_task in LABELS:
    name, meaning = LABELS[sentence_task]
    header += ", %s label %d (%s)" % (name, example.label,
                                      meaning.get(example.label, "?"))
  lines = [header]
  segments = example.segment_ids
  body = range(1, len(shown) - 1)  # without [CLS] and the last [SEP]
  a = [marked[i] for i in body if segments[i] == 0]
  b = [marked[i] for i in body if segments[i] == 1]
  if b and a:
    a = a[:-1]  # the [SEP] that ends A
  lines.append("  A: " + detokenize(a))
  if b or sentence_task != "none":
    lines.append("  B: " + detokenize(b))
  if masked:
    kinds = []
    for position, original in masked.items():
      if example.input_ids[position] == original:
        kinds.append("kept")
      elif shown[position] == "[MASK]":
        kinds.append("[MASK]")
      else:
        kinds.append("random")
    lines.append("  %d masked: %s" % (len(masked), ", ".join(
        "%d %s" % (kinds.count(k), k) for k in ("[MASK]", "random", "kept")
        if k in kinds)))
  return lines


def main(argv: Optional[Sequence[str]] = None) -> int:
  """Runs the command; returns its exit status. A failure it does not
  foresee raises (``__main__`` makes it one ``error:`` line)."""
  # pylint: disable=import-outside-toplevel
  from transforms.tokenization import VocabularyError
  parser = cli.ArgumentParser(
      prog="python -m pipelines.inspect",
      description=__doc__.split("\n")[0])
  parser.add_argument("output")
  parser.add_argument("--num", type=int, default=5,
                      help="Examples to print (0: none).")
  parser.add_argument("--shard", default=None,
                      help="Print (and check only) this shard, by name.")
  parser.add_argument("--vocab_file", default=None,
                      help="The vocabulary (or tokenizer.json) to decode "
                      "with, instead of the one summary.json records.")
  parser.add_argument("--no_validate", action="store_true",
                      help="Only print examples.")
  args, beam_args = parser.parse_known_args(argv)
  if args.num < 0:
    parser.error("--num must be 0 or more")
  options = PipelineOptions(beam_args)
  FileSystems.set_options(options)
  try:
    output = records.open_output(args.output)
  except records.InvalidOutput as e:
    cli.error(str(e))
    return 2
  names = [s["path"] for s in output.shards]
  if args.shard is not None and args.shard not in names:
    cli.error("no shard %r in %s (it has %s)" % (
        args.shard, args.output, ", ".join(names) or "none"))
    return 2
  try:
    vocab = records.vocabulary(output, args.vocab_file,
                               s3_client_kwargs(options))
  except VocabularyError as e:
    cli.error("%s (pass --vocab_file)" % e)
    return 2
  if output.format == "megatron":
    return _inspect_megatron(output, vocab, args)
  if not args.no_validate:
    try:
      checked = records.validate(
          output, vocab.size, vocab.cls_id, vocab.sep_id,
          None if args.shard is None else [args.shard],
          is_continuation=vocab.is_continuation)
    except records.InvalidOutput as e:
      cli.error(str(e))
      return 1
    total = sum(n for n, _ in checked.values())
    for name, (n, size) in checked.items():
      print("%s: %d records, %.1f MB, valid" % (name, n, size / 1e6))
    print("%d shards, %d records: every record's %s, features and values "
          "hold%s" % (len(checked), total,
                      "layout" if output.format == "mds" else "checksums",
                      "" if args.shard else
                      ", and the count matches summary.json"
                      + (" and index.json lists every shard"
                         if output.format == "mds" else "")))
    balance = records.document_balance(output.summary)
    if balance is not None:
      read, _, terms = balance
      print("summary.json: %d documents read = %d kept + %d dropped or set "
            "aside" % (read, terms.get("documents", 0),
                       read - terms.get("documents", 0)))
  if args.num and names:
    print()
    printed = 0
    try:
      for shard in [args.shard] if args.shard else names:
        if printed == args.num:
          break  # no more shard is opened
        for example in records.examples(output, shard):
          print("\n".join(render(example, vocab.tokens,
                                 output.sentence_task,
                                 output.language_names)))
          printed += 1
          if printed == args.num:
            break
    except records.InvalidOutput as e:
      cli.error(str(e))
      return 1
  return 0


def _inspect_megatron(output: records.Output, vocab, args) -> int:
  """``main`` for a Megatron indexed dataset: validates it
  (``records.validate_megatron``), then prints its first ``--num``
  sequences decoded, each with its document."""
  try:
    if not args.no_validate:
      checked = records.validate_megatron(output, vocab.size)
      for prefix, (sequences, size) in checked.items():
        index = records.megatron_index(output, prefix)
        print("%s: %d sequences in %d documents, %s tokens, %.1f MB, valid"
              % (prefix, sequences, index.document_indices.size - 1,
                 index.dtype.name, size / 1e6))
      print("%d Megatron datasets: the index, the ids and the counts of "
            "summary.json hold" % len(checked))
    if args.num:
      for prefix in records.megatron_prefixes(output):
        print()
        for i, document, ids in records.megatron_sequences(
            output, prefix, args.num):
          print("%s sequence %d (document %d): %d tokens" % (
              prefix, i, document, ids.size))
          print("  " + detokenize([vocab.tokens[t] for t in ids.tolist()]))
  except records.InvalidOutput as e:
    cli.error(str(e))
    return 1
  return 0


if __name__ == "__main__":
  # Skips the interpreter's teardown once the output is flushed: a
  # library's C++ thread pool torn down at exit aborted this process
  # now and then ("terminate called without an active exception").
  direct.exit_now(cli.run_command(main, what="inspect"))
