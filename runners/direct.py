"""Presets for Beam's DirectRunner.

* No ``--runner``, or ``--runner=DirectRunner``: Beam's FnApiRunner, the
  engine behind the DirectRunner for batch pipelines, through
  ``LocalRunner`` below. Since Beam 2.6x ``DirectRunner`` first tries the
  Prism runner, which downloads a binary from GitHub on first use: offline
  that costs a failed download on every run, and Prism runs workers its own
  way. ``LocalRunner`` goes straight to the FnApiRunner.
* ``--direct_num_workers=N`` (N > 1) without ``--direct_running_mode``:
  ``multi_processing``. Beam's default mode, ``in_memory``, runs the workers
  as threads of one Python process, which the GIL serializes.
* In ``multi_processing`` mode the worker processes run ``runners.worker``:
  Beam's SDK harness, then an exit that skips the interpreter's teardown.
  The FnApiRunner stops its workers one after the other and waits for each
  process to end, so each worker's teardown (half a second) was added to
  the job's wall time.
"""

import logging
import os
import sys
from typing import List, Sequence

from apache_beam.portability import python_urns
from apache_beam.portability.api import beam_provision_api_pb2
from apache_beam.runners.portability.fn_api_runner import fn_runner
from apache_beam.runners.portability.portable_runner import JobServiceHandle
from apache_beam.runners.runner import PipelineRunner

LOCAL_RUNNER = "runners.direct.LocalRunner"
# What the FnApiRunner runs for a multi_processing worker, and ours instead.
_BEAM_WORKER_MODULE = "apache_beam.runners.worker.sdk_worker_main"
WORKER_MODULE = "runners.worker"


class _FnApiRunner(fn_runner.FnApiRunner):
  """The FnApiRunner, its subprocess workers started as ``runners.worker``."""

  def run_via_runner_api(self, pipeline_proto, options):
    for env in pipeline_proto.components.environments.values():
      if env.urn == python_urns.SUBPROCESS_SDK:
        command = env.payload.decode("utf-8")
        env.payload = command.replace(_BEAM_WORKER_MODULE,
                                      WORKER_MODULE).encode("utf-8")
    return super().run_via_runner_api(pipeline_proto, options)


class LocalRunner(PipelineRunner):
  """The DirectRunner's FnApiRunner path, without the Prism detour. Honors
  ``--direct_num_workers`` and ``--direct_running_mode``."""

  def run_pipeline(self, pipeline, options):
    # Workers get the pipeline options through the provision info (S3
    # settings, for one, are read from there).
    provision = beam_provision_api_pb2.ProvisionInfo(
        pipeline_options=JobServiceHandle.encode_pipeline_options(
            options.get_all_options()))
    runner = _FnApiRunner(
        provision_info=fn_runner.ExtendedProvisionInfo(provision))
    return runner.run_pipeline(pipeline, options)


def exit_now(code: int) -> None:
  """Ends the process with ``code`` once logs and standard streams are
  flushed, skipping the interpreter's teardown: freeing Beam's, gRPC's and
  protobuf's modules object by object takes half a second of CPU. Only for
  a process whose work is done and whose files are closed."""
  logging.shutdown()
  sys.stdout.flush()
  sys.stderr.flush()
  os._exit(code)  # pylint: disable=protected-access


def _has_flag(argv: Sequence[str], name: str) -> bool:
  return any(a == name or a.startswith(name + "=") for a in argv)


def _flag_value(argv: Sequence[str], name: str):
  for i, a in enumerate(argv):
    if a.startswith(name + "="):
      return a.split("=", 1)[1]
    if a == name and i + 1 < len(argv):
      return argv[i + 1]
  return None


def _without_flag(argv: Sequence[str], name: str) -> List[str]:
  out, skip = [], False
  for a in argv:
    if skip:
      skip = False
    elif a == name:
      skip = True
    elif not a.startswith(name + "="):
      out.append(a)
  return out


def with_defaults(argv: Sequence[str]) -> List[str]:
  """``argv`` plus the DirectRunner presets it does not override."""
  argv = list(argv)
  runner = _flag_value(argv, "--runner")
  if runner is None and _has_flag(argv, "--flink_master"):
    runner = "FlinkRunner"  # a Flink master means Flink, as in Beam
    argv.append("--runner=FlinkRunner")
  if runner is None or runner.lower() in ("directrunner", "direct"):
    argv = _without_flag(argv, "--runner") + ["--runner=" + LOCAL_RUNNER]
    runner = LOCAL_RUNNER
  if runner == LOCAL_RUNNER:
    workers = _flag_value(argv, "--direct_num_workers")
    if (workers and workers.isdigit() and int(workers) > 1
        and not _has_flag(argv, "--direct_running_mode")):
      argv.append("--direct_running_mode=multi_processing")
  return argv
