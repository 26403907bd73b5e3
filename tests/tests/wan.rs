//! WAN path steering end to end (issue 10): two sites, each an engine with
//! two uplinks (fibre over carrier cX, lte over cY), one WireGuard tunnel
//! per uplink, hosts behind them sending sequence-numbered UDP flows
//! (`tests/tools/seq_udp.py`). Carriers make a path lossy (nftables
//! `numgen random`) or kill it (link down). Root, one at a time:
//! `cargo build --release -p patronus-engine && cargo test --release -p
//! patronus-e2e --test wan -- --test-threads=1`.

use std::time::{Duration, Instant};

use patronus_e2e::seq_udp::{FlowKind, FlowReceiver, FlowSender, FlowSpec, Received};
use patronus_e2e::wan_topology::{
    wan, wan_opt, wg, PolicyOpts, Site, WanOptions, WanPath, WanTopology, HA, HA_LTE, HB, HB_LTE,
};
use patronus_e2e::EngineStats;

/// Longest wait for something the engines do by themselves (tunnels,
/// probes, a flow's move): a deadline for waiting, not a measured bound.
const WAIT: Duration = Duration::from_secs(15);

/// Builds `opts` and waits until both sites see both paths alive.
fn up(opts: WanOptions) -> WanTopology {
    let mut t = WanTopology::build(opts);
    t.wait_paths_alive(WAIT);
    t
}

/// Polls `site`'s counters until `cond` holds; panics with the last
/// snapshot's WAN counters (and `what`) otherwise.
fn wait_for(
    t: &mut WanTopology,
    site: Site,
    what: &str,
    cond: impl Fn(&EngineStats) -> bool,
) -> EngineStats {
    let deadline = Instant::now() + WAIT;
    loop {
        let s = t.stats(site);
        if cond(&s) {
            return s;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: not within {WAIT:?}; engine {site:?} \"wan\" = {}",
            s.json["wan"]
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn policy_packets(s: &EngineStats, policy: &str, p: WanPath) -> u64 {
    wan(s, &format!("policy.{policy}.path.{}.packets", p.name()))
}

fn path_counter(s: &EngineStats, p: WanPath, leaf: &str) -> u64 {
    wan(s, &format!("path.{}.{leaf}", p.name()))
}

fn spec(kind: FlowKind, pps: u32, secs: u32, size: u32) -> FlowSpec {
    FlowSpec {
        kind,
        pps,
        count: pps * secs,
        size,
        sport: 0,
    }
}

/// Runs one flow from hA to hB to the end; returns (sent, received).
fn flow(t: &WanTopology, port: u16, spec: FlowSpec) -> (u64, Received) {
    let rx = FlowReceiver::start(&t.hb, port, t.dir());
    let tx = FlowSender::start(&t.ha, HB, port, spec, t.dir());
    let sent = tx.wait(Duration::from_secs(u64::from(spec.count / spec.pps) + 10));
    (sent, rx.finish())
}

/// Without `[wan]`: both WireGuard tunnels carry traffic between the
/// sites (the far LAN through fibre, the far `*_LTE` prefix through lte),
/// and each only its own.
#[test]
fn plain_wireguard_both_tunnels() {
    let mut t = WanTopology::build(WanOptions {
        wan: false,
        ..WanOptions::default()
    });
    assert!(
        WanTopology::ping_until(&t.ha, None, HB, WAIT),
        "{HA} cannot reach {HB} through wg-fibre"
    );
    let fibre = format!(
        "{}.{}.tx_packets",
        WanPath::Fibre.tunnel(),
        t.peer_label(Site::A, WanPath::Fibre)
    );
    let lte = format!(
        "{}.{}.tx_packets",
        WanPath::Lte.tunnel(),
        t.peer_label(Site::A, WanPath::Lte)
    );
    // Workers publish tunnel counters every 10 ms: a ping may be quicker.
    let s = wait_for(&mut t, Site::A, "a packet sent into wg-fibre", |s| {
        wg(s, &fibre) > 0
    });
    let l0 = wg(&s, &lte);
    assert!(
        WanTopology::ping_until(&t.ha, Some(HA_LTE), HB_LTE, WAIT),
        "{HA_LTE} cannot reach {HB_LTE} through wg-lte"
    );
    wait_for(&mut t, Site::A, "the lte ping sent into wg-lte", |s| {
        wg(s, &lte) > l0
    });
    // Fibre's tunnel may have sent a keepalive meanwhile but no ping.
    let s = t.stats(Site::A);
    let before = wg(&s, &fibre);
    t.carrier(WanPath::Fibre).link_down(Site::A);
    assert!(
        WanTopology::ping_until(&t.ha, Some(HA_LTE), HB_LTE, WAIT),
        "lte stopped working when fibre's link went down"
    );
    assert!(
        !WanTopology::ping_until(&t.ha, None, HB, Duration::from_secs(2)),
        "{HB} answered with fibre's link down: not through wg-fibre?"
    );
    wait_for(&mut t, Site::A, "wg-fibre tried again while down", |s| {
        wg(s, &fibre) > before
    });
}

/// Both engines see both paths alive, with round-trip time, jitter and
/// loss gauges, their probes answered, and the far side's probes
/// reflected.
#[test]
fn paths_come_up() {
    let mut t = up(WanOptions::default());
    for site in [Site::A, Site::B] {
        // Two seconds of probes both ways: the window then holds 20 (the
        // first, sent while both ends start their handshakes at once, may
        // be lost).
        let s = wait_for(&mut t, site, "probes reflected on both paths", |s| {
            WanPath::BOTH.iter().all(|p| {
                path_counter(s, *p, "probes_reflected") >= 20
                    && path_counter(s, *p, "probes_sent") >= 20
            })
        });
        for p in WanPath::BOTH {
            let c = |leaf: &str| path_counter(&s, p, leaf);
            let ctx = format!("site {site:?} path {}: {}", p.name(), s.json["wan"]);
            assert_eq!(c("state"), 1, "{ctx}");
            assert!(c("rtt_us") > 0, "no round-trip time: {ctx}");
            assert!(c("rtt_p95_us") > 0, "{ctx}");
            // Gauges that exist (their values depend on the moment).
            c("jitter_us");
            c("loss_ppm");
            assert!(c("probes_sent") > 0, "{ctx}");
            assert!(c("probes_replied") > 0, "{ctx}");
            assert!(c("probes_replied") <= c("probes_sent"), "{ctx}");
            assert!(
                c("transitions") >= 1,
                "came alive without a transition: {ctx}"
            );
            // No loss configured: at most one probe of 20 (see above) lost.
            assert!(c("loss_ppm") < 100_000, "{ctx}");
        }
    }
}

/// With 10 % loss on the fibre carrier, a webrtc flow (voice policy: loss
/// under 1 %, LTE last) leaves fibre for lte, while a bulk flow (cheapest
/// path) stays on fibre.
///
/// Voice runs in mode "preferred" here (rank, then score): in
/// "best-score" mode the engine orders compliant paths by score first and
/// takes the preference order only to break exact ties, and the two
/// namespace paths' scores differ by noise alone (RTT 0.6–0.8 ms each
/// way round), so the flow would start on either path at random.
#[test]
fn webrtc_leaves_lossy_fibre_bulk_stays() {
    let mut t = up(WanOptions {
        voice: PolicyOpts {
            mode: Some("preferred"),
            ..PolicyOpts::default()
        },
        ..WanOptions::default()
    });
    let (voice_port, bulk_port) = (5004, 5005);
    let voice_rx = FlowReceiver::start(&t.hb, voice_port, t.dir());
    let bulk_rx = FlowReceiver::start(&t.hb, bulk_port, t.dir());
    let voice = FlowSender::start(
        &t.ha,
        HB,
        voice_port,
        spec(FlowKind::Webrtc, 100, 20, 160),
        t.dir(),
    );
    let bulk = FlowSender::start(
        &t.ha,
        HB,
        bulk_port,
        spec(FlowKind::Bulk, 100, 20, 800),
        t.dir(),
    );
    // Both start on fibre: the preferred order (LTE last), the cheapest.
    let s = wait_for(&mut t, Site::A, "both flows steered", |s| {
        policy_packets(s, "voice", WanPath::Fibre) >= 50
            && policy_packets(s, "bulk", WanPath::Fibre) >= 50
    });
    assert_eq!(
        policy_packets(&s, "voice", WanPath::Lte),
        0,
        "voice did not start on fibre: {}",
        s.json["wan"]
    );
    assert_eq!(
        policy_packets(&s, "bulk", WanPath::Lte),
        0,
        "{}",
        s.json["wan"]
    );
    let moves0 = wan(&s, "policy.voice.moves");
    // lte meets voice's SLA before fibre turns lossy (a probe lost at
    // start, to both ends' simultaneous handshakes, leaves the window
    // within 5 s).
    wait_for(&mut t, Site::A, "no loss on lte", |s| {
        path_counter(s, WanPath::Lte, "loss_ppm") == 0
    });

    t.carrier(WanPath::Fibre).set_loss(10);
    let moved = wait_for(&mut t, Site::A, "voice moved to lte", |s| {
        policy_packets(s, "voice", WanPath::Lte) > 0 && wan(s, "policy.voice.moves") > moves0
    });
    // Afterwards: voice grows on lte only (lte meets its SLA), bulk on
    // fibre only.
    let later = wait_for(&mut t, Site::A, "both flows go on", |s| {
        policy_packets(s, "voice", WanPath::Lte)
            >= policy_packets(&moved, "voice", WanPath::Lte) + 100
            && policy_packets(s, "bulk", WanPath::Fibre)
                >= policy_packets(&moved, "bulk", WanPath::Fibre) + 100
    });
    let ctx = format!(
        "at the move: {}\nlater: {}",
        moved.json["wan"], later.json["wan"]
    );
    assert_eq!(
        policy_packets(&later, "voice", WanPath::Fibre),
        policy_packets(&moved, "voice", WanPath::Fibre),
        "voice went back to the lossy fibre: {ctx}"
    );
    assert_eq!(
        policy_packets(&later, "bulk", WanPath::Lte),
        0,
        "bulk left the cheapest path: {ctx}"
    );
    assert!(
        t.carrier(WanPath::Fibre).dropped() > 0,
        "the carrier dropped nothing"
    );
    let voice_sent = voice.wait(Duration::from_secs(30));
    let bulk_sent = bulk.wait(Duration::from_secs(30));
    let (v, b) = (voice_rx.finish(), bulk_rx.finish());
    assert_eq!(
        v.stun, 1,
        "the STUN binding request did not arrive: {}",
        v.json
    );
    assert!(
        v.received > voice_sent / 2 && b.received > bulk_sent / 2,
        "flows did not arrive: voice {} of {voice_sent}, bulk {} of {bulk_sent}",
        v.json,
        b.json
    );
    assert_eq!(
        v.corrupt + v.bad + b.corrupt + b.bad,
        0,
        "{} {}",
        v.json,
        b.json
    );
    eprintln!("voice moved: {ctx}\nvoice {}\nbulk {}", v.json, b.json);
}

/// Failover: a flow on fibre; fibre's link goes down. The longest silence
/// the receiver sees is under 1 s: this bound is the issue's
/// specification of the feature ("failover on a dead path within 1 s of
/// the first lost probe at the default probe rate"), not a measure of how
/// fast the test machine is. The flow then continues on lte to its end.
#[test]
fn failover_within_one_second() {
    let mut t = up(WanOptions::default());
    let port = 5006;
    let rx = FlowReceiver::start(&t.hb, port, t.dir());
    let tx = FlowSender::start(&t.ha, HB, port, spec(FlowKind::Bulk, 200, 8, 200), t.dir());
    let s = wait_for(&mut t, Site::A, "the flow on fibre", |s| {
        policy_packets(s, "bulk", WanPath::Fibre) >= 200
    });
    assert_eq!(
        policy_packets(&s, "bulk", WanPath::Lte),
        0,
        "{}",
        s.json["wan"]
    );
    t.carrier(WanPath::Fibre).link_down(Site::A);
    let dead = wait_for(&mut t, Site::A, "fibre dead, the flow on lte", |s| {
        path_counter(s, WanPath::Fibre, "state") == 2 && policy_packets(s, "bulk", WanPath::Lte) > 0
    });
    let sent = tx.wait(Duration::from_secs(20));
    let r = rx.finish();
    let end = t.stats(Site::A);
    let ctx = format!(
        "receiver: {}\nat death: {}\nat the end: {}",
        r.json, dead.json["wan"], end.json["wan"]
    );
    assert!(
        r.max_gap_s < 1.0,
        "the flow stopped for {:.3} s (spec: under 1 s): {ctx}",
        r.max_gap_s
    );
    assert_eq!(
        r.highest,
        sent as i64 - 1,
        "the flow's end did not arrive: {ctx}"
    );
    assert!(
        policy_packets(&end, "bulk", WanPath::Lte) > policy_packets(&dead, "bulk", WanPath::Lte),
        "the flow did not go on over lte: {ctx}"
    );
    assert_eq!(r.duplicates + r.corrupt + r.bad, 0, "{ctx}");
    eprintln!("failover: gap {:.3} s; {ctx}", r.max_gap_s);
}

/// Sends a bulk flow over paths with 5 % random loss each (so whichever
/// path it takes loses 5 %), with the bulk policy's FEC `fec`; returns the
/// flow's delivered loss in percent and the engines' FEC counters (parity
/// sent at A, recovered at B, over both paths).
fn lossy_flow(fec: &'static str) -> (f64, u64, u64, String) {
    let loss_pct = [5, 5];
    let mut t = up(WanOptions {
        loss_pct,
        bulk: PolicyOpts {
            fec,
            fec_k: 10,
            fec_m: 4,
            // 10 datagrams at 200 pps take 45 ms: whole groups of k = 10.
            fec_delay_ms: 60,
            ..PolicyOpts::default()
        },
        ..WanOptions::default()
    });
    let (sent, r) = flow(&t, 5007, spec(FlowKind::Bulk, 200, 8, 200));
    let (a, b) = (t.stats(Site::A), t.stats(Site::B));
    let sum = |s: &EngineStats, leaf: &str| -> u64 {
        WanPath::BOTH
            .iter()
            .map(|p| path_counter(s, *p, leaf))
            .sum()
    };
    let ctx = format!(
        "fec {fec}: sent {sent}, receiver {}\nA: {}\nB: {}",
        r.json, a.json["wan"], b.json["wan"]
    );
    let dropped: Vec<u64> = WanPath::BOTH
        .iter()
        .map(|p| t.carrier(*p).dropped())
        .collect();
    let ctx = format!("{ctx}\ncarriers dropped (fibre, lte, both ways): {dropped:?}");
    for (pct, d) in loss_pct.iter().zip(&dropped) {
        assert_eq!(*pct > 0, *d > 0, "carrier loss {loss_pct:?}: {ctx}");
    }
    let recovered = sum(&b, "fec_recovered");
    // Only a lost packet can be recovered.
    assert!(
        recovered <= dropped.iter().sum::<u64>(),
        "engine B recovered {recovered} packets, more than the carriers dropped: {ctx}"
    );
    assert_eq!(r.corrupt + r.bad + r.duplicates, 0, "{ctx}");
    (r.loss_pct(sent), sum(&a, "fec_parity_sent"), recovered, ctx)
}

/// With 5 % random loss, FEC (k 10, m 4) brings the flow's delivered loss
/// under 0.5 %; the same flow without FEC shows the loss (over 2 %).
#[test]
fn fec_repairs_five_percent_loss() {
    let (off_loss, off_parity, _, off_ctx) = lossy_flow("off");
    assert!(off_loss > 2.0, "no loss to repair without FEC: {off_ctx}");
    assert_eq!(off_parity, 0, "parity sent with fec off: {off_ctx}");
    let (on_loss, on_parity, recovered, on_ctx) = lossy_flow("on");
    assert!(on_parity > 0, "no parity sent: {on_ctx}");
    assert!(recovered > 0, "engine B recovered nothing: {on_ctx}");
    assert!(
        on_loss < 0.5,
        "delivered loss {on_loss:.2} % with FEC ({off_loss:.2} % without): {on_ctx}"
    );
    eprintln!("fec: loss {on_loss:.2} % with, {off_loss:.2} % without\n{off_ctx}\n{on_ctx}");
}

/// A policy with compression: a compressible flow goes out smaller than
/// it came in, and every datagram arrives byte for byte.
#[test]
fn compression_shrinks_and_delivers_intact() {
    let mut t = up(WanOptions {
        bulk: PolicyOpts {
            compress: true,
            ..PolicyOpts::default()
        },
        ..WanOptions::default()
    });
    let (sent, r) = flow(&t, 5008, spec(FlowKind::Compressible, 200, 5, 1000));
    let (a, b) = (t.stats(Site::A), t.stats(Site::B));
    let ctx = format!(
        "sent {sent}, receiver {}\nA: {}\nB: {}",
        r.json, a.json["wan"], b.json["wan"]
    );
    let (inb, outb) = (wan(&a, "compress_in_bytes"), wan(&a, "compress_out_bytes"));
    assert!(
        inb >= sent * 1000,
        "not every datagram was compressed: {ctx}"
    );
    assert!(outb < inb, "nothing saved: {ctx}");
    assert_eq!(wan(&b, "decompress_errors"), 0, "{ctx}");
    assert_eq!(wan_opt(&b, "bad_packets"), Some(0), "{ctx}");
    assert_eq!(r.corrupt + r.bad + r.duplicates, 0, "{ctx}");
    assert_eq!(r.received, sent, "datagrams lost on a lossless path: {ctx}");
    eprintln!("compression: {ctx}");
}

/// Adaptive FEC follows each path's measured loss: on clean paths the
/// policy's FEC stays off and adds nothing; with 10 % loss on the paths
/// it comes on by itself (probe loss crossed the policy's 1 %), parity
/// flows and the far engine recovers packets.
#[test]
fn adaptive_fec_follows_the_measured_loss() {
    let adaptive = PolicyOpts {
        fec: "adaptive",
        fec_k: 10,
        fec_m: 4,
        fec_delay_ms: 60,
        ..PolicyOpts::default()
    };
    let sum = |s: &EngineStats, leaf: &str| -> u64 {
        WanPath::BOTH
            .iter()
            .map(|p| path_counter(s, *p, leaf))
            .sum()
    };
    let mut clean = up(WanOptions {
        bulk: adaptive,
        ..WanOptions::default()
    });
    let (sent, r) = flow(&clean, 5011, spec(FlowKind::Bulk, 200, 3, 200));
    let a = clean.stats(Site::A);
    let ctx = format!(
        "clean: sent {sent}, receiver {}\nA: {}",
        r.json, a.json["wan"]
    );
    assert_eq!(sum(&a, "fec_active"), 0, "FEC on without loss: {ctx}");
    assert_eq!(sum(&a, "fec_parity_sent"), 0, "parity without loss: {ctx}");
    assert_eq!(r.received, sent, "{ctx}");
    drop(clean);

    let mut lossy = up(WanOptions {
        loss_pct: [10, 10],
        bulk: adaptive,
        ..WanOptions::default()
    });
    wait_for(&mut lossy, Site::A, "FEC on with the loss", |s| {
        WanPath::BOTH
            .iter()
            .all(|p| path_counter(s, *p, "fec_active") == 1)
    });
    let (sent, r) = flow(&lossy, 5013, spec(FlowKind::Bulk, 200, 4, 200));
    let (a, b) = (lossy.stats(Site::A), lossy.stats(Site::B));
    let ctx = format!(
        "lossy: sent {sent}, receiver {}\nA: {}\nB: {}",
        r.json, a.json["wan"], b.json["wan"]
    );
    assert!(sum(&a, "fec_parity_sent") > 0, "no parity: {ctx}");
    assert!(sum(&b, "fec_recovered") > 0, "nothing recovered: {ctx}");
    assert_eq!(r.corrupt + r.bad + r.duplicates, 0, "{ctx}");
}

/// Duplication: a webrtc flow under a duplicating policy crosses two
/// paths that each lose 10 %; only datagrams lost on both paths are
/// missing (about 1 %), and the far engine drops the second copies.
#[test]
fn duplication_hides_the_loss_of_either_path() {
    let mut t = up(WanOptions {
        loss_pct: [10, 10],
        voice: PolicyOpts {
            duplicate: true,
            ..PolicyOpts::default()
        },
        ..WanOptions::default()
    });
    let (sent, r) = flow(&t, 5015, spec(FlowKind::Webrtc, 200, 6, 160));
    let (a, b) = (t.stats(Site::A), t.stats(Site::B));
    let ctx = format!(
        "sent {sent}, receiver {}\nA: {}\nB: {}",
        r.json, a.json["wan"], b.json["wan"]
    );
    assert!(wan(&a, "dup_sent") > sent / 2, "not duplicated: {ctx}");
    assert!(wan(&b, "dup_dropped") > 0, "no second copy dropped: {ctx}");
    let loss = r.loss_pct(sent);
    assert!(
        loss < 4.0,
        "delivered loss {loss:.2} % (each path loses 10 %): {ctx}"
    );
    assert_eq!(r.duplicates + r.corrupt + r.bad, 0, "{ctx}");
    eprintln!("duplication: delivered loss {loss:.2} %\n{ctx}");
}
