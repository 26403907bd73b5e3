//! Golden tests of the text-protocol dissectors (http, ssh, smtp, ftp, dns,
//! bittorrent) on real packets of the nDPI corpus: `golden/text.tsv` holds
//! each packet's capture, frame number, endpoints, TCP sequence and flags
//! and payload, as tshark extracted them. Each dissector's verdict and
//! name are checked on its protocol's packets, and every other protocol's
//! real first payloads must not be claimed.

use std::net::IpAddr;

use patronus_classify::dissect::{bittorrent, dns, ftp, http, smtp, ssh, Ctx};
use patronus_classify::{Class, Dir, Dpi, FlowDpi, PacketView, Step, L4};

/// One packet of `golden/text.tsv`.
#[derive(Clone, Debug)]
struct Golden {
    capture: &'static str,
    frame: u32,
    l4: L4,
    src: IpAddr,
    sport: u16,
    dst: IpAddr,
    dport: u16,
    seq: u32,
    flags: u8,
    payload: Vec<u8>,
}

fn hex(s: &str) -> Vec<u8> {
    assert!(s.len() % 2 == 0, "odd hex");
    (0..s.len() / 2)
        .map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16).expect("hex"))
        .collect()
}

fn all() -> Vec<Golden> {
    include_str!("golden/text.tsv")
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| {
            let c: Vec<&'static str> = l.split('\t').collect();
            assert_eq!(c.len(), 10, "{l}");
            Golden {
                capture: c[0],
                frame: c[1].parse().unwrap(),
                l4: if c[2] == "tcp" { L4::Tcp } else { L4::Udp },
                src: c[3].parse().unwrap(),
                sport: c[4].parse().unwrap(),
                dst: c[5].parse().unwrap(),
                dport: c[6].parse().unwrap(),
                seq: c[7].parse().unwrap(),
                flags: c[8].parse().unwrap(),
                payload: hex(c[9]),
            }
        })
        .collect()
}

/// The packets `frames` of `capture`, in that order, with their direction
/// (the first one's sender is the client).
fn flow(capture: &str, frames: &[u32]) -> Vec<(Golden, Dir)> {
    let all = all();
    let pkts: Vec<Golden> = frames
        .iter()
        .map(|f| {
            all.iter()
                .find(|g| g.capture == capture && g.frame == *f)
                .unwrap_or_else(|| panic!("{capture} frame {f} not in golden/text.tsv"))
                .clone()
        })
        .collect();
    let client = (pkts[0].src, pkts[0].sport);
    pkts.into_iter()
        .map(|g| {
            let dir = if (g.src, g.sport) == client {
                Dir::Orig
            } else {
                Dir::Reply
            };
            (g, dir)
        })
        .collect()
}

fn view(g: &Golden, dir: Dir) -> PacketView<'_> {
    PacketView {
        l4: g.l4,
        dir,
        src: g.src,
        dst: g.dst,
        sport: g.sport,
        dport: g.dport,
        payload: &g.payload,
        tcp_seq: g.seq,
        tcp_flags: g.flags,
    }
}

/// The six dissectors behind one signature, to run them alike.
#[derive(Default)]
struct Six {
    http: http::State,
    ssh: ssh::State,
    smtp: smtp::State,
    ftp: ftp::State,
    dns: dns::State,
    bittorrent: bittorrent::State,
}

const NAMES: [&str; 6] = ["http", "ssh", "smtp", "ftp", "dns", "bittorrent"];

impl Six {
    fn inspect(&mut self, i: usize, ctx: &mut Ctx, p: &PacketView<'_>) -> Step {
        match i {
            0 => self.http.inspect(ctx, p),
            1 => self.ssh.inspect(ctx, p),
            2 => self.smtp.inspect(ctx, p),
            3 => self.ftp.inspect(ctx, p),
            4 => self.dns.inspect(ctx, p),
            _ => self.bittorrent.inspect(ctx, p),
        }
    }
}

/// Runs dissector `i` over the packets of a flow; the steps, one per
/// packet, stopping at the first `Done` or `NotMine`.
fn steps(i: usize, capture: &str, frames: &[u32]) -> Vec<Step> {
    let mut s = Six::default();
    let mut ctx = Ctx::default();
    let mut out = Vec::new();
    for (g, dir) in flow(capture, frames) {
        let step = s.inspect(i, &mut ctx, &view(&g, dir));
        out.push(step);
        if step != Step::More {
            break;
        }
    }
    out
}

/// The verdict dissector `i` reaches on the flow: class and name.
fn verdict(i: usize, capture: &str, frames: &[u32]) -> Option<(Class, Option<String>)> {
    match steps(i, capture, frames).last() {
        Some(Step::Done(v)) => Some((v.class, v.name.map(|n| n.as_str().to_string()))),
        _ => None,
    }
}

fn named(class: Class, name: &str) -> Option<(Class, Option<String>)> {
    Some((class, Some(name.to_string())))
}

const HTTP: usize = 0;
const SSH: usize = 1;
const SMTP: usize = 2;
const FTP: usize = 3;
const DNS: usize = 4;
const BT: usize = 5;

#[test]
fn http_request_host_and_proxy() {
    // A proxy request (absolute URI) with a Host header.
    assert_eq!(
        verdict(HTTP, "http-proxy.pcapng", &[4]),
        named(Class::Http, "http.com")
    );
    // Host with a port, the request split over two segments.
    assert_eq!(
        verdict(HTTP, "http-lines-split.pcap", &[4, 6]),
        named(Class::Http, "toni.lan")
    );
    // A capture that starts with the response: the Host of the request
    // that follows in the other direction.
    assert_eq!(
        steps(HTTP, "http_starting_with_reply.pcapng", &[1, 2, 3, 5])[..3],
        [Step::More; 3]
    );
    assert_eq!(
        verdict(HTTP, "http_starting_with_reply.pcapng", &[1, 2, 3, 5]),
        named(Class::Http, "proxy.wiresharkfest.acropolis.local")
    );
}

/// The real request of http-proxy.pcapng frame 4, cut into two segments
/// at every offset (and with the first one retransmitted): the Host is
/// found wherever the cut falls.
#[test]
fn http_host_found_across_any_segmentation() {
    let (g, dir) = flow("http-proxy.pcapng", &[4]).remove(0);
    let req = g.payload.clone();
    for cut in 1..req.len() {
        let mut s = http::State::default();
        let mut ctx = Ctx::default();
        let mut a = g.clone();
        a.payload = req[..cut].to_vec();
        let mut b = g.clone();
        b.payload = req[cut..].to_vec();
        b.seq = g.seq.wrapping_add(cut as u32);
        let mut last = s.inspect(&mut ctx, &view(&a, dir));
        if last == Step::More {
            assert_eq!(
                s.inspect(&mut ctx, &view(&a, dir)),
                Step::More,
                "retransmission at {cut}"
            );
            last = s.inspect(&mut ctx, &view(&b, dir));
        }
        match last {
            Step::Done(v) => {
                assert_eq!(v.class, Class::Http, "cut {cut}");
                assert_eq!(
                    v.name.map(|n| n.as_str().to_string()).as_deref(),
                    Some("http.com"),
                    "cut {cut}"
                );
            }
            other => panic!("cut {cut}: {other:?}"),
        }
    }
}

#[test]
fn ssh_banners_from_either_side() {
    assert_eq!(
        verdict(SSH, "ssh_unidirectional.pcap", &[4]),
        Some((Class::Ssh, None))
    );
    // Server's SSH-1.99 first, then the client's SSH-2.0.
    assert_eq!(
        verdict(SSH, "custom_categories.pcapng", &[66]),
        Some((Class::Ssh, None))
    );
    assert_eq!(
        verdict(SSH, "custom_categories.pcapng", &[68]),
        Some((Class::Ssh, None))
    );
}

#[test]
fn smtp_greeting_hello_and_starttls() {
    // Sendmail: ESMTP greeting, EHLO refused, HELO, 250, MAIL.
    let s = steps(SMTP, "smtp.pcap", &[4, 6, 8, 9, 10, 11]);
    assert_eq!(
        s.last(),
        Some(&Step::Done(patronus_classify::Verdict::sure(
            Class::Smtp,
            None
        )))
    );
    // Submission with AUTH LOGIN after EHLO.
    assert_eq!(
        verdict(SMTP, "emotet.pcap", &[4, 5, 7, 8]),
        Some((Class::Smtp, None))
    );
    // STARTTLS: nDPI calls it SMTPS, which the classes count as other.
    assert_eq!(
        verdict(SMTP, "smtp-starttls.pcap", &[4, 6, 8, 9]),
        Some((Class::Other, None))
    );
    // The greeting alone does not decide (the session may upgrade).
    assert_eq!(steps(SMTP, "smtp-starttls.pcap", &[4]), [Step::More]);
}

#[test]
fn smtp_and_ftp_tell_their_220_greetings_apart() {
    // vsFTPd's greeting is not SMTP; Sendmail's is not FTP.
    assert_eq!(steps(SMTP, "ftp.pcap", &[4]), [Step::NotMine]);
    assert_eq!(steps(FTP, "smtp.pcap", &[4]), [Step::NotMine]);
    assert_eq!(steps(FTP, "emotet.pcap", &[4]), [Step::NotMine]);
    // IRC's USER is not FTP's: the server's answer is no FTP reply.
    assert_eq!(steps(FTP, "irc.pcap", &[4, 7]), [Step::More, Step::NotMine]);
}

const FTP_CONTROL: [u32; 19] = [
    4, 6, 8, 10, 12, 14, 16, 18, 19, 20, 23, 24, 26, 28, 29, 31, 32, 34, 35,
];

/// ftp.pcap: the control connection, then the data connection its
/// `227 Entering Passive Mode (90,130,70,73,100,85)` (frame 35) announced
/// and nDPI labels FTP_DATA (frame 37, 192.168.1.212:50695 ->
/// 90.130.70.73:25685).
#[test]
fn ftp_control_and_the_announced_data_connection() {
    let mut s = ftp::State::default();
    let mut ctx = Ctx::default();
    // A clock past zero: a used announcement is marked expired at 0.
    ctx.now_ns = 1;
    let mut verdict = None;
    let mut watching = true;
    for (g, dir) in flow("ftp.pcap", &FTP_CONTROL) {
        let p = view(&g, dir);
        match verdict {
            None => match s.inspect(&mut ctx, &p) {
                Step::Done(v) => verdict = Some((v, g.frame)),
                Step::More => {}
                Step::NotMine => panic!("frame {}: not ftp", g.frame),
            },
            Some(_) => watching = s.watch(&mut ctx, &p),
        }
    }
    let (v, frame) = verdict.expect("an ftp verdict");
    assert_eq!(v.class, Class::Ftp);
    // The driver gives up after MAX_DPI_PACKETS payload packets: the
    // dissector answers before (the PASV comes at the 19th).
    assert!(frame < 35, "verdict at frame {frame}");
    assert!(watching);
    let (data, dir) = flow("ftp.pcap", &[37]).remove(0);
    assert_eq!(data.dport, 25685);
    let got = ctx
        .expected(&view(&data, dir))
        .expect("the data connection was announced");
    assert_eq!(got.class, Class::Ftp);
    // Once: a second connection to that port is not taken for it.
    assert!(ctx.expected(&view(&data, dir)).is_none());
}

/// Through the driver: the control connection is ftp.
#[test]
fn ftp_control_through_the_driver() {
    let mut dpi = Dpi::new();
    let mut f = FlowDpi::default();
    let mut verdict = None;
    for (g, dir) in flow("ftp.pcap", &FTP_CONTROL) {
        verdict = dpi.inspect(&mut f, &view(&g, dir), 0);
        if verdict.is_some() {
            break;
        }
    }
    assert_eq!(verdict.map(|v| v.class), Some(Class::Ftp));
}

#[test]
fn dns_queries_and_answers() {
    assert_eq!(
        verdict(DNS, "dns-google-nsid.pcapng", &[5]),
        named(Class::Dns, "www.wikipedia.it")
    );
    assert_eq!(
        verdict(DNS, "dns-google-nsid.pcapng", &[6]),
        named(Class::Dns, "www.wikipedia.it")
    );
    // Over TCP, behind the length prefix (IPv6).
    assert_eq!(
        verdict(DNS, "dns_fragmented.pcap", &[48]),
        named(Class::Dns, "weberlab.de")
    );
}

#[test]
fn dns_format_that_ndpi_names_otherwise_is_other() {
    // mDNS (nDPI: MDNS), a DNSCrypt certificate query on 443 (DNScrypt),
    // a NetBIOS name query (NetBIOS).
    assert_eq!(
        verdict(DNS, "android.pcap", &[43]),
        named(Class::Other, "_spotify-connect._tcp.local")
    );
    assert_eq!(
        verdict(DNS, "dnscrypt-v1-and-resolver-pings.pcap", &[1]),
        named(Class::Other, "2.dnscrypt-cert.dnscrypt.ca-2")
    );
    assert_eq!(
        verdict(DNS, "netbios.pcap", &[1]).map(|v| v.0),
        Some(Class::Other)
    );
}

#[test]
fn bittorrent_dht_lsd_utp() {
    let bt = Some((Class::Bittorrent, None));
    // DHT get_peers / find_node queries and a response.
    assert_eq!(verdict(BT, "bittorrent_utp.pcap", &[1]), bt);
    assert_eq!(
        verdict(BT, "targusdataspeed_false_positives.pcap", &[1]),
        bt
    );
    assert_eq!(
        verdict(BT, "targusdataspeed_false_positives.pcap", &[2]),
        bt
    );
    // Local service discovery.
    assert_eq!(verdict(BT, "bt_search.pcap", &[1]), bt);
    // uTP: a SYN, then the STATE that acknowledges it.
    assert_eq!(
        steps(BT, "bittorrent_utp.pcap", &[3, 4]),
        [
            Step::More,
            Step::Done(patronus_classify::Verdict::sure(Class::Bittorrent, None))
        ]
    );
    // uTP DATA carrying the peer handshake.
    assert_eq!(verdict(BT, "bittorrent_utp.pcap", &[5]), bt);
    // One direction of uTP DATA only: consecutive sequence numbers.
    let s = steps(BT, "lru_ipv6_caches.pcapng", &[34, 35, 39]);
    assert_eq!(s[..2], [Step::More, Step::More]);
    match s[2] {
        Step::Done(v) => assert_eq!(v.class, Class::Bittorrent),
        other => panic!("{other:?}"),
    }
}

/// Each protocol's first packets, and the dissector that owns them.
const FIRSTS: [(&str, &[u32], Option<usize>); 23] = [
    ("http-proxy.pcapng", &[4], Some(HTTP)),
    ("http-lines-split.pcap", &[4], Some(HTTP)),
    ("http_starting_with_reply.pcapng", &[1], Some(HTTP)),
    ("ssh_unidirectional.pcap", &[4], Some(SSH)),
    ("custom_categories.pcapng", &[66], Some(SSH)),
    ("smtp.pcap", &[4], Some(SMTP)),
    ("emotet.pcap", &[4], Some(SMTP)),
    ("ftp.pcap", &[4], Some(FTP)),
    ("dns-google-nsid.pcapng", &[5], Some(DNS)),
    ("dns_fragmented.pcap", &[48], Some(DNS)),
    ("android.pcap", &[43], Some(DNS)),
    ("netbios.pcap", &[1], Some(DNS)),
    ("bittorrent_utp.pcap", &[1], Some(BT)),
    ("bittorrent_utp.pcap", &[3], Some(BT)),
    ("bt_search.pcap", &[1], Some(BT)),
    ("rtsp.pcap", &[1], None),
    ("pop3.pcap", &[4], None),
    ("imap.pcap", &[4], None),
    ("irc.pcap", &[4], None),
    ("443-curl.pcap", &[4], None),
    ("quic-23.pcap", &[1], None),
    ("stun_classic.pcap", &[1], None),
    ("nats.pcap", &[5, 7], None),
];

/// No dissector claims another protocol's real first packets, and where
/// a single packet settles it, it says so at once (`NotMine`).
#[test]
fn other_protocols_are_not_mine() {
    for (capture, frames, owner) in FIRSTS {
        for (i, name) in NAMES.iter().enumerate() {
            if Some(i) == owner {
                continue;
            }
            let s = steps(i, capture, frames);
            assert!(
                !matches!(s.last(), Some(Step::Done(_))),
                "{name} claims {capture} {frames:?}: {s:?}"
            );
            // Known waits: an SMTP/FTP 220 greeting that could be either,
            // IRC's `USER` (FTP awaits the server's answer), uTP headers
            // (BitTorrent awaits a second packet).
            let may_wait = matches!((i, owner), (SMTP, Some(FTP)) | (FTP, Some(SMTP)))
                || (i == FTP && capture == "irc.pcap")
                || (i == BT && capture == "bittorrent_utp.pcap");
            if !may_wait {
                assert_eq!(
                    s.last(),
                    Some(&Step::NotMine),
                    "{name} on {capture} {frames:?}"
                );
            }
        }
    }
}
