//! What the flow table reads of a packet: its direction-free 5-tuple and
//! what the dissectors and the features need (payload, TCP sequence and
//! flags), straight from the IPv4 bytes without copying.

use patronus_classify::{Dir, PacketView, L4};

use crate::pipeline::flow_hash;
use crate::wire::ipv4::{PROTO_TCP, PROTO_UDP};

/// A flow's key: its endpoints, the lower (address, port) first, so both
/// directions of a connection have the same key. `proto == 0`: no flow.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(C)]
pub struct FlowKey {
    pub a: u32,
    pub b: u32,
    pub pa: u16,
    pub pb: u16,
    pub proto: u8,
}

impl FlowKey {
    /// The symmetric flow hash (the same the ports spread frames by).
    #[inline]
    pub fn hash(&self) -> u32 {
        flow_hash::symmetric(self.a, self.b, self.proto, self.pa, self.pb)
    }

    pub fn is_empty(&self) -> bool {
        self.proto == 0
    }
}

/// One TCP or UDP packet as the classifier sees it.
#[derive(Clone, Copy, Debug)]
pub struct Parsed<'a> {
    pub key: FlowKey,
    /// The sender is the key's `a` end.
    pub from_a: bool,
    pub src: u32,
    pub dst: u32,
    pub sport: u16,
    pub dport: u16,
    pub l4: L4,
    /// IP total length.
    pub ip_len: u32,
    pub payload: &'a [u8],
    pub tcp_seq: u32,
    pub tcp_flags: u8,
}

impl<'a> Parsed<'a> {
    /// The view the dissectors take, in direction `dir` of its flow.
    pub fn view(&self, dir: Dir) -> PacketView<'a> {
        PacketView {
            l4: self.l4,
            dir,
            src: std::net::Ipv4Addr::from(self.src).into(),
            dst: std::net::Ipv4Addr::from(self.dst).into(),
            sport: self.sport,
            dport: self.dport,
            payload: self.payload,
            tcp_seq: self.tcp_seq,
            tcp_flags: self.tcp_flags,
        }
    }
}

/// Reads an IPv4 packet (`ip` from its first header byte; the pipeline
/// has checked the header). None for other protocols, later fragments and
/// truncated transport headers: those are not tracked. Always inlined: a
/// call returns the struct through memory, and copying it back stalled on
/// store forwarding (a third of the classifier's time).
#[inline(always)]
pub fn parse(ip: &[u8]) -> Option<Parsed<'_>> {
    let h = ip.get(..20)?;
    let ihl = usize::from(h[0] & 0x0f) * 4;
    let total = usize::from(u16::from_be_bytes([h[2], h[3]]));
    let frag_offset = u16::from_be_bytes([h[6], h[7]]) & 0x1fff;
    if h[0] >> 4 != 4 || ihl < 20 || total < ihl || total > ip.len() || frag_offset != 0 {
        return None;
    }
    let proto = h[9];
    let src = u32::from_be_bytes([h[12], h[13], h[14], h[15]]);
    let dst = u32::from_be_bytes([h[16], h[17], h[18], h[19]]);
    let l4b = &ip[ihl..total];
    let (l4, hdr, seq, flags) = match proto {
        PROTO_TCP => {
            let t = l4b.get(..20)?;
            let off = usize::from(t[12] >> 4) * 4;
            if off < 20 || off > l4b.len() {
                return None;
            }
            (
                L4::Tcp,
                off,
                u32::from_be_bytes([t[4], t[5], t[6], t[7]]),
                t[13],
            )
        }
        PROTO_UDP => {
            l4b.get(..8)?;
            (L4::Udp, 8, 0, 0)
        }
        _ => return None,
    };
    let sport = u16::from_be_bytes([l4b[0], l4b[1]]);
    let dport = u16::from_be_bytes([l4b[2], l4b[3]]);
    let from_a = (src, sport) <= (dst, dport);
    let key = if from_a {
        FlowKey {
            a: src,
            b: dst,
            pa: sport,
            pb: dport,
            proto,
        }
    } else {
        FlowKey {
            a: dst,
            b: src,
            pa: dport,
            pb: sport,
            proto,
        }
    };
    Some(Parsed {
        key,
        from_a,
        src,
        dst,
        sport,
        dport,
        l4,
        ip_len: total as u32,
        payload: &l4b[hdr..],
        tcp_seq: seq,
        tcp_flags: flags,
    })
}
