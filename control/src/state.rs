//! The store actor: one thread owns the [`Store`] (holo style) and serves
//! typed requests that arrive on a bounded channel, each with a oneshot reply.
//! Handlers hold a cheap, cloneable [`StoreHandle`]; nothing shares the store.
//! Requests are applied one at a time, so a check and the write it guards can
//! never interleave with another request.

use std::net::{IpAddr, Ipv4Addr, SocketAddr, SocketAddrV4};
use std::sync::Arc;
use std::thread;

use patronus_bgp::policy::PolicyConfig;
use patronus_bgp::types::Prefix;
use tokio::sync::{mpsc, oneshot, watch};

use crate::bgp::model::{BgpDesired, BgpGlobal, Neighbor, NeighborDef, NeighborPatch};
use crate::error::{Error, Result};
use crate::lb::model::{Backend, BackendDef, Vip, VipDef};
use crate::lb::runtime::LbRuntime;
use crate::lb::status::LbStatus;
use crate::model::{Cidr, Interface, InterfaceDef, OrgSpec, Organization, Route, RouteDef};
use crate::models::model::{ActiveModel, ModelEntry, ModelUpload};
use crate::models::push::{ModelInfoGauge, ModelPusher};
use crate::nat::model::{Forward, ForwardDef, NatConfig, NatSettings};
use crate::nat::push::NatPusher;
use crate::push::{BgpUpdate, Pusher, Touched, PUSHED_ORG};
use crate::store::{BulkOutcome, BulkRoutes, EnginePorts, Page, Store};
use crate::wg::model::{Peer, PeerDef, Tunnel, TunnelDef, TunnelUpdate};
use crate::wg::push::WgPusher;

/// Requests queued before senders wait (back-pressure on the API).
pub const STORE_QUEUE_DEPTH: usize = 64;

type Reply<T> = oneshot::Sender<Result<T>>;

/// A typed request to the store actor.
#[derive(Debug)]
pub enum Request {
    ListOrgs {
        reply: Reply<Vec<Organization>>,
    },
    GetOrg {
        org: String,
        reply: Reply<Organization>,
    },
    CreateOrg {
        spec: OrgSpec,
        reply: Reply<Organization>,
    },
    DeleteOrg {
        org: String,
        reply: Reply<()>,
    },
    ListInterfaces {
        org: String,
        reply: Reply<Vec<Interface>>,
    },
    GetInterface {
        org: String,
        id: i64,
        reply: Reply<Interface>,
    },
    CreateInterface {
        org: String,
        def: InterfaceDef,
        reply: Reply<Interface>,
    },
    ReplaceInterface {
        org: String,
        id: i64,
        def: InterfaceDef,
        reply: Reply<Interface>,
    },
    DeleteInterface {
        org: String,
        id: i64,
        reply: Reply<()>,
    },
    ListRoutes {
        org: String,
        page: Option<Page>,
        reply: Reply<Vec<Route>>,
    },
    GetRoute {
        org: String,
        id: i64,
        reply: Reply<Route>,
    },
    CreateRoute {
        org: String,
        def: RouteDef,
        reply: Reply<Route>,
    },
    ReplaceRoute {
        org: String,
        id: i64,
        def: RouteDef,
        reply: Reply<Route>,
    },
    DeleteRoute {
        org: String,
        id: i64,
        reply: Reply<()>,
    },
    ReplaceAllRoutes {
        org: String,
        defs: Vec<RouteDef>,
        reply: Reply<Vec<Route>>,
    },
    BulkRoutes {
        org: String,
        req: BulkRoutes,
        reply: Reply<BulkOutcome>,
    },
    Generation {
        reply: Reply<u64>,
    },
    GetNat {
        reply: Reply<NatConfig>,
    },
    PutNat {
        settings: NatSettings,
        forwards: Vec<ForwardDef>,
        engine_ports: EnginePorts,
        reply: Reply<NatConfig>,
    },
    DeleteNat {
        reply: Reply<()>,
    },
    ListNatForwards {
        reply: Reply<Vec<Forward>>,
    },
    AddNatForward {
        def: ForwardDef,
        reply: Reply<Forward>,
    },
    DeleteNatForward {
        id: i64,
        reply: Reply<()>,
    },
    AddNatPoolAddress {
        address: Ipv4Addr,
        reply: Reply<NatConfig>,
    },
    DeleteNatPoolAddress {
        address: Ipv4Addr,
        reply: Reply<NatConfig>,
    },
    ListTunnels {
        reply: Reply<Vec<Tunnel>>,
    },
    GetTunnel {
        name: String,
        reply: Reply<Tunnel>,
    },
    CreateTunnel {
        def: TunnelDef,
        reply: Reply<Tunnel>,
    },
    UpdateTunnel {
        name: String,
        update: TunnelUpdate,
        reply: Reply<Tunnel>,
    },
    DeleteTunnel {
        name: String,
        reply: Reply<()>,
    },
    ListPeers {
        tunnel: String,
        reply: Reply<Vec<Peer>>,
    },
    GetPeer {
        tunnel: String,
        id: i64,
        reply: Reply<Peer>,
    },
    CreatePeer {
        tunnel: String,
        def: PeerDef,
        reply: Reply<Peer>,
    },
    ReplacePeer {
        tunnel: String,
        id: i64,
        def: PeerDef,
        reply: Reply<Peer>,
    },
    DeletePeer {
        tunnel: String,
        id: i64,
        reply: Reply<()>,
    },
    ListModels {
        reply: Reply<Vec<ModelEntry>>,
    },
    GetModel {
        id: i64,
        reply: Reply<ModelEntry>,
    },
    UploadModel {
        upload: ModelUpload,
        reply: Reply<ModelEntry>,
    },
    DeleteModel {
        id: i64,
        reply: Reply<()>,
    },
    PromoteModel {
        id: i64,
        reply: Reply<ModelEntry>,
    },
    RollbackModel {
        reply: Reply<ActiveModel>,
    },
    DeactivateModel {
        reply: Reply<ActiveModel>,
    },
    ListVips {
        reply: Reply<Vec<Vip>>,
    },
    GetVip {
        name: String,
        reply: Reply<Vip>,
    },
    CreateVip {
        def: VipDef,
        backends: Vec<BackendDef>,
        reply: Reply<Vip>,
    },
    UpdateVip {
        name: String,
        def: VipDef,
        reply: Reply<Vip>,
    },
    DeleteVip {
        name: String,
        reply: Reply<()>,
    },
    AddBackend {
        vip: String,
        def: BackendDef,
        reply: Reply<Backend>,
    },
    SetBackendWeight {
        vip: String,
        key: SocketAddrV4,
        weight: u16,
        reply: Reply<Backend>,
    },
    RemoveBackend {
        vip: String,
        key: SocketAddrV4,
        reply: Reply<()>,
    },
    /// From the health link: every monitored `(vip id, target, up)` after
    /// the monitors were reconfigured.
    LbHealthSync {
        states: Vec<(i64, SocketAddr, bool)>,
    },
    /// From the health link: a backend's health changed.
    LbHealthEvent {
        vip_id: i64,
        target: SocketAddr,
        up: bool,
        reason: String,
    },
    GetBgp {
        reply: Reply<BgpGlobal>,
    },
    PutBgp {
        global: BgpGlobal,
        reply: Reply<BgpGlobal>,
    },
    ListBgpNeighbors {
        reply: Reply<Vec<Neighbor>>,
    },
    GetBgpNeighbor {
        address: IpAddr,
        reply: Reply<Neighbor>,
    },
    CreateBgpNeighbor {
        def: NeighborDef,
        reply: Reply<Neighbor>,
    },
    PatchBgpNeighbor {
        address: IpAddr,
        patch: NeighborPatch,
        reply: Reply<Neighbor>,
    },
    DeleteBgpNeighbor {
        address: IpAddr,
        reply: Reply<()>,
    },
    ListBgpPolicies {
        reply: Reply<Vec<PolicyConfig>>,
    },
    GetBgpPolicy {
        name: String,
        reply: Reply<PolicyConfig>,
    },
    /// Replies true when the policy was created (false: replaced).
    PutBgpPolicy {
        policy: PolicyConfig,
        reply: Reply<bool>,
    },
    DeleteBgpPolicy {
        name: String,
        reply: Reply<()>,
    },
    ListBgpNetworks {
        reply: Reply<Vec<Prefix>>,
    },
    AddBgpNetwork {
        prefix: Prefix,
        reply: Reply<Prefix>,
    },
    DeleteBgpNetwork {
        prefix: Prefix,
        reply: Reply<()>,
    },
    /// From the BGP FIB link: a batch of the speaker's IPv4 route
    /// changes to merge into the pushed table; replies with the
    /// generation published (None: nothing changed or no pusher).
    BgpRoutes {
        update: BgpUpdate,
        reply: Reply<Option<u64>>,
    },
    /// Stop the actor and close the database; replies once it is closed.
    Close {
        reply: oneshot::Sender<()>,
    },
}

/// The API's way to the store actor, and the BGP desired state it
/// publishes.
#[derive(Debug, Clone)]
pub struct StoreHandle {
    tx: mpsc::Sender<Request>,
    bgp: watch::Receiver<Arc<BgpDesired>>,
}

/// A way to the store actor that does not keep it running (the health
/// link's).
#[derive(Debug, Clone)]
pub struct WeakStoreHandle {
    tx: mpsc::WeakSender<Request>,
}

impl WeakStoreHandle {
    /// Queues `req`; false when the actor is gone.
    pub async fn send(&self, req: Request) -> bool {
        match self.tx.upgrade() {
            Some(tx) => tx.send(req).await.is_ok(),
            None => false,
        }
    }
}

/// Starts the actor thread owning `store`.
pub fn spawn_store(store: Store) -> std::io::Result<StoreHandle> {
    spawn_store_with(store, None)
}

/// Starts the actor thread owning `store`; with a [`Pusher`], the state is
/// published to the engine at start and after every successful change.
pub fn spawn_store_with(store: Store, pusher: Option<Pusher>) -> std::io::Result<StoreHandle> {
    let info = ModelInfoGauge::new().map_err(std::io::Error::other)?;
    spawn_store_with_model_info(store, pusher, info)
}

/// [`spawn_store_with`], keeping `model_info` (registered in the metrics by
/// the caller) on the active model.
pub fn spawn_store_with_model_info(
    store: Store,
    pusher: Option<Pusher>,
    model_info: ModelInfoGauge,
) -> std::io::Result<StoreHandle> {
    spawn_store_full(store, pusher, model_info, LbStatus::new())
}

/// [`spawn_store_with_model_info`], keeping `lb_status` (read by the
/// metrics) on the balancer. Called inside a tokio runtime, it also starts
/// the health link there (backend health checks); outside one, backends
/// of VIPs with checks keep their initial state.
pub fn spawn_store_full(
    store: Store,
    pusher: Option<Pusher>,
    model_info: ModelInfoGauge,
    lb_status: LbStatus,
) -> std::io::Result<StoreHandle> {
    let (tx, rx) = mpsc::channel(STORE_QUEUE_DEPTH);
    let (lb, probes) = LbRuntime::new(pusher.as_ref().map(Pusher::publisher), lb_status);
    // The snapshot is replaced by the stored one before any request is served.
    let (bgp_tx, bgp) = watch::channel(Arc::new(BgpDesired::default()));
    let handle = StoreHandle { tx, bgp };
    match tokio::runtime::Handle::try_current() {
        Ok(_) => {
            crate::lb::link::spawn(probes, handle.downgrade());
        }
        Err(_) => tracing::warn!("no tokio runtime: load-balancer health checks are off"),
    }
    thread::Builder::new()
        .name("store".into())
        .spawn(move || run(store, rx, pusher, model_info, lb, bgp_tx))?;
    Ok(handle)
}

/// Publishes what the request touched if the desired state moved; a
/// failure is logged and retried after the next change (the engine keeps
/// its last generation meanwhile).
fn push(store: &mut Store, pusher: &mut Option<Pusher>, touched: Touched) {
    if let Some(p) = pusher.as_mut() {
        match p.push_if_changed(store, touched) {
            Ok(Some(g)) => {
                tracing::debug!(generation = g, kind = ?p.last_kind(), "published to the engine")
            }
            Ok(None) => {}
            Err(e) => tracing::error!("publishing to the engine failed: {e}"),
        }
        if p.checkpoint_overdue() {
            checkpoint(p);
        }
    }
}

/// Publishes a checkpoint if one is due (called when no request waits).
fn checkpoint(p: &mut Pusher) {
    match p.checkpoint_if_due() {
        Ok(Some(g)) => tracing::debug!(generation = g, "published a checkpoint"),
        Ok(None) => {}
        Err(e) => tracing::error!("publishing a checkpoint failed: {e}"),
    }
}

fn run(
    mut store: Store,
    mut rx: mpsc::Receiver<Request>,
    mut pusher: Option<Pusher>,
    model_info: ModelInfoGauge,
    mut lb: LbRuntime,
    bgp: watch::Sender<Arc<BgpDesired>>,
) {
    use mpsc::error::TryRecvError;
    publish_bgp(&mut store, &bgp);
    let mut nat = pusher.as_ref().map(|p| NatPusher::new(p.publisher()));
    let mut wg = pusher.as_ref().map(|p| WgPusher::new(p.publisher()));
    let mut models = ModelPusher::new(pusher.as_ref().map(Pusher::publisher), model_info);
    // The active model (or none) again, so a restarted pair converges.
    push_models(&mut store, &mut models);
    // Tunnels first: routes may point into them. Then the tables: the NAT
    // config may name an interface they carry.
    push_wg(&mut store, &mut wg);
    push(&mut store, &mut pusher, Touched::Nothing);
    push_nat(&mut store, &mut nat);
    refresh_lb(&mut store, &mut lb);
    let closer = loop {
        let next = match rx.try_recv() {
            Ok(req) => Some(req),
            Err(TryRecvError::Disconnected) => None,
            Err(TryRecvError::Empty) => {
                // Idle: the moment for a checkpoint, which would otherwise
                // delay a burst of changes.
                if let Some(p) = pusher.as_mut() {
                    checkpoint(p);
                }
                rx.blocking_recv()
            }
        };
        match next {
            None => break None,
            Some(Request::Close { reply }) => break Some(reply),
            Some(Request::BgpRoutes { update, reply }) => {
                let r = match pusher.as_mut() {
                    Some(p) => p.push_bgp(&mut store, update),
                    None => Ok(None),
                };
                if let Err(e) = &r {
                    tracing::error!("publishing BGP routes to the engine failed: {e}");
                }
                drop(reply.send(r));
            }
            Some(req) if req.is_lb() => process_lb(&mut store, &mut lb, req),
            Some(req) if req.is_bgp() => {
                if process_bgp(&mut store, req) {
                    publish_bgp(&mut store, &bgp);
                }
            }
            Some(req) => {
                let nat_touched = req.touches_nat();
                let wg_touched = req.touches_wg();
                let models_touched = req.touches_models();
                let touched = process(&mut store, req);
                if wg_touched {
                    push_wg(&mut store, &mut wg);
                }
                push(&mut store, &mut pusher, touched);
                if nat_touched {
                    push_nat(&mut store, &mut nat);
                }
                if models_touched {
                    push_models(&mut store, &mut models);
                }
            }
        }
    };
    // Everything goes before the reply: the database and the publisher
    // lock (so a successor can attach at once).
    drop((store, pusher, nat, wg, models, lb));
    if let Some(reply) = closer {
        let _ = reply.send(());
    }
}

/// Sends `result` and says which routes it touched: `what` of the value on
/// success, nothing on failure.
fn answer<T>(reply: Reply<T>, result: Result<T>, what: impl FnOnce(&T) -> Touched) -> Touched {
    let touched = result.as_ref().map_or(Touched::Nothing, what);
    drop(reply.send(result));
    touched
}

/// The prefix of route `id`, when it is one the engine gets.
fn pushed_prefix(s: &mut Store, org: &str, id: i64) -> Option<Cidr> {
    (org == PUSHED_ORG)
        .then(|| s.get_route(org, id).ok().map(|r| r.prefix))
        .flatten()
}

fn nothing<T>(_: &T) -> Touched {
    Touched::Nothing
}

fn prefixes(list: impl IntoIterator<Item = Option<Cidr>>) -> Touched {
    Touched::Prefixes(list.into_iter().flatten().collect())
}

/// Applies one request and returns which pushed routes it touched. A
/// dropped reply (client went away) is fine: the change is either fully
/// applied or not at all.
fn process(s: &mut Store, req: Request) -> Touched {
    match req {
        Request::ListOrgs { reply } => answer(reply, s.list_orgs(), nothing),
        Request::GetOrg { org, reply } => answer(reply, s.get_org(&org), nothing),
        Request::CreateOrg { spec, reply } => answer(reply, s.create_org(&spec), nothing),
        Request::DeleteOrg { org, reply } => answer(reply, s.delete_org(&org), nothing),
        Request::ListInterfaces { org, reply } => answer(reply, s.list_interfaces(&org), nothing),
        Request::GetInterface { org, id, reply } => {
            answer(reply, s.get_interface(&org, id), nothing)
        }
        Request::CreateInterface { org, def, reply } => {
            answer(reply, s.create_interface(&org, &def), nothing)
        }
        Request::ReplaceInterface {
            org,
            id,
            def,
            reply,
        } => answer(reply, s.replace_interface(&org, id, &def), nothing),
        Request::DeleteInterface { org, id, reply } => {
            answer(reply, s.delete_interface(&org, id), nothing)
        }
        Request::ListRoutes { org, page, reply } => {
            answer(reply, s.list_routes_page(&org, page), nothing)
        }
        Request::GetRoute { org, id, reply } => answer(reply, s.get_route(&org, id), nothing),
        Request::CreateRoute { org, def, reply } => {
            let pushed = org == PUSHED_ORG;
            answer(reply, s.create_route(&org, &def), |r| {
                prefixes([pushed.then_some(r.prefix)])
            })
        }
        Request::ReplaceRoute {
            org,
            id,
            def,
            reply,
        } => {
            let old = pushed_prefix(s, &org, id);
            let pushed = org == PUSHED_ORG;
            answer(reply, s.replace_route(&org, id, &def), |r| {
                prefixes([old, pushed.then_some(r.prefix)])
            })
        }
        Request::DeleteRoute { org, id, reply } => {
            let old = pushed_prefix(s, &org, id);
            answer(reply, s.delete_route(&org, id), |_| prefixes([old]))
        }
        Request::ReplaceAllRoutes { org, defs, reply } => {
            let pushed = org == PUSHED_ORG;
            answer(reply, s.replace_all_routes(&org, &defs), |_| {
                if pushed {
                    Touched::Everything
                } else {
                    Touched::Nothing
                }
            })
        }
        Request::BulkRoutes { org, req, reply } => {
            let pushed = org == PUSHED_ORG;
            let mut result = s.bulk_routes(&org, &req);
            let touched = match &mut result {
                // The client gets counts only: the prefixes move out.
                Ok(o) if pushed => Touched::Prefixes(std::mem::take(&mut o.prefixes)),
                _ => Touched::Nothing,
            };
            drop(reply.send(result));
            touched
        }
        Request::Generation { reply } => answer(reply, s.generation(), nothing),
        Request::GetNat { reply } => answer(reply, s.get_nat(), nothing),
        Request::PutNat {
            settings,
            forwards,
            engine_ports,
            reply,
        } => answer(
            reply,
            s.put_nat(&settings, &forwards, &engine_ports),
            nothing,
        ),
        Request::DeleteNat { reply } => answer(reply, s.delete_nat(), nothing),
        Request::ListNatForwards { reply } => answer(reply, s.list_nat_forwards(), nothing),
        Request::AddNatForward { def, reply } => answer(reply, s.add_nat_forward(&def), nothing),
        Request::DeleteNatForward { id, reply } => answer(reply, s.delete_nat_forward(id), nothing),
        Request::AddNatPoolAddress { address, reply } => {
            answer(reply, s.add_nat_pool_address(address), nothing)
        }
        Request::DeleteNatPoolAddress { address, reply } => {
            answer(reply, s.delete_nat_pool_address(address), nothing)
        }
        Request::ListTunnels { reply } => answer(reply, s.list_tunnels(), nothing),
        Request::GetTunnel { name, reply } => answer(reply, s.get_tunnel(&name), nothing),
        Request::CreateTunnel { def, reply } => answer(reply, s.create_tunnel(&def), nothing),
        Request::UpdateTunnel {
            name,
            update,
            reply,
        } => answer(reply, s.update_tunnel(&name, &update), nothing),
        Request::DeleteTunnel { name, reply } => answer(reply, s.delete_tunnel(&name), nothing),
        Request::ListPeers { tunnel, reply } => answer(reply, s.list_peers(&tunnel), nothing),
        Request::GetPeer { tunnel, id, reply } => answer(reply, s.get_peer(&tunnel, id), nothing),
        Request::CreatePeer { tunnel, def, reply } => {
            answer(reply, s.create_peer(&tunnel, &def), nothing)
        }
        Request::ReplacePeer {
            tunnel,
            id,
            def,
            reply,
        } => answer(reply, s.replace_peer(&tunnel, id, &def), nothing),
        Request::DeletePeer { tunnel, id, reply } => {
            answer(reply, s.delete_peer(&tunnel, id), nothing)
        }
        Request::ListModels { reply } => answer(reply, s.list_models(), nothing),
        Request::GetModel { id, reply } => answer(reply, s.get_model(id), nothing),
        Request::UploadModel { upload, reply } => answer(reply, s.upload_model(&upload), nothing),
        Request::DeleteModel { id, reply } => answer(reply, s.delete_model(id), nothing),
        Request::PromoteModel { id, reply } => answer(reply, s.promote_model(id), nothing),
        Request::RollbackModel { reply } => answer(reply, s.rollback_model(), nothing),
        Request::DeactivateModel { reply } => answer(reply, s.deactivate_model(), nothing),
        Request::Close { .. } => unreachable!("handled by run"),
        _ => unreachable!("load-balancer and BGP requests have their own process_*"),
    }
}

/// Brings the engine and the health link up to date with the balancer's
/// state; the VIPs with their health.
fn refresh_lb(store: &mut Store, lb: &mut LbRuntime) -> Option<Vec<Vip>> {
    match lb.refresh(store) {
        Ok(v) => Some(v),
        Err(e) => {
            tracing::error!("reading the balancer's state failed: {e}");
            None
        }
    }
}

/// `vip` with its backends' health.
fn with_health(lb: &LbRuntime, vip: Result<Vip>) -> Result<Vip> {
    vip.map(|v| {
        let mut one = [v];
        lb.annotate(&mut one);
        let [v] = one;
        v
    })
}

/// Backend `b` (just changed) as the refreshed state has it.
fn backend_with_health(vips: Option<&[Vip]>, b: Backend) -> Backend {
    vips.and_then(|vs| {
        vs.iter()
            .flat_map(|v| v.backends.iter())
            .find(|x| x.id == b.id)
            .cloned()
    })
    .unwrap_or(b)
}

/// Applies one load-balancer request; a change refreshes the engine's view.
fn process_lb(s: &mut Store, lb: &mut LbRuntime, req: Request) {
    match req {
        Request::ListVips { reply } => {
            let r = s.list_vips().map(|mut v| {
                lb.annotate(&mut v);
                v
            });
            drop(reply.send(r));
        }
        Request::GetVip { name, reply } => drop(reply.send(with_health(lb, s.get_vip(&name)))),
        Request::CreateVip {
            def,
            backends,
            reply,
        } => {
            let r = s.create_vip(&def, &backends);
            if r.is_ok() {
                refresh_lb(s, lb);
            }
            drop(reply.send(with_health(lb, r)));
        }
        Request::UpdateVip { name, def, reply } => {
            let r = s.update_vip(&name, &def);
            if r.is_ok() {
                refresh_lb(s, lb);
            }
            drop(reply.send(with_health(lb, r)));
        }
        Request::DeleteVip { name, reply } => {
            let r = s.delete_vip(&name);
            if r.is_ok() {
                refresh_lb(s, lb);
            }
            drop(reply.send(r));
        }
        Request::AddBackend { vip, def, reply } => {
            let r = s.add_backend(&vip, &def);
            let r = match r {
                Ok(b) => Ok(backend_with_health(refresh_lb(s, lb).as_deref(), b)),
                e => e,
            };
            drop(reply.send(r));
        }
        Request::SetBackendWeight {
            vip,
            key,
            weight,
            reply,
        } => {
            let r = match s.set_backend_weight(&vip, key, weight) {
                Ok(b) => Ok(backend_with_health(refresh_lb(s, lb).as_deref(), b)),
                e => e,
            };
            drop(reply.send(r));
        }
        Request::RemoveBackend { vip, key, reply } => {
            let r = s.remove_backend(&vip, key);
            if r.is_ok() {
                refresh_lb(s, lb);
            }
            drop(reply.send(r));
        }
        Request::LbHealthSync { states } => {
            lb.health_sync(states);
            refresh_lb(s, lb);
        }
        Request::LbHealthEvent {
            vip_id,
            target,
            up,
            reason,
        } => {
            lb.health_event(vip_id, target, up, &reason);
            refresh_lb(s, lb);
        }
        _ => unreachable!("not a load-balancer request"),
    }
}

impl Request {
    /// True for the load balancer's requests (handled by `process_lb`).
    fn is_lb(&self) -> bool {
        matches!(
            self,
            Request::ListVips { .. }
                | Request::GetVip { .. }
                | Request::CreateVip { .. }
                | Request::UpdateVip { .. }
                | Request::DeleteVip { .. }
                | Request::AddBackend { .. }
                | Request::SetBackendWeight { .. }
                | Request::RemoveBackend { .. }
                | Request::LbHealthSync { .. }
                | Request::LbHealthEvent { .. }
        )
    }
}

impl Request {
    /// True for requests that may change the NAT configuration.
    fn touches_nat(&self) -> bool {
        matches!(
            self,
            Request::PutNat { .. }
                | Request::DeleteNat { .. }
                | Request::AddNatForward { .. }
                | Request::DeleteNatForward { .. }
                | Request::AddNatPoolAddress { .. }
                | Request::DeleteNatPoolAddress { .. }
        )
    }
}

impl Request {
    /// True for requests that may change tunnels or peers.
    fn touches_wg(&self) -> bool {
        matches!(
            self,
            Request::CreateTunnel { .. }
                | Request::UpdateTunnel { .. }
                | Request::DeleteTunnel { .. }
                | Request::CreatePeer { .. }
                | Request::ReplacePeer { .. }
                | Request::DeletePeer { .. }
        )
    }
}

impl Request {
    /// True for requests that may change the active model.
    fn touches_models(&self) -> bool {
        matches!(
            self,
            Request::PromoteModel { .. }
                | Request::RollbackModel { .. }
                | Request::DeactivateModel { .. }
        )
    }
}

/// Hands the speaker the BGP desired state as stored now; a failure to
/// read it is logged and the speaker keeps the last snapshot.
fn publish_bgp(store: &mut Store, bgp: &watch::Sender<Arc<BgpDesired>>) {
    match store.bgp_desired() {
        Ok(d) => {
            bgp.send_if_modified(|cur| {
                let changed = **cur != d;
                if changed {
                    *cur = Arc::new(d);
                }
                changed
            });
        }
        Err(e) => tracing::error!("reading the BGP desired state failed: {e}"),
    }
}

/// Sends `result`; true when it is a success (the state may have changed).
fn reply_ok<T>(reply: Reply<T>, result: Result<T>) -> bool {
    let ok = result.is_ok();
    drop(reply.send(result));
    ok
}

/// Applies one BGP request; true when it changed the desired state.
fn process_bgp(s: &mut Store, req: Request) -> bool {
    match req {
        Request::GetBgp { reply } => drop(reply.send(s.get_bgp_global())),
        Request::PutBgp { global, reply } => return reply_ok(reply, s.put_bgp_global(&global)),
        Request::ListBgpNeighbors { reply } => drop(reply.send(s.list_bgp_neighbors())),
        Request::GetBgpNeighbor { address, reply } => drop(reply.send(s.get_bgp_neighbor(address))),
        Request::CreateBgpNeighbor { def, reply } => {
            return reply_ok(reply, s.create_bgp_neighbor(&def))
        }
        Request::PatchBgpNeighbor {
            address,
            patch,
            reply,
        } => return reply_ok(reply, s.patch_bgp_neighbor(address, &patch)),
        Request::DeleteBgpNeighbor { address, reply } => {
            return reply_ok(reply, s.delete_bgp_neighbor(address))
        }
        Request::ListBgpPolicies { reply } => drop(reply.send(s.list_bgp_policies())),
        Request::GetBgpPolicy { name, reply } => drop(reply.send(s.get_bgp_policy(&name))),
        Request::PutBgpPolicy { policy, reply } => {
            return reply_ok(reply, s.put_bgp_policy(&policy))
        }
        Request::DeleteBgpPolicy { name, reply } => {
            return reply_ok(reply, s.delete_bgp_policy(&name))
        }
        Request::ListBgpNetworks { reply } => drop(reply.send(s.list_bgp_networks())),
        Request::AddBgpNetwork { prefix, reply } => {
            return reply_ok(reply, s.add_bgp_network(prefix))
        }
        Request::DeleteBgpNetwork { prefix, reply } => {
            return reply_ok(reply, s.delete_bgp_network(prefix))
        }
        _ => unreachable!("not a BGP request"),
    }
    false
}

impl Request {
    /// True for BGP's requests (handled by `process_bgp`).
    fn is_bgp(&self) -> bool {
        matches!(
            self,
            Request::GetBgp { .. }
                | Request::PutBgp { .. }
                | Request::ListBgpNeighbors { .. }
                | Request::GetBgpNeighbor { .. }
                | Request::CreateBgpNeighbor { .. }
                | Request::PatchBgpNeighbor { .. }
                | Request::DeleteBgpNeighbor { .. }
                | Request::ListBgpPolicies { .. }
                | Request::GetBgpPolicy { .. }
                | Request::PutBgpPolicy { .. }
                | Request::DeleteBgpPolicy { .. }
                | Request::ListBgpNetworks { .. }
                | Request::AddBgpNetwork { .. }
                | Request::DeleteBgpNetwork { .. }
        )
    }
}

/// Publishes the active model if it changed; a failure is logged and
/// retried after the next model request.
fn push_models(store: &mut Store, models: &mut ModelPusher) {
    match models.push_if_changed(store) {
        Ok(Some(n)) => tracing::info!(model_file = n, "published the active model to the engine"),
        Ok(None) => {}
        Err(e) => tracing::error!("publishing the model to the engine failed: {e}"),
    }
}

/// Publishes the WireGuard configuration if it changed; a failure is
/// logged (without any key: errors name files and reasons only) and
/// retried after the next WireGuard change.
fn push_wg(store: &mut Store, wg: &mut Option<WgPusher>) {
    if let Some(p) = wg.as_mut() {
        match p.push_if_changed(store) {
            Ok(Some(n)) => tracing::debug!(wg_file = n, "published WireGuard to the engine"),
            Ok(None) => {}
            Err(e) => tracing::error!("publishing WireGuard to the engine failed: {e}"),
        }
    }
}

/// Publishes the NAT configuration if it changed; a failure is logged and
/// retried after the next NAT change.
fn push_nat(store: &mut Store, nat: &mut Option<NatPusher>) {
    if let Some(p) = nat.as_mut() {
        match p.push_if_changed(store) {
            Ok(Some(n)) => tracing::debug!(nat_file = n, "published NAT to the engine"),
            Ok(None) => {}
            Err(e) => tracing::error!("publishing NAT to the engine failed: {e}"),
        }
    }
}

impl StoreHandle {
    /// A handle that does not keep the actor running.
    pub fn downgrade(&self) -> WeakStoreHandle {
        WeakStoreHandle {
            tx: self.tx.downgrade(),
        }
    }

    /// The BGP desired state: the stored one now, then a new snapshot
    /// after every change (the speaker follows it; `borrow_and_update`
    /// then `changed().await`). Ends when the actor stops.
    pub fn subscribe_bgp(&self) -> watch::Receiver<Arc<BgpDesired>> {
        self.bgp.clone()
    }

    /// Merges the speaker's IPv4 route changes into the pushed table.
    pub async fn push_bgp_routes(&self, update: BgpUpdate) -> Result<Option<u64>> {
        self.call(|reply| Request::BgpRoutes { update, reply })
            .await
    }

    pub async fn get_bgp(&self) -> Result<BgpGlobal> {
        self.call(|reply| Request::GetBgp { reply }).await
    }
    pub async fn put_bgp(&self, global: BgpGlobal) -> Result<BgpGlobal> {
        self.call(|reply| Request::PutBgp { global, reply }).await
    }
    pub async fn list_bgp_neighbors(&self) -> Result<Vec<Neighbor>> {
        self.call(|reply| Request::ListBgpNeighbors { reply }).await
    }
    pub async fn get_bgp_neighbor(&self, address: IpAddr) -> Result<Neighbor> {
        self.call(|reply| Request::GetBgpNeighbor { address, reply })
            .await
    }
    pub async fn create_bgp_neighbor(&self, def: NeighborDef) -> Result<Neighbor> {
        self.call(|reply| Request::CreateBgpNeighbor { def, reply })
            .await
    }
    pub async fn patch_bgp_neighbor(
        &self,
        address: IpAddr,
        patch: NeighborPatch,
    ) -> Result<Neighbor> {
        self.call(|reply| Request::PatchBgpNeighbor {
            address,
            patch,
            reply,
        })
        .await
    }
    pub async fn delete_bgp_neighbor(&self, address: IpAddr) -> Result<()> {
        self.call(|reply| Request::DeleteBgpNeighbor { address, reply })
            .await
    }
    pub async fn list_bgp_policies(&self) -> Result<Vec<PolicyConfig>> {
        self.call(|reply| Request::ListBgpPolicies { reply }).await
    }
    pub async fn get_bgp_policy(&self, name: String) -> Result<PolicyConfig> {
        self.call(|reply| Request::GetBgpPolicy { name, reply })
            .await
    }
    pub async fn put_bgp_policy(&self, policy: PolicyConfig) -> Result<bool> {
        self.call(|reply| Request::PutBgpPolicy { policy, reply })
            .await
    }
    pub async fn delete_bgp_policy(&self, name: String) -> Result<()> {
        self.call(|reply| Request::DeleteBgpPolicy { name, reply })
            .await
    }
    pub async fn list_bgp_networks(&self) -> Result<Vec<Prefix>> {
        self.call(|reply| Request::ListBgpNetworks { reply }).await
    }
    pub async fn add_bgp_network(&self, prefix: Prefix) -> Result<Prefix> {
        self.call(|reply| Request::AddBgpNetwork { prefix, reply })
            .await
    }
    pub async fn delete_bgp_network(&self, prefix: Prefix) -> Result<()> {
        self.call(|reply| Request::DeleteBgpNetwork { prefix, reply })
            .await
    }

    pub async fn list_vips(&self) -> Result<Vec<Vip>> {
        self.call(|reply| Request::ListVips { reply }).await
    }
    pub async fn get_vip(&self, name: String) -> Result<Vip> {
        self.call(|reply| Request::GetVip { name, reply }).await
    }
    pub async fn create_vip(&self, def: VipDef, backends: Vec<BackendDef>) -> Result<Vip> {
        self.call(|reply| Request::CreateVip {
            def,
            backends,
            reply,
        })
        .await
    }
    pub async fn update_vip(&self, name: String, def: VipDef) -> Result<Vip> {
        self.call(|reply| Request::UpdateVip { name, def, reply })
            .await
    }
    pub async fn delete_vip(&self, name: String) -> Result<()> {
        self.call(|reply| Request::DeleteVip { name, reply }).await
    }
    pub async fn add_backend(&self, vip: String, def: BackendDef) -> Result<Backend> {
        self.call(|reply| Request::AddBackend { vip, def, reply })
            .await
    }
    pub async fn set_backend_weight(
        &self,
        vip: String,
        key: SocketAddrV4,
        weight: u16,
    ) -> Result<Backend> {
        self.call(|reply| Request::SetBackendWeight {
            vip,
            key,
            weight,
            reply,
        })
        .await
    }
    pub async fn remove_backend(&self, vip: String, key: SocketAddrV4) -> Result<()> {
        self.call(|reply| Request::RemoveBackend { vip, key, reply })
            .await
    }

    async fn call<T>(&self, make: impl FnOnce(Reply<T>) -> Request) -> Result<T> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(make(reply))
            .await
            .map_err(|_| Error::Unavailable)?;
        rx.await.map_err(|_| Error::Unavailable)?
    }

    pub async fn list_orgs(&self) -> Result<Vec<Organization>> {
        self.call(|reply| Request::ListOrgs { reply }).await
    }
    pub async fn get_org(&self, org: String) -> Result<Organization> {
        self.call(|reply| Request::GetOrg { org, reply }).await
    }
    pub async fn create_org(&self, spec: OrgSpec) -> Result<Organization> {
        self.call(|reply| Request::CreateOrg { spec, reply }).await
    }
    pub async fn delete_org(&self, org: String) -> Result<()> {
        self.call(|reply| Request::DeleteOrg { org, reply }).await
    }
    pub async fn list_interfaces(&self, org: String) -> Result<Vec<Interface>> {
        self.call(|reply| Request::ListInterfaces { org, reply })
            .await
    }
    pub async fn get_interface(&self, org: String, id: i64) -> Result<Interface> {
        self.call(|reply| Request::GetInterface { org, id, reply })
            .await
    }
    pub async fn create_interface(&self, org: String, def: InterfaceDef) -> Result<Interface> {
        self.call(|reply| Request::CreateInterface { org, def, reply })
            .await
    }
    pub async fn replace_interface(
        &self,
        org: String,
        id: i64,
        def: InterfaceDef,
    ) -> Result<Interface> {
        self.call(|reply| Request::ReplaceInterface {
            org,
            id,
            def,
            reply,
        })
        .await
    }
    pub async fn delete_interface(&self, org: String, id: i64) -> Result<()> {
        self.call(|reply| Request::DeleteInterface { org, id, reply })
            .await
    }
    pub async fn list_routes(&self, org: String) -> Result<Vec<Route>> {
        self.list_routes_page(org, None).await
    }
    pub async fn list_routes_page(&self, org: String, page: Option<Page>) -> Result<Vec<Route>> {
        self.call(|reply| Request::ListRoutes { org, page, reply })
            .await
    }
    pub async fn get_route(&self, org: String, id: i64) -> Result<Route> {
        self.call(|reply| Request::GetRoute { org, id, reply })
            .await
    }
    pub async fn create_route(&self, org: String, def: RouteDef) -> Result<Route> {
        self.call(|reply| Request::CreateRoute { org, def, reply })
            .await
    }
    pub async fn replace_route(&self, org: String, id: i64, def: RouteDef) -> Result<Route> {
        self.call(|reply| Request::ReplaceRoute {
            org,
            id,
            def,
            reply,
        })
        .await
    }
    pub async fn delete_route(&self, org: String, id: i64) -> Result<()> {
        self.call(|reply| Request::DeleteRoute { org, id, reply })
            .await
    }
    pub async fn replace_all_routes(&self, org: String, defs: Vec<RouteDef>) -> Result<Vec<Route>> {
        self.call(|reply| Request::ReplaceAllRoutes { org, defs, reply })
            .await
    }
    pub async fn bulk_routes(&self, org: String, req: BulkRoutes) -> Result<BulkOutcome> {
        self.call(|reply| Request::BulkRoutes { org, req, reply })
            .await
    }
    pub async fn generation(&self) -> Result<u64> {
        self.call(|reply| Request::Generation { reply }).await
    }
    pub async fn get_nat(&self) -> Result<NatConfig> {
        self.call(|reply| Request::GetNat { reply }).await
    }
    pub async fn put_nat(
        &self,
        settings: NatSettings,
        forwards: Vec<ForwardDef>,
        engine_ports: EnginePorts,
    ) -> Result<NatConfig> {
        self.call(|reply| Request::PutNat {
            settings,
            forwards,
            engine_ports,
            reply,
        })
        .await
    }
    pub async fn delete_nat(&self) -> Result<()> {
        self.call(|reply| Request::DeleteNat { reply }).await
    }
    pub async fn list_nat_forwards(&self) -> Result<Vec<Forward>> {
        self.call(|reply| Request::ListNatForwards { reply }).await
    }
    pub async fn add_nat_forward(&self, def: ForwardDef) -> Result<Forward> {
        self.call(|reply| Request::AddNatForward { def, reply })
            .await
    }
    pub async fn delete_nat_forward(&self, id: i64) -> Result<()> {
        self.call(|reply| Request::DeleteNatForward { id, reply })
            .await
    }
    pub async fn add_nat_pool_address(&self, address: Ipv4Addr) -> Result<NatConfig> {
        self.call(|reply| Request::AddNatPoolAddress { address, reply })
            .await
    }
    pub async fn delete_nat_pool_address(&self, address: Ipv4Addr) -> Result<NatConfig> {
        self.call(|reply| Request::DeleteNatPoolAddress { address, reply })
            .await
    }

    pub async fn list_tunnels(&self) -> Result<Vec<Tunnel>> {
        self.call(|reply| Request::ListTunnels { reply }).await
    }
    pub async fn get_tunnel(&self, name: String) -> Result<Tunnel> {
        self.call(|reply| Request::GetTunnel { name, reply }).await
    }
    pub async fn create_tunnel(&self, def: TunnelDef) -> Result<Tunnel> {
        self.call(|reply| Request::CreateTunnel { def, reply })
            .await
    }
    pub async fn update_tunnel(&self, name: String, update: TunnelUpdate) -> Result<Tunnel> {
        self.call(|reply| Request::UpdateTunnel {
            name,
            update,
            reply,
        })
        .await
    }
    pub async fn delete_tunnel(&self, name: String) -> Result<()> {
        self.call(|reply| Request::DeleteTunnel { name, reply })
            .await
    }
    pub async fn list_peers(&self, tunnel: String) -> Result<Vec<Peer>> {
        self.call(|reply| Request::ListPeers { tunnel, reply })
            .await
    }
    pub async fn get_peer(&self, tunnel: String, id: i64) -> Result<Peer> {
        self.call(|reply| Request::GetPeer { tunnel, id, reply })
            .await
    }
    pub async fn create_peer(&self, tunnel: String, def: PeerDef) -> Result<Peer> {
        self.call(|reply| Request::CreatePeer { tunnel, def, reply })
            .await
    }
    pub async fn replace_peer(&self, tunnel: String, id: i64, def: PeerDef) -> Result<Peer> {
        self.call(|reply| Request::ReplacePeer {
            tunnel,
            id,
            def,
            reply,
        })
        .await
    }
    pub async fn delete_peer(&self, tunnel: String, id: i64) -> Result<()> {
        self.call(|reply| Request::DeletePeer { tunnel, id, reply })
            .await
    }

    pub async fn list_models(&self) -> Result<Vec<ModelEntry>> {
        self.call(|reply| Request::ListModels { reply }).await
    }
    pub async fn get_model(&self, id: i64) -> Result<ModelEntry> {
        self.call(|reply| Request::GetModel { id, reply }).await
    }
    pub async fn upload_model(&self, upload: ModelUpload) -> Result<ModelEntry> {
        self.call(|reply| Request::UploadModel { upload, reply })
            .await
    }
    pub async fn delete_model(&self, id: i64) -> Result<()> {
        self.call(|reply| Request::DeleteModel { id, reply }).await
    }
    pub async fn promote_model(&self, id: i64) -> Result<ModelEntry> {
        self.call(|reply| Request::PromoteModel { id, reply }).await
    }
    pub async fn rollback_model(&self) -> Result<ActiveModel> {
        self.call(|reply| Request::RollbackModel { reply }).await
    }
    pub async fn deactivate_model(&self) -> Result<ActiveModel> {
        self.call(|reply| Request::DeactivateModel { reply }).await
    }

    /// Stops the actor and waits until the database is closed.
    pub async fn close(&self) {
        let (reply, rx) = oneshot::channel();
        if self.tx.send(Request::Close { reply }).await.is_ok() {
            let _ = rx.await;
        }
    }
}
