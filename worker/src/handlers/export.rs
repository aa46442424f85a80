//! Snapshot exports (`rds.export_snapshot`): a completed RDS or Aurora snapshot exported to the
//! backup bucket as Parquet by RDS itself (StartExportTask), under the plan's KMS key, written by
//! the plan's IAM role. The task parks while RDS exports (hours for large databases) and catalogs
//! the export as its own artifact with its own expiry (`export.retain_days`): the long-term,
//! engine-independent copy of the data. Expired exports are deleted by the resource's prune.
//!
//! The export's identifier derives from the task id, so a re-run finds the export it started;
//! one under that name for another snapshot is refused, never adopted.

use async_trait::async_trait;
use backup_core::artifacts::ArtifactStatus;
use backup_core::services::database::NewExport;
use backup_core::TaskError;
use backup_schemas::{ArtifactKind, ArtifactRef, ExportSnapshot, TaskId};
use serde_json::json;

use crate::handler::{Handler, HandlerResult, Outcome, TaskContext};
use crate::handlers::services::{follow_ups, record, Services};

const GIB: u64 = 1024 * 1024 * 1024;
/// Where exports go in the backup bucket unless the plan says otherwise. S3 bucket names cannot
/// start with `_`, so this cannot collide with a source bucket's backups.
pub const EXPORT_PREFIX: &str = "_rds-exports";

/// `bf-export-<task id digits>`: letters, digits and hyphens, starting with a letter, at most 60.
pub fn export_identifier(task_id: &TaskId) -> String {
    let digits = task_id.as_str().trim_start_matches("t-");
    format!("bf-export-{digits}")
}

/// The S3 prefix RDS writes an export under: `<prefix>/<identifier>/`.
pub fn export_location(prefix: Option<&str>, identifier: &str) -> String {
    format!("{}/{identifier}/", prefix.unwrap_or(EXPORT_PREFIX).trim_end_matches('/'))
}

#[async_trait]
impl Handler<ExportSnapshot> for Services {
    async fn run(&self, p: &ExportSnapshot, ctx: &TaskContext) -> HandlerResult {
        let identifier = export_identifier(&ctx.task_id);
        let prefix = p.export.prefix.clone().unwrap_or_else(|| EXPORT_PREFIX.to_owned());
        let export = match self.databases.export(&p.region, &identifier).await? {
            Some(existing) => existing,
            None => {
                if let Some(outcome) = self.park_if_not_visible_yet(ctx) {
                    return outcome;
                }
                ctx.may_start("the snapshot export")?;
                let request = NewExport {
                    identifier: identifier.clone(),
                    source_arn: p.snapshot_arn.clone(),
                    bucket: p.export.bucket.clone(),
                    prefix: Some(prefix.clone()),
                    iam_role_arn: p.export.iam_role_arn.clone(),
                    kms_key: p.export.kms_key.clone(),
                };
                match self.databases.start_export(&p.region, &request).await {
                    Ok(started) => started,
                    // Our own earlier attempt, its reply lost: look again after the window.
                    Err(err) if err.code.contains("AlreadyExists") => {
                        return self.pending_started(
                            ctx,
                            &identifier,
                            json!({ "export": identifier, "status": "starting" }),
                        )
                    }
                    Err(err) => return Err(err.into()),
                }
            }
        };
        if export.source_arn != p.snapshot_arn {
            return Err(TaskError::permanent(format!(
                "export {identifier} in {} exports {}, not {}; refusing to adopt it",
                p.region, export.source_arn, p.snapshot_arn
            )));
        }
        match &export.status {
            ArtifactStatus::Pending { progress } => {
                return self.pending_started(
                    ctx,
                    &identifier,
                    json!({ "export": identifier, "region": p.region, "progress": progress }),
                )
            }
            ArtifactStatus::Failed { reason } => {
                return Err(TaskError::permanent(format!("export {identifier} of {} failed: {reason}", p.snapshot_arn)))
            }
            ArtifactStatus::Complete => {}
        }
        let artifact =
            ArtifactRef { kind: ArtifactKind::SnapshotExport, region: p.region.clone(), id: identifier.clone() };
        let expires_at = p
            .export
            .retain_days
            .map(|days| p.ctx.window + chrono::Duration::days(i64::from(days)))
            .or(p.ctx.expires_at);
        let mut entry = record(artifact.clone(), &p.source_resource, &p.region, &p.ctx, &ctx.task_id, None, expires_at);
        entry.size_bytes = export.total_extracted_gib.map(|g| g.max(0) as u64 * GIB);
        // RDS encrypts every export with the KMS key it was given.
        entry.encrypted = Some(true);
        let location = export_location(Some(&prefix), &identifier);
        let details = [
            ("bucket", Some(p.export.bucket.clone())),
            ("prefix", Some(location.clone())),
            ("source_arn", Some(p.snapshot_arn.clone())),
            ("kms_key", Some(p.export.kms_key.clone())),
            ("format", Some("parquet".to_owned())),
        ];
        entry.details.extend(details.into_iter().filter_map(|(k, v)| Some((k.to_owned(), v?))));
        self.catalog.put(&entry).await?;
        tracing::info!(export = %identifier, snapshot = %p.snapshot_arn, location = %location, "snapshot export complete");
        let children = follow_ups(&artifact, &p.source_resource, &p.ctx, |_| None);
        Ok(Outcome::done(json!({ "export": identifier, "bucket": p.export.bucket, "prefix": location }))
            .with_children(children))
    }
}
