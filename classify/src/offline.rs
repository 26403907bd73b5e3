//! A capture classified the way the engine would: packets in capture
//! order through one [`Dpi`] (so an FTP control connection is seen before
//! the data connection it announces), each flow's state kept until its
//! verdict.

use std::path::Path;

use crate::dpi::{Dpi, FlowDpi};
use crate::flows::{flows_of, Flow};
use crate::pcap::Capture;
use crate::view::Verdict;

/// A flow and what the signatures made of it.
#[derive(Clone, Debug)]
pub struct Classified {
    pub flow: Flow,
    pub verdict: Verdict,
    /// Payload packets the dissectors looked at.
    pub dpi_packets: u16,
}

/// Classifies every flow of the capture at `path`.
pub fn classify_file(path: &Path) -> anyhow::Result<Vec<Classified>> {
    let cap = Capture::read(path)?;
    let (flows, order) = flows_of(&cap);
    let mut states: Vec<FlowDpi> = vec![FlowDpi::default(); flows.len()];
    let mut dpi = Dpi::new();
    for (fi, pi) in order.into_iter().flatten() {
        if !states[fi].wants_packets() {
            continue;
        }
        let flow = &flows[fi];
        let ts = flow.packets[pi].ts_ns;
        dpi.inspect(&mut states[fi], &flow.view(pi), ts);
    }
    Ok(flows
        .into_iter()
        .zip(states)
        .map(|(flow, s)| Classified {
            flow,
            verdict: s.verdict().unwrap_or(Verdict {
                class: crate::Class::Unknown,
                name: None,
                confidence: 0.0,
            }),
            dpi_packets: s.packets(),
        })
        .collect())
}

/// One labelled capture of a corpus, classified.
#[derive(Clone, Debug)]
pub struct LabelledCapture {
    /// The capture's file name.
    pub name: String,
    /// Its flows that nDPI labelled, with their label.
    pub flows: Vec<(crate::labels::Label, Classified)>,
    /// Our flows without a label.
    pub unlabelled: usize,
    /// nDPI's labelled flows we did not form.
    pub missing: usize,
}

/// Every capture of `root/pcap` that has `root/result/NAME.out`,
/// classified, its flows joined with nDPI's labels.
pub fn labelled_corpus(root: &Path) -> anyhow::Result<Vec<LabelledCapture>> {
    use anyhow::Context;
    let pcaps = crate::corpus::captures(&root.join("pcap"))
        .with_context(|| format!("reading {}", root.join("pcap").display()))?;
    let mut out = Vec::new();
    for f in pcaps {
        let name = f
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_string();
        let result = root.join("result").join(format!("{name}.out"));
        let Ok(mut labels) = crate::labels::read_labels(&result) else {
            continue;
        };
        let mut cap = LabelledCapture {
            name,
            flows: Vec::new(),
            unlabelled: 0,
            missing: 0,
        };
        for c in classify_file(&f)? {
            match labels.remove(&c.flow.key()) {
                Some(l) => cap.flows.push((l, c)),
                None => cap.unlabelled += 1,
            }
        }
        cap.missing = labels.len();
        out.push(cap);
    }
    Ok(out)
}
