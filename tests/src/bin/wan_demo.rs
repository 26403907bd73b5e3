//! `wan-demo`: the WAN part of `scripts/demo.sh` (root). Two sites, each a
//! Patronus engine with a fibre and an LTE uplink (one WireGuard tunnel per
//! uplink pair: a *path*), hosts behind them, Linux routers as carriers
//! (the same topology as `tests/tests/wan.rs`, [`WanTopology`]). A control
//! process reads site A's counters, so the paths and policy choices are
//! shown with `patronusctl wan ...`. A webrtc call (STUN then RTP) and a
//! bulk transfer run side by side; fibre turns lossy (the call moves to
//! LTE, the bulk transfer stays on the cheapest path), then fibre's link
//! goes down (everything fails over to LTE). The receivers report loss and
//! the longest silence. Everything is removed on exit.

use std::time::{Duration, Instant};

use patronus_e2e::control::Control;
use patronus_e2e::seq_udp::{FlowKind, FlowReceiver, FlowSender, FlowSpec, Received};
use patronus_e2e::wan_topology::{wan, PolicyOpts, Site, WanOptions, WanPath, WanTopology, HB};
use patronus_e2e::EngineStats;

/// Longest wait for the engines to do something by themselves.
const WAIT: Duration = Duration::from_secs(20);

fn main() {
    println!(
        "==> WAN: sites A and B, each with a fibre and an LTE uplink (a WireGuard tunnel per path)"
    );
    println!(
        "    policies: voice (class webrtc): loss < 1 %, RTT < 150 ms, jitter < 30 ms, LTE last;"
    );
    println!("    bulk (unknown): cheapest path, adaptive FEC 10+4; default: best score");
    let mut t = WanTopology::build(WanOptions {
        control_a: true,
        bulk: PolicyOpts {
            fec: "adaptive",
            fec_k: 10,
            fec_m: 4,
            // 10 datagrams at 200 pps take 45 ms: whole groups of k = 10.
            fec_delay_ms: 60,
            ..PolicyOpts::default()
        },
        ..WanOptions::default()
    });
    t.wait_paths_alive(WAIT);
    let control_dir = t.dir().join("control");
    std::fs::create_dir_all(&control_dir).expect("control dir");
    let port = 20000 + ((std::process::id() * 2 + 7919) % 20000) as u16;
    let c = Control::start(&control_dir, &t.runtime_dir(), port, "control");
    show(&c, &["wan", "paths"]);

    let (voice_port, bulk_port) = (5004, 5005);
    let voice_rx = FlowReceiver::start(&t.hb, voice_port, t.dir());
    let bulk_rx = FlowReceiver::start(&t.hb, bulk_port, t.dir());
    let flow = |kind, pps: u32, secs: u32, size| FlowSpec {
        kind,
        pps,
        count: pps * secs,
        size,
        sport: 0,
    };
    println!(
        "==> a webrtc call (100 pps) and a bulk transfer (200 pps) from A's host to B's, 24 s"
    );
    let send = |port, spec| FlowSender::start(&t.ha, HB, port, spec, t.dir());
    let voice = send(voice_port, flow(FlowKind::Webrtc, 100, 24, 160));
    let bulk = send(bulk_port, flow(FlowKind::Bulk, 200, 24, 800));
    wait_for(&mut t, "both flows on fibre", |s| {
        on(s, "voice", WanPath::Fibre) >= 100 && on(s, "bulk", WanPath::Fibre) >= 100
    });
    show(&c, &["wan", "policies"]);

    println!("==> fibre's carrier now drops 10 % of packets (nftables numgen)");
    t.carrier(WanPath::Fibre).set_loss(10);
    let moved = wait_for(&mut t, "the call on lte", |s| {
        on(s, "voice", WanPath::Lte) >= 100
    });
    println!(
        "    the call moved to lte (voice packets: fibre {}, lte {}); bulk stays on fibre, the cheapest \
         (fibre {}, lte {}), its FEC switches on with the measured loss",
        on(&moved, "voice", WanPath::Fibre),
        on(&moved, "voice", WanPath::Lte),
        on(&moved, "bulk", WanPath::Fibre),
        on(&moved, "bulk", WanPath::Lte)
    );
    show(&c, &["wan", "paths"]);

    println!("==> fibre's link at site A goes down");
    let down_at = Instant::now();
    t.carrier(WanPath::Fibre).link_down(Site::A);
    let dead = wait_for(&mut t, "fibre dead, bulk on lte", |s| {
        wan(s, "path.fibre.state") == 2 && on(s, "bulk", WanPath::Lte) > 0
    });
    println!(
        "    fibre declared dead and bulk moved {:.2} s after the link went down (bulk packets on lte: {})",
        down_at.elapsed().as_secs_f64(),
        on(&dead, "bulk", WanPath::Lte)
    );
    show(&c, &["wan", "paths"]);

    let voice_sent = voice.wait(Duration::from_secs(60));
    let bulk_sent = bulk.wait(Duration::from_secs(60));
    let (v, b) = (voice_rx.finish(), bulk_rx.finish());
    report("webrtc call", voice_sent, &v);
    report("bulk transfer", bulk_sent, &b);
    show(&c, &["wan", "policies"]);
    println!("==> WAN demo done");
}

/// Packets a policy sent on a path (site A).
fn on(s: &EngineStats, policy: &str, p: WanPath) -> u64 {
    wan(s, &format!("policy.{policy}.path.{}.packets", p.name()))
}

/// Polls site A's counters until `cond` holds (exits the demo otherwise).
fn wait_for(t: &mut WanTopology, what: &str, cond: impl Fn(&EngineStats) -> bool) -> EngineStats {
    let deadline = Instant::now() + WAIT;
    loop {
        let s = t.stats(Site::A);
        if cond(&s) {
            return s;
        }
        if Instant::now() > deadline {
            eprintln!(
                "{what}: not within {WAIT:?}; site A's \"wan\": {}",
                s.json["wan"]
            );
            std::process::exit(1);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Runs `patronusctl ARGS` and prints the command and its output. The
/// engine writes the counters the control reads every 100 ms: wait that
/// long first, so the table shows what the engine's own stats just did.
fn show(c: &Control, args: &[&str]) {
    std::thread::sleep(Duration::from_millis(300));
    println!("$ patronusctl {}", args.join(" "));
    print!("{}", c.ctl_ok(args));
}

fn report(what: &str, sent: u64, r: &Received) {
    println!(
        "    {what}: {sent} sent, {} received ({:.2} % lost, {} duplicates, {} corrupt), longest silence {:.3} s",
        r.received,
        r.loss_pct(sent),
        r.duplicates,
        r.corrupt + r.bad,
        r.max_gap_s
    );
}
