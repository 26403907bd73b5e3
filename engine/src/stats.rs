//! Engine-wide counter snapshots: summed over workers, printed as a table
//! and written as JSON (the control process exports them later).

use std::fmt::Write as _;
use std::sync::atomic::Ordering;

use serde::Serialize;

use crate::counters::{read, DropReason};
use crate::worker::Engine;

/// Counters of one port, summed over workers.
#[derive(Clone, Debug, Default, Serialize)]
pub struct PortSnapshot {
    pub name: String,
    pub rx_packets: u64,
    pub rx_bytes: u64,
    pub tx_packets: u64,
    pub tx_bytes: u64,
    pub tx_errors: u64,
    pub rx_missed: u64,
    pub rx_errors: u64,
}

/// Per-worker summary.
#[derive(Clone, Debug, Default, Serialize)]
pub struct WorkerSnapshot {
    pub worker: usize,
    pub core: Option<usize>,
    pub rx_packets: u64,
    pub tx_packets: u64,
    pub drops: u64,
    pub busy_polls: u64,
    pub idle_polls: u64,
    /// Packets NAT translated on this worker (both directions).
    pub nat_translated: u64,
    /// Frames other workers handed to this one.
    pub handoff_received: u64,
}

/// Everything, at one moment.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Snapshot {
    pub elapsed_secs: f64,
    pub workers: usize,
    pub ports: Vec<PortSnapshot>,
    pub drops: std::collections::BTreeMap<&'static str, u64>,
    pub drops_total: u64,
    pub icmp_sent: u64,
    pub arp_requests_sent: u64,
    pub arp_replies_sent: u64,
    pub ipv4_fragments_sent: u64,
    /// Punt path: frames to the kernel's TAPs and from them.
    pub punt_to_host: u64,
    pub punt_from_host: u64,
    /// FIB generation published, and the oldest one a worker still uses.
    pub table_generation: u64,
    pub table_generation_min_acked: u64,
    pub routes: usize,
    pub per_worker: Vec<WorkerSnapshot>,
    /// NAT counters summed over workers (`nat::NAT_COUNTER_NAMES`, plus
    /// `sessions_active`); empty without NAT.
    pub nat: std::collections::BTreeMap<&'static str, u64>,
    /// WireGuard counters summed over workers (the maximum for
    /// `last_handshake_secs`), by exported name (`wg_plan::WgPlan::counter_names`) without
    /// the `wg.` prefix; empty without tunnels.
    pub wg: std::collections::BTreeMap<String, u64>,
    /// Classification counters summed over workers (`model_generation`:
    /// the smallest), by their `classify.` names without the prefix; empty
    /// without `[classify]`.
    pub classify: std::collections::BTreeMap<String, u64>,
    /// Load-balancer counters summed over workers (`lb::LB_COUNTER_NAMES`);
    /// empty while no VIP is configured.
    pub lb: std::collections::BTreeMap<&'static str, u64>,
    /// IPv6 counters summed over workers (`counters::IPV6_COUNTER_NAMES`:
    /// `nd_solicits_sent`, `nd_adverts_sent`, `icmpv6_errors_sent`,
    /// `icmpv6_echo_replies_sent`; the gauges `fib6.routes` and
    /// `route6.generation`: the smallest over workers).
    pub ipv6: std::collections::BTreeMap<&'static str, u64>,
    /// `[wan]` counters summed over workers, by their `wan.` names without
    /// the prefix (`crate::wan::runtime::counter_names`); empty without
    /// `[wan]`.
    pub wan: std::collections::BTreeMap<String, u64>,
}

impl Snapshot {
    /// Reads every worker's counters. `finite` selects the elapsed time:
    /// first packet to last when inputs are finite, else start to now.
    pub fn take(engine: &Engine, port_names: &[String], finite: bool) -> Snapshot {
        let mut s = Snapshot {
            workers: engine.workers.len(),
            ports: port_names
                .iter()
                .map(|n| PortSnapshot {
                    name: n.clone(),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        };
        for r in DropReason::ALL {
            s.drops.insert(r.label(), 0);
        }
        let (mut first, mut last) = (u64::MAX, 0u64);
        for w in &engine.workers {
            let c = &w.counters;
            let mut ws = WorkerSnapshot {
                worker: w.index,
                core: w.core,
                busy_polls: read(&c.busy_polls),
                idle_polls: read(&c.idle_polls),
                ..Default::default()
            };
            for (i, pc) in c.ports.iter().enumerate() {
                let ps = &mut s.ports[i];
                ps.rx_packets += read(&pc.rx_packets);
                ps.rx_bytes += read(&pc.rx_bytes);
                ps.tx_packets += read(&pc.tx_packets);
                ps.tx_bytes += read(&pc.tx_bytes);
                ps.tx_errors += read(&pc.tx_errors);
                ps.rx_missed += read(&pc.rx_missed);
                ps.rx_errors += read(&pc.rx_errors);
                ws.rx_packets += read(&pc.rx_packets);
                ws.tx_packets += read(&pc.tx_packets);
            }
            for r in DropReason::ALL {
                let n = c.drop_count(*r);
                *s.drops.get_mut(r.label()).expect("all labels inserted") += n;
                ws.drops += n;
            }
            s.icmp_sent += read(&c.icmp_sent);
            s.arp_requests_sent += read(&c.arp_requests_sent);
            s.arp_replies_sent += read(&c.arp_replies_sent);
            s.ipv4_fragments_sent += read(&c.ipv4_fragments_sent);
            s.punt_to_host += read(&c.punt_to_host);
            s.punt_from_host += read(&c.punt_from_host);
            ws.handoff_received = read(&c.handoff_received);
            if engine.nat.load().1.is_some() {
                for (name, v) in crate::nat::NAT_COUNTER_NAMES.iter().zip(&c.nat) {
                    *s.nat.entry(name).or_default() += read(v);
                    if *name == "translated_out" || *name == "translated_in" {
                        ws.nat_translated += read(v);
                    }
                }
                *s.nat.entry("sessions_active").or_default() += read(&c.nat_sessions);
            }
            if engine.lb.plans.load().1.is_some() {
                for (name, v) in crate::lb::LB_COUNTER_NAMES.iter().zip(&c.lb) {
                    *s.lb.entry(name).or_default() += read(v);
                }
            }
            if engine.classify.enabled {
                let names = patronus_shm::classify_counters::classify_counter_names();
                for (name, v) in names.iter().zip(&c.classify) {
                    let key = name.trim_start_matches("classify.").to_string();
                    let v = read(v);
                    match s.classify.entry(key) {
                        std::collections::btree_map::Entry::Vacant(e) => {
                            e.insert(v);
                        }
                        std::collections::btree_map::Entry::Occupied(mut e) => {
                            let cur = e.get_mut();
                            *cur = if name.ends_with(".model_generation") {
                                (*cur).min(v)
                            } else {
                                *cur + v
                            };
                        }
                    }
                }
            }
            for (i, (name, v)) in crate::counters::IPV6_COUNTER_NAMES
                .iter()
                .zip(&c.ipv6)
                .enumerate()
            {
                let gauge = i >= crate::counters::FIB6_ROUTES;
                match s.ipv6.entry(name) {
                    std::collections::btree_map::Entry::Vacant(e) => {
                        e.insert(read(v));
                    }
                    std::collections::btree_map::Entry::Occupied(mut e) => {
                        let cur = e.get_mut();
                        *cur = if gauge {
                            (*cur).min(read(v))
                        } else {
                            *cur + read(v)
                        };
                    }
                }
            }
            let f = c.first_rx_ns.load(Ordering::Relaxed);
            if f != 0 {
                first = first.min(f);
                last = last.max(c.last_rx_ns.load(Ordering::Relaxed));
            }
            s.per_worker.push(ws);
        }
        let wg_plan = engine.wg.load().1;
        for values in wg_plan.iter().flat_map(|p| &p.counters) {
            let names = wg_plan.iter().flat_map(|p| &p.counter_names);
            for (name, v) in names.zip(values.iter()) {
                let key = name.trim_start_matches("wg.").to_string();
                let e = s.wg.entry(key).or_default();
                if name.ends_with(".last_handshake_secs") {
                    *e = (*e).max(read(v));
                } else {
                    *e += read(v);
                }
            }
        }
        if let Some(w) = &engine.wan {
            s.wan = w.totals().into_iter().collect();
        }
        s.drops_total = s.drops.values().sum();
        let (g, fib) = engine.tables.load();
        s.table_generation = g;
        s.table_generation_min_acked = engine.tables.min_acked();
        s.routes = fib.len();
        s.elapsed_secs = if finite && first != u64::MAX && last > first {
            (last - first) as f64 / 1e9
        } else {
            engine.started.elapsed().as_secs_f64()
        };
        s
    }

    /// A human-readable table.
    pub fn table(&self) -> String {
        let mut o = String::new();
        let _ = writeln!(
            o,
            "elapsed {:.3} s, {} worker(s)\n{:<10} {:>12} {:>14} {:>12} {:>14} {:>9} {:>9} {:>9}",
            self.elapsed_secs,
            self.workers,
            "port",
            "rx_pkts",
            "rx_bytes",
            "tx_pkts",
            "tx_bytes",
            "tx_err",
            "rx_miss",
            "rx_err"
        );
        for p in &self.ports {
            let _ = writeln!(
                o,
                "{:<10} {:>12} {:>14} {:>12} {:>14} {:>9} {:>9} {:>9}",
                p.name,
                p.rx_packets,
                p.rx_bytes,
                p.tx_packets,
                p.tx_bytes,
                p.tx_errors,
                p.rx_missed,
                p.rx_errors
            );
        }
        let _ = writeln!(
            o,
            "icmp sent {}, arp requests {}, arp replies {}, fragments {}, drops {}",
            self.icmp_sent,
            self.arp_requests_sent,
            self.arp_replies_sent,
            self.ipv4_fragments_sent,
            self.drops_total
        );
        for (k, v) in self.drops.iter().filter(|(_, v)| **v > 0) {
            let _ = writeln!(o, "  drop {k:<22} {v}");
        }
        for w in &self.per_worker {
            let _ = writeln!(
                o,
                "  worker {} (core {}): rx {} tx {} drops {} busy/idle polls {}/{}",
                w.worker,
                w.core.map(|c| c.to_string()).unwrap_or_else(|| "-".into()),
                w.rx_packets,
                w.tx_packets,
                w.drops,
                w.busy_polls,
                w.idle_polls
            );
        }
        o
    }

    /// JSON text.
    pub fn json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_else(|_| "{}".into())
    }
}
