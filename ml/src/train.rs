//! Fits an [`Mlp`] to labelled feature rows: inputs normalised by the
//! training set's mean and deviation, class-weighted cross-entropy (rare
//! classes count more), Adam, shuffled minibatches, all from one seed.

use ndarray::{s, Array1, Array2, Axis};

use patronus_classify::Class;

use crate::mlp::{softmax, Mlp};
use crate::rng::Rng;

/// Training settings.
#[derive(Clone, Debug)]
pub struct TrainConfig {
    pub hidden: Vec<usize>,
    pub epochs: usize,
    pub batch: usize,
    pub lr: f32,
    pub seed: u64,
    /// L2 penalty on weights.
    pub weight_decay: f32,
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            hidden: vec![64, 32],
            epochs: 80,
            batch: 64,
            lr: 2e-3,
            seed: 7,
            weight_decay: 1e-4,
        }
    }
}

/// Trains on rows `x` (raw features) with labels `y` (indices into
/// `classes`).
pub fn train(x: &Array2<f32>, y: &[usize], classes: Vec<Class>, cfg: &TrainConfig) -> Mlp {
    assert_eq!(x.nrows(), y.len());
    let mut rng = Rng::new(cfg.seed);
    let mut dims = vec![x.ncols()];
    dims.extend(&cfg.hidden);
    dims.push(classes.len());
    let k = classes.len();
    let mut m = Mlp::new(&dims, classes, &mut rng);
    m.mean = x
        .mean_axis(Axis(0))
        .unwrap_or_else(|| Array1::zeros(x.ncols()));
    m.std = x
        .std_axis(Axis(0), 0.0)
        .mapv(|s| if s > 1e-6 { s } else { 1.0 });
    let xn = (x - &m.mean) / &m.std;
    // Inverse square-root frequency weights, normalised to mean 1.
    let mut counts = vec![0usize; k];
    for &c in y {
        counts[c] += 1;
    }
    let mut wc: Vec<f32> = counts
        .iter()
        .map(|&c| if c == 0 { 0.0 } else { 1.0 / (c as f32).sqrt() })
        .collect();
    let mean_w: f32 = y.iter().map(|&c| wc[c]).sum::<f32>() / y.len().max(1) as f32;
    for w in &mut wc {
        *w /= mean_w.max(1e-9);
    }
    let mut adam = Adam::new(&m);
    let mut order: Vec<usize> = (0..x.nrows()).collect();
    let mut t = 0;
    for _ in 0..cfg.epochs {
        rng.shuffle(&mut order);
        for chunk in order.chunks(cfg.batch.max(1)) {
            t += 1;
            let xb = xn.select(Axis(0), chunk);
            let yb: Vec<usize> = chunk.iter().map(|&i| y[i]).collect();
            let grads = gradients(&m, &xb, &yb, &wc);
            adam.step(&mut m, &grads, cfg.lr, cfg.weight_decay, t);
        }
    }
    m
}

/// Gradients of the weighted mean cross-entropy over a batch of
/// normalised rows.
fn gradients(m: &Mlp, x: &Array2<f32>, y: &[usize], wc: &[f32]) -> Vec<(Array2<f32>, Array1<f32>)> {
    let n = x.nrows();
    // Forward, keeping every layer's output.
    let mut acts = vec![x.clone()];
    let last = m.layers.len() - 1;
    for (i, l) in m.layers.iter().enumerate() {
        let mut z = acts[i].dot(&l.w) + &l.b;
        if i < last {
            z.mapv_inplace(|v| v.max(0.0));
        }
        acts.push(z);
    }
    let mut delta = acts[last + 1].clone();
    let mut total_w = 0.0;
    for (r, mut row) in delta.axis_iter_mut(Axis(0)).enumerate() {
        let p = row.as_slice_mut().expect("contiguous");
        softmax(p);
        p[y[r]] -= 1.0;
        let w = wc[y[r]];
        total_w += w;
        for v in p.iter_mut() {
            *v *= w;
        }
    }
    delta /= total_w.max(1e-9);
    let _ = n;
    let mut grads = Vec::with_capacity(m.layers.len());
    for i in (0..m.layers.len()).rev() {
        let gw = acts[i].t().dot(&delta);
        let gb = delta.sum_axis(Axis(0));
        if i > 0 {
            let mut prev = delta.dot(&m.layers[i].w.t());
            // ReLU: no gradient where the activation was 0.
            prev.zip_mut_with(&acts[i], |d, a| {
                if *a <= 0.0 {
                    *d = 0.0
                }
            });
            delta = prev;
        }
        grads.push((gw, gb));
    }
    grads.reverse();
    grads
}

struct Adam {
    m: Vec<(Array2<f32>, Array1<f32>)>,
    v: Vec<(Array2<f32>, Array1<f32>)>,
}

impl Adam {
    fn new(net: &Mlp) -> Adam {
        let zeros: Vec<_> = net
            .layers
            .iter()
            .map(|l| (Array2::zeros(l.w.raw_dim()), Array1::zeros(l.b.len())))
            .collect();
        Adam {
            m: zeros.clone(),
            v: zeros,
        }
    }

    fn step(&mut self, net: &mut Mlp, g: &[(Array2<f32>, Array1<f32>)], lr: f32, wd: f32, t: i32) {
        let (b1, b2, eps) = (0.9f32, 0.999f32, 1e-8f32);
        let c1 = 1.0 - b1.powi(t);
        let c2 = 1.0 - b2.powi(t);
        for (i, l) in net.layers.iter_mut().enumerate() {
            let (gw, gb) = &g[i];
            let gw = gw + &(&l.w * wd);
            let (mw, mb) = &mut self.m[i];
            let (vw, vb) = &mut self.v[i];
            mw.zip_mut_with(&gw, |m, g| *m = b1 * *m + (1.0 - b1) * g);
            vw.zip_mut_with(&gw, |v, g| *v = b2 * *v + (1.0 - b2) * g * g);
            mb.zip_mut_with(gb, |m, g| *m = b1 * *m + (1.0 - b1) * g);
            vb.zip_mut_with(gb, |v, g| *v = b2 * *v + (1.0 - b2) * g * g);
            ndarray::Zip::from(&mut l.w)
                .and(&*mw)
                .and(&*vw)
                .for_each(|w, m, v| *w -= lr * (m / c1) / ((v / c2).sqrt() + eps));
            ndarray::Zip::from(&mut l.b)
                .and(&*mb)
                .and(&*vb)
                .for_each(|b, m, v| *b -= lr * (m / c1) / ((v / c2).sqrt() + eps));
        }
    }
}

/// The predicted class index of each row.
pub fn predict(m: &Mlp, x: &Array2<f32>) -> Vec<usize> {
    let mut scratch = crate::mlp::Scratch::new(m, 256);
    let mut out = Vec::with_capacity(x.nrows());
    let mut at = 0;
    while at < x.nrows() {
        let end = (at + 256).min(x.nrows());
        let p = m.forward(x.slice(s![at..end, ..]), &mut scratch);
        out.extend(
            p.axis_iter(Axis(0))
                .map(|r| crate::mlp::argmax(r.as_slice().unwrap_or(&[]))),
        );
        at = end;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two separable blobs are learnt; the same seed gives the same net.
    #[test]
    fn learns_separable_classes_reproducibly() {
        let mut rng = Rng::new(1);
        let n = 200;
        let x = Array2::from_shape_fn((n, 4), |(i, j)| {
            let c = (i % 2) as f32;
            c * 2.0 - 1.0 + 0.3 * rng.normal() + j as f32 * 0.01
        });
        let y: Vec<usize> = (0..n).map(|i| i % 2).collect();
        let cfg = TrainConfig {
            epochs: 20,
            ..Default::default()
        };
        let classes = vec![Class::Http, Class::Tls];
        let m = train(&x, &y, classes.clone(), &cfg);
        let acc = predict(&m, &x)
            .iter()
            .zip(&y)
            .filter(|(a, b)| a == b)
            .count();
        assert!(acc as f32 / n as f32 > 0.95, "{acc}/{n}");
        assert_eq!(train(&x, &y, classes, &cfg), m, "same seed, same model");
    }
}
