//! Which GSO superframes the device takes, read with `SIOCETHTOOL`
//! (`ethtool -k`): the TX coalescer may only build a superframe the device
//! segments itself.
//!
//! Why it must ask: a qdisc-bypass send (`PACKET_QDISC_BYPASS`) goes
//! through `__dev_direct_xmit`, which drops any skb that `validate_xmit_skb`
//! replaced — and software segmentation replaces it. So on a device without
//! `tx-udp-segmentation` (many NICs, or a veth with it turned off) every
//! coalesced UDP run would be lost whole, where the kernel's stack would
//! have segmented it.

use std::io;
use std::os::fd::RawFd;

use super::sys::{ioctl, IfReq};

const SIOCETHTOOL: libc::c_ulong = 0x8946;
const ETHTOOL_GSTRINGS: u32 = 0x1b;
const ETHTOOL_GSSET_INFO: u32 = 0x37;
const ETHTOOL_GFEATURES: u32 = 0x3a;
const ETH_SS_FEATURES: u32 = 4;
const ETH_GSTRING_LEN: usize = 32;

/// The superframes the device segments itself (both off when unknown).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GsoSupport {
    /// `tx-tcp-segmentation` (TSO for IPv4).
    pub tcp4: bool,
    /// `tx-udp-segmentation` (`GSO_UDP_L4`).
    pub udp: bool,
}

/// Reads the active features of `iface` through the socket `fd`.
pub fn gso_support(fd: RawFd, iface: &str) -> io::Result<GsoSupport> {
    let count = feature_count(fd, iface)?;
    let names = feature_names(fd, iface, count)?;
    let active = active_features(fd, iface, count)?;
    let on = |want: &str| {
        names
            .iter()
            .position(|n| n == want)
            .is_some_and(|i| active[i / 32] & (1 << (i % 32)) != 0)
    };
    Ok(GsoSupport {
        tcp4: on("tx-tcp-segmentation"),
        udp: on("tx-udp-segmentation"),
    })
}

/// One `SIOCETHTOOL` call on a request laid out in `buf` (u64 words, so
/// the kernel's structs of u32 and u64 fields are aligned).
fn ethtool(fd: RawFd, iface: &str, buf: &mut [u64], what: &str) -> io::Result<()> {
    let mut r = IfReq::new(iface);
    let p = buf.as_mut_ptr() as usize;
    r.data[..size_of::<usize>()].copy_from_slice(&p.to_ne_bytes());
    ioctl(fd, SIOCETHTOOL, &mut r, what)
}

fn words(buf: &[u64]) -> Vec<u32> {
    buf.iter()
        .flat_map(|w| {
            let b = w.to_ne_bytes();
            [
                u32::from_ne_bytes([b[0], b[1], b[2], b[3]]),
                u32::from_ne_bytes([b[4], b[5], b[6], b[7]]),
            ]
        })
        .collect()
}

fn set_words(buf: &mut [u64], at: usize, vals: &[u32]) {
    for (k, v) in vals.iter().enumerate() {
        let i = at + k;
        let mut b = buf[i / 2].to_ne_bytes();
        let o = (i % 2) * 4;
        b[o..o + 4].copy_from_slice(&v.to_ne_bytes());
        buf[i / 2] = u64::from_ne_bytes(b);
    }
}

/// `ETHTOOL_GSSET_INFO`: how many feature names (and bits) there are.
fn feature_count(fd: RawFd, iface: &str) -> io::Result<usize> {
    // struct ethtool_sset_info { u32 cmd; u32 reserved; u64 sset_mask; u32 data[]; }
    let mut buf = [0u64; 3];
    set_words(&mut buf, 0, &[ETHTOOL_GSSET_INFO]);
    buf[1] = 1 << ETH_SS_FEATURES;
    ethtool(fd, iface, &mut buf, "ETHTOOL_GSSET_INFO")?;
    if buf[1] & (1 << ETH_SS_FEATURES) == 0 {
        return Err(io::Error::other("the driver reports no feature names"));
    }
    Ok(words(&buf)[4] as usize)
}

/// `ETHTOOL_GSTRINGS` of the feature set: the name of each bit.
fn feature_names(fd: RawFd, iface: &str, count: usize) -> io::Result<Vec<String>> {
    // struct ethtool_gstrings { u32 cmd; u32 string_set; u32 len; u8 data[]; }
    let bytes = 12 + count * ETH_GSTRING_LEN;
    let mut buf = vec![0u64; bytes.div_ceil(8)];
    set_words(
        &mut buf,
        0,
        &[ETHTOOL_GSTRINGS, ETH_SS_FEATURES, count as u32],
    );
    ethtool(fd, iface, &mut buf, "ETHTOOL_GSTRINGS")?;
    let raw: Vec<u8> = buf.iter().flat_map(|w| w.to_ne_bytes()).collect();
    Ok(raw[12..bytes]
        .chunks(ETH_GSTRING_LEN)
        .map(|c| {
            let end = c.iter().position(|&b| b == 0).unwrap_or(c.len());
            String::from_utf8_lossy(&c[..end]).into_owned()
        })
        .collect())
}

/// `ETHTOOL_GFEATURES`: the `active` word of each 32-feature block.
fn active_features(fd: RawFd, iface: &str, count: usize) -> io::Result<Vec<u32>> {
    // struct ethtool_gfeatures { u32 cmd; u32 size; struct { u32 available,
    // requested, active, never_changed; } features[size]; }
    let blocks = count.div_ceil(32);
    let mut buf = vec![0u64; (2 + 4 * blocks).div_ceil(2)];
    set_words(&mut buf, 0, &[ETHTOOL_GFEATURES, blocks as u32]);
    ethtool(fd, iface, &mut buf, "ETHTOOL_GFEATURES")?;
    let w = words(&buf);
    Ok((0..blocks).map(|b| w[2 + 4 * b + 2]).collect())
}
