output "cluster_name" {
  description = "Name of the ECS cluster."
  value       = aws_ecs_cluster.this.name
}

output "cluster_arn" {
  description = "ARN of the ECS cluster."
  value       = aws_ecs_cluster.this.arn
}

output "producer_service_name" {
  description = "Name of the producer service."
  value       = aws_ecs_service.producer.name
}

output "worker_service_name" {
  description = "Name of the worker service."
  value       = aws_ecs_service.worker.name
}

output "producer_task_definition_arn" {
  description = "ARN of the producer task definition revision."
  value       = aws_ecs_task_definition.producer.arn
}

output "worker_task_definition_arn" {
  description = "ARN of the worker task definition revision."
  value       = aws_ecs_task_definition.worker.arn
}

output "log_group_names" {
  description = "Log groups of the producer, worker and ADOT containers."
  value       = { for k, g in aws_cloudwatch_log_group.this : k => g.name }
}

output "log_group_arns" {
  description = "ARNs (without `:*`) of the container log groups, for the execution role."
  value       = [for g in aws_cloudwatch_log_group.this : g.arn]
}

output "metrics_log_group_arn" {
  description = "ARN (without `:*`) of the EMF metrics log group written by the ADOT sidecar."
  value       = aws_cloudwatch_log_group.metrics.arn
}

output "worker_environment" {
  description = "The worker container's environment (for running backupctl with the same settings)."
  value       = local.worker_environment
}

output "metrics_namespace" {
  description = "CloudWatch namespace of the fleet's own metrics (pass it to the monitoring module)."
  value       = var.metrics_namespace
}

output "coverage_interval_seconds" {
  description = "Seconds between the producer's coverage passes (0: off); pass it to the monitoring module, which sizes the coverage alarm's period from it."
  value       = var.coverage_interval_seconds
}
