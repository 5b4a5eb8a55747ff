"""The SDK worker that Beam's worker pool starts for each Flink task (the
EXTERNAL environment), with the job's pipeline options.

Beam's ``worker_pool_main`` starts a plain ``SdkHarness`` per task, which
never receives the job's pipeline options, so Beam's filesystems run
unconfigured: on a TaskManager host a job that reads ``s3://`` fails with
"Must provide one of client or options" (seen on the multi-host local
cluster, tests/cluster/test_flink_hosts.py). Given ``--container_executable``, the
pool instead runs that program with the task's endpoints, as Beam's Go
``boot`` program is run in Beam's SDK containers. This is such a program,
installed as ``mlm-external-worker``: it asks the runner's provision service
for the pipeline options, then runs Beam's ``sdk_worker_main`` with them,
which configures the filesystems, logs to the runner and serves the task.
Nothing is staged or installed: the project is installed on every
TaskManager host beforehand (runners/local_flink.py, terraform/).

  python -m apache_beam.runners.worker.worker_pool_main --service_port=50000 \\
      --container_executable=VENV/bin/mlm-external-worker
"""

import argparse
import os
import sys
from typing import Optional, Sequence

# Beam is imported by main() (runners/lean_beam.py), not when another
# module imports this one for executable().
# pylint: disable=import-outside-toplevel

EXECUTABLE = "mlm-external-worker"


def executable() -> str:
  """The installed program, beside this interpreter."""
  return os.path.join(os.path.dirname(sys.executable), EXECUTABLE)


def provision_info(endpoint: str, worker_id: str):
  """The runner's ``beam_provision_api_pb2.ProvisionInfo`` for
  ``worker_id`` (pipeline options, endpoints)."""
  import grpc
  from apache_beam.portability.api import (beam_provision_api_pb2,
                                           beam_provision_api_pb2_grpc)
  with grpc.insecure_channel(endpoint) as channel:
    stub = beam_provision_api_pb2_grpc.ProvisionServiceStub(channel)
    return stub.GetProvisionInfo(
        beam_provision_api_pb2.GetProvisionInfoRequest(),
        metadata=[("worker_id", worker_id)], timeout=60).info


def _descriptor(url: str) -> str:
  from apache_beam.portability.api import endpoints_pb2
  from google.protobuf import text_format
  return text_format.MessageToString(endpoints_pb2.ApiServiceDescriptor(
      url=url))


def main(argv: Optional[Sequence[str]] = None) -> None:
  import gc  # pylint: disable=import-outside-toplevel
  gc.disable()  # for the imports, until collect_less()
  from runners import lean_beam
  lean_beam.import_beam()
  from apache_beam.runners.worker import sdk_worker_main
  from google.protobuf import json_format
  from runners.direct import collect_less, exit_now
  parser = argparse.ArgumentParser(prog=EXECUTABLE, description=__doc__)
  # The worker pool's container contract.
  parser.add_argument("--id", required=True)
  parser.add_argument("--logging_endpoint", required=True)
  parser.add_argument("--artifact_endpoint", default="")
  parser.add_argument("--provision_endpoint", required=True)
  parser.add_argument("--control_endpoint", required=True)
  args, _ = parser.parse_known_args(argv)
  info = provision_info(args.provision_endpoint, args.id)
  os.environ.update({
      "WORKER_ID": args.id,
      "PIPELINE_OPTIONS": json_format.MessageToJson(info.pipeline_options),
      "CONTROL_API_SERVICE_DESCRIPTOR": _descriptor(args.control_endpoint),
      "LOGGING_API_SERVICE_DESCRIPTOR": _descriptor(args.logging_endpoint),
  })
  collect_less()
  sdk_worker_main.main(sys.argv)
  exit_now(0)


if __name__ == "__main__":
  main()
