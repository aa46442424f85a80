//! Command-line surface of `backupctl` and the dispatch to each command.

use backup_aws::{AwsContext, AwsSettings};
use clap::{Parser, Subcommand};

pub mod bootstrap;

#[derive(Parser, Debug)]
#[command(name = "backupctl", version, about = "Operate a backup-fleet deployment")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Create (idempotently) the fleet's queues, DLQs, tables and event bus where the AWS
    /// configuration points, and print the BACKUP_* settings for the binaries.
    Bootstrap(bootstrap::Args),
}

/// Runs a command; the returned code is the process exit status.
pub async fn run(cli: Cli) -> anyhow::Result<i32> {
    let aws = AwsContext::load(&AwsSettings::default()).await;
    match cli.command {
        Command::Bootstrap(args) => bootstrap::run(&aws, args).await,
    }
}
