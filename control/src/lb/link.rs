//! The health link: a tokio task between the store actor and the health
//! monitors. It runs one [`HealthMonitor`] per VIP with a check (so two
//! VIPs may check one backend differently), follows the probe set the
//! actor publishes on a watch channel, and reports back to the actor: the
//! monitors' whole state after each reconfiguration, and every transition.
//! It holds the actor's channel weakly, so it never keeps the actor alive;
//! it ends when the actor drops the watch.

use std::collections::HashMap;

use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use super::health::HealthCheck;
use super::monitor::{HealthEvent, HealthMonitor};
use super::runtime::{ProbeSet, VipProbes};
use crate::state::{Request, WeakStoreHandle};

/// Events a monitor queues before its forwarder takes them.
const EVENT_QUEUE: usize = 64;

struct Watched {
    monitor: HealthMonitor,
    forward: JoinHandle<()>,
}

/// Starts the link on the current tokio runtime.
pub fn spawn(probes: watch::Receiver<ProbeSet>, store: WeakStoreHandle) -> JoinHandle<()> {
    tokio::spawn(run(probes, store))
}

async fn run(mut probes: watch::Receiver<ProbeSet>, store: WeakStoreHandle) {
    // Unbounded on purpose: the link awaits the monitors (update,
    // snapshot) while events wait here; a bounded queue could fill and
    // stall a monitor that the link is waiting for. Transitions are few
    // (each needs `rise` or `fall` probes).
    let (events, mut rx) = mpsc::unbounded_channel::<(i64, HealthEvent)>();
    let mut monitors: HashMap<i64, Watched> = HashMap::new();
    loop {
        tokio::select! {
            changed = probes.changed() => {
                if changed.is_err() {
                    break; // the actor stopped
                }
                let set = probes.borrow_and_update().clone();
                reconcile(&mut monitors, set, &events).await;
                let mut states = Vec::new();
                for (vip, w) in &monitors {
                    if let Ok(s) = w.monitor.snapshot().await {
                        states.extend(s.into_iter().map(|(a, h)| (*vip, a, h.is_up())));
                    }
                }
                if !store.send(Request::LbHealthSync { states }).await {
                    break;
                }
            }
            Some((vip_id, ev)) = rx.recv() => {
                let req = Request::LbHealthEvent {
                    vip_id,
                    target: ev.backend,
                    up: ev.up,
                    reason: ev.reason,
                };
                if !store.send(req).await {
                    break;
                }
            }
        }
    }
    for (_, w) in monitors.drain() {
        w.forward.abort();
        w.monitor.shutdown().await;
    }
}

/// Brings the monitors to `set`: new VIPs get one, changed ones are
/// updated (states kept), gone ones stop.
async fn reconcile(
    monitors: &mut HashMap<i64, Watched>,
    set: ProbeSet,
    events: &mpsc::UnboundedSender<(i64, HealthEvent)>,
) {
    let wanted: HashMap<i64, VipProbes> = set.into_iter().map(|p| (p.vip_id, p)).collect();
    let gone: Vec<i64> = monitors
        .keys()
        .filter(|id| !wanted.contains_key(id))
        .copied()
        .collect();
    for id in gone {
        if let Some(w) = monitors.remove(&id) {
            // Its queued events are of no use any more.
            w.forward.abort();
            w.monitor.shutdown().await;
        }
    }
    for (id, p) in wanted {
        let backends: Vec<_> = p
            .targets
            .iter()
            .map(|&(t, initial)| {
                (
                    t,
                    HealthCheck {
                        initial,
                        ..p.check.clone()
                    },
                )
            })
            .collect();
        match monitors.get(&id) {
            Some(w) => {
                // A stopped monitor cannot happen while we hold it; nothing to do then.
                let _ = w.monitor.update(backends).await;
            }
            None => {
                let (tx, mut own) = mpsc::channel::<HealthEvent>(EVENT_QUEUE);
                let all = events.clone();
                let forward = tokio::spawn(async move {
                    while let Some(ev) = own.recv().await {
                        if all.send((id, ev)).is_err() {
                            break;
                        }
                    }
                });
                let monitor = HealthMonitor::spawn(backends, tx);
                monitors.insert(id, Watched { monitor, forward });
            }
        }
    }
}
