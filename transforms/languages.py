"""Multilingual corpora (XLM, XLM-R): each document's language, and how
often each language's documents are passed over.

A corpus's languages come from ``--input``: ``en=wiki/en/*,sw=wiki/sw/*``
gives each pattern's files a language (``split_language``). A document's
language is its file's: document ids start with the file's name below the
input root (``document_file``).

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
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

from transforms import keys

# A language tag before "=" in an --input entry: letters first, then
# letters, digits, "_" or "-" (ISO 639 codes, "zh-Hans", "en_US"); no "/",
# ":" or ".", so that a path such as "data/lang=en/*" stays a path.
LANGUAGE_TAG = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,31}")
# A document id: the file's name below the input root, ":", the byte offset
# of its first record, and "#k" for the k-th document of a record that
# holds several (transforms/reading.py, transforms/wikidump.py).
_DOCUMENT_ID = re.compile(r"(.*):\d+(?:#\d+)?")
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


def sampling_passes(sizes: Dict[str, int], alpha: Optional[float],
                    dupe_factor: int) -> Dict[str, float]:
  """Passes over each language's documents: ``dupe_factor * q_i / p_i``
  with ``p_i = sizes[i] / sum(sizes)`` and ``q_i`` proportional to
  ``p_i ** alpha``; ``dupe_factor`` for every language without ``alpha``
  (or with alpha 1). ``sizes``: bytes per language, each above 0. Raises
  ValueError for an empty language."""
  for language, size in sizes.items():
    if size <= 0:
      raise ValueError("language %s has no bytes to sample from" % language)
  if alpha is None or alpha == 1.0:
    return {language: float(dupe_factor) for language in sizes}
  shares = target_shares(sizes, 1.0)
  targets = target_shares(sizes, alpha)
  return {language: dupe_factor * targets[language] / shares[language]
          for language in sizes}


def target_shares(sizes: Dict[str, int], alpha: Optional[float]
                  ) -> Dict[str, float]:
  """``q_i = p_i ** alpha / sum_j p_j ** alpha`` (``alpha`` None: 1)."""
  total = float(sum(sizes.values()))
  weights = {k: (v / total) ** (1.0 if alpha is None else alpha)
             for k, v in sizes.items()}
  norm = sum(weights.values())
  return {k: w / norm for k, w in weights.items()}


@dataclasses.dataclass(frozen=True, kw_only=True)
class LanguagePlan:
  """Each file's language and each language's passes, decided before the
  job (``plan``). ``files``: ``(file name below the input root, language)``;
  ``passes``: ``(language, passes per document)``; ``seed``: the keyed
  fraction's seed (``--random_seed``)."""
  files: Tuple[Tuple[str, str], ...]
  passes: Tuple[Tuple[str, float], ...]
  seed: int

  @property
  def languages(self) -> List[str]:
    """The languages, sorted; a language's id is its index here."""
    return [language for language, _ in self.passes]

  def language_ids(self) -> Dict[str, int]:
    """Each language's id: its index in the sorted ``languages``, as XLM
    numbers them (``params.id2lang``: ``enumerate(sorted(params.langs))``).
    Each row of the batches carries it (``InstanceBatch.languages``), XLM's
    ``langs`` feature repeats it (``--langs_feature``), and summary.json's
    ``languages`` records it (``report``)."""
    return {language: i for i, language in enumerate(self.languages)}

  def _files(self) -> Dict[str, str]:
    cached = self.__dict__.get("_file_map")
    if cached is None:
      cached = dict(self.files)
      object.__setattr__(self, "_file_map", cached)
    return cached

  def language_of(self, doc_id: str) -> str:
    """The language of the file ``doc_id`` comes from. Raises KeyError for
    a file the plan does not hold."""
    return self._files()[document_file(doc_id)]

  def passes_of(self, doc_id: str) -> int:
    """How many times the document is passed over: the whole passes of its
    language, and one more when a uniform number keyed by the seed and
    the id falls below their fraction."""
    passes = dict(self.passes)[self.language_of(doc_id)]
    whole = math.floor(passes)
    if passes > whole:
      u = keys.stable_hash("language-pass", self.seed, doc_id) / 2.0 ** 64
      whole += int(u < passes - whole)
    return int(whole)


def plan(file_languages: Iterable[Tuple[str, str, int]],
         alpha: Optional[float], dupe_factor: int, seed: int) -> LanguagePlan:
  """``(file name below the input root, language, bytes)`` of every input
  file → the run's ``LanguagePlan``. Raises ValueError when a language has
  no bytes or a pass count the spill format cannot hold (65,535)."""
  files = sorted((name, language) for name, language, _ in file_languages)
  sizes: Dict[str, int] = {}
  for _, language, size in file_languages:
    sizes[language] = sizes.get(language, 0) + size
  if len(sizes) > MAX_LANGUAGES:
    raise ValueError("%d languages: at most %d (a language id is 16 bits)"
                     % (len(sizes), MAX_LANGUAGES))
  passes = sampling_passes(sizes, alpha, dupe_factor)
  for language, n in passes.items():
    if n >= 65535:
      raise ValueError("language %s would be passed over %.0f times (its "
                       "share of the corpus is tiny for this "
                       "--language_sampling_alpha)" % (language, n))
  return LanguagePlan(files=tuple(files),
                      passes=tuple(sorted(passes.items())), seed=seed)


def report(plan_: LanguagePlan, file_sizes: Dict[str, int],
           alpha: Optional[float], counts: Dict[str, int]) -> Dict:
  """summary.json's ``languages``: for each language its id (``LanguagePlan
  .language_ids``: what XLM's ``langs`` feature holds), its input files and
  bytes, share of the input, target share, passes per document, instance
  tokens made, and their share of the run's instance tokens.
  ``file_sizes``: bytes per file name; ``counts``: the run's
  ``TOKENS_PREFIX`` counters."""
  sizes: Dict[str, int] = {}
  files: Dict[str, int] = {}
  for name, language in plan_.files:
    sizes[language] = sizes.get(language, 0) + file_sizes.get(name, 0)
    files[language] = files.get(language, 0) + 1
  shares = target_shares(sizes, 1.0)
  targets = target_shares(sizes, alpha)
  tokens = {lang: counts.get(TOKENS_PREFIX + lang, 0) for lang in sizes}
  total_tokens = sum(tokens.values()) or 1
  out = {}
  ids = plan_.language_ids()
  for language, passes in plan_.passes:
    out[language] = {
        "id": ids[language], "files": files.get(language, 0),
        "bytes": sizes.get(language, 0),
        "input_share": round(shares[language], 6),
        "target_share": round(targets[language], 6),
        "passes": round(passes, 6),
        "instance_tokens": tokens[language],
        "share": round(tokens[language] / total_tokens, 6)}
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
