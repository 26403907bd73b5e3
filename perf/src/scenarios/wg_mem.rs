//! `wg-mem`: WireGuard encapsulation + decapsulation on one core, in
//! memory, at 64, 512 and 1420-byte inner packets. Two tunnels (sites A and
//! B) complete a handshake, then a loop encrypts a packet at A and decrypts
//! it at B, in the same pool buffer (the engine's `wg::Tunnel`: in place in
//! the packet's headroom, outer IPv4/UDP headers and checksums included).
//! Baseline: boringtun's `Tunn` used directly into separate buffers (what a
//! program embedding boringtun would do, without packet headers). Ratio =
//! engine / boringtun at the same size.

use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use boringtun::noise::{Tunn, TunnResult};
use boringtun::x25519::{PublicKey, StaticSecret};
use patronus_engine::buffer::{Packet, PacketPool};
use patronus_engine::wg::{public_key_of, Decap, Encap, PeerConfig, PeerId, Tunnel, TunnelConfig};

use super::Options;
use crate::report::{Report, Row};

const SIZES: [usize; 3] = [64, 512, 1420];
const KEY_A: [u8; 32] = [0x11; 32];
const KEY_B: [u8; 32] = [0x22; 32];

/// An IPv4/UDP packet of `size` bytes from 10.1.0.2 to 10.2.0.2.
fn inner(size: usize) -> Vec<u8> {
    let len = size.max(28);
    let mut p = vec![0u8; len];
    p[0] = 0x45;
    p[2..4].copy_from_slice(&(len as u16).to_be_bytes());
    p[8] = 64;
    p[9] = 17;
    p[12..16].copy_from_slice(&[10, 1, 0, 2]);
    p[16..20].copy_from_slice(&[10, 2, 0, 2]);
    let mut s = 0u32;
    for w in p[..20].chunks(2) {
        s += u32::from(u16::from_be_bytes([w[0], w[1]]));
    }
    while s > 0xffff {
        s = (s & 0xffff) + (s >> 16);
    }
    p[10..12].copy_from_slice(&(!(s as u16)).to_be_bytes());
    p[20..22].copy_from_slice(&4000u16.to_be_bytes());
    p[22..24].copy_from_slice(&5000u16.to_be_bytes());
    p[24..26].copy_from_slice(&((len - 20) as u16).to_be_bytes());
    p
}

fn tunnel_config(key: [u8; 32], addr: [u8; 4], peer: [u8; 32], net: [u8; 4]) -> TunnelConfig {
    TunnelConfig {
        private_key: key,
        listen_port: 51820,
        local_addr: addr.into(),
        mtu: 1420,
        peer_slots: Vec::new(),
        peers: vec![PeerConfig {
            public_key: public_key_of(&peer),
            endpoint: Some(std::net::SocketAddrV4::new(
                if addr == [192, 0, 2, 1] {
                    [198, 51, 100, 1].into()
                } else {
                    [192, 0, 2, 1].into()
                },
                51820,
            )),
            allowed_ips: vec![(net.into(), 24)],
            persistent_keepalive_secs: 0,
            preshared_key: None,
        }],
    }
}

pub fn run(opts: &Options) -> anyhow::Result<Report> {
    let mut report = Report::new("wg-mem");
    for &size in &SIZES {
        let per = opts
            .duration
            .div_f64(SIZES.len() as f64)
            .max(Duration::from_millis(200));
        for (system, f) in [
            (
                "patronus",
                engine_row as fn(usize, Duration) -> anyhow::Result<(u64, f64)>,
            ),
            ("boringtun", boringtun_row),
        ] {
            let mut row = Row {
                system: system.into(),
                packet_size: size,
                ..Row::default()
            };
            match f(size, per) {
                Ok((n, secs)) => {
                    row.set_rate(n, secs);
                    row.cpu_ns_per_packet = row.ns_per_packet;
                    row.limited_by = "one core: encrypt at A + decrypt at B per packet".into();
                }
                Err(e) => row = Row::not_run(system, size, format!("{e:#}")),
            }
            report.rows.push(row);
        }
        let pps = |s: &str| {
            report
                .rows
                .iter()
                .find(|r| r.system == s && r.packet_size == size)
                .and_then(|r| r.pps)
        };
        if let (Some(a), Some(b)) = (pps("patronus"), pps("boringtun")) {
            let r = a / b;
            report.push_ratio(
                &format!("patronus-{size}"),
                &format!("boringtun-{size}"),
                Some(r),
            );
            if size == 1420 {
                report.ratio = Some(r);
            }
        }
    }
    report.notes.push(
        "pps = packets encrypted at A and decrypted at B per second on one thread (each packet both \
         ways through ChaCha20-Poly1305); Gbit/s = inner bytes. patronus: wg::Tunnel on pool packets \
         (outer IPv4/UDP built, checksums, allowed-IP check on decap); boringtun: Tunn::encapsulate/\
         decapsulate into separate buffers (no IP/UDP headers, no allowed-IP check)"
            .into(),
    );
    Ok(report)
}

/// Encap at A + decap at B for `dur`: (packets, seconds).
fn engine_row(size: usize, dur: Duration) -> anyhow::Result<(u64, f64)> {
    let t0 = Instant::now();
    let now = || t0.elapsed().as_nanos() as u64 + 1;
    let mut a = Tunnel::new(
        &tunnel_config(KEY_A, [192, 0, 2, 1], KEY_B, [10, 2, 0, 0]),
        0,
        1,
        now(),
    )?;
    let mut b = Tunnel::new(
        &tunnel_config(KEY_B, [198, 51, 100, 1], KEY_A, [10, 1, 0, 0]),
        0,
        1,
        now(),
    )?;
    let mut pool = PacketPool::new(16);
    let data = inner(size);
    let fresh = |pool: &mut PacketPool| -> anyhow::Result<Packet> {
        pool.alloc_from(&data).context("pool")
    };
    // Handshake: A's first packet turns into the initiation.
    let mut p = fresh(&mut pool)?;
    if a.encapsulate(PeerId(0), &mut p, now()) != Encap::Handshake {
        bail!("no handshake initiation");
    }
    if !matches!(b.decapsulate(&mut p, now()), Decap::Reply(_)) {
        bail!("no handshake response");
    }
    match a.decapsulate(&mut p, now()) {
        Decap::Reply(_) => {
            let _ = b.decapsulate(&mut p, now());
        }
        Decap::Consumed(_) => {}
        other => bail!("handshake response: {other:?}"),
    }
    let mut p = fresh(&mut pool)?;
    let mut n = 0u64;
    let start = Instant::now();
    while start.elapsed() < dur {
        for _ in 0..256 {
            let t = now();
            let r = a.encapsulate(PeerId(0), &mut p, t);
            if r != Encap::Sent {
                bail!("encapsulate: {r:?} after {n} packets");
            }
            let r = b.decapsulate(&mut p, t);
            if !matches!(r, Decap::Inner(_)) {
                bail!("decapsulate: {r:?}");
            }
            n += 1;
        }
    }
    Ok((n, start.elapsed().as_secs_f64()))
}

/// The same with boringtun's `Tunn` into separate buffers.
fn boringtun_row(size: usize, dur: Duration) -> anyhow::Result<(u64, f64)> {
    let sa = StaticSecret::from(KEY_A);
    let sb = StaticSecret::from(KEY_B);
    let (pa, pb) = (PublicKey::from(&sa), PublicKey::from(&sb));
    let mut a = Tunn::new(sa, pb, None, None, 1, None).map_err(anyhow::Error::msg)?;
    let mut b = Tunn::new(sb, pa, None, None, 2, None).map_err(anyhow::Error::msg)?;
    let data = inner(size);
    let mut buf1 = vec![0u8; 2048];
    let mut buf2 = vec![0u8; 2048];
    // Handshake: initiation, response, then the keepalive that confirms.
    let init = match a.encapsulate(&data, &mut buf1) {
        TunnResult::WriteToNetwork(p) => p.to_vec(),
        _ => bail!("no initiation"),
    };
    let resp = match b.decapsulate(None, &init, &mut buf2) {
        TunnResult::WriteToNetwork(p) => p.to_vec(),
        _ => bail!("no response"),
    };
    if let TunnResult::WriteToNetwork(k) = a.decapsulate(None, &resp, &mut buf1) {
        let k = k.to_vec();
        let _ = b.decapsulate(None, &k, &mut buf2);
    }
    // boringtun queued the first packet: flush it.
    while let TunnResult::WriteToNetwork(_) = a.decapsulate(None, &[], &mut buf1) {}
    let mut n = 0u64;
    let start = Instant::now();
    while start.elapsed() < dur {
        for _ in 0..256 {
            let len = match a.encapsulate(&data, &mut buf1) {
                TunnResult::WriteToNetwork(p) => p.len(),
                _ => bail!("encapsulate failed"),
            };
            match b.decapsulate(None, &buf1[..len], &mut buf2) {
                TunnResult::WriteToTunnelV4(..) => {}
                _ => bail!("decapsulate failed"),
            }
            n += 1;
        }
    }
    Ok((n, start.elapsed().as_secs_f64()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_rows_move_packets() {
        for size in SIZES {
            let (n, s) = engine_row(size, Duration::from_millis(20)).unwrap();
            assert!(n > 0 && s > 0.0);
            let (n, s) = boringtun_row(size, Duration::from_millis(20)).unwrap();
            assert!(n > 0 && s > 0.0);
        }
    }
}
