//! Longest-prefix match for IPv6 (/0 to /128): binary search on prefix
//! lengths over one hash table per length, with markers (Waldvogel, Varghese,
//! Turner, Plattner, "Scalable High Speed IP Routing Lookups", SIGCOMM 1997).
//!
//! Why this structure and not a multibit trie (16-8-8-...): a trie costs
//! memory per *distinct path*, and IPv6 prefixes share little below /32, so
//! a million /48–/64 routes would make millions of 256-entry nodes (gigabytes
//! with leaf pushing). Here memory is linear in the routes: each route is
//! one hash entry plus at most 7 markers (usually 2–4, shared between routes
//! that have the same leading bits), 16 bytes per entry for lengths up to /64
//! (the common case: the key is the upper 64 bits) and 32 bytes beyond.
//! A lookup is at most 8 probes on a fixed binary tree over the lengths
//! 0..=128 (root /64); probes of lengths that hold no entry cost no memory
//! access, and a probe is usually one cache line (open addressing, linear
//! probing, load at most 5/8).
//! Measured (test `one_million_random_48_to_64_prefixes_memory`): 1 M
//! random /48–/64 routes make 4.1 M entries, 138 MiB of lookup tables, about
//! 207 MiB with the route map (random prefixes share no markers; real tables,
//! which nest, need fewer).
//!
//! Markers carry the *best matching prefix* (the next hop of the longest real
//! route at or above their length that covers them), so the search never
//! backtracks. The routes themselves live in an ordered map that is the
//! source of truth; it enumerates a prefix's more specific routes when an
//! insert or remove changes what their entries inherit.
//!
//! Usage is like the IPv4 [`super::lpm::Dir24_8`]: the link thread mutates a
//! private copy (`&mut self`), workers look up through a shared `Arc` of an
//! immutable one. Addresses are `u128` in host order
//! (`u128::from(Ipv6Addr)`).

use std::collections::BTreeMap;

/// `lookup_batch` writes this for an address that has no route.
pub const LPM6_MISS: u32 = u32::MAX;
/// Next hops are 24-bit indices, as in the IPv4 table.
pub const MAX_NEXT_HOP6: u32 = (1 << 24) - 1;

/// A marker with no covering route.
const NO_BEST: u32 = u32::MAX;
/// Lookups probe at most this many lengths (depth of the tree over 129 lengths).
const MAX_PROBES: usize = 8;
/// Addresses looked up together by `lookup_batch` (their probes interleave).
const BATCH_CHUNK: usize = 32;

/// Why a route could not be inserted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Lpm6Error {
    /// Prefix lengths are 0..=128.
    #[error("bad prefix length /{0}")]
    BadPrefixLen(u8),
    /// Next hops are 24-bit ([`MAX_NEXT_HOP6`]).
    #[error("next hop {0} does not fit in 24 bits")]
    NextHopTooLarge(u32),
}

/// Network mask of a prefix length (0..=128).
#[inline]
pub const fn mask6(len: u8) -> u128 {
    if len == 0 {
        0
    } else {
        u128::MAX << (128 - len as u32)
    }
}

/// Calls `f` with every length the search for a route of length `len`
/// passes, and goes longer at, before it reaches `len`: where the route
/// needs markers.
#[inline]
fn marker_lens(len: u8, mut f: impl FnMut(u8)) {
    let (mut lo, mut hi) = (0i32, 128i32);
    loop {
        let mid = (lo + hi) / 2;
        match mid.cmp(&i32::from(len)) {
            std::cmp::Ordering::Equal => return,
            std::cmp::Ordering::Less => {
                f(mid as u8);
                lo = mid + 1;
            }
            std::cmp::Ordering::Greater => hi = mid - 1,
        }
    }
}

/// Does a route of length `route_len` put a marker at `len`?
fn has_marker_at(route_len: u8, len: u8) -> bool {
    let mut found = false;
    marker_lens(route_len, |m| found |= m == len);
    found
}

/// What a table entry holds: the best matching prefix at its length.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Best {
    /// Next hop, or [`NO_BEST`].
    nh: u32,
    /// Length of the route `nh` comes from (meaningless with `NO_BEST`).
    len: u8,
    used: bool,
}

const UNUSED: Best = Best {
    nh: NO_BEST,
    len: 0,
    used: false,
};

/// Hash-table keys: the upper 64 bits for lengths up to /64, all 128 beyond.
trait Key: Copy + Eq + Default {
    fn from_addr(addr: u128, len: u8) -> Self;
    fn hash(self, shift: u32) -> usize;
}

impl Key for u64 {
    #[inline]
    fn from_addr(addr: u128, len: u8) -> Self {
        ((addr & mask6(len)) >> 64) as u64
    }
    #[inline]
    fn hash(self, shift: u32) -> usize {
        // Multiply-shift: the top bits of the product depend on every bit.
        (self.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> shift) as usize
    }
}

impl Key for u128 {
    #[inline]
    fn from_addr(addr: u128, len: u8) -> Self {
        addr & mask6(len)
    }
    #[inline]
    fn hash(self, shift: u32) -> usize {
        let (hi, lo) = ((self >> 64) as u64, self as u64);
        (hi ^ lo.wrapping_mul(0xC2B2_AE3D_27D4_EB4F)).hash(shift)
    }
}

#[derive(Clone, Copy)]
struct Slot<K> {
    key: K,
    best: Best,
}

/// One prefix length's entries: open addressing with linear probing,
/// power-of-two capacity, backward-shift deletion (no tombstones).
#[derive(Clone)]
struct Table<K> {
    slots: Box<[Slot<K>]>,
    /// `64 - log2(capacity)`: hashes keep their top bits.
    shift: u32,
    used: usize,
}

impl<K: Key> Table<K> {
    const MIN_CAPACITY: usize = 8;

    fn new() -> Self {
        Self {
            slots: Box::new([]),
            shift: 64,
            used: 0,
        }
    }

    #[inline]
    fn mask(&self) -> usize {
        self.slots.len().wrapping_sub(1)
    }

    /// Index of `key`'s slot.
    #[inline]
    fn find(&self, key: K) -> Option<usize> {
        if self.used == 0 {
            return None;
        }
        let mask = self.mask();
        let mut i = key.hash(self.shift) & mask;
        loop {
            let s = &self.slots[i];
            if !s.best.used {
                return None;
            }
            if s.key == key {
                return Some(i);
            }
            i = (i + 1) & mask;
        }
    }

    #[inline]
    fn get(&self, key: K) -> Option<Best> {
        self.find(key).map(|i| self.slots[i].best)
    }

    fn get_mut(&mut self, key: K) -> Option<&mut Best> {
        self.find(key).map(move |i| &mut self.slots[i].best)
    }

    /// Adds `key` (absent) with `best`.
    fn insert_new(&mut self, key: K, best: Best) {
        // Grow past a load of 5/8 so probe runs stay short.
        if (self.used + 1) * 8 > self.slots.len() * 5 {
            self.grow();
        }
        let mask = self.mask();
        let mut i = key.hash(self.shift) & mask;
        while self.slots[i].best.used {
            i = (i + 1) & mask;
        }
        self.slots[i] = Slot {
            key,
            best: Best { used: true, ..best },
        };
        self.used += 1;
    }

    fn grow(&mut self) {
        let cap = (self.slots.len() * 2).max(Self::MIN_CAPACITY);
        let old = std::mem::replace(
            &mut self.slots,
            vec![
                Slot {
                    key: K::default(),
                    best: UNUSED
                };
                cap
            ]
            .into_boxed_slice(),
        );
        self.shift = 64 - cap.trailing_zeros();
        self.used = 0;
        for s in old.iter().filter(|s| s.best.used) {
            self.insert_new(s.key, s.best);
        }
    }

    /// Removes `key` if present, shifting later members of its probe run back.
    fn remove(&mut self, key: K) {
        let Some(mut hole) = self.find(key) else {
            return;
        };
        let mask = self.mask();
        let mut i = hole;
        loop {
            i = (i + 1) & mask;
            let s = self.slots[i];
            if !s.best.used {
                break;
            }
            let home = s.key.hash(self.shift) & mask;
            // Move `s` into the hole unless its home lies cyclically in (hole, i].
            if (i.wrapping_sub(home) & mask) >= (i.wrapping_sub(hole) & mask) {
                self.slots[hole] = s;
                hole = i;
            }
        }
        self.slots[hole].best = UNUSED;
        self.used -= 1;
        if self.used == 0 {
            *self = Self::new();
        }
    }

    fn memory_bytes(&self) -> usize {
        std::mem::size_of_val(&*self.slots)
    }
}

/// Routes of `routes` strictly more specific than `p/len`.
fn routes_below(
    routes: &BTreeMap<(u128, u8), u32>,
    p: u128,
    len: u8,
) -> impl Iterator<Item = (u128, u8)> + '_ {
    let last = p | !mask6(len);
    // The range runs from p/(len+1) (or, for a /128, from itself: then
    // the filter leaves nothing) to the last address under p.
    let start = (p, len.saturating_add(1).min(128));
    routes
        .range(start..=(last, 128))
        .filter(move |&(&(_, l), _)| l > len)
        .map(|(&k, _)| k)
}

/// The per-length hash tables.
#[derive(Clone)]
struct Tables {
    /// Lengths 0..=64, keyed by the upper 64 address bits.
    short: Box<[Table<u64>]>,
    /// Lengths 65..=128 at index `len - 65`.
    long: Box<[Table<u128>]>,
}

/// IPv6 longest-prefix-match table (see the module docs).
#[derive(Clone)]
pub struct Lpm6 {
    tables: Tables,
    /// The routes: (masked prefix, length) -> next hop.
    routes: BTreeMap<(u128, u8), u32>,
    /// Routes per length, so covering-route searches skip empty lengths.
    per_len: [u32; 129],
}

impl std::fmt::Debug for Lpm6 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lpm6")
            .field("routes", &self.routes.len())
            .field("entries", &self.entries())
            .finish()
    }
}

impl Default for Lpm6 {
    fn default() -> Self {
        Self::new()
    }
}

impl Tables {
    /// The entry (route or marker) of `addr/len`, if any.
    #[inline(always)]
    fn probe(&self, addr: u128, len: u8) -> Option<Best> {
        if len <= 64 {
            self.short[len as usize].get(u64::from_addr(addr, len))
        } else {
            self.long[len as usize - 65].get(u128::from_addr(addr, len))
        }
    }

    fn entry_mut(&mut self, addr: u128, len: u8) -> Option<&mut Best> {
        if len <= 64 {
            self.short[len as usize].get_mut(u64::from_addr(addr, len))
        } else {
            self.long[len as usize - 65].get_mut(u128::from_addr(addr, len))
        }
    }

    fn entry_insert(&mut self, addr: u128, len: u8, best: Best) {
        if len <= 64 {
            self.short[len as usize].insert_new(u64::from_addr(addr, len), best)
        } else {
            self.long[len as usize - 65].insert_new(u128::from_addr(addr, len), best)
        }
    }

    fn entry_remove(&mut self, addr: u128, len: u8) {
        if len <= 64 {
            self.short[len as usize].remove(u64::from_addr(addr, len))
        } else {
            self.long[len as usize - 65].remove(u128::from_addr(addr, len))
        }
    }
}

impl Lpm6 {
    /// An empty table (allocates nothing per length until routes arrive).
    pub fn new() -> Self {
        Self {
            tables: Tables {
                short: (0..=64).map(|_| Table::new()).collect(),
                long: (65..=128).map(|_| Table::new()).collect(),
            },
            routes: BTreeMap::new(),
            per_len: [0; 129],
        }
    }

    /// Adds the route `prefix/len -> next_hop` (host bits ignored), replacing
    /// the next hop of an existing route with the same prefix. On error the
    /// table is unchanged.
    pub fn insert(&mut self, prefix: u128, len: u8, next_hop: u32) -> Result<(), Lpm6Error> {
        if len > 128 {
            return Err(Lpm6Error::BadPrefixLen(len));
        }
        if next_hop > MAX_NEXT_HOP6 {
            return Err(Lpm6Error::NextHopTooLarge(next_hop));
        }
        let p = prefix & mask6(len);
        let new = self.routes.insert((p, len), next_hop).is_none();
        if new {
            self.per_len[len as usize] += 1;
            // Markers on the way down; a new one inherits the best route
            // covering it (never this route, which is longer).
            marker_lens(len, |m| {
                if self.tables.probe(p, m).is_none() {
                    let best = self.covering(p, m);
                    self.tables.entry_insert(p, m, best);
                }
            });
            if self.tables.probe(p, len).is_none() {
                self.tables.entry_insert(p, len, UNUSED);
            }
        }
        // This entry and the entries below it that inherited from a
        // shorter route (or from this one, when replacing) now inherit this.
        let best = Best {
            nh: next_hop,
            len,
            used: true,
        };
        self.rewrite_below(p, len, |old| old.nh == NO_BEST || old.len <= len, best);
        Ok(())
    }

    /// Removes the route `prefix/len` (host bits ignored) and returns its
    /// next hop, or `None` if there was no such route.
    pub fn remove(&mut self, prefix: u128, len: u8) -> Option<u32> {
        if len > 128 {
            return None;
        }
        let p = prefix & mask6(len);
        let old = self.routes.remove(&(p, len))?;
        self.per_len[len as usize] -= 1;
        let fallback = match len {
            0 => UNUSED,
            _ => self.covering(p, len - 1),
        };
        self.rewrite_below(
            p,
            len,
            |b| b.nh != NO_BEST && b.len == len,
            Best {
                used: true,
                ..fallback
            },
        );
        // Its entry and its markers stay only while still needed.
        if !self.needed(p, len) {
            self.tables.entry_remove(p, len);
        }
        marker_lens(len, |m| {
            if !self.needed(p, m) {
                self.tables.entry_remove(p, m);
            }
        });
        Some(old)
    }

    /// The next hop of the longest prefix that matches `addr`.
    #[inline]
    pub fn lookup(&self, addr: u128) -> Option<u32> {
        let (mut lo, mut hi) = (0i32, 128i32);
        let mut best = NO_BEST;
        while lo <= hi {
            let mid = (lo + hi) / 2;
            match self.tables.probe(addr, mid as u8) {
                Some(b) => {
                    best = b.nh;
                    lo = mid + 1;
                }
                None => hi = mid - 1,
            }
        }
        (best != NO_BEST).then_some(best)
    }

    /// Looks up every address of `addrs`: `out[i]` is the next hop of
    /// `addrs[i]`, or [`LPM6_MISS`]. Addresses go in chunks whose searches
    /// advance one level at a time together, so the probes of different
    /// addresses are independent loads the CPU overlaps.
    pub fn lookup_batch(&self, addrs: &[u128], out: &mut [u32]) {
        debug_assert_eq!(addrs.len(), out.len());
        let n = addrs.len().min(out.len());
        for (addrs, out) in addrs[..n]
            .chunks(BATCH_CHUNK)
            .zip(out[..n].chunks_mut(BATCH_CHUNK))
        {
            let mut lo = [0i32; BATCH_CHUNK];
            let mut hi = [128i32; BATCH_CHUNK];
            out.fill(NO_BEST);
            for _ in 0..MAX_PROBES {
                for (i, (&a, o)) in addrs.iter().zip(out.iter_mut()).enumerate() {
                    if lo[i] > hi[i] {
                        continue;
                    }
                    let mid = (lo[i] + hi[i]) / 2;
                    match self.tables.probe(a, mid as u8) {
                        Some(b) => {
                            *o = b.nh;
                            lo[i] = mid + 1;
                        }
                        None => hi[i] = mid - 1,
                    }
                }
            }
        }
        // NO_BEST == LPM6_MISS: nothing to translate.
    }

    /// The next hop of the route `prefix/len` itself (host bits ignored).
    pub fn get(&self, prefix: u128, len: u8) -> Option<u32> {
        if len > 128 {
            return None;
        }
        self.routes.get(&(prefix & mask6(len), len)).copied()
    }

    /// Number of routes.
    pub fn len(&self) -> usize {
        self.routes.len()
    }

    /// True when the table holds no route.
    pub fn is_empty(&self) -> bool {
        self.routes.is_empty()
    }

    /// Hash entries (routes plus markers).
    pub fn entries(&self) -> usize {
        self.tables.short.iter().map(|t| t.used).sum::<usize>()
            + self.tables.long.iter().map(|t| t.used).sum::<usize>()
    }

    /// Bytes of the lookup tables (what workers touch).
    pub fn lookup_bytes(&self) -> usize {
        self.tables
            .short
            .iter()
            .map(Table::memory_bytes)
            .sum::<usize>()
            + self
                .tables
                .long
                .iter()
                .map(Table::memory_bytes)
                .sum::<usize>()
    }

    /// Bytes allocated: the lookup tables plus an estimate of the route map
    /// (a B-tree node holds up to 11 entries and is about 2/3 full).
    pub fn memory_bytes(&self) -> usize {
        let per_route = std::mem::size_of::<((u128, u8), u32)>() * 3 / 2;
        self.lookup_bytes() + self.routes.len() * per_route + std::mem::size_of::<Self>()
    }

    /// Every route as `(prefix, len, next_hop)`, in address order.
    pub fn routes(&self) -> impl Iterator<Item = (u128, u8, u32)> + '_ {
        self.routes.iter().map(|(&(p, l), &nh)| (p, l, nh))
    }

    /// The longest route of length `<= max_len` covering `addr`.
    fn covering(&self, addr: u128, max_len: u8) -> Best {
        (0..=max_len)
            .rev()
            .filter(|&l| self.per_len[l as usize] != 0)
            .find_map(|l| {
                self.routes.get(&(addr & mask6(l), l)).map(|&nh| Best {
                    nh,
                    len: l,
                    used: true,
                })
            })
            .unwrap_or(UNUSED)
    }

    /// Sets `best` in the entry `p/len` and in every entry under it (more
    /// specific routes and their markers longer than `len`) whose current
    /// value satisfies `replace`.
    fn rewrite_below(&mut self, p: u128, len: u8, replace: impl Fn(Best) -> bool, best: Best) {
        let set = |tables: &mut Tables, a: u128, l: u8| {
            if let Some(b) = tables.entry_mut(a, l) {
                if replace(*b) {
                    *b = best;
                }
            }
        };
        set(&mut self.tables, p, len);
        for (q, ql) in routes_below(&self.routes, p, len) {
            set(&mut self.tables, q, ql);
            marker_lens(ql, |m| {
                if m > len {
                    set(&mut self.tables, q, m);
                }
            });
        }
    }

    /// Must the entry `p/len` exist? Yes while it is a route or a marker of
    /// a more specific route.
    fn needed(&self, p: u128, len: u8) -> bool {
        let p = p & mask6(len);
        self.routes.contains_key(&(p, len))
            || routes_below(&self.routes, p, len).any(|(_, ql)| has_marker_at(ql, len))
    }
}

#[cfg(test)]
mod tests;
