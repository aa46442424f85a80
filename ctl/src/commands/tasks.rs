//! `backupctl tasks show ID`.

use backup_core::outln;
use backup_schemas::TaskId;
use clap::Subcommand;

use super::Fleet;
use crate::output;

#[derive(Subcommand, Debug)]
pub enum Command {
    /// The tasks of one run, with their states and results.
    List {
        #[arg(long)]
        run: String,
        /// Only tasks in this state (PENDING, RUNNING, WAITING, SUCCEEDED, FAILED, DEAD).
        #[arg(long)]
        state: Option<String>,
        /// Only tasks of this kind.
        #[arg(long)]
        kind: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Show one task's state, attempts, lease and result.
    Show {
        id: String,
        #[arg(long)]
        json: bool,
    },
}

pub async fn run(fleet: &Fleet, command: Command) -> anyhow::Result<i32> {
    let (id, json) = match command {
        Command::Show { id, json } => (id, json),
        Command::List { run, state, kind, json } => return list(fleet, &run, state, kind, json).await,
    };
    let Some(record) = fleet.store()?.get(&TaskId::new(&id)).await? else {
        eprintln!("no task {id}");
        return Ok(1);
    };
    if json {
        output::json(&record)?;
        return Ok(0);
    }
    let opt = |v: Option<String>| v.unwrap_or_else(|| "-".into());
    let rows = vec![
        vec!["task".into(), record.task_id.to_string()],
        vec!["kind".into(), opt(record.kind.clone())],
        vec!["resource".into(), opt(record.resource.clone())],
        vec!["run".into(), opt(record.run_id.as_ref().map(|r| r.to_string()))],
        vec!["state".into(), record.state.to_string()],
        vec!["attempts".into(), record.attempts.to_string()],
        vec!["fencing token".into(), record.fence.to_string()],
        vec!["owner".into(), opt(record.owner.clone())],
        vec!["lease until".into(), opt(record.lease_until.map(|t| t.to_rfc3339()))],
        vec!["replays".into(), record.replays.to_string()],
        vec!["last error".into(), opt(record.last_error.clone())],
        vec!["created".into(), opt(record.created_at.map(|t| t.to_rfc3339()))],
        vec!["updated".into(), opt(record.updated_at.map(|t| t.to_rfc3339()))],
        vec!["result".into(), opt(record.result.as_ref().map(|r| r.to_string()))],
    ];
    outln!("{}", output::table(&["FIELD", "VALUE"], &rows))?;
    Ok(0)
}

async fn list(
    fleet: &Fleet,
    run: &str,
    state: Option<String>,
    kind: Option<String>,
    json: bool,
) -> anyhow::Result<i32> {
    let state: Option<backup_schemas::TaskState> =
        state.map(|s| s.parse()).transpose().map_err(|e: String| anyhow::anyhow!(e))?;
    let mut tasks = fleet.store()?.tasks_of_run(&backup_schemas::RunId::new(run)).await?;
    tasks.retain(|t| state.is_none_or(|s| t.state == s) && kind.as_ref().is_none_or(|k| t.kind.as_ref() == Some(k)));
    tasks.sort_by(|a, b| (&a.kind, &a.resource).cmp(&(&b.kind, &b.resource)));
    if json {
        output::json(&tasks)?;
        return Ok(0);
    }
    let rows: Vec<Vec<String>> = tasks
        .iter()
        .map(|t| {
            vec![
                t.task_id.to_string(),
                t.kind.clone().unwrap_or_default(),
                t.resource.clone().unwrap_or_default(),
                t.state.to_string(),
                t.attempts.to_string(),
                t.last_error.clone().unwrap_or_default().chars().take(60).collect(),
            ]
        })
        .collect();
    outln!("{}", output::table(&["TASK", "KIND", "RESOURCE", "STATE", "ATTEMPTS", "LAST ERROR"], &rows))?;
    eprintln!("{} tasks", tasks.len());
    Ok(0)
}
