//! `Log2Histogram`: 64 power-of-two buckets of `AtomicU64` (e.g. latency in
//! ns), written by one worker, read by anyone; and its snapshot.

use std::sync::atomic::{AtomicU64, Ordering};

/// Buckets of a histogram.
pub const HISTOGRAM_BUCKETS: usize = 64;

/// Bucket of `value`: 0 for 0, else `i` with `2^(i-1) <= value < 2^i`, the
/// last bucket also taking everything from `2^62` up.
pub fn bucket_of(value: u64) -> usize {
    ((64 - value.leading_zeros()) as usize).min(HISTOGRAM_BUCKETS - 1)
}

/// Largest value that falls in bucket `i` (its inclusive upper bound).
pub fn bucket_upper(i: usize) -> u64 {
    match i {
        0 => 0,
        i if i >= HISTOGRAM_BUCKETS - 1 => u64::MAX,
        i => (1u64 << i) - 1,
    }
}

/// A histogram living in shared memory (or anywhere). Single writer: the
/// owning worker records with load + store (no locked instruction); any
/// number of readers load. 64-bit aligned atomics never tear.
#[repr(C, align(64))]
#[derive(Debug)]
pub struct Log2Histogram {
    pub buckets: [AtomicU64; HISTOGRAM_BUCKETS],
    /// Values recorded.
    pub count: AtomicU64,
    /// Sum of the values (wrapping).
    pub sum: AtomicU64,
    /// Largest value recorded.
    pub max: AtomicU64,
    pub reserved: [AtomicU64; 5],
}

const _: () = assert!(std::mem::size_of::<Log2Histogram>() == 72 * 8);

impl Default for Log2Histogram {
    fn default() -> Self {
        Log2Histogram {
            buckets: std::array::from_fn(|_| AtomicU64::new(0)),
            count: AtomicU64::new(0),
            sum: AtomicU64::new(0),
            max: AtomicU64::new(0),
            reserved: std::array::from_fn(|_| AtomicU64::new(0)),
        }
    }
}

fn bump(a: &AtomicU64, n: u64) {
    a.store(a.load(Ordering::Relaxed).wrapping_add(n), Ordering::Relaxed);
}

impl Log2Histogram {
    /// Records one value. Call from the single writer only.
    pub fn record(&self, value: u64) {
        bump(&self.buckets[bucket_of(value)], 1);
        bump(&self.sum, value);
        if value > self.max.load(Ordering::Relaxed) {
            self.max.store(value, Ordering::Relaxed);
        }
        bump(&self.count, 1);
    }

    /// Overwrites every field with `snap` (a copy of a histogram kept
    /// elsewhere). Single writer only. Buckets go first and `count` last, so
    /// a reader sees counts that only grow when the source's do.
    pub fn store_snapshot(&self, snap: &HistogramSnapshot) {
        for (a, &b) in self.buckets.iter().zip(&snap.buckets) {
            a.store(b, Ordering::Relaxed);
        }
        self.sum.store(snap.sum, Ordering::Relaxed);
        self.max.store(snap.max, Ordering::Relaxed);
        self.count.store(snap.count, Ordering::Release);
    }

    /// A copy of the current values (each field read once; fields may be
    /// from slightly different instants, never torn).
    pub fn snapshot(&self) -> HistogramSnapshot {
        let mut buckets = [0u64; HISTOGRAM_BUCKETS];
        for (b, a) in buckets.iter_mut().zip(&self.buckets) {
            *b = a.load(Ordering::Relaxed);
        }
        HistogramSnapshot {
            buckets,
            count: self.count.load(Ordering::Relaxed),
            sum: self.sum.load(Ordering::Relaxed),
            max: self.max.load(Ordering::Relaxed),
        }
    }
}

/// Values of a histogram at one moment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HistogramSnapshot {
    pub buckets: [u64; HISTOGRAM_BUCKETS],
    pub count: u64,
    pub sum: u64,
    pub max: u64,
}

impl Default for HistogramSnapshot {
    fn default() -> Self {
        HistogramSnapshot {
            buckets: [0; HISTOGRAM_BUCKETS],
            count: 0,
            sum: 0,
            max: 0,
        }
    }
}

impl HistogramSnapshot {
    /// Adds another snapshot (e.g. to total the workers).
    pub fn merge(&mut self, other: &HistogramSnapshot) {
        for (a, b) in self.buckets.iter_mut().zip(&other.buckets) {
            *a = a.wrapping_add(*b);
        }
        self.count = self.count.wrapping_add(other.count);
        self.sum = self.sum.wrapping_add(other.sum);
        self.max = self.max.max(other.max);
    }

    /// Upper bound of the bucket holding quantile `q` (0.0..=1.0), capped
    /// at `max`; 0 when empty.
    pub fn quantile_upper(&self, q: f64) -> u64 {
        let total: u64 = self.buckets.iter().sum();
        if total == 0 {
            return 0;
        }
        let rank = ((q.clamp(0.0, 1.0) * total as f64).ceil() as u64).max(1);
        let mut seen = 0u64;
        for (i, &n) in self.buckets.iter().enumerate() {
            seen += n;
            if seen >= rank {
                return bucket_upper(i).min(self.max);
            }
        }
        self.max
    }
}
