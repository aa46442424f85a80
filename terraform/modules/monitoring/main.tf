data "aws_region" "current" {}

locals {
  region        = data.aws_region.current.name
  alarm_actions = [var.alarm_topic_arn]

  # Coverage passes publish coverage_resources once per interval (plus the pass's own duration and
  # up to a minute's export delay). A period of twice the interval, in whole minutes, always holds
  # at least one pass; at least an hour, so that a slow pass of a large estate (its duration adds
  # to the spacing) still lands in every period. With coverage off it only sizes the dashboard.
  coverage_enabled        = var.coverage_interval_seconds > 0
  coverage_period_seconds = max(3600, 120 * ceil(var.coverage_interval_seconds / 60))
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
# Coverage (the producer's coverage passes: coverage_resources{status, resource_type})
#
# Every `coverage_interval_seconds` the producer discovers every resource in the regions its plans
# name and publishes, for each status x resource type, how many resources have it -- zeros
# included, so a count that drops back to 0 clears the alarm. A gauge exported with delta
# temporality has one data point per series and pass and none in between, and each point is also
# a sample of its [status] series: Maximum over a period that always holds a pass is the largest
# count of one resource type in that status, above 0 exactly when any resource has it.
###############################################################################################

# Coverage gaps: a resource some plan selects is failing (its task in the plan's newest run failed
# or went dead), was never backed up, or is stale (its newest good backup is older than the plan's
# schedule period plus 25%, the producer's grace). SUM over the three statuses of the per-status
# Maximum: > 0 when any resource is in any of them (a lower bound of how many; the dashboard and
# `backupctl report coverage` count them). A resource created between two backup windows counts
# as never-backed-up until its first backup: the classifier has no grace for new resources.
#
# treat_missing_data = breaching. The producer publishes every status on every pass, zeros
# included, so no data at all (CloudWatch looks back over a few periods before it calls data
# missing) means that no pass has landed for hours: coverage passes fail (the producer logs
# "coverage pass failed": a denied or throttled catalog or state-table read, no catalog table),
# the producer or its ADOT sidecar is down, or coverage was turned off in the fleet module but not
# here. Only a stopped producer also shows elsewhere (events-queue-oldest-message-age, once an
# event waits); a failing pass or a dead sidecar shows nowhere else, and "coverage not measured"
# must not read as "every resource covered". A new deployment can see ALARM until its first pass
# lands (the producer runs one at start). The alarm exists only while coverage is on.
resource "aws_cloudwatch_metric_alarm" "coverage_gaps" {
  count = local.coverage_enabled ? 1 : 0

  alarm_name          = "${var.name}-coverage-gaps"
  alarm_description   = "A coverage pass found resources that a plan selects but that are failing (a task of the plan's newest run failed or went dead), never backed up, or stale (newest good backup older than the schedule period plus 25%) (${var.metrics_namespace} coverage_resources by status, Maximum per ${local.coverage_period_seconds} s). List them with `backupctl report coverage`. In ALARM without data: no coverage pass was published for hours; check the producer service, its log for \"coverage pass failed\" and its ADOT sidecar (/ecs/<name>/adot)."
  evaluation_periods  = 1
  datapoints_to_alarm = 1
  threshold           = 0
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "breaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions

  metric_query {
    id          = "failing"
    return_data = false

    metric {
      namespace   = var.metrics_namespace
      metric_name = "coverage_resources"
      dimensions  = { status = "failing" }
      period      = local.coverage_period_seconds
      stat        = "Maximum"
    }
  }

  metric_query {
    id          = "never_backed_up"
    return_data = false

    metric {
      namespace   = var.metrics_namespace
      metric_name = "coverage_resources"
      dimensions  = { status = "never-backed-up" }
      period      = local.coverage_period_seconds
      stat        = "Maximum"
    }
  }

  metric_query {
    id          = "stale"
    return_data = false

    metric {
      namespace   = var.metrics_namespace
      metric_name = "coverage_resources"
      dimensions  = { status = "stale" }
      period      = local.coverage_period_seconds
      stat        = "Maximum"
    }
  }

  metric_query {
    id          = "gaps"
    label       = "Selected resources failing, never backed up or stale (at least)"
    expression  = "SUM([failing, never_backed_up, stale])"
    return_data = true
  }

  tags = var.tags
}

# Unprotected resources: no plan's tags select them. Off unless
# var.coverage_alarm_on_unprotected: many estates keep resources outside every plan on purpose.
# A lower-severity signal than coverage_gaps: treat_missing_data = missing, so a lack of passes
# leaves it INSUFFICIENT_DATA without a notification (coverage_gaps reports that) rather than
# paging twice or sending an OK that nothing measured.
resource "aws_cloudwatch_metric_alarm" "coverage_unprotected" {
  count = local.coverage_enabled && var.coverage_alarm_on_unprotected ? 1 : 0

  alarm_name          = "${var.name}-coverage-unprotected"
  alarm_description   = "Warning: a coverage pass found resources that no plan selects (${var.metrics_namespace} coverage_resources{status=unprotected}, Maximum per ${local.coverage_period_seconds} s). Tag them for a plan if they need backups; list them with `backupctl report coverage`."
  namespace           = var.metrics_namespace
  metric_name         = "coverage_resources"
  dimensions          = { status = "unprotected" }
  statistic           = "Maximum"
  period              = local.coverage_period_seconds
  evaluation_periods  = 1
  datapoints_to_alarm = 1
  threshold           = 0
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "missing"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions

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
      # Coverage: per-status totals of the estate, each the SUM over resource types of the
      # [status, resource_type] series (Maximum per period: the worse pass when two share one).
      # Stacked, the top edge is the number of resources discovered.
      {
        type = "metric", x = 0, y = 30, width = 12, height = 6
        properties = {
          title   = "Coverage: resources by status"
          region  = local.region
          view    = "timeSeries"
          stacked = true
          period  = local.coverage_period_seconds
          metrics = [
            [{ expression = "SUM(SEARCH('{${var.metrics_namespace},resource_type,status} MetricName=\"coverage_resources\" status=\"failing\"', 'Maximum', ${local.coverage_period_seconds}))", id = "failing", label = "failing", color = "#d62728" }],
            [{ expression = "SUM(SEARCH('{${var.metrics_namespace},resource_type,status} MetricName=\"coverage_resources\" status=\"never-backed-up\"', 'Maximum', ${local.coverage_period_seconds}))", id = "never_backed_up", label = "never-backed-up", color = "#ff7f0e" }],
            [{ expression = "SUM(SEARCH('{${var.metrics_namespace},resource_type,status} MetricName=\"coverage_resources\" status=\"stale\"', 'Maximum', ${local.coverage_period_seconds}))", id = "stale", label = "stale", color = "#bcbd22" }],
            [{ expression = "SUM(SEARCH('{${var.metrics_namespace},resource_type,status} MetricName=\"coverage_resources\" status=\"unprotected\"', 'Maximum', ${local.coverage_period_seconds}))", id = "unprotected", label = "unprotected", color = "#9467bd" }],
            [{ expression = "SUM(SEARCH('{${var.metrics_namespace},resource_type,status} MetricName=\"coverage_resources\" status=\"excluded\"', 'Maximum', ${local.coverage_period_seconds}))", id = "excluded", label = "excluded", color = "#7f7f7f" }],
            [{ expression = "SUM(SEARCH('{${var.metrics_namespace},resource_type,status} MetricName=\"coverage_resources\" status=\"protected\"', 'Maximum', ${local.coverage_period_seconds}))", id = "protected", label = "protected", color = "#2ca02c" }],
          ]
        }
      },
      {
        type = "metric", x = 12, y = 30, width = 12, height = 6
        properties = {
          title  = "Coverage gaps by resource type (failing, never backed up, stale)"
          region = local.region
          view   = "timeSeries"
          period = local.coverage_period_seconds
          metrics = [
            [{ expression = "SEARCH('{${var.metrics_namespace},resource_type,status} MetricName=\"coverage_resources\" (status=\"failing\" OR status=\"never-backed-up\" OR status=\"stale\")', 'Maximum', ${local.coverage_period_seconds})", id = "gaps_by_type" }],
          ]
        }
      },
      {
        type = "alarm", x = 0, y = 36, width = 24, height = 3
        properties = {
          title = "Alarms"
          alarms = concat([
            aws_cloudwatch_metric_alarm.task_dlq_not_empty.arn,
            aws_cloudwatch_metric_alarm.events_dlq_not_empty.arn,
            aws_cloudwatch_metric_alarm.task_queue_oldest_message.arn,
            aws_cloudwatch_metric_alarm.events_queue_oldest_message.arn,
            aws_cloudwatch_metric_alarm.task_failure_rate.arn,
            aws_cloudwatch_metric_alarm.task_no_progress.arn,
            aws_cloudwatch_metric_alarm.aws_throttling.arn,
          ], aws_cloudwatch_metric_alarm.coverage_gaps[*].arn, aws_cloudwatch_metric_alarm.coverage_unprotected[*].arn)
        }
      },
    ]
  })
}
