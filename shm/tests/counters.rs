//! Counters and histograms in one process: single-writer handles, names,
//! bucket boundaries, bad specs and foreign files.

mod common;

use common::TestDir;
use patronus_shm::histogram::{bucket_of, bucket_upper};
use patronus_shm::{CounterBlock, CounterReader, CounterSpec, Log2Histogram, ShmError};

#[test]
fn buckets_are_powers_of_two() {
    assert_eq!(bucket_of(0), 0);
    assert_eq!(bucket_of(1), 1);
    assert_eq!((bucket_of(2), bucket_of(3), bucket_of(4)), (2, 2, 3));
    assert_eq!(bucket_of(1023), 10);
    assert_eq!(bucket_of(1024), 11);
    assert_eq!(bucket_of(u64::MAX), 63);
    for i in 1..63 {
        assert_eq!(bucket_of(bucket_upper(i)), i);
        assert_eq!(bucket_of(bucket_upper(i) + 1), i + 1);
    }
}

#[test]
fn histogram_snapshot_and_quantiles() {
    let h = Log2Histogram::default();
    assert_eq!(h.snapshot().quantile_upper(0.5), 0);
    for v in 1..=100u64 {
        h.record(v * 10); // 10..=1000
    }
    let s = h.snapshot();
    assert_eq!((s.count, s.sum, s.max), (100, 50_500, 1000));
    // The median (500) lies in bucket 9 (256..=511).
    assert_eq!(s.quantile_upper(0.5), 511);
    assert_eq!(s.quantile_upper(1.0), 1000, "capped at max");
    let mut total = s;
    total.merge(&s);
    assert_eq!((total.count, total.max), (200, 1000));
}

#[test]
fn single_writer_per_worker() {
    let t = TestDir::new("cnt");
    let block = CounterBlock::create(
        t.path(),
        &CounterSpec {
            workers: 2,
            counters: &["a", "b"],
            histograms: &["lat"],
        },
    )
    .unwrap();
    let w0 = block.take_worker(0).unwrap();
    assert!(matches!(
        block.take_worker(0),
        Err(ShmError::WorkerTaken { worker: 0 })
    ));
    assert!(matches!(
        block.take_worker(2),
        Err(ShmError::WorkerOutOfRange { worker: 2, max: 2 })
    ));
    // Moves to another thread (Send) and writes there.
    let h = std::thread::spawn(move || {
        for _ in 0..1000 {
            w0.add(1, 3);
        }
        w0.add(7, 1); // out of range: ignored, no panic
        w0.record(0, 42);
        w0.record(5, 42); // out of range: ignored
        w0.set(0, 9);
        w0.get(1)
    });
    assert_eq!(h.join().unwrap(), 3000);
    let r = CounterReader::open(t.path()).unwrap();
    assert_eq!(r.snapshot().values, vec![vec![9, 3000], vec![0, 0]]);
    assert_eq!(r.histogram(0, 0).unwrap().count, 1);
    assert_eq!(r.seq(0), Some(0));
    assert_eq!(r.seq(2), None);
}

#[test]
fn bad_specs_refused() {
    let t = TestDir::new("cntbad");
    let spec = |workers, counters: &'static [&'static str]| CounterSpec {
        workers,
        counters,
        histograms: &[],
    };
    assert!(CounterBlock::create(t.path(), &spec(0, &["a"])).is_err());
    assert!(CounterBlock::create(t.path(), &spec(1, &[""])).is_err());
    let long: &'static str = Box::leak("x".repeat(49).into_boxed_str());
    let names: &'static [&'static str] = Box::leak(vec![long].into_boxed_slice());
    assert!(CounterBlock::create(t.path(), &spec(1, names)).is_err());
}

#[test]
fn reader_refuses_foreign_or_short_files() {
    let t = TestDir::new("cntforeign");
    assert!(
        matches!(CounterReader::open(t.path()), Err(ShmError::Io { .. })),
        "no file yet"
    );
    std::fs::create_dir_all(t.path()).unwrap();
    std::fs::write(t.path().join("counters.shm"), vec![0u8; 256]).unwrap();
    assert!(matches!(
        CounterReader::open(t.path()),
        Err(ShmError::BadMagic { .. })
    ));
    // A valid file cut short.
    CounterBlock::create(
        t.path(),
        &CounterSpec {
            workers: 4,
            counters: &["a"],
            histograms: &["h"],
        },
    )
    .unwrap();
    let path = t.path().join("counters.shm");
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() - 64]).unwrap();
    assert!(matches!(
        CounterReader::open(t.path()),
        Err(ShmError::Truncated { .. })
    ));
    // Dimensions tampered with: the layout no longer matches.
    let mut b = bytes.clone();
    b[12..16].copy_from_slice(&5u32.to_ne_bytes());
    std::fs::write(&path, &b).unwrap();
    assert!(matches!(
        CounterReader::open(t.path()),
        Err(ShmError::BadFile { .. })
    ));
}
