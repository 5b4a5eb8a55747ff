"""A worker process of the DirectRunner's ``multi_processing`` mode.

Runs Beam's Python SDK harness (``sdk_worker_main``) as Beam's own worker
command does, then ends at once: the FnApiRunner waits for each worker
process to end, one after the other, and the interpreter's teardown took
half a second per worker (runners/direct.py). A harness that fails raises,
and the process exits non-zero with the traceback as before.
"""

import sys

from apache_beam.runners.worker import sdk_worker_main

from runners.direct import exit_now, write_worker_pid
from transforms import metrics


def main() -> None:
  write_worker_pid()
  sdk_worker_main.main(sys.argv)
  # The last second of the live progress tally, which the launcher reads
  # once more when the job is done.
  metrics.flush_progress()
  exit_now(0)


if __name__ == "__main__":
  main()
