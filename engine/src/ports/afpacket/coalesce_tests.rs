//! Coalescing round trip: frames merged into a superframe and cut again by
//! the engine's own software GSO (which does what the kernel's does) come
//! back byte for byte; frames that break a rule are not merged.

use super::super::offload::{csum_add, deliver, fold, VnetHdr};
use super::*;
use crate::buffer::{Batch, PacketPool};

const TCP_FIN: u8 = 0x01;

fn ipv4(f: &mut [u8], proto: u8, ident: u16) {
    let tot = (f.len() - ETH_LEN) as u16;
    f[0..6].copy_from_slice(&[2, 0, 0, 0, 0, 2]);
    f[6..12].copy_from_slice(&[2, 0, 0, 0, 0, 1]);
    f[12..14].copy_from_slice(&[0x08, 0x00]);
    f[14] = 0x45;
    f[16..18].copy_from_slice(&tot.to_be_bytes());
    f[18..20].copy_from_slice(&ident.to_be_bytes());
    f[20] = 0x40;
    f[22] = 63;
    f[23] = proto;
    f[26..30].copy_from_slice(&[10, 0, 0, 1]);
    f[30..34].copy_from_slice(&[10, 0, 0, 2]);
    let hc = !fold(csum_add(0, &f[14..34]));
    f[24..26].copy_from_slice(&hc.to_be_bytes());
}

fn l4_csum(f: &mut [u8], proto: u8, at: usize) {
    let l4_len = f.len() - L4;
    f[at..at + 2].copy_from_slice(&[0, 0]);
    let pseudo = csum_add(0, &f[26..34]) + u64::from(proto) + l4_len as u64;
    let c = !fold(csum_add(pseudo, &f[L4..]));
    let c = if c == 0 && proto == PROTO_UDP {
        0xffff
    } else {
        c
    };
    f[at..at + 2].copy_from_slice(&c.to_be_bytes());
}

fn udp(payload: usize, ident: u16, fill: u8) -> Vec<u8> {
    let mut f = vec![0; L4 + UDP_LEN + payload];
    f[L4 + UDP_LEN..].fill(fill);
    ipv4(&mut f, PROTO_UDP, ident);
    f[34..36].copy_from_slice(&51820u16.to_be_bytes());
    f[36..38].copy_from_slice(&51820u16.to_be_bytes());
    f[38..40].copy_from_slice(&((UDP_LEN + payload) as u16).to_be_bytes());
    l4_csum(&mut f, PROTO_UDP, L4 + 6);
    f
}

/// TCP with a 12-byte timestamp option.
fn tcp(payload: usize, ident: u16, seq: u32, flags: u8) -> Vec<u8> {
    let mut f = vec![0u8; L4 + 32 + payload];
    for (i, b) in f[L4 + 32..].iter_mut().enumerate() {
        *b = (i as u32 + seq) as u8;
    }
    ipv4(&mut f, PROTO_TCP, ident);
    let t = &mut f[L4..];
    t[0..2].copy_from_slice(&40000u16.to_be_bytes());
    t[2..4].copy_from_slice(&5201u16.to_be_bytes());
    t[4..8].copy_from_slice(&seq.to_be_bytes());
    t[8..12].copy_from_slice(&77u32.to_be_bytes());
    t[12] = 8 << 4;
    t[13] = flags;
    t[14..16].copy_from_slice(&502u16.to_be_bytes());
    t[20..32].copy_from_slice(&[1, 1, 8, 10, 0, 0, 0, 9, 0, 0, 0, 7]);
    l4_csum(&mut f, PROTO_TCP, L4 + 16);
    f
}

/// Coalesces all of `frames` (asserting it may) and returns the
/// superframe and its vnet header.
fn coalesce_all(frames: &[Vec<u8>]) -> (Vec<u8>, VnetHdr) {
    let mut run = Run::new(parse(&frames[0]).expect("first is a candidate"));
    for (k, f) in frames.iter().enumerate().skip(1) {
        let s = parse(f).expect("candidate");
        assert!(run.extend(&frames[0], f, &s), "frame {k} joins");
    }
    let mut sup = frames[0].clone();
    let vnet = run.finish(&mut sup);
    for f in &frames[1..] {
        sup.extend_from_slice(&f[run.hdr_len()..]);
    }
    (sup, VnetHdr::parse(&vnet))
}

fn resegment(sup: &[u8], vnet: &VnetHdr) -> Vec<Vec<u8>> {
    let mut pool = PacketPool::new(80);
    let mut batch = Batch::new();
    let d = deliver(sup, vnet, &mut pool, &mut batch).unwrap();
    assert_eq!(d.dropped, 0);
    batch.packets().iter().map(|p| p.data().to_vec()).collect()
}

#[test]
fn udp_run_round_trips() {
    let mut frames: Vec<Vec<u8>> = (0..5).map(|i| udp(1452, 100 + i, i as u8)).collect();
    frames.push(udp(300, 105, 9));
    let (sup, vnet) = coalesce_all(&frames);
    assert_eq!(vnet.gso_type, VNET_GSO_UDP_L4);
    assert_eq!(
        (vnet.gso_size, vnet.csum_start, vnet.csum_offset),
        (1452, 34, 6)
    );
    assert_eq!(vnet.flags, VNET_F_NEEDS_CSUM);
    assert_eq!(
        usize::from(u16::from_be_bytes([sup[16], sup[17]])),
        sup.len() - 14
    );
    assert_eq!(fold(csum_add(0, &sup[14..34])), 0xffff, "IPv4 checksum");
    assert!(resegment(&sup, &vnet) == frames);
}

#[test]
fn tcp_run_round_trips_with_psh_on_the_last() {
    let mss = 1368;
    let mut frames: Vec<Vec<u8>> = (0..4)
        .map(|i| tcp(mss, 7 + i, 1000 + u32::from(i) * mss as u32, TCP_ACK))
        .collect();
    frames.push(tcp(200, 11, 1000 + 4 * mss as u32, TCP_ACK | TCP_PSH));
    let (sup, vnet) = coalesce_all(&frames);
    assert_eq!(vnet.gso_type, VNET_GSO_TCPV4);
    assert_eq!(
        (vnet.gso_size, vnet.hdr_len, vnet.csum_offset),
        (mss as u16, 66, 16)
    );
    assert_eq!(sup[L4 + 13], TCP_ACK | TCP_PSH);
    assert!(resegment(&sup, &vnet) == frames);
}

#[test]
fn frames_that_break_a_rule_end_the_run() {
    let mss = 1000;
    let a = tcp(mss, 1, 0, TCP_ACK);
    let s = |f: &Vec<u8>| parse(f).unwrap();
    let joins = |b: &Vec<u8>| Run::new(s(&a)).extend(&a, b, &s(b));
    assert!(joins(&tcp(mss, 2, mss as u32, TCP_ACK)));
    // Sequence gap, another flow, another ack, different options, a
    // larger segment after the first.
    assert!(!joins(&tcp(mss, 2, mss as u32 + 1, TCP_ACK)));
    let mut other = tcp(mss, 2, mss as u32, TCP_ACK);
    other[L4 + 1] ^= 1;
    assert!(!joins(&other));
    let mut ack = tcp(mss, 2, mss as u32, TCP_ACK);
    ack[L4 + 11] ^= 1;
    assert!(!joins(&ack));
    let mut opt = tcp(mss, 2, mss as u32, TCP_ACK);
    opt[L4 + 31] ^= 1;
    assert!(!joins(&opt));
    assert!(!joins(&tcp(mss + 1, 2, mss as u32, TCP_ACK)));
    // Nothing after a short segment or a PSH.
    let mut r = Run::new(s(&a));
    let short = tcp(mss - 1, 2, mss as u32, TCP_ACK);
    assert!(r.extend(&a, &short, &s(&short)));
    let next = tcp(mss - 1, 3, 2 * mss as u32 - 1, TCP_ACK);
    assert!(!r.extend(&a, &next, &s(&next)));
    let psh = tcp(mss, 1, 0, TCP_ACK | TCP_PSH);
    let mut r = Run::new(s(&psh));
    assert!(!r.extend(&psh, &a, &s(&a)));
    // Not candidates: FIN, no payload, IPv4 options, fragments.
    assert!(parse(&tcp(mss, 1, 0, TCP_ACK | TCP_FIN)).is_none());
    assert!(parse(&tcp(0, 1, 0, TCP_ACK)).is_none());
    let mut opts = udp(100, 1, 0);
    opts[14] = 0x46;
    assert!(parse(&opts).is_none());
    let mut frag = udp(100, 1, 0);
    frag[20] |= 0x20;
    assert!(parse(&frag).is_none());
    // UDP: other ports or TTL end it; so would a 65th frame.
    let u = udp(100, 1, 0);
    let mut r = Run::new(s(&u));
    let mut ttl = udp(100, 2, 0);
    ttl[22] -= 1;
    assert!(!r.extend(&u, &ttl, &s(&ttl)));
    for k in 1..MAX_SEGS {
        let f = udp(100, k as u16, 0);
        assert!(r.extend(&u, &f, &s(&f)), "frame {k}");
    }
    let f = udp(100, 99, 0);
    assert!(!r.extend(&u, &f, &s(&f)));
}

#[test]
fn frames_with_bad_checksums_are_not_merged() {
    let mss = 500;
    let s = |f: &Vec<u8>| parse(f).unwrap();
    let a = tcp(mss, 1, 0, TCP_ACK);
    let b = tcp(mss, 2, mss as u32, TCP_ACK);
    let mut bad_b = b.clone();
    bad_b[L4 + 40] ^= 0x01;
    let mut r = Run::new(s(&a));
    assert!(!r.extend(&a, &bad_b, &s(&bad_b)), "corrupt second frame");
    assert!(r.extend(&a, &b, &s(&b)));
    let mut bad_a = a.clone();
    bad_a[L4 + 40] ^= 0x01;
    let mut r = Run::new(s(&bad_a));
    assert!(!r.extend(&bad_a, &b, &s(&b)), "corrupt first frame");
    // UDP without a checksum (0) may join: it gains one.
    let u = udp(100, 1, 3);
    let mut none = udp(100, 2, 4);
    none[L4 + 6..L4 + 8].copy_from_slice(&[0, 0]);
    let mut bad = udp(100, 2, 4);
    bad[L4 + 9] ^= 0x10;
    let mut r = Run::new(s(&u));
    assert!(!r.extend(&u, &bad, &s(&bad)));
    assert!(r.extend(&u, &none, &s(&none)));
}

#[test]
fn a_checksum_known_right_is_not_read_again() {
    // The port vouches for both frames (it computed their checksums), so the
    // run takes them without reading the payload: the corrupt byte below
    // stands for a payload the coalescer never looks at.
    let mss = 500;
    let s = |f: &Vec<u8>| parse(f).unwrap();
    let a = tcp(mss, 1, 0, TCP_ACK);
    let mut b = tcp(mss, 2, mss as u32, TCP_ACK);
    b[L4 + 40] ^= 0x01;
    let mut r = Run::new(s(&a));
    assert!(
        !r.extend_known(&a, &b, &s(&b), [true, false]),
        "b is verified"
    );
    assert!(
        r.extend_known(&a, &b, &s(&b), [false, true]),
        "b is vouched for"
    );
    // Known checksums do not loosen any other rule.
    let gap = tcp(mss, 3, 3 * mss as u32, TCP_ACK);
    assert!(!r.extend_known(&a, &gap, &s(&gap), [true, true]));
}
