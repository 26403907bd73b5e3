//! WAN paths in the pipeline: where [`crate::wan::runtime::WanRuntime`]
//! is called.
//!
//! - Steering: a packet routed into a path tunnel (`wg_route`, on the
//!   worker owning the paths' peers) gets the path its flow's policy
//!   chooses among the site's paths ([`Pipeline::wan_steer`]); the
//!   policy comes from the flow's class (the classifier's flow table) and
//!   tenant (the ingress VLAN). The policy travels in the packet's meta
//!   to encapsulation.
//! - Encoding: before encryption ([`Pipeline::wan_wrap`]) a steered packet
//!   whose policy compresses or protects it becomes an enveloped WAN
//!   packet; parity packets a full FEC group produces are built in new
//!   buffers and sent on the same tunnel.
//! - Receiving: an enveloped packet out of a tunnel ([`Pipeline::wan_input`])
//!   is unwrapped: probes are reflected back through the tunnel, replies
//!   feed the prober, FEC and compression are undone, and every inner IP
//!   packet (its source checked against the peer's allowed IPs) runs
//!   through the stages like any decrypted packet.
//! - Timers ([`Pipeline::wan_tick`], every poll, at most once per
//!   millisecond): probes, FEC group deadlines, path states.
//!
//! Only one worker runs the WAN state: the owner of the path tunnels'
//! peers (every path tunnel has one peer, so worker 0); other workers
//! hand tunnel traffic to it as `wg_route` and `wg_input` already do.

use std::sync::Arc;

use super::Pipeline;
use crate::buffer::{Packet, PacketMeta};
use crate::counters::DropReason;
use crate::wan::envelope::{self, ENVELOPE_LEN};
use crate::wan::runtime::{WanRuntime, MAX_WAN_LEN};
use crate::wan::{AppClass, PolicyId, TenantId};
use crate::wg::{Encap, PeerId};
use crate::wg_plan::TunnelKey;
use crate::wire::ipv4::{PROTO_TCP, PROTO_UDP};

/// Timers run at most this often.
const WAN_TICK_NS: u64 = 1_000_000;

/// The WAN state of the worker that runs it.
pub(super) struct WanState {
    rt: Box<WanRuntime>,
    counters: Arc<[std::sync::atomic::AtomicU64]>,
    /// Encoding output.
    buf: Box<[u8]>,
    next_tick: u64,
    /// Packets built outside the packet in hand (parity, probes, replies,
    /// unwrapped inner packets), with the position of their tunnel.
    out: Vec<(Out, Packet)>,
    /// Position in `wg` of each path's tunnel (refreshed every tick: the
    /// tunnels may be reconfigured).
    path_pos: Vec<Option<u16>>,
}

/// What to do with a packet the WAN state built.
#[derive(Clone, Copy)]
enum Out {
    /// Encrypt it into the tunnel at this position.
    Wan(u16),
    /// An inner packet out of the tunnel at this position: run the stages.
    Inner(u16),
}

impl Pipeline {
    /// Runs `[wan]` on this worker (the one owning the path tunnels).
    pub fn enable_wan(
        &mut self,
        shared: &crate::wan_shared::WanShared,
        worker: usize,
    ) -> Result<(), String> {
        let rt = WanRuntime::new(shared.cfg.clone())?;
        self.wan = Some(Box::new(WanState {
            rt: Box::new(rt),
            counters: shared.counters[worker].clone(),
            buf: vec![0; MAX_WAN_LEN + ENVELOPE_LEN].into_boxed_slice(),
            next_tick: 0,
            out: Vec::with_capacity(256),
            path_pos: vec![None; shared.cfg.paths.len()],
        }));
        Ok(())
    }

    /// Steering: for a packet routed into tunnel `key` (IPv4 at `l3`),
    /// the tunnel of the path its flow takes and its policy. `None`: not a
    /// path tunnel, or no path alive (the route's own tunnel is used).
    #[inline]
    pub(super) fn wan_steer(
        &mut self,
        p: &Packet,
        key: TunnelKey,
        now: u64,
    ) -> Option<(TunnelKey, PolicyId)> {
        let st = self.wan.as_mut()?;
        let routed = st.rt.path_of_tunnel(key)?;
        let ip = p.data().get(usize::from(p.meta().l3_offset)..)?;
        let class = self
            .classify
            .as_ref()
            .and_then(|c| c.flow_of(ip))
            .map_or(patronus_classify::Class::Unknown, |(f, _)| f.class);
        let class = AppClass(
            patronus_classify::Class::ALL
                .iter()
                .position(|c| *c == class)
                .unwrap_or(0) as u16,
        );
        let tenant = TenantId(u32::from(p.meta().vlan));
        let (path, policy) = st.rt.steer(routed, fingerprint(ip), tenant, class, now)?;
        Some((st.rt.tunnel_of(path), policy))
    }

    /// Bytes a packet under `policy` may grow by when wrapped.
    #[inline]
    pub(super) fn wan_overhead(&self, policy: PolicyId) -> u16 {
        self.wan
            .as_ref()
            .and_then(|st| st.rt.config().actions.get(usize::from(policy.0)))
            .map_or(0, |a| a.overhead())
    }

    /// Before encryption into tunnel position `t`: wraps a steered packet
    /// (IPv4 at offset 0) as its policy says, and queues the parity
    /// packets it completes. Err: drop it.
    pub(super) fn wan_wrap(&mut self, p: &mut Packet, t: u16, now: u64) -> Result<(), DropReason> {
        let policy = p.meta().wan_policy;
        let Some(st) = self.wan.as_mut().filter(|_| policy != 0) else {
            return Ok(());
        };
        let key = self.wg[usize::from(t)].key;
        let Some(path) = st.rt.path_of_tunnel(key) else {
            return Ok(());
        };
        let (buf, out, pool) = (&mut st.buf, &mut st.out, &mut self.pool);
        let mut lost = 0u32;
        let r = st.rt.encode(
            path,
            PolicyId(u16::from(policy - 1)),
            p.data(),
            now,
            &mut buf[ENVELOPE_LEN..],
            |parity| lost += u32::from(!queue_wan(pool, out, t, parity)),
        );
        for _ in 0..lost {
            self.tally.add(DropReason::NoBuffer);
        }
        match r {
            Ok(None) => Ok(()),
            Ok(Some(e)) => {
                let n = e.len;
                // The copy for the other path (queued: sent after this one).
                if let Some(Some(t2)) = e.also.map(|q| st.path_pos.get(q).copied().flatten()) {
                    if !queue_wan(pool, out, t2, &buf[ENVELOPE_LEN..ENVELOPE_LEN + n]) {
                        self.tally.add(DropReason::NoBuffer);
                    }
                }
                envelope::write(buf, n).ok_or(DropReason::MtuExceeded)?;
                let total = ENVELOPE_LEN + n;
                p.set_len(0).ok_or(DropReason::NoBuffer)?;
                let room = p.append(total).ok_or(DropReason::MtuExceeded)?;
                room.copy_from_slice(&buf[..total]);
                Ok(())
            }
            Err(_) => Err(DropReason::WanBad),
        }
    }

    /// An enveloped WAN packet decrypted from tunnel position `t`'s peer
    /// `peer` (IPv4 envelope at offset 0).
    pub(super) fn wan_input(&mut self, p: Packet, t: u16, peer: PeerId, now: u64) {
        let Some(st) = self.wan.as_mut() else {
            return self.drop_packet(p, DropReason::WanBad);
        };
        let w = &self.wg[usize::from(t)];
        let (key, tunnel) = (w.key, &w.tunnel);
        let Some(body) = p.data().get(ENVELOPE_LEN..) else {
            return self.drop_packet(p, DropReason::WanBad);
        };
        let (out, pool) = (&mut st.out, &mut self.pool);
        let (mut foreign, mut lost) = (0u32, 0u32);
        let mut reply = [0u8; crate::wan::wire::PROBE_REPLY_LEN];
        let r = st.rt.input(key, body, now, &mut reply, |ip| {
            // Unwrapped packets answer to the allowed IPs like any
            // packet out of the tunnel.
            let src = ip
                .get(12..16)
                .map(|s| std::net::Ipv4Addr::new(s[0], s[1], s[2], s[3]));
            if src.and_then(|s| tunnel.peer_for(s)) != Some(peer) {
                foreign += 1;
                return;
            }
            match pool.alloc_from(ip).filter(|_| out.len() < out.capacity()) {
                Some(q) => out.push((Out::Inner(t), q)),
                None => lost += 1,
            }
        });
        match r {
            Ok(0) => {}
            Ok(n) => lost += u32::from(!queue_wan(pool, out, t, &reply[..n])),
            Err(_) => self.tally.add(DropReason::WanBad),
        }
        for _ in 0..foreign {
            self.tally.add(DropReason::Wg);
        }
        for _ in 0..lost {
            self.tally.add(DropReason::NoBuffer);
        }
        drop(p);
        self.wan_flush(now);
    }

    /// Timers: probes, FEC deadlines, path states.
    pub(super) fn wan_tick(&mut self, now: u64) {
        let Some(st) = self.wan.as_mut() else {
            return;
        };
        if now < st.next_tick {
            return;
        }
        st.next_tick = now + WAN_TICK_NS;
        for (i, pos) in st.path_pos.iter_mut().enumerate() {
            let key = st.rt.tunnel_of(i);
            *pos = self.wg.iter().position(|w| w.key == key).map(|t| t as u16);
        }
        let (out, pool, pos, wg) = (&mut st.out, &mut self.pool, &st.path_pos, &self.wg);
        let session = |path: usize| {
            pos.get(path)
                .copied()
                .flatten()
                .is_some_and(|t| wg[usize::from(t)].tunnel.has_session(PeerId(0)))
        };
        let mut lost = 0u32;
        st.rt.poll(now, session, |path, bytes| {
            if let Some(&Some(t)) = pos.get(path) {
                lost += u32::from(!queue_wan(pool, out, t, bytes));
            }
        });
        for _ in 0..lost {
            self.tally.add(DropReason::NoBuffer);
        }
        self.wan_flush(now);
    }

    /// Sends what the WAN state built: WAN packets encrypted into their
    /// tunnel, inner packets through the stages.
    pub(super) fn wan_flush(&mut self, now: u64) {
        let Some(st) = self.wan.as_mut() else {
            return;
        };
        if st.out.is_empty() {
            return;
        }
        let mut out = std::mem::take(&mut st.out);
        for (o, mut q) in out.drain(..) {
            let t = match o {
                Out::Inner(t) => {
                    let iface = self.wg.get(usize::from(t)).map_or(0, |w| w.iface);
                    self.wg_inner_push(q, iface);
                    continue;
                }
                Out::Wan(t) => t,
            };
            let Some(w) = self.wg.get_mut(usize::from(t)) else {
                self.drop_packet(q, DropReason::Blackhole);
                continue;
            };
            match w.tunnel.encapsulate(PeerId(0), &mut q, now) {
                Encap::Sent | Encap::Handshake => self.send_outer(q, now),
                Encap::Handoff(_) => self.drop_packet(q, DropReason::HandoffLoop),
                Encap::Drop(_) => self.drop_packet(q, DropReason::Wg),
            }
        }
        if let Some(st) = self.wan.as_mut() {
            st.out = out;
        }
    }

    /// Writes this worker's WAN counters into its exported array.
    pub(super) fn publish_wan_counters(&mut self, now: u64) {
        if let Some(st) = self.wan.as_mut() {
            st.rt.publish(now, &st.counters);
        }
    }
}

/// A flow's fingerprint for the steering's flow cache: its addresses,
/// protocol and (unfragmented TCP/UDP) ports; never 0.
#[inline]
fn fingerprint(ip: &[u8]) -> u64 {
    if ip.len() < 20 {
        return 1;
    }
    let ihl = usize::from(ip[0] & 0x0f) * 4;
    let src = u64::from(u32::from_be_bytes([ip[12], ip[13], ip[14], ip[15]]));
    let dst = u64::from(u32::from_be_bytes([ip[16], ip[17], ip[18], ip[19]]));
    let proto = ip[9];
    let frag = u16::from_be_bytes([ip[6], ip[7]]) & 0x1fff != 0;
    let ports = match (proto, frag, ip.get(ihl..ihl + 4)) {
        (PROTO_TCP | PROTO_UDP, false, Some(p)) => {
            u64::from(u32::from_be_bytes([p[0], p[1], p[2], p[3]]))
        }
        _ => 0,
    };
    let mut h = (src << 32 | dst) ^ 0x9e37_79b9_7f4a_7c15;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= (ports << 8 | u64::from(proto)).wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^= h >> 33;
    h.wrapping_mul(0xff51_afd7_ed55_8ccd) | 1
}

/// Builds an enveloped WAN packet from `bytes` for tunnel position `t`;
/// false (the caller counts `no_buffer`) when the queue or the pool is
/// full or the packet does not fit a buffer.
fn queue_wan(
    pool: &mut crate::buffer::PacketPool,
    out: &mut Vec<(Out, Packet)>,
    t: u16,
    bytes: &[u8],
) -> bool {
    if out.len() >= out.capacity() {
        return false;
    }
    let Some(mut q) = pool.alloc() else {
        return false;
    };
    let Some(room) = q.append(ENVELOPE_LEN + bytes.len()) else {
        return false;
    };
    if envelope::write(room, bytes.len()).is_none() {
        return false;
    }
    room[ENVELOPE_LEN..].copy_from_slice(bytes);
    *q.meta_mut() = PacketMeta::default();
    out.push((Out::Wan(t), q));
    true
}
