//! The punt path in the pipeline (see [`crate::punt`]): what goes to the
//! kernel's TAPs and what comes back from them.

use std::sync::Arc;

use super::icmp_limit::TokenBucket;
use super::Pipeline;
use crate::buffer::Packet;
use crate::counters::{bump, DropReason};
use crate::punt::PuntTaps;

/// Frames read from one TAP per poll at most.
const READ_BUDGET: usize = 64;
/// When the TAPs had nothing, how long before looking again (ns).
const IDLE_READ_INTERVAL_NS: u64 = 20_000;

/// A worker's side of the punt path.
#[derive(Debug)]
pub(super) struct PuntState {
    taps: Arc<PuntTaps>,
    bucket: TokenBucket,
    /// This worker reads the TAPs (worker 0).
    reader: bool,
    last_read: u64,
    /// The last read found frames: look again at the next poll.
    busy: bool,
}

impl Pipeline {
    /// Punts to `taps` at most `rate_pps` (burst `burst`) packets per
    /// second; `reader`: this worker also sends what the kernel writes.
    pub fn set_punt(&mut self, taps: Arc<PuntTaps>, rate_pps: u32, burst: u32, reader: bool) {
        self.punt = Some(PuntState {
            taps,
            bucket: TokenBucket::new(rate_pps, burst),
            reader,
            last_read: 0,
            busy: true,
        });
    }

    /// True when packets for the engine's addresses go to the kernel.
    #[inline]
    pub(super) fn punt_on(&self) -> bool {
        self.punt.as_ref().is_some_and(|st| st.taps.is_ready())
    }

    /// Hands a packet addressed to the engine to the kernel, as received.
    pub(super) fn punt(&mut self, p: Packet, now: u64) {
        match self.punt_write(&p, now) {
            Ok(()) => {}
            Err(r) => self.drop_packet(p, r),
        }
    }

    /// Copies a frame to the kernel and leaves it to the pipeline (ARP).
    pub(super) fn punt_copy(&mut self, p: &Packet, now: u64) {
        if !self.punt_on() {
            return;
        }
        if let Err(r) = self.punt_write(p, now) {
            self.tally.add(r);
        }
    }

    fn punt_write(&mut self, p: &Packet, now: u64) -> Result<(), DropReason> {
        let Some(st) = self.punt.as_mut() else {
            return Err(DropReason::LocalUnsupported);
        };
        let Some(tap) = st.taps.get(p.meta().rx_port) else {
            return Err(DropReason::LocalUnsupported);
        };
        if !st.bucket.take(now) {
            return Err(DropReason::PuntRateLimited);
        }
        tap.write_frame(p.data())
            .map_err(|_| DropReason::PuntFailed)?;
        bump(&self.counters.punt_to_host, 1);
        Ok(())
    }

    /// The reader worker: sends what the kernel wrote to the TAPs out
    /// through their ports, unchanged.
    pub(super) fn punt_poll(&mut self, now: u64) {
        let Some(st) = self.punt.as_mut() else {
            return;
        };
        if !st.reader || (!st.busy && now.wrapping_sub(st.last_read) < IDLE_READ_INTERVAL_NS) {
            return;
        }
        st.last_read = now;
        let taps = st.taps.clone();
        let mut got = 0u64;
        for (port, tap) in taps.by_port.iter().enumerate() {
            let Some(tap) = tap else {
                continue;
            };
            for _ in 0..READ_BUDGET {
                let Some(mut p) = self.pool.alloc() else {
                    break;
                };
                let n = match tap.read_frame(p.room_mut()) {
                    Ok(n) if n >= 14 => n,
                    Ok(_) => continue,
                    Err(_) => break,
                };
                let _ = p.set_len(n);
                got += 1;
                self.enqueue_tx(port as u16, p);
            }
        }
        bump(&self.counters.punt_from_host, got);
        if let Some(st) = self.punt.as_mut() {
            st.busy = got > 0;
        }
    }

    /// The TAP descriptors the reader worker may sleep on.
    pub fn punt_wait_fds(&self) -> Vec<std::os::fd::RawFd> {
        match &self.punt {
            Some(st) if st.reader => st
                .taps
                .by_port
                .iter()
                .flatten()
                .map(|t| t.raw_fd())
                .collect(),
            _ => Vec::new(),
        }
    }
}
