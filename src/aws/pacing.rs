//! Pacing: AWS's documented request rates for the operations whose rate a fleet run can
//! reach, per account and Region (how AWS counts them). One table; a call over its rate
//! waits here, before it takes any concurrency permit, instead of being throttled by AWS
//! and retried: a fleet run is then not a retry storm. Calls held back are counted
//! ([`Pacing::held`]) and shown in the benchmark's figures.
//!
//! Sources: the Security Hub API Reference ("rate limits": BatchEnableStandards 1 request
//! per second, burst 1; UpdateStandardsControl 1 per second, burst 5; every other
//! operation 10 per second, burst 30).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// `service:Operation`, requests per second, burst.
pub const RATES: [(&str, f64, f64); 4] = [
    ("securityhub:BatchEnableStandards", 1.0, 1.0),
    ("securityhub:UpdateStandardsControl", 1.0, 5.0),
    ("securityhub:BatchUpdateStandardsControlAssociations", 10.0, 30.0),
    ("securityhub:EnableSecurityHub", 10.0, 30.0),
];

struct Bucket {
    /// Tokens left; below zero, calls are queued behind the bucket.
    tokens: f64,
    at: Instant,
}

/// The token buckets of the fleet, by account, Region and operation.
#[derive(Default)]
pub struct Pacing {
    buckets: Mutex<HashMap<(String, String, &'static str), Bucket>>,
    held: AtomicU64,
    held_ms: AtomicU64,
}

impl Pacing {
    /// How long one call of `op` in `region` must wait to keep to AWS's rate (zero when
    /// `op` is not paced or the bucket has room); the call is counted as made then.
    pub fn reserve(&self, account: &str, region: &str, op: &'static str) -> Duration {
        let Some((_, rate, burst)) = RATES.iter().find(|(o, _, _)| *o == op) else {
            return Duration::ZERO;
        };
        let now = Instant::now();
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        let b =
            buckets.entry((account.to_string(), region.to_string(), op)).or_insert(Bucket { tokens: *burst, at: now });
        b.tokens = (b.tokens + now.duration_since(b.at).as_secs_f64() * rate).min(*burst);
        b.at = now;
        b.tokens -= 1.0;
        if b.tokens >= 0.0 {
            return Duration::ZERO;
        }
        let wait = Duration::from_secs_f64(-b.tokens / rate);
        self.held.fetch_add(1, Ordering::Relaxed);
        self.held_ms.fetch_add(wait.as_millis() as u64, Ordering::Relaxed);
        wait
    }

    /// Calls held back so far, and their total wait in milliseconds.
    pub fn held(&self) -> (u64, u64) {
        (self.held.load(Ordering::Relaxed), self.held_ms.load(Ordering::Relaxed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calls_over_the_documented_rate_wait_and_others_do_not() {
        let p = Pacing::default();
        let op = "securityhub:BatchEnableStandards";
        assert_eq!(p.reserve("a", "us-east-1", op), Duration::ZERO, "the burst of one");
        let second = p.reserve("a", "us-east-1", op);
        assert!(second > Duration::from_millis(900) && second <= Duration::from_secs(1), "{second:?}");
        let third = p.reserve("a", "us-east-1", op);
        assert!(third > Duration::from_millis(1900), "queued behind the second: {third:?}");
        // Another Region, and an operation not in the table, have their own room.
        assert_eq!(p.reserve("a", "eu-west-1", op), Duration::ZERO);
        assert_eq!(p.reserve("a", "us-east-1", "securityhub:GetEnabledStandards"), Duration::ZERO);
        // UpdateStandardsControl: five at once, then one per second.
        let five: Vec<Duration> =
            (0..6).map(|_| p.reserve("a", "us-east-1", "securityhub:UpdateStandardsControl")).collect();
        assert!(five[..5].iter().all(|d| d.is_zero()) && five[5] > Duration::from_millis(900), "{five:?}");
        // Another account has its own.
        assert_eq!(p.reserve("b", "us-east-1", op), Duration::ZERO);
        assert_eq!(p.held().0, 3);
    }
}
