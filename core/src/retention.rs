//! Retention: which backup artifacts of one resource a prune may delete. Pure logic: the caller
//! lists the artifacts (AWS joined with the catalog) and [`decide`] sorts every one of them into
//! delete, keep or ignore. The delete task re-checks the safety rules before acting; this module is
//! the first line, and it errs on the side of keeping.
//!
//! # Invariants
//!
//! 1. **Incomplete listing:** `listing_complete == false` is [`RetentionError::IncompleteListing`].
//!    Counting rules computed over a partial listing would delete artifacts that only look old.
//! 2. **Only our own artifacts:** a candidate is *eligible* only if it has the managed tag, the
//!    catalog knows it, and its plan tag equals `plan`. Anything else is [`Ignored`] (in that order
//!    of checks): never deleted, never counted by any rule or by `min_keep`.
//! 3. **Protected artifacts are always kept:** legal hold, Object Lock with `as_of <= locked_until`,
//!    a snapshot backing an AMI, an incomplete (in-progress) artifact, a snapshot in the EBS
//!    archive tier within its 90-day minimum (AWS bills the rest of the 90 days on an early
//!    delete, so keeping it costs nothing and keeps the data). Artifacts created after
//!    `as_of` (a late re-run of an older prune) are kept too.
//! 4. **Keep rules are a union** (kept if any applies). They are evaluated per *series*, the
//!    eligible artifacts of one [`ArtifactKind`], over the *pool*: the complete artifacts created at
//!    or before `as_of`, sorted newest first (ties: id ascending). Protected complete artifacts are
//!    in the pool (a held backup is still a backup); in-progress ones are not (they may fail), nor
//!    are those created after `as_of`. A snapshot backing an AMI is in no series at all: it is
//!    kept, and counted once, as its AMI (in the AMI series); among the snapshots it would take
//!    the places of the resource's own snapshot backups.
//!    - `count = N`: the N newest of the pool.
//!    - `days = D`: `as_of - created_at < D days`.
//!    - `daily`/`weekly`/`monthly = N`: restic's `--keep-daily/weekly/monthly`: walking the pool
//!      newest first, keep the first artifact of each new UTC calendar day / ISO week (ISO week-year,
//!      weeks start Monday) / UTC calendar month, until N buckets are kept. So the N buckets are
//!      the N most recent ones *that have an artifact*, not the N calendar periods before `as_of`:
//!      gaps in the history do not use up the allowance.
//!    - An expiry tag with `as_of <= expires_at` keeps the artifact, whatever the rules say. A
//!      passed expiry never forces a deletion: it only means the expiry no longer keeps it.
//!    - `tier` is informational: the GFS rules bucket by creation time, not by the tier tag.
//!    - **No rules:** if none of `days`, `count`, `daily`, `weekly`, `monthly` is set to a value
//!      above zero, nothing is deleted ([`KeepReason::NoRules`]). `RetentionRules` deserialises a
//!      misspelt policy to exactly that, and expiry tags alone do not authorise deletion either.
//! 5. **`min_keep` per series:** if fewer than `min_keep` complete artifacts of a series are kept,
//!    the newest deletion candidates move back to keep ([`KeepReason::MinKeep`]) until `min_keep`
//!    are kept or none is left to delete. In-progress artifacts do not count. This holds always,
//!    including for a source resource that no longer exists: its last `min_keep` backups stay until
//!    an operator deletes them.
//! 6. **Deterministic:** every candidate lands in exactly one list, each list sorted newest first
//!    (ties: id ascending), independent of the input order. Duplicate ids are an error.
//! 7. **A set is one backup:** candidates sharing a [`BackupSet`] (the snapshots of one
//!    crash-consistent `CreateSnapshots` call, or their copies) are judged as one unit: the set is
//!    counted once by every rule and `min_keep`, its time is its newest member's, any member's
//!    protection protects all, and every member gets the set's outcome, so a set is never split.
//!    If any member is ignored, all are ([`IgnoreReason::SetMemberIgnored`]). A set with fewer
//!    members than its size (a copy of one member failed) is not a restorable backup: it counts
//!    for nothing and is kept ([`KeepReason::IncompleteSet`]) for an operator to look at.

use std::collections::{BTreeMap, HashSet};

use backup_schemas::task::{ArtifactKind, RetentionRules, Tier};
use chrono::{DateTime, Datelike, NaiveDate, SecondsFormat, TimeDelta, Utc};
use serde::{Deserialize, Serialize};

/// One existing artifact of the resource, as listed from AWS and joined with the catalog.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Candidate {
    /// Snapshot id, AMI id, RDS snapshot identifier, or S3 backup key.
    pub id: String,
    pub kind: ArtifactKind,
    pub created_at: DateTime<Utc>,
    pub tier: Option<Tier>,
    /// From the expiry tag.
    pub expires_at: Option<DateTime<Utc>>,
    /// Carries `backup-fleet:managed=true`.
    pub managed_tag: bool,
    /// The `backup-fleet:plan` tag.
    pub plan_tag: Option<String>,
    /// The fleet's catalog has a record of it.
    pub in_catalog: bool,
    /// `backup-fleet:legal-hold` tag (any value) or S3 legal hold ON.
    pub legal_hold: bool,
    /// S3 Object Lock retain-until.
    pub locked_until: Option<DateTime<Utc>>,
    /// This snapshot backs this AMI: never deleted while the AMI exists.
    pub backs_image: Option<String>,
    /// Completed / available. In-progress artifacts are never touched.
    pub complete: bool,
    /// The crash-consistent set this artifact is a member of, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub set: Option<BackupSet>,
    /// Archived (EBS archive tier): the end of its 90-day minimum archive period.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub archive_minimum_until: Option<DateTime<Utc>>,
}

/// Membership of a multi-artifact backup (see invariant 7).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackupSet {
    pub id: String,
    /// How many members the set has, when known; a unit with fewer is incomplete.
    pub size: Option<u32>,
}

/// The outcome of [`decide`]: every candidate is in exactly one of the three lists.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetentionDecision {
    pub delete: Vec<Deletion>,
    pub keep: Vec<Kept>,
    pub ignored: Vec<Ignored>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deletion {
    pub id: String,
    /// Human-readable, for the delete task and the audit log.
    pub reason: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Kept {
    pub id: String,
    /// Every reason that applies (never empty), in a fixed order: protections, expiry, rules, min_keep.
    pub reasons: Vec<KeepReason>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeepReason {
    /// Among the `count` newest; the rank (1 = newest).
    Newest(u32),
    /// Created less than `days` before `as_of`.
    WithinDays,
    /// Newest of this UTC day, one of the `daily` most recent days with an artifact.
    DailyTier(NaiveDate),
    /// Newest of this ISO week, one of the `weekly` most recent weeks with an artifact.
    WeeklyTier {
        year: i32,
        week: u32,
    },
    /// Newest of this UTC month, one of the `monthly` most recent months with an artifact.
    MonthlyTier {
        year: i32,
        month: u32,
    },
    /// The expiry tag is not yet reached.
    NotExpired(DateTime<Utc>),
    /// Moved back from deletion to reach `min_keep`.
    MinKeep,
    LegalHold,
    /// S3 Object Lock retains it until this instant.
    ObjectLock(DateTime<Utc>),
    /// A snapshot backing this AMI.
    BacksImage(String),
    /// In the EBS archive tier until the end of its 90-day minimum (this instant).
    ArchiveMinimum(DateTime<Utc>),
    /// Not complete yet; it may still fail, so it counts toward nothing.
    InProgress,
    /// Created after `as_of`: belongs to a later prune's decision.
    CreatedAfterAsOf,
    /// The rules configure no keep rule; "no rules" never means "delete everything".
    NoRules,
    /// A set with fewer members than its size: not a restorable backup, never deleted by rule.
    IncompleteSet {
        members: u32,
        size: u32,
    },
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ignored {
    pub id: String,
    pub why: IgnoreReason,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IgnoreReason {
    /// No `backup-fleet:managed=true` tag: not made by the fleet.
    NotManaged,
    /// Tagged as managed but the catalog has no record: tag and catalog disagree.
    NotInCatalog,
    /// Managed and catalogued but without a plan tag: no plan can claim it.
    MissingPlanTag,
    /// Belongs to another plan, which prunes it itself.
    OtherPlan(String),
    /// Another member of its set (this id) is ignored, so the set is not judged at all.
    SetMemberIgnored(String),
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RetentionError {
    #[error("the artifact listing is incomplete: retention deletes nothing on this run")]
    IncompleteListing,
    #[error("artifact {0:?} is listed more than once: the listing is inconsistent")]
    DuplicateId(String),
    #[error("the plan name is empty")]
    EmptyPlan,
}

/// Decides which artifacts of one resource may be deleted under `rules` at `as_of`; see the
/// module docs for the exact semantics.
pub fn decide(
    plan: &str,
    rules: &RetentionRules,
    candidates: &[Candidate],
    as_of: DateTime<Utc>,
    listing_complete: bool,
) -> Result<RetentionDecision, RetentionError> {
    if !listing_complete {
        return Err(RetentionError::IncompleteListing);
    }
    if plan.is_empty() {
        return Err(RetentionError::EmptyPlan);
    }
    let mut seen = HashSet::with_capacity(candidates.len());
    if let Some(dup) = candidates.iter().find(|c| !seen.insert(c.id.as_str())) {
        return Err(RetentionError::DuplicateId(dup.id.clone()));
    }

    // Ids are unique, so this order is total and does not depend on the input order.
    let mut sorted: Vec<&Candidate> = candidates.iter().collect();
    sorted.sort_by(|a, b| b.created_at.cmp(&a.created_at).then_with(|| a.id.cmp(&b.id)));

    let mut outcomes: Vec<Option<Outcome>> = (0..sorted.len()).map(|_| None).collect();
    let mut ignored: Vec<Option<IgnoreReason>> = sorted.iter().map(|c| ignore_reason(plan, c)).collect();
    // A set is judged whole or not at all.
    let mut set_ignored: BTreeMap<&str, &str> = BTreeMap::new();
    for (candidate, why) in sorted.iter().zip(&ignored) {
        if let (Some(set), Some(_)) = (&candidate.set, why) {
            set_ignored.entry(set.id.as_str()).or_insert(candidate.id.as_str());
        }
    }
    for (candidate, why) in sorted.iter().zip(ignored.iter_mut()) {
        if let (Some(set), None) = (&candidate.set, &why) {
            if let Some(member) = set_ignored.get(set.id.as_str()) {
                *why = Some(IgnoreReason::SetMemberIgnored((*member).to_owned()));
            }
        }
    }
    // The units each series is judged in: one per set, one per artifact outside a set.
    let mut series: BTreeMap<ArtifactKind, Vec<Unit>> = BTreeMap::new();
    let mut unit_of_set: BTreeMap<(ArtifactKind, &str), usize> = BTreeMap::new();
    for (pos, candidate) in sorted.iter().enumerate() {
        if let Some(why) = ignored[pos].take() {
            outcomes[pos] = Some(Outcome::Ignore(why));
            continue;
        }
        // A snapshot behind an image is kept, and counted once: as its image, in the image
        // series. Counted among the snapshots too, an AMI's volumes would take the places (count,
        // daily, weekly, monthly, min_keep) of the resource's own snapshot backups.
        if let (Some(image), None) = (&candidate.backs_image, &candidate.set) {
            outcomes[pos] = Some(Outcome::Keep(vec![KeepReason::BacksImage(image.clone())]));
            continue;
        }
        let units = series.entry(candidate.kind).or_default();
        match &candidate.set {
            Some(set) => match unit_of_set.get(&(candidate.kind, set.id.as_str())) {
                Some(&index) => units[index].add(pos, candidate),
                None => {
                    unit_of_set.insert((candidate.kind, set.id.as_str()), units.len());
                    units.push(Unit::new(pos, candidate));
                }
            },
            None => units.push(Unit::new(pos, candidate)),
        }
    }
    for units in series.values_mut() {
        for unit in units.iter_mut() {
            if unit.incomplete().is_some() {
                unit.judged.complete = false;
            }
        }
        // Newest first, ties by id: the order `decide_series` expects.
        units.sort_by(|a, b| b.judged.created_at.cmp(&a.judged.created_at).then_with(|| a.judged.id.cmp(&b.judged.id)));
        let judged: Vec<&Candidate> = units.iter().map(|u| &u.judged).collect();
        for (unit, outcome) in units.iter().zip(decide_series(rules, &judged, as_of)) {
            let outcome = match (outcome, unit.incomplete()) {
                (Outcome::Keep(mut reasons), Some((members, size))) => {
                    for reason in reasons.iter_mut().filter(|r| **r == KeepReason::InProgress) {
                        *reason = KeepReason::IncompleteSet { members, size };
                    }
                    Outcome::Keep(reasons)
                }
                (outcome, _) => outcome,
            };
            for &pos in &unit.members {
                outcomes[pos] = Some(outcome.clone());
            }
        }
    }

    let mut decision = RetentionDecision::default();
    for (candidate, outcome) in sorted.iter().zip(outcomes) {
        let id = candidate.id.clone();
        match outcome.expect("every candidate is ignored or in a series") {
            Outcome::Delete(reason) => decision.delete.push(Deletion { id, reason }),
            Outcome::Keep(reasons) => decision.keep.push(Kept { id, reasons }),
            Outcome::Ignore(why) => decision.ignored.push(Ignored { id, why }),
        }
    }
    Ok(decision)
}

/// One line for logs and task results, e.g. `delete 3, keep 7 (min_keep 1, legal hold 1), ignore 2`.
/// The parenthesis counts the kept artifacts that no retention rule would have kept on its own.
pub fn summarize(decision: &RetentionDecision) -> String {
    const LABELS: [&str; 9] = [
        "min_keep",
        "legal hold",
        "object lock",
        "backs image",
        "archive minimum",
        "in progress",
        "newer than as_of",
        "no rules",
        "incomplete set",
    ];
    let notes: Vec<String> = LABELS
        .iter()
        .filter_map(|&label| {
            let n = decision.keep.iter().filter(|k| k.reasons.iter().any(|r| note(r) == Some(label))).count();
            (n > 0).then(|| format!("{label} {n}"))
        })
        .collect();
    let notes = if notes.is_empty() { String::new() } else { format!(" ({})", notes.join(", ")) };
    format!("delete {}, keep {}{notes}, ignore {}", decision.delete.len(), decision.keep.len(), decision.ignored.len())
}

/// The label under which [`summarize`] counts a reason; `None` for the retention rules proper.
fn note(reason: &KeepReason) -> Option<&'static str> {
    match reason {
        KeepReason::MinKeep => Some("min_keep"),
        KeepReason::LegalHold => Some("legal hold"),
        KeepReason::ObjectLock(_) => Some("object lock"),
        KeepReason::BacksImage(_) => Some("backs image"),
        KeepReason::ArchiveMinimum(_) => Some("archive minimum"),
        KeepReason::InProgress => Some("in progress"),
        KeepReason::CreatedAfterAsOf => Some("newer than as_of"),
        KeepReason::NoRules => Some("no rules"),
        KeepReason::IncompleteSet { .. } => Some("incomplete set"),
        KeepReason::Newest(_)
        | KeepReason::WithinDays
        | KeepReason::DailyTier(_)
        | KeepReason::WeeklyTier { .. }
        | KeepReason::MonthlyTier { .. }
        | KeepReason::NotExpired(_) => None,
    }
}

#[derive(Clone)]
enum Outcome {
    Delete(String),
    Keep(Vec<KeepReason>),
    Ignore(IgnoreReason),
}

/// What the rules judge: one artifact, or a whole set merged into one candidate whose time is
/// its newest member's and whose protections are the union of its members'.
struct Unit {
    /// Positions of the members in the sorted candidate list.
    members: Vec<usize>,
    judged: Candidate,
    /// The set's declared size, if this unit is a set that declares one.
    size: Option<u32>,
}

impl Unit {
    fn new(pos: usize, candidate: &Candidate) -> Self {
        let mut judged = candidate.clone();
        if let Some(set) = &candidate.set {
            judged.id = set.id.clone();
        }
        Self { members: vec![pos], size: candidate.set.as_ref().and_then(|s| s.size), judged }
    }

    fn add(&mut self, pos: usize, member: &Candidate) {
        self.members.push(pos);
        let j = &mut self.judged;
        j.created_at = j.created_at.max(member.created_at);
        j.expires_at = j.expires_at.max(member.expires_at);
        j.locked_until = j.locked_until.max(member.locked_until);
        j.archive_minimum_until = j.archive_minimum_until.max(member.archive_minimum_until);
        j.legal_hold |= member.legal_hold;
        j.complete &= member.complete;
        if j.backs_image.is_none() {
            j.backs_image = member.backs_image.clone();
        }
        self.size = self.size.max(member.set.as_ref().and_then(|s| s.size));
    }

    /// `(members, size)` of a set that has fewer members than it should.
    fn incomplete(&self) -> Option<(u32, u32)> {
        let members = self.members.len() as u32;
        self.size.filter(|&size| members < size).map(|size| (members, size))
    }
}

fn ignore_reason(plan: &str, candidate: &Candidate) -> Option<IgnoreReason> {
    if !candidate.managed_tag {
        Some(IgnoreReason::NotManaged)
    } else if !candidate.in_catalog {
        Some(IgnoreReason::NotInCatalog)
    } else {
        match &candidate.plan_tag {
            None => Some(IgnoreReason::MissingPlanTag),
            Some(tag) if tag != plan => Some(IgnoreReason::OtherPlan(tag.clone())),
            Some(_) => None,
        }
    }
}

/// Decides one series (eligible artifacts of one kind), given newest first; returns one outcome
/// per member, in the same order.
fn decide_series(rules: &RetentionRules, members: &[&Candidate], as_of: DateTime<Utc>) -> Vec<Outcome> {
    let configured = [rules.days, rules.count, rules.daily, rules.weekly, rules.monthly]
        .into_iter()
        .any(|rule| rule.is_some_and(|n| n > 0));
    let mut reasons: Vec<Vec<KeepReason>> = vec![Vec::new(); members.len()];

    for (c, r) in members.iter().zip(reasons.iter_mut()) {
        if c.legal_hold {
            r.push(KeepReason::LegalHold);
        }
        // Inclusive bounds: at the exact instant the lock or the expiry ends, still keep.
        if let Some(until) = c.locked_until.filter(|&until| as_of <= until) {
            r.push(KeepReason::ObjectLock(until));
        }
        if let Some(image) = &c.backs_image {
            r.push(KeepReason::BacksImage(image.clone()));
        }
        if let Some(until) = c.archive_minimum_until.filter(|&until| as_of < until) {
            r.push(KeepReason::ArchiveMinimum(until));
        }
        if !c.complete {
            r.push(KeepReason::InProgress);
        }
        if c.created_at > as_of {
            r.push(KeepReason::CreatedAfterAsOf);
        }
        if let Some(expires) = c.expires_at.filter(|&expires| as_of <= expires) {
            r.push(KeepReason::NotExpired(expires));
        }
        if !configured {
            r.push(KeepReason::NoRules);
        }
    }

    // The pool the rules count over, still newest first.
    let pool: Vec<usize> =
        (0..members.len()).filter(|&i| members[i].complete && members[i].created_at <= as_of).collect();

    if let Some(count) = rules.count {
        for (rank, &i) in (1..).zip(pool.iter().take(count as usize)) {
            reasons[i].push(KeepReason::Newest(rank));
        }
    }
    if let Some(days) = rules.days {
        let window = TimeDelta::days(i64::from(days));
        for &i in &pool {
            if as_of - members[i].created_at < window {
                reasons[i].push(KeepReason::WithinDays);
            }
        }
    }
    keep_buckets(rules.daily, &pool, members, &mut reasons, |t| t.date_naive(), KeepReason::DailyTier);
    keep_buckets(
        rules.weekly,
        &pool,
        members,
        &mut reasons,
        |t| (t.iso_week().year(), t.iso_week().week()),
        |(year, week)| KeepReason::WeeklyTier { year, week },
    );
    keep_buckets(
        rules.monthly,
        &pool,
        members,
        &mut reasons,
        |t| (t.year(), t.month()),
        |(year, month)| KeepReason::MonthlyTier { year, month },
    );

    // min_keep counts complete artifacts only: an in-progress one may never become a backup.
    // Deletion candidates are all complete, so each one moved back raises the count by one.
    let kept = members.iter().zip(&reasons).filter(|(c, r)| c.complete && !r.is_empty()).count();
    let shortfall = (rules.min_keep as usize).saturating_sub(kept);
    for r in reasons.iter_mut().filter(|r| r.is_empty()).take(shortfall) {
        r.push(KeepReason::MinKeep);
    }

    members
        .iter()
        .zip(reasons)
        .map(|(c, r)| if r.is_empty() { Outcome::Delete(deletion_reason(rules, c, as_of)) } else { Outcome::Keep(r) })
        .collect()
}

/// restic's bucket walk: over the pool (newest first), keep the first artifact of each new bucket
/// until `limit` buckets are kept. Equal keys are adjacent because the pool is sorted by time.
fn keep_buckets<K: PartialEq + Copy>(
    limit: Option<u32>,
    pool: &[usize],
    members: &[&Candidate],
    reasons: &mut [Vec<KeepReason>],
    key: impl Fn(DateTime<Utc>) -> K,
    reason: impl Fn(K) -> KeepReason,
) {
    let Some(mut left) = limit else { return };
    let mut last = None;
    for &i in pool {
        if left == 0 {
            break;
        }
        let k = key(members[i].created_at);
        if last != Some(k) {
            reasons[i].push(reason(k));
            last = Some(k);
            left -= 1;
        }
    }
}

fn deletion_reason(rules: &RetentionRules, candidate: &Candidate, as_of: DateTime<Utc>) -> String {
    let rule_list: Vec<String> = [
        ("days", rules.days),
        ("count", rules.count),
        ("daily", rules.daily),
        ("weekly", rules.weekly),
        ("monthly", rules.monthly),
    ]
    .into_iter()
    .filter_map(|(name, value)| value.map(|v| format!("{name} {v}")))
    .chain(std::iter::once(format!("min_keep {}", rules.min_keep)))
    .collect();
    let expiry = match candidate.expires_at {
        Some(expires) => format!("expired {}", expires.to_rfc3339_opts(SecondsFormat::Secs, true)),
        None => "no expiry tag".to_owned(),
    };
    format!(
        "created {} is kept by no rule ({}) as of {}; {expiry}",
        candidate.created_at.to_rfc3339_opts(SecondsFormat::Secs, true),
        rule_list.join(", "),
        as_of.to_rfc3339_opts(SecondsFormat::Secs, true),
    )
}
