//! The AWS-facing services every backup handler uses, behind the domain ports. `Services`
//! implements `Handler<P>` for each backup, lifecycle and restore kind, one module per area.

use backup_core::accounts::{AccountCatalog, Accounts};
use backup_core::artifacts::{ArtifactStatus, CatalogRecord, Tags};
use backup_core::ports::{Catalog, SlotPool};
use backup_core::services::block::BlockStorage;
use backup_core::services::database::DatabaseSnapshots;
use backup_core::services::objects::ObjectStore;
use backup_core::services::secrets::SecretStore;
use backup_core::TaskError;
use backup_schemas::{
    tags, AccountRef, ArtifactRef, BackupContext, CopyTarget, Prune, ResourceType, RetentionRules, Task, Verify,
    VerifyOrigin,
};
use chrono::{DateTime, Utc};
use std::sync::Arc;
use std::time::Duration;

use crate::handler::{HandlerResult, Outcome, TaskContext};

/// Timing of long operations.
#[derive(Clone, Debug)]
pub struct Timing {
    /// How long a parked task waits before re-checking a pending artifact.
    pub recheck: Duration,
    /// How long after a create a Describe may still miss the new resource (EC2 and RDS are
    /// eventually consistent). A lookup that finds nothing is trusted only once this long has
    /// passed since an earlier attempt could have created it.
    pub consistency_window: Duration,
    /// How long a copy slot is held without being renewed (each re-check of a copy in flight
    /// renews it): a holder that vanished frees its slot after this.
    pub slot_hold: Duration,
    /// How long a task waits between checks of an EBS archive-tier operation (an archival or a
    /// restore from the archive tier takes hours, up to 72 for a restore).
    pub tier_recheck: Duration,
    /// Age from which a prune deletes a re-encryption made to share a backup with a backup
    /// account: its copy task ended without cleaning up (a copy takes hours, not days).
    pub share_leftover_age: Duration,
}

impl Default for Timing {
    fn default() -> Self {
        Self {
            recheck: Duration::from_secs(60),
            consistency_window: Duration::from_secs(30),
            slot_hold: Duration::from_secs(600),
            tier_recheck: Duration::from_secs(900),
            share_leftover_age: Duration::from_secs(3 * 24 * 3600),
        }
    }
}

/// What an attempt knows about the artifact(s) its task creates, saved in the checkpoint the
/// moment a create call answers: re-checks describe exactly these ids and never create again.
/// The create's own reply is trusted; a Describe right after it may not see the result yet.
#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct Started {
    /// Snapshot ids, an image id, or an RDS identifier.
    pub ids: Vec<String>,
    pub at: DateTime<Utc>,
}

impl Started {
    pub fn now(ids: Vec<String>) -> Self {
        Self { ids, at: Utc::now() }
    }

    /// The `started` part of a checkpoint, if an earlier attempt saved one.
    pub fn from_checkpoint(checkpoint: Option<&serde_json::Value>) -> Option<Self> {
        checkpoint
            .and_then(|c| c.get("started"))
            .and_then(|s| serde_json::from_value::<Started>(s.clone()).ok())
            .filter(|s| !s.ids.is_empty())
    }

    /// A checkpoint holding this and `progress`.
    pub fn checkpoint(&self, progress: serde_json::Value) -> serde_json::Value {
        serde_json::json!({ "started": self, "progress": progress })
    }
}

#[derive(Clone)]
pub struct Services {
    pub block: Arc<dyn BlockStorage>,
    pub databases: Arc<dyn DatabaseSnapshots>,
    pub objects: Arc<dyn ObjectStore>,
    /// The catalog as the task's account sees it (see `AccountCatalog`).
    pub catalog: Arc<dyn Catalog>,
    /// The whole catalog, every account's records: views of other accounts are made from it.
    pub fleet_catalog: Arc<dyn Catalog>,
    /// Other accounts, through the roles tasks name.
    pub accounts: Arc<dyn Accounts>,
    /// Fleet-wide in-flight caps (copies per destination region).
    pub slots: Arc<dyn SlotPool>,
    /// Database credentials of logical backups and drills.
    pub secrets: Arc<dyn SecretStore>,
    pub logical: crate::handlers::logical::LogicalSettings,
    pub timing: Timing,
}

impl std::fmt::Debug for Services {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Services").field("timing", &self.timing).finish()
    }
}

impl Services {
    /// Whether an image exists (in any state but failed), looked up by id: a tag-filtered
    /// listing can miss one whose tags were just written. A value that is no AMI id (a damaged
    /// tag) names no image.
    pub async fn image_exists(&self, region: &str, image_id: &str) -> Result<bool, TaskError> {
        if !image_id.starts_with("ami-") {
            return Ok(false);
        }
        let found = self.block.images(region, &[image_id.to_owned()]).await?;
        Ok(found.iter().any(|i| !matches!(i.status, ArtifactStatus::Failed { .. })))
    }

    /// Only a backup the fleet made of `resource` in the task's account is copied into a backup
    /// account: a snapshot someone in the source account tagged to look like one (its events
    /// reach the fleet) is never carried there.
    pub async fn check_catalogued_source(
        &self,
        source: &ArtifactRef,
        resource: &str,
        ctx: &TaskContext,
    ) -> Result<(), TaskError> {
        let account = ctx.account.as_ref().map(|a| a.account_id.clone());
        match self.catalog.get(source).await? {
            Some(record) if record.account == account && record.resource == resource && record.copy_of.is_none() => {
                Ok(())
            }
            _ => Err(TaskError::permanent(format!(
                "{} is not a catalogued backup of {resource} in account {}: not copied into the backup account",
                source.id,
                ctx.account_label()
            ))),
        }
    }

    /// These services with the catalog view of the fleet's own account.
    pub fn in_own_account(self) -> Self {
        Self { catalog: Arc::new(AccountCatalog::new(self.fleet_catalog.clone(), None)), ..self }
    }

    /// These services acting in `account`, through its role: its EC2, RDS and S3, its view of
    /// the catalog. Fails (naming the role) when the role cannot be assumed.
    pub async fn in_account(&self, account: &AccountRef) -> Result<Self, TaskError> {
        let ports = self.accounts.ports(account).await?;
        Ok(Self {
            block: ports.block,
            databases: ports.databases,
            objects: ports.objects,
            catalog: Arc::new(AccountCatalog::new(self.fleet_catalog.clone(), Some(account))),
            ..self.clone()
        })
    }
}

/// Expiry of a cross-region copy: its own retention when the plan gives one, else the source's.
pub fn copy_expiry(ctx: &BackupContext, target: &CopyTarget) -> Option<DateTime<Utc>> {
    target.retain_days.map(|days| ctx.window + chrono::Duration::days(i64::from(days))).or(ctx.expires_at)
}

/// The copy-slot pool of a copy: AWS caps copies in flight per account and destination region,
/// so the pool is the destination region in the account the copy lands in (the task's own for a
/// copy within it).
pub fn copy_pool(target: &CopyTarget, ctx: &TaskContext) -> String {
    match target.account.as_ref().or(ctx.account.as_ref()) {
        Some(account) => format!("{}/{}", account.account_id, target.region),
        None => target.region.clone(),
    }
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
        // An original is made in its resource's region.
        children.push(verification(artifact.clone(), source_resource, &artifact.region, false));
    }
    children
}

/// The verification of `artifact`, carrying what its maker knows of a snapshot or an image
/// (where its source lives, whether it is a copy), so that the verifier checks it without first
/// reading the catalog. Objects, dumps and exports are checked against their catalog record.
pub fn verification(artifact: ArtifactRef, source_resource: &str, resource_region: &str, copy: bool) -> Task {
    let origin = artifact
        .kind
        .is_snapshot_or_image()
        .then(|| VerifyOrigin { resource_region: resource_region.to_owned(), copy });
    Task::Verify(Verify { artifact, source_resource: source_resource.to_owned(), origin })
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
        archive: None,
        account: None,
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
        source_account: None,
    }))
}

/// The kinds of copies AWS caps per destination region: at most 20 EBS snapshot (and AMI)
/// copies, 20 RDS DB snapshot copies and 5 DB cluster snapshot copies in flight (DESIGN.md
/// section 7). The fleet stays under each across all workers with a slot pool.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CopyKind {
    Ebs,
    RdsInstance,
    RdsCluster,
}

impl CopyKind {
    pub fn limit(self) -> u32 {
        match self {
            CopyKind::Ebs | CopyKind::RdsInstance => 20,
            CopyKind::RdsCluster => 5,
        }
    }

    /// The slot pool of these copies into `region`.
    pub fn pool(self, region: &str) -> String {
        let service = match self {
            CopyKind::Ebs => "ebs",
            CopyKind::RdsInstance => "rds",
            CopyKind::RdsCluster => "rds-cluster",
        };
        format!("{service}-copy:{region}")
    }
}

impl Services {
    /// Takes (or renews) a copy slot for `task`; when the region is at its cap the task waits for
    /// capacity (it parks: waiting costs no receives).
    pub async fn copy_slot(
        &self,
        kind: CopyKind,
        region: &str,
        task: &backup_schemas::TaskId,
    ) -> Result<(), TaskError> {
        if self.slots.acquire(&kind.pool(region), task, kind.limit(), self.timing.slot_hold).await? {
            Ok(())
        } else {
            Err(TaskError::capacity(format!("{} {kind:?} copies already in flight to {region}", kind.limit()))
                .with_retry_after(self.timing.recheck))
        }
    }

    /// Renews the slot of a copy still in flight. Its hold may have lapsed (the re-check came
    /// late) and been taken: the copy goes on regardless, since AWS's own quota is the limit
    /// that counts and the next copy to start waits for it.
    pub async fn renew_copy_slot(&self, kind: CopyKind, region: &str, task: &backup_schemas::TaskId) {
        match self.slots.renew(&kind.pool(region), task, kind.limit(), self.timing.slot_hold).await {
            Ok(true) => {}
            Ok(false) => tracing::info!(pool = %kind.pool(region), "copy slot lapsed while the copy was in flight"),
            Err(err) => tracing::warn!(error = %err, "could not renew a copy slot"),
        }
    }

    /// Gives the copy slot back on every outcome that ends the copy's claim on it: done,
    /// failed, or waiting for AWS's own capacity (nothing in flight). Pending keeps it (renewed
    /// by the re-check), and so does a retryable error (the retry continues the copy in flight;
    /// if retries run out, the hold expires on its own).
    pub async fn settle_copy_slot(
        &self,
        kind: CopyKind,
        region: &str,
        task: &backup_schemas::TaskId,
        result: HandlerResult,
    ) -> HandlerResult {
        let keep = match &result {
            Ok(Outcome::Pending { .. }) => true,
            Ok(Outcome::Done { .. }) => false,
            Err(err) => err.is_retryable() && !err.is_capacity(),
        };
        if !keep {
            if let Err(err) = self.slots.release(&kind.pool(region), task).await {
                tracing::warn!(error = %err, "could not release a copy slot; its hold expires on its own");
            }
        }
        result
    }

    /// Before a lookup by task-id tag may conclude "nothing was created": an earlier attempt
    /// (a lost reply, a crash) may have created the artifact, and a Describe by tag misses a new
    /// resource for a while. Returns `false` on the first claim ever (nothing can exist, no
    /// lookup is needed); otherwise waits out what remains of the consistency window since the
    /// earlier attempt's last activity, and returns `true`.
    pub async fn earlier_attempt_may_have_created(&self, ctx: &TaskContext) -> Result<bool, TaskError> {
        let Some(previous) = ctx.previous_activity else { return Ok(false) };
        let since = (Utc::now() - previous).to_std().unwrap_or_default();
        if let Some(rest) = self.timing.consistency_window.checked_sub(since) {
            ctx.sleep(rest).await?;
        }
        Ok(true)
    }

    /// Whether ids an earlier attempt started may simply not be visible yet.
    pub fn maybe_not_visible_yet(&self, started: &Started) -> bool {
        (Utc::now() - started.at).to_std().unwrap_or_default() < self.timing.consistency_window
    }

    /// What this task started under `id`: kept from the checkpoint across re-checks (so the
    /// consistency window counts from the create), or started now.
    pub fn started(&self, ctx: &TaskContext, id: &str) -> Started {
        Started::from_checkpoint(ctx.checkpoint.as_ref())
            .filter(|s| s.ids.iter().any(|known| known == id))
            .unwrap_or_else(|| Started::now(vec![id.to_owned()]))
    }

    /// A pending outcome for something this task started as `id`, with `progress` for operators.
    pub fn pending_started(&self, ctx: &TaskContext, id: &str, progress: serde_json::Value) -> HandlerResult {
        let started = self.started(ctx, id);
        let checkpoint = match progress {
            serde_json::Value::Object(mut fields) => {
                fields.insert("started".into(), serde_json::json!(started));
                serde_json::Value::Object(fields)
            }
            other => started.checkpoint(other),
        };
        Ok(Outcome::Pending { checkpoint, recheck_after: self.timing.recheck })
    }

    /// A lookup did not find what this task started (per its checkpoint): within the
    /// consistency window that means "not visible yet", so the task parks with the same
    /// checkpoint. `None` when nothing was started or the window has passed.
    pub fn park_if_not_visible_yet(&self, ctx: &TaskContext) -> Option<HandlerResult> {
        let started = Started::from_checkpoint(ctx.checkpoint.as_ref())?;
        self.maybe_not_visible_yet(&started).then(|| {
            Ok(Outcome::Pending {
                checkpoint: ctx.checkpoint.clone().unwrap_or_default(),
                recheck_after: self.timing.recheck,
            })
        })
    }
}
