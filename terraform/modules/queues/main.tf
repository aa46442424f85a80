locals {
  task_queue_name   = "${var.name}-tasks"
  task_dlq_name     = "${var.name}-tasks-dlq"
  events_queue_name = "${var.name}-events"
  events_dlq_name   = "${var.name}-events-dlq"
}

# ---------------------------------------------------------------------------------------------
# Dead-letter queues. They keep messages longer (14 days by default) than the source queues
# (4 days) so an operator has time to inspect and replay them (`backupctl dlq replay`).
# ---------------------------------------------------------------------------------------------

resource "aws_sqs_queue" "task_dlq" {
  name                              = local.task_dlq_name
  message_retention_seconds         = var.dlq_message_retention_seconds
  kms_master_key_id                 = var.kms_key_arn
  kms_data_key_reuse_period_seconds = var.kms_data_key_reuse_period_seconds

  tags = var.tags
}

resource "aws_sqs_queue" "events_dlq" {
  name                              = local.events_dlq_name
  message_retention_seconds         = var.dlq_message_retention_seconds
  kms_master_key_id                 = var.kms_key_arn
  kms_data_key_reuse_period_seconds = var.kms_data_key_reuse_period_seconds

  tags = var.tags
}

# ---------------------------------------------------------------------------------------------
# Task queue: producer -> workers. The worker extends visibility with a heartbeat, so the
# visibility timeout must be at least twice the heartbeat interval.
# ---------------------------------------------------------------------------------------------

resource "aws_sqs_queue" "tasks" {
  name                              = local.task_queue_name
  visibility_timeout_seconds        = var.task_visibility_timeout_seconds
  message_retention_seconds         = var.task_message_retention_seconds
  receive_wait_time_seconds         = var.receive_wait_time_seconds
  kms_master_key_id                 = var.kms_key_arn
  kms_data_key_reuse_period_seconds = var.kms_data_key_reuse_period_seconds

  redrive_policy = jsonencode({
    deadLetterTargetArn = aws_sqs_queue.task_dlq.arn
    maxReceiveCount     = var.task_max_receive_count
  })

  tags = var.tags

  lifecycle {
    precondition {
      condition     = var.task_visibility_timeout_seconds >= 2 * var.worker_heartbeat_seconds
      error_message = "task_visibility_timeout_seconds must be at least 2 x worker_heartbeat_seconds, or a live task's message reappears between two heartbeats."
    }
  }
}

# Events queue: EventBridge rules -> producer.
resource "aws_sqs_queue" "events" {
  name                              = local.events_queue_name
  visibility_timeout_seconds        = var.events_visibility_timeout_seconds
  message_retention_seconds         = var.events_message_retention_seconds
  receive_wait_time_seconds         = var.receive_wait_time_seconds
  kms_master_key_id                 = var.kms_key_arn
  kms_data_key_reuse_period_seconds = var.kms_data_key_reuse_period_seconds

  redrive_policy = jsonencode({
    deadLetterTargetArn = aws_sqs_queue.events_dlq.arn
    maxReceiveCount     = var.events_max_receive_count
  })

  tags = var.tags
}

# Only the matching source queue may redrive into each DLQ.
resource "aws_sqs_queue_redrive_allow_policy" "task_dlq" {
  queue_url = aws_sqs_queue.task_dlq.id

  redrive_allow_policy = jsonencode({
    redrivePermission = "byQueue"
    sourceQueueArns   = [aws_sqs_queue.tasks.arn]
  })
}

resource "aws_sqs_queue_redrive_allow_policy" "events_dlq" {
  queue_url = aws_sqs_queue.events_dlq.id

  redrive_allow_policy = jsonencode({
    redrivePermission = "byQueue"
    sourceQueueArns   = [aws_sqs_queue.events.arn]
  })
}

# TLS-only access to the task queue and its DLQ. (The events queue and its DLQ get their policy,
# which also admits the EventBridge rules, from the `events` module.)
data "aws_iam_policy_document" "tls_only" {
  for_each = {
    tasks    = aws_sqs_queue.tasks.arn
    task_dlq = aws_sqs_queue.task_dlq.arn
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

resource "aws_sqs_queue_policy" "tls_only" {
  for_each = {
    tasks    = aws_sqs_queue.tasks.id
    task_dlq = aws_sqs_queue.task_dlq.id
  }

  queue_url = each.value
  policy    = data.aws_iam_policy_document.tls_only[each.key].json
}
