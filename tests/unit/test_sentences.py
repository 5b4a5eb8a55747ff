"""Sentence splitting and the SplitSentences / Tokenize composites."""

import apache_beam as beam
from apache_beam.testing.util import assert_that, equal_to

from tests.helpers import VOCAB, local_test_pipeline
from transforms import sentences
from transforms import tokenization
from transforms.tokenization import Tokenize, TokenizerSettings


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
    out, rejected = (p | beam.Create(docs)
                     | sentences.SplitSentences("wikiextractor"))
    assert_that(out, equal_to([("w:0", ["One here.", "Two here.", "Three."]),
                               ("w:9", ["Solo"])]))
    assert_that(rejected, equal_to([]), label="no rejects")


def test_a_document_the_splitter_rejects_is_set_aside(monkeypatch):
  """Whatever a document makes the splitter raise, it is set aside and the
  job goes on (the in-process runner sees the patched splitter)."""
  real = sentences.load_splitter()

  def fragile(text):
    if "BAD" in text:
      raise ValueError("cannot split this")
    return real(text)

  monkeypatch.setattr(sentences, "load_splitter", lambda: fragile)
  docs = [("w:0", ["One here. Two here."]), ("w:9", ["A BAD text."])]
  with local_test_pipeline() as p:
    out, rejected = (p | beam.Create(docs)
                     | sentences.SplitSentences("wikiextractor"))
    assert_that(out, equal_to([("w:0", ["One here.", "Two here."])]))
    assert_that(rejected | beam.Map(lambda r: (r.doc_id, r.stage, r.reason,
                                               r.error, r.sample)),
                equal_to([("w:9", "split", "split_error",
                           "ValueError: cannot split this", "A BAD text.")]),
                label="rejected")


def test_lines_format_passes_through():
  docs = [("l:0", ["Already. One line.", "Two."])]
  with local_test_pipeline() as p:
    out, rejected = p | beam.Create(docs) | sentences.SplitSentences("lines")
    assert_that(out, equal_to(docs))
    assert_that(rejected, equal_to([]), label="no rejects")


def test_tokenize_transform():
  docs = [("a", ["Hello world.", "\u200b"]), ("b", ["\u200b"]),
          ("c", ["The end."])]
  with local_test_pipeline() as p:
    tokenized, rejected = (
        p | beam.Create(docs)
        | Tokenize(TokenizerSettings(vocab_file=VOCAB, do_lower_case=True)))
    out = tokenized | beam.Map(lambda d: (d.doc_id, d.ids.tolist(),
                                          d.sentence_lengths.tolist()))
    assert_that(out, equal_to([("a", [7592, 2088, 1012], [3]),
                               ("c", [1996, 2203, 1012], [3])]))
    assert_that(rejected, equal_to([]), label="no rejects")


def test_a_document_the_tokenizer_rejects_is_set_aside(monkeypatch):
  """The batch it was in is tokenized one document at a time; only the
  document that raises is set aside."""
  real = tokenization.tokenize_documents

  def fragile(docs, tokenizer, vocab):
    docs = list(docs)
    if any("BAD" in s for _, sentences_ in docs for s in sentences_):
      raise RuntimeError("tokenizer failure")
    return real(docs, tokenizer, vocab)

  monkeypatch.setattr(tokenization, "tokenize_documents", fragile)
  docs = [("a", ["Hello world."]), ("d", ["A BAD text."]), ("c", ["The end."])]
  with local_test_pipeline() as p:
    tokenized, rejected = (
        p | beam.Create(docs) | beam.combiners.ToList() | beam.FlatMap(list)
        | Tokenize(TokenizerSettings(vocab_file=VOCAB, do_lower_case=True)))
    assert_that(tokenized | beam.Map(lambda d: d.doc_id), equal_to(["a", "c"]))
    assert_that(rejected | beam.Map(lambda r: (r.doc_id, r.stage, r.reason,
                                               r.error)),
                equal_to([("d", "tokenize", "tokenize_error",
                           "RuntimeError: tokenizer failure")]),
                label="rejected")
