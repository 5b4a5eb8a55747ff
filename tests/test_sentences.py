"""Sentence splitting and the SplitSentences / Tokenize composites."""

import apache_beam as beam
from apache_beam.testing.util import assert_that, equal_to

from tests.helpers import VOCAB, local_test_pipeline
from transforms import sentences
from transforms.tokenization import Tokenize


def test_split_paragraphs_with_blingfire():
  splitter = sentences.load_splitter()
  got = sentences.split_paragraphs(
      ["Dr. Smith arrived at 5 p.m. on Monday. He left early!", "  ",
       "A second paragraph? Yes."], splitter)
  assert got == ["Dr. Smith arrived at 5 p.m. on Monday.", "He left early!",
                 "A second paragraph?", "Yes."]


def test_split_sentences_transform():
  docs = [("w:0", ["One here. Two here.", "Three."]), ("w:9", ["Solo"])]
  with local_test_pipeline() as p:
    out = p | beam.Create(docs) | sentences.SplitSentences("wikiextractor")
    assert_that(out, equal_to([("w:0", ["One here.", "Two here.", "Three."]),
                               ("w:9", ["Solo"])]))


def test_lines_format_passes_through():
  docs = [("l:0", ["Already. One line.", "Two."])]
  with local_test_pipeline() as p:
    out = p | beam.Create(docs) | sentences.SplitSentences("lines")
    assert_that(out, equal_to(docs))


def test_tokenize_transform():
  docs = [("a", ["Hello world.", "\u200b"]), ("b", ["\u200b"]),
          ("c", ["The end."])]
  with local_test_pipeline() as p:
    out = (p | beam.Create(docs)
           | Tokenize(vocab_file=VOCAB, tokenizer_file=None, do_lower_case=True)
           | beam.Map(lambda d: (d.doc_id, d.ids.tolist(),
                                 d.sentence_lengths.tolist())))
    assert_that(out, equal_to([("a", [7592, 2088, 1012], [3]),
                               ("c", [1996, 2203, 1012], [3])]))
