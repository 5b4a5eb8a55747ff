"""SplitSentences: ``(doc_id, [text lines])`` → ``(doc_id, [sentences])``.

In the ``lines`` format every line already is a sentence. In the other
formats each line is a paragraph, split by blingfire's finite-state sentence
breaker (measured about 10 MB/s on one core here, far ahead of the
tokenizer, so it never becomes the bottleneck).
"""

from typing import Callable, List

import apache_beam as beam

from transforms import rejects


Splitter = Callable[[str], str]


def load_splitter() -> Splitter:
  """blingfire's ``text_to_sentences``: text in, sentences joined by \\n out."""
  import blingfire  # pylint: disable=import-outside-toplevel
  return blingfire.text_to_sentences


def split_paragraphs(paragraphs: List[str], splitter: Splitter) -> List[str]:
  """Every non-blank sentence of every paragraph, in order."""
  sentences = []
  for paragraph in paragraphs:
    if not paragraph.strip():
      continue
    sentences.extend(s for s in splitter(paragraph).split("\n") if s.strip())
  return sentences


class _SplitDoFn(beam.DoFn):
  """Splits each document's paragraphs; a document whose split raises is set
  aside on the ``REJECTED`` output."""

  def __init__(self):
    self._splitter = None

  def setup(self):
    self._splitter = load_splitter()

  def process(self, element):
    doc_id, paragraphs = element
    try:
      sentences = split_paragraphs(paragraphs, self._splitter)
    except Exception as e:  # pylint: disable=broad-except
      yield rejects.reject_exception(doc_id, "split", e, "\n".join(paragraphs))
      return
    yield doc_id, sentences


class SplitSentences(beam.PTransform):
  """Output: ``(documents, rejected)``: ``(doc_id, [sentences])`` and
  ``rejects.Rejected``."""

  def __init__(self, input_format: str):
    super().__init__()
    self._format = input_format

  def expand(self, docs):
    if self._format == "lines":
      # One sentence per line already: no step to set anything aside (an
      # empty Create would cost the job's start two steps, not one).
      return docs, (docs.pipeline
                    | "NoRejects" >> beam.Impulse()
                    | "Nothing" >> beam.FlatMap(lambda _: ()).with_output_types(
                        rejects.Rejected))
    split = docs | "Split" >> beam.ParDo(_SplitDoFn()).with_outputs(
        rejects.REJECTED, main="documents")
    return split.documents, split[rejects.REJECTED]
