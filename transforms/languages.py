"""Multilingual corpora (XLM, XLM-R): each document's language, and how
often each language's documents are passed over.

A corpus's languages come from ``--input``: ``en=wiki/en/*,sw=wiki/sw/*``
gives each pattern's files a language (``split_language``), and a
document's language is its file's: document ids start with the file's name
below the input root (``document_file``). Or they come from a field of each
JSONL or Parquet record (``--language_field``): the reader then ends the
document's id with ``@`` and the language (``with_language``).

Sampling (Lample & Conneau 2019, section 3.1; Conneau et al. 2020, section
3: alpha = 0.3 for XLM-R): language i, with a share p_i of the corpus, is
drawn with probability q_i = p_i^alpha / sum_j p_j^alpha. Here that is done
by passing over each language's documents ``r_i = dupe_factor * q_i / p_i``
times (``sampling_passes``), so that language i makes a share q_i of the
passes' text and the whole makes as much as ``dupe_factor`` passes over the
corpus would. p_i is measured before the job, from the bytes of the files
matched for each language (a stand-in for its tokens that needs no pass over
the text). A document is passed over ``floor(r_i)`` times, and once more
when a uniform number keyed by the seed and its id falls below the fraction
of ``r_i`` (``LanguagePlan.passes_of``): deterministic, whatever the runner
or worker count, and nothing of a language is held in memory.

The instances never mix languages: each pool's entries are split by language
and each language's are packed and paired apart
(transforms/instances.py), as XLM's streams are monolingual.
"""

import dataclasses
import math
import re
from typing import Callable, Dict, Iterable, List, Optional, Sequence, Tuple

import apache_beam as beam

from transforms import keys

# A language tag before "=" in an --input entry: letters first, then
# letters, digits, "_" or "-" (ISO 639 codes, "zh-Hans", "en_US"); no "/",
# ":" or ".", so that a path such as "data/lang=en/*" stays a path.
LANGUAGE_TAG = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,31}")
# A document id: the file's name below the input root, ":", the byte offset
# of its first record, and "#k" for the k-th document of a record that
# holds several (transforms/reading.py, transforms/wikidump.py).
_DOCUMENT_ID = re.compile(r"(.*):\d+(?:#\d+)?(?:@([A-Za-z][A-Za-z0-9_-]*))?")
# The counters of each language's instance tokens (moved into summary.json's
# "languages" when the run ends).
TOKENS_PREFIX = "language_tokens/"
# Language ids (0 up) are uint16 in the batches.
MAX_LANGUAGES = 65536


def split_language(entry: str) -> Tuple[Optional[str], str]:
  """``"en=wiki/en/*"`` → ``("en", "wiki/en/*")``; an entry without a
  language tag → ``(None, entry)``."""
  tag, sep, pattern = entry.partition("=")
  if sep and LANGUAGE_TAG.fullmatch(tag) and pattern:
    return tag, pattern
  return None, entry


def document_file(doc_id: str) -> str:
  """The file name (relative to the input root) a document id starts
  with. Raises ValueError for an id of another shape."""
  m = _DOCUMENT_ID.fullmatch(doc_id)
  if not m:
    raise ValueError("document id %r does not name its file" % doc_id)
  return m.group(1)


def with_language(doc_id: str, language: str) -> str:
  """A document id with the language its record names (``--language_field``)
  at its end: ``path:offset@language``."""
  return "%s@%s" % (doc_id, language)


def document_language(doc_id: str) -> Optional[str]:
  """The language ``with_language`` put at the end of a document id, or
  None."""
  m = _DOCUMENT_ID.fullmatch(doc_id)
  return m.group(2) if m else None


def sampling_passes(sizes: Dict[str, int], alpha: Optional[float],
                    dupe_factor: int) -> Dict[str, float]:
  """Passes over each language's documents: ``dupe_factor * q_i / p_i``
  with ``p_i = sizes[i] / sum(sizes)`` and ``q_i`` proportional to
  ``p_i ** alpha``; ``dupe_factor`` for every language without ``alpha``
  (or with alpha 1). ``sizes``: bytes per language, each above 0. Raises
  ValueError for an empty language."""
  if alpha is None or alpha == 1.0:
    return {language: float(dupe_factor) for language in sizes}
  for language, size in sizes.items():
    if size <= 0:
      raise ValueError("language %s has no bytes to sample from" % language)
  shares = target_shares(sizes, 1.0)
  targets = target_shares(sizes, alpha)
  return {language: dupe_factor * targets[language] / shares[language]
          for language in sizes}


def target_shares(sizes: Dict[str, int], alpha: Optional[float]
                  ) -> Dict[str, float]:
  """``q_i = p_i ** alpha / sum_j p_j ** alpha`` (``alpha`` None: 1)."""
  total = float(sum(sizes.values()))
  if not total:
    return {k: 0.0 for k in sizes}
  weights = {k: (v / total) ** (1.0 if alpha is None else alpha)
             for k, v in sizes.items()}
  norm = sum(weights.values())
  return {k: w / norm for k, w in weights.items()}


@dataclasses.dataclass(frozen=True, kw_only=True)
class LanguagePlan:
  """Each document's language and each language's passes, decided before
  the job (``plan``, ``field_plan``). ``files``: ``(file name below the
  input root, language)`` for languages given by pattern (empty for
  ``--language_field``, whose languages are in the document ids);
  ``sizes``: ``(language, bytes)`` as measured before the job (empty when
  nothing was); ``passes``: ``(language, passes per document)``;
  ``default_passes``: the passes of a language ``passes`` does not list
  (``--language_field`` without sampling: ``dupe_factor``); ``seed``: the
  keyed fraction's seed (``--random_seed``)."""
  files: Tuple[Tuple[str, str], ...] = ()
  sizes: Tuple[Tuple[str, int], ...] = ()
  passes: Tuple[Tuple[str, float], ...] = ()
  default_passes: Optional[float] = None
  seed: int

  @property
  def languages(self) -> List[str]:
    """The languages known before the job, sorted; a language's id is its
    index here."""
    return [language for language, _ in self.passes]

  def language_ids(self) -> Dict[str, int]:
    """Each language's id: its index in the sorted ``languages``, as XLM
    numbers them (``params.id2lang``: ``enumerate(sorted(params.langs))``).
    Each row of the batches carries it (``InstanceBatch.languages``), XLM's
    ``langs`` feature repeats it (``--langs_feature``), and summary.json's
    ``languages`` records it (``report``). Empty for ``--language_field``
    without sampling, whose languages are not known before the job."""
    return {language: i for i, language in enumerate(self.languages)}

  def _maps(self) -> Tuple[Dict[str, str], Dict[str, float]]:
    cached = self.__dict__.get("_cached_maps")
    if cached is None:
      cached = (dict(self.files), dict(self.passes))
      object.__setattr__(self, "_cached_maps", cached)
    return cached

  def language_of(self, doc_id: str) -> str:
    """The language at the end of ``doc_id`` (``with_language``), else that
    of the file it comes from. Raises KeyError for a file the plan does
    not hold."""
    return document_language(doc_id) or self._maps()[0][document_file(doc_id)]

  def passes_of(self, doc_id: str) -> int:
    """How many times the document is passed over: the whole passes of its
    language, and one more when a uniform number keyed by the seed and
    the id falls below their fraction."""
    passes = self._maps()[1].get(self.language_of(doc_id),
                                 self.default_passes)
    if passes is None:
      raise KeyError("no passes planned for language %s"
                     % self.language_of(doc_id))
    whole = math.floor(passes)
    if passes > whole:
      u = keys.stable_hash("language-pass", self.seed, doc_id) / 2.0 ** 64
      whole += int(u < passes - whole)
    return int(whole)


def _checked_passes(sizes: Dict[str, int], alpha: Optional[float],
                    dupe_factor: int) -> Dict[str, float]:
  if len(sizes) > MAX_LANGUAGES:
    raise ValueError("%d languages: at most %d (a language id is 16 bits)"
                     % (len(sizes), MAX_LANGUAGES))
  passes = sampling_passes(sizes, alpha, dupe_factor)
  for language, n in passes.items():
    if n >= 65535:
      raise ValueError("language %s would be passed over %.0f times (its "
                       "share of the corpus is tiny for this "
                       "--language_sampling_alpha)" % (language, n))
  return passes


def plan(file_languages: Iterable[Tuple[str, str, int]],
         alpha: Optional[float], dupe_factor: int, seed: int) -> LanguagePlan:
  """``(file name below the input root, language, bytes)`` of every input
  file → the run's ``LanguagePlan``. Raises ValueError when a language has
  no bytes or a pass count the spill format cannot hold (65,535)."""
  file_languages = list(file_languages)
  files = sorted((name, language) for name, language, _ in file_languages)
  sizes: Dict[str, int] = {}
  for _, language, size in file_languages:
    sizes[language] = sizes.get(language, 0) + size
  return LanguagePlan(
      files=tuple(files), sizes=tuple(sorted(sizes.items())),
      passes=tuple(sorted(_checked_passes(sizes, alpha,
                                          dupe_factor).items())), seed=seed)


def field_plan(sizes: Optional[Dict[str, int]], alpha: Optional[float],
               dupe_factor: int, seed: int) -> LanguagePlan:
  """The plan of a corpus whose records name their language
  (``--language_field``): with ``sizes`` (bytes of text per language,
  counted before the job), each language's sampled passes; without, every
  language ``dupe_factor`` passes. Raises ValueError as ``plan`` does."""
  if not sizes:
    return LanguagePlan(default_passes=float(dupe_factor), seed=seed)
  return LanguagePlan(
      sizes=tuple(sorted(sizes.items())),
      passes=tuple(sorted(_checked_passes(sizes, alpha,
                                          dupe_factor).items())),
      default_passes=float(dupe_factor), seed=seed)


def report(plan_: LanguagePlan, alpha: Optional[float],
           counts: Dict[str, int]) -> Dict:
  """summary.json's ``languages``: for each language its id
  (``LanguagePlan.language_ids``: what XLM's ``langs`` feature holds), its
  input files (by pattern) and bytes (as measured before the job), share of the input,
  target share, passes per document, instance tokens made, and their share
  of the run's instance tokens. ``counts``: the run's ``TOKENS_PREFIX``
  counters. A language measured before the job has every field; one found
  only during it (``--language_field`` without sampling) its passes and
  tokens."""
  sizes = dict(plan_.sizes)
  files: Dict[str, int] = {}
  for _, language in plan_.files:
    files[language] = files.get(language, 0) + 1
  shares = target_shares(sizes, 1.0) if sizes else {}
  targets = target_shares(sizes, alpha) if sizes else {}
  tokens = {name[len(TOKENS_PREFIX):]: n for name, n in counts.items()
            if name.startswith(TOKENS_PREFIX)}
  total_tokens = sum(tokens.values()) or 1
  passes = dict(plan_.passes)
  out = {}
  ids = plan_.language_ids()
  for language in sorted(set(sizes) | set(tokens) | set(passes)):
    entry = {}
    if language in ids:
      entry["id"] = ids[language]
    if plan_.files:
      entry["files"] = files.get(language, 0)
    if language in sizes:
      entry.update({"bytes": sizes[language],
                    "input_share": round(shares[language], 6),
                    "target_share": round(targets[language], 6)})
    entry["passes"] = round(passes.get(language, plan_.default_passes or 0),
                            6)
    entry["instance_tokens"] = tokens.get(language, 0)
    entry["share"] = round(tokens.get(language, 0) / total_tokens, 6)
    out[language] = entry
  return out


def split_by_language(entries: Sequence, plan_: LanguagePlan,
                      doc_of=lambda entry: entry[1]
                      ) -> List[Tuple[str, List]]:
  """A pool's entries split by their document's language, in language
  order (each language's entries in their order)."""
  by_language: Dict[str, List] = {}
  for entry in entries:
    by_language.setdefault(plan_.language_of(doc_of(entry).doc_id),
                           []).append(entry)
  return sorted(by_language.items())


def _language_bytes(doc, language_of) -> Tuple[str, int]:
  doc_id, paragraphs = doc
  return (language_of(doc_id) or "",
          sum(len(p.encode("utf-8")) for p in paragraphs))


class CountLanguageBytes(beam.PTransform):
  """Documents ``(doc_id, paragraphs)`` → one element: ``{language: bytes
  of text}``, what ``field_plan`` samples from. ``language_of``: a
  document id's language (default: the one its id ends with,
  ``with_language``)."""

  def __init__(self, language_of: Callable[[str], Optional[str]] = None):
    super().__init__()
    self._language_of = language_of or document_language

  def expand(self, docs):
    return (docs
            | "BytesOf" >> beam.Map(_language_bytes, self._language_of)
            | "Sum" >> beam.CombinePerKey(sum)
            | "Gather" >> beam.combiners.ToDict())
