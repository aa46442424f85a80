//! `backupctl dlq list|replay`. The native StartMessageMoveTask cannot filter or dry-run, which
//! is why this exists. Replay sends first and deletes second, so a replay killed at any point
//! loses nothing: at worst a message is in both queues, and task ids make the duplicate harmless.

use backup_core::outln;
use backup_core::ports::{
    OutgoingMessage, ReceivedMessage, Reopen, TaskQueue, ATTR_FAILED_AT, ATTR_FIRST_FAILED_AT, ATTR_REASON,
    ATTR_REASON_CODE, ATTR_REPLAYED_AT, ATTR_SOURCE_QUEUE,
};
use backup_schemas::Envelope;
use chrono::{DateTime, Utc};
use clap::{Subcommand, ValueEnum};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use super::Fleet;
use crate::output;

/// While a listing walks the DLQ, the messages it has seen stay hidden this long (then are made
/// visible again explicitly), so a listing never consumes anything.
const LISTING_VISIBILITY: Duration = Duration::from_secs(120);

/// How long one received batch of messages stays hidden while it is replayed: its ten messages
/// at the replay's rate, with a margin, and at least `BACKUP_DLQ_HOLD_SECS` (default 60 s).
fn hold_for(count: usize, pause: Duration) -> Duration {
    let minimum = std::env::var("BACKUP_DLQ_HOLD_SECS").ok().and_then(|v| v.parse().ok()).unwrap_or(60);
    let needed = pause.mul_f64(count as f64 * 1.5) + Duration::from_secs(5);
    needed.max(Duration::from_secs(minimum)).min(Duration::from_secs(12 * 3600))
}

/// What a replay did with the selected messages.
#[derive(Debug, Default)]
struct ReplayReport {
    replayed: Vec<String>,
    /// Left in the DLQ on purpose, with the reason.
    skipped: Vec<(String, String)>,
    /// Selected, but gone from the DLQ when the replay looked for them again.
    not_found: Vec<String>,
}

/// Receives the DLQ again and replays each wanted message while its receipt handle is fresh.
/// The messages of a received batch are kept hidden by a renewal in the background while the
/// batch is worked through, and each one's handle is confirmed (a checked renewal) right before
/// it is sent: a handle that went stale (someone received the message meanwhile) would make the
/// delete a silent no-op and leave the message both replayed and dead-lettered, so such a message
/// is left for a later receive instead. Messages not wanted stay hidden until the end, then are
/// released. A message whose task holds a live lease is left in the DLQ: its task is running,
/// and reopening it would hand it to a second worker.
async fn replay(
    fleet: &Fleet,
    dlq: &Arc<dyn TaskQueue>,
    default_source: &Arc<dyn TaskQueue>,
    wanted: &BTreeMap<String, &DeadLetter>,
    pause: Duration,
    quiet: bool,
) -> anyhow::Result<ReplayReport> {
    let store = fleet.store().ok();
    let hold = hold_for(10, pause);
    let mut report = ReplayReport::default();
    let mut left: BTreeSet<String> = wanted.keys().cloned().collect();
    let mut set_aside: BTreeMap<String, String> = BTreeMap::new();
    let mut empty_polls = 0;
    while !left.is_empty() && empty_polls < 3 {
        let batch = dlq.receive_for(10, Duration::from_secs(1), hold).await?;
        let (mine, others): (Vec<ReceivedMessage>, Vec<ReceivedMessage>) =
            batch.into_iter().partition(|m| left.contains(&m.message_id));
        for message in others {
            set_aside.insert(message.message_id, message.receipt_handle);
        }
        if mine.is_empty() {
            empty_polls += 1;
            continue;
        }
        empty_polls = 0;
        let held: Arc<std::sync::Mutex<Vec<String>>> =
            Arc::new(std::sync::Mutex::new(mine.iter().map(|m| m.receipt_handle.clone()).collect()));
        let renewer = tokio::spawn(keep_hidden(dlq.clone(), held.clone(), hold));
        let result = replay_batch(
            fleet,
            dlq,
            default_source,
            wanted,
            &store,
            mine,
            &held,
            &mut left,
            &mut set_aside,
            &mut report,
            pause,
            hold,
            quiet,
        )
        .await;
        renewer.abort();
        result?;
    }
    report.not_found = left.into_iter().collect();
    let handles: Vec<(String, Duration)> = set_aside.into_values().map(|h| (h, Duration::ZERO)).collect();
    for chunk in handles.chunks(10) {
        let _ = dlq.change_visibility_batch(chunk).await;
    }
    Ok(report)
}

/// Renews the hold on `held` every third of it, until aborted.
async fn keep_hidden(dlq: Arc<dyn TaskQueue>, held: Arc<std::sync::Mutex<Vec<String>>>, hold: Duration) {
    loop {
        tokio::time::sleep(hold / 3).await;
        let entries: Vec<(String, Duration)> = held.lock().expect("held").iter().map(|h| (h.clone(), hold)).collect();
        for chunk in entries.chunks(10) {
            let _ = dlq.change_visibility_batch(chunk).await;
        }
    }
}

#[allow(clippy::too_many_arguments)]
async fn replay_batch(
    fleet: &Fleet,
    dlq: &Arc<dyn TaskQueue>,
    default_source: &Arc<dyn TaskQueue>,
    wanted: &BTreeMap<String, &DeadLetter>,
    store: &Option<Arc<dyn backup_core::ports::TaskStore>>,
    mine: Vec<ReceivedMessage>,
    held: &Arc<std::sync::Mutex<Vec<String>>>,
    left: &mut BTreeSet<String>,
    set_aside: &mut BTreeMap<String, String>,
    report: &mut ReplayReport,
    pause: Duration,
    hold: Duration,
    quiet: bool,
) -> anyhow::Result<()> {
    for message in mine {
        let letter = wanted[&message.message_id];
        let handle = message.receipt_handle.clone();
        let stop_holding =
            |held: &Arc<std::sync::Mutex<Vec<String>>>| held.lock().expect("held").retain(|h| *h != handle);
        // Is this handle still the message's newest? (Checked, and the hold renewed with it.)
        let failed = dlq.change_visibility_batch(&[(handle.clone(), hold)]).await?;
        if !failed.is_empty() {
            stop_holding(held);
            continue; // received by someone else meanwhile: `left` still wants it
        }
        if let (Some(store), Some(task_id)) = (store, &letter.task_id) {
            if let Reopen::Leased { owner, until } =
                store.reopen_for_replay(&backup_schemas::TaskId::new(task_id), Utc::now()).await?
            {
                let why = format!(
                    "task {task_id} holds a live lease ({owner} until {}): it is running; replay it after the lease ends if it fails",
                    until.to_rfc3339()
                );
                report.skipped.push((message.message_id.clone(), why));
                left.remove(&message.message_id);
                stop_holding(held);
                set_aside.insert(message.message_id.clone(), handle.clone());
                continue;
            }
        }
        let source: Arc<dyn TaskQueue> = match &letter.source_queue {
            Some(url) if url != default_source.url() => fleet.queue(url),
            _ => default_source.clone(),
        };
        let mut attributes = BTreeMap::from([(ATTR_REPLAYED_AT.to_owned(), Utc::now().to_rfc3339())]);
        if let Some(first) = letter.first_failure {
            attributes.insert(ATTR_FIRST_FAILED_AT.to_owned(), first.to_rfc3339());
        }
        let outgoing = OutgoingMessage {
            id: "0".into(),
            body: message.body.clone(),
            delay: None,
            trace_header: message.trace_header.clone(),
            attributes,
        };
        source.send(&outgoing).await?;
        let failed = dlq.delete_batch(std::slice::from_ref(&handle)).await?;
        stop_holding(held);
        if let Some((_, code)) = failed.first() {
            anyhow::bail!(
                "message {} was replayed but could not be deleted from the DLQ ({code}); it is in both queues \
                 (harmless: its task id makes the copy a duplicate), and a new replay would send it again",
                message.message_id
            );
        }
        left.remove(&message.message_id);
        report.replayed.push(message.message_id.clone());
        if !quiet && report.replayed.len().is_multiple_of(10) {
            eprintln!("replayed {}/{}", report.replayed.len(), wanted.len());
        }
        tokio::time::sleep(pause).await;
    }
    Ok(())
}

/// More messages than this need `--yes`.
const CONFIRM_ABOVE: usize = 100;

#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
pub enum QueueName {
    Tasks,
    Events,
}

#[derive(clap::Args, Debug, Clone)]
pub struct Filters {
    #[arg(long, value_enum, default_value = "tasks")]
    pub queue: QueueName,
    /// Only messages of this task kind (e.g. ebs.snapshot_volume).
    #[arg(long)]
    pub kind: Option<String>,
    /// Only messages whose reason contains this text (case-insensitive).
    #[arg(long)]
    pub reason: Option<String>,
    /// Only messages that failed at or after this time (RFC 3339).
    #[arg(long)]
    pub since: Option<DateTime<Utc>>,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// What is in a DLQ, with reasons, attempts and failure times, without consuming it.
    List {
        #[command(flatten)]
        filters: Filters,
        #[arg(long)]
        json: bool,
    },
    /// Move the selected messages back to their source queue.
    Replay {
        #[command(flatten)]
        filters: Filters,
        /// Replay at most this many messages.
        #[arg(long)]
        max: Option<usize>,
        /// Messages per second.
        #[arg(long, default_value_t = 50.0)]
        rate: f64,
        /// Show exactly what would move; change nothing.
        #[arg(long)]
        dry_run: bool,
        /// Confirm replays of more than 100 messages.
        #[arg(long)]
        yes: bool,
        #[arg(long)]
        json: bool,
    },
}

/// One dead letter, as shown to operators.
#[derive(Clone, Debug, Serialize)]
pub struct DeadLetter {
    pub message_id: String,
    pub task_id: Option<String>,
    pub kind: Option<String>,
    pub resource: Option<String>,
    pub reason: String,
    pub reason_code: Option<String>,
    pub attempts: Option<u32>,
    pub first_failure: Option<DateTime<Utc>>,
    pub last_failure: Option<DateTime<Utc>>,
    pub source_queue: Option<String>,
    #[serde(skip)]
    pub message: ReceivedMessage,
}

fn attr_time(message: &ReceivedMessage, name: &str) -> Option<DateTime<Utc>> {
    message.attributes.get(name).and_then(|v| DateTime::parse_from_rfc3339(v).ok()).map(|t| t.with_timezone(&Utc))
}

/// Reads the whole DLQ without consuming it: messages are hidden while the walk goes on and made
/// visible again at the end. A message seen twice (its hold ran out during a long walk) keeps its
/// newest receipt handle: only the newest one can still change or delete it.
async fn walk(dlq: &Arc<dyn TaskQueue>) -> anyhow::Result<Vec<ReceivedMessage>> {
    let mut seen: Vec<ReceivedMessage> = Vec::new();
    let mut empty_polls = 0;
    while empty_polls < 2 {
        let batch = dlq.receive_for(10, Duration::from_secs(1), LISTING_VISIBILITY).await?;
        if batch.is_empty() {
            empty_polls += 1;
            continue;
        }
        empty_polls = 0;
        let mut new = 0;
        for message in batch {
            match seen.iter_mut().find(|m| m.message_id == message.message_id) {
                Some(known) => *known = message,
                None => {
                    seen.push(message);
                    new += 1;
                }
            }
        }
        if new == 0 {
            // Only messages already seen came back: the walk has gone round the whole queue.
            break;
        }
        if seen.len() % 100 < 10 && seen.len() >= 100 {
            eprintln!("read {} dead letters...", seen.len());
        }
    }
    Ok(seen)
}

async fn release(dlq: &Arc<dyn TaskQueue>, messages: &[ReceivedMessage]) {
    let handles: Vec<(String, Duration)> =
        messages.iter().map(|m| (m.receipt_handle.clone(), Duration::ZERO)).collect();
    for chunk in handles.chunks(10) {
        let _ = dlq.change_visibility_batch(chunk).await;
    }
}

async fn describe(fleet: &Fleet, messages: Vec<ReceivedMessage>) -> anyhow::Result<Vec<DeadLetter>> {
    let store = fleet.store().ok();
    let mut letters = Vec::new();
    for message in messages {
        let envelope = Envelope::decode(&message.body).ok();
        let record = match (&store, &envelope) {
            (Some(store), Some(envelope)) => store.get(&envelope.task_id).await?,
            _ => None,
        };
        let decode_reason = Envelope::decode(&message.body).err().map(|e| e.to_string());
        let reason = message
            .attributes
            .get(ATTR_REASON)
            .cloned()
            .or_else(|| record.as_ref().and_then(|r| r.last_error.clone()))
            .or(decode_reason)
            .unwrap_or_else(|| "retries exhausted (moved by the queue's redrive policy)".to_owned());
        letters.push(DeadLetter {
            message_id: message.message_id.clone(),
            task_id: envelope.as_ref().map(|e| e.task_id.to_string()),
            kind: envelope.as_ref().map(|e| e.kind().to_string()),
            resource: envelope.as_ref().map(|e| e.task.resource()),
            reason,
            reason_code: message.attributes.get(ATTR_REASON_CODE).cloned(),
            attempts: record.as_ref().map(|r| r.attempts).or(Some(message.receive_count)),
            first_failure: record
                .as_ref()
                .and_then(|r| r.first_failed_at)
                .or_else(|| attr_time(&message, ATTR_FIRST_FAILED_AT))
                .or_else(|| attr_time(&message, ATTR_FAILED_AT)),
            last_failure: attr_time(&message, ATTR_FAILED_AT)
                .or_else(|| record.as_ref().and_then(|r| r.updated_at))
                .or(message.sent_at),
            source_queue: message.attributes.get(ATTR_SOURCE_QUEUE).cloned(),
            message,
        });
    }
    Ok(letters)
}

fn matches(letter: &DeadLetter, filters: &Filters) -> bool {
    filters.kind.as_ref().is_none_or(|k| letter.kind.as_deref() == Some(k.as_str()))
        && filters.reason.as_ref().is_none_or(|r| letter.reason.to_lowercase().contains(&r.to_lowercase()))
        && filters.since.is_none_or(|since| letter.last_failure.is_some_and(|t| t >= since))
}

fn queues(fleet: &Fleet, name: QueueName) -> anyhow::Result<(Arc<dyn TaskQueue>, Arc<dyn TaskQueue>)> {
    Ok(match name {
        QueueName::Tasks => (fleet.task_dlq()?, fleet.task_queue()?),
        QueueName::Events => (fleet.event_dlq()?, fleet.event_queue()?),
    })
}

fn print_table(letters: &[&DeadLetter]) -> std::io::Result<()> {
    let rows: Vec<Vec<String>> = letters
        .iter()
        .map(|l| {
            vec![
                l.task_id.clone().unwrap_or_else(|| format!("msg {}", &l.message_id[..l.message_id.len().min(12)])),
                l.kind.clone().unwrap_or_else(|| "-".into()),
                l.attempts.map(|a| a.to_string()).unwrap_or_default(),
                l.last_failure.map(|t| t.format("%Y-%m-%d %H:%M").to_string()).unwrap_or_default(),
                l.reason.chars().take(80).collect(),
            ]
        })
        .collect();
    outln!("{}", output::table(&["TASK", "KIND", "ATTEMPTS", "LAST FAILURE", "REASON"], &rows))
}

pub async fn run(fleet: &Fleet, command: Command) -> anyhow::Result<i32> {
    match command {
        Command::List { filters, json } => {
            let (dlq, _) = queues(fleet, filters.queue)?;
            let messages = walk(&dlq).await?;
            let result = describe(fleet, messages.clone()).await;
            release(&dlq, &messages).await;
            let letters = result?;
            let selected: Vec<&DeadLetter> = letters.iter().filter(|l| matches(l, &filters)).collect();
            if json {
                output::json(&selected)?;
            } else {
                print_table(&selected)?;
                eprintln!("{} of {} dead letters match", selected.len(), letters.len());
            }
            Ok(0)
        }
        Command::Replay { filters, max, rate, dry_run, yes, json } => {
            let (dlq, default_source) = queues(fleet, filters.queue)?;
            let messages = walk(&dlq).await?;
            let letters = match describe(fleet, messages.clone()).await {
                Ok(letters) => letters,
                Err(err) => {
                    release(&dlq, &messages).await;
                    return Err(err);
                }
            };
            let mut selected: Vec<&DeadLetter> = letters.iter().filter(|l| matches(l, &filters)).collect();
            if let Some(max) = max {
                selected.truncate(max);
            }
            let unselected: Vec<ReceivedMessage> = letters
                .iter()
                .filter(|l| !selected.iter().any(|s| s.message_id == l.message_id))
                .map(|l| l.message.clone())
                .collect();
            release(&dlq, &unselected).await;
            if dry_run || (selected.len() > CONFIRM_ABOVE && !yes) {
                let chosen: Vec<ReceivedMessage> = selected.iter().map(|l| l.message.clone()).collect();
                release(&dlq, &chosen).await;
                if json {
                    output::json(&serde_json::json!({ "dry_run": true, "would_replay": selected }))?;
                } else {
                    print_table(&selected)?;
                    outln!("dry run: {} message(s) would be replayed; nothing changed", selected.len())?;
                }
                if !dry_run {
                    return Err(backup_core::exit::UsageError::new(format!(
                        "refusing to replay {} messages without --yes (more than {CONFIRM_ABOVE})",
                        selected.len()
                    ))
                    .into());
                }
                return Ok(0);
            }
            // The walk's receipt handles are not used to replay: a long selection could outlive
            // them, and a delete with a stale handle does nothing (the message would then be both
            // replayed and dead-lettered). Each message is received again and replayed at once.
            let chosen: Vec<ReceivedMessage> = selected.iter().map(|l| l.message.clone()).collect();
            release(&dlq, &chosen).await;
            let wanted: BTreeMap<String, &DeadLetter> = selected.iter().map(|l| (l.message_id.clone(), *l)).collect();
            let pause = Duration::from_secs_f64(1.0 / rate.max(0.01));
            let report = replay(fleet, &dlq, &default_source, &wanted, pause, json).await?;
            let replayed: Vec<&DeadLetter> = report.replayed.iter().filter_map(|id| wanted.get(id).copied()).collect();
            if json {
                output::json(&serde_json::json!({
                    "dry_run": false,
                    "replayed": replayed,
                    "skipped": report.skipped,
                    "not_found": report.not_found,
                }))?;
            } else {
                print_table(&replayed)?;
                outln!("replayed {} message(s)", replayed.len())?;
                for (id, why) in &report.skipped {
                    outln!("skipped {id}: {why}")?;
                }
                if !report.not_found.is_empty() {
                    outln!("{} selected message(s) were no longer in the DLQ", report.not_found.len())?;
                }
            }
            // Exit 3 when something selected stayed in the DLQ, so scripts notice.
            Ok(if report.skipped.is_empty() && report.not_found.is_empty() { 0 } else { 3 })
        }
    }
}
