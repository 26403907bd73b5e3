//! Golden tests of the tls, quic and webrtc dissectors on real packets of
//! the nDPI corpus (`tests/golden/*.txt`: the capture and frame numbers
//! they come from, what tshark says of them, then one packet a line:
//! `tcp|udp orig|reply TCP-SEQUENCE PAYLOAD-HEX`), negative cases (other
//! protocols' real payloads are not claimed), property tests (no input
//! makes a dissector panic), that they never allocate (a counting
//! allocator watches them over every golden packet) and the agreement with nDPI's labels and
//! server names over the whole corpus.

use std::net::{IpAddr, Ipv4Addr};

use std::collections::{BTreeMap, HashMap};

use patronus_classify::corpus;
use patronus_classify::dissect::{quic, tls, webrtc, Ctx};
use patronus_classify::flows::FlowKey;
use patronus_classify::labels::parse_line;
use patronus_classify::offline::classify_file;
use patronus_classify::{Class, Dir, PacketView, Step, L4};
use proptest::prelude::*;

mod common;
use common::allocations;

/// One packet of a golden file.
#[derive(Clone, Debug)]
struct Packet {
    l4: L4,
    dir: Dir,
    seq: u32,
    payload: Vec<u8>,
}

fn hex(s: &str) -> Vec<u8> {
    assert!(s.len() % 2 == 0, "odd hex length");
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
        .collect()
}

fn packets(text: &str) -> Vec<Packet> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            assert_eq!(f.len(), 4, "bad golden line {l:?}");
            Packet {
                l4: if f[0] == "tcp" { L4::Tcp } else { L4::Udp },
                dir: if f[1] == "orig" {
                    Dir::Orig
                } else {
                    Dir::Reply
                },
                seq: f[2].parse().expect("sequence number"),
                payload: hex(f[3]),
            }
        })
        .collect()
}

fn view(p: &Packet) -> PacketView<'_> {
    let (a, b) = (
        IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)),
        IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)),
    );
    let (src, dst) = if p.dir == Dir::Orig { (a, b) } else { (b, a) };
    PacketView {
        l4: p.l4,
        dir: p.dir,
        src,
        dst,
        sport: 40000,
        dport: 443,
        payload: &p.payload,
        tcp_seq: p.seq,
        tcp_flags: 0,
    }
}

/// Which dissector a case runs.
#[derive(Clone, Copy, Debug)]
enum Which {
    Tls,
    Quic,
    Webrtc,
}

/// Runs one dissector over the packets in order, as the driver would
/// (stopping at its first `Done` or `NotMine`); returns the last step and
/// how many packets it took.
fn run(which: Which, pkts: &[Packet]) -> (Step, usize) {
    let mut ctx = Ctx::default();
    let (mut t, mut q, mut w) = (
        tls::State::default(),
        quic::State::default(),
        webrtc::State::default(),
    );
    let mut last = Step::More;
    for (i, p) in pkts.iter().enumerate() {
        let v = view(p);
        last = match which {
            Which::Tls => t.inspect(&mut ctx, &v),
            Which::Quic => q.inspect(&mut ctx, &v),
            Which::Webrtc => w.inspect(&mut ctx, &v),
        };
        if last != Step::More {
            return (last, i + 1);
        }
    }
    (last, pkts.len())
}

/// Asserts that `which` says `class` with server name `name` on the
/// packets of golden file `text`, after exactly `after` packets.
fn expect(which: Which, text: &str, class: Class, name: Option<&str>, after: usize) {
    let pkts = packets(text);
    let (step, n) = run(which, &pkts);
    let Step::Done(v) = step else {
        panic!("{which:?}: expected {class} {name:?}, got {step:?} after {n} packets");
    };
    assert_eq!(v.class, class);
    assert_eq!(v.name.as_ref().map(|n| n.as_str()), name);
    assert_eq!(
        n, after,
        "{which:?}: decided after {n} packets, not {after}"
    );
}

fn expect_not_mine(which: Which, text: &str) {
    let pkts = packets(text);
    let (step, n) = run(which, &pkts);
    assert_eq!(
        step,
        Step::NotMine,
        "{which:?} claimed it after {n} packets"
    );
}

macro_rules! golden {
    ($file:literal) => {
        include_str!(concat!("golden/", $file))
    };
}

// ---- tls ----

#[test]
fn tls_client_hello_in_one_segment() {
    let g = golden!("tls_443-curl_f4.txt");
    expect(Which::Tls, g, Class::Tls, Some("www.ntop.org"), 1);
}

#[test]
fn tls_client_hello_split_over_two_segments() {
    // The server name lies in the first segment: known at once.
    let g = golden!("tls_split_codm_f4-5-7.txt");
    expect(Which::Tls, g, Class::Tls, Some("west-tdm.codmwest.com"), 1);
    // The second segment alone (the flow's first payload) says nothing.
    let pkts = packets(g);
    assert!(!matches!(run(Which::Tls, &pkts[1..2]).0, Step::Done(_)));
}

/// The real ClientHello of 443-curl frame 4 cut into segments at `cuts`,
/// given to the dissector in `order`, with their real sequence numbers.
fn resegmented(cuts: &[usize], order: &[usize]) -> Vec<Packet> {
    let whole = &packets(golden!("tls_443-curl_f4.txt"))[0];
    let mut bounds = vec![0];
    bounds.extend_from_slice(cuts);
    bounds.push(whole.payload.len());
    let segs: Vec<Packet> = bounds
        .windows(2)
        .map(|w| Packet {
            l4: L4::Tcp,
            dir: Dir::Orig,
            seq: whole.seq.wrapping_add(w[0] as u32),
            payload: whole.payload[w[0]..w[1]].to_vec(),
        })
        .collect();
    order.iter().map(|&i| segs[i].clone()).collect()
}

/// Offset just past the server name in 443-curl frame 4's payload.
fn sni_end() -> usize {
    let whole = &packets(golden!("tls_443-curl_f4.txt"))[0].payload;
    let pos = whole
        .windows(12)
        .position(|w| w == b"www.ntop.org")
        .expect("name in the hello");
    pos + 12
}

#[test]
fn tls_client_hello_cut_at_every_byte_reassembles() {
    let end = sni_end();
    let len = packets(golden!("tls_443-curl_f4.txt"))[0].payload.len();
    for cut in 1..len {
        let pkts = resegmented(&[cut], &[0, 1]);
        let (step, n) = run(Which::Tls, &pkts);
        let Step::Done(v) = step else {
            panic!("cut at {cut}: {step:?}");
        };
        assert_eq!(v.class, Class::Tls, "cut at {cut}");
        assert_eq!(
            v.name.map(|n| n.to_string()).as_deref(),
            Some("www.ntop.org")
        );
        // Decided on the first segment exactly when it holds the name.
        assert_eq!(n, if cut >= end { 1 } else { 2 }, "cut at {cut}");
    }
}

#[test]
fn tls_client_hello_out_of_order_and_retransmitted_segments() {
    let end = sni_end();
    // Three pieces, the last two swapped.
    let pkts = resegmented(&[100, end - 3], &[0, 2, 1]);
    expect_packets(Which::Tls, &pkts, Some("www.ntop.org"), 3);
    // A retransmission of the first piece, overlapping data, then the rest.
    let mut pkts = resegmented(&[100, end - 3], &[0, 0, 1, 2]);
    let overlap = Packet {
        l4: L4::Tcp,
        dir: Dir::Orig,
        seq: pkts[0].seq.wrapping_add(50),
        payload: pkts[0].payload[50..].to_vec(),
    };
    pkts.insert(1, overlap);
    expect_packets(Which::Tls, &pkts, Some("www.ntop.org"), 5);
}

fn expect_packets(which: Which, pkts: &[Packet], name: Option<&str>, after: usize) {
    let (step, n) = run(which, pkts);
    let Step::Done(v) = step else {
        panic!("{step:?} after {n}");
    };
    assert_eq!(v.name.map(|n| n.to_string()).as_deref(), name);
    assert_eq!(n, after);
}

#[test]
fn tls_server_hello_first_says_tls_without_a_name() {
    let g = golden!("tls_serverhello_first_tls13-unidir-server_f3.txt");
    expect(Which::Tls, g, Class::Tls, None, 1);
}

#[test]
fn tls_sslv2_client_hello() {
    expect(
        Which::Tls,
        golden!("tls_sslv2_hello_google_ssl_f4.txt"),
        Class::Tls,
        None,
        1,
    );
}

#[test]
fn tls_flow_caught_after_the_handshake() {
    let g = golden!("tls_midflow_alert_kakaotalk_f79.txt");
    expect(Which::Tls, g, Class::Tls, None, 1);
    let (Step::Done(v), _) = run(Which::Tls, &packets(g)) else {
        unreachable!("checked above");
    };
    assert!(v.confidence < 1.0, "no hello seen: not a full parse");
}

#[test]
fn tls_is_not_smtp_starttls_http_ssh_dns_or_quic() {
    for g in [
        golden!("smtp_starttls_f4-6-8.txt"),
        golden!("http_get_http-manipulated_f4.txt"),
        golden!("ssh_banner_f4.txt"),
        golden!("dns_query_dns-google-nsid_f1.txt"),
        golden!("quic_v1_google_meet_f7.txt"),
    ] {
        expect_not_mine(Which::Tls, g);
    }
}

// ---- quic ----

#[test]
fn quic_draft_23_initial() {
    let g = golden!("quic_draft23_quic-23_f1.txt");
    expect(Which::Quic, g, Class::Quic, Some("quic.aiortc.org"), 1);
}

#[test]
fn quic_draft_28_initial() {
    let g = golden!("quic_draft28_quic-28_f1.txt");
    expect(Which::Quic, g, Class::Quic, Some("www.wireshark.org"), 1);
}

#[test]
fn quic_v1_initial() {
    let g = golden!("quic_v1_google_meet_f7.txt");
    expect(Which::Quic, g, Class::Quic, Some("meet.google.com"), 1);
}

#[test]
fn quic_v2_initial() {
    // Made by a real client (aioquic, golden/quic_v2_aioquic.py): no
    // capture of the corpus speaks v2.
    let g = golden!("quic_v2_aioquic.txt");
    expect(Which::Quic, g, Class::Quic, Some("quic-v2.example.org"), 1);
}

#[test]
fn quic_mvfst_draft_22_initial() {
    let g = golden!("quic_mvfst22_f1.txt");
    expect(Which::Quic, g, Class::Quic, Some("graph.facebook.com"), 1);
}

#[test]
fn quic_google_t051_initial() {
    let g = golden!("quic_t51_f1.txt");
    expect(Which::Quic, g, Class::Quic, Some("www.google.com"), 1);
}

#[test]
fn quic_google_q046_clear_chlo() {
    let g = golden!("quic_q046_f1.txt");
    expect(Which::Quic, g, Class::Quic, Some("i.ytimg.com"), 1);
}

#[test]
fn quic_client_hello_in_crypto_frames_out_of_order() {
    // Chrome's CRYPTO frames shuffled among PADDING and PING in one packet.
    let g = golden!("quic_draft29_chaos_frags_f1-4.txt");
    expect(
        Which::Quic,
        g,
        Class::Quic,
        Some("update.googleapis.com"),
        1,
    );
}

#[test]
fn quic_client_hello_over_two_initials_with_different_dcids() {
    // The name is in the first Initial's part of the hello (the second
    // Initial, decrypted with the first one's keys, is tested in
    // quic.rs).
    let g = golden!("quic_v1_two_initials_different_dcid_f1-3.txt");
    expect(Which::Quic, g, Class::Quic, Some("cdnjs.cloudflare.com"), 1);
}

#[test]
fn quic_0rtt_packets_before_the_initial() {
    let g = golden!("quic_0rtt_before_initial_f3-4-5.txt");
    expect(Which::Quic, g, Class::Quic, Some("ssl.gstatic.com"), 3);
}

#[test]
fn quic_reserved_version_is_quic_without_a_name() {
    expect(
        Which::Quic,
        golden!("quic_forcing_vn_f1.txt"),
        Class::Quic,
        None,
        1,
    );
}

#[test]
fn quic_is_not_dns_stun_dtls_rtp_or_tcp() {
    for g in [
        golden!("dns_query_dns-google-nsid_f1.txt"),
        golden!("stun_whatsapp_f26.txt"),
        golden!("dtls_client_hello_f1.txt"),
        golden!("rtp_after_probe_f83-86.txt"),
        golden!("tls_443-curl_f4.txt"),
    ] {
        expect_not_mine(Which::Quic, g);
    }
}

// ---- webrtc ----

#[test]
fn stun_with_cookie() {
    expect(
        Which::Webrtc,
        golden!("stun_whatsapp_f26.txt"),
        Class::Webrtc,
        None,
        1,
    );
}

#[test]
fn stun_classic_without_cookie() {
    expect(
        Which::Webrtc,
        golden!("stun_classic_f1.txt"),
        Class::Webrtc,
        None,
        1,
    );
}

#[test]
fn dtls_client_hello() {
    expect(
        Which::Webrtc,
        golden!("dtls_client_hello_f1.txt"),
        Class::Webrtc,
        None,
        1,
    );
}

#[test]
fn rtp_needs_three_packets_of_one_stream() {
    let g = golden!("rtp_after_probe_f83-86.txt");
    expect(Which::Webrtc, g, Class::Webrtc, None, 4);
    // Two RTP packets are not enough.
    let pkts = packets(g);
    assert_eq!(run(Which::Webrtc, &pkts[..3]).0, Step::More);
}

#[test]
fn webrtc_is_not_dns_http_quic_tls_or_discord() {
    for g in [
        golden!("dns_query_dns-google-nsid_f1.txt"),
        golden!("http_get_http-manipulated_f4.txt"),
        golden!("quic_v1_google_meet_f7.txt"),
        golden!("tls_443-curl_f4.txt"),
        golden!("smtp_starttls_f4-6-8.txt"),
        golden!("discord_ip_discovery_f35-37.txt"),
    ] {
        expect_not_mine(Which::Webrtc, g);
    }
}

// ---- no allocation, no panic ----

/// Every golden file's packets through all three dissectors (every packet,
/// past their answers) without one allocation: QUIC decryption, TLS
/// reassembly and all.
#[test]
fn dissectors_never_allocate() {
    let files = [
        golden!("tls_443-curl_f4.txt"),
        golden!("tls_split_codm_f4-5-7.txt"),
        golden!("tls_serverhello_first_tls13-unidir-server_f3.txt"),
        golden!("tls_sslv2_hello_google_ssl_f4.txt"),
        golden!("tls_midflow_alert_kakaotalk_f79.txt"),
        golden!("smtp_starttls_f4-6-8.txt"),
        golden!("http_get_http-manipulated_f4.txt"),
        golden!("ssh_banner_f4.txt"),
        golden!("dns_query_dns-google-nsid_f1.txt"),
        golden!("quic_draft23_quic-23_f1.txt"),
        golden!("quic_draft28_quic-28_f1.txt"),
        golden!("quic_draft29_chaos_frags_f1-4.txt"),
        golden!("quic_v1_google_meet_f7.txt"),
        golden!("quic_v2_aioquic.txt"),
        golden!("quic_v1_two_initials_different_dcid_f1-3.txt"),
        golden!("quic_mvfst22_f1.txt"),
        golden!("quic_t51_f1.txt"),
        golden!("quic_q046_f1.txt"),
        golden!("quic_0rtt_before_initial_f3-4-5.txt"),
        golden!("quic_forcing_vn_f1.txt"),
        golden!("stun_whatsapp_f26.txt"),
        golden!("stun_classic_f1.txt"),
        golden!("dtls_client_hello_f1.txt"),
        golden!("rtp_after_probe_f83-86.txt"),
        golden!("discord_ip_discovery_f35-37.txt"),
    ];
    let parsed: Vec<Vec<Packet>> = files.iter().map(|f| packets(f)).collect();
    // The counter counts: one Vec is one allocation.
    let before = allocations();
    drop(std::hint::black_box(vec![0u8; 16]));
    assert_eq!(allocations() - before, 1);
    let before = allocations();
    for pkts in &parsed {
        for which in [Which::Tls, Which::Quic, Which::Webrtc] {
            feed_all(which, pkts);
        }
    }
    assert_eq!(allocations() - before, 0, "the dissectors allocated");
}

fn arb_packets(prefix: &'static [u8]) -> impl Strategy<Value = Vec<Packet>> {
    let packet = (
        any::<bool>(),
        any::<bool>(),
        any::<u32>(),
        prop::collection::vec(any::<u8>(), 0..1500),
        any::<bool>(),
    )
        .prop_map(move |(tcp, orig, seq, mut payload, keep_prefix)| {
            if keep_prefix {
                let n = prefix.len().min(payload.len());
                payload[..n].copy_from_slice(&prefix[..n]);
            }
            Packet {
                l4: if tcp { L4::Tcp } else { L4::Udp },
                dir: if orig { Dir::Orig } else { Dir::Reply },
                seq,
                payload,
            }
        });
    prop::collection::vec(packet, 1..8)
}

/// Runs every packet through the dissector even after it answered (the
/// driver would stop; the dissector must cope either way).
fn feed_all(which: Which, pkts: &[Packet]) {
    let mut ctx = Ctx::default();
    let (mut t, mut q, mut w) = (
        tls::State::default(),
        quic::State::default(),
        webrtc::State::default(),
    );
    for p in pkts {
        let v = view(p);
        match which {
            Which::Tls => drop(t.inspect(&mut ctx, &v)),
            Which::Quic => drop(q.inspect(&mut ctx, &v)),
            Which::Webrtc => drop(w.inspect(&mut ctx, &v)),
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn tls_never_panics(pkts in arb_packets(&[22, 3, 1, 0x02, 0x00, 1, 0, 1, 0xfc, 3, 3])) {
        feed_all(Which::Tls, &pkts);
    }

    #[test]
    fn quic_never_panics(pkts in arb_packets(&[0xc0, 0, 0, 0, 1, 8])) {
        feed_all(Which::Quic, &pkts);
    }

    #[test]
    fn webrtc_never_panics(pkts in arb_packets(&[0, 1, 0, 0, 0x21, 0x12, 0xa4, 0x42])) {
        feed_all(Which::Webrtc, &pkts);
    }
}

// ---- agreement with nDPI over the corpus ----

const MINE: [Class; 3] = [Class::Tls, Class::Quic, Class::Webrtc];

/// (class, least recall, least precision) against nDPI's labels, from
/// the agreement measured when the dissectors were written, less a
/// little slack. tls recall: nDPI labels by port flows whose captured
/// packets carry no payload at all (nothing for a signature to read).
const FLOORS: [(Class, f64, f64); 3] = [
    (Class::Tls, 0.90, 0.99),
    (Class::Quic, 0.95, 0.99),
    (Class::Webrtc, 0.95, 0.95),
];
/// Least share of the flows both call tls or quic where nDPI's server
/// name and ours are the same.
const MIN_SAME_NAME: f64 = 0.99;

#[derive(Default, Debug)]
struct Tally {
    truth: u64,
    predicted: u64,
    agreed: u64,
    names_compared: u64,
    names_same: u64,
}

/// nDPI's label and server name (`[Hostname/SNI: ...]`) of every flow of
/// a result file.
fn labels_with_names(path: &std::path::Path) -> Option<HashMap<FlowKey, (String, Class, String)>> {
    let bytes = std::fs::read(path).ok()?;
    let text = String::from_utf8_lossy(&bytes);
    let mut out = HashMap::new();
    for line in text.lines() {
        let Some(label) = parse_line(line) else {
            continue;
        };
        let name = line
            .split_once("[Hostname/SNI: ")
            .and_then(|(_, rest)| rest.split_once(']'))
            .map(|(n, _)| n.to_ascii_lowercase())
            .unwrap_or_default();
        out.insert(label.key, (label.ndpi, label.class, name));
    }
    Some(out)
}

#[test]
fn tls_quic_webrtc_agree_with_ndpi_on_the_corpus() {
    let pcaps = corpus::captures(&corpus::pcap_dir()).expect("the nDPI corpus (PATRONUS_NDPI_DIR)");
    assert!(
        pcaps.len() > 100,
        "corpus incomplete: {} captures",
        pcaps.len()
    );
    let mut tally: BTreeMap<Class, Tally> = MINE.iter().map(|&c| (c, Tally::default())).collect();
    for path in &pcaps {
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        let Some(labels) = labels_with_names(&corpus::result_dir().join(format!("{name}.out")))
        else {
            continue;
        };
        for c in classify_file(path).expect("capture reads") {
            let Some((ndpi, truth, ndpi_name)) = labels.get(&c.flow.key()) else {
                continue;
            };
            let (truth, got) = (*truth, c.verdict.class);
            let ours = c.verdict.name.map(|n| n.to_string()).unwrap_or_default();
            if let Some(t) = tally.get_mut(&truth) {
                t.truth += 1;
                t.agreed += u64::from(truth == got);
                if truth == got && truth != Class::Webrtc {
                    t.names_compared += 1;
                    t.names_same += u64::from(*ndpi_name == ours);
                    if *ndpi_name != ours {
                        println!(
                            "name differs: {name} {} nDPI {ndpi_name:?} ours {ours:?}",
                            c.flow.server
                        );
                    }
                }
            }
            if let Some(t) = tally.get_mut(&got) {
                t.predicted += 1;
            }
            if truth != got && (MINE.contains(&truth) || MINE.contains(&got)) {
                println!(
                    "differs: {name} {:?} {} -> {} nDPI {ndpi} ours {got} {ours:?} (payload packets {})",
                    c.flow.l4, c.flow.client, c.flow.server, c.dpi_packets
                );
            }
        }
    }
    let mut failed = Vec::new();
    for (class, min_recall, min_precision) in FLOORS {
        let t = &tally[&class];
        let recall = t.agreed as f64 / t.truth.max(1) as f64;
        let precision = t.agreed as f64 / t.predicted.max(1) as f64;
        // webrtc carries no names to compare.
        let same = if t.names_compared == 0 {
            1.0
        } else {
            t.names_same as f64 / t.names_compared as f64
        };
        println!(
            "{class}: nDPI {} ours {} agreed {} recall {recall:.3} precision {precision:.3} \
             same name {}/{}",
            t.truth, t.predicted, t.agreed, t.names_same, t.names_compared
        );
        if t.truth == 0 || recall < min_recall || precision < min_precision || same < MIN_SAME_NAME
        {
            failed.push(class);
        }
    }
    assert!(failed.is_empty(), "below the floors: {failed:?}");
}
