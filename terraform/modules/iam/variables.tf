variable "name" {
  description = "Name prefix of the roles: `<name>-execution`, `<name>-worker`, `<name>-producer`, `<name>-operator`, `<name>-rds-export`."
  type        = string

  validation {
    condition     = can(regex("^[a-zA-Z0-9+=,.@_-]{1,50}$", var.name))
    error_message = "name must be 1-50 characters valid in an IAM role name."
  }
}

variable "task_queue_arn" {
  description = "ARN of the task queue."
  type        = string
}

variable "task_dlq_arn" {
  description = "ARN of the task DLQ."
  type        = string
}

variable "events_queue_arn" {
  description = "ARN of the events queue."
  type        = string
}

variable "events_dlq_arn" {
  description = "ARN of the events DLQ."
  type        = string
}

variable "state_table_arn" {
  description = "ARN of the state table."
  type        = string
}

variable "catalog_table_arn" {
  description = "ARN of the catalog table."
  type        = string
}

variable "backup_bucket_arn" {
  description = "ARN of the backup bucket (the worker reads and writes it)."
  type        = string

  validation {
    condition     = can(regex("^arn:aws[a-z-]*:s3:::[^/*]+$", var.backup_bucket_arn))
    error_message = "backup_bucket_arn must be an S3 bucket ARN."
  }
}

variable "source_bucket_arns" {
  description = "ARNs of the S3 buckets the worker backs up (read-only access to their objects and versions, and to their inventory configurations: s3:GetInventoryConfiguration)."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for b in var.source_bucket_arns : can(regex("^arn:aws[a-z-]*:s3:::[^/*]+$", b))])
    error_message = "source_bucket_arns must be S3 bucket ARNs (no wildcards, no object paths)."
  }
}

variable "s3_inventory_bucket_arns" {
  description = "Destination buckets of the source buckets' S3 Inventory reports, for scans that read a source's latest inventory instead of listing it: the worker may list them (s3:ListBucket) and read their objects (s3:GetObject on `<arn>/*`), nothing else. If a destination is in another account, its bucket policy must allow the worker role too; if the reports are SSE-KMS encrypted, put the key in additional_kms_key_arns. Empty: no statement (the inventory configurations of source_bucket_arns are still readable, s3:GetInventoryConfiguration)."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for b in var.s3_inventory_bucket_arns : can(regex("^arn:aws[a-z-]*:s3:::[^/*]+$", b))])
    error_message = "s3_inventory_bucket_arns must be S3 bucket ARNs (no wildcards, no object paths)."
  }
}

variable "kms_key_arn" {
  description = "ARN of the fleet's data key (queues, tables, backup bucket)."
  type        = string

  validation {
    condition     = can(regex("^arn:aws[a-z-]*:kms:", var.kms_key_arn))
    error_message = "kms_key_arn must be a KMS key ARN."
  }
}

variable "additional_kms_key_arns" {
  description = "Other KMS keys the worker uses: the DR Region key, and the keys encrypting source volumes, snapshots and buckets (needed to copy encrypted snapshots)."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for k in var.additional_kms_key_arns : can(regex("^arn:aws[a-z-]*:kms:[a-z0-9-]+:[0-9]{12}:key/", k))])
    error_message = "additional_kms_key_arns must be KMS key ARNs (not aliases, no wildcards)."
  }
}

variable "database_secret_arns" {
  description = "Secrets Manager secrets the worker may read (secretsmanager:GetSecretValue), each a database's host, port, username, password and dbname: the `secret_arn` of every postgres-db database the backup plans dump, and the `drill.scratch_secret_arn` of the scratch servers restore drills restore dumps into. Full secret ARNs (with AWS's 6-character suffix) or the name followed by `-??????`. Empty: no secret is readable and no secrets policy is attached (logical backups and their drills then fail)."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for s in var.database_secret_arns : can(regex("^arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:[0-9]{12}:secret:[^*]+$", s))])
    error_message = "database_secret_arns must be Secrets Manager secret ARNs (arn:aws:secretsmanager:<region>:<account>:secret:<name>-<suffix>); `?` may stand for the suffix, `*` is refused."
  }
}

variable "database_secret_kms_key_arns" {
  description = "Customer managed KMS keys encrypting those secrets (kms:Decrypt, only through Secrets Manager in the key's Region). Empty when the secrets use the AWS managed key aws/secretsmanager."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for k in var.database_secret_kms_key_arns : can(regex("^arn:aws[a-z-]*:kms:[a-z0-9-]+:[0-9]{12}:key/", k))])
    error_message = "database_secret_kms_key_arns must be KMS key ARNs (not aliases, no wildcards)."
  }
}

variable "rds_export_prefix" {
  description = "Prefix of the backup bucket that RDS snapshot exports are written under: the policy's `export.prefix` (its default `_rds-exports`). The export role may write, and the worker delete versions, only under it."
  type        = string
  default     = "_rds-exports"

  validation {
    condition     = can(regex("^[A-Za-z0-9!_.'()-]+(/[A-Za-z0-9!_.'()-]+)*$", var.rds_export_prefix))
    error_message = "rds_export_prefix must be a non-empty S3 key prefix without leading or trailing `/` and without wildcards."
  }
}

variable "rds_export_kms_key_arns" {
  description = "KMS keys that snapshot exports are encrypted with (the policy's `export.kms_key`) other than kms_key_arn and additional_kms_key_arns, which already allow it: the worker, as the caller of StartExportTask, gets kms:CreateGrant and kms:DescribeKey on them, only through RDS."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for k in var.rds_export_kms_key_arns : can(regex("^arn:aws[a-z-]*:kms:[a-z0-9-]+:[0-9]{12}:key/", k))])
    error_message = "rds_export_kms_key_arns must be KMS key ARNs (not aliases, no wildcards)."
  }
}

variable "member_role_arns" {
  description = "Roles the fleet assumes in the member accounts the plans' `accounts` list (the member-account module's `role_arn` output, one per account): the producer (discovery), the worker (backups, copies, prunes, verification, restores) and the operator role (`backupctl restore --from-account`) get sts:AssumeRole on exactly these ARNs. Empty: no statement, no cross-account access."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for r in var.member_role_arns : can(regex("^arn:aws[a-z-]*:iam::[0-9]{12}:role/[A-Za-z0-9+=,.@_/-]+$", r))])
    error_message = "member_role_arns must be IAM role ARNs (arn:aws:iam::<account>:role/<name>), without wildcards."
  }
}

variable "backup_account_role_arns" {
  description = "Roles the fleet assumes in isolated backup accounts (the backup-account module's `role_arn` output; the `role_arn` of `copy_to` entries with an account_id): the worker (copies, their retention and verification, restores there) and the operator role (`backupctl restore --from-account`) get sts:AssumeRole on exactly these ARNs, and the worker may share its snapshots with these roles' accounts (and no other). Empty: no statement."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for r in var.backup_account_role_arns : can(regex("^arn:aws[a-z-]*:iam::[0-9]{12}:role/[A-Za-z0-9+=,.@_/-]+$", r))])
    error_message = "backup_account_role_arns must be IAM role ARNs (arn:aws:iam::<account>:role/<name>), without wildcards."
  }
}

variable "backup_account_bucket_arns" {
  description = "Object Lock buckets of backup accounts that plans write S3 backups or dumps into (the backup-account module's `bucket_arn`; a plan's `s3.backup_bucket`): the worker may write and read objects there (the actions it has on backup_bucket_arn, without deletions). Their bucket policy must allow the worker role as well (the backup-account module's `writer_role_arns`), and their key must be in additional_kms_key_arns."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for b in var.backup_account_bucket_arns : can(regex("^arn:aws[a-z-]*:s3:::[^/*]+$", b))])
    error_message = "backup_account_bucket_arns must be S3 bucket ARNs (no wildcards, no object paths)."
  }
}

variable "event_bus_arn" {
  description = "ARN of the fleet's event bus (worker events:PutEvents)."
  type        = string
}

variable "operator_principal_arns" {
  description = "IAM principals (roles, users, or another account's root) allowed to assume the operator role (`<name>-operator`, for `backupctl`). Empty: the account root, i.e. any principal of this account whose own policy allows sts:AssumeRole on the role."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for p in var.operator_principal_arns : can(regex("^arn:aws[a-z-]*:iam::[0-9]{12}:(root|role/.+|user/.+)$", p))])
    error_message = "operator_principal_arns must be IAM role, user or account-root ARNs."
  }
}

variable "log_group_arns" {
  description = "ARNs of the CloudWatch log groups the awslogs driver writes to (execution role), without the trailing `:*`."
  type        = list(string)
}

variable "metrics_log_group_arn" {
  description = "ARN of the log group the ADOT sidecar writes EMF metrics to (task roles), without the trailing `:*`."
  type        = string
}

variable "ecr_repository_arns" {
  description = "ARNs of the ECR repositories holding the fleet image (execution role pull access). Empty when the image is public."
  type        = list(string)
  default     = []
}

variable "permissions_boundary_arn" {
  description = "Optional permissions boundary attached to every role."
  type        = string
  default     = null
}

variable "tags" {
  description = "Tags applied to every role."
  type        = map(string)
  default     = {}
}
