"""pipelines/output_lock.py: when a lock's holder is gone (the CLI runs that
contend for one output: tests/e2e/test_output_dir.py)."""

import subprocess
import sys
import time

from pipelines import output_lock


def test_holder_gone_unit():
  now = time.time()
  me = output_lock.holder_description("x")
  assert not output_lock.holder_gone(me, now)
  dead = subprocess.run([sys.executable, "-c", "pass"], check=True)
  del dead
  gone = dict(me, pid=2 ** 22 + 17)  # above the kernel's pid_max default
  assert output_lock.holder_gone(gone, now)
  reused = dict(me, process_start="1")  # the pid now names a later process
  assert output_lock.holder_gone(reused, now)
  elsewhere = dict(me, host="another-host", boot_id="b")
  assert not output_lock.holder_gone(elsewhere, now + 60)
  assert output_lock.holder_gone(elsewhere,
                                 now + output_lock.STALE_SECONDS + 1)
