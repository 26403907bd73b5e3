//! TX coalescing (GSO on send): consecutive frames of one IPv4 TCP or UDP
//! flow that the kernel could have produced by segmenting one superframe
//! are sent as that superframe, with a `virtio_net_hdr` asking for
//! segmentation (`GSO_TCPV4` / `GSO_UDP_L4`) and a partial checksum.
//!
//! On veth the superframe then crosses forwarding, the peer's stack and
//! AF_PACKET receivers as one skb instead of dozens (TCP delivered to a
//! local socket is taken whole, as after GRO); where a device cannot take
//! it, the kernel cuts it into exactly the frames we were given. The rules
//! are GRO's: same headers but lengths, IP ident and checksums; every
//! segment but the last carries `gso_size` payload bytes; TCP sequence
//! numbers follow on, flags are ACK (PSH only on the last). And like GRO,
//! a frame's L4 checksum is verified before it joins: the superframe's
//! checksum is computed afresh, which would otherwise turn a corrupt
//! segment into a valid one. Frames whose checksum the receiving port
//! computed or the kernel verified (`Packet::l4_csum_ok`, kept through
//! incremental rewrites such as NAT's) skip that second read of their
//! payload.

use super::features::GsoLimits;
use super::offload::{
    csum_add, fold, VnetHdr, VNET_F_NEEDS_CSUM, VNET_GSO_TCPV4, VNET_GSO_UDP_L4, VNET_HDR_LEN,
};

/// Segments per superframe at most (the kernel takes up to 128 for UDP).
pub const MAX_SEGS: usize = 64;
/// IPv4 total length limit of a superframe.
const MAX_L3_LEN: usize = 65535;
const ETH_LEN: usize = 14;
const IP_LEN: usize = 20;
const L4: usize = ETH_LEN + IP_LEN;
const UDP_LEN: usize = 8;
const PROTO_TCP: u8 = 6;
const PROTO_UDP: u8 = 17;
const TCP_ACK: u8 = 0x10;
const TCP_PSH: u8 = 0x08;

/// What a frame is, as far as coalescing cares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Seg {
    tcp: bool,
    /// Ethernet + IPv4 + TCP/UDP header bytes.
    hdr_len: usize,
    payload: usize,
    seq: u32,
    flags: u8,
}

impl Seg {
    /// TCP (else UDP).
    pub fn tcp(&self) -> bool {
        self.tcp
    }
}

/// A candidate: untagged IPv4 without options or fragmentation, whose
/// lengths agree with the frame, holding UDP or a TCP segment with payload
/// and only ACK (and PSH) set.
#[inline]
pub fn parse(f: &[u8]) -> Option<Seg> {
    if f.len() < L4 + UDP_LEN || f[12..14] != [0x08, 0x00] || f[14] != 0x45 {
        return None;
    }
    let tot = usize::from(u16::from_be_bytes([f[16], f[17]]));
    let frag = u16::from_be_bytes([f[20], f[21]]) & 0x3fff;
    if tot != f.len() - ETH_LEN || frag != 0 {
        return None;
    }
    match f[23] {
        PROTO_UDP => {
            let ulen = usize::from(u16::from_be_bytes([f[38], f[39]]));
            let payload = f.len() - L4 - UDP_LEN;
            (ulen == f.len() - L4 && payload > 0).then_some(Seg {
                tcp: false,
                hdr_len: L4 + UDP_LEN,
                payload,
                seq: 0,
                flags: 0,
            })
        }
        PROTO_TCP => {
            let doff = usize::from(f[L4 + 12] >> 4) * 4;
            let flags = f[L4 + 13];
            let urg = [f[L4 + 18], f[L4 + 19]];
            if doff < 20 || f.len() <= L4 + doff || flags & !TCP_PSH != TCP_ACK || urg != [0, 0] {
                return None;
            }
            Some(Seg {
                tcp: true,
                hdr_len: L4 + doff,
                payload: f.len() - L4 - doff,
                seq: u32::from_be_bytes([f[L4 + 4], f[L4 + 5], f[L4 + 6], f[L4 + 7]]),
                flags,
            })
        }
        _ => None,
    }
}

/// A run of frames being gathered into one superframe.
#[derive(Clone, Copy, Debug)]
pub struct Run {
    first: Seg,
    prev: Seg,
    segs: usize,
    payload: usize,
    /// Segments and frame bytes a superframe may have on this device.
    max_segs: usize,
    max_frame: usize,
}

impl Run {
    /// A run for a device with the kernel's default GSO limits.
    #[cfg(test)]
    pub fn new(first: Seg) -> Self {
        Self::with_limits(first, GsoLimits::default())
    }

    /// A run for a device with `limits`: a superframe the device would
    /// refuse (too many segments, or `max_size` bytes or more with its
    /// Ethernet header) is dropped, not segmented, on a qdisc-bypass send.
    pub fn with_limits(first: Seg, limits: GsoLimits) -> Self {
        Run {
            first,
            prev: first,
            segs: 1,
            payload: first.payload,
            max_segs: MAX_SEGS.min(limits.max_segs as usize),
            max_frame: (ETH_LEN + MAX_L3_LEN).min((limits.max_size as usize).saturating_sub(1)),
        }
    }

    /// Frames in the run.
    pub fn segs(&self) -> usize {
        self.segs
    }

    /// Takes frame `f` (parsed as `s`) if it continues the run that
    /// `first` (the run's first frame, unmodified) starts, verifying both
    /// frames' checksums.
    #[cfg(test)]
    pub fn extend(&mut self, first: &[u8], f: &[u8], s: &Seg) -> bool {
        self.extend_known(first, f, s, [false, false])
    }

    /// [`extend`](Self::extend) where `known_ok` says, for `first` and `f`,
    /// that the frame's L4 checksum is known to be right
    /// (`Packet::l4_csum_ok`), so reading its payload again is not needed.
    #[inline]
    pub fn extend_known(&mut self, first: &[u8], f: &[u8], s: &Seg, known_ok: [bool; 2]) -> bool {
        let (a, p) = (&self.first, &self.prev);
        let fits = self.segs < self.max_segs
            && s.tcp == a.tcp
            && s.hdr_len == a.hdr_len
            && p.payload == a.payload
            && s.payload <= a.payload
            && p.flags & TCP_PSH == 0
            && a.hdr_len + self.payload + s.payload <= self.max_frame
            && (!s.tcp || s.seq == p.seq.wrapping_add(p.payload as u32));
        if !fits || !same_flow(first, f, a.hdr_len, a.tcp) {
            return false;
        }
        // Checked only once a run forms: a frame sent alone keeps its own.
        if (self.segs == 1 && !known_ok[0] && !l4_checksum_ok(first, a.tcp))
            || (!known_ok[1] && !l4_checksum_ok(f, a.tcp))
        {
            return false;
        }
        self.prev = *s;
        self.segs += 1;
        self.payload += s.payload;
        true
    }

    /// Header bytes of the frames after the first (not sent: the kernel
    /// rebuilds them from the first's).
    pub fn hdr_len(&self) -> usize {
        self.first.hdr_len
    }

    /// Rewrites the first frame's headers into the superframe's (lengths,
    /// IPv4 checksum, the last segment's TCP flags, the pseudo-header sum as
    /// partial L4 checksum) and returns its `virtio_net_hdr`. Needs a run
    /// of at least two frames.
    pub fn finish(&self, first: &mut [u8]) -> [u8; VNET_HDR_LEN] {
        let a = &self.first;
        let l3_len = a.hdr_len - ETH_LEN + self.payload;
        let l4_len = l3_len - IP_LEN;
        first[16..18].copy_from_slice(&(l3_len as u16).to_be_bytes());
        first[24..26].copy_from_slice(&[0, 0]);
        let hc = !fold(csum_add(0, &first[ETH_LEN..L4]));
        first[24..26].copy_from_slice(&hc.to_be_bytes());
        let (proto, csum_offset, gso_type) = if a.tcp {
            first[L4 + 13] = self.prev.flags;
            (PROTO_TCP, 16, VNET_GSO_TCPV4)
        } else {
            first[L4 + 4..L4 + 6].copy_from_slice(&(l4_len as u16).to_be_bytes());
            (PROTO_UDP, 6, VNET_GSO_UDP_L4)
        };
        let pseudo = fold(csum_add(0, &first[26..34]) + u64::from(proto) + l4_len as u64);
        first[L4 + csum_offset..][..2].copy_from_slice(&pseudo.to_be_bytes());
        VnetHdr {
            flags: VNET_F_NEEDS_CSUM,
            gso_type,
            hdr_len: a.hdr_len as u16,
            gso_size: a.payload as u16,
            csum_start: L4 as u16,
            csum_offset: csum_offset as u16,
        }
        .to_bytes()
    }
}

/// The frame's TCP/UDP checksum is valid (or, for UDP, absent).
#[inline]
fn l4_checksum_ok(f: &[u8], tcp: bool) -> bool {
    if !tcp && f[L4 + 6..L4 + 8] == [0, 0] {
        return true;
    }
    let proto = if tcp { PROTO_TCP } else { PROTO_UDP };
    let pseudo = csum_add(0, &f[26..34]) + u64::from(proto) + (f.len() - L4) as u64;
    fold(csum_add(pseudo, &f[L4..])) == 0xffff
}

/// Same flow and same headers but for what segmentation changes: Ethernet
/// header, TOS, flags/fragment, TTL, protocol, addresses, ports; for TCP
/// also acknowledgment, data offset, window and options.
#[inline]
fn same_flow(a: &[u8], b: &[u8], hdr_len: usize, tcp: bool) -> bool {
    a[..ETH_LEN] == b[..ETH_LEN]
        && a[15] == b[15]
        && a[20..24] == b[20..24]
        && a[26..L4 + 4] == b[26..L4 + 4]
        && (!tcp
            || (a[L4 + 8..L4 + 13] == b[L4 + 8..L4 + 13]
                && a[L4 + 14..L4 + 16] == b[L4 + 14..L4 + 16]
                && a[L4 + 20..hdr_len] == b[L4 + 20..hdr_len]))
}

#[cfg(test)]
#[path = "coalesce_tests.rs"]
mod tests;
