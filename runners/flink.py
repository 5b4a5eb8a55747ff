"""Presets for Beam's FlinkRunner (Flink 1.19, Python work in worker pools)
and for ``--runner=PortableRunner`` (a job server such as runners.local_flink's).

Applied when ``--runner=FlinkRunner`` (all of them) or
``--runner=PortableRunner`` (the worker pool and the job name); every flag
the user gives wins:

* ``--flink_version=1.19``: Beam's default Flink version moves with Beam
  releases; this project's clusters (runners/flink_node.py) run 1.19.
* ``--environment_type=EXTERNAL --environment_config=localhost:50000``: the
  Python work runs in the Beam worker pool on each TaskManager host (systemd
  on the EC2 cluster, ``runners.local_flink`` locally). The default, DOCKER,
  needs a Docker engine that neither these machines nor the cluster have.
* ``--flink_submit_uber_jar`` when ``--flink_master`` names a host: the job
  is uploaded through Flink's REST API; no job server process is needed.
* ``--job_name=mlm-pipeline-<output name>``: how the job shows in the UI.
* ``--execution_mode_for_batch=BATCH_FORCED``: every exchange between
  stages is blocking, so each stage is a failover region of its own and the
  cluster (runners/flink_node.py: restart strategy, region failover)
  restarts only what a lost TaskManager ran instead of failing the job.
  Beam's Flink runner option (FlinkPipelineOptions.executionModeForBatch),
  which Beam's Python SDK does not declare: ``FlinkBatchOptions`` does, so
  the portable runner passes it to the job server.
* ``--environment_cache_millis=10000``: a TaskManager keeps the job's
  Python worker for 10 s after a stage ends, so the next stage reuses it
  instead of starting (and importing Beam, TensorFlow's protos and this
  project into) a new one. Beam's runner does so only where its classes come
  from the cluster's class loader, as on the clusters runners/flink_node.py
  starts (see UNSTAGED_JARS there). Longer would hold more memory: a
  worker idles that long after its job's last stage, so jobs run back to
  back have two per slot for those seconds (30 s held three, 1.2 GB per
  slot, in benchmarks/flink_memory.py --same_cluster).
* ``--artifact_endpoint=HOST:PORT-1`` for ``--job_endpoint=HOST:PORT``: the
  job server on a cluster host listens on every address and would tell the
  client to stage artifacts at ``0.0.0.0``; its artifact service is on the
  port below the job port (runners/flink_node.py starts it so).
"""

import base64
import json
import os
import re
import sys
import time
import urllib.request
from typing import Collection, Dict, Optional

from apache_beam.options.pipeline_options import (FlinkRunnerOptions,
                                                  GoogleCloudOptions,
                                                  PipelineOptions,
                                                  PortableOptions,
                                                  StandardOptions)

from runners import flink_node

# The Flink of the clusters runners/ starts, locally and on EC2.
FLINK_VERSION = flink_node.FLINK_MINOR
WORKER_POOL = "localhost:50000"
ENVIRONMENT_CACHE_MS = 10000


# Flink's ExecutionMode values, which Beam's runner passes on.
EXECUTION_MODES = ("PIPELINED", "PIPELINED_FORCED", "BATCH", "BATCH_FORCED")


class FlinkBatchOptions(PipelineOptions):
  """Beam's Java Flink runner options that this project sets and Beam's
  Python SDK does not declare (a declared option reaches the job server in
  the job's options)."""

  @classmethod
  def _add_argparse_args(cls, parser):
    parser.add_argument(
        "--execution_mode_for_batch", choices=EXECUTION_MODES, default=None,
        help="How a batch job's stages exchange data on Flink: BATCH_FORCED "
        "(this project's default on Flink) writes each stage's output "
        "before the next reads it, so a lost TaskManager restarts only the "
        "stages it ran; PIPELINED streams between stages, one failover "
        "region for the whole job.")


def is_flink(options: PipelineOptions) -> bool:
  runner = options.view_as(StandardOptions).runner or ""
  return runner.lower() in ("flinkrunner", "flink")


def is_portable(options: PipelineOptions) -> bool:
  """A job service given by address, e.g. runners.local_flink's job
  server."""
  runner = options.view_as(StandardOptions).runner or ""
  return runner.lower() in ("portablerunner", "portable")


def job_name(output: str) -> str:
  base = os.path.basename(output.rstrip("/")) or "output"
  return "mlm-pipeline-" + (re.sub(r"[^a-z0-9-]+", "-", base.lower()).strip("-")
                            or "output")


def apply_defaults(options: PipelineOptions, given: Collection[str],
                   output: str = "") -> None:
  """Sets the Flink presets (above) on ``options`` where the user left them
  unset (``given``: the option names the command line sets,
  ``runners.argv.given_options``); ``output``: the job's ``--output``, which
  names the job. Nothing for other runners."""
  if is_flink(options):
    flink = options.view_as(FlinkRunnerOptions)
    if "flink_version" not in given:
      flink.flink_version = FLINK_VERSION
    if (not flink.flink_master.startswith("[")
        and "flink_submit_uber_jar" not in given
        and "flink_job_server_jar" not in given):
      flink.flink_submit_uber_jar = True
  elif not is_portable(options):
    return
  portable = options.view_as(PortableOptions)
  endpoint = portable.job_endpoint
  if (is_portable(options) and endpoint and ":" in endpoint
      and "artifact_endpoint" not in given):
    # The job server answers with the address it listens on, 0.0.0.0 on a
    # cluster's host; its artifact service is on the port below the job
    # port (runners/flink_node.py), at the address the user gave.
    host, port = endpoint.rsplit(":", 1)
    if port.isdigit():
      portable.artifact_endpoint = "%s:%d" % (host, int(port) - 1)
  if "environment_type" not in given:
    portable.environment_type = "EXTERNAL"
    if "environment_config" not in given:
      portable.environment_config = WORKER_POOL
  if "execution_mode_for_batch" not in given:
    options.view_as(FlinkBatchOptions).execution_mode_for_batch = "BATCH_FORCED"
  if "environment_cache_millis" not in given:
    portable.environment_cache_millis = ENVIRONMENT_CACHE_MS
  if "job_name" not in given:
    options.view_as(GoogleCloudOptions).job_name = job_name(output)



# --- Live progress over Flink's REST API ------------------------------------

# Beam's Flink runner keeps every Beam metric of a job in one Flink
# accumulator, whose value is the JSON form of Beam's MonitoringInfo protos
# (apache/beam PR 11369): user counters have this URN, their labels name the
# namespace and the counter, and the payload is the sum as a base64 varint.
METRICS_ACCUMULATOR = "__metricscontainers"
USER_COUNTER_URN = "beam:metric:user:sum_int64:v1"
REST_PORT = 8081
CLOCK_SLACK = 5.0  # seconds


def _varint(data: bytes) -> int:
  value = shift = 0
  for byte in data:
    value |= (byte & 0x7F) << shift
    shift += 7
    if byte < 0x80:
      break
  return value


def metric_counts(accumulators: Dict, namespace: str = "mlm") -> Dict[str, int]:
  """``{counter: sum}`` of a namespace's user counters, from the answer of
  ``GET /jobs/<id>/accumulators``. In batch, Flink holds a stage's counts
  once its tasks finish."""
  counts: Dict[str, int] = {}
  for accumulator in accumulators.get("user-task-accumulators", []):
    if accumulator.get("name") != METRICS_ACCUMULATOR:
      continue
    value = accumulator.get("value", "")
    value = json.loads(value[value.index("{"):]) if "{" in value else {}
    for metric in value.get("metrics", {}).get("attempted", []):
      labels = metric.get("labels", {})
      if (metric.get("urn") == USER_COUNTER_URN
          and labels.get("NAMESPACE") == namespace):
        name = labels.get("NAME", "")
        counts[name] = counts.get(name, 0) + _varint(
            base64.b64decode(metric.get("payload", "")))
  return counts


class RestProgress:
  """Live progress of the job named ``job_name`` on the Flink cluster whose
  REST API is at ``rest_url`` (``http://host:port``): its counters, and how
  many of its stages (Flink vertices) are done. The first call that finds
  the job prints its id and Flink UI address to ``stream``."""

  def __init__(self, rest_url: str, job_name: str, stream=sys.stderr):
    self.rest_url = rest_url.rstrip("/")
    self.job_name = job_name
    self._stream = stream
    self._since = time.time()
    self.job_id: Optional[str] = None

  def _get(self, path: str) -> Dict:
    with urllib.request.urlopen(self.rest_url + path, timeout=5) as r:
      return json.loads(r.read() or b"{}")

  def find_job(self) -> Optional[str]:
    if self.job_id is None:
      # Ours: under its name and started after this run began (an earlier
      # run of the same output may still be going). The JobManager's clock
      # may be a little behind this machine's.
      jobs = [j for j in self._get("/jobs/overview").get("jobs", [])
              if j.get("name") == self.job_name
              and j.get("start-time", 0)
              >= (self._since - CLOCK_SLACK) * 1000]
      if not jobs:
        return None
      self.job_id = max(jobs, key=lambda j: j["start-time"])["jid"]
      print("Flink job %s: %s/#/job/running/%s/overview" % (
          self.job_id, self.rest_url, self.job_id), file=self._stream,
            flush=True)
    return self.job_id

  def cancel(self) -> bool:
    """Cancels this run's job on the cluster (Flink's ``PATCH
    /jobs/:jobid?mode=cancel``), as Ctrl-C on the launcher asks: the job
    would otherwise run on without it. Returns whether it was asked."""
    try:
      job = self.find_job()
      if job is None:
        return False
      request = urllib.request.Request(
          "%s/jobs/%s?mode=cancel" % (self.rest_url, job), method="PATCH")
      with urllib.request.urlopen(request, timeout=5):
        return True
    except (OSError, ValueError):
      return False

  def __call__(self) -> Dict[str, int]:
    job = self.find_job()
    if job is None:
      return {}
    counts = metric_counts(self._get("/jobs/%s/accumulators" % job))
    vertices = self._get("/jobs/" + job).get("vertices", [])
    counts["stages"] = len(vertices)
    counts["stages_done"] = sum(1 for v in vertices
                                if v.get("status") == "FINISHED")
    return counts


def rest_url(options) -> Optional[str]:
  """Where the cluster's REST API is: ``--flink_master``, or the host of
  ``--job_endpoint`` on Flink's default port; None for a Flink started for
  the job alone (``[auto]``, ``[local]``)."""
  values = options.get_all_options()
  master = values.get("flink_master") or ""
  if master and not master.startswith("["):
    return master if "://" in master else "http://" + master
  endpoint = values.get("job_endpoint") or ""
  if ":" in endpoint and not endpoint.startswith("["):
    return "http://%s:%d" % (endpoint.rsplit(":", 1)[0], REST_PORT)
  return None


def progress_source(runner: str, options) -> Optional[RestProgress]:
  """Live progress of a job on a Flink cluster (pipelines/progress.py);
  None for other runners and for a Flink without a REST address."""
  if runner.lower() not in ("flinkrunner", "flink", "portablerunner",
                            "portable"):
    return None
  url = rest_url(options)
  name = options.get_all_options().get("job_name")
  if url is None or not name:
    return None
  return RestProgress(url, name)
