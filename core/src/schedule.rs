//! EventBridge schedule expressions and schedule windows.
//!
//! Owns: parsing `cron(...)` and `rate(...)` exactly as EventBridge accepts them (UTC), computing
//! fire times, and the window arithmetic the producer expands plans with. A window is
//! `[last fire <= t, next fire)`: every instant belongs to exactly one window and consecutive
//! windows tile time, so two producers (or one producer retrying) expanding "the window of now"
//! derive the same window start, hence the same task ids.
//!
//! The rules follow the Amazon EventBridge User Guide, "Cron expressions reference" and "Rate
//! expressions". Where that page is silent, the Quartz semantics EventBridge's syntax comes from
//! apply (documented on [`CronSchedule`]).

use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveDateTime, Timelike, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::str::FromStr;

/// First year EventBridge's year field accepts.
pub const FIRST_YEAR: i32 = 1970;
/// Last year EventBridge's year field accepts; no cron fires after it.
pub const LAST_YEAR: i32 = 2199;

/// `nominal_period` samples this many years of a cron, from `SAMPLE_FROM_YEAR` (a fixed year, not
/// "now", so that one policy always gets the same answer): 28 years is the cycle after which the
/// Gregorian calendar repeats its weekdays (between century years), so every month shape that
/// `W`, `L` and `#` depend on is seen.
const SAMPLE_FROM_YEAR: i32 = 2024;
const SAMPLE_YEARS: i32 = 28;

const MINUTES_PER_DAY: i64 = 24 * 60;

/// A schedule parsed from an EventBridge schedule expression.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Schedule {
    Cron(CronSchedule),
    /// `rate(value unit)`: `every` is `value` units.
    Rate {
        every: Duration,
        value: u32,
        unit: RateUnit,
    },
}

/// The unit of a `rate()` expression.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RateUnit {
    Minutes,
    Hours,
    Days,
}

impl RateUnit {
    pub fn seconds(self) -> i64 {
        match self {
            RateUnit::Minutes => 60,
            RateUnit::Hours => 3_600,
            RateUnit::Days => 86_400,
        }
    }

    /// The word EventBridge requires: singular for a value of 1, plural otherwise.
    pub fn word(self, value: u32) -> &'static str {
        match (self, value == 1) {
            (RateUnit::Minutes, true) => "minute",
            (RateUnit::Minutes, false) => "minutes",
            (RateUnit::Hours, true) => "hour",
            (RateUnit::Hours, false) => "hours",
            (RateUnit::Days, true) => "day",
            (RateUnit::Days, false) => "days",
        }
    }
}

/// One field of a cron expression, named as in the EventBridge documentation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CronField {
    Minutes,
    Hours,
    DayOfMonth,
    Month,
    DayOfWeek,
    Year,
}

impl CronField {
    pub const ALL: [CronField; 6] = [
        CronField::Minutes,
        CronField::Hours,
        CronField::DayOfMonth,
        CronField::Month,
        CronField::DayOfWeek,
        CronField::Year,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            CronField::Minutes => "minutes",
            CronField::Hours => "hours",
            CronField::DayOfMonth => "day-of-month",
            CronField::Month => "month",
            CronField::DayOfWeek => "day-of-week",
            CronField::Year => "year",
        }
    }

    fn bounds(self) -> (u32, u32) {
        match self {
            CronField::Minutes => (0, 59),
            CronField::Hours => (0, 23),
            CronField::DayOfMonth => (1, 31),
            CronField::Month => (1, 12),
            CronField::DayOfWeek => (1, 7),
            CronField::Year => (FIRST_YEAR as u32, LAST_YEAR as u32),
        }
    }

    /// Names accepted for values, in value order from 1 (case-insensitive).
    fn names(self) -> &'static [&'static str] {
        match self {
            CronField::Month => &["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"],
            CronField::DayOfWeek => &["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"],
            _ => &[],
        }
    }

    fn expected(self) -> &'static str {
        match self {
            CronField::Minutes => "0-59 and the wildcards , - * /",
            CronField::Hours => "0-23 and the wildcards , - * /",
            CronField::DayOfMonth => "1-31 and the wildcards , - * ? / L W",
            CronField::Month => "1-12 or JAN-DEC and the wildcards , - * /",
            CronField::DayOfWeek => "1-7 or SUN-SAT (1 = SUN) and the wildcards , - * ? L #",
            CronField::Year => "1970-2199 and the wildcards , - * /",
        }
    }
}

impl fmt::Display for CronField {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why an expression is not a valid EventBridge schedule. The message starts with the expression,
/// then names the field (for cron) and the reason.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleError {
    #[error("{expression}: {reason}")]
    Invalid { expression: String, reason: String },
    #[error("{expression}: {field}: {reason}")]
    Field { expression: String, field: CronField, reason: String },
}

impl ScheduleError {
    /// The cron field at fault, when one is.
    pub fn field(&self) -> Option<CronField> {
        match self {
            ScheduleError::Field { field, .. } => Some(*field),
            ScheduleError::Invalid { .. } => None,
        }
    }
}

/// A schedule window: `start` is the last fire at or before the instant asked about, `end` the
/// next fire after `start`. `start <= t < end`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Window {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
}

impl Window {
    pub fn contains(&self, t: DateTime<Utc>) -> bool {
        self.start <= t && t < self.end
    }

    pub fn duration(&self) -> Duration {
        self.end - self.start
    }
}

impl Schedule {
    /// The canonical expression for an EventBridge rule: names upper-cased, whitespace collapsed,
    /// and `*/n` written `first/n` (the form the EventBridge documentation uses).
    pub fn expression(&self) -> String {
        match self {
            Schedule::Cron(cron) => cron.expression(),
            Schedule::Rate { value, unit, .. } => format!("rate({value} {})", unit.word(*value)),
        }
    }

    /// The window `t` falls in. `None` when the schedule has no fire at or before `t`, or none
    /// after that fire (a cron limited to years, or past 2199).
    ///
    /// Rate windows are aligned to the Unix epoch: EventBridge starts a rate schedule when the rule
    /// is created, which the producer cannot know (and which changes when the rule is re-created),
    /// so the fleet uses epoch-aligned windows; every producer then computes the same windows.
    pub fn window_containing(&self, t: DateTime<Utc>) -> Option<Window> {
        match self {
            Schedule::Cron(cron) => {
                let start = cron.last_at_or_before(t)?;
                Some(Window { start, end: cron.next_after(start)? })
            }
            Schedule::Rate { every, .. } => {
                let start = rate_floor(*every, t)?;
                Some(Window { start, end: start.checked_add_signed(*every)? })
            }
        }
    }

    /// The first fire strictly after `t`.
    pub fn next_after(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        match self {
            Schedule::Cron(cron) => cron.next_after(t),
            Schedule::Rate { every, .. } => rate_floor(*every, t)?.checked_add_signed(*every),
        }
    }

    /// The last fire at or before `t`.
    pub fn last_at_or_before(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        match self {
            Schedule::Cron(cron) => cron.last_at_or_before(t),
            Schedule::Rate { every, .. } => rate_floor(*every, t),
        }
    }

    /// The longest time between two consecutive fires, for RPO checks: a rate's period; for a cron,
    /// the largest gap between consecutive fires over a 28-year sample (a full weekday/leap cycle)
    /// starting with its first fire in or after 2024 (or its first fire at all, when its years
    /// end before 2024). Deterministic: it does not depend on the current date. A cron that fires
    /// at most once gets the whole supported span (1970 to 2200).
    pub fn nominal_period(&self) -> Duration {
        match self {
            Schedule::Cron(cron) => cron.largest_gap(),
            Schedule::Rate { every, .. } => *every,
        }
    }
}

/// Start of the epoch-aligned rate window containing `t`.
fn rate_floor(every: Duration, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let period = every.num_seconds();
    if period <= 0 {
        return None;
    }
    // `timestamp()` floors (chrono keeps sub-second parts non-negative), as does `div_euclid`, so
    // instants before 1970 land in the right window too.
    let start = t.timestamp().div_euclid(period) * period;
    DateTime::from_timestamp(start, 0)
}

impl fmt::Display for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.expression())
    }
}

impl Serialize for Schedule {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.expression())
    }
}

impl<'de> Deserialize<'de> for Schedule {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

impl FromStr for Schedule {
    type Err = ScheduleError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let text = s.trim();
        let invalid = |reason: &str| ScheduleError::Invalid {
            expression: if text.is_empty() { "\"\"".to_string() } else { text.to_string() },
            reason: reason.to_string(),
        };
        if let Some(inner) = text.strip_prefix("cron(").and_then(|rest| rest.strip_suffix(')')) {
            CronSchedule::parse(text, inner).map(Schedule::Cron)
        } else if let Some(inner) = text.strip_prefix("rate(").and_then(|rest| rest.strip_suffix(')')) {
            parse_rate(inner).map_err(|reason| invalid(&reason))
        } else if text.is_empty() {
            Err(invalid("empty schedule expression"))
        } else {
            Err(invalid(
                "expected cron(minutes hours day-of-month month day-of-week year) or rate(value unit), e.g. \
                 cron(0 2 * * ? *) or rate(12 hours)",
            ))
        }
    }
}

fn parse_rate(inner: &str) -> Result<Schedule, String> {
    let parts: Vec<&str> = inner.split_whitespace().collect();
    let [value, unit] = parts[..] else {
        return Err("expected rate(value unit), e.g. rate(5 minutes)".to_string());
    };
    let value: u32 = match value.parse() {
        Ok(v) if v > 0 && is_digits(value) => v,
        _ => return Err(format!("the value {value:?} must be a positive whole number")),
    };
    let (unit, plural) = match unit {
        "minute" => (RateUnit::Minutes, false),
        "minutes" => (RateUnit::Minutes, true),
        "hour" => (RateUnit::Hours, false),
        "hours" => (RateUnit::Hours, true),
        "day" => (RateUnit::Days, false),
        "days" => (RateUnit::Days, true),
        other => return Err(format!("unknown unit {other:?} (expected minute(s), hour(s) or day(s))")),
    };
    // EventBridge rejects "rate(1 minutes)" and "rate(5 minute)".
    if value == 1 && plural {
        return Err(format!("use '{}' for a value of 1", unit.word(1)));
    }
    if value != 1 && !plural {
        return Err(format!("use '{}' for a value other than 1", unit.word(value)));
    }
    let every = Duration::try_seconds(i64::from(value) * unit.seconds()).ok_or("the period is too long")?;
    Ok(Schedule::Rate { every, value, unit })
}

/// A set of field values, as bits above the field's minimum (years need 230 bits).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct ValueSet {
    min: u32,
    bits: [u64; 4],
}

impl ValueSet {
    fn empty(min: u32) -> Self {
        ValueSet { min, bits: [0; 4] }
    }

    fn insert(&mut self, value: u32) {
        let i = (value - self.min) as usize;
        self.bits[i / 64] |= 1 << (i % 64);
    }

    fn contains(&self, value: u32) -> bool {
        let Some(i) = value.checked_sub(self.min).map(|i| i as usize) else { return false };
        i < 256 && (self.bits[i / 64] >> (i % 64)) & 1 == 1
    }
}

/// The day part of a cron: EventBridge lets exactly one of day-of-month and day-of-week be set.
#[derive(Clone, Debug, PartialEq, Eq)]
enum DaySpec {
    /// Day-of-month values; day-of-week is `?`.
    DaysOfMonth(ValueSet),
    /// Day-of-month `L`.
    LastDayOfMonth,
    /// Day-of-month `LW`.
    LastWeekdayOfMonth,
    /// Day-of-month `nW`.
    NearestWeekday(u32),
    /// Day-of-week values (1 = SUN); day-of-month is `?`.
    DaysOfWeek(ValueSet),
    /// Day-of-week `nL`.
    LastOfWeekday(u32),
    /// Day-of-week `d#n`.
    NthWeekday { weekday: u32, nth: u32 },
}

/// A parsed `cron()` expression. Fires at second 0 of every matching minute, UTC.
///
/// Semantics where the EventBridge page is silent (Quartz's, which EventBridge's syntax follows):
/// - day-of-month `L` is the last day of the month; `LW` the last weekday (Mon-Fri) of the month;
///   `nW` the weekday nearest day n *within the month*: a Saturday moves to Friday, except the
///   1st moves to Monday the 3rd; a Sunday moves to Monday, except the last day of the month moves
///   to Friday. A month without day n (31W in April) does not fire. `L-n` offsets are not accepted
///   (not documented by EventBridge).
/// - day-of-week `L` alone is the last day of the week, Saturday (7); `nL` is the last weekday n
///   of the month (`6L` = last Friday); `d#n` the n-th (1-5) weekday d of the month, and a month
///   without a fifth one does not fire.
/// - `L`, `W` and `#` stand alone in their field (no lists, ranges or increments); the docs say so
///   for `#` ("3#1,6#3" is invalid).
/// - `a/n` runs from a to the field's maximum; `a-b/n` from a to b; `*/n` = first value `/n`.
///   `/` is not accepted in day-of-week (the docs do not list it there).
/// - ranges must go forwards (`FRI-MON` is rejected rather than wrapped).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CronSchedule {
    minutes: ValueSet,
    hours: ValueSet,
    months: ValueSet,
    years: ValueSet,
    days: DaySpec,
    /// Minute-of-day fire times, ascending: the same on every firing day.
    times: Vec<u16>,
    /// Canonical text of each field.
    fields: [String; 6],
}

impl CronSchedule {
    fn parse(expression: &str, inner: &str) -> Result<Self, ScheduleError> {
        let field_err = |field: CronField| {
            move |reason: String| ScheduleError::Field { expression: expression.to_string(), field, reason }
        };
        let parts: Vec<&str> = inner.split_whitespace().collect();
        let [minutes, hours, dom, month, dow, year] = parts[..] else {
            return Err(ScheduleError::Invalid {
                expression: expression.to_string(),
                reason: format!(
                    "expected 6 fields (minutes hours day-of-month month day-of-week year), found {}",
                    parts.len()
                ),
            });
        };
        let (minutes, minutes_text) = parse_set(CronField::Minutes, minutes).map_err(field_err(CronField::Minutes))?;
        let (hours, hours_text) = parse_set(CronField::Hours, hours).map_err(field_err(CronField::Hours))?;
        let (months, month_text) = parse_set(CronField::Month, month).map_err(field_err(CronField::Month))?;
        let (years, year_text) = parse_set(CronField::Year, year).map_err(field_err(CronField::Year))?;
        // The docs: "You can't specify the Day-of-month and Day-of-week fields in the same cron
        // expression. If you specify a value or a * (asterisk) in one of the fields, you must use
        // a ? (question mark) in the other."
        let (days, dom_text, dow_text) = match (dom == "?", dow == "?") {
            (true, true) => {
                return Err(field_err(CronField::DayOfWeek)(
                    "day-of-month and day-of-week cannot both be '?': set one of them".to_string(),
                ))
            }
            (false, false) => {
                return Err(field_err(CronField::DayOfWeek)(format!(
                    "{dow:?} with day-of-month {dom:?}: one of the two must be '?' (EventBridge does not combine them)"
                )))
            }
            (false, true) => {
                let (days, text) = parse_day_of_month(dom).map_err(field_err(CronField::DayOfMonth))?;
                (days, text, "?".to_string())
            }
            (true, false) => {
                let (days, text) = parse_day_of_week(dow).map_err(field_err(CronField::DayOfWeek))?;
                (days, "?".to_string(), text)
            }
        };
        // Reject what can never fire in any year, e.g. cron(0 0 30 2 ? *).
        let longest_month = |m: u32| if m == 2 { 29 } else { days_in_month(2001, m) };
        let possible = |day: u32| (1..=12).any(|m| months.contains(m) && day <= longest_month(m));
        let never = match &days {
            DaySpec::DaysOfMonth(set) => !(1..=31).any(|d| set.contains(d) && possible(d)),
            DaySpec::NearestWeekday(d) => !possible(*d),
            _ => false,
        };
        if never {
            return Err(field_err(CronField::DayOfMonth)(format!(
                "never fires: {dom_text} does not occur in month(s) {month_text}"
            )));
        }
        let times = (0..24u16)
            .filter(|h| hours.contains(u32::from(*h)))
            .flat_map(|h| (0..60u16).filter(|m| minutes.contains(u32::from(*m))).map(move |m| h * 60 + m))
            .collect();
        Ok(CronSchedule {
            minutes,
            hours,
            months,
            years,
            days,
            times,
            fields: [minutes_text, hours_text, dom_text, month_text, dow_text, year_text],
        })
    }

    /// The canonical `cron(...)` text.
    pub fn expression(&self) -> String {
        format!("cron({})", self.fields.join(" "))
    }

    /// Canonical text of one field.
    pub fn field(&self, field: CronField) -> &str {
        let i = CronField::ALL.iter().position(|f| *f == field).unwrap_or_default();
        &self.fields[i]
    }

    /// Whether the schedule fires at exactly `t` (second 0 of a matching minute).
    pub fn fires_at(&self, t: DateTime<Utc>) -> bool {
        t.second() == 0
            && t.nanosecond() == 0
            && self.fires_on(t.date_naive())
            && self.times.binary_search(&(t.hour() * 60 + t.minute()).try_into().unwrap_or(u16::MAX)).is_ok()
    }

    /// The first fire strictly after `t`.
    pub fn next_after(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let from = floor_to_minute(t)?.checked_add_signed(Duration::minutes(1))?;
        let date = from.date();
        let minute = minute_of_day(from);
        if self.fires_on(date) {
            if let Some(&m) = self.times.iter().find(|&&m| m >= minute) {
                return at_minute(date, m);
            }
        }
        at_minute(self.next_fire_day(date.succ_opt()?)?, *self.times.first()?)
    }

    /// The last fire at or before `t`.
    pub fn last_at_or_before(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let from = floor_to_minute(t)?;
        let date = from.date();
        let minute = minute_of_day(from);
        if self.fires_on(date) {
            if let Some(&m) = self.times.iter().rev().find(|&&m| m <= minute) {
                return at_minute(date, m);
            }
        }
        at_minute(self.prev_fire_day(date.pred_opt()?)?, *self.times.last()?)
    }

    fn fires_on(&self, date: NaiveDate) -> bool {
        (FIRST_YEAR..=LAST_YEAR).contains(&date.year())
            && self.years.contains(date.year() as u32)
            && self.months.contains(date.month())
            && self.day_matches(date)
    }

    /// Day-of-month / day-of-week match, the year and month being already allowed.
    fn day_matches(&self, date: NaiveDate) -> bool {
        let day = date.day();
        let last = days_in_month(date.year(), date.month());
        let weekday = date.weekday().number_from_sunday();
        match &self.days {
            DaySpec::DaysOfMonth(set) => set.contains(day),
            DaySpec::LastDayOfMonth => day == last,
            DaySpec::LastWeekdayOfMonth => day == nearest_weekday(date.year(), date.month(), last, last),
            DaySpec::NearestWeekday(n) => *n <= last && day == nearest_weekday(date.year(), date.month(), *n, last),
            DaySpec::DaysOfWeek(set) => set.contains(weekday),
            DaySpec::LastOfWeekday(w) => weekday == *w && day + 7 > last,
            DaySpec::NthWeekday { weekday: w, nth } => weekday == *w && (day - 1) / 7 + 1 == *nth,
        }
    }

    /// The first firing day at or after `from`. Walks years, then months, then days, skipping
    /// years and months that cannot fire, so even a cron that never fires again costs at most
    /// 230 years of day checks (well under a millisecond), never a minute-by-minute scan.
    fn next_fire_day(&self, from: NaiveDate) -> Option<NaiveDate> {
        let from = if from.year() < FIRST_YEAR { NaiveDate::from_ymd_opt(FIRST_YEAR, 1, 1)? } else { from };
        for year in from.year()..=LAST_YEAR {
            if !self.years.contains(year as u32) {
                continue;
            }
            let first_month = if year == from.year() { from.month() } else { 1 };
            for month in (first_month..=12).filter(|m| self.months.contains(*m)) {
                let first_day = if (year, month) == (from.year(), from.month()) { from.day() } else { 1 };
                for day in first_day..=days_in_month(year, month) {
                    let date = NaiveDate::from_ymd_opt(year, month, day)?;
                    if self.day_matches(date) {
                        return Some(date);
                    }
                }
            }
        }
        None
    }

    /// The last firing day at or before `from`; the mirror of `next_fire_day`.
    fn prev_fire_day(&self, from: NaiveDate) -> Option<NaiveDate> {
        let from = if from.year() > LAST_YEAR { NaiveDate::from_ymd_opt(LAST_YEAR, 12, 31)? } else { from };
        for year in (FIRST_YEAR..=from.year()).rev() {
            if !self.years.contains(year as u32) {
                continue;
            }
            let last_month = if year == from.year() { from.month() } else { 12 };
            for month in (1..=last_month).rev().filter(|m| self.months.contains(*m)) {
                let last_day =
                    if (year, month) == (from.year(), from.month()) { from.day() } else { days_in_month(year, month) };
                for day in (1..=last_day).rev() {
                    let date = NaiveDate::from_ymd_opt(year, month, day)?;
                    if self.day_matches(date) {
                        return Some(date);
                    }
                }
            }
        }
        None
    }

    /// Fire times are (firing days) x (times of day), so the largest gap is either within a day or
    /// from the last time of one firing day to the first time of the next: only days are walked.
    fn largest_gap(&self) -> Duration {
        let (Some(&first), Some(&last)) = (self.times.first(), self.times.last()) else {
            return whole_span();
        };
        let mut gap = self.times.windows(2).map(|w| i64::from(w[1] - w[0])).max().unwrap_or(0);
        let first_day = |year| NaiveDate::from_ymd_opt(year, 1, 1).and_then(|d| self.next_fire_day(d));
        let mut day = first_day(SAMPLE_FROM_YEAR).or_else(|| first_day(FIRST_YEAR));
        if let Some(from_year) = day.map(|d| d.year()) {
            while let Some(current) = day {
                let Some(next) = current.succ_opt().and_then(|d| self.next_fire_day(d)) else { break };
                let days = (next - current).num_days();
                gap = gap.max(days * MINUTES_PER_DAY - i64::from(last) + i64::from(first));
                if next.year() >= from_year + SAMPLE_YEARS {
                    break;
                }
                day = Some(next);
            }
        }
        if gap == 0 {
            whole_span()
        } else {
            Duration::minutes(gap)
        }
    }
}

fn whole_span() -> Duration {
    let start = NaiveDate::from_ymd_opt(FIRST_YEAR, 1, 1).unwrap_or_default();
    let end = NaiveDate::from_ymd_opt(LAST_YEAR + 1, 1, 1).unwrap_or_default();
    end - start
}

fn floor_to_minute(t: DateTime<Utc>) -> Option<NaiveDateTime> {
    t.naive_utc().with_nanosecond(0)?.with_second(0)
}

fn minute_of_day(t: NaiveDateTime) -> u16 {
    // At most 1439: fits.
    (t.hour() * 60 + t.minute()) as u16
}

fn at_minute(date: NaiveDate, minute: u16) -> Option<DateTime<Utc>> {
    Some(date.and_hms_opt(u32::from(minute / 60), u32::from(minute % 60), 0)?.and_utc())
}

fn days_in_month(year: i32, month: u32) -> u32 {
    match month {
        2 if NaiveDate::from_ymd_opt(year, 2, 29).is_some() => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// The weekday nearest to day `n` without leaving the month (Quartz's `W`).
fn nearest_weekday(year: i32, month: u32, n: u32, last: u32) -> u32 {
    let weekday = NaiveDate::from_ymd_opt(year, month, n).map(|d| d.weekday().number_from_sunday());
    match weekday {
        Some(7) if n == 1 => 3,
        Some(7) => n - 1,
        Some(1) if n == last => n - 2,
        Some(1) => n + 1,
        _ => n,
    }
}

fn is_digits(text: &str) -> bool {
    !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit())
}

/// One value of a field: a number in range, or a name where the field has names.
fn parse_value(field: CronField, text: &str) -> Result<u32, String> {
    let (min, max) = field.bounds();
    if is_digits(text) {
        return match text.parse::<u32>() {
            Ok(v) if (min..=max).contains(&v) => Ok(v),
            _ => Err(format!("value {text} is out of range (expected {})", field.expected())),
        };
    }
    let upper = text.to_ascii_uppercase();
    match field.names().iter().position(|name| *name == upper) {
        Some(i) => Ok(i as u32 + 1),
        None => Err(format!("{text:?} is not a valid value (expected {})", field.expected())),
    }
}

/// A field made of `,`-separated items, each `*`, `a`, `a-b`, with an optional `/step`.
fn parse_set(field: CronField, text: &str) -> Result<(ValueSet, String), String> {
    let (min, max) = field.bounds();
    if text.contains('?') {
        return Err("'?' is only allowed in day-of-month and day-of-week".to_string());
    }
    let mut set = ValueSet::empty(min);
    let mut canonical = Vec::new();
    for item in text.split(',') {
        if item.is_empty() {
            return Err(format!("empty item in list {text:?}"));
        }
        let (range, step) = match item.split_once('/') {
            Some((range, step)) => {
                if field == CronField::DayOfWeek {
                    return Err("'/' is not allowed in day-of-week".to_string());
                }
                match step.parse::<u32>() {
                    Ok(n) if n > 0 && is_digits(step) => (range, Some(n)),
                    _ => return Err(format!("increment {step:?} in {item:?} must be a positive whole number")),
                }
            }
            None => (item, None),
        };
        let (low, high) = if range == "*" {
            (min, max)
        } else if let Some((a, b)) = range.split_once('-') {
            let (a, b) = (parse_value(field, a)?, parse_value(field, b)?);
            if a > b {
                return Err(format!("range {range:?} goes backwards"));
            }
            (a, b)
        } else {
            let a = parse_value(field, range)?;
            (a, if step.is_some() { max } else { a })
        };
        let step = step.unwrap_or(1);
        let mut value = low;
        while value <= high {
            set.insert(value);
            value += step;
        }
        canonical.push(match (range, step) {
            ("*", 1) => "*".to_string(),
            ("*", step) => format!("{min}/{step}"),
            _ => item.to_ascii_uppercase(),
        });
    }
    Ok((set, canonical.join(",")))
}

fn parse_day_of_month(text: &str) -> Result<(DaySpec, String), String> {
    let upper = text.to_ascii_uppercase();
    if !upper.contains(['L', 'W']) {
        let (set, canonical) = parse_set(CronField::DayOfMonth, text)?;
        return Ok((DaySpec::DaysOfMonth(set), canonical));
    }
    if upper.contains([',', '-', '/', '*']) {
        return Err(format!("{text:?}: 'L' and 'W' stand alone (no lists, ranges, increments or offsets)"));
    }
    let spec = match upper.as_str() {
        "L" => DaySpec::LastDayOfMonth,
        "LW" => DaySpec::LastWeekdayOfMonth,
        _ => match upper.strip_suffix('W').map(|day| parse_value(CronField::DayOfMonth, day)) {
            Some(Ok(day)) => DaySpec::NearestWeekday(day),
            Some(Err(reason)) => return Err(reason),
            None => return Err(format!("{text:?} is not valid (expected L, LW or a day followed by W, e.g. 15W)")),
        },
    };
    Ok((spec, upper))
}

fn parse_day_of_week(text: &str) -> Result<(DaySpec, String), String> {
    let upper = text.to_ascii_uppercase();
    if let Some((day, nth)) = upper.split_once('#') {
        if upper.contains(',') {
            return Err(format!("{text:?}: with '#' only one expression is allowed (EventBridge rejects 3#1,6#3)"));
        }
        let weekday = parse_value(CronField::DayOfWeek, day)?;
        return match nth.parse::<u32>() {
            Ok(n) if (1..=5).contains(&n) && is_digits(nth) => Ok((DaySpec::NthWeekday { weekday, nth: n }, upper)),
            _ => Err(format!("{text:?}: '#' takes a week of the month from 1 to 5")),
        };
    }
    // No day name contains an L, so a trailing L is the wildcard.
    if let Some(day) = upper.strip_suffix('L') {
        if upper.contains([',', '-', '/', '*']) {
            return Err(format!("{text:?}: 'L' stands alone (no lists or ranges)"));
        }
        if day.is_empty() {
            // "L" alone is the last day of the week: Saturday.
            let mut set = ValueSet::empty(1);
            set.insert(7);
            return Ok((DaySpec::DaysOfWeek(set), upper));
        }
        return Ok((DaySpec::LastOfWeekday(parse_value(CronField::DayOfWeek, day)?), upper));
    }
    let (set, canonical) = parse_set(CronField::DayOfWeek, text)?;
    Ok((DaySpec::DaysOfWeek(set), canonical))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn parse(s: &str) -> Schedule {
        s.parse().unwrap_or_else(|e| panic!("{s} should parse: {e}"))
    }

    fn at(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, mo, d, h, mi, 0).unwrap()
    }

    fn err(s: &str) -> ScheduleError {
        match s.parse::<Schedule>() {
            Ok(parsed) => panic!("{s} should not parse, got {parsed:?}"),
            Err(e) => e,
        }
    }

    /// Asserts the error names `field` both in its data and in its message.
    fn field_err(s: &str, field: CronField, contains: &str) {
        let e = err(s);
        assert_eq!(e.field(), Some(field), "{s}: {e}");
        let message = e.to_string();
        assert!(message.starts_with(&format!("{}: {}: ", s.trim(), field.as_str())), "{message}");
        assert!(message.contains(contains), "{message:?} should contain {contains:?}");
    }

    fn fires(s: &str, from: DateTime<Utc>, n: usize) -> Vec<DateTime<Utc>> {
        let schedule = parse(s);
        let mut out = Vec::new();
        let mut t = from;
        for _ in 0..n {
            t = schedule.next_after(t).expect("fires");
            out.push(t);
        }
        out
    }

    #[test]
    fn parses_valid_expressions() {
        for s in [
            "cron(0 2 * * ? *)",
            "cron(0 9 ? * MON-FRI *)",
            "cron(0/15 * * * ? *)",
            "cron(*/5 * * * ? *)",
            "cron(0 18 ? * mon-fri *)",
            "cron(0 8 1 * ? *)",
            "cron(0/10 * ? * MON-FRI *)",
            "cron(0/5 8-17 ? * MON-FRI *)",
            "cron(0 9 ? * 2#1 *)",
            "cron(15 10 ? * 6L 2019-2022)",
            "cron(0 23 L * ? *)",
            "cron(0 0 LW * ? *)",
            "cron(0 0 15W * ? *)",
            "cron(0 0 ? * L *)",
            "cron(0 0 ? * FRI#3 *)",
            "cron(0 0 1 JAN,jul ? 2025/2)",
            "cron(0 0 1-10/3 1 ? 1970,2199)",
            "  cron(0   2 * *  ? *)  ",
            "rate(1 minute)",
            "rate(5 minutes)",
            "rate(1 hour)",
            "rate(12 hours)",
            "rate(1 day)",
            "rate(7 days)",
        ] {
            parse(s);
        }
    }

    #[test]
    fn canonical_expression() {
        assert_eq!(parse("cron(0 2 * * ? *)").expression(), "cron(0 2 * * ? *)");
        assert_eq!(parse("  cron(0   9 ? *  mon-fri *) ").expression(), "cron(0 9 ? * MON-FRI *)");
        assert_eq!(parse("cron(*/5 * */2 */3 ? */10)").expression(), "cron(0/5 * 1/2 1/3 ? 1970/10)");
        assert_eq!(parse("cron(0 0 15w * ? *)").expression(), "cron(0 0 15W * ? *)");
        assert_eq!(parse("cron(0 0 ? * fri#3 *)").expression(), "cron(0 0 ? * FRI#3 *)");
        assert_eq!(parse("rate(1 day)").expression(), "rate(1 day)");
        assert_eq!(parse("rate( 90 minutes )").expression(), "rate(90 minutes)");
        // The canonical text parses back to the same schedule.
        for s in ["cron(*/5 1-3 */2 */3 ? */10)", "cron(0 0 ? * 6L *)", "rate(3 hours)"] {
            let schedule = parse(s);
            assert_eq!(parse(&schedule.expression()), schedule);
            assert_eq!(schedule.to_string(), schedule.expression());
        }
    }

    #[test]
    fn serde_round_trip_as_string() {
        let schedule = parse("cron(0 9 ? * MON-FRI *)");
        let json = serde_json::to_string(&schedule).unwrap();
        assert_eq!(json, "\"cron(0 9 ? * MON-FRI *)\"");
        assert_eq!(serde_json::from_str::<Schedule>(&json).unwrap(), schedule);
        assert!(serde_json::from_str::<Schedule>("\"rate(1 minutes)\"").is_err());
    }

    #[test]
    fn rate_errors() {
        assert_eq!(err("rate(1 minutes)").to_string(), "rate(1 minutes): use 'minute' for a value of 1");
        assert_eq!(err("rate(1 days)").to_string(), "rate(1 days): use 'day' for a value of 1");
        assert_eq!(err("rate(5 minute)").to_string(), "rate(5 minute): use 'minutes' for a value other than 1");
        assert!(err("rate(0 minutes)").to_string().contains("positive whole number"));
        assert!(err("rate(-5 minutes)").to_string().contains("positive whole number"));
        assert!(err("rate(five minutes)").to_string().contains("positive whole number"));
        assert!(err("rate(+5 minutes)").to_string().contains("positive whole number"));
        assert!(err("rate(2 weeks)").to_string().contains("unknown unit \"weeks\""));
        assert!(err("rate(5)").to_string().contains("expected rate(value unit)"));
        assert!(err("rate(5 minutes now)").to_string().contains("expected rate(value unit)"));
    }

    #[test]
    fn syntax_errors() {
        assert!(err("").to_string().contains("empty"));
        assert!(err("0 2 * * ? *").to_string().contains("expected cron("));
        assert!(err("CRON(0 2 * * ? *)").to_string().contains("expected cron("));
        assert!(err("cron(0 2 * * ? *").to_string().contains("expected cron("));
        let e = err("cron(0 2 * * ?)");
        assert_eq!(e.field(), None);
        assert!(e.to_string().contains("expected 6 fields"), "{e}");
        assert!(err("cron(0 2 * * * ? *)").to_string().contains("found 7"));
    }

    #[test]
    fn field_errors_name_the_field() {
        field_err("cron(60 2 * * ? *)", CronField::Minutes, "60 is out of range");
        field_err("cron(0/0 2 * * ? *)", CronField::Minutes, "positive whole number");
        field_err("cron(0,,5 2 * * ? *)", CronField::Minutes, "empty item");
        field_err("cron(? 2 * * ? *)", CronField::Minutes, "'?' is only allowed");
        field_err("cron(L 2 * * ? *)", CronField::Minutes, "not a valid value");
        field_err("cron(0 24 * * ? *)", CronField::Hours, "24 is out of range");
        field_err("cron(0 17-9 * * ? *)", CronField::Hours, "goes backwards");
        field_err("cron(0 2 32 * ? *)", CronField::DayOfMonth, "32 is out of range");
        field_err("cron(0 2 0 * ? *)", CronField::DayOfMonth, "0 is out of range");
        field_err("cron(0 2 L,15 * ? *)", CronField::DayOfMonth, "stand alone");
        field_err("cron(0 2 L-2 * ? *)", CronField::DayOfMonth, "stand alone");
        field_err("cron(0 2 1-5W * ? *)", CronField::DayOfMonth, "stand alone");
        field_err("cron(0 2 32W * ? *)", CronField::DayOfMonth, "out of range");
        field_err("cron(0 2 WL * ? *)", CronField::DayOfMonth, "is not valid");
        field_err("cron(0 0 30 2 ? *)", CronField::DayOfMonth, "never fires");
        field_err("cron(0 0 31 APR,JUN ? *)", CronField::DayOfMonth, "never fires");
        field_err("cron(0 0 31W 2 ? *)", CronField::DayOfMonth, "never fires");
        field_err("cron(0 2 * 13 ? *)", CronField::Month, "13 is out of range");
        field_err("cron(0 2 * FOO ? *)", CronField::Month, "\"FOO\" is not a valid value");
        field_err("cron(0 2 * DEC-JAN ? *)", CronField::Month, "goes backwards");
        field_err("cron(0 2 ? * 8 *)", CronField::DayOfWeek, "8 is out of range");
        field_err("cron(0 2 ? * 0 *)", CronField::DayOfWeek, "0 is out of range");
        field_err("cron(0 2 ? * FRI-MON *)", CronField::DayOfWeek, "goes backwards");
        field_err("cron(0 2 ? * 1/2 *)", CronField::DayOfWeek, "'/' is not allowed");
        field_err("cron(0 2 ? * 3#6 *)", CronField::DayOfWeek, "from 1 to 5");
        field_err("cron(0 2 ? * 3#1,6#3 *)", CronField::DayOfWeek, "only one expression");
        field_err("cron(0 2 ? * 2,6L *)", CronField::DayOfWeek, "stands alone");
        field_err("cron(0 2 ? * XL *)", CronField::DayOfWeek, "not a valid value");
        field_err("cron(0 2 * * * *)", CronField::DayOfWeek, "must be '?'");
        field_err("cron(0 2 1 * MON *)", CronField::DayOfWeek, "must be '?'");
        field_err("cron(0 2 ? * ? *)", CronField::DayOfWeek, "cannot both be '?'");
        field_err("cron(0 2 * * ? 2200)", CronField::Year, "2200 is out of range");
        field_err("cron(0 2 * * ? 1969)", CronField::Year, "1969 is out of range");
        field_err("cron(0 2 * * ? 2030-2020)", CronField::Year, "goes backwards");
        field_err("cron(0 2 * * ? ?)", CronField::Year, "'?' is only allowed");
    }

    #[test]
    fn daily() {
        let s = parse("cron(0 2 * * ? *)");
        assert_eq!(s.next_after(at(2024, 3, 10, 1, 59)), Some(at(2024, 3, 10, 2, 0)));
        assert_eq!(s.next_after(at(2024, 3, 10, 2, 0)), Some(at(2024, 3, 11, 2, 0)));
        assert_eq!(s.next_after(at(2024, 12, 31, 3, 0)), Some(at(2025, 1, 1, 2, 0)));
        assert_eq!(s.last_at_or_before(at(2024, 3, 10, 2, 0)), Some(at(2024, 3, 10, 2, 0)));
        assert_eq!(
            s.window_containing(at(2024, 3, 10, 1, 59)),
            Some(Window { start: at(2024, 3, 9, 2, 0), end: at(2024, 3, 10, 2, 0) })
        );
        // Mid-minute instants: the fire at second 0 is not "after" 02:00:30.
        let half = at(2024, 3, 10, 2, 0) + Duration::seconds(30);
        assert_eq!(s.next_after(half), Some(at(2024, 3, 11, 2, 0)));
        assert_eq!(s.last_at_or_before(half), Some(at(2024, 3, 10, 2, 0)));
        assert_eq!(s.nominal_period(), Duration::days(1));
    }

    #[test]
    fn weekdays() {
        // 2024-03-08 is a Friday.
        let s = parse("cron(0 9 ? * MON-FRI *)");
        assert_eq!(s.next_after(at(2024, 3, 8, 9, 0)), Some(at(2024, 3, 11, 9, 0)));
        assert_eq!(s.last_at_or_before(at(2024, 3, 10, 12, 0)), Some(at(2024, 3, 8, 9, 0)));
        assert_eq!(s.nominal_period(), Duration::days(3));
        let days: Vec<u32> =
            fires("cron(0 9 ? * MON-FRI *)", at(2024, 3, 1, 0, 0), 6).iter().map(|t| t.day()).collect();
        assert_eq!(days, [1, 4, 5, 6, 7, 8]);
    }

    #[test]
    fn every_fifteen_minutes() {
        let s = parse("cron(0/15 * * * ? *)");
        assert_eq!(s.next_after(at(2024, 3, 10, 10, 7)), Some(at(2024, 3, 10, 10, 15)));
        assert_eq!(s.next_after(at(2024, 3, 10, 23, 45)), Some(at(2024, 3, 11, 0, 0)));
        assert_eq!(
            s.window_containing(at(2024, 3, 10, 10, 29)),
            Some(Window { start: at(2024, 3, 10, 10, 15), end: at(2024, 3, 10, 10, 30) })
        );
        assert_eq!(s.nominal_period(), Duration::minutes(15));
        // 1/10 is the 1st, 11th, 21st... minute (the EventBridge docs' example).
        let minutes: Vec<u32> =
            fires("cron(1/10 * * * ? *)", at(2024, 1, 1, 0, 0), 4).iter().map(|t| t.minute()).collect();
        assert_eq!(minutes, [1, 11, 21, 31]);
        assert_eq!(parse("cron(1/10 * * * ? *)").nominal_period(), Duration::minutes(10));
    }

    #[test]
    fn last_day_of_month() {
        let s = parse("cron(0 23 L * ? *)");
        let got = fires("cron(0 23 L * ? *)", at(2024, 1, 31, 23, 0), 3);
        assert_eq!(got, [at(2024, 2, 29, 23, 0), at(2024, 3, 31, 23, 0), at(2024, 4, 30, 23, 0)]);
        assert_eq!(s.next_after(at(2023, 2, 1, 0, 0)), Some(at(2023, 2, 28, 23, 0)));
        assert_eq!(s.nominal_period(), Duration::days(31));
        // LW: last weekday. 2024-08-31 and 2024-11-30 are Saturdays, 2024-03-31 a Sunday.
        let lw: Vec<(u32, u32)> =
            fires("cron(0 0 LW * ? *)", at(2024, 2, 29, 0, 0), 9).iter().map(|t| (t.month(), t.day())).collect();
        assert_eq!(lw, [(3, 29), (4, 30), (5, 31), (6, 28), (7, 31), (8, 30), (9, 30), (10, 31), (11, 29)]);
    }

    #[test]
    fn nearest_weekday_w() {
        // 2024-06-15 is a Saturday -> Friday 14th; 2024-09-15 a Sunday -> Monday 16th.
        let s = parse("cron(30 4 15W * ? *)");
        assert_eq!(s.next_after(at(2024, 6, 1, 0, 0)), Some(at(2024, 6, 14, 4, 30)));
        assert_eq!(s.next_after(at(2024, 9, 1, 0, 0)), Some(at(2024, 9, 16, 4, 30)));
        assert_eq!(s.next_after(at(2024, 3, 1, 0, 0)), Some(at(2024, 3, 15, 4, 30)));
        // 1W on Saturday 2024-06-01 moves forward to Monday the 3rd, not back into May.
        assert_eq!(parse("cron(0 0 1W * ? *)").next_after(at(2024, 5, 31, 0, 0)), Some(at(2024, 6, 3, 0, 0)));
        // 31W on Sunday 2024-03-31 moves back to Friday the 29th; April has no 31st: no fire.
        let got = fires("cron(0 0 31W * ? *)", at(2024, 3, 1, 0, 0), 2);
        assert_eq!(got, [at(2024, 3, 29, 0, 0), at(2024, 5, 31, 0, 0)]);
    }

    #[test]
    fn nth_weekday_hash() {
        // Second Tuesday: March 2024 starts on a Friday.
        let s = parse("cron(0 9 ? * 3#2 *)");
        assert_eq!(s.next_after(at(2024, 3, 1, 0, 0)), Some(at(2024, 3, 12, 9, 0)));
        assert_eq!(s.next_after(at(2024, 3, 12, 9, 0)), Some(at(2024, 4, 9, 9, 0)));
        // Fifth Thursday: only months that have one (2024-02-29 is a Thursday).
        let got = fires("cron(0 0 ? * THU#5 *)", at(2024, 1, 1, 0, 0), 3);
        assert_eq!(got, [at(2024, 2, 29, 0, 0), at(2024, 5, 30, 0, 0), at(2024, 8, 29, 0, 0)]);
    }

    #[test]
    fn last_weekday_of_month_l() {
        // 6L: the last Friday.
        let got = fires("cron(15 10 ? * 6L *)", at(2024, 3, 1, 0, 0), 3);
        assert_eq!(got, [at(2024, 3, 29, 10, 15), at(2024, 4, 26, 10, 15), at(2024, 5, 31, 10, 15)]);
        // L alone in day-of-week is Saturday.
        let got = fires("cron(0 0 ? * L *)", at(2024, 3, 1, 0, 0), 2);
        assert_eq!(got, [at(2024, 3, 2, 0, 0), at(2024, 3, 9, 0, 0)]);
        assert_eq!(parse("cron(0 0 ? * L *)").nominal_period(), Duration::days(7));
    }

    #[test]
    fn yearly_and_year_ranges() {
        let s = parse("cron(0 0 1 1 ? *)");
        assert_eq!(s.next_after(at(2024, 6, 1, 0, 0)), Some(at(2025, 1, 1, 0, 0)));
        assert_eq!(s.last_at_or_before(at(2024, 6, 1, 0, 0)), Some(at(2024, 1, 1, 0, 0)));
        assert_eq!(s.nominal_period(), Duration::days(366));

        let s = parse("cron(0 12 25 12 ? 2025-2027)");
        assert_eq!(s.next_after(at(2020, 1, 1, 0, 0)), Some(at(2025, 12, 25, 12, 0)));
        assert_eq!(s.next_after(at(2027, 12, 25, 12, 0)), None);
        assert_eq!(s.last_at_or_before(at(2025, 12, 25, 11, 59)), None);
        assert_eq!(s.last_at_or_before(at(2030, 1, 1, 0, 0)), Some(at(2027, 12, 25, 12, 0)));
        assert_eq!(
            s.window_containing(at(2026, 6, 1, 0, 0)),
            Some(Window { start: at(2025, 12, 25, 12, 0), end: at(2026, 12, 25, 12, 0) })
        );
        // After the last fire there is no window end.
        assert_eq!(s.window_containing(at(2030, 1, 1, 0, 0)), None);
        assert_eq!(s.window_containing(at(2020, 1, 1, 0, 0)), None);

        // February 29th: 2100 is not a leap year.
        let s = parse("cron(0 0 29 2 ? *)");
        assert_eq!(s.next_after(at(2097, 3, 1, 0, 0)), Some(at(2104, 2, 29, 0, 0)));
        assert_eq!(s.nominal_period(), Duration::days(4 * 365 + 1));
        // Stepped years.
        let got = fires("cron(0 0 1 1 ? 2024/4)", at(2024, 6, 1, 0, 0), 2);
        assert_eq!(got, [at(2028, 1, 1, 0, 0), at(2032, 1, 1, 0, 0)]);
    }

    #[test]
    fn supported_year_range() {
        let s = parse("cron(* * * * ? *)");
        assert_eq!(s.next_after(at(1960, 5, 5, 5, 5)), Some(at(1970, 1, 1, 0, 0)));
        assert_eq!(s.last_at_or_before(at(1969, 12, 31, 23, 59)), None);
        assert_eq!(s.next_after(at(2199, 12, 31, 23, 59)), None);
        assert_eq!(s.last_at_or_before(at(2300, 1, 1, 0, 0)), Some(at(2199, 12, 31, 23, 59)));
        assert_eq!(s.nominal_period(), Duration::minutes(1));
        assert_eq!(s.next_after(DateTime::<Utc>::MAX_UTC), None);
        assert_eq!(s.last_at_or_before(DateTime::<Utc>::MIN_UTC), None);
        // A valid cron that never fires in its years: None, and cheaply.
        let s = parse("cron(0 0 29 2 ? 2023)");
        assert_eq!(s.next_after(at(1970, 1, 1, 0, 0)), None);
        assert_eq!(s.window_containing(at(2023, 6, 1, 0, 0)), None);
        assert_eq!(s.nominal_period(), whole_span());
    }

    #[test]
    fn fires_at_matches_search() {
        let s = match parse("cron(5,35 1-3 1/10 JAN,JUL ? *)") {
            Schedule::Cron(c) => c,
            other => panic!("{other:?}"),
        };
        assert!(s.fires_at(at(2024, 7, 21, 3, 35)));
        assert!(!s.fires_at(at(2024, 7, 21, 3, 36)));
        assert!(!s.fires_at(at(2024, 7, 21, 3, 35) + Duration::seconds(1)));
        assert!(!s.fires_at(at(2024, 8, 1, 1, 5)));
        assert_eq!(s.next_after(at(2024, 1, 31, 3, 35)), Some(at(2024, 7, 1, 1, 5)));
        assert_eq!(s.field(CronField::DayOfMonth), "1/10");
    }

    #[test]
    fn rate_windows_are_epoch_aligned() {
        let s = parse("rate(1 hour)");
        assert_eq!(
            s.window_containing(at(2024, 3, 10, 10, 30)),
            Some(Window { start: at(2024, 3, 10, 10, 0), end: at(2024, 3, 10, 11, 0) })
        );
        assert_eq!(s.next_after(at(2024, 3, 10, 10, 0)), Some(at(2024, 3, 10, 11, 0)));
        assert_eq!(s.last_at_or_before(at(2024, 3, 10, 10, 0)), Some(at(2024, 3, 10, 10, 0)));
        // 1970-01-01 was a Thursday, so weekly rate windows start on Thursdays.
        let w = parse("rate(7 days)").window_containing(at(2024, 3, 10, 10, 30)).unwrap();
        assert_eq!(w, Window { start: at(2024, 3, 7, 0, 0), end: at(2024, 3, 14, 0, 0) });
        let w = parse("rate(90 minutes)").window_containing(at(1970, 1, 1, 2, 0)).unwrap();
        assert_eq!(w, Window { start: at(1970, 1, 1, 1, 30), end: at(1970, 1, 1, 3, 0) });
        // Before the epoch too.
        let w = parse("rate(1 day)").window_containing(at(1969, 12, 31, 12, 0)).unwrap();
        assert_eq!(w, Window { start: at(1969, 12, 31, 0, 0), end: at(1970, 1, 1, 0, 0) });
        match parse("rate(12 hours)") {
            Schedule::Rate { every, value, unit } => {
                assert_eq!((every, value, unit), (Duration::hours(12), 12, RateUnit::Hours))
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(parse("rate(12 hours)").nominal_period(), Duration::hours(12));
    }
}
