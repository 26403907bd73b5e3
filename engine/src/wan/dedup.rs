//! The receive side of packet duplication: a sliding window over the
//! sender's sequence numbers (like IPsec's and WireGuard's anti-replay
//! windows) that keeps the first copy of each packet and drops the
//! second, within the last [`WINDOW`] sequence numbers. Older packets are
//! dropped too: the window can no longer tell whether they were seen.

/// Sequence numbers the window remembers.
pub const WINDOW: u32 = 1024;

/// One sender's window.
#[derive(Clone, Debug)]
pub struct DedupWindow {
    started: bool,
    top: u32,
    bits: [u64; (WINDOW / 64) as usize],
}

impl Default for DedupWindow {
    fn default() -> Self {
        DedupWindow {
            started: false,
            top: 0,
            bits: [0; (WINDOW / 64) as usize],
        }
    }
}

impl DedupWindow {
    fn bit(seq: u32) -> (usize, u64) {
        let i = seq % WINDOW;
        ((i / 64) as usize, 1u64 << (i % 64))
    }

    /// True the first time `seq` is seen (keep the packet), false for a
    /// copy or a packet older than the window (drop it).
    pub fn accept(&mut self, seq: u32) -> bool {
        if !self.started {
            self.started = true;
            self.top = seq;
            let (w, b) = Self::bit(seq);
            self.bits[w] |= b;
            return true;
        }
        let ahead = seq.wrapping_sub(self.top) as i32;
        if ahead > 0 {
            // Forget the numbers the window slides over.
            if ahead as u32 >= WINDOW {
                self.bits = [0; (WINDOW / 64) as usize];
            } else {
                for s in 1..=ahead as u32 {
                    let (w, b) = Self::bit(self.top.wrapping_add(s));
                    self.bits[w] &= !b;
                }
            }
            self.top = seq;
        } else if ahead.unsigned_abs() >= WINDOW {
            return false;
        }
        let (w, b) = Self::bit(seq);
        if self.bits[w] & b != 0 {
            return false;
        }
        self.bits[w] |= b;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_each_number_once_in_any_order_within_the_window() {
        let mut w = DedupWindow::default();
        assert!(w.accept(10));
        assert!(!w.accept(10));
        assert!(w.accept(12));
        assert!(w.accept(11), "late but new");
        assert!(!w.accept(11));
        assert!(!w.accept(12));
        assert!(w.accept(10 + WINDOW), "far ahead: the window slides");
        assert!(!w.accept(10), "now older than the window");
        assert!(w.accept(12 + WINDOW - 1));
        assert!(!w.accept(12 + WINDOW - 1));
    }

    #[test]
    fn wraps_around_the_sequence_space() {
        let mut w = DedupWindow::default();
        assert!(w.accept(u32::MAX - 1));
        assert!(w.accept(u32::MAX));
        assert!(w.accept(0));
        assert!(w.accept(1));
        assert!(!w.accept(u32::MAX));
        assert!(!w.accept(0));
    }

    /// Property: over a random interleaving of two copies of a stream
    /// (each copy reordered by at most 100), every number is kept exactly
    /// once.
    #[test]
    fn two_reordered_copies_come_out_once() {
        let mut x = 0x2545_f491_4f6c_dd1du64;
        let mut rnd = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let n = 5000u32;
        let copy = |rnd: &mut dyn FnMut() -> u64| {
            let mut c: Vec<u32> = (0..n).map(|s| s.wrapping_add(u32::MAX - 2000)).collect();
            for i in 0..c.len() {
                let j = (i + (rnd() % 100) as usize).min(c.len() - 1);
                c.swap(i, j);
            }
            c
        };
        let (a, b) = (copy(&mut rnd), copy(&mut rnd));
        let (mut i, mut j) = (0, 0);
        let mut stream = Vec::new();
        while i < a.len() || j < b.len() {
            if j >= b.len() || (i < a.len() && rnd() % 2 == 0) {
                stream.push(a[i]);
                i += 1;
            } else {
                stream.push(b[j]);
                j += 1;
            }
        }
        let mut w = DedupWindow::default();
        let kept: Vec<u32> = stream.into_iter().filter(|&s| w.accept(s)).collect();
        assert_eq!(kept.len(), n as usize);
        let mut sorted = kept.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), n as usize);
    }
}
