//! EC2 backups against the emulator: each handler creates exactly one artifact with the right
//! tags and catalog record, re-runs create nothing, copies land in the DR region, retention
//! deletes exactly what expired and never a foreign, held or image-backing snapshot.

use aws_sdk_ec2::types::{ResourceType as Ec2ResourceType, Tag, TagSpecification};
use backup_core::artifacts::CatalogQuery;
use backup_schemas::*;
use backup_tests::{run_task, run_tree, services, Fleet, DR_REGION, REALISTIC_WORKER_ARGS, REGION};
use backup_worker::{Handlers, Outcome};
use chrono::{Duration as ChronoDuration, TimeZone, Utc};
use std::sync::Arc;
use std::time::Duration;

fn ctx(plan: &str, window_day: u32, copies: bool) -> BackupContext {
    let window = Utc.with_ymd_and_hms(2026, 11, window_day, 2, 0, 0).unwrap();
    BackupContext {
        plan: plan.into(),
        tier: Tier::Daily,
        window,
        expires_at: Some(window + ChronoDuration::days(7)),
        copy_to: if copies {
            vec![CopyTarget {
                region: DR_REGION.into(),
                kms_key: Some("alias/backup".into()),
                retain_days: Some(30),
                ..Default::default()
            }]
        } else {
            vec![]
        },
        verify: true,
        retain: None,
        export: None,
    }
}

async fn volume(fleet: &Fleet, size: i32, tags: &[(&str, &str)]) -> String {
    let spec = (!tags.is_empty()).then(|| {
        TagSpecification::builder()
            .resource_type(Ec2ResourceType::Volume)
            .set_tags(Some(tags.iter().map(|(k, v)| Tag::builder().key(*k).value(*v).build()).collect()))
            .build()
    });
    let out = fleet
        .aws
        .clients()
        .ec2
        .create_volume()
        .availability_zone("us-east-1a")
        .size(size)
        .set_tag_specifications(spec.map(|s| vec![s]))
        .send()
        .await
        .unwrap();
    out.volume_id.unwrap()
}

async fn instance(fleet: &Fleet) -> String {
    let out = fleet
        .aws
        .clients()
        .ec2
        .run_instances()
        .image_id("ami-12345678")
        .min_count(1)
        .max_count(1)
        .send()
        .await
        .unwrap();
    out.instances()[0].instance_id().unwrap().to_owned()
}

fn handlers(fleet: &Fleet) -> Arc<Handlers> {
    Arc::new(Handlers::with_services(services(fleet)))
}

#[tokio::test]
async fn volume_snapshot_is_made_once_tagged_catalogued_and_copied() {
    let fleet = Fleet::realistic("ebsvol").await;
    let handlers = handlers(&fleet);
    let block = services(&fleet).block;
    let volume_id = volume(&fleet, 20, &[("backup", "daily")]).await;
    let task = Task::SnapshotVolume(SnapshotVolume {
        region: REGION.into(),
        volume_id: volume_id.clone(),
        ctx: ctx("daily", 20, true),
    });

    let outcome = run_task(&handlers, &task).await.expect("snapshot succeeds");
    let Outcome::Done { result, children, .. } = &outcome else {
        panic!("moto completes snapshots at once: {outcome:?}")
    };
    let snapshot_id = result["snapshot_id"].as_str().unwrap().to_owned();
    let tagged = block.snapshots_tagged(REGION, tags::TASK_ID, task.id().as_str()).await.unwrap();
    assert_eq!(tagged.len(), 1);
    let snapshot = &tagged[0];
    assert_eq!(snapshot.id, snapshot_id);
    for (key, value) in
        [(tags::MANAGED, "true"), (tags::PLAN, "daily"), (tags::SOURCE, volume_id.as_str()), (tags::TIER, "daily")]
    {
        assert_eq!(snapshot.tags.get(key).map(String::as_str), Some(value), "tag {key}");
    }
    assert_eq!(snapshot.tags.get(tags::EXPIRES_AT).map(String::as_str), Some("2026-11-27T02:00:00Z"));
    // Follow-ups: one copy per target and one verification.
    let kinds: Vec<TaskKind> = children.iter().map(Task::kind).collect();
    assert_eq!(kinds, vec![TaskKind::CopySnapshot, TaskKind::Verify]);

    // Re-delivery: same snapshot, nothing new.
    let again = run_task(&handlers, &task).await.unwrap();
    let Outcome::Done { result: again, .. } = again else { panic!() };
    assert_eq!(again["snapshot_id"].as_str(), Some(snapshot_id.as_str()));
    assert_eq!(block.snapshots_tagged(REGION, tags::SOURCE, &volume_id).await.unwrap().len(), 1);

    // The copy and the verifications, followed through.
    for (task, outcome) in
        run_tree(&handlers, children[0].clone()).await.into_iter().chain(run_tree(&handlers, children[1].clone()).await)
    {
        outcome.unwrap_or_else(|e| panic!("{} failed: {e}", task.kind()));
    }
    let copies = block.snapshots_tagged(DR_REGION, tags::COPIED_FROM, &snapshot_id).await.unwrap();
    assert_eq!(copies.len(), 1, "exactly one copy in {DR_REGION}");
    assert!(copies[0].encrypted);
    assert_eq!(copies[0].kms_key.as_deref(), Some("alias/backup"));
    assert_eq!(copies[0].tags.get(tags::SOURCE_REGION).map(String::as_str), Some(REGION));
    assert_eq!(
        copies[0].tags.get(tags::EXPIRES_AT).map(String::as_str),
        Some("2026-12-20T02:00:00Z"),
        "the copy keeps its own retention"
    );
    let copy_task = children[0].clone();
    run_task(&handlers, &copy_task).await.unwrap();
    assert_eq!(
        block.snapshots_tagged(DR_REGION, tags::COPIED_FROM, &snapshot_id).await.unwrap().len(),
        1,
        "a re-run copies nothing"
    );

    let catalog = services(&fleet).catalog;
    let records = catalog.by_resource(&volume_id).await.unwrap();
    assert_eq!(records.len(), 2, "source and copy are catalogued: {records:#?}");
    let source = records.iter().find(|r| r.copy_of.is_none()).unwrap();
    assert_eq!(source.copies.len(), 1);
    assert_eq!(source.size_bytes, Some(20 * 1024 * 1024 * 1024));
    assert!(source.verification.as_ref().is_some_and(|v| v.ok), "verified: {:?}", source.verification);
    assert_eq!(
        catalog.list(&CatalogQuery { plan: Some("daily".into()), ..Default::default() }).await.unwrap().len(),
        2
    );
}

#[tokio::test]
async fn a_verification_that_carries_its_origin_reads_no_catalog_record_first() {
    let fleet = Fleet::realistic("ebsverifyorigin").await;
    let volume_id = volume(&fleet, 8, &[]).await;
    let task = Task::SnapshotVolume(SnapshotVolume {
        region: REGION.into(),
        volume_id: volume_id.clone(),
        ctx: ctx("daily", 20, false),
    });
    let Outcome::Done { result, children, .. } = run_task(&handlers(&fleet), &task).await.unwrap() else { panic!() };
    let snapshot_id = result["snapshot_id"].as_str().unwrap().to_owned();
    let Some(Task::Verify(verify)) = children.into_iter().find(|t| t.kind() == TaskKind::Verify) else {
        panic!("the plan verifies")
    };
    assert_eq!(verify.origin, Some(VerifyOrigin { resource_region: REGION.into(), copy: false }));

    // Reading a record fails: the verification checks the snapshot against AWS and records the
    // result all the same.
    let mut no_reads = services(&fleet);
    no_reads.fleet_catalog = Arc::new(CatalogFailing(no_reads.fleet_catalog.clone(), Failing::Reads));
    no_reads.catalog = no_reads.fleet_catalog.clone();
    let no_reads = Arc::new(Handlers::with_services(no_reads));
    run_task(&no_reads, &Task::Verify(verify.clone())).await.expect("verified without a read");
    let artifact = ArtifactRef { kind: ArtifactKind::EbsSnapshot, region: REGION.into(), id: snapshot_id };
    let record = services(&fleet).catalog.get(&artifact).await.unwrap().unwrap();
    assert!(record.verification.is_some_and(|v| v.ok));

    // Without its origin (a verification from an AWS event) it reads the record first.
    let from_event = Task::Verify(Verify { origin: None, ..verify.clone() });
    let err = run_task(&no_reads, &from_event).await.unwrap_err();
    assert!(err.reason.contains("ThrottlingException"), "{err}");

    // A snapshot the catalog does not know: the conditional write refuses it, and the task fails
    // saying so, as it did when it read first.
    // (Visible at once, so that the verification finds it and goes on to write its result.)
    let visible = TagSpecification::builder()
        .resource_type(Ec2ResourceType::Snapshot)
        .tags(Tag::builder().key("realism:consistency-seconds").value("0").build())
        .build();
    let stray = fleet
        .aws
        .clients()
        .ec2
        .create_snapshot()
        .volume_id(&volume_id)
        .tag_specifications(visible)
        .send()
        .await
        .unwrap();
    let stray = ArtifactRef {
        kind: ArtifactKind::EbsSnapshot,
        region: REGION.into(),
        id: stray.snapshot_id().unwrap().to_owned(),
    };
    let err = run_task(&no_reads, &Task::Verify(Verify { artifact: stray, ..verify })).await.unwrap_err();
    assert_eq!(err.class, backup_core::ErrorClass::Permanent, "{err}");
    assert!(err.reason.contains("is not in the catalog"), "{err}");
}

#[tokio::test]
async fn instance_snapshot_set_covers_every_volume_once() {
    let fleet = Fleet::realistic("ebsset").await;
    let handlers = handlers(&fleet);
    let instance_id = instance(&fleet).await;
    let extra = volume(&fleet, 4, &[]).await;
    fleet
        .aws
        .clients()
        .ec2
        .attach_volume()
        .instance_id(&instance_id)
        .volume_id(&extra)
        .device("/dev/sdf")
        .send()
        .await
        .unwrap();
    let task = Task::SnapshotInstance(SnapshotInstance {
        region: REGION.into(),
        instance_id: instance_id.clone(),
        exclude_boot_volume: false,
        ctx: ctx("daily", 20, false),
    });
    let outcome = run_task(&handlers, &task).await.unwrap();
    let Outcome::Done { result, children, .. } = outcome else { panic!() };
    let ids = result["snapshot_ids"].as_array().unwrap();
    assert_eq!(ids.len(), 2, "root and data volume: {result}");
    assert_eq!(children.iter().filter(|t| t.kind() == TaskKind::Verify).count(), 2);
    run_task(&handlers, &task).await.unwrap();
    let block = services(&fleet).block;
    assert_eq!(
        block.snapshots_tagged(REGION, tags::TASK_ID, task.id().as_str()).await.unwrap().len(),
        2,
        "re-run makes no new set"
    );
}

#[tokio::test]
async fn ami_is_created_once_its_snapshots_tagged_and_copied() {
    let fleet = Fleet::realistic("ebsami").await;
    let handlers = handlers(&fleet);
    let block = services(&fleet).block;
    let instance_id = instance(&fleet).await;
    let task = Task::CreateAmi(CreateAmi {
        region: REGION.into(),
        instance_id: instance_id.clone(),
        reboot: false,
        ctx: ctx("weekly", 20, true),
    });
    let outcome = run_task(&handlers, &task).await.unwrap();
    let Outcome::Done { result, children, .. } = outcome else { panic!() };
    let image_id = result["image_id"].as_str().unwrap().to_owned();
    let images = block.images_tagged(REGION, tags::TASK_ID, task.id().as_str()).await.unwrap();
    assert_eq!(images.len(), 1);
    let snapshots = block.snapshots(REGION, &images[0].snapshot_ids).await.unwrap();
    assert!(!snapshots.is_empty());
    for snapshot in &snapshots {
        assert_eq!(
            snapshot.tags.get(backup_schemas::tags::IMAGE).map(String::as_str),
            Some(image_id.as_str()),
            "AMI snapshots carry their image"
        );
        assert_eq!(snapshot.tags.get(tags::MANAGED).map(String::as_str), Some("true"));
    }
    run_task(&handlers, &task).await.unwrap();
    assert_eq!(
        block.images_tagged(REGION, tags::SOURCE, &instance_id).await.unwrap().len(),
        1,
        "a re-run makes no second image"
    );

    let copy = children.iter().find(|t| t.kind() == TaskKind::CopyAmi).unwrap().clone();
    run_task(&handlers, &copy).await.unwrap();
    run_task(&handlers, &copy).await.unwrap();
    let copies = block.images_tagged(DR_REGION, tags::COPIED_FROM, &image_id).await.unwrap();
    assert_eq!(copies.len(), 1, "one AMI copy in {DR_REGION}, even when the copy task runs twice");
}

#[tokio::test]
async fn missing_volume_fails_permanently_with_a_clear_reason() {
    let fleet = Fleet::realistic("ebsmissing").await;
    let task = Task::SnapshotVolume(SnapshotVolume {
        region: REGION.into(),
        volume_id: "vol-0000000000000dead".into(),
        ctx: ctx("daily", 20, false),
    });
    let err = run_task(&handlers(&fleet), &task).await.expect_err("no such volume");
    assert_eq!(err.class, backup_core::ErrorClass::Permanent);
    assert!(err.reason.contains("vol-0000000000000dead does not exist"), "{}", err.reason);
}

#[tokio::test]
async fn retention_deletes_exactly_the_expired_and_never_foreign_held_or_image_backing_snapshots() {
    let fleet = Fleet::realistic("ebsprune").await;
    let handlers = handlers(&fleet);
    let svc = services(&fleet);
    let volume_id = volume(&fleet, 8, &[]).await;
    // A foreign snapshot of the same volume, tagged to look like ours but absent from the catalog
    // (made first, so that the realism layer's consistency window is long over at the prune).
    let foreign = svc
        .block
        .create_snapshot(
            REGION,
            &volume_id,
            "made by someone else",
            &[
                (tags::SOURCE.to_owned(), volume_id.clone()),
                (tags::MANAGED.to_owned(), "true".to_owned()),
                (tags::PLAN.to_owned(), "daily".to_owned()),
            ]
            .into(),
        )
        .await
        .unwrap();

    // Ten daily backups, Nov 1..10, made by the fleet.
    let mut made = Vec::new();
    for day in 1..=10 {
        let task = Task::SnapshotVolume(SnapshotVolume {
            region: REGION.into(),
            volume_id: volume_id.clone(),
            ctx: ctx("daily", day, false),
        });
        let Outcome::Done { result, .. } = run_task(&handlers, &task).await.unwrap() else { panic!() };
        made.push(result["snapshot_id"].as_str().unwrap().to_owned());
    }
    // moto stamps snapshots with the real time; age them through the creation time retention reads:
    // the snapshot's start time is "now", so drive retention by count instead of days.
    let held = made[0].clone();
    svc.block
        .tag(REGION, std::slice::from_ref(&held), &[(tags::LEGAL_HOLD.to_owned(), "case-42".to_owned())].into())
        .await
        .unwrap();
    let prune = Task::Prune(Prune {
        plan: "daily".into(),
        resource: volume_id.clone(),
        resource_type: ResourceType::Ec2Volume,
        region: REGION.into(),
        rules: RetentionRules { count: Some(3), min_keep: 2, ..Default::default() },
        as_of: Utc::now() + ChronoDuration::days(1),
        source_account: None,
    });
    let results = run_tree(&handlers, prune).await;
    let deleted: Vec<String> = results
        .iter()
        .filter_map(|(_, outcome)| match outcome {
            Ok(Outcome::Done { result, .. }) if result["deleted"] == true => {
                result["artifact"]["id"].as_str().map(str::to_owned)
            }
            _ => None,
        })
        .collect();
    for (task, outcome) in &results {
        outcome.as_ref().unwrap_or_else(|e| panic!("{} failed: {e}", task.kind()));
    }
    let remaining: Vec<String> =
        svc.block.snapshots_tagged(REGION, tags::SOURCE, &volume_id).await.unwrap().into_iter().map(|s| s.id).collect();
    assert!(remaining.contains(&held), "the held snapshot survives");
    assert!(remaining.contains(&foreign.id), "the foreign snapshot survives");
    // count = 3 keeps the three newest; the held one is kept too (and counts as one of the pool).
    assert_eq!(deleted.len(), 10 - 3 - 1, "deleted {deleted:?}");
    assert!(!deleted.contains(&held) && !deleted.contains(&foreign.id));
    for id in &deleted {
        assert!(!remaining.contains(id), "{id} was reported deleted and is gone");
        let record = svc
            .catalog
            .get(&ArtifactRef { kind: ArtifactKind::EbsSnapshot, region: REGION.into(), id: id.clone() })
            .await
            .unwrap()
            .unwrap();
        assert!(record.deleted_at.is_some(), "the catalog records the deletion");
    }
}

// ---- Defects that live where moto is kinder than AWS (issue "AWS as it really behaves"). Each
// test below fails on the code before its fix, against the realism layer.

/// Runs `task` to completion on one worker process of `fleet` (realistic timings), returning the
/// task's final record.
async fn on_a_worker(fleet: &Fleet, envelope: &Envelope, extra: &[&str]) -> backup_core::ports::TaskRecord {
    fleet.send(envelope).await;
    let mut args = vec![
        "--visibility-timeout-secs=5",
        "--lease-secs=5",
        "--heartbeat-secs=1",
        "--receive-wait-secs=1",
        "--exit-when-idle=4",
    ];
    args.extend_from_slice(REALISTIC_WORKER_ARGS);
    args.extend_from_slice(extra);
    let mut worker = fleet.worker("w", &args);
    let record = fleet.wait_task(&envelope.task_id, Duration::from_secs(90), |r| r.state.is_terminal()).await;
    let status = worker.wait_async(Duration::from_secs(60)).await;
    assert!(status.success(), "worker exited with {status}; log:\n{}", worker.log_tail(30));
    record
}

fn envelope(task: Task) -> Envelope {
    Envelope::new(task, RunId::new("defects"), Origin::Operator { command: "test".into() }, Utc::now())
}

async fn attach(fleet: &Fleet, instance_id: &str, volume_id: &str) {
    fleet
        .aws
        .clients()
        .ec2
        .attach_volume()
        .instance_id(instance_id)
        .volume_id(volume_id)
        .device("/dev/sdf")
        .send()
        .await
        .unwrap();
}

#[tokio::test]
async fn retention_keeps_or_deletes_an_instances_snapshot_set_whole() {
    let fleet = Fleet::realistic("ebssetprune").await;
    let handlers = handlers(&fleet);
    let svc = services(&fleet);
    let instance_id = instance(&fleet).await;
    attach(&fleet, &instance_id, &volume(&fleet, 4, &[]).await).await;
    // Three nightly sets of two snapshots each, oldest first.
    let mut sets = Vec::new();
    for day in [1, 2, 3] {
        let task = Task::SnapshotInstance(SnapshotInstance {
            region: REGION.into(),
            instance_id: instance_id.clone(),
            exclude_boot_volume: false,
            ctx: ctx("daily", day, false),
        });
        let Outcome::Done { result, .. } = run_task(&handlers, &task).await.unwrap() else { panic!() };
        let ids: Vec<String> =
            result["snapshot_ids"].as_array().unwrap().iter().map(|v| v.as_str().unwrap().to_owned()).collect();
        assert_eq!(ids.len(), 2, "a set per night: {result}");
        for snapshot in svc.block.snapshots(REGION, &ids).await.unwrap() {
            assert_eq!(snapshot.tags.get(tags::SET).map(String::as_str), Some(task.id().as_str()));
            assert_eq!(snapshot.tags.get(tags::SET_SIZE).map(String::as_str), Some("2"));
        }
        sets.push(ids);
        // AWS's start times have a resolution of a second: keep the sets apart in time.
        tokio::time::sleep(Duration::from_millis(1100)).await;
    }
    // The catalog shows each set as one backup.
    let records = svc.catalog.by_resource(&instance_id).await.unwrap();
    let set_ids: std::collections::BTreeSet<&str> =
        records.iter().filter_map(|r| r.details.get("set").map(String::as_str)).collect();
    assert_eq!((records.len(), set_ids.len()), (6, 3), "six snapshots, three backups");

    // Keep the 2 newest backups, and never fewer than 2: the oldest *set* goes, whole. Judged
    // per snapshot (the old rule), count 2 kept one set and deleted a member of another.
    let prune = Task::Prune(Prune {
        plan: "daily".into(),
        resource: instance_id.clone(),
        resource_type: ResourceType::Ec2Instance,
        region: REGION.into(),
        rules: RetentionRules { count: Some(2), min_keep: 2, ..Default::default() },
        as_of: Utc::now() + ChronoDuration::days(1),
        source_account: None,
    });
    let results = run_tree(&handlers, prune).await;
    for (task, outcome) in &results {
        outcome.as_ref().unwrap_or_else(|e| panic!("{} failed: {e}", task.kind()));
    }
    let deletions: Vec<&Task> =
        results.iter().map(|(t, _)| t).filter(|t| t.kind() == TaskKind::DeleteArtifact).collect();
    assert_eq!(deletions.len(), 1, "one deletion task for the one expired set");
    let remaining: std::collections::BTreeSet<String> = svc
        .block
        .snapshots_tagged(REGION, tags::SOURCE, &instance_id)
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.id)
        .collect();
    for id in &sets[0] {
        assert!(!remaining.contains(id), "the oldest set is deleted whole: {remaining:?}");
    }
    for id in sets[1].iter().chain(&sets[2]) {
        assert!(remaining.contains(id), "the two newest sets are kept whole: {remaining:?}");
    }
    for record in svc.catalog.by_resource(&instance_id).await.unwrap() {
        assert_eq!(record.deleted_at.is_some(), sets[0].contains(&record.artifact.id), "{record:?}");
    }
}

#[tokio::test]
async fn the_copies_of_a_snapshot_set_carry_the_set_into_the_dr_region() {
    let fleet = Fleet::realistic("ebssetcopy").await;
    let handlers = handlers(&fleet);
    let block = services(&fleet).block;
    let instance_id = instance(&fleet).await;
    attach(&fleet, &instance_id, &volume(&fleet, 4, &[]).await).await;
    let task = Task::SnapshotInstance(SnapshotInstance {
        region: REGION.into(),
        instance_id: instance_id.clone(),
        exclude_boot_volume: false,
        ctx: ctx("daily", 4, true),
    });
    for (task, outcome) in run_tree(&handlers, task.clone()).await {
        outcome.unwrap_or_else(|e| panic!("{} failed: {e}", task.kind()));
    }
    // Exactly one copy per member: a copy whose first Describe came back empty was not started
    // a second time.
    let copies = block.snapshots_tagged(DR_REGION, tags::SOURCE, &instance_id).await.unwrap();
    assert_eq!(copies.len(), 2, "one copy per member of the set: {copies:?}");
    for copy in &copies {
        assert_eq!(copy.tags.get(tags::SET).map(String::as_str), Some(task.id().as_str()));
        assert_eq!(copy.tags.get(tags::SET_SIZE).map(String::as_str), Some("2"));
    }
}

#[tokio::test]
async fn a_copy_that_fails_gives_its_copy_slot_back() {
    let fleet = Fleet::realistic("ebsslot").await;
    let handlers = handlers(&fleet);
    let task = Task::CopySnapshot(CopySnapshot {
        source_region: REGION.into(),
        snapshot_id: "snap-0000000000000dead".into(),
        source_resource: "vol-0000000000000dead".into(),
        target: CopyTarget { region: DR_REGION.into(), kms_key: None, retain_days: None, ..Default::default() },
        ctx: ctx("daily", 5, true),
        set: None,
    });
    let err = run_task(&handlers, &task).await.expect_err("the source does not exist");
    assert_eq!(err.class, backup_core::ErrorClass::Permanent, "{err}");
    let item = fleet
        .aws
        .clients()
        .dynamodb
        .get_item()
        .table_name(&fleet.resources.state_table)
        .key("pk", aws_sdk_dynamodb::types::AttributeValue::S(format!("slots#ebs-copy:{DR_REGION}")))
        .key("sk", aws_sdk_dynamodb::types::AttributeValue::S("slots".into()))
        .send()
        .await
        .unwrap();
    let holders: Vec<String> = item
        .item()
        .and_then(|i| i.get("leases"))
        .and_then(|l| l.as_m().ok())
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default();
    assert!(!holders.contains(&task.id().to_string()), "the failed copy still holds a slot: {holders:?}");
}

#[tokio::test]
async fn snapshots_beyond_five_pending_per_volume_wait_for_capacity_instead_of_dead_lettering() {
    let fleet = Fleet::realistic_with("ebscap", |s| {
        s.task_visibility_timeout_secs = 5;
        s.task_max_receive_count = 2;
    })
    .await;
    let volume_id = volume(&fleet, 8, &[]).await;
    // Five snapshots of the volume, pending for a while: AWS refuses a sixth
    // (ConcurrentSnapshotLimitExceeded) until one completes.
    let ec2 = fleet.aws.clients().ec2;
    for _ in 0..5 {
        ec2.create_snapshot()
            .volume_id(&volume_id)
            .tag_specifications(
                TagSpecification::builder()
                    .resource_type(Ec2ResourceType::Snapshot)
                    .tags(Tag::builder().key("realism:pending-seconds").value("10").build())
                    .build(),
            )
            .send()
            .await
            .unwrap();
    }
    let task = envelope(Task::SnapshotVolume(SnapshotVolume {
        region: REGION.into(),
        volume_id: volume_id.clone(),
        ctx: ctx("daily", 6, false),
    }));
    // Parking, not waiting in place (pending for 10 s would fit in the default hold).
    let record = on_a_worker(&fleet, &task, &["--hold-pending-secs=0"]).await;
    assert_eq!(record.state, TaskState::Succeeded, "{record:#?}");
    assert!(record.attempts > 2, "it waited across more claims than maxReceiveCount allows: {record:#?}");
    assert!(fleet.dlq_messages(1, Duration::from_secs(2)).await.is_empty(), "waiting for capacity is not dead");
}

#[tokio::test]
async fn a_full_copy_pool_parks_the_copy_until_a_slot_frees_instead_of_dead_lettering() {
    let (fleet, record) = copy_behind_a_full_pool("ebspool", &["--hold-pending-secs=0"]).await;
    assert_eq!(record.state, TaskState::Succeeded, "{record:#?}");
    assert!(record.attempts > 2, "it waited across more claims than maxReceiveCount allows: {record:#?}");
    assert!(fleet.dlq_messages(1, Duration::from_secs(2)).await.is_empty(), "waiting for a slot is not dead");
}

#[tokio::test]
async fn a_copy_whose_slot_frees_within_the_hold_waits_for_it_in_place() {
    // The slots free after 8 s, within the default 20 s hold: one claim, no park.
    let (_fleet, record) = copy_behind_a_full_pool("ebspoolhold", &[]).await;
    assert_eq!((record.state, record.attempts), (TaskState::Succeeded, 1), "{record:#?}");
}

/// A DR copy sent to a worker (with `extra` flags) while the fleet's twenty copy slots of the DR
/// region are held elsewhere for another 8 seconds.
async fn copy_behind_a_full_pool(name: &str, extra: &[&str]) -> (Fleet, backup_core::ports::TaskRecord) {
    use backup_core::ports::SlotPool;
    let fleet = Fleet::realistic_with(name, |s| {
        s.task_visibility_timeout_secs = 5;
        s.task_max_receive_count = 2;
    })
    .await;
    let handlers = handlers(&fleet);
    let volume_id = volume(&fleet, 8, &[]).await;
    let snapshot = Task::SnapshotVolume(SnapshotVolume {
        region: REGION.into(),
        volume_id: volume_id.clone(),
        ctx: ctx("daily", 7, true),
    });
    let Outcome::Done { children, .. } = run_task(&handlers, &snapshot).await.unwrap() else { panic!() };
    let copy = children.into_iter().find(|t| t.kind() == TaskKind::CopySnapshot).unwrap();
    let store = fleet.store();
    for i in 0..20 {
        let holder = TaskId::new(format!("t-elsewhere-{i}"));
        assert!(store.acquire(&format!("ebs-copy:{DR_REGION}"), &holder, 20, Duration::from_secs(8)).await.unwrap());
    }
    let record = on_a_worker(&fleet, &envelope(copy), extra).await;
    (fleet, record)
}

#[tokio::test]
async fn a_snapshot_still_completing_at_its_deadline_is_catalogued_and_followed_up() {
    let fleet = Fleet::realistic_with("ebsdeadline", |s| s.task_visibility_timeout_secs = 5).await;
    // The snapshot takes six seconds; the task's deadline is two seconds away.
    let volume_id = volume(&fleet, 8, &[("realism:pending-seconds", "6")]).await;
    let mut task = envelope(Task::SnapshotVolume(SnapshotVolume {
        region: REGION.into(),
        volume_id: volume_id.clone(),
        ctx: ctx("daily", 8, false),
    }));
    task.deadline = Some(Utc::now() + ChronoDuration::seconds(2));
    let record = on_a_worker(&fleet, &task, &[]).await;
    assert_eq!(record.state, TaskState::Succeeded, "a deadline stops new work, not what exists: {record:#?}");
    let records = services(&fleet).catalog.by_resource(&volume_id).await.unwrap();
    assert_eq!(records.len(), 1, "the snapshot is catalogued: {records:?}");

    // A task that never started by its deadline starts nothing.
    let late = volume(&fleet, 8, &[]).await;
    let mut task = envelope(Task::SnapshotVolume(SnapshotVolume {
        region: REGION.into(),
        volume_id: late.clone(),
        ctx: ctx("daily", 8, false),
    }));
    task.deadline = Some(Utc::now() - ChronoDuration::seconds(1));
    let record = on_a_worker(&fleet, &task, &[]).await;
    assert_eq!(record.state, TaskState::Failed);
    assert!(record.last_error.as_deref().unwrap_or_default().contains("passed before the task started"), "{record:#?}");
    assert!(services(&fleet).block.snapshots_tagged(REGION, tags::SOURCE, &late).await.unwrap().is_empty());
}

#[tokio::test]
async fn an_ami_deletion_interrupted_after_deregistering_still_deletes_its_snapshots() {
    let fleet = Fleet::realistic("ebsamidel").await;
    let handlers = handlers(&fleet);
    let block = services(&fleet).block;
    let catalog = services(&fleet).catalog;
    let instance_id = instance(&fleet).await;
    let mut images = Vec::new();
    for day in [9, 10] {
        let task = Task::CreateAmi(CreateAmi {
            region: REGION.into(),
            instance_id: instance_id.clone(),
            reboot: false,
            ctx: ctx("weekly", day, false),
        });
        let Outcome::Done { result, .. } = run_task(&handlers, &task).await.unwrap() else { panic!() };
        images.push(result["image_id"].as_str().unwrap().to_owned());
        tokio::time::sleep(Duration::from_millis(1100)).await;
    }
    let older = block.images(REGION, std::slice::from_ref(&images[0])).await.unwrap().remove(0);
    assert!(!older.snapshot_ids.is_empty());
    let prune = Task::Prune(Prune {
        plan: "weekly".into(),
        resource: instance_id.clone(),
        resource_type: ResourceType::Ec2Instance,
        region: REGION.into(),
        rules: RetentionRules { count: Some(1), min_keep: 1, ..Default::default() },
        as_of: Utc::now() + ChronoDuration::days(1),
        source_account: None,
    });
    let Outcome::Done { children, .. } = run_task(&handlers, &prune).await.unwrap() else { panic!() };
    let delete = children.into_iter().find(|t| t.kind() == TaskKind::DeleteArtifact).expect("the older AMI expires");
    // The first attempt deregistered the image and died before deleting its snapshots.
    block.deregister_image(REGION, &older.id).await.unwrap();
    let Outcome::Done { result, .. } = run_task(&handlers, &delete).await.unwrap() else { panic!() };
    assert_eq!(result["deleted"], true, "{result}");
    let left = block.snapshots(REGION, &older.snapshot_ids).await.unwrap();
    assert!(left.is_empty(), "the image's snapshots are deleted too, not orphaned: {left:?}");
    let ami = ArtifactRef { kind: ArtifactKind::Ami, region: REGION.into(), id: older.id.clone() };
    assert!(catalog.get(&ami).await.unwrap().unwrap().deleted_at.is_some());
}

#[tokio::test]
async fn a_rerun_of_a_backup_keeps_what_the_catalog_learnt_since() {
    use backup_core::artifacts::Verification;
    let fleet = Fleet::realistic("ebsrerun").await;
    let handlers = handlers(&fleet);
    let catalog = services(&fleet).catalog;
    let volume_id = volume(&fleet, 8, &[]).await;
    let task = Task::SnapshotVolume(SnapshotVolume {
        region: REGION.into(),
        volume_id: volume_id.clone(),
        ctx: ctx("daily", 11, false),
    });
    let Outcome::Done { result, .. } = run_task(&handlers, &task).await.unwrap() else { panic!() };
    let artifact = ArtifactRef {
        kind: ArtifactKind::EbsSnapshot,
        region: REGION.into(),
        id: result["snapshot_id"].as_str().unwrap().into(),
    };
    // Since the backup: a failed verification and a DR copy.
    let failed = Verification {
        verified_at: Utc::now(),
        ok: false,
        checks: [("size".to_owned(), "FAILED: 0 GiB".to_owned())].into(),
    };
    catalog.set_verification(&artifact, &failed).await.unwrap();
    let copy =
        ArtifactRef { kind: ArtifactKind::EbsSnapshot, region: DR_REGION.into(), id: "snap-0000000000000c0de".into() };
    catalog.add_copy(&artifact, &copy).await.unwrap();
    // A re-run of the same backup task (a duplicate, a replay) catalogues its artifact again.
    run_task(&handlers, &task).await.unwrap();
    let record = catalog.get(&artifact).await.unwrap().unwrap();
    assert_eq!(record.verification, Some(failed), "a failed verification is never wiped");
    assert_eq!(record.copies, vec![copy], "the copy reference stays");
}

/// Three backups of a volume, oldest first, each catalogued; returns their snapshot ids.
async fn three_backups(fleet: &Fleet, handlers: &Arc<Handlers>, volume_id: &str, first_day: u32) -> Vec<String> {
    let mut made = Vec::new();
    for day in first_day..first_day + 3 {
        let task = Task::SnapshotVolume(SnapshotVolume {
            region: REGION.into(),
            volume_id: volume_id.to_owned(),
            ctx: ctx("daily", day, false),
        });
        let Outcome::Done { result, .. } = run_task(handlers, &task).await.unwrap() else { panic!() };
        made.push(result["snapshot_id"].as_str().unwrap().to_owned());
        tokio::time::sleep(Duration::from_millis(1100)).await;
    }
    let _ = fleet;
    made
}

fn prune_of(volume_id: &str, rules: RetentionRules, as_of: chrono::DateTime<Utc>) -> Task {
    Task::Prune(Prune {
        plan: "daily".into(),
        resource: volume_id.to_owned(),
        resource_type: ResourceType::Ec2Volume,
        region: REGION.into(),
        rules,
        as_of,
        source_account: None,
    })
}

async fn deletions_of(handlers: &Arc<Handlers>, prune: &Task) -> Vec<Task> {
    let Outcome::Done { children, .. } = run_task(handlers, prune).await.unwrap() else { panic!() };
    children.into_iter().filter(|t| t.kind() == TaskKind::DeleteArtifact).collect()
}

fn deletion_of<'a>(deletions: &'a [Task], id: &str) -> &'a Task {
    deletions
        .iter()
        .find(|t| matches!(t, Task::DeleteArtifact(d) if d.artifact.id == id))
        .unwrap_or_else(|| panic!("no deletion of {id} in {deletions:?}"))
}

#[tokio::test]
async fn a_refused_deletion_is_decided_again_by_the_next_prune() {
    let fleet = Fleet::realistic_with("ebsrefused", |s| s.task_visibility_timeout_secs = 5).await;
    let handlers = handlers(&fleet);
    let block = services(&fleet).block;
    let volume_id = volume(&fleet, 8, &[]).await;
    let made = three_backups(&fleet, &handlers, &volume_id, 12).await;
    let rules = RetentionRules { count: Some(1), min_keep: 1, ..Default::default() };
    let first = Utc::now() + ChronoDuration::days(1);
    let deletions = deletions_of(&handlers, &prune_of(&volume_id, rules.clone(), first)).await;
    // Between the decision and the deletion an operator puts the oldest under legal hold: the
    // worker refuses to delete it.
    let hold: backup_core::artifacts::Tags = [(tags::LEGAL_HOLD.to_owned(), "case-7".to_owned())].into();
    block.tag(REGION, std::slice::from_ref(&made[0]), &hold).await.unwrap();
    let record = on_a_worker(&fleet, &envelope(deletion_of(&deletions, &made[0]).clone()), &[]).await;
    assert_eq!(record.state, TaskState::Succeeded);
    assert_eq!(record.result.as_ref().unwrap()["deleted"], false, "refused: {record:#?}");
    // The hold is lifted; the next night's prune decides again, and its deletion runs (with the
    // artifact alone as its id, it was dropped as a duplicate of the refused one).
    fleet
        .aws
        .clients()
        .ec2
        .delete_tags()
        .resources(&made[0])
        .tags(Tag::builder().key(tags::LEGAL_HOLD).build())
        .send()
        .await
        .unwrap();
    let deletions = deletions_of(&handlers, &prune_of(&volume_id, rules, first + ChronoDuration::days(1))).await;
    let record = on_a_worker(&fleet, &envelope(deletion_of(&deletions, &made[0]).clone()), &[]).await;
    assert_eq!(record.result.as_ref().unwrap()["deleted"], true, "{record:#?}");
    assert!(block.snapshots(REGION, std::slice::from_ref(&made[0])).await.unwrap().is_empty());
}

#[tokio::test]
async fn a_deletion_rechecks_the_expiry_tag_and_min_keep_against_aws() {
    let fleet = Fleet::realistic("ebsrecheck").await;
    let handlers = handlers(&fleet);
    let block = services(&fleet).block;
    let volume_id = volume(&fleet, 8, &[]).await;
    let made = three_backups(&fleet, &handlers, &volume_id, 15).await;
    let as_of = Utc::now() + ChronoDuration::days(1);

    // Expiry: decided while expired, then the expiry is extended before the deletion runs.
    let deletions =
        deletions_of(&handlers, &prune_of(&volume_id, RetentionRules { count: Some(1), ..Default::default() }, as_of))
            .await;
    let later: backup_core::artifacts::Tags =
        [(tags::EXPIRES_AT.to_owned(), (as_of + ChronoDuration::days(30)).to_rfc3339())].into();
    block.tag(REGION, std::slice::from_ref(&made[1]), &later).await.unwrap();
    let Outcome::Done { result, .. } = run_task(&handlers, deletion_of(&deletions, &made[1])).await.unwrap() else {
        panic!()
    };
    assert_eq!(result["deleted"], false, "the extended expiry keeps it: {result}");
    assert!(result["refused"].as_str().unwrap().contains("NotExpired"), "{result}");
    assert_eq!(block.snapshots(REGION, std::slice::from_ref(&made[1])).await.unwrap().len(), 1);

    // min_keep: count 1 and min_keep 2 keep the newest two and delete the oldest; then the two
    // kept ones disappear (deleted by hand). Deleting the oldest now would leave nothing.
    let rules = RetentionRules { count: Some(1), min_keep: 2, ..Default::default() };
    let deletions = deletions_of(&handlers, &prune_of(&volume_id, rules, as_of + ChronoDuration::hours(1))).await;
    let oldest = deletion_of(&deletions, &made[0]).clone();
    for id in &made[1..] {
        block.delete_snapshot(REGION, id).await.unwrap();
    }
    let Outcome::Done { result, .. } = run_task(&handlers, &oldest).await.unwrap() else { panic!() };
    assert_eq!(result["deleted"], false, "min_keep holds on the re-check: {result}");
    assert_eq!(block.snapshots(REGION, std::slice::from_ref(&made[0])).await.unwrap().len(), 1, "the last backup");
}

/// The fleet's catalog, except that one kind of read fails as a throttled DynamoDB would.
struct CatalogFailing(Arc<dyn backup_core::ports::Catalog>, Failing);

enum Failing {
    /// Reading a resource's records: a backup still completes, its prune cannot.
    Queries,
    /// Reading one artifact's record.
    Reads,
}

fn throttled() -> backup_core::AwsError {
    backup_core::AwsError {
        service: "dynamodb",
        operation: "Query",
        code: "ThrottlingException".into(),
        message: "injected by the test".into(),
        class: backup_core::ErrorClass::Retry(backup_core::RetryClass::Throttled),
    }
}

#[async_trait::async_trait]
impl backup_core::ports::Catalog for CatalogFailing {
    async fn put(&self, record: &backup_core::artifacts::CatalogRecord) -> Result<(), backup_core::AwsError> {
        self.0.put(record).await
    }
    async fn get(
        &self,
        artifact: &ArtifactRef,
    ) -> Result<Option<backup_core::artifacts::CatalogRecord>, backup_core::AwsError> {
        match self.1 {
            Failing::Reads => Err(throttled()),
            Failing::Queries => self.0.get(artifact).await,
        }
    }
    async fn by_resource(
        &self,
        resource: &str,
    ) -> Result<Vec<backup_core::artifacts::CatalogRecord>, backup_core::AwsError> {
        match self.1 {
            Failing::Queries => Err(throttled()),
            Failing::Reads => self.0.by_resource(resource).await,
        }
    }
    async fn expiring_before(
        &self,
        before: chrono::DateTime<Utc>,
    ) -> Result<Vec<backup_core::artifacts::CatalogRecord>, backup_core::AwsError> {
        self.0.expiring_before(before).await
    }
    async fn list(
        &self,
        query: &CatalogQuery,
    ) -> Result<Vec<backup_core::artifacts::CatalogRecord>, backup_core::AwsError> {
        self.0.list(query).await
    }
    async fn add_copy(&self, source: &ArtifactRef, copy: &ArtifactRef) -> Result<(), backup_core::AwsError> {
        self.0.add_copy(source, copy).await
    }
    async fn set_verification(
        &self,
        artifact: &ArtifactRef,
        verification: &backup_core::artifacts::Verification,
    ) -> Result<(), backup_core::AwsError> {
        self.0.set_verification(artifact, verification).await
    }
    async fn mark_deleted(
        &self,
        artifact: &ArtifactRef,
        at: chrono::DateTime<Utc>,
    ) -> Result<(), backup_core::AwsError> {
        self.0.mark_deleted(artifact, at).await
    }
    async fn set_archive(
        &self,
        artifact: &ArtifactRef,
        archive: &backup_core::artifacts::ArchiveRecord,
    ) -> Result<(), backup_core::AwsError> {
        self.0.set_archive(artifact, archive).await
    }
}

#[tokio::test]
async fn a_backups_prune_runs_inside_the_backup_task_and_one_that_fails_there_becomes_its_own_task() {
    let fleet = Fleet::realistic("ebsfold").await;
    let handlers = handlers(&fleet);
    let volume_id = volume(&fleet, 8, &[]).await;
    let made = three_backups(&fleet, &handlers, &volume_id, 3).await;
    let keep_one = |day: u32| {
        let mut ctx = ctx("daily", day, false);
        ctx.verify = false;
        ctx.retain = Some(RetentionRules { count: Some(1), min_keep: 1, ..Default::default() });
        Task::SnapshotVolume(SnapshotVolume { region: REGION.into(), volume_id: volume_id.clone(), ctx })
    };

    // The fourth backup keeps one: its task decides retention itself and hands on the three
    // deletions, with no prune task in between. A volume backs no AMI: no image lookup.
    let images_looked_up = |fleet: &Fleet| {
        fleet.aws.calls().snapshot().get(&("EC2".to_owned(), "DescribeImages".to_owned())).copied().unwrap_or(0)
    };
    let before = images_looked_up(&fleet);
    let Outcome::Done { result, children, .. } = run_task(&handlers, &keep_one(6)).await.unwrap() else { panic!() };
    assert_eq!(images_looked_up(&fleet), before, "a volume's prune looked up images");
    assert!(children.iter().all(|t| t.kind() == TaskKind::DeleteArtifact), "{children:#?}");
    let mut deleted: Vec<&str> = children
        .iter()
        .filter_map(|t| match t {
            Task::DeleteArtifact(d) => Some(d.artifact.id.as_str()),
            _ => None,
        })
        .collect();
    deleted.sort();
    let mut expected: Vec<&str> = made.iter().map(String::as_str).collect();
    expected.sort();
    assert_eq!(deleted, expected);
    assert_eq!(result["pruned"][0]["delete"]["count"], 3, "{result}");

    // When the prune cannot run inside the task (the catalog query is throttled), the backup
    // still completes and the prune goes out as a task of its own, to be retried alone.
    let mut failing = services(&fleet);
    failing.fleet_catalog = Arc::new(CatalogFailing(failing.fleet_catalog.clone(), Failing::Queries));
    let failing = Arc::new(Handlers::with_services(failing));
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let Outcome::Done { result, children, .. } = run_task(&failing, &keep_one(7)).await.unwrap() else { panic!() };
    assert!(result.get("pruned").is_none(), "{result}");
    let [Task::Prune(prune)] = children.as_slice() else { panic!("{children:#?}") };
    assert_eq!((prune.resource.as_str(), prune.rules.count), (volume_id.as_str(), Some(1)));
}

#[tokio::test]
async fn a_volumes_prune_still_keeps_a_snapshot_that_says_it_backs_a_live_image() {
    let fleet = Fleet::realistic("ebsvolimage").await;
    let handlers = handlers(&fleet);
    let volume_id = volume(&fleet, 8, &[]).await;
    let made = three_backups(&fleet, &handlers, &volume_id, 15).await;
    // An image said to be of this volume, and the oldest backup tagged as backing it (as the
    // fleet tags an AMI's snapshots): a volume's prune must look the image up, find it live,
    // and keep the snapshot, whatever the count rule says.
    let ec2 = fleet.aws.clients().ec2;
    let instance_id = instance(&fleet).await;
    let image =
        ec2.create_image().instance_id(&instance_id).name(format!("{}-img", fleet.prefix)).send().await.unwrap();
    let image_id = image.image_id().unwrap().to_owned();
    ec2.create_tags()
        .resources(&image_id)
        .tags(Tag::builder().key(tags::SOURCE).value(&volume_id).build())
        .send()
        .await
        .unwrap();
    let block = services(&fleet).block;
    block
        .tag(REGION, std::slice::from_ref(&made[0]), &[(tags::IMAGE.to_owned(), image_id.clone())].into())
        .await
        .unwrap();
    // Past the emulator's consistency window, so that DescribeImages shows the new image.
    tokio::time::sleep(Duration::from_secs(2)).await;

    let rules = RetentionRules { count: Some(1), min_keep: 1, ..Default::default() };
    let deletions = deletions_of(&handlers, &prune_of(&volume_id, rules, Utc::now() + ChronoDuration::days(1))).await;
    let deleted: Vec<&str> = deletions
        .iter()
        .filter_map(|t| match t {
            Task::DeleteArtifact(d) => Some(d.artifact.id.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(deleted, [made[1].as_str()], "the middle one goes; the image's snapshot and the newest stay");
}

#[tokio::test]
async fn a_prune_does_not_judge_alone_the_snapshots_of_an_image_it_cannot_see_yet() {
    let fleet = Fleet::realistic("ebsunseenimage").await;
    let volume_id = volume(&fleet, 8, &[]).await;
    let made = three_backups(&fleet, &handlers(&fleet), &volume_id, 15).await;
    // An image that Describe (by id and by filter) does not show for minutes, as AWS may not
    // right after a create, and the newest backup tagged as backing it.
    let ec2 = fleet.aws.clients().ec2;
    let instance_id = instance(&fleet).await;
    let unseen = TagSpecification::builder()
        .resource_type(Ec2ResourceType::Image)
        .tags(Tag::builder().key("realism:consistency-seconds").value("600").build())
        .build();
    let image = ec2
        .create_image()
        .instance_id(&instance_id)
        .name(format!("{}-img", fleet.prefix))
        .tag_specifications(unseen)
        .send()
        .await
        .unwrap();
    let image_id = image.image_id().unwrap().to_owned();
    services(&fleet)
        .block
        .tag(REGION, std::slice::from_ref(&made[2]), &[(tags::IMAGE.to_owned(), image_id.clone())].into())
        .await
        .unwrap();
    let with_window = |secs| {
        let mut s = services(&fleet);
        s.timing.consistency_window = Duration::from_secs(secs);
        Arc::new(Handlers::with_services(s))
    };
    let prune = prune_of(
        &volume_id,
        RetentionRules { count: Some(1), min_keep: 1, ..Default::default() },
        Utc::now() + ChronoDuration::days(1),
    );
    let deleted = |deletions: Vec<Task>| {
        let mut ids: Vec<String> = deletions
            .into_iter()
            .filter_map(|t| match t {
                Task::DeleteArtifact(d) => Some(d.artifact.id),
                _ => None,
            })
            .collect();
        ids.sort();
        ids
    };

    // Within the consistency window the image may exist: its snapshot backs it and takes no
    // place among the volume's backups, so `count 1` keeps the newest other one.
    assert_eq!(deleted(deletions_of(&with_window(600), &prune).await), [made[0].clone()]);

    // Past the window, an image that is not found is gone (deregistered): the snapshot it left
    // behind is judged as a backup of its own, the newest.
    let mut expected = vec![made[0].clone(), made[1].clone()];
    expected.sort();
    assert_eq!(deleted(deletions_of(&with_window(0), &prune).await), expected);

    // An image the tag-filtered listing leaves out (its tags not written yet, as a copy's are
    // not until it completes) but that DescribeImages finds by id: its snapshot backs it.
    let listed_later = ec2
        .create_image()
        .instance_id(&instance_id)
        .name(format!("{}-img2", fleet.prefix))
        .send()
        .await
        .unwrap()
        .image_id()
        .unwrap()
        .to_owned();
    services(&fleet)
        .block
        .tag(REGION, std::slice::from_ref(&made[2]), &[(tags::IMAGE.to_owned(), listed_later)].into())
        .await
        .unwrap();
    // Past the emulator's consistency window: the image is visible by id.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(deleted(deletions_of(&with_window(0), &prune).await), [made[0].clone()]);
}
