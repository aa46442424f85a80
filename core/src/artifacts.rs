//! What the fleet knows about any artifact it makes: its lifecycle status as AWS reports it, the
//! tags every artifact carries, and the catalog record kept for it.

use backup_schemas::{tags, ArchiveEstimate, ArtifactKind, ArtifactRef, BackupContext, TaskId};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

pub type Tags = BTreeMap<String, String>;

/// Where an artifact is in its life, normalised across EBS, AMI, RDS and S3.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum ArtifactStatus {
    /// Being created or copied (EBS `pending`, AMI `pending`, RDS `creating`/`copying`).
    Pending { progress: Option<String> },
    /// Usable (EBS `completed`, AMI `available`, RDS `available`).
    Complete,
    /// AWS gave up (EBS `error`, AMI `failed`, RDS `failed`/`incompatible-*`).
    Failed { reason: String },
}

impl ArtifactStatus {
    pub fn is_complete(&self) -> bool {
        matches!(self, ArtifactStatus::Complete)
    }
}

/// The tags every artifact made for `task_id` carries: the fleet marker, the task id (the
/// idempotency key a retry searches for), plan, source, tier and expiry.
pub fn artifact_tags(task_id: &TaskId, ctx: &BackupContext, source: &str, expires_at: Option<DateTime<Utc>>) -> Tags {
    let mut tags = Tags::from([
        (tags::MANAGED.to_owned(), "true".to_owned()),
        (tags::TASK_ID.to_owned(), task_id.to_string()),
        (tags::PLAN.to_owned(), ctx.plan.clone()),
        (tags::SOURCE.to_owned(), source.to_owned()),
        (tags::TIER.to_owned(), ctx.tier.as_str().to_owned()),
    ]);
    if let Some(expires_at) = expires_at.or(ctx.expires_at) {
        tags.insert(tags::EXPIRES_AT.to_owned(), expires_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
    }
    tags
}

/// Whether `tags` say the fleet made this artifact.
pub fn is_managed(tags: &Tags) -> bool {
    tags.get(tags::MANAGED).is_some_and(|v| v == "true")
}

/// The result of verifying one artifact.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verification {
    pub verified_at: DateTime<Utc>,
    pub ok: bool,
    /// Each check and its outcome ("exists", "complete", "tags", "encrypted", "size", "checksum").
    pub checks: BTreeMap<String, String>,
}

/// One catalog record per artifact (source backups and their copies alike).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CatalogRecord {
    pub artifact: ArtifactRef,
    /// The backed-up resource (volume id, instance id, DB identifier, bucket).
    pub resource: String,
    pub resource_region: String,
    pub plan: String,
    pub tier: String,
    pub task_id: TaskId,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub size_bytes: Option<u64>,
    pub encrypted: Option<bool>,
    /// For a copy: the artifact it was copied from.
    pub copy_of: Option<ArtifactRef>,
    /// For a source artifact: its cross-region copies.
    #[serde(default)]
    pub copies: Vec<ArtifactRef>,
    /// Extra identifiers: an AMI's snapshots, an S3 object's version id and checksum.
    #[serde(default)]
    pub details: BTreeMap<String, String>,
    pub verification: Option<Verification>,
    pub deleted_at: Option<DateTime<Utc>>,
    /// The archive-tier decision for an EBS snapshot, once one was made (either way).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub archive: Option<ArchiveRecord>,
    /// The account the artifact lives in; absent for the fleet's own account.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
}

/// What the fleet decided about moving one snapshot to the EBS archive tier, and why.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ArchiveRecord {
    pub decided_at: DateTime<Utc>,
    pub verdict: ArchiveVerdictKind,
    pub estimate: ArchiveEstimate,
    /// When ModifySnapshotTier was accepted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requested_at: Option<DateTime<Utc>>,
    /// When the snapshot was seen in the archive tier: its 90-day minimum runs from here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub archived_at: Option<DateTime<Utc>>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ArchiveVerdictKind {
    Archive,
    Standard,
}

impl CatalogRecord {
    pub fn kind(&self) -> ArtifactKind {
        self.artifact.kind
    }
}

/// Filters for listing the catalog.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CatalogQuery {
    pub resource: Option<String>,
    pub plan: Option<String>,
    pub include_deleted: bool,
}
