//! SMTP: the server's `220` greeting that names (E)SMTP, or an ambiguous
//! `220` followed by the client's `EHLO`/`HELO` (FTP servers greet with
//! `220` too: a greeting naming FTP, or a first command that is not
//! `EHLO`/`HELO`, rules SMTP out). As nDPI does, a session that upgrades
//! with `STARTTLS` is SMTPS, which the classes count as `other`: so the
//! verdict waits for the server's EHLO answer (no STARTTLS offered: smtp)
//! or the client's next command.

use super::http::{contains_ci, is_filler};
use super::Ctx;
use crate::class::Class;
use crate::view::{PacketView, Step, Verdict, L4};

/// Payload packets read once the flow is known to be SMTP before deciding
/// without having seen whether it upgrades.
const DECIDE_PACKETS: u8 = 6;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum Phase {
    #[default]
    Start,
    /// A `220` greeting that names neither SMTP nor FTP.
    AmbiguousGreeting,
    /// No greeting (the capture started later) but EHLO/HELO: the server's
    /// answer decides.
    HelloFirst,
    /// SMTP; `ehlo` once the client said EHLO/HELO.
    Smtp { ehlo: bool },
}

#[derive(Clone, Debug, Default)]
pub struct State {
    phase: Phase,
    /// Packets read in phase `Smtp`.
    packets: u8,
}

/// How a text packet of a mail or file transfer dialogue starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Line<'a> {
    /// `NNN text` or `NNN-text`: a server reply.
    Reply(u16, &'a [u8]),
    /// An alphabetic command word (upper-cased as sent) and what follows.
    Command(&'a [u8], &'a [u8]),
    Other,
}

/// Classifies the first line of `b`.
pub(crate) fn first_line(b: &[u8]) -> Line<'_> {
    let end = b.iter().position(|&c| c == b'\n').unwrap_or(b.len());
    let line = &b[..end];
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    if line.len() >= 3 && line[..3].iter().all(u8::is_ascii_digit) {
        let code = line[..3]
            .iter()
            .fold(0u16, |n, &d| n * 10 + u16::from(d - b'0'));
        return match line.get(3) {
            None | Some(b' ') | Some(b'-') => Line::Reply(code, line.get(4..).unwrap_or(&[])),
            _ => Line::Other,
        };
    }
    let word = line.iter().position(|&c| c == b' ').unwrap_or(line.len());
    if (3..=8).contains(&word) && line[..word].iter().all(u8::is_ascii_alphabetic) {
        let rest = line.get(word + 1..).unwrap_or(&[]);
        return Line::Command(&line[..word], rest);
    }
    Line::Other
}

impl State {
    pub fn inspect(&mut self, _ctx: &mut Ctx, p: &PacketView<'_>) -> Step {
        if p.l4 != L4::Tcp {
            return Step::NotMine;
        }
        let b = p.payload;
        if is_filler(b) {
            return Step::More;
        }
        let line = first_line(b);
        match self.phase {
            Phase::Start => match line {
                Line::Reply(220, _) => self.greeting(b),
                Line::Command(c, _) if is_hello(c) => {
                    self.phase = Phase::HelloFirst;
                    Step::More
                }
                _ => Step::NotMine,
            },
            Phase::HelloFirst => match line {
                Line::Reply(250, _) if !contains_ci(b, b"STARTTLS") => done(Class::Smtp),
                Line::Reply(250 | 421 | 500..=504 | 550, _) => self.smtp(true),
                _ => Step::NotMine,
            },
            Phase::AmbiguousGreeting => match line {
                // More lines of a multi-line greeting.
                Line::Reply(220, _) => self.greeting(b),
                Line::Command(c, _) if is_hello(c) => self.smtp(true),
                _ => Step::NotMine,
            },
            Phase::Smtp { ehlo } => {
                self.packets = self.packets.saturating_add(1);
                match line {
                    Line::Command(c, _) if is_hello(c) => {
                        self.phase = Phase::Smtp { ehlo: true };
                    }
                    Line::Command(c, _) if ehlo && c.eq_ignore_ascii_case(b"STARTTLS") => {
                        return done(Class::Other);
                    }
                    Line::Command(_, _) if ehlo => return done(Class::Smtp),
                    // The answer to EHLO lists the extensions.
                    Line::Reply(250, _) if ehlo && !contains_ci(b, b"STARTTLS") => {
                        return done(Class::Smtp);
                    }
                    _ => {}
                }
                if self.packets >= DECIDE_PACKETS {
                    return done(Class::Smtp);
                }
                Step::More
            }
        }
    }

    /// A `220` greeting (or more of one).
    fn greeting(&mut self, b: &[u8]) -> Step {
        if contains_ci(b, b"FTP") {
            Step::NotMine
        } else if contains_ci(b, b"SMTP") {
            self.smtp(false)
        } else {
            self.phase = Phase::AmbiguousGreeting;
            Step::More
        }
    }

    fn smtp(&mut self, ehlo: bool) -> Step {
        self.phase = Phase::Smtp { ehlo };
        self.packets = 0;
        Step::More
    }
}

fn is_hello(c: &[u8]) -> bool {
    c.eq_ignore_ascii_case(b"EHLO") || c.eq_ignore_ascii_case(b"HELO")
}

fn done(class: Class) -> Step {
    Step::Done(Verdict::sure(class, None))
}
