//! Per-client rate limit of the public lookup (补贴查询): a token bucket per client address,
//! in memory. A client may make `burst` lookups at once, then one every `60 / per_minute`
//! seconds; beyond that it gets 429 with `Retry-After`.
//!
//! IPv6 clients are limited per /64 (one subscriber usually holds a whole /64, so limiting
//! single addresses would be trivial to evade). Buckets that have refilled completely carry no
//! information and are dropped when the table grows, so memory stays bounded by the number of
//! clients active within one refill period.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Tables larger than this are swept of full buckets on the next insert.
const SWEEP_AT: usize = 10_000;

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// A token bucket per client.
#[derive(Debug)]
pub struct RateLimiter {
    burst: f64,
    /// Tokens per second.
    rate: f64,
    buckets: Mutex<HashMap<IpAddr, Bucket>>,
}

impl RateLimiter {
    /// `burst` lookups at once, refilled at `per_minute` per minute. `per_minute == 0`
    /// disables the limit.
    pub fn new(burst: u32, per_minute: u32) -> RateLimiter {
        RateLimiter {
            burst: f64::from(burst.max(1)),
            rate: f64::from(per_minute) / 60.0,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// The key a client is limited under: the address, or its /64 for IPv6.
    fn key(ip: IpAddr) -> IpAddr {
        match ip {
            IpAddr::V4(_) => ip,
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => IpAddr::V4(v4),
                None => {
                    let s = v6.segments();
                    IpAddr::V6(std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
                }
            },
        }
    }

    /// Take one token for `ip` at `now`: `Ok(())`, or `Err(wait)` with how long until the
    /// next token.
    pub fn check(&self, ip: IpAddr, now: Instant) -> Result<(), Duration> {
        if self.rate <= 0.0 {
            return Ok(());
        }
        let key = Self::key(ip);
        // A poisoned lock only means another request panicked mid-update of a counter:
        // the table is still usable.
        let mut map = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() >= SWEEP_AT && !map.contains_key(&key) {
            let (burst, rate) = (self.burst, self.rate);
            map.retain(|_, b| {
                b.tokens + now.saturating_duration_since(b.at).as_secs_f64() * rate < burst
            });
        }
        let b = map.entry(key).or_insert(Bucket {
            tokens: self.burst,
            at: now,
        });
        let elapsed = now.saturating_duration_since(b.at).as_secs_f64();
        b.tokens = (b.tokens + elapsed * self.rate).min(self.burst);
        b.at = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - b.tokens) / self.rate))
        }
    }

    /// Clients currently tracked.
    pub fn tracked(&self) -> usize {
        self.buckets.lock().map(|m| m.len()).unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("test address")
    }

    #[test]
    fn burst_then_refill() {
        let l = RateLimiter::new(3, 60); // one per second after the burst
        let t0 = Instant::now();
        let a = ip("10.0.0.1");
        for _ in 0..3 {
            assert!(l.check(a, t0).is_ok());
        }
        let wait = l.check(a, t0).expect_err("fourth at once is refused");
        assert!(wait > Duration::from_millis(900) && wait <= Duration::from_secs(1));
        // another client is not affected
        assert!(l.check(ip("10.0.0.2"), t0).is_ok());
        // one second later one more token
        assert!(l.check(a, t0 + Duration::from_secs(1)).is_ok());
        assert!(l.check(a, t0 + Duration::from_secs(1)).is_err());
        // after a long pause, the burst again but never more
        let later = t0 + Duration::from_secs(3600);
        for _ in 0..3 {
            assert!(l.check(a, later).is_ok());
        }
        assert!(l.check(a, later).is_err());
    }

    #[test]
    fn ipv6_is_limited_per_64() {
        let l = RateLimiter::new(1, 1);
        let t0 = Instant::now();
        assert!(l.check(ip("2001:db8:1:2::1"), t0).is_ok());
        assert!(l.check(ip("2001:db8:1:2::ffff"), t0).is_err());
        assert!(l.check(ip("2001:db8:1:3::1"), t0).is_ok());
        // IPv4-mapped addresses share the IPv4 client's bucket
        assert!(l.check(ip("192.0.2.7"), t0).is_ok());
        assert!(l.check(ip("::ffff:192.0.2.7"), t0).is_err());
    }

    #[test]
    fn zero_rate_disables_and_full_buckets_are_swept() {
        let off = RateLimiter::new(1, 0);
        let t0 = Instant::now();
        for _ in 0..100 {
            assert!(off.check(ip("10.0.0.1"), t0).is_ok());
        }
        let l = RateLimiter::new(1, 60);
        for i in 0..SWEEP_AT as u32 {
            let a = IpAddr::V4(std::net::Ipv4Addr::from(i));
            assert!(l.check(a, t0).is_ok());
        }
        assert_eq!(l.tracked(), SWEEP_AT);
        // a minute later every bucket has refilled: the next new client sweeps them
        assert!(
            l.check(ip("10.9.9.9"), t0 + Duration::from_secs(60))
                .is_ok()
        );
        assert_eq!(l.tracked(), 1);
    }
}
