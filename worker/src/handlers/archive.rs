//! `ebs.archive_snapshot`: moves one EBS snapshot to the archive tier, as a prune decided
//! (`backup_core::archive`), and records the archival in the catalog.
//!
//! The task re-checks what makes archiving safe right before it acts: the snapshot exists, the
//! fleet made it (managed tag and catalog record), it is complete, and no AMI uses it (AWS
//! refuses to archive those). Archiving takes hours on AWS: the task parks until
//! DescribeSnapshotTierStatus says the archival completed, then records `archived_at`, from which
//! retention keeps the snapshot for the 90-day minimum the archive tier bills anyway. A retry
//! after a crash finds the archival in progress (or done) and never asks twice.

use async_trait::async_trait;
use backup_core::archive::MINIMUM_ARCHIVE_DAYS;
use backup_core::artifacts::{is_managed, ArchiveRecord, ArchiveVerdictKind, ArtifactStatus};
use backup_core::TaskError;
use backup_schemas::{tags, ArchiveSnapshot, ArtifactKind, ArtifactRef};
use chrono::Utc;
use serde_json::json;

use crate::handler::{Handler, HandlerResult, Outcome, TaskContext};
use crate::handlers::services::Services;

#[async_trait]
impl Handler<ArchiveSnapshot> for Services {
    async fn run(&self, p: &ArchiveSnapshot, ctx: &TaskContext) -> HandlerResult {
        let artifact =
            ArtifactRef { kind: ArtifactKind::EbsSnapshot, region: p.region.clone(), id: p.snapshot_id.clone() };
        let done = |outcome: &str, detail: serde_json::Value| {
            Ok(Outcome::done(
                json!({ "snapshot_id": p.snapshot_id, "region": p.region, "outcome": outcome, "detail": detail }),
            ))
        };
        let Some(record) = self.catalog.get(&artifact).await? else {
            return Err(TaskError::permanent(format!(
                "snapshot {} is not in the catalog: the fleet archives only its own backups",
                p.snapshot_id
            )));
        };
        let listed = self.block.snapshots(&p.region, std::slice::from_ref(&p.snapshot_id)).await?;
        let Some(snapshot) = listed.into_iter().next() else {
            // A snapshot this new may just not be visible yet (EC2 is eventually consistent).
            let window = chrono::Duration::from_std(self.timing.consistency_window).unwrap_or_default();
            if Utc::now() - record.created_at < window {
                return Ok(Outcome::Pending {
                    checkpoint: json!({ "waiting_for": "the snapshot to be visible" }),
                    recheck_after: self.timing.recheck,
                });
            }
            return done("skipped", json!("the snapshot no longer exists"));
        };
        if !is_managed(&snapshot.tags) {
            return Err(TaskError::permanent(format!("snapshot {} lacks the fleet's managed tag", p.snapshot_id)));
        }
        // A later prune may have decided otherwise meanwhile; its verdict stands.
        if record.archive.as_ref().is_some_and(|a| a.verdict == ArchiveVerdictKind::Standard) {
            return done("kept in standard", json!("a later decision keeps it in the standard tier"));
        }
        let mut decision = record.archive.clone().unwrap_or_else(|| ArchiveRecord {
            decided_at: p.as_of,
            verdict: ArchiveVerdictKind::Archive,
            estimate: p.estimate.clone(),
            requested_at: None,
            archived_at: None,
        });
        // A task that runs late (a backlog, a replay) decides again on the time left: archiving
        // what will be deleted within the 90-day minimum would cost more, not less.
        let kept_until = p.as_of + chrono::Duration::seconds((p.estimate.keep_days * 86_400.0) as i64);
        if decision.requested_at.is_none() && kept_until - Utc::now() < chrono::Duration::days(MINIMUM_ARCHIVE_DAYS) {
            decision.verdict = ArchiveVerdictKind::Standard;
            decision.estimate.reason = format!(
                "by the time it could be archived, kept only until {}: less than the {MINIMUM_ARCHIVE_DAYS}-day minimum",
                kept_until.format("%Y-%m-%d")
            );
            self.catalog.set_archive(&artifact, &decision).await?;
            return done("kept in standard", json!(decision.estimate.reason));
        }
        if let Some(image) = snapshot.tags.get(tags::IMAGE) {
            if self.image_exists(&p.region, image).await? {
                decision.verdict = ArchiveVerdictKind::Standard;
                decision.estimate.reason = format!("backs AMI {image}: AWS archives no snapshot of a registered image");
                self.catalog.set_archive(&artifact, &decision).await?;
                return done("kept in standard", json!(decision.estimate.reason));
            }
        }
        match &snapshot.status {
            ArtifactStatus::Complete => {}
            ArtifactStatus::Pending { progress } => {
                return Ok(Outcome::Pending {
                    checkpoint: json!({ "waiting_for": "the snapshot to complete", "progress": progress }),
                    recheck_after: self.timing.recheck,
                })
            }
            ArtifactStatus::Failed { reason } => {
                return Err(TaskError::permanent(format!("snapshot {} failed: {reason}", p.snapshot_id)))
            }
        }
        let status = self.block.snapshot_tier_status(&p.region, &p.snapshot_id).await?;
        let operation = status.as_ref().and_then(|s| s.last_operation.as_deref()).unwrap_or_default();
        let in_archive = snapshot.is_archived() || operation.starts_with("temporary-restore");
        if in_archive || operation == "archival-completed" {
            if decision.archived_at.is_none() {
                decision.archived_at =
                    Some(status.as_ref().and_then(|s| s.archival_complete_time).unwrap_or_else(Utc::now));
                decision.requested_at = decision.requested_at.or(decision.archived_at);
                self.catalog.set_archive(&artifact, &decision).await?;
                tracing::info!(snapshot = %p.snapshot_id, reason = %decision.estimate.reason, "snapshot archived");
            }
            return done(
                "archived",
                json!({ "archived_at": decision.archived_at, "reason": decision.estimate.reason }),
            );
        }
        match operation {
            "archival-in-progress" => {}
            "archival-failed" => {
                return Err(TaskError::permanent(format!(
                    "AWS failed to archive snapshot {} (tier status archival-failed); it stays in the standard tier",
                    p.snapshot_id
                )))
            }
            _ => {
                ctx.may_start("archiving the snapshot")?;
                self.block.archive_snapshot(&p.region, &p.snapshot_id).await?;
                decision.requested_at = Some(Utc::now());
                self.catalog.set_archive(&artifact, &decision).await?;
            }
        }
        Ok(Outcome::Pending {
            checkpoint: json!({
                "waiting_for": "the archival to complete",
                "progress": status.and_then(|s| s.progress),
                "requested_at": decision.requested_at,
            }),
            recheck_after: self.timing.tier_recheck,
        })
    }
}
