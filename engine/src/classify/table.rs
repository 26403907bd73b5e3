//! A worker's flow table: fixed capacity, allocated once, buckets of
//! [`WAYS`] slots addressed by the symmetric flow hash. Keys live apart
//! from the flows' data so a lookup reads one bucket of keys (two cache
//! lines), not the flows.
//!
//! A new flow takes a free slot of its bucket; in a full bucket it
//! replaces the flow idle longest if that one has been idle at least
//! [`EVICT_IDLE_NS`] (eviction under pressure, counted); otherwise the new
//! flow is not tracked (counted) rather than thrash live flows. Idle flows
//! are aged out by [`FlowTable::sweep`] a few slots per poll.

use patronus_classify::{AppName, Class};

use super::key::FlowKey;

/// Slots per bucket.
pub const WAYS: usize = 8;
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

/// One flow (both directions).
#[derive(Clone, Copy, Debug)]
pub struct Flow {
    /// The key's `a` end sent the first packet.
    pub client_is_a: bool,
    pub tcp: bool,
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
    pub name: Option<AppName>,
    /// Its classification slot while it has one.
    pub slot: u32,
}

impl Default for Flow {
    fn default() -> Self {
        Flow {
            client_is_a: true,
            tcp: false,
            closing: false,
            first_ns: 0,
            last_ns: 0,
            packets: [0; 2],
            bytes: [0; 2],
            class: Class::Unknown,
            method: FlowMethod::Pending,
            confidence: 0.0,
            name: None,
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
#[derive(Debug)]
pub struct FlowTable {
    keys: Box<[FlowKey]>,
    flows: Box<[Flow]>,
    bucket_mask: usize,
    active: usize,
    sweep_at: usize,
}

impl FlowTable {
    /// A table of `slots` slots (a power of two, at least [`WAYS`]).
    pub fn new(slots: usize) -> FlowTable {
        let slots = slots.max(WAYS).next_power_of_two();
        FlowTable {
            keys: vec![FlowKey::default(); slots].into_boxed_slice(),
            flows: vec![Flow::default(); slots].into_boxed_slice(),
            bucket_mask: slots / WAYS - 1,
            active: 0,
            sweep_at: 0,
        }
    }

    pub fn capacity(&self) -> usize {
        self.keys.len()
    }

    /// Flows held.
    pub fn active(&self) -> usize {
        self.active
    }

    /// The flow of `key` (hash `hash`), inserting it if it is new.
    #[inline]
    pub fn find_or_insert(&mut self, key: &FlowKey, hash: u32, now: u64) -> Entry {
        let base = (hash as usize & self.bucket_mask) * WAYS;
        let mut free = None;
        for i in base..base + WAYS {
            let k = &self.keys[i];
            if k == key {
                return Entry::Existing(i);
            }
            if free.is_none() && k.is_empty() {
                free = Some(i);
            }
        }
        if let Some(i) = free {
            self.keys[i] = *key;
            self.flows[i] = Flow::default();
            self.active += 1;
            return Entry::New(i);
        }
        let oldest = (base..base + WAYS)
            .min_by_key(|&i| self.flows[i].last_ns)
            .expect("a bucket has slots");
        if now.saturating_sub(self.flows[oldest].last_ns) < EVICT_IDLE_NS {
            return Entry::Full;
        }
        let old = std::mem::take(&mut self.flows[oldest]);
        self.keys[oldest] = *key;
        Entry::Evicted(oldest, old)
    }

    #[inline]
    pub fn flow(&self, i: usize) -> &Flow {
        &self.flows[i]
    }

    #[inline]
    pub fn flow_mut(&mut self, i: usize) -> &mut Flow {
        &mut self.flows[i]
    }

    /// The key at slot `i` (empty when the slot is free).
    pub fn key(&self, i: usize) -> &FlowKey {
        &self.keys[i]
    }

    /// Frees slot `i`, returning its flow.
    pub fn remove(&mut self, i: usize) -> Flow {
        debug_assert!(!self.keys[i].is_empty());
        self.keys[i] = FlowKey::default();
        self.active -= 1;
        std::mem::take(&mut self.flows[i])
    }

    /// Visits the next `budget` slots (round the table), handing each
    /// occupied one to `f`; `f` returns true to remove it.
    pub fn sweep(&mut self, budget: usize, mut f: impl FnMut(usize, &mut Flow) -> bool) {
        let n = self.keys.len();
        for _ in 0..budget.min(n) {
            let i = self.sweep_at;
            self.sweep_at = (i + 1) & (n - 1);
            if !self.keys[i].is_empty() && f(i, &mut self.flows[i]) {
                self.keys[i] = FlowKey::default();
                self.active -= 1;
                self.flows[i] = Flow::default();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(n: u32) -> FlowKey {
        FlowKey {
            a: n,
            b: 1000,
            pa: 1,
            pb: 2,
            proto: 6,
        }
    }

    #[test]
    fn flows_are_found_again_and_a_full_bucket_evicts_only_idle_flows() {
        let mut t = FlowTable::new(64);
        let h = 5; // every key in one bucket
        let mut at = Vec::new();
        for n in 0..WAYS as u32 {
            match t.find_or_insert(&key(n), h, 100) {
                Entry::New(i) => {
                    t.flow_mut(i).last_ns = 100 + u64::from(n);
                    at.push(i);
                }
                e => panic!("{e:?}"),
            }
        }
        assert_eq!(t.active(), WAYS);
        assert_eq!(t.find_or_insert(&key(3), h, 200), Entry::Existing(at[3]));
        // Bucket full, every flow recent: the new one is not tracked.
        assert_eq!(t.find_or_insert(&key(99), h, 200), Entry::Full);
        // Later, the flow idle longest (key 0) makes room.
        match t.find_or_insert(&key(99), h, 100 + EVICT_IDLE_NS) {
            Entry::Evicted(i, old) => {
                assert_eq!(i, at[0]);
                assert_eq!(old.last_ns, 100);
            }
            e => panic!("{e:?}"),
        }
        assert_eq!(t.active(), WAYS);
        assert!(matches!(
            t.find_or_insert(&key(0), h, 100 + EVICT_IDLE_NS),
            Entry::Evicted(..)
        ));
        // Another bucket is untouched by all this.
        assert!(matches!(t.find_or_insert(&key(7), 6, 1), Entry::New(_)));
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
