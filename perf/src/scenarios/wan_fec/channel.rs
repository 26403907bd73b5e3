//! A lossy channel for the FEC scenarios: a seeded SplitMix64 generator and
//! the loss models (Bernoulli, Gilbert-Elliott), so every run drops the same
//! packets for the same seed.

/// SplitMix64 (Steele et al.): small, fast, seedable; good enough for
/// drawing losses (not for anything secret).
#[derive(Clone, Debug)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    pub fn new(seed: u64) -> Self {
        SplitMix64(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Fills `buf` with random bytes.
    pub fn fill(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            let x = self.next_u64().to_le_bytes();
            chunk.copy_from_slice(&x[..chunk.len()]);
        }
    }
}

/// How a channel loses packets.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum LossModel {
    /// Each packet lost independently with probability `p`.
    Bernoulli { p: f64 },
    /// Two-state Markov chain (Gilbert-Elliott): good → bad with
    /// `good_to_bad`, bad → good with `bad_to_good` per packet; a packet is
    /// lost with `loss_good` / `loss_bad` in each state.
    GilbertElliott {
        good_to_bad: f64,
        bad_to_good: f64,
        loss_good: f64,
        loss_bad: f64,
    },
}

impl LossModel {
    /// Long-run loss rate of the model.
    pub fn mean_loss(&self) -> f64 {
        match *self {
            LossModel::Bernoulli { p } => p,
            LossModel::GilbertElliott {
                good_to_bad,
                bad_to_good,
                loss_good,
                loss_bad,
            } => {
                let bad = good_to_bad / (good_to_bad + bad_to_good);
                bad * loss_bad + (1.0 - bad) * loss_good
            }
        }
    }

    /// Short name for report rows ("bern-5%", "ge-4.8%-burst5").
    pub fn label(&self) -> String {
        match *self {
            LossModel::Bernoulli { p } => format!("bern{}%", p * 100.0),
            LossModel::GilbertElliott { bad_to_good, .. } => format!(
                "ge{:.1}%-burst{:.0}",
                self.mean_loss() * 100.0,
                1.0 / bad_to_good
            ),
        }
    }
}

/// A seeded lossy channel: one [`Channel::lose`] call per packet sent.
#[derive(Clone, Debug)]
pub struct Channel {
    model: LossModel,
    rng: SplitMix64,
    bad: bool,
}

impl Channel {
    pub fn new(model: LossModel, seed: u64) -> Self {
        Channel {
            model,
            rng: SplitMix64::new(seed),
            bad: false,
        }
    }

    /// Whether the next packet is lost.
    pub fn lose(&mut self) -> bool {
        match self.model {
            LossModel::Bernoulli { p } => self.rng.unit() < p,
            LossModel::GilbertElliott {
                good_to_bad,
                bad_to_good,
                loss_good,
                loss_bad,
            } => {
                let flip = if self.bad { bad_to_good } else { good_to_bad };
                if self.rng.unit() < flip {
                    self.bad = !self.bad;
                }
                let p = if self.bad { loss_bad } else { loss_good };
                self.rng.unit() < p
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn measured(model: LossModel, n: u32) -> f64 {
        let mut c = Channel::new(model, 7);
        (0..n).filter(|_| c.lose()).count() as f64 / f64::from(n)
    }

    #[test]
    fn bernoulli_loses_its_rate() {
        for p in [0.0, 0.01, 0.05, 0.1] {
            let got = measured(LossModel::Bernoulli { p }, 400_000);
            assert!((got - p).abs() < 0.002, "p {p}: {got}");
        }
    }

    #[test]
    fn gilbert_elliott_loses_its_mean_in_bursts() {
        let model = LossModel::GilbertElliott {
            good_to_bad: 0.01,
            bad_to_good: 0.2,
            loss_good: 0.0,
            loss_bad: 1.0,
        };
        let got = measured(model, 1_000_000);
        assert!((got - model.mean_loss()).abs() < 0.005, "{got}");
        // Losses come in runs of mean length 1 / bad_to_good = 5.
        let mut c = Channel::new(model, 9);
        let (mut runs, mut lost, mut prev) = (0u32, 0u32, false);
        for _ in 0..1_000_000 {
            let l = c.lose();
            if l {
                lost += 1;
                if !prev {
                    runs += 1;
                }
            }
            prev = l;
        }
        let mean_run = f64::from(lost) / f64::from(runs);
        assert!((mean_run - 5.0).abs() < 0.3, "{mean_run}");
    }

    #[test]
    fn same_seed_same_losses() {
        let model = LossModel::Bernoulli { p: 0.05 };
        let (mut a, mut b) = (Channel::new(model, 3), Channel::new(model, 3));
        assert!((0..10_000).all(|_| a.lose() == b.lose()));
        let mut c = Channel::new(model, 4);
        let mut a = Channel::new(model, 3);
        assert!((0..10_000).any(|_| a.lose() != c.lose()));
    }
}
