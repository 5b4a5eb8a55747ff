"""Examples as Parquet, with the column names Hugging Face ``transformers``
models take, for PyTorch trainers (``--output_format=parquet``).

One row per example, unpadded (a collator pads a batch to its longest
row):

* ``input_ids``: list<int32>, ``[CLS] A [SEP] B [SEP]`` as masked (or as is
  with ``--masking=none``);
* ``attention_mask``: list<int8>, ones;
* ``token_type_ids``: list<int8>, 0 for A, 1 for B;
* ``token_boundary`` (``--token_boundary`` only): list<int8>, ALBERT's
  feature of that name: 1 where an original token starts a word, [CLS]
  and [SEP] included, 0 at continuation pieces (``masking.token_boundary``);
* ``langs`` (``--langs_feature`` only): list<int32>, XLM's language ids
  (the ``langs`` argument of Hugging Face's ``XLMWithLMHeadModel``): the
  example's language id at each token (``MaskedBatch.langs``);
* ``labels`` (static masking only): list<int32>, the original id at each
  masked position, -100 (what PyTorch's cross-entropy ignores) elsewhere;
* ``next_sentence_label`` (NSP) or ``sentence_order_label`` (SOP): int64,
  the names ``BertForPreTraining`` and ``AlbertForPreTraining`` take.

Files are written with pyarrow, zstd-compressed, in row groups of about
``ROW_GROUP_ROWS`` rows, through Beam's ``FileBasedSink`` (temporary files,
shard names, the final rename), as the TFRecord shards are.
"""

from typing import List, Optional

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from apache_beam.coders import coders
from apache_beam.io import filebasedsink
from apache_beam.io.filesystem import CompressionTypes

from transforms.masking import MaskedBatch

SUFFIX = ".parquet"
ROW_GROUP_ROWS = 16384
LABEL_COLUMNS = {"nsp": "next_sentence_label", "sop": "sentence_order_label"}
IGNORE_INDEX = -100


def schema(masks: bool, sentence_task: str,
           boundary: bool = False, langs: bool = False) -> pa.Schema:
  """The columns of a run's shards."""
  fields = [pa.field("input_ids", pa.list_(pa.int32())),
            pa.field("attention_mask", pa.list_(pa.int8())),
            pa.field("token_type_ids", pa.list_(pa.int8()))]
  if boundary:
    fields.append(pa.field("token_boundary", pa.list_(pa.int8())))
  if langs:
    fields.append(pa.field("langs", pa.list_(pa.int32())))
  if masks:
    fields.append(pa.field("labels", pa.list_(pa.int32())))
  if sentence_task in LABEL_COLUMNS:
    fields.append(pa.field(LABEL_COLUMNS[sentence_task], pa.int64()))
  return pa.schema(fields)


def to_table(batch: MaskedBatch, masks: bool = True,
             sentence_task: str = "nsp", boundary: bool = False,
             langs: bool = False) -> pa.Table:
  """The batch's examples as rows of ``schema(masks, sentence_task,
  boundary, langs)``; with ``boundary`` the batch must carry its
  ``token_boundary``, with ``langs`` its ``languages`` (ValueError
  otherwise)."""
  n, width = batch.input_ids.shape
  real = np.arange(width)[None, :] < batch.lengths[:, None]
  offsets = pa.array(np.concatenate([[0], np.cumsum(batch.lengths)])
                     .astype(np.int32))

  def ragged(values: np.ndarray, arrow_type) -> pa.Array:
    return pa.ListArray.from_arrays(offsets, pa.array(values[real],
                                                      type=arrow_type))

  columns = [ragged(batch.input_ids.astype(np.int32), pa.int32()),
             ragged(np.ones((n, width), dtype=np.int8), pa.int8()),
             ragged(batch.segment_ids.astype(np.int8), pa.int8())]
  if boundary:
    if batch.token_boundary is None:
      raise ValueError("the batch has no token_boundary to write "
                       "(MaskingParams.token_boundary was off)")
    columns.append(ragged(batch.token_boundary.astype(np.int8), pa.int8()))
  if langs:
    columns.append(ragged(batch.langs.astype(np.int32), pa.int32()))
  if masks:
    labels = np.full((n, width), IGNORE_INDEX, dtype=np.int32)
    predicted = (np.arange(batch.masked_lm_positions.shape[1])[None, :]
                 < batch.num_predictions[:, None])
    rows = np.repeat(np.arange(n), batch.num_predictions)
    labels[rows, batch.masked_lm_positions[predicted].astype(np.int64)] = (
        batch.masked_lm_ids[predicted])
    columns.append(ragged(labels, pa.int32()))
  if sentence_task in LABEL_COLUMNS:
    columns.append(pa.array(batch.next_sentence_labels.astype(np.int64)))
  return pa.Table.from_arrays(columns, schema=schema(masks, sentence_task,
                                                     boundary, langs))


class _ParquetFile:
  """One shard being written: tables are buffered into row groups of
  ``ROW_GROUP_ROWS`` rows."""

  def __init__(self, handle, table_schema: pa.Schema):
    self._handle = handle
    # Page checksums let a reader (pipelines.inspect) tell corrupt pages.
    self._writer = pq.ParquetWriter(handle, table_schema, compression="zstd",
                                    write_page_checksum=True)
    self._pending: List[pa.Table] = []
    self._rows = 0

  def write(self, table: pa.Table) -> None:
    self._pending.append(table)
    self._rows += table.num_rows
    if self._rows >= ROW_GROUP_ROWS:
      self._flush()

  def _flush(self) -> None:
    if self._pending:
      self._writer.write_table(pa.concat_tables(self._pending),
                               row_group_size=max(self._rows, 1))
      self._pending, self._rows = [], 0

  def close(self) -> None:
    self._flush()
    self._writer.close()
    self._handle.close()


class ParquetSink(filebasedsink.FileBasedSink):
  """Beam's file sink for ``to_table``'s tables: ``part-SSSSS-of-NNNNN
  .parquet`` shards."""

  def __init__(self, file_path_prefix: str, num_shards: int, masks: bool,
               sentence_task: str, boundary: bool = False,
               langs: bool = False):
    super().__init__(file_path_prefix, coder=coders.PickleCoder(),
                     file_name_suffix=SUFFIX, num_shards=num_shards,
                     mime_type="application/vnd.apache.parquet",
                     compression_type=CompressionTypes.UNCOMPRESSED)
    self._schema = schema(masks, sentence_task, boundary, langs)

  def open(self, temp_path: str) -> _ParquetFile:
    return _ParquetFile(super().open(temp_path), self._schema)

  def write_record(self, file_handle: _ParquetFile, value: pa.Table) -> None:
    file_handle.write(value)

  def close(self, file_handle: Optional[_ParquetFile]) -> None:
    if file_handle is not None:
      file_handle.close()
