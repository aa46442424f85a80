data "aws_region" "current" {}

locals {
  region = data.aws_region.current.name

  log_groups = {
    producer = "/ecs/${var.name}/producer"
    worker   = "/ecs/${var.name}/worker"
    adot     = "/ecs/${var.name}/adot"
  }
  metrics_log_group = "/aws/ecs/${var.name}/metrics"

  otlp_endpoint = "http://localhost:4318"

  # The fleet's configuration, identical for both services (every binary reads the same set).
  common_environment = merge(
    {
      AWS_REGION                  = local.region
      BACKUP_TASK_QUEUE_URL       = var.task_queue_url
      BACKUP_TASK_DLQ_URL         = var.task_dlq_url
      BACKUP_EVENT_QUEUE_URL      = var.events_queue_url
      BACKUP_EVENT_DLQ_URL        = var.events_dlq_url
      BACKUP_STATE_TABLE          = var.state_table_name
      BACKUP_CATALOG_TABLE        = var.catalog_table_name
      BACKUP_EVENT_BUS            = var.event_bus_name
      BACKUP_LOG_FORMAT           = var.log_format
      OTEL_EXPORTER_OTLP_ENDPOINT = local.otlp_endpoint
      # Delta temporality: each export carries only what happened in its interval, so the ADOT
      # awsemf exporter passes counters and histograms through unchanged (with the default
      # cumulative temporality it drops the first value of every counter series, and sends
      # histogram count/sum/min/max accumulated since the process started). The monitoring
      # module's alarms rely on this (scripts/check_metrics.py checks it is set).
      OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE = "delta"
    },
    var.policy_toml != null ? { BACKUP_POLICY = var.policy_toml } : {},
    var.policy_file != null ? { BACKUP_POLICY_FILE = var.policy_file } : {},
  )

  worker_environment = merge(local.common_environment, {
    BACKUP_CONCURRENCY             = tostring(var.worker_runtime.concurrency)
    BACKUP_VISIBILITY_TIMEOUT_SECS = tostring(var.worker_runtime.visibility_timeout_seconds)
    BACKUP_LEASE_SECS              = tostring(var.worker_runtime.lease_seconds)
    BACKUP_HEARTBEAT_SECS          = tostring(var.worker_runtime.heartbeat_seconds)
    BACKUP_DRAIN_DEADLINE_SECS     = tostring(var.worker_runtime.drain_deadline_seconds)
    BACKUP_RUNTIME_THREADS         = tostring(var.worker_runtime.runtime_threads)
    # Logical PostgreSQL backups and drills: libpq sslmode, and the upload part size of a dump.
    BACKUP_PG_SSLMODE        = var.pg_sslmode
    BACKUP_DUMP_PART_MIB     = tostring(var.dump_part_mib)
    OTEL_SERVICE_NAME        = "backup-worker"
    OTEL_RESOURCE_ATTRIBUTES = join(",", [for k, v in merge(var.otel_resource_attributes, { "service.namespace" = var.name }) : "${k}=${v}"])
  }, var.worker_extra_environment)

  producer_environment = merge(local.common_environment, {
    # Seconds between coverage passes (every resource in the plans' regions discovered and
    # classified, `coverage_resources` published); 0 turns them off. The monitoring module's
    # coverage alarms are sized from the same value (output coverage_interval_seconds).
    BACKUP_COVERAGE_INTERVAL_SECS = tostring(var.coverage_interval_seconds)
    OTEL_SERVICE_NAME             = "backup-producer"
    OTEL_RESOURCE_ATTRIBUTES      = join(",", [for k, v in merge(var.otel_resource_attributes, { "service.namespace" = var.name }) : "${k}=${v}"])
  }, var.producer_extra_environment)

  # The fleet's metrics as they land in CloudWatch, in namespace var.metrics_namespace: metric
  # name = OpenTelemetry instrument name (telemetry/src/metrics.rs), and exactly these dimension
  # sets (lists of attribute names; [] is the dimensionless series, summed over every attribute
  # value). Instruments not listed here are dropped by the collector. The monitoring module's alarms and dashboard may read only
  # these series: scripts/check_metrics.py checks name, dimensions and statistic against this
  # table and against the instruments and attributes in the code.
  #
  # With OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE=delta (common_environment), a counter
  # becomes one data point per export interval (60 s) per task and series *in which it changed*,
  # whose value is the increment: read it with the Sum statistic. Intervals without events
  # publish nothing (no zeros), which each alarm's treat_missing_data accounts for. A histogram
  # becomes a statistic set per interval (SampleCount, Sum, Minimum, Maximum; Average = Sum /
  # SampleCount); it carries no buckets, so percentiles are not available.
  #
  # A gauge (coverage_resources) exports, with delta temporality, only the values recorded since
  # the last export: one data point per series per coverage pass (every status x resource_type,
  # zeros included), nothing in between. Each point lands in both of its dimension sets, so a
  # [status] series gets one sample per resource type and pass: its Maximum is the largest count
  # of one type (> 0 exactly when some resource has that status), its Sum adds types *and* passes.
  # The alarms read [status] with Maximum; the dashboard sums [status, resource_type] for totals.
  emf_metric_dimensions = {
    tasks_total                 = [["outcome"], ["kind", "outcome"]]
    task_duration_seconds       = [[], ["kind"]]
    queue_lag_seconds           = [[], ["kind"]]
    lease_takeovers_total       = [[]]
    stale_receipt_handles_total = [[]]
    dlq_moves_total             = [[], ["reason_code"]]
    aws_calls_total             = [[], ["service"]]
    aws_throttled_total         = [[], ["service"], ["service", "operation"]]
    coverage_resources          = [["status"], ["status", "resource_type"]]
  }

  # ADOT collector: OTLP in on localhost only; traces -> X-Ray, metrics -> CloudWatch EMF.
  # awsemf with metric_declarations and NoDimensionRollup publishes exactly the dimension sets of
  # local.emf_metric_dimensions (the default rollup would add an `OTelLib` dimension set per
  # attribute, series nothing reads). Resource attributes do not become dimensions
  # (resource_to_telemetry_conversion is off), so the series of all tasks of both services
  # aggregate in CloudWatch.
  adot_config = yamlencode({
    extensions = {
      health_check = {}
    }
    receivers = {
      otlp = {
        protocols = {
          grpc = { endpoint = "127.0.0.1:4317" }
          http = { endpoint = "127.0.0.1:4318" }
        }
      }
    }
    processors = {
      "batch/traces"  = { timeout = "1s", send_batch_size = 50 }
      "batch/metrics" = { timeout = "60s" }
      resourcedetection = {
        detectors = ["env", "ecs"]
        timeout   = "2s"
        override  = false
      }
    }
    exporters = {
      awsxray = {
        region = local.region
      }
      awsemf = {
        region                  = local.region
        namespace               = var.metrics_namespace
        log_group_name          = local.metrics_log_group
        log_stream_name         = "{TaskId}"
        dimension_rollup_option = "NoDimensionRollup"
        metric_declarations = [
          for metric, dimension_sets in local.emf_metric_dimensions : {
            dimensions            = dimension_sets
            metric_name_selectors = ["^${metric}$"]
          }
        ]
      }
    }
    service = {
      extensions = ["health_check"]
      pipelines = {
        traces = {
          receivers  = ["otlp"]
          processors = ["resourcedetection", "batch/traces"]
          exporters  = ["awsxray"]
        }
        metrics = {
          receivers  = ["otlp"]
          processors = ["resourcedetection", "batch/metrics"]
          exporters  = ["awsemf"]
        }
      }
    }
  })

  adot_container = {
    name                   = "adot-collector"
    image                  = var.adot_image
    essential              = false
    readonlyRootFilesystem = true
    cpu                    = 64
    memoryReservation      = 128
    environment = [
      { name = "AOT_CONFIG_CONTENT", value = local.adot_config },
    ]
    healthCheck = {
      command     = ["/healthcheck"]
      interval    = 30
      timeout     = 5
      retries     = 3
      startPeriod = 10
    }
    logConfiguration = {
      logDriver = "awslogs"
      options = {
        awslogs-group         = aws_cloudwatch_log_group.this["adot"].name
        awslogs-region        = local.region
        awslogs-stream-prefix = "adot"
        mode                  = "non-blocking"
        max-buffer-size       = "4m"
      }
    }
  }

  app_container_defaults = {
    essential              = true
    readonlyRootFilesystem = true
    user                   = "65532:65532"
    linuxParameters = {
      initProcessEnabled = true
    }
    # The root filesystem is read-only; /tmp is task storage.
    mountPoints = [
      { sourceVolume = "tmp", containerPath = "/tmp", readOnly = false },
    ]
    dependsOn = [
      { containerName = "adot-collector", condition = "START" },
    ]
  }
}

###############################################################################################
# Cluster and logs
###############################################################################################

resource "aws_ecs_cluster" "this" {
  name = var.name

  # Needed: the worker autoscaling reads ECS/ContainerInsights RunningTaskCount.
  setting {
    name  = "containerInsights"
    value = "enabled"
  }

  tags = var.tags
}

resource "aws_ecs_cluster_capacity_providers" "this" {
  cluster_name       = aws_ecs_cluster.this.name
  capacity_providers = ["FARGATE", "FARGATE_SPOT"]

  default_capacity_provider_strategy {
    capacity_provider = "FARGATE"
    weight            = 1
  }
}

resource "aws_cloudwatch_log_group" "this" {
  for_each = local.log_groups

  name              = each.value
  retention_in_days = var.log_retention_days
  kms_key_id        = var.kms_key_arn

  tags = var.tags
}

resource "aws_cloudwatch_log_group" "metrics" {
  name              = local.metrics_log_group
  retention_in_days = var.log_retention_days
  kms_key_id        = var.kms_key_arn

  tags = var.tags
}

###############################################################################################
# Producer
###############################################################################################

resource "aws_ecs_task_definition" "producer" {
  family                   = "${var.name}-producer"
  requires_compatibilities = ["FARGATE"]
  network_mode             = "awsvpc"
  cpu                      = var.producer_cpu
  memory                   = var.producer_memory
  execution_role_arn       = var.execution_role_arn
  task_role_arn            = var.producer_role_arn

  volume {
    name = "tmp"
  }

  runtime_platform {
    operating_system_family = "LINUX"
    cpu_architecture        = "ARM64"
  }

  container_definitions = jsonencode([
    merge(local.app_container_defaults, {
      name        = "producer"
      image       = coalesce(var.producer_image, var.image)
      entryPoint  = ["/usr/local/bin/backup-producer"]
      command     = var.producer_command
      stopTimeout = var.producer_stop_timeout_seconds
      environment = [for k in sort(keys(local.producer_environment)) : { name = k, value = local.producer_environment[k] }]
      logConfiguration = {
        logDriver = "awslogs"
        options = {
          awslogs-group         = aws_cloudwatch_log_group.this["producer"].name
          awslogs-region        = local.region
          awslogs-stream-prefix = "producer"
          mode                  = "non-blocking"
          max-buffer-size       = "25m"
        }
      }
    }),
    local.adot_container,
  ])

  tags = var.tags

  lifecycle {
    precondition {
      condition     = (var.policy_toml == null) != (var.policy_file == null)
      error_message = "Set exactly one of policy_toml (BACKUP_POLICY) or policy_file (BACKUP_POLICY_FILE)."
    }
  }
}

resource "aws_ecs_service" "producer" {
  name            = "${var.name}-producer"
  cluster         = aws_ecs_cluster.this.id
  task_definition = aws_ecs_task_definition.producer.arn
  desired_count   = 1
  # The single producer stays on on-demand Fargate: an interruption would pause ingestion.
  launch_type                        = "FARGATE"
  platform_version                   = "LATEST"
  deployment_minimum_healthy_percent = var.producer_deployment_minimum_healthy_percent
  deployment_maximum_percent         = var.producer_deployment_maximum_percent
  enable_ecs_managed_tags            = true
  propagate_tags                     = "SERVICE"
  enable_execute_command             = false
  wait_for_steady_state              = var.wait_for_steady_state

  network_configuration {
    subnets          = var.subnet_ids
    security_groups  = var.security_group_ids
    assign_public_ip = false
  }

  deployment_circuit_breaker {
    enable   = true
    rollback = true
  }

  tags = var.tags
}

###############################################################################################
# Worker
###############################################################################################

resource "aws_ecs_task_definition" "worker" {
  family                   = "${var.name}-worker"
  requires_compatibilities = ["FARGATE"]
  network_mode             = "awsvpc"
  cpu                      = var.worker_cpu
  memory                   = var.worker_memory
  execution_role_arn       = var.execution_role_arn
  task_role_arn            = var.worker_role_arn

  volume {
    name = "tmp"
  }

  runtime_platform {
    operating_system_family = "LINUX"
    cpu_architecture        = "ARM64"
  }

  container_definitions = jsonencode([
    merge(local.app_container_defaults, {
      name       = "worker"
      image      = var.image
      entryPoint = ["/usr/local/bin/backup-worker"]
      command    = var.worker_command
      # SIGTERM starts the drain; ECS sends SIGKILL stopTimeout seconds later, so it must
      # exceed the drain deadline (checked in var.worker_runtime).
      stopTimeout = var.worker_runtime.stop_timeout_seconds
      environment = [for k in sort(keys(local.worker_environment)) : { name = k, value = local.worker_environment[k] }]
      logConfiguration = {
        logDriver = "awslogs"
        options = {
          awslogs-group         = aws_cloudwatch_log_group.this["worker"].name
          awslogs-region        = local.region
          awslogs-stream-prefix = "worker"
          mode                  = "non-blocking"
          max-buffer-size       = "25m"
        }
      }
    }),
    local.adot_container,
  ])

  tags = var.tags
}

resource "aws_ecs_service" "worker" {
  name            = "${var.name}-worker"
  cluster         = aws_ecs_cluster.this.id
  task_definition = aws_ecs_task_definition.worker.arn
  desired_count   = var.worker_min_capacity
  # Workers run on Fargate Spot above an on-demand base (no launch_type: it and a capacity
  # provider strategy are mutually exclusive). Spot interruptions are ordinary stops: ECS sends
  # SIGTERM (two minutes before the capacity is reclaimed), the worker drains within
  # worker_runtime.drain_deadline_seconds and ECS sends SIGKILL after stopTimeout, both well
  # inside the two minutes. Work that is cut off is handed back or taken over after its lease.
  # FARGATE_SPOT runs linux/ARM64 tasks on platform version 1.4.0 (LATEST).
  capacity_provider_strategy {
    capacity_provider = "FARGATE"
    base              = var.worker_on_demand_base
    weight            = var.worker_on_demand_weight
  }
  capacity_provider_strategy {
    capacity_provider = "FARGATE_SPOT"
    weight            = var.worker_spot_weight
  }
  platform_version                   = "LATEST"
  deployment_minimum_healthy_percent = var.worker_deployment_minimum_healthy_percent
  deployment_maximum_percent         = var.worker_deployment_maximum_percent
  enable_ecs_managed_tags            = true
  propagate_tags                     = "SERVICE"
  enable_execute_command             = false
  wait_for_steady_state              = var.wait_for_steady_state

  network_configuration {
    subnets          = var.subnet_ids
    security_groups  = var.security_group_ids
    assign_public_ip = false
  }

  deployment_circuit_breaker {
    enable   = true
    rollback = true
  }

  tags = var.tags

  # A capacity provider strategy may only name providers associated with the cluster.
  depends_on = [aws_ecs_cluster_capacity_providers.this]

  lifecycle {
    # Autoscaling owns the running count after creation.
    ignore_changes = [desired_count]

    precondition {
      condition     = var.worker_spot_weight + var.worker_on_demand_weight > 0
      error_message = "worker_spot_weight and worker_on_demand_weight cannot both be 0 (ECS could place no worker above worker_on_demand_base)."
    }
  }
}

###############################################################################################
# Worker autoscaling: target tracking on backlog per task
#   backlog per task = ApproximateNumberOfMessagesVisible(task queue) / RunningTaskCount(worker)
###############################################################################################

resource "aws_appautoscaling_target" "worker" {
  service_namespace  = "ecs"
  resource_id        = "service/${aws_ecs_cluster.this.name}/${aws_ecs_service.worker.name}"
  scalable_dimension = "ecs:service:DesiredCount"
  min_capacity       = var.worker_min_capacity
  max_capacity       = var.worker_max_capacity

  lifecycle {
    precondition {
      condition     = var.worker_max_capacity >= var.worker_min_capacity
      error_message = "worker_max_capacity must be >= worker_min_capacity."
    }
  }
}

resource "aws_appautoscaling_policy" "worker_backlog" {
  name               = "${var.name}-worker-backlog-per-task"
  policy_type        = "TargetTrackingScaling"
  service_namespace  = aws_appautoscaling_target.worker.service_namespace
  resource_id        = aws_appautoscaling_target.worker.resource_id
  scalable_dimension = aws_appautoscaling_target.worker.scalable_dimension

  target_tracking_scaling_policy_configuration {
    target_value       = var.worker_target_backlog_per_task
    scale_in_cooldown  = var.worker_scale_in_cooldown_seconds
    scale_out_cooldown = var.worker_scale_out_cooldown_seconds

    customized_metric_specification {
      metrics {
        id          = "visible"
        label       = "Task queue: visible messages"
        return_data = false

        metric_stat {
          stat = "Average"

          metric {
            namespace   = "AWS/SQS"
            metric_name = "ApproximateNumberOfMessagesVisible"

            dimensions {
              name  = "QueueName"
              value = var.task_queue_name
            }
          }
        }
      }

      metrics {
        id          = "running"
        label       = "Worker: running tasks"
        return_data = false

        metric_stat {
          stat = "Average"

          metric {
            namespace   = "ECS/ContainerInsights"
            metric_name = "RunningTaskCount"

            dimensions {
              name  = "ClusterName"
              value = aws_ecs_cluster.this.name
            }

            dimensions {
              name  = "ServiceName"
              value = aws_ecs_service.worker.name
            }
          }
        }
      }

      metrics {
        id          = "backlog_per_task"
        label       = "Backlog per worker task"
        expression  = "visible / running"
        return_data = true
      }
    }
  }
}
