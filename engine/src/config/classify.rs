//! `[classify]`: the per-worker flow table, signature DPI and batched model
//! inference (see [`crate::classify`]), as written in the engine's TOML.
//!
//! ```toml
//! [classify]
//! flows = 65536          # flow-table slots per worker (power of two)
//! dpi_slots = 4096       # flows under classification at once, per worker
//! model = "models/flow-mlp.bin"   # optional; the control process can push another
//! batch = 64             # flows scored per matrix product
//! batch_wait_ms = 5      # most a queued flow waits for a full batch
//! decide_after_ms = 1000 # a flow still undecided this long after its last
//!                        # packet (or its first, once its features are
//!                        # complete) goes to the model with what it has
//! [classify.idle_timeouts]   # seconds without a packet before a flow ends
//! tcp = 300
//! tcp_closed = 10        # after a FIN or RST
//! udp = 60
//! ```

use std::path::PathBuf;

use serde::Deserialize;

use super::{invalid, ConfigError};

/// `[classify]`.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ClassifySection {
    #[serde(default = "default_flows")]
    pub flows: u32,
    #[serde(default = "default_dpi_slots")]
    pub dpi_slots: u32,
    pub model: Option<PathBuf>,
    #[serde(default = "default_batch")]
    pub batch: u32,
    #[serde(default = "default_batch_wait_ms")]
    pub batch_wait_ms: u32,
    #[serde(default = "default_decide_after_ms")]
    pub decide_after_ms: u32,
    #[serde(default)]
    pub idle_timeouts: IdleTimeouts,
}

/// `[classify.idle_timeouts]` (seconds).
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct IdleTimeouts {
    #[serde(default = "default_tcp")]
    pub tcp: u32,
    #[serde(default = "default_tcp_closed")]
    pub tcp_closed: u32,
    #[serde(default = "default_udp")]
    pub udp: u32,
}

impl Default for IdleTimeouts {
    fn default() -> Self {
        IdleTimeouts {
            tcp: default_tcp(),
            tcp_closed: default_tcp_closed(),
            udp: default_udp(),
        }
    }
}

fn default_flows() -> u32 {
    65536
}
fn default_dpi_slots() -> u32 {
    4096
}
fn default_batch() -> u32 {
    64
}
fn default_batch_wait_ms() -> u32 {
    5
}
fn default_decide_after_ms() -> u32 {
    1000
}
fn default_tcp() -> u32 {
    300
}
fn default_tcp_closed() -> u32 {
    10
}
fn default_udp() -> u32 {
    60
}

impl ClassifySection {
    /// Checks ranges; names the key at fault.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if !self.flows.is_power_of_two() || !(64..=1 << 24).contains(&self.flows) {
            return Err(invalid(
                "classify.flows",
                "must be a power of two in 64..=16777216",
            ));
        }
        if self.dpi_slots == 0 || self.dpi_slots > self.flows {
            return Err(invalid("classify.dpi_slots", "must be 1..=classify.flows"));
        }
        if !(1..=1024).contains(&self.batch) {
            return Err(invalid("classify.batch", "must be 1..=1024"));
        }
        if self.batch_wait_ms > 10_000 {
            return Err(invalid("classify.batch_wait_ms", "must be at most 10000"));
        }
        if !(1..=600_000).contains(&self.decide_after_ms) {
            return Err(invalid("classify.decide_after_ms", "must be 1..=600000"));
        }
        let t = &self.idle_timeouts;
        for (key, v) in [
            ("classify.idle_timeouts.tcp", t.tcp),
            ("classify.idle_timeouts.tcp_closed", t.tcp_closed),
            ("classify.idle_timeouts.udp", t.udp),
        ] {
            if !(1..=86_400).contains(&v) {
                return Err(invalid(key, "must be 1..=86400 seconds"));
            }
        }
        if let Some(m) = &self.model {
            if !m.is_file() {
                return Err(invalid(
                    "classify.model",
                    format!("{} is not a readable file", m.display()),
                ));
            }
        }
        Ok(())
    }
}
