"""pipelines/mlm.py without the command line: where the pools go on each
runner, and ``build()`` run on a TestPipeline."""

import pytest


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
