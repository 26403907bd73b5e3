//! Unit tests of the WireGuard data path: two [`Tunnel`]s talking in memory
//! on a fake clock ([`Pair`]), plus allowed IPs, outer headers, steering
//! and property tests over hostile input.

mod allowed_ips;
mod data;
mod drops;
mod handshake;
mod prop;
mod reconfigure;
mod timers;
mod workers;

use std::net::{Ipv4Addr, SocketAddrV4};

use crate::buffer::{Batch, Packet, PacketPool};
use crate::wire::checksum::{checksum, combine, fold, pseudo_header_v4, sum};
use crate::wire::ipv4::Ipv4Packet;
use crate::wire::udp::UdpPacket;

use super::{Decap, Encap, PeerConfig, PeerId, Tunnel, TunnelConfig, DEFAULT_MTU};

pub(super) const SEC: u64 = 1_000_000_000;
pub(super) const KEY_A: [u8; 32] = [0x11; 32];
pub(super) const KEY_B: [u8; 32] = [0x22; 32];
pub(super) const KEY_C: [u8; 32] = [0x33; 32];
pub(super) const A_ADDR: SocketAddrV4 = SocketAddrV4::new(Ipv4Addr::new(192, 0, 2, 1), 51820);
pub(super) const B_ADDR: SocketAddrV4 = SocketAddrV4::new(Ipv4Addr::new(198, 51, 100, 2), 51821);
pub(super) const A_HOST: Ipv4Addr = Ipv4Addr::new(10, 1, 0, 5);
pub(super) const B_HOST: Ipv4Addr = Ipv4Addr::new(10, 2, 0, 7);
/// The only peer of each side's tunnel.
pub(super) const PEER: PeerId = PeerId(0);

/// A tunnel config with one peer.
pub(super) fn config(
    own_key: [u8; 32],
    local: SocketAddrV4,
    peer_key: [u8; 32],
    peer_endpoint: Option<SocketAddrV4>,
    peer_net: (Ipv4Addr, u8),
    keepalive_secs: u16,
) -> TunnelConfig {
    TunnelConfig {
        private_key: own_key,
        listen_port: local.port(),
        local_addr: *local.ip(),
        mtu: DEFAULT_MTU,
        peer_slots: Vec::new(),
        peers: vec![PeerConfig {
            public_key: super::public_key_of(&peer_key),
            endpoint: peer_endpoint,
            allowed_ips: vec![peer_net],
            persistent_keepalive_secs: keepalive_secs,
            preshared_key: None,
        }],
    }
}

/// An inner IPv4/UDP packet with `payload_len` bytes of a counting pattern.
pub(super) fn inner(pool: &mut PacketPool, src: Ipv4Addr, dst: Ipv4Addr, payload: usize) -> Packet {
    let total = 28 + payload;
    let mut b = vec![0u8; total];
    b[0] = 0x45;
    b[2..4].copy_from_slice(&(total as u16).to_be_bytes());
    b[8] = 64;
    b[9] = 17;
    b[12..16].copy_from_slice(&src.octets());
    b[16..20].copy_from_slice(&dst.octets());
    let c = checksum(&b[..20]);
    b[10..12].copy_from_slice(&c.to_be_bytes());
    b[20..22].copy_from_slice(&4000u16.to_be_bytes());
    b[22..24].copy_from_slice(&5000u16.to_be_bytes());
    b[24..26].copy_from_slice(&((8 + payload) as u16).to_be_bytes());
    for (i, x) in b[28..].iter_mut().enumerate() {
        *x = i as u8;
    }
    let s = combine(
        pseudo_header_v4(src, dst, 17, (8 + payload) as u16),
        sum(&b[20..]),
    );
    b[26..28].copy_from_slice(&(!fold(s)).to_be_bytes());
    pool.alloc_from(&b).expect("pool has room")
}

/// The WireGuard message type of an outer packet (0 when not parseable).
pub(super) fn msg_type(outer: &[u8]) -> u8 {
    Ipv4Packet::new_checked(outer)
        .ok()
        .and_then(|ip| {
            UdpPacket::new_checked(ip.payload())
                .ok()
                .map(|u| u.payload().first().copied())
        })
        .flatten()
        .unwrap_or(0)
}

/// The WireGuard message of an outer packet.
pub(super) fn msg_of(outer: &[u8]) -> &[u8] {
    &outer[28..]
}

/// Recomputes the outer UDP checksum after a test edited the packet.
pub(super) fn fix_udp_checksum(outer: &mut [u8]) {
    let src = Ipv4Addr::new(outer[12], outer[13], outer[14], outer[15]);
    let dst = Ipv4Addr::new(outer[16], outer[17], outer[18], outer[19]);
    UdpPacket::new_unchecked(&mut outer[20..]).fill_checksum(src, dst);
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Side {
    A,
    B,
}

impl Side {
    pub(super) fn other(self) -> Side {
        match self {
            Side::A => Side::B,
            Side::B => Side::A,
        }
    }
}

/// A message one side sent: when, who, and its WireGuard type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Sent {
    pub at: u64,
    pub from: Side,
    pub kind: u8,
}

/// Two tunnels wired back to back: A (10.1.0.0/24 behind it) and B
/// (10.2.0.0/24), each the other's only peer, on one fake clock.
pub(super) struct Pair {
    pub a: Tunnel,
    pub b: Tunnel,
    pub pool: PacketPool,
    pub now: u64,
    /// Everything the timers and replies sent, in order.
    pub log: Vec<Sent>,
    /// Inner packets delivered, per receiving side.
    pub delivered: Vec<(Side, Vec<u8>)>,
}

impl Pair {
    /// A → B has an endpoint; B learns A's from A's packets (roaming).
    pub(super) fn new(keepalive_a: u16, keepalive_b: u16) -> Pair {
        let now = SEC;
        let a_cfg = config(
            KEY_A,
            A_ADDR,
            KEY_B,
            Some(B_ADDR),
            (Ipv4Addr::new(10, 2, 0, 0), 24),
            keepalive_a,
        );
        let b_cfg = config(
            KEY_B,
            B_ADDR,
            KEY_A,
            None,
            (Ipv4Addr::new(10, 1, 0, 0), 24),
            keepalive_b,
        );
        Pair {
            a: Tunnel::new(&a_cfg, 0, 1, now).unwrap(),
            b: Tunnel::new(&b_cfg, 0, 1, now).unwrap(),
            pool: PacketPool::new(64),
            now,
            log: Vec::new(),
            delivered: Vec::new(),
        }
    }

    pub(super) fn tunnel(&mut self, side: Side) -> &mut Tunnel {
        match side {
            Side::A => &mut self.a,
            Side::B => &mut self.b,
        }
    }

    /// An inner packet from `from`'s site to the other's, encapsulated.
    pub(super) fn encap(&mut self, from: Side, payload: usize) -> (Encap, Packet) {
        let (src, dst) = match from {
            Side::A => (A_HOST, B_HOST),
            Side::B => (B_HOST, A_HOST),
        };
        let mut pkt = inner(&mut self.pool, src, dst, payload);
        let now = self.now;
        let r = self.tunnel(from).encapsulate(PEER, &mut pkt, now);
        (r, pkt)
    }

    /// Like [`Pair::encap`], insisting that it was encrypted.
    pub(super) fn send(&mut self, from: Side, payload: usize) -> Packet {
        let (r, pkt) = self.encap(from, payload);
        assert_eq!(r, Encap::Sent);
        pkt
    }

    /// Hands `pkt` to `to`; replies bounce back and forth until none is left.
    /// Returns what `to` did with the first packet.
    pub(super) fn deliver(&mut self, to: Side, pkt: Packet) -> Decap {
        let mut first = None;
        let mut next = Some((to, pkt));
        while let Some((side, mut pkt)) = next.take() {
            let now = self.now;
            let r = self.tunnel(side).decapsulate(&mut pkt, now);
            first.get_or_insert(r);
            match r {
                Decap::Reply(_) => {
                    self.log.push(Sent {
                        at: now,
                        from: side,
                        kind: msg_type(pkt.data()),
                    });
                    next = Some((side.other(), pkt));
                }
                Decap::Inner(_) => self.delivered.push((side, pkt.data().to_vec())),
                _ => {}
            }
        }
        first.unwrap()
    }

    /// A starts the handshake with a data packet; returns when both sides
    /// have a session.
    pub(super) fn handshake(&mut self) {
        let (r, init) = self.encap(Side::A, 20);
        assert_eq!(r, Encap::Handshake);
        self.log.push(Sent {
            at: self.now,
            from: Side::A,
            kind: msg_type(init.data()),
        });
        assert_eq!(self.deliver(Side::B, init), Decap::Reply(Some(PEER)));
    }

    /// Moves the clock `secs` seconds, one second at a time: each second
    /// both sides tick and what they send is delivered (`drop_from` loses
    /// the packets of one side on the way).
    pub(super) fn advance(&mut self, secs: u64, drop_from: Option<Side>) {
        for _ in 0..secs {
            self.now += SEC;
            for side in [Side::A, Side::B] {
                let mut out = Batch::new();
                let now = self.now;
                let Pair { a, b, pool, .. } = self;
                let t = if side == Side::A { a } else { b };
                t.tick(now, pool, &mut out);
                for pkt in out.drain().collect::<Vec<_>>() {
                    self.log.push(Sent {
                        at: now,
                        from: side,
                        kind: msg_type(pkt.data()),
                    });
                    if drop_from != Some(side) {
                        self.deliver(side.other(), pkt);
                    }
                }
            }
        }
    }

    /// Times of messages of `kind` sent by `from`.
    pub(super) fn sent(&self, from: Side, kind: u8) -> Vec<u64> {
        self.log
            .iter()
            .filter(|s| s.from == from && s.kind == kind)
            .map(|s| s.at)
            .collect()
    }
}
