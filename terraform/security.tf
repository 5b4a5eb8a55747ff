resource "aws_security_group" "cluster" {
  name        = "${var.name}-cluster"
  description = "Flink cluster: UI/REST, job server and SSH from admin_cidr only; all traffic between members"
  vpc_id      = local.vpc_id

  tags = { Name = "${var.name}-cluster" }
}

resource "aws_vpc_security_group_ingress_rule" "flink_ui" {
  security_group_id = aws_security_group.cluster.id
  description       = "Flink web UI and REST API (job submission) from the operator"
  cidr_ipv4         = var.admin_cidr
  ip_protocol       = "tcp"
  from_port         = 8081
  to_port           = 8081
}

resource "aws_vpc_security_group_ingress_rule" "job_server" {
  security_group_id = aws_security_group.cluster.id
  description       = "Beam job server: artifact staging (8098) and job service (8099) from the operator"
  cidr_ipv4         = var.admin_cidr
  ip_protocol       = "tcp"
  from_port         = local.job_port - 1
  to_port           = local.job_port
}

resource "aws_vpc_security_group_ingress_rule" "ssh" {
  count             = var.key_name == null ? 0 : 1
  security_group_id = aws_security_group.cluster.id
  description       = "SSH from the operator, only when a key pair is given"
  cidr_ipv4         = var.admin_cidr
  ip_protocol       = "tcp"
  from_port         = 22
  to_port           = 22
}

resource "aws_vpc_security_group_ingress_rule" "within_cluster" {
  security_group_id            = aws_security_group.cluster.id
  description                  = "Flink RPC, blob server, data exchange between cluster members"
  referenced_security_group_id = aws_security_group.cluster.id
  ip_protocol                  = "-1"
}

resource "aws_vpc_security_group_egress_rule" "all" {
  security_group_id = aws_security_group.cluster.id
  description       = "Package downloads at boot (Flink, Java, PyPI) and S3"
  cidr_ipv4         = "0.0.0.0/0"
  ip_protocol       = "-1"
}
