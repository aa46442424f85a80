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
  description = "CloudWatch namespace of the fleet's own metrics (tasks_total, aws_calls_total, ...): the `fleet` module's `metrics_namespace` output."
  type        = string
  default     = "BackupFleet"
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
  description = "Alarm when more than this percentage of the tasks that ended in a period (succeeded, failed or dead) failed or went dead."
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
  description = "Consecutive periods over the failure-rate threshold before alarming (periods in which no task ended do not count against it)."
  type        = number
  default     = 2

  validation {
    condition     = var.failure_rate_evaluation_periods >= 1
    error_message = "failure_rate_evaluation_periods must be at least 1."
  }
}

variable "no_progress_period_seconds" {
  description = "Period of the no-progress alarm, in seconds (a multiple of 60): a period breaches when the task queue had visible messages throughout and no task ended in it."
  type        = number
  default     = 3600

  validation {
    condition     = var.no_progress_period_seconds >= 300 && var.no_progress_period_seconds % 60 == 0
    error_message = "no_progress_period_seconds must be a multiple of 60, at least 300."
  }
}

variable "no_progress_evaluation_periods" {
  description = "Consecutive no-progress periods before alarming (alarm after no_progress_evaluation_periods x no_progress_period_seconds without any task ending while work waits)."
  type        = number
  default     = 2

  validation {
    condition     = var.no_progress_evaluation_periods >= 1
    error_message = "no_progress_evaluation_periods must be at least 1."
  }
}

variable "throttle_rate_threshold_percent" {
  description = "Alarm when more than this percentage of the fleet's AWS API attempts were throttled, in each of throttle_evaluation_periods periods."
  type        = number
  default     = 10

  validation {
    condition     = var.throttle_rate_threshold_percent > 0 && var.throttle_rate_threshold_percent <= 100
    error_message = "throttle_rate_threshold_percent must be in (0, 100]."
  }
}

variable "throttle_period_seconds" {
  description = "Period of the throttling-rate metric math, in seconds (a multiple of 60)."
  type        = number
  default     = 300

  validation {
    condition     = var.throttle_period_seconds >= 60 && var.throttle_period_seconds % 60 == 0
    error_message = "throttle_period_seconds must be a multiple of 60."
  }
}

variable "throttle_evaluation_periods" {
  description = "Consecutive periods over the throttling threshold before alarming."
  type        = number
  default     = 3

  validation {
    condition     = var.throttle_evaluation_periods >= 1
    error_message = "throttle_evaluation_periods must be at least 1."
  }
}

variable "coverage_interval_seconds" {
  description = "Seconds between the producer's coverage passes: the `fleet` module's `coverage_interval_seconds` output. The coverage alarms read coverage_resources over twice this (at least an hour), so that every period holds a pass. 0: coverage is off, no coverage alarm."
  type        = number
  default     = 3600

  validation {
    condition     = var.coverage_interval_seconds == 0 || (var.coverage_interval_seconds >= 300 && var.coverage_interval_seconds <= 43200 && floor(var.coverage_interval_seconds) == var.coverage_interval_seconds)
    error_message = "coverage_interval_seconds must be 0 (off) or a whole number of seconds from 300 to 43200 (the fleet module's limits)."
  }
}

variable "coverage_alarm_on_unprotected" {
  description = "Also alarm (a warning: no notification on missing data) when a coverage pass finds resources no plan selects (coverage_resources{status=unprotected} > 0). Off by default: many estates keep resources outside every plan by design."
  type        = bool
  default     = false
}

variable "tags" {
  description = "Tags applied to the alarms."
  type        = map(string)
  default     = {}
}
