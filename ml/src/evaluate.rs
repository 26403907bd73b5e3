//! Scores signatures alone, the model alone and both on captures the
//! model never saw: the captures are dealt into folds by a seeded hash of
//! their names (never flows: a capture's flows share hosts and sessions),
//! each fold is scored by a model trained on the others.
//!
//! Combination: a confident signature (confidence at least
//! [`SIGNATURE_TRUST`], not `unknown`) wins; the model decides the rest.

use patronus_classify::eval::Report;
use patronus_classify::{Class, Verdict};

use crate::dataset::Dataset;
use crate::train::{predict, train, TrainConfig};

/// Signature confidence from which the signature decides.
pub const SIGNATURE_TRUST: f32 = 0.9;

/// The combined decision.
pub fn combine(signature: Verdict, model: Class) -> Class {
    if signature.class != Class::Unknown && signature.confidence >= SIGNATURE_TRUST {
        signature.class
    } else {
        model
    }
}

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
    for k in 0..folds {
        let (test, train_idx): (Vec<usize>, Vec<usize>) =
            (0..d.rows.len()).partition(|&i| fold[d.rows[i].file] == k);
        if test.is_empty() || train_idx.is_empty() {
            continue;
        }
        let (x, y) = d.matrix(&train_idx);
        let m = train(&x, &y, Class::ALL.to_vec(), cfg);
        let (xt, _) = d.matrix(&test);
        for (i, p) in test.iter().zip(predict(&m, &xt)) {
            model_pred[*i] = m.classes[p];
        }
    }
    let truth = || d.rows.iter().map(|r| r.truth);
    Evaluation {
        signatures: Report::new(truth().zip(d.rows.iter().map(|r| r.signature.class))),
        model: Report::new(truth().zip(model_pred.iter().copied())),
        both: Report::new(
            truth().zip(
                d.rows
                    .iter()
                    .zip(&model_pred)
                    .map(|(r, m)| combine(r.signature, *m)),
            ),
        ),
        folds,
    }
}
