"""runners/lean_beam.py: the job's processes import Beam without pandas,
pyarrow, the Google Cloud clients or MongoDB's, and can still import them
afterwards."""

import subprocess
import sys
import textwrap

import pytest

from runners import lean_beam
from tests.helpers import REPO

# What a plain ``import apache_beam`` loads besides ``UNUSED``: the Google
# Cloud clients, each of which imports google.api_core.
CLIENTS = ("google.cloud.storage", "google.cloud.dataflow_v1beta3",
           "google.cloud.bigquery_storage_v1", "google.cloud.pubsub_v1")

LOADED = """
      from runners.lean_beam import UNUSED
      print(sorted(name for name in UNUSED + %r
                   if any(m == name or m.startswith(name + ".")
                          for m in sys.modules)))
""" % (CLIENTS,)


def _run(code: str, quiet: bool = False) -> str:
  """Runs ``code`` in a fresh interpreter at the repository root and
  returns what it printed; ``quiet``: it must print nothing on stderr."""
  done = subprocess.run([sys.executable, "-c", textwrap.dedent(code)],
                        cwd=REPO, capture_output=True, text=True,
                        timeout=120, check=False)
  assert done.returncode == 0, done.stderr
  if quiet:
    assert done.stderr == ""
  return done.stdout


@pytest.mark.parametrize("module, args", [
    ("pipelines.mlm", ["--help"]),
    # Without its harness's settings the worker fails once imported.
    ("runners.worker", []),
    ("runners.external_worker", ["--help"]),
])
def test_the_job_programs_import_none_of_the_unused_packages(module, args):
  """The launcher, the DirectRunner's worker processes and the Flink
  worker, run as programs: when they end, Beam is imported but none of
  ``UNUSED`` or the Google Cloud clients."""
  code = textwrap.dedent("""
      import atexit, os, runpy, sys
      def report():
        loaded = sorted(name for name in %r
                        if any(m == name or m.startswith(name + ".")
                               for m in sys.modules))
        print("beam" if "apache_beam" in sys.modules else "no beam", loaded,
              flush=True)
      atexit.register(report)
      exit_now = os._exit  # the programs end so, skipping atexit
      os._exit = lambda code: (report(), exit_now(code))
      sys.argv = ["program"] + %r
      runpy.run_module(%r, run_name="__main__", alter_sys=True)
      """) % (lean_beam.UNUSED + CLIENTS, args, module)
  done = subprocess.run([sys.executable, "-c", code], cwd=REPO,
                        capture_output=True, text=True, timeout=120,
                        check=False)
  assert done.stdout.strip().splitlines()[-1] == "beam []", (
      done.stdout + done.stderr[-2000:])


def test_importing_the_entry_modules_hides_nothing():
  """A process that imports the entry points as modules (a test, a
  notebook) keeps Beam's optional integrations: Beam's Parquet IO has
  its pyarrow."""
  printed = _run("""
      import pipelines.mlm, runners.worker, runners.external_worker
      import apache_beam.io.parquetio as parquetio
      print(parquetio.pa is not None)
      """)
  assert printed.strip() == "True"


def test_a_plain_beam_import_loads_them():
  """The control: without ``import_beam()`` Beam loads every one of
  ``UNUSED`` (installed with tensorflow-transform). If this fails, Beam or
  the dependencies changed and ``UNUSED`` should be checked again."""
  printed = _run("""
      import sys
      import apache_beam
      """ + LOADED)
  assert printed.strip() == repr(sorted(lean_beam.UNUSED + CLIENTS))


def test_after_the_import_everything_imports_and_s3_is_a_filesystem():
  """What was hidden imports as usual afterwards (Parquet's pyarrow,
  pandas), and Beam's own filesystems are there: local and ``s3://``."""
  printed = _run("""
      from runners import lean_beam
      lean_beam.import_beam()
      import pandas, pyarrow.parquet, google.cloud.storage
      from apache_beam.io.filesystems import FileSystems
      print(type(FileSystems.get_filesystem("s3://bucket/key")).__name__,
            type(FileSystems.get_filesystem("/tmp/x")).__name__)
      """)
  assert printed.split() == ["S3FileSystem", "LocalFileSystem"]


def test_modules_hidden_hides_only_within_the_block_and_keeps_loaded_ones():
  name = "json"  # already imported: left as it is
  assert name in sys.modules
  absent = "mlm_lean_beam_test_absent"
  with lean_beam.modules_hidden([name, absent]):
    import json  # pylint: disable=import-outside-toplevel,reimported
    assert json is sys.modules[name]
    with pytest.raises(ModuleNotFoundError):
      __import__(absent)
    with pytest.raises(ModuleNotFoundError):
      __import__(absent + ".sub")
  assert absent not in sys.modules


def test_the_import_logs_none_of_the_warnings_it_causes():
  """Beam warns when bson is missing; ``import_beam`` leaves that warning
  out (``EXPECTED_WARNINGS``), and logs nothing else."""
  _run("""
      import logging
      logging.basicConfig(level=logging.WARNING)
      from runners import lean_beam
      lean_beam.import_beam()
      """, quiet=True)
  done = subprocess.run([sys.executable, "-c", textwrap.dedent("""
      import logging
      logging.basicConfig(level=logging.WARNING)
      from runners import lean_beam
      with lean_beam.modules_hidden():
        import apache_beam
      """)], cwd=REPO, capture_output=True, text=True, timeout=120,
                        check=False)
  assert "Could not find a compatible bson package" in done.stderr, (
      "the control: hidden without the filter, Beam warns")


def test_boto3_is_imported_at_the_first_s3_path_and_clients_are_shared():
  """Beam's S3 IO gets its boto3 wrapper on first use: the launcher's
  ``share_s3_clients()`` imports nothing, and the first ``S3IO`` imports it
  with its clients shared (transforms/s3_clients.py). No server is needed:
  boto3 connects only on a request."""
  printed = _run("""
      import sys
      from runners import lean_beam
      lean_beam.import_beam()
      print("boto3" in sys.modules)
      from transforms import s3_clients
      print(s3_clients.share_s3_clients(), "boto3" in sys.modules)
      from apache_beam.io.aws import s3io
      from apache_beam.options.pipeline_options import PipelineOptions
      options = PipelineOptions(["--s3_endpoint_url=http://127.0.0.1:9",
                                 "--s3_region_name=us-east-1"])
      first, second = s3io.S3IO(options=options), s3io.S3IO(options=options)
      print("boto3" in sys.modules, type(first.client).__name__,
            first.client.client is second.client.client)
      """, quiet=True)
  assert printed.split() == ["False", "True", "False", "True",
                             "SharedClient", "True"]
