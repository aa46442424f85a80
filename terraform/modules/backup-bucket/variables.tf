variable "bucket_name" {
  description = "Name of the backup bucket (globally unique). The access-log bucket is `<bucket_name>-logs`."
  type        = string

  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9.-]{1,53}[a-z0-9]$", var.bucket_name))
    error_message = "bucket_name must be 3-55 characters of [a-z0-9.-] (room is left for the `-logs` / `-dr-logs` suffixes)."
  }
}

variable "kms_key_arn" {
  description = "ARN of the customer managed KMS key for SSE-KMS (with S3 Bucket Keys) on the backup bucket."
  type        = string

  validation {
    condition     = can(regex("^arn:aws[a-z-]*:kms:", var.kms_key_arn))
    error_message = "kms_key_arn must be a KMS key ARN."
  }
}

variable "object_lock_mode" {
  description = "Default Object Lock retention mode: GOVERNANCE (privileged principals may shorten or remove retention) or COMPLIANCE (nobody can, not even the root user)."
  type        = string
  default     = "GOVERNANCE"

  validation {
    condition     = contains(["GOVERNANCE", "COMPLIANCE"], var.object_lock_mode)
    error_message = "object_lock_mode must be GOVERNANCE or COMPLIANCE."
  }
}

variable "object_lock_days" {
  description = "Default Object Lock retention, in days, for new object versions (the worker may set a longer per-object retention)."
  type        = number
  default     = 30

  validation {
    condition     = var.object_lock_days >= 1 && var.object_lock_days <= 36500
    error_message = "object_lock_days must be between 1 and 36500."
  }
}

variable "transition_to_standard_ia_days" {
  description = "Days after creation when objects move to S3 Standard-IA (S3 minimum: 30)."
  type        = number
  default     = 30

  validation {
    condition     = var.transition_to_standard_ia_days >= 30
    error_message = "transition_to_standard_ia_days must be at least 30."
  }
}

variable "transition_to_glacier_days" {
  description = "Days after creation when objects move to S3 Glacier Flexible Retrieval (at least standard_ia + 30)."
  type        = number
  default     = 90

  validation {
    condition     = var.transition_to_glacier_days >= 60
    error_message = "transition_to_glacier_days must be at least 60."
  }
}

variable "transition_to_deep_archive_days" {
  description = "Days after creation when objects move to S3 Glacier Deep Archive (after the Glacier transition). Also the DR copy's only transition."
  type        = number
  default     = 365

  validation {
    condition     = var.transition_to_deep_archive_days >= 90
    error_message = "transition_to_deep_archive_days must be at least 90."
  }
}

variable "noncurrent_version_expiration_days" {
  description = "Days after which non-current object versions expire (Object Lock still protects versions under retention)."
  type        = number
  default     = 90

  validation {
    condition     = var.noncurrent_version_expiration_days >= 1
    error_message = "noncurrent_version_expiration_days must be at least 1."
  }
}

variable "abort_incomplete_multipart_upload_days" {
  description = "Days after which incomplete multipart uploads are aborted."
  type        = number
  default     = 7

  validation {
    condition     = var.abort_incomplete_multipart_upload_days >= 1
    error_message = "abort_incomplete_multipart_upload_days must be at least 1."
  }
}

variable "access_log_retention_days" {
  description = "Days S3 server access logs are kept in the log bucket(s)."
  type        = number
  default     = 365

  validation {
    condition     = var.access_log_retention_days >= 1
    error_message = "access_log_retention_days must be at least 1."
  }
}

variable "replication_enabled" {
  description = "Replicate the backup bucket to a bucket in the DR Region (the `aws.replica` provider)."
  type        = bool
  default     = false
}

variable "replica_bucket_name" {
  description = "Name of the DR bucket. Defaults to `<bucket_name>-dr`."
  type        = string
  default     = null
}

variable "replica_kms_key_arn" {
  description = "ARN of a KMS key in the DR Region for the replica bucket. Required when replication_enabled."
  type        = string
  default     = null

  validation {
    condition     = var.replica_kms_key_arn == null || can(regex("^arn:aws[a-z-]*:kms:", var.replica_kms_key_arn))
    error_message = "replica_kms_key_arn must be a KMS key ARN."
  }
}

variable "replica_storage_class" {
  description = "Storage class of replicated objects in the DR bucket."
  type        = string
  default     = "STANDARD_IA"

  validation {
    condition     = contains(["STANDARD", "STANDARD_IA", "ONEZONE_IA", "INTELLIGENT_TIERING", "GLACIER_IR", "GLACIER", "DEEP_ARCHIVE"], var.replica_storage_class)
    error_message = "replica_storage_class must be a valid S3 storage class for replication."
  }
}

variable "tags" {
  description = "Tags applied to every bucket and the replication role."
  type        = map(string)
  default     = {}
}
