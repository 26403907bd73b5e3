//! The engine's classification counters in `counters.shm`, read by name
//! (the contract is `patronus_shm::classify_counters`): `classify.<counter>`
//! and `classify.class.<class>.<what>`. The engine view combines each over
//! the workers — by sum, except `model_generation`, the smallest
//! ([`combines_by_min`]) — and strips the `classify.` prefix; [`summary`]
//! turns those values into the API's [`FlowSummary`].

use std::collections::BTreeMap;

use serde::Serialize;

pub use patronus_shm::classify_counters::{
    CLASSIFY_CLASS_COUNTERS as CLASS_COUNTERS, CLASSIFY_COUNTERS as COUNTERS,
    CLASSIFY_COUNTER_PREFIX as PREFIX, CLASSIFY_GAUGES as GAUGES,
};
pub use patronus_shm::flow_query::FLOW_CLASSES;

/// Whether values of this counter (name without `classify.`) combine over
/// workers by minimum (the model every worker runs) rather than by sum.
pub fn combines_by_min(rest: &str) -> bool {
    rest == "model_generation"
}

/// One classification counter name, without the `classify.` prefix.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClassifyCounter<'a> {
    /// One of [`COUNTERS`].
    Engine(&'a str),
    /// `class.<class>.<what>`, `<what>` one of [`CLASS_COUNTERS`].
    Class { class: &'a str, what: &'a str },
}

/// Parses a name without the `classify.` prefix; `None` for a name outside
/// the contract (a newer engine's counter: left out, not misread).
pub fn parse(rest: &str) -> Option<ClassifyCounter<'_>> {
    if let Some(tail) = rest.strip_prefix("class.") {
        let (class, what) = tail.rsplit_once('.')?;
        if class.is_empty() || !CLASS_COUNTERS.contains(&what) {
            return None;
        }
        return Some(ClassifyCounter::Class { class, what });
    }
    COUNTERS
        .contains(&rest)
        .then_some(ClassifyCounter::Engine(rest))
}

/// Flows of one class, and the packets and IP bytes of those flows
/// counted from the verdict on.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ClassCounters {
    pub flows: u64,
    pub packets: u64,
    pub bytes: u64,
}

/// Every classification counter of the engine, summed over workers.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct FlowSummary {
    /// Every class of `FLOW_CLASSES` (zeros included), and any other the
    /// engine reports.
    pub classes: BTreeMap<String, ClassCounters>,
    /// Flows in the tables now.
    pub flows_active: u64,
    pub flows_created: u64,
    /// Removed after idling.
    pub flows_expired: u64,
    /// Removed to make room in a full bucket.
    pub flows_evicted: u64,
    /// Packets of flows that found no room even after eviction.
    pub flows_untracked: u64,
    /// New flows that found no classification slot (left `unknown`).
    pub dpi_slots_exhausted: u64,
    /// Matrix products the model ran, and flows it scored in them.
    pub inference_batches: u64,
    pub inferred_flows: u64,
    /// The model every worker runs (0: none).
    pub model_generation: u64,
}

impl FlowSummary {
    fn counter_mut(&mut self, name: &str) -> Option<&mut u64> {
        Some(match name {
            "flows_active" => &mut self.flows_active,
            "flows_created" => &mut self.flows_created,
            "flows_expired" => &mut self.flows_expired,
            "flows_evicted" => &mut self.flows_evicted,
            "flows_untracked" => &mut self.flows_untracked,
            "dpi_slots_exhausted" => &mut self.dpi_slots_exhausted,
            "inference_batches" => &mut self.inference_batches,
            "inferred_flows" => &mut self.inferred_flows,
            "model_generation" => &mut self.model_generation,
            // A counter added to the contract without a field here (a test
            // keeps the two in step).
            _ => return None,
        })
    }
}

/// The summary of the engine's classification counters (names without
/// `classify.`, already combined over workers); `None` when the engine
/// exports none (an engine without classification counters).
pub fn summary(classify: &[(String, u64)]) -> Option<FlowSummary> {
    let mut out = FlowSummary {
        classes: FLOW_CLASSES
            .iter()
            .map(|c| ((*c).to_owned(), ClassCounters::default()))
            .collect(),
        ..FlowSummary::default()
    };
    let mut found = false;
    let mut generations: Vec<u64> = Vec::new();
    for (name, v) in classify {
        match parse(name) {
            Some(ClassifyCounter::Engine(c)) => {
                found = true;
                if combines_by_min(c) {
                    generations.push(*v);
                } else if let Some(slot) = out.counter_mut(c) {
                    *slot = slot.saturating_add(*v);
                }
            }
            Some(ClassifyCounter::Class { class, what }) => {
                found = true;
                let cc = out.classes.entry(class.to_owned()).or_default();
                let slot = match what {
                    "flows" => &mut cc.flows,
                    "packets" => &mut cc.packets,
                    "bytes" => &mut cc.bytes,
                    _ => continue,
                };
                *slot = slot.saturating_add(*v);
            }
            None => {}
        }
    }
    // A name listed twice (it should not be) still reads as the smallest.
    out.model_generation = generations.into_iter().min().unwrap_or(0);
    found.then_some(out)
}

#[cfg(test)]
mod tests {
    use patronus_shm::classify_counters::classify_counter_names;

    use super::*;

    /// Every contract name with a distinct value (name without the prefix).
    fn every_counter() -> Vec<(String, u64)> {
        classify_counter_names()
            .into_iter()
            .zip(1..)
            .map(|(n, v)| (n.strip_prefix(PREFIX).unwrap().to_owned(), v))
            .collect()
    }

    #[test]
    fn names_parse_into_their_parts() {
        assert_eq!(
            parse("flows_created"),
            Some(ClassifyCounter::Engine("flows_created"))
        );
        assert_eq!(
            parse("class.tls.bytes"),
            Some(ClassifyCounter::Class {
                class: "tls",
                what: "bytes"
            })
        );
        for bad in [
            "class.tls",
            "class..flows",
            "class.tls.octets",
            "flows_made",
            "",
        ] {
            assert_eq!(parse(bad), None, "{bad}");
        }
    }

    /// Every value of the contract lands in exactly one field: a counter
    /// added to the shared lists without a field here fails this.
    #[test]
    fn every_contract_counter_reaches_a_field() {
        let all = every_counter();
        let s = summary(&all).expect("counters present");
        let mut seen = vec![
            s.flows_active,
            s.flows_created,
            s.flows_expired,
            s.flows_evicted,
            s.flows_untracked,
            s.dpi_slots_exhausted,
            s.inference_batches,
            s.inferred_flows,
            s.model_generation,
        ];
        assert_eq!(s.classes.len(), FLOW_CLASSES.len());
        for c in s.classes.values() {
            seen.extend([c.flows, c.packets, c.bytes]);
        }
        seen.sort_unstable();
        let want: Vec<u64> = (1..=all.len() as u64).collect();
        assert_eq!(seen, want);
        assert_eq!(s.flows_created, 1, "the first contract counter");
        assert_eq!(s.classes["http"].flows, 10, "the first class counter");
        assert_eq!(s.classes["tls"].bytes, 15);
    }

    #[test]
    fn none_without_counters_and_zeros_for_silent_classes() {
        assert_eq!(summary(&[]), None);
        assert_eq!(summary(&[("some_future_counter".into(), 3)]), None);
        let s = summary(&[
            ("class.dns.flows".into(), 4),
            ("class.dns.flows".into(), 1),
            ("class.newproto.packets".into(), 9),
            ("model_generation".into(), 7),
            ("model_generation".into(), 6),
        ])
        .unwrap();
        assert_eq!(s.classes["dns"].flows, 5, "repeats are summed");
        assert_eq!(s.classes["tls"], ClassCounters::default());
        assert_eq!(s.classes["newproto"].packets, 9, "kept, not misread");
        assert_eq!(s.model_generation, 6, "the smallest");
        assert!(combines_by_min("model_generation"));
        assert!(!combines_by_min("flows_active"));
    }
}
