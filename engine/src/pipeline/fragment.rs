//! IPv4 fragmentation (RFC 791 §3.2, RFC 1812 §5.2.6) of packets larger than
//! the egress MTU whose DF bit is clear. Each fragment is built in a fresh
//! buffer and forwarded on its own; the original is then released.

use super::Pipeline;
use crate::buffer::Packet;
use crate::counters::{bump, DropReason};
use crate::wire::ipv4::Ipv4Packet;

/// Room reserved in front of a fragment for its Ethernet header.
const L2_RESERVE: usize = 14;
/// Longest IPv4 header.
const MAX_HEADER: usize = 60;

/// The header later fragments carry: the fixed part and only the options
/// whose "copied" flag is set, padded to a multiple of 4 bytes.
fn later_header(first: &[u8], out: &mut [u8; MAX_HEADER]) -> usize {
    out[..20].copy_from_slice(&first[..20]);
    let mut n = 20;
    let opts = &first[20..];
    let mut i = 0;
    while i < opts.len() {
        let kind = opts[i];
        match kind {
            0 => break,
            1 => i += 1,
            _ => {
                let len = opts.get(i + 1).copied().unwrap_or(0) as usize;
                if len < 2 || i + len > opts.len() {
                    break;
                }
                if kind & 0x80 != 0 {
                    out[n..n + len].copy_from_slice(&opts[i..i + len]);
                    n += len;
                }
                i += len;
            }
        }
    }
    while n % 4 != 0 {
        out[n] = 0;
        n += 1;
    }
    out[0] = 0x40 | (n / 4) as u8;
    n
}

impl Pipeline {
    /// Splits `p` (TTL already decremented) into fragments that fit `mtu`
    /// and forwards each towards `next_hop` on `iface`.
    pub(super) fn fragment_and_forward(
        &mut self,
        p: &Packet,
        iface: u16,
        next_hop: u32,
        mtu: u16,
        now: u64,
    ) -> Result<(), DropReason> {
        let l3 = p.meta().l3_offset as usize;
        let data = &p.data()[l3..];
        let ip = Ipv4Packet::new_unchecked(data);
        let hl = ip.header_len();
        let total = ip.total_len() as usize;
        let base_offset = ip.frag_offset() as usize;
        let orig_mf = ip.more_frags();
        let mut later = [0u8; MAX_HEADER];
        let later_len = later_header(&data[..hl], &mut later);
        let payload = &data[hl..total];
        let mtu = mtu as usize;
        // Every fragment but the last carries a multiple of 8 bytes.
        if mtu < hl + 8 || mtu < later_len + 8 {
            return Err(DropReason::MtuExceeded);
        }
        let mut off = 0;
        while off < payload.len() {
            let (hdr, h): (&[u8], usize) = if off == 0 {
                (&data[..hl], hl)
            } else {
                (&later[..later_len], later_len)
            };
            let room = (mtu - h) & !7;
            let chunk = room.min(payload.len() - off);
            let last = off + chunk == payload.len();
            let Some(mut q) = self.pool.alloc() else {
                return Err(DropReason::NoBuffer);
            };
            let Some(buf) = q.append(L2_RESERVE + h + chunk) else {
                return Err(DropReason::NoBuffer);
            };
            buf[L2_RESERVE..L2_RESERVE + h].copy_from_slice(hdr);
            buf[L2_RESERVE + h..].copy_from_slice(&payload[off..off + chunk]);
            {
                let mut f = Ipv4Packet::new_unchecked(&mut buf[L2_RESERVE..]);
                f.set_total_len((h + chunk) as u16);
                f.set_flags_and_offset(false, !last || orig_mf, (base_offset + off) as u16);
                f.fill_checksum();
            }
            let m = q.meta_mut();
            m.l3_offset = L2_RESERVE as u16;
            m.rx_iface = p.meta().rx_iface;
            m.tx_iface = iface;
            m.next_hop = next_hop;
            bump(&self.counters.ipv4_fragments_sent, 1);
            self.forward(q, now);
            off += chunk;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn later_header_keeps_only_copied_options() {
        // IHL 8: options = NOP, record route (7, not copied, len 7), LSRR (0x83, copied, len 7), EOL.
        let mut h = [0u8; 32];
        h[0] = 0x48;
        h[20] = 1;
        h[21..28].copy_from_slice(&[7, 7, 4, 0, 0, 0, 0]);
        h[28..32].copy_from_slice(&[0x83, 7, 4, 0]);
        // The LSRR option runs past the header: it is ignored, not copied.
        let mut out = [0u8; MAX_HEADER];
        assert_eq!(later_header(&h, &mut out), 20);
        assert_eq!(out[0], 0x45);
        let mut h2 = [0u8; 28];
        h2[0] = 0x47;
        h2[20..27].copy_from_slice(&[0x83, 7, 4, 1, 2, 3, 4]);
        assert_eq!(later_header(&h2, &mut out), 28);
        assert_eq!(&out[20..27], &[0x83, 7, 4, 1, 2, 3, 4]);
        assert_eq!(out[0], 0x47);
    }
}
