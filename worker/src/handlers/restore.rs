//! Restores and restore drills.
//!
//! **Restores** (`restore.*`, started by `backupctl restore`) make a new resource from one backup:
//! an EBS snapshot becomes a volume, an AMI an instance (stopped unless asked to start), an RDS
//! snapshot a DB instance, a cluster snapshot a DB cluster (without instances: Aurora adds those
//! separately), and S3 backup versions become objects in a target bucket. The backup is the named
//! artifact, or the newest *good* one of a resource in the requested region ([`latest_good`]): not
//! deleted, verification passed or not yet made. Choosing by the artifact's region is what makes a
//! restore from the DR copy work while the source region is down.
//!
//! Every restore is idempotent per task id (derived from the operator's restore id): before
//! creating, it looks for what an earlier attempt made (EC2: a resource tagged with the task id;
//! RDS: the target identifier, refused unless it carries the task id; S3: the target key already
//! holding the version), and it parks (`Outcome::Pending`) while AWS is still creating. Restored
//! resources carry `restored-from` (the artifact id; for S3 the backup version id), the task id,
//! the fleet marker, and `restore-drill` when a drill made them.
//!
//! **Drills** (`restore.drill`) restore the newest backup of one resource into an isolated target
//! (volumes attached to nothing, also for AMIs, whose snapshots are restored as volumes because the
//! task carries no isolated subnet to launch into; RDS under `bf-drill-<task>`; S3 objects under
//! `drills/<task>/` in the backup bucket itself), validate it (available, size as catalogued, S3
//! SHA-256 as catalogued), record the outcome and the time to restore on each drilled backup's
//! catalog verification (checks `drill`, `restore_seconds`, `drill_task`, ...; read by `backupctl
//! report drills`), and always clean up, also after a failed validation or a permanent error. The
//! clean-up finds what to delete by the task id (EC2 tags, the RDS identifier if it carries the
//! task id, the S3 prefix), not by what one attempt remembers. A clean-up that does not finish
//! fails the task as retryable: the retry finds the recorded outcome and only cleans up, so
//! resources are never left behind without a failing task saying so.

use async_trait::async_trait;
use backup_aws::s3::sha256_base64;
use backup_core::artifacts::{ArtifactStatus, CatalogRecord, Tags, Verification};
use backup_core::services::block::{InstanceInfo, NewInstance, NewVolume, VolumeInfo};
use backup_core::services::objects::{CopyRequest, ObjectHead, ObjectVersion};
use backup_core::{AwsError, ErrorClass, RetryClass, TaskError};
use backup_schemas::{
    tags, ArtifactKind, ArtifactRef, ResourceType, RestoreDbCluster, RestoreDbInstance, RestoreDrill, RestoreInstance,
    RestoreObjects, RestoreSource, RestoreVolume, TaskId,
};
use chrono::{DateTime, Utc};
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};

use crate::handler::{Handler, HandlerResult, Outcome, TaskContext};
use crate::handlers::s3::HASH_LIMIT;
use crate::handlers::services::{Services, Started};

const GIB: u64 = 1024 * 1024 * 1024;
/// A drill whose restore is not available this long after it started fails (and cleans up).
pub const DRILL_TIMEOUT_HOURS: i64 = 6;
/// Newest objects (one version per key) an S3 drill restores: a sample, not the whole bucket.
pub const DRILL_OBJECTS: usize = 100;
/// Prefix of S3 drill restores inside the backup bucket: `drills/<task short id>/<backup key>`.
pub const DRILL_PREFIX: &str = "drills/";
/// Objects restored at once by one task.
const OBJECT_CONCURRENCY: usize = 8;

/// Keys a drill writes into the drilled backups' catalog verification (`backupctl report drills`
/// reads them by these names).
pub const CHECK_DRILL: &str = "drill";
pub const CHECK_RESTORE_SECONDS: &str = "restore_seconds";
pub const CHECK_DRILL_TASK: &str = "drill_task";
pub const CHECK_DRILL_PLAN: &str = "drill_plan";
pub const CHECK_DRILL_TYPE: &str = "drill_resource_type";

fn is_drill_check(key: &str) -> bool {
    key.starts_with(CHECK_DRILL) || key == CHECK_RESTORE_SECONDS
}

fn retry(reason: impl Into<String>) -> TaskError {
    TaskError::retry(RetryClass::Transient, reason)
}

fn not_found(err: &AwsError) -> bool {
    err.code.contains("NotFound")
}

fn already_exists(err: &AwsError) -> bool {
    err.code.contains("AlreadyExists")
}

/// Tags of a restored resource: where it came from, the task (the idempotency key a retry looks
/// for), the fleet marker, and the drill plan when a drill made it.
pub fn restore_tags(task_id: &TaskId, restored_from: &str, drill: Option<&str>) -> Tags {
    let mut tags = Tags::from([
        (tags::MANAGED.to_owned(), "true".to_owned()),
        (tags::TASK_ID.to_owned(), task_id.to_string()),
        (tags::RESTORED_FROM.to_owned(), restored_from.to_owned()),
    ]);
    if let Some(drill) = drill {
        tags.insert(tags::RESTORE_DRILL.to_owned(), drill.to_owned());
    }
    tags
}

/// The region a restore happens in: the artifact's (a volume, instance or DB is restored next to
/// its snapshot).
fn source_region(source: &RestoreSource) -> &str {
    match source {
        RestoreSource::Artifact(artifact) => &artifact.region,
        RestoreSource::LatestOf { region, .. } => region,
    }
}

/// The newest good backup among `records`: not deleted, in `region` (the artifact's region, so a DR
/// copy is chosen by asking for the DR region), of one of `kinds`, and whose verification passed
/// or has not been made.
pub fn latest_good<'a>(
    records: &'a [CatalogRecord],
    region: &str,
    kinds: &[ArtifactKind],
) -> Option<&'a CatalogRecord> {
    records
        .iter()
        .filter(|r| {
            r.deleted_at.is_none()
                && r.artifact.region == region
                && kinds.contains(&r.artifact.kind)
                && r.verification.as_ref().is_none_or(|v| v.ok)
        })
        .max_by_key(|r| r.created_at)
}

/// The versions of a backup prefix that were current at `as_of` (the latest when `None`), one per
/// key, skipping keys without one. A delete marker in the backup bucket hides the version right
/// before it (the backup hides copies that failed verification that way; it never deletes), so
/// each marker takes one older version out of consideration, whenever the marker was placed.
pub fn select_as_of(versions: &[ObjectVersion], as_of: Option<DateTime<Utc>>) -> Vec<&ObjectVersion> {
    let mut by_key: BTreeMap<&str, Vec<&ObjectVersion>> = BTreeMap::new();
    for version in versions {
        by_key.entry(version.key.as_str()).or_default().push(version);
    }
    let mut chosen = Vec::new();
    for (_, mut history) in by_key {
        // Newest first; at equal times the marker is the newer (a hide follows its copy).
        history.sort_by(|a, b| b.last_modified.cmp(&a.last_modified).then(b.delete_marker.cmp(&a.delete_marker)));
        let mut hidden = 0usize;
        for version in history {
            if version.delete_marker {
                hidden += 1;
            } else if hidden > 0 {
                hidden -= 1;
            } else if as_of.is_none_or(|t| version.last_modified <= t) {
                chosen.push(version);
                break;
            }
        }
    }
    chosen
}

/// `bf-drill-<task short id>`: the deterministic identifier of a drill's RDS restore (lowercase, as
/// RDS stores identifiers; well under the 63 characters of a cluster identifier).
pub fn drill_identifier(task_id: &TaskId) -> String {
    format!("bf-drill-{}", task_id.short().to_ascii_lowercase())
}

/// Where an S3 drill puts its restores inside the backup bucket.
pub fn drill_prefix(task_id: &TaskId) -> String {
    format!("{DRILL_PREFIX}{}/", task_id.short())
}

fn live_volume(volume: &VolumeInfo) -> bool {
    !matches!(volume.state.as_deref(), Some("deleting" | "deleted"))
}

fn live_instance(instance: &InstanceInfo) -> bool {
    !matches!(instance.state.as_deref(), Some("shutting-down" | "terminated"))
}

/// Progress of an artifact a restore waits for (a DR copy still copying).
fn waiting_for(what: &str, id: &str, status: &ArtifactStatus) -> Value {
    let progress = match status {
        ArtifactStatus::Pending { progress } => progress.clone(),
        _ => None,
    };
    json!({ "waiting_for": what, "id": id, "progress": progress })
}

/// One of several resources found under one task id (there should be one; more are reported).
fn single<T>(mut found: Vec<T>, id: impl Fn(&T) -> String) -> Option<T> {
    found.sort_by_key(&id);
    if found.len() > 1 {
        let ids: Vec<String> = found.iter().map(&id).collect();
        tracing::warn!(?ids, "more than one resource carries this task id; continuing with the first");
    }
    found.into_iter().next()
}

/// RDS statuses from which a restore never becomes available.
fn db_failed(status: Option<&str>) -> bool {
    status.is_some_and(|s| s == "failed" || s == "deleting" || s.starts_with("incompatible") || s == "storage-full")
}

/// A DB instance or cluster found under the target identifier is ours only if it carries this
/// task's id: anything else there is refused, never adopted (and never deleted by a drill).
fn owned_db(what: &str, id: &str, tags: &Tags, task_id: &TaskId) -> Result<(), TaskError> {
    match tags.get(tags::TASK_ID) {
        Some(owner) if owner == task_id.as_str() => Ok(()),
        _ => Err(TaskError::permanent(format!(
            "{what} {id} already exists and was not made by this restore; choose another target identifier"
        ))),
    }
}

/// The outcome of one restored S3 object.
#[derive(Clone, Debug)]
struct RestoredObject {
    key: String,
    head: ObjectHead,
    /// False when the target already held this version (a re-run).
    copied: bool,
    multipart: bool,
}

/// Parameters of restoring one backup version.
struct VersionCopy<'a> {
    region: &'a str,
    backup_bucket: &'a str,
    backup_key: &'a str,
    version_id: &'a str,
    size: u64,
    target_bucket: &'a str,
    target_key: String,
}

impl Services {
    /// The backup a restore reads and its catalog record. A named artifact is restored even when
    /// the catalog does not know it (in a disaster the catalog may be what is missing); a deleted
    /// one is refused.
    async fn restore_source(
        &self,
        source: &RestoreSource,
        kinds: &[ArtifactKind],
    ) -> Result<(ArtifactRef, Option<CatalogRecord>), TaskError> {
        match source {
            RestoreSource::Artifact(artifact) => {
                if !kinds.contains(&artifact.kind) {
                    return Err(TaskError::permanent(format!(
                        "{} {} cannot be restored by this task (expected {})",
                        artifact.kind.as_str(),
                        artifact.id,
                        kinds.iter().map(|k| k.as_str()).collect::<Vec<_>>().join(" or ")
                    )));
                }
                let record = self.catalog.get(artifact).await?;
                if let Some(deleted_at) = record.as_ref().and_then(|r| r.deleted_at) {
                    return Err(TaskError::permanent(format!("backup {} was deleted at {deleted_at}", artifact.id)));
                }
                Ok((artifact.clone(), record))
            }
            RestoreSource::LatestOf { resource, region } => {
                let records = self.catalog.by_resource(resource).await?;
                let record = latest_good(&records, region, kinds).ok_or_else(|| {
                    TaskError::permanent(format!(
                        "no usable backup of {resource} in {region} ({} records in the catalog; none live, \
                         verified or unverified, of kind {})",
                        records.len(),
                        kinds.iter().map(|k| k.as_str()).collect::<Vec<_>>().join(" or ")
                    ))
                })?;
                Ok((record.artifact.clone(), Some(record.clone())))
            }
        }
    }

    /// Starts a volume from a complete snapshot; `Err(Ok(progress))` while the snapshot (a DR copy)
    /// is still pending.
    async fn start_volume(
        &self,
        region: &str,
        snapshot_id: &str,
        volume: NewVolume,
    ) -> Result<Result<VolumeInfo, Value>, TaskError> {
        let snapshot = self
            .block
            .snapshots(region, &[snapshot_id.to_owned()])
            .await?
            .into_iter()
            .next()
            .ok_or_else(|| TaskError::permanent(format!("snapshot {snapshot_id} does not exist in {region}")))?;
        match &snapshot.status {
            ArtifactStatus::Failed { reason } => {
                return Err(TaskError::permanent(format!("snapshot {snapshot_id} failed: {reason}")))
            }
            ArtifactStatus::Pending { .. } => return Ok(Err(waiting_for("snapshot", snapshot_id, &snapshot.status))),
            ArtifactStatus::Complete => {}
        }
        let created = match self.block.create_volume(region, &volume).await {
            Ok(created) => created,
            Err(err) if not_found(&err) => {
                return Err(TaskError::permanent(format!("cannot restore {snapshot_id} in {region}: {err}")))
            }
            Err(err) => return Err(err.into()),
        };
        // Volumes start `creating`: look once more before parking (often enough, it is ready).
        Ok(Ok(self.block.volume(region, &created.id).await?.unwrap_or(created)))
    }

    /// Restores one backup version to `target_key` (tags: the backup's own, without the fleet's
    /// namespace, plus the restore's), unless the target already holds that version.
    async fn restore_version(
        &self,
        copy: VersionCopy<'_>,
        restore: &Tags,
        ctx: &TaskContext,
    ) -> Result<RestoredObject, TaskError> {
        if ctx.cancel.is_cancelled() {
            return Err(TaskError::cancelled("cancelled before restoring the next object"));
        }
        ctx.may_start("the object restore")?;
        let VersionCopy { region, backup_bucket, backup_key, version_id, size, target_bucket, target_key } = copy;
        if let Some(head) = self.objects.head(region, target_bucket, &target_key, None).await? {
            if head.size == size {
                let tags =
                    self.objects.object_tags(region, target_bucket, &target_key, head.version_id.as_deref()).await?;
                if tags.get(tags::RESTORED_FROM).map(String::as_str) == Some(version_id) {
                    return Ok(RestoredObject { key: target_key, head, copied: false, multipart: false });
                }
            }
        }
        let own = self.objects.object_tags(region, backup_bucket, backup_key, Some(version_id)).await?;
        // The restore's tags first, then as many of the object's own as S3's limit of 10 allows.
        let mut tags = restore.clone();
        for (key, value) in own.into_iter().filter(|(k, _)| !k.starts_with("backup-fleet:")) {
            if tags.len() >= backup_core::services::objects::MAX_OBJECT_TAGS {
                break;
            }
            tags.entry(key).or_insert(value);
        }
        let request = CopyRequest {
            source_region: region.to_owned(),
            source_bucket: backup_bucket.to_owned(),
            source_key: backup_key.to_owned(),
            source_version_id: Some(version_id.to_owned()),
            dest_region: region.to_owned(),
            dest_bucket: target_bucket.to_owned(),
            dest_key: target_key.clone(),
            storage_class: None,
            lock_until: None,
            tags,
            size,
        };
        let result = match self.objects.copy(&request).await {
            Ok(result) => result,
            Err(err) if err.is_code("NoSuchBucket") => {
                return Err(TaskError::permanent(format!("bucket {target_bucket} or {backup_bucket} does not exist")))
            }
            Err(err) => return Err(err.into()),
        };
        let head = self
            .objects
            .head(region, target_bucket, &target_key, result.version_id.as_deref())
            .await?
            .ok_or_else(|| retry(format!("{target_bucket}/{target_key} is not visible after restoring it")))?;
        if head.size != size {
            return Err(retry(format!(
                "{target_bucket}/{target_key} has {} bytes after restoring, the backup {size}",
                head.size
            )));
        }
        Ok(RestoredObject { key: target_key, head, copied: true, multipart: result.multipart })
    }
}

#[async_trait]
impl Handler<RestoreVolume> for Services {
    async fn run(&self, p: &RestoreVolume, ctx: &TaskContext) -> HandlerResult {
        let region = source_region(&p.source).to_owned();
        let existing: Vec<VolumeInfo> = match Started::from_checkpoint(ctx.checkpoint.as_ref()) {
            // Trust the id the create answered with: a tag lookup may not see the volume yet.
            Some(started) => self.block.volume(&region, &started.ids[0]).await?.into_iter().collect(),
            None if self.earlier_attempt_may_have_created(ctx).await? => self
                .block
                .volumes_tagged(&region, tags::TASK_ID, ctx.task_id.as_str())
                .await?
                .into_iter()
                .filter(live_volume)
                .collect(),
            None => Vec::new(),
        };
        let volume = match single(existing, |v| v.id.clone()) {
            Some(volume) => volume,
            None => {
                if let Some(outcome) = self.park_if_not_visible_yet(ctx) {
                    return outcome;
                }
                let (artifact, _) = self.restore_source(&p.source, &[ArtifactKind::EbsSnapshot]).await?;
                let new = NewVolume {
                    snapshot_id: artifact.id.clone(),
                    availability_zone: p.availability_zone.clone(),
                    volume_type: p.volume_type.clone(),
                    kms_key: p.kms_key.clone(),
                    tags: restore_tags(&ctx.task_id, &artifact.id, p.drill.then_some("true")),
                    client_token: ctx.task_id.to_string(),
                };
                ctx.may_start("the volume restore")?;
                match self.start_volume(&region, &artifact.id, new).await? {
                    Ok(volume) => volume,
                    Err(progress) => {
                        return Ok(Outcome::Pending { checkpoint: progress, recheck_after: self.timing.recheck })
                    }
                }
            }
        };
        let restored_from = volume.tags.get(tags::RESTORED_FROM).cloned();
        match volume.state.as_deref() {
            Some("available" | "in-use") => Ok(Outcome::done(json!({
                "restore_id": p.restore_id,
                "volume_id": volume.id,
                "region": region,
                "availability_zone": volume.availability_zone,
                "size_gib": volume.size_gib,
                "volume_type": volume.volume_type,
                "encrypted": volume.encrypted,
                "restored_from": restored_from,
            }))),
            Some("error") => {
                // Delete it so that a replay starts afresh.
                let _ = self.block.delete_volume(&region, &volume.id).await;
                Err(TaskError::permanent(format!("volume {} failed to restore (state error)", volume.id)))
            }
            state => self.pending_started(
                ctx,
                &volume.id,
                json!({ "volume_id": volume.id, "state": state, "restored_from": restored_from }),
            ),
        }
    }
}

#[async_trait]
impl Handler<RestoreInstance> for Services {
    async fn run(&self, p: &RestoreInstance, ctx: &TaskContext) -> HandlerResult {
        let region = source_region(&p.source).to_owned();
        let existing: Vec<InstanceInfo> = match Started::from_checkpoint(ctx.checkpoint.as_ref()) {
            // Trust the id RunInstances answered with: a tag lookup may not see the instance yet.
            Some(started) => self.block.instance(&region, &started.ids[0]).await?.into_iter().collect(),
            None if self.earlier_attempt_may_have_created(ctx).await? => self
                .block
                .instances_tagged(&region, tags::TASK_ID, ctx.task_id.as_str())
                .await?
                .into_iter()
                .filter(live_instance)
                .collect(),
            None => Vec::new(),
        };
        let mut instance = match single(existing, |i| i.id.clone()) {
            Some(instance) => instance,
            None => {
                if let Some(outcome) = self.park_if_not_visible_yet(ctx) {
                    return outcome;
                }
                let (artifact, _) = self.restore_source(&p.source, &[ArtifactKind::Ami]).await?;
                let image = self
                    .block
                    .images(&region, std::slice::from_ref(&artifact.id))
                    .await?
                    .into_iter()
                    .next()
                    .ok_or_else(|| TaskError::permanent(format!("image {} does not exist in {region}", artifact.id)))?;
                match &image.status {
                    ArtifactStatus::Failed { reason } => {
                        return Err(TaskError::permanent(format!("image {} failed: {reason}", image.id)))
                    }
                    ArtifactStatus::Pending { .. } => {
                        return Ok(Outcome::Pending {
                            checkpoint: waiting_for("image", &image.id, &image.status),
                            recheck_after: self.timing.recheck,
                        })
                    }
                    ArtifactStatus::Complete => {}
                }
                let new = NewInstance {
                    image_id: image.id.clone(),
                    instance_type: p.instance_type.clone(),
                    subnet_id: p.subnet_id.clone(),
                    tags: restore_tags(&ctx.task_id, &artifact.id, p.drill.then_some("true")),
                    client_token: ctx.task_id.to_string(),
                };
                ctx.may_start("the instance restore")?;
                let launched = match self.block.run_instance(&region, &new).await {
                    Ok(launched) => launched,
                    Err(err) if not_found(&err) || err.code.starts_with("InvalidParameter") => {
                        return Err(TaskError::permanent(format!("cannot launch {} in {region}: {err}", image.id)))
                    }
                    Err(err) => return Err(err.into()),
                };
                self.block.instance(&region, &launched.id).await?.unwrap_or(launched)
            }
        };
        // Stopped by default: a restored machine must not start serving (or writing) on its own.
        if !p.start && instance.state.as_deref() == Some("running") {
            self.block.stop_instance(&region, &instance.id).await?;
            instance = self.block.instance(&region, &instance.id).await?.unwrap_or(instance);
        }
        let done = match instance.state.as_deref() {
            Some("stopped") => true,
            Some("running") => p.start,
            _ => false,
        };
        let result = json!({
            "restore_id": p.restore_id,
            "instance_id": instance.id,
            "region": region,
            "state": instance.state,
            "instance_type": instance.instance_type,
            "subnet_id": instance.subnet_id,
            "availability_zone": instance.availability_zone,
            "volume_ids": instance.volume_ids,
            "restored_from": instance.tags.get(tags::RESTORED_FROM),
        });
        if done {
            Ok(Outcome::done(result))
        } else {
            self.pending_started(ctx, &instance.id, result)
        }
    }
}

impl Services {
    /// How a restored DB instance or cluster stands.
    fn db_outcome(
        &self,
        ctx: &TaskContext,
        kind: &str,
        id: &str,
        status: Option<&str>,
        result: Value,
    ) -> HandlerResult {
        match status {
            Some("available") => Ok(Outcome::done(result)),
            status if db_failed(status) => {
                Err(TaskError::permanent(format!("restored {kind} {id} is {}", status.unwrap_or("unknown"))))
            }
            _ => self.pending_started(ctx, id, result),
        }
    }
}

#[async_trait]
impl Handler<RestoreDbInstance> for Services {
    async fn run(&self, p: &RestoreDbInstance, ctx: &TaskContext) -> HandlerResult {
        let region = source_region(&p.source).to_owned();
        // RDS stores identifiers lowercased; look up what it will report.
        let target = p.target_identifier.to_ascii_lowercase();
        let db = match self.databases.instance(&region, &target).await? {
            Some(db) => {
                owned_db("DB instance", &target, &db.tags, &ctx.task_id)?;
                db
            }
            None => {
                if let Some(outcome) = self.park_if_not_visible_yet(ctx) {
                    return outcome;
                }
                let (artifact, _) = self.restore_source(&p.source, &[ArtifactKind::RdsSnapshot]).await?;
                let snapshot = self.databases.snapshot(&region, false, &artifact.id).await?.ok_or_else(|| {
                    TaskError::permanent(format!("DB snapshot {} does not exist in {region}", artifact.id))
                })?;
                match &snapshot.status {
                    ArtifactStatus::Failed { reason } => {
                        return Err(TaskError::permanent(format!("DB snapshot {} failed: {reason}", artifact.id)))
                    }
                    ArtifactStatus::Pending { .. } => {
                        return Ok(Outcome::Pending {
                            checkpoint: waiting_for("DB snapshot", &artifact.id, &snapshot.status),
                            recheck_after: self.timing.recheck,
                        })
                    }
                    ArtifactStatus::Complete => {}
                }
                let tags = restore_tags(&ctx.task_id, &artifact.id, p.drill.then_some("true"));
                ctx.may_start("the DB instance restore")?;
                match self
                    .databases
                    .restore_instance(
                        &region,
                        &artifact.id,
                        &target,
                        p.instance_class.as_deref(),
                        p.subnet_group.as_deref(),
                        &tags,
                    )
                    .await
                {
                    Ok(db) => db,
                    // An earlier attempt (or someone else) took the name, and a Describe does
                    // not show it yet: the re-check adopts it once visible if it is ours, and
                    // refuses it if not.
                    Err(err) if already_exists(&err) => {
                        return self.pending_started(
                            ctx,
                            &target,
                            json!({ "target": target, "status": "exists, not visible yet" }),
                        )
                    }
                    Err(err) => return Err(err.into()),
                }
            }
        };
        let result = json!({
            "restore_id": p.restore_id,
            "db_instance_id": db.identifier,
            "arn": db.arn,
            "region": region,
            "status": db.status,
            "class": db.class,
            "engine": db.engine,
            "allocated_gib": db.allocated_gib,
            "restored_from": db.tags.get(tags::RESTORED_FROM),
        });
        self.db_outcome(ctx, "DB instance", &db.identifier, db.status.as_deref(), result)
    }
}

#[async_trait]
impl Handler<RestoreDbCluster> for Services {
    async fn run(&self, p: &RestoreDbCluster, ctx: &TaskContext) -> HandlerResult {
        let region = source_region(&p.source).to_owned();
        let target = p.target_identifier.to_ascii_lowercase();
        let cluster = match self.databases.cluster(&region, &target).await? {
            Some(cluster) => {
                owned_db("DB cluster", &target, &cluster.tags, &ctx.task_id)?;
                cluster
            }
            None => {
                if let Some(outcome) = self.park_if_not_visible_yet(ctx) {
                    return outcome;
                }
                let (artifact, record) = self.restore_source(&p.source, &[ArtifactKind::RdsClusterSnapshot]).await?;
                let snapshot = self.databases.snapshot(&region, true, &artifact.id).await?.ok_or_else(|| {
                    TaskError::permanent(format!("DB cluster snapshot {} does not exist in {region}", artifact.id))
                })?;
                match &snapshot.status {
                    ArtifactStatus::Failed { reason } => {
                        return Err(TaskError::permanent(format!(
                            "DB cluster snapshot {} failed: {reason}",
                            artifact.id
                        )))
                    }
                    ArtifactStatus::Pending { .. } => {
                        return Ok(Outcome::Pending {
                            checkpoint: waiting_for("DB cluster snapshot", &artifact.id, &snapshot.status),
                            recheck_after: self.timing.recheck,
                        })
                    }
                    ArtifactStatus::Complete => {}
                }
                let engine = p
                    .engine
                    .clone()
                    .or(snapshot.engine.clone())
                    .or_else(|| record.and_then(|r| r.details.get("engine").cloned()))
                    .ok_or_else(|| {
                        TaskError::permanent(format!("the engine of {} is unknown: pass it explicitly", artifact.id))
                    })?;
                let tags = restore_tags(&ctx.task_id, &artifact.id, p.drill.then_some("true"));
                ctx.may_start("the DB cluster restore")?;
                match self
                    .databases
                    .restore_cluster(&region, &artifact.id, &target, &engine, p.subnet_group.as_deref(), &tags)
                    .await
                {
                    Ok(cluster) => cluster,
                    Err(err) if already_exists(&err) => {
                        return self.pending_started(
                            ctx,
                            &target,
                            json!({ "target": target, "status": "exists, not visible yet" }),
                        )
                    }
                    Err(err) => return Err(err.into()),
                }
            }
        };
        let result = json!({
            "restore_id": p.restore_id,
            "db_cluster_id": cluster.identifier,
            "arn": cluster.arn,
            "region": region,
            "status": cluster.status,
            "engine": cluster.engine,
            "members": cluster.members,
            "restored_from": cluster.tags.get(tags::RESTORED_FROM),
        });
        self.db_outcome(ctx, "DB cluster", &cluster.identifier, cluster.status.as_deref(), result)
    }
}

#[async_trait]
impl Handler<RestoreObjects> for Services {
    async fn run(&self, p: &RestoreObjects, ctx: &TaskContext) -> HandlerResult {
        let base = format!("{}/", p.source_bucket);
        let listing = format!("{base}{}", p.prefix);
        let versions = match self.objects.list_versions(&p.region, &p.backup_bucket, &listing).await {
            Ok(versions) => versions,
            Err(err) if err.is_code("NoSuchBucket") => {
                return Err(TaskError::permanent(format!(
                    "backup bucket {} does not exist in {}",
                    p.backup_bucket, p.region
                )))
            }
            Err(err) => return Err(err.into()),
        };
        let chosen = select_as_of(&versions, p.as_of);
        if chosen.is_empty() {
            return Err(TaskError::permanent(format!(
                "no backup under {}/{listing} {}",
                p.backup_bucket,
                p.as_of.map_or_else(|| "(latest)".to_owned(), |t| format!("as of {}", t.to_rfc3339()))
            )));
        }
        let copies: Vec<_> = chosen
            .iter()
            .map(|version| {
                let key = version.key.strip_prefix(&base).unwrap_or(&version.key);
                let restore = restore_tags(&ctx.task_id, &version.version_id, p.drill.then_some("true"));
                let copy = VersionCopy {
                    region: &p.region,
                    backup_bucket: &p.backup_bucket,
                    backup_key: &version.key,
                    version_id: &version.version_id,
                    size: version.size,
                    target_bucket: &p.target_bucket,
                    target_key: format!("{}{key}", p.target_prefix),
                };
                async move { (version.key.clone(), self.restore_version(copy, &restore, ctx).await) }
            })
            .collect();
        let outcomes: Vec<(String, Result<RestoredObject, TaskError>)> =
            futures::stream::iter(copies).buffer_unordered(OBJECT_CONCURRENCY).collect().await;
        let (mut restored, mut unchanged, mut bytes) = (0u64, 0u64, 0u64);
        let mut failures: Vec<(String, TaskError)> = Vec::new();
        for (key, outcome) in outcomes {
            match outcome {
                Ok(object) if object.copied => {
                    restored += 1;
                    bytes += object.head.size;
                }
                Ok(_) => unchanged += 1,
                Err(err) => failures.push((key, err)),
            }
        }
        if !failures.is_empty() {
            // What was restored stays restored: the retry skips it. Cancellation wins, then
            // retryable, then permanent.
            let pick = |class: fn(&ErrorClass) -> bool| failures.iter().find(|(_, e)| class(&e.class));
            let (key, first) = pick(|c| matches!(c, ErrorClass::Cancelled))
                .or_else(|| pick(|c| matches!(c, ErrorClass::Retry(_))))
                .unwrap_or(&failures[0]);
            let reason = format!(
                "{} of {} objects failed (restored {restored}, already there {unchanged}); first: {key:?}: {}",
                failures.len(),
                chosen.len(),
                first.reason
            );
            return Err(TaskError { class: first.class, reason, retry_after: first.retry_after });
        }
        Ok(Outcome::done(json!({
            "restore_id": p.restore_id,
            "backup_bucket": p.backup_bucket,
            "source_bucket": p.source_bucket,
            "prefix": p.prefix,
            "as_of": p.as_of,
            "target_bucket": p.target_bucket,
            "target_prefix": p.target_prefix,
            "objects": chosen.len(),
            "restored": restored,
            "already_there": unchanged,
            "bytes": bytes,
        })))
    }
}

// ---------------------------------------------------------------------------------------------
// Drills
// ---------------------------------------------------------------------------------------------

/// What a parked drill remembers: when the restore started (the time to restore is measured from
/// it) and which backups it is restoring (a newer backup landing meanwhile must not switch them).
#[derive(Debug, Default, Serialize, Deserialize)]
struct DrillCheckpoint {
    #[serde(default)]
    started_at: Option<DateTime<Utc>>,
    #[serde(default)]
    artifacts: Vec<ArtifactRef>,
    #[serde(default)]
    progress: Value,
}

/// What a drill's earlier attempt started (its database restore), from the checkpoint.
fn drill_started(ctx: &TaskContext) -> Option<Started> {
    let started = ctx.checkpoint.as_ref()?.pointer("/progress/started")?;
    serde_json::from_value(started.clone()).ok()
}

/// A drill's validation: each check as `ok: …` or `FAILED: …`.
#[derive(Debug, Default)]
struct DrillChecks {
    checks: BTreeMap<String, String>,
    ok: bool,
    restored: Vec<String>,
}

impl DrillChecks {
    fn new() -> Self {
        Self { ok: true, ..Self::default() }
    }

    fn check(&mut self, name: impl Into<String>, ok: bool, detail: impl Into<String>) {
        let detail = detail.into();
        self.checks.insert(name.into(), if ok { format!("ok: {detail}") } else { format!("FAILED: {detail}") });
        self.ok &= ok;
    }

    fn failed(reason: impl Into<String>) -> Self {
        let mut checks = Self::new();
        checks.check("restore", false, reason);
        checks
    }

    fn summary(&self) -> String {
        let failed: Vec<String> =
            self.checks.iter().filter(|(_, v)| v.starts_with("FAILED")).map(|(k, v)| format!("{k}: {v}")).collect();
        if failed.is_empty() {
            format!("ok: {} checks passed", self.checks.len())
        } else {
            format!("FAILED: {}", failed.join("; "))
        }
    }
}

/// Where a drill stands after one attempt.
enum DrillStep {
    /// Still restoring; the progress goes into the checkpoint.
    Waiting(Value),
    /// Restored (or given up) and validated.
    Validated(DrillChecks),
}

/// The newest backup of the drilled resource in its own region (copies are not drilled): for an
/// instance the whole snapshot set, for a bucket the newest version of up to [`DRILL_OBJECTS`]
/// keys. Verification is not consulted: a drill tests the newest backup, whatever was said of it.
fn drill_choice(records: &[CatalogRecord], p: &RestoreDrill) -> Vec<CatalogRecord> {
    let kinds: &[ArtifactKind] = match p.resource_type {
        ResourceType::Ec2Volume => &[ArtifactKind::EbsSnapshot],
        ResourceType::Ec2Instance => &[ArtifactKind::EbsSnapshot, ArtifactKind::Ami],
        ResourceType::RdsInstance => &[ArtifactKind::RdsSnapshot],
        ResourceType::RdsCluster => &[ArtifactKind::RdsClusterSnapshot],
        ResourceType::S3Bucket => &[ArtifactKind::S3Object],
    };
    let mut live: Vec<&CatalogRecord> = records
        .iter()
        .filter(|r| {
            r.deleted_at.is_none()
                && r.copy_of.is_none()
                && r.resource_region == p.region
                && kinds.contains(&r.artifact.kind)
        })
        .collect();
    live.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(a.artifact.id.cmp(&b.artifact.id)));
    let Some(newest) = live.first() else { return Vec::new() };
    match newest.artifact.kind {
        // A snapshot set shares its task: restore every snapshot of it.
        ArtifactKind::EbsSnapshot => live
            .iter()
            .filter(|r| r.artifact.kind == ArtifactKind::EbsSnapshot && r.task_id == newest.task_id)
            .map(|r| (*r).clone())
            .collect(),
        ArtifactKind::S3Object => {
            let mut seen = BTreeSet::new();
            live.iter()
                .filter(|r| seen.insert(s3_location(r).map(|(b, k, _)| (b.to_owned(), k.to_owned()))))
                .take(DRILL_OBJECTS)
                .map(|r| (*r).clone())
                .collect()
        }
        _ => vec![(*newest).clone()],
    }
}

/// Backup bucket, key and version id of an S3 backup record (its details; else its id,
/// `<bucket>/<key>#<version>`).
fn s3_location(record: &CatalogRecord) -> Option<(&str, &str, &str)> {
    let details = &record.details;
    if let (Some(bucket), Some(key), Some(version)) =
        (details.get("bucket"), details.get("key"), details.get("version_id"))
    {
        return Some((bucket, key, version));
    }
    let (location, version) = record.artifact.id.rsplit_once('#')?;
    let (bucket, key) = location.split_once('/')?;
    Some((bucket, key, version))
}

/// The records an earlier attempt of this drill already validated and recorded.
fn recorded_drill(records: &[CatalogRecord], task_id: &TaskId) -> Vec<CatalogRecord> {
    records
        .iter()
        .filter(|r| {
            r.verification.as_ref().and_then(|v| v.checks.get(CHECK_DRILL_TASK)).map(String::as_str)
                == Some(task_id.as_str())
        })
        .cloned()
        .collect()
}

/// A full-object SHA-256 (S3 suffixes composite ones `-<parts>`; moto drops the suffix, so the
/// catalog's `multipart` detail says it too).
fn full_checksum(record: &CatalogRecord) -> Option<&str> {
    let multipart = record.details.get("multipart").is_some_and(|m| m == "true");
    record.details.get("checksum_sha256").map(String::as_str).filter(|c| !c.contains('-') && !multipart)
}

impl Services {
    /// Restores what `chosen` backs up into the drill's isolated targets (find or create), and
    /// validates it once everything is available.
    async fn drill_step(
        &self,
        p: &RestoreDrill,
        ctx: &TaskContext,
        chosen: &[CatalogRecord],
        timed_out: bool,
    ) -> Result<DrillStep, TaskError> {
        match chosen[0].artifact.kind {
            ArtifactKind::EbsSnapshot | ArtifactKind::Ami => self.drill_volumes(p, ctx, chosen, timed_out).await,
            ArtifactKind::RdsSnapshot => self.drill_db(p, ctx, &chosen[0], false, timed_out).await,
            ArtifactKind::RdsClusterSnapshot => self.drill_db(p, ctx, &chosen[0], true, timed_out).await,
            ArtifactKind::S3Object => self.drill_objects(p, ctx, chosen).await,
        }
    }

    async fn drill_volumes(
        &self,
        p: &RestoreDrill,
        ctx: &TaskContext,
        chosen: &[CatalogRecord],
        timed_out: bool,
    ) -> Result<DrillStep, TaskError> {
        let region = &p.region;
        // (snapshot, the size it should restore to, where it is catalogued)
        let mut wanted: Vec<(String, Option<u64>, String)> = Vec::new();
        for record in chosen {
            match record.artifact.kind {
                ArtifactKind::EbsSnapshot => {
                    wanted.push((record.artifact.id.clone(), record.size_bytes, "catalog".into()));
                }
                _ => {
                    let image = self
                        .block
                        .images(region, std::slice::from_ref(&record.artifact.id))
                        .await?
                        .into_iter()
                        .next()
                        .ok_or_else(|| {
                            TaskError::permanent(format!("image {} no longer exists in {region}", record.artifact.id))
                        })?;
                    // An AMI records no size in the catalog: its snapshots' own sizes are the reference.
                    for snapshot in self.block.snapshots(region, &image.snapshot_ids).await? {
                        wanted.push((snapshot.id, snapshot.size_gib.map(|g| g as u64 * GIB), "snapshot".into()));
                    }
                }
            }
        }
        if wanted.is_empty() {
            return Ok(DrillStep::Validated(DrillChecks::failed("the backup has no snapshots to restore")));
        }
        let existing: Vec<VolumeInfo> = self
            .block
            .volumes_tagged(region, tags::TASK_ID, ctx.task_id.as_str())
            .await?
            .into_iter()
            .filter(live_volume)
            .collect();
        // Volumes an earlier attempt of this drill created, by the ids their creates answered
        // with (a tag lookup may not see a new volume yet).
        let known: BTreeMap<String, String> = ctx
            .checkpoint
            .as_ref()
            .and_then(|c| c.pointer("/progress/volumes"))
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|v| Some((v["snapshot_id"].as_str()?.to_owned(), v["volume_id"].as_str()?.to_owned())))
            .collect();
        let mut volumes: Vec<(String, Option<u64>, String, VolumeInfo)> = Vec::new();
        let mut waiting = Vec::new();
        for (snapshot_id, expected, reference) in wanted {
            let mut found = existing.iter().find(|v| v.tags.get(tags::RESTORED_FROM) == Some(&snapshot_id)).cloned();
            if let (None, Some(volume_id)) = (&found, known.get(&snapshot_id)) {
                found = self.block.volume(region, volume_id).await?;
                if found.is_none() {
                    waiting.push(
                        json!({ "snapshot_id": snapshot_id, "volume_id": volume_id, "state": "not visible yet" }),
                    );
                    continue;
                }
            }
            let volume = match found {
                Some(volume) => volume,
                None => {
                    // Next to the source volume when it still exists, else in the region's first zone.
                    let source_volume = chosen
                        .iter()
                        .find(|r| r.artifact.id == snapshot_id)
                        .and_then(|r| r.details.get("volume_id").cloned());
                    let zone = match source_volume {
                        Some(volume) => self.block.volume(region, &volume).await?.and_then(|v| v.availability_zone),
                        None => None,
                    };
                    let mut token = format!("{}-{snapshot_id}", ctx.task_id);
                    token.truncate(64);
                    let new = NewVolume {
                        snapshot_id: snapshot_id.clone(),
                        availability_zone: zone.unwrap_or_else(|| format!("{region}a")),
                        volume_type: None,
                        kms_key: None,
                        tags: restore_tags(&ctx.task_id, &snapshot_id, Some(&p.plan)),
                        client_token: token,
                    };
                    ctx.may_start("the drill's volume restore")?;
                    match self.start_volume(region, &snapshot_id, new).await? {
                        Ok(volume) => volume,
                        Err(progress) => {
                            waiting.push(progress);
                            continue;
                        }
                    }
                }
            };
            volumes.push((snapshot_id, expected, reference, volume));
        }
        let pending = !waiting.is_empty()
            || volumes.iter().any(|(_, _, _, v)| !matches!(v.state.as_deref(), Some("available" | "error")));
        if pending && !timed_out {
            let states: Vec<Value> = volumes
                .iter()
                .map(|(s, _, _, v)| json!({ "snapshot_id": s, "volume_id": v.id, "state": v.state }))
                .chain(waiting.iter().filter(|w| w.get("volume_id").is_some()).cloned())
                .collect();
            return Ok(DrillStep::Waiting(json!({ "volumes": states, "waiting": waiting })));
        }
        let mut checks = DrillChecks::new();
        if !waiting.is_empty() {
            checks.check("restore", false, format!("snapshots still not restorable: {waiting:?}"));
        }
        for (snapshot_id, expected, reference, volume) in volumes {
            checks.restored.push(volume.id.clone());
            let available = volume.state.as_deref() == Some("available");
            checks.check(
                format!("{snapshot_id}.available"),
                available,
                format!("volume {} is {}", volume.id, volume.state.as_deref().unwrap_or("unknown")),
            );
            let actual = volume.size_gib as u64 * GIB;
            match expected {
                Some(expected) => checks.check(
                    format!("{snapshot_id}.size"),
                    actual == expected,
                    format!("{} GiB restored, {reference} says {} bytes", volume.size_gib, expected),
                ),
                None => {
                    checks.check(format!("{snapshot_id}.size"), actual > 0, format!("{} GiB restored", volume.size_gib))
                }
            }
        }
        Ok(DrillStep::Validated(checks))
    }

    async fn drill_db(
        &self,
        p: &RestoreDrill,
        ctx: &TaskContext,
        record: &CatalogRecord,
        cluster: bool,
        timed_out: bool,
    ) -> Result<DrillStep, TaskError> {
        let region = &p.region;
        let target = drill_identifier(&ctx.task_id);
        let noun = if cluster { "DB cluster" } else { "DB instance" };
        let found = if cluster {
            self.databases.cluster(region, &target).await?.map(|c| (c.status, c.allocated_gib, c.tags))
        } else {
            self.databases.instance(region, &target).await?.map(|i| (i.status, i.allocated_gib, i.tags))
        };
        let (status, allocated_gib) = match found {
            Some((status, gib, tags)) => {
                owned_db(noun, &target, &tags, &ctx.task_id)?;
                (status, gib)
            }
            None => {
                // Started by an earlier attempt and not visible yet: restoring again would
                // replace (or be refused), so wait for it to show.
                if let Some(started) = drill_started(ctx).filter(|s| s.ids.contains(&target)) {
                    if self.maybe_not_visible_yet(&started) {
                        return Ok(DrillStep::Waiting(
                            json!({ "target": target, "status": "not visible yet", "started": started }),
                        ));
                    }
                }
                let snapshot_id = &record.artifact.id;
                let snapshot = self.databases.snapshot(region, cluster, snapshot_id).await?.ok_or_else(|| {
                    TaskError::permanent(format!("snapshot {snapshot_id} no longer exists in {region}"))
                })?;
                match &snapshot.status {
                    ArtifactStatus::Failed { reason } => {
                        return Ok(DrillStep::Validated(DrillChecks::failed(format!(
                            "snapshot {snapshot_id} failed: {reason}"
                        ))))
                    }
                    ArtifactStatus::Pending { .. } if !timed_out => {
                        return Ok(DrillStep::Waiting(waiting_for("snapshot", snapshot_id, &snapshot.status)))
                    }
                    _ => {}
                }
                let tags = restore_tags(&ctx.task_id, snapshot_id, Some(&p.plan));
                ctx.may_start("the drill's database restore")?;
                let restored = if cluster {
                    let engine = snapshot
                        .engine
                        .clone()
                        .or_else(|| record.details.get("engine").cloned())
                        .ok_or_else(|| TaskError::permanent(format!("the engine of {snapshot_id} is unknown")))?;
                    self.databases
                        .restore_cluster(region, snapshot_id, &target, &engine, None, &tags)
                        .await
                        .map(|c| (c.status, c.allocated_gib))
                } else {
                    self.databases
                        .restore_instance(region, snapshot_id, &target, None, None, &tags)
                        .await
                        .map(|i| (i.status, i.allocated_gib))
                };
                match restored {
                    Ok(restored) => restored,
                    // Made by an earlier attempt and not visible yet (the name is this task's):
                    // look again; ownership is checked once it shows.
                    Err(err) if already_exists(&err) => {
                        let started = drill_started(ctx)
                            .filter(|s| s.ids.contains(&target))
                            .unwrap_or_else(|| Started::now(vec![target.clone()]));
                        return Ok(DrillStep::Waiting(
                            json!({ "target": target, "status": "exists, not visible yet", "started": started }),
                        ));
                    }
                    Err(err) if matches!(err.class, ErrorClass::Permanent) => {
                        return Ok(DrillStep::Validated(DrillChecks::failed(format!("restore refused: {err}"))))
                    }
                    Err(err) => return Err(err.into()),
                }
            }
        };
        let available = status.as_deref() == Some("available");
        if !available && !db_failed(status.as_deref()) && !timed_out {
            let started = drill_started(ctx)
                .filter(|s| s.ids.contains(&target))
                .unwrap_or_else(|| Started::now(vec![target.clone()]));
            return Ok(DrillStep::Waiting(json!({ "target": target, "status": status, "started": started })));
        }
        let mut checks = DrillChecks::new();
        checks.restored.push(target.clone());
        checks.check("available", available, format!("{noun} {target} is {}", status.as_deref().unwrap_or("unknown")));
        match (allocated_gib, record.size_bytes) {
            (Some(gib), Some(expected)) => checks.check(
                "size",
                gib as u64 * GIB == expected,
                format!("{gib} GiB restored, catalog says {expected} bytes"),
            ),
            (gib, expected) => {
                checks.check("size", true, format!("not comparable ({gib:?} GiB, catalog {expected:?})"))
            }
        }
        Ok(DrillStep::Validated(checks))
    }

    async fn drill_objects(
        &self,
        p: &RestoreDrill,
        ctx: &TaskContext,
        chosen: &[CatalogRecord],
    ) -> Result<DrillStep, TaskError> {
        let prefix = drill_prefix(&ctx.task_id);
        let restore = restore_tags(&ctx.task_id, "", Some(&p.plan));
        let copies: Vec<_> = chosen
            .iter()
            .filter_map(|record| {
                let (bucket, key, version) = s3_location(record)?;
                let mut tags = restore.clone();
                tags.insert(tags::RESTORED_FROM.to_owned(), version.to_owned());
                let copy = VersionCopy {
                    region: &record.artifact.region,
                    backup_bucket: bucket,
                    backup_key: key,
                    version_id: version,
                    size: record.size_bytes.unwrap_or_default(),
                    target_bucket: bucket,
                    target_key: format!("{prefix}{key}"),
                };
                Some(async move { (record, self.restore_version(copy, &tags, ctx).await) })
            })
            .collect();
        let outcomes: Vec<(&CatalogRecord, Result<RestoredObject, TaskError>)> =
            futures::stream::iter(copies).buffer_unordered(OBJECT_CONCURRENCY).collect().await;
        let mut checks = DrillChecks::new();
        if outcomes.len() < chosen.len() {
            checks.check("records", false, format!("{} records name no object", chosen.len() - outcomes.len()));
        }
        for (record, outcome) in outcomes {
            let name = record.details.get("key").cloned().unwrap_or_else(|| record.artifact.id.clone());
            let object = match outcome {
                Ok(object) => object,
                Err(err) if matches!(err.class, ErrorClass::Permanent) => {
                    checks.check(format!("{name}.restore"), false, err.reason);
                    continue;
                }
                Err(err) => return Err(err),
            };
            checks.restored.push(object.key.clone());
            if let Some(expected) = record.size_bytes {
                checks.check(
                    format!("{name}.size"),
                    object.head.size == expected,
                    format!("{} bytes restored, catalog says {expected}", object.head.size),
                );
            }
            let Some(expected) = full_checksum(record) else {
                checks.check(format!("{name}.checksum"), true, "no full-object checksum in the catalog: size only");
                continue;
            };
            let restored = object.head.checksum_sha256.as_deref().filter(|c| !c.contains('-') && !object.multipart);
            let actual = match restored {
                Some(actual) => Some(actual.to_owned()),
                None if object.head.size <= HASH_LIMIT => {
                    let (region, bucket) = (&record.artifact.region, s3_location(record).map_or("", |l| l.0));
                    let bytes =
                        self.objects.get_bytes(region, bucket, &object.key, object.head.version_id.as_deref()).await?;
                    Some(sha256_base64(&bytes))
                }
                None => None,
            };
            match actual {
                Some(actual) => checks.check(
                    format!("{name}.checksum"),
                    actual == expected,
                    format!("sha256 {actual}, catalog {expected}"),
                ),
                None => checks.check(format!("{name}.checksum"), true, "too large to read back: size only"),
            }
        }
        Ok(DrillStep::Validated(checks))
    }

    /// Whether the drill's database (instance or cluster) exists, is not being deleted already,
    /// and is ours: only what carries this task's id may be deleted (and must be accounted for).
    async fn live_drill_database(
        &self,
        region: &str,
        cluster: bool,
        target: &str,
        task: &str,
    ) -> Result<bool, TaskError> {
        let live = |tags: &Tags, status: Option<&str>| {
            tags.get(tags::TASK_ID).map(String::as_str) == Some(task) && status != Some("deleting")
        };
        Ok(if cluster {
            self.databases.cluster(region, target).await?.is_some_and(|c| live(&c.tags, c.status.as_deref()))
        } else {
            self.databases.instance(region, target).await?.is_some_and(|db| live(&db.tags, db.status.as_deref()))
        })
    }

    /// Deletes everything this drill restored, found by the task id (EC2 tags, the RDS identifier,
    /// the S3 prefix) rather than by what this attempt remembers, then confirms nothing is left.
    async fn drill_cleanup(
        &self,
        p: &RestoreDrill,
        ctx: &TaskContext,
        buckets: &BTreeSet<(String, String)>,
    ) -> Result<Vec<String>, TaskError> {
        let region = &p.region;
        let task = ctx.task_id.as_str();
        let mut deleted = Vec::new();
        let mut left = Vec::new();
        match p.resource_type {
            ResourceType::Ec2Volume | ResourceType::Ec2Instance => {
                for instance in self.block.instances_tagged(region, tags::TASK_ID, task).await? {
                    if live_instance(&instance) {
                        self.block.terminate_instance(region, &instance.id).await?;
                        deleted.push(instance.id);
                    }
                }
                for volume in self.block.volumes_tagged(region, tags::TASK_ID, task).await? {
                    if live_volume(&volume) {
                        self.block.delete_volume(region, &volume.id).await?;
                        deleted.push(volume.id);
                    }
                }
                left.extend(
                    self.block
                        .volumes_tagged(region, tags::TASK_ID, task)
                        .await?
                        .into_iter()
                        .filter(live_volume)
                        .map(|v| v.id),
                );
                left.extend(
                    self.block
                        .instances_tagged(region, tags::TASK_ID, task)
                        .await?
                        .into_iter()
                        .filter(live_instance)
                        .map(|i| i.id),
                );
            }
            ResourceType::RdsInstance | ResourceType::RdsCluster => {
                // A drill's cluster has no instances (restores make none), so it deletes at once.
                let cluster = p.resource_type == ResourceType::RdsCluster;
                let target = drill_identifier(&ctx.task_id);
                if self.live_drill_database(region, cluster, &target, task).await? {
                    if cluster {
                        self.databases.delete_cluster(region, &target).await?;
                    } else {
                        self.databases.delete_instance(region, &target).await?;
                    }
                    deleted.push(target.clone());
                }
                if self.live_drill_database(region, cluster, &target, task).await? {
                    left.push(target);
                }
            }
            ResourceType::S3Bucket => {
                let prefix = drill_prefix(&ctx.task_id);
                for (bucket_region, bucket) in buckets {
                    for version in self.objects.list_versions(bucket_region, bucket, &prefix).await? {
                        self.objects.delete_version(bucket_region, bucket, &version.key, &version.version_id).await?;
                        deleted.push(format!("{bucket}/{}", version.key));
                    }
                    left.extend(
                        self.objects
                            .list_versions(bucket_region, bucket, &prefix)
                            .await?
                            .into_iter()
                            .map(|v| format!("{bucket}/{}#{}", v.key, v.version_id)),
                    );
                }
            }
        }
        if !left.is_empty() {
            return Err(retry(format!("drill clean-up incomplete: still present: {left:?}")));
        }
        Ok(deleted)
    }

    /// Records the drill on each drilled backup's verification, keeping the other checks.
    async fn record_drill(
        &self,
        p: &RestoreDrill,
        ctx: &TaskContext,
        chosen: &[CatalogRecord],
        checks: &DrillChecks,
        restore_seconds: f64,
    ) -> Result<(), TaskError> {
        let now = Utc::now();
        for record in chosen {
            let mut all = record.verification.as_ref().map(|v| v.checks.clone()).unwrap_or_default();
            all.retain(|key, _| !is_drill_check(key));
            let backup_ok = all.values().all(|v| v.starts_with("ok"));
            all.insert(CHECK_DRILL.into(), checks.summary());
            all.insert(CHECK_RESTORE_SECONDS.into(), format!("{restore_seconds:.1}"));
            all.insert(CHECK_DRILL_TASK.into(), ctx.task_id.to_string());
            all.insert(CHECK_DRILL_PLAN.into(), p.plan.clone());
            all.insert(CHECK_DRILL_TYPE.into(), p.resource_type.as_str().to_owned());
            let verification = Verification { verified_at: now, ok: backup_ok && checks.ok, checks: all };
            self.catalog.set_verification(&record.artifact, &verification).await?;
        }
        Ok(())
    }
}

/// The S3 backup buckets a drill of `records` restores into.
fn drill_buckets(records: &[CatalogRecord]) -> BTreeSet<(String, String)> {
    records
        .iter()
        .filter(|r| r.artifact.kind == ArtifactKind::S3Object)
        .filter_map(|r| s3_location(r).map(|(bucket, _, _)| (r.artifact.region.clone(), bucket.to_owned())))
        .collect()
}

fn drill_result(
    p: &RestoreDrill,
    chosen: &[CatalogRecord],
    ok: bool,
    summary: &str,
    restore_seconds: Option<f64>,
    checks: Option<&BTreeMap<String, String>>,
    cleaned: &[String],
) -> Value {
    json!({
        "plan": p.plan,
        "resource": p.resource,
        "resource_type": p.resource_type,
        "region": p.region,
        "ok": ok,
        "drill": summary,
        "restore_seconds": restore_seconds,
        "artifacts": chosen.iter().map(|r| &r.artifact.id).collect::<Vec<_>>(),
        "checks": checks,
        "cleaned_up": cleaned,
    })
}

#[async_trait]
impl Handler<RestoreDrill> for Services {
    async fn run(&self, p: &RestoreDrill, ctx: &TaskContext) -> HandlerResult {
        let checkpoint: DrillCheckpoint =
            ctx.checkpoint.clone().and_then(|c| serde_json::from_value(c).ok()).unwrap_or_default();
        let started_at = checkpoint.started_at.unwrap_or_else(Utc::now);
        let records = self.catalog.by_resource(&p.resource).await?;

        // An earlier attempt validated and recorded this drill, then could not finish cleaning up.
        let recorded = recorded_drill(&records, &ctx.task_id);
        if let Some(verification) = recorded.first().and_then(|r| r.verification.clone()) {
            let cleaned = self.drill_cleanup(p, ctx, &drill_buckets(&recorded)).await?;
            let summary = verification.checks.get(CHECK_DRILL).cloned().unwrap_or_default();
            let seconds = verification.checks.get(CHECK_RESTORE_SECONDS).and_then(|s| s.parse().ok());
            let ok = summary.starts_with("ok");
            let result = drill_result(p, &recorded, ok, &summary, seconds, None, &cleaned);
            return if ok {
                Ok(Outcome::done(result))
            } else {
                Err(TaskError::permanent(format!("restore drill of {} failed: {summary}", p.resource)))
            };
        }

        let chosen: Vec<CatalogRecord> = if checkpoint.artifacts.is_empty() {
            drill_choice(&records, p)
        } else {
            records.iter().filter(|r| checkpoint.artifacts.contains(&r.artifact)).cloned().collect()
        };
        if chosen.is_empty() {
            return Err(TaskError::permanent(format!(
                "no backup of {} in {} to drill ({} catalog records)",
                p.resource,
                p.region,
                records.len()
            )));
        }
        let buckets = drill_buckets(&chosen);
        // Past its deadline (or the drill's own time limit) a drill waits no longer: it validates
        // what was restored, records the outcome and cleans up, never leaving restores behind.
        let timed_out = Utc::now() - started_at > chrono::Duration::hours(DRILL_TIMEOUT_HOURS) || ctx.past_deadline();
        let checks = match self.drill_step(p, ctx, &chosen, timed_out).await {
            Ok(DrillStep::Waiting(progress)) => {
                let checkpoint = DrillCheckpoint {
                    started_at: Some(started_at),
                    artifacts: chosen.iter().map(|r| r.artifact.clone()).collect(),
                    progress,
                };
                return Ok(Outcome::Pending {
                    checkpoint: serde_json::to_value(checkpoint).unwrap_or_default(),
                    recheck_after: self.timing.recheck,
                });
            }
            Ok(DrillStep::Validated(checks)) => checks,
            // Draining: the next owner finds what this attempt restored.
            Err(err) if matches!(err.class, ErrorClass::Cancelled) => return Err(err),
            Err(err) => {
                // Never leave restores behind: clean up before giving the error back, and record
                // a drill that cannot succeed.
                if let Err(cleanup) = self.drill_cleanup(p, ctx, &buckets).await {
                    return Err(retry(format!("{}; and the drill clean-up failed: {}", err.reason, cleanup.reason)));
                }
                if !err.is_retryable() {
                    let checks = DrillChecks::failed(err.reason.clone());
                    self.record_drill(p, ctx, &chosen, &checks, 0.0).await?;
                }
                return Err(err);
            }
        };
        let restore_seconds = (Utc::now() - started_at).num_milliseconds() as f64 / 1000.0;
        let recorded = self.record_drill(p, ctx, &chosen, &checks, restore_seconds).await;
        let cleaned = match self.drill_cleanup(p, ctx, &buckets).await {
            Ok(cleaned) => cleaned,
            Err(err) => {
                return Err(retry(format!(
                    "drill {}; clean-up failed: {}",
                    if checks.ok { "passed" } else { "failed" },
                    err.reason
                )))
            }
        };
        recorded?;
        let summary = checks.summary();
        tracing::info!(resource = %p.resource, ok = checks.ok, restore_seconds, %summary, "restore drill finished");
        if checks.ok {
            let mut result =
                drill_result(p, &chosen, true, &summary, Some(restore_seconds), Some(&checks.checks), &cleaned);
            result["restored"] = json!(checks.restored);
            Ok(Outcome::done(result))
        } else {
            Err(TaskError::permanent(format!(
                "restore drill of {} failed validation ({} restored, cleaned up): {summary}",
                p.resource,
                checks.restored.join(", ")
            )))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(minute: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 20, 2, minute, 0).unwrap()
    }

    fn version(key: &str, id: &str, minute: u32, marker: bool) -> ObjectVersion {
        ObjectVersion {
            key: key.into(),
            version_id: id.into(),
            size: 1,
            etag: None,
            last_modified: at(minute),
            is_latest: false,
            delete_marker: marker,
        }
    }

    fn ids(chosen: Vec<&ObjectVersion>) -> Vec<&str> {
        chosen.into_iter().map(|v| v.version_id.as_str()).collect()
    }

    #[test]
    fn as_of_picks_the_version_current_then() {
        let versions =
            vec![version("b/k", "v3", 30, false), version("b/k", "v1", 10, false), version("b/k", "v2", 20, false)];
        assert_eq!(ids(select_as_of(&versions, None)), ["v3"]);
        assert_eq!(ids(select_as_of(&versions, Some(at(25)))), ["v2"]);
        assert_eq!(ids(select_as_of(&versions, Some(at(20)))), ["v2"], "inclusive");
        assert!(select_as_of(&versions, Some(at(5))).is_empty(), "nothing backed up yet");
    }

    #[test]
    fn a_delete_marker_hides_the_version_before_it() {
        // v2 failed verification and was hidden at once (same second); a later retry made v3.
        let versions = vec![
            version("b/k", "v1", 10, false),
            version("b/k", "v2", 20, false),
            version("b/k", "m", 20, true),
            version("b/k", "v3", 40, false),
            version("b/other", "o1", 15, false),
        ];
        assert_eq!(ids(select_as_of(&versions, Some(at(30)))), ["v1", "o1"]);
        assert_eq!(ids(select_as_of(&versions, None)), ["v3", "o1"]);
    }

    fn record(id: &str, region: &str, minute: u32, verified: Option<bool>, deleted: bool) -> CatalogRecord {
        CatalogRecord {
            artifact: ArtifactRef { kind: ArtifactKind::EbsSnapshot, region: region.into(), id: id.into() },
            resource: "vol-1".into(),
            resource_region: "us-east-1".into(),
            plan: "daily".into(),
            tier: "daily".into(),
            task_id: TaskId::derive("x", &json!([id])),
            created_at: at(minute),
            expires_at: None,
            size_bytes: None,
            encrypted: None,
            copy_of: None,
            copies: vec![],
            details: Default::default(),
            verification: verified.map(|ok| Verification { verified_at: at(0), ok, checks: Default::default() }),
            deleted_at: deleted.then(|| at(0)),
        }
    }

    #[test]
    fn latest_good_skips_deleted_failed_and_other_regions() {
        let records = vec![
            record("snap-failed", "us-east-1", 50, Some(false), false),
            record("snap-deleted", "us-east-1", 40, None, true),
            record("snap-dr", "us-west-2", 45, Some(true), false),
            record("snap-ok", "us-east-1", 30, Some(true), false),
            record("snap-unverified", "us-east-1", 20, None, false),
        ];
        let kinds = [ArtifactKind::EbsSnapshot];
        assert_eq!(latest_good(&records, "us-east-1", &kinds).map(|r| r.artifact.id.as_str()), Some("snap-ok"));
        assert_eq!(latest_good(&records, "us-west-2", &kinds).map(|r| r.artifact.id.as_str()), Some("snap-dr"));
        assert!(latest_good(&records, "us-east-1", &[ArtifactKind::Ami]).is_none());
    }

    #[test]
    fn drill_identifiers_are_valid_rds_names() {
        let id = drill_identifier(&TaskId::derive("restore.drill", &json!(["p"])));
        assert!(id.len() <= 63 && id.starts_with("bf-drill-") && !id.ends_with('-'));
        assert!(id.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'));
    }
}
