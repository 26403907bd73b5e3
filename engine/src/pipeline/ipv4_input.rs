//! Stage 2: IPv4 header checks — version, IHL, lengths, checksum, martian
//! sources — and trimming of Ethernet padding.

use super::Pipeline;
use crate::buffer::{Batch, Disposition};
use crate::counters::DropReason;
use crate::wire::checksum;
use crate::wire::ipv4::Ipv4Packet;
use crate::wire::WireError;

/// Sources that must never be routed (RFC 1812 5.3.7): 0/8, 127/8,
/// multicast, class E and limited broadcast.
#[inline]
pub(super) fn is_martian_source(src: u32) -> bool {
    let first = src >> 24;
    first == 0 || first == 127 || first >= 224
}

/// Every check below on a 20-byte header (no options) that is fine, read
/// as one array: its total length when it passes, None when anything is off
/// (the full checks then say what). `room` = bytes from the header to the
/// end of the frame.
#[inline(always)]
pub(super) fn fast_check(h: &[u8; 20], room: usize) -> Option<usize> {
    let total = usize::from(u16::from_be_bytes([h[2], h[3]]));
    let src = u32::from_be_bytes([h[12], h[13], h[14], h[15]]);
    let dst = u32::from_be_bytes([h[16], h[17], h[18], h[19]]);
    (h[0] == 0x45
        && total >= 20
        && total <= room
        && checksum::ipv4_header20_ok(h)
        && !is_martian_source(src)
        && dst >> 28 != 0xe
        && dst != u32::MAX)
        .then_some(total)
}

impl Pipeline {
    pub(super) fn ipv4_input(&mut self, batch: &mut Batch) {
        for p in batch.packets_mut() {
            if p.meta().disposition != Disposition::Continue {
                continue;
            }
            let l3 = p.meta().l3_offset as usize;
            if p.meta().l3_checked {
                continue;
            }
            if let Some(h) = p.data().get(l3..l3 + 20) {
                if let Some(total) = fast_check(h.try_into().expect("20 bytes"), p.len() - l3) {
                    p.truncate(l3 + total);
                    continue;
                }
            }
            // Anything else: the full checks, which also name the error.
            let verdict = match Ipv4Packet::new_checked(&p.data()[l3..]) {
                Err(WireError::BadVersion) => Err(DropReason::Ipv4BadVersion),
                Err(WireError::BadHeaderLen) => Err(DropReason::Ipv4BadIhl),
                Err(WireError::BadTotalLen) => Err(DropReason::Ipv4BadLength),
                Err(_) => Err(DropReason::Ipv4Truncated),
                Ok(ip) if !ip.verify_checksum() => Err(DropReason::Ipv4BadChecksum),
                Ok(ip) if is_martian_source(u32::from(ip.src_addr())) => {
                    Err(DropReason::Ipv4Martian)
                }
                Ok(ip) => {
                    let dst = u32::from(ip.dst_addr());
                    if dst >> 28 == 0xe || dst == u32::MAX {
                        Err(DropReason::NotForwardable)
                    } else {
                        Ok(ip.total_len() as usize)
                    }
                }
            };
            match verdict {
                Ok(total) => p.truncate(l3 + total),
                Err(r) => p.meta_mut().disposition = Disposition::Drop(r),
            }
        }
    }
}
