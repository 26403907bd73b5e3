//! Token bucket that paces the generator. It reads no clock: the caller
//! passes the time (nanoseconds since any fixed origin), so tests can drive
//! it with a fake clock.

/// Credit units per packet: credit grows by `rate_pps` per nanosecond, so one
/// packet costs one second's worth of nanoseconds.
const UNITS_PER_PKT: u128 = 1_000_000_000;

/// Paces packets at `rate_pps`, holding at most `burst` packets of credit.
#[derive(Debug)]
pub(super) struct TokenBucket {
    rate_pps: u128,
    credit: u128,
    cap: u128,
    last_ns: Option<u64>,
}

impl TokenBucket {
    /// A bucket for `rate_pps` (> 0). It starts empty; the burst is 10 ms of
    /// traffic (at least one packet), enough to ride out a short pause of the
    /// polling worker without letting a long one turn into a flood.
    pub(super) fn new(rate_pps: u64) -> Self {
        let burst = (rate_pps / 100).max(1);
        TokenBucket {
            rate_pps: u128::from(rate_pps),
            credit: 0,
            // Whole packets stay within the burst, but the fraction towards
            // the next one is kept, or slow rates would lose credit at the cap.
            cap: u128::from(burst) * UNITS_PER_PKT + (UNITS_PER_PKT - 1),
            last_ns: None,
        }
    }

    /// Adds the credit earned since the last call; returns whole packets
    /// available now.
    pub(super) fn refill(&mut self, now_ns: u64) -> u64 {
        if let Some(last) = self.last_ns {
            let dt = u128::from(now_ns.saturating_sub(last));
            self.credit = (self.credit + dt * self.rate_pps).min(self.cap);
        }
        // Time never runs backwards for the bucket.
        self.last_ns = Some(self.last_ns.map_or(now_ns, |l| l.max(now_ns)));
        (self.credit / UNITS_PER_PKT) as u64
    }

    /// Spends the credit of `n` packets (at most what `refill` returned).
    pub(super) fn consume(&mut self, n: u64) {
        self.credit = self.credit.saturating_sub(u128::from(n) * UNITS_PER_PKT);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paces_at_the_rate_with_a_fake_clock() {
        let mut b = TokenBucket::new(1000); // 1 packet per ms, burst 10
        assert_eq!(b.refill(0), 0);
        assert_eq!(b.refill(500_000), 0);
        assert_eq!(b.refill(1_000_000), 1);
        b.consume(1);
        // 1000 steps of 1 ms: exactly 1000 packets.
        let mut sent = 0;
        for ms in 2..=1001u64 {
            let n = b.refill(ms * 1_000_000);
            b.consume(n);
            sent += n;
        }
        assert_eq!(sent, 1000);
    }

    #[test]
    fn burst_is_capped_after_a_pause() {
        let mut b = TokenBucket::new(1000);
        b.refill(0);
        assert_eq!(b.refill(10_000_000_000), 10);
    }

    #[test]
    fn backwards_clock_earns_nothing() {
        let mut b = TokenBucket::new(1000);
        b.refill(5_000_000);
        assert_eq!(b.refill(1_000_000), 0);
        assert_eq!(b.refill(5_000_000), 0);
        assert_eq!(b.refill(6_000_000), 1);
    }

    #[test]
    fn fractional_credit_accumulates() {
        let mut b = TokenBucket::new(3); // one packet per 333.3 ms
        b.refill(0);
        let mut sent = 0;
        for step in 1..=30u64 {
            let n = b.refill(step * 100_000_000);
            b.consume(n);
            sent += n;
        }
        assert_eq!(sent, 9); // 3 s at 3 pps
    }
}
