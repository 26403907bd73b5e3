//! The session table of one worker: a preallocated slab of [`Session`]s,
//! two indexes (inside key, outside key) and one list per timer class.
//!
//! Lists are ordered by `linked_at`, the time a session was last put at
//! its list's tail: at creation, on a class change, and on use at most once
//! per [`RELINK_NANOS`]. Most packets so only store `last_seen` (no list
//! surgery on cache-cold neighbours). Invariant: `linked_at <= last_seen <
//! linked_at + RELINK_NANOS`, so a session whose `linked_at` is not yet a
//! timeout old is not due, and neither is any session behind it; expiry
//! walks from the head while `linked_at` is a timeout old and frees the
//! sessions whose `last_seen` is (see `Nat::expire`).

use super::index::IndexTable;
use super::key::{session_hash, Endpoint, Proto};
use super::tcp_state::TcpState;
use super::timeouts::TimerClass;

const NIL: u32 = u32::MAX;

/// Least time between two list moves of a used session. Must not exceed
/// the shortest timeout (1 s, enforced by config validation).
pub const RELINK_NANOS: u64 = 1_000_000_000;

/// One translated flow. `remote` is the same on both sides (NAT44 never
/// rewrites the remote endpoint of a session).
#[derive(Clone, Copy, Debug)]
// One cache line each: a lookup that finds a session touches one line.
#[repr(align(64))]
pub struct Session {
    pub inside: Endpoint,
    pub outside: Endpoint,
    pub remote: Endpoint,
    pub proto: Proto,
    pub tcp: TcpState,
    pub class: TimerClass,
    /// Index of the mapping (inside endpoint <-> outside endpoint) used.
    pub mapping: u32,
    pub created: u64,
    pub last_seen: u64,
    /// When the session was last put at its list's tail (<= `last_seen`).
    linked_at: u64,
    prev: u32,
    next: u32,
    live: bool,
}

impl Session {
    pub fn new(
        inside: Endpoint,
        outside: Endpoint,
        remote: Endpoint,
        proto: Proto,
        mapping: u32,
        now: u64,
    ) -> Self {
        let class = match proto {
            Proto::Tcp => TimerClass::TcpInitial,
            Proto::Udp => TimerClass::Udp,
            Proto::Icmp => TimerClass::IcmpQuery,
        };
        Self {
            inside,
            outside,
            remote,
            proto,
            tcp: TcpState::default(),
            class,
            mapping,
            created: now,
            last_seen: now,
            linked_at: now,
            prev: NIL,
            next: NIL,
            live: false,
        }
    }
}

#[derive(Clone, Copy, Debug)]
struct List {
    head: u32,
    tail: u32,
}

#[derive(Debug)]
pub struct SessionTable {
    slots: Vec<Session>,
    free: Vec<u32>,
    lists: [List; TimerClass::COUNT],
    by_inside: IndexTable,
    by_outside: IndexTable,
}

impl SessionTable {
    pub fn new(capacity: usize) -> Self {
        let blank = Session::new(
            Endpoint::default(),
            Endpoint::default(),
            Endpoint::default(),
            Proto::Udp,
            0,
            0,
        );
        Self {
            slots: super::huge::huge_vec(capacity, blank),
            // Popped from the end: slot 0 first.
            free: (0..capacity as u32).rev().collect(),
            lists: [List {
                head: NIL,
                tail: NIL,
            }; TimerClass::COUNT],
            by_inside: IndexTable::with_capacity(capacity),
            by_outside: IndexTable::with_capacity(capacity),
        }
    }

    pub fn count(&self) -> usize {
        self.slots.len() - self.free.len()
    }

    pub fn is_full(&self) -> bool {
        self.free.is_empty()
    }

    pub fn capacity(&self) -> usize {
        self.slots.len()
    }

    #[inline]
    pub fn get(&self, idx: u32) -> &Session {
        &self.slots[idx as usize]
    }

    /// Slot `idx` if it holds a live session (listing).
    pub fn live(&self, idx: usize) -> Option<&Session> {
        self.slots.get(idx).filter(|s| s.live)
    }

    #[inline]
    pub fn find_inside(&self, inside: Endpoint, remote: Endpoint, proto: Proto) -> Option<u32> {
        self.by_inside
            .find(session_hash(inside, remote, proto), |i| {
                let s = &self.slots[i as usize];
                s.inside == inside && s.remote == remote && s.proto == proto
            })
    }

    /// [`SessionTable::find_inside`] with the key's hash already computed.
    #[inline]
    pub fn find_inside_hashed(
        &self,
        hash: u32,
        inside: Endpoint,
        remote: Endpoint,
        proto: Proto,
    ) -> Option<u32> {
        self.by_inside.find(hash, |i| {
            let s = &self.slots[i as usize];
            s.inside == inside && s.remote == remote && s.proto == proto
        })
    }

    /// [`SessionTable::find_outside`] with the key's hash already computed.
    #[inline]
    pub fn find_outside_hashed(
        &self,
        hash: u32,
        outside: Endpoint,
        remote: Endpoint,
        proto: Proto,
    ) -> Option<u32> {
        self.by_outside.find(hash, |i| {
            let s = &self.slots[i as usize];
            s.outside == outside && s.remote == remote && s.proto == proto
        })
    }

    #[inline]
    pub fn find_outside(&self, outside: Endpoint, remote: Endpoint, proto: Proto) -> Option<u32> {
        self.by_outside
            .find(session_hash(outside, remote, proto), |i| {
                let s = &self.slots[i as usize];
                s.outside == outside && s.remote == remote && s.proto == proto
            })
    }

    /// Prefetch helpers (see [`super::prefetch`]).
    #[inline]
    pub fn prefetch_inside(&self, hash: u32) {
        self.by_inside.prefetch(hash);
    }

    #[inline]
    pub fn prefetch_outside(&self, hash: u32) {
        self.by_outside.prefetch(hash);
    }

    /// False when the index has no candidate (a new session).
    #[inline]
    pub fn prefetch_session_inside(&self, hash: u32) -> bool {
        match self.by_inside.first(hash) {
            Some(i) => {
                self.prefetch_slot(i);
                true
            }
            None => false,
        }
    }

    #[inline]
    pub fn prefetch_session_outside(&self, hash: u32) {
        if let Some(i) = self.by_outside.first(hash) {
            self.prefetch_slot(i);
        }
    }

    #[inline]
    fn prefetch_slot(&self, i: u32) {
        if let Some(s) = self.slots.get(i as usize) {
            // One line (see `Session`'s alignment).
            super::prefetch::prefetch(s);
        }
    }

    /// Stores `s`; `None` when the table is full.
    #[inline]
    pub fn insert(&mut self, mut s: Session) -> Option<u32> {
        let idx = self.free.pop()?;
        s.live = true;
        self.slots[idx as usize] = s;
        self.by_inside
            .insert(session_hash(s.inside, s.remote, s.proto), idx);
        self.by_outside
            .insert(session_hash(s.outside, s.remote, s.proto), idx);
        self.link_tail(idx);
        Some(idx)
    }

    /// Removes session `idx` and returns it.
    #[inline]
    pub fn remove(&mut self, idx: u32) -> Session {
        self.unlink(idx);
        let s = self.slots[idx as usize];
        self.by_inside
            .remove(session_hash(s.inside, s.remote, s.proto), idx);
        self.by_outside
            .remove(session_hash(s.outside, s.remote, s.proto), idx);
        self.slots[idx as usize].live = false;
        self.free.push(idx);
        s
    }

    /// Marks use at `now` in timer class `class`: a store of `last_seen`,
    /// plus a move to the tail of the class's list when the class changed or
    /// the last move is [`RELINK_NANOS`] old.
    #[inline]
    pub fn touch(&mut self, idx: u32, class: TimerClass, now: u64) {
        let s = &mut self.slots[idx as usize];
        s.last_seen = now;
        if s.class != class || now.saturating_sub(s.linked_at) >= RELINK_NANOS {
            self.unlink(idx);
            let s = &mut self.slots[idx as usize];
            s.class = class;
            s.linked_at = now;
            self.link_tail(idx);
        }
    }

    /// When head session `idx` was linked (expiry's early stop).
    #[inline]
    pub fn linked_at(&self, idx: u32) -> u64 {
        self.slots[idx as usize].linked_at
    }

    /// The session after `idx` in its class's list.
    #[inline]
    pub fn next_in_list(&self, idx: u32) -> Option<u32> {
        let n = self.slots[idx as usize].next;
        (n != NIL).then_some(n)
    }

    /// Points session `idx` at mapping slot `m` (after the mapping table was
    /// rebuilt; the mapping index is in no session index or list).
    pub fn set_mapping(&mut self, idx: u32, m: u32) {
        self.slots[idx as usize].mapping = m;
    }

    /// Every list ordered by `linked_at` with the invariant of the module
    /// doc, every live session in its class's list exactly once, and the
    /// links consistent both ways (tests).
    #[cfg(test)]
    pub fn check_lists(&self) -> Result<(), String> {
        let mut seen = 0;
        for class in TimerClass::ALL {
            let mut prev = NIL;
            let mut cur = self.lists[class as usize].head;
            while cur != NIL {
                let s = &self.slots[cur as usize];
                if !s.live || s.class != class || s.prev != prev {
                    return Err(format!("list {class:?}: bad session {cur}"));
                }
                if prev != NIL && self.slots[prev as usize].linked_at > s.linked_at {
                    return Err(format!("list {class:?}: out of order at {cur}"));
                }
                if s.last_seen < s.linked_at || s.last_seen >= s.linked_at + RELINK_NANOS {
                    return Err(format!(
                        "session {cur}: last_seen outside its relink window"
                    ));
                }
                seen += 1;
                prev = cur;
                cur = s.next;
            }
            if self.lists[class as usize].tail != prev {
                return Err(format!("list {class:?}: bad tail"));
            }
        }
        if seen != self.count() {
            return Err(format!("{seen} sessions in lists, {} live", self.count()));
        }
        Ok(())
    }

    /// Mutable access to the fields that do not affect the indexes or lists.
    #[inline]
    pub fn tcp_mut(&mut self, idx: u32) -> &mut TcpState {
        &mut self.slots[idx as usize].tcp
    }

    /// The least recently used session of `class`.
    #[inline]
    pub fn oldest(&self, class: TimerClass) -> Option<u32> {
        let h = self.lists[class as usize].head;
        (h != NIL).then_some(h)
    }

    fn link_tail(&mut self, idx: u32) {
        let class = self.slots[idx as usize].class as usize;
        let tail = self.lists[class].tail;
        {
            let s = &mut self.slots[idx as usize];
            s.prev = tail;
            s.next = NIL;
        }
        if tail == NIL {
            self.lists[class].head = idx;
        } else {
            self.slots[tail as usize].next = idx;
        }
        self.lists[class].tail = idx;
    }

    fn unlink(&mut self, idx: u32) {
        let s = self.slots[idx as usize];
        let class = s.class as usize;
        if s.prev == NIL {
            self.lists[class].head = s.next;
        } else {
            self.slots[s.prev as usize].next = s.next;
        }
        if s.next == NIL {
            self.lists[class].tail = s.prev;
        } else {
            self.slots[s.next as usize].prev = s.prev;
        }
    }
}

const _: () = assert!(std::mem::size_of::<Session>() == 64);
