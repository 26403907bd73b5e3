//! Publication in one process: permissions, numbering, the cheap poll,
//! corrupt files, the single-publisher lock, and the reclamation rule with
//! an explicit clock.

mod common;

use std::os::unix::fs::PermissionsExt;

use common::{sample_generation, TestDir};
use patronus_shm::{Publisher, PublisherOptions, ShmError, Subscriber};

fn mode(p: &std::path::Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

#[test]
fn files_are_private() {
    let t = TestDir::new("perm");
    let root = t.path().join("nested/run");
    let mut p = Publisher::open(&root).unwrap();
    p.publish(&sample_generation(2)).unwrap();
    patronus_shm::CounterBlock::create(
        &root,
        &patronus_shm::CounterSpec {
            workers: 1,
            counters: &["a"],
            histograms: &[],
        },
    )
    .unwrap();
    assert_eq!(mode(&root), 0o700);
    assert_eq!(mode(&root.join("tables")), 0o700);
    assert_eq!(mode(&root.join("control.shm")), 0o600);
    assert_eq!(mode(&root.join("publisher.lock")), 0o600);
    assert_eq!(mode(&root.join("counters.shm")), 0o600);
    assert_eq!(mode(&root.join("tables/gen-1.bin")), 0o600);
    // No temp files are left behind.
    let names: Vec<_> = std::fs::read_dir(root.join("tables"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(names, vec!["gen-1.bin".to_string()]);
}

#[test]
fn publish_then_poll() {
    let t = TestDir::new("pubpoll");
    let mut sub = Subscriber::open(t.path()).unwrap();
    assert!(sub.poll().unwrap().is_none(), "nothing published yet");
    let mut p = Publisher::open(t.path()).unwrap();
    assert_eq!(p.publish(&sample_generation(3)).unwrap(), 1);
    let g = sub.poll().unwrap().expect("generation 1");
    assert_eq!(g.number(), 1);
    assert_eq!(g.view().routes().len(), 3);
    assert!(sub.poll().unwrap().is_none(), "unchanged");
    assert_eq!(p.publish(&sample_generation(4)).unwrap(), 2);
    assert_eq!(p.publish(&sample_generation(5)).unwrap(), 3);
    // Skips straight to the newest.
    let g3 = sub.poll().unwrap().unwrap();
    assert_eq!((g3.number(), g3.view().routes().len()), (3, 5));
    // The old generation stays readable while held.
    assert_eq!(g.view().routes().len(), 3);
}

#[test]
fn second_publisher_refused_and_restart_continues_numbering() {
    let t = TestDir::new("busy");
    let mut p = Publisher::open(t.path()).unwrap();
    p.publish(&sample_generation(1)).unwrap();
    p.publish(&sample_generation(1)).unwrap();
    let err = Publisher::open(t.path()).unwrap_err();
    assert!(matches!(err, ShmError::PublisherBusy { .. }), "{err}");
    drop(p);
    let mut p = Publisher::open(t.path()).unwrap();
    assert_eq!(p.current_generation(), 2);
    assert_eq!(p.publish(&sample_generation(1)).unwrap(), 3);
}

#[test]
fn corrupt_generation_reported_once_then_skipped() {
    let t = TestDir::new("corrupt");
    let mut sub = Subscriber::open(t.path()).unwrap();
    let mut p = Publisher::open(t.path()).unwrap();
    p.publish(&sample_generation(3)).unwrap();
    let path = p.dir().generation(1);
    let mut bytes = std::fs::read(&path).unwrap();
    let last = bytes.len() - 200;
    bytes[last] ^= 0xff;
    std::fs::write(&path, &bytes).unwrap();
    let err = sub.poll().unwrap_err();
    assert!(
        matches!(err, ShmError::Checksum { .. } | ShmError::Truncated { .. }),
        "{err}"
    );
    assert!(
        sub.poll().unwrap().is_none(),
        "a bad generation is not retried"
    );
    p.publish(&sample_generation(2)).unwrap();
    assert_eq!(sub.poll().unwrap().unwrap().number(), 2);
}

#[test]
fn orphan_generation_skipped_and_reclaimed() {
    let t = TestDir::new("orphan");
    let mut p = Publisher::open(t.path()).unwrap();
    p.publish(&sample_generation(1)).unwrap();
    drop(p);
    // A publisher died after writing gen 2 but before making it current.
    std::fs::write(t.path().join("tables/gen-2.bin"), b"partial").unwrap();
    let p = Publisher::open(t.path()).unwrap();
    assert_eq!((p.current_generation(), p.next_generation()), (1, 3));
    assert_eq!(p.gc().unwrap(), vec![2]);
    assert_eq!(p.dir().list_generations().unwrap(), vec![1]);
}

#[test]
fn reclamation_waits_for_every_live_worker() {
    let t = TestDir::new("reclaim");
    let stale = 5_000;
    let mut p = Publisher::open_with(
        t.path(),
        PublisherOptions {
            stale_worker_ms: stale,
        },
    )
    .unwrap();
    let sub = Subscriber::open(t.path()).unwrap();
    let now = 1_000_000;
    let w0 = sub.worker(0).unwrap();
    let w1 = sub.worker(1).unwrap();
    w0.heartbeat_at(now);
    w1.heartbeat_at(now);
    for _ in 0..3 {
        p.publish(&sample_generation(1)).unwrap();
    }
    // Fresh workers (acked 0) hold everything.
    assert!(p.reclaimable_at(now).unwrap().is_empty());
    w0.ack_at(3, now);
    w1.ack_at(2, now);
    assert_eq!(p.reclaimable_at(now).unwrap(), vec![1]);
    w1.ack_at(3, now);
    assert_eq!(p.gc_at(now).unwrap(), vec![1, 2]);
    assert_eq!(p.dir().list_generations().unwrap(), vec![3]);
    // The current generation is never reclaimed, even with no workers.
    drop((w0, w1));
    assert!(p.reclaimable_at(now).unwrap().is_empty());

    // A worker that stops beating no longer holds generations back.
    let w2 = sub.worker(2).unwrap();
    w2.ack_at(3, now);
    p.publish(&sample_generation(1)).unwrap(); // 4
    assert!(
        p.reclaimable_at(now + stale).unwrap().is_empty(),
        "at the limit it is still live"
    );
    assert_eq!(p.reclaimable_at(now + stale + 1).unwrap(), vec![3]);
    let status = p.workers_at(now + stale + 1);
    assert_eq!(status.len(), 1);
    assert_eq!(
        (status[0].index, status[0].acked_generation, status[0].live),
        (2, 3, false)
    );
    // Out-of-range worker index.
    assert!(matches!(
        sub.worker(64),
        Err(ShmError::WorkerOutOfRange {
            worker: 64,
            max: 64
        })
    ));
}

#[test]
fn publisher_first_then_subscriber_sees_current_at_once() {
    let t = TestDir::new("pubfirst");
    let mut p = Publisher::open(t.path()).unwrap();
    p.publish(&sample_generation(2)).unwrap();
    p.publish(&sample_generation(7)).unwrap();
    let mut sub = Subscriber::open(t.path()).unwrap();
    let g = sub.poll().unwrap().unwrap();
    assert_eq!((g.number(), g.view().routes().len()), (2, 7));
}

#[test]
fn foreign_control_file_refused() {
    let t = TestDir::new("foreign");
    std::fs::create_dir_all(t.path()).unwrap();
    std::fs::write(t.path().join("control.shm"), vec![0u8; 4224]).unwrap();
    let err = Subscriber::open(t.path()).unwrap_err();
    assert!(
        matches!(
            err,
            ShmError::BadMagic {
                what: "control file",
                ..
            }
        ),
        "{err}"
    );
    std::fs::write(t.path().join("control.shm"), b"short").unwrap();
    let err = Subscriber::open(t.path()).unwrap_err();
    assert!(matches!(err, ShmError::BadFile { .. }), "{err}");
}
