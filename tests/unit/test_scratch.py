"""pipelines/scratch.py: a run's private temporary folder, removed whole."""

import os

from pipelines import scratch


def test_scratch_dir_unit(tmp_path):
  box = scratch.ScratchDir(str(tmp_path))
  path = box.enter()
  assert os.environ["TMPDIR"] == path and os.path.isdir(path)
  open(os.path.join(path, "f"), "w").close()
  box.exit()
  box.exit()  # twice: a signal watcher and the main thread may both call it
  assert os.listdir(tmp_path) == []
  assert os.environ.get("TMPDIR") != path
