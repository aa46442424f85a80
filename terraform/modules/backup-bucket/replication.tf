###############################################################################################
# Optional replication to a bucket in the DR Region (provider `aws.replica`).
# Delete markers are not replicated: a deletion in the primary never removes the DR copy.
###############################################################################################

resource "aws_s3_bucket" "replica" {
  provider = aws.replica
  for_each = local.replicas

  bucket              = local.replica_bucket_name
  object_lock_enabled = true
  force_destroy       = false

  tags = var.tags
}

resource "aws_s3_bucket_ownership_controls" "replica" {
  provider = aws.replica
  for_each = local.replicas

  bucket = aws_s3_bucket.replica[each.key].id

  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

resource "aws_s3_bucket_public_access_block" "replica" {
  provider = aws.replica
  for_each = local.replicas

  bucket                  = aws_s3_bucket.replica[each.key].id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_versioning" "replica" {
  provider = aws.replica
  for_each = local.replicas

  bucket = aws_s3_bucket.replica[each.key].id

  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_object_lock_configuration" "replica" {
  provider = aws.replica
  for_each = local.replicas

  bucket = aws_s3_bucket.replica[each.key].id

  rule {
    default_retention {
      mode = var.object_lock_mode
      days = var.object_lock_days
    }
  }

  depends_on = [aws_s3_bucket_versioning.replica]
}

resource "aws_s3_bucket_server_side_encryption_configuration" "replica" {
  provider = aws.replica
  for_each = local.replicas

  bucket = aws_s3_bucket.replica[each.key].id

  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm     = "aws:kms"
      kms_master_key_id = var.replica_kms_key_arn
    }
    bucket_key_enabled = true
  }

  lifecycle {
    precondition {
      condition     = var.replica_kms_key_arn != null
      error_message = "replica_kms_key_arn is required when replication_enabled is true (a KMS key in the DR Region)."
    }
  }
}

resource "aws_s3_bucket_logging" "replica" {
  provider = aws.replica
  for_each = local.replicas

  bucket        = aws_s3_bucket.replica[each.key].id
  target_bucket = aws_s3_bucket.replica_logs[each.key].id
  target_prefix = "s3-access/${local.replica_bucket_name}/"
}

# Replication writes every replica in replica_storage_class whatever its tier (the tier tag is
# replicated, but every tier starts from the same class), so one rule and one list of transitions
# serve them all. Non-current replicas expire like the primary's versions.
resource "aws_s3_bucket_lifecycle_configuration" "replica" {
  provider = aws.replica
  for_each = local.replicas

  bucket = aws_s3_bucket.replica[each.key].id

  transition_default_minimum_object_size = var.transition_default_minimum_object_size

  rule {
    id     = "dr-tiering"
    status = "Enabled"

    filter {}

    dynamic "transition" {
      for_each = var.replica_transitions

      content {
        days          = transition.value.days
        storage_class = transition.value.storage_class
      }
    }

    noncurrent_version_expiration {
      noncurrent_days = var.noncurrent_version_expiration_days
    }

    abort_incomplete_multipart_upload {
      days_after_initiation = var.abort_incomplete_multipart_upload_days
    }
  }

  depends_on = [aws_s3_bucket_versioning.replica]

  lifecycle {
    precondition {
      condition     = length(local.replica_steps_not_colder) == 0
      error_message = "replica_transitions: every transition must go to a colder class than the one the replica is in (replica_storage_class, then the previous transition's), along S3's order STANDARD, STANDARD_IA, INTELLIGENT_TIERING, ONEZONE_IA, GLACIER_IR, GLACIER, DEEP_ARCHIVE (ONEZONE_IA cannot go to GLACIER_IR). S3 would never carry out: ${join("; ", local.replica_steps_not_colder)}."
    }

    precondition {
      condition     = length(local.replica_steps_too_early) == 0
      error_message = "replica_transitions: a transition out of a class before its S3 minimum storage duration (STANDARD_IA/ONEZONE_IA 30 days, GLACIER_IR/GLACIER 90, DEEP_ARCHIVE 180; counted from creation for replica_storage_class, else from the previous transition) is billed as an early deletion. Too early: ${join("; ", local.replica_steps_too_early)}."
    }

    precondition {
      condition     = var.noncurrent_version_expiration_days >= local.replica_min_noncurrent_days
      error_message = "noncurrent_version_expiration_days is ${var.noncurrent_version_expiration_days} but must be at least ${local.replica_min_noncurrent_days}: a replica can become non-current the day after it reached any of ${join(", ", local.replica_classes)} (replica_storage_class, or a replica_transitions target), and expiring it before that class's S3 minimum storage duration is billed as an early deletion."
    }
  }
}

resource "aws_s3_bucket_notification" "replica" {
  provider = aws.replica
  for_each = local.replicas

  bucket      = aws_s3_bucket.replica[each.key].id
  eventbridge = true
}

data "aws_iam_policy_document" "replica" {
  for_each = local.replicas

  statement {
    sid       = "DenyInsecureTransport"
    effect    = "Deny"
    actions   = ["s3:*"]
    resources = [aws_s3_bucket.replica[each.key].arn, "${aws_s3_bucket.replica[each.key].arn}/*"]

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

resource "aws_s3_bucket_policy" "replica" {
  provider = aws.replica
  for_each = local.replicas

  bucket = aws_s3_bucket.replica[each.key].id
  policy = data.aws_iam_policy_document.replica[each.key].json

  depends_on = [aws_s3_bucket_public_access_block.replica]
}

# --- access logs of the replica, in the DR Region ---------------------------------------------

resource "aws_s3_bucket" "replica_logs" {
  #checkov:skip=CKV_AWS_144:Access logs are operational data, not backups; replicating them is not required.
  #checkov:skip=CKV_AWS_145:S3 server access log delivery supports only SSE-S3 (AES256) on the destination bucket, not SSE-KMS.
  #checkov:skip=CKV2_AWS_62:Nothing reacts to new access-log objects; event notifications would only add cost.
  provider = aws.replica
  for_each = local.replicas

  bucket        = local.replica_log_bucket
  force_destroy = false

  tags = var.tags
}

resource "aws_s3_bucket_ownership_controls" "replica_logs" {
  provider = aws.replica
  for_each = local.replicas

  bucket = aws_s3_bucket.replica_logs[each.key].id

  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

resource "aws_s3_bucket_public_access_block" "replica_logs" {
  provider = aws.replica
  for_each = local.replicas

  bucket                  = aws_s3_bucket.replica_logs[each.key].id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_versioning" "replica_logs" {
  provider = aws.replica
  for_each = local.replicas

  bucket = aws_s3_bucket.replica_logs[each.key].id

  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "replica_logs" {
  provider = aws.replica
  for_each = local.replicas

  bucket = aws_s3_bucket.replica_logs[each.key].id

  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm = "AES256"
    }
  }
}

resource "aws_s3_bucket_lifecycle_configuration" "replica_logs" {
  provider = aws.replica
  for_each = local.replicas

  bucket = aws_s3_bucket.replica_logs[each.key].id

  rule {
    id     = "expire-access-logs"
    status = "Enabled"

    filter {}

    expiration {
      days = var.access_log_retention_days
    }

    noncurrent_version_expiration {
      noncurrent_days = 30
    }

    abort_incomplete_multipart_upload {
      days_after_initiation = var.abort_incomplete_multipart_upload_days
    }
  }

  depends_on = [aws_s3_bucket_versioning.replica_logs]
}

data "aws_iam_policy_document" "replica_logs" {
  for_each = local.replicas

  statement {
    sid       = "AllowS3ServerAccessLogs"
    effect    = "Allow"
    actions   = ["s3:PutObject"]
    resources = ["${aws_s3_bucket.replica_logs[each.key].arn}/s3-access/*"]

    principals {
      type        = "Service"
      identifiers = ["logging.s3.amazonaws.com"]
    }

    condition {
      test     = "ArnLike"
      variable = "aws:SourceArn"
      values   = [aws_s3_bucket.replica[each.key].arn]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }

  statement {
    sid       = "DenyInsecureTransport"
    effect    = "Deny"
    actions   = ["s3:*"]
    resources = [aws_s3_bucket.replica_logs[each.key].arn, "${aws_s3_bucket.replica_logs[each.key].arn}/*"]

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

resource "aws_s3_bucket_policy" "replica_logs" {
  provider = aws.replica
  for_each = local.replicas

  bucket = aws_s3_bucket.replica_logs[each.key].id
  policy = data.aws_iam_policy_document.replica_logs[each.key].json

  depends_on = [aws_s3_bucket_public_access_block.replica_logs]
}

# --- replication role and configuration --------------------------------------------------------

data "aws_iam_policy_document" "replication_assume" {
  statement {
    effect  = "Allow"
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["s3.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }
}

resource "aws_iam_role" "replication" {
  for_each = local.replicas

  name               = "${var.bucket_name}-replication"
  assume_role_policy = data.aws_iam_policy_document.replication_assume.json

  tags = var.tags
}

data "aws_iam_policy_document" "replication" {
  for_each = local.replicas

  statement {
    sid       = "SourceBucket"
    effect    = "Allow"
    actions   = ["s3:GetReplicationConfiguration", "s3:ListBucket"]
    resources = [aws_s3_bucket.backup.arn]
  }

  statement {
    sid    = "SourceObjects"
    effect = "Allow"
    actions = [
      "s3:GetObjectVersionForReplication",
      "s3:GetObjectVersionAcl",
      "s3:GetObjectVersionTagging",
      "s3:GetObjectRetention",
      "s3:GetObjectLegalHold",
    ]
    resources = ["${aws_s3_bucket.backup.arn}/*"]
  }

  statement {
    sid       = "DestinationObjects"
    effect    = "Allow"
    actions   = ["s3:ReplicateObject", "s3:ReplicateTags", "s3:ObjectOwnerOverrideToBucketOwner"]
    resources = ["${aws_s3_bucket.replica[each.key].arn}/*"]
  }

  statement {
    sid       = "DecryptSource"
    effect    = "Allow"
    actions   = ["kms:Decrypt"]
    resources = [var.kms_key_arn]
  }

  statement {
    sid       = "EncryptReplica"
    effect    = "Allow"
    actions   = ["kms:Encrypt", "kms:GenerateDataKey"]
    resources = [coalesce(var.replica_kms_key_arn, var.kms_key_arn)]
  }
}

resource "aws_iam_role_policy" "replication" {
  for_each = local.replicas

  name   = "replication"
  role   = aws_iam_role.replication[each.key].id
  policy = data.aws_iam_policy_document.replication[each.key].json
}

resource "aws_s3_bucket_replication_configuration" "backup" {
  for_each = local.replicas

  bucket = aws_s3_bucket.backup.id
  role   = aws_iam_role.replication[each.key].arn

  rule {
    id     = "dr"
    status = "Enabled"

    filter {}

    delete_marker_replication {
      status = "Disabled"
    }

    source_selection_criteria {
      sse_kms_encrypted_objects {
        status = "Enabled"
      }
    }

    destination {
      bucket        = aws_s3_bucket.replica[each.key].arn
      storage_class = var.replica_storage_class

      encryption_configuration {
        replica_kms_key_id = var.replica_kms_key_arn
      }
    }
  }

  depends_on = [aws_s3_bucket_versioning.backup, aws_s3_bucket_versioning.replica]
}
