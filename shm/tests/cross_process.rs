//! Publication and counters across real processes: this test binary
//! re-runs itself (the ignored `child` test, selected explicitly) as an
//! "engine" driven line by line over stdin/stdout, or as a one-shot
//! "publisher" that publishes one generation and exits.

mod common;

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};

use common::{sample_generation, TestDir};
use patronus_shm::{
    monotonic_ms, CounterBlock, CounterReader, CounterSpec, Generation, Publisher,
    PublisherOptions, Subscriber,
};

const ROLE: &str = "PATRONUS_SHM_TEST_ROLE";
const DIR: &str = "PATRONUS_SHM_TEST_DIR";
const ROUTES: &str = "PATRONUS_SHM_TEST_ROUTES";
/// Replies of the child start with this, to tell them from libtest's output.
const REPLY: &str = "@@ ";

fn child_command(role: &str, dir: &Path) -> Command {
    let mut c = Command::new(std::env::current_exe().unwrap());
    c.args([
        "child",
        "--exact",
        "--ignored",
        "--nocapture",
        "--test-threads=1",
    ])
    .env(ROLE, role)
    .env(DIR, dir);
    c
}

/// An engine process under test; killed on drop.
struct Engine {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl Engine {
    fn spawn(dir: &Path) -> Self {
        let mut child = child_command("engine", dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let stdin = child.stdin.take().unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        let mut e = Engine {
            child,
            stdin,
            stdout,
        };
        assert_eq!(e.read_reply(), "ready");
        e
    }

    fn read_reply(&mut self) -> String {
        loop {
            let mut line = String::new();
            let n = self.stdout.read_line(&mut line).unwrap();
            assert!(n > 0, "engine child exited");
            // libtest may print "test child ... " on the same line.
            if let Some(at) = line.find(REPLY) {
                return line[at + REPLY.len()..].trim_end().to_string();
            }
        }
    }

    fn ask(&mut self, cmd: &str) -> String {
        writeln!(self.stdin, "{cmd}").unwrap();
        self.stdin.flush().unwrap();
        self.read_reply()
    }

    /// Kills the process without letting it clean up (a crash).
    fn crash(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs a publisher process that publishes one generation of `routes`
/// routes and exits; returns the generation number it printed.
fn publish_in_child(dir: &Path, routes: u32) -> u64 {
    let out = child_command("publisher", dir)
        .env(ROUTES, routes.to_string())
        .output()
        .unwrap();
    assert!(out.status.success(), "publisher child failed: {out:?}");
    let stdout = String::from_utf8(out.stdout).unwrap();
    let line = stdout
        .lines()
        .find_map(|l| l.find(REPLY).map(|at| &l[at + REPLY.len()..]))
        .expect("publisher reply");
    line.strip_prefix("published ").unwrap().parse().unwrap()
}

const COUNTER_NAMES: &[&str] = &["rx_packets", "tx_packets", "drop_no_route"];
const HISTOGRAM_NAMES: &[&str] = &["batch_ns"];

/// The child side. Ignored in normal runs; the parent tests select it.
#[test]
#[ignore = "run by the cross-process tests as a child process"]
fn child() {
    let role = std::env::var(ROLE).expect("run by a parent test");
    let dir = std::path::PathBuf::from(std::env::var(DIR).unwrap());
    match role.as_str() {
        "publisher" => {
            let routes: u32 = std::env::var(ROUTES).unwrap().parse().unwrap();
            let mut p = Publisher::open(&dir).unwrap();
            let n = p.publish(&sample_generation(routes)).unwrap();
            println!("{REPLY}published {n}");
        }
        "engine" => run_engine(&dir),
        other => panic!("unknown role {other}"),
    }
}

fn run_engine(dir: &Path) {
    let mut sub = Subscriber::open(dir).unwrap();
    let mut held: Option<Generation> = None;
    let mut workers = HashMap::new();
    let mut counters = None;
    println!("{REPLY}ready");
    for line in std::io::stdin().lock().lines() {
        let line = line.unwrap();
        let words: Vec<&str> = line.split_whitespace().collect();
        let reply = match words.as_slice() {
            ["poll"] => match sub.poll().unwrap() {
                Some(g) => {
                    let r = format!("new {} routes {}", g.number(), g.view().routes().len());
                    held = Some(g);
                    r
                }
                None => {
                    let (n, r) = held
                        .as_ref()
                        .map_or((0, 0), |g| (g.number(), g.view().routes().len()));
                    format!("none held {n} routes {r}")
                }
            },
            ["worker", i] => {
                let i: usize = i.parse().unwrap();
                workers.insert(i, sub.worker(i).unwrap());
                "ok".to_string()
            }
            ["ack", i] => {
                let gen = held.as_ref().map_or(0, Generation::number);
                workers[&i.parse::<usize>().unwrap()].ack(gen);
                format!("acked {gen}")
            }
            ["counters", base] => {
                let base: u64 = base.parse().unwrap();
                let block = CounterBlock::create(
                    dir,
                    &CounterSpec {
                        workers: 2,
                        counters: COUNTER_NAMES,
                        histograms: HISTOGRAM_NAMES,
                    },
                )
                .unwrap();
                for w in 0..2 {
                    let c = block.take_worker(w).unwrap();
                    for i in 0..COUNTER_NAMES.len() {
                        // worker w, counter i holds base + 10 w + i, added in two steps.
                        c.add(i, base);
                        c.add(i, 10 * w as u64 + i as u64);
                    }
                    for v in [0, 1, 1000, 1_000_000] {
                        c.record(0, v + w as u64);
                    }
                    c.bump_seq();
                }
                let epoch = block.epoch();
                counters = Some(block);
                format!("epoch {epoch}")
            }
            ["exit"] => {
                println!("{REPLY}bye");
                break;
            }
            _ => format!("unknown {line}"),
        };
        println!("{REPLY}{reply}");
    }
    drop(counters);
}

#[test]
fn engine_first_publisher_restarts_reclaim_and_engine_restart() {
    let t = TestDir::new("xproc");
    // The engine starts first, on a directory that does not exist yet.
    let mut engine = Engine::spawn(t.path());
    assert!(t.path().join("control.shm").exists());
    assert_eq!(engine.ask("worker 0"), "ok");
    assert_eq!(engine.ask("worker 1"), "ok");
    assert_eq!(engine.ask("poll"), "none held 0 routes 0");

    // A publisher process comes, publishes, and dies.
    assert_eq!(publish_in_child(t.path(), 3), 1);
    assert_eq!(engine.ask("poll"), "new 1 routes 3");
    assert_eq!(engine.ask("ack 0"), "acked 1");
    assert_eq!(engine.ask("ack 1"), "acked 1");
    // With no publisher, the engine keeps its last generation.
    assert_eq!(engine.ask("poll"), "none held 1 routes 3");

    // A restarted publisher continues the numbering.
    assert_eq!(publish_in_child(t.path(), 5), 2);
    assert_eq!(engine.ask("poll"), "new 2 routes 5");
    assert_eq!(engine.ask("ack 0"), "acked 2");

    // Reclamation only once every live worker moved on.
    let stale = 60_000;
    let mut p = Publisher::open_with(
        t.path(),
        PublisherOptions {
            stale_worker_ms: stale,
        },
    )
    .unwrap();
    assert_eq!(p.next_generation(), 3);
    let now = monotonic_ms();
    assert!(
        p.reclaimable_at(now).unwrap().is_empty(),
        "worker 1 still on gen 1"
    );
    assert_eq!(engine.ask("ack 1"), "acked 2");
    assert_eq!(p.gc_at(monotonic_ms()).unwrap(), vec![1]);
    assert_eq!(p.dir().list_generations().unwrap(), vec![2]);
    assert_eq!(engine.ask("poll"), "none held 2 routes 5");

    // The engine crashes; its slots stay active until their heartbeats go
    // stale, then stop holding generations back.
    engine.crash();
    assert_eq!(p.publish(&sample_generation(6)).unwrap(), 3);
    let now = monotonic_ms();
    assert!(p.reclaimable_at(now).unwrap().is_empty());
    assert_eq!(p.reclaimable_at(now + stale + 1).unwrap(), vec![2]);

    // A restarted engine picks up the current generation at once.
    let mut engine = Engine::spawn(t.path());
    assert_eq!(engine.ask("poll"), "new 3 routes 6");
    assert_eq!(engine.ask("exit"), "bye");
}

#[test]
fn counters_written_by_one_process_read_by_another() {
    let t = TestDir::new("xcnt");
    let mut engine = Engine::spawn(t.path());
    let epoch1: u64 = engine
        .ask("counters 100")
        .strip_prefix("epoch ")
        .unwrap()
        .parse()
        .unwrap();
    let reader = CounterReader::open(t.path()).unwrap();
    assert_eq!(reader.epoch(), epoch1);
    assert_eq!(reader.workers(), 2);
    assert_eq!(reader.counter_names(), COUNTER_NAMES);
    assert_eq!(reader.histogram_names(), HISTOGRAM_NAMES);
    let snap = reader.snapshot();
    assert_eq!(snap.values, vec![vec![100, 101, 102], vec![110, 111, 112]]);
    assert_eq!(snap.totals(), vec![210, 212, 214]);
    assert_eq!(snap.seq, vec![1, 1]);
    let h = reader.histogram(1, 0).unwrap();
    assert_eq!((h.count, h.sum, h.max), (4, 1_001_005, 1_000_001));
    // Worker 1 recorded 1, 2, 1001, 1000001: buckets 1, 2, 10, 20.
    let nonzero: Vec<usize> = (0..64).filter(|&i| h.buckets[i] != 0).collect();
    assert_eq!(nonzero, vec![1, 2, 10, 20]);
    assert_eq!(reader.get(2, 0), None);
    assert_eq!(reader.histogram(0, 1), None);
    assert!(!reader.replaced());

    // The engine re-creates the file (as after a restart): the reader sees
    // the old values frozen, notices the replacement and follows it.
    let epoch2: u64 = engine
        .ask("counters 500")
        .strip_prefix("epoch ")
        .unwrap()
        .parse()
        .unwrap();
    assert!(reader.replaced());
    assert_eq!(reader.get(0, 0), Some(100));
    let reader = CounterReader::open(t.path()).unwrap();
    assert_eq!(reader.epoch(), epoch2);
    assert_eq!(reader.get(0, 0), Some(500));
    assert_eq!(reader.get(1, 2), Some(512));
}
