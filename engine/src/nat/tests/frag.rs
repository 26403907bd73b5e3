//! Fragments: later fragments follow the first fragment's translation;
//! without it (reordered, aged out) they are dropped and counted.

use super::pkt::*;
use crate::nat::*;

fn big_udp(src: (std::net::Ipv4Addr, u16), dst: (std::net::Ipv4Addr, u16)) -> Vec<u8> {
    let payload: Vec<u8> = (0..100u8).collect();
    udp(src, dst, &payload)
}

/// Reassembles two fragments (first, later) into one datagram.
fn reassemble(f1: &[u8], f2: &[u8]) -> Vec<u8> {
    let mut p = f1.to_vec();
    p[6] = 0;
    p.extend_from_slice(&f2[20..]);
    let total = p.len() as u16;
    p[2..4].copy_from_slice(&total.to_be_bytes());
    p[10..12].copy_from_slice(&[0, 0]);
    let c = crate::wire::checksum::checksum(&p[..20]);
    p[10..12].copy_from_slice(&c.to_be_bytes());
    p
}

#[test]
fn later_fragments_follow_the_first_both_ways() {
    let mut nat = Nat::new(cfg()).unwrap();
    let mut x = udp((B, 7000), (R1, 1), b"");
    nat.outbound(&mut x, 0);
    let (mut f1, mut f2) = fragment(&big_udp((A, 7000), (R1, 53)), 48);
    assert_eq!(nat.outbound(&mut f1, 0), Verdict::Translated);
    assert!(ip_ok(&f1));
    assert_eq!(nat.outbound(&mut f2, SEC), Verdict::Translated);
    assert!(ip_ok(&f2));
    assert_eq!(addr(&f2, 12), POOL1);
    let whole = reassemble(&f1, &f2);
    assert!(
        checksums_ok(&whole),
        "the first fragment's UDP checksum covers the whole change"
    );
    let out = src(&whole);
    assert_ne!(out.1, 7000);
    // And inbound.
    let (mut r1, mut r2) = fragment(&big_udp((R1, 53), out), 48);
    assert_eq!(nat.inbound(&mut r1, SEC), Verdict::Translated);
    assert_eq!(nat.inbound(&mut r2, SEC), Verdict::Translated);
    let whole = reassemble(&r1, &r2);
    assert!(checksums_ok(&whole));
    assert_eq!(dst(&whole), (A, 7000));
    assert_eq!(nat.counters().fragments_translated, 2);
}

#[test]
fn later_fragment_without_state_is_dropped() {
    let mut nat = Nat::new(cfg()).unwrap();
    let (mut f1, mut f2) = fragment(&big_udp((A, 7000), (R1, 53)), 48);
    // Reordered: the later fragment first.
    let mut early = f2.clone();
    assert_eq!(
        nat.outbound(&mut early, 0),
        Verdict::Drop(NatDrop::FragmentNoState)
    );
    assert_eq!(nat.outbound(&mut f1, 0), Verdict::Translated);
    // Aged out (2 s).
    assert_eq!(
        nat.outbound(&mut f2, 2 * SEC),
        Verdict::Drop(NatDrop::FragmentNoState)
    );
    assert_eq!(nat.counters().dropped_fragment, 2);
    // Inbound later fragment with no first fragment.
    let (_, mut r2) = fragment(&big_udp((R1, 53), (POOL1, 7000)), 48);
    assert_eq!(
        nat.inbound(&mut r2, 0),
        Verdict::Drop(NatDrop::FragmentNoState)
    );
}
