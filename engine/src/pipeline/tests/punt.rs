//! The punt path with a `SOCK_SEQPACKET` pair standing for each port's TAP:
//! TCP, UDP and non-echo ICMP to our address reach the kernel's side as
//! received, echo requests are still answered by the engine, ARP is copied,
//! the rate limit counts its drops, and what the kernel writes leaves
//! through the port unchanged.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use super::*;
use crate::counters::read;
use crate::punt::{PuntTaps, Tap};

/// A frame pair: (engine side, kernel side).
pub(super) fn pair() -> (OwnedFd, OwnedFd) {
    let mut fds = [0; 2];
    // SAFETY: `fds` has room for the two descriptors socketpair writes.
    let r = unsafe {
        libc::socketpair(
            libc::AF_UNIX,
            libc::SOCK_SEQPACKET | libc::SOCK_NONBLOCK,
            0,
            fds.as_mut_ptr(),
        )
    };
    assert_eq!(r, 0);
    // SAFETY: both descriptors were just created and are owned here.
    unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) }
}

struct PuntRig {
    r: Rig,
    /// Kernel ends of port a's and b's "TAPs".
    kernel: Vec<OwnedFd>,
}

fn punt_rig(rate: u32, burst: u32) -> PuntRig {
    let mut r = rig("");
    let (a_engine, a_kernel) = pair();
    let (b_engine, b_kernel) = pair();
    let taps = PuntTaps::ready(vec![
        Some(Tap::from_fd(a_engine, "lcp-a")),
        Some(Tap::from_fd(b_engine, "lcp-b")),
    ]);
    r.p.set_punt(Arc::new(taps), rate, burst, true);
    PuntRig {
        r,
        kernel: vec![a_kernel, b_kernel],
    }
}

pub(super) fn kernel_read(fd: &OwnedFd) -> Option<Vec<u8>> {
    let mut buf = vec![0u8; 4096];
    crate::punt::tap::read_fd(fd.as_raw_fd(), &mut buf)
        .ok()
        .map(|n| buf[..n].to_vec())
}

/// A TCP SYN from 10.1.0.2 to the engine's 10.1.0.1:22.
fn tcp_syn_to_us() -> Vec<u8> {
    let mut f = udp_frame(MAC_A, HOST1, "10.1.0.2", "10.1.0.1", 64, 12);
    f[14 + 9] = 6;
    f[24..26].fill(0);
    let c = checksum::checksum(&f[14..34]);
    f[24..26].copy_from_slice(&c.to_be_bytes());
    f[36..38].copy_from_slice(&22u16.to_be_bytes());
    f
}

#[test]
fn tcp_and_udp_to_our_address_reach_the_kernel_as_received() {
    let mut g = punt_rig(1000, 100);
    let syn = tcp_syn_to_us();
    let dgram = udp_frame(MAC_A, HOST1, "10.1.0.2", "10.1.0.1", 64, 20);
    g.r.a_in.borrow_mut().push_back(syn.clone());
    g.r.a_in.borrow_mut().push_back(dgram.clone());
    g.r.run(1);
    assert_eq!(kernel_read(&g.kernel[0]), Some(syn));
    assert_eq!(kernel_read(&g.kernel[0]), Some(dgram));
    assert_eq!(kernel_read(&g.kernel[1]), None, "port b's TAP saw nothing");
    // No port unreachable from the engine: the kernel decides.
    assert!(g.r.a_out.borrow().is_empty());
    assert_eq!(read(&g.r.counters.punt_to_host), 2);
}

#[test]
fn echo_requests_are_still_answered_by_the_engine_and_arp_is_copied() {
    let mut g = punt_rig(1000, 100);
    g.r.a_in
        .borrow_mut()
        .push_back(icmp_echo(MAC_A, HOST1, "10.1.0.2", "10.1.0.1", 64));
    g.r.run(1);
    let reply = pop(&g.r.a_out);
    assert_eq!(reply[14 + 20], 0, "echo reply");
    assert_eq!(kernel_read(&g.kernel[0]), None);
    let arp = arp_frame(1, [0xff; 6], HOST1, "10.1.0.2", [0; 6], "10.1.0.1");
    g.r.a_in.borrow_mut().push_back(arp.clone());
    g.r.run(2);
    assert_eq!(kernel_read(&g.kernel[0]), Some(arp), "the kernel's copy");
    let out: Vec<Vec<u8>> = g.r.a_out.borrow_mut().drain(..).collect();
    assert!(
        out.iter().any(|f| f[12..14] == [8, 6] && f[21] == 2),
        "and the engine's ARP reply: {out:?}"
    );
}

#[test]
fn the_rate_limit_drops_and_counts() {
    let mut g = punt_rig(1, 2);
    for _ in 0..5 {
        g.r.a_in.borrow_mut().push_back(tcp_syn_to_us());
    }
    g.r.run(1);
    let mut n = 0;
    while kernel_read(&g.kernel[0]).is_some() {
        n += 1;
    }
    assert_eq!(n, 2);
    assert_eq!(g.r.drops(DropReason::PuntRateLimited), 3);
}

#[test]
fn what_the_kernel_sends_leaves_through_the_port_unchanged() {
    let mut g = punt_rig(1000, 100);
    let frame = udp_frame(HOST2, MAC_B, "10.2.0.1", "10.2.0.9", 64, 30);
    crate::punt::tap::write_fd(g.kernel[1].as_raw_fd(), &frame).unwrap();
    g.r.run(1);
    assert_eq!(pop(&g.r.b_out), frame);
    assert_eq!(read(&g.r.counters.punt_from_host), 1);
    assert!(g.r.a_out.borrow().is_empty());
}
