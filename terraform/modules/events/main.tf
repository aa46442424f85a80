data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}
data "aws_region" "current" {}

locals {
  account_id = data.aws_caller_identity.current.account_id
  partition  = data.aws_partition.current.partition
  region     = data.aws_region.current.name

  # Rules keyed by name. The names are used verbatim (plus the optional prefix): the producer
  # recognises a schedule firing by the rule ARN in the event's `resources`.
  rules = { for r in var.rules : "${var.rule_name_prefix}${r.name}" => r }

  rule_arns = [for r in aws_cloudwatch_event_rule.ingest : r.arn]
}

# ---------------------------------------------------------------------------------------------
# Ingest rules on the default bus -> events queue. The list is `backup-producer rules --json`.
# ---------------------------------------------------------------------------------------------

resource "aws_cloudwatch_event_rule" "ingest" {
  for_each = local.rules

  name                = each.key
  description         = coalesce(each.value.description, "backup-fleet: ${each.value.schedule_expression != null ? "schedule" : "event pattern"} ${each.value.name}")
  schedule_expression = each.value.schedule_expression
  event_pattern       = each.value.event_pattern
  state               = var.rules_enabled ? "ENABLED" : "DISABLED"

  tags = var.tags
}

resource "aws_cloudwatch_event_target" "ingest" {
  for_each = local.rules

  rule      = aws_cloudwatch_event_rule.ingest[each.key].name
  target_id = "events-queue"
  arn       = var.events_queue_arn

  retry_policy {
    maximum_event_age_in_seconds = var.target_maximum_event_age_seconds
    maximum_retry_attempts       = var.target_maximum_retry_attempts
  }

  # Events EventBridge could not deliver land in the events DLQ, next to the ones the producer
  # gave up on, so one `backupctl dlq replay` covers both.
  dead_letter_config {
    arn = var.events_dlq_arn
  }
}

# S3 "Object Created" events reach EventBridge only when the bucket sends them there.
resource "aws_s3_bucket_notification" "eventbridge" {
  for_each = toset(var.eventbridge_notification_bucket_names)

  bucket      = each.value
  eventbridge = true
}

# ---------------------------------------------------------------------------------------------
# Events queue and its DLQ accept SendMessage only from the rules above (aws:SourceArn).
# ---------------------------------------------------------------------------------------------

data "aws_iam_policy_document" "events_queue" {
  for_each = {
    events_queue = var.events_queue_arn
    events_dlq   = var.events_dlq_arn
  }

  dynamic "statement" {
    for_each = length(local.rule_arns) > 0 ? [1] : []
    content {
      sid       = "AllowBackupFleetRules"
      effect    = "Allow"
      actions   = ["sqs:SendMessage"]
      resources = [each.value]

      principals {
        type        = "Service"
        identifiers = ["events.amazonaws.com"]
      }

      condition {
        test     = "ArnEquals"
        variable = "aws:SourceArn"
        values   = local.rule_arns
      }
    }
  }

  statement {
    sid       = "DenyInsecureTransport"
    effect    = "Deny"
    actions   = ["sqs:*"]
    resources = [each.value]

    principals {
      type        = "*"
      identifiers = ["*"]
    }

    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }
}

resource "aws_sqs_queue_policy" "events_queue" {
  for_each = {
    events_queue = var.events_queue_url
    events_dlq   = var.events_dlq_url
  }

  queue_url = each.value
  policy    = data.aws_iam_policy_document.events_queue[each.key].json
}

# ---------------------------------------------------------------------------------------------
# The fleet's own bus (BACKUP_EVENT_BUS): workers publish task outcomes on it. Failures go to
# the alerts topic.
# ---------------------------------------------------------------------------------------------

resource "aws_cloudwatch_event_bus" "fleet" {
  name = var.name

  tags = var.tags
}

resource "aws_cloudwatch_event_rule" "failures" {
  name           = "${var.name}-task-failures"
  description    = "backup-fleet: failed and dead tasks -> alerts topic"
  event_bus_name = aws_cloudwatch_event_bus.fleet.name

  event_pattern = jsonencode({
    source        = [var.fleet_event_source]
    "detail-type" = var.failure_detail_types
  })

  tags = var.tags
}

resource "aws_cloudwatch_event_target" "failures" {
  rule           = aws_cloudwatch_event_rule.failures.name
  event_bus_name = aws_cloudwatch_event_bus.fleet.name
  target_id      = "alerts-topic"
  arn            = aws_sns_topic.alerts.arn
}

# ---------------------------------------------------------------------------------------------
# Alerts topic: fleet failure events and CloudWatch alarms (see the `monitoring` module).
# ---------------------------------------------------------------------------------------------

resource "aws_sns_topic" "alerts" {
  name              = "${var.name}-alerts"
  kms_master_key_id = var.kms_key_arn

  tags = var.tags
}

data "aws_iam_policy_document" "alerts" {
  statement {
    sid       = "AllowFleetFailureRule"
    effect    = "Allow"
    actions   = ["sns:Publish"]
    resources = [aws_sns_topic.alerts.arn]

    principals {
      type        = "Service"
      identifiers = ["events.amazonaws.com"]
    }

    condition {
      test     = "ArnEquals"
      variable = "aws:SourceArn"
      values   = [aws_cloudwatch_event_rule.failures.arn]
    }
  }

  statement {
    sid       = "AllowCloudWatchAlarms"
    effect    = "Allow"
    actions   = ["sns:Publish"]
    resources = [aws_sns_topic.alerts.arn]

    principals {
      type        = "Service"
      identifiers = ["cloudwatch.amazonaws.com"]
    }

    condition {
      test     = "ArnLike"
      variable = "aws:SourceArn"
      values   = ["arn:${local.partition}:cloudwatch:${local.region}:${local.account_id}:alarm:*"]
    }
  }

  statement {
    sid       = "DenyInsecureTransport"
    effect    = "Deny"
    actions   = ["sns:Publish"]
    resources = [aws_sns_topic.alerts.arn]

    principals {
      type        = "*"
      identifiers = ["*"]
    }

    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }
}

resource "aws_sns_topic_policy" "alerts" {
  arn    = aws_sns_topic.alerts.arn
  policy = data.aws_iam_policy_document.alerts.json
}

resource "aws_sns_topic_subscription" "email" {
  for_each = toset(var.alert_email_addresses)

  topic_arn = aws_sns_topic.alerts.arn
  protocol  = "email"
  endpoint  = each.value
}
