# The whole fleet: KMS -> queues, tables, bucket -> events (rules, bus, alerts) -> IAM -> ECS
# services -> alarms and dashboard.

locals {
  tags = merge({
    Project     = "backup-fleet"
    Environment = var.environment
    ManagedBy   = "terraform"
  }, var.tags)

  # `backup-producer rules --json > rules.json` prints exactly this list.
  rules = jsondecode(file("${path.module}/${var.rules_file}"))

  # The backup policy, inline as BACKUP_POLICY.
  policy_toml = file("${path.module}/${var.policy_file}")

  worker_runtime = merge(var.worker_runtime, {
    visibility_timeout_seconds = var.task_visibility_timeout_seconds
  })
}

module "kms" {
  source = "../../modules/kms"

  alias                  = "${var.name}-data"
  key_administrator_arns = var.key_administrator_arns
  tags                   = local.tags
}

module "kms_dr" {
  source = "../../modules/kms"
  count  = var.replication_enabled ? 1 : 0

  providers = {
    aws = aws.replica
  }

  alias                   = "${var.name}-dr"
  description             = "backup-fleet DR replica bucket key"
  key_administrator_arns  = var.key_administrator_arns
  allow_eventbridge       = false
  allow_cloudwatch_alarms = false
  allow_cloudwatch_logs   = false
  tags                    = local.tags
}

module "queues" {
  source = "../../modules/queues"

  name        = var.name
  kms_key_arn = module.kms.key_arn

  task_visibility_timeout_seconds   = var.task_visibility_timeout_seconds
  task_max_receive_count            = var.task_max_receive_count
  task_message_retention_seconds    = var.task_message_retention_seconds
  receive_wait_time_seconds         = var.receive_wait_time_seconds
  events_visibility_timeout_seconds = var.events_visibility_timeout_seconds
  events_max_receive_count          = var.events_max_receive_count
  events_message_retention_seconds  = var.events_message_retention_seconds
  dlq_message_retention_seconds     = var.dlq_message_retention_seconds
  worker_heartbeat_seconds          = local.worker_runtime.heartbeat_seconds

  tags = local.tags
}

module "state" {
  source = "../../modules/state"

  name        = var.name
  kms_key_arn = module.kms.key_arn
  tags        = local.tags
}

module "backup_bucket" {
  source = "../../modules/backup-bucket"

  providers = {
    aws         = aws
    aws.replica = aws.replica
  }

  bucket_name                        = var.backup_bucket_name
  kms_key_arn                        = module.kms.key_arn
  object_lock_mode                   = var.object_lock_mode
  object_lock_days                   = var.object_lock_days
  tier_transitions                   = var.tier_transitions
  replica_transitions                = var.replica_transitions
  noncurrent_version_expiration_days = var.noncurrent_version_expiration_days
  replication_enabled                = var.replication_enabled
  replica_kms_key_arn                = var.replication_enabled ? module.kms_dr[0].key_arn : null

  tags = local.tags
}

module "events" {
  source = "../../modules/events"

  name                                  = var.name
  rules                                 = local.rules
  events_queue_arn                      = module.queues.events_queue_arn
  events_queue_url                      = module.queues.events_queue_url
  events_dlq_arn                        = module.queues.events_dlq_arn
  events_dlq_url                        = module.queues.events_dlq_url
  eventbridge_notification_bucket_names = var.eventbridge_notification_bucket_names
  kms_key_arn                           = module.kms.key_arn
  alert_email_addresses                 = var.alert_email_addresses

  tags = local.tags
}

module "iam" {
  source = "../../modules/iam"

  name                    = var.name
  task_queue_arn          = module.queues.task_queue_arn
  task_dlq_arn            = module.queues.task_dlq_arn
  events_queue_arn        = module.queues.events_queue_arn
  events_dlq_arn          = module.queues.events_dlq_arn
  state_table_arn         = module.state.state_table_arn
  catalog_table_arn       = module.state.catalog_table_arn
  backup_bucket_arn       = module.backup_bucket.bucket_arn
  source_bucket_arns      = var.source_bucket_arns
  kms_key_arn             = module.kms.key_arn
  additional_kms_key_arns = concat(var.source_kms_key_arns, var.replication_enabled ? [module.kms_dr[0].key_arn] : [])
  event_bus_arn           = module.events.event_bus_arn
  operator_principal_arns = var.operator_principal_arns
  log_group_arns          = module.fleet.log_group_arns
  metrics_log_group_arn   = module.fleet.metrics_log_group_arn
  ecr_repository_arns     = var.ecr_repository_arns

  database_secret_arns         = var.database_secret_arns
  database_secret_kms_key_arns = var.database_secret_kms_key_arns
  rds_export_prefix            = var.rds_export_prefix
  rds_export_kms_key_arns      = var.rds_export_kms_key_arns

  member_role_arns           = var.member_role_arns
  backup_account_role_arns   = var.backup_account_role_arns
  backup_account_bucket_arns = var.backup_account_bucket_arns

  s3_inventory_bucket_arns = var.s3_inventory_bucket_arns

  tags = local.tags
}

module "fleet" {
  source = "../../modules/fleet"

  name               = var.name
  image              = var.image
  producer_image     = var.producer_image
  subnet_ids         = var.subnet_ids
  security_group_ids = var.security_group_ids
  execution_role_arn = module.iam.execution_role_arn
  producer_role_arn  = module.iam.producer_role_arn
  worker_role_arn    = module.iam.worker_role_arn
  kms_key_arn        = module.kms.key_arn

  task_queue_url     = module.queues.task_queue_url
  task_queue_name    = module.queues.task_queue_name
  task_dlq_url       = module.queues.task_dlq_url
  events_queue_url   = module.queues.events_queue_url
  events_dlq_url     = module.queues.events_dlq_url
  state_table_name   = module.state.state_table_name
  catalog_table_name = module.state.catalog_table_name
  event_bus_name     = module.events.event_bus_name
  policy_toml        = local.policy_toml
  worker_runtime     = local.worker_runtime

  pg_sslmode               = var.pg_sslmode
  dump_part_mib            = var.dump_part_mib
  worker_extra_environment = var.worker_extra_environment

  otel_resource_attributes = { "deployment.environment" = var.environment }

  worker_min_capacity            = var.worker_min_capacity
  worker_max_capacity            = var.worker_max_capacity
  worker_target_backlog_per_task = var.worker_target_backlog_per_task
  worker_on_demand_base          = var.worker_on_demand_base
  worker_on_demand_weight        = var.worker_on_demand_weight
  worker_spot_weight             = var.worker_spot_weight

  coverage_interval_seconds = var.coverage_interval_seconds

  tags = local.tags
}

module "monitoring" {
  source = "../../modules/monitoring"

  name                  = var.name
  alarm_topic_arn       = module.events.alerts_topic_arn
  task_queue_name       = module.queues.task_queue_name
  task_dlq_name         = module.queues.task_dlq_name
  events_queue_name     = module.queues.events_queue_name
  events_dlq_name       = module.queues.events_dlq_name
  cluster_name          = module.fleet.cluster_name
  producer_service_name = module.fleet.producer_service_name
  worker_service_name   = module.fleet.worker_service_name
  metrics_namespace     = module.fleet.metrics_namespace

  # From the fleet module, so that the coverage alarms follow the producer's interval (and are
  # not created when coverage is off).
  coverage_interval_seconds     = module.fleet.coverage_interval_seconds
  coverage_alarm_on_unprotected = var.coverage_alarm_on_unprotected

  tags = local.tags
}
