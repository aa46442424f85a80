//! `backup-producer` commands: `run` expands one plan window, `serve` consumes the events queue,
//! `ingest` expands one event from a file, `rules` prints the EventBridge rules the policy needs.
//! Exit codes: `backup_core::exit` (0 success, 1 failure, 2 bad usage or invalid policy).

use anyhow::Context as _;
use backup_core::accounts::{account_label, AccountCatalog, Accounts};
use backup_core::outln;
use backup_core::policy::{Plan, Policy};
use backup_core::ports::{
    Catalog, OutgoingMessage, RunRecord, TaskQueue, TaskStore, ATTR_FAILED_AT, ATTR_REASON, ATTR_REASON_CODE,
    ATTR_SOURCE_QUEUE,
};
use backup_core::{exit, AwsError};
use backup_schemas::events::{parse_body, ParsedEvent};
use backup_schemas::{AccountRef, ArtifactKind, Envelope, Origin, ResourceType, RunId, Task, TraceContext};
use chrono::{DateTime, Utc};
use clap::{Args, Parser, Subcommand};
use serde::Serialize;
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

use crate::discovery::{Discovery, Resource};
use crate::enqueue::{send, SendReport};
use crate::events::{map_event, Decision, MappedTask};
use crate::expand::{expand, Expansion};
use crate::rules::rules;

#[derive(Parser, Debug)]
#[command(name = "backup-producer", version, about = "Expands backup plans and AWS events into backup-fleet tasks")]
pub struct Cli {
    #[command(flatten)]
    pub settings: Settings,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Args, Debug, Clone)]
pub struct Settings {
    /// Policy file (TOML).
    #[arg(long, env = "BACKUP_POLICY_FILE", global = true)]
    pub policy: Option<std::path::PathBuf>,
    /// Policy text, when no file is given (containers pass it inline).
    #[arg(long, env = "BACKUP_POLICY", hide_env_values = true, global = true)]
    pub policy_text: Option<String>,
    #[arg(long, env = "BACKUP_TASK_QUEUE_URL", global = true)]
    pub task_queue_url: Option<String>,
    #[arg(long, env = "BACKUP_EVENT_QUEUE_URL", global = true)]
    pub event_queue_url: Option<String>,
    #[arg(long, env = "BACKUP_EVENT_DLQ_URL", global = true)]
    pub event_dlq_url: Option<String>,
    #[arg(long, env = "BACKUP_STATE_TABLE", global = true)]
    pub state_table: Option<String>,
    #[arg(long, env = "BACKUP_CATALOG_TABLE", global = true)]
    pub catalog_table: Option<String>,
    /// Region of the S3 backup bucket (default: AWS_REGION).
    #[arg(long, env = "BACKUP_S3_REGION", global = true)]
    pub s3_region: Option<String>,
    /// Log format: json (services) or text.
    #[arg(long, env = "BACKUP_LOG_FORMAT", default_value = "json", global = true)]
    pub log_format: backup_telemetry::LogFormat,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Expand the window of a plan that contains --at (default now) and enqueue its tasks.
    Run {
        #[arg(long)]
        plan: String,
        /// An instant in the window to expand (RFC 3339).
        #[arg(long)]
        at: Option<DateTime<Utc>>,
        /// Print the tasks that would be sent; send nothing.
        #[arg(long)]
        dry_run: bool,
        #[arg(long)]
        json: bool,
    },
    /// Long-poll the events queue and turn events into tasks until SIGTERM.
    Serve {
        /// Exit once the queue has been empty for this many seconds.
        #[arg(long, env = "BACKUP_EXIT_WHEN_IDLE_SECS")]
        exit_when_idle: Option<u64>,
        /// Long-poll wait per receive (at most 20 s).
        #[arg(long, default_value_t = 20)]
        wait_secs: u64,
        /// Every this many seconds, discover every resource and publish the coverage gauges
        /// (`coverage_resources{status, resource_type}`); 0 turns it off.
        #[arg(long, env = "BACKUP_COVERAGE_INTERVAL_SECS", default_value_t = 3600)]
        coverage_interval_secs: u64,
    },
    /// Expand one event read from a file (an SQS body as EventBridge, SNS or S3 deliver it).
    Ingest {
        file: std::path::PathBuf,
        #[arg(long)]
        dry_run: bool,
        #[arg(long)]
        json: bool,
    },
    /// Print the EventBridge rules (schedules and event patterns) the policy needs.
    Rules {
        #[arg(long)]
        json: bool,
    },
}

/// Everything a command needs from AWS, built once in `main`.
pub struct Context {
    pub settings: Settings,
    pub region: String,
    pub discovery: Discovery,
    pub task_queue: Option<Arc<dyn TaskQueue>>,
    pub event_queue: Option<Arc<dyn TaskQueue>>,
    pub event_dlq: Option<Arc<dyn TaskQueue>>,
    pub store: Option<Arc<dyn TaskStore>>,
    pub catalog: Option<Arc<dyn Catalog>>,
    /// Other accounts, through the roles plans list.
    pub accounts: Arc<dyn Accounts>,
}

impl Context {
    /// Discovery in `account` (`None`: the fleet's own), through its role.
    async fn discovery_in(&self, account: Option<&AccountRef>) -> Result<Discovery, AwsError> {
        match account {
            None => Ok(self.discovery.clone()),
            Some(account) => {
                let ports = self.accounts.ports(account).await?;
                Ok(Discovery { block: ports.block, databases: ports.databases, objects: ports.objects })
            }
        }
    }

    pub fn policy(&self) -> anyhow::Result<Policy> {
        let policy = match (&self.settings.policy, &self.settings.policy_text) {
            (Some(path), _) => Policy::load(path, &self.region),
            (None, Some(text)) => Policy::from_toml_str(text, &self.region),
            (None, None) => {
                return Err(
                    UsageError::new("no policy: pass --policy FILE or set BACKUP_POLICY_FILE / BACKUP_POLICY").into()
                )
            }
        };
        // The policy error stays typed in the chain: it decides the exit code (2).
        policy.map_err(|e| anyhow::Error::new(e).context("invalid policy"))
    }

    fn s3_region(&self) -> String {
        self.settings.s3_region.clone().unwrap_or_else(|| self.region.clone())
    }

    fn task_queue(&self) -> anyhow::Result<&Arc<dyn TaskQueue>> {
        self.task_queue.as_ref().ok_or_else(|| UsageError::new("BACKUP_TASK_QUEUE_URL is not set").into())
    }
}

pub use backup_core::exit::UsageError;

pub async fn run(cx: &Context, command: Command, shutdown: CancellationToken) -> anyhow::Result<i32> {
    match command {
        Command::Run { plan, at, dry_run, json } => {
            run_plan(cx, &plan, at.unwrap_or_else(Utc::now), dry_run, json).await
        }
        Command::Serve { exit_when_idle, wait_secs, coverage_interval_secs } => {
            let coverage = (coverage_interval_secs > 0).then(|| Duration::from_secs(coverage_interval_secs));
            serve(cx, exit_when_idle.map(Duration::from_secs), wait_secs, coverage, shutdown).await
        }
        Command::Ingest { file, dry_run, json } => ingest(cx, &file, dry_run, json).await,
        Command::Rules { json } => {
            let rules = rules(&cx.policy()?);
            if json {
                outln!("{}", serde_json::to_string_pretty(&rules)?)?;
            } else {
                for rule in rules {
                    outln!("{}\n  {}", rule.name, rule.description)?;
                    if let Some(schedule) = rule.schedule_expression {
                        outln!("  schedule: {schedule}")?;
                    }
                    if let Some(pattern) = rule.event_pattern {
                        outln!("  pattern:  {pattern}")?;
                    }
                }
            }
            Ok(0)
        }
    }
}

/// The trace context of the current span (the expansion or event span) for a task message.
fn current_trace() -> Option<TraceContext> {
    backup_telemetry::current_xray_header().map(|xray| TraceContext { xray, links: Vec::new() })
}

/// Resources that only the catalog still knows: deleted sources whose backups must age out.
async fn orphans(
    cx: &Context,
    plan: &Plan,
    account: Option<&AccountRef>,
    before: DateTime<Utc>,
    live: &[Resource],
) -> anyhow::Result<Vec<Resource>> {
    let Some(catalog) = &cx.catalog else { return Ok(Vec::new()) };
    let catalog = AccountCatalog::new(catalog.clone(), account);
    let live: BTreeSet<&str> = live.iter().map(|r| r.id.as_str()).collect();
    let mut seen = BTreeSet::new();
    let mut found = Vec::new();
    for record in catalog.expiring_before(before).await? {
        if record.plan != plan.name || record.copy_of.is_some() || live.contains(record.resource.as_str()) {
            continue;
        }
        let resource_type = match record.artifact.kind {
            ArtifactKind::EbsSnapshot if record.resource.starts_with("vol-") => ResourceType::Ec2Volume,
            ArtifactKind::EbsSnapshot | ArtifactKind::Ami => ResourceType::Ec2Instance,
            ArtifactKind::RdsSnapshot => ResourceType::RdsInstance,
            ArtifactKind::RdsClusterSnapshot => ResourceType::RdsCluster,
            // An export of a deleted database still expires through its resource's prune.
            ArtifactKind::SnapshotExport
                if record.details.get("source_arn").is_some_and(|arn| arn.contains(":cluster-snapshot:")) =>
            {
                ResourceType::RdsCluster
            }
            ArtifactKind::SnapshotExport => ResourceType::RdsInstance,
            // Objects in the backup bucket expire through its lifecycle.
            ArtifactKind::S3Object | ArtifactKind::DatabaseDump => continue,
        };
        if seen.insert((record.resource_region.clone(), record.resource.clone())) {
            found.push(Resource {
                resource_type,
                id: record.resource,
                region: record.resource_region,
                tags: BTreeMap::new(),
            });
        }
    }
    Ok(found)
}

#[derive(Serialize)]
struct RunOutput<'a> {
    plan: &'a str,
    run_id: &'a RunId,
    window: crate::expand::WindowView,
    dry_run: bool,
    discovered: usize,
    tasks: Vec<serde_json::Value>,
    sent: Option<SendReport>,
    #[serde(skip_serializing_if = "<[AccountFailure]>::is_empty")]
    failed_accounts: &'a [AccountFailure],
}

/// Expands the window of `plan_name` containing `at` and enqueues (or prints) its tasks.
pub async fn run_plan(
    cx: &Context,
    plan_name: &str,
    at: DateTime<Utc>,
    dry_run: bool,
    json_out: bool,
) -> anyhow::Result<i32> {
    let policy = cx.policy()?;
    let Some(plan) = policy.plan(plan_name) else {
        let names: Vec<&str> = policy.plans.iter().map(|p| p.name.as_str()).collect();
        return Err(UsageError(format!("no plan named {plan_name:?} (plans: {})", names.join(", "))).into());
    };
    let span =
        tracing::info_span!("expand", plan = %plan.name, window = tracing::field::Empty, tasks = tracing::field::Empty);
    tracing::Instrument::instrument(expand_and_send(cx, &policy, plan, at, dry_run, json_out, span.clone()), span).await
}

/// The body of `run_plan`, inside the expansion span (its trace is what every task carries).
async fn expand_and_send(
    cx: &Context,
    policy: &Policy,
    plan: &Plan,
    at: DateTime<Utc>,
    dry_run: bool,
    json_out: bool,
    span: tracing::Span,
) -> anyhow::Result<i32> {
    let window = plan
        .schedule
        .window_containing(at)
        .with_context(|| format!("schedule {} never fires around {at}", plan.schedule.expression()))?;
    span.record("window", window.start.to_rfc3339());
    let exclude: Vec<String> =
        policy.plans.iter().filter_map(|p| p.s3.as_ref().map(|s| s.backup_bucket.clone())).collect();
    let run_id = RunId::for_window(&plan.name, window.start);
    let now = Utc::now();
    let mut resources = Vec::new();
    let mut envelopes: Vec<Envelope> = Vec::new();
    // Account by account: a role that cannot be assumed (or an account whose discovery fails)
    // fails that account's part of the run, loudly, and the other accounts still run.
    let mut failed_accounts: Vec<AccountFailure> = Vec::new();
    for account in plan.target_accounts() {
        let label = account_label(account.map(|a| a.account_id.as_str())).to_owned();
        let discovered = async {
            let discovery = cx.discovery_in(account).await?;
            let mut found = Vec::new();
            for region in &plan.regions {
                if !json_out {
                    eprintln!(
                        "discovering {} in {region} of account {label}...",
                        plan.resources.iter().map(|r| r.as_str()).collect::<Vec<_>>().join(", ")
                    );
                }
                found.extend(discovery.discover(plan, region, &exclude).await?);
            }
            Ok::<_, AwsError>(found)
        }
        .await;
        let found = match discovered {
            Ok(found) => found,
            Err(err) => {
                tracing::error!(account = %label, role = account.map(|a| a.role_arn.as_str()), error = %err, "account skipped: its part of the run failed");
                if !json_out {
                    eprintln!("account {label}: FAILED, no backups this window: {err}");
                }
                failed_accounts.push(AccountFailure {
                    account_id: label,
                    role_arn: account.map(|a| a.role_arn.clone()),
                    error: err.to_string(),
                });
                continue;
            }
        };
        let orphans = orphans(cx, plan, account, window.start, &found).await?;
        let expansion: Expansion = expand(plan, window, &found, &orphans, &cx.s3_region(), &label);
        tracing::info!(account = %label, resources = found.len(), tasks = expansion.tasks.len(), window = %window.start, "window expanded");
        envelopes.extend(expansion.tasks.into_iter().map(|task| {
            envelope(
                task,
                &run_id,
                Origin::Schedule { plan: plan.name.clone(), window: window.start },
                plan,
                window.start,
                now,
                None,
            )
            .in_account(account.cloned())
        }));
        envelopes.extend(expansion.elsewhere.into_iter().map(|(elsewhere, task)| {
            envelope(
                task,
                &run_id,
                Origin::Schedule { plan: plan.name.clone(), window: window.start },
                plan,
                window.start,
                now,
                None,
            )
            .in_account(Some(elsewhere))
        }));
        resources.extend(found);
    }
    span.record("tasks", envelopes.len());
    let window_view = crate::expand::WindowView::from(window);

    let sent = if dry_run {
        None
    } else {
        if let Some(store) = &cx.store {
            let mut expected: BTreeMap<String, u64> = BTreeMap::new();
            for e in &envelopes {
                *expected.entry(e.kind().to_string()).or_default() += 1;
            }
            store
                .put_run(&RunRecord {
                    run_id: run_id.clone(),
                    plan: Some(plan.name.clone()),
                    window: Some(window.start),
                    origin: "schedule".into(),
                    created_at: now,
                    expected,
                })
                .await?;
        }
        Some(send(cx.task_queue()?, &envelopes).await?)
    };
    let rows: Vec<serde_json::Value> = envelopes
        .iter()
        .map(|e| {
            json!({
                "task_id": e.task_id,
                "kind": e.kind(),
                "account": e.account_label(),
                "resource": e.task.resource(),
                "region": task_region(&e.task),
            })
        })
        .collect();
    if json_out {
        let output = RunOutput {
            plan: &plan.name,
            run_id: &run_id,
            window: window_view,
            dry_run,
            discovered: resources.len(),
            tasks: rows,
            sent,
            failed_accounts: &failed_accounts,
        };
        outln!("{}", serde_json::to_string_pretty(&output)?)?;
    } else {
        outln!(
            "plan {} window {} .. {} run {}",
            plan.name,
            window.start.format("%Y-%m-%dT%H:%MZ"),
            window.end.format("%Y-%m-%dT%H:%MZ"),
            run_id
        )?;
        outln!("{} resources selected, {} tasks", resources.len(), envelopes.len())?;
        let table: Vec<Vec<String>> = rows
            .iter()
            .map(|r| {
                ["kind", "account", "resource", "region", "task_id"]
                    .iter()
                    .map(|k| r[k].as_str().unwrap_or_default().to_owned())
                    .collect()
            })
            .collect();
        outln!("{}", table_text(&["KIND", "ACCOUNT", "RESOURCE", "REGION", "TASK"], &table))?;
        match &sent {
            Some(report) => outln!("sent {} tasks in {} SendMessageBatch calls", report.sent, report.batches)?,
            None => outln!("dry run: nothing sent")?,
        }
        for failure in &failed_accounts {
            outln!(
                "account {} FAILED (role {}): {}",
                failure.account_id,
                failure.role_arn.as_deref().unwrap_or("-"),
                failure.error
            )?;
        }
    }
    // The accounts that did run are sent; a failed account is a failed run all the same.
    Ok(if failed_accounts.is_empty() { exit::OK } else { exit::FAILURE })
}

/// An account whose part of a run failed (its role could not be assumed, or discovery failed).
#[derive(Serialize)]
struct AccountFailure {
    account_id: String,
    role_arn: Option<String>,
    error: String,
}

fn envelope(
    task: Task,
    run_id: &RunId,
    origin: Origin,
    plan: &Plan,
    window_start: DateTime<Utc>,
    now: DateTime<Utc>,
    not_before: Option<DateTime<Utc>>,
) -> Envelope {
    let mut envelope = Envelope::new(task, run_id.clone(), origin, now);
    envelope.deadline = plan.deadline.map(|d| window_start + d);
    envelope.not_before = not_before;
    envelope.trace = current_trace();
    envelope
}

/// The region a task works in, for display.
pub fn task_region(task: &Task) -> String {
    match task {
        Task::SnapshotVolume(p) => p.region.clone(),
        Task::SnapshotInstance(p) => p.region.clone(),
        Task::CreateAmi(p) => p.region.clone(),
        Task::CopySnapshot(p) => p.target.region.clone(),
        Task::CopyAmi(p) => p.target.region.clone(),
        Task::SnapshotDbInstance(p) => p.region.clone(),
        Task::SnapshotDbCluster(p) => p.region.clone(),
        Task::CopyDbSnapshot(p) | Task::CopyDbClusterSnapshot(p) => p.target.region.clone(),
        Task::ScanBucket(p) => p.region.clone(),
        Task::CopyObjects(p) => p.region.clone(),
        Task::CopyObject(p) => p.region.clone(),
        Task::Prune(p) => p.region.clone(),
        Task::DeleteArtifact(p) => p.artifact.region.clone(),
        Task::Verify(p) => p.artifact.region.clone(),
        Task::ArchiveSnapshot(p) => p.region.clone(),
        Task::ExportSnapshot(p) => p.region.clone(),
        Task::DumpDatabase(p) => p.region.clone(),
        Task::RestoreVolume(_) | Task::RestoreInstance(_) | Task::RestoreDbInstance(_) | Task::RestoreDbCluster(_) => {
            String::new()
        }
        Task::RestoreObjects(p) => p.region.clone(),
        Task::RestoreDrill(p) => p.region.clone(),
        Task::Canary(_) => String::new(),
    }
}

fn table_text(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.len()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            widths[i] = widths[i].max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        cells
            .iter()
            .enumerate()
            .map(|(i, c)| format!("{c:<w$}", w = widths[i]))
            .collect::<Vec<_>>()
            .join("  ")
            .trim_end()
            .to_owned()
    };
    let mut out = vec![line(headers.to_vec())];
    out.extend(rows.iter().map(|r| line(r.iter().map(String::as_str).collect())));
    out.join("\n")
}

/// Counters of the events loop, printed at exit.
#[derive(Debug, Default, Serialize)]
pub struct EventStats {
    pub messages: u64,
    pub events: u64,
    pub expanded_plans: u64,
    pub tasks_sent: u64,
    pub not_selected: BTreeMap<String, u64>,
    pub malformed: u64,
    pub retried: u64,
}

/// Turns the decisions of one event into envelopes and sends them; expansions run the plan.
async fn apply(
    cx: &Context,
    policy: &Policy,
    event: &ParsedEvent,
    account: Option<AccountRef>,
    decisions: Vec<Decision>,
    stats: &mut EventStats,
    send_tasks: bool,
) -> anyhow::Result<Vec<Envelope>> {
    let now = Utc::now();
    let mut envelopes = Vec::new();
    for decision in decisions {
        match decision {
            Decision::NotSelected { reason } => *stats.not_selected.entry(reason).or_default() += 1,
            Decision::Expand { plan, at } => {
                stats.expanded_plans += 1;
                let code = run_plan(cx, &plan, at, !send_tasks, true).await?;
                // An account whose part failed (its role could not be assumed): the other
                // accounts' tasks are sent; the event is kept and retried (then dead-lettered,
                // which alarms), so the failed account never misses its window silently.
                if code != exit::OK {
                    anyhow::bail!("plan {plan}: the run for {at} failed for at least one account (see the log)");
                }
            }
            Decision::Tasks { plan, tasks } => {
                let Some(plan) = policy.plan(&plan) else { continue };
                let run_id = RunId::new(format!("event:{}", event.id));
                for MappedTask { task, not_before } in tasks {
                    let origin = Origin::Event { event_id: event.id.clone(), source: event_source(event) };
                    let mut e = envelope(task, &run_id, origin, plan, now, now, not_before).in_account(account.clone());
                    // Events carry no trace: link the task to the event id instead.
                    let trace = e.trace.get_or_insert_with(|| TraceContext { xray: String::new(), links: Vec::new() });
                    trace.links.push(event.id.clone());
                    if trace.xray.is_empty() {
                        e.trace = current_trace().map(|t| TraceContext { links: vec![event.id.clone()], ..t });
                    }
                    envelopes.push(e);
                }
            }
        }
    }
    if send_tasks && !envelopes.is_empty() {
        let report = send(cx.task_queue()?, &envelopes).await?;
        stats.tasks_sent += report.sent as u64;
    }
    Ok(envelopes)
}

/// Maps one event; a lookup that failed permanently (the bucket, snapshot or instance is gone or
/// unreadable) means no plan can select it: counted as not selected instead of retried forever.
///
/// An event from an account some plan lists (delivered to the fleet's bus by that account's
/// EventBridge rule) is looked up in that account, against the plans that list it; any other
/// event is the fleet's own account's, against the plans that cover it.
async fn map_checked(
    cx: &Context,
    policy: &Policy,
    event: &ParsedEvent,
) -> Result<(Option<AccountRef>, Vec<Decision>), backup_core::AwsError> {
    let account = event
        .account
        .as_deref()
        .and_then(|id| policy.plans.iter().flat_map(|p| &p.accounts).find(|a| a.account_id == id))
        .cloned();
    // A schedule tick names a plan, whichever accounts it covers (the rule lives in the fleet's
    // account, so its events carry the fleet's account id).
    let scoped = match &event.event {
        backup_schemas::events::AwsEvent::Scheduled { .. } => policy.clone(),
        _ => policy.for_account(account.as_ref()),
    };
    let mapped = match cx.discovery_in(account.as_ref()).await {
        Ok(discovery) => map_event(&scoped, &discovery, event, &cx.s3_region(), Utc::now()).await,
        Err(err) => Err(err),
    };
    let decisions = match mapped {
        Err(err) if err.class == backup_core::ErrorClass::Permanent => Ok(vec![Decision::NotSelected {
            reason: format!("lookup failed: {}.{} {}", err.service, err.operation, err.code),
        }]),
        other => other,
    }?;
    Ok((account, decisions))
}

fn event_source(event: &ParsedEvent) -> String {
    serde_json::to_value(&event.event).ok().and_then(|v| v["type"].as_str().map(str::to_owned)).unwrap_or_default()
}

async fn ingest(cx: &Context, file: &std::path::Path, dry_run: bool, json_out: bool) -> anyhow::Result<i32> {
    let body = std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    let policy = cx.policy()?;
    let events = parse_body(&body).map_err(|e| UsageError(format!("{}: {e}", file.display())))?;
    let mut stats = EventStats::default();
    let mut all = Vec::new();
    for event in &events {
        let (account, decisions) = map_checked(cx, &policy, event).await?;
        all.extend(apply(cx, &policy, event, account, decisions, &mut stats, !dry_run).await?);
    }
    if json_out {
        let tasks: Vec<serde_json::Value> = all
            .iter()
            .map(|e| {
                json!({"task_id": e.task_id, "kind": e.kind(), "account": e.account_label(), "resource": e.task.resource()})
            })
            .collect();
        outln!(
            "{}",
            serde_json::to_string_pretty(
                &json!({ "events": events.len(), "dry_run": dry_run, "tasks": tasks, "stats": stats })
            )?
        )?;
    } else {
        outln!(
            "{} event(s), {} task(s){}",
            events.len(),
            all.len(),
            if dry_run { " (dry run: nothing sent)" } else { "" }
        )?;
        for e in &all {
            outln!("  {}  {}  {}", e.kind(), e.task.resource(), e.task_id)?;
        }
        for (reason, n) in &stats.not_selected {
            outln!("  not selected ({n}): {reason}")?;
        }
    }
    Ok(0)
}

/// The events loop: receive, parse, map, send tasks, then delete. A malformed body goes to the
/// events DLQ with its reason; an event no plan selects is acknowledged and counted; a failed
/// lookup leaves the message for a retry (and the queue's redrive after too many).
/// One coverage pass: discovers every resource, classifies it, and records the gauges for every
/// status and type (zeros included, so an alarm clears).
async fn publish_coverage(cx: &Context, policy: &Policy) -> anyhow::Result<()> {
    use backup_core::coverage::{self, CoverageStatus, Grace, Sources};
    let Some(catalog) = cx.catalog.clone() else {
        anyhow::bail!("BACKUP_CATALOG_TABLE is not set: coverage needs the catalog")
    };
    let sources = Sources {
        block: cx.discovery.block.clone(),
        databases: cx.discovery.databases.clone(),
        objects: cx.discovery.objects.clone(),
        catalog,
        store: cx.store.clone(),
        accounts: cx.accounts.clone(),
    };
    let now = Utc::now();
    let inputs = coverage::gather(policy, &sources, &coverage::regions(policy), now).await?;
    let report = coverage::assess(policy, &inputs, now, Grace::Percent(25.0));
    if !report.incomplete.is_empty() {
        // Counts without a region would read as "nothing unprotected there" and clear the alarm;
        // publishing nothing lets the alarm's missing-data rule page instead.
        anyhow::bail!("discovery incomplete, coverage not published: {}", report.incomplete.join("; "));
    }
    let metrics = backup_telemetry::metrics();
    for resource_type in ResourceType::ALL {
        for status in CoverageStatus::ALL {
            let n = report.resources.iter().filter(|r| r.resource_type == resource_type && r.status == status).count();
            metrics.coverage(status.as_str(), resource_type.as_str(), n as u64);
        }
    }
    tracing::info!(
        resources = report.resources.len(),
        violations = report.violations,
        unprotected = report.unprotected,
        failing_controls = report.failing_controls,
        incomplete = report.incomplete.len(),
        summary = %serde_json::to_string(&report.summary).unwrap_or_default(),
        "coverage published"
    );
    Ok(())
}

/// Coverage passes every `every`, the first at once (so a new deployment's gauges exist before
/// its first interval), until `stop` (the events loop ended). A pass in progress is abandoned
/// only on `shutdown` (SIGTERM); an idle exit lets it finish. A failed pass is logged and tried
/// again next interval.
async fn coverage_loop(
    cx: &Context,
    policy: &Policy,
    every: Duration,
    shutdown: CancellationToken,
    stop: CancellationToken,
) {
    loop {
        tokio::select! {
            result = publish_coverage(cx, policy) => {
                if let Err(err) = result {
                    tracing::warn!(error = %format!("{err:#}"), "coverage pass failed");
                }
            }
            _ = shutdown.cancelled() => return,
        }
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = stop.cancelled() => return,
        }
    }
}

async fn serve(
    cx: &Context,
    exit_when_idle: Option<Duration>,
    wait_secs: u64,
    coverage_every: Option<Duration>,
    shutdown: CancellationToken,
) -> anyhow::Result<i32> {
    let policy = cx.policy()?;
    // Coverage runs beside the events, never in their way: a long discovery delays no event.
    let stop_coverage = CancellationToken::new();
    let coverage = async {
        if let Some(every) = coverage_every {
            coverage_loop(cx, &policy, every, shutdown.clone(), stop_coverage.clone()).await;
        }
    };
    let events = async {
        let result = serve_events(cx, &policy, exit_when_idle, wait_secs, shutdown.clone()).await;
        stop_coverage.cancel();
        result
    };
    let (result, ()) = tokio::join!(events, coverage);
    result
}

async fn serve_events(
    cx: &Context,
    policy: &Policy,
    exit_when_idle: Option<Duration>,
    wait_secs: u64,
    shutdown: CancellationToken,
) -> anyhow::Result<i32> {
    let queue = cx.event_queue.clone().ok_or_else(|| UsageError::new("BACKUP_EVENT_QUEUE_URL is not set"))?;
    let dlq = cx.event_dlq.clone().ok_or_else(|| UsageError::new("BACKUP_EVENT_DLQ_URL is not set"))?;
    let mut stats = EventStats::default();
    let mut idle_since = std::time::Instant::now();
    tracing::info!(queue = queue.url(), plans = policy.plans.len(), "producer serving events");
    loop {
        if exit_when_idle.is_some_and(|idle| idle_since.elapsed() >= idle) {
            tracing::info!("no events for the idle timeout; stopping");
            break;
        }
        let received = tokio::select! {
            r = queue.receive(10, Duration::from_secs(wait_secs.min(20))) => r,
            _ = shutdown.cancelled() => break,
        };
        let messages = match received {
            Ok(m) => m,
            Err(err) => {
                tracing::warn!(error = %err, "receive failed; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        if !messages.is_empty() {
            idle_since = std::time::Instant::now();
        }
        let mut done = Vec::new();
        let mut retry = Vec::new();
        for message in messages {
            stats.messages += 1;
            let events = match parse_body(&message.body) {
                Ok(events) => events,
                Err(err) => {
                    stats.malformed += 1;
                    tracing::warn!(error = %err, message_id = %message.message_id, "malformed event; moving it to the events DLQ");
                    let dead = OutgoingMessage {
                        id: "0".into(),
                        body: message.body.clone(),
                        delay: None,
                        trace_header: None,
                        attributes: BTreeMap::from([
                            (ATTR_REASON.to_owned(), err.to_string().chars().take(1024).collect()),
                            (ATTR_REASON_CODE.to_owned(), "malformed_event".to_owned()),
                            (ATTR_SOURCE_QUEUE.to_owned(), queue.url().to_owned()),
                            (ATTR_FAILED_AT.to_owned(), Utc::now().to_rfc3339()),
                        ]),
                    };
                    match dlq.send(&dead).await {
                        Ok(_) => done.push(message.receipt_handle),
                        Err(err) => tracing::warn!(error = %err, "could not dead-letter; the message will come back"),
                    }
                    continue;
                }
            };
            let mut ok = true;
            for event in &events {
                stats.events += 1;
                let span = tracing::info_span!("event", event_id = %event.id);
                let result = async {
                    let (account, decisions) = map_checked(cx, policy, event).await?;
                    apply(cx, policy, event, account, decisions, &mut stats, true).await
                };
                if let Err(err) = tracing::Instrument::instrument(result, span).await {
                    tracing::warn!(error = %err, event_id = %event.id, "event not processed; it will be retried");
                    ok = false;
                    break;
                }
            }
            if ok {
                done.push(message.receipt_handle);
            } else {
                stats.retried += 1;
                retry.push((message.receipt_handle, Duration::from_secs(30)));
            }
        }
        for chunk in done.chunks(10) {
            if let Err(err) = queue.delete_batch(chunk).await {
                tracing::warn!(error = %err, "delete failed; duplicates are harmless (deterministic task ids)");
            }
        }
        for chunk in retry.chunks(10) {
            let _ = queue.change_visibility_batch(chunk).await;
        }
    }
    tracing::info!(stats = %serde_json::to_string(&stats).unwrap_or_default(), "producer stopped");
    Ok(0)
}
