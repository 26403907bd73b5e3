//! `[wan]`: the paths to other sites (one `[[wireguard]]` tunnel per
//! uplink pair), how they are probed, and the steering policies per
//! application class and tenant, with their FEC and compression. A
//! `[[route]]` into any path tunnel of a site is steered among all of
//! that site's paths (`pipeline/wan_stage.rs`).
//!
//! ```toml
//! [wan]
//! probe_interval_ms = 100
//! dead_after_ms = 800
//! [[wan.path]]
//! name = "fibre"
//! tunnel = "wg-fibre"      # a [[wireguard]] with exactly one peer
//! site = "b"               # default "remote"
//! kind = "fibre"           # fibre | cable | dsl | lte | satellite | other
//! cost = 1
//! [[wan.policy]]
//! name = "voice"
//! classes = ["webrtc"]
//! vlans = []               # tenants: ingress VLAN ids (empty = any)
//! max_rtt_ms = 150
//! max_jitter_ms = 30
//! max_loss_pct = 1.0
//! mode = "best-score"      # best-score | cheapest | preferred
//! prefer = ["any", "lte"]  # path names, uplink kinds, "any"
//! fec = "adaptive"         # off | on | adaptive
//! compress = false
//! duplicate = false        # also send on the best other path (excludes fec)
//! ```

use serde::Deserialize;

use super::{invalid, ConfigError, EngineConfig};
use crate::wan::envelope::ENVELOPE_LEN;
use crate::wan::fec::{MAX_K, MAX_M};
use crate::wan::policy::MAX_PATHS;
use crate::wan::{
    AppClass, FecConfig, Policy, PolicyId, PolicyTable, Preference, ProbeConfig, Sla, SteeringMode,
    TenantId, UplinkKind, WindowConfig,
};
use crate::wg_plan::{config_tunnel_key, TunnelKey};

/// `[wan]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WanSection {
    #[serde(default = "default_interval")]
    pub probe_interval_ms: u32,
    #[serde(default = "default_dead")]
    pub dead_after_ms: u32,
    #[serde(default = "default_rise")]
    pub rise: u32,
    #[serde(default = "default_window_probes")]
    pub window_probes: u32,
    #[serde(default = "default_window_ms")]
    pub window_ms: u32,
    /// Steered flows remembered per site (a power of two).
    #[serde(default = "default_flows")]
    pub flows: u32,
    #[serde(default, rename = "path")]
    pub paths: Vec<PathSection>,
    #[serde(default, rename = "policy")]
    pub policies: Vec<PolicySection>,
}

/// `[[wan.path]]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PathSection {
    pub name: String,
    pub tunnel: String,
    #[serde(default = "default_site")]
    pub site: String,
    #[serde(default = "default_kind")]
    pub kind: String,
    #[serde(default)]
    pub cost: u32,
}

/// `[[wan.policy]]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicySection {
    pub name: String,
    #[serde(default)]
    pub classes: Vec<String>,
    #[serde(default)]
    pub vlans: Vec<u16>,
    pub max_rtt_ms: Option<f64>,
    pub max_jitter_ms: Option<f64>,
    pub max_loss_pct: Option<f64>,
    #[serde(default = "default_mode")]
    pub mode: String,
    #[serde(default)]
    pub prefer: Vec<String>,
    #[serde(default = "default_hold_down")]
    pub hold_down_ms: u32,
    #[serde(default = "default_enter_margin")]
    pub enter_margin_pct: u8,
    /// Move a compliant flow to a path better for this long (None: stay).
    pub better_hold_ms: Option<u32>,
    #[serde(default = "default_better_margin")]
    pub better_margin_pct: u8,
    #[serde(default = "default_fec")]
    pub fec: String,
    #[serde(default = "default_k")]
    pub fec_k: u8,
    #[serde(default = "default_m")]
    pub fec_m: u8,
    #[serde(default = "default_fec_on")]
    pub fec_on_loss_pct: f64,
    #[serde(default = "default_fec_off")]
    pub fec_off_loss_pct: f64,
    #[serde(default = "default_fec_delay")]
    pub fec_delay_ms: u32,
    #[serde(default)]
    pub compress: bool,
    /// Send each packet on the flow's path and on the best other alive
    /// path too (the far end keeps the first copy). Excludes `fec`.
    #[serde(default)]
    pub duplicate: bool,
}

fn default_interval() -> u32 {
    100
}
fn default_dead() -> u32 {
    800
}
fn default_rise() -> u32 {
    3
}
fn default_window_probes() -> u32 {
    50
}
fn default_window_ms() -> u32 {
    5000
}
fn default_flows() -> u32 {
    16384
}
fn default_site() -> String {
    "remote".into()
}
fn default_kind() -> String {
    "other".into()
}
fn default_mode() -> String {
    "best-score".into()
}
fn default_hold_down() -> u32 {
    10_000
}
fn default_enter_margin() -> u8 {
    10
}
fn default_better_margin() -> u8 {
    20
}
fn default_fec() -> String {
    "off".into()
}
fn default_k() -> u8 {
    10
}
fn default_m() -> u8 {
    2
}
fn default_fec_on() -> f64 {
    1.0
}
fn default_fec_off() -> f64 {
    0.2
}
fn default_fec_delay() -> u32 {
    20
}

/// When a policy's traffic is FEC-protected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FecMode {
    Off,
    On,
    /// On while the path's measured loss is at or above `on_ppm`, off again
    /// below `off_ppm`.
    Adaptive {
        on_ppm: u32,
        off_ppm: u32,
    },
}

/// What a policy does to its packets besides choosing the path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PolicyActions {
    pub fec: FecMode,
    pub fec_k: u8,
    pub fec_m: u8,
    pub fec_delay_ns: u64,
    pub compress: bool,
    pub duplicate: bool,
}

impl PolicyActions {
    /// Bytes the WAN encoding may add to an inner packet (envelope, FEC
    /// header, and a parity packet's length list), so that a packet
    /// routed under this policy still fits the tunnel MTU once wrapped.
    pub fn overhead(&self) -> u16 {
        let fec = if self.fec == FecMode::Off {
            0
        } else {
            crate::wan::wire::FEC_HEADER_LEN as u16 + 2 * u16::from(self.fec_k)
        };
        let wrap = if fec > 0 || self.compress || self.duplicate {
            ENVELOPE_LEN as u16 + crate::wan::wire::PLAIN_HEADER_LEN as u16
        } else {
            0
        };
        let dup = if self.duplicate {
            crate::wan::wire::DUP_HEADER_LEN as u16
        } else {
            0
        };
        wrap + fec + dup
    }
}

/// One path, resolved.
#[derive(Clone, Debug)]
pub struct WanPath {
    pub name: String,
    pub site: u16,
    pub tunnel: TunnelKey,
    pub kind: UplinkKind,
    pub cost: u32,
}

/// `[wan]`, checked and resolved against the tunnels.
#[derive(Clone, Debug)]
pub struct WanConfig {
    pub probe: ProbeConfig,
    pub flows: u32,
    pub sites: Vec<String>,
    pub paths: Vec<WanPath>,
    /// Policy 0 is the default.
    pub table: PolicyTable,
    /// Per policy (same order as `table`).
    pub actions: Vec<PolicyActions>,
    /// Decoder settings (the largest shape; encoders take the rest).
    pub decoder: FecConfig,
}

fn check_name(key: &str, s: &str) -> Result<(), ConfigError> {
    let ok = !s.is_empty()
        && s.len() <= 32
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(invalid(key, format!("{s:?}: 1 to 32 of [A-Za-z0-9_-]")))
    }
}

fn kind_of(s: &str) -> Option<UplinkKind> {
    Some(match s {
        "fibre" | "fiber" => UplinkKind::Fibre,
        "cable" => UplinkKind::Cable,
        "dsl" => UplinkKind::Dsl,
        "lte" | "5g" | "cellular" => UplinkKind::Lte,
        "satellite" => UplinkKind::Satellite,
        "other" => UplinkKind::Other,
        _ => return None,
    })
}

/// The label of `kind` as in the TOML.
pub fn kind_label(kind: UplinkKind) -> &'static str {
    match kind {
        UplinkKind::Fibre => "fibre",
        UplinkKind::Cable => "cable",
        UplinkKind::Dsl => "dsl",
        UplinkKind::Lte => "lte",
        UplinkKind::Satellite => "satellite",
        UplinkKind::Other => "other",
    }
}

fn ms(v: f64) -> u64 {
    (v * 1e6) as u64
}

fn ppm(pct: f64) -> u32 {
    (pct * 10_000.0).round() as u32
}

/// The class number the steering uses for a classification label.
pub fn class_number(label: &str) -> Option<AppClass> {
    patronus_classify::Class::ALL
        .iter()
        .position(|c| c.label() == label)
        .map(|i| AppClass(i as u16))
}

impl WanSection {
    /// Checks every key and resolves names (tunnels, paths, classes).
    pub fn resolve(&self, cfg: &EngineConfig) -> Result<WanConfig, ConfigError> {
        if !(10..=10_000).contains(&self.probe_interval_ms) {
            return Err(invalid("wan.probe_interval_ms", "must be 10..=10000"));
        }
        if self.dead_after_ms < self.probe_interval_ms || self.dead_after_ms > 60_000 {
            return Err(invalid(
                "wan.dead_after_ms",
                "must be at least probe_interval_ms and at most 60000",
            ));
        }
        if !(1..=100).contains(&self.rise) {
            return Err(invalid("wan.rise", "must be 1..=100"));
        }
        if !(1..=4096).contains(&self.window_probes) {
            return Err(invalid("wan.window_probes", "must be 1..=4096"));
        }
        if self.window_ms < self.probe_interval_ms || self.window_ms > 600_000 {
            return Err(invalid(
                "wan.window_ms",
                "must be at least probe_interval_ms and at most 600000",
            ));
        }
        if !self.flows.is_power_of_two() || !(64..=1 << 22).contains(&self.flows) {
            return Err(invalid(
                "wan.flows",
                "must be a power of two in 64..=4194304",
            ));
        }
        let interval = u64::from(self.probe_interval_ms) * 1_000_000;
        let probe = ProbeConfig {
            interval_ns: interval,
            dead_after_ns: u64::from(self.dead_after_ms) * 1_000_000,
            rise: self.rise,
            window: WindowConfig {
                max_probes: self.window_probes,
                span_ns: u64::from(self.window_ms) * 1_000_000,
                // A probe is lost once it is older than the dead delay
                // allows a reply to be, bounded by the window.
                loss_timeout_ns: (u64::from(self.dead_after_ms) * 1_000_000 / 2).max(interval),
            },
        };
        probe
            .validate()
            .map_err(|e| invalid("wan", e.to_string()))?;
        if self.paths.is_empty() {
            return Err(invalid("wan.path", "at least one path"));
        }
        let mut sites: Vec<String> = Vec::new();
        let mut paths = Vec::new();
        for (i, p) in self.paths.iter().enumerate() {
            let k = |s: &str| format!("wan.path[{i}].{s}");
            check_name(&k("name"), &p.name)?;
            check_name(&k("site"), &p.site)?;
            if self.paths[..i].iter().any(|q| q.name == p.name) {
                return Err(invalid(k("name"), format!("{:?} is used twice", p.name)));
            }
            if self.paths[..i].iter().any(|q| q.tunnel == p.tunnel) {
                return Err(invalid(
                    k("tunnel"),
                    format!("tunnel {:?} is already a path", p.tunnel),
                ));
            }
            let Some(t) = cfg.wireguard.iter().position(|w| w.name == p.tunnel) else {
                return Err(invalid(
                    k("tunnel"),
                    format!("no [[wireguard]] {:?}", p.tunnel),
                ));
            };
            if cfg.wireguard[t].peers.len() != 1 {
                return Err(invalid(
                    k("tunnel"),
                    "a path tunnel has exactly one peer (the far site's uplink)",
                ));
            }
            let kind = kind_of(&p.kind).ok_or_else(|| {
                invalid(k("kind"), "one of fibre, cable, dsl, lte, satellite, other")
            })?;
            let site = match sites.iter().position(|s| *s == p.site) {
                Some(s) => s,
                None => {
                    sites.push(p.site.clone());
                    sites.len() - 1
                }
            };
            if self.paths[..i].iter().filter(|q| q.site == p.site).count() >= MAX_PATHS {
                return Err(invalid(
                    k("site"),
                    format!("at most {MAX_PATHS} paths per site"),
                ));
            }
            paths.push(WanPath {
                name: p.name.clone(),
                site: site as u16,
                tunnel: config_tunnel_key(t as u16),
                kind,
                cost: p.cost,
            });
        }
        // Policy 0 is the default: the one named "default", else an
        // implicit best-score policy without limits.
        let mut sections: Vec<&PolicySection> = Vec::new();
        let implicit;
        match self.policies.iter().position(|p| p.name == "default") {
            Some(d) => sections.push(&self.policies[d]),
            None => {
                implicit = PolicySection {
                    name: "default".into(),
                    classes: Vec::new(),
                    vlans: Vec::new(),
                    max_rtt_ms: None,
                    max_jitter_ms: None,
                    max_loss_pct: None,
                    mode: default_mode(),
                    prefer: Vec::new(),
                    hold_down_ms: default_hold_down(),
                    enter_margin_pct: default_enter_margin(),
                    better_hold_ms: None,
                    better_margin_pct: default_better_margin(),
                    fec: default_fec(),
                    fec_k: default_k(),
                    fec_m: default_m(),
                    fec_on_loss_pct: default_fec_on(),
                    fec_off_loss_pct: default_fec_off(),
                    fec_delay_ms: default_fec_delay(),
                    compress: false,
                    duplicate: false,
                };
                sections.push(&implicit);
            }
        }
        sections.extend(self.policies.iter().filter(|p| p.name != "default"));
        if sections.len() > 255 {
            return Err(invalid("wan.policy", "at most 255 policies"));
        }
        let mut policies = Vec::new();
        let mut actions = Vec::new();
        let mut rules = Vec::new();
        for (pi, p) in sections.iter().enumerate() {
            let idx = self.policies.iter().position(|q| std::ptr::eq(q, *p));
            let k = |s: &str| match idx {
                Some(i) => format!("wan.policy[{i}].{s}"),
                None => format!("wan.policy.default.{s}"),
            };
            check_name(&k("name"), &p.name)?;
            if sections[..pi].iter().any(|q| q.name == p.name) {
                return Err(invalid(k("name"), format!("{:?} is used twice", p.name)));
            }
            let mut pol = Policy::new(&p.name);
            let pos_ms = |key: &str, v: Option<f64>| -> Result<Option<u64>, ConfigError> {
                match v {
                    Some(v) if !(v > 0.0 && v <= 60_000.0) => {
                        Err(invalid(k(key), "must be above 0 and at most 60000"))
                    }
                    v => Ok(v.map(ms)),
                }
            };
            let loss = match p.max_loss_pct {
                Some(v) if !(0.0..=100.0).contains(&v) => {
                    return Err(invalid(k("max_loss_pct"), "must be 0..=100"));
                }
                v => v.map(ppm),
            };
            pol.sla = Sla {
                max_rtt_ns: pos_ms("max_rtt_ms", p.max_rtt_ms)?,
                max_jitter_ns: pos_ms("max_jitter_ms", p.max_jitter_ms)?,
                max_loss_ppm: loss,
            };
            pol.mode = match p.mode.as_str() {
                "best-score" => SteeringMode::BestScore,
                "cheapest" => SteeringMode::Cheapest,
                "preferred" => SteeringMode::PreferredOrder,
                _ => return Err(invalid(k("mode"), "one of best-score, cheapest, preferred")),
            };
            for e in &p.prefer {
                let pref = if e == "any" {
                    Preference::Any
                } else if let Some(i) = paths.iter().position(|q| q.name == *e) {
                    Preference::Path(i as u16)
                } else if let Some(kind) = kind_of(e) {
                    Preference::Kind(kind)
                } else {
                    return Err(invalid(
                        k("prefer"),
                        format!("{e:?} is neither a path, an uplink kind nor \"any\""),
                    ));
                };
                pol.order.push(pref);
            }
            if p.enter_margin_pct > 90 || p.better_margin_pct > 90 {
                return Err(invalid(k("enter_margin_pct"), "margins must be 0..=90"));
            }
            pol.enter_margin_pct = p.enter_margin_pct;
            pol.better_margin_pct = p.better_margin_pct;
            pol.hold_down_ns = u64::from(p.hold_down_ms) * 1_000_000;
            pol.better_hold_ns = p.better_hold_ms.map(|v| u64::from(v) * 1_000_000);
            let fec = match p.fec.as_str() {
                "off" => FecMode::Off,
                "on" => FecMode::On,
                "adaptive" => {
                    let ok = |v: f64| (0.0..=100.0).contains(&v);
                    if !ok(p.fec_on_loss_pct)
                        || !ok(p.fec_off_loss_pct)
                        || p.fec_off_loss_pct > p.fec_on_loss_pct
                    {
                        return Err(invalid(
                            k("fec_on_loss_pct"),
                            "0..=100, with fec_off_loss_pct at most fec_on_loss_pct",
                        ));
                    }
                    FecMode::Adaptive {
                        on_ppm: ppm(p.fec_on_loss_pct),
                        off_ppm: ppm(p.fec_off_loss_pct),
                    }
                }
                _ => return Err(invalid(k("fec"), "one of off, on, adaptive")),
            };
            if !(1..=MAX_K).contains(&p.fec_k) || !(1..=MAX_M).contains(&p.fec_m) {
                return Err(invalid(
                    k("fec_k"),
                    format!("fec_k must be 1..={MAX_K} and fec_m 1..={MAX_M}"),
                ));
            }
            if !(1..=1000).contains(&p.fec_delay_ms) {
                return Err(invalid(k("fec_delay_ms"), "must be 1..=1000"));
            }
            if p.duplicate && fec != FecMode::Off {
                return Err(invalid(
                    k("duplicate"),
                    "duplication and FEC exclude each other (pick one)",
                ));
            }
            actions.push(PolicyActions {
                fec,
                fec_k: p.fec_k,
                fec_m: p.fec_m,
                fec_delay_ns: u64::from(p.fec_delay_ms) * 1_000_000,
                compress: p.compress,
                duplicate: p.duplicate,
            });
            for c in &p.classes {
                let class = class_number(c).ok_or_else(|| {
                    invalid(k("classes"), format!("{c:?} is not a classification class"))
                })?;
                if p.vlans.is_empty() {
                    rules.push((None, Some(class), pi));
                }
                for &v in &p.vlans {
                    rules.push((Some(TenantId(u32::from(v))), Some(class), pi));
                }
            }
            if p.classes.is_empty() && pi > 0 {
                if p.vlans.is_empty() {
                    return Err(invalid(
                        k("classes"),
                        "a policy other than \"default\" needs classes or vlans",
                    ));
                }
                for &v in &p.vlans {
                    rules.push((Some(TenantId(u32::from(v))), None, pi));
                }
            }
            if p.vlans.iter().any(|&v| v > 4094) {
                return Err(invalid(k("vlans"), "VLAN ids are 0..=4094"));
            }
            policies.push(pol);
        }
        let mut table =
            PolicyTable::new(policies).map_err(|e| invalid("wan.policy", e.to_string()))?;
        for (tenant, class, pi) in rules {
            table
                .assign(tenant, class, PolicyId(pi as u16))
                .map_err(|e| invalid("wan.policy", e.to_string()))?;
        }
        Ok(WanConfig {
            probe,
            flows: self.flows,
            sites,
            paths,
            table,
            actions,
            // The far engine may use any shape: the decoder takes all.
            decoder: FecConfig {
                k: MAX_K,
                m: MAX_M,
                max_delay_ns: 20_000_000,
                reassembly_ns: 100_000_000,
                window_groups: 8,
                max_shard: 2048,
            },
        })
    }
}

/// Checks `[wan]` if present.
pub(super) fn validate(cfg: &EngineConfig) -> Result<(), ConfigError> {
    if let Some(w) = &cfg.wan {
        w.resolve(cfg)?;
    }
    Ok(())
}
