"""A finished output read back: its summary, its shards, its examples.

Used by ``pipelines.inspect`` and ``pipelines.report``. Works on local and
``s3://`` outputs (Beam's FileSystems) and on both output formats:

* TFRecord shards (``part-*.tfrecord[.gz]``): each record's framing is
  checked (its length's and its data's masked CRC-32C, as TFRecord writes
  them), then the ``tf.train.Example`` parsed;
* Parquet shards (``part-*.parquet``): read by pyarrow, which checks the
  pages' CRC-32 (the pipeline writes them).

Every example comes out in one shape, ``Example``, whatever the format.
A plain TFRecord file of google-research/bert's ``create_pretraining_data.py``
(no ``summary.json``) reads as an output of one shard with BERT's features
(and google-research/albert's, whose records add ``token_boundary``).
"""

import dataclasses
import gzip
import json
import re
import struct
import zlib
from typing import Collection, Dict, Iterator, List, Optional, Tuple

import numpy as np
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

from transforms import mds, megatron, metrics
from transforms.examples import masked_crc

SUMMARY = "summary.json"
IGNORE_INDEX = -100  # transforms.parquet's label of unmasked positions
LABEL_COLUMNS = ("next_sentence_label", "sentence_order_label")
BOUNDARY = "token_boundary"  # ALBERT's feature and the Parquet column
LANGS = "langs"  # XLM's language ids: the feature and the Parquet column
_U64 = struct.Struct("<Q")
_U32 = struct.Struct("<I")


class InvalidOutput(Exception):
  """Something in an output does not hold; the message names the shard and
  the record (``shard``, ``record`` when known)."""

  def __init__(self, message: str, shard: str = "", record: int = -1):
    where = shard + (" record %d" % record if record >= 0 else "")
    super().__init__(("%s: %s" % (where, message)) if where else message)
    self.shard, self.record = shard, record


@dataclasses.dataclass
class Example:
  """One example, unpadded: ``input_ids`` and ``segment_ids`` are ``[L]``
  (``[CLS] A [SEP] B [SEP]`` as shown to the model); ``masked_positions``
  and ``masked_ids`` (the original token at each) are ``[P]``, empty
  without static masks; ``label`` is the NSP/SOP label or None;
  ``token_boundary`` is ``[L]``, ALBERT's word starts (1: the original
  token starts a word), or None when the output has none; ``langs`` is the
  example's language id (XLM's ``langs``, one id over the whole row), or
  None when the output has no ``langs``."""
  shard: str
  index: int
  input_ids: np.ndarray
  segment_ids: np.ndarray
  masked_positions: np.ndarray
  masked_ids: np.ndarray
  label: Optional[int]
  token_boundary: Optional[np.ndarray] = None
  langs: Optional[int] = None


@dataclasses.dataclass
class Output:
  """What an output's ``summary.json`` says (a default one for a plain
  TFRecord file of BERT's script)."""
  path: str  # the directory, or the file itself for a plain TFRecord file
  summary: Dict
  shards: List[Dict]  # {"path": name, "bytes": n}, as summary.json lists

  @property
  def format(self) -> str:
    return self.summary.get("format", "tfrecord")

  @property
  def options(self) -> Dict:
    return self.summary.get("options", {})

  @property
  def sentence_task(self) -> str:
    return self.options.get("sentence_task", "nsp")

  @property
  def features(self) -> Dict[str, str]:
    return self.summary.get("features", {})

  @property
  def language_names(self) -> Dict[int, str]:
    """``{id: language}`` from summary.json's ``languages`` (the ids the
    ``langs`` feature holds); empty for a corpus without language tags or
    a summary that records no ids."""
    languages = self.summary.get("languages")
    if not isinstance(languages, dict):
      return {}
    return {v["id"]: k for k, v in languages.items()
            if isinstance(v, dict) and isinstance(v.get("id"), int)}

  def shard_path(self, name: str) -> str:
    if self.path.endswith(name):
      return self.path
    return FileSystems.join(self.path, name)


def open_output(path: str) -> Output:
  """The output at ``path``: a directory with ``summary.json``, or one
  TFRecord file (BERT's script's). Raises ``InvalidOutput``."""
  path = path.rstrip("/")
  summary_path = FileSystems.join(path, SUMMARY)
  try:
    has_summary = FileSystems.exists(summary_path)
  except Exception as e:  # pylint: disable=broad-except
    raise InvalidOutput("cannot read %s: %s" % (summary_path,
                                                _one_line(e))) from None
  if has_summary:
    try:
      with FileSystems.open(summary_path) as f:
        summary = json.loads(f.read().decode("utf-8"))
    except Exception as e:  # pylint: disable=broad-except
      raise InvalidOutput("cannot read %s: %s" % (summary_path,
                                                  _one_line(e))) from None
    problem = summary_problem(summary)
    if problem:
      raise InvalidOutput("%s is not a summary of pipelines.mlm: %s"
                          % (summary_path, problem))
    return Output(path, summary, list(summary.get("shards", [])))
  try:
    matched = FileSystems.match([path])[0].metadata_list
  except Exception as e:  # pylint: disable=broad-except
    raise InvalidOutput("cannot read %s: %s" % (path, _one_line(e))) from None
  if len(matched) == 1 and not FileSystems.exists(path + "/"):
    name = path.rsplit("/", 1)[-1]
    return Output(path, {"format": "tfrecord"},
                  [{"path": name, "bytes": matched[0].size_in_bytes}])
  raise InvalidOutput("%s holds no %s (not a finished output of "
                      "pipelines.mlm) and is no TFRecord file" % (path,
                                                                   SUMMARY))


def _one_line(e: BaseException) -> str:
  """``e`` as ``Type: message``, its message cut to its last non-empty line
  (Beam wraps errors in text with their traceback)."""
  lines = [l.strip() for l in str(e).splitlines() if l.strip()]
  return "%s: %s" % (type(e).__name__, lines[-1]) if lines else type(
      e).__name__


def summary_problem(summary) -> Optional[str]:
  """What makes ``summary`` (summary.json, parsed) unusable for reading an
  output back, or None: it is not an object; ``shards`` is not a list of
  ``{"path": name, ...}``; ``options``, ``counts`` or ``features`` is not an
  object; a feature's type is not of the form ``int64[128]``."""
  if not isinstance(summary, dict):
    return "not a JSON object"
  for name in ("options", "counts", "features"):
    if not isinstance(summary.get(name, {}), dict):
      return "%r is not an object" % name
  shards = summary.get("shards", [])
  if not isinstance(shards, list) or not all(
      isinstance(s, dict) and isinstance(s.get("path"), str) and s["path"]
      for s in shards):
    return "'shards' is not a list of {\"path\": name, ...}"
  for shard in shards:
    for key in ("bytes", "records"):
      if shard.get(key) is not None and not isinstance(shard[key], int):
        return "shard %s has %s %r, not a number" % (shard["path"], key,
                                                     shard[key])
  if summary.get("format", "tfrecord") == "tfrecord":
    for name, kind in summary.get("features", {}).items():
      if not (isinstance(kind, str) and re.fullmatch(r"\w+\[\d+\]", kind)):
        return "feature %s has type %r, not one like int64[128]" % (name,
                                                                    kind)
  return None


def vocabulary(output: Output, override: Optional[str] = None,
               s3_client_kwargs: Optional[dict] = None):
  """The ``transforms.tokenization.Vocabulary`` to decode ``output`` with:
  ``override`` (a ``vocab.txt``, a ``tokenizer.json`` or a SentencePiece
  ``.model``), else the tokenizer its summary.json records (its files,
  special-token flags and text rules), else BERT's bundled one. Raises
  ``VocabularyError``."""
  # pylint: disable=import-outside-toplevel
  from pipelines.options import DEFAULT_VOCAB
  from transforms.tokenization import TokenizerSettings
  options = output.options
  specials = {role: options.get(role + "_token")
              for role in ("cls", "sep", "mask", "pad", "unk")
              if options.get(role + "_token")} or None
  if override:
    kind = ("tokenizer_file" if override.endswith(".json") else
            "spm_model_file" if override.endswith(".model") else "vocab_file")
    # Decoding needs the tokens only: the file's own casing is taken.
    settings = TokenizerSettings(**{kind: override},
                                 albert_rules=bool(options.get(
                                     "albert_text_rules")),
                                 special_tokens=specials,
                                 s3_client_kwargs=s3_client_kwargs)
  else:
    settings = TokenizerSettings(
        vocab_file=options.get("vocab_file") or DEFAULT_VOCAB,
        tokenizer_file=options.get("tokenizer_file"),
        spm_model_file=options.get("spm_model_file"),
        merges_file=options.get("merges_file"),
        do_lower_case=options.get("do_lower_case"),
        albert_rules=bool(options.get("albert_text_rules")),
        special_tokens=specials, s3_client_kwargs=s3_client_kwargs)
  _, vocab = settings.load()
  return vocab


# --- TFRecord --------------------------------------------------------------


def tfrecord_frames(f, shard: str) -> Iterator[bytes]:
  """The records of a TFRecord stream ``f``, each frame's CRCs checked.
  Raises ``InvalidOutput`` naming the record for a bad length CRC, a bad
  data CRC or a cut record."""
  index = 0
  while True:
    header = f.read(12)
    if not header:
      return
    if len(header) < 12:
      raise InvalidOutput("the file ends inside a record's header", shard,
                          index)
    length, = _U64.unpack(header[:8])
    if _U32.unpack(header[8:])[0] != masked_crc(header[:8]):
      raise InvalidOutput("the length's CRC does not match (a corrupt or "
                          "not a TFRecord file)", shard, index)
    data = f.read(length)
    footer = f.read(4)
    if len(data) < length or len(footer) < 4:
      raise InvalidOutput("the file ends inside the record (%d of %d bytes)"
                          % (len(data), length), shard, index)
    if _U32.unpack(footer)[0] != masked_crc(data):
      raise InvalidOutput("the data's CRC does not match (corrupt bytes)",
                          shard, index)
    yield data
    index += 1


def _parse_example(data: bytes) -> Dict[str, np.ndarray]:
  from tensorflow.core.example import example_pb2  # pylint: disable=import-outside-toplevel
  example = example_pb2.Example.FromString(data)
  out = {}
  for name, feature in example.features.feature.items():
    kind = feature.WhichOneof("kind")
    if kind == "int64_list":
      out[name] = np.array(feature.int64_list.value, dtype=np.int64)
    elif kind == "float_list":
      out[name] = np.array(feature.float_list.value, dtype=np.float32)
    else:
      out[name] = np.array(feature.bytes_list.value if kind else [],
                           dtype=object)
  return out


def _declared_lengths(output: Output) -> Dict[str, int]:
  """``{feature: length}`` from summary.json's ``int64[128]``-style types;
  BERT's seven features, lengths unknown (0), for a plain file."""
  if not output.features:
    return {name: 0 for name in (
        "input_ids", "input_mask", "segment_ids", "masked_lm_positions",
        "masked_lm_ids", "masked_lm_weights", "next_sentence_labels")}
  return {name: int(kind.split("[")[1].rstrip("]"))
          for name, kind in output.features.items()}


def _tfrecord_example(features: Dict[str, np.ndarray], declared, shard, index
                      ) -> Example:
  missing = sorted(set(declared) - set(features))
  extra = sorted(set(features) - set(declared))
  if not any(declared.values()) and extra == [BOUNDARY]:
    extra = []  # a plain file of ALBERT's script
  if missing or extra:
    raise InvalidOutput("features %s missing, %s unexpected" % (
        missing or "none", extra or "none"), shard, index)
  absent = [n for n in ("input_ids", "input_mask", "segment_ids")
            if n not in features]
  if absent:
    raise InvalidOutput("no %s feature" % ", ".join(absent), shard, index)
  for name, length in declared.items():
    if length and len(features[name]) != length:
      raise InvalidOutput("%s has %d values, the schema says %d" % (
          name, len(features[name]), length), shard, index)
  mask = features["input_mask"]
  n = int(mask.sum())
  if not np.array_equal(mask, (np.arange(len(mask)) < n).astype(mask.dtype)):
    raise InvalidOutput("input_mask is not ones then zeros", shard, index)
  positions = features.get("masked_lm_positions", np.zeros(0, np.int64))
  weights = features.get("masked_lm_weights", np.zeros(0, np.float32))
  ids = features.get("masked_lm_ids", np.zeros(0, np.int64))
  if np.any((weights != 0) & (weights != 1)):
    raise InvalidOutput("masked_lm_weights holds values other than 0 and 1",
                        shard, index)
  real = weights > 0
  label = features.get("next_sentence_labels")
  boundary = features.get(BOUNDARY)
  if boundary is not None:
    if len(boundary) != len(mask):
      raise InvalidOutput("token_boundary has %d values, input_mask %d" % (
          len(boundary), len(mask)), shard, index)
    if np.any(boundary[n:]):
      raise InvalidOutput("token_boundary is not 0 in the padding", shard,
                          index)
    boundary = boundary[:n]
  langs = features.get(LANGS)
  if langs is not None and len(langs) != len(mask):
    raise InvalidOutput("langs has %d values, input_mask %d" % (
        len(langs), len(mask)), shard, index)
  return Example(shard, index, features["input_ids"][:n],
                 features["segment_ids"][:n], positions[real], ids[real],
                 int(label[0]) if label is not None and len(label) else None,
                 boundary, _one_language(langs, shard, index))


def _one_language(langs: Optional[np.ndarray], shard: str, index: int
                  ) -> Optional[int]:
  """The one id ``langs`` holds at every position (the pipeline writes the
  row's language everywhere, the padding included), or None without it.
  Raises ``InvalidOutput`` for a row of several ids, or none."""
  if langs is None:
    return None
  if not len(langs) or np.any(langs != langs[0]):
    raise InvalidOutput("langs is not one language id over the row", shard,
                        index)
  return int(langs[0])


def _tfrecord_examples(output: Output, shard: str) -> Iterator[Example]:
  path = output.shard_path(shard)
  declared = _declared_lengths(output)
  compression = (CompressionTypes.GZIP if shard.endswith(".gz")
                 else CompressionTypes.UNCOMPRESSED)
  try:
    f = FileSystems.open(path, compression_type=compression)
  except Exception as e:  # pylint: disable=broad-except
    raise InvalidOutput("cannot be opened: %s" % _one_line(e), shard) from None
  with f:
    frames = tfrecord_frames(f, shard)
    index = 0
    while True:
      try:
        data = next(frames)
      except StopIteration:
        return
      except (OSError, EOFError, zlib.error) as e:
        # A shard that cannot be read on (an I/O error, a corrupt or cut
        # gzip stream).
        raise InvalidOutput("cannot be read: %s" % _one_line(e), shard,
                            index) from None
      try:
        features = _parse_example(data)
      except Exception as e:  # pylint: disable=broad-except
        raise InvalidOutput("not a tf.train.Example: %s" % e, shard,
                            index) from None
      yield _tfrecord_example(features, declared, shard, index)
      index += 1


# --- Parquet ---------------------------------------------------------------


def _parquet_examples(output: Output, shard: str) -> Iterator[Example]:
  import pyarrow.parquet as pq  # pylint: disable=import-outside-toplevel
  path = output.shard_path(shard)
  try:
    f = FileSystems.open(path, compression_type=(
        CompressionTypes.UNCOMPRESSED))
  except Exception as e:  # pylint: disable=broad-except
    raise InvalidOutput("cannot be opened: %s" % _one_line(e), shard) from None
  with f:
    # Read through the seekable stream: only the footer and the row groups
    # read are fetched (a whole shard is not downloaded for a few rows).
    try:
      parquet = pq.ParquetFile(f, page_checksum_verification=True)
    except Exception as e:  # pylint: disable=broad-except
      raise InvalidOutput("not a Parquet file: %s" % e, shard) from None
    yield from _parquet_rows(parquet, output, shard)


def _parquet_rows(parquet, output: Output, shard: str) -> Iterator[Example]:
  names = parquet.schema_arrow.names
  if output.features and sorted(names) != sorted(output.features):
    raise InvalidOutput("columns %s, summary.json says %s" % (
        names, sorted(output.features)), shard)
  absent = [c for c in ("input_ids", "attention_mask", "token_type_ids")
            if c not in names]
  if absent:
    raise InvalidOutput("no %s column" % ", ".join(absent), shard)
  label_column = next((c for c in LABEL_COLUMNS if c in names), None)
  index = 0
  for group in range(parquet.metadata.num_row_groups):
    try:
      table = parquet.read_row_group(group).to_pydict()
    except Exception as e:  # pylint: disable=broad-except
      raise InvalidOutput("row group %d cannot be read: %s" % (group, e),
                          shard, index) from None
    for i in range(len(table["input_ids"])):
      ids = np.array(table["input_ids"][i], dtype=np.int64)
      segments = np.array(table["token_type_ids"][i], dtype=np.int64)
      if len(segments) != len(ids) or len(table["attention_mask"][i]) != len(
          ids):
        raise InvalidOutput("input_ids, attention_mask and token_type_ids "
                            "differ in length", shard, index)
      positions = np.zeros(0, np.int64)
      originals = np.zeros(0, np.int64)
      if "labels" in table:
        labels = np.array(table["labels"][i], dtype=np.int64)
        if len(labels) != len(ids):
          raise InvalidOutput("labels and input_ids differ in length", shard,
                              index)
        positions = np.flatnonzero(labels != IGNORE_INDEX)
        originals = labels[positions]
      boundary = None
      if BOUNDARY in table:
        boundary = np.array(table[BOUNDARY][i], dtype=np.int64)
        if len(boundary) != len(ids):
          raise InvalidOutput("token_boundary and input_ids differ in "
                              "length", shard, index)
      langs = None
      if LANGS in table:
        langs = np.array(table[LANGS][i], dtype=np.int64)
        if len(langs) != len(ids):
          raise InvalidOutput("langs and input_ids differ in length", shard,
                              index)
      label = table[label_column][i] if label_column else None
      yield Example(shard, index, ids, segments, positions, originals,
                    None if label is None else int(label), boundary,
                    _one_language(langs, shard, index))
      index += 1


def _check_mds_index(output: Output) -> None:
  """Raises ``InvalidOutput`` unless ``index.json`` lists every shard, once,
  with its size (``mds.index_problem``)."""
  data = _read_whole(output.shard_path(mds.INDEX), mds.INDEX)
  try:
    index = json.loads(data.decode("utf-8"))
  except ValueError as e:
    raise InvalidOutput("not JSON: %s" % e, mds.INDEX) from None
  found = {}
  for f in FileSystems.match([output.shard_path(mds.SHARD_PATTERN)])[
      0].metadata_list:
    found[f.path.rsplit("/", 1)[-1]] = f.size_in_bytes
  problem = mds.index_problem(index, found)
  if problem:
    raise InvalidOutput(problem, mds.INDEX)


def _mds_examples(output: Output, shard: str) -> Iterator[Example]:
  """An MDS shard's samples (``mds.decode_shard``; a ``.gz`` one
  decompressed) as examples: no masks, segments from ``token_type_ids``
  (zeros without), the sentence label where there is one."""
  data = _read_whole(output.shard_path(shard), shard)
  try:
    if shard.endswith(".gz"):
      data = gzip.decompress(data)
    _, samples = mds.decode_shard(data)
  except (ValueError, OSError, EOFError) as e:
    raise InvalidOutput("not an MDS shard: %s" % e, shard) from None
  empty = np.zeros(0, np.int64)
  for index, sample in enumerate(samples):
    ids = np.asarray(sample["input_ids"], dtype=np.int64)
    segments = np.asarray(sample.get("token_type_ids", np.zeros_like(ids)),
                          dtype=np.int64)
    if segments.size != ids.size:
      raise InvalidOutput("input_ids and token_type_ids differ in length",
                          shard, index)
    label = next((sample[c] for c in LABEL_COLUMNS if c in sample), None)
    yield Example(shard, index, ids, segments, empty, empty,
                  None if label is None else int(label))


def _megatron_examples(output: Output, shard: str) -> Iterator[Example]:
  """A Megatron dataset's sequences (its ``.bin``; nothing for its
  ``.idx``) as examples: the token ids as they are (no ``[CLS]``/``[SEP]``,
  the trainer adds them), one segment, no masks, no label. Read in order,
  a piece of the ``.bin`` at a time."""
  if not shard.endswith(megatron.BIN_SUFFIX):
    return
  index = megatron_index(output, shard[:-len(megatron.BIN_SUFFIX)])
  empty = np.zeros(0, np.int64)
  with FileSystems.open(output.shard_path(shard),
                        compression_type=CompressionTypes.UNCOMPRESSED) as f:
    pending = np.zeros(0, index.dtype)
    for i, length in enumerate(index.lengths.tolist()):
      while pending.size < length:
        data = f.read(max(16 << 20, length * index.dtype.itemsize))
        if not data or len(data) % index.dtype.itemsize:
          raise InvalidOutput("sequence %d ends past the file's end" % i,
                              shard, i)
        pending = np.concatenate([pending, np.frombuffer(data, index.dtype)])
      ids, pending = pending[:length].astype(np.int64), pending[length:]
      yield Example(shard, i, ids, np.zeros_like(ids), empty, empty, None)


def examples(output: Output, shard: str) -> Iterator[Example]:
  """Every example of one shard, in order; raises ``InvalidOutput`` at the
  first record that cannot be read."""
  if output.format == "parquet":
    return _parquet_examples(output, shard)
  if output.format == "mds":
    return _mds_examples(output, shard)
  if output.format == "megatron":
    return _megatron_examples(output, shard)
  return _tfrecord_examples(output, shard)


# --- Checks ----------------------------------------------------------------


def check_example(example: Example, vocab_size: int, cls_id: int,
                  sep_id: int, is_continuation: Optional[np.ndarray] = None,
                  language_ids: Optional[Collection[int]] = None
                  ) -> Optional[str]:
  """Why ``example`` is not one the pipeline makes, or None: ids outside
  the vocabulary, no ``[CLS]`` first or ``[SEP]`` last, segment ids not 0
  then 1, masked positions outside the sequence, on ``[CLS]``/``[SEP]``,
  repeated or unsorted, a label other than 0 or 1, a ``token_boundary``
  that is not 1 at ``[CLS]`` and the last ``[SEP]`` or holds other values
  than 0 and 1, or, given ``is_continuation`` (bool per id, the
  vocabulary's ``Vocabulary.is_continuation``), one that differs from the
  word starts of the original tokens (the masked ones put back), or, given
  ``language_ids`` (those summary.json records, ``Output
  .language_names``), a ``langs`` id that is none of them."""
  ids, n = example.input_ids, len(example.input_ids)
  if n == 0:
    return "no tokens"
  if ids.min() < 0 or ids.max() >= vocab_size:
    return "input_ids outside the vocabulary (0..%d)" % (vocab_size - 1)
  if ids[0] != cls_id or ids[-1] != sep_id:
    return "input_ids do not start with [CLS] and end with [SEP]"
  segments = example.segment_ids
  if np.any((segments != 0) & (segments != 1)) or np.any(
      np.diff(segments) < 0):
    return "segment_ids are not zeros then ones"
  positions = example.masked_positions
  if len(positions):
    if positions.min() < 1 or positions.max() >= n:
      return "masked positions outside the sequence (1..%d)" % (n - 1)
    if np.any(np.diff(positions) <= 0):
      return "masked positions repeated or out of order"
    if np.any(example.masked_ids < 0) or np.any(
        example.masked_ids >= vocab_size):
      return "masked original ids outside the vocabulary"
  if example.label not in (None, 0, 1):
    return "sentence label %r is neither 0 nor 1" % example.label
  if (example.langs is not None and language_ids is not None
      and example.langs not in language_ids):
    return "langs holds language id %d, summary.json's languages have %s" % (
        example.langs, ", ".join(str(i) for i in sorted(language_ids))
        or "none")
  return _boundary_problem(example, is_continuation)


def _boundary_problem(example: Example,
                      is_continuation: Optional[np.ndarray]) -> Optional[str]:
  """What is wrong with ``example.token_boundary`` (see check_example), or
  None."""
  boundary = example.token_boundary
  if boundary is None:
    return None
  if np.any((boundary != 0) & (boundary != 1)):
    return "token_boundary holds values other than 0 and 1"
  if boundary[0] != 1 or boundary[-1] != 1:
    return "token_boundary is not 1 at [CLS] and the last [SEP]"
  if is_continuation is not None:
    originals = example.input_ids.copy()
    originals[example.masked_positions] = example.masked_ids
    starts = ~is_continuation[originals]
    wrong = np.flatnonzero(starts != (boundary == 1))
    if len(wrong):
      return ("token_boundary is %d at position %d, where the vocabulary's "
              "word starts say %d (decoded with another tokenizer than the "
              "run's?)" % (boundary[wrong[0]], wrong[0],
                           int(starts[wrong[0]])))
  return None


def validate(output: Output, vocab_size: int, cls_id: int, sep_id: int,
             shards: Optional[List[str]] = None,
             is_continuation: Optional[np.ndarray] = None
             ) -> Dict[str, Tuple[int, int]]:
  """Checks every record of ``shards`` (default all): frames, features,
  ``check_example`` (with ``is_continuation``, and the language ids
  summary.json records); each shard's size and record count against
  summary.json and, over all shards, the record count against its
  ``instances``; then that its document counters add up
  (``balance_problem``). Returns ``{shard:
  (records, bytes)}``; raises ``InvalidOutput`` at the first fault."""
  result = {}
  names = [s["path"] for s in output.shards]
  language_ids = set(output.language_names) or None
  for shard in output.shards:
    name = shard["path"]
    if shards is not None and name not in shards:
      continue
    path = output.shard_path(name)
    try:
      matched = FileSystems.match([path])[0].metadata_list
    except Exception as e:  # pylint: disable=broad-except
      raise InvalidOutput("cannot be listed: %s" % _one_line(e),
                          name) from None
    if not matched:
      raise InvalidOutput("listed in summary.json but missing", name)
    size = matched[0].size_in_bytes
    if shard.get("bytes") is not None and size != shard["bytes"]:
      raise InvalidOutput("%d bytes, summary.json says %d" % (
          size, shard["bytes"]), name)
    count = 0
    for example in examples(output, name):
      reason = check_example(example, vocab_size, cls_id, sep_id,
                             is_continuation, language_ids)
      if reason:
        raise InvalidOutput(reason, name, example.index)
      count += 1
    if shard.get("records") is not None and count != shard["records"]:
      raise InvalidOutput("%d records, summary.json says %d (as its writer "
                          "counted them)" % (count, shard["records"]), name)
    result[name] = (count, size)
  if output.format == "mds" and shards is None:
    _check_mds_index(output)
  expected = output.summary.get("counts", {}).get("instances")
  if shards is None and expected is not None and names:
    total = sum(r for r, _ in result.values())
    if total != expected:
      raise InvalidOutput("%d records in the shards, summary.json counts %d "
                          "instances" % (total, expected))
  problem = balance_problem(output.summary)
  if problem:
    raise InvalidOutput(problem)
  return result


# --- Megatron's indexed dataset (--output_format=megatron) -----------------


def _read_whole(path: str, name: str) -> bytes:
  try:
    with FileSystems.open(
        path, compression_type=CompressionTypes.UNCOMPRESSED) as f:
      return f.read()
  except Exception as e:  # pylint: disable=broad-except
    raise InvalidOutput("cannot be read: %s" % _one_line(e), name) from None


def megatron_prefixes(output: Output) -> List[str]:
  """The dataset names (``text_sentence``) of a Megatron output's pairs."""
  return sorted({s["path"][:-len(megatron.IDX_SUFFIX)] for s in output.shards
                 if s["path"].endswith(megatron.IDX_SUFFIX)})


def megatron_index(output: Output, prefix: str) -> megatron.Index:
  """The parsed ``.idx`` of dataset ``prefix``; raises ``InvalidOutput``."""
  name = prefix + megatron.IDX_SUFFIX
  try:
    return megatron.read_index(_read_whole(output.shard_path(name), name))
  except ValueError as e:
    raise InvalidOutput(str(e), name) from None


def megatron_sequences(output: Output, prefix: str, limit: int
                       ) -> Iterator[Tuple[int, int, np.ndarray]]:
  """``(sequence, its document, its ids)`` of the first ``limit``
  sequences of dataset ``prefix`` (``_megatron_examples``' ids)."""
  index = megatron_index(output, prefix)
  documents = np.searchsorted(index.document_indices, np.arange(
      min(limit, index.lengths.size)), side="right") - 1
  sequences = _megatron_examples(output, prefix + megatron.BIN_SUFFIX)
  for (i, document), example in zip(enumerate(documents.tolist()),
                                    sequences):
    yield i, document, example.input_ids


def validate_megatron(output: Output, vocab_size: int
                      ) -> Dict[str, Tuple[int, int]]:
  """Checks a Megatron output: each file's size against summary.json, the
  index's layout against its ``.bin`` (``megatron.index_problem``), every
  id inside the vocabulary, the sequences against ``instances`` and the
  documents against ``megatron_documents``, the document counters
  (``balance_problem``). Returns ``{file: (sequences, bytes)}``; raises
  ``InvalidOutput`` at the first fault."""
  sizes = {}
  for shard in output.shards:
    name = shard["path"]
    matched = FileSystems.match([output.shard_path(name)])[0].metadata_list
    if not matched:
      raise InvalidOutput("listed in summary.json but missing", name)
    sizes[name] = matched[0].size_in_bytes
    if shard.get("bytes") is not None and sizes[name] != shard["bytes"]:
      raise InvalidOutput("%d bytes, summary.json says %d" % (
          sizes[name], shard["bytes"]), name)
  result = {}
  counts = output.summary.get("counts", {})
  prefixes = megatron_prefixes(output)
  for name in sizes:
    stem = name.rsplit(".", 1)[0]
    if name.endswith(megatron.BIN_SUFFIX) and stem not in prefixes:
      raise InvalidOutput("no %s beside it" % (stem + megatron.IDX_SUFFIX),
                          name)
  if not prefixes and counts.get("instances"):
    raise InvalidOutput("summary.json counts %d sequences but lists no "
                        "dataset" % counts["instances"])
  for prefix in prefixes:
    bin_name = prefix + megatron.BIN_SUFFIX
    if bin_name not in sizes:
      raise InvalidOutput("no %s beside its index" % bin_name, prefix)
    index = megatron_index(output, prefix)
    problem = megatron.index_problem(index, sizes[bin_name])
    if problem:
      raise InvalidOutput(problem, prefix + megatron.IDX_SUFFIX)
    with FileSystems.open(output.shard_path(bin_name),
                          compression_type=CompressionTypes.UNCOMPRESSED) as f:
      at = 0
      while True:
        data = f.read(16 << 20)
        if not data:
          break
        ids = np.frombuffer(data, index.dtype)
        bad = np.flatnonzero((ids < 0) | (ids >= vocab_size))
        if bad.size:
          raise InvalidOutput("id %d at token %d is outside the vocabulary "
                              "of %d" % (int(ids[bad[0]]), at + int(bad[0]),
                                         vocab_size), bin_name)
        at += ids.size
    sequences = int(index.lengths.size)
    documents = int(index.document_indices.size) - 1
    for counter, found in (("instances", sequences),
                           ("megatron_documents", documents)):
      if counter in counts and counts[counter] != found:
        raise InvalidOutput("%d %s in the index, summary.json counts %d" % (
            found, "sequences" if counter == "instances" else "documents",
            counts[counter]), prefix + megatron.IDX_SUFFIX)
    result[prefix] = (sequences, sizes[bin_name] + sizes[
        prefix + megatron.IDX_SUFFIX])
  problem = balance_problem(output.summary)
  if problem:
    raise InvalidOutput(problem)
  return result


def document_balance(summary: Dict) -> Optional[Tuple[int, int, Dict]]:
  """``transforms.metrics.document_balance`` of summary.json's "counts"
  and "rejected": ``(documents_read, accounted, terms)``; None for a
  summary without ``documents_read`` or ``documents`` (a plain TFRecord
  file, or an output of a version that did not count them). Raises
  ``InvalidOutput`` for a counter that is not a number."""
  counts = summary.get("counts", {})
  if "documents_read" not in counts or "documents" not in counts:
    return None
  rejected = summary.get("rejected", {})
  if not isinstance(rejected, dict):
    raise InvalidOutput("summary.json's 'rejected' is not an object")
  used = [(name, counts.get(name)) for name in
          ("documents_read", "documents") + metrics.DROP_REASONS]
  used += [("rejected/" + reason, n) for reason, n in rejected.items()]
  for name, value in used:
    if value is not None and (isinstance(value, bool)
                              or not isinstance(value, int)):
      raise InvalidOutput("summary.json counts %s as %r, not a number"
                          % (name, value))
  return metrics.document_balance(counts, rejected)


def balance_problem(summary: Dict) -> Optional[str]:
  """Why summary.json's counters break the identity every run keeps
  (``documents_read`` = documents kept + dropped + set aside, see
  ``transforms.metrics.document_balance``), or None: they hold, or the
  summary predates them. Raises ``InvalidOutput`` as
  ``document_balance``."""
  balance = document_balance(summary)
  if balance is None or balance[0] == balance[1]:
    return None
  read, accounted, terms = balance
  return ("summary.json counts %d documents_read, but the documents kept, "
          "dropped and set aside add up to %d (%s): a counter is missing or "
          "counted twice" % (read, accounted, ", ".join(
              "%s %d" % term for term in terms.items()) or "none"))
