"""A worker process of the DirectRunner's ``multi_processing`` mode.

Runs Beam's Python SDK harness (``sdk_worker_main``) as Beam's own worker
command does, then ends at once: the FnApiRunner waits for each worker
process to end, one after the other, and the interpreter's teardown took
half a second per worker (runners/direct.py). A harness that fails raises,
and the process exits non-zero with the traceback as before.

With ``--prestarted`` (runners/prestart.py) the process is started with the
launcher: it ignores SIGINT (as Beam's worker command line has it do),
imports Beam and the stages every job runs, then waits for the launcher to
hand it the harness's environment, and ends at once if none comes.
"""

import logging
import os
import signal
import sys

from runners import prestart

# The environment as the process started, before Beam's and the stages'
# imports (prestart.apply_environment).
STARTED_WITH = dict(os.environ)

# pylint: disable=wrong-import-position
if __name__ == "__main__":  # the program, not a module imported by another
  import gc
  gc.disable()  # for the imports, until collect_less()
  if prestart.PRESTART_FLAG in sys.argv[1:]:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # already so, from start()
    prestart.end_with_the_launcher()
  from runners import lean_beam
  lean_beam.import_beam()

from apache_beam.runners.worker import sdk_worker_main

from runners.direct import collect_less, exit_now, write_worker_pid
from transforms import metrics

# Loggers whose warnings every worker of this project gives and none means
# a problem: no semi-persistent directory (nothing is staged: the project
# is installed), and the project's own flags among the pipeline options,
# which Beam's parser in the worker does not know. Shown with the debug
# environment below.
EXPECTED_WARNINGS = ("apache_beam.runners.worker.sdk_worker_main",
                     "apache_beam.options.pipeline_options")

# Set (to anything) in the launcher's environment to keep the workers'
# tracebacks in their logs.
DEBUG_LOGS_ENV = "MLM_DEBUG_WORKER_LOGS"


def _one_line_records(make_record):
  """A log record factory whose records are one line, without traceback:
  a failing bundle's traceback, logged by the harness, would otherwise
  reach the terminal once per worker; the launcher's one ``error:`` line
  says what failed (``MLM_DEBUG_WORKER_LOGS=1`` keeps them whole)."""

  def make(*args, **kwargs):
    record = make_record(*args, **kwargs)
    if record.exc_info or "\n" in record.getMessage():
      lines = record.getMessage().splitlines()
      record.msg, record.args = (lines[0] if lines else ""), ()
      record.exc_info = record.exc_text = record.stack_info = None
    return record

  return make


# The stages' modules a worker of every job unpickles its DoFns from: a
# prestarted worker imports them while it waits.
STAGE_MODULES = ("transforms.reading", "transforms.sentences",
                 "transforms.tokenization", "transforms.instances",
                 "transforms.masking", "transforms.examples",
                 "transforms.pool_files", "transforms.shards")


def _wait_for_the_launcher() -> None:
  """A prestarted worker: imports ``STAGE_MODULES``, then takes the
  environment the launcher hands over, or exits when none comes."""
  for module in STAGE_MODULES:
    __import__(module)
  collect_less()
  env = prestart.wait_for_job()
  if env is None:
    exit_now(0)
  prestart.apply_environment(env, STARTED_WITH)


def main() -> None:
  prestart.end_with_the_launcher()
  prestarted = prestart.PRESTART_FLAG in sys.argv[1:]
  if prestarted:
    _wait_for_the_launcher()
  write_worker_pid()
  if not os.environ.get(DEBUG_LOGS_ENV):
    logging.setLogRecordFactory(_one_line_records(
        logging.getLogRecordFactory()))
    for name in EXPECTED_WARNINGS:
      logging.getLogger(name).setLevel(logging.ERROR)
  if not prestarted:
    collect_less()
  sdk_worker_main.main(sys.argv)
  # The last second of the live progress tally, which the launcher reads
  # once more when the job is done.
  metrics.flush_progress()
  exit_now(0)


if __name__ == "__main__":
  main()
