//! The names of the engine's classification counters in `counters.shm`:
//! the contract the engine writes them by and the control process parses
//! them by.
//!
//! - `classify.<counter>`, `<counter>` one of [`CLASSIFY_COUNTERS`]:
//!   `flows_created`, `flows_expired` (idle aging), `flows_evicted` (table
//!   full: the oldest idle flow of a bucket made room), `flows_untracked`
//!   (no room even after eviction: the packet is forwarded, its flow not
//!   tracked), `dpi_slots_exhausted` (a new flow found no classification
//!   slot free: it takes one on a later packet if one is free by then, and
//!   is left `unknown` once payload goes by without one), `inference_batches` and
//!   `inferred_flows` (flows the model scored, in that many matrix
//!   products); and the gauges `flows_active` (summed over workers) and
//!   `model_generation` (the number of the `model.bin` push whose model
//!   every worker runs — the smallest over workers; 0 = no push adopted
//!   yet: the configuration's model, if any).
//! - `classify.class.<class>.<what>`, `<class>` one of
//!   [`crate::flow_query::FLOW_CLASSES`], `<what>` one of
//!   [`CLASSIFY_CLASS_COUNTERS`]: flows classified as it, and packets and
//!   IP bytes of its flows counted from the verdict on.

/// Prefix of every classification counter name.
pub const CLASSIFY_COUNTER_PREFIX: &str = "classify.";

/// Per-worker counters and gauges, in the order the engine writes them.
pub const CLASSIFY_COUNTERS: [&str; 9] = [
    "flows_created",
    "flows_expired",
    "flows_evicted",
    "flows_untracked",
    "dpi_slots_exhausted",
    "inference_batches",
    "inferred_flows",
    "flows_active",
    "model_generation",
];

/// The gauges among [`CLASSIFY_COUNTERS`].
pub const CLASSIFY_GAUGES: [&str; 2] = ["flows_active", "model_generation"];

/// Per-class counters.
pub const CLASSIFY_CLASS_COUNTERS: [&str; 3] = ["flows", "packets", "bytes"];

/// `classify.class.<class>.<what>`.
pub fn class_counter_name(class: &str, what: &str) -> String {
    format!("{CLASSIFY_COUNTER_PREFIX}class.{class}.{what}")
}

/// Every classification counter name, in the engine's order: the
/// [`CLASSIFY_COUNTERS`], then per class (in `FLOW_CLASSES` order) each of
/// [`CLASSIFY_CLASS_COUNTERS`].
pub fn classify_counter_names() -> Vec<String> {
    let mut v: Vec<String> = CLASSIFY_COUNTERS
        .iter()
        .map(|c| format!("{CLASSIFY_COUNTER_PREFIX}{c}"))
        .collect();
    for class in crate::flow_query::FLOW_CLASSES {
        for what in CLASSIFY_CLASS_COUNTERS {
            v.push(class_counter_name(class, what));
        }
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::counters::COUNTER_NAME_LEN;

    #[test]
    fn names_are_unique_and_fit_the_counter_file() {
        let names = classify_counter_names();
        assert_eq!(names.len(), 9 + 11 * 3);
        let set: std::collections::HashSet<_> = names.iter().collect();
        assert_eq!(set.len(), names.len());
        assert!(
            names.iter().all(|n| n.len() < COUNTER_NAME_LEN),
            "{names:?}"
        );
        assert!(names.contains(&"classify.class.bittorrent.packets".to_string()));
    }
}
