//! The fast path of a plain router: when no NAT, balancer or classifier is
//! configured, [`super::fast_path`]'s checks and rewrite run in one pass
//! over the batch, after the batch's route lookups. Each packet moves once,
//! from the RX batch to its TX batch; the two-pass form's lanes and second
//! walk exist for the features that act between the checks and the lookup,
//! and only cost when none is on. The lookups stay batched: with
//! destinations spread over the table, looking each one up inside the pass
//! was 8 % slower than the two-pass form (perf/RESULTS.md), since the
//! table's cache misses no longer overlapped.
//!
//! The decisions are the same as the two-pass form's, in the same order:
//! anything but a plain packet is set aside untouched (after the trim to
//! its IP length once its header passed) for the full stages.

use super::fast_path::{set_aside, Route, FAST_HEADERS};
use super::{ipv4_input, Pipeline};
use crate::buffer::Batch;
use crate::fib::lpm::LPM_MISS;
use crate::wire::ethernet::ETHERTYPE_IPV4;

impl Pipeline {
    /// True when the one-pass form applies (see the module notes).
    #[inline]
    pub(super) fn plain_router(&self) -> bool {
        self.nat.is_none() && !self.lb_on() && self.classify.is_none()
    }

    /// Forwards the batch's plain packets; leaves every other one in `slow`
    /// (in arrival order) for the full stages.
    pub(super) fn fast_path_plain(
        &mut self,
        batch: &mut Batch,
        port: u16,
        slow: &mut Batch,
        now: u64,
    ) {
        let Some((mac, _)) = self.ifaces.untagged(port).filter(|&(_, i)| i != u16::MAX) else {
            // No untagged interface on this port: nothing here is plain.
            batch.take_each(|_, p| set_aside(slow, p, port, false));
            return;
        };
        // A clone (two atomic operations per batch): see `fast_path`.
        let fib = self.fib.clone();
        // The batch's route lookups first, as in the two-pass form: their
        // table reads are independent, so their cache misses overlap (a
        // frame too short to hold a destination looks up 0; its result is
        // never read).
        let n = batch.len();
        for (d, p) in self.dst.iter_mut().zip(batch.packets()) {
            *d = p
                .data()
                .get(30..FAST_HEADERS)
                .map_or(0, |b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]));
        }
        fib.lookup_batch(&self.dst[..n], &mut self.nh[..n]);
        let mut last: Option<Route> = None;
        batch.take_each(|i, mut p| {
            let Some(h) = p.data().get(..FAST_HEADERS) else {
                return set_aside(slow, p, port, false);
            };
            if h[12..14] != ETHERTYPE_IPV4.to_be_bytes() || h[..6] != mac {
                return set_aside(slow, p, port, false);
            }
            let ip: &[u8; 20] = h[14..].try_into().expect("20 bytes");
            let Some(total) = ipv4_input::fast_check(ip, p.len() - 14) else {
                return set_aside(slow, p, port, false);
            };
            let (ttl, dst) = (ip[8], u32::from_be_bytes([ip[16], ip[17], ip[18], ip[19]]));
            let csum = u16::from_be_bytes([ip[10], ip[11]]);
            p.truncate(14 + total);
            let idx = self.nh[i];
            if idx == LPM_MISS {
                return set_aside(slow, p, port, false);
            }
            let route = match last {
                Some(r) if r.idx == idx => r,
                _ => {
                    let Some(r) = Route::of(&fib, &self.ifaces, idx) else {
                        return set_aside(slow, p, port, false);
                    };
                    last = Some(r);
                    r
                }
            };
            // `total` is the header's own length field, as in `fast_path`.
            if ttl <= 1 || total > usize::from(route.mtu) {
                return set_aside(slow, p, port, false);
            }
            let csum = crate::wire::checksum::ttl_decrement_update(csum);
            // In bounds: the frame holds at least FAST_HEADERS bytes (checked
            // above; the trim kept 14 + total >= 34).
            let h = &mut p.data_mut()[14..FAST_HEADERS];
            h[8] = ttl - 1;
            h[10..12].copy_from_slice(&csum.to_be_bytes());
            self.forward_to(p, route.iface, route.gw.unwrap_or(dst), 14, now);
        });
    }
}
