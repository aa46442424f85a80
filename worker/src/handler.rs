//! The task handler contract: what a handler gets (`TaskContext`), what it returns (`Outcome` or a
//! classified `TaskError`), and the one exhaustive dispatch from `Task` to handler.

use async_trait::async_trait;
use backup_core::ports::FleetEvent;
use backup_core::TaskError;
use backup_schemas::{AccountRef, Envelope, RunId, Task, TaskId};
use chrono::{DateTime, Utc};
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

use crate::handlers::canary::CanaryHandler;
use crate::handlers::services::Services;

/// What a handler knows about the task it runs.
#[derive(Clone, Debug)]
pub struct TaskContext {
    pub task_id: TaskId,
    pub run_id: RunId,
    /// Claims of this task so far, this one included (1 on the first run).
    pub attempt: u32,
    /// State saved by the previous attempt when it parked: lets a re-check find the artifact it
    /// started instead of starting another.
    pub checkpoint: Option<Value>,
    /// Cancelled on drain deadline or when the lease is lost: stop and return `cancelled`.
    pub cancel: CancellationToken,
    /// The task's deadline: past it, nothing new may start (`may_start`), but what earlier
    /// attempts started is still finished, catalogued or cleaned up.
    pub deadline: Option<DateTime<Utc>>,
    /// When an earlier attempt last wrote the task; `None` on the first claim ever, when no
    /// earlier attempt can have created anything (see `Lease::previous_activity`).
    pub previous_activity: Option<DateTime<Utc>>,
    /// The account the task acts in (`None`: the fleet's own).
    pub account: Option<AccountRef>,
}

impl TaskContext {
    /// The task's account for logs, tags and records: its id, or `self` for the fleet's own.
    pub fn account_label(&self) -> &str {
        backup_core::accounts::account_label(self.account.as_ref().map(|a| a.account_id.as_str()))
    }

    /// Refuses to start `what` (a snapshot, a copy, a restore) once the deadline has passed.
    pub fn may_start(&self, what: &str) -> Result<(), TaskError> {
        match self.deadline {
            Some(deadline) if Utc::now() > deadline => Err(TaskError::permanent(format!(
                "deadline {} passed before {what} could start",
                deadline.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
            ))),
            _ => Ok(()),
        }
    }

    /// Whether the deadline has passed (work in progress is wound down, not abandoned).
    pub fn past_deadline(&self) -> bool {
        self.deadline.is_some_and(|deadline| Utc::now() > deadline)
    }

    /// Sleeps unless cancelled first.
    pub async fn sleep(&self, duration: Duration) -> Result<(), TaskError> {
        tokio::select! {
            _ = tokio::time::sleep(duration) => Ok(()),
            _ = self.cancel.cancelled() => Err(TaskError::cancelled("cancelled while sleeping")),
        }
    }
}

/// How a task run ended, when it did not fail.
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    /// Finished: record `result`, send `children` first (fan-out, next steps of a chain; they
    /// act in the task's own account) and `children_in` (each in the account it names, `None`
    /// being the fleet's own), then publish `events`.
    Done { result: Value, children: Vec<Task>, children_in: Vec<(Option<AccountRef>, Task)>, events: Vec<FleetEvent> },
    /// Started something long (a snapshot): park the task and re-check after the delay, without
    /// repeating the side effect (the checkpoint says what was started).
    Pending { checkpoint: Value, recheck_after: Duration },
}

impl Outcome {
    pub fn done(result: Value) -> Self {
        Outcome::Done { result, children: Vec::new(), children_in: Vec::new(), events: Vec::new() }
    }

    pub fn with_children(self, more: impl IntoIterator<Item = Task>) -> Self {
        match self {
            Outcome::Done { result, mut children, children_in, events } => {
                children.extend(more);
                Outcome::Done { result, children, children_in, events }
            }
            pending => pending,
        }
    }

    /// Children that act in `account` (`None`: the fleet's own) whatever the task's account.
    pub fn with_children_in(self, account: Option<&AccountRef>, more: impl IntoIterator<Item = Task>) -> Self {
        match self {
            Outcome::Done { result, children, mut children_in, events } => {
                children_in.extend(more.into_iter().map(|task| (account.cloned(), task)));
                Outcome::Done { result, children, children_in, events }
            }
            pending => pending,
        }
    }

    pub fn with_events(self, more: impl IntoIterator<Item = FleetEvent>) -> Self {
        match self {
            Outcome::Done { result, children, children_in, mut events } => {
                events.extend(more);
                Outcome::Done { result, children, children_in, events }
            }
            pending => pending,
        }
    }
}

pub type HandlerResult = Result<Outcome, TaskError>;

/// One operation on one resource. Implementations must be idempotent per task id: a re-run after
/// a crash, a duplicate delivery or a takeover must find what an earlier run made.
#[async_trait]
pub trait Handler<P>: Send + Sync {
    async fn run(&self, params: &P, ctx: &TaskContext) -> HandlerResult;
}

/// The handlers of every task kind. `services` is absent in a canary-only worker (tests of the
/// runtime), where every backup kind fails permanently with a clear reason.
pub struct Handlers {
    pub canary: CanaryHandler,
    /// The services of the fleet's own account (its catalog view holds that account's records).
    pub services: Option<Arc<Services>>,
}

impl std::fmt::Debug for Handlers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Handlers").field("services", &self.services.is_some()).finish()
    }
}

impl Handlers {
    pub fn canary_only() -> Self {
        Self { canary: CanaryHandler, services: None }
    }

    pub fn with_services(services: Services) -> Self {
        Self { canary: CanaryHandler, services: Some(Arc::new(services.in_own_account())) }
    }

    /// The services acting in the task's account.
    async fn services_for(&self, envelope: &Envelope) -> Result<Arc<Services>, TaskError> {
        let own = self.services.as_ref().ok_or_else(|| {
            TaskError::permanent(format!("this worker runs canaries only and cannot run {}", envelope.kind()))
        })?;
        match &envelope.account {
            None => Ok(own.clone()),
            Some(account) => Ok(Arc::new(own.in_account(account).await?)),
        }
    }

    /// The one exhaustive dispatch: a new task kind does not compile until it is handled here.
    pub async fn dispatch(&self, envelope: &Envelope, ctx: &TaskContext) -> HandlerResult {
        let task = &envelope.task;
        if let Task::Canary(p) = task {
            return self.canary.run(p, ctx).await;
        }
        let services = self.services_for(envelope).await?;
        let services = services.as_ref();
        let outcome = match task {
            Task::Canary(p) => self.canary.run(p, ctx).await,
            Task::SnapshotVolume(p) => services.run(p, ctx).await,
            Task::SnapshotInstance(p) => services.run(p, ctx).await,
            Task::CreateAmi(p) => services.run(p, ctx).await,
            Task::CopySnapshot(p) => services.run(p, ctx).await,
            Task::CopyAmi(p) => services.run(p, ctx).await,
            Task::SnapshotDbInstance(p) => services.run(p, ctx).await,
            Task::SnapshotDbCluster(p) => services.run(p, ctx).await,
            Task::CopyDbSnapshot(p) => services.copy_db_snapshot(p, false, ctx).await,
            Task::CopyDbClusterSnapshot(p) => services.copy_db_snapshot(p, true, ctx).await,
            Task::ScanBucket(p) => services.run(p, ctx).await,
            Task::CopyObjects(p) => services.run(p, ctx).await,
            Task::CopyObject(p) => services.run(p, ctx).await,
            Task::Prune(p) => services.run(p, ctx).await,
            Task::DeleteArtifact(p) => services.run(p, ctx).await,
            Task::Verify(p) => services.run(p, ctx).await,
            Task::ArchiveSnapshot(p) => services.run(p, ctx).await,
            Task::ExportSnapshot(p) => services.run(p, ctx).await,
            Task::DumpDatabase(p) => services.run(p, ctx).await,
            Task::RestoreVolume(p) => services.run(p, ctx).await,
            Task::RestoreInstance(p) => services.run(p, ctx).await,
            Task::RestoreDbInstance(p) => services.run(p, ctx).await,
            Task::RestoreDbCluster(p) => services.run(p, ctx).await,
            Task::RestoreObjects(p) => services.run(p, ctx).await,
            Task::RestoreDrill(p) => services.run(p, ctx).await,
        }?;
        Ok(match task {
            Task::Prune(_) => outcome,
            _ => fold_prunes(services, outcome, ctx).await,
        })
    }
}

/// Runs the retention prunes a finished backup or copy asks for inside that task, instead of as
/// tasks of their own. A prune is read-only until it decides (its deletions are tasks of their
/// own, one per backup) and idempotent, so it needs no lease of its own: folding it saves its
/// claim and completion writes and its share of a send, a receive and a delete. A prune that
/// fails here is sent as its own task, as before, so that its retries never repeat the backup.
/// Only prunes in the task's own account are folded (`children`); a copy's prune in a backup
/// account (`children_in`) stays a task, run with that account's role.
async fn fold_prunes(services: &Services, outcome: Outcome, ctx: &TaskContext) -> Outcome {
    let Outcome::Done { mut result, children, mut children_in, mut events } = outcome else { return outcome };
    if !children.iter().any(|child| matches!(child, Task::Prune(_))) {
        return Outcome::Done { result, children, children_in, events };
    }
    let mut kept = Vec::with_capacity(children.len());
    let mut pruned = Vec::new();
    for child in children {
        let Task::Prune(prune) = &child else {
            kept.push(child);
            continue;
        };
        match services.run(prune, ctx).await {
            Ok(Outcome::Done { result, children, children_in: elsewhere, events: more }) => {
                pruned.push(result);
                kept.extend(children);
                children_in.extend(elsewhere);
                events.extend(more);
            }
            Ok(Outcome::Pending { .. }) => kept.push(child),
            Err(err) => {
                tracing::warn!(resource = %prune.resource, region = %prune.region, error = %err, "the prune failed inside the task; sending it as a task of its own");
                kept.push(child);
            }
        }
    }
    if let Some(fields) = result.as_object_mut() {
        if !pruned.is_empty() {
            fields.insert("pruned".to_owned(), Value::Array(pruned));
        }
    }
    Outcome::Done { result, children: kept, children_in, events }
}
