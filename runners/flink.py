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
* ``--artifact_endpoint=HOST:PORT-1`` for ``--job_endpoint=HOST:PORT``: the
  job server on a cluster host listens on every address and would tell the
  client to stage artifacts at ``0.0.0.0``; its artifact service is on the
  port below the job port (runners/flink_node.py starts it so).
"""

import os
import re
from typing import List, Sequence

from runners import flink_node
from runners.direct import _flag_value, _has_flag

# The Flink of the clusters runners/ starts, locally and on EC2.
FLINK_VERSION = flink_node.FLINK_MINOR
WORKER_POOL = "localhost:50000"


def is_flink(argv: Sequence[str]) -> bool:
  runner = _flag_value(argv, "--runner") or ""
  return runner.lower() in ("flinkrunner", "flink")


def is_portable(argv: Sequence[str]) -> bool:
  """A job service given by address, e.g. runners.local_flink's job
  server."""
  runner = _flag_value(argv, "--runner") or ""
  return runner.lower() in ("portablerunner", "portable")


def job_name(output: str) -> str:
  base = os.path.basename(output.rstrip("/")) or "output"
  return "mlm-pipeline-" + (re.sub(r"[^a-z0-9-]+", "-", base.lower()).strip("-")
                            or "output")


def with_defaults(argv: Sequence[str]) -> List[str]:
  """``argv`` plus the Flink presets it does not override."""
  argv = list(argv)
  if is_portable(argv):
    return _worker_pool_and_name(argv)
  if not is_flink(argv):
    return argv
  if not _has_flag(argv, "--flink_version"):
    argv.append("--flink_version=" + FLINK_VERSION)
  master = _flag_value(argv, "--flink_master") or "[auto]"
  if (not master.startswith("[") and not _has_flag(argv, "--flink_submit_uber_jar")
      and not _has_flag(argv, "--flink_job_server_jar")):
    argv.append("--flink_submit_uber_jar")
  return _worker_pool_and_name(argv)


def _worker_pool_and_name(argv: List[str]) -> List[str]:
  job_endpoint = _flag_value(argv, "--job_endpoint")
  if (is_portable(argv) and job_endpoint and ":" in job_endpoint
      and not _has_flag(argv, "--artifact_endpoint")):
    # The job server answers with the address it listens on, 0.0.0.0 on a
    # cluster's host; its artifact service is on the port below the job
    # port (runners/flink_node.py), at the address the user gave.
    host, port = job_endpoint.rsplit(":", 1)
    if port.isdigit():
      argv.append("--artifact_endpoint=%s:%d" % (host, int(port) - 1))
  if not _has_flag(argv, "--environment_type"):
    argv.append("--environment_type=EXTERNAL")
    if not _has_flag(argv, "--environment_config"):
      argv.append("--environment_config=" + WORKER_POOL)
  if not _has_flag(argv, "--job_name"):
    argv.append("--job_name=" + job_name(_flag_value(argv, "--output") or ""))
  return argv


def progress_source(runner: str, options):
  """Live progress of a job on Flink (see pipelines/progress.py); None for
  other runners."""
  del options
  if runner.lower() not in ("flinkrunner", "flink", "portablerunner",
                            "portable"):
    return None
  return None
