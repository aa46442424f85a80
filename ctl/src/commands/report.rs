//! `backupctl report rpo|drills`: what the catalog says about recovery.
//!
//! - `rpo`: per resource and plan, the age of the newest good source backup against the plan's
//!   schedule (its `nominal_period()` plus a grace, 25% by default); any resource past it is a
//!   violation and the command exits 3. "Good" means not deleted and verified when the plan
//!   verifies (verification passed), or not failed when it does not. S3 backups are incremental
//!   (an unchanged object is not copied again), so a bucket is also fresh as of the newest plan
//!   window whose scan succeeded, when the fleet's state table still holds it.
//! - `coverage`: every live resource of the supported types in the policy's regions, classified
//!   protected / stale / failing / never backed up / excluded / unprotected against the plans and
//!   the catalog, with the policy's `[controls]` (`backup_core::coverage`); exit 3 when anything
//!   selected is not protected or a control fails, `--strict` also on unprotected resources;
//!   `--html FILE` writes a self-contained page for an audit.
//! - `cost`: what the backups cost per month at list prices (`backup_core::cost`): storage per
//!   plan, artifact type, region, account and storage tier from the catalog, the cross-region copy
//!   transfer and the fleet's coordination requests over the last `--days`, and the archive
//!   decisions' saving. Upper bounds are marked where AWS bills less than the catalogued size.
//! - `drills`: restore drill outcomes and time to restore, from the checks the drill handler
//!   writes into the drilled backups' catalog verification (`drill`, `restore_seconds`,
//!   `drill_task`, `drill_plan`, `drill_resource_type`); one drill per `drill_task`.

use anyhow::Context as _;
use backup_core::accounts::account_label;
use backup_core::artifacts::{CatalogQuery, CatalogRecord};
use backup_core::coverage::{self, CoverageReport, CoverageStatus, Grace};
use backup_core::outln;
use backup_core::policy::{Plan, Policy};
use backup_core::prices::PriceTable;
use backup_schemas::{ArtifactKind, ResourceType};
use chrono::{DateTime, Duration, Utc};
use clap::{Args, Subcommand};
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::PathBuf;

use super::{Fleet, EXIT_CHECK_FAILED};
use crate::output;

/// Check keys written by the drill handler (`backup-worker`, `handlers/restore/drill.rs`).
const CHECK_DRILL: &str = "drill";
const CHECK_RESTORE_SECONDS: &str = "restore_seconds";
const CHECK_DRILL_TASK: &str = "drill_task";
const CHECK_DRILL_PLAN: &str = "drill_plan";
const CHECK_DRILL_TYPE: &str = "drill_resource_type";

/// The policy a report judges against, and the lateness it allows.
#[derive(Args, Debug)]
pub struct Judged {
    /// Policy file (TOML).
    #[arg(long, env = "BACKUP_POLICY_FILE")]
    policy: Option<PathBuf>,
    /// Policy text, when no file is given.
    #[arg(long, env = "BACKUP_POLICY", hide_env_values = true)]
    policy_text: Option<String>,
    /// Allowed lateness past a plan's period: a percentage of it (`25%`) or a duration (`90m`,
    /// `2h`, `1d`).
    #[arg(long, default_value = "25%")]
    grace: String,
}

impl Judged {
    /// The parsed policy and grace; either invalid is a usage error (exit 2).
    fn load(self, region: &str) -> anyhow::Result<(Policy, Grace)> {
        let usage = |message: String| -> anyhow::Error { backup_core::exit::UsageError::new(message).into() };
        let grace = Grace::parse(&self.grace).map_err(usage)?;
        let policy = load_policy(self.policy, self.policy_text, region)?.map_err(usage)?;
        Ok((policy, grace))
    }
}

/// Runs read to count the tasks of the cost period (newest first).
const COST_RUNS: usize = 100_000;

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Every resource in the policy's regions: protected, stale, failing, never backed up,
    /// excluded or unprotected, with the policy's controls; exit 3 on a problem.
    Coverage {
        #[command(flatten)]
        judged: Judged,
        /// Also exit 3 when a resource is unprotected (no plan selects it).
        #[arg(long)]
        strict: bool,
        /// Only these resource types (ec2-volume, ec2-instance, rds-instance, rds-cluster, s3-bucket).
        #[arg(long = "type", value_name = "TYPE")]
        resource_type: Vec<String>,
        /// Only these regions.
        #[arg(long)]
        region_filter: Vec<String>,
        /// Only resources this plan selects.
        #[arg(long)]
        plan: Option<String>,
        /// Only these statuses.
        #[arg(long)]
        status: Vec<String>,
        /// Also write a self-contained HTML report (for an audit) to this file.
        #[arg(long, value_name = "FILE")]
        html: Option<PathBuf>,
        #[arg(long)]
        json: bool,
    },
    /// What the backups cost per month at list prices: storage, copy transfer, coordination.
    Cost {
        /// Days over which copy transfer and coordination requests are counted (then scaled to a month).
        #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(i64).range(1..=3650))]
        days: i64,
        #[arg(long)]
        json: bool,
    },
    /// Age of each resource's newest good backup against its plan's schedule; exit 3 on a violation.
    Rpo {
        #[command(flatten)]
        judged: Judged,
        #[arg(long)]
        json: bool,
    },
    /// Restore drill outcomes and time to restore per resource type.
    Drills {
        /// Exit 3 when the latest drill of any resource failed.
        #[arg(long)]
        check: bool,
        #[arg(long)]
        json: bool,
    },
}

pub async fn run(fleet: &Fleet, command: Command) -> anyhow::Result<i32> {
    match command {
        Command::Cost { days, json } => cost(fleet, days, json).await,
        Command::Coverage { judged, strict, resource_type, region_filter, plan, status, html, json } => {
            let filters = CoverageFilters { types: resource_type, regions: region_filter, plan, statuses: status };
            coverage(fleet, judged, strict, filters, html, json).await
        }
        Command::Rpo { judged, json } => rpo(fleet, judged, json).await,
        Command::Drills { check, json } => drills(fleet, check, json).await,
    }
}

#[derive(Debug, Serialize)]
pub struct RpoRow {
    pub resource: String,
    /// The account it lives in: its id, or `self` for the fleet's own.
    pub account: String,
    pub region: String,
    pub plan: String,
    /// `ok`, `violation`, or `unknown-plan` (the plan is not in the policy: not judged).
    pub status: String,
    pub latest_backup: Option<String>,
    pub latest_at: Option<DateTime<Utc>>,
    pub age_secs: Option<i64>,
    pub threshold_secs: Option<i64>,
    /// What the freshness rests on: `backup` (a catalogued artifact) or `scan` (an S3 scan of a
    /// plan window that succeeded without finding changes to copy).
    pub basis: Option<String>,
    pub verified: Option<bool>,
    pub note: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct RpoReport {
    pub generated_at: DateTime<Utc>,
    pub resources: Vec<RpoRow>,
    pub violations: usize,
}

fn load_policy(path: Option<PathBuf>, text: Option<String>, region: &str) -> anyhow::Result<Result<Policy, String>> {
    let policy = match (path, text) {
        (Some(path), _) => Policy::load(path, region),
        (None, Some(text)) => Policy::from_toml_str(&text, region),
        (None, None) => {
            return Ok(Err("no policy: pass --policy FILE or set BACKUP_POLICY_FILE / BACKUP_POLICY".into()))
        }
    };
    Ok(policy.map_err(|e| format!("invalid policy: {e}")))
}

/// Whether a backup was verified: by a verification task, or (S3 copies) as it was copied.
fn verified(record: &CatalogRecord) -> bool {
    match &record.verification {
        Some(v) => v.ok,
        None => record.details.contains_key("verified_by"),
    }
}

/// Whether a source backup counts for the RPO under `plan`: live, verified when the plan verifies,
/// and never one whose verification (or drill) failed.
fn counts(record: &CatalogRecord, plan: Option<&Plan>) -> bool {
    let verify = plan.is_none_or(|p| p.verify);
    let failed = record.verification.as_ref().is_some_and(|v| !v.ok);
    record.deleted_at.is_none() && !failed && (verified(record) || !verify)
}

async fn rpo(fleet: &Fleet, judged: Judged, json: bool) -> anyhow::Result<i32> {
    let (policy, grace) = judged.load(&fleet.aws.region())?;
    let store = fleet.store().ok();
    let now = Utc::now();
    let records = fleet.catalog()?.list(&CatalogQuery::default()).await?;
    // Source backups only, per (resource, region, plan): copies are judged with their source.
    // Per account as well: the same DB identifier in two accounts is two resources.
    let mut groups: BTreeMap<(String, String, String, String), Vec<&CatalogRecord>> = BTreeMap::new();
    for record in records.iter().filter(|r| r.copy_of.is_none()) {
        let account = account_label(record.account.as_deref()).to_owned();
        groups
            .entry((account, record.resource.clone(), record.resource_region.clone(), record.plan.clone()))
            .or_default()
            .push(record);
    }
    let mut rows = Vec::new();
    for ((account, resource, region, plan_name), group) in groups {
        let plan = policy.plan(&plan_name);
        let latest = group.iter().filter(|r| counts(r, plan)).max_by_key(|r| r.created_at);
        let mut row = RpoRow {
            resource: resource.clone(),
            account,
            region: region.clone(),
            plan: plan_name.clone(),
            status: "ok".into(),
            latest_backup: latest.map(|r| r.artifact.id.clone()),
            latest_at: latest.map(|r| r.created_at),
            age_secs: None,
            threshold_secs: None,
            basis: latest.map(|_| "backup".into()),
            verified: latest.map(|r| verified(r)),
            note: None,
        };
        let Some(plan) = plan else {
            row.status = "unknown-plan".into();
            row.note = Some(format!("plan {plan_name:?} is not in the policy"));
            rows.push(row);
            continue;
        };
        let threshold = grace.threshold(plan.schedule.nominal_period());
        row.threshold_secs = Some(threshold.num_seconds());
        let mut fresh_at = row.latest_at;
        if group.iter().all(|r| r.artifact.kind == ArtifactKind::S3Object) {
            if let Some(store) = &store {
                if let Some(scanned) = coverage::scanned_at(store.as_ref(), plan, &resource, &region, now).await? {
                    if fresh_at.is_none_or(|t| scanned > t) {
                        fresh_at = Some(scanned);
                        row.basis = Some("scan".into());
                    }
                }
            }
        }
        match fresh_at {
            Some(at) => {
                let age = now - at;
                row.age_secs = Some(age.num_seconds());
                if age > threshold {
                    row.status = "violation".into();
                    row.note = Some(format!("newest good backup is {} old, over {}", human(age), human(threshold)));
                }
            }
            None => {
                row.status = "violation".into();
                row.note = Some(format!("no good backup ({} in the catalog, none live and passing)", group.len()));
            }
        }
        rows.push(row);
    }
    // A resource a plan selects that the catalog knows nothing of is a violation too: only live
    // discovery can see it.
    let inputs = coverage::gather(&policy, &fleet.coverage_sources()?, &coverage::regions(&policy), now).await?;
    for row in coverage::assess(&policy, &inputs, now, grace).resources {
        // Never backed up, whatever else went wrong (a first backup that failed is `failing`).
        for p in row.plans.iter().filter(|p| p.latest_at.is_none()) {
            if rows
                .iter()
                .any(|r| r.resource == row.id && r.account == row.account && r.region == row.region && r.plan == p.plan)
            {
                continue;
            }
            rows.push(RpoRow {
                resource: row.id.clone(),
                account: row.account.clone(),
                region: row.region.clone(),
                plan: p.plan.clone(),
                status: "violation".into(),
                latest_backup: None,
                latest_at: None,
                age_secs: None,
                threshold_secs: Some(p.rpo_secs),
                basis: None,
                verified: None,
                note: Some(match &p.reason {
                    Some(reason) if p.status == CoverageStatus::Failing => {
                        format!("selected by plan {} but never backed up: {reason}", p.plan)
                    }
                    _ => format!("selected by plan {} but never backed up", p.plan),
                }),
            });
        }
    }
    for incomplete in &inputs.incomplete {
        eprintln!("error: discovery incomplete, so resources never backed up there are not seen: {incomplete}");
    }
    let violations = rows.iter().filter(|r| r.status == "violation").count();
    let report = RpoReport { generated_at: now, resources: rows, violations };
    if json {
        output::json(&report)?;
    } else {
        let table: Vec<Vec<String>> = report
            .resources
            .iter()
            .map(|r| {
                vec![
                    r.resource.clone(),
                    r.account.clone(),
                    r.region.clone(),
                    r.plan.clone(),
                    r.latest_at.map(|t| t.format("%Y-%m-%d %H:%M").to_string()).unwrap_or_else(|| "-".into()),
                    r.age_secs.map(|s| human(Duration::seconds(s))).unwrap_or_else(|| "-".into()),
                    r.threshold_secs.map(|s| human(Duration::seconds(s))).unwrap_or_else(|| "-".into()),
                    r.status.to_uppercase(),
                ]
            })
            .collect();
        outln!(
            "{}",
            output::table(&["RESOURCE", "ACCOUNT", "REGION", "PLAN", "LATEST GOOD", "AGE", "RPO", "STATUS"], &table)
        )?;
        eprintln!("{} resources, {} over their RPO", report.resources.len(), report.violations);
    }
    // A region that could not be listed is a check that could not be made: never "all is well".
    Ok(if report.violations > 0 || !inputs.incomplete.is_empty() { EXIT_CHECK_FAILED } else { 0 })
}

/// `report coverage`'s filters (each empty: everything).
pub struct CoverageFilters {
    pub types: Vec<String>,
    pub regions: Vec<String>,
    pub plan: Option<String>,
    pub statuses: Vec<String>,
}

async fn coverage(
    fleet: &Fleet,
    judged: Judged,
    strict: bool,
    filters: CoverageFilters,
    html: Option<PathBuf>,
    json: bool,
) -> anyhow::Result<i32> {
    let usage = |message: String| -> anyhow::Error { backup_core::exit::UsageError::new(message).into() };
    let (policy, grace) = judged.load(&fleet.aws.region())?;
    let types: Vec<ResourceType> = filters
        .types
        .iter()
        .map(|t| t.parse::<ResourceType>().map_err(|e| usage(format!("--type: {e}"))))
        .collect::<Result<_, _>>()?;
    let statuses: Vec<CoverageStatus> = filters
        .statuses
        .iter()
        .map(|s| s.parse::<CoverageStatus>().map_err(|e| usage(format!("--status: {e}"))))
        .collect::<Result<_, _>>()?;
    if let Some(plan) = &filters.plan {
        if policy.plan(plan).is_none() {
            return Err(usage(format!("--plan {plan:?}: no such plan in the policy")));
        }
    }
    let now = Utc::now();
    let regions = coverage::regions(&policy);
    if !json {
        eprintln!("discovering every resource in {} ...", regions.join(", "));
    }
    let inputs = coverage::gather(&policy, &fleet.coverage_sources()?, &regions, now).await?;
    let full = coverage::assess(&policy, &inputs, now, grace);
    let discovered = full.resources.len();
    let shown: Vec<_> = full
        .resources
        .into_iter()
        .filter(|r| types.is_empty() || types.contains(&r.resource_type))
        .filter(|r| filters.regions.is_empty() || filters.regions.contains(&r.region))
        .filter(|r| filters.plan.as_ref().is_none_or(|plan| r.plans.iter().any(|p| &p.plan == plan)))
        .filter(|r| statuses.is_empty() || statuses.contains(&r.status))
        .collect();
    let report = coverage::summarize(&policy, shown, inputs.incomplete.clone(), now);
    if let Some(path) = &html {
        std::fs::write(path, super::coverage_html::render(&report, &policy))
            .with_context(|| format!("writing {}", path.display()))?;
        if !json {
            eprintln!("wrote {}", path.display());
        }
    }
    if json {
        output::json(&report)?;
    } else {
        print_coverage(&report, discovered)?;
    }
    let problem = report.violations > 0
        || report.failing_controls > 0
        || !report.incomplete.is_empty()
        || (strict && report.unprotected > 0);
    Ok(if problem { EXIT_CHECK_FAILED } else { 0 })
}

/// The human table, grouped by status (worst first), then the summary of what is shown (of
/// `discovered` resources in all).
fn print_coverage(report: &CoverageReport, discovered: usize) -> anyhow::Result<()> {
    for status in CoverageStatus::ALL {
        let rows: Vec<Vec<String>> = report
            .resources
            .iter()
            .filter(|r| r.status == status)
            .map(|r| {
                let plans: Vec<String> = r.plans.iter().map(|p| p.plan.clone()).collect();
                let age = r
                    .plans
                    .iter()
                    .filter_map(|p| {
                        p.age_secs.map(|a| {
                            format!("{} / {}", human(Duration::seconds(a)), human(Duration::seconds(p.rpo_secs)))
                        })
                    })
                    .next()
                    .unwrap_or_else(|| "-".into());
                let why =
                    r.plans.iter().find_map(|p| p.reason.clone()).or_else(|| r.excluded_by.clone()).unwrap_or_default();
                let failing: Vec<&str> = r.failing_controls().map(|c| c.control).collect();
                vec![
                    r.resource_type.as_str().to_owned(),
                    r.id.clone(),
                    r.name.clone().unwrap_or_default(),
                    r.account.clone(),
                    r.region.clone(),
                    if plans.is_empty() { "-".into() } else { plans.join(",") },
                    age,
                    if failing.is_empty() { "-".into() } else { failing.join(",") },
                    why,
                ]
            })
            .collect();
        if rows.is_empty() {
            continue;
        }
        outln!("{} ({})", status.as_str().to_uppercase(), rows.len())?;
        outln!(
            "{}",
            output::table(
                &["TYPE", "RESOURCE", "NAME", "ACCOUNT", "REGION", "PLANS", "AGE / RPO", "FAILING CONTROLS", "WHY"],
                &rows
            )
        )?;
        outln!()?;
    }
    let counts: Vec<String> =
        report.summary.iter().filter(|(_, n)| **n > 0).map(|(status, n)| format!("{status} {n}")).collect();
    let shown = report.resources.len();
    let scope = if shown == discovered {
        format!("{shown} resources")
    } else {
        format!("{shown} of {discovered} resources shown")
    };
    outln!("{scope}: {}", if counts.is_empty() { "none".to_owned() } else { counts.join(", ") })?;
    if report.failing_controls > 0 {
        outln!("{} failing controls", report.failing_controls)?;
    }
    for incomplete in &report.incomplete {
        eprintln!("warning: discovery incomplete: {incomplete}");
    }
    Ok(())
}

async fn cost(fleet: &Fleet, days: i64, json: bool) -> anyhow::Result<i32> {
    let now = Utc::now();
    let since = now - Duration::days(days);
    let records = fleet.catalog()?.list(&CatalogQuery { include_deleted: true, ..CatalogQuery::default() }).await?;
    let enqueued: u64 = match fleet.store() {
        Ok(store) => store
            .list_runs(COST_RUNS)
            .await?
            .iter()
            .filter(|run| run.created_at >= since)
            .map(|run| run.expected.values().sum::<u64>())
            .sum(),
        Err(_) => 0,
    };
    let report = backup_core::cost::report(&records, enqueued, days, PriceTable::builtin(), now);
    if json {
        output::json(&report)?;
        return Ok(0);
    }
    let usd = |v: f64| if v != 0.0 && v.abs() < 0.01 { format!("{v:.4}") } else { format!("{v:.2}") };
    let table: Vec<Vec<String>> = report
        .rows
        .iter()
        .map(|r| {
            vec![
                r.plan.clone(),
                r.artifact_kind.clone(),
                r.region.clone(),
                r.account.clone(),
                r.storage_tier.clone(),
                r.artifacts.to_string(),
                format!(
                    "{:.1}{}{}",
                    r.stored_gib,
                    if r.upper_bound { "*" } else { "" },
                    if r.unknown_size > 0 { format!(" ({} unsized)", r.unknown_size) } else { String::new() }
                ),
                usd(r.monthly_usd),
            ]
        })
        .collect();
    outln!(
        "{}",
        output::table(&["PLAN", "TYPE", "REGION", "ACCOUNT", "TIER", "ARTIFACTS", "GiB", "USD/MONTH"], &table)
    )?;
    outln!()?;
    outln!("storage                     {:>12} USD/month", usd(report.storage_monthly_usd))?;
    outln!(
        "copy transfer, last {days}d     {:>12} USD ({} copies, {:.1} GiB)",
        usd(report.transfer.usd),
        report.transfer.copies,
        report.transfer.gib
    )?;
    outln!(
        "coordination, last {days}d      {:>12} USD ({} tasks: {} enqueued, {} follow-ups)",
        usd(report.coordination.usd),
        report.coordination.tasks,
        report.coordination.enqueued_tasks,
        report.coordination.follow_up_tasks
    )?;
    outln!(
        "archive tier                {:>12} USD/month saved ({} archived, {:.1} GiB; {} kept in standard)",
        usd(report.archive.monthly_saving_usd),
        report.archive.archived,
        report.archive.archived_gib,
        report.archive.kept_standard
    )?;
    outln!("total                       {:>12} USD/month", usd(report.total_monthly_usd))?;
    eprintln!(
        "list prices of {} ({}); * = full size, an upper bound (EBS bills changed blocks; RDS includes a free allowance)",
        report.price_table, report.currency
    );
    if !report.regions_at_default_prices.is_empty() {
        eprintln!(
            "priced at us-east-1 figures (no regional prices in the table): {}",
            report.regions_at_default_prices.join(", ")
        );
    }
    Ok(0)
}

fn human(d: Duration) -> String {
    let secs = d.num_seconds();
    if secs >= 2 * 86_400 {
        format!("{:.1}d", secs as f64 / 86_400.0)
    } else if secs >= 2 * 3600 {
        format!("{:.1}h", secs as f64 / 3600.0)
    } else if secs >= 120 {
        format!("{}m", secs / 60)
    } else {
        format!("{secs}s")
    }
}

#[derive(Debug, Serialize)]
pub struct Drill {
    pub task_id: String,
    pub plan: Option<String>,
    pub resource: String,
    pub region: String,
    pub resource_type: Option<String>,
    pub ok: bool,
    pub restore_seconds: Option<f64>,
    pub at: DateTime<Utc>,
    pub artifacts: Vec<String>,
    pub outcome: String,
}

#[derive(Debug, Default, Serialize)]
pub struct DrillSummary {
    pub drills: usize,
    pub passed: usize,
    pub failed: usize,
    pub restore_seconds_avg: Option<f64>,
    pub restore_seconds_max: Option<f64>,
    pub last_at: Option<DateTime<Utc>>,
    pub last_ok: Option<bool>,
}

#[derive(Debug, Serialize)]
pub struct DrillReport {
    pub drills: Vec<Drill>,
    pub by_type: BTreeMap<String, DrillSummary>,
    /// Resources whose latest drill failed.
    pub failing: Vec<String>,
}

/// Drills as recorded in the catalog, one per drill task, newest first.
pub fn collect_drills(records: &[CatalogRecord]) -> Vec<Drill> {
    let mut by_task: BTreeMap<String, Drill> = BTreeMap::new();
    for record in records {
        let Some(verification) = &record.verification else { continue };
        let Some(task) = verification.checks.get(CHECK_DRILL_TASK) else { continue };
        let drill = by_task.entry(task.clone()).or_insert_with(|| {
            let outcome = verification.checks.get(CHECK_DRILL).cloned().unwrap_or_default();
            Drill {
                task_id: task.clone(),
                plan: verification.checks.get(CHECK_DRILL_PLAN).cloned(),
                resource: record.resource.clone(),
                region: record.resource_region.clone(),
                resource_type: verification.checks.get(CHECK_DRILL_TYPE).cloned(),
                ok: outcome.starts_with("ok"),
                restore_seconds: verification.checks.get(CHECK_RESTORE_SECONDS).and_then(|s| s.parse().ok()),
                at: verification.verified_at,
                artifacts: Vec::new(),
                outcome,
            }
        });
        drill.artifacts.push(record.artifact.id.clone());
    }
    let mut drills: Vec<Drill> = by_task.into_values().collect();
    drills.sort_by(|a, b| b.at.cmp(&a.at).then(a.task_id.cmp(&b.task_id)));
    drills
}

pub fn summarize(drills: Vec<Drill>) -> DrillReport {
    let mut by_type: BTreeMap<String, DrillSummary> = BTreeMap::new();
    let mut latest: BTreeMap<(String, String), bool> = BTreeMap::new();
    for drill in &drills {
        let summary = by_type.entry(drill.resource_type.clone().unwrap_or_else(|| "unknown".into())).or_default();
        summary.drills += 1;
        if drill.ok {
            summary.passed += 1;
        } else {
            summary.failed += 1;
        }
        if summary.last_at.is_none_or(|t| drill.at > t) {
            summary.last_at = Some(drill.at);
            summary.last_ok = Some(drill.ok);
        }
        // Newest first: the first seen per resource is its latest.
        latest.entry((drill.resource.clone(), drill.region.clone())).or_insert(drill.ok);
    }
    for (kind, summary) in by_type.iter_mut() {
        let seconds: Vec<f64> = drills
            .iter()
            .filter(|d| d.resource_type.as_deref().unwrap_or("unknown") == kind && d.ok)
            .filter_map(|d| d.restore_seconds)
            .collect();
        if !seconds.is_empty() {
            summary.restore_seconds_avg = Some(seconds.iter().sum::<f64>() / seconds.len() as f64);
            summary.restore_seconds_max = seconds.iter().copied().reduce(f64::max);
        }
    }
    let failing = latest.into_iter().filter(|(_, ok)| !ok).map(|((resource, _), _)| resource).collect();
    DrillReport { drills, by_type, failing }
}

async fn drills(fleet: &Fleet, check: bool, json: bool) -> anyhow::Result<i32> {
    // Deleted backups keep their drill history.
    let records = fleet.catalog()?.list(&CatalogQuery { include_deleted: true, ..Default::default() }).await?;
    let report = summarize(collect_drills(&records));
    if json {
        output::json(&report)?;
    } else {
        let rows: Vec<Vec<String>> = report
            .by_type
            .iter()
            .map(|(kind, s)| {
                vec![
                    kind.clone(),
                    s.drills.to_string(),
                    s.passed.to_string(),
                    s.failed.to_string(),
                    s.restore_seconds_avg.map(|v| format!("{v:.1}")).unwrap_or_else(|| "-".into()),
                    s.restore_seconds_max.map(|v| format!("{v:.1}")).unwrap_or_else(|| "-".into()),
                    s.last_at.map(|t| t.format("%Y-%m-%d %H:%M").to_string()).unwrap_or_else(|| "-".into()),
                ]
            })
            .collect();
        outln!(
            "{}",
            output::table(&["TYPE", "DRILLS", "PASSED", "FAILED", "AVG RESTORE S", "MAX RESTORE S", "LAST"], &rows)
        )?;
        let recent: Vec<Vec<String>> = report
            .drills
            .iter()
            .take(20)
            .map(|d| {
                vec![
                    d.at.format("%Y-%m-%d %H:%M").to_string(),
                    d.resource.clone(),
                    d.resource_type.clone().unwrap_or_default(),
                    if d.ok { "ok".into() } else { "FAILED".into() },
                    d.restore_seconds.map(|v| format!("{v:.1}")).unwrap_or_else(|| "-".into()),
                    d.outcome.chars().take(80).collect(),
                ]
            })
            .collect();
        outln!()?;
        outln!("{}", output::table(&["WHEN", "RESOURCE", "TYPE", "RESULT", "RESTORE S", "OUTCOME"], &recent))?;
        if !report.failing.is_empty() {
            eprintln!("latest drill failed for: {}", report.failing.join(", "));
        }
    }
    Ok(if check && !report.failing.is_empty() { EXIT_CHECK_FAILED } else { 0 })
}

#[cfg(test)]
mod tests {
    use super::*;
    use backup_core::artifacts::Verification;
    use backup_schemas::{ArtifactRef, TaskId};

    fn record(id: &str, kind: ArtifactKind, checks: Option<(bool, &[(&str, &str)])>) -> CatalogRecord {
        CatalogRecord {
            artifact: ArtifactRef { kind, region: "us-east-1".into(), id: id.into() },
            resource: "res".into(),
            resource_region: "us-east-1".into(),
            plan: "daily".into(),
            tier: "daily".into(),
            task_id: TaskId::new("t-1"),
            created_at: Utc::now(),
            expires_at: None,
            size_bytes: None,
            encrypted: None,
            copy_of: None,
            copies: vec![],
            details: Default::default(),
            verification: checks.map(|(ok, checks)| Verification {
                verified_at: Utc::now(),
                ok,
                checks: checks.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect(),
            }),
            deleted_at: None,
            archive: None,
            account: None,
        }
    }

    #[test]
    fn what_counts_for_the_rpo() {
        let unverified = record("snap-1", ArtifactKind::EbsSnapshot, None);
        assert!(!counts(&unverified, None), "plans verify by default: an unverified backup waits");
        let failed = record("snap-2", ArtifactKind::EbsSnapshot, Some((false, &[])));
        assert!(!counts(&failed, None));
        assert!(counts(&record("snap-3", ArtifactKind::EbsSnapshot, Some((true, &[]))), None));
        // S3 copies are verified as they are copied (no verification task).
        let mut copy = record("b/k#v", ArtifactKind::S3Object, None);
        copy.details.insert("verified_by".into(), "sha256".into());
        assert!(counts(&copy, None));
    }

    #[test]
    fn drills_group_by_task_and_the_latest_per_resource_decides_failing() {
        let drill = |id: &str, task: &str, outcome: &str, seconds: &str| {
            let checks: Vec<(&str, &str)> = vec![
                (CHECK_DRILL, outcome),
                (CHECK_DRILL_TASK, task),
                (CHECK_RESTORE_SECONDS, seconds),
                (CHECK_DRILL_TYPE, "ec2-instance"),
            ];
            record(id, ArtifactKind::EbsSnapshot, Some((outcome.starts_with("ok"), &checks)))
        };
        // One drill of a two-snapshot set, then a failed one of the same resource.
        let mut records = vec![
            drill("snap-a", "t-1", "ok: 4 checks passed", "12.0"),
            drill("snap-b", "t-1", "ok: 4 checks passed", "12.0"),
        ];
        let mut failed = drill("snap-c", "t-2", "FAILED: size", "3.0");
        failed.verification.as_mut().unwrap().verified_at = Utc::now() + Duration::minutes(5);
        records.push(failed);
        let drills = collect_drills(&records);
        assert_eq!(drills.len(), 2);
        assert_eq!(drills[0].task_id, "t-2", "newest first");
        assert_eq!(drills[1].artifacts, ["snap-a", "snap-b"]);
        let report = summarize(drills);
        let summary = &report.by_type["ec2-instance"];
        assert_eq!((summary.drills, summary.passed, summary.failed), (2, 1, 1));
        assert_eq!(summary.restore_seconds_avg, Some(12.0), "time to restore of passing drills");
        assert_eq!(report.failing, ["res"]);
    }

    #[test]
    fn grace_parses_percentages_and_durations() {
        assert_eq!(Grace::parse("25%"), Ok(Grace::Percent(25.0)));
        assert_eq!(Grace::parse("90m"), Ok(Grace::Fixed(Duration::minutes(90))));
        assert_eq!(Grace::parse("1d"), Ok(Grace::Fixed(Duration::days(1))));
        assert!(Grace::parse("soon").is_err());
        assert!(Grace::parse("-5%").is_err());
        assert_eq!(Grace::Percent(25.0).threshold(Duration::hours(24)), Duration::hours(30));
        assert_eq!(Grace::Fixed(Duration::hours(2)).threshold(Duration::hours(24)), Duration::hours(26));
    }
}
