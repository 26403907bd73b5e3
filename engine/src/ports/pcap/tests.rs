//! Tests of the `pcap` driver: round trip through a pcap, real captures of
//! the nDPI dataset checked against tshark's counts, link types, damaged and
//! oversize input, queues and open errors. Captures are built byte by byte
//! here, independently of the `pcap-file` crate the driver uses.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use super::*;
use crate::config::PortDriver;

/// A fresh directory removed on drop, even when the test fails.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Self {
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "patronus-pcap-test-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn cfg(input: Option<&Path>, output: Option<&Path>) -> PortConfig {
    PortConfig {
        name: "cap0".into(),
        driver: PortDriver::Pcap,
        kernel_ingress: None,
        iface: None,
        mac: None,
        mtu: None,
        rx_ring: None,
        ring_block_size: None,
        ring_blocks: None,
        afxdp: None,
        input: input.map(Path::to_path_buf),
        output: output.map(Path::to_path_buf),
        generator: None,
        device: None,
    }
}

/// A frame whose bytes tell its index and length apart.
fn frame(i: usize, len: usize) -> Vec<u8> {
    (0..len)
        .map(|k| (k as u8).wrapping_mul(7) ^ (i as u8))
        .collect()
}

/// A little-endian microsecond pcap with the given link type; each record is
/// (captured bytes, original length).
fn pcap_bytes(linktype: u32, records: &[(Vec<u8>, u32)]) -> Vec<u8> {
    let mut b = Vec::new();
    b.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
    b.extend_from_slice(&2u16.to_le_bytes());
    b.extend_from_slice(&4u16.to_le_bytes());
    b.extend_from_slice(&0i32.to_le_bytes());
    b.extend_from_slice(&0u32.to_le_bytes());
    b.extend_from_slice(&262_144u32.to_le_bytes());
    b.extend_from_slice(&linktype.to_le_bytes());
    for (i, (data, orig)) in records.iter().enumerate() {
        b.extend_from_slice(&(1_700_000_000u32 + i as u32).to_le_bytes());
        b.extend_from_slice(&(i as u32 % 1_000_000).to_le_bytes());
        b.extend_from_slice(&(data.len() as u32).to_le_bytes());
        b.extend_from_slice(&orig.to_le_bytes());
        b.extend_from_slice(data);
    }
    b
}

/// pcapng blocks (little endian).
fn ng_block(ty: u32, body: &[u8]) -> Vec<u8> {
    let mut body = body.to_vec();
    while body.len() & 3 != 0 {
        body.push(0);
    }
    let total = (body.len() + 12) as u32;
    let mut b = Vec::new();
    b.extend_from_slice(&ty.to_le_bytes());
    b.extend_from_slice(&total.to_le_bytes());
    b.extend_from_slice(&body);
    b.extend_from_slice(&total.to_le_bytes());
    b
}

fn ng_shb() -> Vec<u8> {
    let mut body = Vec::new();
    body.extend_from_slice(&0x1a2b_3c4du32.to_le_bytes());
    body.extend_from_slice(&1u16.to_le_bytes());
    body.extend_from_slice(&0u16.to_le_bytes());
    body.extend_from_slice(&(-1i64).to_le_bytes());
    ng_block(0x0a0d_0d0a, &body)
}

fn ng_idb(linktype: u16, snaplen: u32) -> Vec<u8> {
    let mut body = Vec::new();
    body.extend_from_slice(&linktype.to_le_bytes());
    body.extend_from_slice(&0u16.to_le_bytes());
    body.extend_from_slice(&snaplen.to_le_bytes());
    ng_block(1, &body)
}

fn ng_epb(ifc: u32, data: &[u8], orig: u32) -> Vec<u8> {
    let mut body = Vec::new();
    body.extend_from_slice(&ifc.to_le_bytes());
    body.extend_from_slice(&0u32.to_le_bytes());
    body.extend_from_slice(&1000u32.to_le_bytes());
    body.extend_from_slice(&(data.len() as u32).to_le_bytes());
    body.extend_from_slice(&orig.to_le_bytes());
    body.extend_from_slice(data);
    ng_block(6, &body)
}

fn ng_spb(data: &[u8]) -> Vec<u8> {
    let mut body = Vec::new();
    body.extend_from_slice(&(data.len() as u32).to_le_bytes());
    body.extend_from_slice(data);
    ng_block(3, &body)
}

/// An interface statistics block: holds no packet.
fn ng_isb(ifc: u32) -> Vec<u8> {
    let mut body = Vec::new();
    body.extend_from_slice(&ifc.to_le_bytes());
    body.extend_from_slice(&[0u8; 8]);
    ng_block(5, &body)
}

/// Receives until the port reports exhausted; returns the frames.
fn read_all(port: &mut PcapPort, pool: &mut PacketPool) -> Vec<Vec<u8>> {
    let mut batch = Batch::new();
    let mut out = Vec::new();
    for _ in 0..1_000_000 {
        if port.rx_exhausted() {
            return out;
        }
        port.rx_burst(pool, &mut batch);
        out.extend(batch.drain().map(|p| p.data().to_vec()));
    }
    panic!("input never ended");
}

/// Parses a pcap written by the driver (native byte order, microseconds,
/// Ethernet) without the `pcap-file` crate; returns (frames, timestamps in µs).
fn parse_output(bytes: &[u8]) -> (Vec<Vec<u8>>, Vec<u64>) {
    let u32_at = |at: usize| u32::from_ne_bytes(bytes[at..at + 4].try_into().unwrap());
    assert_eq!(u32_at(0), 0xa1b2_c3d4, "native byte order, microseconds");
    assert_eq!(u32_at(20), 1, "Ethernet link type");
    let (mut frames, mut ts) = (Vec::new(), Vec::new());
    let mut at = 24;
    while at < bytes.len() {
        let (sec, usec, incl, orig) = (u32_at(at), u32_at(at + 4), u32_at(at + 8), u32_at(at + 12));
        assert!(usec < 1_000_000);
        assert_eq!(incl, orig);
        at += 16;
        frames.push(bytes[at..at + incl as usize].to_vec());
        ts.push(u64::from(sec) * 1_000_000 + u64::from(usec));
        at += incl as usize;
    }
    (frames, ts)
}

#[test]
fn round_trip_preserves_every_frame_and_byte() {
    let dir = TempDir::new();
    let (inp, out) = (dir.path("in.pcap"), dir.path("out.pcap"));
    // 700 frames cross several bursts; sizes include odd ones and the full
    // data room; frame 5 was truncated by the capture (caplen < origlen).
    let sizes = [60usize, 61, 64, 128, 999, 1514, 2048];
    let records: Vec<(Vec<u8>, u32)> = (0..700)
        .map(|i| {
            let f = frame(i, sizes[i % sizes.len()]);
            let orig = if i == 5 { 1514 } else { f.len() as u32 };
            (f, orig)
        })
        .collect();
    std::fs::write(&inp, pcap_bytes(1, &records)).unwrap();

    let before = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    let mut port = PcapPort::open(&cfg(Some(&inp), Some(&out)), 0, 1).unwrap();
    let mut pool = PacketPool::new(512);
    let mut batch = Batch::new();
    let mut bursts = 0;
    while !port.rx_exhausted() {
        port.rx_burst(&mut pool, &mut batch);
        let n = batch.len();
        assert_eq!(port.tx_burst(&mut batch).packets, n);
        assert!(batch.is_empty());
        bursts += 1;
    }
    assert!(bursts >= 3, "read lazily in bursts, not at once");
    port.flush();
    assert_eq!(port.stats(), PortStats::default());
    assert_eq!(pool.available(), 512);

    let (frames, ts) = parse_output(&std::fs::read(&out).unwrap());
    assert_eq!(frames.len(), records.len());
    for (i, (got, (want, _))) in frames.iter().zip(&records).enumerate() {
        assert_eq!(got, want, "frame {i}");
    }
    let after = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    let (lo, hi) = (before.as_micros() as u64, after.as_micros() as u64 + 1);
    assert!(
        ts.iter().all(|t| (lo..=hi).contains(t)),
        "wall-clock stamps"
    );
}

#[test]
fn flush_keeps_the_output_usable() {
    let dir = TempDir::new();
    let out = dir.path("out.pcap");
    let mut port = PcapPort::open(&cfg(None, Some(&out)), 0, 1).unwrap();
    assert!(port.rx_exhausted(), "no input");
    let mut pool = PacketPool::new(8);
    let mut batch = Batch::new();
    for round in 0..3 {
        batch
            .push(pool.alloc_from(&frame(round, 100)).unwrap())
            .unwrap();
        assert_eq!(port.tx_burst(&mut batch).packets, 1);
        port.flush();
        let (frames, _) = parse_output(&std::fs::read(&out).unwrap());
        assert_eq!(frames.len(), round + 1, "flushed frames are on disk");
    }
    assert_eq!(port.stats().tx_errors, 0);
}

/// Expected counts from the dataset, obtained once with
/// `tshark -r FILE | wc -l` (frames) and
/// `tshark -r FILE -T fields -e frame.cap_len | awk '{s+=$1} END {print s}'`
/// (captured bytes); for anydesk.pcapng with `awk '$1<=2048'` for the frames
/// that fit a buffer (`tshark -Y 'frame.cap_len > 2048'` finds 1 other).
const DATASET: &str = "/work/shared/datasets/ndpi/pcap";

fn dataset_file(name: &str) -> PathBuf {
    let p = Path::new(DATASET).join(name);
    assert!(
        p.is_file(),
        "{} is missing: the dataset is required for this test",
        p.display()
    );
    p
}

fn read_dataset(name: &str) -> (usize, usize, PortStats) {
    let mut port = PcapPort::open(&cfg(Some(&dataset_file(name)), None), 0, 1).unwrap();
    let mut pool = PacketPool::new(300);
    let frames = read_all(&mut port, &mut pool);
    let bytes = frames.iter().map(Vec::len).sum();
    (frames.len(), bytes, port.stats())
}

#[test]
fn real_pcap_yields_tshark_frame_count() {
    // 443-firefox.pcap: Ethernet pcap, 667 frames, 458067 bytes.
    let (n, bytes, stats) = read_dataset("443-firefox.pcap");
    assert_eq!((n, bytes), (667, 458_067));
    assert_eq!(stats.rx_errors, 0);
}

#[test]
fn real_pcapng_with_two_interfaces_yields_tshark_frame_count() {
    // stun_google_meet.pcapng: two Ethernet interfaces, 362 frames, 74597 bytes.
    let (n, bytes, stats) = read_dataset("stun_google_meet.pcapng");
    assert_eq!((n, bytes), (362, 74_597));
    assert_eq!(stats.rx_errors, 0);
}

#[test]
fn real_pcapng_oversize_frame_is_skipped_and_counted() {
    // anydesk.pcapng: 174 frames, one of them larger than 2048 bytes; the
    // other 173 hold 42137 bytes.
    let (n, bytes, stats) = read_dataset("anydesk.pcapng");
    assert_eq!((n, bytes), (173, 42_137));
    assert_eq!(stats.rx_errors, 1);
}

#[test]
fn non_ethernet_captures_are_refused() {
    let dir = TempDir::new();
    let raw = dir.path("raw.pcap");
    std::fs::write(&raw, pcap_bytes(101, &[(frame(0, 60), 60)])).unwrap();
    let e = PcapPort::open(&cfg(Some(&raw), None), 0, 1).err().unwrap();
    let msg = e.to_string();
    assert!(matches!(e, PortError::File { .. }), "{msg}");
    assert!(
        msg.contains("link type 101") && msg.contains("raw.pcap"),
        "{msg}"
    );

    let ng = dir.path("raw.pcapng");
    let mut b = ng_shb();
    b.extend(ng_idb(101, 0));
    b.extend(ng_epb(0, &frame(0, 60), 60));
    std::fs::write(&ng, b).unwrap();
    let msg = PcapPort::open(&cfg(Some(&ng), None), 0, 1)
        .err()
        .unwrap()
        .to_string();
    assert!(msg.contains("link type 101"), "{msg}");

    // A real Linux cooked capture from the dataset (link type 113).
    let sll = dataset_file("http2.pcapng");
    let msg = PcapPort::open(&cfg(Some(&sll), None), 0, 1)
        .err()
        .unwrap()
        .to_string();
    assert!(msg.contains("link type 113"), "{msg}");
}

#[test]
fn pcapng_mixed_link_types_deliver_only_ethernet() {
    let dir = TempDir::new();
    let ng = dir.path("mixed.pcapng");
    let mut b = ng_shb();
    b.extend(ng_idb(101, 0)); // raw IP first: the scan must go on
    b.extend(ng_epb(0, &frame(0, 40), 40));
    b.extend(ng_idb(1, 0));
    b.extend(ng_epb(1, &frame(1, 64), 64));
    b.extend(ng_isb(1));
    b.extend(ng_epb(0, &frame(2, 40), 40));
    b.extend(ng_epb(1, &frame(3, 99), 1500)); // truncated by the capture
    b.extend(ng_epb(7, &frame(4, 64), 64)); // undescribed interface
                                            // A new section whose only interface is Ethernet: simple packet blocks
                                            // belong to interface 0, cut at its snaplen of 80.
    b.extend(ng_shb());
    b.extend(ng_idb(1, 80));
    b.extend(ng_spb(&frame(5, 61)));
    b.extend(ng_spb(&frame(6, 100)));
    std::fs::write(&ng, b).unwrap();

    let mut port = PcapPort::open(&cfg(Some(&ng), None), 0, 1).unwrap();
    let mut pool = PacketPool::new(16);
    let frames = read_all(&mut port, &mut pool);
    let want = vec![
        frame(1, 64),
        frame(3, 99),
        frame(5, 61),
        frame(6, 100)[..80].to_vec(),
    ];
    assert_eq!(frames, want);
    assert_eq!(
        port.stats().rx_errors,
        3,
        "two raw IP, one unknown interface"
    );
}

#[test]
fn cut_files_stop_cleanly_with_an_error() {
    let dir = TempDir::new();
    let records: Vec<(Vec<u8>, u32)> = (0..10).map(|i| (frame(i, 100), 100)).collect();
    let full = pcap_bytes(1, &records);
    // Cut inside the data of record 7 (24-byte header, 116 bytes a record),
    // then inside a record header.
    for cut in [24 + 7 * 116 + 50, 24 + 7 * 116 + 5] {
        let p = dir.path("cut.pcap");
        std::fs::write(&p, &full[..cut]).unwrap();
        let mut port = PcapPort::open(&cfg(Some(&p), None), 0, 1).unwrap();
        let mut pool = PacketPool::new(16);
        let frames = read_all(&mut port, &mut pool);
        assert_eq!(frames.len(), 7, "cut at {cut}");
        assert_eq!(frames[6], records[6].0);
        assert_eq!(port.stats().rx_errors, 1);
    }

    let mut ng = ng_shb();
    ng.extend(ng_idb(1, 0));
    for i in 0..4 {
        ng.extend(ng_epb(0, &frame(i, 100), 100));
    }
    let p = dir.path("cut.pcapng");
    std::fs::write(&p, &ng[..ng.len() - 30]).unwrap();
    let mut port = PcapPort::open(&cfg(Some(&p), None), 0, 1).unwrap();
    let mut pool = PacketPool::new(16);
    assert_eq!(read_all(&mut port, &mut pool).len(), 3);
    assert_eq!(port.stats().rx_errors, 1);

    // An absurd record length is damage, not a frame to skip.
    let mut bad = pcap_bytes(1, &records[..2]);
    bad.extend_from_slice(&[0; 8]);
    bad.extend_from_slice(&u32::MAX.to_le_bytes());
    bad.extend_from_slice(&u32::MAX.to_le_bytes());
    bad.extend(pcap_bytes(1, &records[..1])[24..].iter());
    std::fs::write(&p, bad).unwrap();
    let mut port = PcapPort::open(&cfg(Some(&p), None), 0, 1).unwrap();
    assert_eq!(read_all(&mut port, &mut pool).len(), 2);
    assert_eq!(port.stats().rx_errors, 1);
}

#[test]
fn oversize_frame_is_skipped_and_counted() {
    let dir = TempDir::new();
    let p = dir.path("big.pcap");
    let records = vec![
        (frame(0, 100), 100),
        (frame(1, 2049), 2049),
        (frame(2, 9000), 9000),
        (frame(3, 2048), 2048),
    ];
    std::fs::write(&p, pcap_bytes(1, &records)).unwrap();
    let mut port = PcapPort::open(&cfg(Some(&p), None), 0, 1).unwrap();
    let mut pool = PacketPool::new(4);
    let frames = read_all(&mut port, &mut pool);
    assert_eq!(frames, vec![frame(0, 100), frame(3, 2048)]);
    assert_eq!(port.stats().rx_errors, 2);
}

#[test]
fn empty_pool_loses_no_frame() {
    let dir = TempDir::new();
    let p = dir.path("in.pcap");
    let records: Vec<(Vec<u8>, u32)> = (0..10).map(|i| (frame(i, 80), 80)).collect();
    std::fs::write(&p, pcap_bytes(1, &records)).unwrap();
    let mut port = PcapPort::open(&cfg(Some(&p), None), 0, 1).unwrap();
    let mut pool = PacketPool::new(3);
    let mut batch = Batch::new();
    let mut got = Vec::new();
    assert_eq!(port.rx_burst(&mut pool, &mut batch), 3);
    assert_eq!(port.rx_burst(&mut pool, &mut batch), 0, "pool is empty");
    got.extend(batch.drain().map(|p| p.data().to_vec()));
    got.extend(read_all(&mut port, &mut pool));
    let want: Vec<Vec<u8>> = records.into_iter().map(|r| r.0).collect();
    assert_eq!(got, want);
}

#[test]
fn only_queue_zero_reads_and_queues_write_their_own_file() {
    let dir = TempDir::new();
    let (inp, out) = (dir.path("in.pcap"), dir.path("out.pcap"));
    std::fs::write(&inp, pcap_bytes(1, &[(frame(0, 64), 64)])).unwrap();
    let c = cfg(Some(&inp), Some(&out));
    let mut q0 = PcapPort::open(&c, 0, 2).unwrap();
    let mut q1 = PcapPort::open(&c, 1, 2).unwrap();
    assert!(q1.rx_exhausted());
    let mut pool = PacketPool::new(8);
    assert!(read_all(&mut q1, &mut pool).is_empty());
    assert_eq!(read_all(&mut q0, &mut pool).len(), 1);

    let mut batch = Batch::new();
    batch.push(pool.alloc_from(&frame(1, 70)).unwrap()).unwrap();
    q1.tx_burst(&mut batch);
    q1.flush();
    q0.flush();
    assert_eq!(output_path(&out, 1), dir.path("out.pcap.q1"));
    let (f1, _) = parse_output(&std::fs::read(dir.path("out.pcap.q1")).unwrap());
    assert_eq!(f1, vec![frame(1, 70)]);
    let (f0, _) = parse_output(&std::fs::read(&out).unwrap());
    assert!(f0.is_empty());
}

#[test]
fn open_errors_name_the_file_and_reason() {
    let dir = TempDir::new();
    let missing = dir.path("nope.pcap");
    let e = PcapPort::open(&cfg(Some(&missing), None), 0, 1)
        .err()
        .unwrap();
    let msg = e.to_string();
    assert!(matches!(e, PortError::File { .. }), "{msg}");
    assert!(
        msg.contains("nope.pcap") && msg.contains("No such file"),
        "{msg}"
    );

    let text = dir.path("notes.txt");
    std::fs::write(&text, "hello, not a capture\n").unwrap();
    let msg = PcapPort::open(&cfg(Some(&text), None), 0, 1)
        .err()
        .unwrap()
        .to_string();
    assert!(msg.contains("not a pcap or pcapng"), "{msg}");

    let tiny = dir.path("tiny.pcap");
    std::fs::write(&tiny, [0xd4, 0xc3]).unwrap();
    let msg = PcapPort::open(&cfg(Some(&tiny), None), 0, 1)
        .err()
        .unwrap()
        .to_string();
    assert!(msg.contains("too short"), "{msg}");

    let bad_out = dir.path("no-such-dir/out.pcap");
    let e = PcapPort::open(&cfg(None, Some(&bad_out)), 0, 1)
        .err()
        .unwrap();
    let msg = e.to_string();
    assert!(matches!(e, PortError::File { .. }), "{msg}");
    assert!(msg.contains("no-such-dir/out.pcap"), "{msg}");
}

#[test]
fn damaged_files_never_panic() {
    // Flip bytes of valid captures at seeded random places; every variant
    // must open or be refused, and read to an end without panicking.
    let dir = TempDir::new();
    let records: Vec<(Vec<u8>, u32)> = (0..20).map(|i| (frame(i, 60 + i * 37), 2000)).collect();
    let pcap = pcap_bytes(1, &records);
    let mut ng = ng_shb();
    ng.extend(ng_idb(1, 0));
    ng.extend(ng_idb(101, 0));
    for (i, (d, _)) in records.iter().enumerate() {
        ng.extend(ng_epb((i % 2) as u32, d, 2000));
        ng.extend(ng_spb(&d[..30]));
    }
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let p = dir.path("fuzz");
    let mut pool = PacketPool::new(64);
    for base in [&pcap, &ng] {
        for _ in 0..300 {
            let mut b = base.clone();
            for _ in 0..1 + next() % 4 {
                let at = (next() % b.len() as u64) as usize;
                b[at] = next() as u8;
            }
            if next() % 4 == 0 {
                b.truncate((next() % b.len() as u64) as usize);
            }
            std::fs::write(&p, &b).unwrap();
            if let Ok(mut port) = PcapPort::open(&cfg(Some(&p), None), 0, 1) {
                read_all(&mut port, &mut pool);
            }
        }
    }
    assert_eq!(pool.available(), 64);
}

/// Big-endian pcapng (SHB, Ethernet IDB, EPB, SPB) and a big-endian
/// nanosecond pcap read like their little-endian forms.
#[test]
fn big_endian_and_nanosecond_captures() {
    fn block(ty: u32, body: &[u8]) -> Vec<u8> {
        let mut body = body.to_vec();
        while body.len() & 3 != 0 {
            body.push(0);
        }
        let total = (body.len() + 12) as u32;
        [
            &ty.to_be_bytes()[..],
            &total.to_be_bytes(),
            &body,
            &total.to_be_bytes(),
        ]
        .concat()
    }
    let dir = TempDir::new();
    let p = dir.path("be.pcapng");
    let shb = [&0x1a2b_3c4du32.to_be_bytes()[..], &[0, 1, 0, 0], &[0xff; 8]].concat();
    let idb = [&1u16.to_be_bytes()[..], &[0, 0], &0u32.to_be_bytes()].concat();
    let data = frame(9, 77);
    let epb = [
        &0u32.to_be_bytes()[..],
        &[0; 8],
        &77u32.to_be_bytes(),
        &77u32.to_be_bytes(),
        &data,
    ]
    .concat();
    let spb = [&77u32.to_be_bytes()[..], &data].concat();
    let file = [
        block(0x0a0d_0d0a, &shb),
        block(1, &idb),
        block(6, &epb),
        block(3, &spb),
    ]
    .concat();
    std::fs::write(&p, file).unwrap();
    let mut port = PcapPort::open(&cfg(Some(&p), None), 0, 1).unwrap();
    let mut pool = PacketPool::new(4);
    assert_eq!(
        read_all(&mut port, &mut pool),
        vec![data.clone(), data.clone()]
    );
    assert_eq!(port.stats().rx_errors, 0);

    let p = dir.path("be-ns.pcap");
    let mut b = Vec::new();
    for v in [0xa1b2_3c4du32, 0x0002_0004, 0, 0, 65_535, 1] {
        b.extend_from_slice(&v.to_be_bytes());
    }
    for v in [1u32, 999_999_999, 77, 77] {
        b.extend_from_slice(&v.to_be_bytes());
    }
    b.extend_from_slice(&data);
    std::fs::write(&p, b).unwrap();
    let mut port = PcapPort::open(&cfg(Some(&p), None), 0, 1).unwrap();
    assert_eq!(read_all(&mut port, &mut pool), vec![data]);
    assert_eq!(port.stats().rx_errors, 0);
}
