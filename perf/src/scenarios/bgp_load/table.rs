//! The feeder's table: N distinct IPv4 prefixes spread over the public
//! unicast space (no special-purpose block of RFC 6890 and no multicast or
//! class E), and the BIRD 2 configurations of the feeder (a `protocol
//! static` holding them, passive eBGP sessions exporting them) and of the
//! BIRD receivers.

use std::io::Write;
use std::net::Ipv4Addr;

/// Blocks no prefix may fall into (RFC 6890 and friends), as (network, length).
const RESERVED: [(Ipv4Addr, u8); 12] = [
    (Ipv4Addr::new(10, 0, 0, 0), 8),
    (Ipv4Addr::new(100, 64, 0, 0), 10),
    (Ipv4Addr::new(127, 0, 0, 0), 8),
    (Ipv4Addr::new(169, 254, 0, 0), 16),
    (Ipv4Addr::new(172, 16, 0, 0), 12),
    (Ipv4Addr::new(192, 0, 0, 0), 24),
    (Ipv4Addr::new(192, 0, 2, 0), 24),
    (Ipv4Addr::new(192, 88, 99, 0), 24),
    (Ipv4Addr::new(192, 168, 0, 0), 16),
    (Ipv4Addr::new(198, 18, 0, 0), 15),
    (Ipv4Addr::new(198, 51, 100, 0), 24),
    (Ipv4Addr::new(203, 0, 113, 0), 24),
];
/// Unicast space considered: 1.0.0.0 up to (not including) 224.0.0.0, as
/// /24 block numbers (address >> 8).
const FIRST_BLOCK: u32 = 1 << 16;
const END_BLOCK: u32 = 224 << 16;

/// One prefix in this many is a /32 (host route inside its own /24 block);
/// the others are /24s. With 1 M prefixes that is 15 625 /32s, each
/// needing one tbl8 group in the engine's DIR-24-8.
pub const HOST_ROUTE_EVERY: usize = 64;

/// Maps a prefix index to a distinct /24 block of the usable space: index
/// `i` takes usable block `i * stride mod total` (stride coprime with
/// total), so the table is spread over the whole space, not packed into a
/// few /8s, and no two prefixes share a block (so all are distinct and
/// none covers another).
#[derive(Debug, Clone)]
pub struct PrefixPlan {
    /// Usable block intervals `[start, end)`, sorted.
    usable: Vec<(u32, u32)>,
    total: u32,
    stride: u32,
}

fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

impl PrefixPlan {
    pub fn new() -> PrefixPlan {
        let mut reserved: Vec<(u32, u32)> = RESERVED
            .iter()
            .map(|(a, len)| {
                let start = u32::from(*a) >> 8;
                (start, start + (1u32 << (24 - u32::from(*len))))
            })
            .collect();
        reserved.sort_unstable();
        let mut usable = Vec::new();
        let mut at = FIRST_BLOCK;
        for (s, e) in reserved {
            if s > at {
                usable.push((at, s));
            }
            at = at.max(e);
        }
        if at < END_BLOCK {
            usable.push((at, END_BLOCK));
        }
        let total: u32 = usable.iter().map(|(s, e)| e - s).sum();
        // Close to total / golden ratio, nudged to be coprime with total.
        let mut stride = (f64::from(total) * 0.618_033_988_7) as u32;
        while gcd(u64::from(stride), u64::from(total)) != 1 {
            stride += 1;
        }
        PrefixPlan {
            usable,
            total,
            stride,
        }
    }

    /// The most prefixes the plan can give (one per usable /24 block).
    pub fn capacity(&self) -> usize {
        self.total as usize
    }

    /// The `k`-th usable /24 block number.
    fn block(&self, mut k: u32) -> u32 {
        for (s, e) in &self.usable {
            let n = e - s;
            if k < n {
                return s + k;
            }
            k -= n;
        }
        unreachable!("block index beyond the usable space")
    }

    /// Prefix `i` (`i < capacity()`): network address and length.
    pub fn prefix(&self, i: usize) -> (Ipv4Addr, u8) {
        assert!(i < self.capacity(), "prefix index {i} beyond the plan");
        let k = (i as u64 * u64::from(self.stride) % u64::from(self.total)) as u32;
        let base = self.block(k) << 8;
        if i % HOST_ROUTE_EVERY == HOST_ROUTE_EVERY - 1 {
            let host = 1 + (i / HOST_ROUTE_EVERY % 254) as u32;
            (Ipv4Addr::from(base | host), 32)
        } else {
            (Ipv4Addr::from(base), 24)
        }
    }

    /// How many of the first `n` prefixes are /32s.
    pub fn host_routes(n: usize) -> usize {
        n / HOST_ROUTE_EVERY
    }
}

/// One passive eBGP session of the feeder.
#[derive(Debug, Clone)]
pub struct FeederPeer {
    /// BIRD protocol name (`to_<receiver>`).
    pub protocol: String,
    /// The feeder's address on the link.
    pub local: Ipv4Addr,
    pub neighbor: Ipv4Addr,
    pub remote_as: u32,
}

/// The feeder's AS and its static protocol's name.
pub const FEEDER_AS: u32 = 65001;
pub const FEEDER_STATIC: &str = "s_feed";

/// Writes the feeder's configuration: `n` prefixes of `plan` as blackhole
/// routes of protocol `s_feed`, and one passive session per peer exporting
/// all of them (import none). Passive: each receiver connects when it is
/// started, so the feeder's table is loaded before any session exists.
pub fn write_feeder_config(
    w: &mut impl Write,
    plan: &PrefixPlan,
    n: usize,
    router_id: Ipv4Addr,
    peers: &[FeederPeer],
) -> std::io::Result<()> {
    writeln!(w, "# bgp-load feeder: {n} prefixes")?;
    writeln!(w, "router id {router_id};")?;
    writeln!(w, "protocol device {{}}")?;
    writeln!(w, "protocol static {FEEDER_STATIC} {{")?;
    writeln!(w, "  ipv4;")?;
    for i in 0..n {
        let (a, len) = plan.prefix(i);
        writeln!(w, "  route {a}/{len} blackhole;")?;
    }
    writeln!(w, "}}")?;
    for p in peers {
        writeln!(w, "protocol bgp {} {{", p.protocol)?;
        writeln!(w, "  local {} as {FEEDER_AS};", p.local)?;
        writeln!(w, "  neighbor {} as {};", p.neighbor, p.remote_as)?;
        writeln!(w, "  passive on;")?;
        writeln!(w, "  ipv4 {{ import none; export all; }};")?;
        writeln!(w, "}}")?;
    }
    Ok(())
}

/// Protocol names of a BIRD receiver's config.
pub const RECEIVER_BGP: &str = "feeder";
pub const RECEIVER_KERNEL: &str = "kern";

/// A BIRD receiver: one eBGP session to the feeder importing all and
/// exporting nothing; with `kernel`, a kernel protocol exporting every
/// selected route into its namespace's main table (the baseline for
/// "installed in a FIB"), else no kernel protocol (the RIB only).
pub fn receiver_config(local: Ipv4Addr, local_as: u32, neighbor: Ipv4Addr, kernel: bool) -> String {
    let mut s = format!("router id {local};\nprotocol device {{}}\n");
    if kernel {
        s.push_str(&format!(
            "protocol kernel {RECEIVER_KERNEL} {{\n  ipv4 {{ import none; export all; }};\n  learn off;\n}}\n"
        ));
    }
    s.push_str(&format!(
        "protocol bgp {RECEIVER_BGP} {{\n  local {local} as {local_as};\n  neighbor {neighbor} as {FEEDER_AS};\n  \
         connect delay time 1;\n  ipv4 {{ import all; export none; }};\n}}\n"
    ));
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    fn in_block(a: Ipv4Addr, net: Ipv4Addr, len: u8) -> bool {
        let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
        u32::from(a) & mask == u32::from(net) & mask
    }

    #[test]
    fn usable_space_is_the_public_unicast_space() {
        let p = PrefixPlan::new();
        let reserved_blocks: u32 = RESERVED
            .iter()
            .map(|(_, len)| 1u32 << (24 - u32::from(*len)))
            .sum();
        assert_eq!(
            p.capacity() as u32,
            END_BLOCK - FIRST_BLOCK - reserved_blocks
        );
        assert_eq!(gcd(u64::from(p.stride), u64::from(p.total)), 1);
    }

    #[test]
    fn prefixes_are_distinct_public_and_of_the_planned_lengths() {
        let p = PrefixPlan::new();
        let n = 200_000;
        let mut seen = HashSet::new();
        let mut blocks = HashSet::new();
        let mut hosts = 0;
        for i in 0..n {
            let (a, len) = p.prefix(i);
            assert!(seen.insert((a, len)), "prefix {i} = {a}/{len} repeats");
            assert!(blocks.insert(u32::from(a) >> 8), "{a}/{len} shares a /24");
            match len {
                24 => assert_eq!(u32::from(a) & 0xff, 0, "{a}/24 has host bits"),
                32 => {
                    hosts += 1;
                    let last = u32::from(a) & 0xff;
                    assert!((1..=254).contains(&last), "{a}/32");
                }
                other => panic!("unexpected length /{other}"),
            }
            assert!((1..224).contains(&a.octets()[0]), "{a} outside unicast");
            for (net, rl) in RESERVED {
                assert!(!in_block(a, net, rl), "{a}/{len} is in {net}/{rl}");
            }
        }
        assert_eq!(hosts, PrefixPlan::host_routes(n));
        // Spread: the first 1000 prefixes touch most first octets.
        let firsts: HashSet<u8> = (0..1000).map(|i| p.prefix(i).0.octets()[0]).collect();
        assert!(firsts.len() > 150, "only {} first octets", firsts.len());
    }

    #[test]
    fn the_last_index_of_the_plan_is_valid() {
        let p = PrefixPlan::new();
        let (a, _) = p.prefix(p.capacity() - 1);
        assert!(a.octets()[0] < 224);
    }

    fn peers() -> Vec<FeederPeer> {
        vec![
            FeederPeer {
                protocol: "to_patronus".into(),
                local: Ipv4Addr::new(10, 0, 1, 1),
                neighbor: Ipv4Addr::new(10, 0, 1, 2),
                remote_as: 65010,
            },
            FeederPeer {
                protocol: "to_bird".into(),
                local: Ipv4Addr::new(10, 0, 2, 1),
                neighbor: Ipv4Addr::new(10, 0, 2, 2),
                remote_as: 65002,
            },
        ]
    }

    #[test]
    fn feeder_config_holds_every_prefix_once() {
        let p = PrefixPlan::new();
        let mut buf = Vec::new();
        write_feeder_config(&mut buf, &p, 1000, Ipv4Addr::new(10, 0, 0, 1), &peers()).unwrap();
        let text = String::from_utf8(buf).unwrap();
        let routes: Vec<&str> = text
            .lines()
            .filter(|l| l.trim_start().starts_with("route "))
            .collect();
        assert_eq!(routes.len(), 1000);
        assert_eq!(routes.iter().collect::<HashSet<_>>().len(), 1000);
        assert!(routes.iter().all(|l| l.ends_with(" blackhole;")));
        assert_eq!(text.matches("passive on;").count(), 2);
        assert!(text.contains("neighbor 10.0.2.2 as 65002;"));
    }

    /// `bird -p` parses a config file without starting (skipped when BIRD
    /// is not installed).
    fn bird_parses(name: &str, text: &[u8]) {
        let dir = std::env::temp_dir().join(format!("bgpload-conf-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        let out = std::process::Command::new("bird")
            .arg("-p")
            .arg("-c")
            .arg(&path)
            .output();
        let _ = std::fs::remove_file(&path);
        let _ = std::fs::remove_dir(&dir);
        match out {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                eprintln!("bird not installed: {name} not checked");
            }
            Err(e) => panic!("running bird -p: {e}"),
            Ok(o) => assert!(
                o.status.success(),
                "bird -p rejects {name}: {}{}",
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            ),
        }
    }

    #[test]
    fn bird_accepts_the_generated_configs() {
        let p = PrefixPlan::new();
        let mut buf = Vec::new();
        write_feeder_config(&mut buf, &p, 5000, Ipv4Addr::new(10, 0, 0, 1), &peers()).unwrap();
        bird_parses("feeder.conf", &buf);
        for kernel in [false, true] {
            let c = receiver_config(
                Ipv4Addr::new(10, 0, 2, 2),
                65002,
                Ipv4Addr::new(10, 0, 2, 1),
                kernel,
            );
            assert_eq!(c.contains("protocol kernel"), kernel);
            bird_parses("receiver.conf", c.as_bytes());
        }
    }
}
