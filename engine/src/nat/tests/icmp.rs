//! ICMP: echo id translation, and errors translated both ways, checked
//! byte for byte against the error the far side would have received
//! without NAT, and by recomputing every checksum.

use super::pkt::*;
use crate::nat::*;

#[test]
fn echo_ids_are_translated_and_restored() {
    let mut nat = Nat::new(cfg()).unwrap();
    let mut a = echo(A, R1, 8, 7, 1);
    let mut b = echo(B, R1, 8, 7, 1);
    let mut c = echo(B, R1, 8, 40000, 1);
    assert_translated(nat.outbound(&mut a, 0), &a);
    assert_translated(nat.outbound(&mut b, 0), &b);
    assert_translated(nat.outbound(&mut c, 0), &c);
    assert_eq!(src(&a).0, POOL1);
    assert!(src(&a).1 >= 1024, "id 7 is below the dynamic range");
    assert_ne!(
        src(&a).1,
        src(&b).1,
        "two hosts, same id: distinct outside ids"
    );
    assert_eq!(src(&c), (POOL1, 40000), "ids are preserved like ports");
    for (out, host) in [(src(&a), A), (src(&b), B)] {
        let mut r = echo(R1, POOL1, 0, out.1, 1);
        assert_translated(nat.inbound(&mut r, 1), &r);
        assert_eq!(dst(&r), (host, 7));
        // Byte-exact: what the host would get without NAT.
        assert_eq!(r, echo(R1, host, 0, 7, 1));
    }
    // An echo reply for an id nobody uses.
    let mut r = echo(R1, POOL1, 0, 5555, 1);
    assert_eq!(nat.inbound(&mut r, 1), Verdict::Drop(NatDrop::NoSession));
}

#[test]
fn inbound_error_about_udp_restores_the_original_packet() {
    let mut nat = Nat::new(cfg()).unwrap();
    let original = udp((A, 40000), (R1, 53), b"query");
    let mut p = original.clone();
    nat.outbound(&mut p, 0);
    // Port unreachable from R1 quoting the whole translated datagram.
    for (ty, code) in [(3, 3), (11, 0), (3, 4)] {
        let mut err = icmp_error(R1, POOL1, ty, code, &p);
        assert_translated(nat.inbound(&mut err, 1), &err);
        assert_eq!(
            err,
            icmp_error(R1, A, ty, code, &original),
            "type {ty} code {code}"
        );
    }
    assert_eq!(nat.counters().icmp_errors_translated, 3);
    // Errors do not create or refresh sessions.
    assert_eq!(
        nat.sessions(None, 0, 1).next().unwrap().1.expires_in_nanos,
        300 * SEC - 1
    );
}

#[test]
fn inbound_error_about_tcp_with_a_short_quote() {
    let mut nat = Nat::new(cfg()).unwrap();
    // Take A's port so the outside port differs from the inside one.
    let mut x = tcp((B, 50000), (R2, 1), crate::wire::tcp::SYN);
    nat.outbound(&mut x, 0);
    let original = tcp((A, 50000), (R1, 80), crate::wire::tcp::SYN);
    let mut p = original.clone();
    nat.outbound(&mut p, 0);
    assert_ne!(src(&p).1, 50000);
    // RFC 792 minimum quote: IP header + 8 bytes (no TCP checksum in it).
    let mut err = icmp_error(R2, POOL1, 11, 0, &p[..28]);
    assert_translated(nat.inbound(&mut err, 1), &err);
    assert_eq!(err, icmp_error(R2, A, 11, 0, &original[..28]));
    // A 576-byte style quote with the TCP checksum: fixed too.
    let mut err = icmp_error(R2, POOL1, 3, 1, &p[..40]);
    assert_translated(nat.inbound(&mut err, 1), &err);
    assert_eq!(err, icmp_error(R2, A, 3, 1, &original[..40]));
}

#[test]
fn inbound_error_about_an_echo_request() {
    let mut nat = Nat::new(cfg()).unwrap();
    let original = echo(A, R1, 8, 9, 3);
    let mut p = original.clone();
    nat.outbound(&mut p, 0);
    assert_ne!(src(&p).1, 9);
    let mut err = icmp_error(R2, POOL1, 11, 0, &p);
    assert_translated(nat.inbound(&mut err, 1), &err);
    assert_eq!(err, icmp_error(R2, A, 11, 0, &original));
}

#[test]
fn outbound_error_from_an_inside_host() {
    let mut nat = Nat::new(cfg()).unwrap();
    let mut x = udp((B, 6000), (R2, 1), b"");
    nat.outbound(&mut x, 0);
    let mut p = udp((A, 6000), (R1, 53), b"q");
    nat.outbound(&mut p, 0);
    let out = src(&p);
    assert_ne!(out.1, 6000);
    // R1 answers; A's stack replies "port unreachable" about the answer.
    let arriving = udp((R1, 53), out, b"answer");
    let mut delivered = arriving.clone();
    assert_translated(nat.inbound(&mut delivered, 1), &delivered);
    let mut err = icmp_error(A, R1, 3, 3, &delivered);
    assert_translated(nat.outbound(&mut err, 2), &err);
    assert_eq!(err, icmp_error(POOL1, R1, 3, 3, &arriving));
}

#[test]
fn errors_for_one_to_one_hosts() {
    let m = OneToOne {
        outside: POOL2,
        inside: B,
    };
    let mut nat = Nat::new(NatConfig {
        one_to_one: vec![m],
        ..cfg()
    })
    .unwrap();
    let original = udp((B, 4444), (R1, 53), b"q");
    let mut p = original.clone();
    nat.outbound(&mut p, 0);
    let mut err = icmp_error(R1, POOL2, 3, 3, &p);
    assert_translated(nat.inbound(&mut err, 0), &err);
    assert_eq!(err, icmp_error(R1, B, 3, 3, &original));
    let arriving = udp((R1, 53), (POOL2, 4444), b"a");
    let mut delivered = arriving.clone();
    nat.inbound(&mut delivered, 0);
    let mut err = icmp_error(B, R1, 3, 3, &delivered);
    assert_translated(nat.outbound(&mut err, 0), &err);
    assert_eq!(err, icmp_error(POOL2, R1, 3, 3, &arriving));
}

#[test]
fn unusable_errors_are_dropped() {
    let mut nat = Nat::new(cfg()).unwrap();
    let mut p = udp((A, 40000), (R1, 53), b"q");
    nat.outbound(&mut p, 0);
    // About a flow NAT never saw.
    let stray = udp((POOL1, 41000), (R1, 53), b"q");
    let mut err = icmp_error(R1, POOL1, 3, 3, &stray);
    assert_eq!(nat.inbound(&mut err, 0), Verdict::Drop(NatDrop::NoSession));
    // Quoting a packet that was not sent from the address it comes to.
    let other = udp((R2, 40000), (R1, 53), b"q");
    let mut err = icmp_error(R1, POOL1, 3, 3, &other);
    assert_eq!(err.len(), 28 + other.len());
    assert_eq!(nat.inbound(&mut err, 0), Verdict::Drop(NatDrop::Malformed));
    // Quote too short for the ports.
    let mut err = icmp_error(R1, POOL1, 3, 3, &p[..24]);
    assert_eq!(nat.inbound(&mut err, 0), Verdict::Drop(NatDrop::Malformed));
    let c = nat.counters();
    assert_eq!(
        (
            c.dropped_no_session,
            c.dropped_malformed,
            c.icmp_errors_translated
        ),
        (1, 2, 0)
    );
}
