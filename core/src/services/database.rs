//! RDS: DB instances, Aurora clusters and their manual snapshots. One port for both flavours: a
//! `cluster` flag picks the DB-cluster variant of each call, because RDS keeps two parallel APIs
//! (`DescribeDBSnapshots` / `DescribeDBClusterSnapshots`, ...) with the same shape.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::artifacts::{ArtifactStatus, Tags};
use crate::error::AwsError;

/// A DB instance snapshot (`cluster == false`) or a DB cluster snapshot (`cluster == true`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DbSnapshotInfo {
    pub identifier: String,
    pub arn: String,
    pub region: String,
    pub cluster: bool,
    /// The DB instance or cluster the snapshot was taken of.
    pub source_id: String,
    pub status: ArtifactStatus,
    pub encrypted: bool,
    pub kms_key: Option<String>,
    pub allocated_gib: Option<i32>,
    pub engine: Option<String>,
    /// `manual`, `automated`, `shared`, `public`, `awsbackup`.
    pub snapshot_type: Option<String>,
    pub tags: Tags,
    pub created_at: Option<DateTime<Utc>>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DbInstanceInfo {
    pub identifier: String,
    pub arn: String,
    pub region: String,
    /// `available`, `creating`, `backing-up`, `stopped`, ...
    pub status: Option<String>,
    pub engine: Option<String>,
    pub class: Option<String>,
    /// The Aurora cluster this instance belongs to: such instances are backed up by cluster
    /// snapshots only (CreateDBSnapshot refuses them).
    pub cluster_id: Option<String>,
    pub allocated_gib: Option<i32>,
    /// Days of automated backups (point-in-time restore); 0 means they are off.
    pub backup_retention_days: Option<i32>,
    pub tags: Tags,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DbClusterInfo {
    pub identifier: String,
    pub arn: String,
    pub region: String,
    pub status: Option<String>,
    pub engine: Option<String>,
    /// Identifiers of the member DB instances.
    pub members: Vec<String>,
    pub allocated_gib: Option<i32>,
    /// Days of automated backups (point-in-time restore).
    pub backup_retention_days: Option<i32>,
    pub tags: Tags,
}

/// Where a database can be restored to from its continuous (automated) backups.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RestoreWindow {
    /// Days of automated backups; 0 means they are off and nothing can be restored to a time.
    pub retention_days: i32,
    pub earliest: Option<DateTime<Utc>>,
    pub latest: Option<DateTime<Utc>>,
}

/// Maps an RDS snapshot status string to the fleet's lifecycle status. RDS reports progress as a
/// separate integer percentage, passed in `percent`.
pub fn snapshot_status(status: Option<&str>, percent: Option<i32>) -> ArtifactStatus {
    match status.unwrap_or_default() {
        "available" => ArtifactStatus::Complete,
        s if s == "failed" || s == "error" || s.starts_with("incompatible") => {
            ArtifactStatus::Failed { reason: format!("snapshot status is {s}") }
        }
        _ => ArtifactStatus::Pending { progress: percent.map(|p| format!("{p}%")) },
    }
}

/// A DB instance's automated backups replicated into another region (cross-Region automated
/// backup replication): what a point-in-time restore in that region reads from.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ReplicatedBackups {
    /// `DBInstanceAutomatedBackupsArn`, in the replica's region.
    pub arn: String,
    /// The source DB instance's ARN.
    pub source_arn: Option<String>,
    /// `replicating`, `active`, `pending`, ...
    pub status: Option<String>,
    pub window: RestoreWindow,
}

/// What a DB instance's point-in-time restore reads from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PitrSource<'a> {
    /// The instance itself, in the restore's region.
    Instance(&'a str),
    /// Its automated backups replicated into the restore's region (by their ARN).
    ReplicatedBackups(&'a str),
}

/// An export of a snapshot to S3 (StartExportTask), as DescribeExportTasks reports it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ExportInfo {
    pub identifier: String,
    pub source_arn: String,
    pub bucket: String,
    pub prefix: Option<String>,
    pub status: ArtifactStatus,
    pub total_extracted_gib: Option<i32>,
    pub kms_key: Option<String>,
}

/// What StartExportTask needs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewExport {
    pub identifier: String,
    pub source_arn: String,
    pub bucket: String,
    pub prefix: Option<String>,
    pub iam_role_arn: String,
    pub kms_key: String,
}

/// Maps an export task's status (`STARTING`, `IN_PROGRESS`, `COMPLETE`, `CANCELING`, `CANCELED`,
/// `FAILED`, any case) to the fleet's lifecycle status.
pub fn export_status(status: Option<&str>, percent: Option<i32>, failure: Option<&str>) -> ArtifactStatus {
    match status.unwrap_or_default().to_ascii_uppercase().as_str() {
        "COMPLETE" => ArtifactStatus::Complete,
        s @ ("FAILED" | "CANCELED" | "CANCELLED" | "CANCELING") => ArtifactStatus::Failed {
            reason: match failure {
                Some(cause) => format!("export {}: {cause}", s.to_ascii_lowercase()),
                None => format!("export {}", s.to_ascii_lowercase()),
            },
        },
        _ => ArtifactStatus::Pending { progress: percent.map(|p| format!("{p}%")) },
    }
}

#[async_trait]
pub trait DatabaseSnapshots: Send + Sync {
    /// A DB instance by identifier; `None` when it does not exist.
    async fn instance(&self, region: &str, id: &str) -> Result<Option<DbInstanceInfo>, AwsError>;
    /// A DB cluster by identifier; `None` when it does not exist.
    async fn cluster(&self, region: &str, id: &str) -> Result<Option<DbClusterInfo>, AwsError>;
    /// Every DB instance of the region (paginated to the end), with tags.
    async fn list_instances(&self, region: &str) -> Result<Vec<DbInstanceInfo>, AwsError>;
    /// Every DB cluster of the region (paginated to the end), with tags.
    async fn list_clusters(&self, region: &str) -> Result<Vec<DbClusterInfo>, AwsError>;

    /// A snapshot by identifier; `None` when it does not exist.
    async fn snapshot(&self, region: &str, cluster: bool, identifier: &str)
        -> Result<Option<DbSnapshotInfo>, AwsError>;
    /// Manual snapshots of one DB instance / cluster, with tags.
    async fn snapshots_of(&self, region: &str, cluster: bool, source_id: &str)
        -> Result<Vec<DbSnapshotInfo>, AwsError>;
    /// Manual snapshots carrying tag `key = value` (RDS cannot filter by tag: filtered client-side).
    async fn snapshots_tagged(
        &self,
        region: &str,
        cluster: bool,
        key: &str,
        value: &str,
    ) -> Result<Vec<DbSnapshotInfo>, AwsError>;
    /// Starts a manual snapshot of `source_id` named `identifier`, tagged with `tags`.
    async fn create_snapshot(
        &self,
        region: &str,
        cluster: bool,
        source_id: &str,
        identifier: &str,
        tags: &Tags,
    ) -> Result<DbSnapshotInfo, AwsError>;
    /// Copies a snapshot (by ARN) from `source_region` into `dest_region` as `target_identifier`,
    /// encrypted with `kms_key` when given; the copy carries exactly `tags` (source tags are not
    /// copied).
    #[allow(clippy::too_many_arguments)]
    async fn copy_snapshot(
        &self,
        cluster: bool,
        source_region: &str,
        source_arn: &str,
        dest_region: &str,
        target_identifier: &str,
        kms_key: Option<&str>,
        tags: &Tags,
    ) -> Result<DbSnapshotInfo, AwsError>;
    /// Deletes a snapshot; one that does not exist counts as deleted.
    async fn delete_snapshot(&self, region: &str, cluster: bool, identifier: &str) -> Result<(), AwsError>;
    /// Lets `account` restore from (and so copy) a manual snapshot, or takes that away (the
    /// `restore` attribute). Idempotent both ways.
    async fn share_snapshot(
        &self,
        region: &str,
        cluster: bool,
        identifier: &str,
        account: &str,
        shared: bool,
    ) -> Result<(), AwsError>;

    /// Restores a DB instance from an instance snapshot.
    async fn restore_instance(
        &self,
        region: &str,
        snapshot_identifier: &str,
        target_id: &str,
        class: Option<&str>,
        subnet_group: Option<&str>,
        tags: &Tags,
    ) -> Result<DbInstanceInfo, AwsError>;
    /// The point-in-time restore window of a DB instance or cluster: `None` when it does not
    /// exist. Restoring needs automated backups on (`retention_days > 0`).
    async fn restore_window(&self, region: &str, cluster: bool, id: &str) -> Result<Option<RestoreWindow>, AwsError>;
    /// The automated backups of DB instance `source_id` (of another region) replicated into
    /// `region`; `None` when there are none.
    async fn replicated_backups(&self, region: &str, source_id: &str) -> Result<Option<ReplicatedBackups>, AwsError>;
    /// Restores a DB instance as it was at `to` (`None`: the latest restorable time).
    #[allow(clippy::too_many_arguments)]
    async fn restore_instance_to_time(
        &self,
        region: &str,
        source: PitrSource<'_>,
        target_id: &str,
        to: Option<DateTime<Utc>>,
        class: Option<&str>,
        subnet_group: Option<&str>,
        tags: &Tags,
    ) -> Result<DbInstanceInfo, AwsError>;
    /// Restores a DB cluster (without instances) as it was at `to` (`None`: the latest).
    async fn restore_cluster_to_time(
        &self,
        region: &str,
        source_id: &str,
        target_id: &str,
        to: Option<DateTime<Utc>>,
        subnet_group: Option<&str>,
        tags: &Tags,
    ) -> Result<DbClusterInfo, AwsError>;
    /// Restores a DB cluster (without instances) from a cluster snapshot.
    async fn restore_cluster(
        &self,
        region: &str,
        snapshot_identifier: &str,
        target_id: &str,
        engine: &str,
        subnet_group: Option<&str>,
        tags: &Tags,
    ) -> Result<DbClusterInfo, AwsError>;
    /// Starts exporting a snapshot to S3.
    async fn start_export(&self, region: &str, export: &NewExport) -> Result<ExportInfo, AwsError>;
    /// An export task by identifier; `None` when there is none.
    async fn export(&self, region: &str, identifier: &str) -> Result<Option<ExportInfo>, AwsError>;
    /// Deletes a DB instance without a final snapshot; one that does not exist counts as deleted.
    async fn delete_instance(&self, region: &str, id: &str) -> Result<(), AwsError>;
    /// Deletes a DB cluster without a final snapshot; one that does not exist counts as deleted.
    async fn delete_cluster(&self, region: &str, id: &str) -> Result<(), AwsError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_snapshot_statuses() {
        assert_eq!(snapshot_status(Some("available"), Some(100)), ArtifactStatus::Complete);
        assert_eq!(
            snapshot_status(Some("creating"), Some(40)),
            ArtifactStatus::Pending { progress: Some("40%".into()) }
        );
        assert_eq!(snapshot_status(Some("copying"), None), ArtifactStatus::Pending { progress: None });
        assert!(matches!(snapshot_status(Some("failed"), None), ArtifactStatus::Failed { .. }));
        assert!(matches!(snapshot_status(Some("incompatible-restore"), None), ArtifactStatus::Failed { .. }));
        assert!(matches!(snapshot_status(Some("error"), None), ArtifactStatus::Failed { .. }));
    }
}
