//! `lb-veth`: client — balancer — backends namespaces joined by veth pairs.
//! The backends are `BACKENDS` addresses on the servers' namespace; a VIP
//! that no namespace owns is balanced over them by (a) the kernel with an
//! nftables `jhash … mod N` map to DNAT (conntrack for the return path) and
//! (b) the Patronus engine with `[lb]` in NAT mode (afpacket, then afxdp
//! ports), in the same run. Traffic: iperf3 TCP streams to VIP:5201, and
//! short TCP connections (request, response, close) to VIP:8080.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

use super::conn_rate::{self, REQUEST, RESPONSE_LEN};
use super::fwd_veth::Driver;
use super::nat_veth::{iperf3_client, received_bps, secs, ChildGuard, Traffic};
use super::rounds::{median, merge_rounds_by, same_round_ratios_by, Key};
use super::Options;
use crate::engine::{self, EngineProcess, EngineStats};
use crate::netns::{sleep_checked, End, Lab};
use crate::report::{Report, Row};
use crate::sysstat::{self, ProcStat};

const CLIENT: &str = "10.1.0.2";
const LB_CLIENT_SIDE: &str = "10.1.0.1";
const LB_SERVER_SIDE: &str = "10.2.0.1";
/// The VIP: routed to the balancer by the client's default route, owned by
/// no namespace.
const VIP: &str = "10.9.0.100";
const IPERF_PORT: u16 = 5201;
const CONN_PORT: u16 = 8080;
/// Backends 10.2.0.11 .. 10.2.0.(10 + BACKENDS), all on the servers'
/// namespace; the servers listen on the wildcard address, so any backend
/// address reaches them.
const BACKENDS: u8 = 4;
/// Server threads of the short-connection server.
const SERVER_THREADS: usize = 2;

fn backend(i: u8) -> String {
    format!("10.2.0.{}", 11 + u32::from(i))
}

/// The test of one row.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Test {
    /// iperf3 TCP, several streams (bit rate).
    Stream,
    /// Short connections back to back from several threads (connections/s).
    Conn,
}

impl Test {
    fn name(self) -> &'static str {
        match self {
            Test::Stream => "tcp",
            Test::Conn => "conn",
        }
    }
    fn key(self) -> Key {
        match self {
            Test::Stream => Key::Bps,
            Test::Conn => Key::Cps,
        }
    }
}

/// The balancer of one row.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Balancer {
    Nftables,
    Engine(Driver),
}

impl Balancer {
    fn system(self, t: Test) -> String {
        let b = match self {
            Balancer::Nftables => "nftables",
            Balancer::Engine(Driver::AfPacket) => "patronus",
            Balancer::Engine(Driver::AfXdp) => "patronus-afxdp",
        };
        format!("{b}-{}", t.name())
    }
}

const BALANCERS: [Balancer; 3] = [
    Balancer::Nftables,
    Balancer::Engine(Driver::AfPacket),
    Balancer::Engine(Driver::AfXdp),
];
const TESTS: [Test; 2] = [Test::Stream, Test::Conn];

pub fn run(opts: &Options, streams: usize, conn_threads: usize) -> anyhow::Result<Report> {
    let mut report = Report::new("lb-veth");
    let streams = streams.clamp(1, 128);
    let conn_threads = conn_threads.clamp(1, 64);
    // rounds[test][round] = rows of that test in that round.
    let mut rounds: Vec<Vec<Vec<Row>>> = vec![Vec::new(); TESTS.len()];
    for _ in 0..opts.rounds.max(1) {
        for (ti, test) in TESTS.into_iter().enumerate() {
            let mut rows = Vec::new();
            for b in BALANCERS {
                rows.push(match run_one(opts, b, test, streams, conn_threads) {
                    Ok(r) => r,
                    Err(e) if crate::netns::stop_requested() => return Err(e),
                    Err(e) => Row::not_run(&b.system(test), 0, format!("{e:#}")),
                });
            }
            rounds[ti].push(rows);
        }
    }
    for (ti, test) in TESTS.into_iter().enumerate() {
        let mut notes = Vec::new();
        report
            .rows
            .extend(merge_rounds_by(&rounds[ti], &mut notes, test.key()));
        let base = Balancer::Nftables.system(test);
        for b in &BALANCERS[1..] {
            let sys = b.system(test);
            let mut ratios = same_round_ratios_by(&rounds[ti], &sys, &base, test.key());
            if rounds[ti].len() > 1 {
                report.notes.push(format!(
                    "per-round ratios {sys} / {base}: {}",
                    ratios
                        .iter()
                        .map(|r| format!("{r:.3}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
            }
            let ratio = median(&mut ratios);
            if test == Test::Stream && *b == Balancer::Engine(Driver::AfPacket) {
                report.ratio = ratio;
            }
            report.push_ratio(&sys, &base, ratio);
        }
        if ti == 0 {
            report.notes.extend(notes);
        }
    }
    report.notes.push(format!(
        "topology: client namespace ({CLIENT}, default via {LB_CLIENT_SIDE}) — balancer namespace — servers' \
         namespace with {BACKENDS} backend addresses {}..{} (default via {LB_SERVER_SIDE}); VIP {VIP} is \
         owned by nobody, so traffic only flows when the balancer translates. NAT mode both ways: the \
         backends see the client's address and reply through the balancer",
        backend(0),
        backend(BACKENDS - 1)
    ));
    report.notes.push(format!(
        "tcp rows: iperf3 -P {streams} to {VIP}:{IPERF_PORT}, {}s measured after {}s omitted (-O), veth \
         offloads left on; Gbit/s = iperf3's sum_received; Mpps = frames at the servers' veth over the run. \
         Each iperf3 connection (control and every stream) is balanced on its own, so they land on \
         different backend addresses; one iperf3 server on the wildcard address serves them all (an \
         iperf3 server per backend would split one test's connections across servers that do not know \
         its cookie). conn rows: {conn_threads} client threads, each connecting to {VIP}:{CONN_PORT}, \
         sending {} B, reading a {RESPONSE_LEN} B answer to the server's FIN and closing, back to back; \
         {SERVER_THREADS} server threads; k conn/s over {}s after {}s of warm-up; the spread over \
         backends is counted by the server per local address",
        secs(opts.duration),
        secs(opts.warmup),
        REQUEST.len(),
        opts.duration.as_secs_f64(),
        opts.warmup.as_secs_f64()
    ));
    report.notes.push(format!(
        "nftables: ip_forward=1, a nat prerouting chain `ip daddr {VIP} tcp dport {{ {IPERF_PORT}, \
         {CONN_PORT} }} dnat to jhash ip saddr . tcp sport mod {BACKENDS} map {{ 0 : {}, … }}` (conntrack \
         un-NATs the replies); patronus: one busy-polling worker pinned to core {} at nice {}, [lb] with \
         two TCP VIPs ({VIP}:{IPERF_PORT}, {VIP}:{CONN_PORT}) in NAT mode over the same {BACKENDS} \
         backends, default Maglev table; iperf3, clients and servers are not pinned, so with the engine \
         they share the core its worker leaves, while the kernel balances in softirq on whichever core \
         sends; core busy % per row says where the CPU went",
        backend(0),
        opts.router_core,
        opts.nice
    ));
    Ok(report)
}

/// client — B — servers; returns the lab and the ends (c0, b0, b1, s0).
fn lb_lab(tag: &str) -> anyhow::Result<(Lab, [End; 4])> {
    let mut lab = Lab::new(tag);
    let c_ns = lab.add_netns("c")?;
    let b_ns = lab.add_netns("b")?;
    let s_ns = lab.add_netns("s")?;
    let c0 = End::new(&c_ns, "c0", [6, 1]);
    let b0 = End::new(&b_ns, "b0", [6, 2]);
    let b1 = End::new(&b_ns, "b1", [7, 1]);
    let s0 = End::new(&s_ns, "s0", [7, 2]);
    lab.veth(&c0, &b0)?;
    lab.veth(&b1, &s0)?;
    lab.ip(
        &c_ns,
        &["addr", "add", &format!("{CLIENT}/24"), "dev", &c0.iface],
    )?;
    lab.ip(&c_ns, &["route", "add", "default", "via", LB_CLIENT_SIDE])?;
    // Many short connections: the whole port range for the client.
    lab.sysctl(&c_ns, "net.ipv4.ip_local_port_range", "1024 65535")?;
    for i in 0..BACKENDS {
        lab.ip(
            &s_ns,
            &[
                "addr",
                "add",
                &format!("{}/24", backend(i)),
                "dev",
                &s0.iface,
            ],
        )?;
    }
    lab.ip(&s_ns, &["route", "add", "default", "via", LB_SERVER_SIDE])?;
    Ok((lab, [c0, b0, b1, s0]))
}

/// The nftables ruleset of the kernel balancer.
fn nft_ruleset() -> String {
    let map: Vec<String> = (0..BACKENDS)
        .map(|i| format!("{i} : {}", backend(i)))
        .collect();
    format!(
        "table ip pperf_lb {{\n  chain prerouting {{\n    type nat hook prerouting priority dstnat; policy accept;\n    \
         ip daddr {VIP} tcp dport {{ {IPERF_PORT}, {CONN_PORT} }} dnat to jhash ip saddr . tcp sport mod {BACKENDS} \
         seed 0x5eed map {{ {} }}\n  }}\n}}\n",
        map.join(", ")
    )
}

/// Engine config for B: ports of `driver` on b0/b1, the two VIPs in NAT mode.
fn engine_config(opts: &Options, b0: &End, b1: &End, driver: Driver) -> String {
    let mut text = format!(
        r#"# lb-veth: Patronus as the L4 balancer B
[engine]
workers = 1
poll = "busy"
cores = [{core}]

[[port]]
name = "lan0"
{lan_keys}
[[port]]
name = "wan0"
{wan_keys}

[[interface]]
port = "lan0"
address = "{LB_CLIENT_SIDE}/24"

[[interface]]
port = "wan0"
address = "{LB_SERVER_SIDE}/24"

[lb]
"#,
        core = opts.router_core,
        lan_keys = driver.port_keys(&b0.iface),
        wan_keys = driver.port_keys(&b1.iface),
    );
    for port in [IPERF_PORT, CONN_PORT] {
        text.push_str(&format!(
            r#"
[[lb.vip]]
address = "{VIP}"
port = {port}
protocol = "tcp"
mode = "nat"
"#
        ));
        for i in 0..BACKENDS {
            text.push_str(&format!(
                r#"
[[lb.vip.backend]]
address = "{}"
port = {port}
weight = 1
"#,
                backend(i)
            ));
        }
    }
    text
}

fn run_one(
    opts: &Options,
    balancer: Balancer,
    test: Test,
    streams: usize,
    conn_threads: usize,
) -> anyhow::Result<Row> {
    let tag = match balancer {
        Balancer::Nftables => "n",
        Balancer::Engine(Driver::AfPacket) => "e",
        Balancer::Engine(Driver::AfXdp) => "a",
    };
    let (lab, [c0, b0, b1, s0]) = lb_lab(tag)?;
    let b_ns = b0.netns.clone();
    let dir = &opts.workdir;
    // The engine (declared after the lab so it stops before the lab goes).
    let mut eng: Option<(EngineProcess, std::path::PathBuf)> = None;
    match balancer {
        Balancer::Nftables => {
            lab.sysctl(&b_ns, "net.ipv4.ip_forward", "1")?;
            for (end, addr) in [(&b0, LB_CLIENT_SIDE), (&b1, LB_SERVER_SIDE)] {
                lab.ip(
                    &b_ns,
                    &["addr", "add", &format!("{addr}/24"), "dev", &end.iface],
                )?;
            }
            let file = dir.join("lb-veth.nft");
            std::fs::write(&file, nft_ruleset())?;
            crate::netns::run(
                "ip",
                &[
                    "netns",
                    "exec",
                    &b_ns,
                    "nft",
                    "-f",
                    file.to_str().context("workdir path")?,
                ],
            )?;
        }
        Balancer::Engine(driver) => {
            let bin = engine::locate(opts.engine.as_deref())?;
            // The engine owns B's veth ends: no kernel address, no IPv6.
            for end in [&b0, &b1] {
                lab.sysctl(
                    &b_ns,
                    &format!("net.ipv6.conf.{}.disable_ipv6", end.iface),
                    "1",
                )?;
            }
            let config = dir.join("lb-veth-engine.toml");
            std::fs::write(&config, engine_config(opts, &b0, &b1, driver))?;
            engine::check_config(&bin, &config)?;
            let stats = dir.join("lb-veth-stats.json");
            let _ = std::fs::remove_file(&stats);
            let mut e = EngineProcess::spawn(
                &bin,
                &config,
                &stats,
                Some(&b_ns),
                opts.nice,
                &dir.join("lb-veth-engine.log"),
            )?;
            sleep_checked(Duration::from_millis(500))?;
            if let Some(info) = e.exited()? {
                bail!(
                    "engine exited at start-up (code {:?}): {}",
                    info.code,
                    info.output.trim()
                );
            }
            eng = Some((e, stats));
        }
    }

    let snapshot = |eng: &Option<(EngineProcess, std::path::PathBuf)>| -> anyhow::Result<_> {
        Ok(match eng {
            Some((e, stats)) => Some((e.snapshot(stats)?, sysstat::process_cpu_ns(e.pid())?)),
            None => None,
        })
    };
    let mut row = Row {
        system: balancer.system(test),
        ..Row::default()
    };
    let (engine_before, engine_after, cpu, frames, wall, work) = match test {
        Test::Stream => {
            let _server = ChildGuard(
                Command::new("ip")
                    .args([
                        "netns",
                        "exec",
                        &s0.netns,
                        "iperf3",
                        "-s",
                        "-p",
                        &IPERF_PORT.to_string(),
                    ])
                    .stdin(Stdio::null())
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .spawn()
                    .context("starting iperf3 -s")?,
            );
            sleep_checked(Duration::from_millis(500))?;
            let before = snapshot(&eng)?;
            let cpu0 = ProcStat::read()?;
            let frames0 = sysstat::if_counters(&s0.netns, &s0.iface)?.rx_packets;
            let t0 = Instant::now();
            let out = iperf3_client(
                opts,
                &c0.netns,
                VIP,
                &IPERF_PORT.to_string(),
                Traffic::Tcp,
                streams,
            )?;
            let wall = t0.elapsed().as_secs_f64();
            let frames = sysstat::if_counters(&s0.netns, &s0.iface)?.rx_packets - frames0;
            let cpu = ProcStat::read()?.delta(&cpu0);
            let after = snapshot(&eng)?;
            row.bps = Some(received_bps(&out, Traffic::Tcp)?);
            row.pps = Some(frames as f64 / wall);
            row.packets = Some(frames);
            row.window_secs = Some(wall);
            (before, after, cpu, frames, wall, frames)
        }
        Test::Conn => {
            let server = conn_rate::Server::start(&s0.netns, CONN_PORT, SERVER_THREADS)?;
            let target = SocketAddr::new(VIP.parse::<IpAddr>()?, CONN_PORT);
            let clients = conn_rate::Clients::start(&c0.netns, target, conn_threads);
            sleep_checked(opts.warmup)?;
            let before = snapshot(&eng)?;
            let served0 = server.served();
            let cpu0 = ProcStat::read()?;
            let frames0 = sysstat::if_counters(&s0.netns, &s0.iface)?.rx_packets;
            let (done0, failed0) = clients.counts();
            let t0 = Instant::now();
            sleep_checked(opts.duration)?;
            let (done1, failed1) = clients.counts();
            let wall = t0.elapsed().as_secs_f64();
            let frames = sysstat::if_counters(&s0.netns, &s0.iface)?.rx_packets - frames0;
            let cpu = ProcStat::read()?.delta(&cpu0);
            let after = snapshot(&eng)?;
            drop(clients);
            let served = server.served();
            drop(server);
            let done = done1 - done0;
            let failed = failed1 - failed0;
            if done == 0 {
                bail!("no connection completed through the balancer ({failed} failed)");
            }
            row.connections_per_sec = Some(done as f64 / wall);
            row.pps = Some(frames as f64 / wall);
            row.packets = Some(frames);
            row.window_secs = Some(wall);
            row.notes.push(format!(
                "{done} connections completed, {failed} failed in {wall:.2} s; per backend (served in \
                 the window): {}",
                spread(&served0, &served)
            ));
            (before, after, cpu, frames, wall, done)
        }
    };

    let busy = |c: usize| {
        cpu.cores.get(c).map_or(0.0, |t| {
            let all = t.busy() + t.idle + t.steal;
            if all == 0 {
                0.0
            } else {
                100.0 * t.busy() as f64 / all as f64
            }
        })
    };
    let per = match test {
        Test::Stream => "packet",
        Test::Conn => "connection",
    };
    row.notes.push(format!(
        "core busy over the window: core 0 {:.0}%, core 1 {:.0}%; {frames} frames at the servers' veth",
        busy(0),
        busy(1)
    ));
    row.limited_by = match balancer {
        Balancer::Nftables => {
            "endpoints and the kernel's balancing share both cores (softirq of the sender)".into()
        }
        Balancer::Engine(_) => "see notes: engine poll counters".into(),
    };
    if let (Some((a, ca)), Some((b, cb))) = (&engine_before, &engine_after) {
        let busy_polls = b.busy_polls.saturating_sub(a.busy_polls);
        let idle_polls = b.idle_polls.saturating_sub(a.idle_polls);
        let share = busy_polls as f64 / (busy_polls + idle_polls).max(1) as f64;
        let engine_cpu = cb.saturating_sub(*ca) as f64;
        // cpu_ns_per_packet holds CPU per connection on conn rows (noted).
        row.cpu_ns_per_packet = Some(engine_cpu / work.max(1) as f64);
        let other = if opts.router_core == 0 { 1 } else { 0 };
        row.limited_by = if share > 0.9 {
            format!(
                "engine: {:.0}% of its polls found packets (its core is the limit)",
                share * 100.0
            )
        } else {
            format!(
                "the other core ({:.0}% busy: clients, servers, the kernel's TCP and veth delivery to \
                 and from the engine's sockets); the engine had spare polls (only {:.1}% found packets)",
                busy(other),
                share * 100.0,
            )
        };
        row.notes.push(format!(
            "engine over the window: {busy_polls} non-empty / {idle_polls} empty polls, {:.0}% of a core, \
             {:.0} ns of engine CPU per {per}; drops {}",
            engine_cpu / 1e7 / wall,
            engine_cpu / work.max(1) as f64,
            b.drops_summary()
        ));
        row.notes.push(format!("lb counters: {}", lb_delta(a, b)));
    }
    if let Some((e, _)) = eng {
        let info = e.stop()?;
        if !info.success {
            row.notes
                .push(format!("engine exit code {:?} on SIGINT", info.code));
        }
        for line in info.output.lines().filter(|l| l.contains("AF_XDP on")) {
            row.notes.push(format!("engine: {}", line.trim()));
        }
    }
    drop(lab);
    Ok(row)
}

/// "10.2.0.11 25.1%, 10.2.0.12 24.9%, …" of the connections served between
/// two snapshots.
fn spread(before: &BTreeMap<IpAddr, u64>, after: &BTreeMap<IpAddr, u64>) -> String {
    let delta: Vec<(IpAddr, u64)> = after
        .iter()
        .map(|(a, n)| (*a, n - before.get(a).copied().unwrap_or(0)))
        .collect();
    let total: u64 = delta.iter().map(|(_, n)| n).sum();
    if total == 0 {
        return "none".into();
    }
    delta
        .iter()
        .map(|(a, n)| format!("{a} {n} ({:.1}%)", 100.0 * *n as f64 / total as f64))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The engine's lb counters that moved between two snapshots.
fn lb_delta(a: &EngineStats, b: &EngineStats) -> String {
    let moved: Vec<String> =
        b.lb.iter()
            .map(|(k, v)| {
                let was = a.lb.iter().find(|(n, _)| n == k).map_or(0, |(_, x)| *x);
                // Gauges (flows_active) can fall: show the value, not a delta.
                if k == "flows_active" {
                    format!("{k}={v}")
                } else {
                    format!("{k}=+{}", v.saturating_sub(was))
                }
            })
            .collect();
    if moved.is_empty() {
        "none (no \"lb\" object in the stats)".into()
    } else {
        moved.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nft_ruleset_maps_every_backend() {
        let r = nft_ruleset();
        assert!(r.contains("type nat hook prerouting priority dstnat"));
        assert!(r.contains(&format!("jhash ip saddr . tcp sport mod {BACKENDS}")));
        for i in 0..BACKENDS {
            assert!(r.contains(&format!("{i} : {}", backend(i))), "{r}");
        }
    }

    #[test]
    fn engine_config_has_both_vips_over_the_backends() {
        let opts = Options {
            duration: Duration::from_secs(1),
            warmup: Duration::ZERO,
            engine: None,
            gen_core: 0,
            router_core: 1,
            nice: 0,
            rps: false,
            rounds: 1,
            workdir: std::env::temp_dir(),
        };
        let b0 = End::new("ns", "b0", [0, 1]);
        let b1 = End::new("ns", "b1", [0, 2]);
        for driver in [Driver::AfPacket, Driver::AfXdp] {
            let v: toml::Value = toml::from_str(&engine_config(&opts, &b0, &b1, driver)).unwrap();
            let vips = v["lb"]["vip"].as_array().unwrap();
            assert_eq!(vips.len(), 2);
            for (vip, port) in vips.iter().zip([IPERF_PORT, CONN_PORT]) {
                assert_eq!(vip["address"].as_str(), Some(VIP));
                assert_eq!(vip["port"].as_integer(), Some(i64::from(port)));
                assert_eq!(vip["mode"].as_str(), Some("nat"));
                let backends = vip["backend"].as_array().unwrap();
                assert_eq!(backends.len(), usize::from(BACKENDS));
                assert!(backends
                    .iter()
                    .all(|b| b["port"].as_integer() == Some(i64::from(port))));
            }
            assert_eq!(
                v["port"][1]["iface"].as_str(),
                Some(b1.iface.as_str()),
                "wan0 on b1"
            );
            let cfg = patronus_engine::config::EngineConfig::parse(&engine_config(
                &opts, &b0, &b1, driver,
            ))
            .unwrap();
            cfg.lb.as_ref().unwrap().validate().unwrap();
        }
    }

    #[test]
    fn spread_counts_the_window_only() {
        let a: IpAddr = "10.2.0.11".parse().unwrap();
        let b: IpAddr = "10.2.0.12".parse().unwrap();
        let before = BTreeMap::from([(a, 10)]);
        let after = BTreeMap::from([(a, 13), (b, 1)]);
        assert_eq!(
            spread(&before, &after),
            "10.2.0.11 3 (75.0%), 10.2.0.12 1 (25.0%)"
        );
        assert_eq!(spread(&after, &after), "none");
    }
}
