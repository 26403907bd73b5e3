//! `ml-infer`: the flow model's inference time per flow at batch sizes 1,
//! 32 and 256 (`Mlp::forward` into preallocated buffers, as the workers
//! score queued flows), on real feature rows (the corpus's flows).
//! Baseline: one flow at a time (batch 1), what scoring on the packet path
//! would do; ratio = batch-256 flows per second / batch-1.

use std::time::{Duration, Instant};

use anyhow::Context;
use ndarray::{s, Array2};
use patronus_ml::dataset::Dataset;
use patronus_ml::mlp::Scratch;

use super::Options;
use crate::report::{Report, Row};

const BATCHES: [usize; 3] = [1, 32, 256];

pub fn run(opts: &Options) -> anyhow::Result<Report> {
    let mut report = Report::new("ml-infer");
    let root = crate::engine::workspace_root();
    let path = root.join("models/flow-mlp.bin");
    let bytes = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
    let m = patronus_ml::model::from_bytes(&bytes)?;
    let d = Dataset::load(&patronus_classify::corpus::root())?;
    let idx: Vec<usize> = (0..d.rows.len()).collect();
    let (x, _) = d.matrix(&idx);
    let per = opts
        .duration
        .div_f64(BATCHES.len() as f64)
        .max(Duration::from_millis(300));
    for &b in &BATCHES {
        let mut scratch = Scratch::new(&m, b);
        let rows = x.nrows();
        let mut batch = Array2::<f32>::zeros((b, x.ncols()));
        let (mut flows, mut at) = (0u64, 0usize);
        let start = Instant::now();
        while start.elapsed() < per {
            for _ in 0..64 {
                for r in 0..b {
                    batch.row_mut(r).assign(&x.row((at + r) % rows));
                }
                at = (at + b) % rows;
                let p = m.forward(batch.slice(s![..b, ..]), &mut scratch);
                std::hint::black_box(p[[0, 0]]);
                flows += b as u64;
            }
        }
        let mut row = Row {
            system: format!("batch-{b}"),
            packet_size: b,
            ..Row::default()
        };
        row.set_rate(flows, start.elapsed().as_secs_f64());
        row.limited_by = "one core; pps = flows scored per second, ns/pkt = per flow".into();
        report.rows.push(row);
    }
    report.set_ratio("batch-256", "batch-1");
    report.notes.push(format!(
        "model {} ({} inputs, widths {:?}); rows: the {} labelled corpus flows' features, copied into \
         the batch each time (as the workers' queue does)",
        path.display(),
        m.inputs(),
        m.dims(),
        d.rows.len()
    ));
    Ok(report)
}
