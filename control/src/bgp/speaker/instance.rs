//! The instance actor: owns the RIB, the policies and every neighbour's
//! export state; handles the sessions' reports and the handle's requests
//! one at a time (`process_*`), publishes the selected routes, and sends
//! each session the UPDATEs it must write.

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::IpAddr;
use std::sync::Arc;

use patronus_bgp::fsm::{Negotiated, Session, SessionDown, State};
use patronus_bgp::policy::{evaluate, PolicyCounters, RouteContext};
use patronus_bgp::rib::{NextHopResolver, PeerId, PeerInfo, Rib, RibChange, RibConfig, Selected};
use patronus_bgp::types::{Afi, PathAttributes, Prefix};
use patronus_bgp::wire::{SessionContext, Update, UpdateOutcome};
use tokio::sync::{broadcast, mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::{sleep, sleep_until, Duration, Instant};

use super::config::{NeighborConfig, SpeakerConfig};
use super::export::{encode_updates, end_of_rib, export_route, ExportTarget, Source};
use super::handle::{NeighborCounters, NeighborStatus, RouteChange, RouteTable};
use super::messages::{InstanceMsg, NeighborIndex, SessionCmd};
use super::session::{SessionParams, SessionTask};

/// Most delay between a change of the selected routes and its snapshot
/// in [`super::SpeakerHandle::routes`].
pub const PUBLISH_INTERVAL: Duration = Duration::from_millis(50);
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
        let mut rib = Rib::new(RibConfig {
            local_id: cfg.router_id,
            select: patronus_bgp::rib::SelectConfig {
                local_as: cfg.local_as,
                max_paths: cfg.max_paths,
                ..Default::default()
            },
        });
        let mut neighbors = Vec::new();
        let mut by_addr = HashMap::new();
        for (i, n) in cfg.neighbors.iter().enumerate() {
            let peer_id = rib.add_peer(PeerInfo {
                address: n.address,
                bgp_id: std::net::Ipv4Addr::UNSPECIFIED,
                asn: n.remote_as,
            });
            let (tx, crx) = mpsc::channel(SESSION_QUEUE);
            let task = SessionTask::new(
                SessionParams {
                    peer: i,
                    address: n.address,
                    port: n.port,
                    local_address: n.local_address,
                    fsm: Session::new(n.session_config(cfg)),
                },
                crx,
                self_tx.clone(),
            );
            by_addr.insert(n.address.to_canonical(), i);
            neighbors.push(Neighbor {
                cfg: n.clone(),
                peer_id,
                ebgp: n.is_ebgp(cfg.local_as),
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
            });
        }
        let mut inst = Instance {
            local_as: cfg.local_as,
            rib,
            resolver,
            neighbors,
            by_addr,
            rx,
            table: RouteTable::new(),
            routes_tx,
            changes_tx,
            publish_at: None,
            changes: Vec::new(),
            listener: None,
        };
        for p in &cfg.networks {
            let attrs = Arc::new(PathAttributes::default());
            inst.rib
                .originate(*p, attrs, &*inst.resolver, &mut inst.changes);
        }
        inst.apply_changes();
        inst
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
            tokio::select! {
                m = self.rx.recv() => match m {
                    None => break,
                    Some(InstanceMsg::Shutdown(done)) => {
                        self.shutdown().await;
                        let _ = done.send(());
                        break;
                    }
                    Some(m) => self.process(m),
                },
                () = async { sleep_until(publish_at.unwrap_or_else(Instant::now)).await }, if publish_at.is_some() => {
                    self.publish();
                }
                () = sleep(BACKLOG_RETRY), if backlog => {}
            }
        }
        self.publish();
    }

    fn publish(&mut self) {
        self.publish_at = None;
        self.routes_tx.send_replace(Arc::new(self.table.clone()));
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
        }
    }

    fn statuses(&self) -> Vec<NeighborStatus> {
        self.neighbors
            .iter()
            .map(|n| {
                let accepted = self.rib.adj_rib_in(n.peer_id).map_or(0, |a| a.len()) as u64;
                let mut counters = n.counters;
                counters.prefixes_accepted = accepted;
                counters.prefixes_received = accepted + n.rejected.len() as u64;
                counters.prefixes_advertised = n.adj_out.len() as u64;
                NeighborStatus {
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
        let changed = if next_hops.is_empty() {
            self.table.remove(&prefix).is_some()
        } else if self.table.get(&prefix) != Some(&next_hops) {
            self.table.insert(prefix, next_hops.clone());
            true
        } else {
            false
        };
        if changed {
            let _ = self.changes_tx.send(RouteChange { prefix, next_hops });
            if self.publish_at.is_none() {
                self.publish_at = Some(Instant::now() + PUBLISH_INTERVAL);
            }
        }
    }
}
