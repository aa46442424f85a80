//! The EBS archive tier against the realism layer (archivals and restores from the archive stay
//! in progress, and a volume cannot be made from an archived snapshot): a monthly plan's prune
//! archives exactly the snapshots the rule says and records its reason for every snapshot it
//! judged, the archival is followed to completion, retention keeps an archived snapshot for its
//! 90-day minimum, a restore goes through the temporary restore, and S3 backups in GLACIER are
//! restored through RestoreObject. `backupctl report cost` prints the figures a hand computation
//! gives.

use aws_sdk_ec2::types::{ResourceType as Ec2ResourceType, Tag, TagSpecification};
use backup_core::artifacts::{ArchiveVerdictKind, CatalogRecord};
use backup_schemas::*;
use backup_tests::{binary, run_task, services, Fleet, REGION};
use backup_worker::{Handlers, Outcome};
use chrono::{DateTime, Duration as ChronoDuration, Utc};
use std::collections::BTreeMap;
use std::process::Command;
use std::sync::Arc;

const GIB: u64 = 1 << 30;
const PLAN: &str = "monthly";

fn handlers(fleet: &Fleet) -> Arc<Handlers> {
    Arc::new(Handlers::with_services(services(fleet)))
}

fn tag(key: &str, value: &str) -> Tag {
    Tag::builder().key(key).value(value).build()
}

async fn volume(fleet: &Fleet, gib: i32) -> String {
    let out = fleet.aws.clients().ec2.create_volume().availability_zone("us-east-1a").size(gib).send().await.unwrap();
    out.volume_id.unwrap()
}

/// A managed snapshot of `volume_id` for the monthly plan, catalogued as made `age_days` before
/// `as_of` (the catalog's time is the fleet's record of when the backup was taken).
async fn monthly_backup(
    fleet: &Fleet,
    volume_id: &str,
    gib: u64,
    as_of: DateTime<Utc>,
    age_days: i64,
    details: &[(&str, String)],
) -> String {
    let task_id = TaskId::derive("test.monthly", &serde_json::json!([volume_id, age_days]));
    let tags = [
        tag(tags::MANAGED, "true"),
        tag(tags::TASK_ID, task_id.as_str()),
        tag(tags::PLAN, PLAN),
        tag(tags::SOURCE, volume_id),
        tag(tags::TIER, "monthly"),
    ];
    let spec =
        TagSpecification::builder().resource_type(Ec2ResourceType::Snapshot).set_tags(Some(tags.to_vec())).build();
    let ec2 = fleet.aws.clients().ec2;
    let snapshot_id =
        ec2.create_snapshot().volume_id(volume_id).tag_specifications(spec).send().await.unwrap().snapshot_id.unwrap();
    let catalog = services(fleet).catalog;
    catalog
        .put(&CatalogRecord {
            artifact: ArtifactRef { kind: ArtifactKind::EbsSnapshot, region: REGION.into(), id: snapshot_id.clone() },
            resource: volume_id.to_owned(),
            resource_region: REGION.into(),
            plan: PLAN.into(),
            tier: "monthly".into(),
            task_id,
            created_at: as_of - ChronoDuration::days(age_days),
            expires_at: None,
            size_bytes: Some(gib * GIB),
            encrypted: Some(false),
            copy_of: None,
            copies: Vec::new(),
            details: details.iter().map(|(k, v)| ((*k).to_owned(), v.clone())).collect(),
            verification: None,
            deleted_at: None,
            archive: None,
            account: None,
        })
        .await
        .unwrap();
    snapshot_id
}

fn prune(volume_id: &str, rules: RetentionRules, as_of: DateTime<Utc>) -> Task {
    Task::Prune(Prune {
        plan: PLAN.into(),
        resource: volume_id.to_owned(),
        resource_type: ResourceType::Ec2Volume,
        region: REGION.into(),
        rules,
        as_of,
        source_account: None,
    })
}

fn monthly_rules() -> RetentionRules {
    RetentionRules {
        monthly: Some(12),
        min_keep: 1,
        archive: Some(ArchiveRule { after_days: 30, unique_percent: 40, ..ArchiveRule::default() }),
        ..RetentionRules::default()
    }
}

async fn storage_tier(fleet: &Fleet, snapshot_id: &str) -> Option<String> {
    let out = fleet.aws.clients().ec2.describe_snapshots().snapshot_ids(snapshot_id).send().await.unwrap();
    out.snapshots()[0].storage_tier().map(|t| t.as_str().to_owned())
}

#[tokio::test]
async fn a_monthly_plan_archives_exactly_what_pays_and_records_why_for_every_snapshot_it_judged() {
    let fleet = Fleet::realistic("archive").await;
    let handlers = handlers(&fleet);
    let catalog = services(&fleet).catalog;
    let volume_id = volume(&fleet, 100).await;
    // Snapshots complete, so the times below are the catalog's (the prune's as_of is in the future).
    let as_of = Utc::now() + ChronoDuration::days(1);
    // Kept 12 months: 200 days old leaves ~165 days; 40 % unique of 100 GiB costs $2.00 a month
    // in standard against $1.25 archived.
    let pays = monthly_backup(&fleet, &volume_id, 100, as_of, 200, &[]).await;
    // Measured 10 GiB unique: $0.50 in standard, cheaper than the full 100 GiB archived.
    let small = monthly_backup(&fleet, &volume_id, 100, as_of, 100, &[("unique_bytes", (10 * GIB).to_string())]).await;
    // 300 days old: kept ~65 more days, under the 90-day minimum.
    let short = monthly_backup(&fleet, &volume_id, 100, as_of, 300, &[]).await;
    // 10 days old: too young to judge.
    let young = monthly_backup(&fleet, &volume_id, 100, as_of, 10, &[]).await;
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;

    // While the plan's DR copy of a snapshot does not exist, it waits: an archived snapshot can
    // no longer be copied.
    let mut copied_first = monthly_rules();
    if let Some(rule) = copied_first.archive.as_mut() {
        rule.copy_regions = vec![backup_tests::DR_REGION.into()];
    }
    let Outcome::Done { result, children, .. } =
        run_task(&handlers, &prune(&volume_id, copied_first, as_of)).await.unwrap()
    else {
        panic!("the prune finishes")
    };
    assert!(children.iter().all(|t| t.kind() != TaskKind::ArchiveSnapshot), "{children:?}");
    assert_eq!(result["archive"]["not_yet"], 4, "{result}");

    let Outcome::Done { result, children, .. } =
        run_task(&handlers, &prune(&volume_id, monthly_rules(), as_of)).await.unwrap()
    else {
        panic!("the prune finishes")
    };
    assert_eq!(result["archive"], serde_json::json!({ "archive": 1, "standard": 2, "not_yet": 1 }), "{result}");
    let archives: Vec<&ArchiveSnapshot> = children
        .iter()
        .filter_map(|t| match t {
            Task::ArchiveSnapshot(a) => Some(a),
            _ => None,
        })
        .collect();
    assert_eq!(archives.len(), 1, "{children:?}");
    assert_eq!(archives[0].snapshot_id, pays);
    assert!((archives[0].estimate.monthly_saving_usd - 0.75).abs() < 1e-9, "{:?}", archives[0].estimate);

    let record = |id: String| {
        let catalog = catalog.clone();
        async move {
            catalog
                .get(&ArtifactRef { kind: ArtifactKind::EbsSnapshot, region: REGION.into(), id })
                .await
                .unwrap()
                .unwrap()
        }
    };
    let small_record = record(small.clone()).await.archive.expect("a decision is recorded");
    assert_eq!(small_record.verdict, ArchiveVerdictKind::Standard);
    assert!(small_record.estimate.reason.contains("would cost more"), "{}", small_record.estimate.reason);
    let short_record = record(short.clone()).await.archive.expect("a decision is recorded");
    assert!(short_record.estimate.reason.contains("90-day"), "{}", short_record.estimate.reason);
    assert!(record(young.clone()).await.archive.is_none(), "too young: decided later");
    assert_eq!(storage_tier(&fleet, &young).await.as_deref(), Some("standard"));

    // An archive task that runs too late for the 90-day minimum keeps the snapshot in standard.
    let late = Task::ArchiveSnapshot(ArchiveSnapshot {
        snapshot_id: young.clone(),
        estimate: ArchiveEstimate { keep_days: 10.0, ..archives[0].estimate.clone() },
        ..archives[0].clone()
    });
    let Outcome::Done { result, .. } = run_task(&handlers, &late).await.unwrap() else { panic!() };
    assert_eq!(result["outcome"], "kept in standard", "{result}");
    assert_eq!(record(young.clone()).await.archive.map(|a| a.verdict), Some(ArchiveVerdictKind::Standard));

    // The archival is in progress for a while (realism layer), then complete.
    let task = Task::ArchiveSnapshot(archives[0].clone());
    let Outcome::Done { result, .. } = run_task(&handlers, &task).await.unwrap() else { panic!() };
    assert_eq!(result["outcome"], "archived", "{result}");
    assert_eq!(storage_tier(&fleet, &pays).await.as_deref(), Some("archive"));
    let archived = record(pays.clone()).await.archive.unwrap();
    assert_eq!(archived.verdict, ArchiveVerdictKind::Archive);
    assert!(archived.requested_at.is_some() && archived.archived_at.is_some(), "{archived:?}");
    assert!(archived.estimate.reason.contains("archived"), "{}", archived.estimate.reason);
    // Running it again asks AWS for nothing new.
    let Outcome::Done { result, .. } = run_task(&handlers, &task).await.unwrap() else { panic!() };
    assert_eq!(result["outcome"], "archived");

    // The next prune decides nothing twice.
    let Outcome::Done { result, children, .. } =
        run_task(&handlers, &prune(&volume_id, monthly_rules(), as_of + ChronoDuration::days(1))).await.unwrap()
    else {
        panic!()
    };
    assert!(children.iter().all(|t| t.kind() != TaskKind::ArchiveSnapshot), "{children:?}");
    assert_eq!(result["archive"]["archive"], 0);

    // Retention that would delete it keeps the archived snapshot until its 90-day minimum ends:
    // deleting it sooner is billed anyway.
    let count_one = RetentionRules { count: Some(1), ..RetentionRules::default() };
    let Outcome::Done { result, children, .. } =
        run_task(&handlers, &prune(&volume_id, count_one.clone(), as_of)).await.unwrap()
    else {
        panic!()
    };
    let deleted: Vec<String> = children
        .iter()
        .filter_map(|t| match t {
            Task::DeleteArtifact(d) => Some(d.artifact.id.clone()),
            _ => None,
        })
        .collect();
    assert!(!deleted.contains(&pays), "{deleted:?}");
    assert!(deleted.contains(&small) && deleted.contains(&short), "{deleted:?}");
    assert!(result["summary"].as_str().unwrap().contains("archive minimum 1"), "{result}");
    let after_minimum = archived.archived_at.unwrap() + ChronoDuration::days(91);
    let Outcome::Done { children, .. } =
        run_task(&handlers, &prune(&volume_id, count_one, after_minimum)).await.unwrap()
    else {
        panic!()
    };
    assert!(
        children.iter().any(|t| matches!(t, Task::DeleteArtifact(d) if d.artifact.id == pays)),
        "after the minimum, the rules decide: {children:?}"
    );
}

#[tokio::test]
async fn a_restore_of_an_archived_snapshot_goes_through_its_temporary_restore() {
    let fleet = Fleet::realistic("archrestore").await;
    let handlers = handlers(&fleet);
    let volume_id = volume(&fleet, 8).await;
    let as_of = Utc::now();
    let snapshot_id = monthly_backup(&fleet, &volume_id, 8, as_of, 0, &[]).await;
    let ec2 = fleet.aws.clients().ec2;
    // Archive it as the fleet would (the archival stays in progress for a while).
    let archive = Task::ArchiveSnapshot(ArchiveSnapshot {
        plan: PLAN.into(),
        region: REGION.into(),
        snapshot_id: snapshot_id.clone(),
        resource: volume_id.clone(),
        estimate: ArchiveEstimate {
            full_gib: 8.0,
            unique_gib: 8.0,
            keep_days: 365.0,
            monthly_saving_usd: 0.3,
            reason: "test".into(),
        },
        as_of,
    });
    let Outcome::Done { .. } = run_task(&handlers, &archive).await.unwrap() else { panic!() };
    assert_eq!(storage_tier(&fleet, &snapshot_id).await.as_deref(), Some("archive"));
    // AWS makes no volume of an archived snapshot.
    let refused = ec2.create_volume().snapshot_id(&snapshot_id).availability_zone("us-east-1a").send().await;
    assert!(refused.is_err(), "the realism layer refuses a volume from an archived snapshot");

    // The operator is told before the task starts that this takes hours.
    let output = Command::new(binary("backupctl"))
        .args(["restore", "volume", "--backup", &snapshot_id, "--restore-id", &format!("cli-{}", fleet.prefix)])
        .envs(fleet.env_at(&fleet.endpoint))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("archive tier") && stderr.contains("up to 72 hours"), "{stderr}");

    let restore = Task::RestoreVolume(RestoreVolume {
        restore_id: format!("archived-{}", fleet.prefix),
        source: RestoreSource::Artifact(ArtifactRef {
            kind: ArtifactKind::EbsSnapshot,
            region: REGION.into(),
            id: snapshot_id.clone(),
        }),
        availability_zone: "us-east-1a".into(),
        volume_type: None,
        kms_key: None,
        drill: false,
    });
    // run_task re-runs a parked task like the runtime: first the temporary restore, then the volume.
    let Outcome::Done { result, .. } = run_task(&handlers, &restore).await.unwrap() else { panic!() };
    let restored = result["volume_id"].as_str().unwrap();
    let out = ec2.describe_volumes().volume_ids(restored).send().await.unwrap();
    assert_eq!(out.volumes()[0].snapshot_id(), Some(snapshot_id.as_str()));
    let tier = ec2
        .describe_snapshot_tier_status()
        .filters(aws_sdk_ec2::types::Filter::builder().name("snapshot-id").values(&snapshot_id).build())
        .send()
        .await
        .unwrap();
    let status = tier.snapshot_tier_statuses()[0].last_tiering_operation_status().map(|s| s.as_str().to_owned());
    assert_eq!(status.as_deref(), Some("temporary-restore-completed"));
}

#[tokio::test]
async fn s3_backups_in_glacier_are_restored_through_a_temporary_restore() {
    let fleet = Fleet::realistic("glacier").await;
    let handlers = handlers(&fleet);
    let s3 = fleet.aws.clients().s3;
    let backup_bucket = format!("{}-glacier-backups", fleet.prefix);
    let target_bucket = format!("{}-glacier-target", fleet.prefix);
    for bucket in [&backup_bucket, &target_bucket] {
        s3.create_bucket().bucket(bucket).send().await.unwrap();
    }
    s3.put_bucket_versioning()
        .bucket(&backup_bucket)
        .versioning_configuration(
            aws_sdk_s3::types::VersioningConfiguration::builder()
                .status(aws_sdk_s3::types::BucketVersioningStatus::Enabled)
                .build(),
        )
        .send()
        .await
        .unwrap();
    for (key, class) in [("cold.bin", "GLACIER"), ("warm.bin", "STANDARD")] {
        s3.put_object()
            .bucket(&backup_bucket)
            .key(format!("src/{key}"))
            .body(aws_sdk_s3::primitives::ByteStream::from(format!("content of {key}").into_bytes()))
            .storage_class(class.into())
            .send()
            .await
            .unwrap();
    }
    let task = Task::RestoreObjects(RestoreObjects {
        restore_id: format!("glacier-{}", fleet.prefix),
        backup_bucket: backup_bucket.clone(),
        region: REGION.into(),
        source_bucket: "src".into(),
        prefix: String::new(),
        as_of: None,
        target_bucket: target_bucket.clone(),
        target_prefix: String::new(),
        drill: false,
    });
    // First attempt: the STANDARD one is restored, the GLACIER one is asked back and parks the task.
    let handlers_once = handlers.clone();
    let first = handlers_once
        .dispatch(
            &Envelope::new(task.clone(), RunId::new("t"), Origin::Operator { command: "test".into() }, Utc::now()),
            &backup_tests::context_for(&task),
        )
        .await
        .unwrap();
    match first {
        Outcome::Pending { checkpoint, .. } => assert_eq!(checkpoint["archived_objects"], 1, "{checkpoint}"),
        other => panic!("expected a parked task, got {other:?}"),
    }
    let head = s3.head_object().bucket(&backup_bucket).key("src/cold.bin").send().await.unwrap();
    assert!(head.restore().is_some(), "a RestoreObject was made");
    // Once S3 has restored it, the next attempt copies it and skips the one already there.
    let Outcome::Done { result, .. } = run_task(&handlers, &task).await.unwrap() else { panic!() };
    assert_eq!((result["objects"].as_u64(), result["restored"].as_u64()), (Some(2), Some(1)), "{result}");
    let body = s3.get_object().bucket(&target_bucket).key("cold.bin").send().await.unwrap();
    let bytes = body.body.collect().await.unwrap().into_bytes();
    assert_eq!(&bytes[..], b"content of cold.bin");
}

#[tokio::test]
async fn report_cost_prints_what_a_hand_computation_gives() {
    let fleet = Fleet::realistic("cost").await;
    let catalog = services(&fleet).catalog;
    let now = Utc::now();
    let record = |id: &str, kind: ArtifactKind, region: &str, gib: u64| CatalogRecord {
        artifact: ArtifactRef { kind, region: region.into(), id: format!("{id}-{}", fleet.prefix) },
        resource: format!("vol-{}", fleet.prefix),
        resource_region: REGION.into(),
        plan: PLAN.into(),
        tier: "monthly".into(),
        task_id: TaskId::derive("test.cost", &serde_json::json!([id, fleet.prefix])),
        created_at: now - ChronoDuration::days(60),
        expires_at: None,
        size_bytes: Some(gib * GIB),
        encrypted: Some(true),
        copy_of: None,
        copies: Vec::new(),
        details: BTreeMap::new(),
        verification: None,
        deleted_at: None,
        archive: None,
        account: None,
    };
    let standard = record("snap-std", ArtifactKind::EbsSnapshot, REGION, 100);
    let mut archived = record("snap-arc", ArtifactKind::EbsSnapshot, REGION, 200);
    archived.archive = Some(backup_core::artifacts::ArchiveRecord {
        decided_at: now - ChronoDuration::days(20),
        verdict: ArchiveVerdictKind::Archive,
        estimate: ArchiveEstimate {
            full_gib: 200.0,
            unique_gib: 80.0,
            keep_days: 300.0,
            monthly_saving_usd: 1.5,
            reason: "test".into(),
        },
        requested_at: Some(now - ChronoDuration::days(20)),
        archived_at: Some(now - ChronoDuration::days(19)),
    });
    let mut copy = record("snap-copy", ArtifactKind::EbsSnapshot, "us-west-2", 50);
    copy.created_at = now - ChronoDuration::days(2);
    copy.copy_of = Some(standard.artifact.clone());
    let rds = record("db-snap", ArtifactKind::RdsSnapshot, REGION, 20);
    for r in [&standard, &archived, &copy, &rds] {
        catalog.put(r).await.unwrap();
    }

    let output = Command::new(binary("backupctl"))
        .args(["report", "cost", "--json"])
        .envs(fleet.env_at(&fleet.endpoint).into_iter())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", String::from_utf8_lossy(&output.stderr));
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    // 100 GiB standard ($5.00) + 200 GiB archived ($2.50) + the 50 GiB copy ($2.50) + 20 GiB RDS ($1.90).
    let storage = report["storage_monthly_usd"].as_f64().unwrap();
    assert!((storage - 11.9).abs() < 1e-9, "{report:#}");
    // The copy made 2 days ago moved 50 GiB at $0.02.
    assert!((report["transfer"]["usd"].as_f64().unwrap() - 1.0).abs() < 1e-9, "{report:#}");
    assert_eq!(report["archive"]["archived"], 1);
    assert_eq!(report["price_table"], backup_core::prices::PriceTable::builtin().version);

    // The human table names the tiers and marks the upper bounds.
    let output = Command::new(binary("backupctl"))
        .args(["report", "cost"])
        .envs(fleet.env_at(&fleet.endpoint).into_iter())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(text.contains("archive") && text.contains("standard") && text.contains("100.0*"), "{text}");
    assert!(text.contains("11.90"), "{text}");
}
