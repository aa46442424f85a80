//! EC2 backups against the emulator: each handler creates exactly one artifact with the right
//! tags and catalog record, re-runs create nothing, copies land in the DR region, retention
//! deletes exactly what expired and never a foreign, held or image-backing snapshot.

use aws_sdk_ec2::types::{ResourceType as Ec2ResourceType, Tag, TagSpecification};
use backup_core::artifacts::CatalogQuery;
use backup_schemas::*;
use backup_tests::{run_task, run_tree, services, Fleet, DR_REGION, REGION};
use backup_worker::{Handlers, Outcome};
use chrono::{Duration as ChronoDuration, TimeZone, Utc};
use std::sync::Arc;

fn ctx(plan: &str, window_day: u32, copies: bool) -> BackupContext {
    let window = Utc.with_ymd_and_hms(2026, 11, window_day, 2, 0, 0).unwrap();
    BackupContext {
        plan: plan.into(),
        tier: Tier::Daily,
        window,
        expires_at: Some(window + ChronoDuration::days(7)),
        copy_to: if copies {
            vec![CopyTarget { region: DR_REGION.into(), kms_key: Some("alias/backup".into()), retain_days: Some(30) }]
        } else {
            vec![]
        },
        verify: true,
        retain: None,
        account: None,
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
