output "alarm_arns" {
  description = "ARNs of the alarms, by purpose (null for a coverage alarm that is off)."
  value = {
    task_dlq_not_empty          = aws_cloudwatch_metric_alarm.task_dlq_not_empty.arn
    events_dlq_not_empty        = aws_cloudwatch_metric_alarm.events_dlq_not_empty.arn
    task_queue_oldest_message   = aws_cloudwatch_metric_alarm.task_queue_oldest_message.arn
    events_queue_oldest_message = aws_cloudwatch_metric_alarm.events_queue_oldest_message.arn
    task_failure_rate           = aws_cloudwatch_metric_alarm.task_failure_rate.arn
    task_no_progress            = aws_cloudwatch_metric_alarm.task_no_progress.arn
    aws_throttling              = aws_cloudwatch_metric_alarm.aws_throttling.arn
    coverage_gaps               = one(aws_cloudwatch_metric_alarm.coverage_gaps[*].arn)
    coverage_unprotected        = one(aws_cloudwatch_metric_alarm.coverage_unprotected[*].arn)
  }
}

output "dashboard_name" {
  description = "Name of the CloudWatch dashboard."
  value       = aws_cloudwatch_dashboard.this.dashboard_name
}
