//! Where the pipeline hands packets to the classifier
//! ([`crate::classify::Classifier`]): every packet it forwards (and every
//! packet it routes into a tunnel, before encapsulation), after inbound
//! NAT and before outbound NAT, so both directions of a NATed connection
//! carry the inside addresses and meet in one flow on the worker owning
//! the NAT session. The fast path calls the classifier at the same point.
//! Packets to the engine itself are not classified.

use super::Pipeline;
use crate::buffer::{Batch, Packet};
use crate::classify::infer::Model;
use crate::classify::key::FlowKey;
use crate::classify::{Classifier, Params};
use crate::config::ClassifySection;
use std::sync::Arc;

impl Pipeline {
    /// Starts classifying (allocates the flow table and the slot pool).
    /// `push`: the model push that chose `model` (0: the configuration).
    pub fn enable_classify(&mut self, cfg: &ClassifySection, model: Option<Arc<Model>>, push: u64) {
        let mut c = Classifier::new(Params::from_section(cfg), None);
        c.set_model(model, push);
        self.classify = Some(c);
    }

    /// Runs `model` from now on (None: signatures only), chosen by model
    /// push `push`.
    pub fn set_model(&mut self, model: Option<Arc<Model>>, push: u64) {
        if let Some(c) = self.classify.as_mut() {
            c.set_model(model, push);
        }
    }

    /// The classifier, when classification is on.
    pub fn classifier(&self) -> Option<&Classifier> {
        self.classify.as_ref()
    }

    /// Shows a packet the stages forward to the classifier.
    #[inline]
    pub(super) fn classify_observe(&mut self, p: &Packet, now: u64) {
        if let Some(c) = self.classify.as_mut() {
            let l3 = p.meta().l3_offset as usize;
            if let Some(ip) = p.data().get(l3..) {
                c.observe(ip, now);
            }
        }
    }

    /// Prefetches the flows of a received batch's plain IPv4 frames (two
    /// passes: the keys' buckets, then the flows they name), so the
    /// classifier's lookups in the fast path hit the cache.
    pub(super) fn classify_prefetch(&mut self, batch: &Batch) {
        let Some(c) = self.classify.as_ref().filter(|c| c.wants_prefetch()) else {
            return;
        };
        // Software-pipelined: the flow of packet i - AHEAD is looked up
        // while the bucket of packet i is on its way (a burst of every
        // bucket first would overrun the CPU's outstanding-miss slots).
        const AHEAD: usize = 8;
        let n = batch.len();
        for (i, p) in batch.packets().iter().enumerate() {
            let d = p.data();
            self.cls_keys[i] = match d.get(14..) {
                Some(ip) if d[12..14] == [0x08, 0x00] => c.prefetch_bucket(ip),
                _ => (FlowKey::default(), 0),
            };
            if i >= AHEAD {
                let (k, h) = &self.cls_keys[i - AHEAD];
                c.prefetch_flow(k, *h);
            }
        }
        for (k, h) in &self.cls_keys[n.saturating_sub(AHEAD)..n] {
            c.prefetch_flow(k, *h);
        }
    }

    pub(super) fn publish_classify_counters(&mut self) {
        if let Some(c) = self.classify.as_mut() {
            c.publish(&self.counters.classify);
        }
    }
}
