//! The balancer's Prometheus families: per backend (labels `vip`,
//! `backend` = `addr:port`) its health and weight as the control process
//! pushes them, the engine's flow, packet and byte counters, the health
//! transitions counted by the store actor, and the engine's pinned flows.
//! The engine's counters are fetched from `lb.sock` before each scrape
//! ([`LbCollector::refresh`]); without an answer the counter families are
//! left out rather than reported as zeros.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use prometheus::core::{Collector, Desc};
use prometheus::proto::{MetricFamily, MetricType};

use crate::metrics::family::FamilySpec;

use super::counters::{query, EngineLbCounters, LB_QUERY_TIMEOUT};
use super::status::{backend_label, LbStatus};

pub const LB_BACKEND_UP: &str = "patronus_lb_backend_up";
pub const LB_BACKEND_WEIGHT: &str = "patronus_lb_backend_weight";
pub const LB_BACKEND_FLOWS: &str = "patronus_lb_backend_flows_total";
pub const LB_BACKEND_ACTIVE_FLOWS: &str = "patronus_lb_backend_active_flows";
pub const LB_BACKEND_PACKETS: &str = "patronus_lb_backend_packets_total";
pub const LB_BACKEND_BYTES: &str = "patronus_lb_backend_bytes_total";
pub const LB_HEALTH_TRANSITIONS: &str = "patronus_lb_health_transitions_total";
pub const LB_FLOWS_ACTIVE: &str = "patronus_lb_flows_active";

const BACKEND: &[&str] = &["vip", "backend"];

/// (name, help, type, labels) of every family.
const FAMILIES: &[FamilySpec] = &[
    (
        LB_BACKEND_UP,
        "1 when the backend is healthy (or its VIP has no health check), as pushed to the engine.",
        MetricType::GAUGE,
        BACKEND,
    ),
    (
        LB_BACKEND_WEIGHT,
        "The backend's Maglev weight (0: draining).",
        MetricType::GAUGE,
        BACKEND,
    ),
    (
        LB_BACKEND_FLOWS,
        "Flows the engine pinned to the backend since it entered the plan.",
        MetricType::COUNTER,
        BACKEND,
    ),
    (
        LB_BACKEND_ACTIVE_FLOWS,
        "Flows pinned to the backend now.",
        MetricType::GAUGE,
        BACKEND,
    ),
    (
        LB_BACKEND_PACKETS,
        "Packets of the backend's flows, both directions (NAT mode; DSR replies bypass the engine).",
        MetricType::COUNTER,
        BACKEND,
    ),
    (
        LB_BACKEND_BYTES,
        "IP bytes of the backend's flows, both directions (NAT mode; DSR replies bypass the engine).",
        MetricType::COUNTER,
        BACKEND,
    ),
    (
        LB_HEALTH_TRANSITIONS,
        "Health changes of the backend, by the state it went to.",
        MetricType::COUNTER,
        &["vip", "backend", "to"],
    ),
    (
        LB_FLOWS_ACTIVE,
        "Flows the engine's balancer has pinned now (all VIPs, all workers).",
        MetricType::GAUGE,
        &[],
    ),
];

/// Reports the balancer's families at each scrape.
pub struct LbCollector {
    status: LbStatus,
    socket: Option<PathBuf>,
    counters: Arc<Mutex<Option<EngineLbCounters>>>,
    descs: Vec<Desc>,
}

impl std::fmt::Debug for LbCollector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LbCollector")
            .field("socket", &self.socket)
            .finish_non_exhaustive()
    }
}

impl LbCollector {
    /// Over `status` (the store actor's), asking the engine at `socket`.
    pub fn new(status: LbStatus, socket: Option<PathBuf>) -> prometheus::Result<Self> {
        let descs = crate::metrics::family::descs(FAMILIES)?;
        Ok(LbCollector {
            status,
            socket,
            counters: Arc::new(Mutex::new(None)),
            descs,
        })
    }

    /// A handle that refreshes this collector's engine counters.
    pub fn refresher(&self) -> LbRefresher {
        LbRefresher {
            status: self.status.clone(),
            socket: self.socket.clone(),
            counters: self.counters.clone(),
        }
    }
}

/// Fetches the engine's counters for an [`LbCollector`] (before a scrape).
#[derive(Debug, Clone)]
pub struct LbRefresher {
    status: LbStatus,
    socket: Option<PathBuf>,
    counters: Arc<Mutex<Option<EngineLbCounters>>>,
}

impl LbRefresher {
    /// Asks the engine (only when some VIP exists: no VIP, no balancer).
    pub async fn refresh(&self) {
        let fresh = match &self.socket {
            Some(s) if !self.status.vips().is_empty() => query(s, LB_QUERY_TIMEOUT).await,
            _ => None,
        };
        *self.counters.lock().unwrap_or_else(|e| e.into_inner()) = fresh;
    }
}

impl Collector for LbCollector {
    fn desc(&self) -> Vec<&Desc> {
        self.descs.iter().collect()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        let mut scrape = crate::metrics::family::Scrape::new(FAMILIES);
        let mut add =
            |name: &str, labels: &[(&str, &str)], value: f64| scrape.add(name, labels, value);
        let counters = self
            .counters
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        for v in self.status.vips() {
            for b in &v.backends {
                let label = backend_label(b);
                let l = [("vip", v.def.name.as_str()), ("backend", label.as_str())];
                add(LB_BACKEND_UP, &l, f64::from(u8::from(b.up.unwrap_or(true))));
                add(LB_BACKEND_WEIGHT, &l, f64::from(b.def.weight));
                if let Some(c) = &counters {
                    let n = c.of(v.id, b);
                    add(LB_BACKEND_FLOWS, &l, n.flows as f64);
                    add(LB_BACKEND_ACTIVE_FLOWS, &l, n.active_flows as f64);
                    add(LB_BACKEND_PACKETS, &l, n.packets as f64);
                    add(LB_BACKEND_BYTES, &l, n.bytes as f64);
                }
            }
        }
        for ((vip, backend, to), n) in self.status.transitions() {
            add(
                LB_HEALTH_TRANSITIONS,
                &[("vip", &vip), ("backend", &backend), ("to", to)],
                n as f64,
            );
        }
        if let Some(c) = &counters {
            add(LB_FLOWS_ACTIVE, &[], c.active_flows as f64);
        }
        scrape.finish()
    }
}
