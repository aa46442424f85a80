output "role_arn" {
  description = "ARN of the member role: the `role_arn` of this account's entry in the policy's `accounts`, and an entry of the iam module's `member_role_arns`."
  value       = local.role_arn
}

output "role_name" {
  description = "Name of the member role."
  value       = var.name
}

output "account_id" {
  description = "This account's id: the `account_id` of its entry in the policy's `accounts`."
  value       = local.account_id
}

output "share_kms_key_arn" {
  description = "ARN of the share key in this Region: the policy's `copy_to.share_kms_key` for copies into a backup account from this Region, and an entry of the backup-account module's `share_kms_key_arns`. Null when create_share_key is false."
  value       = var.create_share_key ? aws_kms_key.share[0].arn : null
}

output "share_kms_key_alias" {
  description = "Alias of the share key (`alias/<share_key_alias>`). Null when create_share_key is false."
  value       = var.create_share_key ? aws_kms_alias.share[0].name : null
}

output "member_actions" {
  description = "The member role's actions, by statement group (the single source of truth in this module)."
  value       = local.member_actions
}

output "share_key_actions" {
  description = "What the share key's policy lets the member role and the backup accounts' roles do, by statement."
  value       = local.share_key_actions
}

output "policy_jsons" {
  description = "The member role's policy documents, by domain (ec2, rds, s3; kms when source_kms_key_arns is set). Empty when create_role is false."
  value       = local.member_policies
}
