//! The pipeline's WireGuard path allocates nothing after warm-up: two
//! pipelines (site A and site B, each with a `[[wireguard]]` tunnel and a
//! `[[route]] tunnel = "wg0"` to the other site's inside subnet) joined
//! by a preallocated in-memory wire, batches of inner packets both ways
//! (encapsulated on one side, decapsulated on the other), timer ticks over
//! 200 fake seconds with quiet spells (keepalives) and a rekey, and the
//! counters published into the plan's shared counters. A counting global
//! allocator watches every poll.
//!
//! The one exception is the one `wg_no_alloc.rs` documents: boringtun's
//! handshake code copies each AEAD input into a `Vec`, so a poll that
//! received a handshake message may allocate a few small copies (at most 3
//! per message). The wire delivers a handshake message alone in its burst,
//! so every other poll must allocate nothing.

use std::cell::RefCell;
use std::net::Ipv4Addr;
use std::rc::Rc;
use std::sync::Arc;

use base64::Engine as _;
use patronus_engine::buffer::{Batch, PacketPool, BUF_SIZE};
use patronus_engine::config::{wg_plan, EngineConfig};
use patronus_engine::counters::{read, WorkerCounters};
use patronus_engine::fib::Fib;
use patronus_engine::pipeline::{NeighborSync, Pipeline};
use patronus_engine::ports::{LinkInfo, Port, TxDone};
use patronus_engine::wg::{public_key_of, PeerCounters, PeerId};
use patronus_engine::wg_plan::WgPlan;
use patronus_engine::wire::checksum::checksum;

mod common;

#[global_allocator]
static GLOBAL: common::Counting = common::Counting;

const MS: u64 = 1_000_000;
const SEC: u64 = 1_000 * MS;
/// Frames a wire holds (far more than one step puts on it).
const WIRE_SLOTS: usize = 2048;

const LAN_A_MAC: [u8; 6] = [2, 0, 0, 0, 1, 1];
const WAN_A_MAC: [u8; 6] = [2, 0, 0, 0, 1, 2];
const LAN_B_MAC: [u8; 6] = [2, 0, 0, 0, 2, 1];
const WAN_B_MAC: [u8; 6] = [2, 0, 0, 0, 2, 2];
const HOST_A_MAC: [u8; 6] = [2, 0, 0, 0, 0xa, 5];
const HOST_B_MAC: [u8; 6] = [2, 0, 0, 0, 0xb, 7];
const HOST_A: Ipv4Addr = Ipv4Addr::new(10, 1, 0, 5);
const HOST_B: Ipv4Addr = Ipv4Addr::new(10, 2, 0, 7);

/// A one-way link: a ring of preallocated frame slots (pushing copies
/// into a slot, so neither side allocates).
struct Wire {
    slots: Vec<[u8; BUF_SIZE]>,
    lens: Vec<usize>,
    head: usize,
    len: usize,
    /// Frames refused because the ring was full (must stay 0).
    overflow: u64,
    /// Handshake messages (WireGuard types 1..=3) taken off this wire.
    handshakes_delivered: u64,
    /// Frames taken off (delivered to a pipeline, or counted by the test).
    delivered: u64,
}

type Link = Rc<RefCell<Wire>>;

fn link() -> Link {
    Rc::new(RefCell::new(Wire {
        slots: vec![[0u8; BUF_SIZE]; WIRE_SLOTS],
        lens: vec![0; WIRE_SLOTS],
        head: 0,
        len: 0,
        overflow: 0,
        handshakes_delivered: 0,
        delivered: 0,
    }))
}

impl Wire {
    /// A free slot to write a frame of `len` bytes into.
    fn push_with(&mut self, len: usize, fill: impl FnOnce(&mut [u8])) {
        if self.len == WIRE_SLOTS || len > BUF_SIZE {
            self.overflow += 1;
            return;
        }
        let i = (self.head + self.len) % WIRE_SLOTS;
        fill(&mut self.slots[i][..len]);
        self.lens[i] = len;
        self.len += 1;
    }

    fn front(&self) -> Option<&[u8]> {
        (self.len > 0).then(|| &self.slots[self.head][..self.lens[self.head]])
    }

    fn pop(&mut self) {
        self.head = (self.head + 1) % WIRE_SLOTS;
        self.len -= 1;
        self.delivered += 1;
    }
}

/// A WireGuard handshake message (initiation, response, cookie) in an
/// untagged Ethernet/IPv4/UDP frame.
fn is_handshake(frame: &[u8]) -> bool {
    let Some(&vihl) = frame.get(14) else {
        return false;
    };
    let udp = 14 + usize::from(vihl & 0x0f) * 4;
    frame.get(9 + 14) == Some(&17) && matches!(frame.get(udp + 8), Some(1..=3))
}

/// A port whose RX and TX are wires. A handshake message is delivered
/// alone in its burst, so that a poll's allocations can be charged to it.
struct WirePort {
    name: &'static str,
    mac: [u8; 6],
    rx: Link,
    tx: Link,
}

impl Port for WirePort {
    fn name(&self) -> &str {
        self.name
    }

    fn rx_burst(&mut self, pool: &mut PacketPool, batch: &mut Batch) -> usize {
        let mut rx = self.rx.borrow_mut();
        let mut n = 0;
        while batch.space() > 0 {
            let Some(f) = rx.front() else { break };
            let handshake = is_handshake(f);
            if handshake && n > 0 {
                break;
            }
            let p = pool.alloc_from(f).expect("pool has room");
            let _ = batch.push(p);
            rx.pop();
            n += 1;
            if handshake {
                rx.handshakes_delivered += 1;
                break;
            }
        }
        n
    }

    fn tx_burst(&mut self, batch: &mut Batch) -> TxDone {
        let mut tx = self.tx.borrow_mut();
        let mut done = TxDone::default();
        batch.take_each(|_, p| {
            done.packets += 1;
            done.bytes += p.len() as u64;
            tx.push_with(p.len(), |slot| slot.copy_from_slice(p.data()));
        });
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

fn b64(key: &[u8; 32]) -> String {
    base64::engine::general_purpose::STANDARD.encode(key)
}

/// One site's configuration: `lan` and `wan` ports, a tunnel to the peer
/// site's inside subnet, static neighbors (no ARP).
#[allow(clippy::too_many_arguments)]
fn site_config(
    own_key: &[u8; 32],
    peer_key: &[u8; 32],
    lan: &str,
    wan: Ipv4Addr,
    peer_wan: Ipv4Addr,
    peer_wan_mac: &str,
    host: Ipv4Addr,
    host_mac: &str,
    remote: &str,
) -> String {
    format!(
        r#"
[[port]]
name = "lan"
driver = "mem"
[[port]]
name = "wan"
driver = "mem"
[[interface]]
port = "lan"
address = "{lan}"
[[interface]]
port = "wan"
address = "{wan}/24"
[[neighbor]]
port = "wan"
address = "{peer_wan}"
mac = "{peer_wan_mac}"
[[neighbor]]
port = "lan"
address = "{host}"
mac = "{host_mac}"
[[route]]
prefix = "{remote}"
tunnel = "wg0"
[[wireguard]]
name = "wg0"
private_key = "{own}"
listen_port = 51820
address = "{wan}"
[[wireguard.peer]]
public_key = "{peer}"
endpoint = "{peer_wan}:51820"
allowed_ips = ["{remote}"]
persistent_keepalive = 5
preshared_key = "{psk}"
"#,
        own = b64(own_key),
        peer = b64(&public_key_of(peer_key)),
        psk = b64(&[9; 32]),
    )
}

fn mac_text(m: [u8; 6]) -> String {
    m.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

struct Site {
    p: Pipeline,
    rx: Batch,
    /// The tunnels the site runs, and where its worker publishes their
    /// counters.
    plan: Arc<WgPlan>,
    /// Frames the test puts on the site's LAN, and what the site sends there.
    lan_in: Link,
    lan_out: Link,
    /// Outer frames arriving from the other site.
    wan_in: Link,
}

fn site(cfg_text: &str, lan_mac: [u8; 6], wan_mac: [u8; 6], wan_in: Link, wan_out: Link) -> Site {
    let cfg = EngineConfig::parse(cfg_text).unwrap();
    let fib = Arc::new(Fib::build(&cfg).unwrap());
    let (lan_in, lan_out) = (link(), link());
    let ports: Vec<Box<dyn Port>> = vec![
        Box::new(WirePort {
            name: "lan",
            mac: lan_mac,
            rx: lan_in.clone(),
            tx: lan_out.clone(),
        }),
        Box::new(WirePort {
            name: "wan",
            mac: wan_mac,
            rx: wan_in.clone(),
            tx: wan_out,
        }),
    ];
    let counters = Arc::new(WorkerCounters::new(2));
    let sync = NeighborSync::mesh(1, 16).pop().unwrap();
    let mut p = Pipeline::new(&cfg, fib, ports, PacketPool::new(4096), sync, counters);
    let plan = Arc::new(wg_plan(&cfg, 1).unwrap());
    p.apply_wg_plan(&plan, 0, 1, SEC).unwrap();
    Site {
        p,
        rx: Batch::new(),
        plan,
        lan_in,
        lan_out,
        wan_in,
    }
}

/// Puts an untagged IPv4/UDP frame of `ip_len` IP bytes from a host onto
/// a LAN (written into the wire's slot: no heap).
fn send_from_host(
    lan: &Link,
    src_mac: [u8; 6],
    dst_mac: [u8; 6],
    src: Ipv4Addr,
    dst: Ipv4Addr,
    ip_len: usize,
) {
    lan.borrow_mut().push_with(14 + ip_len, |f| {
        f.fill(0xab);
        f[..6].copy_from_slice(&dst_mac);
        f[6..12].copy_from_slice(&src_mac);
        f[12..14].copy_from_slice(&[0x08, 0x00]);
        let ip = &mut f[14..];
        ip[0] = 0x45;
        ip[1] = 0;
        ip[2..4].copy_from_slice(&(ip_len as u16).to_be_bytes());
        ip[4..8].copy_from_slice(&[0, 0, 0x40, 0]);
        ip[8] = 64;
        ip[9] = 17;
        ip[10..12].copy_from_slice(&[0, 0]);
        ip[12..16].copy_from_slice(&src.octets());
        ip[16..20].copy_from_slice(&dst.octets());
        let c = checksum(&ip[..20]);
        ip[10..12].copy_from_slice(&c.to_be_bytes());
        ip[20..22].copy_from_slice(&40000u16.to_be_bytes());
        ip[22..24].copy_from_slice(&9u16.to_be_bytes());
        ip[24..26].copy_from_slice(&((ip_len - 20) as u16).to_be_bytes());
        ip[26..28].copy_from_slice(&[0, 0]);
    });
}

/// Allocations seen, by what the poll received.
#[derive(Default, Debug)]
struct Seen {
    /// Polls that received no handshake message: must be 0.
    data: u64,
    data_polls: u64,
    /// Polls that received one handshake message each.
    handshake: u64,
    handshake_polls: u64,
}

/// Polls `s` once, charging its allocations to `seen`.
fn poll(seen: &mut Seen, s: &mut Site, now: u64) {
    let before = s.wan_in.borrow().handshakes_delivered;
    common::start();
    s.p.poll(&mut s.rx, now);
    let n = common::stop();
    let handshakes = s.wan_in.borrow().handshakes_delivered - before;
    assert!(handshakes <= 1, "one handshake message per burst");
    if handshakes == 1 {
        seen.handshake += n;
        seen.handshake_polls += 1;
    } else {
        seen.data += n;
        seen.data_polls += 1;
    }
}

/// Empties a LAN's output; returns how many frames it held.
fn take_lan(lan: &Link) -> u64 {
    let mut l = lan.borrow_mut();
    let mut n = 0;
    while l.front().is_some() {
        l.pop();
        n += 1;
    }
    n
}

/// The peer's counters as the site's tunnel keeps them.
fn peer(s: &Site) -> PeerCounters {
    *s.p.tunnels()
        .next()
        .unwrap()
        .peer_counters(PeerId(0))
        .unwrap()
}

/// One step: `burst` frames each way (none when quiet), then polls both
/// sites until the wires are quiet; returns the inner frames delivered
/// on both LANs.
fn step(seen: &mut Seen, a: &mut Site, b: &mut Site, now: u64, burst: usize) -> u64 {
    const SIZES: [usize; 4] = [60, 576, 1400, 1420];
    for i in 0..burst {
        let len = SIZES[i % SIZES.len()];
        send_from_host(&a.lan_in, HOST_A_MAC, LAN_A_MAC, HOST_A, HOST_B, len);
        send_from_host(&b.lan_in, HOST_B_MAC, LAN_B_MAC, HOST_B, HOST_A, len);
    }
    for _ in 0..6 {
        poll(seen, a, now);
        poll(seen, b, now);
    }
    take_lan(&a.lan_out) + take_lan(&b.lan_out)
}

#[test]
fn wg_pipeline_path_does_not_allocate() {
    let (ka, kb) = ([0x11; 32], [0x22; 32]);
    let (wan_a, wan_b) = (Ipv4Addr::new(192, 0, 2, 1), Ipv4Addr::new(192, 0, 2, 2));
    let cfg_a = site_config(
        &ka,
        &kb,
        "10.1.0.1/24",
        wan_a,
        wan_b,
        &mac_text(WAN_B_MAC),
        HOST_A,
        &mac_text(HOST_A_MAC),
        "10.2.0.0/24",
    );
    let cfg_b = site_config(
        &kb,
        &ka,
        "10.2.0.1/24",
        wan_b,
        wan_a,
        &mac_text(WAN_A_MAC),
        HOST_B,
        &mac_text(HOST_B_MAC),
        "10.1.0.0/24",
    );
    let (a_to_b, b_to_a) = (link(), link());
    let mut a = site(&cfg_a, LAN_A_MAC, WAN_A_MAC, b_to_a.clone(), a_to_b.clone());
    let mut b = site(&cfg_b, LAN_B_MAC, WAN_B_MAC, a_to_b.clone(), b_to_a.clone());

    // Warm-up: the first handshake (its trigger packet is dropped), both
    // sessions confirmed, process-wide lazies (clock, OS RNG) touched.
    let mut now = 2 * SEC;
    let mut warm = Seen::default();
    let mut warm_delivered = 0;
    for _ in 0..20 {
        now += 100 * MS;
        warm_delivered += step(&mut warm, &mut a, &mut b, now, 8);
    }
    assert!(warm_delivered > 0, "the tunnel came up: {warm:?}");
    let hs_before = peer(&a).handshakes_completed + peer(&b).handshakes_completed;
    let keepalives_before = peer(&a).keepalives_sent + peer(&b).keepalives_sent;
    let (rx_a_before, rx_b_before) = (peer(&a).rx_packets, peer(&b).rx_packets);

    // 200 s in 250 ms steps: 10 s of traffic, then 10 s of quiet
    // (persistent keepalives every 5 s), crossing REKEY_AFTER_TIME.
    let mut seen = Seen::default();
    let (mut injected, mut delivered) = (0u64, 0u64);
    for i in 0..800u64 {
        now += 250 * MS;
        let burst = if (i / 40) % 2 == 0 { 32 } else { 0 };
        injected += 2 * burst as u64;
        delivered += step(&mut seen, &mut a, &mut b, now, burst);
    }

    assert_eq!(
        seen.data, 0,
        "allocations on the pipeline's WireGuard data path: {seen:?}"
    );
    // boringtun's handshake code: at most 3 small copies per message.
    assert!(seen.handshake_polls >= 2, "{seen:?}");
    assert!(
        seen.handshake <= 3 * seen.handshake_polls,
        "handshake allocations: {seen:?}"
    );

    // The run did what it claims.
    for w in [&a_to_b, &b_to_a, &a.lan_in, &b.lan_in] {
        assert_eq!(w.borrow().overflow, 0, "a wire overflowed");
    }
    let (ca, cb) = (peer(&a), peer(&b));
    assert!(
        delivered * 100 >= injected * 95,
        "delivered {delivered} of {injected}: {ca:?} {cb:?}"
    );
    assert!(
        ca.rx_packets - rx_a_before > 5000 && cb.rx_packets - rx_b_before > 5000,
        "decapsulated on both sides: {ca:?} {cb:?}"
    );
    assert!(
        ca.handshakes_completed + cb.handshakes_completed > hs_before,
        "rekeyed: {ca:?} {cb:?}"
    );
    assert!(
        ca.keepalives_sent + cb.keepalives_sent > keepalives_before,
        "keepalives in the quiet spells: {ca:?} {cb:?}"
    );
    // Counters reached the plan's shared counters (housekeeping).
    for (s, c) in [(&a, ca), (&b, cb)] {
        let rx = s
            .plan
            .counter_names
            .iter()
            .position(|n| n.ends_with(".rx_packets"))
            .unwrap();
        assert_eq!(read(&s.plan.counters[0][rx]), c.rx_packets);
    }
}
