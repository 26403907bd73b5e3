//! The names of the engine's WireGuard counters in `counters.shm`: the one
//! contract the engine writes them by (`engine/src/wg/export.rs`) and the
//! control process parses them by (`control/src/wg/counters.rs`).
//!
//! - `wg.<tunnel>.<peer>.<counter>`, `<counter>` one of
//!   [`WG_PEER_COUNTERS`]: `rx_bytes`/`tx_bytes` are WireGuard message
//!   bytes (UDP payload) received and authenticated / sent, every message
//!   type; `rx_packets`/`tx_packets` are inner packets delivered /
//!   encapsulated (keepalives not included); `handshakes` are handshakes
//!   completed; `last_handshake_secs` is the Unix time of the last one
//!   (0 = never), a gauge combined over workers by maximum
//!   ([`wg_counter_is_max`]); every other counter is summed over workers.
//! - `wg.<tunnel>.<peer>.drop.<reason>`: the peer's packets dropped, by
//!   [`WG_DROP_REASONS`].
//! - `wg.<tunnel>.<counter>`, `<counter>` one of [`WG_TUNNEL_COUNTERS`].
//! - `wg.<tunnel>.drop.<reason>`: packets no peer can be blamed for, by
//!   [`WG_DROP_REASONS`].
//!
//! `<tunnel>` is the tunnel's name (1..=[`WG_TUNNEL_NAME_MAX_LEN`] of
//! `A-Z a-z 0-9 - _`, so no dots) and `<peer>` is [`wg_peer_label`]: the
//! standard base64 of the first 6 bytes of the peer's public key, 8
//! characters, which is how the key's own base64 text starts. The longest
//! name fits the counter file's [`COUNTER_NAME_LEN`] (checked at compile
//! time).

use crate::counters::COUNTER_NAME_LEN;

/// Prefix of every WireGuard counter name.
pub const WG_COUNTER_PREFIX: &str = "wg.";
/// Longest tunnel name (Linux IFNAMSIZ - 1).
pub const WG_TUNNEL_NAME_MAX_LEN: usize = 15;
/// Characters of a peer's label ([`wg_peer_label`]).
pub const WG_PEER_LABEL_LEN: usize = 8;
/// The gauge among [`WG_PEER_COUNTERS`] (Unix seconds, 0 = never).
pub const WG_LAST_HANDSHAKE: &str = "last_handshake_secs";

/// Per-peer counters besides drops, in the order the engine writes them.
pub const WG_PEER_COUNTERS: [&str; 6] = [
    "rx_bytes",
    "tx_bytes",
    "rx_packets",
    "tx_packets",
    "handshakes",
    WG_LAST_HANDSHAKE,
];

/// Drop reasons, per peer and per tunnel, in the engine's `WgDrop` order
/// (`hs_failed` is a handshake message the state machine refused: the
/// short form keeps the longest name within the counter file's limit).
pub const WG_DROP_REASONS: [&str; 10] = [
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

/// Per-tunnel counters besides drops.
pub const WG_TUNNEL_COUNTERS: [&str; 1] = ["cookie_replies_sent"];

/// The path segment before a drop reason.
const DROP: &str = "drop";

const fn longest(names: &[&str]) -> usize {
    let mut i = 0;
    let mut max = 0;
    while i < names.len() {
        if names[i].len() > max {
            max = names[i].len();
        }
        i += 1;
    }
    max
}

/// Bytes of the longest name any tunnel can have.
pub const WG_LONGEST_NAME_LEN: usize = {
    let peer_part = WG_PEER_LABEL_LEN + 1;
    let leaf = {
        let c = longest(&WG_PEER_COUNTERS);
        let d = DROP.len() + 1 + longest(&WG_DROP_REASONS);
        if c > d {
            c
        } else {
            d
        }
    };
    WG_COUNTER_PREFIX.len() + WG_TUNNEL_NAME_MAX_LEN + 1 + peer_part + leaf
};
const _: () = assert!(WG_LONGEST_NAME_LEN <= COUNTER_NAME_LEN);
const _: () = assert!(
    WG_COUNTER_PREFIX.len() + WG_TUNNEL_NAME_MAX_LEN + 1 + longest(&WG_TUNNEL_COUNTERS)
        <= COUNTER_NAME_LEN
);

const BASE64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// How a peer appears in counter names and metric labels: the standard
/// base64 of the first 6 bytes of its public key (8 characters, no
/// padding: the start of the key's own base64 text).
pub fn wg_peer_label(public_key: &[u8; 32]) -> String {
    let mut out = String::with_capacity(WG_PEER_LABEL_LEN);
    for chunk in public_key[..6].chunks_exact(3) {
        let n = u32::from(chunk[0]) << 16 | u32::from(chunk[1]) << 8 | u32::from(chunk[2]);
        for shift in [18, 12, 6, 0] {
            out.push(char::from(BASE64[(n >> shift) as usize & 63]));
        }
    }
    out
}

/// `wg.<tunnel>.<peer>.<counter>`.
pub fn wg_peer_counter_name(tunnel: &str, peer: &str, counter: &str) -> String {
    format!("{WG_COUNTER_PREFIX}{tunnel}.{peer}.{counter}")
}

/// `wg.<tunnel>.<peer>.drop.<reason>`.
pub fn wg_peer_drop_name(tunnel: &str, peer: &str, reason: &str) -> String {
    format!("{WG_COUNTER_PREFIX}{tunnel}.{peer}.{DROP}.{reason}")
}

/// `wg.<tunnel>.<counter>`.
pub fn wg_tunnel_counter_name(tunnel: &str, counter: &str) -> String {
    format!("{WG_COUNTER_PREFIX}{tunnel}.{counter}")
}

/// `wg.<tunnel>.drop.<reason>`.
pub fn wg_tunnel_drop_name(tunnel: &str, reason: &str) -> String {
    format!("{WG_COUNTER_PREFIX}{tunnel}.{DROP}.{reason}")
}

/// One WireGuard counter, parsed from its name. The counter and reason
/// are the contract's own constants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WgCounter<'a> {
    /// `wg.<tunnel>.<peer>.<counter>`, `counter` from [`WG_PEER_COUNTERS`].
    Peer {
        tunnel: &'a str,
        peer: &'a str,
        counter: &'static str,
    },
    /// `wg.<tunnel>.<peer>.drop.<reason>`.
    PeerDrop {
        tunnel: &'a str,
        peer: &'a str,
        reason: &'static str,
    },
    /// `wg.<tunnel>.<counter>`, `counter` from [`WG_TUNNEL_COUNTERS`].
    Tunnel {
        tunnel: &'a str,
        counter: &'static str,
    },
    /// `wg.<tunnel>.drop.<reason>`.
    TunnelDrop {
        tunnel: &'a str,
        reason: &'static str,
    },
}

fn known(list: &[&'static str], name: &str) -> Option<&'static str> {
    list.iter().copied().find(|n| *n == name)
}

fn is_tunnel_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= WG_TUNNEL_NAME_MAX_LEN
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_'))
}

fn is_peer_label(s: &str) -> bool {
    s.len() == WG_PEER_LABEL_LEN
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/'))
}

/// Parses a counter name without its [`WG_COUNTER_PREFIX`]; `None` for
/// names outside the contract.
pub fn parse_wg_counter(rest: &str) -> Option<WgCounter<'_>> {
    let (tunnel, rest) = rest.split_once('.')?;
    if !is_tunnel_name(tunnel) {
        return None;
    }
    let Some((first, leaf)) = rest.split_once('.') else {
        let counter = known(&WG_TUNNEL_COUNTERS, rest)?;
        return Some(WgCounter::Tunnel { tunnel, counter });
    };
    if first == DROP {
        let reason = known(&WG_DROP_REASONS, leaf)?;
        return Some(WgCounter::TunnelDrop { tunnel, reason });
    }
    let peer = first;
    if !is_peer_label(peer) {
        return None;
    }
    if let Some(reason) = leaf.strip_prefix(DROP).and_then(|r| r.strip_prefix('.')) {
        let reason = known(&WG_DROP_REASONS, reason)?;
        return Some(WgCounter::PeerDrop {
            tunnel,
            peer,
            reason,
        });
    }
    let counter = known(&WG_PEER_COUNTERS, leaf)?;
    Some(WgCounter::Peer {
        tunnel,
        peer,
        counter,
    })
}

/// Whether values of this counter (name without `wg.`) combine over
/// workers by maximum (the last-handshake gauge) rather than by sum.
pub fn wg_counter_is_max(rest: &str) -> bool {
    matches!(
        parse_wg_counter(rest),
        Some(WgCounter::Peer {
            counter: WG_LAST_HANDSHAKE,
            ..
        })
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every name of one tunnel with one peer, built from the lists.
    fn all_names(tunnel: &str, peer: &str) -> Vec<String> {
        let mut out: Vec<String> = WG_PEER_COUNTERS
            .iter()
            .map(|c| wg_peer_counter_name(tunnel, peer, c))
            .collect();
        out.extend(
            WG_DROP_REASONS
                .iter()
                .map(|r| wg_peer_drop_name(tunnel, peer, r)),
        );
        out.extend(
            WG_TUNNEL_COUNTERS
                .iter()
                .map(|c| wg_tunnel_counter_name(tunnel, c)),
        );
        out.extend(
            WG_DROP_REASONS
                .iter()
                .map(|r| wg_tunnel_drop_name(tunnel, r)),
        );
        out
    }

    #[test]
    fn labels_are_the_start_of_the_key_text() {
        assert_eq!(wg_peer_label(&[7u8; 32]), "BwcHBwcH");
        assert_eq!(wg_peer_label(&[0xfb; 32]), "+/v7+/v7");
        assert_eq!(wg_peer_label(&[0; 32]), "AAAAAAAA");
        // "hSDwCYkwp1R0i33ctD73Wg2/Og0mOBr066SpjqqbTmo=" starts with these.
        let mut k = [0u8; 32];
        k[..6].copy_from_slice(&[0x85, 0x20, 0xf0, 0x09, 0x89, 0x30]);
        assert_eq!(wg_peer_label(&k), "hSDwCYkw");
    }

    #[test]
    fn every_name_parses_back_to_its_parts_and_fits() {
        let tunnel = "a-15-char-name_";
        assert_eq!(tunnel.len(), WG_TUNNEL_NAME_MAX_LEN);
        let peer = "+/v7+/v7";
        let names = all_names(tunnel, peer);
        assert_eq!(
            names.len(),
            WG_PEER_COUNTERS.len() + WG_TUNNEL_COUNTERS.len() + 2 * WG_DROP_REASONS.len()
        );
        let longest = names.iter().map(String::len).max().unwrap();
        assert_eq!(longest, WG_LONGEST_NAME_LEN);
        let mut parsed = Vec::new();
        for n in &names {
            let rest = n.strip_prefix(WG_COUNTER_PREFIX).unwrap();
            let c = parse_wg_counter(rest).unwrap_or_else(|| panic!("{n} does not parse"));
            let back = match c {
                WgCounter::Peer {
                    tunnel: t,
                    peer: p,
                    counter,
                } => wg_peer_counter_name(t, p, counter),
                WgCounter::PeerDrop {
                    tunnel: t,
                    peer: p,
                    reason,
                } => wg_peer_drop_name(t, p, reason),
                WgCounter::Tunnel { tunnel: t, counter } => wg_tunnel_counter_name(t, counter),
                WgCounter::TunnelDrop { tunnel: t, reason } => wg_tunnel_drop_name(t, reason),
            };
            assert_eq!(&back, n);
            parsed.push(c);
        }
        // Distinct names parse to distinct counters.
        for (i, a) in parsed.iter().enumerate() {
            assert!(!parsed[i + 1..].contains(a), "{a:?} twice");
        }
    }

    #[test]
    fn names_outside_the_contract_do_not_parse() {
        for bad in [
            "wg0",
            "wg0.drop.nope",
            "wg0.drop.expired_key",
            "wg0.drop",
            "wg0.nope",
            "wg0.short.rx_bytes",
            "wg0.abcdefgh.nope",
            "wg0.abcdefgh.drop.nope",
            "wg0.abcdefgh.drop",
            "wg0.abcdefgh.dropreplay",
            "wg0.abc.efgh.rx_bytes",
            "wg0.abcdefgh.rx_bytes.x",
            "a-16-char-name_x.cookie_replies_sent",
            ".x.y",
            "",
        ] {
            assert_eq!(parse_wg_counter(bad), None, "{bad}");
        }
    }

    #[test]
    fn only_the_last_handshake_combines_by_maximum() {
        assert!(wg_counter_is_max("wg0.AAAAAAAA.last_handshake_secs"));
        assert!(!wg_counter_is_max("wg0.AAAAAAAA.handshakes"));
        assert!(!wg_counter_is_max("wg0.AAAAAAAA.drop.replay"));
        assert!(!wg_counter_is_max("wg0.last_handshake_secs"));
    }
}
