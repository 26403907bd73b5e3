//! The balancer in the pipeline: NAT mode both ways with valid checksums
//! and weighted spread, fast path ≡ stages, pins kept across a pool change
//! (drain included), moved off a backend that went down, DSR's IP-in-IP
//! header, and "fragmentation needed" for a DSR packet that cannot grow.

use super::nat::{endpoints, udp};
use super::*;
use crate::lb::{BackendCounters, LbPlan, LbSpec, SlotMap};

const LB_CFG: &str = r#"
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
[[neighbor]]
port = "b"
address = "10.2.0.11"
mac = "02:00:00:00:02:11"
[[neighbor]]
port = "b"
address = "10.2.0.12"
mac = "02:00:00:00:02:12"
[[neighbor]]
port = "b"
address = "10.2.0.13"
mac = "02:00:00:00:02:13"
[[neighbor]]
port = "b"
address = "10.2.0.14"
mac = "02:00:00:00:02:14"
[[neighbor]]
port = "a"
address = "10.1.0.2"
mac = "02:00:00:00:01:02"
[lb]
max_flows = 4096
[[lb.vip]]
address = "10.9.0.100"
port = 53
protocol = "udp"
mode = "MODE"
[[lb.vip.backend]]
address = "10.2.0.11"
port = PORT
weight = 1
[[lb.vip.backend]]
address = "10.2.0.12"
port = PORT
weight = 2
[[lb.vip.backend]]
address = "10.2.0.13"
port = PORT
weight = 1
"#;

struct LbRig {
    r: Rig,
    spec: LbSpec,
    slots: SlotMap,
    counters: Arc<BackendCounters>,
}

impl LbRig {
    fn new(mode: &str) -> LbRig {
        let port = if mode == "dsr" { "53" } else { "5353" };
        let text = LB_CFG.replace("MODE", mode).replace("PORT", port);
        let mut r = rig_from(&text);
        let cfg = EngineConfig::parse(&text).unwrap();
        let spec = cfg.lb.as_ref().unwrap().to_spec();
        let mut rig = LbRig {
            r: {
                r.p.set_lb(None, 0, 1);
                r
            },
            spec,
            slots: SlotMap::default(),
            counters: Arc::new(BackendCounters::new(1)),
        };
        rig.push();
        rig
    }

    /// Compiles the current spec and hands it to the worker.
    fn push(&mut self) {
        let plan = LbPlan::build(&self.spec, &mut self.slots, self.counters.clone(), 1).unwrap();
        self.r.p.set_lb(Some(Arc::new(plan)), 0, 1);
    }

    /// Sends client port `sport`'s request; returns the frame that left.
    fn request(&mut self, sport: u16) -> Vec<u8> {
        self.r
            .a_in
            .borrow_mut()
            .push_back(udp(MAC_A, "10.1.0.2", sport, "10.9.0.100", 53));
        self.r.run(1);
        pop(&self.r.b_out)
    }
}

#[test]
fn nat_mode_rewrites_both_ways_and_spreads_by_weight() {
    let mut g = LbRig::new("nat");
    let mut per = std::collections::HashMap::new();
    for sport in 20000..22000u16 {
        let f = g.request(sport);
        let (src, s, dst, d) = endpoints(&f);
        assert_eq!((src, s, d), (ip("10.1.0.2"), sport, 5353));
        *per.entry(dst).or_insert(0u32) += 1;
        // The backend's reply leaves toward the client from the VIP.
        g.r.b_in
            .borrow_mut()
            .push_back(udp(MAC_B, &dst.to_string(), 5353, "10.1.0.2", sport));
        g.r.run(2);
        let back = pop(&g.r.a_out);
        assert_eq!(
            endpoints(&back),
            (ip("10.9.0.100"), 53, ip("10.1.0.2"), sport)
        );
    }
    // Weights 1:2:1 over 2000 flows.
    for (b, want) in [
        ("10.2.0.11", 500.0),
        ("10.2.0.12", 1000.0),
        ("10.2.0.13", 500.0),
    ] {
        let got = f64::from(per[&ip(b)]);
        assert!((got - want).abs() < want * 0.15, "{b}: {got} vs {want}");
    }
    let lb = g.r.p.lb().unwrap();
    assert_eq!(lb.pins().len(), 2000);
    let c = lb.counters();
    assert_eq!(
        (c.nat_forward, c.nat_reply, c.flows_pinned),
        (2000, 2000, 2000)
    );
}

#[test]
fn fast_path_and_stages_agree() {
    let run = |staged: bool| {
        let mut g = LbRig::new("nat");
        g.r.p.staged_only = staged;
        (20000..20300u16).map(|s| g.request(s)).collect::<Vec<_>>()
    };
    assert_eq!(run(false), run(true));
}

#[test]
fn pins_survive_a_pool_change_and_leave_a_backend_that_is_down() {
    let mut g = LbRig::new("nat");
    let first: Vec<Ipv4Addr> = (30000..30500u16)
        .map(|s| endpoints(&g.request(s)).2)
        .collect();
    // A fourth backend, and the second drained: pinned flows stay put.
    g.spec.vips[0].backends.push(crate::lb::BackendSpec {
        id: 99,
        addr: u32::from(ip("10.2.0.14")),
        port: 5353,
        weight: 3,
        up: true,
    });
    g.spec.vips[0].backends[1].weight = 0;
    g.push();
    for (i, s) in (30000..30500u16).enumerate() {
        assert_eq!(endpoints(&g.request(s)).2, first[i], "flow {s} moved");
    }
    // New flows go to the new backend and never to the drained one.
    let new: Vec<Ipv4Addr> = (40000..40400u16)
        .map(|s| endpoints(&g.request(s)).2)
        .collect();
    assert!(new.contains(&ip("10.2.0.14")));
    assert!(!new.contains(&ip("10.2.0.12")));
    // The first backend goes down: only its flows move.
    g.spec.vips[0].backends[0].up = false;
    g.push();
    for (i, s) in (30000..30500u16).enumerate() {
        let now = endpoints(&g.request(s)).2;
        if first[i] == ip("10.2.0.11") {
            assert_ne!(now, first[i], "flow {s} stayed on a down backend");
            assert_ne!(now, ip("10.2.0.12"), "moved to the drained one");
        } else {
            assert_eq!(now, first[i], "flow {s} moved");
        }
    }
    assert!(g.r.p.lb().unwrap().counters().repinned > 0);
}

#[test]
fn no_backend_up_drops_and_counts() {
    let mut g = LbRig::new("nat");
    for b in &mut g.spec.vips[0].backends {
        b.up = false;
    }
    g.push();
    g.r.a_in
        .borrow_mut()
        .push_back(udp(MAC_A, "10.1.0.2", 1234, "10.9.0.100", 53));
    g.r.run(1);
    assert!(g.r.b_out.borrow().is_empty());
    assert_eq!(g.r.drops(DropReason::LbNoBackend), 1);
}

#[test]
fn dsr_wraps_the_packet_in_ip_in_ip_to_the_backend() {
    let mut g = LbRig::new("dsr");
    let sent = udp(MAC_A, "10.1.0.2", 2000, "10.9.0.100", 53);
    let f = g.request(2000);
    assert_eq!(checksum::checksum(&f[14..34]), 0, "outer header checksum");
    assert_eq!(f[14 + 9], 4, "IP-in-IP");
    assert_eq!(&f[26..30], &ip("10.2.0.1").octets(), "outer source");
    let backend = Ipv4Addr::new(f[30], f[31], f[32], f[33]);
    assert!(["10.2.0.11", "10.2.0.12", "10.2.0.13"].contains(&backend.to_string().as_str()));
    assert_eq!(f[14 + 8], 63, "outer TTL 64, decremented once");
    assert_eq!(
        u16::from_be_bytes([f[16], f[17]]) as usize,
        sent.len() - 14 + 20
    );
    // The inner packet is the client's, unchanged.
    assert_eq!(&f[34..], &sent[14..]);
    assert_eq!(g.r.p.lb().unwrap().counters().dsr_encap, 1);
}

#[test]
fn dsr_packet_too_big_with_df_gets_fragmentation_needed() {
    let mut g = LbRig::new("dsr");
    // 1500-byte IP packet with DF: no room for 20 more bytes.
    let mut f = udp_frame(MAC_A, HOST1, "10.1.0.2", "10.9.0.100", 64, 1500 - 28);
    f[34..36].copy_from_slice(&3000u16.to_be_bytes());
    f[36..38].copy_from_slice(&53u16.to_be_bytes());
    f[40..42].fill(0);
    f[20] |= 0x40;
    f[24..26].fill(0);
    let c = checksum::checksum(&f[14..34]);
    f[24..26].copy_from_slice(&c.to_be_bytes());
    g.r.a_in.borrow_mut().push_back(f);
    g.r.run(1);
    assert!(g.r.b_out.borrow().is_empty());
    assert_eq!(g.r.drops(DropReason::LbTooBig), 1);
    let icmp = pop(&g.r.a_out);
    assert_eq!(icmp[14 + 9], 1, "ICMP");
    assert_eq!((icmp[34], icmp[35]), (3, 4), "fragmentation needed");
    assert_eq!(u16::from_be_bytes([icmp[40], icmp[41]]), 1480);
}

#[test]
fn idle_flows_expire_and_free_their_pins() {
    let mut g = LbRig::new("nat");
    for s in 100..110u16 {
        g.request(s);
    }
    assert_eq!(g.r.p.lb().unwrap().pins().len(), 10);
    // UDP timeout 300 s: a sweep after 301 s forgets them all.
    for k in 0..100 {
        g.r.run(301_000_000_000 + k);
    }
    let lb = g.r.p.lb().unwrap();
    assert_eq!(lb.pins().len(), 0);
    assert_eq!(lb.counters().flows_expired, 10);
}

/// Two workers, each with its own wires: a flow's request arrives on one,
/// its reply on the other; both are handled by the worker owning the
/// client, and the reply still leaves from the VIP.
#[test]
fn both_directions_meet_the_worker_owning_the_client() {
    use crate::lb::balancer::client_owner;
    let mesh = Handoff::mesh_with(2, 64).unwrap();
    let text = LB_CFG.replace("MODE", "nat").replace("PORT", "5353");
    let cfg = EngineConfig::parse(&text).unwrap();
    let spec = cfg.lb.as_ref().unwrap().to_spec();
    let counters = Arc::new(BackendCounters::new(2));
    let plan = Arc::new(LbPlan::build(&spec, &mut SlotMap::default(), counters, 1).unwrap());
    let mut w: Vec<Rig> = (0..2).map(|_| rig_from(&text)).collect();
    for (i, (r, h)) in w.iter_mut().zip(mesh).enumerate() {
        r.p.set_handoff(h);
        r.p.set_lb(Some(plan.clone()), i, 2);
    }
    let run = |w: &mut Vec<Rig>| {
        for k in 0..3 {
            for r in w.iter_mut() {
                r.run(10 + k);
            }
        }
    };
    let mut handled = [0usize; 2];
    for sport in 5000..5040u16 {
        let owner = client_owner(2, u32::from(ip("10.1.0.2")), sport);
        handled[owner] += 1;
        let other = 1 - owner;
        // The request reaches the other worker first.
        w[other]
            .a_in
            .borrow_mut()
            .push_back(udp(MAC_A, "10.1.0.2", sport, "10.9.0.100", 53));
        run(&mut w);
        assert!(
            w[other].b_out.borrow().is_empty(),
            "translated off its owner"
        );
        let f = pop(&w[owner].b_out);
        let (_, _, backend, bport) = endpoints(&f);
        assert_eq!(bport, 5353);
        // And so does the reply.
        w[other].b_in.borrow_mut().push_back(udp(
            MAC_B,
            &backend.to_string(),
            5353,
            "10.1.0.2",
            sport,
        ));
        run(&mut w);
        let back = pop(&w[owner].a_out);
        assert_eq!(
            endpoints(&back),
            (ip("10.9.0.100"), 53, ip("10.1.0.2"), sport)
        );
    }
    assert!(handled[0] > 0 && handled[1] > 0, "{handled:?}");
    for (i, r) in w.iter().enumerate() {
        assert_eq!(r.p.lb().unwrap().pins().len(), handled[i]);
    }
}
