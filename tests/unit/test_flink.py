"""runners/flink.py: the Flink presets, the REST address and the counters read
from Flink's REST API (the jobs on a real cluster:
tests/cluster/test_flink_cluster.py)."""

import base64
import json

from apache_beam.options.pipeline_options import PipelineOptions

from runners import flink


def test_flink_metrics_are_read_from_the_accumulator_beam_keeps():
  """The shape Beam's Flink runner gives ``GET /jobs/<id>/accumulators``
  (seen on this cluster): user counters as base64 varints."""
  def counter(name, value, namespace="mlm"):
    payload, out = value, bytearray()
    while payload >= 0x80:
      out.append((payload & 0x7F) | 0x80)
      payload >>= 7
    out.append(payload)
    return {"urn": "beam:metric:user:sum_int64:v1",
            "type": "beam:metrics:sum_int64:v1",
            "payload": base64.b64encode(bytes(out)).decode(),
            "labels": {"NAMESPACE": namespace, "NAME": name,
                       "PTRANSFORM": "ref_AppliedPTransform_Read_3"}}
  value = {"metrics": {"attempted": [
      counter("documents_read", 103), counter("documents_read", 97),
      counter("input_bytes", 2_071_509), counter("other", 5, "beam"),
      {"urn": "beam:metric:pardo_execution_time:start_bundle_msecs:v1",
       "type": "beam:metrics:sum_int64:v1", "payload": "AA==",
       "labels": {"PTRANSFORM": "fn/write/ref_PCollection_PCollection_22:0"}}
  ]}}
  answer = {"job-accumulators": [], "user-task-accumulators": [
      {"name": "__metricscontainers", "type": "MetricsAccumulator",
       "value": json.dumps(value, indent=2)}]}
  assert flink.metric_counts(answer) == {"documents_read": 200,
                                         "input_bytes": 2_071_509}


def test_flink_rest_address():
  from apache_beam.options.pipeline_options import PipelineOptions  # pylint: disable=import-outside-toplevel
  def url(*args):
    return flink.rest_url(PipelineOptions(list(args)))
  assert url("--flink_master=jm:8082") == "http://jm:8082"
  assert url("--job_endpoint=10.0.0.5:8099") == "http://10.0.0.5:8081"
  assert url("--flink_master=[auto]") is None


def _with_presets(argv):
  """The options Beam gets for ``argv``: parsed, then the presets set
  where ``argv`` left them unset, as pipelines.mlm does."""
  from apache_beam.options.pipeline_options import PipelineOptions  # pylint: disable=import-outside-toplevel
  from runners import direct  # pylint: disable=import-outside-toplevel
  from runners.argv import given_options  # pylint: disable=import-outside-toplevel
  options = PipelineOptions(argv)
  given = given_options(argv)
  direct.apply_defaults(options, given)
  output = [a.split("=", 1)[1] for a in argv if a.startswith("--output=")]
  flink.apply_defaults(options, given, output[0] if output else "")
  return options.get_all_options(retain_unknown_options=True)


def test_flink_presets():
  on_flink = _with_presets(["--runner=FlinkRunner",
                            "--flink_master=10.0.0.5:8081",
                            "--output=s3://b/output/Run 1/"])
  assert on_flink["flink_version"] == "1.19"  # the clusters' Flink
  assert on_flink["environment_type"] == "EXTERNAL"
  assert on_flink["environment_config"] == "localhost:50000"
  assert on_flink["flink_submit_uber_jar"] is True
  assert on_flink["job_name"] == "mlm-pipeline-run-1"
  mine = _with_presets(["--runner=FlinkRunner", "--flink_master=[local]",
                        "--environment_type=LOOPBACK", "--job_name=mine",
                        "--flink_version=1.20"])
  assert mine["flink_submit_uber_jar"] is False
  assert mine["environment_type"] == "LOOPBACK"
  assert mine["environment_config"] is None
  assert mine["flink_version"] == "1.20" and mine["job_name"] == "mine"
  local = _with_presets(["--runner=DirectRunner", "--direct_num_workers=2"])
  assert local["runner"] == "runners.direct.LocalRunner"
  assert local["direct_running_mode"] == "multi_processing"
  assert local["environment_type"] is None and local["job_name"] is None
  assert _with_presets(["--direct_num_workers=2",
                        "--direct_running_mode=in_memory"])[
                            "direct_running_mode"] == "in_memory"
  assert _with_presets(["--flink_master=[local]"])["runner"] == "FlinkRunner"
  portable = _with_presets(["--runner=PortableRunner",
                            "--job_endpoint=localhost:8099",
                            "--output=/tmp/out"])
  assert portable["environment_type"] == "EXTERNAL"
  assert portable["environment_config"] == "localhost:50000"
  assert portable["job_name"] == "mlm-pipeline-out"
  assert portable["flink_submit_uber_jar"] is False
  # The artifact service beside the job server, at the address given (a
  # cluster host's job server listens on 0.0.0.0 and would name that).
  assert portable["artifact_endpoint"] == "localhost:8098"
  given = _with_presets(["--runner=PortableRunner",
                         "--job_endpoint=10.0.0.5:9099",
                         "--artifact_endpoint=10.0.0.6:1234"])
  assert given["artifact_endpoint"] == "10.0.0.6:1234"
  assert _with_presets(["--runner=PortableRunner",
                        "--job_endpoint=10.0.0.5:9099"])[
                            "artifact_endpoint"] == "10.0.0.5:9098"
  # Blocking exchanges (a lost TaskManager restarts only its stages) and
  # workers kept between stages, on both runners; a value given wins, and
  # the job server gets it as Beam's Java option.
  for options in (on_flink, portable):
    assert options["execution_mode_for_batch"] == "BATCH_FORCED"
    assert options["environment_cache_millis"] == 10000
  own = _with_presets(["--runner=PortableRunner",
                       "--execution_mode_for_batch=PIPELINED",
                       "--environment_cache_millis=0"])
  assert own["execution_mode_for_batch"] == "PIPELINED"
  assert own["environment_cache_millis"] == "0"
