//! The synthetic traffic source of a `mem` port: picks a flow and a size per
//! packet, copies the prebuilt frame into a pool buffer, and obeys the rate
//! limit and the packet count.

use std::time::Instant;

use super::rate::TokenBucket;
use super::template::{HostRange, Templates, MIN_FRAME};
use crate::buffer::{Batch, PacketPool, BUF_DATA_ROOM};
use crate::config::{parse_mac, parse_prefix, FlowPattern, GeneratorConfig};

/// Source MAC of generated frames unless configured.
pub(super) const DEFAULT_SRC_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0xfe];

/// wyrand: a fast 64-bit generator, good enough to spread flows.
#[derive(Debug)]
struct WyRand(u64);

impl WyRand {
    #[inline]
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0xa076_1d64_78bd_642f);
        let t = u128::from(self.0) * u128::from(self.0 ^ 0xe703_7ed1_a0b4_28db);
        (t >> 64) as u64 ^ t as u64
    }

    /// Uniform in `0..n` (multiply-shift, no division).
    #[inline]
    fn below(&mut self, n: u32) -> u32 {
        ((u128::from(self.next()) * u128::from(n)) >> 64) as u32
    }
}

/// Generator state of one queue.
pub(super) struct Generator {
    templates: Templates,
    sizes: Box<[u16]>,
    flows: u32,
    pattern: FlowPattern,
    next_flow: u32,
    next_size: usize,
    rng: WyRand,
    limiter: Option<(TokenBucket, Instant)>,
    /// Packets still to send (`None` = unlimited).
    remaining: Option<u64>,
}

impl Generator {
    /// Validates `g` and prebuilds the templates of queue `queue`, whose flows
    /// are `queue * flows .. (queue + 1) * flows` so workers differ.
    pub(super) fn new(g: &GeneratorConfig, queue: usize, own_mac: [u8; 6]) -> Result<Self, String> {
        if g.flows == 0 {
            return Err("generator.flows must be at least 1".into());
        }
        if g.sizes.is_empty() {
            return Err("generator.sizes needs at least one size".into());
        }
        if let Some(s) = g
            .sizes
            .iter()
            .find(|s| (**s as usize) < MIN_FRAME || **s as usize > BUF_DATA_ROOM)
        {
            return Err(format!(
                "generator.sizes: {s} is not {MIN_FRAME}..={BUF_DATA_ROOM}"
            ));
        }
        let (sa, sl) = parse_prefix(&g.src, false).map_err(|m| format!("generator.src: {m}"))?;
        let (da, dl) = parse_prefix(&g.dst, false).map_err(|m| format!("generator.dst: {m}"))?;
        let mac = |m: &Option<String>, key: &str, default: [u8; 6]| match m {
            Some(s) => parse_mac(s).map_err(|e| format!("generator.{key}: {e}")),
            None => Ok(default),
        };
        let dst_mac = mac(&g.dst_mac, "dst_mac", own_mac)?;
        let src_mac = mac(&g.src_mac, "src_mac", DEFAULT_SRC_MAC)?;
        let templates = Templates::build(
            g.flows,
            queue as u64 * u64::from(g.flows),
            &g.sizes,
            HostRange::new(sa, sl),
            HostRange::new(da, dl),
            g.src_port,
            g.dst_port,
            dst_mac,
            src_mac,
        );
        Ok(Generator {
            templates,
            sizes: g.sizes.clone().into_boxed_slice(),
            flows: g.flows,
            pattern: g.pattern,
            next_flow: 0,
            next_size: 0,
            rng: WyRand(g.seed ^ (queue as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15)),
            limiter: (g.rate_pps > 0).then(|| (TokenBucket::new(g.rate_pps), Instant::now())),
            remaining: (g.count > 0).then_some(g.count),
        })
    }

    /// True once `count` packets were generated.
    pub(super) fn exhausted(&self) -> bool {
        self.remaining == Some(0)
    }

    /// Fills `batch` with as many packets as space, pool, rate and count allow.
    pub(super) fn fill(&mut self, pool: &mut PacketPool, batch: &mut Batch) -> usize {
        let mut want = batch.space() as u64;
        if let Some(r) = self.remaining {
            want = want.min(r);
        }
        if let Some((bucket, start)) = &mut self.limiter {
            // One clock read per burst.
            let now_ns = u64::try_from(start.elapsed().as_nanos()).unwrap_or(u64::MAX);
            want = want.min(bucket.refill(now_ns));
        }
        // Cursors live in locals during the loop so they stay in registers
        // (buffer writes could otherwise alias them).
        let (mut next_flow, mut next_size) = (self.next_flow, self.next_size);
        let (flows, sizes, templates) = (self.flows, &*self.sizes, &self.templates);
        let mut made = 0u64;
        while made < want {
            let Some(mut p) = pool.alloc() else { break };
            let flow = match self.pattern {
                FlowPattern::Fixed => {
                    let f = next_flow;
                    next_flow = if f + 1 == flows { 0 } else { f + 1 };
                    f
                }
                FlowPattern::Random => self.rng.below(flows),
            };
            let s = next_size;
            next_size = if s + 1 == sizes.len() { 0 } else { s + 1 };
            // Sizes were checked against the data room at open.
            let Some(room) = p.append(sizes[s] as usize) else {
                break;
            };
            templates.write_frame(flow as usize, s, room);
            if batch.push(p).is_err() {
                break;
            }
            made += 1;
        }
        self.next_flow = next_flow;
        self.next_size = next_size;
        if let Some((bucket, _)) = &mut self.limiter {
            bucket.consume(made);
        }
        if let Some(r) = &mut self.remaining {
            *r -= made;
        }
        made as usize
    }
}
