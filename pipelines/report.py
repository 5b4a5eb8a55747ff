"""Statistics of an output, with plots; two outputs compared.

Usage:
  python -m pipelines.report OUTPUT [--compare=OTHER] [--html=report.html]
      [--plots_dir=DIR] [--sample=100000] [--seed=0] [--vocab_file=…]
      [Beam's S3 flags: --s3_endpoint_url=…]

``OUTPUT`` and ``OTHER`` are outputs of ``pipelines.mlm`` (TFRecord or
Parquet, local or ``s3://``) or plain TFRecord files such as
google-research/bert's ``create_pretraining_data.py`` writes.

Statistics (``statistics``): sequence lengths, masked-LM predictions per
example, how predictions are shown (``[MASK]`` / a random token / the
original: BERT's 80/10/10), the sentence label's share, the lengths of runs
of consecutive masked tokens (whole words, n-grams, spans), the most
frequently masked tokens, the unknown-token rate, the share of text tokens
that start a word (from ALBERT's ``token_boundary``, where the output has
it) and the shard sizes.

Each distribution is drawn with matplotlib into a PNG in ``--plots_dir``
(the two outputs side by side with ``--compare``), and ``--html`` writes one
self-contained page that embeds them (base64) with the tables. With
``--compare`` every statistic has a difference and a two-sample test:
Kolmogorov-Smirnov (``scipy.stats.ks_2samp``) for the numeric distributions,
chi-squared homogeneity (``scipy.stats.chi2_contingency``) for the shares;
a p-value below 0.01 is flagged as a difference.

Large outputs are sampled (``--sample`` examples, read from shards taken in
a random order from ``--seed``, each shard read from its start), so a report
on 100 GB reads about ``--sample`` examples' worth, not the whole output.

What the report writes (``--html``, ``--json``, the PNGs) is checked before
any output is read: a path that cannot be written is refused, and so is one
that exists unless ``--overwrite`` is given. Each file is written under a
temporary name beside it and renamed into place when whole
(``pipelines.cli``). Every failure is one ``error:`` line: exit status 2 for
a bad flag, an output path refused or an output that cannot be opened, 1
for a corrupt record or any other failure.
"""

import base64
import collections
import dataclasses
import html
import io
import json
import os
import random
from typing import Dict, List, Optional, Sequence

import numpy as np
from apache_beam.io.filesystems import FileSystems
from apache_beam.options.pipeline_options import PipelineOptions

from pipelines import cli, records
from pipelines.options import UsageError, s3_client_kwargs
from runners import direct

TOP_TOKENS = 20
# Every PNG ``plots`` may write (which ones depends on the outputs).
PLOT_FILES = ("sequence_lengths.png", "predictions.png", "shown.png",
              "labels.png", "masked_runs.png", "masked_tokens.png",
              "unknown.png", "shard_sizes.png", "overview.png")
P_FLAG = 0.01
SHOWN_KINDS = ("[MASK]", "random", "original")


@dataclasses.dataclass
class Statistics:
  """What ``statistics`` measures over a sample of examples."""
  examples: int
  sequence_lengths: np.ndarray  # [examples], tokens incl. [CLS]/[SEP]
  predictions: np.ndarray  # [examples], masked-LM predictions
  shown: Dict[str, int]  # SHOWN_KINDS → predictions
  labels: Dict[int, int]  # sentence label → examples (empty without)
  run_lengths: np.ndarray  # lengths of runs of consecutive masked tokens
  masked_tokens: Dict[str, int]  # original token → predictions
  tokens: int  # text tokens (originals restored; [CLS]/[SEP]/[PAD] not)
  unknown_tokens: int  # [UNK] among them
  shard_bytes: Dict[str, int]  # every shard of the output, sampled or not
  # Text tokens of the examples with a token_boundary, and the word starts
  # among them (0 and 0 for an output without it).
  boundary_tokens: int = 0
  word_starts: int = 0
  # Independent document passes behind the examples (documents times
  # --dupe_factor, from summary.json; None for a plain file): see compare.
  units: Optional[int] = None

  @property
  def unknown_rate(self) -> float:
    return self.unknown_tokens / self.tokens if self.tokens else 0.0

  def summary(self) -> Dict[str, object]:
    """The headline numbers (what the tables show)."""
    predictions = max(1, int(self.predictions.sum()))
    labelled = max(1, sum(self.labels.values()))
    return {
        "examples": self.examples,
        "mean_sequence_length": _mean(self.sequence_lengths),
        "mean_predictions": _mean(self.predictions),
        "share_[MASK]": self.shown["[MASK]"] / predictions,
        "share_random": self.shown["random"] / predictions,
        "share_original": self.shown["original"] / predictions,
        "share_label_1": (self.labels.get(1, 0) / labelled
                          if self.labels else None),
        "mean_masked_run_length": _mean(self.run_lengths),
        "unknown_token_rate": self.unknown_rate,
        "share_word_start": (self.word_starts / self.boundary_tokens
                             if self.boundary_tokens else None),
        "shards": len(self.shard_bytes),
        "bytes": sum(self.shard_bytes.values()),
    }


def _mean(values: np.ndarray) -> Optional[float]:
  return float(values.mean()) if len(values) else None


def masked_runs(positions: np.ndarray) -> List[int]:
  """Lengths of the runs of consecutive positions in sorted ``positions``:
  ``[3, 4, 5, 9, 12, 13]`` → ``[3, 1, 2]``."""
  if not len(positions):
    return []
  breaks = np.flatnonzero(np.diff(positions) != 1)
  ends = np.concatenate([breaks, [len(positions) - 1]])
  starts = np.concatenate([[0], breaks + 1])
  return (ends - starts + 1).tolist()


def statistics(examples: Sequence[records.Example], vocab: Sequence[str],
               shard_bytes: Dict[str, int], mask_id: int, unk_id: int,
               special_ids: Sequence[int]) -> Statistics:
  """The statistics of ``examples`` (``vocab`` in id order)."""
  lengths, predictions, runs = [], [], []
  shown = collections.Counter({k: 0 for k in SHOWN_KINDS})
  labels = collections.Counter()
  masked = collections.Counter()
  tokens = unknown = boundary_tokens = word_starts = 0
  special = np.array(sorted(set(special_ids)))
  for example in examples:
    ids = example.input_ids
    lengths.append(len(ids))
    positions, originals = example.masked_positions, example.masked_ids
    predictions.append(len(positions))
    if len(positions):
      at = ids[positions]
      is_mask = at == mask_id
      kept = at == originals
      shown["[MASK]"] += int(is_mask.sum())
      shown["original"] += int((kept & ~is_mask).sum())
      shown["random"] += int((~kept & ~is_mask).sum())
      runs.extend(masked_runs(positions))
      masked.update(vocab[i] if 0 <= i < len(vocab) else str(i)
                    for i in originals.tolist())
      restored = ids.copy()
      restored[positions] = originals
    else:
      restored = ids
    is_text = ~np.isin(restored, special)
    text = restored[is_text]
    tokens += len(text)
    unknown += int((text == unk_id).sum())
    if example.token_boundary is not None:
      boundary_tokens += len(text)
      word_starts += int(example.token_boundary[is_text].sum())
    if example.label is not None:
      labels[example.label] += 1
  return Statistics(
      examples=len(lengths), sequence_lengths=np.array(lengths, np.int64),
      predictions=np.array(predictions, np.int64), shown=dict(shown),
      labels=dict(labels), run_lengths=np.array(runs, np.int64),
      masked_tokens=dict(masked), tokens=tokens, unknown_tokens=unknown,
      shard_bytes=dict(shard_bytes), boundary_tokens=boundary_tokens,
      word_starts=word_starts)


def sample_examples(output: records.Output, limit: int, seed: int
                    ) -> List[records.Example]:
  """Up to ``limit`` examples: shards in a random order (``seed``), each
  read from its start, until ``limit`` are read."""
  shards = [s["path"] for s in output.shards]
  random.Random(seed).shuffle(shards)
  out: List[records.Example] = []
  for shard in shards:
    for example in records.examples(output, shard):
      if len(out) >= limit:
        return out
      out.append(example)
  return out


# --- Two-sample tests --------------------------------------------------------


def compare(a: Statistics, b: Statistics) -> List[Dict[str, object]]:
  """One row per statistic: both values, the difference, the test, its
  effective sample sizes and p-value (None where a test does not apply).

  The examples of one document pass are not independent: BERT draws one
  target length per document and pass, and they share the document's text.
  Counting each example as an observation makes two seeds of the same job
  "differ" (p < 1e-15 on 103 Wikipedia articles). So each test counts at
  most one observation per document pass (``Statistics.units``: documents
  times ``--dupe_factor``, from summary.json; for a plain file, the other
  output's) — a conservative bound, as if all examples of a pass were
  alike. How a prediction is shown is drawn per masked run, so those shares
  count runs."""
  # pylint: disable=import-outside-toplevel
  from scipy import stats
  rows = []
  units_a = a.units or b.units
  units_b = b.units or a.units

  def effective(n, units):
    return min(n, units) if units else n

  def numeric(name, x, y):
    p = na = nb = None
    if len(x) and len(y):
      na, nb = effective(len(x), units_a), effective(len(y), units_b)
      d = stats.ks_2samp(x, y).statistic
      p = float(stats.kstwobign.sf(d * np.sqrt(na * nb / (na + nb))))
    rows.append(_row(name, _mean(x), _mean(y), "Kolmogorov-Smirnov", p,
                     na, nb))

  def shares(name, table, key_a, key_b, n_a, n_b):
    table = np.array(table, dtype=np.float64)
    table = table[:, table.sum(axis=0) > 0]
    p = None
    totals = table.sum(axis=1)
    if table.shape[1] > 1 and np.all(totals > 0):
      # Each row scaled to its effective number of observations.
      scale = np.array([min(1.0, n_a / totals[0]),
                        min(1.0, n_b / totals[1])])[:, None]
      p = float(stats.chi2_contingency(table * scale).pvalue)
    rows.append(_row(name, key_a, key_b, "chi-squared", p,
                     int(min(n_a, totals[0])) if len(totals) else None,
                     int(min(n_b, totals[1])) if len(totals) > 1 else None))

  big = float("inf")
  numeric("sequence length (mean)", a.sequence_lengths, b.sequence_lengths)
  numeric("predictions per example (mean)", a.predictions, b.predictions)
  numeric("masked run length (mean)", a.run_lengths, b.run_lengths)
  pa_, pb_ = (max(1, sum(s.shown.values())) for s in (a, b))
  shares("shown as [MASK] / random / original",
         [[a.shown[k] for k in SHOWN_KINDS], [b.shown[k] for k in SHOWN_KINDS]],
         "/".join("%.3f" % (a.shown[k] / pa_) for k in SHOWN_KINDS),
         "/".join("%.3f" % (b.shown[k] / pb_) for k in SHOWN_KINDS),
         len(a.run_lengths) or big, len(b.run_lengths) or big)
  if a.labels or b.labels:
    la, lb = (max(1, sum(s.labels.values())) for s in (a, b))
    shares("sentence label 1 (share)",
           [[a.labels.get(0, 0), a.labels.get(1, 0)],
            [b.labels.get(0, 0), b.labels.get(1, 0)]],
           a.labels.get(1, 0) / la, b.labels.get(1, 0) / lb,
           units_a or big, units_b or big)
  shares("unknown-token rate",
         [[a.tokens - a.unknown_tokens, a.unknown_tokens],
          [b.tokens - b.unknown_tokens, b.unknown_tokens]],
         a.unknown_rate, b.unknown_rate, units_a or big, units_b or big)
  if a.boundary_tokens and b.boundary_tokens:
    shares("word starts among text tokens (token_boundary)",
           [[a.boundary_tokens - a.word_starts, a.word_starts],
            [b.boundary_tokens - b.word_starts, b.word_starts]],
           a.word_starts / a.boundary_tokens,
           b.word_starts / b.boundary_tokens, units_a or big, units_b or big)
  top = [t for t, _ in collections.Counter(
      {**{k: 0 for k in b.masked_tokens}, **a.masked_tokens}).most_common(
          TOP_TOKENS)]
  shares("most masked tokens (top %d of the first)" % TOP_TOKENS,
         [[a.masked_tokens.get(t, 0) for t in top],
          [b.masked_tokens.get(t, 0) for t in top]], ", ".join(top[:5]),
         ", ".join(t for t, _ in collections.Counter(
             b.masked_tokens).most_common(5)), units_a or big,
         units_b or big)
  return rows


def _row(name, a, b, test, p, n_a=None, n_b=None):
  difference = (b - a if isinstance(a, float) and isinstance(b, float)
                else None)
  return {"statistic": name, "output": a, "other": b,
          "difference": difference, "test": test, "p_value": p,
          "effective_n": [n_a, n_b], "differs": p is not None and p < P_FLAG}


# --- Plots -------------------------------------------------------------------


def _pyplot():
  import matplotlib  # pylint: disable=import-outside-toplevel
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=import-outside-toplevel
  return plt


def _integer_ticks():
  from matplotlib.ticker import MaxNLocator  # pylint: disable=import-outside-toplevel
  return MaxNLocator(integer=True)


def plots(data: Dict[str, Statistics], directory: str) -> Dict[str, str]:
  """One PNG per statistic in ``directory`` (every output in ``data`` side
  by side, by name), plus ``overview.png`` with the six main ones; returns
  ``{title: path}`` (the overview not included)."""
  plt = _pyplot()
  os.makedirs(directory, exist_ok=True)
  names = list(data)
  first = data[names[0]]
  top = [t for t, _ in collections.Counter(first.masked_tokens).most_common(
      TOP_TOKENS)]

  def histogram(ax, title, attribute, xlabel):
    values = [getattr(data[n], attribute) for n in names]
    highest = max([int(v.max()) for v in values if len(v)] or [1])
    bins = np.arange(0, highest + 2) - 0.5 if highest <= 60 else 50
    for name, v in zip(names, values):
      if len(v):
        ax.hist(v, bins=bins, histtype="step", linewidth=1.5, density=True,
                label="%s (mean %.2f)" % (name, v.mean()))
    ax.set_xlabel(xlabel)
    ax.set_ylabel("share")
    ax.set_title(title)
    ax.legend(fontsize="small")

  def bars(ax, title, keys, values_of, rotate=False):
    width = 0.8 / len(names)
    x = np.arange(len(keys))
    for i, name in enumerate(names):
      ax.bar(x + i * width - 0.4 + width / 2, values_of(data[name]), width,
             label=name)
    ax.set_xticks(x)
    ax.set_xticklabels(keys, rotation=60 if rotate else 0,
                       ha="right" if rotate else "center")
    ax.set_ylabel("share")
    ax.set_title(title)
    ax.legend(fontsize="small")

  def shard_sizes(ax, title):
    for name in names:
      sizes = sorted(data[name].shard_bytes.values())
      ax.plot(np.arange(1, len(sizes) + 1), np.array(sizes) / 1e6, "o-",
              label="%s (%d shards)" % (name, len(sizes)))
    ax.set_xlabel("shard (by size)")
    ax.xaxis.set_major_locator(_integer_ticks())
    ax.set_ylabel("MB")
    ax.set_title(title)
    ax.legend(fontsize="small")

  def share(counts, keys):
    total = max(1, sum(counts.values()))
    return [counts.get(k, 0) / total for k in keys]

  panels = [
      ("sequence_lengths", "Sequence length", lambda ax, t: histogram(
          ax, t, "sequence_lengths",
          "tokens per example ([CLS] and [SEP] included)"), 7),
      ("predictions", "Masked-LM predictions per example",
       lambda ax, t: histogram(ax, t, "predictions", "predictions"), 7),
      ("shown", "How predictions are shown (BERT: 80/10/10)",
       lambda ax, t: bars(ax, t, list(SHOWN_KINDS),
                          lambda s: share(s.shown, SHOWN_KINDS)), 7),
  ]
  if any(s.labels for s in data.values()):
    panels.append(("labels", "Sentence label (NSP: 1 = random B; SOP: 1 = "
                   "swapped)", lambda ax, t: bars(
                       ax, t, ["0", "1"], lambda s: share(s.labels, (0, 1))),
                   7))
  panels.append(("masked_runs", "Runs of consecutive masked tokens",
                 lambda ax, t: histogram(ax, t, "run_lengths",
                                         "tokens per run"), 7))
  if top:
    panels.append(("masked_tokens", "Most frequently masked tokens (of %s)"
                   % names[0], lambda ax, t: bars(
                       ax, t, top, lambda s: share(s.masked_tokens, top),
                       rotate=True), 9))
  panels.append(("unknown", "Unknown-token rate ([UNK] among text tokens)",
                 lambda ax, t: bars(ax, t, ["[UNK]"],
                                    lambda s: [s.unknown_rate]), 7))
  panels.append(("shard_sizes", "Shard sizes", shard_sizes, 7))

  paths = {}
  for stem, title, draw, width in panels:
    fig, ax = plt.subplots(figsize=(width, 3.6))
    draw(ax, title)
    path = os.path.join(directory, stem + ".png")
    fig.tight_layout()
    _save(plt, fig, path, 100)
    paths[title] = path
  main = [p for p in panels if p[0] not in ("masked_tokens", "unknown")][:6]
  fig, axes = plt.subplots(2, 3, figsize=(18, 8))
  for ax, (_, title, draw, _) in zip(axes.flat, main):
    draw(ax, title)
  for ax in list(axes.flat)[len(main):]:
    ax.axis("off")
  fig.suptitle(" vs ".join(names))
  fig.tight_layout()
  _save(plt, fig, os.path.join(directory, "overview.png"), 80)
  return paths


def _save(plt, fig, path: str, dpi: int) -> None:
  """``fig`` as a PNG at ``path``, written whole (``cli.write_file``)."""
  assert os.path.basename(path) in PLOT_FILES, path
  data = io.BytesIO()
  try:
    fig.savefig(data, format="png", dpi=dpi)
  finally:
    plt.close(fig)
  cli.write_file(path, data.getvalue())


def check_destinations(html_path: Optional[str], json_path: Optional[str],
                       plots_dir: str, overwrite: bool) -> None:
  """Raises ``UsageError`` (one line) when a file the report would write
  cannot be written, or exists and ``overwrite`` is false: ``--html``,
  ``--json``, the PNGs in ``plots_dir``. Nothing is created."""
  for path, flag in ((html_path, "--html"), (json_path, "--json")):
    if path:
      cli.check_writable(path, flag, overwrite=overwrite)
  cli.check_writable(plots_dir, "--plots_dir", directory=True)
  if not overwrite:
    present = [name for name in PLOT_FILES
               if os.path.lexists(os.path.join(plots_dir, name))]
    if present:
      raise UsageError("%s already holds plots (%s); pass --overwrite to "
                       "replace them, or another --plots_dir"
                       % (plots_dir, ", ".join(present)))


# --- Page --------------------------------------------------------------------


def _cell(value) -> str:
  if value is None:
    return "–"
  if isinstance(value, float):
    return "%.4g" % value
  return html.escape(str(value))


def html_page(data: Dict[str, Statistics], images: Dict[str, str],
              comparison: Optional[List[Dict]]) -> str:
  """One self-contained page: the tables and every plot, embedded."""
  names = list(data)
  parts = ["<!DOCTYPE html><html><head><meta charset=\"utf-8\">",
           "<title>mlm-pipeline report</title><style>body{font-family:"
           "sans-serif;max-width:60em;margin:2em auto}table{border-collapse:"
           "collapse}td,th{border:1px solid #ccc;padding:.2em .6em;"
           "text-align:right}.differs{background:#fdd}</style></head><body>",
           "<h1>Report: %s</h1>" % html.escape(" vs ".join(names))]
  parts.append("<h2>Summary</h2><table><tr><th>statistic</th>%s</tr>" % "".join(
      "<th>%s</th>" % html.escape(n) for n in names))
  summaries = {n: data[n].summary() for n in names}
  for key in summaries[names[0]]:
    parts.append("<tr><td>%s</td>%s</tr>" % (html.escape(key), "".join(
        "<td>%s</td>" % _cell(summaries[n][key]) for n in names)))
  parts.append("</table>")
  if comparison is not None:
    parts.append("<h2>Differences and two-sample tests</h2><table><tr>"
                 "<th>statistic</th><th>%s</th><th>%s</th><th>difference</th>"
                 "<th>test</th><th>effective n</th><th>p-value</th></tr>"
                 % tuple(html.escape(n) for n in names))
    for row in comparison:
      parts.append("<tr%s><td>%s</td><td>%s</td><td>%s</td><td>%s</td>"
                   "<td>%s</td><td>%s</td><td>%s</td></tr>" % (
                       ' class="differs"' if row["differs"] else "",
                       html.escape(row["statistic"]), _cell(row["output"]),
                       _cell(row["other"]), _cell(row["difference"]),
                       html.escape(row["test"]),
                       " / ".join(_cell(n) for n in row["effective_n"]),
                       _cell(row["p_value"])))
    parts.append("</table><p>Highlighted: p &lt; %g, the two differ. The "
                 "examples of one document pass share its text and its "
                 "target length, so each test counts at most one "
                 "observation per document pass (effective n: documents "
                 "times --dupe_factor, from summary.json): without that, "
                 "two seeds of one job look different.</p>" % P_FLAG)
  parts.append("<h2>Plots</h2>")
  for title, path in images.items():
    with open(path, "rb") as f:
      encoded = base64.b64encode(f.read()).decode("ascii")
    parts.append("<h3>%s</h3><img alt=\"%s\" src=\"data:image/png;base64,%s\">"
                 % (html.escape(title), html.escape(title), encoded))
  parts.append("</body></html>")
  return "\n".join(parts)


# --- Command line ------------------------------------------------------------


def _load(path: str, limit: int, seed: int, vocab_override: Optional[str],
          s3_kwargs) -> Statistics:
  # pylint: disable=import-outside-toplevel
  output = records.open_output(path)
  vocab = records.vocabulary(output, vocab_override, s3_kwargs)
  examples = sample_examples(output, limit, seed)
  result = statistics(examples, vocab.tokens,
                      {s["path"]: s.get("bytes") or 0
                       for s in output.shards},
                      vocab.mask_id, vocab.unk_id,
                      (vocab.cls_id, vocab.sep_id))
  result.units = document_passes(output, result.examples)
  return result


def document_passes(output: records.Output, sampled: int) -> Optional[int]:
  """Documents times ``--dupe_factor`` (summary.json), scaled to the share
  of the examples sampled; None when the output does not say."""
  documents = output.summary.get("counts", {}).get("documents")
  dupe = output.options.get("dupe_factor")
  instances = output.summary.get("counts", {}).get("instances")
  if not documents or not dupe:
    return None
  passes = documents * dupe
  if instances and sampled < instances:
    passes = max(1, round(passes * sampled / instances))
  return passes


def _name(path: str) -> str:
  return os.path.basename(path.rstrip("/")) or path


def default_plots_dir(output: str) -> str:
  """Beside a local output (``OUTPUT_report_plots``); in the current
  folder, named after it, for an object-store output."""
  output = output.rstrip("/")
  if "://" in output:
    return _name(output) + "_report_plots"
  return output + "_report_plots"


def main(argv: Optional[Sequence[str]] = None) -> int:
  """Runs the command; returns its exit status. A failure it does not
  foresee raises (``__main__`` makes it one ``error:`` line)."""
  # pylint: disable=import-outside-toplevel
  from transforms.tokenization import VocabularyError
  parser = cli.ArgumentParser(prog="python -m pipelines.report",
                              description=__doc__.split("\n")[0])
  parser.add_argument("output")
  parser.add_argument("--compare", default=None,
                      help="Another output (or BERT's TFRecord file).")
  parser.add_argument("--html", default=None,
                      help="Write one self-contained HTML page here.")
  parser.add_argument("--out", "--plots_dir", dest="plots_dir", default=None,
                      help="The folder the PNGs go to (default: beside "
                      "--html, else beside the output: OUTPUT_report_plots; "
                      "for an s3:// output, ./NAME_report_plots).")
  parser.add_argument("--sample", type=int, default=100_000,
                      help="Examples read per output at most.")
  parser.add_argument("--seed", type=int, default=0)
  parser.add_argument("--vocab_file", default=None,
                      help="Decode with this vocabulary (both outputs).")
  parser.add_argument("--json", default=None,
                      help="Also write the statistics and tests here.")
  parser.add_argument("--overwrite", action="store_true",
                      help="Replace an existing --html, --json or plots in "
                      "--plots_dir (without it they are refused before any "
                      "work).")
  args, beam_args = parser.parse_known_args(argv)
  if args.sample < 1:
    parser.error("--sample must be at least 1")
  plots_dir = args.plots_dir or (
      os.path.splitext(args.html)[0] + "_plots" if args.html
      else default_plots_dir(args.output))
  try:
    check_destinations(args.html, args.json, plots_dir, args.overwrite)
  except UsageError as e:
    cli.error(str(e))
    return 2
  options = PipelineOptions(beam_args)
  FileSystems.set_options(options)
  s3_kwargs = s3_client_kwargs(options)
  data = {}
  try:
    for path in [args.output] + ([args.compare] if args.compare else []):
      name = _name(path)
      if name in data:  # two outputs in folders of one name
        name = "%s (2)" % name
      data[name] = _load(path, args.sample, args.seed, args.vocab_file,
                         s3_kwargs)
  except (records.InvalidOutput, VocabularyError) as e:
    cli.error(str(e))
    return 1 if isinstance(e, records.InvalidOutput) and e.shard else 2
  comparison = compare(*data.values()) if args.compare else None
  images = plots(data, plots_dir)
  names = list(data)
  summaries = {n: data[n].summary() for n in names}
  width = max(len(k) for k in summaries[names[0]])
  print("%-*s  %s" % (width, "statistic", "  ".join(
      "%14s" % n[:14] for n in names)))
  for key in summaries[names[0]]:
    print("%-*s  %s" % (width, key, "  ".join(
        "%14s" % _cell(summaries[n][key]) for n in names)))
  if comparison:
    print()
    for row in comparison:
      print("%s %s: p = %s (%s)" % ("DIFFERS" if row["differs"] else "same   ",
                                     row["statistic"], _cell(row["p_value"]),
                                     row["test"]))
  print("\nplots: %s" % plots_dir)
  if args.html:
    cli.write_file(args.html, html_page(data, images, comparison).encode(
        "utf-8"))
    print("page: %s" % args.html)
  if args.json:
    cli.write_file(args.json, json.dumps(
        {"statistics": summaries, "comparison": comparison}, indent=1,
        default=str).encode("utf-8"))
  return 0


if __name__ == "__main__":
  # Skips the interpreter's teardown once the output is flushed: a
  # library's C++ thread pool torn down at exit aborted this process
  # now and then ("terminate called without an active exception").
  direct.exit_now(cli.run_command(main, what="report"))
