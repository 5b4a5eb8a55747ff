"""Fixtures the e2e tests share: tokenizers of each family, trained once per
run on the text the project ships (tests/helpers.py)."""

import os

import pytest

from oracles import references
from tests.helpers import (REPO, train_byte_level_bpe,
                           train_sentencepiece_models)


@pytest.fixture(scope="session")
def bpe(tmp_path_factory):
  """(vocab.json, merges.txt, tokenizer.json) of a RoBERTa-style BPE."""
  return train_byte_level_bpe(str(tmp_path_factory.mktemp("bpe")))


@pytest.fixture(scope="session")
def spm_models(tmp_path_factory):
  """SentencePiece models by name: albert, albert_bpe, xlmr,
  xlmr_released."""
  return train_sentencepiece_models(str(tmp_path_factory.mktemp("spm")))


@pytest.fixture(scope="session")
def readers_python():
  """The python of the trainers' own readers' venv (megatron-core,
  mosaicml-streaming: oracles/references.py), installed once."""
  return references.ensure_trainer_readers(
      os.path.join(REPO, ".cache", "tools", "trainer-readers-venv"))
