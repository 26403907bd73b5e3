//! DNS over UDP and over TCP (RFC 1035 §4.2.2: a 2-byte length prefix):
//! header sanity (one question, known opcode, record counts that fit),
//! then the question, with compression pointers bounded. The name is the
//! query name. Off the DNS port every record must parse and end the
//! datagram exactly. DNS-format traffic nDPI names otherwise is identified
//! as `other`: mDNS (5353), LLMNR (5355), NetBIOS names (137) and DNSCrypt
//! certificate queries (`2.dnscrypt-cert.…`, Avast SecureDNS).

use super::http::starts_with_ci;
use super::Ctx;
use crate::class::Class;
use crate::view::{AppName, PacketView, Step, Verdict, L4};

const DNS_PORT: u16 = 53;
const MDNS_PORT: u16 = 5353;
const LLMNR_PORT: u16 = 5355;
const NBNS_PORT: u16 = 137;
const HEADER_LEN: usize = 12;
/// Longest name on the wire (RFC 1035 §2.3.4).
const NAME_MAX: usize = 255;
/// Compression pointers followed in one name.
const MAX_JUMPS: usize = 16;
/// Smallest resource record: root name, type, class, TTL, RDLENGTH.
const MIN_RR_LEN: usize = 11;

#[derive(Clone, Debug, Default)]
pub struct State {
    /// TCP: the first segment held only the length prefix.
    tcp_length_only: bool,
}

impl State {
    pub fn inspect(&mut self, _ctx: &mut Ctx, p: &PacketView<'_>) -> Step {
        let port = |n| p.sport == n || p.dport == n;
        let msg = match p.l4 {
            L4::Tcp => {
                if !port(DNS_PORT) {
                    return Step::NotMine;
                }
                if self.tcp_length_only {
                    p.payload
                } else if p.payload.len() == 2 {
                    self.tcp_length_only = true;
                    return Step::More;
                } else {
                    let Some((len, rest)) = p.payload.split_first_chunk::<2>() else {
                        return Step::NotMine;
                    };
                    if usize::from(u16::from_be_bytes(*len)) < HEADER_LEN {
                        return Step::NotMine;
                    }
                    rest
                }
            }
            L4::Udp => p.payload,
        };
        let special = [MDNS_PORT, LLMNR_PORT, NBNS_PORT].into_iter().any(port);
        let strict = p.l4 == L4::Udp && !port(DNS_PORT) && !special;
        let Some(m) = parse(msg, strict, port(NBNS_PORT)) else {
            return Step::NotMine;
        };
        let class = if special || m.dnscrypt_cert {
            Class::Other
        } else {
            Class::Dns
        };
        Step::Done(Verdict::sure(class, m.name))
    }
}

/// What a parse found.
struct Message {
    name: Option<AppName>,
    /// A DNSCrypt resolver certificate query (`2.dnscrypt-cert.…`) or
    /// Avast SecureDNS's (`2.securedns.avast.com`).
    dnscrypt_cert: bool,
}

fn be16(b: &[u8], at: usize) -> Option<u16> {
    let s = b.get(at..at.checked_add(2)?)?;
    Some(u16::from_be_bytes([s[0], s[1]]))
}

/// Checks `msg` (no TCP prefix). `strict`: every record must parse and
/// the records must end the message. `nbns`: NetBIOS opcodes allowed.
fn parse(msg: &[u8], strict: bool, nbns: bool) -> Option<Message> {
    if msg.len() < HEADER_LEN + 5 {
        return None;
    }
    let flags = be16(msg, 2)?;
    let response = flags & 0x8000 != 0;
    let opcode = (flags >> 11) & 0xf;
    let rcode = flags & 0xf;
    let [qd, an, ns, ar] = [4, 6, 8, 10].map(|at| usize::from(be16(msg, at).unwrap_or(u16::MAX)));
    let opcode_ok = match opcode {
        0 | 2 | 4 | 5 => true,
        1 => true, // inverse query (obsolete, still seen)
        6..=9 => nbns,
        _ => false,
    };
    if !opcode_ok || rcode > 10 || (!response && rcode != 0) {
        return None;
    }
    // One question; an inverse query carries an answer instead.
    let shape_ok = match (qd, opcode) {
        (1, _) => true,
        (0, 1) => an == 1,
        _ => false,
    };
    if !shape_ok || (!response && opcode == 0 && an != 0) {
        return None;
    }
    let records = an + ns + ar;
    if records.saturating_mul(MIN_RR_LEN) > msg.len() - HEADER_LEN {
        return None;
    }
    let mut name = [0u8; NAME_MAX];
    let mut name_len = 0;
    let mut at = HEADER_LEN;
    let mut dnscrypt_cert = false;
    if qd == 1 {
        at = read_name(msg, at, &mut name, &mut name_len)?;
        let qtype = be16(msg, at)?;
        let qclass = be16(msg, at + 2)? & 0x7fff;
        if qtype == 0 || !matches!(qclass, 1 | 3 | 4 | 254 | 255) {
            return None;
        }
        at += 4;
        let n = &name[..name_len];
        dnscrypt_cert = n.len() > 2
            && n.starts_with(b"2.")
            && (starts_with_ci(&n[2..], b"dnscrypt-cert.")
                || n[2..].eq_ignore_ascii_case(b"securedns.avast.com"));
    }
    if strict {
        for _ in 0..records {
            at = skip_record(msg, at)?;
        }
        if at != msg.len() {
            return None;
        }
    }
    Some(Message {
        name: AppName::new(&name[..name_len]),
        dnscrypt_cert,
    })
}

/// Reads the name at `at` into `out` (dotted, labels as they are);
/// returns the offset after it. Pointers must go backwards into the
/// message body.
fn read_name(
    msg: &[u8],
    mut at: usize,
    out: &mut [u8; NAME_MAX],
    out_len: &mut usize,
) -> Option<usize> {
    let mut end = None;
    let mut jumps = 0;
    *out_len = 0;
    loop {
        let len = *msg.get(at)?;
        match len & 0xc0 {
            0x00 => {
                if len == 0 {
                    return Some(end.unwrap_or(at + 1));
                }
                let label = msg.get(at + 1..at + 1 + usize::from(len))?;
                let dot = usize::from(*out_len > 0);
                if *out_len + dot + label.len() > NAME_MAX {
                    return None;
                }
                if dot == 1 {
                    out[*out_len] = b'.';
                }
                out[*out_len + dot..*out_len + dot + label.len()].copy_from_slice(label);
                *out_len += dot + label.len();
                at += 1 + usize::from(len);
            }
            0xc0 => {
                let target = usize::from(be16(msg, at)? & 0x3fff);
                jumps += 1;
                if jumps > MAX_JUMPS || target < HEADER_LEN || target >= at {
                    return None;
                }
                end.get_or_insert(at + 2);
                at = target;
            }
            _ => return None, // extended label types: not in use
        }
    }
}

/// Skips one resource record (name, type, class, TTL, RDATA).
fn skip_record(msg: &[u8], at: usize) -> Option<usize> {
    let mut scratch = [0u8; NAME_MAX];
    let mut n = 0;
    let at = read_name(msg, at, &mut scratch, &mut n)?;
    let rdlen = usize::from(be16(msg, at + 8)?);
    let end = at + 10 + rdlen;
    (end <= msg.len()).then_some(end)
}
