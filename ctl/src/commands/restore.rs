//! `backupctl restore <volume|instance|db-instance|db-cluster|s3>`: starts a restore as one fleet
//! task and, with `--wait`, follows it to the end with its progress on stderr.
//!
//! The task id derives from the restore id (generated, or `--restore-id` to make a retry of the
//! command the same restore): starting one restore twice runs one task and creates one resource.
//! The backup is `--backup ID` (in `--from-region`, default `AWS_REGION`) or the newest good one of
//! `--resource ID` in that region; `--from-region us-west-2` restores from the DR copy.

use anyhow::Context as _;
use backup_core::accounts::AccountCatalog;
use backup_core::artifacts::CatalogRecord;
use backup_core::outln;
use backup_core::ports::{Catalog, OutgoingMessage, RunRecord};
use backup_schemas::{
    AccountRef, ArtifactKind, ArtifactRef, Envelope, Origin, PointInTime, RestoreDbCluster, RestoreDbInstance,
    RestoreInstance, RestoreObjects, RestoreSource, RestoreVolume, RunId, Task, TaskState,
};
use chrono::{DateTime, Utc};
use clap::{Args, Subcommand};
use serde_json::json;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use super::Fleet;

/// The role name Terraform's backup-account module gives the fleet in the backup account.
const DEFAULT_VAULT_ROLE: &str = "backup-fleet-vault";

/// Days the worker restores an archived snapshot for (`backup-worker`'s `ARCHIVE_RESTORE_DAYS`).
const ARCHIVE_RESTORE_DAYS: i32 = 3;
use crate::output;

/// Which backup to restore.
#[derive(Args, Debug, Clone)]
pub struct Pick {
    /// The backup: snapshot id, AMI id or RDS snapshot identifier.
    #[arg(long, conflicts_with = "resource", required_unless_present = "resource")]
    pub backup: Option<String>,
    /// Restore the newest good backup of this resource (volume, instance, DB identifier).
    #[arg(long)]
    pub resource: Option<String>,
    /// Region to restore in and of the backup restored (the DR region restores from the copy, and a
    /// point in time of a DB instance from its automated backups replicated there); default AWS_REGION.
    #[arg(long)]
    pub from_region: Option<String>,
    /// Restore inside this account, from the backups kept there: an isolated backup account
    /// when the source account is lost, or a member account. The fleet assumes --role-arn there.
    #[arg(long)]
    pub from_account: Option<String>,
    /// The role assumed in --from-account (default: the backup-account module's
    /// `arn:aws:iam::<ACCOUNT>:role/backup-fleet-vault`).
    #[arg(long, requires = "from_account")]
    pub role_arn: Option<String>,
}

/// A point in time instead of a snapshot (RDS only): `--resource` names the database.
#[derive(Args, Debug, Clone, Default)]
pub struct Pitr {
    /// Restore the database as it was at this instant (RFC 3339, e.g. 2026-12-04T10:42:00Z), from
    /// its automated backups; needs --resource. Refused outside the restorable window.
    #[arg(long, conflicts_with_all = ["backup", "latest_restorable"], requires = "resource")]
    pub to_time: Option<String>,
    /// Restore the database as it was at its latest restorable time (minutes ago); needs --resource.
    #[arg(long, conflicts_with = "backup", requires = "resource")]
    pub latest_restorable: bool,
}

impl Pitr {
    /// The point in time asked for, if any; a malformed time is a usage error.
    fn point(&self) -> anyhow::Result<Option<PointInTime>> {
        if self.latest_restorable {
            return Ok(Some(PointInTime::Latest));
        }
        let Some(text) = &self.to_time else { return Ok(None) };
        let at = DateTime::parse_from_rfc3339(text).map_err(|err| {
            backup_core::exit::UsageError::new(format!(
                "--to-time {text:?}: {err} (expected RFC 3339, e.g. 2026-12-04T10:42:00Z)"
            ))
        })?;
        Ok(Some(PointInTime::At(at.with_timezone(&Utc))))
    }
}

/// Flags every restore takes.
#[derive(Args, Debug, Clone)]
pub struct Common {
    /// Idempotency key: the same id is the same restore (default: a new one).
    #[arg(long)]
    pub restore_id: Option<String>,
    /// Wait until the restore finishes, printing progress on stderr.
    #[arg(long)]
    pub wait: bool,
    /// Seconds to wait with --wait.
    #[arg(long, default_value_t = 3600)]
    pub timeout: u64,
    #[arg(long)]
    pub json: bool,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// An EBS snapshot to a new volume.
    Volume {
        #[command(flatten)]
        pick: Pick,
        /// Availability zone of the volume (default: the region's first, `<region>a`).
        #[arg(long)]
        az: Option<String>,
        #[arg(long)]
        volume_type: Option<String>,
        /// KMS key to encrypt the volume with.
        #[arg(long)]
        kms_key: Option<String>,
        #[command(flatten)]
        common: Common,
    },
    /// An AMI to a new instance, stopped once launched unless --start.
    Instance {
        #[command(flatten)]
        pick: Pick,
        #[arg(long, default_value = "t3.micro")]
        instance_type: String,
        #[arg(long)]
        subnet: Option<String>,
        /// Leave the instance running.
        #[arg(long)]
        start: bool,
        #[command(flatten)]
        common: Common,
    },
    /// An RDS snapshot, or a point in time (--to-time, --latest-restorable), to a new DB instance.
    DbInstance {
        #[command(flatten)]
        pick: Pick,
        #[command(flatten)]
        pitr: Pitr,
        /// Identifier of the new DB instance (default: `restored-<restore id>`).
        #[arg(long)]
        target: Option<String>,
        /// DB instance class (default: the snapshot's).
        #[arg(long)]
        class: Option<String>,
        #[arg(long)]
        subnet_group: Option<String>,
        #[command(flatten)]
        common: Common,
    },
    /// An Aurora cluster snapshot, or a point in time (--to-time, --latest-restorable), to a new DB
    /// cluster (without instances: add them to use it).
    DbCluster {
        #[command(flatten)]
        pick: Pick,
        #[command(flatten)]
        pitr: Pitr,
        /// Identifier of the new DB cluster (default: `restored-<restore id>`).
        #[arg(long)]
        target: Option<String>,
        /// Engine (default: the snapshot's).
        #[arg(long)]
        engine: Option<String>,
        #[arg(long)]
        subnet_group: Option<String>,
        #[command(flatten)]
        common: Common,
    },
    /// Objects as of a point in time, from the versioned backup bucket into a target bucket.
    S3 {
        /// The backup bucket (backups live at `<backup bucket>/<source bucket>/<key>`).
        #[arg(long)]
        backup_bucket: String,
        /// The bucket that was backed up.
        #[arg(long)]
        source_bucket: String,
        /// Only keys under this prefix (a full key restores that object, and any key it is a prefix of).
        #[arg(long, default_value = "")]
        prefix: String,
        /// Restore the versions backed up at this instant (RFC 3339); default the latest.
        #[arg(long)]
        as_of: Option<String>,
        #[arg(long)]
        target_bucket: String,
        /// Prefix put before each restored key in the target bucket.
        #[arg(long, default_value = "")]
        target_prefix: String,
        /// Region of the backup bucket (and the target bucket); default AWS_REGION.
        #[arg(long)]
        from_region: Option<String>,
        #[command(flatten)]
        common: Common,
    },
}

/// A new restore id: time-ordered and unique enough for an operator's command.
fn new_restore_id() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher
        .write_u128(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_nanos());
    format!("r-{}-{:08x}", Utc::now().format("%Y%m%dt%H%M%S"), hasher.finish() as u32)
}

/// `restored-<restore id>` as an RDS identifier: lowercase letters, digits and single hyphens,
/// starting with a letter, at most 63 characters.
fn default_target(restore_id: &str) -> String {
    let mut out = String::from("restored-");
    for c in restore_id.chars() {
        let c = if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '-' };
        if !(c == '-' && out.ends_with('-')) {
            out.push(c);
        }
    }
    out.truncate(63);
    out.trim_end_matches('-').to_owned()
}

impl Pick {
    /// The account to restore in, checked; `None`: the fleet's own.
    fn account(&self) -> anyhow::Result<Option<AccountRef>> {
        let Some(account_id) = &self.from_account else { return Ok(None) };
        let role_arn =
            self.role_arn.clone().unwrap_or_else(|| format!("arn:aws:iam::{account_id}:role/{DEFAULT_VAULT_ROLE}"));
        let account = AccountRef { account_id: account_id.clone(), role_arn };
        account.check().map_err(|e| backup_core::exit::UsageError::new(format!("--from-account / --role-arn: {e}")))?;
        Ok(Some(account))
    }

    fn source(&self, kind: ArtifactKind, default_region: &str) -> RestoreSource {
        self.source_at(kind, default_region, None)
    }

    /// The source, or with a point in time the database's automated backups at that time.
    fn source_at(&self, kind: ArtifactKind, default_region: &str, point: Option<PointInTime>) -> RestoreSource {
        let region = self.from_region.clone().unwrap_or_else(|| default_region.to_owned());
        match (&self.backup, &self.resource, point) {
            (Some(id), _, _) => RestoreSource::Artifact(ArtifactRef { kind, region, id: id.clone() }),
            (None, resource, Some(to)) => {
                RestoreSource::PointInTime { resource: resource.clone().unwrap_or_default(), region, to }
            }
            (None, resource, None) => {
                RestoreSource::LatestOf { resource: resource.clone().unwrap_or_default(), region }
            }
        }
    }
}

/// Checks the source against the catalog before sending: a resource without a usable backup is
/// reported now, not as a failed task. A named backup the catalog does not know is only warned
/// about (in a disaster the catalog may be what is missing).
/// Tells the operator up front that a snapshot in the EBS archive tier is restored to the
/// standard tier first, which takes hours.
fn note_archived(record: &CatalogRecord, json: bool) {
    if json || record.archive.as_ref().and_then(|a| a.archived_at).is_none() {
        return;
    }
    eprintln!(
        "note: {} is in the EBS archive tier: the fleet first restores it to the standard tier for {} days \
         (RestoreSnapshotTier), which takes up to 72 hours; the task waits for it, then makes the volume",
        record.artifact.id, ARCHIVE_RESTORE_DAYS
    );
}

async fn preflight(
    fleet: &Fleet,
    account: Option<&AccountRef>,
    source: &RestoreSource,
    kind: ArtifactKind,
    json: bool,
) -> anyhow::Result<Option<String>> {
    // The account's own records: a restore in the backup account picks among its copies.
    let catalog = AccountCatalog::new(fleet.catalog()?, account);
    match source {
        RestoreSource::Artifact(artifact) => match catalog.get(artifact).await? {
            Some(record) if record.deleted_at.is_some() => {
                Ok(Some(format!("backup {} was deleted at {:?}", artifact.id, record.deleted_at)))
            }
            Some(record) => {
                note_archived(&record, json);
                Ok(None)
            }
            None => {
                if !json {
                    eprintln!(
                        "warning: {} {} in {} is not in the catalog; restoring it anyway",
                        artifact.kind.as_str(),
                        artifact.id,
                        artifact.region
                    );
                }
                Ok(None)
            }
        },
        // The worker checks the restorable window against RDS itself.
        RestoreSource::PointInTime { .. } => Ok(None),
        RestoreSource::LatestOf { resource, region } => {
            let records = catalog.by_resource(resource).await?;
            // Newest first: the one the worker will pick (it re-checks with AWS).
            let newest = records.iter().find(|r| {
                r.deleted_at.is_none()
                    && &r.artifact.region == region
                    && r.artifact.kind == kind
                    && r.verification.as_ref().is_none_or(|v| v.ok)
            });
            let usable = newest.is_some();
            if let Some(record) = newest {
                note_archived(record, json);
            }
            Ok((!usable).then(|| {
                format!(
                    "no usable backup ({}) of {resource} in {region} ({} catalog records)",
                    kind.as_str(),
                    records.len()
                )
            }))
        }
    }
}

pub async fn run(fleet: &Fleet, command: Command) -> anyhow::Result<i32> {
    let region = fleet.aws.region();
    let (task, common, source, account) = match command {
        Command::Volume { pick, az, volume_type, kms_key, common } => {
            let kind = ArtifactKind::EbsSnapshot;
            let source = pick.source(kind, &region);
            let zone = az.unwrap_or_else(|| format!("{}a", pick.from_region.as_deref().unwrap_or(&region)));
            let restore_id = common.restore_id.clone().unwrap_or_else(new_restore_id);
            let task = Task::RestoreVolume(RestoreVolume {
                restore_id,
                source: source.clone(),
                availability_zone: zone,
                volume_type,
                kms_key,
                drill: false,
            });
            (task, common, Some((source, kind)), pick.account()?)
        }
        Command::Instance { pick, instance_type, subnet, start, common } => {
            let kind = ArtifactKind::Ami;
            let source = pick.source(kind, &region);
            let restore_id = common.restore_id.clone().unwrap_or_else(new_restore_id);
            let task = Task::RestoreInstance(RestoreInstance {
                restore_id,
                source: source.clone(),
                instance_type,
                subnet_id: subnet,
                start,
                drill: false,
            });
            (task, common, Some((source, kind)), pick.account()?)
        }
        Command::DbInstance { pick, pitr, target, class, subnet_group, common } => {
            let kind = ArtifactKind::RdsSnapshot;
            let source = pick.source_at(kind, &region, pitr.point()?);
            let restore_id = common.restore_id.clone().unwrap_or_else(new_restore_id);
            let task = Task::RestoreDbInstance(RestoreDbInstance {
                target_identifier: target.unwrap_or_else(|| default_target(&restore_id)).to_ascii_lowercase(),
                restore_id,
                source: source.clone(),
                instance_class: class,
                subnet_group,
                drill: false,
            });
            (task, common, Some((source, kind)), pick.account()?)
        }
        Command::DbCluster { pick, pitr, target, engine, subnet_group, common } => {
            let kind = ArtifactKind::RdsClusterSnapshot;
            let source = pick.source_at(kind, &region, pitr.point()?);
            let restore_id = common.restore_id.clone().unwrap_or_else(new_restore_id);
            let task = Task::RestoreDbCluster(RestoreDbCluster {
                target_identifier: target.unwrap_or_else(|| default_target(&restore_id)).to_ascii_lowercase(),
                restore_id,
                source: source.clone(),
                engine,
                subnet_group,
                drill: false,
            });
            (task, common, Some((source, kind)), pick.account()?)
        }
        Command::S3 {
            backup_bucket,
            source_bucket,
            prefix,
            as_of,
            target_bucket,
            target_prefix,
            from_region,
            common,
        } => {
            let as_of = match as_of.as_deref().map(DateTime::parse_from_rfc3339).transpose() {
                Ok(as_of) => as_of.map(|t| t.with_timezone(&Utc)),
                Err(err) => {
                    return Err(backup_core::exit::UsageError::new(format!(
                        "--as-of: {err} (expected RFC 3339, e.g. 2026-11-20T02:00:00Z)"
                    ))
                    .into())
                }
            };
            let restore_id = common.restore_id.clone().unwrap_or_else(new_restore_id);
            let task = Task::RestoreObjects(RestoreObjects {
                restore_id,
                backup_bucket,
                region: from_region.unwrap_or_else(|| region.clone()),
                source_bucket,
                prefix,
                as_of,
                target_bucket,
                target_prefix,
                drill: false,
            });
            (task, common, None, None)
        }
    };
    let restore_id = match &task {
        Task::RestoreVolume(p) => p.restore_id.clone(),
        Task::RestoreInstance(p) => p.restore_id.clone(),
        Task::RestoreDbInstance(p) => p.restore_id.clone(),
        Task::RestoreDbCluster(p) => p.restore_id.clone(),
        Task::RestoreObjects(p) => p.restore_id.clone(),
        _ => unreachable!("only restore tasks are built above"),
    };
    let task_id = task.id_in(account.as_ref());
    let store = fleet.store()?;
    let previous = store.get(&task_id).await?;
    let already = previous.as_ref().is_some_and(|r| r.state.is_terminal());
    if already {
        if !common.json {
            eprintln!("restore {restore_id} already ran (task {task_id}); not starting it again");
        }
    } else {
        if previous.is_none() {
            if let Some(problem) = match &source {
                Some((source, kind)) => preflight(fleet, account.as_ref(), source, *kind, common.json).await?,
                None => None,
            } {
                eprintln!("error: {problem}");
                return Ok(1);
            }
        }
        let run_id = RunId::new(format!("restore@{restore_id}"));
        let command = format!("backupctl restore {}", task.kind());
        let envelope =
            Envelope::new(task.clone(), run_id.clone(), Origin::Operator { command: command.clone() }, Utc::now())
                .in_account(account.clone());
        store
            .put_run(&RunRecord {
                run_id,
                plan: None,
                window: None,
                origin: command,
                created_at: Utc::now(),
                expected: BTreeMap::from([(task.kind().as_str().to_owned(), 1)]),
            })
            .await?;
        let message = OutgoingMessage { id: "0".into(), body: envelope.encode()?, ..Default::default() };
        fleet.task_queue()?.send(&message).await.context("sending the restore task")?;
        if !common.json {
            eprintln!("restore {restore_id} started: task {task_id} ({} of {})", task.kind(), task.resource());
        }
    }
    if !common.wait {
        let record = store.get(&task_id).await?;
        if common.json {
            output::json(&json!({
                "restore_id": restore_id,
                "task_id": task_id,
                "kind": task.kind(),
                "account": account.as_ref().map(|a| a.account_id.as_str()),
                "task": task,
                "state": record.as_ref().map(|r| r.state),
                "result": record.as_ref().and_then(|r| r.result.clone()),
            }))?;
        } else {
            outln!("{task_id}")?;
            eprintln!("follow it with: backupctl tasks show {task_id}");
        }
        return Ok(if record.is_some_and(|r| matches!(r.state, TaskState::Failed | TaskState::Dead)) { 1 } else { 0 });
    }

    let started = Instant::now();
    let deadline = started + Duration::from_secs(common.timeout);
    let mut last_seen = String::new();
    let record = loop {
        let record = store.get(&task_id).await?;
        if let Some(record) = &record {
            let progress = format!(
                "{} {}{}",
                record.state,
                record.checkpoint.as_ref().map(|c| c.to_string()).unwrap_or_default(),
                record.last_error.as_ref().map(|e| format!(" (last error: {e})")).unwrap_or_default()
            );
            if progress != last_seen && !common.json {
                eprintln!("[{:>5.0}s] {progress}", started.elapsed().as_secs_f64());
                last_seen = progress;
            }
            if record.state.is_terminal() {
                break Some(record.clone());
            }
        }
        if Instant::now() >= deadline {
            break record;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    };
    let state = record.as_ref().map(|r| r.state);
    let succeeded = state == Some(TaskState::Succeeded);
    if common.json {
        output::json(&json!({
            "restore_id": restore_id,
            "task_id": task_id,
            "kind": task.kind(),
            "account": account.as_ref().map(|a| a.account_id.as_str()),
            "task": task,
            "state": state,
            "finished": state.is_some_and(TaskState::is_terminal),
            "seconds": started.elapsed().as_secs_f64(),
            "result": record.as_ref().and_then(|r| r.result.clone()),
            "last_error": record.as_ref().and_then(|r| r.last_error.clone()),
        }))?;
    } else if succeeded {
        let result = record.as_ref().and_then(|r| r.result.clone()).unwrap_or_default();
        outln!("{}", serde_json::to_string_pretty(&result)?)?;
    } else {
        eprintln!(
            "restore {restore_id} {}: {}",
            state.map_or("was not picked up".to_owned(), |s| if s.is_terminal() {
                format!("ended {s}")
            } else {
                format!("is still {s} after {}s", common.timeout)
            }),
            record.as_ref().and_then(|r| r.last_error.clone()).unwrap_or_default()
        );
    }
    Ok(if succeeded { 0 } else { 1 })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_targets_are_valid_rds_identifiers() {
        let id = default_target("r-20261120t020000-DEADBEEF");
        assert_eq!(id, "restored-r-20261120t020000-deadbeef");
        let long = default_target(&"x_".repeat(60));
        assert!(long.len() <= 63 && !long.ends_with('-') && !long.contains("--"));
    }
}
