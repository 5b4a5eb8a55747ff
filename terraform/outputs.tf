output "flink_ui_url" {
  description = "The Flink web UI (and REST API), reachable from admin_cidr only."
  value       = "http://${aws_instance.jobmanager.public_ip}:8081"
}

output "bucket_name" {
  description = "The private, encrypted, versioned bucket for corpora and output."
  value       = aws_s3_bucket.data.bucket
}

output "taskmanager_private_ips" {
  description = "Private addresses of the TaskManagers."
  value       = aws_instance.taskmanager[*].private_ip
}

output "job_endpoint" {
  description = "Beam's job server on the JobManager host (its artifact service is on the port below), reachable from admin_cidr only."
  value       = "${aws_instance.jobmanager.public_ip}:${local.job_port}"
}

output "job_command" {
  description = "Runs a job on the cluster from the operator's machine (corpus under s3://BUCKET/corpus/): the command shape tests/test_flink_hosts.py runs on the local multi-host cluster."
  value = join(" ", [
    "python -m pipelines.mlm",
    "--input='s3://${aws_s3_bucket.data.bucket}/corpus/*'",
    "--output=s3://${aws_s3_bucket.data.bucket}/output/run-1",
    "--runner=PortableRunner",
    "--job_endpoint=${aws_instance.jobmanager.public_ip}:${local.job_port}",
    "--parallelism=${var.taskmanager_count * (var.taskmanager_slots == null ? 8 : var.taskmanager_slots)}",
    "--s3_region_name=${var.region}",
  ])
}
