//! Retention decisions: each test pins one invariant of `backup_core::retention` and fails if
//! that rule is broken. The GFS expectations are computed independently (group by bucket, take
//! the newest of the N most recent buckets) rather than with the implementation's walk.

use std::collections::{BTreeMap, BTreeSet};

use backup_core::retention::{
    decide, summarize, BackupSet, Candidate, IgnoreReason, KeepReason, RetentionDecision, RetentionError,
};
use backup_schemas::task::{ArtifactKind, RetentionRules, Tier};
use chrono::{DateTime, Datelike, Duration, NaiveDate, TimeZone, Utc};
use proptest::prelude::*;

const PLAN: &str = "nightly";

fn at(s: &str) -> DateTime<Utc> {
    s.parse().expect("RFC 3339 instant")
}

fn as_of() -> DateTime<Utc> {
    at("2025-03-15T06:00:00Z")
}

/// An eligible, complete, unprotected EBS snapshot of this plan with no expiry tag.
fn ours(id: &str, created_at: DateTime<Utc>) -> Candidate {
    Candidate {
        id: id.to_owned(),
        kind: ArtifactKind::EbsSnapshot,
        created_at,
        tier: Some(Tier::Daily),
        expires_at: None,
        managed_tag: true,
        plan_tag: Some(PLAN.to_owned()),
        in_catalog: true,
        legal_hold: false,
        locked_until: None,
        backs_image: None,
        complete: true,
        set: None,
        archive_minimum_until: None,
    }
}

fn ago(days: i64) -> DateTime<Utc> {
    as_of() - Duration::days(days)
}

fn hours_ago(hours: i64) -> DateTime<Utc> {
    as_of() - Duration::hours(hours)
}

fn rules(days: Option<u32>, count: Option<u32>, min_keep: u32) -> RetentionRules {
    RetentionRules { days, count, min_keep, ..RetentionRules::default() }
}

fn run(rules: &RetentionRules, candidates: &[Candidate]) -> RetentionDecision {
    decide(PLAN, rules, candidates, as_of(), true).expect("complete listing decides")
}

fn deleted(d: &RetentionDecision) -> BTreeSet<String> {
    d.delete.iter().map(|x| x.id.clone()).collect()
}

fn kept(d: &RetentionDecision) -> BTreeSet<String> {
    d.keep.iter().map(|x| x.id.clone()).collect()
}

fn ids(list: &[&str]) -> BTreeSet<String> {
    list.iter().map(|s| s.to_string()).collect()
}

fn reasons<'a>(d: &'a RetentionDecision, id: &str) -> &'a [KeepReason] {
    &d.keep.iter().find(|k| k.id == id).unwrap_or_else(|| panic!("{id} is not kept: {d:#?}")).reasons
}

#[test]
fn incomplete_listing_is_an_error_and_deletes_nothing() {
    let candidates = [ours("new", ago(1)), ours("ancient", ago(3000))];
    let result = decide(PLAN, &rules(None, Some(1), 0), &candidates, as_of(), false);
    assert_eq!(result, Err(RetentionError::IncompleteListing));
}

#[test]
fn duplicate_ids_and_an_empty_plan_are_errors() {
    let candidates = [ours("snap-1", ago(1)), ours("snap-1", ago(9))];
    assert_eq!(
        decide(PLAN, &rules(None, Some(1), 0), &candidates, as_of(), true),
        Err(RetentionError::DuplicateId("snap-1".into()))
    );
    let candidates = [ours("snap-1", ago(1))];
    assert_eq!(decide("", &rules(None, Some(1), 0), &candidates, as_of(), true), Err(RetentionError::EmptyPlan));
}

#[test]
fn foreign_uncatalogued_and_other_plan_artifacts_are_ignored_even_when_ancient() {
    let expired = Some(ago(2000));
    let foreign = Candidate {
        managed_tag: false,
        in_catalog: false,
        plan_tag: None,
        expires_at: expired,
        ..ours("foreign", ago(3000))
    };
    // Foreign but in the catalog: the tag must agree, not only the catalog.
    let untagged = Candidate { managed_tag: false, expires_at: expired, ..ours("untagged", ago(2900)) };
    let uncatalogued = Candidate { in_catalog: false, expires_at: expired, ..ours("uncatalogued", ago(2800)) };
    let other = Candidate { plan_tag: Some("weekly".into()), expires_at: expired, ..ours("other-plan", ago(2700)) };
    let no_plan = Candidate { plan_tag: None, expires_at: expired, ..ours("no-plan", ago(2600)) };
    // Newer than everything of ours: must not take the single `count` slot.
    let newest_foreign = Candidate { managed_tag: false, ..ours("newest-foreign", hours_ago(1)) };
    let candidates =
        [foreign, untagged, uncatalogued, other, no_plan, newest_foreign, ours("a", ago(1)), ours("b", ago(2))];

    let d = run(&rules(None, Some(1), 0), &candidates);
    assert_eq!(deleted(&d), ids(&["b"]));
    assert_eq!(kept(&d), ids(&["a"]));
    let ignored: BTreeMap<&str, &IgnoreReason> = d.ignored.iter().map(|i| (i.id.as_str(), &i.why)).collect();
    assert_eq!(ignored["foreign"], &IgnoreReason::NotManaged);
    assert_eq!(ignored["untagged"], &IgnoreReason::NotManaged);
    assert_eq!(ignored["uncatalogued"], &IgnoreReason::NotInCatalog);
    assert_eq!(ignored["other-plan"], &IgnoreReason::OtherPlan("weekly".into()));
    assert_eq!(ignored["no-plan"], &IgnoreReason::MissingPlanTag);
    assert_eq!(ignored["newest-foreign"], &IgnoreReason::NotManaged);
    assert_eq!(ignored.len(), 6);

    // Ignored artifacts do not count toward min_keep either.
    let d = run(&rules(None, Some(1), 2), &candidates);
    assert!(deleted(&d).is_empty(), "{d:#?}");
    assert_eq!(reasons(&d, "b"), [KeepReason::MinKeep]);
}

#[test]
fn protected_artifacts_are_never_deleted_even_when_expired() {
    let expired = Some(ago(1000));
    let candidates = [
        ours("newest", ago(1)),
        Candidate { legal_hold: true, expires_at: expired, ..ours("held", ago(2000)) },
        Candidate {
            locked_until: Some(as_of() + Duration::days(30)),
            expires_at: expired,
            ..ours("locked", ago(2001))
        },
        // The lock is inclusive: at its very last instant it still protects.
        Candidate { locked_until: Some(as_of()), expires_at: expired, ..ours("lock-ends-now", ago(2002)) },
        Candidate { backs_image: Some("ami-123".into()), expires_at: expired, ..ours("ami-snap", ago(2003)) },
        Candidate { complete: false, expires_at: expired, ..ours("pending", ago(2004)) },
        Candidate {
            locked_until: Some(as_of() - Duration::seconds(1)),
            expires_at: expired,
            ..ours("lock-ended", ago(2005))
        },
    ];
    let d = run(&rules(Some(7), Some(1), 0), &candidates);
    assert_eq!(deleted(&d), ids(&["lock-ended"]), "{d:#?}");
    assert_eq!(reasons(&d, "held"), [KeepReason::LegalHold]);
    assert_eq!(reasons(&d, "locked"), [KeepReason::ObjectLock(as_of() + Duration::days(30))]);
    assert_eq!(reasons(&d, "lock-ends-now"), [KeepReason::ObjectLock(as_of())]);
    assert_eq!(reasons(&d, "ami-snap"), [KeepReason::BacksImage("ami-123".into())]);
    assert_eq!(reasons(&d, "pending"), [KeepReason::InProgress]);
}

#[test]
fn in_progress_artifacts_take_no_count_slot_and_do_not_count_toward_min_keep() {
    let pending = Candidate { complete: false, ..ours("pending", hours_ago(1)) };
    let candidates = [pending, ours("a", ago(10)), ours("b", ago(20))];

    let d = run(&rules(None, Some(1), 0), &candidates);
    assert_eq!(deleted(&d), ids(&["b"]));
    assert_eq!(reasons(&d, "a"), [KeepReason::Newest(1)]);

    // Nothing is within 1 day except the pending one, which may still fail: min_keep restores `a`.
    let d = run(&rules(Some(1), None, 1), &candidates);
    assert_eq!(deleted(&d), ids(&["b"]));
    assert_eq!(reasons(&d, "a"), [KeepReason::MinKeep]);
}

#[test]
fn protected_complete_artifacts_count_toward_min_keep() {
    let held = Candidate { legal_hold: true, ..ours("held", ago(50)) };
    let candidates = [ours("fresh", hours_ago(1)), held, ours("a", ago(10)), ours("b", ago(20))];
    let d = run(&rules(Some(1), None, 2), &candidates);
    assert_eq!(deleted(&d), ids(&["a", "b"]));
}

#[test]
fn days_only_keeps_what_is_younger_than_the_window() {
    // One snapshot a day at exactly as_of's time of day: 3 days old is on the boundary, not within.
    let candidates: Vec<Candidate> = (0..10).map(|n| ours(&format!("d{n}"), ago(n))).collect();
    let d = run(&rules(Some(3), None, 0), &candidates);
    assert_eq!(kept(&d), ids(&["d0", "d1", "d2"]));
    assert_eq!(deleted(&d).len(), 7);
    assert_eq!(reasons(&d, "d2"), [KeepReason::WithinDays]);

    let just_inside = ours("inside", ago(3) + Duration::seconds(1));
    let d = run(&rules(Some(3), None, 0), &[just_inside, ours("boundary", ago(3))]);
    assert_eq!(kept(&d), ids(&["inside"]));
}

#[test]
fn count_only_keeps_the_newest_with_ties_broken_by_id() {
    let candidates = [
        ours("c", ago(1)),
        ours("b", ago(5)),
        ours("a", ago(5)), // same instant as b: "a" sorts first, so it is newer for the rules
        ours("d", ago(9)),
        ours("e", ago(400)),
    ];
    let d = run(&rules(None, Some(2), 0), &candidates);
    assert_eq!(kept(&d), ids(&["c", "a"]));
    assert_eq!(reasons(&d, "c"), [KeepReason::Newest(1)]);
    assert_eq!(reasons(&d, "a"), [KeepReason::Newest(2)]);
    assert_eq!(deleted(&d), ids(&["b", "d", "e"]));
}

#[test]
fn days_and_count_together_keep_the_union() {
    let candidates = [
        ours("1h", hours_ago(1)),
        ours("2h", hours_ago(2)),
        ours("3h", hours_ago(3)),
        ours("10d", ago(10)),
        ours("20d", ago(20)),
    ];
    // days keeps more than count.
    let d = run(&rules(Some(1), Some(2), 0), &candidates);
    assert_eq!(kept(&d), ids(&["1h", "2h", "3h"]));
    assert_eq!(reasons(&d, "1h"), [KeepReason::Newest(1), KeepReason::WithinDays]);
    assert_eq!(reasons(&d, "3h"), [KeepReason::WithinDays]);
    // count keeps more than days.
    let d = run(&rules(Some(1), Some(4), 0), &candidates);
    assert_eq!(kept(&d), ids(&["1h", "2h", "3h", "10d"]));
    assert_eq!(deleted(&d), ids(&["20d"]));
}

#[test]
fn min_keep_restores_the_newest_deletions() {
    let candidates = [
        ours("fresh", hours_ago(1)),
        ours("10d", ago(10)),
        ours("20d", ago(20)),
        ours("30d", ago(30)),
        ours("40d", ago(40)),
    ];
    let d = run(&rules(Some(1), None, 3), &candidates);
    assert_eq!(deleted(&d), ids(&["30d", "40d"]));
    assert_eq!(reasons(&d, "10d"), [KeepReason::MinKeep]);
    assert_eq!(reasons(&d, "20d"), [KeepReason::MinKeep]);
    assert_eq!(reasons(&d, "fresh"), [KeepReason::WithinDays]);
}

#[test]
fn min_keep_above_the_number_of_artifacts_deletes_nothing() {
    let candidates = [ours("a", ago(100)), ours("b", ago(200)), ours("c", ago(300))];
    let d = run(&rules(Some(1), Some(1), 10), &candidates);
    assert!(d.delete.is_empty(), "{d:#?}");
    assert_eq!(kept(&d), ids(&["a", "b", "c"]));
}

#[test]
fn min_keep_holds_when_every_artifact_has_expired() {
    let candidates: Vec<Candidate> =
        (1..=5).map(|n| Candidate { expires_at: Some(ago(n * 10)), ..ours(&format!("s{n}"), ago(n * 100)) }).collect();
    let d = run(&rules(Some(7), None, 2), &candidates);
    assert_eq!(kept(&d), ids(&["s1", "s2"]));
    assert_eq!(deleted(&d), ids(&["s3", "s4", "s5"]));
}

#[test]
fn a_future_expiry_keeps_and_a_past_one_never_forces_deletion() {
    let candidates = [
        // Kept by count although its expiry has passed.
        Candidate { expires_at: Some(ago(1)), ..ours("newest-expired", hours_ago(1)) },
        // Outside every rule, but its expiry tag says it lives on (a yearly backup, say).
        Candidate { expires_at: Some(as_of() + Duration::days(300)), ..ours("yearly", ago(500)) },
        // Expiry is inclusive, like the lock.
        Candidate { expires_at: Some(as_of()), ..ours("expires-now", ago(600)) },
        Candidate { expires_at: Some(as_of() - Duration::seconds(1)), ..ours("expired", ago(700)) },
        ours("untagged", ago(800)),
    ];
    let d = run(&rules(None, Some(1), 0), &candidates);
    assert_eq!(kept(&d), ids(&["newest-expired", "yearly", "expires-now"]));
    assert_eq!(reasons(&d, "yearly"), [KeepReason::NotExpired(as_of() + Duration::days(300))]);
    assert_eq!(deleted(&d), ids(&["expired", "untagged"]));
    assert!(d.delete.iter().all(|x| !x.reason.is_empty()));
}

#[test]
fn empty_rules_delete_nothing() {
    let candidates: Vec<Candidate> =
        (1..=5).map(|n| Candidate { expires_at: Some(ago(n)), ..ours(&format!("s{n}"), ago(n * 1000)) }).collect();
    let zero = RetentionRules {
        days: Some(0),
        count: Some(0),
        daily: Some(0),
        weekly: Some(0),
        monthly: Some(0),
        min_keep: 0,
        archive: None,
    };
    // min_keep is a floor, not a keep rule; zero-valued rules keep nothing, so they are "no rules" too.
    for rules in [RetentionRules::default(), rules(None, None, 1), zero] {
        let d = run(&rules, &candidates);
        assert!(d.delete.is_empty(), "{rules:?} deleted {d:#?}");
        assert!(d.keep.iter().all(|k| k.reasons.contains(&KeepReason::NoRules)), "{d:#?}");
    }
    // A single non-zero rule is enough to make the others (and expiry) meaningful again.
    let one = RetentionRules { count: Some(1), ..RetentionRules::default() };
    assert_eq!(run(&one, &candidates).delete.len(), 4);
}

#[test]
fn artifacts_created_after_as_of_are_kept_and_take_no_slot() {
    let late = ours("later", as_of() + Duration::hours(20));
    let d = run(&rules(None, Some(1), 0), &[late, ours("a", ago(1)), ours("b", ago(2))]);
    assert_eq!(reasons(&d, "later"), [KeepReason::CreatedAfterAsOf]);
    assert_eq!(reasons(&d, "a"), [KeepReason::Newest(1)]);
    assert_eq!(deleted(&d), ids(&["b"]));
}

#[test]
fn each_artifact_kind_is_its_own_series() {
    let ami = |id: &str, t| Candidate { kind: ArtifactKind::Ami, ..ours(id, t) };
    let candidates =
        [ami("ami-new", ago(1)), ours("snap-new", ago(2)), ami("ami-old", ago(3)), ours("snap-old", ago(4))];
    let d = run(&rules(None, Some(1), 0), &candidates);
    assert_eq!(kept(&d), ids(&["ami-new", "snap-new"]));
    assert_eq!(deleted(&d), ids(&["ami-old", "snap-old"]));
}

#[test]
fn an_images_snapshots_take_no_place_among_the_resources_own_snapshots() {
    // An instance backed up both ways: two AMIs (two volumes each) and two snapshot backups. The
    // AMIs' snapshots are kept with their images and counted there, once: they must not push the
    // instance's own snapshots out of `count`, the daily buckets or `min_keep`.
    let ami = |id: &str, t| Candidate { kind: ArtifactKind::Ami, ..ours(id, t) };
    let backing = |id: &str, image: &str, t| Candidate { backs_image: Some(image.into()), ..ours(id, t) };
    let candidates = [
        ami("ami-new", hours_ago(1)),
        backing("snap-ami-new-1", "ami-new", hours_ago(1)),
        backing("snap-ami-new-2", "ami-new", hours_ago(1)),
        ami("ami-old", ago(1)),
        backing("snap-ami-old-1", "ami-old", ago(1)),
        backing("snap-ami-old-2", "ami-old", ago(1)),
        ours("snap-a", ago(2)),
        ours("snap-b", ago(3)),
    ];
    let d = run(&rules(None, Some(1), 0), &candidates);
    assert_eq!(deleted(&d), ids(&["ami-old", "snap-b"]), "{d:#?}");
    assert_eq!(reasons(&d, "snap-a"), [KeepReason::Newest(1)]);
    assert_eq!(reasons(&d, "snap-ami-old-1"), [KeepReason::BacksImage("ami-old".into())]);

    let daily = RetentionRules { daily: Some(1), ..RetentionRules::default() };
    assert_eq!(deleted(&run(&daily, &candidates)), ids(&["ami-old", "snap-b"]));

    let d = run(&rules(Some(1), None, 1), &candidates);
    assert_eq!(deleted(&d), ids(&["ami-old", "snap-b"]), "{d:#?}");
    assert_eq!(reasons(&d, "snap-a"), [KeepReason::MinKeep]);
}

/// Independent GFS oracle: bucket the pool, take the N most recent buckets that have an
/// artifact, and the newest artifact of each (ties: smallest id).
fn gfs_oracle<K: Ord>(pool: &[&Candidate], n: u32, key: impl Fn(DateTime<Utc>) -> K) -> BTreeSet<String> {
    let mut buckets: BTreeMap<K, Vec<&Candidate>> = BTreeMap::new();
    for c in pool {
        buckets.entry(key(c.created_at)).or_default().push(c);
    }
    buckets
        .values()
        .rev()
        .take(n as usize)
        .map(|members| {
            let newest = members.iter().map(|c| c.created_at).max().expect("non-empty bucket");
            members.iter().filter(|c| c.created_at == newest).map(|c| c.id.clone()).min().expect("non-empty")
        })
        .collect()
}

fn iso_week(t: DateTime<Utc>) -> (i32, u32) {
    (t.iso_week().year(), t.iso_week().week())
}

fn month(t: DateTime<Utc>) -> (i32, u32) {
    (t.year(), t.month())
}

fn gfs_expected(pool: &[&Candidate], daily: u32, weekly: u32, monthly: u32) -> BTreeSet<String> {
    let mut expected = gfs_oracle(pool, daily, |t| t.date_naive());
    expected.extend(gfs_oracle(pool, weekly, iso_week));
    expected.extend(gfs_oracle(pool, monthly, month));
    expected
}

#[test]
fn gfs_over_400_days_of_daily_snapshots_keeps_exactly_the_restic_set() {
    // A daily snapshot at 02:30 UTC for 400 days up to as_of (2025-03-15T06:00Z), an extra manual
    // one at 14:30 on every day n with n % 10 == 7 (the newest of its day), and two missed days
    // (2025-03-11 and -12) inside the daily window.
    let first = Utc.with_ymd_and_hms(2024, 2, 10, 2, 30, 0).unwrap();
    let mut candidates = Vec::new();
    for n in 0..400 {
        let t = first + Duration::days(n);
        if (3..=4).contains(&(as_of() - t).num_days()) {
            continue;
        }
        candidates.push(ours(&format!("daily-{n:03}"), t));
        if n % 10 == 7 {
            candidates.push(Candidate {
                tier: Some(Tier::Manual),
                ..ours(&format!("manual-{n:03}"), t + Duration::hours(12))
            });
        }
    }
    assert_eq!(candidates.len(), 400 - 2 + 40);
    let rules = RetentionRules { daily: Some(7), weekly: Some(4), monthly: Some(12), ..RetentionRules::default() };
    let d = run(&rules, &candidates);

    let pool: Vec<&Candidate> = candidates.iter().collect();
    assert_eq!(kept(&d), gfs_expected(&pool, 7, 4, 12));
    assert_eq!(d.keep.len() + d.delete.len(), candidates.len());
    assert!(d.ignored.is_empty());

    // By hand: 7 days with snapshots (Mar 15, 14, 13, 10, 9, 8, 7: the gap does not use up the
    // allowance); 4 ISO weeks of which 2 are new (Mar 2, Feb 23); 12 months of which 11 are new
    // (Feb 28, Jan 31, ..., Apr 30 2024).
    assert_eq!(d.keep.len(), 20, "{:#?}", d.keep);
    let oldest = d.keep.last().expect("something kept");
    assert_eq!(oldest.id, "daily-080");
    assert_eq!(oldest.reasons, [KeepReason::MonthlyTier { year: 2024, month: 4 }]);
    assert_eq!(reasons(&d, "daily-386"), [KeepReason::WeeklyTier { year: 2025, week: 9 }]);
    assert!(reasons(&d, "daily-391").contains(&KeepReason::DailyTier(NaiveDate::from_ymd_opt(2025, 3, 7).unwrap())));
    // The newest of a day is kept, not the first of it.
    assert_eq!(reasons(&d, "manual-397"), [KeepReason::DailyTier(NaiveDate::from_ymd_opt(2025, 3, 13).unwrap())]);
    assert!(deleted(&d).contains("daily-397"));
}

#[test]
fn gfs_counts_the_most_recent_periods_that_have_artifacts_like_restic() {
    let candidates = [ours("1d", ago(1)), ours("5d", ago(5)), ours("10d", ago(10)), ours("20d", ago(20))];
    let rules = RetentionRules { daily: Some(3), ..RetentionRules::default() };
    let d = run(&rules, &candidates);
    // Not "the 3 calendar days before as_of" (which would keep only 1d): gaps do not use up the allowance.
    assert_eq!(kept(&d), ids(&["1d", "5d", "10d"]));
    assert_eq!(reasons(&d, "5d"), [KeepReason::DailyTier(ago(5).date_naive())]);
}

#[test]
fn weekly_uses_iso_weeks_across_the_year_boundary() {
    let candidates = [
        ours("thu-2025-w01", at("2025-01-02T10:00:00Z")),
        ours("mon-2025-w01", at("2024-12-30T10:00:00Z")), // ISO week 2025-W01, calendar year 2024
        ours("sun-2024-w52", at("2024-12-29T10:00:00Z")),
        ours("sun-2024-w51", at("2024-12-22T10:00:00Z")),
    ];
    let rules = RetentionRules { weekly: Some(2), ..RetentionRules::default() };
    let d = decide(PLAN, &rules, &candidates, at("2025-01-05T00:00:00Z"), true).unwrap();
    assert_eq!(kept(&d), ids(&["thu-2025-w01", "sun-2024-w52"]));
    assert_eq!(reasons(&d, "thu-2025-w01"), [KeepReason::WeeklyTier { year: 2025, week: 1 }]);
}

#[test]
fn daily_and_monthly_use_utc_calendar_boundaries() {
    let candidates = [
        ours("feb-01-0030", at("2024-02-01T00:30:00Z")),
        ours("jan-31-2330", at("2024-01-31T23:30:00Z")),
        ours("jan-31-0100", at("2024-01-31T01:00:00Z")),
        ours("jan-15", at("2024-01-15T12:00:00Z")),
    ];
    let as_of = at("2024-02-02T00:00:00Z");
    let monthly = RetentionRules { monthly: Some(2), ..RetentionRules::default() };
    let d = decide(PLAN, &monthly, &candidates, as_of, true).unwrap();
    assert_eq!(kept(&d), ids(&["feb-01-0030", "jan-31-2330"]));
    let daily = RetentionRules { daily: Some(2), ..RetentionRules::default() };
    let d = decide(PLAN, &daily, &candidates, as_of, true).unwrap();
    assert_eq!(kept(&d), ids(&["feb-01-0030", "jan-31-2330"]));
    assert_eq!(reasons(&d, "jan-31-2330"), [KeepReason::DailyTier(NaiveDate::from_ymd_opt(2024, 1, 31).unwrap())]);
}

#[test]
fn summarize_is_one_line_with_the_non_rule_reasons() {
    let mut candidates: Vec<Candidate> = (1..=10).map(|n| ours(&format!("s{n:02}"), ago(n))).collect();
    candidates[8].legal_hold = true; // s09: outside count 5, kept by the hold
    candidates.push(Candidate { managed_tag: false, ..ours("foreign-1", ago(3)) });
    candidates.push(Candidate { plan_tag: Some("other".into()), ..ours("foreign-2", ago(4)) });
    let d = run(&rules(None, Some(5), 7), &candidates);
    assert_eq!(summarize(&d), "delete 3, keep 7 (min_keep 1, legal hold 1), ignore 2");
    assert_eq!(deleted(&d), ids(&["s07", "s08", "s10"]));
    assert_eq!(summarize(&RetentionDecision::default()), "delete 0, keep 0, ignore 0");
}

#[test]
fn an_archived_snapshot_is_kept_until_its_90_day_minimum_ends() {
    let rules = rules(None, Some(1), 0);
    let until = as_of() + Duration::days(20);
    let archived = Candidate { archive_minimum_until: Some(until), ..ours("archived", ago(200)) };
    let newer = ours("newer", ago(1));
    let d = decide(PLAN, &rules, &[archived.clone(), newer.clone()], as_of(), true).unwrap();
    let reasons = &d.keep.iter().find(|k| k.id == "archived").expect("archived is kept").reasons;
    assert_eq!(reasons, &vec![KeepReason::ArchiveMinimum(until)]);
    assert!(summarize(&d).contains("archive minimum 1"), "{}", summarize(&d));
    // From the end of the minimum on, the rules decide again.
    let d = decide(PLAN, &rules, &[archived, newer], until, true).unwrap();
    assert_eq!(deleted(&d), BTreeSet::from(["archived".to_owned()]));
}

// ---------------------------------------------------------------------------------------------
// Properties over random listings and rules.

fn arb_candidate() -> impl Strategy<Value = Candidate> {
    let times = (-360i64..24, prop::option::of(-400i64..100), prop::option::of(-100i64..100));
    let flags = (prop::bool::weighted(0.9), prop::bool::weighted(0.9), 0u8..10, prop::bool::weighted(0.1));
    let more = (
        prop::bool::weighted(0.1),
        prop::bool::weighted(0.9),
        prop::bool::ANY,
        prop::option::weighted(0.1, -100i64..100),
    );
    (times, flags, more).prop_map(
        |((created, expires, locked), (managed, catalogued, plan, held), (backs, complete, ami, archived))| {
            // 6-hour steps over ~90 days before as_of (and a few after) make equal instants likely.
            let step = |n: i64| as_of() + Duration::hours(6 * n);
            Candidate {
                id: String::new(),
                kind: if ami { ArtifactKind::Ami } else { ArtifactKind::EbsSnapshot },
                created_at: step(created),
                tier: None,
                expires_at: expires.map(step),
                managed_tag: managed,
                plan_tag: match plan {
                    0 => None,
                    1 => Some("other".into()),
                    _ => Some(PLAN.into()),
                },
                in_catalog: catalogued,
                legal_hold: held,
                locked_until: locked.map(step),
                backs_image: backs.then(|| "ami-1".to_owned()),
                complete,
                set: None,
                archive_minimum_until: archived.map(step),
            }
        },
    )
}

fn arb_candidates() -> impl Strategy<Value = Vec<Candidate>> {
    prop::collection::vec(arb_candidate(), 0..40).prop_map(|mut list| {
        for (n, c) in list.iter_mut().enumerate() {
            c.id = format!("art-{n:02}");
        }
        list
    })
}

fn arb_rules() -> impl Strategy<Value = RetentionRules> {
    let rule = || prop::option::of(0u32..8);
    (rule(), rule(), 0u32..6, rule(), rule(), rule()).prop_map(|(days, count, min_keep, daily, weekly, monthly)| {
        RetentionRules { days, count, min_keep, daily, weekly, monthly, archive: None }
    })
}

fn eligible(c: &Candidate) -> bool {
    c.managed_tag && c.in_catalog && c.plan_tag.as_deref() == Some(PLAN)
}

fn newest_first(list: &mut [&Candidate]) {
    list.sort_by(|a, b| b.created_at.cmp(&a.created_at).then_with(|| a.id.cmp(&b.id)));
}

proptest! {
    #[test]
    fn decisions_uphold_every_invariant(candidates in arb_candidates(), rules in arb_rules()) {
        let now = as_of();
        let d = decide(PLAN, &rules, &candidates, now, true).unwrap();
        prop_assert_eq!(decide(PLAN, &rules, &candidates, now, false), Err(RetentionError::IncompleteListing));
        let by_id: BTreeMap<&str, &Candidate> = candidates.iter().map(|c| (c.id.as_str(), c)).collect();

        // Every candidate in exactly one list; each list newest first; reasons never empty.
        let mut all: Vec<&str> = d.delete.iter().map(|x| x.id.as_str()).collect();
        all.extend(d.keep.iter().map(|x| x.id.as_str()));
        all.extend(d.ignored.iter().map(|x| x.id.as_str()));
        all.sort_unstable();
        let mut expected: Vec<&str> = by_id.keys().copied().collect();
        expected.sort_unstable();
        prop_assert_eq!(all, expected);
        prop_assert!(d.keep.iter().all(|k| !k.reasons.is_empty()));
        let order_of = |list: Vec<&str>| {
            let mut sorted: Vec<&Candidate> = list.iter().map(|id| by_id[id]).collect();
            newest_first(&mut sorted);
            sorted.iter().map(|c| c.id.as_str()).collect::<Vec<_>>() == list
        };
        prop_assert!(order_of(d.delete.iter().map(|x| x.id.as_str()).collect()));
        prop_assert!(order_of(d.keep.iter().map(|x| x.id.as_str()).collect()));
        prop_assert!(order_of(d.ignored.iter().map(|x| x.id.as_str()).collect()));

        // Ignored exactly when not ours.
        let ignored: BTreeSet<&str> = d.ignored.iter().map(|x| x.id.as_str()).collect();
        let not_ours: BTreeSet<&str> = candidates.iter().filter(|c| !eligible(c)).map(|c| c.id.as_str()).collect();
        prop_assert_eq!(ignored, not_ours);

        // Nothing protected, unexpired, young or ignored is deleted.
        for x in &d.delete {
            let c = by_id[x.id.as_str()];
            prop_assert!(eligible(c) && c.complete && !c.legal_hold && c.backs_image.is_none(), "{:?}", c);
            prop_assert!(c.locked_until.is_none_or(|t| t < now), "{:?}", c);
            prop_assert!(c.archive_minimum_until.is_none_or(|t| t <= now), "{:?}", c);
            prop_assert!(c.expires_at.is_none_or(|t| t < now), "{:?}", c);
            prop_assert!(c.created_at <= now, "{:?}", c);
            if let Some(days) = rules.days {
                prop_assert!(now - c.created_at >= Duration::days(days.into()), "{:?}", c);
            }
        }

        let deleted = deleted(&d);
        let configured = [rules.days, rules.count, rules.daily, rules.weekly, rules.monthly]
            .iter()
            .any(|r| r.is_some_and(|n| n > 0));
        if !configured {
            prop_assert!(deleted.is_empty());
        }

        // The `count` newest eligible artifacts (any kind, any state) are never deleted.
        let mut ours: Vec<&Candidate> = candidates.iter().filter(|c| eligible(c)).collect();
        newest_first(&mut ours);
        if let Some(count) = rules.count {
            for c in ours.iter().take(count as usize) {
                prop_assert!(!deleted.contains(&c.id), "{} is among the {} newest", c.id, count);
            }
        }

        // min_keep: per kind, and therefore overall, at least min(min_keep, complete eligible) remain.
        let min_keep = rules.min_keep as usize;
        let complete = |list: &[&Candidate]| list.iter().filter(|c| c.complete).count();
        let remaining = |list: &[&Candidate]| list.iter().filter(|c| c.complete && !deleted.contains(&c.id)).count();
        prop_assert!(remaining(&ours) >= min_keep.min(complete(&ours)));
        for kind in [ArtifactKind::EbsSnapshot, ArtifactKind::Ami] {
            let series: Vec<&Candidate> = ours.iter().copied().filter(|c| c.kind == kind).collect();
            prop_assert!(remaining(&series) >= min_keep.min(complete(&series)), "{:?}", kind);

            // The GFS keeps computed independently are never deleted.
            let pool: Vec<&Candidate> = series.iter().copied().filter(|c| c.complete && c.created_at <= now).collect();
            let gfs = gfs_expected(&pool, rules.daily.unwrap_or(0), rules.weekly.unwrap_or(0), rules.monthly.unwrap_or(0));
            prop_assert!(gfs.is_disjoint(&deleted), "GFS keeps {:?}, deleted {:?}", gfs, deleted);
        }
    }

    #[test]
    fn decisions_are_deterministic_and_ignore_input_order(
        (candidates, shuffled) in arb_candidates().prop_flat_map(|c| (Just(c.clone()), Just(c).prop_shuffle())),
        rules in arb_rules(),
    ) {
        let first = decide(PLAN, &rules, &candidates, as_of(), true).unwrap();
        prop_assert_eq!(&first, &decide(PLAN, &rules, &candidates, as_of(), true).unwrap());
        prop_assert_eq!(&first, &decide(PLAN, &rules, &shuffled, as_of(), true).unwrap());
    }
}

// ---- Sets: a crash-consistent snapshot set is one backup (invariant 7).

fn member(id: &str, set: &str, size: Option<u32>, created_at: DateTime<Utc>) -> Candidate {
    Candidate { set: Some(BackupSet { id: set.into(), size }), ..ours(id, created_at) }
}

/// Three nightly sets of two snapshots (members a second apart, as AWS stamps them).
fn three_sets() -> Vec<Candidate> {
    let mut all = Vec::new();
    for (n, day) in [(1, 3), (2, 2), (3, 1)] {
        let t = ago(day);
        all.push(member(&format!("s{n}-root"), &format!("set-{n}"), Some(2), t));
        all.push(member(&format!("s{n}-data"), &format!("set-{n}"), Some(2), t + Duration::seconds(1)));
    }
    all
}

#[test]
fn count_and_min_keep_count_sets_not_snapshots_and_keep_or_delete_each_whole() {
    // count 2 keeps the two newest backups: four snapshots. Per snapshot it kept two and split
    // the second set.
    let d = run(&rules(None, Some(2), 0), &three_sets());
    assert_eq!(deleted(&d), ids(&["s1-root", "s1-data"]));
    assert_eq!(kept(&d), ids(&["s2-root", "s2-data", "s3-root", "s3-data"]));
    assert_eq!(reasons(&d, "s3-root"), reasons(&d, "s3-data"), "a set's members share its reasons");
    assert!(reasons(&d, "s2-data").contains(&KeepReason::Newest(2)), "{:?}", reasons(&d, "s2-data"));
    // min_keep 3 over sets keeps all three backups, never two and a half.
    let d = run(&rules(Some(1), None, 3), &three_sets());
    assert!(deleted(&d).is_empty(), "{d:#?}");
    // A daily tier counts one backup per day.
    let d = run(&RetentionRules { daily: Some(1), ..RetentionRules::default() }, &three_sets());
    assert_eq!(kept(&d), ids(&["s3-root", "s3-data"]));
}

#[test]
fn any_members_protection_protects_the_whole_set() {
    let mut all = three_sets();
    // The oldest set's data snapshot is under legal hold: its root snapshot stays too.
    all[1].legal_hold = true;
    // The middle set's root has an expiry in the future: the set is kept by it.
    all[2].expires_at = Some(as_of() + Duration::days(1));
    let d = run(&rules(None, Some(1), 0), &all);
    assert!(deleted(&d).is_empty(), "{d:#?}");
    assert!(reasons(&d, "s1-root").contains(&KeepReason::LegalHold));
    assert!(reasons(&d, "s2-data").iter().any(|r| matches!(r, KeepReason::NotExpired(_))));
}

#[test]
fn a_set_with_an_ignored_member_is_not_judged_at_all() {
    let mut all = three_sets();
    // One member of the oldest set is missing from the catalog (its record was never written).
    all[0].in_catalog = false;
    let d = run(&rules(None, Some(1), 0), &all);
    assert_eq!(deleted(&d), ids(&["s2-root", "s2-data"]), "{d:#?}");
    let ignored: BTreeMap<&str, &IgnoreReason> = d.ignored.iter().map(|i| (i.id.as_str(), &i.why)).collect();
    assert_eq!(ignored["s1-root"], &IgnoreReason::NotInCatalog);
    assert_eq!(ignored["s1-data"], &IgnoreReason::SetMemberIgnored("s1-root".into()));
}

#[test]
fn an_incomplete_set_counts_for_nothing_and_is_kept() {
    // The DR copies of the newest set: one member's copy failed, so one of two arrived.
    let mut all = three_sets();
    all.retain(|c| c.id != "s3-data");
    let d = run(&rules(None, Some(1), 1), &all);
    assert_eq!(reasons(&d, "s3-root"), &[KeepReason::IncompleteSet { members: 1, size: 2 }]);
    // The newest *complete* backup is what count 1 keeps; the oldest goes.
    assert_eq!(kept(&d), ids(&["s3-root", "s2-root", "s2-data"]));
    assert_eq!(deleted(&d), ids(&["s1-root", "s1-data"]));
}

#[test]
fn sets_are_never_split_whatever_the_rules() {
    // Every mix of rules over the same sets: each set's members share one outcome.
    for count in [None, Some(0), Some(1), Some(2), Some(5)] {
        for min_keep in 0..4 {
            for daily in [None, Some(1), Some(2)] {
                let rules = RetentionRules { count, min_keep, daily, ..RetentionRules::default() };
                let d = run(&rules, &three_sets());
                for n in 1..=3 {
                    let (root, data) = (format!("s{n}-root"), format!("s{n}-data"));
                    assert_eq!(deleted(&d).contains(&root), deleted(&d).contains(&data), "{rules:?}: {d:#?}");
                    assert_eq!(kept(&d).contains(&root), kept(&d).contains(&data), "{rules:?}: {d:#?}");
                }
            }
        }
    }
}
