//! The engine's side of the shared-memory link to the control process.
//!
//! One thread (never a worker) watches the runtime directory: when the
//! control process publishes a table generation, it brings the FIB up to
//! it ([`FibSync`]: route changes applied to a spare table, or a whole
//! build from the configuration plus the pushed routes) and hands it to the workers
//! through the [`TableSlot`]; once a worker has adopted it, the thread
//! acknowledges the shared-memory generation in that worker's slot, so the
//! control process can reclaim older ones. It also copies the workers'
//! counters and poll-latency histograms (whole snapshots) into the shared counters file the
//! control process exports.
//! It also follows the pushed NAT configuration (`nat.bin`) into the
//! workers' NAT plan ([`nat_link::NatLink`], re-resolved whenever the
//! interfaces change) and starts the NAT session query server
//! ([`nat_link::spawn_session_server`], its own thread on `nat.sock`,
//! joined when the link stops).
//! It follows the pushed IPv6 routes (`route6.bin`, whole each time): each
//! file becomes a new [`Fib6`] (configuration + pushed routes) handed to the
//! workers through [`TableSlot::fib6`]; workers export the `route6.bin` number
//! they run as the gauge `route6.generation`.
//! If the control process is away, nothing changes: the workers keep the
//! last table. The engine may start before or after the control process.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use patronus_shm::{CounterBlock, CounterSpec, ShmError, Subscriber, WorkerHandle};

use crate::config::EngineConfig;
use crate::counters::{read, DropReason, WorkerCounters};
use crate::fib::fib6::Fib6;
use crate::fib::StaticRoute;
use crate::fib_sync::FibSync;
use crate::nat_slot::NatSlot;
use crate::tables::TableSlot;
use crate::wg_link::{WgLink, WgOutcome};
use crate::wg_plan::{WgPlan, WgSlot};

use crate::classify_link;
use crate::classify_slot::ClassifySlot;
use crate::lb_link::LbShared;
use crate::nat_link::{self, NatLink};

/// How often the link looks for a new generation.
const POLL_INTERVAL: Duration = Duration::from_millis(1);
/// How often counters are copied and heartbeats sent.
const COUNTER_INTERVAL: Duration = Duration::from_millis(100);

/// Names of the exported histograms, in file order.
pub const HISTOGRAM_NAMES: &[&str] = &["poll_latency_ns"];
/// Index of the poll-latency histogram in [`HISTOGRAM_NAMES`].
const POLL_LATENCY: usize = 0;

/// Names of the exported counters, in file order.
pub fn counter_names(port_names: &[String]) -> Vec<String> {
    let mut names = Vec::new();
    for p in port_names {
        for k in [
            "rx_packets",
            "rx_bytes",
            "tx_packets",
            "tx_bytes",
            "tx_errors",
            "rx_missed",
            "rx_errors",
        ] {
            names.push(format!("port.{p}.{k}"));
        }
    }
    for r in DropReason::ALL {
        names.push(format!("drop.{}", r.label()));
    }
    for k in [
        "busy_polls",
        "idle_polls",
        "icmp_sent",
        "arp_requests_sent",
        "arp_replies_sent",
        "ipv4_fragments_sent",
        "punt_to_host",
        "punt_from_host",
        "handoff_received",
    ] {
        names.push(k.to_string());
    }
    for k in crate::nat::NAT_COUNTER_NAMES {
        names.push(format!("nat.{k}"));
    }
    names.push("nat.sessions_active".to_string());
    names.extend(patronus_shm::classify_counters::classify_counter_names());
    for k in crate::lb::LB_COUNTER_NAMES {
        names.push(format!("lb.{k}"));
    }
    // IPv6: nd_*, icmpv6_* counters, and the gauges `fib6.routes` and
    // `route6.generation` (each worker's own; the smallest over workers is
    // what every worker runs).
    names.extend(
        crate::counters::IPV6_COUNTER_NAMES
            .iter()
            .map(|k| k.to_string()),
    );
    names
}

fn counter_values(c: &WorkerCounters, out: &mut Vec<u64>) {
    out.clear();
    for p in &c.ports {
        for v in [
            &p.rx_packets,
            &p.rx_bytes,
            &p.tx_packets,
            &p.tx_bytes,
            &p.tx_errors,
            &p.rx_missed,
            &p.rx_errors,
        ] {
            out.push(read(v));
        }
    }
    for r in DropReason::ALL {
        out.push(c.drop_count(*r));
    }
    for v in [
        &c.busy_polls,
        &c.idle_polls,
        &c.icmp_sent,
        &c.arp_requests_sent,
        &c.arp_replies_sent,
        &c.ipv4_fragments_sent,
        &c.punt_to_host,
        &c.punt_from_host,
        &c.handoff_received,
    ] {
        out.push(read(v));
    }
    out.extend(c.nat.iter().map(read));
    out.push(read(&c.nat_sessions));
    out.extend(c.classify.iter().map(read));
    out.extend(c.lb.iter().map(read));
    out.extend(c.ipv6.iter().map(read));
}

/// Routes of a published generation, as the FIB builder takes them.
pub fn pushed_routes(routes: &[patronus_shm::RouteEntry]) -> Vec<StaticRoute> {
    routes
        .iter()
        .filter_map(crate::fib_sync::pushed_route)
        .collect()
}

/// Starts the link thread.
#[allow(clippy::too_many_arguments)]
pub fn spawn(
    cfg: Arc<EngineConfig>,
    dir: PathBuf,
    tables: Arc<TableSlot>,
    counters: Vec<Arc<WorkerCounters>>,
    nat: Arc<NatSlot>,
    wg: Arc<WgSlot>,
    classify: Arc<ClassifySlot>,
    lb: Arc<LbShared>,
    punt: Arc<crate::punt::PuntTaps>,
    wan: Option<Arc<crate::wan_shared::WanShared>>,
    stop: Arc<AtomicBool>,
) -> Result<JoinHandle<()>, ShmError> {
    let sub = Subscriber::open(&dir)?;
    let lbq = crate::lb_link::spawn_lb_server(&dir, lb.clone(), counters.clone(), stop.clone())
        .map_err(|e| ShmError::Io {
            op: "serve lb.sock",
            path: dir.join(patronus_shm::runtime_dir::LB_SOCKET),
            source: e,
        })?;
    let flowq =
        classify_link::spawn_flow_server(&dir, classify.clone(), counters.len(), stop.clone())
            .map_err(|e| ShmError::Io {
                op: "serve flows.sock",
                path: dir.join(patronus_shm::runtime_dir::FLOWS_SOCKET),
                source: e,
            })?;
    let natq = nat_link::spawn_session_server(&dir, nat.clone(), counters.len(), stop.clone())
        .map_err(|e| ShmError::Io {
            op: "serve nat.sock",
            path: dir.join(patronus_shm::runtime_dir::NAT_SOCKET),
            source: e,
        })?;
    let mut names = counter_names(&cfg.ports.iter().map(|p| p.name.clone()).collect::<Vec<_>>());
    // `[wan]`'s counters follow the fixed ones (its names never change).
    names.extend(wan.iter().flat_map(|w| w.names.iter().cloned()));
    let plan = wg.load().1.ok_or(ShmError::Io {
        op: "start link: no WireGuard plan",
        path: PathBuf::new(),
        source: std::io::ErrorKind::NotFound.into(),
    })?;
    let file = CounterFile::create(&dir, names, plan, counters.len())?;
    let handles = (0..counters.len())
        .map(|w| sub.worker(w))
        .collect::<Result<Vec<_>, _>>()?;
    std::thread::Builder::new()
        .name("patronus-link".into())
        .spawn(move || {
            run(
                cfg, &dir, sub, handles, tables, counters, file, nat, wg, classify, lb, punt, wan,
                stop,
            );
            // Same stop flag: the session server ends too (and removes
            // nat.sock) before the link reports done.
            let _ = natq.join();
            let _ = flowq.join();
            let _ = lbq.join();
        })
        .map_err(|e| ShmError::Io {
            op: "spawn link thread",
            path: PathBuf::new(),
            source: e,
        })
}

#[allow(clippy::too_many_arguments)]
fn run(
    cfg: Arc<EngineConfig>,
    dir: &Path,
    mut sub: Subscriber,
    handles: Vec<WorkerHandle>,
    tables: Arc<TableSlot>,
    counters: Vec<Arc<WorkerCounters>>,
    mut file: CounterFile,
    nat: Arc<NatSlot>,
    wg_slot: Arc<WgSlot>,
    classify: Arc<ClassifySlot>,
    lb: Arc<LbShared>,
    punt: Arc<crate::punt::PuntTaps>,
    wan: Option<Arc<crate::wan_shared::WanShared>>,
    stop: Arc<AtomicBool>,
) {
    // (local FIB generation, shared-memory generation) not yet acknowledged by all.
    let mut in_flight: VecDeque<(u64, u64)> = VecDeque::new();
    let mut acked = vec![0u64; handles.len()];
    let mut last_counters = Instant::now() - COUNTER_INTERVAL;
    let mut values = Vec::new();
    let start_fib = tables.load().1;
    let mut nat = NatLink::new(cfg.clone(), nat, start_fib.interfaces().clone());
    let configured = crate::config::config_tunnels(&cfg).unwrap_or_default();
    let mut wg = WgLink::new(configured, wg_slot.clone());
    // A plan published whose counter names the file does not show yet.
    let mut wg_pending: Option<(u64, Arc<WgPlan>)> = None;
    let configured_model = cfg.classify.as_ref().and_then(|c| c.model.clone());
    let sync_cfg = cfg.clone();
    let mut sync = FibSync::new(cfg, start_fib);
    while !stop.load(Ordering::Relaxed) {
        // Tunnel addresses may need other FIB entries.
        let mut wg_routes_stale = false;
        match sub.poll() {
            Ok(Some(generation)) => {
                let started = Instant::now();
                let number = generation.number();
                match sync.update(sub.dir(), generation) {
                    Ok(up) => {
                        for w in &up.warnings {
                            eprintln!("patronus-engine: generation {}: {w}", up.generation);
                        }
                        if up.interfaces_changed {
                            eprintln!(
                                "patronus-engine: generation {}: interfaces now {}",
                                up.generation,
                                up.fib
                                    .interfaces()
                                    .iter()
                                    .map(|i| match i.vlan {
                                        Some(v) => format!("{}.{v} {}", i.port, i.address),
                                        None => format!("{} {}", i.port, i.address),
                                    })
                                    .collect::<Vec<_>>()
                                    .join(", ")
                            );
                        }
                        let interfaces = up.fib.interfaces().clone();
                        let fib = up.fib.clone();
                        let local = tables.publish(up.fib);
                        if up.interfaces_changed && punt.is_ready() {
                            // The kernel's copies of the ports follow.
                            if let Err(e) =
                                crate::punt::set_addresses(&sync_cfg, &punt, &interfaces)
                            {
                                eprintln!("patronus-engine: punt TAP addresses: {e}");
                            }
                        }
                        if up.interfaces_changed {
                            let o = nat.interfaces_changed(interfaces);
                            nat.report("interfaces changed", &o);
                            if let Some(o) = wg.interfaces_changed(&fib) {
                                wg_pending = wg_report("interfaces changed", &o, &wg_slot);
                            }
                            wg_routes_stale = true;
                        }
                        in_flight.push_back((local, up.generation));
                        eprintln!(
                            "patronus-engine: generation {} from {}: {} {}{}, in {:.2} ms",
                            up.generation,
                            dir.display(),
                            up.changes,
                            if up.full {
                                "pushed routes, table built whole"
                            } else {
                                "route changes applied"
                            },
                            if up.skipped > 0 {
                                format!(", {} skipped (gateway on no connected subnet)", up.skipped)
                            } else {
                                String::new()
                            },
                            started.elapsed().as_secs_f64() * 1e3
                        );
                    }
                    Err(e) => eprintln!("patronus-engine: generation {number} refused: {e}"),
                }
            }
            Ok(None) => {
                sync.prepare();
            }
            Err(e) => eprintln!("patronus-engine: control link: {e}"),
        }
        // After the tables: a NAT config may name an interface pushed with them.
        match sub.poll_nat() {
            Ok(Some((n, t))) => {
                let o = nat.pushed(n, t);
                nat.report("pushed", &o);
            }
            Ok(None) => {}
            Err(e) => eprintln!("patronus-engine: NAT file refused: {e}"),
        }
        match sub.poll_wg() {
            Ok(Some((n, t))) => {
                let o = wg.pushed(t, &tables.load().1);
                wg_pending = wg_report(&format!("file {n}"), &o, &wg_slot);
                wg_routes_stale = true;
            }
            Ok(None) => {}
            Err(e) => eprintln!("patronus-engine: WireGuard file refused: {e}"),
        }
        match sub.poll_route6() {
            Ok(Some((n, t))) => {
                let started = Instant::now();
                match Fib6::build_with(&sync_cfg, &t.routes, n) {
                    Ok(f) => {
                        eprintln!(
                            "patronus-engine: IPv6 routes file {n}: {} pushed, {} skipped (gateway on no IPv6 interface), {} routes in all, built in {:.2} ms",
                            t.routes.len(),
                            f.skipped(),
                            f.routes(),
                            started.elapsed().as_secs_f64() * 1e3
                        );
                        tables.fib6.publish(Some(f));
                    }
                    Err(e) => eprintln!("patronus-engine: IPv6 routes file {n} refused: {e}"),
                }
            }
            Ok(None) => {}
            Err(e) => eprintln!("patronus-engine: IPv6 routes file refused: {e}"),
        }
        match sub.poll_lb() {
            Ok(Some((n, t))) => match lb.adopt_pushed(n, &t) {
                Ok(what) => eprintln!("patronus-engine: LB file {n}: running {what}"),
                Err(e) => eprintln!("patronus-engine: LB file {n} refused: {e}"),
            },
            Ok(None) => {}
            Err(e) => eprintln!("patronus-engine: LB file refused: {e}"),
        }
        match sub.poll_model() {
            Ok(Some((n, bytes))) => {
                let configured = configured_model.as_deref();
                match classify_link::adopt_pushed(&classify, n, &bytes, configured) {
                    Ok(what) => eprintln!("patronus-engine: model file {n}: running {what}"),
                    Err(e) => eprintln!("patronus-engine: model file {n} refused: {e}"),
                }
            }
            Ok(None) => {}
            Err(e) => eprintln!("patronus-engine: model file refused: {e}"),
        }
        if wg_routes_stale {
            match sync.set_extra(wg.fib_routes(&tables.load().1)) {
                Ok(Some(up)) => {
                    eprintln!(
                        "patronus-engine: tunnel addresses: {} FIB changes",
                        up.changes
                    );
                    let local = tables.publish(up.fib);
                    in_flight.push_back((local, up.generation));
                }
                Ok(None) => {}
                Err(e) => eprintln!("patronus-engine: tunnel addresses refused: {e}"),
            }
        }
        // Once every worker runs a new WireGuard plan, the counters file
        // shows its tunnels' counters (a new file: names are fixed in one).
        if let Some((g, plan)) = &wg_pending {
            if wg_slot.min_acked() >= *g {
                match file.with_wg_plan(dir, plan.clone()) {
                    Ok(f) => file = f,
                    Err(e) => eprintln!("patronus-engine: counters file: {e}"),
                }
                wg_pending = None;
            }
        }
        // Acknowledge each shared generation once the worker adopted its FIB.
        let local_acks = tables.acks();
        for (w, h) in handles.iter().enumerate() {
            if let Some(&(_, shm)) = in_flight
                .iter()
                .rev()
                .find(|(local, _)| *local <= local_acks[w])
            {
                if shm != acked[w] {
                    h.ack(shm);
                    acked[w] = shm;
                }
            }
        }
        let min_local = local_acks.iter().copied().min().unwrap_or(0);
        while in_flight.len() > 1 && in_flight[1].0 <= min_local {
            in_flight.pop_front();
        }
        if last_counters.elapsed() >= COUNTER_INTERVAL {
            last_counters = Instant::now();
            let now_ms = patronus_shm::monotonic_ms();
            sub.heartbeat_at(now_ms);
            for (w, h) in handles.iter().enumerate() {
                h.heartbeat_at(now_ms);
                counter_values(&counters[w], &mut values);
                if let Some(wv) = wan.as_ref().and_then(|s| s.counters.get(w)) {
                    values.extend(wv.iter().map(read));
                }
                if let Some(wgv) = file.wg.counters.get(w) {
                    values.extend(wgv.iter().map(read));
                }
                let out = &file.workers[w];
                for (i, v) in values.iter().enumerate() {
                    out.set(i, *v);
                }
                out.set_histogram(POLL_LATENCY, &counters[w].poll_latency_ns.snapshot());
                out.bump_seq();
            }
        }
        std::thread::sleep(POLL_INTERVAL);
    }
}

/// Logs what a WireGuard push did; the published plan, if any.
fn wg_report(what: &str, o: &WgOutcome, slot: &WgSlot) -> Option<(u64, Arc<WgPlan>)> {
    for r in &o.refused {
        eprintln!("patronus-engine: WireGuard {what}: tunnel refused: {r}");
    }
    let running: Vec<String> = o
        .tunnels
        .iter()
        .map(|(n, p)| format!("{n} ({p} peers)"))
        .collect();
    eprintln!(
        "patronus-engine: WireGuard {what}: pushed tunnels [{}]",
        running.join(", ")
    );
    let g = o.published?;
    slot.load().1.map(|p| (g, p))
}

/// `counters.shm` as the link writes it: the engine's fixed counters
/// (`base` names) followed by a WireGuard plan's.
struct CounterFile {
    base: Vec<String>,
    wg: Arc<WgPlan>,
    workers: Vec<patronus_shm::WorkerCounters>,
    _block: CounterBlock,
}

impl CounterFile {
    fn create(
        dir: &Path,
        base: Vec<String>,
        wg: Arc<WgPlan>,
        workers: usize,
    ) -> Result<Self, ShmError> {
        let names: Vec<&str> = base
            .iter()
            .chain(&wg.counter_names)
            .map(String::as_str)
            .collect();
        let block = CounterBlock::create(
            dir,
            &CounterSpec {
                workers: workers as u32,
                counters: &names,
                histograms: HISTOGRAM_NAMES,
            },
        )?;
        let workers = (0..workers)
            .map(|w| block.take_worker(w))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(CounterFile {
            base,
            wg,
            workers,
            _block: block,
        })
    }

    /// The same counters with `wg`'s WireGuard counters (a new file, which
    /// readers notice by its new inode).
    fn with_wg_plan(&self, dir: &Path, wg: Arc<WgPlan>) -> Result<Self, ShmError> {
        CounterFile::create(dir, self.base.clone(), wg, self.workers.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use patronus_shm::{CounterReader, Log2Histogram};

    fn temp_dir(tag: &str) -> PathBuf {
        let p = std::env::temp_dir().join(format!(
            "patronus-link-{tag}-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        let _ = std::fs::remove_dir_all(&p);
        p
    }

    #[test]
    fn histogram_copy_matches_the_engine_histogram() {
        let dir = temp_dir("hist");
        let block = CounterBlock::create(
            &dir,
            &CounterSpec {
                workers: 1,
                counters: &["x"],
                histograms: HISTOGRAM_NAMES,
            },
        )
        .unwrap();
        let dst = block.take_worker(0).unwrap();
        let engine = Log2Histogram::default();
        let reader = CounterReader::open(&dir).unwrap();
        assert_eq!(reader.histogram_names(), HISTOGRAM_NAMES);
        for values in [&[0u64, 1, 7, 900, 1500, 1_000_000][..], &[3, 1024, 65_000]] {
            for v in values {
                engine.record(*v);
            }
            let src = engine.snapshot();
            dst.set_histogram(POLL_LATENCY, &src);
            assert_eq!(reader.histogram(0, POLL_LATENCY).unwrap(), src);
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}
