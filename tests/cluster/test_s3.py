"""S3 for real: a SeaweedFS S3 server on loopback (runners/local_s3.py),
started here, and the whole pipeline from S3 to S3 through Beam's AWS
filesystem and smart-open. It has every S3 call the pipeline makes,
conditional writes (the output lock) and object ACLs included, so no test
here needs moto's server."""

import os
import random
import subprocess
import sys

import boto3
import pytest

from tests.helpers import (REPO, VOCAB, digest, download_prefix, environment,
                           local_s3_server, read_examples, run_cli,
                           write_lines_corpus)

pytestmark = pytest.mark.s3

FAKE_KEY_ID = "AKIAFAKEFAKEFAKE1234"
FAKE_SECRET = "fAkEsEcReT/do-not-print-me+0123456789abcd"


@pytest.fixture(scope="module")
def s3_server():
  with local_s3_server() as url:
    yield url


@pytest.fixture(scope="module")
def s3_env():
  env = {"AWS_ACCESS_KEY_ID": FAKE_KEY_ID,
         "AWS_SECRET_ACCESS_KEY": FAKE_SECRET,
         "AWS_DEFAULT_REGION": "us-east-1"}
  with environment(env):
    yield env


@pytest.fixture(scope="module")
def bucket(s3_server, s3_env, tmp_path_factory):
  client = boto3.client("s3", endpoint_url=s3_server, region_name="us-east-1")
  client.create_bucket(Bucket="corpus")
  local = str(tmp_path_factory.mktemp("s3corpus"))
  paths = write_lines_corpus(local, num_files=2, docs_per_file=15, seed=3)
  for path in paths:
    client.upload_file(path, "corpus", "in/" + os.path.basename(path))
  client.upload_file(VOCAB, "corpus", "vocab/vocab.txt")
  return client, paths


def _s3_flags(url):
  return ["--s3_endpoint_url=" + url, "--s3_region_name=us-east-1"]


def _download(client, prefix, directory):
  return download_prefix(client, "corpus", prefix, directory)


def test_s3_to_s3_matches_a_local_run(s3_server, s3_env, bucket, tmp_path):
  client, paths = bucket
  proc = run_cli(["--input=s3://corpus/in/*.txt", "--output=s3://corpus/out",
                  "--vocab_file=s3://corpus/vocab/vocab.txt", "--dupe_factor=2"]
                 + _s3_flags(s3_server), env=s3_env)
  keys = _download(client, "out/", str(tmp_path / "from_s3"))
  assert "out/summary.json" in keys
  assert not any(k.endswith("_INCOMPLETE") for k in keys)
  assert any(k.startswith("out/part-") for k in keys)

  local = str(tmp_path / "local")
  run_cli(["--input=" + ",".join(paths), "--output=" + local,
           "--dupe_factor=2"])
  # Document ids are paths below the common input folder, so the same files
  # give the same examples from S3 as from disk.
  assert digest(read_examples(str(tmp_path / "from_s3"))) == digest(
      read_examples(local))

  # Objects are private: the owner's grant only, nothing for AllUsers,
  # whether written with one PutObject or as a multipart upload.
  for key in keys:
    grants = client.get_object_acl(Bucket="corpus", Key=key)["Grants"]
    assert [g["Permission"] for g in grants] == ["FULL_CONTROL"], (key, grants)
    assert all("URI" not in g["Grantee"] for g in grants), (key, grants)

  # inspect and report read the output where it is, with the vocabulary
  # summary.json names (on S3 too).
  shown = {}
  for tool, args in (("inspect", ["--num=1"]),
                     ("report", ["--plots_dir=" + str(tmp_path / "plots")])):
    proc_tool = subprocess.run(
        [sys.executable, "-m", "pipelines." + tool, "s3://corpus/out"] + args
        + _s3_flags(s3_server), cwd=REPO, capture_output=True, text=True,
        timeout=300, env=dict(os.environ, **s3_env, TF_CPP_MIN_LOG_LEVEL="2"))
    assert proc_tool.returncode == 0, proc_tool.stderr[-3000:]
    assert FAKE_SECRET not in proc_tool.stdout + proc_tool.stderr
    shown[tool] = proc_tool.stdout
  records = len(read_examples(local))
  assert (" %d records: every record's checksums, features and values hold"
          % records) in shown["inspect"]
  assert " record 0: " in shown["inspect"]
  assert "examples" in shown["report"]
  assert os.path.exists(str(tmp_path / "plots" / "overview.png"))

  # No credential in logs or in the summary.
  with open(tmp_path / "from_s3" / "summary.json") as f:
    summary_text = f.read()
  for text in (proc.stdout, proc.stderr, summary_text):
    assert FAKE_SECRET not in text and FAKE_KEY_ID not in text


def test_s3_megatron_dataset_matches_a_local_run(s3_server, s3_env, bucket,
                                                 tmp_path):
  """--output_format=megatron to s3://: the same .bin/.idx pair as on a
  local disk, private like every object the run writes."""
  client, paths = bucket
  run_cli(["--input=s3://corpus/in/*.txt", "--output=s3://corpus/megatron",
           "--vocab_file=s3://corpus/vocab/vocab.txt",
           "--output_format=megatron"] + _s3_flags(s3_server), env=s3_env)
  keys = _download(client, "megatron/", str(tmp_path / "from_s3"))
  assert sorted(keys) == ["megatron/summary.json",
                          "megatron/text_sentence.bin",
                          "megatron/text_sentence.idx"]
  local = str(tmp_path / "local")
  run_cli(["--input=" + ",".join(paths), "--output=" + local,
           "--output_format=megatron"])
  for name in ("text_sentence.bin", "text_sentence.idx"):
    with open(os.path.join(local, name), "rb") as a, \
        open(str(tmp_path / "from_s3" / name), "rb") as b:
      assert a.read() == b.read(), name
  for key in keys:
    grants = client.get_object_acl(Bucket="corpus", Key=key)["Grants"]
    assert [g["Permission"] for g in grants] == ["FULL_CONTROL"], (key, grants)


def test_s3_mds_matches_a_local_run(s3_server, s3_env, bucket, tmp_path):
  """--output_format=mds to s3://: the same shards and index.json as on a
  local disk."""
  client, paths = bucket
  flags = ["--output_format=mds", "--preset=roberta", "--max_seq_length=64",
           "--mds_shard_bytes=4096"]
  run_cli(["--input=s3://corpus/in/*.txt", "--output=s3://corpus/mds",
           "--vocab_file=s3://corpus/vocab/vocab.txt"] + flags
          + _s3_flags(s3_server), env=s3_env)
  keys = _download(client, "mds/", str(tmp_path / "from_s3"))
  local = str(tmp_path / "local")
  run_cli(["--input=" + ",".join(paths), "--output=" + local] + flags)
  names = sorted(n for n in os.listdir(local) if n != "summary.json")
  assert "index.json" in names and len(names) >= 2
  assert sorted(k[len("mds/"):] for k in keys) == sorted(
      names + ["summary.json"])
  for name in names:
    with open(os.path.join(local, name), "rb") as a, \
        open(str(tmp_path / "from_s3" / name), "rb") as b:
      assert a.read() == b.read(), name


def test_s3_non_empty_output_is_refused(s3_server, s3_env, bucket):
  client, _ = bucket
  client.put_object(Bucket="corpus", Key="taken/keep.txt", Body=b"keep")
  proc = run_cli(["--input=s3://corpus/in/*.txt", "--output=s3://corpus/taken",
                  "--vocab_file=s3://corpus/vocab/vocab.txt"]
                 + _s3_flags(s3_server), env=s3_env, check=False)
  assert proc.returncode == 2 and "is not empty" in proc.stderr
  keys = [o["Key"] for o in client.list_objects_v2(
      Bucket="corpus", Prefix="taken/")["Contents"]]
  assert keys == ["taken/keep.txt"]


def test_s3_missing_inputs_and_vocab_are_refused(s3_server, s3_env, bucket):
  for args, message in (
      (["--input=s3://corpus/nothing/*.txt",
        "--vocab_file=s3://corpus/vocab/vocab.txt"], "no file matches"),
      (["--input=s3://corpus/in/*.txt",
        "--vocab_file=s3://corpus/vocab/missing.txt"], "cannot read"),
  ):
    proc = run_cli(args + ["--output=s3://corpus/never"] + _s3_flags(s3_server),
                   env=s3_env, check=False)
    assert proc.returncode == 2, proc.stderr
    assert message in proc.stderr
    assert FAKE_SECRET not in proc.stderr


def _lock_kwargs(url):
  return {"endpoint_url": url, "region_name": "us-east-1"}


def test_s3_output_lock_admits_one_run(s3_server, s3_env, bucket):
  from pipelines import output_lock  # pylint: disable=import-outside-toplevel
  client, _ = bucket
  first = output_lock.OutputLock("s3://corpus/locked", _lock_kwargs(s3_server))
  first.acquire()
  try:
    second = output_lock.OutputLock("s3://corpus/locked",
                                    _lock_kwargs(s3_server))
    with pytest.raises(output_lock.OutputBusy, match="pid %d" % os.getpid()):
      second.acquire()
    # The command line is refused too, naming the holder; nothing is touched.
    proc = run_cli(["--input=s3://corpus/in/*.txt",
                    "--output=s3://corpus/locked",
                    "--vocab_file=s3://corpus/vocab/vocab.txt", "--overwrite"]
                   + _s3_flags(s3_server), env=s3_env, check=False)
    assert proc.returncode == 2, proc.stderr
    assert "in use by a running job" in proc.stderr
  finally:
    first.release()
  assert "Contents" not in client.list_objects_v2(Bucket="corpus",
                                                  Prefix="locked/")
  second.acquire()  # free again
  second.release()


def test_s3_output_lock_is_taken_over_only_from_a_gone_holder(
    s3_server, s3_env, bucket):
  import json  # pylint: disable=import-outside-toplevel
  import time  # pylint: disable=import-outside-toplevel
  from pipelines import output_lock  # pylint: disable=import-outside-toplevel
  client, _ = bucket
  me = output_lock.holder_description("someone-else")
  key = "stale/" + output_lock.LOCK_NAME
  cases = [
      # Another machine, its heartbeat fresh: still running.
      (dict(me, host="elsewhere", boot_id="b"), False),
      # Another machine, silent for longer than STALE_SECONDS: gone.
      (dict(me, host="elsewhere", boot_id="b",
            heartbeat=time.time() - output_lock.STALE_SECONDS - 5), True),
      # This machine, a process that no longer exists: gone.
      (dict(me, pid=2 ** 22 + 17), True),
  ]
  for holder, gone in cases:
    client.put_object(Bucket="corpus", Key=key,
                      Body=json.dumps(holder).encode())
    lock = output_lock.OutputLock("s3://corpus/stale", _lock_kwargs(s3_server))
    if gone:
      lock.acquire()
      body = json.loads(client.get_object(Bucket="corpus", Key=key)["Body"]
                        .read())
      assert body["run_id"] == lock.run_id
      lock.release()
    else:
      with pytest.raises(output_lock.OutputBusy, match="elsewhere"):
        lock.acquire()
  client.delete_object(Bucket="corpus", Key=key)


def test_s3_output_lock_two_at_once_one_wins(s3_server, s3_env, bucket):
  import threading  # pylint: disable=import-outside-toplevel
  from pipelines import output_lock  # pylint: disable=import-outside-toplevel
  for attempt in range(5):
    locks = [output_lock.OutputLock("s3://corpus/race%d" % attempt,
                                    _lock_kwargs(s3_server))
             for _ in range(2)]
    outcomes = []
    start = threading.Barrier(2)

    def take(lock):
      start.wait()
      try:
        lock.acquire()
        outcomes.append("held")
      except output_lock.OutputBusy:
        outcomes.append("busy")

    threads = [threading.Thread(target=take, args=(l,)) for l in locks]
    for t in threads:
      t.start()
    for t in threads:
      t.join()
    assert sorted(outcomes) == ["busy", "held"]
    for lock in locks:
      lock.release()


def test_s3_output_leaves_the_temporary_directory_as_it_was(
    s3_server, s3_env, bucket, tmp_path):
  """The pool files of an s3:// output on the DirectRunner go to a local
  temporary folder of the run's own; the (empty) TMPDIR itself stays."""
  tmp = tmp_path / "tmp"
  tmp.mkdir()
  run_cli(["--input=s3://corpus/in/*.txt", "--output=s3://corpus/tmpcheck",
           "--vocab_file=s3://corpus/vocab/vocab.txt", "--dupe_factor=1",
           "--direct_num_workers=2"] + _s3_flags(s3_server),
          env=dict(s3_env, TMPDIR=str(tmp)))
  assert tmp.is_dir() and os.listdir(tmp) == []


def test_beams_s3_filesystem_shares_one_client_per_settings(s3_server, bucket):
  """Beam builds a boto3 client for every open (transforms/s3_clients.py);
  once shared, opens with the same settings reuse one, other settings get
  their own, and reads and writes through the shared client still work."""
  from apache_beam.io.aws import s3io  # pylint: disable=import-outside-toplevel
  from apache_beam.io.filesystems import FileSystems  # pylint: disable=import-outside-toplevel
  from apache_beam.options.pipeline_options import PipelineOptions  # pylint: disable=import-outside-toplevel
  from transforms import s3_clients  # pylint: disable=import-outside-toplevel
  assert s3_clients.share_s3_clients()
  assert s3_clients.share_s3_clients()  # a second call changes nothing
  here = PipelineOptions(["--s3_endpoint_url=" + s3_server,
                          "--s3_region_name=us-east-1"])
  other = PipelineOptions(["--s3_endpoint_url=" + s3_server,
                           "--s3_region_name=eu-west-1"])
  first, second = s3io.S3IO(options=here), s3io.S3IO(options=here)
  assert first.client is not second.client  # own download state each
  assert first.client.client is second.client.client
  assert s3io.S3IO(options=other).client.client is not first.client.client
  assert s3io.S3IO(options={"s3_endpoint_url": s3_server,
                            "s3_region_name": "us-east-1"}
                   ).client.client is first.client.client

  del bucket  # the bucket "corpus" made
  before = FileSystems._pipeline_options  # pylint: disable=protected-access
  FileSystems.set_options(here)
  try:
    _write_and_read_twice_at_once(FileSystems)
  finally:
    FileSystems.set_options(before)


def _write_and_read_twice_at_once(FileSystems):  # pylint: disable=invalid-name
  path = "s3://corpus/shared-client/a.bin"
  data = os.urandom(3 << 20)
  with FileSystems.create(path) as f:
    f.write(data)
  # Two objects read at once through the one boto3 client, each from its
  # own offset: the wrappers' download positions stay apart.
  with FileSystems.open(path) as a, FileSystems.open(path) as b:
    a.seek(1 << 20)
    assert b.read(100) == data[:100]
    assert a.read(100) == data[1 << 20:(1 << 20) + 100]
    assert b.read(100) == data[100:200]


class _Calls:
  """The S3 operations the process's shared boto3 client makes while
  recorded, and the Range each asks for (botocore's
  ``before-parameter-build`` events)."""

  def __init__(self, options):
    from apache_beam.io.aws import s3io  # pylint: disable=import-outside-toplevel
    self._events = s3io.S3IO(options=options).client.client.meta.events
    self.names = []

  def _record(self, model, params, **_):
    self.names.append(model.name)
    self.ranges.append(params.get("Range"))

  def __enter__(self):
    self.names, self.ranges = [], []
    self._events.register("before-parameter-build.s3", self._record)
    return self

  def __exit__(self, *_):
    self._events.unregister("before-parameter-build.s3", self._record)


@pytest.fixture
def s3_filesystems(s3_server, bucket):
  """Beam's filesystems with this server's settings, its S3 writes and
  ranged reads lightened (transforms/s3_clients.py)."""
  from apache_beam.io.filesystems import FileSystems  # pylint: disable=import-outside-toplevel
  from apache_beam.options.pipeline_options import PipelineOptions  # pylint: disable=import-outside-toplevel
  from transforms import s3_clients  # pylint: disable=import-outside-toplevel
  del bucket  # the bucket "corpus" made
  assert s3_clients.share_s3_clients()
  options = PipelineOptions(["--s3_endpoint_url=" + s3_server,
                             "--s3_region_name=us-east-1"])
  before = FileSystems._pipeline_options  # pylint: disable=protected-access
  FileSystems.set_options(options)
  try:
    yield FileSystems, _Calls(options)
  finally:
    FileSystems.set_options(before)


def _write_in_pieces(FileSystems, path, data):  # pylint: disable=invalid-name
  with FileSystems.create(path) as f:
    for at in range(0, len(data), 300_001):  # pieces of uneven size
      f.write(data[at:at + 300_001])


def test_s3_writes_put_a_small_object_whole_and_a_large_one_in_parts(
    s3_filesystems, bucket):
  """Beam's S3 writer starts a multipart upload on opening: three requests
  for any object, and no empty one. Lightened, an object of less than one
  part is one PutObject, a larger one is uploaded in PART_BYTES parts, and
  every size reads back as written."""
  from transforms import s3_clients  # pylint: disable=import-outside-toplevel
  FileSystems, calls = s3_filesystems  # pylint: disable=invalid-name
  client, _ = bucket
  part = s3_clients.PART_BYTES
  data = os.urandom(2 * part + 12345)
  expected = {0: ["PutObject"], 1: ["PutObject"], part - 1: ["PutObject"],
              part: ["CreateMultipartUpload", "UploadPart",
                     "CompleteMultipartUpload"],
              2 * part + 12345: ["CreateMultipartUpload"]
              + ["UploadPart"] * 3 + ["CompleteMultipartUpload"]}
  for size, operations in expected.items():
    path = "s3://corpus/lean-writes/%d.bin" % size
    with calls:
      _write_in_pieces(FileSystems, path, data[:size])
    assert calls.names == operations, size
    got = client.get_object(Bucket="corpus", Key=path[len("s3://corpus/"):])
    assert got["Body"].read() == data[:size], size
  assert client.list_multipart_uploads(Bucket="corpus").get(
      "Uploads", []) == []


def test_s3_write_to_a_missing_bucket_fails_on_close(s3_filesystems):
  """The upload starts late, so a write that cannot land fails when the
  file is closed, with the error S3 gave, never silently."""
  from apache_beam.io.aws.clients.s3 import messages  # pylint: disable=import-outside-toplevel
  FileSystems, _ = s3_filesystems  # pylint: disable=invalid-name
  f = FileSystems.create("s3://no-such-bucket-here/x.bin")
  f.write(b"abc")
  with pytest.raises(messages.S3ClientError, match="PutObject operation"):
    f.close()


def test_s3_ranged_reads_ask_only_for_their_bytes(s3_filesystems, bucket):
  """``paths.read_bytes`` on S3: one GetObject for exactly the bytes asked
  for, no HeadObject; a missing object is FileNotFoundError."""
  from transforms import paths  # pylint: disable=import-outside-toplevel
  FileSystems, calls = s3_filesystems  # pylint: disable=invalid-name
  client, _ = bucket
  data = os.urandom(100_000)
  client.put_object(Bucket="corpus", Key="ranged/a.bin", Body=data)
  path = "s3://corpus/ranged/a.bin"
  with calls:
    assert paths.read_bytes(path) == data
    assert paths.read_bytes(path, 123) == data[123:]
    assert paths.read_bytes(path, 123, 4567) == data[123:4567]
    assert paths.read_bytes(path, 99_990, 200_000) == data[99_990:]
    assert paths.read_bytes(path, 50, 50) == b""
  assert calls.names == ["GetObject"] * 4
  with pytest.raises(FileNotFoundError, match="ranged/missing.bin"):
    paths.read_bytes("s3://corpus/ranged/missing.bin", 0, 10)
  del FileSystems


def test_an_s3_object_reader_asks_nothing_past_the_end(s3_filesystems,
                                                       bucket):
  """``s3_clients.ObjectReader`` under a BufferedReader: one GetObject per
  buffer, none once a short one has shown where the object ends; its
  ``readall`` is one request; a seek back reads again."""
  import io  # pylint: disable=import-outside-toplevel
  from transforms import s3_clients  # pylint: disable=import-outside-toplevel
  _, calls = s3_filesystems
  client, _ = bucket
  data = os.urandom(20_000)
  client.put_object(Bucket="corpus", Key="reader/a.bin", Body=data)
  path = "s3://corpus/reader/a.bin"
  with calls:
    f = io.BufferedReader(s3_clients.ObjectReader(path), 8192)
    assert f.read(100) == data[:100]
    got = [f.read(5000) for _ in range(6)]
    assert b"".join(got) == data[100:] and got[-2:] == [b"", b""]
    assert f.read() == b""
    assert calls.ranges == ["bytes=0-8191", "bytes=8192-16383",
                            "bytes=16384-24575"]
    f.seek(100)  # back before what the buffer holds: asked for again
    assert f.read() == data[100:]
  assert calls.ranges[3:] == ["bytes=100-"]
  with calls:
    raw = s3_clients.ObjectReader(path)
    raw.seek(5)
    assert raw.readall() == data[5:] and raw.read(10) == b""
    raw.seek(-10, io.SEEK_END)
    assert raw.read(100) == data[-10:]
  assert calls.names == ["GetObject", "GetObject"]


def test_an_s3_read_that_breaks_off_is_tried_again(s3_filesystems, bucket,
                                                   monkeypatch):
  """A read cut short (an error with no HTTP status) is tried again, up to
  ``_GET_TRIES`` times in all; then it fails naming the object."""
  from apache_beam.io.aws import s3io  # pylint: disable=import-outside-toplevel
  from transforms import paths, s3_clients  # pylint: disable=import-outside-toplevel
  FileSystems, _ = s3_filesystems  # pylint: disable=invalid-name
  client, _ = bucket
  client.put_object(Bucket="corpus", Key="flaky/a.bin", Body=b"0123456789")
  shared = s3io.S3IO(options=FileSystems._pipeline_options).client.client  # pylint: disable=protected-access
  real, breaks = shared.get_object, []

  def flaky(**kwargs):
    if len(breaks) < breaks_wanted[0]:
      breaks.append(kwargs.get("Range"))
      raise ConnectionResetError("connection reset by peer")
    return real(**kwargs)

  breaks_wanted = [s3_clients._GET_TRIES - 1]  # pylint: disable=protected-access
  monkeypatch.setattr(s3_clients, "_GET_BACKOFF_S", 0.0)
  monkeypatch.setattr(shared, "get_object", flaky)
  assert paths.read_bytes("s3://corpus/flaky/a.bin", 2, 5) == b"234"
  assert breaks == ["bytes=2-4"] * (s3_clients._GET_TRIES - 1)  # pylint: disable=protected-access
  breaks.clear()
  breaks_wanted[0] = s3_clients._GET_TRIES  # pylint: disable=protected-access
  with pytest.raises(OSError, match="flaky/a.bin.*connection reset"):
    paths.read_bytes("s3://corpus/flaky/a.bin", 2, 5)


def test_an_s3_input_range_is_read_in_two_bounded_requests(
    s3_filesystems, bucket, tmp_path):
  """A 1 MiB range of an uncompressed S3 file: a GetObject for the binary
  probe and one for the range with the lines around it, no HeadObject, and
  the same documents as from a local copy (Beam's S3 reader asks for 16 MiB
  from each of the two opens)."""
  from apache_beam.io.range_trackers import OffsetRangeTracker  # pylint: disable=import-outside-toplevel
  from transforms import reading  # pylint: disable=import-outside-toplevel
  _, calls = s3_filesystems
  client, _ = bucket
  rng = random.Random(5)
  words = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta"]
  docs = [("\n".join(" ".join(rng.choice(words) for _ in range(
      rng.randint(3, 40))) for _ in range(rng.randint(1, 30))))
          for _ in range(4000)]
  local = tmp_path / "c.txt"
  local.write_text("\n\n".join(docs) + "\n")
  assert local.stat().st_size > 3 << 20
  client.upload_file(str(local), "corpus", "ranges-in/c.txt")
  mib = 1 << 20

  def read(path, root):
    source = reading.DocumentSource(path, root=root)
    return list(source.read_records(path, OffsetRangeTracker(mib, 2 * mib)))

  with calls:
    from_s3 = read("s3://corpus/ranges-in/c.txt", "s3://corpus/ranges-in")
  assert from_s3 == read(str(local), str(tmp_path))
  assert 100 < len(from_s3) < 4000
  assert calls.names == ["GetObject", "GetObject"]
  probe, whole = calls.ranges
  assert probe == "bytes=0-%d" % (reading.BINARY_PROBE_BYTES - 1)
  first, last = (int(n) for n in whole[len("bytes="):].split("-"))
  assert first == mib - 1 and last - first + 1 <= 4 * mib


def test_a_killed_runs_unfinished_uploads_are_aborted(s3_server, s3_env,
                                                      bucket):
  """A worker killed while writing leaves a multipart upload that no listing
  shows; the next run on that output aborts the ones below it, and no
  other."""
  client, _ = bucket
  key = "killed/part-00003-of-00008.tfrecord"
  stale = client.create_multipart_upload(Bucket="corpus", Key=key)
  client.upload_part(Bucket="corpus", Key=key, UploadId=stale["UploadId"],
                     PartNumber=1, Body=b"x" * 1024)
  client.create_multipart_upload(Bucket="corpus", Key="killed-too/x")
  proc = run_cli(["--input=s3://corpus/in/*.txt", "--output=s3://corpus/killed",
                  "--vocab_file=s3://corpus/vocab/vocab.txt",
                  "--dupe_factor=1"] + _s3_flags(s3_server), env=s3_env)
  assert "aborted 1 unfinished S3 uploads below s3://corpus/killed" in (
      proc.stderr)
  left = client.list_multipart_uploads(Bucket="corpus").get("Uploads", [])
  assert [u["Key"] for u in left] == ["killed-too/x"]
