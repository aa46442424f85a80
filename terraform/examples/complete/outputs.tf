output "environment" {
  description = "The fleet's environment variables (what the ECS tasks get; export them to run `backupctl` against this stack)."
  value       = module.fleet.worker_environment
}

output "task_queue_url" {
  description = "BACKUP_TASK_QUEUE_URL."
  value       = module.queues.task_queue_url
}

output "events_queue_url" {
  description = "BACKUP_EVENT_QUEUE_URL."
  value       = module.queues.events_queue_url
}

output "state_table_name" {
  description = "BACKUP_STATE_TABLE."
  value       = module.state.state_table_name
}

output "catalog_table_name" {
  description = "BACKUP_CATALOG_TABLE."
  value       = module.state.catalog_table_name
}

output "event_bus_name" {
  description = "BACKUP_EVENT_BUS."
  value       = module.events.event_bus_name
}

output "backup_bucket_name" {
  description = "Name of the backup bucket."
  value       = module.backup_bucket.bucket_name
}

output "cluster_name" {
  description = "ECS cluster."
  value       = module.fleet.cluster_name
}

output "producer_service_name" {
  description = "Producer ECS service."
  value       = module.fleet.producer_service_name
}

output "worker_service_name" {
  description = "Worker ECS service."
  value       = module.fleet.worker_service_name
}

output "alerts_topic_arn" {
  description = "SNS alerts topic."
  value       = module.events.alerts_topic_arn
}

output "dashboard_name" {
  description = "CloudWatch dashboard."
  value       = module.monitoring.dashboard_name
}

output "operator_role_arn" {
  description = "Role to assume to run `backupctl` against this stack."
  value       = module.iam.operator_role_arn
}

output "producer_role_arn" {
  description = "Producer task role: goes into each member account's member-account module (`fleet_role_arns`)."
  value       = module.iam.producer_role_arn
}

output "worker_role_arn" {
  description = "Worker task role: goes into each member account's member-account module (`fleet_role_arns`) and the backup account's backup-account module (`worker_role_arn`, `writer_role_arns`)."
  value       = module.iam.worker_role_arn
}

output "rds_export_role_arn" {
  description = "Role RDS assumes to write snapshot exports: put it in the policy's export.iam_role_arn."
  value       = module.iam.rds_export_role_arn
}

output "queue_settings" {
  description = "Queue settings as applied (compare with `backupctl bootstrap`'s defaults)."
  value       = module.queues.settings
}
