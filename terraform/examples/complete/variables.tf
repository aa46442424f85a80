variable "region" {
  description = "AWS Region of the fleet."
  type        = string
}

variable "dr_region" {
  description = "DR Region for the replica bucket (used only when replication_enabled). Must differ from region."
  type        = string
}

variable "name" {
  description = "Name of the deployment; prefixes every resource (queues, tables, bus, cluster, roles...)."
  type        = string
  default     = "backup-fleet"

  validation {
    condition     = can(regex("^[a-z0-9-]{1,32}$", var.name))
    error_message = "name must be 1-32 characters of [a-z0-9-]."
  }
}

variable "environment" {
  description = "Environment label (tags and the OpenTelemetry `deployment.environment` attribute)."
  type        = string
  default     = "prod"
}

variable "tags" {
  description = "Extra tags for every resource. Do not use the `backup-fleet:` prefix: it is reserved for the artifacts the fleet creates."
  type        = map(string)
  default     = {}

  validation {
    condition     = alltrue([for k in keys(var.tags) : !startswith(k, "backup-fleet:")])
    error_message = "Tag keys starting with `backup-fleet:` are reserved for backup artifacts (the worker's IAM conditions rely on them)."
  }
}

variable "image" {
  description = "The fleet image in ECR, `<account>.dkr.ecr.<region>.amazonaws.com/backup-fleet:<tag>` (linux/arm64)."
  type        = string
}

variable "producer_image" {
  description = "Producer image when it must differ from `image` during a two-phase upgrade (docs/DEPLOY.md). Null: `image`."
  type        = string
  default     = null
}

variable "ecr_repository_arns" {
  description = "ARNs of the ECR repositories the image is pulled from (execution role)."
  type        = list(string)
}

variable "subnet_ids" {
  description = "Private subnets of the ECS tasks."
  type        = list(string)
}

variable "security_group_ids" {
  description = "Security groups of the ECS tasks."
  type        = list(string)
}

variable "key_administrator_arns" {
  description = "IAM principals that administer the KMS keys."
  type        = list(string)
  default     = []
}

variable "rules_file" {
  description = "File (relative to this directory) with the ingest rules printed by `backup-producer rules --json`."
  type        = string
  default     = "rules.json"
}

variable "policy_file" {
  description = "File (relative to this directory) with the backup policy TOML; passed inline as BACKUP_POLICY."
  type        = string
  default     = "policy.toml"
}

# --- queues (defaults equal `backupctl bootstrap`'s) --------------------------------------------

variable "task_visibility_timeout_seconds" {
  description = "Task queue visibility timeout (also BACKUP_VISIBILITY_TIMEOUT_SECS). >= 2 x heartbeat."
  type        = number
  default     = 60
}

variable "task_max_receive_count" {
  description = "Task queue maxReceiveCount before the DLQ."
  type        = number
  default     = 10
}

variable "task_message_retention_seconds" {
  description = "Task queue retention (4 days)."
  type        = number
  default     = 345600
}

variable "receive_wait_time_seconds" {
  description = "Long-poll wait of both queues."
  type        = number
  default     = 20
}

variable "events_visibility_timeout_seconds" {
  description = "Events queue visibility timeout."
  type        = number
  default     = 60
}

variable "events_max_receive_count" {
  description = "Events queue maxReceiveCount before the DLQ."
  type        = number
  default     = 5
}

variable "events_message_retention_seconds" {
  description = "Events queue retention (4 days)."
  type        = number
  default     = 345600
}

variable "dlq_message_retention_seconds" {
  description = "Retention of both DLQs (14 days)."
  type        = number
  default     = 1209600
}

# --- worker ---------------------------------------------------------------------------------------

variable "worker_runtime" {
  description = "Worker tuning (concurrency, lease, heartbeat, drain deadline, stop timeout); see the fleet module. visibility_timeout_seconds is taken from task_visibility_timeout_seconds."
  type = object({
    concurrency                = optional(number, 16)
    visibility_timeout_seconds = optional(number, 60)
    lease_seconds              = optional(number, 60)
    heartbeat_seconds          = optional(number, 20)
    drain_deadline_seconds     = optional(number, 25)
    stop_timeout_seconds       = optional(number, 30)
  })
  default = {}

  validation {
    condition     = var.worker_runtime.stop_timeout_seconds > var.worker_runtime.drain_deadline_seconds
    error_message = "worker_runtime.stop_timeout_seconds must be greater than drain_deadline_seconds."
  }
}

variable "worker_min_capacity" {
  description = "Minimum worker tasks."
  type        = number
  default     = 1
}

variable "worker_max_capacity" {
  description = "Maximum worker tasks."
  type        = number
  default     = 20
}

variable "worker_target_backlog_per_task" {
  description = "Autoscaling target: visible task messages per running worker."
  type        = number
  default     = 16
}

variable "worker_on_demand_base" {
  description = "Worker tasks always on on-demand FARGATE; the rest are split by the weights below (see the fleet module)."
  type        = number
  default     = 1
}

variable "worker_on_demand_weight" {
  description = "Share of the workers above the base on on-demand FARGATE."
  type        = number
  default     = 1
}

variable "worker_spot_weight" {
  description = "Share of the workers above the base on FARGATE_SPOT (0: no Spot)."
  type        = number
  default     = 3
}

variable "pg_sslmode" {
  description = "libpq sslmode of logical backups and drills (BACKUP_PG_SSLMODE): disable, allow, prefer, require, verify-ca, verify-full. verify-full needs PGSSLROOTCERT and the RDS CA bundle in the image (see the fleet module and docs/DEPLOY.md)."
  type        = string
  default     = "require"

  validation {
    condition     = contains(["disable", "allow", "prefer", "require", "verify-ca", "verify-full"], var.pg_sslmode)
    error_message = "pg_sslmode must be one of libpq's sslmodes: disable, allow, prefer, require, verify-ca, verify-full."
  }
}

variable "dump_part_mib" {
  description = "Base size in MiB of a logical dump's upload parts (BACKUP_DUMP_PART_MIB, 5-5120): memory per running dump."
  type        = number
  default     = 16
}

variable "worker_extra_environment" {
  description = "Additional environment variables of the worker container, e.g. { PGSSLROOTCERT = \"/etc/ssl/certs/rds-global-bundle.pem\" } with pg_sslmode = \"verify-full\" (the file must be in the image)."
  type        = map(string)
  default     = {}
}

# --- sources --------------------------------------------------------------------------------------

variable "source_bucket_arns" {
  description = "S3 buckets the fleet backs up (worker read access)."
  type        = list(string)
  default     = []
}

variable "s3_inventory_bucket_arns" {
  description = "Destination buckets of the source buckets' S3 Inventory reports (scans from the latest inventory instead of listing): the worker may list them and read their objects. Add the reports' SSE-KMS key, if any, to source_kms_key_arns; a destination in another account must allow the worker role in its bucket policy."
  type        = list(string)
  default     = []
}

variable "eventbridge_notification_bucket_names" {
  description = "Source buckets to turn EventBridge notifications on for (their `Object Created` events feed the producer). The module takes over their whole notification configuration."
  type        = list(string)
  default     = []
}

variable "source_kms_key_arns" {
  description = "KMS keys of encrypted source volumes, snapshots and buckets (worker use and grants)."
  type        = list(string)
  default     = []
}

variable "database_secret_arns" {
  description = "Secrets Manager secrets of the PostgreSQL databases the worker dumps (each postgres-db database's `secret_arn`) and of the scratch servers restore drills restore into (`drill.scratch_secret_arn`): the only secrets the worker may read."
  type        = list(string)
  default     = []
}

variable "database_secret_kms_key_arns" {
  description = "Customer managed KMS keys encrypting those secrets (decrypt through Secrets Manager only). Empty when they use aws/secretsmanager."
  type        = list(string)
  default     = []
}

variable "operator_principal_arns" {
  description = "IAM roles/users allowed to assume the operator role (`backupctl`). Empty: any principal of the account whose own policy allows it."
  type        = list(string)
  default     = []
}

# --- RDS snapshot exports -------------------------------------------------------------------------

variable "rds_export_prefix" {
  description = "Prefix of the backup bucket that snapshot exports go under: the policy's export.prefix (default `_rds-exports`). The export role writes, and the worker deletes expired exports, only there."
  type        = string
  default     = "_rds-exports"
}

variable "rds_export_kms_key_arns" {
  description = "KMS keys exports are encrypted with (the policy's export.kms_key), when not the fleet's data key or a source_kms_key_arns key (those already allow it): the worker gets kms:CreateGrant and kms:DescribeKey on them through RDS."
  type        = list(string)
  default     = []
}

# --- other accounts (issue 15; terraform/README.md, "Cross-account backups") ---------------------

variable "member_role_arns" {
  description = "Member roles the plans' `accounts` name (each member account's member-account module output `role_arn`): the producer, worker and operator roles may assume exactly these. Empty: the fleet acts in its own account only."
  type        = list(string)
  default     = []
}

variable "backup_account_role_arns" {
  description = "Vault roles of the isolated backup accounts that `copy_to` entries with an account_id copy into (the backup-account module output `role_arn`): the worker and operator roles may assume exactly these, and the worker may share snapshots with their accounts only."
  type        = list(string)
  default     = []
}

variable "backup_account_bucket_arns" {
  description = "Object Lock buckets of backup accounts that plans write S3 backups into (the backup-account module output `bucket_arn`; its writer_role_arns must list the worker role). Add their vault keys to source_kms_key_arns."
  type        = list(string)
  default     = []
}

# --- backup bucket --------------------------------------------------------------------------------

variable "backup_bucket_name" {
  description = "Name of the backup bucket (globally unique)."
  type        = string
}

variable "object_lock_mode" {
  description = "Object Lock default retention mode: GOVERNANCE or COMPLIANCE."
  type        = string
  default     = "GOVERNANCE"
}

variable "object_lock_days" {
  description = "Object Lock default retention, in days."
  type        = number
  default     = 30
}

variable "tier_transitions" {
  description = "Lifecycle transitions of S3 backups per backup tier (daily, weekly, monthly, yearly, event, manual): an ordered list of `{ days, storage_class }` each (see the backup-bucket module). Null: the module's defaults."
  type = map(list(object({
    days          = number
    storage_class = string
  })))
  default = null
}

variable "replica_transitions" {
  description = "Lifecycle transitions of the DR copies: an ordered list of `{ days, storage_class }`. Null: the module's default."
  type = list(object({
    days          = number
    storage_class = string
  }))
  default = null
}

variable "noncurrent_version_expiration_days" {
  description = "Days after which non-current backup versions expire; at least the minimum storage duration of every class they can be in (180 with DEEP_ARCHIVE transitions). Null: the module's default (90)."
  type        = number
  default     = null
}

variable "replication_enabled" {
  description = "Replicate the backup bucket to dr_region."
  type        = bool
  default     = false
}

# --- coverage -------------------------------------------------------------------------------------

variable "coverage_interval_seconds" {
  description = "Seconds between the producer's coverage passes (every resource in the plans' regions classified, `coverage_resources` published, the coverage-gaps alarm fed); 0 turns coverage and its alarms off. See the fleet and monitoring modules."
  type        = number
  default     = 3600
}

variable "coverage_alarm_on_unprotected" {
  description = "Also alarm (a warning) when a coverage pass finds resources no plan selects."
  type        = bool
  default     = false
}

# --- alerts ---------------------------------------------------------------------------------------

variable "alert_email_addresses" {
  description = "E-mail addresses subscribed to the alerts topic."
  type        = list(string)
  default     = []
}
