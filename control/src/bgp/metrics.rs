//! BGP metrics (`patronus_bgp_*`): refreshed from the speaker before each
//! scrape ([`BgpRefresher`]), reported by [`BgpCollector`]. Session state
//! is one gauge per neighbour holding RFC 4271's state number (Idle 1,
//! Connect 2, Active 3, OpenSent 4, OpenConfirm 5, Established 6).

use std::sync::{Arc, Mutex};

use prometheus::core::{Collector, Desc};
use prometheus::proto::{MetricFamily, MetricType};

use crate::metrics::family::FamilySpec;

use super::runtime::{neighbor_view, state_number, SpeakerStatus};
use super::speaker::NeighborStatus;
use super::status::BgpSummary;

pub const BGP_SESSION_STATE: &str = "patronus_bgp_session_state";
pub const BGP_SESSION_ESTABLISHED: &str = "patronus_bgp_session_established";
pub const BGP_PREFIXES_RECEIVED: &str = "patronus_bgp_prefixes_received";
pub const BGP_PREFIXES_ACCEPTED: &str = "patronus_bgp_prefixes_accepted";
pub const BGP_PREFIXES_ADVERTISED: &str = "patronus_bgp_prefixes_advertised";
pub const BGP_UPDATES_RECEIVED: &str = "patronus_bgp_updates_received_total";
pub const BGP_UPDATES_SENT: &str = "patronus_bgp_updates_sent_total";
pub const BGP_SELECTED_ROUTES: &str = "patronus_bgp_selected_routes";
pub const BGP_INSTALLED_ROUTES: &str = "patronus_bgp_installed_routes";

const FAMILIES: &[FamilySpec] = &[
    (
        BGP_SESSION_STATE,
        "BGP session state by RFC 4271 number: 1 Idle, 2 Connect, 3 Active, 4 OpenSent, 5 OpenConfirm, 6 Established.",
        MetricType::GAUGE,
        &["neighbor"],
    ),
    (
        BGP_SESSION_ESTABLISHED,
        "1 while the BGP session is Established.",
        MetricType::GAUGE,
        &["neighbor"],
    ),
    (
        BGP_PREFIXES_RECEIVED,
        "Prefixes the neighbor announces now (before import policy).",
        MetricType::GAUGE,
        &["neighbor", "afi"],
    ),
    (
        BGP_PREFIXES_ACCEPTED,
        "Prefixes of the neighbor accepted by import policy.",
        MetricType::GAUGE,
        &["neighbor", "afi"],
    ),
    (
        BGP_PREFIXES_ADVERTISED,
        "Prefixes advertised to the neighbor now (after export policy).",
        MetricType::GAUGE,
        &["neighbor", "afi"],
    ),
    (
        BGP_UPDATES_RECEIVED,
        "UPDATE messages received from the neighbor.",
        MetricType::COUNTER,
        &["neighbor"],
    ),
    (
        BGP_UPDATES_SENT,
        "UPDATE messages sent to the neighbor.",
        MetricType::COUNTER,
        &["neighbor"],
    ),
    (
        BGP_SELECTED_ROUTES,
        "Best paths learned from neighbors (what goes to the engine's FIB).",
        MetricType::GAUGE,
        &["afi"],
    ),
    (
        BGP_INSTALLED_ROUTES,
        "BGP routes in the newest table every live engine worker acknowledged.",
        MetricType::GAUGE,
        &["afi"],
    ),
];

/// What a scrape shows (None: BGP not running).
#[derive(Debug, Default, Clone)]
struct Snapshot {
    neighbors: Vec<NeighborStatus>,
    summary: Option<BgpSummary>,
}

/// Reports the BGP families.
pub struct BgpCollector {
    status: SpeakerStatus,
    snapshot: Arc<Mutex<Snapshot>>,
    descs: Vec<Desc>,
}

impl std::fmt::Debug for BgpCollector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BgpCollector").finish_non_exhaustive()
    }
}

impl BgpCollector {
    pub fn new(status: SpeakerStatus) -> prometheus::Result<Self> {
        let descs = crate::metrics::family::descs(FAMILIES)?;
        Ok(BgpCollector {
            status,
            snapshot: Arc::new(Mutex::new(Snapshot::default())),
            descs,
        })
    }

    pub fn refresher(&self) -> BgpRefresher {
        BgpRefresher {
            status: self.status.clone(),
            snapshot: self.snapshot.clone(),
        }
    }
}

/// Asks the speaker before a scrape.
#[derive(Clone)]
pub struct BgpRefresher {
    status: SpeakerStatus,
    snapshot: Arc<Mutex<Snapshot>>,
}

impl std::fmt::Debug for BgpRefresher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BgpRefresher").finish_non_exhaustive()
    }
}

impl BgpRefresher {
    pub async fn refresh(&self) {
        let running = self.status.running.borrow().is_some();
        let fresh = if running {
            Snapshot {
                neighbors: self.status.neighbors().await,
                summary: Some(self.status.summary_now().await),
            }
        } else {
            Snapshot::default()
        };
        *self.snapshot.lock().unwrap_or_else(|e| e.into_inner()) = fresh;
    }
}

impl Collector for BgpCollector {
    fn desc(&self) -> Vec<&Desc> {
        self.descs.iter().collect()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        let mut scrape = crate::metrics::family::Scrape::new(FAMILIES);
        let mut add =
            |name: &str, labels: &[(&str, &str)], value: f64| scrape.add(name, labels, value);
        let snap = self
            .snapshot
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        for n in &snap.neighbors {
            let addr = n.address.to_string();
            let view = neighbor_view(n);
            let nb = [("neighbor", addr.as_str())];
            add(BGP_SESSION_STATE, &nb, f64::from(state_number(view.state)));
            add(
                BGP_SESSION_ESTABLISHED,
                &nb,
                f64::from(u8::from(state_number(view.state) == 6)),
            );
            for (i, afi) in ["ipv4", "ipv6"].iter().enumerate() {
                let l = [("neighbor", addr.as_str()), ("afi", *afi)];
                add(BGP_PREFIXES_RECEIVED, &l, n.received_by_afi[i] as f64);
                add(BGP_PREFIXES_ACCEPTED, &l, n.accepted_by_afi[i] as f64);
                add(BGP_PREFIXES_ADVERTISED, &l, n.advertised_by_afi[i] as f64);
            }
            add(BGP_UPDATES_RECEIVED, &nb, n.counters.updates_in as f64);
            add(BGP_UPDATES_SENT, &nb, n.counters.updates_out as f64);
        }
        if let Some(s) = &snap.summary {
            add(
                BGP_SELECTED_ROUTES,
                &[("afi", "ipv4")],
                s.selected_routes.ipv4 as f64,
            );
            add(
                BGP_SELECTED_ROUTES,
                &[("afi", "ipv6")],
                s.selected_routes.ipv6 as f64,
            );
            add(
                BGP_INSTALLED_ROUTES,
                &[("afi", "ipv4")],
                s.installed_routes.ipv4 as f64,
            );
            add(
                BGP_INSTALLED_ROUTES,
                &[("afi", "ipv6")],
                s.installed_routes.ipv6 as f64,
            );
        }
        scrape.finish()
    }
}
