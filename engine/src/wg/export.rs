//! WireGuard counters as the engine exports them (counters.shm, stats):
//! flat names the control process maps to metrics.
//!
//! Per peer, `wg.<tunnel>.<peer>.<name>` where `<peer>` is the standard
//! base64 of the first 6 bytes of its public key (8 characters: the start of
//! the key's base64 text): `rx_bytes`, `tx_bytes`, `rx_packets`,
//! `tx_packets`, `handshakes`, `last_handshake_secs` (Unix seconds, 0 =
//! never) and `drop.<reason>` for every [`DROP_EXPORT`] reason; per
//! tunnel, `wg.<tunnel>.drop.<reason>` (drops no peer can be blamed for)
//! and `wg.<tunnel>.cookie_replies_sent`. Only a peer's owning worker has
//! non-zero values, so summing over workers gives the peer's total (and
//! the maximum its last handshake).

use base64::Engine as _;

use super::{Tunnel, WG_DROP_NAMES};

/// Counters per peer, in [`peer_values`] order.
pub const PEER_EXPORT: [&str; 6] = [
    "rx_bytes",
    "tx_bytes",
    "rx_packets",
    "tx_packets",
    "handshakes",
    "last_handshake_secs",
];

/// Drop reasons as exported: [`WG_DROP_NAMES`] with `handshake_failed`
/// shortened so that every name fits the counter file's 48 bytes with a
/// 15-character tunnel name.
pub const DROP_EXPORT: [&str; 10] = [
    "malformed",
    "no_peer",
    "bad_mac",
    "replay",
    "no_session",
    "not_allowed_ip",
    "hs_failed",
    "under_load",
    "no_endpoint",
    "too_big",
];
const _: () = assert!(DROP_EXPORT.len() == WG_DROP_NAMES.len());

/// Values exported per peer.
pub const PER_PEER: usize = PEER_EXPORT.len() + DROP_EXPORT.len();
/// Values exported per tunnel (besides its peers).
pub const PER_TUNNEL: usize = 1 + DROP_EXPORT.len();

/// The 8-character label of a public key.
pub fn peer_label(public_key: &[u8; 32]) -> String {
    base64::engine::general_purpose::STANDARD.encode(&public_key[..6])
}

/// Every exported name of tunnel `name` with peers' keys `peers` (in slot
/// order, holes left out), in the order [`values`] writes them.
pub fn names(name: &str, peers: &[[u8; 32]]) -> Vec<String> {
    let mut out = Vec::with_capacity(peers.len() * PER_PEER + PER_TUNNEL);
    for k in peers {
        let l = peer_label(k);
        for n in PEER_EXPORT {
            out.push(format!("wg.{name}.{l}.{n}"));
        }
        for r in DROP_EXPORT {
            out.push(format!("wg.{name}.{l}.drop.{r}"));
        }
    }
    out.push(format!("wg.{name}.cookie_replies_sent"));
    for r in DROP_EXPORT {
        out.push(format!("wg.{name}.drop.{r}"));
    }
    out
}

/// Writes a worker's values of `t` into `out` (length
/// `peers * PER_PEER + PER_TUNNEL`) through `put(index, value)`.
/// `unix_at(now_ns)` turns the engine clock into Unix seconds.
pub fn values(t: &Tunnel, unix_at: impl Fn(u64) -> u64, mut put: impl FnMut(usize, u64)) {
    let mut i = 0;
    for p in t.peer_ids() {
        let c = t.peer_counters(p).copied().unwrap_or_default();
        let last = if c.last_handshake_ns == 0 {
            0
        } else {
            unix_at(c.last_handshake_ns)
        };
        for v in [
            c.rx_bytes,
            c.tx_bytes,
            c.rx_packets,
            c.tx_packets,
            c.handshakes_completed,
            last,
        ] {
            put(i, v);
            i += 1;
        }
        for d in c.drops {
            put(i, d);
            i += 1;
        }
    }
    let tc = t.counters();
    put(i, tc.cookie_replies_sent);
    i += 1;
    for d in tc.drops {
        put(i, d);
        i += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_fit_the_counter_file_and_match_the_values() {
        let keys = [[7u8; 32], [200u8; 32]];
        let n = names("wg-site-b_01234", &keys);
        assert_eq!(n.len(), 2 * PER_PEER + PER_TUNNEL);
        assert!(n.iter().all(|s| s.len() <= 48), "{n:?}");
        assert_eq!(peer_label(&[7u8; 32]), "BwcHBwcH");
        assert!(n.contains(&"wg.wg-site-b_01234.BwcHBwcH.handshakes".to_string()));
    }
}
