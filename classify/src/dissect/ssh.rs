//! SSH: the identification string (`SSH-2.0-…`, `SSH-1.99-…`, `SSH-1.5-…`,
//! RFC 4253 §4.2) that both sides send first, from either side.

use super::http::is_filler;
use super::Ctx;
use crate::class::Class;
use crate::view::{PacketView, Step, Verdict, L4};

const PREFIX: &[u8] = b"SSH-";

#[derive(Clone, Debug, Default)]
pub struct State {}

impl State {
    pub fn inspect(&mut self, _ctx: &mut Ctx, p: &PacketView<'_>) -> Step {
        if p.l4 != L4::Tcp {
            return Step::NotMine;
        }
        if is_filler(p.payload) {
            return Step::More;
        }
        banner(p.payload)
    }
}

/// `SSH-<digits>.<digits>-<printable software id>`; a short segment that
/// is still a prefix of that asks for more.
fn banner(b: &[u8]) -> Step {
    if b.len() < PREFIX.len() {
        return if PREFIX.starts_with(b) {
            Step::More
        } else {
            Step::NotMine
        };
    }
    if !b.starts_with(PREFIX) {
        return Step::NotMine;
    }
    let rest = &b[PREFIX.len()..];
    let major = digits(rest);
    if major == 0 || rest.get(major) != Some(&b'.') {
        return Step::NotMine;
    }
    let rest = &rest[major + 1..];
    let minor = digits(rest);
    if minor == 0 || rest.get(minor) != Some(&b'-') {
        return Step::NotMine;
    }
    // The software version: at least one printable character.
    match rest.get(minor + 1) {
        Some(c) if (0x21..0x7f).contains(c) => Step::Done(Verdict::sure(Class::Ssh, None)),
        _ => Step::NotMine,
    }
}

fn digits(b: &[u8]) -> usize {
    b.iter().take(4).take_while(|c| c.is_ascii_digit()).count()
}
