//! Command-line surface of `backupctl` and the dispatch to each command.

use backup_aws::catalog::DynamoCatalog;
use backup_aws::dynamo::DynamoTaskStore;
use backup_aws::sqs::SqsQueue;
use backup_aws::{AwsContext, AwsSettings};
use backup_core::ports::{Catalog, TaskQueue, TaskStore};
use clap::{Args, Parser, Subcommand};
use std::sync::Arc;

pub mod bootstrap;
pub mod canary;
pub mod catalog;
pub mod coverage_html;
pub mod dlq;
pub mod report;
pub mod restore;
pub mod status;
pub mod tasks;

#[derive(Parser, Debug)]
#[command(name = "backupctl", version, about = "Operate a backup-fleet deployment")]
pub struct Cli {
    /// AWS region (default: AWS_REGION, then the profile's region).
    #[arg(long, global = true)]
    pub region: Option<String>,
    /// Named profile of the AWS config files (default: AWS_PROFILE, then `default`).
    #[arg(long, global = true)]
    pub profile: Option<String>,
    #[command(flatten)]
    pub fleet: FleetArgs,
    #[command(subcommand)]
    pub command: Command,
}

/// Where the fleet lives; `backupctl bootstrap --format env` prints these variables.
#[derive(Args, Debug, Clone, Default)]
pub struct FleetArgs {
    #[arg(long, env = "BACKUP_TASK_QUEUE_URL", global = true, hide_env_values = true)]
    pub task_queue_url: Option<String>,
    #[arg(long, env = "BACKUP_TASK_DLQ_URL", global = true, hide_env_values = true)]
    pub task_dlq_url: Option<String>,
    #[arg(long, env = "BACKUP_EVENT_QUEUE_URL", global = true, hide_env_values = true)]
    pub event_queue_url: Option<String>,
    #[arg(long, env = "BACKUP_EVENT_DLQ_URL", global = true, hide_env_values = true)]
    pub event_dlq_url: Option<String>,
    #[arg(long, env = "BACKUP_STATE_TABLE", global = true, hide_env_values = true)]
    pub state_table: Option<String>,
    #[arg(long, env = "BACKUP_CATALOG_TABLE", global = true, hide_env_values = true)]
    pub catalog_table: Option<String>,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Create (idempotently) the fleet's queues, DLQs, tables and event bus where the AWS
    /// configuration points, and print the BACKUP_* settings for the binaries.
    Bootstrap(bootstrap::Args),
    /// Runs and their progress, queue depths and DLQs; --check exits 3 on a problem.
    Status(status::Args),
    /// One task's state.
    Tasks {
        #[command(subcommand)]
        command: tasks::Command,
    },
    /// The catalog of backups.
    Catalog {
        #[command(subcommand)]
        command: catalog::Command,
    },
    /// Inspect and replay dead letters.
    Dlq {
        #[command(subcommand)]
        command: dlq::Command,
    },
    /// Send canary tasks and wait for them: the fleet's end-to-end health check.
    Canary(canary::Args),
    /// Restore a backup as a fleet task (a volume, instance, DB instance or cluster, S3 objects).
    Restore {
        #[command(subcommand)]
        command: restore::Command,
    },
    /// Recovery reports: RPO per resource (exit 3 on a violation), coverage of every resource,
    /// restore drill outcomes, cost.
    Report {
        #[command(subcommand)]
        command: report::Command,
    },
}

/// Exit code of a `--check` that found a problem.
pub const EXIT_CHECK_FAILED: i32 = backup_core::exit::CHECK_FAILED;

/// AWS clients and fleet resources, built on demand so that `bootstrap` needs no settings.
pub struct Fleet {
    pub aws: AwsContext,
    pub args: FleetArgs,
}

impl Fleet {
    fn need<'a>(value: &'a Option<String>, var: &str) -> anyhow::Result<&'a str> {
        value.as_deref().ok_or_else(|| {
            backup_core::exit::UsageError::new(format!("{var} is not set (see `backupctl bootstrap --format env`)"))
                .into()
        })
    }

    pub fn queue(&self, url: &str) -> Arc<dyn TaskQueue> {
        Arc::new(SqsQueue::new(self.aws.clients().sqs, url))
    }

    pub fn task_queue(&self) -> anyhow::Result<Arc<dyn TaskQueue>> {
        Ok(self.queue(Self::need(&self.args.task_queue_url, "BACKUP_TASK_QUEUE_URL")?))
    }

    pub fn task_dlq(&self) -> anyhow::Result<Arc<dyn TaskQueue>> {
        Ok(self.queue(Self::need(&self.args.task_dlq_url, "BACKUP_TASK_DLQ_URL")?))
    }

    pub fn event_queue(&self) -> anyhow::Result<Arc<dyn TaskQueue>> {
        Ok(self.queue(Self::need(&self.args.event_queue_url, "BACKUP_EVENT_QUEUE_URL")?))
    }

    pub fn event_dlq(&self) -> anyhow::Result<Arc<dyn TaskQueue>> {
        Ok(self.queue(Self::need(&self.args.event_dlq_url, "BACKUP_EVENT_DLQ_URL")?))
    }

    pub fn store(&self) -> anyhow::Result<Arc<dyn TaskStore>> {
        let table = Self::need(&self.args.state_table, "BACKUP_STATE_TABLE")?;
        Ok(Arc::new(DynamoTaskStore::new(self.aws.clients().dynamodb, table)))
    }

    pub fn catalog(&self) -> anyhow::Result<Arc<dyn Catalog>> {
        let table = Self::need(&self.args.catalog_table, "BACKUP_CATALOG_TABLE")?;
        Ok(Arc::new(DynamoCatalog::new(self.aws.clients().dynamodb, table)))
    }

    /// What coverage reads: live discovery in every region, the catalog, and (when configured)
    /// the task store.
    pub fn coverage_sources(&self) -> anyhow::Result<backup_core::coverage::Sources> {
        use backup_core::ratelimit::RateLimiter;
        Ok(backup_core::coverage::Sources {
            block: Arc::new(backup_aws::ec2::Ec2BlockStorage::new(self.aws.clone(), RateLimiter::default())),
            databases: Arc::new(backup_aws::rds::RdsDatabases::new(self.aws.clone(), RateLimiter::default())),
            objects: Arc::new(backup_aws::s3::S3Objects::new(self.aws.clone())),
            catalog: self.catalog()?,
            store: self.store().ok(),
            accounts: Arc::new(backup_aws::accounts::AssumedRoles::new(self.aws.clone(), 1.0)),
        })
    }
}

/// Runs a command; the returned code is the process exit status.
pub async fn run(cli: Cli) -> anyhow::Result<i32> {
    let settings = AwsSettings { region: cli.region, profile: cli.profile, ..AwsSettings::default() };
    let aws = AwsContext::load(&settings).await.map_err(|err| backup_core::exit::UsageError::new(err.to_string()))?;
    let fleet = Fleet { aws, args: cli.fleet };
    match cli.command {
        Command::Bootstrap(args) => bootstrap::run(&fleet.aws, args).await,
        Command::Status(args) => status::run(&fleet, args).await,
        Command::Tasks { command } => tasks::run(&fleet, command).await,
        Command::Catalog { command } => catalog::run(&fleet, command).await,
        Command::Dlq { command } => dlq::run(&fleet, command).await,
        Command::Canary(args) => canary::run(&fleet, args).await,
        Command::Restore { command } => restore::run(&fleet, command).await,
        Command::Report { command } => report::run(&fleet, command).await,
    }
}
