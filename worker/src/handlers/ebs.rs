//! EC2 backups: a volume snapshot, a crash-consistent snapshot set of an instance, an AMI, and
//! their cross-region copies.
//!
//! Every create follows one pattern, built for AWS's eventual consistency: the id a create call
//! answers with goes into the checkpoint at once, and re-checks describe exactly that id (a
//! Describe right after a create may answer "not found", which within the consistency window
//! means "not visible yet"). Only an attempt with no checkpoint whose predecessor may have
//! created something (a lost reply, a crash) looks for an artifact by its task-id tag, and only
//! once the consistency window since that predecessor has passed; the first attempt of a task
//! looks for nothing.

use async_trait::async_trait;
use backup_core::artifacts::{artifact_tags, ArtifactStatus, Tags};
use backup_core::services::block::{ImageInfo, SnapshotInfo};
use backup_core::{AwsError, RetryClass, TaskError};
use backup_schemas::{
    tags, AccountRef, ArtifactKind, ArtifactRef, BackupContext, CopyAmi, CopySnapshot, CreateAmi, ResourceType,
    SnapshotInstance, SnapshotSet, SnapshotVolume, Task,
};
use chrono::{DateTime, Utc};
use serde_json::json;

use crate::handler::{Handler, HandlerResult, Outcome, TaskContext};
use crate::handlers::services::{
    copy_expiry, copy_pool, copy_tags, follow_ups, missing, prune_after, record, verification, CopyKind, Services,
    Started,
};

const GIB: u64 = 1024 * 1024 * 1024;

fn not_found(err: &AwsError) -> bool {
    err.code.contains("NotFound")
}

/// The oldest of several artifacts tagged with one task id (there should be one; if a race ever
/// made two, the others are reported, never silently kept).
fn first<T>(mut found: Vec<T>, created: impl Fn(&T) -> Option<chrono::DateTime<chrono::Utc>>) -> Option<T> {
    found.sort_by_key(|item| created(item));
    if found.len() > 1 {
        tracing::warn!(count = found.len(), "more than one artifact carries this task id; using the oldest");
    }
    found.into_iter().next()
}

fn snapshot_ref(snapshot: &SnapshotInfo) -> ArtifactRef {
    ArtifactRef { kind: ArtifactKind::EbsSnapshot, region: snapshot.region.clone(), id: snapshot.id.clone() }
}

fn image_ref(image: &ImageInfo) -> ArtifactRef {
    ArtifactRef { kind: ArtifactKind::Ami, region: image.region.clone(), id: image.id.clone() }
}

fn progress_of(snapshots: &[SnapshotInfo]) -> serde_json::Value {
    json!(snapshots
        .iter()
        .map(|s| json!({ "snapshot_id": s.id, "progress": match &s.status {
            ArtifactStatus::Pending { progress } => progress.clone(),
            _ => Some("100%".into()),
        } }))
        .collect::<Vec<_>>())
}

/// What a create call answered with.
enum Created {
    /// The snapshots themselves (CreateSnapshot, CreateSnapshots describe what they made).
    Described(Vec<SnapshotInfo>),
    /// Only the new id (CopySnapshot): the task parks and the re-check describes it.
    Started(String),
}

/// What a re-check of started artifacts found.
enum Found<T> {
    /// Every started artifact, as AWS describes it now.
    All(T),
    /// Not (all) visible yet, within the consistency window: park and look again.
    NotVisibleYet,
}

impl Services {
    /// Describes the snapshots an earlier attempt started. Fewer than started means "not visible
    /// yet" within the consistency window, and "gone" after it (deleted by someone, or failed and
    /// discarded): a permanent failure naming them.
    async fn started_snapshots(&self, region: &str, started: &Started) -> Result<Found<Vec<SnapshotInfo>>, TaskError> {
        let found = self.block.snapshots(region, &started.ids).await?;
        if found.len() == started.ids.len() {
            return Ok(Found::All(found));
        }
        if self.maybe_not_visible_yet(started) {
            return Ok(Found::NotVisibleYet);
        }
        let missing: Vec<&String> = started.ids.iter().filter(|id| !found.iter().any(|s| &s.id == *id)).collect();
        // What is left of a set is not a backup: discard it so nothing half-made lingers.
        self.discard(region, &found).await;
        Err(TaskError::permanent(format!(
            "snapshot(s) {missing:?} started at {} disappeared from {region} before completing",
            started.at.to_rfc3339()
        )))
    }

    /// Parks on pending snapshots, fails (discarding them, so a replay starts afresh) if any
    /// failed, or `None` when all are complete.
    async fn snapshots_outcome(
        &self,
        region: &str,
        started: &Started,
        snapshots: &[SnapshotInfo],
    ) -> Option<HandlerResult> {
        if let Some((id, reason)) = snapshots.iter().find_map(|s| match &s.status {
            ArtifactStatus::Failed { reason } => Some((s.id.clone(), reason.clone())),
            _ => None,
        }) {
            self.discard(region, snapshots).await;
            return Some(Err(TaskError::permanent(format!("snapshot {id} failed: {reason}"))));
        }
        if snapshots.iter().any(|s| !s.status.is_complete()) {
            return Some(Ok(Outcome::Pending {
                checkpoint: started.checkpoint(progress_of(snapshots)),
                recheck_after: self.timing.recheck,
            }));
        }
        None
    }

    /// Deletes snapshots of ours that can never become a backup (failed, or the rest of a
    /// broken set).
    async fn discard(&self, region: &str, snapshots: &[SnapshotInfo]) {
        for snapshot in snapshots {
            if let Err(err) = self.block.delete_snapshot(region, &snapshot.id).await {
                tracing::warn!(snapshot = %snapshot.id, error = %err, "could not delete a snapshot that is not a backup");
            }
        }
    }

    /// The snapshots of a backup task: re-checked from the checkpoint, adopted from an earlier
    /// attempt, or freshly created by `create`. `Err(outcome)` ends the attempt (parked or
    /// failed).
    async fn backup_snapshots<F, Fut>(
        &self,
        region: &str,
        ctx: &TaskContext,
        create: F,
    ) -> Result<(Started, Vec<SnapshotInfo>), HandlerResult>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = Result<Created, TaskError>>,
    {
        if let Some(started) = Started::from_checkpoint(ctx.checkpoint.as_ref()) {
            return match self.started_snapshots(region, &started).await.map_err(Err)? {
                Found::All(snapshots) => Ok((started, snapshots)),
                Found::NotVisibleYet => Err(Ok(Outcome::Pending {
                    checkpoint: started.checkpoint(json!("not visible yet")),
                    recheck_after: self.timing.recheck,
                })),
            };
        }
        if self.earlier_attempt_may_have_created(ctx).await.map_err(Err)? {
            let found = self.block.snapshots_tagged(region, tags::TASK_ID, ctx.task_id.as_str()).await;
            let found = found.map_err(|e| Err(e.into()))?;
            if !found.is_empty() {
                let started = Started {
                    ids: found.iter().map(|s| s.id.clone()).collect(),
                    at: found.iter().filter_map(|s| s.created_at).min().unwrap_or_else(chrono::Utc::now),
                };
                return Ok((started, found));
            }
        }
        ctx.may_start("the snapshot").map_err(Err)?;
        match create().await.map_err(Err)? {
            Created::Described(snapshots) => {
                Ok((Started::now(snapshots.iter().map(|s| s.id.clone()).collect()), snapshots))
            }
            Created::Started(id) => Err(Ok(Outcome::Pending {
                checkpoint: Started::now(vec![id]).checkpoint(json!("started")),
                recheck_after: self.timing.recheck,
            })),
        }
    }

    /// Catalogs a completed snapshot and returns its follow-up tasks (copies, verification).
    async fn complete_snapshot(
        &self,
        snapshot: &SnapshotInfo,
        resource: &str,
        ctx_backup: &BackupContext,
        set: Option<&SnapshotSet>,
        ctx: &TaskContext,
    ) -> Result<Vec<Task>, TaskError> {
        let artifact = snapshot_ref(snapshot);
        let mut entry =
            record(artifact.clone(), resource, &snapshot.region, ctx_backup, &ctx.task_id, snapshot.created_at, None);
        entry.size_bytes = snapshot.size_gib.map(|g| g as u64 * GIB);
        entry.encrypted = Some(snapshot.encrypted);
        if let Some(volume) = &snapshot.volume_id {
            entry.details.insert("volume_id".into(), volume.clone());
        }
        if let Some(set) = set {
            entry.details.insert("set".into(), set.id.clone());
            entry.details.insert("set_size".into(), set.size.to_string());
        }
        self.catalog.put(&entry).await?;
        Ok(follow_ups(&artifact, resource, ctx_backup, |target| {
            Some(Task::CopySnapshot(CopySnapshot {
                source_region: snapshot.region.clone(),
                snapshot_id: snapshot.id.clone(),
                source_resource: resource.to_owned(),
                target: target.clone(),
                ctx: ctx_backup.clone(),
                set: set.cloned(),
            }))
        }))
    }
}

#[async_trait]
impl Handler<SnapshotVolume> for Services {
    async fn run(&self, p: &SnapshotVolume, ctx: &TaskContext) -> HandlerResult {
        let create = || async {
            let tags = artifact_tags(&ctx.task_id, &p.ctx, &p.volume_id, None);
            let description =
                format!("backup-fleet {} {} of {}", p.ctx.plan, p.ctx.window.format("%Y-%m-%dT%H:%MZ"), p.volume_id);
            match self.block.create_snapshot(&p.region, &p.volume_id, &description, &tags).await {
                Ok(snapshot) => Ok(Created::Described(vec![snapshot])),
                Err(err) if not_found(&err) => Err(missing("volume", &p.volume_id, &p.region)),
                Err(err) => Err(err.into()),
            }
        };
        let (started, snapshots) = match self.backup_snapshots(&p.region, ctx, create).await {
            Ok(found) => found,
            Err(outcome) => return outcome,
        };
        if let Some(outcome) = self.snapshots_outcome(&p.region, &started, &snapshots).await {
            return outcome;
        }
        let snapshot = first(snapshots, |s| s.created_at).expect("a started backup has a snapshot");
        let mut children = self.complete_snapshot(&snapshot, &p.volume_id, &p.ctx, None, ctx).await?;
        children.extend(prune_after(
            &p.ctx,
            &p.volume_id,
            ResourceType::Ec2Volume,
            &p.region,
            None,
            snapshot.created_at,
        ));
        Ok(Outcome::done(json!({ "snapshot_id": snapshot.id, "region": p.region, "size_gib": snapshot.size_gib }))
            .with_children(children))
    }
}

#[async_trait]
impl Handler<SnapshotInstance> for Services {
    async fn run(&self, p: &SnapshotInstance, ctx: &TaskContext) -> HandlerResult {
        let create = || async {
            let mut tags = artifact_tags(&ctx.task_id, &p.ctx, &p.instance_id, None);
            tags.insert(tags::SET.to_owned(), ctx.task_id.to_string());
            let description =
                format!("backup-fleet {} {} of {}", p.ctx.plan, p.ctx.window.format("%Y-%m-%dT%H:%MZ"), p.instance_id);
            match self
                .block
                .create_snapshot_set(&p.region, &p.instance_id, p.exclude_boot_volume, &description, &tags)
                .await
            {
                Ok(snapshots) if snapshots.is_empty() => {
                    Err(TaskError::permanent(format!("instance {} has no EBS volumes to snapshot", p.instance_id)))
                }
                Ok(snapshots) => Ok(Created::Described(snapshots)),
                Err(err) if not_found(&err) => Err(missing("instance", &p.instance_id, &p.region)),
                Err(err) => Err(err.into()),
            }
        };
        let (started, snapshots) = match self.backup_snapshots(&p.region, ctx, create).await {
            Ok(found) => found,
            Err(outcome) => return outcome,
        };
        if let Some(outcome) = self.snapshots_outcome(&p.region, &started, &snapshots).await {
            return outcome;
        }
        // The set is one backup: every member says which set it belongs to and how big the set
        // is, so that retention and copies treat it as a whole.
        let set = SnapshotSet { id: ctx.task_id.to_string(), size: snapshots.len() as u32 };
        let ids: Vec<String> = snapshots.iter().map(|s| s.id.clone()).collect();
        let set_tags: Tags =
            Tags::from([(tags::SET.to_owned(), set.id.clone()), (tags::SET_SIZE.to_owned(), set.size.to_string())]);
        self.block.tag(&p.region, &ids, &set_tags).await?;
        let mut children = Vec::new();
        for snapshot in &snapshots {
            children.extend(self.complete_snapshot(snapshot, &p.instance_id, &p.ctx, Some(&set), ctx).await?);
        }
        let newest = snapshots.iter().filter_map(|s| s.created_at).max();
        children.extend(prune_after(&p.ctx, &p.instance_id, ResourceType::Ec2Instance, &p.region, None, newest));
        Ok(Outcome::done(
            json!({ "snapshot_ids": ids, "region": p.region, "instance_id": p.instance_id, "set": set.id }),
        )
        .with_children(children))
    }
}

impl Services {
    /// The image a task started (from its checkpoint), or `None` when it has not started one.
    /// Within the consistency window an image not found yet parks the task.
    async fn started_image(&self, region: &str, ctx: &TaskContext) -> Result<Option<ImageInfo>, HandlerResult> {
        let Some(started) = Started::from_checkpoint(ctx.checkpoint.as_ref()) else { return Ok(None) };
        match self.block.images(region, &started.ids).await.map_err(|e| Err(e.into()))?.into_iter().next() {
            Some(image) => Ok(Some(image)),
            None if self.maybe_not_visible_yet(&started) => Err(Ok(Outcome::Pending {
                checkpoint: started.checkpoint(json!("not visible yet")),
                recheck_after: self.timing.recheck,
            })),
            None => Err(Err(TaskError::permanent(format!(
                "image {} started at {} disappeared from {region} before completing",
                started.ids[0],
                started.at.to_rfc3339()
            )))),
        }
    }

    /// An image an earlier attempt made (found by task-id tag, once a negative answer can be
    /// trusted), or `None`.
    async fn adopted_image(&self, region: &str, ctx: &TaskContext) -> Result<Option<ImageInfo>, TaskError> {
        if !self.earlier_attempt_may_have_created(ctx).await? {
            return Ok(None);
        }
        Ok(first(self.block.images_tagged(region, tags::TASK_ID, ctx.task_id.as_str()).await?, |i| i.created_at))
    }

    /// After `InvalidAMIName.Duplicate`: the image under our deterministic name is ours (an
    /// earlier attempt whose reply was lost) only if it carries our task id.
    async fn image_named(&self, region: &str, name: &str, ctx: &TaskContext) -> Result<String, TaskError> {
        match self.block.images_named(region, name).await?.into_iter().next() {
            Some(image) if image.tags.get(tags::TASK_ID).map(String::as_str) == Some(ctx.task_id.as_str()) => {
                Ok(image.id)
            }
            Some(image) => Err(TaskError::permanent(format!(
                "an image named {name} ({}) exists in {region} and was not made by this task; refusing to adopt it",
                image.id
            ))),
            None => Err(TaskError::retry(RetryClass::Busy, format!("image {name} exists but is not visible yet"))
                .with_retry_after(self.timing.consistency_window)),
        }
    }

    /// Parks a pending image, fails (deregistering it so a replay starts afresh) a failed one.
    async fn image_outcome(&self, region: &str, image: &ImageInfo) -> Option<HandlerResult> {
        match &image.status {
            ArtifactStatus::Complete => None,
            ArtifactStatus::Failed { reason } => {
                let _ = self.block.deregister_image(region, &image.id).await;
                Some(Err(TaskError::permanent(format!("image {} failed: {reason}", image.id))))
            }
            ArtifactStatus::Pending { .. } => Some(Ok(Outcome::Pending {
                checkpoint: Started {
                    ids: vec![image.id.clone()],
                    at: image.created_at.unwrap_or_else(chrono::Utc::now),
                }
                .checkpoint(json!("pending")),
                recheck_after: self.timing.recheck,
            })),
        }
    }
}

#[async_trait]
impl Handler<CreateAmi> for Services {
    async fn run(&self, p: &CreateAmi, ctx: &TaskContext) -> HandlerResult {
        let tags = artifact_tags(&ctx.task_id, &p.ctx, &p.instance_id, None);
        let image = match self.started_image(&p.region, ctx).await {
            Ok(Some(image)) => image,
            Err(outcome) => return outcome,
            Ok(None) => match self.adopted_image(&p.region, ctx).await? {
                Some(image) => image,
                None => {
                    ctx.may_start("the image")?;
                    let name =
                        format!("bf-{}-{}-{}", p.instance_id, p.ctx.window.format("%Y%m%d%H%M"), ctx.task_id.short());
                    let image_id =
                        match self.block.create_image(&p.region, &p.instance_id, &name, !p.reboot, &tags).await {
                            Ok(id) => id,
                            Err(err) if err.code == "InvalidAMIName.Duplicate" => {
                                self.image_named(&p.region, &name, ctx).await?
                            }
                            Err(err) if not_found(&err) => return Err(missing("instance", &p.instance_id, &p.region)),
                            Err(err) => return Err(err.into()),
                        };
                    // Trust the id the create answered with; the re-check describes it.
                    return Ok(Outcome::Pending {
                        checkpoint: Started::now(vec![image_id]).checkpoint(json!("created")),
                        recheck_after: self.timing.recheck,
                    });
                }
            },
        };
        if let Some(outcome) = self.image_outcome(&p.region, &image).await {
            return outcome;
        }
        // The image's snapshots get the fleet's tags (and which image they back) once they exist.
        let mut snapshot_tags: Tags = tags.clone();
        snapshot_tags.insert(tags::IMAGE.into(), image.id.clone());
        self.block.tag(&p.region, &image.snapshot_ids, &snapshot_tags).await?;

        let artifact = image_ref(&image);
        let mut entry =
            record(artifact.clone(), &p.instance_id, &p.region, &p.ctx, &ctx.task_id, image.created_at, None);
        entry.details.insert("snapshot_ids".into(), image.snapshot_ids.join(","));
        self.catalog.put(&entry).await?;
        let mut children = follow_ups(&artifact, &p.instance_id, &p.ctx, |target| {
            Some(Task::CopyAmi(CopyAmi {
                source_region: p.region.clone(),
                image_id: image.id.clone(),
                source_resource: p.instance_id.clone(),
                target: target.clone(),
                ctx: p.ctx.clone(),
            }))
        });
        children.extend(prune_after(
            &p.ctx,
            &p.instance_id,
            ResourceType::Ec2Instance,
            &p.region,
            None,
            image.created_at,
        ));
        Ok(Outcome::done(json!({ "image_id": image.id, "snapshot_ids": image.snapshot_ids, "region": p.region }))
            .with_children(children))
    }
}

/// Where the source of a copy into a backup account stands.
struct Shareable {
    /// The snapshot the backup account copies: the backup itself, or its re-encryption.
    id: String,
    /// A re-encryption made for the share, deleted once the backup account has its copy.
    temporary: bool,
}

/// Checkpoint key of the re-encryption step (beside `started`, the copy's own).
const SHARE_KEY: &str = "share";

/// `checkpoint` with the re-encryption's id kept in it, so later attempts find it.
fn with_share(checkpoint: serde_json::Value, share: &Shareable) -> serde_json::Value {
    match (checkpoint, share.temporary) {
        (serde_json::Value::Object(mut map), true) => {
            map.insert(SHARE_KEY.into(), json!({ "temporary": share.id, "at": Utc::now() }));
            serde_json::Value::Object(map)
        }
        (checkpoint, _) => checkpoint,
    }
}

/// The re-encryption an earlier attempt made for the share, and when, per the checkpoint.
fn shared_temporary(ctx: &TaskContext) -> Option<(&str, DateTime<Utc>)> {
    let share = ctx.checkpoint.as_ref()?.get(SHARE_KEY)?;
    let at = share.get("at").and_then(|at| serde_json::from_value(at.clone()).ok()).unwrap_or_else(Utc::now);
    Some((share.get("temporary")?.as_str()?, at))
}

impl Services {
    async fn copy_snapshot(&self, p: &CopySnapshot, ctx: &TaskContext) -> HandlerResult {
        match &p.target.account {
            None => self.copy_snapshot_into(None, p, ctx, &p.snapshot_id).await,
            Some(account) => self.copy_snapshot_to_account(account, p, ctx).await,
        }
    }

    /// A copy into an isolated backup account: make the source shareable (re-encrypt it under
    /// the share key when the backup account cannot use its key), share it with the account,
    /// let the account's role copy it under its own key, then take the share away and delete
    /// the re-encryption. The copy, its catalog record, retention and verification live in the
    /// backup account.
    async fn copy_snapshot_to_account(
        &self,
        account: &AccountRef,
        p: &CopySnapshot,
        ctx: &TaskContext,
    ) -> HandlerResult {
        let vault = self.in_account(account).await?;
        let share = match Started::from_checkpoint(ctx.checkpoint.as_ref()) {
            // The copy is under way: the checkpoint says what was shared.
            Some(_) => match shared_temporary(ctx) {
                Some((id, _)) => Shareable { id: id.to_owned(), temporary: true },
                None => Shareable { id: p.snapshot_id.clone(), temporary: false },
            },
            None => {
                let source = ArtifactRef {
                    kind: ArtifactKind::EbsSnapshot,
                    region: p.source_region.clone(),
                    id: p.snapshot_id.clone(),
                };
                self.check_catalogued_source(&source, &p.source_resource, ctx).await?;
                let share = match self.shareable_snapshot(p, ctx).await {
                    Ok(share) => share,
                    Err(outcome) => return outcome,
                };
                // The slot first: a copy waiting for capacity holds no share.
                vault.copy_slot(CopyKind::Ebs, &copy_pool(&p.target, ctx), &ctx.task_id).await?;
                self.block.share_snapshot(&p.source_region, &share.id, &account.account_id, true).await?;
                share
            }
        };
        match vault.copy_snapshot_into(Some(account), p, ctx, &share.id).await {
            Ok(Outcome::Pending { checkpoint, recheck_after }) => {
                Ok(Outcome::Pending { checkpoint: with_share(checkpoint, &share), recheck_after })
            }
            Ok(done) => {
                self.end_share(p, &share, &account.account_id).await?;
                tracing::info!(
                    account = %account.account_id,
                    source_account = ctx.account_label(),
                    snapshot = %p.snapshot_id,
                    "copied into the backup account; the share is removed"
                );
                Ok(done)
            }
            Err(err) => {
                if !err.is_retryable() {
                    // Nothing will copy it now: the backup account loses its access at once.
                    if let Err(unshare) = self.end_share(p, &share, &account.account_id).await {
                        tracing::warn!(error = %unshare, "could not take back the share of a failed copy");
                    }
                }
                Err(err)
            }
        }
    }

    /// Takes the share away and deletes the re-encryption made for it.
    async fn end_share(&self, p: &CopySnapshot, share: &Shareable, account: &str) -> Result<(), TaskError> {
        match self.block.share_snapshot(&p.source_region, &share.id, account, false).await {
            Ok(()) => {}
            // A re-run after the re-encryption was deleted, or the source since pruned: nothing
            // is shared any more.
            Err(err) if not_found(&err) => {}
            Err(err) => return Err(err.into()),
        }
        if share.temporary {
            self.block.delete_snapshot(&p.source_region, &share.id).await?;
        }
        Ok(())
    }

    /// The snapshot a backup account may copy. An unencrypted snapshot, or one under the share
    /// key, is shared as it is; one under any other key (the AWS-managed `aws/ebs` key can never
    /// be shared) is first copied in place under the share key. `Err(outcome)` parks the task
    /// while that copy completes, or fails it.
    async fn shareable_snapshot(&self, p: &CopySnapshot, ctx: &TaskContext) -> Result<Shareable, HandlerResult> {
        let region = &p.source_region;
        let source =
            self.block.snapshots(region, std::slice::from_ref(&p.snapshot_id)).await.map_err(|e| Err(e.into()))?;
        let source = source.into_iter().next().ok_or_else(|| Err(missing("snapshot", &p.snapshot_id, region)))?;
        let key = p.target.share_kms_key.as_deref();
        if !source.encrypted || (key.is_some() && source.kms_key.as_deref() == key) {
            return Ok(Shareable { id: source.id, temporary: false });
        }
        let Some(key) = key else {
            return Err(Err(TaskError::permanent(format!(
                "snapshot {} is encrypted under {}, which account {} cannot use (snapshots under the AWS-managed \
                 aws/ebs key cannot be shared at all): set share_kms_key in the plan's copy_to to a customer-managed \
                 key of the source account that the backup account may use",
                p.snapshot_id,
                source.kms_key.as_deref().unwrap_or("the AWS-managed key"),
                p.target.account.as_ref().map_or("", |a| a.account_id.as_str()),
            ))));
        };
        let pending = |id: &str, at: DateTime<Utc>, progress: &str| {
            Err(Ok(Outcome::Pending {
                checkpoint: json!({ SHARE_KEY: { "temporary": id, "at": at }, "progress": progress }),
                recheck_after: self.timing.recheck,
            }))
        };
        // The re-encryption an earlier attempt started: described by its id; not found means
        // "not visible yet" within the consistency window, and gone after it (failed and
        // discarded, or deleted by hand): then it is looked for by tag, or made again.
        let mut temporary = None;
        if let Some((id, at)) = shared_temporary(ctx) {
            match self.block.snapshots(region, &[id.to_owned()]).await.map_err(|e| Err(e.into()))?.pop() {
                Some(found) => temporary = Some(found),
                None if (Utc::now() - at).to_std().unwrap_or_default() < self.timing.consistency_window => {
                    return pending(id, at, "not visible yet")
                }
                None => tracing::info!(snapshot = id, "the re-encryption for sharing is gone; looking again"),
            }
        }
        if temporary.is_none() && self.earlier_attempt_may_have_created(ctx).await.map_err(Err)? {
            // A lost reply may have left one (or, after a race, more): keep the oldest.
            let mut found = self
                .block
                .snapshots_tagged(region, tags::SHARE_FOR, ctx.task_id.as_str())
                .await
                .map_err(|e| Err(e.into()))?;
            found.sort_by_key(|s| s.created_at);
            if found.len() > 1 {
                self.discard(region, &found[1..]).await;
            }
            temporary = found.drain(..).next();
        }
        let Some(temporary) = temporary else {
            ctx.may_start("the re-encryption for sharing").map_err(Err)?;
            tracing::info!(
                snapshot = %p.snapshot_id,
                from_key = source.kms_key.as_deref().unwrap_or("aws/ebs"),
                share_key = key,
                "re-encrypting the snapshot under the share key: the backup account cannot use its key"
            );
            // Tagged with its resource too, so the resource's prune finds it if this task never
            // gets to delete it.
            let tags = Tags::from([
                (tags::SHARE_FOR.to_owned(), ctx.task_id.to_string()),
                (tags::SOURCE.to_owned(), p.source_resource.clone()),
            ]);
            let description = format!("backup-fleet: {} re-encrypted for sharing", p.snapshot_id);
            let id = self
                .block
                .copy_snapshot(region, &p.snapshot_id, region, Some(key), &description, &tags)
                .await
                .map_err(|e| Err(e.into()))?;
            return pending(&id, Utc::now(), "started");
        };
        let at = temporary.created_at.unwrap_or_else(Utc::now);
        match &temporary.status {
            ArtifactStatus::Complete => Ok(Shareable { id: temporary.id, temporary: true }),
            ArtifactStatus::Pending { progress } => {
                pending(&temporary.id, at, progress.as_deref().unwrap_or("pending"))
            }
            ArtifactStatus::Failed { reason } => {
                // Discarded: the next attempt finds it gone and starts another.
                self.discard(region, std::slice::from_ref(&temporary)).await;
                Err(Err(TaskError::retry(
                    RetryClass::Transient,
                    format!("the re-encryption {} of {} failed: {reason}", temporary.id, p.snapshot_id),
                )))
            }
        }
    }

    /// Copies `source_id` (the backup, or its re-encryption for a share) to `p.target.region`
    /// of the account `self` acts in; `to_account` is that account when it is a backup account
    /// (its retention and verification run there).
    async fn copy_snapshot_into(
        &self,
        to_account: Option<&AccountRef>,
        p: &CopySnapshot,
        ctx: &TaskContext,
        source_id: &str,
    ) -> HandlerResult {
        let dest = &p.target.region;
        let pool = copy_pool(&p.target, ctx);
        let expires_at = copy_expiry(&p.ctx, &p.target);
        let create = || async {
            let mut tags = copy_tags(
                artifact_tags(&ctx.task_id, &p.ctx, &p.source_resource, expires_at),
                &p.source_region,
                &p.snapshot_id,
            );
            if let Some(set) = &p.set {
                tags.insert(tags::SET.to_owned(), set.id.clone());
                tags.insert(tags::SET_SIZE.to_owned(), set.size.to_string());
            }
            if to_account.is_some() {
                tags.insert(tags::SOURCE_ACCOUNT.to_owned(), ctx.account_label().to_owned());
            }
            let description = format!("backup-fleet copy of {} from {}", p.snapshot_id, p.source_region);
            self.copy_slot(CopyKind::Ebs, &pool, &ctx.task_id).await?;
            let id = match self
                .block
                .copy_snapshot(&p.source_region, source_id, dest, p.target.kms_key.as_deref(), &description, &tags)
                .await
            {
                Ok(id) => id,
                // A share takes a moment to reach the other account: not found there is retried
                // (the receive limit bounds it), never a lost copy.
                Err(err) if not_found(&err) && to_account.is_some() => {
                    return Err(TaskError::retry(
                        RetryClass::Transient,
                        format!("the backup account cannot see the shared snapshot {source_id} yet: {err}"),
                    ))
                }
                Err(err) if not_found(&err) => return Err(missing("snapshot", source_id, &p.source_region)),
                Err(err) => return Err(err.into()),
            };
            Ok(Created::Started(id))
        };
        let (started, copies) = match self.backup_snapshots(dest, ctx, create).await {
            Ok(found) => found,
            Err(outcome) => return outcome,
        };
        if let Some(outcome) = self.snapshots_outcome(dest, &started, &copies).await {
            if matches!(outcome, Ok(Outcome::Pending { .. })) {
                self.renew_copy_slot(CopyKind::Ebs, &pool, &ctx.task_id).await;
            }
            return outcome;
        }
        let copy = first(copies, |s| s.created_at).expect("a started copy has a snapshot");
        let source =
            ArtifactRef { kind: ArtifactKind::EbsSnapshot, region: p.source_region.clone(), id: p.snapshot_id.clone() };
        let artifact = snapshot_ref(&copy);
        let mut entry = record(
            artifact.clone(),
            &p.source_resource,
            &p.source_region,
            &p.ctx,
            &ctx.task_id,
            copy.created_at,
            expires_at,
        );
        entry.size_bytes = copy.size_gib.map(|g| g as u64 * GIB);
        entry.encrypted = Some(copy.encrypted);
        entry.copy_of = Some(source.clone());
        if let Some(set) = &p.set {
            entry.details.insert("set".into(), set.id.clone());
            entry.details.insert("set_size".into(), set.size.to_string());
        }
        if to_account.is_some() {
            entry.details.insert("source_account".into(), ctx.account_label().to_owned());
        }
        self.catalog.put(&entry).await?;
        self.catalog.add_copy(&source, &artifact).await?;
        let verify = p.ctx.verify.then(|| verification(artifact, &p.source_resource, &p.source_region, true));
        let resource_type =
            if p.source_resource.starts_with("vol-") { ResourceType::Ec2Volume } else { ResourceType::Ec2Instance };
        let prune = prune_after(&p.ctx, &p.source_resource, resource_type, dest, Some(&p.target), copy.created_at);
        // In a backup account, the prune judges this source account's copies only.
        let prune = prune.map(|task| match (task, to_account) {
            (Task::Prune(prune), Some(_)) => {
                Task::Prune(backup_schemas::Prune { source_account: Some(ctx.account_label().to_owned()), ..prune })
            }
            (task, _) => task,
        });
        let done = Outcome::done(json!({
            "snapshot_id": copy.id,
            "region": dest,
            "account": to_account.map(|a| a.account_id.as_str()),
            "copy_of": p.snapshot_id,
        }));
        let children = verify.into_iter().chain(prune);
        Ok(match to_account {
            None => done.with_children(children),
            Some(account) => done.with_children_in(Some(account), children),
        })
    }

    async fn copy_image(&self, p: &CopyAmi, ctx: &TaskContext) -> HandlerResult {
        let dest = &p.target.region;
        let expires_at = copy_expiry(&p.ctx, &p.target);
        let tags = copy_tags(
            artifact_tags(&ctx.task_id, &p.ctx, &p.source_resource, expires_at),
            &p.source_region,
            &p.image_id,
        );
        let image = match self.started_image(dest, ctx).await {
            Ok(Some(image)) => image,
            Err(outcome) => return outcome,
            Ok(None) => match self.adopted_image(dest, ctx).await? {
                Some(image) => image,
                None => {
                    ctx.may_start("the image copy")?;
                    let name = format!("bf-copy-{}-{}", p.image_id, ctx.task_id.short());
                    self.copy_slot(CopyKind::Ebs, &copy_pool(&p.target, ctx), &ctx.task_id).await?;
                    // The task id is the client token: AWS's CopyImage itself refuses to copy
                    // twice, and answers a retry with the first copy's id.
                    let id = match self
                        .block
                        .copy_image(
                            &p.source_region,
                            &p.image_id,
                            dest,
                            &name,
                            p.target.kms_key.as_deref(),
                            &tags,
                            ctx.task_id.as_str(),
                        )
                        .await
                    {
                        Ok(id) => id,
                        Err(err) if err.code == "InvalidAMIName.Duplicate" => {
                            self.image_named(dest, &name, ctx).await?
                        }
                        Err(err) if not_found(&err) => return Err(missing("image", &p.image_id, &p.source_region)),
                        Err(err) => return Err(err.into()),
                    };
                    // Tag at once as well: not every CopyImage implementation applies
                    // TagSpecifications (moto drops them), and the task-id tag is what a retry
                    // after a lost reply looks for. A copy too new to tag is tagged at the
                    // re-check.
                    if let Err(err) = self.block.tag(dest, std::slice::from_ref(&id), &tags).await {
                        tracing::info!(image = %id, error = %err, "could not tag the new image copy yet");
                    }
                    return Ok(Outcome::Pending {
                        checkpoint: Started::now(vec![id]).checkpoint(json!("started")),
                        recheck_after: self.timing.recheck,
                    });
                }
            },
        };
        if let Some(outcome) = self.image_outcome(dest, &image).await {
            if matches!(outcome, Ok(Outcome::Pending { .. })) {
                self.renew_copy_slot(CopyKind::Ebs, &copy_pool(&p.target, ctx), &ctx.task_id).await;
            }
            return outcome;
        }
        let mut image_tags = tags.clone();
        self.block.tag(dest, std::slice::from_ref(&image.id), &image_tags).await?;
        image_tags.insert(tags::IMAGE.into(), image.id.clone());
        self.block.tag(dest, &image.snapshot_ids, &image_tags).await?;
        let source = ArtifactRef { kind: ArtifactKind::Ami, region: p.source_region.clone(), id: p.image_id.clone() };
        let artifact = image_ref(&image);
        let mut entry = record(
            artifact.clone(),
            &p.source_resource,
            &p.source_region,
            &p.ctx,
            &ctx.task_id,
            image.created_at,
            expires_at,
        );
        entry.copy_of = Some(source.clone());
        entry.details.insert("snapshot_ids".into(), image.snapshot_ids.join(","));
        self.catalog.put(&entry).await?;
        self.catalog.add_copy(&source, &artifact).await?;
        let verify = p.ctx.verify.then(|| verification(artifact, &p.source_resource, &p.source_region, true));
        let prune =
            prune_after(&p.ctx, &p.source_resource, ResourceType::Ec2Instance, dest, Some(&p.target), image.created_at);
        Ok(Outcome::done(json!({ "image_id": image.id, "region": dest, "copy_of": p.image_id }))
            .with_children(verify.into_iter().chain(prune)))
    }
}

#[async_trait]
impl Handler<CopySnapshot> for Services {
    async fn run(&self, p: &CopySnapshot, ctx: &TaskContext) -> HandlerResult {
        let result = self.copy_snapshot(p, ctx).await;
        self.settle_copy_slot(CopyKind::Ebs, &copy_pool(&p.target, ctx), &ctx.task_id, result).await
    }
}

#[async_trait]
impl Handler<CopyAmi> for Services {
    async fn run(&self, p: &CopyAmi, ctx: &TaskContext) -> HandlerResult {
        let result = self.copy_image(p, ctx).await;
        self.settle_copy_slot(CopyKind::Ebs, &copy_pool(&p.target, ctx), &ctx.task_id, result).await
    }
}
