//! QUIC: a flow whose first payload is a client Initial packet (a long
//! header of a known version in a datagram of at least 1200 bytes, as
//! clients must send) is quic. Its server name comes from the ClientHello
//! carried in CRYPTO frames: the Initial is decrypted with the keys every
//! observer can derive from the destination connection id (RFC 9001
//! section 5, RFC 9369 for v2, the drafts' and Google's salts), and the
//! frames, possibly spread over several Initials and out of order, are
//! put back together by offset. Google QUIC before Q050 carries a clear
//! text CHLO whose `SNI` tag is read instead. Also quic, without a name:
//! an Initial that cannot be read into, a few long header packets that
//! came before their Initial (0-RTT reordered in the capture), and a
//! Google QUIC server's clear text `REJ` (the client's side not captured).
//! Decryption uses a scratch buffer on the stack, never the heap.

use ring::aead::{self, quic as hp, Aad, LessSafeKey, Nonce, UnboundKey};
use ring::hkdf;
use std::ops::Range;

use super::client_hello::{client_hello_sni, Hello, Reasm};
use super::Ctx;
use crate::class::Class;
use crate::view::{AppName, Dir, PacketView, Step, Verdict, L4};

/// Bytes of the client's CRYPTO stream kept to find the server name in.
pub const CRYPTO_BYTES: usize = 4096;
/// Clients pad datagrams with Initial packets to at least this (RFC 9000
/// section 14.1; the drafts and Google QUIC did the same).
const MIN_INITIAL_DATAGRAM: usize = 1200;
/// Packets looked at after the first before settling for quic without a
/// name.
const MAX_FOLLOWING: u8 = 8;
/// Long header packets other than Initials waited through for the
/// Initial (reordered in the capture).
const MAX_EARLY: u8 = 4;
/// Largest packet decrypted (the scratch buffer on the stack).
const MAX_PACKET: usize = 2048;
const MAX_CID: usize = 20;
const TAG_LEN: usize = 16;
const SAMPLE_LEN: usize = 16;

const SALT_DRAFT_22: [u8; 20] = [
    0x7f, 0xbc, 0xdb, 0x0e, 0x7c, 0x66, 0xbb, 0xe9, 0x19, 0x3a, 0x96, 0xcd, 0x21, 0x51, 0x9e, 0xbd,
    0x7a, 0x02, 0x64, 0x4a,
];
const SALT_DRAFT_23: [u8; 20] = [
    0xc3, 0xee, 0xf7, 0x12, 0xc7, 0x2e, 0xbb, 0x5a, 0x11, 0xa7, 0xd2, 0x43, 0x2b, 0xb4, 0x63, 0x65,
    0xbe, 0xf9, 0xf5, 0x02,
];
const SALT_DRAFT_29: [u8; 20] = [
    0xaf, 0xbf, 0xec, 0x28, 0x99, 0x93, 0xd2, 0x4c, 0x9e, 0x97, 0x86, 0xf1, 0x9c, 0x61, 0x11, 0xe0,
    0x43, 0x90, 0xa8, 0x99,
];
const SALT_V1: [u8; 20] = [
    0x38, 0x76, 0x2c, 0xf7, 0xf5, 0x59, 0x34, 0xb3, 0x4d, 0x17, 0x9a, 0xe6, 0xa4, 0xc8, 0x0c, 0xad,
    0xcc, 0xbb, 0x7f, 0x0a,
];
/// RFC 9369 section 3.3.1.
const SALT_V2: [u8; 20] = [
    0x0d, 0xed, 0xe3, 0xde, 0xf7, 0x00, 0xa6, 0xdb, 0x81, 0x93, 0x81, 0xbe, 0x6e, 0x26, 0x9d, 0xcb,
    0xf9, 0xbd, 0x2e, 0xd9,
];
const SALT_Q050: [u8; 20] = [
    0x50, 0x45, 0x74, 0xef, 0xd0, 0x66, 0xfe, 0x2f, 0x9d, 0x94, 0x5c, 0xfc, 0xdb, 0xd3, 0xa7, 0xf0,
    0xd3, 0xb5, 0x6b, 0x45,
];
const SALT_T050: [u8; 20] = [
    0x7f, 0xf5, 0x79, 0xe5, 0xac, 0xd0, 0x72, 0x91, 0x55, 0x80, 0x30, 0x4c, 0x43, 0xa2, 0x36, 0x7c,
    0x60, 0x48, 0x83, 0x10,
];
const SALT_T051: [u8; 20] = [
    0x7a, 0x4e, 0xde, 0xf4, 0xe7, 0xcc, 0xee, 0x5f, 0xa4, 0x50, 0x6c, 0x19, 0x12, 0x4f, 0xc8, 0xcc,
    0xda, 0x6e, 0x03, 0x3d,
];

const V1: u32 = 0x0000_0001;
const V2: u32 = 0x6b33_43cf;
const Q046: u32 = u32::from_be_bytes(*b"Q046");
const Q050: u32 = u32::from_be_bytes(*b"Q050");
const T050: u32 = u32::from_be_bytes(*b"T050");
const T051: u32 = u32::from_be_bytes(*b"T051");
/// Google QUIC versions whose CHLO travels in clear text.
const GQUIC_CLEAR: [&[u8; 4]; 10] = [
    b"Q024", b"Q025", b"Q030", b"Q033", b"Q034", b"Q035", b"Q037", b"Q039", b"Q043", b"Q046",
];

/// How a version's Initial packets are read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// IETF QUIC (drafts, v1, v2, Facebook's mvfst): encrypted, TLS inside.
    Ietf { salt: &'static [u8; 20], v2: bool },
    /// Google's T05x: encrypted, TLS inside, Google's frame types.
    GoogleTls { salt: &'static [u8; 20] },
    /// Google's Q050: encrypted, a CHLO inside.
    GoogleChlo { salt: &'static [u8; 20] },
    /// Google QUIC up to Q046: a clear text CHLO.
    GoogleClear,
    /// A Google QUIC version this dissector cannot read into.
    GoogleOther,
}

fn kind(version: u32) -> Option<Kind> {
    let ietf = |salt| Some(Kind::Ietf { salt, v2: false });
    match version {
        V1 => ietf(&SALT_V1),
        V2 => Some(Kind::Ietf {
            salt: &SALT_V2,
            v2: true,
        }),
        0xff00_0000..=0xff00_00ff => match version & 0xff {
            0..=22 => ietf(&SALT_DRAFT_22),
            23..=28 => ietf(&SALT_DRAFT_23),
            29..=32 => ietf(&SALT_DRAFT_29),
            _ => ietf(&SALT_V1),
        },
        0xface_b001 => ietf(&SALT_DRAFT_22),
        0xface_b002 | 0xface_b00e => ietf(&SALT_DRAFT_23),
        0xface_b000..=0xface_bfff => ietf(&SALT_V1),
        // Reserved versions that force version negotiation.
        v if v & 0x0f0f_0f0f == 0x0a0a_0a0a => ietf(&SALT_DRAFT_29),
        Q050 => Some(Kind::GoogleChlo { salt: &SALT_Q050 }),
        T050 => Some(Kind::GoogleTls { salt: &SALT_T050 }),
        T051 => Some(Kind::GoogleTls { salt: &SALT_T051 }),
        v => {
            let b = v.to_be_bytes();
            if GQUIC_CLEAR.contains(&&b) {
                Some(Kind::GoogleClear)
            } else if (b[0] == b'Q' || b[0] == b'T')
                && b[1] == b'0'
                && b[2].is_ascii_digit()
                && b[3].is_ascii_digit()
            {
                Some(Kind::GoogleOther)
            } else {
                None
            }
        }
    }
}

#[derive(Clone, Debug, Default)]
pub struct State {
    /// The client's direction and version, once its first Initial was
    /// read.
    client: Option<(Dir, u32)>,
    following: u8,
    /// Long header packets seen before the first Initial.
    early: u8,
    /// The destination connection id of the client's first Initial read.
    first_dcid: [u8; MAX_CID],
    first_dcid_len: u8,
    crypto: Reasm<CRYPTO_BYTES>,
}

/// What one datagram gave.
enum Got {
    /// An Initial that could not be read into (unsupported, undecryptable).
    Opaque,
    /// CRYPTO bytes were gathered (look at the stream).
    Crypto,
    /// A Google CHLO was read: its server name.
    Chlo(Option<AppName>),
}

impl State {
    pub fn inspect(&mut self, _ctx: &mut Ctx, p: &PacketView<'_>) -> Step {
        if p.l4 != L4::Udp {
            return Step::NotMine;
        }
        let Some((dir, version)) = self.client else {
            let Some((version, k)) = initial_version(p.payload) else {
                if gquic_rej(p.payload) {
                    // A Google QUIC server's rejection (the client's
                    // hello was not captured).
                    return quic(None);
                }
                // 0-RTT or Handshake packets can arrive before the Initial
                // they follow.
                self.early = self.early.saturating_add(1);
                return if is_ietf_long_header(p.payload) && self.early < MAX_EARLY {
                    Step::More
                } else {
                    Step::NotMine
                };
            };
            self.client = Some((p.dir, version));
            let got = self.read(k, p.payload);
            return self.after(got);
        };
        self.following = self.following.saturating_add(1);
        if p.dir != dir {
            return self.give_up_or_more();
        }
        match long_header_version(p.payload) {
            Some(v) if v == version => {
                let Some(k) = kind(v) else {
                    return quic(None);
                };
                let got = self.read(k, p.payload);
                self.after(got)
            }
            // A short header or another version: the handshake went on.
            _ => quic(None),
        }
    }

    fn give_up_or_more(&self) -> Step {
        if self.following >= MAX_FOLLOWING {
            quic(None)
        } else {
            Step::More
        }
    }

    fn after(&mut self, got: Got) -> Step {
        match got {
            Got::Opaque => quic(None),
            Got::Chlo(name) => quic(name),
            Got::Crypto => match client_hello_sni(self.crypto.prefix(), false) {
                Hello::Sni(name) => quic(name),
                Hello::Invalid => quic(None),
                Hello::Incomplete if self.crypto.is_full() => quic(None),
                Hello::Incomplete => self.give_up_or_more(),
            },
        }
    }

    /// Reads the client Initial(s) of a datagram of version kind `k`.
    fn read(&mut self, k: Kind, d: &[u8]) -> Got {
        match k {
            Kind::GoogleOther => Got::Opaque,
            Kind::GoogleClear => Got::Chlo(gquic_clear_sni(d)),
            Kind::Ietf { salt, v2 } => self.read_encrypted(d, salt, v2, false),
            Kind::GoogleTls { salt } => self.read_encrypted(d, salt, false, true),
            Kind::GoogleChlo { salt } => {
                let mut out = [0u8; MAX_PACKET];
                match decrypt_initial(d, salt, false, None, &mut out) {
                    Some((plain, _)) => match google_crypto_frame(&out[plain]) {
                        Some((0, data)) => Got::Chlo(chlo_sni(data)),
                        _ => Got::Opaque,
                    },
                    None => Got::Opaque,
                }
            }
        }
    }

    /// Decrypts the Initial packets coalesced in datagram `d` and gathers
    /// their CRYPTO frames.
    fn read_encrypted(&mut self, d: &[u8], salt: &[u8; 20], v2: bool, google: bool) -> Got {
        let mut rest = d;
        let mut got = Got::Opaque;
        let mut out = [0u8; MAX_PACKET];
        while !rest.is_empty() {
            // The client keeps the keys of its first destination connection
            // id after the server picked another one (RFC 9001 section 5.2).
            let first = self.first_dcid.get(..usize::from(self.first_dcid_len));
            let first = first.filter(|c| !c.is_empty());
            let Some((plain, used)) = decrypt_initial(rest, salt, v2, None, &mut out)
                .or_else(|| decrypt_initial(rest, salt, v2, first, &mut out))
            else {
                break;
            };
            let plain = &out[plain];
            if self.first_dcid_len == 0 {
                if let Some(cid) = rest.get(6..6 + usize::from(rest[5])) {
                    self.first_dcid[..cid.len()].copy_from_slice(cid);
                    self.first_dcid_len = cid.len() as u8;
                }
            }
            if google {
                if let Some((offset, data)) = google_crypto_frame(plain) {
                    self.crypto.insert(offset, data);
                    got = Got::Crypto;
                }
            } else if gather_crypto(plain, &mut self.crypto) {
                got = Got::Crypto;
            }
            rest = &rest[used..];
        }
        got
    }
}

fn quic(name: Option<AppName>) -> Step {
    Step::Done(Verdict::sure(Class::Quic, name))
}

/// The version of a long header packet.
fn long_header_version(d: &[u8]) -> Option<u32> {
    match d {
        [b0, a, b, c, e, ..] if b0 & 0x80 != 0 => Some(u32::from_be_bytes([*a, *b, *c, *e])),
        _ => None,
    }
}

/// The version and kind of datagram `d` when it can be a client's first
/// Initial (the checks nDPI makes, so that random UDP is not taken).
fn initial_version(d: &[u8]) -> Option<(u32, Kind)> {
    if d.len() < MIN_INITIAL_DATAGRAM {
        return None;
    }
    let b0 = d[0];
    let version = if b0 & 0x80 != 0 {
        u32::from_be_bytes([d[1], d[2], d[3], d[4]])
    } else if b0 & 0x08 != 0 && b0 & 0x40 == 0 && b0 & 0x01 != 0 {
        // Google QUIC public header: flags, 8-byte connection id, version.
        u32::from_be_bytes([d[9], d[10], d[11], d[12]])
    } else {
        return None;
    };
    let k = kind(version)?;
    let long = b0 & 0x80 != 0;
    match k {
        Kind::GoogleClear | Kind::GoogleOther if !long => {
            // Public header: version flag, no reserved bits.
            if b0 & 0x30 != 0 {
                return None;
            }
        }
        Kind::GoogleClear | Kind::GoogleOther if version == Q046 => {
            if b0 & 0x33 != 0x03 {
                return None;
            }
        }
        Kind::GoogleClear | Kind::GoogleOther => return None,
        Kind::Ietf { v2, .. } => {
            let initial_type = if v2 { 1 } else { 0 };
            if (b0 >> 4) & 3 != initial_type {
                return None;
            }
            if version & 0x0f0f_0f0f == 0x0a0a_0a0a && b0 & 0xc0 != 0xc0 {
                return None;
            }
        }
        Kind::GoogleTls { .. } | Kind::GoogleChlo { .. } => {
            if !long || b0 & 0x30 != 0 {
                return None;
            }
        }
    }
    if long && version != Q046 {
        let dcil = usize::from(d[5]);
        let scil = usize::from(*d.get(6 + dcil)?);
        if dcil > MAX_CID || scil > MAX_CID {
            return None;
        }
    }
    Some((version, k))
}

/// A long header packet of an IETF version (any type) with possible
/// connection id lengths.
fn is_ietf_long_header(d: &[u8]) -> bool {
    let Some(version) = long_header_version(d) else {
        return false;
    };
    if !matches!(kind(version), Some(Kind::Ietf { .. })) || d[0] & 0x40 == 0 {
        return false;
    }
    let dcil = usize::from(d.get(5).copied().unwrap_or(u8::MAX));
    let scil = usize::from(d.get(6 + dcil).copied().unwrap_or(u8::MAX));
    dcil <= MAX_CID && scil <= MAX_CID
}

/// A Google QUIC packet with a public header (connection id, no version)
/// carrying a server's `REJ` handshake message in clear text.
fn gquic_rej(d: &[u8]) -> bool {
    if d.len() < 64 || d[0] & 0x80 != 0 || d[0] & 0x40 != 0 || d[0] & 0x09 != 0x08 {
        return false;
    }
    let window = &d[9..d.len().min(80)];
    window.windows(6).enumerate().any(|(i, w)| {
        let tags = usize::from(u16::from_le_bytes([w[4], w[5]]));
        &w[..4] == b"REJ\0" && tags > 0 && 9 + i + 8 + 8 * tags <= d.len()
    })
}

/// A QUIC variable-length integer.
fn varint(b: &[u8], pos: &mut usize) -> Option<u64> {
    let first = *b.get(*pos)?;
    let len = 1usize << (first >> 6);
    let bytes = b.get(*pos..*pos + len)?;
    let mut v = u64::from(first & 0x3f);
    for &x in &bytes[1..] {
        v = (v << 8) | u64::from(x);
    }
    *pos += len;
    Some(v)
}

struct Len(usize);

impl hkdf::KeyType for Len {
    fn len(&self) -> usize {
        self.0
    }
}

/// TLS 1.3 HKDF-Expand-Label with an empty context (RFC 8446 section 7.1).
fn expand_label(prk: &hkdf::Prk, label: &[u8], out: &mut [u8]) -> Option<()> {
    let len = u16::try_from(out.len()).ok()?.to_be_bytes();
    let label_len = [u8::try_from(6 + label.len()).ok()?];
    let info: [&[u8]; 5] = [&len, &label_len, b"tls13 ", label, &[0]];
    prk.expand(&info, Len(out.len())).ok()?.fill(out).ok()
}

/// A client's Initial packet protection keys.
#[derive(Debug, PartialEq, Eq)]
struct InitialKeys {
    key: [u8; 16],
    iv: [u8; 12],
    hp: [u8; 16],
}

/// Derives the client's Initial keys from the destination connection id
/// the client chose (RFC 9001 section 5.2; RFC 9369 section 3.3 for v2's
/// labels).
fn initial_keys(salt: &[u8; 20], dcid: &[u8], v2: bool) -> Option<InitialKeys> {
    let (key_label, iv_label, hp_label): (&[u8], &[u8], &[u8]) = if v2 {
        (b"quicv2 key", b"quicv2 iv", b"quicv2 hp")
    } else {
        (b"quic key", b"quic iv", b"quic hp")
    };
    let initial = hkdf::Salt::new(hkdf::HKDF_SHA256, salt).extract(dcid);
    let mut secret = [0u8; 32];
    expand_label(&initial, b"client in", &mut secret)?;
    let client = hkdf::Prk::new_less_safe(hkdf::HKDF_SHA256, &secret);
    let mut k = InitialKeys {
        key: [0; 16],
        iv: [0; 12],
        hp: [0; 16],
    };
    expand_label(&client, key_label, &mut k.key)?;
    expand_label(&client, iv_label, &mut k.iv)?;
    expand_label(&client, hp_label, &mut k.hp)?;

    Some(k)
}

/// Removes the protection of the Initial packet at the start of `d`
/// (keys from `key_cid`, else from the packet's destination connection
/// id): returns where its plain payload is in `out`, and the packet's length in `d`
/// (more packets may follow it in the datagram).
fn decrypt_initial(
    d: &[u8],
    salt: &[u8; 20],
    v2: bool,
    key_cid: Option<&[u8]>,
    out: &mut [u8; MAX_PACKET],
) -> Option<(Range<usize>, usize)> {
    let b0 = *d.first()?;
    let initial_type = if v2 { 1 } else { 0 };
    if b0 & 0x80 == 0 || (b0 >> 4) & 3 != initial_type {
        return None;
    }
    let dcil = usize::from(*d.get(5)?);
    if dcil == 0 || dcil > MAX_CID {
        return None;
    }
    let dcid = d.get(6..6 + dcil)?;
    let mut pos = 6 + dcil;
    let scil = usize::from(*d.get(pos)?);
    if scil > MAX_CID {
        return None;
    }
    pos += 1 + scil;
    let token = usize::try_from(varint(d, &mut pos)?).ok()?;
    pos = pos.checked_add(token)?;
    let length = usize::try_from(varint(d, &mut pos)?).ok()?;
    let pn_offset = pos;
    let end = pn_offset.checked_add(length)?;
    if end > d.len() || end > MAX_PACKET || length < 4 + SAMPLE_LEN {
        return None;
    }

    let keys = initial_keys(salt, key_cid.unwrap_or(dcid), v2)?;

    // Header protection (RFC 9001 section 5.4).
    let hp = hp::HeaderProtectionKey::new(&hp::AES_128, &keys.hp).ok()?;
    let sample = d.get(pn_offset + 4..pn_offset + 4 + SAMPLE_LEN)?;
    let mask = hp.new_mask(sample).ok()?;
    let first = b0 ^ (mask[0] & 0x0f);
    let pn_len = usize::from(first & 3) + 1;
    let header_len = pn_offset + pn_len;
    if header_len + TAG_LEN > end {
        return None;
    }
    let packet = &mut out[..end];
    packet.copy_from_slice(&d[..end]);
    packet[0] = first;
    let mut pn = 0u64;
    for i in 0..pn_len {
        packet[pn_offset + i] ^= mask[1 + i];
        pn = (pn << 8) | u64::from(packet[pn_offset + i]);
    }

    // Payload protection: AES-128-GCM, nonce = iv ^ packet number.
    let mut nonce = keys.iv;
    for (n, p) in nonce[4..].iter_mut().zip(pn.to_be_bytes()) {
        *n ^= p;
    }
    let key = LessSafeKey::new(UnboundKey::new(&aead::AES_128_GCM, &keys.key).ok()?);
    let (header, body) = packet.split_at_mut(header_len);
    let plain = key
        .open_in_place(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(&*header),
            body,
        )
        .ok()?;
    let n = plain.len();
    Some((header_len..header_len + n, end))
}

/// Walks the frames of a decrypted IETF Initial, putting CRYPTO frames'
/// data in `crypto`. True when at least one CRYPTO frame was found.
fn gather_crypto(plain: &[u8], crypto: &mut Reasm<CRYPTO_BYTES>) -> bool {
    let mut pos = 0;
    let mut found = false;
    while pos < plain.len() {
        let Some(ty) = varint(plain, &mut pos) else {
            break;
        };
        match ty {
            0x00 | 0x01 => {} // PADDING, PING
            0x02 | 0x03 => {
                // ACK: largest, delay, range count, first range, ranges.
                if skip_ack(plain, &mut pos, ty == 0x03).is_none() {
                    break;
                }
            }
            0x06 => {
                let frame = (|| {
                    let offset = varint(plain, &mut pos)?;
                    let len = usize::try_from(varint(plain, &mut pos)?).ok()?;
                    let data = plain.get(pos..pos.checked_add(len)?)?;
                    pos += len;
                    Some((offset, data))
                })();
                let Some((offset, data)) = frame else {
                    break;
                };
                crypto.insert(offset, data);
                found = true;
            }
            // CONNECTION_CLOSE or anything an Initial may not carry.
            _ => break,
        }
    }
    found
}

fn skip_ack(b: &[u8], pos: &mut usize, ecn: bool) -> Option<()> {
    varint(b, pos)?;
    varint(b, pos)?;
    let ranges = varint(b, pos)?;
    varint(b, pos)?;
    for _ in 0..ranges.min(256) {
        varint(b, pos)?;
        varint(b, pos)?;
    }
    if ecn {
        for _ in 0..3 {
            varint(b, pos)?;
        }
    }
    Some(())
}

/// The CRYPTO data of a decrypted Google (Q050, T05x) Initial: frame type
/// 0x08 with offset and length, after padding and maybe an ACK.
fn google_crypto_frame(plain: &[u8]) -> Option<(u64, &[u8])> {
    let mut pos = plain.iter().position(|&b| b != 0)?;
    match plain[pos] {
        0x40 => pos += 6,
        0x60 => pos += 9,
        _ => {}
    }
    if *plain.get(pos)? != 0x08 {
        return None;
    }
    pos += 1;
    let offset = varint(plain, &mut pos)?;
    let len = usize::try_from(varint(plain, &mut pos)?).ok()?;
    let data = plain.get(pos..pos.checked_add(len)?)?;
    Some((offset, data))
}

/// The server name of the clear text CHLO in a Google QUIC (up to Q046)
/// client packet.
fn gquic_clear_sni(d: &[u8]) -> Option<AppName> {
    let version = if d.first()? & 0x80 != 0 {
        d.get(1..5)?
    } else {
        d.get(9..13)?
    };
    let number =
        u32::from(version[2].wrapping_sub(b'0')) * 10 + u32::from(version[3].wrapping_sub(b'0'));
    let start = if number == 46 {
        if *d.get(5)? != 0x50 {
            return None;
        }
        30
    } else if number < 34 {
        27
    } else {
        26
    };
    let plain = d.get(start..)?;
    let mut pos = plain.iter().position(|&b| b != 0)?;
    match plain[pos] {
        0x40 => pos += 6,
        0x60 => pos += 9,
        _ => {}
    }
    // A STREAM frame with data length, on stream 1 (the handshake).
    let ty = *plain.get(pos)?;
    if ty != 0xa0 && ty != 0xa4 {
        return None;
    }
    if *plain.get(pos + 1)? != 1 {
        return None;
    }
    let offset_len = match (ty & 0x1c) >> 2 {
        0 => 0,
        n => usize::from(n) + 1,
    };
    pos += 2 + offset_len;
    let lb = plain.get(pos..pos + 2)?;
    let len = if number >= 39 {
        u16::from_be_bytes([lb[0], lb[1]])
    } else {
        u16::from_le_bytes([lb[0], lb[1]])
    };
    pos += 2;
    let data = plain.get(pos..pos + usize::from(len))?;
    chlo_sni(data)
}

/// The `SNI` tag's value in a Google CHLO message (tags with end offsets,
/// little endian).
fn chlo_sni(m: &[u8]) -> Option<AppName> {
    if m.get(..4)? != b"CHLO" {
        return None;
    }
    let tags = usize::from(u16::from_le_bytes([*m.get(4)?, *m.get(5)?]));
    let values = 8 + 8 * tags;
    let mut prev = 0usize;
    for i in 0..tags {
        let e = m.get(8 + 8 * i..16 + 8 * i)?;
        let end = usize::try_from(u32::from_le_bytes([e[4], e[5], e[6], e[7]])).ok()?;
        if end < prev {
            return None;
        }
        if &e[..4] == b"SNI\0" {
            return AppName::new(m.get(values + prev..values + end)?);
        }
        prev = end;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_read_as_rfc_9000_appendix_a_says() {
        for (bytes, v) in [
            (
                &[0xc2, 0x19, 0x7c, 0x5e, 0xff, 0x14, 0xe8, 0x8c][..],
                151_288_809_941_952_652,
            ),
            (&[0x9d, 0x7f, 0x3e, 0x7d][..], 494_878_333),
            (&[0x7b, 0xbd][..], 15_293),
            (&[0x25][..], 37),
        ] {
            let mut pos = 0;
            assert_eq!(varint(bytes, &mut pos), Some(v));
            assert_eq!(pos, bytes.len());
        }
        assert_eq!(varint(&[0x7b], &mut 0), None);
    }

    #[test]
    fn versions_map_to_their_salts() {
        assert_eq!(
            kind(V1),
            Some(Kind::Ietf {
                salt: &SALT_V1,
                v2: false
            })
        );
        assert_eq!(
            kind(0xff00_001d),
            Some(Kind::Ietf {
                salt: &SALT_DRAFT_29,
                v2: false
            })
        );
        assert_eq!(
            kind(0xff00_0017),
            Some(Kind::Ietf {
                salt: &SALT_DRAFT_23,
                v2: false
            })
        );
        assert_eq!(
            kind(0xface_b001),
            Some(Kind::Ietf {
                salt: &SALT_DRAFT_22,
                v2: false
            })
        );
        assert_eq!(
            kind(V2),
            Some(Kind::Ietf {
                salt: &SALT_V2,
                v2: true
            })
        );
        assert_eq!(kind(u32::from_be_bytes(*b"Q046")), Some(Kind::GoogleClear));
        assert_eq!(kind(u32::from_be_bytes(*b"Q099")), Some(Kind::GoogleOther));
        assert_eq!(kind(0x1234_5678), None);
    }

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    /// The payloads of a golden file (`tests/golden`).
    fn golden(text: &str) -> Vec<Vec<u8>> {
        text.lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(|l| l.split_whitespace().nth(3).map(hex))
            .collect()
    }

    #[test]
    fn a_later_initial_to_the_servers_cid_uses_the_first_cids_keys() {
        let pkts = golden(include_str!(
            "../../tests/golden/quic_v1_two_initials_different_dcid_f1-3.txt"
        ));
        let (first, later) = (&pkts[0], &pkts[2]);
        let first_dcid = &first[6..6 + usize::from(first[5])];
        let mut out = [0u8; MAX_PACKET];
        assert!(decrypt_initial(later, &SALT_V1, false, None, &mut out).is_none());
        let (plain, _) = decrypt_initial(later, &SALT_V1, false, Some(first_dcid), &mut out)
            .expect("decrypts with the first connection id's keys");
        let mut crypto = Reasm::<CRYPTO_BYTES>::default();
        assert!(gather_crypto(&out[plain], &mut crypto));
        // It carries the rest of the hello, not its start.
        assert!(crypto.prefix().is_empty());

        // Through the dissector: the first Initial, the server's, the later.
        let mut s = State {
            client: Some((Dir::Orig, V1)),
            ..State::default()
        };
        let mut out = [0u8; MAX_PACKET];
        let (p0, _) = decrypt_initial(first, &SALT_V1, false, None, &mut out).unwrap();
        gather_crypto(&out[p0], &mut s.crypto);
        let before = s.crypto.prefix().len();
        s.first_dcid[..first_dcid.len()].copy_from_slice(first_dcid);
        s.first_dcid_len = first_dcid.len() as u8;
        assert!(matches!(s.read(kind(V1).unwrap(), later), Got::Crypto));
        assert!(s.crypto.prefix().len() > before, "the hello grew");
    }

    #[test]
    fn initial_keys_match_rfc_9001_and_rfc_9369_vectors() {
        let dcid = hex("8394c8f03e515708");
        let v1 = initial_keys(&SALT_V1, &dcid, false).unwrap();
        assert_eq!(v1.key.to_vec(), hex("1f369613dd76d5467730efcbe3b1a22d"));
        assert_eq!(v1.iv.to_vec(), hex("fa044b2f42a3fd3b46fb255c"));
        assert_eq!(v1.hp.to_vec(), hex("9f50449e04a0e810283a1e9933adedd2"));
        let v2 = initial_keys(&SALT_V2, &dcid, true).unwrap();
        assert_eq!(v2.key.to_vec(), hex("8b1a0bc121284290a29e0971b5cd045d"));
        assert_eq!(v2.iv.to_vec(), hex("91f73e2351d8fa91660e909f"));
        assert_eq!(v2.hp.to_vec(), hex("45b95e15235d6f45a6b19cbcb0294ba9"));
    }
}
