//! The engine's WireGuard counters in `counters.shm`, by name (the file
//! carries names, so this is the whole contract; all values are summed
//! over workers except `last_handshake_secs`, the newest of them):
//!
//! - `wg.<tunnel>.<peer>.rx_bytes`, `.tx_bytes`: payload bytes of the
//!   peer's data packets received (after decryption) and sent (before
//!   encryption);
//! - `wg.<tunnel>.<peer>.handshakes`: handshakes completed with the peer;
//! - `wg.<tunnel>.<peer>.last_handshake_secs`: Unix time in seconds of the
//!   last completed handshake (0 = none), a gauge;
//! - `wg.<tunnel>.<peer>.drop.<reason>`: the peer's packets dropped, with
//!   `<reason>` one of [`PEER_DROP_REASONS`];
//! - `wg.<tunnel>.drop.<reason>`: packets to the tunnel's port that no peer
//!   can be blamed for, with `<reason>` one of [`TUNNEL_DROP_REASONS`].
//!
//! `<tunnel>` is the tunnel's name (no dots: 1..=15 of `A-Z a-z 0-9 - _`)
//! and `<peer>` is [`peer_label`]: the standard base64 of the first 6
//! bytes of the peer's public key, 8 characters, which is also how the
//! public key's text starts (the control process refuses two peers of a
//! tunnel whose labels collide). The longest name,
//! `wg.<15>.<8>.drop.not_allowed_ip`, is 46 bytes, within the counter
//! file's 48.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;

use super::keys::PublicKey;
use super::model::PeerCounters;

/// Prefix of every WireGuard counter name.
pub const PREFIX: &str = "wg.";
/// Reasons of `wg.<tunnel>.<peer>.drop.<reason>`.
pub const PEER_DROP_REASONS: &[&str] = &[
    // Data or handshake packet whose authentication tag/MAC failed.
    "bad_mac",
    // Data packet with a counter outside or already seen in the window.
    "replay",
    // Decrypted packet from a source outside the peer's allowed IPs.
    "not_allowed_ip",
    // Data packet under a key that is expired or gone (REJECT_AFTER_TIME).
    "expired_key",
    // Outgoing packet with no session yet and the staged queue full.
    "no_session",
    // Malformed data packet (too short, bad inner IP header).
    "malformed",
];
/// Reasons of `wg.<tunnel>.drop.<reason>`.
pub const TUNNEL_DROP_REASONS: &[&str] = &[
    // Handshake initiation from an unknown static key, or a receiver
    // index no peer holds.
    "no_peer",
    // Handshake message whose MAC1 failed (cannot be tied to a peer).
    "bad_mac",
    // Handshake refused under load without a valid cookie (a cookie reply
    // went out instead).
    "cookie_required",
    // Not a WireGuard message (unknown type or length).
    "malformed",
    // Outgoing packet routed into the tunnel whose destination no peer's
    // allowed IPs cover.
    "no_route",
];
/// Per-peer counters other than drops.
pub const PEER_COUNTERS: &[&str] = &["rx_bytes", "tx_bytes", "handshakes", "last_handshake_secs"];

/// How a peer appears in counter names and metric labels: standard base64
/// of the first 6 bytes of its public key (8 characters).
pub fn peer_label(key: &PublicKey) -> String {
    STANDARD.encode(&key.0[..6])
}

/// One WireGuard counter, parsed from its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WgCounter<'a> {
    /// `wg.<tunnel>.<peer>.<counter>` (`counter` from [`PEER_COUNTERS`]).
    Peer {
        tunnel: &'a str,
        peer: &'a str,
        counter: &'a str,
    },
    /// `wg.<tunnel>.<peer>.drop.<reason>`.
    PeerDrop {
        tunnel: &'a str,
        peer: &'a str,
        reason: &'a str,
    },
    /// `wg.<tunnel>.drop.<reason>`.
    TunnelDrop { tunnel: &'a str, reason: &'a str },
}

/// Parses a counter name without its `wg.` prefix; `None` for names this
/// build does not know (they are not exported).
pub fn parse(rest: &str) -> Option<WgCounter<'_>> {
    let (tunnel, rest) = rest.split_once('.')?;
    if tunnel.is_empty() {
        return None;
    }
    if let Some(reason) = rest.strip_prefix("drop.") {
        return TUNNEL_DROP_REASONS
            .contains(&reason)
            .then_some(WgCounter::TunnelDrop { tunnel, reason });
    }
    let (peer, counter) = rest.split_once('.')?;
    if peer.len() != 8 {
        return None;
    }
    if let Some(reason) = counter.strip_prefix("drop.") {
        return PEER_DROP_REASONS
            .contains(&reason)
            .then_some(WgCounter::PeerDrop {
                tunnel,
                peer,
                reason,
            });
    }
    PEER_COUNTERS.contains(&counter).then_some(WgCounter::Peer {
        tunnel,
        peer,
        counter,
    })
}

/// Whether values of this counter (name without `wg.`) combine over
/// workers by maximum (a timestamp gauge) rather than by sum.
pub fn is_max(rest: &str) -> bool {
    rest.ends_with(".last_handshake_secs")
}

/// The counters of peer `peer` (its [`peer_label`]) of `tunnel` among the
/// engine's WireGuard counters (names without `wg.`); `None` when the
/// engine exports none for it.
pub fn peer_counters(wg: &[(String, u64)], tunnel: &str, peer: &str) -> Option<PeerCounters> {
    let mut out = PeerCounters::default();
    let mut found = false;
    for (name, v) in wg {
        match parse(name) {
            Some(WgCounter::Peer {
                tunnel: t,
                peer: p,
                counter,
            }) if t == tunnel && p == peer => {
                found = true;
                match counter {
                    "rx_bytes" => out.rx_bytes = *v,
                    "tx_bytes" => out.tx_bytes = *v,
                    "handshakes" => out.handshakes = *v,
                    "last_handshake_secs" => out.last_handshake_secs = *v,
                    _ => {}
                }
            }
            Some(WgCounter::PeerDrop {
                tunnel: t,
                peer: p,
                reason,
            }) if t == tunnel && p == peer => {
                found = true;
                *out.drops.entry(reason.to_string()).or_default() += *v;
            }
            _ => {}
        }
    }
    found.then_some(out)
}

/// Every counter name (full, with `wg.`) the engine should create for one
/// peer.
pub fn names_for_peer(tunnel: &str, peer: &str) -> Vec<String> {
    let mut out: Vec<String> = PEER_COUNTERS
        .iter()
        .map(|c| format!("{PREFIX}{tunnel}.{peer}.{c}"))
        .collect();
    out.extend(
        PEER_DROP_REASONS
            .iter()
            .map(|r| format!("{PREFIX}{tunnel}.{peer}.drop.{r}")),
    );
    out
}

/// Every tunnel-level counter name the engine should create.
pub fn names_for_tunnel(tunnel: &str) -> Vec<String> {
    TUNNEL_DROP_REASONS
        .iter()
        .map(|r| format!("{PREFIX}{tunnel}.drop.{r}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_the_start_of_the_key_text() {
        let k = PublicKey::parse("k", "hSDwCYkwp1R0i33ctD73Wg2/Og0mOBr066SpjqqbTmo=").unwrap();
        assert_eq!(peer_label(&k), "hSDwCYkw");
        let k = PublicKey([0xfb; 32]);
        assert_eq!(peer_label(&k), "+/v7+/v7");
        assert!(k.to_base64().starts_with(&peer_label(&k)));
    }

    #[test]
    fn every_name_parses_back_and_fits_the_counter_file() {
        let tunnel = "a-15-char-name_";
        assert_eq!(tunnel.len(), 15);
        let peer = "+/v7+/v7";
        let mut names = names_for_peer(tunnel, peer);
        names.extend(names_for_tunnel(tunnel));
        for n in &names {
            assert!(
                n.len() <= patronus_shm::counters::COUNTER_NAME_LEN,
                "{n} is {} bytes",
                n.len()
            );
            let rest = n.strip_prefix(PREFIX).unwrap();
            let parsed = parse(rest).unwrap_or_else(|| panic!("{n} does not parse"));
            match parsed {
                WgCounter::Peer {
                    tunnel: t, peer: p, ..
                }
                | WgCounter::PeerDrop {
                    tunnel: t, peer: p, ..
                } => {
                    assert_eq!((t, p), (tunnel, peer))
                }
                WgCounter::TunnelDrop { tunnel: t, .. } => assert_eq!(t, tunnel),
            }
        }
        assert_eq!(
            names.len(),
            PEER_COUNTERS.len() + PEER_DROP_REASONS.len() + TUNNEL_DROP_REASONS.len()
        );
        for bad in [
            "wg0",
            "wg0.drop.nope",
            "wg0.short.rx_bytes",
            "wg0.abcdefgh.nope",
            ".x.y",
        ] {
            assert_eq!(parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn peer_counters_pick_one_peer() {
        let wg: Vec<(String, u64)> = vec![
            ("wg0.AAAAAAAA.rx_bytes".into(), 10),
            ("wg0.AAAAAAAA.drop.replay".into(), 2),
            ("wg0.BBBBBBBB.rx_bytes".into(), 99),
            ("wg1.AAAAAAAA.rx_bytes".into(), 98),
            ("wg0.drop.no_peer".into(), 7),
        ];
        let c = peer_counters(&wg, "wg0", "AAAAAAAA").unwrap();
        assert_eq!(c.rx_bytes, 10);
        assert_eq!(c.drops.get("replay"), Some(&2));
        assert_eq!(peer_counters(&wg, "wg0", "CCCCCCCC"), None);
    }
}
