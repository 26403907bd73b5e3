//! Classification slots: the per-flow state of flows still being
//! classified (the dissectors' [`FlowDpi`], several KiB with its
//! reassembly buffers, and the model's [`FeatureAcc`]). A worker has a
//! fixed pool of them, allocated once; a flow holds one from its first
//! packet until its class is decided, so the flow table itself stays small.

use patronus_classify::{FlowDpi, L4};
use patronus_ml::features::FeatureAcc;

/// What a slot is doing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SlotState {
    Free,
    /// Its flow's packets go through the dissectors and the features.
    Active,
    /// Waiting in the inference queue.
    Queued,
    /// Classified, still watched (an FTP control connection announcing
    /// data connections).
    Watching,
}

/// One flow's classification state.
#[derive(Clone, Debug)]
pub struct Slot {
    pub state: SlotState,
    /// Bumped each time the slot is freed: a queue entry naming an older
    /// generation is stale.
    pub generation: u32,
    /// Index of its flow in the flow table.
    pub flow: u32,
    /// The dissectors gave their final word (not trusted alone).
    pub dpi_done: bool,
    pub dpi: FlowDpi,
    pub features: FeatureAcc,
}

/// The pool.
#[derive(Debug)]
pub struct Slots {
    slots: Box<[Slot]>,
    free: Vec<u32>,
}

impl Slots {
    pub fn new(n: usize) -> Slots {
        let blank = Slot {
            state: SlotState::Free,
            generation: 0,
            flow: 0,
            dpi_done: false,
            dpi: FlowDpi::default(),
            features: FeatureAcc::new(L4::Tcp, 0, 0),
        };
        Slots {
            slots: vec![blank; n].into_boxed_slice(),
            // Popped from the end: slot 0 first.
            free: (0..n as u32).rev().collect(),
        }
    }

    /// A fresh slot for flow `flow` (its transport and server and client
    /// ports), or None when every slot is taken.
    pub fn take(&mut self, flow: u32, l4: L4, server_port: u16, client_port: u16) -> Option<u32> {
        let i = self.free.pop()?;
        let s = &mut self.slots[i as usize];
        s.state = SlotState::Active;
        s.flow = flow;
        s.dpi_done = false;
        s.dpi = FlowDpi::default();
        s.features = FeatureAcc::new(l4, server_port, client_port);
        Some(i)
    }

    /// Gives slot `i` back.
    pub fn release(&mut self, i: u32) {
        let s = &mut self.slots[i as usize];
        if s.state == SlotState::Free {
            return;
        }
        s.state = SlotState::Free;
        s.generation = s.generation.wrapping_add(1);
        self.free.push(i);
    }

    #[inline]
    pub fn get(&self, i: u32) -> &Slot {
        &self.slots[i as usize]
    }

    #[inline]
    pub fn get_mut(&mut self, i: u32) -> &mut Slot {
        &mut self.slots[i as usize]
    }

    /// Slots in use.
    pub fn in_use(&self) -> usize {
        self.slots.len() - self.free.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_run_out_and_come_back_with_a_new_generation() {
        let mut s = Slots::new(2);
        let a = s.take(7, L4::Udp, 53, 4000).unwrap();
        let b = s.take(8, L4::Tcp, 443, 5000).unwrap();
        assert!(s.take(9, L4::Tcp, 1, 2).is_none());
        assert_eq!(s.in_use(), 2);
        let g = s.get(a).generation;
        s.release(a);
        s.release(a); // twice: no double entry in the free list
        assert_eq!(s.get(a).generation, g.wrapping_add(1));
        assert_eq!(s.take(10, L4::Udp, 1, 2), Some(a));
        assert!(s.take(11, L4::Udp, 1, 2).is_none());
        assert_eq!(s.get(b).flow, 8);
    }
}
