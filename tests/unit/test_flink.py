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


def test_flink_presets():
  argv = flink.with_defaults(["--runner=FlinkRunner",
                              "--flink_master=10.0.0.5:8081",
                              "--output=s3://b/output/Run 1/"])
  assert "--flink_version=1.19" in argv  # the clusters' Flink
  assert "--environment_type=EXTERNAL" in argv
  assert "--environment_config=localhost:50000" in argv
  assert "--flink_submit_uber_jar" in argv
  assert "--job_name=mlm-pipeline-run-1" in argv
  mine = flink.with_defaults(["--runner=FlinkRunner", "--flink_master=[local]",
                              "--environment_type=LOOPBACK",
                              "--job_name=mine", "--flink_version=1.20"])
  assert "--flink_submit_uber_jar" not in mine
  assert "--environment_config=localhost:50000" not in mine
  assert mine.count("--flink_version=1.20") == 1 and "--job_name=mine" in mine
  assert flink.with_defaults(["--runner=DirectRunner"]) == [
      "--runner=DirectRunner"]
  portable = flink.with_defaults(["--runner=PortableRunner",
                                  "--job_endpoint=localhost:8099",
                                  "--output=/tmp/out"])
  assert "--environment_type=EXTERNAL" in portable
  assert "--environment_config=localhost:50000" in portable
  assert "--job_name=mlm-pipeline-out" in portable
  assert not any(a.startswith("--flink") for a in portable)
  # The artifact service beside the job server, at the address given (a
  # cluster host's job server listens on 0.0.0.0 and would name that).
  assert "--artifact_endpoint=localhost:8098" in portable
  given = flink.with_defaults(["--runner=PortableRunner",
                               "--job_endpoint=10.0.0.5:9099",
                               "--artifact_endpoint=10.0.0.6:1234"])
  assert [a for a in given if a.startswith("--artifact_endpoint")] == [
      "--artifact_endpoint=10.0.0.6:1234"]
  assert "--artifact_endpoint=10.0.0.5:9098" in flink.with_defaults(
      ["--runner=PortableRunner", "--job_endpoint=10.0.0.5:9099"])
  # Blocking exchanges (a lost TaskManager restarts only its stages) and
  # workers kept between stages, on both runners; a value given wins, and
  # the job server gets it as Beam's Java option.
  for runner in (argv, portable):
    assert "--execution_mode_for_batch=BATCH_FORCED" in runner
    assert "--environment_cache_millis=10000" in runner
  own = flink.with_defaults(["--runner=PortableRunner",
                             "--execution_mode_for_batch=PIPELINED",
                             "--environment_cache_millis=0"])
  assert [a for a in own if a.startswith(("--execution_mode",
                                          "--environment_cache"))] == [
                                              "--execution_mode_for_batch="
                                              "PIPELINED",
                                              "--environment_cache_millis=0"]
  options = PipelineOptions(own).get_all_options()
  assert options["execution_mode_for_batch"] == "PIPELINED"
