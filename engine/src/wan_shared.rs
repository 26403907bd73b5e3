//! What every worker and the exporters share of `[wan]`: the resolved
//! configuration, the exported counter names and, per worker, the array
//! it writes them into (only the worker running the paths writes
//! non-zero values; readers sum over workers).

use std::sync::atomic::AtomicU64;
use std::sync::Arc;

use crate::config::wan::WanConfig;
use crate::config::{ConfigError, EngineConfig};

#[derive(Debug)]
pub struct WanShared {
    pub cfg: Arc<WanConfig>,
    /// `wan.`-prefixed names ([`crate::wan::runtime::counter_names`]).
    pub names: Vec<String>,
    pub counters: Vec<Arc<[AtomicU64]>>,
}

impl WanShared {
    /// None without `[wan]`.
    pub fn new(cfg: &EngineConfig, workers: usize) -> Result<Option<Arc<WanShared>>, ConfigError> {
        let Some(w) = &cfg.wan else {
            return Ok(None);
        };
        let wc = Arc::new(w.resolve(cfg)?);
        let names = crate::wan::runtime::counter_names(&wc);
        let counters = (0..workers)
            .map(|_| (0..names.len()).map(|_| AtomicU64::new(0)).collect())
            .collect();
        Ok(Some(Arc::new(WanShared {
            cfg: wc,
            names,
            counters,
        })))
    }

    /// Each counter summed over the workers, by name without `wan.`.
    pub fn totals(&self) -> Vec<(String, u64)> {
        self.names
            .iter()
            .enumerate()
            .map(|(i, n)| {
                let v = self
                    .counters
                    .iter()
                    .map(|w| w[i].load(std::sync::atomic::Ordering::Relaxed))
                    .sum();
                (n.trim_start_matches("wan.").to_string(), v)
            })
            .collect()
    }
}
