data "aws_region" "current" {}

locals {
  region        = data.aws_region.current.name
  alarm_actions = [var.alarm_topic_arn]
  fleet_dims    = [for k, v in var.fleet_metric_dimensions : [k, v]]
}

###############################################################################################
# Alarms
###############################################################################################

resource "aws_cloudwatch_metric_alarm" "task_dlq_not_empty" {
  alarm_name          = "${var.name}-task-dlq-not-empty"
  alarm_description   = "Task messages reached the task DLQ (receive count exhausted). Inspect and replay with `backupctl dlq`."
  namespace           = "AWS/SQS"
  metric_name         = "ApproximateNumberOfMessagesVisible"
  dimensions          = { QueueName = var.task_dlq_name }
  statistic           = "Maximum"
  period              = 60
  evaluation_periods  = 1
  threshold           = 0
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions

  tags = var.tags
}

resource "aws_cloudwatch_metric_alarm" "events_dlq_not_empty" {
  alarm_name          = "${var.name}-events-dlq-not-empty"
  alarm_description   = "Events reached the events DLQ (undeliverable by EventBridge or rejected by the producer). Inspect and replay with `backupctl dlq`."
  namespace           = "AWS/SQS"
  metric_name         = "ApproximateNumberOfMessagesVisible"
  dimensions          = { QueueName = var.events_dlq_name }
  statistic           = "Maximum"
  period              = 60
  evaluation_periods  = 1
  threshold           = 0
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions

  tags = var.tags
}

resource "aws_cloudwatch_metric_alarm" "task_queue_oldest_message" {
  alarm_name          = "${var.name}-task-queue-oldest-message-age"
  alarm_description   = "The oldest task message has waited too long: workers are stuck, down or under-scaled."
  namespace           = "AWS/SQS"
  metric_name         = "ApproximateAgeOfOldestMessage"
  dimensions          = { QueueName = var.task_queue_name }
  statistic           = "Maximum"
  period              = 60
  evaluation_periods  = var.oldest_message_evaluation_periods
  threshold           = var.oldest_message_age_threshold_seconds
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions

  tags = var.tags
}

resource "aws_cloudwatch_metric_alarm" "events_queue_oldest_message" {
  alarm_name          = "${var.name}-events-queue-oldest-message-age"
  alarm_description   = "The oldest event has waited too long: the producer is stuck or down."
  namespace           = "AWS/SQS"
  metric_name         = "ApproximateAgeOfOldestMessage"
  dimensions          = { QueueName = var.events_queue_name }
  statistic           = "Maximum"
  period              = 60
  evaluation_periods  = var.oldest_message_evaluation_periods
  threshold           = var.oldest_message_age_threshold_seconds
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions

  tags = var.tags
}

# failure rate (%) = 100 * TasksFailed / (TasksFailed + TasksCompleted), from the fleet's own
# metrics. No data (no tasks finished) is not a failure.
resource "aws_cloudwatch_metric_alarm" "task_failure_rate" {
  alarm_name          = "${var.name}-task-failure-rate"
  alarm_description   = "More than ${var.failure_rate_threshold_percent}% of finished tasks failed (${var.metrics_namespace} TasksFailed / (TasksFailed + TasksCompleted))."
  evaluation_periods  = var.failure_rate_evaluation_periods
  threshold           = var.failure_rate_threshold_percent
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions

  metric_query {
    id          = "failed"
    return_data = false

    metric {
      namespace   = var.metrics_namespace
      metric_name = "TasksFailed"
      dimensions  = var.fleet_metric_dimensions
      period      = var.failure_rate_period_seconds
      stat        = "Sum"
    }
  }

  metric_query {
    id          = "completed"
    return_data = false

    metric {
      namespace   = var.metrics_namespace
      metric_name = "TasksCompleted"
      dimensions  = var.fleet_metric_dimensions
      period      = var.failure_rate_period_seconds
      stat        = "Sum"
    }
  }

  metric_query {
    id          = "failure_rate"
    label       = "Task failure rate (%)"
    expression  = "IF((failed + completed) > 0, 100 * failed / (failed + completed), 0)"
    return_data = true
  }

  tags = var.tags
}

###############################################################################################
# Dashboard
###############################################################################################

resource "aws_cloudwatch_dashboard" "this" {
  dashboard_name = var.name

  dashboard_body = jsonencode({
    widgets = [
      {
        type = "metric", x = 0, y = 0, width = 12, height = 6
        properties = {
          title  = "Queue depth (visible)"
          region = local.region
          view   = "timeSeries"
          stat   = "Maximum"
          period = 60
          metrics = [
            ["AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName", var.task_queue_name, { label = "tasks" }],
            ["AWS/SQS", "ApproximateNumberOfMessagesNotVisible", "QueueName", var.task_queue_name, { label = "tasks in flight" }],
            ["AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName", var.events_queue_name, { label = "events" }],
          ]
        }
      },
      {
        type = "metric", x = 12, y = 0, width = 12, height = 6
        properties = {
          title  = "Dead-letter queues"
          region = local.region
          view   = "timeSeries"
          stat   = "Maximum"
          period = 60
          metrics = [
            ["AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName", var.task_dlq_name, { label = "task DLQ" }],
            ["AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName", var.events_dlq_name, { label = "events DLQ" }],
          ]
        }
      },
      {
        type = "metric", x = 0, y = 6, width = 12, height = 6
        properties = {
          title  = "Oldest message age (s)"
          region = local.region
          view   = "timeSeries"
          stat   = "Maximum"
          period = 60
          metrics = [
            ["AWS/SQS", "ApproximateAgeOfOldestMessage", "QueueName", var.task_queue_name, { label = "tasks" }],
            ["AWS/SQS", "ApproximateAgeOfOldestMessage", "QueueName", var.events_queue_name, { label = "events" }],
          ]
          annotations = {
            horizontal = [{ label = "alarm", value = var.oldest_message_age_threshold_seconds }]
          }
        }
      },
      {
        type = "metric", x = 12, y = 6, width = 12, height = 6
        properties = {
          title  = "Tasks finished (${var.metrics_namespace})"
          region = local.region
          view   = "timeSeries"
          stat   = "Sum"
          period = 300
          metrics = [
            concat([var.metrics_namespace, "TasksCompleted"], flatten(local.fleet_dims), [{ id = "completed", label = "completed" }]),
            concat([var.metrics_namespace, "TasksFailed"], flatten(local.fleet_dims), [{ id = "failed", label = "failed" }]),
            [{ expression = "IF((failed + completed) > 0, 100 * failed / (failed + completed), 0)", label = "failure rate (%)", id = "rate", yAxis = "right" }],
          ]
        }
      },
      {
        type = "metric", x = 0, y = 12, width = 12, height = 6
        properties = {
          title  = "Running tasks"
          region = local.region
          view   = "timeSeries"
          stat   = "Average"
          period = 60
          metrics = [
            ["ECS/ContainerInsights", "RunningTaskCount", "ClusterName", var.cluster_name, "ServiceName", var.worker_service_name, { label = "workers" }],
            ["ECS/ContainerInsights", "RunningTaskCount", "ClusterName", var.cluster_name, "ServiceName", var.producer_service_name, { label = "producer" }],
          ]
        }
      },
      {
        type = "metric", x = 12, y = 12, width = 12, height = 6
        properties = {
          title  = "CPU / memory utilisation (%)"
          region = local.region
          view   = "timeSeries"
          stat   = "Average"
          period = 60
          metrics = [
            ["AWS/ECS", "CPUUtilization", "ClusterName", var.cluster_name, "ServiceName", var.worker_service_name, { label = "worker CPU" }],
            ["AWS/ECS", "MemoryUtilization", "ClusterName", var.cluster_name, "ServiceName", var.worker_service_name, { label = "worker memory" }],
            ["AWS/ECS", "CPUUtilization", "ClusterName", var.cluster_name, "ServiceName", var.producer_service_name, { label = "producer CPU" }],
            ["AWS/ECS", "MemoryUtilization", "ClusterName", var.cluster_name, "ServiceName", var.producer_service_name, { label = "producer memory" }],
          ]
        }
      },
      {
        type = "alarm", x = 0, y = 18, width = 24, height = 3
        properties = {
          title = "Alarms"
          alarms = [
            aws_cloudwatch_metric_alarm.task_dlq_not_empty.arn,
            aws_cloudwatch_metric_alarm.events_dlq_not_empty.arn,
            aws_cloudwatch_metric_alarm.task_queue_oldest_message.arn,
            aws_cloudwatch_metric_alarm.events_queue_oldest_message.arn,
            aws_cloudwatch_metric_alarm.task_failure_rate.arn,
          ]
        }
      },
    ]
  })
}
