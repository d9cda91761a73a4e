//! Per-caller request quotas in fixed windows (upstream's model: N requests per interval per
//! device or user); a caller over quota gets 429 with `Retry-After`.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Counts requests per key.
pub struct RateLimiter {
    quota: u32,
    interval: Duration,
    windows: Mutex<HashMap<String, (Instant, u32)>>,
}

impl RateLimiter {
    /// `quota` requests per `interval` per key; a quota of 0 allows everything.
    pub fn new(quota: u32, interval: Duration) -> Self {
        RateLimiter {
            quota,
            interval,
            windows: Mutex::new(HashMap::new()),
        }
    }

    /// Ok, or the seconds until `key` may try again.
    pub fn check(&self, key: &str) -> Result<(), u64> {
        self.check_at(key, Instant::now())
    }

    fn check_at(&self, key: &str, now: Instant) -> Result<(), u64> {
        if self.quota == 0 {
            return Ok(());
        }
        let mut w = self.windows.lock().unwrap_or_else(|p| p.into_inner());
        if w.len() > 1_000_000 {
            let interval = self.interval;
            w.retain(|_, (start, _)| now.duration_since(*start) < interval);
        }
        let entry = w.entry(key.to_string()).or_insert((now, 0));
        if now.duration_since(entry.0) >= self.interval {
            *entry = (now, 0);
        }
        if entry.1 >= self.quota {
            let left = self.interval.saturating_sub(now.duration_since(entry.0));
            return Err(left.as_secs().max(1));
        }
        entry.1 += 1;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quota_per_key_and_window() {
        let r = RateLimiter::new(2, Duration::from_secs(10));
        let t = Instant::now();
        assert!(r.check_at("a", t).is_ok());
        assert!(r.check_at("a", t).is_ok());
        assert_eq!(r.check_at("a", t + Duration::from_secs(3)), Err(7));
        assert!(r.check_at("b", t).is_ok());
        assert!(r.check_at("a", t + Duration::from_secs(10)).is_ok());
        assert!(RateLimiter::new(0, Duration::from_secs(1))
            .check("x")
            .is_ok());
    }
}
