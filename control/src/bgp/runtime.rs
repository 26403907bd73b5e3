//! [`BgpStatus`] over the supervised speaker: neighbour state and
//! counters, RIB pages and the summary (with what the engine installed:
//! the BGP routes of the newest generation every live worker
//! acknowledged).

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::Duration;

use patronus_bgp::fsm::State;
use patronus_bgp::types::Afi;
use tokio::sync::watch;

use super::fib_link::Route6Installed;
use super::model::Family;
use super::speaker::{self, SpeakerHandle};
use super::status::{
    BgpStatus, BgpSummary, BoxFuture, FamilyCounts, NeighborCounters, NeighborCounts,
    NeighborStatus, RibPage, RibQuery, SessionState, StatusError,
};
use super::supervisor::Running;
use crate::metrics::EngineSource;
use crate::push::{BgpInstalled, SharedPublisher};

/// Most time the speaker gets to answer.
pub const ANSWER_TIMEOUT: Duration = Duration::from_secs(10);

/// The status side of `--bgp`.
#[derive(Clone)]
pub struct SpeakerStatus {
    pub running: watch::Receiver<Option<Running>>,
    pub publisher: Option<SharedPublisher>,
    pub engine: Option<Arc<dyn EngineSource>>,
    pub installed: BgpInstalled,
    pub route6: Route6Installed,
}

pub fn session_state(s: State) -> SessionState {
    match s {
        State::Idle => SessionState::Idle,
        State::Connect => SessionState::Connect,
        State::Active => SessionState::Active,
        State::OpenSent => SessionState::OpenSent,
        State::OpenConfirm => SessionState::OpenConfirm,
        State::Established => SessionState::Established,
    }
}

/// RFC 4271's numbering of the states (Idle 1 … Established 6).
pub fn state_number(s: SessionState) -> u8 {
    match s {
        SessionState::Idle => 1,
        SessionState::Connect => 2,
        SessionState::Active => 3,
        SessionState::OpenSent => 4,
        SessionState::OpenConfirm => 5,
        SessionState::Established => 6,
    }
}

/// The API's form of the speaker's neighbour status.
pub fn neighbor_view(n: &speaker::NeighborStatus) -> NeighborStatus {
    let c = &n.counters;
    NeighborStatus {
        address: n.address,
        state: session_state(n.state),
        uptime_secs: n.uptime.map(|u| u.as_secs()),
        remote_router_id: n.router_id,
        hold_time_secs: n.hold_time,
        families: n
            .families
            .iter()
            .map(|a| match a {
                Afi::Ipv4 => Family::Ipv4Unicast,
                Afi::Ipv6 => Family::Ipv6Unicast,
            })
            .collect(),
        graceful_restart_active: n.graceful_restart_active,
        last_error: n
            .last_notification
            .map(|(code, sub)| format!("NOTIFICATION {code}/{sub}")),
        counters: NeighborCounters {
            // The speaker counts UPDATEs and NOTIFICATIONs (keepalives and
            // OPENs are not counted).
            messages_received: c.updates_in + c.notifications_in,
            messages_sent: c.updates_out + c.notifications_out,
            updates_received: c.updates_in,
            updates_sent: c.updates_out,
            notifications_received: c.notifications_in,
            notifications_sent: c.notifications_out,
            established_transitions: c.established_transitions,
            prefixes_received: c.prefixes_received,
            prefixes_accepted: c.prefixes_accepted,
            prefixes_advertised: c.prefixes_advertised,
        },
    }
}

fn unavailable(_: speaker::Stopped) -> StatusError {
    StatusError::Unavailable("the speaker stopped".into())
}

async fn timed<T>(
    f: impl std::future::Future<Output = Result<T, speaker::Stopped>>,
) -> Result<T, StatusError> {
    match tokio::time::timeout(ANSWER_TIMEOUT, f).await {
        Ok(r) => r.map_err(unavailable),
        Err(_) => Err(StatusError::Unavailable("timed out".into())),
    }
}

/// BGP routes of the newest logged generation not newer than `acked`.
fn installed_at(log: &BgpInstalled, acked: u64) -> Option<(u64, u64)> {
    let log = log.lock().unwrap_or_else(|e| e.into_inner());
    log.iter().rev().find(|(g, _)| *g <= acked).copied()
}

impl SpeakerStatus {
    fn handle(&self) -> Result<SpeakerHandle, StatusError> {
        self.running
            .borrow()
            .as_ref()
            .map(|r| r.handle.clone())
            .ok_or(StatusError::NotRunning)
    }

    /// Every neighbour's state (empty when no speaker runs).
    pub async fn neighbors(&self) -> Vec<speaker::NeighborStatus> {
        match self.handle() {
            // As published (≤ 100 ms old): a scrape must not wait behind a flood.
            Ok(h) => h.status().neighbors.clone(),
            Err(_) => Vec::new(),
        }
    }

    /// IPv4: (generation every live worker acknowledged, BGP routes in it).
    async fn installed4(&self) -> (u64, u64) {
        let Some(p) = self.publisher.clone() else {
            return (0, 0);
        };
        let acked = tokio::task::spawn_blocking(move || {
            let p = p.lock().ok()?;
            let workers = p.workers_at(patronus_shm::monotonic_ms());
            workers
                .iter()
                .filter(|w| w.live)
                .map(|w| w.acked_generation)
                .min()
        })
        .await
        .ok()
        .flatten();
        acked
            .and_then(|a| installed_at(&self.installed, a))
            .unwrap_or((0, 0))
    }

    fn installed6(&self) -> u64 {
        let acked = self
            .engine
            .as_ref()
            .and_then(|e| e.snapshot())
            .and_then(|s| s.route6_generation);
        acked
            .and_then(|a| installed_at(&self.route6, a))
            .map_or(0, |(_, n)| n)
    }

    /// The summary (also what the metrics show).
    pub async fn summary_now(&self) -> BgpSummary {
        let running = self.running.borrow().clone();
        let Some(r) = running else {
            return BgpSummary {
                running: false,
                local_as: 0,
                router_id: Ipv4Addr::UNSPECIFIED,
                neighbors: NeighborCounts::default(),
                selected_routes: FamilyCounts::default(),
                installed_routes: FamilyCounts::default(),
                installed_generation: 0,
            };
        };
        // The published status, not a question to the instance: during a
        // full-table flood its inbox is seconds deep.
        let status = r.handle.status();
        let (neighbors, stats) = (&status.neighbors, status.stats);
        let (generation, installed4) = self.installed4().await;
        BgpSummary {
            running: true,
            local_as: r.local_as,
            router_id: r.router_id,
            neighbors: NeighborCounts {
                configured: r.configured as u64,
                established: neighbors
                    .iter()
                    .filter(|n| n.state == State::Established)
                    .count() as u64,
            },
            selected_routes: FamilyCounts {
                ipv4: stats.selected_ipv4,
                ipv6: stats.selected_ipv6,
            },
            installed_routes: FamilyCounts {
                ipv4: installed4,
                ipv6: self.installed6(),
            },
            installed_generation: generation,
        }
    }
}

impl BgpStatus for SpeakerStatus {
    fn neighbor(&self, address: IpAddr) -> BoxFuture<'_, Result<NeighborStatus, StatusError>> {
        Box::pin(async move {
            let h = self.handle()?;
            let status = h.status();
            status
                .neighbors
                .iter()
                .find(|n| n.address.to_canonical() == address.to_canonical())
                .map(neighbor_view)
                .ok_or(StatusError::NoSuchNeighbor(address))
        })
    }

    fn rib(&self, query: RibQuery) -> BoxFuture<'_, Result<RibPage, StatusError>> {
        Box::pin(async move {
            let h = self.handle()?;
            timed(h.rib(query)).await?
        })
    }

    fn summary(&self) -> BoxFuture<'_, Result<BgpSummary, StatusError>> {
        Box::pin(async move { Ok(self.summary_now().await) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::VecDeque;
    use std::sync::Mutex;

    #[test]
    fn installed_is_the_newest_generation_not_past_the_acked_one() {
        let log: BgpInstalled =
            Arc::new(Mutex::new(VecDeque::from(vec![(3, 0), (5, 10), (9, 20)])));
        assert_eq!(installed_at(&log, 2), None);
        assert_eq!(installed_at(&log, 5), Some((5, 10)));
        assert_eq!(installed_at(&log, 8), Some((5, 10)));
        assert_eq!(installed_at(&log, 100), Some((9, 20)));
    }
}
