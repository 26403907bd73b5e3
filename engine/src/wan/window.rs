//! Sliding-window statistics of one path's probes: loss, RTT (average,
//! minimum, p95) and jitter over the last `max_probes` probes that were
//! also sent within the last `span_ns`. A probe still waiting for its
//! reply is not counted until it is answered or its `loss_timeout_ns`
//! passes (then it is lost; a later reply is ignored as late).
//!
//! Storage is a ring preallocated in [`ProbeWindow::new`], indexed by
//! sequence number; [`ProbeWindow::stats`] sorts into a preallocated
//! scratch for the p95, so nothing allocates after construction.

/// Window sizing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WindowConfig {
    /// Most probes kept (N).
    pub max_probes: u32,
    /// Only probes sent less than this long ago count (T), ns.
    pub span_ns: u64,
    /// A probe unanswered this long is lost, ns.
    pub loss_timeout_ns: u64,
}

impl Default for WindowConfig {
    /// 50 probes / 5 s (5 s of probes at the default 100 ms), lost after
    /// 500 ms.
    fn default() -> Self {
        WindowConfig {
            max_probes: 50,
            span_ns: 5_000_000_000,
            loss_timeout_ns: 500_000_000,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Outcome {
    Pending,
    Replied { rtt_ns: u64, transit: i64 },
    Lost,
}

#[derive(Clone, Copy, Debug)]
struct Slot {
    seq: u32,
    sent_ns: u64,
    outcome: Outcome,
}

/// What became of a reply handed to [`ProbeWindow::on_reply`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReplyOutcome {
    /// Counted.
    Accepted,
    /// The probe had already been counted lost.
    Late,
    /// A second reply to the same probe.
    Duplicate,
    /// Not a probe in the window (too old, or never sent).
    Unknown,
}

/// Statistics over the window at some instant.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct WindowStats {
    /// Probes answered in the window.
    pub replied: u32,
    /// Probes lost in the window.
    pub lost: u32,
    /// Probes still waiting (not counted in loss).
    pub pending: u32,
    /// lost / (replied + lost), parts per million; 0 with no samples.
    pub loss_ppm: u32,
    pub rtt_avg_ns: u64,
    pub rtt_min_ns: u64,
    /// Nearest-rank 95th percentile.
    pub rtt_p95_ns: u64,
    /// Mean |D| of successive answered probes, D being the difference of
    /// their forward transit times (RFC 3550 section 6.4.1, unsmoothed).
    pub jitter_ns: u64,
}

impl WindowStats {
    /// True once at least one probe was answered or lost.
    pub fn has_samples(&self) -> bool {
        self.replied + self.lost > 0
    }
}

/// The ring of recent probes.
#[derive(Debug)]
pub struct ProbeWindow {
    cfg: WindowConfig,
    slots: Box<[Slot]>,
    /// Sequence number of the next probe to be recorded.
    next_seq: u32,
    /// Probes recorded so far, capped at the ring size.
    filled: u32,
    scratch: Vec<u64>,
}

impl ProbeWindow {
    /// Preallocates the ring (`max_probes` at least 1).
    pub fn new(cfg: WindowConfig) -> Self {
        let n = cfg.max_probes.max(1) as usize;
        ProbeWindow {
            cfg,
            slots: vec![
                Slot {
                    seq: 0,
                    sent_ns: 0,
                    outcome: Outcome::Lost,
                };
                n
            ]
            .into_boxed_slice(),
            next_seq: 0,
            filled: 0,
            scratch: Vec::with_capacity(n),
        }
    }

    pub fn config(&self) -> &WindowConfig {
        &self.cfg
    }

    fn cap(&self) -> u32 {
        self.slots.len() as u32
    }

    /// The sequence number the next [`record_sent`](Self::record_sent) gets.
    pub fn next_seq(&self) -> u32 {
        self.next_seq
    }

    /// Records a probe sent at `now`; returns its sequence number.
    pub fn record_sent(&mut self, now: u64) -> u32 {
        let seq = self.next_seq;
        let i = (seq % self.cap()) as usize;
        self.slots[i] = Slot {
            seq,
            sent_ns: now,
            outcome: Outcome::Pending,
        };
        self.next_seq = seq.wrapping_add(1);
        self.filled = (self.filled + 1).min(self.cap());
        seq
    }

    fn slot_of(&self, seq: u32) -> Option<usize> {
        let age = self.next_seq.wrapping_sub(seq);
        if age == 0 || age > self.filled {
            return None;
        }
        let i = (seq % self.cap()) as usize;
        (self.slots[i].seq == seq).then_some(i)
    }

    /// When probe `seq` was sent, if it is still in the ring.
    pub fn sent_at(&self, seq: u32) -> Option<u64> {
        self.slot_of(seq).map(|i| self.slots[i].sent_ns)
    }

    /// Counts the reply to `seq` (`rtt_ns` already net of the reflector's
    /// residence, `transit` its forward transit time). Marks timed-out
    /// probes lost first, so a reply later than the timeout is `Late`.
    pub fn on_reply(&mut self, seq: u32, rtt_ns: u64, transit: i64, now: u64) -> ReplyOutcome {
        self.expire(now);
        let Some(i) = self.slot_of(seq) else {
            return ReplyOutcome::Unknown;
        };
        match self.slots[i].outcome {
            Outcome::Pending => {
                self.slots[i].outcome = Outcome::Replied { rtt_ns, transit };
                ReplyOutcome::Accepted
            }
            Outcome::Lost => ReplyOutcome::Late,
            Outcome::Replied { .. } => ReplyOutcome::Duplicate,
        }
    }

    /// Marks every pending probe sent at least `loss_timeout_ns` ago
    /// lost; returns how many it marked.
    pub fn expire(&mut self, now: u64) -> u32 {
        let timeout = self.cfg.loss_timeout_ns;
        let mut n = 0;
        for s in self.slots.iter_mut().take(self.filled as usize) {
            if s.outcome == Outcome::Pending && now.saturating_sub(s.sent_ns) >= timeout {
                s.outcome = Outcome::Lost;
                n += 1;
            }
        }
        n
    }

    /// Statistics at `now` (after expiring timed-out probes). A probe is
    /// in the window if it is among the last `max_probes` recorded and
    /// `now - sent < span_ns`.
    pub fn stats(&mut self, now: u64) -> WindowStats {
        self.expire(now);
        let mut st = WindowStats::default();
        self.scratch.clear();
        let mut rtt_sum: u128 = 0;
        let mut rtt_min = u64::MAX;
        let mut jitter_sum: u128 = 0;
        let mut jitter_pairs: u64 = 0;
        let mut prev_transit: Option<i64> = None;
        // Oldest to newest, so "successive" follows sequence order.
        let first = self.next_seq.wrapping_sub(self.filled);
        for k in 0..self.filled {
            let seq = first.wrapping_add(k);
            let s = self.slots[(seq % self.cap()) as usize];
            if now.saturating_sub(s.sent_ns) >= self.cfg.span_ns {
                continue;
            }
            match s.outcome {
                Outcome::Pending => st.pending += 1,
                Outcome::Lost => st.lost += 1,
                Outcome::Replied { rtt_ns, transit } => {
                    st.replied += 1;
                    rtt_sum += u128::from(rtt_ns);
                    rtt_min = rtt_min.min(rtt_ns);
                    self.scratch.push(rtt_ns);
                    if let Some(p) = prev_transit {
                        jitter_sum += u128::from(transit.wrapping_sub(p).unsigned_abs());
                        jitter_pairs += 1;
                    }
                    prev_transit = Some(transit);
                }
            }
        }
        let resolved = st.replied + st.lost;
        if resolved > 0 {
            st.loss_ppm = ((u64::from(st.lost) * 1_000_000) / u64::from(resolved)) as u32;
        }
        if st.replied > 0 {
            st.rtt_avg_ns = (rtt_sum / u128::from(st.replied)) as u64;
            st.rtt_min_ns = rtt_min;
            self.scratch.sort_unstable();
            // Nearest rank: ceil(0.95 n), 1-based.
            let rank = (self.scratch.len() * 95).div_ceil(100).max(1);
            st.rtt_p95_ns = self.scratch[rank - 1];
        }
        if jitter_pairs > 0 {
            st.jitter_ns = (jitter_sum / u128::from(jitter_pairs)) as u64;
        }
        st
    }
}
