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

variable "tier_transitions" {
  description = "Lifecycle transitions of current backup versions, per backup tier (the object tag `backup-fleet:tier`: daily, weekly, monthly, yearly, event, manual): an ordered list of `{ days, storage_class }`, days counted from the version's creation. Each list starts from the class the fleet writes that tier in (daily/event/manual STANDARD, weekly STANDARD_IA, monthly/yearly GLACIER_IR) and goes colder at every step; a tier left out, or with an empty list, stays in that class. GLACIER and DEEP_ARCHIVE backups are restored only after a RestoreObject (hours)."
  type = map(list(object({
    days          = number
    storage_class = string
  })))
  # Always instantly readable: daily/event/manual backups to Standard-IA after 30 days (its
  # minimum), weekly ones (written to Standard-IA) to Glacier Instant Retrieval after 90. Monthly
  # and yearly backups are written to Glacier Instant Retrieval already: Flexible Retrieval would
  # save ~10% on storage but add hours and a retrieval fee to every restore (and 40 KB of overhead
  # per object); Deep Archive is the saving worth opting into (needs
  # noncurrent_version_expiration_days >= 180).
  default = {
    daily   = [{ days = 30, storage_class = "STANDARD_IA" }]
    event   = [{ days = 30, storage_class = "STANDARD_IA" }]
    manual  = [{ days = 30, storage_class = "STANDARD_IA" }]
    weekly  = [{ days = 90, storage_class = "GLACIER_IR" }]
    monthly = []
    yearly  = []
  }
  nullable = false

  validation {
    condition     = alltrue([for tier in keys(var.tier_transitions) : contains(["daily", "weekly", "monthly", "yearly", "event", "manual"], tier)])
    error_message = "tier_transitions keys must be backup tiers (daily, weekly, monthly, yearly, event, manual), not: ${join(", ", [for tier in keys(var.tier_transitions) : tier if !contains(["daily", "weekly", "monthly", "yearly", "event", "manual"], tier)])}."
  }

  validation {
    condition     = alltrue([for t in flatten(values(var.tier_transitions)) : contains(["STANDARD_IA", "ONEZONE_IA", "INTELLIGENT_TIERING", "GLACIER_IR", "GLACIER", "DEEP_ARCHIVE"], t.storage_class)])
    error_message = "tier_transitions storage_class must be one of STANDARD_IA, ONEZONE_IA, INTELLIGENT_TIERING, GLACIER_IR, GLACIER, DEEP_ARCHIVE (S3's transition targets)."
  }

  validation {
    condition     = alltrue([for t in flatten(values(var.tier_transitions)) : t.days >= 0 && floor(t.days) == t.days])
    error_message = "tier_transitions days must be whole numbers >= 0."
  }

  # S3 refuses a transition to Standard-IA or One Zone-IA before day 30.
  validation {
    condition     = alltrue([for t in flatten(values(var.tier_transitions)) : t.days >= 30 if contains(["STANDARD_IA", "ONEZONE_IA"], t.storage_class)])
    error_message = "tier_transitions: a transition to STANDARD_IA or ONEZONE_IA must be at day 30 or later (S3 minimum)."
  }

  validation {
    condition     = alltrue([for ts in values(var.tier_transitions) : alltrue([for i, t in ts : i == 0 || t.days > ts[max(i - 1, 0)].days])])
    error_message = "tier_transitions: each tier's transitions must be listed in order of strictly increasing days."
  }
}

variable "transition_default_minimum_object_size" {
  description = "Which objects S3 lifecycle transitions by default, on the backup and the replica bucket: `all_storage_classes_128K` (none under 128 KB: a small object costs more after a transition, with per-object overhead and 128 KB minimum billable sizes) or `varies_by_storage_class` (objects under 128 KB still go to GLACIER and DEEP_ARCHIVE)."
  type        = string
  default     = "all_storage_classes_128K"

  validation {
    condition     = contains(["all_storage_classes_128K", "varies_by_storage_class"], var.transition_default_minimum_object_size)
    error_message = "transition_default_minimum_object_size must be all_storage_classes_128K or varies_by_storage_class."
  }
}

variable "noncurrent_version_expiration_days" {
  description = "Days after which non-current object versions expire (Object Lock still protects versions under retention). Must be at least the S3 minimum storage duration of every class a backup version can be in (STANDARD_IA/ONEZONE_IA 30, GLACIER_IR/GLACIER 90, DEEP_ARCHIVE 180: the classes the fleet writes, the tier_transitions targets, and on the replica replica_storage_class and replica_transitions), since a version can become non-current the day after it reached one."
  type        = number
  default     = 90
  nullable    = false

  validation {
    condition     = var.noncurrent_version_expiration_days >= 1 && floor(var.noncurrent_version_expiration_days) == var.noncurrent_version_expiration_days
    error_message = "noncurrent_version_expiration_days must be a whole number, at least 1."
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

variable "replica_transitions" {
  description = "Lifecycle transitions of current versions in the DR bucket, every tier alike (replicas are all written in replica_storage_class): an ordered list of `{ days, storage_class }`, days from the replica's creation, colder than replica_storage_class and than the step before. Empty: replicas stay in replica_storage_class."
  type = list(object({
    days          = number
    storage_class = string
  }))
  # Instantly readable, so a restore from the DR copy needs no RestoreObject first.
  default  = [{ days = 90, storage_class = "GLACIER_IR" }]
  nullable = false

  validation {
    condition     = alltrue([for t in var.replica_transitions : contains(["STANDARD_IA", "ONEZONE_IA", "INTELLIGENT_TIERING", "GLACIER_IR", "GLACIER", "DEEP_ARCHIVE"], t.storage_class)])
    error_message = "replica_transitions storage_class must be one of STANDARD_IA, ONEZONE_IA, INTELLIGENT_TIERING, GLACIER_IR, GLACIER, DEEP_ARCHIVE (S3's transition targets)."
  }

  validation {
    condition     = alltrue([for t in var.replica_transitions : t.days >= 0 && floor(t.days) == t.days])
    error_message = "replica_transitions days must be whole numbers >= 0."
  }

  # S3 refuses a transition to Standard-IA or One Zone-IA before day 30.
  validation {
    condition     = alltrue([for t in var.replica_transitions : t.days >= 30 if contains(["STANDARD_IA", "ONEZONE_IA"], t.storage_class)])
    error_message = "replica_transitions: a transition to STANDARD_IA or ONEZONE_IA must be at day 30 or later (S3 minimum)."
  }

  validation {
    condition     = alltrue([for i, t in var.replica_transitions : i == 0 || t.days > var.replica_transitions[max(i - 1, 0)].days])
    error_message = "replica_transitions must be listed in order of strictly increasing days."
  }
}

variable "tags" {
  description = "Tags applied to every bucket and the replication role."
  type        = map(string)
  default     = {}
}
