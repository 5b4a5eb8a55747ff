"""Imports Apache Beam without the optional integrations this project never
uses, so that each process of a job starts faster and smaller.

Beam's ``import apache_beam`` loads, when they are installed, pandas (for
its DataFrame type hints), pyarrow (Arrow type hints), the Google Cloud
clients of its ``gs://`` filesystem, its BigQuery and Pub/Sub connectors
and its Dataflow runner, MongoDB's client and Google's API client
(apitools). Each is guarded
in Beam by ``try: import … except ImportError``. This project installs
them only because ``tensorflow-transform`` depends on ``apache-beam[gcp]``,
pandas and pyarrow; the job reads and writes local files and ``s3://``,
writes Parquet through pyarrow directly (imported when it is needed), and
runs on the DirectRunner or Flink, never Dataflow.

Measured on the development machine (2 cores, Python 3.11, Beam 2.77):
importing what the launcher imports from Beam (``BEAM_MODULES``) took
1.25-1.47 CPU seconds and 208 MB of resident memory; with ``import_beam()``
0.82-0.93 s and 120 MB (pandas, pyarrow and google.api_core hidden), and
then 0.05-0.07 s less with MongoDB's client and google.auth hidden too,
and 0.12 s less again without apitools and Beam's BigQuery IO. The
launcher and every worker process pay it (``benchmarks/stage_profile.py`` shows the job).

``import_beam()`` sets ``sys.modules[name] = None`` for each name in
``UNUSED`` (Python then raises ``ModuleNotFoundError`` for it, the case
Beam's guards skip without a warning), imports Beam's modules, and removes
those entries again: a later ``import pandas`` or ``import pyarrow`` in the
same process works as usual. What Beam set up without them stays so in
that process: its pandas and Arrow batch type hints, its ``gs://``
filesystem, and its own Parquet IO (``apache_beam.io.parquetio`` keeps no
pyarrow; the project writes and reads Parquet with pyarrow directly). So
only the programs call it, as they start (``pipelines.mlm`` run as a
program, ``runners.worker``, ``runners.external_worker.main``), never a
module that another program imports.
"""

import contextlib
import importlib
import importlib.util
import logging
import sys
from typing import Iterator, Sequence

# Packages that Beam imports only when installed and that no stage of this
# project needs while Beam is being imported. Every Google Cloud client Beam
# imports (storage, Dataflow, BigQuery, Pub/Sub) imports ``google.api_core``
# first; ``google.cloud`` itself cannot be hidden, as a ``.pth`` file of
# google-cloud-aiplatform imports that namespace when Python starts.
# pymongo and bson (Beam's MongoDB IO) and google.auth (GCP credentials)
# took 0.05-0.07 CPU s more (0.68-0.70 -> 0.61-0.64 s, side by side); Beam
# logs a warning without bson (``EXPECTED_WARNINGS``), which the import
# leaves out. apitools (the HTTP errors Beam's retry decorator knows of, for
# Google's APIs) and Beam's own ``apache_beam.io.gcp.bigquery`` (which
# ``apache_beam.io`` imports, with Pub/Sub, GCS and the cross-language IOs,
# in one guarded block) took 0.12 CPU s more of the launcher's imports
# (0.69 -> 0.57 s, three runs each, side by side).
UNUSED = ("pandas", "pyarrow", "google.api_core", "pymongo", "bson",
          "google.auth", "apitools", "apache_beam.io.gcp.bigquery")

# Beam's boto3 client wrapper, which Beam's S3 filesystem imports with Beam
# and needs only for an ``s3://`` path: boto3 and botocore took 0.06 CPU s of
# each process's start (0.57 -> 0.51 s). ``import_beam`` hides it, then
# hands Beam's S3 IO a stand-in that imports it on first use
# (``_S3ClientOnUse``).
S3_CLIENT_MODULE = "apache_beam.io.aws.clients.s3.boto3_client"
_S3IO_MODULE = "apache_beam.io.aws.s3io"

# (logger, start of the message) of the warnings Beam logs when it imports
# without ``UNUSED``: nothing the user can or should act on.
EXPECTED_WARNINGS = (
    ("apache_beam.io.mongodbio", "Could not find a compatible bson package"),
)

# What the launcher and the workers import from Beam.
BEAM_MODULES = ("apache_beam", "apache_beam.runners.direct",
                "apache_beam.runners.portability.fn_api_runner",
                "apache_beam.runners.worker.sdk_worker_main")


@contextlib.contextmanager
def modules_hidden(names: Sequence[str] = UNUSED) -> Iterator[None]:
  """Within the block, ``import X`` (and of every ``X.sub``) raises
  ``ModuleNotFoundError`` for each ``X`` in ``names`` that is not already
  imported; afterwards those names import as usual. Names already in
  ``sys.modules`` are left as they are."""
  hidden = [name for name in names if name not in sys.modules]
  for name in hidden:
    sys.modules[name] = None  # type: ignore[assignment]
  try:
    yield
  finally:
    for name in hidden:
      if sys.modules.get(name, 0) is None:
        del sys.modules[name]


class _DropExpected(logging.Filter):
  """Drops the records of ``EXPECTED_WARNINGS``."""

  def filter(self, record: logging.LogRecord) -> bool:
    message = str(record.msg)
    return not any(record.name == name and message.startswith(start)
                   for name, start in EXPECTED_WARNINGS)


def import_beam(modules: Sequence[str] = BEAM_MODULES) -> None:
  """Imports ``modules`` (Beam's) with ``UNUSED`` hidden, without the
  warnings that leaves (``EXPECTED_WARNINGS``). Does nothing more than a
  plain import where Beam is already imported: call it before any module
  that imports Beam."""
  drop = _DropExpected()
  loggers = [logging.getLogger(name if name != "root" else None)
             for name, _ in EXPECTED_WARNINGS]
  for logger in loggers:
    logger.addFilter(drop)
  try:
    with modules_hidden(UNUSED + (S3_CLIENT_MODULE,)):
      for module in modules:
        __import__(module)
  finally:
    for logger in loggers:
      logger.removeFilter(drop)
  _import_s3_client_on_use()


class _S3ClientOnUse:
  """Stands for Beam's ``boto3_client`` module in its S3 IO: the first
  attribute read imports the module (and boto3)."""

  def __getattr__(self, name):
    return getattr(importlib.import_module(S3_CLIENT_MODULE), name)


def _import_s3_client_on_use() -> None:
  """Where Beam's S3 IO was imported without its boto3 client (hidden by
  ``import_beam``) and boto3 is installed: gives it ``_S3ClientOnUse``, so
  that an ``s3://`` path works as with a plain import."""
  s3io = sys.modules.get(_S3IO_MODULE)
  if s3io is None or getattr(s3io, "BOTO3_INSTALLED", True):
    return
  if importlib.util.find_spec("boto3") is None:
    return  # Beam's own message then says what is missing
  s3io.boto3_client = _S3ClientOnUse()
  s3io.BOTO3_INSTALLED = True
