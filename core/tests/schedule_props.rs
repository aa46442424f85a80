//! Window invariants over random instants: windows contain their instant, are deterministic, and
//! tile time, for crons of every wildcard kind and for rates.

use backup_core::schedule::Schedule;
use chrono::{DateTime, Datelike, Duration, TimeZone, Utc};
use proptest::prelude::*;

const EXPRESSIONS: &[&str] = &[
    "cron(0 2 * * ? *)",
    "cron(0 9 ? * MON-FRI *)",
    "cron(0/15 * * * ? *)",
    "cron(*/7 3-5 * * ? *)",
    "cron(0 23 L * ? *)",
    "cron(0 0 LW * ? *)",
    "cron(30 4 15W * ? *)",
    "cron(0 0 1W * ? *)",
    "cron(0 0 31W * ? *)",
    "cron(0 6 ? * 3#2 *)",
    "cron(0 6 ? * THU#5 *)",
    "cron(15 10 ? * 6L *)",
    "cron(0 0 ? * L *)",
    "cron(0 0 1 1 ? *)",
    "cron(0 0 29 2 ? *)",
    "cron(5,35 1-3 1/10 JAN,JUL ? *)",
    "cron(0 12 1 */3 ? 1975/5)",
    "rate(1 minute)",
    "rate(90 minutes)",
    "rate(5 hours)",
    "rate(7 days)",
];

fn schedule() -> impl Strategy<Value = Schedule> {
    proptest::sample::select(EXPRESSIONS).prop_map(|s| s.parse::<Schedule>().expect("valid expression"))
}

/// Instants across 1970..2150, sub-second precision included.
fn instant() -> impl Strategy<Value = DateTime<Utc>> {
    let from = Utc.with_ymd_and_hms(1970, 1, 1, 0, 0, 0).unwrap().timestamp();
    let to = Utc.with_ymd_and_hms(2150, 1, 1, 0, 0, 0).unwrap().timestamp();
    (from..to, prop_oneof![Just(0u32), 0..1_000_000_000u32])
        .prop_map(|(secs, nanos)| DateTime::from_timestamp(secs, nanos).unwrap())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn windows_contain_tile_and_are_deterministic(s in schedule(), t in instant()) {
        let window = s.window_containing(t);
        // None only before the first fire (all these fire regularly up to 2199).
        prop_assert_eq!(window.is_none(), s.last_at_or_before(t).is_none(), "{} at {}", s, t);
        let Some(w) = window else { return Ok(()) };
        prop_assert!(w.start <= t && t < w.end, "{}: {:?} does not contain {}", s, w, t);
        prop_assert!(w.contains(t));
        prop_assert_eq!(s.window_containing(t), Some(w), "same instant, same window");
        prop_assert_eq!(s.window_containing(w.start), Some(w), "{}: start of {:?}", s, w);
        let last_instant = w.end - Duration::nanoseconds(1);
        prop_assert_eq!(s.window_containing(last_instant), Some(w), "{}: end of {:?}", s, w);
        let next = s.window_containing(w.end).expect("a window follows");
        prop_assert_eq!(next.start, w.end, "{}: windows tile", s);
        prop_assert_eq!(s.next_after(w.start), Some(w.end));
        prop_assert_eq!(s.next_after(t), Some(w.end));
        prop_assert_eq!(s.last_at_or_before(t), Some(w.start));
        // The nominal period samples a 28-year calendar cycle, which 2100 (not a leap year) breaks.
        prop_assert!(w.duration() <= s.nominal_period() || w.end.year() >= 2100,
            "{}: window {:?} longer than the nominal period {}", s, w, s.nominal_period());
    }

    /// Short windows, checked minute by minute: both ends fire, nothing in between does.
    #[test]
    fn no_fire_inside_a_window(s in schedule(), t in instant()) {
        let Schedule::Cron(cron) = &s else { return Ok(()) };
        let Some(w) = s.window_containing(t) else { return Ok(()) };
        prop_assert!(cron.fires_at(w.start) && cron.fires_at(w.end), "{}: {:?}", s, w);
        if w.duration() <= Duration::days(3) {
            let mut m = w.start + Duration::minutes(1);
            while m < w.end {
                prop_assert!(!cron.fires_at(m), "{}: {} fires inside {:?}", s, m, w);
                m += Duration::minutes(1);
            }
        }
    }

    #[test]
    fn fires_are_on_whole_minutes(s in schedule(), t in instant()) {
        if let Some(next) = s.next_after(t) {
            prop_assert!(next > t);
            prop_assert_eq!(next.timestamp() % 60, 0);
            prop_assert_eq!(next.timestamp_subsec_nanos(), 0);
        }
        if let Some(last) = s.last_at_or_before(t) {
            prop_assert!(last <= t);
            prop_assert_eq!(last.timestamp() % 60, 0);
        }
    }

    #[test]
    fn canonical_expression_round_trips(s in schedule()) {
        let again: Schedule = s.expression().parse().expect("canonical text parses");
        prop_assert_eq!(again, s);
    }
}
