//! `route-push`: time from the control API's 200 answer to the first packet
//! forwarded on the new path. gen — R (engine attached to the control
//! process) — sinks A and B; a paced UDP stream to 10.9.0.1 while the route
//! for 10.9.0.0/24 flips between via A and via B through the REST API.
//! Rows: a table of one route; with as many extra routes as one PUT of the
//! whole set can carry; with `--routes` extra routes loaded through the bulk
//! endpoint (`POST /api/v1/routes/bulk`, 100 000 per request).

use std::net::Ipv4Addr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

use super::Options;
use crate::control::{realtime_ns, Api, ControlProcess};
use crate::engine::{self, EngineProcess};
use crate::generator::{build_frame, GenConfig};
use crate::netns::{self, sleep_checked, End, Lab};
use crate::report::{Report, Row};

const FRAME_LEN: usize = 64;
const DST: Ipv4Addr = Ipv4Addr::new(10, 9, 0, 1);
const FLIP_PREFIX: &str = "10.9.0.0/24";
const SINK_A: &str = "10.2.0.2";
const SINK_B: &str = "10.3.0.2";
/// Packets per second of the probe stream (one every 50 µs).
const RATE_PPS: u64 = 20_000;
/// Wait after each flip so no packet of the previous path is still queued.
const SETTLE: Duration = Duration::from_millis(20);
/// A flip whose first packet did not show up within this is counted lost.
const FLIP_TIMEOUT: Duration = Duration::from_secs(5);
/// The control API's request body limit (control/src/api/mod.rs).
const API_BODY_LIMIT: usize = 1 << 20;
/// Extra routes: /24s from 16.0.0.0 on (16.0.0.0/4 holds 2^20 of them).
const FILLER_BASE: u32 = 16 << 24;

/// The target from issue 3.
const TARGET_P99_MS: f64 = 10.0;

/// What this scenario adds to the shared [`Options`].
#[derive(Clone, Copy, Debug)]
struct Params {
    /// Route changes per row.
    flips: usize,
    /// Extra routes of the large-table row (at most 2^20).
    routes: usize,
}

pub fn run(opts: &Options, flips: usize, routes: usize) -> anyhow::Result<Report> {
    let p = Params {
        flips,
        routes: routes.min(1 << 20),
    };
    let mut report = Report::new("route-push");
    let bins = Bins::locate(opts)?;
    let cases = [Case::Api(0), Case::ApiMax, Case::Bulk(p.routes)];
    for case in cases {
        let row = match run_case(opts, p, &bins, case) {
            Ok(r) => r,
            Err(e) if netns::stop_requested() => return Err(e),
            Err(e) => Row::not_run(&case.name(), FRAME_LEN, format!("{e:#}")),
        };
        report.rows.push(row);
    }
    report.notes.push(format!(
        "latency = kernel receive timestamp (SO_TIMESTAMPNS, CLOCK_REALTIME) of the first probe packet on the new \
         sink's veth (AF_PACKET socket in the sink namespace) - CLOCK_REALTIME when the HTTP 200 headers of the \
         PUT /api/v1/routes/ID were read; negative = the packet came before the answer. Probe stream: {FRAME_LEN} B \
         UDP to {DST} scheduled at {RATE_PPS} pps (sleep-paced sends from one thread; gap p50/p99 in each row bounds the detection resolution). \
         {} flips per row, alternating A/B, {} ms settle between flips; static neighbors for both sinks (no ARP).",
        p.flips,
        SETTLE.as_millis()
    ));
    report.notes.push(format!(
        "target (issue 3): p99 < {TARGET_P99_MS} ms for a single route change; no kernel baseline with the same API"
    ));
    Ok(report)
}

#[derive(Clone, Copy, Debug)]
enum Case {
    /// Extra routes loaded through the API (one PUT).
    Api(usize),
    /// As many extra routes as fit one API request body.
    ApiMax,
    /// Extra routes loaded through the bulk endpoint.
    Bulk(usize),
}

impl Case {
    fn name(&self) -> String {
        match self {
            Case::Api(0) => "patronus-1-route".into(),
            Case::Api(n) => format!("patronus+{n}-api"),
            Case::ApiMax => "patronus+max-api".into(),
            Case::Bulk(n) => format!("patronus+{n}-bulk"),
        }
    }
}

struct Bins {
    engine: PathBuf,
    control: PathBuf,
}

impl Bins {
    fn locate(opts: &Options) -> anyhow::Result<Bins> {
        let engine = engine::locate(opts.engine.as_deref())?;
        let control = engine.with_file_name("patronus-control");
        if !control.exists() {
            bail!(
                "{} is missing: run `cargo build --release`",
                control.display()
            );
        }
        Ok(Bins { engine, control })
    }
}

/// The lab of one row: namespaces, veth ends.
struct Topo {
    _lab: Lab,
    gen: End,
    r_lan: End,
    r_a: End,
    sink_a: End,
    r_b: End,
    sink_b: End,
}

fn build_topo(tag: &str) -> anyhow::Result<Topo> {
    let mut lab = Lab::new(tag);
    let gen_ns = lab.add_netns("gen")?;
    let r_ns = lab.add_netns("r")?;
    let a_ns = lab.add_netns("a")?;
    let b_ns = lab.add_netns("b")?;
    let gen = End::new(&gen_ns, "g", [1, 1]);
    let r_lan = End::new(&r_ns, "rl", [1, 2]);
    let r_a = End::new(&r_ns, "ra", [2, 1]);
    let sink_a = End::new(&a_ns, "sa", [2, 2]);
    let r_b = End::new(&r_ns, "rb", [3, 1]);
    let sink_b = End::new(&b_ns, "sb", [3, 2]);
    lab.veth(&gen, &r_lan)?;
    lab.veth(&r_a, &sink_a)?;
    lab.veth(&r_b, &sink_b)?;
    lab.ip(&gen_ns, &["addr", "add", "10.1.0.10/24", "dev", &gen.iface])?;
    lab.ip(&a_ns, &["addr", "add", "10.2.0.2/24", "dev", &sink_a.iface])?;
    lab.ip(&b_ns, &["addr", "add", "10.3.0.2/24", "dev", &sink_b.iface])?;
    Ok(Topo {
        _lab: lab,
        gen,
        r_lan,
        r_a,
        sink_a,
        r_b,
        sink_b,
    })
}

fn engine_config(opts: &Options, t: &Topo, runtime: &Path) -> String {
    format!(
        r#"[engine]
workers = 1
poll = "adaptive"
cores = [{core}]

[control]
runtime_dir = "{runtime}"

[[port]]
name = "lan0"
driver = "afpacket"
iface = "{lan}"
[[port]]
name = "wanA"
driver = "afpacket"
iface = "{wa}"
[[port]]
name = "wanB"
driver = "afpacket"
iface = "{wb}"

[[interface]]
port = "lan0"
address = "10.1.0.1/24"
[[interface]]
port = "wanA"
address = "10.2.0.1/24"
[[interface]]
port = "wanB"
address = "10.3.0.1/24"

[[neighbor]]
port = "wanA"
address = "{SINK_A}"
mac = "{ma}"
[[neighbor]]
port = "wanB"
address = "{SINK_B}"
mac = "{mb}"
[[neighbor]]
port = "lan0"
address = "10.1.0.10"
mac = "{mg}"
"#,
        core = opts.router_core,
        runtime = runtime.display(),
        lan = t.r_lan.iface,
        wa = t.r_a.iface,
        wb = t.r_b.iface,
        ma = t.sink_a.mac,
        mb = t.sink_b.mac,
        mg = t.gen.mac,
    )
}

/// Routes per bulk request.
const BULK_CHUNK: usize = 100_000;

/// `{"add":[...]}` with filler routes `from..to` via A.
fn bulk_add(from: usize, to: usize) -> String {
    let mut s = String::with_capacity(64 * (to - from) + 16);
    s.push_str(r#"{"add":["#);
    for i in from..to {
        if i > from {
            s.push(',');
        }
        s.push_str(&format!(
            r#"{{"prefix":"{}","next_hops":[{{"via":"{SINK_A}"}}]}}"#,
            filler(i)
        ));
    }
    s.push_str("]}");
    s
}

fn filler(i: usize) -> String {
    format!("{}/24", Ipv4Addr::from(FILLER_BASE + ((i as u32) << 8)))
}

fn run_case(opts: &Options, p: Params, bins: &Bins, case: Case) -> anyhow::Result<Row> {
    let name = case.name();
    let tag = match case {
        Case::Api(_) => "p1",
        Case::ApiMax => "pa",
        Case::Bulk(_) => "pb",
    };
    let dir = opts.workdir.join(tag);
    std::fs::create_dir_all(&dir)?;
    let runtime = dir.join("shm");
    let topo = build_topo(tag)?;
    let mut row = Row {
        system: name,
        packet_size: FRAME_LEN,
        limited_by: "-".into(),
        ..Row::default()
    };

    // Receivers and the probe stream first, so the engine's start is timed.
    let stop = Arc::new(AtomicBool::new(false));
    let _stopper = StopOnDrop(stop.clone());
    let a = Sink::start(&topo.sink_a, stop.clone())?;
    let b = Sink::start(&topo.sink_b, stop.clone())?;
    let sender = Sender::start(opts, &topo, stop.clone())?;

    let port = 20000 + ((std::process::id() as u16).wrapping_mul(7) % 20000);
    let mut control = ControlProcess::start(&bins.control, &dir, &runtime, port)?;
    let mut api = Api::connect(port, &control.token)?;
    api.call_ok(
        "POST",
        "/api/v1/interfaces",
        r#"{"port":"wanA","address":"10.2.0.1/24"}"#,
    )?;
    api.call_ok(
        "POST",
        "/api/v1/interfaces",
        r#"{"port":"wanB","address":"10.3.0.1/24"}"#,
    )?;

    // Extra routes and the flipped route.
    let api_routes = match case {
        Case::Api(n) => n,
        Case::ApiMax => max_routes_per_request(),
        Case::Bulk(_) => 0,
    };
    if let Case::Bulk(n) = case {
        let t0 = Instant::now();
        let mut bytes = 0;
        for start in (0..n).step_by(BULK_CHUNK) {
            let body = bulk_add(start, (start + BULK_CHUNK).min(n));
            bytes += body.len();
            let (status, resp, _) = api.call("POST", "/api/v1/routes/bulk", &body)?;
            if status != 200 {
                bail!("bulk load of routes {start}..: {status} {resp}");
            }
        }
        row.notes.push(format!(
            "{n} extra routes loaded through POST /api/v1/routes/bulk ({} requests, {} MiB) in {:.2} s",
            n.div_ceil(BULK_CHUNK),
            bytes >> 20,
            t0.elapsed().as_secs_f64()
        ));
    }
    if let Case::ApiMax = case {
        row.notes
            .push(oversize_put(port, &control.token, api_routes + 1));
    }
    let route_id = if api_routes > 0 {
        let body = route_set(api_routes);
        let t0 = Instant::now();
        let (status, resp, _) = api.call("PUT", "/api/v1/routes", &body)?;
        if status != 200 {
            bail!("PUT of {api_routes} routes: {status} {resp}");
        }
        row.notes.push(format!(
            "{api_routes} extra routes loaded with one PUT /api/v1/routes ({} KiB body) in {:.3} s",
            body.len() / 1024,
            t0.elapsed().as_secs_f64()
        ));
        find_route_id(&resp)?
    } else {
        let body = format!(r#"{{"prefix":"{FLIP_PREFIX}","next_hops":[{{"via":"{SINK_A}"}}]}}"#);
        let (status, resp, _) = api.call("POST", "/api/v1/routes", &body)?;
        if status != 201 {
            bail!("POST route: {status} {resp}");
        }
        json_id(&resp)?
    };

    let bulk_routes = match case {
        Case::Bulk(n) => n,
        _ => 0,
    };
    let config = dir.join("engine.toml");
    std::fs::write(&config, engine_config(opts, &topo, &runtime))?;
    engine::check_config(&bins.engine, &config)?;
    let stats = dir.join("stats.json");
    let t_start = Instant::now();
    let mut eng = EngineProcess::spawn(
        &bins.engine,
        &config,
        &stats,
        Some(&topo.r_lan.netns),
        opts.nice,
        &dir.join("engine.log"),
    )?;
    // Ready when the stream reaches sink A over the pushed route.
    while a.packets() == 0 {
        if let Some(info) = eng.exited()? {
            bail!("engine exited: {}", info.output.trim());
        }
        if t_start.elapsed() > Duration::from_secs(600) {
            bail!("no packet reached sink A within 600 s of the engine's start");
        }
        sleep_checked(Duration::from_millis(2))?;
    }
    let ready_secs = t_start.elapsed().as_secs_f64();
    if bulk_routes > 0 {
        row.notes.push(format!(
            "engine start to first packet forwarded with {bulk_routes} pushed routes (attached, full generation \
             loaded, FIB built whole) {ready_secs:.2} s; each flip after that is a delta generation applied in place"
        ));
    }
    sleep_checked(Duration::from_millis(200))?;

    let res = flips(p.flips, &mut api, route_id, &a, &b, &mut control)?;
    let gaps = sender.stop()?;
    stop.store(true, Ordering::Relaxed);
    let info = eng.stop()?;
    let rc = control.stop();
    if !info.success {
        row.notes.push(format!(
            "engine exit {:?}: {}",
            info.code,
            info.output.trim()
        ));
    }
    if let Some(e) = rc {
        row.notes.push(e);
    }
    // What the engine itself says it did with the generations.
    let log = std::fs::read_to_string(dir.join("engine.log")).unwrap_or_default();
    let whole: Vec<&str> = log.lines().filter(|l| l.contains("built whole")).collect();
    let deltas: Vec<f64> = log
        .lines()
        .filter(|l| l.contains("route changes applied"))
        .filter_map(|l| l.rsplit(", in ").next()?.strip_suffix(" ms")?.parse().ok())
        .collect();
    if let Some(first) = whole.first() {
        row.notes.push(format!(
            "engine log: {} whole builds (first: {}); {} delta generations applied, link-thread time p50 {:.3} ms, max {:.3} ms",
            whole.len(),
            first.trim_start_matches("patronus-engine: "),
            deltas.len(),
            percentile(&deltas, 50.0),
            deltas.iter().copied().fold(0.0, f64::max)
        ));
    }
    res.fill(&mut row, &gaps);
    row.limited_by = if res.lost == 0 && !res.lat_us.is_empty() {
        let p99 = percentile(&res.lat_us, 99.0) / 1000.0;
        if p99 < TARGET_P99_MS {
            format!("p99 {p99:.2} ms: target < {TARGET_P99_MS} ms met")
        } else {
            format!("p99 {p99:.2} ms: target < {TARGET_P99_MS} ms NOT met")
        }
    } else {
        format!("{} flips never reached the new path", res.lost)
    };
    Ok(row)
}

/// Sets the stop flag when the row ends early (an error), so threads exit.
struct StopOnDrop(Arc<AtomicBool>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// How many filler routes fit one request body (with the flipped route).
fn max_routes_per_request() -> usize {
    // Find the largest n whose body fits, by doubling then bisection.
    let fits = |n: usize| route_set(n).len() <= API_BODY_LIMIT;
    let (mut lo, mut hi) = (0usize, 1usize);
    while fits(hi) {
        lo = hi;
        hi *= 2;
    }
    while hi - lo > 1 {
        let mid = (lo + hi) / 2;
        if fits(mid) {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    lo
}

/// What the API says to a route set one route larger than fits a request
/// (on its own connection: the server may close it).
fn oversize_put(port: u16, token: &str, n: usize) -> String {
    let body = route_set(n);
    let answer =
        Api::connect(port, token).and_then(|mut api| api.call("PUT", "/api/v1/routes", &body));
    match answer {
        Ok((status, resp, _)) => format!(
            "a PUT /api/v1/routes of {n} routes ({} B body) is answered {status} {}",
            body.len(),
            resp.chars().take(120).collect::<String>()
        ),
        Err(e) => format!(
            "a PUT /api/v1/routes of {n} routes ({} B body) failed: {e:#}",
            body.len()
        ),
    }
}

/// `{"routes":[...]}` with `n` filler routes via A plus the flipped route.
fn route_set(n: usize) -> String {
    let mut s = String::with_capacity(64 * (n + 1) + 16);
    s.push_str(r#"{"routes":["#);
    for i in 0..n {
        s.push_str(&format!(
            r#"{{"prefix":"{}","next_hops":[{{"via":"{SINK_A}"}}]}},"#,
            filler(i)
        ));
    }
    s.push_str(&format!(
        r#"{{"prefix":"{FLIP_PREFIX}","next_hops":[{{"via":"{SINK_A}"}}]}}]}}"#
    ));
    s
}

fn json_id(text: &str) -> anyhow::Result<i64> {
    let v: serde_json::Value = serde_json::from_str(text).context("route JSON")?;
    v.get("id")
        .and_then(|x| x.as_i64())
        .with_context(|| format!("no id in {text}"))
}

/// The id of the flipped route in a route list answer.
fn find_route_id(text: &str) -> anyhow::Result<i64> {
    let v: serde_json::Value = serde_json::from_str(text).context("route list JSON")?;
    let items = v
        .get("items")
        .and_then(|x| x.as_array())
        .context("no items in the PUT answer")?;
    for it in items {
        let p = it.get("prefix").map(|p| match p {
            serde_json::Value::String(s) => s.clone(),
            other => other.to_string(),
        });
        if p.as_deref() == Some(FLIP_PREFIX) {
            return it
                .get("id")
                .and_then(|x| x.as_i64())
                .context("route without id");
        }
    }
    bail!("{FLIP_PREFIX} not in the PUT answer")
}

/// What the flips of one row measured.
#[derive(Debug, Default)]
struct FlipResults {
    /// First packet on the new path minus the 200, µs (may be negative).
    lat_us: Vec<f64>,
    /// Request sent to 200 headers read, µs.
    http_us: Vec<f64>,
    lost: usize,
    /// First packet on the new path arrived before the request was sent
    /// (would mean a stray packet: the measurement is then wrong).
    early: usize,
}

impl FlipResults {
    fn fill(&self, row: &mut Row, gaps: &Gaps) {
        if self.lat_us.is_empty() {
            return;
        }
        let ms = |v: &[f64], p: f64| percentile(v, p) / 1000.0;
        row.notes.push(format!(
            "200 -> first packet on new path: p50 {:.3} ms, p99 {:.3} ms, max {:.3} ms, min {:.3} ms over {} flips \
             ({} lost, {} early)",
            ms(&self.lat_us, 50.0),
            ms(&self.lat_us, 99.0),
            ms(&self.lat_us, 100.0),
            ms(&self.lat_us, 0.0),
            self.lat_us.len(),
            self.lost,
            self.early
        ));
        row.notes.push(format!(
            "request sent -> 200: p50 {:.3} ms, p99 {:.3} ms, max {:.3} ms",
            ms(&self.http_us, 50.0),
            ms(&self.http_us, 99.0),
            ms(&self.http_us, 100.0)
        ));
        row.notes.push(format!(
            "probe send gaps: p50 {:.0} µs, p99 {:.0} µs, max {:.0} µs ({} packets sent)",
            gaps.p50_us, gaps.p99_us, gaps.max_us, gaps.sent
        ));
    }
}

/// Nearest-rank percentile of unsorted values (p in 0..=100).
fn percentile(v: &[f64], p: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    let mut s = v.to_vec();
    s.sort_by(|a, b| a.total_cmp(b));
    let rank = ((p / 100.0) * s.len() as f64).ceil() as usize;
    s[rank.clamp(1, s.len()) - 1]
}

fn flips(
    count: usize,
    api: &mut Api,
    id: i64,
    a: &Sink,
    b: &Sink,
    control: &mut ControlProcess,
) -> anyhow::Result<FlipResults> {
    let mut res = FlipResults::default();
    let path = format!("/api/v1/routes/{id}");
    for i in 0..count {
        if netns::stop_requested() {
            bail!("interrupted");
        }
        if let Some(e) = control.exited() {
            bail!("control exited: {e}");
        }
        let (target, via) = if i % 2 == 0 { (b, SINK_B) } else { (a, SINK_A) };
        let body = format!(r#"{{"prefix":"{FLIP_PREFIX}","next_hops":[{{"via":"{via}"}}]}}"#);
        target.arm();
        let sent = realtime_ns();
        let (status, resp, got) = api.call("PUT", &path, &body)?;
        if status != 200 {
            bail!("flip {i}: PUT {path}: {status} {resp}");
        }
        let deadline = Instant::now() + FLIP_TIMEOUT;
        let first = loop {
            if let Some(t) = target.first() {
                break Some(t);
            }
            if Instant::now() > deadline {
                break None;
            }
            std::thread::sleep(Duration::from_micros(200));
        };
        target.disarm();
        match first {
            Some(t) => {
                if t < sent {
                    res.early += 1;
                }
                res.lat_us.push((t as i64 - got as i64) as f64 / 1000.0);
                res.http_us.push((got as i64 - sent as i64) as f64 / 1000.0);
            }
            None => res.lost += 1,
        }
        sleep_checked(SETTLE)?;
    }
    Ok(res)
}

/// An AF_PACKET socket on `iface` in the calling thread's namespace.
fn packet_socket(iface: &str) -> anyhow::Result<OwnedFd> {
    let proto = (libc::ETH_P_ALL as u16).to_be();
    // SAFETY: plain socket(2) call.
    let fd = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW, i32::from(proto)) };
    if fd < 0 {
        bail!("socket(AF_PACKET): {}", std::io::Error::last_os_error());
    }
    // SAFETY: fd is a fresh socket we own.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    let name = std::ffi::CString::new(iface)?;
    // SAFETY: valid NUL-terminated name.
    let ifindex = unsafe { libc::if_nametoindex(name.as_ptr()) };
    if ifindex == 0 {
        bail!("no interface {iface}");
    }
    // SAFETY: sockaddr_ll is plain data.
    let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    sll.sll_family = libc::AF_PACKET as u16;
    sll.sll_protocol = proto;
    sll.sll_ifindex = ifindex as i32;
    // SAFETY: binds our socket to a valid sockaddr_ll of the given size.
    let rc = unsafe {
        libc::bind(
            fd.as_raw_fd(),
            &sll as *const libc::sockaddr_ll as *const libc::sockaddr,
            std::mem::size_of::<libc::sockaddr_ll>() as u32,
        )
    };
    if rc != 0 {
        bail!("bind({iface}): {}", std::io::Error::last_os_error());
    }
    Ok(fd)
}

fn setsockopt<T>(fd: &OwnedFd, level: i32, name: i32, val: &T) -> anyhow::Result<()> {
    // SAFETY: val points to a live T of the given size.
    let rc = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            level,
            name,
            val as *const T as *const libc::c_void,
            std::mem::size_of::<T>() as u32,
        )
    };
    if rc != 0 {
        bail!("setsockopt({name}): {}", std::io::Error::last_os_error());
    }
    Ok(())
}

/// Shared state of one sink's receiver thread.
#[derive(Default)]
struct SinkState {
    packets: AtomicU64,
    /// 0 = armed (waiting for the first probe); u64::MAX = disarmed; else
    /// the kernel receive timestamp (CLOCK_REALTIME ns) of the first probe.
    first_ns: AtomicU64,
}

struct Sink {
    state: Arc<SinkState>,
    thread: Option<JoinHandle<anyhow::Result<()>>>,
}

impl Sink {
    fn start(end: &End, stop: Arc<AtomicBool>) -> anyhow::Result<Sink> {
        let state = Arc::new(SinkState::default());
        state.first_ns.store(u64::MAX, Ordering::Relaxed);
        let (ns, iface, st) = (end.netns.clone(), end.iface.clone(), state.clone());
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let thread = std::thread::Builder::new().name("sink".into()).spawn(
            move || -> anyhow::Result<()> {
                let fd = (|| {
                    netns::enter(&ns)?;
                    let fd = packet_socket(&iface)?;
                    setsockopt(&fd, libc::SOL_SOCKET, libc::SO_TIMESTAMPNS, &1i32)?;
                    let tv = libc::timeval {
                        tv_sec: 0,
                        tv_usec: 50_000,
                    };
                    setsockopt(&fd, libc::SOL_SOCKET, libc::SO_RCVTIMEO, &tv)?;
                    Ok::<_, anyhow::Error>(fd)
                })();
                let fd = match fd {
                    Ok(fd) => {
                        let _ = ready_tx.send(Ok(()));
                        fd
                    }
                    Err(e) => {
                        let _ = ready_tx.send(Err(format!("{e:#}")));
                        return Err(e);
                    }
                };
                receive_loop(&fd, &st, &stop)
            },
        )?;
        match ready_rx.recv() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => bail!("sink receiver: {e}"),
            Err(_) => bail!("sink receiver died"),
        }
        Ok(Sink {
            state,
            thread: Some(thread),
        })
    }

    fn packets(&self) -> u64 {
        self.state.packets.load(Ordering::Relaxed)
    }
    fn arm(&self) {
        self.state.first_ns.store(0, Ordering::SeqCst);
    }
    fn disarm(&self) {
        self.state.first_ns.store(u64::MAX, Ordering::SeqCst);
    }
    fn first(&self) -> Option<u64> {
        match self.state.first_ns.load(Ordering::SeqCst) {
            0 | u64::MAX => None,
            t => Some(t),
        }
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        // The stop flag is set by the row (StopOnDrop) before this runs.
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn receive_loop(fd: &OwnedFd, st: &SinkState, stop: &AtomicBool) -> anyhow::Result<()> {
    let mut buf = [0u8; 2048];
    let mut cbuf = [0u64; 16];
    while !stop.load(Ordering::Relaxed) {
        let mut iov = libc::iovec {
            iov_base: buf.as_mut_ptr() as *mut libc::c_void,
            iov_len: buf.len(),
        };
        // SAFETY: msghdr is plain data; pointers set below stay valid for the call.
        let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = cbuf.as_mut_ptr() as *mut libc::c_void;
        msg.msg_controllen = std::mem::size_of_val(&cbuf);
        // SAFETY: msg points to valid buffers owned by this frame.
        let n = unsafe { libc::recvmsg(fd.as_raw_fd(), &mut msg, 0) };
        if n < 0 {
            let e = std::io::Error::last_os_error();
            match e.kind() {
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::Interrupted => continue,
                _ => bail!("recvmsg: {e}"),
            }
        }
        let f = &buf[..n as usize];
        // IPv4, UDP, to the probe destination.
        if f.len() < 42 || f[12..14] != [0x08, 0x00] || f[23] != 17 || f[30..34] != DST.octets() {
            continue;
        }
        st.packets.fetch_add(1, Ordering::Relaxed);
        if let Some(ts) = rx_timestamp(&msg) {
            let _ = st
                .first_ns
                .compare_exchange(0, ts, Ordering::SeqCst, Ordering::SeqCst);
        }
    }
    Ok(())
}

/// The SCM_TIMESTAMPNS control message of a received packet, in ns.
fn rx_timestamp(msg: &libc::msghdr) -> Option<u64> {
    // SAFETY: msg was filled by recvmsg; CMSG_* walk its control buffer.
    unsafe {
        let mut c = libc::CMSG_FIRSTHDR(msg);
        while !c.is_null() {
            if (*c).cmsg_level == libc::SOL_SOCKET && (*c).cmsg_type == libc::SCM_TIMESTAMPNS {
                let ts = std::ptr::read_unaligned(libc::CMSG_DATA(c) as *const libc::timespec);
                return Some(ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64);
            }
            c = libc::CMSG_NXTHDR(msg, c);
        }
    }
    None
}

/// Send-gap statistics of the probe stream.
#[derive(Debug, Default)]
struct Gaps {
    p50_us: f64,
    p99_us: f64,
    max_us: f64,
    sent: u64,
}

/// The paced probe sender.
struct Sender {
    thread: Option<JoinHandle<anyhow::Result<Gaps>>>,
    stop: Arc<AtomicBool>,
}

impl Sender {
    fn start(opts: &Options, t: &Topo, stop: Arc<AtomicBool>) -> anyhow::Result<Sender> {
        let cfg = GenConfig {
            netns: Some(t.gen.netns.clone()),
            iface: t.gen.iface.clone(),
            src_mac: t.gen.mac_bytes(),
            dst_mac: t.r_lan.mac_bytes(),
            frame_len: FRAME_LEN,
            flows: 1,
            src_base: Ipv4Addr::new(10, 1, 0, 10),
            dst_base: DST,
            core: Some(opts.gen_core),
            nice: opts.nice,
        };
        let frame = build_frame(&cfg, 0);
        let st = stop.clone();
        let thread = std::thread::Builder::new().name("probe".into()).spawn(
            move || -> anyhow::Result<Gaps> {
                netns::enter(cfg.netns.as_deref().unwrap_or_default())?;
                let fd = packet_socket(&cfg.iface)?;
                paced_send(&fd, &frame, &st)
            },
        )?;
        Ok(Sender {
            thread: Some(thread),
            stop,
        })
    }

    fn stop(mut self) -> anyhow::Result<Gaps> {
        self.stop.store(true, Ordering::Relaxed);
        match self.thread.take().map(|t| t.join()) {
            Some(Ok(r)) => r,
            _ => bail!("probe sender panicked"),
        }
    }
}

impl Drop for Sender {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn paced_send(fd: &OwnedFd, frame: &[u8], stop: &AtomicBool) -> anyhow::Result<Gaps> {
    let start = Instant::now();
    let mut sent = 0u64;
    // Packets the schedule has handed out; after an oversleep at most a
    // burst of 8 catches up, the rest of the backlog is skipped.
    let mut sched = 0u64;
    let mut last = start;
    let mut gaps: Vec<f32> = Vec::with_capacity(1 << 20);
    while !stop.load(Ordering::Relaxed) {
        let due = start.elapsed().as_nanos() as u64 * RATE_PPS / 1_000_000_000;
        if due > sched + 8 {
            sched = due - 8;
        }
        while sched < due {
            // SAFETY: sends our frame buffer on our bound socket.
            let n = unsafe {
                libc::send(
                    fd.as_raw_fd(),
                    frame.as_ptr() as *const libc::c_void,
                    frame.len(),
                    0,
                )
            };
            if n < 0 {
                let e = std::io::Error::last_os_error();
                if e.kind() != std::io::ErrorKind::WouldBlock {
                    bail!("probe send: {e}");
                }
            }
            let now = Instant::now();
            if gaps.len() < gaps.capacity() {
                gaps.push((now - last).as_secs_f32() * 1e6);
            }
            last = now;
            sent += 1;
            sched += 1;
        }
        std::thread::sleep(Duration::from_micros(20));
    }
    let v: Vec<f64> = gaps.iter().map(|g| f64::from(*g)).collect();
    Ok(Gaps {
        p50_us: percentile(&v, 50.0),
        p99_us: percentile(&v, 99.0),
        max_us: percentile(&v, 100.0),
        sent,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let v: Vec<f64> = (1..=100).rev().map(f64::from).collect();
        assert_eq!(percentile(&v, 50.0), 50.0);
        assert_eq!(percentile(&v, 99.0), 99.0);
        assert_eq!(percentile(&v, 100.0), 100.0);
        assert_eq!(percentile(&v, 0.0), 1.0);
        assert!(percentile(&[], 50.0).is_nan());
    }

    #[test]
    fn route_sets_fill_but_do_not_exceed_the_body_limit() {
        let n = max_routes_per_request();
        assert!(route_set(n).len() <= API_BODY_LIMIT);
        assert!(route_set(n + 1).len() > API_BODY_LIMIT);
        let v: serde_json::Value = serde_json::from_str(&route_set(2)).unwrap();
        let routes = v["routes"].as_array().unwrap();
        assert_eq!(routes.len(), 3);
        assert_eq!(routes[1]["prefix"], "16.0.1.0/24");
        assert_eq!(routes[2]["prefix"], FLIP_PREFIX);
    }

    #[test]
    fn finds_the_flipped_route_in_a_list() {
        let list = r#"{"items":[{"id":4,"prefix":"16.0.0.0/24"},{"id":9,"prefix":"10.9.0.0/24"}]}"#;
        assert_eq!(find_route_id(list).unwrap(), 9);
        assert!(find_route_id(r#"{"items":[]}"#).is_err());
    }
}
