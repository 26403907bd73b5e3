//! Interface queries the afxdp driver needs (index, flags, MTU, MAC, RX
//! queue count), through ioctls on a plain UDP socket: AF_XDP sockets do not
//! answer interface ioctls. The ioctls themselves are the afpacket
//! driver's (`afpacket::sys`).

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

/// `SIOCETHTOOL` and `ETHTOOL_GCHANNELS` (linux/sockios.h, linux/ethtool.h).
const SIOCETHTOOL: libc::c_ulong = 0x8946;
const ETHTOOL_GCHANNELS: u32 = 0x3c;

pub use crate::ports::afpacket::sys::ctx;
use crate::ports::afpacket::sys::{if_flags, if_mac, if_mtu, if_up, ioctl, IfReq};

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

    /// Interface flags (`IFF_*`).
    pub fn flags(&self) -> io::Result<u32> {
        if_flags(self.sock.as_raw_fd(), &self.name)
    }

    /// Sets `IFF_UP` if it is not set.
    pub fn up(&self) -> io::Result<()> {
        if_up(self.sock.as_raw_fd(), &self.name)
    }

    /// Interface MTU.
    pub fn mtu(&self) -> io::Result<u32> {
        if_mtu(self.sock.as_raw_fd(), &self.name)
    }

    /// Interface hardware address.
    pub fn mac(&self) -> io::Result<[u8; 6]> {
        if_mac(self.sock.as_raw_fd(), &self.name)
    }

    /// RX queues in use (`ethtool -l`: rx + combined); None when the driver
    /// does not report channels.
    pub fn rx_queues(&self) -> Option<u32> {
        let mut ch = EthtoolChannels {
            cmd: ETHTOOL_GCHANNELS,
            ..Default::default()
        };
        let mut r = IfReq::new(&self.name);
        let p = &mut ch as *mut EthtoolChannels as usize;
        r.data[..size_of::<usize>()].copy_from_slice(&p.to_ne_bytes());
        ioctl(
            self.sock.as_raw_fd(),
            SIOCETHTOOL,
            &mut r,
            "ETHTOOL_GCHANNELS",
        )
        .ok()?;
        let n = ch.rx_count + ch.combined_count;
        (n > 0).then_some(n)
    }
}
