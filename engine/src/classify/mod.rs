//! Application classification in the workers: a flow table, signature DPI
//! and batched model inference.
//!
//! How the parts fit: every forwarded TCP/UDP packet is parsed by [`key`]
//! and finds its flow in the worker's [`table::FlowTable`] (both
//! directions share a key; the ports' symmetric hash and the NAT handoff
//! bring both to the same worker). A new flow takes a classification slot
//! from [`slots::Slots`]; while it has one, its packets feed the
//! dissectors (`patronus_classify::Dpi`) and the model's features. A
//! confident signature decides at once; otherwise, once the features are
//! complete (or the flow goes quiet), the flow is queued in
//! [`infer::InferQueue`] and scored with others in one batch. The slot is
//! then freed; the flow keeps its class, application name, method and
//! confidence until it ages out. Nothing here allocates per packet.

pub mod infer;
pub mod key;
pub mod list;
pub mod slots;
pub mod table;

use std::sync::atomic::AtomicU64;
use std::sync::Arc;

use patronus_classify::{Class, Dir, Dpi, Verdict, L4};
use patronus_ml::classifier::{decide, trusted, Decision, Method};
use patronus_ml::features::PKTS;
use patronus_shm::classify_counters::{CLASSIFY_CLASS_COUNTERS, CLASSIFY_COUNTERS};

use crate::config::ClassifySection;
use infer::{InferQueue, Model};
use slots::{SlotState, Slots};
use table::{Entry, FlowMethod, FlowTable, NO_SLOT};

/// Counters the classifier exports (`classify.*`, see
/// `patronus_shm::classify_counters`): the general ones, then per class.
pub const CLASSIFY_COUNTER_COUNT: usize =
    CLASSIFY_COUNTERS.len() + Class::ALL.len() * CLASSIFY_CLASS_COUNTERS.len();

const C_CREATED: usize = 0;
const C_EXPIRED: usize = 1;
const C_EVICTED: usize = 2;
const C_UNTRACKED: usize = 3;
const C_SLOTS_EXHAUSTED: usize = 4;
const C_BATCHES: usize = 5;
const C_INFERRED: usize = 6;
const C_ACTIVE: usize = 7;
const C_MODEL: usize = 8;
const C_CLASS: usize = CLASSIFY_COUNTERS.len();

// The order above is the contract's.
const _: () = {
    assert!(CLASSIFY_COUNTERS.len() == 9);
    assert!(Class::ALL.len() == patronus_shm::flow_query::FLOW_CLASSES.len());
};

/// The signatures' verdict when they have none.
const UNKNOWN: Verdict = Verdict {
    class: Class::Unknown,
    name: None,
    confidence: 0.0,
};

/// Flows above which a batch's flows are prefetched: below it their keys
/// and counters (two cache lines each) stay in the L2 cache and a prefetch
/// pass would only parse every packet twice.
const PREFETCH_ABOVE: usize = 8192;

/// Slots the sweep visits per poll.
const SWEEP_BUDGET: usize = 64;

/// The classifier's settings (from `[classify]`).
#[derive(Clone, Copy, Debug)]
pub struct Params {
    pub flows: usize,
    pub dpi_slots: usize,
    pub batch: usize,
    pub batch_wait_ns: u64,
    pub decide_after_ns: u64,
    pub idle_tcp_ns: u64,
    pub idle_tcp_closed_ns: u64,
    pub idle_udp_ns: u64,
}

impl Params {
    pub fn from_section(c: &ClassifySection) -> Params {
        let s = |v: u32| u64::from(v) * 1_000_000_000;
        Params {
            flows: c.flows as usize,
            dpi_slots: c.dpi_slots as usize,
            batch: c.batch as usize,
            batch_wait_ns: u64::from(c.batch_wait_ms) * 1_000_000,
            decide_after_ns: u64::from(c.decide_after_ms) * 1_000_000,
            idle_tcp_ns: s(c.idle_timeouts.tcp),
            idle_tcp_closed_ns: s(c.idle_timeouts.tcp_closed),
            idle_udp_ns: s(c.idle_timeouts.udp),
        }
    }
}

/// Index of a class in `Class::ALL`.
fn class_index(c: Class) -> usize {
    Class::ALL
        .iter()
        .position(|x| *x == c)
        .unwrap_or(Class::ALL.len() - 1)
}

/// One worker's classifier.
#[derive(Debug)]
pub struct Classifier {
    p: Params,
    table: FlowTable,
    slots: Slots,
    dpi: Dpi,
    queue: InferQueue,
    counts: [u64; CLASSIFY_COUNTER_COUNT],
}

impl Classifier {
    /// Allocates everything (the table, the slot pool, the batch buffers).
    pub fn new(p: Params, model: Option<Arc<Model>>) -> Classifier {
        let mut queue = InferQueue::new(p.batch);
        queue.set_model(model);
        Classifier {
            table: FlowTable::new(p.flows),
            slots: Slots::new(p.dpi_slots),
            dpi: Dpi::new(),
            queue,
            p,
            counts: [0; CLASSIFY_COUNTER_COUNT],
        }
    }

    /// Switches to another model (None: signatures only), which came with
    /// model push `push` (0: the configuration's). Flows already queued
    /// are scored by the new one.
    pub fn set_model(&mut self, model: Option<Arc<Model>>, push: u64) {
        self.counts[C_MODEL] = push;
        self.queue.set_model(model);
    }

    /// The model running (None: signatures only).
    pub fn model(&self) -> Option<&Arc<Model>> {
        self.queue.model()
    }

    pub fn table(&self) -> &FlowTable {
        &self.table
    }

    /// Whether prefetching a batch's flows pays (the flows do not all fit
    /// in the cache).
    #[inline]
    pub fn wants_prefetch(&self) -> bool {
        self.table.active() > PREFETCH_ABOVE
    }

    /// First of a batch's two prefetch passes: the bucket of keys of the
    /// packet's flow. Returns its key and hash for the second
    /// ([`Classifier::prefetch_flow`]); a default key for a packet that
    /// is not tracked.
    #[inline]
    pub fn prefetch_bucket(&self, ip: &[u8]) -> (key::FlowKey, u32) {
        match key::parse(ip) {
            Some(p) => {
                let h = p.key.hash();
                self.table.prefetch_bucket(h);
                (p.key, h)
            }
            None => (key::FlowKey::default(), 0),
        }
    }

    /// Second prefetch pass: the flow itself, if it exists.
    #[inline]
    pub fn prefetch_flow(&self, k: &key::FlowKey, hash: u32) {
        if !k.is_empty() {
            self.table.prefetch_flow(k, hash);
        }
    }

    /// What the classifier knows of the packet's flow, for the stages
    /// after it (path choice by application, policy): the flow (class,
    /// method, confidence, counters) and its application name. None when
    /// the flow is not tracked.
    #[inline]
    pub fn flow_of(
        &self,
        ip: &[u8],
    ) -> Option<(&table::Flow, Option<&patronus_classify::AppName>)> {
        let pk = key::parse(ip)?;
        let i = self.table.lookup(&pk.key, pk.key.hash())?;
        Some((self.table.flow(i), self.table.name(i)))
    }

    /// Takes one forwarded IPv4 packet (`ip` from its first header byte).
    #[inline]
    pub fn observe(&mut self, ip: &[u8], now: u64) {
        let Some(pk) = key::parse(ip) else {
            return;
        };
        let i = match self.table.find_or_insert(&pk.key, pk.key.hash(), now) {
            Entry::Existing(i) => i,
            Entry::New(i) => {
                self.start_flow(i, &pk, now);
                i
            }
            Entry::Evicted(i, old) => {
                self.counts[C_EVICTED] += 1;
                if old.slot != NO_SLOT {
                    self.slots.release(old.slot);
                }
                self.start_flow(i, &pk, now);
                i
            }
            Entry::Full => {
                self.counts[C_UNTRACKED] += 1;
                return;
            }
        };
        let f = self.table.flow_mut(i);
        let dir = if pk.from_a == f.client_is_a {
            Dir::Orig
        } else {
            Dir::Reply
        };
        let d = usize::from(dir == Dir::Reply);
        f.packets[d] += 1;
        f.bytes[d] += u64::from(pk.ip_len);
        f.last_ns = now;
        if pk.tcp_flags & 0x05 != 0 {
            f.closing = true;
        }
        let (slot, method, class) = (f.slot, f.method, f.class);
        if method != FlowMethod::Pending {
            let c = C_CLASS + class_index(class) * 3;
            self.counts[c + 1] += 1;
            self.counts[c + 2] += u64::from(pk.ip_len);
            if slot != NO_SLOT {
                // Watched after its verdict (FTP control).
                let s = self.slots.get_mut(slot);
                self.dpi.inspect(&mut s.dpi, &pk.view(dir), now);
                if !s.dpi.wants_packets() {
                    self.table.flow_mut(i).slot = NO_SLOT;
                    self.slots.release(slot);
                }
            }
            return;
        }
        let slot = if slot != NO_SLOT {
            slot
        } else {
            // Starved at its first packet: a slot freed since serves as
            // long as no payload went by uninspected (a TCP handshake, say).
            let f = self.table.flow(i);
            if !f.starved {
                return;
            }
            let server_port = if f.client_is_a {
                pk.key.pb()
            } else {
                pk.key.pa()
            };
            let client_port = if f.client_is_a {
                pk.key.pa()
            } else {
                pk.key.pb()
            };
            match self.slots.take(i as u32, pk.l4, server_port, client_port) {
                Some(s) => {
                    let f = self.table.flow_mut(i);
                    f.slot = s;
                    f.starved = false;
                    s
                }
                None => {
                    if !pk.payload.is_empty() {
                        self.table.flow_mut(i).starved = false;
                        self.finish(i, decide(UNKNOWN, 0, None));
                    }
                    return;
                }
            }
        };
        let s = self.slots.get_mut(slot);
        if s.state != SlotState::Active {
            return;
        }
        s.features
            .add(dir, pk.ip_len, pk.payload, now, pk.tcp_flags);
        if !s.dpi_done {
            if let Some(v) = self.dpi.inspect(&mut s.dpi, &pk.view(dir), now) {
                if trusted(&v) {
                    let packets = s.dpi.packets();
                    self.finish(i, decide(v, packets, None));
                    return;
                }
                s.dpi_done = true;
            }
        }
        let s = self.slots.get(slot);
        let first = self.table.flow(i).first_ns;
        if s.features.packets() >= PKTS
            && (s.dpi_done || now.saturating_sub(first) >= self.p.decide_after_ns)
        {
            self.queue_for_model(i, now);
        }
    }

    fn start_flow(&mut self, i: usize, pk: &key::Parsed<'_>, now: u64) {
        self.counts[C_CREATED] += 1;
        let f = self.table.flow_mut(i);
        f.client_is_a = pk.from_a;
        f.tcp = pk.l4 == L4::Tcp;
        f.first_ns = now;
        f.last_ns = now;
        match self.slots.take(i as u32, pk.l4, pk.dport, pk.sport) {
            Some(s) => f.slot = s,
            None => {
                // Pending without a slot; see `observe`.
                self.counts[C_SLOTS_EXHAUSTED] += 1;
                f.starved = true;
            }
        }
    }

    /// Records flow `i`'s decision; frees its slot unless its dissector
    /// keeps watching it.
    fn finish(&mut self, i: usize, d: Decision) {
        record(&mut self.table, i, &mut self.counts, &d);
        let slot = self.table.flow(i).slot;
        if slot == NO_SLOT {
            return;
        }
        let s = self.slots.get_mut(slot);
        if s.dpi.wants_packets() && d.method == Method::Signature {
            s.state = SlotState::Watching;
        } else {
            self.table.flow_mut(i).slot = NO_SLOT;
            self.slots.release(slot);
        }
    }

    /// The signatures' word on slot `slot` so far (`unknown` if none).
    fn signature(&self, slot: u32) -> (Verdict, u16) {
        let s = self.slots.get(slot);
        (s.dpi.verdict().unwrap_or(UNKNOWN), s.dpi.packets())
    }

    /// Hands flow `i` to the model (or decides it now without one).
    fn queue_for_model(&mut self, i: usize, now: u64) {
        let slot = self.table.flow(i).slot;
        if self.queue.model().is_none() {
            let (v, n) = self.signature(slot);
            self.finish(i, decide(v, n, None));
            return;
        }
        let s = self.slots.get_mut(slot);
        s.state = SlotState::Queued;
        let g = s.generation;
        if self.queue.push(slot, g, now) {
            // Overflowing: score now rather than grow.
            while self.queue.len() >= self.p.batch {
                self.run_batch();
            }
        }
    }

    /// Scores one batch off the queue and frees the scored flows' slots.
    fn run_batch(&mut self) {
        if self.queue.model().is_none() {
            // The model went away while flows waited: decide them without.
            while let Some((slot, g)) = self.queue.pop() {
                let s = self.slots.get(slot);
                if s.generation == g && s.state == SlotState::Queued {
                    let flow = s.flow as usize;
                    let (v, n) = self.signature(slot);
                    self.finish(flow, decide(v, n, None));
                }
            }
            return;
        }
        let Classifier {
            queue,
            slots,
            table,
            counts,
            ..
        } = self;
        let n = queue.run(slots, |slot, classes, p| {
            let s = slots.get(slot);
            let v = s.dpi.verdict().unwrap_or(UNKNOWN);
            let d = decide(v, s.dpi.packets(), Some((classes, p)));
            record(table, s.flow as usize, counts, &d);
        });
        if n == 0 {
            return;
        }
        counts[C_BATCHES] += 1;
        counts[C_INFERRED] += n as u64;
        for k in 0..n {
            let slot = queue.row_slot(k);
            let i = slots.get(slot).flow as usize;
            table.flow_mut(i).slot = NO_SLOT;
            slots.release(slot);
        }
    }

    /// Per poll: scores the queue when its batch is full or has waited
    /// long enough, hands quiet undecided flows to the model, ages idle
    /// flows out (a few slots per call).
    pub fn poll(&mut self, now: u64) {
        // Each round takes a batch off the queue: bounded.
        while self.queue.due(now, self.p.batch_wait_ns) {
            self.run_batch();
        }
        let p = self.p;
        let mut quiet = [0usize; SWEEP_BUDGET];
        let mut nquiet = 0;
        let (mut expired, slots) = (0u64, &mut self.slots);
        self.table.sweep(SWEEP_BUDGET, |i, f| {
            let idle = now.saturating_sub(f.last_ns);
            if idle >= idle_timeout(&p, f) {
                if f.slot != NO_SLOT {
                    slots.release(f.slot);
                }
                expired += 1;
                return true;
            }
            if f.method == FlowMethod::Pending
                && f.slot != NO_SLOT
                && slots.get(f.slot).state == SlotState::Active
                && idle >= p.decide_after_ns
            {
                quiet[nquiet] = i;
                nquiet += 1;
            }
            false
        });
        self.counts[C_EXPIRED] += expired;
        for &i in &quiet[..nquiet] {
            self.queue_for_model(i, now);
        }
    }

    /// Hands every flow still being classified to the model (or decides
    /// it without one) and scores them: the end of a capture, the end of a
    /// benchmark.
    pub fn settle(&mut self, now: u64) {
        for i in 0..self.table.capacity() {
            let f = self.table.flow(i);
            if !self.table.key(i).is_empty() && f.starved && f.method == FlowMethod::Pending {
                self.table.flow_mut(i).starved = false;
                self.finish(i, decide(UNKNOWN, 0, None));
                continue;
            }
            let f = self.table.flow(i);
            if !self.table.key(i).is_empty()
                && f.method == FlowMethod::Pending
                && f.slot != NO_SLOT
                && self.slots.get(f.slot).state == SlotState::Active
            {
                self.queue_for_model(i, now);
            }
        }
        while !self.queue.is_empty() {
            self.run_batch();
        }
    }

    /// Copies the counters into the worker's shared array.
    pub fn publish(&mut self, out: &[AtomicU64]) {
        self.counts[C_ACTIVE] = self.table.active() as u64;
        for (o, v) in out.iter().zip(self.counts.iter()) {
            o.store(*v, std::sync::atomic::Ordering::Relaxed);
        }
    }

    /// The counters (tests).
    pub fn counts(&self) -> &[u64; CLASSIFY_COUNTER_COUNT] {
        &self.counts
    }
}

/// Idle time after which flow `f` ends.
fn idle_timeout(p: &Params, f: &table::Flow) -> u64 {
    match (f.tcp, f.closing) {
        (true, true) => p.idle_tcp_closed_ns,
        (true, false) => p.idle_tcp_ns,
        (false, _) => p.idle_udp_ns,
    }
}

/// Writes decision `d` into flow `i` and counts it for its class (with
/// the packets and bytes the flow carried until now).
fn record(t: &mut FlowTable, i: usize, counts: &mut [u64; CLASSIFY_COUNTER_COUNT], d: &Decision) {
    t.set_name(i, d.name);
    let f = t.flow_mut(i);
    f.class = d.class;
    f.confidence = d.confidence;
    f.method = match d.method {
        Method::Signature => FlowMethod::Signature,
        Method::Ml => FlowMethod::Ml,
        Method::None => FlowMethod::None,
    };
    let c = C_CLASS + class_index(d.class) * 3;
    counts[c] += 1;
    counts[c + 1] += f.packets[0] + f.packets[1];
    counts[c + 2] += f.bytes[0] + f.bytes[1];
}

#[cfg(test)]
mod tests;
