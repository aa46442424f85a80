data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}

locals {
  account_id          = data.aws_caller_identity.current.account_id
  partition           = data.aws_partition.current.partition
  log_bucket_name     = "${var.bucket_name}-logs"
  replica_bucket_name = coalesce(var.replica_bucket_name, "${var.bucket_name}-dr")
  replica_log_bucket  = "${local.replica_bucket_name}-logs"
  replicas            = var.replication_enabled ? toset(["dr"]) : toset([])

  # --- lifecycle: storage classes per backup tier ---------------------------------------------

  # The object tag every backup copy carries with its plan's tier (backup_schemas::tags::TIER).
  tier_tag = "backup-fleet:tier"

  # The class the fleet writes an S3 backup of each tier in when the plan sets no storage_class
  # (backup_core::policy::default_storage_class): where each tier's transitions start from.
  tier_write_class = {
    daily   = "STANDARD"
    event   = "STANDARD"
    manual  = "STANDARD"
    weekly  = "STANDARD_IA"
    monthly = "GLACIER_IR"
    yearly  = "GLACIER_IR"
  }

  # S3 minimum storage durations, in days: a version deleted, overwritten or transitioned out of
  # the class sooner is billed for the remaining days (an early-deletion charge).
  min_storage_days = {
    STANDARD            = 0
    STANDARD_IA         = 30
    ONEZONE_IA          = 30
    INTELLIGENT_TIERING = 0
    GLACIER_IR          = 90
    GLACIER             = 90
    DEEP_ARCHIVE        = 180
  }

  # S3's lifecycle waterfall: the classes a transition can move a version to from each class.
  # Any other transition is never carried out (One Zone-IA cannot go to Glacier Instant Retrieval).
  colder_classes = {
    STANDARD            = ["STANDARD_IA", "INTELLIGENT_TIERING", "ONEZONE_IA", "GLACIER_IR", "GLACIER", "DEEP_ARCHIVE"]
    STANDARD_IA         = ["INTELLIGENT_TIERING", "ONEZONE_IA", "GLACIER_IR", "GLACIER", "DEEP_ARCHIVE"]
    INTELLIGENT_TIERING = ["ONEZONE_IA", "GLACIER_IR", "GLACIER", "DEEP_ARCHIVE"]
    ONEZONE_IA          = ["GLACIER", "DEEP_ARCHIVE"]
    GLACIER_IR          = ["GLACIER", "DEEP_ARCHIVE"]
    GLACIER             = ["DEEP_ARCHIVE"]
    DEEP_ARCHIVE        = []
  }

  # One lifecycle rule per tier that has transitions (S3 refuses a rule without an action).
  tier_rules = { for tier, transitions in var.tier_transitions : tier => transitions if length(transitions) > 0 }

  # Each transition as a step from the class the version is in before it, and since which day.
  tier_steps = flatten([
    for tier, transitions in var.tier_transitions : [
      for i, t in transitions : {
        tier      = tier
        from      = i == 0 ? lookup(local.tier_write_class, tier, "STANDARD") : transitions[max(i - 1, 0)].storage_class
        from_days = i == 0 ? 0 : transitions[max(i - 1, 0)].days
        to        = t.storage_class
        days      = t.days
      }
    ]
  ])
  replica_steps = [
    for i, t in var.replica_transitions : {
      from      = i == 0 ? var.replica_storage_class : var.replica_transitions[max(i - 1, 0)].storage_class
      from_days = i == 0 ? 0 : var.replica_transitions[max(i - 1, 0)].days
      to        = t.storage_class
      days      = t.days
    }
  ]

  # Steps S3 would never carry out (not colder), and steps out of a class before its minimum
  # storage duration, as readable lines for the preconditions' error messages.
  tier_steps_not_colder = [
    for s in local.tier_steps : "${s.tier}: ${s.from} -> ${s.to} on day ${s.days}"
    if !contains(lookup(local.colder_classes, s.from, []), s.to)
  ]
  tier_steps_too_early = [
    for s in local.tier_steps : "${s.tier}: ${s.from} -> ${s.to} on day ${s.days}, ${s.days - s.from_days} days in ${s.from} (minimum ${lookup(local.min_storage_days, s.from, 0)})"
    if contains(lookup(local.colder_classes, s.from, []), s.to) && s.days < s.from_days + lookup(local.min_storage_days, s.from, 0)
  ]
  replica_steps_not_colder = [
    for s in local.replica_steps : "${s.from} -> ${s.to} on day ${s.days}"
    if !contains(lookup(local.colder_classes, s.from, []), s.to)
  ]
  replica_steps_too_early = [
    for s in local.replica_steps : "${s.from} -> ${s.to} on day ${s.days}, ${s.days - s.from_days} days in ${s.from} (minimum ${lookup(local.min_storage_days, s.from, 0)})"
    if contains(lookup(local.colder_classes, s.from, []), s.to) && s.days < s.from_days + lookup(local.min_storage_days, s.from, 0)
  ]

  # Every class with a minimum storage duration that a backup version can be in, and so the
  # shortest non-current expiration that never deletes one early: a version can become non-current
  # (a newer backup of the object, or a delete marker) the day after it reached any of them.
  backup_classes = [
    for c in sort(distinct(concat(values(local.tier_write_class), [for s in local.tier_steps : s.to]))) : c
    if lookup(local.min_storage_days, c, 0) > 0
  ]
  backup_min_noncurrent_days = max(0, [for c in local.backup_classes : local.min_storage_days[c]]...)
  replica_classes = [
    for c in sort(distinct(concat([var.replica_storage_class], [for s in local.replica_steps : s.to]))) : c
    if lookup(local.min_storage_days, c, 0) > 0
  ]
  replica_min_noncurrent_days = max(0, [for c in local.replica_classes : local.min_storage_days[c]]...)
}

###############################################################################################
# Backup bucket
###############################################################################################

resource "aws_s3_bucket" "backup" {
  bucket              = var.bucket_name
  object_lock_enabled = true
  force_destroy       = false

  tags = var.tags
}

resource "aws_s3_bucket_ownership_controls" "backup" {
  bucket = aws_s3_bucket.backup.id

  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

resource "aws_s3_bucket_public_access_block" "backup" {
  bucket                  = aws_s3_bucket.backup.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_versioning" "backup" {
  bucket = aws_s3_bucket.backup.id

  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_object_lock_configuration" "backup" {
  bucket = aws_s3_bucket.backup.id

  rule {
    default_retention {
      mode = var.object_lock_mode
      days = var.object_lock_days
    }
  }

  depends_on = [aws_s3_bucket_versioning.backup]
}

resource "aws_s3_bucket_server_side_encryption_configuration" "backup" {
  bucket = aws_s3_bucket.backup.id

  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm     = "aws:kms"
      kms_master_key_id = var.kms_key_arn
    }
    bucket_key_enabled = true
  }
}

resource "aws_s3_bucket_logging" "backup" {
  bucket        = aws_s3_bucket.backup.id
  target_bucket = aws_s3_bucket.logs.id
  target_prefix = "s3-access/${var.bucket_name}/"
}

# Backups are incremental: an unchanged object is never copied again, so its current version can
# stay the latest backup for years, and only a changed (or deleted) object leaves a non-current
# version behind. Transitions therefore apply to current versions, per backup tier (the storage
# class the fleet writes follows the tier, and so do the transitions from it); non-current versions
# expire whatever their tier.
resource "aws_s3_bucket_lifecycle_configuration" "backup" {
  bucket = aws_s3_bucket.backup.id

  transition_default_minimum_object_size = var.transition_default_minimum_object_size

  # Every version and upload, tagged or not. No transition here: where rules overlap S3 takes the
  # colder transition, so one here would override every tier's. The expirations are here, not in
  # the tier rules: S3 refuses abort_incomplete_multipart_upload next to a tag filter, and a
  # non-current version must expire whatever its tags. Every copy carries the tier tag (the fleet
  # keeps it among the tags it never gives up to the source object's own; S3 allows 10); an object
  # without it (put there by hand) gets no transition and stays in the class it was written in.
  rule {
    id     = "noncurrent-and-uploads"
    status = "Enabled"

    filter {}

    noncurrent_version_expiration {
      noncurrent_days = var.noncurrent_version_expiration_days
    }

    # A worker killed mid-copy or mid-dump (scale-in, Spot, SIGKILL after the drain deadline)
    # cannot abort its multipart copy or logical-dump upload; its parts are billed until this rule
    # removes them (whole bucket, var.abort_incomplete_multipart_upload_days, 7 by default).
    abort_incomplete_multipart_upload {
      days_after_initiation = var.abort_incomplete_multipart_upload_days
    }
  }

  # One rule per tier, on the tag the fleet puts on every backup copy; the tag values are disjoint,
  # so these rules never overlap.
  dynamic "rule" {
    for_each = local.tier_rules

    content {
      id     = "tier-${rule.key}"
      status = "Enabled"

      filter {
        tag {
          key   = local.tier_tag
          value = rule.key
        }
      }

      dynamic "transition" {
        for_each = rule.value

        content {
          days          = transition.value.days
          storage_class = transition.value.storage_class
        }
      }
    }
  }

  depends_on = [aws_s3_bucket_versioning.backup]

  lifecycle {
    precondition {
      condition     = length(local.tier_steps_not_colder) == 0
      error_message = "tier_transitions: every transition must go to a colder class than the one the version is in (the class the fleet writes the tier in: daily/event/manual STANDARD, weekly STANDARD_IA, monthly/yearly GLACIER_IR; then the previous transition's), along S3's order STANDARD, STANDARD_IA, INTELLIGENT_TIERING, ONEZONE_IA, GLACIER_IR, GLACIER, DEEP_ARCHIVE (ONEZONE_IA cannot go to GLACIER_IR). S3 would never carry out: ${join("; ", local.tier_steps_not_colder)}."
    }

    precondition {
      condition     = length(local.tier_steps_too_early) == 0
      error_message = "tier_transitions: a transition out of a class before its S3 minimum storage duration (STANDARD_IA/ONEZONE_IA 30 days, GLACIER_IR/GLACIER 90, DEEP_ARCHIVE 180; counted from creation for the class the fleet writes, else from the previous transition) is billed as an early deletion. Too early: ${join("; ", local.tier_steps_too_early)}."
    }

    precondition {
      condition     = var.noncurrent_version_expiration_days >= local.backup_min_noncurrent_days
      error_message = "noncurrent_version_expiration_days is ${var.noncurrent_version_expiration_days} but must be at least ${local.backup_min_noncurrent_days}: a backup version can become non-current the day after it reached any of ${join(", ", local.backup_classes)} (written by the fleet, or a tier_transitions target), and expiring it before that class's S3 minimum storage duration is billed as an early deletion."
    }
  }
}

# EventBridge notifications for the backup bucket itself (object created/deleted, restore
# completed...), so operators can route them without touching the bucket again.
resource "aws_s3_bucket_notification" "backup" {
  bucket      = aws_s3_bucket.backup.id
  eventbridge = true
}

data "aws_iam_policy_document" "backup" {
  statement {
    sid       = "DenyInsecureTransport"
    effect    = "Deny"
    actions   = ["s3:*"]
    resources = [aws_s3_bucket.backup.arn, "${aws_s3_bucket.backup.arn}/*"]

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

resource "aws_s3_bucket_policy" "backup" {
  bucket = aws_s3_bucket.backup.id
  policy = data.aws_iam_policy_document.backup.json

  depends_on = [aws_s3_bucket_public_access_block.backup]
}

###############################################################################################
# Access-log bucket (primary Region)
###############################################################################################

resource "aws_s3_bucket" "logs" {
  #checkov:skip=CKV_AWS_144:Access logs are operational data, not backups; replicating them is not required.
  #checkov:skip=CKV_AWS_145:S3 server access log delivery supports only SSE-S3 (AES256) on the destination bucket, not SSE-KMS.
  #checkov:skip=CKV2_AWS_62:Nothing reacts to new access-log objects; event notifications would only add cost.
  bucket        = local.log_bucket_name
  force_destroy = false

  tags = var.tags
}

resource "aws_s3_bucket_ownership_controls" "logs" {
  bucket = aws_s3_bucket.logs.id

  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

resource "aws_s3_bucket_public_access_block" "logs" {
  bucket                  = aws_s3_bucket.logs.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_versioning" "logs" {
  bucket = aws_s3_bucket.logs.id

  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "logs" {
  bucket = aws_s3_bucket.logs.id

  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm = "AES256"
    }
  }
}

resource "aws_s3_bucket_lifecycle_configuration" "logs" {
  bucket = aws_s3_bucket.logs.id

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

  depends_on = [aws_s3_bucket_versioning.logs]
}

data "aws_iam_policy_document" "logs" {
  statement {
    sid       = "AllowS3ServerAccessLogs"
    effect    = "Allow"
    actions   = ["s3:PutObject"]
    resources = ["${aws_s3_bucket.logs.arn}/s3-access/*"]

    principals {
      type        = "Service"
      identifiers = ["logging.s3.amazonaws.com"]
    }

    condition {
      test     = "ArnLike"
      variable = "aws:SourceArn"
      values   = [aws_s3_bucket.backup.arn]
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
    resources = [aws_s3_bucket.logs.arn, "${aws_s3_bucket.logs.arn}/*"]

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

resource "aws_s3_bucket_policy" "logs" {
  bucket = aws_s3_bucket.logs.id
  policy = data.aws_iam_policy_document.logs.json

  depends_on = [aws_s3_bucket_public_access_block.logs]
}
