//! Retry delays per error class, with full jitter (`backon`). A retried task is handed back to SQS
//! with its visibility set to the delay, so the schedule must be computable from the attempt
//! number alone: no worker keeps retry state in memory.

use backon::{BackoffBuilder, ExponentialBuilder};
use std::time::Duration;

use crate::error::RetryClass;

/// The backoff schedule of one retry class.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Schedule {
    pub min: Duration,
    pub max: Duration,
    pub factor: f32,
}

impl Schedule {
    pub fn for_class(class: RetryClass) -> Self {
        match class {
            // Throttling: back off hard, the limit is shared by the whole fleet.
            RetryClass::Throttled => {
                Schedule { min: Duration::from_secs(5), max: Duration::from_secs(300), factor: 2.0 }
            }
            RetryClass::Transient => {
                Schedule { min: Duration::from_secs(2), max: Duration::from_secs(120), factor: 2.0 }
            }
            RetryClass::Timeout => Schedule { min: Duration::from_secs(5), max: Duration::from_secs(180), factor: 2.0 },
            // A busy resource frees up on its own time scale (a snapshot in progress takes minutes).
            RetryClass::Busy => Schedule { min: Duration::from_secs(15), max: Duration::from_secs(600), factor: 2.0 },
            // Capacity frees up as other work in flight finishes (copies take minutes to hours).
            // Only used when a capacity wait is retried rather than parked (the claim failed).
            RetryClass::Capacity => {
                Schedule { min: Duration::from_secs(30), max: Duration::from_secs(600), factor: 2.0 }
            }
        }
    }

    /// Delay before retry number `attempt` (1-based: the delay after the first failure is
    /// `delay(1)`), jittered, never below `min / 2` nor above `max`.
    pub fn delay(&self, attempt: u32) -> Duration {
        let attempt = attempt.max(1) as usize;
        let base = ExponentialBuilder::default()
            .with_min_delay(self.min)
            .with_max_delay(self.max)
            .with_factor(self.factor)
            .with_max_times(attempt)
            .build()
            .nth(attempt - 1)
            .unwrap_or(self.max);
        // Jitter in [base/2, base]: spreads a thundering herd without ever retrying instantly.
        let half = base / 2;
        let jitter = rand::random::<f64>();
        (half + half.mul_f64(jitter)).clamp(self.min / 2, self.max)
    }
}

/// Delay before the next attempt of a task that failed with `class`, honouring a lower bound.
pub fn retry_delay(class: RetryClass, attempt: u32, at_least: Option<Duration>) -> Duration {
    let delay = Schedule::for_class(class).delay(attempt);
    at_least.map_or(delay, |floor| delay.max(floor))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_and_stay_bounded() {
        for class in
            [RetryClass::Throttled, RetryClass::Transient, RetryClass::Timeout, RetryClass::Busy, RetryClass::Capacity]
        {
            let schedule = Schedule::for_class(class);
            let mut previous_upper = Duration::ZERO;
            for attempt in 1..=12 {
                let delay = schedule.delay(attempt);
                assert!(delay >= schedule.min / 2, "{class:?} attempt {attempt}: {delay:?} below floor");
                assert!(delay <= schedule.max, "{class:?} attempt {attempt}: {delay:?} above cap");
                // The un-jittered upper bound never shrinks.
                let upper = (schedule.min.mul_f32(schedule.factor.powi(attempt as i32 - 1))).min(schedule.max);
                assert!(upper >= previous_upper);
                assert!(delay <= upper.max(schedule.min));
                previous_upper = upper;
            }
        }
    }

    #[test]
    fn jitter_spreads_retries() {
        let schedule = Schedule::for_class(RetryClass::Transient);
        let delays: std::collections::BTreeSet<_> = (0..50).map(|_| schedule.delay(4)).collect();
        assert!(delays.len() > 10, "jitter should spread delays, got {delays:?}");
    }

    #[test]
    fn floor_is_honoured() {
        let delay = retry_delay(RetryClass::Transient, 1, Some(Duration::from_secs(30)));
        assert!(delay >= Duration::from_secs(30));
    }
}
