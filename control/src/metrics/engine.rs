//! Engine-side metrics: the [`EngineSnapshot`] the engine's shared-memory
//! counters are read into, the [`EngineSource`] that provides it, and
//! [`EngineCollector`], which turns one snapshot per scrape into metric families.
//!
//! The engine's counters are absolute, monotonic values owned by the engine, so
//! they are exported as `counter` families built at scrape time (never `inc`ed
//! here): the exposition stays exactly what the engine counted. The
//! workers' poll-latency log2 histograms become one Prometheus histogram
//! per worker, bucket bounds at powers of two nanoseconds.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use patronus_shm::histogram::bucket_upper;
use patronus_shm::HistogramSnapshot;
use prometheus::core::{Collector, Desc};
use prometheus::proto::{self, MetricFamily, MetricType};

/// Counters of one port, summed over the port's queues.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PortCounters {
    pub name: String,
    pub rx_packets: u64,
    pub rx_bytes: u64,
    pub tx_packets: u64,
    pub tx_bytes: u64,
    /// Packets the NIC/kernel dropped because the RX ring was full.
    pub rx_missed: u64,
    pub rx_errors: u64,
    pub tx_errors: u64,
}

/// Counters of one worker thread.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WorkerSnapshot {
    pub index: u32,
    /// Polls that received at least one packet.
    pub busy_polls: u64,
    /// Polls that received nothing.
    pub idle_polls: u64,
    pub rx_packets: u64,
    pub tx_packets: u64,
    /// Shared-memory table generation this worker acknowledged.
    pub acked_generation: u64,
    /// The worker beat recently (a stale one no longer holds back pushes).
    pub live: bool,
    /// Duration of each poll that received packets, in ns (log2 buckets).
    pub poll_latency_ns: HistogramSnapshot,
}

/// Everything the engine exports, read at one instant.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EngineSnapshot {
    pub ports: Vec<PortCounters>,
    /// `(reason label, count)` for every drop reason (zeros included, so the
    /// series exist before the first drop).
    pub drops: Vec<(String, u64)>,
    pub workers: Vec<WorkerSnapshot>,
    /// Generation of the tables the control process last published.
    pub table_generation: u64,
    /// Generation every worker has switched to.
    pub table_generation_acked: u64,
    /// NAT counters (`nat.<name>` in the counters file, without the
    /// prefix) and the `sessions_active` gauge, summed over the workers.
    pub nat: Vec<(String, u64)>,
    /// WireGuard counters (`wg.<name>` in the counters file, without the
    /// prefix; see [`crate::wg::counters`]), summed over the workers (the
    /// `last_handshake_secs` gauges: the newest).
    pub wg: Vec<(String, u64)>,
    /// Classification counters (`classify.<name>` in the counters file,
    /// without the prefix; see [`crate::flows::summary`]), summed over the
    /// workers (`model_generation`: the smallest).
    pub classify: Vec<(String, u64)>,
    /// The `route6.bin` number every worker acknowledged (gauge
    /// `route6.generation`; `None` when the engine does not export it).
    pub route6_generation: Option<u64>,
    /// WAN path and steering counters (`wan.<name>` in the counters file,
    /// without the prefix; see [`crate::wan::counters`]), summed over the
    /// workers (per-path gauges: the largest).
    pub wan: Vec<(String, u64)>,
}

/// Where engine snapshots come from (the control process implements it over
/// the engine's shared-memory counters). Called once per scrape, on the
/// metrics server's async task: it must be quick and must not block.
pub trait EngineSource: Send + Sync {
    /// `None` when no engine is attached.
    fn snapshot(&self) -> Option<EngineSnapshot>;

    /// Where the engine answers NAT session queries (`None`: no engine
    /// link).
    fn nat_socket(&self) -> Option<std::path::PathBuf> {
        None
    }

    /// Where the engine answers flow queries (`None`: no engine link).
    fn flows_socket(&self) -> Option<std::path::PathBuf> {
        None
    }

    /// Where the engine answers load-balancer queries (`None`: no engine
    /// link).
    fn lb_socket(&self) -> Option<std::path::PathBuf> {
        None
    }
}

/// A source for a control process without an engine: always detached.
#[derive(Debug, Clone, Copy, Default)]
pub struct Detached;

impl EngineSource for Detached {
    fn snapshot(&self) -> Option<EngineSnapshot> {
        None
    }
}

/// A source holding the last snapshot some other task stored (`None` = detached).
/// Handy when snapshots are produced by a polling loop rather than on demand.
#[derive(Debug, Default)]
pub struct LatestSnapshot {
    latest: Mutex<Option<EngineSnapshot>>,
}

impl LatestSnapshot {
    pub fn new(initial: Option<EngineSnapshot>) -> Self {
        LatestSnapshot {
            latest: Mutex::new(initial),
        }
    }

    pub fn set(&self, snapshot: Option<EngineSnapshot>) {
        *self.latest.lock().unwrap_or_else(|e| e.into_inner()) = snapshot;
    }
}

impl EngineSource for LatestSnapshot {
    fn snapshot(&self) -> Option<EngineSnapshot> {
        self.latest
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

/// Name, help, type and label names of one engine family.
struct FamilySpec {
    name: &'static str,
    help: &'static str,
    kind: MetricType,
    labels: &'static [&'static str],
}

pub const ENGINE_ATTACHED: &str = "patronus_engine_attached";
pub const PORT_PACKETS: &str = "patronus_port_packets_total";
pub const PORT_BYTES: &str = "patronus_port_bytes_total";
pub const PORT_ERRORS: &str = "patronus_port_errors_total";
pub const DROPS: &str = "patronus_drops_total";
pub const WORKER_BUSY_RATIO: &str = "patronus_worker_busy_ratio";
pub const WORKER_POLLS: &str = "patronus_worker_polls_total";
pub const WORKER_PACKETS: &str = "patronus_worker_packets_total";
pub const WORKER_POLL_LATENCY: &str = "patronus_worker_poll_latency_seconds";
pub const TABLE_GENERATION: &str = "patronus_table_generation";
pub const TABLE_GENERATION_ACKED: &str = "patronus_table_generation_acked";
pub const NAT_SESSIONS_ACTIVE: &str = "patronus_nat_sessions_active";
pub const NAT_SESSIONS_CREATED: &str = "patronus_nat_sessions_created_total";
pub const NAT_SESSIONS_EXPIRED: &str = "patronus_nat_sessions_expired_total";
pub const NAT_SESSIONS_FLUSHED: &str = "patronus_nat_sessions_flushed_total";
pub const NAT_SESSIONS_REFUSED: &str = "patronus_nat_sessions_refused_total";
pub const NAT_PACKETS: &str = "patronus_nat_packets_total";
pub const NAT_DROPS: &str = "patronus_nat_drops_total";
pub const WG_PEER_RX_BYTES: &str = "patronus_wg_peer_rx_bytes_total";
pub const WG_PEER_TX_BYTES: &str = "patronus_wg_peer_tx_bytes_total";
pub const WG_PEER_RX_PACKETS: &str = "patronus_wg_peer_rx_packets_total";
pub const WG_PEER_TX_PACKETS: &str = "patronus_wg_peer_tx_packets_total";
pub const WG_PEER_HANDSHAKES: &str = "patronus_wg_peer_handshakes_total";
pub const WG_PEER_LAST_HANDSHAKE: &str = "patronus_wg_peer_last_handshake_seconds";
pub const WG_PEER_DROPS: &str = "patronus_wg_peer_drops_total";
pub const WG_DROPS: &str = "patronus_wg_drops_total";
pub const WG_COOKIE_REPLIES: &str = "patronus_wg_cookie_replies_sent_total";
pub const CLASSIFY_FLOWS: &str = "patronus_classify_flows_total";
pub const CLASSIFY_PACKETS: &str = "patronus_classify_packets_total";
pub const CLASSIFY_BYTES: &str = "patronus_classify_bytes_total";
pub const CLASSIFY_FLOWS_CREATED: &str = "patronus_classify_flows_created_total";
pub const CLASSIFY_FLOWS_EXPIRED: &str = "patronus_classify_flows_expired_total";
pub const CLASSIFY_FLOWS_EVICTED: &str = "patronus_classify_flows_evicted_total";
pub const CLASSIFY_FLOWS_UNTRACKED: &str = "patronus_classify_flows_untracked_total";
pub const CLASSIFY_DPI_SLOTS_EXHAUSTED: &str = "patronus_classify_dpi_slots_exhausted_total";
pub const CLASSIFY_INFERENCE_BATCHES: &str = "patronus_classify_inference_batches_total";
pub const CLASSIFY_INFERRED_FLOWS: &str = "patronus_classify_inferred_flows_total";
pub const CLASSIFY_FLOWS_ACTIVE: &str = "patronus_classify_flows_active";
pub const CLASSIFY_MODEL_GENERATION: &str = "patronus_classify_model_generation";

/// Where each engine classification counter goes (name without
/// `classify.`, family without labels). Every name of
/// `patronus_shm::classify_counters::CLASSIFY_COUNTERS` is here (a test
/// checks); per-class counters go to [`CLASSIFY_CLASS_METRICS`].
pub const CLASSIFY_METRICS: &[(&str, &str)] = &[
    ("flows_created", CLASSIFY_FLOWS_CREATED),
    ("flows_expired", CLASSIFY_FLOWS_EXPIRED),
    ("flows_evicted", CLASSIFY_FLOWS_EVICTED),
    ("flows_untracked", CLASSIFY_FLOWS_UNTRACKED),
    ("dpi_slots_exhausted", CLASSIFY_DPI_SLOTS_EXHAUSTED),
    ("inference_batches", CLASSIFY_INFERENCE_BATCHES),
    ("inferred_flows", CLASSIFY_INFERRED_FLOWS),
    ("flows_active", CLASSIFY_FLOWS_ACTIVE),
    ("model_generation", CLASSIFY_MODEL_GENERATION),
];

/// Where each per-class counter goes (label `class`).
pub const CLASSIFY_CLASS_METRICS: &[(&str, &str)] = &[
    ("flows", CLASSIFY_FLOWS),
    ("packets", CLASSIFY_PACKETS),
    ("bytes", CLASSIFY_BYTES),
];

/// Where each per-peer WireGuard counter goes: (counter of
/// `patronus_shm::wg_counters::WG_PEER_COUNTERS`, family with labels
/// `tunnel`, `peer`). Every counter of the contract is here (a test
/// checks); drops go to [`WG_PEER_DROPS`] by `reason`.
pub const WG_PEER_METRICS: &[(&str, &str)] = &[
    ("rx_bytes", WG_PEER_RX_BYTES),
    ("tx_bytes", WG_PEER_TX_BYTES),
    ("rx_packets", WG_PEER_RX_PACKETS),
    ("tx_packets", WG_PEER_TX_PACKETS),
    ("handshakes", WG_PEER_HANDSHAKES),
    ("last_handshake_secs", WG_PEER_LAST_HANDSHAKE),
];

/// Where each per-tunnel WireGuard counter goes (label `tunnel`); drops
/// go to [`WG_DROPS`] by `reason`.
pub const WG_TUNNEL_METRICS: &[(&str, &str)] = &[("cookie_replies_sent", WG_COOKIE_REPLIES)];

/// A NAT counter's place: (engine counter name, family, label).
pub type NatMetric = (
    &'static str,
    &'static str,
    Option<(&'static str, &'static str)>,
);

/// Where each engine NAT counter goes: (counter name, family, label).
/// Every name of the engine's `NAT_COUNTER_NAMES` is here (an e2e test
/// checks); a name not listed is not exported.
pub const NAT_METRICS: &[NatMetric] = &[
    ("sessions_active", NAT_SESSIONS_ACTIVE, None),
    ("sessions_created", NAT_SESSIONS_CREATED, None),
    ("sessions_expired", NAT_SESSIONS_EXPIRED, None),
    ("sessions_flushed", NAT_SESSIONS_FLUSHED, None),
    (
        "refused_pool_exhausted",
        NAT_SESSIONS_REFUSED,
        Some(("reason", "pool_exhausted")),
    ),
    (
        "refused_host_limit",
        NAT_SESSIONS_REFUSED,
        Some(("reason", "host_limit")),
    ),
    (
        "refused_table_full",
        NAT_SESSIONS_REFUSED,
        Some(("reason", "table_full")),
    ),
    ("translated_out", NAT_PACKETS, Some(("kind", "outbound"))),
    ("translated_in", NAT_PACKETS, Some(("kind", "inbound"))),
    ("hairpinned", NAT_PACKETS, Some(("kind", "hairpin"))),
    (
        "icmp_errors_translated",
        NAT_PACKETS,
        Some(("kind", "icmp_error")),
    ),
    (
        "fragments_translated",
        NAT_PACKETS,
        Some(("kind", "fragment")),
    ),
    (
        "dropped_no_session",
        NAT_DROPS,
        Some(("reason", "no_session")),
    ),
    ("dropped_filtered", NAT_DROPS, Some(("reason", "filtered"))),
    ("dropped_fragment", NAT_DROPS, Some(("reason", "fragment"))),
    (
        "dropped_malformed",
        NAT_DROPS,
        Some(("reason", "malformed")),
    ),
    (
        "dropped_unsupported",
        NAT_DROPS,
        Some(("reason", "unsupported")),
    ),
];

const FAMILIES: &[FamilySpec] = &[
    FamilySpec {
        name: ENGINE_ATTACHED,
        help: "1 when the packet engine is attached to the control process, else 0.",
        kind: MetricType::GAUGE,
        labels: &[],
    },
    FamilySpec {
        name: PORT_PACKETS,
        help: "Packets received (rx) or transmitted (tx) on a port.",
        kind: MetricType::COUNTER,
        labels: &["port", "direction"],
    },
    FamilySpec {
        name: PORT_BYTES,
        help: "Bytes received (rx) or transmitted (tx) on a port.",
        kind: MetricType::COUNTER,
        labels: &["port", "direction"],
    },
    FamilySpec {
        name: PORT_ERRORS,
        help: "Port errors by kind: rx_missed (RX ring full), rx_errors, tx_errors.",
        kind: MetricType::COUNTER,
        labels: &["port", "kind"],
    },
    FamilySpec {
        name: DROPS,
        help: "Packets the engine dropped, by reason.",
        kind: MetricType::COUNTER,
        labels: &["reason"],
    },
    FamilySpec {
        name: WORKER_BUSY_RATIO,
        help:
            "Share of a worker's polls that received packets, cumulative since the engine started.",
        kind: MetricType::GAUGE,
        labels: &["worker"],
    },
    FamilySpec {
        name: WORKER_POLLS,
        help: "Polls of a worker by result: busy (received packets) or idle.",
        kind: MetricType::COUNTER,
        labels: &["worker", "result"],
    },
    FamilySpec {
        name: WORKER_PACKETS,
        help: "Packets a worker received (rx) or transmitted (tx).",
        kind: MetricType::COUNTER,
        labels: &["worker", "direction"],
    },
    FamilySpec {
        name: WORKER_POLL_LATENCY,
        help: "Duration of a worker's polls that received packets (receive, pipeline, transmit of one burst).",
        kind: MetricType::HISTOGRAM,
        labels: &["worker"],
    },
    FamilySpec {
        name: TABLE_GENERATION,
        help: "Generation of the tables last published to the engine.",
        kind: MetricType::GAUGE,
        labels: &[],
    },
    FamilySpec {
        name: TABLE_GENERATION_ACKED,
        help: "Table generation every engine worker has switched to.",
        kind: MetricType::GAUGE,
        labels: &[],
    },
    FamilySpec {
        name: NAT_SESSIONS_ACTIVE,
        help: "NAT sessions the engine holds now (all workers).",
        kind: MetricType::GAUGE,
        labels: &[],
    },
    FamilySpec {
        name: NAT_SESSIONS_CREATED,
        help: "NAT sessions created.",
        kind: MetricType::COUNTER,
        labels: &[],
    },
    FamilySpec {
        name: NAT_SESSIONS_EXPIRED,
        help: "NAT sessions removed after their idle timeout.",
        kind: MetricType::COUNTER,
        labels: &[],
    },
    FamilySpec {
        name: NAT_SESSIONS_FLUSHED,
        help: "NAT sessions removed by a configuration change (their pool address or forward went away).",
        kind: MetricType::COUNTER,
        labels: &[],
    },
    FamilySpec {
        name: NAT_SESSIONS_REFUSED,
        help: "New NAT sessions refused, by reason: pool_exhausted, host_limit, table_full.",
        kind: MetricType::COUNTER,
        labels: &["reason"],
    },
    FamilySpec {
        name: NAT_PACKETS,
        help: "Packets NAT translated, by kind: outbound, inbound, hairpin, icmp_error, fragment.",
        kind: MetricType::COUNTER,
        labels: &["kind"],
    },
    FamilySpec {
        name: NAT_DROPS,
        help: "Packets NAT dropped, by reason: no_session, filtered, fragment, malformed, unsupported.",
        kind: MetricType::COUNTER,
        labels: &["reason"],
    },
    FamilySpec {
        name: WG_PEER_RX_BYTES,
        help: "WireGuard message bytes received from a peer and authenticated (UDP payload, every message type); peer is the start of its public key.",
        kind: MetricType::COUNTER,
        labels: &["tunnel", "peer"],
    },
    FamilySpec {
        name: WG_PEER_TX_BYTES,
        help: "WireGuard message bytes sent to a peer (UDP payload, every message type).",
        kind: MetricType::COUNTER,
        labels: &["tunnel", "peer"],
    },
    FamilySpec {
        name: WG_PEER_RX_PACKETS,
        help: "Inner packets received from a WireGuard peer and delivered (keepalives not included).",
        kind: MetricType::COUNTER,
        labels: &["tunnel", "peer"],
    },
    FamilySpec {
        name: WG_PEER_TX_PACKETS,
        help: "Inner packets encapsulated to a WireGuard peer (keepalives not included).",
        kind: MetricType::COUNTER,
        labels: &["tunnel", "peer"],
    },
    FamilySpec {
        name: WG_PEER_HANDSHAKES,
        help: "Handshakes completed with a WireGuard peer.",
        kind: MetricType::COUNTER,
        labels: &["tunnel", "peer"],
    },
    FamilySpec {
        name: WG_PEER_LAST_HANDSHAKE,
        help: "Unix time of the last completed handshake with a WireGuard peer (0: none yet).",
        kind: MetricType::GAUGE,
        labels: &["tunnel", "peer"],
    },
    FamilySpec {
        name: WG_PEER_DROPS,
        help: "A WireGuard peer's packets dropped, by reason: malformed, no_peer, bad_mac, replay, no_session, not_allowed_ip, hs_failed, under_load, no_endpoint, too_big.",
        kind: MetricType::COUNTER,
        labels: &["tunnel", "peer", "reason"],
    },
    FamilySpec {
        name: WG_DROPS,
        help: "Packets for a WireGuard tunnel no peer can be blamed for, by reason (the same reasons as patronus_wg_peer_drops_total).",
        kind: MetricType::COUNTER,
        labels: &["tunnel", "reason"],
    },
    FamilySpec {
        name: WG_COOKIE_REPLIES,
        help: "Cookie replies a WireGuard tunnel sent to handshake initiators while under load.",
        kind: MetricType::COUNTER,
        labels: &["tunnel"],
    },
    FamilySpec {
        name: CLASSIFY_FLOWS,
        help: "Flows the engine classified, by class (http, tls, ssh, dns, ..., other, unknown).",
        kind: MetricType::COUNTER,
        labels: &["class"],
    },
    FamilySpec {
        name: CLASSIFY_PACKETS,
        help: "Packets of classified flows, by class, counted from the verdict on.",
        kind: MetricType::COUNTER,
        labels: &["class"],
    },
    FamilySpec {
        name: CLASSIFY_BYTES,
        help: "IP bytes of classified flows, by class, counted from the verdict on.",
        kind: MetricType::COUNTER,
        labels: &["class"],
    },
    FamilySpec {
        name: CLASSIFY_FLOWS_CREATED,
        help: "Flows entered into the engine's flow tables.",
        kind: MetricType::COUNTER,
        labels: &[],
    },
    FamilySpec {
        name: CLASSIFY_FLOWS_EXPIRED,
        help: "Flows removed from the flow tables after idling.",
        kind: MetricType::COUNTER,
        labels: &[],
    },
    FamilySpec {
        name: CLASSIFY_FLOWS_EVICTED,
        help: "Flows removed to make room in a full flow-table bucket (the oldest idle one).",
        kind: MetricType::COUNTER,
        labels: &[],
    },
    FamilySpec {
        name: CLASSIFY_FLOWS_UNTRACKED,
        help: "Packets forwarded without flow tracking: no room in the flow table even after eviction.",
        kind: MetricType::COUNTER,
        labels: &[],
    },
    FamilySpec {
        name: CLASSIFY_DPI_SLOTS_EXHAUSTED,
        help: "New flows left unknown because no classification slot was free.",
        kind: MetricType::COUNTER,
        labels: &[],
    },
    FamilySpec {
        name: CLASSIFY_INFERENCE_BATCHES,
        help: "Batched model inferences (matrix products) the engine ran.",
        kind: MetricType::COUNTER,
        labels: &[],
    },
    FamilySpec {
        name: CLASSIFY_INFERRED_FLOWS,
        help: "Flows the model scored.",
        kind: MetricType::COUNTER,
        labels: &[],
    },
    FamilySpec {
        name: CLASSIFY_FLOWS_ACTIVE,
        help: "Flows in the engine's flow tables now (all workers).",
        kind: MetricType::GAUGE,
        labels: &[],
    },
    FamilySpec {
        name: CLASSIFY_MODEL_GENERATION,
        help: "Generation of the classification model every engine worker runs (the smallest over workers; 0: none).",
        kind: MetricType::GAUGE,
        labels: &[],
    },
];

/// Log2 buckets exported for the poll latency: bucket `i` holds
/// `2^(i-1)..=2^i - 1` ns, so these bounds run from 255 ns to about 1.07 s
/// (lower buckets fold into the first bound, higher ones only into +Inf).
const POLL_LATENCY_LOG2_BUCKETS: std::ops::RangeInclusive<usize> = 8..=30;

/// Reads the [`EngineSource`] at each scrape and reports the engine families
/// and the WAN ones ([`crate::wan::metrics`], from the same snapshot).
/// When the engine is detached only `patronus_engine_attached 0` is reported.
pub struct EngineCollector {
    source: Arc<dyn EngineSource>,
    descs: Vec<Desc>,
}

impl EngineCollector {
    pub fn new(source: Arc<dyn EngineSource>) -> prometheus::Result<Self> {
        let descs = FAMILIES
            .iter()
            .map(|f| {
                Desc::new(
                    f.name.to_owned(),
                    f.help.to_owned(),
                    f.labels.iter().map(|l| (*l).to_owned()).collect(),
                    HashMap::new(),
                )
            })
            .chain(
                crate::metrics::family::descs(crate::wan::metrics::FAMILIES)?
                    .into_iter()
                    .map(Ok),
            )
            .collect::<prometheus::Result<Vec<_>>>()?;
        Ok(EngineCollector { source, descs })
    }
}

/// Families under construction, keyed by name, in [`FAMILIES`] order.
struct Families {
    families: Vec<MetricFamily>,
}

impl Families {
    fn new() -> Self {
        let families = FAMILIES
            .iter()
            .map(|f| {
                let mut mf = MetricFamily::default();
                mf.set_name(f.name.to_owned());
                mf.set_help(f.help.to_owned());
                mf.set_field_type(f.kind);
                mf
            })
            .collect();
        Families { families }
    }

    fn add(&mut self, name: &str, labels: &[(&str, &str)], value: f64) {
        let Some((index, mut m)) = Self::metric(name, labels) else {
            return;
        };
        if FAMILIES[index].kind == MetricType::COUNTER {
            let mut c = proto::Counter::default();
            c.set_value(value);
            m.set_counter(c);
        } else {
            let mut g = proto::Gauge::default();
            g.set_value(value);
            m.set_gauge(g);
        }
        self.families[index].mut_metric().push(m);
    }

    /// A histogram in seconds from a log2 histogram in nanoseconds.
    fn add_log2_ns(&mut self, name: &str, labels: &[(&str, &str)], h: &HistogramSnapshot) {
        let Some((index, mut m)) = Self::metric(name, labels) else {
            return;
        };
        debug_assert_eq!(FAMILIES[index].kind, MetricType::HISTOGRAM);
        let mut below = 0u64;
        let mut buckets = Vec::new();
        for (i, n) in h.buckets.iter().enumerate() {
            below = below.wrapping_add(*n);
            if POLL_LATENCY_LOG2_BUCKETS.contains(&i) {
                let mut b = proto::Bucket::default();
                b.set_cumulative_count(below);
                b.set_upper_bound(bucket_upper(i) as f64 / 1e9);
                buckets.push(b);
            }
        }
        let mut p = proto::Histogram::default();
        // The bucket total, not `count`: +Inf must never fall below a bucket
        // (the fields are read at slightly different instants).
        p.set_sample_count(below);
        p.set_sample_sum(h.sum as f64 / 1e9);
        p.set_bucket(buckets);
        m.set_histogram(p);
        self.families[index].mut_metric().push(m);
    }

    /// A labelled metric of family `name` and the family's index.
    fn metric(name: &str, labels: &[(&str, &str)]) -> Option<(usize, proto::Metric)> {
        let Some(index) = FAMILIES.iter().position(|f| f.name == name) else {
            debug_assert!(false, "unknown engine family {name}");
            return None;
        };
        let spec = &FAMILIES[index];
        debug_assert_eq!(
            spec.labels,
            labels
                .iter()
                .map(|(k, _)| *k)
                .collect::<Vec<_>>()
                .as_slice()
        );
        let mut m = proto::Metric::default();
        m.set_label(
            labels
                .iter()
                .map(|(k, v)| {
                    let mut lp = proto::LabelPair::default();
                    lp.set_name((*k).to_owned());
                    lp.set_value((*v).to_owned());
                    lp
                })
                .collect(),
        );
        Some((index, m))
    }
}

/// Counters are u64 in the engine; the exposition format carries floats
/// (exact up to 2^53, far beyond any realistic counter here).
fn f(v: u64) -> f64 {
    v as f64
}

fn snapshot_families(snapshot: Option<&EngineSnapshot>) -> Vec<MetricFamily> {
    let mut out = Families::new();
    let Some(s) = snapshot else {
        out.add(ENGINE_ATTACHED, &[], 0.0);
        return out.families;
    };
    out.add(ENGINE_ATTACHED, &[], 1.0);
    for p in &s.ports {
        let port = p.name.as_str();
        for (dir, packets, bytes) in [
            ("rx", p.rx_packets, p.rx_bytes),
            ("tx", p.tx_packets, p.tx_bytes),
        ] {
            out.add(
                PORT_PACKETS,
                &[("port", port), ("direction", dir)],
                f(packets),
            );
            out.add(PORT_BYTES, &[("port", port), ("direction", dir)], f(bytes));
        }
        for (kind, v) in [
            ("rx_missed", p.rx_missed),
            ("rx_errors", p.rx_errors),
            ("tx_errors", p.tx_errors),
        ] {
            out.add(PORT_ERRORS, &[("port", port), ("kind", kind)], f(v));
        }
    }
    // One series per reason even if the source repeats one (duplicate label
    // sets would make the exposition invalid).
    let mut drops: Vec<(&str, u64)> = Vec::with_capacity(s.drops.len());
    for (reason, n) in &s.drops {
        match drops.iter_mut().find(|(r, _)| r == reason) {
            Some((_, total)) => *total = total.saturating_add(*n),
            None => drops.push((reason, *n)),
        }
    }
    for (reason, n) in drops {
        out.add(DROPS, &[("reason", reason)], f(n));
    }
    for w in &s.workers {
        let worker = w.index.to_string();
        let worker = worker.as_str();
        let polls = w.busy_polls.saturating_add(w.idle_polls);
        let ratio = if polls == 0 {
            0.0
        } else {
            f(w.busy_polls) / f(polls)
        };
        out.add(WORKER_BUSY_RATIO, &[("worker", worker)], ratio);
        out.add(
            WORKER_POLLS,
            &[("worker", worker), ("result", "busy")],
            f(w.busy_polls),
        );
        out.add(
            WORKER_POLLS,
            &[("worker", worker), ("result", "idle")],
            f(w.idle_polls),
        );
        out.add(
            WORKER_PACKETS,
            &[("worker", worker), ("direction", "rx")],
            f(w.rx_packets),
        );
        out.add(
            WORKER_PACKETS,
            &[("worker", worker), ("direction", "tx")],
            f(w.tx_packets),
        );
        out.add_log2_ns(
            WORKER_POLL_LATENCY,
            &[("worker", worker)],
            &w.poll_latency_ns,
        );
    }
    out.add(TABLE_GENERATION, &[], f(s.table_generation));
    out.add(TABLE_GENERATION_ACKED, &[], f(s.table_generation_acked));
    // In NAT_METRICS order, each once (a repeated name is summed).
    for (name, family, label) in NAT_METRICS {
        let mut values = s.nat.iter().filter(|(n, _)| n == name).peekable();
        if values.peek().is_none() {
            continue;
        }
        let total = values.fold(0u64, |t, (_, v)| t.saturating_add(*v));
        match label {
            Some(l) => out.add(family, &[*l], f(total)),
            None => out.add(family, &[], f(total)),
        }
    }
    add_wg(&mut out, &s.wg);
    add_classify(&mut out, &s.classify);
    out.families
}

/// The engine's classification counters, through the API's summary (so
/// repeats are combined as there and names outside the contract are left
/// out); nothing when the engine exports none.
fn add_classify(out: &mut Families, classify: &[(String, u64)]) {
    let Some(s) = crate::flows::summary::summary(classify) else {
        return;
    };
    for (class, c) in &s.classes {
        for (what, family) in CLASSIFY_CLASS_METRICS {
            let v = match *what {
                "flows" => c.flows,
                "packets" => c.packets,
                _ => c.bytes,
            };
            out.add(family, &[("class", class)], f(v));
        }
    }
    for (name, family) in CLASSIFY_METRICS {
        let v = match *name {
            "flows_created" => s.flows_created,
            "flows_expired" => s.flows_expired,
            "flows_evicted" => s.flows_evicted,
            "flows_untracked" => s.flows_untracked,
            "dpi_slots_exhausted" => s.dpi_slots_exhausted,
            "inference_batches" => s.inference_batches,
            "inferred_flows" => s.inferred_flows,
            "flows_active" => s.flows_active,
            "model_generation" => s.model_generation,
            _ => continue,
        };
        out.add(family, &[], f(v));
    }
}

/// The engine's WireGuard counters (names outside the contract,
/// `patronus_shm::wg_counters`, are left out; see [`crate::wg::counters`]).
fn add_wg(out: &mut Families, wg: &[(String, u64)]) {
    use crate::wg::counters::{parse, WgCounter};
    let family = |table: &[(&str, &'static str)], counter: &str| {
        table.iter().find(|(c, _)| *c == counter).map(|(_, f)| *f)
    };
    for (name, v) in wg {
        match parse(name) {
            Some(WgCounter::Peer {
                tunnel,
                peer,
                counter,
            }) => {
                if let Some(fam) = family(WG_PEER_METRICS, counter) {
                    out.add(fam, &[("tunnel", tunnel), ("peer", peer)], f(*v));
                }
            }
            Some(WgCounter::PeerDrop {
                tunnel,
                peer,
                reason,
            }) => out.add(
                WG_PEER_DROPS,
                &[("tunnel", tunnel), ("peer", peer), ("reason", reason)],
                f(*v),
            ),
            Some(WgCounter::Tunnel { tunnel, counter }) => {
                if let Some(fam) = family(WG_TUNNEL_METRICS, counter) {
                    out.add(fam, &[("tunnel", tunnel)], f(*v));
                }
            }
            Some(WgCounter::TunnelDrop { tunnel, reason }) => {
                out.add(WG_DROPS, &[("tunnel", tunnel), ("reason", reason)], f(*v))
            }
            None => {}
        }
    }
}

impl Collector for EngineCollector {
    fn desc(&self) -> Vec<&Desc> {
        self.descs.iter().collect()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        let snapshot = self.source.snapshot();
        let mut families = snapshot_families(snapshot.as_ref());
        if let Some(s) = &snapshot {
            families.extend(crate::wan::metrics::families(&s.wan));
        }
        families
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detached_reports_only_attached_zero() {
        let fams: Vec<_> = snapshot_families(None)
            .into_iter()
            .filter(|f| !f.get_metric().is_empty())
            .collect();
        assert_eq!(fams.len(), 1);
        assert_eq!(fams[0].get_name(), ENGINE_ATTACHED);
        assert_eq!(fams[0].get_metric()[0].get_gauge().get_value(), 0.0);
    }

    #[test]
    fn repeated_drop_reasons_are_summed() {
        let s = EngineSnapshot {
            drops: vec![("no_route".into(), 2), ("no_route".into(), 3)],
            ..Default::default()
        };
        let fams = snapshot_families(Some(&s));
        let drops = fams.iter().find(|f| f.get_name() == DROPS).unwrap();
        assert_eq!(drops.get_metric().len(), 1);
        assert_eq!(drops.get_metric()[0].get_counter().get_value(), 5.0);
    }

    #[test]
    fn poll_latency_log2_buckets_become_cumulative_seconds() {
        let mut h = HistogramSnapshot::default();
        h.buckets[3] = 2; // 4..=7 ns: below the first bound, folded into it
        h.buckets[10] = 5; // 512..=1023 ns
        h.buckets[40] = 1; // beyond the last bound: only in +Inf
        h.sum = 2_000_000_000;
        let s = EngineSnapshot {
            workers: vec![WorkerSnapshot {
                index: 3,
                poll_latency_ns: h,
                ..Default::default()
            }],
            ..Default::default()
        };
        let fams = snapshot_families(Some(&s));
        let fam = fams
            .iter()
            .find(|f| f.get_name() == WORKER_POLL_LATENCY)
            .unwrap();
        assert_eq!(fam.get_field_type(), MetricType::HISTOGRAM);
        let m = &fam.get_metric()[0];
        assert_eq!(m.get_label()[0].get_value(), "3");
        let hist = m.get_histogram();
        assert_eq!(hist.get_sample_count(), 8);
        assert_eq!(hist.get_sample_sum(), 2.0);
        let b = hist.get_bucket();
        assert_eq!(b.len(), POLL_LATENCY_LOG2_BUCKETS.count());
        assert_eq!(b[0].get_upper_bound(), 255e-9);
        assert_eq!(b[0].get_cumulative_count(), 2);
        assert_eq!(b[1].get_upper_bound(), 511e-9);
        assert_eq!(b[1].get_cumulative_count(), 2);
        assert_eq!(b[2].get_upper_bound(), 1023e-9);
        assert_eq!(b[2].get_cumulative_count(), 7);
        assert_eq!(b.last().unwrap().get_cumulative_count(), 7);
    }

    /// Every name of the WireGuard contract becomes exactly one sample, in
    /// a family of the right type with the contract's parts as labels.
    #[test]
    fn every_wireguard_counter_becomes_a_sample() {
        use patronus_shm::wg_counters::{
            wg_peer_counter_name, wg_peer_drop_name, wg_tunnel_counter_name, wg_tunnel_drop_name,
            WG_COUNTER_PREFIX, WG_DROP_REASONS, WG_PEER_COUNTERS, WG_TUNNEL_COUNTERS,
        };
        for c in WG_PEER_COUNTERS {
            assert!(WG_PEER_METRICS.iter().any(|(n, _)| *n == c), "{c}");
        }
        for c in WG_TUNNEL_COUNTERS {
            assert!(WG_TUNNEL_METRICS.iter().any(|(n, _)| *n == c), "{c}");
        }
        let (tunnel, peer) = ("wg0", "hSDw+/v7");
        let mut names: Vec<String> = WG_PEER_COUNTERS
            .iter()
            .map(|c| wg_peer_counter_name(tunnel, peer, c))
            .collect();
        names.extend(
            WG_DROP_REASONS
                .iter()
                .map(|r| wg_peer_drop_name(tunnel, peer, r)),
        );
        names.extend(
            WG_TUNNEL_COUNTERS
                .iter()
                .map(|c| wg_tunnel_counter_name(tunnel, c)),
        );
        names.extend(
            WG_DROP_REASONS
                .iter()
                .map(|r| wg_tunnel_drop_name(tunnel, r)),
        );
        let wg: Vec<(String, u64)> = names
            .iter()
            .zip(1..)
            .map(|(n, v)| (n.strip_prefix(WG_COUNTER_PREFIX).unwrap().to_owned(), v))
            .collect();
        let s = EngineSnapshot {
            wg: wg.clone(),
            ..Default::default()
        };
        let fams = snapshot_families(Some(&s));
        let mut values: Vec<u64> = Vec::new();
        for fam in fams
            .iter()
            .filter(|f| f.get_name().starts_with("patronus_wg_"))
        {
            let gauge = fam.get_name() == WG_PEER_LAST_HANDSHAKE;
            let kind = if gauge {
                MetricType::GAUGE
            } else {
                MetricType::COUNTER
            };
            assert_eq!(fam.get_field_type(), kind, "{}", fam.get_name());
            for m in fam.get_metric() {
                let labels: Vec<_> = m.get_label().iter().map(|l| l.get_value()).collect();
                assert_eq!(labels[0], tunnel);
                if fam.get_name().starts_with("patronus_wg_peer_") {
                    assert_eq!(labels[1], peer);
                }
                let v = if gauge {
                    m.get_gauge().get_value()
                } else {
                    m.get_counter().get_value()
                };
                values.push(v as u64);
            }
        }
        values.sort_unstable();
        let all: Vec<u64> = (1..=wg.len() as u64).collect();
        assert_eq!(values, all, "each counter once");
    }

    /// Every name of the classification contract becomes exactly one
    /// sample of the right family and type; every class gets its series.
    #[test]
    fn every_classify_counter_becomes_a_sample() {
        use patronus_shm::classify_counters::{
            classify_counter_names, CLASSIFY_COUNTERS, CLASSIFY_COUNTER_PREFIX, CLASSIFY_GAUGES,
        };
        use patronus_shm::flow_query::FLOW_CLASSES;
        for c in CLASSIFY_COUNTERS {
            assert!(CLASSIFY_METRICS.iter().any(|(n, _)| *n == c), "{c}");
        }
        let classify: Vec<(String, u64)> = classify_counter_names()
            .into_iter()
            .zip(1..)
            .map(|(n, v)| (n.strip_prefix(CLASSIFY_COUNTER_PREFIX).unwrap().into(), v))
            .collect();
        let s = EngineSnapshot {
            classify: classify.clone(),
            ..Default::default()
        };
        let fams = snapshot_families(Some(&s));
        let mut values = Vec::new();
        for fam in fams
            .iter()
            .filter(|f| f.get_name().starts_with("patronus_classify_"))
        {
            let name = fam.get_name();
            let counter = CLASSIFY_METRICS.iter().find(|(_, f)| *f == name);
            let gauge = counter.is_some_and(|(c, _)| CLASSIFY_GAUGES.contains(c));
            let kind = if gauge {
                MetricType::GAUGE
            } else {
                MetricType::COUNTER
            };
            assert_eq!(fam.get_field_type(), kind, "{name}");
            if counter.is_none() {
                let classes: Vec<_> = fam
                    .get_metric()
                    .iter()
                    .map(|m| m.get_label()[0].get_value().to_owned())
                    .collect();
                let mut want: Vec<_> = FLOW_CLASSES.iter().map(|c| c.to_string()).collect();
                want.sort();
                assert_eq!(classes, want, "{name}");
            }
            for m in fam.get_metric() {
                values.push(if gauge {
                    m.get_gauge().get_value()
                } else {
                    m.get_counter().get_value()
                } as u64);
            }
        }
        values.sort_unstable();
        let all: Vec<u64> = (1..=classify.len() as u64).collect();
        assert_eq!(values, all, "each counter once");
        // flows_created is the contract's first name, tls's flows the
        // 9 + 3 + 1 = 13th.
        let value = |name: &str, class: Option<&str>| {
            let fam = fams.iter().find(|f| f.get_name() == name).unwrap();
            let m = fam
                .get_metric()
                .iter()
                .find(|m| class.is_none_or(|c| m.get_label()[0].get_value() == c))
                .unwrap();
            m.get_counter().get_value()
        };
        assert_eq!(value(CLASSIFY_FLOWS_CREATED, None), 1.0);
        assert_eq!(value(CLASSIFY_FLOWS, Some("tls")), 13.0);
        assert_eq!(value(CLASSIFY_BYTES, Some("tls")), 15.0);
    }

    #[test]
    fn no_classify_series_without_classify_counters() {
        let fams = snapshot_families(Some(&EngineSnapshot::default()));
        for fam in fams
            .iter()
            .filter(|f| f.get_name().starts_with("patronus_classify_"))
        {
            assert!(fam.get_metric().is_empty(), "{}", fam.get_name());
        }
    }

    #[test]
    fn idle_worker_ratio_is_zero_not_nan() {
        let s = EngineSnapshot {
            workers: vec![WorkerSnapshot::default()],
            ..Default::default()
        };
        let fams = snapshot_families(Some(&s));
        let ratio = fams
            .iter()
            .find(|f| f.get_name() == WORKER_BUSY_RATIO)
            .unwrap();
        assert_eq!(ratio.get_metric()[0].get_gauge().get_value(), 0.0);
    }
}
