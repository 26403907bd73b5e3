//! The neighbor table: a fixed-capacity open-addressing hash of
//! (interface, IPv4) → state, with slot indices that stay put for the
//! entry's life (packets waiting for resolution refer to them).

const SLOT_EMPTY: u8 = 0;
const SLOT_TOMBSTONE: u8 = 1;
const SLOT_USED: u8 = 2;

/// How long entries live and how resolution retries (nanoseconds).
#[derive(Clone, Copy, Debug)]
pub struct ArpTimers {
    /// A confirmed entry is used without question this long.
    pub reachable_ns: u64,
    /// Interval between requests while resolving or re-confirming.
    pub retry_ns: u64,
    /// Requests before an entry fails.
    pub retries: u32,
    /// A failed entry refuses packets this long before it may be retried.
    pub failed_hold_ns: u64,
}

impl ArpTimers {
    /// Timers from the `[arp]` section.
    pub fn from_config(c: &crate::config::ArpSection) -> Self {
        ArpTimers {
            reachable_ns: c.reachable_secs.saturating_mul(1_000_000_000),
            retry_ns: (c.resolve_timeout_ms * 1_000_000 / c.retries.max(1) as u64).max(1),
            retries: c.retries.max(1),
            failed_hold_ns: 1_000_000_000,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// Request sent, no answer yet; packets wait in the pending queue.
    Incomplete,
    /// Answer seen; usable until `deadline`.
    Reachable,
    /// Past its reachable time: still used, a re-confirming request is out.
    Probing,
    /// Resolution failed; packets are dropped until `deadline`.
    Failed,
    /// Configured; never expires.
    Permanent,
}

#[derive(Clone, Copy, Debug)]
struct Entry {
    slot_state: u8,
    iface: u16,
    ip: u32,
    state: State,
    mac: [u8; 6],
    /// Meaning depends on `state`: expiry, next retry, end of hold.
    deadline: u64,
    probes: u32,
}

const EMPTY: Entry = Entry {
    slot_state: SLOT_EMPTY,
    iface: 0,
    ip: 0,
    state: State::Incomplete,
    mac: [0; 6],
    deadline: 0,
    probes: 0,
};

/// What to do with a packet for a next hop.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Resolve {
    /// Send it to this MAC; when `refresh`, also send an ARP request
    /// (the entry is being re-confirmed).
    Mac { mac: [u8; 6], refresh: bool },
    /// Hold it under this slot; when `request`, send the first ARP request.
    Wait { slot: u32, request: bool },
    /// Resolution failed recently: drop.
    Failed,
    /// No room for another entry: drop.
    TableFull,
}

/// Timer outcomes for the caller to act on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NeighborEvent {
    /// Send an ARP request for this entry.
    Request { slot: u32, iface: u16, ip: u32 },
    /// Resolution failed: drop the packets held under this slot.
    Failed { slot: u32 },
}

/// One worker's neighbor table.
pub struct NeighborTable {
    entries: Box<[Entry]>,
    mask: usize,
    used: usize,
    timers: ArpTimers,
}

impl std::fmt::Debug for NeighborTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NeighborTable")
            .field("used", &self.used)
            .finish()
    }
}

#[inline]
fn hash(iface: u16, ip: u32) -> usize {
    let x = (ip as u64) | ((iface as u64) << 32);
    (x.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 32) as usize
}

impl NeighborTable {
    /// A table of `capacity` slots (rounded up to a power of two). At most
    /// three quarters are filled so probes stay short.
    pub fn new(capacity: usize, timers: ArpTimers) -> Self {
        let cap = capacity.next_power_of_two().max(16);
        NeighborTable {
            entries: vec![EMPTY; cap].into_boxed_slice(),
            mask: cap - 1,
            used: 0,
            timers,
        }
    }

    fn find(&self, iface: u16, ip: u32) -> Option<usize> {
        let mut i = hash(iface, ip) & self.mask;
        for _ in 0..=self.mask {
            let e = &self.entries[i];
            match e.slot_state {
                SLOT_EMPTY => return None,
                SLOT_USED if e.ip == ip && e.iface == iface => return Some(i),
                _ => {}
            }
            i = (i + 1) & self.mask;
        }
        None
    }

    fn insert(&mut self, iface: u16, ip: u32) -> Option<usize> {
        if self.used * 4 >= (self.mask + 1) * 3 {
            return None;
        }
        let mut i = hash(iface, ip) & self.mask;
        loop {
            if self.entries[i].slot_state != SLOT_USED {
                self.entries[i] = Entry {
                    slot_state: SLOT_USED,
                    iface,
                    ip,
                    ..EMPTY
                };
                self.used += 1;
                return Some(i);
            }
            i = (i + 1) & self.mask;
        }
    }

    fn remove_slot(&mut self, i: usize) {
        self.entries[i].slot_state = SLOT_TOMBSTONE;
        self.used -= 1;
    }

    /// Looks up the next hop `ip` on `iface` for a packet to send now.
    #[inline]
    pub fn resolve(&mut self, iface: u16, ip: u32, now: u64) -> Resolve {
        let t = self.timers;
        let Some(i) = self.find(iface, ip) else {
            return match self.insert(iface, ip) {
                None => Resolve::TableFull,
                Some(i) => {
                    let e = &mut self.entries[i];
                    e.state = State::Incomplete;
                    e.deadline = now + t.retry_ns;
                    e.probes = 1;
                    Resolve::Wait {
                        slot: i as u32,
                        request: true,
                    }
                }
            };
        };
        let e = &mut self.entries[i];
        match e.state {
            State::Permanent | State::Probing => Resolve::Mac {
                mac: e.mac,
                refresh: false,
            },
            State::Reachable if now < e.deadline => Resolve::Mac {
                mac: e.mac,
                refresh: false,
            },
            State::Reachable => {
                e.state = State::Probing;
                e.deadline = now + t.retry_ns;
                e.probes = 1;
                Resolve::Mac {
                    mac: e.mac,
                    refresh: true,
                }
            }
            State::Incomplete => Resolve::Wait {
                slot: i as u32,
                request: false,
            },
            State::Failed => Resolve::Failed,
        }
    }

    /// Records `ip` at `mac` on `iface`, as seen in an ARP packet. An entry is
    /// created only when `create` (the packet was addressed to us, RFC 826);
    /// otherwise only existing entries are updated. Returns the slot when an
    /// entry that had packets waiting became usable.
    pub fn learn(
        &mut self,
        iface: u16,
        ip: u32,
        mac: [u8; 6],
        now: u64,
        create: bool,
    ) -> Option<u32> {
        let reachable = self.timers.reachable_ns;
        let i = match self.find(iface, ip) {
            Some(i) => i,
            None if create => self.insert(iface, ip)?,
            None => return None,
        };
        let e = &mut self.entries[i];
        if e.state == State::Permanent {
            return None;
        }
        let was_incomplete = e.state == State::Incomplete;
        e.state = State::Reachable;
        e.mac = mac;
        e.deadline = now.saturating_add(reachable);
        e.probes = 0;
        was_incomplete.then_some(i as u32)
    }

    /// Adds a configured entry that never expires.
    pub fn add_permanent(&mut self, iface: u16, ip: u32, mac: [u8; 6]) -> bool {
        let Some(i) = self.find(iface, ip).or_else(|| self.insert(iface, ip)) else {
            return false;
        };
        let e = &mut self.entries[i];
        e.state = State::Permanent;
        e.mac = mac;
        true
    }

    /// MAC of a slot, once resolved.
    pub fn mac_of(&self, slot: u32) -> Option<[u8; 6]> {
        let e = self.entries.get(slot as usize)?;
        (e.slot_state == SLOT_USED
            && matches!(
                e.state,
                State::Reachable | State::Probing | State::Permanent
            ))
        .then_some(e.mac)
    }

    /// (interface, address) of a slot.
    pub fn key_of(&self, slot: u32) -> Option<(u16, u32)> {
        let e = self.entries.get(slot as usize)?;
        (e.slot_state == SLOT_USED).then_some((e.iface, e.ip))
    }

    /// Advances timers to `now`, reporting requests to send and failures.
    pub fn tick(&mut self, now: u64, mut on: impl FnMut(NeighborEvent)) {
        let t = self.timers;
        for i in 0..self.entries.len() {
            let e = &mut self.entries[i];
            if e.slot_state != SLOT_USED || now < e.deadline {
                continue;
            }
            match e.state {
                State::Permanent | State::Reachable => {}
                State::Incomplete if e.probes < t.retries => {
                    e.probes += 1;
                    e.deadline = now + t.retry_ns;
                    on(NeighborEvent::Request {
                        slot: i as u32,
                        iface: e.iface,
                        ip: e.ip,
                    });
                }
                State::Incomplete => {
                    e.state = State::Failed;
                    e.deadline = now + t.failed_hold_ns;
                    on(NeighborEvent::Failed { slot: i as u32 });
                }
                State::Probing if e.probes < t.retries => {
                    e.probes += 1;
                    e.deadline = now + t.retry_ns;
                    on(NeighborEvent::Request {
                        slot: i as u32,
                        iface: e.iface,
                        ip: e.ip,
                    });
                }
                State::Probing | State::Failed => self.remove_slot(i),
            }
        }
    }

    /// Entries in use.
    pub fn len(&self) -> usize {
        self.used
    }

    /// True when no entry is in use.
    pub fn is_empty(&self) -> bool {
        self.used == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;
    const MAC: [u8; 6] = [2, 0, 0, 0, 0, 9];

    fn timers() -> ArpTimers {
        ArpTimers {
            reachable_ns: 1000 * MS,
            retry_ns: 100 * MS,
            retries: 3,
            failed_hold_ns: 500 * MS,
        }
    }

    fn events(t: &mut NeighborTable, now: u64) -> Vec<NeighborEvent> {
        let mut v = Vec::new();
        t.tick(now, |e| v.push(e));
        v
    }

    #[test]
    fn unresolved_then_learnt() {
        let mut t = NeighborTable::new(64, timers());
        let r = t.resolve(1, 7, 0);
        let Resolve::Wait {
            slot,
            request: true,
        } = r
        else {
            panic!("{r:?}")
        };
        assert_eq!(
            t.resolve(1, 7, 10 * MS),
            Resolve::Wait {
                slot,
                request: false
            }
        );
        assert_eq!(t.learn(1, 7, MAC, 20 * MS, false), Some(slot));
        assert_eq!(
            t.resolve(1, 7, 30 * MS),
            Resolve::Mac {
                mac: MAC,
                refresh: false
            }
        );
        assert_eq!(t.mac_of(slot), Some(MAC));
        assert_eq!(t.key_of(slot), Some((1, 7)));
    }

    #[test]
    fn retries_then_fails_then_forgets() {
        let mut t = NeighborTable::new(64, timers());
        let Resolve::Wait { slot, .. } = t.resolve(0, 5, 0) else {
            panic!()
        };
        assert!(events(&mut t, 50 * MS).is_empty());
        assert_eq!(
            events(&mut t, 100 * MS),
            vec![NeighborEvent::Request {
                slot,
                iface: 0,
                ip: 5
            }]
        );
        assert_eq!(
            events(&mut t, 200 * MS),
            vec![NeighborEvent::Request {
                slot,
                iface: 0,
                ip: 5
            }]
        );
        assert_eq!(
            events(&mut t, 300 * MS),
            vec![NeighborEvent::Failed { slot }]
        );
        assert_eq!(t.resolve(0, 5, 400 * MS), Resolve::Failed);
        assert!(events(&mut t, 800 * MS).is_empty());
        assert_eq!(t.len(), 0);
        assert!(matches!(
            t.resolve(0, 5, 900 * MS),
            Resolve::Wait { request: true, .. }
        ));
    }

    #[test]
    fn stale_entry_is_used_while_reconfirmed() {
        let mut t = NeighborTable::new(64, timers());
        t.learn(0, 5, MAC, 0, true);
        assert_eq!(
            t.resolve(0, 5, 999 * MS),
            Resolve::Mac {
                mac: MAC,
                refresh: false
            }
        );
        assert_eq!(
            t.resolve(0, 5, 1000 * MS),
            Resolve::Mac {
                mac: MAC,
                refresh: true
            }
        );
        assert_eq!(
            t.resolve(0, 5, 1001 * MS),
            Resolve::Mac {
                mac: MAC,
                refresh: false
            }
        );
        // Answered: reachable again.
        assert_eq!(t.learn(0, 5, [2; 6], 1050 * MS, false), None);
        assert_eq!(
            t.resolve(0, 5, 1060 * MS),
            Resolve::Mac {
                mac: [2; 6],
                refresh: false
            }
        );
    }

    #[test]
    fn unanswered_reconfirmation_removes_entry() {
        let mut t = NeighborTable::new(64, timers());
        t.learn(0, 5, MAC, 0, true);
        assert!(matches!(
            t.resolve(0, 5, 1000 * MS),
            Resolve::Mac { refresh: true, .. }
        ));
        let n = events(&mut t, 1100 * MS).len() + events(&mut t, 1200 * MS).len();
        assert_eq!(n, 2);
        assert!(events(&mut t, 1300 * MS).is_empty());
        assert_eq!(t.len(), 0);
    }

    #[test]
    fn learn_without_create_only_updates() {
        let mut t = NeighborTable::new(64, timers());
        assert_eq!(t.learn(0, 5, MAC, 0, false), None);
        assert_eq!(t.len(), 0);
        t.learn(0, 5, MAC, 0, true);
        assert_eq!(t.len(), 1);
    }

    #[test]
    fn permanent_entries_never_expire() {
        let mut t = NeighborTable::new(64, timers());
        assert!(t.add_permanent(0, 5, MAC));
        events(&mut t, u64::MAX / 2);
        assert_eq!(
            t.resolve(0, 5, u64::MAX / 2),
            Resolve::Mac {
                mac: MAC,
                refresh: false
            }
        );
        t.learn(0, 5, [3; 6], 0, true);
        assert_eq!(
            t.resolve(0, 5, 0),
            Resolve::Mac {
                mac: MAC,
                refresh: false
            }
        );
    }

    #[test]
    fn table_full_is_reported_and_tombstones_are_reused() {
        let mut t = NeighborTable::new(16, timers());
        for ip in 0..12 {
            assert!(matches!(t.resolve(0, ip, 0), Resolve::Wait { .. }));
        }
        assert_eq!(t.resolve(0, 99, 0), Resolve::TableFull);
        for k in 1..=4 {
            events(&mut t, k * 100 * MS);
        }
        events(&mut t, 2000 * MS);
        assert_eq!(t.len(), 0);
        assert!(matches!(t.resolve(0, 99, 3000 * MS), Resolve::Wait { .. }));
    }
}
