//! RDS backups: manual snapshots of DB instances and Aurora clusters, and their cross-region
//! copies.
//!
//! RDS snapshots are named by the caller, so every identifier here is derived from the task
//! (`bf-<db>-<window>-<task short id>`, `bf-copy-<source>-<task short id>`). A re-run, a duplicate
//! delivery or a takeover looks the name up first and continues with the snapshot it finds, but
//! only if that snapshot carries this task's id tag: a snapshot somebody else put under the name
//! is reported, never adopted (retention would otherwise treat it as ours).

use async_trait::async_trait;
use backup_core::artifacts::{artifact_tags, ArtifactStatus, Tags};
use backup_core::services::database::DbSnapshotInfo;
use backup_core::{AwsError, RetryClass, TaskError};
use backup_schemas::{
    tags, AccountRef, ArtifactKind, ArtifactRef, BackupContext, CopyDbSnapshot, ExportSnapshot, ResourceType,
    SnapshotDbCluster, SnapshotDbInstance, Task, TaskId,
};
use chrono::{DateTime, Utc};
use serde_json::json;

use crate::handler::{Handler, HandlerResult, Outcome, TaskContext};
use crate::handlers::services::{
    copy_expiry, copy_pool, copy_tags, follow_ups, missing, prune_after, record, verification, CopyKind, Services,
};

const GIB: u64 = 1024 * 1024 * 1024;

/// RDS limits: DB snapshot identifiers up to 255 characters, DB cluster snapshot identifiers up
/// to 63.
const INSTANCE_SNAPSHOT_MAX: usize = 255;
const CLUSTER_SNAPSHOT_MAX: usize = 63;

/// The AWS-managed RDS key of the destination region: used when the plan names no key, because
/// copies are always encrypted and a cross-region copy of an encrypted snapshot must name a key
/// of the destination region.
const DEFAULT_KMS_KEY: &str = "alias/aws/rds";

fn max_len(cluster: bool) -> usize {
    if cluster {
        CLUSTER_SNAPSHOT_MAX
    } else {
        INSTANCE_SNAPSHOT_MAX
    }
}

/// Lowercase ASCII letters, digits and single hyphens, no hyphen at either end, at most `max`
/// characters: what RDS accepts inside an identifier. RDS stores identifiers lowercased anyway,
/// so lowercasing here keeps our name and the one RDS reports equal.
fn sanitize(raw: &str, max: usize) -> String {
    let mut out = String::with_capacity(raw.len().min(max));
    for c in raw.chars() {
        let c = if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '-' };
        if c == '-' && (out.is_empty() || out.ends_with('-')) {
            continue;
        }
        out.push(c);
    }
    out.truncate(max);
    while out.ends_with('-') {
        out.pop();
    }
    out
}

/// `bf-<db id>-<window yyyymmddhhmm>-<task short id>`: deterministic per task, unique per task
/// (the short id), and readable. The DB id part is sanitised and shortened to fit the limit.
pub fn snapshot_identifier(db_id: &str, window: DateTime<Utc>, task_id: &TaskId, cluster: bool) -> String {
    let suffix = format!("-{}-{}", window.format("%Y%m%d%H%M"), sanitize(task_id.short(), 32));
    let room = max_len(cluster) - "bf-".len() - suffix.len();
    let db = sanitize(db_id, room);
    let db = if db.is_empty() { "db".to_owned() } else { db };
    format!("bf-{db}{suffix}")
}

/// `bf-copy-<source identifier>-<task short id>`, the source part shortened to fit (our own
/// source identifiers lose their `bf-` prefix: it says nothing twice).
pub fn copy_identifier(source_identifier: &str, task_id: &TaskId, cluster: bool) -> String {
    let suffix = format!("-{}", sanitize(task_id.short(), 32));
    let room = max_len(cluster) - "bf-copy-".len() - suffix.len();
    let source = sanitize(source_identifier.strip_prefix("bf-").unwrap_or(source_identifier), room);
    let source = if source.is_empty() { "snapshot".to_owned() } else { source };
    format!("bf-copy-{source}{suffix}")
}

/// The parts of `arn:<partition>:rds:<region>:<account>:snapshot|cluster-snapshot:<identifier>`.
#[derive(Clone, Copy)]
struct SnapshotArn<'a> {
    region: &'a str,
    cluster: bool,
    identifier: &'a str,
}

fn parse_snapshot_arn(arn: &str) -> Option<SnapshotArn<'_>> {
    let parts: Vec<&str> = arn.splitn(7, ':').collect();
    match parts.as_slice() {
        ["arn", _, "rds", region, _, kind, identifier] if !identifier.is_empty() => {
            let cluster = match *kind {
                "snapshot" => false,
                "cluster-snapshot" => true,
                _ => return None,
            };
            Some(SnapshotArn { region, cluster, identifier })
        }
        _ => None,
    }
}

fn not_found(err: &AwsError) -> bool {
    err.code.contains("NotFound")
}

/// `DBSnapshotAlreadyExists`, `DBClusterSnapshotAlreadyExistsFault`.
fn already_exists(err: &AwsError) -> bool {
    err.code.contains("AlreadyExists")
}

fn kind(cluster: bool) -> ArtifactKind {
    if cluster {
        ArtifactKind::RdsClusterSnapshot
    } else {
        ArtifactKind::RdsSnapshot
    }
}

fn copy_kind(cluster: bool) -> CopyKind {
    if cluster {
        CopyKind::RdsCluster
    } else {
        CopyKind::RdsInstance
    }
}

fn snapshot_noun(cluster: bool) -> &'static str {
    if cluster {
        "DB cluster snapshot"
    } else {
        "DB snapshot"
    }
}

fn snapshot_ref(snapshot: &DbSnapshotInfo) -> ArtifactRef {
    ArtifactRef { kind: kind(snapshot.cluster), region: snapshot.region.clone(), id: snapshot.identifier.clone() }
}

/// Continues with a snapshot found under our deterministic name only if this task made it.
fn owned(snapshot: DbSnapshotInfo, ctx: &TaskContext) -> Result<DbSnapshotInfo, TaskError> {
    match snapshot.tags.get(tags::TASK_ID) {
        Some(owner) if owner == ctx.task_id.as_str() => Ok(snapshot),
        owner => Err(TaskError::permanent(format!(
            "{} {} in {} already exists and was not made by this task ({} is {}); refusing to adopt it",
            snapshot_noun(snapshot.cluster),
            snapshot.identifier,
            snapshot.region,
            tags::TASK_ID,
            owner.map_or_else(|| "absent".to_owned(), |o| format!("{o:?}")),
        ))),
    }
}

/// The database a snapshot task backs up.
#[derive(Clone, Copy)]
struct Db<'a> {
    region: &'a str,
    id: &'a str,
    cluster: bool,
}

impl Db<'_> {
    fn noun(&self) -> &'static str {
        if self.cluster {
            "DB cluster"
        } else {
            "DB instance"
        }
    }
}

impl Services {
    /// What to do with one of our snapshots in its current state: fail (discarding it so a
    /// replay starts afresh), park, or `None` when it is complete.
    async fn park_or_fail(&self, snapshot: &DbSnapshotInfo, what: &str, ctx: &TaskContext) -> Option<HandlerResult> {
        match &snapshot.status {
            ArtifactStatus::Complete => None,
            ArtifactStatus::Pending { progress } => Some(self.pending_started(
                ctx,
                &snapshot.identifier,
                json!({
                    "identifier": snapshot.identifier,
                    "region": snapshot.region,
                    "cluster": snapshot.cluster,
                    "progress": progress,
                }),
            )),
            ArtifactStatus::Failed { reason } => {
                if let Err(err) =
                    self.databases.delete_snapshot(&snapshot.region, snapshot.cluster, &snapshot.identifier).await
                {
                    tracing::warn!(snapshot = %snapshot.identifier, error = %err, "could not delete a failed snapshot");
                }
                Some(Err(TaskError::permanent(format!(
                    "{what} {} in {} failed: {reason}",
                    snapshot.identifier, snapshot.region
                ))))
            }
        }
    }

    /// Re-describes a snapshot whose create/copy reported "already exists" (our own earlier
    /// attempt racing this one, or someone else's), applying the ownership rule.
    async fn existing_after_race(
        &self,
        region: &str,
        cluster: bool,
        identifier: &str,
        ctx: &TaskContext,
    ) -> Result<DbSnapshotInfo, TaskError> {
        match self.databases.snapshot(region, cluster, identifier).await? {
            Some(snapshot) => owned(snapshot, ctx),
            None => Err(TaskError::retry(
                RetryClass::Transient,
                format!("{} {identifier} reported as existing but not visible yet", snapshot_noun(cluster)),
            )),
        }
    }

    /// Checks the database and starts its snapshot.
    async fn start_db_snapshot(
        &self,
        db: Db<'_>,
        identifier: &str,
        backup: &BackupContext,
        ctx: &TaskContext,
    ) -> Result<DbSnapshotInfo, TaskError> {
        if db.cluster {
            if self.databases.cluster(db.region, db.id).await?.is_none() {
                return Err(missing(db.noun(), db.id, db.region));
            }
        } else {
            match self.databases.instance(db.region, db.id).await? {
                None => return Err(missing(db.noun(), db.id, db.region)),
                // CreateDBSnapshot refuses Aurora members; the cluster snapshot covers them.
                Some(instance) if instance.cluster_id.is_some() => {
                    return Err(TaskError::permanent(format!(
                        "DB instance {} in {} is a member of DB cluster {}: back up the cluster (rds.snapshot_cluster)",
                        db.id,
                        db.region,
                        instance.cluster_id.unwrap_or_default()
                    )))
                }
                Some(_) => {}
            }
        }
        let tags = artifact_tags(&ctx.task_id, backup, db.id, None);
        match self.databases.create_snapshot(db.region, db.cluster, db.id, identifier, &tags).await {
            Ok(snapshot) => Ok(snapshot),
            Err(err) if already_exists(&err) => self.existing_after_race(db.region, db.cluster, identifier, ctx).await,
            // Deleted between the check and the create.
            Err(err) if not_found(&err) => Err(missing(db.noun(), db.id, db.region)),
            Err(err) => Err(err.into()),
        }
    }

    async fn snapshot_db(&self, db: Db<'_>, backup: &BackupContext, ctx: &TaskContext) -> HandlerResult {
        let identifier = snapshot_identifier(db.id, backup.window, &ctx.task_id, db.cluster);
        let snapshot = match self.databases.snapshot(db.region, db.cluster, &identifier).await? {
            Some(existing) => owned(existing, ctx)?,
            None => {
                // Started by an earlier attempt, not visible yet: do not start it again.
                if let Some(outcome) = self.park_if_not_visible_yet(ctx) {
                    return outcome;
                }
                ctx.may_start("the DB snapshot")?;
                self.start_db_snapshot(db, &identifier, backup, ctx).await?
            }
        };
        if let Some(outcome) = self.park_or_fail(&snapshot, snapshot_noun(db.cluster), ctx).await {
            return outcome;
        }
        if snapshot.arn.is_empty() {
            return Err(TaskError::retry(RetryClass::Transient, format!("snapshot {identifier} has no ARN yet")));
        }

        let artifact = snapshot_ref(&snapshot);
        let mut entry = record(artifact.clone(), db.id, db.region, backup, &ctx.task_id, snapshot.created_at, None);
        entry.size_bytes = snapshot.allocated_gib.map(|g| g as u64 * GIB);
        entry.encrypted = Some(snapshot.encrypted);
        entry.details.insert("arn".into(), snapshot.arn.clone());
        if let Some(engine) = &snapshot.engine {
            entry.details.insert("engine".into(), engine.clone());
        }
        if let Some(key) = &snapshot.kms_key {
            entry.details.insert("kms_key".into(), key.clone());
        }
        self.catalog.put(&entry).await?;

        let children = follow_ups(&artifact, db.id, backup, |target| {
            let copy = CopyDbSnapshot {
                source_region: db.region.to_owned(),
                snapshot_arn: snapshot.arn.clone(),
                source_resource: db.id.to_owned(),
                target: target.clone(),
                ctx: backup.clone(),
            };
            Some(if db.cluster { Task::CopyDbClusterSnapshot(copy) } else { Task::CopyDbSnapshot(copy) })
        });
        let resource_type = if db.cluster { ResourceType::RdsCluster } else { ResourceType::RdsInstance };
        // The export reads the snapshot in its own region (RDS exports only into a bucket there).
        let export = backup.export.as_ref().map(|export| {
            Task::ExportSnapshot(ExportSnapshot {
                region: db.region.to_owned(),
                snapshot_arn: snapshot.arn.clone(),
                source_resource: db.id.to_owned(),
                export: export.clone(),
                ctx: backup.clone(),
            })
        });
        let children = children.into_iter().chain(export).chain(prune_after(
            backup,
            db.id,
            resource_type,
            db.region,
            None,
            snapshot.created_at,
        ));
        Ok(Outcome::done(json!({
            "identifier": snapshot.identifier,
            "arn": snapshot.arn,
            "region": db.region,
            "cluster": db.cluster,
            "allocated_gib": snapshot.allocated_gib,
            "encrypted": snapshot.encrypted,
        }))
        .with_children(children))
    }

    /// Checks the source snapshot and starts the copy; `Ok(None)` when the source is still being
    /// made (the caller parks and looks again).
    async fn start_db_copy(
        &self,
        p: &CopyDbSnapshot,
        source: &SnapshotArn<'_>,
        identifier: &str,
        ctx: &TaskContext,
    ) -> Result<Option<DbSnapshotInfo>, TaskError> {
        let cluster = source.cluster;
        let dest = &p.target.region;
        let Some(original) = self.databases.snapshot(&p.source_region, cluster, source.identifier).await? else {
            return Err(missing(snapshot_noun(cluster), source.identifier, &p.source_region));
        };
        match &original.status {
            ArtifactStatus::Complete => {}
            ArtifactStatus::Pending { .. } => return Ok(None),
            ArtifactStatus::Failed { reason } => {
                return Err(TaskError::permanent(format!(
                    "source {} {} in {} failed: {reason}",
                    snapshot_noun(cluster),
                    source.identifier,
                    p.source_region
                )))
            }
        }
        // An unencrypted Aurora snapshot cannot be encrypted by a copy (RDS rejects a KmsKeyId
        // for it): without a plan key it is copied as it is, and verification reports it.
        let kms_key = match p.target.kms_key.as_deref() {
            Some(key) => Some(key),
            None if cluster && !original.encrypted => {
                tracing::warn!(snapshot = %original.identifier, "unencrypted cluster snapshot: the copy stays unencrypted");
                None
            }
            None => Some(DEFAULT_KMS_KEY),
        };
        let expires_at = copy_expiry(&p.ctx, &p.target);
        let tags = copy_tags(
            artifact_tags(&ctx.task_id, &p.ctx, &p.source_resource, expires_at),
            &p.source_region,
            source.identifier,
        );
        match self
            .databases
            .copy_snapshot(cluster, &p.source_region, &p.snapshot_arn, dest, identifier, kms_key, &tags)
            .await
        {
            Ok(copy) => Ok(Some(copy)),
            Err(err) if already_exists(&err) => {
                self.existing_after_race(dest, cluster, identifier, ctx).await.map(Some)
            }
            Err(err) if not_found(&err) => Err(missing(snapshot_noun(cluster), source.identifier, &p.source_region)),
            Err(err) if err.code.starts_with("KMS") => Err(TaskError::permanent(format!(
                "KMS key {} cannot be used for the copy of {} in {dest}: {err}",
                kms_key.unwrap_or("(source key)"),
                source.identifier
            ))),
            Err(err) => Err(err.into()),
        }
    }

    /// Copies a DB (cluster) snapshot into the target region, holding a copy slot while the
    /// copy is in flight and giving it back on every other outcome.
    pub async fn copy_db_snapshot(&self, p: &CopyDbSnapshot, cluster: bool, ctx: &TaskContext) -> HandlerResult {
        let result = match &p.target.account {
            None => self.copy_db_snapshot_held(p, cluster, ctx).await,
            Some(account) => self.copy_db_snapshot_to_account(account, p, cluster, ctx).await,
        };
        self.settle_copy_slot(copy_kind(cluster), &copy_pool(&p.target, ctx), &ctx.task_id, result).await
    }

    /// A copy into an isolated backup account: the source (or, when the backup account cannot
    /// use its key, its re-encryption under the share key) is shared through the `restore`
    /// attribute, copied by the backup account's role under its own key, then unshared; the
    /// re-encryption is deleted. The copy's record, retention and verification live there.
    async fn copy_db_snapshot_to_account(
        &self,
        account: &AccountRef,
        p: &CopyDbSnapshot,
        cluster: bool,
        ctx: &TaskContext,
    ) -> HandlerResult {
        let source = checked_source(p, cluster)?;
        let result = self.copy_db_snapshot_to_account_steps(account, p, &source, cluster, ctx).await;
        if let Err(err) = &result {
            if !err.is_retryable() {
                // Nothing will copy it now (a key the backup account cannot use, a failed copy,
                // the deadline): take the share back and delete the re-encryption at once.
                if let Err(cleanup) = self.end_db_share(p, &source, cluster, &account.account_id, ctx).await {
                    tracing::warn!(error = %cleanup, "could not take back the share of a failed copy");
                }
            }
        }
        result
    }

    async fn copy_db_snapshot_to_account_steps(
        &self,
        account: &AccountRef,
        p: &CopyDbSnapshot,
        source: &SnapshotArn<'_>,
        cluster: bool,
        ctx: &TaskContext,
    ) -> HandlerResult {
        let source = *source;
        let vault = self.in_account(account).await?;
        let identifier = copy_identifier(source.identifier, &ctx.task_id, cluster);
        // Already copied or copying (a re-check, or a re-run): carry on from there.
        let copy = match vault.databases.snapshot(&p.target.region, cluster, &identifier).await? {
            Some(existing) => owned(existing, ctx)?,
            None => {
                let artifact = ArtifactRef {
                    kind: kind(cluster),
                    region: p.source_region.clone(),
                    id: source.identifier.to_owned(),
                };
                self.check_catalogued_source(&artifact, &p.source_resource, ctx).await?;
                let share = match self.shareable_db_snapshot(p, &source, cluster, ctx).await {
                    Ok(share) => share,
                    Err(outcome) => return outcome,
                };
                if let Some(outcome) = vault.park_if_not_visible_yet(ctx) {
                    return outcome;
                }
                ctx.may_start("the copy into the backup account")?;
                vault.copy_slot(copy_kind(cluster), &copy_pool(&p.target, ctx), &ctx.task_id).await?;
                self.databases
                    .share_snapshot(&p.source_region, cluster, &share.identifier, &account.account_id, true)
                    .await?;
                let expires_at = copy_expiry(&p.ctx, &p.target);
                let mut tags = copy_tags(
                    artifact_tags(&ctx.task_id, &p.ctx, &p.source_resource, expires_at),
                    &p.source_region,
                    source.identifier,
                );
                tags.insert(tags::SOURCE_ACCOUNT.to_owned(), ctx.account_label().to_owned());
                let kms_key = p.target.kms_key.as_deref();
                match vault
                    .databases
                    .copy_snapshot(cluster, &p.source_region, &share.arn, &p.target.region, &identifier, kms_key, &tags)
                    .await
                {
                    Ok(copy) => copy,
                    Err(err) if already_exists(&err) => {
                        vault.existing_after_race(&p.target.region, cluster, &identifier, ctx).await?
                    }
                    Err(err) if not_found(&err) => {
                        return Err(TaskError::retry(
                            RetryClass::Transient,
                            format!(
                                "account {} cannot see the shared snapshot {} yet: {err}",
                                account.account_id, share.arn
                            ),
                        ))
                    }
                    Err(err) => return Err(err.into()),
                }
            }
        };
        if let Some(outcome) = vault.park_or_fail(&copy, "copy", ctx).await {
            if matches!(outcome, Ok(Outcome::Pending { .. })) {
                vault.renew_copy_slot(copy_kind(cluster), &copy_pool(&p.target, ctx), &ctx.task_id).await;
            }
            return outcome;
        }
        self.end_db_share(p, &source, cluster, &account.account_id, ctx).await?;
        vault.finish_db_copy(p, &source, cluster, &copy, Some(account), ctx).await
    }

    /// The backup account has its own copy: take its access to the source away and delete the
    /// re-encryption made for the share, if there was one (both idempotent, so a re-run after a
    /// crash ends the share all the same).
    async fn end_db_share(
        &self,
        p: &CopyDbSnapshot,
        source: &SnapshotArn<'_>,
        cluster: bool,
        account: &str,
        ctx: &TaskContext,
    ) -> Result<(), TaskError> {
        match self.databases.share_snapshot(&p.source_region, cluster, source.identifier, account, false).await {
            Ok(()) => {}
            Err(err) if not_found(&err) => {}
            Err(err) => return Err(err.into()),
        }
        let temporary = share_identifier(source.identifier, &ctx.task_id, cluster);
        self.databases.delete_snapshot(&p.source_region, cluster, &temporary).await?;
        tracing::info!(account, snapshot = %source.identifier, "copied into the backup account; the share is removed");
        Ok(())
    }

    /// The snapshot a backup account may copy: the source itself when unencrypted or under the
    /// share key, else its re-encryption under the share key (made in place, deterministic name;
    /// the task parks while it completes).
    async fn shareable_db_snapshot(
        &self,
        p: &CopyDbSnapshot,
        source: &SnapshotArn<'_>,
        cluster: bool,
        ctx: &TaskContext,
    ) -> Result<SharedDbSnapshot, HandlerResult> {
        let region = &p.source_region;
        let original = self.databases.snapshot(region, cluster, source.identifier).await.map_err(|e| Err(e.into()))?;
        let Some(original) = original else {
            return Err(Err(missing(snapshot_noun(cluster), source.identifier, region)));
        };
        let key = p.target.share_kms_key.as_deref();
        if !original.encrypted || (key.is_some() && original.kms_key.as_deref() == key) {
            return Ok(SharedDbSnapshot { identifier: original.identifier, arn: original.arn });
        }
        let Some(key) = key else {
            return Err(Err(TaskError::permanent(format!(
                "{} {} is encrypted under {}, which the backup account cannot use (snapshots under the default \
                 aws/rds key cannot be shared at all): set share_kms_key in the plan's copy_to to a customer-managed \
                 key of the source account that the backup account may use",
                snapshot_noun(cluster),
                source.identifier,
                original.kms_key.as_deref().unwrap_or("the default key"),
            ))));
        };
        let identifier = share_identifier(source.identifier, &ctx.task_id, cluster);
        let temporary = match self.databases.snapshot(region, cluster, &identifier).await.map_err(|e| Err(e.into()))? {
            Some(found) => found,
            None => {
                ctx.may_start("the re-encryption for sharing").map_err(Err)?;
                tracing::info!(
                    snapshot = %source.identifier,
                    from_key = original.kms_key.as_deref().unwrap_or("aws/rds"),
                    share_key = key,
                    "re-encrypting the snapshot under the share key: the backup account cannot use its key"
                );
                let tags = Tags::from([(tags::SHARE_FOR.to_owned(), ctx.task_id.to_string())]);
                match self
                    .databases
                    .copy_snapshot(cluster, region, &p.snapshot_arn, region, &identifier, Some(key), &tags)
                    .await
                {
                    Ok(copy) => copy,
                    Err(err) if already_exists(&err) => {
                        self.existing_after_race(region, cluster, &identifier, ctx).await.map_err(Err)?
                    }
                    Err(err) => return Err(Err(err.into())),
                }
            }
        };
        match self.park_or_fail(&temporary, "re-encryption for sharing", ctx).await {
            Some(outcome) => Err(outcome),
            None => Ok(SharedDbSnapshot { identifier: temporary.identifier, arn: temporary.arn }),
        }
    }

    async fn copy_db_snapshot_held(&self, p: &CopyDbSnapshot, cluster: bool, ctx: &TaskContext) -> HandlerResult {
        let source = checked_source(p, cluster)?;
        let dest = &p.target.region;
        let identifier = copy_identifier(source.identifier, &ctx.task_id, cluster);
        let copy = match self.databases.snapshot(dest, cluster, &identifier).await? {
            Some(existing) => owned(existing, ctx)?,
            None => {
                // Started by an earlier attempt, not visible yet: do not start it again.
                if let Some(outcome) = self.park_if_not_visible_yet(ctx) {
                    return outcome;
                }
                ctx.may_start("the copy")?;
                self.copy_slot(copy_kind(cluster), &copy_pool(&p.target, ctx), &ctx.task_id).await?;
                let started = self.start_db_copy(p, &source, &identifier, ctx).await?;
                match started {
                    Some(copy) => copy,
                    None => {
                        return Ok(Outcome::Pending {
                            checkpoint: json!({ "identifier": identifier, "waiting_for_source": p.snapshot_arn }),
                            recheck_after: self.timing.recheck,
                        })
                    }
                }
            }
        };
        if let Some(outcome) = self.park_or_fail(&copy, "copy", ctx).await {
            if matches!(outcome, Ok(Outcome::Pending { .. })) {
                self.renew_copy_slot(copy_kind(cluster), &copy_pool(&p.target, ctx), &ctx.task_id).await;
            }
            return outcome;
        }

        self.finish_db_copy(p, &source, cluster, &copy, None, ctx).await
    }

    /// Catalogs a completed copy (in the account `self` acts in) and returns its follow-ups:
    /// verification and retention of the copy's region, in that account.
    async fn finish_db_copy(
        &self,
        p: &CopyDbSnapshot,
        source: &SnapshotArn<'_>,
        cluster: bool,
        copy: &DbSnapshotInfo,
        to_account: Option<&AccountRef>,
        ctx: &TaskContext,
    ) -> HandlerResult {
        let dest = &p.target.region;
        let expires_at = copy_expiry(&p.ctx, &p.target);
        let original =
            ArtifactRef { kind: kind(cluster), region: p.source_region.clone(), id: source.identifier.to_owned() };
        let artifact = snapshot_ref(copy);
        let mut entry = record(
            artifact.clone(),
            &p.source_resource,
            &p.source_region,
            &p.ctx,
            &ctx.task_id,
            copy.created_at,
            expires_at,
        );
        entry.size_bytes = copy.allocated_gib.map(|g| g as u64 * GIB);
        entry.encrypted = Some(copy.encrypted);
        entry.copy_of = Some(original.clone());
        entry.details.insert("arn".into(), copy.arn.clone());
        if let Some(key) = &copy.kms_key {
            entry.details.insert("kms_key".into(), key.clone());
        }
        if to_account.is_some() {
            entry.details.insert("source_account".into(), ctx.account_label().to_owned());
        }
        self.catalog.put(&entry).await?;
        self.catalog.add_copy(&original, &artifact).await?;
        let verify = p.ctx.verify.then(|| verification(artifact, &p.source_resource, &p.source_region, true));
        let resource_type = if cluster { ResourceType::RdsCluster } else { ResourceType::RdsInstance };
        let prune = prune_after(&p.ctx, &p.source_resource, resource_type, dest, Some(&p.target), copy.created_at);
        // In a backup account, the prune judges this source account's copies only.
        let prune = prune.map(|task| match (task, to_account) {
            (Task::Prune(prune), Some(_)) => {
                Task::Prune(backup_schemas::Prune { source_account: Some(ctx.account_label().to_owned()), ..prune })
            }
            (task, _) => task,
        });
        let children = verify.into_iter().chain(prune);
        let done = Outcome::done(json!({
            "identifier": copy.identifier,
            "arn": copy.arn,
            "region": dest,
            "account": to_account.map(|a| a.account_id.as_str()),
            "copy_of": p.snapshot_arn,
            "encrypted": copy.encrypted,
            "kms_key": copy.kms_key,
        }));
        Ok(match to_account {
            None => done.with_children(children),
            Some(account) => done.with_children_in(Some(account), children),
        })
    }
}

/// The source of a copy shared with a backup account.
struct SharedDbSnapshot {
    identifier: String,
    arn: String,
}

/// The deterministic name of a snapshot's re-encryption for sharing.
fn share_identifier(source_identifier: &str, task_id: &TaskId, cluster: bool) -> String {
    let suffix = format!("-{}", sanitize(task_id.short(), 32));
    let room = max_len(cluster) - "bf-share-".len() - suffix.len();
    let source = sanitize(source_identifier.strip_prefix("bf-").unwrap_or(source_identifier), room);
    let source = if source.is_empty() { "snapshot".to_owned() } else { source };
    format!("bf-share-{source}{suffix}")
}

/// The copy's source ARN, checked against the task's kind and region.
fn checked_source(p: &CopyDbSnapshot, cluster: bool) -> Result<SnapshotArn<'_>, TaskError> {
    let source = parse_snapshot_arn(&p.snapshot_arn)
        .ok_or_else(|| TaskError::permanent(format!("{} is not an RDS snapshot ARN", p.snapshot_arn)))?;
    if source.cluster != cluster {
        return Err(TaskError::permanent(format!("{} is not a {} ARN", p.snapshot_arn, snapshot_noun(cluster))));
    }
    if source.region != p.source_region {
        return Err(TaskError::permanent(format!(
            "snapshot {} is in {}, but the task says it is in {}",
            p.snapshot_arn, source.region, p.source_region
        )));
    }
    Ok(source)
}

#[async_trait]
impl Handler<SnapshotDbInstance> for Services {
    async fn run(&self, p: &SnapshotDbInstance, ctx: &TaskContext) -> HandlerResult {
        self.snapshot_db(Db { region: &p.region, id: &p.db_instance_id, cluster: false }, &p.ctx, ctx).await
    }
}

#[async_trait]
impl Handler<SnapshotDbCluster> for Services {
    async fn run(&self, p: &SnapshotDbCluster, ctx: &TaskContext) -> HandlerResult {
        self.snapshot_db(Db { region: &p.region, id: &p.db_cluster_id, cluster: true }, &p.ctx, ctx).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn valid(identifier: &str, max: usize) -> bool {
        !identifier.is_empty()
            && identifier.len() <= max
            && identifier.starts_with(|c: char| c.is_ascii_lowercase())
            && !identifier.ends_with('-')
            && !identifier.contains("--")
            && identifier.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
    }

    #[test]
    fn identifiers_are_deterministic_valid_and_bounded() {
        let task = TaskId::new("t-0123456789abcdef0123456789abcdef");
        let window = Utc.with_ymd_and_hms(2024, 5, 6, 7, 8, 0).unwrap();
        assert_eq!(
            snapshot_identifier("Orders-DB", window, &task, false),
            "bf-orders-db-202405060708-0123456789abcdef"
        );
        assert_eq!(
            snapshot_identifier("Orders-DB", window, &task, false),
            snapshot_identifier("orders-db", window, &task, false)
        );
        for db in ["a", "--weird__name--", "x".repeat(300).as_str(), "9starts-with-digit", "ünïcode", ""] {
            for cluster in [false, true] {
                let id = snapshot_identifier(db, window, &task, cluster);
                assert!(valid(&id, max_len(cluster)), "{id:?} from {db:?}");
                assert!(id.ends_with("-0123456789abcdef"), "keeps the task short id: {id}");
                let copy = copy_identifier(&id, &task, cluster);
                assert!(valid(&copy, max_len(cluster)), "{copy:?}");
            }
        }
        let long = snapshot_identifier(&"x".repeat(300), window, &task, true);
        assert_eq!(long.len(), CLUSTER_SNAPSHOT_MAX);
        assert_eq!(
            copy_identifier("bf-orders-db-202405060708-aaaaaaaaaaaaaaaa", &task, false),
            "bf-copy-orders-db-202405060708-aaaaaaaaaaaaaaaa-0123456789abcdef"
        );
    }

    #[test]
    fn parses_snapshot_arns() {
        let arn = parse_snapshot_arn("arn:aws:rds:us-east-1:123456789012:snapshot:bf-db-1").unwrap();
        assert_eq!((arn.region, arn.cluster, arn.identifier), ("us-east-1", false, "bf-db-1"));
        let arn = parse_snapshot_arn("arn:aws-us-gov:rds:us-gov-west-1:1:cluster-snapshot:c1").unwrap();
        assert_eq!((arn.region, arn.cluster, arn.identifier), ("us-gov-west-1", true, "c1"));
        assert!(parse_snapshot_arn("arn:aws:rds:us-east-1:1:db:mydb").is_none());
        assert!(parse_snapshot_arn("bf-db-1").is_none());
        assert!(parse_snapshot_arn("arn:aws:ec2:us-east-1:1:snapshot:snap-1").is_none());
    }
}
