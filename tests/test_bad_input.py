"""Messy input, one case a test: each is survived and counted by reason in
summary.json, or refused with one clear message and a non-zero exit."""

import json
import os
import random

import pytest

from tests.helpers import (assert_refused, read_examples, run_cli,
                           sample_documents, write_lines_corpus)


def _summary(out):
  with open(os.path.join(out, "summary.json")) as f:
    return json.load(f)["counts"]


@pytest.fixture(scope="module")
def good_file(tmp_path_factory):
  directory = str(tmp_path_factory.mktemp("good"))
  return write_lines_corpus(directory, num_files=1, docs_per_file=12)[0]


def test_binary_file_among_text_files_is_skipped(good_file, tmp_path):
  binary = tmp_path / "image.txt"
  rng = random.Random(0)
  binary.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(
      rng.randrange(256) for _ in range(50000)))
  out = str(tmp_path / "out")
  run_cli(["--input=%s,%s" % (good_file, binary), "--output=" + out,
           "--dupe_factor=1"])
  counts = _summary(out)
  assert counts["binary_files_skipped"] == 1
  assert counts["documents"] == 12 and counts["invalid_utf8_lines"] == 0


def test_empty_file_is_harmless(good_file, tmp_path):
  empty = tmp_path / "empty.txt"
  empty.write_bytes(b"")
  out = str(tmp_path / "out")
  run_cli(["--input=%s,%s" % (good_file, empty), "--output=" + out,
           "--dupe_factor=1"])
  assert _summary(out)["documents"] == 12


def test_input_without_any_text_fails_clearly(tmp_path):
  empty = tmp_path / "empty.txt"
  empty.write_bytes(b"\n\n   \n")
  out = str(tmp_path / "out")
  proc = run_cli(["--input=" + str(empty), "--output=" + out], check=False)
  assert proc.returncode == 1
  assert "error: no examples were made: 0 documents" in proc.stderr
  assert _summary(out)["instances"] == 0  # the summary still says why


def test_one_sentence_documents(tmp_path):
  path = tmp_path / "single.txt"
  path.write_text("Only one sentence here.\n\nAnother lonely sentence.\n\n"
                  "A third one, also alone.\n")
  out = str(tmp_path / "out")
  run_cli(["--input=" + str(path), "--output=" + out, "--dupe_factor=4"])
  counts = _summary(out)
  # One instance per document and pass, always with a random next segment.
  assert counts["instances"] == counts["random_next_instances"] == 12
  examples = read_examples(out)
  assert all(e["next_sentence_labels"][0] == 1 for e in examples)


def test_a_single_40mb_line_is_processed_in_pieces(tmp_path):
  words = [w for doc in sample_documents() for s in doc for w in s.split()]
  rng = random.Random(1)
  path = tmp_path / "huge.txt"
  size = 0
  with open(path, "w") as f:
    while size < 40 * 1000 * 1000:
      chunk = " ".join(rng.choice(words) for _ in range(10000)) + " "
      f.write(chunk)
      size += len(chunk)
    f.write("\n\nA normal short document follows.\nIt has two sentences.\n")
  out = str(tmp_path / "out")
  run_cli(["--input=" + str(path), "--output=" + out, "--dupe_factor=1"])
  counts = _summary(out)
  # Cut into ~1 MB pieces, then into 8 MB documents: nothing is dropped
  # silently, and every step sees bounded pieces.
  assert counts["long_line_pieces"] >= 38
  assert counts["long_documents_split"] >= 4
  assert counts["documents"] >= 6
  assert counts["tokens"] > 7 * 1000 * 1000
  assert counts["truncated_tokens"] > 0 and counts["instances"] > 0


def test_malformed_jsonl_and_missing_fields(tmp_path):
  path = tmp_path / "docs.jsonl"
  path.write_text("\n".join([
      json.dumps({"text": "Good document. With two sentences."}),
      "{\"text\": \"unterminated",
      "[1, 2, 3]",
      json.dumps({"body": "wrong field"}),
      json.dumps({"text": None}),
      json.dumps({"text": "Another good one."}),
  ]) + "\n")
  out = str(tmp_path / "out")
  run_cli(["--input=" + str(path), "--input_format=jsonl", "--output=" + out,
           "--dupe_factor=1"])
  counts = _summary(out)
  assert counts["documents"] == 2
  assert counts["malformed_jsonl_lines"] == 1
  assert counts["jsonl_lines_missing_text_field"] == 3


def test_wikiextractor_oddities(tmp_path):
  path = tmp_path / "wiki_00"
  path.write_bytes(
      b'<doc id="1" url="u" title="Bad\x07title">\n'
      b"Bad\x00\x07\x1b[31m title \xff\xfe\n\nFirst article text. It is fine.\n"
      b'<doc id="2" url="u" title="Second">\nSecond\n\nSecond article. '
      b"Also fine.\n</doc>\nstray text between articles\n")
  out = str(tmp_path / "out")
  run_cli(["--input=" + str(path), "--input_format=wikiextractor",
           "--output=" + out, "--dupe_factor=1"])
  counts = _summary(out)
  assert counts["documents"] == 2
  assert counts["unterminated_wiki_docs"] == 1
  assert counts["lines_outside_wiki_docs"] == 1
  assert counts["sentences"] == 4  # titles dropped, odd bytes and all


@pytest.mark.parametrize("content,message", [
    (None, "cannot read"),
    (b"", "cannot be loaded"),
    (b"{\"model\": {\"type\": \"WordPiece\"", "cannot be loaded"),
])
def test_bad_tokenizer_file_is_refused(good_file, tmp_path, content, message):
  path = tmp_path / "tokenizer.json"
  if content is not None:
    path.write_bytes(content)
  out = tmp_path / "out"
  assert_refused(["--input=" + good_file, "--tokenizer_file=" + str(path),
                  "--output=" + str(out)], message)
  assert not out.exists()


def test_corrupt_vocabulary_is_refused(good_file, tmp_path):
  path = tmp_path / "vocab.txt"
  path.write_bytes(b"\x00\xff\xfe\x00" * 100)
  assert_refused(["--input=" + good_file, "--vocab_file=" + str(path),
                  "--output=" + str(tmp_path / "out")], "not UTF-8 text")
