variable "name" {
  description = "Name of the member role (the `role_arn` the policy's `accounts` entry names) and prefix of its managed policies (`<name>-ec2`, `<name>-rds`, `<name>-s3`, `<name>-kms`). With create_role = false: the name of the existing role the share key lets re-encrypt (another instance's member role, or the fleet's worker role when the key is for the fleet's own account)."
  type        = string
  default     = "backup-fleet-member"

  validation {
    condition     = can(regex("^[a-zA-Z0-9+=,.@_-]{1,52}$", var.name))
    error_message = "name must be 1-52 characters valid in an IAM role name."
  }
}

variable "create_role" {
  description = "Create the member role. IAM is global: create it in one instance of the module per account, and set false in the instances that only add a share key in another Region."
  type        = bool
  default     = true
}

variable "fleet_role_arns" {
  description = "The fleet's producer and worker task role ARNs (the iam module's `producer_role_arn` and `worker_role_arn` outputs): the only principals, with operator_role_arn, that may assume the member role. Required when create_role is true."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for r in var.fleet_role_arns : can(regex("^arn:aws[a-z-]*:iam::[0-9]{12}:role/[A-Za-z0-9+=,.@_/-]+$", r))])
    error_message = "fleet_role_arns must be IAM role ARNs (arn:aws:iam::<account>:role/<name>), without wildcards."
  }
}

variable "operator_role_arn" {
  description = "The fleet's operator role ARN (the iam module's `operator_role_arn` output), for `backupctl restore --from-account` in this account. Null: the operator role cannot assume the member role."
  type        = string
  default     = null

  validation {
    condition     = var.operator_role_arn == null || can(regex("^arn:aws[a-z-]*:iam::[0-9]{12}:role/[A-Za-z0-9+=,.@_/-]+$", var.operator_role_arn))
    error_message = "operator_role_arn must be an IAM role ARN (arn:aws:iam::<account>:role/<name>)."
  }
}

variable "external_id" {
  description = "When set, the trust policy also requires this sts:ExternalId. Leave null unless the fleet passes the same external id on AssumeRole (the trust policy already names the fleet's roles by ARN)."
  type        = string
  default     = null

  validation {
    condition     = var.external_id == null || (can(regex("^[A-Za-z0-9+=,.@:/-]+$", var.external_id)) && length(coalesce(var.external_id, "-")) >= 2 && length(coalesce(var.external_id, "-")) <= 1224)
    error_message = "external_id must be 2-1224 characters of [A-Za-z0-9+=,.@:/-]."
  }
}

variable "backup_account_role_arns" {
  description = "The roles of the isolated backup accounts this account's backups are copied into (the backup-account module's `role_arn` output): snapshots may be shared with their accounts and no other (EC2; RDS has no such condition key), and the share key lets them copy what is shared under it. Empty: no sharing at all."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for r in var.backup_account_role_arns : can(regex("^arn:aws[a-z-]*:iam::[0-9]{12}:role/[A-Za-z0-9+=,.@_/-]+$", r))])
    error_message = "backup_account_role_arns must be IAM role ARNs (arn:aws:iam::<account>:role/<name>), without wildcards."
  }
}

variable "source_bucket_arns" {
  description = "S3 buckets of this account the fleet may read (list and read objects, versions and tags; read inventory configurations). Empty: no object is readable (bucket discovery still works)."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for b in var.source_bucket_arns : can(regex("^arn:aws[a-z-]*:s3:::[^/*]+$", b))])
    error_message = "source_bucket_arns must be S3 bucket ARNs (no wildcards, no object paths)."
  }
}

variable "source_kms_key_arns" {
  description = "Customer managed KMS keys of this account's encrypted volumes, snapshots and databases (use, and grants for AWS services only). The AWS managed keys (aws/ebs, aws/rds) need no entry. Empty: no KMS policy is attached."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for k in var.source_kms_key_arns : can(regex("^arn:aws[a-z-]*:kms:[a-z0-9-]+:[0-9]{12}:key/", k))])
    error_message = "source_kms_key_arns must be KMS key ARNs (not aliases, no wildcards)."
  }
}

variable "create_share_key" {
  description = "Create the share key in this Region (the provider's): the key the policy's `copy_to.share_kms_key` names for copies into a backup account from this Region. One per Region that copies into a backup account."
  type        = bool
  default     = true
}

variable "share_key_alias" {
  description = "Alias of the share key, without the `alias/` prefix."
  type        = string
  default     = "backup-fleet-share"

  validation {
    condition     = can(regex("^[a-zA-Z0-9/_-]{1,250}$", var.share_key_alias)) && !startswith(var.share_key_alias, "aws/")
    error_message = "share_key_alias must be 1-250 characters of [a-zA-Z0-9/_-] and must not start with `aws/`."
  }
}

variable "share_key_deletion_window_in_days" {
  description = "Waiting period, in days, before the share key is deleted once scheduled (7-30)."
  type        = number
  default     = 30

  validation {
    condition     = var.share_key_deletion_window_in_days >= 7 && var.share_key_deletion_window_in_days <= 30
    error_message = "share_key_deletion_window_in_days must be between 7 and 30."
  }
}

variable "key_administrator_arns" {
  description = "IAM principal ARNs allowed to administer (but not use) the share key. The account root is always allowed, which delegates to IAM policies."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for a in var.key_administrator_arns : can(regex("^arn:aws[a-z-]*:iam::[0-9]{12}:", a))])
    error_message = "Every key_administrator_arns entry must be an IAM ARN."
  }
}

variable "permissions_boundary_arn" {
  description = "Optional permissions boundary attached to the member role."
  type        = string
  default     = null
}

variable "tags" {
  description = "Tags applied to the role, its policies and the share key. Do not use the `backup-fleet:` prefix: it is reserved for the artifacts the fleet creates."
  type        = map(string)
  default     = {}

  validation {
    condition     = alltrue([for k in keys(var.tags) : !startswith(k, "backup-fleet:")])
    error_message = "Tag keys starting with `backup-fleet:` are reserved for backup artifacts (the role's IAM conditions rely on them)."
  }
}
