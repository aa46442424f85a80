//! `backupctl report cost`'s arithmetic against a hand computation over a small catalog, with the
//! built-in price table.

use backup_core::artifacts::{ArchiveRecord, ArchiveVerdictKind, CatalogRecord, Verification};
use backup_core::cost::{report, CostRow, STORAGE_CLASS, UNIQUE_BYTES};
use backup_core::prices::PriceTable;
use backup_schemas::{ArchiveEstimate, ArtifactKind, ArtifactRef, TaskId};
use chrono::{DateTime, Duration, TimeZone, Utc};
use std::collections::BTreeMap;

const GIB: u64 = 1 << 30;

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 1, 12, 0, 0).unwrap()
}

fn record(id: &str, kind: ArtifactKind, region: &str, plan: &str, gib: u64, age_days: i64) -> CatalogRecord {
    CatalogRecord {
        artifact: ArtifactRef { kind, region: region.into(), id: id.into() },
        resource: format!("res-{id}"),
        resource_region: region.into(),
        plan: plan.into(),
        tier: "monthly".into(),
        task_id: TaskId::derive("test", &serde_json::json!([id])),
        created_at: now() - Duration::days(age_days),
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
    }
}

fn archive(verdict: ArchiveVerdictKind, archived: bool, saving: f64) -> Option<ArchiveRecord> {
    Some(ArchiveRecord {
        decided_at: now() - Duration::days(20),
        verdict,
        estimate: ArchiveEstimate {
            full_gib: 0.0,
            unique_gib: 0.0,
            keep_days: 300.0,
            monthly_saving_usd: saving,
            reason: "test".into(),
        },
        requested_at: None,
        archived_at: archived.then(|| now() - Duration::days(19)),
    })
}

fn close(actual: f64, expected: f64) -> bool {
    (actual - expected).abs() < 1e-9
}

fn row<'a>(rows: &'a [CostRow], plan: &str, kind: &str, region: &str, tier: &str) -> &'a CostRow {
    rows.iter()
        .find(|r| r.plan == plan && r.artifact_kind == kind && r.region == region && r.storage_tier == tier)
        .unwrap_or_else(|| panic!("no row {plan}/{kind}/{region}/{tier} in {rows:#?}"))
}

#[test]
fn the_report_matches_a_hand_computation() {
    use ArtifactKind::*;
    let mut full = record("snap-full", EbsSnapshot, "us-east-1", "monthly", 100, 40);
    full.verification =
        Some(Verification { verified_at: now() - Duration::days(2), ok: true, checks: BTreeMap::new() });
    let mut archived = record("snap-archived", EbsSnapshot, "us-east-1", "monthly", 200, 40);
    archived.archive = archive(ArchiveVerdictKind::Archive, true, 1.5);
    let mut measured = record("snap-measured", EbsSnapshot, "us-east-1", "monthly", 50, 40);
    measured.details.insert(UNIQUE_BYTES.into(), (10 * GIB).to_string());
    let mut standard = record("snap-standard", EbsSnapshot, "us-east-1", "monthly", 10, 40);
    standard.archive = archive(ArchiveVerdictKind::Standard, false, 0.0);
    let mut copy = record("snap-copy", EbsSnapshot, "us-west-2", "monthly", 100, 5);
    copy.copy_of = Some(full.artifact.clone());
    let mut deleted_copy = record("snap-gone", EbsSnapshot, "us-west-2", "monthly", 10, 3);
    deleted_copy.copy_of = Some(full.artifact.clone());
    deleted_copy.deleted_at = Some(now() - Duration::days(1));
    let rds = record("db-snap", RdsSnapshot, "us-east-1", "daily", 20, 40);
    let aurora = record("cluster-snap", RdsClusterSnapshot, "eu-central-1", "daily", 30, 40);
    let mut object = record("bucket/key#v1", S3Object, "us-east-1", "daily", 1, 40);
    object.details.insert(STORAGE_CLASS.into(), "STANDARD_IA".into());
    let frankfurt = record("snap-fra", EbsSnapshot, "eu-central-1", "daily", 40, 40);
    let mumbai = record("snap-bom", EbsSnapshot, "ap-south-1", "daily", 10, 40);
    let records = [full, archived, measured, standard, copy, deleted_copy, rds, aurora, object, frankfurt, mumbai];

    let r = report(&records, 1000, 30, PriceTable::builtin(), now());

    // Standard tier, us-east-1: 100 GiB (full size, an upper bound) + 10 GiB measured + 10 GiB at $0.05.
    let std_east = row(&r.rows, "monthly", "ebs_snapshot", "us-east-1", "standard");
    assert_eq!(std_east.artifacts, 3);
    assert!(close(std_east.stored_gib, 120.0) && close(std_east.monthly_usd, 6.0), "{std_east:?}");
    assert!(std_east.upper_bound);
    // Archive tier: the full 200 GiB at $0.0125.
    let arc = row(&r.rows, "monthly", "ebs_snapshot", "us-east-1", "archive");
    assert!(close(arc.monthly_usd, 2.5) && !arc.upper_bound, "{arc:?}");
    // The live copy in us-west-2: 100 GiB at $0.05; the deleted one stores nothing.
    let west = row(&r.rows, "monthly", "ebs_snapshot", "us-west-2", "standard");
    assert_eq!(west.artifacts, 1);
    assert!(close(west.monthly_usd, 5.0));
    assert!(close(row(&r.rows, "daily", "rds_snapshot", "us-east-1", "backup-storage").monthly_usd, 20.0 * 0.095));
    assert!(close(
        row(&r.rows, "daily", "rds_cluster_snapshot", "eu-central-1", "backup-storage").monthly_usd,
        30.0 * 0.021
    ));
    assert!(close(row(&r.rows, "daily", "s3_object", "us-east-1", "STANDARD_IA").monthly_usd, 0.0125));
    // Frankfurt's own snapshot price; Mumbai has none in the table and is priced at the default.
    assert!(close(row(&r.rows, "daily", "ebs_snapshot", "eu-central-1", "standard").monthly_usd, 40.0 * 0.054));
    assert!(close(row(&r.rows, "daily", "ebs_snapshot", "ap-south-1", "standard").monthly_usd, 0.5));
    assert_eq!(r.regions_at_default_prices, ["ap-south-1"]);
    assert!(r.rows.iter().all(|row| row.account == "self"));

    let storage = 6.0 + 2.5 + 5.0 + 1.9 + 0.63 + 0.0125 + 2.16 + 0.5;
    assert!(close(r.storage_monthly_usd, storage), "{} vs {storage}", r.storage_monthly_usd);

    // Both copies made in the last 30 days moved their full size out of us-east-1 at $0.02/GB.
    assert_eq!(r.transfer.copies, 2);
    assert!(close(r.transfer.gib, 110.0) && close(r.transfer.usd, 2.2), "{:?}", r.transfer);

    // 1000 enqueued + 5 follow-ups (each recent copy: its copy task and its prune; one verification).
    assert_eq!((r.coordination.enqueued_tasks, r.coordination.follow_up_tasks, r.coordination.tasks), (1000, 5, 1005));
    let coordination = (1005.0 * 0.33 * 0.40 + 1005.0 * 3.2 * 0.625 + 1005.0 * 1.2 * 0.125) / 1e6;
    assert!(close(r.coordination.usd, coordination), "{} vs {coordination}", r.coordination.usd);

    assert_eq!((r.archive.archived, r.archive.kept_standard), (1, 1));
    assert!(close(r.archive.archived_gib, 200.0) && close(r.archive.monthly_saving_usd, 1.5));

    let month = 365.0 / 12.0 / 30.0;
    assert!(close(r.total_monthly_usd, storage + (2.2 + coordination) * month), "{}", r.total_monthly_usd);
    assert_eq!(r.price_table, PriceTable::builtin().version);
}

#[test]
fn an_empty_catalog_costs_nothing() {
    let r = report(&[], 0, 30, PriceTable::builtin(), now());
    assert!(r.rows.is_empty());
    assert_eq!(r.total_monthly_usd, 0.0);
}
