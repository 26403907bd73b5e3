//! Building blocks shared by the hand-written collectors (load balancer,
//! BGP): a static family table, its descriptors, and the families filled
//! at each scrape.

use std::collections::HashMap;

use prometheus::core::Desc;
use prometheus::proto::{self, MetricFamily, MetricType};

/// A family: name, help, type, label names.
pub type FamilySpec = (
    &'static str,
    &'static str,
    MetricType,
    &'static [&'static str],
);

/// The descriptors of `specs` (what a collector's `desc()` returns).
pub fn descs(specs: &[FamilySpec]) -> prometheus::Result<Vec<Desc>> {
    specs
        .iter()
        .map(|(name, help, _, labels)| {
            Desc::new(
                (*name).to_owned(),
                (*help).to_owned(),
                labels.iter().map(|l| (*l).to_owned()).collect(),
                HashMap::new(),
            )
        })
        .collect()
}

/// Label pairs sorted by name, as the prometheus crate's own metrics are.
pub fn label_pairs(labels: &[(&str, &str)]) -> Vec<proto::LabelPair> {
    let mut labels = labels.to_vec();
    labels.sort_unstable_by_key(|(k, _)| *k);
    labels
        .iter()
        .map(|(k, v)| {
            let mut lp = proto::LabelPair::default();
            lp.set_name((*k).to_owned());
            lp.set_value((*v).to_owned());
            lp
        })
        .collect()
}

/// The families of one scrape, filled by name.
pub struct Scrape {
    specs: &'static [FamilySpec],
    fams: Vec<MetricFamily>,
}

impl Scrape {
    /// Empty families for `specs`.
    pub fn new(specs: &'static [FamilySpec]) -> Scrape {
        let fams = specs
            .iter()
            .map(|(name, help, kind, _)| {
                let mut mf = MetricFamily::default();
                mf.set_name((*name).to_owned());
                mf.set_help((*help).to_owned());
                mf.set_field_type(*kind);
                mf
            })
            .collect();
        Scrape { specs, fams }
    }

    /// One sample of family `name` (ignored when `name` is not in the table).
    pub fn add(&mut self, name: &str, labels: &[(&str, &str)], value: f64) {
        let Some(i) = self.specs.iter().position(|f| f.0 == name) else {
            debug_assert!(false, "unknown family {name}");
            return;
        };
        let mut m = proto::Metric::default();
        m.set_label(label_pairs(labels));
        if self.specs[i].2 == MetricType::COUNTER {
            let mut c = proto::Counter::default();
            c.set_value(value);
            m.set_counter(c);
        } else {
            let mut g = proto::Gauge::default();
            g.set_value(value);
            m.set_gauge(g);
        }
        self.fams[i].mut_metric().push(m);
    }

    /// The families that got at least one sample.
    pub fn finish(mut self) -> Vec<MetricFamily> {
        self.fams.retain(|f| !f.get_metric().is_empty());
        self.fams
    }
}
