//! `[punt]`: hand packets to the engine's addresses that it does not
//! consume to kernel TAP interfaces mirroring the ports (see
//! [`crate::punt`]).

use serde::Deserialize;

use super::{invalid, ConfigError, EngineConfig};

/// `[punt]`.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct PuntSection {
    /// TAP names are this prefix and the port's name (15 characters at most).
    #[serde(default = "default_prefix")]
    pub tap_prefix: String,
    /// Packets per second each worker may punt (beyond: dropped, counted).
    #[serde(default = "default_rate")]
    pub rate_pps: u32,
    #[serde(default = "default_burst")]
    pub burst: u32,
}

fn default_prefix() -> String {
    "lcp-".into()
}
fn default_rate() -> u32 {
    20_000
}
fn default_burst() -> u32 {
    2_000
}

/// Validates `[punt]` if present.
pub fn validate(cfg: &EngineConfig) -> Result<(), ConfigError> {
    let Some(p) = &cfg.punt else {
        return Ok(());
    };
    if p.rate_pps == 0 {
        return Err(invalid("punt.rate_pps", "must be positive"));
    }
    if p.burst == 0 {
        return Err(invalid("punt.burst", "must be positive"));
    }
    for port in &cfg.ports {
        let name = crate::punt::tap_name(&p.tap_prefix, &port.name);
        if name.len() > crate::punt::tap::IFNAME_MAX
            || name.contains(|c: char| c == '/' || c.is_whitespace())
        {
            return Err(invalid(
                "punt.tap_prefix",
                format!("TAP name {name:?} is not a valid interface name (15 characters at most)"),
            ));
        }
    }
    Ok(())
}
