variable "region" {
  type        = string
  description = "AWS region of the cluster and the bucket."
  default     = "us-east-1"
}

variable "name" {
  type        = string
  description = "Name prefix of every resource (lower case, digits, dashes)."
  default     = "mlm-flink"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{2,30}$", var.name))
    error_message = "name must be 3-31 characters: lower-case letters, digits and dashes, starting with a letter."
  }
}

variable "vpc_id" {
  type        = string
  description = "An existing VPC to use. Null creates a new VPC: a private subnet for the nodes, a public one for its NAT gateway, and an S3 gateway endpoint."
  default     = null
}

variable "subnet_id" {
  type        = string
  description = "A private subnet of vpc_id (no public IPs on launch) whose route table sends 0.0.0.0/0 to a NAT gateway: the nodes download Java, Python packages, Flink and the job server at boot and reach Systems Manager. Required with vpc_id."
  default     = null

  validation {
    condition     = var.subnet_id == null || can(regex("^subnet-[0-9a-f]+$", var.subnet_id))
    error_message = "subnet_id must look like subnet-0123abcd."
  }
}

variable "vpc_cidr" {
  type        = string
  description = "CIDR of the VPC created when vpc_id is null."
  default     = "10.42.0.0/16"

  validation {
    condition     = can(cidrhost(var.vpc_cidr, 0))
    error_message = "vpc_cidr must be a valid IPv4 CIDR."
  }
}

variable "availability_zone" {
  type        = string
  description = "Availability zone of the subnets (and NAT gateway) created when vpc_id is null; null lets AWS choose."
  default     = null
}

variable "jobmanager_instance_type" {
  type        = string
  description = "EC2 instance type of the Flink JobManager."
  default     = "m6i.large"
}

variable "taskmanager_instance_type" {
  type        = string
  description = "EC2 instance type of each Flink TaskManager (the Python work runs here)."
  default     = "c6i.2xlarge"
}

variable "taskmanager_count" {
  type        = number
  description = "Number of TaskManager instances."
  default     = 2

  validation {
    condition     = var.taskmanager_count >= 1 && var.taskmanager_count <= 100 && floor(var.taskmanager_count) == var.taskmanager_count
    error_message = "taskmanager_count must be a whole number from 1 to 100."
  }
}

variable "taskmanager_slots" {
  type        = number
  description = "Task slots per TaskManager; one Python worker runs per slot. Null means one per vCPU."
  default     = null
}

variable "taskmanager_memory" {
  type        = string
  description = "Flink taskmanager.memory.process.size, e.g. \"12g\". The Python workers use memory outside it."
  default     = "4g"

  validation {
    condition     = can(regex("^[0-9]+[mg]$", var.taskmanager_memory))
    error_message = "taskmanager_memory must be a size such as 4096m or 4g."
  }
}

variable "root_volume_gb" {
  type        = number
  description = "Size of each node's encrypted gp3 root volume, in GB."
  default     = 50

  validation {
    condition     = var.root_volume_gb >= 20 && var.root_volume_gb <= 16384
    error_message = "root_volume_gb must be between 20 and 16384."
  }
}

variable "key_name" {
  type        = string
  description = "An existing EC2 key pair for SSH through Systems Manager (outputs.tf prints the tunnel command; no port is opened). Null: Session Manager only."
  default     = null
}

variable "taskmanager_off_heap" {
  type        = string
  description = "Flink taskmanager.memory.task.off-heap.size: direct memory for Beam's gRPC channels to the Python workers."
  default     = "512m"

  validation {
    condition     = can(regex("^[0-9]+[mg]$", var.taskmanager_off_heap))
    error_message = "taskmanager_off_heap must be a size such as 512m or 1g."
  }
}

variable "project_wheel" {
  type        = string
  description = "Path, on the operator's machine, of this project's wheel (python -m pip wheel --no-deps -w dist .). The module uploads it to the bucket before any node boots; a new wheel replaces the nodes."
  default     = "../dist/mlm_pipeline-0.1.0-py3-none-any.whl"

  validation {
    condition     = endswith(var.project_wheel, ".whl") && fileexists(var.project_wheel)
    error_message = "project_wheel must name a built .whl file: run python -m pip wheel --no-deps -w dist . in the project first."
  }
}

variable "host_return" {
  type = object({
    restart_attempts = number
    restart_delay_s  = number
    slot_timeout_s   = number
  })
  description = "How long a job waits for a lost TaskManager host to come back (systemd restarts its services; a replaced instance rejoins): Flink restarts the stages a lost host ran on the slots left or on the host once back, each restart waiting up to slot_timeout_s for a slot, restart_delay_s apart (failures within one delay count as one restart). A host that stays away only slows the job; with no TaskManager left and none back, the job fails after about restart_attempts * (restart_delay_s + slot_timeout_s) seconds. Whole numbers; the defaults are runners/flink_node.py's."
  default = {
    restart_attempts = 10
    restart_delay_s  = 10
    slot_timeout_s   = 60
  }

  validation {
    condition     = alltrue([for v in values(var.host_return) : floor(v) == v]) && var.host_return.restart_attempts >= 1 && var.host_return.restart_delay_s >= 1 && var.host_return.slot_timeout_s >= 10
    error_message = "host_return needs whole numbers: restart_attempts >= 1, restart_delay_s >= 1 (Flink's smallest restart backoff) and slot_timeout_s >= 10."
  }
}
