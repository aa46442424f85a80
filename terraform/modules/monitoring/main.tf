data "aws_region" "current" {}

locals {
  region        = data.aws_region.current.name
  alarm_actions = [var.alarm_topic_arn]
}

###############################################################################################
# Alarms on the queues (AWS/SQS)
#
# SQS publishes these metrics every minute, zeros included, for every queue CloudWatch considers
# active: one that holds messages or was called in the last six hours. Missing data therefore
# means an empty queue nobody touches, which is not breaching.
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

###############################################################################################
# Alarms on the fleet's own metrics (namespace var.metrics_namespace, written by the ADOT sidecar)
#
# What lands in CloudWatch is fixed by local.emf_metric_dimensions in modules/fleet/main.tf:
# `tasks_total` by `outcome` (the worker's disposition: succeeded, failed, dead, retried, parked,
# waiting_for_capacity, handed_back), `aws_calls_total` / `aws_throttled_total` dimensionless, ...
# Counters are exported with delta temporality: one data point per task per minute *in which the
# counter moved*, valued at the increment, so they are read with the Sum statistic, and a period
# without events has no data point at all (not a zero). Two consequences shape these alarms:
#   - a ratio is computed only where its denominator has data (work happened), from SUM([...]) of
#     the series involved, which has a value wherever any of them has one; a period without work
#     yields no data point, and "no data" is then treated as not breaching;
#   - an alarm whose point is the absence of work (task_no_progress) must not read "no data" as
#     fine: it treats missing data as breaching, and is written so that missing data can only
#     come from the lack of completions while work is waiting.
# scripts/check_metrics.py fails if any alarm or widget reads a metric, dimension set or
# statistic that the code and the collector do not produce.
###############################################################################################

# failure rate (%) = 100 * (failed + dead) / (succeeded + failed + dead) per period: the share of
# tasks that ended badly among the tasks that ended. `failed` is a permanent error (the message is
# deleted: this alarm and the `Backup Task Failed` event are the only signals); `dead` exhausted its
# retries (it also reaches the task DLQ). Retried, parked and handed-back runs are not endings.
#
# treat_missing_data = notBreaching: the expression has a value only in periods in which some task
# ended (finished has data); with no ending there is nothing to judge, and a fleet that stops
# ending tasks while work waits is task_no_progress's job. When tasks ended but none failed,
# `bad` has no data and neither has the rate: also correctly not breaching.
resource "aws_cloudwatch_metric_alarm" "task_failure_rate" {
  alarm_name          = "${var.name}-task-failure-rate"
  alarm_description   = "More than ${var.failure_rate_threshold_percent}% of the tasks that ended in a ${var.failure_rate_period_seconds}-second period failed or went dead (${var.metrics_namespace} tasks_total by outcome). Read the `Backup Task Failed` / `Backup Task Dead` events on the alerts topic and the worker logs for their task ids."
  evaluation_periods  = var.failure_rate_evaluation_periods
  datapoints_to_alarm = var.failure_rate_evaluation_periods
  threshold           = var.failure_rate_threshold_percent
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions

  metric_query {
    id          = "succeeded"
    return_data = false

    metric {
      namespace   = var.metrics_namespace
      metric_name = "tasks_total"
      dimensions  = { outcome = "succeeded" }
      period      = var.failure_rate_period_seconds
      stat        = "Sum"
    }
  }

  metric_query {
    id          = "failed"
    return_data = false

    metric {
      namespace   = var.metrics_namespace
      metric_name = "tasks_total"
      dimensions  = { outcome = "failed" }
      period      = var.failure_rate_period_seconds
      stat        = "Sum"
    }
  }

  metric_query {
    id          = "dead"
    return_data = false

    metric {
      namespace   = var.metrics_namespace
      metric_name = "tasks_total"
      dimensions  = { outcome = "dead" }
      period      = var.failure_rate_period_seconds
      stat        = "Sum"
    }
  }

  metric_query {
    id          = "bad"
    expression  = "SUM([failed, dead])"
    return_data = false
  }

  metric_query {
    id          = "finished"
    expression  = "SUM([succeeded, failed, dead])"
    return_data = false
  }

  metric_query {
    id          = "failure_rate"
    label       = "Tasks that failed or went dead (% of tasks that ended)"
    expression  = "100 * bad / finished"
    return_data = true
  }

  tags = var.tags
}

# No progress: for `no_progress_evaluation_periods` consecutive periods of
# `no_progress_period_seconds`, the task queue always had visible (ready) messages and no task
# ended (succeeded, failed or dead). Workers are down, wedged, cannot reach AWS, or their metrics
# no longer arrive (ADOT sidecar down): each is worth a page.
#
# treat_missing_data = breaching: nothing-happened must not pass as fine. The expression is nested
# so that missing data can only mean "work waited and nothing ended": with an empty queue it is 0
# whatever the fleet metrics say; with a waiting queue it is 0 if some task ended, else 1 -- or no
# data, if CloudWatch cannot FILL a series that has no point in the whole window, which is then
# read as breaching, as it should. It is also missing if SQS publishes no metric for the queue,
# which happens only to an empty queue nobody has called for six hours: with workers long-polling
# around the clock (worker_min_capacity >= 1), that means no worker ran for six hours.
resource "aws_cloudwatch_metric_alarm" "task_no_progress" {
  alarm_name          = "${var.name}-task-no-progress"
  alarm_description   = "For ${var.no_progress_evaluation_periods} x ${var.no_progress_period_seconds} s the task queue had messages waiting and no task ended (${var.metrics_namespace} tasks_total). Check that worker tasks run (ECS service events), their logs, and that the ADOT sidecar exports metrics (/ecs/<name>/adot)."
  evaluation_periods  = var.no_progress_evaluation_periods
  datapoints_to_alarm = var.no_progress_evaluation_periods
  threshold           = 0
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "breaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions

  metric_query {
    id          = "waiting"
    return_data = false

    metric {
      namespace   = "AWS/SQS"
      metric_name = "ApproximateNumberOfMessagesVisible"
      dimensions  = { QueueName = var.task_queue_name }
      period      = var.no_progress_period_seconds
      stat        = "Minimum"
    }
  }

  metric_query {
    id          = "succeeded"
    return_data = false

    metric {
      namespace   = var.metrics_namespace
      metric_name = "tasks_total"
      dimensions  = { outcome = "succeeded" }
      period      = var.no_progress_period_seconds
      stat        = "Sum"
    }
  }

  metric_query {
    id          = "failed"
    return_data = false

    metric {
      namespace   = var.metrics_namespace
      metric_name = "tasks_total"
      dimensions  = { outcome = "failed" }
      period      = var.no_progress_period_seconds
      stat        = "Sum"
    }
  }

  metric_query {
    id          = "dead"
    return_data = false

    metric {
      namespace   = var.metrics_namespace
      metric_name = "tasks_total"
      dimensions  = { outcome = "dead" }
      period      = var.no_progress_period_seconds
      stat        = "Sum"
    }
  }

  metric_query {
    id          = "finished"
    expression  = "SUM([succeeded, failed, dead])"
    return_data = false
  }

  metric_query {
    id          = "stalled"
    label       = "Work waiting and no task ended (1 = stalled)"
    expression  = "IF(waiting > 0, IF(FILL(finished, 0) > 0, 0, 1), 0)"
    return_data = true
  }

  tags = var.tags
}

# AWS throttling (%) = 100 * throttled attempts / all attempts, over every AWS API the fleet calls
# (both services). The SDKs retry throttled calls, so a little is harmless; a sustained share slows
# every task and, for long, exhausts retries (failed and dead tasks follow).
#
# treat_missing_data = notBreaching: `throttled` has data only in periods with a throttled call, so
# the rate has data only then; no data means no throttling (or no calls at all).
resource "aws_cloudwatch_metric_alarm" "aws_throttling" {
  alarm_name          = "${var.name}-aws-throttling"
  alarm_description   = "More than ${var.throttle_rate_threshold_percent}% of the fleet's AWS API attempts were throttled in each of ${var.throttle_evaluation_periods} periods of ${var.throttle_period_seconds} s (${var.metrics_namespace} aws_throttled_total / aws_calls_total). The dashboard shows which service; lower worker concurrency or worker_max_capacity, or raise the account quota."
  evaluation_periods  = var.throttle_evaluation_periods
  datapoints_to_alarm = var.throttle_evaluation_periods
  threshold           = var.throttle_rate_threshold_percent
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions

  metric_query {
    id          = "calls"
    return_data = false

    metric {
      namespace   = var.metrics_namespace
      metric_name = "aws_calls_total"
      period      = var.throttle_period_seconds
      stat        = "Sum"
    }
  }

  metric_query {
    id          = "throttled"
    return_data = false

    metric {
      namespace   = var.metrics_namespace
      metric_name = "aws_throttled_total"
      period      = var.throttle_period_seconds
      stat        = "Sum"
    }
  }

  metric_query {
    id          = "throttle_rate"
    label       = "Throttled AWS API attempts (%)"
    expression  = "100 * throttled / calls"
    return_data = true
  }

  tags = var.tags
}

###############################################################################################
# Dashboard
###############################################################################################

resource "aws_cloudwatch_dashboard" "this" {
  dashboard_name = var.name

  # Every metric row names what is published: AWS/SQS, AWS/ECS and ECS/ContainerInsights series,
  # and the fleet's series in var.metrics_namespace with one of the dimension sets of
  # local.emf_metric_dimensions in modules/fleet (checked by scripts/check_metrics.py). Fleet
  # counters are read with Sum; periods without events have no point (the graphs show gaps, the
  # FILL(..., 0) expressions zeros).
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
          title  = "Tasks by outcome (per 5 min) and failure rate"
          region = local.region
          view   = "timeSeries"
          stat   = "Sum"
          period = 300
          metrics = [
            [var.metrics_namespace, "tasks_total", "outcome", "succeeded", { id = "succeeded", label = "succeeded" }],
            [var.metrics_namespace, "tasks_total", "outcome", "failed", { id = "failed", label = "failed" }],
            [var.metrics_namespace, "tasks_total", "outcome", "dead", { id = "dead", label = "dead (to the DLQ)" }],
            [var.metrics_namespace, "tasks_total", "outcome", "retried", { label = "retried" }],
            [var.metrics_namespace, "tasks_total", "outcome", "parked", { label = "parked (waiting on AWS)" }],
            [var.metrics_namespace, "tasks_total", "outcome", "waiting_for_capacity", { label = "waiting for capacity" }],
            [var.metrics_namespace, "tasks_total", "outcome", "handed_back", { label = "handed back (drain)" }],
            [{ expression = "100 * FILL(SUM([failed, dead]), 0) / SUM([succeeded, failed, dead])", id = "failure_rate", label = "failure rate (%)", yAxis = "right" }],
          ]
          annotations = {
            horizontal = [{ label = "failure-rate alarm (%)", value = var.failure_rate_threshold_percent, yAxis = "right" }]
          }
        }
      },
      {
        type = "metric", x = 0, y = 12, width = 12, height = 6
        properties = {
          title  = "Task duration (s)"
          region = local.region
          view   = "timeSeries"
          period = 300
          metrics = [
            [var.metrics_namespace, "task_duration_seconds", { stat = "Average", label = "average" }],
            [var.metrics_namespace, "task_duration_seconds", { stat = "Maximum", label = "maximum" }],
            [{ expression = "SEARCH('{${var.metrics_namespace},kind} MetricName=\"task_duration_seconds\"', 'Average', 300)", id = "duration_by_kind" }],
          ]
        }
      },
      {
        type = "metric", x = 12, y = 12, width = 12, height = 6
        properties = {
          title  = "Queue lag: enqueue to start (s)"
          region = local.region
          view   = "timeSeries"
          period = 300
          metrics = [
            [var.metrics_namespace, "queue_lag_seconds", { stat = "Average", label = "average" }],
            [var.metrics_namespace, "queue_lag_seconds", { stat = "Maximum", label = "maximum" }],
          ]
        }
      },
      {
        type = "metric", x = 0, y = 18, width = 12, height = 6
        properties = {
          title  = "Coordination (per 5 min)"
          region = local.region
          view   = "timeSeries"
          stat   = "Sum"
          period = 300
          metrics = [
            [var.metrics_namespace, "lease_takeovers_total", { label = "lease takeovers (a worker died or was interrupted)" }],
            [var.metrics_namespace, "stale_receipt_handles_total", { label = "stale receipt handles (visibility lapsed)" }],
            [var.metrics_namespace, "dlq_moves_total", { label = "moved to the DLQ" }],
            [{ expression = "SEARCH('{${var.metrics_namespace},reason_code} MetricName=\"dlq_moves_total\"', 'Sum', 300)", id = "dlq_by_reason" }],
          ]
        }
      },
      {
        type = "metric", x = 12, y = 18, width = 12, height = 6
        properties = {
          title  = "AWS API attempts and throttling (per 5 min)"
          region = local.region
          view   = "timeSeries"
          stat   = "Sum"
          period = 300
          metrics = [
            [var.metrics_namespace, "aws_calls_total", { id = "calls", label = "attempts" }],
            [var.metrics_namespace, "aws_throttled_total", { id = "throttled", label = "throttled" }],
            [{ expression = "100 * FILL(throttled, 0) / calls", id = "throttle_rate", label = "throttled (%)", yAxis = "right" }],
            [{ expression = "SEARCH('{${var.metrics_namespace},service} MetricName=\"aws_throttled_total\"', 'Sum', 300)", id = "throttled_by_service", yAxis = "left" }],
          ]
        }
      },
      {
        type = "metric", x = 0, y = 24, width = 12, height = 6
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
        type = "metric", x = 12, y = 24, width = 12, height = 6
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
        type = "alarm", x = 0, y = 30, width = 24, height = 3
        properties = {
          title = "Alarms"
          alarms = [
            aws_cloudwatch_metric_alarm.task_dlq_not_empty.arn,
            aws_cloudwatch_metric_alarm.events_dlq_not_empty.arn,
            aws_cloudwatch_metric_alarm.task_queue_oldest_message.arn,
            aws_cloudwatch_metric_alarm.events_queue_oldest_message.arn,
            aws_cloudwatch_metric_alarm.task_failure_rate.arn,
            aws_cloudwatch_metric_alarm.task_no_progress.arn,
            aws_cloudwatch_metric_alarm.aws_throttling.arn,
          ]
        }
      },
    ]
  })
}
