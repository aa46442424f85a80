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
  # On the temporary re-encryption of a snapshot shared with a backup account (and on nothing
  # else): the copy task it serves, which deletes it once the backup account has its copy.
  share_for_tag = "backup-fleet:share-for"

  #############################################################################################
  # THE ACTION LISTS. Each role's AWS actions live here, and only here: every statement below
  # takes its `actions` from one of these groups (keys = statement groups). A test compares the
  # union of the worker, producer and operator maps with the calls the Rust code makes
  # (scripts/check_iam.py).
  #############################################################################################

  # backup-worker (task role)
  worker_actions = {
    sqs = [
      "sqs:ReceiveMessage",
      "sqs:DeleteMessage",
      "sqs:ChangeMessageVisibility",
      "sqs:SendMessage",
      "sqs:GetQueueAttributes",
    ]
    dynamodb = [
      "dynamodb:GetItem",
      "dynamodb:PutItem",
      "dynamodb:UpdateItem",
      "dynamodb:Query",
    ]
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
    # Source and destination are the same resource type, so no request-tag condition fits.
    ec2_copy = [
      "ec2:CopySnapshot",
      "ec2:CopyImage",
    ]
    # Restores / restore drills: created volumes and instances must be tagged managed=true.
    ec2_restore_create = [
      "ec2:CreateVolume",
      "ec2:RunInstances",
    ]
    ec2_tagging = [
      "ec2:CreateTags",
    ]
    # Only resources tagged backup-fleet:managed=true.
    ec2_delete_managed = [
      "ec2:DeleteSnapshot",
      "ec2:DeregisterImage",
    ]
    # EBS archive tier: archiving the fleet's long-kept snapshots, and the temporary restore a
    # restore of an archived snapshot starts. Only snapshots tagged backup-fleet:managed=true.
    ec2_tiering_managed = [
      "ec2:ModifySnapshotTier",
      "ec2:RestoreSnapshotTier",
    ]
    # Copies into a backup account (copy_to with account_id): the fleet's snapshot, or its
    # re-encryption under the share key, is shared with the backup account
    # (createVolumePermission) and unshared once copied. Only with the accounts of
    # var.backup_account_role_arns, never publicly.
    ec2_share = [
      "ec2:ModifySnapshotAttribute",
    ]
    # The re-encryption made for a share is deleted once the backup account has its copy: only
    # snapshots tagged backup-fleet:share-for and not backup-fleet:managed.
    ec2_share_cleanup = [
      "ec2:DeleteSnapshot",
    ]
    # A restored instance is stopped after launch: only instances tagged
    # backup-fleet:managed=true that carry backup-fleet:restored-from.
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
    rds_snapshot_create = [
      "rds:CreateDBSnapshot",
      "rds:CreateDBClusterSnapshot",
      "rds:CopyDBSnapshot",
      "rds:CopyDBClusterSnapshot",
    ]
    # RDS authorizes the tags of a create/copy/restore call as rds:AddTagsToResource (the code
    # never calls AddTagsToResource itself): only when the request tags the new resource
    # backup-fleet:managed=true.
    rds_tag_on_create = [
      "rds:AddTagsToResource",
    ]
    # From a snapshot, or to a point in time of the source's automated backups.
    rds_restore = [
      "rds:RestoreDBInstanceFromDBSnapshot",
      "rds:RestoreDBClusterFromSnapshot",
      "rds:RestoreDBInstanceToPointInTime",
      "rds:RestoreDBClusterToPointInTime",
    ]
    # Only snapshots tagged backup-fleet:managed=true.
    rds_delete_managed = [
      "rds:DeleteDBSnapshot",
      "rds:DeleteDBClusterSnapshot",
    ]
    # Only instances/clusters tagged backup-fleet:restore-drill.
    rds_restore_cleanup = [
      "rds:DeleteDBInstance",
      "rds:DeleteDBCluster",
    ]
    # Copies into a backup account: the `restore` attribute of the fleet's snapshot (or of its
    # re-encryption, bf-share-*) names the backup account while it copies.
    rds_share = [
      "rds:ModifyDBSnapshotAttribute",
      "rds:ModifyDBClusterSnapshotAttribute",
    ]
    # The re-encryption's only tag (backup-fleet:share-for), given on its CopyDB*Snapshot.
    rds_tag_share_copy = [
      "rds:AddTagsToResource",
    ]
    # The re-encryption is deleted once the backup account has its copy.
    rds_share_cleanup = [
      "rds:DeleteDBSnapshot",
      "rds:DeleteDBClusterSnapshot",
    ]
    # Snapshot exports to the backup bucket (rds.export_snapshot): started on a snapshot, then
    # followed by the export's identifier.
    rds_export_start = [
      "rds:StartExportTask",
    ]
    rds_export_describe = [
      "rds:DescribeExportTasks",
    ]
    # StartExportTask hands RDS the export role: only that role, only to the export service.
    rds_export_pass_role = [
      "iam:PassRole",
    ]
    # The caller of StartExportTask needs these on the export's key (RDS creates a grant for the
    # export with the caller's permissions): only through RDS. The fleet's own key and
    # additional_kms_key_arns already have them (KmsUse, KmsGrantForAwsServices).
    kms_rds_export = [
      "kms:CreateGrant",
      "kms:DescribeKey",
    ]
    s3_read = [
      "s3:ListBucket",
      "s3:ListBucketVersions",
      "s3:GetObject",
      "s3:GetObjectVersion",
      "s3:GetObjectTagging",
      "s3:GetObjectVersionTagging",
    ]
    # Scans from S3 Inventory: a source bucket's inventory configurations
    # (GetBucketInventoryConfiguration) say where its reports are. Source buckets only
    # (var.source_bucket_arns).
    s3_inventory_configuration = [
      "s3:GetInventoryConfiguration",
    ]
    # The inventory reports (manifest.json, manifest.checksum, gzipped CSV data files) in the
    # buckets of var.s3_inventory_bucket_arns: listed with a delimiter, then read. No statement
    # when the list is empty.
    s3_inventory_reports = [
      "s3:ListBucket",
      "s3:GetObject",
    ]
    s3_write = [
      "s3:PutObject",
      "s3:PutObjectTagging",
      "s3:PutObjectRetention",
    ]
    # Backup bucket only: abort a failed multipart copy or dump upload; hide a copy that failed
    # verification behind a delete marker. No s3:DeleteObjectVersion here: backup versions stay
    # (and Object Lock keeps them); only the two prefixes below may lose versions.
    s3_cleanup = [
      "s3:AbortMultipartUpload",
      "s3:DeleteObject",
    ]
    # Backup bucket only: a restore of a backup in GLACIER or DEEP_ARCHIVE first restores a
    # temporary copy of it (RestoreObject).
    s3_archive_restore = [
      "s3:RestoreObject",
    ]
    # Restore drills remove the object versions they restored (under drills/ only).
    s3_drill_cleanup = [
      "s3:DeleteObjectVersion",
    ]
    # Expired snapshot exports are deleted by the fleet, every version of every file RDS wrote
    # (under the export prefix only, var.rds_export_prefix).
    s3_export_cleanup = [
      "s3:DeleteObjectVersion",
    ]
    kms = [
      "kms:Decrypt",
      "kms:DescribeKey",
      "kms:Encrypt",
      "kms:GenerateDataKey*",
      "kms:ReEncrypt*",
    ]
    # Only grants for AWS services (EBS/RDS copying encrypted snapshots).
    kms_grant = [
      "kms:CreateGrant",
    ]
    events = [
      "events:PutEvents",
    ]
    # Logical backups and drills read the database secrets (host, port, user, password): only
    # the secrets listed in var.database_secret_arns.
    secrets = [
      "secretsmanager:GetSecretValue",
    ]
    # Secrets encrypted with a customer managed key: decrypt only through Secrets Manager.
    kms_secrets = [
      "kms:Decrypt",
    ]
    # Other accounts, through assumed roles (aws/src/accounts.rs): the member roles of the plans'
    # `accounts` (backups, copies, prunes, verification, restores there) and the roles of the
    # backup accounts that `copy_to` entries with an account_id copy into. Only the roles in
    # var.member_role_arns and var.backup_account_role_arns; no statement when they are empty.
    sts_assume_member_roles = [
      "sts:AssumeRole",
    ]
    sts_assume_backup_account_roles = [
      "sts:AssumeRole",
    ]
  }

  # backup-producer (task role)
  producer_actions = {
    sqs_consume = [
      "sqs:ReceiveMessage",
      "sqs:DeleteMessage",
      "sqs:ChangeMessageVisibility",
    ]
    sqs_send = [
      "sqs:SendMessage",
    ]
    dynamodb = [
      "dynamodb:PutItem",
      "dynamodb:UpdateItem",
      "dynamodb:GetItem",
    ]
    # Reads by index and run: a plan's expansion looks up the backups of deleted sources that must
    # still age out (catalog by_expiry); a coverage pass reads the run history (state table
    # partition) and the tasks of each plan's latest run (state by_run).
    dynamodb_query = [
      "dynamodb:Query",
    ]
    # A coverage pass reads the whole catalog (every backup, deleted ones included): a Scan.
    catalog_scan = [
      "dynamodb:Scan",
    ]
    ec2_discovery = [
      "ec2:DescribeVolumes",
      "ec2:DescribeInstances",
    ]
    rds_discovery = [
      "rds:DescribeDBInstances",
      "rds:DescribeDBClusters",
      "rds:ListTagsForResource",
    ]
    s3_list_buckets = [
      "s3:ListAllMyBuckets",
    ]
    s3_discovery = [
      "s3:GetBucketTagging",
      "s3:GetBucketLocation",
    ]
    # Needed because the queues and tables are SSE-KMS encrypted: receiving and reading decrypt,
    # sending and writing generate a data key.
    kms = [
      "kms:Decrypt",
      "kms:GenerateDataKey",
    ]
    # Discovery in the plans' other accounts (`accounts`), through their member roles: only the
    # roles in var.member_role_arns; no statement when it is empty.
    sts_assume_member_roles = [
      "sts:AssumeRole",
    ]
  }

  # backup-fleet-operator (people running `backupctl`: status, tasks, catalog list, dlq
  # list/replay, canary). Not an ECS role: assumed by the account's principals or
  # var.operator_principal_arns.
  operator_actions = {
    # status (depths, peek), dlq list/replay (receive, then restore visibility): all four queues.
    sqs_read = [
      "sqs:ReceiveMessage",
      "sqs:ChangeMessageVisibility",
      "sqs:GetQueueAttributes",
    ]
    # canary and dlq replay: only the two source queues (tasks, events).
    sqs_send = [
      "sqs:SendMessage",
    ]
    # dlq replay removes the replayed message: only the two DLQs.
    sqs_delete = [
      "sqs:DeleteMessage",
    ]
    # status, tasks show/list, canary, dlq list, catalog list --resource: both tables and indexes.
    dynamodb_read = [
      "dynamodb:GetItem",
      "dynamodb:Query",
    ]
    # catalog list (no filter): the catalog table only.
    dynamodb_scan = [
      "dynamodb:Scan",
    ]
    # dlq replay re-opens the task's item: the state table only.
    dynamodb_reopen = [
      "dynamodb:UpdateItem",
    ]
    # The queues and tables are SSE-KMS: only through SQS and DynamoDB.
    kms = [
      "kms:Decrypt",
      "kms:GenerateDataKey",
    ]
    # report coverage and report rpo discover every resource live (read-only, all regions).
    discovery_read = [
      "ec2:DescribeVolumes",
      "ec2:DescribeInstances",
      "rds:DescribeDBInstances",
      "rds:DescribeDBClusters",
      "s3:ListAllMyBuckets",
      "s3:GetBucketLocation",
      "s3:GetBucketTagging",
    ]
    # Restores inside another account (`backupctl restore --from-account`): the backup-account
    # roles and the member roles. Only the roles in var.backup_account_role_arns and
    # var.member_role_arns; no statement when they are empty.
    sts_assume_member_roles = [
      "sts:AssumeRole",
    ]
    sts_assume_backup_account_roles = [
      "sts:AssumeRole",
    ]
  }

  # Used by the ADOT collector sidecar in both tasks (not by the Rust binaries): traces to X-Ray,
  # OTLP metrics to CloudWatch as EMF in the BackupFleet namespace.
  telemetry_actions = {
    xray = [
      "xray:PutTraceSegments",
      "xray:PutTelemetryRecords",
      "xray:GetSamplingRules",
      "xray:GetSamplingTargets",
      "xray:GetSamplingStatisticSummaries",
    ]
    emf_logs = [
      "logs:CreateLogStream",
      "logs:PutLogEvents",
      "logs:DescribeLogStreams",
    ]
  }

  # The role RDS assumes to write snapshot exports into the backup bucket (not a fleet process:
  # the actions AWS documents for the export role, StartExportTask's IamRoleArn).
  rds_export_actions = {
    bucket = [
      "s3:ListBucket",
      "s3:GetBucketLocation",
    ]
    objects = [
      "s3:PutObject*",
      "s3:GetObject*",
      "s3:DeleteObject*",
    ]
  }

  # ECS task execution role (image pull, log delivery).
  execution_actions = {
    ecr_auth = [
      "ecr:GetAuthorizationToken",
    ]
    ecr_pull = [
      "ecr:BatchCheckLayerAvailability",
      "ecr:GetDownloadUrlForLayer",
      "ecr:BatchGetImage",
    ]
    logs = [
      "logs:CreateLogStream",
      "logs:PutLogEvents",
    ]
  }

  #############################################################################################
  # Resource ARN patterns
  #############################################################################################

  ec2_arn = "arn:${local.partition}:ec2:*:${local.account_id}"
  rds_arn = "arn:${local.partition}:rds:*:${local.account_id}"

  ec2_snapshots = "arn:${local.partition}:ec2:*::snapshot/*"
  ec2_images    = "arn:${local.partition}:ec2:*::image/*"

  rds_instances         = "${local.rds_arn}:db:*"
  rds_clusters          = "${local.rds_arn}:cluster:*"
  rds_snapshots         = "${local.rds_arn}:snapshot:*"
  rds_cluster_snapshots = "${local.rds_arn}:cluster-snapshot:*"

  # The re-encryptions of snapshots shared with a backup account (worker/src/handlers/rds.rs,
  # share_identifier: `bf-share-<source>-<task>`).
  rds_share_snapshots         = "${local.rds_arn}:snapshot:bf-share-*"
  rds_share_cluster_snapshots = "${local.rds_arn}:cluster-snapshot:bf-share-*"

  worker_queue_arns = [var.task_queue_arn, var.task_dlq_arn]
  source_queue_arns = [var.task_queue_arn, var.events_queue_arn]
  dlq_arns          = [var.task_dlq_arn, var.events_dlq_arn]
  fleet_queue_arns  = concat(local.source_queue_arns, local.dlq_arns)
  table_arns        = [var.state_table_arn, var.catalog_table_arn]
  table_index_arns  = [for t in local.table_arns : "${t}/index/*"]

  # Who may assume the operator role: the listed principals, else the account (any principal of
  # the account whose own policy allows sts:AssumeRole on the role).
  operator_principals = length(var.operator_principal_arns) > 0 ? var.operator_principal_arns : ["arn:${local.partition}:iam::${local.account_id}:root"]

  worker_read_bucket_arns = distinct(concat([var.backup_bucket_arn], var.source_bucket_arns, var.backup_account_bucket_arns))
  worker_kms_key_arns     = distinct(concat([var.kms_key_arn], var.additional_kms_key_arns))

  # Where RDS writes exports in the backup bucket (the policy's export.prefix).
  rds_export_objects = "${var.backup_bucket_arn}/${var.rds_export_prefix}/*"

  # KMS keys are regional: each key is used through the service endpoint of its own Region.
  secrets_kms_via_services = distinct([for k in var.database_secret_kms_key_arns : "secretsmanager.${split(":", k)[3]}.amazonaws.com"])
  rds_export_kms_via       = distinct([for k in var.rds_export_kms_key_arns : "rds.${split(":", k)[3]}.amazonaws.com"])

  ecs_source_arn = "arn:${local.partition}:ecs:${local.region}:${local.account_id}:*"

  # The isolated backup accounts (copy_to entries with an account_id): the accounts of their
  # roles. The fleet's snapshots may be shared with these accounts and no other.
  backup_account_ids = distinct([for r in var.backup_account_role_arns : split(":", r)[4]])

  # The S3 buckets the worker writes backups into: its own, and backup-account buckets.
  worker_write_bucket_arns = distinct(concat([var.backup_bucket_arn], var.backup_account_bucket_arns))
}

###############################################################################################
# Trust policies
###############################################################################################

data "aws_iam_policy_document" "ecs_tasks_assume" {
  statement {
    effect  = "Allow"
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["ecs-tasks.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }

    condition {
      test     = "ArnLike"
      variable = "aws:SourceArn"
      values   = [local.ecs_source_arn]
    }
  }
}

###############################################################################################
# Execution role (shared by both services)
###############################################################################################

resource "aws_iam_role" "execution" {
  name                 = "${var.name}-execution"
  description          = "backup-fleet ECS task execution role: image pull and log delivery."
  assume_role_policy   = data.aws_iam_policy_document.ecs_tasks_assume.json
  permissions_boundary = var.permissions_boundary_arn

  tags = var.tags
}

data "aws_iam_policy_document" "execution" {
  statement {
    sid       = "EcrAuth"
    effect    = "Allow"
    actions   = local.execution_actions.ecr_auth
    resources = ["*"] # GetAuthorizationToken has no resource-level permissions.
  }

  dynamic "statement" {
    for_each = length(var.ecr_repository_arns) > 0 ? [1] : []
    content {
      sid       = "EcrPull"
      effect    = "Allow"
      actions   = local.execution_actions.ecr_pull
      resources = var.ecr_repository_arns
    }
  }

  statement {
    sid       = "Logs"
    effect    = "Allow"
    actions   = local.execution_actions.logs
    resources = [for g in var.log_group_arns : "${g}:log-stream:*"]
  }
}

resource "aws_iam_role_policy" "execution" {
  name   = "execution"
  role   = aws_iam_role.execution.id
  policy = data.aws_iam_policy_document.execution.json
}

###############################################################################################
# Telemetry (ADOT sidecar), attached to both task roles
###############################################################################################

data "aws_iam_policy_document" "telemetry" {
  statement {
    sid       = "XRay"
    effect    = "Allow"
    actions   = local.telemetry_actions.xray
    resources = ["*"] # X-Ray trace and sampling APIs have no resource-level permissions.
  }

  statement {
    sid       = "EmfLogs"
    effect    = "Allow"
    actions   = local.telemetry_actions.emf_logs
    resources = [var.metrics_log_group_arn, "${var.metrics_log_group_arn}:log-stream:*"]
  }
}

###############################################################################################
# Worker task role
###############################################################################################

resource "aws_iam_role" "worker" {
  name                 = "${var.name}-worker"
  description          = "backup-fleet worker task role."
  assume_role_policy   = data.aws_iam_policy_document.ecs_tasks_assume.json
  permissions_boundary = var.permissions_boundary_arn

  tags = var.tags
}

# The worker's permissions are split into one managed policy per domain: a single inline policy
# would approach the 10,240-character limit on a role's inline policies as source buckets and keys
# are added (a managed policy may hold 6,144 characters, and a role up to 10 of them).
data "aws_iam_policy_document" "worker_core" {
  statement {
    sid       = "TaskQueues"
    effect    = "Allow"
    actions   = local.worker_actions.sqs
    resources = local.worker_queue_arns
  }

  statement {
    sid       = "Tables"
    effect    = "Allow"
    actions   = local.worker_actions.dynamodb
    resources = concat(local.table_arns, local.table_index_arns)
  }

  statement {
    sid       = "KmsUse"
    effect    = "Allow"
    actions   = local.worker_actions.kms
    resources = local.worker_kms_key_arns
  }

  statement {
    sid       = "KmsGrantForAwsServices"
    effect    = "Allow"
    actions   = local.worker_actions.kms_grant
    resources = local.worker_kms_key_arns

    condition {
      test     = "Bool"
      variable = "kms:GrantIsForAWSResource"
      values   = ["true"]
    }
  }

  statement {
    sid       = "FleetBus"
    effect    = "Allow"
    actions   = local.worker_actions.events
    resources = [var.event_bus_arn]
  }
}

data "aws_iam_policy_document" "worker_ec2" {
  statement {
    sid       = "Ec2Read"
    effect    = "Allow"
    actions   = local.worker_actions.ec2_read
    resources = ["*"] # EC2 Describe* actions have no resource-level permissions.
  }

  statement {
    sid       = "Ec2BackupFromSources"
    effect    = "Allow"
    actions   = local.worker_actions.ec2_backup_create
    resources = ["${local.ec2_arn}:volume/*", "${local.ec2_arn}:instance/*"]
  }

  statement {
    sid       = "Ec2BackupCreateTagged"
    effect    = "Allow"
    actions   = local.worker_actions.ec2_backup_create
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
    actions   = local.worker_actions.ec2_copy
    resources = [local.ec2_snapshots, local.ec2_images]
  }

  statement {
    sid     = "Ec2RestoreFromSources"
    effect  = "Allow"
    actions = local.worker_actions.ec2_restore_create
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
    actions   = local.worker_actions.ec2_restore_create
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
    actions   = local.worker_actions.ec2_tagging
    resources = [local.ec2_snapshots, local.ec2_images, "${local.ec2_arn}:volume/*", "${local.ec2_arn}:instance/*", "${local.ec2_arn}:network-interface/*"]

    condition {
      test     = "StringEquals"
      variable = "ec2:CreateAction"
      values = [
        for a in concat(local.worker_actions.ec2_backup_create, local.worker_actions.ec2_copy, local.worker_actions.ec2_restore_create) :
        trimprefix(a, "ec2:")
      ]
    }
  }

  statement {
    sid       = "Ec2RetagManaged"
    effect    = "Allow"
    actions   = local.worker_actions.ec2_tagging
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
    actions   = local.worker_actions.ec2_delete_managed
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

  # Archive-tier moves and temporary restores of the fleet's own snapshots only.
  statement {
    sid       = "Ec2TieringManaged"
    effect    = "Allow"
    actions   = local.worker_actions.ec2_tiering_managed
    resources = [local.ec2_snapshots]

    condition {
      test     = "StringEquals"
      variable = "aws:ResourceTag/${local.managed_tag}"
      values   = ["true"]
    }
  }

  # Restores stop the instance they launched: only instances the fleet restored (managed=true, set
  # on launch by Ec2RestoreCreateTagged, and a restored-from tag).
  statement {
    sid       = "Ec2StopRestored"
    effect    = "Allow"
    actions   = local.worker_actions.ec2_restore_stop
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
    actions   = local.worker_actions.ec2_restore_cleanup
    resources = ["${local.ec2_arn}:volume/*", "${local.ec2_arn}:instance/*"]

    condition {
      test     = "Null"
      variable = "aws:ResourceTag/${local.restore_drill_tag}"
      values   = ["false"]
    }
  }
}

data "aws_iam_policy_document" "worker_rds" {
  statement {
    sid       = "RdsRead"
    effect    = "Allow"
    actions   = local.worker_actions.rds_read
    resources = [local.rds_instances, local.rds_clusters, local.rds_snapshots, local.rds_cluster_snapshots, "${local.rds_arn}:auto-backup:*"]
  }

  statement {
    sid       = "RdsSnapshotCreate"
    effect    = "Allow"
    actions   = local.worker_actions.rds_snapshot_create
    resources = [local.rds_instances, local.rds_clusters, local.rds_snapshots, local.rds_cluster_snapshots]
  }

  # Tags passed to CreateDB*Snapshot, CopyDB*Snapshot and RestoreDB*From*Snapshot are authorized as
  # rds:AddTagsToResource on the new resource: only when they mark it backup-fleet:managed=true.
  statement {
    sid       = "RdsTagOnCreate"
    effect    = "Allow"
    actions   = local.worker_actions.rds_tag_on_create
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
    actions = local.worker_actions.rds_restore
    resources = [
      local.rds_instances,
      local.rds_clusters,
      local.rds_snapshots,
      local.rds_cluster_snapshots,
      "${local.rds_arn}:subgrp:*",
      "${local.rds_arn}:og:*",
      "${local.rds_arn}:pg:*",
      "${local.rds_arn}:cluster-pg:*",
      # A point-in-time restore reads the source's automated backups.
      "${local.rds_arn}:auto-backup:*",
    ]
  }

  statement {
    sid       = "RdsDeleteManaged"
    effect    = "Allow"
    actions   = local.worker_actions.rds_delete_managed
    resources = [local.rds_snapshots, local.rds_cluster_snapshots]

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
    sid       = "RdsRestoreDrillCleanup"
    effect    = "Allow"
    actions   = local.worker_actions.rds_restore_cleanup
    resources = [local.rds_instances, local.rds_clusters]

    condition {
      test     = "Null"
      variable = "aws:ResourceTag/${local.restore_drill_tag}"
      values   = ["false"]
    }
  }

  # Exports of snapshots (instance and cluster snapshots; the fleet never exports a live cluster).
  statement {
    sid       = "RdsExportStart"
    effect    = "Allow"
    actions   = local.worker_actions.rds_export_start
    resources = [local.rds_snapshots, local.rds_cluster_snapshots]
  }

  # Asked by export identifier, the request names no snapshot: "*" (the account's exports).
  statement {
    sid       = "RdsExportDescribe"
    effect    = "Allow"
    actions   = local.worker_actions.rds_export_describe
    resources = ["*"]
  }

  statement {
    sid       = "RdsExportPassRole"
    effect    = "Allow"
    actions   = local.worker_actions.rds_export_pass_role
    resources = [aws_iam_role.rds_export.arn]

    condition {
      test     = "StringEquals"
      variable = "iam:PassedToService"
      values   = ["export.rds.amazonaws.com"]
    }
  }

  dynamic "statement" {
    for_each = length(var.rds_export_kms_key_arns) > 0 ? [1] : []
    content {
      sid       = "RdsExportKey"
      effect    = "Allow"
      actions   = local.worker_actions.kms_rds_export
      resources = var.rds_export_kms_key_arns

      condition {
        test     = "StringEquals"
        variable = "kms:ViaService"
        values   = local.rds_export_kms_via
      }
    }
  }
}

data "aws_iam_policy_document" "worker_s3" {
  statement {
    sid       = "S3Read"
    effect    = "Allow"
    actions   = local.worker_actions.s3_read
    resources = concat(local.worker_read_bucket_arns, [for b in local.worker_read_bucket_arns : "${b}/*"])
  }

  # Scans from S3 Inventory: the inventory configurations of the source buckets (bucket ARNs).
  dynamic "statement" {
    for_each = length(var.source_bucket_arns) > 0 ? [1] : []
    content {
      sid       = "S3SourceInventoryConfiguration"
      effect    = "Allow"
      actions   = local.worker_actions.s3_inventory_configuration
      resources = var.source_bucket_arns
    }
  }

  # The inventory reports of those sources: listing the destination buckets, reading their
  # objects (not their versions, nothing written). Only when some are listed.
  dynamic "statement" {
    for_each = length(var.s3_inventory_bucket_arns) > 0 ? [1] : []
    content {
      sid       = "S3InventoryReports"
      effect    = "Allow"
      actions   = local.worker_actions.s3_inventory_reports
      resources = concat(var.s3_inventory_bucket_arns, [for b in var.s3_inventory_bucket_arns : "${b}/*"])
    }
  }

  # The backup bucket, and the Object Lock buckets of backup accounts (their bucket policy must
  # allow this role too: the backup-account module's writer_role_arns).
  statement {
    sid       = "S3WriteBackupBucket"
    effect    = "Allow"
    actions   = local.worker_actions.s3_write
    resources = [for b in local.worker_write_bucket_arns : "${b}/*"]
  }

  # Aborting a failed multipart copy, and a delete marker over a copy that failed verification
  # (DeleteObject without a version id). Backup bucket only; no DeleteObjectVersion.
  statement {
    sid       = "S3CleanupBackupBucket"
    effect    = "Allow"
    actions   = local.worker_actions.s3_cleanup
    resources = ["${var.backup_bucket_arn}/*"]
  }

  statement {
    sid       = "S3ArchiveRestoreBackupBucket"
    effect    = "Allow"
    actions   = local.worker_actions.s3_archive_restore
    resources = ["${var.backup_bucket_arn}/*"]
  }

  # Restore drills restore S3 objects under drills/<task>/ in the backup bucket and delete those
  # versions when they clean up. Scoped to that prefix: backup versions are never deletable.
  statement {
    sid       = "S3DrillCleanup"
    effect    = "Allow"
    actions   = local.worker_actions.s3_drill_cleanup
    resources = ["${var.backup_bucket_arn}/drills/*"]
  }

  # An expired snapshot export is deleted whole (every version under <prefix>/<export id>/) once
  # its catalog record expired. Scoped to the export prefix. Object Lock still refuses versions
  # under retention (a bucket default retention applies to the files RDS writes too).
  statement {
    sid       = "S3ExportCleanup"
    effect    = "Allow"
    actions   = local.worker_actions.s3_export_cleanup
    resources = [local.rds_export_objects]
  }
}

# Database secrets of logical backups and drills: only when some are listed (a policy without a
# statement is refused by IAM).
data "aws_iam_policy_document" "worker_secrets" {
  count = length(var.database_secret_arns) > 0 ? 1 : 0

  statement {
    sid       = "DatabaseSecrets"
    effect    = "Allow"
    actions   = local.worker_actions.secrets
    resources = var.database_secret_arns
  }

  dynamic "statement" {
    for_each = length(var.database_secret_kms_key_arns) > 0 ? [1] : []
    content {
      sid       = "DatabaseSecretKeys"
      effect    = "Allow"
      actions   = local.worker_actions.kms_secrets
      resources = var.database_secret_kms_key_arns

      condition {
        test     = "StringEquals"
        variable = "kms:ViaService"
        values   = local.secrets_kms_via_services
      }
    }
  }
}

# Copies into a backup account (`copy_to` with an account_id), with the fleet's own account as
# the source: only when backup accounts are listed (backup_account_role_arns). The fleet's snapshots
# (managed=true) and the re-encryptions made for a share (backup-fleet:share-for; RDS: bf-share-*)
# may be shared with the backup accounts only (EC2: ec2:Add/userId, never a group, so never
# publicly; RDS has no condition key for the account added, see the README), and unshared
# (StringEqualsIfExists: a removal names no account to add). The re-encryption is tagged
# share-for and nothing else on creation, and deleted once copied: tagged share-for, not a backup
# (no managed tag, which the fleet cannot take off), never under legal hold.
data "aws_iam_policy_document" "worker_share" {
  count = length(local.backup_account_ids) > 0 ? 1 : 0

  statement {
    sid       = "Ec2ShareManagedWithBackupAccounts"
    effect    = "Allow"
    actions   = local.worker_actions.ec2_share
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
    actions   = local.worker_actions.ec2_share
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
    actions   = local.worker_actions.ec2_share_cleanup
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
    actions   = local.worker_actions.rds_share
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
    actions   = local.worker_actions.rds_share
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
    actions   = local.worker_actions.rds_tag_share_copy
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
    actions   = local.worker_actions.rds_share_cleanup
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

# Roles in other accounts: the member roles (plans' `accounts`) and the backup-account roles
# (`copy_to` with an account_id), by ARN and only those; no policy when both lists are empty.
data "aws_iam_policy_document" "worker_accounts" {
  count = length(var.member_role_arns) + length(var.backup_account_role_arns) > 0 ? 1 : 0

  dynamic "statement" {
    for_each = length(var.member_role_arns) > 0 ? [1] : []
    content {
      sid       = "AssumeMemberRoles"
      effect    = "Allow"
      actions   = local.worker_actions.sts_assume_member_roles
      resources = var.member_role_arns
    }
  }

  dynamic "statement" {
    for_each = length(var.backup_account_role_arns) > 0 ? [1] : []
    content {
      sid       = "AssumeBackupAccountRoles"
      effect    = "Allow"
      actions   = local.worker_actions.sts_assume_backup_account_roles
      resources = var.backup_account_role_arns
    }
  }
}

locals {
  worker_policies = merge(
    {
      core = data.aws_iam_policy_document.worker_core.json
      ec2  = data.aws_iam_policy_document.worker_ec2.json
      rds  = data.aws_iam_policy_document.worker_rds.json
      s3   = data.aws_iam_policy_document.worker_s3.json
    },
    length(var.database_secret_arns) > 0 ? { secrets = data.aws_iam_policy_document.worker_secrets[0].json } : {},
    length(var.member_role_arns) + length(var.backup_account_role_arns) > 0 ? { accounts = data.aws_iam_policy_document.worker_accounts[0].json } : {},
    length(local.backup_account_ids) > 0 ? { share = data.aws_iam_policy_document.worker_share[0].json } : {},
  )
}

resource "aws_iam_policy" "worker" {
  for_each = local.worker_policies

  name        = "${var.name}-worker-${each.key}"
  description = "backup-fleet worker: ${each.key} permissions (actions from local.worker_actions)."
  policy      = each.value

  tags = var.tags
}

resource "aws_iam_role_policy_attachment" "worker" {
  for_each = local.worker_policies

  role       = aws_iam_role.worker.name
  policy_arn = aws_iam_policy.worker[each.key].arn
}

resource "aws_iam_role_policy" "worker_telemetry" {
  name   = "telemetry"
  role   = aws_iam_role.worker.id
  policy = data.aws_iam_policy_document.telemetry.json
}

###############################################################################################
# RDS snapshot export role (assumed by RDS, passed by the worker in StartExportTask)
###############################################################################################

data "aws_iam_policy_document" "rds_export_assume" {
  statement {
    effect  = "Allow"
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["export.rds.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }
}

resource "aws_iam_role" "rds_export" {
  name                 = "${var.name}-rds-export"
  description          = "backup-fleet: RDS writes snapshot exports into the backup bucket's export prefix."
  assume_role_policy   = data.aws_iam_policy_document.rds_export_assume.json
  permissions_boundary = var.permissions_boundary_arn

  tags = var.tags
}

# The actions AWS documents for an export role, on the backup bucket and its export prefix only.
data "aws_iam_policy_document" "rds_export" {
  statement {
    sid       = "ExportBucket"
    effect    = "Allow"
    actions   = local.rds_export_actions.bucket
    resources = [var.backup_bucket_arn]
  }

  statement {
    sid       = "ExportObjects"
    effect    = "Allow"
    actions   = local.rds_export_actions.objects
    resources = [local.rds_export_objects]
  }
}

resource "aws_iam_role_policy" "rds_export" {
  name   = "rds-export"
  role   = aws_iam_role.rds_export.id
  policy = data.aws_iam_policy_document.rds_export.json
}

###############################################################################################
# Producer task role
###############################################################################################

resource "aws_iam_role" "producer" {
  name                 = "${var.name}-producer"
  description          = "backup-fleet producer task role."
  assume_role_policy   = data.aws_iam_policy_document.ecs_tasks_assume.json
  permissions_boundary = var.permissions_boundary_arn

  tags = var.tags
}

data "aws_iam_policy_document" "producer" {
  statement {
    sid       = "ConsumeEventsQueue"
    effect    = "Allow"
    actions   = local.producer_actions.sqs_consume
    resources = [var.events_queue_arn]
  }

  statement {
    sid       = "SendTasksAndDeadEvents"
    effect    = "Allow"
    actions   = local.producer_actions.sqs_send
    resources = [var.task_queue_arn, var.events_dlq_arn]
  }

  statement {
    sid       = "StateTable"
    effect    = "Allow"
    actions   = local.producer_actions.dynamodb
    resources = [var.state_table_arn]
  }

  # The state table (runs) and the indexes of both tables (by_run, by_expiry). Indexes by
  # wildcard: they hold no item the table-level reads here (state GetItem, catalog Scan) do not.
  statement {
    sid       = "QueryRunsAndCatalog"
    effect    = "Allow"
    actions   = local.producer_actions.dynamodb_query
    resources = concat([var.state_table_arn], local.table_index_arns)
  }

  statement {
    sid       = "ScanCatalog"
    effect    = "Allow"
    actions   = local.producer_actions.catalog_scan
    resources = [var.catalog_table_arn]
  }

  statement {
    sid       = "Ec2Discovery"
    effect    = "Allow"
    actions   = local.producer_actions.ec2_discovery
    resources = ["*"] # EC2 Describe* actions have no resource-level permissions.
  }

  statement {
    sid       = "RdsDiscovery"
    effect    = "Allow"
    actions   = local.producer_actions.rds_discovery
    resources = [local.rds_instances, local.rds_clusters]
  }

  statement {
    sid       = "S3ListBuckets"
    effect    = "Allow"
    actions   = local.producer_actions.s3_list_buckets
    resources = ["*"] # ListAllMyBuckets has no resource-level permissions.
  }

  statement {
    sid       = "S3Discovery"
    effect    = "Allow"
    actions   = local.producer_actions.s3_discovery
    resources = ["arn:${local.partition}:s3:::*"]
  }

  statement {
    sid       = "QueueEncryption"
    effect    = "Allow"
    actions   = local.producer_actions.kms
    resources = [var.kms_key_arn]
  }

  dynamic "statement" {
    for_each = length(var.member_role_arns) > 0 ? [1] : []
    content {
      sid       = "AssumeMemberRoles"
      effect    = "Allow"
      actions   = local.producer_actions.sts_assume_member_roles
      resources = var.member_role_arns
    }
  }
}

resource "aws_iam_role_policy" "producer" {
  name   = "producer"
  role   = aws_iam_role.producer.id
  policy = data.aws_iam_policy_document.producer.json
}

resource "aws_iam_role_policy" "producer_telemetry" {
  name   = "telemetry"
  role   = aws_iam_role.producer.id
  policy = data.aws_iam_policy_document.telemetry.json
}

###############################################################################################
# Operator role (people running `backupctl`)
###############################################################################################

data "aws_iam_policy_document" "operator_assume" {
  statement {
    effect  = "Allow"
    actions = ["sts:AssumeRole"]

    principals {
      type        = "AWS"
      identifiers = local.operator_principals
    }
  }
}

resource "aws_iam_role" "operator" {
  name                 = "${var.name}-operator"
  description          = "backup-fleet operators: backupctl status, tasks, catalog, dlq, canary."
  assume_role_policy   = data.aws_iam_policy_document.operator_assume.json
  permissions_boundary = var.permissions_boundary_arn

  tags = var.tags
}

data "aws_iam_policy_document" "operator" {
  statement {
    sid       = "InspectQueues"
    effect    = "Allow"
    actions   = local.operator_actions.sqs_read
    resources = local.fleet_queue_arns
  }

  statement {
    sid       = "SendToSourceQueues"
    effect    = "Allow"
    actions   = local.operator_actions.sqs_send
    resources = local.source_queue_arns
  }

  statement {
    sid       = "DeleteReplayedDeadLetters"
    effect    = "Allow"
    actions   = local.operator_actions.sqs_delete
    resources = local.dlq_arns
  }

  statement {
    sid       = "ReadTables"
    effect    = "Allow"
    actions   = local.operator_actions.dynamodb_read
    resources = concat(local.table_arns, local.table_index_arns)
  }

  statement {
    sid       = "ScanCatalog"
    effect    = "Allow"
    actions   = local.operator_actions.dynamodb_scan
    resources = [var.catalog_table_arn]
  }

  statement {
    sid       = "ReopenTasksForReplay"
    effect    = "Allow"
    actions   = local.operator_actions.dynamodb_reopen
    resources = [var.state_table_arn]
  }

  statement {
    sid       = "QueueAndTableEncryption"
    effect    = "Allow"
    actions   = local.operator_actions.kms
    resources = [var.kms_key_arn]

    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["sqs.${local.region}.amazonaws.com", "dynamodb.${local.region}.amazonaws.com"]
    }
  }

  # Describe and List calls authorize on "*" (EC2, RDS instances and clusters of every region,
  # every bucket's location and tags): reading what exists, never its data.
  statement {
    sid       = "CoverageDiscovery"
    effect    = "Allow"
    actions   = local.operator_actions.discovery_read
    resources = ["*"]
  }

  # `backupctl restore --from-account`: roles in other accounts, by ARN and only those.
  dynamic "statement" {
    for_each = length(var.member_role_arns) > 0 ? [1] : []
    content {
      sid       = "AssumeMemberRoles"
      effect    = "Allow"
      actions   = local.operator_actions.sts_assume_member_roles
      resources = var.member_role_arns
    }
  }

  dynamic "statement" {
    for_each = length(var.backup_account_role_arns) > 0 ? [1] : []
    content {
      sid       = "AssumeBackupAccountRoles"
      effect    = "Allow"
      actions   = local.operator_actions.sts_assume_backup_account_roles
      resources = var.backup_account_role_arns
    }
  }
}

resource "aws_iam_role_policy" "operator" {
  name   = "operator"
  role   = aws_iam_role.operator.id
  policy = data.aws_iam_policy_document.operator.json
}
