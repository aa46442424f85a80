variable "name" {
  description = "Name of the vault role (the `role_arn` of `copy_to` entries with an account_id; `backupctl restore --from-account` assumes `backup-fleet-vault` unless given --role-arn) and prefix of its managed policies (`<name>-ec2`, `<name>-rds`, `<name>-kms`)."
  type        = string
  default     = "backup-fleet-vault"

  validation {
    condition     = can(regex("^[a-zA-Z0-9+=,.@_-]{1,52}$", var.name))
    error_message = "name must be 1-52 characters valid in an IAM role name."
  }
}

variable "create_role" {
  description = "Create the vault role. IAM is global: create it in one instance of the module per account, and set false in the instances that only add a vault key (and bucket) in another Region."
  type        = bool
  default     = true
}

variable "worker_role_arn" {
  description = "The fleet's worker task role ARN (the iam module's `worker_role_arn` output): with operator_role_arn, the only principal that may assume the vault role."
  type        = string

  validation {
    condition     = can(regex("^arn:aws[a-z-]*:iam::[0-9]{12}:role/[A-Za-z0-9+=,.@_/-]+$", var.worker_role_arn))
    error_message = "worker_role_arn must be an IAM role ARN (arn:aws:iam::<account>:role/<name>)."
  }
}

variable "operator_role_arn" {
  description = "The fleet's operator role ARN (the iam module's `operator_role_arn` output), for `backupctl restore --from-account`. Null: only the worker role may assume the vault role."
  type        = string
  default     = null

  validation {
    condition     = var.operator_role_arn == null || can(regex("^arn:aws[a-z-]*:iam::[0-9]{12}:role/[A-Za-z0-9+=,.@_/-]+$", var.operator_role_arn))
    error_message = "operator_role_arn must be an IAM role ARN (arn:aws:iam::<account>:role/<name>)."
  }
}

variable "source_account_ids" {
  description = "The accounts whose backups are copied into this one: every member account of the plans that copy here, and the fleet's own account when those plans back it up. The vault role may copy RDS snapshots shared by these accounts (EBS snapshot ARNs name no account: the share itself decides)."
  type        = list(string)

  validation {
    condition     = length(var.source_account_ids) > 0 && alltrue([for a in var.source_account_ids : can(regex("^[0-9]{12}$", a))])
    error_message = "source_account_ids must list at least one 12-digit AWS account id."
  }
}

variable "share_kms_key_arns" {
  description = "The source accounts' share keys (the member-account module's `share_kms_key_arn` outputs, one per source account and Region): the vault role may Decrypt, DescribeKey, ReEncryptFrom and create grants for AWS services on them, to copy snapshots shared under them. Their key policy must name the vault role too (the member-account module's backup_account_role_arns)."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for k in var.share_kms_key_arns : can(regex("^arn:aws[a-z-]*:kms:[a-z0-9-]+:[0-9]{12}:key/", k))])
    error_message = "share_kms_key_arns must be KMS key ARNs (not aliases, no wildcards)."
  }
}

variable "key_alias" {
  description = "Alias of the vault key, without the `alias/` prefix."
  type        = string
  default     = "backup-fleet-vault"

  validation {
    condition     = can(regex("^[a-zA-Z0-9/_-]{1,250}$", var.key_alias)) && !startswith(var.key_alias, "aws/")
    error_message = "key_alias must be 1-250 characters of [a-zA-Z0-9/_-] and must not start with `aws/`."
  }
}

variable "break_glass_principal_arns" {
  description = "The only principals (IAM role or user ARNs; `*` wildcards allowed, as in ArnLike) that may schedule the vault key's deletion, disable it or change its key policy; the key policy denies those to everyone else, this account's administrators included. The principal that applies this module must be one of them (KMS refuses a key policy that locks its creator out of PutKeyPolicy) unless bypass_policy_lockout_safety_check is set."
  type        = list(string)

  validation {
    condition     = length(var.break_glass_principal_arns) > 0 && alltrue([for p in var.break_glass_principal_arns : can(regex("^arn:aws[a-z-]*:iam::[0-9]{12}:(role|user)/.+$", p))])
    error_message = "break_glass_principal_arns must list at least one IAM role or user ARN."
  }
}

variable "bypass_policy_lockout_safety_check" {
  description = "Create the vault key even though the principal applying this module is not a break-glass principal. Afterwards only a break-glass principal can change the key policy (a later apply that changes it fails)."
  type        = bool
  default     = false
}

variable "create_bucket" {
  description = "Create the Object Lock bucket (S3 backups and dumps written into the backup account)."
  type        = bool
  default     = true
}

variable "bucket_name" {
  description = "Name of the Object Lock bucket (globally unique). Required when create_bucket is true."
  type        = string
  default     = null

  validation {
    condition     = var.bucket_name == null || can(regex("^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$", var.bucket_name))
    error_message = "bucket_name must be a valid S3 bucket name."
  }
}

variable "object_lock_days" {
  description = "Default Object Lock retention of the bucket, in days, in COMPLIANCE mode: no principal (the account root included) can delete a version or shorten its retention before it ends."
  type        = number
  default     = 90

  validation {
    condition     = var.object_lock_days >= 1 && floor(var.object_lock_days) == var.object_lock_days
    error_message = "object_lock_days must be a whole number of days, at least 1."
  }
}

variable "noncurrent_version_expiration_days" {
  description = "Days after which non-current versions in the bucket expire (S3 expires none still under its Object Lock retention). Null: they never expire."
  type        = number
  default     = null
}

variable "writer_role_arns" {
  description = "Roles that may write S3 backups into the bucket and read them back (PutObject with tags and retention, AbortMultipartUpload, List/Get; no deletion): the fleet's worker task role when a plan's `s3.backup_bucket` is this bucket (the iam module's `backup_account_bucket_arns` then lists it). Empty: only this account's own principals."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for r in var.writer_role_arns : can(regex("^arn:aws[a-z-]*:iam::[0-9]{12}:role/[A-Za-z0-9+=,.@_/-]+$", r))])
    error_message = "writer_role_arns must be IAM role ARNs (arn:aws:iam::<account>:role/<name>), without wildcards."
  }
}

variable "access_log_bucket_name" {
  description = "Existing bucket for the bucket's S3 server access logs (under `s3-access/<bucket_name>/`). Null: no access logging (CloudTrail data events are the alternative)."
  type        = string
  default     = null
}

variable "permissions_boundary_arn" {
  description = "Optional permissions boundary attached to the vault role."
  type        = string
  default     = null
}

variable "tags" {
  description = "Tags applied to the role, its policies, the key and the bucket. Do not use the `backup-fleet:` prefix: it is reserved for the artifacts the fleet creates."
  type        = map(string)
  default     = {}

  validation {
    condition     = alltrue([for k in keys(var.tags) : !startswith(k, "backup-fleet:")])
    error_message = "Tag keys starting with `backup-fleet:` are reserved for backup artifacts (the role's IAM conditions rely on them)."
  }
}
