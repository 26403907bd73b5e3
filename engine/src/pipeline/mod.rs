//! The forwarding pipeline of one worker.
//!
//! A received batch first goes through [`fast_path`]: plain forwarded IPv4
//! (untagged, to our MAC, no options, one next hop, TTL > 1, within the MTU)
//! is checked, looked up, rewritten and queued for TX in two passes. The
//! packets it sets aside walk the full stages together (VPP style); each
//! stage handles the whole batch and sets a [`Disposition`] per packet:
//! [`ethernet`] (L2, VLAN, ARP in [`arp`]) → [`ipv4_input`] (header checks)
//! → [`ipv4_lookup`] (LPM a batch at a time, TTL, ECMP) → [`dispatch`]
//! (drop counting, local delivery in [`local`], next-hop resolution and
//! L2 rewrite in [`rewrite`], per-port TX batches). ICMP errors are built in
//! [`icmp_error`] and rate-limited.
//!
//! IPv6 frames are marked by [`ethernet`] and pass the IPv4 stages by;
//! dispatch hands each to [`ipv6_input`] (checks, LPM, hop limit, MTU),
//! [`ipv6_local`] (ND, echo, punt) and [`nd6`] (resolution); the fast path
//! never takes them.
//!
//! [`Pipeline`] owns everything a worker touches: its pool, its queue of each
//! port, its neighbor table, counters and scratch space. Nothing here locks
//! or allocates after [`Pipeline::new`].

mod arp;
mod classify_stage;
mod dispatch;
mod ethernet;
mod fast_path;
mod fast_plain;
pub mod flow_hash;
mod fragment;
pub mod handoff;
mod icmp_error;
pub mod icmp_limit;
mod icmpv6_error;
pub mod iface;
pub mod iface6;
mod ipv4_input;
mod ipv4_lookup;
mod ipv6_input;
mod ipv6_local;
mod lb_stage;
mod local;
mod nat_stage;
mod nd6;
mod punt_stage;
mod rewrite;
mod wan_stage;
mod wg_stage;

use crate::config::{NeighborConfig, PortConfig};
use std::sync::Arc;

use crossbeam_queue::ArrayQueue;

use crate::buffer::{Batch, Packet, PacketPool, BATCH_SIZE};
use crate::config::{parse_mac, EngineConfig};
use crate::counters::{bump, DropReason, DropTally, WorkerCounters};
use crate::fib::Fib;
use crate::neighbor::{
    ArpTimers, NeighborEvent, NeighborTable, NeighborUpdate, NeighborUpdate6, PendingQueue,
};
use crate::ports::{LinkInfo, Port};
pub use handoff::Handoff;
use icmp_limit::TokenBucket;
use iface::Interfaces;
use nat_stage::NatState;

/// Sessions NAT examines for expiry per poll (bounds the pause).
const NAT_EXPIRE_BUDGET: usize = 64;
/// How often timers run (ns).
const HOUSEKEEPING_INTERVAL_NS: u64 = 10_000_000;
/// Neighbor-table slots per worker.
const NEIGHBOR_SLOTS: usize = 4096;

/// Queues that carry learnt neighbors between workers.
#[derive(Debug, Clone)]
pub struct NeighborSync {
    /// Where other workers post to us.
    pub inbox: Arc<ArrayQueue<NeighborUpdate>>,
    /// The other workers' inboxes.
    pub peers: Vec<Arc<ArrayQueue<NeighborUpdate>>>,
    /// The same for IPv6 neighbors.
    pub inbox6: Arc<ArrayQueue<NeighborUpdate6>>,
    pub peers6: Vec<Arc<ArrayQueue<NeighborUpdate6>>>,
}

impl NeighborSync {
    /// One connected set of queues per worker.
    pub fn mesh(workers: usize, depth: usize) -> Vec<NeighborSync> {
        let inboxes: Vec<_> = (0..workers)
            .map(|_| Arc::new(ArrayQueue::new(depth)))
            .collect();
        let inboxes6: Vec<_> = (0..workers)
            .map(|_| Arc::new(ArrayQueue::new(depth)))
            .collect();
        (0..workers)
            .map(|w| NeighborSync {
                inbox: inboxes[w].clone(),
                peers: inboxes
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| *i != w)
                    .map(|(_, q)| q.clone())
                    .collect(),
                inbox6: inboxes6[w].clone(),
                peers6: inboxes6
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| *i != w)
                    .map(|(_, q)| q.clone())
                    .collect(),
            })
            .collect()
    }
}

/// A neighbor table holding the configured permanent entries of the
/// interfaces in `ifaces`.
fn static_neighbors(
    ports: &[PortConfig],
    neighbors: &[NeighborConfig],
    ifaces: &Interfaces,
    timers: ArpTimers,
) -> NeighborTable {
    let mut neigh = NeighborTable::new(NEIGHBOR_SLOTS, timers);
    for n in neighbors {
        let Some(port) = ports.iter().position(|p| p.name == n.port) else {
            continue;
        };
        let ip: std::net::Ipv4Addr = n.address.parse().expect("validated");
        let mac = parse_mac(&n.mac).expect("validated");
        if let Some(i) = ifaces.lookup(port as u16, n.vlan.unwrap_or(0)) {
            neigh.add_permanent(i, u32::from(ip), mac);
        }
    }
    neigh
}

/// One worker's forwarding state.
pub struct Pipeline {
    pool: PacketPool,
    ports: Vec<Box<dyn Port>>,
    links: Vec<LinkInfo>,
    ifaces: Interfaces,
    fib: Arc<Fib>,
    /// What the interface state is rebuilt from when a table comes with
    /// other interfaces (pushed by the control process).
    port_cfgs: Vec<PortConfig>,
    static_neighbors: Vec<NeighborConfig>,
    arp_timers: ArpTimers,
    neigh: NeighborTable,
    pending: PendingQueue,
    sync: NeighborSync,
    icmp_limit: TokenBucket,
    tx: Vec<Batch>,
    counters: Arc<WorkerCounters>,
    tally: DropTally,
    /// Per-batch scratch: destination addresses and LPM results.
    dst: Box<[u32; BATCH_SIZE]>,
    nh: Box<[u32; BATCH_SIZE]>,
    /// Per-batch scratch of the fast path: what pass 1 decided for packet
    /// `i` (`fast_path::LANE_*`).
    lane: Box<[u8; BATCH_SIZE]>,
    /// Per-batch scratch: NAT keys prefetched for packet `i`.
    nat_keys: Box<[crate::nat::Prefetched; BATCH_SIZE]>,
    /// Packets the fast path set aside for the full stages (None only while
    /// `process` holds it).
    slow: Option<Batch>,
    /// Tests: skip the fast path (every packet takes the full stages), to
    /// compare the two.
    #[cfg(test)]
    staged_only: bool,
    /// Tests: the two-pass fast path even for a plain router, to compare it
    /// with the one-pass form.
    #[cfg(test)]
    two_pass_only: bool,
    last_housekeeping: u64,
    /// The last next hop resolved in this batch: (interface, address, MAC).
    /// Consecutive packets mostly share a next hop; valid within one batch.
    adj_cache: Option<rewrite::Adjacency>,
    /// IPv4 identification of packets we originate.
    ip_ident: u16,
    /// NAT44, when configured.
    nat: Option<NatState>,
    /// Rings to and from the other workers (None with one worker).
    handoff: Option<Handoff>,
    /// WireGuard tunnels (`[[wireguard]]`), this worker's view.
    wg: Vec<wg_stage::WgState>,
    /// (this worker, workers): who owns which peer.
    wg_worker: (usize, usize),
    /// Where this worker writes its tunnels' counters (the plan's array).
    wg_counters: Option<Arc<[std::sync::atomic::AtomicU64]>>,
    /// Decrypted inner packets waiting for the stages, and a spare batch
    /// (None only while in use).
    wg_inner: Batch,
    wg_inner_spare: Option<Batch>,
    wg_last_tick: u64,
    /// Unix time (ns) at engine clock 0, for exported handshake times.
    wg_unix_origin: u64,
    /// Flow table and classification (`[classify]`).
    classify: Option<crate::classify::Classifier>,
    /// Per-batch scratch: the flow key and hash prefetched for packet `i`.
    cls_keys: Box<[(crate::classify::key::FlowKey, u32); BATCH_SIZE]>,
    /// L4 load balancer (`[lb]` or pushed VIPs).
    lb: Option<crate::lb::Balancer>,
    /// Per-batch scratch: the pin-index hash prefetched for packet `i`.
    lb_keys: Box<[u32; BATCH_SIZE]>,
    /// Punt path to the kernel's TAPs (`[punt]`).
    punt: Option<punt_stage::PuntState>,
    /// IPv6: interfaces, FIB, ND cache and held packets.
    v6: ipv6_input::Ipv6State,
    /// WAN paths and steering (`[wan]`), on the worker running them.
    wan: Option<Box<wan_stage::WanState>>,
}

impl std::fmt::Debug for Pipeline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pipeline")
            .field("ports", &self.ports.len())
            .field("ifaces", &self.ifaces.len())
            .finish()
    }
}

impl Pipeline {
    /// Builds a worker's pipeline over its opened port queues.
    pub fn new(
        cfg: &EngineConfig,
        fib: Arc<Fib>,
        ports: Vec<Box<dyn Port>>,
        pool: PacketPool,
        sync: NeighborSync,
        counters: Arc<WorkerCounters>,
    ) -> Self {
        let links: Vec<LinkInfo> = ports.iter().map(|p| p.link()).collect();
        let ifaces = Interfaces::build_from(&cfg.ports, fib.interfaces(), &links);
        let arp_timers = ArpTimers::from_config(&cfg.arp);
        let neigh = static_neighbors(&cfg.ports, &cfg.neighbors, &ifaces, arp_timers);
        let v6 = ipv6_input::Ipv6State::new(cfg, &links);
        Pipeline {
            v6,
            port_cfgs: cfg.ports.clone(),
            static_neighbors: cfg.neighbors.clone(),
            arp_timers,
            tx: (0..ports.len()).map(|_| Batch::new()).collect(),
            pool,
            links,
            ifaces,
            fib,
            neigh,
            pending: PendingQueue::new(cfg.arp.queue_len),
            sync,
            icmp_limit: TokenBucket::new(cfg.icmp.errors_per_sec, cfg.icmp.burst),
            counters,
            tally: DropTally::default(),
            dst: Box::new([0; BATCH_SIZE]),
            nh: Box::new([0; BATCH_SIZE]),
            lane: Box::new([fast_path::LANE_SLOW; BATCH_SIZE]),
            nat_keys: Box::new([crate::nat::Prefetched::default(); BATCH_SIZE]),
            slow: Some(Batch::new()),
            #[cfg(test)]
            staged_only: false,
            #[cfg(test)]
            two_pass_only: false,
            last_housekeeping: 0,
            adj_cache: None,
            ip_ident: 1,
            nat: None,
            handoff: None,
            wg: Vec::new(),
            wg_worker: (0, 1),
            wg_counters: None,
            wg_inner: Batch::new(),
            wg_inner_spare: Some(Batch::new()),
            wg_last_tick: 0,
            wg_unix_origin: 0,
            classify: None,
            cls_keys: Box::new([(Default::default(), 0); BATCH_SIZE]),
            lb: None,
            lb_keys: Box::new([0; BATCH_SIZE]),
            punt: None,
            wan: None,
            ports,
        }
    }

    /// Polls every port once: receive a burst, run it through the stages,
    /// transmit. Returns the packets received. `rx` is the worker's reusable
    /// batch; `now` is the engine clock in nanoseconds.
    pub fn poll(&mut self, rx: &mut Batch, now: u64) -> usize {
        let mut total = 0;
        for port in 0..self.ports.len() {
            let n = self.ports[port].rx_burst(&mut self.pool, rx);
            if n == 0 {
                continue;
            }
            total += n;
            let bytes: u64 = rx.packets().iter().map(|p| p.len() as u64).sum();
            let pc = &self.counters.ports[port];
            bump(&pc.rx_packets, n as u64);
            bump(&pc.rx_bytes, bytes);
            self.process(rx, port as u16, now);
        }
        total += self.drain_handoff(rx, now);
        self.punt_poll(now);
        // Tunnel packets the engine built outside a batch (timers, errors).
        self.wg_run_inner(now);
        if let Some(h) = self.handoff.as_mut() {
            h.notify();
        }
        if let Some(st) = self.nat.as_mut() {
            st.nat.expire(now, NAT_EXPIRE_BUDGET);
        }
        self.lb_expire(now);
        self.wg_tick(now);
        self.wan_tick(now);
        self.flush_tx();
        // After the bursts left: a batch of inference waits for no packet.
        if let Some(c) = self.classify.as_mut() {
            c.poll(now);
        }
        self.drain_neighbor_updates(now);
        if now.wrapping_sub(self.last_housekeeping) >= HOUSEKEEPING_INTERVAL_NS {
            self.housekeeping(now);
        }
        self.tally.publish(&self.counters);
        total
    }

    /// Runs one batch received on `port` through the fast path, then what
    /// it set aside through every stage, and hands each packet on.
    pub fn process(&mut self, batch: &mut Batch, port: u16, now: u64) {
        self.adj_cache = None;
        let mut slow = self.slow.take().unwrap_or_default();
        #[cfg(test)]
        if self.staged_only {
            for p in batch.packets_mut() {
                *p.meta_mut() = crate::buffer::PacketMeta {
                    rx_port: port,
                    ..Default::default()
                };
            }
            std::mem::swap(batch, &mut slow);
        }
        let plain = self.plain_router();
        #[cfg(test)]
        let plain = plain && !self.two_pass_only;
        if plain {
            self.fast_path_plain(batch, port, &mut slow, now);
        } else {
            self.fast_path(batch, port, &mut slow, now);
        }
        self.run_stages(&mut slow, now);
        self.slow = Some(slow);
    }

    /// Runs frames another worker handed over (received on `port`) through
    /// every stage.
    fn process_handed(&mut self, batch: &mut Batch, port: u16, now: u64) {
        self.adj_cache = None;
        for p in batch.packets_mut() {
            *p.meta_mut() = crate::buffer::PacketMeta {
                rx_port: port,
                handed_off: true,
                ..Default::default()
            };
        }
        self.run_stages(batch, now);
    }

    /// The full stages, over packets with fresh metadata.
    fn run_stages(&mut self, batch: &mut Batch, now: u64) {
        if batch.is_empty() {
            return;
        }
        self.ethernet_input(batch, now);
        self.ipv4_input(batch);
        self.lb_pre_lookup(batch, now);
        self.nat_pre_lookup(batch, now);
        self.ipv4_lookup(batch, now);
        self.dispatch(batch, now);
        self.wg_run_inner(now);
    }

    /// Connects this worker to the others (NAT handoff).
    pub fn set_handoff(&mut self, h: Handoff) {
        self.handoff = Some(h);
    }

    /// True when other workers have handed frames to this one.
    pub fn handoff_pending(&self) -> bool {
        self.handoff.as_ref().is_some_and(Handoff::pending)
    }

    /// The eventfd other workers write when they hand frames to this one
    /// while it sleeps, and the flag saying it sleeps.
    pub fn handoff_waker(&self) -> Option<&handoff::Waker> {
        self.handoff.as_ref().map(Handoff::waker)
    }

    /// Switches to a new FIB generation (between two batches). When it
    /// comes with other interfaces, the interface table is rebuilt and the
    /// neighbor table starts over (its entries are per interface index):
    /// static entries are re-added, learnt ones are learnt again, packets
    /// held for resolution are dropped and counted. Interface changes are
    /// rare administrative acts; this allocates, once, between batches.
    pub fn set_fib(&mut self, fib: Arc<Fib>) {
        if !Arc::ptr_eq(fib.interfaces(), self.fib.interfaces()) {
            self.ifaces = Interfaces::build_from(&self.port_cfgs, fib.interfaces(), &self.links);
            self.neigh = static_neighbors(
                &self.port_cfgs,
                &self.static_neighbors,
                &self.ifaces,
                self.arp_timers,
            );
            let held = self.pending.clear();
            for _ in 0..held {
                self.tally.add(DropReason::ArpUnresolved);
            }
            self.tally.publish(&self.counters);
        }
        self.fib = fib;
        self.nat_resolve_outside();
        self.adj_cache = None;
    }

    /// Sends whatever the TX batches hold.
    pub fn flush_tx(&mut self) {
        for port in 0..self.tx.len() {
            self.flush_port(port);
        }
    }

    #[inline(never)]
    fn flush_port(&mut self, port: usize) {
        let batch = &mut self.tx[port];
        let n = batch.len();
        if n == 0 {
            return;
        }
        let done = self.ports[port].tx_burst(batch);
        let sent = done.packets.min(n);
        let pc = &self.counters.ports[port];
        bump(&pc.tx_packets, sent as u64);
        bump(&pc.tx_bytes, done.bytes);
        if sent < n {
            bump(&pc.tx_errors, (n - sent) as u64);
            for _ in sent..n {
                self.tally.add(DropReason::TxFull);
            }
        }
    }

    /// Queues a finished frame for transmission on `port`.
    #[inline(always)]
    fn enqueue_tx(&mut self, port: u16, p: Packet) {
        let port = port as usize;
        if let Err(p) = self.tx[port].push(p) {
            self.flush_port(port);
            // The batch is empty now; this cannot fail.
            let _ = self.tx[port].push(p);
        }
    }

    #[inline]
    fn drop_packet(&mut self, _p: Packet, r: DropReason) {
        self.tally.add(r);
    }

    fn drain_neighbor_updates(&mut self, now: u64) {
        while let Some(u) = self.sync.inbox.pop() {
            if let Some(slot) = self.neigh.learn(u.iface, u.ip, u.mac, now, false) {
                self.release_pending(slot, now);
            }
        }
        self.drain_neighbor_updates6(now);
    }

    /// Timers: ARP retries and expiry.
    pub fn housekeeping(&mut self, now: u64) {
        self.last_housekeeping = now;
        let mut events = [None; 32];
        let mut n = 0;
        let mut more = false;
        self.neigh.tick(now, |e| {
            if n < events.len() {
                events[n] = Some(e);
                n += 1;
            } else {
                more = true;
            }
        });
        for e in events.iter().take(n).flatten() {
            match *e {
                NeighborEvent::Request { iface, ip, .. } => self.send_arp_request(iface, ip),
                NeighborEvent::Failed { slot } => self.fail_pending(slot, now),
            }
        }
        if more {
            // Come back soon for the events that did not fit.
            self.last_housekeeping = now.saturating_sub(HOUSEKEEPING_INTERVAL_NS);
        }
        self.housekeeping6(now);
        self.publish_nat_counters();
        self.publish_wg_counters();
        self.publish_classify_counters();
        self.publish_lb_counters();
        self.publish_wan_counters(now);
        self.flush_tx();
    }

    /// True when every port's input has ended and nothing is held.
    pub fn inputs_exhausted(&self) -> bool {
        !self.ports.is_empty() && self.ports.iter().all(|p| p.rx_exhausted())
    }

    /// Packets waiting for ARP or ND.
    pub fn pending_len(&self) -> usize {
        self.pending.len() + self.v6.pending.len()
    }

    /// Flushes buffered port output (files).
    pub fn flush_ports(&mut self) {
        self.publish_nat_counters();
        self.publish_wg_counters();
        self.publish_classify_counters();
        self.publish_lb_counters();
        self.flush_tx();
        for p in &mut self.ports {
            p.flush();
        }
    }

    /// The worker's port queues (for driver statistics).
    pub fn ports(&self) -> &[Box<dyn Port>] {
        &self.ports
    }

    /// Link state of the ports as seen at start.
    pub fn links(&self) -> &[LinkInfo] {
        &self.links
    }

    /// The next IPv4 identification for a packet we originate.
    fn next_ident(&mut self) -> u16 {
        self.ip_ident = self.ip_ident.wrapping_add(1);
        self.ip_ident
    }
}

#[cfg(test)]
mod tests;
