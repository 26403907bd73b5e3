//! Where the pipeline hands packets to the classifier
//! ([`crate::classify::Classifier`]): every packet it forwards (and every
//! packet it routes into a tunnel, before encapsulation), after inbound
//! NAT and before outbound NAT, so both directions of a NATed connection
//! carry the inside addresses and meet in one flow on the worker owning
//! the NAT session. The fast path calls the classifier at the same point.
//! Packets to the engine itself are not classified.

use super::Pipeline;
use crate::buffer::Packet;
use crate::classify::infer::Model;
use crate::classify::{Classifier, Params};
use crate::config::ClassifySection;
use std::sync::Arc;

impl Pipeline {
    /// Starts classifying (allocates the flow table and the slot pool).
    pub fn enable_classify(&mut self, cfg: &ClassifySection, model: Option<Arc<Model>>) {
        self.classify = Some(Classifier::new(Params::from_section(cfg), model));
    }

    /// Runs `model` from now on (None: signatures only).
    pub fn set_model(&mut self, model: Option<Arc<Model>>) {
        if let Some(c) = self.classify.as_mut() {
            c.set_model(model);
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

    pub(super) fn publish_classify_counters(&mut self) {
        if let Some(c) = self.classify.as_mut() {
            c.publish(&self.counters.classify);
        }
    }
}
