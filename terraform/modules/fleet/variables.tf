variable "name" {
  description = "Name of the ECS cluster and prefix of services, task families and log groups."
  type        = string

  validation {
    condition     = can(regex("^[a-zA-Z0-9_-]{1,200}$", var.name))
    error_message = "name must be 1-200 characters of [a-zA-Z0-9_-]."
  }
}

variable "image" {
  description = "The fleet image (`<repo>:<tag>` or `<repo>@sha256:...`), built from the repository's Dockerfile for linux/arm64. It holds backup-producer, backup-worker and backupctl in /usr/local/bin."
  type        = string

  validation {
    condition     = length(var.image) > 0 && !endswith(var.image, ":latest")
    error_message = "image must be set and must not use the mutable `latest` tag (deployments would not be reproducible)."
  }
}

variable "producer_image" {
  description = "Image of the producer service when it must differ from `image` (two-phase upgrades: new workers first, then the producer). Null: `image`."
  type        = string
  default     = null

  validation {
    condition     = var.producer_image == null || !endswith(coalesce(var.producer_image, "x"), ":latest")
    error_message = "producer_image must not use the mutable `latest` tag."
  }
}

variable "adot_image" {
  description = "Image of the AWS Distro for OpenTelemetry collector sidecar."
  type        = string
  default     = "public.ecr.aws/aws-observability/aws-otel-collector:v0.43.3"

  validation {
    condition     = !endswith(var.adot_image, ":latest")
    error_message = "adot_image must be pinned to a version tag or digest."
  }
}

variable "subnet_ids" {
  description = "Private subnets for the tasks (no public IP is assigned: they need a NAT gateway or VPC endpoints for SQS, DynamoDB, S3, EC2, RDS, KMS, EventBridge, Secrets Manager, CloudWatch Logs, X-Ray and ECR). Workers running logical backups also need a route to the databases and drill scratch servers."
  type        = list(string)

  validation {
    condition     = length(var.subnet_ids) > 0
    error_message = "At least one subnet is required."
  }
}

variable "security_group_ids" {
  description = "Security groups of the tasks (nothing connects to them). Egress 443 to the AWS APIs; with logical PostgreSQL backups, also egress to each database's and drill scratch server's port (5432), which those servers' own security groups must admit from these groups."
  type        = list(string)

  validation {
    condition     = length(var.security_group_ids) > 0
    error_message = "At least one security group is required."
  }
}

variable "execution_role_arn" {
  description = "ECS task execution role (from the `iam` module)."
  type        = string
}

variable "producer_role_arn" {
  description = "Producer task role (from the `iam` module)."
  type        = string
}

variable "worker_role_arn" {
  description = "Worker task role (from the `iam` module)."
  type        = string
}

variable "kms_key_arn" {
  description = "KMS key encrypting the log groups (its policy must admit CloudWatch Logs; the `kms` module's does)."
  type        = string
}

variable "log_retention_days" {
  description = "Retention of the fleet's log groups, in days."
  type        = number
  default     = 365

  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.log_retention_days)
    error_message = "log_retention_days must be a value CloudWatch Logs accepts (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653)."
  }
}

# --- the fleet's configuration (env) -----------------------------------------------------------

variable "task_queue_url" {
  description = "BACKUP_TASK_QUEUE_URL."
  type        = string
}

variable "task_queue_name" {
  description = "Name of the task queue (autoscaling metric dimension)."
  type        = string
}

variable "task_dlq_url" {
  description = "BACKUP_TASK_DLQ_URL."
  type        = string
}

variable "events_queue_url" {
  description = "BACKUP_EVENT_QUEUE_URL."
  type        = string
}

variable "events_dlq_url" {
  description = "BACKUP_EVENT_DLQ_URL."
  type        = string
}

variable "state_table_name" {
  description = "BACKUP_STATE_TABLE."
  type        = string
}

variable "catalog_table_name" {
  description = "BACKUP_CATALOG_TABLE."
  type        = string
}

variable "event_bus_name" {
  description = "BACKUP_EVENT_BUS."
  type        = string
}

variable "policy_toml" {
  description = "The backup policy TOML text, passed inline as BACKUP_POLICY. Set this or policy_file."
  type        = string
  default     = null
}

variable "policy_file" {
  description = "Path of the policy file inside the container (BACKUP_POLICY_FILE), for images that bake the policy in. Set this or policy_toml."
  type        = string
  default     = null
}

variable "log_format" {
  description = "BACKUP_LOG_FORMAT."
  type        = string
  default     = "json"

  validation {
    condition     = contains(["json", "text"], var.log_format)
    error_message = "log_format must be json or text."
  }
}

variable "worker_runtime" {
  description = <<-EOT
    Worker tuning, passed as BACKUP_CONCURRENCY, BACKUP_VISIBILITY_TIMEOUT_SECS, BACKUP_LEASE_SECS,
    BACKUP_HEARTBEAT_SECS, BACKUP_DRAIN_DEADLINE_SECS and BACKUP_RUNTIME_THREADS; stop_timeout_seconds
    is the container's ECS stopTimeout (SIGTERM -> SIGKILL), which must exceed the drain deadline.
  EOT
  type = object({
    concurrency                = optional(number, 16)
    visibility_timeout_seconds = optional(number, 60)
    lease_seconds              = optional(number, 60)
    heartbeat_seconds          = optional(number, 20)
    drain_deadline_seconds     = optional(number, 25)
    stop_timeout_seconds       = optional(number, 30)
    runtime_threads            = optional(number, 1)
  })
  default = {}

  validation {
    condition     = var.worker_runtime.runtime_threads >= 1 && var.worker_runtime.runtime_threads <= 64
    error_message = "worker_runtime.runtime_threads must be between 1 and 64."
  }

  validation {
    condition     = var.worker_runtime.stop_timeout_seconds > var.worker_runtime.drain_deadline_seconds
    error_message = "worker_runtime.stop_timeout_seconds must be greater than drain_deadline_seconds, or ECS kills workers mid-drain."
  }

  validation {
    condition     = var.worker_runtime.stop_timeout_seconds >= 2 && var.worker_runtime.stop_timeout_seconds <= 120
    error_message = "worker_runtime.stop_timeout_seconds must be between 2 and 120 (the Fargate maximum)."
  }

  validation {
    condition     = var.worker_runtime.visibility_timeout_seconds >= 2 * var.worker_runtime.heartbeat_seconds
    error_message = "worker_runtime.visibility_timeout_seconds must be at least 2 x heartbeat_seconds."
  }

  validation {
    condition     = var.worker_runtime.lease_seconds >= 2 * var.worker_runtime.heartbeat_seconds
    error_message = "worker_runtime.lease_seconds must be at least 2 x heartbeat_seconds (the heartbeat renews the lease; the worker refuses to start otherwise)."
  }

  validation {
    condition     = var.worker_runtime.concurrency >= 1 && var.worker_runtime.concurrency <= 1024
    error_message = "worker_runtime.concurrency must be between 1 and 1024."
  }
}

variable "otel_resource_attributes" {
  description = "Extra OpenTelemetry resource attributes (OTEL_RESOURCE_ATTRIBUTES), e.g. { \"deployment.environment\" = \"prod\" }. `service.namespace` is set to `name`."
  type        = map(string)
  default     = {}
}

variable "metrics_namespace" {
  description = "CloudWatch namespace the ADOT sidecar writes the fleet's OTLP metrics to (the monitoring module reads it)."
  type        = string
  default     = "BackupFleet"
}

variable "coverage_interval_seconds" {
  description = "Seconds between the producer's coverage passes (BACKUP_COVERAGE_INTERVAL_SECS): each discovers every EBS volume, EC2 instance, RDS instance and cluster and S3 bucket in the regions the plans name, classifies it against the catalog and the latest runs, and publishes `coverage_resources{status, resource_type}`. 0 turns coverage off (then set the monitoring module's coverage_interval_seconds to 0 too, or its coverage alarm reports the missing data)."
  type        = number
  default     = 3600

  validation {
    # Under 5 minutes a pass would repeat the account-wide Describe/List calls and the full
    # catalog scan faster than coverage can change; over 12 hours the monitoring module's alarm
    # period (twice the interval) would pass a day, and a gap would go unnoticed for that long.
    condition     = var.coverage_interval_seconds == 0 || (var.coverage_interval_seconds >= 300 && var.coverage_interval_seconds <= 43200 && floor(var.coverage_interval_seconds) == var.coverage_interval_seconds)
    error_message = "coverage_interval_seconds must be 0 (off) or a whole number of seconds from 300 to 43200."
  }
}

variable "pg_sslmode" {
  description = "libpq sslmode of the worker's PostgreSQL connections (logical backups and drills), BACKUP_PG_SSLMODE: disable, allow, prefer, require, verify-ca or verify-full. `require` encrypts but does not check the server's certificate; `verify-full` also checks it and the host name, and needs PGSSLROOTCERT (worker_extra_environment) naming a CA bundle inside the image (for RDS, its global bundle), which the repository's Dockerfile does not ship."
  type        = string
  default     = "require"

  validation {
    condition     = contains(["disable", "allow", "prefer", "require", "verify-ca", "verify-full"], var.pg_sslmode)
    error_message = "pg_sslmode must be one of libpq's sslmodes: disable, allow, prefer, require, verify-ca, verify-full."
  }
}

variable "dump_part_mib" {
  description = "Base size in MiB of a logical dump's S3 upload parts, BACKUP_DUMP_PART_MIB (5-5120): each running dump holds one part in memory (parts grow by this size every 1,000 parts; S3 allows 10,000, so the 16 MiB default reaches the limit at about 440 GiB of dump). Size worker_memory for worker_runtime.concurrency dumps at once."
  type        = number
  default     = 16

  validation {
    condition     = var.dump_part_mib >= 5 && var.dump_part_mib <= 5120 && floor(var.dump_part_mib) == var.dump_part_mib
    error_message = "dump_part_mib must be a whole number of MiB from 5 to 5120 (S3's part sizes)."
  }
}

variable "producer_extra_environment" {
  description = "Additional environment variables for the producer container (e.g. RUST_LOG)."
  type        = map(string)
  default     = {}
}

variable "worker_extra_environment" {
  description = "Additional environment variables for the worker container (e.g. RUST_LOG)."
  type        = map(string)
  default     = {}
}

# --- sizing and deployment ---------------------------------------------------------------------

variable "producer_command" {
  description = "Arguments of the producer container (entry point /usr/local/bin/backup-producer)."
  type        = list(string)
  default     = ["serve"]
}

variable "worker_command" {
  description = "Arguments of the worker container (entry point /usr/local/bin/backup-worker)."
  type        = list(string)
  default     = []
}

variable "producer_cpu" {
  description = "Fargate CPU units of the producer task (sidecar included)."
  type        = number
  default     = 256
}

variable "producer_memory" {
  description = "Fargate memory (MiB) of the producer task (sidecar included)."
  type        = number
  default     = 512
}

variable "producer_stop_timeout_seconds" {
  description = "stopTimeout of the producer container (SIGTERM -> SIGKILL)."
  type        = number
  default     = 30

  validation {
    condition     = var.producer_stop_timeout_seconds >= 2 && var.producer_stop_timeout_seconds <= 120
    error_message = "producer_stop_timeout_seconds must be between 2 and 120."
  }
}

variable "worker_cpu" {
  description = "Fargate CPU units of a worker task (sidecar included)."
  type        = number
  default     = 1024
}

variable "worker_memory" {
  description = "Fargate memory (MiB) of a worker task (sidecar included)."
  type        = number
  default     = 2048
}

variable "producer_deployment_minimum_healthy_percent" {
  description = "Producer deployments: lower bound of running tasks, in percent of desired (100: the new producer starts before the old one stops)."
  type        = number
  default     = 100
}

variable "producer_deployment_maximum_percent" {
  description = "Producer deployments: upper bound of running tasks, in percent of desired."
  type        = number
  default     = 200
}

variable "worker_deployment_minimum_healthy_percent" {
  description = "Worker deployments: lower bound of running tasks, in percent of desired. 100 keeps full capacity while old workers drain."
  type        = number
  default     = 100

  validation {
    condition     = var.worker_deployment_minimum_healthy_percent >= 0 && var.worker_deployment_minimum_healthy_percent <= 100
    error_message = "worker_deployment_minimum_healthy_percent must be between 0 and 100."
  }
}

variable "worker_deployment_maximum_percent" {
  description = "Worker deployments: upper bound of running tasks, in percent of desired."
  type        = number
  default     = 200

  validation {
    condition     = var.worker_deployment_maximum_percent >= 100 && var.worker_deployment_maximum_percent <= 400
    error_message = "worker_deployment_maximum_percent must be between 100 and 400."
  }
}

variable "wait_for_steady_state" {
  description = "Make `terraform apply` wait until both services reach a steady state (and fail if the circuit breaker rolls back)."
  type        = bool
  default     = true
}

# --- worker autoscaling ------------------------------------------------------------------------

variable "worker_min_capacity" {
  description = "Minimum number of worker tasks (at least 1: backlog per task divides by the running count)."
  type        = number
  default     = 1

  validation {
    condition     = var.worker_min_capacity >= 1
    error_message = "worker_min_capacity must be at least 1."
  }
}

variable "worker_max_capacity" {
  description = "Maximum number of worker tasks."
  type        = number
  default     = 20

  validation {
    condition     = var.worker_max_capacity >= 1
    error_message = "worker_max_capacity must be at least 1."
  }
}

variable "worker_target_backlog_per_task" {
  description = "Target of the scaling policy: visible task messages per running worker task. About concurrency x acceptable wait / mean task duration."
  type        = number
  default     = 16

  validation {
    condition     = var.worker_target_backlog_per_task > 0
    error_message = "worker_target_backlog_per_task must be positive."
  }
}

# --- worker capacity: Fargate Spot above an on-demand base ------------------------------------

variable "worker_on_demand_base" {
  description = "Worker tasks that always run on on-demand FARGATE before any weight applies (the FARGATE provider's `base`). With the default 1 and worker_min_capacity 1, the last worker is never a Spot task."
  type        = number
  default     = 1

  validation {
    condition     = var.worker_on_demand_base >= 0 && var.worker_on_demand_base <= 100000 && floor(var.worker_on_demand_base) == var.worker_on_demand_base
    error_message = "worker_on_demand_base must be a whole number between 0 and 100000."
  }
}

variable "worker_on_demand_weight" {
  description = "Relative share of the worker tasks above `worker_on_demand_base` placed on on-demand FARGATE (the FARGATE provider's `weight`). With the defaults (1 on-demand to 3 Spot) a quarter of the extra workers are on-demand, so work still progresses while Fargate Spot has no capacity. 0: everything above the base on Spot."
  type        = number
  default     = 1

  validation {
    condition     = var.worker_on_demand_weight >= 0 && var.worker_on_demand_weight <= 1000 && floor(var.worker_on_demand_weight) == var.worker_on_demand_weight
    error_message = "worker_on_demand_weight must be a whole number between 0 and 1000."
  }
}

variable "worker_spot_weight" {
  description = "Relative share of the worker tasks above `worker_on_demand_base` placed on FARGATE_SPOT (the FARGATE_SPOT provider's `weight`). 0: workers run on on-demand FARGATE only."
  type        = number
  default     = 3

  validation {
    condition     = var.worker_spot_weight >= 0 && var.worker_spot_weight <= 1000 && floor(var.worker_spot_weight) == var.worker_spot_weight
    error_message = "worker_spot_weight must be a whole number between 0 and 1000."
  }
}

variable "worker_scale_in_cooldown_seconds" {
  description = "Cooldown after a scale-in, in seconds."
  type        = number
  default     = 300
}

variable "worker_scale_out_cooldown_seconds" {
  description = "Cooldown after a scale-out, in seconds."
  type        = number
  default     = 60
}

variable "tags" {
  description = "Tags applied to the cluster, services, task definitions and log groups."
  type        = map(string)
  default     = {}
}
