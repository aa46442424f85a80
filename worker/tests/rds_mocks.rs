//! RDS handler paths the emulator cannot produce (moto makes every snapshot `available` at once
//! and never throttles), driven through the real `RdsDatabases` adapter on SDK clients whose
//! responses come from `aws-smithy-mocks` rules.

use async_trait::async_trait;
use aws_sdk_rds::config::retry::RetryConfig;
use aws_sdk_rds::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_rds::error::ErrorMetadata;
use aws_sdk_rds::operation::copy_db_snapshot::CopyDBSnapshotError;
use aws_sdk_rds::operation::create_db_cluster_snapshot::CreateDbClusterSnapshotOutput;
use aws_sdk_rds::operation::create_db_snapshot::{CreateDBSnapshotError, CreateDbSnapshotOutput};
use aws_sdk_rds::operation::delete_db_snapshot::DeleteDbSnapshotOutput;
use aws_sdk_rds::operation::describe_db_cluster_snapshots::{
    DescribeDBClusterSnapshotsError, DescribeDbClusterSnapshotsOutput,
};
use aws_sdk_rds::operation::describe_db_clusters::DescribeDbClustersOutput;
use aws_sdk_rds::operation::describe_db_instances::DescribeDbInstancesOutput;
use aws_sdk_rds::operation::describe_db_snapshots::{DescribeDBSnapshotsError, DescribeDbSnapshotsOutput};
use aws_sdk_rds::types::error::{
    DbClusterSnapshotNotFoundFault, DbSnapshotAlreadyExistsFault, DbSnapshotNotFoundFault, KmsKeyNotAccessibleFault,
};
use aws_sdk_rds::types::{DbCluster, DbClusterSnapshot, DbInstance, DbSnapshot, Tag};
use aws_sdk_rds::Client;
use aws_smithy_mocks::{create_mock_http_client, mock, MockResponseInterceptor, Rule, RuleMode};
use backup_aws::ec2::Ec2BlockStorage;
use backup_aws::rds::RdsDatabases;
use backup_aws::s3::S3Objects;
use backup_aws::{AwsContext, AwsSettings};
use backup_core::artifacts::{artifact_tags, ArchiveRecord, CatalogQuery, CatalogRecord, Tags, Verification};
use backup_core::ports::Catalog;
use backup_core::ratelimit::RateLimiter;
use backup_core::{AwsError, ErrorClass, RetryClass};
use backup_schemas::{
    tags, ArtifactKind, ArtifactRef, BackupContext, CopyDbSnapshot, CopyTarget, RunId, SnapshotDbCluster,
    SnapshotDbInstance, Task, TaskId, Tier,
};
use backup_worker::handler::{Handler, Outcome, TaskContext};
use backup_worker::handlers::services::{Services, Timing};
use chrono::{DateTime, TimeZone, Utc};
use serde_json::json;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

const REGION: &str = "us-east-1";
const DR: &str = "us-west-2";
const DB: &str = "orders";
const RECHECK: Duration = Duration::from_secs(45);

/// An RDS client answering from `rules` (matched in any order), with SDK retries off so that
/// the adapter's classification is what the test sees.
fn client(rules: &[&Rule]) -> Client {
    let mut interceptor = MockResponseInterceptor::new().rule_mode(RuleMode::MatchAny);
    for rule in rules {
        interceptor = interceptor.with_rule(rule);
    }
    let config = aws_sdk_rds::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(REGION))
        .credentials_provider(Credentials::new("test", "test", None, None, "mock"))
        .http_client(create_mock_http_client())
        .retry_config(RetryConfig::disabled())
        .interceptor(interceptor)
        .build();
    Client::from_conf(config)
}

/// The catalog, in memory.
#[derive(Default)]
struct MemoryCatalog {
    records: Mutex<BTreeMap<String, CatalogRecord>>,
}

fn key(artifact: &ArtifactRef) -> String {
    format!("{}#{}#{}", artifact.kind.as_str(), artifact.region, artifact.id)
}

#[async_trait]
impl Catalog for MemoryCatalog {
    async fn put(&self, record: &CatalogRecord) -> Result<(), AwsError> {
        self.records.lock().unwrap().insert(key(&record.artifact), record.clone());
        Ok(())
    }
    async fn get(&self, artifact: &ArtifactRef) -> Result<Option<CatalogRecord>, AwsError> {
        Ok(self.records.lock().unwrap().get(&key(artifact)).cloned())
    }
    async fn by_resource(&self, resource: &str) -> Result<Vec<CatalogRecord>, AwsError> {
        Ok(self.records.lock().unwrap().values().filter(|r| r.resource == resource).cloned().collect())
    }
    async fn expiring_before(&self, _before: DateTime<Utc>) -> Result<Vec<CatalogRecord>, AwsError> {
        Ok(Vec::new())
    }
    async fn list(&self, _query: &CatalogQuery) -> Result<Vec<CatalogRecord>, AwsError> {
        Ok(self.records.lock().unwrap().values().cloned().collect())
    }
    async fn add_copy(&self, source: &ArtifactRef, copy: &ArtifactRef) -> Result<(), AwsError> {
        if let Some(record) = self.records.lock().unwrap().get_mut(&key(source)) {
            if !record.copies.contains(copy) {
                record.copies.push(copy.clone());
            }
        }
        Ok(())
    }
    async fn set_verification(&self, _artifact: &ArtifactRef, _verification: &Verification) -> Result<(), AwsError> {
        Ok(())
    }
    async fn mark_deleted(&self, _artifact: &ArtifactRef, _at: DateTime<Utc>) -> Result<(), AwsError> {
        Ok(())
    }
    async fn set_archive(&self, _artifact: &ArtifactRef, _archive: &ArchiveRecord) -> Result<(), AwsError> {
        Ok(())
    }
}

/// Services whose RDS adapter uses `rds` for every region. EC2 and S3 are never called here:
/// their adapters point at an address nothing listens on.
async fn services(rds: Client, catalog: Arc<MemoryCatalog>) -> Services {
    let unused = AwsContext::load(&AwsSettings::emulator("http://127.0.0.1:9", REGION)).await.expect("a region");
    Services {
        block: Arc::new(Ec2BlockStorage::new(unused.clone(), RateLimiter::default())),
        databases: Arc::new(RdsDatabases::with_clients(move |_region| rds.clone(), RateLimiter::aws_defaults(1.0))),
        objects: Arc::new(S3Objects::new(unused)),
        catalog: catalog.clone(),
        fleet_catalog: catalog,
        accounts: Arc::new(backup_core::accounts::OwnAccountOnly),
        slots: Arc::new(backup_core::ports::LocalSlots::default()),
        secrets: Arc::new(backup_core::services::secrets::NoSecrets),
        logical: backup_worker::handlers::logical::LogicalSettings::default(),
        timing: Timing { recheck: RECHECK, ..Timing::default() },
    }
}

fn window() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 5, 6, 2, 0, 0).unwrap()
}

fn backup(copy_to: Vec<CopyTarget>, verify: bool) -> BackupContext {
    BackupContext {
        plan: "nightly".into(),
        tier: Tier::Daily,
        window: window(),
        expires_at: Some(window() + chrono::Duration::days(7)),
        copy_to,
        verify,
        retain: None,
        export: None,
    }
}

fn dr_target() -> CopyTarget {
    CopyTarget {
        region: DR.into(),
        kms_key: Some("alias/dr-backups".into()),
        retain_days: Some(30),
        ..Default::default()
    }
}

fn context(task_id: TaskId, checkpoint: Option<serde_json::Value>) -> TaskContext {
    TaskContext {
        task_id,
        run_id: RunId::new("mock-run"),
        attempt: 1,
        checkpoint,
        cancel: CancellationToken::new(),
        deadline: None,
        previous_activity: None,
        account: None,
    }
}

fn tag_list(tags: &Tags) -> Vec<Tag> {
    tags.iter().map(|(k, v)| Tag::builder().key(k).value(v).build()).collect()
}

fn instance_snapshot(identifier: &str, status: &str, progress: i32, tags: &Tags) -> DbSnapshot {
    DbSnapshot::builder()
        .db_snapshot_identifier(identifier)
        .db_snapshot_arn(format!("arn:aws:rds:{REGION}:123456789012:snapshot:{identifier}"))
        .db_instance_identifier(DB)
        .status(status)
        .percent_progress(progress)
        .allocated_storage(20)
        .encrypted(true)
        .kms_key_id("arn:aws:kms:us-east-1:123456789012:key/source")
        .engine("postgres")
        .snapshot_type("manual")
        .set_tag_list(Some(tag_list(tags)))
        .snapshot_create_time(aws_smithy_types_datetime())
        .build()
}

fn aws_smithy_types_datetime() -> aws_sdk_rds::primitives::DateTime {
    aws_sdk_rds::primitives::DateTime::from_secs(window().timestamp() + 60)
}

fn describe_snapshots(snapshot: DbSnapshot) -> DescribeDbSnapshotsOutput {
    DescribeDbSnapshotsOutput::builder().db_snapshots(snapshot).build()
}

fn snapshot_not_found() -> DescribeDBSnapshotsError {
    DescribeDBSnapshotsError::DbSnapshotNotFoundFault(
        DbSnapshotNotFoundFault::builder()
            .message("DBSnapshot not found")
            .meta(ErrorMetadata::builder().code("DBSnapshotNotFound").message("DBSnapshot not found").build())
            .build(),
    )
}

fn db_instance() -> DescribeDbInstancesOutput {
    DescribeDbInstancesOutput::builder()
        .db_instances(
            DbInstance::builder()
                .db_instance_identifier(DB)
                .db_instance_arn(format!("arn:aws:rds:{REGION}:123456789012:db:{DB}"))
                .db_instance_status("available")
                .engine("postgres")
                .allocated_storage(20)
                .build(),
        )
        .build()
}

fn instance_task(copy_to: Vec<CopyTarget>, verify: bool) -> (SnapshotDbInstance, TaskId) {
    let p = SnapshotDbInstance { region: REGION.into(), db_instance_id: DB.into(), ctx: backup(copy_to, verify) };
    let id = Task::SnapshotDbInstance(p.clone()).id();
    (p, id)
}

fn expected_identifier(task_id: &TaskId) -> String {
    format!("bf-{DB}-202405060200-{}", task_id.short())
}

#[tokio::test]
async fn a_creating_snapshot_parks_with_its_checkpoint_then_completes() {
    let (p, task_id) = instance_task(vec![dr_target()], true);
    let identifier = expected_identifier(&task_id);
    let ours = artifact_tags(&task_id, &p.ctx, DB, None);
    let (id, t) = (identifier.clone(), ours.clone());
    let describe = mock!(Client::describe_db_snapshots)
        .match_requests({
            let id = identifier.clone();
            move |req| req.db_snapshot_identifier() == Some(id.as_str())
        })
        .sequence()
        .error(snapshot_not_found)
        .output({
            let (id, t) = (id.clone(), t.clone());
            move || describe_snapshots(instance_snapshot(&id, "creating", 40, &t))
        })
        .output(move || describe_snapshots(instance_snapshot(&id, "available", 100, &t)))
        .build();
    let instances = mock!(Client::describe_db_instances).then_output(db_instance);
    let create = mock!(Client::create_db_snapshot)
        .match_requests({
            let (id, t) = (identifier.clone(), ours.clone());
            move |req| {
                let sent: Tags =
                    req.tags().iter().map(|t| (t.key().unwrap().to_owned(), t.value().unwrap().to_owned())).collect();
                req.db_snapshot_identifier() == Some(id.as_str())
                    && req.db_instance_identifier() == Some(DB)
                    && sent == t
            }
        })
        .then_output({
            let (id, t) = (identifier.clone(), ours.clone());
            move || CreateDbSnapshotOutput::builder().db_snapshot(instance_snapshot(&id, "creating", 0, &t)).build()
        });
    let catalog = Arc::new(MemoryCatalog::default());
    let services = services(client(&[&describe, &instances, &create]), catalog.clone()).await;

    // First run: creates the snapshot and parks, saying what it started.
    let first = services.run(&p, &context(task_id.clone(), None)).await.expect("first run");
    let Outcome::Pending { checkpoint, recheck_after } = first else { panic!("expected pending, got {first:?}") };
    assert_eq!(recheck_after, RECHECK);
    assert_eq!(checkpoint["identifier"], json!(identifier));
    assert_eq!(checkpoint["progress"], json!("0%"));

    // Re-check while still creating: parks again with the new progress, creates nothing.
    let second = services.run(&p, &context(task_id.clone(), Some(checkpoint))).await.expect("second run");
    let Outcome::Pending { checkpoint, .. } = second else { panic!("expected pending, got {second:?}") };
    assert_eq!(checkpoint["identifier"], json!(identifier));
    assert_eq!(checkpoint["progress"], json!("40%"));

    // Available: done, cataloged, copy + verify spawned.
    let third = services.run(&p, &context(task_id.clone(), Some(checkpoint))).await.expect("third run");
    let Outcome::Done { result, children, .. } = third else { panic!("expected done, got {third:?}") };
    assert_eq!(result["identifier"], json!(identifier));
    assert_eq!(create.num_calls(), 1, "the snapshot was created once");
    assert_eq!(describe.num_calls(), 3);
    let artifact = ArtifactRef { kind: ArtifactKind::RdsSnapshot, region: REGION.into(), id: identifier.clone() };
    let record = catalog.get(&artifact).await.unwrap().expect("cataloged");
    assert_eq!(record.size_bytes, Some(20 * 1024 * 1024 * 1024));
    assert_eq!(record.encrypted, Some(true));
    assert_eq!(record.task_id, task_id);
    assert_eq!(children.len(), 2, "one copy and a verification: {children:?}");
    match &children[0] {
        Task::CopyDbSnapshot(copy) => {
            assert_eq!(copy.snapshot_arn, format!("arn:aws:rds:{REGION}:123456789012:snapshot:{identifier}"));
            assert_eq!(copy.source_resource, DB);
            assert_eq!(copy.target, dr_target());
        }
        other => panic!("expected a copy, got {other:?}"),
    }
    assert!(matches!(&children[1], Task::Verify(v) if v.artifact == artifact));
}

#[tokio::test]
async fn a_creating_cluster_snapshot_parks_then_completes() {
    let p = SnapshotDbCluster { region: REGION.into(), db_cluster_id: "ledger".into(), ctx: backup(vec![], false) };
    let task_id = Task::SnapshotDbCluster(p.clone()).id();
    let identifier = format!("bf-ledger-202405060200-{}", task_id.short());
    let ours = artifact_tags(&task_id, &p.ctx, "ledger", None);
    let snapshot = {
        let (id, t) = (identifier.clone(), ours.clone());
        move |status: &str| {
            DbClusterSnapshot::builder()
                .db_cluster_snapshot_identifier(&id)
                .db_cluster_snapshot_arn(format!("arn:aws:rds:{REGION}:123456789012:cluster-snapshot:{id}"))
                .db_cluster_identifier("ledger")
                .status(status)
                .storage_encrypted(true)
                .engine("aurora-postgresql")
                .snapshot_type("manual")
                .set_tag_list(Some(tag_list(&t)))
                .build()
        }
    };
    let describe = mock!(Client::describe_db_cluster_snapshots)
        .sequence()
        .error(|| {
            DescribeDBClusterSnapshotsError::DbClusterSnapshotNotFoundFault(
                DbClusterSnapshotNotFoundFault::builder()
                    .meta(ErrorMetadata::builder().code("DBClusterSnapshotNotFoundFault").build())
                    .build(),
            )
        })
        .output({
            let snapshot = snapshot.clone();
            move || DescribeDbClusterSnapshotsOutput::builder().db_cluster_snapshots(snapshot("available")).build()
        })
        .build();
    let clusters = mock!(Client::describe_db_clusters).then_output(|| {
        DescribeDbClustersOutput::builder()
            .db_clusters(DbCluster::builder().db_cluster_identifier("ledger").engine("aurora-postgresql").build())
            .build()
    });
    let create = mock!(Client::create_db_cluster_snapshot).then_output(move || {
        CreateDbClusterSnapshotOutput::builder().db_cluster_snapshot(snapshot("creating")).build()
    });
    let catalog = Arc::new(MemoryCatalog::default());
    let services = services(client(&[&describe, &clusters, &create]), catalog.clone()).await;

    let first = services.run(&p, &context(task_id.clone(), None)).await.expect("first run");
    let Outcome::Pending { checkpoint, .. } = first else { panic!("expected pending, got {first:?}") };
    assert_eq!(checkpoint["identifier"], json!(identifier));
    assert_eq!(checkpoint["cluster"], json!(true));
    let second = services.run(&p, &context(task_id.clone(), Some(checkpoint))).await.expect("second run");
    let Outcome::Done { children, .. } = second else { panic!("expected done, got {second:?}") };
    assert!(children.is_empty());
    assert_eq!(create.num_calls(), 1);
    let artifact = ArtifactRef { kind: ArtifactKind::RdsClusterSnapshot, region: REGION.into(), id: identifier };
    assert!(catalog.get(&artifact).await.unwrap().is_some());
}

#[tokio::test]
async fn a_failed_snapshot_fails_permanently_and_is_deleted_so_a_replay_starts_fresh() {
    let (p, task_id) = instance_task(vec![dr_target()], true);
    let identifier = expected_identifier(&task_id);
    let ours = artifact_tags(&task_id, &p.ctx, DB, None);
    let describe = mock!(Client::describe_db_snapshots).then_output({
        let id = identifier.clone();
        move || describe_snapshots(instance_snapshot(&id, "failed", 10, &ours))
    });
    let delete = mock!(Client::delete_db_snapshot)
        .match_requests({
            let id = identifier.clone();
            move |req| req.db_snapshot_identifier() == Some(id.as_str())
        })
        .then_output(|| DeleteDbSnapshotOutput::builder().build());
    let catalog = Arc::new(MemoryCatalog::default());
    let services = services(client(&[&describe, &delete]), catalog.clone()).await;

    let err = services.run(&p, &context(task_id, None)).await.expect_err("a failed snapshot fails the task");
    assert_eq!(err.class, ErrorClass::Permanent, "{err}");
    assert!(err.reason.contains(&identifier) && err.reason.contains("failed"), "{err}");
    assert_eq!(delete.num_calls(), 1, "the failed snapshot was deleted");
    assert!(catalog.list(&CatalogQuery::default()).await.unwrap().is_empty(), "nothing cataloged");
}

#[tokio::test]
async fn throttling_is_a_retryable_throttled_error() {
    for code in ["ThrottlingException", "Throttling"] {
        let (p, task_id) = instance_task(vec![], false);
        let describe = mock!(Client::describe_db_snapshots).then_error(move || {
            DescribeDBSnapshotsError::generic(ErrorMetadata::builder().code(code).message("Rate exceeded").build())
        });
        let create = mock!(Client::create_db_snapshot).then_output(|| CreateDbSnapshotOutput::builder().build());
        let services = services(client(&[&describe, &create]), Arc::default()).await;

        let err = services.run(&p, &context(task_id, None)).await.expect_err("throttled");
        assert_eq!(err.class, ErrorClass::Retry(RetryClass::Throttled), "{code}: {err}");
        assert!(err.reason.contains(code), "{err}");
        assert_eq!(create.num_calls(), 0, "nothing was created while throttled");
    }
}

/// Two attempts raced: ours created the snapshot between our describe and our create.
#[tokio::test]
async fn already_exists_race_with_our_own_snapshot_succeeds_without_a_second_create() {
    let (p, task_id) = instance_task(vec![], false);
    let identifier = expected_identifier(&task_id);
    let ours = artifact_tags(&task_id, &p.ctx, DB, None);
    let describe = mock!(Client::describe_db_snapshots)
        .sequence()
        .error(snapshot_not_found)
        .output({
            let id = identifier.clone();
            move || describe_snapshots(instance_snapshot(&id, "available", 100, &ours))
        })
        .build();
    let instances = mock!(Client::describe_db_instances).then_output(db_instance);
    let create = mock!(Client::create_db_snapshot).then_error(|| {
        CreateDBSnapshotError::DbSnapshotAlreadyExistsFault(
            DbSnapshotAlreadyExistsFault::builder()
                .meta(ErrorMetadata::builder().code("DBSnapshotAlreadyExists").message("already exists").build())
                .build(),
        )
    });
    let catalog = Arc::new(MemoryCatalog::default());
    let services = services(client(&[&describe, &instances, &create]), catalog.clone()).await;

    let outcome = services.run(&p, &context(task_id, None)).await.expect("adopts its own snapshot");
    let Outcome::Done { result, .. } = outcome else { panic!("expected done, got {outcome:?}") };
    assert_eq!(result["identifier"], json!(identifier));
    assert_eq!(create.num_calls(), 1, "no second create");
    assert_eq!(describe.num_calls(), 2, "re-described after the race");
    assert_eq!(catalog.list(&CatalogQuery::default()).await.unwrap().len(), 1);
}

/// The same race, but the snapshot under our name is somebody else's: never adopted.
#[tokio::test]
async fn already_exists_race_with_a_foreign_snapshot_fails_permanently() {
    let (p, task_id) = instance_task(vec![], false);
    let identifier = expected_identifier(&task_id);
    let foreign = Tags::from([(tags::TASK_ID.to_owned(), "t-someoneelse".to_owned())]);
    let describe = mock!(Client::describe_db_snapshots)
        .sequence()
        .error(snapshot_not_found)
        .output({
            let id = identifier.clone();
            move || describe_snapshots(instance_snapshot(&id, "available", 100, &foreign))
        })
        .build();
    let instances = mock!(Client::describe_db_instances).then_output(db_instance);
    let create = mock!(Client::create_db_snapshot).then_error(|| {
        CreateDBSnapshotError::DbSnapshotAlreadyExistsFault(
            DbSnapshotAlreadyExistsFault::builder()
                .meta(ErrorMetadata::builder().code("DBSnapshotAlreadyExists").build())
                .build(),
        )
    });
    let catalog = Arc::new(MemoryCatalog::default());
    let services = services(client(&[&describe, &instances, &create]), catalog.clone()).await;

    let err = services.run(&p, &context(task_id, None)).await.expect_err("foreign snapshot");
    assert_eq!(err.class, ErrorClass::Permanent);
    assert!(err.reason.contains(&identifier) && err.reason.contains("t-someoneelse"), "{err}");
    assert!(catalog.list(&CatalogQuery::default()).await.unwrap().is_empty());
}

#[tokio::test]
async fn an_inaccessible_kms_key_on_copy_is_permanent() {
    let (snap, snap_task) = instance_task(vec![], false);
    let source_id = expected_identifier(&snap_task);
    let source_tags = artifact_tags(&snap_task, &snap.ctx, DB, None);
    let p = CopyDbSnapshot {
        source_region: REGION.into(),
        snapshot_arn: format!("arn:aws:rds:{REGION}:123456789012:snapshot:{source_id}"),
        source_resource: DB.into(),
        target: dr_target(),
        ctx: backup(vec![], true),
    };
    let task_id = Task::CopyDbSnapshot(p.clone()).id();
    let copy_id = format!("bf-copy-{DB}-202405060200-{}-{}", snap_task.short(), task_id.short());
    let copy_missing = mock!(Client::describe_db_snapshots)
        .match_requests({
            let id = copy_id.clone();
            move |req| req.db_snapshot_identifier() == Some(id.as_str())
        })
        .then_error(snapshot_not_found);
    let source = mock!(Client::describe_db_snapshots)
        .match_requests({
            let id = source_id.clone();
            move |req| req.db_snapshot_identifier() == Some(id.as_str())
        })
        .then_output({
            let id = source_id.clone();
            move || describe_snapshots(instance_snapshot(&id, "available", 100, &source_tags))
        });
    let copy = mock!(Client::copy_db_snapshot)
        .match_requests({
            let (arn, id) = (p.snapshot_arn.clone(), copy_id.clone());
            move |req| {
                req.source_db_snapshot_identifier() == Some(arn.as_str())
                    && req.target_db_snapshot_identifier() == Some(id.as_str())
                    && req.kms_key_id() == Some("alias/dr-backups")
                    && req.copy_tags() == Some(false)
            }
        })
        .then_error(|| {
            CopyDBSnapshotError::KmsKeyNotAccessibleFault(
                KmsKeyNotAccessibleFault::builder()
                    .meta(
                        ErrorMetadata::builder()
                            .code("KMSKeyNotAccessibleFault")
                            .message("The specified KMS key is disabled")
                            .build(),
                    )
                    .build(),
            )
        });
    let catalog = Arc::new(MemoryCatalog::default());
    let services = services(client(&[&copy_missing, &source, &copy]), catalog.clone()).await;

    let err = services.copy_db_snapshot(&p, false, &context(task_id, None)).await.expect_err("unusable key");
    assert_eq!(err.class, ErrorClass::Permanent, "{err}");
    assert!(err.reason.contains("alias/dr-backups") && err.reason.contains("KMSKeyNotAccessibleFault"), "{err}");
    assert_eq!(copy.num_calls(), 1, "the copy was attempted once, with the plan's key");
    assert!(catalog.list(&CatalogQuery::default()).await.unwrap().is_empty());
}
