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


def _rejected_records(out):
  """Every record of OUT/_rejected/*.jsonl."""
  records = []
  folder = os.path.join(out, "_rejected")
  for name in sorted(os.listdir(folder)) if os.path.isdir(folder) else []:
    with open(os.path.join(folder, name), encoding="utf-8") as f:
      records.extend(json.loads(line) for line in f)
  return records


def test_malformed_jsonl_and_missing_fields_are_set_aside(tmp_path):
  path = tmp_path / "docs.jsonl"
  lines = [
      json.dumps({"text": "Good document. With two sentences."}),
      "{\"text\": \"unterminated",
      "[1, 2, 3]",
      json.dumps({"body": "wrong field"}),
      json.dumps({"text": None}),
      json.dumps({"text": "Another good one."}),
      # Valid JSON, though Python's int() refuses 5,000 digits: read.
      '{"id": %s, "text": "A third good one."}' % ("1" * 5000),
  ] + [json.dumps({"text": "Filler document %d. It is fine." % i})
       for i in range(2000)]
  path.write_text("\n".join(lines) + "\n")
  out = str(tmp_path / "out")
  proc = run_cli(["--input=" + str(path), "--input_format=jsonl",
                  "--output=" + out, "--dupe_factor=1",
                  "--max_rejected_fraction=0.01"])
  with open(os.path.join(out, "summary.json")) as f:
    summary = json.load(f)
  counts = summary["counts"]
  assert counts["documents"] == 2003
  assert counts["rejected_records"] == 4
  assert summary["rejected"] == {"malformed_jsonl_lines": 1,
                                 "jsonl_lines_missing_text_field": 3}
  records = _rejected_records(out)
  offsets = [0]
  for line in lines:
    offsets.append(offsets[-1] + len(line.encode()) + 1)
  assert sorted((r["offset"], r["reason"], r["stage"]) for r in records) == [
      (offsets[1], "malformed_jsonl_lines", "parse"),
      (offsets[2], "jsonl_lines_missing_text_field", "parse"),
      (offsets[3], "jsonl_lines_missing_text_field", "parse"),
      (offsets[4], "jsonl_lines_missing_text_field", "parse")]
  assert {r["file"] for r in records} == {str(path)}
  assert {r["sample"] for r in records} == set(lines[1:5])
  # The last log line says what was set aside and where.
  last = proc.stderr.strip().splitlines()[-1]
  assert "4 records set aside (jsonl_lines_missing_text_field 3, " in last
  assert "malformed_jsonl_lines 1" in last and "_rejected" in last


def test_too_many_rejected_records_fail_the_job(tmp_path):
  """A lines-format file read as JSONL: every line is set aside, which is
  not a few bad records but a wrong --input_format."""
  path = tmp_path / "plain.txt"
  path.write_text("A sentence.\nAnother sentence.\n\nA new document.\n")
  out = str(tmp_path / "out")
  proc = run_cli(["--input=" + str(path), "--input_format=jsonl",
                  "--output=" + out], check=False)
  assert proc.returncode == 1, proc.stderr
  errors = [l for l in proc.stderr.splitlines() if l.startswith("error:")]
  assert len(errors) == 1, proc.stderr
  assert "3 of 3 records (100.0%) were set aside" in errors[0]
  assert "--max_rejected_fraction=0.001" in errors[0]
  assert "--input_format" in errors[0]
  assert "summary.json" not in os.listdir(out)
  assert len(_rejected_records(out)) == 3


@pytest.mark.parametrize("suffix", [".gz", ".zst"])
def test_cut_compressed_file_is_reported_and_the_job_completes(good_file,
                                                               tmp_path,
                                                               suffix):
  import gzip  # pylint: disable=import-outside-toplevel
  import zstandard  # pylint: disable=import-outside-toplevel
  data = b"".join(b"Sentence %d of document %d here.\n\n" % (i, i)
                  for i in range(30000))
  packed = (gzip.compress(data) if suffix == ".gz"
            else zstandard.ZstdCompressor().compress(data))
  cut = tmp_path / ("cut.txt" + suffix)
  cut.write_bytes(packed[:len(packed) // 2])
  out = str(tmp_path / "out")
  run_cli(["--input=%s,%s" % (good_file, cut), "--output=" + out,
           "--dupe_factor=1", "--max_rejected_fraction=1"])
  with open(os.path.join(out, "summary.json")) as f:
    summary = json.load(f)
  assert summary["rejected"] == {"unreadable_files": 1}
  [record] = _rejected_records(out)
  assert record["file"] == str(cut) and record["stage"] == "read"
  assert "cut short" in record["error"]
  # The documents read before the fault are kept: about half of the file.
  assert 12 + 10000 < summary["counts"]["documents"] < 12 + 30000


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


def test_every_dropped_wikiextractor_piece_is_counted(tmp_path):
  path = tmp_path / "wiki_00"
  path.write_bytes(
      b"stray line one\nstray line two\n"
      b'<doc id="1" url="u" title="Only a title">\nOnly a title\n</doc>\n'
      b'<doc id="2" url="u" title="Real">\nReal\n\nReal text. Two.\n</doc>\n')
  out = str(tmp_path / "out")
  run_cli(["--input=" + str(path), "--input_format=wikiextractor",
           "--output=" + out, "--dupe_factor=1"])
  counts = _summary(out)
  assert counts["documents"] == 1
  assert counts["lines_outside_wiki_docs"] == 2
  assert counts["empty_documents_dropped"] == 1


def test_same_file_names_in_two_folders_are_different_documents(tmp_path):
  """WikiExtractor's layout, text/AA/wiki_00 and text/AB/wiki_00: a
  random-next B always comes from the other article, as with distinct
  names."""
  articles = {"AA": ["Alpha one.", "Alpha two.", "Alpha three."],
              "AB": ["Beta one.", "Beta two.", "Beta three."]}
  for folder, sentences in articles.items():
    os.makedirs(str(tmp_path / "text" / folder))
    (tmp_path / "text" / folder / "wiki_00").write_text(
        '<doc id="%s" url="u" title="T">\nT\n\n%s\n</doc>\n'
        % (folder, "\n".join(sentences)))
  out = str(tmp_path / "out")
  run_cli(["--input=" + str(tmp_path / "text" / "*" / "wiki_00"),
           "--input_format=wikiextractor", "--output=" + out,
           "--dupe_factor=10"])
  counts = _summary(out)
  assert counts["documents"] == 2
  assert counts["random_next_instances"] > 0
  assert counts["random_next_from_same_document"] == 0


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


def _write_parquet(path, columns, row_group_size=50):
  import pyarrow as pa  # pylint: disable=import-outside-toplevel
  import pyarrow.parquet as pq  # pylint: disable=import-outside-toplevel
  pq.write_table(pa.table(columns), str(path), row_group_size=row_group_size)
  return str(path)


def test_parquet_input_end_to_end(tmp_path):
  docs = sample_documents()
  texts = [" ".join(doc) for doc in docs] * 4
  texts[3] = None
  good = _write_parquet(tmp_path / "a.parquet", {"content": texts})
  # Another file whose column holds numbers: counted, dropped, the job goes on.
  numbers = _write_parquet(tmp_path / "b.parquet", {"content": [1, 2, 3]})
  out = str(tmp_path / "out")
  run_cli(["--input=%s,%s" % (good, numbers), "--input_format=parquet",
           "--text_field=content", "--output=" + out, "--dupe_factor=1"])
  counts = _summary(out)
  # Every row is a document record read, the dropped ones too.
  assert counts["documents_read"] == len(texts) + 3
  assert counts["documents"] == len(texts) - 1
  assert counts["parquet_null_texts"] == 1
  assert counts["parquet_non_string_texts"] == 3
  assert counts["instances"] > 0


def test_parquet_without_the_text_column_is_refused(tmp_path):
  path = _write_parquet(tmp_path / "a.parquet", {"body": ["some text"]})
  proc = assert_refused(["--input=" + path, "--input_format=parquet",
                         "--output=" + str(tmp_path / "out")],
                        "has no column 'text' (--text_field); its columns: "
                        "body")
  assert not (tmp_path / "out").exists(), proc.stderr
  not_parquet = tmp_path / "plain.parquet"
  not_parquet.write_text("just text\n")
  assert_refused(["--input=" + str(not_parquet), "--input_format=parquet",
                  "--output=" + str(tmp_path / "out")],
                 "cannot read %s as Parquet" % not_parquet)


def _tokenizer_json(tmp_path, lowercase):
  """The bundled vocabulary in tokenizers' BERT configuration, its
  normalizer lower-casing or not."""
  # pylint: disable=import-outside-toplevel
  from tests.helpers import VOCAB
  from transforms.tokenization import build_tokenizer
  with open(VOCAB, encoding="utf-8") as f:
    tokens = f.read().split("\n")[:-1]
  path = tmp_path / ("%s.json" % ("uncased" if lowercase else "cased"))
  path.write_text(build_tokenizer(tokens, lowercase).to_str())
  return str(path)


@pytest.mark.parametrize("lowercase", [True, False])
def test_do_lower_case_contradicting_the_tokenizer_file_is_refused(
    good_file, tmp_path, lowercase):
  tokenizer_file = _tokenizer_json(tmp_path, lowercase)
  out = tmp_path / "out"
  flag = "--do_lower_case=%s" % str(not lowercase).lower()
  proc = assert_refused(
      ["--input=" + good_file, "--tokenizer_file=" + tokenizer_file,
       "--output=" + str(out), flag],
      "the normalizer of tokenizer file %s %s its input, but %s" % (
          tokenizer_file, "lower-cases" if lowercase
          else "does not lower-case", flag))
  assert "Traceback" not in proc.stderr
  assert not out.exists()


TWO_SENTENCES = "The Quick brown Fox jumps.\nHello World, says Alice.\n"


@pytest.mark.parametrize("lowercase", [True, False])
def test_tokenizer_file_decides_do_lower_case(tmp_path, lowercase):
  """--do_lower_case left out: summary.json records what the file's
  normalizer does, and the tokens are the file's (no masking, so
  input_ids are the text's tokens)."""
  # pylint: disable=import-outside-toplevel
  from transforms.tokenization import load_tokenizer
  tokenizer_file = _tokenizer_json(tmp_path, lowercase)
  corpus = tmp_path / "two.txt"
  corpus.write_text(TWO_SENTENCES)
  out = str(tmp_path / "out")
  proc = run_cli(["--input=" + str(corpus), "--output=" + out,
                  "--tokenizer_file=" + tokenizer_file, "--preset=roberta",
                  "--max_seq_length=128", "--short_seq_prob=0"])
  assert "upper-case" not in proc.stderr and "capitals" not in proc.stderr
  with open(os.path.join(out, "summary.json")) as f:
    options = json.load(f)["options"]
  assert options["do_lower_case"] is lowercase
  tokenizer, vocab = load_tokenizer(tokenizer_file=tokenizer_file)
  expected = [vocab.cls_id]
  for sentence in TWO_SENTENCES.splitlines():
    expected += tokenizer.encode(sentence, add_special_tokens=False).ids
  expected.append(vocab.sep_id)
  [example] = read_examples(out, 128, masking="none", sentence_task="none")
  ids = example["input_ids"][:len(expected)].tolist()
  assert ids == expected and not example["input_ids"][len(expected):].any()
  words = [vocab.tokens[i] for i in ids]
  if lowercase:
    assert words[1:3] == ["the", "quick"] and vocab.unk_id not in ids
  else:  # an uncased vocabulary has no "The": what the file makes of it
    assert words[1:4] == ["[UNK]", "[UNK]", "brown"]


def test_cased_vocabulary_in_a_lower_casing_tokenizer_file_warns(good_file,
                                                                 tmp_path):
  """Words with capitals that the file's lower-casing normalizer can never
  produce: one warning line, and the job runs."""
  # pylint: disable=import-outside-toplevel
  from tests.helpers import VOCAB
  from transforms.tokenization import build_tokenizer
  with open(VOCAB, encoding="utf-8") as f:
    tokens = f.read().split("\n")[:-1]
  for i in range(2000, 2050):
    tokens[i] = tokens[i].capitalize()
  path = tmp_path / "tokenizer.json"
  path.write_text(build_tokenizer(tokens, True).to_str())
  out = str(tmp_path / "out")
  proc = run_cli(["--input=" + good_file, "--output=" + out,
                  "--tokenizer_file=" + str(path), "--dupe_factor=1"])
  warnings = [l for l in proc.stderr.splitlines()
              if l.startswith("warning:") and "capitals" in l]
  assert len(warnings) == 1, proc.stderr[-2000:]
  assert str(path) in warnings[0]
