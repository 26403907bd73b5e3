//! The highest UDP rate a router carries without loss (RFC 2544 §26.1
//! "throughput", with a small loss allowance): offered rates are probed by
//! doubling until one loses more than the allowance, then bisected. A
//! flood (`iperf3 -b 0`) measures the receiver as much as the router: on a
//! two-core machine the receiving iperf3 drops most of what any router
//! delivers, so the two routers are compared at the rates they carry.

/// One offered rate and what came of it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Probe {
    /// Offered bit rate (all streams).
    pub offered_bps: f64,
    /// Received goodput (the server's count).
    pub received_bps: f64,
    /// Datagrams lost, in percent of those sent.
    pub loss_pct: f64,
}

/// How a search runs.
#[derive(Clone, Copy, Debug)]
pub struct Search {
    /// First offered rate.
    pub start_bps: f64,
    /// Probes in all.
    pub probes: usize,
    /// Loss a passing probe may have, in percent.
    pub max_loss_pct: f64,
}

/// Runs `probe` at the rates of a doubling-then-bisecting search; returns
/// the best passing probe (None when even the first lost too much) and
/// every probe in order.
pub fn search(
    s: Search,
    mut probe: impl FnMut(f64) -> anyhow::Result<Probe>,
) -> anyhow::Result<(Option<Probe>, Vec<Probe>)> {
    let mut done = Vec::new();
    let (mut pass, mut fail): (Option<Probe>, Option<f64>) = (None, None);
    let mut rate = s.start_bps;
    for _ in 0..s.probes {
        let p = probe(rate)?;
        done.push(p);
        if p.loss_pct <= s.max_loss_pct {
            if pass.is_none_or(|b| p.offered_bps > b.offered_bps) {
                pass = Some(p);
            }
        } else {
            fail = Some(fail.map_or(rate, |f: f64| f.min(rate)));
        }
        let lo = pass.map_or(0.0, |b| b.offered_bps);
        rate = match fail {
            None => rate * 2.0,
            Some(hi) => (lo + hi) / 2.0,
        };
    }
    Ok((pass, done))
}

/// Loss in percent from an iperf3 UDP report: the server's own count
/// (`--get-server-output`) when present, else the client's (which iperf3
/// 3.12 can misreport above 100 % with -O and several streams).
pub fn loss_percent(v: &serde_json::Value) -> Option<f64> {
    let server = v
        .get("server_output_json")
        .and_then(|s| s.get("end"))
        .and_then(|e| e.get("sum"))
        .and_then(|s| s.get("lost_percent"))
        .and_then(|x| x.as_f64());
    let client = || v.get("end")?.get("sum")?.get("lost_percent")?.as_f64();
    server.or_else(client)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A router that carries up to `cap` bit/s without loss.
    fn router(cap: f64) -> impl FnMut(f64) -> anyhow::Result<Probe> {
        move |offered| {
            let received = offered.min(cap);
            Ok(Probe {
                offered_bps: offered,
                received_bps: received,
                loss_pct: 100.0 * (offered - received) / offered,
            })
        }
    }

    #[test]
    fn finds_the_capacity_within_the_bisection_step() {
        let s = Search {
            start_bps: 1e9,
            probes: 8,
            max_loss_pct: 0.5,
        };
        let (best, probes) = search(s, router(3.3e9)).unwrap();
        let best = best.unwrap();
        assert_eq!(probes.len(), 8);
        // 1, 2, 4 (fails), then bisecting [2, 4]: 3, 3.5 (fails), 3.25, ...
        assert_eq!(probes[2].offered_bps, 4e9);
        assert!(best.offered_bps <= 3.3e9 * 1.005, "{best:?}");
        assert!(best.offered_bps > 3.2e9, "{best:?}");
    }

    #[test]
    fn a_router_losing_everything_has_no_passing_rate() {
        let s = Search {
            start_bps: 1e9,
            probes: 4,
            max_loss_pct: 0.5,
        };
        let (best, probes) = search(s, router(0.0)).unwrap();
        assert!(best.is_none());
        // Halving towards zero.
        assert_eq!(probes[1].offered_bps, 0.5e9);
        assert_eq!(probes[3].offered_bps, 0.125e9);
    }

    #[test]
    fn server_loss_is_preferred_over_the_client_s() {
        let v = serde_json::json!({
            "end": {"sum": {"lost_percent": 140.0}},
            "server_output_json": {"end": {"sum": {"lost_percent": 0.25}}}
        });
        assert_eq!(loss_percent(&v), Some(0.25));
        let client_only = serde_json::json!({"end": {"sum": {"lost_percent": 3.0}}});
        assert_eq!(loss_percent(&client_only), Some(3.0));
        assert_eq!(loss_percent(&serde_json::json!({})), None);
    }
}
