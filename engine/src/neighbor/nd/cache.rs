//! The per-worker ND cache: a fixed-capacity open-addressing hash of
//! (interface, IPv6 address) → [`Neighbor`], allocated once; slot indices
//! stay put for an entry's life so held packets can refer to them.

use std::net::Ipv6Addr;

use super::{Advert, NdAction, NdState, NdTimers, Neighbor};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum SlotState {
    Empty,
    Tombstone,
    Used,
}

#[derive(Clone, Copy, Debug)]
struct Slot {
    state: SlotState,
    iface: u16,
    neighbor: Neighbor,
}

const EMPTY: Slot = Slot {
    state: SlotState::Empty,
    iface: 0,
    neighbor: Neighbor {
        target: Ipv6Addr::UNSPECIFIED,
        state: NdState::Stale,
        mac: [0; 6],
        is_router: false,
        deadline: 0,
        probes: 0,
        last_used: 0,
    },
};

/// What to do with a packet for a next hop.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Resolve6 {
    /// Send it to this MAC.
    Mac([u8; 6]),
    /// Hold it under this slot; when `solicit`, send the first multicast NS
    /// (a new entry).
    Wait { slot: u32, solicit: bool },
    /// No room for another entry: drop.
    TableFull,
}

/// An action for the entry in `slot` (`Fail` has already removed it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NdEvent {
    pub slot: u32,
    pub iface: u16,
    pub target: Ipv6Addr,
    pub action: NdAction,
}

/// One worker's neighbor cache.
pub struct NdCache {
    slots: Box<[Slot]>,
    mask: usize,
    used: usize,
    /// Where the timer sweep continues.
    cursor: usize,
    timers: NdTimers,
}

impl std::fmt::Debug for NdCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NdCache").field("used", &self.used).finish()
    }
}

#[inline]
fn hash(iface: u16, addr: Ipv6Addr) -> usize {
    let a = u128::from(addr);
    let x = (a as u64) ^ ((a >> 64) as u64).rotate_left(29) ^ (u64::from(iface) << 48);
    (x.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 32) as usize
}

impl NdCache {
    /// A cache of `capacity` slots (a power of two, at least 16), filled to
    /// at most three quarters.
    pub fn new(capacity: usize, timers: NdTimers) -> Self {
        let cap = capacity.next_power_of_two().max(16);
        NdCache {
            slots: vec![EMPTY; cap].into_boxed_slice(),
            mask: cap - 1,
            used: 0,
            cursor: 0,
            timers,
        }
    }

    pub fn len(&self) -> usize {
        self.used
    }

    pub fn is_empty(&self) -> bool {
        self.used == 0
    }

    fn find(&self, iface: u16, addr: Ipv6Addr) -> Option<usize> {
        let mut i = hash(iface, addr) & self.mask;
        for _ in 0..=self.mask {
            let s = &self.slots[i];
            match s.state {
                SlotState::Empty => return None,
                SlotState::Used if s.iface == iface && s.neighbor.target == addr => return Some(i),
                _ => {}
            }
            i = (i + 1) & self.mask;
        }
        None
    }

    fn insert(&mut self, iface: u16, neighbor: Neighbor) -> Option<usize> {
        if self.used * 4 >= (self.mask + 1) * 3 {
            return None;
        }
        let mut i = hash(iface, neighbor.target) & self.mask;
        while self.slots[i].state == SlotState::Used {
            i = (i + 1) & self.mask;
        }
        self.slots[i] = Slot {
            state: SlotState::Used,
            iface,
            neighbor,
        };
        self.used += 1;
        Some(i)
    }

    fn remove_slot(&mut self, i: usize) {
        self.slots[i].state = SlotState::Tombstone;
        self.used -= 1;
    }

    /// The entry for `addr` on `iface`.
    pub fn get(&self, iface: u16, addr: Ipv6Addr) -> Option<&Neighbor> {
        self.find(iface, addr).map(|i| &self.slots[i].neighbor)
    }

    /// A packet for next hop `addr` on `iface` is to be sent now.
    #[inline]
    pub fn resolve(&mut self, iface: u16, addr: Ipv6Addr, now: u64) -> Resolve6 {
        let t = self.timers;
        if let Some(i) = self.find(iface, addr) {
            return match self.slots[i].neighbor.use_for_send(now, &t) {
                Some(mac) => Resolve6::Mac(mac),
                None => Resolve6::Wait {
                    slot: i as u32,
                    solicit: false,
                },
            };
        }
        let (n, _) = Neighbor::resolve_new(addr, now, &t);
        match self.insert(iface, n) {
            Some(i) => Resolve6::Wait {
                slot: i as u32,
                solicit: true,
            },
            None => Resolve6::TableFull,
        }
    }

    /// A Neighbor Advertisement for `target` arrived on `iface`. Only
    /// existing entries change (§7.2.5: an NA creates none).
    pub fn on_advert(
        &mut self,
        iface: u16,
        target: Ipv6Addr,
        na: Advert,
        now: u64,
        rand: u32,
    ) -> Option<NdEvent> {
        let t = self.timers;
        let i = self.find(iface, target)?;
        let action = self.slots[i].neighbor.on_advert(na, now, rand, &t)?;
        Some(self.event(i, action))
    }

    /// A source link-layer address from `addr` on `iface` (in an NS, RS, RA
    /// or redirect): creates a STALE entry or updates one (§7.2.3).
    pub fn on_link_layer_address(
        &mut self,
        iface: u16,
        addr: Ipv6Addr,
        mac: [u8; 6],
        now: u64,
    ) -> Option<NdEvent> {
        match self.find(iface, addr) {
            Some(i) => {
                let action = self.slots[i].neighbor.on_link_layer_address(mac)?;
                Some(self.event(i, action))
            }
            None => {
                // A full cache just does not learn it.
                self.insert(iface, Neighbor::learned(addr, mac, now));
                None
            }
        }
    }

    /// Runs the timers of up to `budget` slots (continuing where the last
    /// call stopped) and ages out unused STALE entries; actions go to `out`.
    pub fn poll(&mut self, now: u64, budget: usize, mut out: impl FnMut(NdEvent)) {
        let t = self.timers;
        for _ in 0..budget.min(self.slots.len()) {
            let i = self.cursor;
            self.cursor = (self.cursor + 1) & self.mask;
            if self.slots[i].state != SlotState::Used {
                continue;
            }
            let n = &mut self.slots[i].neighbor;
            if n.expired(now, &t) {
                self.remove_slot(i);
                continue;
            }
            if let Some(action) = n.on_timer(now, &t) {
                out(self.event(i, action));
            }
        }
    }

    /// Builds the event for slot `i`; a failure removes the entry.
    fn event(&mut self, i: usize, action: NdAction) -> NdEvent {
        let s = self.slots[i];
        if action == NdAction::Fail {
            self.remove_slot(i);
        }
        NdEvent {
            slot: i as u32,
            iface: s.iface,
            target: s.neighbor.target,
            action,
        }
    }
}
