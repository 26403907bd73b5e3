//! `bgp-load`: N IPv4 prefixes (default 1 M) sent by a BIRD 2 feeder over
//! eBGP to Patronus (`patronus-control --bgp` with an attached engine) and
//! to BIRD 2 receivers, in the same run: time from session Established to
//! all N selected and to all N installed in a FIB, time from the feeder's
//! withdrawal of everything to none left, and each receiver's memory at
//! convergence.
//!
//! Topology (namespaces named with the pid, removed on drop): `feed` holds
//! the feeder; `pat`, `bird` and `kern` each hold one receiver on its own
//! veth to `feed` (10.0.1.0/24, 10.0.2.0/24, 10.0.3.0/24; feeder .1,
//! receiver .2). Receivers: `patronus` (the control process's speaker;
//! selected = its Loc-RIB, installed = in the generation every engine
//! worker acknowledged), `bird` (BIRD with no kernel protocol: its RIB
//! only, the main baseline) and `bird-kernel` (BIRD exporting every route
//! into its namespace's kernel table: installed = the kernel protocol's
//! exported count, BIRD writes each route by netlink before counting it).
//!
//! Receivers run one after the other, each against a freshly started
//! feeder whose table is fully loaded before the receiver starts (the
//! feeder is passive: the receiver opens the session), so the feeder's
//! config parse and static load are not measured and every receiver gets
//! the same feeder state. Sequential, not simultaneous: on 2 cores three
//! receivers plus the feeder would share the CPU in proportions that
//! depend on the scheduler, not on the receivers; rounds rotate the order
//! so slow drifts of the shared machine's load hit all alike.

mod bird;
mod patronus;
mod table;

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

use super::rounds::median;
use super::Options;
use crate::netns::{self, sleep_checked, End, Lab};
use crate::report::{Report, Row};
use crate::sysstat::process_cpu_ns;
use bird::Bird;
use table::{FeederPeer, PrefixPlan, FEEDER_AS, FEEDER_STATIC, RECEIVER_BGP, RECEIVER_KERNEL};

/// How often receivers are polled.
const POLL: Duration = Duration::from_millis(50);
/// How often the feeder's event loop is woken (see `Bird::keep_awake`).
const FEEDER_WAKE: Duration = Duration::from_millis(10);
/// The feeder's router id (not an address of any link).
const FEEDER_ID: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
/// Engine tbl8 groups when the table needs fewer (the engine's default).
const MIN_TBL8_GROUPS: u32 = 32_768;

/// A receiver under test.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum System {
    Patronus,
    Bird,
    BirdKernel,
}

const SYSTEMS: [System; 3] = [System::Patronus, System::Bird, System::BirdKernel];

impl System {
    fn name(self) -> &'static str {
        match self {
            System::Patronus => "patronus",
            System::Bird => "bird",
            System::BirdKernel => "bird-kernel",
        }
    }
    /// Third octet of its link's /24.
    fn link(self) -> u8 {
        match self {
            System::Patronus => 1,
            System::Bird => 2,
            System::BirdKernel => 3,
        }
    }
    fn short(self) -> &'static str {
        match self {
            System::Patronus => "pat",
            System::Bird => "bird",
            System::BirdKernel => "kern",
        }
    }
    fn local(self) -> Ipv4Addr {
        Ipv4Addr::new(10, 0, self.link(), 2)
    }
    fn feeder_addr(self) -> Ipv4Addr {
        Ipv4Addr::new(10, 0, self.link(), 1)
    }
    fn asn(self) -> u32 {
        match self {
            System::Patronus => 65010,
            System::Bird => 65002,
            System::BirdKernel => 65003,
        }
    }
    fn feeder_protocol(self) -> String {
        format!("to_{}", self.short())
    }
}

/// The binaries of the Patronus receiver, or why it cannot run.
struct Bins {
    engine: PathBuf,
    control: PathBuf,
}

fn locate_bins(opts: &Options) -> anyhow::Result<Bins> {
    let engine = crate::engine::locate(opts.engine.as_deref())?;
    let control = engine.with_file_name("patronus-control");
    if !control.exists() {
        bail!(
            "{} is missing: run `cargo build --release`",
            control.display()
        );
    }
    if !patronus::control_has_bgp(&control)? {
        bail!(
            "{} has no --bgp flag (the speaker is not wired to the control process in this build)",
            control.display()
        );
    }
    Ok(Bins { engine, control })
}

pub fn run(opts: &Options, prefixes: usize) -> anyhow::Result<Report> {
    let plan = PrefixPlan::new();
    if prefixes == 0 || prefixes > plan.capacity() {
        bail!("--prefixes must be 1..={}", plan.capacity());
    }
    let mut report = Report::new("bgp-load");
    let bins = locate_bins(opts);
    let feeder_conf = opts.workdir.join("feeder.conf");
    let peers: Vec<FeederPeer> = SYSTEMS
        .iter()
        .map(|s| FeederPeer {
            protocol: s.feeder_protocol(),
            local: s.feeder_addr(),
            neighbor: s.local(),
            remote_as: s.asn(),
        })
        .collect();
    {
        let f = std::fs::File::create(&feeder_conf)?;
        let mut w = std::io::BufWriter::new(f);
        table::write_feeder_config(&mut w, &plan, prefixes, FEEDER_ID, &peers)?;
        std::io::Write::flush(&mut w)?;
    }
    let topo = build_topo()?;
    let ctx = Ctx {
        opts,
        n: prefixes as u64,
        feeder_conf,
        topo: &topo,
        tbl8_groups: MIN_TBL8_GROUPS.max(PrefixPlan::host_routes(prefixes) as u32 + 1024),
    };

    let rounds = opts.rounds.max(1);
    let mut per_round: Vec<Vec<Row>> = Vec::new();
    for r in 0..rounds {
        let mut order = SYSTEMS.to_vec();
        order.rotate_left(r % SYSTEMS.len());
        let mut rows = Vec::new();
        for sys in order {
            if netns::stop_requested() {
                bail!("interrupted");
            }
            eprintln!("bgp-load: round {} of {rounds}: {}", r + 1, sys.name());
            let row = match (sys, &bins) {
                (System::Patronus, Err(e)) => Row::not_run(sys.name(), 0, format!("{e:#}")),
                _ => match run_one(&ctx, sys, bins.as_ref().ok(), r) {
                    Ok(row) => row,
                    Err(e) if netns::stop_requested() => return Err(e),
                    Err(e) => Row::not_run(sys.name(), 0, format!("{e:#}")),
                },
            };
            rows.push(row);
        }
        // Same order in every round's list, for merging.
        rows.sort_by_key(|row| SYSTEMS.iter().position(|s| s.name() == row.system));
        per_round.push(rows);
    }

    report.rows = merge_rounds(&per_round);
    for (name, sys, sys_key, base, base_key) in RATIOS {
        let mut v: Vec<f64> = per_round
            .iter()
            .filter_map(|rows| {
                let fig = |who: &str, key: &str| {
                    rows.iter()
                        .find(|r| r.system == who)
                        .and_then(|r| r.figures.get(key).copied())
                };
                match (fig(sys, sys_key), fig(base, base_key)) {
                    (Some(a), Some(b)) if b > 0.0 => Some(a / b),
                    _ => None,
                }
            })
            .collect();
        let m = median(&mut v);
        report.push_ratio(
            &format!("{sys} {sys_key}"),
            &format!("{base} {base_key}"),
            m,
        );
        if name == "main" {
            report.ratio = m;
        }
    }
    report.notes.push(format!(
        "{prefixes} IPv4 prefixes ({} /32s, the rest /24s, each in its own /24 block spread over the public unicast \
         space) in a BIRD 2 `protocol static` of blackhole routes, exported by eBGP (next hop = the feeder's link \
         address); every receiver runs alone against a freshly started feeder whose table is loaded before the \
         receiver starts (config parse and static load not measured); order rotated per round",
        PrefixPlan::host_routes(prefixes)
    ));
    report.notes.push(format!(
        "times polled every {} ms (Patronus: GET {} → neighbors.established, selected_routes.ipv4, \
         installed_routes.ipv4; BIRD: `birdc show protocols all` → BGP state, Routes imported / kernel protocol \
         exported); converge_* run from the first poll that saw Established, withdraw_* from `birdc disable {FEEDER_STATIC}` \
         on the feeder; \
         the feeder gets a `show status` on its control socket every {} ms throughout (BIRD 2.0.12 otherwise holds \
         the last UPDATE and End-of-RIB of an export until its event loop wakes, up to 3 s: every receiver looked \
         3 s slower); memory = VmRSS (peak = VmHWM) of the receiver's processes at convergence; cpu_* = their CPU \
         time from Established to convergence (schedstat), feeder_cpu_secs = the feeder's over the same window",
        POLL.as_millis(),
        patronus::SUMMARY,
        FEEDER_WAKE.as_millis()
    ));
    report.notes.push(
        "ratio = patronus converge_installed_secs (all N in the engine's FIB) / bird converge_selected_secs \
         (all N in BIRD's RIB, no kernel protocol): Patronus does more (a FIB) than that baseline; compare with \
         bird-kernel for FIB-to-FIB"
            .into(),
    );
    Ok(report)
}

/// (tag, system, figure, baseline, figure) of the reported ratios; "main"
/// is the report's `ratio`.
const RATIOS: [(&str, &str, &str, &str, &str); 6] = [
    (
        "main",
        "patronus",
        "converge_installed_secs",
        "bird",
        "converge_selected_secs",
    ),
    (
        "",
        "patronus",
        "converge_selected_secs",
        "bird",
        "converge_selected_secs",
    ),
    (
        "",
        "patronus",
        "converge_installed_secs",
        "bird-kernel",
        "converge_installed_secs",
    ),
    ("", "patronus", "rss_mib", "bird", "rss_mib"),
    ("", "patronus", "rss_mib", "bird-kernel", "rss_mib"),
    (
        "",
        "patronus",
        "withdraw_installed_secs",
        "bird-kernel",
        "withdraw_installed_secs",
    ),
];

struct Ctx<'a> {
    opts: &'a Options,
    n: u64,
    feeder_conf: PathBuf,
    topo: &'a Topo,
    tbl8_groups: u32,
}

struct Topo {
    _lab: Lab,
    feeder: String,
    /// Receiver namespaces, by `System::link() - 1`.
    receivers: Vec<String>,
}

impl Topo {
    fn ns(&self, s: System) -> &str {
        &self.receivers[usize::from(s.link()) - 1]
    }
}

fn build_topo() -> anyhow::Result<Topo> {
    let mut lab = Lab::new("bg");
    let feeder = lab.add_netns("feed")?;
    let mut receivers = Vec::new();
    for s in SYSTEMS {
        let ns = lab.add_netns(s.short())?;
        let k = s.link();
        let f = End::new(&feeder, &format!("f{k}"), [0x10, k]);
        let r = End::new(&ns, &format!("r{k}"), [0x20, k]);
        lab.veth(&f, &r)?;
        lab.ip(
            &feeder,
            &[
                "addr",
                "add",
                &format!("{}/24", s.feeder_addr()),
                "dev",
                &f.iface,
            ],
        )?;
        lab.ip(
            &ns,
            &["addr", "add", &format!("{}/24", s.local()), "dev", &r.iface],
        )?;
        receivers.push(ns);
    }
    Ok(Topo {
        _lab: lab,
        feeder,
        receivers,
    })
}

/// What one poll of a receiver saw.
#[derive(Clone, Copy, Debug, Default)]
struct Sample {
    established: bool,
    selected: u64,
    /// `None`: the receiver has no FIB figure (BIRD without kernel protocol).
    installed: Option<u64>,
}

/// When (seconds after `from`) the selected and installed counts first
/// met their goals, and the last sample.
#[derive(Debug, Default)]
struct Watch {
    selected_at: Option<f64>,
    installed_at: Option<f64>,
    /// Lower bounds of the same events: when the poll before the one that
    /// first saw them was sent (a slow answer makes the `_at` figures late).
    selected_after: f64,
    installed_after: f64,
    last: Sample,
    polls: u64,
    slowest_poll_ms: f64,
}

impl Watch {
    fn done(&self, has_fib: bool) -> bool {
        self.selected_at.is_some() && (!has_fib || self.installed_at.is_some())
    }
}

/// Polls until Established; returns when the answer saying so arrived.
fn wait_established(
    poll: &mut dyn FnMut() -> anyhow::Result<Sample>,
    timeout: Duration,
) -> anyhow::Result<Instant> {
    let start = Instant::now();
    loop {
        let t = Instant::now();
        if poll()?.established {
            return Ok(Instant::now());
        }
        if start.elapsed() > timeout {
            bail!("no session Established within {} s", timeout.as_secs());
        }
        sleep_checked(POLL.saturating_sub(t.elapsed()))?;
    }
}

/// Polls until `sel_ok(selected)` and (when the receiver has a FIB)
/// `inst_ok(installed)` have both held once, or `timeout`.
fn watch(
    poll: &mut dyn FnMut() -> anyhow::Result<Sample>,
    from: Instant,
    sel_ok: &dyn Fn(u64) -> bool,
    inst_ok: &dyn Fn(u64) -> bool,
    timeout: Duration,
) -> anyhow::Result<Watch> {
    let mut w = Watch::default();
    let mut prev_sent = 0.0;
    loop {
        let t = Instant::now();
        let sent = (t - from).as_secs_f64();
        let s = poll()?;
        let now = Instant::now();
        w.polls += 1;
        w.slowest_poll_ms = w.slowest_poll_ms.max((now - t).as_secs_f64() * 1e3);
        let at = (now - from).as_secs_f64();
        if w.selected_at.is_none() && sel_ok(s.selected) {
            w.selected_at = Some(at);
            w.selected_after = prev_sent;
        }
        if let Some(i) = s.installed {
            if w.installed_at.is_none() && inst_ok(i) {
                w.installed_at = Some(at);
                w.installed_after = prev_sent;
            }
        }
        prev_sent = sent;
        w.last = s;
        if w.done(s.installed.is_some()) || from.elapsed() > timeout {
            return Ok(w);
        }
        sleep_checked(POLL.saturating_sub(t.elapsed()))?;
    }
}

/// Convergence deadline: generous, growing with the table.
fn converge_timeout(n: u64) -> Duration {
    Duration::from_secs_f64((n as f64 * 600e-6).max(60.0))
}

/// VmRSS and VmHWM of a process, bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct ProcMem {
    rss: u64,
    hwm: u64,
}

fn parse_status(text: &str) -> Option<ProcMem> {
    let kb = |key: &str| -> Option<u64> {
        let l = text.lines().find(|l| l.starts_with(key))?;
        let v: u64 = l[key.len()..].split_whitespace().next()?.parse().ok()?;
        Some(v * 1024)
    };
    Some(ProcMem {
        rss: kb("VmRSS:")?,
        hwm: kb("VmHWM:")?,
    })
}

fn proc_mem(pid: u32) -> anyhow::Result<ProcMem> {
    let path = format!("/proc/{pid}/status");
    let text = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    parse_status(&text).with_context(|| format!("no VmRSS/VmHWM in {path}"))
}

const MIB: f64 = 1024.0 * 1024.0;

/// A freshly started feeder with its table loaded; returns it and the
/// seconds from start to loaded.
fn start_feeder(ctx: &Ctx, dir: &Path) -> anyhow::Result<(Bird, f64)> {
    let t0 = Instant::now();
    let feeder = Bird::start(
        &ctx.topo.feeder,
        &ctx.feeder_conf,
        &dir.join("feeder.ctl"),
        &dir.join("feeder.log"),
    )?;
    let deadline = converge_timeout(ctx.n);
    loop {
        let p = feeder.protocol(FEEDER_STATIC)?;
        if p.imported >= ctx.n {
            return Ok((feeder, t0.elapsed().as_secs_f64()));
        }
        if t0.elapsed() > deadline {
            bail!(
                "feeder loaded {} of {} routes in {} s",
                p.imported,
                ctx.n,
                deadline.as_secs()
            );
        }
        sleep_checked(Duration::from_millis(200))?;
    }
}

/// One receiver against a fresh feeder: converge, memory, withdraw.
fn run_one(ctx: &Ctx, sys: System, bins: Option<&Bins>, round: usize) -> anyhow::Result<Row> {
    let dir = ctx.opts.workdir.join(format!("r{round}-{}", sys.short()));
    std::fs::create_dir_all(&dir)?;
    let (feeder, load_secs) = start_feeder(ctx, &dir)?;
    let mut row = Row {
        system: sys.name().into(),
        limited_by: "-".into(),
        ..Row::default()
    };
    row.notes.push(format!(
        "feeder: config parsed and {} routes loaded in {load_secs:.2} s (not measured)",
        ctx.n
    ));
    let waker = feeder.keep_awake(FEEDER_WAKE)?;
    let result = match sys {
        System::Patronus => run_patronus(
            ctx,
            bins.context("no Patronus binaries")?,
            &feeder,
            &dir,
            &mut row,
        ),
        System::Bird | System::BirdKernel => run_bird(ctx, sys, &feeder, &dir, &mut row),
    };
    let wakes = waker.stop();
    drop(feeder);
    result?;
    row.notes.push(format!(
        "feeder woken every {} ms ({} requests)",
        FEEDER_WAKE.as_millis(),
        wakes?
    ));
    Ok(row)
}

/// Times and memory of one receiver run, as figures.
#[derive(Debug, Default)]
struct Outcome {
    setup_secs: f64,
    converge: Watch,
    withdraw: Option<Watch>,
    /// (process name, memory) at convergence.
    mem: Vec<(&'static str, ProcMem)>,
    /// (process name, CPU seconds from Established to convergence).
    cpu: Vec<(&'static str, f64)>,
    bird_memory: Option<u64>,
    /// The feeder's CPU seconds over the same window as `cpu`.
    feeder_cpu: f64,
}

impl Outcome {
    fn fill(&self, row: &mut Row, n: u64, has_fib: bool) {
        let f = &mut row.figures;
        f.insert("prefixes".into(), n as f64);
        f.insert("session_setup_secs".into(), self.setup_secs);
        if let Some(t) = self.converge.selected_at {
            f.insert("converge_selected_secs".into(), t);
        }
        if let Some(t) = self.converge.installed_at {
            f.insert("converge_installed_secs".into(), t);
        }
        if let Some(w) = &self.withdraw {
            if let Some(t) = w.selected_at {
                f.insert("withdraw_selected_secs".into(), t);
            }
            if let Some(t) = w.installed_at {
                f.insert("withdraw_installed_secs".into(), t);
            }
        }
        let rss: u64 = self.mem.iter().map(|(_, m)| m.rss).sum();
        let hwm: u64 = self.mem.iter().map(|(_, m)| m.hwm).sum();
        f.insert("rss_mib".into(), rss as f64 / MIB);
        f.insert("peak_rss_mib".into(), hwm as f64 / MIB);
        if self.mem.len() > 1 {
            for (name, m) in &self.mem {
                f.insert(format!("rss_{name}_mib"), m.rss as f64 / MIB);
            }
        }
        f.insert("cpu_secs".into(), self.cpu.iter().map(|(_, c)| c).sum());
        if self.cpu.len() > 1 {
            for (name, c) in &self.cpu {
                f.insert(format!("cpu_{name}_secs"), *c);
            }
        }
        if let Some(b) = self.bird_memory {
            f.insert("bird_show_memory_mib".into(), b as f64 / MIB);
        }
        f.insert("feeder_cpu_secs".into(), self.feeder_cpu);
        let c = &self.converge;
        let window = c
            .selected_at
            .unwrap_or(0.0)
            .max(c.installed_at.unwrap_or(0.0));
        row.limited_by = if c.done(has_fib) {
            // The feeder is one BIRD thread: busy most of the window means
            // it, not the receiver, set the pace.
            format!(
                "converged; feeder busy {:.0} % of it",
                100.0 * self.feeder_cpu / window.max(1e-3)
            )
        } else {
            format!(
                "NOT converged: {} selected, {} installed of {n}",
                c.last.selected,
                c.last.installed.map_or("-".into(), |i| i.to_string())
            )
        };
        let bounds = |w: &Watch| {
            let mut v = Vec::new();
            if let Some(t) = w.selected_at {
                v.push(format!("selected in {:.3}..{t:.3} s", w.selected_after));
            }
            if let Some(t) = w.installed_at {
                v.push(format!("installed in {:.3}..{t:.3} s", w.installed_after));
            }
            v.join(", ")
        };
        row.notes.push(format!(
            "{} polls while converging, slowest answer {:.0} ms; {}",
            c.polls,
            c.slowest_poll_ms,
            bounds(c)
        ));
        if let Some(w) = &self.withdraw {
            row.notes.push(format!(
                "withdraw: {} polls, slowest answer {:.0} ms; {}",
                w.polls,
                w.slowest_poll_ms,
                bounds(w)
            ));
        }
        if let Some(w) = &self.withdraw {
            if !w.done(has_fib) {
                row.notes.push(format!(
                    "withdraw NOT complete: {} selected, {} installed left",
                    w.last.selected,
                    w.last.installed.map_or("-".into(), |i| i.to_string())
                ));
            }
        }
    }
}

fn cpu_secs(pid: u32) -> f64 {
    process_cpu_ns(pid).unwrap_or(0) as f64 * 1e-9
}

fn run_patronus(
    ctx: &Ctx,
    bins: &Bins,
    feeder: &Bird,
    dir: &Path,
    row: &mut Row,
) -> anyhow::Result<()> {
    let sys = System::Patronus;
    let place = patronus::Placement {
        netns: ctx.topo.ns(sys),
        local: sys.local(),
        feeder: sys.feeder_addr(),
        local_as: sys.asn(),
        feeder_as: FEEDER_AS,
        prefix_len: 24,
    };
    let mut rx = patronus::Receiver::start(
        &bins.control,
        &bins.engine,
        dir,
        &place,
        ctx.tbl8_groups,
        ctx.opts.nice,
    )?;
    // Let the engine attach and acknowledge its first generation.
    sleep_checked(Duration::from_millis(1000))?;
    let base = rx.summary()?;
    let (cpid, epid) = (rx.control.pid(), rx.engine.pid());
    let n = ctx.n;
    let mut o = Outcome::default();
    let t0 = Instant::now();
    rx.add_neighbor(&place)?;
    let mut poll = || -> anyhow::Result<Sample> {
        rx.check_alive()?;
        let s = rx.summary()?;
        Ok(Sample {
            established: s.established > 0,
            selected: s.selected_v4,
            installed: Some(s.installed_v4),
        })
    };
    let est = wait_established(&mut poll, Duration::from_secs(60))?;
    o.setup_secs = (est - t0).as_secs_f64();
    let cpu0 = (cpu_secs(cpid), cpu_secs(epid));
    let feeder0 = cpu_secs(feeder.pid());
    let (sel_goal, inst_goal) = (base.selected_v4 + n, base.installed_v4 + n);
    o.converge = watch(
        &mut poll,
        est,
        &|s| s >= sel_goal,
        &|i| i >= inst_goal,
        converge_timeout(n),
    )?;
    o.feeder_cpu = cpu_secs(feeder.pid()) - feeder0;
    o.cpu = vec![
        ("control", cpu_secs(cpid) - cpu0.0),
        ("engine", cpu_secs(epid) - cpu0.1),
    ];
    o.mem = vec![("control", proc_mem(cpid)?), ("engine", proc_mem(epid)?)];
    if o.converge.done(true) {
        let t_w = Instant::now();
        feeder.birdc(&["disable", FEEDER_STATIC])?;
        o.withdraw = Some(watch(
            &mut poll,
            t_w,
            &|s| s <= base.selected_v4,
            &|i| i <= base.installed_v4,
            converge_timeout(n),
        )?);
    }
    o.fill(row, n, true);
    row.notes.push(format!(
        "before the session: {} selected, {} installed (subtracted); engine fib_tbl8_groups = {}",
        base.selected_v4, base.installed_v4, ctx.tbl8_groups
    ));
    row.notes.extend(rx.stop());
    Ok(())
}

fn run_bird(
    ctx: &Ctx,
    sys: System,
    feeder: &Bird,
    dir: &Path,
    row: &mut Row,
) -> anyhow::Result<()> {
    let kernel = sys == System::BirdKernel;
    let ns = ctx.topo.ns(sys);
    let conf = dir.join("receiver.conf");
    std::fs::write(
        &conf,
        table::receiver_config(sys.local(), sys.asn(), sys.feeder_addr(), kernel),
    )?;
    let t0 = Instant::now();
    let mut rx = Bird::start(
        ns,
        &conf,
        &dir.join("receiver.ctl"),
        &dir.join("receiver.log"),
    )?;
    let pid = rx.pid();
    let n = ctx.n;
    let mut o = Outcome::default();
    let poll = |rx: &mut Bird| -> anyhow::Result<Sample> {
        if let Some(e) = rx.exited() {
            bail!("bird receiver exited: {e}");
        }
        let all = rx.protocols()?;
        let find = |name: &str| all.iter().find(|p| p.name == name);
        let bgp = find(RECEIVER_BGP).context("no feeder protocol in birdc output")?;
        Ok(Sample {
            established: bgp.established(),
            selected: bgp.imported,
            installed: if kernel {
                Some(find(RECEIVER_KERNEL).map_or(0, |k| k.exported))
            } else {
                None
            },
        })
    };
    let mut p = || poll(&mut rx);
    let est = wait_established(&mut p, Duration::from_secs(60))?;
    o.setup_secs = (est - t0).as_secs_f64();
    let cpu0 = cpu_secs(pid);
    let feeder0 = cpu_secs(feeder.pid());
    o.converge = watch(&mut p, est, &|s| s >= n, &|i| i >= n, converge_timeout(n))?;
    o.feeder_cpu = cpu_secs(feeder.pid()) - feeder0;
    o.cpu = vec![("bird", cpu_secs(pid) - cpu0)];
    o.mem = vec![("bird", proc_mem(pid)?)];
    o.bird_memory = rx.memory_total().ok();
    if kernel && o.converge.done(true) {
        // Not timed: the kernel's own count, to back the exported figure.
        let out = netns::run("ip", &["-n", ns, "-4", "route", "show", "table", "main"])?;
        row.notes.push(format!(
            "kernel main table of the receiver's namespace at convergence: {} routes (incl. the link's own)",
            out.lines().count()
        ));
    }
    if o.converge.done(kernel) {
        let t_w = Instant::now();
        feeder.birdc(&["disable", FEEDER_STATIC])?;
        let mut p = || poll(&mut rx);
        o.withdraw = Some(watch(
            &mut p,
            t_w,
            &|s| s == 0,
            &|i| i == 0,
            converge_timeout(n),
        )?);
    }
    o.fill(row, n, kernel);
    if kernel {
        row.notes.push(
            "installed = the kernel protocol's exported count (BIRD 2 writes each route by netlink and waits for \
             the kernel's answer); the kernel's own FIB memory is not in BIRD's RSS"
                .into(),
        );
    }
    rx.stop();
    Ok(())
}

/// One row per system: every figure the median of the rounds that have
/// it (each round's values in a note).
fn merge_rounds(rounds: &[Vec<Row>]) -> Vec<Row> {
    if rounds.len() == 1 {
        return rounds[0].clone();
    }
    let mut out = Vec::new();
    for first in &rounds[0] {
        let all: Vec<&Row> = rounds
            .iter()
            .filter_map(|r| r.iter().find(|x| x.system == first.system))
            .collect();
        let mut keys: Vec<&String> = all.iter().flat_map(|r| r.figures.keys()).collect();
        keys.sort();
        keys.dedup();
        let mut figures = BTreeMap::new();
        let mut per_key = Vec::new();
        for k in keys {
            let mut v: Vec<f64> = all
                .iter()
                .filter_map(|r| r.figures.get(k).copied())
                .collect();
            per_key.push(format!(
                "{k}: {}",
                v.iter()
                    .map(|x| format!("{x:.3}"))
                    .collect::<Vec<_>>()
                    .join(" / ")
            ));
            if let Some(m) = median(&mut v) {
                figures.insert(k.clone(), m);
            }
        }
        let mut row = Row {
            system: first.system.clone(),
            figures,
            limited_by: if all.iter().all(|r| r.limited_by.starts_with("converged")) {
                "converged in every round".into()
            } else {
                all.iter()
                    .enumerate()
                    .map(|(i, r)| format!("round {}: {}", i + 1, r.limited_by))
                    .collect::<Vec<_>>()
                    .join("; ")
            },
            ..Row::default()
        };
        row.notes.push(format!(
            "median of {} rounds; rounds: {}",
            rounds.len(),
            per_key.join("; ")
        ));
        for (i, r) in all.iter().enumerate() {
            for n in &r.notes {
                row.notes.push(format!("round {}: {n}", i + 1));
            }
        }
        out.push(row);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_proc_status() {
        let text = "Name:\tbird\nVmPeak:\t  300000 kB\nVmHWM:\t  123456 kB\nVmRSS:\t  120000 kB\nThreads:\t1\n";
        assert_eq!(
            parse_status(text),
            Some(ProcMem {
                rss: 120_000 * 1024,
                hwm: 123_456 * 1024
            })
        );
        assert_eq!(parse_status("Name:\tx\n"), None);
        let me = proc_mem(std::process::id()).unwrap();
        assert!(me.rss > 0 && me.hwm >= me.rss);
    }

    fn sample_row(system: &str, figs: &[(&str, f64)]) -> Row {
        Row {
            system: system.into(),
            figures: figs.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
            limited_by: "converged".into(),
            ..Row::default()
        }
    }

    #[test]
    fn rounds_merge_to_per_figure_medians() {
        let rounds = vec![
            vec![
                sample_row("a", &[("t", 3.0), ("m", 10.0)]),
                sample_row("b", &[("t", 1.0)]),
            ],
            vec![
                sample_row("a", &[("t", 1.0), ("m", 30.0)]),
                sample_row("b", &[("t", 2.0)]),
            ],
            vec![
                sample_row("a", &[("t", 2.0)]),
                sample_row("b", &[("t", 9.0)]),
            ],
        ];
        let m = merge_rounds(&rounds);
        assert_eq!(m.len(), 2);
        assert_eq!(m[0].figures["t"], 2.0);
        assert_eq!(m[0].figures["m"], 20.0);
        assert_eq!(m[1].figures["t"], 2.0);
        assert_eq!(m[0].limited_by, "converged in every round");
        assert!(m[0].notes[0].contains("t: 3.000 / 1.000 / 2.000"));
    }

    #[test]
    fn watch_records_when_each_goal_is_first_met() {
        let seq = [(true, 10, 0), (true, 100, 50), (true, 100, 100)];
        let mut i = 0;
        let mut poll = || -> anyhow::Result<Sample> {
            let (e, s, n) = seq[i.min(seq.len() - 1)];
            i += 1;
            Ok(Sample {
                established: e,
                selected: s,
                installed: Some(n),
            })
        };
        let from = Instant::now();
        let w = watch(
            &mut poll,
            from,
            &|s| s >= 100,
            &|n| n >= 100,
            Duration::from_secs(10),
        )
        .unwrap();
        assert_eq!(w.polls, 3);
        let (sel, inst) = (w.selected_at.unwrap(), w.installed_at.unwrap());
        assert!(sel < inst, "selected {sel} installed {inst}");
        assert!(w.done(true));
    }

    #[test]
    fn systems_have_distinct_links_and_protocols() {
        let links: std::collections::HashSet<u8> = SYSTEMS.iter().map(|s| s.link()).collect();
        assert_eq!(links.len(), SYSTEMS.len());
        let protos: std::collections::HashSet<String> =
            SYSTEMS.iter().map(|s| s.feeder_protocol()).collect();
        assert_eq!(protos.len(), SYSTEMS.len());
        for s in SYSTEMS {
            assert_ne!(s.asn(), FEEDER_AS);
        }
    }
}
