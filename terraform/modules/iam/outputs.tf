output "execution_role_arn" {
  description = "ARN of the ECS task execution role."
  value       = aws_iam_role.execution.arn
}

output "worker_role_arn" {
  description = "ARN of the worker task role."
  value       = aws_iam_role.worker.arn
}

output "worker_role_name" {
  description = "Name of the worker task role."
  value       = aws_iam_role.worker.name
}

output "producer_role_arn" {
  description = "ARN of the producer task role."
  value       = aws_iam_role.producer.arn
}

output "producer_role_name" {
  description = "Name of the producer task role."
  value       = aws_iam_role.producer.name
}

output "operator_role_arn" {
  description = "ARN of the operator role (assume it to run `backupctl`)."
  value       = aws_iam_role.operator.arn
}

output "operator_role_name" {
  description = "Name of the operator role."
  value       = aws_iam_role.operator.name
}

output "rds_export_role_arn" {
  description = "ARN of the role RDS assumes to write snapshot exports into the backup bucket: the policy's `export.iam_role_arn`."
  value       = aws_iam_role.rds_export.arn
}

output "rds_export_actions" {
  description = "The RDS export role's actions, by statement group."
  value       = local.rds_export_actions
}

output "worker_actions" {
  description = "The worker role's actions, by statement group (the single source of truth in this module)."
  value       = local.worker_actions
}

output "producer_actions" {
  description = "The producer role's actions, by statement group."
  value       = local.producer_actions
}

output "operator_actions" {
  description = "The operator role's actions, by statement group."
  value       = local.operator_actions
}

output "telemetry_actions" {
  description = "Actions of the ADOT sidecar, granted to both task roles."
  value       = local.telemetry_actions
}

output "worker_policy_jsons" {
  description = "The worker role's policy documents, by domain (core, ec2, rds, s3; secrets when database_secret_arns is set; accounts when member_role_arns or backup_account_role_arns is set; share when backup_account_role_arns is set)."
  value       = local.worker_policies
}

output "worker_policy_arns" {
  description = "ARNs of the worker role's managed policies, by domain."
  value       = { for k, p in aws_iam_policy.worker : k => p.arn }
}

output "producer_policy_json" {
  description = "The producer role's inline policy document."
  value       = data.aws_iam_policy_document.producer.json
}

output "operator_policy_json" {
  description = "The operator role's inline policy document."
  value       = data.aws_iam_policy_document.operator.json
}
