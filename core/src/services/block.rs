//! EC2 / EBS: volumes, instances, snapshots and AMIs.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::artifacts::{ArtifactStatus, Tags};
use crate::error::AwsError;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SnapshotInfo {
    pub id: String,
    pub region: String,
    pub volume_id: Option<String>,
    pub status: ArtifactStatus,
    pub size_gib: Option<i32>,
    pub encrypted: bool,
    pub kms_key: Option<String>,
    pub tags: Tags,
    pub created_at: Option<DateTime<Utc>>,
    pub description: Option<String>,
    /// `standard` or `archive` (EBS Snapshots Archive); `None` when AWS does not say.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage_tier: Option<String>,
    /// Set while an archived snapshot is temporarily restored to the standard tier.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restore_expiry: Option<DateTime<Utc>>,
}

impl SnapshotInfo {
    /// In the archive tier (whether or not a temporary restore makes it usable now).
    pub fn is_archived(&self) -> bool {
        self.storage_tier.as_deref() == Some("archive")
    }

    /// Archived and not temporarily restored at `now`: no volume can be made from it. AWS shows a
    /// temporarily restored snapshot in the standard tier with a restore expiry; some emulators
    /// keep the archive tier and set the expiry, so the expiry alone also counts as restored.
    pub fn needs_restore_from_archive(&self, now: DateTime<Utc>) -> bool {
        self.is_archived() && self.restore_expiry.is_none_or(|until| until <= now)
    }
}

/// DescribeSnapshotTierStatus for one snapshot: where its last tiering operation stands.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SnapshotTierStatus {
    pub storage_tier: Option<String>,
    /// e.g. `archival-in-progress`, `archival-completed`, `temporary-restore-in-progress`.
    pub last_operation: Option<String>,
    pub progress: Option<i32>,
    pub archival_complete_time: Option<DateTime<Utc>>,
    pub restore_expiry: Option<DateTime<Utc>>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ImageInfo {
    pub id: String,
    pub region: String,
    pub name: Option<String>,
    pub status: ArtifactStatus,
    /// Snapshots behind the image's block devices.
    pub snapshot_ids: Vec<String>,
    pub tags: Tags,
    pub created_at: Option<DateTime<Utc>>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct VolumeInfo {
    pub id: String,
    pub region: String,
    pub size_gib: i32,
    pub encrypted: bool,
    pub availability_zone: Option<String>,
    pub volume_type: Option<String>,
    pub state: Option<String>,
    pub tags: Tags,
    pub attached_to: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct InstanceInfo {
    pub id: String,
    pub region: String,
    pub state: Option<String>,
    pub instance_type: Option<String>,
    pub availability_zone: Option<String>,
    pub subnet_id: Option<String>,
    pub volume_ids: Vec<String>,
    pub root_volume_id: Option<String>,
    pub tags: Tags,
}

/// A tag filter for discovery: `key` with one of `values` (empty: any value).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TagFilter {
    pub key: String,
    pub values: Vec<String>,
}

/// Parameters of a volume restore.
#[derive(Clone, Debug, PartialEq)]
pub struct NewVolume {
    pub snapshot_id: String,
    pub availability_zone: String,
    pub volume_type: Option<String>,
    pub kms_key: Option<String>,
    pub tags: Tags,
    /// Idempotency token: the same token never creates a second volume.
    pub client_token: String,
}

/// Parameters of an instance restore from an AMI.
#[derive(Clone, Debug, PartialEq)]
pub struct NewInstance {
    pub image_id: String,
    pub instance_type: String,
    pub subnet_id: Option<String>,
    pub tags: Tags,
    pub client_token: String,
}

#[async_trait]
pub trait BlockStorage: Send + Sync {
    async fn volume(&self, region: &str, volume_id: &str) -> Result<Option<VolumeInfo>, AwsError>;
    async fn instance(&self, region: &str, instance_id: &str) -> Result<Option<InstanceInfo>, AwsError>;
    /// Volumes matching every filter (paginated to the end).
    async fn list_volumes(&self, region: &str, filters: &[TagFilter]) -> Result<Vec<VolumeInfo>, AwsError>;
    async fn list_instances(&self, region: &str, filters: &[TagFilter]) -> Result<Vec<InstanceInfo>, AwsError>;

    /// Snapshots owned by this account carrying tag `key = value` (the task id, the source).
    async fn snapshots_tagged(&self, region: &str, key: &str, value: &str) -> Result<Vec<SnapshotInfo>, AwsError>;
    async fn snapshots(&self, region: &str, ids: &[String]) -> Result<Vec<SnapshotInfo>, AwsError>;
    async fn create_snapshot(
        &self,
        region: &str,
        volume_id: &str,
        description: &str,
        tags: &Tags,
    ) -> Result<SnapshotInfo, AwsError>;
    /// A crash-consistent snapshot set of all volumes of an instance (CreateSnapshots).
    async fn create_snapshot_set(
        &self,
        region: &str,
        instance_id: &str,
        exclude_boot_volume: bool,
        description: &str,
        tags: &Tags,
    ) -> Result<Vec<SnapshotInfo>, AwsError>;
    /// Copies a snapshot into `dest_region`, encrypted (with `kms_key`, or the default EBS key).
    async fn copy_snapshot(
        &self,
        source_region: &str,
        snapshot_id: &str,
        dest_region: &str,
        kms_key: Option<&str>,
        description: &str,
        tags: &Tags,
    ) -> Result<String, AwsError>;
    async fn delete_snapshot(&self, region: &str, snapshot_id: &str) -> Result<(), AwsError>;
    /// Lets `account` create volumes from (and so copy) a snapshot, or takes that away
    /// (ModifySnapshotAttribute createVolumePermission). Idempotent both ways.
    async fn share_snapshot(
        &self,
        region: &str,
        snapshot_id: &str,
        account: &str,
        shared: bool,
    ) -> Result<(), AwsError>;
    /// Starts moving a snapshot to the archive tier (ModifySnapshotTier).
    async fn archive_snapshot(&self, region: &str, snapshot_id: &str) -> Result<(), AwsError>;
    /// Starts a temporary restore of an archived snapshot to the standard tier for `days`.
    async fn restore_archived_snapshot(&self, region: &str, snapshot_id: &str, days: i32) -> Result<(), AwsError>;
    async fn snapshot_tier_status(
        &self,
        region: &str,
        snapshot_id: &str,
    ) -> Result<Option<SnapshotTierStatus>, AwsError>;

    async fn images_tagged(&self, region: &str, key: &str, value: &str) -> Result<Vec<ImageInfo>, AwsError>;
    async fn images(&self, region: &str, ids: &[String]) -> Result<Vec<ImageInfo>, AwsError>;
    /// Images of this account named `name` (AMI names are unique per account and region).
    async fn images_named(&self, region: &str, name: &str) -> Result<Vec<ImageInfo>, AwsError>;
    /// Starts an AMI; tags go on the image (its snapshots are tagged once they exist).
    async fn create_image(
        &self,
        region: &str,
        instance_id: &str,
        name: &str,
        no_reboot: bool,
        tags: &Tags,
    ) -> Result<String, AwsError>;
    async fn copy_image(
        &self,
        source_region: &str,
        image_id: &str,
        dest_region: &str,
        name: &str,
        kms_key: Option<&str>,
        tags: &Tags,
        client_token: &str,
    ) -> Result<String, AwsError>;
    async fn deregister_image(&self, region: &str, image_id: &str) -> Result<(), AwsError>;
    async fn tag(&self, region: &str, resource_ids: &[String], tags: &Tags) -> Result<(), AwsError>;

    async fn create_volume(&self, region: &str, volume: &NewVolume) -> Result<VolumeInfo, AwsError>;
    async fn delete_volume(&self, region: &str, volume_id: &str) -> Result<(), AwsError>;
    async fn run_instance(&self, region: &str, instance: &NewInstance) -> Result<InstanceInfo, AwsError>;
    async fn stop_instance(&self, region: &str, instance_id: &str) -> Result<(), AwsError>;
    async fn terminate_instance(&self, region: &str, instance_id: &str) -> Result<(), AwsError>;
    async fn instances_tagged(&self, region: &str, key: &str, value: &str) -> Result<Vec<InstanceInfo>, AwsError>;
    async fn volumes_tagged(&self, region: &str, key: &str, value: &str) -> Result<Vec<VolumeInfo>, AwsError>;
    /// The availability zone of a subnet; `None` when it does not exist.
    async fn subnet_zone(&self, region: &str, subnet_id: &str) -> Result<Option<String>, AwsError>;
}
