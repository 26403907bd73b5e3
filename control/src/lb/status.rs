//! [`LbStatus`]: what the store actor last compiled (VIPs and backends
//! with their health) and the health transitions it counted, shared with
//! the metrics collector. Written by the store actor only; read at scrape
//! time.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use crate::lb::model::Vip;

/// `(vip name, backend "addr:port", "up" | "down")`.
pub type TransitionKey = (String, String, &'static str);

#[derive(Debug, Default)]
struct Inner {
    vips: Vec<Vip>,
    transitions: BTreeMap<TransitionKey, u64>,
    health_syncs: u64,
}

/// Cheap to clone (one shared state).
#[derive(Debug, Clone, Default)]
pub struct LbStatus(Arc<Mutex<Inner>>);

/// The label of a backend in metrics: `addr:port`.
pub fn backend_label(b: &crate::lb::model::Backend) -> String {
    b.def.endpoint().to_string()
}

impl LbStatus {
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding it left plain data: still usable.
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The VIPs as last compiled (backends' `up` filled in).
    pub fn vips(&self) -> Vec<Vip> {
        self.lock().vips.clone()
    }

    /// Replaces the VIPs; transition counts of backends gone are dropped.
    pub fn set_vips(&self, vips: Vec<Vip>) {
        let mut g = self.lock();
        g.transitions.retain(|(vip, backend, _), _| {
            vips.iter().any(|v| {
                v.def.name == *vip && v.backends.iter().any(|b| backend_label(b) == *backend)
            })
        });
        g.vips = vips;
    }

    /// Counts one health transition of a backend.
    pub fn count_transition(&self, vip: &str, backend: String, up: bool) {
        let to = if up { "up" } else { "down" };
        *self
            .lock()
            .transitions
            .entry((vip.to_owned(), backend, to))
            .or_insert(0) += 1;
    }

    /// Notes that the monitors' whole state came in (after a reconfiguration).
    pub fn count_health_sync(&self) {
        self.lock().health_syncs += 1;
    }

    /// How many times the monitors' whole state came in (a restart is
    /// settled once the first one was applied).
    pub fn health_syncs(&self) -> u64 {
        self.lock().health_syncs
    }

    /// Every transition count.
    pub fn transitions(&self) -> Vec<(TransitionKey, u64)> {
        self.lock()
            .transitions
            .iter()
            .map(|(k, v)| (k.clone(), *v))
            .collect()
    }
}
