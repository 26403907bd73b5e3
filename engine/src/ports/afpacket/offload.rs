//! Completing what the kernel left to "hardware": partial checksums and GSO
//! superframes handed over by `PACKET_VNET_HDR`, turned into wire-ready frames.
//!
//! A peer with checksum offload on (veth, virtio, most NICs' stacks) passes
//! TCP/UDP with only the pseudo-header sum in the checksum field
//! (`VIRTIO_NET_HDR_F_NEEDS_CSUM`); with TSO/GSO on it passes frames up to
//! 64 KiB (`gso_type` != NONE) that the engine must cut into MTU-sized
//! segments itself, the way the kernel's `tcp_gso_segment`/`__udp_gso_segment`
//! would.

use crate::buffer::{Batch, PacketPool, BATCH_SIZE, BUF_DATA_ROOM};

/// Size of `struct virtio_net_hdr` (the kernel's default `PACKET_VNET_HDR`).
pub const VNET_HDR_LEN: usize = 10;

/// `virtio_net_hdr.flags`: the checksum at csum_start/csum_offset is partial.
pub const VNET_F_NEEDS_CSUM: u8 = 1;
/// `virtio_net_hdr.flags`: the kernel (or the NIC) verified the checksum
/// (`CHECKSUM_UNNECESSARY`).
pub const VNET_F_DATA_VALID: u8 = 2;
/// `virtio_net_hdr.gso_type` values (the kernel's `VIRTIO_NET_HDR_GSO_*`).
pub const VNET_GSO_NONE: u8 = 0;
pub const VNET_GSO_TCPV4: u8 = 1;
pub const VNET_GSO_UDP: u8 = 3;
pub const VNET_GSO_TCPV6: u8 = 4;
pub const VNET_GSO_UDP_L4: u8 = 5;
/// Flag bit on `gso_type`: the TCP stream uses ECN (CWR handling is the same).
pub const VNET_GSO_ECN: u8 = 0x80;

const ETHERTYPE_IPV4: u16 = 0x0800;
const ETHERTYPE_IPV6: u16 = 0x86dd;
const ETHERTYPE_VLAN: u16 = 0x8100;
const ETHERTYPE_QINQ: u16 = 0x88a8;
const IPPROTO_TCP: u8 = 6;
const IPPROTO_UDP: u8 = 17;
const TCP_FIN: u8 = 0x01;
const TCP_PSH: u8 = 0x08;
const TCP_CWR: u8 = 0x80;

/// The fields of a `struct virtio_net_hdr` (kernel byte order: native, as
/// `vio_le()` is true exactly on little-endian hosts).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct VnetHdr {
    pub flags: u8,
    pub gso_type: u8,
    pub hdr_len: u16,
    pub gso_size: u16,
    pub csum_start: u16,
    pub csum_offset: u16,
}

impl VnetHdr {
    /// Reads the header from its 10 bytes.
    pub fn parse(b: &[u8; VNET_HDR_LEN]) -> Self {
        let u16_at = |i: usize| u16::from_ne_bytes([b[i], b[i + 1]]);
        VnetHdr {
            flags: b[0],
            gso_type: b[1],
            hdr_len: u16_at(2),
            gso_size: u16_at(4),
            csum_start: u16_at(6),
            csum_offset: u16_at(8),
        }
    }

    /// Writes the header (TX coalescing; tests build frames with it).
    pub fn to_bytes(self) -> [u8; VNET_HDR_LEN] {
        let mut b = [0u8; VNET_HDR_LEN];
        b[0] = self.flags;
        b[1] = self.gso_type;
        b[2..4].copy_from_slice(&self.hdr_len.to_ne_bytes());
        b[4..6].copy_from_slice(&self.gso_size.to_ne_bytes());
        b[6..8].copy_from_slice(&self.csum_start.to_ne_bytes());
        b[8..10].copy_from_slice(&self.csum_offset.to_ne_bytes());
        b
    }
}

/// What became of one received frame.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Delivered {
    /// Frames appended to the batch.
    pub pkts: usize,
    /// Frames (or segments) dropped: oversize, malformed, unknown GSO type,
    /// pool exhausted.
    pub dropped: usize,
}

/// The batch has too little room for all segments of this superframe; call
/// again with an emptier batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NoRoom;

const fn dropped(n: usize) -> Result<Delivered, NoRoom> {
    Ok(Delivered {
        pkts: 0,
        dropped: n,
    })
}

/// Turns one received frame (Ethernet header first) with its vnet header into
/// wire-ready packets appended to `batch`. The caller guarantees at least one
/// free slot in `batch`.
pub fn deliver(
    frame: &[u8],
    vnet: &VnetHdr,
    pool: &mut PacketPool,
    batch: &mut Batch,
) -> Result<Delivered, NoRoom> {
    if vnet.gso_type == VNET_GSO_NONE {
        return deliver_one(frame, vnet, pool, batch);
    }
    segment(frame, vnet, pool, batch)
}

fn deliver_one(
    frame: &[u8],
    vnet: &VnetHdr,
    pool: &mut PacketPool,
    batch: &mut Batch,
) -> Result<Delivered, NoRoom> {
    if frame.len() > BUF_DATA_ROOM {
        return dropped(1);
    }
    let Some(mut p) = pool.alloc() else {
        return dropped(1);
    };
    match p.append(frame.len()) {
        Some(room) => room.copy_from_slice(frame),
        None => return dropped(1),
    }
    if vnet.flags & VNET_F_NEEDS_CSUM != 0 {
        if complete_csum(
            p.data_mut(),
            vnet.csum_start as usize,
            vnet.csum_offset as usize,
        )
        .is_none()
        {
            return dropped(1);
        }
        // Computed here over the data as it is.
        p.set_l4_csum_ok();
    } else if vnet.flags & VNET_F_DATA_VALID != 0 {
        p.set_l4_csum_ok();
    }
    if batch.push(p).is_err() {
        return dropped(1);
    }
    Ok(Delivered {
        pkts: 1,
        dropped: 0,
    })
}

/// Completes a partial checksum the way `skb_checksum_help` does: the field
/// holds the pseudo-header sum; the sum from `start` to the end, complemented,
/// replaces it (0 becomes 0xffff). `None` when the offsets do not fit.
pub fn complete_csum(data: &mut [u8], start: usize, offset: usize) -> Option<()> {
    let at = start.checked_add(offset)?;
    if at + 2 > data.len() || start > data.len() {
        return None;
    }
    let c = !fold(csum_add(0, &data[start..]));
    let c = if c == 0 { 0xffff } else { c };
    data[at..at + 2].copy_from_slice(&c.to_be_bytes());
    Some(())
}

/// Offset of the L3 header and its ethertype, past up to two VLAN tags.
fn l3_offset(frame: &[u8]) -> Option<(usize, u16)> {
    let mut off = 12;
    for _ in 0..3 {
        let et = u16::from_be_bytes([*frame.get(off)?, *frame.get(off + 1)?]);
        if et != ETHERTYPE_VLAN && et != ETHERTYPE_QINQ {
            return Some((off + 2, et));
        }
        off += 4;
    }
    None
}

/// Where the headers of a GSO superframe are.
struct GsoLayout {
    l3: usize,
    l4: usize,
    /// Length of Ethernet + IP + TCP/UDP headers (the part copied into every
    /// segment).
    hdr_len: usize,
    ipv4: bool,
    tcp: bool,
}

fn gso_layout(frame: &[u8], vnet: &VnetHdr) -> Option<GsoLayout> {
    let (l3, et) = l3_offset(frame)?;
    let ipv4 = match et {
        ETHERTYPE_IPV4 => true,
        ETHERTYPE_IPV6 => false,
        _ => return None,
    };
    let tcp = match vnet.gso_type & !VNET_GSO_ECN {
        VNET_GSO_TCPV4 if ipv4 => true,
        VNET_GSO_TCPV6 if !ipv4 => true,
        VNET_GSO_UDP_L4 => false,
        // UFO (IP fragmentation) and tunnel GSO: not supported.
        VNET_GSO_UDP => return None,
        _ => return None,
    };
    let ip_min = if ipv4 {
        let ihl = (*frame.get(l3)? & 0x0f) as usize * 4;
        if ihl < 20 || frame.get(l3)? >> 4 != 4 {
            return None;
        }
        l3 + ihl
    } else {
        if frame.get(l3)? >> 4 != 6 {
            return None;
        }
        l3 + 40
    };
    // csum_start is where the kernel says L4 begins (after IPv6 extension
    // headers too); without it only a plain IP header can be assumed.
    let l4 = if vnet.flags & VNET_F_NEEDS_CSUM != 0 {
        vnet.csum_start as usize
    } else {
        ip_min
    };
    if l4 < ip_min {
        return None;
    }
    let l4_len = if tcp {
        let doff = (*frame.get(l4 + 12)? >> 4) as usize * 4;
        if doff < 20 {
            return None;
        }
        doff
    } else {
        8
    };
    let hdr_len = l4 + l4_len;
    if hdr_len > frame.len() {
        return None;
    }
    Some(GsoLayout {
        l3,
        l4,
        hdr_len,
        ipv4,
        tcp,
    })
}

/// Software GSO: cuts a superframe into segments of at most `gso_size`
/// payload bytes, each a complete frame with its own headers and checksums.
fn segment(
    frame: &[u8],
    vnet: &VnetHdr,
    pool: &mut PacketPool,
    batch: &mut Batch,
) -> Result<Delivered, NoRoom> {
    let Some(lay) = gso_layout(frame, vnet) else {
        return dropped(1);
    };
    let mss = vnet.gso_size as usize;
    let payload = &frame[lay.hdr_len..];
    if mss == 0 || lay.hdr_len + mss > BUF_DATA_ROOM {
        return dropped(1);
    }
    let nseg = payload.len().div_ceil(mss).max(1);
    if nseg > BATCH_SIZE {
        return dropped(1);
    }
    if nseg > batch.space() {
        return Err(NoRoom);
    }
    let headers = &frame[..lay.hdr_len];
    let ip_id = u16::from_be_bytes([frame[lay.l3 + 4], frame[lay.l3 + 5]]);
    let seq0 = if lay.tcp {
        u32::from_be_bytes([
            frame[lay.l4 + 4],
            frame[lay.l4 + 5],
            frame[lay.l4 + 6],
            frame[lay.l4 + 7],
        ])
    } else {
        0
    };
    let mut out = Delivered::default();
    for i in 0..nseg {
        let start = (i * mss).min(payload.len());
        let chunk = &payload[start..(start + mss).min(payload.len())];
        let Some(mut p) = pool.alloc() else {
            out.dropped += nseg - i;
            break;
        };
        let Some(buf) = p.append(headers.len() + chunk.len()) else {
            out.dropped += nseg - i;
            break;
        };
        buf[..headers.len()].copy_from_slice(headers);
        buf[headers.len()..].copy_from_slice(chunk);
        fix_segment(
            buf,
            &lay,
            i,
            nseg,
            ip_id,
            seq0.wrapping_add((i * mss) as u32),
        );
        // `fix_segment` computed the checksum over the segment as it is.
        p.set_l4_csum_ok();
        if batch.push(p).is_err() {
            out.dropped += nseg - i;
            break;
        }
        out.pkts += 1;
    }
    Ok(out)
}

/// Rewrites the copied headers of segment `i` of `n`: lengths, IPv4 ident and
/// header checksum, TCP sequence and flags, and the full L4 checksum.
fn fix_segment(buf: &mut [u8], lay: &GsoLayout, i: usize, n: usize, ip_id: u16, seq: u32) {
    let (l3, l4) = (lay.l3, lay.l4);
    let l3_len = buf.len() - l3;
    let l4_len = buf.len() - l4;
    let proto = if lay.tcp { IPPROTO_TCP } else { IPPROTO_UDP };
    let pseudo = if lay.ipv4 {
        buf[l3 + 2..l3 + 4].copy_from_slice(&(l3_len as u16).to_be_bytes());
        buf[l3 + 4..l3 + 6].copy_from_slice(&ip_id.wrapping_add(i as u16).to_be_bytes());
        let ihl = (buf[l3] & 0x0f) as usize * 4;
        buf[l3 + 10..l3 + 12].copy_from_slice(&[0, 0]);
        let hc = !fold(csum_add(0, &buf[l3..l3 + ihl]));
        buf[l3 + 10..l3 + 12].copy_from_slice(&hc.to_be_bytes());
        csum_add(0, &buf[l3 + 12..l3 + 20]) + proto as u64 + l4_len as u64
    } else {
        buf[l3 + 4..l3 + 6].copy_from_slice(&((l3_len - 40) as u16).to_be_bytes());
        csum_add(0, &buf[l3 + 8..l3 + 40]) + proto as u64 + l4_len as u64
    };
    let csum_at = if lay.tcp {
        buf[l4 + 4..l4 + 8].copy_from_slice(&seq.to_be_bytes());
        let mut flags = buf[l4 + 13];
        if i + 1 != n {
            flags &= !(TCP_FIN | TCP_PSH);
        }
        if i != 0 {
            flags &= !TCP_CWR;
        }
        buf[l4 + 13] = flags;
        l4 + 16
    } else {
        buf[l4 + 4..l4 + 6].copy_from_slice(&(l4_len as u16).to_be_bytes());
        l4 + 6
    };
    buf[csum_at..csum_at + 2].copy_from_slice(&[0, 0]);
    let c = !fold(csum_add(pseudo, &buf[l4..]));
    // UDP reserves 0 for "no checksum"; TCP treats 0 and 0xffff alike.
    let c = if c == 0 && !lay.tcp { 0xffff } else { c };
    buf[csum_at..csum_at + 2].copy_from_slice(&c.to_be_bytes());
}

/// Adds `data` (starting at an even offset of the summed region) to a
/// ones'-complement accumulator (the wire module's vectorised sum).
#[inline]
pub fn csum_add(acc: u64, data: &[u8]) -> u64 {
    acc + u64::from(crate::wire::checksum::sum(data))
}

/// Folds an accumulator to 16 bits (not complemented).
pub fn fold(mut acc: u64) -> u16 {
    while acc >> 16 != 0 {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    acc as u16
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Ethernet + IPv4 + TCP superframe with `payload`, checksum field holding
    /// the pseudo-header sum as the kernel leaves it.
    fn tcp4_superframe(payload: &[u8], flags: u8) -> Vec<u8> {
        let mut f = vec![0u8; 14 + 20 + 20];
        f[0..6].copy_from_slice(&[2, 0, 0, 0, 0, 1]);
        f[6..12].copy_from_slice(&[2, 0, 0, 0, 0, 2]);
        f[12..14].copy_from_slice(&ETHERTYPE_IPV4.to_be_bytes());
        let ip = &mut f[14..34];
        ip[0] = 0x45;
        ip[2..4].copy_from_slice(&((40 + payload.len()) as u16).to_be_bytes());
        ip[4..6].copy_from_slice(&0x1234u16.to_be_bytes());
        ip[6] = 0x40; // DF
        ip[8] = 64;
        ip[9] = IPPROTO_TCP;
        ip[12..16].copy_from_slice(&[10, 0, 0, 1]);
        ip[16..20].copy_from_slice(&[10, 0, 0, 2]);
        let tcp = &mut f[34..54];
        tcp[0..2].copy_from_slice(&40000u16.to_be_bytes());
        tcp[2..4].copy_from_slice(&80u16.to_be_bytes());
        tcp[4..8].copy_from_slice(&0xffff_ff00u32.to_be_bytes()); // wraps
        tcp[8..12].copy_from_slice(&7u32.to_be_bytes());
        tcp[12] = 5 << 4;
        tcp[13] = flags;
        tcp[14..16].copy_from_slice(&1000u16.to_be_bytes());
        f.extend_from_slice(payload);
        f
    }

    fn ipv4_header_ok(f: &[u8]) -> bool {
        fold(csum_add(0, &f[14..34])) == 0xffff
    }

    fn l4_ok_v4(f: &[u8], proto: u8) -> bool {
        let l4 = &f[34..];
        let pseudo = csum_add(0, &f[26..34]) + proto as u64 + l4.len() as u64;
        fold(csum_add(pseudo, l4)) == 0xffff
    }

    fn pattern(n: usize) -> Vec<u8> {
        (0..n).map(|i| (i * 7 + i / 251) as u8).collect()
    }

    #[test]
    fn tcp4_gso_frame_becomes_three_valid_segments() {
        let payload = pattern(1448 * 2 + 1000);
        let frame = tcp4_superframe(&payload, TCP_CWR | TCP_PSH | TCP_FIN | 0x10);
        let vnet = VnetHdr {
            flags: VNET_F_NEEDS_CSUM,
            gso_type: VNET_GSO_TCPV4,
            hdr_len: 54,
            gso_size: 1448,
            csum_start: 34,
            csum_offset: 16,
        };
        let mut pool = PacketPool::new(8);
        let mut batch = Batch::new();
        let d = deliver(&frame, &vnet, &mut pool, &mut batch).unwrap();
        assert_eq!(
            d,
            Delivered {
                pkts: 3,
                dropped: 0
            }
        );
        let mut joined = Vec::new();
        for (i, p) in batch.packets().iter().enumerate() {
            let f = p.data();
            let seg_len = if i < 2 { 1448 } else { 1000 };
            assert_eq!(f.len(), 54 + seg_len);
            assert!(ipv4_header_ok(f), "segment {i} IPv4 checksum");
            assert!(l4_ok_v4(f, IPPROTO_TCP), "segment {i} TCP checksum");
            assert!(p.l4_csum_ok(), "segment {i}: computed here, known right");
            assert_eq!(u16::from_be_bytes([f[16], f[17]]) as usize, 40 + seg_len);
            assert_eq!(u16::from_be_bytes([f[18], f[19]]), 0x1234 + i as u16);
            let seq = u32::from_be_bytes([f[38], f[39], f[40], f[41]]);
            assert_eq!(seq, 0xffff_ff00u32.wrapping_add(1448 * i as u32));
            let flags = f[47];
            assert_eq!(flags & TCP_CWR != 0, i == 0, "CWR only on the first");
            assert_eq!(flags & (TCP_FIN | TCP_PSH) != 0, i == 2, "FIN/PSH last");
            assert_eq!(flags & 0x10, 0x10, "ACK kept");
            assert_eq!(&f[..14], &frame[..14]);
            joined.extend_from_slice(&f[54..]);
        }
        assert_eq!(joined, payload);
    }

    #[test]
    fn tcp6_and_udp_l4_gso() {
        // IPv6 + TCP, 2 segments.
        let payload = pattern(3000);
        let mut f = vec![0u8; 14 + 40 + 20];
        f[12..14].copy_from_slice(&ETHERTYPE_IPV6.to_be_bytes());
        f[14] = 0x60;
        f[20] = IPPROTO_TCP;
        f[21] = 64;
        f[22..38].copy_from_slice(&[0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
        f[38..54].copy_from_slice(&[0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2]);
        f[54 + 12] = 5 << 4;
        f[54 + 13] = 0x18;
        f.extend_from_slice(&payload);
        let vnet = VnetHdr {
            flags: VNET_F_NEEDS_CSUM,
            gso_type: VNET_GSO_TCPV6,
            gso_size: 1500,
            csum_start: 54,
            csum_offset: 16,
            ..Default::default()
        };
        let mut pool = PacketPool::new(8);
        let mut batch = Batch::new();
        let d = deliver(&f, &vnet, &mut pool, &mut batch).unwrap();
        assert_eq!(d.pkts, 2);
        for p in batch.packets() {
            let s = p.data();
            let l4 = &s[54..];
            assert_eq!(u16::from_be_bytes([s[18], s[19]]) as usize, l4.len());
            let pseudo = csum_add(0, &s[22..54]) + IPPROTO_TCP as u64 + l4.len() as u64;
            assert_eq!(fold(csum_add(pseudo, l4)), 0xffff);
        }
        // IPv4 + UDP GSO (UDP_L4), 3 datagrams of 500.
        let mut f = tcp4_superframe(&[], 0);
        f.truncate(34);
        f[23] = IPPROTO_UDP;
        f.extend_from_slice(&[0x30, 0x39, 0x00, 0x35, 0, 0, 0, 0]);
        f.extend_from_slice(&pattern(1500));
        let vnet = VnetHdr {
            flags: VNET_F_NEEDS_CSUM,
            gso_type: VNET_GSO_UDP_L4,
            gso_size: 500,
            csum_start: 34,
            csum_offset: 6,
            ..Default::default()
        };
        batch.clear();
        let d = deliver(&f, &vnet, &mut pool, &mut batch).unwrap();
        assert_eq!(d.pkts, 3);
        for p in batch.packets() {
            let s = p.data();
            assert_eq!(s.len(), 14 + 20 + 8 + 500);
            assert_eq!(u16::from_be_bytes([s[38], s[39]]), 508);
            assert!(ipv4_header_ok(s));
            assert!(l4_ok_v4(s, IPPROTO_UDP));
        }
    }

    #[test]
    fn needs_csum_udp_gets_a_valid_checksum() {
        let mut f = tcp4_superframe(&[], 0);
        f.truncate(34);
        f[23] = IPPROTO_UDP;
        let data = pattern(333); // odd length on purpose
        f[16..18].copy_from_slice(&((20 + 8 + data.len()) as u16).to_be_bytes());
        f[24..26].copy_from_slice(&[0, 0]);
        let hc = !fold(csum_add(0, &f[14..34]));
        f[24..26].copy_from_slice(&hc.to_be_bytes());
        let ulen = (8 + data.len()) as u16;
        f.extend_from_slice(&[0x30, 0x39, 0x00, 0x35]);
        f.extend_from_slice(&ulen.to_be_bytes());
        // Partial checksum: the folded pseudo-header sum, as the kernel leaves it.
        let pseudo = fold(csum_add(0, &f[26..34]) + IPPROTO_UDP as u64 + ulen as u64);
        f.extend_from_slice(&pseudo.to_be_bytes());
        f.extend_from_slice(&data);
        assert!(!l4_ok_v4(&f, IPPROTO_UDP));
        let vnet = VnetHdr {
            flags: VNET_F_NEEDS_CSUM,
            csum_start: 34,
            csum_offset: 6,
            ..Default::default()
        };
        let mut pool = PacketPool::new(2);
        let mut batch = Batch::new();
        let d = deliver(&f, &vnet, &mut pool, &mut batch).unwrap();
        assert_eq!(d.pkts, 1);
        let out = batch.packets()[0].data();
        assert!(l4_ok_v4(out, IPPROTO_UDP));
        assert!(
            batch.packets()[0].l4_csum_ok(),
            "computed here: known right"
        );
        assert_eq!(&out[..40], &f[..40], "only the checksum changes");
        assert_eq!(&out[42..], &f[42..]);
    }

    #[test]
    fn only_checksums_computed_or_verified_are_marked_known() {
        let frame = tcp4_superframe(&pattern(100), 0x10);
        let mut pool = PacketPool::new(4);
        let mut batch = Batch::new();
        // No flags: the checksum field is whatever came in.
        deliver(&frame, &VnetHdr::default(), &mut pool, &mut batch).unwrap();
        // The kernel verified it (CHECKSUM_UNNECESSARY).
        let valid = VnetHdr {
            flags: VNET_F_DATA_VALID,
            ..Default::default()
        };
        deliver(&frame, &valid, &mut pool, &mut batch).unwrap();
        let known: Vec<bool> = batch.packets().iter().map(|p| p.l4_csum_ok()).collect();
        assert_eq!(known, [false, true]);
    }

    #[test]
    fn bad_frames_are_counted_not_delivered() {
        let mut pool = PacketPool::new(4);
        let mut batch = Batch::new();
        let none = VnetHdr::default();
        // Too big for a buffer without GSO.
        let big = vec![0u8; BUF_DATA_ROOM + 1];
        let d = deliver(&big, &none, &mut pool, &mut batch).unwrap();
        assert_eq!((d.pkts, d.dropped), (0, 1));
        // Unknown GSO type (UFO).
        let frame = tcp4_superframe(&pattern(4000), 0x10);
        let ufo = VnetHdr {
            gso_type: VNET_GSO_UDP,
            gso_size: 1400,
            ..Default::default()
        };
        let d = deliver(&frame, &ufo, &mut pool, &mut batch).unwrap();
        assert_eq!((d.pkts, d.dropped), (0, 1));
        // csum_offset past the end.
        let bad = VnetHdr {
            flags: VNET_F_NEEDS_CSUM,
            csum_start: 60,
            csum_offset: 16,
            ..Default::default()
        };
        let d = deliver(&frame[..64], &bad, &mut pool, &mut batch).unwrap();
        assert_eq!((d.pkts, d.dropped), (0, 1));
        // Two of four buffers held: 2 of 3 segments fit, the third is counted.
        let _hold = pool.alloc().unwrap();
        let _hold2 = pool.alloc().unwrap();
        let tso = VnetHdr {
            flags: VNET_F_NEEDS_CSUM,
            gso_type: VNET_GSO_TCPV4,
            gso_size: 1400,
            csum_start: 34,
            csum_offset: 16,
            ..Default::default()
        };
        let d = deliver(&frame, &tso, &mut pool, &mut batch).unwrap();
        assert_eq!((d.pkts, d.dropped), (2, 1));
        assert!(batch.len() == 2 && pool.available() == 0);
        assert!(VnetHdr::parse(&tso.to_bytes()) == tso);
    }

    #[test]
    fn full_batch_asks_to_come_back() {
        let mut pool = PacketPool::new(300);
        let mut batch = Batch::new();
        for _ in 0..BATCH_SIZE - 1 {
            batch.push(pool.alloc().unwrap()).unwrap();
        }
        let frame = tcp4_superframe(&pattern(4000), 0x10);
        let tso = VnetHdr {
            gso_type: VNET_GSO_TCPV4,
            gso_size: 1400,
            ..Default::default()
        };
        assert_eq!(deliver(&frame, &tso, &mut pool, &mut batch), Err(NoRoom));
        assert_eq!(batch.len(), BATCH_SIZE - 1);
    }
}
