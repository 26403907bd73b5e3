//! A multilayer perceptron (ReLU hidden layers, softmax output) over
//! ndarray, scored in batches: one matrix product per layer for the whole
//! batch, into buffers allocated once ([`Scratch`]), so the engine's
//! workers score queued flows without allocating.

use ndarray::linalg::general_mat_mul;
use ndarray::{s, Array1, Array2, ArrayView2, Axis};

use patronus_classify::Class;

use crate::rng::Rng;

/// One dense layer: `out = in · w + b`.
#[derive(Clone, Debug, PartialEq)]
pub struct Layer {
    /// inputs × outputs.
    pub w: Array2<f32>,
    pub b: Array1<f32>,
}

/// The network, with the input normalisation it was trained with and the
/// class of each output.
#[derive(Clone, Debug, PartialEq)]
pub struct Mlp {
    pub mean: Array1<f32>,
    /// Standard deviations (never 0: constant inputs get 1).
    pub std: Array1<f32>,
    pub layers: Vec<Layer>,
    pub classes: Vec<Class>,
}

impl Mlp {
    /// A network of the given widths (`dims[0]` inputs, `dims[last]` =
    /// classes), He-initialised from `rng`, identity normalisation.
    pub fn new(dims: &[usize], classes: Vec<Class>, rng: &mut Rng) -> Mlp {
        assert!(dims.len() >= 2 && *dims.last().unwrap_or(&0) == classes.len());
        let layers = dims
            .windows(2)
            .map(|d| {
                let scale = (2.0 / d[0] as f32).sqrt();
                Layer {
                    w: Array2::from_shape_fn((d[0], d[1]), |_| rng.normal() * scale),
                    b: Array1::zeros(d[1]),
                }
            })
            .collect();
        Mlp {
            mean: Array1::zeros(dims[0]),
            std: Array1::ones(dims[0]),
            layers,
            classes,
        }
    }

    pub fn inputs(&self) -> usize {
        self.mean.len()
    }

    /// Widths: inputs, hidden layers, outputs.
    pub fn dims(&self) -> Vec<usize> {
        let mut d = vec![self.inputs()];
        d.extend(self.layers.iter().map(|l| l.b.len()));
        d
    }

    /// Class probabilities of each row of `x` (raw features), in
    /// `scratch`'s output (rows `..x.nrows()`). `x` may have at most
    /// `scratch`'s batch rows.
    pub fn forward<'s>(
        &self,
        x: ArrayView2<'_, f32>,
        scratch: &'s mut Scratch,
    ) -> ArrayView2<'s, f32> {
        let n = x.nrows();
        assert!(
            n <= scratch.batch,
            "batch of {n} rows above the scratch's {}",
            scratch.batch
        );
        {
            let mut xn = scratch.bufs[0].slice_mut(s![..n, ..]);
            xn.assign(&x);
            xn -= &self.mean;
            xn /= &self.std;
        }
        let last = self.layers.len() - 1;
        for (i, l) in self.layers.iter().enumerate() {
            let (inp, out) = scratch.bufs.split_at_mut(i + 1);
            let a = inp[i].slice(s![..n, ..]);
            let mut c = out[0].slice_mut(s![..n, ..]);
            c.assign(&l.b.broadcast((n, l.b.len())).expect("bias row"));
            general_mat_mul(1.0, &a, &l.w, 1.0, &mut c);
            if i < last {
                c.mapv_inplace(|v| v.max(0.0));
            }
        }
        let mut out = scratch.bufs[last + 1].slice_mut(s![..n, ..]);
        for mut row in out.axis_iter_mut(Axis(0)) {
            softmax(row.as_slice_mut().expect("rows are contiguous"));
        }
        scratch.bufs[last + 1].slice(s![..n, ..])
    }
}

/// Softmax in place.
pub fn softmax(v: &mut [f32]) {
    let m = v.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let mut sum = 0.0;
    for x in v.iter_mut() {
        *x = (*x - m).exp();
        sum += *x;
    }
    for x in v.iter_mut() {
        *x /= sum;
    }
}

/// Buffers for scoring up to `batch` rows: allocated once.
#[derive(Clone, Debug)]
pub struct Scratch {
    batch: usize,
    /// Input (normalised), then each layer's output.
    bufs: Vec<Array2<f32>>,
}

impl Scratch {
    pub fn new(mlp: &Mlp, batch: usize) -> Scratch {
        Scratch {
            batch,
            bufs: mlp
                .dims()
                .iter()
                .map(|&d| Array2::zeros((batch, d)))
                .collect(),
        }
    }

    pub fn batch(&self) -> usize {
        self.batch
    }
}

/// Index of the largest value.
pub fn argmax(v: &[f32]) -> usize {
    let mut best = 0;
    for (i, x) in v.iter().enumerate() {
        if *x > v[best] {
            best = i;
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_are_probabilities_and_batches_agree_with_single_rows() {
        let mut rng = Rng::new(3);
        let m = Mlp::new(
            &[5, 7, 3],
            vec![Class::Http, Class::Tls, Class::Other],
            &mut rng,
        );
        let x = Array2::from_shape_fn((4, 5), |(i, j)| (i * 5 + j) as f32 / 10.0 - 1.0);
        let mut s = Scratch::new(&m, 8);
        let all = m.forward(x.view(), &mut s).to_owned();
        for (i, row) in all.axis_iter(Axis(0)).enumerate() {
            assert!((row.sum() - 1.0).abs() < 1e-5);
            let mut s1 = Scratch::new(&m, 1);
            let one = m.forward(x.slice(s![i..i + 1, ..]), &mut s1).to_owned();
            for (a, b) in one.row(0).iter().zip(row.iter()) {
                assert!((a - b).abs() < 1e-5);
            }
        }
        assert_eq!(argmax(&[0.1, 0.7, 0.2]), 1);
    }
}
