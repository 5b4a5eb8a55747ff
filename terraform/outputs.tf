# Nothing listens on a public address: the operator forwards the JobManager
# host's ports to the same ports on localhost through AWS Systems Manager
# Session Manager (AWS CLI and its session-manager-plugin on the operator's
# machine), then uses localhost.
locals {
  # Flink's REST API and web UI, and Beam's job server with its artifact and
  # expansion services on the two ports below the job port
  # (runners/flink_node.py starts it so).
  forwarded_ports = {
    flink_rest_ui     = local.rest_port
    job_server        = local.job_port
    artifact_service  = local.job_port - 1
    expansion_service = local.job_port - 2
  }
  ssm_session = "aws ssm start-session --region ${var.region} --target ${aws_instance.jobmanager.id}"
}

output "port_forward_commands" {
  description = "One Session Manager port forward per port, each left running in its own terminal: flink_rest_ui for the web UI and REST API, job_server and artifact_service for job_command, expansion_service only for cross-language transforms."
  value = {
    for name, port in local.forwarded_ports : name =>
    "${local.ssm_session} --document-name AWS-StartPortForwardingSession --parameters portNumber=${port},localPortNumber=${port}"
  }
}

output "ssh_tunnel_command" {
  description = "With key_name: every port of port_forward_commands in one SSH tunnel that stays up while idle (keepalives), SSH itself carried by Session Manager (no port 22 open). Null without a key pair."
  value = var.key_name == null ? null : join(" ", concat(
    [
      "ssh -N -i ~/.ssh/${var.key_name}.pem",
      # Keepalives: Session Manager ends a session idle for its idle timeout.
      "-o ServerAliveInterval=60",
      "-o ProxyCommand='aws ssm start-session --region ${var.region} --target %h --document-name AWS-StartSSHSession --parameters portNumber=%p'",
    ],
    [for port in values(local.forwarded_ports) : "-L ${port}:localhost:${port}"],
    ["ec2-user@${aws_instance.jobmanager.id}"],
  ))
}

output "flink_ui_url" {
  description = "The Flink web UI and REST API, on the operator's machine while port_forward_commands.flink_rest_ui runs."
  value       = "http://localhost:${local.rest_port}"
}

output "bucket_name" {
  description = "The private, encrypted, versioned bucket for corpora and output."
  value       = aws_s3_bucket.data.bucket
}

output "jobmanager_instance_id" {
  description = "The JobManager host, the target of the port forwards; aws ssm start-session --target ID opens a shell on it."
  value       = aws_instance.jobmanager.id
}

output "taskmanager_instance_ids" {
  description = "The TaskManager hosts; aws ssm start-session --target ID opens a shell on one."
  value       = aws_instance.taskmanager[*].id
}

output "taskmanager_private_ips" {
  description = "Private addresses of the TaskManagers."
  value       = aws_instance.taskmanager[*].private_ip
}

output "job_endpoint" {
  description = "Beam's job server, on the operator's machine while port_forward_commands.job_server and .artifact_service run."
  value       = "localhost:${local.job_port}"
}

output "job_command" {
  description = "Runs a job on the cluster from the operator's machine (corpus under s3://BUCKET/corpus/) while the job server, artifact service and REST port are forwarded: the command shape tests/test_flink_hosts.py runs on the local multi-host cluster. The artifact endpoint (localhost:8098) and the REST API for progress (localhost:8081) follow from --job_endpoint (runners/flink.py)."
  value = join(" ", [
    "python -m pipelines.mlm",
    "--input='s3://${aws_s3_bucket.data.bucket}/corpus/*'",
    "--output=s3://${aws_s3_bucket.data.bucket}/output/run-1",
    "--runner=PortableRunner",
    "--job_endpoint=localhost:${local.job_port}",
    "--parallelism=${var.taskmanager_count * (var.taskmanager_slots == null ? 8 : var.taskmanager_slots)}",
    "--s3_region_name=${var.region}",
  ])
}
