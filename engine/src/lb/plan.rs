//! A compiled balancer configuration, immutable once built: the VIPs with
//! their Maglev tables, sorted lookup arrays for the packet path, and the
//! backend slots (stable small integers the pins and counters use).
//!
//! Built by the link thread (or at start from the TOML), handed to the
//! workers through a [`crate::plan_slot::PlanSlot`]. A backend keeps its
//! slot while its id exists in successive plans ([`SlotMap`]), so a worker
//! can tell whether a pinned flow's backend is still there with one array
//! read: `slots[pin.slot]` still carries the pin's backend id and is up.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use super::counters::BackendCounters;
use super::maglev::{backend_key, smallest_size, MaglevBackend, MaglevTable, DEFAULT_TABLE_SIZE};
use super::spec::{LbMode, LbSettings, LbSpec};

/// Backends the engine tracks at once (all VIPs).
pub const MAX_BACKEND_SLOTS: usize = 4096;

/// Why a spec could not be compiled.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    #[error("more than {MAX_BACKEND_SLOTS} backends")]
    TooManyBackends,
    #[error("two VIPs on {0}")]
    DuplicateVip(String),
    #[error("backend id {0} used twice")]
    DuplicateBackend(u32),
    #[error("VIP {vip}: DSR backend {backend} must use the VIP's port")]
    DsrPort { vip: String, backend: String },
}

/// A backend as the workers see it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BackendSlot {
    pub id: u32,
    /// Index of its VIP in [`LbPlan::vips`].
    pub vip: u16,
    pub addr: u32,
    pub port: u16,
    pub weight: u16,
    /// In this plan and healthy: its pins stay valid.
    pub live: bool,
}

/// One VIP as the workers see it.
#[derive(Debug)]
pub struct Vip {
    pub id: u32,
    pub addr: u32,
    pub port: u16,
    pub proto: u8,
    pub mode: LbMode,
    /// None when no backend is up with a weight (new flows are dropped).
    pub table: Option<MaglevTable>,
    /// Maglev's backend index → backend slot.
    pub table_slots: Vec<u16>,
    /// Slots of all its backends (down and drained ones too), in spec order.
    pub backends: Vec<u16>,
}

impl Vip {
    /// The backend slot for a new flow with hash `h`.
    #[inline]
    pub fn choose(&self, h: u64) -> Option<u16> {
        let t = self.table.as_ref()?;
        Some(self.table_slots[t.get(h)])
    }
}

/// Assigns backend ids stable slots across plans.
#[derive(Debug, Default)]
pub struct SlotMap {
    by_id: HashMap<u32, u16>,
    free: VecDeque<u16>,
    next: u16,
}

impl SlotMap {
    /// Slots for exactly `ids` (others are freed); also returns the slots
    /// newly given out (whose counters start from zero).
    pub fn assign(&mut self, ids: &[u32]) -> Result<(HashMap<u32, u16>, Vec<u16>), PlanError> {
        let keep: std::collections::HashSet<u32> = ids.iter().copied().collect();
        let gone: Vec<u32> = self
            .by_id
            .keys()
            .filter(|id| !keep.contains(id))
            .copied()
            .collect();
        for id in gone {
            if let Some(s) = self.by_id.remove(&id) {
                self.free.push_back(s);
            }
        }
        let mut fresh = Vec::new();
        for &id in ids {
            if self.by_id.contains_key(&id) {
                continue;
            }
            // Never-used slots first, then the longest-freed one: a slot
            // changes hands as late as possible (pins and counters of its
            // last owner have had the most time to go).
            let s = if usize::from(self.next) < MAX_BACKEND_SLOTS {
                self.next += 1;
                self.next - 1
            } else {
                self.free.pop_front().ok_or(PlanError::TooManyBackends)?
            };
            self.by_id.insert(id, s);
            fresh.push(s);
        }
        Ok((self.by_id.clone(), fresh))
    }
}

#[inline]
pub fn endpoint_key(addr: u32, port: u16, proto: u8) -> u64 {
    (u64::from(addr) << 24) | (u64::from(port) << 8) | u64::from(proto)
}

/// The compiled configuration.
#[derive(Debug)]
pub struct LbPlan {
    pub settings: LbSettings,
    pub vips: Vec<Vip>,
    /// (endpoint key of VIP, index in `vips`), sorted.
    vip_index: Vec<(u64, u16)>,
    vip_lo: u32,
    vip_hi: u32,
    /// (endpoint key of a NAT-mode backend, its VIP or u16::MAX when
    /// several NAT VIPs share it), sorted: what replies come from.
    reply_index: Vec<(u64, u16)>,
    reply_lo: u32,
    reply_hi: u32,
    pub slots: Vec<BackendSlot>,
    /// Per-worker, per-slot counters (shared by every plan).
    pub counters: Arc<BackendCounters>,
    /// The push it came from (0: the engine's configuration).
    pub push: u64,
}

impl LbPlan {
    /// Compiles `spec`, giving backends slots from `slots`.
    pub fn build(
        spec: &LbSpec,
        slots: &mut SlotMap,
        counters: Arc<BackendCounters>,
        push: u64,
    ) -> Result<LbPlan, PlanError> {
        let ids: Vec<u32> = spec
            .vips
            .iter()
            .flat_map(|v| v.backends.iter().map(|b| b.id))
            .collect();
        let mut sorted = ids.clone();
        sorted.sort_unstable();
        if let Some(w) = sorted.windows(2).find(|w| w[0] == w[1]) {
            return Err(PlanError::DuplicateBackend(w[0]));
        }
        if ids.len() > MAX_BACKEND_SLOTS {
            return Err(PlanError::TooManyBackends);
        }
        let (slot_of, fresh) = slots.assign(&ids)?;
        for s in fresh {
            counters.reset_slot(s);
        }
        let used = slot_of
            .values()
            .map(|&s| usize::from(s) + 1)
            .max()
            .unwrap_or(0);
        let mut slot_tab = vec![BackendSlot::default(); used];
        let mut vips = Vec::with_capacity(spec.vips.len());
        let mut vip_index = Vec::new();
        let mut reply: Vec<(u64, u16)> = Vec::new();
        for (vi, v) in spec.vips.iter().enumerate() {
            let vname = format!("{}:{}", std::net::Ipv4Addr::from(v.addr), v.port);
            let mut in_table = Vec::new();
            let mut table_slots = Vec::new();
            let mut all = Vec::with_capacity(v.backends.len());
            for b in &v.backends {
                let s = slot_of[&b.id];
                all.push(s);
                if v.mode == LbMode::Dsr && b.port != v.port {
                    return Err(PlanError::DsrPort {
                        vip: vname,
                        backend: format!("{}:{}", std::net::Ipv4Addr::from(b.addr), b.port),
                    });
                }
                slot_tab[usize::from(s)] = BackendSlot {
                    id: b.id,
                    vip: vi as u16,
                    addr: b.addr,
                    port: b.port,
                    weight: b.weight,
                    live: b.up,
                };
                if v.mode == LbMode::Nat {
                    reply.push((endpoint_key(b.addr, b.port, v.proto), vi as u16));
                }
                if b.up {
                    let ep = std::net::SocketAddrV4::new(b.addr.into(), b.port);
                    in_table.push(MaglevBackend {
                        key: backend_key(ep),
                        weight: u32::from(b.weight),
                    });
                    table_slots.push(s);
                }
            }
            let table = build_table(&in_table, v.table_size as usize);
            vips.push(Vip {
                id: v.id,
                addr: v.addr,
                port: v.port,
                proto: v.proto,
                mode: v.mode,
                table,
                table_slots,
                backends: all,
            });
            vip_index.push((endpoint_key(v.addr, v.port, v.proto), vi as u16));
        }
        vip_index.sort_unstable();
        if let Some(w) = vip_index.windows(2).find(|w| w[0].0 == w[1].0) {
            let v = &vips[usize::from(w[0].1)];
            return Err(PlanError::DuplicateVip(format!(
                "{}:{}",
                std::net::Ipv4Addr::from(v.addr),
                v.port
            )));
        }
        reply.sort_unstable();
        // A backend endpoint in two NAT VIPs: its replies need the pin.
        let mut reply_index: Vec<(u64, u16)> = Vec::with_capacity(reply.len());
        for (k, v) in reply {
            match reply_index.last_mut() {
                Some(last) if last.0 == k => last.1 = u16::MAX,
                _ => reply_index.push((k, v)),
            }
        }
        let addr_of = |k: u64| (k >> 24) as u32;
        Ok(LbPlan {
            settings: spec.settings,
            vip_lo: vip_index.first().map_or(1, |e| addr_of(e.0)),
            vip_hi: vip_index.last().map_or(0, |e| addr_of(e.0)),
            reply_lo: reply_index.first().map_or(1, |e| addr_of(e.0)),
            reply_hi: reply_index.last().map_or(0, |e| addr_of(e.0)),
            vips,
            vip_index,
            reply_index,
            slots: slot_tab,
            counters,
            push,
        })
    }

    /// True when `addr` may be a VIP's (two compares for most packets).
    #[inline]
    pub fn maybe_vip(&self, addr: u32) -> bool {
        addr >= self.vip_lo && addr <= self.vip_hi
    }

    /// True when `addr` may be a NAT-mode backend's.
    #[inline]
    pub fn maybe_backend(&self, addr: u32) -> bool {
        addr >= self.reply_lo && addr <= self.reply_hi
    }

    /// The VIP serving `addr:port` over `proto`.
    #[inline]
    pub fn vip(&self, addr: u32, port: u16, proto: u8) -> Option<u16> {
        let k = endpoint_key(addr, port, proto);
        let i = self.vip_index.binary_search_by_key(&k, |e| e.0).ok()?;
        Some(self.vip_index[i].1)
    }

    /// For a packet from `addr:port` over `proto`: Some when it comes from
    /// a NAT-mode backend, with its VIP (u16::MAX: several, ask the pin).
    #[inline]
    pub fn reply_vip(&self, addr: u32, port: u16, proto: u8) -> Option<u16> {
        let k = endpoint_key(addr, port, proto);
        let i = self.reply_index.binary_search_by_key(&k, |e| e.0).ok()?;
        Some(self.reply_index[i].1)
    }

    /// True when the slot still holds backend `id` and it is up.
    #[inline]
    pub fn slot_live(&self, slot: u16, id: u32) -> bool {
        self.slots
            .get(usize::from(slot))
            .is_some_and(|s| s.live && s.id == id)
    }

    /// True when the slot still holds backend `id` (up or not).
    #[inline]
    pub fn slot_is(&self, slot: u16, id: u32) -> bool {
        self.slots
            .get(usize::from(slot))
            .is_some_and(|s| s.id == id)
    }

    /// True when the plan balances nothing.
    pub fn is_empty(&self) -> bool {
        self.vips.is_empty()
    }
}

/// The Maglev table for the backends that are up; None when none has a
/// weight. A size too small for the pool is raised to the smallest prime
/// that fits (the control process refuses such sizes; the TOML may not).
fn build_table(backends: &[MaglevBackend<[u8; 6]>], size: usize) -> Option<MaglevTable> {
    if backends.iter().all(|b| b.weight == 0) {
        return None;
    }
    let size = if size == 0 { DEFAULT_TABLE_SIZE } else { size };
    match MaglevTable::build(backends, size) {
        Ok(t) => Some(t),
        Err(_) => MaglevTable::build(backends, smallest_size(backends.len()).max(size))
            .ok()
            .or_else(|| MaglevTable::build(backends, smallest_size(backends.len())).ok()),
    }
}
