//! One worker's WAN state, built from a [`WanConfig`]: per path its
//! prober, FEC encoders (one per FEC policy) and decoder; per site its
//! [`Steering`] and a flow cache of [`FlowSteer`]s; the compressor and
//! the counters. Like the rest of `wan`, no I/O and time passed in: the
//! pipeline (`pipeline/wan_stage.rs`) moves the bytes this produces into
//! packets and tunnels.
//!
//! Sending: [`WanRuntime::steer`] picks a flow's path and policy;
//! [`WanRuntime::encode`] turns its IP packet into what goes into the
//! tunnel (compressed and/or FEC data, or `None`: the bare packet), and
//! hands parity packets to the caller. Receiving: [`WanRuntime::input`]
//! reflects probes, takes probe replies, runs FEC recovery and
//! decompression and hands every inner IP packet to the caller.
//! [`WanRuntime::poll`] runs the timers (probes, FEC group deadlines,
//! path state and steering refresh).

use std::sync::atomic::{AtomicU64, Ordering};

use super::compress::{decompress_bounded, Compressed, Compressor, MAX_PACKET_LEN};
use super::fec::{FecDecoder, FecEncoder, FecToggle};
use super::policy::{AppClass, PathInfo, PolicyId, TenantId};
use super::probe::{PathProbe, PathState};
use super::steering::{FlowSteer, Steering};
use super::wire::{self, WanPacket};
use super::FecConfig;
use crate::config::wan::{FecMode, WanConfig};
use crate::wg_plan::TunnelKey;

/// Counters per path, in export order ([`counter_names`]).
pub const PATH_COUNTERS: [&str; 16] = [
    "state",
    "rtt_us",
    "rtt_p95_us",
    "jitter_us",
    "loss_ppm",
    "probes_sent",
    "probes_replied",
    "probes_reflected",
    "transitions",
    "tx_packets",
    "tx_bytes",
    "fec_active",
    "fec_data_sent",
    "fec_parity_sent",
    "fec_recovered",
    "fec_unrecoverable",
];
/// Global counters, after the per-policy ones.
pub const GLOBAL_COUNTERS: [&str; 7] = [
    "compress_in_bytes",
    "compress_out_bytes",
    "compress_skipped",
    "decompress_errors",
    "bad_packets",
    "dup_sent",
    "dup_dropped",
];

/// Every exported name (with the `wan.` prefix), in the order
/// [`WanRuntime::publish`] writes them.
pub fn counter_names(cfg: &WanConfig) -> Vec<String> {
    let mut n = Vec::new();
    for p in &cfg.paths {
        for c in PATH_COUNTERS {
            n.push(format!("wan.path.{}.{c}", p.name));
        }
    }
    for pol in cfg.table.policies() {
        for p in &cfg.paths {
            n.push(format!("wan.policy.{}.path.{}.packets", pol.name, p.name));
        }
        n.push(format!("wan.policy.{}.moves", pol.name));
    }
    for c in GLOBAL_COUNTERS {
        n.push(format!("wan.{c}"));
    }
    n
}

/// Longest WAN packet this builds or takes (an inner packet plus headers).
pub const MAX_WAN_LEN: usize = MAX_PACKET_LEN + 64;

#[derive(Debug, Default, Clone, Copy)]
struct PathCounters {
    probes_replied: u64,
    probes_reflected: u64,
    transitions: u64,
    tx_packets: u64,
    tx_bytes: u64,
}

#[derive(Debug)]
struct PathRt {
    key: TunnelKey,
    site: u16,
    /// Index among its site's paths (the steering's path id).
    local: u16,
    probe: PathProbe,
    state: PathState,
    /// Per policy: its encoder and adaptive toggle (None: FEC off).
    fec: Vec<Option<(FecEncoder, FecToggle)>>,
    dec: FecDecoder,
    c: PathCounters,
    /// Score at the last refresh (for the duplicate's path).
    score: u64,
}

#[derive(Debug, Clone, Copy, Default)]
struct FlowSlot {
    /// Flow fingerprint (0 = empty).
    fp: u64,
    policy: u16,
    steer: FlowSteer,
}

#[derive(Debug)]
struct SiteRt {
    /// Global path indices, by local index.
    paths: Vec<u16>,
    steering: Steering,
    flows: Box<[FlowSlot]>,
    /// Sequence of the next packet duplicated to this site.
    dup_seq: u32,
    /// Copies this site's engine sent us, kept once.
    dedup: super::dedup::DedupWindow,
}

/// What [`WanRuntime::encode`] made of a packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Encoded {
    /// Length of the WAN packet written.
    pub len: usize,
    /// Send a copy on this path too (duplication).
    pub also: Option<usize>,
}

/// Why a received WAN packet was not taken.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InputError {
    /// Malformed header, bad FEC packet, failed decompression.
    Bad,
    /// A probe reply for no path of ours.
    Stray,
}

/// One worker's WAN state.
#[derive(Debug)]
pub struct WanRuntime {
    cfg: std::sync::Arc<WanConfig>,
    paths: Vec<PathRt>,
    sites: Vec<SiteRt>,
    compressor: Compressor,
    /// Per policy, per path: packets steered; per policy: moves.
    policy_packets: Vec<u64>,
    policy_moves: Vec<u64>,
    bad: u64,
    decompress_errors: u64,
    dup_sent: u64,
    dup_dropped: u64,
    last_refresh: u64,
    /// Scratch for a compressed packet before FEC wraps it, and for
    /// decompression.
    scratch: Box<[u8]>,
    inner: Box<[u8]>,
}

/// How often path stats feed the steering and the toggles.
const REFRESH_NS: u64 = 100_000_000;

impl WanRuntime {
    /// Builds the state (allocates every buffer now, none later).
    pub fn new(cfg: std::sync::Arc<WanConfig>) -> Result<Self, String> {
        let policies = cfg.table.len();
        let mut paths = Vec::new();
        for (gi, p) in cfg.paths.iter().enumerate() {
            let local = cfg.paths[..gi].iter().filter(|q| q.site == p.site).count() as u16;
            let probe = PathProbe::new(gi as u16, cfg.probe).map_err(|e| e.to_string())?;
            let mut fec = Vec::with_capacity(policies);
            for a in &cfg.actions {
                fec.push(match a.fec {
                    FecMode::Off => None,
                    mode => {
                        let enc = FecEncoder::new(FecConfig {
                            k: a.fec_k,
                            m: a.fec_m,
                            max_delay_ns: a.fec_delay_ns,
                            ..cfg.decoder
                        })
                        .map_err(|e| e.to_string())?;
                        let toggle = match mode {
                            FecMode::Adaptive { on_ppm, off_ppm } => {
                                FecToggle::new(on_ppm, off_ppm)
                            }
                            // Always on: a toggle that is on at 0 loss.
                            _ => FecToggle::new(0, 0),
                        };
                        Some((enc, toggle))
                    }
                });
            }
            let dec = FecDecoder::new(cfg.decoder).map_err(|e| e.to_string())?;
            paths.push(PathRt {
                key: p.tunnel,
                site: p.site,
                local,
                probe,
                state: PathState::Unknown,
                fec,
                dec,
                c: PathCounters::default(),
                score: u64::MAX,
            });
        }
        let mut sites = Vec::new();
        for s in 0..cfg.sites.len() {
            let members: Vec<u16> = (0..cfg.paths.len() as u16)
                .filter(|&i| cfg.paths[usize::from(i)].site == s as u16)
                .collect();
            let infos: Vec<PathInfo> = members
                .iter()
                .enumerate()
                .map(|(l, &g)| PathInfo {
                    id: l as u16,
                    kind: cfg.paths[usize::from(g)].kind,
                    cost: cfg.paths[usize::from(g)].cost,
                })
                .collect();
            // Preferences name paths by global index: re-number them.
            let mut table = cfg.table.clone();
            table.map_paths(|g| members.iter().position(|&m| m == g).map(|l| l as u16));
            let steering = Steering::new(&infos, table).map_err(|e| e.to_string())?;
            sites.push(SiteRt {
                paths: members,
                steering,
                flows: vec![FlowSlot::default(); cfg.flows as usize].into_boxed_slice(),
                dup_seq: 0,
                dedup: super::dedup::DedupWindow::default(),
            });
        }
        for p in &mut paths {
            // Make sure the toggles of always-on policies read "on".
            for (_, t) in p.fec.iter_mut().flatten() {
                t.update(0);
            }
        }
        Ok(WanRuntime {
            policy_packets: vec![0; policies * cfg.paths.len()],
            policy_moves: vec![0; policies],
            cfg,
            paths,
            sites,
            compressor: Compressor::new(),
            bad: 0,
            decompress_errors: 0,
            dup_sent: 0,
            dup_dropped: 0,
            last_refresh: 0,
            scratch: vec![0; MAX_WAN_LEN].into_boxed_slice(),
            inner: vec![0; MAX_WAN_LEN].into_boxed_slice(),
        })
    }

    pub fn config(&self) -> &WanConfig {
        &self.cfg
    }

    /// The path whose tunnel is `key`.
    #[inline]
    pub fn path_of_tunnel(&self, key: TunnelKey) -> Option<usize> {
        self.paths.iter().position(|p| p.key == key)
    }

    /// The tunnel of path `i`.
    pub fn tunnel_of(&self, i: usize) -> TunnelKey {
        self.paths[i].key
    }

    /// The state of path `i`.
    pub fn path_state(&self, i: usize) -> PathState {
        self.paths[i].state
    }

    /// Chooses the path of a flow (fingerprint `fp`, never 0) routed to
    /// path `routed`'s site: returns (path, policy). `None` when no path of
    /// the site is alive (the caller keeps the routed tunnel).
    #[inline]
    pub fn steer(
        &mut self,
        routed: usize,
        fp: u64,
        tenant: TenantId,
        class: AppClass,
        now: u64,
    ) -> Option<(usize, PolicyId)> {
        let site = usize::from(self.paths.get(routed)?.site);
        let s = &mut self.sites[site];
        let policy = s.steering.policies().lookup(tenant, class);
        let slot = &mut s.flows[(fp as usize) & (s.flows.len() - 1)];
        if slot.fp != fp || slot.policy != policy.0 {
            // A new flow, another flow in the slot, or a flow whose class
            // (so policy) became known: chosen afresh.
            *slot = FlowSlot {
                fp,
                policy: policy.0,
                steer: FlowSteer::default(),
            };
        }
        let before = slot.steer.moves;
        let local = s.steering.steer(&mut slot.steer, policy, now)?;
        if slot.steer.moves != before {
            self.policy_moves[usize::from(policy.0)] += 1;
        }
        let g = usize::from(*s.paths.get(usize::from(local))?);
        Some((g, policy))
    }

    /// Encodes an inner IP packet sent on path `path` under `policy`:
    /// `Ok(Some(e))` when `out[..e.len]` (a WAN packet) must be sent
    /// instead of the packet (and, duplicated, on path `e.also` too),
    /// `Ok(None)` when the bare packet goes as is. Parity packets
    /// completed by this one go to `parity`.
    pub fn encode(
        &mut self,
        path: usize,
        policy: PolicyId,
        ip: &[u8],
        now: u64,
        out: &mut [u8],
        parity: impl FnMut(&[u8]),
    ) -> Result<Option<Encoded>, InputError> {
        let pi = usize::from(policy.0);
        let npaths = self.paths.len();
        if let Some(c) = self.policy_packets.get_mut(pi * npaths + path) {
            *c += 1;
        }
        let also = if self.cfg.actions.get(pi).is_some_and(|a| a.duplicate) {
            self.dup_path(path)
        } else {
            None
        };
        let p = &mut self.paths[path];
        p.c.tx_packets += 1;
        p.c.tx_bytes += ip.len() as u64;
        let compress = self.cfg.actions.get(pi).is_some_and(|a| a.compress);
        let fec = p
            .fec
            .get_mut(pi)
            .and_then(Option::as_mut)
            .filter(|(_, t)| t.is_on());
        if !compress && fec.is_none() && also.is_none() {
            return Ok(None);
        }
        // The WAN packet the FEC protects, duplicates or sends:
        // compressed, else plain.
        let wrapped = fec.is_some() || also.is_some();
        let wan: &[u8] = if compress {
            match self.compressor.compress(ip, &mut self.scratch) {
                Ok(Compressed::Compressed(n)) => &self.scratch[..n],
                Ok(Compressed::Plain(n)) if wrapped => &self.scratch[..n],
                // Not worth it and nothing else to do: the bare packet.
                Ok(Compressed::Plain(_)) => return Ok(None),
                Err(_) => return Err(InputError::Bad),
            }
        } else {
            let n = wire::write_plain_header(&mut self.scratch).map_err(|_| InputError::Bad)?;
            let end = n + ip.len();
            if end > self.scratch.len() {
                return Err(InputError::Bad);
            }
            self.scratch[n..end].copy_from_slice(ip);
            &self.scratch[..end]
        };
        if let Some(other) = also {
            let s = &mut self.sites[usize::from(p.site)];
            let h = wire::write_dup_header(s.dup_seq, out).map_err(|_| InputError::Bad)?;
            s.dup_seq = s.dup_seq.wrapping_add(1);
            out.get_mut(h..h + wan.len())
                .ok_or(InputError::Bad)?
                .copy_from_slice(wan);
            self.dup_sent += 1;
            let q = &mut self.paths[other];
            q.c.tx_packets += 1;
            q.c.tx_bytes += ip.len() as u64;
            return Ok(Some(Encoded {
                len: h + wan.len(),
                also: Some(other),
            }));
        }
        let len = match fec {
            Some((enc, _)) => enc
                .encode(wan, now, out, parity)
                .map_err(|_| InputError::Bad)?,
            None => {
                out.get_mut(..wan.len())
                    .ok_or(InputError::Bad)?
                    .copy_from_slice(wan);
                wan.len()
            }
        };
        Ok(Some(Encoded { len, also: None }))
    }

    /// The path a duplicate of a packet on `path` takes: the best-scoring
    /// other alive path of its site.
    fn dup_path(&self, path: usize) -> Option<usize> {
        let site = self.paths[path].site;
        self.paths
            .iter()
            .enumerate()
            .filter(|(i, q)| *i != path && q.site == site && q.state == PathState::Alive)
            .min_by_key(|(_, q)| q.score)
            .map(|(i, _)| i)
    }

    /// Takes a WAN packet received on tunnel `key` at `now`. A probe's
    /// reply (to send back on the same tunnel) goes to `reply`, and its
    /// length is returned (0: nothing to send); each inner IP packet goes
    /// to `deliver`.
    pub fn input(
        &mut self,
        key: TunnelKey,
        b: &[u8],
        now: u64,
        reply: &mut [u8; wire::PROBE_REPLY_LEN],
        mut deliver: impl FnMut(&[u8]),
    ) -> Result<usize, InputError> {
        let path = self.path_of_tunnel(key);
        let parsed = match WanPacket::parse(b) {
            Ok(p) => p,
            Err(_) => {
                self.bad += 1;
                return Err(InputError::Bad);
            }
        };
        match parsed {
            WanPacket::Probe(_) => match wire::reflect(b, now, now, reply) {
                Ok(n) => {
                    if let Some(p) = path {
                        self.paths[p].c.probes_reflected += 1;
                    }
                    Ok(n)
                }
                Err(_) => Err(InputError::Bad),
            },
            WanPacket::ProbeReply(r) => {
                // The path named in the probe, which must be the tunnel's.
                let p = usize::from(r.probe.path);
                match self.paths.get_mut(p).filter(|q| q.key == key) {
                    Some(q) => {
                        if q.probe.on_reply(&r, now) == super::ReplyOutcome::Accepted {
                            q.c.probes_replied += 1;
                        }
                        Ok(0)
                    }
                    None => Err(InputError::Stray),
                }
            }
            WanPacket::FecData { .. } | WanPacket::FecParity { .. } => {
                let Some(p) = path else {
                    self.bad += 1;
                    return Err(InputError::Bad);
                };
                let (inner, errs) = (&mut self.inner, &mut self.decompress_errors);
                let mut failed = false;
                let r = self.paths[p].dec.push(b, now, |w| {
                    if unwrap_inner(w, inner, errs, &mut deliver).is_err() {
                        failed = true;
                    }
                });
                if r.is_err() || failed {
                    self.bad += 1;
                    return Err(InputError::Bad);
                }
                Ok(0)
            }
            WanPacket::Duplicate { seq, inner } => {
                let Some(p) = path else {
                    self.bad += 1;
                    return Err(InputError::Bad);
                };
                let site = &mut self.sites[usize::from(self.paths[p].site)];
                if !site.dedup.accept(seq) {
                    self.dup_dropped += 1;
                    return Ok(0);
                }
                self.unwrap_counted(inner, &mut deliver)
            }
            WanPacket::Plain(_) | WanPacket::Compressed { .. } | WanPacket::Raw(_) => {
                self.unwrap_counted(b, &mut deliver)
            }
        }
    }

    /// Timers at `now`: probes due go to `send(path, bytes)`; FEC groups
    /// past their delay send their parity; reassembly gives up old groups;
    /// path states and stats feed the steering and the FEC toggles.
    /// `session(path)` says whether the path's tunnel has a session (see
    /// [`PathProbe::poll_unrecorded`]).
    pub fn poll(
        &mut self,
        now: u64,
        session: impl Fn(usize) -> bool,
        mut send: impl FnMut(usize, &[u8]),
    ) {
        let mut buf = [0u8; wire::PROBE_LEN];
        let mut changed = false;
        for (i, p) in self.paths.iter_mut().enumerate() {
            let probe = if session(i) {
                p.probe.poll(now, &mut buf).ok().flatten()
            } else {
                p.probe.tick(now);
                p.probe.poll_unrecorded(now, &mut buf)
            };
            if let Some(n) = probe {
                send(i, &buf[..n]);
            }
            for (enc, _) in p.fec.iter_mut().flatten() {
                let _ = enc.poll(now, |b| send(i, b));
            }
            p.dec.expire(now);
            let st = p.probe.state();
            if st != p.state {
                p.state = st;
                p.c.transitions += 1;
                changed = true;
            }
        }
        if changed || now.wrapping_sub(self.last_refresh) >= REFRESH_NS {
            self.refresh(now);
        }
    }

    fn refresh(&mut self, now: u64) {
        self.last_refresh = now;
        for p in &mut self.paths {
            let stats = p.probe.stats(now);
            p.score = super::policy::score(&stats);
            let s = &mut self.sites[usize::from(p.site)];
            let _ = s.steering.update_path(usize::from(p.local), p.state, stats);
            for (_, t) in p.fec.iter_mut().flatten() {
                t.update(stats.loss_ppm);
            }
        }
        for s in &mut self.sites {
            s.steering.refresh(now);
        }
    }

    /// [`unwrap_inner`] on a received WAN packet `w`, counting a bad one.
    fn unwrap_counted(
        &mut self,
        w: &[u8],
        deliver: &mut impl FnMut(&[u8]),
    ) -> Result<usize, InputError> {
        let r = unwrap_inner(w, &mut self.inner, &mut self.decompress_errors, deliver);
        if r.is_err() {
            self.bad += 1;
        }
        r.map(|()| 0)
    }

    /// Writes every counter (order of [`counter_names`]) into `out`.
    pub fn publish(&mut self, now: u64, out: &[AtomicU64]) {
        let mut vals = out.iter();
        let mut put = |v: u64| {
            if let Some(a) = vals.next() {
                a.store(v, Ordering::Relaxed);
            }
        };
        for p in &mut self.paths {
            let st = p.probe.stats(now);
            let (mut data, mut parity, mut active) = (0, 0, 0);
            for (enc, t) in p.fec.iter().flatten() {
                data += enc.counters().data_sent;
                parity += enc.counters().parity_sent;
                active |= u64::from(t.is_on());
            }
            let d = p.dec.counters();
            for v in [
                match p.state {
                    PathState::Unknown => 0,
                    PathState::Alive => 1,
                    PathState::Dead => 2,
                },
                st.rtt_avg_ns / 1000,
                st.rtt_p95_ns / 1000,
                st.jitter_ns / 1000,
                u64::from(st.loss_ppm),
                p.probe.sent(),
                p.c.probes_replied,
                p.c.probes_reflected,
                p.c.transitions,
                p.c.tx_packets,
                p.c.tx_bytes,
                active,
                data,
                parity,
                d.recovered,
                d.unrecoverable,
            ] {
                put(v);
            }
        }
        let n = self.paths.len();
        for (pi, moves) in self.policy_moves.iter().enumerate() {
            for i in 0..n {
                put(self.policy_packets[pi * n + i]);
            }
            put(*moves);
        }
        let c = self.compressor.counters();
        for v in [
            c.bytes_in,
            c.bytes_out,
            c.skipped,
            self.decompress_errors + c.decompress_errors,
            self.bad,
            self.dup_sent,
            self.dup_dropped,
        ] {
            put(v);
        }
    }
}

/// Unwraps a plain or compressed WAN packet (or a bare IP packet) to its
/// IP packet and hands it to `deliver`.
fn unwrap_inner(
    w: &[u8],
    scratch: &mut [u8],
    errs: &mut u64,
    deliver: &mut impl FnMut(&[u8]),
) -> Result<(), InputError> {
    match WanPacket::parse(w) {
        Ok(WanPacket::Plain(ip) | WanPacket::Raw(ip)) => {
            deliver(ip);
            Ok(())
        }
        Ok(WanPacket::Compressed { orig_len, block }) => {
            match decompress_bounded(orig_len, block, scratch, MAX_PACKET_LEN) {
                Ok(n) => {
                    deliver(&scratch[..n]);
                    Ok(())
                }
                Err(_) => {
                    *errs += 1;
                    Err(InputError::Bad)
                }
            }
        }
        _ => Err(InputError::Bad),
    }
}
