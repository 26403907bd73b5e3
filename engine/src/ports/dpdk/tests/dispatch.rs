//! Software dispatch with two workers on devices without RSS: `net_ring3`
//! (one RX queue configured; frames of many flows, both directions,
//! untagged, VLAN and QinQ, put into its RX ring) and `net_pcap0` (a single
//! queue pair: RX reads a capture, TX writes one). Every flow reaches
//! exactly one worker, both workers get some, ARP goes to worker 0, a full
//! inbox is a counted `rx_missed` drop, the shared TX queue takes both
//! workers' frames, and the mempool is whole afterwards.

use std::collections::BTreeMap;
use std::ptr;

use patronus_dpdk_sys as sys;

use super::super::dispatch::{self, HANDOFF_DEPTH};
use super::super::{device, DpdkPort, RxMode};
use super::zero_copy::{ring_count, ring_of};
use super::{engine_cfg, open_dpdk};
use crate::buffer::{Batch, PacketPool};
use crate::ports::{self, Port};

const FLOWS: u16 = 64;
const DEV: &str = "net_ring3";

/// A frame of flow `flow` in direction `dir` (0 forward, 1 reverse) with
/// `tags` VLAN tags (0, 1 or 2), TCP for even flows and UDP for odd ones;
/// its last three bytes say which flow and direction it is.
fn flow_frame(flow: u16, dir: u8, tags: usize) -> Vec<u8> {
    let (mut a, mut b) = ([10, 1, (flow >> 8) as u8, flow as u8], [10, 2, 0, 7]);
    let (mut sport, mut dport) = (
        10_000 + flow * 7,
        if flow.is_multiple_of(3) { 443 } else { 53 },
    );
    let (mut ma, mut mb) = ([2, 0, 0, 0, 1, 1], [2, 0, 0, 0, 0, 0xa]);
    if dir == 1 {
        std::mem::swap(&mut a, &mut b);
        std::mem::swap(&mut sport, &mut dport);
        std::mem::swap(&mut ma, &mut mb);
    }
    let proto = if flow.is_multiple_of(2) { 6 } else { 17 };
    let mut f = Vec::new();
    f.extend_from_slice(&mb);
    f.extend_from_slice(&ma);
    if tags == 2 {
        f.extend_from_slice(&[0x88, 0xa8, 0x00, 0x64]);
    }
    if tags >= 1 {
        f.extend_from_slice(&[0x81, 0x00, 0x00, 0x0a]);
    }
    f.extend_from_slice(&[0x08, 0x00]);
    let l4 = if proto == 6 { 20 } else { 8 };
    let total = 20 + l4 + 3;
    let mut ip = [0u8; 20];
    ip[0] = 0x45;
    ip[2..4].copy_from_slice(&(total as u16).to_be_bytes());
    ip[6] = 0x40; // DF, offset 0
    ip[8] = 64;
    ip[9] = proto;
    ip[12..16].copy_from_slice(&a);
    ip[16..20].copy_from_slice(&b);
    f.extend_from_slice(&ip);
    let mut l4h = vec![0u8; l4];
    l4h[0..2].copy_from_slice(&sport.to_be_bytes());
    l4h[2..4].copy_from_slice(&dport.to_be_bytes());
    f.extend_from_slice(&l4h);
    f.extend_from_slice(&flow.to_be_bytes());
    f.push(dir);
    f
}

/// An ARP request (marked as flow `u16::MAX`).
fn arp_frame() -> Vec<u8> {
    let mut f = vec![0xff; 6];
    f.extend_from_slice(&[2, 0, 0, 0, 1, 1, 0x08, 0x06]);
    f.extend_from_slice(&[0, 1, 8, 0, 6, 4, 0, 1, 2, 0, 0, 0, 1, 1, 10, 1, 0, 2]);
    f.extend_from_slice(&[0; 6]);
    f.extend_from_slice(&[10, 1, 0, 1]);
    f.extend_from_slice(&u16::MAX.to_be_bytes());
    f.push(0);
    f
}

/// Puts `frames` into the device's RX ring as mbufs of the mempool.
fn inject(ring: ptr::NonNull<sys::rte_ring>, mempool: *mut sys::rte_mempool, frames: &[Vec<u8>]) {
    let mut mbufs = vec![ptr::null_mut::<sys::rte_mbuf>(); frames.len()];
    // SAFETY: `mbufs` has room for every frame; the mempool is live.
    let r = unsafe {
        sys::patronus_pktmbuf_alloc_bulk(mempool, mbufs.as_mut_ptr(), frames.len() as u32)
    };
    assert_eq!(r, 0, "{} mbufs", frames.len());
    for (f, &m) in frames.iter().zip(&mbufs) {
        // SAFETY: a fresh single-segment mbuf with 2048 bytes of room.
        unsafe {
            let d = sys::patronus_pktmbuf_data(m).cast::<u8>();
            ptr::copy_nonoverlapping(f.as_ptr(), d, f.len());
            sys::patronus_pktmbuf_set_len(m, f.len() as u16);
        }
    }
    // SAFETY: the ring takes ownership of the mbufs.
    let put = unsafe {
        sys::patronus_ring_enqueue_burst(ring.as_ptr(), mbufs.as_ptr().cast(), frames.len() as u32)
    };
    assert_eq!(put as usize, frames.len(), "the RX ring took every frame");
}

/// Which flow and direction a received frame is (its last three bytes).
fn mark(data: &[u8]) -> (u16, u8) {
    let n = data.len();
    (u16::from_be_bytes([data[n - 3], data[n - 2]]), data[n - 1])
}

pub(super) fn flows_stay_on_one_worker() {
    let cfg = engine_cfg(2, &[("ring", DEV)]);
    ports::prepare(&cfg).unwrap();
    let mempool = device::current_pool().unwrap().0.as_ptr();
    // SAFETY: the mempool lives as long as the process.
    let avail = || unsafe { sys::rte_mempool_avail_count(mempool) };
    let start = avail();
    let ring = ring_of(DEV);

    let mut w: [DpdkPort; 2] = [open_dpdk(&cfg, 0, 0), open_dpdk(&cfg, 0, 1)];
    // net_ring has 16 queues but no RSS: one RX queue, a TX queue each.
    assert_eq!(w[0].mode(), (RxMode::Software, false));
    assert_eq!(w[1].mode(), (RxMode::Software, false));
    assert_eq!(w[0].queues(), (Some(0), 0), "worker 0 reads the RX queue");
    assert_eq!(w[1].queues(), (None, 1), "worker 1 only reads its inbox");
    assert!(!w[0].rss());
    let mut pools: [PacketPool; 2] = [ports::worker_pool(&cfg), ports::worker_pool(&cfg)];

    // Every flow both ways, untagged, with one VLAN tag and with two; ARP.
    let mut frames = Vec::new();
    for flow in 0..FLOWS {
        for dir in 0..2 {
            for tags in 0..3 {
                frames.push(flow_frame(flow, dir, tags));
            }
        }
    }
    for _ in 0..8 {
        frames.push(arp_frame());
    }
    // flow -> (worker -> frames seen), over several rounds.
    let mut seen: BTreeMap<(u16, u8), [usize; 2]> = BTreeMap::new();
    let mut batches = [Batch::new(), Batch::new()];
    const ROUNDS: usize = 5;
    for round in 0..ROUNDS {
        inject(ring, mempool, &frames);
        let mut polls = 0;
        loop {
            let mut got = 0;
            for i in 0..2 {
                got += w[i].rx_burst(&mut pools[i], &mut batches[i]);
                for p in batches[i].packets() {
                    seen.entry(mark(p.data())).or_default()[i] += 1;
                }
                batches[i].clear();
            }
            if got == 0 && ring_count(ring) == 0 {
                break;
            }
            polls += 1;
            assert!(polls < 10_000, "round {round}: RX stalled");
        }
    }
    assert_eq!(avail(), start, "every mbuf back in the mempool");

    let mut per_worker = [0usize; 2];
    for flow in 0..FLOWS {
        let fwd = seen.get(&(flow, 0)).copied().unwrap_or_default();
        let rev = seen.get(&(flow, 1)).copied().unwrap_or_default();
        let total = [fwd[0] + rev[0], fwd[1] + rev[1]];
        assert_eq!(
            total[0] + total[1],
            ROUNDS * 6,
            "flow {flow}: every frame received once"
        );
        assert!(
            total[0] == 0 || total[1] == 0,
            "flow {flow} split over workers: forward {fwd:?}, reverse {rev:?}"
        );
        assert_eq!(
            fwd[0] == 0,
            rev[0] == 0,
            "flow {flow}: both directions on one worker: forward {fwd:?}, reverse {rev:?}"
        );
        per_worker[0] += total[0];
        per_worker[1] += total[1];
    }
    assert!(
        per_worker[0] > 0 && per_worker[1] > 0,
        "both workers get flows: {per_worker:?}"
    );
    assert_eq!(
        seen.get(&(u16::MAX, 0)).copied(),
        Some([8 * ROUNDS, 0]),
        "ARP goes to worker 0"
    );

    // Worker 1 does not poll: its inbox fills, and what does not fit is
    // freed and counted as rx_missed of the reading worker.
    let mut for_w1 = 0;
    let mut rounds = 0;
    while for_w1 <= HANDOFF_DEPTH + 100 {
        inject(ring, mempool, &frames);
        for_w1 += frames
            .iter()
            .filter(|f| dispatch::owner(dispatch::flow_hash(f), 2) == 1)
            .count();
        rounds += 1;
        while ring_count(ring) > 0 {
            w[0].rx_burst(&mut pools[0], &mut batches[0]);
            batches[0].clear();
        }
    }
    assert_eq!(
        w[0].stats().rx_missed,
        (for_w1 - HANDOFF_DEPTH) as u64,
        "after {rounds} rounds, {for_w1} frames for worker 1"
    );
    assert_eq!(w[1].stats().rx_missed, 0);
    let mut drained = 0;
    loop {
        let n = w[1].rx_burst(&mut pools[1], &mut batches[1]);
        if n == 0 {
            break;
        }
        drained += n;
        batches[1].clear();
    }
    assert_eq!(
        drained, HANDOFF_DEPTH,
        "a full inbox, in order, nothing lost"
    );
    assert_eq!(avail(), start, "dropped frames went back to the mempool");

    // What is left in an inbox when its worker closes goes back too.
    inject(ring, mempool, &frames);
    while ring_count(ring) > 0 {
        w[0].rx_burst(&mut pools[0], &mut batches[0]);
        batches[0].clear();
    }
    assert!(avail() < start, "worker 1's inbox holds frames");
    drop(w);
    drop(pools);
    assert_eq!(avail(), start, "the mempool is whole again");
}

/// Frames of `net_pcap0`'s input: every flow, both directions.
fn pcap_frames() -> Vec<Vec<u8>> {
    (0..FLOWS)
        .flat_map(|flow| [flow_frame(flow, 0, 0), flow_frame(flow, 1, 0)])
        .collect()
}

/// Removes `net_pcap0`'s captures when the EAL tests end.
pub(super) struct PcapFiles;

impl Drop for PcapFiles {
    fn drop(&mut self) {
        let (input, output) = super::pcap_paths();
        let _ = std::fs::remove_file(input);
        let _ = std::fs::remove_file(output);
    }
}

/// Writes `net_pcap0`'s input capture (before EAL probes the device).
pub(super) fn write_pcap_input() -> PcapFiles {
    let mut out = Vec::new();
    for v in [0xa1b2_c3d4u32, 0x0004_0002, 0, 0, 65_535, 1] {
        out.extend_from_slice(&v.to_le_bytes());
    }
    for (i, f) in pcap_frames().iter().enumerate() {
        for v in [1, i as u32, f.len() as u32, f.len() as u32] {
            out.extend_from_slice(&v.to_le_bytes());
        }
        out.extend_from_slice(f);
    }
    std::fs::write(super::pcap_paths().0, out).unwrap();
    PcapFiles
}

/// Records in a pcap file (little-endian, as libpcap writes it here).
fn pcap_records(path: &std::path::Path) -> usize {
    let b = std::fs::read(path).unwrap();
    let (mut at, mut n) = (24, 0);
    while at + 16 <= b.len() {
        let incl = u32::from_le_bytes(b[at + 8..at + 12].try_into().unwrap()) as usize;
        at += 16 + incl;
        n += 1;
    }
    n
}

/// `net_pcap0` has one RX and one TX queue: worker 0 reads, both workers
/// process their flows, both send on the one TX queue under its lock.
pub(super) fn single_queue_pair_shared_by_two_workers() {
    let cfg = engine_cfg(2, &[("pcap", "net_pcap0")]);
    ports::prepare(&cfg).unwrap();
    let mempool = device::current_pool().unwrap().0.as_ptr();
    // SAFETY: the mempool lives as long as the process.
    let avail = || unsafe { sys::rte_mempool_avail_count(mempool) };
    let start = avail();
    let mut w: [DpdkPort; 2] = [open_dpdk(&cfg, 0, 0), open_dpdk(&cfg, 0, 1)];
    for (i, port) in w.iter().enumerate() {
        assert_eq!(port.mode(), (RxMode::Software, true), "worker {i}");
        assert_eq!(port.queues().1, 0, "worker {i} sends on the one TX queue");
    }
    assert_eq!(w[1].queues().0, None);
    let mut pools: [PacketPool; 2] = [ports::worker_pool(&cfg), ports::worker_pool(&cfg)];
    let mut batches = [Batch::new(), Batch::new()];
    let mut seen: BTreeMap<u16, [usize; 2]> = BTreeMap::new();
    let want = pcap_frames().len();
    let mut total = 0;
    for _ in 0..1000 {
        for i in 0..2 {
            total += w[i].rx_burst(&mut pools[i], &mut batches[i]);
            for p in batches[i].packets() {
                seen.entry(mark(p.data()).0).or_default()[i] += 1;
            }
            batches[i].clear();
        }
        if total == want {
            break;
        }
    }
    assert_eq!(total, want, "every frame of the capture received once");
    assert_eq!(seen.len(), FLOWS as usize);
    for (flow, n) in &seen {
        assert!(
            *n == [2, 0] || *n == [0, 2],
            "flow {flow}: both directions on one worker: {n:?}"
        );
    }
    let on_w1 = seen.values().filter(|n| n[1] > 0).count();
    assert!(
        on_w1 > 0 && on_w1 < FLOWS as usize,
        "both workers get flows: {on_w1} of {FLOWS} on worker 1"
    );
    for i in 0..2 {
        let mut out = Batch::new();
        for flow in 0..10 {
            out.push(pools[i].alloc_from(&flow_frame(flow, 0, 0)).unwrap())
                .unwrap();
        }
        assert_eq!(w[i].tx_burst(&mut out).packets, 10, "worker {i}");
    }
    assert_eq!(
        pcap_records(&super::pcap_paths().1),
        20,
        "both workers' frames written"
    );
    drop(w);
    drop(pools);
    assert_eq!(avail(), start, "the mempool is whole again");
}
