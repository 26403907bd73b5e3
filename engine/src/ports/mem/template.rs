//! Prebuilt Ethernet/IPv4/UDP frames for the generator: every header, with
//! its IPv4 and UDP checksums, is computed once at open, so producing a packet
//! is two copies (header, shared payload) and no arithmetic.

use std::net::Ipv4Addr;

/// Ethernet + IPv4 (no options) + UDP header bytes of one template.
pub(super) const HDR_LEN: usize = 14 + 20 + 8;

/// Smallest frame the generator can build (headers, empty payload).
pub(super) const MIN_FRAME: usize = HDR_LEN;

/// Addresses of one generated flow.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct FlowAddrs {
    pub src: Ipv4Addr,
    pub dst: Ipv4Addr,
    pub sport: u16,
    pub dport: u16,
}

/// A range of host addresses inside a prefix (network and broadcast
/// addresses excluded for prefixes shorter than /31).
#[derive(Clone, Copy, Debug)]
pub(super) struct HostRange {
    first: u32,
    count: u64,
}

impl HostRange {
    pub(super) fn new(addr: Ipv4Addr, len: u8) -> Self {
        let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
        let net = u32::from(addr) & mask;
        let size = 1u64 << (32 - len as u32);
        if size > 2 {
            HostRange {
                first: net + 1,
                count: size - 2,
            }
        } else {
            HostRange {
                first: net,
                count: size,
            }
        }
    }

    fn nth(&self, i: u64) -> Ipv4Addr {
        Ipv4Addr::from(self.first.wrapping_add((i % self.count) as u32))
    }
}

/// Addresses of global flow number `g`. Source host, destination host and
/// source port all move with `g` (mixed radix over the two host ranges, the
/// port by `g` itself), so the first `max(65536, hosts_src * hosts_dst)`
/// flows are distinct 5-tuples, and the first `lcm(hosts_src, 65536)` have
/// distinct inside endpoints (source address, source port): ≈ 2^31 for a
/// /16 source (65534 hosts), 8.3 M for a /24, which NAT benchmarks rely on
/// for one new mapping per flow.
pub(super) fn flow_addrs(
    g: u64,
    src: HostRange,
    dst: HostRange,
    src_port: u16,
    dst_port: u16,
) -> FlowAddrs {
    FlowAddrs {
        src: src.nth(g),
        dst: dst.nth(g / src.count),
        sport: src_port.wrapping_add(g as u16),
        dport: dst_port,
    }
}

/// One's-complement sum of 16-bit big-endian words (odd tail padded with 0),
/// not yet folded.
pub(super) fn sum16(data: &[u8]) -> u64 {
    let mut s = 0u64;
    let mut chunks = data.chunks_exact(2);
    for c in &mut chunks {
        s += u64::from(u16::from_be_bytes([c[0], c[1]]));
    }
    if let [last] = chunks.remainder() {
        s += u64::from(*last) << 8;
    }
    s
}

/// Folds a sum to 16 bits and complements it (the Internet checksum).
pub(super) fn fold(mut s: u64) -> u16 {
    while s > 0xffff {
        s = (s & 0xffff) + (s >> 16);
    }
    !(s as u16)
}

/// The payload bytes every template shares (a recognisable counting pattern).
pub(super) fn payload_pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| i as u8).collect()
}

/// Writes the 42 header bytes of a `frame_len`-byte frame into `out`.
/// `payload_sum` is `sum16` of the frame's payload (`frame_len - HDR_LEN`
/// bytes of the shared pattern), so the UDP checksum covers it.
pub(super) fn write_header(
    out: &mut [u8; HDR_LEN],
    dst_mac: [u8; 6],
    src_mac: [u8; 6],
    f: FlowAddrs,
    frame_len: usize,
    payload_sum: u64,
) {
    let ip_len = (frame_len - 14) as u16;
    let udp_len = ip_len - 20;
    out[0..6].copy_from_slice(&dst_mac);
    out[6..12].copy_from_slice(&src_mac);
    out[12..14].copy_from_slice(&0x0800u16.to_be_bytes());

    let ip = &mut out[14..34];
    ip[0] = 0x45; // version 4, 5-word header
    ip[1] = 0; // DSCP/ECN
    ip[2..4].copy_from_slice(&ip_len.to_be_bytes());
    ip[4..6].copy_from_slice(&0u16.to_be_bytes()); // identification
    ip[6..8].copy_from_slice(&0x4000u16.to_be_bytes()); // DF, offset 0
    ip[8] = 64; // TTL
    ip[9] = 17; // UDP
    ip[10..12].copy_from_slice(&[0, 0]);
    ip[12..16].copy_from_slice(&f.src.octets());
    ip[16..20].copy_from_slice(&f.dst.octets());
    let ip_csum = fold(sum16(ip));
    ip[10..12].copy_from_slice(&ip_csum.to_be_bytes());

    let udp = &mut out[34..42];
    udp[0..2].copy_from_slice(&f.sport.to_be_bytes());
    udp[2..4].copy_from_slice(&f.dport.to_be_bytes());
    udp[4..6].copy_from_slice(&udp_len.to_be_bytes());
    udp[6..8].copy_from_slice(&[0, 0]);
    let pseudo = sum16(&f.src.octets()) + sum16(&f.dst.octets()) + 17 + u64::from(udp_len);
    let mut udp_csum = fold(pseudo + sum16(udp) + payload_sum);
    if udp_csum == 0 {
        // RFC 768: a computed zero is sent as all ones (zero means "none").
        udp_csum = 0xffff;
    }
    udp[6..8].copy_from_slice(&udp_csum.to_be_bytes());
}

/// Every header template of one queue: `flows × sizes` headers of
/// [`HDR_LEN`] bytes plus one payload pattern long enough for the largest
/// size.
pub(super) struct Templates {
    headers: Box<[u8]>,
    payload: Box<[u8]>,
    nsizes: usize,
}

impl Templates {
    /// Builds the headers of flows `first_flow .. first_flow + flows`.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn build(
        flows: u32,
        first_flow: u64,
        sizes: &[u16],
        src: HostRange,
        dst: HostRange,
        src_port: u16,
        dst_port: u16,
        dst_mac: [u8; 6],
        src_mac: [u8; 6],
    ) -> Self {
        let max = sizes.iter().copied().max().unwrap_or(MIN_FRAME as u16) as usize;
        let payload = payload_pattern(max - HDR_LEN).into_boxed_slice();
        let payload_sums: Vec<u64> = sizes
            .iter()
            .map(|s| sum16(&payload[..*s as usize - HDR_LEN]))
            .collect();
        let nsizes = sizes.len();
        let mut headers = vec![0u8; flows as usize * nsizes * HDR_LEN].into_boxed_slice();
        let mut slots = headers.chunks_exact_mut(HDR_LEN);
        for f in 0..u64::from(flows) {
            let addrs = flow_addrs(first_flow + f, src, dst, src_port, dst_port);
            for (s, size) in sizes.iter().enumerate() {
                let slot: &mut [u8; HDR_LEN] = slots
                    .next()
                    .and_then(|c| c.try_into().ok())
                    .expect("one slot per flow and size");
                write_header(
                    slot,
                    dst_mac,
                    src_mac,
                    addrs,
                    *size as usize,
                    payload_sums[s],
                );
            }
        }
        Templates {
            headers,
            payload,
            nsizes,
        }
    }

    /// Writes the frame of `flow` (0-based within this queue) and size index
    /// `size` into `out`, which must be exactly that size.
    #[inline]
    pub(super) fn write_frame(&self, flow: usize, size: usize, out: &mut [u8]) {
        let at = (flow * self.nsizes + size) * HDR_LEN;
        let (hdr, body) = out.split_at_mut(HDR_LEN);
        hdr.copy_from_slice(&self.headers[at..at + HDR_LEN]);
        body.copy_from_slice(&self.payload[..body.len()]);
    }
}
