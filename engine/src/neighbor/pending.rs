//! Packets held while their next hop is being resolved: one bounded FIFO per
//! worker, preallocated, tagged with the neighbor-table slot they wait on.

use std::collections::VecDeque;

use crate::buffer::Packet;

/// Bounded queue of (slot, packet).
#[derive(Debug)]
pub struct PendingQueue {
    q: VecDeque<(u32, Packet)>,
    cap: usize,
}

impl PendingQueue {
    /// A queue holding at most `cap` packets (storage allocated now).
    pub fn new(cap: usize) -> Self {
        PendingQueue {
            q: VecDeque::with_capacity(cap),
            cap,
        }
    }

    /// Holds a packet; gives it back when full.
    pub fn push(&mut self, slot: u32, p: Packet) -> Result<(), Packet> {
        if self.q.len() >= self.cap {
            return Err(p);
        }
        self.q.push_back((slot, p));
        Ok(())
    }

    /// Takes out every packet held under `slot`, in arrival order, passing
    /// each to `f`; the others keep their order.
    pub fn release(&mut self, slot: u32, mut f: impl FnMut(Packet)) {
        for _ in 0..self.q.len() {
            let Some((s, p)) = self.q.pop_front() else {
                break;
            };
            if s == slot {
                f(p);
            } else {
                self.q.push_back((s, p));
            }
        }
    }

    /// Drops every packet held (back to their pools); returns how many.
    pub fn clear(&mut self) -> usize {
        let n = self.q.len();
        self.q.clear();
        n
    }

    /// Packets held.
    pub fn len(&self) -> usize {
        self.q.len()
    }

    /// True when nothing is held.
    pub fn is_empty(&self) -> bool {
        self.q.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::buffer::PacketPool;

    #[test]
    fn release_takes_only_the_slot_in_order() {
        let mut pool = PacketPool::new(8);
        let mut q = PendingQueue::new(3);
        q.push(1, pool.alloc_from(&[1]).unwrap()).unwrap();
        q.push(2, pool.alloc_from(&[2]).unwrap()).unwrap();
        q.push(1, pool.alloc_from(&[3]).unwrap()).unwrap();
        assert!(q.push(1, pool.alloc_from(&[4]).unwrap()).is_err());
        let mut got = Vec::new();
        q.release(1, |p| got.push(p.data()[0]));
        assert_eq!(got, vec![1, 3]);
        assert_eq!(q.len(), 1);
        assert_eq!(pool.available(), 7);
    }
}
