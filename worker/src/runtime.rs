//! The worker loop: long-poll only as many messages as there is free capacity for, claim each
//! task with one conditional write, run it under a heartbeat, and dispose of the message by the
//! outcome's class. On shutdown: stop receiving at once, drain until the deadline, hand back the
//! rest.

use backup_aws::calls::attributed;
use backup_core::backoff::retry_delay;
use backup_core::ports::{
    ClaimOutcome, ClaimRequest, EventPublisher, FleetEvent, Lease, OutgoingMessage, ReceivedMessage, TaskQueue,
    TaskStore, Transition, ATTR_FAILED_AT, ATTR_REASON, ATTR_REASON_CODE, ATTR_RECEIVE_COUNT, ATTR_SOURCE_QUEUE,
};
use backup_core::{ErrorClass, RetryClass, TaskError};
use backup_schemas::{AccountRef, Envelope, LeaseOwner, Origin, Task, TaskState, TraceContext, MAX_MESSAGE_BYTES};
use chrono::Utc;
use serde_json::json;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{info, warn, Instrument};

use crate::acks::Acks;
use crate::handler::{HandlerResult, Handlers, Outcome, TaskContext};
use crate::stats::{Counts, Disposition, Stats};

/// Timing and capacity of the runtime.
#[derive(Clone, Debug)]
pub struct RuntimeConfig {
    pub concurrency: usize,
    pub pollers: usize,
    pub receive_wait: Duration,
    pub visibility_timeout: Duration,
    pub lease: Duration,
    pub heartbeat: Duration,
    pub drain_deadline: Duration,
    pub max_receive_count: u32,
    pub ack_flush: Duration,
    /// How long a poller gathers free slots before a receive (see `poll`).
    pub receive_gather: Duration,
    pub exit_when_idle: Option<Duration>,
    /// How long task items are kept (TTL) after their last write.
    pub task_retention: Duration,
    /// How long a task waiting for capacity parks between looks (jittered up to 1.5x).
    pub capacity_recheck: Duration,
    /// A task that has waited for capacity this long without interruption fails, loudly: a quota
    /// that never frees up (RDS's manual snapshot quota answers like a busy copy queue) must not
    /// turn into a backup that silently never happens.
    pub capacity_wait_limit: Duration,
    /// How long in all an attempt may wait in place for a pending artifact or a full quota whose
    /// next look is due within that time, instead of parking (zero: always park). The time waited
    /// in place does not count towards `capacity_wait_limit`. See `run_holding`.
    pub hold_pending: Duration,
}

/// SQS limits: visibility at most 12 hours, delays at most 15 minutes.
const MAX_VISIBILITY: Duration = Duration::from_secs(12 * 3600);
const MAX_DELAY: Duration = Duration::from_secs(900);

pub struct Worker {
    /// Tasks waiting in place right now (see `run_holding`).
    pub holds: Arc<AtomicUsize>,
    /// Cancelled when the worker stops receiving (SIGTERM, idle exit): from then on nothing waits
    /// in place; a waiting task parks at once with its checkpoint.
    pub stopping: CancellationToken,
    pub queue: Arc<dyn TaskQueue>,
    pub dlq: Arc<dyn TaskQueue>,
    pub store: Arc<dyn TaskStore>,
    pub events: Arc<dyn EventPublisher>,
    pub handlers: Arc<Handlers>,
    pub config: RuntimeConfig,
    pub owner: LeaseOwner,
    pub stats: Arc<Stats>,
}

impl std::fmt::Debug for Worker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Worker").field("owner", &self.owner).field("config", &self.config).finish()
    }
}

/// A fresh lease owner id: host/task plus process id plus randomness, unique per process start.
pub fn new_owner() -> LeaseOwner {
    let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "worker".to_owned());
    LeaseOwner::new(format!("{host}:{}:{:08x}", std::process::id(), rand::random::<u32>()))
}

impl Worker {
    /// Runs until `shutdown` is cancelled (or the idle timeout passes), then drains.
    pub async fn run(self: Arc<Self>, shutdown: CancellationToken) -> Counts {
        let (acks, acks_done) = Acks::spawn(self.queue.clone(), self.config.ack_flush);
        let slots = Arc::new(Semaphore::new(self.config.concurrency));
        let drain = CancellationToken::new();
        let tasks = TaskTracker::new();
        let last_activity = Arc::new(Mutex::new(Instant::now()));

        let pollers = TaskTracker::new();
        for _ in 0..self.config.pollers.max(1) {
            let worker = self.clone();
            let context = PollContext {
                acks: acks.clone(),
                slots: slots.clone(),
                drain: drain.clone(),
                tasks: tasks.clone(),
                shutdown: shutdown.clone(),
                last_activity: last_activity.clone(),
            };
            pollers.spawn(async move { worker.poll(context).await });
        }
        pollers.close();

        if let Some(idle) = self.config.exit_when_idle {
            let (shutdown, tasks, last_activity) = (shutdown.clone(), tasks.clone(), last_activity.clone());
            tokio::spawn(async move {
                loop {
                    tokio::select! {
                        _ = shutdown.cancelled() => return,
                        _ = tokio::time::sleep(Duration::from_millis(200)) => {}
                    }
                    let quiet = last_activity.lock().expect("activity").elapsed();
                    if tasks.is_empty() && quiet >= idle {
                        info!(idle_secs = idle.as_secs(), "no work for the idle timeout; shutting down");
                        shutdown.cancel();
                        return;
                    }
                }
            });
        }

        shutdown.cancelled().await;
        self.stopping.cancel();
        pollers.wait().await;
        info!(
            in_flight = tasks.len(),
            drain_deadline_secs = self.config.drain_deadline.as_secs(),
            "stopped receiving; draining"
        );
        tasks.close();
        if tokio::time::timeout(self.config.drain_deadline, tasks.wait()).await.is_err() {
            warn!(remaining = tasks.len(), "drain deadline reached; handing back unfinished tasks");
            drain.cancel();
            tasks.wait().await;
        }
        drop(acks);
        let _ = acks_done.await;
        self.stats.snapshot()
    }

    async fn poll(self: Arc<Self>, cx: PollContext) {
        loop {
            // Reserve capacity first: receive only as many messages as can start now.
            let first = tokio::select! {
                permit = cx.slots.clone().acquire_owned() => permit.expect("semaphore is never closed"),
                _ = cx.shutdown.cancelled() => return,
            };
            // Gather free slots for a moment before receiving: under load slots free up one at a
            // time, and a receive per slot would cost a ReceiveMessage call per task instead of a
            // tenth of one.
            let mut permits = vec![first];
            let wanted = 10.min(self.config.concurrency.div_ceil(self.config.pollers.max(1))).max(1);
            // Waits on the semaphore, not a timer loop: a saturated worker's pollers would
            // otherwise wake hundreds of times a second for nothing.
            let gather_until = tokio::time::Instant::now() + self.config.receive_gather;
            loop {
                while permits.len() < 10 {
                    match cx.slots.clone().try_acquire_owned() {
                        Ok(permit) => permits.push(permit),
                        Err(_) => break,
                    }
                }
                if permits.len() >= wanted {
                    break;
                }
                tokio::select! {
                    permit = cx.slots.clone().acquire_owned() => permits.push(permit.expect("semaphore is never closed")),
                    _ = tokio::time::sleep_until(gather_until) => break,
                    _ = cx.shutdown.cancelled() => break,
                }
            }
            // An in-flight long poll is not abandoned on shutdown: SQS would still deliver to it,
            // and what it received would stay hidden for a whole visibility timeout. It finishes
            // (within the receive wait), and anything it brought back is handed back at once.
            let received = self.queue.receive(permits.len() as u32, self.config.receive_wait).await;
            if cx.shutdown.is_cancelled() {
                if let Ok(messages) = &received {
                    for message in messages {
                        cx.acks.visibility(&message.receipt_handle, Duration::ZERO);
                    }
                }
                return;
            }
            let messages = match received {
                Ok(messages) => messages,
                Err(err) => {
                    warn!(error = %err, "receive failed; retrying shortly");
                    drop(permits);
                    tokio::select! {
                        _ = tokio::time::sleep(Duration::from_secs(1)) => continue,
                        _ = cx.shutdown.cancelled() => return,
                    }
                }
            };
            if !messages.is_empty() {
                *cx.last_activity.lock().expect("activity") = Instant::now();
                self.stats.received(messages.len());
            }
            for (message, permit) in messages.into_iter().zip(permits.drain(..)) {
                let worker = self.clone();
                let (acks, drain, last_activity) = (cx.acks.clone(), cx.drain.clone(), cx.last_activity.clone());
                cx.tasks.spawn(async move {
                    worker.process(message, &acks, &drain).await;
                    *last_activity.lock().expect("activity") = Instant::now();
                    drop(permit);
                });
            }
        }
    }

    /// Everything that happens to one received message.
    async fn process(&self, message: ReceivedMessage, acks: &Acks, drain: &CancellationToken) {
        let envelope = match Envelope::decode(&message.body) {
            Ok(envelope) => envelope,
            Err(err) => {
                self.dead_letter(&message, err.code(), &err.to_string(), acks).await;
                return;
            }
        };
        let span = tracing::info_span!(
            "task",
            task_id = %envelope.task_id,
            kind = %envelope.kind(),
            resource = %envelope.task.resource(),
            account = %envelope.account_label(),
            run_id = %envelope.run_id,
            receive_count = message.receive_count,
        );
        // One trace per task across all its attempts: the header travels with the message (the
        // AWSTraceHeader attribute, or the envelope when an SQS implementation dropped it).
        let header = message.trace_header.clone().or_else(|| envelope.trace.as_ref().map(|t| t.xray.clone()));
        if let Some(header) = header {
            backup_telemetry::set_parent_from_xray(&span, &header);
        }
        if let Some(trace) = &envelope.trace {
            backup_telemetry::add_links(&span, &trace.links);
        }
        if let Some(sent_at) = message.sent_at {
            let lag = (Utc::now() - sent_at).num_milliseconds() as f64 / 1000.0;
            backup_telemetry::metrics().queue_lag(envelope.kind().as_str(), lag);
        }
        // Calls made for this task (claim, handler, record) are counted under its kind; the batched
        // acknowledgements and children sends, shared by several tasks, are not.
        let kind = envelope.kind().as_str();
        attributed(kind, self.process_envelope(message, envelope, acks, drain).instrument(span)).await;
    }

    async fn process_envelope(
        &self,
        message: ReceivedMessage,
        envelope: Envelope,
        acks: &Acks,
        drain: &CancellationToken,
    ) {
        let kind = envelope.kind().as_str();
        let now = Utc::now();
        if let Some(not_before) = envelope.not_before.filter(|t| *t > now) {
            let wait = (not_before - now).to_std().unwrap_or_default().min(MAX_VISIBILITY);
            acks.visibility(&message.receipt_handle, wait);
            self.stats.record(kind, Disposition::NotYet);
            return;
        }
        let request = ClaimRequest {
            task_id: envelope.task_id.clone(),
            run_id: envelope.run_id.clone(),
            kind: envelope.kind(),
            resource: envelope.task.resource(),
            owner: self.owner.clone(),
            now,
            lease: self.config.lease,
            receive_count: message.receive_count,
            message_id: message.message_id.clone(),
            enqueued_at: envelope.created_at,
            retain: self.config.task_retention,
        };
        let lease = match self.store.claim(&request).await {
            Ok(ClaimOutcome::Claimed(lease)) => lease,
            Ok(ClaimOutcome::Finished(state)) => {
                info!(state = %state, "duplicate delivery of a finished task; deleting without re-running");
                acks.delete(&message.receipt_handle);
                self.stats.record(kind, Disposition::Duplicate);
                return;
            }
            Ok(ClaimOutcome::LeasedElsewhere { owner, message_id: Some(holder), .. })
                if holder != message.message_id =>
            {
                // Another message of the same task, which a live lease is working through. Its
                // holder's own message stays until the task is finished (and comes back for a
                // takeover if the holder dies), so this copy is redundant. Handing it back instead
                // would let a long task's duplicate use up its receives and be dead-lettered.
                info!(%owner, "duplicate message of a task leased elsewhere; deleting it");
                acks.delete(&message.receipt_handle);
                self.stats.record(kind, Disposition::Duplicate);
                return;
            }
            Ok(ClaimOutcome::LeasedElsewhere { owner, until, .. }) => {
                // The holder's own message, back because the holder could not keep it hidden
                // (its receipt handle went stale, or its visibility change failed). Hand it back
                // for as long as the lease lives (plus a margin), so it reappears exactly when a
                // takeover becomes possible. Every such receive counts towards maxReceiveCount,
                // so near the limit a fresh copy takes its place instead: the message of a live
                // task must never be dead-lettered.
                let remaining = (until - now).to_std().unwrap_or_default() + Duration::from_secs(1);
                if message.receive_count + 2 > self.config.max_receive_count {
                    self.renew_holder_message(&message, &envelope, remaining, acks).await;
                } else {
                    info!(%owner, remaining_ms = remaining.as_millis() as u64, "task is leased by another worker; handing back");
                    acks.visibility(&message.receipt_handle, remaining.min(MAX_VISIBILITY));
                }
                self.stats.record(kind, Disposition::LeasedElsewhere);
                return;
            }
            Err(err) => {
                let class = match err.class {
                    ErrorClass::Retry(class) => class,
                    _ => RetryClass::Transient,
                };
                warn!(error = %err, "claim failed; the message will be retried");
                acks.visibility(&message.receipt_handle, retry_delay(class, message.receive_count, None));
                self.stats.record(kind, Disposition::Retried);
                return;
            }
        };
        if lease.previous_state == Some(TaskState::Running) && lease.attempts > 1 {
            info!(fence = lease.fence, "took over a task whose previous lease expired");
            self.stats.takeover();
            backup_telemetry::metrics().takeover();
        }
        // A deadline stops new work, never what exists: only a task that no attempt has touched
        // yet is failed here. A later attempt runs, and its handler adopts (and finishes, or
        // cleans up) what earlier attempts made while refusing to start anything new
        // (`TaskContext::may_start`).
        if let Some(deadline) = envelope.deadline.filter(|d| *d < now) {
            if lease.previous_activity.is_none() {
                let error = TaskError::permanent(format!("deadline {deadline} passed before the task started"));
                self.dispose(&message, &envelope, &lease, Err(error), acks).await;
                return;
            }
        }

        let started = Instant::now();
        let task_cancel = drain.child_token();
        let stop_heartbeat = CancellationToken::new();
        let heartbeat = tokio::spawn(attributed(
            envelope.kind().as_str(),
            heartbeat(
                self.store.clone(),
                lease.clone(),
                message.receipt_handle.clone(),
                acks.clone(),
                self.config.clone(),
                task_cancel.clone(),
                stop_heartbeat.clone(),
            ),
        ));
        let context = TaskContext {
            task_id: envelope.task_id.clone(),
            run_id: envelope.run_id.clone(),
            attempt: lease.attempts,
            checkpoint: lease.checkpoint.clone(),
            cancel: task_cancel.clone(),
            deadline: envelope.deadline,
            previous_activity: lease.previous_activity,
            account: envelope.account.clone(),
        };
        let handlers = self.handlers.clone();
        let task_envelope = envelope.clone();
        let holds = self.holds.clone();
        let stopping = self.stopping.clone();
        let hold = self.config.hold_pending;
        let capacity_recheck = self.config.capacity_recheck;
        let hold_limit = self.config.concurrency.div_ceil(2);
        // The handler runs in its own task so a panic is caught and classified, not fatal.
        let kind = envelope.kind().as_str();
        let mut run = tokio::spawn(attributed(
            kind,
            async move {
                let hold = Hold { limit: hold, capacity_recheck, holds: &holds, most: hold_limit, stopping: &stopping };
                run_holding(&handlers, &task_envelope, context, hold).await
            }
            .in_current_span(),
        ));
        let result: HandlerResult = tokio::select! {
            joined = &mut run => match joined {
                Ok(result) => result,
                Err(err) => Err(TaskError::retry(RetryClass::Transient, format!("handler panicked: {err}"))),
            },
            _ = task_cancel.cancelled() => {
                run.abort();
                Err(TaskError::cancelled("cancelled: drain deadline reached or lease lost"))
            }
        };
        stop_heartbeat.cancel();
        let lease_lost = heartbeat.await.unwrap_or(LeaseEnd::Held);
        self.stats.task_time(started.elapsed().as_millis() as u64);
        let elapsed = started.elapsed();
        match lease_lost {
            LeaseEnd::Held => {}
            LeaseEnd::Lost => {
                warn!("lease lost while running; leaving the task to its new owner");
                self.stats.record(kind, Disposition::LostLease);
                return;
            }
            LeaseEnd::Unconfirmed => {
                // The handler was stopped before the lease could lapse; writing anything now
                // could race the worker that takes over, so the lease is left to expire.
                warn!("lease could not be extended in time; stopped the task and left it to expire");
                self.stats.record(kind, Disposition::LostLease);
                return;
            }
        }
        let outcome = self.dispose(&message, &envelope, &lease, result, acks).await;
        backup_telemetry::metrics().task_finished(envelope.kind().as_str(), outcome.as_str(), elapsed);
    }

    /// Applies the outcome: record first, then acknowledge the message. Returns what happened.
    async fn dispose(
        &self,
        message: &ReceivedMessage,
        envelope: &Envelope,
        lease: &Lease,
        result: HandlerResult,
        acks: &Acks,
    ) -> Disposition {
        let disposition = self.apply_outcome(message, envelope, lease, result, acks).await;
        self.stats.record(envelope.kind().as_str(), disposition);
        disposition
    }

    async fn apply_outcome(
        &self,
        message: &ReceivedMessage,
        envelope: &Envelope,
        lease: &Lease,
        result: HandlerResult,
        acks: &Acks,
    ) -> Disposition {
        let handle = &message.receipt_handle;
        let now = Utc::now();
        // Recording comes first; the message is acknowledged only once the record is written.
        let record = |transition: Transition| async move { self.store.transition(lease, &transition, now).await };
        match result {
            Ok(Outcome::Done { result, children, children_in, events }) => {
                // Children act in their parent's account unless it named another one.
                let children: Vec<(Option<AccountRef>, Task)> =
                    children.into_iter().map(|task| (envelope.account.clone(), task)).chain(children_in).collect();
                if !children.is_empty() {
                    if let Err(err) = self.send_children(envelope, children, acks).await {
                        let error = TaskError::from(err);
                        return Box::pin(self.apply_outcome(message, envelope, lease, Err(error), acks)).await;
                    }
                }
                match record(Transition::Succeeded { result }).await {
                    Ok(true) => {
                        acks.delete(handle);
                        info!(outcome = "succeeded", "task succeeded");
                        self.publish(events).await;
                        Disposition::Succeeded
                    }
                    Ok(false) => self.fenced(),
                    Err(err) => self.coordination_failed(handle, acks, &err, message.receive_count),
                }
            }
            Ok(Outcome::Pending { checkpoint, recheck_after }) => {
                let recheck_at = now + chrono::Duration::from_std(recheck_after).unwrap_or_default();
                match record(Transition::Waiting { checkpoint: Some(checkpoint), recheck_at, capacity: None }).await {
                    Ok(true) => {
                        self.park(message, envelope, recheck_after, acks).await;
                        info!(outcome = "waiting", recheck_secs = recheck_after.as_secs(), "task parked");
                        Disposition::Parked
                    }
                    Ok(false) => self.fenced(),
                    Err(err) => self.coordination_failed(handle, acks, &err, message.receive_count),
                }
            }
            Err(error) if error.is_capacity() => self.wait_for_capacity(message, envelope, lease, error, acks).await,
            Err(error) => match error.class {
                ErrorClass::Retry(_) if message.receive_count >= self.config.max_receive_count => {
                    let reason =
                        format!("retries exhausted after {} receives: {}", message.receive_count, error.reason);
                    match record(Transition::Dead { reason: reason.clone() }).await {
                        Ok(true) => {
                            // Visible again at once: the next receive exceeds maxReceiveCount and
                            // SQS's redrive policy moves the message to the DLQ, body intact.
                            acks.visibility(handle, Duration::ZERO);
                            warn!(outcome = "dead", error = %error, "task is dead; the queue's redrive moves it to the DLQ");
                            self.publish(vec![failure_event("Backup Task Dead", envelope, &reason, lease.attempts)])
                                .await;
                            backup_telemetry::metrics().dlq_move("retries_exhausted");
                            Disposition::Dead
                        }
                        Ok(false) => self.fenced(),
                        Err(err) => self.coordination_failed(handle, acks, &err, message.receive_count),
                    }
                }
                ErrorClass::Retry(class) => {
                    let delay = retry_delay(class, message.receive_count, error.retry_after).min(MAX_VISIBILITY);
                    match record(Transition::Released { error: Some(error.to_string()) }).await {
                        Ok(true) => {
                            acks.visibility(handle, delay);
                            warn!(outcome = "retry", error = %error, delay_secs = delay.as_secs(), "task will be retried");
                            Disposition::Retried
                        }
                        Ok(false) => self.fenced(),
                        Err(err) => self.coordination_failed(handle, acks, &err, message.receive_count),
                    }
                }
                ErrorClass::Permanent => match record(Transition::Failed { reason: error.reason.clone() }).await {
                    Ok(true) => {
                        acks.delete(handle);
                        warn!(outcome = "failed", error = %error, "task failed permanently");
                        self.publish(vec![failure_event(
                            "Backup Task Failed",
                            envelope,
                            &error.reason,
                            lease.attempts,
                        )])
                        .await;
                        Disposition::Failed
                    }
                    Ok(false) => self.fenced(),
                    Err(err) => self.coordination_failed(handle, acks, &err, message.receive_count),
                },
                // Drain: give the lease and the message back so another worker starts at once.
                ErrorClass::Cancelled => match record(Transition::Released { error: None }).await {
                    Ok(true) => {
                        acks.visibility(handle, Duration::ZERO);
                        info!(outcome = "handed_back", "unfinished task handed back");
                        Disposition::HandedBack
                    }
                    Ok(false) => self.fenced(),
                    Err(err) => self.coordination_failed(handle, acks, &err, message.receive_count),
                },
            },
        }
    }

    /// A quota on work in flight is full: park like a pending task (keeping the checkpoint), so
    /// the wait costs no receives, until capacity frees up or the wait limit is reached.
    async fn wait_for_capacity(
        &self,
        message: &ReceivedMessage,
        envelope: &Envelope,
        lease: &Lease,
        error: TaskError,
        acks: &Acks,
    ) -> Disposition {
        let now = Utc::now();
        let since = lease.capacity_since.unwrap_or(now);
        let waited = (now - since).to_std().unwrap_or_default();
        if waited >= self.config.capacity_wait_limit {
            let reason = format!(
                "waited {} for capacity, the limit is {}: {}",
                human_duration(waited),
                human_duration(self.config.capacity_wait_limit),
                error.reason
            );
            let failed = Err(TaskError::permanent(reason));
            return Box::pin(self.apply_outcome(message, envelope, lease, failed, acks)).await;
        }
        let base = error.retry_after.unwrap_or(self.config.capacity_recheck);
        let delay = base.mul_f64(1.0 + rand::random::<f64>() / 2.0).min(MAX_VISIBILITY);
        let recheck_at = now + chrono::Duration::from_std(delay).unwrap_or_default();
        let transition = Transition::Waiting {
            checkpoint: lease.checkpoint.clone(),
            recheck_at,
            capacity: Some(error.reason.clone()),
        };
        match self.store.transition(lease, &transition, now).await {
            Ok(true) => {
                self.park(message, envelope, delay, acks).await;
                info!(outcome = "waiting_for_capacity", reason = %error.reason, recheck_secs = delay.as_secs(), "waiting for capacity");
                Disposition::WaitingForCapacity
            }
            Ok(false) => self.fenced(),
            Err(err) => self.coordination_failed(&message.receipt_handle, acks, &err, message.receive_count),
        }
    }

    /// Parks a message until its re-check. Each receive counts towards maxReceiveCount, so a task
    /// that has been re-checked many times is re-sent as a fresh message (send first, delete
    /// second) instead of being redriven to the DLQ for waiting patiently.
    async fn park(&self, message: &ReceivedMessage, envelope: &Envelope, recheck_after: Duration, acks: &Acks) {
        let near_limit = message.receive_count + 2 > self.config.max_receive_count;
        let held_long = message
            .first_received_at
            .is_some_and(|first| (Utc::now() - first).to_std().unwrap_or_default() + recheck_after > MAX_VISIBILITY);
        if !(near_limit || held_long) {
            acks.visibility(&message.receipt_handle, recheck_after);
            return;
        }
        let fresh = OutgoingMessage {
            id: "0".into(),
            body: message.body.clone(),
            delay: Some(recheck_after.min(MAX_DELAY)),
            trace_header: message.trace_header.clone().or_else(|| envelope.trace.as_ref().map(|t| t.xray.clone())),
            attributes: BTreeMap::new(),
        };
        match self.queue.send(&fresh).await {
            Ok(_) => acks.delete(&message.receipt_handle),
            Err(err) => {
                warn!(error = %err, "could not re-send a parked task; parking by visibility instead");
                acks.visibility(&message.receipt_handle, recheck_after);
            }
        }
    }

    /// Replaces the live holder's message, near its receive limit, with a fresh copy: send the
    /// copy, make it the holder's message on the task item, then delete this one. A crash in
    /// between leaves two messages, one of which the next receiver deletes as a duplicate.
    async fn renew_holder_message(&self, message: &ReceivedMessage, envelope: &Envelope, wait: Duration, acks: &Acks) {
        let fresh = OutgoingMessage {
            id: "0".into(),
            body: message.body.clone(),
            delay: Some(wait.min(MAX_DELAY)),
            trace_header: message.trace_header.clone().or_else(|| envelope.trace.as_ref().map(|t| t.xray.clone())),
            attributes: BTreeMap::new(),
        };
        let fresh_id = match self.queue.send(&fresh).await {
            Ok(id) => id,
            Err(err) => {
                warn!(error = %err, "could not renew the message of a leased task; handing it back instead");
                acks.visibility(&message.receipt_handle, wait.min(MAX_VISIBILITY));
                return;
            }
        };
        match self.store.replace_message(&envelope.task_id, &message.message_id, &fresh_id).await {
            Ok(true) => {
                info!(fresh_message = %fresh_id, "renewed the message of a task leased elsewhere near its receive limit")
            }
            // The task finished or another worker renewed it first: the copy is a harmless
            // duplicate that its receiver deletes.
            Ok(false) => info!("the task's message changed meanwhile; the fresh copy is a duplicate"),
            Err(err) => {
                warn!(error = %err, "could not record the renewed message; keeping the old one");
                acks.visibility(&message.receipt_handle, wait.min(MAX_VISIBILITY));
                return;
            }
        }
        acks.delete(&message.receipt_handle);
    }

    /// Sends the children with those of other tasks finishing meanwhile (one SendMessageBatch
    /// for several tasks); returns once SQS has accepted all of them.
    async fn send_children(
        &self,
        parent: &Envelope,
        children: Vec<(Option<AccountRef>, Task)>,
        acks: &Acks,
    ) -> Result<(), backup_core::AwsError> {
        let now = Utc::now();
        let mut messages = Vec::with_capacity(children.len());
        for (i, (account, task)) in children.into_iter().enumerate() {
            let mut child =
                Envelope::new(task, parent.run_id.clone(), Origin::Parent { task_id: parent.task_id.clone() }, now)
                    .in_account(account);
            // Children continue the parent task's trace and link to the parent span.
            let header =
                backup_telemetry::current_xray_header().or_else(|| parent.trace.as_ref().map(|t| t.xray.clone()));
            child.trace = header.map(|xray| TraceContext { links: vec![xray.clone()], xray });
            let body = child.encode().map_err(|e| backup_core::AwsError {
                service: "sqs",
                operation: "SendMessageBatch",
                code: "MessageTooLong".into(),
                message: e.to_string(),
                class: ErrorClass::Permanent,
            })?;
            messages.push(OutgoingMessage {
                id: i.to_string(),
                body,
                delay: None,
                trace_header: child.trace.as_ref().map(|t| t.xray.clone()),
                attributes: BTreeMap::new(),
            });
        }
        let count = messages.len();
        acks.send(messages).await?;
        self.stats.children(count);
        Ok(())
    }

    /// Moves a message this build cannot run to the DLQ at once: body byte-for-byte, reason in
    /// attributes. Send first, delete second: a crash in between leaves a duplicate in the DLQ,
    /// never a loss.
    async fn dead_letter(&self, message: &ReceivedMessage, code: &str, reason: &str, acks: &Acks) {
        warn!(message_id = %message.message_id, reason_code = code, %reason, "poison message; moving it to the DLQ");
        let mut attributes = BTreeMap::from([
            (ATTR_REASON_CODE.to_owned(), code.to_owned()),
            (ATTR_SOURCE_QUEUE.to_owned(), self.queue.url().to_owned()),
            (ATTR_FAILED_AT.to_owned(), Utc::now().to_rfc3339()),
            (ATTR_RECEIVE_COUNT.to_owned(), message.receive_count.to_string()),
            (ATTR_REASON.to_owned(), truncate(reason, 1024).to_owned()),
        ]);
        // SQS counts attributes in the 256 KiB limit: at the limit, keep the body and drop the
        // attributes rather than lose the message.
        let attribute_bytes: usize = attributes.iter().map(|(k, v)| k.len() + v.len() + 16).sum();
        if message.body.len() + attribute_bytes > MAX_MESSAGE_BYTES {
            attributes.retain(|k, _| k == ATTR_REASON_CODE);
            if message.body.len() + 64 > MAX_MESSAGE_BYTES {
                attributes.clear();
            }
        }
        let outgoing = OutgoingMessage {
            id: "0".into(),
            body: message.body.clone(),
            delay: None,
            trace_header: message.trace_header.clone(),
            attributes,
        };
        match self.dlq.send(&outgoing).await {
            Ok(_) => {
                acks.delete(&message.receipt_handle);
                self.stats.record("unknown", Disposition::Poison);
                backup_telemetry::metrics().dlq_move(code_label(code));
            }
            Err(err) => {
                // Leave it: it comes back, and after maxReceiveCount the redrive moves it anyway.
                warn!(error = %err, "could not move poison message to the DLQ; it will be retried");
                acks.visibility(&message.receipt_handle, Duration::from_secs(5));
            }
        }
    }

    async fn publish(&self, events: Vec<FleetEvent>) {
        if events.is_empty() {
            return;
        }
        if let Err(err) = self.events.publish(&events).await {
            warn!(error = %err, count = events.len(), "could not publish fleet events");
        }
    }

    fn fenced(&self) -> Disposition {
        warn!("completion refused: another worker took the lease (fencing token moved on)");
        Disposition::LostLease
    }

    /// The outcome could not be recorded. Leave the message to reappear after a backoff: if the
    /// write did land, the next claim sees a finished task and deletes the duplicate.
    fn coordination_failed(
        &self,
        handle: &str,
        acks: &Acks,
        err: &backup_core::AwsError,
        receive_count: u32,
    ) -> Disposition {
        let class = match err.class {
            ErrorClass::Retry(class) => class,
            _ => RetryClass::Transient,
        };
        warn!(error = %err, "could not record the task outcome; it will be retried");
        acks.visibility(handle, retry_delay(class, receive_count, None));
        Disposition::Retried
    }
}

struct PollContext {
    acks: Acks,
    slots: Arc<Semaphore>,
    drain: CancellationToken,
    tasks: TaskTracker,
    shutdown: CancellationToken,
    last_activity: Arc<Mutex<Instant>>,
}

/// Runs the handler; while it reports a pending artifact whose re-check is due within what is
/// left of `hold`, waits in place and runs it again from the new checkpoint. Parking costs a
/// Waiting write, a visibility change, a receive and a claim per re-check; waiting in place costs
/// a slot, which is why at most `limit` tasks of this process hold at once (the rest park).
/// The lease and the message stay extended by the heartbeat meanwhile. A crash while holding
/// loses only the checkpoint, as a crash mid-run does: the next attempt adopts what this one
/// started by its task-id tag. Cancellation (drain, lost lease) ends the wait at once and parks.
///
/// A full quota (`RetryClass::Capacity`: a copy pool, AWS's pending-snapshot limit) is waited for
/// the same way, looking again after `capacity_recheck` (or the error's own delay), jittered
/// like a parked wait: each look is one slot or quota check instead of a park and a claim.
async fn run_holding(
    handlers: &Handlers,
    envelope: &Envelope,
    mut context: TaskContext,
    hold: Hold<'_>,
) -> HandlerResult {
    let started = Instant::now();
    loop {
        let result = handlers.dispatch(envelope, &context).await;
        let (wait, checkpoint) = match &result {
            Ok(Outcome::Pending { checkpoint, recheck_after }) => (*recheck_after, Some(checkpoint.clone())),
            Err(error) if error.is_capacity() => {
                let base = error.retry_after.unwrap_or(hold.capacity_recheck);
                (base.mul_f64(1.0 + rand::random::<f64>() / 2.0), None)
            }
            _ => return result,
        };
        if started.elapsed() + wait > hold.limit || context.cancel.is_cancelled() || hold.stopping.is_cancelled() {
            return result;
        }
        let Some(_holding) = Holding::take(hold.holds, hold.most) else { return result };
        let waited = tokio::select! {
            waited = context.sleep(wait) => waited.is_ok(),
            _ = hold.stopping.cancelled() => false,
        };
        if !waited {
            return result;
        }
        if let Some(checkpoint) = checkpoint {
            context.checkpoint = Some(checkpoint);
        }
    }
}

/// What `run_holding` may wait for, and the process's count of waiting tasks.
struct Hold<'a> {
    /// The longest an attempt waits in place, in all.
    limit: Duration,
    /// Between looks at a full quota that gave no delay of its own.
    capacity_recheck: Duration,
    holds: &'a AtomicUsize,
    /// Tasks of this process that may wait in place at once.
    most: usize,
    stopping: &'a CancellationToken,
}

/// One of the process's holds; given back when dropped, also when the task is aborted mid-wait.
struct Holding<'a>(&'a AtomicUsize);

impl<'a> Holding<'a> {
    fn take(holds: &'a AtomicUsize, limit: usize) -> Option<Self> {
        holds
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| (n < limit).then_some(n + 1))
            .ok()
            .map(|_| Self(holds))
    }
}

impl Drop for Holding<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// How a task's lease ended, as the heartbeat saw it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum LeaseEnd {
    /// Held throughout: the outcome may be recorded.
    Held,
    /// Another worker took it (the fencing token moved on).
    Lost,
    /// No extension succeeded for so long that the lease may have lapsed: the task was stopped.
    Unconfirmed,
}

/// Extends the lease and the message visibility every interval until stopped.
///
/// The lease is the authority on who runs a task, and it is only as good as its last successful
/// extension: when extensions keep failing, the handler is cancelled one heartbeat interval
/// before the last extension runs out. That interval is the clock-skew margin the lease relies
/// on: another worker decides expiry with its own clock, so clocks must agree to within one
/// heartbeat (20 s by default; NTP-synced hosts agree to milliseconds).
///
/// Visibility is extended too, and its result is checked: when the receipt handle went stale
/// (the message became visible and another worker received it), extending it is pointless and
/// is stopped; the lease still protects the task, and the other receiver keeps the message
/// alive for a takeover (see `renew_holder_message`).
async fn heartbeat(
    store: Arc<dyn TaskStore>,
    lease: Lease,
    receipt_handle: String,
    acks: Acks,
    config: RuntimeConfig,
    task_cancel: CancellationToken,
    stop: CancellationToken,
) -> LeaseEnd {
    let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + config.heartbeat, config.heartbeat);
    let margin = config.heartbeat.min(config.lease / 2);
    let mut confirmed_until = tokio::time::Instant::now() + config.lease.saturating_sub(margin);
    let mut handle_stale = false;
    loop {
        tokio::select! {
            _ = stop.cancelled() => return LeaseEnd::Held,
            _ = tokio::time::sleep_until(confirmed_until) => {
                warn!(lease_secs = config.lease.as_secs(), "no lease extension succeeded in time; stopping the task");
                task_cancel.cancel();
                return LeaseEnd::Unconfirmed;
            }
            _ = ticks.tick() => {}
        }
        let attempted = tokio::time::Instant::now();
        let until = Utc::now() + chrono::Duration::from_std(config.lease).unwrap_or_default();
        match store.extend(&lease, until).await {
            Ok(true) => {
                confirmed_until = attempted + config.lease.saturating_sub(margin);
                if !handle_stale {
                    let answer = acks.visibility_checked(&receipt_handle, config.visibility_timeout);
                    if let Ok(Some(code)) = answer.await {
                        handle_stale = true;
                        backup_telemetry::metrics().stale_receipt_handle();
                        warn!(%code, "the message's receipt handle went stale (it was received again elsewhere); the lease still holds the task");
                    }
                }
            }
            Ok(false) => {
                task_cancel.cancel();
                return LeaseEnd::Lost;
            }
            Err(err) => warn!(error = %err, "heartbeat failed; retrying at the next interval"),
        }
    }
}

/// `90 s`, `15 min`, `26 h`: for reasons an operator reads.
fn human_duration(duration: Duration) -> String {
    let secs = duration.as_secs();
    if secs < 120 {
        format!("{secs} s")
    } else if secs < 2 * 3600 {
        format!("{} min", secs / 60)
    } else {
        format!("{} h", secs / 3600)
    }
}

fn failure_event(detail_type: &str, envelope: &Envelope, reason: &str, attempts: u32) -> FleetEvent {
    FleetEvent {
        detail_type: detail_type.to_owned(),
        detail: json!({
            "task_id": envelope.task_id,
            "run_id": envelope.run_id,
            "kind": envelope.kind(),
            "resource": envelope.task.resource(),
            "reason": reason,
            "attempts": attempts,
        }),
    }
}

/// Bounded metric label for a poison reason code.
fn code_label(code: &str) -> &'static str {
    const CODES: [&str; 10] = [
        "too_large",
        "not_json",
        "not_an_object",
        "missing_version",
        "unsupported_version",
        "missing_kind",
        "unknown_kind",
        "invalid_params",
        "invalid_envelope",
        "id_mismatch",
    ];
    CODES.into_iter().find(|c| *c == code).unwrap_or("other")
}

fn truncate(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}
