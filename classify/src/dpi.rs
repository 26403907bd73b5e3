//! The signature stage: runs the dissectors over a flow's first packets
//! until one is sure ([`Dpi::inspect`]). Allocation-free: per-flow state is
//! a [`FlowDpi`] the caller keeps (inline, fixed size) and per-worker state
//! (FTP data connections announced on a control connection) lives in the
//! [`Dpi`] itself.

use crate::class::Class;
use crate::dissect::{self, Ctx};
use crate::view::{PacketView, Step, Verdict};

/// Packets with payload of one flow (both directions) the dissectors see
/// before the flow is left to the model as `unknown`.
pub const MAX_DPI_PACKETS: u16 = 16;

/// One flow's classification state.
#[derive(Clone, Debug, Default)]
pub struct FlowDpi {
    verdict: Option<Verdict>,
    /// Payload packets seen.
    packets: u16,
    /// Bit `i` set: dissector `i` said `NotMine`.
    ruled_out: u16,
    /// An FTP control connection: its later packets still announce data
    /// connections (as nDPI, the dissector keeps watching after the
    /// verdict).
    ftp_watch: bool,
    states: dissect::States,
}

impl FlowDpi {
    /// The verdict, once there is one.
    pub fn verdict(&self) -> Option<Verdict> {
        self.verdict
    }

    /// Payload packets the dissectors saw.
    pub fn packets(&self) -> u16 {
        self.packets
    }

    /// Whether [`Dpi::inspect`] still wants this flow's packets: no
    /// verdict yet, or an FTP control connection being watched.
    pub fn wants_packets(&self) -> bool {
        self.verdict.is_none() || self.ftp_watch
    }
}

/// A worker's (or an offline run's) signature classifier.
#[derive(Debug, Default)]
pub struct Dpi {
    ctx: Ctx,
}

impl Dpi {
    pub fn new() -> Dpi {
        Dpi::default()
    }

    /// Shows `p` (a packet of the flow whose state is `flow`; `now_ns` any
    /// monotonic clock) to the dissectors still in the running. Returns the
    /// verdict once there is one: a dissector's, an announced FTP data
    /// connection's, or `unknown` (confidence 0) when every dissector ruled
    /// itself out or [`MAX_DPI_PACKETS`] went by.
    pub fn inspect(
        &mut self,
        flow: &mut FlowDpi,
        p: &PacketView<'_>,
        now_ns: u64,
    ) -> Option<Verdict> {
        self.ctx.now_ns = now_ns;
        if flow.verdict.is_some() {
            if flow.ftp_watch && !p.payload.is_empty() {
                flow.ftp_watch = flow.states.ftp.watch(&mut self.ctx, p);
            }
            return flow.verdict;
        }
        if flow.packets == 0 && flow.ruled_out == 0 {
            if let Some(v) = self.ctx.expected(p) {
                flow.verdict = Some(v);
                return flow.verdict;
            }
        }
        if p.payload.is_empty() {
            return None;
        }
        flow.packets += 1;
        for i in 0..dissect::COUNT {
            if flow.ruled_out & (1 << i) != 0 {
                continue;
            }
            match flow.states.inspect(i, &mut self.ctx, p) {
                Step::More => {}
                Step::Done(v) => {
                    flow.verdict = Some(v);
                    flow.ftp_watch = i == dissect::FTP && v.class == Class::Ftp;
                    return flow.verdict;
                }
                Step::NotMine => flow.ruled_out |= 1 << i,
            }
        }
        let all = (1u16 << dissect::COUNT) - 1;
        if flow.ruled_out == all || flow.packets >= MAX_DPI_PACKETS {
            flow.verdict = Some(Verdict {
                class: Class::Unknown,
                name: None,
                confidence: 0.0,
            });
        }
        flow.verdict
    }
}
