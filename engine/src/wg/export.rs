//! WireGuard counters as the engine exports them (counters.shm, stats):
//! flat names the control process maps to metrics. The names come from
//! the contract both processes share, `patronus_shm::wg_counters`.
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

use patronus_shm::wg_counters::{
    wg_peer_counter_name, wg_peer_drop_name, wg_tunnel_counter_name, wg_tunnel_drop_name,
    WG_DROP_REASONS, WG_PEER_COUNTERS, WG_TUNNEL_COUNTERS,
};

use super::{Tunnel, WG_DROP_NAMES};

/// Counters per peer, in [`values`] order: the shared contract's list
/// (`patronus_shm::wg_counters`), which the control process parses.
pub const PEER_EXPORT: [&str; 6] = WG_PEER_COUNTERS;

/// Drop reasons as exported: [`WG_DROP_NAMES`] with `handshake_failed`
/// shortened so that every name fits the counter file's 48 bytes with a
/// 15-character tunnel name (the shared contract's list).
pub const DROP_EXPORT: [&str; 10] = WG_DROP_REASONS;
const _: () = assert!(DROP_EXPORT.len() == WG_DROP_NAMES.len());

/// Counters per tunnel besides drops, in [`values`] order.
pub const TUNNEL_EXPORT: [&str; 1] = WG_TUNNEL_COUNTERS;

/// Values exported per peer.
pub const PER_PEER: usize = PEER_EXPORT.len() + DROP_EXPORT.len();
/// Values exported per tunnel (besides its peers).
pub const PER_TUNNEL: usize = TUNNEL_EXPORT.len() + DROP_EXPORT.len();

/// The 8-character label of a public key.
pub fn peer_label(public_key: &[u8; 32]) -> String {
    patronus_shm::wg_counters::wg_peer_label(public_key)
}

/// Every exported name of tunnel `name` with peers' keys `peers` (in slot
/// order, holes left out), in the order [`values`] writes them.
pub fn names(name: &str, peers: &[[u8; 32]]) -> Vec<String> {
    let mut out = Vec::with_capacity(peers.len() * PER_PEER + PER_TUNNEL);
    for k in peers {
        let l = peer_label(k);
        for n in PEER_EXPORT {
            out.push(wg_peer_counter_name(name, &l, n));
        }
        for r in DROP_EXPORT {
            out.push(wg_peer_drop_name(name, &l, r));
        }
    }
    for n in TUNNEL_EXPORT {
        out.push(wg_tunnel_counter_name(name, n));
    }
    for r in DROP_EXPORT {
        out.push(wg_tunnel_drop_name(name, r));
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
        assert_eq!(n[PER_PEER * 2], "wg.wg-site-b_01234.cookie_replies_sent");
    }

    /// [`values`] writes the counters in this order and the drops in
    /// `WgDrop` order: the shared lists must keep both.
    #[test]
    fn shared_lists_keep_the_order_values_writes() {
        assert_eq!(
            PEER_EXPORT,
            [
                "rx_bytes",
                "tx_bytes",
                "rx_packets",
                "tx_packets",
                "handshakes",
                "last_handshake_secs"
            ]
        );
        assert_eq!(TUNNEL_EXPORT, ["cookie_replies_sent"]);
        for (export, name) in DROP_EXPORT.iter().zip(WG_DROP_NAMES) {
            let same = *export == name || (*export, name) == ("hs_failed", "handshake_failed");
            assert!(same, "export {export} for drop {name}");
        }
    }
}
