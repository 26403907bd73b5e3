//! FTP control connections: a `220` greeting that names FTP, or an
//! ambiguous `220` followed by an FTP command (`USER`, `AUTH`, `FEAT`, …;
//! SMTP's greeting and `EHLO` rule FTP out). Once sure, it keeps reading
//! the control connection for the data connections it announces (`PORT`,
//! `EPRT`, `227 Entering Passive Mode (h1,h2,h3,h4,p1,p2)`, `229 Entering
//! Extended Passive Mode (|||port|)`) and passes them to [`Ctx::expect`]
//! so that the driver classifies them ftp. It answers `Done` at the first
//! announcement (or when TLS hides the rest, or before the driver's packet
//! budget runs out), because the driver stops calling a flow's dissectors
//! once it has a verdict.

use std::net::{IpAddr, Ipv4Addr};

use super::http::{contains_ci, is_filler};
use super::smtp::{first_line, Line};
use super::Ctx;
use crate::class::Class;
use crate::dpi::MAX_DPI_PACKETS;
use crate::view::{PacketView, Step, Verdict, L4};

/// Client commands that only FTP sends first (after the greeting).
const FIRST_COMMANDS: [&[u8]; 8] = [
    b"USER", b"AUTH", b"FEAT", b"SYST", b"OPTS", b"CLNT", b"HOST", b"PASS",
];

/// Server answers to those commands (RFC 959, RFC 2228, RFC 2389).
const FIRST_REPLIES: [u16; 14] = [
    200, 211, 215, 220, 230, 234, 331, 332, 334, 500, 501, 502, 504, 530,
];

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum Phase {
    #[default]
    Start,
    /// A `220` greeting that names neither FTP nor SMTP.
    AmbiguousGreeting,
    /// No greeting (the capture started later) but an FTP command: the
    /// server's answer decides.
    CommandFirst,
    /// An FTP control connection.
    Ftp,
}

#[derive(Clone, Debug, Default)]
pub struct State {
    phase: Phase,
    /// Payload packets read (the driver's budget counts them too).
    packets: u16,
}

impl State {
    pub fn inspect(&mut self, ctx: &mut Ctx, p: &PacketView<'_>) -> Step {
        if p.l4 != L4::Tcp {
            return Step::NotMine;
        }
        self.packets = self.packets.saturating_add(1);
        let b = p.payload;
        if is_filler(b) {
            return self.more();
        }
        let line = first_line(b);
        match self.phase {
            Phase::Start => match line {
                Line::Reply(220, _) => self.greeting(b),
                // A capture that starts after the greeting.
                Line::Command(c, _) if is_first_command(c) => {
                    self.phase = Phase::CommandFirst;
                    Step::More
                }
                _ => Step::NotMine,
            },
            Phase::CommandFirst => match line {
                Line::Reply(code, _) if FIRST_REPLIES.contains(&code) => self.ftp(ctx, p),
                _ => Step::NotMine,
            },
            Phase::AmbiguousGreeting => match line {
                Line::Reply(220, _) => self.greeting(b),
                Line::Command(c, _) if is_first_command(c) => self.ftp(ctx, p),
                _ => Step::NotMine,
            },
            Phase::Ftp => self.ftp(ctx, p),
        }
    }

    fn greeting(&mut self, b: &[u8]) -> Step {
        if contains_ci(b, b"SMTP") {
            Step::NotMine
        } else if contains_ci(b, b"FTP") {
            self.phase = Phase::Ftp;
            Step::More
        } else {
            self.phase = Phase::AmbiguousGreeting;
            Step::More
        }
    }

    /// A packet of a known control connection: announcements or TLS.
    fn ftp(&mut self, ctx: &mut Ctx, p: &PacketView<'_>) -> Step {
        self.phase = Phase::Ftp;
        let (announced, tls) = announcements(ctx, p);
        if announced || tls {
            return Step::Done(Verdict::sure(Class::Ftp, None));
        }
        self.more()
    }

    /// A packet of the control connection after its verdict: registers the
    /// data connections it announces. Returns whether later packets can
    /// still announce some (not once TLS hides the dialogue). The driver
    /// stops calling dissectors at a verdict, so announcements after the
    /// first one (or after [`MAX_DPI_PACKETS`]) are only seen by a driver
    /// that keeps calling this on an ftp control flow.
    pub fn watch(&mut self, ctx: &mut Ctx, p: &PacketView<'_>) -> bool {
        if self.phase != Phase::Ftp || p.l4 != L4::Tcp {
            return false;
        }
        let (_, tls) = announcements(ctx, p);
        !tls
    }

    /// `More`, unless the driver would give up on the flow after this
    /// packet: then the (sure) verdict now.
    fn more(&self) -> Step {
        if self.phase == Phase::Ftp && self.packets >= MAX_DPI_PACKETS.saturating_sub(1) {
            Step::Done(Verdict::sure(Class::Ftp, None))
        } else {
            Step::More
        }
    }
}

/// Registers the data connections `p` announces; returns whether it
/// announced any and whether it accepted TLS.
fn announcements(ctx: &mut Ctx, p: &PacketView<'_>) -> (bool, bool) {
    let mut announced = false;
    let mut tls = false;
    for line in p.payload.split(|&c| c == b'\n') {
        match first_line(line) {
            Line::Command(c, arg) if c.eq_ignore_ascii_case(b"PORT") => {
                if let Some((ip, port)) = six_numbers(arg) {
                    expect(ctx, p.src, IpAddr::V4(ip), port);
                    announced = true;
                }
            }
            Line::Command(c, arg) if c.eq_ignore_ascii_case(b"EPRT") => {
                if let Some((ip, port)) = eprt(arg) {
                    expect(ctx, p.src, ip, port);
                    announced = true;
                }
            }
            Line::Reply(227, text) => {
                if let Some((ip, port)) = six_numbers(text) {
                    expect(ctx, p.src, IpAddr::V4(ip), port);
                    announced = true;
                }
            }
            Line::Reply(229, text) => {
                if let Some(port) = epsv_port(text) {
                    ctx.expect(p.src, port, Class::Ftp);
                    announced = true;
                }
            }
            // AUTH TLS/SSL accepted: the rest is encrypted.
            Line::Reply(234, _) => tls = true,
            _ => {}
        }
    }
    (announced, tls)
}

fn is_first_command(c: &[u8]) -> bool {
    FIRST_COMMANDS.iter().any(|f| c.eq_ignore_ascii_case(f))
}

/// Expects the announced endpoint, and the same port at the sender's
/// address when the announced one differs (a server behind NAT announces
/// its inside address).
fn expect(ctx: &mut Ctx, sender: IpAddr, announced: IpAddr, port: u16) {
    ctx.expect(announced, port, Class::Ftp);
    if announced != sender {
        ctx.expect(sender, port, Class::Ftp);
    }
}

/// The first `h1,h2,h3,h4,p1,p2` in `text` (PORT's argument, 227's text).
fn six_numbers(text: &[u8]) -> Option<(Ipv4Addr, u16)> {
    (0..text.len())
        .filter(|&i| text[i].is_ascii_digit() && (i == 0 || !text[i - 1].is_ascii_digit()))
        .find_map(|i| {
            let mut n = [0u8; 6];
            let mut at = i;
            for (k, v) in n.iter_mut().enumerate() {
                let (value, len) = number(&text[at..])?;
                *v = u8::try_from(value).ok()?;
                at += len;
                if k < 5 {
                    if text.get(at) != Some(&b',') {
                        return None;
                    }
                    at += 1;
                }
            }
            let port = u16::from(n[4]) << 8 | u16::from(n[5]);
            (port != 0).then_some((Ipv4Addr::new(n[0], n[1], n[2], n[3]), port))
        })
}

/// A decimal number of at most 5 digits at the start of `b`: value, length.
fn number(b: &[u8]) -> Option<(u32, usize)> {
    let len = b.iter().take(6).take_while(|c| c.is_ascii_digit()).count();
    if len == 0 || len > 5 {
        return None;
    }
    let v = b[..len]
        .iter()
        .fold(0u32, |n, &d| n * 10 + u32::from(d - b'0'));
    Some((v, len))
}

/// `EPRT <d>1<d>132.235.1.2<d>6275<d>` (RFC 2428).
fn eprt(arg: &[u8]) -> Option<(IpAddr, u16)> {
    let d = *arg.first()?;
    let mut fields = arg[1..].split(|&c| c == d);
    let _proto = fields.next()?;
    let addr = std::str::from_utf8(fields.next()?).ok()?.parse().ok()?;
    let port = port_of(fields.next()?)?;
    Some((addr, port))
}

/// `229 Entering Extended Passive Mode (|||6446|)`: the port.
fn epsv_port(text: &[u8]) -> Option<u16> {
    let open = text.iter().position(|&c| c == b'(')?;
    let inner = &text[open + 1..];
    let d = *inner.first()?;
    if inner.get(1) != Some(&d) || inner.get(2) != Some(&d) {
        return None;
    }
    let rest = &inner[3..];
    let end = rest.iter().position(|&c| c == d)?;
    port_of(&rest[..end])
}

fn port_of(b: &[u8]) -> Option<u16> {
    let (v, len) = number(b)?;
    if len != b.len() {
        return None;
    }
    u16::try_from(v).ok().filter(|&p| p != 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv6Addr;

    #[test]
    fn announcements_parse() {
        // RFC 959 / RFC 2428 argument forms.
        assert_eq!(
            six_numbers(b"Entering Passive Mode (90,130,70,73,100,85)."),
            Some((Ipv4Addr::new(90, 130, 70, 73), 25685))
        );
        assert_eq!(
            six_numbers(b"10,0,0,1,4,1"),
            Some((Ipv4Addr::new(10, 0, 0, 1), 1025))
        );
        assert_eq!(six_numbers(b"(256,0,0,1,4,1)"), None);
        assert_eq!(six_numbers(b"(1,2,3,4,5)"), None);
        assert_eq!(
            eprt(b"|1|132.235.1.2|6275|"),
            Some((IpAddr::V4(Ipv4Addr::new(132, 235, 1, 2)), 6275))
        );
        assert_eq!(
            eprt(b"|2|1080::8:800:200C:417A|5282|"),
            Some((
                IpAddr::V6(Ipv6Addr::new(0x1080, 0, 0, 0, 8, 0x800, 0x200c, 0x417a)),
                5282
            ))
        );
        assert_eq!(eprt(b"|1|132.235.1.2|99999|"), None);
        assert_eq!(
            epsv_port(b"Entering Extended Passive Mode (|||6446|)"),
            Some(6446)
        );
        assert_eq!(epsv_port(b"Entering Extended Passive Mode (||6446|)"), None);
    }
}
