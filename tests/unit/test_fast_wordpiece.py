"""transforms/fast_wordpiece.py: nanotoken for the sentences whose
characters it treats as BERT does, the exact path for the rest, checked
against google-research/bert's own FullTokenizer (PyPI bert-tensorflow) on
the same lines, both paths fed each of them."""

import json
import re
import unicodedata

import numpy as np
import pytest

from tests.helpers import code_points, sample_documents
from tests.unit.test_tokenization import (TOKENIZERS_DIFFERENCES,
                                          TRICKY_TEXTS, VOCAB, bert)  # pylint: disable=unused-import
from transforms import fast_wordpiece, tokenization


@pytest.fixture(scope="module", autouse=True)
def marks(tmp_path_factory):
  """The shipped marks where they are this Python's; made here (about 80 s)
  for a Python with other Unicode tables, so that the fast path is tested
  wherever the tests run."""
  if fast_wordpiece.fast_path_unavailable() is None:
    yield fast_wordpiece.TABLE_FILE
    return
  path = tmp_path_factory.mktemp("marks") / "marks.json"
  path.write_text(json.dumps(fast_wordpiece.make_table()))
  with pytest.MonkeyPatch.context() as patch:
    patch.setattr(fast_wordpiece, "TABLE_FILE", str(path))
    assert fast_wordpiece.fast_path_unavailable() is None
    yield str(path)

# Every STEP-th code point in each of fast_wordpiece.PROBES' contexts; every
# one by tests/e2e/test_tokenizer_sweeps.py (the marks made again).
STEP = 97


def _lines():
  """The shipped text, the tricky texts, the texts where tokenizers differs
  from BERT, and every STEP-th code point in each probe's context."""
  lines = [s for doc in sample_documents() for s in doc] + TRICKY_TEXTS
  lines += [text for text, _, _ in TOKENIZERS_DIFFERENCES]
  for probe in fast_wordpiece.PROBES:
    lines += [probe.format(c) for c in code_points(STEP)]
  # A line break is whitespace to BERT, in a line either path takes.
  lines += ["a\nb c", "a\n\ue000b", "ΟΔΟΣ\nΣ"]
  return lines


@pytest.fixture(scope="module")
def lines():
  return _lines()


@pytest.mark.parametrize("lower", [True, False])
def test_both_paths_give_berts_tokens(bert, lines, lower):
  """Every line, through the pipeline's batch encoding with the fast path
  (nanotoken where the line is safe, the exact path where not) and without
  it, gives the tokens of BERT's FullTokenizer; both paths are taken."""
  fast, vocab = tokenization.load_tokenizer(vocab_file=VOCAB,
                                            do_lower_case=lower)
  exact, _ = tokenization.load_tokenizer(vocab_file=VOCAB, do_lower_case=lower,
                                         fast_wordpiece=False)
  assert fast.fast_path is not None and exact.fast_path is None
  reference = bert.FullTokenizer(VOCAB, do_lower_case=lower)
  safe = fast.fast_path.safe(lines)
  assert 0 < int((~safe).sum()) < len(lines) // 4
  want = [reference.convert_tokens_to_ids(reference.tokenize(line))
          for line in lines]
  for tokenizer in (fast, exact):
    ids, lengths = tokenizer.encode_flat(lines)
    rows = np.split(ids, np.cumsum(lengths)[:-1])
    got = [row.tolist() for row in rows]
    wrong = [(line, g, w) for line, g, w in zip(lines, got, want) if g != w]
    assert not wrong, wrong[:3]
  # The safe lines alone through nanotoken, for a path not hidden behind
  # the merge.
  chosen = [line for line, ok in zip(lines, safe.tolist()) if ok]
  ids, lengths = fast.fast_path.encode_flat(chosen)
  assert [r.tolist() for r in np.split(ids, np.cumsum(lengths)[:-1])] == [
      w for w, ok in zip(want, safe.tolist()) if ok]


def test_where_tokenizers_differs_the_line_takes_the_exact_path():
  """Each text where tokenizers (and so nanotoken) differs from uncased
  BERT holds a marked character; Σ is marked only when lower-casing (Greek
  final sigma); no ASCII character is."""
  for lower in (True, False):
    assert not fast_wordpiece.unsafe_table(lower)[:128].any()
  for text, _, _ in TOKENIZERS_DIFFERENCES:
    assert not fast_wordpiece.safe_sentences(
        [text], fast_wordpiece.unsafe_table(True))[0], text
  assert fast_wordpiece.unsafe_table(True)[ord("Σ")]
  assert not fast_wordpiece.unsafe_table(False)[ord("Σ")]
  safe = fast_wordpiece.safe_sentences(
      ["plain ascii", "café naïve", "a\ue000b", "中文", "ΟΔΟΣ", ""],
      fast_wordpiece.unsafe_table(True))
  assert safe.tolist() == [True, True, False, True, False, True]


def test_merge_keeps_the_sentence_order():
  safe = np.array([True, False, True, True, False])
  fast = (np.array([1, 2, 3, 4, 5, 6]), np.array([2, 0, 4]))
  exact = (np.array([7, 8, 9]), np.array([1, 2]))
  ids, lengths = fast_wordpiece.merge_flat(safe, fast, exact)
  assert lengths.tolist() == [2, 1, 0, 4, 2]
  assert ids.tolist() == [1, 2, 7, 3, 4, 5, 6, 8, 9]


def test_counted_per_batch(lines):
  """The counter is the number of sentences holding a marked character,
  counted here character by character."""
  tokenizer, vocab = tokenization.load_tokenizer(vocab_file=VOCAB)
  docs = [("d%d" % i, lines[i:i + 50]) for i in range(0, len(lines), 50)]
  _, counts = tokenization.tokenize_documents(docs, tokenizer, vocab)
  unsafe = fast_wordpiece.unsafe_table(True)
  assert counts["wordpiece_exact_path_sentences"] == sum(
      any(unsafe[ord(c)] for c in line) for line in lines) > 0


@pytest.mark.parametrize("change,why", [
    ({"nanotoken": "0.0.1"}, r"nanotoken 0\.1\.0 is installed; the marks in "
     r"marks\.json are for 0\.0\.1"),
    ({"unicode": "9.0.0"}, r"this Python's Unicode tables are %s; the marks "
     r"in marks\.json are for 9\.0\.0" % re.escape(
         unicodedata.unidata_version))])
def test_marks_for_another_version_are_not_used(tmp_path, monkeypatch,
                                                change, why, marks):
  """Marks made for another nanotoken or another Unicode version are not
  trusted: the reason is given, and the tokenizer takes the exact path."""
  with open(marks, encoding="utf-8") as f:
    table = json.load(f)
  table.update(change)
  path = tmp_path / "marks.json"
  path.write_text(json.dumps(table))
  assert re.match(why, fast_wordpiece.fast_path_unavailable(str(path)))
  fast, vocab = tokenization.load_tokenizer(vocab_file=VOCAB)
  monkeypatch.setattr(fast_wordpiece, "TABLE_FILE", str(path))
  exact, _ = tokenization.load_tokenizer(vocab_file=VOCAB)
  assert fast.fast_path is not None and exact.fast_path is None
  assert re.match(why, exact.fast_path_unavailable)
  assert tokenization.fast_path_warning(exact).startswith(
      "warning: every sentence takes the exact WordPiece path")
  assert tokenization.fast_path_warning(fast) is None
  docs = [("a", ["Ünïcödé naïve café", "ΟΔΟΣ a\ue000b"])]
  assert [d.ids.tolist() for d in tokenization.tokenize_documents(
      docs, exact, vocab)[0]] == [d.ids.tolist() for d in tokenization
                                  .tokenize_documents(docs, fast, vocab)[0]]


def test_without_nanotoken_the_exact_path_runs(monkeypatch, lines):
  monkeypatch.setattr(fast_wordpiece, "library_version", lambda: None)
  tokenizer, vocab = tokenization.load_tokenizer(vocab_file=VOCAB)
  assert tokenizer.fast_path is None
  assert tokenizer.fast_path_unavailable == "nanotoken is not installed"
  monkeypatch.undo()
  fast, _ = tokenization.load_tokenizer(vocab_file=VOCAB)
  docs = [("d%d" % i, lines[i:i + 50]) for i in range(0, 2000, 50)]
  slow_docs, counts = tokenization.tokenize_documents(docs, tokenizer, vocab)
  fast_docs, _ = tokenization.tokenize_documents(docs, fast, vocab)
  assert "wordpiece_exact_path_sentences" not in counts
  assert [d.ids.tolist() for d in slow_docs] == [d.ids.tolist()
                                                 for d in fast_docs]


def test_a_vocabulary_nanotoken_cannot_load_keeps_the_exact_path(tmp_path):
  """Without [UNK] nanotoken refuses the vocabulary: the error is still the
  one line naming what is missing, and with --unk_token naming another
  token the exact path tokenizes."""
  lines = open(VOCAB, encoding="utf-8").read().split("\n")
  path = tmp_path / "vocab.txt"
  path.write_text("\n".join("<unk>" if t == "[UNK]" else t for t in lines),
                  encoding="utf-8")
  with pytest.raises(tokenization.VocabularyError, match=r"lacks \[UNK\]"):
    tokenization.load_tokenizer(vocab_file=str(path))
  tokenizer, vocab = tokenization.load_tokenizer(
      vocab_file=str(path), special_token_overrides={"unk": "<unk>"})
  assert tokenizer.fast_path is None
  assert tokenizer.fast_path_unavailable.startswith("nanotoken could not load")
  docs, _ = tokenization.tokenize_documents([("a", ["the dog"])], tokenizer,
                                            vocab)
  assert docs[0].ids.tolist() == [1996, 3899]


def test_pad_id_is_a_word_in_both_paths(tmp_path):
  """WordPiece pads with id 0 whatever token 0 is; where it is a word, text
  makes that id on both paths, as in BERT."""
  lines = open(VOCAB, encoding="utf-8").read().split("\n")
  lines[0], lines[1996] = "the", "[PAD]"
  path = tmp_path / "vocab.txt"
  path.write_text("\n".join(lines), encoding="utf-8")
  docs = [("a", ["the dog", "ΟΔΟΣ the"])]
  for fast in (True, False):
    tokenizer, vocab = tokenization.load_tokenizer(vocab_file=str(path),
                                                   fast_wordpiece=fast)
    assert (tokenizer.fast_path is not None) == fast
    out, counts = tokenization.tokenize_documents(docs, tokenizer, vocab)
    assert out[0].ids.tolist()[:2] == [0, 3899]
    assert out[0].ids.tolist()[-1] == 0


def test_the_probe_is_berts_configuration():
  """The probe's tokenizer.json differs from the pipeline's only in its
  vocabulary."""
  tokens = open(VOCAB, encoding="utf-8").read().split("\n")[:-1]
  pipeline = json.loads(tokenization.build_tokenizer(tokens, True).to_str())
  probe = json.loads(fast_wordpiece._probe_tokenizer_json(True)[0])  # pylint: disable=protected-access
  for config in (pipeline, probe):
    del config["model"]["vocab"]
  assert probe == pipeline
