//! Retention and verification. A prune lists one resource's artifacts under one plan, joins them
//! with the catalog, lets `backup_core::retention::decide` choose, and fans out one deletion task
//! per expired backup (a snapshot set is one backup: one task deletes all its members). Each
//! deletion decides again, with the prune's rules and instant, on a fresh listing, and deletes
//! only what that decision still deletes: every rule (tags, catalog, plan, legal hold, image,
//! in progress, expiry tag, the count rules and `min_keep`) is re-checked against AWS right
//! before deleting. Verification checks one artifact and records the result.

use async_trait::async_trait;
use backup_core::archive::{self, ArchiveInput, ArchiveVerdict};
use backup_core::artifacts::{is_managed, ArchiveRecord, ArchiveVerdictKind, CatalogRecord, Tags, Verification};
use backup_core::cost::UNIQUE_BYTES;
use backup_core::prices::PriceTable;
use backup_core::retention::{decide, summarize, BackupSet, Candidate, RetentionDecision, RetentionError};
use backup_core::services::block::{ImageInfo, SnapshotInfo};
use backup_core::services::database::DbSnapshotInfo;
use backup_core::{RetryClass, TaskError};
use backup_schemas::{
    tags, ArchiveRule, ArchiveSnapshot, ArtifactKind, ArtifactRef, DeleteArtifact, Prune, ResourceType, Task, Tier,
    Verify,
};
use chrono::{DateTime, Utc};
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet};

use crate::handler::{Handler, HandlerResult, Outcome, TaskContext};
use crate::handlers::services::Services;

const GIB: f64 = (1u64 << 30) as f64;

/// How many ids of each list a prune's result names (the counts are always complete): the
/// result is stored on the task item, which DynamoDB caps at 400 KB.
const RESULT_IDS: usize = 50;

fn tier_of(tags: &Tags) -> Option<Tier> {
    tags.get(tags::TIER).and_then(|t| t.parse().ok())
}

fn expiry_of(tags: &Tags) -> Option<DateTime<Utc>> {
    tags.get(tags::EXPIRES_AT).and_then(|t| DateTime::parse_from_rfc3339(t).ok()).map(|t| t.with_timezone(&Utc))
}

/// The set a snapshot belongs to, from its tags.
fn set_of(tags: &Tags) -> Option<BackupSet> {
    tags.get(tags::SET)
        .map(|id| BackupSet { id: id.clone(), size: tags.get(tags::SET_SIZE).and_then(|n| n.parse().ok()) })
}

fn candidate(
    id: &str,
    kind: ArtifactKind,
    created_at: Option<DateTime<Utc>>,
    tags: &Tags,
    complete: bool,
    in_catalog: bool,
) -> Candidate {
    Candidate {
        id: id.to_owned(),
        kind,
        // An artifact without a creation time is treated as brand new: it is never the oldest.
        created_at: created_at.unwrap_or_else(Utc::now),
        tier: tier_of(tags),
        expires_at: expiry_of(tags),
        managed_tag: is_managed(tags),
        plan_tag: tags.get(tags::PLAN).cloned(),
        in_catalog,
        legal_hold: tags.contains_key(tags::LEGAL_HOLD),
        locked_until: None,
        backs_image: None,
        complete,
        set: None,
        archive_minimum_until: None,
    }
}

/// Whether an artifact is one the prune judges: in a backup account, only the copies of the
/// prune's source account (the same resource id in another account is another resource).
fn from_source(p: &Prune, tags: &backup_core::artifacts::Tags) -> bool {
    p.source_account.as_ref().is_none_or(|source| tags.get(tags::SOURCE_ACCOUNT) == Some(source))
}

/// Catalog records by kind and id.
type Records = BTreeMap<(ArtifactKind, String), CatalogRecord>;

/// What a prune listed and decided.
struct Judged {
    candidates: Vec<Candidate>,
    decision: RetentionDecision,
    /// The catalog records it read (the archive and export decisions reuse them).
    records: Records,
    /// Re-encryptions for a share that their copy task left behind.
    leftovers: Vec<String>,
}

impl Services {
    /// The live catalog records of the prune's resource in its region, by kind and id.
    async fn live_records(&self, p: &Prune) -> Result<Records, TaskError> {
        Ok(self
            .catalog
            .by_resource(&p.resource)
            .await?
            .into_iter()
            .filter(|r| r.deleted_at.is_none() && r.artifact.region == p.region)
            .filter(|r| p.source_account.is_none() || r.details.get("source_account") == p.source_account.as_ref())
            .map(|r| ((r.artifact.kind, r.artifact.id.clone()), r))
            .collect())
    }

    /// Every artifact of `resource` in `region`, as retention candidates. `Err` means the listing
    /// was incomplete, and nothing may be deleted.
    ///
    /// The temporary re-encryptions made to share a backup with a backup account
    /// (`backup-fleet:share-for`) are never candidates: they are returned apart when older than
    /// `Timing::share_leftover_age` (their copy task ended without deleting them: it went DEAD),
    /// for the prune to delete.
    async fn retention_candidates(
        &self,
        p: &Prune,
        catalogued: &Records,
    ) -> Result<(Vec<Candidate>, Vec<String>), TaskError> {
        // The catalog's creation time is the fleet's own record of when the backup was taken;
        // AWS's start time is only the fallback for artifacts the catalog does not know.
        let record = |kind: ArtifactKind, id: &str| catalogued.get(&(kind, id.to_owned()));
        let in_catalog = |kind: ArtifactKind, id: &str| record(kind, id).is_some();
        let created =
            |kind: ArtifactKind, id: &str, aws: Option<DateTime<Utc>>| record(kind, id).map(|r| r.created_at).or(aws);
        let mut candidates = Vec::new();
        let mut leftovers = Vec::new();
        let mut leftover = |id: &str, tags: &backup_core::artifacts::Tags, created: Option<DateTime<Utc>>| {
            if !tags.contains_key(tags::SHARE_FOR) {
                return false;
            }
            let age = created.map(|at| (Utc::now() - at).to_std().unwrap_or_default());
            if age.is_some_and(|age| age >= self.timing.share_leftover_age) {
                leftovers.push(id.to_owned());
            }
            true
        };
        match p.resource_type {
            ResourceType::Ec2Volume | ResourceType::Ec2Instance => {
                let snapshots: Vec<SnapshotInfo> =
                    self.block.snapshots_tagged(&p.region, tags::SOURCE, &p.resource).await?;
                let snapshots: Vec<SnapshotInfo> = snapshots
                    .into_iter()
                    .filter(|s| from_source(p, &s.tags) && !leftover(&s.id, &s.tags, s.created_at))
                    .collect();
                // AMIs are made of instances: a volume's prune looks them up only when one of its
                // snapshots says it backs an image (then that image must be known to be live).
                let needs_images = p.resource_type == ResourceType::Ec2Instance
                    || snapshots.iter().any(|s| s.tags.contains_key(tags::IMAGE));
                let images: Vec<ImageInfo> = if needs_images {
                    self.block.images_tagged(&p.region, tags::SOURCE, &p.resource).await?
                } else {
                    Vec::new()
                };
                let listed_images: BTreeSet<&str> = images.iter().map(|i| i.id.as_str()).collect();
                let live_images = self.live_unlisted_images(p, &snapshots, &listed_images).await?;
                for snapshot in &snapshots {
                    let mut c = candidate(
                        &snapshot.id,
                        ArtifactKind::EbsSnapshot,
                        created(ArtifactKind::EbsSnapshot, &snapshot.id, snapshot.created_at),
                        &snapshot.tags,
                        snapshot.status.is_complete(),
                        in_catalog(ArtifactKind::EbsSnapshot, &snapshot.id),
                    );
                    c.set = set_of(&snapshot.tags);
                    c.archive_minimum_until = record(ArtifactKind::EbsSnapshot, &snapshot.id)
                        .and_then(|r| r.archive.as_ref()?.archived_at)
                        .map(|at| at + chrono::TimeDelta::days(archive::MINIMUM_ARCHIVE_DAYS));
                    // A snapshot behind an image is deleted with its image, never on its own.
                    if let Some(image) = snapshot.tags.get(tags::IMAGE) {
                        if listed_images.contains(image.as_str()) || live_images.contains(image.as_str()) {
                            c.backs_image = Some(image.clone());
                        } else {
                            // Left behind by a deregistered image: judged by its own tags and catalog.
                            c.in_catalog = c.in_catalog || in_catalog(ArtifactKind::Ami, image);
                        }
                    }
                    candidates.push(c);
                }
                for image in &images {
                    candidates.push(candidate(
                        &image.id,
                        ArtifactKind::Ami,
                        created(ArtifactKind::Ami, &image.id, image.created_at),
                        &image.tags,
                        image.status.is_complete(),
                        in_catalog(ArtifactKind::Ami, &image.id),
                    ));
                }
            }
            ResourceType::RdsInstance | ResourceType::RdsCluster => {
                let cluster = p.resource_type == ResourceType::RdsCluster;
                let kind = if cluster { ArtifactKind::RdsClusterSnapshot } else { ArtifactKind::RdsSnapshot };
                let snapshots: Vec<DbSnapshotInfo> =
                    self.databases.snapshots_of(&p.region, cluster, &p.resource).await?;
                for snapshot in snapshots.iter().filter(|s| {
                    s.snapshot_type.as_deref() != Some("automated")
                        && from_source(p, &s.tags)
                        && !leftover(&s.identifier, &s.tags, s.created_at)
                }) {
                    candidates.push(candidate(
                        &snapshot.identifier,
                        kind,
                        created(kind, &snapshot.identifier, snapshot.created_at),
                        &snapshot.tags,
                        snapshot.status.is_complete(),
                        in_catalog(kind, &snapshot.identifier),
                    ));
                }
            }
            // Objects in the backup bucket: its lifecycle and Object Lock expire them.
            ResourceType::S3Bucket | ResourceType::PostgresDb => {}
        }
        Ok((candidates, leftovers))
    }

    /// The images named by `snapshots`' image tags that the tag-filtered listing left out but
    /// that still exist, or may: a filtered Describe can miss an image whose tags were just
    /// written (a copy is tagged when it completes), so each is looked up by id; one that is
    /// not found is trusted to be gone only once its snapshots are older than the consistency
    /// window. Until then its snapshots back it: judged alone, they would take the places of
    /// the resource's other backups in the count rules.
    async fn live_unlisted_images<'a>(
        &self,
        p: &Prune,
        snapshots: &'a [SnapshotInfo],
        listed: &BTreeSet<&str>,
    ) -> Result<BTreeSet<&'a str>, TaskError> {
        let window = chrono::TimeDelta::from_std(self.timing.consistency_window).unwrap_or_default();
        let mut unlisted: BTreeMap<&str, bool> = BTreeMap::new();
        for s in snapshots {
            if let Some(image) = s.tags.get(tags::IMAGE).filter(|image| !listed.contains(image.as_str())) {
                // Of unknown age, a snapshot is not taken for new: its image is looked up.
                let recent = s.created_at.is_some_and(|at| Utc::now() - at < window);
                *unlisted.entry(image.as_str()).or_default() |= recent;
            }
        }
        let mut live = BTreeSet::new();
        for (image, recent) in unlisted {
            if recent || self.image_exists(&p.region, image).await? {
                live.insert(image);
            }
        }
        Ok(live)
    }

    /// Lists and decides, as a prune does. Also returns the catalog records it read, which the prune's archive and export decisions
    /// reuse (one catalog query per prune).
    async fn retention_decision(&self, p: &Prune) -> Result<Judged, TaskError> {
        // Listing failed part-way: decide nothing (the error is retried, listing from scratch).
        let records = self.live_records(p).await?;
        let (candidates, leftovers) = self.retention_candidates(p, &records).await?;
        match decide(&p.plan, &p.rules, &candidates, p.as_of, true) {
            Ok(decision) => Ok(Judged { candidates, decision, records, leftovers }),
            Err(RetentionError::IncompleteListing) => Err(TaskError::retry(
                RetryClass::Transient,
                format!("the listing of {}'s artifacts was incomplete", p.resource),
            )),
            Err(err) => Err(TaskError::permanent(format!("retention for {}: {err}", p.resource))),
        }
    }
}

/// One prune result list: its length and the first ids.
fn listed<T>(items: &[T], show: impl Fn(&T) -> serde_json::Value) -> serde_json::Value {
    json!({ "count": items.len(), "first": items.iter().take(RESULT_IDS).map(show).collect::<Vec<_>>() })
}

#[async_trait]
impl Handler<Prune> for Services {
    async fn run(&self, p: &Prune, _ctx: &TaskContext) -> HandlerResult {
        if matches!(p.resource_type, ResourceType::S3Bucket | ResourceType::PostgresDb) {
            // S3 backup copies and logical dumps expire through the backup bucket's lifecycle rules
            // and Object Lock retention (Terraform sets both): deleting objects one by one would
            // fight the lock.
            return Ok(Outcome::done(
                json!({ "resource": p.resource, "skipped": "retention of objects in the backup bucket is enforced by its lifecycle and Object Lock" }),
            ));
        }
        let Judged { candidates, decision, records, leftovers } = self.retention_decision(p).await?;
        let leftovers_deleted = self.delete_share_leftovers(p, &leftovers).await;
        let by_id: BTreeMap<&str, &Candidate> = candidates.iter().map(|c| (c.id.as_str(), c)).collect();
        let artifact = |id: &str| ArtifactRef { kind: by_id[id].kind, region: p.region.clone(), id: id.to_owned() };
        // One deletion task per backup: a set's members go together.
        let mut deletions: BTreeMap<String, (String, Vec<ArtifactRef>)> = BTreeMap::new();
        for d in &decision.delete {
            let unit = by_id[d.id.as_str()].set.as_ref().map_or_else(|| d.id.clone(), |s| s.id.clone());
            deletions.entry(unit).or_insert_with(|| (d.reason.clone(), Vec::new())).1.push(artifact(&d.id));
        }
        let children: Vec<Task> = deletions
            .into_values()
            .map(|(reason, mut members)| {
                let first = members.remove(0);
                Task::DeleteArtifact(DeleteArtifact {
                    plan: p.plan.clone(),
                    artifact: first,
                    reason,
                    prune: Some(p.clone()),
                    set: members,
                })
            })
            .collect();
        tracing::info!(resource = %p.resource, summary = %summarize(&decision), "retention decided");
        let expired_exports = self.expired_exports(p, &records);
        let (archives, archive_summary) = match &p.rules.archive {
            Some(rule) => self.archive_decisions(p, rule, &candidates, &decision, &records).await?,
            None => (Vec::new(), None),
        };
        Ok(Outcome::done(json!({
            "resource": p.resource,
            "region": p.region,
            "summary": summarize(&decision),
            "archive": archive_summary,
            "delete": listed(&decision.delete, |d| json!({"id": d.id, "reason": d.reason})),
            "keep": listed(&decision.keep, |k| json!({"id": k.id, "reasons": k.reasons.iter().map(|r| format!("{r:?}")).collect::<Vec<_>>()})),
            "ignored": listed(&decision.ignored, |i| json!({"id": i.id, "why": format!("{:?}", i.why)})),
            "expired_exports": expired_exports.len(),
            "share_leftovers_deleted": leftovers_deleted,
        }))
        .with_children(children.into_iter().chain(archives).chain(expired_exports)))
    }
}

impl Services {
    /// Deletes the re-encryptions made for a share that their copy task left behind (it went
    /// DEAD before its cleanup). Best effort: one that cannot be deleted now is found again by
    /// the next prune. Returns how many were deleted.
    async fn delete_share_leftovers(&self, p: &Prune, leftovers: &[String]) -> usize {
        let mut deleted = 0;
        for id in leftovers {
            let result = match p.resource_type {
                ResourceType::RdsInstance | ResourceType::RdsCluster => {
                    self.databases.delete_snapshot(&p.region, p.resource_type == ResourceType::RdsCluster, id).await
                }
                _ => self.block.delete_snapshot(&p.region, id).await,
            };
            match result {
                Ok(()) => {
                    tracing::warn!(snapshot = %id, resource = %p.resource, "deleted a re-encryption a failed copy into a backup account left behind");
                    deleted += 1;
                }
                Err(err) => {
                    tracing::warn!(snapshot = %id, error = %err, "could not delete a left-behind re-encryption")
                }
            }
        }
        deleted
    }

    /// Deletions of the resource's snapshot exports whose own expiry (`export.retain_days`) has
    /// passed at the prune's instant. Exports are not snapshots: no count rule or `min_keep`
    /// applies, only their own expiry.
    fn expired_exports(&self, p: &Prune, records: &Records) -> Vec<Task> {
        if !matches!(p.resource_type, ResourceType::RdsInstance | ResourceType::RdsCluster) {
            return Vec::new();
        }
        records
            .values()
            .filter(|r| r.artifact.kind == ArtifactKind::SnapshotExport && r.plan == p.plan)
            .filter(|r| r.expires_at.is_some_and(|at| at <= p.as_of))
            .map(|r| {
                Task::DeleteArtifact(DeleteArtifact {
                    plan: p.plan.clone(),
                    artifact: r.artifact.clone(),
                    reason: format!("export expired at {}", r.expires_at.map(|t| t.to_rfc3339()).unwrap_or_default()),
                    prune: Some(p.clone()),
                    set: Vec::new(),
                })
            })
            .collect()
    }

    /// Deletes an expired export's objects (every version under its prefix) after re-checking
    /// its catalog record: still live and still expired at the prune's instant.
    async fn delete_export(&self, p: &DeleteArtifact) -> HandlerResult {
        let artifact = &p.artifact;
        let refused = |why: String| {
            tracing::info!(artifact = %artifact.id, %why, "deletion refused");
            Ok(Outcome::done(json!({ "artifact": artifact, "deleted": false, "refused": why })))
        };
        let Some(record) = self.catalog.get(artifact).await? else {
            return refused("not in the catalog: the fleet deletes only exports it recorded".into());
        };
        if record.deleted_at.is_some() {
            return Ok(Outcome::done(json!({ "artifact": artifact, "deleted": true, "already": true })));
        }
        let as_of = p.prune.as_ref().map_or_else(Utc::now, |prune| prune.as_of);
        if record.expires_at.is_none_or(|at| at > as_of) {
            return refused(format!("not expired at {as_of} (expires {:?})", record.expires_at));
        }
        let (Some(bucket), Some(prefix)) = (record.details.get("bucket"), record.details.get("prefix")) else {
            return refused("the catalog record names no bucket and prefix".into());
        };
        // The bucket is in the export's region (RDS exports only there).
        let region = &artifact.region;
        let versions = self.objects.list_versions(region, bucket, prefix).await?;
        // Files RDS wrote into a bucket with a default Object Lock retention are locked: refuse
        // (the next prune decides again) rather than fail on the first locked version.
        let now = Utc::now();
        for version in versions.iter().filter(|v| !v.delete_marker) {
            // An unversioned bucket lists its objects' versions as "null": HEAD those plainly.
            let version_id = Some(version.version_id.as_str()).filter(|v| *v != "null");
            let head = self.objects.head(region, bucket, &version.key, version_id).await?;
            if let Some(until) = head.and_then(|h| h.lock_until).filter(|until| *until > now) {
                return refused(format!(
                    "{}/{} is under Object Lock until {} (the bucket's default retention applies to RDS's files): \
                     keep export.retain_days at or above the bucket's retention",
                    bucket,
                    version.key,
                    until.to_rfc3339()
                ));
            }
        }
        for version in &versions {
            self.objects.delete_version(region, bucket, &version.key, &version.version_id).await?;
        }
        self.catalog.mark_deleted(artifact, Utc::now()).await?;
        tracing::info!(export = %artifact.id, objects = versions.len(), reason = %p.reason, "deleted expired export");
        Ok(Outcome::done(
            json!({ "artifact": artifact, "deleted": true, "objects": versions.len(), "reason": p.reason }),
        ))
    }

    /// The archive-tier decisions of a prune: for each kept, complete EBS snapshot of the plan that
    /// has no decision yet and is old enough, either an archive task (re-checked when it runs) or
    /// the recorded reason to keep it in the standard tier. A set's members share their lifetime
    /// and the estimate scales with size, so a set is archived whole or not at all.
    async fn archive_decisions(
        &self,
        p: &Prune,
        rule: &ArchiveRule,
        candidates: &[Candidate],
        decision: &RetentionDecision,
        records: &Records,
    ) -> Result<(Vec<Task>, Option<serde_json::Value>), TaskError> {
        if !matches!(p.resource_type, ResourceType::Ec2Volume | ResourceType::Ec2Instance) {
            return Ok((Vec::new(), None));
        }
        let prices = PriceTable::builtin().region(&p.region);
        let kept: BTreeSet<&str> = decision.keep.iter().map(|k| k.id.as_str()).collect();
        let (mut tasks, mut standard, mut waiting) = (Vec::new(), 0usize, 0usize);
        for c in candidates.iter().filter(|c| c.kind == ArtifactKind::EbsSnapshot && kept.contains(c.id.as_str())) {
            let Some(record) = records.get(&(ArtifactKind::EbsSnapshot, c.id.clone())) else { continue };
            if !c.complete || c.backs_image.is_some() || record.archive.is_some() || record.plan != p.plan {
                continue;
            }
            // An archived snapshot can no longer be copied: wait for every DR copy, and for the
            // verification when the plan verifies (the next prune decides then).
            let copied = rule.copy_regions.iter().all(|region| record.copies.iter().any(|c| &c.region == region));
            let verified = !rule.verify || record.verification.as_ref().is_some_and(|v| v.ok);
            if record.copy_of.is_none() && (!copied || !verified) {
                waiting += 1;
                continue;
            }
            // Without a size there is nothing to weigh; the next prune decides once it is known.
            let Some(size) = record.size_bytes else { continue };
            let tier = c.tier.unwrap_or(Tier::Daily);
            let input = ArchiveInput {
                created_at: c.created_at,
                keep_until: archive::keep_until(&p.rules, tier, rule.period_days, c.created_at, c.expires_at),
                full_gib: size as f64 / GIB,
                unique_gib: record.details.get(UNIQUE_BYTES).and_then(|b| b.parse::<f64>().ok()).map(|b| b / GIB),
                standard_price: prices.ebs_snapshot_standard_gb_month,
                archive_price: prices.ebs_snapshot_archive_gb_month,
            };
            match archive::decide(rule, &input, p.as_of) {
                ArchiveVerdict::NotYet => waiting += 1,
                ArchiveVerdict::Archive(estimate) => tasks.push(Task::ArchiveSnapshot(ArchiveSnapshot {
                    plan: p.plan.clone(),
                    region: p.region.clone(),
                    snapshot_id: c.id.clone(),
                    resource: p.resource.clone(),
                    estimate,
                    as_of: p.as_of,
                })),
                ArchiveVerdict::Standard(estimate) => {
                    standard += 1;
                    let artifact =
                        ArtifactRef { kind: ArtifactKind::EbsSnapshot, region: p.region.clone(), id: c.id.clone() };
                    tracing::info!(snapshot = %c.id, reason = %estimate.reason, "kept in the standard tier");
                    let record = ArchiveRecord {
                        decided_at: p.as_of,
                        verdict: ArchiveVerdictKind::Standard,
                        estimate,
                        requested_at: None,
                        archived_at: None,
                    };
                    self.catalog.set_archive(&artifact, &record).await?;
                }
            }
        }
        let summary = json!({ "archive": tasks.len(), "standard": standard, "not_yet": waiting });
        Ok((tasks, Some(summary)))
    }
}

/// Why the fresh decision does not delete `id` (or `None` when it does).
fn still_kept(decision: &RetentionDecision, id: &str) -> Option<String> {
    if decision.delete.iter().any(|d| d.id == id) {
        return None;
    }
    if let Some(kept) = decision.keep.iter().find(|k| k.id == id) {
        return Some(format!("kept on re-check: {:?}", kept.reasons));
    }
    if let Some(ignored) = decision.ignored.iter().find(|i| i.id == id) {
        return Some(format!("ignored on re-check: {:?}", ignored.why));
    }
    Some("no longer listed for its resource".into())
}

impl Services {
    /// Deletes one artifact that the re-check allowed. An AMI goes with its snapshots: they are
    /// found by the image's own list and by their image tag, so a retry after a crash between
    /// deregistering and deleting the snapshots still deletes them (the image is gone by then).
    async fn delete_one(&self, artifact: &ArtifactRef) -> Result<(), TaskError> {
        let region = &artifact.region;
        match artifact.kind {
            ArtifactKind::EbsSnapshot => self.block.delete_snapshot(region, &artifact.id).await?,
            ArtifactKind::Ami => {
                let listed = self.block.images(region, std::slice::from_ref(&artifact.id)).await?;
                let mut snapshot_ids: BTreeSet<String> =
                    listed.iter().flat_map(|i| i.snapshot_ids.iter().cloned()).collect();
                // Deregister first: AWS refuses to delete a snapshot an image still uses.
                if !listed.is_empty() {
                    self.block.deregister_image(region, &artifact.id).await?;
                }
                let tagged = self.block.snapshots_tagged(region, tags::IMAGE, &artifact.id).await?;
                snapshot_ids.extend(tagged.iter().map(|s| s.id.clone()));
                let ids: Vec<String> = snapshot_ids.into_iter().collect();
                for snapshot in self.block.snapshots(region, &ids).await? {
                    if is_managed(&snapshot.tags) && !snapshot.tags.contains_key(tags::LEGAL_HOLD) {
                        self.block.delete_snapshot(region, &snapshot.id).await?;
                    }
                }
            }
            ArtifactKind::RdsSnapshot | ArtifactKind::RdsClusterSnapshot => {
                let cluster = artifact.kind == ArtifactKind::RdsClusterSnapshot;
                self.databases.delete_snapshot(region, cluster, &artifact.id).await?;
            }
            ArtifactKind::S3Object | ArtifactKind::DatabaseDump | ArtifactKind::SnapshotExport => {
                return Err(TaskError::permanent("objects in the backup bucket are not deleted with the snapshots"))
            }
        }
        self.catalog.mark_deleted(artifact, Utc::now()).await?;
        Ok(())
    }
}

#[async_trait]
impl Handler<DeleteArtifact> for Services {
    async fn run(&self, p: &DeleteArtifact, _ctx: &TaskContext) -> HandlerResult {
        let members: Vec<&ArtifactRef> = std::iter::once(&p.artifact).chain(&p.set).collect();
        let refused = |why: String| {
            tracing::info!(artifact = %p.artifact.id, %why, "deletion refused");
            Ok(Outcome::done(json!({ "artifact": p.artifact, "set": p.set, "deleted": false, "refused": why })))
        };
        match p.artifact.kind {
            ArtifactKind::S3Object | ArtifactKind::DatabaseDump => {
                return refused(
                    "objects in the backup bucket expire through its lifecycle rules and Object Lock".into(),
                )
            }
            ArtifactKind::SnapshotExport => return self.delete_export(p).await,
            _ => {}
        }
        let Some(prune) = &p.prune else {
            // A deletion task from before deletions carried their prune: without the rules it
            // cannot re-check min_keep and the counts, so it deletes nothing; the next prune
            // decides again.
            return refused(
                "no retention rules to re-check against (an older deletion task); the next prune decides again".into(),
            );
        };
        let Judged { candidates, decision, .. } = self.retention_decision(prune).await?;
        let listed: BTreeSet<&str> = candidates.iter().map(|c| c.id.as_str()).collect();
        // A member gone from the listing is done with unless it is an AMI, whose snapshots may
        // still need deleting (a crash after deregistering).
        let mut to_delete = Vec::new();
        for member in &members {
            if !listed.contains(member.id.as_str()) {
                if member.kind == ArtifactKind::Ami {
                    to_delete.push(*member);
                }
                continue;
            }
            if let Some(why) = still_kept(&decision, &member.id) {
                return refused(format!("{}: {why}", member.id));
            }
            to_delete.push(*member);
        }
        for member in &to_delete {
            self.delete_one(member).await?;
        }
        // Members that were already gone are marked too, so the catalog agrees with AWS.
        for member in members.iter().filter(|m| !listed.contains(m.id.as_str())) {
            self.catalog.mark_deleted(member, Utc::now()).await?;
        }
        tracing::info!(artifact = %p.artifact.id, members = members.len(), reason = %p.reason, "deleted expired backup");
        Ok(Outcome::done(json!({ "artifact": p.artifact, "set": p.set, "deleted": true, "reason": p.reason })))
    }
}

struct Checks(BTreeMap<String, String>, bool);

impl Checks {
    fn new() -> Self {
        Self(BTreeMap::new(), true)
    }
    fn check(&mut self, name: &str, ok: bool, detail: impl Into<String>) {
        let detail = detail.into();
        self.0.insert(name.to_owned(), if ok { format!("ok: {detail}") } else { format!("FAILED: {detail}") });
        self.1 &= ok;
    }
    /// The checks every AWS artifact gets: it exists, it is complete, it carries the fleet tags.
    fn present(&mut self, id: &str, complete: bool, status: impl std::fmt::Debug, tags: &Tags) {
        self.check("exists", true, id);
        self.check("complete", complete, format!("{status:?}"));
        self.tags(tags);
    }

    /// Copies are always made encrypted; a source snapshot inherits its volume's or database's
    /// setting, so only a copy must be.
    fn encrypted(&mut self, encrypted: bool, is_copy: bool) {
        self.check("encrypted", encrypted || !is_copy, if encrypted { "encrypted" } else { "not encrypted" });
    }

    fn tags(&mut self, tags: &Tags) {
        let missing: Vec<&str> = [tags::MANAGED, tags::TASK_ID, tags::PLAN, tags::SOURCE]
            .into_iter()
            .filter(|k| !tags.contains_key(*k))
            .collect();
        self.check(
            "tags",
            missing.is_empty(),
            if missing.is_empty() { "fleet tags present".to_owned() } else { format!("missing {missing:?}") },
        );
    }
}

#[async_trait]
impl Handler<Verify> for Services {
    async fn run(&self, p: &Verify, _ctx: &TaskContext) -> HandlerResult {
        let artifact = &p.artifact;
        let region = &artifact.region;
        // A snapshot or an image is checked against AWS alone when its maker said where its source
        // lives; objects, dumps and exports are checked against what their record says.
        let origin = p.origin.as_ref().filter(|_| artifact.kind.is_snapshot_or_image());
        let mut record = match origin {
            Some(_) => None,
            None => self.catalog.get(artifact).await?,
        };
        let is_copy = origin.map_or_else(|| record.as_ref().is_some_and(|r| r.copy_of.is_some()), |o| o.copy);
        // The source resource lives where the catalog says (a DR copy's source is elsewhere).
        let source_region = origin
            .map(|o| &o.resource_region)
            .or(record.as_ref().map(|r| &r.resource_region))
            .unwrap_or(region)
            .clone();
        let source_region = &source_region;
        let mut checks = Checks::new();
        match artifact.kind {
            ArtifactKind::EbsSnapshot => {
                match self.block.snapshots(region, std::slice::from_ref(&artifact.id)).await?.into_iter().next() {
                    None => checks.check("exists", false, "snapshot not found"),
                    Some(snapshot) => {
                        checks.present(&snapshot.id, snapshot.status.is_complete(), &snapshot.status, &snapshot.tags);
                        checks.encrypted(snapshot.encrypted, is_copy);
                        match self.block.volume(source_region, &p.source_resource).await? {
                            Some(volume) if p.source_resource.starts_with("vol-") => checks.check(
                                "size",
                                snapshot.size_gib == Some(volume.size_gib),
                                format!("snapshot {:?} GiB, volume {} GiB", snapshot.size_gib, volume.size_gib),
                            ),
                            _ => checks.check(
                                "size",
                                snapshot.size_gib.unwrap_or(0) > 0,
                                format!("{:?} GiB (source not comparable)", snapshot.size_gib),
                            ),
                        }
                    }
                }
            }
            ArtifactKind::Ami => {
                match self.block.images(region, std::slice::from_ref(&artifact.id)).await?.into_iter().next() {
                    None => checks.check("exists", false, "image not found"),
                    Some(image) => {
                        checks.present(&image.id, image.status.is_complete(), &image.status, &image.tags);
                        let snapshots = self.block.snapshots(region, &image.snapshot_ids).await?;
                        checks.check(
                            "snapshots",
                            snapshots.len() == image.snapshot_ids.len()
                                && snapshots.iter().all(|s| s.status.is_complete()),
                            format!(
                                "{} of {} snapshots complete",
                                snapshots.iter().filter(|s| s.status.is_complete()).count(),
                                image.snapshot_ids.len()
                            ),
                        );
                    }
                }
            }
            ArtifactKind::RdsSnapshot | ArtifactKind::RdsClusterSnapshot => {
                let cluster = artifact.kind == ArtifactKind::RdsClusterSnapshot;
                match self.databases.snapshot(region, cluster, &artifact.id).await? {
                    None => checks.check("exists", false, "snapshot not found"),
                    Some(snapshot) => {
                        checks.present(
                            &snapshot.identifier,
                            snapshot.status.is_complete(),
                            &snapshot.status,
                            &snapshot.tags,
                        );
                        checks.encrypted(snapshot.encrypted, is_copy);
                        let source_gib = if cluster {
                            self.databases
                                .cluster(source_region, &p.source_resource)
                                .await?
                                .and_then(|c| c.allocated_gib)
                        } else {
                            self.databases
                                .instance(source_region, &p.source_resource)
                                .await?
                                .and_then(|i| i.allocated_gib)
                        };
                        match source_gib {
                            Some(gib) => checks.check(
                                "size",
                                snapshot.allocated_gib == Some(gib),
                                format!("snapshot {:?} GiB, source {gib} GiB", snapshot.allocated_gib),
                            ),
                            None => checks.check("size", true, "source not available to compare"),
                        }
                    }
                }
            }
            ArtifactKind::S3Object => {
                // id = "<bucket>/<key>#<version>"
                let (location, version) =
                    artifact.id.rsplit_once('#').map_or((artifact.id.as_str(), None), |(l, v)| (l, Some(v)));
                let (bucket, key) = location.split_once('/').unwrap_or((location, ""));
                match self.objects.head(region, bucket, key, version.filter(|v| !v.is_empty())).await? {
                    None => checks.check("exists", false, "object not found"),
                    Some(head) => {
                        checks.check("exists", true, location);
                        let expected_checksum = record.as_ref().and_then(|r| r.details.get("checksum_sha256").cloned());
                        match (&expected_checksum, &head.checksum_sha256) {
                            (Some(expected), Some(actual)) => {
                                checks.check("checksum", expected == actual, format!("sha256 {actual}"))
                            }
                            (Some(_), None) => checks.check("checksum", false, "object has no SHA-256 checksum"),
                            (None, _) => checks.check(
                                "checksum",
                                head.checksum_sha256.is_some(),
                                "no checksum in the catalog to compare",
                            ),
                        }
                        if let Some(size) = record.as_ref().and_then(|r| r.size_bytes) {
                            checks.check("size", head.size == size, format!("{} bytes, catalog {size}", head.size));
                        }
                    }
                }
            }
            ArtifactKind::DatabaseDump => self.verify_dump(artifact, record.as_ref(), &mut checks).await?,
            ArtifactKind::SnapshotExport => match self.databases.export(region, &artifact.id).await? {
                None => checks.check("exists", false, "export task not found"),
                Some(export) => {
                    checks.check("exists", true, &artifact.id);
                    checks.check("complete", export.status.is_complete(), format!("{:?}", export.status));
                    let prefix = record.as_ref().and_then(|r| r.details.get("prefix")).cloned().unwrap_or_default();
                    let page = self.objects.list_page(region, &export.bucket, Some(&prefix), None, None, 1).await?;
                    checks.check(
                        "objects",
                        !page.objects.is_empty(),
                        format!(
                            "s3://{}/{prefix} {}",
                            export.bucket,
                            if page.objects.is_empty() { "is empty" } else { "holds files" }
                        ),
                    );
                    checks.check("encrypted", export.kms_key.is_some(), format!("KMS key {:?}", export.kms_key));
                }
            },
        }
        // A Describe may miss an artifact for a while after it was made (eventual consistency):
        // within that window, "not found" means "look again", not "the backup is gone".
        let missing = checks.0.get("exists").is_some_and(|c| c.starts_with("FAILED"));
        if missing && origin.is_some() {
            record = self.catalog.get(artifact).await?;
        }
        if let Some(record) = record.as_ref().filter(|_| missing) {
            if (Utc::now() - record.created_at).to_std().unwrap_or_default() < self.timing.consistency_window {
                return Err(TaskError::retry(RetryClass::Busy, format!("{} not visible yet", artifact.id))
                    .with_retry_after(self.timing.consistency_window));
            }
        }
        let verification = Verification { verified_at: Utc::now(), ok: checks.1, checks: checks.0 };
        let uncatalogued = || {
            TaskError::permanent(format!(
                "{} {} is not in the catalog: nothing to verify against",
                artifact.kind.as_str(),
                artifact.id
            ))
        };
        if record.is_none() && origin.is_none() {
            return Err(uncatalogued());
        }
        // The write is conditional on the record's existence: unread, a missing record shows here.
        match self.catalog.set_verification(artifact, &verification).await {
            Ok(()) => {}
            Err(err) if err.is_code("ConditionalCheckFailedException") => return Err(uncatalogued()),
            Err(err) => return Err(err.into()),
        }
        if !verification.ok {
            return Err(TaskError::permanent(format!(
                "verification of {} failed: {:?}",
                artifact.id, verification.checks
            )));
        }
        Ok(Outcome::done(json!({ "artifact": artifact, "verification": verification })))
    }
}

impl Services {
    /// A logical dump: the version exists with the recorded size, is under Object Lock when it
    /// was written so, and reads back to the SHA-256 recorded at backup time (streamed: memory
    /// stays bounded whatever the size).
    async fn verify_dump(
        &self,
        artifact: &ArtifactRef,
        record: Option<&CatalogRecord>,
        checks: &mut Checks,
    ) -> Result<(), TaskError> {
        let Some(record) = record else { return Ok(()) };
        let detail = |k: &str| record.details.get(k).cloned();
        let (Some(bucket), Some(key)) = (detail("bucket"), detail("key")) else {
            checks.check("exists", false, "the catalog record names no bucket and key");
            return Ok(());
        };
        let version = detail("version_id").filter(|v| v != "null");
        let region = &artifact.region;
        let Some(head) = self.objects.head(region, &bucket, &key, version.as_deref()).await? else {
            checks.check("exists", false, "object not found");
            return Ok(());
        };
        checks.check("exists", true, format!("{bucket}/{key}"));
        if let Some(size) = record.size_bytes {
            checks.check("size", head.size == size, format!("{} bytes, catalog {size}", head.size));
        }
        if let Some(lock) = detail("lock_until") {
            checks.check(
                "object_lock",
                head.lock_until.is_some(),
                format!("retain until {:?} (written with {lock})", head.lock_until),
            );
        }
        let stream = self.objects.get_stream(region, &bucket, &key, version.as_deref()).await?;
        let (digest, bytes) = sha256_of(stream)
            .await
            .map_err(|e| TaskError::retry(RetryClass::Transient, format!("reading {bucket}/{key}: {e}")))?;
        let expected = detail("sha256").unwrap_or_default();
        checks.check("sha256", digest == expected, format!("{digest} over {bytes} bytes, recorded {expected}"));
        Ok(())
    }
}

/// The hex SHA-256 and length of a stream, read in 1 MiB pieces.
pub(crate) async fn sha256_of(mut stream: impl tokio::io::AsyncRead + Unpin) -> std::io::Result<(String, u64)> {
    use sha2::Digest;
    use tokio::io::AsyncReadExt;
    let mut hasher = sha2::Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut total = 0u64;
    loop {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        total += n as u64;
    }
    Ok((crate::handlers::logical::hex(&hasher.finalize()), total))
}

/// The catalog id of an S3 backup object: `<bucket>/<key>#<version id>`.
pub fn s3_artifact_id(bucket: &str, key: &str, version: Option<&str>) -> String {
    format!("{bucket}/{key}#{}", version.unwrap_or_default())
}
