//! `patronus-perf SCENARIO`: runs a perf scenario side by side with its
//! baseline, prints a table and optionally writes a JSON report.

mod control;
mod engine;
mod generator;
mod netns;
mod report;
mod scenarios;
mod sysstat;

use std::path::PathBuf;
use std::time::Duration;

use anyhow::bail;
use clap::Parser;

#[derive(Parser, Debug)]
#[command(about = "Patronus perf harness")]
struct Args {
    /// fwd-mem | fwd-veth | fwd-dpdk-null | route-push | nat-mem | nat-veth | lb-mem | lb-veth |
    /// wg-mem | wg-veth | classify-pcap | ml-infer | bgp-load | wan-fec-cost | wan-fec-loss |
    /// wan-veth
    scenario: String,
    /// Write the report as JSON to FILE.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Measured seconds per system (after the warm-up).
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Warm-up seconds before each measured window.
    #[arg(long, default_value_t = 2.0)]
    warmup: f64,
    /// Engine binary (default: target/release/patronus-engine, built if missing).
    #[arg(long)]
    engine: Option<PathBuf>,
    /// Core of the traffic generator.
    #[arg(long, default_value_t = 0)]
    gen_core: usize,
    /// Core of the router (engine worker); default: the other core.
    #[arg(long)]
    router_core: Option<usize>,
    /// Nice value for the generator thread and the engine, and of this
    /// process's scheduler autogroup while the scenario runs (e.g. -10 on a
    /// machine shared with other work).
    #[arg(long, default_value_t = 0, allow_negative_numbers = true)]
    nice: i32,
    /// fwd-veth: add a linux-kernel-rps row (RPS moves R's forwarding to the
    /// router core; on a shared machine that core's softirq competes with
    /// other load, so the row is noisy).
    #[arg(long)]
    rps: bool,
    /// fwd-veth, fwd-dpdk-null, nat-mem, nat-veth, lb-mem, lb-veth, bgp-load: interleaved rounds (each system's median row and the median
    /// of the same-round ratios are reported); wan-veth: rounds of all FEC settings, counts
    /// pooled over the rounds.
    #[arg(long, default_value_t = 1)]
    rounds: usize,
    /// nat-veth, wg-veth, lb-veth: parallel iperf3 streams per test.
    #[arg(long, default_value_t = 4)]
    streams: usize,
    /// lb-veth: client threads of the short-connections test (each opens,
    /// uses and closes one TCP connection to the VIP after another).
    #[arg(long, default_value_t = 4)]
    conn_threads: usize,
    /// route-push: route changes per row.
    #[arg(long, default_value_t = 200)]
    flips: usize,
    /// route-push: extra routes of the large-table row (at most 2^20).
    #[arg(long, default_value_t = 1_000_000)]
    routes: usize,
    /// bgp-load: IPv4 prefixes the BIRD feeder sends to each receiver.
    #[arg(long, default_value_t = 1_000_000)]
    prefixes: usize,
    /// wan-veth: datagrams per second of the measured UDP flow.
    #[arg(long, default_value_t = 2000)]
    wan_pps: u32,
    /// wan-veth: UDP payload bytes per datagram.
    #[arg(long, default_value_t = 1000)]
    wan_payload: u32,
    /// wan-veth: carrier loss levels in percent, one row group each.
    #[arg(long, value_delimiter = ',', default_value = "5,1,10")]
    wan_loss: Vec<u8>,
}

fn main() {
    if let Err(e) = run() {
        eprintln!("patronus-perf: {e:#}");
        let code = if netns::stop_requested() { 130 } else { 1 };
        std::process::exit(code);
    }
}

fn run() -> anyhow::Result<()> {
    let args = Args::parse();
    if !(args.duration > 0.0 && args.warmup >= 0.0) {
        bail!("--duration must be > 0 and --warmup >= 0");
    }
    netns::install_signal_flag()?;
    let workdir = scenarios::Workdir::create()?;
    let ncores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let opts = scenarios::Options {
        duration: Duration::from_secs_f64(args.duration),
        warmup: Duration::from_secs_f64(args.warmup),
        engine: args.engine.clone(),
        gen_core: args.gen_core,
        router_core: args
            .router_core
            .unwrap_or(if args.gen_core == 0 && ncores > 1 {
                1
            } else {
                0
            }),
        nice: args.nice,
        rps: args.rps,
        rounds: args.rounds,
        workdir: workdir.path().to_path_buf(),
    };
    let autogroup = sysstat::AutogroupNice::set(args.nice);
    let result = match args.scenario.as_str() {
        "fwd-mem" => scenarios::fwd_mem::run(&opts),
        "fwd-veth" => scenarios::fwd_veth::run(&opts),
        "fwd-dpdk-null" => scenarios::fwd_dpdk_null::run(&opts),
        "route-push" => scenarios::route_push::run(&opts, args.flips, args.routes),
        "nat-mem" => scenarios::nat_mem::run(&opts),
        "nat-veth" => scenarios::nat_veth::run(&opts, args.streams),
        "lb-mem" => scenarios::lb_mem::run(&opts),
        "lb-veth" => scenarios::lb_veth::run(&opts, args.streams, args.conn_threads),
        "wg-veth" => scenarios::wg_veth::run(&opts, args.streams),
        "wg-mem" => scenarios::wg_mem::run(&opts),
        "classify-pcap" => scenarios::classify_pcap::run(&opts),
        "ml-infer" => scenarios::ml_infer::run(&opts),
        "bgp-load" => scenarios::bgp_load::run(&opts, args.prefixes),
        "wan-fec-cost" => scenarios::wan_fec::run_cost(&opts),
        "wan-fec-loss" => scenarios::wan_fec::run_loss(&opts),
        "wan-veth" => scenarios::wan_veth::run(
            &opts,
            &scenarios::wan_veth::FlowOptions {
                pps: args.wan_pps,
                payload: args.wan_payload,
                loss_pct: args.wan_loss.clone(),
            },
        ),
        other => bail!(
            "unknown scenario {other:?} (fwd-mem, fwd-veth, fwd-dpdk-null, route-push, nat-mem, nat-veth, lb-mem, lb-veth, wg-mem, wg-veth, classify-pcap, ml-infer, bgp-load, wan-fec-cost, wan-fec-loss, wan-veth)"
        ),
    };
    drop(autogroup);
    let left = netns::leftover_namespaces();
    if !left.is_empty() {
        eprintln!("warning: namespaces left behind: {left:?}");
    }
    let report = result?;
    report.print();
    if let Some(path) = &args.json {
        report.write_json(path)?;
        println!("wrote {}", path.display());
    }
    Ok(())
}
