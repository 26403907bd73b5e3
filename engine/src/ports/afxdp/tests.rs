//! Tests of the afxdp driver: byte-golden checks of the instruction encoder
//! and the checksum completion, the XDP program's verdicts through
//! BPF_PROG_TEST_RUN, the config keys, and the port itself on a veth pair
//! between two network namespaces the test creates (names carry the pid)
//! and always deletes. Ports are not `Send`: each is opened inside a thread
//! that first joins the namespace with `setns(CLONE_NEWNET)`.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use super::program::{self, KernelShare, XDP_DROP, XDP_PASS};
use super::{bpf, csum, AfXdpPort};
use crate::buffer::{Batch, PacketPool};
use crate::config::{AfXdpConfig, EngineConfig, PortConfig, PortDriver, XskBindMode};
use crate::ports::Port;

/// Frames from scapy with correct checksums (10.1.0.2 -> 10.2.0.2).
const UDP_GOLDEN: &str = "02000000000202000000000108004500002b00010000401166bb0a0100020a0200029c40000900177970706174726f6e757320616678647021";
const TCP_GOLDEN: &str = "02000000000202000000000108004500002b00020000400666c50a0100020a0200029c41001600000001000000005002faf0312b00006f6464";
/// Checksum field offsets in those frames.
const UDP_CSUM_AT: usize = 14 + 20 + 6;
const TCP_CSUM_AT: usize = 14 + 20 + 16;
/// Experimental EtherType for raw test frames.
const TEST_ETHERTYPE: u16 = 0x88b5;
/// Give up waiting for frames after this long (a failure, not a threshold).
const WAIT: Duration = Duration::from_secs(20);

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// The folded pseudo-header sum: what a CHECKSUM_PARTIAL sender leaves in
/// the field (computed independently of `csum.rs`).
fn partial_of(frame: &[u8], proto: u8) -> u16 {
    let l4_len = frame.len() - 34;
    let mut s: u32 = proto as u32 + l4_len as u32;
    for i in (26..34).step_by(2) {
        s += u16::from_be_bytes([frame[i], frame[i + 1]]) as u32;
    }
    while s > 0xffff {
        s = (s & 0xffff) + (s >> 16);
    }
    s as u16
}

#[test]
fn instruction_encoding_is_the_kernel_wire_format() {
    // `r6 = r1` is bf 16 00 00 00 00 00 00; `r0 = 2` is b7 00 00 00 02 00 00 00;
    // `if r4 > r3 goto +5` is 2d 34 05 00 00 00 00 00 (llvm-objdump).
    assert_eq!(
        program::insn(0xbf, 6, 1, 0, 0).to_le_bytes(),
        [0xbf, 0x16, 0, 0, 0, 0, 0, 0]
    );
    assert_eq!(
        program::insn(0xb7, 0, 0, 0, 2).to_le_bytes(),
        [0xb7, 0, 0, 0, 2, 0, 0, 0]
    );
    assert_eq!(
        program::insn(0x2d, 4, 3, 5, 0).to_le_bytes(),
        [0x2d, 0x34, 5, 0, 0, 0, 0, 0]
    );
    assert_eq!(
        program::insn(0x15, 5, 0, -1, 0x0608).to_le_bytes(),
        [0x15, 0x05, 0xff, 0xff, 0x08, 0x06, 0, 0]
    );
}

#[test]
fn partial_udp_and_tcp_checksums_are_completed() {
    for (golden, at, proto) in [(UDP_GOLDEN, UDP_CSUM_AT, 17), (TCP_GOLDEN, TCP_CSUM_AT, 6)] {
        let good = hex(golden);
        let mut f = good.clone();
        let p = partial_of(&f, proto);
        f[at..at + 2].copy_from_slice(&p.to_be_bytes());
        assert_ne!(f, good);
        assert!(csum::complete_partial(&mut f), "proto {proto}");
        assert_eq!(f, good, "proto {proto}");
    }
}

#[test]
fn finished_and_foreign_frames_are_left_alone() {
    // A correct checksum is not partial.
    let mut f = hex(UDP_GOLDEN);
    assert!(!csum::complete_partial(&mut f));
    assert_eq!(f, hex(UDP_GOLDEN));
    // A wrong checksum that is not the pseudo-header sum stays wrong.
    let mut bad = hex(TCP_GOLDEN);
    bad[TCP_CSUM_AT] ^= 0x40;
    let copy = bad.clone();
    assert!(!csum::complete_partial(&mut bad));
    assert_eq!(bad, copy);
    // A fragment (MF set) is never touched, partial-looking or not.
    let mut frag = hex(UDP_GOLDEN);
    let p = partial_of(&frag, 17);
    frag[UDP_CSUM_AT..UDP_CSUM_AT + 2].copy_from_slice(&p.to_be_bytes());
    frag[20] |= 0x20;
    let copy = frag.clone();
    assert!(!csum::complete_partial(&mut frag));
    assert_eq!(frag, copy);
    // Truncated (IP total length beyond the frame) and runt frames.
    let mut cut = hex(UDP_GOLDEN);
    cut.truncate(45);
    assert!(!csum::complete_partial(&mut cut));
    assert!(!csum::complete_partial(&mut [0u8; 13]));
}

#[test]
fn partial_checksum_behind_a_vlan_tag_is_completed() {
    let good = hex(UDP_GOLDEN);
    let tag = |f: &[u8]| {
        let mut t = f[..12].to_vec();
        t.extend_from_slice(&[0x81, 0x00, 0x00, 0x07]);
        t.extend_from_slice(&f[12..]);
        t
    };
    let mut f = good.clone();
    let p = partial_of(&f, 17);
    f[UDP_CSUM_AT..UDP_CSUM_AT + 2].copy_from_slice(&p.to_be_bytes());
    let mut tagged = tag(&f);
    assert!(csum::complete_partial(&mut tagged));
    assert_eq!(tagged, tag(&good));
}

fn eth(ethertype: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = vec![2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1];
    f.extend_from_slice(&ethertype.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

fn ipv4_with_proto(proto: u8) -> Vec<u8> {
    let mut f = hex(UDP_GOLDEN);
    f[23] = proto;
    f
}

/// Loads the program with an empty XSKMAP and "no socket" = XDP_DROP, so
/// the verdict tells whether a frame was for the kernel (PASS) or would have
/// been redirected (DROP).
fn verdicts(share: &KernelShare, frames: &[Vec<u8>]) -> Vec<u32> {
    let map = bpf::xskmap_create("test_xsks", 4).expect("XSKMAP (run the tests as root)");
    let insns = program::assemble(map.as_raw_fd(), share, XDP_DROP);
    let prog = bpf::prog_load_xdp("test_xdp", &insns).expect("program load");
    frames
        .iter()
        .map(|f| bpf::prog_test_run(&prog, f).expect("test run"))
        .collect()
}

#[test]
fn program_redirects_everything_by_default() {
    let frames = vec![
        eth(0x0806, &[0; 28]),
        hex(UDP_GOLDEN),
        eth(0x86dd, &[0; 40]),
        eth(0x0806, &[]),
    ];
    assert_eq!(
        verdicts(&KernelShare::default(), &frames),
        vec![XDP_DROP; 4]
    );
}

#[test]
fn program_passes_the_configured_ethertypes_and_protocols() {
    let share = KernelShare {
        ethertypes: vec![0x0806, 0x88cc],
        ip_protocols: vec![89, 112],
    };
    let mut vlan_arp = eth(0x8100, &[0, 7, 0x08, 0x06]);
    vlan_arp.extend_from_slice(&[0; 28]);
    let mut short_ip = ipv4_with_proto(89);
    short_ip.truncate(23); // the protocol byte is past the end
    let cases: Vec<(Vec<u8>, u32)> = vec![
        (eth(0x0806, &[0; 28]), XDP_PASS),
        (eth(0x88cc, &[0; 46]), XDP_PASS),
        (eth(0x0806, &[]), XDP_PASS),
        (ipv4_with_proto(89), XDP_PASS),
        (ipv4_with_proto(112), XDP_PASS),
        (ipv4_with_proto(17), XDP_DROP),
        (ipv4_with_proto(6), XDP_DROP),
        (short_ip, XDP_DROP),
        (eth(0x86dd, &[0; 40]), XDP_DROP),
        // Only the outer EtherType counts: tagged ARP is the engine's.
        (vlan_arp, XDP_DROP),
    ];
    let frames: Vec<Vec<u8>> = cases.iter().map(|c| c.0.clone()).collect();
    let want: Vec<u32> = cases.iter().map(|c| c.1).collect();
    assert_eq!(verdicts(&share, &frames), want);
}

#[test]
fn config_keys_are_validated_and_named() {
    let base = |driver: &str, extra: &str| {
        format!("[[port]]\nname = \"p0\"\ndriver = \"{driver}\"\niface = \"veth0\"\n{extra}")
    };
    let c = EngineConfig::parse(&base(
        "afxdp",
        "[port.afxdp]\nxdp_mode = \"generic\"\nbind = \"copy\"\nkernel_ethertypes = [0x88cc]\nkernel_ip_protocols = [89]\n",
    ))
    .unwrap();
    let x = c.ports[0].afxdp.clone().unwrap();
    assert_eq!(x.bind, XskBindMode::Copy);
    assert_eq!(x.kernel_ethertypes, vec![0x88cc]);
    assert_eq!(x.kernel_ip_protocols, vec![89]);
    let err = |t: String| EngineConfig::parse(&t).unwrap_err().to_string();
    let e = err(base("afpacket", "[port.afxdp]\nbind = \"copy\"\n"));
    assert!(e.starts_with("port[0].afxdp"), "{e}");
    let e = err(base("afxdp", "[port.afxdp]\nkernel_ethertypes = [1500]\n"));
    assert!(e.starts_with("port[0].afxdp.kernel_ethertypes"), "{e}");
    let e = err(base("afxdp", "[port.afxdp]\nring_size = 1000\n"));
    assert!(e.starts_with("port[0].afxdp.ring_size"), "{e}");
    let e = err(base("afxdp", "ring_blocks = 4\n"));
    assert!(e.starts_with("port[0].ring_blocks"), "{e}");
    let e = err(base("afxdp", "[port.afxdp]\nbind = \"fast\"\n"));
    assert!(e.contains("bind") || e.contains("fast"), "{e}");
    let e = err("[[port]]\nname = \"p0\"\ndriver = \"afxdp\"\n".to_string());
    assert!(e.starts_with("port[0].iface"), "{e}");
}

static SEQ: AtomicUsize = AtomicUsize::new(0);

fn run(cmd: &str, args: &[&str]) -> String {
    let out = Command::new(cmd)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{cmd} {args:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Two namespaces joined by a veth pair with `queues` queues: `va` in `a`
/// (the port's side), `vb` in `b` (the peer). Deleted on drop.
struct Netns {
    a: String,
    b: String,
    va: String,
    vb: String,
}

impl Netns {
    fn new(queues: usize) -> Self {
        let pid = std::process::id();
        let n = SEQ.fetch_add(1, Ordering::Relaxed);
        let ns = Netns {
            a: format!("pxdp-a-{pid}-{n}"),
            b: format!("pxdp-b-{pid}-{n}"),
            va: format!("xa{pid}x{n}"),
            vb: format!("xb{pid}x{n}"),
        };
        run("ip", &["netns", "add", &ns.a]);
        run("ip", &["netns", "add", &ns.b]);
        let q = queues.to_string();
        run(
            "ip",
            &[
                "link",
                "add",
                &ns.va,
                "numrxqueues",
                &q,
                "numtxqueues",
                &q,
                "netns",
                &ns.a,
                "type",
                "veth",
                "peer",
                "name",
                &ns.vb,
                "numrxqueues",
                &q,
                "numtxqueues",
                &q,
                "netns",
                &ns.b,
            ],
        );
        for (n, v) in [(&ns.a, &ns.va), (&ns.b, &ns.vb)] {
            let key = format!("net.ipv6.conf.{v}.disable_ipv6=1");
            run("ip", &["netns", "exec", n, "sysctl", "-q", "-w", &key]);
            run("ip", &["-n", n, "link", "set", v, "up"]);
        }
        ns
    }

    /// Whether an XDP program is still attached once the port has closed.
    /// A child that another test thread forks holds a copy of our (CLOEXEC)
    /// descriptors until it execs, which may keep the link alive a moment
    /// longer: wait (bounded) for it to go.
    fn xdp_attached(&self) -> bool {
        let deadline = Instant::now() + WAIT;
        loop {
            let on =
                run("ip", &["-n", &self.a, "link", "show", "dev", &self.va]).contains("prog/xdp");
            if !on || Instant::now() >= deadline {
                return on;
            }
            thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
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

fn port_cfg(iface: &str, bind: XskBindMode) -> PortConfig {
    PortConfig {
        name: "xdp0".into(),
        driver: PortDriver::Afxdp,
        kernel_ingress: None,
        iface: Some(iface.into()),
        mac: None,
        mtu: None,
        rx_ring: None,
        ring_block_size: None,
        ring_blocks: None,
        device: None,
        afxdp: Some(AfXdpConfig {
            bind,
            ..Default::default()
        }),
        input: None,
        output: None,
        generator: None,
    }
}

/// A raw AF_PACKET socket on the peer side, bound to the test EtherType.
fn raw_socket(iface: &str) -> OwnedFd {
    let proto = TEST_ETHERTYPE.to_be();
    // SAFETY: plain syscall creating a new descriptor.
    let fd = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW, proto as i32) };
    assert!(
        fd >= 0,
        "AF_PACKET socket: {}",
        std::io::Error::last_os_error()
    );
    // SAFETY: `fd` is fresh and ours.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    let c = std::ffi::CString::new(iface).unwrap();
    // SAFETY: valid NUL-terminated name.
    let idx = unsafe { libc::if_nametoindex(c.as_ptr()) };
    // SAFETY: all-zero is a valid sockaddr_ll.
    let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    sll.sll_family = libc::AF_PACKET as u16;
    sll.sll_protocol = proto;
    sll.sll_ifindex = idx as i32;
    // SAFETY: `sll` is a valid sockaddr_ll of the length given.
    let r = unsafe {
        libc::bind(
            fd.as_raw_fd(),
            &sll as *const libc::sockaddr_ll as *const libc::sockaddr,
            size_of::<libc::sockaddr_ll>() as u32,
        )
    };
    assert_eq!(r, 0, "bind: {}", std::io::Error::last_os_error());
    let rcvbuf: libc::c_int = 16 << 20;
    // SAFETY: `rcvbuf` is a valid int for SO_RCVBUFFORCE (root).
    unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVBUFFORCE,
            &rcvbuf as *const libc::c_int as *const libc::c_void,
            size_of::<libc::c_int>() as u32,
        )
    };
    let tv = libc::timeval {
        tv_sec: 1,
        tv_usec: 0,
    };
    // SAFETY: `tv` is a valid timeval for SO_RCVTIMEO.
    unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVTIMEO,
            &tv as *const libc::timeval as *const libc::c_void,
            size_of::<libc::timeval>() as u32,
        )
    };
    fd
}

fn test_frame(i: u32, len: usize) -> Vec<u8> {
    let mut f = eth(TEST_ETHERTYPE, &i.to_be_bytes());
    f.resize(len, (i % 251) as u8);
    f
}

#[test]
fn veth_binds_native_xdp_in_copy_mode_and_close_detaches() {
    let ns = Netns::new(1);
    let va = ns.va.clone();
    let attached_while_open = {
        let (a, b) = (ns.a.clone(), ns.va.clone());
        move || run("ip", &["-n", &a, "link", "show", "dev", &b]).contains("prog/xdp")
    };
    let (mode, link, seen) = in_ns(&ns.a, move || {
        let port = AfXdpPort::open(&port_cfg(&va, XskBindMode::Auto), 0, 1).expect("open");
        (port.bound_mode(), port.link(), attached_while_open())
    })
    .join()
    .unwrap();
    assert!(
        seen,
        "no XDP program on the interface while the port was open"
    );
    assert!(!ns.xdp_attached(), "XDP program left attached after close");
    // veth has native XDP but no zero-copy AF_XDP: auto falls back to copy.
    assert!(mode.native_xdp, "{mode:?}");
    assert!(!mode.zerocopy, "{mode:?}");
    assert!(link.up, "{link:?}");
    assert_eq!(link.mtu, 1500);
}

#[test]
fn zerocopy_on_veth_is_a_clear_error() {
    let ns = Netns::new(1);
    let va = ns.va.clone();
    let e = in_ns(&ns.a, move || {
        AfXdpPort::open(&port_cfg(&va, XskBindMode::Zerocopy), 0, 1)
            .err()
            .map(|e| e.to_string())
    })
    .join()
    .unwrap()
    .expect("veth cannot bind zero-copy");
    assert!(
        e.contains("AF_XDP socket on queue 0") && e.contains("bind"),
        "{e}"
    );
    assert!(
        !ns.xdp_attached(),
        "XDP program left attached after a failed open"
    );
}

#[test]
fn afxdp_port_receives_and_sends_frames() {
    let ns = Netns::new(1);
    let (va, vb) = (ns.va.clone(), ns.vb.clone());
    let (a, b) = (ns.a.clone(), ns.b.clone());
    const N: u32 = 600;
    let (ready_tx, ready_rx) = std::sync::mpsc::channel::<()>();
    let (sent_tx, sent_rx) = std::sync::mpsc::channel::<()>();
    let port = in_ns(&a, move || {
        let mut port = AfXdpPort::open(&port_cfg(&va, XskBindMode::Copy), 0, 1).expect("open");
        assert!(!port.bound_mode().zerocopy);
        ready_tx.send(()).unwrap();
        let mut pool = PacketPool::new(4096);
        let mut batch = Batch::new();
        let mut got: Vec<Vec<u8>> = Vec::new();
        let deadline = Instant::now() + WAIT;
        while got.len() < N as usize && Instant::now() < deadline {
            port.rx_burst(&mut pool, &mut batch);
            for p in batch.drain() {
                got.push(p.data().to_vec());
            }
        }
        sent_rx.recv().unwrap();
        // Send back N frames of other sizes, in bursts.
        let mut accepted = 0;
        for chunk in (0..N).collect::<Vec<_>>().chunks(200) {
            for i in chunk {
                let f = test_frame(1_000_000 + i, 60 + (*i as usize % 1400));
                batch.push(pool.alloc_from(&f).unwrap()).unwrap();
            }
            accepted += port.tx_burst(&mut batch).packets;
        }
        // Every TX frame completes (copy mode completes as the skb is freed).
        let deadline = Instant::now() + WAIT;
        while port.tx_free.len() < super::DEFAULT_RING_SIZE as usize && Instant::now() < deadline {
            port.tx_burst(&mut batch);
        }
        (
            got,
            accepted,
            port.stats(),
            port.xdp_counters(),
            port.tx_free.len(),
        )
    });
    ready_rx.recv().unwrap();
    let peer = in_ns(&b, move || {
        let fd = raw_socket(&vb);
        for i in 0..N {
            let f = test_frame(i, 60 + (i as usize * 7) % 1450);
            // SAFETY: `f` is valid for reads of its length.
            let r = unsafe {
                libc::send(
                    fd.as_raw_fd(),
                    f.as_ptr() as *const libc::c_void,
                    f.len(),
                    0,
                )
            };
            assert_eq!(
                r as usize,
                f.len(),
                "send: {}",
                std::io::Error::last_os_error()
            );
        }
        sent_tx.send(()).unwrap();
        let mut back = Vec::new();
        let mut buf = vec![0u8; 2048];
        let deadline = Instant::now() + WAIT;
        while back.len() < N as usize && Instant::now() < deadline {
            // SAFETY: `buf` is valid for writes of its length.
            let r = unsafe {
                libc::recv(
                    fd.as_raw_fd(),
                    buf.as_mut_ptr() as *mut libc::c_void,
                    buf.len(),
                    0,
                )
            };
            if r > 0 {
                back.push(buf[..r as usize].to_vec());
            }
        }
        back
    });
    let (got, accepted, stats, counters, tx_free) = port.join().unwrap();
    let back = peer.join().unwrap();
    let want: Vec<Vec<u8>> = (0..N)
        .map(|i| test_frame(i, 60 + (i as usize * 7) % 1450))
        .collect();
    assert_eq!(got.len(), want.len(), "frames received by the port");
    assert!(got == want, "received frames differ from those sent");
    assert_eq!(accepted, N as usize);
    let want_back: Vec<Vec<u8>> = (0..N)
        .map(|i| test_frame(1_000_000 + i, 60 + (i as usize % 1400)))
        .collect();
    assert_eq!(
        back.len(),
        want_back.len(),
        "frames the peer received ({counters:?})"
    );
    assert!(back == want_back, "sent frames differ");
    assert_eq!(
        stats.rx_errors + stats.tx_errors + stats.rx_missed,
        0,
        "{stats:?} {counters:?}"
    );
    assert_eq!(
        tx_free,
        super::DEFAULT_RING_SIZE as usize,
        "TX frames not all completed"
    );
    assert!(!ns.xdp_attached(), "XDP program left attached after close");
}

#[test]
fn queues_share_one_program_and_too_few_queues_is_a_clear_error() {
    let ns = Netns::new(2);
    let va = ns.va.clone();
    let r = in_ns(&ns.a, move || {
        let cfg = port_cfg(&va, XskBindMode::Auto);
        let q0 = AfXdpPort::open(&cfg, 0, 2).expect("queue 0");
        let q1 = AfXdpPort::open(&cfg, 1, 2).expect("queue 1");
        let shared = std::sync::Arc::ptr_eq(&q0.attachment, &q1.attachment);
        let too_many = AfXdpPort::open(&cfg, 0, 3).err().map(|e| e.to_string());
        (shared, too_many)
    })
    .join()
    .unwrap();
    assert!(r.0, "the two queues loaded two programs");
    let e = r.1.expect("3 workers on a 2-queue veth must fail");
    assert!(
        e.contains("2 RX queue(s)") && e.contains("3 workers"),
        "{e}"
    );
    assert!(!ns.xdp_attached(), "XDP program left attached after close");
}

#[test]
fn an_interface_with_another_program_is_a_clear_error() {
    let ns = Netns::new(1);
    let va = ns.va.clone();
    let e = in_ns(&ns.a, move || {
        // Someone else's program, attached as a link of its own.
        let c = std::ffi::CString::new(va.as_str()).unwrap();
        // SAFETY: valid NUL-terminated name.
        let ifindex = unsafe { libc::if_nametoindex(c.as_ptr()) } as i32;
        let map = bpf::xskmap_create("other_xsks", 1).unwrap();
        let insns = program::assemble(map.as_raw_fd(), &KernelShare::default(), XDP_PASS);
        let prog = bpf::prog_load_xdp("other_xdp", &insns).unwrap();
        let _link = bpf::xdp_link_create(&prog, ifindex, bpf::XDP_FLAGS_DRV_MODE).unwrap();
        AfXdpPort::open(&port_cfg(&va, XskBindMode::Auto), 0, 1)
            .err()
            .map(|e| e.to_string())
    })
    .join()
    .unwrap()
    .expect("opening over another program must fail");
    assert!(
        e.contains("already has an XDP program") && e.contains("xdp off"),
        "{e}"
    );
    assert!(!ns.xdp_attached(), "XDP program left attached");
}
