//! Bidirectional flows of a capture, the way the engine's flow table sees
//! them: keyed by the 5-tuple regardless of direction, the client being
//! the sender of the flow's first packet. IPv4 (with options, first
//! fragments) and IPv6 (through extension headers); TCP and UDP only.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use crate::pcap::Capture;
use crate::view::{Dir, PacketView, L4};

/// Payload bytes kept per packet (enough for every dissector).
pub const KEPT_PAYLOAD: usize = 4096;
/// Packets kept per flow (the classifier looks at the first ones only).
pub const KEPT_PACKETS: usize = 64;

/// One packet of a flow.
#[derive(Clone, Debug)]
pub struct FlowPacket {
    pub ts_ns: u64,
    pub dir: Dir,
    /// IP total length.
    pub ip_len: u32,
    /// Its L4 payload (cut to [`KEPT_PAYLOAD`]).
    pub payload: Vec<u8>,
    pub tcp_seq: u32,
    pub tcp_flags: u8,
}

/// A flow: its endpoints, its first packets and its totals.
#[derive(Clone, Debug)]
pub struct Flow {
    pub l4: L4,
    /// Sender of the first packet.
    pub client: SocketAddr,
    pub server: SocketAddr,
    /// The first [`KEPT_PACKETS`] packets.
    pub packets: Vec<FlowPacket>,
    /// All packets and IP bytes, both directions.
    pub total_packets: u64,
    pub total_bytes: u64,
}

impl Flow {
    /// Packet `i` as the dissectors see it.
    pub fn view(&self, i: usize) -> PacketView<'_> {
        let p = &self.packets[i];
        let (src, dst) = match p.dir {
            Dir::Orig => (self.client, self.server),
            Dir::Reply => (self.server, self.client),
        };
        PacketView {
            l4: self.l4,
            dir: p.dir,
            src: src.ip(),
            dst: dst.ip(),
            sport: src.port(),
            dport: dst.port(),
            payload: &p.payload,
            tcp_seq: p.tcp_seq,
            tcp_flags: p.tcp_flags,
        }
    }

    /// The flow's key: protocol and its endpoints, lower first.
    pub fn key(&self) -> FlowKey {
        FlowKey::new(self.l4, self.client, self.server)
    }
}

/// A direction-free flow key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FlowKey {
    pub tcp: bool,
    pub lo: SocketAddr,
    pub hi: SocketAddr,
}

impl FlowKey {
    pub fn new(l4: L4, a: SocketAddr, b: SocketAddr) -> FlowKey {
        let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
        FlowKey {
            tcp: l4 == L4::Tcp,
            lo,
            hi,
        }
    }
}

/// A TCP or UDP packet taken apart.
#[derive(Clone, Copy, Debug)]
pub struct Parsed<'a> {
    pub l4: L4,
    pub src: SocketAddr,
    pub dst: SocketAddr,
    pub ip_len: u32,
    pub payload: &'a [u8],
    pub tcp_seq: u32,
    pub tcp_flags: u8,
}

/// Parses an IP packet down to its TCP or UDP payload.
pub fn parse_ip(ip: &[u8]) -> Option<Parsed<'_>> {
    let (src, dst, proto, l4, ip_len) = match ip.first()? >> 4 {
        4 => {
            if ip.len() < 20 {
                return None;
            }
            let ihl = usize::from(ip[0] & 0x0f) * 4;
            let total = usize::from(u16::from_be_bytes([*ip.get(2)?, *ip.get(3)?]));
            let frag = u16::from_be_bytes([*ip.get(6)?, *ip.get(7)?]);
            // Later fragments carry no L4 header.
            if frag & 0x1fff != 0 || ihl < 20 {
                return None;
            }
            let end = if total >= ihl {
                total.min(ip.len())
            } else {
                ip.len()
            };
            let src = IpAddr::V4(Ipv4Addr::new(ip[12], ip[13], ip[14], ip[15]));
            let dst = IpAddr::V4(Ipv4Addr::new(ip[16], ip[17], ip[18], ip[19]));
            (src, dst, ip[9], ip.get(ihl..end)?, total as u32)
        }
        6 => {
            if ip.len() < 40 {
                return None;
            }
            let plen = usize::from(u16::from_be_bytes([*ip.get(4)?, *ip.get(5)?]));
            let src = IpAddr::V6(Ipv6Addr::from(<[u8; 16]>::try_from(ip.get(8..24)?).ok()?));
            let dst = IpAddr::V6(Ipv6Addr::from(<[u8; 16]>::try_from(ip.get(24..40)?).ok()?));
            let end = (40 + plen).min(ip.len());
            let mut next = ip[6];
            let mut at = 40;
            // Extension headers (hop-by-hop, routing, destination options,
            // fragment): a few deep.
            for _ in 0..8 {
                match next {
                    0 | 43 | 60 => {
                        next = *ip.get(at)?;
                        at += (usize::from(*ip.get(at + 1)?) + 1) * 8;
                    }
                    44 => {
                        let off = u16::from_be_bytes([*ip.get(at + 2)?, *ip.get(at + 3)?]);
                        if off & 0xfff8 != 0 {
                            return None;
                        }
                        next = *ip.get(at)?;
                        at += 8;
                    }
                    _ => break,
                }
            }
            (src, dst, next, ip.get(at..end)?, (40 + plen) as u32)
        }
        _ => return None,
    };
    match proto {
        6 => {
            let off = usize::from(l4.get(12)? >> 4) * 4;
            if off < 20 || l4.len() < 20 {
                return None;
            }
            Some(Parsed {
                l4: L4::Tcp,
                src: SocketAddr::new(src, u16::from_be_bytes([l4[0], l4[1]])),
                dst: SocketAddr::new(dst, u16::from_be_bytes([l4[2], l4[3]])),
                ip_len,
                payload: l4.get(off..).unwrap_or(&[]),
                tcp_seq: u32::from_be_bytes([l4[4], l4[5], l4[6], l4[7]]),
                tcp_flags: l4[13],
            })
        }
        17 => {
            let ulen = usize::from(u16::from_be_bytes([*l4.get(4)?, *l4.get(5)?]));
            let end = if ulen >= 8 {
                ulen.min(l4.len())
            } else {
                l4.len()
            };
            Some(Parsed {
                l4: L4::Udp,
                src: SocketAddr::new(src, u16::from_be_bytes([l4[0], l4[1]])),
                dst: SocketAddr::new(dst, u16::from_be_bytes([l4[2], l4[3]])),
                ip_len,
                payload: l4.get(8..end).unwrap_or(&[]),
                tcp_seq: 0,
                tcp_flags: 0,
            })
        }
        _ => None,
    }
}

/// A capture's flows, in the order of their first packets, and for each
/// frame the (flow index, packet index within the kept packets) it became
/// (None: not TCP/UDP over IP, or past the kept packets).
pub fn flows_of(cap: &Capture) -> (Vec<Flow>, Vec<Option<(usize, usize)>>) {
    let mut flows: Vec<Flow> = Vec::new();
    let mut index: HashMap<FlowKey, usize> = HashMap::new();
    let mut order = Vec::with_capacity(cap.frames.len());
    for f in &cap.frames {
        let Some(p) = cap.ip(f).and_then(parse_ip) else {
            order.push(None);
            continue;
        };
        let key = FlowKey::new(p.l4, p.src, p.dst);
        let i = *index.entry(key).or_insert_with(|| {
            flows.push(Flow {
                l4: p.l4,
                client: p.src,
                server: p.dst,
                packets: Vec::new(),
                total_packets: 0,
                total_bytes: 0,
            });
            flows.len() - 1
        });
        let flow = &mut flows[i];
        flow.total_packets += 1;
        flow.total_bytes += u64::from(p.ip_len);
        if flow.packets.len() >= KEPT_PACKETS {
            order.push(None);
            continue;
        }
        let dir = if p.src == flow.client {
            Dir::Orig
        } else {
            Dir::Reply
        };
        flow.packets.push(FlowPacket {
            ts_ns: f.ts_ns,
            dir,
            ip_len: p.ip_len,
            payload: p.payload[..p.payload.len().min(KEPT_PAYLOAD)].to_vec(),
            tcp_seq: p.tcp_seq,
            tcp_flags: p.tcp_flags,
        });
        order.push(Some((i, flow.packets.len() - 1)));
    }
    (flows, order)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_directions_make_one_flow_with_the_first_sender_as_client() {
        let cap = Capture::read(&crate::corpus::pcap_dir().join("443-curl.pcap")).unwrap();
        let (flows, order) = flows_of(&cap);
        assert_eq!(flows.len(), 1, "{flows:?}");
        let f = &flows[0];
        assert_eq!(f.client.to_string(), "192.168.1.13:55523");
        assert_eq!(f.server.to_string(), "178.62.197.130:443");
        // nDPI: 51 packets one way, 58 the other.
        assert_eq!(f.total_packets, 109);
        assert!(f.packets.iter().any(|p| p.dir == Dir::Reply));
        assert_eq!(f.packets.len(), KEPT_PACKETS);
        assert_eq!(order.iter().flatten().count(), f.packets.len());
        assert_eq!(
            f.view(0).tcp_flags & 0x02,
            0x02,
            "the first packet is the SYN"
        );
    }

    #[test]
    fn truncated_and_odd_packets_are_refused_not_panicked_on() {
        // Found by the dissect fuzz target: an IPv4 header cut at 12 bytes.
        let cut = [0x45u8, 0x5c, 1, 0, 0, 0, 0, 0, 0x0b, 0, 0x18, 0];
        assert!(parse_ip(&cut).is_none());
        // A TCP header shorter than its fixed part.
        let mut short_tcp = vec![0x45u8, 0, 0, 33, 0, 0, 0, 0, 64, 6, 0, 0];
        short_tcp.extend_from_slice(&[10, 0, 0, 1, 10, 0, 0, 2]);
        short_tcp.extend_from_slice(&[0, 80, 0, 81, 0, 0, 0, 0, 0, 0, 0, 0, 0x50]);
        assert!(parse_ip(&short_tcp).is_none());
        let v4 = [0x45u8, 0, 0, 40, 0, 0, 0x20, 0x01, 64, 6];
        assert!(parse_ip(&v4).is_none());
        assert!(parse_ip(&[]).is_none());
        assert!(parse_ip(&[0x60; 41]).is_none());
    }
}
