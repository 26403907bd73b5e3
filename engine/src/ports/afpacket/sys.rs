//! Thin wrappers over the socket calls and interface ioctls the afpacket
//! driver needs; each returns `io::Result` and says what failed.

use std::ffi::CString;
use std::io;
use std::mem::size_of;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

/// `ETH_P_ALL` in network byte order, as `socket`/`bind` want it.
pub const ETH_P_ALL_BE: u16 = (libc::ETH_P_ALL as u16).to_be();

/// Adds context to an OS error while keeping its kind.
pub fn ctx(what: &str, e: io::Error) -> io::Error {
    io::Error::new(e.kind(), format!("{what}: {e}"))
}

/// A new AF_PACKET raw socket that receives nothing until bound.
pub fn packet_socket() -> io::Result<OwnedFd> {
    // SAFETY: plain syscall; protocol 0 means no frames are queued before bind.
    let fd = unsafe {
        libc::socket(
            libc::AF_PACKET,
            libc::SOCK_RAW | libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK,
            0,
        )
    };
    if fd < 0 {
        let e = io::Error::last_os_error();
        return Err(io::Error::new(
            e.kind(),
            format!("cannot create an AF_PACKET socket (needs root or CAP_NET_RAW): {e}"),
        ));
    }
    // SAFETY: `fd` is a fresh descriptor nobody else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// `setsockopt(SOL_PACKET, name, value)`.
pub fn set_packet_opt<T: Copy>(
    fd: RawFd,
    name: libc::c_int,
    value: &T,
    what: &str,
) -> io::Result<()> {
    // SAFETY: `value` points to `size_of::<T>()` readable bytes for the call.
    let r = unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_PACKET,
            name,
            value as *const T as *const libc::c_void,
            size_of::<T>() as libc::socklen_t,
        )
    };
    if r < 0 {
        return Err(ctx(what, io::Error::last_os_error()));
    }
    Ok(())
}

/// Binds the socket to an interface and protocol (network byte order).
pub fn bind(fd: RawFd, ifindex: i32, proto_be: u16) -> io::Result<()> {
    // SAFETY: all-zero is a valid `sockaddr_ll`.
    let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    sll.sll_family = libc::AF_PACKET as u16;
    sll.sll_protocol = proto_be;
    sll.sll_ifindex = ifindex;
    // SAFETY: `sll` is a valid sockaddr_ll of the length passed.
    let r = unsafe {
        libc::bind(
            fd,
            &sll as *const libc::sockaddr_ll as *const libc::sockaddr,
            size_of::<libc::sockaddr_ll>() as libc::socklen_t,
        )
    };
    if r < 0 {
        return Err(ctx("bind", io::Error::last_os_error()));
    }
    Ok(())
}

/// The interface's index; a clear error when it does not exist.
pub fn ifindex(name: &str) -> io::Result<i32> {
    let c = CString::new(name)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "name contains NUL"))?;
    // SAFETY: `c` is a valid NUL-terminated string.
    let idx = unsafe { libc::if_nametoindex(c.as_ptr()) };
    if idx == 0 {
        return Err(io::Error::new(
            io::ErrorKind::NotFound,
            "no such network interface (in this network namespace)",
        ));
    }
    Ok(idx as i32)
}

/// `struct ifreq`: a name and a 24-byte union, read as bytes.
#[repr(C)]
#[derive(Clone, Copy)]
pub(crate) struct IfReq {
    name: [libc::c_char; libc::IFNAMSIZ],
    pub(crate) data: [u8; 24],
}

impl IfReq {
    pub(crate) fn new(name: &str) -> Self {
        let mut r = IfReq {
            name: [0; libc::IFNAMSIZ],
            data: [0; 24],
        };
        for (d, s) in r.name.iter_mut().zip(name.bytes().take(libc::IFNAMSIZ - 1)) {
            *d = s as libc::c_char;
        }
        r
    }
}

pub(crate) fn ioctl(fd: RawFd, req: libc::c_ulong, r: &mut IfReq, what: &str) -> io::Result<()> {
    // SAFETY: `r` is a properly sized `struct ifreq` for these requests (for
    // SIOCETHTOOL its union holds a pointer the caller keeps valid).
    let rc = unsafe { libc::ioctl(fd, req, r as *mut IfReq) };
    if rc < 0 {
        return Err(ctx(what, io::Error::last_os_error()));
    }
    Ok(())
}

/// Interface flags (`IFF_*`).
pub fn if_flags(fd: RawFd, name: &str) -> io::Result<u32> {
    let mut r = IfReq::new(name);
    ioctl(fd, libc::SIOCGIFFLAGS, &mut r, "SIOCGIFFLAGS")?;
    Ok(u16::from_ne_bytes([r.data[0], r.data[1]]) as u32)
}

/// Sets `IFF_UP` if it is not set.
pub fn if_up(fd: RawFd, name: &str) -> io::Result<()> {
    let mut r = IfReq::new(name);
    ioctl(fd, libc::SIOCGIFFLAGS, &mut r, "SIOCGIFFLAGS")?;
    let flags = u16::from_ne_bytes([r.data[0], r.data[1]]);
    if flags & libc::IFF_UP as u16 == 0 {
        r.data[0..2].copy_from_slice(&(flags | libc::IFF_UP as u16).to_ne_bytes());
        ioctl(
            fd,
            libc::SIOCSIFFLAGS,
            &mut r,
            "bringing the interface up (SIOCSIFFLAGS)",
        )?;
    }
    Ok(())
}

/// Interface MTU.
pub fn if_mtu(fd: RawFd, name: &str) -> io::Result<u32> {
    let mut r = IfReq::new(name);
    ioctl(fd, libc::SIOCGIFMTU, &mut r, "SIOCGIFMTU")?;
    Ok(i32::from_ne_bytes([r.data[0], r.data[1], r.data[2], r.data[3]]) as u32)
}

/// Interface hardware address.
pub fn if_mac(fd: RawFd, name: &str) -> io::Result<[u8; 6]> {
    let mut r = IfReq::new(name);
    ioctl(fd, libc::SIOCGIFHWADDR, &mut r, "SIOCGIFHWADDR")?;
    // struct sockaddr: sa_family (2 bytes), then the address.
    let mut mac = [0u8; 6];
    mac.copy_from_slice(&r.data[2..8]);
    Ok(mac)
}

/// `PACKET_STATISTICS` (TPACKET_V3 layout; a V2 socket fills the first two
/// fields, packets and drops, the same way); the kernel zeroes them on read.
pub fn packet_stats(fd: &OwnedFd) -> io::Result<libc::tpacket_stats_v3> {
    // SAFETY: all-zero is a valid value of this plain C struct.
    let mut st: libc::tpacket_stats_v3 = unsafe { std::mem::zeroed() };
    let mut len = size_of::<libc::tpacket_stats_v3>() as libc::socklen_t;
    // SAFETY: `st` and `len` are valid for writes of the sizes given.
    let r = unsafe {
        libc::getsockopt(
            fd.as_raw_fd(),
            libc::SOL_PACKET,
            libc::PACKET_STATISTICS,
            &mut st as *mut libc::tpacket_stats_v3 as *mut libc::c_void,
            &mut len,
        )
    };
    if r < 0 {
        return Err(ctx("PACKET_STATISTICS", io::Error::last_os_error()));
    }
    Ok(st)
}
