//! Restores and restore drills: the helpers they share here, one module per restore kind
//! (`volume`, `instance`, `db_instance`, `db_cluster`, `objects`) and the drill (`drill`).
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
use backup_core::services::database::{PitrSource, RestoreWindow};
use backup_core::services::objects::{CopyRequest, ObjectHead, ObjectVersion};
use backup_core::{AwsError, ErrorClass, RetryClass, TaskError};
use backup_schemas::{
    tags, ArtifactKind, ArtifactRef, PointInTime, ResourceType, RestoreDbCluster, RestoreDbInstance, RestoreDrill,
    RestoreInstance, RestoreObjects, RestoreSource, RestoreVolume, TaskId,
};
use chrono::{DateTime, Utc};
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};

use crate::handler::{Handler, HandlerResult, Outcome, TaskContext};
use crate::handlers::s3::HASH_LIMIT;
use crate::handlers::services::{Services, Started};

mod db_cluster;
mod db_instance;
mod drill;
mod instance;
mod objects;
mod volume;

const GIB: u64 = 1024 * 1024 * 1024;
/// A drill whose restore is not available this long after it started fails (and cleans up).
pub const DRILL_TIMEOUT_HOURS: i64 = 6;
/// Newest objects (one version per key) an S3 drill restores: a sample, not the whole bucket.
pub const DRILL_OBJECTS: usize = 100;
/// Prefix of S3 drill restores inside the backup bucket: `drills/<task short id>/<backup key>`.
pub const DRILL_PREFIX: &str = "drills/";
/// Days an archived snapshot (or S3 object) stays restored for a restore to use it.
pub const ARCHIVE_RESTORE_DAYS: i32 = 3;
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
        RestoreSource::LatestOf { region, .. } | RestoreSource::PointInTime { region, .. } => region,
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
    /// False when the target already held this version (a re-run), or it is not restored yet.
    copied: bool,
    multipart: bool,
    /// The backup version is in GLACIER or DEEP_ARCHIVE: its temporary restore (RestoreObject)
    /// is under way, and it is copied on a later attempt.
    waiting_for_archive: bool,
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
            RestoreSource::PointInTime { resource, .. } => Err(TaskError::permanent(format!(
                "a point-in-time restore of {resource} reads no backup artifact: only DB instance and cluster \
                 restores take one"
            ))),
            RestoreSource::LatestOf { resource, region } => {
                let records = self.catalog.by_resource(resource).await?;
                // In a backup account, copies of one resource id may come from several source
                // accounts (different databases that share a name): never guess which.
                let sources: std::collections::BTreeSet<&str> = records
                    .iter()
                    .filter(|r| r.deleted_at.is_none() && &r.artifact.region == region)
                    .filter_map(|r| r.details.get("source_account").map(String::as_str))
                    .collect();
                if sources.len() > 1 {
                    return Err(TaskError::permanent(format!(
                        "{resource} in {region} has copies from several source accounts ({}): name the backup to \
                         restore (--backup)",
                        sources.into_iter().collect::<Vec<_>>().join(", ")
                    )));
                }
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

    /// The time a point-in-time restore of `resource` goes back to (`None`: the latest restorable
    /// time), after checking that automated backups are on and that the time is inside the
    /// restorable window; a time outside it is refused with the window in the reason.
    /// Where a point-in-time restore in `region` reads from, and its restorable window: the
    /// database there, or (a DB instance restored in a DR region) its automated backups
    /// replicated there (`Some(arn)`).
    async fn restorable(
        &self,
        region: &str,
        cluster: bool,
        resource: &str,
    ) -> Result<(RestoreWindow, Option<String>), TaskError> {
        if let Some(window) = self.databases.restore_window(region, cluster, resource).await? {
            return Ok((window, None));
        }
        if cluster {
            return Err(TaskError::permanent(format!(
                "DB cluster {resource} does not exist in {region} (Aurora replicates no automated backups to other regions)"
            )));
        }
        match self.databases.replicated_backups(region, resource).await? {
            Some(replica) => Ok((replica.window, Some(replica.arn))),
            None => Err(TaskError::permanent(format!(
                "DB instance {resource} does not exist in {region}, and no automated backups of it are replicated there"
            ))),
        }
    }

    /// The instant to restore to, checked against the restorable window (`None`: the latest).
    async fn point_in_time(
        &self,
        region: &str,
        cluster: bool,
        resource: &str,
        to: PointInTime,
    ) -> Result<(Option<DateTime<Utc>>, Option<String>), TaskError> {
        let what = if cluster { "DB cluster" } else { "DB instance" };
        let (window, replica) = self.restorable(region, cluster, resource).await?;
        let what = if replica.is_some() {
            format!("the automated backups of {what} replicated to {region}")
        } else {
            what.to_owned()
        };
        if window.retention_days <= 0 {
            return Err(TaskError::permanent(format!(
                "{what} {resource} has automated backups off (backup retention 0): there is no point in time to restore"
            )));
        }
        let PointInTime::At(at) = to else { return Ok((None, replica)) };
        let show = |t: Option<DateTime<Utc>>| {
            t.map_or_else(|| "?".to_owned(), |t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        };
        if window.earliest.is_some_and(|e| at < e) || window.latest.is_some_and(|l| at > l) {
            return Err(TaskError::permanent(format!(
                "{} is outside the restorable window of {what} {resource}: {} to {}",
                at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                show(window.earliest),
                show(window.latest)
            )));
        }
        Ok((Some(at), replica))
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
        if snapshot.needs_restore_from_archive(Utc::now()) {
            return self.restore_from_archive(region, snapshot_id).await.map(Err);
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

    /// A snapshot in the EBS archive tier cannot become a volume: it is first restored to the
    /// standard tier for [`ARCHIVE_RESTORE_DAYS`] (a temporary restore, which costs the standard
    /// price meanwhile and no early-deletion charge), which takes hours (up to 72). Starts that
    /// restore unless one is under way, and answers the progress to park on.
    async fn restore_from_archive(&self, region: &str, snapshot_id: &str) -> Result<Value, TaskError> {
        let status = self.block.snapshot_tier_status(region, snapshot_id).await?;
        let operation = status.as_ref().and_then(|s| s.last_operation.clone()).unwrap_or_default();
        if operation != "temporary-restore-in-progress" && operation != "permanent-restore-in-progress" {
            self.block.restore_archived_snapshot(region, snapshot_id, ARCHIVE_RESTORE_DAYS).await?;
            tracing::info!(snapshot = %snapshot_id, days = ARCHIVE_RESTORE_DAYS, "restoring from the archive tier first (up to 72 hours)");
        }
        Ok(json!({
            "snapshot_id": snapshot_id,
            "waiting_for": "the snapshot's temporary restore from the EBS archive tier (up to 72 hours)",
            "restore_days": ARCHIVE_RESTORE_DAYS,
        }))
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
                    return Ok(RestoredObject {
                        key: target_key,
                        head,
                        copied: false,
                        multipart: false,
                        waiting_for_archive: false,
                    });
                }
            }
        }
        let own = match self.objects.object_tags(region, backup_bucket, backup_key, Some(version_id)).await {
            Ok(own) => own,
            // Some S3 implementations refuse even the tags of an archived version: restore it.
            Err(err) if archived(&err) => {
                return self.await_archived(region, (backup_bucket, backup_key, version_id), target_key).await
            }
            Err(err) => return Err(err.into()),
        };
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
            // In GLACIER or DEEP_ARCHIVE and not restored: S3 copies it only from a temporary
            // restore, which takes hours. Start one (or find it under way) and come back.
            Err(err) if archived(&err) => {
                return self.await_archived(region, (backup_bucket, backup_key, version_id), target_key).await
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
        Ok(RestoredObject {
            key: target_key,
            head,
            copied: true,
            multipart: result.multipart,
            waiting_for_archive: false,
        })
    }
}

/// S3's refusals of a version that is in GLACIER or DEEP_ARCHIVE and not restored.
fn archived(err: &AwsError) -> bool {
    err.is_code("ObjectNotInActiveTierError") || err.is_code("InvalidObjectState")
}

impl Services {
    /// Starts (or finds under way) the temporary restore of an archived backup version
    /// (bucket, key, version id); a later attempt copies it.
    async fn await_archived(
        &self,
        region: &str,
        (bucket, key, version_id): (&str, &str, &str),
        target_key: String,
    ) -> Result<RestoredObject, TaskError> {
        self.objects.restore_archived(region, bucket, key, Some(version_id), ARCHIVE_RESTORE_DAYS).await?;
        Ok(RestoredObject {
            key: target_key,
            head: ObjectHead::default(),
            copied: false,
            multipart: false,
            waiting_for_archive: true,
        })
    }

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
            archive: None,
            account: None,
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
