"""One namespace for every counter the pipeline keeps.

``summary.json`` is written from these counters after the job finishes, so a
number in the summary and the Beam metric of the same name always agree.
"""

import functools

from apache_beam.metrics import Metrics

NAMESPACE = "mlm"


@functools.lru_cache(maxsize=None)
def _counter(name: str):
  return Metrics.counter(NAMESPACE, name)


@functools.lru_cache(maxsize=None)
def _distribution(name: str):
  return Metrics.distribution(NAMESPACE, name)


def count(name: str, n: int = 1) -> None:
  """Adds ``n`` to the counter ``mlm/name``."""
  if n:
    _counter(name).inc(int(n))


def observe(name: str, value: int) -> None:
  """Records one value in the distribution ``mlm/name``."""
  _distribution(name).update(int(value))
