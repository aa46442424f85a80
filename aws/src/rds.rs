//! `DatabaseSnapshots` on RDS: DB instances, Aurora clusters, their manual snapshots, cross-region
//! copies, restores and the deletes a restore drill needs.
//!
//! Every call first takes a token from the `rds:*` rate bucket: RDS throttles all of an account's
//! API actions in a region together, so one shared budget is the honest model. RDS cannot filter
//! describes by tag; tag lookups list the manual snapshots and filter on their `TagList`.

use async_trait::async_trait;
use aws_sdk_rds::types::{DbCluster, DbClusterSnapshot, DbInstance, DbSnapshot, Tag};
use backup_core::artifacts::Tags;
use backup_core::ratelimit::RateLimiter;
use backup_core::services::database::{
    export_status, snapshot_status, DatabaseSnapshots, DbClusterInfo, DbInstanceInfo, DbSnapshotInfo, ExportInfo,
    NewExport, PitrSource, ReplicatedBackups, RestoreWindow,
};
use backup_core::AwsError;
use chrono::{DateTime, Utc};
use std::sync::Arc;

use crate::classify::classify;
use crate::config::AwsContext;
use crate::ec2::to_chrono;

/// Where the per-region clients come from: the shared context, or a factory (SDK-level mocks).
#[derive(Clone)]
enum Clients {
    Aws(AwsContext),
    Factory(Arc<dyn Fn(&str) -> aws_sdk_rds::Client + Send + Sync>),
}

#[derive(Clone)]
pub struct RdsDatabases {
    clients: Clients,
    limits: RateLimiter,
}

impl std::fmt::Debug for RdsDatabases {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let source = match &self.clients {
            Clients::Aws(aws) => format!("{aws:?}"),
            Clients::Factory(_) => "client factory".to_owned(),
        };
        f.debug_struct("RdsDatabases").field("clients", &source).finish()
    }
}

impl RdsDatabases {
    pub fn new(aws: AwsContext, limits: RateLimiter) -> Self {
        Self { clients: Clients::Aws(aws), limits }
    }

    /// An adapter whose client for a region comes from `clients` (tests inject mocked clients).
    pub fn with_clients(
        clients: impl Fn(&str) -> aws_sdk_rds::Client + Send + Sync + 'static,
        limits: RateLimiter,
    ) -> Self {
        Self { clients: Clients::Factory(Arc::new(clients)), limits }
    }

    fn client(&self, region: &str) -> aws_sdk_rds::Client {
        match &self.clients {
            Clients::Aws(aws) => aws.clients_in(region).rds,
            Clients::Factory(make) => make(region),
        }
    }

    /// A client of `region`, after waiting for the RDS budget of that region.
    async fn call(&self, region: &str, action: &str) -> aws_sdk_rds::Client {
        self.limits.acquire(region, &format!("rds:{action}")).await;
        self.client(region)
    }
}

fn to_smithy(t: DateTime<Utc>) -> aws_smithy_types::DateTime {
    aws_smithy_types::DateTime::from_secs_and_nanos(t.timestamp(), t.timestamp_subsec_nanos())
}

/// "Not found" is `None`; anything else stays an error.
fn gone_as_none<T>(err: AwsError) -> Result<Option<T>, AwsError> {
    if not_found(&err) {
        Ok(None)
    } else {
        Err(err)
    }
}

fn export_info(identifier: Option<&str>, t: ExportView<'_>) -> ExportInfo {
    ExportInfo {
        identifier: identifier.unwrap_or_default().to_owned(),
        source_arn: t.source_arn.unwrap_or_default().to_owned(),
        bucket: t.bucket.unwrap_or_default().to_owned(),
        prefix: t.prefix.map(str::to_owned).filter(|p| !p.is_empty()),
        status: export_status(t.status, t.percent, t.failure),
        total_extracted_gib: t.total_gib,
        kms_key: t.kms_key.map(str::to_owned),
    }
}

/// The fields of StartExportTask's output and of a DescribeExportTasks entry: two SDK types with
/// the same accessors.
macro_rules! export_view {
    ($t:expr) => {
        ExportView {
            source_arn: $t.source_arn(),
            bucket: $t.s3_bucket(),
            prefix: $t.s3_prefix(),
            status: $t.status(),
            percent: $t.percent_progress(),
            failure: $t.failure_cause(),
            total_gib: $t.total_extracted_data_in_gb(),
            kms_key: $t.kms_key_id(),
        }
    };
}

struct ExportView<'a> {
    source_arn: Option<&'a str>,
    bucket: Option<&'a str>,
    prefix: Option<&'a str>,
    status: Option<&'a str>,
    percent: Option<i32>,
    failure: Option<&'a str>,
    total_gib: Option<i32>,
    kms_key: Option<&'a str>,
}

fn tags_of(tags: &[Tag]) -> Tags {
    tags.iter().filter_map(|t| Some((t.key()?.to_owned(), t.value().unwrap_or_default().to_owned()))).collect()
}

fn tag_list(tags: &Tags) -> Vec<Tag> {
    tags.iter().map(|(k, v)| Tag::builder().key(k).value(v).build()).collect()
}

/// RDS reports 0 or nothing when the storage figure means nothing.
fn gib(allocated: Option<i32>) -> Option<i32> {
    allocated.filter(|g| *g > 0)
}

/// Aurora storage grows on its own: its clusters and cluster snapshots report a placeholder
/// `AllocatedStorage` (1, or 0) that is not a size. Multi-AZ DB clusters report a real one.
fn cluster_gib(engine: Option<&str>, allocated: Option<i32>) -> Option<i32> {
    if engine.is_some_and(|e| e.starts_with("aurora")) {
        None
    } else {
        gib(allocated)
    }
}

fn instance_snapshot_info(region: &str, s: &DbSnapshot) -> DbSnapshotInfo {
    DbSnapshotInfo {
        identifier: s.db_snapshot_identifier().unwrap_or_default().to_owned(),
        arn: s.db_snapshot_arn().unwrap_or_default().to_owned(),
        region: region.to_owned(),
        cluster: false,
        source_id: s.db_instance_identifier().unwrap_or_default().to_owned(),
        status: snapshot_status(s.status(), s.percent_progress()),
        encrypted: s.encrypted().unwrap_or(false),
        kms_key: s.kms_key_id().map(str::to_owned),
        allocated_gib: gib(s.allocated_storage()),
        engine: s.engine().map(str::to_owned),
        snapshot_type: s.snapshot_type().map(str::to_owned),
        tags: tags_of(s.tag_list()),
        created_at: s.snapshot_create_time().and_then(to_chrono),
    }
}

fn cluster_snapshot_info(region: &str, s: &DbClusterSnapshot) -> DbSnapshotInfo {
    DbSnapshotInfo {
        identifier: s.db_cluster_snapshot_identifier().unwrap_or_default().to_owned(),
        arn: s.db_cluster_snapshot_arn().unwrap_or_default().to_owned(),
        region: region.to_owned(),
        cluster: true,
        source_id: s.db_cluster_identifier().unwrap_or_default().to_owned(),
        status: snapshot_status(s.status(), s.percent_progress()),
        encrypted: s.storage_encrypted().unwrap_or(false),
        kms_key: s.kms_key_id().map(str::to_owned),
        allocated_gib: cluster_gib(s.engine(), s.allocated_storage()),
        engine: s.engine().map(str::to_owned),
        snapshot_type: s.snapshot_type().map(str::to_owned),
        tags: tags_of(s.tag_list()),
        created_at: s.snapshot_create_time().and_then(to_chrono),
    }
}

fn instance_info(region: &str, db: &DbInstance) -> DbInstanceInfo {
    DbInstanceInfo {
        identifier: db.db_instance_identifier().unwrap_or_default().to_owned(),
        arn: db.db_instance_arn().unwrap_or_default().to_owned(),
        region: region.to_owned(),
        status: db.db_instance_status().map(str::to_owned),
        engine: db.engine().map(str::to_owned),
        class: db.db_instance_class().map(str::to_owned),
        cluster_id: db.db_cluster_identifier().map(str::to_owned),
        allocated_gib: gib(db.allocated_storage()),
        backup_retention_days: db.backup_retention_period(),
        tags: tags_of(db.tag_list()),
    }
}

fn cluster_info(region: &str, db: &DbCluster) -> DbClusterInfo {
    DbClusterInfo {
        identifier: db.db_cluster_identifier().unwrap_or_default().to_owned(),
        arn: db.db_cluster_arn().unwrap_or_default().to_owned(),
        region: region.to_owned(),
        status: db.status().map(str::to_owned),
        engine: db.engine().map(str::to_owned),
        members: db.db_cluster_members().iter().filter_map(|m| m.db_instance_identifier().map(str::to_owned)).collect(),
        allocated_gib: cluster_gib(db.engine(), db.allocated_storage()),
        backup_retention_days: db.backup_retention_period(),
        tags: tags_of(db.tag_list()),
    }
}

/// RDS names its not-found faults `DBInstanceNotFound`, `DBClusterNotFoundFault`,
/// `DBSnapshotNotFound`, `DBClusterSnapshotNotFoundFault`, ...
fn not_found(err: &AwsError) -> bool {
    err.code.contains("NotFound")
}

/// A missing-response-field error: the call succeeded but said nothing usable.
fn empty_response(operation: &'static str, what: &str) -> AwsError {
    AwsError {
        service: "rds",
        operation,
        code: "EmptyResponse".into(),
        message: format!("{operation} returned no {what}"),
        class: backup_core::ErrorClass::Retry(backup_core::RetryClass::Transient),
    }
}

/// What to describe: one identifier, the manual snapshots of one DB, or every manual snapshot.
#[derive(Clone, Copy)]
enum SnapshotQuery<'a> {
    Identifier(&'a str),
    ManualOf(&'a str),
    AllManual,
}

impl RdsDatabases {
    async fn describe_snapshots(
        &self,
        region: &str,
        cluster: bool,
        query: SnapshotQuery<'_>,
    ) -> Result<Vec<DbSnapshotInfo>, AwsError> {
        let (identifier, source, manual) = match query {
            SnapshotQuery::Identifier(id) => (Some(id.to_owned()), None, false),
            SnapshotQuery::ManualOf(db) => (None, Some(db.to_owned()), true),
            SnapshotQuery::AllManual => (None, None, true),
        };
        let snapshot_type = manual.then(|| "manual".to_owned());
        let mut found = Vec::new();
        let mut marker: Option<String> = None;
        loop {
            let next = if cluster {
                let output = self
                    .call(region, "DescribeDBClusterSnapshots")
                    .await
                    .describe_db_cluster_snapshots()
                    .set_db_cluster_snapshot_identifier(identifier.clone())
                    .set_db_cluster_identifier(source.clone())
                    .set_snapshot_type(snapshot_type.clone())
                    .set_marker(marker.take())
                    .send()
                    .await
                    .map_err(|e| classify("rds", "DescribeDBClusterSnapshots", e))?;
                found.extend(output.db_cluster_snapshots().iter().map(|s| cluster_snapshot_info(region, s)));
                output.marker
            } else {
                let output = self
                    .call(region, "DescribeDBSnapshots")
                    .await
                    .describe_db_snapshots()
                    .set_db_snapshot_identifier(identifier.clone())
                    .set_db_instance_identifier(source.clone())
                    .set_snapshot_type(snapshot_type.clone())
                    .set_marker(marker.take())
                    .send()
                    .await
                    .map_err(|e| classify("rds", "DescribeDBSnapshots", e))?;
                found.extend(output.db_snapshots().iter().map(|s| instance_snapshot_info(region, s)));
                output.marker
            };
            match next {
                Some(next) if !next.is_empty() => marker = Some(next),
                _ => return Ok(found),
            }
        }
    }

    async fn list_tags(&self, region: &str, arn: &str) -> Result<Tags, AwsError> {
        let output = self
            .call(region, "ListTagsForResource")
            .await
            .list_tags_for_resource()
            .resource_name(arn)
            .send()
            .await
            .map_err(|e| classify("rds", "ListTagsForResource", e))?;
        Ok(tags_of(output.tag_list()))
    }

    async fn describe_instances(&self, region: &str, id: Option<&str>) -> Result<Vec<DbInstanceInfo>, AwsError> {
        let mut found = Vec::new();
        let mut marker: Option<String> = None;
        loop {
            let output = self
                .call(region, "DescribeDBInstances")
                .await
                .describe_db_instances()
                .set_db_instance_identifier(id.map(str::to_owned))
                .set_marker(marker.take())
                .send()
                .await
                .map_err(|e| classify("rds", "DescribeDBInstances", e))?;
            found.extend(output.db_instances().iter().map(|db| instance_info(region, db)));
            match output.marker {
                Some(next) if !next.is_empty() => marker = Some(next),
                _ => return Ok(found),
            }
        }
    }

    async fn describe_clusters(&self, region: &str, id: Option<&str>) -> Result<Vec<DbClusterInfo>, AwsError> {
        let mut found = Vec::new();
        let mut marker: Option<String> = None;
        loop {
            let output = self
                .call(region, "DescribeDBClusters")
                .await
                .describe_db_clusters()
                .set_db_cluster_identifier(id.map(str::to_owned))
                .set_marker(marker.take())
                .send()
                .await
                .map_err(|e| classify("rds", "DescribeDBClusters", e))?;
            found.extend(output.db_clusters().iter().map(|db| cluster_info(region, db)));
            match output.marker {
                Some(next) if !next.is_empty() => marker = Some(next),
                _ => return Ok(found),
            }
        }
    }
}

/// Turns "does not exist" into `Ok(None)` for lookups by identifier.
fn optional<T>(result: Result<Vec<T>, AwsError>) -> Result<Option<T>, AwsError> {
    match result {
        Ok(found) => Ok(found.into_iter().next()),
        Err(err) if not_found(&err) => Ok(None),
        Err(err) => Err(err),
    }
}

/// Turns "does not exist" into success for deletes: already gone is what was wanted.
fn gone(result: Result<(), AwsError>) -> Result<(), AwsError> {
    match result {
        Err(err) if not_found(&err) => Ok(()),
        other => other,
    }
}

#[async_trait]
impl DatabaseSnapshots for RdsDatabases {
    async fn instance(&self, region: &str, id: &str) -> Result<Option<DbInstanceInfo>, AwsError> {
        optional(self.describe_instances(region, Some(id)).await)
    }

    async fn cluster(&self, region: &str, id: &str) -> Result<Option<DbClusterInfo>, AwsError> {
        optional(self.describe_clusters(region, Some(id)).await)
    }

    async fn list_instances(&self, region: &str) -> Result<Vec<DbInstanceInfo>, AwsError> {
        self.describe_instances(region, None).await
    }

    async fn list_clusters(&self, region: &str) -> Result<Vec<DbClusterInfo>, AwsError> {
        self.describe_clusters(region, None).await
    }

    async fn snapshot(
        &self,
        region: &str,
        cluster: bool,
        identifier: &str,
    ) -> Result<Option<DbSnapshotInfo>, AwsError> {
        let found = optional(self.describe_snapshots(region, cluster, SnapshotQuery::Identifier(identifier)).await)?;
        match found {
            // Ownership is decided on tags, so a describe that left them out (older API
            // behaviour) must not make our own snapshot look foreign: ask for them.
            Some(mut snapshot) if snapshot.tags.is_empty() && !snapshot.arn.is_empty() => {
                snapshot.tags = self.list_tags(region, &snapshot.arn).await?;
                Ok(Some(snapshot))
            }
            other => Ok(other),
        }
    }

    async fn snapshots_of(
        &self,
        region: &str,
        cluster: bool,
        source_id: &str,
    ) -> Result<Vec<DbSnapshotInfo>, AwsError> {
        match self.describe_snapshots(region, cluster, SnapshotQuery::ManualOf(source_id)).await {
            Err(err) if not_found(&err) => Ok(Vec::new()),
            other => other,
        }
    }

    async fn snapshots_tagged(
        &self,
        region: &str,
        cluster: bool,
        key: &str,
        value: &str,
    ) -> Result<Vec<DbSnapshotInfo>, AwsError> {
        let all = self.describe_snapshots(region, cluster, SnapshotQuery::AllManual).await?;
        Ok(all.into_iter().filter(|s| s.tags.get(key).is_some_and(|v| v == value)).collect())
    }

    async fn create_snapshot(
        &self,
        region: &str,
        cluster: bool,
        source_id: &str,
        identifier: &str,
        tags: &Tags,
    ) -> Result<DbSnapshotInfo, AwsError> {
        let mut info = if cluster {
            let output = self
                .call(region, "CreateDBClusterSnapshot")
                .await
                .create_db_cluster_snapshot()
                .db_cluster_identifier(source_id)
                .db_cluster_snapshot_identifier(identifier)
                .set_tags(Some(tag_list(tags)))
                .send()
                .await
                .map_err(|e| classify("rds", "CreateDBClusterSnapshot", e))?;
            let snapshot =
                output.db_cluster_snapshot.ok_or_else(|| empty_response("CreateDBClusterSnapshot", "snapshot"))?;
            cluster_snapshot_info(region, &snapshot)
        } else {
            let output = self
                .call(region, "CreateDBSnapshot")
                .await
                .create_db_snapshot()
                .db_instance_identifier(source_id)
                .db_snapshot_identifier(identifier)
                .set_tags(Some(tag_list(tags)))
                .send()
                .await
                .map_err(|e| classify("rds", "CreateDBSnapshot", e))?;
            let snapshot = output.db_snapshot.ok_or_else(|| empty_response("CreateDBSnapshot", "snapshot"))?;
            instance_snapshot_info(region, &snapshot)
        };
        // The tags were applied by the create call itself; a response without them says nothing
        // about the snapshot, only about the response.
        if info.tags.is_empty() {
            info.tags = tags.clone();
        }
        Ok(info)
    }

    async fn copy_snapshot(
        &self,
        cluster: bool,
        source_region: &str,
        source_arn: &str,
        dest_region: &str,
        target_identifier: &str,
        kms_key: Option<&str>,
        tags: &Tags,
    ) -> Result<DbSnapshotInfo, AwsError> {
        // The call goes to the destination region with the source ARN. Outside GovCloud RDS
        // ignores `PreSignedUrl` (and the Rust SDK has no `SourceRegion` convenience that would
        // generate one), so `source_region` only serves the trace below.
        tracing::debug!(source_region, source_arn, dest_region, target_identifier, "copying DB snapshot");
        let mut info = if cluster {
            let output = self
                .call(dest_region, "CopyDBClusterSnapshot")
                .await
                .copy_db_cluster_snapshot()
                .source_db_cluster_snapshot_identifier(source_arn)
                .target_db_cluster_snapshot_identifier(target_identifier)
                .set_kms_key_id(kms_key.map(str::to_owned))
                .copy_tags(false)
                .set_tags(Some(tag_list(tags)))
                .send()
                .await
                .map_err(|e| classify("rds", "CopyDBClusterSnapshot", e))?;
            let snapshot =
                output.db_cluster_snapshot.ok_or_else(|| empty_response("CopyDBClusterSnapshot", "snapshot"))?;
            cluster_snapshot_info(dest_region, &snapshot)
        } else {
            let output = self
                .call(dest_region, "CopyDBSnapshot")
                .await
                .copy_db_snapshot()
                .source_db_snapshot_identifier(source_arn)
                .target_db_snapshot_identifier(target_identifier)
                .set_kms_key_id(kms_key.map(str::to_owned))
                .copy_tags(false)
                .set_tags(Some(tag_list(tags)))
                .send()
                .await
                .map_err(|e| classify("rds", "CopyDBSnapshot", e))?;
            let snapshot = output.db_snapshot.ok_or_else(|| empty_response("CopyDBSnapshot", "snapshot"))?;
            instance_snapshot_info(dest_region, &snapshot)
        };
        if info.tags.is_empty() {
            info.tags = tags.clone();
        }
        Ok(info)
    }

    async fn delete_snapshot(&self, region: &str, cluster: bool, identifier: &str) -> Result<(), AwsError> {
        let result = if cluster {
            self.call(region, "DeleteDBClusterSnapshot")
                .await
                .delete_db_cluster_snapshot()
                .db_cluster_snapshot_identifier(identifier)
                .send()
                .await
                .map(|_| ())
                .map_err(|e| classify("rds", "DeleteDBClusterSnapshot", e))
        } else {
            self.call(region, "DeleteDBSnapshot")
                .await
                .delete_db_snapshot()
                .db_snapshot_identifier(identifier)
                .send()
                .await
                .map(|_| ())
                .map_err(|e| classify("rds", "DeleteDBSnapshot", e))
        };
        gone(result)
    }

    async fn share_snapshot(
        &self,
        region: &str,
        cluster: bool,
        identifier: &str,
        account: &str,
        shared: bool,
    ) -> Result<(), AwsError> {
        let (add, remove) =
            if shared { (Some(vec![account.to_owned()]), None) } else { (None, Some(vec![account.to_owned()])) };
        if cluster {
            self.call(region, "ModifyDBClusterSnapshotAttribute")
                .await
                .modify_db_cluster_snapshot_attribute()
                .db_cluster_snapshot_identifier(identifier)
                .attribute_name("restore")
                .set_values_to_add(add)
                .set_values_to_remove(remove)
                .send()
                .await
                .map(|_| ())
                .map_err(|e| classify("rds", "ModifyDBClusterSnapshotAttribute", e))
        } else {
            self.call(region, "ModifyDBSnapshotAttribute")
                .await
                .modify_db_snapshot_attribute()
                .db_snapshot_identifier(identifier)
                .attribute_name("restore")
                .set_values_to_add(add)
                .set_values_to_remove(remove)
                .send()
                .await
                .map(|_| ())
                .map_err(|e| classify("rds", "ModifyDBSnapshotAttribute", e))
        }
    }

    async fn restore_instance(
        &self,
        region: &str,
        snapshot_identifier: &str,
        target_id: &str,
        class: Option<&str>,
        subnet_group: Option<&str>,
        tags: &Tags,
    ) -> Result<DbInstanceInfo, AwsError> {
        let output = self
            .call(region, "RestoreDBInstanceFromDBSnapshot")
            .await
            .restore_db_instance_from_db_snapshot()
            .db_snapshot_identifier(snapshot_identifier)
            .db_instance_identifier(target_id)
            .set_db_instance_class(class.map(str::to_owned))
            .set_db_subnet_group_name(subnet_group.map(str::to_owned))
            .set_tags(Some(tag_list(tags)))
            .send()
            .await
            .map_err(|e| classify("rds", "RestoreDBInstanceFromDBSnapshot", e))?;
        let db = output.db_instance.ok_or_else(|| empty_response("RestoreDBInstanceFromDBSnapshot", "DB instance"))?;
        let mut info = instance_info(region, &db);
        if info.tags.is_empty() {
            info.tags = tags.clone();
        }
        Ok(info)
    }

    async fn restore_window(&self, region: &str, cluster: bool, id: &str) -> Result<Option<RestoreWindow>, AwsError> {
        if cluster {
            let output = match self
                .call(region, "DescribeDBClusters")
                .await
                .describe_db_clusters()
                .db_cluster_identifier(id)
                .send()
                .await
            {
                Ok(output) => output,
                Err(err) => return gone_as_none(classify("rds", "DescribeDBClusters", err)),
            };
            return Ok(output.db_clusters().first().map(|c| RestoreWindow {
                retention_days: c.backup_retention_period().unwrap_or(0),
                earliest: c.earliest_restorable_time().and_then(to_chrono),
                latest: c.latest_restorable_time().and_then(to_chrono),
            }));
        }
        let output = match self
            .call(region, "DescribeDBInstances")
            .await
            .describe_db_instances()
            .db_instance_identifier(id)
            .send()
            .await
        {
            Ok(output) => output,
            Err(err) => return gone_as_none(classify("rds", "DescribeDBInstances", err)),
        };
        let Some(db) = output.db_instances().first() else { return Ok(None) };
        // The earliest restorable time lives on the automated backups, not on the instance.
        let earliest = match self
            .call(region, "DescribeDBInstanceAutomatedBackups")
            .await
            .describe_db_instance_automated_backups()
            .db_instance_identifier(id)
            .send()
            .await
        {
            Ok(backups) => backups
                .db_instance_automated_backups()
                .iter()
                .filter_map(|b| b.restore_window()?.earliest_time().and_then(to_chrono))
                .min(),
            Err(err) => {
                let err = classify("rds", "DescribeDBInstanceAutomatedBackups", err);
                if !not_found(&err) {
                    return Err(err);
                }
                None
            }
        };
        Ok(Some(RestoreWindow {
            retention_days: db.backup_retention_period().unwrap_or(0),
            // Nothing is restorable from before the instance existed, whatever the backups say.
            earliest: earliest.or_else(|| db.instance_create_time().and_then(to_chrono)),
            latest: db.latest_restorable_time().and_then(to_chrono),
        }))
    }

    async fn replicated_backups(&self, region: &str, source_id: &str) -> Result<Option<ReplicatedBackups>, AwsError> {
        let output = match self
            .call(region, "DescribeDBInstanceAutomatedBackups")
            .await
            .describe_db_instance_automated_backups()
            .db_instance_identifier(source_id)
            .send()
            .await
        {
            Ok(output) => output,
            Err(err) => return gone_as_none(classify("rds", "DescribeDBInstanceAutomatedBackups", err)),
        };
        let region_of = |arn: &str| arn.split(':').nth(3).map(str::to_owned);
        // A replica's backups live here while their instance lives in another region.
        Ok(output
            .db_instance_automated_backups()
            .iter()
            .filter(|b| b.db_instance_automated_backups_arn().and_then(region_of).as_deref() == Some(region))
            .filter(|b| b.db_instance_arn().and_then(region_of).is_some_and(|r| r != region))
            // Retained backups (replication stopped, or the source deleted) stay restorable: that
            // is the case a DR restore exists for.
            .find(|b| !b.status().is_some_and(|s| s.eq_ignore_ascii_case("deleting")))
            .map(|b| ReplicatedBackups {
                arn: b.db_instance_automated_backups_arn().unwrap_or_default().to_owned(),
                source_arn: b.db_instance_arn().map(str::to_owned),
                status: b.status().map(str::to_owned),
                window: RestoreWindow {
                    retention_days: b.backup_retention_period().unwrap_or(0),
                    earliest: b.restore_window().and_then(|w| w.earliest_time()).and_then(to_chrono),
                    latest: b.restore_window().and_then(|w| w.latest_time()).and_then(to_chrono),
                },
            }))
    }

    async fn restore_instance_to_time(
        &self,
        region: &str,
        source: PitrSource<'_>,
        target_id: &str,
        to: Option<DateTime<Utc>>,
        class: Option<&str>,
        subnet_group: Option<&str>,
        tags: &Tags,
    ) -> Result<DbInstanceInfo, AwsError> {
        let (instance, backups) = match source {
            PitrSource::Instance(id) => (Some(id.to_owned()), None),
            PitrSource::ReplicatedBackups(arn) => (None, Some(arn.to_owned())),
        };
        let output = self
            .call(region, "RestoreDBInstanceToPointInTime")
            .await
            .restore_db_instance_to_point_in_time()
            .set_source_db_instance_identifier(instance)
            .set_source_db_instance_automated_backups_arn(backups)
            .target_db_instance_identifier(target_id)
            .set_restore_time(to.map(to_smithy))
            .set_use_latest_restorable_time(to.is_none().then_some(true))
            .set_db_instance_class(class.map(str::to_owned))
            .set_db_subnet_group_name(subnet_group.map(str::to_owned))
            .set_tags(Some(tag_list(tags)))
            .send()
            .await
            .map_err(|e| classify("rds", "RestoreDBInstanceToPointInTime", e))?;
        let db = output.db_instance.ok_or_else(|| empty_response("RestoreDBInstanceToPointInTime", "DB instance"))?;
        let mut info = instance_info(region, &db);
        if info.tags.is_empty() {
            info.tags = tags.clone();
        }
        Ok(info)
    }

    async fn restore_cluster_to_time(
        &self,
        region: &str,
        source_id: &str,
        target_id: &str,
        to: Option<DateTime<Utc>>,
        subnet_group: Option<&str>,
        tags: &Tags,
    ) -> Result<DbClusterInfo, AwsError> {
        let output = self
            .call(region, "RestoreDBClusterToPointInTime")
            .await
            .restore_db_cluster_to_point_in_time()
            .source_db_cluster_identifier(source_id)
            .db_cluster_identifier(target_id)
            .set_restore_to_time(to.map(to_smithy))
            .set_use_latest_restorable_time(to.is_none().then_some(true))
            .set_db_subnet_group_name(subnet_group.map(str::to_owned))
            .set_tags(Some(tag_list(tags)))
            .send()
            .await
            .map_err(|e| classify("rds", "RestoreDBClusterToPointInTime", e))?;
        let db = output.db_cluster.ok_or_else(|| empty_response("RestoreDBClusterToPointInTime", "DB cluster"))?;
        let mut info = cluster_info(region, &db);
        if info.tags.is_empty() {
            info.tags = tags.clone();
        }
        Ok(info)
    }

    async fn restore_cluster(
        &self,
        region: &str,
        snapshot_identifier: &str,
        target_id: &str,
        engine: &str,
        subnet_group: Option<&str>,
        tags: &Tags,
    ) -> Result<DbClusterInfo, AwsError> {
        let output = self
            .call(region, "RestoreDBClusterFromSnapshot")
            .await
            .restore_db_cluster_from_snapshot()
            .snapshot_identifier(snapshot_identifier)
            .db_cluster_identifier(target_id)
            .engine(engine)
            .set_db_subnet_group_name(subnet_group.map(str::to_owned))
            .set_tags(Some(tag_list(tags)))
            .send()
            .await
            .map_err(|e| classify("rds", "RestoreDBClusterFromSnapshot", e))?;
        let db = output.db_cluster.ok_or_else(|| empty_response("RestoreDBClusterFromSnapshot", "DB cluster"))?;
        let mut info = cluster_info(region, &db);
        if info.tags.is_empty() {
            info.tags = tags.clone();
        }
        Ok(info)
    }

    async fn start_export(&self, region: &str, export: &NewExport) -> Result<ExportInfo, AwsError> {
        let t = self
            .call(region, "StartExportTask")
            .await
            .start_export_task()
            .export_task_identifier(&export.identifier)
            .source_arn(&export.source_arn)
            .s3_bucket_name(&export.bucket)
            .set_s3_prefix(export.prefix.clone())
            .iam_role_arn(&export.iam_role_arn)
            .kms_key_id(&export.kms_key)
            .send()
            .await
            .map_err(|e| classify("rds", "StartExportTask", e))?;
        Ok(export_info(t.export_task_identifier(), export_view!(t)))
    }

    async fn export(&self, region: &str, identifier: &str) -> Result<Option<ExportInfo>, AwsError> {
        let output = match self
            .call(region, "DescribeExportTasks")
            .await
            .describe_export_tasks()
            .export_task_identifier(identifier)
            .send()
            .await
        {
            Ok(output) => output,
            Err(err) => return gone_as_none(classify("rds", "DescribeExportTasks", err)),
        };
        Ok(output
            .export_tasks()
            .iter()
            .find(|t| t.export_task_identifier() == Some(identifier))
            .map(|t| export_info(t.export_task_identifier(), export_view!(t))))
    }

    async fn delete_instance(&self, region: &str, id: &str) -> Result<(), AwsError> {
        let result = self
            .call(region, "DeleteDBInstance")
            .await
            .delete_db_instance()
            .db_instance_identifier(id)
            .skip_final_snapshot(true)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| classify("rds", "DeleteDBInstance", e));
        gone(result)
    }

    async fn delete_cluster(&self, region: &str, id: &str) -> Result<(), AwsError> {
        // Aurora refuses to delete a cluster that still has instances: the caller deletes those
        // first (and the refusal, InvalidDBClusterStateFault, is classified busy meanwhile).
        let result = self
            .call(region, "DeleteDBCluster")
            .await
            .delete_db_cluster()
            .db_cluster_identifier(id)
            .skip_final_snapshot(true)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| classify("rds", "DeleteDBCluster", e));
        gone(result)
    }
}
