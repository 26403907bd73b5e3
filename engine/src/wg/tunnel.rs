//! A WireGuard tunnel as one worker sees it: every peer's configuration
//! (so any worker can route into the tunnel and steer received messages),
//! and a boringtun [`Tunn`] only for the peers this worker owns. The
//! per-packet calls work in place on pool [`Packet`]s and allocate nothing.
//!
//! Copies: boringtun's `Tunn` encrypts from a source slice into a separate
//! destination slice (it copies, then seals in place) and decrypts the
//! same way; its sessions are private, so it cannot be made to encrypt
//! truly in place. The packet's bytes therefore go once into a per-tunnel
//! scratch buffer, and boringtun writes the result straight back into the
//! packet's own buffer (headers in the headroom). Two memcpys per packet,
//! small beside the AEAD; the packet handle and its metadata stay the same.

use std::net::{IpAddr, Ipv4Addr, SocketAddrV4};
use std::sync::Arc;

use boringtun::noise::errors::WireGuardError;
use boringtun::noise::handshake::parse_handshake_anon;
use boringtun::noise::rate_limiter::RateLimiter;
use boringtun::noise::{Packet as WgMessage, Tunn, TunnResult};
use boringtun::x25519::{PublicKey, StaticSecret};

use super::allowed_ips::AllowedIps;
use super::clock;
use super::config::{PeerConfig, TunnelConfig, WgConfigError, MAX_PEERS};
use super::counters::{PeerCounters, TunnelCounters, WgDrop};
use super::outer::{self, OUTER_HEADER_LEN};
use crate::buffer::{Batch, Packet, PacketPool, BUF_SIZE};

/// Message types (first byte, little-endian u32 with zero reserved bytes).
pub const MSG_HANDSHAKE_INIT: u8 = 1;
pub const MSG_HANDSHAKE_RESP: u8 = 2;
pub const MSG_COOKIE_REPLY: u8 = 3;
pub const MSG_DATA: u8 = 4;
const HANDSHAKE_INIT_LEN: usize = 148;
const HANDSHAKE_RESP_LEN: usize = 92;
const COOKIE_REPLY_LEN: usize = 64;
/// Transport data header (type, receiver index, counter).
pub const DATA_HEADER_LEN: usize = 16;
/// Poly1305 tag after the ciphertext.
pub const DATA_TAG_LEN: usize = 16;
/// Headroom [`Tunnel::encapsulate`] needs in front of the inner packet.
pub const ENCAP_HEADROOM: usize = OUTER_HEADER_LEN + DATA_HEADER_LEN;
/// Bytes encapsulation adds at most, besides padding to 16.
pub const ENCAP_OVERHEAD: usize = ENCAP_HEADROOM + DATA_TAG_LEN;
/// Handshake messages per second one worker's tunnel takes before it
/// answers initiations with cookie replies (boringtun's device uses 100).
pub const HANDSHAKE_RATE_LIMIT: u64 = 100;

/// A peer's index in its tunnel: the same on every worker (config order).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PeerId(pub u32);

/// The worker that owns a peer (its `Tunn`, timers and counters).
#[inline]
pub fn owner_worker(peer: PeerId, workers: usize) -> usize {
    peer.0 as usize % workers.max(1)
}

/// Where a received WireGuard message must be processed, read from its
/// cleartext header without any crypto.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Steer {
    /// Transport data, handshake response or cookie reply: the receiver
    /// index names our peer (boringtun puts the peer index in its top 24 bits).
    Peer(PeerId),
    /// A handshake initiation: only its encrypted static key names the
    /// peer ([`Tunnel::decapsulate`] finds it, or says `Handoff`).
    Initiation,
    /// Not a WireGuard message.
    Invalid,
}

/// Steering by the WireGuard message (the UDP payload).
#[inline]
pub fn steer(msg: &[u8]) -> Steer {
    if msg.len() < 4 || msg[1..4] != [0, 0, 0] {
        return Steer::Invalid;
    }
    let idx_at = |at: usize| {
        let idx = u32::from_le_bytes([msg[at], msg[at + 1], msg[at + 2], msg[at + 3]]);
        Steer::Peer(PeerId(idx >> 8))
    };
    match (msg[0], msg.len()) {
        (MSG_HANDSHAKE_INIT, HANDSHAKE_INIT_LEN) => Steer::Initiation,
        (MSG_HANDSHAKE_RESP, HANDSHAKE_RESP_LEN) => idx_at(8),
        (MSG_COOKIE_REPLY, COOKIE_REPLY_LEN) => idx_at(4),
        (MSG_DATA, n) if n >= DATA_HEADER_LEN + DATA_TAG_LEN => idx_at(4),
        _ => Steer::Invalid,
    }
}

/// What [`Tunnel::encapsulate`] did with the packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Encap {
    /// The packet is now the outer IPv4/UDP packet to the peer's endpoint.
    Sent,
    /// No session yet: the inner packet was dropped (counted `no_session`)
    /// and the packet is now a handshake initiation to send.
    Handshake,
    /// Another worker owns the peer: hand the (unchanged) packet to
    /// [`owner_worker`].
    Handoff(PeerId),
    /// Drop the packet (already counted).
    Drop(WgDrop),
}

/// What [`Tunnel::decapsulate`] did with the packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decap {
    /// The packet is now the inner IPv4 packet from the peer (its source
    /// checked against the peer's allowed IPs).
    Inner(PeerId),
    /// The packet is now an outer packet to send back: a handshake
    /// response, the keepalive that confirms a session, or a cookie reply
    /// (peer `None` when sent before the peer was known).
    Reply(Option<PeerId>),
    /// Authenticated but nothing to deliver (keepalive, cookie reply taken):
    /// release the packet; nothing is counted as dropped.
    Consumed(PeerId),
    /// Another worker owns the peer: hand the (unchanged) packet to
    /// [`owner_worker`].
    Handoff(PeerId),
    /// Drop the packet (already counted).
    Drop(WgDrop),
}

pub(super) struct Peer {
    /// False for a hole: a slot no configured peer takes.
    pub(super) present: bool,
    pub(super) public_key: [u8; 32],
    /// As configured (a reconfiguration with the same keeps a roamed one).
    pub(super) configured_endpoint: Option<SocketAddrV4>,
    pub(super) endpoint: Option<SocketAddrV4>,
    /// Our address the peer last reached us on: the source of what we
    /// send it (like kernel WireGuard's sticky source address).
    pub(super) local: Option<Ipv4Addr>,
    pub(super) keepalive: u16,
    pub(super) psk: Option<[u8; 32]>,
    /// Only on the owning worker.
    pub(super) tunn: Option<Box<Tunn>>,
    pub(super) counters: PeerCounters,
}

impl Peer {
    /// An authenticated packet came from `from` to our `to`: roaming, and
    /// the source address of what we send back.
    #[inline]
    fn seen(&mut self, from: SocketAddrV4, to: SocketAddrV4) {
        self.endpoint = Some(from);
        self.local = Some(*to.ip());
    }

    fn hole() -> Peer {
        Peer {
            present: false,
            public_key: [0; 32],
            configured_endpoint: None,
            endpoint: None,
            local: None,
            keepalive: 0,
            psk: None,
            tunn: None,
            counters: PeerCounters::default(),
        }
    }
}

/// One worker's view of a tunnel. See the module docs of [`super`].
pub struct Tunnel {
    pub(super) private: StaticSecret,
    pub(super) public: PublicKey,
    pub(super) listen_port: u16,
    pub(super) local_addr: Ipv4Addr,
    pub(super) mtu: u16,
    pub(super) worker: usize,
    pub(super) workers: usize,
    /// Indexed by [`PeerId`]; holes have `present == false`.
    pub(super) peers: Vec<Peer>,
    /// (public key, peer index), sorted by key.
    pub(super) by_key: Vec<([u8; 32], u32)>,
    pub(super) allowed: AllowedIps,
    /// Gate in front of the Diffie-Hellman that identifies an initiation.
    pub(super) limiter: Arc<RateLimiter>,
    pub(super) scratch: Box<[u8]>,
    pub(super) counters: TunnelCounters,
    pub(super) ident: u16,
    pub(super) tick_cursor: usize,
    pub(super) last_now: u64,
}

impl std::fmt::Debug for Tunnel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tunnel")
            .field("public_key", self.public.as_bytes())
            .field("listen_port", &self.listen_port)
            .field("worker", &self.worker)
            .field("peers", &self.peers.len())
            .finish()
    }
}

/// The public key of a private key.
pub fn public_key_of(private_key: &[u8; 32]) -> [u8; 32] {
    PublicKey::from(&StaticSecret::from(*private_key)).to_bytes()
}

fn padded_len(n: usize, mtu: usize) -> usize {
    if n >= mtu {
        n
    } else {
        n.next_multiple_of(16).min(mtu)
    }
}

fn drop_reason(e: WireGuardError) -> WgDrop {
    use WireGuardError as E;
    match e {
        E::InvalidMac | E::InvalidAeadTag | E::WrongKey => WgDrop::BadMac,
        E::DuplicateCounter | E::InvalidCounter | E::WrongTai64nTimestamp => WgDrop::Replay,
        E::NoCurrentSession | E::WrongIndex => WgDrop::NoSession,
        E::InvalidPacket
        | E::IncorrectPacketLength
        | E::WrongPacketType
        | E::InvalidTai64nTimestamp => WgDrop::Malformed,
        E::UnderLoad => WgDrop::UnderLoad,
        E::DestinationBufferTooSmall => WgDrop::TooBig,
        E::UnexpectedPacket | E::LockFailed | E::ConnectionExpired => WgDrop::HandshakeFailed,
    }
}

/// Why an initiation was not tied to a peer.
enum Unidentified {
    /// Under load: send this cookie reply.
    Cookie([u8; COOKIE_REPLY_LEN]),
    Drop(WgDrop),
}

impl Tunnel {
    /// Builds worker `worker`'s view of the tunnel (of `workers`); `now`
    /// (ns, any monotonic clock) starts its timers.
    pub fn new(
        cfg: &TunnelConfig,
        worker: usize,
        workers: usize,
        now: u64,
    ) -> Result<Self, WgConfigError> {
        Self::build(cfg, worker, workers, now, |_, _| false)
    }

    /// [`Tunnel::new`], leaving without a session (for the caller to fill)
    /// the owned peers for which `reuse(slot, peer)` says true.
    pub(super) fn build(
        cfg: &TunnelConfig,
        worker: usize,
        workers: usize,
        now: u64,
        reuse: impl Fn(u32, &PeerConfig) -> bool,
    ) -> Result<Self, WgConfigError> {
        if workers == 0 || worker >= workers {
            return Err(WgConfigError::BadWorker { worker, workers });
        }
        if cfg.peers.len() > MAX_PEERS {
            return Err(WgConfigError::TooManyPeers(cfg.peers.len()));
        }
        clock::set(now);
        let private = StaticSecret::from(cfg.private_key);
        let public = PublicKey::from(&private);
        let slots: Vec<u32> = (0..cfg.peers.len()).map(|i| cfg.slot_of(i)).collect();
        let bad_slots = || WgConfigError::BadSlots(cfg.peer_slots.len(), cfg.peers.len());
        if !cfg.peer_slots.is_empty() && cfg.peer_slots.len() != cfg.peers.len() {
            return Err(bad_slots());
        }
        let n_slots = slots.iter().map(|&s| s as usize + 1).max().unwrap_or(0);
        if n_slots > MAX_PEERS {
            return Err(bad_slots());
        }
        let mut by_key: Vec<([u8; 32], u32)> = Vec::with_capacity(cfg.peers.len());
        let mut allowed = AllowedIps::new();
        let mut peers: Vec<Peer> = (0..n_slots).map(|_| Peer::hole()).collect();
        for (i, pc) in cfg.peers.iter().enumerate() {
            let slot = slots[i];
            if peers[slot as usize].present {
                return Err(bad_slots());
            }
            by_key.push((pc.public_key, slot));
            for &(addr, len) in &pc.allowed_ips {
                if len > 32 {
                    return Err(WgConfigError::BadPrefixLen { peer: i, addr, len });
                }
                if let Some(other) = allowed.insert(addr, len, slot) {
                    let other = slots.iter().position(|&s| s == other).unwrap_or(0);
                    return Err(WgConfigError::DuplicateAllowedIp {
                        peer: i,
                        other,
                        addr,
                        len,
                    });
                }
            }
            let owned = owner_worker(PeerId(slot), workers) == worker;
            let tunn = if owned && !reuse(slot, pc) {
                Some(Box::new(new_tunn(&private, pc, slot)?))
            } else {
                None
            };
            peers[slot as usize] = Peer {
                present: true,
                public_key: pc.public_key,
                configured_endpoint: pc.endpoint,
                endpoint: pc.endpoint,
                local: None,
                keepalive: pc.persistent_keepalive_secs,
                psk: pc.preshared_key,
                tunn,
                counters: PeerCounters::default(),
            };
        }
        by_key.sort_unstable();
        if let Some(w) = by_key.windows(2).find(|w| w[0].0 == w[1].0) {
            let later = w[1].1.max(w[0].1);
            let i = slots.iter().position(|&s| s == later).unwrap_or(0);
            return Err(WgConfigError::DuplicatePeer(i));
        }
        let limiter = Arc::new(RateLimiter::new(&public, HANDSHAKE_RATE_LIMIT));
        Ok(Tunnel {
            private,
            public,
            listen_port: cfg.listen_port,
            local_addr: cfg.local_addr,
            mtu: cfg.mtu,
            worker,
            workers,
            peers,
            by_key,
            allowed,
            limiter,
            scratch: vec![0u8; BUF_SIZE].into_boxed_slice(),
            counters: TunnelCounters::default(),
            ident: 0,
            tick_cursor: 0,
            last_now: now,
        })
    }

    /// Sets boringtun's clock (see [`clock`]); never lets it run backwards.
    #[inline]
    fn clock(&mut self, now: u64) -> u64 {
        let now = now.max(self.last_now);
        self.last_now = now;
        clock::set(now);
        now
    }

    #[inline]
    fn next_ident(&mut self) -> u16 {
        self.ident = self.ident.wrapping_add(1);
        self.ident
    }

    pub fn public_key(&self) -> [u8; 32] {
        self.public.to_bytes()
    }

    pub fn listen_port(&self) -> u16 {
        self.listen_port
    }

    /// Peers configured (holes not counted).
    pub fn peer_count(&self) -> usize {
        self.by_key.len()
    }

    /// The configured peers' ids, in slot order.
    pub fn peer_ids(&self) -> impl Iterator<Item = PeerId> + '_ {
        (0..self.peers.len() as u32)
            .filter(|&i| self.peers[i as usize].present)
            .map(PeerId)
    }

    #[inline]
    fn peer(&self, peer: PeerId) -> Option<&Peer> {
        self.peers.get(peer.0 as usize).filter(|p| p.present)
    }

    /// Does this worker own `peer`?
    pub fn owns(&self, peer: PeerId) -> bool {
        owner_worker(peer, self.workers) == self.worker && self.peer(peer).is_some()
    }

    /// The peer whose allowed IPs hold `dst` (longest prefix): routing
    /// into the tunnel.
    #[inline]
    pub fn peer_for(&self, dst: Ipv4Addr) -> Option<PeerId> {
        self.allowed.lookup(dst).map(PeerId)
    }

    /// The peer with this public key.
    pub fn peer_by_key(&self, key: &[u8; 32]) -> Option<PeerId> {
        self.by_key
            .binary_search_by(|(k, _)| k.cmp(key))
            .ok()
            .map(|i| PeerId(self.by_key[i].1))
    }

    pub fn peer_public_key(&self, peer: PeerId) -> Option<[u8; 32]> {
        self.peer(peer).map(|p| p.public_key)
    }

    /// The peer's current endpoint (configured, or learnt from the last
    /// authenticated packet: roaming). Known on the owning worker.
    pub fn peer_endpoint(&self, peer: PeerId) -> Option<SocketAddrV4> {
        self.peer(peer)?.endpoint
    }

    /// Counters of a peer (meaningful on its owning worker).
    pub fn peer_counters(&self, peer: PeerId) -> Option<&PeerCounters> {
        self.peer(peer).map(|p| &p.counters)
    }

    /// Drops this worker could not charge to a peer, and cookie replies.
    pub fn counters(&self) -> &TunnelCounters {
        &self.counters
    }

    /// Encrypts the inner IPv4 packet `pkt` for `peer` in place: `pkt`
    /// becomes the outer IPv4/UDP packet (from `local_addr:listen_port` to
    /// the endpoint, checksums filled). Needs [`ENCAP_HEADROOM`] bytes of
    /// headroom and 16 + padding of tailroom.
    pub fn encapsulate(&mut self, peer: PeerId, pkt: &mut Packet, now: u64) -> Encap {
        self.clock(now);
        let ident = self.next_ident();
        let (local_addr, port) = (self.local_addr, self.listen_port);
        let mtu = usize::from(self.mtu);
        let Some(p) = self.peers.get_mut(peer.0 as usize).filter(|p| p.present) else {
            self.counters.drop(WgDrop::NoPeer);
            return Encap::Drop(WgDrop::NoPeer);
        };
        let Some(tunn) = p.tunn.as_deref_mut() else {
            return Encap::Handoff(peer);
        };
        let Some(endpoint) = p.endpoint else {
            p.counters.drop(WgDrop::NoEndpoint);
            return Encap::Drop(WgDrop::NoEndpoint);
        };
        let src = SocketAddrV4::new(p.local.unwrap_or(local_addr), port);
        let n = pkt.len();
        if n == 0 {
            p.counters.drop(WgDrop::Malformed);
            return Encap::Drop(WgDrop::Malformed);
        }
        let padded = padded_len(n, mtu);
        if pkt.headroom() < ENCAP_HEADROOM || pkt.tailroom() < padded - n + DATA_TAG_LEN {
            p.counters.drop(WgDrop::TooBig);
            return Encap::Drop(WgDrop::TooBig);
        }
        if tunn.time_since_last_handshake().is_none() {
            // No session. boringtun would queue a heap copy of the packet;
            // we drop it and turn its buffer into the handshake initiation.
            p.counters.drop(WgDrop::NoSession);
            pkt.truncate(0);
            let room = pkt.room_mut();
            let m = match tunn.format_handshake_initiation(&mut room[OUTER_HEADER_LEN..], false) {
                TunnResult::WriteToNetwork(m) => m.len(),
                _ => return Encap::Drop(WgDrop::NoSession),
            };
            outer::emit(room, src, endpoint, m, ident);
            let _ = pkt.set_len(OUTER_HEADER_LEN + m);
            p.counters.handshake_initiations_sent += 1;
            p.counters.tx_bytes += m as u64;
            return Encap::Handshake;
        }
        self.scratch[..n].copy_from_slice(pkt.data());
        self.scratch[n..padded].fill(0);
        let _ = pkt.prepend(ENCAP_HEADROOM);
        let room = pkt.room_mut();
        let m = match tunn.encapsulate(&self.scratch[..padded], &mut room[OUTER_HEADER_LEN..]) {
            TunnResult::WriteToNetwork(m) => m.len(),
            // Not reached: a session exists, so boringtun encrypts.
            _ => {
                let _ = pkt.strip_front(ENCAP_HEADROOM);
                p.counters.drop(WgDrop::NoSession);
                return Encap::Drop(WgDrop::NoSession);
            }
        };
        outer::emit(room, src, endpoint, m, ident);
        let _ = pkt.set_len(OUTER_HEADER_LEN + m);
        p.counters.tx_packets += 1;
        p.counters.tx_bytes += m as u64;
        Encap::Sent
    }

    /// Handles a received outer IPv4 packet (starting at its IP header)
    /// holding a UDP datagram to the listen port: decrypts data in place,
    /// answers handshakes, takes cookie replies. See [`Decap`].
    pub fn decapsulate(&mut self, pkt: &mut Packet, now: u64) -> Decap {
        let now = self.clock(now);
        let Some(od) = outer::parse(pkt.data(), self.listen_port) else {
            self.counters.drop(WgDrop::Malformed);
            return Decap::Drop(WgDrop::Malformed);
        };
        let msg = &pkt.data()[od.offset..od.offset + od.len];
        let msg_type = msg.first().copied().unwrap_or(0);
        let peer = match steer(msg) {
            Steer::Peer(id) => id,
            Steer::Invalid => {
                self.counters.drop(WgDrop::Malformed);
                return Decap::Drop(WgDrop::Malformed);
            }
            Steer::Initiation => match self.identify(*od.src.ip(), msg) {
                Ok(id) => id,
                Err(Unidentified::Drop(why)) => {
                    self.counters.drop(why);
                    return Decap::Drop(why);
                }
                Err(Unidentified::Cookie(cookie)) => {
                    let ident = self.next_ident();
                    pkt.truncate(0);
                    let room = pkt.room_mut();
                    room[OUTER_HEADER_LEN..][..COOKIE_REPLY_LEN].copy_from_slice(&cookie);
                    outer::emit(room, od.dst, od.src, COOKIE_REPLY_LEN, ident);
                    let _ = pkt.set_len(OUTER_HEADER_LEN + COOKIE_REPLY_LEN);
                    self.counters.cookie_replies_sent += 1;
                    return Decap::Reply(None);
                }
            },
        };
        let ident = self.next_ident();
        let Some(p) = self.peers.get_mut(peer.0 as usize).filter(|p| p.present) else {
            self.counters.drop(WgDrop::NoPeer);
            return Decap::Drop(WgDrop::NoPeer);
        };
        let Some(tunn) = p.tunn.as_deref_mut() else {
            return Decap::Handoff(peer);
        };
        let len = od.len;
        self.scratch[..len].copy_from_slice(&pkt.data()[od.offset..][..len]);
        if msg_type == MSG_DATA {
            // The plaintext goes where it sits in the message (after the
            // outer headers and the data header), so the inner packet keeps
            // the headroom it had before it was encapsulated.
            let _ = pkt.strip_front(od.offset + DATA_HEADER_LEN);
        }
        let room = pkt.room_mut();
        let from = Some(IpAddr::V4(*od.src.ip()));
        match tunn.decapsulate(from, &self.scratch[..len], room) {
            TunnResult::WriteToTunnelV4(inner, src) => {
                let n = inner.len();
                p.seen(od.src, od.dst);
                p.counters.rx_bytes += len as u64;
                // WAN envelopes come from 0.0.0.0: the WAN stage checks
                // the packets it unwraps against the allowed IPs instead.
                if self.allowed.lookup(src) != Some(peer.0)
                    && !crate::wan::envelope::is_envelope(inner)
                {
                    p.counters.drop(WgDrop::NotAllowedIp);
                    return Decap::Drop(WgDrop::NotAllowedIp);
                }
                let _ = pkt.set_len(n);
                p.counters.rx_packets += 1;
                Decap::Inner(peer)
            }
            TunnResult::WriteToTunnelV6(..) => {
                // Allowed IPs are IPv4 only: no IPv6 source is allowed.
                p.seen(od.src, od.dst);
                p.counters.rx_bytes += len as u64;
                p.counters.drop(WgDrop::NotAllowedIp);
                Decap::Drop(WgDrop::NotAllowedIp)
            }
            TunnResult::WriteToNetwork(reply) => {
                let m = reply.len();
                let out_type = reply[0];
                room.copy_within(..m, OUTER_HEADER_LEN);
                outer::emit(room, od.dst, od.src, m, ident);
                let _ = pkt.set_len(OUTER_HEADER_LEN + m);
                p.counters.tx_bytes += m as u64;
                match (msg_type, out_type) {
                    (MSG_HANDSHAKE_INIT, MSG_HANDSHAKE_RESP) => {
                        p.counters.handshake_responses_sent += 1;
                    }
                    (MSG_HANDSHAKE_RESP, MSG_DATA) => p.counters.keepalives_sent += 1,
                    (_, MSG_COOKIE_REPLY) => {
                        // The peer's own rate limiter: not authenticated.
                        self.counters.cookie_replies_sent += 1;
                        return Decap::Reply(Some(peer));
                    }
                    _ => {}
                }
                // A handshake message that boringtun accepted and answered.
                p.seen(od.src, od.dst);
                p.counters.rx_bytes += len as u64;
                p.counters.handshakes_completed += 1;
                p.counters.last_handshake_ns = now;
                Decap::Reply(Some(peer))
            }
            TunnResult::Done => {
                if msg_type == MSG_DATA {
                    p.seen(od.src, od.dst);
                    p.counters.rx_bytes += len as u64;
                    p.counters.keepalives_received += 1;
                }
                Decap::Consumed(peer)
            }
            TunnResult::Err(e) => {
                let why = drop_reason(e);
                p.counters.drop(why);
                Decap::Drop(why)
            }
        }
    }

    /// Ties a handshake initiation to a peer: MAC1 and load check by the
    /// tunnel's rate limiter, then the Diffie-Hellman that decrypts the
    /// initiator's static key (boringtun's `parse_handshake_anon`).
    fn identify(&self, src: Ipv4Addr, msg: &[u8]) -> Result<PeerId, Unidentified> {
        let mut cookie = [0u8; COOKIE_REPLY_LEN];
        let init = match self
            .limiter
            .verify_packet(Some(IpAddr::V4(src)), msg, &mut cookie)
        {
            Ok(WgMessage::HandshakeInit(init)) => init,
            Ok(_) => return Err(Unidentified::Drop(WgDrop::Malformed)),
            Err(TunnResult::WriteToNetwork(c)) => {
                let mut out = [0u8; COOKIE_REPLY_LEN];
                let k = c.len().min(COOKIE_REPLY_LEN);
                out[..k].copy_from_slice(&c[..k]);
                return Err(Unidentified::Cookie(out));
            }
            Err(TunnResult::Err(e)) => return Err(Unidentified::Drop(drop_reason(e))),
            Err(_) => return Err(Unidentified::Drop(WgDrop::Malformed)),
        };
        let half = parse_handshake_anon(&self.private, &self.public, &init)
            .map_err(|_| Unidentified::Drop(WgDrop::BadMac))?;
        self.peer_by_key(&half.peer_static_public)
            .ok_or(Unidentified::Drop(WgDrop::NoPeer))
    }

    /// Drives the timers of the peers this worker owns (boringtun's
    /// `update_timers`: handshake retries after REKEY_TIMEOUT, rekey after
    /// REKEY_AFTER_TIME, keepalives, sessions dropped after
    /// REJECT_AFTER_TIME) and pushes what they send into `out`, built in
    /// buffers from `pool`. Call every 100–250 ms: boringtun's notion of
    /// "now" for packets advances only here. Returns the packets pushed;
    /// when `out` fills or the pool runs dry it stops, and the next call
    /// resumes with the next peer.
    pub fn tick(&mut self, now: u64, pool: &mut PacketPool, out: &mut Batch) -> usize {
        self.clock(now);
        self.limiter.reset_count();
        let (local_addr, port) = (self.local_addr, self.listen_port);
        let mut pushed = 0;
        while self.tick_cursor < self.peers.len() {
            if self.peers[self.tick_cursor].tunn.is_none() {
                self.tick_cursor += 1;
                continue;
            }
            if out.space() == 0 {
                return pushed;
            }
            let Some(mut pkt) = pool.alloc() else {
                return pushed;
            };
            let ident = self.next_ident();
            let p = &mut self.peers[self.tick_cursor];
            self.tick_cursor += 1;
            let Some(tunn) = p.tunn.as_deref_mut() else {
                continue;
            };
            let room = pkt.room_mut();
            let m = match tunn.update_timers(&mut room[OUTER_HEADER_LEN..]) {
                TunnResult::WriteToNetwork(m) => m.len(),
                _ => continue,
            };
            let kind = room[OUTER_HEADER_LEN];
            let Some(endpoint) = p.endpoint else {
                p.counters.drop(WgDrop::NoEndpoint);
                continue;
            };
            let src = SocketAddrV4::new(p.local.unwrap_or(local_addr), port);
            outer::emit(room, src, endpoint, m, ident);
            let _ = pkt.set_len(OUTER_HEADER_LEN + m);
            match kind {
                MSG_HANDSHAKE_INIT => p.counters.handshake_initiations_sent += 1,
                MSG_DATA => p.counters.keepalives_sent += 1,
                _ => {}
            }
            p.counters.tx_bytes += m as u64;
            if out.push(pkt).is_ok() {
                pushed += 1;
            }
        }
        self.tick_cursor = 0;
        pushed
    }
}

pub(super) fn new_tunn(
    private: &StaticSecret,
    pc: &PeerConfig,
    slot: u32,
) -> Result<Tunn, WgConfigError> {
    let keepalive = (pc.persistent_keepalive_secs > 0).then_some(pc.persistent_keepalive_secs);
    Tunn::new(
        private.clone(),
        PublicKey::from(pc.public_key),
        pc.preshared_key,
        keepalive,
        slot,
        None,
    )
    .map_err(|_| WgConfigError::BadKey(slot as usize))
}
