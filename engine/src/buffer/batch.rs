//! Fixed-capacity batches of packets, reused in place from burst to burst.

use super::pool::Packet;

/// Most packets one batch holds (VPP's vector size).
pub const BATCH_SIZE: usize = 256;

/// Up to [`BATCH_SIZE`] packets that walk the pipeline stages together.
/// Its storage is allocated once; `push` never grows it.
#[derive(Debug)]
pub struct Batch {
    pkts: Vec<Packet>,
}

impl Default for Batch {
    fn default() -> Self {
        Self::new()
    }
}

impl Batch {
    /// An empty batch with room for [`BATCH_SIZE`] packets.
    pub fn new() -> Self {
        Batch {
            pkts: Vec::with_capacity(BATCH_SIZE),
        }
    }

    /// Packets in the batch.
    #[inline]
    pub fn len(&self) -> usize {
        self.pkts.len()
    }

    /// True when empty.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.pkts.is_empty()
    }

    /// Room left.
    #[inline]
    pub fn space(&self) -> usize {
        BATCH_SIZE - self.pkts.len()
    }

    /// Adds a packet; gives it back when the batch is full.
    #[inline]
    pub fn push(&mut self, p: Packet) -> Result<(), Packet> {
        let len = self.pkts.len();
        if len >= BATCH_SIZE {
            return Err(p);
        }
        // Capacity is at least BATCH_SIZE from `new`, so this never grows
        // (and skips Vec::push's and the spare slice's capacity checks on
        // the per-packet path).
        // SAFETY: `len < BATCH_SIZE <= capacity`: the slot is spare storage;
        // it is initialised before the length covers it.
        unsafe {
            self.pkts.as_mut_ptr().add(len).write(p);
            self.pkts.set_len(len + 1);
        }
        Ok(())
    }

    /// Adds a packet that `init` writes straight into the batch's storage;
    /// false (and `init` not called) when the batch is full.
    ///
    /// # Safety
    /// `init` must fully initialise the slot as a valid `Packet`.
    #[inline(always)]
    pub unsafe fn push_in_place(&mut self, init: impl FnOnce(*mut Packet)) -> bool {
        let len = self.pkts.len();
        if len >= BATCH_SIZE {
            return false;
        }
        // SAFETY: `len < BATCH_SIZE <= capacity`: the slot is spare storage.
        init(unsafe { self.pkts.as_mut_ptr().add(len) });
        // SAFETY: the caller's contract initialised element `len < capacity`.
        unsafe { self.pkts.set_len(len + 1) };
        true
    }

    /// Appends packets that `init(k, slot)` writes straight into the
    /// storage, for `k = 0, 1, ...` as long as it returns true, at most
    /// `max` of them and never past the batch's room; returns how many.
    /// One capacity check and one length update for the whole run instead
    /// of one per packet. If `init` panics, the packets written before are
    /// leaked (never dropped twice).
    ///
    /// # Safety
    /// When `init` returns true it has fully initialised the slot as a
    /// valid `Packet`; when it returns false it has not touched it.
    #[inline(always)]
    pub unsafe fn extend_in_place(
        &mut self,
        max: usize,
        mut init: impl FnMut(usize, *mut Packet) -> bool,
    ) -> usize {
        let len = self.pkts.len();
        let max = max.min(BATCH_SIZE - len);
        // SAFETY: `len <= capacity`, so this points into (or just past) the storage.
        let base = unsafe { self.pkts.as_mut_ptr().add(len) };
        let mut n = 0;
        // SAFETY: `len + n < len + max <= capacity`: each slot is spare storage.
        while n < max && init(n, unsafe { base.add(n) }) {
            n += 1;
        }
        // SAFETY: the caller's contract initialised elements `len..len + n`.
        unsafe { self.pkts.set_len(len + n) };
        n
    }

    /// The packets, for a stage to walk.
    #[inline]
    pub fn packets(&self) -> &[Packet] {
        &self.pkts
    }

    /// The packets, writable.
    #[inline]
    pub fn packets_mut(&mut self) -> &mut [Packet] {
        &mut self.pkts
    }

    /// Takes every packet out in order and hands it to `f` with its index,
    /// leaving the batch empty (storage kept). Unlike `drain`, each packet
    /// is read straight from the storage by index: `Drain`'s `Option`
    /// (niche) check splits the 24-byte handle into 8 + 16-byte moves that
    /// a later 16 + 8-byte copy cannot forward from (a store-forwarding
    /// stall per packet on the hot path). If `f` panics, the packets not yet
    /// handed out are leaked (not freed), never dropped twice.
    #[inline(always)]
    pub fn take_each(&mut self, mut f: impl FnMut(usize, Packet)) {
        let n = self.pkts.len();
        let base = self.pkts.as_mut_ptr();
        // SAFETY: ownership of elements 0..n moves to the loop below, so the
        // vector must not drop them.
        unsafe { self.pkts.set_len(0) };
        for i in 0..n {
            // SAFETY: `i < n`, element `i` is initialised and read once.
            f(i, unsafe { base.add(i).read() });
        }
    }

    /// Takes every packet out, leaving the batch empty (storage kept).
    #[inline]
    pub fn drain(&mut self) -> std::vec::Drain<'_, Packet> {
        self.pkts.drain(..)
    }

    /// Drops every packet (buffers go back to their pool).
    #[inline]
    pub fn clear(&mut self) {
        self.pkts.clear();
    }

    /// Removes the first `n` packets (after a partial transmit).
    #[inline]
    pub fn consume_front(&mut self, n: usize) {
        self.pkts.drain(..n.min(self.pkts.len()));
    }

    /// Removes and returns the last packet.
    #[inline]
    pub fn pop(&mut self) -> Option<Packet> {
        self.pkts.pop()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::buffer::PacketPool;

    #[test]
    fn push_stops_at_capacity_and_clear_returns_buffers() {
        let mut pool = PacketPool::new(BATCH_SIZE as u32 + 1);
        let mut b = Batch::new();
        for _ in 0..BATCH_SIZE {
            b.push(pool.alloc().unwrap()).unwrap();
        }
        assert!(b.push(pool.alloc().unwrap()).is_err());
        assert_eq!(pool.available(), 1); // the refused one was dropped back
        b.clear();
        assert_eq!(pool.available(), BATCH_SIZE + 1);
    }
}
