//! DIR-24-8 longest-prefix-match table for IPv4 (the layout of DPDK's
//! `rte_lpm`): one 2^24-entry first-level table indexed by the top 24 address
//! bits, plus 256-entry second-level groups for the /24 blocks that hold
//! routes longer than /24. A lookup is one or two memory reads.

use std::collections::HashMap;

mod huge_pages;

/// `lookup_batch` writes this for an address that has no route.
pub const LPM_MISS: u32 = u32::MAX;
/// Next hops are 24-bit indices (into a next-hop table the caller owns).
pub const MAX_NEXT_HOP: u32 = (1 << 24) - 1;

/// Number of first-level entries: one per /24.
const TBL24_ENTRIES: usize = 1 << 24;
/// Entries in one second-level group: one per host of a /24.
const GROUP_ENTRIES: usize = 256;
/// Group indices share the 24-bit payload field with next hops.
const MAX_TBL8_GROUPS: u32 = 1 << 24;

// Entry layout (u32): | valid:1 | extended:1 | depth:6 | payload:24 |.
// payload is the next hop, or for an extended tbl24 entry the group index.
// An all-zero entry means "no route".
const VALID: u32 = 1 << 31;
const EXTENDED: u32 = 1 << 30;
const DEPTH_SHIFT: u32 = 24;
const DEPTH_MASK: u32 = 0x3f;
const PAYLOAD_MASK: u32 = (1 << 24) - 1;

/// A route's next hop as a table entry, tagged with the route's length so
/// that later inserts and removes only touch entries they own or override.
const fn leaf(depth: u8, next_hop: u32) -> u32 {
    VALID | ((depth as u32) << DEPTH_SHIFT) | next_hop
}

/// A tbl24 entry that sends the lookup to a tbl8 group.
const fn group_ref(group: u32) -> u32 {
    VALID | EXTENDED | group
}

const fn depth_of(entry: u32) -> u8 {
    ((entry >> DEPTH_SHIFT) & DEPTH_MASK) as u8
}

const fn is_valid(entry: u32) -> bool {
    entry & VALID != 0
}

const fn is_extended(entry: u32) -> bool {
    entry & EXTENDED != 0
}

/// May a route of length `depth` write over `entry`? Yes when the entry is
/// empty or was written by a route no more specific than this one (equal
/// depth over the same address means the same prefix: a replace).
const fn may_overwrite(entry: u32, depth: u8) -> bool {
    !is_valid(entry) || depth_of(entry) <= depth
}

/// Does `entry` belong to the route of length `depth` being removed?
const fn owned_by(entry: u32, depth: u8) -> bool {
    is_valid(entry) && depth_of(entry) == depth
}

/// Network mask of a prefix length (0..=32).
const fn mask(len: u8) -> u32 {
    if len == 0 {
        0
    } else {
        u32::MAX << (32 - len as u32)
    }
}

/// Why a route could not be inserted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum LpmError {
    /// The route is longer than /24 and needs a second-level group, but all
    /// groups are in use.
    #[error("all tbl8 groups are in use")]
    Tbl8Exhausted,
    /// Prefix lengths are 0..=32.
    #[error("bad prefix length /{0}")]
    BadPrefixLen(u8),
    /// Next hops are 24-bit ([`MAX_NEXT_HOP`]).
    #[error("next hop {0} does not fit in 24 bits")]
    NextHopTooLarge(u32),
}

/// IPv4 longest-prefix-match table, DIR-24-8.
///
/// The routes themselves (one map per prefix length) are the source of
/// truth; the two lookup tables are derived from them. Mutation needs
/// `&mut self`; there is no interior mutability, so an immutable table can
/// be shared between worker threads through an `Arc`.
pub struct Dir24_8 {
    /// One entry per /24; a leaf or a reference to a tbl8 group.
    tbl24: Box<[u32; TBL24_ENTRIES]>,
    /// All groups, preallocated: group `g` is `tbl8[g * 256..][..256]`.
    tbl8: Box<[u32]>,
    /// Groups not in use; popped on demand, never grown.
    free_groups: Vec<u32>,
    /// `rules[len]`: network address (masked) -> next hop.
    rules: [HashMap<u32, u32>; 33],
    route_count: usize,
}

impl std::fmt::Debug for Dir24_8 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dir24_8")
            .field("routes", &self.route_count)
            .field("tbl8_groups", &self.tbl8_groups_total())
            .field("tbl8_groups_used", &self.tbl8_groups_used())
            .finish()
    }
}

impl Clone for Dir24_8 {
    /// A deep copy. Written out because the derived `Box<[u32; N]>` clone
    /// would build the 64 MiB first-level table on the stack.
    // `Self::new` fills the free list with every group; it is replaced.
    fn clone(&self) -> Self {
        // Zeroed (lazily mapped) and advised before the copy, so the copy
        // faults in huge pages like a new table does.
        let mut copy = Self::new(self.tbl8_groups_total());
        copy_nonzero(&mut copy.tbl24[..], &self.tbl24[..]);
        copy_nonzero(&mut copy.tbl8, &self.tbl8);
        let Self { tbl24, tbl8, .. } = copy;
        Self {
            tbl24,
            tbl8,
            free_groups: self.free_groups.clone(),
            rules: self.rules.clone(),
            route_count: self.route_count,
        }
    }
}

impl Dir24_8 {
    /// An empty table with room for `tbl8_groups` second-level groups
    /// (1 KiB each; one per /24 that holds routes longer than /24). The count
    /// is capped at 2^24, the most a 24-bit group index can address.
    /// Both tables are zero-filled allocations, so the OS maps their pages
    /// lazily (an empty table costs little resident memory), and they are
    /// advised to use transparent huge pages, which makes random lookups
    /// about 1.5x faster here by sparing TLB misses.
    pub fn new(tbl8_groups: u32) -> Self {
        let groups = tbl8_groups.min(MAX_TBL8_GROUPS);
        let mut tbl24: Box<[u32; TBL24_ENTRIES]> = vec![0u32; TBL24_ENTRIES]
            .into_boxed_slice()
            .try_into()
            .expect("tbl24 has exactly 2^24 entries");
        let mut tbl8 = vec![0u32; groups as usize * GROUP_ENTRIES].into_boxed_slice();
        huge_pages::advise(&mut tbl24[..]);
        huge_pages::advise(&mut tbl8);
        Self {
            tbl24,
            tbl8,
            // Reversed so that groups are handed out from 0 upwards.
            free_groups: (0..groups).rev().collect(),
            rules: std::array::from_fn(|_| HashMap::new()),
            route_count: 0,
        }
    }

    /// Adds the route `prefix/len -> next_hop` (host-order address; host
    /// bits are ignored), replacing the next hop of an existing route with
    /// the same prefix. On error the table is unchanged.
    pub fn insert(&mut self, prefix: u32, len: u8, next_hop: u32) -> Result<(), LpmError> {
        if len > 32 {
            return Err(LpmError::BadPrefixLen(len));
        }
        if next_hop > MAX_NEXT_HOP {
            return Err(LpmError::NextHopTooLarge(next_hop));
        }
        let prefix = prefix & mask(len);
        let entry = leaf(len, next_hop);
        if len <= 24 {
            self.write_short(prefix, len, entry, may_overwrite);
        } else {
            let group = self.group_for(prefix)?;
            self.write_long(group, prefix, len, entry, may_overwrite);
        }
        if self.rules[len as usize].insert(prefix, next_hop).is_none() {
            self.route_count += 1;
        }
        Ok(())
    }

    /// Removes the route `prefix/len` (host bits ignored) and returns its
    /// next hop, or `None` if there was no such route. Addresses it covered
    /// fall back to the longest shorter route that covers them, and a tbl8
    /// group left without routes longer than /24 is freed.
    pub fn remove(&mut self, prefix: u32, len: u8) -> Option<u32> {
        if len > 32 {
            return None;
        }
        let prefix = prefix & mask(len);
        let old = self.rules[len as usize].remove(&prefix)?;
        self.route_count -= 1;
        let fallback = match self.covering_route(prefix, len) {
            Some((depth, next_hop)) => leaf(depth, next_hop),
            None => 0,
        };
        let is_owned = |entry: u32, depth: u8| owned_by(entry, depth);
        if len <= 24 {
            self.write_short(prefix, len, fallback, is_owned);
        } else {
            let slot = (prefix >> 8) as usize;
            let tbl24_entry = self.tbl24[slot];
            debug_assert!(is_extended(tbl24_entry), "a route > /24 implies a group");
            let group = tbl24_entry & PAYLOAD_MASK;
            self.write_long(group, prefix, len, fallback, is_owned);
            self.free_group_if_unneeded(slot, group);
        }
        Some(old)
    }

    /// The next hop of the longest prefix that matches `addr` (host order).
    #[inline]
    pub fn lookup(&self, addr: u32) -> Option<u32> {
        let mut entry = self.tbl24[(addr >> 8) as usize];
        if is_extended(entry) {
            entry = self.tbl8[tbl8_index(entry, addr)];
        }
        is_valid(entry).then_some(entry & PAYLOAD_MASK)
    }

    /// Looks up every address of `addrs`: `out[i]` is the next hop of
    /// `addrs[i]`, or [`LPM_MISS`]. Two passes: the first issues all tbl24
    /// reads (independent, so the CPU overlaps their cache misses), the
    /// second follows the few extended entries into tbl8.
    pub fn lookup_batch(&self, addrs: &[u32], out: &mut [u32]) {
        debug_assert_eq!(addrs.len(), out.len());
        let n = addrs.len().min(out.len());
        let (addrs, out) = (&addrs[..n], &mut out[..n]);
        for (o, &a) in out.iter_mut().zip(addrs) {
            *o = self.tbl24[(a >> 8) as usize];
        }
        for (o, &a) in out.iter_mut().zip(addrs) {
            let mut entry = *o;
            if is_extended(entry) {
                entry = self.tbl8[tbl8_index(entry, a)];
            }
            *o = if is_valid(entry) {
                entry & PAYLOAD_MASK
            } else {
                LPM_MISS
            };
        }
    }

    /// The next hop of the route `prefix/len` itself (host bits ignored),
    /// if there is one.
    pub fn get(&self, prefix: u32, len: u8) -> Option<u32> {
        self.rules
            .get(len as usize)?
            .get(&(prefix & mask(len)))
            .copied()
    }

    /// Number of routes.
    pub fn len(&self) -> usize {
        self.route_count
    }

    /// True when the table holds no route.
    pub fn is_empty(&self) -> bool {
        self.route_count == 0
    }

    /// Second-level groups in use (one per /24 holding routes longer than /24).
    pub fn tbl8_groups_used(&self) -> u32 {
        self.tbl8_groups_total() - self.free_groups.len() as u32
    }

    /// Bytes allocated: both lookup tables (whether or not the OS has backed
    /// their pages yet), the free list and an estimate of the route maps.
    pub fn memory_bytes(&self) -> usize {
        // A hashbrown slot holds the (key, value) pair plus one control byte.
        let per_rule = std::mem::size_of::<(u32, u32)>() + 1;
        let rules: usize = self.rules.iter().map(|m| m.capacity() * per_rule).sum();
        std::mem::size_of_val(&*self.tbl24)
            + std::mem::size_of_val(&*self.tbl8)
            + self.free_groups.capacity() * std::mem::size_of::<u32>()
            + rules
            + std::mem::size_of::<Self>()
    }

    /// Every route as `(prefix, len, next_hop)`, shortest prefixes first
    /// (order within a length is unspecified).
    pub fn routes(&self) -> impl Iterator<Item = (u32, u8, u32)> + '_ {
        self.rules.iter().enumerate().flat_map(|(len, map)| {
            map.iter()
                .map(move |(&prefix, &next_hop)| (prefix, len as u8, next_hop))
        })
    }

    fn tbl8_groups_total(&self) -> u32 {
        (self.tbl8.len() / GROUP_ENTRIES) as u32
    }

    /// The longest route strictly shorter than `len` that covers `prefix`.
    fn covering_route(&self, prefix: u32, len: u8) -> Option<(u8, u32)> {
        (0..len).rev().find_map(|depth| {
            self.rules[depth as usize]
                .get(&(prefix & mask(depth)))
                .map(|&next_hop| (depth, next_hop))
        })
    }

    /// Writes `entry` for a route of length `len` <= 24 at every address it
    /// covers where `may_write(old, len)` holds, descending into the groups
    /// of extended tbl24 entries.
    fn write_short(
        &mut self,
        prefix: u32,
        len: u8,
        entry: u32,
        may_write: impl Fn(u32, u8) -> bool,
    ) {
        let first = (prefix >> 8) as usize;
        let count = 1usize << (24 - len);
        for slot in &mut self.tbl24[first..first + count] {
            if is_extended(*slot) {
                let group = (*slot & PAYLOAD_MASK) as usize;
                for e in &mut self.tbl8[group * GROUP_ENTRIES..][..GROUP_ENTRIES] {
                    if may_write(*e, len) {
                        *e = entry;
                    }
                }
            } else if may_write(*slot, len) {
                *slot = entry;
            }
        }
    }

    /// Like [`Self::write_short`] for a route longer than /24, inside its group.
    fn write_long(
        &mut self,
        group: u32,
        prefix: u32,
        len: u8,
        entry: u32,
        may_write: impl Fn(u32, u8) -> bool,
    ) {
        let first = group as usize * GROUP_ENTRIES + (prefix & 0xff) as usize;
        let count = 1usize << (32 - len);
        for e in &mut self.tbl8[first..first + count] {
            if may_write(*e, len) {
                *e = entry;
            }
        }
    }

    /// The group of the /24 holding `prefix`, allocating one (filled with
    /// what tbl24 held for the whole /24) if there is none yet.
    fn group_for(&mut self, prefix: u32) -> Result<u32, LpmError> {
        let slot = (prefix >> 8) as usize;
        let current = self.tbl24[slot];
        if is_extended(current) {
            return Ok(current & PAYLOAD_MASK);
        }
        let group = self.free_groups.pop().ok_or(LpmError::Tbl8Exhausted)?;
        self.tbl8[group as usize * GROUP_ENTRIES..][..GROUP_ENTRIES].fill(current);
        self.tbl24[slot] = group_ref(group);
        Ok(group)
    }

    /// Frees `group` if no route longer than /24 remains in it: all its
    /// entries then come from the same route of /24 or shorter (or none), so
    /// one tbl24 entry says the same.
    fn free_group_if_unneeded(&mut self, slot: usize, group: u32) {
        let entries = &self.tbl8[group as usize * GROUP_ENTRIES..][..GROUP_ENTRIES];
        if entries.iter().any(|&e| is_valid(e) && depth_of(e) > 24) {
            return;
        }
        debug_assert!(entries.iter().all(|&e| e == entries[0]));
        self.tbl24[slot] = entries[0];
        self.free_groups.push(group);
    }
}

/// Copies `src` into the zero-filled `dst` page by page, skipping pages of
/// zeros: reading a page nobody wrote costs no memory, writing it would.
fn copy_nonzero(dst: &mut [u32], src: &[u32]) {
    const PAGE: usize = 1024; // 4 KiB of u32
    for (d, s) in dst.chunks_mut(PAGE).zip(src.chunks(PAGE)) {
        if s.iter().any(|&e| e != 0) {
            d.copy_from_slice(s);
        }
    }
}

/// Index into tbl8 of `addr`'s entry in the group an extended entry names.
#[inline(always)]
const fn tbl8_index(extended_entry: u32, addr: u32) -> usize {
    (((extended_entry & PAYLOAD_MASK) as usize) << 8) | (addr & 0xff) as usize
}

#[cfg(test)]
mod scale_tests;
#[cfg(test)]
mod tests;
