//! What the flow table reads of a packet: its direction-free 5-tuple and
//! what the dissectors and the features need (payload, TCP sequence and
//! flags), straight from the IPv4 bytes without copying.

use patronus_classify::{Dir, PacketView, L4};

use crate::wire::ipv4::{PROTO_TCP, PROTO_UDP};

/// A flow's key: its endpoints, the lower (address, port) first, so both
/// directions of a connection have the same key, packed in two words
/// (compared as two integers): `ab` = a << 32 | b, `ports` = pa << 48 |
/// pb << 32 | proto. All zero: no flow (a real key has a protocol).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(C, align(16))]
pub struct FlowKey {
    ab: u64,
    ports: u64,
}

impl FlowKey {
    /// The key of endpoints `a:pa` and `b:pb`, given lower first.
    #[inline]
    pub fn new(a: u32, pa: u16, b: u32, pb: u16, proto: u8) -> FlowKey {
        FlowKey {
            ab: u64::from(a) << 32 | u64::from(b),
            ports: u64::from(pa) << 48 | u64::from(pb) << 32 | u64::from(proto),
        }
    }

    /// A hash of the key (symmetric, as the key is). Any hash of the
    /// canonical key would do; this one mixes the two words once.
    #[inline]
    pub fn hash(&self) -> u32 {
        let x = (self.ab ^ self.ports.rotate_left(17)).wrapping_mul(0xff51_afd7_ed55_8ccd);
        ((x ^ (x >> 32)).wrapping_mul(0xc4ce_b9fe_1a85_ec53) >> 32) as u32
    }

    pub fn is_empty(&self) -> bool {
        self.ports == 0
    }

    /// The lower endpoint's address, and the other's.
    pub fn a(&self) -> u32 {
        (self.ab >> 32) as u32
    }
    pub fn b(&self) -> u32 {
        self.ab as u32
    }
    pub fn pa(&self) -> u16 {
        (self.ports >> 48) as u16
    }
    pub fn pb(&self) -> u16 {
        (self.ports >> 32) as u16
    }
    pub fn proto(&self) -> u8 {
        self.ports as u8
    }
}

/// One TCP or UDP packet as the classifier sees it.
#[derive(Clone, Copy, Debug)]
pub struct Parsed<'a> {
    pub key: FlowKey,
    /// The sender is the key's `a` end.
    pub from_a: bool,
    pub src: u32,
    pub dst: u32,
    pub sport: u16,
    pub dport: u16,
    pub l4: L4,
    /// IP total length.
    pub ip_len: u32,
    pub payload: &'a [u8],
    pub tcp_seq: u32,
    pub tcp_flags: u8,
}

impl<'a> Parsed<'a> {
    /// The view the dissectors take, in direction `dir` of its flow.
    pub fn view(&self, dir: Dir) -> PacketView<'a> {
        PacketView {
            l4: self.l4,
            dir,
            src: std::net::Ipv4Addr::from(self.src).into(),
            dst: std::net::Ipv4Addr::from(self.dst).into(),
            sport: self.sport,
            dport: self.dport,
            payload: self.payload,
            tcp_seq: self.tcp_seq,
            tcp_flags: self.tcp_flags,
        }
    }
}

/// Reads an IPv4 packet (`ip` from its first header byte; the pipeline
/// has checked the header). None for other protocols, later fragments and
/// truncated transport headers: those are not tracked. Always inlined: a
/// call returns the struct through memory, and copying it back stalled on
/// store forwarding (a third of the classifier's time).
#[inline(always)]
pub fn parse(ip: &[u8]) -> Option<Parsed<'_>> {
    let h = ip.get(..20)?;
    let ihl = usize::from(h[0] & 0x0f) * 4;
    let total = usize::from(u16::from_be_bytes([h[2], h[3]]));
    let frag_offset = u16::from_be_bytes([h[6], h[7]]) & 0x1fff;
    if h[0] >> 4 != 4 || ihl < 20 || total < ihl || total > ip.len() || frag_offset != 0 {
        return None;
    }
    let proto = h[9];
    let src = u32::from_be_bytes([h[12], h[13], h[14], h[15]]);
    let dst = u32::from_be_bytes([h[16], h[17], h[18], h[19]]);
    let l4b = &ip[ihl..total];
    let (l4, hdr, seq, flags) = match proto {
        PROTO_TCP => {
            let t = l4b.get(..20)?;
            let off = usize::from(t[12] >> 4) * 4;
            if off < 20 || off > l4b.len() {
                return None;
            }
            (
                L4::Tcp,
                off,
                u32::from_be_bytes([t[4], t[5], t[6], t[7]]),
                t[13],
            )
        }
        PROTO_UDP => {
            l4b.get(..8)?;
            (L4::Udp, 8, 0, 0)
        }
        _ => return None,
    };
    let sport = u16::from_be_bytes([l4b[0], l4b[1]]);
    let dport = u16::from_be_bytes([l4b[2], l4b[3]]);
    let from_a = (src, sport) <= (dst, dport);
    let key = if from_a {
        FlowKey::new(src, sport, dst, dport, proto)
    } else {
        FlowKey::new(dst, dport, src, sport, proto)
    };
    Some(Parsed {
        key,
        from_a,
        src,
        dst,
        sport,
        dport,
        l4,
        ip_len: total as u32,
        payload: &l4b[hdr..],
        tcp_seq: seq,
        tcp_flags: flags,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_pack_their_fields_and_both_directions_share_one() {
        let k = FlowKey::new(0x0a00_0001, 443, 0xc000_0201, 51000, 6);
        assert_eq!(
            (k.a(), k.pa(), k.b(), k.pb(), k.proto()),
            (0x0a00_0001, 443, 0xc000_0201, 51000, 6)
        );
        assert!(!k.is_empty() && FlowKey::default().is_empty());
        // A UDP packet 10.0.0.1:53 -> 10.0.0.2:4000 and its reply.
        let mut ip = [0u8; 28];
        ip[0] = 0x45;
        ip[2..4].copy_from_slice(&28u16.to_be_bytes());
        ip[9] = 17;
        ip[12..16].copy_from_slice(&[10, 0, 0, 1]);
        ip[16..20].copy_from_slice(&[10, 0, 0, 2]);
        ip[20..22].copy_from_slice(&53u16.to_be_bytes());
        ip[22..24].copy_from_slice(&4000u16.to_be_bytes());
        let there = parse(&ip).unwrap();
        let mut back = ip;
        back[12..16].copy_from_slice(&[10, 0, 0, 2]);
        back[16..20].copy_from_slice(&[10, 0, 0, 1]);
        back[20..22].copy_from_slice(&4000u16.to_be_bytes());
        back[22..24].copy_from_slice(&53u16.to_be_bytes());
        let back = parse(&back).unwrap();
        assert_eq!(there.key, back.key);
        assert_eq!(there.key.hash(), back.key.hash());
        assert_ne!(there.from_a, back.from_a);
        assert_ne!(
            there.key,
            FlowKey::new(0x0a00_0001, 53, 0x0a00_0002, 4001, 17)
        );
    }
}
