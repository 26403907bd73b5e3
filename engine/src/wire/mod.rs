//! Zero-copy typed views over packet bytes, smoltcp style: each view wraps a
//! `T: AsRef<[u8]>`, validates lengths once in `new_checked`, and then reads
//! and (where `T: AsMut<[u8]>`) writes fields in place without allocating.
//!
//! Accessors never panic on a view built with `new_checked`; a view built
//! with `new_unchecked` over too short a buffer may panic, so use that only
//! on buffers the caller has sized itself (e.g. before emitting a header).
//! Addresses are [`std::net::Ipv4Addr`]; MAC addresses are `[u8; 6]`.

pub mod arp;
pub mod checksum;
#[cfg(target_arch = "x86_64")]
pub mod checksum_avx2;
pub mod ethernet;
pub mod icmpv4;
pub mod icmpv6;
pub mod ipv4;
pub mod ipv6;
pub mod tcp;
pub mod udp;

use std::net::Ipv4Addr;

/// Why a buffer was rejected by a view's `new_checked` (or an `emit`).
/// `Copy` so the packet path can turn it into a drop counter.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    /// The buffer is shorter than the fixed header (or a tag it announces).
    #[error("truncated packet")]
    Truncated,
    /// The IP version field is not the one this view parses.
    #[error("bad IP version")]
    BadVersion,
    /// The header-length field is below the minimum or beyond the buffer.
    #[error("bad header length")]
    BadHeaderLen,
    /// A total/length field is below the header length or beyond the buffer.
    #[error("bad total length")]
    BadTotalLen,
    /// A checksum did not verify.
    #[error("bad checksum")]
    BadChecksum,
    /// A field holds a value that makes the packet meaningless to us.
    #[error("malformed packet")]
    Malformed,
    /// Well-formed, but a variant we do not handle (e.g. a third VLAN tag).
    #[error("unsupported packet")]
    Unsupported,
}

/// Result of wire parsing and emitting.
pub type Result<T> = core::result::Result<T, WireError>;

// Big-endian field helpers shared by the views. Callers guarantee bounds
// (via `new_checked`), so these index directly.

#[inline]
pub(crate) fn get_u16(buf: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([buf[at], buf[at + 1]])
}

#[inline]
pub(crate) fn get_u32(buf: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([buf[at], buf[at + 1], buf[at + 2], buf[at + 3]])
}

#[inline]
pub(crate) fn set_u16(buf: &mut [u8], at: usize, value: u16) {
    buf[at..at + 2].copy_from_slice(&value.to_be_bytes());
}

#[inline]
pub(crate) fn set_u32(buf: &mut [u8], at: usize, value: u32) {
    buf[at..at + 4].copy_from_slice(&value.to_be_bytes());
}

#[inline]
pub(crate) fn get_ipv4(buf: &[u8], at: usize) -> Ipv4Addr {
    Ipv4Addr::new(buf[at], buf[at + 1], buf[at + 2], buf[at + 3])
}

#[inline]
pub(crate) fn set_ipv4(buf: &mut [u8], at: usize, addr: Ipv4Addr) {
    buf[at..at + 4].copy_from_slice(&addr.octets());
}

#[inline]
pub(crate) fn get_mac(buf: &[u8], at: usize) -> [u8; 6] {
    [
        buf[at],
        buf[at + 1],
        buf[at + 2],
        buf[at + 3],
        buf[at + 4],
        buf[at + 5],
    ]
}

#[inline]
pub(crate) fn set_mac(buf: &mut [u8], at: usize, mac: [u8; 6]) {
    buf[at..at + 6].copy_from_slice(&mac);
}

/// Parses a hex string (whitespace ignored) into bytes; test-only helper for
/// the golden vectors.
#[cfg(test)]
pub(crate) fn hex(s: &str) -> Vec<u8> {
    let digits: Vec<u8> = s.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    assert!(digits.len().is_multiple_of(2), "odd hex length");
    digits
        .chunks(2)
        .map(|p| u8::from_str_radix(std::str::from_utf8(p).unwrap(), 16).unwrap())
        .collect()
}
