variable "name" {
  description = "Name prefix for the queues: `<name>-tasks`, `<name>-tasks-dlq`, `<name>-events`, `<name>-events-dlq`."
  type        = string

  validation {
    condition     = can(regex("^[a-zA-Z0-9_-]{1,60}$", var.name))
    error_message = "name must be 1-60 characters of [a-zA-Z0-9_-] (SQS names are limited to 80 characters)."
  }
}

variable "kms_key_arn" {
  description = "ARN of the customer managed KMS key used for server-side encryption of all four queues."
  type        = string

  validation {
    condition     = can(regex("^arn:aws[a-z-]*:kms:", var.kms_key_arn))
    error_message = "kms_key_arn must be a KMS key ARN."
  }
}

variable "kms_data_key_reuse_period_seconds" {
  description = "How long SQS reuses a data key before calling KMS again (60-86400 s). Longer means fewer KMS calls."
  type        = number
  default     = 300

  validation {
    condition     = var.kms_data_key_reuse_period_seconds >= 60 && var.kms_data_key_reuse_period_seconds <= 86400
    error_message = "kms_data_key_reuse_period_seconds must be between 60 and 86400."
  }
}

# --- task queue (defaults equal `backupctl bootstrap`'s) -----------------------------------------

variable "task_visibility_timeout_seconds" {
  description = "Visibility timeout of the task queue, in seconds. Must be >= 2 x worker_heartbeat_seconds. Same default as `backupctl bootstrap`."
  type        = number
  default     = 60

  validation {
    condition     = var.task_visibility_timeout_seconds >= 0 && var.task_visibility_timeout_seconds <= 43200
    error_message = "task_visibility_timeout_seconds must be between 0 and 43200 (12 h)."
  }
}

variable "task_max_receive_count" {
  description = "Receives after which a task message moves to the task DLQ (redrive maxReceiveCount). Same default as `backupctl bootstrap`."
  type        = number
  default     = 10

  validation {
    condition     = var.task_max_receive_count >= 1 && var.task_max_receive_count <= 1000
    error_message = "task_max_receive_count must be between 1 and 1000."
  }
}

variable "task_message_retention_seconds" {
  description = "Retention of the task queue, in seconds (default 4 days). Same default as `backupctl bootstrap`."
  type        = number
  default     = 345600

  validation {
    condition     = var.task_message_retention_seconds >= 60 && var.task_message_retention_seconds <= 1209600
    error_message = "task_message_retention_seconds must be between 60 and 1209600 (14 days)."
  }
}

variable "receive_wait_time_seconds" {
  description = "Long-poll wait of the task and events queues, in seconds (0-20). Same default as `backupctl bootstrap`."
  type        = number
  default     = 20

  validation {
    condition     = var.receive_wait_time_seconds >= 0 && var.receive_wait_time_seconds <= 20
    error_message = "receive_wait_time_seconds must be between 0 and 20."
  }
}

variable "worker_heartbeat_seconds" {
  description = "The worker's visibility heartbeat interval (BACKUP_HEARTBEAT_SECS), used only to check task_visibility_timeout_seconds >= 2 x heartbeat."
  type        = number
  default     = 20

  validation {
    condition     = var.worker_heartbeat_seconds >= 1
    error_message = "worker_heartbeat_seconds must be at least 1."
  }
}

# --- events queue ----------------------------------------------------------------------------------

variable "events_visibility_timeout_seconds" {
  description = "Visibility timeout of the events queue, in seconds. Same default as `backupctl bootstrap`."
  type        = number
  default     = 60

  validation {
    condition     = var.events_visibility_timeout_seconds >= 0 && var.events_visibility_timeout_seconds <= 43200
    error_message = "events_visibility_timeout_seconds must be between 0 and 43200 (12 h)."
  }
}

variable "events_max_receive_count" {
  description = "Receives after which an event message moves to the events DLQ. Same default as `backupctl bootstrap`."
  type        = number
  default     = 5

  validation {
    condition     = var.events_max_receive_count >= 1 && var.events_max_receive_count <= 1000
    error_message = "events_max_receive_count must be between 1 and 1000."
  }
}

variable "events_message_retention_seconds" {
  description = "Retention of the events queue, in seconds (default 4 days). Same default as `backupctl bootstrap`."
  type        = number
  default     = 345600

  validation {
    condition     = var.events_message_retention_seconds >= 60 && var.events_message_retention_seconds <= 1209600
    error_message = "events_message_retention_seconds must be between 60 and 1209600 (14 days)."
  }
}

# --- DLQs ----------------------------------------------------------------------------------------

variable "dlq_message_retention_seconds" {
  description = "Retention of both DLQs, in seconds (default 14 days, the SQS maximum). Same default as `backupctl bootstrap`."
  type        = number
  default     = 1209600

  validation {
    condition     = var.dlq_message_retention_seconds >= 60 && var.dlq_message_retention_seconds <= 1209600
    error_message = "dlq_message_retention_seconds must be between 60 and 1209600 (14 days)."
  }
}

variable "tags" {
  description = "Tags applied to every queue."
  type        = map(string)
  default     = {}
}
