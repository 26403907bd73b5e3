//! NAT through the control plane, from `patronusctl` to the engine's NAT
//! slot and back, without network namespaces: the real control process
//! (release binary) publishes into a runtime directory; the engine's real
//! link thread (`control_link::spawn`) follows it into a `NatSlot`; two
//! stand-in workers adopt each plan into a real `Nat`, translate a few
//! packets, publish NAT counters and answer session queries as the
//! pipeline's workers do between batches.
//!
//! What a real engine process in namespaces adds (packets on the wire)
//! is covered by `tests/nat.rs` once the pipeline runs NAT.

use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use patronus_e2e::control::Control;
use patronus_e2e::TempDir;
use patronus_engine::config::EngineConfig;
use patronus_engine::counters::WorkerCounters;
use patronus_engine::fib::Fib;
use patronus_engine::nat::{Nat, Verdict, NAT_COUNTER_NAMES};
use patronus_engine::nat_slot::{NatPlan, NatSlot, SessionAnswer};
use patronus_engine::tables::TableSlot;
use serde_json::Value;

const WORKERS: usize = 2;
/// Outbound UDP flows each stand-in worker opens from its inside host.
const FLOWS: u16 = 3;

const CONFIG: &str = r#"
[engine]
workers = 2
[[port]]
name = "lan0"
driver = "mem"
[[port]]
name = "wan0"
driver = "mem"
[[interface]]
port = "lan0"
address = "10.1.0.1/24"
"#;

/// An IPv4/UDP packet with a valid header checksum (UDP checksum 0).
fn udp(src: Ipv4Addr, sport: u16, dst: Ipv4Addr, dport: u16) -> Vec<u8> {
    let mut p = vec![0u8; 28];
    p[0] = 0x45;
    p[2..4].copy_from_slice(&28u16.to_be_bytes());
    p[8] = 64;
    p[9] = 17;
    p[12..16].copy_from_slice(&src.octets());
    p[16..20].copy_from_slice(&dst.octets());
    let mut sum: u32 = p[..20]
        .chunks(2)
        .map(|w| u32::from(u16::from_be_bytes([w[0], w[1]])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    p[10..12].copy_from_slice(&(!(sum as u16)).to_be_bytes());
    p[20..22].copy_from_slice(&sport.to_be_bytes());
    p[22..24].copy_from_slice(&dport.to_be_bytes());
    p[24..26].copy_from_slice(&8u16.to_be_bytes());
    p
}

/// Worker `w`'s inside host.
fn inside_host(w: usize) -> Ipv4Addr {
    Ipv4Addr::new(10, 1, 0, 10 + w as u8)
}

/// A stand-in worker: adopts each plan (a fresh `Nat`, then `FLOWS` flows
/// from its inside host), acks it, publishes its NAT counters and answers
/// session queries, until `stop`.
fn worker(
    w: usize,
    slot: Arc<NatSlot>,
    counters: Arc<WorkerCounters>,
    stop: Arc<AtomicBool>,
) -> JoinHandle<()> {
    std::thread::spawn(move || {
        let start = Instant::now();
        let now = || start.elapsed().as_nanos() as u64 + 1;
        let mut have = 0;
        let mut nat: Option<Nat> = None;
        let mut answered = 0;
        while !stop.load(Ordering::Relaxed) {
            let g = slot.generation();
            if g != have {
                let (g, plan) = slot.load();
                nat = plan.map(|p: Arc<NatPlan>| {
                    let mut cfg = p.config.clone();
                    cfg.worker = w as u16;
                    let mut n = Nat::new(cfg).expect("a published plan is valid");
                    for i in 0..FLOWS {
                        let mut pkt =
                            udp(inside_host(w), 4000 + i, Ipv4Addr::new(192, 0, 2, 1), 53);
                        assert_eq!(n.outbound(&mut pkt, now()), Verdict::Translated);
                    }
                    n
                });
                have = g;
                slot.ack(w, g);
                if let Some(n) = &nat {
                    for (c, v) in counters.nat.iter().zip(n.counters().values()) {
                        c.store(v, Ordering::Relaxed);
                    }
                }
                counters.nat_sessions.store(
                    nat.as_ref().map_or(0, |n| n.session_count() as u64),
                    Ordering::Relaxed,
                );
            }
            if let Some((seq, q)) = slot.query_for(w) {
                if seq != answered {
                    answered = seq;
                    let (sessions, next) = match &nat {
                        Some(n) => n.session_page(q.inside, q.cursor, q.limit, now()),
                        None => (Vec::new(), None),
                    };
                    slot.answer(
                        w,
                        SessionAnswer {
                            seq,
                            sessions,
                            next,
                            nat_enabled: nat.is_some(),
                        },
                    );
                }
            }
            std::thread::sleep(Duration::from_micros(200));
        }
    })
}

/// Waits until the slot's plan satisfies `want` (the control process and
/// the link thread poll every millisecond; the bound only ends a hung test).
fn wait_plan(slot: &NatSlot, what: &str, want: impl Fn(Option<&NatPlan>) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !want(slot.load().1.as_deref()) {
        assert!(Instant::now() < deadline, "NAT plan never became {what}");
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// Waits until the slot's generation passes `g` and returns it: the link
/// stores a plan before it bumps the generation, so a reader can see the
/// new plan a moment before its number.
fn wait_generation_above(slot: &NatSlot, g: u64) -> u64 {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let now = slot.generation();
        if now > g {
            return now;
        }
        assert!(Instant::now() < deadline, "generation never passed {g}");
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// Waits until every stand-in worker runs the newest plan.
fn wait_adopted(slot: &NatSlot) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while slot.min_acked() < slot.generation() {
        assert!(Instant::now() < deadline, "workers never adopted the plan");
        std::thread::sleep(Duration::from_millis(2));
    }
}

fn json(out: &str) -> Value {
    serde_json::from_str(out).unwrap_or_else(|e| panic!("not JSON ({e}): {out}"))
}

#[test]
fn nat_config_flows_from_patronusctl_to_the_workers_and_sessions_back() {
    let tmp = TempDir::new("natapi");
    let runtime = tmp.join("shm");
    let dir = tmp.join("control");
    std::fs::create_dir_all(&dir).unwrap();

    // The engine's side, in process.
    let cfg = Arc::new(EngineConfig::parse(CONFIG).unwrap());
    let tables = Arc::new(TableSlot::new(Arc::new(Fib::build(&cfg).unwrap()), WORKERS));
    let counters: Vec<Arc<WorkerCounters>> = (0..WORKERS)
        .map(|_| Arc::new(WorkerCounters::new(cfg.ports.len())))
        .collect();
    let slot = Arc::new(NatSlot::new(None, WORKERS));
    let stop = Arc::new(AtomicBool::new(false));
    let link = patronus_engine::control_link::spawn(
        cfg.clone(),
        runtime.clone(),
        tables.clone(),
        counters.clone(),
        slot.clone(),
        Arc::new(patronus_engine::wg_plan::WgSlot::new(
            Some(patronus_engine::config::wg_plan(&cfg, WORKERS).unwrap()),
            WORKERS,
        )),
        Arc::new(patronus_engine::classify_slot::ClassifySlot::new(
            false, None, WORKERS,
        )),
        Arc::new(patronus_engine::lb_link::LbShared::new(&cfg, WORKERS).unwrap()),
        Arc::default(),
        None,
        stop.clone(),
    )
    .expect("link thread");
    // The workers ack table generations too: follow the table slot.
    let table_acker = {
        let (tables, stop) = (tables.clone(), stop.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let (g, _fib) = tables.load();
                for w in 0..WORKERS {
                    tables.ack(w, g);
                }
                std::thread::sleep(Duration::from_millis(1));
            }
        })
    };
    let workers: Vec<_> = (0..WORKERS)
        .map(|w| worker(w, slot.clone(), counters[w].clone(), stop.clone()))
        .collect();

    let port = 20000 + ((std::process::id() + 4211) % 20000) as u16;
    let c = Control::start(&dir, &runtime, port, "control");

    // No NAT anywhere yet.
    let out = c.ctl(&["nat", "sessions"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("nat_disabled"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // The outside interface is pushed by the API (the config has none on
    // wan0), and NAT on it.
    c.ctl_ok(&["interface", "add", "wan0", "198.51.100.1/24"]);
    c.ctl_ok(&[
        "nat",
        "set",
        "--outside",
        "wan0",
        "--pool",
        "198.51.100.1",
        "--timeout",
        "udp=90",
        "--filtering",
        "endpoint-independent",
    ]);
    wait_plan(&slot, "the pushed config", |p| p.is_some());
    let plan = slot.load().1.unwrap();
    assert_eq!((plan.outside_port, plan.outside_vlan), (1, 0));
    assert_eq!(plan.config.pool, vec![Ipv4Addr::new(198, 51, 100, 1)]);
    assert_eq!(plan.config.timeouts.udp_secs, 90);
    assert_eq!(plan.config.workers, WORKERS as u16);
    wait_adopted(&slot);

    // Sessions come back through the link thread, all pages, both workers.
    let all = json(&c.ctl_ok(&["--json", "nat", "sessions", "--all", "--limit", "2"]));
    let items = all["items"].as_array().unwrap();
    assert_eq!(items.len(), WORKERS * FLOWS as usize, "{all}");
    for w in 0..WORKERS {
        let mine: Vec<_> = items.iter().filter(|s| s["worker"] == w).collect();
        assert_eq!(mine.len(), FLOWS as usize, "{all}");
        for s in mine {
            assert_eq!(s["proto"], "udp");
            assert!(s["inside"]
                .as_str()
                .unwrap()
                .starts_with(&format!("{}:", inside_host(w))));
            assert!(s["outside"].as_str().unwrap().starts_with("198.51.100.1:"));
            assert_eq!(s["remote"], "192.0.2.1:53");
        }
    }
    let page = json(&c.ctl_ok(&[
        "--json",
        "nat",
        "sessions",
        "--inside",
        &inside_host(1).to_string(),
    ]));
    assert_eq!(
        page["items"].as_array().unwrap().len(),
        FLOWS as usize,
        "{page}"
    );
    assert!(page.get("next_cursor").is_none(), "{page}");

    // A forward added one by one reaches the plan.
    let before = slot.generation();
    c.ctl_ok(&[
        "nat",
        "forward",
        "add",
        "tcp",
        "198.51.100.1:8080",
        "10.1.0.2:80",
    ]);
    wait_plan(&slot, "with the forward", |p| {
        p.is_some_and(|p| p.config.forwards.len() == 1)
    });
    wait_generation_above(&slot, before);
    let f = slot.load().1.unwrap().config.forwards[0];
    assert_eq!(
        (f.outside_port, f.inside_addr, f.inside_port),
        (8080, Ipv4Addr::new(10, 1, 0, 2), 80)
    );
    wait_adopted(&slot);

    // The NAT counters reach /metrics.
    let deadline = Instant::now() + Duration::from_secs(30);
    let want = format!("patronus_nat_sessions_active {}", WORKERS * FLOWS as usize);
    loop {
        let out = std::process::Command::new("curl")
            .args(["-sS", &c.metrics])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        if text.contains(&want) {
            assert!(
                text.contains(&format!(
                    "patronus_nat_sessions_created_total {}",
                    WORKERS * FLOWS as usize
                )),
                "{text}"
            );
            assert!(
                text.contains("patronus_nat_packets_total{kind=\"outbound\"}"),
                "{text}"
            );
            break;
        }
        assert!(Instant::now() < deadline, "no {want} in /metrics:\n{text}");
        std::thread::sleep(Duration::from_millis(50));
    }

    // A control restart republishes the same config (a new NAT file) and
    // the workers keep their plan: the next change is the only new plan
    // generation.
    let g = slot.generation();
    let file_number = |path: &std::path::Path| {
        let b = std::fs::read(path).unwrap();
        u64::from_ne_bytes(b[16..24].try_into().unwrap())
    };
    let nat_file = runtime.join("nat.bin");
    let published = file_number(&nat_file);
    drop(c);
    let c = Control::start(&dir, &runtime, port, "control2");
    assert!(file_number(&nat_file) > published, "republished at start");
    c.ctl_ok(&[
        "nat",
        "forward",
        "add",
        "udp",
        "198.51.100.1:5353",
        "10.1.0.3:53",
    ]);
    wait_plan(&slot, "with two forwards", |p| {
        p.is_some_and(|p| p.config.forwards.len() == 2)
    });
    assert_eq!(
        wait_generation_above(&slot, g),
        g + 1,
        "the republished plan was published again"
    );
    wait_adopted(&slot);

    // NAT removed: the engine has no [nat] of its own, so NAT is off.
    c.ctl_ok(&["nat", "delete"]);
    wait_plan(&slot, "off", |p| p.is_none());
    let out = c.ctl(&["nat", "sessions"]);
    assert_eq!(out.status.code(), Some(1));

    stop.store(true, Ordering::Relaxed);
    link.join().unwrap();
    table_acker.join().unwrap();
    for w in workers {
        w.join().unwrap();
    }
}

#[test]
fn every_engine_nat_counter_has_a_metric() {
    use patronus_control::metrics::engine::NAT_METRICS;
    for name in NAT_COUNTER_NAMES.iter().chain(&["sessions_active"]) {
        assert!(
            NAT_METRICS.iter().any(|(n, _, _)| n == name),
            "engine NAT counter {name} has no Prometheus family in control"
        );
    }
    assert_eq!(NAT_METRICS.len(), NAT_COUNTER_NAMES.len() + 1);
}

/// Runs a command in `ns`; true when it succeeds.
fn ok_in(ns: &patronus_e2e::Netns, cmd: &str, args: &[&str]) -> bool {
    ns.exec_output(cmd, args).status.success()
}

/// The NAT sessions `patronusctl` lists (all pages), or the exit code.
fn sessions(c: &Control, extra: &[&str]) -> Result<Vec<Value>, i32> {
    let mut args = vec!["--json", "nat", "sessions", "--all"];
    args.extend_from_slice(extra);
    let out = c.ctl(&args);
    if !out.status.success() {
        return Err(out.status.code().unwrap_or(-1));
    }
    Ok(json(&String::from_utf8_lossy(&out.stdout))["items"]
        .as_array()
        .unwrap()
        .clone())
}

/// A real engine (2 workers, afpacket, in namespaces) with no `[nat]`: NAT
/// is configured through the API, translates, lists its sessions, keeps
/// them across a configuration change, and goes away with the config.
#[test]
fn engine_runs_the_nat_the_api_pushes() {
    use patronus_e2e::topology::{RouterKind, H1, H2, R_WAN};
    use patronus_e2e::Topology;
    let probe = TempDir::new("natapi-engine");
    let runtime = probe.join("shm");
    let extra = format!("[control]\nruntime_dir = \"{}\"\n", runtime.display());
    let mut t = Topology::build_workers("natapi", RouterKind::Engine, &extra, 2);
    t.wait_forwarding(Duration::from_secs(15));
    // h2 answers only its own subnet: replies to h1 come back only when
    // they are addressed to the router (translated).
    t.h2.ip(&["route", "del", "default"]);
    let ping = |t: &Topology| ok_in(&t.h1, "ping", &["-n", "-c", "1", "-W", "1", H2]);
    assert!(!ping(&t), "without NAT h2 cannot answer h1");
    let dir = t.dir.path().to_path_buf();
    let port = 20000 + ((std::process::id() + 7727) % 20000) as u16;
    let c = Control::start(&dir, &runtime, port, "control");
    assert_eq!(sessions(&c, &[]), Err(1), "NAT off: nat_disabled");

    // The outside interface comes from the engine's own config (the API
    // knows the engine's ports from its counters).
    c.ctl_ok(&["nat", "set", "--outside", "wan0", "--pool", R_WAN]);
    let deadline = Instant::now() + Duration::from_secs(30);
    while !ping(&t) {
        assert!(
            Instant::now() < deadline,
            "ping through the pushed NAT never worked"
        );
    }
    let listed = sessions(&c, &["--inside", H1]).expect("sessions");
    let icmp: Vec<_> = listed.iter().filter(|s| s["proto"] == "icmp").collect();
    assert!(!icmp.is_empty(), "{listed:?}");
    for s in &icmp {
        assert!(s["inside"].as_str().unwrap().starts_with(&format!("{H1}:")));
        assert!(s["outside"]
            .as_str()
            .unwrap()
            .starts_with(&format!("{R_WAN}:")));
    }
    assert_eq!(
        sessions(&c, &["--inside", "10.1.0.99"]).expect("sessions"),
        Vec::<Value>::new()
    );

    // A UDP session kept across configuration changes: same outside
    // endpoint, older age afterwards.
    let udp_send = |t: &Topology| {
        ok_in(
            &t.h1,
            "python3",
            &[
                "-c",
                &format!(
                    "import socket; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); \
                     s.bind(('{H1}', 40123)); s.sendto(b'x', ('{H2}', 9))"
                ),
            ],
        )
    };
    assert!(udp_send(&t));
    let find_udp = |c: &Control| -> Option<Value> {
        sessions(c, &["--inside", H1])
            .ok()?
            .into_iter()
            .find(|s| s["proto"] == "udp" && s["inside"] == format!("{H1}:40123"))
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    let before = loop {
        if let Some(s) = find_udp(&c) {
            break s;
        }
        assert!(Instant::now() < deadline, "the UDP session never showed up");
        std::thread::sleep(Duration::from_millis(20));
    };
    c.ctl_ok(&[
        "nat",
        "set",
        "--timeout",
        "udp=600",
        "--filtering",
        "endpoint-independent",
    ]);
    c.ctl_ok(&[
        "nat",
        "forward",
        "add",
        "tcp",
        &format!("{R_WAN}:8080"),
        &format!("{H1}:8000"),
    ]);
    // Wait until the engine runs the change: the ping still works and the
    // new timeout shows in the session's expiry (600 s > the 300 s default).
    let deadline = Instant::now() + Duration::from_secs(30);
    let after = loop {
        assert!(udp_send(&t));
        let s = find_udp(&c).expect("the UDP session survived the change");
        if s["expires_in_ms"].as_u64().unwrap() > 300_000 {
            break s;
        }
        assert!(
            Instant::now() < deadline,
            "the new UDP timeout never applied: {s}"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(after["outside"], before["outside"], "same mapping");
    assert!(
        after["age_ms"].as_u64() >= before["age_ms"].as_u64(),
        "{before} {after}"
    );
    assert!(ping(&t));

    // /metrics counts the translations.
    let scrape = std::process::Command::new("curl")
        .args(["-sf", &c.metrics])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&scrape.stdout).into_owned();
    let created = text
        .lines()
        .find_map(|l| l.strip_prefix("patronus_nat_sessions_created_total "))
        .unwrap_or_else(|| panic!("no NAT sessions counter in:\n{text}"));
    assert!(created.parse::<f64>().unwrap() >= 2.0, "{created}");

    // Removed: the engine has no [nat] of its own, so NAT is off again.
    c.ctl_ok(&["nat", "delete"]);
    let deadline = Instant::now() + Duration::from_secs(30);
    while sessions(&c, &[]) != Err(1) {
        assert!(Instant::now() < deadline, "NAT never went off");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(!ping(&t), "without NAT h2 cannot answer h1 again");
    if let Some(e) = t.engine.as_mut() {
        e.assert_running();
    }
}
