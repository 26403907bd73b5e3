//! Captures read offline: pcap and pcapng files (any byte order and time
//! resolution) and the link types of the nDPI corpus (Ethernet with VLAN
//! tags, raw IP, Linux cooked v1/v2, BSD loopback, PPP, Cisco HDLC, PPI),
//! down to each frame's IP packet.

use std::path::Path;

use anyhow::{bail, Context};
use pcap_file::pcap::PcapParser;
use pcap_file::pcapng::{Block, PcapNgParser};

/// One captured frame of a [`Capture`].
#[derive(Clone, Copy, Debug)]
pub struct Frame {
    /// Capture time, nanoseconds since the epoch.
    pub ts_ns: u64,
    /// Link type (tcpdump.org LINKTYPE_* number).
    pub linktype: u32,
    /// Where its bytes are in the capture.
    at: usize,
    len: usize,
}

/// A capture read whole: its bytes once, its frames as places in them
/// (no copy per frame).
#[derive(Clone, Debug, Default)]
pub struct Capture {
    bytes: Vec<u8>,
    pub frames: Vec<Frame>,
}

impl Capture {
    /// The frame's bytes (from its link-layer header on).
    pub fn data(&self, f: &Frame) -> &[u8] {
        self.bytes.get(f.at..f.at + f.len).unwrap_or(&[])
    }

    /// The IP packet (v4 or v6) inside the frame, if the link layer is
    /// understood and carries one.
    pub fn ip(&self, f: &Frame) -> Option<&[u8]> {
        ip_of(f.linktype, self.data(f))
    }

    /// Reads the capture at `path` (pcap or pcapng; a truncated last
    /// record ends it, as tcpdump reads it).
    pub fn read(path: &Path) -> anyhow::Result<Capture> {
        let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        let magic = bytes
            .get(..4)
            .map(|m| u32::from_le_bytes([m[0], m[1], m[2], m[3]]));
        let base = bytes.as_ptr() as usize;
        let end = base + bytes.len();
        // Parsers hand out slices of `bytes`; anything else (never seen) is
        // not taken rather than mislocated.
        let place = |d: &[u8]| {
            let at = d.as_ptr() as usize;
            (at >= base && at + d.len() <= end).then(|| (at - base, d.len()))
        };
        let mut frames = Vec::new();
        match magic {
            // pcapng section header block.
            Some(0x0a0d_0d0a) => {
                let (mut rest, mut parser) = PcapNgParser::new(&bytes)
                    .with_context(|| format!("{}: pcapng header", path.display()))?;
                while !rest.is_empty() {
                    let Ok((next, block)) = parser.next_block(rest) else {
                        break;
                    };
                    rest = next;
                    let (iface, ts, data) = match &block {
                        Block::EnhancedPacket(p) => (p.interface_id, p.timestamp, &p.data),
                        Block::SimplePacket(p) => (0, Default::default(), &p.data),
                        _ => continue,
                    };
                    let Some(desc) = parser.interfaces().get(iface as usize) else {
                        continue;
                    };
                    let Some((at, len)) = place(data) else {
                        continue;
                    };
                    frames.push(Frame {
                        ts_ns: ts.as_nanos() as u64,
                        linktype: u32::from(desc.linktype),
                        at,
                        len,
                    });
                }
            }
            Some(_) => {
                let (mut rest, parser) = PcapParser::new(&bytes)
                    .with_context(|| format!("{}: pcap header", path.display()))?;
                let linktype = u32::from(parser.header().datalink);
                while !rest.is_empty() {
                    let Ok((next, p)) = parser.next_packet(rest) else {
                        break;
                    };
                    rest = next;
                    let Some((at, len)) = place(&p.data) else {
                        continue;
                    };
                    frames.push(Frame {
                        ts_ns: p.timestamp.as_nanos() as u64,
                        linktype,
                        at,
                        len,
                    });
                }
            }
            None => bail!("{}: too short for a capture", path.display()),
        }
        Ok(Capture { bytes, frames })
    }
}

const LINKTYPE_NULL: u32 = 0;
const LINKTYPE_ETHERNET: u32 = 1;
const LINKTYPE_PPP: u32 = 9;
const LINKTYPE_RAW: u32 = 101;
const LINKTYPE_C_HDLC: u32 = 104;
const LINKTYPE_LOOP: u32 = 108;
const LINKTYPE_LINUX_SLL: u32 = 113;
const LINKTYPE_PPI: u32 = 192;
const LINKTYPE_IPV4: u32 = 228;
const LINKTYPE_IPV6: u32 = 229;
const LINKTYPE_LINUX_SLL2: u32 = 276;
/// DLT_RAW as some systems number it.
const LINKTYPE_RAW_ALT: u32 = 12;
const LINKTYPE_RAW_ALT2: u32 = 14;

const ETH_IPV4: u16 = 0x0800;
const ETH_IPV6: u16 = 0x86dd;

fn be16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*b.get(at)?, *b.get(at + 1)?]))
}

/// The IP packet after an EtherType `ty` at `rest`, through VLAN tags.
fn by_ethertype(mut ty: u16, mut rest: &[u8]) -> Option<&[u8]> {
    // 802.1Q / 802.1ad / QinQ tags, a few deep.
    for _ in 0..4 {
        match ty {
            0x8100 | 0x88a8 | 0x9100 => {
                ty = be16(rest, 2)?;
                rest = rest.get(4..)?;
            }
            ETH_IPV4 | ETH_IPV6 => return ip_checked(rest),
            // PPPoE session: 6-byte header then the PPP protocol.
            0x8864 => return ppp_protocol(be16(rest, 6)?, rest.get(8..)?),
            _ => return None,
        }
    }
    None
}

fn ppp_protocol(proto: u16, rest: &[u8]) -> Option<&[u8]> {
    match proto {
        0x0021 | 0x0057 => ip_checked(rest),
        _ => None,
    }
}

/// `b` if it starts like an IPv4 or IPv6 header.
fn ip_checked(b: &[u8]) -> Option<&[u8]> {
    match b.first()? >> 4 {
        4 | 6 => Some(b),
        _ => None,
    }
}

/// The IP packet of a frame of link type `linktype`.
pub fn ip_of(linktype: u32, data: &[u8]) -> Option<&[u8]> {
    match linktype {
        LINKTYPE_ETHERNET => by_ethertype(be16(data, 12)?, data.get(14..)?),
        LINKTYPE_RAW | LINKTYPE_RAW_ALT | LINKTYPE_RAW_ALT2 | LINKTYPE_IPV4 | LINKTYPE_IPV6 => {
            ip_checked(data)
        }
        LINKTYPE_LINUX_SLL => by_ethertype(be16(data, 14)?, data.get(16..)?),
        LINKTYPE_LINUX_SLL2 => by_ethertype(be16(data, 0)?, data.get(20..)?),
        // The address family in host order of the capturing machine.
        LINKTYPE_NULL | LINKTYPE_LOOP => ip_checked(data.get(4..)?),
        LINKTYPE_PPP => {
            // With or without the HDLC address/control bytes.
            let (proto, rest) = if data.starts_with(&[0xff, 0x03]) {
                (be16(data, 2)?, data.get(4..)?)
            } else {
                (be16(data, 0)?, data.get(2..)?)
            };
            ppp_protocol(proto, rest)
        }
        LINKTYPE_C_HDLC => by_ethertype(be16(data, 2)?, data.get(4..)?),
        LINKTYPE_PPI => {
            let len = usize::from(u16::from_le_bytes([*data.get(2)?, *data.get(3)?]));
            let dlt = u32::from_le_bytes(data.get(4..8)?.try_into().ok()?);
            if dlt == LINKTYPE_PPI {
                return None;
            }
            ip_of(dlt, data.get(len..)?)
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vlan_tagged_ethernet_reaches_the_ip_header() {
        let mut f = vec![0u8; 12];
        f.extend_from_slice(&[0x81, 0x00, 0x01, 0xf9, 0x08, 0x00, 0x45, 0]);
        assert_eq!(ip_of(LINKTYPE_ETHERNET, &f), Some(&[0x45, 0][..]));
        f[16] = 0x99; // not IP after the tag
        assert_eq!(ip_of(LINKTYPE_ETHERNET, &f), None);
        assert_eq!(ip_of(LINKTYPE_ETHERNET, &f[..13]), None);
    }

    #[test]
    fn every_capture_of_the_corpus_reads() {
        let dir = crate::corpus::pcap_dir();
        let Ok(entries) = crate::corpus::captures(&dir) else {
            panic!("no corpus at {}", dir.display());
        };
        let mut files = 0;
        let mut with_ip = 0;
        for p in entries {
            let cap = Capture::read(&p).unwrap_or_else(|e| panic!("{e:#}"));
            files += 1;
            if cap.frames.iter().any(|f| cap.ip(f).is_some()) {
                with_ip += 1;
            }
        }
        assert!(files > 400, "{files} captures");
        // Every link type of the corpus is understood: nearly every
        // capture yields IP packets (a few hold only ARP or non-IP).
        assert!(with_ip * 100 >= files * 97, "{with_ip} of {files}");
    }
}
