variable "name" {
  description = "Name of the fleet's event bus (BACKUP_EVENT_BUS) and prefix of the failure rule and alerts topic."
  type        = string

  validation {
    condition     = can(regex("^[a-zA-Z0-9._-]{1,200}$", var.name)) && var.name != "default"
    error_message = "name must be 1-200 characters of [a-zA-Z0-9._-] and not `default`."
  }
}

variable "rules" {
  description = <<-EOT
    The ingest rules, exactly as printed by `backup-producer rules --json` (use
    `jsondecode(file("rules.json"))`). Each rule has a `name` and exactly one of
    `schedule_expression` (`cron(...)` / `rate(...)`, one rule per plan schedule) or
    `event_pattern` (a JSON string). Every rule targets the events queue.
  EOT
  type = list(object({
    name                = string
    description         = optional(string)
    schedule_expression = optional(string)
    event_pattern       = optional(string)
  }))
  default = []

  validation {
    condition     = alltrue([for r in var.rules : (r.schedule_expression == null) != (r.event_pattern == null)])
    error_message = "Every rule needs exactly one of schedule_expression or event_pattern."
  }

  validation {
    condition     = alltrue([for r in var.rules : r.schedule_expression == null || can(regex("^(cron|rate)\\(.+\\)$", r.schedule_expression))])
    error_message = "schedule_expression must be `cron(...)` or `rate(...)`."
  }

  validation {
    condition     = alltrue([for r in var.rules : r.event_pattern == null || can(jsondecode(r.event_pattern))])
    error_message = "event_pattern must be a JSON string."
  }

  validation {
    condition     = length(distinct([for r in var.rules : r.name])) == length(var.rules)
    error_message = "Rule names must be unique."
  }

  validation {
    condition     = alltrue([for r in var.rules : can(regex("^[a-zA-Z0-9._-]{1,64}$", r.name))])
    error_message = "Rule names must be 1-64 characters of [a-zA-Z0-9._-]."
  }
}

variable "rule_name_prefix" {
  description = "Prefix added to every ingest rule name. Leave empty unless the producer is configured with the same prefix: it maps schedule events back to plans by rule name."
  type        = string
  default     = ""
}

variable "rules_enabled" {
  description = "Create the ingest rules enabled. Set false to stage a deployment without feeding the producer."
  type        = bool
  default     = true
}

variable "events_queue_arn" {
  description = "ARN of the events queue (target of every ingest rule)."
  type        = string
}

variable "events_queue_url" {
  description = "URL of the events queue (its queue policy is managed here)."
  type        = string
}

variable "events_dlq_arn" {
  description = "ARN of the events DLQ (dead-letter target of the rule targets)."
  type        = string
}

variable "events_dlq_url" {
  description = "URL of the events DLQ (its queue policy is managed here)."
  type        = string
}

variable "target_maximum_event_age_seconds" {
  description = "How long EventBridge keeps retrying delivery of an event to the events queue (60-86400 s)."
  type        = number
  default     = 86400

  validation {
    condition     = var.target_maximum_event_age_seconds >= 60 && var.target_maximum_event_age_seconds <= 86400
    error_message = "target_maximum_event_age_seconds must be between 60 and 86400."
  }
}

variable "target_maximum_retry_attempts" {
  description = "Delivery retries by EventBridge before the event goes to the events DLQ (0-185)."
  type        = number
  default     = 185

  validation {
    condition     = var.target_maximum_retry_attempts >= 0 && var.target_maximum_retry_attempts <= 185
    error_message = "target_maximum_retry_attempts must be between 0 and 185."
  }
}

variable "eventbridge_notification_bucket_names" {
  description = "Source buckets whose `Object Created` events the fleet reacts to: EventBridge notifications are turned on for them. WARNING: aws_s3_bucket_notification owns a bucket's whole notification configuration; list only buckets with no other notifications managed elsewhere."
  type        = list(string)
  default     = []
}

variable "fleet_event_source" {
  description = "The `source` of the events the fleet publishes on its bus."
  type        = string
  default     = "backup-fleet"
}

variable "failure_detail_types" {
  description = "The `detail-type`s of fleet events that are sent to the alerts topic."
  type        = list(string)
  default     = ["Backup Task Failed", "Backup Task Dead"]

  validation {
    condition     = length(var.failure_detail_types) > 0
    error_message = "failure_detail_types must not be empty."
  }
}

variable "kms_key_arn" {
  description = "ARN of the customer managed KMS key encrypting the alerts topic. Its key policy must allow events.amazonaws.com and cloudwatch.amazonaws.com (the `kms` module does by default)."
  type        = string

  validation {
    condition     = can(regex("^arn:aws[a-z-]*:kms:", var.kms_key_arn))
    error_message = "kms_key_arn must be a KMS key ARN."
  }
}

variable "alert_email_addresses" {
  description = "E-mail addresses subscribed to the alerts topic (each must confirm the subscription)."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for e in var.alert_email_addresses : can(regex("^[^@\\s]+@[^@\\s]+$", e))])
    error_message = "alert_email_addresses must be e-mail addresses."
  }
}

variable "tags" {
  description = "Tags applied to rules, bus and topic."
  type        = map(string)
  default     = {}
}
