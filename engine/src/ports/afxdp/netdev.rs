//! Interface queries the afxdp driver needs (index, flags, MTU, MAC, RX
//! queue count), through ioctls on a plain UDP socket: AF_XDP sockets do not
//! answer interface ioctls.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

/// `SIOCETHTOOL` and `ETHTOOL_GCHANNELS` (linux/sockios.h, linux/ethtool.h).
const SIOCETHTOOL: libc::c_ulong = 0x8946;
const ETHTOOL_GCHANNELS: u32 = 0x3c;

/// Adds context to an OS error while keeping its kind.
pub fn ctx(what: &str, e: io::Error) -> io::Error {
    io::Error::new(e.kind(), format!("{what}: {e}"))
}

/// `struct ifreq`: a name and a 24-byte union.
#[repr(C)]
struct IfReq {
    name: [libc::c_char; libc::IFNAMSIZ],
    data: [u8; 24],
}

/// `struct ethtool_channels`.
#[repr(C)]
#[derive(Default)]
struct EthtoolChannels {
    cmd: u32,
    max_rx: u32,
    max_tx: u32,
    max_other: u32,
    max_combined: u32,
    rx_count: u32,
    tx_count: u32,
    other_count: u32,
    combined_count: u32,
}

/// One interface, queried through a control socket.
#[derive(Debug)]
pub struct Netdev {
    name: String,
    sock: OwnedFd,
}

impl Netdev {
    pub fn new(name: &str) -> io::Result<Self> {
        // SAFETY: plain syscall creating a new descriptor.
        let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
        if fd < 0 {
            return Err(ctx("control socket", io::Error::last_os_error()));
        }
        Ok(Netdev {
            name: name.to_string(),
            // SAFETY: `fd` is a fresh descriptor nobody else owns.
            sock: unsafe { OwnedFd::from_raw_fd(fd) },
        })
    }

    /// The interface index; a clear error when it does not exist.
    pub fn ifindex(&self) -> io::Result<i32> {
        let c = CString::new(self.name.as_str())
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

    fn req(&self) -> IfReq {
        let mut r = IfReq {
            name: [0; libc::IFNAMSIZ],
            data: [0; 24],
        };
        for (d, s) in r
            .name
            .iter_mut()
            .zip(self.name.bytes().take(libc::IFNAMSIZ - 1))
        {
            *d = s as libc::c_char;
        }
        r
    }

    fn ioctl(&self, req: libc::c_ulong, r: &mut IfReq, what: &str) -> io::Result<()> {
        // SAFETY: `r` is a properly sized `struct ifreq` for these requests;
        // for SIOCETHTOOL its union holds a pointer the caller keeps valid.
        let rc = unsafe { libc::ioctl(self.sock.as_raw_fd(), req, r as *mut IfReq) };
        if rc < 0 {
            return Err(ctx(what, io::Error::last_os_error()));
        }
        Ok(())
    }

    /// Interface flags (`IFF_*`).
    pub fn flags(&self) -> io::Result<u32> {
        let mut r = self.req();
        self.ioctl(libc::SIOCGIFFLAGS, &mut r, "SIOCGIFFLAGS")?;
        Ok(u16::from_ne_bytes([r.data[0], r.data[1]]) as u32)
    }

    /// Sets `IFF_UP` if it is not set.
    pub fn up(&self) -> io::Result<()> {
        let mut r = self.req();
        self.ioctl(libc::SIOCGIFFLAGS, &mut r, "SIOCGIFFLAGS")?;
        let flags = u16::from_ne_bytes([r.data[0], r.data[1]]);
        if flags & libc::IFF_UP as u16 == 0 {
            r.data[0..2].copy_from_slice(&(flags | libc::IFF_UP as u16).to_ne_bytes());
            self.ioctl(
                libc::SIOCSIFFLAGS,
                &mut r,
                "bringing the interface up (SIOCSIFFLAGS)",
            )?;
        }
        Ok(())
    }

    /// Interface MTU.
    pub fn mtu(&self) -> io::Result<u32> {
        let mut r = self.req();
        self.ioctl(libc::SIOCGIFMTU, &mut r, "SIOCGIFMTU")?;
        Ok(i32::from_ne_bytes([r.data[0], r.data[1], r.data[2], r.data[3]]) as u32)
    }

    /// Interface hardware address.
    pub fn mac(&self) -> io::Result<[u8; 6]> {
        let mut r = self.req();
        self.ioctl(libc::SIOCGIFHWADDR, &mut r, "SIOCGIFHWADDR")?;
        let mut mac = [0u8; 6];
        mac.copy_from_slice(&r.data[2..8]);
        Ok(mac)
    }

    /// RX queues in use (`ethtool -l`: rx + combined); None when the driver
    /// does not report channels.
    pub fn rx_queues(&self) -> Option<u32> {
        let mut ch = EthtoolChannels {
            cmd: ETHTOOL_GCHANNELS,
            ..Default::default()
        };
        let mut r = self.req();
        let p = &mut ch as *mut EthtoolChannels as usize;
        r.data[..size_of::<usize>()].copy_from_slice(&p.to_ne_bytes());
        self.ioctl(SIOCETHTOOL, &mut r, "ETHTOOL_GCHANNELS").ok()?;
        let n = ch.rx_count + ch.combined_count;
        (n > 0).then_some(n)
    }
}
