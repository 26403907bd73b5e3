//! The engine's WireGuard counters in `counters.shm`, read by name. The
//! names are the contract both processes share,
//! [`patronus_shm::wg_counters`] (lists, peer label, builders and the
//! parser): every counter the engine writes is parsed here. All values are
//! summed over workers except `last_handshake_secs`, the newest of them
//! ([`is_max`]).
//!
//! - `wg.<tunnel>.<peer>.{rx_bytes,tx_bytes}`: WireGuard message bytes
//!   (UDP payload, every message type) received and authenticated / sent;
//! - `wg.<tunnel>.<peer>.{rx_packets,tx_packets}`: inner packets
//!   delivered / encapsulated (keepalives not included);
//! - `wg.<tunnel>.<peer>.handshakes`, `.last_handshake_secs` (Unix time,
//!   0 = none; a gauge);
//! - `wg.<tunnel>.<peer>.drop.<reason>` and `wg.<tunnel>.drop.<reason>`
//!   (what no peer can be blamed for), `<reason>` one of [`DROP_REASONS`];
//! - `wg.<tunnel>.cookie_replies_sent`.
//!
//! The control process refuses two peers of a tunnel whose labels collide.

use std::collections::BTreeMap;

use patronus_shm::wg_counters::{self, wg_peer_label};

use super::keys::PublicKey;
use super::model::{PeerCounters, TunnelCounters};

pub use patronus_shm::wg_counters::{
    parse_wg_counter as parse, WgCounter, WG_COUNTER_PREFIX as PREFIX,
    WG_DROP_REASONS as DROP_REASONS, WG_PEER_COUNTERS as PEER_COUNTERS,
    WG_TUNNEL_COUNTERS as TUNNEL_COUNTERS,
};

/// How a peer appears in counter names and metric labels: standard base64
/// of the first 6 bytes of its public key (8 characters).
pub fn peer_label(key: &PublicKey) -> String {
    wg_peer_label(&key.0)
}

/// Whether values of this counter (name without `wg.`) combine over
/// workers by maximum (a timestamp gauge) rather than by sum.
pub fn is_max(rest: &str) -> bool {
    wg_counters::wg_counter_is_max(rest)
}

/// Every drop reason at zero, so a response lists them all.
fn zero_drops() -> BTreeMap<String, u64> {
    DROP_REASONS.iter().map(|r| ((*r).to_owned(), 0)).collect()
}

/// The counters of peer `peer` (its [`peer_label`]) of `tunnel` among the
/// engine's WireGuard counters (names without `wg.`); `None` when the
/// engine exports none for it.
pub fn peer_counters(wg: &[(String, u64)], tunnel: &str, peer: &str) -> Option<PeerCounters> {
    let mut out = PeerCounters {
        drops: zero_drops(),
        ..PeerCounters::default()
    };
    let mut found = false;
    for (name, v) in wg {
        match parse(name) {
            Some(WgCounter::Peer {
                tunnel: t,
                peer: p,
                counter,
            }) if t == tunnel && p == peer => {
                found = true;
                let slot = match counter {
                    "rx_bytes" => &mut out.rx_bytes,
                    "tx_bytes" => &mut out.tx_bytes,
                    "rx_packets" => &mut out.rx_packets,
                    "tx_packets" => &mut out.tx_packets,
                    "handshakes" => &mut out.handshakes,
                    "last_handshake_secs" => &mut out.last_handshake_secs,
                    // A counter added to the contract without a field here
                    // (a test keeps the two in step).
                    _ => continue,
                };
                *slot = *v;
            }
            Some(WgCounter::PeerDrop {
                tunnel: t,
                peer: p,
                reason,
            }) if t == tunnel && p == peer => {
                found = true;
                *out.drops.entry(reason.to_owned()).or_default() += *v;
            }
            _ => {}
        }
    }
    found.then_some(out)
}

/// The tunnel-level counters of `tunnel` (drops no peer can be blamed
/// for, cookie replies); `None` when the engine exports none for it.
pub fn tunnel_counters(wg: &[(String, u64)], tunnel: &str) -> Option<TunnelCounters> {
    let mut out = TunnelCounters {
        drops: zero_drops(),
        ..TunnelCounters::default()
    };
    let mut found = false;
    for (name, v) in wg {
        match parse(name) {
            Some(WgCounter::Tunnel { tunnel: t, counter }) if t == tunnel => {
                found = true;
                match counter {
                    "cookie_replies_sent" => out.cookie_replies_sent = *v,
                    _ => continue,
                }
            }
            Some(WgCounter::TunnelDrop { tunnel: t, reason }) if t == tunnel => {
                found = true;
                *out.drops.entry(reason.to_owned()).or_default() += *v;
            }
            _ => {}
        }
    }
    found.then_some(out)
}

#[cfg(test)]
mod tests {
    use patronus_shm::wg_counters::{
        wg_peer_counter_name, wg_peer_drop_name, wg_tunnel_counter_name, wg_tunnel_drop_name,
    };

    use super::*;

    #[test]
    fn labels_are_the_start_of_the_key_text() {
        let k = PublicKey::parse("k", "hSDwCYkwp1R0i33ctD73Wg2/Og0mOBr066SpjqqbTmo=").unwrap();
        assert_eq!(peer_label(&k), "hSDwCYkw");
        let k = PublicKey([0xfb; 32]);
        assert_eq!(peer_label(&k), "+/v7+/v7");
        assert!(k.to_base64().starts_with(&peer_label(&k)));
        // The label is the key text's start for any key (base64 crate).
        for seed in 0u8..=255 {
            let k = PublicKey(std::array::from_fn(|i| seed.wrapping_mul(31) ^ i as u8));
            assert!(k.to_base64().starts_with(&peer_label(&k)), "{seed}");
        }
    }

    /// Every contract name of one tunnel and peer, with a distinct value
    /// each (name without `wg.`, value).
    fn every_counter(tunnel: &str, peer: &str) -> Vec<(String, u64)> {
        let mut names: Vec<String> = PEER_COUNTERS
            .iter()
            .map(|c| wg_peer_counter_name(tunnel, peer, c))
            .collect();
        names.extend(
            DROP_REASONS
                .iter()
                .map(|r| wg_peer_drop_name(tunnel, peer, r)),
        );
        names.extend(
            TUNNEL_COUNTERS
                .iter()
                .map(|c| wg_tunnel_counter_name(tunnel, c)),
        );
        names.extend(DROP_REASONS.iter().map(|r| wg_tunnel_drop_name(tunnel, r)));
        names
            .into_iter()
            .zip(1..)
            .map(|(n, v)| (n.strip_prefix(PREFIX).unwrap().to_owned(), v))
            .collect()
    }

    /// Every value of the contract lands in exactly one field of the API's
    /// counters: a counter added to the shared lists without a field here
    /// fails this.
    #[test]
    fn every_contract_counter_reaches_a_field() {
        let wg = every_counter("wg0", "AAAAAAAA");
        let p = peer_counters(&wg, "wg0", "AAAAAAAA").unwrap();
        let t = tunnel_counters(&wg, "wg0").unwrap();
        let mut seen: Vec<u64> = vec![
            p.rx_bytes,
            p.tx_bytes,
            p.rx_packets,
            p.tx_packets,
            p.handshakes,
            p.last_handshake_secs,
            t.cookie_replies_sent,
        ];
        assert_eq!(p.drops.len(), DROP_REASONS.len());
        assert_eq!(t.drops.len(), DROP_REASONS.len());
        seen.extend(p.drops.values());
        seen.extend(t.drops.values());
        seen.sort_unstable();
        let all: Vec<u64> = (1..=wg.len() as u64).collect();
        assert_eq!(seen, all);
        assert_eq!(p.rx_packets, 3, "rx_packets is the third peer counter");
    }

    #[test]
    fn counters_pick_one_peer_and_one_tunnel() {
        let wg: Vec<(String, u64)> = vec![
            ("wg0.AAAAAAAA.rx_bytes".into(), 10),
            ("wg0.AAAAAAAA.tx_packets".into(), 4),
            ("wg0.AAAAAAAA.drop.replay".into(), 2),
            ("wg0.BBBBBBBB.rx_bytes".into(), 99),
            ("wg1.AAAAAAAA.rx_bytes".into(), 98),
            ("wg0.drop.no_peer".into(), 7),
            ("wg0.cookie_replies_sent".into(), 5),
            ("wg1.drop.no_peer".into(), 70),
        ];
        let c = peer_counters(&wg, "wg0", "AAAAAAAA").unwrap();
        assert_eq!((c.rx_bytes, c.tx_packets), (10, 4));
        assert_eq!(c.drops.get("replay"), Some(&2));
        assert_eq!(c.drops.get("bad_mac"), Some(&0));
        assert_eq!(peer_counters(&wg, "wg0", "CCCCCCCC"), None);
        let t = tunnel_counters(&wg, "wg0").unwrap();
        assert_eq!(t.cookie_replies_sent, 5);
        assert_eq!(t.drops.get("no_peer"), Some(&7));
        assert_eq!(tunnel_counters(&wg, "wg2"), None);
    }
}
