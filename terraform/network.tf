# Nothing here is reachable from the internet: the nodes sit in a private
# subnet (no public IPs) and reach out through a NAT gateway, and the
# operator reaches them through AWS Systems Manager (outputs.tf).
locals {
  create_vpc = var.vpc_id == null
  vpc_id     = local.create_vpc ? aws_vpc.this[0].id : var.vpc_id
  subnet_id  = local.create_vpc ? aws_subnet.private[0].id : data.aws_subnet.given[0].id
}

# A subnet of an existing VPC: checked to be in that VPC and not to hand out
# public IPs. Its route to the internet (a NAT gateway) is the owner's.
data "aws_subnet" "given" {
  count = local.create_vpc ? 0 : 1
  id    = var.subnet_id

  lifecycle {
    precondition {
      condition     = var.subnet_id != null
      error_message = "subnet_id is required with vpc_id: a private subnet whose route table sends 0.0.0.0/0 to a NAT gateway."
    }
    postcondition {
      condition     = self.vpc_id == var.vpc_id && !self.map_public_ip_on_launch
      error_message = "subnet_id must be a private subnet of vpc_id (map_public_ip_on_launch off): the nodes get no public IP."
    }
  }
}

resource "aws_vpc" "this" {
  count                = local.create_vpc ? 1 : 0
  cidr_block           = var.vpc_cidr
  enable_dns_support   = true
  enable_dns_hostnames = true

  tags = { Name = var.name }
}

# The VPC's default security group allows nothing; the cluster uses its own.
resource "aws_default_security_group" "this" {
  count  = local.create_vpc ? 1 : 0
  vpc_id = aws_vpc.this[0].id
}

resource "aws_flow_log" "this" {
  count                = local.create_vpc ? 1 : 0
  vpc_id               = aws_vpc.this[0].id
  traffic_type         = "REJECT"
  log_destination_type = "s3"
  log_destination      = "${aws_s3_bucket.data.arn}/vpc-flow-logs/"
}

resource "aws_internet_gateway" "this" {
  count  = local.create_vpc ? 1 : 0
  vpc_id = aws_vpc.this[0].id

  tags = { Name = var.name }
}

# The public subnet holds the NAT gateway only; no instance is placed here.
resource "aws_subnet" "public" {
  count                   = local.create_vpc ? 1 : 0
  vpc_id                  = aws_vpc.this[0].id
  cidr_block              = cidrsubnet(var.vpc_cidr, 8, 0)
  availability_zone       = var.availability_zone
  map_public_ip_on_launch = false

  tags = { Name = "${var.name}-public" }
}

resource "aws_route_table" "public" {
  count  = local.create_vpc ? 1 : 0
  vpc_id = aws_vpc.this[0].id

  route {
    cidr_block = "0.0.0.0/0"
    gateway_id = aws_internet_gateway.this[0].id
  }

  tags = { Name = "${var.name}-public" }
}

resource "aws_route_table_association" "public" {
  count          = local.create_vpc ? 1 : 0
  subnet_id      = aws_subnet.public[0].id
  route_table_id = aws_route_table.public[0].id
}

resource "aws_eip" "nat" {
  count  = local.create_vpc ? 1 : 0
  domain = "vpc"

  tags = { Name = "${var.name}-nat" }
}

# Outbound only: the nodes download Java, Python packages (PyPI), Flink
# (PyPI) and the job server's jars (Maven Central) at boot, and the SSM agent
# reaches Systems Manager through it.
resource "aws_nat_gateway" "this" {
  count         = local.create_vpc ? 1 : 0
  allocation_id = aws_eip.nat[0].id
  subnet_id     = aws_subnet.public[0].id

  tags       = { Name = var.name }
  depends_on = [aws_internet_gateway.this]
}

# The nodes' subnet, in the NAT gateway's availability zone (no cross-zone
# traffic charges).
resource "aws_subnet" "private" {
  count                   = local.create_vpc ? 1 : 0
  vpc_id                  = aws_vpc.this[0].id
  cidr_block              = cidrsubnet(var.vpc_cidr, 8, 1)
  availability_zone       = aws_subnet.public[0].availability_zone
  map_public_ip_on_launch = false

  tags = { Name = "${var.name}-private" }
}

resource "aws_route_table" "private" {
  count  = local.create_vpc ? 1 : 0
  vpc_id = aws_vpc.this[0].id

  route {
    cidr_block     = "0.0.0.0/0"
    nat_gateway_id = aws_nat_gateway.this[0].id
  }

  tags = { Name = "${var.name}-private" }
}

resource "aws_route_table_association" "private" {
  count          = local.create_vpc ? 1 : 0
  subnet_id      = aws_subnet.private[0].id
  route_table_id = aws_route_table.private[0].id
}

# S3 (the corpus, the output, the wheel and Amazon Linux's package
# repositories) bypasses the NAT gateway: a gateway endpoint has no hourly or
# per-GB charge, the NAT gateway charges per GB.
resource "aws_vpc_endpoint" "s3" {
  count             = local.create_vpc ? 1 : 0
  vpc_id            = aws_vpc.this[0].id
  service_name      = "com.amazonaws.${var.region}.s3"
  vpc_endpoint_type = "Gateway"
  route_table_ids   = [aws_route_table.private[0].id]

  tags = { Name = "${var.name}-s3" }
}
