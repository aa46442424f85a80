//! The task handler contract: what a handler gets (`TaskContext`), what it returns (`Outcome` or a
//! classified `TaskError`), and the one exhaustive dispatch from `Task` to handler.

use async_trait::async_trait;
use backup_core::ports::FleetEvent;
use backup_core::TaskError;
use backup_schemas::{Envelope, RunId, Task, TaskId};
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
}

impl TaskContext {
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
    /// Finished: record `result`, send `children` first (fan-out, next steps of a chain), then
    /// publish `events`.
    Done { result: Value, children: Vec<Task>, events: Vec<FleetEvent> },
    /// Started something long (a snapshot): park the task and re-check after the delay, without
    /// repeating the side effect (the checkpoint says what was started).
    Pending { checkpoint: Value, recheck_after: Duration },
}

impl Outcome {
    pub fn done(result: Value) -> Self {
        Outcome::Done { result, children: Vec::new(), events: Vec::new() }
    }

    pub fn with_children(self, more: impl IntoIterator<Item = Task>) -> Self {
        match self {
            Outcome::Done { result, mut children, events } => {
                children.extend(more);
                Outcome::Done { result, children, events }
            }
            pending => pending,
        }
    }

    pub fn with_events(self, more: impl IntoIterator<Item = FleetEvent>) -> Self {
        match self {
            Outcome::Done { result, children, mut events } => {
                events.extend(more);
                Outcome::Done { result, children, events }
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
        Self { canary: CanaryHandler, services: Some(Arc::new(services)) }
    }

    fn services(&self, task: &Task) -> Result<&Services, TaskError> {
        self.services.as_deref().ok_or_else(|| {
            TaskError::permanent(format!("this worker runs canaries only and cannot run {}", task.kind()))
        })
    }

    /// The one exhaustive dispatch: a new task kind does not compile until it is handled here.
    pub async fn dispatch(&self, envelope: &Envelope, ctx: &TaskContext) -> HandlerResult {
        let task = &envelope.task;
        match task {
            Task::Canary(p) => self.canary.run(p, ctx).await,
            Task::SnapshotVolume(p) => self.services(task)?.run(p, ctx).await,
            Task::SnapshotInstance(p) => self.services(task)?.run(p, ctx).await,
            Task::CreateAmi(p) => self.services(task)?.run(p, ctx).await,
            Task::CopySnapshot(p) => self.services(task)?.run(p, ctx).await,
            Task::CopyAmi(p) => self.services(task)?.run(p, ctx).await,
            Task::SnapshotDbInstance(p) => self.services(task)?.run(p, ctx).await,
            Task::SnapshotDbCluster(p) => self.services(task)?.run(p, ctx).await,
            Task::CopyDbSnapshot(p) => self.services(task)?.copy_db_snapshot(p, false, ctx).await,
            Task::CopyDbClusterSnapshot(p) => self.services(task)?.copy_db_snapshot(p, true, ctx).await,
            Task::ScanBucket(p) => self.services(task)?.run(p, ctx).await,
            Task::CopyObjects(p) => self.services(task)?.run(p, ctx).await,
            Task::CopyObject(p) => self.services(task)?.run(p, ctx).await,
            Task::Prune(p) => self.services(task)?.run(p, ctx).await,
            Task::DeleteArtifact(p) => self.services(task)?.run(p, ctx).await,
            Task::Verify(p) => self.services(task)?.run(p, ctx).await,
            Task::ArchiveSnapshot(p) => self.services(task)?.run(p, ctx).await,
            Task::ExportSnapshot(p) => self.services(task)?.run(p, ctx).await,
            Task::DumpDatabase(p) => self.services(task)?.run(p, ctx).await,
            Task::RestoreVolume(p) => self.services(task)?.run(p, ctx).await,
            Task::RestoreInstance(p) => self.services(task)?.run(p, ctx).await,
            Task::RestoreDbInstance(p) => self.services(task)?.run(p, ctx).await,
            Task::RestoreDbCluster(p) => self.services(task)?.run(p, ctx).await,
            Task::RestoreObjects(p) => self.services(task)?.run(p, ctx).await,
            Task::RestoreDrill(p) => self.services(task)?.run(p, ctx).await,
        }
    }
}
