//! The IPv4 header that wraps WAN packets (probes, FEC, compressed) inside
//! a WireGuard tunnel: the tunnel carries only IP packets (boringtun
//! checks the inner header), so WAN packets travel as IPv4 protocol 253
//! (RFC 3692, experimentation) from 0.0.0.0 to 0.0.0.0. The receiving
//! tunnel lets such a packet past its allowed-IPs check; the WAN stage
//! checks the IP packets it unwraps instead. Plain steered packets need
//! no envelope: they travel bare.

/// Length of the envelope header.
pub const ENVELOPE_LEN: usize = 20;
/// Its IP protocol number.
pub const ENVELOPE_PROTO: u8 = 253;

/// True when `ip` (an inner packet from a tunnel) is a WAN envelope.
#[inline]
pub fn is_envelope(ip: &[u8]) -> bool {
    ip.len() >= ENVELOPE_LEN && ip[0] == 0x45 && ip[9] == ENVELOPE_PROTO && ip[12..20] == [0; 8]
}

/// Writes an envelope for `payload_len` bytes into `out[..ENVELOPE_LEN]`.
pub fn write(out: &mut [u8], payload_len: usize) -> Option<()> {
    let total = u16::try_from(ENVELOPE_LEN + payload_len).ok()?;
    let h = out.get_mut(..ENVELOPE_LEN)?;
    h.fill(0);
    h[0] = 0x45;
    h[2..4].copy_from_slice(&total.to_be_bytes());
    h[8] = 64;
    h[9] = ENVELOPE_PROTO;
    let mut sum = 0u32;
    for w in h.chunks(2) {
        sum += u32::from(u16::from_be_bytes([w[0], w[1]]));
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    h[10..12].copy_from_slice(&(!(sum as u16)).to_be_bytes());
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_envelope_is_recognised_and_ip_is_not() {
        let mut b = [0u8; 40];
        write(&mut b, 20).unwrap();
        assert!(is_envelope(&b));
        assert_eq!(u16::from_be_bytes([b[2], b[3]]), 40);
        // A valid header checksum: the one's complement sum is all ones.
        let s: u32 = b[..20]
            .chunks(2)
            .map(|w| u32::from(u16::from_be_bytes([w[0], w[1]])))
            .sum();
        assert_eq!((s & 0xffff) + (s >> 16), 0xffff);
        let mut udp = b;
        udp[9] = 17;
        assert!(!is_envelope(&udp));
        let mut sourced = b;
        sourced[12] = 10;
        assert!(!is_envelope(&sourced));
        assert!(!is_envelope(&b[..19]));
        assert!(write(&mut b[..10], 0).is_none());
    }
}
