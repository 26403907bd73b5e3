//! Tests of `wan::window` with a fake clock: every window edge.

use crate::wan::window::*;

const MS: u64 = 1_000_000;

fn win(n: u32, span_ms: u64, timeout_ms: u64) -> ProbeWindow {
    ProbeWindow::new(WindowConfig {
        max_probes: n,
        span_ns: span_ms * MS,
        loss_timeout_ns: timeout_ms * MS,
    })
}

#[test]
fn pending_is_not_loss_until_the_timeout() {
    let mut w = win(10, 10_000, 500);
    let s = w.record_sent(0);
    let st = w.stats(499 * MS);
    assert_eq!((st.pending, st.lost, st.loss_ppm), (1, 0, 0));
    assert!(!st.has_samples());
    // Exactly at the timeout it is lost, and a reply then is late.
    let st = w.stats(500 * MS);
    assert_eq!((st.pending, st.lost, st.loss_ppm), (0, 1, 1_000_000));
    assert_eq!(w.on_reply(s, 1, 0, 501 * MS), ReplyOutcome::Late);
}

#[test]
fn replies_give_rtt_loss_and_p95() {
    let mut w = win(100, 100_000, 500);
    for i in 0..20u64 {
        let seq = w.record_sent(i * 100 * MS);
        if i != 7 {
            // RTTs 1..=20 ms (the 8th lost).
            assert_eq!(
                w.on_reply(seq, (i + 1) * MS, 0, i * 100 * MS + MS),
                ReplyOutcome::Accepted
            );
        }
    }
    assert_eq!(w.on_reply(3, MS, 0, 2_000 * MS), ReplyOutcome::Duplicate);
    assert_eq!(w.on_reply(99, MS, 0, 2_000 * MS), ReplyOutcome::Unknown);
    let st = w.stats(2_500 * MS);
    assert_eq!((st.replied, st.lost), (19, 1));
    assert_eq!(st.loss_ppm, 50_000);
    assert_eq!(st.rtt_min_ns, MS);
    let sum: u64 = (1..=20u64).filter(|&r| r != 8).sum();
    assert_eq!(st.rtt_avg_ns, sum * MS / 19);
    // 19 samples: rank ceil(18.05) = 19, the largest.
    assert_eq!(st.rtt_p95_ns, 20 * MS);
}

#[test]
fn count_edge_keeps_only_the_last_n() {
    let mut w = win(4, 100_000, 500);
    for i in 0..6u64 {
        let seq = w.record_sent(i * MS);
        // The first two were lost; the last four answered.
        if i >= 2 {
            w.on_reply(seq, MS, 0, i * MS);
        }
    }
    let st = w.stats(10_000 * MS);
    assert_eq!((st.replied, st.lost), (4, 0));
    assert_eq!(w.on_reply(0, MS, 0, 10_000 * MS), ReplyOutcome::Unknown);
    assert_eq!(w.sent_at(2), Some(2 * MS));
    assert_eq!(w.sent_at(1), None);
}

#[test]
fn time_edge_excludes_probes_sent_span_ago() {
    let mut w = win(100, 1_000, 500);
    let a = w.record_sent(0);
    w.on_reply(a, 7 * MS, 0, MS);
    let b = w.record_sent(100 * MS);
    w.on_reply(b, 3 * MS, 0, 101 * MS);
    // Sent 999.999 ms ago: still in.
    assert_eq!(w.stats(1_000 * MS - 1).replied, 2);
    // Sent exactly span ago: out.
    let st = w.stats(1_000 * MS);
    assert_eq!((st.replied, st.rtt_avg_ns), (1, 3 * MS));
    assert_eq!(w.stats(1_100 * MS), WindowStats::default());
}

#[test]
fn jitter_is_mean_transit_difference_of_successive_replies() {
    let mut w = win(10, 100_000, 500);
    // Transits (offset 1 s, cancels): 10, 14, (lost), 11, 11 ms.
    let transits = [Some(10), Some(14), None, Some(11), Some(11)];
    for (i, t) in transits.iter().enumerate() {
        let seq = w.record_sent(i as u64 * 100 * MS);
        if let Some(t) = t {
            w.on_reply(
                seq,
                20 * MS,
                1_000_000_000 + (*t as i64) * MS as i64,
                i as u64 * 100 * MS,
            );
        }
    }
    // |14-10| + |11-14| + |11-11| = 7 over 3 pairs.
    assert_eq!(w.stats(10_000 * MS).jitter_ns, 7 * MS / 3);
}
