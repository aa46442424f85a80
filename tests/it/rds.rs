//! RDS backups against the emulator: an instance or Aurora cluster snapshot is made once under
//! its deterministic name, tagged and catalogued; a re-delivery makes nothing new; a foreign
//! snapshot squatting on the name is refused, not adopted; copies land in the DR region with the
//! plan's key and are catalogued on both sides; missing sources fail permanently. (moto makes
//! snapshots `available` at once: the pending paths are in `worker/tests/rds_mocks.rs`.)

use aws_sdk_rds::types::Tag;
use backup_core::artifacts::CatalogRecord;
use backup_core::ports::Catalog;
use backup_core::services::database::{DatabaseSnapshots, DbSnapshotInfo};
use backup_core::ErrorClass;
use backup_schemas::*;
use backup_tests::{run_task, services, Fleet, DR_REGION, REGION};
use backup_worker::handlers::rds::{copy_identifier, snapshot_identifier};
use backup_worker::{Handlers, Outcome};
use chrono::{Duration as ChronoDuration, TimeZone, Utc};
use std::sync::Arc;

/// moto creates the AWS-managed keys (`alias/aws/<service>`) of a region on first use; the
/// harness has no KMS client, so the plan's key is one of those, and a different one from the
/// default `alias/aws/rds` so the test can tell the plan's key was used.
const PLAN_KEY: &str = "alias/aws/ebs";

fn window() -> chrono::DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 20, 2, 0, 0).unwrap()
}

fn ctx(copy_to: Vec<CopyTarget>) -> BackupContext {
    BackupContext {
        plan: "nightly".into(),
        tier: Tier::Daily,
        window: window(),
        expires_at: Some(window() + ChronoDuration::days(7)),
        copy_to,
        verify: true,
        retain: None,
        export: None,
    }
}

fn dr(kms_key: Option<&str>) -> CopyTarget {
    CopyTarget {
        region: DR_REGION.into(),
        kms_key: kms_key.map(str::to_owned),
        retain_days: Some(30),
        ..Default::default()
    }
}

/// A DB identifier unique to this test (the fleet prefix is random per test).
fn db_name(fleet: &Fleet, suffix: &str) -> String {
    format!("{}-{suffix}", fleet.prefix).to_lowercase()
}

async fn create_instance(fleet: &Fleet, id: &str) {
    fleet
        .aws
        .clients()
        .rds
        .create_db_instance()
        .db_instance_identifier(id)
        .engine("postgres")
        .db_instance_class("db.t3.micro")
        .allocated_storage(20)
        .master_username("backup")
        .master_user_password("not-a-secret-123")
        .send()
        .await
        .expect("create DB instance");
}

async fn create_cluster(fleet: &Fleet, id: &str) {
    let rds = fleet.aws.clients().rds;
    rds.create_db_cluster()
        .db_cluster_identifier(id)
        .engine("aurora-postgresql")
        .master_username("backup")
        .master_user_password("not-a-secret-123")
        .send()
        .await
        .expect("create DB cluster");
    rds.create_db_instance()
        .db_instance_identifier(format!("{id}-1"))
        .db_cluster_identifier(id)
        .engine("aurora-postgresql")
        .db_instance_class("db.r6g.large")
        .send()
        .await
        .expect("create cluster member");
}

fn snapshot_task(cluster: bool, db: &str, copy_to: Vec<CopyTarget>) -> Task {
    if cluster {
        Task::SnapshotDbCluster(SnapshotDbCluster {
            region: REGION.into(),
            db_cluster_id: db.into(),
            ctx: ctx(copy_to),
        })
    } else {
        Task::SnapshotDbInstance(SnapshotDbInstance {
            region: REGION.into(),
            db_instance_id: db.into(),
            ctx: ctx(copy_to),
        })
    }
}

fn kind(cluster: bool) -> ArtifactKind {
    if cluster {
        ArtifactKind::RdsClusterSnapshot
    } else {
        ArtifactKind::RdsSnapshot
    }
}

struct Rig {
    fleet: Fleet,
    handlers: Arc<Handlers>,
    databases: Arc<dyn DatabaseSnapshots>,
    catalog: Arc<dyn Catalog>,
}

async fn rig(name: &str) -> Rig {
    let fleet = Fleet::realistic(name).await;
    let services = services(&fleet);
    let (databases, catalog) = (services.databases.clone(), services.catalog.clone());
    Rig { handlers: Arc::new(Handlers::with_services(services)), fleet, databases, catalog }
}

impl Rig {
    async fn record(&self, cluster: bool, region: &str, id: &str) -> Option<CatalogRecord> {
        let artifact = ArtifactRef { kind: kind(cluster), region: region.into(), id: id.into() };
        self.catalog.get(&artifact).await.expect("catalog get")
    }

    /// Best effort: the emulator is shared and keeps state (and moto caps snapshots per region).
    async fn clean_up(&self, cluster: bool, db: &str, copies: &[&DbSnapshotInfo]) {
        for snapshot in self.databases.snapshots_of(REGION, cluster, db).await.unwrap_or_default() {
            let _ = self.databases.delete_snapshot(REGION, cluster, &snapshot.identifier).await;
        }
        for copy in copies {
            let _ = self.databases.delete_snapshot(&copy.region, cluster, &copy.identifier).await;
        }
        if cluster {
            let _ = self.databases.delete_instance(REGION, &format!("{db}-1")).await;
            let _ = self.databases.delete_cluster(REGION, db).await;
        } else {
            let _ = self.databases.delete_instance(REGION, db).await;
        }
    }
}

fn assert_tags(snapshot: &DbSnapshotInfo, task: &Task, source: &str, expires: &str) {
    let task_id = task.id();
    let expected = [
        (tags::MANAGED, "true"),
        (tags::TASK_ID, task_id.as_str()),
        (tags::PLAN, "nightly"),
        (tags::SOURCE, source),
        (tags::TIER, "daily"),
        (tags::EXPIRES_AT, expires),
    ];
    for (key, value) in expected {
        assert_eq!(snapshot.tags.get(key).map(String::as_str), Some(value), "tag {key} of {}", snapshot.identifier);
    }
}

/// One snapshot, the right name, tags and record; a re-delivery returns the same snapshot and
/// spawns the same children; the children are exactly the copy and the verification.
async fn snapshot_made_once(cluster: bool) {
    let rig = rig(if cluster { "rdsclu" } else { "rdsins" }).await;
    let db = db_name(&rig.fleet, "db");
    if cluster {
        create_cluster(&rig.fleet, &db).await;
    } else {
        create_instance(&rig.fleet, &db).await;
    }
    let task = snapshot_task(cluster, &db, vec![dr(Some(PLAN_KEY))]);
    let identifier = snapshot_identifier(&db, window(), &task.id(), cluster);
    assert_eq!(identifier, format!("bf-{db}-202611200200-{}", task.id().short()));

    let outcome = run_task(&rig.handlers, &task).await.expect("snapshot succeeds");
    let Outcome::Done { result, children, .. } = outcome else { panic!("moto snapshots are available at once") };
    assert_eq!(result["identifier"], identifier.as_str());

    let snapshots = rig.databases.snapshots_of(REGION, cluster, &db).await.unwrap();
    assert_eq!(snapshots.len(), 1, "exactly one manual snapshot: {snapshots:#?}");
    let snapshot = &snapshots[0];
    assert_eq!(snapshot.identifier, identifier);
    assert_eq!(snapshot.source_id, db);
    assert_eq!(snapshot.cluster, cluster);
    assert!(snapshot.status.is_complete());
    assert_tags(snapshot, &task, &db, "2026-11-27T02:00:00Z");
    let tagged = rig.databases.snapshots_tagged(REGION, cluster, tags::TASK_ID, task.id().as_str()).await.unwrap();
    assert_eq!(tagged.iter().map(|s| &s.identifier).collect::<Vec<_>>(), vec![&identifier]);

    let record = rig.record(cluster, REGION, &identifier).await.expect("catalogued");
    assert_eq!(record.resource, db);
    assert_eq!(record.resource_region, REGION);
    assert_eq!(record.plan, "nightly");
    assert_eq!(record.tier, "daily");
    assert_eq!(record.task_id, task.id());
    assert_eq!(record.expires_at, Some(window() + ChronoDuration::days(7)));
    assert_eq!(record.encrypted, Some(false), "moto's databases are unencrypted");
    // Aurora reports no meaningful allocated size; an instance's is its storage.
    assert_eq!(record.size_bytes, if cluster { None } else { Some(20 * 1024 * 1024 * 1024) });
    assert_eq!(record.details.get("arn"), Some(&snapshot.arn));

    let artifact = ArtifactRef { kind: kind(cluster), region: REGION.into(), id: identifier.clone() };
    let copy = CopyDbSnapshot {
        source_region: REGION.into(),
        snapshot_arn: snapshot.arn.clone(),
        source_resource: db.clone(),
        target: dr(Some(PLAN_KEY)),
        ctx: ctx(vec![dr(Some(PLAN_KEY))]),
    };
    let expected_children = vec![
        if cluster { Task::CopyDbClusterSnapshot(copy) } else { Task::CopyDbSnapshot(copy) },
        Task::Verify(Verify {
            artifact,
            source_resource: db.clone(),
            origin: Some(VerifyOrigin { resource_region: REGION.into(), copy: false }),
        }),
    ];
    assert_eq!(children, expected_children);

    // Re-delivery: the same snapshot, nothing new, the same follow-ups (their ids dedupe).
    let again = run_task(&rig.handlers, &task).await.expect("re-run succeeds");
    let Outcome::Done { result, children, .. } = again else { panic!("re-run is done") };
    assert_eq!(result["identifier"], identifier.as_str());
    assert_eq!(children, expected_children);
    assert_eq!(rig.databases.snapshots_of(REGION, cluster, &db).await.unwrap().len(), 1, "nothing new");

    rig.clean_up(cluster, &db, &[]).await;
}

#[tokio::test]
async fn instance_snapshot_is_made_once_tagged_catalogued_and_fans_out() {
    snapshot_made_once(false).await;
}

#[tokio::test]
async fn cluster_snapshot_is_made_once_tagged_catalogued_and_fans_out() {
    snapshot_made_once(true).await;
}

/// The cross-region copy lands in the DR region under its own deterministic name, with the
/// copy's tags and the plan's key; both catalog records link up; a re-run copies nothing again.
async fn copy_lands_in_dr(cluster: bool) {
    let rig = rig(if cluster { "rdscpc" } else { "rdscpi" }).await;
    let db = db_name(&rig.fleet, "db");
    if cluster {
        create_cluster(&rig.fleet, &db).await;
    } else {
        create_instance(&rig.fleet, &db).await;
    }
    let task = snapshot_task(cluster, &db, vec![dr(Some(PLAN_KEY))]);
    let Ok(Outcome::Done { children, .. }) = run_task(&rig.handlers, &task).await else { panic!("snapshot") };
    let source_identifier = snapshot_identifier(&db, window(), &task.id(), cluster);
    let copy_task = children.into_iter().next().expect("a copy task");
    let copy_identifier = copy_identifier(&source_identifier, &copy_task.id(), cluster);

    let outcome = run_task(&rig.handlers, &copy_task).await.expect("copy succeeds");
    let Outcome::Done { result, children, .. } = outcome else { panic!("moto copies are available at once") };
    assert_eq!(result["identifier"], copy_identifier.as_str());
    assert_eq!(result["region"], DR_REGION);

    let copy = rig.databases.snapshot(DR_REGION, cluster, &copy_identifier).await.unwrap().expect("copy in DR");
    assert!(copy.arn.contains(&format!(":{DR_REGION}:")), "{}", copy.arn);
    assert!(copy.encrypted, "copies are encrypted");
    let key = copy.kms_key.clone().expect("the copy names its key");
    assert!(key.starts_with(&format!("arn:aws:kms:{DR_REGION}:")), "a key of the DR region: {key}");
    // Copy with the default key too, to prove the plan's key was the one passed.
    let default_copy = rig
        .databases
        .copy_snapshot(
            cluster,
            REGION,
            &copy_source_arn(&copy_task),
            DR_REGION,
            &format!("{copy_identifier}-d"),
            Some("alias/aws/rds"),
            &Default::default(),
        )
        .await
        .expect("copy with the default key");
    assert_ne!(
        default_copy.kms_key.as_deref(),
        Some(key.as_str()),
        "the plan's key, not the default, encrypted the copy"
    );
    assert_tags(&copy, &copy_task, &db, "2026-12-20T02:00:00Z");
    assert_eq!(copy.tags.get(tags::SOURCE_REGION).map(String::as_str), Some(REGION));
    assert_eq!(copy.tags.get(tags::COPIED_FROM), Some(&source_identifier));

    let source_ref = ArtifactRef { kind: kind(cluster), region: REGION.into(), id: source_identifier.clone() };
    let copy_ref = ArtifactRef { kind: kind(cluster), region: DR_REGION.into(), id: copy_identifier.clone() };
    let copy_record = rig.record(cluster, DR_REGION, &copy_identifier).await.expect("copy catalogued");
    assert_eq!(copy_record.copy_of, Some(source_ref.clone()));
    assert_eq!(copy_record.resource, db);
    assert_eq!(copy_record.task_id, copy_task.id());
    assert_eq!(copy_record.encrypted, Some(true));
    assert_eq!(copy_record.expires_at, Some(window() + ChronoDuration::days(30)));
    let source_record = rig.record(cluster, REGION, &source_identifier).await.expect("source catalogued");
    assert_eq!(source_record.copies, vec![copy_ref.clone()]);
    // The copy's verification knows it is a copy of a backup of a database in the source region.
    let origin = Some(VerifyOrigin { resource_region: REGION.into(), copy: true });
    assert_eq!(children, vec![Task::Verify(Verify { artifact: copy_ref, source_resource: db.clone(), origin })]);

    // Re-delivery of the copy: the same copy, no second one, the source lists it once.
    let again = run_task(&rig.handlers, &copy_task).await.expect("copy re-run");
    let Outcome::Done { result, .. } = again else { panic!("re-run is done") };
    assert_eq!(result["identifier"], copy_identifier.as_str());
    let copies =
        rig.databases.snapshots_tagged(DR_REGION, cluster, tags::TASK_ID, copy_task.id().as_str()).await.unwrap();
    assert_eq!(copies.len(), 1, "one copy: {copies:#?}");
    let source_record = rig.record(cluster, REGION, &source_identifier).await.unwrap();
    assert_eq!(source_record.copies.len(), 1);

    rig.clean_up(cluster, &db, &[&copy, &default_copy]).await;
}

fn copy_source_arn(task: &Task) -> String {
    match task {
        Task::CopyDbSnapshot(p) | Task::CopyDbClusterSnapshot(p) => p.snapshot_arn.clone(),
        other => panic!("not an RDS copy: {other:?}"),
    }
}

#[tokio::test]
async fn instance_snapshot_copy_lands_in_dr_with_tags_key_and_catalog_links() {
    copy_lands_in_dr(false).await;
}

#[tokio::test]
async fn cluster_snapshot_copy_lands_in_dr_with_tags_key_and_catalog_links() {
    copy_lands_in_dr(true).await;
}

#[tokio::test]
async fn a_foreign_snapshot_under_the_deterministic_name_is_refused_not_adopted() {
    let rig = rig("rdsforeign").await;
    let rds = rig.fleet.aws.clients().rds;
    let foreign = Tag::builder().key("owner").value("someone-else").build();
    for cluster in [false, true] {
        let db = db_name(&rig.fleet, if cluster { "c" } else { "i" });
        let task = snapshot_task(cluster, &db, vec![]);
        let identifier = snapshot_identifier(&db, window(), &task.id(), cluster);
        if cluster {
            create_cluster(&rig.fleet, &db).await;
            rds.create_db_cluster_snapshot()
                .db_cluster_identifier(&db)
                .db_cluster_snapshot_identifier(&identifier)
                .tags(foreign.clone())
                .send()
                .await
                .expect("foreign cluster snapshot");
        } else {
            create_instance(&rig.fleet, &db).await;
            rds.create_db_snapshot()
                .db_instance_identifier(&db)
                .db_snapshot_identifier(&identifier)
                .tags(foreign.clone())
                .send()
                .await
                .expect("foreign snapshot");
        }

        let err = run_task(&rig.handlers, &task).await.expect_err("a foreign snapshot is not ours");
        assert_eq!(err.class, ErrorClass::Permanent, "{err}");
        assert!(err.reason.contains(&identifier) && err.reason.contains("not made by this task"), "{err}");
        let snapshot = rig.databases.snapshot(REGION, cluster, &identifier).await.unwrap().expect("still there");
        assert_eq!(snapshot.tags.get("owner").map(String::as_str), Some("someone-else"), "left untouched");
        assert!(!snapshot.tags.contains_key(tags::TASK_ID), "not re-tagged as ours");
        assert!(rig.record(cluster, REGION, &identifier).await.is_none(), "not catalogued");
        assert_eq!(rig.databases.snapshots_of(REGION, cluster, &db).await.unwrap().len(), 1, "no second snapshot");
        rig.clean_up(cluster, &db, &[]).await;
    }
}

#[tokio::test]
async fn a_missing_database_fails_permanently_with_a_clear_reason() {
    let rig = rig("rdsmissing").await;
    for (cluster, noun) in [(false, "DB instance"), (true, "DB cluster")] {
        let db = db_name(&rig.fleet, "gone");
        let err = run_task(&rig.handlers, &snapshot_task(cluster, &db, vec![])).await.expect_err("missing DB");
        assert_eq!(err.class, ErrorClass::Permanent, "{err}");
        assert_eq!(err.reason, format!("{noun} {db} does not exist in {REGION}"));
        assert!(rig.databases.snapshots_of(REGION, cluster, &db).await.unwrap().is_empty());
    }
}

#[tokio::test]
async fn an_aurora_member_instance_is_refused_in_favour_of_its_cluster() {
    let rig = rig("rdsmember").await;
    let cluster = db_name(&rig.fleet, "c");
    create_cluster(&rig.fleet, &cluster).await;
    let member = format!("{cluster}-1");
    let err = run_task(&rig.handlers, &snapshot_task(false, &member, vec![])).await.expect_err("member");
    assert_eq!(err.class, ErrorClass::Permanent, "{err}");
    assert!(err.reason.contains(&cluster) && err.reason.contains("rds.snapshot_cluster"), "{err}");
    assert!(rig.databases.snapshots_of(REGION, false, &member).await.unwrap().is_empty());
    rig.clean_up(true, &cluster, &[]).await;
}

#[tokio::test]
async fn a_copy_with_an_unusable_key_or_a_missing_source_fails_permanently_and_makes_nothing() {
    let rig = rig("rdscopyfail").await;
    let db = db_name(&rig.fleet, "db");
    create_instance(&rig.fleet, &db).await;
    let task = snapshot_task(false, &db, vec![]);
    run_task(&rig.handlers, &task).await.expect("snapshot");
    let source_identifier = snapshot_identifier(&db, window(), &task.id(), false);
    let source_arn = rig.databases.snapshot(REGION, false, &source_identifier).await.unwrap().unwrap().arn;
    let copy = |arn: &str, key: &str| {
        Task::CopyDbSnapshot(CopyDbSnapshot {
            source_region: REGION.into(),
            snapshot_arn: arn.to_owned(),
            source_resource: db.clone(),
            target: dr(Some(key)),
            ctx: ctx(vec![]),
        })
    };

    // A key of the source region cannot encrypt a copy in the DR region.
    let wrong_key = "arn:aws:kms:us-east-1:123456789012:key/00000000-0000-0000-0000-000000000000";
    let task = copy(&source_arn, wrong_key);
    let err = run_task(&rig.handlers, &task).await.expect_err("unusable key");
    assert_eq!(err.class, ErrorClass::Permanent, "{err}");
    assert!(err.reason.contains(wrong_key) && err.reason.contains("KMSKeyNotAccessibleFault"), "{err}");
    let name = copy_identifier(&source_identifier, &task.id(), false);
    assert!(rig.databases.snapshot(DR_REGION, false, &name).await.unwrap().is_none(), "no copy made");

    // A source snapshot that does not exist.
    let missing_arn = format!("{source_arn}-gone");
    let err = run_task(&rig.handlers, &copy(&missing_arn, PLAN_KEY)).await.expect_err("missing source");
    assert_eq!(err.class, ErrorClass::Permanent, "{err}");
    assert_eq!(err.reason, format!("DB snapshot {source_identifier}-gone does not exist in {REGION}"));

    rig.clean_up(false, &db, &[]).await;
}

/// A plan that exports its snapshots: after the snapshot completes, the export runs as a parked
/// task (the realism layer keeps it STARTING / IN_PROGRESS for a while), is catalogued with its
/// own expiry and verified (RDS's files under its prefix); the resource's prune deletes it, files
/// and all, once that expiry has passed, and not before.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_snapshot_export_is_parked_catalogued_verified_and_deleted_at_its_own_expiry() {
    let rig = rig("export").await;
    let db = db_name(&rig.fleet, "exp");
    create_instance(&rig.fleet, &db).await;
    let bucket = format!("{}-exports", rig.fleet.prefix).to_lowercase();
    let s3 = rig.fleet.aws.clients().s3;
    s3.create_bucket().bucket(&bucket).send().await.expect("create bucket");
    let mut backup = ctx(Vec::new());
    backup.verify = true;
    backup.retain = Some(RetentionRules { days: Some(7), ..RetentionRules::default() });
    backup.export = Some(SnapshotExport {
        bucket: bucket.clone(),
        prefix: None,
        iam_role_arn: "arn:aws:iam::123456789012:role/backup-fleet-rds-export".into(),
        kms_key: "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab".into(),
        retain_days: Some(30),
    });
    let task =
        Task::SnapshotDbInstance(SnapshotDbInstance { region: REGION.into(), db_instance_id: db.clone(), ctx: backup });
    let ran = backup_tests::run_tree(&rig.handlers, task).await;
    for (task, outcome) in &ran {
        assert!(matches!(outcome, Ok(Outcome::Done { .. })), "{} did not succeed: {outcome:?}", task.kind());
    }
    let export_task =
        ran.iter().find(|(t, _)| t.kind() == TaskKind::ExportSnapshot).expect("an export follows the snapshot");
    let identifier = backup_worker::handlers::export::export_identifier(&export_task.0.id());
    let export = rig.databases.export(REGION, &identifier).await.unwrap().expect("the export exists");
    assert!(export.status.is_complete(), "{export:?}");
    let artifact = ArtifactRef { kind: ArtifactKind::SnapshotExport, region: REGION.into(), id: identifier.clone() };
    let record = rig.catalog.get(&artifact).await.unwrap().expect("the export is catalogued");
    assert_eq!(record.resource, db);
    assert_eq!(
        record.expires_at,
        Some(window() + ChronoDuration::days(30)),
        "its own expiry, not the snapshot's 7 days"
    );
    assert!(record.verification.as_ref().is_some_and(|v| v.ok), "verified: {:?}", record.verification);
    let prefix = record.details.get("prefix").cloned().expect("prefix");
    assert_eq!(prefix, format!("_rds-exports/{identifier}/"));
    let listed = s3.list_objects_v2().bucket(&bucket).prefix(&prefix).send().await.unwrap();
    assert!(listed.key_count().unwrap_or(0) > 0, "RDS's files are under the prefix");

    // A prune within the export's life leaves it; one after its expiry deletes it whole.
    let prune = |as_of| {
        Task::Prune(Prune {
            plan: "nightly".into(),
            resource: db.clone(),
            resource_type: ResourceType::RdsInstance,
            region: REGION.into(),
            rules: RetentionRules { days: Some(7), ..RetentionRules::default() },
            as_of,
            source_account: None,
        })
    };
    let early = backup_tests::run_tree(&rig.handlers, prune(window() + ChronoDuration::days(29))).await;
    assert!(early.iter().all(|(t, _)| t.kind() != TaskKind::DeleteArtifact
        || !matches!(&t, Task::DeleteArtifact(d) if d.artifact == artifact)));
    assert!(rig.catalog.get(&artifact).await.unwrap().unwrap().deleted_at.is_none());
    let late = backup_tests::run_tree(&rig.handlers, prune(window() + ChronoDuration::days(31))).await;
    let deletion = late
        .iter()
        .find(|(t, _)| matches!(t, Task::DeleteArtifact(d) if d.artifact == artifact))
        .expect("the expired export is deleted");
    let Ok(Outcome::Done { result, .. }) = &deletion.1 else { panic!("deletion failed: {:?}", deletion.1) };
    assert_eq!(result["deleted"], true, "{result}");
    assert!(rig.catalog.get(&artifact).await.unwrap().unwrap().deleted_at.is_some());
    let listed = s3.list_object_versions().bucket(&bucket).prefix(&prefix).send().await.unwrap();
    assert!(listed.versions().is_empty(), "every file of the export is gone");
    rig.clean_up(false, &db, &[]).await;
}
