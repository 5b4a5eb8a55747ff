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

output "job_command" {
  description = "Runs a job on the cluster from the operator's machine (corpus under s3://BUCKET/corpus/)."
  value = join(" ", [
    "python -m pipelines.mlm",
    "--input='s3://${aws_s3_bucket.data.bucket}/corpus/*'",
    "--output=s3://${aws_s3_bucket.data.bucket}/output/run-1",
    "--runner=FlinkRunner",
    "--flink_master=http://${aws_instance.jobmanager.public_ip}:8081",
    "--flink_submit_uber_jar",
    "--flink_version=1.20",
    "--environment_type=EXTERNAL",
    "--environment_config=localhost:50000",
    "--s3_region_name=${var.region}",
    "--parallelism=${var.taskmanager_count * 8}",
  ])
}
