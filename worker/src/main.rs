//! `backup-worker`: parse settings, build AWS clients, install the shutdown signal, run.

use anyhow::Context;
use backup_aws::accounts::AssumedRoles;
use backup_aws::catalog::DynamoCatalog;
use backup_aws::dynamo::{DynamoTaskStore, TASK_RETENTION};
use backup_aws::ec2::Ec2BlockStorage;
use backup_aws::eventbridge::EventBridgePublisher;
use backup_aws::rds::RdsDatabases;
use backup_aws::s3::S3Objects;
use backup_aws::secrets::SecretsManager;
use backup_aws::sqs::SqsQueue;
use backup_aws::{AwsContext, AwsSettings};
use backup_core::exit;
use backup_core::ports::{Catalog, EventPublisher, GatedSlots, NoEvents, TaskQueue};
use backup_core::ratelimit::RateLimiter;
use backup_logical::Tools;
use backup_telemetry::LogFormat;
use backup_worker::handler::Handlers;
use backup_worker::handlers::logical::LogicalSettings;
use backup_worker::handlers::services::{Services, Timing};
use backup_worker::runtime::{new_owner, RuntimeConfig, Worker};
use backup_worker::stats::Stats;
use backup_worker::WorkerSettings;
use clap::Parser;
use serde_json::json;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

const PROGRAM: &str = "backup-worker";

#[derive(Parser, Debug)]
#[command(name = "backup-worker", version, about = "Runs backup-fleet tasks from the task queue")]
struct Cli {
    #[command(flatten)]
    settings: WorkerSettings,
    /// Log format: json (services) or text.
    #[arg(long, env = "BACKUP_LOG_FORMAT", default_value = "json")]
    log_format: LogFormat,
}

fn main() -> anyhow::Result<()> {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        // Usage errors: one line and exit 2 (help and --version print as clap does).
        Err(err) if err.use_stderr() => exit::fail(PROGRAM, err, exit::USAGE),
        Err(err) => err.exit(),
    };
    if let Err(message) = cli.settings.validate() {
        exit::fail(PROGRAM, format!("invalid settings: {message}"), exit::USAGE);
    }
    let runtime = match cli.settings.runtime_threads {
        1 => tokio::runtime::Builder::new_current_thread().enable_all().build(),
        threads => tokio::runtime::Builder::new_multi_thread().worker_threads(threads).enable_all().build(),
    }
    .context("starting the async runtime")?;
    runtime.block_on(run(cli))
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let settings = cli.settings;
    let aws = match AwsContext::load(&AwsSettings::default()).await {
        Ok(aws) => aws,
        Err(err) => exit::fail(PROGRAM, err, exit::USAGE),
    };
    let telemetry = backup_telemetry::init(PROGRAM, cli.log_format, "info");
    let clients = aws.clients();
    let queue: Arc<dyn TaskQueue> = Arc::new(SqsQueue::new(clients.sqs.clone(), &settings.task_queue_url));
    let dlq: Arc<dyn TaskQueue> = Arc::new(SqsQueue::new(clients.sqs.clone(), &settings.task_dlq_url));
    let redrive = queue.settings().await.context("reading the task queue's redrive policy")?.max_receive_count;
    let max_receive_count = match settings.max_receive_count(redrive) {
        Ok(count) => count,
        Err(message) => exit::fail(PROGRAM, message, exit::USAGE),
    };
    let events: Arc<dyn EventPublisher> = match &settings.event_bus {
        Some(bus) => Arc::new(EventBridgePublisher::new(clients.eventbridge.clone(), bus)),
        None => Arc::new(NoEvents),
    };
    // Without a catalog the worker can only run canaries (a probe-only deployment).
    let handlers = match &settings.catalog_table {
        Some(table) => {
            let limits = RateLimiter::aws_defaults(settings.rate_share);
            let catalog: Arc<dyn Catalog> = Arc::new(DynamoCatalog::new(clients.dynamodb.clone(), table));
            Handlers::with_services(Services {
                block: Arc::new(Ec2BlockStorage::new(aws.clone(), limits.clone())),
                databases: Arc::new(RdsDatabases::new(aws.clone(), limits)),
                objects: Arc::new(S3Objects::new(aws.clone())),
                catalog: catalog.clone(),
                fleet_catalog: catalog,
                accounts: Arc::new(AssumedRoles::new(aws.clone(), settings.rate_share)),
                // One look at a full pool per re-check (5 s at least) answers all of this
                // worker's waiters; a slot given back here reopens the pool at once.
                slots: Arc::new(GatedSlots::new(
                    Arc::new(DynamoTaskStore::new(clients.dynamodb.clone(), &settings.state_table)),
                    Duration::from_secs(settings.recheck_secs.max(5)),
                )),
                secrets: Arc::new(SecretsManager::new(aws.clone())),
                logical: LogicalSettings {
                    tools: Tools::new(settings.pg_bin_dir.clone()),
                    part_size: settings.dump_part_mib * 1024 * 1024,
                    sslmode: settings.pg_sslmode.clone(),
                    check_timeout_secs: settings.check_timeout_secs,
                },
                timing: Timing {
                    recheck: Duration::from_secs(settings.recheck_secs),
                    consistency_window: Duration::from_secs(settings.consistency_window_secs),
                    slot_hold: Duration::from_secs(settings.copy_slot_hold_secs),
                    tier_recheck: Duration::from_secs(settings.tier_recheck_secs),
                    ..Timing::default()
                },
            })
        }
        None => Handlers::canary_only(),
    };
    let config = RuntimeConfig {
        concurrency: settings.concurrency,
        pollers: settings.pollers(),
        receive_wait: Duration::from_secs(settings.receive_wait_secs),
        visibility_timeout: settings.visibility_timeout(),
        lease: settings.lease(),
        heartbeat: settings.heartbeat(),
        drain_deadline: settings.drain_deadline(),
        max_receive_count,
        ack_flush: Duration::from_millis(settings.ack_flush_ms),
        receive_gather: Duration::from_millis(settings.receive_gather_ms),
        exit_when_idle: settings.exit_when_idle.map(Duration::from_secs),
        task_retention: TASK_RETENTION,
        capacity_recheck: Duration::from_secs(settings.recheck_secs),
        capacity_wait_limit: Duration::from_secs(settings.capacity_wait_limit_hours * 3600),
        hold_pending: Duration::from_secs(settings.hold_pending_secs),
    };
    let worker = Arc::new(Worker {
        holds: Default::default(),
        stopping: CancellationToken::new(),
        queue,
        dlq,
        store: Arc::new(DynamoTaskStore::new(clients.dynamodb.clone(), &settings.state_table)),
        events,
        handlers: Arc::new(handlers),
        config,
        owner: new_owner(),
        stats: Arc::new(Stats::default()),
    });

    let shutdown = CancellationToken::new();
    tokio::spawn(signal_shutdown(shutdown.clone()));
    let started = Instant::now();
    tracing::info!(owner = %worker.owner, concurrency = settings.concurrency, max_receive_count, "worker started");
    let counts = worker.clone().run(shutdown).await;

    let calls: serde_json::Map<String, serde_json::Value> = aws
        .calls()
        .snapshot()
        .into_iter()
        .map(|((service, operation), n)| (format!("{service}.{operation}"), json!(n)))
        .collect();
    // The same calls by the task kind they were made for; receives and batched acknowledgements
    // serve every kind and are only in `aws_calls`.
    let calls_by_kind: serde_json::Map<String, serde_json::Value> = aws
        .calls()
        .snapshot_by_purpose()
        .into_iter()
        .map(|(kind, calls)| {
            let calls: serde_json::Map<String, serde_json::Value> = calls
                .into_iter()
                .map(|((service, operation), n)| (format!("{service}.{operation}"), json!(n)))
                .collect();
            (kind.to_owned(), serde_json::Value::Object(calls))
        })
        .collect();
    let summary = json!({
        "owner": worker.owner,
        "uptime_secs": started.elapsed().as_secs_f64(),
        "counts": counts,
        "aws_calls": calls,
        "aws_calls_by_kind": calls_by_kind,
    });
    tracing::info!(summary = %summary, "worker stopped");
    if let Some(path) = &settings.summary_file {
        std::fs::write(path, serde_json::to_vec_pretty(&summary)?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    telemetry.shutdown();
    Ok(())
}

/// SIGTERM (ECS stopping the task) or SIGINT: stop receiving and drain.
async fn signal_shutdown(shutdown: CancellationToken) {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).expect("SIGTERM handler");
    tokio::select! {
        _ = term.recv() => tracing::info!(signal = "SIGTERM", "shutting down"),
        _ = tokio::signal::ctrl_c() => tracing::info!(signal = "SIGINT", "shutting down"),
    }
    shutdown.cancel();
}
