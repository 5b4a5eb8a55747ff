"""transforms/languages.py: language tags, the sampling's passes, the
keyed fraction, and monolingual instances (transforms/instances.py); the
flags that set them (pipelines/options.py)."""

import math

import numpy as np
import pytest

from pipelines import options
from pipelines.options import UsageError
from transforms import instances, languages, paths
from transforms.tokenization import TokenizedDocument


def test_language_tags():
  assert languages.split_language("en=wiki/en/*") == ("en", "wiki/en/*")
  assert languages.split_language("zh-Hans=x/*.txt") == ("zh-Hans", "x/*.txt")
  # Paths that hold "=" stay paths.
  for entry in ("data/lang=en/*", "s3://bucket/lang=en/*", "./a=b",
                "en=", "=x", "1a=x"):
    assert languages.split_language(entry) == (None, entry)


def test_document_file():
  assert languages.document_file("a/b.txt:0") == "a/b.txt"
  assert languages.document_file("x.jsonl:1234#7") == "x.jsonl"
  assert languages.document_file("c:d.txt:5") == "c:d.txt"
  with pytest.raises(ValueError):
    languages.document_file("no-offset")


def test_sampling_shares_follow_xlm():
  """q_i = p_i^a / sum p_j^a (Lample & Conneau 2019, eq. 1): for shares 0.9
  and 0.1 and a = 0.5, q = 0.75 and 0.25; passes times sizes make those
  shares, and the whole dupe_factor passes' worth."""
  sizes = {"a": 900, "b": 100}
  q = languages.target_shares(sizes, 0.5)
  assert q["a"] == pytest.approx(0.75) and q["b"] == pytest.approx(0.25)
  passes = languages.sampling_passes(sizes, 0.5, 5)
  made = {k: sizes[k] * passes[k] for k in sizes}
  assert sum(made.values()) == pytest.approx(5 * 1000)
  assert made["b"] / sum(made.values()) == pytest.approx(0.25)
  assert languages.sampling_passes(sizes, None, 5) == {"a": 5.0, "b": 5.0}
  assert languages.sampling_passes(sizes, 1.0, 5) == {"a": 5.0, "b": 5.0}
  with pytest.raises(ValueError, match="no bytes"):
    languages.sampling_passes({"a": 10, "b": 0}, 0.3, 5)


def test_passes_are_whole_plus_a_keyed_fraction():
  plan = languages.plan([("a.txt", "a", 900), ("b.txt", "b", 100)], 0.5,
                        5, seed=7)
  want = dict(plan.passes)
  ids = ["a.txt:%d" % (i * 100) for i in range(4000)]
  got = [plan.passes_of(i) for i in ids]
  assert set(got) == {math.floor(want["a"]), math.ceil(want["a"])}
  assert np.mean(got) == pytest.approx(want["a"], abs=0.03)
  # Keyed by seed and id: the same again, another seed another draw.
  assert got == [plan.passes_of(i) for i in ids]
  other = languages.plan([("a.txt", "a", 900), ("b.txt", "b", 100)], 0.5,
                         5, seed=8)
  assert got != [other.passes_of(i) for i in ids]
  assert plan.language_of("b.txt:0#2") == "b"
  with pytest.raises(ValueError, match="65,535|times"):
    languages.plan([("a", "a", 10 ** 9), ("b", "b", 1)], 0.01, 10, seed=1)


def _doc(doc_id, start, sentences):
  ids = np.arange(start, start + sum(sentences), dtype=np.int32)
  return TokenizedDocument(doc_id, ids, np.array(sentences, dtype=np.int32))


def _two_language_pool(first: str, second: str):
  """One pool's entries: 12 documents of file ``first``.txt (tokens
  1000-1999) and 12 of ``second``.txt (tokens 5000-5999), interleaved."""
  entries = []
  for i in range(12):
    entries.append((0, _doc("%s.txt:%d" % (first, i), 1000 + 50 * i,
                            [5, 7, 4])))
    entries.append((0, _doc("%s.txt:%d" % (second, i), 5000 + 50 * i,
                            [6, 3, 8])))
  return entries


@pytest.mark.parametrize("packing,task", [("full_sentences", "none"),
                                          ("pairs", "nsp"),
                                          ("pairs", "sop")])
def test_instances_never_mix_languages(packing, task):
  """Language a's tokens are 1000-1999, b's 5000-5999: no row holds both,
  and each language's counted tokens are its rows'."""
  plan = languages.plan([("a.txt", "a", 10), ("b.txt", "b", 10)], None, 1,
                        seed=1)
  params = instances.InstanceParams(max_seq_length=32, dupe_factor=1,
                                    packing=packing, sentence_task=task,
                                    language_plan=plan)
  entries = _two_language_pool("a", "b")
  layout = instances.SequenceLayout(cls_id=101, sep_id=102)
  counts = {}
  rows = 0
  for batch, batch_counts in instances.instances_for_pool(3, entries, params,
                                                          layout):
    for k, v in batch_counts.items():
      counts[k] = counts.get(k, 0) + v
    for r in range(len(batch)):
      tokens = batch.tokens[r, :batch.lengths[r]]
      words = tokens[(tokens != 101) & (tokens != 102)]
      assert (words < 5000).all() or (words >= 5000).all()
      rows += 1
  assert rows > 4
  assert counts["language_tokens/a"] > 0 and counts["language_tokens/b"] > 0
  total = sum(v for k, v in counts.items() if k.startswith("language_tokens/"))
  # Every row's words are counted once, in its language.
  assert total == sum(
      instances.instance_tokens(b) for b, _ in instances.instances_for_pool(
          3, entries, params, layout))


@pytest.mark.parametrize("packing,task", [("full_sentences", "none"),
                                          ("pairs", "nsp")])
def test_batches_carry_each_rows_language_id(packing, task):
  """Language ids are indices in the sorted language list (as XLM numbers
  them); every row of the batches carries its own, the language of its
  tokens (a's are 1000-1999, c's 5000-5999), in the rows' shuffled order;
  without a plan the batches carry none and are otherwise the same."""
  plan = languages.plan([("c.txt", "c", 10), ("a.txt", "a", 10)], None, 1,
                        seed=1)
  assert plan.language_ids() == {"a": 0, "c": 1}
  params = instances.InstanceParams(max_seq_length=32, dupe_factor=1,
                                    packing=packing, sentence_task=task,
                                    language_plan=plan)
  entries = _two_language_pool("a", "c")
  layout = instances.SequenceLayout(cls_id=101, sep_id=102)
  seen = set()
  for batch, _ in instances.instances_for_pool(3, entries, params, layout,
                                               batch_size=7):
    assert batch.languages.dtype == np.uint16
    assert batch.languages.shape == (len(batch),)
    for r in range(len(batch)):
      tokens = batch.tokens[r, :batch.lengths[r]]
      words = tokens[(tokens != 101) & (tokens != 102)]
      assert batch.languages[r] == (0 if (words < 5000).all() else 1)
      seen.add(int(batch.languages[r]))
  assert seen == {0, 1}
  # Every language's rows together, in order: the ids are not the shuffle.
  one_language = [(0, _doc("c.txt:%d" % i, 5000 + 50 * i, [6, 3, 8]))
                  for i in range(12)]
  for batch, _ in instances.instances_for_pool(3, one_language, params,
                                               layout):
    assert (batch.languages == 1).all()
  plain = instances.InstanceParams(max_seq_length=32, dupe_factor=1,
                                   packing=packing, sentence_task=task)
  for batch, _ in instances.instances_for_pool(3, one_language, plain,
                                               layout):
    assert batch.languages is None


def test_language_ids_in_the_report():
  """summary.json's languages give each language its id, the one the
  langs feature holds; a plan refuses more languages than 16-bit ids."""
  plan = languages.plan([("x.txt", "sw", 30), ("y.txt", "en", 70)], 0.3, 2,
                        seed=1)
  report = languages.report(plan, 0.3, {})
  assert {k: v["id"] for k, v in report.items()} == {"en": 0, "sw": 1}
  many = [("%d.txt" % i, "l%d" % i, 1)
          for i in range(languages.MAX_LANGUAGES + 1)]
  with pytest.raises(ValueError, match="at most 65536"):
    languages.plan(many, None, 1, seed=1)


def _opts(*argv):
  opts = options.PipelineOptions(list(argv)).view_as(options.MlmOptions)
  options.resolve(opts)
  return opts


def test_language_flags(tmp_path):
  for name in ("a.txt", "b.txt"):
    (tmp_path / name).write_text("x\n")
  a, b = str(tmp_path / "a.txt"), str(tmp_path / "b.txt")
  opts = _opts("--input=en=%s,sw=%s" % (a, b), "--output=o",
               "--language_sampling_alpha=0.3")
  assert options.input_patterns(opts) == [a, b]
  options.language_errors(opts)
  plan = options.language_plan(opts, paths.match_input([a, b]))
  assert plan.languages == ["en", "sw"]
  # XLM's langs feature: off unless asked for, allowed with tags.
  assert not opts.langs_feature
  assert not options.example_layout(opts).langs
  tagged = _opts("--input=en=%s,sw=%s" % (a, b), "--langs_feature=true")
  options.language_errors(tagged)
  assert options.example_layout(tagged).langs
  assert plan.language_of("a.txt:0") == "en"
  # --preset=xlmr's alpha applies to tagged input only.
  assert _opts("--input=en=%s" % a, "--preset=xlmr"
               ).language_sampling_alpha == 0.3
  assert _opts("--input=" + a, "--preset=xlmr").language_sampling_alpha is None
  for argv, message in (
      (["--input=en=%s,%s" % (a, b)], "tags some patterns"),
      (["--input=" + a, "--language_sampling_alpha=0.3"], "needs languages"),
      (["--input=en=" + a, "--language_sampling_alpha=0"], r"\(0, 1\]"),
      (["--input=" + a, "--langs_feature"], "--langs_feature needs "
       "the languages before the job"),
      (["--input=" + a, "--input_format=jsonl", "--language_field=lang",
        "--langs_feature"], "--langs_feature needs the languages before"),
  ):
    with pytest.raises(UsageError, match=message):
      options.language_errors(_opts(*argv))
  both = _opts("--input=en=%s/*.txt,sw=%s" % (tmp_path, b))
  with pytest.raises(UsageError, match="matched by the patterns of en and sw"):
    options.language_plan(both, paths.match_input([str(tmp_path / "*.txt"),
                                                   b]))


def test_languages_from_a_field():
  """--language_field: the reader ends the id with the record's language;
  the plan reads it there, samples from the counted sizes, or passes every
  language dupe_factor times without them."""
  from transforms import reading  # pylint: disable=import-outside-toplevel
  paragraphs, language = reading.jsonl_document(
      '{"text": "a b\\nc", "lang": "zh-Hans"}', "text", "lang")
  assert (paragraphs, language) == (["a b", "c"], "zh-Hans")
  for line, shown in (('{"text": "x"}', "missing"),
                      ('{"text": "x", "lang": "e n"}', "'e n'"),
                      ('{"text": "x", "lang": 5}', "5")):
    with pytest.raises(reading.RecordError, match=shown) as raised:
      reading.jsonl_document(line, "text", "lang")
    assert raised.value.reason == "records_missing_language"
  doc_id = languages.with_language("dir/a.jsonl:120", "sw")
  assert languages.document_language(doc_id) == "sw"
  assert languages.document_file(doc_id) == "dir/a.jsonl"
  assert languages.document_language("dir/a.jsonl:120") is None
  sampled = languages.field_plan({"en": 900, "sw": 100}, 0.5, 5, seed=3)
  assert sampled.language_of(doc_id) == "sw"
  assert dict(sampled.passes)["sw"] == pytest.approx(5 * 0.25 / 0.1)
  plain = languages.field_plan(None, None, 4, seed=3)
  assert plain.passes_of(languages.with_language("a:1", "xx")) == 4
  report = languages.report(sampled, 0.5, {"language_tokens/en": 30,
                                           "language_tokens/sw": 10})
  assert report["sw"]["target_share"] == pytest.approx(0.25)
  assert report["sw"]["share"] == pytest.approx(0.25)
  assert "files" not in report["sw"]
  assert languages.report(plain, None, {"language_tokens/xx": 7}) == {
      "xx": {"passes": 4.0, "instance_tokens": 7, "share": 1.0}}


def test_parquet_language_column(tmp_path):
  """A Parquet record's language comes from its column; a row without a
  tag is set aside."""
  import pyarrow as pa  # pylint: disable=import-outside-toplevel
  import pyarrow.parquet as pq  # pylint: disable=import-outside-toplevel
  from tests.helpers import read_ranges  # pylint: disable=import-outside-toplevel
  from transforms import reading, rejects  # pylint: disable=import-outside-toplevel
  path = str(tmp_path / "x.parquet")
  pq.write_table(pa.table({"text": ["one two", "three", "four"],
                           "lang": ["en", None, "sw"]}), path)
  records = read_ranges(reading.ParquetDocumentSource(
      path, "text", language_field="lang"))
  docs = [r for r in records if not isinstance(r, rejects.Rejected)]
  rejected = [r for r in records if isinstance(r, rejects.Rejected)]
  assert [languages.document_language(d) for d, _ in docs] == ["en", "sw"]
  assert [r.reason for r in rejected] == ["records_missing_language"]


def test_word_counts_sampled_by_language():
  """learn_vocab's sampling: each language's counts times its weight,
  summed, rounded up, the most frequent kept."""
  from transforms import vocabulary  # pylint: disable=import-outside-toplevel
  counts = vocabulary.sample_word_counts(
      {"en": [("the", 100), ("cat", 10)], "sw": [("paka", 4), ("the", 1)]},
      {"en": 0.5, "sw": 3.0}, max_words=3)
  assert counts == [("the", 53), ("paka", 12), ("cat", 5)]


def test_count_words_by_language():
  from apache_beam.testing.util import assert_that, equal_to  # pylint: disable=import-outside-toplevel
  import apache_beam as beam  # pylint: disable=import-outside-toplevel
  from tests.helpers import local_test_pipeline  # pylint: disable=import-outside-toplevel
  from transforms import vocabulary  # pylint: disable=import-outside-toplevel
  words = vocabulary.WordRules(model="wordpiece", do_lower_case=True)
  docs = [("a.txt:0@en", ["the cat", "the"]), ("b.txt:0@sw", ["paka the"])]
  with local_test_pipeline() as p:
    out = (p | beam.Create(docs)
           | vocabulary.CountWordsByLanguage(
               words=words, max_words=5,
               language_of=languages.document_language))
    assert_that(out, equal_to([{"en": [("the", 2), ("cat", 1)],
                                "sw": [("the", 1), ("paka", 1)]}]))


def _passes_written(plan, docs, tmp_path):
  """Each document's passes as the spill files hold them, and as the
  GroupByKey path assigns them to pools."""
  # pylint: disable=import-outside-toplevel
  import collections
  import os
  from transforms import pool_files
  spilled = pool_files.write_file(str(tmp_path), docs, 7, plan.passes_of)
  with open(os.path.join(str(tmp_path), spilled.name + pool_files.DATA_SUFFIX),
            "rb") as f:
    records = list(pool_files.decode_records(f.read(), 0, 1 << 64))
  per_doc = collections.Counter(doc.doc_id for _, _, doc in records)
  dupes = collections.defaultdict(set)
  for _, dupe, doc in records:
    dupes[doc.doc_id].add(dupe)
  return per_doc, dupes


def test_each_document_is_spilled_its_planned_passes(tmp_path):
  """The spill files hold every document exactly as many times as the
  plan passes over it, with passes numbered 0..n-1; the languages' mean
  passes follow r_i = dupe_factor q_i / p_i, whose ratio between two
  languages is (p_b / p_a) ** (alpha - 1)."""
  plan = languages.plan([("a.txt", "a", 900), ("b.txt", "b", 100)], 0.3,
                        2, seed=11)
  docs = [_doc("%s.txt:%d" % (lang, i * 10), 1000, [3, 4])
          for lang in "ab" for i in range(600)]
  per_doc, dupes = _passes_written(plan, docs, tmp_path)
  for doc in docs:
    n = plan.passes_of(doc.doc_id)
    assert per_doc[doc.doc_id] == n
    assert dupes[doc.doc_id] == set(range(n))
  mean = {lang: np.mean([per_doc["%s.txt:%d" % (lang, i * 10)]
                         for i in range(600)]) for lang in "ab"}
  assert mean["b"] / mean["a"] == pytest.approx((100 / 900) ** (0.3 - 1),
                                                rel=0.05)
  assert mean["a"] < 2 < mean["b"]


def test_paths_that_read_as_tags(tmp_path, monkeypatch):
  """A Hive-style folder (year=2020/) that names files as it is stays a
  path; one whose two readings both name files is refused; a file found
  by match_files' literal-bracket fallback gets its pattern's language."""
  monkeypatch.chdir(tmp_path)
  (tmp_path / "year=2020").mkdir()
  (tmp_path / "year=2020" / "a.txt").write_text("x\n")
  hive = _opts("--input=year=2020/*")
  assert options.input_languages(hive) == []
  assert options.input_patterns(hive) == [str(tmp_path / "year=2020" / "*")]
  (tmp_path / "2020").mkdir()
  (tmp_path / "2020" / "b.txt").write_text("y\n")
  with pytest.raises(UsageError, match="names files both as it is"):
    options.input_patterns(_opts("--input=year=2020/*"))
  (tmp_path / "d1").mkdir()
  (tmp_path / "d1" / "a.txt").write_text("x\n")
  (tmp_path / "data[2024]").mkdir()
  (tmp_path / "data[2024]" / "b.txt").write_text("y\n")
  opts = _opts("--input=en=d1/*,sw=data[2024]/*")
  matched = paths.match_input(options.input_patterns(opts))
  plan = options.language_plan(opts, matched)
  assert plan.language_of(
      paths.relative_name(str(tmp_path / "data[2024]" / "b.txt"),
                          matched.root) + ":0") == "sw"


def test_records_set_aside_keep_their_file_and_offset():
  from transforms import rejects  # pylint: disable=import-outside-toplevel
  assert rejects.split_doc_id("sub/a.jsonl:123@en") == ("sub/a.jsonl", 123)
  assert rejects.split_doc_id("x.parquet:4#5@zh-Hans") == ("x.parquet", 4)


def test_sampled_counts_do_not_depend_on_the_languages_order():
  from transforms import vocabulary  # pylint: disable=import-outside-toplevel
  by_language = {"a": [("x", 1)], "b": [("x", 2)], "c": [("x", 7)]}
  weights = {"a": 0.1, "b": 0.1, "c": 0.1}
  forward = vocabulary.sample_word_counts(by_language, weights, 5)
  backward = vocabulary.sample_word_counts(
      dict(reversed(list(by_language.items()))), weights, 5)
  assert forward == backward


def test_compression_warning(tmp_path):
  """Sampling from file sizes with some languages compressed and others
  not is warned about, in one line; alike, nothing is said."""
  import gzip  # pylint: disable=import-outside-toplevel
  (tmp_path / "a.txt").write_text("x y\n")
  with gzip.open(str(tmp_path / "b.txt.gz"), "wt") as f:
    f.write("x y\n")
  mixed = _opts("--input=en=%s,sw=%s" % (tmp_path / "a.txt",
                                         tmp_path / "b.txt.gz"),
                "--language_sampling_alpha=0.3")
  warning = options.compression_warning(
      mixed, paths.match_input(options.input_patterns(mixed)))
  assert warning.startswith("warning: ") and "en plain, sw compressed" in warning
  alike = _opts("--input=en=%s" % (tmp_path / "a.txt"),
                "--language_sampling_alpha=0.3")
  assert options.compression_warning(
      alike, paths.match_input(options.input_patterns(alike))) is None
