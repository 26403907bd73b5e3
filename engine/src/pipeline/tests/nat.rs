//! NAT in the pipeline: translation both ways through the fast path's
//! set-aside, hairpinning, filtering drops, and the handoff between two
//! workers whose ports spread flows differently from NAT's ownership.

use super::*;
use crate::nat::{inside_worker, NAT_COUNTER_NAMES};
use crate::nat_slot::NatPlan;
use patronus_shm::flow_query::FlowRecord;

const NAT_CFG: &str = r#"
[[port]]
name = "a"
driver = "mem"
[[port]]
name = "b"
driver = "mem"
[[interface]]
port = "a"
address = "10.1.0.1/24"
[[interface]]
port = "b"
address = "10.2.0.1/24"
[[route]]
prefix = "203.0.113.0/24"
via = "10.2.0.254"
[[route]]
prefix = "192.0.2.0/24"
via = "10.2.0.254"
[[neighbor]]
port = "b"
address = "10.2.0.254"
mac = "02:00:00:00:02:fe"
[[neighbor]]
port = "a"
address = "10.1.0.2"
mac = "02:00:00:00:01:02"
[[neighbor]]
port = "a"
address = "10.1.0.3"
mac = "02:00:00:00:01:03"
[[neighbor]]
port = "a"
address = "10.1.0.4"
mac = "02:00:00:00:01:04"
[nat]
outside = "b"
pool = ["10.2.0.1"]
"#;

/// One worker of `workers` over its own wires, NAT as `[nat]` says.
fn nat_rig(workers: usize, w: usize, extra: &str) -> Rig {
    let text = format!("[engine]\nworkers = {workers}\n{NAT_CFG}{extra}");
    let mut r = rig_from(&text);
    let cfg = EngineConfig::parse(&text).unwrap();
    let plan: NatPlan = cfg.nat.as_ref().unwrap().to_plan(&cfg).unwrap();
    r.p.set_nat(Some(&plan), w).unwrap();
    r
}

/// A UDP frame with a valid UDP checksum.
pub(super) fn udp(dst_mac: [u8; 6], src: &str, sport: u16, dst: &str, dport: u16) -> Vec<u8> {
    let mut f = udp_frame(dst_mac, HOST1, src, dst, 64, 20);
    f[34..36].copy_from_slice(&sport.to_be_bytes());
    f[36..38].copy_from_slice(&dport.to_be_bytes());
    f[40..42].fill(0);
    let ph = checksum::pseudo_header_v4(ip(src), ip(dst), 17, 28);
    let c = checksum::fold(checksum::combine(ph, checksum::sum(&f[34..])));
    f[40..42].copy_from_slice(&(!c).to_be_bytes());
    f
}

/// Addresses and ports of a frame: (src, sport, dst, dport); asserts that
/// both checksums verify.
pub(super) fn endpoints(f: &[u8]) -> (Ipv4Addr, u16, Ipv4Addr, u16) {
    assert_eq!(checksum::checksum(&f[14..34]), 0, "IPv4 header checksum");
    let src = Ipv4Addr::new(f[26], f[27], f[28], f[29]);
    let dst = Ipv4Addr::new(f[30], f[31], f[32], f[33]);
    let ph = checksum::pseudo_header_v4(src, dst, f[23], (f.len() - 34) as u16);
    assert_eq!(
        checksum::fold(checksum::combine(ph, checksum::sum(&f[34..]))),
        0xffff,
        "L4 checksum"
    );
    let sport = u16::from_be_bytes([f[34], f[35]]);
    let dport = u16::from_be_bytes([f[36], f[37]]);
    (src, sport, dst, dport)
}

fn nat_counter(r: &Rig, name: &str) -> u64 {
    let i = NAT_COUNTER_NAMES.iter().position(|n| *n == name).unwrap();
    crate::counters::read(&r.counters.nat[i])
}

#[test]
fn outbound_and_reply_are_translated_with_valid_checksums() {
    let mut r = nat_rig(1, 0, "");
    r.a_in
        .borrow_mut()
        .push_back(udp(MAC_A, "10.1.0.2", 40000, "203.0.113.9", 53));
    r.run(1);
    let out = pop(&r.b_out);
    let (src, sport, dst, dport) = endpoints(&out);
    assert_eq!((src, dst, dport), (ip("10.2.0.1"), ip("203.0.113.9"), 53));
    assert_eq!(sport, 40000, "port preserved");
    assert_eq!(out[22], 63, "TTL decremented");
    // The reply comes back in on b to the pool address.
    r.b_in
        .borrow_mut()
        .push_back(udp(MAC_B, "203.0.113.9", 53, "10.2.0.1", sport));
    r.run(2);
    let back = pop(&r.a_out);
    assert_eq!(&back[..6], &[2, 0, 0, 0, 1, 2]);
    assert_eq!(
        endpoints(&back),
        (ip("203.0.113.9"), 53, ip("10.1.0.2"), 40000)
    );
    r.p.housekeeping(3);
    assert_eq!(nat_counter(&r, "sessions_created"), 1);
    assert_eq!(nat_counter(&r, "translated_out"), 1);
    assert_eq!(nat_counter(&r, "translated_in"), 1);
    assert_eq!(
        r.counters
            .nat_sessions
            .load(std::sync::atomic::Ordering::Relaxed),
        1
    );
}

#[test]
fn unsolicited_inbound_is_dropped_and_counted() {
    let mut r = nat_rig(1, 0, "");
    r.b_in
        .borrow_mut()
        .push_back(udp(MAC_B, "203.0.113.9", 53, "10.2.0.1", 40000));
    r.run(1);
    assert!(r.a_out.borrow().is_empty());
    assert_eq!(r.drops(DropReason::Nat), 1);
    r.p.housekeeping(2);
    assert_eq!(nat_counter(&r, "dropped_no_session"), 1);
    // A ping to the outside address is still the router's to answer.
    r.b_in.borrow_mut().push_back(icmp_echo(
        MAC_B,
        [2, 0, 0, 0, 2, 0xfe],
        "10.2.0.254",
        "10.2.0.1",
        64,
    ));
    r.run(3);
    let reply = pop(&r.b_out);
    assert_eq!(reply[34], 0, "echo reply");
}

#[test]
fn port_forward_reaches_the_inside_server() {
    let mut r = nat_rig(
        1,
        0,
        "[[nat.forward]]\nproto = \"udp\"\noutside = \"10.2.0.1:5353\"\ninside = \"10.1.0.3:53\"\n",
    );
    r.b_in
        .borrow_mut()
        .push_back(udp(MAC_B, "203.0.113.9", 7777, "10.2.0.1", 5353));
    r.run(1);
    let f = pop(&r.a_out);
    assert_eq!(endpoints(&f), (ip("203.0.113.9"), 7777, ip("10.1.0.3"), 53));
    // The server's answer leaves from the forward's outside endpoint.
    r.a_in
        .borrow_mut()
        .push_back(udp(MAC_A, "10.1.0.3", 53, "203.0.113.9", 7777));
    r.run(2);
    let f = pop(&r.b_out);
    assert_eq!(
        endpoints(&f),
        (ip("10.2.0.1"), 5353, ip("203.0.113.9"), 7777)
    );
}

#[test]
fn hairpin_reaches_the_forwarded_server_from_inside() {
    let mut r = nat_rig(
        1,
        0,
        "[[nat.forward]]\nproto = \"udp\"\noutside = \"10.2.0.1:5353\"\ninside = \"10.1.0.3:53\"\n",
    );
    r.a_in
        .borrow_mut()
        .push_back(udp(MAC_A, "10.1.0.2", 40000, "10.2.0.1", 5353));
    r.run(1);
    let f = pop(&r.a_out);
    assert_eq!(&f[..6], &[2, 0, 0, 0, 1, 3], "to the server's MAC");
    let (src, sport, dst, dport) = endpoints(&f);
    assert_eq!((src, dst, dport), (ip("10.2.0.1"), ip("10.1.0.3"), 53));
    // The server answers the outside address; it comes back to the client
    // as from the forward.
    r.a_in
        .borrow_mut()
        .push_back(udp(MAC_A, "10.1.0.3", 53, "10.2.0.1", sport));
    r.run(2);
    let f = pop(&r.a_out);
    assert_eq!(&f[..6], &[2, 0, 0, 0, 1, 2]);
    assert_eq!(endpoints(&f), (ip("10.2.0.1"), 5353, ip("10.1.0.2"), 40000));
}

#[test]
fn ttl_expiry_is_reported_with_the_inside_addresses() {
    let mut r = nat_rig(1, 0, "");
    let mut f = udp(MAC_A, "10.1.0.2", 40000, "203.0.113.9", 53);
    f[22] = 1;
    f[24..26].fill(0);
    let c = checksum::checksum(&f[14..34]);
    f[24..26].copy_from_slice(&c.to_be_bytes());
    r.a_in.borrow_mut().push_back(f);
    r.run(1);
    assert!(r.b_out.borrow().is_empty());
    let err = pop(&r.a_out);
    assert_eq!(err[34], 11, "time exceeded");
    // The quoted header is the one the host sent (not translated).
    assert_eq!(&err[42 + 12..42 + 16], &[10, 1, 0, 2]);
    r.p.housekeeping(2);
    assert_eq!(nat_counter(&r, "sessions_created"), 0);
}

/// Two workers, each with its own ports; frames handed between them.
struct Pair {
    w: [Rig; 2],
}

impl Pair {
    fn new(extra: &str) -> Pair {
        Self::with_ring(extra, super::handoff::ring_slots(2))
    }

    fn with_ring(extra: &str, slots: usize) -> Pair {
        let mesh = Handoff::mesh_with(2, slots).unwrap();
        let mut w = [nat_rig(2, 0, extra), nat_rig(2, 1, extra)];
        for (r, h) in w.iter_mut().zip(mesh) {
            r.p.set_handoff(h);
        }
        Pair { w }
    }

    /// Polls both workers a few times.
    fn run(&mut self, now: u64) {
        for k in 0..3 {
            for r in &mut self.w {
                r.run(now + k);
            }
        }
    }
}

#[test]
fn packets_reach_the_worker_owning_their_session() {
    let mut pair = Pair::new("");
    // Hosts owned by each worker.
    let host = |w: usize| {
        ["10.1.0.2", "10.1.0.3", "10.1.0.4"]
            .into_iter()
            .find(|h| inside_worker(2, ip(h)) == w)
            .expect("hosts on both workers")
    };
    for owner in 0..2 {
        let other = 1 - owner;
        let h = host(owner);
        // Received by the worker that does not own the host.
        pair.w[other]
            .a_in
            .borrow_mut()
            .push_back(udp(MAC_A, h, 40000, "203.0.113.9", 53));
        pair.run(10);
        assert!(pair.w[other].b_out.borrow().is_empty());
        let out = pop(&pair.w[owner].b_out);
        let (src, sport, _, _) = endpoints(&out);
        assert_eq!(src, ip("10.2.0.1"));
        let (lo, hi) = crate::nat::port_range(2, owner as u16);
        assert!(
            (lo..hi).contains(&u32::from(sport)),
            "port from the owner's range"
        );
        // The reply arrives at the other worker too and is handed back.
        pair.w[other]
            .b_in
            .borrow_mut()
            .push_back(udp(MAC_B, "203.0.113.9", 53, "10.2.0.1", sport));
        pair.run(20);
        assert!(pair.w[other].a_out.borrow().is_empty());
        let back = pop(&pair.w[owner].a_out);
        assert_eq!(endpoints(&back), (ip("203.0.113.9"), 53, ip(h), 40000));
    }
    for r in &mut pair.w {
        r.p.housekeeping(100);
        assert_eq!(nat_counter(r, "sessions_created"), 1);
        assert_eq!(r.drops(DropReason::HandoffFull), 0);
        assert_eq!(r.drops(DropReason::HandoffLoop), 0);
    }
}

#[test]
fn a_full_handoff_ring_drops_and_counts() {
    let mut pair = Pair::with_ring("", 256);
    let h = ["10.1.0.2", "10.1.0.3", "10.1.0.4"]
        .into_iter()
        .find(|h| inside_worker(2, ip(h)) == 1)
        .unwrap();
    let n = 256 + 100;
    for i in 0..n {
        pair.w[0]
            .a_in
            .borrow_mut()
            .push_back(udp(MAC_A, h, 1000 + i as u16, "203.0.113.9", 53));
    }
    // Worker 0 alone runs: worker 1 does not drain.
    for t in 0..10 {
        pair.w[0].run(t);
    }
    assert_eq!(pair.w[0].drops(DropReason::HandoffFull), 100);
    pair.run(100);
    assert_eq!(pair.w[1].b_out.borrow().len(), 256);
}

#[test]
fn a_new_plan_keeps_established_sessions() {
    let mut r = nat_rig(1, 0, "");
    r.a_in
        .borrow_mut()
        .push_back(udp(MAC_A, "10.1.0.2", 40000, "203.0.113.9", 53));
    r.run(1);
    let (_, sport, _, _) = endpoints(&pop(&r.b_out));
    // The control process pushes a plan with a second pool address and
    // endpoint-independent filtering.
    let text = format!(
        "[engine]\nworkers = 1\n{}",
        NAT_CFG.replace(
            "pool = [\"10.2.0.1\"]",
            "pool = [\"10.2.0.1\", \"10.2.0.9\"]\nfiltering = \"endpoint-independent\""
        )
    );
    let cfg = EngineConfig::parse(&text).unwrap();
    let plan = cfg.nat.as_ref().unwrap().to_plan(&cfg).unwrap();
    r.p.set_nat(Some(&plan), 0).unwrap();
    // The reply still reaches the host; and now any remote may use the
    // mapping.
    for from in ["203.0.113.9", "192.0.2.77"] {
        r.b_in
            .borrow_mut()
            .push_back(udp(MAC_B, from, 53, "10.2.0.1", sport));
        r.run(2);
        assert_eq!(
            endpoints(&pop(&r.a_out)),
            (ip(from), 53, ip("10.1.0.2"), 40000)
        );
    }
    assert_eq!(r.p.nat().unwrap().session_count(), 2);
}

/// A small `[classify]` (tests build many pipelines).
fn small_classify() -> crate::config::ClassifySection {
    let cfg = EngineConfig::parse(&format!(
        "[engine]\nworkers = 1\n{NAT_CFG}[classify]\nflows = 64\ndpi_slots = 8\n"
    ))
    .unwrap();
    cfg.classify.unwrap()
}

/// Every flow the pipeline's classifier holds.
fn all_flows(p: &Pipeline, now: u64) -> Vec<FlowRecord> {
    let c = p.classifier().expect("classification on");
    c.page(0, &Default::default(), 0, usize::MAX, now).0
}

#[test]
fn both_directions_of_a_nated_flow_are_one_flow_with_inside_addresses() {
    let mut r = nat_rig(1, 0, "");
    r.p.enable_classify(&small_classify(), None, 0);
    r.a_in
        .borrow_mut()
        .push_back(udp(MAC_A, "10.1.0.2", 40000, "203.0.113.9", 53));
    r.run(1);
    let (_, sport, _, _) = endpoints(&pop(&r.b_out));
    r.b_in
        .borrow_mut()
        .push_back(udp(MAC_B, "203.0.113.9", 53, "10.2.0.1", sport));
    r.run(2);
    assert_eq!(endpoints(&pop(&r.a_out)).2, ip("10.1.0.2"));
    let flows = all_flows(&r.p, 3);
    assert_eq!(flows.len(), 1, "{flows:?}");
    let f = &flows[0];
    assert_eq!(f.client.to_string(), "10.1.0.2:40000");
    assert_eq!(f.server.to_string(), "203.0.113.9:53");
    assert_eq!((f.packets_orig, f.packets_reply), (1, 1));
}

mod fast_path_matches_stages_with_nat {
    //! With NAT on, the fast path must decide exactly what the full stages
    //! decide, frame by frame: same frames out of each port, same drops,
    //! same NAT counters — for both directions, expired TTLs and damage.
    use super::*;
    use proptest::prelude::*;

    fn frame(out: bool, host: u8, port: u8, ttl: u8, change: u8, at: usize, byte: u8) -> Vec<u8> {
        let sport = 40000 + u16::from(port % 4);
        let mut f = if out {
            let src = ["10.1.0.2", "10.1.0.3"][usize::from(host % 2)];
            udp(MAC_A, src, sport, "203.0.113.9", 53)
        } else {
            udp(MAC_B, "203.0.113.9", 53, "10.2.0.1", sport)
        };
        f[22] = ttl;
        f[24..26].fill(0);
        let c = checksum::checksum(&f[14..34]);
        f[24..26].copy_from_slice(&c.to_be_bytes());
        match change % 4 {
            0 => f[at % 42] = byte,
            1 => f.truncate(at % f.len()),
            _ => {}
        }
        f
    }

    type Outcome = (Vec<Vec<u8>>, Vec<u64>, [u64; 16], Vec<FlowRecord>);

    fn run(frames: &[(bool, Vec<u8>)], staged_only: bool) -> Outcome {
        // Small tables: every case builds two rigs.
        let mut r = nat_rig(1, 0, "max_sessions = 256\n");
        r.p.enable_classify(&small_classify(), None, 0);
        r.p.staged_only = staged_only;
        let mut out = Vec::new();
        for (t, (outbound, f)) in frames.iter().enumerate() {
            let wire = if *outbound { &r.a_in } else { &r.b_in };
            wire.borrow_mut().push_back(f.clone());
            r.run(t as u64 + 1);
            out.extend(r.a_out.borrow_mut().drain(..).map(|mut f| {
                f.insert(0, b'a');
                f
            }));
            out.extend(r.b_out.borrow_mut().drain(..));
        }
        let drops = DropReason::ALL.iter().map(|d| r.drops(*d)).collect();
        let flows = all_flows(&r.p, frames.len() as u64 + 1);
        (out, drops, r.p.nat().unwrap().counters().values(), flows)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(128))]
        /// ...and the classifier sees the same packets: same flows, same
        /// counts.
        #[test]
        fn same_output_drops_and_nat_counters(
            frames in proptest::collection::vec(
                (any::<bool>(), any::<u8>(), any::<u8>(), prop_oneof![Just(64u8), 0u8..3],
                 0u8..6, 0usize..64, any::<u8>()),
                1..40,
            )
        ) {
            let frames: Vec<(bool, Vec<u8>)> = frames
                .into_iter()
                .map(|(o, h, p, t, c, at, b)| (o, frame(o, h, p, t, c, at, b)))
                .collect();
            let fast = run(&frames, false);
            let staged = run(&frames, true);
            prop_assert_eq!(fast, staged);
        }
    }
}
