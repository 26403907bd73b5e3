//! One worker's pinned flows: which backend each flow of a VIP went to, so
//! a change of the pool never moves an established connection. Found by
//! the forward key (client, VIP) and, in NAT mode, by the reverse key
//! (backend, client) of the replies — both in one open-addressing index
//! (`nat::index`) over a slab of one-cache-line pins on huge pages.
//! Fixed capacity, no allocation after [`PinTable::new`].

use crate::nat::huge::huge_vec;
use crate::nat::index::IndexTable;
use crate::nat::prefetch::prefetch;

/// Pin states.
pub const FREE: u8 = 0;
/// A flow in use (TCP before any FIN/RST, or UDP).
pub const OPEN: u8 = 1;
/// A TCP flow that has seen a FIN or RST.
pub const CLOSING: u8 = 2;

/// One pinned flow.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(C, align(64))]
pub struct Pin {
    pub client: u32,
    pub vip_addr: u32,
    pub backend: u32,
    /// Backend id the pin was made for (its slot may change hands).
    pub backend_id: u32,
    pub last_seen: u64,
    pub fwd_hash: u32,
    pub rev_hash: u32,
    pub cport: u16,
    pub vport: u16,
    pub bport: u16,
    /// Backend slot (counters, liveness).
    pub slot: u16,
    pub proto: u8,
    pub state: u8,
    /// Has a reverse index entry (NAT mode).
    pub reverse: bool,
}

const _: () = assert!(std::mem::size_of::<Pin>() == 64);

#[inline]
fn mix(a: u64, b: u64) -> u32 {
    let x = a.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ b;
    let x = (x ^ (x >> 29)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    (x >> 32) as u32
}

/// Index hash of a forward key.
#[inline]
pub fn fwd_hash(client: u32, cport: u16, vip: u32, vport: u16, proto: u8) -> u32 {
    mix(
        (u64::from(client) << 32) | u64::from(vip),
        (u64::from(cport) << 32) | (u64::from(vport) << 16) | (u64::from(proto) << 8),
    )
}

/// Index hash of a reverse key (a reply from `backend` to `client`).
#[inline]
pub fn rev_hash(backend: u32, bport: u16, client: u32, cport: u16, proto: u8) -> u32 {
    mix(
        (u64::from(backend) << 32) | u64::from(client),
        (u64::from(bport) << 32) | (u64::from(cport) << 16) | (u64::from(proto) << 8) | 1,
    )
}

/// The pinned flows of one worker.
#[derive(Debug)]
pub struct PinTable {
    pins: Vec<Pin>,
    index: IndexTable,
    /// Free pin numbers (a stack).
    free: Vec<u32>,
    /// Where the expiry sweep goes on.
    sweep: usize,
}

impl PinTable {
    /// A table for `capacity` flows (at least 1).
    pub fn new(capacity: usize) -> Self {
        let capacity = capacity.max(1);
        PinTable {
            pins: huge_vec(capacity, Pin::default()),
            index: IndexTable::with_capacity(2 * capacity),
            free: (0..capacity as u32).rev().collect(),
            sweep: 0,
        }
    }

    pub fn capacity(&self) -> usize {
        self.pins.len()
    }

    /// Flows pinned now.
    pub fn len(&self) -> usize {
        self.pins.len() - self.free.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    #[inline]
    pub fn get(&self, i: u32) -> &Pin {
        &self.pins[i as usize]
    }

    #[inline]
    pub fn get_mut(&mut self, i: u32) -> &mut Pin {
        &mut self.pins[i as usize]
    }

    /// The pin of forward key (client, VIP).
    #[inline]
    pub fn find_fwd(
        &self,
        h: u32,
        client: u32,
        cport: u16,
        vip: u32,
        vport: u16,
        proto: u8,
    ) -> Option<u32> {
        let pins = &self.pins;
        self.index.find(h, |i| {
            let p = &pins[i as usize];
            p.fwd_hash == h
                && p.client == client
                && p.cport == cport
                && p.vip_addr == vip
                && p.vport == vport
                && p.proto == proto
        })
    }

    /// The pin of a reply from `backend` to `client`.
    #[inline]
    pub fn find_rev(
        &self,
        h: u32,
        backend: u32,
        bport: u16,
        client: u32,
        cport: u16,
        proto: u8,
    ) -> Option<u32> {
        let pins = &self.pins;
        self.index.find(h, |i| {
            let p = &pins[i as usize];
            p.reverse
                && p.rev_hash == h
                && p.backend == backend
                && p.bport == bport
                && p.client == client
                && p.cport == cport
                && p.proto == proto
        })
    }

    /// Adds `pin` (state set by the caller); None when the table is full.
    #[inline]
    pub fn insert(&mut self, pin: Pin) -> Option<u32> {
        let i = self.free.pop()?;
        self.pins[i as usize] = pin;
        self.index.insert(pin.fwd_hash, i);
        if pin.reverse {
            self.index.insert(pin.rev_hash, i);
        }
        Some(i)
    }

    /// Forgets pin `i`; returns it as it was.
    #[inline]
    pub fn remove(&mut self, i: u32) -> Pin {
        let p = self.pins[i as usize];
        if p.state == FREE {
            return p;
        }
        self.index.remove(p.fwd_hash, i);
        if p.reverse {
            self.index.remove(p.rev_hash, i);
        }
        self.pins[i as usize].state = FREE;
        self.free.push(i);
        p
    }

    /// Examines up to `budget` slots for pins idle longer than
    /// `timeout(pin)` ns; calls `gone` with each one removed.
    pub fn expire(
        &mut self,
        now: u64,
        budget: usize,
        timeout: impl Fn(&Pin) -> u64,
        mut gone: impl FnMut(&Pin),
    ) -> usize {
        if self.free.len() == self.pins.len() {
            return 0;
        }
        let mut n = 0;
        for _ in 0..budget.min(self.pins.len()) {
            let i = self.sweep;
            self.sweep = (self.sweep + 1) % self.pins.len();
            let p = self.pins[i];
            if p.state != FREE && now.saturating_sub(p.last_seen) > timeout(&p) {
                let p = self.remove(i as u32);
                gone(&p);
                n += 1;
            }
        }
        n
    }

    /// Prefetches the index line where a probe for `h` starts.
    #[inline]
    pub fn prefetch_index(&self, h: u32) {
        self.index.prefetch(h);
    }

    /// Prefetches the pin the index names first under `h`.
    #[inline]
    pub fn prefetch_pin(&self, h: u32) {
        if let Some(i) = self.index.first(h) {
            prefetch(&self.pins[i as usize]);
        }
    }

    /// Every pin in use, with its number (for tests and listings).
    pub fn iter(&self) -> impl Iterator<Item = (u32, &Pin)> + '_ {
        self.pins
            .iter()
            .enumerate()
            .filter(|(_, p)| p.state != FREE)
            .map(|(i, p)| (i as u32, p))
    }
}
