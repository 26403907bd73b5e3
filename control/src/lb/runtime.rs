//! The balancer's state inside the store actor: backends' health as the
//! health monitors last reported it, the LB file pusher, and the probe set
//! handed to the health link ([`super::link`]). After every LB change and
//! every health report the actor calls [`LbRuntime::refresh`], which reads
//! the store, fills in health, publishes `lb.bin` if it changed, and hands
//! the (possibly new) probe set to the link. At start, checked backends
//! take their health from the `lb.bin` already published ([`super::restore`]).

use std::collections::HashMap;
use std::net::SocketAddr;

use tokio::sync::watch;

use patronus_shm::lb::LbTables;

use super::health::{Health, HealthCheck};
use super::model::Vip;
use super::push::{compile, LbPusher};
use super::restore;
use super::status::{backend_label, LbStatus};
use crate::error::Result;
use crate::push::SharedPublisher;
use crate::store::Store;

/// One VIP's health checking: its check and the addresses probed, each
/// with the state it starts in (the check's `initial`, or what the engine
/// had before a restart). A target's start state stays the same while it
/// is probed, so the monitor never sees its check change because of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VipProbes {
    pub vip_id: i64,
    pub check: HealthCheck,
    pub targets: Vec<(SocketAddr, Health)>,
}

/// Every VIP with a check.
pub type ProbeSet = Vec<VipProbes>;

/// Owned by the store actor.
#[derive(Debug)]
pub struct LbRuntime {
    pusher: Option<LbPusher>,
    /// `(vip id, probe target)` → up, as last reported; a target not in
    /// it has its start state ([`Self::initial`]).
    health: HashMap<(i64, SocketAddr), bool>,
    /// The `lb.bin` found at start, until the first refresh turns it into
    /// `seeds`.
    restored: Option<LbTables>,
    /// Start states taken from `restored`, kept while their target is
    /// probed (dropped when it is not, so a backend added again later
    /// starts as the check says).
    seeds: HashMap<(i64, SocketAddr), Health>,
    probes: watch::Sender<ProbeSet>,
    status: LbStatus,
}

impl LbRuntime {
    /// With a publisher, changes go to the engine; the receiver is the
    /// health link's.
    pub fn new(
        publisher: Option<SharedPublisher>,
        status: LbStatus,
    ) -> (Self, watch::Receiver<ProbeSet>) {
        let (probes, rx) = watch::channel(Vec::new());
        let restored = publisher.as_ref().and_then(read_published);
        (
            LbRuntime {
                pusher: publisher.map(LbPusher::new),
                health: HashMap::new(),
                restored,
                seeds: HashMap::new(),
                probes,
                status,
            },
            rx,
        )
    }

    /// The state a target of VIP `vip_id` checked by `check` starts in.
    fn initial(&self, vip_id: i64, target: SocketAddr, check: &HealthCheck) -> Health {
        self.seeds
            .get(&(vip_id, target))
            .copied()
            .unwrap_or(check.initial)
    }

    /// A target's health: as last reported, else its start state.
    fn current(&self, vip_id: i64, target: SocketAddr, check: &HealthCheck) -> bool {
        match self.health.get(&(vip_id, target)) {
            Some(up) => *up,
            None => self.initial(vip_id, target, check).is_up(),
        }
    }

    /// Fills in each backend's `up`: `None` without a check, else its health.
    pub fn annotate(&self, vips: &mut [Vip]) {
        for v in vips {
            let Some(check) = &v.def.health_check else {
                v.backends.iter_mut().for_each(|b| b.up = None);
                continue;
            };
            let hc = check.health_check();
            for b in &mut v.backends {
                b.up = Some(self.current(v.id, check.target(&b.def), &hc));
            }
        }
    }

    /// Reads the store and brings the engine, the probe set and the status
    /// up to date. A failed publication is logged and retried at the next
    /// refresh.
    pub fn refresh(&mut self, store: &mut Store) -> Result<Vec<Vip>> {
        let mut vips = store.list_vips()?;
        if let Some(published) = self.restored.take() {
            self.seeds = restore::seeds(&vips, &published);
            let up = self.seeds.values().filter(|h| h.is_up()).count();
            tracing::info!(
                up,
                down = self.seeds.len() - up,
                "checked backends start as the engine last had them"
            );
        }
        self.annotate(&mut vips);
        if let Some(p) = self.pusher.as_mut() {
            match compile(&vips).and_then(|t| p.push_if_changed(t)) {
                Ok(Some(n)) => tracing::debug!(lb_file = n, "published the balancer to the engine"),
                Ok(None) => {}
                Err(e) => tracing::error!("publishing the balancer to the engine failed: {e}"),
            }
        }
        let set: ProbeSet = vips
            .iter()
            .filter_map(|v| {
                let c = v.def.health_check.as_ref()?;
                let check = c.health_check();
                let mut targets: Vec<(SocketAddr, Health)> = v
                    .backends
                    .iter()
                    .map(|b| {
                        let t = c.target(&b.def);
                        (t, self.initial(v.id, t, &check))
                    })
                    .collect();
                targets.sort_unstable_by_key(|(t, _)| *t);
                targets.dedup_by_key(|(t, _)| *t);
                Some(VipProbes {
                    vip_id: v.id,
                    check,
                    targets,
                })
            })
            .collect();
        self.seeds.retain(|(vip, target), _| {
            set.iter()
                .any(|p| p.vip_id == *vip && p.targets.iter().any(|(t, _)| t == target))
        });
        self.probes.send_if_modified(|cur| {
            let changed = *cur != set;
            if changed {
                *cur = set;
            }
            changed
        });
        self.status.set_vips(vips.clone());
        Ok(vips)
    }

    /// The monitors' whole state after they were reconfigured. A target
    /// whose state differs from what was known changed without its event
    /// having arrived (yet): counted here, and the event, when it comes,
    /// finds nothing left to count.
    pub fn health_sync(&mut self, states: Vec<(i64, SocketAddr, bool)>) {
        self.status.count_health_sync();
        let vips = self.status.vips();
        for &(vip_id, target, up) in &states {
            self.count_if_changed(&vips, vip_id, target, up, "seen in the monitors' state");
        }
        self.health = states.into_iter().map(|(v, a, up)| ((v, a), up)).collect();
    }

    /// One backend's transition; counted per backend probed at `target`
    /// when it changes what the engine gets.
    pub fn health_event(&mut self, vip_id: i64, target: SocketAddr, up: bool, reason: &str) {
        let vips = self.status.vips();
        self.count_if_changed(&vips, vip_id, target, up, reason);
        self.health.insert((vip_id, target), up);
    }

    /// Counts a transition of each backend of `vips`' VIP `vip_id` probed
    /// at `target` when `up` differs from its known health.
    fn count_if_changed(
        &self,
        vips: &[Vip],
        vip_id: i64,
        target: SocketAddr,
        up: bool,
        reason: &str,
    ) {
        let Some(v) = vips.iter().find(|v| v.id == vip_id) else {
            return;
        };
        let Some(check) = &v.def.health_check else {
            return;
        };
        if self.current(vip_id, target, &check.health_check()) == up {
            return;
        }
        for b in v.backends.iter().filter(|b| check.target(&b.def) == target) {
            tracing::info!(
                vip = %v.def.name,
                backend = %b.def.endpoint(),
                up,
                reason,
                "backend health changed"
            );
            self.status
                .count_transition(&v.def.name, backend_label(b), up);
        }
    }
}

/// The LB file a previous control process published here, if any; one
/// that cannot be read is logged and ignored (checked backends start down).
fn read_published(publisher: &SharedPublisher) -> Option<LbTables> {
    let p = publisher.lock().unwrap_or_else(|e| e.into_inner());
    match restore::published(&p) {
        Ok(t) => t,
        Err(e) => {
            tracing::warn!(
                "reading the published balancer failed, checked backends start down: {e}"
            );
            None
        }
    }
}

#[cfg(test)]
#[path = "runtime_tests.rs"]
mod tests;
