"""The reference code the tests and the benchmarks compare the pipeline
against: algorithms of the papers and projects the pipeline follows, run as
their authors published them where that is possible (fairseq's packer, TF
Model Garden's masking, fetched from PyPI into ``.cache/tools`` on first
use; ALBERT's input function, from the test extras), and exact answers
found another way where it is not (the fewest sequences any packing can
make). Neither a test nor a benchmark: both import
it (tests/unit/, benchmarks/fidelity.py), and no module of the product does.
It imports nothing of the project, so that a bug in the pipeline cannot leak
into its own reference.
"""

import json
import math
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from typing import Dict, List, Sequence


def whole_sentence_ceiling(docs, max_seq_length, cross_documents):
  """The fewest sequences of contiguous whole sentences that cover ``docs``
  (lists of sentence lengths in tokens, in their order; a sentence longer
  than ``max_seq_length - 2`` counts as pieces of that size), found by
  dynamic programming over every feasible cut. With ``cross_documents`` a
  sequence runs on into the next document with a ``[SEP]`` between them;
  without, it ends with its document. Returns ``(sequences, mean real
  tokens)``, the mean (``[CLS]``, ``[SEP]`` and separators counted) of one
  packing with that few sequences; another as short may keep a document
  ``[SEP]`` more (about a tenth of a token per sequence on Wikipedia)."""
  room = max_seq_length - 2
  pieces = [[p for n in doc for p in [room] * (n // room) + [n % room] if p]
            for doc in docs]
  # (length, the [SEP] it brings when it is not its sequence's first)
  groups = ([[(n, 1 if i and j == 0 else 0)
              for i, doc in enumerate(pieces) for j, n in enumerate(doc)]]
            if cross_documents else [[(n, 0) for n in doc] for doc in pieces])
  sequences = tokens = 0
  for units in groups:
    best = [0] * (len(units) + 1)  # the fewest sequences covering units[:k]
    used = [0] * (len(units) + 1)  # and their real tokens
    for end in range(1, len(units) + 1):
      size = units[end - 1][0]  # the last unit alone always fits
      best[end], used[end] = best[end - 1] + 1, used[end - 1] + size + 2
      for first in range(end - 2, -1, -1):
        size += units[first][0] + units[first + 1][1]
        if size > room:
          break
        if best[first] + 1 < best[end]:
          best[end], used[end] = best[first] + 1, used[first] + size + 2
    sequences += best[-1]
    tokens += used[-1]
  return sequences, tokens / sequences


# RoBERTa's packers as its authors published them: fairseq's
# TokenBlockDataset cuts a stream of sentence sizes into blocks,
# ``break_mode="complete"`` for FULL-SENTENCES and ``"complete_doc"`` for
# DOC-SENTENCES. fairseq 0.8.0 is the release that brought RoBERTa (Liu et
# al. 2019) and its pretraining recipe; its TokenBlockDataset is plain
# Python (later releases moved the loop into Cython, which needs a
# compiler). Its three modules are taken unchanged from PyPI's source
# release; the rest of the package (its models, tasks and C++ BLEU
# extension) is not needed: fairseq.data's __init__ here exports only the
# two names the module imports, and torch, which the two modes never call,
# is a stand-in whose Dataset is a plain class (PyPI's torch brings 3 GB of
# CUDA wheels).
FAIRSEQ = "fairseq==0.8.0"
FAIRSEQ_SHA256 = (
    "55dfedb630ba76ac6c25bf443fd624ce78e097b4820fdc3b1c6d2b153e9f212e")
_FAIRSEQ_MODULES = ("token_block_dataset.py", "fairseq_dataset.py",
                    "plasma_utils.py")
_FAIRSEQ_STAND_INS = {
    "fairseq/__init__.py": "",
    "fairseq/data/__init__.py":
        "from fairseq.data.fairseq_dataset import FairseqDataset\n"
        "from fairseq.data import plasma_utils\n",
    "torch/__init__.py": "from torch import utils\n",
    "torch/utils/__init__.py": "from torch.utils import data\n",
    "torch/utils/data/__init__.py": "class Dataset:\n  pass\n",
}
# Run in a process of its own, so that the stand-in torch never meets the
# tests' own imports.
_FAIRSEQ_BLOCKS = """
import json, sys
sys.path.insert(0, sys.argv[1])
from fairseq.data.token_block_dataset import TokenBlockDataset
sizes, break_mode, block_size, separator = json.load(sys.stdin)
blocks = TokenBlockDataset([None] * len(sizes), sizes, block_size, pad=1,
                           eos=2, break_mode=break_mode,
                           document_sep_len=separator)
json.dump(blocks.slice_indices.tolist(), sys.stdout)
"""


def ensure_fairseq(target: str) -> str:
  """Downloads fairseq's source release from PyPI (``FAIRSEQ``, 216 kB, once)
  into ``target`` and lays out there its TokenBlockDataset with what it
  imports (the comment above). pip checks the archive against
  ``FAIRSEQ_SHA256`` before it unpacks or runs anything of it, and fetches
  it again if a copy left in ``target`` differs. Safe to call from several
  processes at once. Returns the folder to put on ``sys.path``. Raises
  ``subprocess.CalledProcessError`` if pip cannot fetch it or the digest
  differs."""
  source = os.path.join(target, "src")
  module = os.path.join(source, "fairseq", "data", _FAIRSEQ_MODULES[0])
  if os.path.exists(module):
    return source
  release = FAIRSEQ.replace("==", "-")
  os.makedirs(target, exist_ok=True)
  work = tempfile.mkdtemp(prefix="src.", dir=target)
  try:
    requirements = os.path.join(work, "requirements.txt")
    with open(requirements, "w", encoding="utf-8") as f:
      f.write("%s --hash=sha256:%s\n" % (FAIRSEQ, FAIRSEQ_SHA256))
    subprocess.run([sys.executable, "-m", "pip", "download", "--quiet",
                    "--no-deps", "--no-binary=fairseq", "--require-hashes",
                    "--dest", target, "-r", requirements], check=True)
    os.remove(requirements)
    archive = os.path.join(target, release + ".tar.gz")
    os.makedirs(os.path.join(work, "fairseq", "data"))
    with tarfile.open(archive) as tar:
      for name in _FAIRSEQ_MODULES:
        member = tar.extractfile("%s/fairseq/data/%s" % (release, name))
        with open(os.path.join(work, "fairseq", "data", name), "wb") as f:
          f.write(member.read())
    for path, text in _FAIRSEQ_STAND_INS.items():
      os.makedirs(os.path.dirname(os.path.join(work, path)), exist_ok=True)
      with open(os.path.join(work, path), "w", encoding="utf-8") as f:
        f.write(text)
    # A folder left without the module by an older layout goes; one that
    # another process has just completed stays, and this copy is dropped.
    if not os.path.exists(module):
      shutil.rmtree(source, ignore_errors=True)
      try:
        os.rename(work, source)
      except OSError:
        if not os.path.exists(module):
          raise
  finally:
    shutil.rmtree(work, ignore_errors=True)
  return source


def fairseq_blocks(docs, max_seq_length, cross_documents, source):
  """Real tokens of each sequence fairseq's packer makes of ``docs`` (lists
  of sentence lengths in tokens, in order), ``[CLS]`` and the last
  ``[SEP]`` counted, in the pipeline's layout (the paper does not say what,
  if anything, follows each sentence): blocks of at most
  ``max_seq_length - 2`` tokens of whole sentences, no token after each
  sentence. fairseq's own masked-LM data instead ends every sentence with
  ``</s>``, which changes where blocks end.

  With ``cross_documents`` (``break_mode="complete"``) a document ends with
  a one-token separator, a unit like a sentence, so fairseq may end or begin
  a block with it (the pipeline drops a separator at a sequence's edge);
  when a block ends exactly full before a separator and the next piece
  fills a block alone, the separator is a block of its own, counted here as
  3 tokens. Without (``"complete_doc"``) a zero-size unit ends a document
  (the ``document_sep_len`` fairseq documents for sentences without
  ``</s>``) and no block crosses it. A sentence longer than a block is given
  in pieces, as the pipeline splits it, so fairseq never sees one (it would
  keep it whole, over length); documents without a sentence are left out,
  as the pipeline leaves them out. ``source`` is ``ensure_fairseq``'s
  folder. Returns a list of ints, empty when no document has a sentence."""
  room = max_seq_length - 2
  separator = 1 if cross_documents else 0
  sizes = []
  for doc in docs:
    if not any(doc):
      continue
    if sizes:
      sizes.append(separator)
    sizes.extend(p for n in doc for p in [room] * (n // room) + [n % room]
                 if p)
  if not sizes:
    return []
  proc = subprocess.run(
      [sys.executable, "-c", _FAIRSEQ_BLOCKS, source],
      input=json.dumps([sizes, "complete" if cross_documents else
                        "complete_doc", room, separator]),
      capture_output=True, text=True, check=True)
  return [end - start + 2 for start, end in json.loads(proc.stdout)]


MODEL_GARDEN = "tf-models-official==2.20.0"
MODEL_GARDEN_SCRIPT = r"""
import collections, json, random, sys
import official.nlp.data.create_pretraining_data as mg
rows, vocab_words, reps = json.load(sys.stdin)
sizes, predictions, kinds = collections.Counter(), 0, collections.Counter()
for rep in range(reps):
  rng = random.Random(rep)
  random.seed(rep)  # Model Garden draws the n-gram sizes from random.choices
  for tokens in rows:
    budget = min(20, max(1, int(round(len(tokens) * 0.15))))
    grams = mg._tokens_to_grams(tokens)
    for gram in mg._masking_ngrams(grams, 3, budget, rng) or []:
      sizes[sum(1 for g in grams if gram.begin <= g.begin and
                g.end <= gram.end)] += 1
    out, positions, labels = mg.create_masked_lm_predictions(
        tokens, 0.15, 20, vocab_words, rng, True, 3)
    predictions += len(positions)
    for p, label in zip(positions, labels):
      kinds["mask" if out[p] == "[MASK]" else
            "kept" if out[p] == label else "random"] += 1
print(json.dumps({"sizes": sizes, "predictions": predictions,
                  "kinds": kinds}))
"""


def ensure_model_garden(target: str) -> str:
  """TF Model Garden's create_pretraining_data.py (``MODEL_GARDEN``) from
  PyPI, with sentencepiece, which its tokenization module imports, into
  ``target`` (once), beside the caller's TensorFlow: the reference for
  ``--max_ngram_size``. Returns the folder to put on ``PYTHONPATH``."""
  if not os.path.exists(os.path.join(target, "official", "nlp", "data",
                                     "create_pretraining_data.py")):
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet",
                    "--no-deps", "--target", target, MODEL_GARDEN,
                    "sentencepiece==0.2.3"], check=True)
  return target


def model_garden_ngram_masking(rows: Sequence[Sequence[str]],
                               vocab: List[str], reps: int,
                               model_garden: str) -> Dict:
  """Model Garden's n-gram masking (3-grams, whole words, 15%, at most 20
  predictions) of ``rows`` (tokens, ``[CLS]`` and ``[SEP]`` included),
  ``reps`` times with seeds 0.. : the masked n-grams by size in words
  (``sizes``, keys as strings), the ``predictions`` and their ``kinds``
  (``mask``, ``kept``, ``random``). ``model_garden`` is
  ``ensure_model_garden``'s folder; it runs in a process of its own."""
  proc = subprocess.run(
      [sys.executable, "-c", MODEL_GARDEN_SCRIPT],
      input=json.dumps([[list(r) for r in rows], vocab, reps]),
      capture_output=True, text=True, check=True,
      env=dict(os.environ, PYTHONPATH=model_garden, TF_CPP_MIN_LOG_LEVEL="3"))
  return json.loads(proc.stdout.strip().splitlines()[-1])


def fairseq_gpt2_encoder(target: str, encoder_json: str, vocab_bpe: str):
  """fairseq 0.8.0's ``gpt2_bpe_utils.Encoder`` (OpenAI's GPT-2
  ``encoder.py`` as RoBERTa ships it: byte-level BPE in plain Python) over a
  byte-level BPE's ``vocab.json`` (``encoder_json``) and ``merges.txt``
  (``vocab_bpe``). The module is read from the source release
  ``ensure_fairseq`` keeps in ``target`` and loaded on its own; it needs
  only ``regex``. Its ``encode(text)`` gives ids, ``decode(ids)`` text."""
  import importlib.util  # pylint: disable=import-outside-toplevel
  ensure_fairseq(target)
  release = FAIRSEQ.replace("==", "-")
  module_path = os.path.join(target, "gpt2_bpe_utils.py")
  if not os.path.exists(module_path):
    with tarfile.open(os.path.join(target, release + ".tar.gz")) as tar:
      member = tar.extractfile(
          "%s/fairseq/data/encoders/gpt2_bpe_utils.py" % release)
      work = module_path + ".%d" % os.getpid()
      with open(work, "wb") as f:
        f.write(member.read())
      os.replace(work, module_path)
  spec = importlib.util.spec_from_file_location("fairseq_gpt2_bpe_utils",
                                                module_path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module.get_encoder(encoder_json, vocab_bpe)


# transformers' last major release with the SentencePiece-backed ("slow")
# XLMRobertaTokenizer, which reads XLM-R's released sentencepiece.bpe.model
# through fairseq's dictionary (fairseq_tokens_to_ids, fairseq_offset); 5.x
# converts the model to a tokenizers Unigram instead. Its pinned
# dependencies clash with the main install's, so it gets a venv of its own.
XLMR_REFERENCE = ("transformers==4.46.3", "sentencepiece==0.2.3")
XLMR_SCRIPT = r"""
import json, sys
from transformers import XLMRobertaTokenizer
model, lines = json.load(sys.stdin)
tok = XLMRobertaTokenizer(vocab_file=model)
print(json.dumps({
    "tokens": tok.convert_ids_to_tokens(list(range(len(tok)))),
    "ids": [tok.encode(line, add_special_tokens=False) for line in lines],
    "pair": tok.build_inputs_with_special_tokens([10, 11], [12]),
    "pair_types": tok.create_token_type_ids_from_sequences([10, 11], [12]),
}))
"""


def _venv_with(venv: str, packages: Sequence[str]) -> str:
  """A venv at ``venv`` with ``packages`` installed from PyPI, once (a
  marker file says the install finished; a venv without it is made anew);
  returns its python."""
  python = os.path.join(venv, "bin", "python")
  marker = os.path.join(venv, ".installed")
  if not os.path.exists(marker):
    shutil.rmtree(venv, ignore_errors=True)
    subprocess.run([sys.executable, "-m", "venv", venv], check=True)
    subprocess.run([python, "-m", "pip", "install", "--quiet", *packages],
                   check=True)
    with open(marker, "w", encoding="utf-8") as f:
      f.write(" ".join(packages) + "\n")
  return python


def ensure_xlmr_reference(venv: str) -> str:
  """A venv at ``venv`` with ``XLMR_REFERENCE`` (about 250 MB, 20 s, once);
  returns its python. Safe to call again: an existing one is reused."""
  return _venv_with(venv, XLMR_REFERENCE)


def xlmr_slow_tokenizer(python: str, model: str, lines: Sequence[str]
                        ) -> Dict:
  """transformers 4's XLMRobertaTokenizer over the SentencePiece ``model``,
  run by ``python`` (``ensure_xlmr_reference``'s): its ``tokens`` in id
  order, each line's ``ids`` without special tokens, and a ``pair``'s ids
  and ``pair_types`` for segments [10, 11] and [12]."""
  proc = subprocess.run([python, "-c", XLMR_SCRIPT],
                        input=json.dumps([model, list(lines)]),
                        capture_output=True, text=True, check=True)
  return json.loads(proc.stdout.strip().splitlines()[-1])


# ALBERT's input function as its authors published it: run_pretraining.py of
# PyPI's albert-tensorflow 1.1 (a test extra), imported unchanged. It is
# TensorFlow 1 code, and TensorFlow 2 runs it with three stand-ins, each
# what google-research/albert's own TF 2 migration later did to its source:
# * ``import tensorflow`` gives ``tensorflow.compat.v1`` while the module and
#   the modules it imports (albert.modeling, albert.optimization) load: the
#   TF 1 names it calls (tf.FixedLenFeature, tf.parse_single_example,
#   tf.to_int32, tf.flags, tf.logging) are there;
# * ``tensorflow.contrib`` (gone since TF 2.0) is a stand-in whose ``data``
#   holds tf.data.experimental's ``parallel_interleave`` and
#   ``map_and_batch``; its ``cluster_resolver``, ``layers`` and ``tpu``, which
#   only the model and the estimator use, are empty;
# * the PyPI release leaves out the script's flag definitions, so
#   ``--masked_lm_budget`` is defined as the repository's script defines it
#   (a float, 0: offline masking; > 0: the input holds token_boundary
#   instead of the masked_lm_* features, masking done in the trainer).
# It runs in a process of its own, so that the stand-ins never meet the
# tests' own TensorFlow.
_ALBERT_INPUT_FN = r"""
import json, math, sys, types
import tensorflow as tf
v1 = tf.compat.v1
contrib = types.ModuleType("tensorflow.contrib")
contrib.data = types.SimpleNamespace(
    parallel_interleave=v1.data.experimental.parallel_interleave,
    map_and_batch=v1.data.experimental.map_and_batch)
for name in ("cluster_resolver", "layers", "tpu"):
  setattr(contrib, name, types.ModuleType("tensorflow.contrib." + name))
sys.modules["tensorflow.contrib"] = contrib
sys.modules["tensorflow"] = v1
try:
  from albert import run_pretraining
finally:
  sys.modules["tensorflow"] = tf
  del sys.modules["tensorflow.contrib"]
v1.flags.DEFINE_float("masked_lm_budget", 0, "ALBERT's: > 0 masks in the "
                      "trainer, from token_boundary")
FLAGS = run_pretraining.FLAGS
FLAGS(["run_pretraining"])
files, max_seq_length, max_predictions, budgets, count, batch = json.load(
    sys.stdin)
out = []
for budget in budgets:
  FLAGS.masked_lm_budget = budget
  input_fn = run_pretraining.input_fn_builder(
      input_files=files, max_seq_length=max_seq_length,
      max_predictions_per_seq=max_predictions, is_training=False)
  rows = []
  for features in input_fn({"batch_size": batch}).take(
      math.ceil(count / batch)):
    values = {k: v.numpy().tolist() for k, v in features.items()}
    rows.extend({k: v[i] for k, v in values.items()} for i in range(batch))
  out.append(rows[:count])
print(json.dumps(out))
"""


def albert_input_fn(files: Sequence[str], max_seq_length: int,
                    max_predictions_per_seq: int,
                    masked_lm_budgets: Sequence[float], count: int,
                    batch_size: int = 8) -> List[List[Dict[str, list]]]:
  """The first ``count`` examples of the TFRecord ``files`` as ALBERT's
  ``run_pretraining.input_fn_builder(files, max_seq_length,
  max_predictions_per_seq, is_training=False)`` gives them to its model,
  once for each of ``masked_lm_budgets`` (its ``--masked_lm_budget``): one
  list per budget of ``{feature: values}``, each feature as its
  ``_decode_record`` leaves it (int64 cast to int32, fixed length, padding
  kept), batches of ``batch_size`` taken apart. The records are read in the
  files' order, repeated as its evaluation input repeats them, so a
  ``count`` beyond the records starts over. A record that lacks a feature the
  input function asks for raises ``subprocess.CalledProcessError`` (its
  message is TensorFlow's, in ``stderr``). See the comment above for how it
  runs under TensorFlow 2."""
  proc = subprocess.run(
      [sys.executable, "-c", _ALBERT_INPUT_FN],
      input=json.dumps([list(files), max_seq_length, max_predictions_per_seq,
                        list(masked_lm_budgets), count, batch_size]),
      capture_output=True, text=True, check=True,
      env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
  return json.loads(proc.stdout.strip().splitlines()[-1])


# The trainers' own readers, from PyPI: megatron-core's
# ``megatron.core.datasets.indexed_dataset.IndexedDataset`` (what Megatron-LM's
# GPT and BERT datasets read through) and mosaicml-streaming's
# ``LocalDataset``/``StreamingDataset`` (what Composer trainers, ModernBERT's
# among them, read MDS with). Both import PyTorch, and PyPI's Linux torch
# wheel loads its CUDA libraries when imported, so the venv holds the whole
# set (about 5 GB, 1.5 minutes on this project's machines, once).
# mosaicml-streaming 0.13 takes numpy below 2.2.
TRAINER_READERS = ("megatron-core==0.16.1", "mosaicml-streaming==0.13.0",
                   "torch==2.15.0", "numpy==2.1.3")
MEGATRON_SCRIPT = r"""
import json, sys, warnings
warnings.simplefilter("ignore")
from megatron.core.datasets.indexed_dataset import IndexedDataset
data = IndexedDataset(sys.argv[1])
print(json.dumps({
    "dtype": data.index.dtype.__name__,
    "sequences": [data[i].tolist() for i in range(len(data))],
    "document_indices": data.document_indices.tolist(),
    "sequence_lengths": data.sequence_lengths.tolist(),
}))
"""
MDS_SCRIPT = r"""
import json, sys, warnings
warnings.simplefilter("ignore")
import os, tempfile
import numpy as np
from streaming import LocalDataset, StreamingDataset
with open(os.path.join(sys.argv[1], "index.json")) as f:
  zipped = any(s["zip_data"] for s in json.load(f)["shards"])
if zipped:  # LocalDataset reads raw shards; StreamingDataset decompresses
  data = StreamingDataset(remote=sys.argv[1], local=tempfile.mkdtemp(),
                          shuffle=False, batch_size=1)
else:
  data = LocalDataset(local=sys.argv[1])
rows = []
for i in range(len(data)):
  sample = data[i]
  rows.append({k: (v.tolist() if isinstance(v, np.ndarray) else int(v))
               for k, v in sample.items()})
dtypes = {k: v.dtype.name for k, v in data[0].items()
          if isinstance(v, np.ndarray)} if len(data) else {}
print(json.dumps({"samples": rows, "dtypes": dtypes}))
"""


def ensure_trainer_readers(venv: str) -> str:
  """A venv at ``venv`` with ``TRAINER_READERS`` (once); returns its
  python. Safe to call again: an existing one is reused."""
  return _venv_with(venv, TRAINER_READERS)


def _run_reader(python: str, script: str, path: str, what: str) -> Dict:
  proc = subprocess.run([python, "-c", script, path], capture_output=True,
                        text=True, check=False)
  if proc.returncode:
    raise RuntimeError("%s could not read %s: %s"
                       % (what, path, proc.stderr[-2000:]))
  return json.loads(proc.stdout.strip().splitlines()[-1])


def mds_read(python: str, directory: str) -> Dict:
  """The MDS dataset in ``directory`` as mosaicml-streaming reads it
  (``LocalDataset``; ``StreamingDataset`` from it as the remote when the
  shards are compressed), run by ``python`` (``ensure_trainer_readers``'): every
  sample's columns in order (``samples``) and the arrays' ``dtypes``."""
  return _run_reader(python, MDS_SCRIPT, directory, "mosaicml-streaming")


def megatron_read(python: str, prefix: str) -> Dict:
  """``IndexedDataset(prefix)`` as megatron-core reads it, run by
  ``python`` (``ensure_trainer_readers``'): the token ``dtype``'s name,
  every sequence's ids in order, the ``document_indices`` and the
  ``sequence_lengths``."""
  return _run_reader(python, MEGATRON_SCRIPT, prefix, "megatron-core")
