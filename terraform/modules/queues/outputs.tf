output "task_queue_url" {
  description = "URL of the task queue (BACKUP_TASK_QUEUE_URL)."
  value       = aws_sqs_queue.tasks.id
}

output "task_queue_arn" {
  description = "ARN of the task queue."
  value       = aws_sqs_queue.tasks.arn
}

output "task_queue_name" {
  description = "Name of the task queue (the CloudWatch `QueueName` dimension)."
  value       = aws_sqs_queue.tasks.name
}

output "task_dlq_url" {
  description = "URL of the task DLQ (BACKUP_TASK_DLQ_URL)."
  value       = aws_sqs_queue.task_dlq.id
}

output "task_dlq_arn" {
  description = "ARN of the task DLQ."
  value       = aws_sqs_queue.task_dlq.arn
}

output "task_dlq_name" {
  description = "Name of the task DLQ."
  value       = aws_sqs_queue.task_dlq.name
}

output "events_queue_url" {
  description = "URL of the events queue (BACKUP_EVENT_QUEUE_URL)."
  value       = aws_sqs_queue.events.id
}

output "events_queue_arn" {
  description = "ARN of the events queue (the target of every EventBridge rule)."
  value       = aws_sqs_queue.events.arn
}

output "events_queue_name" {
  description = "Name of the events queue."
  value       = aws_sqs_queue.events.name
}

output "events_dlq_url" {
  description = "URL of the events DLQ (BACKUP_EVENT_DLQ_URL)."
  value       = aws_sqs_queue.events_dlq.id
}

output "events_dlq_arn" {
  description = "ARN of the events DLQ (also the dead-letter target of the EventBridge rule targets)."
  value       = aws_sqs_queue.events_dlq.arn
}

output "events_dlq_name" {
  description = "Name of the events DLQ."
  value       = aws_sqs_queue.events_dlq.name
}

output "settings" {
  description = "The queue settings as applied, for comparison with `backupctl bootstrap`'s defaults."
  value = {
    task_visibility_timeout_seconds   = var.task_visibility_timeout_seconds
    task_max_receive_count            = var.task_max_receive_count
    task_message_retention_seconds    = var.task_message_retention_seconds
    receive_wait_time_seconds         = var.receive_wait_time_seconds
    events_visibility_timeout_seconds = var.events_visibility_timeout_seconds
    events_max_receive_count          = var.events_max_receive_count
    events_message_retention_seconds  = var.events_message_retention_seconds
    dlq_message_retention_seconds     = var.dlq_message_retention_seconds
  }
}
