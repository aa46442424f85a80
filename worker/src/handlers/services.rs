//! The AWS-facing services every backup handler uses, behind the domain ports. `Services`
//! implements `Handler<P>` for each backup, lifecycle and restore kind, one module per area.

use backup_core::artifacts::{CatalogRecord, Tags};
use backup_core::ports::{Catalog, SlotPool};
use backup_core::services::block::BlockStorage;
use backup_core::services::database::DatabaseSnapshots;
use backup_core::services::objects::ObjectStore;
use backup_core::TaskError;
use backup_schemas::{tags, ArtifactRef, BackupContext, CopyTarget, Prune, ResourceType, RetentionRules, Task, Verify};
use chrono::{DateTime, Utc};
use std::sync::Arc;
use std::time::Duration;

/// Timing of long operations.
#[derive(Clone, Debug)]
pub struct Timing {
    /// How long a parked task waits before re-checking a pending artifact.
    pub recheck: Duration,
}

impl Default for Timing {
    fn default() -> Self {
        Self { recheck: Duration::from_secs(60) }
    }
}

pub struct Services {
    pub block: Arc<dyn BlockStorage>,
    pub databases: Arc<dyn DatabaseSnapshots>,
    pub objects: Arc<dyn ObjectStore>,
    pub catalog: Arc<dyn Catalog>,
    /// Fleet-wide in-flight caps (copies per destination region).
    pub slots: Arc<dyn SlotPool>,
    pub timing: Timing,
}

impl std::fmt::Debug for Services {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Services").field("timing", &self.timing).finish()
    }
}

/// Expiry of a cross-region copy: its own retention when the plan gives one, else the source's.
pub fn copy_expiry(ctx: &BackupContext, target: &CopyTarget) -> Option<DateTime<Utc>> {
    target.retain_days.map(|days| ctx.window + chrono::Duration::days(i64::from(days))).or(ctx.expires_at)
}

/// Tags of a copy: the artifact tags plus where it came from.
pub fn copy_tags(base: Tags, source_region: &str, source_id: &str) -> Tags {
    let mut tags = base;
    tags.insert(tags::SOURCE_REGION.to_owned(), source_region.to_owned());
    tags.insert(tags::COPIED_FROM.to_owned(), source_id.to_owned());
    tags
}

/// The follow-up tasks of a completed backup: one copy per target and a verification.
pub fn follow_ups(
    artifact: &ArtifactRef,
    source_resource: &str,
    ctx: &BackupContext,
    copy: impl Fn(&CopyTarget) -> Option<Task>,
) -> Vec<Task> {
    let mut children: Vec<Task> = ctx.copy_to.iter().filter_map(copy).collect();
    if ctx.verify {
        children.push(Task::Verify(Verify { artifact: artifact.clone(), source_resource: source_resource.to_owned() }));
    }
    children
}

/// A catalog record for a freshly completed artifact.
pub fn record(
    artifact: ArtifactRef,
    resource: &str,
    resource_region: &str,
    ctx: &BackupContext,
    task_id: &backup_schemas::TaskId,
    created_at: Option<DateTime<Utc>>,
    expires_at: Option<DateTime<Utc>>,
) -> CatalogRecord {
    CatalogRecord {
        artifact,
        resource: resource.to_owned(),
        resource_region: resource_region.to_owned(),
        plan: ctx.plan.clone(),
        tier: ctx.tier.as_str().to_owned(),
        task_id: task_id.clone(),
        created_at: created_at.unwrap_or_else(Utc::now),
        expires_at: expires_at.or(ctx.expires_at),
        size_bytes: None,
        encrypted: None,
        copy_of: None,
        copies: Vec::new(),
        details: Default::default(),
        verification: None,
        deleted_at: None,
    }
}

/// Maps a "does not exist" error on the source resource to a permanent failure with a clear reason.
pub fn missing(what: &str, id: &str, region: &str) -> TaskError {
    TaskError::permanent(format!("{what} {id} does not exist in {region}"))
}

/// The prune of `resource`'s backups in `region` that follows a completed backup or copy, as of
/// just after the new artifact (deterministic: a re-run spawns the same prune task).
pub fn prune_after(
    ctx: &BackupContext,
    resource: &str,
    resource_type: ResourceType,
    region: &str,
    copy: Option<&CopyTarget>,
    created_at: Option<DateTime<Utc>>,
) -> Option<Task> {
    let rules = ctx.retain.clone()?;
    let rules = match copy.and_then(|c| c.retain_days) {
        // Copies keep their own retention; the plan's minimum applies to them too.
        Some(days) => RetentionRules { days: Some(days), min_keep: rules.min_keep, ..RetentionRules::default() },
        None => rules,
    };
    let as_of = created_at.unwrap_or(ctx.window).max(ctx.window) + chrono::Duration::seconds(1);
    Some(Task::Prune(Prune {
        plan: ctx.plan.clone(),
        resource: resource.to_owned(),
        resource_type,
        region: region.to_owned(),
        rules,
        as_of,
    }))
}

/// AWS allows at most 20 concurrent EBS snapshot copies, and 20 RDS snapshot copies, per
/// destination region (DESIGN.md section 7); the fleet stays under that across all workers.
pub const COPIES_IN_FLIGHT: u32 = 20;

/// The slot pool of copies of `service` ("ebs" or "rds") into `region`.
pub fn copy_pool(service: &str, region: &str) -> String {
    format!("{service}-copy:{region}")
}

impl Services {
    /// Takes a copy slot for `task`, or asks to be retried later when the region is at its cap.
    pub async fn copy_slot(&self, service: &str, region: &str, task: &backup_schemas::TaskId) -> Result<(), TaskError> {
        if self.slots.acquire(&copy_pool(service, region), task, COPIES_IN_FLIGHT).await? {
            Ok(())
        } else {
            Err(TaskError::retry(
                backup_core::RetryClass::Busy,
                format!("{COPIES_IN_FLIGHT} {service} copies already in flight to {region}"),
            )
            .with_retry_after(Duration::from_secs(30)))
        }
    }

    /// Gives the copy slot back once the copy is finished (or failed); best effort, as a slot held
    /// by a finished task only delays other copies, never loses one.
    pub async fn release_copy_slot(&self, service: &str, region: &str, task: &backup_schemas::TaskId) {
        if let Err(err) = self.slots.release(&copy_pool(service, region), task).await {
            tracing::warn!(error = %err, "could not release a copy slot");
        }
    }
}
