//! The instance actor: owns the RIB, the policies and every neighbour's
//! export state; handles the sessions' reports and the handle's requests
//! one at a time (`process_*`), publishes the selected routes, and sends
//! each session the UPDATEs it must write.

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::IpAddr;
use std::sync::Arc;

use patronus_bgp::fsm::{AfiSet, Negotiated, Session, SessionDown, State};
use patronus_bgp::policy::{evaluate, Policy, PolicyCounters, RouteContext};
use patronus_bgp::rib::{NextHopResolver, PeerId, PeerInfo, Rib, RibChange, RibConfig, Selected};
use patronus_bgp::types::{Afi, PathAttributes, Prefix};
use patronus_bgp::wire::{Message, RouteRefresh, SessionContext, Update, UpdateOutcome};
use tokio::sync::{broadcast, mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::{sleep, sleep_until, Duration, Instant};

use super::config::{NeighborConfig, SpeakerConfig};
use super::export::{encode_updates, end_of_rib, export_route, ExportTarget, Source};
use super::handle::{
    NeighborCounters, NeighborStatus, RouteChange, RouteTable, SpeakerStats, SpeakerStatus,
};
use super::messages::{InstanceMsg, NeighborIndex, SessionCmd};
use super::session::{SessionParams, SessionTask};

/// Most delay between a change of the selected routes and its snapshot
/// in [`super::SpeakerHandle::routes`].
pub const PUBLISH_INTERVAL: Duration = Duration::from_millis(50);
/// Most a published [`SpeakerStatus`] lags behind the instance.
pub const STATUS_INTERVAL: Duration = Duration::from_millis(100);
/// Capacity of each session's command channel.
pub const SESSION_QUEUE: usize = 256;
/// How soon a command a full session queue refused is offered again.
const BACKLOG_RETRY: Duration = Duration::from_millis(5);

/// A session that is Established, as export needs it.
struct Up {
    epoch: u64,
    since: Instant,
    ctx: SessionContext,
    route_ctx: RouteContext,
    router_id: std::net::Ipv4Addr,
    hold_time: u16,
    families: AfiSet,
    route_refresh: bool,
}

struct Neighbor {
    cfg: NeighborConfig,
    peer_id: PeerId,
    ebgp: bool,
    cmd: mpsc::Sender<SessionCmd>,
    /// Commands the session's full queue refused, offered again in order
    /// (the instance never waits on a session: sessions wait on it).
    backlog: VecDeque<SessionCmd>,
    join: Option<JoinHandle<()>>,
    state: State,
    up: Option<Up>,
    /// What we announced to it (Adj-RIB-Out).
    adj_out: HashMap<Prefix, Arc<PathAttributes>>,
    /// Prefixes it announces that import policy refused.
    rejected: HashSet<Prefix>,
    counters: NeighborCounters,
    import_counters: PolicyCounters,
    export_counters: PolicyCounters,
    last_notification: Option<(u8, u8)>,
    /// Removed by live reconfiguration: its slot stays (indices are
    /// stable) but nothing of it is used; late reports of its session
    /// are ignored.
    removed: bool,
}

impl Neighbor {
    fn queue(&mut self, cmd: SessionCmd) {
        if !self.backlog.is_empty() {
            self.backlog.push_back(cmd);
            return;
        }
        match self.cmd.try_send(cmd) {
            Ok(()) | Err(mpsc::error::TrySendError::Closed(_)) => {}
            Err(mpsc::error::TrySendError::Full(cmd)) => self.backlog.push_back(cmd),
        }
    }

    fn flush_backlog(&mut self) {
        while let Some(cmd) = self.backlog.pop_front() {
            match self.cmd.try_send(cmd) {
                Ok(()) => {}
                Err(mpsc::error::TrySendError::Closed(_)) => self.backlog.clear(),
                Err(mpsc::error::TrySendError::Full(cmd)) => {
                    self.backlog.push_front(cmd);
                    return;
                }
            }
        }
    }
}

/// One neighbour's share of a batch of RIB changes.
#[derive(Clone, Default)]
struct Outbound {
    withdraw: Vec<Prefix>,
    announce: Vec<(Prefix, Arc<PathAttributes>)>,
}

pub struct Instance {
    local_as: u32,
    router_id: std::net::Ipv4Addr,
    /// For the sessions of neighbours added later (weak: the instance
    /// must not keep its own inbox open).
    self_tx: mpsc::WeakSender<InstanceMsg>,
    /// Originated networks.
    networks: HashSet<Prefix>,
    /// Sequence number of the last [`RouteChange`] sent.
    seq: u64,
    /// Selected routes in `table` by family (IPv4, IPv6).
    selected: [u64; 2],
    /// Time between snapshots: grows with the cost of copying the table
    /// so a full table does not spend the instance on copies.
    publish_interval: Duration,
    rib: Rib,
    resolver: Box<dyn NextHopResolver + Send>,
    neighbors: Vec<Neighbor>,
    by_addr: HashMap<IpAddr, NeighborIndex>,
    rx: mpsc::Receiver<InstanceMsg>,
    table: RouteTable,
    routes_tx: watch::Sender<Arc<RouteTable>>,
    changes_tx: broadcast::Sender<RouteChange>,
    publish_at: Option<Instant>,
    changes: Vec<RibChange>,
    listener: Option<tokio::task::AbortHandle>,
    status_tx: Option<watch::Sender<Arc<SpeakerStatus>>>,
    /// When the next status is due (something changed since the last).
    status_at: Option<Instant>,
}

impl Instance {
    /// Builds the instance and spawns a session task per neighbour.
    pub fn new(
        cfg: &SpeakerConfig,
        resolver: Box<dyn NextHopResolver + Send>,
        rx: mpsc::Receiver<InstanceMsg>,
        self_tx: &mpsc::Sender<InstanceMsg>,
        routes_tx: watch::Sender<Arc<RouteTable>>,
        changes_tx: broadcast::Sender<RouteChange>,
    ) -> Instance {
        let rib = Rib::new(RibConfig {
            local_id: cfg.router_id,
            select: patronus_bgp::rib::SelectConfig {
                local_as: cfg.local_as,
                max_paths: cfg.max_paths,
                ..Default::default()
            },
        });
        let mut inst = Instance {
            local_as: cfg.local_as,
            router_id: cfg.router_id,
            self_tx: self_tx.downgrade(),
            networks: HashSet::new(),
            seq: 0,
            selected: [0; 2],
            publish_interval: PUBLISH_INTERVAL,
            rib,
            resolver,
            neighbors: Vec::new(),
            by_addr: HashMap::new(),
            rx,
            table: RouteTable::new(),
            routes_tx,
            changes_tx,
            publish_at: None,
            changes: Vec::new(),
            listener: None,
            status_tx: None,
            status_at: None,
        };
        for n in &cfg.neighbors {
            inst.add_neighbor(n.clone());
        }
        inst.set_networks(cfg.networks.clone());
        inst
    }

    /// Starts a session for `n` (ignored when its address is configured).
    fn add_neighbor(&mut self, n: NeighborConfig) {
        let key = n.address.to_canonical();
        if self.by_addr.contains_key(&key) {
            tracing::warn!(peer = %n.address, "BGP: neighbor already configured");
            return;
        }
        let Some(self_tx) = self.self_tx.upgrade() else {
            return;
        };
        let i = self.neighbors.len();
        let peer_id = self.rib.add_peer(PeerInfo {
            address: n.address,
            bgp_id: std::net::Ipv4Addr::UNSPECIFIED,
            asn: n.remote_as,
        });
        let mut scfg = SpeakerConfig::new(self.local_as, self.router_id);
        scfg.listen = None;
        let (tx, crx) = mpsc::channel(SESSION_QUEUE);
        let task = SessionTask::new(
            SessionParams {
                peer: i,
                address: n.address,
                port: n.port,
                local_address: n.local_address,
                fsm: Session::new(n.session_config(&scfg)),
            },
            crx,
            self_tx,
        );
        self.by_addr.insert(key, i);
        self.neighbors.push(Neighbor {
            ebgp: n.is_ebgp(self.local_as),
            cfg: n,
            peer_id,
            cmd: tx,
            backlog: VecDeque::new(),
            join: Some(tokio::spawn(task.run())),
            state: State::Idle,
            up: None,
            adj_out: HashMap::new(),
            rejected: HashSet::new(),
            counters: NeighborCounters::default(),
            import_counters: PolicyCounters::default(),
            export_counters: PolicyCounters::default(),
            last_notification: None,
            removed: false,
        });
    }

    /// Stops the neighbour's session and withdraws its routes.
    fn remove_neighbor(&mut self, address: IpAddr) {
        let Some(i) = self.by_addr.remove(&address.to_canonical()) else {
            return;
        };
        let n = &mut self.neighbors[i];
        n.removed = true;
        n.up = None;
        n.adj_out = HashMap::new();
        n.rejected = HashSet::new();
        n.backlog.clear();
        n.queue(SessionCmd::Stop);
        // The task ends on its own; its last reports are ignored.
        n.join = None;
        let id = n.peer_id;
        self.rib.remove_peer(id, &*self.resolver, &mut self.changes);
        self.apply_changes();
    }

    /// Originates exactly `networks`.
    fn set_networks(&mut self, networks: Vec<Prefix>) {
        let want: HashSet<Prefix> = networks.into_iter().collect();
        let gone: Vec<Prefix> = self.networks.difference(&want).copied().collect();
        for p in gone {
            self.rib
                .stop_originating(p, &*self.resolver, &mut self.changes);
        }
        for p in want.difference(&self.networks) {
            let attrs = Arc::new(PathAttributes::default());
            self.rib
                .originate(*p, attrs, &*self.resolver, &mut self.changes);
        }
        self.networks = want;
        self.apply_changes();
    }

    /// New policies for a neighbour, applied without a session reset
    /// where the peer allows.
    fn set_policies(&mut self, address: IpAddr, import: Option<Policy>, export: Option<Policy>) {
        let Some(&i) = self.by_addr.get(&address.to_canonical()) else {
            return;
        };
        let n = &mut self.neighbors[i];
        n.cfg.import = import;
        n.cfg.export = export;
        let Some(up) = n.up.as_ref() else { return };
        let epoch = up.epoch;
        if up.route_refresh {
            // Import: the peer re-sends its routes, which meet the new
            // policy (accepted ones replace, refused ones are withdrawn).
            let mut messages = Vec::new();
            for afi in up.families.iter() {
                if let Ok(b) = Message::RouteRefresh(RouteRefresh::unicast(afi)).to_bytes(&up.ctx) {
                    messages.push(b);
                }
            }
            n.queue(SessionCmd::Send { epoch, messages });
        } else {
            tracing::info!(peer = %address, "BGP: peer without route refresh: session reset for the new import policy");
            let cfg = n.cfg.clone();
            self.remove_neighbor(address);
            self.add_neighbor(cfg);
            return;
        }
        self.reexport(i);
    }

    /// Re-runs export over the Loc-RIB for one neighbour and sends the
    /// difference from what it was sent.
    fn reexport(&mut self, peer: NeighborIndex) {
        if self.neighbors[peer].up.is_none() {
            return;
        }
        let routes: Vec<(Prefix, Selected)> = self.rib.loc_rib().map(|(p, s)| (*p, s)).collect();
        let mut want: HashMap<Prefix, PathAttributes> = HashMap::new();
        for (prefix, selected) in &routes {
            if let Some(a) = self.export_for(peer, prefix, selected) {
                want.insert(*prefix, a);
            }
        }
        let n = &mut self.neighbors[peer];
        let mut out = Outbound::default();
        let gone: Vec<Prefix> = n
            .adj_out
            .keys()
            .filter(|p| !want.contains_key(p))
            .copied()
            .collect();
        for p in gone {
            n.adj_out.remove(&p);
            out.withdraw.push(p);
        }
        for (p, a) in want {
            if n.adj_out.get(&p).is_some_and(|old| **old == a) {
                continue;
            }
            let a = Arc::new(a);
            n.adj_out.insert(p, a.clone());
            out.announce.push((p, a));
        }
        let Some(up) = n.up.as_ref() else { return };
        if out.withdraw.is_empty() && out.announce.is_empty() {
            return;
        }
        let epoch = up.epoch;
        let messages = encode_updates(&up.ctx, &out.withdraw, &out.announce);
        n.counters.updates_out += messages.len() as u64;
        n.queue(SessionCmd::Send { epoch, messages });
    }

    /// Where the instance publishes its [`SpeakerStatus`] (first one now).
    pub fn set_status_channel(&mut self, tx: watch::Sender<Arc<SpeakerStatus>>) {
        self.status_tx = Some(tx);
        self.publish_status();
    }

    fn publish_status(&mut self) {
        self.status_at = None;
        if let Some(tx) = &self.status_tx {
            tx.send_replace(Arc::new(SpeakerStatus {
                neighbors: self.statuses(),
                stats: SpeakerStats {
                    selected_ipv4: self.selected[0],
                    selected_ipv6: self.selected[1],
                },
            }));
        }
    }

    /// The listener task, stopped with the instance.
    pub fn set_listener(&mut self, listener: tokio::task::AbortHandle) {
        self.listener = Some(listener);
    }

    /// The event loop: one message at a time.
    pub async fn run(mut self) {
        loop {
            let mut backlog = false;
            for n in &mut self.neighbors {
                n.flush_backlog();
                backlog |= !n.backlog.is_empty();
            }
            let publish_at = self.publish_at;
            let status_at = self.status_at;
            tokio::select! {
                m = self.rx.recv() => match m {
                    None => break,
                    Some(InstanceMsg::Shutdown(done)) => {
                        self.shutdown().await;
                        let _ = done.send(());
                        break;
                    }
                    Some(m) => {
                        let query = matches!(
                            m,
                            InstanceMsg::Neighbors(_)
                                | InstanceMsg::Stats(_)
                                | InstanceMsg::Rib(..)
                                | InstanceMsg::Snapshot(_)
                        );
                        self.process(m);
                        if !query && self.status_at.is_none() {
                            self.status_at = Some(Instant::now() + STATUS_INTERVAL);
                        }
                    }
                },
                () = async { sleep_until(status_at.unwrap_or_else(Instant::now)).await }, if status_at.is_some() => {
                    self.publish_status();
                }
                () = async { sleep_until(publish_at.unwrap_or_else(Instant::now)).await }, if publish_at.is_some() => {
                    self.publish();
                }
                () = sleep(BACKLOG_RETRY), if backlog => {}
            }
        }
        self.publish();
        self.publish_status();
    }

    fn publish(&mut self) {
        self.publish_at = None;
        let start = Instant::now();
        self.routes_tx.send_replace(Arc::new(self.table.clone()));
        // At most about a tenth of the instance's time goes to copies.
        self.publish_interval = PUBLISH_INTERVAL.max(start.elapsed() * 10);
    }

    async fn shutdown(&mut self) {
        if let Some(l) = self.listener.take() {
            l.abort();
        }
        for n in &mut self.neighbors {
            n.backlog.clear();
            n.queue(SessionCmd::Stop);
        }
        // Sessions may be waiting to report to us: keep draining.
        for i in 0..self.neighbors.len() {
            if self.neighbors[i].removed {
                continue;
            }
            let Some(mut join) = self.neighbors[i].join.take() else {
                continue;
            };
            loop {
                tokio::select! {
                    _ = &mut join => break,
                    m = self.rx.recv() => if m.is_none() { break },
                    () = sleep(BACKLOG_RETRY) => self.neighbors[i].flush_backlog(),
                }
            }
        }
    }

    fn process(&mut self, m: InstanceMsg) {
        let peer = match &m {
            InstanceMsg::State { peer, .. }
            | InstanceMsg::SessionUp { peer, .. }
            | InstanceMsg::SessionDown { peer, .. }
            | InstanceMsg::SweepStale { peer, .. }
            | InstanceMsg::Update { peer, .. }
            | InstanceMsg::EndOfRib { peer, .. }
            | InstanceMsg::RouteRefresh { peer, .. }
            | InstanceMsg::Notification { peer, .. } => Some(*peer),
            _ => None,
        };
        if peer.is_some_and(|p| self.neighbors.get(p).is_none_or(|n| n.removed)) {
            return;
        }
        match m {
            InstanceMsg::Incoming(conn) => match self.by_addr.get(&conn.remote.to_canonical()) {
                Some(&i) => self.neighbors[i].queue(SessionCmd::Incoming(conn)),
                None => {
                    tracing::info!(remote = %conn.remote, "BGP: connection from an unknown address closed")
                }
            },
            InstanceMsg::State { peer, state } => self.neighbors[peer].state = state,
            InstanceMsg::SessionUp {
                peer,
                epoch,
                negotiated,
                local,
            } => self.process_session_up(peer, epoch, negotiated, local),
            InstanceMsg::SessionDown { peer, down } => self.process_session_down(peer, down),
            InstanceMsg::SweepStale { peer, afi } => {
                let id = self.neighbors[peer].peer_id;
                self.rib
                    .sweep_stale(id, afi, &*self.resolver, &mut self.changes);
                self.apply_changes();
            }
            InstanceMsg::Update {
                peer,
                epoch,
                outcome,
            } => self.process_update(peer, epoch, outcome),
            InstanceMsg::EndOfRib { peer, .. } => self.neighbors[peer].counters.updates_in += 1,
            InstanceMsg::RouteRefresh { peer, epoch, afi } => {
                self.process_route_refresh(peer, epoch, afi)
            }
            InstanceMsg::Notification {
                peer,
                sent,
                notification,
            } => {
                let n = &mut self.neighbors[peer];
                if sent {
                    n.counters.notifications_out += 1;
                } else {
                    n.counters.notifications_in += 1;
                }
                n.last_notification = Some((notification.code, notification.subcode));
            }
            InstanceMsg::Neighbors(reply) => {
                let _ = reply.send(self.statuses());
            }
            InstanceMsg::Shutdown(_) => {}
            InstanceMsg::AddNeighbor(n) => self.add_neighbor(*n),
            InstanceMsg::RemoveNeighbor(a) => self.remove_neighbor(a),
            InstanceMsg::SetPolicies {
                address,
                import,
                export,
            } => self.set_policies(address, import, export),
            InstanceMsg::SetNetworks(n) => self.set_networks(n),
            InstanceMsg::Reresolve => {
                self.rib.reresolve(&*self.resolver, &mut self.changes);
                self.apply_changes();
            }
            InstanceMsg::Rib(q, reply) => {
                let peers: Vec<(PeerId, IpAddr)> = self
                    .neighbors
                    .iter()
                    .filter(|n| !n.removed)
                    .map(|n| (n.peer_id, n.cfg.address))
                    .collect();
                let _ = reply.send(super::rib_page::page(&self.rib, &peers, &q));
            }
            InstanceMsg::Stats(reply) => {
                let _ = reply.send(SpeakerStats {
                    selected_ipv4: self.selected[0],
                    selected_ipv6: self.selected[1],
                });
            }
            InstanceMsg::Snapshot(reply) => {
                let _ = reply.send((self.seq, Arc::new(self.table.clone())));
            }
        }
    }

    fn statuses(&self) -> Vec<NeighborStatus> {
        self.neighbors
            .iter()
            .filter(|n| !n.removed)
            .map(|n| {
                let adj = self.rib.adj_rib_in(n.peer_id);
                let accepted = adj.map_or(0, |a| a.len()) as u64;
                let mut counters = n.counters;
                counters.prefixes_accepted = accepted;
                counters.prefixes_received = accepted + n.rejected.len() as u64;
                counters.prefixes_advertised = n.adj_out.len() as u64;
                let mut accepted_by_afi = [0u64; 2];
                let mut received_by_afi = [0u64; 2];
                let mut advertised_by_afi = [0u64; 2];
                // Per family only for the neighbours that carry both
                // (the others' totals are all of one family).
                let both = n.cfg.families.ipv4_unicast && n.cfg.families.ipv6_unicast;
                let single = usize::from(!n.cfg.families.ipv4_unicast);
                if both {
                    if let Some(a) = adj {
                        for (p, _) in a.iter() {
                            accepted_by_afi[afi_index(p.afi())] += 1;
                        }
                    }
                    received_by_afi = accepted_by_afi;
                    for p in &n.rejected {
                        received_by_afi[afi_index(p.afi())] += 1;
                    }
                    for p in n.adj_out.keys() {
                        advertised_by_afi[afi_index(p.afi())] += 1;
                    }
                } else {
                    accepted_by_afi[single] = counters.prefixes_accepted;
                    received_by_afi[single] = counters.prefixes_received;
                    advertised_by_afi[single] = counters.prefixes_advertised;
                }
                NeighborStatus {
                    hold_time: n.up.as_ref().map(|u| u.hold_time),
                    families: n
                        .up
                        .as_ref()
                        .map(|u| u.families.iter().collect())
                        .unwrap_or_default(),
                    graceful_restart_active: n.up.is_none()
                        && adj.is_some_and(|a| a.stale_count() > 0),
                    received_by_afi,
                    accepted_by_afi,
                    advertised_by_afi,
                    address: n.cfg.address,
                    remote_as: n.cfg.remote_as,
                    state: n.state,
                    uptime: n.up.as_ref().map(|u| u.since.elapsed()),
                    router_id: n.up.as_ref().map(|u| u.router_id),
                    counters,
                    last_notification: n.last_notification,
                }
            })
            .collect()
    }

    fn process_session_up(
        &mut self,
        peer: NeighborIndex,
        epoch: u64,
        neg: Negotiated,
        local: Option<IpAddr>,
    ) {
        let local_as = self.local_as;
        let n = &mut self.neighbors[peer];
        let ctx = SessionContext {
            four_octet_as: neg.four_octet_as,
            ipv4_unicast: neg.families.contains(Afi::Ipv4),
            ipv6_unicast: neg.families.contains(Afi::Ipv6),
        };
        let local_v4 = match local {
            Some(IpAddr::V4(a)) => Some(a),
            _ => n.cfg.next_hop_v4,
        };
        let local_v6 = match local {
            Some(IpAddr::V6(a)) => Some(a),
            _ => n.cfg.next_hop_v6,
        };
        n.up = Some(Up {
            epoch,
            since: Instant::now(),
            ctx,
            route_ctx: RouteContext {
                peer_as: n.cfg.remote_as,
                local_as,
                ebgp: n.ebgp,
                local_v4,
                local_v6,
            },
            router_id: neg.peer.bgp_id,
            hold_time: neg.hold_time_secs,
            families: neg.families,
            route_refresh: neg.route_refresh,
        });
        n.state = State::Established;
        n.counters.established_transitions += 1;
        n.adj_out.clear();
        let info = PeerInfo {
            address: n.cfg.address,
            bgp_id: neg.peer.bgp_id,
            asn: n.cfg.remote_as,
        };
        let id = n.peer_id;
        self.rib
            .set_peer_info(id, info, &*self.resolver, &mut self.changes);
        self.apply_changes();
        // The initial table, then End-of-RIB per family.
        let routes: Vec<(Prefix, Selected)> = self.rib.loc_rib().map(|(p, s)| (*p, s)).collect();
        let mut pending = Vec::new();
        for (prefix, selected) in &routes {
            if let Some(a) = self.export_for(peer, prefix, selected) {
                pending.push((*prefix, Arc::new(a)));
            }
        }
        let n = &mut self.neighbors[peer];
        for (p, a) in &pending {
            n.adj_out.insert(*p, a.clone());
        }
        let mut messages = encode_updates(&ctx, &[], &pending);
        for afi in neg.families.iter() {
            messages.extend(end_of_rib(&ctx, afi));
        }
        n.counters.updates_out += messages.len() as u64;
        n.queue(SessionCmd::Send { epoch, messages });
    }

    fn process_session_down(&mut self, peer: NeighborIndex, down: SessionDown) {
        let n = &mut self.neighbors[peer];
        n.up = None;
        n.adj_out.clear();
        n.rejected.clear();
        let id = n.peer_id;
        self.rib
            .peer_down(id, down.keep_stale, &*self.resolver, &mut self.changes);
        self.apply_changes();
    }

    fn process_route_refresh(&mut self, peer: NeighborIndex, epoch: u64, afi: Afi) {
        let n = &mut self.neighbors[peer];
        let Some(up) = n.up.as_ref().filter(|u| u.epoch == epoch) else {
            return;
        };
        let routes: Vec<(Prefix, Arc<PathAttributes>)> = n
            .adj_out
            .iter()
            .filter(|(p, _)| p.afi() == afi)
            .map(|(p, a)| (*p, a.clone()))
            .collect();
        let messages = encode_updates(&up.ctx, &[], &routes);
        n.counters.updates_out += messages.len() as u64;
        n.queue(SessionCmd::Send { epoch, messages });
    }

    fn process_update(&mut self, peer: NeighborIndex, epoch: u64, outcome: UpdateOutcome) {
        let n = &mut self.neighbors[peer];
        let Some(up) = n.up.as_ref().filter(|u| u.epoch == epoch) else {
            return;
        };
        n.counters.updates_in += 1;
        let families: Vec<Afi> = [Afi::Ipv4, Afi::Ipv6]
            .into_iter()
            .filter(|a| up.ctx.carries(*a))
            .collect();
        let update = match outcome {
            UpdateOutcome::Parsed(u) => u,
            UpdateOutcome::AttributeDiscard { update, discarded } => {
                tracing::info!(peer = %n.cfg.address, ?discarded, "BGP: attributes discarded (RFC 7606)");
                n.counters.attribute_discard += 1;
                update
            }
            UpdateOutcome::TreatAsWithdraw { withdrawn, errors } => {
                tracing::info!(peer = %n.cfg.address, ?errors, prefixes = withdrawn.len(), "BGP: treat-as-withdraw (RFC 7606)");
                n.counters.treat_as_withdraw += 1;
                for p in withdrawn {
                    self.withdraw_from(peer, p);
                }
                self.apply_changes();
                return;
            }
            UpdateOutcome::SessionReset(_) => return,
        };
        for p in update.withdrawn_prefixes() {
            self.withdraw_from(peer, *p);
        }
        for afi in families {
            let prefixes: Vec<Prefix> = update
                .announced_prefixes()
                .copied()
                .filter(|p| p.afi() == afi)
                .collect();
            if prefixes.is_empty() {
                continue;
            }
            self.import(peer, afi, &update, &prefixes);
        }
        self.apply_changes();
    }

    /// Runs import (RFC 8212, loop check, policy) over one family's
    /// announcements of an UPDATE.
    fn import(&mut self, peer: NeighborIndex, afi: Afi, update: &Update, prefixes: &[Prefix]) {
        let local_as = self.local_as;
        let n = &mut self.neighbors[peer];
        let Some(up) = n.up.as_ref() else { return };
        let base = update.attributes_for(afi).filter(|a| {
            let looped = n.ebgp && a.as_path.contains(local_as);
            let nh_ok = matches!(
                (afi, a.next_hop),
                (Afi::Ipv4, Some(IpAddr::V4(_))) | (Afi::Ipv6, Some(IpAddr::V6(_)))
            );
            !looped && nh_ok
        });
        let Some(mut base) = base else {
            for p in prefixes {
                self.withdraw_from(peer, *p);
                self.neighbors[peer].rejected.insert(*p);
            }
            return;
        };
        if n.ebgp {
            // LOCAL_PREF is not taken from eBGP neighbours (RFC 4271 5.1.5).
            base.local_pref = None;
        }
        let route_ctx = up.route_ctx;
        let shared = Arc::new(base);
        for p in prefixes {
            let mut a = (*shared).clone();
            let v = evaluate(
                n.cfg.import.as_ref(),
                p,
                &mut a,
                &route_ctx,
                &mut n.import_counters,
            );
            if v.is_accept() {
                n.rejected.remove(p);
                let attrs = if a == *shared {
                    shared.clone()
                } else {
                    Arc::new(a)
                };
                self.rib
                    .announce(n.peer_id, *p, attrs, &*self.resolver, &mut self.changes);
            } else {
                n.rejected.insert(*p);
                self.rib
                    .withdraw(n.peer_id, *p, &*self.resolver, &mut self.changes);
            }
        }
    }

    fn withdraw_from(&mut self, peer: NeighborIndex, p: Prefix) {
        let n = &mut self.neighbors[peer];
        n.rejected.remove(&p);
        self.rib
            .withdraw(n.peer_id, p, &*self.resolver, &mut self.changes);
    }

    fn source_of(&self, peer: PeerId) -> Source {
        if peer == PeerId::LOCAL {
            return Source::Local;
        }
        match self.rib.peer_info(peer) {
            Some(i) if i.asn == self.local_as => Source::Ibgp,
            _ => Source::Ebgp,
        }
    }

    fn export_for(
        &mut self,
        peer: NeighborIndex,
        prefix: &Prefix,
        selected: &Selected,
    ) -> Option<PathAttributes> {
        let source = self.source_of(selected.best().peer);
        let n = &mut self.neighbors[peer];
        let up = n.up.as_ref()?;
        let target = ExportTarget {
            peer: n.peer_id,
            ebgp: n.ebgp,
            route_ctx: &up.route_ctx,
            policy: n.cfg.export.as_ref(),
            ctx: &up.ctx,
        };
        export_route(&target, prefix, selected, source, &mut n.export_counters)
    }

    /// Turns the RIB's changes into the FIB view and into UPDATEs for
    /// every Established neighbour.
    fn apply_changes(&mut self) {
        if self.changes.is_empty() {
            return;
        }
        let changes = std::mem::take(&mut self.changes);
        let mut out: Vec<Outbound> = vec![Outbound::default(); self.neighbors.len()];
        for c in &changes {
            let (prefix, selected) = match c {
                RibChange::Best { prefix, selected } => (*prefix, Some(selected)),
                RibChange::Withdrawn { prefix } => (*prefix, None),
            };
            self.update_table(prefix, selected);
            for (i, o) in out.iter_mut().enumerate() {
                if self.neighbors[i].up.is_none() {
                    continue;
                }
                let new = selected.and_then(|s| self.export_for(i, &prefix, s));
                let n = &mut self.neighbors[i];
                match new {
                    Some(a) => {
                        if n.adj_out.get(&prefix).is_some_and(|old| **old == a) {
                            continue;
                        }
                        let a = Arc::new(a);
                        n.adj_out.insert(prefix, a.clone());
                        o.announce.push((prefix, a));
                    }
                    None => {
                        if n.adj_out.remove(&prefix).is_some() {
                            o.withdraw.push(prefix);
                        }
                    }
                }
            }
        }
        for (i, Outbound { withdraw, announce }) in out.into_iter().enumerate() {
            if withdraw.is_empty() && announce.is_empty() {
                continue;
            }
            let n = &mut self.neighbors[i];
            let Some(up) = n.up.as_ref() else { continue };
            let epoch = up.epoch;
            let messages = encode_updates(&up.ctx, &withdraw, &announce);
            n.counters.updates_out += messages.len() as u64;
            n.queue(SessionCmd::Send { epoch, messages });
        }
    }

    /// The forwarding view: routes learned from neighbours only.
    fn update_table(&mut self, prefix: Prefix, selected: Option<&Selected>) {
        let next_hops: Vec<IpAddr> = match selected {
            Some(s) if s.best().peer != PeerId::LOCAL => {
                let mut v: Vec<IpAddr> = Vec::new();
                for nh in s.paths.iter().filter_map(|p| p.attrs.next_hop) {
                    if !v.contains(&nh) {
                        v.push(nh);
                    }
                }
                v
            }
            _ => Vec::new(),
        };
        let fam = afi_index(prefix.afi());
        let changed = if next_hops.is_empty() {
            let gone = self.table.remove(&prefix).is_some();
            if gone {
                self.selected[fam] -= 1;
            }
            gone
        } else if self.table.get(&prefix) != Some(&next_hops) {
            if self.table.insert(prefix, next_hops.clone()).is_none() {
                self.selected[fam] += 1;
            }
            true
        } else {
            false
        };
        if changed {
            self.seq += 1;
            let _ = self.changes_tx.send(RouteChange {
                prefix,
                next_hops,
                seq: self.seq,
            });
            if self.publish_at.is_none() {
                self.publish_at = Some(Instant::now() + self.publish_interval);
            }
        }
    }
}

/// 0 for IPv4, 1 for IPv6 (index of per-family counts).
pub fn afi_index(afi: Afi) -> usize {
    match afi {
        Afi::Ipv4 => 0,
        Afi::Ipv6 => 1,
    }
}
