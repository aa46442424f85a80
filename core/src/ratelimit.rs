//! Client-side rate limits per (account, region, action), as token buckets. AWS throttles per
//! account and region; staying under its limits client-side avoids burning retries on
//! RequestLimitExceeded. Limits apply per process: with N workers, configure 1/N of the account's
//! budget (DESIGN.md section 7 gives the account-wide figures).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;

/// Rate and burst of one bucket.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Limit {
    pub per_second: f64,
    pub burst: f64,
}

#[derive(Debug)]
struct Bucket {
    limit: Limit,
    tokens: f64,
    refilled: Instant,
}

/// Keyed token buckets. Keys are `(region, action)` strings such as `("us-east-1", "ec2:CreateSnapshot")`;
/// an action without a configured limit is not limited.
#[derive(Clone, Debug, Default)]
pub struct RateLimiter {
    limits: Arc<HashMap<String, Limit>>,
    buckets: Arc<Mutex<HashMap<(String, String), Bucket>>>,
}

impl RateLimiter {
    /// AWS's documented defaults: CreateSnapshot(s) 5/s burst 100 (EC2 API throttling), every RDS
    /// action 12/s (RDS API rate), scaled by `share` (this process's fraction of the account).
    pub fn aws_defaults(share: f64) -> Self {
        let share = share.clamp(0.001, 1.0);
        let mut limits = HashMap::new();
        for action in ["ec2:CreateSnapshot", "ec2:CreateSnapshots"] {
            limits.insert(action.to_owned(), Limit { per_second: 5.0 * share, burst: (100.0 * share).max(1.0) });
        }
        limits.insert("rds:*".to_owned(), Limit { per_second: 12.0 * share, burst: (12.0 * share).max(1.0) });
        Self::new(limits)
    }

    pub fn new(limits: HashMap<String, Limit>) -> Self {
        Self { limits: Arc::new(limits), buckets: Arc::default() }
    }

    fn limit_for(&self, action: &str) -> Option<(String, Limit)> {
        if let Some(limit) = self.limits.get(action) {
            return Some((action.to_owned(), *limit));
        }
        let service_wildcard = format!("{}:*", action.split(':').next().unwrap_or_default());
        self.limits.get(&service_wildcard).map(|limit| (service_wildcard, *limit))
    }

    /// Waits until one call of `action` in `region` is allowed.
    pub async fn acquire(&self, region: &str, action: &str) {
        let Some((bucket_key, limit)) = self.limit_for(action) else { return };
        loop {
            let wait = {
                let mut buckets = self.buckets.lock().expect("rate limiter poisoned");
                let now = Instant::now();
                let bucket = buckets.entry((region.to_owned(), bucket_key.clone())).or_insert(Bucket {
                    limit,
                    tokens: limit.burst,
                    refilled: now,
                });
                let elapsed = now.duration_since(bucket.refilled).as_secs_f64();
                bucket.tokens = (bucket.tokens + elapsed * bucket.limit.per_second).min(bucket.limit.burst);
                bucket.refilled = now;
                if bucket.tokens >= 1.0 {
                    bucket.tokens -= 1.0;
                    return;
                }
                Duration::from_secs_f64((1.0 - bucket.tokens) / bucket.limit.per_second)
            };
            tokio::time::sleep(wait).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn burst_then_steady_rate() {
        let limiter = RateLimiter::new(HashMap::from([(
            "ec2:CreateSnapshot".to_owned(),
            Limit { per_second: 5.0, burst: 10.0 },
        )]));
        let start = Instant::now();
        for _ in 0..10 {
            limiter.acquire("us-east-1", "ec2:CreateSnapshot").await;
        }
        assert!(start.elapsed() < Duration::from_millis(1), "the burst is immediate");
        for _ in 0..10 {
            limiter.acquire("us-east-1", "ec2:CreateSnapshot").await;
        }
        let elapsed = start.elapsed();
        assert!(
            elapsed >= Duration::from_millis(1990) && elapsed <= Duration::from_millis(2100),
            "10 more at 5/s take 2 s, took {elapsed:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn regions_and_actions_are_independent_and_wildcards_apply() {
        let limiter = RateLimiter::aws_defaults(1.0);
        let start = Instant::now();
        for _ in 0..12 {
            limiter.acquire("us-east-1", "rds:CreateDBSnapshot").await;
        }
        // The RDS budget is shared by every RDS action in the region...
        limiter.acquire("us-east-1", "rds:CopyDBSnapshot").await;
        assert!(start.elapsed() >= Duration::from_millis(80));
        // ...but not across regions, and unlimited actions never wait.
        let other = Instant::now();
        limiter.acquire("us-west-2", "rds:CreateDBSnapshot").await;
        limiter.acquire("us-east-1", "ec2:DescribeVolumes").await;
        assert_eq!(other.elapsed(), Duration::ZERO);
    }
}
