//! The balancer's state inside the store actor: backends' health as the
//! health monitors last reported it, the LB file pusher, and the probe set
//! handed to the health link ([`super::link`]). After every LB change and
//! every health report the actor calls [`LbRuntime::refresh`], which reads
//! the store, fills in health, publishes `lb.bin` if it changed, and hands
//! the (possibly new) probe set to the link.

use std::collections::HashMap;
use std::net::SocketAddr;

use tokio::sync::watch;

use super::health::HealthCheck;
use super::model::Vip;
use super::push::{compile, LbPusher};
use super::status::{backend_label, LbStatus};
use crate::error::Result;
use crate::push::SharedPublisher;
use crate::store::Store;

/// One VIP's health checking: its check and the addresses probed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VipProbes {
    pub vip_id: i64,
    pub check: HealthCheck,
    pub targets: Vec<SocketAddr>,
}

/// Every VIP with a check.
pub type ProbeSet = Vec<VipProbes>;

/// Owned by the store actor.
#[derive(Debug)]
pub struct LbRuntime {
    pusher: Option<LbPusher>,
    /// `(vip id, probe target)` → up, as last reported; a target not in
    /// it has its check's initial state.
    health: HashMap<(i64, SocketAddr), bool>,
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
        (
            LbRuntime {
                pusher: publisher.map(LbPusher::new),
                health: HashMap::new(),
                probes,
                status,
            },
            rx,
        )
    }

    /// Fills in each backend's `up`: `None` without a check, else its health.
    pub fn annotate(&self, vips: &mut [Vip]) {
        for v in vips {
            let Some(check) = &v.def.health_check else {
                v.backends.iter_mut().for_each(|b| b.up = None);
                continue;
            };
            let initial = check.health_check().initial.is_up();
            for b in &mut v.backends {
                let target = check.target(&b.def);
                b.up = Some(*self.health.get(&(v.id, target)).unwrap_or(&initial));
            }
        }
    }

    /// Reads the store and brings the engine, the probe set and the status
    /// up to date. A failed publication is logged and retried at the next
    /// refresh.
    pub fn refresh(&mut self, store: &mut Store) -> Result<Vec<Vip>> {
        let mut vips = store.list_vips()?;
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
                let mut targets: Vec<SocketAddr> =
                    v.backends.iter().map(|b| c.target(&b.def)).collect();
                targets.sort_unstable();
                targets.dedup();
                Some(VipProbes {
                    vip_id: v.id,
                    check: c.health_check(),
                    targets,
                })
            })
            .collect();
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

    /// The monitors' whole state after they were reconfigured.
    pub fn health_sync(&mut self, states: Vec<(i64, SocketAddr, bool)>) {
        self.health = states.into_iter().map(|(v, a, up)| ((v, a), up)).collect();
    }

    /// One backend's transition; counted per backend probed at `target`
    /// when it changes what the engine gets.
    pub fn health_event(&mut self, vip_id: i64, target: SocketAddr, up: bool, reason: &str) {
        let before = self.health.insert((vip_id, target), up);
        let vips = self.status.vips();
        let Some(v) = vips.iter().find(|v| v.id == vip_id) else {
            return;
        };
        let Some(check) = &v.def.health_check else {
            return;
        };
        let was = before.unwrap_or(check.health_check().initial.is_up());
        if was == up {
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
