"""Megatron-LM's indexed dataset (``--output_format=megatron``): the token
ids of every document as one ``.bin``/``.idx`` pair per run, which
``megatron.core.datasets.indexed_dataset.IndexedDataset`` reads and
Megatron's BERT dataset masks and pairs at training time.

The format, as megatron-core 0.16's ``indexed_dataset.py`` writes and reads
it (``_IndexWriter``, ``_IndexReader``), all little-endian:

* ``.bin``: every sequence's token ids back to back, of the index's dtype.
* ``.idx``: ``b"MMIDIDX\\x00\\x00"``, version (uint64, 1), dtype code
  (uint8, ``DTYPE_CODES``), sequence count S (uint64), document count D
  (uint64); then the S sequence lengths (int32, in tokens), the S sequence
  pointers (int64, byte offsets into ``.bin``), and the D document indices
  (int64: 0, then the number of sequences up to the end of each document).

Layouts (``--packing``), as Megatron's ``tools/preprocess_data.py`` makes
them: ``sentences`` (its ``--split-sentences``, what Megatron's BERT
dataset reads: one sequence per sentence, documents marked), or ``doc``
(one sequence per document). The files are named as that tool names them
for the key ``text``: ``text_sentence`` or ``text_document`` (the
``--data-path`` prefix). No special token is added: the trainer adds
``[CLS]``/``[SEP]`` when it builds its samples.

How a run writes it. Each document goes to a pool group by its entry hash
(transforms/pool_files.py, one pass per document); each group's documents,
in their pools' order and by document id within a pool
(``instances.sorted_entries``), become one *fragment* (tokens and index
arrays) in the pool directory, written by whichever worker builds the
group; once every group is written, one step concatenates the fragments'
tokens into the ``.bin`` and writes the ``.idx`` from their index arrays,
one fragment at a time (``merge``): memory is bounded by one group, and the
order, and so every byte, is the same for any number of workers and on any
runner. Each group is recorded once its fragment is written
(``shards.write_group_record``): a resumed run (pipelines/resume.py) builds
the others and merges its fragments with the recorded ones.
"""

import dataclasses
import io
import struct
from typing import (Dict, Iterable, Iterator, List, Optional, Sequence,
                    Tuple)

import apache_beam as beam
import numpy as np
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

from transforms import metrics, pool_files, s3_clients, shards
from transforms.instances import sorted_entries
from transforms.tokenization import TokenizedDocument

# --packing values of this format (transforms.instances.PACKINGS are the
# others'); the first is the default.
PACKINGS = ("sentences", "doc")
# The --data-path prefix of each layout, as tools/preprocess_data.py names
# its output for the JSON key "text".
DATASET_NAMES = {"sentences": "text_sentence", "doc": "text_document"}
BIN_SUFFIX = ".bin"
IDX_SUFFIX = ".idx"
NPZ_SUFFIX = ".npz"  # a fragment's index arrays

INDEX_HEADER = b"MMIDIDX\x00\x00"
INDEX_VERSION = 1
# megatron.core.datasets.indexed_dataset.DType.
DTYPE_CODES = {np.dtype(np.uint8): 1, np.dtype(np.int8): 2,
               np.dtype(np.int16): 3, np.dtype(np.int32): 4,
               np.dtype(np.int64): 5, np.dtype(np.float64): 6,
               np.dtype(np.float32): 7, np.dtype(np.uint16): 8}
# DType.optimal_dtype: uint16 below this many ids, int32 from it.
UINT16_BELOW = 65500
_COPY_BYTES = 8 << 20
FRAGMENTS_DIR = "megatron"


def token_dtype(vocab_size: int) -> np.dtype:
  """The ``.bin``'s dtype for a vocabulary of ``vocab_size`` ids, as
  Megatron chooses it (``DType.optimal_dtype``): uint16 below 65,500 ids,
  int32 otherwise."""
  return np.dtype(np.uint16 if vocab_size < UINT16_BELOW else np.int32)


def sequence_lengths(doc: TokenizedDocument, packing: str) -> np.ndarray:
  """int32 lengths of the document's sequences in ``packing``'s layout:
  each non-empty sentence (``sentences``; Megatron skips empty ones), or
  the whole document (``doc``; none for a document without tokens).
  Raises ValueError for another layout."""
  if packing == "sentences":
    lengths = np.asarray(doc.sentence_lengths, dtype=np.int32)
    return lengths[lengths > 0]
  if packing == "doc":
    return np.array([doc.ids.size] if doc.ids.size else [], dtype=np.int32)
  raise ValueError("unknown Megatron layout %r (one of %s)"
                   % (packing, ", ".join(PACKINGS)))


def index_header(dtype: np.dtype, sequences: int, documents: int) -> bytes:
  """The ``.idx``'s fixed start: magic, version, dtype code, the sequence
  count and the document count (the number of document indices, one more
  than the documents)."""
  return (INDEX_HEADER + struct.pack("<Q", INDEX_VERSION)
          + struct.pack("<B", DTYPE_CODES[np.dtype(dtype)])
          + struct.pack("<QQ", sequences, documents + 1))


def sequence_pointers(lengths: np.ndarray, itemsize: int,
                      start: int = 0) -> np.ndarray:
  """int64 byte offset of each sequence in ``.bin``: ``start`` for the
  first, then each one after the one before."""
  pointers = np.empty(lengths.size, dtype=np.int64)
  if lengths.size:
    pointers[0] = start
    np.cumsum(lengths[:-1].astype(np.int64) * itemsize, out=pointers[1:])
    pointers[1:] += start
  return pointers


@dataclasses.dataclass(frozen=True)
class Index:
  """An ``.idx`` file's content: the tokens' ``dtype``, and per sequence its
  length (int32) and byte offset in ``.bin`` (int64), and the document
  indices (int64, ``[documents + 1]``)."""
  dtype: np.dtype
  lengths: np.ndarray
  pointers: np.ndarray
  document_indices: np.ndarray


def read_index(data: bytes) -> Index:
  """Parses an ``.idx`` file's bytes (the layout in the module's
  docstring). Raises ValueError when they are not one: another magic or
  version, an unknown dtype code, or a size that disagrees with the
  counts."""
  fixed = len(INDEX_HEADER) + 8 + 1 + 16
  if len(data) < fixed or not data.startswith(INDEX_HEADER):
    raise ValueError("not a Megatron index (no %r header)" % INDEX_HEADER)
  version, code = struct.unpack_from("<QB", data, len(INDEX_HEADER))
  if version != INDEX_VERSION:
    raise ValueError("index version %d, not %d" % (version, INDEX_VERSION))
  dtypes = {c: t for t, c in DTYPE_CODES.items()}
  if code not in dtypes:
    raise ValueError("unknown dtype code %d" % code)
  sequences, documents = struct.unpack_from("<QQ", data, fixed - 16)
  if len(data) != fixed + 12 * sequences + 8 * documents:
    raise ValueError("%d bytes, not the %d that %d sequences and %d "
                     "document indices take" % (
                         len(data), fixed + 12 * sequences + 8 * documents,
                         sequences, documents))
  lengths = np.frombuffer(data, "<i4", sequences, fixed)
  pointers = np.frombuffer(data, "<i8", sequences, fixed + 4 * sequences)
  doc_index = np.frombuffer(data, "<i8", documents, fixed + 12 * sequences)
  return Index(dtypes[code], lengths, pointers, doc_index)


def index_problem(index: Index, bin_bytes: int) -> Optional[str]:
  """Why ``index`` does not describe a ``.bin`` of ``bin_bytes`` bytes as
  Megatron's reader expects, or None: every pointer where the sequences
  before it end, the last ending at the file's end, the document indices
  rising from 0 to the sequence count."""
  itemsize = index.dtype.itemsize
  if (index.lengths < 0).any():
    return "a negative sequence length"
  expected = sequence_pointers(index.lengths, itemsize)
  if not np.array_equal(expected, index.pointers):
    first = int(np.argmax(expected != index.pointers))
    return "sequence %d starts at byte %d, not %d" % (
        first, int(index.pointers[first]), int(expected[first]))
  total = int(index.lengths.sum(dtype=np.int64)) * itemsize
  if total != bin_bytes:
    return "the sequences take %d bytes, the .bin holds %d" % (total,
                                                               bin_bytes)
  docs = index.document_indices
  if (not docs.size or docs[0] != 0 or docs[-1] != index.lengths.size
      or (np.diff(docs) < 0).any()):
    return ("the document indices do not rise from 0 to the %d sequences"
            % index.lengths.size)
  return None


@dataclasses.dataclass(frozen=True)
class Fragment:
  """One pool group's share of the dataset in the fragment directory:
  ``NAME.bin`` (its tokens) and ``NAME.npz`` (``lengths``: int32 per
  sequence; ``ends``: int64 per document, its sequences so far)."""
  group: int
  name: str
  sequences: int
  documents: int
  tokens: int


def documents_for_pool(pool_id: int,
                       entries: Sequence[Tuple[int, TokenizedDocument]]
                       ) -> Iterator[List[TokenizedDocument]]:
  """The pool builder of this format (``pool_files.InstancesFromSpill``'s
  ``build``): the pool's documents, in ``sorted_entries``' order (by
  document id), as one element."""
  del pool_id
  docs = [doc for _, doc in sorted_entries(entries)]
  if docs:
    yield docs


def fragment_arrays(docs: Iterable[TokenizedDocument], packing: str,
                    dtype: np.dtype
                    ) -> Tuple[List[bytes], np.ndarray, np.ndarray]:
  """``(token bytes per document, sequence lengths, document ends)`` of
  ``docs`` in ``packing``'s layout; a document with no sequence is
  skipped."""
  chunks, lengths, ends, total = [], [], [], 0
  for doc in docs:
    doc_lengths = sequence_lengths(doc, packing)
    if not doc_lengths.size:
      continue
    # An empty sentence holds no token: the ids are the sequences' as they are.
    chunks.append(np.ascontiguousarray(doc.ids, dtype=dtype).tobytes())
    lengths.append(doc_lengths)
    total += doc_lengths.size
    ends.append(total)
  return (chunks,
          np.concatenate(lengths) if lengths else np.zeros(0, np.int32),
          np.array(ends, dtype=np.int64))


def _open(path: str):
  return FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED)


def _create(path: str):
  return FileSystems.create(path,
                            compression_type=CompressionTypes.UNCOMPRESSED)


def write_fragment(directory: str, group: int,
                   docs: Iterable[TokenizedDocument], packing: str,
                   dtype: np.dtype) -> Optional[Fragment]:
  """Writes group ``group``'s documents as a fragment in ``directory``
  (any Beam filesystem); None when they hold no sequence (an object store
  cannot hold an empty object). Written again after a failure, a fragment
  gets the same bytes under the same name."""
  chunks, lengths, ends = fragment_arrays(docs, packing, dtype)
  if not lengths.size:
    return None
  name = "%05d" % group
  with _create(FileSystems.join(directory, name + BIN_SUFFIX)) as f:
    for chunk in chunks:
      f.write(chunk)
  buffer = io.BytesIO()
  np.savez(buffer, lengths=lengths, ends=ends)
  with _create(FileSystems.join(directory, name + NPZ_SUFFIX)) as f:
    f.write(buffer.getvalue())
  return Fragment(group, name, int(lengths.size), int(ends.size),
                  int(lengths.sum(dtype=np.int64)))


def _fragment_index(directory: str, fragment: Fragment
                    ) -> Tuple[np.ndarray, np.ndarray]:
  with _open(FileSystems.join(directory, fragment.name + NPZ_SUFFIX)) as f:
    arrays = np.load(io.BytesIO(f.read()), allow_pickle=False)
    return arrays["lengths"], arrays["ends"]


def merge(directory: str, fragments: Sequence[Fragment], prefix: str,
          dtype: np.dtype) -> Tuple[int, int, int]:
  """Writes ``prefix.bin`` and ``prefix.idx`` (any Beam filesystem) from
  ``fragments`` in ``directory``, in group order: the tokens copied through
  in pieces of ``_COPY_BYTES``, the index arrays read one fragment at a
  time for each of the three arrays. Returns ``(sequences, documents,
  tokens)``."""
  fragments = sorted(fragments, key=lambda f: f.group)
  dtype = np.dtype(dtype)
  with _create(prefix + BIN_SUFFIX) as out:
    for fragment in fragments:
      with _open(FileSystems.join(directory, fragment.name + BIN_SUFFIX)) as f:
        while True:
          piece = f.read(_COPY_BYTES)
          if not piece:
            break
          out.write(piece)
  sequences = sum(f.sequences for f in fragments)
  documents = sum(f.documents for f in fragments)
  with _create(prefix + IDX_SUFFIX) as out:
    out.write(index_header(dtype, sequences, documents))
    for fragment in fragments:
      out.write(_fragment_index(directory, fragment)[0].astype("<i4")
                .tobytes())
    start = 0
    for fragment in fragments:
      lengths = _fragment_index(directory, fragment)[0]
      out.write(sequence_pointers(lengths, dtype.itemsize, start)
                .astype("<i8").tobytes())
      start += int(lengths.sum(dtype=np.int64)) * dtype.itemsize
    out.write(np.zeros(1, dtype="<i8").tobytes())
    before = 0
    for fragment in fragments:
      ends = _fragment_index(directory, fragment)[1]
      out.write((ends + before).astype("<i8").tobytes())
      before += fragment.sequences
  return sequences, documents, sum(f.tokens for f in fragments)


class _WriteFragmentsDoFn(beam.DoFn):
  """Each pool group's documents (between its two ``shards.GroupMark`` s)
  → one fragment (``write_fragment``); outputs the ``Fragment``. With
  ``done_dir``, each group is recorded there once its fragment is written
  (``shards.write_group_record``), for ``--resume``."""

  def __init__(self, directory: str, packing: str, dtype: np.dtype,
               done_dir: Optional[str] = None):
    self._directory = directory
    self._packing = packing
    self._dtype = np.dtype(dtype)
    self._done_dir = done_dir
    self._docs: List[TokenizedDocument] = []
    self._group: Optional[shards.GroupMark] = None

  def setup(self):
    s3_clients.share_s3_clients()

  def process(self, element):
    if isinstance(element, shards.GroupMark):
      if not element.end:
        self._group, self._docs = element, []
        return
      fragment = write_fragment(self._directory, element.group, self._docs,
                                self._packing, self._dtype)
      self._docs = []
      if self._done_dir:
        shards.write_group_record(
            self._done_dir, element, [],
            pool_files=fragment_files(self._directory, fragment),
            fragment=dataclasses.asdict(fragment) if fragment else None)
      if fragment is not None:
        yield fragment
      return
    self._docs.extend(element)

  def finish_bundle(self):
    if self._docs:
      raise RuntimeError("a pool group's documents ended without its "
                         "GroupMark")


def fragment_files(directory: str, fragment: Optional[Fragment]
                   ) -> List[Tuple[str, int]]:
  """``(path relative to the pool directory, bytes)`` of the fragment's
  two files in ``directory`` (its ``FRAGMENTS_DIR``); none for None."""
  if fragment is None:
    return []
  out = []
  for suffix in (BIN_SUFFIX, NPZ_SUFFIX):
    path = FileSystems.join(directory, fragment.name + suffix)
    size = FileSystems.match([path])[0].metadata_list[0].size_in_bytes
    out.append((FRAGMENTS_DIR + "/" + fragment.name + suffix, size))
  return out


def reused_fragments(records: Iterable[Dict]) -> List[Fragment]:
  """The fragments of the groups a stopped run finished (their records,
  ``shards.write_group_record``)."""
  return [Fragment(**record["fragment"]) for record in records
          if record.get("fragment")]


def _merge_once(unused_element, fragments, directory: str, prefix: str,
                dtype: np.dtype, reused: Sequence[Fragment] = ()):
  """The final step: ``merge`` of this run's ``fragments`` and a stopped
  run's ``reused`` ones, then the counts of what was written (as
  ``instances`` and ``instance_tokens``, and the ``.bin``'s sequences as
  its shard records)."""
  s3_clients.share_s3_clients()
  fragments = list(fragments) + list(reused)
  # With no sequence nothing is written: the run reports that no example
  # was made.
  if fragments:
    sequences, documents, tokens = merge(directory, fragments, prefix, dtype)
    metrics.count("instances", sequences)
    metrics.count("instance_tokens", tokens)
    metrics.count("megatron_documents", documents)
    metrics.count(shards.SHARD_RECORDS_PREFIX
                  + prefix.rsplit("/", 1)[-1] + BIN_SUFFIX, sequences)
    yield prefix


class PoolDocuments(beam.PTransform):
  """Tokenized documents → each pool group's documents between its
  ``shards.GroupMark`` s (``documents_for_pool``), through pool files in
  ``pool_dir``: one pass per document, ordered by ``seed``. ``spread``: as
  in ``pool_files.InstancesFromSpill``."""

  def __init__(self, *, seed: int, pool_size: int, pool_dir: str,
               spread: bool = True):
    super().__init__()
    self._spread = spread
    self._seed = seed
    self._pool_size = pool_size
    self._pool_dir = pool_dir

  def expand(self, docs):
    return docs | "PoolFiles" >> pool_files.CreateInstancesFromFiles(
        documents_for_pool, self._seed, 1, self._pool_size, self._pool_dir,
        spread=self._spread)


class WriteMegatron(beam.PTransform):
  """Each pool group's documents (``PoolDocuments``, or
  ``pool_files.InstancesFromSpill`` with ``documents_for_pool`` on a
  resumed run) → ``OUTPUT/text_sentence.{bin,idx}`` (or ``text_document``
  with ``packing="doc"``), through fragments in ``pool_dir`` (any Beam
  filesystem every worker reaches; the caller removes it).
  ``vocab_size`` chooses the token dtype (``token_dtype``). With
  ``done_dir``, each group is recorded there when written (``--resume``);
  ``reused``: the fragments of the groups a stopped run finished
  (``reused_fragments``), merged with this run's. Output: the dataset's
  path prefix."""

  def __init__(self, output_dir: str, *, packing: str, vocab_size: int,
               pool_dir: str, done_dir: Optional[str] = None,
               reused: Sequence[Fragment] = ()):
    super().__init__()
    if packing not in PACKINGS:
      raise ValueError("unknown Megatron layout %r (one of %s)"
                       % (packing, ", ".join(PACKINGS)))
    self._prefix = FileSystems.join(output_dir, DATASET_NAMES[packing])
    self._packing = packing
    self._dtype = token_dtype(vocab_size)
    self._pool_dir = pool_dir
    self._done_dir = done_dir
    self._reused = list(reused)

  def expand(self, grouped):
    fragment_dir = FileSystems.join(self._pool_dir, FRAGMENTS_DIR)
    fragments = grouped | "WriteFragments" >> beam.ParDo(_WriteFragmentsDoFn(
        fragment_dir, self._packing, self._dtype, self._done_dir))
    return (grouped.pipeline
            | "Once" >> beam.Impulse()
            | "Merge" >> beam.FlatMap(_merge_once,
                                      beam.pvalue.AsList(fragments),
                                      fragment_dir, self._prefix,
                                      self._dtype, self._reused))
