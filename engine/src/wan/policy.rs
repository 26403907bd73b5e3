//! Steering policies: an SLA (max RTT, jitter, loss), a mode (best score,
//! cheapest, preferred order), a preference order over paths and uplink
//! kinds ("prefer LTE last" = `[Any, Kind(Lte)]`), and the hysteresis and
//! hold-down settings; [`PolicyTable`] picks the policy of a (tenant,
//! application class). Built at configuration time (allocates); lookups
//! on the packet path do not.

use std::collections::HashMap;

use super::window::WindowStats;

/// Dense path index (0..[`MAX_PATHS`]).
pub type PathId = u16;
/// Most paths a [`super::Steering`] handles (bitmask width).
pub const MAX_PATHS: usize = 16;

/// An application class as classification numbers it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct AppClass(pub u16);
/// A tenant.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TenantId(pub u32);
/// Index of a policy in its [`PolicyTable`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PolicyId(pub u16);

/// What kind of uplink a path leaves by.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum UplinkKind {
    Fibre,
    Cable,
    Dsl,
    Lte,
    Satellite,
    Other,
}

/// A path as the steering sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PathInfo {
    pub id: PathId,
    pub kind: UplinkKind,
    /// Relative cost for [`SteeringMode::Cheapest`] (e.g. per GB).
    pub cost: u32,
}

/// Service level limits; `None` = no limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Sla {
    pub max_rtt_ns: Option<u64>,
    pub max_jitter_ns: Option<u64>,
    pub max_loss_ppm: Option<u32>,
}

fn within(v: u64, limit: Option<u64>, margin_pct: u8) -> bool {
    limit.is_none_or(|l| {
        u128::from(v) * 100 <= u128::from(l) * u128::from(100 - margin_pct.min(100))
    })
}

/// Excess of `v` over `limit`, in ppm of the limit (0 when within).
fn excess(v: u64, limit: Option<u64>) -> u64 {
    match limit {
        Some(l) if v > l => ((u128::from(v - l) * 1_000_000) / u128::from(l.max(1))) as u64,
        _ => 0,
    }
}

impl Sla {
    /// True when every metric is within its limit less `margin_pct` %
    /// (0 = the limit itself). Uses the average RTT.
    pub fn complies(&self, st: &WindowStats, margin_pct: u8) -> bool {
        within(st.rtt_avg_ns, self.max_rtt_ns, margin_pct)
            && within(st.jitter_ns, self.max_jitter_ns, margin_pct)
            && within(
                u64::from(st.loss_ppm),
                self.max_loss_ppm.map(u64::from),
                margin_pct,
            )
    }

    /// How far outside the SLA: the sum over metrics of the relative
    /// excess (ppm of each limit). The least-bad path minimises it.
    pub fn excess(&self, st: &WindowStats) -> u64 {
        excess(st.rtt_avg_ns, self.max_rtt_ns)
            + excess(st.jitter_ns, self.max_jitter_ns)
            + excess(u64::from(st.loss_ppm), self.max_loss_ppm.map(u64::from))
    }
}

/// How compliant paths are ordered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SteeringMode {
    /// Preference rank (the tiers of the policy's order; one tier when it
    /// has none), then lowest [`score`].
    BestScore,
    /// Lowest cost, then rank, then score.
    Cheapest,
    /// The same order as `BestScore` (kept as the name for policies whose
    /// order is the point).
    PreferredOrder,
}

/// One entry of a preference order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Preference {
    Path(PathId),
    Kind(UplinkKind),
    /// Every path not matched more specifically.
    Any,
}

/// A path's quality as one number, ns (lower is better): average RTT +
/// 2 x jitter + 1 µs per ppm of loss (10 ms per 1 % lost).
pub fn score(st: &WindowStats) -> u64 {
    st.rtt_avg_ns
        .saturating_add(st.jitter_ns.saturating_mul(2))
        .saturating_add(u64::from(st.loss_ppm).saturating_mul(1_000))
}

/// A steering policy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Policy {
    pub name: String,
    pub sla: Sla,
    pub mode: SteeringMode,
    pub order: Vec<Preference>,
    /// A path qualifies for new choices only within the SLA less this
    /// margin (%); a flow leaves its path only past the SLA itself.
    pub enter_margin_pct: u8,
    /// While its path complies, a flow moves to a better one only if
    /// `Some(hold)`: better (for best-score: by `better_margin_pct` % of
    /// score) continuously for `hold` ns. `None`: it stays.
    pub better_hold_ns: Option<u64>,
    pub better_margin_pct: u8,
    /// A path that breached this policy's SLA (or died) cannot be chosen
    /// again under it for this long, ns.
    pub hold_down_ns: u64,
}

impl Policy {
    /// A best-score policy without limits: 10 % enter margin, stays
    /// while compliant, 10 s hold-down.
    pub fn new(name: &str) -> Self {
        Policy {
            name: name.to_string(),
            sla: Sla::default(),
            mode: SteeringMode::BestScore,
            order: Vec::new(),
            enter_margin_pct: 10,
            better_hold_ns: None,
            better_margin_pct: 20,
            hold_down_ns: 10_000_000_000,
        }
    }

    /// A path's rank in the preference order: the position of its most
    /// specific match (path id, then kind, then `Any`); unmatched paths
    /// rank after all.
    pub fn rank(&self, p: &PathInfo) -> usize {
        let pos = |f: &dyn Fn(&Preference) -> bool| self.order.iter().position(f);
        pos(&|e| *e == Preference::Path(p.id))
            .or_else(|| pos(&|e| *e == Preference::Kind(p.kind)))
            .or_else(|| pos(&|e| *e == Preference::Any))
            .unwrap_or(self.order.len())
    }
}

/// Why a policy table was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    #[error("policy table has no policies")]
    Empty,
    #[error("policy id out of range")]
    BadId,
}

/// The policies and which (tenant, class) uses which.
#[derive(Clone, Debug)]
pub struct PolicyTable {
    policies: Vec<Policy>,
    rules: HashMap<(Option<TenantId>, Option<AppClass>), PolicyId>,
    /// The (any tenant, class) rules by class number, for tables without
    /// tenant rules: one index instead of hashing per packet.
    by_class: Vec<Option<PolicyId>>,
    tenant_rules: bool,
    default: PolicyId,
}

impl PolicyTable {
    /// `policies[0]` is the default.
    pub fn new(policies: Vec<Policy>) -> Result<Self, PolicyError> {
        if policies.is_empty() || policies.len() > usize::from(u16::MAX) {
            return Err(PolicyError::Empty);
        }
        Ok(PolicyTable {
            policies,
            rules: HashMap::new(),
            by_class: Vec::new(),
            tenant_rules: false,
            default: PolicyId(0),
        })
    }

    /// Uses `policy` for `tenant` (None = any) and `class` (None = any).
    pub fn assign(
        &mut self,
        tenant: Option<TenantId>,
        class: Option<AppClass>,
        policy: PolicyId,
    ) -> Result<(), PolicyError> {
        if usize::from(policy.0) >= self.policies.len() {
            return Err(PolicyError::BadId);
        }
        self.rules.insert((tenant, class), policy);
        match (tenant, class) {
            (None, Some(c)) if usize::from(c.0) < 1024 => {
                let i = usize::from(c.0);
                if self.by_class.len() <= i {
                    self.by_class.resize(i + 1, None);
                }
                self.by_class[i] = Some(policy);
            }
            (None, None) => self.default = policy,
            _ => self.tenant_rules = true,
        }
        Ok(())
    }

    /// Most specific first: (tenant, class), (any, class), (tenant, any),
    /// then the default.
    pub fn lookup(&self, tenant: TenantId, class: AppClass) -> PolicyId {
        if !self.tenant_rules {
            return self
                .by_class
                .get(usize::from(class.0))
                .copied()
                .flatten()
                .unwrap_or(self.default);
        }
        [
            (Some(tenant), Some(class)),
            (None, Some(class)),
            (Some(tenant), None),
        ]
        .iter()
        .find_map(|k| self.rules.get(k).copied())
        .unwrap_or(self.default)
    }

    pub fn get(&self, id: PolicyId) -> Option<&Policy> {
        self.policies.get(usize::from(id.0))
    }

    pub fn len(&self) -> usize {
        self.policies.len()
    }

    pub fn is_empty(&self) -> bool {
        self.policies.is_empty()
    }

    pub fn policies(&self) -> &[Policy] {
        &self.policies
    }

    /// Renumbers the paths named in preference orders (`f` gives a path's
    /// new id, or None to drop the entry: a path another table steers).
    pub fn map_paths(&mut self, f: impl Fn(PathId) -> Option<PathId>) {
        for p in &mut self.policies {
            p.order.retain_mut(|e| match e {
                Preference::Path(id) => match f(*id) {
                    Some(n) => {
                        *id = n;
                        true
                    }
                    None => false,
                },
                _ => true,
            });
        }
    }
}
