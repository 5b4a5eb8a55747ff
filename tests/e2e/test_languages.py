"""A multilingual corpus through the command line: languages from tagged
--input patterns, XLM's alpha sampling, sequences that never mix two
languages, summary.json's per-language report, XLM's langs feature
(--langs_feature), the same examples with one worker or two, and what is
refused before any work."""

import json
import os
import random
import subprocess
import sys

import pytest

from tests.helpers import (REPO, VOCAB, assert_refused, digest, load_vocab_list,
                           read_examples, read_parquet_rows, run_cli)
from transforms import languages

WORDS = ("river stone garden window market harbor lantern meadow valley "
         "forest candle morning silver thunder orchard village").split()


def _write(path, docs, words):
  rng = random.Random(path)
  with open(path, "w", encoding="utf-8") as f:
    for _ in range(docs):
      for _ in range(rng.randint(2, 6)):
        f.write(" ".join(rng.choice(words) for _ in range(rng.randint(4, 12)))
                + "\n")
      f.write("\n")


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
  """Language "aa": English words, 8 times the bytes of "bb": numbers. No
  piece of one is a piece of the other."""
  root = tmp_path_factory.mktemp("multilingual")
  for name in ("aa", "bb"):
    os.makedirs(root / name)
  _write(str(root / "aa" / "part0.txt"), 160, WORDS)
  _write(str(root / "bb" / "part0.txt"), 40,
         [str(n) for n in range(100, 999, 37)])
  return str(root)


def _flags(corpus, out, *extra):
  return ["--input=aa=%s/aa/*,bb=%s/bb/*" % (corpus, corpus),
          "--output=" + out, "--packing=full_sentences",
          "--sentence_task=none", "--masking=none", "--max_seq_length=48",
          "--dupe_factor=3", "--language_sampling_alpha=0.3"] + list(extra)


def test_sampled_monolingual_and_reported(corpus, tmp_path):
  out = str(tmp_path / "one")
  run_cli(_flags(corpus, out))
  with open(VOCAB, encoding="utf-8") as f:
    vocab = f.read().split("\n")
  examples = read_examples(out, max_seq_length=48, masking="none",
                           sentence_task="none")
  assert len(examples) > 20
  kinds = set()
  for ex in examples:
    pieces = [vocab[i].lstrip("#") for i in
              ex["input_ids"][:int(ex["input_mask"].sum())]
              if vocab[i] not in ("[CLS]", "[SEP]")]
    alpha = all(p.isalpha() for p in pieces)
    assert alpha or all(p.isdigit() for p in pieces), pieces
    kinds.add(alpha)
  assert kinds == {True, False}
  with open(os.path.join(out, "summary.json"), encoding="utf-8") as f:
    summary = json.load(f)
  report = summary["languages"]
  assert not [k for k in summary["counts"] if "/" in k]
  # Each language is passed over dupe_factor q_i / p_i times: their ratio
  # is (p_bb / p_aa) ** (alpha - 1), and the passes over the bytes add up
  # to dupe_factor passes over the whole.
  p = {k: v["input_share"] for k, v in report.items()}
  r = {k: v["passes"] for k, v in report.items()}
  assert r["bb"] / r["aa"] == pytest.approx(
      (p["bb"] / p["aa"]) ** (0.3 - 1), rel=1e-4)
  assert sum(p[k] * r[k] for k in p) == pytest.approx(3, rel=1e-4)
  assert report["bb"]["target_share"] == pytest.approx(
      p["bb"] ** 0.3 / (p["aa"] ** 0.3 + p["bb"] ** 0.3), rel=1e-4)
  assert sum(v["instance_tokens"] for v in report.values()) == summary[
      "counts"]["instance_tokens"]
  # Against the same run without sampling: the small language's share of
  # the tokens grows by about its passes' ratio (3 each there).
  plain = str(tmp_path / "plain")
  run_cli([f for f in _flags(corpus, plain)
           if not f.startswith("--language_sampling_alpha")])
  with open(os.path.join(plain, "summary.json"), encoding="utf-8") as f:
    unsampled = json.load(f)["languages"]
  assert {v["passes"] for v in unsampled.values()} == {3.0}
  gain = {k: report[k]["instance_tokens"] / unsampled[k]["instance_tokens"]
          for k in report}
  assert gain["bb"] == pytest.approx(r["bb"] / 3, rel=0.15)
  assert gain["aa"] == pytest.approx(r["aa"] / 3, rel=0.15)


def test_same_examples_with_two_workers(corpus, tmp_path):
  one, two = str(tmp_path / "one"), str(tmp_path / "two")
  run_cli(_flags(corpus, one))
  run_cli(_flags(corpus, two, "--direct_num_workers=2"))
  spec = dict(max_seq_length=48, masking="none", sentence_task="none")
  assert digest(read_examples(one, **spec)) == digest(
      read_examples(two, **spec))


def _inspect(out):
  """pipelines.inspect on ``out``: it validates the langs (one id over each
  row, one of summary.json's) and names each example's language."""
  proc = subprocess.run([sys.executable, "-m", "pipelines.inspect", out,
                         "--num=40"], cwd=REPO, capture_output=True,
                        text=True, timeout=300,
                        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"))
  assert proc.returncode == 0, proc.stdout + proc.stderr
  assert "language aa (langs 0)" in proc.stdout, proc.stdout
  assert "language bb (langs 1)" in proc.stdout, proc.stdout


def _language_of(ex_ids, vocab):
  """0 for language aa (words), 1 for bb (numbers): their sorted order."""
  pieces = [vocab[i].lstrip("#") for i in ex_ids
            if vocab[i] not in ("[CLS]", "[SEP]")]
  if all(p.isalpha() for p in pieces):
    return 0
  assert all(p.isdigit() for p in pieces), pieces
  return 1


def test_langs_feature_holds_each_examples_language(corpus, tmp_path):
  """--langs_feature, with static masks: every record's langs is one id
  over the whole row, padding included, the id summary.json gives the
  language of its tokens (the masked ones put back); the other features,
  masks included, are those of the same run without the flag."""
  out, plain = str(tmp_path / "langs"), str(tmp_path / "plain")
  run_cli(_flags(corpus, out, "--masking=static", "--langs_feature"))
  run_cli(_flags(corpus, plain, "--masking=static"))
  vocab = load_vocab_list()
  spec = dict(max_seq_length=48, masking="static", sentence_task="none")
  examples = read_examples(out, langs=True, **spec)
  with open(os.path.join(out, "summary.json"), encoding="utf-8") as f:
    summary = json.load(f)
  ids = {k: v["id"] for k, v in summary["languages"].items()}
  assert ids == {"aa": 0, "bb": 1}
  assert summary["features"]["langs"] == "int64[48]"
  seen = set()
  for ex in examples:
    n = int(ex["input_mask"].sum())
    k = int(ex["masked_lm_weights"].sum())
    ids = ex["input_ids"][:n].copy()
    ids[ex["masked_lm_positions"][:k]] = ex["masked_lm_ids"][:k]
    assert len(set(ex["langs"].tolist())) == 1, ex["langs"]
    assert int(ex["langs"][0]) == _language_of(ids, vocab)
    seen.add(int(ex["langs"][0]))
  assert seen == {0, 1}
  assert digest([{k: v for k, v in ex.items() if k != "langs"}
                 for ex in examples]) == digest(read_examples(plain, **spec))
  _inspect(out)


def test_langs_feature_in_parquet(corpus, tmp_path):
  """The Parquet column langs: the row's language id at each token."""
  out = str(tmp_path / "parquet")
  run_cli(_flags(corpus, out, "--langs_feature", "--output_format=parquet"))
  vocab = load_vocab_list()
  with open(os.path.join(out, "summary.json"), encoding="utf-8") as f:
    summary = json.load(f)
  assert summary["features"]["langs"] == "list<item: int32>"
  rows = read_parquet_rows(out)
  assert len(rows) > 20
  for row in rows:
    assert len(row["langs"]) == len(row["input_ids"])
    assert set(row["langs"].tolist()) == {_language_of(row["input_ids"],
                                                      vocab)}
  _inspect(out)


@pytest.mark.parametrize("flags,message", [
    (["--input=aa=CORPUS/aa/*,CORPUS/bb/*"], "tags some patterns with a "
     "language and not"),
    (["--input=CORPUS/aa/*", "--language_sampling_alpha=0.3"],
     "--language_sampling_alpha needs languages"),
    (["--input=aa=CORPUS/*/*,bb=CORPUS/bb/*"],
     "is matched by the patterns of aa and bb"),
    (["--input=aa=CORPUS/aa/*,bb=CORPUS/bb/*", "--language_sampling_alpha=2"],
     "--language_sampling_alpha must be in (0, 1], got 2"),
    (["--input=CORPUS/aa/*", "--langs_feature=true"],
     "--langs_feature needs the languages before the job"),
])
def test_refused_before_any_work(corpus, tmp_path, flags, message):
  out = str(tmp_path / "out")
  assert_refused([f.replace("CORPUS", corpus) for f in flags]
                 + ["--output=" + out], message)
  assert not os.path.exists(out)


@pytest.fixture(scope="module")
def jsonl_corpus(tmp_path_factory):
  """One JSONL file whose records name their language in "lang": "aa"
  (English words) four times as many records as "bb" (numbers), and two
  records without a language."""
  path = str(tmp_path_factory.mktemp("jsonl") / "mixed.jsonl")
  rng = random.Random(5)
  numbers = [str(n) for n in range(100, 999, 37)]
  with open(path, "w", encoding="utf-8") as f:
    for i in range(150):
      language, words = ("bb", numbers) if i % 5 == 0 else ("aa", WORDS)
      text = "\n".join(" ".join(rng.choice(words) for _ in range(8))
                       for _ in range(rng.randint(2, 5)))
      f.write(json.dumps({"text": text, "lang": language}) + "\n")
    f.write(json.dumps({"text": "no language"}) + "\n")
    f.write(json.dumps({"text": "a bad one", "lang": "a b"}) + "\n")
  return path


def test_languages_from_a_jsonl_field(jsonl_corpus, tmp_path):
  """--language_field with sampling: a first pass counts each language's
  bytes, the passes follow them; records without a language are set aside
  and listed; no sequence mixes the two languages."""
  out = str(tmp_path / "field")
  proc = run_cli(["--input=" + jsonl_corpus, "--input_format=jsonl",
                  "--language_field=lang", "--output=" + out,
                  "--packing=full_sentences", "--sentence_task=none",
                  "--masking=none", "--max_seq_length=48", "--dupe_factor=3",
                  "--language_sampling_alpha=0.3", "--langs_feature",
                  "--max_rejected_fraction=0.05"])
  assert "records_missing_language 2" in proc.stderr
  with open(os.path.join(out, "summary.json"), encoding="utf-8") as f:
    summary = json.load(f)
  report = summary["languages"]
  assert sorted(report) == ["aa", "bb"]
  sizes = {k: v["bytes"] for k, v in report.items()}
  want = languages.sampling_passes(sizes, 0.3, 3)
  assert {k: v["passes"] for k, v in report.items()} == pytest.approx(
      want, abs=1e-6)
  assert report["bb"]["passes"] > 3 > report["aa"]["passes"]
  assert summary["rejected"] == {"records_missing_language": 2}
  with open(VOCAB, encoding="utf-8") as f:
    vocab = f.read().split("\n")
  # The first pass found the languages: XLM's langs holds their ids.
  assert {k: v["id"] for k, v in report.items()} == {"aa": 0, "bb": 1}
  for ex in read_examples(out, max_seq_length=48, masking="none",
                          sentence_task="none", langs=True):
    pieces = [vocab[i].lstrip("#") for i in
              ex["input_ids"][:int(ex["input_mask"].sum())]
              if vocab[i] not in ("[CLS]", "[SEP]")]
    alpha = all(p.isalpha() for p in pieces)
    assert alpha or all(p.isdigit() for p in pieces), pieces
    assert ex["langs"].tolist() == [0 if alpha else 1] * 48


@pytest.mark.parametrize("flags,message", [
    (["--input_format=lines", "--language_field=lang"],
     "--language_field needs --input_format=jsonl or parquet"),
    (["--input_format=jsonl", "--language_field=lang", "--input=aa=JSONL"],
     "two ways to give languages"),
])
def test_language_field_refused(jsonl_corpus, tmp_path, flags, message):
  out = str(tmp_path / "out")
  argv = ["--input=" + jsonl_corpus] + [
      f.replace("JSONL", jsonl_corpus) for f in flags] + ["--output=" + out]
  assert_refused(argv, message)
  assert not os.path.exists(out)


def test_learn_vocab_samples_languages(tmp_path):
  """learn_vocab --language_sampling_alpha: a small language ("bb", words
  of letters the large one never uses) gets more of the vocabulary than
  it does unsampled, and the done line gives each language's weight."""
  import subprocess  # pylint: disable=import-outside-toplevel
  import sys  # pylint: disable=import-outside-toplevel
  from tests.helpers import REPO  # pylint: disable=import-outside-toplevel
  big, small = tmp_path / "aa.txt", tmp_path / "bb.txt"
  rng = random.Random(9)
  _write(str(big), 400, ["".join(rng.choice("abcdefghilmnoprstuvw")
                                 for _ in range(rng.randint(4, 8)))
                         for _ in range(2000)])
  _write(str(small), 40, ["".join(rng.choice("zqxjk") for _ in range(6))
                          for _ in range(300)])
  learned = {}
  for name, extra in (("plain", []), ("sampled",
                                      ["--language_sampling_alpha=0.1"])):
    out = str(tmp_path / ("%s.txt" % name))
    proc = subprocess.run(
        [sys.executable, "-m", "pipelines.learn_vocab",
         "--input=aa=%s,bb=%s" % (big, small), "--output=" + out,
         "--vocab_size=1250"] + extra, cwd=REPO, capture_output=True,
        text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    if extra:
      assert "languages weighted for alpha 0.1: aa x" in proc.stderr
    with open(out, encoding="utf-8") as f:
      learned[name] = [t for t in f.read().split("\n")[999:] if t]
  def small_pieces(tokens):
    return sum(1 for t in tokens if len(t.lstrip("#")) > 1
               and set(t.lstrip("#")) <= set("zqxjk"))
  assert small_pieces(learned["sampled"]) > 1.5 * small_pieces(
      learned["plain"]), (small_pieces(learned["sampled"]),
                          small_pieces(learned["plain"]))
