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
mod outcome;
mod patronus;
mod table;
mod watch;

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

use super::rounds::median;
use super::Options;
use crate::netns::{self, sleep_checked, End, Lab};
use crate::report::{Report, Row};
use bird::Bird;
use outcome::{cpu_secs, merge_rounds, proc_mem, Outcome};
use table::{FeederPeer, PrefixPlan, FEEDER_AS, FEEDER_STATIC, RECEIVER_BGP, RECEIVER_KERNEL};
use watch::{converge_timeout, wait_established, watch, Sample, POLL};

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
    // A waker that stopped early only weakens the workaround: a note, not
    // a lost row.
    row.notes.push(match wakes {
        Ok(n) => format!(
            "feeder woken every {} ms ({n} requests)",
            FEEDER_WAKE.as_millis()
        ),
        Err(e) => format!("feeder waker stopped early: {e:#}"),
    });
    Ok(row)
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

#[cfg(test)]
mod tests {
    use super::*;

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
