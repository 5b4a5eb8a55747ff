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
* In ``multi_processing`` mode with N > 1 workers, N - 1 are worker processes
  and the launcher itself is the N-th (``_worker_handlers``).
* In ``multi_processing`` mode the worker processes run ``runners.worker``:
  Beam's SDK harness, then an exit that skips the interpreter's teardown.
  They ignore SIGINT: Ctrl-C is the launcher's to handle.
  The FnApiRunner stops its workers one after the other and waits for each
  process to end, so each worker's teardown (half a second) was added to
  the job's wall time.
* A worker process that dies (killed, OOM-killed, a segfault) fails the job
  within a second instead of hanging it. Beam 2.77's FnApiRunner notices the
  death only in the thread that started the worker; the bundle sent to that
  worker waits for a response that never comes (``ControlFuture.get()`` has
  no timeout, and the data plane waits for the end of the bundle's output).
  ``_WatchedSubprocessWorkerHandler`` answers every instruction still or
  later pending on a dead worker with an error response, which the
  FnApiRunner raises as the bundle's failure; it then stops the other
  workers as after any failure. Stopping a worker that never connected
  (the job failed while it was starting) ends its control stream before it
  opens, and a worker process still running ``STOP_GRACE_SECONDS`` after
  it was told to stop is killed (each worker writes its pid into a folder
  of the run, ``PID_DIR_ENV``): Beam would wait for it forever.
* A worker process the launcher started as it began (runners/prestart.py)
  and that is still waiting is used before a new process is started.
"""

import gc
import itertools
import logging
import os
import shutil
import signal
import sys
import tempfile
import threading
from typing import Collection, Dict, List

import grpc
from google.protobuf import json_format, text_format

from apache_beam.options.pipeline_options import (DirectOptions,
                                                  PipelineOptions,
                                                  StandardOptions)
from apache_beam.portability import python_urns
from apache_beam.portability.api import (beam_fn_api_pb2,
                                        beam_fn_api_pb2_grpc,
                                        beam_provision_api_pb2,
                                        endpoints_pb2)
from apache_beam.runners.portability import local_job_service
from apache_beam.runners.portability.fn_api_runner import (fn_runner,
                                                           worker_handlers)
from apache_beam.runners.portability.portable_runner import JobServiceHandle
from apache_beam.runners.runner import PipelineRunner
from apache_beam.utils import thread_pool_executor

from runners import prestart


LOCAL_RUNNER = "runners.direct.LocalRunner"
# What the FnApiRunner runs for a multi_processing worker, and ours instead.
_BEAM_WORKER_MODULE = "apache_beam.runners.worker.sdk_worker_main"
WORKER_MODULE = "runners.worker"


# How often a dead worker's pending instructions are failed: the FnApiRunner
# may push a new bundle to it after it died, until the job's failure stops it.
_DEAD_WORKER_POLL_SECONDS = 0.2
# How long a worker told to stop may take to end before it is killed.
STOP_GRACE_SECONDS = 10.0
# The folder where each worker process of a run writes its pid, in a file
# named after its worker id (runners/worker.py).
PID_DIR_ENV = "MLM_WORKER_PID_DIR"


class _WatchedSubprocessWorkerHandler(
    worker_handlers.SubprocessSdkWorkerHandler):
  """Beam's handler of a ``multi_processing`` worker process, which fails
  the instructions of a worker that died instead of waiting for them."""

  # Why workers died, in this process: LocalRunner reports them as the cause
  # of the job's failure (the bundle's own error is often only "Channel
  # closed prematurely.").
  deaths: List[str] = []

  def __init__(self, *args, **kwargs):
    super().__init__(*args, **kwargs)
    self._stopping = threading.Event()

  def start_worker(self):
    # Beam's start_worker, with the worker run by _run_and_watch.
    self.worker = _SdkWorkerProcess(
        self._worker_command_line, self.control_address, self.provision_info,
        self.worker_id)
    self.worker_thread = threading.Thread(name="run_worker",
                                          target=self._run_and_watch)
    self.worker_thread.start()

  def _run_and_watch(self):
    try:
      self.worker.run()  # returns when the process ends; raises if non-zero
      how = "exited"
    except Exception as e:  # pylint: disable=broad-except
      how = str(e)
    if self._stopping.is_set():
      return  # stopped by the runner
    message = ("a worker process of the DirectRunner ended in the middle of "
               "the job (%s: %s); its work is lost, so the job fails"
               % (self.worker_id, how))
    logging.error(message)
    self.deaths.append(message)
    while not self._stopping.wait(_DEAD_WORKER_POLL_SECONDS):
      fail_pending_instructions(self.control_conn, message)

  def stop_worker(self):
    self._stopping.set()
    # Beam's close() ends the control stream of a connected worker only; a
    # worker still starting finds this end marker when it connects, and
    # exits. (For a connected worker the marker is one too many, unread.)
    self.control_conn.push(
        worker_handlers.BeamFnControlServicer._DONE_MARKER)  # pylint: disable=protected-access
    self.worker_thread.join(STOP_GRACE_SECONDS)
    if self.worker_thread.is_alive():
      pid = worker_pid(self.worker_id)
      logging.warning("worker %s (pid %s) did not stop within %.0f s; "
                      "killing it", self.worker_id, pid, STOP_GRACE_SECONDS)
      if pid:
        try:
          os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
          pass
    super().stop_worker()


# The options of Beam's own logging server for a worker process
# (``local_job_service.SubprocessSdkWorker``, Beam 2.77).
LOGGING_SERVER_OPTIONS = (("grpc.http2.max_pings_without_data", 0),
                          ("grpc.http2.max_ping_strikes", 0))


def _worker_handlers(workers: int):
  """The constructor of the worker handlers of a ``multi_processing`` run
  of ``workers`` workers, for ``WorkerHandler.register_environment``: the
  first ``workers - 1`` are worker processes, watched
  (``_WatchedSubprocessWorkerHandler``); the last is the launcher itself,
  with Beam's ``EmbeddedWorkerHandler``, as in ``in_memory`` mode.

  The launcher is idle while the job runs, and holds Beam, the stages'
  modules and the tokenizer already: a worker process of its own cost the
  job 0.6-0.7 CPU s of imports and, on a 2-core machine, most of a second
  before the first bundle (benchmarks/compare.py, two workers at 200 MB,
  11.7-11.8 s with the launcher as a worker against 12.2-12.4 s without).
  The in-process worker is the last one made: the FnApiRunner builds each
  stage's descriptor from the first handler's data and state addresses,
  which a worker process needs and the in-process worker ignores. With
  ``workers`` 1 (``multi_processing`` asked for one worker) the one worker
  is a process, as asked.

  The trade-off: the launcher's share of each stage runs in the launcher,
  as the whole job does with one worker, so a crash there (a segfault, an
  OOM kill) ends the launcher itself, and its peak memory holds one
  worker's too (the job's total is lower: 418 MB against 642 MB for two
  workers at 200 MB, docs/benchmarks/compare_200mb.md)."""
  made = itertools.count(1)

  def create(payload, state, provision_info, grpc_server):
    if next(made) == workers and workers > 1:
      # pylint: disable=protected-access
      manager = grpc_server.control_handler._worker_manager
      return worker_handlers.EmbeddedWorkerHandler(None, state,
                                                   provision_info, manager)
    return _WatchedSubprocessWorkerHandler(payload, state, provision_info,
                                           grpc_server)

  return create


class _SdkWorkerProcess(local_job_service.SubprocessSdkWorker):
  """One worker process: a prestarted one (runners/prestart.py) while one
  waits, otherwise a new one, started as Beam starts it. ``run()`` returns
  when the process ends, and raises when it ended non-zero."""

  def run(self):
    process = prestart.take()
    if process is None:
      super().run()
      return
    logs = None
    try:
      # The worker sends its log records to a server of its own, as Beam's
      # workers do (with Beam's settings: the worker's channels ping every
      # 20 s, which gRPC's defaults would answer with a GOAWAY); they
      # become the launcher's "Worker: ..." log lines.
      logs = grpc.server(thread_pool_executor.shared_unbounded_instance(),
                         options=LOGGING_SERVER_OPTIONS)
      port = logs.add_insecure_port("localhost:0")
      beam_fn_api_pb2_grpc.add_BeamFnLoggingServicer_to_server(
          local_job_service.BeamFnLoggingServicer(), logs)
      logs.start()
      try:
        prestart.hand_over(process, self.environment("localhost:%d" % port))
      except OSError:  # it ended while it waited: start one as Beam does
        logging.warning(prestart.REPLACED, process.pid, process.wait())
        super().run()
        return
      code = process.wait()
      if code:
        raise RuntimeError(
            "Worker subprocess exited with return code %s" % code)
    finally:
      if process.stdin and not process.stdin.closed:
        process.stdin.close()
      if process.poll() is None:
        process.kill()
        process.wait()
      if logs is not None:
        logs.stop(0)

  def environment(self, logging_address: str) -> Dict[str, str]:
    """What Beam's harness reads from its environment: where the control
    and logging services are, the pipeline options, the worker's id; with
    the launcher's own environment as it is now."""
    # pylint: disable=protected-access
    def descriptor(url):
      return text_format.MessageToString(
          endpoints_pb2.ApiServiceDescriptor(url=url))
    env = dict(os.environ,
               CONTROL_API_SERVICE_DESCRIPTOR=descriptor(self._control_address),
               LOGGING_API_SERVICE_DESCRIPTOR=descriptor(logging_address),
               PIPELINE_OPTIONS=json_format.MessageToJson(
                   self._provision_info.provision_info.pipeline_options))
    if self._worker_id:
      env["WORKER_ID"] = self._worker_id
    return env


def worker_pid(worker_id: str):
  """The pid that worker ``worker_id`` of this run wrote, or None."""
  folder = os.environ.get(PID_DIR_ENV)
  try:
    with open(os.path.join(folder or "", worker_id)) as f:
      return int(f.read())
  except (OSError, ValueError):
    return None


def write_worker_pid() -> None:
  """In a worker process: notes its pid for the runner (see stop_worker)."""
  folder, worker_id = os.environ.get(PID_DIR_ENV), os.environ.get("WORKER_ID")
  if folder and worker_id:
    with open(os.path.join(folder, worker_id), "w") as f:
      f.write(str(os.getpid()))


def fail_pending_instructions(control_conn, message: str) -> int:
  """Answers every instruction waiting on ``control_conn`` (a Beam
  ``ControlConnection``) with an error response, as a worker whose bundle
  failed would. The FnApiRunner's data-plane wait ends on such a response
  and the bundle raises ``RuntimeError(message)``. Returns how many were
  answered."""
  # pylint: disable=protected-access
  pending = control_conn._futures_by_id
  answered = 0
  for instruction_id in list(pending):
    future = pending.pop(instruction_id, None)
    if future is not None:
      future.set(beam_fn_api_pb2.InstructionResponse(
          instruction_id=instruction_id, error=message))
      answered += 1
  return answered


class _FnApiRunner(fn_runner.FnApiRunner):
  """The FnApiRunner, its subprocess workers started as ``runners.worker``
  in place of the shell Beam starts them with."""

  def run_via_runner_api(self, pipeline_proto, options):
    for env in pipeline_proto.components.environments.values():
      if env.urn == python_urns.SUBPROCESS_SDK:
        command = env.payload.decode("utf-8").replace(_BEAM_WORKER_MODULE,
                                                      WORKER_MODULE)
        # Beam starts the command through a shell; with ``exec`` the worker
        # is that process itself, so a signal to it (or its death) is the
        # worker's, and no orphaned worker outlives a killed shell. The
        # worker ignores SIGINT (an ignored signal stays ignored across
        # exec): a terminal's Ctrl-C reaches the whole process group, and
        # the launcher, not each worker with a traceback, ends the job
        # (pipelines/interrupts.py stops the workers).
        env.payload = ("trap '' INT; exec " + command).encode("utf-8")
    return super().run_via_runner_api(pipeline_proto, options)


class LocalRunner(PipelineRunner):
  """The DirectRunner's FnApiRunner path, without the Prism detour. Honors
  ``--direct_num_workers`` and ``--direct_running_mode``."""

  def run_pipeline(self, pipeline, options):
    # Beam keeps one handler class per environment kind, process-wide: ours
    # is Beam's own plus the watch for dead workers.
    worker_handlers.WorkerHandler.register_environment(
        python_urns.SUBPROCESS_SDK, bytes)(_worker_handlers(
            options.view_as(DirectOptions).direct_num_workers))
    # Workers get the pipeline options through the provision info (S3
    # settings, for one, are read from there).
    provision = beam_provision_api_pb2.ProvisionInfo(
        pipeline_options=JobServiceHandle.encode_pipeline_options(
            options.get_all_options()))
    runner = _FnApiRunner(
        provision_info=fn_runner.ExtendedProvisionInfo(provision))
    del _WatchedSubprocessWorkerHandler.deaths[:]
    saved = os.environ.get(PID_DIR_ENV)
    os.environ[PID_DIR_ENV] = tempfile.mkdtemp(prefix="mlm-workers-")
    try:
      return runner.run_pipeline(pipeline, options)
    except Exception as e:
      if _WatchedSubprocessWorkerHandler.deaths:
        raise RuntimeError(_WatchedSubprocessWorkerHandler.deaths[0]) from e
      raise
    finally:
      prestart.discard()  # the workers this run did not use
      shutil.rmtree(os.environ[PID_DIR_ENV], ignore_errors=True)
      if saved is None:
        del os.environ[PID_DIR_ENV]
      else:
        os.environ[PID_DIR_ENV] = saved


# The cyclic garbage collector's thresholds in a job's processes, in place
# of Python's (700, 10, 10). A job allocates containers by the million (rows,
# tuples, Beam's elements and their windows), nearly none of them in cycles;
# with the defaults the collector ran a first-generation pass every 700 of
# them and scanned the long-lived ones every 70 passes: 4% of a 20 MB job's
# CPU (benchmarks/compare.py, side by side), peak memory unchanged.
GC_THRESHOLDS = (10_000, 20, 100)


def collect_less() -> None:
  """Moves everything alive now (the imported modules, which are never
  garbage) out of the collector's scans (``gc.freeze``), sets
  ``GC_THRESHOLDS`` and turns the collector on. Called once a job's or a
  worker's imports are done.

  The programs (``pipelines.mlm``, ``runners.worker``,
  ``runners.external_worker``) turn the collector off before they import
  Beam: the imports make 150 thousand objects and about 1,500 of garbage
  in cycles, and the collector's passes over them took 0.02-0.04 s of each
  process's start, plus 0.02-0.04 s for a full collection here to find that
  garbage; it is frozen with the modules instead (a few hundred kB, the
  resident memory unchanged)."""
  gc.freeze()
  gc.set_threshold(*GC_THRESHOLDS)
  gc.enable()


def exit_now(code: int) -> None:
  """Ends the process with ``code`` once logs and standard streams are
  flushed, skipping the interpreter's teardown: freeing Beam's, gRPC's and
  protobuf's modules object by object takes half a second of CPU. Only for
  a process whose work is done and whose files are closed."""
  logging.shutdown()
  sys.stdout.flush()
  sys.stderr.flush()
  os._exit(code)  # pylint: disable=protected-access


def apply_defaults(options: PipelineOptions, given: Collection[str]) -> None:
  """Sets the DirectRunner presets on ``options`` where the user left them
  unset (``given``: the option names the command line sets,
  ``runners.argv.given_options``): no ``--runner``, or Beam's DirectRunner,
  means this project's ``LocalRunner``; ``--flink_master`` without a runner
  means Flink, as in Beam; ``--direct_num_workers`` above 1 runs worker
  processes (``--direct_running_mode=multi_processing``)."""
  standard = options.view_as(StandardOptions)
  runner = standard.runner
  if runner is None and "flink_master" in given:
    standard.runner = runner = "FlinkRunner"
  if runner is None or runner.lower() in ("directrunner", "direct"):
    standard.runner = runner = LOCAL_RUNNER
  if runner == LOCAL_RUNNER:
    direct = options.view_as(DirectOptions)
    if (direct.direct_num_workers > 1
        and "direct_running_mode" not in given):
      direct.direct_running_mode = "multi_processing"


def one_worker(options: PipelineOptions) -> bool:
  """Whether ``options`` (after ``apply_defaults``) run the job on this
  project's ``LocalRunner`` with one worker (``--direct_num_workers=1``,
  Beam's default; 0 means one per core, as in Beam). Such a job needs no
  Reshuffle to spread its work: build() leaves them out, and with them
  about 15 of the graph's 46 steps and 0.05 s of its start."""
  return (options.view_as(StandardOptions).runner == LOCAL_RUNNER
          and options.view_as(DirectOptions).direct_num_workers == 1)
