# Amazon Linux 2023, newest x86_64 image, looked up at plan time. It ships
# the SSM agent, which the operator's port forwarding goes through. The nodes
# sit in the private subnet (network.tf) and get no public IP.
data "aws_ami" "al2023" {
  most_recent = true
  owners      = ["amazon"]

  filter {
    name   = "name"
    values = ["al2023-ami-2023.*-x86_64"]
  }

  filter {
    name   = "architecture"
    values = ["x86_64"]
  }

  filter {
    name   = "virtualization-type"
    values = ["hvm"]
  }
}

locals {
  # Java, the venv with this project's wheel, Flink and the job server.
  common_script = templatefile("${path.module}/cloud-init/common.sh.tftpl", {
    flink_version      = local.flink_version
    job_server_version = local.job_server_version
    beam_version       = local.beam_version
    bucket             = aws_s3_bucket.data.bucket
    project_wheel_key  = aws_s3_object.project_wheel.key
    project_wheel_name = basename(var.project_wheel)
    project_wheel_md5  = filemd5(var.project_wheel)
    region             = var.region
  })
}

resource "aws_instance" "jobmanager" {
  ami                         = data.aws_ami.al2023.id
  instance_type               = var.jobmanager_instance_type
  subnet_id                   = local.subnet_id
  vpc_security_group_ids      = [aws_security_group.cluster.id]
  iam_instance_profile        = aws_iam_instance_profile.node.name
  key_name                    = var.key_name
  associate_public_ip_address = false
  monitoring                  = true
  ebs_optimized               = true

  metadata_options {
    http_tokens   = "required"
    http_endpoint = "enabled"
  }

  root_block_device {
    volume_type = "gp3"
    volume_size = var.root_volume_gb
    encrypted   = true
  }

  user_data = templatefile("${path.module}/cloud-init/jobmanager.yaml.tftpl", {
    common_script     = local.common_script
    jobmanager_memory = "1600m"
    rest_port         = local.rest_port
    job_port          = local.job_port
    restart_attempts  = var.host_return.restart_attempts
    restart_delay_s   = var.host_return.restart_delay_s
    slot_timeout_s    = var.host_return.slot_timeout_s
  })
  # The wheel's checksum is in user_data: a new wheel boots new nodes.
  user_data_replace_on_change = true
  # Not before the way out for the boot's downloads (NAT gateway, S3
  # endpoint) and the operator's way in (SSM) are there.
  depends_on = [aws_s3_object.project_wheel, aws_route_table_association.private, aws_vpc_endpoint.s3, aws_iam_role_policy_attachment.ssm_core]

  tags = { Name = "${var.name}-jobmanager", Role = "jobmanager" }
}

resource "aws_instance" "taskmanager" {
  count                       = var.taskmanager_count
  ami                         = data.aws_ami.al2023.id
  instance_type               = var.taskmanager_instance_type
  subnet_id                   = local.subnet_id
  vpc_security_group_ids      = [aws_security_group.cluster.id]
  iam_instance_profile        = aws_iam_instance_profile.node.name
  key_name                    = var.key_name
  associate_public_ip_address = false
  monitoring                  = true
  ebs_optimized               = true

  metadata_options {
    http_tokens   = "required"
    http_endpoint = "enabled"
  }

  root_block_device {
    volume_type = "gp3"
    volume_size = var.root_volume_gb
    encrypted   = true
  }

  user_data = templatefile("${path.module}/cloud-init/taskmanager.yaml.tftpl", {
    common_script        = local.common_script
    jobmanager_address   = aws_instance.jobmanager.private_ip
    taskmanager_memory   = var.taskmanager_memory
    taskmanager_off_heap = var.taskmanager_off_heap
    taskmanager_slots    = var.taskmanager_slots == null ? 0 : var.taskmanager_slots
    rest_port            = local.rest_port
  })
  user_data_replace_on_change = true
  # Not before the way out for the boot's downloads (NAT gateway, S3
  # endpoint) and the operator's way in (SSM) are there.
  depends_on = [aws_s3_object.project_wheel, aws_route_table_association.private, aws_vpc_endpoint.s3, aws_iam_role_policy_attachment.ssm_core]

  tags = { Name = "${var.name}-taskmanager-${count.index}", Role = "taskmanager" }
}
