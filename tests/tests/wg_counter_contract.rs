//! The WireGuard counter-name contract across the two processes: every
//! name the engine exports (`patronus_engine::wg::export::names`) is
//! parsed by the control process, reaches a field of the API's counters
//! and becomes exactly one Prometheus sample. No network, no processes.

use std::sync::Arc;

use patronus_control::metrics::{EngineSnapshot, LatestSnapshot, Metrics};
use patronus_control::wg::counters::{parse, peer_counters, tunnel_counters, WgCounter, PREFIX};
use patronus_engine::wg::export;
use patronus_shm::counters::COUNTER_NAME_LEN;

/// Keys whose labels hold every kind of base64 character, `+` and `/`
/// included.
fn keys() -> Vec<[u8; 32]> {
    vec![
        [0xfb; 32],
        [7; 32],
        std::array::from_fn(|i| (i as u8).wrapping_mul(37) ^ 0x5a),
        [0; 32],
    ]
}

/// The engine's names of `tunnel` with `keys`, each with a distinct value
/// (`first..`), as the control process reads them (without `wg.`).
fn engine_counters(tunnel: &str, keys: &[[u8; 32]], first: u64) -> Vec<(String, u64)> {
    export::names(tunnel, keys)
        .into_iter()
        .zip(first..)
        .map(|(n, v)| {
            assert!(n.len() <= COUNTER_NAME_LEN, "{n} is {} bytes", n.len());
            let rest = n
                .strip_prefix(PREFIX)
                .unwrap_or_else(|| panic!("{n} lacks {PREFIX}"));
            (rest.to_owned(), v)
        })
        .collect()
}

#[test]
fn every_engine_name_parses_in_the_control_process() {
    let keys = keys();
    for tunnel in ["wg0", "a-15-char-name_"] {
        let wg = engine_counters(tunnel, &keys, 1);
        assert_eq!(wg.len(), keys.len() * export::PER_PEER + export::PER_TUNNEL);
        for (name, _) in &wg {
            let c = parse(name).unwrap_or_else(|| panic!("control does not parse wg.{name}"));
            let (t, peer) = match c {
                WgCounter::Peer { tunnel, peer, .. } | WgCounter::PeerDrop { tunnel, peer, .. } => {
                    (tunnel, Some(peer))
                }
                WgCounter::Tunnel { tunnel, .. } | WgCounter::TunnelDrop { tunnel, .. } => {
                    (tunnel, None)
                }
            };
            assert_eq!(t, tunnel, "{name}");
            if let Some(p) = peer {
                assert!(
                    keys.iter().any(|k| export::peer_label(k) == p),
                    "{name}: {p} is no peer's label"
                );
            }
        }
    }
}

#[test]
fn every_engine_counter_reaches_the_api() {
    let keys = keys();
    let wg = engine_counters("wg0", &keys, 1);
    let mut seen: Vec<u64> = Vec::new();
    for k in &keys {
        let c = peer_counters(&wg, "wg0", &export::peer_label(k)).expect("peer exported");
        seen.extend([
            c.rx_bytes,
            c.tx_bytes,
            c.rx_packets,
            c.tx_packets,
            c.handshakes,
            c.last_handshake_secs,
        ]);
        seen.extend(c.drops.values());
    }
    let t = tunnel_counters(&wg, "wg0").expect("tunnel exported");
    seen.push(t.cookie_replies_sent);
    seen.extend(t.drops.values());
    seen.sort_unstable();
    let all: Vec<u64> = (1..=wg.len() as u64).collect();
    assert_eq!(seen, all, "each engine counter in exactly one API field");
}

#[test]
fn every_engine_counter_becomes_one_prometheus_sample() {
    let keys = keys();
    let mut wg = engine_counters("wg0", &keys, 1);
    let n = wg.len() as u64;
    wg.extend(engine_counters("wg1", &keys[..1], n + 1));
    let snapshot = EngineSnapshot {
        wg: wg.clone(),
        ..Default::default()
    };
    let metrics = Metrics::new(Arc::new(LatestSnapshot::new(Some(snapshot)))).unwrap();
    let text = metrics.encode_text().unwrap();
    let mut values: Vec<u64> = text
        .lines()
        .filter(|l| l.starts_with("patronus_wg_"))
        .map(|l| {
            let v = l.rsplit(' ').next().unwrap();
            v.parse::<f64>().unwrap_or_else(|e| panic!("{l}: {e}")) as u64
        })
        .collect();
    values.sort_unstable();
    let all: Vec<u64> = (1..=wg.len() as u64).collect();
    assert_eq!(values, all, "{text}");
    assert!(text.contains("# TYPE patronus_wg_peer_last_handshake_seconds gauge"));
    assert!(text.contains("# TYPE patronus_wg_cookie_replies_sent_total counter"));
}
