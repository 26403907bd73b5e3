//! WireGuard in the pipeline: where [`crate::wg::Tunnel`] is called.
//!
//! - Into a tunnel: a route whose next hop is `Tunnel` (in `ipv4_lookup`,
//!   [`Pipeline::wg_route`]) picks the peer by the tunnel's allowed IPs; the
//!   worker owning that peer (`wg::owner_worker`) checks TTL and MTU,
//!   decrements the TTL and marks the packet `Encap`; `dispatch` encrypts
//!   it in place ([`Pipeline::wg_encap`]) and routes the outer packet to the
//!   peer's endpoint. Another worker hands the packet, unchanged, to the
//!   owner first (the handoff rings of `nat_stage`).
//! - Out of a tunnel: a UDP datagram to a tunnel's address and listen port
//!   reaches local delivery ([`Pipeline::wg_input`]); `wg::steer` names the
//!   owner of data, responses and cookies (handshake initiations are
//!   identified by the tunnel, which answers `Handoff` when another worker
//!   owns the peer); the owner decrypts in place and the inner packet runs
//!   through the stages again (from `ipv4_input`: header checks, NAT,
//!   lookup, TTL), as if received on the tunnel's underlay interface.
//! - Timers: every [`WG_TICK_NS`] each worker drives the peers it owns and
//!   routes what they send (handshake retries, keepalives).

use super::Pipeline;
use crate::buffer::{Disposition, Packet, PacketMeta};
use std::sync::Arc;

use crate::config::EngineConfig;
use crate::counters::DropReason;
use crate::wg::{owner_worker, steer, Decap, Encap, PeerId, Steer, Tunnel};
use crate::wg_plan::{TunnelKey, WgPlan};
use crate::wire::icmpv4;

/// How often the tunnels' timers run (boringtun's resolution).
pub(super) const WG_TICK_NS: u64 = 100_000_000;

/// One tunnel as a worker runs it.
pub(super) struct WgState {
    pub key: TunnelKey,
    pub tunnel: Tunnel,
    /// The local address its datagrams must be sent to (None: any of ours).
    pub listen_addr: Option<u32>,
    /// The interface holding its outer address (inner packets count as
    /// received there).
    pub iface: u16,
    pub mtu: u16,
}

impl Pipeline {
    /// Runs the tunnels of `plan` from now on: a tunnel this worker already
    /// runs under the same key is reconfigured in place (unchanged peers
    /// keep their sessions), new ones are built, the rest dropped. On error
    /// (a tunnel the library refuses) the tunnels stay as they were.
    pub fn apply_wg_plan(
        &mut self,
        plan: &Arc<WgPlan>,
        worker: usize,
        workers: usize,
        now: u64,
    ) -> Result<(), String> {
        self.wg_worker = (worker, workers);
        let mut old = std::mem::take(&mut self.wg);
        let mut out = Vec::with_capacity(plan.tunnels.len());
        for pt in &plan.tunnels {
            let addr = u32::from(pt.config.local_addr);
            // Not found: the interfaces changed under the plan; the link
            // publishes a re-resolved plan.
            let iface = (0..self.ifaces.len() as u16)
                .find(|&k| self.ifaces.get(k).addr == addr)
                .unwrap_or(0);
            let built = match old.iter().position(|w| w.key == pt.key) {
                Some(i) => {
                    let mut w = old.swap_remove(i);
                    w.tunnel.reconfigure(&pt.config, now).map(|()| w.tunnel)
                }
                None => Tunnel::new(&pt.config, worker, workers, now),
            };
            match built {
                Ok(tunnel) => out.push(WgState {
                    key: pt.key,
                    tunnel,
                    listen_addr: pt.listen_addr,
                    iface,
                    mtu: pt.config.mtu,
                }),
                Err(e) => {
                    // Keep what ran before (a tunnel that failed here
                    // was swap_removed: put the rest back untouched).
                    out.append(&mut old);
                    self.wg = out;
                    return Err(format!("tunnel {}: {e}", pt.name));
                }
            }
        }
        self.wg = out;
        self.wg_counters = plan.counters.get(worker).cloned();
        let unix = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        self.wg_unix_origin = unix.saturating_sub(now);
        Ok(())
    }

    /// Builds this worker's view of every `[[wireguard]]` of `cfg` (the
    /// plan a worker starts with when no control process pushes any).
    pub fn set_tunnels(
        &mut self,
        cfg: &EngineConfig,
        worker: usize,
        workers: usize,
        now: u64,
    ) -> Result<(), String> {
        let plan = crate::config::wg_plan(cfg, workers).map_err(|e| e.to_string())?;
        self.apply_wg_plan(&Arc::new(plan), worker, workers, now)
    }

    /// Copies the tunnels' counters into this worker's array of the plan.
    pub(super) fn publish_wg_counters(&self) {
        let Some(slots) = self.wg_counters.as_deref() else {
            return;
        };
        let origin = self.wg_unix_origin;
        let mut base = 0;
        for w in &self.wg {
            let n =
                w.tunnel.peer_count() * crate::wg::export::PER_PEER + crate::wg::export::PER_TUNNEL;
            let Some(slots) = slots.get(base..base + n) else {
                return;
            };
            crate::wg::export::values(
                &w.tunnel,
                |ns| (origin + ns) / 1_000_000_000,
                |i, v| slots[i].store(v, std::sync::atomic::Ordering::Relaxed),
            );
            base += n;
        }
    }

    /// Position in `self.wg` of the tunnel with key `key`.
    #[inline]
    fn wg_position(&self, key: TunnelKey) -> Option<u16> {
        self.wg.iter().position(|w| w.key == key).map(|i| i as u16)
    }

    /// The tunnels (read-only: counters, keys).
    pub fn tunnels(&self) -> impl Iterator<Item = &Tunnel> {
        self.wg.iter().map(|w| &w.tunnel)
    }

    /// A packet routed into tunnel `t` (from `ipv4_lookup`; header checked,
    /// at `l3_offset`): sets its disposition.
    pub(super) fn wg_route(&mut self, p: &mut Packet, key: TunnelKey, now: u64) {
        let l3 = usize::from(p.meta().l3_offset);
        let Some(h) = p.data().get(l3..l3 + 20) else {
            p.meta_mut().disposition = Disposition::Drop(DropReason::Ipv4Truncated);
            return;
        };
        let dst = u32::from_be_bytes([h[16], h[17], h[18], h[19]]);
        let (ttl, total, df) = (h[8], u16::from_be_bytes([h[2], h[3]]), h[6] & 0x40 != 0);
        // A route into a tunnel this worker does not run (not pushed yet,
        // or gone): dropped, never sent in clear.
        let Some(t) = self.wg_position(key) else {
            p.meta_mut().disposition = Disposition::Drop(DropReason::Blackhole);
            return;
        };
        let w = &self.wg[usize::from(t)];
        let mtu = w.mtu;
        let Some(peer) = w.tunnel.peer_for(dst.into()) else {
            self.icmp_error(
                p,
                icmpv4::TYPE_DEST_UNREACHABLE,
                icmpv4::CODE_NET_UNREACHABLE,
                0,
                now,
            );
            p.meta_mut().disposition = Disposition::Drop(DropReason::WgNoPeer);
            return;
        };
        let owner = owner_worker(peer, self.wg_worker.1);
        if owner != self.wg_worker.0 {
            p.meta_mut().disposition = if p.meta().handed_off {
                Disposition::Drop(DropReason::HandoffLoop)
            } else {
                Disposition::Handoff(owner as u16)
            };
            return;
        }
        if ttl <= 1 {
            self.icmp_error(
                p,
                icmpv4::TYPE_TIME_EXCEEDED,
                icmpv4::CODE_TTL_EXCEEDED,
                0,
                now,
            );
            p.meta_mut().disposition = Disposition::Drop(DropReason::TtlExpired);
            return;
        }
        // A path tunnel: the flow's policy picks the site's path (all
        // paths' peers belong to this worker), and its encoding must fit.
        let (mut t, mut mtu, mut peer, mut wan_policy) = (t, mtu, peer, 0u8);
        if let Some((k2, pol)) = self.wan_steer(p, key, now) {
            let steered = self.wg_position(k2).and_then(|t2| {
                let w2 = &self.wg[usize::from(t2)];
                Some((t2, w2.mtu, w2.tunnel.peer_for(dst.into())?))
            });
            if let Some((t2, m2, p2)) = steered {
                (t, peer, wan_policy) = (t2, p2, (pol.0 as u8).saturating_add(1));
                mtu = m2.saturating_sub(self.wan_overhead(pol));
            }
        }
        if total > mtu {
            // No fragmentation into tunnels: DF set gets frag-needed (path
            // MTU discovery), DF clear is dropped too.
            if df {
                self.icmp_error(
                    p,
                    icmpv4::TYPE_DEST_UNREACHABLE,
                    icmpv4::CODE_FRAG_NEEDED,
                    mtu,
                    now,
                );
            }
            p.meta_mut().disposition = Disposition::Drop(DropReason::MtuExceeded);
            return;
        }
        super::ipv4_lookup::decrement_ttl(p);
        let m = p.meta_mut();
        m.next_hop = peer.0;
        m.wan_policy = wan_policy;
        m.disposition = Disposition::Encap(t);
    }

    /// Encrypts a packet `wg_route` marked and sends the outer packet.
    pub(super) fn wg_encap(&mut self, mut p: Packet, t: u16, now: u64) {
        let peer = PeerId(p.meta().next_hop);
        let l3 = usize::from(p.meta().l3_offset);
        if p.strip_front(l3).is_none() {
            return self.drop_packet(p, DropReason::Ipv4Truncated);
        }
        if usize::from(t) >= self.wg.len() {
            return self.drop_packet(p, DropReason::Blackhole);
        }
        if let Err(r) = self.wan_wrap(&mut p, t, now) {
            return self.drop_packet(p, r);
        }
        let w = &mut self.wg[usize::from(t)];
        match w.tunnel.encapsulate(peer, &mut p, now) {
            Encap::Sent | Encap::Handshake => self.send_outer(p, now),
            // `wg_route` checked ownership; a plan change in between.
            Encap::Handoff(_) => self.drop_packet(p, DropReason::HandoffLoop),
            Encap::Drop(_) => self.drop_packet(p, DropReason::Wg),
        }
        // Parity packets the wrapped one completed go after it (before it,
        // the receiver would rebuild the packet instead of receiving it).
        self.wan_flush(now);
    }

    /// The tunnel listening on `dst:dport`, if any.
    #[inline]
    pub(super) fn wg_listener(&self, dst: u32, dport: u16) -> Option<u16> {
        self.wg
            .iter()
            .position(|w| w.tunnel.listen_port() == dport && w.listen_addr.is_none_or(|a| a == dst))
            .map(|i| i as u16)
    }

    /// A UDP datagram to tunnel `t`'s address and port (local delivery;
    /// the frame as received, L3 at `l3_offset`).
    pub(super) fn wg_input(&mut self, mut p: Packet, t: u16, now: u64) {
        let l3 = usize::from(p.meta().l3_offset);
        let (worker, workers) = self.wg_worker;
        // Data, responses and cookies name their peer in the clear.
        let owner = p
            .data()
            .get(l3..)
            .and_then(|ip| ip.get(usize::from(ip.first()? & 0x0f) * 4 + 8..))
            .map(steer);
        if let Some(Steer::Peer(peer)) = owner {
            let o = owner_worker(peer, workers);
            if o != worker {
                return self.wg_handoff(p, o);
            }
        }
        if p.strip_front(l3).is_none() {
            return self.drop_packet(p, DropReason::Ipv4Truncated);
        }
        let Some(w) = self.wg.get_mut(usize::from(t)) else {
            return self.drop_packet(p, DropReason::Blackhole);
        };
        match w.tunnel.decapsulate(&mut p, now) {
            Decap::Inner(peer) if crate::wan::envelope::is_envelope(p.data()) => {
                self.wan_input(p, t, peer, now)
            }
            Decap::Inner(_) => {
                let iface = w.iface;
                self.wg_inner_push(p, iface);
            }
            Decap::Reply(_) => self.send_outer(p, now),
            Decap::Consumed(_) => {}
            Decap::Handoff(peer) => {
                // Unchanged: give the frame back its L2 header.
                let _ = p.prepend(l3);
                let o = owner_worker(peer, workers);
                self.wg_handoff(p, o);
            }
            Decap::Drop(_) => self.drop_packet(p, DropReason::Wg),
        }
    }

    fn wg_handoff(&mut self, p: Packet, to: usize) {
        if p.meta().handed_off {
            return self.drop_packet(p, DropReason::HandoffLoop);
        }
        self.hand_off(p, to as u16);
    }

    /// Queues a decrypted inner packet (starting at its IPv4 header) to
    /// run through the stages.
    pub(super) fn wg_inner_push(&mut self, mut p: Packet, iface: u16) {
        let Some(l2) = p.prepend(14) else {
            return self.drop_packet(p, DropReason::NoBuffer);
        };
        // A real Ethernet header (to and from the underlay port's MAC), so
        // that a worker this packet is handed to takes it as received.
        let mac = self.ifaces.get(iface).mac;
        l2[..6].copy_from_slice(&mac);
        l2[6..12].copy_from_slice(&mac);
        l2[12..14].copy_from_slice(&[0x08, 0x00]);
        let rx_port = self.ifaces.get(iface).port;
        *p.meta_mut() = PacketMeta {
            rx_port,
            rx_iface: iface,
            l3_offset: 14,
            ..Default::default()
        };
        if let Err(p) = self.wg_inner.push(p) {
            self.drop_packet(p, DropReason::NoBuffer);
        }
    }

    /// A packet the engine built (L3 at `l3_offset`) routed into tunnel
    /// `t` (e.g. an echo reply to a host behind the far site): it joins the
    /// decrypted inner packets and takes the stages from `ipv4_input` on,
    /// which hand it to the peer's owner and encrypt it there.
    pub(super) fn wg_output_local(&mut self, mut p: Packet, key: TunnelKey) {
        let Some(iface) = self.wg_position(key).map(|t| self.wg[usize::from(t)].iface) else {
            return self.drop_packet(p, DropReason::Blackhole);
        };
        let l3 = usize::from(p.meta().l3_offset);
        if p.strip_front(l3).is_none() {
            return self.drop_packet(p, DropReason::Ipv4Truncated);
        }
        self.wg_inner_push(p, iface);
    }

    /// Runs decrypted inner packets through the stages (after the batch
    /// that carried them). Inner packets that are tunnel traffic again are
    /// taken on the next round, at most twice per poll.
    pub(super) fn wg_run_inner(&mut self, now: u64) {
        for _ in 0..2 {
            if self.wg_inner.is_empty() {
                return;
            }
            // Taken, not `mem::take`n: a default Batch would allocate.
            let mut b = self.wg_inner_spare.take().unwrap_or_default();
            std::mem::swap(&mut b, &mut self.wg_inner);
            self.ipv4_input(&mut b);
            self.nat_pre_lookup(&mut b, now);
            self.ipv4_lookup(&mut b, now);
            self.dispatch(&mut b, now);
            self.wg_inner_spare = Some(b);
        }
    }

    /// Routes an outer packet the tunnel built (starting at its IPv4
    /// header) to its destination.
    pub(super) fn send_outer(&mut self, mut p: Packet, now: u64) {
        let m = p.meta_mut();
        m.l3_offset = 0;
        m.local_origin = true;
        self.output_local(p, now);
    }

    /// The tunnels' timers, and the packets they send.
    pub(super) fn wg_tick(&mut self, now: u64) {
        if self.wg.is_empty() || now.wrapping_sub(self.wg_last_tick) < WG_TICK_NS {
            return;
        }
        self.wg_last_tick = now;
        let mut out = self.wg_inner_spare.take().unwrap_or_default();
        for i in 0..self.wg.len() {
            loop {
                let w = &mut self.wg[i];
                let n = w.tunnel.tick(now, &mut self.pool, &mut out);
                let full = out.space() == 0;
                out.take_each(|_, p| self.send_outer(p, now));
                if n == 0 || !full {
                    break;
                }
            }
        }
        self.wg_inner_spare = Some(out);
    }
}
