"""pipelines/mlm.py without the command line: where the pools go on each
runner, and ``build()`` run on a TestPipeline."""

import os
import subprocess
import sys

import numpy as np
import pytest

from tests.helpers import (REPO, SAMPLE_DIR, VOCAB, load_vocab_list,
                           local_test_pipeline, read_examples,
                           sample_documents, shard_files)


@pytest.mark.parametrize("runner, flags, shuffle, parent", [
    ("DirectRunner", ["--output=/data/out"], "files", "/data/out/_pools"),
    ("DirectRunner", ["--output=s3://bucket/out"], "files", "TMP"),
    ("PortableRunner", ["--output=/data/out"], "files", "/data/out/_pools"),
    ("FlinkRunner", ["--output=s3://bucket/out"], "files",
     "s3://bucket/out/_pools"),
    ("FlinkRunner", ["--output=s3://bucket/out", "--pool_dir=s3://b/tmp"],
     "files", "s3://b/tmp"),
    ("PortableRunner", ["--output=/data/out", "--pool_shuffle=groupbykey"],
     "groupbykey", None),
])
def test_pool_files_go_where_every_worker_reaches_them(
    runner, flags, shuffle, parent, tmp_path, monkeypatch):
  """By default the pools go through files on every runner: in the output's
  own filesystem (an object store on a cluster whose hosts share no
  directory), or the local temp directory on the DirectRunner."""
  import tempfile
  from apache_beam.options.pipeline_options import PipelineOptions
  from pipelines import mlm
  from pipelines.options import MlmOptions, resolve
  monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
  flags = [f.replace("/data", str(tmp_path)) for f in flags]
  opts = PipelineOptions(["--input=x"] + flags).view_as(MlmOptions)
  resolve(opts)
  runner = mlm.direct.LOCAL_RUNNER if runner == "DirectRunner" else runner
  assert mlm.pool_shuffle(opts) == shuffle
  directory = mlm.pool_directory(opts, runner)
  if parent is None:
    assert directory is None
  else:
    parent = parent.replace("/data", str(tmp_path)).replace("TMP",
                                                            str(tmp_path))
    assert directory.startswith(parent + "/mlm-pools-"), directory
  # Only a GroupByKey on a cluster comes with a warning about its memory.
  warning = mlm.groupbykey_warning(opts, runner)
  assert bool(warning) == (shuffle == "groupbykey"
                           and runner != mlm.direct.LOCAL_RUNNER)


def _contains(haystack, needle):
  """Whether ``needle`` is a contiguous run of ``haystack`` (int arrays)."""
  if len(needle) == 0:
    return True
  starts = np.flatnonzero(haystack[:len(haystack) - len(needle) + 1]
                          == needle[0])
  return any(np.array_equal(haystack[s:s + len(needle)], needle)
             for s in starts)


@pytest.mark.parametrize("pools", ["files", "groupbykey"])
def test_build_turns_a_corpus_into_examples_on_a_test_pipeline(pools,
                                                               tmp_path):
  """``build()`` on a TestPipeline, with the shipped vocabulary and the
  sample corpus, pools through files (the default) or a GroupByKey: the
  shards it returns are the ones written, TensorFlow parses every record,
  the masked positions hold [MASK] about 80% of the time, and with the
  labels put back every segment A is a contiguous run of one document's
  tokens, so reading, splitting, tokenizing, pooling, masking and writing
  each did their part."""
  import apache_beam as beam  # pylint: disable=import-outside-toplevel
  from apache_beam.options.pipeline_options import PipelineOptions  # pylint: disable=import-outside-toplevel
  from apache_beam.testing.util import BeamAssertException, assert_that  # pylint: disable=import-outside-toplevel
  from pipelines import mlm, resume  # pylint: disable=import-outside-toplevel
  from pipelines.options import MlmOptions, resolve, validate  # pylint: disable=import-outside-toplevel
  from transforms.tokenization import build_tokenizer, load_tokenizer  # pylint: disable=import-outside-toplevel
  out = str(tmp_path / "out")
  opts = PipelineOptions([
      "--input=" + os.path.join(SAMPLE_DIR, "*.txt"), "--output=" + out,
      "--vocab_file=" + VOCAB, "--dupe_factor=2", "--num_shards=0",
      "--pool_shuffle=" + pools]).view_as(MlmOptions)
  resolve(opts)
  validate(opts)
  _, vocab = load_tokenizer(vocab_file=VOCAB)
  pool_dir = str(tmp_path / "pools") if pools == "files" else None
  if pool_dir:
    os.makedirs(os.path.join(pool_dir, resume.SHARDS_DIR))

  def are_the_shards_written(names):
    on_disk = sorted(os.path.basename(f) for f in shard_files(out))
    if not names or sorted(names) != on_disk:
      raise BeamAssertException("returned %s, written %s" % (names, on_disk))

  with local_test_pipeline() as p:
    written = mlm.build(p, opts, vocab, pool_dir=pool_dir)
    assert_that(written | beam.Map(os.path.basename), are_the_shards_written)
  assert all(f.endswith(".tfrecord") for f in shard_files(out))
  examples = read_examples(out)
  tokenizer = build_tokenizer(load_vocab_list(), True)
  docs = [np.array([t for s in doc for t in tokenizer.encode(s).ids])
          for doc in sample_documents()]
  # Each of the two passes over each document makes an instance at least.
  assert len(examples) >= 2 * len(docs)
  masked = shown_mask = 0
  for ex in examples:
    k = int(ex["masked_lm_weights"].sum())
    assert k > 0
    positions = ex["masked_lm_positions"][:k]
    masked += k
    shown_mask += int(np.count_nonzero(ex["input_ids"][positions]
                                       == vocab.mask_id))
    ids = ex["input_ids"].copy()
    ids[positions] = ex["masked_lm_ids"][:k]
    assert ids[0] == vocab.cls_id
    a = ids[1:list(ids).index(vocab.sep_id)]
    assert any(_contains(d, a) for d in docs), a
  assert 0.74 < shown_mask / masked < 0.86


@pytest.mark.parametrize("output_format", ["tfrecord", "parquet"])
def test_token_boundary_on_a_wordpiece_vocabulary(output_format, tmp_path):
  """``--token_boundary=true`` with BERT's vocabulary (no preset): each
  example's token_boundary is ALBERT's for WordPiece, on the tokens before
  masking: 1 at [CLS] and [SEP] and at each piece that does not start with
  ## (its _is_start_piece_bert), 0 at ## pieces and in the padding; the
  other features are those of the same run without it."""
  from apache_beam.options.pipeline_options import PipelineOptions  # pylint: disable=import-outside-toplevel
  from pipelines import mlm  # pylint: disable=import-outside-toplevel
  from pipelines.options import MlmOptions, resolve, validate  # pylint: disable=import-outside-toplevel
  from tests.helpers import digest, read_parquet_rows  # pylint: disable=import-outside-toplevel
  from transforms.tokenization import load_tokenizer  # pylint: disable=import-outside-toplevel
  _, vocab = load_tokenizer(vocab_file=VOCAB)
  tokens = load_vocab_list()

  def run(name, flags):
    out = str(tmp_path / name)
    opts = PipelineOptions([
        "--input=" + os.path.join(SAMPLE_DIR, "*.txt"), "--output=" + out,
        "--vocab_file=" + VOCAB, "--dupe_factor=1", "--max_seq_length=64",
        "--output_format=" + output_format, "--do_whole_word_mask"]
                           + flags).view_as(MlmOptions)
    resolve(opts)
    validate(opts)
    with local_test_pipeline() as p:
      mlm.build(p, opts, vocab)
    if output_format == "parquet":
      return read_parquet_rows(out)
    return read_examples(out, max_seq_length=64,
                         token_boundary=opts.token_boundary)

  with_it = run("with", ["--token_boundary=true"])
  without = run("without", [])
  assert digest([{k: v for k, v in e.items() if k != "token_boundary"}
                 for e in with_it]) == digest(without)
  assert "token_boundary" not in without[0]
  continuations = masked_continuations = 0
  for ex in with_it:
    if output_format == "parquet":
      ids = ex["input_ids"].copy()
      labels = ex["labels"]
      ids[labels != -100] = labels[labels != -100]
      boundary, padding = ex["token_boundary"], []
    else:
      n = int(ex["input_mask"].sum())
      k = int(ex["masked_lm_weights"].sum())
      ids = ex["input_ids"][:n].copy()
      ids[ex["masked_lm_positions"][:k]] = ex["masked_lm_ids"][:k]
      boundary, padding = ex["token_boundary"][:n], ex["token_boundary"][n:]
    pieces = [tokens[i] for i in ids]
    want = [1 if p in ("[CLS]", "[SEP]") else int(not p.startswith("##"))
            for p in pieces]
    assert boundary.tolist() == want
    assert not np.any(padding)
    continuations += want.count(0)
    if output_format == "tfrecord":
      masked_continuations += sum(
          1 for p in ex["masked_lm_positions"][:k] if not want[p])
  assert continuations > 20
  if output_format == "tfrecord":
    assert masked_continuations > 0  # whole words: ## pieces masked too


def test_collect_less_freezes_the_imports_and_raises_the_thresholds():
  """runners.direct.collect_less, which the job and its workers call once
  their imports are done, with the collector off until then: the
  collector's thresholds become GC_THRESHOLDS, what was alive is out of its
  scans, and the collector is on again. In a process of its own, so this
  one's collector is left as it is."""
  code = ("import gc; gc.disable(); from runners import direct; "
          "before = gc.get_freeze_count(); direct.collect_less(); "
          "print(gc.get_threshold() == direct.GC_THRESHOLDS, "
          "gc.get_freeze_count() > before > -1, gc.isenabled())")
  out = subprocess.run([sys.executable, "-c", code], cwd=REPO, check=True,
                       capture_output=True, text=True).stdout.split()
  assert out == ["True", "True", "True"]


@pytest.mark.parametrize("program", ["pipelines.mlm", "runners.worker"])
def test_programs_turn_the_collector_on_once_imported(program):
  """The job's and the workers' collector is off while they import and on
  (with GC_THRESHOLDS) once collect_less ran: checked at the moment each
  program calls it."""
  code = ("import gc, runpy, sys; from runners import direct; "
          "seen = [];\n"
          "def spy():\n"
          "  seen.append(gc.isenabled()); real(); "
          "print(seen[0], gc.isenabled(), gc.get_threshold() == "
          "direct.GC_THRESHOLDS, flush=True); direct.exit_now(0)\n"
          "real = direct.collect_less; direct.collect_less = spy\n"
          "sys.argv = [%r, '--help']\n"
          "runpy.run_module(%r, run_name='__main__')" % (program, program))
  out = subprocess.run([sys.executable, "-c", code], cwd=REPO,
                       capture_output=True, text=True, timeout=120)
  assert out.stdout.split()[-3:] == ["False", "True", "True"], out.stderr


@pytest.mark.parametrize("flags, one", [
    ([], True),
    (["--direct_num_workers=1"], True),
    (["--direct_num_workers=2"], False),
    (["--direct_num_workers=0"], False),  # one per core
    (["--direct_num_workers=2", "--direct_running_mode=in_memory"], False),
    (["--runner=FlinkRunner", "--flink_master=localhost:8081"], False),
])
def test_a_job_on_one_worker_is_built_without_spreading(flags, one,
                                                         tmp_path):
  """``direct.one_worker`` is true only for the DirectRunner's one worker,
  and ``build(spread=…)`` follows it: the file ranges and the pool groups
  go through one Reshuffle each (the ranges' Create's own, and
  InstancesFromSpill's) with any other runner or count of workers, and
  through none on one worker."""
  from apache_beam.options.pipeline_options import PipelineOptions  # pylint: disable=import-outside-toplevel
  from pipelines import mlm  # pylint: disable=import-outside-toplevel
  from pipelines.options import MlmOptions, resolve  # pylint: disable=import-outside-toplevel
  from runners import direct  # pylint: disable=import-outside-toplevel
  from runners.argv import given_options  # pylint: disable=import-outside-toplevel
  from transforms.tokenization import load_tokenizer  # pylint: disable=import-outside-toplevel
  import apache_beam as beam  # pylint: disable=import-outside-toplevel
  argv = ["--input=" + os.path.join(SAMPLE_DIR, "*.txt"),
          "--output=" + str(tmp_path / "out")] + flags
  options = PipelineOptions(argv)
  direct.apply_defaults(options, given_options(argv))
  assert direct.one_worker(options) == one
  opts = options.view_as(MlmOptions)
  resolve(opts)
  _, vocab = load_tokenizer(vocab_file=VOCAB)
  pipeline = beam.Pipeline(runner=direct.LocalRunner())
  mlm.build(pipeline, opts, vocab, pool_dir=str(tmp_path / "pools"),
            spread=not direct.one_worker(options))
  names = [t.unique_name for t in
           pipeline.to_runner_api().components.transforms.values()
           if t.unique_name.endswith("/Reshuffle")
           or t.unique_name.endswith("/Spread")]
  assert sorted(names) == ([] if one else [
      "CreateInstances/PoolFiles/InstancesFromSpill/Spread",
      "ReadDocuments/Ranges/MaybeReshuffle/Reshuffle"])
