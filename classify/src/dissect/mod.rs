//! The signature dissectors, one file each, and what they share.
//!
//! Each dissector module has a `State` (`Default`, small, inline: a flow's
//! memory of what this dissector saw) with
//! `fn inspect(&mut self, ctx: &mut Ctx, p: &PacketView) -> Step`:
//! `Done` when sure (class and name), `NotMine` when sure it is not its
//! protocol (it is not called again for the flow), `More` to see the next
//! packet. Dissectors never allocate and never panic on any input.

use std::net::IpAddr;

use crate::class::Class;
use crate::view::{PacketView, Step, Verdict};

pub mod bittorrent;
pub mod client_hello;
pub mod dns;
pub mod ftp;
pub mod http;
pub mod quic;
pub mod smtp;
pub mod ssh;
pub mod tls;
pub mod webrtc;

/// Number of dissectors (bits of `FlowDpi::ruled_out`).
pub const COUNT: usize = 9;
/// Index of the FTP dissector in [`States::inspect`].
pub const FTP: usize = 6;

/// Every dissector's state for one flow, in calling order.
#[derive(Clone, Debug, Default)]
pub struct States {
    pub dns: dns::State,
    pub quic: quic::State,
    pub tls: tls::State,
    pub http: http::State,
    pub ssh: ssh::State,
    pub smtp: smtp::State,
    pub ftp: ftp::State,
    pub webrtc: webrtc::State,
    pub bittorrent: bittorrent::State,
}

impl States {
    /// Runs dissector `i` (0..COUNT, the field order above).
    pub fn inspect(&mut self, i: usize, ctx: &mut Ctx, p: &PacketView<'_>) -> Step {
        match i {
            0 => self.dns.inspect(ctx, p),
            1 => self.quic.inspect(ctx, p),
            2 => self.tls.inspect(ctx, p),
            3 => self.http.inspect(ctx, p),
            4 => self.ssh.inspect(ctx, p),
            5 => self.smtp.inspect(ctx, p),
            6 => self.ftp.inspect(ctx, p),
            7 => self.webrtc.inspect(ctx, p),
            8 => self.bittorrent.inspect(ctx, p),
            _ => Step::NotMine,
        }
    }
}

/// Most connections announced and not yet seen (FTP data).
const EXPECTATIONS: usize = 64;
/// How long an announced connection is awaited.
const EXPECT_NS: u64 = 120_000_000_000;

#[derive(Clone, Copy, Debug)]
struct Expectation {
    addr: IpAddr,
    port: u16,
    class: Class,
    until_ns: u64,
    /// Found already (an announcement classifies one connection).
    used: bool,
}

/// What dissectors share across flows (one per worker): connections a
/// control connection announced (FTP `PORT`/`PASV`/`EPSV`/`EPRT`), found
/// again when their first packet comes.
#[derive(Clone, Debug, Default)]
pub struct Ctx {
    /// The clock of the packet being inspected.
    pub now_ns: u64,
    slots: Vec<Expectation>,
    next: usize,
}

impl Ctx {
    /// Announces that a connection to `addr:port` will be `class` (the
    /// oldest announcement gives way when the table is full).
    pub fn expect(&mut self, addr: IpAddr, port: u16, class: Class) {
        let e = Expectation {
            addr,
            port,
            class,
            until_ns: self.now_ns.saturating_add(EXPECT_NS),
            used: false,
        };
        if let Some(s) = self
            .slots
            .iter_mut()
            .find(|s| (s.addr, s.port) == (addr, port) || s.used || s.until_ns < self.now_ns)
        {
            *s = e;
        } else if self.slots.len() < EXPECTATIONS {
            // Grows once to its bound, then slots are reused.
            self.slots.push(e);
        } else {
            self.slots[self.next] = e;
            self.next = (self.next + 1) % EXPECTATIONS;
        }
    }

    /// The verdict for a flow whose first packet goes to an announced
    /// endpoint (either side: active FTP connects from the server).
    pub fn expected(&mut self, p: &PacketView<'_>) -> Option<Verdict> {
        let now = self.now_ns;
        let s = self.slots.iter_mut().find(|s| {
            !s.used
                && s.until_ns >= now
                && ((s.addr, s.port) == (p.dst, p.dport) || (s.addr, s.port) == (p.src, p.sport))
        })?;
        s.used = true;
        Some(Verdict::sure(s.class, None))
    }
}
