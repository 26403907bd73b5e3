//! Zero copy end to end: mbufs the test allocates from the engine's mempool
//! and puts into the RX ring of one `net_ring` device go through the real
//! `Pipeline` (routed, TTL decremented, MACs rewritten) and come out of the
//! TX ring of another as the very same mbufs, with the same data address;
//! no copy is counted and the mempool is whole after every round of load.

use std::ffi::CString;
use std::ptr::{self, NonNull};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

use patronus_dpdk_sys as sys;

use super::super::{device, DpdkPort};
use super::dpdk_section;
use crate::buffer::Batch;
use crate::config::EngineConfig;
use crate::counters::{DropReason, WorkerCounters};
use crate::fib::Fib;
use crate::pipeline::{NeighborSync, Pipeline};
use crate::ports::{self, Port};
use crate::wire::checksum;

const MAC_LAN: [u8; 6] = [2, 0, 0, 0, 0, 0xa];
const MAC_WAN: [u8; 6] = [2, 0, 0, 0, 0, 0xb];
const HOST1: [u8; 6] = [2, 0, 0, 0, 1, 1];
const HOST2: [u8; 6] = [2, 0, 0, 0, 2, 2];

/// Rounds of load, and the most frames put into the RX ring per round (its
/// ring holds 1023).
const ROUNDS: usize = 300;
const MAX_PER_ROUND: usize = 1000;

const ROUTER: &str = r#"
[[port]]
name = "lan"
driver = "dpdk"
device = "net_ring1"
mac = "02:00:00:00:00:0a"
[[port]]
name = "wan"
driver = "dpdk"
device = "net_ring2"
mac = "02:00:00:00:00:0b"
[[interface]]
port = "lan"
address = "10.1.0.1/24"
[[interface]]
port = "wan"
address = "10.2.0.1/24"
[[neighbor]]
port = "wan"
address = "10.2.0.2"
mac = "02:00:00:00:02:02"
[[route]]
prefix = "198.51.100.0/24"
via = "10.2.0.2"
"#;

/// A `net_ring` vdev's queue-0 ring: what its RX reads and its TX fills
/// (the PMD's naming for `--vdev=net_ringN`).
pub(super) fn ring_of(vdev: &str) -> NonNull<sys::rte_ring> {
    let name = CString::new(format!("ETH_RXTX0_{vdev}")).unwrap();
    // SAFETY: EAL is up; the name is NUL-terminated.
    NonNull::new(unsafe { sys::rte_ring_lookup(name.as_ptr()) })
        .unwrap_or_else(|| panic!("no ring behind {vdev}"))
}

pub(super) fn ring_count(r: NonNull<sys::rte_ring>) -> u32 {
    // SAFETY: a live ring (rings live as long as EAL).
    unsafe { sys::patronus_ring_count(r.as_ptr()) }
}

/// Ethernet + IPv4 + UDP from HOST1 to `dst`, `payload` bytes of `fill`.
fn udp_frame(dst: [u8; 4], ttl: u8, payload: usize, fill: u8) -> Vec<u8> {
    let mut f = Vec::with_capacity(42 + payload);
    f.extend_from_slice(&MAC_LAN);
    f.extend_from_slice(&HOST1);
    f.extend_from_slice(&[0x08, 0x00]);
    let mut iph = [0u8; 20];
    iph[0] = 0x45;
    iph[2..4].copy_from_slice(&((28 + payload) as u16).to_be_bytes());
    iph[8] = ttl;
    iph[9] = 17;
    iph[12..16].copy_from_slice(&[10, 1, 0, 2]);
    iph[16..20].copy_from_slice(&dst);
    let c = checksum::checksum(&iph);
    iph[10..12].copy_from_slice(&c.to_be_bytes());
    f.extend_from_slice(&iph);
    f.extend_from_slice(&[0x30, 0x39, 0x00, 0x35]);
    f.extend_from_slice(&((8 + payload) as u16).to_be_bytes());
    f.extend_from_slice(&[0, 0]);
    f.extend(std::iter::repeat_n(fill, payload));
    f
}

/// A frame the test sent, while it is inside the engine.
struct InFlight {
    mbuf: *mut sys::rte_mbuf,
    data: *mut u8,
    sent: Vec<u8>,
}

/// xorshift64: frame sizes, destinations and round sizes vary, reproducibly.
fn next(s: &mut u64) -> u64 {
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    *s
}

/// Rounds of 1..=1000 frames (1 in 16 with a broken IPv4 checksum) into
/// `net_ring1`'s RX ring; each good one must come out of `net_ring2`'s ring
/// as the same mbuf at the same data address, forwarded.
pub(super) fn received_frames_leave_in_their_own_mbufs() {
    let cfg = EngineConfig::parse(&format!(
        "[engine]\nworkers = 1\npool_size = 1024\n{}{ROUTER}",
        dpdk_section()
    ))
    .unwrap();
    ports::prepare(&cfg).unwrap();
    let mempool = device::current_pool().unwrap().0.as_ptr();
    let (lan_ring, wan_ring) = (ring_of("net_ring1"), ring_of("net_ring2"));
    let lan = DpdkPort::open(&cfg.ports[0], 0, 1).unwrap();
    let wan = DpdkPort::open(&cfg.ports[1], 0, 1).unwrap();
    let copies = [lan.copy_counters(), wan.copy_counters()];
    // SAFETY: the mempool lives as long as the process.
    let avail = || unsafe { sys::rte_mempool_avail_count(mempool) };
    let start = avail();

    // The worker's pool is the mempool: what the pipeline allocates and
    // adopts are mbufs.
    let pool = ports::worker_pool(&cfg);
    assert_eq!(pool.external_ctx(), Some(mempool.cast()));
    let counters = Arc::new(WorkerCounters::new(2));
    let ports: Vec<Box<dyn Port>> = vec![Box::new(lan), Box::new(wan)];
    let mut pipeline = Pipeline::new(
        &cfg,
        Arc::new(Fib::build(&cfg).unwrap()),
        ports,
        pool,
        NeighborSync::mesh(1, 16).pop().unwrap(),
        counters.clone(),
    );
    let mut rx = Batch::new();
    let mut now = 1_000_000u64;
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let mut mbufs = vec![ptr::null_mut::<sys::rte_mbuf>(); MAX_PER_ROUND];
    let mut out = vec![ptr::null_mut::<sys::rte_mbuf>(); MAX_PER_ROUND + 1];
    let (mut forwarded, mut bad) = (0usize, 0u64);

    for round in 0..ROUNDS {
        let n = 1 + next(&mut seed) as usize % MAX_PER_ROUND;
        // SAFETY: `mbufs` has room for `n` pointers; the mempool is live.
        let r = unsafe { sys::patronus_pktmbuf_alloc_bulk(mempool, mbufs.as_mut_ptr(), n as u32) };
        assert_eq!(r, 0, "round {round}: {n} mbufs");
        let mut expect = Vec::with_capacity(n);
        for (i, &m) in mbufs[..n].iter().enumerate() {
            let r = next(&mut seed);
            let dst = if r & 1 == 0 {
                [10, 2, 0, 2]
            } else {
                [198, 51, 100, (r >> 8) as u8]
            };
            let mut f = udp_frame(
                dst,
                2 + (r >> 16) as u8 % 254,
                (r >> 24) as usize % 1440 + 18,
                i as u8,
            );
            // One frame in 16 has a broken header checksum: a counted drop
            // whose mbuf must go back to the mempool too.
            let broken = (r >> 40).is_multiple_of(16);
            if broken {
                f[14 + 10] ^= 0x5a;
            }
            // SAFETY: a fresh single-segment mbuf with 2048 bytes of room.
            let data = unsafe {
                let d = sys::patronus_pktmbuf_data(m).cast::<u8>();
                ptr::copy_nonoverlapping(f.as_ptr(), d, f.len());
                sys::patronus_pktmbuf_set_len(m, f.len() as u16);
                d
            };
            if broken {
                bad += 1;
            } else {
                expect.push(InFlight {
                    mbuf: m,
                    data,
                    sent: f,
                });
            }
        }
        // SAFETY: the ring takes ownership of the `n` mbufs (net_ring's RX
        // hands them on as received frames).
        let put = unsafe {
            sys::patronus_ring_enqueue_burst(lan_ring.as_ptr(), mbufs.as_ptr().cast(), n as u32)
        };
        assert_eq!(
            put as usize, n,
            "round {round}: the RX ring took every frame"
        );

        // Poll until the RX ring is empty (a poll takes one RX burst),
        // taking what the wan port transmitted after each poll: it must not
        // loop back into the wan port's RX.
        let mut got = 0;
        let mut polls = 0;
        while ring_count(lan_ring) > 0 {
            polls += 1;
            assert!(
                polls <= 1 + MAX_PER_ROUND / crate::ports::dpdk::port::RX_BURST,
                "round {round}: RX stalled"
            );
            pipeline.poll(&mut rx, now);
            now += 10_000;
            // SAFETY: `out` has room for what is left; the mbufs become ours.
            got += unsafe {
                sys::patronus_ring_dequeue_burst(
                    wan_ring.as_ptr(),
                    out[got..].as_mut_ptr().cast(),
                    (out.len() - got) as u32,
                )
            } as usize;
        }
        assert_eq!(
            got,
            expect.len(),
            "round {round}: every good frame forwarded"
        );
        for (k, (e, &m)) in expect.iter().zip(&out[..got]).enumerate() {
            assert_eq!(
                m, e.mbuf,
                "round {round} frame {k}: the very mbuf that was received"
            );
            // SAFETY: a transmitted mbuf, ours now.
            let (data, len, pool, segs) = unsafe {
                (
                    sys::patronus_pktmbuf_data(m).cast::<u8>(),
                    sys::patronus_pktmbuf_data_len(m) as usize,
                    sys::patronus_pktmbuf_pool(m),
                    sys::patronus_pktmbuf_nb_segs(m),
                )
            };
            assert_eq!(data, e.data, "round {round} frame {k}: data not moved");
            assert_eq!((pool, segs), (mempool, 1));
            // SAFETY: `len` bytes of the mbuf's single segment.
            let f = unsafe { std::slice::from_raw_parts(data, len) };
            let s = &e.sent;
            assert_eq!(f.len(), s.len());
            assert_eq!(&f[0..6], &HOST2, "next hop's MAC");
            assert_eq!(&f[6..12], &MAC_WAN, "wan's MAC");
            assert_eq!(f[14 + 8], s[14 + 8] - 1, "TTL decremented");
            assert_eq!(checksum::checksum(&f[14..34]), 0, "header checksum valid");
            assert_eq!(&f[12..22], &s[12..22]);
            assert_eq!(&f[23..24], &s[23..24]);
            assert_eq!(
                &f[26..],
                &s[26..],
                "round {round} frame {k}: rest untouched"
            );
        }
        forwarded += got;
        // SAFETY: the dequeued mbufs are ours and used no more.
        unsafe { sys::rte_pktmbuf_free_bulk(out.as_mut_ptr(), got as u32) };
        assert_eq!(avail(), start, "round {round}: the mempool is whole again");
    }

    assert_eq!(counters.drop_count(DropReason::Ipv4BadChecksum), bad);
    assert!(
        bad > 0 && forwarded > 100 * ROUNDS,
        "{forwarded} forwarded, {bad} bad"
    );
    let c = |p: usize| {
        let pc = &counters.ports[p];
        (pc.rx_packets.load(Relaxed), pc.tx_packets.load(Relaxed))
    };
    // Nothing went out of lan (its TX ring is its RX ring) nor came in on wan.
    assert_eq!(c(0), (forwarded as u64 + bad, 0));
    assert_eq!(c(1), (0, forwarded as u64));
    for c in &copies {
        assert_eq!((c.rx(), c.tx()), (0, 0), "no copy on a zero-copy worker");
    }
    drop(pipeline);
    assert_eq!(avail(), start);
}
