"""Each tokenizer family against its reference code on every Unicode code
point, one per line (tests/unit/test_tokenizer_families.py runs the same
checks on every 97th, within the unit tier's two minutes), and the fast
WordPiece path's marks made again from every code point."""

import json
import os

from oracles import references
from tests.helpers import REPO
from transforms import fast_wordpiece
from tests.unit.test_tokenizer_families import (check_albert_rules,
                                                check_byte_level_bpe,
                                                check_sentencepiece,
                                                check_xlmr_released)


def test_byte_level_bpe_on_every_code_point(bpe):
  vocab, merges, _ = bpe
  encoder = references.fairseq_gpt2_encoder(
      os.path.join(REPO, ".cache", "tools", "fairseq"), vocab, merges)
  check_byte_level_bpe(bpe, encoder, 1)


def test_sentencepiece_on_every_code_point(spm_models):
  check_sentencepiece(spm_models, 1)


def test_albert_rules_on_every_code_point(spm_models):
  check_albert_rules(spm_models, 1)


def test_xlmr_released_layout_on_every_code_point(spm_models):
  check_xlmr_released(spm_models, 1)


def test_fast_wordpiece_marks_are_those_shipped():
  """nanotoken against BERT's rules on every code point in each probe's
  context, cased and uncased (about 80 s and 3.6 GB): the marks come out as
  transforms/fast_wordpiece_unsafe.json has them, so every sentence the
  fast path takes is one whose characters it treats as BERT does."""
  with open(fast_wordpiece.TABLE_FILE, encoding="utf-8") as f:
    shipped = json.load(f)
  made = fast_wordpiece.make_table()
  if made["unicode"] == shipped["unicode"]:
    assert made == shipped
  else:
    # Another Python's Unicode tables: the shipped marks are not used there
    # (tests/unit/test_fast_wordpiece.py makes and tests its own).
    assert "Unicode tables are %s" % made["unicode"] in (
        fast_wordpiece.fast_path_unavailable())
