"""The tokenizer: BERT's FullTokenizer, checked against BERT's own code
(google-research/bert's tokenization.py, shipped on PyPI as
``bert-tensorflow`` 1.0.4 and imported as ``bert.tokenization``), where
tokenizers' BERT configuration differs, the vocabulary and tokenizer.json
files, and batch tokenization of documents."""

import json
import os

import numpy as np
import pytest

from tests.helpers import VOCAB, sample_documents
from transforms import normalization
from transforms import tokenization

SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
SURROGATES = range(0xD800, 0xE000)


@pytest.fixture(scope="module")
def loaded():
  return tokenization.load_tokenizer(vocab_file=VOCAB)


@pytest.fixture(scope="module")
def bert():
  """The oracle module. Its tokenizers read an absl flag
  (--preserve_unused_tokens, default false), so the flags are marked parsed
  with their defaults."""
  from absl import flags
  from bert import tokenization as bert_tokenization
  if not flags.FLAGS.is_parsed():
    flags.FLAGS.mark_as_parsed()
  return bert_tokenization


def _tokens(tokenizer, text):
  return tokenizer.encode(text, add_special_tokens=False).tokens


TRICKY_TEXTS = [
    "The logo \uF8FF appears on the box.",
    "She wrote a note with a\uE000b inside.",
    "Ünïcödé naïve café — “quoted” text, don't stop!",
    "中文字符和English mixed 123,456.78",
    "Hello [MASK] world [CLS]",
    "x" * 250 + " tail",
    "tab\tseparated\u3000ideographic space\u00a0nbsp",
    "unassigned a\u0378b, plane 15 \U000F0000, zero\u200bwidth\ufeffjoin",
    "ΟΔΟΣ ΣΑΣ a\U0002B820b a\u061db a\u0898b",
]


@pytest.mark.parametrize("lower", [True, False])
def test_matches_bert_full_tokenizer(bert, lower):
  """The shipped corpus and the tricky texts, cased and uncased."""
  tokenizer, _ = tokenization.load_tokenizer(vocab_file=VOCAB,
                                             do_lower_case=lower)
  reference = bert.FullTokenizer(VOCAB, do_lower_case=lower)
  texts = [s for doc in sample_documents() for s in doc] + TRICKY_TEXTS
  for text in texts:
    assert _tokens(tokenizer, text) == reference.tokenize(text), text


@pytest.mark.parametrize("text,tokens", [
    ("The logo \uF8FF appears on the box.",
     "the logo [UNK] appears on the box ."),
    ("She wrote a note with a\uE000b inside.",
     "she wrote a note with [UNK] inside ."),
])
def test_private_use_characters_are_kept(loaded, text, tokens):
  """BERT deletes Cc and Cf only: a private-use character is (part of) a
  word, here an unknown one."""
  assert " ".join(_tokens(loaded[0], text)) == tokens


# Where tokenizers' own BertNormalizer and BertPreTokenizer differ from
# BERT, because of their Unicode tables or rules (normalization.py's
# docstring has the counts). BERT's rules are applied in Python, so each of
# these comes out as BERT's; tokenizers' standard configuration is shown for
# contrast.
TOKENIZERS_DIFFERENCES = [
    # Greek final sigma: Python lower-cases word-final Σ to ς, Rust to σ.
    ("ΟΔΟΣ", ["ο", "##δ", "##ο", "##σ"], ["ο", "##δ", "##ος"]),
    # BERT's CJK range starts at U+2B820; tokenizers' at U+2B920.
    ("a\U0002B820b", ["[UNK]"], ["a", "[UNK]", "b"]),
    # Private use (Co): deleted there, part of a word in BERT.
    ("a\uE000b", ["ab"], ["[UNK]"]),
    ("a\U000F0000b", ["ab"], ["[UNK]"]),
    # Punctuation, marks and format characters newer than the Unicode tables
    # of one side.
    ("a\u061db", ["[UNK]"], ["a", "[UNK]", "b"]),
    ("a\u2e5db", ["[UNK]"], ["a", "[UNK]", "b"]),
    ("a\u0898b", ["[UNK]"], ["ab"]),
    ("a\u0890b", ["[UNK]"], ["ab"]),
]


@pytest.mark.parametrize("text,standard,expected", TOKENIZERS_DIFFERENCES)
def test_follows_bert_where_tokenizers_differs(bert, loaded, text, standard,
                                               expected):
  tokenizer, vocab = loaded
  assert bert.FullTokenizer(VOCAB).tokenize(text) == expected
  assert _tokens(tokenizer, text) == expected
  plain = tokenization.build_tokenizer(vocab.tokens, do_lower_case=True)
  assert _tokens(plain, text) == standard


def _every_code_point_text(code_points):
  """Each code point between letters, right after a Σ: where the code point
  separates words, the Σ ends one, so the text also checks that normalize's
  whole-text lower-casing gives BERT's word-by-word final sigma."""
  return "x%sx" % "x".join("Σ" + chr(cp) for cp in code_points)


@pytest.mark.parametrize("lower", [True, False])
def test_text_rules_match_bert_for_every_code_point(bert, lower):
  """normalize + the tokenizer's White_Space split gives BERT's basic tokens
  for every code point but the surrogates (next test), cased and uncased."""
  from tokenizers import pre_tokenizers
  split = pre_tokenizers.WhitespaceSplit().pre_tokenize_str
  basic = bert.BasicTokenizer(do_lower_case=lower)
  step = 1 << 14
  for first in range(0, 0x110000, step):
    text = _every_code_point_text(
        cp for cp in range(first, first + step) if cp not in SURROGATES)
    words = [w for w, _ in split(normalization.normalize(text, lower))]
    assert words == basic.tokenize(text), hex(first)


@pytest.mark.parametrize("lower", [True, False])
def test_lone_surrogates_are_kept_as_bert_keeps_them(bert, lower):
  """A str decoded from JSON can hold lone surrogates ("\\ud800"):
  normalize keeps them in words, as BERT does (split here with str.split,
  BERT's own split, since tokenizers' cannot take them)."""
  text = _every_code_point_text(SURROGATES)
  assert normalization.normalize(text, lower).split() == bert.BasicTokenizer(
      do_lower_case=lower).tokenize(text)


def test_tokenizers_refuses_lone_surrogates(loaded):
  """Why the reader replaces lone surrogates before tokenization."""
  with pytest.raises(TypeError):
    loaded[0].encode("x\ud800y")


def test_literal_special_tokens_are_text(loaded):
  tokenizer, _ = loaded
  assert _tokens(tokenizer, "[MASK]") == ["[", "mask", "]"]


def test_vocabulary(loaded):
  _, vocab = loaded
  assert vocab.size == 30522
  assert (vocab.cls_id, vocab.sep_id, vocab.mask_id, vocab.unk_id) == (
      101, 102, 103, 100)
  assert vocab.is_continuation[vocab.tokens.index("##s")]
  assert not vocab.is_continuation[vocab.tokens.index("the")]
  assert vocab.id_dtype == np.uint16
  assert not vocab.has_upper_case


def test_cased_vocabulary_keeps_case(tmp_path):
  path = tmp_path / "vocab.txt"
  path.write_text("\n".join(SPECIAL_TOKENS + ["Hello", "hello", "world"])
                  + "\n")
  cased, vocab = tokenization.load_tokenizer(vocab_file=str(path),
                                             do_lower_case=False)
  lower, _ = tokenization.load_tokenizer(vocab_file=str(path))
  assert _tokens(cased, "Hello world") == ["Hello", "world"]
  assert _tokens(lower, "Hello world") == ["hello", "world"]
  assert vocab.has_upper_case
  vocab.tokens[vocab.tokens.index("Hello")] = "[Hello]"  # bracketed: ignored
  assert not vocab.has_upper_case


def _bundled_vocab_lines():
  with open(VOCAB, encoding="utf-8", newline="") as f:
    return f.read().split("\n")[:-1]


# Vocabulary files whose lines hold the characters that str.splitlines, but
# not BERT's readline, breaks lines at; each as line 6 alone (a blank token
# once stripped) and inside line 7's token.
_LINE_BREAKS_OF_SPLITLINES = ["\u2028", "\u2029", "\x85", "\x0b", "\x0c",
                              "\x1c", "\x1d", "\x1e", "\r"]


def _with_break(lines, char):
  lines[5] = char
  lines[6] = "[odd%sline]" % char
  return "\n".join(lines) + "\n"


@pytest.mark.parametrize("name,content", [
    ("U+%04X" % ord(c), lambda lines, c=c: _with_break(lines, c))
    for c in _LINE_BREAKS_OF_SPLITLINES] + [
    ("CRLF", lambda lines: "\r\n".join(lines) + "\r\n"),
    ("no final newline", lambda lines: "\n".join(lines)),
    ("trailing blank line", lambda lines: "\n".join(lines) + "\n\n"),
    ("blank lines inside", lambda lines: "\n".join(lines[:9] + [""]
                                                    + lines[10:]) + "\n"),
])
def test_vocabulary_lines_are_berts(bert, tmp_path, name, content):
  """Every token's id is the one BERT's load_vocab gives it (on files
  without repeated tokens, where the PyPI release and BERT's master agree:
  see parse_vocab)."""
  path = tmp_path / "vocab.txt"
  path.write_bytes(content(_bundled_vocab_lines()).encode("utf-8"))
  _, vocab = tokenization.load_tokenizer(vocab_file=str(path))
  assert len(set(vocab.tokens)) == vocab.size, name
  assert {t: i for i, t in enumerate(vocab.tokens)} == dict(
      bert.load_vocab(str(path))), name


def test_vocabulary_with_a_line_break_character(tmp_path):
  """The bundled vocabulary with line 6 a lone U+2028: str.splitlines would
  count it as two lines and shift every later id."""
  lines = _bundled_vocab_lines()
  lines[5] = "\u2028"
  path = tmp_path / "vocab.txt"
  path.write_text("\n".join(lines) + "\n", encoding="utf-8")
  _, vocab = tokenization.load_tokenizer(vocab_file=str(path))
  assert vocab.size == 30522
  assert (vocab.tokens.index("[CLS]"), vocab.tokens.index("the")) == (101, 1996)


def test_repeated_and_blank_tokens(tmp_path):
  """Every line takes an id; a repeated token keeps its last one, as in
  BERT's master (not the PyPI release, so no oracle here), and the sentence
  separator's id stays clear of every line's."""
  lines = SPECIAL_TOKENS + ["", "the", "dog", "", "the", "cat"]
  path = tmp_path / "vocab.txt"
  path.write_text("\n".join(lines) + "\n")
  tokenizer, vocab = tokenization.load_tokenizer(vocab_file=str(path))
  assert vocab.tokens == lines and vocab.sentence_separator_id == 11
  assert tokenizer.encode("the dog cat").ids == [9, 7, 10]
  docs, _ = tokenization.tokenize_documents(
      [("d", ["the dog", "the cat"])], tokenizer, vocab)
  assert [s.tolist() for s in docs[0].sentences()] == [[9, 7], [9, 10]]


@pytest.mark.parametrize("content,message", [
    (None, "cannot read"),
    (b"", "is empty"),
    (b"\xff\xfe\x00garbage", "not UTF-8"),
    (b"[PAD]\n[UNK]\nhello\n", r"lacks \[CLS\], \[SEP\], \[MASK\] \(a wordpiece "
     r"vocabulary; name others with --cls_token, --sep_token, "
     r"--mask_token\); its special-looking tokens: \[PAD\], \[UNK\]$"),
])
def test_bad_vocabularies(tmp_path, content, message):
  path = tmp_path / "vocab.txt"
  if content is not None:
    path.write_bytes(content)
  with pytest.raises(tokenization.VocabularyError, match=message):
    tokenization.load_tokenizer(vocab_file=str(path))


def test_tokenizer_json(tmp_path, loaded):
  tokenizer, _ = loaded
  path = tmp_path / "tokenizer.json"
  path.write_text(tokenizer.to_str())
  from_json, vocab = tokenization.load_tokenizer(tokenizer_file=str(path))
  assert _tokens(from_json, "Tokenization works.") == _tokens(
      tokenizer, "Tokenization works.")
  assert vocab.mask_id == 103 and vocab.is_continuation.sum() > 5000
  (tmp_path / "bad.json").write_text(json.dumps({"model": "nonsense"}))
  with pytest.raises(tokenization.VocabularyError, match="cannot be loaded"):
    tokenization.load_tokenizer(tokenizer_file=str(tmp_path / "bad.json"))


LITERAL_SPECIALS = "the [SEP] token and [CLS] token are literal text here."


def _released_tokenizer_json(vocab, specials_in_model=True):
  """tokenizer.json text as released BERT ones are: the special tokens are
  special added tokens, and in the model's vocabulary too if
  ``specials_in_model``; plus one ordinary added token, "newword" (30522)."""
  tokenizer = tokenization.build_tokenizer(vocab.tokens, do_lower_case=True)
  tokenizer.add_special_tokens(SPECIAL_TOKENS)
  tokenizer.add_tokens(["newword"])
  config = json.loads(tokenizer.to_str())
  if not specials_in_model:
    for token in SPECIAL_TOKENS:
      del config["model"]["vocab"][token]
  return json.dumps(config)


@pytest.mark.parametrize("specials_in_model", [True, False])
def test_tokenizer_json_special_tokens_are_text(tmp_path, loaded,
                                                specials_in_model):
  """Raw text never yields a special token's id: the file's special added
  tokens are tokenized as text, as with --vocab_file, while the Vocabulary
  keeps their ids; its ordinary added token stays."""
  from tokenizers import Tokenizer
  by_vocab_file, _ = loaded
  text = _released_tokenizer_json(loaded[1], specials_in_model)
  special_ids = {0, 100, 101, 102, 103}
  plain = Tokenizer.from_str(text)
  if specials_in_model:  # the fault: tokenizers alone matches them in text
    assert special_ids & set(plain.encode(
        LITERAL_SPECIALS, add_special_tokens=False).ids)
  else:  # and renumbers added tokens that its model lacks
    assert plain.token_to_id("[CLS]") != 101
  path = tmp_path / "tokenizer.json"
  path.write_text(text)
  tokenizer, vocab = tokenization.load_tokenizer(tokenizer_file=str(path))
  assert (vocab.cls_id, vocab.sep_id, vocab.mask_id, vocab.unk_id) == (
      101, 102, 103, 100)
  assert vocab.tokens[0] == "[PAD]" and vocab.tokens[30522] == "newword"
  ids = tokenizer.encode(LITERAL_SPECIALS, add_special_tokens=False).ids
  assert not special_ids & set(ids)
  assert ids == by_vocab_file.encode(LITERAL_SPECIALS).ids
  assert _tokens(tokenizer, "[MASK]") == ["[", "mask", "]"]
  assert _tokens(tokenizer, "[PAD] ☃ [UNK]") == [
      "[", "pad", "]", "[UNK]", "[", "un", "##k", "]"]
  assert tokenizer.encode("a newword").ids == [1037, 30522]
  assert vocab.sentence_separator_id == 30523


def test_tokenizer_json_ids_are_checked(tmp_path, loaded):
  """An added token that tokenizers would load at another id than the
  file's is refused, rather than shifting ids."""
  config = json.loads(_released_tokenizer_json(loaded[1]))
  config["added_tokens"][-1]["id"] = 40000  # "newword"
  path = tmp_path / "tokenizer.json"
  path.write_text(json.dumps(config))
  with pytest.raises(tokenization.VocabularyError,
                     match="'newword' the id 40000, which loads as None"):
    tokenization.load_tokenizer(tokenizer_file=str(path))


def test_tokenize_documents_drops_and_counts(loaded):
  tokenizer, vocab = loaded
  docs = [("a", ["Hello world.", "\u200b\u200b", "Second sentence here."]),
          ("b", ["\x00 \u200b"]),
          ("c", ["Ǳ \U0001F600 unknown"])]
  out, counts = tokenization.tokenize_documents(docs, tokenizer, vocab)
  assert [d.doc_id for d in out] == ["a", "c"]
  a = out[0]
  assert a.sentence_lengths.tolist() == [3, 4]
  assert [vocab.tokens[i] for i in a.sentences()[1]] == [
      "second", "sentence", "here", "."]
  assert a.ids.dtype == np.uint16
  # (None of these characters is marked for the fast WordPiece path, where
  # it runs: tests/unit/test_fast_wordpiece.py.)
  assert counts.pop("wordpiece_exact_path_sentences", 0) == 0
  assert counts == {"documents": 2, "sentences": 3, "tokens": 7 + out[1].ids.size,
                    "unknown_tokens": int((out[1].ids == 100).sum()),
                    "empty_sentences_dropped": 2,
                    "empty_documents_dropped": 1}
  assert counts["unknown_tokens"] >= 1


def test_vocabulary_over_http(tmp_path):
  """smart-open reads http(s):// too; a loopback server stands in for one."""
  import functools
  import http.server
  import shutil
  import threading
  shutil.copy(VOCAB, tmp_path / "vocab.txt")
  handler = functools.partial(http.server.SimpleHTTPRequestHandler,
                              directory=str(tmp_path))
  server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
  thread = threading.Thread(target=server.serve_forever, daemon=True)
  thread.start()
  try:
    base = "http://127.0.0.1:%d/" % server.server_address[1]
    _, vocab = tokenization.load_tokenizer(vocab_file=base + "vocab.txt")
    assert vocab.size == 30522 and vocab.mask_id == 103
    with pytest.raises(tokenization.VocabularyError, match="cannot read"):
      tokenization.load_tokenizer(vocab_file=base + "missing.txt")
  finally:
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize("name", ["vocab.txt", "vocab.txt.gz",
                                  "vocab.txt.bz2", "vocab.TXT.GZ"])
def test_local_files_read_as_smart_open_reads_them(tmp_path, monkeypatch,
                                                   name):
  """A plain local file is read with open(), a compressed one through
  smart_open: the bytes are smart_open's either way, "~" expanded too."""
  import bz2
  import gzip
  import smart_open
  raw = open(VOCAB, "rb").read()
  path = tmp_path / name
  packed = {".gz": gzip.compress, ".bz2": bz2.compress}.get(
      os.path.splitext(name.lower())[1], lambda b: b)
  path.write_bytes(packed(raw))
  with smart_open.open(str(path), "rb") as f:
    assert f.read() == raw
  assert tokenization.read_bytes(str(path)) == raw
  monkeypatch.setenv("HOME", str(tmp_path))
  assert tokenization.read_bytes("~/" + name) == raw
  for bad in (tmp_path / "missing.txt", tmp_path):
    with pytest.raises(tokenization.VocabularyError, match="cannot read"):
      tokenization.read_bytes(str(bad))


def test_a_local_vocabulary_is_read_without_importing_smart_open():
  import subprocess
  import sys
  from tests.helpers import REPO
  done = subprocess.run(
      [sys.executable, "-c",
       "import sys\n"
       "from transforms import tokenization\n"
       "tokenization.load_tokenizer(vocab_file=%r)\n"
       "print('smart_open' in sys.modules)\n" % VOCAB],
      cwd=REPO, capture_output=True, text=True, timeout=120, check=True)
  assert done.stdout.split() == ["False"], done.stderr


def _with_normalizer(normalizer):
  from tokenizers import Tokenizer, models
  tokenizer = Tokenizer(models.WordPiece({"[UNK]": 0, "a": 1},
                                         unk_token="[UNK]"))
  if normalizer is not None:
    tokenizer.normalizer = normalizer
  return tokenizer


def test_normalizer_lowercases():
  """Judged on real tokenizers objects: BertNormalizer's lowercase, a
  Lowercase, a Sequence holding one, and none."""
  from tokenizers import normalizers as n
  for normalizer, lowercases in (
      (None, False),
      (n.BertNormalizer(lowercase=True), True),
      (n.BertNormalizer(lowercase=False), False),
      (n.BertNormalizer(lowercase=False, strip_accents=True), False),
      (n.Lowercase(), True),
      (n.Sequence([n.NFD(), n.Lowercase(), n.StripAccents()]), True),
      (n.Sequence([n.NFKC(), n.Sequence([n.Strip(), n.Lowercase()])]), True),
      (n.Sequence([n.NFD(), n.StripAccents()]), False),
      (n.NFKC(), False),
      (n.Sequence([]), False)):
    assert tokenization.normalizer_lowercases(
        _with_normalizer(normalizer)) is lowercases, normalizer
  cased, _ = tokenization.load_tokenizer(vocab_file=VOCAB, do_lower_case=False)
  uncased, _ = tokenization.load_tokenizer(vocab_file=VOCAB)
  assert not tokenization.normalizer_lowercases(cased)
  assert tokenization.normalizer_lowercases(uncased)


def _tokenizer_file(tmp_path, tokens, lowercase, name="tokenizer.json"):
  path = tmp_path / name
  path.write_text(tokenization.build_tokenizer(tokens, lowercase).to_str())
  return str(path)


def test_tokenizer_file_decides_do_lower_case(tmp_path, loaded):
  """Left out, --do_lower_case is what the file's normalizer does; given,
  it must agree with it. A vocab.txt follows the flag (true by default)."""
  tokens = loaded[1].tokens
  for lowercase in (True, False):
    path = _tokenizer_file(tmp_path, tokens, lowercase)
    tokenizer, vocab = tokenization.load_tokenizer(tokenizer_file=path)
    assert vocab.lower_case is lowercase
    assert _tokens(tokenizer, "Hello")[0] == ("hello" if lowercase
                                              else "[UNK]")
    _, vocab = tokenization.load_tokenizer(tokenizer_file=path,
                                           do_lower_case=lowercase)
    assert vocab.lower_case is lowercase
    does = "lower-cases" if lowercase else "does not lower-case"
    with pytest.raises(tokenization.VocabularyError) as raised:
      tokenization.load_tokenizer(tokenizer_file=path,
                                  do_lower_case=not lowercase)
    message = str(raised.value)
    assert message.startswith("the normalizer of tokenizer file %s %s its "
                              "input, but --do_lower_case=%s" % (
                                  path, does, str(not lowercase).lower()))
    assert "\n" not in message
  assert tokenization.load_tokenizer(vocab_file=VOCAB)[1].lower_case is True
  assert tokenization.load_tokenizer(
      vocab_file=VOCAB, do_lower_case=False)[1].lower_case is False


def _capitalized(tokens, count):
  """``tokens`` with the first ``count`` plain words from id 2000 on
  capitalized ("the" → "The")."""
  tokens = list(tokens)
  changed = 0
  for i in range(2000, len(tokens)):
    if changed == count:
      break
    if tokens[i].isalpha() and tokens[i].capitalize() not in tokens:
      tokens[i] = tokens[i].capitalize()
      changed += 1
  return tokens


@pytest.mark.parametrize("count, lowercase, warned", [
    (0, True, False),
    (tokenization.CASED_WORDS_HANDFUL, True, False),
    (tokenization.CASED_WORDS_HANDFUL + 1, True, True),
    (200, True, True),
    (200, False, False),
])
def test_cased_vocabulary_in_a_tokenizer_file_warns(tmp_path, loaded, count,
                                                    lowercase, warned):
  tokens = _capitalized(loaded[1].tokens, count)
  path = _tokenizer_file(tmp_path, tokens, lowercase)
  tokenizer, vocab = tokenization.load_tokenizer(tokenizer_file=path)
  assert len(tokenization.upper_case_words(tokenizer, vocab)) == count
  warning = tokenization.cased_vocabulary_warning(tokenizer, vocab, path,
                                                  tokenizer_file=True)
  if not warned:
    assert warning is None
    return
  assert warning.startswith("warning: the normalizer of tokenizer file %s "
                            "lower-cases its input, but its vocabulary holds "
                            "%d whole words with capitals" % (path, count))
  assert "\n" not in warning


def test_cased_vocab_txt_warning_is_unchanged(tmp_path, loaded):
  """A vocab.txt with one upper-case token warns as before."""
  tokens = _capitalized(loaded[1].tokens, 1)
  path = tmp_path / "vocab.txt"
  path.write_text("\n".join(tokens) + "\n")
  for lower, warned in ((True, True), (False, False)):
    tokenizer, vocab = tokenization.load_tokenizer(vocab_file=str(path),
                                                   do_lower_case=lower)
    warning = tokenization.cased_vocabulary_warning(
        tokenizer, vocab, str(path), tokenizer_file=False)
    assert (warning is not None) is warned
  assert warning is None
  tokenizer, vocab = loaded
  assert tokenization.cased_vocabulary_warning(
      tokenizer, vocab, VOCAB, tokenizer_file=False) is None


def test_upper_case_words_reads_tokens_as_the_decoder_writes_them():
  """Continuation pieces, bracketed specials, byte-level symbols (Ġ is a
  space, Ċ a newline, not capitals) are not words with capitals; a
  byte-level "ĠThe" and "ÃĦ" (Ä) are."""
  from tokenizers import Tokenizer, decoders, models
  tokens = ["[UNK]", "<Mask>", "[Foo]", "Ġ", "Ċ", "ĠThe", "Ġthe", "ÃĦ",
            "##The", "The", "U2", "Ġ."]
  tokenizer = Tokenizer(models.BPE({t: i for i, t in enumerate(tokens)}, [],
                                   unk_token="[UNK]"))
  tokenizer.decoder = decoders.ByteLevel()
  vocab = tokenization.Vocabulary(
      tokens=tokens, cls_id=0, sep_id=0, mask_id=0, unk_id=0,
      is_continuation=np.array([t.startswith("##") for t in tokens]))
  assert tokenization.upper_case_words(tokenizer, vocab) == [
      "ĠThe", "ÃĦ", "The"]
  tokenizer.decoder = None  # written as they are: Ġ and Ċ are letters
  assert tokenization.upper_case_words(tokenizer, vocab) == [
      "Ġ", "Ċ", "ĠThe", "Ġthe", "ÃĦ", "The"]


def test_a_tokenizer_is_loaded_once_per_settings_and_file_content(tmp_path):
  """``TokenizerSettings.load`` gives the loaded tokenizer again for the
  same settings and file content, also once its casing is spelled out as
  the launcher then spells it; a file rewritten with other content (even
  of the same size) is loaded anew."""
  path = tmp_path / "vocab.txt"
  words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "cat"]
  path.write_text("\n".join(words) + "\n")
  settings = tokenization.TokenizerSettings(vocab_file=str(path))
  first = settings.load()
  assert settings.load() is first
  resolved = tokenization.TokenizerSettings(
      vocab_file=str(path), do_lower_case=first[1].lower_case)
  assert resolved.load() is first
  path.write_text("\n".join(words[:-1] + ["dog"]) + "\n")
  again = settings.load()
  assert again is not first and "dog" in again[1].tokens
