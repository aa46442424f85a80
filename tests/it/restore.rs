//! Restores, drills and recovery reports against the emulator: every restore kind produces its
//! resource from the right backup (tagged with where it came from, the snapshot's size, S3 bytes
//! as of the asked time); a restore started twice makes one resource (handlers run twice, and
//! `backupctl restore --wait` twice against a real worker); a DR copy restores with the source
//! region's backup gone; drills validate, record and clean up, also after a forced validation
//! failure; `backupctl report rpo` flags a resource whose backups stopped (exit 3) and `report
//! drills` shows the drills.

use aws_sdk_ec2::types::{Tag as Ec2Tag, TagSpecification};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{BucketVersioningStatus, VersioningConfiguration};
use backup_core::artifacts::{CatalogRecord, Verification};
use backup_schemas::*;
use backup_tests::{policy_file, run_binary, run_task, run_tree, services, Fleet, DR_REGION, REGION};
use backup_worker::{Handlers, Outcome};
use chrono::{Duration as ChronoDuration, TimeZone, Utc};
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;

const GIB: u64 = 1024 * 1024 * 1024;

fn ctx(plan: &str, day: u32, copy_to: Vec<CopyTarget>) -> BackupContext {
    let window = Utc.with_ymd_and_hms(2026, 11, day, 2, 0, 0).unwrap();
    BackupContext {
        plan: plan.into(),
        tier: Tier::Daily,
        window,
        expires_at: Some(window + ChronoDuration::days(7)),
        copy_to,
        verify: false,
        retain: None,
        export: None,
    }
}

fn handlers(fleet: &Fleet) -> Arc<Handlers> {
    Arc::new(Handlers::with_services(services(fleet)))
}

/// Runs a task as the runtime would across re-checks and retries (the harness's `run_task`);
/// returns the final result.
async fn run_until_done(handlers: &Arc<Handlers>, task: &Task) -> Result<Value, backup_core::TaskError> {
    match run_task(handlers, task).await? {
        Outcome::Done { result, .. } => Ok(result),
        pending => panic!("{} did not finish: {pending:?}", task.kind()),
    }
}

fn done(outcome: Result<Outcome, backup_core::TaskError>, what: &str) -> Value {
    match outcome {
        Ok(Outcome::Done { result, .. }) => result,
        other => panic!("{what} did not finish: {other:?}"),
    }
}

async fn volume(fleet: &Fleet, size: i32) -> String {
    let out = fleet
        .aws
        .clients()
        .ec2
        .create_volume()
        .availability_zone("us-east-1a")
        .size(size)
        .tag_specifications(
            TagSpecification::builder()
                .resource_type(aws_sdk_ec2::types::ResourceType::Volume)
                .tags(Ec2Tag::builder().key("backup").value(&fleet.prefix).build())
                .build(),
        )
        .send()
        .await
        .unwrap();
    out.volume_id.unwrap()
}

/// Backs up a volume (and copies it when `copy_to` says so); returns the snapshot id.
async fn snapshot(handlers: &Arc<Handlers>, volume_id: &str, day: u32, copy_to: Vec<CopyTarget>) -> String {
    let task = Task::SnapshotVolume(SnapshotVolume {
        region: REGION.into(),
        volume_id: volume_id.into(),
        ctx: ctx("daily", day, copy_to),
    });
    let mut snapshot_id = None;
    for (task, outcome) in run_tree(handlers, task).await {
        let result = done(outcome, task.kind().as_str());
        if task.kind() == TaskKind::SnapshotVolume {
            snapshot_id = result["snapshot_id"].as_str().map(str::to_owned);
        }
    }
    snapshot_id.expect("the snapshot task ran")
}

#[tokio::test]
async fn volume_restore_takes_the_latest_backup_once_with_its_size_and_origin() {
    let fleet = Fleet::realistic("rsvol").await;
    let handlers = handlers(&fleet);
    let block = services(&fleet).block;
    let volume_id = volume(&fleet, 12).await;
    let older = snapshot(&handlers, &volume_id, 10, vec![]).await;
    // Catalog times are AWS's snapshot start times (one-second resolution in moto): keep them apart.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let newest = snapshot(&handlers, &volume_id, 11, vec![]).await;
    assert_ne!(older, newest);

    let task = Task::RestoreVolume(RestoreVolume {
        restore_id: format!("{}-vol", fleet.prefix),
        source: RestoreSource::LatestOf { resource: volume_id.clone(), region: REGION.into() },
        availability_zone: "us-east-1b".into(),
        volume_type: Some("gp3".into()),
        kms_key: None,
        drill: false,
    });
    let result = run_until_done(&handlers, &task).await.expect("restore succeeds");
    let restored_id = result["volume_id"].as_str().unwrap().to_owned();
    let restored = block.volume(REGION, &restored_id).await.unwrap().expect("the volume exists");
    assert_eq!(restored.size_gib, 12, "the snapshot's size");
    assert_eq!(restored.availability_zone.as_deref(), Some("us-east-1b"));
    assert_eq!(restored.volume_type.as_deref(), Some("gp3"));
    assert_eq!(restored.tags.get(tags::RESTORED_FROM), Some(&newest), "restored from the newest backup");
    assert_eq!(restored.tags.get(tags::TASK_ID).map(String::as_str), Some(task.id().as_str()));
    assert_eq!(restored.tags.get(tags::MANAGED).map(String::as_str), Some("true"));
    assert!(!restored.tags.contains_key(tags::RESTORE_DRILL));

    // Started again (a duplicate delivery, a retried command): the same volume, nothing new.
    let again = run_until_done(&handlers, &task).await.unwrap();
    assert_eq!(again["volume_id"].as_str(), Some(restored_id.as_str()));
    let tagged = block.volumes_tagged(REGION, tags::TASK_ID, task.id().as_str()).await.unwrap();
    assert_eq!(tagged.len(), 1, "one volume per restore: {tagged:?}");

    // By id: the older backup.
    let by_id = Task::RestoreVolume(RestoreVolume {
        restore_id: format!("{}-vol-old", fleet.prefix),
        source: RestoreSource::Artifact(ArtifactRef {
            kind: ArtifactKind::EbsSnapshot,
            region: REGION.into(),
            id: older.clone(),
        }),
        availability_zone: "us-east-1a".into(),
        volume_type: None,
        kms_key: None,
        drill: false,
    });
    let result = run_until_done(&handlers, &by_id).await.unwrap();
    assert_eq!(result["restored_from"].as_str(), Some(older.as_str()));
    assert_eq!(result["size_gib"], 12);

    // A backup that failed verification is not "good": the latest good one is the older.
    let catalog = services(&fleet).catalog;
    let artifact = ArtifactRef { kind: ArtifactKind::EbsSnapshot, region: REGION.into(), id: newest.clone() };
    let failed = Verification { verified_at: Utc::now(), ok: false, checks: Default::default() };
    catalog.set_verification(&artifact, &failed).await.unwrap();
    let latest_good = Task::RestoreVolume(RestoreVolume {
        restore_id: format!("{}-vol-good", fleet.prefix),
        source: RestoreSource::LatestOf { resource: volume_id.clone(), region: REGION.into() },
        availability_zone: "us-east-1a".into(),
        volume_type: None,
        kms_key: None,
        drill: false,
    });
    let result = run_until_done(&handlers, &latest_good).await.unwrap();
    assert_eq!(result["restored_from"].as_str(), Some(older.as_str()), "the failed backup is skipped");

    // Nothing to restore from: a permanent failure with a reason.
    let nothing = Task::RestoreVolume(RestoreVolume {
        restore_id: format!("{}-vol-none", fleet.prefix),
        source: RestoreSource::LatestOf { resource: "vol-00000000000000000".into(), region: REGION.into() },
        availability_zone: "us-east-1a".into(),
        volume_type: None,
        kms_key: None,
        drill: false,
    });
    let err = run_task(&handlers, &nothing).await.unwrap_err();
    assert_eq!(err.class, backup_core::ErrorClass::Permanent);
    assert!(err.reason.contains("no usable backup"), "{}", err.reason);
}

#[tokio::test]
async fn dr_copy_restores_with_the_source_region_gone() {
    let fleet = Fleet::realistic("rsdr").await;
    let handlers = handlers(&fleet);
    let block = services(&fleet).block;
    let catalog = services(&fleet).catalog;
    let volume_id = volume(&fleet, 6).await;
    let target = CopyTarget { region: DR_REGION.into(), kms_key: None, retain_days: Some(30), ..Default::default() };
    let source = snapshot(&handlers, &volume_id, 12, vec![target]).await;
    let copies = block.snapshots_tagged(DR_REGION, tags::COPIED_FROM, &source).await.unwrap();
    assert_eq!(copies.len(), 1);
    let copy_id = copies[0].id.clone();

    // The source region loses its backup (and the volume): only the DR copy is left.
    block.delete_snapshot(REGION, &source).await.unwrap();
    catalog
        .mark_deleted(
            &ArtifactRef { kind: ArtifactKind::EbsSnapshot, region: REGION.into(), id: source.clone() },
            Utc::now(),
        )
        .await
        .unwrap();
    fleet.aws.clients().ec2.delete_volume().volume_id(&volume_id).send().await.unwrap();

    let from_source = Task::RestoreVolume(RestoreVolume {
        restore_id: format!("{}-src", fleet.prefix),
        source: RestoreSource::LatestOf { resource: volume_id.clone(), region: REGION.into() },
        availability_zone: "us-east-1a".into(),
        volume_type: None,
        kms_key: None,
        drill: false,
    });
    assert!(run_task(&handlers, &from_source).await.is_err(), "nothing left in the source region");

    let task = Task::RestoreVolume(RestoreVolume {
        restore_id: format!("{}-dr", fleet.prefix),
        source: RestoreSource::LatestOf { resource: volume_id.clone(), region: DR_REGION.into() },
        availability_zone: "us-west-2a".into(),
        volume_type: None,
        kms_key: None,
        drill: false,
    });
    let result = run_until_done(&handlers, &task).await.expect("restore from the DR copy");
    assert_eq!(result["region"], DR_REGION);
    assert_eq!(result["restored_from"].as_str(), Some(copy_id.as_str()));
    let restored = block.volume(DR_REGION, result["volume_id"].as_str().unwrap()).await.unwrap().unwrap();
    assert_eq!(restored.size_gib, 6);
    assert_eq!(restored.availability_zone.as_deref(), Some("us-west-2a"));
    assert!(block.volumes_tagged(REGION, tags::TASK_ID, task.id().as_str()).await.unwrap().is_empty());
}

#[tokio::test]
async fn instance_restore_from_an_ami_is_stopped_tagged_and_made_once() {
    let fleet = Fleet::realistic("rsami").await;
    let handlers = handlers(&fleet);
    let block = services(&fleet).block;
    let ec2 = fleet.aws.clients().ec2;
    let launched = ec2.run_instances().image_id("ami-12345678").min_count(1).max_count(1).send().await.unwrap();
    let instance_id = launched.instances()[0].instance_id().unwrap().to_owned();
    let ami = Task::CreateAmi(CreateAmi {
        region: REGION.into(),
        instance_id: instance_id.clone(),
        reboot: false,
        ctx: ctx("weekly", 13, vec![]),
    });
    let image_id = done(run_task(&handlers, &ami).await, "ami")["image_id"].as_str().unwrap().to_owned();

    let task = Task::RestoreInstance(RestoreInstance {
        restore_id: format!("{}-ami", fleet.prefix),
        source: RestoreSource::LatestOf { resource: instance_id.clone(), region: REGION.into() },
        instance_type: "t3.small".into(),
        subnet_id: None,
        start: false,
        drill: false,
    });
    let result = run_until_done(&handlers, &task).await.expect("instance restore");
    let restored_id = result["instance_id"].as_str().unwrap().to_owned();
    assert_ne!(restored_id, instance_id);
    let restored = block.instance(REGION, &restored_id).await.unwrap().unwrap();
    assert_eq!(restored.state.as_deref(), Some("stopped"), "stopped by default");
    assert_eq!(restored.instance_type.as_deref(), Some("t3.small"));
    assert_eq!(restored.tags.get(tags::RESTORED_FROM), Some(&image_id));
    run_until_done(&handlers, &task).await.unwrap();
    assert_eq!(
        block.instances_tagged(REGION, tags::TASK_ID, task.id().as_str()).await.unwrap().len(),
        1,
        "one instance"
    );
}

fn db_name(fleet: &Fleet, suffix: &str) -> String {
    format!("{}-{suffix}", fleet.prefix).to_lowercase()
}

#[tokio::test]
async fn db_instance_and_cluster_restores_make_one_tagged_database_each() {
    let fleet = Fleet::realistic("rsrds").await;
    let handlers = handlers(&fleet);
    let databases = services(&fleet).databases;
    let rds = fleet.aws.clients().rds;
    let db = db_name(&fleet, "db");
    rds.create_db_instance()
        .db_instance_identifier(&db)
        .engine("postgres")
        .db_instance_class("db.t3.micro")
        .allocated_storage(20)
        .master_username("backup")
        .master_user_password("not-a-secret-123")
        .send()
        .await
        .unwrap();
    let cluster = db_name(&fleet, "cl");
    rds.create_db_cluster()
        .db_cluster_identifier(&cluster)
        .engine("aurora-postgresql")
        .master_username("backup")
        .master_user_password("not-a-secret-123")
        .send()
        .await
        .unwrap();

    let snap = Task::SnapshotDbInstance(SnapshotDbInstance {
        region: REGION.into(),
        db_instance_id: db.clone(),
        ctx: ctx("nightly", 14, vec![]),
    });
    let snapshot_id = done(run_task(&handlers, &snap).await, "db snapshot")["identifier"].as_str().unwrap().to_owned();
    let task = Task::RestoreDbInstance(RestoreDbInstance {
        restore_id: format!("{}-db", fleet.prefix),
        source: RestoreSource::LatestOf { resource: db.clone(), region: REGION.into() },
        target_identifier: db_name(&fleet, "restored"),
        instance_class: Some("db.t3.small".into()),
        subnet_group: None,
        drill: false,
    });
    let result = run_until_done(&handlers, &task).await.expect("DB instance restore");
    let target = db_name(&fleet, "restored");
    assert_eq!(result["db_instance_id"].as_str(), Some(target.as_str()));
    let restored = databases.instance(REGION, &target).await.unwrap().expect("restored instance exists");
    assert_eq!(restored.tags.get(tags::RESTORED_FROM), Some(&snapshot_id));
    assert_eq!(restored.tags.get(tags::TASK_ID).map(String::as_str), Some(task.id().as_str()));
    assert_eq!(restored.allocated_gib, Some(20), "the snapshot's storage");
    let again = run_until_done(&handlers, &task).await.expect("a second start adopts the same instance");
    assert_eq!(again["db_instance_id"], result["db_instance_id"]);
    // A restore with another id aiming at the same name is refused, not adopted.
    let Task::RestoreDbInstance(params) = &task else { unreachable!() };
    let squatter =
        Task::RestoreDbInstance(RestoreDbInstance { restore_id: format!("{}-other", fleet.prefix), ..params.clone() });
    let err = run_task(&handlers, &squatter).await.unwrap_err();
    assert!(err.reason.contains("not made by this restore"), "{}", err.reason);

    let snap = Task::SnapshotDbCluster(SnapshotDbCluster {
        region: REGION.into(),
        db_cluster_id: cluster.clone(),
        ctx: ctx("nightly", 14, vec![]),
    });
    done(run_task(&handlers, &snap).await, "cluster snapshot");
    let task = Task::RestoreDbCluster(RestoreDbCluster {
        restore_id: format!("{}-cl", fleet.prefix),
        source: RestoreSource::LatestOf { resource: cluster.clone(), region: REGION.into() },
        target_identifier: db_name(&fleet, "restored-cl"),
        engine: None,
        subnet_group: None,
        drill: false,
    });
    let result = run_until_done(&handlers, &task).await.expect("DB cluster restore");
    let restored = databases.cluster(REGION, &db_name(&fleet, "restored-cl")).await.unwrap().expect("restored cluster");
    assert_eq!(restored.engine.as_deref(), Some("aurora-postgresql"));
    let cluster_snapshot = databases.snapshots_of(REGION, true, &cluster).await.unwrap();
    assert_eq!(restored.tags.get(tags::RESTORED_FROM), Some(&cluster_snapshot[0].identifier));
    run_until_done(&handlers, &task).await.unwrap();
    assert_eq!(result["db_cluster_id"].as_str(), Some(db_name(&fleet, "restored-cl").as_str()));

    // Best effort: the emulator is shared.
    let _ = databases.delete_instance(REGION, &target).await;
    let _ = databases.delete_cluster(REGION, &db_name(&fleet, "restored-cl")).await;
}

/// A source bucket and a versioned backup bucket with Object Lock (as Terraform makes it).
async fn buckets(fleet: &Fleet) -> (String, String, String) {
    let s3 = fleet.aws.clients().s3;
    let source = format!("{}-src", fleet.prefix).to_lowercase();
    let backup = format!("{}-bak", fleet.prefix).to_lowercase();
    let target = format!("{}-dst", fleet.prefix).to_lowercase();
    s3.create_bucket().bucket(&source).send().await.unwrap();
    s3.create_bucket().bucket(&backup).object_lock_enabled_for_bucket(true).send().await.unwrap();
    s3.put_bucket_versioning()
        .bucket(&backup)
        .versioning_configuration(VersioningConfiguration::builder().status(BucketVersioningStatus::Enabled).build())
        .send()
        .await
        .unwrap();
    s3.create_bucket().bucket(&target).send().await.unwrap();
    (source, backup, target)
}

async fn put(fleet: &Fleet, bucket: &str, key: &str, body: &str) {
    fleet
        .aws
        .clients()
        .s3
        .put_object()
        .bucket(bucket)
        .key(key)
        .body(ByteStream::from(body.as_bytes().to_vec()))
        .send()
        .await
        .unwrap();
}

async fn get(fleet: &Fleet, bucket: &str, key: &str) -> Option<String> {
    let out = fleet.aws.clients().s3.get_object().bucket(bucket).key(key).send().await.ok()?;
    Some(String::from_utf8(out.body.collect().await.unwrap().into_bytes().to_vec()).unwrap())
}

async fn backup_bucket(handlers: &Arc<Handlers>, source: &str, backup: &str, day: u32) {
    let scan = Task::ScanBucket(ScanBucket {
        region: REGION.into(),
        bucket: source.into(),
        prefix: None,
        continuation: None,
        page: 0,
        listed_after: None,
        inventory: None,
        dest: S3Destination { bucket: backup.into(), region: REGION.into(), storage_class: None, lock_days: Some(7) },
        ctx: ctx("s3-daily", day, vec![]),
    });
    for (task, outcome) in run_tree(handlers, scan).await {
        done(outcome, task.kind().as_str());
    }
}

#[tokio::test]
async fn s3_restore_brings_back_the_bytes_as_of_a_time_not_a_later_version() {
    let fleet = Fleet::realistic("rss3").await;
    let handlers = handlers(&fleet);
    let (source, backup, target) = buckets(&fleet).await;
    put(&fleet, &source, "docs/a.txt", "a version 1").await;
    put(&fleet, &source, "docs/b.txt", "b version 1").await;
    put(&fleet, &source, "other/c.txt", "c version 1").await;
    backup_bucket(&handlers, &source, &backup, 15).await;
    // S3 times have one-second resolution: keep the two backups apart.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let between = Utc::now();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    put(&fleet, &source, "docs/a.txt", "a version 2 (later)").await;
    backup_bucket(&handlers, &source, &backup, 16).await;

    let restore = |id: &str, as_of, prefix: &str, target_prefix: &str| {
        Task::RestoreObjects(RestoreObjects {
            restore_id: format!("{}-{id}", fleet.prefix),
            backup_bucket: backup.clone(),
            region: REGION.into(),
            source_bucket: source.clone(),
            prefix: prefix.into(),
            as_of,
            target_bucket: target.clone(),
            target_prefix: target_prefix.into(),
            drill: false,
        })
    };
    let then = restore("then", Some(between), "docs/", "then/");
    let result = run_until_done(&handlers, &then).await.expect("point-in-time restore");
    assert_eq!(result["objects"], 2, "{result}");
    assert_eq!(
        get(&fleet, &target, "then/docs/a.txt").await.as_deref(),
        Some("a version 1"),
        "as of the time, not later"
    );
    assert_eq!(get(&fleet, &target, "then/docs/b.txt").await.as_deref(), Some("b version 1"));
    assert_eq!(get(&fleet, &target, "then/other/c.txt").await, None, "outside the prefix");

    // Restored objects say where they came from.
    let objects = services(&fleet).objects;
    let tags_of = objects.object_tags(REGION, &target, "then/docs/a.txt", None).await.unwrap();
    let versions = objects.list_versions(REGION, &backup, &format!("{source}/docs/a.txt")).await.unwrap();
    let oldest = versions.iter().min_by_key(|v| v.last_modified).unwrap();
    assert_eq!(tags_of.get(tags::RESTORED_FROM), Some(&oldest.version_id));
    assert_eq!(tags_of.get(tags::TASK_ID).map(String::as_str), Some(then.id().as_str()));

    // Started again: nothing copied twice.
    let again = run_until_done(&handlers, &then).await.unwrap();
    assert_eq!(again["restored"], 0, "{again}");
    assert_eq!(again["already_there"], 2);

    // The latest, one object by its key.
    let latest = restore("latest", None, "docs/a.txt", "");
    run_until_done(&handlers, &latest).await.unwrap();
    assert_eq!(get(&fleet, &target, "docs/a.txt").await.as_deref(), Some("a version 2 (later)"));

    // Before any backup: nothing to restore.
    let before = restore("before", Some(Utc::now() - ChronoDuration::days(1)), "", "x/");
    let err = run_task(&handlers, &before).await.unwrap_err();
    assert!(err.reason.contains("no backup under"), "{}", err.reason);
}

/// Runs a drill to its end (parking included).
async fn drill(handlers: &Arc<Handlers>, task: &Task) -> Result<Value, backup_core::TaskError> {
    run_until_done(handlers, task).await
}

fn drill_task(plan: &str, resource: &str, resource_type: ResourceType) -> Task {
    Task::RestoreDrill(RestoreDrill {
        plan: plan.into(),
        resource: resource.into(),
        resource_type,
        region: REGION.into(),
        window: Utc.with_ymd_and_hms(2026, 11, 20, 10, 0, 0).unwrap(),
        target: Default::default(),
    })
}

fn drill_checks(record: &CatalogRecord) -> &std::collections::BTreeMap<String, String> {
    &record.verification.as_ref().expect("the drill recorded a verification").checks
}

#[tokio::test]
async fn volume_drills_validate_record_and_always_clean_up() {
    let fleet = Fleet::realistic("rsdrill").await;
    let handlers = handlers(&fleet);
    let block = services(&fleet).block;
    let catalog = services(&fleet).catalog;
    let good = volume(&fleet, 3).await;
    let bad = volume(&fleet, 4).await;
    let good_snapshot = snapshot(&handlers, &good, 17, vec![]).await;
    let bad_snapshot = snapshot(&handlers, &bad, 17, vec![]).await;

    // A passing drill: restored, validated, recorded with its time, cleaned up.
    let task = drill_task("drill", &good, ResourceType::Ec2Volume);
    let result = drill(&handlers, &task).await.expect("the drill passes");
    assert_eq!(result["ok"], true, "{result}");
    assert!(result["restore_seconds"].as_f64().is_some());
    let live = |volumes: Vec<backup_core::services::block::VolumeInfo>| {
        volumes.into_iter().filter(|v| !matches!(v.state.as_deref(), Some("deleting" | "deleted"))).count()
    };
    assert_eq!(live(block.volumes_tagged(REGION, tags::TASK_ID, task.id().as_str()).await.unwrap()), 0, "cleaned up");
    let record = catalog
        .get(&ArtifactRef { kind: ArtifactKind::EbsSnapshot, region: REGION.into(), id: good_snapshot.clone() })
        .await
        .unwrap()
        .unwrap();
    let checks = drill_checks(&record);
    assert!(checks["drill"].starts_with("ok"), "{checks:?}");
    assert!(checks["restore_seconds"].parse::<f64>().is_ok());
    assert_eq!(checks["drill_task"], task.id().as_str());
    assert!(record.verification.as_ref().unwrap().ok);

    // The test hook: the catalog says the backup is bigger than what restores.
    let artifact = ArtifactRef { kind: ArtifactKind::EbsSnapshot, region: REGION.into(), id: bad_snapshot.clone() };
    let mut tampered = catalog.get(&artifact).await.unwrap().unwrap();
    tampered.size_bytes = Some(5 * GIB);
    // The catalog never overwrites a record, so the hook replaces the item underneath it.
    fleet
        .aws
        .clients()
        .dynamodb
        .delete_item()
        .table_name(&fleet.resources.catalog_table)
        .key("pk", aws_sdk_dynamodb::types::AttributeValue::S(backup_aws::catalog::artifact_key(&artifact)))
        .send()
        .await
        .unwrap();
    catalog.put(&tampered).await.unwrap();
    let task = drill_task("drill", &bad, ResourceType::Ec2Volume);
    let err = drill(&handlers, &task).await.expect_err("validation fails");
    assert_eq!(err.class, backup_core::ErrorClass::Permanent);
    assert!(err.reason.contains("size"), "{}", err.reason);
    let left = block.volumes_tagged(REGION, tags::TASK_ID, task.id().as_str()).await.unwrap();
    assert_eq!(live(left.clone()), 0, "nothing tagged with the drill's task id remains: {left:?}");
    let record = catalog.get(&artifact).await.unwrap().unwrap();
    assert!(drill_checks(&record)["drill"].starts_with("FAILED"), "{:?}", record.verification);
    assert!(!record.verification.as_ref().unwrap().ok);
    // A re-delivery of the failed drill only confirms the clean-up; it restores nothing again.
    let again = run_task(&handlers, &task).await.expect_err("still failed");
    assert!(again.reason.contains("failed"), "{}", again.reason);
    assert_eq!(live(block.volumes_tagged(REGION, tags::TASK_ID, task.id().as_str()).await.unwrap()), 0);

    // `backupctl report drills` shows both, by resource type.
    let report = run_binary("backupctl", &fleet.env(), &["report", "drills", "--json"]).await;
    assert!(report.status.success(), "{}", report.stderr);
    let report = report.json();
    assert_eq!(report["drills"].as_array().unwrap().len(), 2, "{report}");
    assert_eq!(report["by_type"]["ec2-volume"]["passed"], 1);
    assert_eq!(report["by_type"]["ec2-volume"]["failed"], 1);
    assert_eq!(report["failing"], serde_json::json!([bad]));
    let check = run_binary("backupctl", &fleet.env(), &["report", "drills", "--check"]).await;
    assert_eq!(check.status.code(), Some(3), "{}", check.stdout);
}

#[tokio::test]
async fn rds_and_s3_drills_restore_into_isolated_targets_and_clean_up() {
    let fleet = Fleet::realistic("rsdrill2").await;
    let handlers = handlers(&fleet);
    let databases = services(&fleet).databases;
    let objects = services(&fleet).objects;
    let db = db_name(&fleet, "db");
    fleet
        .aws
        .clients()
        .rds
        .create_db_instance()
        .db_instance_identifier(&db)
        .engine("postgres")
        .db_instance_class("db.t3.micro")
        .allocated_storage(20)
        .master_username("backup")
        .master_user_password("not-a-secret-123")
        .send()
        .await
        .unwrap();
    let snap = Task::SnapshotDbInstance(SnapshotDbInstance {
        region: REGION.into(),
        db_instance_id: db.clone(),
        ctx: ctx("nightly", 18, vec![]),
    });
    done(run_task(&handlers, &snap).await, "db snapshot");
    let task = drill_task("drill", &db, ResourceType::RdsInstance);
    let result = drill(&handlers, &task).await.expect("the RDS drill passes");
    assert_eq!(result["ok"], true, "{result}");
    let target = backup_worker::handlers::restore::drill_identifier(&task.id());
    let left = databases.instance(REGION, &target).await.unwrap();
    assert!(left.is_none() || left.unwrap().status.as_deref() == Some("deleting"), "the drill's DB is deleted");

    // A cluster restore parks while `creating` (moto too): the drill re-checks with its
    // checkpoint, and the time to restore spans the wait.
    let cluster = db_name(&fleet, "cl");
    fleet
        .aws
        .clients()
        .rds
        .create_db_cluster()
        .db_cluster_identifier(&cluster)
        .engine("aurora-postgresql")
        .master_username("backup")
        .master_user_password("not-a-secret-123")
        .send()
        .await
        .unwrap();
    let snap = Task::SnapshotDbCluster(SnapshotDbCluster {
        region: REGION.into(),
        db_cluster_id: cluster.clone(),
        ctx: ctx("nightly", 18, vec![]),
    });
    done(run_task(&handlers, &snap).await, "cluster snapshot");
    let task = drill_task("drill", &cluster, ResourceType::RdsCluster);
    let result = drill(&handlers, &task).await.expect("the cluster drill passes");
    assert_eq!(result["ok"], true, "{result}");
    assert!(result["restore_seconds"].as_f64().unwrap() >= 0.3, "measured across the re-check: {result}");
    let target = backup_worker::handlers::restore::drill_identifier(&task.id());
    let left = databases.cluster(REGION, &target).await.unwrap();
    assert!(left.is_none() || left.unwrap().status.as_deref() == Some("deleting"), "the drill's cluster is deleted");
    let _ = databases.delete_cluster(REGION, &cluster).await;

    let (source, backup, _) = buckets(&fleet).await;
    put(&fleet, &source, "one.txt", "first object").await;
    put(&fleet, &source, "dir/two.txt", "second object").await;
    backup_bucket(&handlers, &source, &backup, 18).await;
    let task = drill_task("drill", &source, ResourceType::S3Bucket);
    let result = drill(&handlers, &task).await.expect("the S3 drill passes");
    assert_eq!(result["ok"], true, "{result}");
    let checks = result["checks"].as_object().unwrap();
    assert!(checks.keys().any(|k| k.ends_with(".checksum")), "{checks:?}");
    let prefix = backup_worker::handlers::restore::drill_prefix(&task.id());
    assert!(objects.list_versions(REGION, &backup, &prefix).await.unwrap().is_empty(), "drill objects deleted");
    let _ = databases.delete_instance(REGION, &db).await;
}

#[tokio::test]
async fn rpo_report_flags_the_resource_whose_backups_stopped() {
    let fleet = Fleet::realistic("rsrpo").await;
    let catalog = services(&fleet).catalog;
    let now = Utc::now();
    let record = |resource: &str, plan: &str, age: ChronoDuration| CatalogRecord {
        artifact: ArtifactRef {
            kind: ArtifactKind::EbsSnapshot,
            region: REGION.into(),
            id: format!("snap-{resource}"),
        },
        resource: resource.into(),
        resource_region: REGION.into(),
        plan: plan.into(),
        tier: "daily".into(),
        task_id: TaskId::new(format!("t-{resource}")),
        created_at: now - age,
        expires_at: None,
        size_bytes: Some(GIB),
        encrypted: Some(true),
        copy_of: None,
        copies: vec![],
        details: Default::default(),
        verification: Some(Verification { verified_at: now - age, ok: true, checks: Default::default() }),
        deleted_at: None,
        archive: None,
        account: None,
    };
    catalog.put(&record("vol-fresh", "daily", ChronoDuration::hours(3))).await.unwrap();
    catalog.put(&record("vol-stale", "daily", ChronoDuration::days(3))).await.unwrap();
    catalog.put(&record("vol-retired", "gone", ChronoDuration::days(30))).await.unwrap();
    let policy = policy_file(
        &fleet.prefix,
        &format!(
            r#"
[[plan]]
name = "daily"
schedule = "cron(0 2 * * ? *)"
resources = ["ec2-volume"]
regions = ["{REGION}"]
select.tags = {{ backup = "{}" }}
retain = {{ days = 7, min_keep = 1 }}
"#,
            // Its own tag: `report rpo` also discovers live volumes, and the emulator is shared.
            fleet.prefix
        ),
    );
    let mut env = fleet.env();
    env.push(("BACKUP_POLICY_FILE".into(), policy.display().to_string()));
    let run = run_binary("backupctl", &env, &["report", "rpo", "--json"]).await;
    assert_eq!(run.status.code(), Some(3), "a violation exits 3: {}\n{}", run.stdout, run.stderr);
    let report = run.json();
    let status = |resource: &str| {
        report["resources"].as_array().unwrap().iter().find(|r| r["resource"] == resource).map(|r| r["status"].clone())
    };
    assert_eq!(status("vol-stale"), Some("violation".into()), "{report}");
    assert_eq!(status("vol-fresh"), Some("ok".into()));
    assert_eq!(status("vol-retired"), Some("unknown-plan".into()));
    assert_eq!(report["violations"], 1);
    let fresh = report["resources"].as_array().unwrap().iter().find(|r| r["resource"] == "vol-fresh").unwrap();
    assert_eq!(fresh["threshold_secs"], 30 * 3600, "daily + 25%: {report}");
    assert_eq!(fresh["basis"], "backup");

    // A generous grace makes the same backups fine.
    let run = run_binary("backupctl", &env, &["report", "rpo", "--grace", "3d", "--json"]).await;
    assert_eq!(run.status.code(), Some(0), "{}", run.stdout);
}

#[tokio::test]
async fn backupctl_restore_started_twice_runs_one_task_on_a_real_worker() {
    let fleet = Fleet::realistic("rscli").await;
    let handlers = handlers(&fleet);
    let block = services(&fleet).block;
    let volume_id = volume(&fleet, 9).await;
    let snapshot_id = snapshot(&handlers, &volume_id, 19, vec![]).await;
    let mut worker = fleet.worker(
        "w",
        &[
            "--exit-when-idle=8",
            "--receive-wait-secs=1",
            "--visibility-timeout-secs=5",
            "--lease-secs=5",
            "--heartbeat-secs=1",
            "--recheck-secs=1",
            "--consistency-window-secs=3",
        ],
    );
    let restore_id = format!("{}-cli", fleet.prefix);
    let args = [
        "restore",
        "volume",
        "--resource",
        &volume_id,
        "--restore-id",
        &restore_id,
        "--wait",
        "--timeout",
        "90",
        "--json",
    ];
    let first = run_binary("backupctl", &fleet.env(), &args).await;
    assert!(first.status.success(), "{}\n{}", first.stdout, first.stderr);
    let first = first.json();
    assert_eq!(first["state"], "SUCCEEDED", "{first}");
    assert_eq!(first["result"]["restored_from"].as_str(), Some(snapshot_id.as_str()));
    assert_eq!(first["result"]["size_gib"], 9);
    let second = run_binary("backupctl", &fleet.env(), &args).await;
    assert!(second.status.success(), "{}", second.stderr);
    assert_eq!(second.json()["result"]["volume_id"], first["result"]["volume_id"], "the same restore");
    let task_id = TaskId::new(first["task_id"].as_str().unwrap());
    assert_eq!(block.volumes_tagged(REGION, tags::TASK_ID, task_id.as_str()).await.unwrap().len(), 1, "one volume");

    // No usable backup: refused before anything is sent.
    let none =
        run_binary("backupctl", &fleet.env(), &["restore", "volume", "--resource", "vol-nothing", "--json"]).await;
    assert_eq!(none.status.code(), Some(1), "{}", none.stderr);
    assert!(none.stderr.contains("no usable backup"), "{}", none.stderr);
    worker.sigterm();
    worker.wait_async(Duration::from_secs(60)).await;
}

#[tokio::test]
async fn a_drill_past_its_deadline_validates_what_it_restored_and_cleans_up() {
    let fleet = Fleet::realistic_with("rsdeadline", |s| s.task_visibility_timeout_secs = 5).await;
    let handlers = handlers(&fleet);
    let block = services(&fleet).block;
    // Restores of this volume's backups take 8 s; the drill's deadline is 3 s away.
    let source = fleet
        .aws
        .clients()
        .ec2
        .create_volume()
        .availability_zone("us-east-1a")
        .size(3)
        .tag_specifications(
            TagSpecification::builder()
                .resource_type(aws_sdk_ec2::types::ResourceType::Volume)
                .tags(Ec2Tag::builder().key("realism:restore-pending-seconds").value("8").build())
                .build(),
        )
        .send()
        .await
        .unwrap()
        .volume_id
        .unwrap();
    snapshot(&handlers, &source, 21, vec![]).await;
    let drill = drill_task("drill", &source, ResourceType::Ec2Volume);
    let mut envelope =
        Envelope::new(drill, RunId::new("drill"), Origin::Operator { command: "test".into() }, Utc::now());
    envelope.deadline = Some(Utc::now() + chrono::Duration::seconds(3));
    fleet.send(&envelope).await;
    let mut worker = fleet.worker(
        "w",
        &[
            "--exit-when-idle=4",
            "--receive-wait-secs=1",
            "--visibility-timeout-secs=5",
            "--lease-secs=5",
            "--heartbeat-secs=1",
            "--recheck-secs=1",
            "--consistency-window-secs=3",
        ],
    );
    let record = fleet.wait_task(&envelope.task_id, Duration::from_secs(60), |r| r.state.is_terminal()).await;
    let status = worker.wait_async(Duration::from_secs(60)).await;
    assert!(status.success(), "worker exited with {status}; log:\n{}", worker.log_tail(30));
    // The drill started before its deadline, so it was not abandoned: it validated what it had
    // (not available in time: a failed drill, recorded) and deleted its restored volume.
    assert_eq!(record.state, TaskState::Failed, "{record:#?}");
    assert!(record.last_error.as_deref().unwrap_or_default().contains("available"), "{record:#?}");
    let left: Vec<_> = block
        .volumes_tagged(REGION, tags::TASK_ID, envelope.task_id.as_str())
        .await
        .unwrap()
        .into_iter()
        .filter(|v| !matches!(v.state.as_deref(), Some("deleting" | "deleted")))
        .collect();
    assert!(left.is_empty(), "a drill past its deadline left restores behind: {left:?}");
}

#[tokio::test]
async fn point_in_time_restores_check_the_window_and_make_one_database() {
    let fleet = Fleet::realistic("rspitr").await;
    let handlers = handlers(&fleet);
    let databases = services(&fleet).databases;
    let rds = fleet.aws.clients().rds;
    let db = db_name(&fleet, "pitr");
    let before = Utc::now();
    rds.create_db_instance()
        .db_instance_identifier(&db)
        .engine("postgres")
        .db_instance_class("db.t3.micro")
        .allocated_storage(20)
        .master_username("backup")
        .master_user_password("not-a-secret-123")
        .backup_retention_period(7)
        .send()
        .await
        .unwrap();
    let off = db_name(&fleet, "nopitr");
    rds.create_db_instance()
        .db_instance_identifier(&off)
        .engine("postgres")
        .db_instance_class("db.t3.micro")
        .allocated_storage(20)
        .master_username("backup")
        .master_user_password("not-a-secret-123")
        .backup_retention_period(0)
        .send()
        .await
        .unwrap();
    let cluster = db_name(&fleet, "pitrcl");
    rds.create_db_cluster()
        .db_cluster_identifier(&cluster)
        .engine("aurora-postgresql")
        .master_username("backup")
        .master_user_password("not-a-secret-123")
        .backup_retention_period(7)
        .send()
        .await
        .unwrap();
    // Past the realism layer's restorable-time lag and its consistency window.
    tokio::time::sleep(Duration::from_secs(6)).await;
    let restore = |id: &str, source: &str, to: PointInTime, target: &str| {
        Task::RestoreDbInstance(RestoreDbInstance {
            restore_id: format!("{}-{id}", fleet.prefix),
            source: RestoreSource::PointInTime { resource: source.to_owned(), region: REGION.into(), to },
            target_identifier: target.to_owned(),
            instance_class: None,
            subnet_group: None,
            drill: false,
        })
    };

    // A month ago is before the database existed: refused, naming the window.
    let err = run_task(
        &handlers,
        &restore("old", &db, PointInTime::At(before - ChronoDuration::days(30)), &db_name(&fleet, "old")),
    )
    .await
    .unwrap_err();
    assert_eq!(err.class, backup_core::ErrorClass::Permanent);
    assert!(err.reason.contains("outside the restorable window") && err.reason.contains(" to "), "{}", err.reason);
    assert!(databases.instance(REGION, &db_name(&fleet, "old")).await.unwrap().is_none(), "nothing was created");
    // Without automated backups there is nothing to go back to.
    let err =
        run_task(&handlers, &restore("off", &off, PointInTime::Latest, &db_name(&fleet, "off"))).await.unwrap_err();
    assert!(err.reason.contains("automated backups off"), "{}", err.reason);

    // A time inside the window: one database, tagged with where and when it came from.
    let at = before + ChronoDuration::seconds(2);
    let target = db_name(&fleet, "at");
    let task = restore("at", &db, PointInTime::At(at), &target);
    let result = run_until_done(&handlers, &task).await.expect("point-in-time restore");
    assert_eq!(result["db_instance_id"].as_str(), Some(target.as_str()));
    let restored = databases.instance(REGION, &target).await.unwrap().expect("restored instance");
    assert_eq!(restored.tags.get(tags::RESTORED_FROM), Some(&format!("{db}@{}", PointInTime::At(at))));
    let again = run_until_done(&handlers, &task).await.expect("a second start adopts the same instance");
    assert_eq!(again["db_instance_id"], result["db_instance_id"]);

    // The latest restorable time, for a cluster.
    let target_cl = db_name(&fleet, "latest-cl");
    let task = Task::RestoreDbCluster(RestoreDbCluster {
        restore_id: format!("{}-latest-cl", fleet.prefix),
        source: RestoreSource::PointInTime {
            resource: cluster.clone(),
            region: REGION.into(),
            to: PointInTime::Latest,
        },
        target_identifier: target_cl.clone(),
        engine: None,
        subnet_group: None,
        drill: false,
    });
    run_until_done(&handlers, &task).await.expect("cluster point-in-time restore");
    let restored = databases.cluster(REGION, &target_cl).await.unwrap().expect("restored cluster");
    assert_eq!(restored.tags.get(tags::RESTORED_FROM), Some(&format!("{cluster}@latest")));

    // The CLI refuses a malformed time and a time without a database before sending anything.
    let mut env = fleet.env_at(&fleet.endpoint);
    env.push(("BACKUP_LOG_FORMAT".into(), "text".into()));
    for args in [
        vec!["restore", "db-instance", "--resource", db.as_str(), "--to-time", "yesterday"],
        vec!["restore", "db-instance", "--backup", "snap-1", "--to-time", "2026-12-01T00:00:00Z"],
        vec!["restore", "db-cluster", "--latest-restorable", "--backup", "x"],
    ] {
        let run = run_binary("backupctl", &env, &args).await;
        assert_eq!(run.status.code(), Some(2), "{args:?}: {}", run.stderr);
    }

    let _ = databases.delete_instance(REGION, &target).await;
    let _ = databases.delete_cluster(REGION, &target_cl).await;
}

/// A point-in-time restore in the DR region reads the DB instance's automated backups replicated
/// there (the source region may be gone): refused before replication started or with nothing
/// replicated, and otherwise one database in the DR region, also after replication stopped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_point_in_time_restore_in_the_dr_region_reads_the_replicated_automated_backups() {
    let fleet = Fleet::realistic("rsdrpitr").await;
    let handlers = handlers(&fleet);
    let rds = fleet.aws.clients().rds;
    let dr = fleet.aws_in(DR_REGION).await;
    // The adapter makes clients per region: the same one serves the DR region.
    let dr_databases = services(&fleet).databases;
    let db = db_name(&fleet, "drpitr");
    let created = rds
        .create_db_instance()
        .db_instance_identifier(&db)
        .engine("postgres")
        .db_instance_class("db.t3.micro")
        .allocated_storage(20)
        .master_username("backup")
        .master_user_password("not-a-secret-123")
        .backup_retention_period(7)
        .send()
        .await
        .unwrap();
    let source_arn = created.db_instance().and_then(|d| d.db_instance_arn()).unwrap().to_owned();
    let restore = |id: &str, to: PointInTime| {
        Task::RestoreDbInstance(RestoreDbInstance {
            restore_id: format!("{}-{id}", fleet.prefix),
            source: RestoreSource::PointInTime { resource: db.clone(), region: DR_REGION.into(), to },
            target_identifier: db_name(&fleet, id),
            instance_class: None,
            subnet_group: None,
            drill: false,
        })
    };

    // Nothing replicated yet: refused, saying so.
    let err = run_task(&handlers, &restore("none", PointInTime::Latest)).await.unwrap_err();
    assert_eq!(err.class, backup_core::ErrorClass::Permanent);
    assert!(err.reason.contains("no automated backups of it are replicated there"), "{}", err.reason);

    let before_replication = Utc::now();
    tokio::time::sleep(Duration::from_secs(1)).await;
    dr.clients()
        .rds
        .start_db_instance_automated_backups_replication()
        .source_db_instance_arn(&source_arn)
        .send()
        .await
        .expect("start replication into the DR region");
    let replicating_since = Utc::now();
    // Past the layer's replication lag and its consistency window.
    tokio::time::sleep(Duration::from_secs(6)).await;

    // Before replication started is outside the replicated window, whatever the source keeps.
    let err = run_task(&handlers, &restore("early", PointInTime::At(before_replication))).await.unwrap_err();
    assert!(err.reason.contains("outside the restorable window"), "{}", err.reason);
    assert!(err.reason.contains(&format!("replicated to {DR_REGION}")), "{}", err.reason);

    // The latest restorable time: one database in the DR region, none in the source region.
    let target = db_name(&fleet, "latest");
    let result = run_until_done(&handlers, &restore("latest", PointInTime::Latest)).await.expect("DR restore");
    assert_eq!(result["region"].as_str(), Some(DR_REGION));
    let restored = dr_databases.instance(DR_REGION, &target).await.unwrap().expect("restored in the DR region");
    assert_eq!(restored.tags.get(tags::RESTORED_FROM), Some(&format!("{db}@latest")));
    assert!(services(&fleet).databases.instance(REGION, &target).await.unwrap().is_none());

    // Replication stopped: the retained backups still restore, to a time inside their window.
    dr.clients()
        .rds
        .stop_db_instance_automated_backups_replication()
        .source_db_instance_arn(&source_arn)
        .send()
        .await
        .expect("stop replication");
    let at = replicating_since + ChronoDuration::seconds(1);
    let result = run_until_done(&handlers, &restore("retained", PointInTime::At(at))).await.expect("retained restore");
    assert_eq!(result["region"].as_str(), Some(DR_REGION));

    for id in ["latest", "retained"] {
        let _ = dr_databases.delete_instance(DR_REGION, &db_name(&fleet, id)).await;
    }
    let _ = services(&fleet).databases.delete_instance(REGION, &db).await;
}

/// The drill plan's target settings act: restored volumes go in the zone of `target_subnet` (an
/// unknown subnet fails the drill by name instead of restoring next to production), and
/// `max_parallel` drills of a plan run at once fleet-wide (one more waits for capacity).
#[tokio::test]
async fn drills_restore_into_the_target_subnet_and_wait_for_a_parallel_slot() {
    let fleet = Fleet::realistic("rsdrilltarget").await;
    let handlers = handlers(&fleet);
    let source = volume(&fleet, 2).await;
    snapshot(&handlers, &source, 17, vec![]).await;
    let with_target = |plan: &str, target: DrillTarget| {
        let Task::RestoreDrill(mut drill) = drill_task(plan, &source, ResourceType::Ec2Volume) else { unreachable!() };
        drill.target = target;
        Task::RestoreDrill(drill)
    };

    // An isolated subnet in another zone than the source volume (us-east-1a).
    let ec2 = fleet.aws.clients().ec2;
    let subnets = ec2.describe_subnets().send().await.unwrap();
    let subnet = subnets
        .subnets()
        .iter()
        .find(|s| s.availability_zone() == Some("us-east-1c"))
        .and_then(|s| s.subnet_id())
        .expect("moto's default VPC has a subnet in us-east-1c")
        .to_owned();
    let passed =
        drill(&handlers, &with_target("zoned", DrillTarget { subnet_id: Some(subnet), ..DrillTarget::default() }))
            .await
            .expect("the drill restores into the subnet's zone and passes");
    assert_eq!(passed["ok"], true, "{passed}");

    let missing = DrillTarget { subnet_id: Some("subnet-0123456789abcdef0".into()), ..DrillTarget::default() };
    let err = drill(&handlers, &with_target("nosubnet", missing)).await.unwrap_err();
    assert!(err.reason.contains("drill.target_subnet subnet-0123456789abcdef0 does not exist"), "{}", err.reason);

    // max_parallel = 1 with the plan's one slot held by another drill: this one waits.
    let slots = services(&fleet).slots;
    let other = TaskId::derive("restore.drill", &serde_json::json!(["another drill"]));
    assert!(slots.acquire("drill:busy", &other, 1, Duration::from_secs(60)).await.unwrap());
    let busy = with_target("busy", DrillTarget { max_parallel: Some(1), ..DrillTarget::default() });
    let envelope =
        Envelope::new(busy.clone(), RunId::new("test-run"), Origin::Operator { command: "test".into() }, Utc::now());
    let waited = handlers.dispatch(&envelope, &backup_tests::context_for(&busy)).await.unwrap_err();
    assert!(waited.is_capacity(), "{waited:?}");
    assert!(waited.reason.contains("1 drills of plan busy already running"), "{}", waited.reason);
    slots.release("drill:busy", &other).await.unwrap();
    let ran = drill(&handlers, &busy).await.expect("with the slot free the drill runs");
    assert_eq!(ran["ok"], true, "{ran}");
}
