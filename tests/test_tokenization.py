"""The tokenizer: BERT-compatible WordPiece, its known differences, the
vocabulary checks, and batch tokenization of documents."""

import json

import numpy as np
import pytest

from tests import bert_reference
from tests.helpers import VOCAB, sample_documents
from transforms import normalization
from transforms import tokenization


@pytest.fixture(scope="module")
def loaded():
  return tokenization.load_tokenizer(vocab_file=VOCAB)


def _tokens(tokenizer, text):
  return tokenizer.encode(text, add_special_tokens=False).tokens


def test_matches_bert_rules_on_ordinary_text(loaded):
  tokenizer, vocab = loaded
  words = set(vocab.tokens)
  texts = [s for doc in sample_documents() for s in doc] + [
      "Ünïcödé naïve café — “quoted” text, don't stop!",
      "中文字符和English mixed 123,456.78",
      "Hello [MASK] world [CLS]",
      "x" * 250 + " tail",
      "tab\tseparated\u3000ideographic space\u00a0nbsp",
  ]
  for text in texts:
    assert _tokens(tokenizer, text) == bert_reference.full_tokenize(
        text, words), text


# Where tokenizers' own BertNormalizer and BertPreTokenizer differ from
# BERT, because of their Unicode tables or rules. BERT's rules are applied in
# Python (transforms/normalization.py), so each of these now comes out as
# BERT's; tokenizers' standard configuration is shown for contrast.
TOKENIZERS_DIFFERENCES = [
    # Greek final sigma: Python lower-cases word-final Σ to ς, Rust to σ.
    ("ΟΔΟΣ", ["ο", "##δ", "##ο", "##σ"], ["ο", "##δ", "##ος"]),
    # BERT's CJK range starts at U+2B820; tokenizers' at U+2B920.
    ("a\U0002B820b", ["[UNK]"], ["a", "[UNK]", "b"]),
    # Unassigned code points: deleted as "C*" by Python, kept (→ [UNK]) there.
    ("a\u0378b", ["[UNK]"], ["ab"]),
    # Punctuation and marks newer than the Unicode tables of one side.
    ("a\u061db", ["[UNK]"], ["a", "[UNK]", "b"]),
    ("a\u2e5db", ["[UNK]"], ["a", "[UNK]", "b"]),
    ("a\u0898b", ["[UNK]"], ["ab"]),
]


@pytest.mark.parametrize("text,standard,bert", TOKENIZERS_DIFFERENCES)
def test_follows_bert_where_tokenizers_differs(loaded, text, standard, bert):
  tokenizer, vocab = loaded
  assert bert_reference.full_tokenize(text, set(vocab.tokens)) == bert
  assert _tokens(tokenizer, text) == bert
  plain = tokenization.build_tokenizer(vocab.tokens, do_lower_case=True)
  assert _tokens(plain, text) == standard


@pytest.mark.parametrize("lower", [True, False])
def test_text_rules_match_bert_for_every_code_point(lower):
  """normalize + a White_Space split gives BERT's basic tokens for every
  code point, between letters and at word ends, cased and uncased."""
  from tokenizers import pre_tokenizers
  split = pre_tokenizers.WhitespaceSplit().pre_tokenize_str
  step = 1 << 14
  for first in range(0, 0x110000, step):
    text = " ".join("x%sy %s" % (chr(cp), chr(cp))
                    for cp in range(first, first + step))
    words = [w for w, _ in split(normalization.normalize(text, lower))]
    assert words == bert_reference.basic_tokens(text, lower), hex(first)


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


def test_cased_vocabulary_keeps_case(tmp_path):
  path = tmp_path / "vocab.txt"
  path.write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]",
                             "Hello", "hello", "world"]) + "\n")
  cased, _ = tokenization.load_tokenizer(vocab_file=str(path),
                                         do_lower_case=False)
  lower, _ = tokenization.load_tokenizer(vocab_file=str(path))
  assert _tokens(cased, "Hello world") == ["Hello", "world"]
  assert _tokens(lower, "Hello world") == ["hello", "world"]


@pytest.mark.parametrize("content,message", [
    (None, "cannot read"),
    (b"", "is empty"),
    (b"\xff\xfe\x00garbage", "not UTF-8"),
    (b"[PAD]\n[UNK]\nhello\n", r"lacks \[CLS\], \[SEP\], \[MASK\]$"),
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
