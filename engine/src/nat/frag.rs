//! IPv4 fragments. Choice: non-first fragments are translated with the
//! state the first fragment left, keyed by (src, dst, proto, ident) of the
//! untranslated packet; they carry no L4 header, so only their addresses
//! change (the L4 checksum, in the first fragment, already covers the whole
//! change). A non-first fragment seen before its first fragment (reordered)
//! or after the entry aged out is dropped and counted: there is no
//! reassembly or buffering.
//!
//! The cache is direct-mapped and fixed-size: a new datagram may evict an
//! older one's entry whose later fragments then drop; entries live
//! `Timeouts::fragment_secs`.

use super::key::Endpoint;

/// Slots in the fragment cache (power of two).
pub const FRAGMENT_SLOTS: usize = 4096;

#[derive(Clone, Copy, Debug, Default)]
struct Entry {
    src: u32,
    dst: u32,
    ident: u16,
    proto: u8,
    new_src: u32,
    new_dst: u32,
    expires: u64,
}

#[derive(Debug)]
pub struct FragmentCache {
    slots: Vec<Entry>,
}

#[inline]
fn slot(src: u32, dst: u32, ident: u16, proto: u8) -> usize {
    let h = super::key::session_hash(
        Endpoint::new(src, ident),
        Endpoint::new(dst, 0),
        super::key::Proto::Udp,
    ) ^ u32::from(proto);
    h as usize & (FRAGMENT_SLOTS - 1)
}

impl Default for FragmentCache {
    fn default() -> Self {
        Self {
            slots: vec![Entry::default(); FRAGMENT_SLOTS],
        }
    }
}

impl FragmentCache {
    /// Remembers how the first fragment of datagram (src, dst, ident,
    /// proto) was translated.
    #[inline]
    pub fn record(&mut self, key: (u32, u32, u16, u8), new_src: u32, new_dst: u32, expires: u64) {
        let (src, dst, ident, proto) = key;
        self.slots[slot(src, dst, ident, proto)] = Entry {
            src,
            dst,
            ident,
            proto,
            new_src,
            new_dst,
            expires,
        };
    }

    /// The translated (src, dst) of the datagram, if its entry is live.
    #[inline]
    pub fn lookup(&self, key: (u32, u32, u16, u8), now: u64) -> Option<(u32, u32)> {
        let (src, dst, ident, proto) = key;
        let e = &self.slots[slot(src, dst, ident, proto)];
        (e.expires > now && e.src == src && e.dst == dst && e.ident == ident && e.proto == proto)
            .then_some((e.new_src, e.new_dst))
    }

    /// Forgets every entry that reads or writes an address for which
    /// `affected` holds (reconfiguration: a removed pool address, forward or
    /// 1:1 mapping must leave no translation behind); returns how many.
    pub fn purge(&mut self, affected: impl Fn(u32) -> bool) -> usize {
        let mut n = 0;
        for e in &mut self.slots {
            if e.expires != 0
                && (affected(e.src)
                    || affected(e.dst)
                    || affected(e.new_src)
                    || affected(e.new_dst))
            {
                *e = Entry::default();
                n += 1;
            }
        }
        n
    }
}
