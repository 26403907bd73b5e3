//! `wg-veth`: two sites joined by a WireGuard tunnel across a WAN
//! namespace — host A — router A — WAN — router B — host B, veth pairs
//! throughout — and iperf3 (TCP, several streams) from host A to host B
//! through the tunnel. The routers are (a) wireguard-go on both sites (the
//! userspace WireGuard a user would otherwise run here; the kernel has no
//! WireGuard module) and (b) the Patronus engine on both sites (afpacket
//! ports, `[[wireguard]]`), in the same run. Ratio = engine / wireguard-go.

use std::io::Write as _;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

use super::rounds::{median, merge_rounds_by, same_round_ratios_by, Key};
use super::Options;
use crate::engine::{self, EngineProcess};
use crate::netns::{sleep_checked, End, Lab};
use crate::report::{Report, Row};

const HA: &str = "10.10.1.2";
const RA_LAN: &str = "10.10.1.1";
const A_NET: &str = "10.10.1.0/24";
const RA_WAN: &str = "192.0.2.1";
const WAN_A: &str = "192.0.2.254";
const HB: &str = "10.10.2.2";
const RB_LAN: &str = "10.10.2.1";
const B_NET: &str = "10.10.2.0/24";
const RB_WAN: &str = "198.51.100.1";
const WAN_B: &str = "198.51.100.254";
const WG_PORT: u16 = 51820;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Router {
    WireguardGo,
    Engine,
}

impl Router {
    fn system(self) -> &'static str {
        match self {
            Router::WireguardGo => "wireguard-go",
            Router::Engine => "patronus",
        }
    }
}

pub fn run(opts: &Options, streams: usize) -> anyhow::Result<Report> {
    let mut report = Report::new("wg-veth");
    let streams = streams.clamp(1, 128);
    let mut rounds: Vec<Vec<Row>> = Vec::new();
    for _ in 0..opts.rounds.max(1) {
        let mut rows = Vec::new();
        for r in [Router::WireguardGo, Router::Engine] {
            rows.push(match run_one(opts, r, streams) {
                Ok(row) => row,
                Err(e) if crate::netns::stop_requested() => return Err(e),
                Err(e) => Row::not_run(r.system(), 0, format!("{e:#}")),
            });
        }
        rounds.push(rows);
    }
    report.rows = merge_rounds_by(&rounds, &mut report.notes, Key::Bps);
    let mut ratios = same_round_ratios_by(&rounds, "patronus", "wireguard-go", Key::Bps);
    if rounds.len() > 1 {
        report.notes.push(format!(
            "per-round ratios patronus / wireguard-go (bit rate): {}",
            ratios
                .iter()
                .map(|r| format!("{r:.3}"))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    report.ratio = median(&mut ratios);
    report.push_ratio("patronus", "wireguard-go", report.ratio);
    report.notes.push(format!(
        "iperf3 -P {streams} TCP from {HA} (site A's host) to {HB} (site B's host) through the tunnel \
         across a WAN namespace; {}s measured after {}s omitted (-O); veth offloads left on. \
         wireguard-go: one daemon per site on a TUN, configured with `wg set`; patronus: one engine per \
         site, 1 worker, poll = \"adaptive\" (two engines and the endpoints share the 2 cores), \
         afpacket ports, [[wireguard]] with the other site as its peer and a route into the tunnel. \
         Gbit/s = iperf3's received goodput",
        secs(opts.duration),
        secs(opts.warmup)
    ));
    Ok(report)
}

fn secs(d: Duration) -> u64 {
    d.as_secs_f64().round() as u64
}

/// A child process killed (and reaped) on drop, and a file of its removed.
struct ChildGuard(Child, Option<String>);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
        if let Some(f) = &self.1 {
            let _ = std::fs::remove_file(f);
        }
    }
}

/// `wg genkey` / `wg pubkey`: (private, public), base64.
fn keypair() -> anyhow::Result<(String, String)> {
    let private = crate::netns::run("wg", &["genkey"])?.trim().to_string();
    let mut c = Command::new("wg")
        .arg("pubkey")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .context("wg pubkey")?;
    c.stdin
        .take()
        .context("stdin")?
        .write_all(private.as_bytes())?;
    let o = c.wait_with_output()?;
    if !o.status.success() {
        bail!("wg pubkey failed");
    }
    Ok((
        private,
        String::from_utf8_lossy(&o.stdout).trim().to_string(),
    ))
}

/// One site as `run_one` sets it up.
struct Site<'a> {
    ns: &'a str,
    lan: &'a End,
    wan: &'a End,
    lan_addr: &'static str,
    wan_addr: &'static str,
    gw: &'static str,
    remote_net: &'static str,
    peer_endpoint: &'static str,
    key: (String, String),
}

fn run_one(opts: &Options, router: Router, streams: usize) -> anyhow::Result<Row> {
    let tag = match router {
        Router::WireguardGo => "g",
        Router::Engine => "e",
    };
    let mut lab = Lab::new(&format!("w{tag}"));
    let (ha, ra, wan, rb, hb) = (
        lab.add_netns("ha")?,
        lab.add_netns("ra")?,
        lab.add_netns("wan")?,
        lab.add_netns("rb")?,
        lab.add_netns("hb")?,
    );
    let ha0 = End::new(&ha, &format!("{tag}ha"), [6, 1]);
    let ra0 = End::new(&ra, &format!("{tag}ra0"), [6, 2]);
    let ra1 = End::new(&ra, &format!("{tag}ra1"), [7, 1]);
    let wa = End::new(&wan, &format!("{tag}wa"), [7, 2]);
    let wb = End::new(&wan, &format!("{tag}wb"), [8, 1]);
    let rb1 = End::new(&rb, &format!("{tag}rb1"), [8, 2]);
    let rb0 = End::new(&rb, &format!("{tag}rb0"), [9, 1]);
    let hb0 = End::new(&hb, &format!("{tag}hb"), [9, 2]);
    for (a, b) in [(&ha0, &ra0), (&ra1, &wa), (&wb, &rb1), (&rb0, &hb0)] {
        lab.veth(a, b)?;
    }
    for (ns, end, addr, gw) in [(&ha, &ha0, HA, RA_LAN), (&hb, &hb0, HB, RB_LAN)] {
        lab.ip(
            ns,
            &["addr", "add", &format!("{addr}/24"), "dev", &end.iface],
        )?;
        lab.ip(ns, &["route", "add", "default", "via", gw])?;
    }
    lab.ip(
        &wan,
        &["addr", "add", &format!("{WAN_A}/24"), "dev", &wa.iface],
    )?;
    lab.ip(
        &wan,
        &["addr", "add", &format!("{WAN_B}/24"), "dev", &wb.iface],
    )?;
    lab.sysctl(&wan, "net.ipv4.ip_forward", "1")?;
    let (ka, kb) = (keypair()?, keypair()?);
    let sites = [
        Site {
            ns: &ra,
            lan: &ra0,
            wan: &ra1,
            lan_addr: RA_LAN,
            wan_addr: RA_WAN,
            gw: WAN_A,
            remote_net: B_NET,
            peer_endpoint: RB_WAN,
            key: ka.clone(),
        },
        Site {
            ns: &rb,
            lan: &rb0,
            wan: &rb1,
            lan_addr: RB_LAN,
            wan_addr: RB_WAN,
            gw: WAN_B,
            remote_net: A_NET,
            peer_endpoint: RA_WAN,
            key: kb.clone(),
        },
    ];
    let peers = [&kb.1, &ka.1];
    let dir = &opts.workdir;
    // Declared after the lab: they stop before the namespaces go.
    let mut daemons: Vec<ChildGuard> = Vec::new();
    let mut engines: Vec<(EngineProcess, std::path::PathBuf)> = Vec::new();
    for (i, (s, peer)) in sites.iter().zip(peers).enumerate() {
        let keyfile = dir.join(format!("wg-veth-{tag}{i}.key"));
        std::fs::write(&keyfile, format!("{}\n", s.key.0))?;
        match router {
            Router::WireguardGo => {
                let ifname = format!("wgp{}{tag}{i}", std::process::id() % 100_000);
                lab.ip(
                    s.ns,
                    &[
                        "addr",
                        "add",
                        &format!("{}/24", s.lan_addr),
                        "dev",
                        &s.lan.iface,
                    ],
                )?;
                lab.ip(
                    s.ns,
                    &[
                        "addr",
                        "add",
                        &format!("{}/24", s.wan_addr),
                        "dev",
                        &s.wan.iface,
                    ],
                )?;
                lab.ip(s.ns, &["route", "add", "default", "via", s.gw])?;
                lab.sysctl(s.ns, "net.ipv4.ip_forward", "1")?;
                // A socket left by an earlier round's (killed) daemon would
                // answer for this one.
                let sock = format!("/var/run/wireguard/{ifname}.sock");
                let _ = std::fs::remove_file(&sock);
                let d = Command::new("ip")
                    .args(["netns", "exec", s.ns, "wireguard-go", "-f", &ifname])
                    .stdin(Stdio::null())
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .spawn()
                    .context("starting wireguard-go")?;
                daemons.push(ChildGuard(d, Some(sock.clone())));
                let t0 = Instant::now();
                while !std::path::Path::new(&sock).exists() {
                    if t0.elapsed() > Duration::from_secs(5) {
                        bail!("wireguard-go made no {sock}");
                    }
                    sleep_checked(Duration::from_millis(20))?;
                }
                let ep = format!("{}:{WG_PORT}", s.peer_endpoint);
                let port = WG_PORT.to_string();
                crate::netns::run(
                    "ip",
                    &[
                        "netns",
                        "exec",
                        s.ns,
                        "wg",
                        "set",
                        &ifname,
                        "private-key",
                        keyfile.to_str().context("path")?,
                        "listen-port",
                        &port,
                        "peer",
                        peer,
                        "endpoint",
                        &ep,
                        "allowed-ips",
                        s.remote_net,
                    ],
                )?;
                lab.ip(s.ns, &["link", "set", &ifname, "up"])?;
                lab.ip(s.ns, &["route", "add", s.remote_net, "dev", &ifname])?;
            }
            Router::Engine => {
                let bin = engine::locate(opts.engine.as_deref())?;
                let config = dir.join(format!("wg-veth-{tag}{i}.toml"));
                std::fs::write(
                    &config,
                    format!(
                        r#"[engine]
workers = 1
poll = "adaptive"

[[port]]
name = "lan0"
driver = "afpacket"
iface = "{lan}"

[[port]]
name = "wan0"
driver = "afpacket"
iface = "{wan}"

[[interface]]
port = "lan0"
address = "{lan_addr}/24"

[[interface]]
port = "wan0"
address = "{wan_addr}/24"

[[route]]
prefix = "0.0.0.0/0"
via = "{gw}"

[[route]]
prefix = "{remote}"
tunnel = "wg0"

[[wireguard]]
name = "wg0"
private_key_file = "{key}"
listen_port = {WG_PORT}
address = "{wan_addr}"

[[wireguard.peer]]
public_key = "{peer}"
endpoint = "{ep}:{WG_PORT}"
allowed_ips = ["{remote}"]
"#,
                        lan = s.lan.iface,
                        wan = s.wan.iface,
                        lan_addr = s.lan_addr,
                        wan_addr = s.wan_addr,
                        gw = s.gw,
                        remote = s.remote_net,
                        key = keyfile.display(),
                        ep = s.peer_endpoint,
                    ),
                )?;
                engine::check_config(&bin, &config)?;
                let stats = dir.join(format!("wg-veth-{tag}{i}-stats.json"));
                let mut e = EngineProcess::spawn(
                    &bin,
                    &config,
                    &stats,
                    Some(s.ns),
                    opts.nice,
                    &dir.join(format!("wg-veth-{tag}{i}.log")),
                )?;
                sleep_checked(Duration::from_millis(300))?;
                if let Some(info) = e.exited()? {
                    bail!("engine exited at start-up: {}", info.output.trim());
                }
                engines.push((e, stats));
            }
        }
    }
    // The tunnel is up once a ping crosses it (the first one handshakes).
    let t0 = Instant::now();
    loop {
        let ok = Command::new("ip")
            .args(["netns", "exec", &ha, "ping", "-n", "-c", "1", "-W", "1", HB])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()?
            .success();
        if ok {
            break;
        }
        if t0.elapsed() > Duration::from_secs(15) {
            bail!("no ping through the tunnel after 15 s");
        }
    }
    let server = ChildGuard(
        Command::new("ip")
            .args(["netns", "exec", &hb, "iperf3", "-s", "-p", "5201"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("starting iperf3 -s")?,
        None,
    );
    sleep_checked(Duration::from_millis(500))?;
    let (t, omit, p) = (
        secs(opts.duration).max(1).to_string(),
        secs(opts.warmup).to_string(),
        streams.to_string(),
    );
    let t_start = Instant::now();
    let out = Command::new("ip")
        .args([
            "netns", "exec", &ha, "iperf3", "-c", HB, "-p", "5201", "-t", &t, "-O", &omit, "-P",
            &p, "-J",
        ])
        .output()
        .context("iperf3 -c")?;
    let wall = t_start.elapsed().as_secs_f64();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout)
        .with_context(|| format!("iperf3 output: {}", String::from_utf8_lossy(&out.stdout)))?;
    if let Some(e) = v.get("error").and_then(|e| e.as_str()) {
        bail!("iperf3: {e}");
    }
    let bps = v["end"]["sum_received"]["bits_per_second"]
        .as_f64()
        .context("iperf3 report without end.sum_received.bits_per_second")?;
    let mut row = Row {
        system: router.system().into(),
        packet_size: 0,
        bps: Some(bps),
        window_secs: Some(wall),
        limited_by: "two routers, the WAN and both iperf3 ends share the 2 cores".into(),
        ..Row::default()
    };
    let retr = v["end"]["sum_sent"]["retransmits"].as_u64().unwrap_or(0);
    row.notes.push(format!("iperf3 TCP retransmits: {retr}"));
    drop(server);
    for (site, (e, stats)) in ["A", "B"].iter().zip(engines) {
        let info = e.stop()?;
        if !info.success {
            row.notes
                .push(format!("engine exit code {:?} on SIGINT", info.code));
        }
        // What the engine lost, so a fast but lossy run shows.
        if let Ok(st) = engine::EngineStats::read(&stats) {
            let drops: Vec<String> = st
                .drops
                .iter()
                .filter(|(_, v)| *v > 0)
                .map(|(k, v)| format!("{k} {v}"))
                .collect();
            let ports: Vec<String> = st
                .ports
                .iter()
                .map(|p| {
                    format!(
                        "{} rx {} tx {} tx_err {} rx_missed {}",
                        p.name, p.rx_packets, p.tx_packets, p.tx_errors, p.rx_missed
                    )
                })
                .collect();
            row.notes.push(format!(
                "engine {site}: drops {} [{}]; {}",
                st.drops_total,
                drops.join(", "),
                ports.join("; ")
            ));
        }
    }
    drop(daemons);
    drop(lab);
    Ok(row)
}
