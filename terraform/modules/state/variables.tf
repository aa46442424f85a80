variable "name" {
  description = "Name prefix of the tables: `<name>-state` and `<name>-catalog`."
  type        = string

  validation {
    condition     = can(regex("^[a-zA-Z0-9_.-]{3,200}$", var.name))
    error_message = "name must be 3-200 characters of [a-zA-Z0-9_.-]."
  }
}

variable "kms_key_arn" {
  description = "ARN of the customer managed KMS key for server-side encryption of both tables."
  type        = string

  validation {
    condition     = can(regex("^arn:aws[a-z-]*:kms:", var.kms_key_arn))
    error_message = "kms_key_arn must be a KMS key ARN."
  }
}

variable "deletion_protection_enabled" {
  description = "Enable DynamoDB deletion protection on both tables. Turn off only to tear down a test stack."
  type        = bool
  default     = true
}

variable "tags" {
  description = "Tags applied to both tables."
  type        = map(string)
  default     = {}
}
