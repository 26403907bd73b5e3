//! The labelled corpus as feature rows: every flow of every capture that
//! nDPI labelled, with its features, nDPI's class, the signatures'
//! verdict and the capture it came from (splits go by capture).

use std::path::Path;

use ndarray::Array2;

use patronus_classify::flows::Flow;
use patronus_classify::offline::labelled_corpus;
use patronus_classify::{Class, Verdict};

use crate::features::{FeatureAcc, DIM};

/// One labelled flow.
#[derive(Clone, Debug)]
pub struct Row {
    pub features: [f32; DIM],
    pub truth: Class,
    pub signature: Verdict,
    /// Payload packets the signatures looked at (and found nothing in,
    /// when the verdict is not theirs).
    pub dpi_packets: u16,
    /// Index into [`Dataset::files`].
    pub file: usize,
}

#[derive(Clone, Debug, Default)]
pub struct Dataset {
    pub files: Vec<String>,
    pub rows: Vec<Row>,
}

/// The features of a flow's first packets.
pub fn flow_features(f: &Flow) -> [f32; DIM] {
    let mut acc = FeatureAcc::new(f.l4, f.server.port(), f.client.port());
    for p in &f.packets {
        acc.add(p.dir, p.ip_len, &p.payload, p.ts_ns, p.tcp_flags);
    }
    acc.vector()
}

impl Dataset {
    /// Every capture of `root/pcap` that has `root/result/NAME.out`.
    pub fn load(root: &Path) -> anyhow::Result<Dataset> {
        let mut d = Dataset::default();
        for cap in labelled_corpus(root)? {
            let file = d.files.len();
            d.files.push(cap.name);
            for (l, c) in cap.flows {
                d.rows.push(Row {
                    features: flow_features(&c.flow),
                    truth: l.class,
                    signature: c.verdict,
                    dpi_packets: c.dpi_packets,
                    file,
                });
            }
        }
        Ok(d)
    }

    /// Adds another dataset's captures and rows.
    pub fn append(&mut self, other: Dataset) {
        let base = self.files.len();
        self.files.extend(other.files);
        self.rows.extend(other.rows.into_iter().map(|mut r| {
            r.file += base;
            r
        }));
    }

    /// The feature matrix and class indices (into [`Class::ALL`]) of the
    /// rows `idx`.
    pub fn matrix(&self, idx: &[usize]) -> (Array2<f32>, Vec<usize>) {
        let mut x = Array2::zeros((idx.len(), DIM));
        let mut y = Vec::with_capacity(idx.len());
        for (r, &i) in idx.iter().enumerate() {
            let row = &self.rows[i];
            for (c, v) in row.features.iter().enumerate() {
                x[[r, c]] = *v;
            }
            y.push(class_index(row.truth));
        }
        (x, y)
    }
}

/// Index of `c` in [`Class::ALL`] (the model's outputs).
pub fn class_index(c: Class) -> usize {
    Class::ALL.iter().position(|&k| k == c).unwrap_or(0)
}
