output "event_bus_name" {
  description = "Name of the fleet's event bus (BACKUP_EVENT_BUS)."
  value       = aws_cloudwatch_event_bus.fleet.name
}

output "event_bus_arn" {
  description = "ARN of the fleet's event bus (the worker's events:PutEvents resource)."
  value       = aws_cloudwatch_event_bus.fleet.arn
}

output "rule_arns" {
  description = "ARNs of the ingest rules, by rule name."
  value       = { for k, r in aws_cloudwatch_event_rule.ingest : k => r.arn }
}

output "failure_rule_arn" {
  description = "ARN of the rule sending fleet failure events to the alerts topic."
  value       = aws_cloudwatch_event_rule.failures.arn
}

output "alerts_topic_arn" {
  description = "ARN of the alerts SNS topic (alarm actions)."
  value       = aws_sns_topic.alerts.arn
}
