//! Properties of the text-protocol dissectors (http, ssh, smtp, ftp, dns,
//! bittorrent): no input makes them panic (arbitrary bytes, and bytes
//! behind each protocol's own opening so the deeper parsers are reached),
//! and they never allocate (a counting allocator watches them over every
//! golden packet).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use patronus_classify::dissect::{bittorrent, dns, ftp, http, smtp, ssh, Ctx};
use patronus_classify::{Dir, PacketView, Step, L4};
use proptest::prelude::*;

mod common;
use common::allocations;

#[derive(Default)]
struct Six {
    http: http::State,
    ssh: ssh::State,
    smtp: smtp::State,
    ftp: ftp::State,
    dns: dns::State,
    bittorrent: bittorrent::State,
    /// Per dissector: still in the running, done (ftp keeps watching).
    state: [u8; 6],
}

const RUNNING: u8 = 0;
const DONE: u8 = 1;
const OUT: u8 = 2;

impl Six {
    /// Shows `p` to every dissector still running (and to ftp's watch
    /// once it is done), as a driver would.
    fn feed(&mut self, ctx: &mut Ctx, p: &PacketView<'_>) {
        for i in 0..6 {
            if self.state[i] == OUT {
                continue;
            }
            if self.state[i] == DONE {
                if i == 3 && !self.ftp.watch(ctx, p) {
                    self.state[i] = OUT;
                }
                continue;
            }
            let step = match i {
                0 => self.http.inspect(ctx, p),
                1 => self.ssh.inspect(ctx, p),
                2 => self.smtp.inspect(ctx, p),
                3 => self.ftp.inspect(ctx, p),
                4 => self.dns.inspect(ctx, p),
                _ => self.bittorrent.inspect(ctx, p),
            };
            self.state[i] = match step {
                Step::More => RUNNING,
                Step::Done(_) => DONE,
                Step::NotMine => OUT,
            };
        }
    }
}

/// Openings that lead each dissector past its first check.
const OPENINGS: [&[u8]; 16] = [
    b"GET ",
    b"CONNECT ",
    b"GET http://",
    b"HTTP/1.1 200 OK\r\n",
    b"SSH-2.0-",
    b"220 ",
    b"220 ESMTP\r\n",
    b"227 Entering Passive Mode (",
    b"229 Entering Extended Passive Mode (|||",
    b"EPRT |",
    b"PORT ",
    b"d1:ad2:id20:",
    b"\x13BitTorrent protocol",
    b"\x41\x00",
    b"\x01\x01",
    b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00",
];

const PORTS: [u16; 9] = [53, 5353, 5355, 137, 80, 21, 25, 22, 6881];

fn packet() -> impl Strategy<Value = (bool, bool, u16, u32, Vec<u8>)> {
    let port = prop_oneof![proptest::sample::select(PORTS.to_vec()), any::<u16>()];
    let payload = prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..1600),
        (
            proptest::sample::select(OPENINGS.to_vec()),
            proptest::collection::vec(any::<u8>(), 0..300)
        )
            .prop_map(|(o, t)| [o, &t[..]].concat()),
        (
            proptest::sample::select(OPENINGS.to_vec()),
            "[ -~\r\n]{0,200}"
        )
            .prop_map(|(o, t)| [o, t.as_bytes()].concat()),
    ];
    (any::<bool>(), any::<bool>(), port, any::<u32>(), payload)
}

fn run(packets: &[(bool, bool, u16, u32, Vec<u8>)], v6: bool) {
    let (a, b) = if v6 {
        (
            IpAddr::V6(Ipv6Addr::LOCALHOST),
            IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1)),
        )
    } else {
        (
            IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)),
            IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)),
        )
    };
    let mut six = Six::default();
    let mut ctx = Ctx::default();
    for (tcp, orig, port, seq, payload) in packets {
        let (dir, src, dst, sport, dport) = if *orig {
            (Dir::Orig, a, b, 40000, *port)
        } else {
            (Dir::Reply, b, a, *port, 40000)
        };
        let p = PacketView {
            l4: if *tcp { L4::Tcp } else { L4::Udp },
            dir,
            src,
            dst,
            sport,
            dport,
            payload,
            tcp_seq: *seq,
            tcp_flags: 0x18,
        };
        six.feed(&mut ctx, &p);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn no_input_panics(
        packets in proptest::collection::vec(packet(), 1..8),
        v6 in any::<bool>(),
    ) {
        run(&packets, v6);
    }

    /// The same flow, packets of one TCP direction with consecutive
    /// sequence numbers (so HTTP's scanner reads them all).
    #[test]
    fn no_stream_panics(
        opening in proptest::sample::select(OPENINGS.to_vec()),
        chunks in proptest::collection::vec("[ -~\r\n:]{0,120}", 1..8),
    ) {
        let mut seq = 1000u32;
        let mut packets = Vec::new();
        let mut first = true;
        for c in chunks {
            let body = if first { [opening, c.as_bytes()].concat() } else { c.into_bytes() };
            first = false;
            packets.push((true, true, 80, seq, body.clone()));
            seq = seq.wrapping_add(body.len() as u32);
        }
        run(&packets, false);
    }
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len() / 2)
        .map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16).expect("hex"))
        .collect()
}

/// Every golden packet, grouped in its flows, through all six dissectors
/// (and ftp's watch) without one allocation.
#[test]
fn dissectors_never_allocate() {
    struct G {
        capture: &'static str,
        l4: L4,
        src: IpAddr,
        sport: u16,
        dst: IpAddr,
        dport: u16,
        seq: u32,
        payload: Vec<u8>,
    }
    let golden: Vec<G> = include_str!("golden/text.tsv")
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| {
            let c: Vec<&'static str> = l.split('\t').collect();
            G {
                capture: c[0],
                l4: if c[2] == "tcp" { L4::Tcp } else { L4::Udp },
                src: c[3].parse().unwrap(),
                sport: c[4].parse().unwrap(),
                dst: c[5].parse().unwrap(),
                dport: c[6].parse().unwrap(),
                seq: c[7].parse().unwrap(),
                payload: hex(c[9]),
            }
        })
        .collect();
    let mut ctx = Ctx::default();
    ctx.now_ns = 1;
    // The announcement table grows once to its bound, then reuses slots:
    // fill it before counting.
    for port in 1..=64 {
        ctx.expect(
            IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)),
            port,
            patronus_classify::Class::Ftp,
        );
    }
    let mut six = Six::default();
    let mut flow: Option<(&str, IpAddr, u16)> = None;
    // The counter counts: one Vec is one allocation.
    let before = allocations();
    drop(std::hint::black_box(vec![0u8; 16]));
    assert_eq!(allocations() - before, 1);
    let before = allocations();
    for g in &golden {
        if flow.map(|f| f.0) != Some(g.capture) {
            six = Six::default();
            flow = Some((g.capture, g.src, g.sport));
        }
        let Some((_, client, client_port)) = flow else {
            unreachable!()
        };
        let dir = if (g.src, g.sport) == (client, client_port) {
            Dir::Orig
        } else {
            Dir::Reply
        };
        let p = PacketView {
            l4: g.l4,
            dir,
            src: g.src,
            dst: g.dst,
            sport: g.sport,
            dport: g.dport,
            payload: &g.payload,
            tcp_seq: g.seq,
            tcp_flags: 0x18,
        };
        six.feed(&mut ctx, &p);
    }
    assert_eq!(allocations() - before, 0, "the dissectors allocated");
}
