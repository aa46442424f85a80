//! The EBS snapshot archive decision: whether moving one kept snapshot to the archive tier saves
//! money over the rest of its life. Pure logic; the prune gathers the inputs and records the
//! outcome either way.
//!
//! The two tiers bill differently, which is why archiving blindly can cost more:
//! - the **standard** tier keeps only changed blocks, so a snapshot costs its *unique* share
//!   (the blocks no other snapshot of the volume references) at the standard price; archiving it
//!   frees only that share there;
//! - the **archive** tier keeps a *full* copy at a quarter of the price, and bills at least 90
//!   days: deleting (or permanently restoring) it sooner is charged the remaining days.
//!
//! So a snapshot is archived only when it is at least `after_days` old, its retention keeps it
//! at least [`MINIMUM_ARCHIVE_DAYS`] more days, and `full × archive price` is below `unique ×
//! standard price` over those days. The full size is the volume size (an upper bound: AWS counts
//! written blocks only), which errs towards keeping a snapshot in the standard tier. Restores from
//! the archive tier cost extra (retrieval per GB, up to 72 hours); they are rare and not counted.

use backup_schemas::task::{ArchiveEstimate, ArchiveRule, RetentionRules, Tier};
use chrono::{DateTime, Months, TimeDelta, Utc};

/// AWS bills an archived snapshot for at least this many days.
pub const MINIMUM_ARCHIVE_DAYS: i64 = 90;
/// Days in a billing month, for converting daily figures to monthly ones (365 / 12).
pub const DAYS_PER_MONTH: f64 = 365.0 / 12.0;

/// What the decision knows about one snapshot.
#[derive(Clone, Debug, PartialEq)]
pub struct ArchiveInput {
    pub created_at: DateTime<Utc>,
    /// Until when retention will keep it; `None` when no rule gives it a known lifetime.
    pub keep_until: Option<DateTime<Utc>>,
    /// Full size in GiB (the volume size).
    pub full_gib: f64,
    /// Measured unique share in GiB, when the catalog records one.
    pub unique_gib: Option<f64>,
    /// Standard and archive tier prices, USD per GB-month, in the snapshot's region.
    pub standard_price: f64,
    pub archive_price: f64,
}

#[derive(Clone, Debug, PartialEq)]
pub enum ArchiveVerdict {
    /// Younger than `after_days`: decided later, nothing recorded.
    NotYet,
    /// Archive it; the estimate goes with the archive task and into the catalog.
    Archive(ArchiveEstimate),
    /// Keep it in the standard tier for good, for this reason (recorded in the catalog).
    Standard(ArchiveEstimate),
}

/// Until when the plan's rules keep a snapshot created at `created_at`. `count = N` keeps it N
/// schedule periods (`period_days`; without it, a monthly tier's period is a month and a yearly
/// tier's a year); `monthly = N` keeps it N months when each backup is its month's only one (a
/// period of 28 days or more); `days` keeps it that many days, and the expiry tag until it
/// passes. The rules are a union: the latest wins. `None` when no rule gives a known lifetime.
pub fn keep_until(
    rules: &RetentionRules,
    tier: Tier,
    period_days: Option<u32>,
    created_at: DateTime<Utc>,
    expires_at: Option<DateTime<Utc>>,
) -> Option<DateTime<Utc>> {
    let tier_months = match tier {
        Tier::Monthly => Some(1),
        Tier::Yearly => Some(12),
        _ => None,
    };
    let (by_count, monthly_backups) = match period_days {
        Some(days) => (
            rules.count.and_then(|n| created_at.checked_add_signed(TimeDelta::days(i64::from(n) * i64::from(days)))),
            days >= 28,
        ),
        None => (
            tier_months.zip(rules.count).and_then(|(m, n)| created_at.checked_add_months(Months::new(m * n))),
            tier_months.is_some(),
        ),
    };
    let by_month =
        rules.monthly.filter(|_| monthly_backups).and_then(|n| created_at.checked_add_months(Months::new(n)));
    let by_days = rules.days.and_then(|d| created_at.checked_add_signed(TimeDelta::days(i64::from(d))));
    [by_count, by_month, by_days, expires_at].into_iter().flatten().max()
}

/// Decides for one snapshot at `now`; see the module docs.
pub fn decide(rule: &ArchiveRule, input: &ArchiveInput, now: DateTime<Utc>) -> ArchiveVerdict {
    if now < input.created_at + TimeDelta::days(i64::from(rule.after_days)) {
        return ArchiveVerdict::NotYet;
    }
    let unique_gib = input.unique_gib.unwrap_or(input.full_gib * f64::from(rule.unique_percent.clamp(1, 100)) / 100.0);
    let mut estimate = ArchiveEstimate {
        full_gib: input.full_gib,
        unique_gib,
        keep_days: 0.0,
        monthly_saving_usd: 0.0,
        reason: String::new(),
    };
    let Some(until) = input.keep_until else {
        estimate.reason = "no retention rule gives it a known lifetime (count alone on a daily or weekly plan): \
                           kept in the standard tier"
            .into();
        return ArchiveVerdict::Standard(estimate);
    };
    let keep = until - now;
    estimate.keep_days = keep.num_seconds() as f64 / 86_400.0;
    if keep < TimeDelta::days(MINIMUM_ARCHIVE_DAYS) {
        estimate.reason = format!(
            "kept only {:.1} more days, less than the {MINIMUM_ARCHIVE_DAYS}-day archive minimum: kept in the standard tier",
            estimate.keep_days
        );
        return ArchiveVerdict::Standard(estimate);
    }
    let standard_monthly = unique_gib * input.standard_price;
    let archive_monthly = input.full_gib * input.archive_price;
    estimate.monthly_saving_usd = standard_monthly - archive_monthly;
    let costs = format!(
        "full {:.1} GiB archived ${archive_monthly:.2}/month vs unique {unique_gib:.1} GiB in standard ${standard_monthly:.2}/month",
        input.full_gib
    );
    // A saving below a millionth of a dollar is float noise at the break-even, not a saving.
    if standard_monthly - archive_monthly > 1e-6 {
        estimate.reason = format!("kept {:.1} more days; {costs}: archived", estimate.keep_days);
        ArchiveVerdict::Archive(estimate)
    } else {
        estimate.monthly_saving_usd = 0.0;
        estimate.reason = format!("archiving would cost more ({costs}): kept in the standard tier");
        ArchiveVerdict::Standard(estimate)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    const STANDARD: f64 = 0.05;
    const ARCHIVE: f64 = 0.0125;

    fn t(days: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap() + TimeDelta::days(days)
    }

    fn rule(unique_percent: u8) -> ArchiveRule {
        ArchiveRule { after_days: 30, unique_percent, ..ArchiveRule::default() }
    }

    fn input(keep_days_from_now: i64, unique_gib: Option<f64>) -> ArchiveInput {
        ArchiveInput {
            created_at: t(0),
            keep_until: Some(t(30 + keep_days_from_now)),
            full_gib: 100.0,
            unique_gib,
            standard_price: STANDARD,
            archive_price: ARCHIVE,
        }
    }

    #[test]
    fn the_90_day_minimum_is_the_boundary() {
        // Large unique share: archiving pays whenever the minimum is met.
        let at = t(30);
        assert!(
            matches!(decide(&rule(60), &input(89, None), at), ArchiveVerdict::Standard(e) if e.reason.contains("90-day"))
        );
        assert!(matches!(decide(&rule(60), &input(90, None), at), ArchiveVerdict::Archive(_)));
        assert!(matches!(decide(&rule(60), &input(91, None), at), ArchiveVerdict::Archive(_)));
        // 89 days and 23 hours is still short of the minimum.
        let mut almost = input(90, None);
        almost.keep_until = Some(t(120) - TimeDelta::hours(1));
        assert!(matches!(decide(&rule(60), &almost, at), ArchiveVerdict::Standard(_)));
    }

    #[test]
    fn small_increments_stay_in_standard_large_ones_are_archived() {
        let at = t(30);
        // Full 100 GiB archived: $1.25/month. Unique 20 GiB in standard: $1.00. Unique 30: $1.50.
        match decide(&rule(100), &input(365, Some(20.0)), at) {
            ArchiveVerdict::Standard(e) => {
                assert!(e.reason.contains("would cost more"), "{}", e.reason);
                assert_eq!(e.monthly_saving_usd, 0.0);
            }
            other => panic!("expected standard, got {other:?}"),
        }
        match decide(&rule(1), &input(365, Some(30.0)), at) {
            ArchiveVerdict::Archive(e) => {
                assert!((e.monthly_saving_usd - 0.25).abs() < 1e-9, "{}", e.monthly_saving_usd);
                assert_eq!(e.unique_gib, 30.0, "a measured share wins over the estimate");
            }
            other => panic!("expected archive, got {other:?}"),
        }
        // Exactly the break-even (25 %): not archived, it would save nothing.
        assert!(matches!(decide(&rule(25), &input(365, None), at), ArchiveVerdict::Standard(_)));
        assert!(matches!(decide(&rule(26), &input(365, None), at), ArchiveVerdict::Archive(_)));
    }

    #[test]
    fn young_snapshots_wait_and_unknown_lifetimes_stay() {
        assert_eq!(decide(&rule(60), &input(365, None), t(29)), ArchiveVerdict::NotYet);
        let mut unknown = input(365, None);
        unknown.keep_until = None;
        assert!(
            matches!(decide(&rule(60), &unknown, t(30)), ArchiveVerdict::Standard(e) if e.reason.contains("known lifetime"))
        );
    }

    #[test]
    fn lifetimes_follow_the_rules_of_long_lived_tiers() {
        let created = Utc.with_ymd_and_hms(2026, 1, 31, 2, 0, 0).unwrap();
        let monthly12 = RetentionRules { monthly: Some(12), ..RetentionRules::default() };
        assert_eq!(
            keep_until(&monthly12, Tier::Monthly, None, created, None),
            Some(Utc.with_ymd_and_hms(2027, 1, 31, 2, 0, 0).unwrap())
        );
        let count3 = RetentionRules { count: Some(3), ..RetentionRules::default() };
        assert_eq!(
            keep_until(&count3, Tier::Yearly, None, created, None),
            Some(Utc.with_ymd_and_hms(2029, 1, 31, 2, 0, 0).unwrap())
        );
        // A daily plan's GFS monthly keeper cannot be told from the others: no known lifetime.
        assert_eq!(keep_until(&monthly12, Tier::Daily, None, created, None), None);
        // The schedule decides, not the tier: a "monthly" tier on a weekly schedule keeps
        // `count` weeks, and its GFS monthly rule says nothing about one backup.
        let count12 = RetentionRules { count: Some(12), monthly: Some(12), ..RetentionRules::default() };
        assert_eq!(keep_until(&count12, Tier::Monthly, Some(7), created, None), Some(created + TimeDelta::days(84)));
        assert_eq!(
            keep_until(&count12, Tier::Monthly, Some(31), created, None),
            Some(created + TimeDelta::days(12 * 31)),
            "12 periods of 31 days outlast 12 calendar months"
        );
        // Union: the latest rule wins, the expiry tag included.
        let days = RetentionRules { days: Some(400), monthly: Some(12), ..RetentionRules::default() };
        assert_eq!(keep_until(&days, Tier::Monthly, None, created, None), Some(created + TimeDelta::days(400)));
        let tag = created + TimeDelta::days(800);
        assert_eq!(keep_until(&days, Tier::Monthly, None, created, Some(tag)), Some(tag));
    }
}
