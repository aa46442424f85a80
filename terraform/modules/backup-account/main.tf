# The isolated backup ("vault") account: the role backup-fleet assumes there to copy shared
# snapshots in under this account's own key, keep them (retention) and restore from them; the key
# those copies are encrypted with, which nobody but a break-glass principal can delete, disable or
# re-police; and an Object Lock (compliance mode) bucket for S3 backups.
#
# Only the fleet's worker role and its operator role can assume the role: the source accounts have
# no credentials here, so a compromised source account cannot delete or alter the copies.

data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}
data "aws_region" "current" {}

locals {
  account_id = data.aws_caller_identity.current.account_id
  partition  = data.aws_partition.current.partition
  region     = data.aws_region.current.name

  managed_tag       = "backup-fleet:managed"
  restored_from_tag = "backup-fleet:restored-from"
  restore_drill_tag = "backup-fleet:restore-drill"
  legal_hold_tag    = "backup-fleet:legal-hold"

  #############################################################################################
  # THE ACTION LISTS. The vault role's AWS actions live here, and only here: every statement of
  # its policies takes its `actions` from one of these groups. scripts/check_iam.py compares their
  # union with the calls of the EC2 and RDS adapters, less what never runs in a backup account.
  #############################################################################################

  vault_actions = {
    ec2_read = [
      "ec2:DescribeVolumes",
      "ec2:DescribeInstances",
      "ec2:DescribeSnapshots",
      "ec2:DescribeImages",
      "ec2:DescribeSnapshotTierStatus",
      # A drill's target_subnet: its availability zone is where the drill's volumes are created.
      "ec2:DescribeSubnets",
    ]
    # The copy of a snapshot a source account shared with this one, under this account's key.
    # Source and destination are the same resource type: no request-tag condition fits.
    ec2_copy = [
      "ec2:CopySnapshot",
      "ec2:CopyImage",
    ]
    # Restores / restore drills from the copies: created volumes and instances tagged managed=true.
    ec2_restore_create = [
      "ec2:CreateVolume",
      "ec2:RunInstances",
    ]
    ec2_tagging = [
      "ec2:CreateTags",
    ]
    # Retention of the copies: only resources tagged backup-fleet:managed=true, never under legal hold.
    ec2_delete_managed = [
      "ec2:DeleteSnapshot",
      "ec2:DeregisterImage",
    ]
    # EBS archive tier of the copies (managed=true).
    ec2_tiering_managed = [
      "ec2:ModifySnapshotTier",
      "ec2:RestoreSnapshotTier",
    ]
    ec2_restore_stop = [
      "ec2:StopInstances",
    ]
    ec2_restore_cleanup = [
      "ec2:TerminateInstances",
      "ec2:DeleteVolume",
    ]
    rds_read = [
      "rds:DescribeDBInstances",
      "rds:DescribeDBClusters",
      "rds:DescribeDBSnapshots",
      "rds:DescribeDBClusterSnapshots",
      "rds:ListTagsForResource",
    ]
    # The copy of a shared snapshot (its ARN in the source account) into this account.
    rds_copy = [
      "rds:CopyDBSnapshot",
      "rds:CopyDBClusterSnapshot",
    ]
    # The copy's tags (authorized as rds:AddTagsToResource): only with backup-fleet:managed=true.
    rds_tag_on_create = [
      "rds:AddTagsToResource",
    ]
    # Restores from the copies (no point-in-time restores: no database lives here).
    rds_restore = [
      "rds:RestoreDBInstanceFromDBSnapshot",
      "rds:RestoreDBClusterFromSnapshot",
    ]
    rds_delete_managed = [
      "rds:DeleteDBSnapshot",
      "rds:DeleteDBClusterSnapshot",
    ]
    rds_restore_cleanup = [
      "rds:DeleteDBInstance",
      "rds:DeleteDBCluster",
    ]
    # The source accounts' share keys (var.share_kms_key_arns): read what was shared under them.
    kms_share_keys = [
      "kms:Decrypt",
      "kms:DescribeKey",
      "kms:ReEncryptFrom",
    ]
    kms_share_key_grants = [
      "kms:CreateGrant",
    ]
  }

  # The vault key's policy (a key policy, not the role's permissions).
  vault_key_actions = {
    # Delegation to IAM (the deny of `protected` below still binds every principal it lets in).
    account_root = [
      "kms:*",
    ]
    role_use = [
      "kms:Encrypt",
      "kms:Decrypt",
      "kms:ReEncrypt*",
      "kms:GenerateDataKey*",
      "kms:DescribeKey",
    ]
    role_grant = [
      "kms:CreateGrant",
    ]
    # Writers of the bucket (SSE-KMS under this key), only through S3.
    bucket_writers = [
      "kms:GenerateDataKey*",
      "kms:Decrypt",
    ]
    # Denied to every principal but the break-glass ones.
    protected = [
      "kms:ScheduleKeyDeletion",
      "kms:DisableKey",
      "kms:PutKeyPolicy",
    ]
  }

  # The bucket's policy.
  bucket_actions = {
    deny_insecure_transport = [
      "s3:*",
    ]
    # S3 backups and dumps written by the fleet (writes carry tags and Object Lock retention).
    writer_objects = [
      "s3:PutObject",
      "s3:PutObjectTagging",
      "s3:PutObjectRetention",
      "s3:AbortMultipartUpload",
    ]
    # Their verification and restores read them back.
    reader_bucket = [
      "s3:ListBucket",
      "s3:ListBucketVersions",
      "s3:GetBucketLocation",
    ]
    reader_objects = [
      "s3:GetObject",
      "s3:GetObjectVersion",
      "s3:GetObjectTagging",
      "s3:GetObjectVersionTagging",
    ]
  }

  ec2_arn = "arn:${local.partition}:ec2:*:${local.account_id}"
  rds_arn = "arn:${local.partition}:rds:*:${local.account_id}"

  ec2_snapshots = "arn:${local.partition}:ec2:*::snapshot/*"
  ec2_images    = "arn:${local.partition}:ec2:*::image/*"

  rds_instances         = "${local.rds_arn}:db:*"
  rds_clusters          = "${local.rds_arn}:cluster:*"
  rds_snapshots         = "${local.rds_arn}:snapshot:*"
  rds_cluster_snapshots = "${local.rds_arn}:cluster-snapshot:*"

  # The snapshots the source accounts share: the source of a CopyDB*Snapshot.
  source_rds_snapshots = flatten([
    for a in var.source_account_ids : [
      "arn:${local.partition}:rds:*:${a}:snapshot:*",
      "arn:${local.partition}:rds:*:${a}:cluster-snapshot:*",
    ]
  ])

  role_arn          = "arn:${local.partition}:iam::${local.account_id}:role/${var.name}"
  trusted_role_arns = distinct(concat([var.worker_role_arn], var.operator_role_arn == null ? [] : [var.operator_role_arn]))
}

###############################################################################################
# The vault role
###############################################################################################

# Only the fleet's worker role and its operator role, by ARN.
data "aws_iam_policy_document" "vault_assume" {
  statement {
    effect  = "Allow"
    actions = ["sts:AssumeRole"]

    principals {
      type        = "AWS"
      identifiers = local.trusted_role_arns
    }
  }
}

resource "aws_iam_role" "vault" {
  count = var.create_role ? 1 : 0

  name                 = var.name
  description          = "backup-fleet vault role: the fleet's worker copies backups into this account, keeps and restores them with it."
  assume_role_policy   = data.aws_iam_policy_document.vault_assume.json
  max_session_duration = 3600
  permissions_boundary = var.permissions_boundary_arn

  tags = var.tags
}

data "aws_iam_policy_document" "vault_ec2" {
  statement {
    sid       = "Ec2Read"
    effect    = "Allow"
    actions   = local.vault_actions.ec2_read
    resources = ["*"] # EC2 Describe* actions have no resource-level permissions.
  }

  statement {
    sid       = "Ec2Copy"
    effect    = "Allow"
    actions   = local.vault_actions.ec2_copy
    resources = [local.ec2_snapshots, local.ec2_images]
  }

  statement {
    sid     = "Ec2RestoreFromCopies"
    effect  = "Allow"
    actions = local.vault_actions.ec2_restore_create
    resources = [
      local.ec2_snapshots,
      local.ec2_images,
      "${local.ec2_arn}:subnet/*",
      "${local.ec2_arn}:security-group/*",
      "${local.ec2_arn}:network-interface/*",
      "${local.ec2_arn}:key-pair/*",
      "${local.ec2_arn}:launch-template/*",
    ]
  }

  statement {
    sid       = "Ec2RestoreCreateTagged"
    effect    = "Allow"
    actions   = local.vault_actions.ec2_restore_create
    resources = ["${local.ec2_arn}:volume/*", "${local.ec2_arn}:instance/*"]

    condition {
      test     = "StringEquals"
      variable = "aws:RequestTag/${local.managed_tag}"
      values   = ["true"]
    }
  }

  statement {
    sid       = "Ec2TagOnCreate"
    effect    = "Allow"
    actions   = local.vault_actions.ec2_tagging
    resources = [local.ec2_snapshots, local.ec2_images, "${local.ec2_arn}:volume/*", "${local.ec2_arn}:instance/*", "${local.ec2_arn}:network-interface/*"]

    condition {
      test     = "StringEquals"
      variable = "ec2:CreateAction"
      values = [
        for a in concat(local.vault_actions.ec2_copy, local.vault_actions.ec2_restore_create) :
        trimprefix(a, "ec2:")
      ]
    }
  }

  statement {
    sid       = "Ec2RetagManaged"
    effect    = "Allow"
    actions   = local.vault_actions.ec2_tagging
    resources = [local.ec2_snapshots, local.ec2_images, "${local.ec2_arn}:volume/*", "${local.ec2_arn}:instance/*"]

    condition {
      test     = "StringEquals"
      variable = "aws:ResourceTag/${local.managed_tag}"
      values   = ["true"]
    }
  }

  statement {
    sid       = "Ec2DeleteManaged"
    effect    = "Allow"
    actions   = local.vault_actions.ec2_delete_managed
    resources = [local.ec2_snapshots, local.ec2_images]

    condition {
      test     = "StringEquals"
      variable = "aws:ResourceTag/${local.managed_tag}"
      values   = ["true"]
    }
    condition {
      test     = "Null"
      variable = "aws:ResourceTag/${local.legal_hold_tag}"
      values   = ["true"]
    }
  }

  statement {
    sid       = "Ec2TieringManaged"
    effect    = "Allow"
    actions   = local.vault_actions.ec2_tiering_managed
    resources = [local.ec2_snapshots]

    condition {
      test     = "StringEquals"
      variable = "aws:ResourceTag/${local.managed_tag}"
      values   = ["true"]
    }
  }

  statement {
    sid       = "Ec2StopRestored"
    effect    = "Allow"
    actions   = local.vault_actions.ec2_restore_stop
    resources = ["${local.ec2_arn}:instance/*"]

    condition {
      test     = "StringEquals"
      variable = "aws:ResourceTag/${local.managed_tag}"
      values   = ["true"]
    }
    condition {
      test     = "Null"
      variable = "aws:ResourceTag/${local.restored_from_tag}"
      values   = ["false"]
    }
  }

  statement {
    sid       = "Ec2RestoreDrillCleanup"
    effect    = "Allow"
    actions   = local.vault_actions.ec2_restore_cleanup
    resources = ["${local.ec2_arn}:volume/*", "${local.ec2_arn}:instance/*"]

    condition {
      test     = "Null"
      variable = "aws:ResourceTag/${local.restore_drill_tag}"
      values   = ["false"]
    }
  }
}

data "aws_iam_policy_document" "vault_rds" {
  statement {
    sid       = "RdsRead"
    effect    = "Allow"
    actions   = local.vault_actions.rds_read
    resources = [local.rds_instances, local.rds_clusters, local.rds_snapshots, local.rds_cluster_snapshots]
  }

  # The shared snapshot (in its source account) and the copy (here).
  statement {
    sid       = "RdsCopySharedSnapshots"
    effect    = "Allow"
    actions   = local.vault_actions.rds_copy
    resources = concat([local.rds_snapshots, local.rds_cluster_snapshots], local.source_rds_snapshots)
  }

  statement {
    sid       = "RdsTagOnCreate"
    effect    = "Allow"
    actions   = local.vault_actions.rds_tag_on_create
    resources = [local.rds_instances, local.rds_clusters, local.rds_snapshots, local.rds_cluster_snapshots]

    condition {
      test     = "StringEquals"
      variable = "aws:RequestTag/${local.managed_tag}"
      values   = ["true"]
    }
  }

  statement {
    sid     = "RdsRestoreFromCopies"
    effect  = "Allow"
    actions = local.vault_actions.rds_restore
    resources = [
      local.rds_instances,
      local.rds_clusters,
      local.rds_snapshots,
      local.rds_cluster_snapshots,
      "${local.rds_arn}:subgrp:*",
      "${local.rds_arn}:og:*",
      "${local.rds_arn}:pg:*",
      "${local.rds_arn}:cluster-pg:*",
    ]
  }

  statement {
    sid       = "RdsDeleteManaged"
    effect    = "Allow"
    actions   = local.vault_actions.rds_delete_managed
    resources = [local.rds_snapshots, local.rds_cluster_snapshots]

    condition {
      test     = "StringEquals"
      variable = "aws:ResourceTag/${local.managed_tag}"
      values   = ["true"]
    }
    condition {
      test     = "Null"
      variable = "aws:ResourceTag/${local.legal_hold_tag}"
      values   = ["true"]
    }
  }

  statement {
    sid       = "RdsRestoreDrillCleanup"
    effect    = "Allow"
    actions   = local.vault_actions.rds_restore_cleanup
    resources = [local.rds_instances, local.rds_clusters]

    condition {
      test     = "Null"
      variable = "aws:ResourceTag/${local.restore_drill_tag}"
      values   = ["false"]
    }
  }
}

# The source accounts' share keys (the member-account module's share_kms_key_arn): a key in
# another account needs this identity policy besides its key policy. The vault key needs none: its
# key policy names the role.
data "aws_iam_policy_document" "vault_kms" {
  count = length(var.share_kms_key_arns) > 0 ? 1 : 0

  statement {
    sid       = "ShareKeys"
    effect    = "Allow"
    actions   = local.vault_actions.kms_share_keys
    resources = var.share_kms_key_arns
  }

  statement {
    sid       = "ShareKeyGrantsForAwsServices"
    effect    = "Allow"
    actions   = local.vault_actions.kms_share_key_grants
    resources = var.share_kms_key_arns

    condition {
      test     = "Bool"
      variable = "kms:GrantIsForAWSResource"
      values   = ["true"]
    }
  }
}

locals {
  vault_policies = var.create_role ? merge(
    {
      ec2 = data.aws_iam_policy_document.vault_ec2.json
      rds = data.aws_iam_policy_document.vault_rds.json
    },
    length(var.share_kms_key_arns) > 0 ? { kms = data.aws_iam_policy_document.vault_kms[0].json } : {},
  ) : {}
}

resource "aws_iam_policy" "vault" {
  for_each = local.vault_policies

  name        = "${var.name}-${each.key}"
  description = "backup-fleet vault role: ${each.key} permissions (actions from local.vault_actions)."
  policy      = each.value

  tags = var.tags
}

resource "aws_iam_role_policy_attachment" "vault" {
  for_each = local.vault_policies

  role       = aws_iam_role.vault[0].name
  policy_arn = aws_iam_policy.vault[each.key].arn
}

###############################################################################################
# Vault key (this Region)
###############################################################################################

data "aws_iam_policy_document" "key" {
  #checkov:skip=CKV_AWS_109:Key policy; Resource "*" is this key only and the account-root statement is what delegates key access to IAM.
  #checkov:skip=CKV_AWS_111:Key policy; Resource "*" is this key only and the account-root statement is what delegates key access to IAM.
  #checkov:skip=CKV_AWS_356:Key policy; Resource "*" is this key only (a key policy cannot name another resource).

  # Delegate to IAM: without this statement no IAM policy in the account could grant use of the
  # key (the deny below still binds every principal delegated this way).
  statement {
    sid       = "EnableIamPolicies"
    effect    = "Allow"
    actions   = local.vault_key_actions.account_root
    resources = ["*"]

    principals {
      type        = "AWS"
      identifiers = ["arn:${local.partition}:iam::${local.account_id}:root"]
    }
  }

  # Nobody but the break-glass principals can delete the key, disable it or change this policy:
  # not the vault role, not this account's administrators (an explicit deny beats every allow).
  statement {
    sid       = "DenyKeyDestructionExceptBreakGlass"
    effect    = "Deny"
    actions   = local.vault_key_actions.protected
    resources = ["*"]

    principals {
      type        = "AWS"
      identifiers = ["*"]
    }

    condition {
      test     = "ArnNotLike"
      variable = "aws:PrincipalArn"
      values   = var.break_glass_principal_arns
    }
  }

  statement {
    sid       = "VaultRoleUse"
    effect    = "Allow"
    actions   = local.vault_key_actions.role_use
    resources = ["*"]

    principals {
      type        = "AWS"
      identifiers = [local.role_arn]
    }
  }

  statement {
    sid       = "VaultRoleGrantsForAwsServices"
    effect    = "Allow"
    actions   = local.vault_key_actions.role_grant
    resources = ["*"]

    principals {
      type        = "AWS"
      identifiers = [local.role_arn]
    }

    condition {
      test     = "Bool"
      variable = "kms:GrantIsForAWSResource"
      values   = ["true"]
    }
  }

  # The bucket's writers encrypt and read back their objects, through S3 in this Region only.
  dynamic "statement" {
    for_each = var.create_bucket && length(var.writer_role_arns) > 0 ? [1] : []
    content {
      sid       = "BucketWritersThroughS3"
      effect    = "Allow"
      actions   = local.vault_key_actions.bucket_writers
      resources = ["*"]

      principals {
        type        = "AWS"
        identifiers = var.writer_role_arns
      }

      condition {
        test     = "StringEquals"
        variable = "kms:ViaService"
        values   = ["s3.${local.region}.amazonaws.com"]
      }
    }
  }
}

resource "aws_kms_key" "vault" {
  description                        = "backup-fleet vault key: copies in the backup account"
  enable_key_rotation                = true
  deletion_window_in_days            = 30
  policy                             = data.aws_iam_policy_document.key.json
  bypass_policy_lockout_safety_check = var.bypass_policy_lockout_safety_check

  tags = var.tags

  # The key policy names the role: create it first (KMS refuses a policy naming a missing principal).
  depends_on = [aws_iam_role.vault]
}

resource "aws_kms_alias" "vault" {
  name          = "alias/${var.key_alias}"
  target_key_id = aws_kms_key.vault.key_id
}

###############################################################################################
# Object Lock bucket (compliance mode)
###############################################################################################

resource "aws_s3_bucket" "vault" {
  #checkov:skip=CKV_AWS_144:The bucket is itself the isolated copy of the backups; replicating it to another Region is left to the deployer.
  count = var.create_bucket ? 1 : 0

  bucket              = var.bucket_name
  object_lock_enabled = true
  force_destroy       = false

  tags = var.tags

  lifecycle {
    precondition {
      condition     = var.bucket_name != null
      error_message = "bucket_name is required when create_bucket is true."
    }
  }
}

resource "aws_s3_bucket_ownership_controls" "vault" {
  count  = var.create_bucket ? 1 : 0
  bucket = aws_s3_bucket.vault[0].id

  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

resource "aws_s3_bucket_public_access_block" "vault" {
  count  = var.create_bucket ? 1 : 0
  bucket = aws_s3_bucket.vault[0].id

  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_versioning" "vault" {
  count  = var.create_bucket ? 1 : 0
  bucket = aws_s3_bucket.vault[0].id

  versioning_configuration {
    status = "Enabled"
  }
}

# COMPLIANCE: no principal, the account root included, can delete a version or shorten its
# retention before it ends.
resource "aws_s3_bucket_object_lock_configuration" "vault" {
  count  = var.create_bucket ? 1 : 0
  bucket = aws_s3_bucket.vault[0].id

  rule {
    default_retention {
      mode = "COMPLIANCE"
      days = var.object_lock_days
    }
  }

  depends_on = [aws_s3_bucket_versioning.vault]
}

resource "aws_s3_bucket_server_side_encryption_configuration" "vault" {
  count  = var.create_bucket ? 1 : 0
  bucket = aws_s3_bucket.vault[0].id

  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm     = "aws:kms"
      kms_master_key_id = aws_kms_key.vault.arn
    }
    bucket_key_enabled = true
  }
}

# A writer killed mid-upload cannot abort its multipart upload (the writers may, but nothing else
# may delete here): its parts are removed by this rule. Versions expire only when
# noncurrent_version_expiration_days is set, and never before their Object Lock retention ends.
resource "aws_s3_bucket_lifecycle_configuration" "vault" {
  count  = var.create_bucket ? 1 : 0
  bucket = aws_s3_bucket.vault[0].id

  rule {
    id     = "uploads-and-noncurrent"
    status = "Enabled"

    filter {}

    abort_incomplete_multipart_upload {
      days_after_initiation = 7
    }

    dynamic "noncurrent_version_expiration" {
      for_each = var.noncurrent_version_expiration_days == null ? [] : [var.noncurrent_version_expiration_days]
      content {
        noncurrent_days = noncurrent_version_expiration.value
      }
    }
  }

  depends_on = [aws_s3_bucket_versioning.vault]
}

resource "aws_s3_bucket_logging" "vault" {
  count = var.create_bucket && var.access_log_bucket_name != null ? 1 : 0

  bucket        = aws_s3_bucket.vault[0].id
  target_bucket = var.access_log_bucket_name
  target_prefix = "s3-access/${var.bucket_name}/"
}

resource "aws_s3_bucket_notification" "vault" {
  count       = var.create_bucket ? 1 : 0
  bucket      = aws_s3_bucket.vault[0].id
  eventbridge = true
}

data "aws_iam_policy_document" "bucket" {
  count = var.create_bucket ? 1 : 0

  statement {
    sid       = "DenyInsecureTransport"
    effect    = "Deny"
    actions   = local.bucket_actions.deny_insecure_transport
    resources = [aws_s3_bucket.vault[0].arn, "${aws_s3_bucket.vault[0].arn}/*"]

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

  # The fleet's roles that write S3 backups here (from the source side); no deletion of any kind.
  dynamic "statement" {
    for_each = length(var.writer_role_arns) > 0 ? [1] : []
    content {
      sid       = "WritersPutObjects"
      effect    = "Allow"
      actions   = local.bucket_actions.writer_objects
      resources = ["${aws_s3_bucket.vault[0].arn}/*"]

      principals {
        type        = "AWS"
        identifiers = var.writer_role_arns
      }
    }
  }

  dynamic "statement" {
    for_each = length(var.writer_role_arns) > 0 ? [1] : []
    content {
      sid       = "WritersListBucket"
      effect    = "Allow"
      actions   = local.bucket_actions.reader_bucket
      resources = [aws_s3_bucket.vault[0].arn]

      principals {
        type        = "AWS"
        identifiers = var.writer_role_arns
      }
    }
  }

  dynamic "statement" {
    for_each = length(var.writer_role_arns) > 0 ? [1] : []
    content {
      sid       = "WritersReadObjects"
      effect    = "Allow"
      actions   = local.bucket_actions.reader_objects
      resources = ["${aws_s3_bucket.vault[0].arn}/*"]

      principals {
        type        = "AWS"
        identifiers = var.writer_role_arns
      }
    }
  }
}

resource "aws_s3_bucket_policy" "vault" {
  count  = var.create_bucket ? 1 : 0
  bucket = aws_s3_bucket.vault[0].id
  policy = data.aws_iam_policy_document.bucket[0].json

  depends_on = [aws_s3_bucket_public_access_block.vault]
}
