"""What a running job shows: live progress, the closing summary line, and a
warning when the run threw most of its text away.

Progress: input bytes read of the total (the matched files' sizes),
documents, instances, throughput, elapsed time and an ETA. On a terminal it
is a tqdm bar redrawn every half second; otherwise (a log, CI) one
``progress:`` line every ``LOG_SECONDS``. The counts come from a callable:

* on the DirectRunner, ``FileTally``: the tallies every worker process
  writes (``transforms.metrics``, at most once a second per process) summed;
* on Flink, the job's own metrics read over Flink's REST API
  (``runners.flink.rest_counts``).
"""

import glob
import json
import os
import shutil
import sys
import tempfile
import threading
import time
from typing import Callable, Dict, Optional, TextIO

from transforms import metrics

LOG_SECONDS = 30.0
BAR_SECONDS = 0.5
QUIET_POLL_SECONDS = 2.0
Counts = Dict[str, int]


class FileTally:
  """A folder the workers write their progress tallies to (named to them by
  ``metrics.PROGRESS_DIR_ENV``, which worker processes inherit); calling
  it sums the tallies."""

  def __init__(self):
    self.directory = tempfile.mkdtemp(prefix="mlm-progress-")
    self._previous = os.environ.get(metrics.PROGRESS_DIR_ENV)
    os.environ[metrics.PROGRESS_DIR_ENV] = self.directory

  def __call__(self) -> Counts:
    total: Counts = {}
    for path in glob.glob(os.path.join(self.directory, "*.json")):
      try:
        with open(path) as f:
          counts = json.load(f)
      except (OSError, ValueError):
        continue  # replaced as it was read: the next poll sees it
      for name, n in counts.items():
        total[name] = total.get(name, 0) + int(n)
    return total

  def close(self) -> None:
    if self._previous is None:
      os.environ.pop(metrics.PROGRESS_DIR_ENV, None)
    else:
      os.environ[metrics.PROGRESS_DIR_ENV] = self._previous
    shutil.rmtree(self.directory, ignore_errors=True)


def _duration(seconds: float) -> str:
  seconds = int(seconds)
  h, rest = divmod(seconds, 3600)
  return ("%d:%02d:%02d" % (h, rest // 60, rest % 60) if h
          else "%d:%02d" % (rest // 60, rest % 60))


def progress_line(counts: Counts, total_bytes: int, elapsed: float) -> str:
  """``12.3/45.6 MB (27%), 1,234 documents, 5,678 instances, 0.9 MB/s,
  elapsed 0:13, ETA 0:37`` (no ETA before any byte is done)."""
  done = counts.get("input_bytes", 0)
  rate = done / elapsed if elapsed > 0 else 0.0
  parts = ["%.1f/%.1f MB" % (done / 1e6, total_bytes / 1e6)]
  if total_bytes:
    parts[0] += " (%d%%)" % (100 * done // total_bytes)
  parts += ["{:,} documents".format(counts.get("documents_read", 0)),
            "{:,} instances".format(counts.get("instances", 0))]
  if counts.get("rejected_records"):
    parts.append("{:,} set aside".format(counts["rejected_records"]))
  if counts.get("stages"):
    parts.append("%d/%d stages done" % (counts.get("stages_done", 0),
                                        counts["stages"]))
  parts += ["%.2f MB/s" % (rate / 1e6), "elapsed " + _duration(elapsed)]
  if rate > 0 and total_bytes > done:
    parts.append("ETA " + _duration((total_bytes - done) / rate))
  return ", ".join(parts)


def _terminal_width(stream) -> Optional[int]:
  """None when the terminal reports its width (the bar follows it), else a
  width to use: $COLUMNS or 100."""
  try:
    if os.get_terminal_size(stream.fileno()).columns > 0:
      return None
  except (OSError, ValueError, AttributeError):
    pass
  columns = os.environ.get("COLUMNS", "")
  return int(columns) if columns.isdigit() and int(columns) > 0 else 100


class Progress:
  """Shows ``read_counts()`` while a job runs, from a thread of its own;
  ``start()``/``stop()``, or as a context manager."""

  def __init__(self, total_bytes: int, read_counts: Callable[[], Counts],
               stream: TextIO = sys.stderr, tty: Optional[bool] = None,
               log_seconds: float = LOG_SECONDS, display: bool = True):
    self._total = total_bytes
    self._read = read_counts
    self._stream = stream
    self._display = display
    self._tty = (stream.isatty() if tty is None else tty) and display
    self._interval = (BAR_SECONDS if self._tty else
                      log_seconds if display else QUIET_POLL_SECONDS)
    self._done = threading.Event()
    self._thread = None
    self._bar = None
    self._start = 0.0

  def start(self) -> "Progress":
    self._start = time.monotonic()
    if self._tty:
      import tqdm  # pylint: disable=import-outside-toplevel
      # A terminal that reports no size (some pseudo-terminals) would get
      # no bar (tqdm hides bars below the screen's last row): then 100
      # columns, or $COLUMNS, and rows enough.
      width = _terminal_width(self._stream)
      self._bar = tqdm.tqdm(total=self._total, unit="B", unit_scale=True,
                            unit_divisor=1000, file=self._stream,
                            dynamic_ncols=width is None, ncols=width,
                            nrows=None if width is None else 24,
                            desc="input", smoothing=0.1)
    self._thread = threading.Thread(target=self._run, name="progress",
                                    daemon=True)
    self._thread.start()
    return self

  def _run(self) -> None:
    while not self._done.wait(self._interval):
      self._show()

  def _show(self) -> None:
    try:
      counts = self._read()
    except Exception:  # pylint: disable=broad-except
      return  # a source that cannot answer now (Flink starting) may later
    if not self._display:
      return  # polled only for what the source prints (Flink's job id)
    if self._bar is not None:
      self._bar.n = min(counts.get("input_bytes", 0), self._total)
      postfix = "{:,} docs, {:,} instances".format(
          counts.get("documents_read", 0), counts.get("instances", 0))
      if counts.get("rejected_records"):
        postfix += ", {:,} set aside".format(counts["rejected_records"])
      self._bar.set_postfix_str(postfix, refresh=False)
      self._bar.refresh()
    else:
      print("progress: " + progress_line(
          counts, self._total, time.monotonic() - self._start),
            file=self._stream, flush=True)

  @property
  def is_bar(self) -> bool:
    """Whether this shows a bar (on a terminal) rather than log lines."""
    return self._tty

  def stop(self) -> None:
    self._done.set()
    if self._thread is not None:
      self._thread.join()
    if self._bar is not None:
      metrics.flush_progress()  # this process's own share (in_memory)
      self._show()  # what the workers wrote last
      self._bar.close()

  def __enter__(self):
    return self.start()

  def __exit__(self, *exc):
    self.stop()


def summary_line(counts: Counts, input_bytes: int, seconds: float,
                 rejected_detail: str = "") -> str:
  """The run in one line: documents, instances, records set aside (with
  ``rejected_detail`` in parentheses: by reason, where listed), wall time
  and input MB/s."""
  return ("done: {:,} documents, {:,} instances, {:,} records set aside{}, "
          "{:.1f} s, {:.2f} MB/s ({:.1f} MB of input)").format(
              counts.get("documents", 0), counts.get("instances", 0),
              counts.get("rejected_records", 0),
              " (%s)" % rejected_detail if rejected_detail else "", seconds,
              input_bytes / 1e6 / seconds if seconds > 0 else 0.0,
              input_bytes / 1e6)


def lost_text_warning(counts: Counts, input_format: str) -> Optional[str]:
  """Why most of the text read did not reach the examples, when it did not:
  ``truncated_tokens`` (cut from pairs longer than a sequence) outweighing
  ``instance_tokens`` (kept in the examples). None otherwise."""
  kept = counts.get("instance_tokens", 0)
  truncated = counts.get("truncated_tokens", 0)
  if truncated <= kept:
    return None
  message = ("warning: most of the text was thrown away: {:,} tokens were "
             "truncated (truncated_tokens) against {:,} kept in the examples "
             "(instance_tokens), from {:,} tokens read. ").format(
                 truncated, kept, counts.get("tokens", 0))
  if input_format == "lines":
    message += ("In --input_format=lines every line is one sentence, and a "
                "pair of sentences longer than --max_seq_length is cut to "
                "it: this input seems to have no sentence breaks (a whole "
                "paragraph or document per line). Split it into one "
                "sentence per line, or read it as paragraphs with "
                "--input_format=jsonl (or wikiextractor), whose lines are "
                "split into sentences.")
  else:
    message += ("Its sentences are longer than --max_seq_length: is "
                "--input_format right for these files, or are the "
                "sentences really this long (then --packing=full_sentences "
                "splits them instead of cutting them)?")
  return message
