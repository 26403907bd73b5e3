//! The WireGuard data path allocates nothing after `Tunnel::new`: a
//! counting global allocator watches data both ways, replayed packets,
//! timer ticks with keepalives and rekeys over 200 fake seconds. The one
//! exception is inside boringtun: its handshake code copies each AEAD
//! input into a `Vec` (`aead_chacha20_open_inner`), so a received
//! handshake message costs a few small allocations (bounded below);
//! handshakes happen once per peer every two minutes, and initiations
//! reach that code only with a valid MAC1 and under the rate limit.

use std::net::{Ipv4Addr, SocketAddrV4};

use patronus_engine::buffer::{Batch, Packet, PacketPool};
use patronus_engine::wg::{
    public_key_of, Decap, Encap, PeerConfig, PeerId, Tunnel, TunnelConfig, DEFAULT_MTU,
};
use patronus_engine::wire::checksum::checksum;

mod common;

#[global_allocator]
static GLOBAL: common::Counting = common::Counting;

const SEC: u64 = 1_000_000_000;
const PEER: PeerId = PeerId(0);

fn config(
    own: [u8; 32],
    local: SocketAddrV4,
    peer: [u8; 32],
    ep: SocketAddrV4,
    net: Ipv4Addr,
) -> TunnelConfig {
    TunnelConfig {
        private_key: own,
        listen_port: local.port(),
        local_addr: *local.ip(),
        mtu: DEFAULT_MTU,
        peer_slots: Vec::new(),
        peers: vec![PeerConfig {
            public_key: public_key_of(&peer),
            endpoint: Some(ep),
            allowed_ips: vec![(net, 24)],
            persistent_keepalive_secs: 7,
            preshared_key: Some([9; 32]),
        }],
    }
}

/// An inner IPv4 packet of `len` bytes from `src` (no heap: written into a pool buffer).
fn inner(pool: &mut PacketPool, src: Ipv4Addr, dst: Ipv4Addr, len: usize) -> Packet {
    let mut p = pool.alloc().expect("pool has room");
    let d = p.append(len).unwrap();
    d.fill(0xab);
    d[0] = 0x45;
    d[1] = 0;
    d[2..4].copy_from_slice(&(len as u16).to_be_bytes());
    d[8] = 64;
    d[9] = 17;
    d[10..12].copy_from_slice(&[0, 0]);
    d[12..16].copy_from_slice(&src.octets());
    d[16..20].copy_from_slice(&dst.octets());
    let c = checksum(&d[..20]);
    d[10..12].copy_from_slice(&c.to_be_bytes());
    p
}

/// Allocations seen, by what was being processed.
#[derive(Default, Debug)]
struct Seen {
    /// Data messages (incl. keepalives), encapsulation and ticks: must be 0.
    data: u64,
    /// Received handshake messages, and how many there were.
    handshake: u64,
    handshake_msgs: u64,
}

/// Runs `f` and charges its allocations to `handshake` or `data`.
fn counted<R>(seen: &mut Seen, handshake: bool, f: impl FnOnce() -> R) -> R {
    common::self_check();
    common::start();
    let r = f();
    let n = common::stop();
    if handshake {
        seen.handshake += n;
        seen.handshake_msgs += 1;
    } else {
        seen.data += n;
    }
    r
}

/// Delivers `pkt` to `to`, bouncing replies until none is left; returns
/// how many inner packets came out.
fn deliver(
    seen: &mut Seen,
    a: &mut Tunnel,
    b: &mut Tunnel,
    to_b: bool,
    mut pkt: Packet,
    now: u64,
) -> usize {
    let mut to_b = to_b;
    let mut inner = 0;
    loop {
        let t = if to_b { &mut *b } else { &mut *a };
        // Outer IPv4 (20) + UDP (8), then the message type.
        let handshake = matches!(pkt.data().get(28), Some(1..=3));
        match counted(seen, handshake, || t.decapsulate(&mut pkt, now)) {
            Decap::Reply(_) => to_b = !to_b,
            Decap::Inner(_) => {
                inner += 1;
                return inner;
            }
            _ => return inner,
        }
    }
}

#[test]
fn wg_packet_path_does_not_allocate() {
    let (ka, kb) = ([0x11; 32], [0x22; 32]);
    let a_addr = SocketAddrV4::new(Ipv4Addr::new(192, 0, 2, 1), 51820);
    let b_addr = SocketAddrV4::new(Ipv4Addr::new(198, 51, 100, 2), 51821);
    let (a_net, b_net) = (Ipv4Addr::new(10, 1, 0, 0), Ipv4Addr::new(10, 2, 0, 0));
    let (a_host, b_host) = (Ipv4Addr::new(10, 1, 0, 5), Ipv4Addr::new(10, 2, 0, 7));
    let mut now = SEC;
    let mut a = Tunnel::new(&config(ka, a_addr, kb, b_addr, b_net), 0, 1, now).unwrap();
    let mut b = Tunnel::new(&config(kb, b_addr, ka, a_addr, a_net), 0, 1, now).unwrap();
    let mut pool = PacketPool::new(512);
    let mut out = Batch::new();
    // Warm up the process-wide lazies (thread-local clock, OS RNG) once.
    let mut seen = Seen::default();
    let mut pkt = inner(&mut pool, a_host, b_host, 60);
    assert_eq!(a.encapsulate(PEER, &mut pkt, now), Encap::Handshake);
    deliver(&mut seen, &mut a, &mut b, true, pkt, now);
    let mut replay = pool.alloc().unwrap();

    let mut seen = Seen::default();
    let mut delivered = 0usize;
    let handshakes_before = a.peer_counters(PEER).unwrap().handshakes_completed;
    // 200 s in 1 s steps: crosses REKEY_AFTER_TIME, keepalives every 7 s.
    for step in 0..200u64 {
        now += SEC;
        for (from_a, len) in [(true, 60usize), (false, 1400), (true, 1420)] {
            let (src, dst) = if from_a {
                (a_host, b_host)
            } else {
                (b_host, a_host)
            };
            let mut pkt = inner(&mut pool, src, dst, len);
            let t = if from_a { &mut a } else { &mut b };
            match counted(&mut seen, false, || t.encapsulate(PEER, &mut pkt, now)) {
                Encap::Sent | Encap::Handshake => {}
                other => panic!("step {step}: {other:?}"),
            }
            if step % 10 == 0 {
                // Keep a copy to replay later.
                replay.truncate(0);
                replay
                    .append(pkt.len())
                    .unwrap()
                    .copy_from_slice(pkt.data());
            }
            delivered += deliver(&mut seen, &mut a, &mut b, from_a, pkt, now);
        }
        let mut copy = pool.alloc().unwrap();
        copy.append(replay.len())
            .unwrap()
            .copy_from_slice(replay.data());
        deliver(&mut seen, &mut a, &mut b, true, copy, now);
        for side in 0..2 {
            let t = if side == 0 { &mut a } else { &mut b };
            counted(&mut seen, false, || t.tick(now, &mut pool, &mut out));
            while let Some(pkt) = out.pop() {
                deliver(&mut seen, &mut a, &mut b, side == 0, pkt, now);
            }
        }
    }
    assert_eq!(
        seen.data, 0,
        "allocations on the WireGuard data path: {seen:?}"
    );
    // boringtun's handshake code: at most 3 small copies per message (an
    // initiation: our identification + its two AEAD opens).
    assert!(seen.handshake_msgs >= 2, "{seen:?}");
    assert!(seen.handshake <= 3 * seen.handshake_msgs, "{seen:?}");
    // The run did what it claims.
    let (ca, cb) = (
        *a.peer_counters(PEER).unwrap(),
        *b.peer_counters(PEER).unwrap(),
    );
    assert!(delivered >= 550, "delivered {delivered}");
    assert!(
        ca.handshakes_completed > handshakes_before,
        "rekeyed: {ca:?}"
    );
    assert!(
        cb.drops[patronus_engine::wg::WgDrop::Replay.index()] > 0,
        "replays seen: {cb:?}"
    );
    assert!(ca.keepalives_sent + cb.keepalives_sent > 0);
}
