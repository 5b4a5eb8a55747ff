"""python -m pipelines.learn_vocab: BERT's layout, a vocabulary that
tokenizes held-out text of its source well, and the refusals."""

import os
import random
import subprocess
import sys

import pytest

from tests.helpers import (REPO, one_error_line, read_examples, run_cli,
                           sample_documents)
from transforms import vocabulary
from transforms.tokenization import build_tokenizer

SYLLABLES = ["ka", "to", "ri", "mun", "del", "sa", "ve", "lon", "tri", "pa",
             "ne", "gor", "li", "ba", "xu", "mer", "ost", "ing", "ed", "qua"]


def _lexicon(size=4000, seed=0):
  rng = random.Random(seed)
  words = set()
  while len(words) < size:
    words.add("".join(rng.choice(SYLLABLES)
                      for _ in range(rng.randint(1, 4))))
  return sorted(words)


def _generated_documents(count, seed):
  """Documents of pseudo-words drawn with Zipf's law from one lexicon, so
  frequent words repeat and rare ones are built of common syllables."""
  lexicon = _lexicon()
  weights = [1.0 / (rank + 1) for rank in range(len(lexicon))]
  rng = random.Random(seed)
  docs = []
  for _ in range(count):
    docs.append([" ".join(rng.choices(lexicon, weights,
                                      k=rng.randint(5, 20))).capitalize() + "."
                 for _ in range(rng.randint(3, 12))])
  return docs


def _write(path, docs):
  with open(path, "w", encoding="utf-8") as f:
    for doc in docs:
      f.write("\n".join(doc) + "\n\n")
  return str(path)


def _learn(corpus, out, extra=(), check=True):
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
  proc = subprocess.run([sys.executable, "-m", "pipelines.learn_vocab",
                         "--input=" + corpus, "--output=" + out] + list(extra),
                        cwd=REPO, env=env, capture_output=True, text=True,
                        timeout=600)
  if check:
    assert proc.returncode == 0, proc.stderr[-3000:]
  return proc


def _pieces_and_unknowns(vocab_path, docs):
  with open(vocab_path, encoding="utf-8") as f:
    tokens = [line.rstrip("\n") for line in f]
  tokenizer = build_tokenizer(tokens, True)
  split = vocabulary.bert_word_splitter(True)
  words = pieces = unknown = 0
  for doc in docs:
    for sentence in doc:
      words += len(split(sentence))
      ids = tokenizer.encode(sentence).ids
      pieces += len(ids)
      unknown += sum(1 for i in ids if i == tokens.index("[UNK]"))
  return pieces / words, unknown / pieces


@pytest.fixture(scope="module")
def learned(tmp_path_factory):
  """Vocabularies learned from all of a corpus and from a quarter of it."""
  root = tmp_path_factory.mktemp("vocab")
  train = sample_documents() + _generated_documents(1600, seed=1)
  random.Random(2).shuffle(train)
  full = _write(root / "full.txt", train)
  quarter = _write(root / "quarter.txt", train[:len(train) // 4])
  extra = ["--vocab_size=%d" % (len(vocabulary.RESERVED) + 1500)]
  _learn(full, str(root / "full-vocab.txt"), extra)
  _learn(quarter, str(root / "quarter-vocab.txt"), extra)
  return root


def test_bert_layout(learned):
  with open(learned / "full-vocab.txt", encoding="utf-8") as f:
    tokens = [line.rstrip("\n") for line in f]
  assert len(tokens) <= len(vocabulary.RESERVED) + 1500
  assert len(tokens) == len(set(tokens))
  assert tokens[0] == "[PAD]" and tokens[1] == "[unused0]"
  assert tokens[100:104] == ["[UNK]", "[CLS]", "[SEP]", "[MASK]"]
  assert tokens[998] == "[unused993]"
  # The shipped BERT vocabulary has the same reserved slots.
  with open(os.path.join(REPO, "pipelines", "vocab",
                         "bert-base-uncased-vocab.txt"), encoding="utf-8") as f:
    bert = [line.rstrip("\n") for line in f]
  assert tokens[:999] == bert[:999]
  assert any(t.startswith("##") for t in tokens[999:])


def test_held_out_text_tokenizes_well(learned):
  held_out = _generated_documents(200, seed=3)
  full = _pieces_and_unknowns(learned / "full-vocab.txt", held_out)
  quarter = _pieces_and_unknowns(learned / "quarter-vocab.txt", held_out)
  assert full[1] < 0.01 and quarter[1] < 0.01
  # More data, fewer pieces per word on text it has not seen.
  assert full[0] < quarter[0], (full, quarter)


def test_the_mlm_job_takes_the_vocabulary(learned, tmp_path):
  out = str(tmp_path / "out")
  run_cli(["--input=" + str(learned / "quarter.txt"), "--output=" + out,
           "--vocab_file=" + str(learned / "full-vocab.txt"),
           "--dupe_factor=1"])
  assert read_examples(out)


def test_refusals(learned, tmp_path):
  corpus = str(learned / "quarter.txt")
  for extra, message in (
      (["--vocab_size=500"], "--vocab_size must be at least"),
      (["--max_words=10"], "--max_words must be at least 100"),
      (["--input_format=xml"], "--input_format"),
      (["--vocab_sise=3000"], "unknown flag --vocab_sise")):
    proc = _learn(corpus, str(tmp_path / "v.txt"), extra, check=False)
    errors = [l for l in proc.stderr.splitlines() if l.startswith("error:")]
    assert proc.returncode == 2 and len(errors) == 1, proc.stderr
    assert message in errors[0], errors
  proc = _learn(corpus, str(learned / "full-vocab.txt"), check=False)
  assert proc.returncode == 2 and "exists; pass --overwrite" in proc.stderr
  proc = _learn(str(tmp_path / "none*.txt"), str(tmp_path / "v.txt"),
                check=False)
  assert proc.returncode == 2 and "no file matches" in proc.stderr


def test_bad_records_are_listed_beside_the_vocabulary(tmp_path):
  corpus = tmp_path / "c.jsonl"
  good = ['{"text": "%s"}' % " ".join(doc) for doc in sample_documents()]
  corpus.write_text("\n".join(good + ["not json at all"]) + "\n")
  out = tmp_path / "v" / "vocab.txt"
  out.parent.mkdir()
  proc = _learn(str(corpus), str(out), ["--input_format=jsonl",
                                        "--vocab_size=1300"])
  assert "1 records set aside (malformed_jsonl_lines 1" in proc.stderr
  [listing] = list((tmp_path / "v" / "_rejected").glob("rejected-*.jsonl"))
  assert "malformed_jsonl_lines" in listing.read_text()
  assert out.exists()


def _learn_with_file_limit(corpus, out, limit_bytes, extra=()):
  """learn_vocab with every file it writes limited to ``limit_bytes``
  (RLIMIT_FSIZE, which binds root too): a write past it fails with EFBIG
  (Python ignores SIGXFSZ), as on a full disk."""
  import resource  # pylint: disable=import-outside-toplevel

  def limit():
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit_bytes, limit_bytes))
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
  return subprocess.run([sys.executable, "-m", "pipelines.learn_vocab",
                         "--input=" + corpus, "--output=" + out,
                         "--vocab_size=%d" % (len(vocabulary.RESERVED) + 300)]
                        + list(extra), cwd=REPO, env=env, capture_output=True,
                        text=True, timeout=600, preexec_fn=limit)


@pytest.mark.parametrize("words", ["many", "few"])
def test_a_full_disk_is_one_error_line_and_leaves_nothing(tmp_path, words):
  """Many distinct words: the job's word counts cannot be written; few: the
  counts fit but the vocabulary does not. Either way one error line, exit
  1, and the folder holds what it held (the former vocabulary, unchanged,
  with --overwrite), no partial file."""
  corpus = tmp_path / "corpus.txt"
  if words == "many":
    _write(corpus, _generated_documents(300, seed=4))
  else:
    corpus.write_text("ka to ri.\nmun del sa.\n\nve lon tri pa ne.\n")
  folder = tmp_path / "out"
  folder.mkdir()
  out = folder / "vocab.txt"
  proc = _learn_with_file_limit(str(corpus), str(out), 4096)
  assert proc.returncode == 1, proc.stderr[-3000:]
  assert "File too large" in one_error_line(proc.stderr)
  assert "Traceback" not in proc.stderr
  assert os.listdir(folder) == []
  out.write_text("[PAD]\nformer\n")
  proc = _learn_with_file_limit(str(corpus), str(out), 4096, ["--overwrite"])
  assert proc.returncode == 1 and "Traceback" not in proc.stderr
  one_error_line(proc.stderr)
  assert os.listdir(folder) == ["vocab.txt"]
  assert out.read_text() == "[PAD]\nformer\n"


def test_bad_paths_are_one_error_line_before_any_work(learned, tmp_path):
  """Unwritable output (under a regular file: refused as root too), a
  folder as output or input, missing and cut input: one error line, no
  traceback, nothing written."""
  corpus = str(learned / "quarter.txt")
  regular = tmp_path / "regular"
  regular.write_text("a file\n")
  cut = tmp_path / "cut.txt.gz"
  import gzip  # pylint: disable=import-outside-toplevel
  packed = gzip.compress(b"Some text here. And more of it.\n" * 2000)
  cut.write_bytes(packed[:len(packed) // 2])
  folder = tmp_path / "folder"
  folder.mkdir()
  for inp, out, code, message in (
      (corpus, str(regular / "vocab.txt"), 2, "is not a folder"),
      (corpus, str(folder), 2, "is a folder"),
      (str(tmp_path / "missing.txt"), str(tmp_path / "v.txt"), 2,
       "no file matches"),
      (str(folder), str(tmp_path / "v.txt"), 2, "is a folder, not a file"),
      (str(cut), str(tmp_path / "v.txt"), 1,
       "the input held no text (0 documents read, 1 records set aside")):
    proc = _learn(inp, out, check=False)
    assert proc.returncode == code, proc.stderr[-3000:]
    assert message in one_error_line(proc.stderr), proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr
    assert not os.path.exists(tmp_path / "v.txt")
  assert regular.read_text() == "a file\n" and os.listdir(folder) == []


def test_help_says_overwrite_is_needed():
  proc = subprocess.run([sys.executable, "-m", "pipelines.learn_vocab",
                         "--help"], cwd=REPO, capture_output=True, text=True,
                        timeout=120)
  assert proc.returncode == 0
  text = " ".join(proc.stdout.split())
  assert "--overwrite" in text
  assert "Replace an existing --output (without it, an existing file is " \
         "refused before any work)." in text


def test_learn_vocab_never_reads_what_it_writes(tmp_path):
  """``--input='corpus/**' --output=corpus/vocab.txt``: the second run would
  read the first one's vocabulary as text. Refused before any work."""
  import subprocess  # pylint: disable=import-outside-toplevel
  import sys  # pylint: disable=import-outside-toplevel
  from tests.helpers import REPO, one_error_line  # pylint: disable=import-outside-toplevel
  corpus = tmp_path / "corpus"
  corpus.mkdir()
  (corpus / "a.txt").write_text("Some words here.\n\nAnd more words there.\n")
  proc = subprocess.run(
      [sys.executable, "-m", "pipelines.learn_vocab",
       "--input=%s/**" % corpus, "--output=%s/vocab.txt" % corpus],
      cwd=REPO, capture_output=True, text=True, timeout=300,
      env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"))
  assert proc.returncode == 2, proc.stderr
  assert "which this command writes" in one_error_line(proc.stderr)
  assert sorted(os.listdir(corpus)) == ["a.txt"]
