data "aws_caller_identity" "current" {}

resource "aws_kms_key" "data" {
  description             = "${var.name}: corpora and pretraining output"
  deletion_window_in_days = 30
  enable_key_rotation     = true

  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      {
        Sid       = "AccountAdministers"
        Effect    = "Allow"
        Principal = { AWS = "arn:aws:iam::${data.aws_caller_identity.current.account_id}:root" }
        Action    = "kms:*"
        Resource  = "*"
      },
      {
        Sid       = "FlowLogsDelivery"
        Effect    = "Allow"
        Principal = { Service = "delivery.logs.amazonaws.com" }
        Action    = ["kms:GenerateDataKey*", "kms:Decrypt"]
        Resource  = "*"
      }
    ]
  })
}

resource "aws_s3_bucket" "data" {
  #checkov:skip=CKV_AWS_18:Access logs would need a second bucket per cluster; CloudTrail data events cover audit needs for this bucket.
  #checkov:skip=CKV_AWS_144:Cross-region replication doubles storage cost for data that is re-creatable from the corpus.
  #checkov:skip=CKV2_AWS_62:No consumer of S3 event notifications; jobs are started by the operator.
  bucket_prefix = "${var.name}-data-"
  force_destroy = false
}

resource "aws_s3_bucket_ownership_controls" "data" {
  bucket = aws_s3_bucket.data.id

  rule {
    # ACLs are disabled: every object belongs to the bucket owner and is
    # private, whatever a writer asks for.
    object_ownership = "BucketOwnerEnforced"
  }
}

resource "aws_s3_bucket_public_access_block" "data" {
  bucket                  = aws_s3_bucket.data.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_server_side_encryption_configuration" "data" {
  bucket = aws_s3_bucket.data.id

  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm     = "aws:kms"
      kms_master_key_id = aws_kms_key.data.arn
    }
    bucket_key_enabled = true
  }
}

resource "aws_s3_bucket_versioning" "data" {
  bucket = aws_s3_bucket.data.id

  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_lifecycle_configuration" "data" {
  bucket = aws_s3_bucket.data.id

  rule {
    id     = "expire-old-versions-and-uploads"
    status = "Enabled"

    filter {}

    noncurrent_version_expiration {
      noncurrent_days = 30
    }

    abort_incomplete_multipart_upload {
      days_after_initiation = 7
    }
  }
}

# The nodes install this project from the bucket at boot; the upload is a
# resource the instances depend on, so no node boots before its wheel is
# there.
resource "aws_s3_object" "project_wheel" {
  bucket      = aws_s3_bucket.data.id
  key         = "dist/${basename(var.project_wheel)}"
  source      = var.project_wheel
  source_hash = filemd5(var.project_wheel)
  kms_key_id  = aws_kms_key.data.arn

  depends_on = [aws_s3_bucket_server_side_encryption_configuration.data]
}
