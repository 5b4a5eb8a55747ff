# No inbound rule from any address range: the Flink REST API and Beam's job
# server run whatever code reaches them, unauthenticated, so nothing outside
# the cluster can open a connection. The operator comes in through AWS
# Systems Manager (the SSM agent connects out; outputs.tf prints the
# port-forwarding commands).
resource "aws_security_group" "cluster" {
  name        = "${var.name}-cluster"
  description = "Flink cluster: all traffic between members, nothing inbound from elsewhere (operator access through SSM)"
  vpc_id      = local.vpc_id

  tags = { Name = "${var.name}-cluster" }
}

resource "aws_vpc_security_group_ingress_rule" "within_cluster" {
  security_group_id            = aws_security_group.cluster.id
  description                  = "Flink RPC, blob server, data exchange between cluster members"
  referenced_security_group_id = aws_security_group.cluster.id
  ip_protocol                  = "-1"
}

resource "aws_vpc_security_group_egress_rule" "all" {
  security_group_id = aws_security_group.cluster.id
  description       = "Out through the NAT gateway and the S3 endpoint: package downloads at boot, S3, Systems Manager"
  cidr_ipv4         = "0.0.0.0/0"
  ip_protocol       = "-1"
}
