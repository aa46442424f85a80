# The role backup-fleet assumes in a member account (an account a plan lists in `accounts`), and
# the customer managed "share" key a copy into a backup account re-encrypts snapshots under.
#
# The fleet's adapters (aws/src/ec2.rs, rds.rs, s3.rs) run in this account under this role's
# credentials (aws/src/accounts.rs): the producer discovers resources with it, the worker backs
# up, copies, prunes, verifies and restores with it. So the role gets what the fleet's own roles
# get for EC2, RDS and S3 reads (terraform/modules/iam), with the same scoping, and the sharing of
# snapshots with the backup accounts. scripts/check_iam.py checks the actions against the code.

data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}
data "aws_region" "current" {}

locals {
  account_id = data.aws_caller_identity.current.account_id
  partition  = data.aws_partition.current.partition
  region     = data.aws_region.current.name

  # Tag keys every artifact of the fleet carries (the worker sets them on create).
  managed_tag       = "backup-fleet:managed"
  restored_from_tag = "backup-fleet:restored-from"
  restore_drill_tag = "backup-fleet:restore-drill"
  legal_hold_tag    = "backup-fleet:legal-hold"
  # On the temporary re-encryption of a snapshot shared with a backup account, and nothing else.
  share_for_tag = "backup-fleet:share-for"

  #############################################################################################
  # THE ACTION LISTS. The member role's AWS actions live here, and only here: every statement
  # below takes its `actions` from one of these groups. scripts/check_iam.py compares their union
  # with the calls of the EC2 and RDS adapters and the S3 adapter's reads.
  #############################################################################################

  member_actions = {
    ec2_read = [
      "ec2:DescribeVolumes",
      "ec2:DescribeInstances",
      "ec2:DescribeSnapshots",
      "ec2:DescribeImages",
      "ec2:DescribeSnapshotTierStatus",
      # A drill's target_subnet: its availability zone is where the drill's volumes are created.
      "ec2:DescribeSubnets",
    ]
    # Source resources unconditioned; the snapshots/AMIs they create must be tagged managed=true.
    ec2_backup_create = [
      "ec2:CreateSnapshot",
      "ec2:CreateSnapshots",
      "ec2:CreateImage",
    ]
    # Copies to other regions of this account, and the in-place re-encryption of a snapshot under
    # the share key. Source and destination are the same resource type: no request-tag condition.
    ec2_copy = [
      "ec2:CopySnapshot",
      "ec2:CopyImage",
    ]
    # Restores / restore drills in this account: created volumes and instances tagged managed=true.
    ec2_restore_create = [
      "ec2:CreateVolume",
      "ec2:RunInstances",
    ]
    ec2_tagging = [
      "ec2:CreateTags",
    ]
    # Only resources tagged backup-fleet:managed=true, never under legal hold.
    ec2_delete_managed = [
      "ec2:DeleteSnapshot",
      "ec2:DeregisterImage",
    ]
    # Sharing with the backup accounts only (createVolumePermission), and unsharing.
    ec2_share = [
      "ec2:ModifySnapshotAttribute",
    ]
    # The re-encryption made for a share, once the backup account has its copy.
    ec2_share_cleanup = [
      "ec2:DeleteSnapshot",
    ]
    # EBS archive tier of the fleet's snapshots (managed=true).
    ec2_tiering_managed = [
      "ec2:ModifySnapshotTier",
      "ec2:RestoreSnapshotTier",
    ]
    # A restored instance is stopped after launch (managed=true and restored-from).
    ec2_restore_stop = [
      "ec2:StopInstances",
    ]
    # Only resources tagged backup-fleet:restore-drill.
    ec2_restore_cleanup = [
      "ec2:TerminateInstances",
      "ec2:DeleteVolume",
    ]
    rds_read = [
      "rds:DescribeDBInstances",
      "rds:DescribeDBClusters",
      "rds:DescribeDBSnapshots",
      "rds:DescribeDBClusterSnapshots",
      "rds:DescribeDBInstanceAutomatedBackups",
      "rds:ListTagsForResource",
    ]
    # Snapshots, copies to other regions, and the in-place re-encryption under the share key.
    rds_snapshot_create = [
      "rds:CreateDBSnapshot",
      "rds:CreateDBClusterSnapshot",
      "rds:CopyDBSnapshot",
      "rds:CopyDBClusterSnapshot",
    ]
    # RDS authorizes the tags of a create/copy/restore call as rds:AddTagsToResource: only when the
    # request tags the new resource backup-fleet:managed=true.
    rds_tag_on_create = [
      "rds:AddTagsToResource",
    ]
    # The re-encryption for a share is tagged backup-fleet:share-for, and with nothing else.
    rds_tag_share_copy = [
      "rds:AddTagsToResource",
    ]
    rds_restore = [
      "rds:RestoreDBInstanceFromDBSnapshot",
      "rds:RestoreDBClusterFromSnapshot",
      "rds:RestoreDBInstanceToPointInTime",
      "rds:RestoreDBClusterToPointInTime",
    ]
    rds_delete_managed = [
      "rds:DeleteDBSnapshot",
      "rds:DeleteDBClusterSnapshot",
    ]
    # The `restore` attribute names the backup account while it copies.
    rds_share = [
      "rds:ModifyDBSnapshotAttribute",
      "rds:ModifyDBClusterSnapshotAttribute",
    ]
    rds_share_cleanup = [
      "rds:DeleteDBSnapshot",
      "rds:DeleteDBClusterSnapshot",
    ]
    rds_restore_cleanup = [
      "rds:DeleteDBInstance",
      "rds:DeleteDBCluster",
    ]
    # Discovery of buckets (the producer, coverage): every bucket's location and tags.
    s3_list_buckets = [
      "s3:ListAllMyBuckets",
    ]
    s3_discovery = [
      "s3:GetBucketTagging",
      "s3:GetBucketLocation",
    ]
    # Reading the source buckets (var.source_bucket_arns) only; nothing is written here. Their
    # inventory configurations too (scans from S3 Inventory), as for the worker role.
    s3_read = [
      "s3:ListBucket",
      "s3:ListBucketVersions",
      "s3:GetObject",
      "s3:GetObjectVersion",
      "s3:GetObjectTagging",
      "s3:GetObjectVersionTagging",
      "s3:GetInventoryConfiguration",
    ]
    # Keys of encrypted volumes, snapshots and databases of this account (var.source_kms_key_arns).
    kms = [
      "kms:Decrypt",
      "kms:DescribeKey",
      "kms:Encrypt",
      "kms:GenerateDataKey*",
      "kms:ReEncrypt*",
    ]
    # Only grants for AWS services (EBS/RDS copying and restoring encrypted snapshots).
    kms_grant = [
      "kms:CreateGrant",
    ]
  }

  # The share key's policy: who may do what with it (a key policy, not the role's permissions).
  share_key_actions = {
    # Delegation to IAM: the account's IAM policies decide who else may use or manage the key.
    account_root = [
      "kms:*",
    ]
    # var.key_administrator_arns: administer, not use.
    key_administrators = [
      "kms:CancelKeyDeletion",
      "kms:Create*",
      "kms:Delete*",
      "kms:Describe*",
      "kms:Disable*",
      "kms:Enable*",
      "kms:Get*",
      "kms:List*",
      "kms:Put*",
      "kms:Revoke*",
      "kms:ScheduleKeyDeletion",
      "kms:TagResource",
      "kms:UntagResource",
      "kms:Update*",
    ]
    # The member role (or, with create_role = false, the role named var.name: the fleet's worker
    # role when this key is for the fleet's own account) re-encrypts snapshots under it.
    member_use = [
      "kms:Encrypt",
      "kms:Decrypt",
      "kms:ReEncrypt*",
      "kms:GenerateDataKey*",
      "kms:DescribeKey",
    ]
    member_grant = [
      "kms:CreateGrant",
    ]
    # The backup accounts' roles copy a snapshot shared under this key into their own key.
    backup_account_use = [
      "kms:Decrypt",
      "kms:DescribeKey",
      "kms:ReEncryptFrom",
    ]
    backup_account_grant = [
      "kms:CreateGrant",
    ]
  }

  #############################################################################################
  # Resource ARN patterns (this account; any Region: copies go to other Regions)
  #############################################################################################

  ec2_arn = "arn:${local.partition}:ec2:*:${local.account_id}"
  rds_arn = "arn:${local.partition}:rds:*:${local.account_id}"

  ec2_snapshots = "arn:${local.partition}:ec2:*::snapshot/*"
  ec2_images    = "arn:${local.partition}:ec2:*::image/*"

  rds_instances         = "${local.rds_arn}:db:*"
  rds_clusters          = "${local.rds_arn}:cluster:*"
  rds_snapshots         = "${local.rds_arn}:snapshot:*"
  rds_cluster_snapshots = "${local.rds_arn}:cluster-snapshot:*"

  # The re-encryptions of snapshots shared with a backup account (`bf-share-<source>-<task>`).
  rds_share_snapshots         = "${local.rds_arn}:snapshot:bf-share-*"
  rds_share_cluster_snapshots = "${local.rds_arn}:cluster-snapshot:bf-share-*"

  # The role, whether this instance of the module creates it or another one did.
  role_arn = "arn:${local.partition}:iam::${local.account_id}:role/${var.name}"

  # Who may assume the role: the fleet's task roles, and the operator role when given.
  trusted_role_arns = distinct(concat(var.fleet_role_arns, var.operator_role_arn == null ? [] : [var.operator_role_arn]))

  # The backup accounts snapshots may be shared with: the accounts of their roles.
  backup_account_ids = distinct([for r in var.backup_account_role_arns : split(":", r)[4]])
  sharing            = length(local.backup_account_ids) > 0
}

###############################################################################################
# The member role
###############################################################################################

# Only the fleet's own roles, by ARN (not their account): a principal of the fleet's account
# other than these cannot assume it, whatever its own policy says.
data "aws_iam_policy_document" "member_assume" {
  statement {
    effect  = "Allow"
    actions = ["sts:AssumeRole"]

    principals {
      type        = "AWS"
      identifiers = local.trusted_role_arns
    }

    dynamic "condition" {
      for_each = var.external_id == null ? [] : [var.external_id]
      content {
        test     = "StringEquals"
        variable = "sts:ExternalId"
        values   = [condition.value]
      }
    }
  }
}

resource "aws_iam_role" "member" {
  count = var.create_role ? 1 : 0

  name                 = var.name
  description          = "backup-fleet member role: the fleet's producer and worker act in this account with it."
  assume_role_policy   = data.aws_iam_policy_document.member_assume.json
  max_session_duration = 3600
  permissions_boundary = var.permissions_boundary_arn

  tags = var.tags

  lifecycle {
    precondition {
      condition     = length(var.fleet_role_arns) > 0
      error_message = "fleet_role_arns must list the fleet's producer and worker task role ARNs (the iam module's producer_role_arn and worker_role_arn outputs)."
    }
  }
}

data "aws_iam_policy_document" "member_ec2" {
  statement {
    sid       = "Ec2Read"
    effect    = "Allow"
    actions   = local.member_actions.ec2_read
    resources = ["*"] # EC2 Describe* actions have no resource-level permissions.
  }

  statement {
    sid       = "Ec2BackupFromSources"
    effect    = "Allow"
    actions   = local.member_actions.ec2_backup_create
    resources = ["${local.ec2_arn}:volume/*", "${local.ec2_arn}:instance/*"]
  }

  statement {
    sid       = "Ec2BackupCreateTagged"
    effect    = "Allow"
    actions   = local.member_actions.ec2_backup_create
    resources = [local.ec2_snapshots, local.ec2_images]

    condition {
      test     = "StringEquals"
      variable = "aws:RequestTag/${local.managed_tag}"
      values   = ["true"]
    }
  }

  statement {
    sid       = "Ec2Copy"
    effect    = "Allow"
    actions   = local.member_actions.ec2_copy
    resources = [local.ec2_snapshots, local.ec2_images]
  }

  statement {
    sid     = "Ec2RestoreFromSources"
    effect  = "Allow"
    actions = local.member_actions.ec2_restore_create
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
    actions   = local.member_actions.ec2_restore_create
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
    actions   = local.member_actions.ec2_tagging
    resources = [local.ec2_snapshots, local.ec2_images, "${local.ec2_arn}:volume/*", "${local.ec2_arn}:instance/*", "${local.ec2_arn}:network-interface/*"]

    condition {
      test     = "StringEquals"
      variable = "ec2:CreateAction"
      values = [
        for a in concat(local.member_actions.ec2_backup_create, local.member_actions.ec2_copy, local.member_actions.ec2_restore_create) :
        trimprefix(a, "ec2:")
      ]
    }
  }

  statement {
    sid       = "Ec2RetagManaged"
    effect    = "Allow"
    actions   = local.member_actions.ec2_tagging
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
    actions   = local.member_actions.ec2_delete_managed
    resources = [local.ec2_snapshots, local.ec2_images]

    condition {
      test     = "StringEquals"
      variable = "aws:ResourceTag/${local.managed_tag}"
      values   = ["true"]
    }
    # Never an artifact under an operator's legal hold (the tag's presence, any value).
    condition {
      test     = "Null"
      variable = "aws:ResourceTag/${local.legal_hold_tag}"
      values   = ["true"]
    }
  }

  statement {
    sid       = "Ec2TieringManaged"
    effect    = "Allow"
    actions   = local.member_actions.ec2_tiering_managed
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
    actions   = local.member_actions.ec2_restore_stop
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
    actions   = local.member_actions.ec2_restore_cleanup
    resources = ["${local.ec2_arn}:volume/*", "${local.ec2_arn}:instance/*"]

    condition {
      test     = "Null"
      variable = "aws:ResourceTag/${local.restore_drill_tag}"
      values   = ["false"]
    }
  }
}

data "aws_iam_policy_document" "member_rds" {
  statement {
    sid       = "RdsRead"
    effect    = "Allow"
    actions   = local.member_actions.rds_read
    resources = [local.rds_instances, local.rds_clusters, local.rds_snapshots, local.rds_cluster_snapshots, "${local.rds_arn}:auto-backup:*"]
  }

  statement {
    sid       = "RdsSnapshotCreate"
    effect    = "Allow"
    actions   = local.member_actions.rds_snapshot_create
    resources = [local.rds_instances, local.rds_clusters, local.rds_snapshots, local.rds_cluster_snapshots]
  }

  statement {
    sid       = "RdsTagOnCreate"
    effect    = "Allow"
    actions   = local.member_actions.rds_tag_on_create
    resources = [local.rds_instances, local.rds_clusters, local.rds_snapshots, local.rds_cluster_snapshots]

    condition {
      test     = "StringEquals"
      variable = "aws:RequestTag/${local.managed_tag}"
      values   = ["true"]
    }
  }

  statement {
    sid     = "RdsRestore"
    effect  = "Allow"
    actions = local.member_actions.rds_restore
    resources = [
      local.rds_instances,
      local.rds_clusters,
      local.rds_snapshots,
      local.rds_cluster_snapshots,
      "${local.rds_arn}:subgrp:*",
      "${local.rds_arn}:og:*",
      "${local.rds_arn}:pg:*",
      "${local.rds_arn}:cluster-pg:*",
      "${local.rds_arn}:auto-backup:*",
    ]
  }

  statement {
    sid       = "RdsDeleteManaged"
    effect    = "Allow"
    actions   = local.member_actions.rds_delete_managed
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
    actions   = local.member_actions.rds_restore_cleanup
    resources = [local.rds_instances, local.rds_clusters]

    condition {
      test     = "Null"
      variable = "aws:ResourceTag/${local.restore_drill_tag}"
      values   = ["false"]
    }
  }
}

# Copies into a backup account: only when backup accounts are listed (backup_account_role_arns).
# The fleet's snapshots (managed=true) and the re-encryptions made for a share
# (backup-fleet:share-for; RDS: bf-share-*) may be shared with the backup accounts only (EC2:
# ec2:Add/userId, never a group, so never publicly; RDS has no condition key for the account
# added, see the README), and unshared (StringEqualsIfExists: a removal names no account to add).
# The re-encryption is tagged share-for and nothing else on creation, and deleted once copied:
# tagged share-for, not a backup (no managed tag, which the role cannot take off), never under
# legal hold.
data "aws_iam_policy_document" "member_share" {
  count = local.sharing ? 1 : 0

  statement {
    sid       = "Ec2ShareManagedWithBackupAccounts"
    effect    = "Allow"
    actions   = local.member_actions.ec2_share
    resources = [local.ec2_snapshots]

    condition {
      test     = "StringEquals"
      variable = "aws:ResourceTag/${local.managed_tag}"
      values   = ["true"]
    }
    condition {
      test     = "StringEqualsIfExists"
      variable = "ec2:Add/userId"
      values   = local.backup_account_ids
    }
    condition {
      test     = "Null"
      variable = "ec2:Add/group"
      values   = ["true"]
    }
  }

  statement {
    sid       = "Ec2ShareReencryptedWithBackupAccounts"
    effect    = "Allow"
    actions   = local.member_actions.ec2_share
    resources = [local.ec2_snapshots]

    condition {
      test     = "Null"
      variable = "aws:ResourceTag/${local.share_for_tag}"
      values   = ["false"]
    }
    condition {
      test     = "StringEqualsIfExists"
      variable = "ec2:Add/userId"
      values   = local.backup_account_ids
    }
    condition {
      test     = "Null"
      variable = "ec2:Add/group"
      values   = ["true"]
    }
  }

  statement {
    sid       = "Ec2DeleteShareReencryption"
    effect    = "Allow"
    actions   = local.member_actions.ec2_share_cleanup
    resources = [local.ec2_snapshots]

    condition {
      test     = "Null"
      variable = "aws:ResourceTag/${local.share_for_tag}"
      values   = ["false"]
    }
    condition {
      test     = "Null"
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
    sid       = "RdsShareManaged"
    effect    = "Allow"
    actions   = local.member_actions.rds_share
    resources = [local.rds_snapshots, local.rds_cluster_snapshots]

    condition {
      test     = "StringEquals"
      variable = "aws:ResourceTag/${local.managed_tag}"
      values   = ["true"]
    }
  }

  statement {
    sid       = "RdsShareReencrypted"
    effect    = "Allow"
    actions   = local.member_actions.rds_share
    resources = [local.rds_share_snapshots, local.rds_share_cluster_snapshots]

    condition {
      test     = "Null"
      variable = "aws:ResourceTag/${local.share_for_tag}"
      values   = ["false"]
    }
  }

  statement {
    sid       = "RdsTagShareReencryption"
    effect    = "Allow"
    actions   = local.member_actions.rds_tag_share_copy
    resources = [local.rds_share_snapshots, local.rds_share_cluster_snapshots]

    condition {
      test     = "Null"
      variable = "aws:RequestTag/${local.share_for_tag}"
      values   = ["false"]
    }
    condition {
      test     = "ForAllValues:StringEquals"
      variable = "aws:TagKeys"
      values   = [local.share_for_tag]
    }
  }

  statement {
    sid       = "RdsDeleteShareReencryption"
    effect    = "Allow"
    actions   = local.member_actions.rds_share_cleanup
    resources = [local.rds_share_snapshots, local.rds_share_cluster_snapshots]

    condition {
      test     = "Null"
      variable = "aws:ResourceTag/${local.share_for_tag}"
      values   = ["false"]
    }
    condition {
      test     = "Null"
      variable = "aws:ResourceTag/${local.managed_tag}"
      values   = ["true"]
    }
    condition {
      test     = "Null"
      variable = "aws:ResourceTag/${local.legal_hold_tag}"
      values   = ["true"]
    }
  }
}

data "aws_iam_policy_document" "member_s3" {
  statement {
    sid       = "S3ListBuckets"
    effect    = "Allow"
    actions   = local.member_actions.s3_list_buckets
    resources = ["*"] # ListAllMyBuckets has no resource-level permissions.
  }

  statement {
    sid       = "S3Discovery"
    effect    = "Allow"
    actions   = local.member_actions.s3_discovery
    resources = ["arn:${local.partition}:s3:::*"]
  }

  dynamic "statement" {
    for_each = length(var.source_bucket_arns) > 0 ? [1] : []
    content {
      sid       = "S3ReadSources"
      effect    = "Allow"
      actions   = local.member_actions.s3_read
      resources = concat(var.source_bucket_arns, [for b in var.source_bucket_arns : "${b}/*"])
    }
  }
}

# Keys of this account's encrypted sources: only when some are listed (a policy without a
# statement is refused by IAM). The share key needs no statement here: its key policy names the role.
data "aws_iam_policy_document" "member_kms" {
  count = length(var.source_kms_key_arns) > 0 ? 1 : 0

  statement {
    sid       = "KmsUse"
    effect    = "Allow"
    actions   = local.member_actions.kms
    resources = var.source_kms_key_arns
  }

  statement {
    sid       = "KmsGrantForAwsServices"
    effect    = "Allow"
    actions   = local.member_actions.kms_grant
    resources = var.source_kms_key_arns

    condition {
      test     = "Bool"
      variable = "kms:GrantIsForAWSResource"
      values   = ["true"]
    }
  }
}

locals {
  # One managed policy per domain, as for the fleet's worker role (a single inline policy would
  # come close to the 10,240-character limit).
  member_policies = var.create_role ? merge(
    {
      ec2 = data.aws_iam_policy_document.member_ec2.json
      rds = data.aws_iam_policy_document.member_rds.json
      s3  = data.aws_iam_policy_document.member_s3.json
    },
    length(var.source_kms_key_arns) > 0 ? { kms = data.aws_iam_policy_document.member_kms[0].json } : {},
    local.sharing ? { share = data.aws_iam_policy_document.member_share[0].json } : {},
  ) : {}
}

resource "aws_iam_policy" "member" {
  for_each = local.member_policies

  name        = "${var.name}-${each.key}"
  description = "backup-fleet member role: ${each.key} permissions (actions from local.member_actions)."
  policy      = each.value

  tags = var.tags
}

resource "aws_iam_role_policy_attachment" "member" {
  for_each = local.member_policies

  role       = aws_iam_role.member[0].name
  policy_arn = aws_iam_policy.member[each.key].arn
}

###############################################################################################
# Share key (this Region)
###############################################################################################

# A snapshot under the AWS managed key (aws/ebs, aws/rds) or any key the backup account may not
# use cannot be copied by it: the fleet first copies it in place under this key, shares that
# copy, and deletes it once the backup account has its own copy under its own key.
data "aws_iam_policy_document" "share_key" {
  #checkov:skip=CKV_AWS_109:Key policy; Resource "*" is this key only and the account-root statement is what delegates key access to IAM.
  #checkov:skip=CKV_AWS_111:Key policy; Resource "*" is this key only and the account-root statement is what delegates key access to IAM.
  #checkov:skip=CKV_AWS_356:Key policy; Resource "*" is this key only (a key policy cannot name another resource).

  # Delegate to IAM: without this statement no IAM policy in the account could grant use of the key.
  statement {
    sid       = "EnableIamPolicies"
    effect    = "Allow"
    actions   = local.share_key_actions.account_root
    resources = ["*"]

    principals {
      type        = "AWS"
      identifiers = ["arn:${local.partition}:iam::${local.account_id}:root"]
    }
  }

  dynamic "statement" {
    for_each = length(var.key_administrator_arns) > 0 ? [1] : []
    content {
      sid       = "KeyAdministrators"
      effect    = "Allow"
      actions   = local.share_key_actions.key_administrators
      resources = ["*"]

      principals {
        type        = "AWS"
        identifiers = var.key_administrator_arns
      }
    }
  }

  statement {
    sid       = "MemberRoleUse"
    effect    = "Allow"
    actions   = local.share_key_actions.member_use
    resources = ["*"]

    principals {
      type        = "AWS"
      identifiers = [local.role_arn]
    }
  }

  statement {
    sid       = "MemberRoleGrantsForAwsServices"
    effect    = "Allow"
    actions   = local.share_key_actions.member_grant
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

  # The backup accounts' roles, by ARN: they copy a snapshot shared under this key into a copy
  # under their own key (their own IAM policy must allow it as well: the backup-account module's
  # share_kms_key_arns).
  dynamic "statement" {
    for_each = local.sharing ? [1] : []
    content {
      sid       = "BackupAccountCopy"
      effect    = "Allow"
      actions   = local.share_key_actions.backup_account_use
      resources = ["*"]

      principals {
        type        = "AWS"
        identifiers = var.backup_account_role_arns
      }
    }
  }

  dynamic "statement" {
    for_each = local.sharing ? [1] : []
    content {
      sid       = "BackupAccountGrantsForAwsServices"
      effect    = "Allow"
      actions   = local.share_key_actions.backup_account_grant
      resources = ["*"]

      principals {
        type        = "AWS"
        identifiers = var.backup_account_role_arns
      }

      condition {
        test     = "Bool"
        variable = "kms:GrantIsForAWSResource"
        values   = ["true"]
      }
    }
  }
}

resource "aws_kms_key" "share" {
  count = var.create_share_key ? 1 : 0

  description             = "backup-fleet share key: snapshots re-encrypted for a copy into a backup account"
  enable_key_rotation     = true
  deletion_window_in_days = var.share_key_deletion_window_in_days
  policy                  = data.aws_iam_policy_document.share_key.json

  tags = var.tags

  # The key policy names the role: create it first (KMS refuses a policy naming a missing principal).
  depends_on = [aws_iam_role.member]
}

resource "aws_kms_alias" "share" {
  count = var.create_share_key ? 1 : 0

  name          = "alias/${var.share_key_alias}"
  target_key_id = aws_kms_key.share[0].key_id
}
