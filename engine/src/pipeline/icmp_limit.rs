//! Token bucket that rate-limits the ICMP errors a worker sends (RFC 1812
//! 4.3.2.8), driven by the caller's clock.

/// Tokens refill at `rate` per second up to `burst`.
#[derive(Clone, Debug)]
pub struct TokenBucket {
    rate_per_sec: u64,
    burst: u64,
    /// Tokens scaled by 1e9 so refills need no division per call.
    tokens_ns: u64,
    last: u64,
}

impl TokenBucket {
    /// A full bucket.
    pub fn new(rate_per_sec: u32, burst: u32) -> Self {
        TokenBucket {
            rate_per_sec: rate_per_sec as u64,
            burst: burst.max(1) as u64,
            tokens_ns: burst.max(1) as u64 * 1_000_000_000,
            last: 0,
        }
    }

    /// Takes a token at time `now` (ns) if one is there.
    pub fn take(&mut self, now: u64) -> bool {
        let elapsed = now.saturating_sub(self.last);
        self.last = now;
        let cap = self.burst * 1_000_000_000;
        self.tokens_ns = (self.tokens_ns + elapsed.saturating_mul(self.rate_per_sec)).min(cap);
        if self.tokens_ns >= 1_000_000_000 {
            self.tokens_ns -= 1_000_000_000;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burst_then_rate() {
        let mut b = TokenBucket::new(10, 3);
        assert!(b.take(0) && b.take(0) && b.take(0));
        assert!(!b.take(0));
        assert!(!b.take(50_000_000)); // half a token
        assert!(b.take(100_000_000));
        assert!(!b.take(100_000_000));
        // A long idle refills only up to the burst.
        let t = 100_000_000_000;
        assert!(b.take(t) && b.take(t) && b.take(t));
        assert!(!b.take(t));
    }
}
