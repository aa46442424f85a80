//! `backupctl canary`: send canary tasks and wait for them. Exit 0 only when all completed.

use backup_core::outln;
use backup_core::ports::OutgoingMessage;
use backup_schemas::{Canary, CanaryMode, Envelope, Origin, RunId, Task, TaskState};
use chrono::Utc;
use serde_json::json;
use std::time::{Duration, Instant};

use super::Fleet;
use crate::output;

#[derive(clap::Args, Debug)]
pub struct Args {
    #[arg(long, default_value_t = 1)]
    pub count: u32,
    /// Seconds to wait for all canaries.
    #[arg(long, default_value_t = 120)]
    pub timeout: u64,
    #[arg(long)]
    pub json: bool,
}

pub async fn run(fleet: &Fleet, args: Args) -> anyhow::Result<i32> {
    let queue = fleet.task_queue()?;
    let store = fleet.store()?;
    let started = Instant::now();
    let run_id = RunId::new(format!("canary@{}", Utc::now().format("%Y-%m-%dT%H:%M:%SZ")));
    let mut ids = Vec::new();
    let mut messages = Vec::new();
    for i in 0..args.count {
        let task = Task::Canary(Canary {
            nonce: format!("{run_id}/{i}/{:08x}", rand_u32()),
            sleep_ms: 0,
            mode: CanaryMode::Succeed,
            spawn: 0,
        });
        let envelope =
            Envelope::new(task, run_id.clone(), Origin::Operator { command: "backupctl canary".into() }, Utc::now());
        ids.push(envelope.task_id.clone());
        messages.push(OutgoingMessage { id: i.to_string(), body: envelope.encode()?, ..Default::default() });
    }
    for chunk in messages.chunks(10) {
        let failed = queue.send_batch(chunk).await?;
        anyhow::ensure!(failed.is_empty(), "SQS refused canaries: {failed:?}");
    }
    let deadline = started + Duration::from_secs(args.timeout);
    let mut done = Vec::new();
    let mut last_report = Instant::now();
    loop {
        done.clear();
        for id in &ids {
            if let Some(record) = store.get(id).await? {
                if record.state.is_terminal() {
                    done.push((id.clone(), record.state));
                }
            }
        }
        if done.len() == ids.len() || Instant::now() >= deadline {
            break;
        }
        if !args.json && last_report.elapsed() >= Duration::from_secs(2) {
            eprintln!("canary: {}/{} finished after {:.0}s", done.len(), ids.len(), started.elapsed().as_secs_f64());
            last_report = Instant::now();
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let succeeded = done.iter().filter(|(_, s)| *s == TaskState::Succeeded).count();
    let healthy = succeeded == ids.len();
    if args.json {
        output::json(
            &json!({ "sent": ids.len(), "succeeded": succeeded, "finished": done.len(), "healthy": healthy, "seconds": started.elapsed().as_secs_f64(), "run_id": run_id }),
        )?;
    } else {
        outln!(
            "{succeeded}/{} canaries succeeded in {:.1}s{}",
            ids.len(),
            started.elapsed().as_secs_f64(),
            if healthy { "" } else { ": the fleet is NOT healthy" }
        )?;
    }
    Ok(if healthy { 0 } else { 1 })
}

fn rand_u32() -> u32 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher
        .write_u128(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_nanos());
    hasher.finish() as u32
}
