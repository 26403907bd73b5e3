//! Last stage: every packet of the batch goes where its disposition says —
//! forwarded (resolve + rewrite + TX batch), sent as is, delivered locally,
//! or dropped and counted.

use super::Pipeline;
use crate::buffer::{Batch, Disposition};

impl Pipeline {
    pub(super) fn dispatch(&mut self, batch: &mut Batch, now: u64) {
        batch.take_each(|_, p| match p.meta().disposition {
            Disposition::Continue => self.forward(p, now),
            Disposition::Tx(port) => self.enqueue_tx(port, p),
            Disposition::Drop(r) => self.drop_packet(p, r),
            Disposition::Local => self.local_input(p, now),
            Disposition::Handoff(w) => self.hand_off(p, w),
            Disposition::Encap(t) => self.wg_encap(p, t, now),
            Disposition::Ipv6 => self.ipv6_input(p, now),
            // Nothing left to do; the buffer goes back to the pool.
            Disposition::Consumed | Disposition::AwaitArp(_) => {}
        });
    }
}
