//! ICMP errors (RFC 5508 §4.2, RFC 792): an error about a packet NAT
//! translated quotes that packet as it looked on the far side, so both the
//! outer header and the embedded one are rewritten — the outer destination
//! (inbound) or source (outbound), and the embedded packet's matching
//! endpoint, with the embedded IP checksum, the embedded L4 checksum when
//! quoted, and the outer ICMP checksum, all incrementally. Errors do not
//! refresh sessions (they may be spoofed).

use super::key::{Endpoint, Proto};
use super::rewrite::{rd16, rd32, rewrite_embedded, set_addr, Side};
use super::translate::Hdr;
use super::{Nat, NatDrop, Verdict};

pub(super) const ICMP_ECHO_REPLY: u8 = 0;
pub(super) const ICMP_ECHO_REQUEST: u8 = 8;

/// The embedded packet of an ICMP error.
#[derive(Clone, Copy, Debug)]
pub(super) struct Embedded {
    /// Offset of the embedded IPv4 header.
    pub at: usize,
    pub hl: usize,
    pub proto: Proto,
    pub src: u32,
    pub dst: u32,
    /// TCP/UDP ports; for an embedded echo request or reply the query id
    /// is both (only the local side uses it).
    pub src_port: u16,
    pub dst_port: u16,
}

/// Parses the packet quoted by the ICMP error in `ip` (header `h`): a full
/// IPv4 header and at least 8 bytes of TCP/UDP or an ICMP echo.
#[inline]
pub(super) fn embedded(ip: &[u8], h: &Hdr) -> Option<Embedded> {
    let at = h.l4 + 8;
    if h.end < at + 20 || ip[at] >> 4 != 4 {
        return None;
    }
    let hl = usize::from(ip[at] & 0x0f) * 4;
    if hl < 20 || h.end < at + hl + 8 {
        return None;
    }
    let proto = Proto::from_ip(ip[at + 9])?;
    let l4 = at + hl;
    let (src_port, dst_port) = match proto {
        Proto::Tcp | Proto::Udp => (rd16(ip, l4), rd16(ip, l4 + 2)),
        Proto::Icmp => {
            let t = ip[l4];
            if t != ICMP_ECHO_REQUEST && t != ICMP_ECHO_REPLY {
                return None;
            }
            let id = rd16(ip, l4 + 4);
            (id, id)
        }
    };
    Some(Embedded {
        at,
        hl,
        proto,
        src: rd32(ip, at + 12),
        dst: rd32(ip, at + 16),
        src_port,
        dst_port,
    })
}

impl Nat {
    /// An ICMP error from outside about a packet we sent out: the embedded
    /// packet's source is our outside endpoint, its destination the remote.
    pub(super) fn icmp_error_in(&mut self, ip: &mut [u8], h: &Hdr) -> Verdict {
        let Some(e) = embedded(ip, h) else {
            return Verdict::Drop(NatDrop::Malformed);
        };
        if e.src != h.dst {
            // Not about a packet sent from the address it is addressed to.
            return Verdict::Drop(NatDrop::Malformed);
        }
        let (addr, port) = if let Some(i) = self.statics.one_to_one_in(h.dst) {
            (i, None)
        } else {
            let remote_port = if e.proto == Proto::Icmp {
                0
            } else {
                e.dst_port
            };
            let outside = Endpoint::new(e.src, e.src_port);
            let remote = Endpoint::new(e.dst, remote_port);
            let Some(idx) = self.sessions.find_outside(outside, remote, e.proto) else {
                return Verdict::Drop(NatDrop::NoSession);
            };
            let ins = self.sessions.get(idx).inside;
            (ins.addr, Some(ins.port))
        };
        rewrite_embedded(ip, h.l4, e.at, e.hl, h.end, Side::Src, addr, port);
        set_addr(ip, Side::Dst, addr);
        self.counters.icmp_errors_translated += 1;
        self.counters.translated_in += 1;
        Verdict::Translated
    }

    /// An ICMP error from an inside host about a packet it received through
    /// NAT: the embedded packet's destination is the inside endpoint.
    pub(super) fn icmp_error_out(&mut self, ip: &mut [u8], h: &Hdr) -> Verdict {
        let Some(e) = embedded(ip, h) else {
            return Verdict::Drop(NatDrop::Malformed);
        };
        if e.dst != h.src {
            return Verdict::Drop(NatDrop::Malformed);
        }
        let (addr, port) = if let Some(o) = self.statics.one_to_one_out(h.src) {
            (o, None)
        } else {
            let remote_port = if e.proto == Proto::Icmp {
                0
            } else {
                e.src_port
            };
            let inside = Endpoint::new(e.dst, e.dst_port);
            let remote = Endpoint::new(e.src, remote_port);
            let Some(idx) = self.sessions.find_inside(inside, remote, e.proto) else {
                return Verdict::Drop(NatDrop::NoSession);
            };
            let out = self.sessions.get(idx).outside;
            (out.addr, Some(out.port))
        };
        rewrite_embedded(ip, h.l4, e.at, e.hl, h.end, Side::Dst, addr, port);
        set_addr(ip, Side::Src, addr);
        self.counters.icmp_errors_translated += 1;
        self.counters.translated_out += 1;
        Verdict::Translated
    }
}
