//! `BlockStorage` on EC2: snapshots, snapshot sets, AMIs, copies, restores and discovery.
//!
//! Every describe of our artifacts filters by tag: describe-by-owner is not reliable everywhere
//! (moto ignores `OwnerIds=self`), and the tag is what proves the fleet made the artifact.

use async_trait::async_trait;
use aws_sdk_ec2::types::{
    Filter, Image, ImageState, Instance, InstanceSpecification, OperationType, ResourceType, Snapshot,
    SnapshotAttributeName, SnapshotState, Tag, TagSpecification, TargetStorageTier, Volume, VolumeType,
};
use backup_core::artifacts::{ArtifactStatus, Tags};
use backup_core::ratelimit::RateLimiter;
use backup_core::services::block::{
    BlockStorage, ImageInfo, InstanceInfo, NewInstance, NewVolume, SnapshotInfo, SnapshotTierStatus, TagFilter,
    VolumeInfo,
};
use backup_core::AwsError;
use chrono::{DateTime, Utc};
use std::sync::Arc;

use crate::classify::classify;
use crate::config::AwsContext;

/// Where the per-region EC2 clients come from: the shared context, or (tests with SDK-level
/// mocks) a factory.
#[derive(Clone)]
enum Clients {
    Aws(AwsContext),
    Factory(Arc<dyn Fn(&str) -> aws_sdk_ec2::Client + Send + Sync>),
}

#[derive(Clone)]
pub struct Ec2BlockStorage {
    clients: Clients,
    limits: RateLimiter,
}

impl std::fmt::Debug for Ec2BlockStorage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ec2BlockStorage").field("limits", &self.limits).finish()
    }
}

impl Ec2BlockStorage {
    pub fn new(aws: AwsContext, limits: RateLimiter) -> Self {
        Self { clients: Clients::Aws(aws), limits }
    }

    /// Clients from `factory` (per region): for tests that mock the SDK.
    pub fn with_clients(
        factory: impl Fn(&str) -> aws_sdk_ec2::Client + Send + Sync + 'static,
        limits: RateLimiter,
    ) -> Self {
        Self { clients: Clients::Factory(Arc::new(factory)), limits }
    }

    fn client(&self, region: &str) -> aws_sdk_ec2::Client {
        match &self.clients {
            Clients::Aws(aws) => aws.clients_in(region).ec2,
            Clients::Factory(factory) => factory(region),
        }
    }
}

pub(crate) fn to_chrono(t: &aws_smithy_types::DateTime) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp(t.secs(), t.subsec_nanos())
}

/// SDK retries disabled, for calls that create something and take no idempotency token. When a
/// reply is lost after AWS acted, an SDK retry would make a second artifact; instead the error
/// reaches the fleet, whose retry first looks for the artifact tagged with the task id.
fn without_sdk_retries() -> aws_sdk_ec2::config::Builder {
    aws_sdk_ec2::config::Builder::default().retry_config(aws_config::retry::RetryConfig::disabled())
}

fn tags_of(tags: Option<&[Tag]>) -> Tags {
    tags.unwrap_or_default()
        .iter()
        .filter_map(|t| Some((t.key.clone()?, t.value.clone().unwrap_or_default())))
        .collect()
}

fn tag_spec(resource: ResourceType, tags: &Tags) -> TagSpecification {
    TagSpecification::builder()
        .resource_type(resource)
        .set_tags(Some(tags.iter().map(|(k, v)| Tag::builder().key(k).value(v).build()).collect()))
        .build()
}

fn tag_filter(key: &str, value: &str) -> Filter {
    Filter::builder().name(format!("tag:{key}")).values(value).build()
}

fn filters(tag_filters: &[TagFilter]) -> Vec<Filter> {
    tag_filters
        .iter()
        .map(|f| {
            if f.values.is_empty() {
                Filter::builder().name("tag-key").values(&f.key).build()
            } else {
                Filter::builder().name(format!("tag:{}", f.key)).set_values(Some(f.values.clone())).build()
            }
        })
        .collect()
}

fn snapshot_info(region: &str, snapshot: &Snapshot) -> SnapshotInfo {
    let status = match snapshot.state() {
        Some(SnapshotState::Completed) => ArtifactStatus::Complete,
        Some(SnapshotState::Error) => ArtifactStatus::Failed {
            reason: snapshot.state_message().unwrap_or("snapshot entered the error state").to_owned(),
        },
        _ => ArtifactStatus::Pending { progress: snapshot.progress().map(str::to_owned) },
    };
    SnapshotInfo {
        id: snapshot.snapshot_id().unwrap_or_default().to_owned(),
        region: region.to_owned(),
        volume_id: snapshot.volume_id().map(str::to_owned),
        status,
        size_gib: snapshot.volume_size(),
        encrypted: snapshot.encrypted().unwrap_or(false),
        kms_key: snapshot.kms_key_id().map(str::to_owned),
        tags: tags_of(snapshot.tags.as_deref()),
        created_at: snapshot.start_time().and_then(to_chrono),
        description: snapshot.description().map(str::to_owned),
        storage_tier: snapshot.storage_tier().map(|t| t.as_str().to_owned()),
        restore_expiry: snapshot.restore_expiry_time().and_then(to_chrono),
    }
}

fn image_info(region: &str, image: &Image) -> ImageInfo {
    let status = match image.state() {
        Some(ImageState::Available) => ArtifactStatus::Complete,
        Some(ImageState::Failed) | Some(ImageState::Error) | Some(ImageState::Invalid) => ArtifactStatus::Failed {
            reason: image.state_reason().and_then(|r| r.message()).unwrap_or("image creation failed").to_owned(),
        },
        _ => ArtifactStatus::Pending { progress: None },
    };
    ImageInfo {
        id: image.image_id().unwrap_or_default().to_owned(),
        region: region.to_owned(),
        name: image.name().map(str::to_owned),
        status,
        snapshot_ids: image
            .block_device_mappings()
            .iter()
            .filter_map(|m| m.ebs().and_then(|e| e.snapshot_id()).map(str::to_owned))
            .collect(),
        tags: tags_of(image.tags.as_deref()),
        created_at: image
            .creation_date()
            .and_then(|d| DateTime::parse_from_rfc3339(d).ok())
            .map(|d| d.with_timezone(&Utc)),
    }
}

fn volume_info(region: &str, volume: &Volume) -> VolumeInfo {
    VolumeInfo {
        id: volume.volume_id().unwrap_or_default().to_owned(),
        region: region.to_owned(),
        size_gib: volume.size().unwrap_or_default(),
        encrypted: volume.encrypted().unwrap_or(false),
        availability_zone: volume.availability_zone().map(str::to_owned),
        volume_type: volume.volume_type().map(|t| t.as_str().to_owned()),
        state: volume.state().map(|s| s.as_str().to_owned()),
        tags: tags_of(volume.tags.as_deref()),
        attached_to: volume.attachments().iter().find_map(|a| a.instance_id().map(str::to_owned)),
    }
}

fn instance_info(region: &str, instance: &Instance) -> InstanceInfo {
    let root = instance.root_device_name();
    let volumes: Vec<(Option<&str>, String)> = instance
        .block_device_mappings()
        .iter()
        .filter_map(|m| m.ebs().and_then(|e| e.volume_id()).map(|v| (m.device_name(), v.to_owned())))
        .collect();
    InstanceInfo {
        id: instance.instance_id().unwrap_or_default().to_owned(),
        region: region.to_owned(),
        state: instance.state().and_then(|s| s.name()).map(|n| n.as_str().to_owned()),
        instance_type: instance.instance_type().map(|t| t.as_str().to_owned()),
        availability_zone: instance.placement().and_then(|p| p.availability_zone()).map(str::to_owned),
        subnet_id: instance.subnet_id().map(str::to_owned),
        root_volume_id: volumes.iter().find(|(device, _)| device.is_some() && *device == root).map(|(_, v)| v.clone()),
        volume_ids: volumes.into_iter().map(|(_, v)| v).collect(),
        tags: tags_of(instance.tags.as_deref()),
    }
}

impl Ec2BlockStorage {
    async fn describe_snapshots(
        &self,
        region: &str,
        filter: Option<Filter>,
        ids: &[String],
    ) -> Result<Vec<SnapshotInfo>, AwsError> {
        let mut snapshots = Vec::new();
        let mut token = None;
        loop {
            let output = self
                .client(region)
                .describe_snapshots()
                .owner_ids("self")
                .set_filters(filter.clone().map(|f| vec![f]))
                .set_snapshot_ids(if ids.is_empty() { None } else { Some(ids.to_vec()) })
                .set_next_token(token.take())
                .send()
                .await
                .map_err(|e| classify("ec2", "DescribeSnapshots", e))?;
            snapshots.extend(output.snapshots().iter().map(|s| snapshot_info(region, s)));
            match output.next_token {
                Some(next) if !next.is_empty() => token = Some(next),
                _ => return Ok(snapshots),
            }
        }
    }

    async fn describe_images(
        &self,
        region: &str,
        filter: Option<Filter>,
        ids: &[String],
    ) -> Result<Vec<ImageInfo>, AwsError> {
        let output = self
            .client(region)
            .describe_images()
            .owners("self")
            .set_filters(filter.map(|f| vec![f]))
            .set_image_ids(if ids.is_empty() { None } else { Some(ids.to_vec()) })
            .send()
            .await
            .map_err(|e| classify("ec2", "DescribeImages", e))?;
        Ok(output.images().iter().map(|i| image_info(region, i)).collect())
    }

    async fn describe_instances(
        &self,
        region: &str,
        filters: Vec<Filter>,
        ids: Vec<String>,
    ) -> Result<Vec<InstanceInfo>, AwsError> {
        let mut instances = Vec::new();
        let mut token = None;
        loop {
            let output = self
                .client(region)
                .describe_instances()
                .set_filters(if filters.is_empty() { None } else { Some(filters.clone()) })
                .set_instance_ids(if ids.is_empty() { None } else { Some(ids.clone()) })
                .set_next_token(token.take())
                .send()
                .await
                .map_err(|e| classify("ec2", "DescribeInstances", e))?;
            for reservation in output.reservations() {
                instances.extend(reservation.instances().iter().map(|i| instance_info(region, i)));
            }
            match output.next_token {
                Some(next) if !next.is_empty() => token = Some(next),
                _ => return Ok(instances),
            }
        }
    }

    async fn describe_volumes(
        &self,
        region: &str,
        filters: Vec<Filter>,
        ids: Vec<String>,
    ) -> Result<Vec<VolumeInfo>, AwsError> {
        let mut volumes = Vec::new();
        let mut token = None;
        loop {
            let output = self
                .client(region)
                .describe_volumes()
                .set_filters(if filters.is_empty() { None } else { Some(filters.clone()) })
                .set_volume_ids(if ids.is_empty() { None } else { Some(ids.clone()) })
                .set_next_token(token.take())
                .send()
                .await
                .map_err(|e| classify("ec2", "DescribeVolumes", e))?;
            volumes.extend(output.volumes().iter().map(|v| volume_info(region, v)));
            match output.next_token {
                Some(next) if !next.is_empty() => token = Some(next),
                _ => return Ok(volumes),
            }
        }
    }
}

/// EC2 reports a missing resource as a permanent error; lookups by id turn it into `None`.
fn not_found(err: &AwsError) -> bool {
    err.code.ends_with(".NotFound") || err.code.ends_with("NotFound")
}

#[async_trait]
impl BlockStorage for Ec2BlockStorage {
    async fn subnet_zone(&self, region: &str, subnet_id: &str) -> Result<Option<String>, AwsError> {
        match self.client(region).describe_subnets().subnet_ids(subnet_id).send().await {
            Ok(output) => Ok(output.subnets().first().and_then(|s| s.availability_zone()).map(str::to_owned)),
            Err(err) => {
                let err = classify("ec2", "DescribeSubnets", err);
                if not_found(&err) {
                    Ok(None)
                } else {
                    Err(err)
                }
            }
        }
    }

    async fn volume(&self, region: &str, volume_id: &str) -> Result<Option<VolumeInfo>, AwsError> {
        match self.describe_volumes(region, vec![], vec![volume_id.to_owned()]).await {
            Ok(volumes) => Ok(volumes.into_iter().next()),
            Err(err) if not_found(&err) => Ok(None),
            Err(err) => Err(err),
        }
    }

    async fn instance(&self, region: &str, instance_id: &str) -> Result<Option<InstanceInfo>, AwsError> {
        match self.describe_instances(region, vec![], vec![instance_id.to_owned()]).await {
            Ok(instances) => Ok(instances.into_iter().next()),
            Err(err) if not_found(&err) => Ok(None),
            Err(err) => Err(err),
        }
    }

    async fn list_volumes(&self, region: &str, tag_filters: &[TagFilter]) -> Result<Vec<VolumeInfo>, AwsError> {
        self.describe_volumes(region, filters(tag_filters), vec![]).await
    }

    async fn list_instances(&self, region: &str, tag_filters: &[TagFilter]) -> Result<Vec<InstanceInfo>, AwsError> {
        let mut all = filters(tag_filters);
        // Terminated instances linger in DescribeInstances for an hour; they have nothing to back up.
        all.push(
            Filter::builder()
                .name("instance-state-name")
                .values("pending")
                .values("running")
                .values("stopping")
                .values("stopped")
                .build(),
        );
        self.describe_instances(region, all, vec![]).await
    }

    async fn snapshots_tagged(&self, region: &str, key: &str, value: &str) -> Result<Vec<SnapshotInfo>, AwsError> {
        self.describe_snapshots(region, Some(tag_filter(key, value)), &[]).await
    }

    async fn snapshots(&self, region: &str, ids: &[String]) -> Result<Vec<SnapshotInfo>, AwsError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        match self.describe_snapshots(region, None, ids).await {
            Ok(snapshots) => Ok(snapshots),
            Err(err) if not_found(&err) => Ok(Vec::new()),
            Err(err) => Err(err),
        }
    }

    async fn create_snapshot(
        &self,
        region: &str,
        volume_id: &str,
        description: &str,
        tags: &Tags,
    ) -> Result<SnapshotInfo, AwsError> {
        self.limits.acquire(region, "ec2:CreateSnapshot").await;
        let output = self
            .client(region)
            .create_snapshot()
            .volume_id(volume_id)
            .description(description)
            .tag_specifications(tag_spec(ResourceType::Snapshot, tags))
            .customize()
            .config_override(without_sdk_retries())
            .send()
            .await
            .map_err(|e| classify("ec2", "CreateSnapshot", e))?;
        let snapshot = Snapshot::builder()
            .set_snapshot_id(output.snapshot_id)
            .set_volume_id(output.volume_id)
            .set_state(output.state)
            .set_volume_size(output.volume_size)
            .set_encrypted(output.encrypted)
            .set_kms_key_id(output.kms_key_id)
            .set_tags(output.tags)
            .set_start_time(output.start_time)
            .set_progress(output.progress)
            .set_description(output.description)
            .build();
        Ok(snapshot_info(region, &snapshot))
    }

    async fn create_snapshot_set(
        &self,
        region: &str,
        instance_id: &str,
        exclude_boot_volume: bool,
        description: &str,
        tags: &Tags,
    ) -> Result<Vec<SnapshotInfo>, AwsError> {
        self.limits.acquire(region, "ec2:CreateSnapshots").await;
        let output = self
            .client(region)
            .create_snapshots()
            .instance_specification(
                InstanceSpecification::builder()
                    .instance_id(instance_id)
                    .exclude_boot_volume(exclude_boot_volume)
                    .build(),
            )
            .description(description)
            .tag_specifications(tag_spec(ResourceType::Snapshot, tags))
            .customize()
            .config_override(without_sdk_retries())
            .send()
            .await
            .map_err(|e| classify("ec2", "CreateSnapshots", e))?;
        // The reply describes every snapshot of the set; a DescribeSnapshots right after the
        // create may not see them yet (eventual consistency), so the reply is what counts.
        Ok(output
            .snapshots()
            .iter()
            .map(|s| {
                let snapshot = Snapshot::builder()
                    .set_snapshot_id(s.snapshot_id.clone())
                    .set_volume_id(s.volume_id.clone())
                    .set_state(s.state.clone())
                    .set_volume_size(s.volume_size)
                    .set_encrypted(s.encrypted)
                    .set_tags(s.tags.clone())
                    .set_start_time(s.start_time)
                    .set_progress(s.progress.clone())
                    .set_description(s.description.clone())
                    .build();
                snapshot_info(region, &snapshot)
            })
            .collect())
    }

    async fn copy_snapshot(
        &self,
        source_region: &str,
        snapshot_id: &str,
        dest_region: &str,
        kms_key: Option<&str>,
        description: &str,
        tags: &Tags,
    ) -> Result<String, AwsError> {
        let output = self
            .client(dest_region)
            .copy_snapshot()
            .source_region(source_region)
            .source_snapshot_id(snapshot_id)
            .encrypted(true)
            .set_kms_key_id(kms_key.map(str::to_owned))
            .description(description)
            .tag_specifications(tag_spec(ResourceType::Snapshot, tags))
            .customize()
            .config_override(without_sdk_retries())
            .send()
            .await
            .map_err(|e| classify("ec2", "CopySnapshot", e))?;
        Ok(output.snapshot_id.unwrap_or_default())
    }

    async fn archive_snapshot(&self, region: &str, snapshot_id: &str) -> Result<(), AwsError> {
        self.client(region)
            .modify_snapshot_tier()
            .snapshot_id(snapshot_id)
            .storage_tier(TargetStorageTier::Archive)
            .send()
            .await
            .map_err(|e| classify("ec2", "ModifySnapshotTier", e))?;
        Ok(())
    }

    async fn restore_archived_snapshot(&self, region: &str, snapshot_id: &str, days: i32) -> Result<(), AwsError> {
        self.client(region)
            .restore_snapshot_tier()
            .snapshot_id(snapshot_id)
            .temporary_restore_days(days)
            .send()
            .await
            .map_err(|e| classify("ec2", "RestoreSnapshotTier", e))?;
        Ok(())
    }

    async fn snapshot_tier_status(
        &self,
        region: &str,
        snapshot_id: &str,
    ) -> Result<Option<SnapshotTierStatus>, AwsError> {
        let output = self
            .client(region)
            .describe_snapshot_tier_status()
            .filters(Filter::builder().name("snapshot-id").values(snapshot_id).build())
            .send()
            .await
            .map_err(|e| classify("ec2", "DescribeSnapshotTierStatus", e))?;
        Ok(output.snapshot_tier_statuses().iter().find(|s| s.snapshot_id() == Some(snapshot_id)).map(|s| {
            SnapshotTierStatus {
                storage_tier: s.storage_tier().map(|t| t.as_str().to_owned()),
                last_operation: s.last_tiering_operation_status().map(|o| o.as_str().to_owned()),
                progress: s.last_tiering_progress(),
                archival_complete_time: s.archival_complete_time().and_then(to_chrono),
                restore_expiry: s.restore_expiry_time().and_then(to_chrono),
            }
        }))
    }

    async fn delete_snapshot(&self, region: &str, snapshot_id: &str) -> Result<(), AwsError> {
        match self.client(region).delete_snapshot().snapshot_id(snapshot_id).send().await {
            Ok(_) => Ok(()),
            Err(err) => {
                let err = classify("ec2", "DeleteSnapshot", err);
                // Already gone is what we wanted.
                if not_found(&err) {
                    Ok(())
                } else {
                    Err(err)
                }
            }
        }
    }

    async fn share_snapshot(
        &self,
        region: &str,
        snapshot_id: &str,
        account: &str,
        shared: bool,
    ) -> Result<(), AwsError> {
        let operation = if shared { OperationType::Add } else { OperationType::Remove };
        self.client(region)
            .modify_snapshot_attribute()
            .snapshot_id(snapshot_id)
            .attribute(SnapshotAttributeName::CreateVolumePermission)
            .operation_type(operation)
            .user_ids(account)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| classify("ec2", "ModifySnapshotAttribute", e))
    }

    async fn images_tagged(&self, region: &str, key: &str, value: &str) -> Result<Vec<ImageInfo>, AwsError> {
        self.describe_images(region, Some(tag_filter(key, value)), &[]).await
    }

    async fn images_named(&self, region: &str, name: &str) -> Result<Vec<ImageInfo>, AwsError> {
        self.describe_images(region, Some(Filter::builder().name("name").values(name).build()), &[]).await
    }

    async fn images(&self, region: &str, ids: &[String]) -> Result<Vec<ImageInfo>, AwsError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        match self.describe_images(region, None, ids).await {
            Ok(images) => Ok(images),
            Err(err) if not_found(&err) => Ok(Vec::new()),
            Err(err) => Err(err),
        }
    }

    async fn create_image(
        &self,
        region: &str,
        instance_id: &str,
        name: &str,
        no_reboot: bool,
        tags: &Tags,
    ) -> Result<String, AwsError> {
        // Only the image is tagged here: a snapshot TagSpecification on CreateImage is not
        // supported everywhere; the handler tags the image's snapshots once they exist.
        let output = self
            .client(region)
            .create_image()
            .instance_id(instance_id)
            .name(name)
            .no_reboot(no_reboot)
            .tag_specifications(tag_spec(ResourceType::Image, tags))
            .customize()
            .config_override(without_sdk_retries())
            .send()
            .await
            .map_err(|e| classify("ec2", "CreateImage", e))?;
        Ok(output.image_id.unwrap_or_default())
    }

    async fn copy_image(
        &self,
        source_region: &str,
        image_id: &str,
        dest_region: &str,
        name: &str,
        kms_key: Option<&str>,
        tags: &Tags,
        client_token: &str,
    ) -> Result<String, AwsError> {
        let output = self
            .client(dest_region)
            .copy_image()
            .source_region(source_region)
            .source_image_id(image_id)
            .name(name)
            .encrypted(true)
            .set_kms_key_id(kms_key.map(str::to_owned))
            .client_token(client_token)
            .tag_specifications(tag_spec(ResourceType::Image, tags))
            .send()
            .await
            .map_err(|e| classify("ec2", "CopyImage", e))?;
        Ok(output.image_id.unwrap_or_default())
    }

    async fn deregister_image(&self, region: &str, image_id: &str) -> Result<(), AwsError> {
        match self.client(region).deregister_image().image_id(image_id).send().await {
            Ok(_) => Ok(()),
            Err(err) => {
                let err = classify("ec2", "DeregisterImage", err);
                if not_found(&err) {
                    Ok(())
                } else {
                    Err(err)
                }
            }
        }
    }

    async fn tag(&self, region: &str, resource_ids: &[String], tags: &Tags) -> Result<(), AwsError> {
        if resource_ids.is_empty() || tags.is_empty() {
            return Ok(());
        }
        self.client(region)
            .create_tags()
            .set_resources(Some(resource_ids.to_vec()))
            .set_tags(Some(tags.iter().map(|(k, v)| Tag::builder().key(k).value(v).build()).collect()))
            .send()
            .await
            .map_err(|e| classify("ec2", "CreateTags", e))?;
        Ok(())
    }

    async fn create_volume(&self, region: &str, volume: &NewVolume) -> Result<VolumeInfo, AwsError> {
        let output = self
            .client(region)
            .create_volume()
            .snapshot_id(&volume.snapshot_id)
            .availability_zone(&volume.availability_zone)
            .set_volume_type(volume.volume_type.as_deref().map(VolumeType::from))
            .set_kms_key_id(volume.kms_key.clone())
            .set_encrypted(volume.kms_key.as_ref().map(|_| true))
            .tag_specifications(tag_spec(ResourceType::Volume, &volume.tags))
            .client_token(&volume.client_token)
            .send()
            .await
            .map_err(|e| classify("ec2", "CreateVolume", e))?;
        Ok(VolumeInfo {
            id: output.volume_id.unwrap_or_default(),
            region: region.to_owned(),
            size_gib: output.size.unwrap_or_default(),
            encrypted: output.encrypted.unwrap_or(false),
            availability_zone: output.availability_zone,
            volume_type: output.volume_type.map(|t| t.as_str().to_owned()),
            state: output.state.map(|s| s.as_str().to_owned()),
            tags: volume.tags.clone(),
            attached_to: None,
        })
    }

    async fn delete_volume(&self, region: &str, volume_id: &str) -> Result<(), AwsError> {
        match self.client(region).delete_volume().volume_id(volume_id).send().await {
            Ok(_) => Ok(()),
            Err(err) => {
                let err = classify("ec2", "DeleteVolume", err);
                if not_found(&err) {
                    Ok(())
                } else {
                    Err(err)
                }
            }
        }
    }

    async fn run_instance(&self, region: &str, instance: &NewInstance) -> Result<InstanceInfo, AwsError> {
        let output = self
            .client(region)
            .run_instances()
            .image_id(&instance.image_id)
            .instance_type(aws_sdk_ec2::types::InstanceType::from(instance.instance_type.as_str()))
            .set_subnet_id(instance.subnet_id.clone())
            .min_count(1)
            .max_count(1)
            .tag_specifications(tag_spec(ResourceType::Instance, &instance.tags))
            .client_token(&instance.client_token)
            .send()
            .await
            .map_err(|e| classify("ec2", "RunInstances", e))?;
        let launched = output.instances().first().map(|i| instance_info(region, i));
        launched.ok_or_else(|| AwsError {
            service: "ec2",
            operation: "RunInstances",
            code: "NoInstance".into(),
            message: "RunInstances returned no instance".into(),
            class: backup_core::ErrorClass::Retry(backup_core::RetryClass::Transient),
        })
    }

    async fn stop_instance(&self, region: &str, instance_id: &str) -> Result<(), AwsError> {
        self.client(region)
            .stop_instances()
            .instance_ids(instance_id)
            .send()
            .await
            .map_err(|e| classify("ec2", "StopInstances", e))?;
        Ok(())
    }

    async fn terminate_instance(&self, region: &str, instance_id: &str) -> Result<(), AwsError> {
        match self.client(region).terminate_instances().instance_ids(instance_id).send().await {
            Ok(_) => Ok(()),
            Err(err) => {
                let err = classify("ec2", "TerminateInstances", err);
                if not_found(&err) {
                    Ok(())
                } else {
                    Err(err)
                }
            }
        }
    }

    async fn instances_tagged(&self, region: &str, key: &str, value: &str) -> Result<Vec<InstanceInfo>, AwsError> {
        self.describe_instances(region, vec![tag_filter(key, value)], vec![]).await
    }

    async fn volumes_tagged(&self, region: &str, key: &str, value: &str) -> Result<Vec<VolumeInfo>, AwsError> {
        self.describe_volumes(region, vec![tag_filter(key, value)], vec![]).await
    }
}
