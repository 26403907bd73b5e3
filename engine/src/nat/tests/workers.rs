//! Several workers: every allocated port lies in the allocating worker's
//! range, and `owner_worker` (the free function, the table-driven method
//! and the packet-level `inbound_owner`) names that worker for the replies.

use std::net::Ipv4Addr;

use super::pkt::*;
use crate::nat::*;

#[test]
fn owner_worker_agrees_with_the_allocator_for_every_worker() {
    for workers in [1u16, 2, 3, 8] {
        for worker in 0..workers {
            let c = NatConfig {
                pool: vec![POOL1, POOL2],
                workers,
                worker,
                ..cfg()
            };
            let mut nat = Nat::new(c.clone()).unwrap();
            // In-range ports first: later allocations may take them.
            for (i, port) in [1024u16, 5000, 20000, 40000, 65535, 33000, 33001, 1, 80]
                .into_iter()
                .enumerate()
            {
                let host = Ipv4Addr::new(10, 1, 0, i as u8 + 1);
                for proto in [Proto::Tcp, Proto::Udp, Proto::Icmp] {
                    let mut p = match proto {
                        Proto::Tcp => tcp((host, port), (R1, 80), crate::wire::tcp::SYN),
                        Proto::Udp => udp((host, port), (R1, 53), b""),
                        Proto::Icmp => echo(host, R1, 8, port, 1),
                    };
                    assert_translated(nat.outbound(&mut p, 0), &p);
                    let (oa, op) = src(&p);
                    let (lo, hi) = port_range(workers, worker);
                    assert!(
                        (lo..hi).contains(&u32::from(op)),
                        "w{worker}/{workers}: {op} not in {lo}..{hi}"
                    );
                    if (lo..hi).contains(&u32::from(port)) {
                        assert_eq!(op, port, "preserved when in range");
                    }
                    let w = usize::from(worker);
                    assert_eq!(owner_worker(&c, oa, op, proto), w);
                    assert_eq!(nat.owner_worker(oa, op, proto), w);
                    let reply = match proto {
                        Proto::Tcp => tcp((R1, 80), (oa, op), crate::wire::tcp::ACK),
                        Proto::Udp => udp((R1, 53), (oa, op), b""),
                        Proto::Icmp => echo(R1, oa, 0, op, 1),
                    };
                    assert_eq!(nat.inbound_owner(&reply), w);
                    let err = icmp_error(R2, oa, 3, 1, &p);
                    assert_eq!(
                        nat.inbound_owner(&err),
                        w,
                        "ICMP error steered by the embedded port"
                    );
                    let mut reply = reply;
                    assert_translated(nat.inbound(&mut reply, 1), &reply);
                    assert_eq!(dst(&reply), (host, port));
                }
            }
        }
    }
}

#[test]
fn forwards_and_one_to_one_belong_to_their_inside_hosts_worker() {
    let workers = 4;
    let f = PortForward {
        proto: Proto::Udp,
        outside_addr: POOL1,
        outside_port: 2000,
        inside_addr: SRV,
        inside_port: 53,
    };
    let m = OneToOne {
        outside: POOL2,
        inside: B,
    };
    let base = NatConfig {
        workers,
        forwards: vec![f],
        one_to_one: vec![m],
        ..cfg()
    };
    let srv_w = inside_worker(workers, SRV);
    let b_w = inside_worker(workers, B);
    assert_eq!(owner_worker(&base, POOL1, 2000, Proto::Udp), srv_w);
    assert_eq!(owner_worker(&base, POOL2, 12345, Proto::Tcp), b_w);
    for worker in 0..workers {
        let mut nat = Nat::new(NatConfig {
            worker,
            ..base.clone()
        })
        .unwrap();
        assert_eq!(nat.owner_worker(POOL1, 2000, Proto::Udp), srv_w);
        assert_eq!(nat.outbound_owner(&udp((SRV, 53), (R1, 1), b"")), srv_w);
        let mut p = udp((R1, 1), (POOL1, 2000), b"");
        let v = nat.inbound(&mut p, 0);
        if usize::from(worker) == srv_w {
            assert_translated(v, &p);
            assert_eq!(dst(&p), (SRV, 53));
        } else {
            // Only the owner holds the static mapping.
            assert_eq!(v, Verdict::Drop(NatDrop::NoSession));
        }
        // The forwarded port is reserved on every worker whose range has it.
        for i in 0..3000u16 {
            let mut q = udp(
                (Ipv4Addr::new(10, 9, (i >> 8) as u8, i as u8), 1),
                (R1, 1),
                b"",
            );
            if nat.outbound(&mut q, 0) != Verdict::Translated {
                break;
            }
            assert_ne!(src(&q), (POOL1, 2000));
        }
    }
}

#[test]
fn hairpin_across_workers_is_handed_over() {
    let workers = 2;
    let f = PortForward {
        proto: Proto::Tcp,
        outside_addr: POOL1,
        outside_port: 8080,
        inside_addr: SRV,
        inside_port: 80,
    };
    let base = NatConfig {
        workers,
        forwards: vec![f],
        ..cfg()
    };
    let srv_w = inside_worker(workers, SRV) as u16;
    // An inside host handled by the other worker.
    let host = (1..=255u8)
        .map(|i| Ipv4Addr::new(10, 2, 0, i))
        .find(|&h| inside_worker(workers, h) as u16 != srv_w)
        .unwrap();
    let mut mine = Nat::new(NatConfig {
        worker: 1 - srv_w,
        ..base.clone()
    })
    .unwrap();
    let mut owner = Nat::new(NatConfig {
        worker: srv_w,
        ..base
    })
    .unwrap();
    let mut p = tcp((host, 40000), (POOL1, 8080), crate::wire::tcp::SYN);
    assert_eq!(mine.outbound(&mut p, 0), Verdict::Hairpin(srv_w));
    assert_eq!(src(&p).0, POOL1);
    assert_translated(owner.inbound(&mut p, 0), &p);
    assert_eq!(dst(&p), (SRV, 80));
    // The reply: SNAT on the owner, then handed back to `mine` by port.
    let mut r = tcp(
        (SRV, 80),
        src(&p),
        crate::wire::tcp::SYN | crate::wire::tcp::ACK,
    );
    assert_eq!(owner.outbound(&mut r, 0), Verdict::Hairpin(1 - srv_w));
    assert_translated(mine.inbound(&mut r, 0), &r);
    assert_eq!(dst(&r), (host, 40000));
    assert_eq!(src(&r), (POOL1, 8080));
}
