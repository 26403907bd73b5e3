//! `patronus-engine --config FILE`: runs the data plane until SIGINT/SIGTERM,
//! `--duration`, or the end of every finite input; prints counters at exit
//! (and on SIGUSR1 / every `stats_interval_secs`), optionally as JSON.
//! SIGHUP re-reads the file and publishes its routes as a new FIB
//! generation that the workers adopt between two batches (no packet is
//! lost); other sections need a restart.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use patronus_engine::config::{EngineConfig, PortDriver};
use patronus_engine::fib::Fib;
use patronus_engine::stats::Snapshot;
use patronus_engine::worker::Engine;

#[derive(Parser, Debug)]
#[command(name = "patronus-engine", about = "Patronus user-space packet engine")]
struct Args {
    /// Configuration file (TOML).
    #[arg(long, short)]
    config: PathBuf,
    /// Only validate the configuration.
    #[arg(long)]
    check: bool,
    /// Write counters as JSON here (at exit, on SIGUSR1, and periodically).
    #[arg(long)]
    stats_json: Option<PathBuf>,
    /// Stop after this many seconds.
    #[arg(long)]
    duration: Option<f64>,
}

fn write_json(path: &Option<PathBuf>, snap: &Snapshot) {
    if let Some(p) = path {
        // Write then rename so readers never see half a file.
        let tmp = p.with_extension("tmp");
        if std::fs::write(&tmp, snap.json())
            .and_then(|_| std::fs::rename(&tmp, p))
            .is_err()
        {
            eprintln!("patronus-engine: cannot write {}", p.display());
        }
    }
}

/// Everything but the routes: what a reload must leave unchanged.
fn fixed_part(c: &EngineConfig) -> String {
    format!(
        "{:?}",
        (
            &c.engine,
            &c.ports,
            &c.interfaces,
            &c.neighbors,
            &c.ipv6.interfaces,
            &c.ipv6.neighbors,
            &c.arp,
            &c.icmp
        )
    )
}

/// SIGHUP: re-reads the file and publishes its routes as a new generation.
fn reload_routes(path: &std::path::Path, running: &EngineConfig, engine: &Engine) {
    if running.control.is_some() {
        // The link thread builds each FIB from the file's routes plus the
        // pushed ones; a reload here would drop the pushed routes.
        return eprintln!(
            "patronus-engine: reload refused: routes come from the control process ([control] is set); restart to change the file's routes"
        );
    }
    let new = match EngineConfig::load(path) {
        Ok(c) => c,
        Err(e) => return eprintln!("patronus-engine: reload refused: {}: {e}", path.display()),
    };
    if fixed_part(&new) != fixed_part(running) {
        return eprintln!(
            "patronus-engine: reload refused: only [[route]] changes apply live; [engine], ports, interfaces, neighbors, [arp] and [icmp] need a restart"
        );
    }
    let started = Instant::now();
    match Fib::build(&new) {
        Ok(fib) => {
            let routes = fib.len();
            let g = engine.tables.publish(Arc::new(fib));
            eprintln!(
                "patronus-engine: routes reloaded: generation {g}, {routes} routes, built in {:.1} ms",
                started.elapsed().as_secs_f64() * 1e3
            );
        }
        Err(e) => eprintln!("patronus-engine: reload refused: {e}"),
    }
    match patronus_engine::fib::fib6::Fib6::build(&new) {
        Ok(f) => {
            let routes = f.routes();
            let g = engine.tables.fib6.publish(Some(f));
            eprintln!("patronus-engine: IPv6 routes reloaded: generation {g}, {routes} routes");
        }
        Err(e) => eprintln!("patronus-engine: IPv6 reload refused: {e}"),
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    let cfg = match EngineConfig::load(&args.config) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("patronus-engine: {}: {e}", args.config.display());
            return ExitCode::from(2);
        }
    };
    let fib = match Fib::build(&cfg) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("patronus-engine: {}: {e}", args.config.display());
            return ExitCode::from(2);
        }
    };
    if args.check {
        println!("config OK");
        return ExitCode::SUCCESS;
    }
    // Inputs are finite when every port that produces traffic ends.
    let finite = cfg.ports.iter().all(|p| match p.driver {
        PortDriver::Afpacket | PortDriver::Afxdp | PortDriver::Dpdk => false,
        PortDriver::Pcap => true,
        PortDriver::Mem => p.generator.as_ref().is_none_or(|g| g.count > 0),
    }) && cfg
        .ports
        .iter()
        .any(|p| p.input.is_some() || p.generator.is_some());
    let names: Vec<String> = cfg.ports.iter().map(|p| p.name.clone()).collect();
    let interval = cfg.engine.stats_interval_secs;

    let stop = Arc::new(AtomicBool::new(false));
    let usr1 = Arc::new(AtomicBool::new(false));
    let hup = Arc::new(AtomicBool::new(false));
    let _ = signal_hook::flag::register(signal_hook::consts::SIGHUP, hup.clone());
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        if let Err(e) = signal_hook::flag::register(sig, stop.clone()) {
            eprintln!("patronus-engine: cannot handle signal {sig}: {e}");
            return ExitCode::from(1);
        }
    }
    let _ = signal_hook::flag::register(signal_hook::consts::SIGUSR1, usr1.clone());

    let cfg = Arc::new(cfg);
    let mut engine = match Engine::start(cfg.clone(), Arc::new(fib)) {
        Ok(e) => e,
        Err(e) => {
            eprintln!("patronus-engine: {e}");
            return ExitCode::from(1);
        }
    };
    eprintln!(
        "patronus-engine: {} worker(s), poll {:?}, ports: {}",
        engine.workers.len(),
        cfg.engine.poll,
        cfg.ports
            .iter()
            .zip(&engine.links)
            .map(|(p, l)| format!(
                "{}({:?} {} mtu {} {})",
                p.name,
                p.driver,
                l.mac
                    .iter()
                    .map(|b| format!("{b:02x}"))
                    .collect::<Vec<_>>()
                    .join(":"),
                l.mtu,
                if l.up { "up" } else { "down" }
            ))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let link_stop = Arc::new(AtomicBool::new(false));
    let link = match &cfg.control {
        None => None,
        Some(c) => match patronus_engine::control_link::spawn(
            cfg.clone(),
            c.runtime_dir.clone(),
            engine.tables.clone(),
            engine.workers.iter().map(|w| w.counters.clone()).collect(),
            engine.nat.clone(),
            engine.wg.clone(),
            engine.classify.clone(),
            engine.lb.clone(),
            engine.punt.clone(),
            engine.wan.clone(),
            link_stop.clone(),
        ) {
            Ok(t) => Some(t),
            Err(e) => {
                eprintln!(
                    "patronus-engine: control link ({}): {e}",
                    c.runtime_dir.display()
                );
                return ExitCode::from(1);
            }
        },
    };
    let start = Instant::now();
    let mut last_print = Instant::now();
    loop {
        std::thread::sleep(Duration::from_millis(20));
        if stop.load(Ordering::Relaxed) {
            break;
        }
        if args
            .duration
            .is_some_and(|d| start.elapsed().as_secs_f64() >= d)
        {
            break;
        }
        if finite && engine.all_done() {
            break;
        }
        if hup.swap(false, Ordering::Relaxed) {
            reload_routes(&args.config, &cfg, &engine);
        }
        let periodic = interval > 0 && last_print.elapsed() >= Duration::from_secs(interval);
        if usr1.swap(false, Ordering::Relaxed) || periodic {
            last_print = Instant::now();
            let snap = Snapshot::take(&engine, &names, false);
            println!("{}", snap.table());
            write_json(&args.stats_json, &snap);
        }
    }
    link_stop.store(true, Ordering::Relaxed);
    if let Some(t) = link {
        let _ = t.join();
    }
    engine.shutdown();
    let snap = Snapshot::take(&engine, &names, finite);
    println!("{}", snap.table());
    write_json(&args.stats_json, &snap);
    ExitCode::SUCCESS
}
