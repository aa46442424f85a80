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
    /// Extends the slot of a holder with work in flight (`acquire` again, by default). Unlike a
    /// first `acquire` it is never answered from a process's memory of a full pool: the holder
    /// may well have a slot of its own there.
    async fn renew(&self, pool: &str, holder: &TaskId, limit: u32, hold: Duration) -> Result<bool, AwsError> {
        self.acquire(pool, holder, limit, hold).await
    }
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

/// A process-local gate in front of a fleet-wide `SlotPool`. A worker may have dozens of tasks
/// waiting for one full pool, and each look at the fleet-wide pool is a conditional write that
/// fails; the gate lets one look per `full_for` answer for all of them:
///
/// - a pool this process saw full less than `full_for` ago is answered "full" without a call,
///   unless a task of this process gave a slot back since (then the next look is real);
/// - a renewal within `full_for` of this process's last take or renewal of that hold is
///   answered "held" without a call: a pending copy re-checked every second renews its slot
///   every `full_for` instead (a first `acquire` always asks the pool);
/// - a holder that was refused here and took nothing since has nothing to give back: its
///   release (a waiting task settles its slot on every attempt) costs no call.
///
/// The fleet-wide pool stays the only authority: a slot is never granted here that the pool did
/// not grant, so the cap holds. What the gate costs is latency only: a slot freed by another
/// worker is noticed up to `full_for` later by this one. A holder refused from memory that in
/// fact kept a slot from a crashed attempt keeps it until its hold runs out, as without the gate.
pub struct GatedSlots {
    inner: std::sync::Arc<dyn SlotPool>,
    full_for: Duration,
    state: std::sync::Mutex<GateState>,
}

#[derive(Default)]
struct GateState {
    /// When each pool was last seen full.
    full_since: BTreeMap<String, std::time::Instant>,
    /// What this process last learnt of a holder's slot.
    holders: BTreeMap<(String, TaskId), Known>,
}

#[derive(Clone, Copy)]
enum Known {
    /// Taken or renewed here; the hold runs until then.
    Held(std::time::Instant),
    /// Refused here (then), and nothing taken since.
    Refused(std::time::Instant),
}

/// How long a refusal is remembered for a holder that never releases here (it moved to another
/// worker): afterwards its release reaches the pool, which is harmless.
const REFUSALS_KEPT: Duration = Duration::from_secs(3600);

impl GatedSlots {
    pub fn new(inner: std::sync::Arc<dyn SlotPool>, full_for: Duration) -> Self {
        Self { inner, full_for, state: std::sync::Mutex::default() }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, GateState> {
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    async fn take(
        &self,
        pool: &str,
        holder: &TaskId,
        limit: u32,
        hold: Duration,
        renewal: bool,
    ) -> Result<bool, AwsError> {
        let key = (pool.to_owned(), holder.clone());
        {
            let now = std::time::Instant::now();
            let mut state = self.state();
            state.holders.retain(|_, known| match known {
                Known::Held(until) => *until > now,
                Known::Refused(at) => now.duration_since(*at) < REFUSALS_KEPT,
            });
            match state.holders.get(&key) {
                // Taken or renewed here less than `full_for` ago: still held.
                Some(Known::Held(until)) if renewal && *until + self.full_for > now + hold => return Ok(true),
                Some(Known::Held(_)) => {}
                _ if !renewal
                    && state.full_since.get(pool).is_some_and(|seen| now.duration_since(*seen) < self.full_for) =>
                {
                    state.holders.insert(key, Known::Refused(now));
                    return Ok(false);
                }
                _ => {}
            }
        }
        let asked = std::time::Instant::now();
        let answer = if renewal {
            self.inner.renew(pool, holder, limit, hold).await
        } else {
            self.inner.acquire(pool, holder, limit, hold).await
        };
        let mut state = self.state();
        match answer {
            Ok(true) => {
                state.holders.insert(key, Known::Held(asked + hold));
            }
            Ok(false) => {
                state.holders.insert(key, Known::Refused(asked));
                state.full_since.insert(pool.to_owned(), asked);
            }
            // The write may have landed all the same: forget what was known, so that a release
            // reaches the pool.
            Err(_) => {
                state.holders.remove(&key);
            }
        }
        answer
    }
}

#[async_trait]
impl SlotPool for GatedSlots {
    async fn acquire(&self, pool: &str, holder: &TaskId, limit: u32, hold: Duration) -> Result<bool, AwsError> {
        self.take(pool, holder, limit, hold, false).await
    }

    async fn renew(&self, pool: &str, holder: &TaskId, limit: u32, hold: Duration) -> Result<bool, AwsError> {
        self.take(pool, holder, limit, hold, true).await
    }

    async fn release(&self, pool: &str, holder: &TaskId) -> Result<(), AwsError> {
        {
            let mut state = self.state();
            if let Some(Known::Refused(_)) = state.holders.remove(&(pool.to_owned(), holder.clone())) {
                return Ok(());
            }
            // A slot may just have come free: the next waiter of this process looks for real.
            state.full_since.remove(pool);
        }
        self.inner.release(pool, holder).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    /// Counts the looks that reach the pool behind the gate.
    #[derive(Default)]
    struct Counted {
        pool: LocalSlots,
        looks: AtomicUsize,
        releases: AtomicUsize,
    }

    #[async_trait]
    impl SlotPool for Counted {
        async fn acquire(&self, pool: &str, holder: &TaskId, limit: u32, hold: Duration) -> Result<bool, AwsError> {
            self.looks.fetch_add(1, Ordering::SeqCst);
            self.pool.acquire(pool, holder, limit, hold).await
        }

        async fn release(&self, pool: &str, holder: &TaskId) -> Result<(), AwsError> {
            self.releases.fetch_add(1, Ordering::SeqCst);
            self.pool.release(pool, holder).await
        }
    }

    fn id(n: usize) -> TaskId {
        TaskId::new(format!("t-{n}"))
    }

    #[tokio::test]
    async fn waiters_of_one_process_share_a_look_at_a_full_pool_and_a_local_release_reopens_it() {
        let inner = Arc::new(Counted::default());
        let gate = GatedSlots::new(inner.clone(), Duration::from_millis(100));
        let hold = Duration::from_secs(600);
        let looks = || inner.looks.load(Ordering::SeqCst);
        assert!(gate.acquire("p", &id(0), 1, hold).await.unwrap());
        for waiter in 1..=10 {
            assert!(!gate.acquire("p", &id(waiter), 1, hold).await.unwrap(), "the pool is full");
        }
        assert_eq!(looks(), 2, "one look took the slot, one saw the pool full");

        // Freed elsewhere (another worker's holder): seen by the first real look after `full_for`.
        inner.pool.release("p", &id(0)).await.unwrap();
        assert!(!gate.acquire("p", &id(1), 1, hold).await.unwrap(), "answered from the memo");
        assert_eq!(looks(), 2);
        std::thread::sleep(Duration::from_millis(120));
        assert!(gate.acquire("p", &id(1), 1, hold).await.unwrap(), "a real look finds the free slot");
        assert_eq!(looks(), 3);

        // Freed here: the next waiter looks at once.
        assert!(!gate.acquire("p", &id(2), 1, hold).await.unwrap());
        gate.release("p", &id(1)).await.unwrap();
        assert!(gate.acquire("p", &id(2), 1, hold).await.unwrap(), "a local release lets the next waiter look");
        assert_eq!(looks(), 5);
    }

    #[tokio::test]
    async fn a_refused_holder_gives_nothing_back_and_a_renewal_always_asks_the_pool() {
        let inner = Arc::new(Counted::default());
        let gate = GatedSlots::new(inner.clone(), Duration::from_secs(60));
        let hold = Duration::from_secs(600);
        // Another process's holder has the pool's one slot.
        assert!(inner.pool.acquire("p", &id(0), 1, hold).await.unwrap());
        assert!(!gate.acquire("p", &id(1), 1, hold).await.unwrap(), "refused by the pool");
        assert!(!gate.acquire("p", &id(2), 1, hold).await.unwrap(), "refused from memory");
        for refused in [1, 2] {
            gate.release("p", &id(refused)).await.unwrap();
        }
        assert_eq!(inner.releases.load(Ordering::SeqCst), 0, "a refused holder holds nothing to release");
        let looks = inner.looks.load(Ordering::SeqCst);
        assert!(!gate.acquire("p", &id(3), 1, hold).await.unwrap(), "those releases freed nothing");
        assert_eq!(inner.looks.load(Ordering::SeqCst), looks, "and did not reopen the pool");

        // A copy in flight that took its slot on another worker renews it here: the pool is asked.
        assert!(gate.renew("p", &id(0), 1, hold).await.unwrap(), "its slot is renewed, not refused");
        gate.release("p", &id(0)).await.unwrap();
        assert_eq!(inner.releases.load(Ordering::SeqCst), 1, "a holder's release reaches the pool");
        assert!(gate.acquire("p", &id(3), 1, hold).await.unwrap(), "and the next waiter takes the slot");
    }

    #[tokio::test]
    async fn a_holder_renews_through_the_pool_at_most_once_per_full_for() {
        let inner = Arc::new(Counted::default());
        let gate = GatedSlots::new(inner.clone(), Duration::from_millis(100));
        let hold = Duration::from_millis(200);
        assert!(gate.acquire("p", &id(0), 1, hold).await.unwrap());
        assert!(gate.renew("p", &id(0), 1, hold).await.unwrap(), "a renewal just after the take");
        assert_eq!(inner.looks.load(Ordering::SeqCst), 1, "answered by the gate");
        assert!(gate.acquire("p", &id(0), 1, hold).await.unwrap(), "a first take of an attempt");
        assert_eq!(inner.looks.load(Ordering::SeqCst), 2, "always asks the pool");
        std::thread::sleep(Duration::from_millis(120));
        assert!(gate.renew("p", &id(0), 1, hold).await.unwrap(), "a renewal after full_for");
        assert_eq!(inner.looks.load(Ordering::SeqCst), 3, "renewed in the pool");
        // Without the renewal the pool's hold would run out and another holder could take it.
        std::thread::sleep(Duration::from_millis(120));
        assert!(!inner.pool.acquire("p", &id(9), 1, hold).await.unwrap(), "the renewed hold still runs");
    }
}
