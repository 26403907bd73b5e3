//! Pipeline tests over an in-memory port: frames in, frames out, on a fake clock.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::net::Ipv4Addr;
use std::rc::Rc;
use std::sync::Arc;

use super::*;
use crate::wire::checksum;

const MAC_A: [u8; 6] = [2, 0, 0, 0, 0, 0xa];
const MAC_B: [u8; 6] = [2, 0, 0, 0, 0, 0xb];
const HOST1: [u8; 6] = [2, 0, 0, 0, 1, 1];
const HOST2: [u8; 6] = [2, 0, 0, 0, 2, 2];

type Wire = Rc<RefCell<VecDeque<Vec<u8>>>>;

/// A port whose RX and TX are queues the test holds.
struct VecPort {
    name: String,
    mac: [u8; 6],
    rx: Wire,
    tx: Wire,
}

impl Port for VecPort {
    fn name(&self) -> &str {
        &self.name
    }
    fn rx_burst(&mut self, pool: &mut PacketPool, batch: &mut Batch) -> usize {
        let mut n = 0;
        while batch.space() > 0 {
            let Some(f) = self.rx.borrow_mut().pop_front() else {
                break;
            };
            let p = pool.alloc_from(&f).expect("pool");
            let _ = batch.push(p);
            n += 1;
        }
        n
    }
    fn tx_burst(&mut self, batch: &mut Batch) -> crate::ports::TxDone {
        let mut done = crate::ports::TxDone::default();
        for p in batch.drain() {
            done.packets += 1;
            done.bytes += p.len() as u64;
            self.tx.borrow_mut().push_back(p.data().to_vec());
        }
        done
    }
    fn link(&self) -> LinkInfo {
        LinkInfo {
            up: true,
            mtu: 1500,
            mac: self.mac,
            speed_mbps: None,
        }
    }
}

struct Rig {
    p: Pipeline,
    rx: Batch,
    a_in: Wire,
    a_out: Wire,
    b_in: Wire,
    b_out: Wire,
    counters: Arc<WorkerCounters>,
}

const CFG: &str = r#"
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
[[interface]]
port = "b"
vlan = 100
address = "10.3.0.1/24"
[[route]]
prefix = "198.51.100.0/24"
via = "10.2.0.254"
[icmp]
errors_per_sec = 1000
burst = 100
"#;

fn rig(extra: &str) -> Rig {
    rig_from(&format!("{CFG}{extra}"))
}

fn rig_from(text: &str) -> Rig {
    let cfg = EngineConfig::parse(text).unwrap();
    let fib = Arc::new(Fib::build(&cfg).unwrap());
    let wires: Vec<Wire> = (0..4)
        .map(|_| Rc::new(RefCell::new(VecDeque::new())))
        .collect();
    let ports: Vec<Box<dyn Port>> = vec![
        Box::new(VecPort {
            name: "a".into(),
            mac: MAC_A,
            rx: wires[0].clone(),
            tx: wires[1].clone(),
        }),
        Box::new(VecPort {
            name: "b".into(),
            mac: MAC_B,
            rx: wires[2].clone(),
            tx: wires[3].clone(),
        }),
    ];
    let counters = Arc::new(WorkerCounters::new(2));
    let sync = NeighborSync::mesh(1, 16).pop().unwrap();
    Rig {
        p: Pipeline::new(
            &cfg,
            fib,
            ports,
            PacketPool::new(1024),
            sync,
            counters.clone(),
        ),
        rx: Batch::new(),
        a_in: wires[0].clone(),
        a_out: wires[1].clone(),
        b_in: wires[2].clone(),
        b_out: wires[3].clone(),
        counters,
    }
}

impl Rig {
    fn run(&mut self, now: u64) {
        self.p.poll(&mut self.rx, now);
    }
    fn drops(&self, r: DropReason) -> u64 {
        self.counters.drop_count(r)
    }
}

fn ip(s: &str) -> Ipv4Addr {
    s.parse().unwrap()
}

/// An Ethernet + IPv4 + UDP frame.
fn udp_frame(
    dst_mac: [u8; 6],
    src_mac: [u8; 6],
    src: &str,
    dst: &str,
    ttl: u8,
    payload: usize,
) -> Vec<u8> {
    let mut f = Vec::new();
    f.extend_from_slice(&dst_mac);
    f.extend_from_slice(&src_mac);
    f.extend_from_slice(&[0x08, 0x00]);
    let total = 20 + 8 + payload;
    let mut iph = [0u8; 20];
    iph[0] = 0x45;
    iph[2..4].copy_from_slice(&(total as u16).to_be_bytes());
    iph[8] = ttl;
    iph[9] = 17;
    iph[12..16].copy_from_slice(&ip(src).octets());
    iph[16..20].copy_from_slice(&ip(dst).octets());
    let c = checksum::checksum(&iph);
    iph[10..12].copy_from_slice(&c.to_be_bytes());
    f.extend_from_slice(&iph);
    f.extend_from_slice(&[0x30, 0x39, 0x00, 0x09]);
    f.extend_from_slice(&((8 + payload) as u16).to_be_bytes());
    f.extend_from_slice(&[0, 0]);
    f.extend(std::iter::repeat_n(0xab, payload));
    f
}

fn icmp_echo(dst_mac: [u8; 6], src_mac: [u8; 6], src: &str, dst: &str, ttl: u8) -> Vec<u8> {
    let mut f = udp_frame(dst_mac, src_mac, src, dst, ttl, 8);
    f[14 + 9] = 1;
    f[24..26].fill(0);
    let c = checksum::checksum(&f[14..34]);
    f[24..26].copy_from_slice(&c.to_be_bytes());
    let icmp = &mut f[34..];
    icmp.copy_from_slice(&[8, 0, 0, 0, 0x12, 0x34, 0, 1, 1, 2, 3, 4, 5, 6, 7, 8]);
    let c = checksum::checksum(icmp);
    icmp[2..4].copy_from_slice(&c.to_be_bytes());
    f
}

fn arp_frame(
    op: u16,
    dst_mac: [u8; 6],
    sha: [u8; 6],
    spa: &str,
    tha: [u8; 6],
    tpa: &str,
) -> Vec<u8> {
    let mut f = Vec::new();
    f.extend_from_slice(&dst_mac);
    f.extend_from_slice(&sha);
    f.extend_from_slice(&[0x08, 0x06, 0, 1, 0x08, 0x00, 6, 4]);
    f.extend_from_slice(&op.to_be_bytes());
    f.extend_from_slice(&sha);
    f.extend_from_slice(&ip(spa).octets());
    f.extend_from_slice(&tha);
    f.extend_from_slice(&ip(tpa).octets());
    f.resize(60, 0);
    f
}

fn pop(w: &Wire) -> Vec<u8> {
    w.borrow_mut().pop_front().expect("a frame was sent")
}

#[test]
fn answers_arp_for_own_address() {
    let mut r = rig("");
    r.a_in.borrow_mut().push_back(arp_frame(
        1, [0xff; 6], HOST1, "10.1.0.2", [0; 6], "10.1.0.1",
    ));
    r.run(1);
    let f = pop(&r.a_out);
    assert_eq!(&f[0..6], &HOST1);
    assert_eq!(&f[6..12], &MAC_A);
    assert_eq!(&f[20..22], &[0, 2]); // reply
    assert_eq!(&f[22..28], &MAC_A);
    assert_eq!(&f[28..32], &[10, 1, 0, 1]);
    assert_eq!(&f[32..38], &HOST1);
    assert_eq!(&f[38..42], &[10, 1, 0, 2]);
    // Not for us: not answered, counted.
    r.a_in.borrow_mut().push_back(arp_frame(
        1,
        [0xff; 6],
        HOST1,
        "10.1.0.2",
        [0; 6],
        "10.1.0.77",
    ));
    r.run(2);
    assert!(r.a_out.borrow().is_empty());
    assert_eq!(r.drops(DropReason::ArpNotForUs), 1);
}

#[test]
fn forwards_after_arp_resolution_with_ttl_decremented() {
    let mut r = rig("");
    r.a_in
        .borrow_mut()
        .push_back(udp_frame(MAC_A, HOST1, "10.1.0.2", "10.2.0.2", 64, 100));
    r.run(1);
    // The packet waits; an ARP request goes out of b.
    let req = pop(&r.b_out);
    assert_eq!(&req[0..6], &[0xff; 6]);
    assert_eq!(&req[12..14], &[0x08, 0x06]);
    assert_eq!(&req[38..42], &[10, 2, 0, 2]);
    assert_eq!(r.p.pending_len(), 1);
    // The reply releases it.
    r.b_in
        .borrow_mut()
        .push_back(arp_frame(2, MAC_B, HOST2, "10.2.0.2", MAC_B, "10.2.0.1"));
    r.run(2);
    let f = pop(&r.b_out);
    assert_eq!(&f[0..6], &HOST2);
    assert_eq!(&f[6..12], &MAC_B);
    assert_eq!(f[14 + 8], 63);
    assert_eq!(
        checksum::checksum(&f[14..34]),
        0,
        "header checksum still valid"
    );
    assert_eq!(f.len(), 14 + 128);
    // Later packets go straight through.
    r.a_in
        .borrow_mut()
        .push_back(udp_frame(MAC_A, HOST1, "10.1.0.2", "10.2.0.2", 9, 10));
    r.run(3);
    let f = pop(&r.b_out);
    assert_eq!(f[14 + 8], 8);
    assert_eq!(
        r.counters.ports[1]
            .tx_packets
            .load(std::sync::atomic::Ordering::Relaxed),
        3
    );
}

#[test]
fn vlan_egress_gets_tagged() {
    let mut r = rig("[[neighbor]]\nport = \"b\"\nvlan = 100\naddress = \"10.3.0.9\"\nmac = \"02:00:00:00:03:09\"\n");
    r.a_in
        .borrow_mut()
        .push_back(udp_frame(MAC_A, HOST1, "10.1.0.2", "10.3.0.9", 64, 10));
    r.run(1);
    let f = pop(&r.b_out);
    assert_eq!(&f[12..14], &[0x81, 0x00]);
    assert_eq!(u16::from_be_bytes([f[14], f[15]]) & 0xfff, 100);
    assert_eq!(&f[16..18], &[0x08, 0x00]);
    assert_eq!(f[18 + 8], 63);
    // And a tagged frame in on an untagged-only port is refused.
    let mut tagged = udp_frame(MAC_A, HOST1, "10.1.0.2", "10.3.0.9", 64, 10);
    tagged.splice(12..12, [0x81, 0x00, 0x00, 0x07]);
    r.a_in.borrow_mut().push_back(tagged);
    r.run(2);
    assert_eq!(r.drops(DropReason::VlanUnknown), 1);
}

#[test]
fn ttl_expiry_sends_time_exceeded() {
    let mut r =
        rig("[[neighbor]]\nport = \"a\"\naddress = \"10.1.0.2\"\nmac = \"02:00:00:00:01:01\"\n");
    r.a_in
        .borrow_mut()
        .push_back(udp_frame(MAC_A, HOST1, "10.1.0.2", "10.2.0.2", 1, 10));
    r.run(1);
    assert_eq!(r.drops(DropReason::TtlExpired), 1);
    let f = pop(&r.a_out);
    assert_eq!(&f[0..6], &HOST1);
    assert_eq!(f[14 + 9], 1, "ICMP");
    assert_eq!(
        &f[14 + 12..14 + 16],
        &[10, 1, 0, 1],
        "from the ingress interface"
    );
    assert_eq!(&f[14 + 16..14 + 20], &[10, 1, 0, 2]);
    assert_eq!(f[34], 11, "time exceeded");
    assert_eq!(checksum::checksum(&f[34..]), 0, "ICMP checksum valid");
    assert_eq!(checksum::checksum(&f[14..34]), 0);
    // The quoted header is the original one.
    assert_eq!(&f[42 + 12..42 + 20], &[10, 1, 0, 2, 10, 2, 0, 2]);
}

#[test]
fn no_route_sends_net_unreachable_and_counts() {
    let mut r =
        rig("[[neighbor]]\nport = \"a\"\naddress = \"10.1.0.2\"\nmac = \"02:00:00:00:01:01\"\n");
    r.a_in
        .borrow_mut()
        .push_back(udp_frame(MAC_A, HOST1, "10.1.0.2", "8.8.8.8", 64, 10));
    r.run(1);
    assert_eq!(r.drops(DropReason::NoRoute), 1);
    let f = pop(&r.a_out);
    assert_eq!((f[34], f[35]), (3, 0));
}

#[test]
fn ping_to_own_address_is_answered() {
    let mut r =
        rig("[[neighbor]]\nport = \"a\"\naddress = \"10.1.0.2\"\nmac = \"02:00:00:00:01:01\"\n");
    // Also the address of the other interface, reached through this one.
    for dst in ["10.1.0.1", "10.2.0.1"] {
        r.a_in
            .borrow_mut()
            .push_back(icmp_echo(MAC_A, HOST1, "10.1.0.2", dst, 64));
        r.run(1);
        let f = pop(&r.a_out);
        assert_eq!(&f[0..6], &HOST1);
        assert_eq!(&f[14 + 12..14 + 16], &ip(dst).octets());
        assert_eq!(&f[14 + 16..14 + 20], &[10, 1, 0, 2]);
        assert_eq!(f[34], 0, "echo reply");
        assert_eq!(checksum::checksum(&f[34..]), 0);
        assert_eq!(checksum::checksum(&f[14..34]), 0);
        assert_eq!(&f[38..42], &[0x12, 0x34, 0, 1]);
    }
}

#[test]
fn malformed_frames_are_counted_by_reason() {
    let mut r = rig("");
    let good = udp_frame(MAC_A, HOST1, "10.1.0.2", "10.2.0.2", 64, 10);
    let mut cases: Vec<(Vec<u8>, DropReason)> = Vec::new();
    cases.push((good[..10].to_vec(), DropReason::EthTruncated));
    cases.push((good[..24].to_vec(), DropReason::Ipv4Truncated));
    let mut f = good.clone();
    f[24] ^= 0xff;
    cases.push((f, DropReason::Ipv4BadChecksum));
    let mut f = good.clone();
    f[14] = 0x44;
    cases.push((f, DropReason::Ipv4BadIhl));
    let mut f = good.clone();
    f[14] = 0x4f;
    cases.push((f, DropReason::Ipv4BadIhl));
    let mut f = good.clone();
    f[14] = 0x65;
    cases.push((f, DropReason::Ipv4BadVersion));
    let mut f = good.clone();
    f[16..18].copy_from_slice(&2000u16.to_be_bytes());
    cases.push((f, DropReason::Ipv4BadLength));
    let mut f = good.clone();
    f[12..14].copy_from_slice(&[0x86, 0xdd]);
    cases.push((f, DropReason::EthUnsupportedType));
    let mut f = good.clone();
    f[0..6].copy_from_slice(&[2, 9, 9, 9, 9, 9]);
    cases.push((f, DropReason::EthNotForUs));
    for (f, reason) in cases {
        let before = r.drops(reason);
        r.a_in.borrow_mut().push_back(f);
        r.run(1);
        assert_eq!(r.drops(reason), before + 1, "{reason:?}");
    }
}

#[test]
fn arp_failure_drops_held_packets_and_says_host_unreachable() {
    let mut r =
        rig("[[neighbor]]\nport = \"a\"\naddress = \"10.1.0.2\"\nmac = \"02:00:00:00:01:01\"\n");
    r.a_in
        .borrow_mut()
        .push_back(udp_frame(MAC_A, HOST1, "10.1.0.2", "10.2.0.77", 64, 10));
    r.run(1);
    assert_eq!(r.p.pending_len(), 1);
    let ms = 1_000_000;
    for t in 1..=12 {
        r.run(t * 100 * ms);
    }
    assert_eq!(r.p.pending_len(), 0);
    assert_eq!(r.drops(DropReason::ArpUnresolved), 1);
    let reqs = r
        .b_out
        .borrow()
        .iter()
        .filter(|f| f[12..14] == [8, 6])
        .count();
    assert_eq!(reqs, 3, "default retries");
    let f = pop(&r.a_out);
    assert_eq!((f[34], f[35]), (3, 1));
}

#[test]
fn ecmp_keeps_a_flow_on_one_next_hop() {
    let extra = "[[route]]\nprefix = \"203.0.113.0/24\"\nvia = [\"10.2.0.10\", \"10.2.0.11\"]\n\
        [[neighbor]]\nport = \"b\"\naddress = \"10.2.0.10\"\nmac = \"02:00:00:00:00:10\"\n\
        [[neighbor]]\nport = \"b\"\naddress = \"10.2.0.11\"\nmac = \"02:00:00:00:00:11\"\n";
    let mut r = rig(extra);
    let mut per_dst = std::collections::HashMap::new();
    for i in 0..64 {
        let dst = format!("203.0.113.{}", i + 1);
        for _ in 0..3 {
            r.a_in
                .borrow_mut()
                .push_back(udp_frame(MAC_A, HOST1, "10.1.0.2", &dst, 64, 10));
        }
        r.run(1);
        let macs: std::collections::HashSet<u8> = (0..3).map(|_| pop(&r.b_out)[5]).collect();
        assert_eq!(macs.len(), 1, "one flow, one next hop");
        per_dst.insert(dst, *macs.iter().next().unwrap());
    }
    let used: std::collections::HashSet<_> = per_dst.values().collect();
    assert_eq!(used.len(), 2, "both next hops carry flows");
}

#[test]
fn oversize_without_df_is_fragmented_and_reassembles() {
    let mut r = rig("[[neighbor]]\nport = \"a\"\naddress = \"10.1.0.2\"\nmac = \"02:00:00:00:01:01\"\n[[neighbor]]\nport = \"b\"\naddress = \"10.2.0.2\"\nmac = \"02:00:00:00:02:02\"\n");
    let mut f = udp_frame(MAC_A, HOST1, "10.1.0.2", "10.2.0.2", 64, 1200);
    for (i, b) in f[42..].iter_mut().enumerate() {
        *b = i as u8;
    }
    r.a_in.borrow_mut().push_back(f.clone());
    r.run(1);
    // MTU 1500 on b: goes through whole.
    assert_eq!(pop(&r.b_out).len(), f.len());

    let mut small = rig_with_mtu(576);
    small.a_in.borrow_mut().push_back(f.clone());
    small.run(1);
    let frags: Vec<Vec<u8>> = small.b_out.borrow_mut().drain(..).collect();
    assert_eq!(
        frags.len(),
        3,
        "1228 bytes of IP payload in 552-byte pieces"
    );
    let mut payload = vec![0u8; 0];
    for (k, fr) in frags.iter().enumerate() {
        let ip = &fr[14..];
        assert!(ip.len() <= 576);
        assert_eq!(checksum::checksum(&ip[..20]), 0, "fragment header checksum");
        assert_eq!(ip[8], 63, "TTL decremented once");
        let flags_off = u16::from_be_bytes([ip[6], ip[7]]);
        let mf = flags_off & 0x2000 != 0;
        let off = (flags_off & 0x1fff) as usize * 8;
        assert_eq!(flags_off & 0x4000, 0, "DF clear");
        assert_eq!(mf, k < 2);
        assert_eq!(off, payload.len());
        let total = u16::from_be_bytes([ip[2], ip[3]]) as usize;
        assert_eq!(total, ip.len());
        if k < 2 {
            assert_eq!((total - 20) % 8, 0);
        }
        payload.extend_from_slice(&ip[20..total]);
    }
    assert_eq!(
        payload,
        f[34..].to_vec(),
        "fragments reassemble to the original"
    );
    assert_eq!(
        small
            .counters
            .ipv4_fragments_sent
            .load(std::sync::atomic::Ordering::Relaxed),
        3
    );

    // With DF set: dropped, and the sender learns the MTU.
    let mut df = f.clone();
    df[20] = 0x40;
    df[24..26].fill(0);
    let c = checksum::checksum(&df[14..34]);
    df[24..26].copy_from_slice(&c.to_be_bytes());
    small.a_in.borrow_mut().push_back(df);
    small.run(2);
    assert_eq!(small.drops(DropReason::MtuExceeded), 1);
    let e = pop(&small.a_out);
    assert_eq!((e[34], e[35]), (3, 4), "fragmentation needed");
    assert_eq!(u16::from_be_bytes([e[40], e[41]]), 576, "next-hop MTU");
}

fn rig_with_mtu(mtu: u16) -> Rig {
    let cfg = CFG.replace(
        "name = \"b\"\ndriver = \"mem\"",
        &format!("name = \"b\"\ndriver = \"mem\"\nmtu = {mtu}"),
    );
    let extra = "[[neighbor]]\nport = \"a\"\naddress = \"10.1.0.2\"\nmac = \"02:00:00:00:01:01\"\n[[neighbor]]\nport = \"b\"\naddress = \"10.2.0.2\"\nmac = \"02:00:00:00:02:02\"\n";
    rig_from(&format!("{cfg}{extra}"))
}

#[test]
fn a_table_on_other_interfaces_moves_the_pipeline_to_them() {
    let mut r =
        rig("[[neighbor]]\nport = \"a\"\naddress = \"10.1.0.2\"\nmac = \"02:00:00:00:01:01\"\n");
    let cfg = EngineConfig::parse(&format!(
        "{CFG}[[neighbor]]\nport = \"a\"\naddress = \"10.1.0.2\"\nmac = \"02:00:00:00:01:01\"\n"
    ))
    .unwrap();
    // Port a now holds 10.7.0.1/24 instead of 10.1.0.1/24 (as if pushed).
    let (list, warnings) = crate::pushed_ifaces::effective_interfaces(
        &cfg,
        &[patronus_shm::InterfaceEntry {
            port_name: patronus_shm::layout::encode_name("a").unwrap(),
            addr: u32::from(ip("10.7.0.1")),
            vlan: 0,
            mtu: 0,
            prefix_len: 24,
            reserved: [0; 7],
        }],
    );
    assert!(warnings.is_empty());
    let (fib, _) = Fib::build_on(&cfg, Arc::new(list), &[]).unwrap();
    r.p.set_fib(Arc::new(fib));
    // The old address is gone from port a: no ARP answer for it...
    r.a_in.borrow_mut().push_back(arp_frame(
        1, [0xff; 6], HOST1, "10.1.0.2", [0; 6], "10.1.0.1",
    ));
    r.run(1);
    assert!(
        r.a_out.borrow().is_empty(),
        "no reply for a removed address"
    );
    // ...and the new one answers ARP and ping.
    r.a_in.borrow_mut().push_back(arp_frame(
        1, [0xff; 6], HOST1, "10.7.0.2", [0; 6], "10.7.0.1",
    ));
    r.run(2);
    let f = pop(&r.a_out);
    assert_eq!(&f[12..14], &[0x08, 0x06]);
    assert_eq!(&f[28..32], &[10, 7, 0, 1], "ARP reply from the new address");
    r.a_in
        .borrow_mut()
        .push_back(icmp_echo(MAC_A, HOST1, "10.7.0.2", "10.7.0.1", 64));
    r.run(3);
    let f = pop(&r.a_out);
    assert_eq!(&f[0..6], &HOST1);
    assert_eq!(f[34], 0, "echo reply from the new address");
    assert_eq!(&f[14 + 12..14 + 16], &[10, 7, 0, 1]);
}

mod fast_path_matches_stages {
    //! The fast path must decide exactly what the full stages decide: the
    //! same frames leave each port and the same drops are counted, for
    //! plain packets and for every kind of damaged or unusual one. This rig
    //! is a plain router (no NAT, balancer or classifier), so its fast path
    //! is the one-pass form; the two-pass form, which those features use,
    //! is compared too.
    use super::*;
    use proptest::prelude::*;

    const NEIGH: &str = r#"
[[neighbor]]
port = "b"
address = "10.2.0.254"
mac = "02:00:00:00:02:54"
"#;

    /// One input frame: a plain UDP packet, then one optional change.
    fn frame(dst: u8, ttl: u8, change: u8, at: usize, byte: u8, len: usize) -> Vec<u8> {
        let dsts = [
            "198.51.100.7",
            "10.2.0.254",
            "10.2.0.9",
            "10.1.0.1",
            "192.0.2.1",
        ];
        let mut f = udp_frame(
            MAC_A,
            HOST1,
            "10.1.0.2",
            dsts[dst as usize % dsts.len()],
            ttl,
            len,
        );
        match change % 6 {
            // Any byte of the headers replaced (MACs, type, version, IHL,
            // lengths, checksum, TTL, addresses, ports).
            0 => {
                let i = at % 42;
                f[i] = byte;
            }
            // Cut short.
            1 => f.truncate(at % f.len()),
            // Broadcast destination MAC.
            2 => f[..6].fill(0xff),
            // Trailing padding after the IP packet.
            3 => f.extend_from_slice(&[0u8; 7]),
            _ => {}
        }
        f
    }

    /// Which path the rig's packets take.
    #[derive(Clone, Copy, PartialEq)]
    enum Path {
        /// The plain router's one-pass fast path (the rig's own choice).
        OnePass,
        /// The two-pass fast path of NAT, balancer and classifier setups.
        TwoPass,
        /// No fast path: every packet through the full stages.
        Staged,
    }

    fn run(frames: &[Vec<u8>], path: Path) -> (Vec<Vec<u8>>, Vec<Vec<u8>>, Vec<u64>) {
        let mut r = rig(NEIGH);
        assert!(r.p.plain_router(), "the rig is a plain router");
        r.p.staged_only = path == Path::Staged;
        r.p.two_pass_only = path == Path::TwoPass;
        for f in frames {
            r.a_in.borrow_mut().push_back(f.clone());
        }
        r.run(1);
        let mut a: Vec<Vec<u8>> = r.a_out.borrow_mut().drain(..).collect();
        let mut b: Vec<Vec<u8>> = r.b_out.borrow_mut().drain(..).collect();
        // The fast path may send its packets before the set-aside ones.
        a.sort();
        b.sort();
        let drops = DropReason::ALL.iter().map(|d| r.drops(*d)).collect();
        (a, b, drops)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]
        #[test]
        fn same_output_and_drops(
            frames in proptest::collection::vec(
                (0u8..5, prop_oneof![Just(64u8), 0u8..4], 0u8..8, 0usize..64, any::<u8>(), 0usize..64),
                1..64,
            )
        ) {
            let frames: Vec<Vec<u8>> = frames
                .into_iter()
                .map(|(d, t, c, at, b, len)| frame(d, t, c, at, b, len))
                .collect();
            let staged = run(&frames, Path::Staged);
            let one_pass = run(&frames, Path::OnePass);
            let two_pass = run(&frames, Path::TwoPass);
            prop_assert_eq!(&one_pass, &staged, "one pass");
            prop_assert_eq!(&two_pass, &staged, "two passes");
        }
    }

    #[test]
    fn plain_packets_take_the_fast_path_and_are_forwarded() {
        let frames: Vec<Vec<u8>> = (0..10).map(|i| frame(0, 64, 5, 0, 0, i)).collect();
        let (a, b, drops) = run(&frames, Path::OnePass);
        let named: Vec<_> = DropReason::ALL
            .iter()
            .zip(&drops)
            .filter(|(_, n)| **n > 0)
            .collect();
        assert!(a.is_empty(), "{named:?} {a:?}");
        assert_eq!(b.len(), 10, "{named:?}");
        assert_eq!(b.len(), 10);
        assert!(drops.iter().all(|d| *d == 0));
        assert!(b
            .iter()
            .all(|f| f[..6] == [2, 0, 0, 0, 2, 0x54] && f[14 + 8] == 63));
    }
}

mod ipv6;
mod lb;
mod nat;
mod punt;
