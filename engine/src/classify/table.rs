//! A worker's flow table: fixed capacity, allocated once, buckets of
//! [`WAYS`] slots; each flow may live in either of two buckets chosen by
//! its symmetric hash (two-choice hashing: a table fills to ~90 % before a
//! bucket pair overflows, where one choice loses flows at half load). Keys
//! live apart from the flows' data, a bucket of keys in one cache line, so
//! a lookup reads two lines of keys, then the one line of its flow.
//!
//! A new flow takes a free slot of its buckets; when both are full it
//! replaces the flow idle longest if that one has been idle at least
//! [`EVICT_IDLE_NS`] (eviction under pressure, counted); otherwise the new
//! flow is not tracked (counted) rather than thrash live flows. Idle flows
//! are aged out by [`FlowTable::sweep`] a few slots per poll.

use patronus_classify::{AppName, Class};

use super::key::FlowKey;

/// Slots per bucket (a cache line of keys).
pub const WAYS: usize = 4;
/// A flow this long without a packet may be evicted for a new one.
pub const EVICT_IDLE_NS: u64 = 1_000_000_000;
/// No classification slot.
pub const NO_SLOT: u32 = u32::MAX;

/// How a flow's class was decided.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum FlowMethod {
    /// Still being classified.
    #[default]
    Pending,
    Signature,
    Ml,
    /// Neither a confident signature nor a model (or no slot to classify
    /// it in): its class is what the signatures said, often `unknown`.
    None,
}

impl FlowMethod {
    pub fn label(self) -> &'static str {
        match self {
            FlowMethod::Pending => "pending",
            FlowMethod::Signature => "signature",
            FlowMethod::Ml => "ml",
            FlowMethod::None => "none",
        }
    }
}

/// One flow (both directions): what every packet touches, in one cache
/// line (the application name, read only at the verdict and when listing,
/// lives apart: [`FlowTable::name`]).
#[derive(Clone, Copy, Debug)]
#[repr(align(64))]
pub struct Flow {
    /// The key's `a` end sent the first packet.
    pub client_is_a: bool,
    pub tcp: bool,
    /// It found no classification slot free; it takes one on a later
    /// packet if one is free before its payload must go uninspected.
    pub starved: bool,
    /// A FIN or RST went by.
    pub closing: bool,
    pub first_ns: u64,
    pub last_ns: u64,
    /// [from the client, from the server].
    pub packets: [u64; 2],
    pub bytes: [u64; 2],
    pub class: Class,
    pub method: FlowMethod,
    pub confidence: f32,
    /// Its classification slot while it has one.
    pub slot: u32,
}

impl Default for Flow {
    fn default() -> Self {
        Flow {
            client_is_a: true,
            tcp: false,
            starved: false,
            closing: false,
            first_ns: 0,
            last_ns: 0,
            packets: [0; 2],
            bytes: [0; 2],
            class: Class::Unknown,
            method: FlowMethod::Pending,
            confidence: 0.0,
            slot: NO_SLOT,
        }
    }
}

/// What [`FlowTable::find_or_insert`] found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Entry {
    /// The flow at this index.
    Existing(usize),
    /// A new flow at this index (its data reset).
    New(usize),
    /// A new flow at this index, which held the returned flow before.
    Evicted(usize, Flow),
    /// No room: the packet's flow is not tracked.
    Full,
}

// `Flow` holds f32: compare what matters for the tests.
impl PartialEq for Flow {
    fn eq(&self, o: &Flow) -> bool {
        self.first_ns == o.first_ns && self.last_ns == o.last_ns && self.slot == o.slot
    }
}
impl Eq for Flow {}

/// The table.
/// One bucket of keys: a cache line.
#[derive(Clone, Copy, Debug, Default)]
#[repr(C, align(64))]
struct KeyBucket([FlowKey; WAYS]);

const _: () = assert!(std::mem::size_of::<KeyBucket>() == 64);

/// The two buckets of `hash` (maybe the same one).
#[inline]
fn buckets(hash: u32, mask: usize) -> (usize, usize) {
    let second = (u64::from(hash).wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 32) as usize;
    (hash as usize & mask, second & mask)
}

#[derive(Debug)]
pub struct FlowTable {
    keys: Box<[KeyBucket]>,
    flows: Box<[Flow]>,
    names: Box<[Option<AppName>]>,
    bucket_mask: usize,
    active: usize,
    sweep_at: usize,
}

impl FlowTable {
    /// A table of `slots` slots (a power of two, at least [`WAYS`]).
    pub fn new(slots: usize) -> FlowTable {
        let slots = slots.max(WAYS).next_power_of_two();
        FlowTable {
            // Huge pages: a lookup at random over megabytes would also
            // miss the TLB.
            keys: crate::nat::huge::huge_vec(slots / WAYS, KeyBucket::default()).into_boxed_slice(),
            flows: crate::nat::huge::huge_vec(slots, Flow::default()).into_boxed_slice(),
            names: vec![None; slots].into_boxed_slice(),
            bucket_mask: slots / WAYS - 1,
            active: 0,
            sweep_at: 0,
        }
    }

    pub fn capacity(&self) -> usize {
        self.flows.len()
    }

    /// Slot `i`'s key.
    #[inline]
    fn k(&self, i: usize) -> &FlowKey {
        &self.keys[i / WAYS].0[i % WAYS]
    }

    #[inline]
    fn k_mut(&mut self, i: usize) -> &mut FlowKey {
        &mut self.keys[i / WAYS].0[i % WAYS]
    }

    /// The slot holding `key` in its buckets.
    #[inline(always)]
    fn find(&self, key: &FlowKey, b1: usize, b2: usize) -> Option<usize> {
        for b in [b1, b2] {
            for (w, k) in self.keys[b].0.iter().enumerate() {
                if k == key {
                    return Some(b * WAYS + w);
                }
            }
        }
        None
    }

    /// Flows held.
    pub fn active(&self) -> usize {
        self.active
    }

    /// The flow of `key` (hash `hash`), inserting it if it is new.
    #[inline]
    pub fn find_or_insert(&mut self, key: &FlowKey, hash: u32, now: u64) -> Entry {
        let (b1, b2) = buckets(hash, self.bucket_mask);
        if let Some(i) = self.find(key, b1, b2) {
            return Entry::Existing(i);
        }
        // A free slot in the emptier bucket (ties: the first).
        let free = |t: &FlowTable, b: usize| t.keys[b].0.iter().filter(|k| k.is_empty()).count();
        let b = if free(self, b2) > free(self, b1) {
            b2
        } else {
            b1
        };
        if let Some(w) = self.keys[b].0.iter().position(FlowKey::is_empty) {
            let i = b * WAYS + w;
            *self.k_mut(i) = *key;
            self.flows[i] = Flow::default();
            self.names[i] = None;
            self.active += 1;
            return Entry::New(i);
        }
        let oldest = (0..WAYS)
            .flat_map(|w| [b1 * WAYS + w, b2 * WAYS + w])
            .min_by_key(|&i| self.flows[i].last_ns)
            .expect("buckets have slots");
        if now.saturating_sub(self.flows[oldest].last_ns) < EVICT_IDLE_NS {
            return Entry::Full;
        }
        let old = std::mem::take(&mut self.flows[oldest]);
        self.names[oldest] = None;
        *self.k_mut(oldest) = *key;
        Entry::Evicted(oldest, old)
    }

    /// The slot of `key`'s flow, if the table holds it.
    #[inline]
    pub fn lookup(&self, key: &FlowKey, hash: u32) -> Option<usize> {
        let (b1, b2) = buckets(hash, self.bucket_mask);
        self.find(key, b1, b2)
    }

    /// Hints the CPU to load the two buckets of keys of `hash`.
    #[inline]
    pub fn prefetch_bucket(&self, hash: u32) {
        let (b1, b2) = buckets(hash, self.bucket_mask);
        crate::nat::prefetch::prefetch(&self.keys[b1]);
        crate::nat::prefetch::prefetch(&self.keys[b2]);
    }

    /// Hints the CPU to load the flow of `key` if the table holds it
    /// (reads its buckets of keys, which [`FlowTable::prefetch_bucket`]
    /// should have brought in).
    #[inline]
    pub fn prefetch_flow(&self, key: &FlowKey, hash: u32) {
        let (b1, b2) = buckets(hash, self.bucket_mask);
        if let Some(i) = self.find(key, b1, b2) {
            crate::nat::prefetch::prefetch(&self.flows[i]);
        }
    }

    #[inline]
    pub fn flow(&self, i: usize) -> &Flow {
        &self.flows[i]
    }

    #[inline]
    pub fn flow_mut(&mut self, i: usize) -> &mut Flow {
        &mut self.flows[i]
    }

    /// The application name of the flow at `i`.
    pub fn name(&self, i: usize) -> Option<&AppName> {
        self.names[i].as_ref()
    }

    pub fn set_name(&mut self, i: usize, name: Option<AppName>) {
        self.names[i] = name;
    }

    /// The key at slot `i` (empty when the slot is free).
    pub fn key(&self, i: usize) -> &FlowKey {
        self.k(i)
    }

    /// Frees slot `i`, returning its flow.
    pub fn remove(&mut self, i: usize) -> Flow {
        debug_assert!(!self.k(i).is_empty());
        *self.k_mut(i) = FlowKey::default();
        self.active -= 1;
        std::mem::take(&mut self.flows[i])
    }

    /// Visits the next `budget` slots (round the table), handing each
    /// occupied one to `f`; `f` returns true to remove it.
    pub fn sweep(&mut self, budget: usize, mut f: impl FnMut(usize, &mut Flow) -> bool) {
        let n = self.flows.len();
        for _ in 0..budget.min(n) {
            let i = self.sweep_at;
            self.sweep_at = (i + 1) & (n - 1);
            if !self.k(i).is_empty() && f(i, &mut self.flows[i]) {
                *self.k_mut(i) = FlowKey::default();
                self.active -= 1;
                self.flows[i] = Flow::default();
            }
        }
    }
}

// What every packet touches is one cache line.
const _: () = assert!(std::mem::size_of::<Flow>() == 64);

#[cfg(test)]
mod tests {
    use super::*;

    fn key(n: u32) -> FlowKey {
        FlowKey::new(n, 1, 1000, 2, 6)
    }

    #[test]
    fn flows_are_found_again_and_full_buckets_evict_only_idle_flows() {
        let mut t = FlowTable::new(64);
        let h = 5; // every key in the same two buckets
        let (b1, b2) = buckets(h, t.bucket_mask);
        assert_ne!(b1, b2);
        let mut at = Vec::new();
        for n in 0..2 * WAYS as u32 {
            match t.find_or_insert(&key(n), h, 100) {
                Entry::New(i) => {
                    t.flow_mut(i).last_ns = 100 + u64::from(n);
                    at.push(i);
                }
                e => panic!("{e:?}"),
            }
        }
        // Both buckets took flows (the emptier one first).
        assert!(at.iter().any(|i| i / WAYS == b1) && at.iter().any(|i| i / WAYS == b2));
        assert_eq!(t.active(), 2 * WAYS);
        assert_eq!(t.find_or_insert(&key(3), h, 200), Entry::Existing(at[3]));
        // Both full, every flow recent: the new one is not tracked.
        assert_eq!(t.find_or_insert(&key(99), h, 200), Entry::Full);
        // Later, the flow idle longest (key 0) makes room.
        match t.find_or_insert(&key(99), h, 100 + EVICT_IDLE_NS) {
            Entry::Evicted(i, old) => {
                assert_eq!(i, at[0]);
                assert_eq!(old.last_ns, 100);
            }
            e => panic!("{e:?}"),
        }
        assert_eq!(t.active(), 2 * WAYS);
        assert!(matches!(
            t.find_or_insert(&key(0), h, 100 + EVICT_IDLE_NS),
            Entry::Evicted(..)
        ));
        // A hash with other buckets is untouched by all this.
        let other = (0..u32::MAX)
            .find(|&x| {
                let (c1, c2) = buckets(x, t.bucket_mask);
                ![b1, b2].contains(&c1) && ![b1, b2].contains(&c2)
            })
            .unwrap();
        assert!(matches!(t.find_or_insert(&key(7), other, 1), Entry::New(_)));
    }

    #[test]
    fn two_choices_hold_a_table_loaded_to_half_and_more() {
        // Hashes spread like real ones: none refused at half load (one
        // choice of 8-way buckets refuses ~1 % there), under 1 % at 3/4.
        for (pct, most) in [(50, 0), (75, (1 << 14) * 75 / 100 / 100)] {
            let mut t = FlowTable::new(1 << 14);
            let n = (1 << 14) * pct / 100;
            let full: usize = (0..n as u32)
                .filter(|&x| {
                    let k = key(x);
                    t.find_or_insert(&k, k.hash(), 0) == Entry::Full
                })
                .count();
            assert!(full <= most, "{pct} %: {full} of {n} refused");
        }
    }

    #[test]
    fn the_sweep_visits_every_slot_and_removes_what_it_is_told() {
        let mut t = FlowTable::new(64);
        for n in 0..20u32 {
            let _ = t.find_or_insert(&key(n), n.wrapping_mul(2654435761), 0);
        }
        assert_eq!(t.active(), 20);
        let mut seen = 0;
        t.sweep(64, |_, _| {
            seen += 1;
            seen % 2 == 0
        });
        assert_eq!(seen, 20);
        assert_eq!(t.active(), 10);
        let held = (0..t.capacity()).filter(|&i| !t.key(i).is_empty()).count();
        assert_eq!(held, 10);
    }
}
