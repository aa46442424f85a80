//! `backupctl bootstrap`: create the fleet's resources and print their settings.

use backup_aws::bootstrap::{bootstrap, BootstrapSettings};
use backup_aws::AwsContext;
use backup_core::exit::UsageError;
use backup_core::outln;
use clap::ValueEnum;

#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// `export BACKUP_...=...` lines for `eval`.
    Env,
    /// One JSON object.
    Json,
}

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Name prefix of every resource (`<prefix>-tasks`, `<prefix>-state`, ...).
    #[arg(long, env = "BACKUP_PREFIX")]
    pub prefix: String,
    /// What to print: `env` (export lines) or `json`.
    #[arg(long, value_enum, default_value = "env")]
    pub format: Format,
    /// Print one JSON object (the same as `--format json`, as every other command takes it).
    #[arg(long, conflicts_with = "format")]
    pub json: bool,
    /// Receives before a task message moves to the task DLQ.
    #[arg(long, default_value_t = 10)]
    pub max_receive_count: u32,
    /// Visibility timeout of the task queue, seconds (at least twice the worker heartbeat).
    #[arg(long, default_value_t = 60)]
    pub visibility_timeout_secs: u32,
    /// Print what would be created and with which settings (JSON); create nothing.
    #[arg(long)]
    pub dry_run: bool,
}

pub async fn run(aws: &AwsContext, args: Args) -> anyhow::Result<i32> {
    if !args.prefix.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') || args.prefix.is_empty() {
        return Err(UsageError::new(format!(
            "--prefix {:?}: only letters, digits, '-' and '_' are allowed, and it must not be empty",
            args.prefix
        ))
        .into());
    }
    let mut settings = BootstrapSettings::new(&args.prefix);
    settings.task_max_receive_count = args.max_receive_count;
    settings.task_visibility_timeout_secs = args.visibility_timeout_secs;
    if args.dry_run {
        let p = &args.prefix;
        outln!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "queues": {
                    "tasks": { "name": format!("{p}-tasks"), "visibility_timeout_secs": settings.task_visibility_timeout_secs, "max_receive_count": settings.task_max_receive_count, "retention_secs": settings.retention_secs, "receive_wait_secs": settings.receive_wait_secs },
                    "tasks_dlq": { "name": format!("{p}-tasks-dlq"), "retention_secs": settings.dlq_retention_secs },
                    "events": { "name": format!("{p}-events"), "visibility_timeout_secs": settings.event_visibility_timeout_secs, "max_receive_count": settings.event_max_receive_count, "retention_secs": settings.retention_secs, "receive_wait_secs": settings.receive_wait_secs },
                    "events_dlq": { "name": format!("{p}-events-dlq"), "retention_secs": settings.dlq_retention_secs },
                },
                "tables": {
                    "state": { "name": format!("{p}-state"), "hash_key": "pk", "range_key": "sk", "indexes": { "by_run": ["run_id", "sk"] } },
                    "catalog": { "name": format!("{p}-catalog"), "hash_key": "pk", "indexes": { "by_resource": ["resource", "created_at"], "by_expiry": ["expiry_bucket", "expires_at"] } },
                },
                "ttl_attribute": backup_aws::dynamo::TTL_ATTRIBUTE,
                "event_bus": format!("{p}-bus"),
                "env": backup_aws::bootstrap::ENV_VARS,
            }))?
        )?;
        return Ok(0);
    }
    eprintln!(
        "bootstrapping fleet {:?} in {}{}",
        args.prefix,
        aws.region(),
        aws.endpoint_url().map(|e| format!(" at {e}")).unwrap_or_default()
    );
    let resources = bootstrap(aws, &settings).await?;
    let format = if args.json { Format::Json } else { args.format };
    match format {
        Format::Json => {
            let mut value = serde_json::to_value(&resources)?;
            value["region"] = serde_json::json!(aws.region());
            value["max_receive_count"] = serde_json::json!(settings.task_max_receive_count);
            outln!("{}", serde_json::to_string_pretty(&value)?)?;
        }
        Format::Env => {
            for (name, value) in resources.env() {
                outln!("export {name}={}", shell_quote(value))?;
            }
        }
    }
    Ok(0)
}

fn shell_quote(value: &str) -> String {
    if value.chars().all(|c| c.is_ascii_alphanumeric() || "-_./:@".contains(c)) {
        value.to_owned()
    } else {
        format!("'{}'", value.replace('\'', r"'\''"))
    }
}
