"""End to end: ``python -m pipelines.mlm`` on temp files, records read back
with TensorFlow, determinism across workers, and every refused input."""

import gzip
import json
import os
import subprocess
import sys
import time

import numpy as np
import psutil
import pytest

from tests.helpers import (REPO, VOCAB, assert_refused, digest,
                           load_vocab_list, read_examples, run_cli, shard_files,
                           write_lines_corpus)
from transforms import tokenization

CLS, SEP, MASK = 101, 102, 103


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
  directory = str(tmp_path_factory.mktemp("corpus"))
  return write_lines_corpus(directory, num_files=3, docs_per_file=20)


@pytest.fixture(scope="module")
def baseline(corpus, tmp_path_factory):
  """One worker, files in order, default sharding."""
  out = str(tmp_path_factory.mktemp("out") / "baseline")
  run_cli(["--input=" + ",".join(corpus), "--output=" + out,
           "--dupe_factor=3", "--direct_num_workers=1"])
  return out


def _corpus_token_streams(paths):
  tokenizer, vocab = tokenization.load_tokenizer(vocab_file=VOCAB)
  streams = []
  for path in paths:
    with open(path, encoding="utf-8") as f:
      for block in f.read().split("\n\n"):
        sentences = [s for s in block.split("\n") if s.strip()]
        if sentences:
          ids = []
          for enc in tokenizer.encode_batch(sentences, add_special_tokens=False):
            ids.extend(enc.ids)
          streams.append(" %s " % " ".join(map(str, ids)))
  return streams


def test_records_are_bert_examples(corpus, baseline):
  examples = read_examples(baseline)
  with open(os.path.join(baseline, "summary.json")) as f:
    summary = json.load(f)
  counts = summary["counts"]
  assert len(examples) == counts["instances"] > 100
  streams = _corpus_token_streams(corpus)
  vocab = load_vocab_list()
  masked_total = 0
  for ex in examples:
    ids, mask, seg = ex["input_ids"], ex["input_mask"], ex["segment_ids"]
    n = int(mask.sum())
    assert mask[:n].all() and not mask[n:].any() and not ids[n:].any()
    seps = np.nonzero(ids == SEP)[0]
    assert ids[0] == CLS and len(seps) == 2 and seps[1] == n - 1
    assert not seg[:seps[0] + 1].any() and seg[seps[0] + 1:n].all()
    k = int(ex["masked_lm_weights"].sum())
    masked_total += k
    pos = ex["masked_lm_positions"][:k]
    assert list(pos) == sorted(set(pos)) and 0 < pos.min() and pos.max() < n - 1
    assert not ex["masked_lm_positions"][k:].any()
    assert k == min(20, max(1, int(round(n * 0.15))))
    # Put the labels back: segment A is then a run of some document's tokens,
    # and so is B for an actual next sentence.
    original = ids.copy()
    original[pos] = ex["masked_lm_ids"][:k]
    assert SEP not in original[pos] and CLS not in original[pos]
    a = " %s " % " ".join(map(str, original[1:seps[0]]))
    b = " %s " % " ".join(map(str, original[seps[0] + 1:n - 1]))
    assert any(a in s for s in streams), [vocab[i] for i in original[:n]]
    if ex["next_sentence_labels"][0] == 0:
      assert any((a.rstrip() + b) in s for s in streams)
  assert counts["masked_tokens"] == masked_total
  assert counts["documents"] == len(streams) == 60
  assert counts["tokens"] == sum(len(s.split()) for s in streams)
  assert counts["random_next_instances"] == sum(
      int(e["next_sentence_labels"][0]) for e in examples)
  for name in ("sentences", "unknown_tokens", "instances", "truncated_instances"):
    assert name in counts
  # Output layout.
  names = sorted(os.listdir(baseline))
  assert "summary.json" in names and "transformed_metadata" in names
  assert "_INCOMPLETE" not in names
  assert all(n.endswith(".tfrecord") for n in names if n.startswith("part-"))
  assert [s["path"] for s in summary["shards"]] == [
      os.path.basename(p) for p in shard_files(baseline)]


def test_records_are_shuffled_across_documents(baseline):
  examples = read_examples(baseline)
  # Consecutive records rarely share segment A's first token run.
  firsts = [tuple(e["input_ids"][1:4]) for e in examples]
  same = sum(1 for x, y in zip(firsts, firsts[1:]) if x == y)
  assert same < len(firsts) * 0.2


def test_tft_reads_the_schema(baseline):
  import tensorflow_transform as tft
  from transforms.examples import ExampleLayout, feature_spec
  spec = tft.TFTransformOutput(baseline).transformed_feature_spec()
  assert spec == feature_spec(ExampleLayout())


def test_same_examples_whatever_the_workers_order_and_shards(corpus, baseline,
                                                            tmp_path):
  reordered = str(tmp_path / "two_workers")
  proc = run_cli(["--input=" + ",".join(reversed(corpus)),
                  "--output=" + reordered, "--dupe_factor=3",
                  "--direct_num_workers=2",
                  "--direct_running_mode=multi_processing", "--num_shards=3",
                  "--compression=gzip", "--quiet"])
  # Quiet with worker processes too: only the closing line (the workers'
  # expected warnings are not passed on, runners/worker.py).
  assert [l for l in proc.stderr.splitlines() if l.strip()] == [
      proc.stderr.strip().splitlines()[-1]], proc.stderr
  assert proc.stderr.strip().startswith("done: ")
  files = shard_files(reordered)
  assert len(files) == 3 and all(f.endswith(".tfrecord.gz") for f in files)
  with gzip.open(files[0]) as f:
    f.read(16)
  assert digest(read_examples(reordered)) == digest(read_examples(baseline))


def test_workers_are_the_launcher_and_the_processes_it_started_first(
    corpus, baseline, tmp_path):
  """--direct_num_workers=3: the launcher is one worker, and the two worker
  processes are the ones it started as it began (runners/prestart.py),
  handed their job: no other process is started, and the examples are the
  baseline's."""
  out = str(tmp_path / "three")
  log = tmp_path / "log"
  with open(log, "w") as stderr:
    proc = subprocess.Popen(
        [sys.executable, "-m", "pipelines.mlm", "--input=" + ",".join(corpus),
         "--output=" + out, "--dupe_factor=3", "--direct_num_workers=3",
         "--quiet"], cwd=REPO, stderr=stderr,
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"))
  seen = {}  # pid -> its command line, as last seen (after its exec)
  try:
    launcher = psutil.Process(proc.pid)
    deadline = time.monotonic() + 300
    while proc.poll() is None:
      assert time.monotonic() < deadline, "the job did not end"
      try:
        for child in launcher.children(recursive=True):
          seen[child.pid] = child.cmdline()
      except psutil.Error:
        pass
      time.sleep(0.01)
  finally:
    if proc.poll() is None:
      proc.kill()
    proc.wait()
  assert proc.returncode == 0, log.read_text()
  assert len(seen) == 2, seen
  assert all(cmdline[-3:] == ["-m", "runners.worker", "--prestarted"]
             for cmdline in seen.values()), seen
  assert digest(read_examples(out)) == digest(read_examples(baseline))


def test_pools_through_a_groupbykey_give_the_same_examples(corpus, baseline,
                                                           tmp_path):
  """The baseline gathered its pools through files in OUTPUT/_pools (the
  DirectRunner default) and removed them; a Beam GroupByKey gives the same
  examples, and a --pool_dir of one's own is left as it was found."""
  assert not os.path.exists(os.path.join(baseline, "_pools"))
  out = str(tmp_path / "groupbykey")
  run_cli(["--input=" + ",".join(corpus), "--output=" + out,
           "--dupe_factor=3", "--pool_shuffle=groupbykey"])
  assert digest(read_examples(out)) == digest(read_examples(baseline))
  own = tmp_path / "my_pools"
  own.mkdir()
  (own / "keep.txt").write_text("mine")
  out = str(tmp_path / "own_pool_dir")
  run_cli(["--input=" + ",".join(corpus), "--output=" + out,
           "--dupe_factor=3", "--pool_dir=" + str(own)])
  assert digest(read_examples(out)) == digest(read_examples(baseline))
  assert sorted(os.listdir(own)) == ["keep.txt"]


@pytest.mark.parametrize("shards", [[], ["--num_shards=2"]])
def test_relative_paths_as_in_the_readme(corpus, baseline, tmp_path, shards):
  """The README's command names its input and output relative to the
  working directory; the shards' temporary files must be found again."""
  out = os.path.relpath(str(tmp_path / "relative"), REPO)
  inputs = ",".join(os.path.relpath(c, REPO) for c in corpus)
  run_cli(["--input=" + inputs, "--output=" + out, "--dupe_factor=3"]
          + shards)
  assert digest(read_examples(os.path.join(REPO, out))) == digest(
      read_examples(baseline))
  assert not any(n.startswith("beam-temp")
                 for n in os.listdir(os.path.join(REPO, out)))


def test_another_seed_gives_other_examples(corpus, baseline, tmp_path):
  out = str(tmp_path / "seed")
  run_cli(["--input=" + ",".join(corpus), "--output=" + out,
           "--dupe_factor=3", "--random_seed=99"])
  assert digest(read_examples(out)) != digest(read_examples(baseline))


def test_wikiextractor_and_jsonl_formats(tmp_path):
  wiki = tmp_path / "wiki_00"
  wiki.write_text(
      '<doc id="1" url="u" title="Ships">\nShips\n\nShips float. They carry '
      'cargo across oceans.\n\nSome ships are very large.\n</doc>\n'
      '<doc id="2" url="u" title="Bread">\nBread\n\nBread is baked. It needs '
      'flour and water.\n</doc>\n')
  out = str(tmp_path / "wiki_out")
  run_cli(["--input=" + str(wiki), "--input_format=wikiextractor",
           "--output=" + out, "--dupe_factor=2"])
  summary = json.load(open(os.path.join(out, "summary.json")))
  assert summary["counts"]["documents"] == 2
  assert summary["counts"]["sentences"] == 5  # titles dropped, split by blingfire
  vocab = load_vocab_list()
  text = " ".join(vocab[i] for e in read_examples(out) for i in e["input_ids"])
  assert "ships" not in text.split()[:1]

  jsonl = tmp_path / "docs.jsonl"
  jsonl.write_text(json.dumps({"body": "First doc. Two sentences."}) + "\n"
                   + "{broken\n" + json.dumps({"body": "Second one."}) + "\n")
  out = str(tmp_path / "jsonl_out")
  run_cli(["--input=" + str(jsonl), "--input_format=jsonl",
           "--text_field=body", "--output=" + out, "--dupe_factor=1",
           "--max_rejected_fraction=0.5"])
  summary = json.load(open(os.path.join(out, "summary.json")))
  assert summary["counts"]["documents"] == 2
  assert summary["rejected"] == {"malformed_jsonl_lines": 1}


def test_dirty_bytes_are_repaired_and_counted(tmp_path):
  raw = (b"\xef\xbb\xbfClean first line.\r\nBroken \xff\xfe bytes here.\r\n"
         b"Nul\x00 inside.\r\n\r\nOld mac line one.\rOld mac line two.\r\r"
         b"Third document.\n")
  path = tmp_path / "dirty.txt"
  path.write_bytes(raw)
  out = str(tmp_path / "out")
  run_cli(["--input=" + str(path), "--output=" + out, "--dupe_factor=1"])
  counts = json.load(open(os.path.join(out, "summary.json")))["counts"]
  assert counts["documents"] == 3
  assert counts["invalid_utf8_lines"] == 1
  assert counts["nul_bytes_removed"] == 1
  assert counts["crlf_line_endings"] == 4
  assert counts["lone_cr_line_breaks"] == 3
  assert counts["byte_order_marks_removed"] == 1
  assert counts["sentences"] == 6


def test_boolean_flag_forms(corpus, tmp_path):
  for i, form in enumerate(["--do_whole_word_mask", "--do_whole_word_mask=true",
                            "--do_whole_word_mask=False"]):
    out = str(tmp_path / ("b%d" % i))
    run_cli(["--input=" + corpus[0], "--output=" + out, "--dupe_factor=1",
             form, "--do_lower_case=true"])
    options = json.load(open(os.path.join(out, "summary.json")))["options"]
    assert options["do_whole_word_mask"] is (i < 2)
    assert options["do_lower_case"] is True


def test_help_lists_every_flag():
  proc = run_cli(["--help"])
  for flag in ("--input", "--output", "--vocab_file", "--tokenizer_file",
               "--do_lower_case", "--max_seq_length", "--max_predictions_per_seq",
               "--masked_lm_prob", "--random_seed", "--dupe_factor",
               "--short_seq_prob", "--do_whole_word_mask", "--input_format",
               "--text_field", "--num_shards", "--compression", "--overwrite",
               "--random_next_pool_size", "--pool_shuffle", "--pool_dir"):
    assert flag in proc.stdout


def _refused(args, tmp_path, message):
  if not any(a.startswith("--output") for a in args):
    args = args + ["--output=" + str(tmp_path / "refused_out")]
  return assert_refused(args, message)


@pytest.mark.parametrize("extra,message", [
    (["--max_seq_length=4"], "--max_seq_length must be at least 5"),
    (["--masked_lm_prob=1.5"], "--masked_lm_prob must be in [0, 1]"),
    (["--masked_lm_prob=nan"], "--masked_lm_prob must be in [0, 1]"),
    (["--dupe_factor=0"], "--dupe_factor must be at least 1"),
    (["--short_seq_prob=2"], "--short_seq_prob must be in [0, 1]"),
    (["--max_predictions_per_seq=-1"], "--max_predictions_per_seq must be"),
    (["--max_rejected_fraction=2"], "--max_rejected_fraction must be in"),
    (["--max_seq_lenght=64"], "unknown flag --max_seq_lenght"),
    (["--pool_shuffle=disk"], "argument --pool_shuffle: invalid choice: 'disk'"),
    (["--max_seq_length=abc"], "argument --max_seq_length: invalid int value"),
])
def test_bad_option_values_are_refused(corpus, tmp_path, extra, message):
  _refused(["--input=" + corpus[0]] + extra, tmp_path, message)
  assert not (tmp_path / "refused_out").exists()


@pytest.mark.parametrize("extra", [
    # BERT's defaults with a short sequence: more predictions allowed than
    # tokens; BERT pads the prediction features to max_predictions_per_seq.
    ["--max_seq_length=16"],
    ["--max_seq_length=8", "--max_predictions_per_seq=40"],
    # BERT's num_to_predict is max(1, round(len x p)): 0 still masks one.
    ["--masked_lm_prob=0"],
    # No prediction at all: zero-length prediction features.
    ["--max_predictions_per_seq=0"],
])
def test_command_lines_bert_accepts_work(corpus, tmp_path, extra):
  out = str(tmp_path / "out")
  run_cli(["--input=" + corpus[0], "--output=" + out, "--dupe_factor=1"]
          + extra)
  options = json.load(open(os.path.join(out, "summary.json")))["options"]
  seq, pred = options["max_seq_length"], options["max_predictions_per_seq"]
  examples = read_examples(out, seq, pred)
  assert examples
  for ex in examples:
    assert ex["input_ids"].shape == (seq,)
    assert ex["masked_lm_positions"].shape == (pred,)
    assert ex["masked_lm_weights"].shape == (pred,)
    k = int(ex["masked_lm_weights"].sum())
    assert k == min(pred, max(1, k))  # at least one unless none allowed
    assert not ex["masked_lm_positions"][k:].any()


def test_cased_vocabulary_with_lower_casing_warns(corpus, tmp_path):
  with open(VOCAB, encoding="utf-8") as f:
    tokens = f.read().split("\n")
  tokens[1996] = "The"  # one upper-case token makes it a cased vocabulary
  vocab = tmp_path / "cased.txt"
  vocab.write_text("\n".join(tokens), encoding="utf-8")
  for flag, warned in (("--do_lower_case=true", True),
                       ("--do_lower_case=false", False)):
    out = str(tmp_path / flag[-4:])
    proc = run_cli(["--input=" + corpus[0], "--output=" + out,
                    "--dupe_factor=1", "--vocab_file=" + str(vocab), flag])
    warnings = [l for l in proc.stderr.splitlines()
                if l.startswith("warning:") and "upper-case" in l]
    assert len(warnings) == int(warned), proc.stderr[-2000:]
  plain = run_cli(["--input=" + corpus[0], "--output=" + str(tmp_path / "u"),
                   "--dupe_factor=1"])
  assert "upper-case" not in plain.stderr


def test_missing_input_is_refused(corpus, tmp_path):
  _refused(["--input=%s,%s" % (corpus[0], tmp_path / "nothing*.txt")],
           tmp_path, "no file matches --input pattern")


@pytest.mark.parametrize("content,message", [
    (None, "cannot read"),
    (b"", "is empty"),
    (b"[PAD]\n[UNK]\n[CLS]\n[SEP]\nword\n", "lacks [MASK]"),
])
def test_bad_vocabulary_is_refused(corpus, tmp_path, content, message):
  vocab = tmp_path / "vocab.txt"
  if content is not None:
    vocab.write_bytes(content)
  _refused(["--input=" + corpus[0], "--vocab_file=" + str(vocab)], tmp_path,
           message)


def test_non_empty_output_is_refused_and_left_alone(corpus, tmp_path):
  out = tmp_path / "existing"
  out.mkdir()
  (out / "precious.txt").write_text("keep me")
  _refused(["--input=" + corpus[0], "--output=" + str(out)], tmp_path,
           "is not empty")
  assert os.listdir(out) == ["precious.txt"]
  # --overwrite replaces this tool's output only, never another file.
  _refused(["--input=" + corpus[0], "--output=" + str(out), "--overwrite"],
           tmp_path, "does not write")
  assert os.listdir(out) == ["precious.txt"]


def test_interrupted_run_is_cleaned_up(corpus, tmp_path):
  out = tmp_path / "interrupted"
  out.mkdir()
  (out / "_INCOMPLETE").write_text("a run started")
  (out / "part-00000-of-00002.tfrecord").write_bytes(b"half a shard")
  run_cli(["--input=" + corpus[0], "--output=" + str(out), "--dupe_factor=1",
           "--num_shards=1"])
  assert sorted(os.listdir(out)) == ["part-00000-of-00001.tfrecord",
                                     "summary.json", "transformed_metadata"]
