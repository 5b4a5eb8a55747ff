"""pipelines/options.py: the presets expand, and flags given explicitly win
over them (the refusals the CLI prints: tests/e2e/test_objectives.py)."""

from pipelines import options


def _resolved(flags):
  from apache_beam.options.pipeline_options import PipelineOptions  # pylint: disable=import-outside-toplevel
  opts = PipelineOptions(["--input=x", "--output=y"] + flags).view_as(
      options.MlmOptions)
  options.resolve(opts)
  return opts


def test_presets_expand_and_explicit_flags_win():
  bert = _resolved([])
  assert (bert.sentence_task, bert.packing, bert.masking, bert.dupe_factor,
          bert.max_seq_length, bert.max_ngram_size) == (
              "nsp", "pairs", "static", 10, 128, 0)
  roberta = _resolved(["--preset=roberta"])
  assert (roberta.sentence_task, roberta.packing, roberta.masking,
          roberta.dupe_factor, roberta.max_seq_length) == (
              "none", "full_sentences", "none", 1, 512)
  albert = _resolved(["--preset=albert"])
  assert (albert.sentence_task, albert.max_ngram_size,
          albert.do_whole_word_mask, albert.max_seq_length) == (
              "sop", 3, True, 512)
  electra = _resolved(["--preset=electra"])
  assert (electra.sentence_task, electra.packing, electra.masking,
          electra.max_seq_length, electra.dupe_factor) == (
              "none", "pairs", "none", 128, 1)
  mine = _resolved(["--preset=roberta", "--max_seq_length=128",
                    "--packing=doc_sentences", "--dupe_factor=3"])
  assert (mine.max_seq_length, mine.packing, mine.masking,
          mine.dupe_factor) == (128, "doc_sentences", "none", 3)
  # Asking for masking at training time drops the preset's masking choice.
  albert_dynamic = _resolved(["--preset=albert", "--masking=none"])
  assert albert_dynamic.max_ngram_size == 0
  assert not albert_dynamic.do_whole_word_mask
  options.validate(albert_dynamic)
  # Spans asked for replace the preset's n-grams.
  albert_spans = _resolved(["--preset=albert", "--span_masking=geometric"])
  assert albert_spans.max_ngram_size == 0 and albert_spans.sentence_task == "sop"
  options.validate(albert_spans)
  # A flag given with the default's value still wins over the preset.
  assert _resolved(["--preset=roberta", "--max_seq_length=128"]
                   ).max_seq_length == 128




def test_token_boundary_defaults_from_the_albert_preset():
  """ALBERT's token_boundary is written with --preset=albert (its
  create_pretraining_data.py writes it), not otherwise, and the flag given
  explicitly wins either way; the examples' layout and the masking take
  it."""
  assert not _resolved([]).token_boundary
  assert not _resolved(["--preset=roberta"]).token_boundary
  assert _resolved(["--preset=albert"]).token_boundary
  assert _resolved(["--preset=albert", "--masking=none"]).token_boundary
  # Not by default in Parquet, whose collators would not pad it.
  assert not _resolved(["--preset=albert",
                        "--output_format=parquet"]).token_boundary
  assert not _resolved(["--preset=albert",
                        "--token_boundary=false"]).token_boundary
  for flags in (["--token_boundary"], ["--token_boundary=true"]):
    bert = _resolved(flags)
    assert bert.token_boundary is True
    assert options.example_layout(bert).token_boundary
    assert options.masking_params(bert).token_boundary
  bert = _resolved([])
  assert not options.example_layout(bert).token_boundary
  assert not options.masking_params(bert).token_boundary
