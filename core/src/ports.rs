//! The narrow, domain-named interfaces the fleet needs from AWS. Only `backup-aws` implements them
//! against the SDK; the worker, producer and CLI see nothing but these traits.

use async_trait::async_trait;
use backup_schemas::{LeaseOwner, RunId, TaskId, TaskKind, TaskState};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use std::time::Duration;

use crate::artifacts::{ArchiveRecord, CatalogQuery, CatalogRecord, Verification};
use crate::error::AwsError;
use backup_schemas::ArtifactRef;

/// Message attribute carrying the X-Ray trace header (besides `AWSTraceHeader`), because some SQS
/// implementations drop the system attribute on batch sends.
pub const ATTR_TRACE: &str = "backup-fleet-trace";
/// DLQ attributes set by a worker that dead-letters a message itself.
pub const ATTR_REASON: &str = "backup-fleet-reason";
pub const ATTR_REASON_CODE: &str = "backup-fleet-reason-code";
pub const ATTR_SOURCE_QUEUE: &str = "backup-fleet-source-queue";
pub const ATTR_FAILED_AT: &str = "backup-fleet-failed-at";
pub const ATTR_RECEIVE_COUNT: &str = "backup-fleet-receive-count";
pub const ATTR_FIRST_FAILED_AT: &str = "backup-fleet-first-failed-at";
/// Set by `backupctl dlq replay` on the re-sent message.
pub const ATTR_REPLAYED_AT: &str = "backup-fleet-replayed-at";

/// One message as received from a queue.
#[derive(Clone, Debug, PartialEq)]
pub struct ReceivedMessage {
    pub message_id: String,
    pub receipt_handle: String,
    pub body: String,
    /// SQS ApproximateReceiveCount (1 on first delivery).
    pub receive_count: u32,
    pub sent_at: Option<DateTime<Utc>>,
    pub first_received_at: Option<DateTime<Utc>>,
    /// `AWSTraceHeader` system attribute, when present.
    pub trace_header: Option<String>,
    /// String-valued message attributes.
    pub attributes: BTreeMap<String, String>,
}

/// One message to send.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct OutgoingMessage {
    /// Batch entry id (unique within a batch); also used to report failures.
    pub id: String,
    pub body: String,
    pub delay: Option<Duration>,
    pub trace_header: Option<String>,
    pub attributes: BTreeMap<String, String>,
}

/// Counts of messages in a queue (approximate, as SQS reports them).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueDepth {
    pub visible: u64,
    pub in_flight: u64,
    pub delayed: u64,
}

/// Settings of a queue that the fleet depends on.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueSettings {
    pub visibility_timeout_secs: u32,
    pub max_receive_count: Option<u32>,
    pub dead_letter_target_arn: Option<String>,
    pub retention_secs: u32,
}

/// A batch operation's per-entry failures: (entry id or receipt handle, reason).
pub type BatchFailures = Vec<(String, String)>;

#[async_trait]
pub trait TaskQueue: Send + Sync {
    fn url(&self) -> &str;
    /// Long-poll for up to `max` (≤ 10) messages.
    async fn receive(&self, max: u32, wait: Duration) -> Result<Vec<ReceivedMessage>, AwsError>;
    /// Like `receive`, but the messages stay hidden for `visibility` (not the queue's default):
    /// for work on them that must finish while their receipt handles are still fresh.
    async fn receive_for(
        &self,
        max: u32,
        wait: Duration,
        visibility: Duration,
    ) -> Result<Vec<ReceivedMessage>, AwsError>;
    /// Send messages, in as many calls as SQS's limits need; returns the entries that failed.
    async fn send_batch(&self, messages: &[OutgoingMessage]) -> Result<BatchFailures, AwsError>;
    /// Send one message (keeps `AWSTraceHeader` on every SQS implementation).
    async fn send(&self, message: &OutgoingMessage) -> Result<String, AwsError>;
    /// Delete up to 10 messages by receipt handle; returns the handles that failed.
    async fn delete_batch(&self, receipt_handles: &[String]) -> Result<BatchFailures, AwsError>;
    /// Change the visibility of up to 10 messages; returns the handles that failed.
    async fn change_visibility_batch(&self, entries: &[(String, Duration)]) -> Result<BatchFailures, AwsError>;
    async fn depth(&self) -> Result<QueueDepth, AwsError>;
    async fn settings(&self) -> Result<QueueSettings, AwsError>;
    /// Age of the oldest message, when the implementation can tell (SQS: from CloudWatch only; the
    /// CLI estimates it by peeking).
    async fn peek(&self, max: u32) -> Result<Vec<ReceivedMessage>, AwsError> {
        self.receive(max, Duration::ZERO).await
    }
}

/// Parameters of a claim: the one conditional write that makes a worker the task's owner.
#[derive(Clone, Debug, PartialEq)]
pub struct ClaimRequest {
    pub task_id: TaskId,
    pub run_id: RunId,
    pub kind: TaskKind,
    pub resource: String,
    pub owner: LeaseOwner,
    pub now: DateTime<Utc>,
    pub lease: Duration,
    /// The message's receive count, recorded for operators.
    pub receive_count: u32,
    /// The SQS message the claim comes from: a duplicate message of a leased task can then be
    /// told apart from the holder's own message coming back.
    pub message_id: String,
    /// When the task was first enqueued (the envelope's `created_at`), kept on the item so that
    /// enqueue-to-done latency can be read back.
    pub enqueued_at: DateTime<Utc>,
    /// Delete the item (TTL attribute) this long after it was last written.
    pub retain: Duration,
}

/// What a claim found.
#[derive(Clone, Debug, PartialEq)]
pub enum ClaimOutcome {
    /// We own the task until `lease_until`, with this fencing token.
    Claimed(Lease),
    /// The task already reached a terminal state: the message is a duplicate.
    Finished(TaskState),
    /// Another worker holds a live lease until this instant, through `message_id`.
    LeasedElsewhere { owner: String, until: DateTime<Utc>, message_id: Option<String> },
}

/// A held lease: completing or extending requires owner and fence to match.
#[derive(Clone, Debug, PartialEq)]
pub struct Lease {
    pub task_id: TaskId,
    pub owner: LeaseOwner,
    pub fence: u64,
    pub lease_until: DateTime<Utc>,
    /// How many times the task has been claimed, this claim included.
    pub attempts: u32,
    /// State saved by a previous attempt that parked (e.g. the id of the snapshot it started).
    pub checkpoint: Option<Value>,
    /// The state the task was in before this claim (WAITING means a re-check).
    pub previous_state: Option<TaskState>,
    /// When an earlier attempt last wrote the task (`None`: this is the first claim ever, so no
    /// earlier attempt can have made anything). Anything an earlier attempt created was created
    /// before this instant, which bounds how long an eventually consistent Describe may miss it.
    pub previous_activity: Option<DateTime<Utc>>,
    /// Since when the task has been waiting for capacity without interruption (see
    /// `RetryClass::Capacity`); bounds the wait.
    pub capacity_since: Option<DateTime<Utc>>,
}

/// How a task ends (or pauses), as written by the conditional completion.
#[derive(Clone, Debug, PartialEq)]
pub enum Transition {
    Succeeded {
        result: Value,
    },
    Failed {
        reason: String,
    },
    Dead {
        reason: String,
    },
    /// Parked until `recheck_at` with a checkpoint for the next attempt (`None` keeps no
    /// checkpoint). `capacity` names the quota the task waits for, if that is why it parks.
    Waiting {
        checkpoint: Option<Value>,
        recheck_at: DateTime<Utc>,
        capacity: Option<String>,
    },
    /// Lease given back without finishing (retry, drain).
    Released {
        error: Option<String>,
    },
}

/// What a DLQ replay found when it tried to give a task a fresh attempt budget.
#[derive(Clone, Debug, PartialEq)]
pub enum Reopen {
    /// PENDING again, attempts reset: the replayed message runs it.
    Reopened,
    /// Already SUCCEEDED: nothing reopens it; a replayed message is a harmless duplicate.
    Succeeded,
    /// A worker holds a live lease on it (the dead-lettered message is a stale copy of a task
    /// that is running): reopening would hand the task to a second worker, so it is left alone.
    Leased { owner: String, until: DateTime<Utc> },
    /// No item: the task never ran (or its record expired); the replayed message starts it.
    Unknown,
}

/// A task item as stored.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TaskRecord {
    pub task_id: TaskId,
    pub run_id: Option<RunId>,
    pub kind: Option<String>,
    pub resource: Option<String>,
    pub state: TaskState,
    pub owner: Option<String>,
    pub fence: u64,
    pub lease_until: Option<DateTime<Utc>>,
    pub attempts: u32,
    pub receive_count: Option<u32>,
    pub last_error: Option<String>,
    pub result: Option<Value>,
    pub checkpoint: Option<Value>,
    pub created_at: Option<DateTime<Utc>>,
    pub enqueued_at: Option<DateTime<Utc>>,
    pub updated_at: Option<DateTime<Utc>>,
    pub first_failed_at: Option<DateTime<Utc>>,
    pub replays: u32,
}

/// A run: one expansion of a plan window, an event, or an operator command.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    pub run_id: RunId,
    pub plan: Option<String>,
    pub window: Option<DateTime<Utc>>,
    pub origin: String,
    pub created_at: DateTime<Utc>,
    /// Tasks the expansion enqueued, by kind.
    pub expected: BTreeMap<String, u64>,
}

#[async_trait]
pub trait TaskStore: Send + Sync {
    async fn claim(&self, request: &ClaimRequest) -> Result<ClaimOutcome, AwsError>;
    /// Extend a held lease; `Ok(false)` when the lease was lost (fenced out).
    async fn extend(&self, lease: &Lease, until: DateTime<Utc>) -> Result<bool, AwsError>;
    /// Conditional on owner and fence; `Ok(false)` when the lease was lost.
    async fn transition(&self, lease: &Lease, transition: &Transition, now: DateTime<Utc>) -> Result<bool, AwsError>;
    /// Record DEAD for a task whose retries are exhausted, unconditionally unless it succeeded.
    async fn mark_dead(&self, task_id: &TaskId, reason: &str, now: DateTime<Utc>) -> Result<(), AwsError>;
    async fn get(&self, task_id: &TaskId) -> Result<Option<TaskRecord>, AwsError>;
    /// Re-open a task for a replay: fresh attempt budget, replay mark. Never re-opens SUCCEEDED.
    async fn reopen_for_replay(&self, task_id: &TaskId, now: DateTime<Utc>) -> Result<Reopen, AwsError>;
    /// Makes `to` the task's message in place of `from` (see the worker's message renewal);
    /// `false` when the task's message is no longer `from`.
    async fn replace_message(&self, task_id: &TaskId, from: &str, to: &str) -> Result<bool, AwsError>;
    async fn put_run(&self, run: &RunRecord) -> Result<(), AwsError>;
    async fn get_run(&self, run_id: &RunId) -> Result<Option<RunRecord>, AwsError>;
    async fn list_runs(&self, limit: usize) -> Result<Vec<RunRecord>, AwsError>;
    async fn tasks_of_run(&self, run_id: &RunId) -> Result<Vec<TaskRecord>, AwsError>;
}

/// A fleet event published to the fleet's EventBridge bus (task failed, task dead, backup made).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct FleetEvent {
    pub detail_type: String,
    pub detail: Value,
}

#[async_trait]
pub trait EventPublisher: Send + Sync {
    async fn publish(&self, events: &[FleetEvent]) -> Result<(), AwsError>;
}

/// An EventPublisher that drops everything: used where no bus is configured.
#[derive(Debug, Default)]
pub struct NoEvents;

#[async_trait]
impl EventPublisher for NoEvents {
    async fn publish(&self, _events: &[FleetEvent]) -> Result<(), AwsError> {
        Ok(())
    }
}

/// The catalog of artifacts: one record per artifact, queryable by resource and by expiry.
#[async_trait]
pub trait Catalog: Send + Sync {
    /// Creates the record unless one exists (then it is left untouched: what was learnt about
    /// the artifact since, such as its verification, copies or deletion, must survive a re-run).
    async fn put(&self, record: &CatalogRecord) -> Result<(), AwsError>;
    async fn get(&self, artifact: &ArtifactRef) -> Result<Option<CatalogRecord>, AwsError>;
    /// Records of one resource, newest first.
    async fn by_resource(&self, resource: &str) -> Result<Vec<CatalogRecord>, AwsError>;
    /// Live (not deleted) records whose expiry is before `before`, oldest first.
    async fn expiring_before(&self, before: DateTime<Utc>) -> Result<Vec<CatalogRecord>, AwsError>;
    async fn list(&self, query: &CatalogQuery) -> Result<Vec<CatalogRecord>, AwsError>;
    /// Adds `copy` to the source's list of copies, once.
    async fn add_copy(&self, source: &ArtifactRef, copy: &ArtifactRef) -> Result<(), AwsError>;
    async fn set_verification(&self, artifact: &ArtifactRef, verification: &Verification) -> Result<(), AwsError>;
    async fn mark_deleted(&self, artifact: &ArtifactRef, at: DateTime<Utc>) -> Result<(), AwsError>;
    /// Records the archive decision (replacing an earlier one: an archival request is followed
    /// by its completion).
    async fn set_archive(&self, artifact: &ArtifactRef, archive: &ArchiveRecord) -> Result<(), AwsError>;
}

/// Fleet-wide caps on operations in flight (e.g. at most 20 snapshot copies per destination
/// region, an AWS limit), shared by every worker. Holding a slot is idempotent per holder, so a
/// retried or taken-over task takes the slot it already has, and acquiring again renews it.
///
/// A slot is held until released or until its hold runs out: a holder that vanishes (killed,
/// dead-lettered, failed in a way that skipped its release) gives its slot back on its own, so
/// a leak can delay copies by one hold at most, never stop them.
#[async_trait]
pub trait SlotPool: Send + Sync {
    /// Takes (or renews) a slot of `pool` for `holder` until `hold` from now, unless `limit`
    /// other live holders have one.
    async fn acquire(&self, pool: &str, holder: &TaskId, limit: u32, hold: Duration) -> Result<bool, AwsError>;
    async fn release(&self, pool: &str, holder: &TaskId) -> Result<(), AwsError>;
}

/// A `SlotPool` inside one process (tests, and tools that run tasks without a fleet).
#[derive(Debug, Default)]
pub struct LocalSlots {
    pools: std::sync::Mutex<BTreeMap<String, BTreeMap<TaskId, std::time::Instant>>>,
}

#[async_trait]
impl SlotPool for LocalSlots {
    async fn acquire(&self, pool: &str, holder: &TaskId, limit: u32, hold: Duration) -> Result<bool, AwsError> {
        let mut pools = self.pools.lock().expect("slot pools poisoned");
        let holders = pools.entry(pool.to_owned()).or_default();
        let now = std::time::Instant::now();
        holders.retain(|_, until| *until > now);
        if holders.contains_key(holder) || holders.len() < limit as usize {
            holders.insert(holder.clone(), now + hold);
            return Ok(true);
        }
        Ok(false)
    }

    async fn release(&self, pool: &str, holder: &TaskId) -> Result<(), AwsError> {
        if let Some(holders) = self.pools.lock().expect("slot pools poisoned").get_mut(pool) {
            holders.remove(holder);
        }
        Ok(())
    }
}
