variable "alias" {
  description = "Alias of the key, without the `alias/` prefix (for example `backup-fleet-data`)."
  type        = string

  validation {
    condition     = can(regex("^[a-zA-Z0-9/_-]{1,250}$", var.alias)) && !startswith(var.alias, "aws/")
    error_message = "alias must be 1-250 characters of [a-zA-Z0-9/_-] and must not start with `aws/`."
  }
}

variable "description" {
  description = "Description stored on the KMS key."
  type        = string
  default     = "backup-fleet data key (queues, tables, backup bucket, alerts topic, logs)"
}

variable "deletion_window_in_days" {
  description = "Waiting period, in days, before a key scheduled for deletion is deleted (7-30)."
  type        = number
  default     = 30

  validation {
    condition     = var.deletion_window_in_days >= 7 && var.deletion_window_in_days <= 30
    error_message = "deletion_window_in_days must be between 7 and 30."
  }
}

variable "multi_region" {
  description = "Create a multi-Region primary key. Not needed for the fleet (the DR bucket has its own key)."
  type        = bool
  default     = false
}

variable "key_administrator_arns" {
  description = "IAM principal ARNs allowed to administer (but not use) the key. The account root is always allowed, which delegates to IAM policies."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for a in var.key_administrator_arns : can(regex("^arn:aws[a-z-]*:iam::[0-9]{12}:", a))])
    error_message = "Every key_administrator_arns entry must be an IAM ARN."
  }
}

variable "allow_eventbridge" {
  description = "Allow events.amazonaws.com (same account only) to encrypt messages it delivers to queues and topics protected by this key."
  type        = bool
  default     = true
}

variable "allow_cloudwatch_alarms" {
  description = "Allow cloudwatch.amazonaws.com (same account only) to publish alarm notifications to topics protected by this key."
  type        = bool
  default     = true
}

variable "allow_cloudwatch_logs" {
  description = "Allow CloudWatch Logs in this Region to encrypt this account's log groups with the key."
  type        = bool
  default     = true
}

variable "tags" {
  description = "Tags applied to the key."
  type        = map(string)
  default     = {}
}
