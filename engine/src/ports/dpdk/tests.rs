//! Tests of the `dpdk` driver on virtual devices (no NIC, no hugepages).
//! EAL initialises once per process, so exactly one test here touches it
//! (`eal_in_one_process`, which runs the EAL phases in a fixed order); the
//! others are pure.

mod dispatch;
mod zero_copy;

use super::*;
use crate::buffer::{Batch, PacketPool};
use crate::config::EngineConfig;
use crate::ports::{self, Port};

fn section(toml: &str) -> DpdkSection {
    let cfg = EngineConfig::parse(&format!(
        "[[port]]\nname = \"p0\"\ndriver = \"dpdk\"\ndevice = \"net_null0\"\n{toml}"
    ))
    .unwrap();
    cfg.dpdk.unwrap()
}

#[test]
fn eal_args_without_hugepages() {
    let d = section(
        "[dpdk]\nno_huge = true\nvdevs = [\"net_null0\", \"net_af_packet0,iface=veth1\"]\n",
    );
    let a = eal_args(&d, 42);
    let s = a.join(" ");
    assert!(
        s.starts_with("patronus-engine -l 0 --file-prefix=patronus-42 "),
        "{s}"
    );
    assert!(s.contains("--no-huge --no-shconf -m 512 --no-pci"), "{s}");
    assert!(
        s.ends_with("--vdev=net_null0 --vdev=net_af_packet0,iface=veth1"),
        "{s}"
    );
}

#[test]
fn eal_args_with_pci_and_hugepages() {
    let d = section(
        "[dpdk]\nlcores = \"2-3\"\npci_allow = [\"0000:03:00.0\"]\nvdevs = [\"net_null0\"]\n\
         memory_mb = 1024\nfile_prefix = \"edge\"\nextra_args = [\"--iova-mode=va\"]\n",
    );
    let a = eal_args(&d, 1);
    assert_eq!(
        a[1..],
        [
            "-l",
            "2-3",
            "--file-prefix=edge",
            "--log-level=warning",
            "-m",
            "1024",
            "-a",
            "0000:03:00.0",
            "--vdev=net_null0",
            "--iova-mode=va"
        ]
    );
    assert!(!a.iter().any(|x| x == "--no-huge" || x == "--no-pci"));
}

#[test]
fn eal_errors_name_the_key() {
    let d = DpdkSection::default();
    let args = eal_args(&d, 1);
    assert!(explain_eal_error(libc::EACCES, &d, &args).starts_with("dpdk.no_huge:"));
    assert!(explain_eal_error(libc::ENODEV, &d, &args).starts_with("dpdk.vdevs"));
    assert!(explain_eal_error(libc::ENOMEM, &d, &args).starts_with("dpdk.memory_mb:"));
    assert!(explain_eal_error(libc::EINVAL, &d, &args).contains("dpdk.extra_args"));
}

#[test]
fn symmetric_key_repeats_6d5a() {
    let k = device::symmetric_key(52);
    assert_eq!(k.len(), 52);
    assert!(k.chunks(2).all(|c| c == [0x6d, 0x5a]));
    assert_eq!(&k[..40], &patronus_dpdk_sys::SYMMETRIC_RSS_KEY[..]);
}

/// The `[dpdk]` section of every EAL phase: the first `prepare` initialises
/// EAL with it, once for the process. `net_ring1`/`net_ring2` are
/// `zero_copy`'s, `net_ring3` and `net_pcap0` (one queue each way, reading
/// [`pcap_paths`]' input, which must exist first) are `dispatch`'s.
fn dpdk_section() -> String {
    let (input, output) = pcap_paths();
    format!(
        "[dpdk]\nno_huge = true\nmemory_mb = 256\nvdevs = [\"net_null0\", \"net_ring0\", \
         \"net_ring1\", \"net_ring2\", \"net_ring3\", \"net_pcap0,rx_pcap={},tx_pcap={}\"]\n",
        input.display(),
        output.display()
    )
}

/// `net_pcap0`'s input and output captures (per process).
fn pcap_paths() -> (std::path::PathBuf, std::path::PathBuf) {
    let dir = std::env::temp_dir();
    let pid = std::process::id();
    (
        dir.join(format!("patronus-dpdk-test-{pid}-in.pcap")),
        dir.join(format!("patronus-dpdk-test-{pid}-out.pcap")),
    )
}

fn engine_cfg(workers: usize, ports: &[(&str, &str)]) -> EngineConfig {
    let mut t = format!(
        "[engine]\nworkers = {workers}\npool_size = 1024\n{}",
        dpdk_section()
    );
    for (name, dev) in ports {
        t += &format!("[[port]]\nname = \"{name}\"\ndriver = \"dpdk\"\ndevice = \"{dev}\"\n");
    }
    EngineConfig::parse(&t).unwrap()
}

fn open_dpdk(cfg: &EngineConfig, port: usize, queue: usize) -> DpdkPort {
    DpdkPort::open(&cfg.ports[port], queue, cfg.engine.workers).unwrap()
}

/// Frames of `len` bytes, the n-th filled with byte n.
fn frames(pool: &mut PacketPool, n: usize, len: usize) -> Batch {
    let mut b = Batch::new();
    for i in 0..n {
        b.push(pool.alloc_from(&vec![i as u8; len]).unwrap())
            .unwrap();
    }
    b
}

/// Every test that needs EAL, in one process and in this order: the first
/// `prepare` sizes the shared mempool for the largest config of all
/// (`dispatch`'s two workers with their inboxes).
#[test]
fn eal_in_one_process() {
    let _pcaps = dispatch::write_pcap_input();
    dispatch::flows_stay_on_one_worker();
    dispatch::single_queue_pair_shared_by_two_workers();
    devices_queues_and_errors();
    zero_copy::received_frames_leave_in_their_own_mbufs();
}

#[test]
fn queue_plans() {
    use device::{plan_queues, QueuePlan, RxMode::*};
    let plan = |mode, nrx, ntx, rss| QueuePlan {
        mode,
        nrx,
        ntx,
        rss,
    };
    // (workers, max_rx, max_tx, rss capable, driver spreads flows itself)
    assert_eq!(
        plan_queues(1, 1, 1, false, false),
        plan(Device, 1, 1, false)
    );
    assert_eq!(plan_queues(1, 8, 8, true, false), plan(Device, 1, 1, false));
    assert_eq!(plan_queues(4, 8, 8, true, false), plan(Rss, 4, 4, true));
    // net_af_packet,qpairs=4: the kernel's symmetric fanout fills the queues.
    assert_eq!(plan_queues(4, 4, 4, false, true), plan(Device, 4, 4, false));
    // Fewer queues than workers: RSS over those, software dispatch after.
    assert_eq!(
        plan_queues(4, 2, 2, true, false),
        plan(Software, 2, 2, true)
    );
    assert_eq!(
        plan_queues(4, 2, 3, false, true),
        plan(Software, 2, 3, false)
    );
    // Nothing spreads flows: one RX queue, whatever the device has.
    assert_eq!(
        plan_queues(4, 8, 8, false, false),
        plan(Software, 1, 4, false)
    );
    assert_eq!(
        plan_queues(2, 1, 1, false, false),
        plan(Software, 1, 1, false)
    );
    let p = plan_queues(3, 1, 2, false, false);
    assert_eq!(
        p.mbufs(3),
        3 * (device::MBUFS_PER_QUEUE + device::MBUFS_PER_HANDOFF)
    );
    assert_eq!(
        plan_queues(3, 3, 3, true, false).mbufs(3),
        3 * device::MBUFS_PER_QUEUE
    );
    let d = p.describe(3);
    assert!(d.starts_with("software dispatch with 1 RX queue(s)"), "{d}");
    assert!(d.contains("2 TX queue(s) shared by 3 workers"), "{d}");
    assert!(plan_queues(2, 2, 2, true, false)
        .describe(2)
        .starts_with("RSS"));
}

/// Ethernet (+ `tags` VLAN tags) + IPv4 + 4 bytes of ports.
fn ipv4_frame(
    tags: &[u16],
    src: [u8; 4],
    dst: [u8; 4],
    proto: u8,
    ports: [u16; 2],
    frag: u16,
) -> Vec<u8> {
    let mut f = vec![0u8; 12];
    for t in tags {
        f.extend_from_slice(&t.to_be_bytes());
        f.extend_from_slice(&[0, 5]);
    }
    f.extend_from_slice(&[0x08, 0x00, 0x45, 0, 0, 28, 0, 0]);
    f.extend_from_slice(&frag.to_be_bytes());
    f.extend_from_slice(&[64, proto, 0, 0]);
    f.extend_from_slice(&src);
    f.extend_from_slice(&dst);
    f.extend_from_slice(&ports[0].to_be_bytes());
    f.extend_from_slice(&ports[1].to_be_bytes());
    f
}

#[test]
fn flow_hash_parses_vlans_ports_and_fragments() {
    use crate::pipeline::flow_hash::symmetric;
    let (a, b) = ([10, 1, 0, 2], [192, 0, 2, 9]);
    let want = symmetric(0x0a01_0002, 0xc000_0209, 6, 40000, 443);
    for tags in [&[][..], &[0x8100], &[0x88a8, 0x8100]] {
        let fwd = ipv4_frame(tags, a, b, 6, [40000, 443], 0);
        let rev = ipv4_frame(tags, b, a, 6, [443, 40000], 0);
        assert_eq!(flow_hash(&fwd), want, "tags {tags:x?}");
        assert_eq!(flow_hash(&rev), want, "reverse, tags {tags:x?}");
        // A first fragment (MF set, offset 0) keeps its ports; a later one
        // has none to read.
        assert_eq!(
            flow_hash(&ipv4_frame(tags, a, b, 6, [40000, 443], 0x2000)),
            want
        );
        assert_eq!(
            flow_hash(&ipv4_frame(tags, a, b, 6, [40000, 443], 0x0010)),
            symmetric(0x0a01_0002, 0xc000_0209, 6, 0, 0)
        );
    }
    // Ports count for TCP and UDP only.
    assert_eq!(
        flow_hash(&ipv4_frame(&[], a, b, 1, [8, 0], 0)),
        symmetric(0x0a01_0002, 0xc000_0209, 1, 0, 0)
    );
    assert_ne!(
        flow_hash(&ipv4_frame(&[], a, b, 17, [1, 2], 0)),
        flow_hash(&ipv4_frame(&[], a, b, 17, [1, 3], 0))
    );
    // Three tags, ARP, IPv6, truncated frames: hash 0, worker 0.
    assert_eq!(
        flow_hash(&ipv4_frame(&[0x88a8, 0x8100, 0x8100], a, b, 6, [1, 2], 0)),
        0
    );
    let mut arp = ipv4_frame(&[], a, b, 6, [1, 2], 0);
    arp[12..14].copy_from_slice(&[0x08, 0x06]);
    assert_eq!(flow_hash(&arp), 0);
    let full = ipv4_frame(&[0x8100], a, b, 6, [1, 2], 0);
    for n in 0..18 + 20 {
        assert_eq!(flow_hash(&full[..n]), 0, "truncated to {n}");
    }
    // A header without room for its ports hashes without them.
    assert_eq!(
        flow_hash(&full[..18 + 20]),
        symmetric(0x0a01_0002, 0xc000_0209, 6, 0, 0)
    );
    assert_eq!(dispatch_owner(0, 2), 0);
    assert_eq!(dispatch_owner(u32::MAX, 2), 1);
    assert_eq!(dispatch_owner(u32::MAX, 3), 2);
}

fn dispatch_owner(hash: u32, workers: u16) -> u16 {
    super::dispatch::owner(hash, workers)
}

fn devices_queues_and_errors() {
    // Two workers on net_null: RSS over two queues, each worker its own.
    let cfg = engine_cfg(2, &[("null", "net_null0")]);
    ports::prepare(&cfg).unwrap();
    let before = open_dpdk(&cfg, 0, 0).mempool_available();
    std::thread::scope(|s| {
        for q in 0..2 {
            let cfg = &cfg;
            s.spawn(move || {
                let mut port = open_dpdk(cfg, 0, q);
                assert!(port.rss(), "net_null hashes: RSS expected");
                assert_eq!(port.queue_id().1, q as u16);
                let mut pool = PacketPool::new(1024);
                let mut batch = Batch::new();
                for _ in 0..100 {
                    let got = port.rx_burst(&mut pool, &mut batch);
                    assert!(got > 0 && got == batch.len());
                    assert!(batch.packets().iter().all(|p| p.len() == 64));
                    let done = port.tx_burst(&mut batch);
                    assert_eq!(done.packets, got);
                    assert_eq!(done.bytes, 64 * got as u64);
                    assert!(batch.is_empty());
                }
                assert_eq!(pool.available(), 1024, "engine buffers came back");
            });
        }
    });
    let after = open_dpdk(&cfg, 0, 0).mempool_available();
    assert_eq!(after, before, "every mbuf went back to the mempool");

    // A second start in the same process: one worker, net_null reconfigured
    // to one queue, net_ring (TX loops back to RX) set up beside it.
    let cfg = engine_cfg(1, &[("ring", "net_ring0"), ("null", "net_null0")]);
    ports::prepare(&cfg).unwrap();
    let mut ring = open_dpdk(&cfg, 0, 0);
    let null = open_dpdk(&cfg, 1, 0);
    assert!(!ring.rss() && !null.rss());
    let link = ring.link();
    assert!(link.up);
    assert_eq!(link.mtu, 1500);
    let start = ring.mempool_available();
    let mut pool = PacketPool::new(1024);
    let mut out = frames(&mut pool, 8, 100);
    let done = ring.tx_burst(&mut out);
    assert_eq!((done.packets, done.bytes), (8, 800));
    let mut back = Batch::new();
    assert_eq!(ring.rx_burst(&mut pool, &mut back), 8);
    for (i, p) in back.packets().iter().enumerate() {
        assert_eq!(p.data(), &[i as u8; 100][..], "frame {i} came back intact");
    }
    back.clear();
    assert_eq!(pool.available(), 1024);
    assert_eq!(ring.mempool_available(), start);
    // A pool that is not the mempool: both ways are the copy fallback.
    let copies = ring.copy_counters();
    assert_eq!((copies.rx(), copies.tx()), (8, 8));

    // The engine's pool runs dry: the rest of the burst is a counted drop.
    let mut small = PacketPool::new(3);
    let mut out = frames(&mut pool, 5, 60);
    assert_eq!(ring.tx_burst(&mut out).packets, 5);
    assert_eq!(ring.rx_burst(&mut small, &mut back), 3);
    assert_eq!(ring.stats().rx_errors, 2);
    assert_eq!((copies.rx(), copies.tx()), (11, 13), "drops are not copies");
    back.clear();
    assert_eq!(ring.mempool_available(), start);

    // Zero copy: the worker's pool hands out mbufs of the shared mempool.
    let mut zc = ports::worker_pool(&cfg);
    assert!(zc.external_ctx().is_some());
    let mut out = frames(&mut zc, 16, 200);
    let sent: Vec<*const u8> = out.packets().iter().map(|p| p.buffer_addr()).collect();
    assert_eq!(ring.mempool_available(), start - 16);
    assert_eq!(ring.tx_burst(&mut out).packets, 16);
    assert_eq!(ring.rx_burst(&mut zc, &mut back), 16);
    let got: Vec<*const u8> = back.packets().iter().map(|p| p.buffer_addr()).collect();
    assert_eq!(got, sent, "the same buffers came back: never copied");
    for (i, p) in back.packets().iter().enumerate() {
        assert_eq!(p.data(), &[i as u8; 200][..]);
        assert_eq!(p.meta().rx_port, 0, "metadata reset on RX");
    }
    assert_eq!((copies.rx(), copies.tx()), (11, 13), "nothing copied");
    // Under load: net_null's frames go through the engine pool and out again.
    let mut null = null;
    for _ in 0..1000 {
        back.clear();
        let n = null.rx_burst(&mut zc, &mut back);
        assert!(n > 0);
        let first = back.packets()[0].buffer_addr();
        assert_eq!(null.tx_burst(&mut back).packets, n);
        assert!(!first.is_null());
    }
    back.clear();
    assert_eq!(
        ring.mempool_available(),
        start,
        "the mempool is whole again"
    );
    let copies = null.copy_counters();
    assert_eq!((copies.rx(), copies.tx()), (0, 0));
    drop(zc);

    // Fewer queues than workers: software dispatch, not an error; the
    // mempool of this process is too small for 64 workers' buffers though.
    let cfg = engine_cfg(64, &[("ring", "net_ring0")]);
    let probed = device::probe(&cfg.ports[0], "port[0].device", 64).unwrap();
    // net_ring0: 16 queue pairs, no RSS: one RX queue, 16 TX queues.
    assert_eq!(probed.plan, device::plan_queues(64, 16, 16, false, false));
    assert_eq!((probed.plan.mode, probed.plan.nrx), (RxMode::Software, 1));
    let e = ports::prepare(&cfg).unwrap_err().to_string();
    assert!(
        e.contains("mbufs") && e.contains("restart the engine"),
        "{e}"
    );
    // A device that was never probed.
    let mut bogus = cfg.ports[0].clone();
    bogus.device = Some("net_null9".into());
    let pool = device::current_pool().unwrap();
    let e = device::setup(&bogus, "port[0].device", 1, pool).unwrap_err();
    assert!(
        e.starts_with("port[0].device: DPDK has no device \"net_null9\""),
        "{e}"
    );
    assert!(e.contains("net_ring0"), "lists what was probed: {e}");
}
