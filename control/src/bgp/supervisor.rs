//! Desired state → running speaker (`patronus-control --bgp`): one task
//! follows [`crate::state::StoreHandle::subscribe_bgp`]. Global settings
//! set and enabled start the speaker; a later change is applied live where
//! it can be — a neighbour added, removed or changed touches only its own
//! session (a change of policies alone re-applies them without a reset),
//! originated networks are announced or withdrawn — and the speaker is
//! restarted only when the local AS, the router id or the listen address
//! changes. Next hops resolve through the pushed FIB ([`super::nexthop`]):
//! the speaker reselects when it moves, and the kernel's IPv6 connected
//! subnets are polled every [`CONNECTED6_POLL`]. The selected routes go
//! to the engine through [`super::fib_link`].

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use patronus_bgp::policy::{Policy, PolicyConfig};
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;

use super::fib_link::{self, FibSink, Route6Installed};
use super::model::{BgpDesired, BgpGlobal, Family, NeighborDef};
use super::nexthop::{read_connected6, FibResolver, NexthopView};
use super::speaker::{self, Families, NeighborConfig, SpeakerConfig, SpeakerHandle};
use crate::push::{BgpInstalled, SharedPublisher};
use crate::state::StoreHandle;

/// How often the kernel's IPv6 connected subnets are read.
pub const CONNECTED6_POLL: Duration = Duration::from_secs(1);
/// A speaker that could not start is tried again this long after.
pub const RETRY_START: Duration = Duration::from_secs(5);

/// What the supervisor needs besides the store.
#[derive(Clone)]
pub struct BgpOptions {
    /// `--bgp-listen`; `None`: `[::]:` the stored `listen_port`.
    pub listen: Option<SocketAddr>,
    pub nexthops: Arc<NexthopView>,
    /// The engine link (`None`: routes are not pushed).
    pub publisher: Option<SharedPublisher>,
    pub installed: BgpInstalled,
    pub route6: Route6Installed,
}

/// The speaker as the status side sees it.
#[derive(Clone, Debug)]
pub struct Running {
    pub handle: SpeakerHandle,
    pub local_as: u32,
    pub router_id: Ipv4Addr,
    /// Neighbours configured (enabled).
    pub configured: usize,
}

/// A neighbour as applied: the stored definition and its policies.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Applied {
    def: NeighborDef,
    import: Option<PolicyConfig>,
    export: Option<PolicyConfig>,
}

impl Applied {
    fn of(def: &NeighborDef, d: &BgpDesired) -> Applied {
        let pick = |n: &Option<String>| n.as_deref().and_then(|n| d.policy(n)).cloned();
        Applied {
            import: pick(&def.import_policy),
            export: pick(&def.export_policy),
            def: def.clone(),
        }
    }

    /// The parts a change of which needs a new session.
    fn session_part(&self) -> NeighborDef {
        NeighborDef {
            description: None,
            import_policy: None,
            export_policy: None,
            ..self.def.clone()
        }
    }

    fn policies(&self) -> (Option<Policy>, Option<Policy>) {
        let compile = |c: &Option<PolicyConfig>| c.as_ref().and_then(|c| c.validate().ok());
        (compile(&self.import), compile(&self.export))
    }

    fn config(&self) -> NeighborConfig {
        let d = &self.def;
        let mut n = NeighborConfig::new(d.address, d.remote_as);
        n.local_address = d.local_address;
        n.hold_time = d.hold_time_secs;
        n.connect_retry = u32::from(d.connect_retry_secs);
        n.passive = d.passive;
        n.families = Families {
            ipv4_unicast: d.families.contains(&Family::Ipv4Unicast),
            ipv6_unicast: d.families.contains(&Family::Ipv6Unicast),
        };
        n.graceful_restart = d.graceful_restart;
        (n.import, n.export) = self.policies();
        n
    }
}

/// What makes a speaker: a change restarts it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Identity {
    local_as: u32,
    router_id: Ipv4Addr,
    listen: SocketAddr,
}

fn identity(g: &BgpGlobal, listen: Option<SocketAddr>) -> Identity {
    Identity {
        local_as: g.asn,
        router_id: g.router_id,
        listen: listen.unwrap_or_else(|| SocketAddr::new(IpAddr::from([0u16; 8]), g.listen_port)),
    }
}

fn wanted(d: &BgpDesired) -> BTreeMap<IpAddr, Applied> {
    d.neighbors
        .iter()
        .filter(|n| n.enabled)
        .map(|n| (n.address, Applied::of(n, d)))
        .collect()
}

struct Active {
    id: Identity,
    handle: SpeakerHandle,
    neighbors: BTreeMap<IpAddr, Applied>,
    networks: Vec<patronus_bgp::types::Prefix>,
    fib_stop: Option<oneshot::Sender<()>>,
    fib: Option<JoinHandle<()>>,
}

struct Supervisor {
    store: StoreHandle,
    opts: BgpOptions,
    active: Option<Active>,
    running: watch::Sender<Option<Running>>,
    /// Last start failure (the summary shows `running: false`).
    retry_at: Option<tokio::time::Instant>,
}

impl Supervisor {
    async fn stop(&mut self) {
        let Some(mut a) = self.active.take() else {
            return;
        };
        self.running.send_replace(None);
        a.handle.shutdown().await;
        // The FIB link removes the speaker's routes from the engine.
        if let Some(s) = a.fib_stop.take() {
            let _ = s.send(());
        }
        if let Some(f) = a.fib.take() {
            let _ = f.await;
        }
        tracing::info!("BGP speaker stopped");
    }

    async fn start(&mut self, id: Identity, d: &BgpDesired) {
        let neighbors = wanted(d);
        let mut cfg = SpeakerConfig::new(id.local_as, id.router_id);
        cfg.listen = Some(id.listen);
        cfg.neighbors = neighbors.values().map(Applied::config).collect();
        cfg.networks = d.networks.clone();
        cfg.max_paths = patronus_bgp::rib::MAX_PATHS;
        let resolver = Box::new(FibResolver(self.opts.nexthops.clone()));
        let handle = match speaker::spawn_with_resolver(cfg, resolver).await {
            Ok(h) => h,
            Err(e) => {
                tracing::error!("BGP speaker did not start: {e}");
                self.retry_at = Some(tokio::time::Instant::now() + RETRY_START);
                return;
            }
        };
        self.retry_at = None;
        tracing::info!(local_as = id.local_as, router_id = %id.router_id, listen = %id.listen, neighbors = neighbors.len(), "BGP speaker started");
        let (fib_stop, stop_rx) = oneshot::channel();
        let sink = FibSink {
            store: self.store.clone(),
            publisher: self.opts.publisher.clone(),
            route6: self.opts.route6.clone(),
        };
        let fib = tokio::spawn(fib_link::run(handle.clone(), sink, stop_rx));
        self.running.send_replace(Some(Running {
            handle: handle.clone(),
            local_as: id.local_as,
            router_id: id.router_id,
            configured: neighbors.len(),
        }));
        self.active = Some(Active {
            id,
            handle,
            neighbors,
            networks: d.networks.clone(),
            fib_stop: Some(fib_stop),
            fib: Some(fib),
        });
    }

    /// Brings the running speaker to `d`.
    async fn reconcile(&mut self, d: &BgpDesired) {
        let want = d
            .global
            .filter(|g| g.enabled)
            .map(|g| identity(&g, self.opts.listen));
        if self.active.as_ref().map(|a| a.id) != want {
            self.stop().await;
        }
        let Some(id) = want else {
            self.retry_at = None;
            return;
        };
        let Some(a) = self.active.as_mut() else {
            self.start(id, d).await;
            return;
        };
        let h = a.handle.clone();
        let now = wanted(d);
        for (addr, old) in &a.neighbors {
            match now.get(addr) {
                None => {
                    let _ = h.remove_neighbor(*addr).await;
                }
                Some(new) if new.session_part() != old.session_part() => {
                    let _ = h.remove_neighbor(*addr).await;
                    let _ = h.add_neighbor(new.config()).await;
                }
                Some(new) if (new.import != old.import) || (new.export != old.export) => {
                    let (i, e) = new.policies();
                    let _ = h.set_policies(*addr, i, e).await;
                }
                Some(_) => {}
            }
        }
        for (addr, new) in &now {
            if !a.neighbors.contains_key(addr) {
                let _ = h.add_neighbor(new.config()).await;
            }
        }
        if a.networks != d.networks {
            let _ = h.set_networks(d.networks.clone()).await;
            a.networks = d.networks.clone();
        }
        a.neighbors = now;
        let configured = a.neighbors.len();
        self.running.send_modify(|r| {
            if let Some(r) = r {
                r.configured = configured;
            }
        });
    }
}

/// Starts the supervisor on the current runtime; the receiver follows the
/// running speaker (None while none runs). Ends (stopping the speaker)
/// when `shutdown` fires or the store is gone.
pub fn spawn(
    store: StoreHandle,
    opts: BgpOptions,
    mut shutdown: oneshot::Receiver<()>,
) -> (watch::Receiver<Option<Running>>, JoinHandle<()>) {
    let (running, rx) = watch::channel(None);
    let mut desired = store.subscribe_bgp();
    let mut nh_version = opts.nexthops.subscribe();
    let mut sup = Supervisor {
        store,
        opts,
        active: None,
        running,
        retry_at: None,
    };
    let task = tokio::spawn(async move {
        let mut poll6 = tokio::time::interval(CONNECTED6_POLL);
        loop {
            let d = desired.borrow_and_update().clone();
            sup.reconcile(&d).await;
            loop {
                let retry = sup.retry_at;
                tokio::select! {
                    _ = &mut shutdown => {
                        sup.stop().await;
                        return;
                    }
                    r = desired.changed() => {
                        if r.is_err() {
                            sup.stop().await;
                            return;
                        }
                        break;
                    }
                    r = nh_version.changed() => {
                        if r.is_ok() {
                            if let Some(a) = &sup.active {
                                let _ = a.handle.reresolve().await;
                            }
                        }
                    }
                    _ = poll6.tick() => {
                        let subnets = tokio::task::spawn_blocking(read_connected6).await.unwrap_or_default();
                        // A change bumps the version: reselection follows.
                        sup.opts.nexthops.set_connected6(subnets);
                    }
                    () = async { tokio::time::sleep_until(retry.unwrap_or_else(tokio::time::Instant::now)).await }, if retry.is_some() => {
                        break;
                    }
                }
            }
        }
    });
    (rx, task)
}
