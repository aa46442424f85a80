//! Coverage: every resource of the supported types in the policy's regions, live, classified
//! against the plans and the catalog, with the policy's compliance controls. Answers "what is
//! not protected?", which the catalog alone cannot: a resource that was never backed up has no
//! record, and one that no plan selects is in no plan.
//!
//! [`gather`] reads AWS (discovery of every resource, stopped instances included), the catalog,
//! and the newest run of each plan; [`assess`] is pure and classifies each resource:
//! - **protected**: a plan selects it and its newest good backup is within the plan's RPO (the
//!   schedule's period plus the grace);
//! - **stale**: it has a good backup, older than that;
//! - **failing**: the plan's newest run has a failed or dead task for it (with the reason);
//! - **never-backed-up**: selected, no good backup, no failed task (a new resource, or one the
//!   fleet never reached);
//! - **excluded**: a plan's tags select it but an exclude tag takes it out (named), or it is a
//!   backup bucket of the fleet;
//! - **unprotected**: no plan selects it.
//!
//! A resource several plans select gets the worst of its plans' statuses. "Good" is the RPO
//! report's: live, verified when the plan verifies, never failed verification.

use backup_schemas::{ResourceType, ScanBucket, Task, TaskState};
use chrono::{DateTime, Duration, Utc};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};

use crate::artifacts::{CatalogQuery, CatalogRecord};
use crate::error::AwsError;
use crate::policy::{Plan, Policy};
use crate::ports::{Catalog, TaskStore};
use crate::services::block::BlockStorage;
use crate::services::database::DatabaseSnapshots;
use crate::services::objects::ObjectStore;

/// A grace: a share of the period, or a fixed duration.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Grace {
    Percent(f64),
    Fixed(Duration),
}

impl Grace {
    pub fn parse(text: &str) -> Result<Grace, String> {
        let text = text.trim();
        let bad = || format!("--grace {text:?}: expected a percentage (25%) or a duration (90m, 2h, 1d)");
        if let Some(percent) = text.strip_suffix('%') {
            let value: f64 = percent.trim().parse().map_err(|_| bad())?;
            return if value >= 0.0 { Ok(Grace::Percent(value)) } else { Err(bad()) };
        }
        let split = text.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
        let (number, unit) = text.split_at(split);
        let number: i64 = number.parse().map_err(|_| bad())?;
        let duration = match unit {
            "s" => Duration::seconds(number),
            "m" => Duration::minutes(number),
            "h" => Duration::hours(number),
            "d" => Duration::days(number),
            _ => return Err(bad()),
        };
        Ok(Grace::Fixed(duration))
    }

    pub fn threshold(self, period: Duration) -> Duration {
        match self {
            Grace::Percent(p) => period + Duration::milliseconds((period.num_milliseconds() as f64 * p / 100.0) as i64),
            Grace::Fixed(d) => period + d,
        }
    }
}

/// The check key a restore drill writes into a drilled backup's verification.
pub const CHECK_DRILL: &str = "drill";
/// Plan windows looked back for a successful S3 scan.
const SCAN_WINDOWS: usize = 3;
/// Runs read to find each plan's newest.
const RUNS: usize = 1000;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum CoverageStatus {
    // Ordered worst first: a resource takes the first of its plans' statuses.
    Failing,
    NeverBackedUp,
    Stale,
    Protected,
    Excluded,
    Unprotected,
}

impl CoverageStatus {
    pub const ALL: [CoverageStatus; 6] = [
        CoverageStatus::Failing,
        CoverageStatus::NeverBackedUp,
        CoverageStatus::Stale,
        CoverageStatus::Protected,
        CoverageStatus::Excluded,
        CoverageStatus::Unprotected,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            CoverageStatus::Failing => "failing",
            CoverageStatus::NeverBackedUp => "never-backed-up",
            CoverageStatus::Stale => "stale",
            CoverageStatus::Protected => "protected",
            CoverageStatus::Excluded => "excluded",
            CoverageStatus::Unprotected => "unprotected",
        }
    }

    /// A selected resource that is not protected: what an on-call engineer is paged for.
    pub fn is_violation(self) -> bool {
        matches!(self, CoverageStatus::Failing | CoverageStatus::NeverBackedUp | CoverageStatus::Stale)
    }
}

impl std::str::FromStr for CoverageStatus {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        CoverageStatus::ALL
            .into_iter()
            .find(|status| status.as_str() == s)
            .ok_or_else(|| format!("unknown status {s:?}: expected one of failing, never-backed-up, stale, protected, excluded, unprotected"))
    }
}

/// One live resource as discovered.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LiveResource {
    pub resource_type: ResourceType,
    pub id: String,
    pub region: String,
    pub tags: BTreeMap<String, String>,
    /// EC2 instance state, RDS status.
    pub state: Option<String>,
    /// RDS automated backup retention in days (0: off).
    pub pitr_days: Option<i32>,
    /// An Aurora cluster member: backed up by its cluster, never on its own.
    pub cluster_member: Option<String>,
    /// The account it lives in; `None` for the fleet's own.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
}

/// What [`assess`] reads besides the policy.
#[derive(Clone, Debug, Default)]
pub struct Inputs {
    pub resources: Vec<LiveResource>,
    /// The live catalog records.
    pub records: Vec<CatalogRecord>,
    /// The newest run's failed or dead task of (plan, resource), with its reason.
    pub failures: BTreeMap<(String, String), String>,
    /// The newest plan window whose S3 scan of (plan, bucket) succeeded.
    pub scans: BTreeMap<(String, String), DateTime<Utc>>,
    /// Regions that could not be listed, with the error: their resources are missing.
    pub incomplete: Vec<String>,
}

/// The outcome of one control for one resource.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ControlResult {
    pub control: &'static str,
    pub ok: bool,
    pub detail: String,
}

/// One plan's view of one resource.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PlanCoverage {
    pub plan: String,
    pub status: CoverageStatus,
    pub latest_backup: Option<String>,
    pub latest_at: Option<DateTime<Utc>>,
    pub age_secs: Option<i64>,
    pub rpo_secs: i64,
    /// `backup` or `scan` (an S3 scan that found nothing to copy).
    pub basis: Option<&'static str>,
    pub reason: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CoverageRow {
    pub resource_type: ResourceType,
    pub id: String,
    pub region: String,
    /// The account it lives in: its id, or `self` for the fleet's own.
    pub account: String,
    /// The `Name` tag, for people.
    pub name: Option<String>,
    pub state: Option<String>,
    pub status: CoverageStatus,
    pub plans: Vec<PlanCoverage>,
    /// Why an excluded resource is excluded.
    pub excluded_by: Option<String>,
    pub controls: Vec<ControlResult>,
    /// The newest drill of one of its backups: passed, and when.
    pub last_drill: Option<DrillSeen>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct DrillSeen {
    pub ok: bool,
    pub at: DateTime<Utc>,
}

impl CoverageRow {
    pub fn failing_controls(&self) -> impl Iterator<Item = &ControlResult> {
        self.controls.iter().filter(|c| !c.ok)
    }
}

/// Protected and not-protected counts for one resource type in one region (the report's chart).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TypeRegionCount {
    pub resource_type: ResourceType,
    pub region: String,
    pub protected: usize,
    /// Stale, failing, never backed up or unprotected.
    pub not_protected: usize,
    pub excluded: usize,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CoverageReport {
    pub generated_at: DateTime<Utc>,
    pub regions: Vec<String>,
    pub resources: Vec<CoverageRow>,
    /// Resources by status (every status listed, zero included).
    pub summary: BTreeMap<&'static str, usize>,
    pub by_type_region: Vec<TypeRegionCount>,
    pub failing_controls: usize,
    /// Selected resources that are stale, failing or never backed up.
    pub violations: usize,
    pub unprotected: usize,
    pub incomplete: Vec<String>,
}

/// The regions coverage looks in: every region a backup plan backs up from.
pub fn regions(policy: &Policy) -> Vec<String> {
    let set: BTreeSet<&String> = policy.plans.iter().filter(|p| !p.is_drill()).flat_map(|p| &p.regions).collect();
    set.into_iter().cloned().collect()
}

/// Whether a source backup counts under `plan` (the RPO report's rule).
pub fn counts(record: &CatalogRecord, plan: &Plan) -> bool {
    let failed = record.verification.as_ref().is_some_and(|v| !v.ok);
    let verified = match &record.verification {
        Some(v) => v.ok,
        None => record.details.contains_key("verified_by"),
    };
    record.deleted_at.is_none() && !failed && (verified || !plan.verify)
}

/// How a plan relates to a resource.
enum Selection {
    Selected,
    /// The plan's tags select it, this exclude tag takes it out.
    Excluded(String),
    No,
}

fn selection(plan: &Plan, r: &LiveResource, backup_buckets: &BTreeSet<&str>) -> Selection {
    if r.resource_type == ResourceType::PostgresDb {
        // Named, not selected by tags: the plan that names it (in the region of its secret).
        let named = plan.database(&r.id).is_some_and(|d| d.region() == Some(r.region.as_str()));
        return if !plan.is_drill() && plan.covers(r.resource_type) && named {
            Selection::Selected
        } else {
            Selection::No
        };
    }
    if plan.is_drill() || !plan.covers(r.resource_type) || !plan.regions.contains(&r.region) {
        return Selection::No;
    }
    let in_account = match &r.account {
        None => plan.own_account,
        Some(id) => plan.accounts.iter().any(|a| &a.account_id == id),
    };
    if !in_account {
        return Selection::No;
    }
    if r.cluster_member.is_some()
        || (r.resource_type == ResourceType::S3Bucket && backup_buckets.contains(r.id.as_str()))
    {
        return Selection::No;
    }
    let has = |(key, value): (&String, &String)| {
        r.tags.get(key).is_some_and(|actual| value == crate::policy::ANY_VALUE || actual == value)
    };
    if !plan.select.tags.iter().all(has) {
        return Selection::No;
    }
    match plan.select.exclude_tags.iter().find(|(k, v)| has((k, v))) {
        Some((key, value)) => Selection::Excluded(format!("plan {}: {key}={value}", plan.name)),
        None => Selection::Selected,
    }
}

/// Classifies every resource; see the module docs. `grace` is the lateness allowed past a
/// plan's period.
pub fn assess(policy: &Policy, inputs: &Inputs, now: DateTime<Utc>, grace: Grace) -> CoverageReport {
    let backup_buckets: BTreeSet<&str> =
        policy.plans.iter().filter_map(|p| p.s3.as_ref().map(|s| s.backup_bucket.as_str())).collect();
    // A resource's backups are the records of its account (a backup account's copies are linked
    // from the source's records, so they count for the controls through `copies`).
    let mut by_resource: BTreeMap<(Option<&str>, &str), Vec<&CatalogRecord>> = BTreeMap::new();
    for record in &inputs.records {
        by_resource.entry((record.account.as_deref(), record.resource.as_str())).or_default().push(record);
    }
    let mut rows = Vec::new();
    for r in &inputs.resources {
        let records: &[&CatalogRecord] =
            by_resource.get(&(r.account.as_deref(), r.id.as_str())).map(Vec::as_slice).unwrap_or(&[]);
        let mut plans = Vec::new();
        let mut excluded_by = None;
        for plan in &policy.plans {
            match selection(plan, r, &backup_buckets) {
                Selection::Selected => plans.push(plan_coverage(plan, r, records, inputs, now, grace)),
                Selection::Excluded(why) => excluded_by = excluded_by.or(Some(why)),
                Selection::No => {}
            }
        }
        if r.cluster_member.is_some() {
            excluded_by =
                Some(format!("backed up with its Aurora cluster {}", r.cluster_member.as_deref().unwrap_or("")));
        } else if r.resource_type == ResourceType::S3Bucket && backup_buckets.contains(r.id.as_str()) {
            excluded_by = Some("the fleet's backup bucket".to_owned());
        }
        let status = match plans.iter().map(|p| p.status).min() {
            Some(status) => status,
            None if excluded_by.is_some() => CoverageStatus::Excluded,
            None => CoverageStatus::Unprotected,
        };
        let last_drill = last_drill(records);
        let controls =
            if plans.is_empty() { Vec::new() } else { controls(policy, r, records, &plans, last_drill.as_ref(), now) };
        rows.push(CoverageRow {
            resource_type: r.resource_type,
            id: r.id.clone(),
            region: r.region.clone(),
            account: crate::accounts::account_label(r.account.as_deref()).to_owned(),
            name: r.tags.get("Name").cloned(),
            state: r.state.clone(),
            status,
            plans,
            excluded_by: if status == CoverageStatus::Excluded { excluded_by } else { None },
            controls,
            last_drill,
        });
    }
    rows.sort_by(|a, b| {
        (a.status, a.resource_type, &a.region, &a.id).cmp(&(b.status, b.resource_type, &b.region, &b.id))
    });
    summarize(policy, rows, inputs.incomplete.clone(), now)
}

/// Counts a list of rows (also after filtering, so the summary describes what is shown).
pub fn summarize(
    policy: &Policy,
    rows: Vec<CoverageRow>,
    incomplete: Vec<String>,
    now: DateTime<Utc>,
) -> CoverageReport {
    let mut summary: BTreeMap<&'static str, usize> = CoverageStatus::ALL.iter().map(|s| (s.as_str(), 0)).collect();
    let mut chart: BTreeMap<(ResourceType, String), TypeRegionCount> = BTreeMap::new();
    for row in &rows {
        *summary.entry(row.status.as_str()).or_default() += 1;
        let cell = chart.entry((row.resource_type, row.region.clone())).or_insert_with(|| TypeRegionCount {
            resource_type: row.resource_type,
            region: row.region.clone(),
            protected: 0,
            not_protected: 0,
            excluded: 0,
        });
        match row.status {
            CoverageStatus::Protected => cell.protected += 1,
            CoverageStatus::Excluded => cell.excluded += 1,
            _ => cell.not_protected += 1,
        }
    }
    CoverageReport {
        generated_at: now,
        regions: regions(policy),
        failing_controls: rows.iter().map(|r| r.failing_controls().count()).sum(),
        violations: rows.iter().filter(|r| r.status.is_violation()).count(),
        unprotected: rows.iter().filter(|r| r.status == CoverageStatus::Unprotected).count(),
        by_type_region: chart.into_values().collect(),
        summary,
        resources: rows,
        incomplete,
    }
}

fn plan_coverage(
    plan: &Plan,
    r: &LiveResource,
    records: &[&CatalogRecord],
    inputs: &Inputs,
    now: DateTime<Utc>,
    grace: Grace,
) -> PlanCoverage {
    let rpo = grace.threshold(plan.schedule.nominal_period());
    let latest = records
        .iter()
        .filter(|rec| {
            rec.copy_of.is_none() && rec.plan == plan.name && rec.resource_region == r.region && counts(rec, plan)
        })
        .max_by_key(|rec| rec.created_at);
    let mut fresh = latest.map(|rec| (rec.created_at, "backup"));
    if let Some(&scanned) = inputs.scans.get(&(plan.name.clone(), r.id.clone())) {
        if fresh.is_none_or(|(at, _)| scanned > at) {
            fresh = Some((scanned, "scan"));
        }
    }
    let failure = inputs.failures.get(&(plan.name.clone(), r.id.clone()));
    let (status, reason) = match (failure, fresh) {
        (Some(reason), _) => (CoverageStatus::Failing, Some(reason.clone())),
        (None, Some((at, _))) if now - at <= rpo => (CoverageStatus::Protected, None),
        (None, Some((at, _))) => (
            CoverageStatus::Stale,
            Some(format!("newest good backup is {} old, over the RPO of {}", human(now - at), human(rpo))),
        ),
        (None, None) => (
            CoverageStatus::NeverBackedUp,
            Some(if records.iter().any(|rec| rec.plan == plan.name) {
                "no good backup: every catalogued one is deleted or failed verification".to_owned()
            } else {
                "selected, but the catalog has no backup of it".to_owned()
            }),
        ),
    };
    PlanCoverage {
        plan: plan.name.clone(),
        status,
        latest_backup: latest.map(|rec| rec.artifact.id.clone()),
        latest_at: fresh.map(|(at, _)| at),
        age_secs: fresh.map(|(at, _)| (now - at).num_seconds()),
        rpo_secs: rpo.num_seconds(),
        basis: fresh.map(|(_, basis)| basis),
        reason,
    }
}

/// The newest drill recorded on any of the resource's backups.
fn last_drill(records: &[&CatalogRecord]) -> Option<DrillSeen> {
    records
        .iter()
        .filter_map(|rec| {
            let v = rec.verification.as_ref()?;
            let outcome = v.checks.get(CHECK_DRILL)?;
            Some(DrillSeen { ok: v.ok && outcome != "failed", at: v.verified_at })
        })
        .max_by_key(|d| d.at)
}

/// How many days a plan keeps a backup at least: the longest of its rules (counts use the
/// schedule's period), or 0 when none gives a duration.
pub fn retention_days(plan: &Plan) -> i64 {
    let period_days = plan.schedule.nominal_period().num_seconds() as f64 / 86_400.0;
    let r = &plan.retain;
    [
        r.days.map(f64::from),
        r.count.map(|n| f64::from(n) * period_days),
        r.daily.map(f64::from),
        r.weekly.map(|n| f64::from(n) * 7.0),
        r.monthly.map(|n| f64::from(n) * 30.0),
    ]
    .into_iter()
    .flatten()
    .fold(0.0_f64, f64::max)
    .floor() as i64
}

fn controls(
    policy: &Policy,
    r: &LiveResource,
    records: &[&CatalogRecord],
    plans: &[PlanCoverage],
    last_drill: Option<&DrillSeen>,
    now: DateTime<Utc>,
) -> Vec<ControlResult> {
    let c = &policy.controls;
    let mut out = Vec::new();
    let latest: Option<&CatalogRecord> = records
        .iter()
        .filter(|rec| rec.copy_of.is_none() && rec.deleted_at.is_none() && plans.iter().any(|p| p.plan == rec.plan))
        .max_by_key(|rec| rec.created_at)
        .copied();
    let mut check = |control: &'static str, ok: bool, detail: String| out.push(ControlResult { control, ok, detail });
    if c.encrypted {
        match latest.map(|rec| (rec, rec.encrypted)) {
            Some((rec, Some(true))) => check("encrypted", true, format!("{} is encrypted", rec.artifact.id)),
            Some((rec, Some(false))) => check("encrypted", false, format!("{} is not encrypted", rec.artifact.id)),
            Some((rec, None)) => check(
                "encrypted",
                false,
                format!("the catalog does not record whether {} is encrypted", rec.artifact.id),
            ),
            None => check("encrypted", false, "no backup to judge".into()),
        }
    }
    if c.cross_region_copy {
        match latest {
            Some(rec) if rec.artifact.kind.lives_in_a_bucket() => {
                check("cross_region_copy", true, "backups in the backup bucket are copied by its replication".into())
            }
            Some(rec) if !rec.copies.is_empty() => {
                let regions: BTreeSet<&str> = rec.copies.iter().map(|c| c.region.as_str()).collect();
                check(
                    "cross_region_copy",
                    true,
                    format!("{} has copies in {}", rec.artifact.id, regions.into_iter().collect::<Vec<_>>().join(", ")),
                )
            }
            Some(rec) => {
                check("cross_region_copy", false, format!("{} has no copy in another region", rec.artifact.id))
            }
            None => check("cross_region_copy", false, "no backup to judge".into()),
        }
    }
    let plan_of = |name: &str| policy.plan(name);
    if let (Some(days), ResourceType::S3Bucket | ResourceType::PostgresDb) = (c.s3_object_lock_days, r.resource_type) {
        for p in plans {
            let lock = plan_of(&p.plan).and_then(|plan| plan.s3.as_ref()).and_then(|s3| s3.lock_days);
            match lock {
                Some(lock) if lock >= days => {
                    check("s3_object_lock_days", true, format!("plan {} locks {lock} days", p.plan))
                }
                Some(lock) => {
                    check("s3_object_lock_days", false, format!("plan {} locks {lock} days, under {days}", p.plan))
                }
                None => check("s3_object_lock_days", false, format!("plan {} sets no Object Lock", p.plan)),
            }
        }
    }
    if let Some(days) = c.min_retention_days {
        for p in plans {
            let kept = plan_of(&p.plan).map_or(0, retention_days);
            check(
                "min_retention_days",
                kept >= i64::from(days),
                format!("plan {} keeps backups {kept} days (minimum {days})", p.plan),
            );
        }
    }
    if let Some(days) = c.drill_within_days {
        match last_drill {
            Some(d) if d.ok && now - d.at <= Duration::days(i64::from(days)) => {
                check("drill_within_days", true, format!("a drill passed on {}", d.at.format("%Y-%m-%d")))
            }
            Some(d) if d.ok => check(
                "drill_within_days",
                false,
                format!("the last passing drill was {} ago (limit {days} days)", human(now - d.at)),
            ),
            Some(d) => {
                check("drill_within_days", false, format!("the last drill, on {}, failed", d.at.format("%Y-%m-%d")))
            }
            None => check("drill_within_days", false, "never drilled".into()),
        }
    }
    if let (Some(days), ResourceType::RdsInstance | ResourceType::RdsCluster) = (c.rds_pitr_days, r.resource_type) {
        match r.pitr_days {
            Some(kept) if kept >= days as i32 => {
                check("rds_pitr_days", true, format!("automated backups kept {kept} days"))
            }
            Some(0) | None => check("rds_pitr_days", false, "automated backups (point-in-time restore) are off".into()),
            Some(kept) => check("rds_pitr_days", false, format!("automated backups kept {kept} days, under {days}")),
        }
    }
    out
}

fn human(d: Duration) -> String {
    let secs = d.num_seconds();
    if secs >= 2 * 86_400 {
        format!("{:.1}d", secs as f64 / 86_400.0)
    } else if secs >= 2 * 3600 {
        format!("{:.1}h", secs as f64 / 3600.0)
    } else {
        format!("{}m", secs / 60)
    }
}

/// The ports [`gather`] reads.
#[derive(Clone)]
pub struct Sources {
    pub block: std::sync::Arc<dyn BlockStorage>,
    pub databases: std::sync::Arc<dyn DatabaseSnapshots>,
    pub objects: std::sync::Arc<dyn ObjectStore>,
    pub catalog: std::sync::Arc<dyn Catalog>,
    /// The fleet's task store, for failed tasks and S3 scans; without it neither is known.
    pub store: Option<std::sync::Arc<dyn TaskStore>>,
    /// The other accounts the policy lists, discovered through their roles.
    pub accounts: std::sync::Arc<dyn crate::accounts::Accounts>,
}

/// Discovers every resource of every supported type in `regions` and reads the evidence.
/// A region whose listing fails is recorded in `incomplete` (and its resources are missing),
/// so one unreachable region does not hide the others.
pub async fn gather(
    policy: &Policy,
    sources: &Sources,
    regions: &[String],
    now: DateTime<Utc>,
) -> Result<Inputs, AwsError> {
    let mut inputs = Inputs::default();
    for region in regions {
        match discover_all(&sources.block, &sources.databases, &sources.objects, region, None).await {
            Ok(found) => inputs.resources.extend(found),
            Err(err) => inputs.incomplete.push(format!("{region}: {err}")),
        }
    }
    // Every account some plan lists, once, in the regions of the plans that list it: an account
    // whose role cannot be assumed makes the report incomplete (exit 3), naming the role.
    let mut listed: BTreeMap<&str, (&backup_schemas::AccountRef, BTreeSet<&str>)> = BTreeMap::new();
    for plan in &policy.plans {
        for account in &plan.accounts {
            let entry = listed.entry(account.account_id.as_str()).or_insert_with(|| (account, BTreeSet::new()));
            entry.1.extend(plan.regions.iter().map(String::as_str));
        }
    }
    for (id, (account, account_regions)) in listed {
        let ports = match sources.accounts.ports(account).await {
            Ok(ports) => ports,
            Err(err) => {
                inputs.incomplete.push(format!("account {id} (role {}): {err}", account.role_arn));
                continue;
            }
        };
        for region in account_regions {
            match discover_all(&ports.block, &ports.databases, &ports.objects, region, Some(id)).await {
                Ok(found) => inputs.resources.extend(found),
                Err(err) => inputs.incomplete.push(format!("account {id} {region}: {err}")),
            }
        }
    }
    // Databases the policy names for logical backups cannot be discovered: they are covered as
    // named (one row each, in the region of their secret).
    let mut named = BTreeSet::new();
    for plan in policy.plans.iter().filter(|p| !p.is_drill()) {
        for database in &plan.databases {
            let Some(region) = database.region() else { continue };
            if named.insert((database.name.clone(), region.to_owned())) {
                inputs.resources.push(LiveResource {
                    resource_type: ResourceType::PostgresDb,
                    id: database.name.clone(),
                    region: region.to_owned(),
                    tags: Default::default(),
                    state: None,
                    pitr_days: None,
                    cluster_member: None,
                    account: None,
                });
            }
        }
    }
    // Live records only: a deleted backup protects nothing.
    inputs.records = sources.catalog.list(&CatalogQuery::default()).await?;
    if let Some(store) = &sources.store {
        let runs = store.list_runs(RUNS).await?;
        for plan in policy.plans.iter().filter(|p| !p.is_drill()) {
            // Runs come newest first: the plan's newest run says how its latest window went.
            if let Some(run) = runs.iter().find(|run| run.plan.as_deref() == Some(plan.name.as_str())) {
                for task in store.tasks_of_run(&run.run_id).await? {
                    if matches!(task.state, TaskState::Failed | TaskState::Dead) {
                        if let Some(resource) = task.resource {
                            let reason = format!(
                                "{} {} in run {}: {}",
                                task.kind.as_deref().unwrap_or("task"),
                                task.state,
                                run.run_id,
                                task.last_error.as_deref().unwrap_or("no reason recorded")
                            );
                            inputs.failures.entry((plan.name.clone(), resource)).or_insert(reason);
                        }
                    }
                }
            }
            if plan.covers(ResourceType::S3Bucket) {
                for r in inputs.resources.iter().filter(|r| r.resource_type == ResourceType::S3Bucket) {
                    if let Some(at) = scanned_at(store.as_ref(), plan, &r.id, &r.region, now).await? {
                        inputs.scans.insert((plan.name.clone(), r.id.clone()), at);
                    }
                }
            }
        }
    }
    Ok(inputs)
}

async fn discover_all(
    block: &std::sync::Arc<dyn BlockStorage>,
    databases: &std::sync::Arc<dyn DatabaseSnapshots>,
    objects: &std::sync::Arc<dyn ObjectStore>,
    region: &str,
    account: Option<&str>,
) -> Result<Vec<LiveResource>, AwsError> {
    let mut found = Vec::new();
    let live = |resource_type, id: String, tags, state, pitr_days, cluster_member| LiveResource {
        resource_type,
        id,
        region: region.to_owned(),
        tags,
        state,
        pitr_days,
        cluster_member,
        account: account.map(str::to_owned),
    };
    for v in block.list_volumes(region, &[]).await? {
        found.push(live(ResourceType::Ec2Volume, v.id, v.tags, v.state, None, None));
    }
    for i in block.list_instances(region, &[]).await? {
        found.push(live(ResourceType::Ec2Instance, i.id, i.tags, i.state, None, None));
    }
    for db in databases.list_instances(region).await? {
        found.push(live(
            ResourceType::RdsInstance,
            db.identifier,
            db.tags,
            db.status,
            db.backup_retention_days,
            db.cluster_id,
        ));
    }
    for c in databases.list_clusters(region).await? {
        found.push(live(ResourceType::RdsCluster, c.identifier, c.tags, c.status, c.backup_retention_days, None));
    }
    for b in objects.list_buckets(region).await? {
        found.push(live(ResourceType::S3Bucket, b.name, b.tags, None, None, None));
    }
    Ok(found)
}

/// The newest window start (within [`SCAN_WINDOWS`] windows of `now`) whose S3 scan of `bucket`
/// under `plan` succeeded: an incremental S3 backup that copied nothing is still fresh.
pub async fn scanned_at(
    store: &dyn TaskStore,
    plan: &Plan,
    bucket: &str,
    region: &str,
    now: DateTime<Utc>,
) -> Result<Option<DateTime<Utc>>, AwsError> {
    let mut at = now;
    for _ in 0..SCAN_WINDOWS {
        let Some(window) = plan.schedule.window_containing(at) else { return Ok(None) };
        // Only the fields of the task's identity matter for its id; the destination does not.
        let scan = Task::ScanBucket(ScanBucket {
            region: region.to_owned(),
            bucket: bucket.to_owned(),
            prefix: plan.s3.as_ref().and_then(|s| s.prefix.clone()),
            continuation: None,
            page: 0,
            listed_after: None,
            inventory: None,
            dest: plan.s3_destination(region).unwrap_or_else(|| backup_schemas::S3Destination {
                bucket: String::new(),
                region: region.to_owned(),
                storage_class: None,
                lock_days: None,
            }),
            ctx: plan.context(window.start),
        });
        if store.get(&scan.id()).await?.is_some_and(|r| r.state == TaskState::Succeeded) {
            return Ok(Some(window.start));
        }
        at = window.start - Duration::seconds(1);
    }
    Ok(None)
}
