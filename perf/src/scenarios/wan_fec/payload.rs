//! Packets the FEC and compression rows push: random (incompressible)
//! inner packets of a fixed size, and real HTTP packets from a capture of
//! the nDPI corpus (compressible text: headers, HTML, XML).

use std::path::Path;

use anyhow::{bail, Context};
use patronus_classify::pcap::Capture;

use super::channel::SplitMix64;

/// The capture the compressible payloads come from: plain HTTP/1.1 with
/// text/html, text/plain and XML bodies (no content-encoding).
pub const HTTP_CAPTURE: &str = "starcraft_battle.pcap";
/// TCP payload below this is left out (bare ACKs would only measure the
/// skip path).
const MIN_TCP_PAYLOAD: usize = 64;

/// An IPv4/UDP-looking packet of `len` bytes with random contents after
/// the header (seeded: the same bytes every run).
pub fn random_packet(len: usize, seed: u64) -> Vec<u8> {
    let mut p = vec![0u8; len.max(28)];
    SplitMix64::new(seed).fill(&mut p);
    p[0] = 0x45;
    let total = p.len() as u16;
    p[2..4].copy_from_slice(&total.to_be_bytes());
    p[9] = 17;
    p
}

/// Whole IPv4 packets of `corpus/pcap/HTTP_CAPTURE` that carry TCP to or
/// from port 80 with at least `MIN_TCP_PAYLOAD` bytes of payload.
pub fn http_packets(corpus: &Path) -> anyhow::Result<Vec<Vec<u8>>> {
    let path = corpus.join("pcap").join(HTTP_CAPTURE);
    let cap = Capture::read(&path).with_context(|| format!("reading {}", path.display()))?;
    let mut out = Vec::new();
    for f in &cap.frames {
        let Some(ip) = cap.ip(f) else { continue };
        if let Some(p) = http_ipv4(ip) {
            out.push(p.to_vec());
        }
    }
    if out.is_empty() {
        bail!("no HTTP packets in {}", path.display());
    }
    Ok(out)
}

/// `ip` when it is a whole IPv4 TCP packet with port 80 on either side and
/// enough payload.
fn http_ipv4(ip: &[u8]) -> Option<&[u8]> {
    if ip.len() < 40 || ip[0] >> 4 != 4 || ip[9] != 6 {
        return None;
    }
    let ihl = usize::from(ip[0] & 0x0f) * 4;
    let total = usize::from(u16::from_be_bytes([ip[2], ip[3]]));
    if total > ip.len() || total < ihl + 20 {
        return None;
    }
    let tcp = &ip[ihl..total];
    let (sport, dport) = (
        u16::from_be_bytes([tcp[0], tcp[1]]),
        u16::from_be_bytes([tcp[2], tcp[3]]),
    );
    let doff = usize::from(tcp[12] >> 4) * 4;
    let payload = tcp.len().checked_sub(doff)?;
    ((sport == 80 || dport == 80) && payload >= MIN_TCP_PAYLOAD).then_some(&ip[..total])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_packets_are_seeded() {
        assert_eq!(random_packet(200, 1), random_packet(200, 1));
        assert_ne!(random_packet(200, 1), random_packet(200, 2));
        assert_eq!(random_packet(1400, 1).len(), 1400);
    }

    #[test]
    fn http_filter_takes_port_80_with_payload() {
        let mut p = vec![0u8; 20 + 20 + 100];
        p[0] = 0x45;
        p[2..4].copy_from_slice(&140u16.to_be_bytes());
        p[9] = 6;
        p[20..22].copy_from_slice(&80u16.to_be_bytes());
        p[32] = 5 << 4;
        assert!(http_ipv4(&p).is_some());
        p[20..22].copy_from_slice(&81u16.to_be_bytes());
        assert!(http_ipv4(&p).is_none());
        p[22..24].copy_from_slice(&80u16.to_be_bytes());
        assert!(http_ipv4(&p).is_some());
        let short = &p[..20 + 20 + 10];
        let mut s = short.to_vec();
        s[2..4].copy_from_slice(&50u16.to_be_bytes());
        assert!(http_ipv4(&s).is_none());
        p[9] = 17;
        assert!(http_ipv4(&p).is_none());
    }

    #[test]
    fn the_corpus_capture_has_http_packets() {
        let root = patronus_classify::corpus::root();
        if !root.join("pcap").join(HTTP_CAPTURE).exists() {
            eprintln!("corpus not present; skipped");
            return;
        }
        let pkts = http_packets(&root).unwrap();
        assert!(pkts.len() > 50, "{}", pkts.len());
    }
}
