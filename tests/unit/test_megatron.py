"""transforms/megatron.py's plain functions: the dtype rule, the layouts,
the fragments and their merge into one .bin/.idx pair (the bytes laid out
as megatron-core 0.16's ``_IndexWriter`` writes them; that its own reader
reads them is tests/e2e/test_megatron.py's)."""

import os
import struct

import numpy as np
import pytest

from pipelines import options
from transforms import megatron
from transforms.tokenization import TokenizedDocument


def _doc(doc_id, sentences):
  ids = np.array([i for s in sentences for i in s], dtype=np.int32)
  return TokenizedDocument(doc_id, ids,
                           np.array([len(s) for s in sentences], np.int32))


def test_token_dtype_is_megatrons_rule():
  assert megatron.token_dtype(30522) == np.uint16
  assert megatron.token_dtype(65499) == np.uint16
  assert megatron.token_dtype(65500) == np.int32
  assert megatron.token_dtype(250002) == np.int32


def test_sequence_lengths_by_layout_skip_empty_sentences():
  doc = _doc("d", [[1, 2], [], [3, 4, 5]])
  assert megatron.sequence_lengths(doc, "sentences").tolist() == [2, 3]
  assert megatron.sequence_lengths(doc, "doc").tolist() == [5]
  with pytest.raises(ValueError):
    megatron.sequence_lengths(doc, "pairs")


def test_sequence_pointers_are_byte_offsets():
  lengths = np.array([3, 1, 4], dtype=np.int32)
  assert megatron.sequence_pointers(lengths, 2, 10).tolist() == [10, 16, 18]
  assert megatron.sequence_pointers(lengths[:0], 2).tolist() == []


def _parse_idx(data: bytes):
  assert data[:9] == b"MMIDIDX\x00\x00"
  version, code = struct.unpack_from("<QB", data, 9)
  sequences, documents = struct.unpack_from("<QQ", data, 18)
  at = 34
  lengths = np.frombuffer(data, "<i4", sequences, at)
  at += 4 * sequences
  pointers = np.frombuffer(data, "<i8", sequences, at)
  at += 8 * sequences
  doc_index = np.frombuffer(data, "<i8", documents, at)
  assert at + 8 * documents == len(data)
  return version, code, lengths, pointers, doc_index


@pytest.mark.parametrize("packing", megatron.PACKINGS)
def test_fragments_merge_in_group_order_into_one_pair(packing, tmp_path):
  directory = str(tmp_path / "fragments")
  groups = {
      3: [_doc("c", [[7, 8, 9]]), _doc("d", [[10], [11, 12]])],
      0: [_doc("a", [[1, 2], [3]]), _doc("e", [[], []]),
          _doc("b", [[4, 5, 6]])],
      5: [_doc("z", [[]])],  # no sequence: no fragment
  }
  os.makedirs(directory)
  fragments = [megatron.write_fragment(directory, g, docs, packing,
                                       np.dtype(np.uint16))
               for g, docs in groups.items()]
  assert fragments[2] is None
  prefix = str(tmp_path / "out" / "data")
  os.makedirs(os.path.dirname(prefix))
  made = megatron.merge(directory, fragments[:2], prefix, np.uint16)
  if packing == "sentences":
    sequences = [[1, 2], [3], [4, 5, 6], [7, 8, 9], [10], [11, 12]]
    doc_index = [0, 2, 3, 4, 6]
  else:
    sequences = [[1, 2, 3], [4, 5, 6], [7, 8, 9], [10, 11, 12]]
    doc_index = [0, 1, 2, 3, 4]
  assert made == (len(sequences), 4, 12)
  with open(prefix + ".bin", "rb") as f:
    tokens = np.frombuffer(f.read(), "<u2")
  with open(prefix + ".idx", "rb") as f:
    version, code, lengths, pointers, found_index = _parse_idx(f.read())
  assert (version, code) == (1, 8)  # DType.uint16
  assert tokens.tolist() == list(range(1, 13))
  assert lengths.tolist() == [len(s) for s in sequences]
  assert [tokens[p // 2:p // 2 + n].tolist()
          for p, n in zip(pointers, lengths)] == sequences
  assert found_index.tolist() == doc_index


def test_documents_for_pool_orders_by_document_id():
  entries = [(0, _doc("b", [[1]])), (0, _doc("a", [[2]]))]
  (docs,) = megatron.documents_for_pool(0, entries)
  assert [d.doc_id for d in docs] == ["a", "b"]
  assert list(megatron.documents_for_pool(0, [])) == []


def test_megatron_output_resolves_to_one_unmasked_pass_of_sentences():
  opts = options.MlmOptions(["--input=x", "--output=y",
                             "--output_format=megatron"])
  options.resolve(opts)
  assert (opts.packing, opts.sentence_task, opts.masking,
          opts.dupe_factor) == ("sentences", "none", "none", 1)
  assert list(options.objective_errors(opts)) == []
  opts = options.MlmOptions(["--input=x", "--output=y", "--preset=bert",
                             "--output_format=megatron", "--packing=doc"])
  options.resolve(opts)
  assert opts.packing == "doc" and list(options.objective_errors(opts)) == []


def test_read_index_and_its_problems():
  lengths = np.array([2, 3], dtype="<i4")
  pointers = megatron.sequence_pointers(lengths, 2)
  data = (megatron.index_header(np.uint16, 2, 1) + lengths.tobytes()
          + pointers.astype("<i8").tobytes()
          + np.array([0, 2], "<i8").tobytes())
  index = megatron.read_index(data)
  assert index.dtype == np.uint16
  assert index.lengths.tolist() == [2, 3]
  assert index.document_indices.tolist() == [0, 2]
  assert megatron.index_problem(index, 10) is None
  assert "the .bin holds 8" in megatron.index_problem(index, 8)
  with pytest.raises(ValueError, match="header"):
    megatron.read_index(b"NOTANIDX" + data[8:])
  with pytest.raises(ValueError, match="bytes, not the"):
    megatron.read_index(data[:-1])
  moved = megatron.Index(index.dtype, index.lengths,
                         np.array([0, 6], np.int64), index.document_indices)
  assert megatron.index_problem(moved, 10) == (
      "sequence 1 starts at byte 6, not 4")
  unended = megatron.Index(index.dtype, index.lengths, index.pointers,
                           np.array([0, 1], np.int64))
  assert "document indices" in megatron.index_problem(unended, 10)


def test_the_megatron_bert_preset_writes_megatrons_sentences():
  opts = options.MlmOptions(["--input=x", "--output=y",
                             "--preset=megatron-bert"])
  options.resolve(opts)
  assert (opts.output_format, opts.packing, opts.masking,
          opts.dupe_factor) == ("megatron", "sentences", "none", 1)
  assert list(options.objective_errors(opts)) == []
  plain = options.MlmOptions(["--input=x", "--output=y", "--preset=bert"])
  options.resolve(plain)
  assert plain.output_format == "tfrecord"
  other = options.MlmOptions(["--input=x", "--output=y",
                              "--preset=megatron-bert",
                              "--output_format=parquet"])
  options.resolve(other)
  assert "a layout of --output_format=megatron" in next(
      options.objective_errors(other))
