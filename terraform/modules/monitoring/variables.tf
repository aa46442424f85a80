variable "name" {
  description = "Prefix of the alarm names and name of the dashboard."
  type        = string

  validation {
    condition     = can(regex("^[a-zA-Z0-9_-]{1,200}$", var.name))
    error_message = "name must be 1-200 characters of [a-zA-Z0-9_-]."
  }
}

variable "alarm_topic_arn" {
  description = "SNS topic notified on ALARM and OK (the `events` module's alerts topic)."
  type        = string
}

variable "task_queue_name" {
  description = "Name of the task queue."
  type        = string
}

variable "task_dlq_name" {
  description = "Name of the task DLQ."
  type        = string
}

variable "events_queue_name" {
  description = "Name of the events queue."
  type        = string
}

variable "events_dlq_name" {
  description = "Name of the events DLQ."
  type        = string
}

variable "cluster_name" {
  description = "Name of the ECS cluster (dashboard)."
  type        = string
}

variable "producer_service_name" {
  description = "Name of the producer service (dashboard)."
  type        = string
}

variable "worker_service_name" {
  description = "Name of the worker service (dashboard)."
  type        = string
}

variable "metrics_namespace" {
  description = "CloudWatch namespace of the fleet's own metrics (TasksFailed, TasksCompleted)."
  type        = string
  default     = "BackupFleet"
}

variable "fleet_metric_dimensions" {
  description = "Dimensions that select the fleet's TasksFailed / TasksCompleted series. Empty: the dimensionless rollup."
  type        = map(string)
  default     = {}
}

variable "oldest_message_age_threshold_seconds" {
  description = "Alarm when the oldest message of the task (or events) queue is older than this, in seconds."
  type        = number
  default     = 900

  validation {
    condition     = var.oldest_message_age_threshold_seconds > 0
    error_message = "oldest_message_age_threshold_seconds must be positive."
  }
}

variable "oldest_message_evaluation_periods" {
  description = "Consecutive 1-minute periods over the age threshold before alarming."
  type        = number
  default     = 5

  validation {
    condition     = var.oldest_message_evaluation_periods >= 1
    error_message = "oldest_message_evaluation_periods must be at least 1."
  }
}

variable "failure_rate_threshold_percent" {
  description = "Alarm when more than this percentage of finished tasks failed in a period."
  type        = number
  default     = 5

  validation {
    condition     = var.failure_rate_threshold_percent > 0 && var.failure_rate_threshold_percent <= 100
    error_message = "failure_rate_threshold_percent must be in (0, 100]."
  }
}

variable "failure_rate_period_seconds" {
  description = "Period of the failure-rate metric math, in seconds (a multiple of 60)."
  type        = number
  default     = 300

  validation {
    condition     = var.failure_rate_period_seconds >= 60 && var.failure_rate_period_seconds % 60 == 0
    error_message = "failure_rate_period_seconds must be a multiple of 60."
  }
}

variable "failure_rate_evaluation_periods" {
  description = "Consecutive periods over the failure-rate threshold before alarming."
  type        = number
  default     = 2

  validation {
    condition     = var.failure_rate_evaluation_periods >= 1
    error_message = "failure_rate_evaluation_periods must be at least 1."
  }
}

variable "tags" {
  description = "Tags applied to the alarms."
  type        = map(string)
  default     = {}
}
