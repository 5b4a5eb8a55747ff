"""Writes transforms/wiki_namespace_aliases.json from MediaWiki's own files.

Usage (from the repository root):

  python tests/tools/make_namespace_aliases.py MEDIAWIKI_DIR \\
      --wikimedia_config=CONFIG_DIR \\
      [--origin="where MEDIAWIKI_DIR came from"] \\
      [--config_origin="where CONFIG_DIR came from"] \\
      > transforms/wiki_namespace_aliases.json

``MEDIAWIKI_DIR`` is a MediaWiki tree (a release, a checkout, or Debian's
``mediawiki`` package unpacked: ``/usr/share/mediawiki``). The committed file
was made from MediaWiki 1.39.17 as Debian packages it (``mediawiki
1:1.39.17-1+deb12u2``, bookworm-security), unpacked with ``apt-get download
mediawiki`` and ``dpkg-deb -x``, and from ``langlist`` and
``wmf-config/interwiki.php`` of operations/mediawiki-config at commit
349dc0945240da7717da209fd55129e04a4c5507 (its GitHub mirror).

For every language with a ``languages/messages/Messages*.php`` file, the names
under which a wiki in that content language accepts a link into the Media
(-2), File (6) and Category (14) namespaces, resolved as MediaWiki 1.39 does:

* ``LocalisationCache::recache``: a language's fallback sequence is its
  ``$fallback`` (a comma-separated list, not followed further) and then
  ``en``; ``$namespaceNames`` and ``$namespaceAliases`` are merged along it
  (``mergeItem``: a namespace's name is the first one the sequence gives; the
  aliases of every language in it count).
* ``Language::getNamespaceAliases``: the names of the language's converter
  variants (``includes/language/converters/*Converter.php``,
  ``getLanguageVariants``) are aliases too (``convertNamespace`` falls back
  to the variant's own namespace name; no core ``conversion-ns*`` message
  exists).
* ``LanguageCode``: the deprecated codes and the BCP 47 forms of the
  non-standard ones, mapped to the code the data is under (``codes``).
* ``MediaWikiTitleCodec::splitTitleString``: underscores and spaces are one;
  ``Language::getNsIndex`` compares lower-cased names.

And the prefixes that make ``[[prefix:Title]]`` an interlanguage link on a
Wikipedia, which MediaWiki leaves out of the text (``interlanguage``).
``Parser::handleInternalLinks2`` takes a link for one when its prefix is an
interwiki prefix of the wiki (``MediaWikiTitleCodec::splitTitleString``; a
leading colon makes it an ordinary link) that names a language
(``LanguageNameUtils::getLanguageName(…, AUTONYMS, DEFINED)``: the codes of
``languages/data/Names.php`` and ``$wgExtraLanguageNames``) or is one of
``$wgExtraInterlanguageLinkPrefixes`` (empty on Wikipedias). A dump carries no
interwiki table: Wikipedias' is Wikimedia's ``__list:_wiki`` of
``wmf-config/interwiki.php`` in ``CONFIG_DIR``, a checkout of Wikimedia's
operations/mediawiki-config (https://gerrit.wikimedia.org/r/plugins/gitiles/
operations/mediawiki-config, mirrored at
https://github.com/wikimedia/operations-mediawiki-config), which
``dumpInterwiki.php`` makes from ``langlist`` (the codes of the Wikipedia
language editions) and a few aliases (``nb``, ``zh-cn``, ``jp``, …). Of its
prefixes those are kept that are language editions (``langlist``: each names a
language in the MediaWiki that Wikimedia runs, even where this MediaWiki
release's ``Names.php`` is older) or that ``Names.php`` names. Other
projects' extra prefixes (Wikivoyage's ``wikipedia:``, Wikisource's
``mul:``) are not included.

English's names (``Media``, ``File``, ``Image``, ``Category``), which every
fallback sequence ends with, are left out of each language's lists: the
reader always accepts them. Languages left with nothing else are left out.
Names are written with spaces, as MediaWiki shows them, in their own case.

The PHP files are read by a small tokenizer (string literals, constants,
``=>``, commas, brackets and comments), not run: they are declarative.
"""

import argparse
import glob
import json
import os
import re
import sys
from typing import Dict, List, Optional, Set

NAMESPACES = {"NS_MEDIA": -2, "NS_FILE": 6, "NS_CATEGORY": 14}
ENGLISH = {-2: {"Media"}, 6: {"File", "Image"}, 14: {"Category"}}

_TOKEN = re.compile(r"""
    (?P<space>\s+|//[^\n]*|\#[^\n]*|/\*.*?\*/)
  | (?P<single>'(?:[^'\\]|\\.)*')
  | (?P<double>"(?:[^"\\]|\\.)*")
  | (?P<arrow>=>)
  | (?P<number>-?\d+)
  | (?P<name>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<punct>[\[\](),;])
  """, re.VERBOSE | re.DOTALL)


def _php_string(token: str) -> str:
  body = token[1:-1]
  if token[0] == "'":
    return re.sub(r"\\([\\'])", r"\1", body)
  return re.sub(r"\\(.)", lambda m: {"n": "\n", "t": "\t"}.get(
      m.group(1), m.group(1)), body)


def _array_items(source: str, variable: str) -> List[tuple]:
  """The ``key => value`` pairs of ``$variable = [ … ];`` (or ``array(
  … )``), keys and values as ``("string", s)``, ``("number", n)`` or
  ``("name", CONSTANT)``; an empty list when the file has no such array
  (a class's ``public static $variable = [ … ];`` too).
  Of an array assigned twice (MessagesNds.php), the last, as PHP keeps."""
  found = list(re.finditer(
      r"^[ \t]*(?:(?:public|protected|private|static)[ \t]+)*"
      r"\$%s\s*=\s*(\[|array\s*\()" % re.escape(variable), source,
      re.MULTILINE))
  if not found:
    return []
  m = found[-1]
  position, depth, items, entry = m.end(), 1, [], []
  while depth:
    t = _TOKEN.match(source, position)
    if t is None:
      raise ValueError("cannot read $%s near %r" % (
          variable, source[position:position + 40]))
    position = t.end()
    kind, text = t.lastgroup, t.group()
    if kind == "space":
      continue
    if kind == "punct" and text in "[(":
      depth += 1
      entry.append(("nested", text))
    elif kind == "punct" and text in "])":
      depth -= 1
    elif kind == "punct" and text == "," and depth == 1:
      items.append(entry)
      entry = []
    elif kind in ("single", "double"):
      entry.append(("string", _php_string(text)))
    elif kind == "number":
      entry.append(("number", int(text)))
    elif kind in ("name", "arrow"):
      entry.append((kind, text))
  items.append(entry)
  pairs = []
  for entry in items:
    if len(entry) == 3 and entry[1][0] == "arrow":
      pairs.append((entry[0], entry[2]))
  return pairs


def _namespace(value) -> Optional[int]:
  kind, text = value
  if kind == "name":
    return NAMESPACES.get(text)
  if kind == "number" and text in ENGLISH:
    return text
  return None


class Language:
  """What one Messages*.php file declares."""

  def __init__(self, path: str):
    with open(path, encoding="utf-8") as f:
      source = f.read()
    found = re.findall(r"^\$fallback\s*=\s*(['\"])(.*?)\1", source,
                       re.MULTILINE)
    m = found[-1] if found else None
    self.fallback = ([c.strip() for c in m[1].split(",") if c.strip()]
                     if m else [])
    self.names: Dict[int, str] = {}
    for key, value in _array_items(source, "namespaceNames"):
      ns = _namespace(key)
      if ns is not None and value[0] == "string":
        self.names[ns] = value[1]
    self.aliases: Dict[int, Set[str]] = {}
    for key, value in _array_items(source, "namespaceAliases"):
      ns = _namespace(value)
      if ns is not None and key[0] == "string":
        self.aliases.setdefault(ns, set()).add(key[1])


def language_code(path: str) -> str:
  """``MessagesZh_hant.php`` → ``zh-hant`` (``LanguageNameUtils``'s file
  naming, reversed)."""
  name = os.path.basename(path)[len("Messages"):-len(".php")]
  return name.replace("_", "-").lower()


def converter_variants(mediawiki: str) -> Dict[str, List[str]]:
  """Each converter's main language and its variants."""
  variants = {}
  pattern = os.path.join(mediawiki, "includes", "language", "converters",
                         "*Converter.php")
  for path in sorted(glob.glob(pattern)):
    with open(path, encoding="utf-8") as f:
      source = f.read()
    main = re.search(r"function getMainCode\(\)[^{]*\{\s*return\s*'([^']+)'",
                     source)
    listed = re.search(r"function getLanguageVariants\(\)[^{]*\{\s*return"
                       r"\s*\[([^\]]*)\]", source)
    if main and listed:
      variants[main.group(1)] = re.findall(r"'([^']+)'", listed.group(1))
  return variants


def code_mapping(mediawiki: str) -> Dict[str, str]:
  """Codes a dump may name its language by, lower-cased, to MediaWiki's own
  code: ``LanguageCode``'s deprecated codes (``als`` → ``gsw``) and the BCP
  47 codes of its non-standard ones (``de-x-formal`` → ``de-formal``; a
  dump's ``xml:lang`` is ``LanguageCode::bcp47`` of the wiki's code)."""
  with open(os.path.join(mediawiki, "includes", "language",
                         "LanguageCode.php"), encoding="utf-8") as f:
    source = f.read()
  mapping = {}
  for constant, inverse in (("DEPRECATED_LANGUAGE_CODE_MAPPING", False),
                            ("NON_STANDARD_LANGUAGE_CODE_MAPPING", True)):
    m = re.search(r"const %s = \[(.*?)\n\t\];" % constant, source, re.DOTALL)
    if m is None:
      raise SystemExit("no %s in LanguageCode.php" % constant)
    for old, new in re.findall(r"'([^']+)'\s*=>\s*'([^']+)'", m.group(1)):
      if inverse:
        mapping[new.lower()] = old
      else:
        mapping[old.lower()] = new
  return mapping


def language_names(mediawiki: str) -> Set[str]:
  """The language codes MediaWiki names (``Names::$names``: its
  ``languages/data/Names.php``, or ``includes/languages/data/Names.php``
  where 1.39 keeps it)."""
  for where in (("languages", "data"), ("includes", "languages", "data")):
    path = os.path.join(mediawiki, *where, "Names.php")
    if os.path.exists(path):
      with open(path, encoding="utf-8") as f:
        return {key[1] for key, _ in _array_items(f.read(), "names")
                if key[0] == "string"}
  raise SystemExit("no languages/data/Names.php under %s" % mediawiki)


def interlanguage_prefixes(config: str, names: Set[str]) -> List[str]:
  """The prefixes of Wikipedias' interwiki map (``__list:_wiki`` of
  ``wmf-config/interwiki.php`` in the operations/mediawiki-config checkout
  ``config``) that are a language edition's code (``langlist``) or that
  ``names`` (``language_names``) has; sorted."""
  with open(os.path.join(config, "langlist"), encoding="utf-8") as f:
    editions = {line.strip() for line in f if line.strip()}
  with open(os.path.join(config, "wmf-config", "interwiki.php"),
            encoding="utf-8") as f:
    m = re.search(r"'__list:_wiki'\s*=>\s*'([^']*)'", f.read())
  if m is None:
    raise SystemExit("no '__list:_wiki' in %s/wmf-config/interwiki.php"
                     % config)
  prefixes = set(m.group(1).split())
  missing = editions - prefixes
  if missing:
    raise SystemExit("language editions not in the interwiki map: %s"
                     % " ".join(sorted(missing)))
  return sorted(p for p in prefixes if p in editions or p in names)


def _spaced(name: str) -> str:
  return re.sub(r"[ _]+", " ", name).strip()


def resolve(languages: Dict[str, Language], code: str) -> Dict[int, Set[str]]:
  """Names and aliases of the three namespaces for ``code``, English's
  included."""
  sequence = [code] + [c for c in languages[code].fallback if c != code]
  if sequence[-1] != "en":
    sequence.append("en")
  sequence = [c for c in sequence if c in languages]
  out = {ns: set() for ns in ENGLISH}
  for ns in ENGLISH:
    for c in sequence:  # the first name the sequence gives
      if ns in languages[c].names:
        out[ns].add(languages[c].names[ns])
        break
    for c in sequence:
      out[ns] |= languages[c].aliases.get(ns, set())
  return out


def build(mediawiki: str, origin: str, config: str,
          config_origin: str = "") -> dict:
  paths = sorted(glob.glob(os.path.join(mediawiki, "languages", "messages",
                                        "Messages*.php")))
  if not paths:
    raise SystemExit("no languages/messages/Messages*.php under %s"
                     % mediawiki)
  languages = {language_code(p): Language(p) for p in paths}
  with open(os.path.join(mediawiki, "includes", "Defines.php"),
            encoding="utf-8") as f:
    version = re.search(r"define\(\s*'MW_VERSION',\s*'([^']+)'",
                        f.read()).group(1)
  variants = converter_variants(mediawiki)
  table = {}
  for code in sorted(languages):
    names = resolve(languages, code)
    for variant in variants.get(code, []):
      if variant != code and variant in languages:
        for ns in ENGLISH:
          # convertNamespace: the variant's name, not its aliases.
          name = _first_name(languages, variant, ns)
          if name:
            names[ns].add(name)
    entry = {}
    for ns in sorted(ENGLISH):
      english = {_spaced(n).lower() for n in ENGLISH[ns]}
      kept = sorted({_spaced(n) for n in names[ns]
                     if _spaced(n).lower() not in english})
      if kept:
        entry[str(ns)] = kept
    if entry:
      table[code] = entry
  return {
      "source": ("MediaWiki %s: languages/messages/Messages*.php "
                 "($fallback, $namespaceNames, $namespaceAliases) and "
                 "includes/language/converters/*Converter.php "
                 "(getLanguageVariants), includes/language/LanguageCode.php "
                 "(deprecated and non-standard codes)" % version),
      "origin": origin,
      "generator": "tests/tools/make_namespace_aliases.py",
      "namespaces": {"-2": "Media", "6": "File", "14": "Category"},
      "codes": dict(sorted(code_mapping(mediawiki).items())),
      "always": {str(ns): sorted(names) for ns, names in
                 sorted(ENGLISH.items())},
      "languages": table,
      "interlanguage": {
          "source": ("Wikimedia operations/mediawiki-config: "
                     "wmf-config/interwiki.php ('__list:_wiki', the "
                     "Wikipedias' interwiki prefixes) and langlist (the "
                     "Wikipedia language editions), with MediaWiki %s "
                     "languages/data/Names.php" % version),
          "origin": config_origin,
          "prefixes": interlanguage_prefixes(config,
                                             language_names(mediawiki)),
      },
  }


def _first_name(languages: Dict[str, Language], code: str,
                ns: int) -> Optional[str]:
  sequence = [code] + languages[code].fallback + ["en"]
  for c in sequence:
    if c in languages and ns in languages[c].names:
      return languages[c].names[ns]
  return None


def main(argv=None) -> None:
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("mediawiki", help="a MediaWiki tree")
  parser.add_argument("--wikimedia_config", required=True,
                      help="a checkout of Wikimedia's "
                      "operations/mediawiki-config")
  parser.add_argument("--origin", default="",
                      help="where the tree came from (written as is)")
  parser.add_argument("--config_origin", default="",
                      help="where the checkout came from, its commit "
                      "(written as is)")
  args = parser.parse_args(argv)
  data = build(args.mediawiki, args.origin, args.wikimedia_config,
               args.config_origin)
  json.dump(data, sys.stdout, ensure_ascii=False, indent=1, sort_keys=False)
  sys.stdout.write("\n")


if __name__ == "__main__":
  main()
