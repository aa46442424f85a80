//! EC2 backups: a volume snapshot, a crash-consistent snapshot set of an instance, an AMI, and
//! their cross-region copies. Each looks for an artifact already tagged with its task id before
//! creating one, so a retry after a crash finds it instead of making a second.

use async_trait::async_trait;
use backup_core::artifacts::{artifact_tags, ArtifactStatus, Tags};
use backup_core::services::block::{ImageInfo, SnapshotInfo};
use backup_core::{AwsError, TaskError};
use backup_schemas::{
    tags, ArtifactKind, ArtifactRef, CopyAmi, CopySnapshot, CreateAmi, ResourceType, SnapshotInstance, SnapshotVolume,
    Task,
};
use serde_json::json;

use crate::handler::{Handler, HandlerResult, Outcome, TaskContext};
use crate::handlers::services::{copy_expiry, copy_tags, follow_ups, missing, prune_after, record, Services};

const GIB: u64 = 1024 * 1024 * 1024;

fn not_found(err: &AwsError) -> bool {
    err.code.contains("NotFound")
}

/// The oldest of several artifacts tagged with one task id (there should be one; if a race or an
/// eventually consistent describe ever made two, the others are reported, never silently kept).
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

impl Services {
    /// Waits (by parking) for every snapshot to complete; fails if any failed.
    fn snapshots_outcome(&self, snapshots: &[SnapshotInfo]) -> Option<HandlerResult> {
        if let Some((id, reason)) = snapshots.iter().find_map(|s| match &s.status {
            ArtifactStatus::Failed { reason } => Some((s.id.clone(), reason.clone())),
            _ => None,
        }) {
            return Some(Err(TaskError::permanent(format!("snapshot {id} failed: {reason}"))));
        }
        if snapshots.iter().any(|s| !s.status.is_complete()) {
            let progress: Vec<_> = snapshots
                .iter()
                .map(|s| json!({ "snapshot_id": s.id, "progress": match &s.status { ArtifactStatus::Pending { progress } => progress.clone(), _ => Some("100%".into()) } }))
                .collect();
            return Some(Ok(Outcome::Pending {
                checkpoint: json!({ "snapshots": progress }),
                recheck_after: self.timing.recheck,
            }));
        }
        None
    }

    /// Catalogs a completed snapshot and returns its follow-up tasks (copies, verification).
    async fn complete_snapshot(
        &self,
        snapshot: &SnapshotInfo,
        resource: &str,
        ctx_backup: &backup_schemas::BackupContext,
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
        self.catalog.put(&entry).await?;
        Ok(follow_ups(&artifact, resource, ctx_backup, |target| {
            Some(Task::CopySnapshot(CopySnapshot {
                source_region: snapshot.region.clone(),
                snapshot_id: snapshot.id.clone(),
                source_resource: resource.to_owned(),
                target: target.clone(),
                ctx: ctx_backup.clone(),
            }))
        }))
    }

    /// Deletes snapshots of ours that AWS marked failed, so a replay starts afresh.
    async fn discard_failed(&self, region: &str, snapshots: &[SnapshotInfo]) {
        for snapshot in snapshots.iter().filter(|s| matches!(s.status, ArtifactStatus::Failed { .. })) {
            if let Err(err) = self.block.delete_snapshot(region, &snapshot.id).await {
                tracing::warn!(snapshot = %snapshot.id, error = %err, "could not delete a failed snapshot");
            }
        }
    }
}

#[async_trait]
impl Handler<SnapshotVolume> for Services {
    async fn run(&self, p: &SnapshotVolume, ctx: &TaskContext) -> HandlerResult {
        let existing = self.block.snapshots_tagged(&p.region, tags::TASK_ID, ctx.task_id.as_str()).await?;
        let snapshot = match first(existing, |s| s.created_at) {
            Some(snapshot) => snapshot,
            None => {
                let tags = artifact_tags(&ctx.task_id, &p.ctx, &p.volume_id, None);
                let description = format!(
                    "backup-fleet {} {} of {}",
                    p.ctx.plan,
                    p.ctx.window.format("%Y-%m-%dT%H:%MZ"),
                    p.volume_id
                );
                match self.block.create_snapshot(&p.region, &p.volume_id, &description, &tags).await {
                    Ok(snapshot) => snapshot,
                    Err(err) if not_found(&err) => return Err(missing("volume", &p.volume_id, &p.region)),
                    Err(err) => return Err(err.into()),
                }
            }
        };
        if let Some(outcome) = self.snapshots_outcome(std::slice::from_ref(&snapshot)) {
            if outcome.is_err() {
                self.discard_failed(&p.region, std::slice::from_ref(&snapshot)).await;
            }
            return outcome;
        }
        let mut children = self.complete_snapshot(&snapshot, &p.volume_id, &p.ctx, ctx).await?;
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
        let mut snapshots = self.block.snapshots_tagged(&p.region, tags::TASK_ID, ctx.task_id.as_str()).await?;
        if snapshots.is_empty() {
            let tags = artifact_tags(&ctx.task_id, &p.ctx, &p.instance_id, None);
            let description =
                format!("backup-fleet {} {} of {}", p.ctx.plan, p.ctx.window.format("%Y-%m-%dT%H:%MZ"), p.instance_id);
            snapshots = match self
                .block
                .create_snapshot_set(&p.region, &p.instance_id, p.exclude_boot_volume, &description, &tags)
                .await
            {
                Ok(snapshots) => snapshots,
                Err(err) if not_found(&err) => return Err(missing("instance", &p.instance_id, &p.region)),
                Err(err) => return Err(err.into()),
            };
            if snapshots.is_empty() {
                return Err(TaskError::permanent(format!("instance {} has no EBS volumes to snapshot", p.instance_id)));
            }
        }
        if let Some(outcome) = self.snapshots_outcome(&snapshots) {
            if outcome.is_err() {
                self.discard_failed(&p.region, &snapshots).await;
            }
            return outcome;
        }
        let mut children = Vec::new();
        for snapshot in &snapshots {
            children.extend(self.complete_snapshot(snapshot, &p.instance_id, &p.ctx, ctx).await?);
        }
        let newest = snapshots.iter().filter_map(|s| s.created_at).max();
        children.extend(prune_after(&p.ctx, &p.instance_id, ResourceType::Ec2Instance, &p.region, None, newest));
        let ids: Vec<&str> = snapshots.iter().map(|s| s.id.as_str()).collect();
        Ok(Outcome::done(json!({ "snapshot_ids": ids, "region": p.region, "instance_id": p.instance_id }))
            .with_children(children))
    }
}

#[async_trait]
impl Handler<CreateAmi> for Services {
    async fn run(&self, p: &CreateAmi, ctx: &TaskContext) -> HandlerResult {
        let tags = artifact_tags(&ctx.task_id, &p.ctx, &p.instance_id, None);
        let existing = self.block.images_tagged(&p.region, tags::TASK_ID, ctx.task_id.as_str()).await?;
        let image = match first(existing, |i| i.created_at) {
            Some(image) => image,
            None => {
                let name =
                    format!("bf-{}-{}-{}", p.instance_id, p.ctx.window.format("%Y%m%d%H%M"), ctx.task_id.short());
                let image_id = match self.block.create_image(&p.region, &p.instance_id, &name, !p.reboot, &tags).await {
                    Ok(id) => id,
                    Err(err) if not_found(&err) => return Err(missing("instance", &p.instance_id, &p.region)),
                    Err(err) => return Err(err.into()),
                };
                self.block.images(&p.region, std::slice::from_ref(&image_id)).await?.into_iter().next().ok_or_else(
                    || {
                        TaskError::retry(
                            backup_core::RetryClass::Transient,
                            format!("image {image_id} not visible yet"),
                        )
                    },
                )?
            }
        };
        match &image.status {
            ArtifactStatus::Failed { reason } => {
                // Deregister it so that a replay creates a fresh image.
                let _ = self.block.deregister_image(&p.region, &image.id).await;
                return Err(TaskError::permanent(format!("image {} failed: {reason}", image.id)));
            }
            ArtifactStatus::Pending { .. } => {
                return Ok(Outcome::Pending {
                    checkpoint: json!({ "image_id": image.id }),
                    recheck_after: self.timing.recheck,
                });
            }
            ArtifactStatus::Complete => {}
        }
        // The image's snapshots get the fleet's tags (and which image they back) once they exist.
        let mut snapshot_tags: Tags = tags.clone();
        snapshot_tags.insert("backup-fleet:image".into(), image.id.clone());
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

#[async_trait]
impl Handler<CopySnapshot> for Services {
    async fn run(&self, p: &CopySnapshot, ctx: &TaskContext) -> HandlerResult {
        let dest = &p.target.region;
        let expires_at = copy_expiry(&p.ctx, &p.target);
        let existing = self.block.snapshots_tagged(dest, tags::TASK_ID, ctx.task_id.as_str()).await?;
        let copy = match first(existing, |s| s.created_at) {
            Some(copy) => copy,
            None => {
                let tags = copy_tags(
                    artifact_tags(&ctx.task_id, &p.ctx, &p.source_resource, expires_at),
                    &p.source_region,
                    &p.snapshot_id,
                );
                let description = format!("backup-fleet copy of {} from {}", p.snapshot_id, p.source_region);
                self.copy_slot("ebs", dest, &ctx.task_id).await?;
                let id = match self
                    .block
                    .copy_snapshot(
                        &p.source_region,
                        &p.snapshot_id,
                        dest,
                        p.target.kms_key.as_deref(),
                        &description,
                        &tags,
                    )
                    .await
                {
                    Ok(id) => id,
                    Err(err) if not_found(&err) => return Err(missing("snapshot", &p.snapshot_id, &p.source_region)),
                    Err(err) => return Err(err.into()),
                };
                self.block.snapshots(dest, std::slice::from_ref(&id)).await?.into_iter().next().ok_or_else(|| {
                    TaskError::retry(backup_core::RetryClass::Transient, format!("copy {id} not visible yet"))
                })?
            }
        };
        if let Some(outcome) = self.snapshots_outcome(std::slice::from_ref(&copy)) {
            if outcome.is_err() {
                self.discard_failed(dest, std::slice::from_ref(&copy)).await;
                self.release_copy_slot("ebs", dest, &ctx.task_id).await;
            }
            return outcome;
        }
        self.release_copy_slot("ebs", dest, &ctx.task_id).await;
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
        self.catalog.put(&entry).await?;
        self.catalog.add_copy(&source, &artifact).await?;
        let verify = p
            .ctx
            .verify
            .then(|| Task::Verify(backup_schemas::Verify { artifact, source_resource: p.source_resource.clone() }));
        let resource_type =
            if p.source_resource.starts_with("vol-") { ResourceType::Ec2Volume } else { ResourceType::Ec2Instance };
        let prune = prune_after(&p.ctx, &p.source_resource, resource_type, dest, Some(&p.target), copy.created_at);
        Ok(Outcome::done(json!({ "snapshot_id": copy.id, "region": dest, "copy_of": p.snapshot_id }))
            .with_children(verify.into_iter().chain(prune)))
    }
}

#[async_trait]
impl Handler<CopyAmi> for Services {
    async fn run(&self, p: &CopyAmi, ctx: &TaskContext) -> HandlerResult {
        let dest = &p.target.region;
        let expires_at = copy_expiry(&p.ctx, &p.target);
        let tags = copy_tags(
            artifact_tags(&ctx.task_id, &p.ctx, &p.source_resource, expires_at),
            &p.source_region,
            &p.image_id,
        );
        let existing = self.block.images_tagged(dest, tags::TASK_ID, ctx.task_id.as_str()).await?;
        let image = match first(existing, |i| i.created_at) {
            Some(image) => image,
            None => {
                let name = format!("bf-copy-{}-{}", p.image_id, ctx.task_id.short());
                // The task id is the client token: CopyImage itself refuses to copy twice.
                self.copy_slot("ebs", dest, &ctx.task_id).await?;
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
                    Err(err) if not_found(&err) => return Err(missing("image", &p.image_id, &p.source_region)),
                    Err(err) => return Err(err.into()),
                };
                // Tag at once as well: not every CopyImage implementation applies TagSpecifications
                // (moto drops them), and the task-id tag is what a retry looks for.
                self.block.tag(dest, std::slice::from_ref(&id), &tags).await?;
                self.block.images(dest, std::slice::from_ref(&id)).await?.into_iter().next().ok_or_else(|| {
                    TaskError::retry(backup_core::RetryClass::Transient, format!("image copy {id} not visible yet"))
                })?
            }
        };
        match &image.status {
            ArtifactStatus::Failed { reason } => {
                self.release_copy_slot("ebs", dest, &ctx.task_id).await;
                let _ = self.block.deregister_image(dest, &image.id).await;
                return Err(TaskError::permanent(format!("image copy {} failed: {reason}", image.id)));
            }
            ArtifactStatus::Pending { .. } => {
                return Ok(Outcome::Pending {
                    checkpoint: json!({ "image_id": image.id }),
                    recheck_after: self.timing.recheck,
                });
            }
            ArtifactStatus::Complete => self.release_copy_slot("ebs", dest, &ctx.task_id).await,
        }
        let mut snapshot_tags = tags.clone();
        snapshot_tags.insert("backup-fleet:image".into(), image.id.clone());
        self.block.tag(dest, &image.snapshot_ids, &snapshot_tags).await?;
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
        let verify = p
            .ctx
            .verify
            .then(|| Task::Verify(backup_schemas::Verify { artifact, source_resource: p.source_resource.clone() }));
        let prune =
            prune_after(&p.ctx, &p.source_resource, ResourceType::Ec2Instance, dest, Some(&p.target), image.created_at);
        Ok(Outcome::done(json!({ "image_id": image.id, "region": dest, "copy_of": p.image_id }))
            .with_children(verify.into_iter().chain(prune)))
    }
}
