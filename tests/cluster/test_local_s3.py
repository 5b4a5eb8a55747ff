"""runners/local_s3.py: the SeaweedFS S3 server of the tests and benchmarks
starts, answers every S3 call the pipeline and its output lock make (with
any access key, whatever AWS_* keys the starting process has), and leaves
nothing behind however its ``with`` ends: no process of its group, no data
directory, no unix socket in /tmp. SeaweedFS lacked nothing checked here,
so no test needs moto's server."""

import json
import os
import socket
import tempfile
import threading
import urllib.request

import boto3
import botocore
import psutil
import pytest

from runners import local_s3
from tests.helpers import environment

pytestmark = pytest.mark.s3

# Set before the server starts: it must not take them as its only identity.
STARTER_KEYS = {"AWS_ACCESS_KEY_ID": "AKIASTARTERKEY000000",
                "AWS_SECRET_ACCESS_KEY": "starter-secret",
                "AWS_DEFAULT_REGION": "us-east-1"}


def _client(url, key_id="AKIAANYKEYATALL00000", secret="any/secret+key"):
  return boto3.client("s3", endpoint_url=url, region_name="us-east-1",
                      aws_access_key_id=key_id, aws_secret_access_key=secret)


def _server_process(url):
  """The ``weed`` process serving ``url``, found by its command line."""
  port = url.rsplit(":", 1)[1]
  found = []
  for proc in psutil.process_iter(["cmdline"]):
    cmdline = proc.info["cmdline"] or []
    if cmdline and os.path.basename(cmdline[0]) == "weed" and (
        "-s3.port=" + port) in cmdline:
      found.append(proc)
  assert len(found) == 1, found
  return found[0]


def _traces(url):
  """What must be gone once the server is: its process group, data
  directory and unix sockets."""
  proc = _server_process(url)
  flags = dict(a.lstrip("-").split("=", 1) for a in proc.cmdline()
               if a.startswith("-") and "=" in a)
  sockets = ["/tmp/seaweedfs-%s-grpc-%s.sock"
             % (role, flags[role + ".port.grpc"])
             for role in ("master", "volume", "filer", "s3")]
  assert os.path.isdir(flags["dir"])
  # The data directory is one per try in a temporary directory of its own.
  return {"pgid": os.getpgid(proc.pid), "pid": proc.pid,
          "dir": os.path.dirname(flags["dir"]), "sockets": sockets}


def _assert_gone(traces):
  assert not psutil.pid_exists(traces["pid"])
  in_group = []
  for proc in psutil.process_iter():
    try:
      if os.getpgid(proc.pid) == traces["pgid"]:
        in_group.append(proc)
    except OSError:
      pass
  assert in_group == []
  assert traces["dir"].startswith(tempfile.gettempdir())
  assert not os.path.exists(traces["dir"])
  for path in traces["sockets"]:
    assert not os.path.exists(path), path


def test_local_s3_serves_s3_calls_with_any_key_and_cleans_up():
  with environment(STARTER_KEYS):
    with local_s3.server() as url:
      traces = _traces(url)
      assert url.startswith("http://127.0.0.1:")
      s3 = _client(url)
      s3.create_bucket(Bucket="corpus")
      with pytest.raises(botocore.exceptions.ClientError,
                         match="InvalidBucketName"):
        s3.create_bucket(Bucket="ab")  # 3 characters at least

      body = bytes(range(256)) * 40
      s3.put_object(Bucket="corpus", Key="in/a.bin", Body=body)
      s3.put_object(Bucket="corpus", Key="in/b.txt", Body=b"b")
      got = s3.get_object(Bucket="corpus", Key="in/a.bin")["Body"].read()
      assert got == body
      part = s3.get_object(Bucket="corpus", Key="in/a.bin",
                           Range="bytes=1000-1099")["Body"].read()
      assert part == body[1000:1100]
      # Another key pair reads what this one wrote: no identities.
      other = _client(url, "AKIAANOTHERKEY000000", "another")
      assert other.head_object(Bucket="corpus",
                               Key="in/b.txt")["ContentLength"] == 1
      listed = s3.list_objects_v2(Bucket="corpus", Prefix="in/")["Contents"]
      assert [o["Key"] for o in listed] == ["in/a.bin", "in/b.txt"]
      s3.delete_object(Bucket="corpus", Key="in/b.txt")
      listed = s3.list_objects_v2(Bucket="corpus", Prefix="in/")["Contents"]
      assert [o["Key"] for o in listed] == ["in/a.bin"]
      with pytest.raises(botocore.exceptions.ClientError, match="NoSuchKey"):
        s3.get_object(Bucket="corpus", Key="in/b.txt")

      # Multipart (Beam writes small files so) and copies, both private.
      upload = s3.create_multipart_upload(Bucket="corpus", Key="out/mp")
      parts = []
      for number, chunk in ((1, b"x" * (5 << 20)), (2, b"tail")):
        etag = s3.upload_part(Bucket="corpus", Key="out/mp", Body=chunk,
                              UploadId=upload["UploadId"],
                              PartNumber=number)["ETag"]
        parts.append({"ETag": etag, "PartNumber": number})
      s3.complete_multipart_upload(Bucket="corpus", Key="out/mp",
                                   UploadId=upload["UploadId"],
                                   MultipartUpload={"Parts": parts})
      assert s3.head_object(Bucket="corpus",
                            Key="out/mp")["ContentLength"] == (5 << 20) + 4
      s3.copy_object(Bucket="corpus", Key="out/copy",
                     CopySource={"Bucket": "corpus", "Key": "in/a.bin"})
      for key in ("in/a.bin", "out/mp", "out/copy"):
        grants = s3.get_object_acl(Bucket="corpus", Key=key)["Grants"]
        assert [g["Permission"] for g in grants] == ["FULL_CONTROL"]
        assert all("URI" not in g["Grantee"] for g in grants)
    _assert_gone(traces)


def _status(e):
  return e.value.response["ResponseMetadata"]["HTTPStatusCode"]


def test_local_s3_gives_each_bucket_one_volume():
  """A new bucket takes one volume, not SeaweedFS's default seven: the
  server holds as many 1 GB volumes as its free disk has room for, and at
  seven a bucket a test session's third bucket found none left on a disk
  with 20 GB free (PutObject: InternalError)."""
  with local_s3.server() as url:
    client = _client(url)
    for i in range(4):
      client.create_bucket(Bucket="bucket-%d" % i)
      client.put_object(Bucket="bucket-%d" % i, Key="k", Body=b"text")
    flags = dict(a.lstrip("-").split("=", 1)
                 for a in _server_process(url).cmdline()
                 if a.startswith("-") and "=" in a)
    with urllib.request.urlopen("http://%s:%s/dir/status" % (
        flags["ip"], flags["master.port"]), timeout=10) as r:
      topology = json.loads(r.read())["Topology"]
    layouts = {l["collection"]: l["writables"] for l in topology["Layouts"]}
    assert {name: len(volumes) for name, volumes in layouts.items()} == {
        "bucket-%d" % i: 1 for i in range(4)}


def test_local_s3_has_the_conditional_writes_of_the_output_lock():
  """pipelines/output_lock.py: create only if absent (If-None-Match: *),
  overwrite only the version read (If-Match: ETag), and of several writers
  at once exactly one wins."""
  with local_s3.server() as url:
    s3 = _client(url)
    s3.create_bucket(Bucket="locks")
    first = s3.put_object(Bucket="locks", Key="_LOCK", Body=b"1",
                          IfNoneMatch="*")["ETag"]
    with pytest.raises(botocore.exceptions.ClientError) as e:
      s3.put_object(Bucket="locks", Key="_LOCK", Body=b"2", IfNoneMatch="*")
    assert _status(e) == 412
    with pytest.raises(botocore.exceptions.ClientError) as e:
      s3.put_object(Bucket="locks", Key="_LOCK", Body=b"2",
                    IfMatch='"0123456789abcdef0123456789abcdef"')
    assert _status(e) == 412
    s3.put_object(Bucket="locks", Key="_LOCK", Body=b"3", IfMatch=first)
    assert s3.get_object(Bucket="locks", Key="_LOCK")["Body"].read() == b"3"

    clients = [_client(url) for _ in range(6)]
    for attempt in range(10):
      key = "race%d/_LOCK" % attempt
      winners = []
      start = threading.Barrier(len(clients))

      def put(client, key=key, winners=winners, start=start):
        start.wait()
        try:
          client.put_object(Bucket="locks", Key=key, Body=b"x",
                            IfNoneMatch="*")
          winners.append(client)
        except botocore.exceptions.ClientError as e:
          assert e.response["ResponseMetadata"]["HTTPStatusCode"] == 412

      threads = [threading.Thread(target=put, args=(c,)) for c in clients]
      for t in threads:
        t.start()
      for t in threads:
        t.join()
      assert len(winners) == 1, attempt


@pytest.mark.parametrize("error", [RuntimeError, KeyboardInterrupt])
def test_local_s3_is_stopped_when_the_body_raises(error):
  with pytest.raises(error):
    with local_s3.server() as url:
      traces = _traces(url)
      raise error("the body failed")
  _assert_gone(traces)


def test_local_s3_on_another_address():
  """On a given address (the Flink hosts' bridge in
  tests/cluster/test_flink_hosts.py). ``weed`` listens on loopback too, on
  the same ports, and nowhere else."""
  with local_s3.server("127.0.0.2") as url:
    assert url.startswith("http://127.0.0.2:")
    s3 = _client(url)
    s3.create_bucket(Bucket="bridge")
    s3.put_object(Bucket="bridge", Key="k", Body=b"v")
    assert s3.get_object(Bucket="bridge", Key="k")["Body"].read() == b"v"
    traces = _traces(url)
    listening = [c.laddr for c in psutil.Process(traces["pid"])
                 .net_connections(kind="tcp") if c.status == psutil.CONN_LISTEN]
    on_host = sorted(a.port for a in listening if a.ip == "127.0.0.2")
    assert len(on_host) == 8 and int(url.rsplit(":", 1)[1]) in on_host
    assert {a.ip for a in listening} <= {"127.0.0.2", "127.0.0.1"}
  _assert_gone(traces)


def test_local_s3_starts_again_when_a_port_is_taken_meanwhile(monkeypatch):
  """A port found free may be taken before ``weed`` binds it: that server
  exits, and another starts on other ports."""
  taken = socket.socket()
  choose = local_s3._free_ports  # pylint: disable=protected-access
  calls = []

  def first_one_taken(host, count):
    ports = choose(host, count)
    if not calls:
      taken.bind((host, ports[2]))  # the volume server's
      taken.listen()
    calls.append(ports)
    return ports

  monkeypatch.setattr(local_s3, "_free_ports", first_one_taken)
  with taken:
    with local_s3.server() as url:
      _client(url).create_bucket(Bucket="again")
      assert len(calls) == 2 and url.endswith(":%d" % calls[1][0])


def test_local_s3_that_does_not_start_leaves_nothing(monkeypatch, tmp_path):
  monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
  with pytest.raises(RuntimeError, match="did not start .*not ready in 0.5 s"):
    with local_s3.server(timeout=0.5):
      pass
  assert os.listdir(tmp_path) == []
  mine = [p for p in psutil.Process().children(recursive=True)
          if p.name() == "weed"]
  assert mine == []
