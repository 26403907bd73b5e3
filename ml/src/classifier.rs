//! Signatures and the model together: a confident signature (see
//! [`crate::evaluate::SIGNATURE_TRUST`]) decides; otherwise the model
//! scores the flow's features and its most likely class decides, with its
//! probability as the confidence. Offline, a capture's flows are scored
//! in batches like the workers do.

use std::path::Path;

use ndarray::Array2;

use patronus_classify::offline::{classify_file as signatures, Classified};
use patronus_classify::{AppName, Class, Verdict};

use crate::dataset::flow_features;
use crate::evaluate::SIGNATURE_TRUST;
use crate::features::DIM;
use crate::mlp::{argmax, Mlp, Scratch};

/// How a flow's class was decided.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    Signature,
    Ml,
    /// No confident signature and no model.
    None,
}

impl Method {
    pub fn label(self) -> &'static str {
        match self {
            Method::Signature => "signature",
            Method::Ml => "ml",
            Method::None => "none",
        }
    }
}

/// A flow's final class.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Decision {
    pub class: Class,
    pub name: Option<AppName>,
    pub method: Method,
    pub confidence: f32,
}

/// The decision from a signature verdict and, if there is a model, the
/// class probabilities it gave the flow. `dpi_packets` is how many payload
/// packets the signatures looked at: when they saw payload and found none
/// of the named protocols, the model chooses only between `other` and
/// `unknown` (a dissector that read the flow knows better than the
/// model that its protocol is not there); a flow without payload (a
/// capture that missed it) is the model's alone.
pub fn decide(sig: Verdict, dpi_packets: u16, model: Option<(&[Class], &[f32])>) -> Decision {
    if trusted(&sig) {
        return Decision {
            class: sig.class,
            name: sig.name,
            method: Method::Signature,
            confidence: sig.confidence,
        };
    }
    match model {
        Some((classes, p)) if !p.is_empty() => {
            let i = if dpi_packets > 0 {
                argmax_among(classes, p, |c| matches!(c, Class::Other | Class::Unknown))
            } else {
                argmax(p)
            };
            Decision {
                class: classes[i],
                name: sig.name,
                method: Method::Ml,
                confidence: p[i],
            }
        }
        _ => Decision {
            class: sig.class,
            name: sig.name,
            method: Method::None,
            confidence: sig.confidence,
        },
    }
}

/// The most likely class among those `keep` accepts (the first class
/// when none is).
fn argmax_among(classes: &[Class], p: &[f32], keep: impl Fn(Class) -> bool) -> usize {
    let mut best: Option<usize> = None;
    for (i, c) in classes.iter().enumerate() {
        if keep(*c) && best.is_none_or(|b| p[i] > p[b]) {
            best = Some(i);
        }
    }
    best.unwrap_or(0)
}

/// Whether a signature verdict decides on its own.
pub fn trusted(sig: &Verdict) -> bool {
    sig.class != Class::Unknown && sig.confidence >= SIGNATURE_TRUST
}

/// Batch size of offline scoring.
const BATCH: usize = 256;

/// Every flow of a capture with its decision.
pub fn classify_file(
    path: &Path,
    model: Option<&Mlp>,
) -> anyhow::Result<Vec<(Classified, Decision)>> {
    let flows = signatures(path)?;
    let mut out = Vec::with_capacity(flows.len());
    let Some(m) = model else {
        return Ok(flows
            .into_iter()
            .map(|c| {
                let d = decide(c.verdict, c.dpi_packets, None);
                (c, d)
            })
            .collect());
    };
    // Only flows the signatures left undecided are scored, in batches.
    let undecided: Vec<usize> = (0..flows.len())
        .filter(|&i| !trusted(&flows[i].verdict))
        .collect();
    let mut decisions: Vec<Option<Decision>> = vec![None; flows.len()];
    let mut scratch = Scratch::new(m, BATCH);
    let mut x = Array2::zeros((BATCH, DIM));
    for chunk in undecided.chunks(BATCH) {
        for (r, &i) in chunk.iter().enumerate() {
            for (k, v) in flow_features(&flows[i].flow).iter().enumerate() {
                x[[r, k]] = *v;
            }
        }
        let p = m.forward(x.slice(ndarray::s![..chunk.len(), ..]), &mut scratch);
        for (r, &i) in chunk.iter().enumerate() {
            let row = p.row(r);
            let c = &flows[i];
            decisions[i] = Some(decide(
                c.verdict,
                c.dpi_packets,
                Some((&m.classes, row.as_slice().unwrap_or(&[]))),
            ));
        }
    }
    for (c, d) in flows.into_iter().zip(decisions) {
        let d = d.unwrap_or_else(|| decide(c.verdict, c.dpi_packets, None));
        out.push((c, d));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_confident_signature_wins_and_the_model_decides_the_rest() {
        let classes = [Class::Http, Class::Other];
        let sure = Verdict::sure(Class::Dns, AppName::new(b"example.org"));
        let d = decide(sure, 1, Some((&classes, &[0.9, 0.1])));
        assert_eq!((d.class, d.method), (Class::Dns, Method::Signature));
        let weak = Verdict {
            class: Class::Bittorrent,
            name: None,
            confidence: 0.5,
        };
        let d = decide(weak, 0, Some((&classes, &[0.2, 0.8])));
        assert_eq!((d.class, d.method), (Class::Other, Method::Ml));
        assert!((d.confidence - 0.8).abs() < 1e-6);
        // Payload seen and no signature: not http, whatever the model says.
        let d = decide(weak, 3, Some((&classes, &[0.7, 0.3])));
        assert_eq!(d.class, Class::Other);
        // No payload seen: the model's http stands.
        assert_eq!(
            decide(weak, 0, Some((&classes, &[0.7, 0.3]))).class,
            Class::Http
        );
        let unknown = Verdict {
            class: Class::Unknown,
            name: None,
            confidence: 0.0,
        };
        assert_eq!(decide(unknown, 0, None).method, Method::None);
    }
}
