//! Destination NAT: port forwards, 1:1 mappings and hairpinning.

use super::pkt::*;
use crate::nat::*;
use crate::wire::tcp::{ACK, SYN};

fn forward() -> PortForward {
    PortForward {
        proto: Proto::Tcp,
        outside_addr: POOL1,
        outside_port: 8080,
        inside_addr: SRV,
        inside_port: 80,
    }
}

fn fwd_cfg(filtering: Filtering) -> NatConfig {
    NatConfig {
        filtering,
        forwards: vec![forward()],
        ..cfg()
    }
}

#[test]
fn port_forward_reaches_the_server_in_both_filtering_modes() {
    for filtering in [
        Filtering::EndpointIndependent,
        Filtering::AddressAndPortDependent,
    ] {
        let mut nat = Nat::new(fwd_cfg(filtering)).unwrap();
        assert_eq!(nat.mapping_count(), 1, "the forward is a static mapping");
        let mut syn = tcp((R1, 40000), (POOL1, 8080), SYN);
        assert_translated(nat.inbound(&mut syn, 0), &syn);
        assert_eq!(dst(&syn), (SRV, 80));
        assert_eq!(src(&syn), (R1, 40000));
        let mut syn_ack = tcp((SRV, 80), (R1, 40000), SYN | ACK);
        assert_translated(nat.outbound(&mut syn_ack, 1), &syn_ack);
        assert_eq!(src(&syn_ack), (POOL1, 8080));
        assert_eq!(dst(&syn_ack), (R1, 40000));
        let info = nat.sessions(None, 0, 1).next().unwrap().1;
        assert!(info.is_static);
        assert_eq!(info.state, "established");
        // A second client gets its own session on the same forward.
        let mut syn2 = tcp((R2, 40000), (POOL1, 8080), SYN);
        assert_translated(nat.inbound(&mut syn2, 2), &syn2);
        assert_eq!(nat.session_count(), 2);
        // UDP to the same port is not forwarded.
        let mut u = udp((R1, 1), (POOL1, 8080), b"");
        assert_eq!(nat.inbound(&mut u, 2), Verdict::Drop(NatDrop::NoSession));
        // Sessions expire; the forward stays.
        nat.expire(10_000 * SEC, usize::MAX);
        assert_eq!((nat.session_count(), nat.mapping_count()), (0, 1));
        let mut syn3 = tcp((R1, 40001), (POOL1, 8080), SYN);
        assert_translated(nat.inbound(&mut syn3, 10_001 * SEC), &syn3);
    }
}

#[test]
fn forwarded_port_is_never_allocated_and_server_uses_it_outbound() {
    let mut nat = Nat::new(fwd_cfg(Filtering::AddressAndPortDependent)).unwrap();
    // An inside host whose own port is 8080 cannot keep it: it is forwarded.
    let mut p = tcp((A, 8080), (R1, 80), SYN);
    assert_translated(nat.outbound(&mut p, 0), &p);
    assert_ne!(src(&p).1, 8080);
    // The server starting a connection from its forwarded port leaves from
    // the forward's outside endpoint (the static mapping, EIM).
    let mut q = tcp((SRV, 80), (R2, 5555), SYN);
    assert_translated(nat.outbound(&mut q, 0), &q);
    assert_eq!(src(&q), (POOL1, 8080));
    // From another port it is an ordinary dynamic mapping.
    let mut q = tcp((SRV, 30000), (R2, 5555), SYN);
    assert_translated(nat.outbound(&mut q, 0), &q);
    assert_eq!(src(&q), (POOL1, 30000));
}

#[test]
fn forward_on_a_non_pool_address() {
    let f = PortForward {
        outside_addr: POOL2,
        ..forward()
    };
    let mut nat = Nat::new(NatConfig {
        forwards: vec![f],
        ..cfg()
    })
    .unwrap();
    let mut syn = tcp((R1, 1234), (POOL2, 8080), SYN);
    assert_translated(nat.inbound(&mut syn, 0), &syn);
    assert_eq!(dst(&syn), (SRV, 80));
    let mut back = tcp((SRV, 80), (R1, 1234), SYN | ACK);
    assert_translated(nat.outbound(&mut back, 0), &back);
    assert_eq!(src(&back), (POOL2, 8080));
    // Other ports of that address lead nowhere.
    let mut other = tcp((R1, 1234), (POOL2, 8081), SYN);
    assert_eq!(
        nat.inbound(&mut other, 0),
        Verdict::Drop(NatDrop::NoSession)
    );
}

#[test]
fn one_to_one_is_stateless_both_ways_for_every_protocol() {
    let m = OneToOne {
        outside: POOL2,
        inside: B,
    };
    let mut nat = Nat::new(NatConfig {
        one_to_one: vec![m],
        ..cfg()
    })
    .unwrap();
    let mut p = udp((R1, 999), (POOL2, 53), b"hello");
    assert_translated(nat.inbound(&mut p, 0), &p);
    assert_eq!(dst(&p), (B, 53));
    let mut t = tcp((B, 22), (R2, 50000), SYN | ACK);
    assert_translated(nat.outbound(&mut t, 0), &t);
    assert_eq!(src(&t), (POOL2, 22), "port kept");
    let mut e = echo(B, R1, 8, 77, 1);
    assert_translated(nat.outbound(&mut e, 0), &e);
    assert_eq!(src(&e), (POOL2, 77));
    let mut e = echo(R1, POOL2, 8, 78, 1);
    assert_translated(nat.inbound(&mut e, 0), &e);
    assert_eq!(dst(&e), (B, 78));
    let mut g = raw(R1, POOL2, 47, b"gre");
    assert_translated(nat.inbound(&mut g, 0), &g);
    assert_eq!(addr(&g, 16), B);
    let mut g = raw(B, R1, 47, b"gre");
    assert_translated(nat.outbound(&mut g, 0), &g);
    assert_eq!(addr(&g, 12), POOL2);
    assert_eq!(nat.session_count(), 0);
    // Other inside hosts still use the pool.
    let mut q = udp((A, 5000), (R1, 53), b"");
    nat.outbound(&mut q, 0);
    assert_eq!(src(&q).0, POOL1);
}

/// A -> POOL1:8080 reaches SRV:80 with A's source translated, and SRV's
/// reply comes back through NAT to A.
#[test]
fn hairpin_through_a_port_forward() {
    let mut nat = Nat::new(fwd_cfg(Filtering::AddressAndPortDependent)).unwrap();
    let mut p = tcp((A, 33333), (POOL1, 8080), SYN);
    assert_translated(nat.outbound(&mut p, 0), &p);
    assert_eq!(dst(&p), (SRV, 80));
    let a_out = src(&p);
    assert_eq!(
        a_out.0, POOL1,
        "source translated so the reply returns via NAT"
    );
    let mut r = tcp((SRV, 80), a_out, SYN | ACK);
    assert_translated(nat.outbound(&mut r, 1), &r);
    assert_eq!(src(&r), (POOL1, 8080));
    assert_eq!(dst(&r), (A, 33333));
    assert_eq!(nat.counters().hairpinned, 2);
    // Two sessions: A's (to POOL1:8080) and the forward's (from A's mapping).
    assert_eq!(nat.session_count(), 2);
    let states: Vec<_> = nat.sessions(None, 0, 1).map(|(_, s)| s.state).collect();
    assert_eq!(states, vec!["established", "established"]);
}

#[test]
fn hairpin_to_a_one_to_one_host() {
    let m = OneToOne {
        outside: POOL2,
        inside: B,
    };
    let mut nat = Nat::new(NatConfig {
        one_to_one: vec![m],
        ..cfg()
    })
    .unwrap();
    let mut p = udp((A, 7000), (POOL2, 53), b"q");
    assert_translated(nat.outbound(&mut p, 0), &p);
    assert_eq!(src(&p), (POOL1, 7000));
    assert_eq!(dst(&p), (B, 53));
    let mut r = udp((B, 53), (POOL1, 7000), b"a");
    assert_translated(nat.outbound(&mut r, 0), &r);
    assert_eq!(src(&r), (POOL2, 53));
    assert_eq!(dst(&r), (A, 7000));
}

#[test]
fn hairpin_to_an_unmapped_outside_port_is_dropped() {
    let mut nat = Nat::new(cfg()).unwrap();
    let mut p = udp((A, 7000), (POOL1, 9999), b"q");
    assert_eq!(nat.outbound(&mut p, 0), Verdict::Drop(NatDrop::NoSession));
}
