output "role_arn" {
  description = "ARN of the vault role: the `role_arn` of `copy_to` entries with this account's id, an entry of the iam module's `backup_account_role_arns` and of the member-account module's `backup_account_role_arns`."
  value       = local.role_arn
}

output "role_name" {
  description = "Name of the vault role."
  value       = var.name
}

output "account_id" {
  description = "This account's id: the `account_id` of `copy_to` entries that copy here."
  value       = local.account_id
}

output "kms_key_arn" {
  description = "ARN of the vault key in this Region: the `kms_key` of `copy_to` entries that copy into this account and Region."
  value       = aws_kms_key.vault.arn
}

output "kms_key_alias" {
  description = "Alias of the vault key (`alias/<key_alias>`)."
  value       = aws_kms_alias.vault.name
}

output "bucket_name" {
  description = "Name of the Object Lock bucket (a plan's `s3.backup_bucket`). Null when create_bucket is false."
  value       = var.create_bucket ? aws_s3_bucket.vault[0].id : null
}

output "bucket_arn" {
  description = "ARN of the Object Lock bucket (an entry of the iam module's `backup_account_bucket_arns`). Null when create_bucket is false."
  value       = var.create_bucket ? aws_s3_bucket.vault[0].arn : null
}

output "vault_actions" {
  description = "The vault role's actions, by statement group (the single source of truth in this module)."
  value       = local.vault_actions
}

output "vault_key_actions" {
  description = "What the vault key's policy allows the vault role and the bucket's writers, and denies everyone but the break-glass principals, by statement."
  value       = local.vault_key_actions
}

output "policy_jsons" {
  description = "The vault role's policy documents, by domain (ec2, rds; kms when share_kms_key_arns is set). Empty when create_role is false."
  value       = local.vault_policies
}
