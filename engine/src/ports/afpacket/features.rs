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
    /// How large a superframe may be.
    pub limits: GsoLimits,
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
        limits: GsoLimits::default(),
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

/// `IFLA_*` attributes of an RTM_NEWLINK answer (linux/if_link.h).
const IFLA_GSO_MAX_SEGS: u16 = 40;
const IFLA_GSO_MAX_SIZE: u16 = 41;
/// Since Linux 6.3; IPv4 superframes are held to it rather than to
/// `IFLA_GSO_MAX_SIZE` (`netif_get_gso_max_size`).
const IFLA_GSO_IPV4_MAX_SIZE: u16 = 63;

/// The device's limits on one superframe: segments, and bytes (the whole
/// frame, Ethernet header included, must stay below `max_size`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GsoLimits {
    pub max_segs: u32,
    pub max_size: u32,
}

impl Default for GsoLimits {
    /// The kernel's defaults (`GSO_MAX_SEGS`, `GSO_LEGACY_MAX_SIZE`).
    fn default() -> Self {
        GsoLimits {
            max_segs: 65535,
            max_size: 65536,
        }
    }
}

/// Asks rtnetlink for the GSO limits of interface `ifindex` (sysfs does
/// not show them). A kernel that leaves an attribute out gets the default.
pub fn gso_limits(ifindex: i32) -> io::Result<GsoLimits> {
    // SAFETY: plain syscall creating a new descriptor, owned below.
    let fd = unsafe {
        libc::socket(
            libc::AF_NETLINK,
            libc::SOCK_RAW | libc::SOCK_CLOEXEC,
            libc::NETLINK_ROUTE,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` is a fresh descriptor nobody else owns.
    let fd = unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) };
    let raw = std::os::fd::AsRawFd::as_raw_fd(&fd);
    // nlmsghdr (16 bytes) + ifinfomsg (16 bytes).
    let mut req = [0u8; 32];
    req[0..4].copy_from_slice(&32u32.to_ne_bytes());
    req[4..6].copy_from_slice(&libc::RTM_GETLINK.to_ne_bytes());
    req[6..8].copy_from_slice(&(libc::NLM_F_REQUEST as u16).to_ne_bytes());
    req[8..12].copy_from_slice(&1u32.to_ne_bytes());
    req[16] = libc::AF_UNSPEC as u8;
    req[20..24].copy_from_slice(&ifindex.to_ne_bytes());
    // SAFETY: sends `req`'s 32 bytes to the kernel (no address: netlink
    // sockets default to the kernel as peer).
    let n = unsafe { libc::send(raw, req.as_ptr().cast(), req.len(), 0) };
    if n != req.len() as isize {
        return Err(io::Error::last_os_error());
    }
    // The GSO attributes come early in the answer; a longer answer is
    // truncated and parsed as far as it goes.
    let mut buf = [0u8; 8192];
    // SAFETY: receives into `buf`, whose length is passed.
    let n = unsafe { libc::recv(raw, buf.as_mut_ptr().cast(), buf.len(), 0) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    parse_link_answer(&buf[..n as usize])
}

/// Reads the GSO limits from an RTM_NEWLINK answer (or its NLMSG_ERROR).
fn parse_link_answer(b: &[u8]) -> io::Result<GsoLimits> {
    let bad = || io::Error::other("malformed rtnetlink answer");
    let u16_at = |i: usize| b.get(i..i + 2).map(|s| u16::from_ne_bytes([s[0], s[1]]));
    let u32_at = |i: usize| {
        b.get(i..i + 4)
            .map(|s| u32::from_ne_bytes([s[0], s[1], s[2], s[3]]))
    };
    let len = (u32_at(0).ok_or_else(bad)? as usize).min(b.len());
    if len < 32 {
        return Err(bad());
    }
    match u16_at(4).ok_or_else(bad)? {
        t if t == libc::NLMSG_ERROR as u16 => {
            let errno = -(u32_at(16).ok_or_else(bad)? as i32);
            return Err(io::Error::from_raw_os_error(errno));
        }
        t if t == libc::RTM_NEWLINK => {}
        _ => return Err(bad()),
    }
    let mut limits = GsoLimits::default();
    let mut ipv4_size = None;
    let mut at = 32;
    while at + 4 <= len {
        let alen = usize::from(u16_at(at).ok_or_else(bad)?);
        let kind = u16_at(at + 2).ok_or_else(bad)? & 0x3fff;
        if alen < 4 {
            return Err(bad());
        }
        if at + alen > len {
            break; // truncated answer
        }
        if alen >= 8 {
            let v = u32_at(at + 4).ok_or_else(bad)?;
            match kind {
                IFLA_GSO_MAX_SEGS => limits.max_segs = v,
                IFLA_GSO_MAX_SIZE => limits.max_size = v,
                IFLA_GSO_IPV4_MAX_SIZE => ipv4_size = Some(v),
                _ => {}
            }
        }
        at += alen.div_ceil(4) * 4;
    }
    if let Some(v) = ipv4_size {
        limits.max_size = v;
    }
    Ok(limits)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An RTM_NEWLINK answer holding `attrs` (type, u32 value), with an
    /// odd-length attribute first to check the 4-byte alignment.
    fn answer(attrs: &[(u16, u32)]) -> Vec<u8> {
        let mut b = vec![0u8; 32];
        b[4..6].copy_from_slice(&libc::RTM_NEWLINK.to_ne_bytes());
        // IFLA_IFNAME "ab\0": 7 bytes, padded to 8.
        b.extend_from_slice(&7u16.to_ne_bytes());
        b.extend_from_slice(&3u16.to_ne_bytes());
        b.extend_from_slice(b"ab\0\0");
        for &(kind, v) in attrs {
            b.extend_from_slice(&8u16.to_ne_bytes());
            b.extend_from_slice(&kind.to_ne_bytes());
            b.extend_from_slice(&v.to_ne_bytes());
        }
        let len = b.len() as u32;
        b[0..4].copy_from_slice(&len.to_ne_bytes());
        b
    }

    #[test]
    fn limits_come_from_the_attributes_and_ipv4_size_wins() {
        let a = answer(&[(IFLA_GSO_MAX_SEGS, 24), (IFLA_GSO_MAX_SIZE, 62_000)]);
        assert_eq!(
            parse_link_answer(&a).unwrap(),
            GsoLimits {
                max_segs: 24,
                max_size: 62_000
            }
        );
        let a = answer(&[
            (IFLA_GSO_MAX_SIZE, 65_536),
            (IFLA_GSO_IPV4_MAX_SIZE, 30_000),
        ]);
        assert_eq!(parse_link_answer(&a).unwrap().max_size, 30_000);
        // An old kernel without the attributes: the defaults.
        assert_eq!(
            parse_link_answer(&answer(&[])).unwrap(),
            GsoLimits::default()
        );
    }

    #[test]
    fn truncated_errors_and_garbage_are_handled() {
        let a = answer(&[(IFLA_GSO_MAX_SEGS, 24), (IFLA_GSO_MAX_SIZE, 62_000)]);
        // Cut inside the last attribute: what came before still counts.
        let cut = &a[..a.len() - 2];
        assert_eq!(parse_link_answer(cut).unwrap().max_segs, 24);
        assert!(parse_link_answer(&a[..20]).is_err());
        // NLMSG_ERROR carrying -ENODEV.
        let mut e = vec![0u8; 52];
        e[0..4].copy_from_slice(&52u32.to_ne_bytes());
        e[4..6].copy_from_slice(&(libc::NLMSG_ERROR as u16).to_ne_bytes());
        e[16..20].copy_from_slice(&(-libc::ENODEV).to_ne_bytes());
        let err = parse_link_answer(&e).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::ENODEV));
        // A zero-length attribute would loop forever: refused.
        let mut z = answer(&[]);
        z.extend_from_slice(&[0, 0, 0, 0]);
        let len = z.len() as u32;
        z[0..4].copy_from_slice(&len.to_ne_bytes());
        assert!(parse_link_answer(&z).is_err());
        assert!(parse_link_answer(&[]).is_err());
    }

    #[test]
    fn loopback_reports_its_limits() {
        // Every kernel with rtnetlink answers for lo (index 1).
        let l = gso_limits(1).unwrap();
        assert!(l.max_segs > 0 && l.max_size > 0, "{l:?}");
    }
}
