//! `backup-producer`: parse settings, build AWS clients, run the command.

use backup_aws::accounts::AssumedRoles;
use backup_aws::catalog::DynamoCatalog;
use backup_aws::dynamo::DynamoTaskStore;
use backup_aws::ec2::Ec2BlockStorage;
use backup_aws::rds::RdsDatabases;
use backup_aws::s3::S3Objects;
use backup_aws::sqs::SqsQueue;
use backup_aws::{AwsContext, AwsSettings};
use backup_core::exit;
use backup_core::ports::{Catalog, TaskQueue, TaskStore};
use backup_core::ratelimit::RateLimiter;
use backup_producer::commands::{run, Cli, Context};
use backup_producer::discovery::Discovery;
use clap::Parser;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

const PROGRAM: &str = "backup-producer";

#[tokio::main]
async fn main() {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        // Usage errors: one line and exit 2 (help and --version print as clap does).
        Err(err) if err.use_stderr() => exit::fail(PROGRAM, err, exit::USAGE),
        Err(err) => err.exit(),
    };
    let aws = match AwsContext::load(&AwsSettings::default()).await {
        Ok(aws) => aws,
        Err(err) => exit::fail(PROGRAM, err, exit::USAGE),
    };
    let telemetry = backup_telemetry::init(PROGRAM, cli.settings.log_format, "info");
    let clients = aws.clients();
    let limits = RateLimiter::aws_defaults(1.0);
    let queue = |url: &Option<String>| {
        url.as_ref().map(|u| Arc::new(SqsQueue::new(clients.sqs.clone(), u)) as Arc<dyn TaskQueue>)
    };
    let settings = cli.settings.clone();
    let cx = Context {
        region: aws.region(),
        discovery: Discovery {
            block: Arc::new(Ec2BlockStorage::new(aws.clone(), limits.clone())),
            databases: Arc::new(RdsDatabases::new(aws.clone(), limits.clone())),
            objects: Arc::new(S3Objects::new(aws.clone())),
        },
        task_queue: queue(&settings.task_queue_url),
        event_queue: queue(&settings.event_queue_url),
        event_dlq: queue(&settings.event_dlq_url),
        store: settings
            .state_table
            .as_ref()
            .map(|t| Arc::new(DynamoTaskStore::new(clients.dynamodb.clone(), t)) as Arc<dyn TaskStore>),
        catalog: settings
            .catalog_table
            .as_ref()
            .map(|t| Arc::new(DynamoCatalog::new(clients.dynamodb.clone(), t)) as Arc<dyn Catalog>),
        accounts: Arc::new(AssumedRoles::new(aws.clone(), 1.0)),
        settings,
    };
    let shutdown = CancellationToken::new();
    let signal = shutdown.clone();
    tokio::spawn(async move {
        let mut term =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).expect("SIGTERM handler");
        tokio::select! {
            _ = term.recv() => {}
            _ = tokio::signal::ctrl_c() => {}
        }
        signal.cancel();
    });
    let code = match run(&cx, cli.command, shutdown).await {
        Ok(code) => code,
        Err(err) => {
            let code = exit::code_for(err.as_ref());
            if code != exit::BROKEN_PIPE {
                eprintln!("{PROGRAM}: error: {err:#}");
            }
            code
        }
    };
    // process::exit skips destructors: flush telemetry first.
    telemetry.shutdown();
    std::process::exit(code);
}
