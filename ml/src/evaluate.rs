//! Scores signatures alone, the model alone and both on captures the
//! model never saw: the captures are dealt into folds by a seeded hash of
//! their names (never flows: a capture's flows share hosts and sessions),
//! each fold is scored by a model trained on the others.
//!
//! Combination: [`crate::classifier::decide`], as `patronus classify`
//! does it.

use patronus_classify::eval::Report;
use patronus_classify::Class;

use crate::classifier::decide;
use crate::dataset::Dataset;
use crate::mlp::{argmax, Scratch};
use crate::train::{train, TrainConfig};

/// Signature confidence from which the signature decides.
pub const SIGNATURE_TRUST: f32 = 0.9;

/// The fold of capture `name`.
pub fn fold_of(name: &str, folds: usize, seed: u64) -> usize {
    // FNV-1a over the name, mixed with the seed.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325 ^ seed;
    for b in name.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    (h % folds as u64) as usize
}

/// The three reports.
#[derive(Debug)]
pub struct Evaluation {
    pub signatures: Report,
    pub model: Report,
    pub both: Report,
    pub folds: usize,
}

/// K-fold evaluation by capture file.
pub fn evaluate(d: &Dataset, folds: usize, cfg: &TrainConfig) -> Evaluation {
    let fold: Vec<usize> = d
        .files
        .iter()
        .map(|f| fold_of(f, folds, cfg.seed))
        .collect();
    let mut model_pred = vec![Class::Unknown; d.rows.len()];
    let mut both_pred = vec![Class::Unknown; d.rows.len()];
    for k in 0..folds {
        let (test, train_idx): (Vec<usize>, Vec<usize>) =
            (0..d.rows.len()).partition(|&i| fold[d.rows[i].file] == k);
        if test.is_empty() || train_idx.is_empty() {
            continue;
        }
        let (x, y) = d.matrix(&train_idx);
        let m = train(&x, &y, Class::ALL.to_vec(), cfg);
        let (xt, _) = d.matrix(&test);
        let mut scratch = Scratch::new(&m, xt.nrows().max(1));
        let probs = m.forward(xt.view(), &mut scratch);
        for (r, &i) in test.iter().enumerate() {
            let p = probs.row(r);
            let p = p.as_slice().unwrap_or(&[]);
            model_pred[i] = m.classes[argmax(p)];
            let row = &d.rows[i];
            both_pred[i] = decide(row.signature, row.dpi_packets, Some((&m.classes, p))).class;
        }
    }
    let truth = || d.rows.iter().map(|r| r.truth);
    Evaluation {
        signatures: Report::new(truth().zip(d.rows.iter().map(|r| r.signature.class))),
        model: Report::new(truth().zip(model_pred.iter().copied())),
        both: Report::new(truth().zip(both_pred.iter().copied())),
        folds,
    }
}
