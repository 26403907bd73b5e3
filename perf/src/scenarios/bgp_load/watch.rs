//! Polling a receiver: what one poll saw ([`Sample`]), waiting for the
//! session, and [`watch`]ing the route counts until they meet their goals,
//! with when each goal was first seen and a lower bound from the poll
//! before.

use std::time::{Duration, Instant};

use anyhow::bail;

use crate::netns::sleep_checked;

/// How often receivers are polled.
pub(super) const POLL: Duration = Duration::from_millis(50);

/// What one poll of a receiver saw.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct Sample {
    pub(super) established: bool,
    pub(super) selected: u64,
    /// `None`: the receiver has no FIB figure (BIRD without kernel protocol).
    pub(super) installed: Option<u64>,
}

/// When (seconds after `from`) the selected and installed counts first
/// met their goals, and the last sample.
#[derive(Debug, Default)]
pub(super) struct Watch {
    pub(super) selected_at: Option<f64>,
    pub(super) installed_at: Option<f64>,
    /// Lower bounds of the same events: when the poll before the one that
    /// first saw them was sent (a slow answer makes the `_at` figures late).
    pub(super) selected_after: f64,
    pub(super) installed_after: f64,
    pub(super) last: Sample,
    pub(super) polls: u64,
    pub(super) slowest_poll_ms: f64,
}

impl Watch {
    pub(super) fn done(&self, has_fib: bool) -> bool {
        self.selected_at.is_some() && (!has_fib || self.installed_at.is_some())
    }
}

/// Polls until Established; returns when the answer saying so arrived.
pub(super) fn wait_established(
    poll: &mut dyn FnMut() -> anyhow::Result<Sample>,
    timeout: Duration,
) -> anyhow::Result<Instant> {
    let start = Instant::now();
    loop {
        let t = Instant::now();
        if poll()?.established {
            return Ok(Instant::now());
        }
        if start.elapsed() > timeout {
            bail!("no session Established within {} s", timeout.as_secs());
        }
        sleep_checked(POLL.saturating_sub(t.elapsed()))?;
    }
}

/// Polls until `sel_ok(selected)` and (when the receiver has a FIB)
/// `inst_ok(installed)` have both held once, or `timeout`.
pub(super) fn watch(
    poll: &mut dyn FnMut() -> anyhow::Result<Sample>,
    from: Instant,
    sel_ok: &dyn Fn(u64) -> bool,
    inst_ok: &dyn Fn(u64) -> bool,
    timeout: Duration,
) -> anyhow::Result<Watch> {
    let mut w = Watch::default();
    let mut prev_sent = 0.0;
    loop {
        let t = Instant::now();
        let sent = (t - from).as_secs_f64();
        let s = poll()?;
        let now = Instant::now();
        w.polls += 1;
        w.slowest_poll_ms = w.slowest_poll_ms.max((now - t).as_secs_f64() * 1e3);
        let at = (now - from).as_secs_f64();
        if w.selected_at.is_none() && sel_ok(s.selected) {
            w.selected_at = Some(at);
            w.selected_after = prev_sent;
        }
        if let Some(i) = s.installed {
            if w.installed_at.is_none() && inst_ok(i) {
                w.installed_at = Some(at);
                w.installed_after = prev_sent;
            }
        }
        prev_sent = sent;
        w.last = s;
        if w.done(s.installed.is_some()) || from.elapsed() > timeout {
            return Ok(w);
        }
        sleep_checked(POLL.saturating_sub(t.elapsed()))?;
    }
}

/// Convergence deadline: generous, growing with the table.
pub(super) fn converge_timeout(n: u64) -> Duration {
    Duration::from_secs_f64((n as f64 * 600e-6).max(60.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn watch_records_when_each_goal_is_first_met() {
        let seq = [(true, 10, 0), (true, 100, 50), (true, 100, 100)];
        let mut i = 0;
        let mut poll = || -> anyhow::Result<Sample> {
            let (e, s, n) = seq[i.min(seq.len() - 1)];
            i += 1;
            Ok(Sample {
                established: e,
                selected: s,
                installed: Some(n),
            })
        };
        let from = Instant::now();
        let w = watch(
            &mut poll,
            from,
            &|s| s >= 100,
            &|n| n >= 100,
            Duration::from_secs(10),
        )
        .unwrap();
        assert_eq!(w.polls, 3);
        let (sel, inst) = (w.selected_at.unwrap(), w.installed_at.unwrap());
        assert!(sel < inst, "selected {sel} installed {inst}");
        assert!(w.done(true));
    }
}
