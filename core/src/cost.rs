//! What the backups cost: monthly storage per plan, resource type, region, account and storage
//! tier from the catalog at list prices ([`crate::prices`]), the cross-region copy transfer and
//! the fleet's own coordination requests over a recent period, and the archive decisions'
//! saving. Pure arithmetic over what the caller read; `backupctl report cost` prints it.
//!
//! Sizes are what the catalog records: the source's size (EBS volume size, RDS allocated storage,
//! S3 object bytes). EBS bills the standard tier by changed blocks only, so unless the catalog
//! holds a measured unique share, an EBS row is an upper bound and says so (`upper_bound`). RDS
//! and Aurora include free backup storage up to the size of the live databases, which this does
//! not subtract (also an upper bound). Copy transfer assumes every copy moved its full size (a
//! later incremental copy moves only changed blocks).

use backup_schemas::ArtifactKind;
use chrono::{DateTime, Duration, Utc};
use serde::Serialize;
use std::collections::BTreeMap;

use crate::archive::DAYS_PER_MONTH;
use crate::artifacts::{ArchiveVerdictKind, CatalogRecord};
use crate::prices::{PriceTable, RegionPrices};

const GIB: f64 = (1u64 << 30) as f64;
/// Catalog detail with a snapshot's measured unique bytes (see the archive decision).
pub const UNIQUE_BYTES: &str = "unique_bytes";
/// Catalog detail with an S3 backup's storage class.
pub const STORAGE_CLASS: &str = "storage_class";
/// The account the fleet runs in: the only one it backs up today.
pub const OWN_ACCOUNT: &str = "self";

/// Coordination requests per executed task, measured on the real task mix (the estate phase of
/// `make bench`, docs/BENCHMARKS.md): 4.73 calls per task, of which SQS batch calls, DynamoDB
/// writes (claim, completion, copy slots, catalog puts) and reads (catalog gets and queries).
pub const SQS_REQUESTS_PER_TASK: f64 = 0.33;
pub const DYNAMODB_WRITES_PER_TASK: f64 = 3.2;
pub const DYNAMODB_READS_PER_TASK: f64 = 1.2;

/// One line of the storage table.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CostRow {
    pub plan: String,
    pub artifact_kind: String,
    pub region: String,
    pub account: String,
    /// `standard` / `archive` (EBS), `backup-storage` (RDS, Aurora), or the S3 storage class.
    pub storage_tier: String,
    pub artifacts: u64,
    pub stored_gib: f64,
    pub monthly_usd: f64,
    /// Some sizes are full sizes where AWS bills less (incremental snapshots, free allowances).
    pub upper_bound: bool,
    /// Artifacts whose size the catalog does not know: counted, priced at nothing.
    pub unknown_size: u64,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TransferCost {
    pub copies: u64,
    pub gib: f64,
    pub usd: f64,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CoordinationCost {
    /// Tasks the producer and operators enqueued in the period (their run records).
    pub enqueued_tasks: u64,
    /// Follow-up tasks workers spawned, counted from the catalog: a copy task per copy, a prune
    /// per backup and copy, a verification per verified artifact.
    pub follow_up_tasks: u64,
    pub tasks: u64,
    pub sqs_requests: f64,
    pub dynamodb_writes: f64,
    pub dynamodb_reads: f64,
    pub usd: f64,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ArchiveSummary {
    pub archived: u64,
    pub archived_gib: f64,
    /// The recorded estimates' saving per month of the snapshots archived.
    pub monthly_saving_usd: f64,
    /// Snapshots the rule looked at and kept in the standard tier.
    pub kept_standard: u64,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CostReport {
    pub generated_at: DateTime<Utc>,
    pub price_table: String,
    pub currency: String,
    /// The days over which transfer and coordination were counted.
    pub period_days: i64,
    pub rows: Vec<CostRow>,
    pub storage_monthly_usd: f64,
    pub transfer: TransferCost,
    pub coordination: CoordinationCost,
    pub archive: ArchiveSummary,
    /// Storage per month plus the period's transfer and coordination scaled to a month.
    pub total_monthly_usd: f64,
    /// Regions priced with the default table's figures.
    pub regions_at_default_prices: Vec<String>,
}

/// Computes the report from the catalog (live and deleted records: deleted ones count for
/// nothing but their transfer and tasks within the period), the number of tasks runs enqueued in
/// the last `period_days`, and a price table.
pub fn report(
    records: &[CatalogRecord],
    enqueued_tasks: u64,
    period_days: i64,
    prices: &PriceTable,
    now: DateTime<Utc>,
) -> CostReport {
    let mut rows: BTreeMap<(String, String, String, String, String), CostRow> = BTreeMap::new();
    let mut transfer = TransferCost { copies: 0, gib: 0.0, usd: 0.0 };
    let mut archive = ArchiveSummary { archived: 0, archived_gib: 0.0, monthly_saving_usd: 0.0, kept_standard: 0 };
    let mut defaulted: Vec<String> = Vec::new();
    let since = now - Duration::days(period_days);
    let mut region_prices: BTreeMap<String, RegionPrices> = BTreeMap::new();
    let mut follow_ups = 0u64;

    for record in records {
        let recent = |t: DateTime<Utc>| t >= since && t <= now;
        if recent(record.created_at) {
            // The prune after each backup or copy, and the copy task itself.
            follow_ups += 1 + u64::from(record.copy_of.is_some());
        }
        if record.verification.as_ref().is_some_and(|v| recent(v.verified_at)) {
            follow_ups += 1;
        }
        let region = &record.artifact.region;
        let p = region_prices.entry(region.clone()).or_insert_with(|| {
            if !prices.has_region(region) && region != "us-east-1" {
                defaulted.push(region.clone());
            }
            prices.region(region)
        });
        let full_gib = record.size_bytes.unwrap_or(0) as f64 / GIB;
        if let Some(source) = &record.copy_of {
            if record.created_at >= since && record.created_at <= now {
                let from = prices.region(&source.region);
                transfer.copies += 1;
                transfer.gib += full_gib;
                transfer.usd += full_gib * from.inter_region_transfer_gb;
            }
        }
        if record.deleted_at.is_some() {
            continue;
        }
        let archived = record.archive.as_ref().filter(|a| a.archived_at.is_some());
        if let Some(a) = &record.archive {
            match (a.verdict, a.archived_at) {
                (ArchiveVerdictKind::Archive, Some(_)) => {
                    archive.archived += 1;
                    archive.archived_gib += full_gib;
                    archive.monthly_saving_usd += a.estimate.monthly_saving_usd;
                }
                (ArchiveVerdictKind::Standard, _) => archive.kept_standard += 1,
                (ArchiveVerdictKind::Archive, None) => {}
            }
        }
        let unique = record.details.get(UNIQUE_BYTES).and_then(|b| b.parse::<f64>().ok()).map(|b| b / GIB);
        let (tier, gib, price, upper_bound) = match record.artifact.kind {
            ArtifactKind::EbsSnapshot | ArtifactKind::Ami if archived.is_some() => {
                ("archive".to_owned(), full_gib, p.ebs_snapshot_archive_gb_month, false)
            }
            ArtifactKind::EbsSnapshot | ArtifactKind::Ami => match unique {
                Some(unique) => ("standard".to_owned(), unique, p.ebs_snapshot_standard_gb_month, false),
                None => ("standard".to_owned(), full_gib, p.ebs_snapshot_standard_gb_month, true),
            },
            ArtifactKind::RdsSnapshot => ("backup-storage".to_owned(), full_gib, p.rds_snapshot_gb_month, true),
            ArtifactKind::RdsClusterSnapshot => {
                ("backup-storage".to_owned(), full_gib, p.aurora_snapshot_gb_month, true)
            }
            ArtifactKind::S3Object | ArtifactKind::SnapshotExport | ArtifactKind::DatabaseDump => {
                let class = record.details.get(STORAGE_CLASS).cloned().unwrap_or_else(|| "STANDARD".to_owned());
                let price = p.s3(&class);
                (class, full_gib, price, false)
            }
        };
        let key = (
            record.plan.clone(),
            record.artifact.kind.as_str().to_owned(),
            region.clone(),
            OWN_ACCOUNT.to_owned(),
            tier.clone(),
        );
        let row = rows.entry(key).or_insert_with(|| CostRow {
            plan: record.plan.clone(),
            artifact_kind: record.artifact.kind.as_str().to_owned(),
            region: region.clone(),
            account: OWN_ACCOUNT.to_owned(),
            storage_tier: tier,
            artifacts: 0,
            stored_gib: 0.0,
            monthly_usd: 0.0,
            upper_bound: false,
            unknown_size: 0,
        });
        row.artifacts += 1;
        row.unknown_size += u64::from(record.size_bytes.is_none());
        row.stored_gib += gib;
        row.monthly_usd += gib * price;
        row.upper_bound |= upper_bound;
    }

    // Coordination is priced where the fleet runs: the default table's figures.
    let home = prices.region("us-east-1");
    let tasks_in_period = enqueued_tasks + follow_ups;
    let tasks = tasks_in_period as f64;
    let mut coordination = CoordinationCost {
        enqueued_tasks,
        follow_up_tasks: follow_ups,
        tasks: tasks_in_period,
        sqs_requests: tasks * SQS_REQUESTS_PER_TASK,
        dynamodb_writes: tasks * DYNAMODB_WRITES_PER_TASK,
        dynamodb_reads: tasks * DYNAMODB_READS_PER_TASK,
        usd: 0.0,
    };
    coordination.usd = (coordination.sqs_requests * home.sqs_per_million_requests
        + coordination.dynamodb_writes * home.dynamodb_per_million_writes
        + coordination.dynamodb_reads * home.dynamodb_per_million_reads)
        / 1e6;

    let rows: Vec<CostRow> = rows.into_values().collect();
    let storage_monthly_usd = rows.iter().map(|r| r.monthly_usd).sum();
    let per_month = if period_days > 0 { DAYS_PER_MONTH / period_days as f64 } else { 0.0 };
    defaulted.sort();
    CostReport {
        generated_at: now,
        price_table: prices.version.clone(),
        currency: prices.currency.clone(),
        period_days,
        total_monthly_usd: storage_monthly_usd + (transfer.usd + coordination.usd) * per_month,
        rows,
        storage_monthly_usd,
        transfer,
        coordination,
        archive,
        regions_at_default_prices: defaulted,
    }
}
