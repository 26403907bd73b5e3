//! What the model sees of a flow, gathered packet by packet into a fixed
//! vector without allocating (the engine's workers keep one
//! [`FeatureAcc`] per flow under classification).
//!
//! Layout of the vector ([`DIM`] values, raw: the model file carries the
//! normalisation):
//! - transport (1: TCP), the server port in [`PORT_BUCKETS`] (one-hot,
//!   with "other below 1024", "registered", "dynamic"), the client port's
//!   range (3);
//! - per packet of the first [`PKTS`]: signed log size (+ from the client,
//!   − from the server, 0 when absent), log inter-arrival time, has-payload;
//! - counts and log bytes per direction, mean payload size per direction;
//! - TCP flags seen (SYN, FIN, RST, PSH) as fractions of packets;
//! - the first [`HEAD`] payload bytes of the first payload packet each way
//!   (scaled to 0..1), its byte entropy and printable fraction.

use patronus_classify::{Dir, L4};

/// Packets of a flow the features describe one by one.
pub const PKTS: usize = 10;
/// Payload bytes of the first payload packet each way.
pub const HEAD: usize = 8;
/// Server ports with a bucket of their own.
pub const PORT_BUCKETS: [u16; 22] = [
    20, 21, 22, 25, 53, 80, 110, 123, 143, 443, 465, 587, 853, 993, 995, 1900, 3478, 5060, 5353,
    5355, 8080, 8443,
];
const PORT_OTHER_LOW: usize = PORT_BUCKETS.len();
const PORT_REGISTERED: usize = PORT_BUCKETS.len() + 1;
const PORT_DYNAMIC: usize = PORT_BUCKETS.len() + 2;
const PORT_DIM: usize = PORT_BUCKETS.len() + 3;

const OFF_L4: usize = 0;
const OFF_SPORT: usize = 1;
const OFF_CPORT: usize = OFF_SPORT + PORT_DIM;
const OFF_PKTS: usize = OFF_CPORT + 3;
const OFF_TOTALS: usize = OFF_PKTS + 3 * PKTS;
const OFF_FLAGS: usize = OFF_TOTALS + 6;
const OFF_HEAD: usize = OFF_FLAGS + 4;
/// Values in a feature vector.
pub const DIM: usize = OFF_HEAD + 2 * (HEAD + 2);

/// A flow's features as its packets go by.
#[derive(Clone, Debug)]
pub struct FeatureAcc {
    v: [f32; DIM],
    seen: usize,
    last_ts: u64,
    count: [u32; 2],
    bytes: [u64; 2],
    payload_bytes: [u64; 2],
    payload_pkts: [u32; 2],
    flags: [u32; 4],
    head_done: [bool; 2],
}

impl FeatureAcc {
    /// Starts a flow: its transport and ports (server and client).
    pub fn new(l4: L4, server_port: u16, client_port: u16) -> FeatureAcc {
        let mut v = [0f32; DIM];
        v[OFF_L4] = f32::from(u8::from(l4 == L4::Tcp));
        let b = PORT_BUCKETS
            .iter()
            .position(|&p| p == server_port)
            .unwrap_or(match server_port {
                0..=1023 => PORT_OTHER_LOW,
                1024..=49151 => PORT_REGISTERED,
                _ => PORT_DYNAMIC,
            });
        v[OFF_SPORT + b] = 1.0;
        v[OFF_CPORT
            + match client_port {
                0..=1023 => 0,
                1024..=49151 => 1,
                _ => 2,
            }] = 1.0;
        FeatureAcc {
            v,
            seen: 0,
            last_ts: 0,
            count: [0; 2],
            bytes: [0; 2],
            payload_bytes: [0; 2],
            payload_pkts: [0; 2],
            flags: [0; 4],
            head_done: [false; 2],
        }
    }

    /// Packets taken so far.
    pub fn packets(&self) -> usize {
        self.seen
    }

    /// Takes one packet (only the first [`PKTS`] count).
    pub fn add(&mut self, dir: Dir, ip_len: u32, payload: &[u8], ts_ns: u64, tcp_flags: u8) {
        if self.seen >= PKTS {
            return;
        }
        let d = usize::from(dir == Dir::Reply);
        let at = OFF_PKTS + 3 * self.seen;
        let sign = if d == 0 { 1.0 } else { -1.0 };
        self.v[at] = sign * ((1.0 + ip_len as f32).log2() / 11.0);
        let iat_us = if self.seen == 0 {
            0.0
        } else {
            ts_ns.saturating_sub(self.last_ts) as f32 / 1000.0
        };
        self.v[at + 1] = (1.0 + iat_us).log10() / 7.0;
        self.v[at + 2] = f32::from(u8::from(!payload.is_empty()));
        self.last_ts = ts_ns;
        self.seen += 1;
        self.count[d] += 1;
        self.bytes[d] += u64::from(ip_len);
        if !payload.is_empty() {
            self.payload_pkts[d] += 1;
            self.payload_bytes[d] += payload.len() as u64;
        }
        for (i, bit) in [0x02u8, 0x01, 0x04, 0x08].iter().enumerate() {
            if tcp_flags & bit != 0 {
                self.flags[i] += 1;
            }
        }
        if !payload.is_empty() && !self.head_done[d] {
            self.head_done[d] = true;
            let at = OFF_HEAD + d * (HEAD + 2);
            for (k, b) in payload.iter().take(HEAD).enumerate() {
                self.v[at + k] = f32::from(*b) / 255.0;
            }
            self.v[at + HEAD] = entropy(payload) / 8.0;
            let printable = payload
                .iter()
                .filter(|b| (0x20..0x7f).contains(*b) || matches!(b, b'\r' | b'\n' | b'\t'))
                .count();
            self.v[at + HEAD + 1] = printable as f32 / payload.len() as f32;
        }
    }

    /// The vector so far.
    pub fn vector(&self) -> [f32; DIM] {
        let mut v = self.v;
        let n = self.seen.max(1) as f32;
        for d in 0..2 {
            v[OFF_TOTALS + d] = self.count[d] as f32 / PKTS as f32;
            v[OFF_TOTALS + 2 + d] = (1.0 + self.bytes[d] as f32).log2() / 20.0;
            let mean = if self.payload_pkts[d] == 0 {
                0.0
            } else {
                self.payload_bytes[d] as f32 / self.payload_pkts[d] as f32
            };
            v[OFF_TOTALS + 4 + d] = (1.0 + mean).log2() / 11.0;
        }
        for i in 0..4 {
            v[OFF_FLAGS + i] = self.flags[i] as f32 / n;
        }
        v
    }
}

/// Shannon entropy of the bytes, in bits per byte (0..=8).
pub fn entropy(b: &[u8]) -> f32 {
    if b.is_empty() {
        return 0.0;
    }
    let mut counts = [0u32; 256];
    for &x in b {
        counts[usize::from(x)] += 1;
    }
    let n = b.len() as f32;
    counts
        .iter()
        .filter(|&&c| c > 0)
        .map(|&c| {
            let p = c as f32 / n;
            -p * p.log2()
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flow_fills_its_slots_and_stops_after_pkts() {
        let mut f = FeatureAcc::new(L4::Tcp, 443, 50000);
        for i in 0..(PKTS as u64 + 5) {
            let dir = if i % 2 == 0 { Dir::Orig } else { Dir::Reply };
            f.add(
                dir,
                100 + i as u32,
                b"\x16\x03\x01hello",
                i * 1_000_000,
                0x18,
            );
        }
        let v = f.vector();
        assert_eq!(f.packets(), PKTS);
        assert_eq!(v[OFF_L4], 1.0);
        assert_eq!(v[OFF_SPORT + 9], 1.0, "443 has its bucket");
        assert!(
            v[OFF_PKTS] > 0.0 && v[OFF_PKTS + 3] < 0.0,
            "signed by direction"
        );
        assert!((v[OFF_HEAD] - 0x16 as f32 / 255.0).abs() < 1e-6);
        assert!(v.iter().all(|x| x.is_finite()));
        assert!((entropy(&[1, 2, 3, 4]) - 2.0).abs() < 1e-6);
        assert_eq!(entropy(&[7; 10]), 0.0);
    }
}
