//! End-to-end tests of the afpacket port on a veth pair between two network
//! namespaces the test creates (names carry the pid) and always deletes.
//! Ports are not `Send`, so each is opened inside a thread that first joins
//! the namespace with `setns(CLONE_NEWNET)`.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::{AsRawFd, OwnedFd};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use super::features::{GsoLimits, GsoSupport};
use super::offload::{csum_add, fold};
use super::{sys, AfPacketPort};
use crate::buffer::{Batch, PacketPool};
use crate::config::{PortConfig, PortDriver, RxRingKind};
use crate::ports::Port;

/// Experimental ethertype for the test frames (IEEE local experimental 1).
const TEST_ETHERTYPE: u16 = 0x88b5;
/// Give up waiting for frames after this long (a failure, not a threshold).
const WAIT: Duration = Duration::from_secs(20);

static SEQ: AtomicUsize = AtomicUsize::new(0);

fn run(cmd: &str, args: &[&str]) {
    let out = Command::new(cmd)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{cmd} {args:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Two namespaces joined by a veth pair: `va` in `a` (the port's side), `vb`
/// in `b` (the peer). Deleted on drop, even when the test panics.
struct Netns {
    a: String,
    b: String,
    va: String,
    vb: String,
}

impl Netns {
    fn new() -> Self {
        let pid = std::process::id();
        let n = SEQ.fetch_add(1, Ordering::Relaxed);
        let ns = Netns {
            a: format!("pafp-a-{pid}-{n}"),
            b: format!("pafp-b-{pid}-{n}"),
            va: format!("pa{pid}x{n}"),
            vb: format!("pb{pid}x{n}"),
        };
        run("ip", &["netns", "add", &ns.a]);
        run("ip", &["netns", "add", &ns.b]);
        run(
            "ip",
            &[
                "link", "add", &ns.va, "netns", &ns.a, "type", "veth", "peer", "name", &ns.vb,
                "netns", &ns.b,
            ],
        );
        for (n, v) in [(&ns.a, &ns.va), (&ns.b, &ns.vb)] {
            // No IPv6: the kernel would send ND/MLD frames of its own.
            let key = format!("net.ipv6.conf.{v}.disable_ipv6=1");
            run("ip", &["netns", "exec", n, "sysctl", "-q", "-w", &key]);
            run("ip", &["-n", n, "link", "set", v, "up"]);
        }
        ns
    }

    fn mac_of_a(&self) -> [u8; 6] {
        let out = Command::new("ip")
            .args(["-n", &self.a, "-o", "link", "show", "dev", &self.va])
            .output()
            .unwrap();
        let s = String::from_utf8_lossy(&out.stdout).to_string();
        let m = s
            .split("link/ether ")
            .nth(1)
            .unwrap()
            .split(' ')
            .next()
            .unwrap();
        crate::config::parse_mac(m).unwrap()
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        // Deleting a namespace deletes the veth end inside it (and its peer).
        for n in [&self.a, &self.b] {
            let _ = Command::new("ip").args(["netns", "del", n]).status();
        }
    }
}

/// Runs `f` on a new thread inside namespace `ns`.
fn in_ns<T: Send + 'static>(ns: &str, f: impl FnOnce() -> T + Send + 'static) -> JoinHandle<T> {
    let path = format!("/var/run/netns/{ns}");
    thread::spawn(move || {
        let file = std::fs::File::open(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        // SAFETY: plain syscall on a valid namespace fd; only this thread moves.
        let r = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
        assert_eq!(r, 0, "setns {path}: {}", std::io::Error::last_os_error());
        f()
    })
}

fn port_cfg_ring(iface: &str, ring: RxRingKind) -> PortConfig {
    PortConfig {
        rx_ring: Some(ring),
        ..port_cfg(iface)
    }
}

fn port_cfg(iface: &str) -> PortConfig {
    PortConfig {
        name: "test0".into(),
        driver: PortDriver::Afpacket,
        // Some tests give the veth a kernel address too: keep the kernel stack on.
        kernel_ingress: Some(crate::config::KernelIngress::Pass),
        iface: Some(iface.into()),
        mac: None,
        mtu: None,
        rx_ring: None,
        ring_block_size: None,
        ring_blocks: None,
        afxdp: None,
        input: None,
        output: None,
        generator: None,
        device: None,
    }
}

/// A plain AF_PACKET socket for the peer side: sends and captures frames.
struct RawSock(OwnedFd);

impl RawSock {
    fn open(iface: &str) -> Self {
        let fd = sys::packet_socket().unwrap();
        let one: libc::c_int = 1;
        sys::set_packet_opt(fd.as_raw_fd(), libc::PACKET_IGNORE_OUTGOING, &one, "ign").unwrap();
        sys::bind(
            fd.as_raw_fd(),
            sys::ifindex(iface).unwrap(),
            sys::ETH_P_ALL_BE,
        )
        .unwrap();
        RawSock(fd)
    }

    fn send(&self, frame: &[u8]) {
        loop {
            // SAFETY: `frame` is valid for reads of its length.
            let r = unsafe {
                libc::send(
                    self.0.as_raw_fd(),
                    frame.as_ptr() as *const libc::c_void,
                    frame.len(),
                    0,
                )
            };
            if r == frame.len() as isize {
                return;
            }
            let e = std::io::Error::last_os_error();
            assert_eq!(e.raw_os_error(), Some(libc::EAGAIN), "send: {e}");
            thread::sleep(Duration::from_millis(1));
        }
    }

    /// Frames of `TEST_ETHERTYPE` until `n` arrived or `WAIT` passed.
    fn capture(&self, n: usize) -> Vec<Vec<u8>> {
        let mut got = Vec::new();
        let mut buf = vec![0u8; 65536];
        let end = Instant::now() + WAIT;
        while got.len() < n && Instant::now() < end {
            // SAFETY: `buf` is valid for writes of its length.
            let r = unsafe {
                libc::recv(
                    self.0.as_raw_fd(),
                    buf.as_mut_ptr() as *mut libc::c_void,
                    buf.len(),
                    0,
                )
            };
            if r < 0 {
                thread::sleep(Duration::from_millis(1));
                continue;
            }
            let f = &buf[..r as usize];
            if f.len() >= 14 && u16::from_be_bytes([f[12], f[13]]) == TEST_ETHERTYPE {
                got.push(f.to_vec());
            }
        }
        got
    }
}

fn test_frame(dst: [u8; 6], i: usize) -> Vec<u8> {
    let len = 60 + (i * 97) % 1455; // 60..=1514
    let mut f = vec![0u8; len];
    f[0..6].copy_from_slice(&dst);
    f[6..12].copy_from_slice(&[0x02, 0xee, 0, 0, 0, 0x01]);
    f[12..14].copy_from_slice(&TEST_ETHERTYPE.to_be_bytes());
    for (j, b) in f[14..].iter_mut().enumerate() {
        *b = (i * 31 + j) as u8;
    }
    f[14..18].copy_from_slice(&(i as u32).to_be_bytes());
    f
}

/// Polls `port` until `done` says so or `WAIT` passes.
fn poll(port: &mut AfPacketPort, pool: &mut PacketPool, mut done: impl FnMut(&[u8]) -> bool) {
    let mut batch = Batch::new();
    let end = Instant::now() + WAIT;
    while Instant::now() < end {
        if port.rx_burst(pool, &mut batch) == 0 {
            thread::sleep(Duration::from_micros(200));
        }
        let mut finished = false;
        for p in batch.drain() {
            finished |= done(p.data());
        }
        if finished {
            return;
        }
    }
}

#[test]
fn missing_interface_is_a_clear_error() {
    let e = AfPacketPort::open(&port_cfg("nosuchif0"), 0, 1)
        .err()
        .expect("must fail");
    let s = e.to_string();
    assert!(
        s.contains("nosuchif0") && s.contains("no such network interface"),
        "{s}"
    );
}

#[test]
fn frames_from_the_peer_arrive_intact() {
    frames_arrive_intact(RxRingKind::V2);
}

#[test]
fn frames_from_the_peer_arrive_intact_through_a_v3_ring() {
    frames_arrive_intact(RxRingKind::V3);
}

fn frames_arrive_intact(ring: RxRingKind) {
    let ns = Netns::new();
    let (va, vb, expect_mac) = (ns.va.clone(), ns.vb.clone(), ns.mac_of_a());
    let (tx, rx) = mpsc::channel();
    let port_thread = in_ns(&ns.a, move || {
        let mut port = AfPacketPort::open(&port_cfg_ring(&va, ring), 0, 1).unwrap();
        let link = port.link();
        tx.send(link.mac).unwrap();
        let mut pool = PacketPool::new(4096);
        let mut got = Vec::new();
        poll(&mut port, &mut pool, |f| {
            if f.len() >= 14 && u16::from_be_bytes([f[12], f[13]]) == TEST_ETHERTYPE {
                got.push(f.to_vec());
            }
            got.len() == 64
        });
        (link, got, port.stats())
    });
    let mac = rx.recv().unwrap();
    let sent: Vec<Vec<u8>> = (0..64).map(|i| test_frame(mac, i)).collect();
    let to_send = sent.clone();
    in_ns(&ns.b, move || {
        let s = RawSock::open(&vb);
        for f in &to_send {
            s.send(f);
        }
    })
    .join()
    .unwrap();
    let (link, got, stats) = port_thread.join().unwrap();
    assert_eq!(link.mac, expect_mac);
    assert_eq!(link.mtu, 1500);
    assert!(link.up);
    assert_eq!(got.len(), sent.len(), "frames received");
    assert!(got == sent, "frames differ from what was sent");
    assert_eq!(stats.rx_errors, 0);
}

#[test]
fn tx_burst_reaches_the_peer() {
    let ns = Netns::new();
    let (va, vb) = (ns.va.clone(), ns.vb.clone());
    let (ready_tx, ready_rx) = mpsc::channel();
    let capture = in_ns(&ns.b, move || {
        let s = RawSock::open(&vb);
        ready_tx.send(()).unwrap();
        s.capture(64)
    });
    ready_rx.recv().unwrap();
    let dst = [0x02, 0xdd, 0, 0, 0, 0x02];
    let sent: Vec<Vec<u8>> = (0..64).map(|i| test_frame(dst, i)).collect();
    let to_send = sent.clone();
    let (n, stats) = in_ns(&ns.a, move || {
        let mut port = AfPacketPort::open(&port_cfg(&va), 0, 1).unwrap();
        let mut pool = PacketPool::new(256);
        let mut batch = Batch::new();
        for f in &to_send {
            batch.push(pool.alloc_from(f).unwrap()).unwrap();
        }
        let n = port.tx_burst(&mut batch).packets;
        assert!(batch.is_empty());
        (n, port.stats())
    })
    .join()
    .unwrap();
    assert_eq!(n, 64);
    assert_eq!(stats.tx_errors, 0);
    let got = capture.join().unwrap();
    assert_eq!(got.len(), 64, "frames captured at the peer");
    assert!(got == sent, "captured frames differ from what was sent");
}

#[test]
fn mac_override_sets_promiscuous_mode() {
    let ns = Netns::new();
    let va = ns.va.clone();
    let a = ns.a.clone();
    let (mac, flags_open) = in_ns(&ns.a, move || {
        let mut cfg = port_cfg(&va);
        cfg.mac = Some("02:aa:bb:cc:dd:ee".into());
        let port = AfPacketPort::open(&cfg, 0, 1).unwrap();
        let out = Command::new("ip")
            .args(["-n", &a, "-d", "-o", "link", "show", "dev", &va])
            .output();
        (
            port.link().mac,
            String::from_utf8_lossy(&out.unwrap().stdout).to_string(),
        )
    })
    .join()
    .unwrap();
    assert_eq!(mac, [0x02, 0xaa, 0xbb, 0xcc, 0xdd, 0xee]);
    // PACKET_MR_PROMISC raises the promiscuity count (not the user flag).
    assert!(flags_open.contains("promiscuity 1"), "{flags_open}");
}

/// Parsed client→server TCP segment as the port handed it over.
struct Seen {
    len: usize,
    ip_ok: bool,
    tcp_ok: bool,
    flags: u8,
    seq: u32,
    payload: Vec<u8>,
}

fn parse_tcp4(f: &[u8], src: [u8; 4], port: u16) -> Option<Seen> {
    if f.len() < 54 || u16::from_be_bytes([f[12], f[13]]) != 0x0800 || f[23] != 6 {
        return None;
    }
    if f[26..30] != src {
        return None;
    }
    let ihl = (f[14] & 0x0f) as usize * 4;
    let tot = u16::from_be_bytes([f[16], f[17]]) as usize;
    let l4 = 14 + ihl;
    if u16::from_be_bytes([f[l4 + 2], f[l4 + 3]]) != port || 14 + tot > f.len() {
        return None;
    }
    let seg = &f[l4..14 + tot];
    let pseudo = csum_add(0, &f[26..34]) + 6 + seg.len() as u64;
    let doff = (seg[12] >> 4) as usize * 4;
    Some(Seen {
        len: f.len(),
        ip_ok: fold(csum_add(0, &f[14..l4])) == 0xffff,
        tcp_ok: fold(csum_add(pseudo, seg)) == 0xffff,
        flags: seg[13],
        seq: u32::from_be_bytes([seg[4], seg[5], seg[6], seg[7]]),
        payload: seg[doff..].to_vec(),
    })
}

#[test]
fn tcp_with_offloads_on_is_segmented_and_checksummed() {
    // The default ring reads superframes off the socket beside it
    // (TP_STATUS_COPY); the V3 ring holds them in its blocks.
    tcp_superframes_are_segmented(RxRingKind::V2);
}

#[test]
fn tcp_with_offloads_on_is_segmented_and_checksummed_through_a_v3_ring() {
    tcp_superframes_are_segmented(RxRingKind::V3);
}

fn tcp_superframes_are_segmented(ring: RxRingKind) {
    const LEN: usize = 3 << 20;
    const PORT: u16 = 5301;
    let ns = Netns::new();
    // Kernel addresses on both ends, only in this test, so a real TCP
    // connection runs across the veth with TSO/checksum offload left on.
    run(
        "ip",
        &["-n", &ns.a, "addr", "add", "10.55.0.1/24", "dev", &ns.va],
    );
    run(
        "ip",
        &["-n", &ns.b, "addr", "add", "10.55.0.2/24", "dev", &ns.vb],
    );
    let data: Vec<u8> = (0..LEN)
        .map(|i| (i % 251) as u8 ^ (i >> 12) as u8)
        .collect();

    let va = ns.va.clone();
    let (ready_tx, ready_rx) = mpsc::channel();
    let (stop_tx, stop_rx) = mpsc::channel::<()>();
    let port_thread = in_ns(&ns.a, move || {
        let mut port = AfPacketPort::open(&port_cfg_ring(&va, ring), 0, 1).unwrap();
        ready_tx.send(()).unwrap();
        let mut pool = PacketPool::new(4096);
        let mut seen = Vec::new();
        let mut from_server = 0usize;
        let mut stop_at: Option<Instant> = None;
        let mut batch = Batch::new();
        let end = Instant::now() + WAIT;
        while Instant::now() < end {
            if port.rx_burst(&mut pool, &mut batch) == 0 {
                thread::sleep(Duration::from_micros(100));
            } else if stop_at.is_some() {
                // Still draining: wait for the ring to stay empty (a
                // loaded machine may run this thread late).
                stop_at = Some(Instant::now() + Duration::from_millis(300));
            }
            for p in batch.drain() {
                if let Some(s) = parse_tcp4(p.data(), [10, 55, 0, 2], PORT) {
                    seen.push(s);
                }
                if p.data().len() >= 30 && p.data()[26..30] == [10, 55, 0, 1] {
                    from_server += 1;
                }
            }
            // After the transfer, drain what is still in the ring.
            if stop_at.is_none() && stop_rx.try_recv().is_ok() {
                stop_at = Some(Instant::now() + Duration::from_millis(300));
            }
            if stop_at.is_some_and(|t| Instant::now() > t) {
                break;
            }
        }
        (seen, from_server, port.gso_frames_split(), port.stats())
    });
    ready_rx.recv().unwrap();

    let (bound_tx, bound_rx) = mpsc::channel();
    let server = in_ns(&ns.a, move || {
        let l = TcpListener::bind(("10.55.0.1", PORT)).unwrap();
        bound_tx.send(()).unwrap();
        let (mut c, _) = l.accept().unwrap();
        let mut got = Vec::new();
        c.read_to_end(&mut got).unwrap();
        got
    });
    bound_rx.recv().unwrap();
    let to_send = data.clone();
    in_ns(&ns.b, move || {
        let mut c = TcpStream::connect(("10.55.0.1", PORT)).unwrap();
        c.write_all(&to_send).unwrap();
    })
    .join()
    .unwrap();
    let got = server.join().unwrap();
    assert_eq!(got.len(), LEN, "the kernel's own TCP transfer completed");
    stop_tx.send(()).unwrap();
    let (seen, from_server, gso_split, stats) = port_thread.join().unwrap();

    assert_eq!(
        from_server, 0,
        "PACKET_IGNORE_OUTGOING: the port saw the host's own frames"
    );
    assert!(
        gso_split > 0,
        "no GSO superframe was seen: the test did not exercise segmentation"
    );
    assert_eq!(stats.rx_errors, 0);
    let syn = seen
        .iter()
        .find(|s| s.flags & 0x12 == 0x02)
        .expect("SYN seen");
    let base = syn.seq.wrapping_add(1);
    let mut stream = vec![0u8; LEN];
    let mut have = vec![false; LEN];
    for s in &seen {
        assert!(
            s.len <= 1500 + 14,
            "frame of {} bytes exceeds MTU + 14",
            s.len
        );
        assert!(s.ip_ok, "bad IPv4 header checksum");
        assert!(s.tcp_ok, "bad TCP checksum (seq {})", s.seq);
        let off = s.seq.wrapping_sub(base) as usize;
        if s.payload.is_empty() {
            continue;
        }
        assert!(off + s.payload.len() <= LEN, "segment beyond the stream");
        for (k, b) in s.payload.iter().enumerate() {
            if have[off + k] {
                assert_eq!(stream[off + k], *b, "retransmission disagrees");
            }
            stream[off + k] = *b;
            have[off + k] = true;
        }
    }
    let missing = have.iter().filter(|h| !**h).count();
    // The port only watches the kernel's own connection: when its ring
    // overflows under load (counted in rx_missed), the bytes of the frames
    // it missed are never seen again (the connection itself lost nothing).
    // Then only what was seen is checked.
    if stats.rx_missed > 0 {
        eprintln!(
            "ring overflowed ({} frames missed): {missing} bytes unseen",
            stats.rx_missed
        );
        return;
    }
    assert_eq!(missing, 0, "bytes never seen, and no frame counted missed");
    assert!(
        stream == data,
        "reassembled stream differs from what was sent"
    );
}

fn udp_frame(dst: [u8; 6], sport: u16, i: usize) -> Vec<u8> {
    let mut f = vec![0u8; 14 + 20 + 8 + 32];
    f[0..6].copy_from_slice(&dst);
    f[6..12].copy_from_slice(&[0x02, 0xee, 0, 0, 0, 0x01]);
    f[12..14].copy_from_slice(&0x0800u16.to_be_bytes());
    f[14] = 0x45;
    f[16..18].copy_from_slice(&60u16.to_be_bytes());
    f[22] = 64;
    f[23] = 17;
    f[26..30].copy_from_slice(&[10, 66, 0, 2]);
    f[30..34].copy_from_slice(&[10, 66, 0, 1]);
    let hc = !fold(csum_add(0, &f[14..34]));
    f[24..26].copy_from_slice(&hc.to_be_bytes());
    f[34..36].copy_from_slice(&sport.to_be_bytes());
    f[36..38].copy_from_slice(&9000u16.to_be_bytes());
    f[38..40].copy_from_slice(&40u16.to_be_bytes());
    f[42] = i as u8;
    f
}

#[test]
fn fanout_spreads_flows_and_keeps_each_on_one_queue() {
    const FLOWS: u16 = 32;
    const PER_FLOW: usize = 8;
    let ns = Netns::new();
    let (va, vb) = (ns.va.clone(), ns.vb.clone());
    let (tx, rx) = mpsc::channel();
    let port_thread = in_ns(&ns.a, move || {
        let mut q0 = AfPacketPort::open(&port_cfg(&va), 0, 2).unwrap();
        let mut q1 = AfPacketPort::open(&port_cfg(&va), 1, 2).unwrap();
        tx.send(q0.link().mac).unwrap();
        let mut pool = PacketPool::new(4096);
        let mut batch = Batch::new();
        // (queue, source port) -> frames
        let mut seen: HashMap<(usize, u16), usize> = HashMap::new();
        let mut total = 0;
        let end = Instant::now() + WAIT;
        while total < FLOWS as usize * PER_FLOW && Instant::now() < end {
            let mut n = 0;
            for (qi, q) in [&mut q0, &mut q1].into_iter().enumerate() {
                n += q.rx_burst(&mut pool, &mut batch);
                for p in batch.drain() {
                    let f = p.data();
                    if f.len() >= 42 && f[23] == 17 && f[30..34] == [10, 66, 0, 1] {
                        *seen
                            .entry((qi, u16::from_be_bytes([f[34], f[35]])))
                            .or_default() += 1;
                        total += 1;
                    }
                }
            }
            if n == 0 {
                thread::sleep(Duration::from_micros(200));
            }
        }
        seen
    });
    let mac = rx.recv().unwrap();
    in_ns(&ns.b, move || {
        let s = RawSock::open(&vb);
        for i in 0..PER_FLOW {
            for fl in 0..FLOWS {
                s.send(&udp_frame(mac, 10000 + fl, i));
            }
        }
    })
    .join()
    .unwrap();
    let seen = port_thread.join().unwrap();
    for fl in 0..FLOWS {
        let q0 = seen.get(&(0, 10000 + fl)).copied().unwrap_or(0);
        let q1 = seen.get(&(1, 10000 + fl)).copied().unwrap_or(0);
        assert!(
            (q0, q1) == (PER_FLOW, 0) || (q0, q1) == (0, PER_FLOW),
            "flow {fl}: {q0} frames on queue 0, {q1} on queue 1"
        );
    }
    let on_q0 = seen.keys().filter(|(q, _)| *q == 0).count();
    assert!(
        on_q0 > 0 && on_q0 < FLOWS as usize,
        "all flows on one queue ({on_q0} on queue 0)"
    );
}

/// A UDP datagram from 10.66.0.2:`sport` to 10.66.0.1:9000 with `payload`
/// bytes, both checksums valid.
fn udp_datagram(dst: [u8; 6], sport: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = vec![0u8; 42];
    f[0..6].copy_from_slice(&dst);
    f[6..12].copy_from_slice(&[0x02, 0xee, 0, 0, 0, 0x01]);
    f[12..14].copy_from_slice(&0x0800u16.to_be_bytes());
    f[14] = 0x45;
    f[16..18].copy_from_slice(&((28 + payload.len()) as u16).to_be_bytes());
    f[22] = 64;
    f[23] = 17;
    f[26..30].copy_from_slice(&[10, 66, 0, 2]);
    f[30..34].copy_from_slice(&[10, 66, 0, 1]);
    let hc = !fold(csum_add(0, &f[14..34]));
    f[24..26].copy_from_slice(&hc.to_be_bytes());
    f[34..36].copy_from_slice(&sport.to_be_bytes());
    f[36..38].copy_from_slice(&9000u16.to_be_bytes());
    f[38..40].copy_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
    f.extend_from_slice(payload);
    let pseudo = csum_add(0, &f[26..34]) + 17 + (8 + payload.len()) as u64;
    let c = !fold(csum_add(pseudo, &f[34..]));
    f[40..42].copy_from_slice(&(if c == 0 { 0xffff } else { c }).to_be_bytes());
    f
}

/// 9 full-size datagrams and a short one (one run), one of another flow,
/// then two more of the first: 3 messages, 12 datagrams coalesced.
fn mixed_train() -> Vec<(u16, Vec<u8>)> {
    let mut payloads: Vec<(u16, Vec<u8>)> = (0..10)
        .map(|i| (4000, vec![i as u8; if i < 9 { 1200 } else { 77 }]))
        .collect();
    payloads.push((4001, vec![0xaa; 1200]));
    payloads.extend((0..2).map(|i| (4000, vec![0x50 + i as u8; 1200])));
    payloads
}

#[test]
fn coalesced_udp_reaches_a_kernel_socket_datagram_by_datagram() {
    let sent = udp_train_reaches_a_kernel_socket(|_| {}, mixed_train());
    // A veth segments TCP and UDP superframes, up to the kernel's defaults.
    assert!(sent.gso.tcp4 && sent.gso.udp, "{:?}", sent.gso);
    assert_eq!(sent.gso.limits, GsoLimits::default());
    assert_eq!(sent.coalesced, 12, "the run of 10 and the run of 2");
}

/// A device that takes superframes of at most 4 segments gets runs of 4.
#[test]
fn runs_respect_the_device_s_segment_limit() {
    let set = |ns: &Netns| {
        run(
            "ip",
            &[
                "-n",
                &ns.a,
                "link",
                "set",
                "dev",
                &ns.va,
                "gso_max_segs",
                "4",
            ],
        );
    };
    let train: Vec<(u16, Vec<u8>)> = (0..10).map(|i| (4000, vec![i as u8; 1000])).collect();
    let sent = udp_train_reaches_a_kernel_socket(set, train);
    assert_eq!(sent.gso.limits.max_segs, 4, "{:?}", sent.gso);
    assert_eq!(sent.messages, 3, "runs of 4, 4 and 2");
}

/// The device refuses a superframe of gso_max_size (65536) bytes or more,
/// Ethernet header included, though its IPv4 length would fit: such a run
/// must be cut short. 44 × 1472 + 730 payload bytes: IPv4 length 65526,
/// frame 65540.
#[test]
fn a_run_stops_below_the_device_s_gso_size() {
    let mut train: Vec<(u16, Vec<u8>)> = (0..44).map(|i| (4000, vec![i as u8; 1472])).collect();
    train.push((4000, vec![0xee; 730]));
    let sent = udp_train_reaches_a_kernel_socket(|_| {}, train);
    assert!(sent.coalesced > 0, "{}", sent.coalesced);
    assert_eq!(sent.messages, 2, "a run of 44, then one datagram");
}

/// Without UDP segmentation offload on the device the kernel would have to
/// cut a superframe in software, which a qdisc-bypass send cannot do (it
/// drops the frame): the port must see the feature is off and send the
/// datagrams one by one.
#[test]
fn udp_is_not_coalesced_when_the_device_cannot_segment_it() {
    let off = |ns: &Netns| {
        run(
            "ip",
            &[
                "netns",
                "exec",
                &ns.a,
                "ethtool",
                "-K",
                &ns.va,
                "tx-udp-segmentation",
                "off",
            ],
        );
    };
    let sent = udp_train_reaches_a_kernel_socket(off, mixed_train());
    assert!(sent.gso.tcp4 && !sent.gso.udp, "{:?}", sent.gso);
    assert_eq!(sent.coalesced, 0);
}

/// What a test's burst did at the port.
struct Sent {
    /// Frames sent inside superframes.
    coalesced: u64,
    /// sendmmsg messages (superframes and lone frames).
    messages: usize,
    /// What the port read of the device.
    gso: GsoSupport,
}

/// Sends `payloads` (source port, payload) to a kernel UDP socket in one
/// burst from a port on a veth that `setup` prepared, and checks every
/// datagram arrived intact and none failed at the port.
fn udp_train_reaches_a_kernel_socket(
    setup: impl FnOnce(&Netns),
    payloads: Vec<(u16, Vec<u8>)>,
) -> Sent {
    let ns = Netns::new();
    let (va, vb, b) = (ns.va.clone(), ns.vb.clone(), ns.b.clone());
    run("ip", &["-n", &b, "addr", "add", "10.66.0.1/24", "dev", &vb]);
    setup(&ns);
    let (ready_tx, ready_rx) = mpsc::channel();
    let expect = payloads.len();
    let receiver = in_ns(&b, move || {
        let s = std::net::UdpSocket::bind("10.66.0.1:9000").unwrap();
        s.set_read_timeout(Some(WAIT)).unwrap();
        let mac = sys::if_mac(s.as_raw_fd(), &vb).unwrap();
        ready_tx.send(mac).unwrap();
        let mut got = Vec::new();
        let mut buf = [0u8; 2048];
        while got.len() < expect {
            match s.recv_from(&mut buf) {
                Ok((n, from)) => got.push((from.port(), buf[..n].to_vec())),
                Err(_) => break,
            }
        }
        got
    });
    let mac = ready_rx.recv().unwrap();
    let frames: Vec<Vec<u8>> = payloads
        .iter()
        .map(|(sport, p)| udp_datagram(mac, *sport, p))
        .collect();
    let (sent, coalesced, stats, gso) = in_ns(&ns.a, move || {
        let mut port = AfPacketPort::open(&port_cfg(&va), 0, 1).unwrap();
        let mut pool = PacketPool::new(64);
        let mut batch = Batch::new();
        for f in &frames {
            batch.push(pool.alloc_from(f).unwrap()).unwrap();
        }
        let gso = port.gso_support();
        let done = port.tx_burst(&mut batch);
        let messages = port.tx_messages() as usize;
        (
            done.packets,
            (port.frames_coalesced(), messages),
            port.stats(),
            gso,
        )
    })
    .join()
    .unwrap();
    let (coalesced, messages) = coalesced;
    assert_eq!(sent, payloads.len());
    assert_eq!(stats.tx_errors, 0);
    let mut got = receiver.join().unwrap();
    // The kernel may queue the superframes' datagrams in any order
    // relative to each other's flows; within a flow they stay in order.
    let mut want = payloads;
    got.sort_by_key(|(port, _)| *port);
    want.sort_by_key(|(port, _)| *port);
    assert!(got == want, "datagrams differ: {} received", got.len());
    Sent {
        coalesced,
        messages,
        gso,
    }
}

/// A TCP superframe tagged with VLAN `vid` (Ethernet, 802.1Q, IPv4, TCP,
/// `payload`) with a partial checksum, as a kernel with TSO hands it to a
/// device, behind its `virtio_net_hdr` (segments of `mss`).
fn tagged_superframe(dst: [u8; 6], vid: u16, payload: &[u8], mss: u16) -> Vec<u8> {
    use super::offload::{VnetHdr, VNET_F_NEEDS_CSUM, VNET_GSO_TCPV4};
    let mut f = Vec::new();
    f.extend_from_slice(&dst);
    f.extend_from_slice(&[0x02, 0, 0, 0, 0, 0x77, 0x81, 0x00]);
    f.extend_from_slice(&vid.to_be_bytes());
    f.extend_from_slice(&[0x08, 0x00]);
    let tot = (40 + payload.len()) as u16;
    f.extend_from_slice(&[0x45, 0]);
    f.extend_from_slice(&tot.to_be_bytes());
    f.extend_from_slice(&[0x12, 0x34, 0x40, 0, 64, 6, 0, 0, 10, 66, 0, 2, 10, 66, 0, 1]);
    let hc = !fold(csum_add(0, &f[18..38]));
    f[28..30].copy_from_slice(&hc.to_be_bytes());
    f.extend_from_slice(&[0x9c, 0x40, 0x14, 0xae]); // ports 40000 -> 5294
    f.extend_from_slice(&1000u32.to_be_bytes());
    f.extend_from_slice(&1u32.to_be_bytes());
    f.extend_from_slice(&[0x50, 0x18, 0xff, 0xff]);
    let partial = fold(csum_add(0, &f[30..38]) + 6 + (20 + payload.len()) as u64);
    f.extend_from_slice(&partial.to_be_bytes());
    f.extend_from_slice(&[0, 0]);
    f.extend_from_slice(payload);
    let vnet = VnetHdr {
        flags: VNET_F_NEEDS_CSUM,
        gso_type: VNET_GSO_TCPV4,
        hdr_len: 58,
        gso_size: mss,
        csum_start: 38,
        csum_offset: 16,
    };
    [&vnet.to_bytes()[..], &f].concat()
}

#[test]
fn a_tagged_superframe_keeps_its_tag_through_both_rings() {
    // The device strips the tag: the V2 ring reads a superframe's tag from
    // the auxiliary data of the copy beside the ring, V3 from its header.
    for ring in [RxRingKind::V2, RxRingKind::V3] {
        let ns = Netns::new();
        let (va, vb) = (ns.va.clone(), ns.vb.clone());
        let (tx, rx) = mpsc::channel();
        let payload: Vec<u8> = (0..9000).map(|i| (i * 7 % 251) as u8).collect();
        let port_thread = in_ns(&ns.a, move || {
            let mut port = AfPacketPort::open(&port_cfg_ring(&va, ring), 0, 1).unwrap();
            tx.send(port.link().mac).unwrap();
            let mut pool = PacketPool::new(4096);
            let mut got = Vec::new();
            poll(&mut port, &mut pool, |f| {
                if f.len() > 18 && f[12..14] == [0x81, 0x00] && f[16..18] == [0x08, 0x00] {
                    got.push(f.to_vec());
                }
                got.len() == 9
            });
            (got, port.gso_frames_split())
        });
        let mac = rx.recv().unwrap();
        let frame = tagged_superframe(mac, 7, &payload, 1000);
        in_ns(&ns.b, move || {
            // The frame goes out behind its vnet header, as GSO.
            let s = RawSock::open(&vb);
            let one: libc::c_int = 1;
            sys::set_packet_opt(s.0.as_raw_fd(), libc::PACKET_VNET_HDR, &one, "vnet").unwrap();
            s.send(&frame);
        })
        .join()
        .unwrap();
        let (got, split) = port_thread.join().unwrap();
        assert_eq!(got.len(), 9, "{ring:?}: 9 segments of 1000 bytes");
        assert!(split > 0, "{ring:?}: the port saw a superframe");
        let mut joined = Vec::new();
        for f in &got {
            assert_eq!(
                u16::from_be_bytes([f[14], f[15]]),
                7,
                "{ring:?}: the tag is back"
            );
            let untagged = [&f[..12], &f[16..]].concat();
            let s = parse_tcp4(&untagged, [10, 66, 0, 2], 5294).expect("a segment");
            assert!(s.ip_ok && s.tcp_ok, "{ring:?}: checksums");
            joined.extend_from_slice(&s.payload);
        }
        assert!(joined == payload, "{ring:?}: the payload in order");
    }
}
