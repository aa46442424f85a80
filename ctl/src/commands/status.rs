//! `backupctl status`: runs and their progress, queue depths, DLQs, the age of the oldest message.

use backup_core::outln;
use backup_core::ports::{QueueDepth, TaskQueue};
use backup_schemas::{RunId, TaskState};
use chrono::Utc;
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::Arc;

use super::{Fleet, EXIT_CHECK_FAILED};
use crate::output;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Only this run.
    #[arg(long)]
    pub run: Option<String>,
    /// How many recent runs to show.
    #[arg(long, default_value_t = 5)]
    pub runs: usize,
    /// Exit 3 when a DLQ is not empty or a shown run has failed or dead tasks.
    #[arg(long)]
    pub check: bool,
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Serialize)]
pub struct QueueStatus {
    pub name: String,
    pub depth: QueueDepth,
    /// Age of the oldest message seen in a sample (SQS does not report it exactly outside CloudWatch).
    pub oldest_age_secs: Option<i64>,
}

#[derive(Debug, Serialize)]
pub struct RunStatus {
    pub run_id: RunId,
    pub plan: Option<String>,
    pub created_at: chrono::DateTime<Utc>,
    pub expected: u64,
    pub by_state: BTreeMap<String, u64>,
    pub by_kind: BTreeMap<String, BTreeMap<String, u64>>,
}

#[derive(Debug, Serialize)]
pub struct Status {
    pub queues: Vec<QueueStatus>,
    pub runs: Vec<RunStatus>,
    pub problems: Vec<String>,
}

async fn queue_status(name: &str, queue: Arc<dyn TaskQueue>) -> anyhow::Result<QueueStatus> {
    let depth = queue.depth().await?;
    let oldest_age_secs = if depth.visible > 0 {
        queue.peek(10).await?.iter().filter_map(|m| m.sent_at).min().map(|t| (Utc::now() - t).num_seconds())
    } else {
        None
    };
    Ok(QueueStatus { name: name.to_owned(), depth, oldest_age_secs })
}

pub async fn collect(fleet: &Fleet, run: Option<String>, runs: usize) -> anyhow::Result<Status> {
    let mut queues = Vec::new();
    queues.push(queue_status("tasks", fleet.task_queue()?).await?);
    queues.push(queue_status("tasks-dlq", fleet.task_dlq()?).await?);
    if fleet.args.event_queue_url.is_some() {
        queues.push(queue_status("events", fleet.event_queue()?).await?);
    }
    if fleet.args.event_dlq_url.is_some() {
        queues.push(queue_status("events-dlq", fleet.event_dlq()?).await?);
    }
    let store = fleet.store()?;
    let records = match run {
        Some(id) => store.get_run(&RunId::new(&id)).await?.into_iter().collect(),
        None => store.list_runs(runs).await?,
    };
    let mut statuses = Vec::new();
    for record in records {
        let tasks = store.tasks_of_run(&record.run_id).await?;
        let mut by_state: BTreeMap<String, u64> = BTreeMap::new();
        let mut by_kind: BTreeMap<String, BTreeMap<String, u64>> = BTreeMap::new();
        for task in &tasks {
            *by_state.entry(task.state.to_string()).or_default() += 1;
            *by_kind
                .entry(task.kind.clone().unwrap_or_default())
                .or_default()
                .entry(task.state.to_string())
                .or_default() += 1;
        }
        let expected = record.expected.values().sum::<u64>();
        // Tasks not claimed yet have no item: they are pending in the queue.
        let seen = tasks.len() as u64;
        if expected > seen {
            *by_state.entry(TaskState::Pending.to_string()).or_default() += expected - seen;
        }
        statuses.push(RunStatus {
            run_id: record.run_id,
            plan: record.plan,
            created_at: record.created_at,
            expected,
            by_state,
            by_kind,
        });
    }
    let mut problems = Vec::new();
    for q in queues.iter().filter(|q| q.name.ends_with("dlq") && q.depth.visible + q.depth.in_flight > 0) {
        problems.push(format!("{} holds {} message(s)", q.name, q.depth.visible + q.depth.in_flight));
    }
    for run in &statuses {
        let bad: u64 = ["FAILED", "DEAD"].iter().filter_map(|s| run.by_state.get(*s)).sum();
        if bad > 0 {
            problems.push(format!("run {} has {bad} failed or dead task(s)", run.run_id));
        }
    }
    Ok(Status { queues, runs: statuses, problems })
}

pub async fn run(fleet: &Fleet, args: Args) -> anyhow::Result<i32> {
    let status = collect(fleet, args.run, args.runs).await?;
    if args.json {
        output::json(&status)?;
    } else {
        let rows: Vec<Vec<String>> = status
            .queues
            .iter()
            .map(|q| {
                vec![
                    q.name.clone(),
                    q.depth.visible.to_string(),
                    q.depth.in_flight.to_string(),
                    q.depth.delayed.to_string(),
                    q.oldest_age_secs.map(|s| format!("{s}s")).unwrap_or_else(|| "-".into()),
                ]
            })
            .collect();
        outln!("{}\n", output::table(&["QUEUE", "VISIBLE", "IN FLIGHT", "DELAYED", "OLDEST"], &rows))?;
        let states = ["PENDING", "RUNNING", "WAITING", "SUCCEEDED", "FAILED", "DEAD"];
        let mut headers = vec!["RUN", "CREATED", "TASKS"];
        headers.extend(states);
        let rows: Vec<Vec<String>> = status
            .runs
            .iter()
            .map(|r| {
                let mut row = vec![
                    r.run_id.to_string(),
                    r.created_at.format("%Y-%m-%d %H:%M").to_string(),
                    r.expected.to_string(),
                ];
                row.extend(states.iter().map(|s| r.by_state.get(*s).copied().unwrap_or(0).to_string()));
                row
            })
            .collect();
        outln!("{}", output::table(&headers, &rows))?;
        for problem in &status.problems {
            outln!("problem: {problem}")?;
        }
    }
    Ok(if args.check && !status.problems.is_empty() { EXIT_CHECK_FAILED } else { 0 })
}
