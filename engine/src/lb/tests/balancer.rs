//! The balancer on raw IPv4 packets: TCP state of pins (FIN/RST make a
//! flow closing; a SYN reusing a closing flow's tuple is balanced afresh),
//! closing flows expire sooner, a full pin table drops new NAT flows,
//! replies without a pin are left alone, checksums stay valid.

use std::sync::Arc;

use crate::lb::balancer::{Balancer, Dir, LbVerdict};
use crate::lb::counters::BackendCounters;
use crate::lb::plan::{LbPlan, SlotMap};
use crate::lb::spec::{BackendSpec, LbMode, LbSettings, LbSpec, VipSpec};

const SYN: u8 = 0x02;
const ACK: u8 = 0x10;
const FIN: u8 = 0x01;

fn tcp(sport: u16, flags: u8) -> Vec<u8> {
    let mut p = vec![0u8; 40];
    p[0] = 0x45;
    p[2..4].copy_from_slice(&40u16.to_be_bytes());
    p[8] = 64;
    p[9] = 6;
    p[12..16].copy_from_slice(&[10, 1, 0, 2]);
    p[16..20].copy_from_slice(&[10, 9, 0, 1]);
    p[20..22].copy_from_slice(&sport.to_be_bytes());
    p[22..24].copy_from_slice(&80u16.to_be_bytes());
    p[33] = flags;
    p
}

fn plan(spec: &LbSpec, slots: &mut SlotMap) -> Arc<LbPlan> {
    Arc::new(LbPlan::build(spec, slots, Arc::new(BackendCounters::new(1)), 1).unwrap())
}

fn spec(weights: &[u16], max_flows: usize) -> LbSpec {
    LbSpec {
        settings: LbSettings {
            max_flows,
            ..Default::default()
        },
        vips: vec![VipSpec {
            id: 1,
            addr: u32::from_be_bytes([10, 9, 0, 1]),
            port: 80,
            proto: 6,
            mode: LbMode::Nat,
            table_size: 0,
            backends: weights
                .iter()
                .enumerate()
                .map(|(i, &weight)| BackendSpec {
                    id: i as u32 + 1,
                    addr: u32::from_be_bytes([10, 2, 0, 11 + i as u8]),
                    port: 8080,
                    weight,
                    up: true,
                })
                .collect(),
        }],
    }
}

/// Sends `p` forward; returns the backend's last address byte.
fn send(b: &mut Balancer, mut p: Vec<u8>, now: u64) -> u8 {
    assert_eq!(b.handle(&mut p, Dir::Forward(0), now), LbVerdict::Nat);
    p[19]
}

#[test]
fn a_syn_reusing_a_closing_flow_is_balanced_afresh() {
    let mut slots = SlotMap::default();
    let mut s = spec(&[1, 1], 64);
    let mut b = Balancer::new(plan(&s, &mut slots), 0, 1);
    // Find a client port whose flow lands on the first backend.
    let sport = (1000..2000u16)
        .find(|&p| {
            let mut probe = Balancer::new(plan(&s, &mut SlotMap::default()), 0, 1);
            send(&mut probe, tcp(p, SYN), 1) == 11
        })
        .unwrap();
    assert_eq!(send(&mut b, tcp(sport, SYN), 1), 11);
    // Drain it: the open connection stays, and a retransmitted SYN too.
    s.vips[0].backends[0].weight = 0;
    b.set_plan(plan(&s, &mut slots));
    assert_eq!(send(&mut b, tcp(sport, ACK), 2), 11);
    assert_eq!(send(&mut b, tcp(sport, SYN), 3), 11);
    // The connection closes; a new one from the same port goes elsewhere.
    assert_eq!(send(&mut b, tcp(sport, FIN | ACK), 4), 11);
    assert_eq!(send(&mut b, tcp(sport, SYN), 5), 12);
    assert_eq!(b.pins().len(), 1);
    assert_eq!(b.counters().repinned, 0, "not a backend failure");
}

#[test]
fn closing_flows_expire_after_the_short_timeout() {
    let mut b = Balancer::new(plan(&spec(&[1], 64), &mut SlotMap::default()), 0, 1);
    send(&mut b, tcp(1, SYN), 0);
    send(&mut b, tcp(2, SYN), 0);
    send(&mut b, tcp(2, FIN | ACK), 0);
    let s = 1_000_000_000u64;
    b.expire(11 * s, 64);
    assert_eq!(b.pins().len(), 1, "the closing one went after 10 s");
    b.expire(899 * s, 64);
    assert_eq!(b.pins().len(), 1);
    b.expire(901 * s, 64);
    assert_eq!(b.pins().len(), 0, "the open one after 900 s");
    assert_eq!(b.counters().flows_expired, 2);
}

#[test]
fn a_full_pin_table_drops_new_nat_flows_and_balances_dsr_unpinned() {
    let mut b = Balancer::new(plan(&spec(&[1, 1, 1], 4), &mut SlotMap::default()), 0, 1);
    let mut verdicts = Vec::new();
    for p in 0..20u16 {
        let mut pkt = tcp(p, SYN);
        verdicts.push(b.handle(&mut pkt, Dir::Forward(0), 1));
    }
    assert!(verdicts[..4].iter().all(|v| *v == LbVerdict::Nat));
    assert!(verdicts[4..]
        .iter()
        .all(|v| *v == LbVerdict::Drop(crate::lb::LbDrop::TableFull)));
    assert_eq!((b.pins().len(), b.counters().flows_table_full), (4, 16));
    // DSR: replies bypass the engine, so unpinned flows are still served,
    // each on one backend while the pool is unchanged.
    let mut s = spec(&[1, 1, 1], 4);
    s.vips[0].mode = LbMode::Dsr;
    for be in &mut s.vips[0].backends {
        be.port = 80;
    }
    let mut b = Balancer::new(plan(&s, &mut SlotMap::default()), 0, 1);
    let pick = |b: &mut Balancer, p: u16, flags: u8| {
        let mut pkt = tcp(p, flags);
        match b.handle(&mut pkt, Dir::Forward(0), 1) {
            LbVerdict::Dsr { backend } => backend,
            v => panic!("{v:?}"),
        }
    };
    let first: Vec<u32> = (0..20u16).map(|p| pick(&mut b, p, SYN)).collect();
    let again: Vec<u32> = (0..20u16).map(|p| pick(&mut b, p, ACK)).collect();
    assert_eq!(first, again);
    assert_eq!(b.counters().flows_table_full, 32);
}

#[test]
fn a_reply_without_a_pin_is_left_alone() {
    // A client talking to a backend's own address and port (or a health
    // check crossing the engine): its replies keep the backend's address.
    let mut b = Balancer::new(plan(&spec(&[1], 64), &mut SlotMap::default()), 0, 1);
    let mut r = tcp(80, ACK);
    r[12..16].copy_from_slice(&[10, 2, 0, 11]);
    r[20..22].copy_from_slice(&8080u16.to_be_bytes());
    let before = r.clone();
    assert!(b.match_packet(&r).is_some(), "a candidate reply");
    assert_eq!(b.handle(&mut r, Dir::Reply, 1), LbVerdict::NotLb);
    assert_eq!(r, before);
}

/// A TCP or UDP packet with valid checksums and `payload`.
fn with_checksums(
    proto: u8,
    src: u32,
    sport: u16,
    dst: u32,
    dport: u16,
    payload: &[u8],
) -> Vec<u8> {
    use crate::wire::checksum::{checksum, combine, fold, pseudo_header_v4, sum};
    let l4len = if proto == 6 { 20 } else { 8 } + payload.len();
    let mut p = vec![0u8; 20 + l4len];
    p[0] = 0x45;
    p[2..4].copy_from_slice(&((20 + l4len) as u16).to_be_bytes());
    p[8] = 64;
    p[9] = proto;
    p[12..16].copy_from_slice(&src.to_be_bytes());
    p[16..20].copy_from_slice(&dst.to_be_bytes());
    let c = checksum(&p[..20]);
    p[10..12].copy_from_slice(&c.to_be_bytes());
    p[20..22].copy_from_slice(&sport.to_be_bytes());
    p[22..24].copy_from_slice(&dport.to_be_bytes());
    if proto == 6 {
        p[32] = 0x50;
        p[33] = ACK;
    } else {
        p[24..26].copy_from_slice(&(l4len as u16).to_be_bytes());
    }
    let h = if proto == 6 { 40 } else { 28 };
    p[h..].copy_from_slice(payload);
    let ph = pseudo_header_v4(src.into(), dst.into(), proto, l4len as u16);
    let mut c = !fold(combine(ph, sum(&p[20..])));
    if proto == 17 && c == 0 {
        c = 0xffff;
    }
    let at = if proto == 6 { 36 } else { 26 };
    p[at..at + 2].copy_from_slice(&c.to_be_bytes());
    p
}

fn checksums_valid(p: &[u8]) -> bool {
    use crate::wire::checksum::{checksum, combine, fold, pseudo_header_v4, sum};
    let src = u32::from_be_bytes([p[12], p[13], p[14], p[15]]);
    let dst = u32::from_be_bytes([p[16], p[17], p[18], p[19]]);
    let ph = pseudo_header_v4(src.into(), dst.into(), p[9], (p.len() - 20) as u16);
    checksum(&p[..20]) == 0 && fold(combine(ph, sum(&p[20..]))) == 0xffff
}

proptest::proptest! {
    /// Both directions keep valid checksums whatever the addresses, ports
    /// and payload, and the reply is the request's mirror.
    #[test]
    fn translations_keep_checksums_valid(
        tcp_proto in proptest::bool::ANY,
        src in 1u32..,
        sport in 1u16..,
        payload in proptest::collection::vec(proptest::num::u8::ANY, 0..64),
    ) {
        let proto = if tcp_proto { 6 } else { 17 };
        let mut s = spec(&[1, 2, 3], 64);
        s.vips[0].proto = proto;
        let mut b = Balancer::new(plan(&s, &mut SlotMap::default()), 0, 1);
        let vip = u32::from_be_bytes([10, 9, 0, 1]);
        let mut p = with_checksums(proto, src, sport, vip, 80, &payload);
        proptest::prop_assert_eq!(b.handle(&mut p, Dir::Forward(0), 1), LbVerdict::Nat);
        proptest::prop_assert!(checksums_valid(&p));
        let backend = u32::from_be_bytes([p[16], p[17], p[18], p[19]]);
        proptest::prop_assert_eq!(u16::from_be_bytes([p[22], p[23]]), 8080);
        let mut r = with_checksums(proto, backend, 8080, src, sport, &payload);
        proptest::prop_assert_eq!(b.handle(&mut r, Dir::Reply, 2), LbVerdict::Nat);
        proptest::prop_assert!(checksums_valid(&r));
        proptest::prop_assert_eq!(&r[12..16], &vip.to_be_bytes());
        proptest::prop_assert_eq!(u16::from_be_bytes([r[20], r[21]]), 80);
    }
}

#[test]
fn replies_find_their_pins_with_two_vips_on_one_address() {
    // A TCP and a UDP VIP on one address, the same backends (as the e2e).
    let mut s = spec(&[1, 2, 1], 64);
    let mut udp = s.vips[0].clone();
    udp.id = 2;
    udp.port = 5353;
    udp.proto = 17;
    for (j, b) in udp.backends.iter_mut().enumerate() {
        b.id = 100 + j as u32;
        b.port = 5353;
    }
    s.vips.push(udp);
    let mut b = Balancer::new(plan(&s, &mut SlotMap::default()), 0, 1);
    let vip = u32::from_be_bytes([10, 9, 0, 1]);
    let client = u32::from_be_bytes([10, 1, 0, 2]);
    for sport in 40000..40050u16 {
        // Short datagrams: the IP packet ends 4 bytes after the ports.
        let mut p = with_checksums(17, client, sport, vip, 5353, b"q");
        let m = b.match_packet(&p).unwrap();
        assert_eq!(b.handle(&mut p, m.dir, 1), LbVerdict::Nat);
        let backend = u32::from_be_bytes([p[16], p[17], p[18], p[19]]);
        let mut r = with_checksums(17, backend, 5353, client, sport, b"a");
        let m = b.match_packet(&r).unwrap();
        assert_eq!(m.dir, Dir::Reply);
        assert_eq!(b.handle(&mut r, m.dir, 2), LbVerdict::Nat, "sport {sport}");
        assert_eq!(&r[12..16], &vip.to_be_bytes());
        // The fast path's step on the same short reply.
        let mut r = with_checksums(17, backend, 5353, client, sport, b"a");
        assert_eq!(b.fast(&mut r, 3), crate::lb::balancer::Fast::Done);
        assert_eq!(&r[12..16], &vip.to_be_bytes());
    }
}
