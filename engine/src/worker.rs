//! Worker threads: one per core, pinned, each owning its pool, its queue of
//! every port and its pipeline, polling until told to stop.
//!
//! `poll = "busy"` spins like DPDK; `poll = "adaptive"` spins while traffic
//! flows and backs off when idle (spin hints, then yields, then sleeps that
//! grow to 1 ms) so a small box stays usable.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::buffer::Batch;
use crate::classify_slot::{ClassifySlot, FlowAnswer};
use crate::config::{EngineConfig, PollMode};
use crate::counters::{bump, WorkerCounters};
use crate::fib::fib6::Fib6;
use crate::fib::Fib;
use crate::lb_link::LbShared;
use crate::nat_slot::{NatSlot, SessionAnswer};
use crate::pipeline::{Handoff, NeighborSync, Pipeline};
use crate::ports::{self, LinkInfo};
use crate::tables::TableSlot;
use crate::wg_plan::WgSlot;

/// How often driver statistics are copied into the shared counters (ns).
const DRIVER_STATS_INTERVAL_NS: u64 = 100_000_000;
/// Depth of each worker's inbox of learnt neighbors.
const NEIGHBOR_SYNC_DEPTH: usize = 1024;

/// A running worker.
#[derive(Debug)]
pub struct Worker {
    pub index: usize,
    pub core: Option<usize>,
    pub counters: Arc<WorkerCounters>,
    /// Set by the worker once every finite input has ended and nothing is pending.
    pub done: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

/// All workers of the engine.
#[derive(Debug)]
pub struct Engine {
    pub workers: Vec<Worker>,
    pub stop: Arc<AtomicBool>,
    /// Link state of every port as worker 0 saw it at start.
    pub links: Vec<LinkInfo>,
    /// The FIB generations the workers adopt.
    pub tables: Arc<TableSlot>,
    /// The NAT plan generations the workers adopt, and session queries.
    pub nat: Arc<NatSlot>,
    /// The WireGuard plan generations the workers adopt (configured and
    /// pushed tunnels, and where their counters go).
    pub wg: Arc<WgSlot>,
    /// The model generations the workers adopt, and flow queries.
    pub classify: Arc<ClassifySlot>,
    /// The load-balancer plans the workers adopt, and backend counters.
    pub lb: Arc<LbShared>,
    /// The punt path's kernel TAPs (none without `[punt]`).
    pub punt: Arc<crate::punt::PuntTaps>,
    /// `[wan]`: its configuration and counters.
    pub wan: Option<Arc<crate::wan_shared::WanShared>>,
    /// The engine clock's origin.
    pub started: Instant,
    /// The configuration it runs.
    pub cfg: Arc<EngineConfig>,
}

/// Failure to start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("worker {worker}: {msg}")]
    Worker { worker: usize, msg: String },
    #[error(transparent)]
    Ports(#[from] ports::PortError),
    #[error("{0}")]
    Config(#[from] crate::config::ConfigError),
    #[error("handoff rings: {0}")]
    Handoff(std::io::Error),
    #[error("classify.model: {0}")]
    Model(String),
    #[error("lb: {0}")]
    Lb(#[from] crate::lb::PlanError),
    #[error("punt: {0}")]
    Punt(String),
    #[error("{0}")]
    Fib6(#[from] crate::fib::fib6::Fib6Error),
}

impl Engine {
    /// Starts `cfg.engine.workers` pinned workers over the shared FIB and
    /// waits until every one has opened its ports (or one failed).
    pub fn start(cfg: Arc<EngineConfig>, fib: Arc<Fib>) -> Result<Engine, StartError> {
        ports::prepare(&cfg)?;
        let n = cfg.engine.workers;
        let stop = Arc::new(AtomicBool::new(false));
        let started = Instant::now();
        let cores: Vec<Option<usize>> = if cfg.engine.cores.is_empty() {
            let avail = core_affinity::get_core_ids().map(|c| c.len()).unwrap_or(0);
            (0..n).map(|i| (avail > 0).then_some(i % avail)).collect()
        } else {
            cfg.engine.cores.iter().map(|c| Some(*c)).collect()
        };
        let syncs = NeighborSync::mesh(n, NEIGHBOR_SYNC_DEPTH);
        let tables = Arc::new(TableSlot::new(fib, n));
        tables.fib6.publish(Some(Fib6::build(&cfg)?));
        let plan = cfg.nat.as_ref().map(|s| s.to_plan(&cfg)).transpose()?;
        let nat = Arc::new(NatSlot::new(plan, n));
        let wg = Arc::new(WgSlot::new(Some(crate::config::wg_plan(&cfg, n)?), n));
        let model = match cfg.classify.as_ref().and_then(|c| c.model.as_deref()) {
            Some(path) => {
                Some(crate::classify_link::load_model_file(path).map_err(StartError::Model)?)
            }
            None => None,
        };
        let classify = Arc::new(ClassifySlot::new(cfg.classify.is_some(), model, n));
        let lb = Arc::new(LbShared::new(&cfg, n)?);
        let wan = crate::wan_shared::WanShared::new(&cfg, n)?;
        let punt =
            Arc::new(crate::punt::open_taps(&cfg).map_err(|e| StartError::Punt(e.to_string()))?);
        let mut handoffs = Handoff::mesh(n).map_err(StartError::Handoff)?.into_iter();
        let open_turn = Arc::new(OpenTurn::default());
        let (ready_tx, ready_rx) = mpsc::channel::<(usize, Result<Vec<LinkInfo>, String>)>();
        let mut workers = Vec::with_capacity(n);
        for (w, sync) in syncs.into_iter().enumerate() {
            let counters = Arc::new(WorkerCounters::new(cfg.ports.len()));
            let done = Arc::new(AtomicBool::new(false));
            let (cfg, tables, stop, ready) =
                (cfg.clone(), tables.clone(), stop.clone(), ready_tx.clone());
            let shared = Shared {
                tables,
                nat: nat.clone(),
                wg: wg.clone(),
                classify: classify.clone(),
                lb: lb.clone(),
                punt: punt.clone(),
                wan: wan.clone(),
                handoff: handoffs.next(),
                open_turn: open_turn.clone(),
            };
            let (c2, d2, core) = (counters.clone(), done.clone(), cores[w]);
            let thread = std::thread::Builder::new()
                .name(format!("patronus-w{w}"))
                .spawn(move || {
                    run_worker(w, core, &cfg, shared, sync, c2, d2, stop, started, ready)
                })
                .map_err(|e| StartError::Worker {
                    worker: w,
                    msg: e.to_string(),
                })?;
            workers.push(Worker {
                index: w,
                core,
                counters,
                done,
                thread: Some(thread),
            });
        }
        drop(ready_tx);
        let mut links = Vec::new();
        let mut failure = None;
        for _ in 0..n {
            match ready_rx.recv() {
                Ok((0, Ok(l))) => links = l,
                Ok((_, Ok(_))) => {}
                Ok((w, Err(msg))) => {
                    failure.get_or_insert(StartError::Worker { worker: w, msg });
                }
                Err(_) => {
                    failure.get_or_insert(StartError::Worker {
                        worker: 0,
                        msg: "worker exited during start-up".into(),
                    });
                    break;
                }
            }
        }
        let mut engine = Engine {
            workers,
            stop,
            links,
            tables,
            nat,
            wg,
            classify,
            lb,
            punt: punt.clone(),
            wan,
            started,
            cfg: cfg.clone(),
        };
        if failure.is_none() && cfg.punt.is_some() {
            let fib = engine.tables.load().1;
            if let Err(e) = crate::punt::configure(&cfg, &punt, &engine.links, fib.interfaces()) {
                failure = Some(StartError::Punt(e));
            }
        }
        if let Some(e) = failure {
            engine.shutdown();
            return Err(e);
        }
        Ok(engine)
    }

    /// True when every worker's inputs are finite and exhausted.
    pub fn all_done(&self) -> bool {
        self.workers.iter().all(|w| w.done.load(Ordering::Acquire))
    }

    /// Stops and joins every worker (they flush their outputs first).
    pub fn shutdown(&mut self) {
        self.stop.store(true, Ordering::Release);
        for w in &mut self.workers {
            if let Some(t) = w.thread.take() {
                let _ = t.join();
            }
        }
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// What a worker shares with the link thread and the other workers.
struct Shared {
    tables: Arc<TableSlot>,
    nat: Arc<NatSlot>,
    wg: Arc<WgSlot>,
    classify: Arc<ClassifySlot>,
    lb: Arc<LbShared>,
    /// The kernel TAPs of the punt path (empty without `[punt]`).
    punt: Arc<crate::punt::PuntTaps>,
    wan: Option<Arc<crate::wan_shared::WanShared>>,
    /// None with one worker.
    handoff: Option<Handoff>,
    open_turn: Arc<OpenTurn>,
}

/// Workers open their port queues one after the other, in worker order.
/// Kernel fanout groups (AF_PACKET) pick a member by index in join order:
/// opened in order, queue `i` of every port is worker `i`'s, so the two
/// directions of a flow — one hash, two ports — reach the same worker.
#[derive(Debug, Default)]
struct OpenTurn {
    next: std::sync::Mutex<usize>,
    changed: std::sync::Condvar,
}

impl OpenTurn {
    /// Runs `open` once every worker before `w` has opened its queues.
    fn in_turn<T>(&self, w: usize, open: impl FnOnce() -> T) -> T {
        let mut next = self.next.lock().unwrap_or_else(|e| e.into_inner());
        while *next < w {
            next = self.changed.wait(next).unwrap_or_else(|e| e.into_inner());
        }
        let out = open();
        *next = w + 1;
        self.changed.notify_all();
        out
    }
}

#[allow(clippy::too_many_arguments)]
fn run_worker(
    w: usize,
    core: Option<usize>,
    cfg: &EngineConfig,
    shared: Shared,
    sync: NeighborSync,
    counters: Arc<WorkerCounters>,
    done: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
    started: Instant,
    ready: mpsc::Sender<(usize, Result<Vec<LinkInfo>, String>)>,
) {
    if let Some(c) = core {
        // Pinning can fail in a restricted cpuset; the worker still runs.
        let _ = core_affinity::set_for_current(core_affinity::CoreId { id: c });
    }
    let n = cfg.engine.workers;
    let opened = shared.open_turn.in_turn(w, || {
        cfg.ports
            .iter()
            .map(|p| ports::open(p, w, n))
            .collect::<Result<Vec<_>, _>>()
    });
    let opened = match opened {
        Ok(o) => o,
        Err(e) => {
            let _ = ready.send((w, Err(e.to_string())));
            return;
        }
    };
    let Shared {
        tables,
        nat,
        wg,
        classify,
        lb,
        punt,
        wan,
        handoff,
        open_turn: _,
    } = shared;
    let pool = ports::worker_pool(cfg);
    let (mut generation, fib) = tables.load();
    let mut pipeline = Pipeline::new(cfg, fib, opened, pool, sync, counters.clone());
    tables.ack(w, generation);
    let fib6 = &tables.fib6;
    let (mut fib6_generation, f6) = fib6.load();
    if let Some(f6) = f6 {
        pipeline.set_fib6(f6);
    }
    fib6.ack(w, fib6_generation);
    if let Some(h) = handoff {
        pipeline.set_handoff(h);
    }
    let (mut nat_generation, plan) = nat.load();
    if let Err(e) = pipeline.set_nat(plan.as_deref(), w) {
        let _ = ready.send((w, Err(format!("nat: {e}"))));
        return;
    }
    nat.ack(w, nat_generation);
    let (mut wg_generation, plan) = wg.load();
    if let Some(plan) = plan {
        let now = started.elapsed().as_nanos() as u64;
        if let Err(e) = pipeline.apply_wg_plan(&plan, w, n, now) {
            let _ = ready.send((w, Err(format!("wireguard: {e}"))));
            return;
        }
    }
    wg.ack(w, wg_generation);
    let (mut model_generation, push, model) = classify.load();
    if let Some(c) = &cfg.classify {
        pipeline.enable_classify(c, model, push);
    }
    classify.ack(w, model_generation);
    if let Some(p) = &cfg.punt {
        pipeline.set_punt(punt, p.rate_pps, p.burst, w == 0);
    }
    // The worker owning the path tunnels' peers (each has one) runs WAN.
    if let Some(ws) = wan.as_deref() {
        if w == crate::wg::owner_worker(crate::wg::PeerId(0), n) {
            if let Err(e) = pipeline.enable_wan(ws, w) {
                let _ = ready.send((w, Err(format!("wan: {e}"))));
                return;
            }
        }
    }
    let (mut lb_generation, plan) = lb.plans.load();
    pipeline.set_lb(plan, w, n);
    lb.plans.ack(w, lb_generation);
    let mut flow_query = classify.query_seq();
    let mut nat_query = nat.query_seq();
    let _ = ready.send((w, Ok(pipeline.links().to_vec())));
    drop(ready);

    let mut rx = Batch::new();
    // Ports that can wake us; only when every port can is sleeping in poll(2) safe.
    let fds: Vec<libc::pollfd> = pipeline
        .ports()
        .iter()
        .filter_map(|p| p.wait_fd())
        .map(|fd| libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        })
        .collect();
    let mut wait_fds = if fds.len() == pipeline.ports().len() {
        fds
    } else {
        Vec::new()
    };
    // The kernel's frames on the punt TAPs wake their reader.
    if !wait_fds.is_empty() {
        for fd in pipeline.punt_wait_fds() {
            wait_fds.push(libc::pollfd {
                fd,
                events: libc::POLLIN,
                revents: 0,
            });
        }
    }
    // Other workers' handoffs wake a sleeping worker through its eventfd.
    if let (false, Some(waker)) = (wait_fds.is_empty(), pipeline.handoff_waker()) {
        wait_fds.push(libc::pollfd {
            fd: waker.fd(),
            events: libc::POLLIN,
            revents: 0,
        });
    }
    let mut idle_polls: u32 = 0;
    let mut last_driver_stats = 0u64;
    let adaptive = cfg.engine.poll == PollMode::Adaptive;
    while !stop.load(Ordering::Relaxed) {
        // Between two batches: adopt a newer table generation if there is one.
        if tables.generation() != generation {
            let (g, fib) = tables.load();
            pipeline.set_fib(fib);
            generation = g;
            tables.ack(w, g);
        }
        if fib6.generation() != fib6_generation {
            let (g, f6) = fib6.load();
            if let Some(f6) = f6 {
                pipeline.set_fib6(f6);
            }
            fib6_generation = g;
            fib6.ack(w, g);
        }
        if nat.generation() != nat_generation {
            let (g, plan) = nat.load();
            if let Err(e) = pipeline.set_nat(plan.as_deref(), w) {
                // The link thread validated it; keep the running NAT.
                eprintln!("patronus-engine: worker {w}: nat generation {g}: {e}");
            }
            nat_generation = g;
            nat.ack(w, g);
        }
        if wg.generation() != wg_generation {
            let (g, plan) = wg.load();
            if let Some(plan) = plan {
                let now = started.elapsed().as_nanos() as u64;
                if let Err(e) = pipeline.apply_wg_plan(&plan, w, n, now) {
                    // The link thread validated it; keep the running tunnels.
                    eprintln!("patronus-engine: worker {w}: wireguard generation {g}: {e}");
                }
            }
            wg_generation = g;
            wg.ack(w, g);
        }
        if classify.generation() != model_generation {
            let (g, push, model) = classify.load();
            pipeline.set_model(model, push);
            model_generation = g;
            classify.ack(w, g);
        }
        if lb.plans.generation() != lb_generation {
            let (g, plan) = lb.plans.load();
            pipeline.set_lb(plan, w, n);
            lb_generation = g;
            lb.plans.ack(w, g);
        }
        if classify.query_seq() != flow_query {
            flow_query = classify.query_seq();
            answer_flow_query(&pipeline, &classify, w, started.elapsed().as_nanos() as u64);
        }
        if nat.query_seq() != nat_query {
            nat_query = nat.query_seq();
            answer_session_query(&pipeline, &nat, w, started.elapsed().as_nanos() as u64);
        }
        let now = started.elapsed().as_nanos() as u64;
        let got = pipeline.poll(&mut rx, now);
        if got > 0 {
            // Pipeline latency of this burst: `now` was read just before the
            // poll, so timing costs one clock read per poll that received
            // packets (idle polls are never timed).
            let end = started.elapsed().as_nanos() as u64;
            counters.poll_latency_ns.record(end.saturating_sub(now));
            idle_polls = 0;
            bump(&counters.busy_polls, 1);
            if counters.first_rx_ns.load(Ordering::Relaxed) == 0 {
                counters.first_rx_ns.store(now.max(1), Ordering::Relaxed);
            }
            counters.last_rx_ns.store(now.max(1), Ordering::Relaxed);
        } else {
            idle_polls = idle_polls.saturating_add(1);
            bump(&counters.idle_polls, 1);
            if pipeline.inputs_exhausted() && pipeline.pending_len() == 0 {
                done.store(true, Ordering::Release);
            }
            if adaptive {
                // Only a sleep in poll(2) needs waking (the others are short).
                let waker = pipeline.handoff_waker().filter(|_| idle_polls > 1024);
                if let Some(wk) = waker {
                    wk.set_sleeping(true);
                }
                // Frames handed over since the last poll: no sleep.
                if !pipeline.handoff_pending() {
                    back_off(idle_polls, &mut wait_fds);
                }
                if let Some(wk) = waker {
                    wk.set_sleeping(false);
                    wk.clear();
                }
            } else {
                std::hint::spin_loop();
            }
        }
        if now.wrapping_sub(last_driver_stats) >= DRIVER_STATS_INTERVAL_NS {
            last_driver_stats = now;
            publish_driver_stats(&pipeline, &counters);
        }
    }
    pipeline.flush_ports();
    publish_driver_stats(&pipeline, &counters);
}

/// Idle back-off of the adaptive mode: spin, then yield, then sleep — in
/// poll(2) on the ports' descriptors when they all have one (woken as soon
/// as the kernel hands over frames), else in short growing sleeps.
fn back_off(idle_polls: u32, fds: &mut [libc::pollfd]) {
    match idle_polls {
        0..=256 => std::hint::spin_loop(),
        257..=1024 => std::thread::yield_now(),
        _ if !fds.is_empty() => {
            // SAFETY: `fds` is a valid, exclusively borrowed array of pollfd.
            unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, 1) };
        }
        n => {
            let us = ((n - 1024) as u64).min(1000);
            std::thread::sleep(Duration::from_micros(us.max(10)));
        }
    }
}

/// Answers the link thread's session query if it is for worker `w`.
fn answer_session_query(p: &Pipeline, nat: &NatSlot, w: usize, now: u64) {
    let Some((seq, q)) = nat.query_for(w) else {
        return;
    };
    let answer = match p.nat() {
        Some(n) => {
            let (sessions, next) = n.session_page(q.inside, q.cursor, q.limit, now);
            SessionAnswer {
                seq,
                sessions,
                next,
                nat_enabled: true,
            }
        }
        None => SessionAnswer {
            seq,
            ..Default::default()
        },
    };
    nat.answer(w, answer);
}

/// Answers the link thread's flow query if it is for worker `w`.
fn answer_flow_query(p: &Pipeline, slot: &ClassifySlot, w: usize, now: u64) {
    let Some((seq, q)) = slot.query_for(w) else {
        return;
    };
    let answer = match p.classifier() {
        Some(c) => {
            let (flows, next) = c.page(w as u32, &q.filter, q.cursor, q.limit, now);
            FlowAnswer {
                flows,
                next,
                enabled: true,
            }
        }
        None => FlowAnswer::default(),
    };
    slot.answer(w, seq, answer);
}

fn publish_driver_stats(p: &Pipeline, c: &WorkerCounters) {
    for (i, port) in p.ports().iter().enumerate() {
        let s = port.stats();
        c.ports[i].rx_missed.store(s.rx_missed, Ordering::Relaxed);
        c.ports[i].rx_errors.store(s.rx_errors, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workers_open_their_queues_in_worker_order_whatever_order_they_start_in() {
        let turn = Arc::new(OpenTurn::default());
        let order = Arc::new(std::sync::Mutex::new(Vec::new()));
        // Started last to first, each after a pause: without the turn the
        // order would be 3, 2, 1, 0.
        let threads: Vec<_> = (0..4)
            .rev()
            .map(|w| {
                let (turn, order) = (turn.clone(), order.clone());
                std::thread::sleep(Duration::from_millis(5));
                std::thread::spawn(move || turn.in_turn(w, || order.lock().unwrap().push(w)))
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(*order.lock().unwrap(), vec![0, 1, 2, 3]);
    }
}
