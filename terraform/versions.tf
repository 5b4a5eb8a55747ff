terraform {
  required_version = ">= 1.5.0, < 2.0.0"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 5.80"
    }
  }
}

provider "aws" {
  region = var.region

  default_tags {
    tags = {
      Project = "mlm-pipeline"
      Cluster = var.name
    }
  }
}

# What the nodes run: the versions runners/flink_node.py pins and the local
# cluster of the tests runs (Flink from PyPI, Beam's Flink job server from
# Maven Central), and the Beam Python SDK that setup.py pins. A node whose
# versions differ from runners/ stops at boot with an error line;
# tests/test_terraform.py renders the cloud-init and checks they agree.
locals {
  flink_version      = "1.19.3"
  job_server_version = "2.62.0"
  beam_version       = "2.77.0"
  rest_port          = 8081
  job_port           = 8099
}
