//! Completes TCP/UDP checksums the sender left partial.
//!
//! A Linux sender with checksum offload (veth, virtio, tap peers) hands its
//! frames over with `CHECKSUM_PARTIAL`: the L4 checksum field holds only the
//! folded pseudo-header sum and the "device" was to finish it. AF_XDP has no
//! `virtio_net_hdr` to say so, so we recognise the pattern: an unfragmented
//! IPv4 TCP/UDP frame whose checksum field equals its own pseudo-header sum.
//! Completing a checksum that was in fact already right rewrites the same
//! value, so a false match (about 1 in 65536 frames) is harmless; on NICs,
//! which hand over finished checksums, this only costs the compare.

/// Ones'-complement sum of big-endian 16-bit words (odd tail zero-padded).
fn sum16(data: &[u8], mut acc: u64) -> u64 {
    let mut chunks = data.chunks_exact(2);
    for c in &mut chunks {
        acc += u16::from_be_bytes([c[0], c[1]]) as u64;
    }
    if let [b] = chunks.remainder() {
        acc += (*b as u64) << 8;
    }
    acc
}

fn fold(mut acc: u64) -> u16 {
    while acc > 0xffff {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    acc as u16
}

/// If `frame` carries a partial TCP/UDP checksum, completes it and returns
/// true.
pub fn complete_partial(frame: &mut [u8]) -> bool {
    if frame.len() < 14 {
        return false;
    }
    let mut l3 = 14;
    let mut ethertype = u16::from_be_bytes([frame[12], frame[13]]);
    if ethertype == 0x8100 || ethertype == 0x88a8 {
        if frame.len() < 18 {
            return false;
        }
        ethertype = u16::from_be_bytes([frame[16], frame[17]]);
        l3 = 18;
    }
    if ethertype != 0x0800 {
        return false;
    }
    let ip = &frame[l3..];
    if ip.len() < 20 || ip[0] >> 4 != 4 {
        return false;
    }
    let ihl = (ip[0] & 0x0f) as usize * 4;
    let total = u16::from_be_bytes([ip[2], ip[3]]) as usize;
    let frag = u16::from_be_bytes([ip[6], ip[7]]);
    if ihl < 20 || total < ihl || total > ip.len() || frag & 0x3fff != 0 {
        return false;
    }
    let proto = ip[9];
    let field = match proto {
        6 => 16,
        17 => 6,
        _ => return false,
    };
    let l4_len = total - ihl;
    if l4_len < field + 2 {
        return false;
    }
    let pseudo = sum16(&ip[12..20], proto as u64 + l4_len as u64);
    let l4 = l3 + ihl;
    let at = l4 + field;
    if u16::from_be_bytes([frame[at], frame[at + 1]]) != fold(pseudo) {
        return false;
    }
    frame[at] = 0;
    frame[at + 1] = 0;
    let mut c = !fold(sum16(&frame[l4..l4 + l4_len], pseudo));
    if proto == 17 && c == 0 {
        c = 0xffff; // UDP: 0 would mean "no checksum".
    }
    frame[at..at + 2].copy_from_slice(&c.to_be_bytes());
    true
}
