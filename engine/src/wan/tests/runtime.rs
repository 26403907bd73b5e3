//! [`WanRuntime`] end to end without packets: two runtimes (site A and
//! site B) joined by a fake channel per path, a fake clock, probes
//! reflected, steering on the probe results, FEC and compression undone on
//! the far side. Also the `[wan]` section's checks.

use std::collections::VecDeque;
use std::sync::Arc;

use crate::config::EngineConfig;
use crate::wan::runtime::{counter_names, WanRuntime};
use crate::wan::{AppClass, PathState, PolicyId, TenantId};
use crate::wg_plan::config_tunnel_key;

const MS: u64 = 1_000_000;

fn config(policies: &str) -> EngineConfig {
    EngineConfig::parse(&text(policies)).unwrap_or_else(|e| panic!("{e}"))
}

fn text(policies: &str) -> String {
    format!(
        r#"
[[port]]
name = "lan0"
driver = "mem"
[[port]]
name = "wanx"
driver = "mem"
[[port]]
name = "wany"
driver = "mem"
[[interface]]
port = "wanx"
address = "192.0.2.1/24"
[[interface]]
port = "wany"
address = "198.51.100.1/24"
[[wireguard]]
name = "wg-x"
private_key = "yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk="
listen_port = 51820
address = "192.0.2.1"
[[wireguard.peer]]
public_key = "xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg="
endpoint = "192.0.2.2:51820"
allowed_ips = ["10.20.0.0/16"]
[[wireguard]]
name = "wg-y"
private_key = "yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk="
listen_port = 51821
address = "198.51.100.1"
[[wireguard.peer]]
public_key = "xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg="
endpoint = "198.51.100.2:51821"
allowed_ips = ["10.20.0.0/16"]
[wan]
[[wan.path]]
name = "fibre"
tunnel = "wg-x"
site = "b"
kind = "fibre"
cost = 1
[[wan.path]]
name = "lte"
tunnel = "wg-y"
site = "b"
kind = "lte"
cost = 10
{policies}
"#
    )
}

const POLICIES: &str = r#"
[[wan.policy]]
name = "voice"
classes = ["webrtc"]
max_loss_pct = 1.0
max_rtt_ms = 150
prefer = ["any", "lte"]
hold_down_ms = 2000
[[wan.policy]]
name = "bulk"
classes = ["unknown"]
mode = "cheapest"
[[wan.policy]]
name = "protected"
classes = ["dns"]
fec = "on"
fec_k = 4
fec_m = 2
compress = true
"#;

fn runtime(cfg: &EngineConfig) -> WanRuntime {
    let wc = cfg.wan.as_ref().unwrap().resolve(cfg).unwrap();
    WanRuntime::new(Arc::new(wc)).unwrap()
}

fn class(label: &str) -> AppClass {
    crate::config::wan::class_number(label).unwrap()
}

/// Two runtimes and a one-way delay per path; `loss[p]` drops every
/// n-th packet of path p (0: none), `down[p]` all of them.
struct Link {
    a: WanRuntime,
    b: WanRuntime,
    now: u64,
    delay: u64,
    /// (arrival time, path, to b?, bytes).
    wire: VecDeque<(u64, usize, bool, Vec<u8>)>,
    down: [bool; 2],
    drop_every: [u64; 2],
    sent: [u64; 2],
    /// Inner packets delivered at b.
    delivered: Vec<Vec<u8>>,
}

impl Link {
    fn new(cfg: &EngineConfig) -> Link {
        Link {
            a: runtime(cfg),
            b: runtime(cfg),
            now: 1,
            delay: 10 * MS,
            wire: VecDeque::new(),
            down: [false; 2],
            drop_every: [0; 2],
            sent: [0; 2],
            delivered: Vec::new(),
        }
    }

    fn put(&mut self, path: usize, to_b: bool, bytes: &[u8]) {
        self.sent[path] += 1;
        let lost = self.down[path]
            || (self.drop_every[path] > 0 && self.sent[path].is_multiple_of(self.drop_every[path]));
        if !lost {
            self.wire
                .push_back((self.now + self.delay, path, to_b, bytes.to_vec()));
        }
    }

    /// Runs both sides' timers and the wire for `ms` milliseconds.
    fn run(&mut self, ms: u64) {
        for _ in 0..ms {
            self.now += MS;
            let mut out = Vec::new();
            self.a
                .poll(self.now, |_| true, |p, b| out.push((p, true, b.to_vec())));
            self.b
                .poll(self.now, |_| true, |p, b| out.push((p, false, b.to_vec())));
            for (p, to_b, b) in out {
                self.put(p, to_b, &b);
            }
            while self.wire.front().is_some_and(|w| w.0 <= self.now) {
                let (_, p, to_b, bytes) = self.wire.pop_front().unwrap();
                let key = config_tunnel_key(p as u16);
                let mut reply = [0u8; crate::wan::wire::PROBE_REPLY_LEN];
                let mut got = Vec::new();
                let rx = if to_b { &mut self.b } else { &mut self.a };
                let n = rx
                    .input(key, &bytes, self.now, &mut reply, |ip| {
                        got.push(ip.to_vec())
                    })
                    .unwrap_or(0);
                if to_b {
                    self.delivered.extend(got);
                }
                if n > 0 {
                    self.put(p, !to_b, &reply[..n]);
                }
            }
        }
    }

    /// Sends one packet of flow `fp` from a to b: returns its path.
    fn send(&mut self, fp: u64, class: AppClass, ip: &[u8]) -> Option<(usize, PolicyId)> {
        let (path, policy) = self.a.steer(0, fp, TenantId(0), class, self.now)?;
        let mut out = vec![0u8; 4096];
        let mut parity = Vec::new();
        let r = self
            .a
            .encode(path, policy, ip, self.now, &mut out, |b| {
                parity.push(b.to_vec())
            })
            .unwrap();
        match r {
            Some(e) => {
                self.put(path, true, &out[..e.len]);
                if let Some(other) = e.also {
                    self.put(other, true, &out[..e.len]);
                }
            }
            None => self.put(path, true, ip),
        }
        for b in parity {
            self.put(path, true, &b);
        }
        Some((path, policy))
    }
}

fn udp_packet(seq: u32, payload: &[u8]) -> Vec<u8> {
    let len = 28 + payload.len();
    let mut p = vec![0u8; len];
    p[0] = 0x45;
    p[2..4].copy_from_slice(&(len as u16).to_be_bytes());
    p[8] = 64;
    p[9] = 17;
    p[12..16].copy_from_slice(&[10, 10, 0, 2]);
    p[16..20].copy_from_slice(&[10, 20, 0, 2]);
    p[20..22].copy_from_slice(&4000u16.to_be_bytes());
    p[22..24].copy_from_slice(&5000u16.to_be_bytes());
    p[24..26].copy_from_slice(&((len - 20) as u16).to_be_bytes());
    p[28..].copy_from_slice(payload);
    p[28..32].copy_from_slice(&seq.to_be_bytes());
    p
}

#[test]
fn probes_bring_both_paths_alive_with_their_rtt() {
    let cfg = config(POLICIES);
    let mut l = Link::new(&cfg);
    assert_eq!(l.a.path_state(0), PathState::Unknown);
    l.run(1000);
    for p in 0..2 {
        assert_eq!(l.a.path_state(p), PathState::Alive, "path {p}");
        assert_eq!(l.b.path_state(p), PathState::Alive, "path {p} at b");
    }
    let names = counter_names(l.a.config());
    let vals: Vec<std::sync::atomic::AtomicU64> =
        names.iter().map(|_| Default::default()).collect();
    l.a.publish(l.now, &vals);
    let get = |n: &str| {
        let i = names.iter().position(|x| x == n).unwrap();
        vals[i].load(std::sync::atomic::Ordering::Relaxed)
    };
    assert_eq!(get("wan.path.fibre.state"), 1);
    // 10 ms each way.
    let rtt = get("wan.path.fibre.rtt_us");
    assert!((19_000..=22_000).contains(&rtt), "rtt {rtt} us");
    assert!(get("wan.path.lte.probes_sent") >= 9);
    assert_eq!(get("wan.path.lte.loss_ppm"), 0);
}

#[test]
fn voice_leaves_a_lossy_path_while_bulk_stays_on_the_cheapest() {
    let cfg = config(POLICIES);
    let mut l = Link::new(&cfg);
    l.run(1000);
    let voice = class("webrtc");
    let bulk = class("unknown");
    // Equal paths: voice prefers anything but LTE, bulk the cheapest.
    assert_eq!(l.send(11, voice, &udp_packet(0, &[0; 40])).unwrap().0, 0);
    assert_eq!(l.send(22, bulk, &udp_packet(0, &[0; 40])).unwrap().0, 0);
    // Fibre loses one probe in 5 (20 %): voice's SLA (1 %) breaks.
    l.drop_every[0] = 5;
    l.run(3000);
    assert_eq!(l.a.path_state(0), PathState::Alive, "lossy, not dead");
    assert_eq!(l.send(11, voice, &udp_packet(1, &[0; 40])).unwrap().0, 1);
    assert_eq!(l.send(22, bulk, &udp_packet(1, &[0; 40])).unwrap().0, 0);
    // A new voice flow avoids fibre too.
    assert_eq!(l.send(33, voice, &udp_packet(0, &[0; 40])).unwrap().0, 1);
}

#[test]
fn a_dead_path_is_left_within_a_second_of_its_first_lost_probe() {
    let cfg = config(POLICIES);
    let mut l = Link::new(&cfg);
    l.run(1000);
    let bulk = class("unknown");
    assert_eq!(l.send(5, bulk, &udp_packet(0, &[0; 40])).unwrap().0, 0);
    l.down[0] = true;
    let cut = l.now;
    let mut moved_at = None;
    for i in 0..1500 {
        l.run(1);
        if l.send(5, bulk, &udp_packet(i, &[0; 40])).unwrap().0 == 1 {
            moved_at = Some(l.now);
            break;
        }
    }
    let moved = moved_at.expect("the flow never left the dead path") - cut;
    // The first probe lost is the first sent after the cut (every 100 ms).
    assert!(moved <= 1_000 * MS, "moved {} ms after the cut", moved / MS);
    assert_eq!(l.a.path_state(0), PathState::Dead);
}

#[test]
fn fec_and_compression_are_undone_at_the_far_end() {
    let cfg = config(POLICIES);
    let mut l = Link::new(&cfg);
    l.run(1000);
    let dns = class("dns");
    // Every 4th packet of both paths is lost; k 4, m 2 recovers them.
    l.drop_every = [4, 4];
    let payload: Vec<u8> = b"GET /index.html HTTP/1.1\r\nHost: example\r\n\r\n"
        .iter()
        .cycle()
        .take(600)
        .copied()
        .collect();
    let sent: Vec<Vec<u8>> = (0..200).map(|i| udp_packet(i, &payload)).collect();
    for p in &sent {
        let (_, pol) = l.send(7, dns, p).unwrap();
        assert_eq!(pol, PolicyId(3));
    }
    l.run(500);
    let mut got = l.delivered.clone();
    got.sort();
    got.dedup();
    assert_eq!(got.len(), sent.len(), "every packet delivered once");
    let mut want = sent.clone();
    want.sort();
    assert_eq!(got, want);
    let names = counter_names(l.b.config());
    let vals: Vec<std::sync::atomic::AtomicU64> =
        names.iter().map(|_| Default::default()).collect();
    l.b.publish(l.now, &vals);
    let recovered: u64 = names
        .iter()
        .zip(&vals)
        .filter(|(n, _)| n.ends_with(".fec_recovered"))
        .map(|(_, v)| v.load(std::sync::atomic::Ordering::Relaxed))
        .sum();
    assert!(recovered > 0, "nothing recovered");
    l.a.publish(l.now, &vals);
    let get = |n: &str| {
        let i = names.iter().position(|x| x == n).unwrap();
        vals[i].load(std::sync::atomic::Ordering::Relaxed)
    };
    assert!(get("wan.compress_out_bytes") < get("wan.compress_in_bytes") / 2);
    assert!(get("wan.policy.protected.path.fibre.packets") == 200);
}

#[test]
fn garbage_is_counted_not_taken() {
    let cfg = config(POLICIES);
    let mut rt = runtime(&cfg);
    let mut reply = [0u8; crate::wan::wire::PROBE_REPLY_LEN];
    let key = config_tunnel_key(0);
    for bad in [
        &[][..],
        &[0x11],
        &[0x11, 9, 0, 0],
        &[0x11, 3, 0, 0, 0, 0, 0, 0, 0, 0, 1],
    ] {
        assert!(rt
            .input(key, bad, 1, &mut reply, |_| panic!("delivered"))
            .is_err());
    }
    // A compressed packet whose block is garbage.
    assert!(rt
        .input(
            key,
            &[0x11, 5, 0, 100, 0xff, 0xff],
            1,
            &mut reply,
            |_| panic!("delivered")
        )
        .is_err());
}

#[test]
fn the_section_names_the_key_at_fault() {
    let bad = |extra: &str, key: &str| {
        let e = EngineConfig::parse(&text(extra))
            .and_then(|c| c.validate())
            .unwrap_err()
            .to_string();
        assert!(e.contains(key), "{e} should name {key}");
    };
    bad(
        "[[wan.policy]]\nname = \"x\"\nclasses = [\"nope\"]",
        "wan.policy[0].classes",
    );
    bad(
        "[[wan.policy]]\nname = \"x\"\nclasses = [\"dns\"]\nmode = \"fast\"",
        "wan.policy[0].mode",
    );
    bad(
        "[[wan.policy]]\nname = \"x\"\nclasses = [\"dns\"]\nfec = \"on\"\nfec_k = 40",
        "wan.policy[0].fec_k",
    );
    bad(
        "[[wan.policy]]\nname = \"x\"\nclasses = [\"dns\"]\nprefer = [\"moon\"]",
        "wan.policy[0].prefer",
    );
    bad(
        "[[wan.policy]]\nname = \"x.y\"\nclasses = [\"dns\"]",
        "wan.policy[0].name",
    );
    bad("[[wan.policy]]\nname = \"x\"", "wan.policy[0].classes");
    assert!(config(POLICIES).validate().is_ok());
}

/// Tenants are ingress VLANs: a policy listing VLANs takes only their
/// flows (with its classes, or all of the tenant's with none).
#[test]
fn vlan_tenants_choose_their_policies() {
    let cfg = config(
        r#"
[[wan.policy]]
name = "t100-voice"
classes = ["webrtc"]
vlans = [100]
[[wan.policy]]
name = "t200"
vlans = [200]
mode = "cheapest"
[[wan.policy]]
name = "voice"
classes = ["webrtc"]
"#,
    );
    let mut l = Link::new(&cfg);
    l.run(1000);
    let (web, dns) = (class("webrtc"), class("dns"));
    let pol = |l: &mut Link, fp: u64, vlan: u32, c: AppClass| {
        l.a.steer(0, fp, TenantId(vlan), c, l.now).unwrap().1
    };
    let names: Vec<String> =
        l.a.config()
            .table
            .policies()
            .iter()
            .map(|p| p.name.clone())
            .collect();
    let name = |p: PolicyId| names[usize::from(p.0)].clone();
    assert_eq!(name(pol(&mut l, 1, 100, web)), "t100-voice");
    assert_eq!(name(pol(&mut l, 2, 100, dns)), "default");
    assert_eq!(
        name(pol(&mut l, 3, 200, web)),
        "voice",
        "class rule beats tenant-only rule"
    );
    assert_eq!(name(pol(&mut l, 4, 200, dns)), "t200");
    assert_eq!(name(pol(&mut l, 5, 0, web)), "voice");
    assert_eq!(name(pol(&mut l, 6, 0, dns)), "default");
}

/// Duplication: each packet goes on both paths; the far end keeps one
/// copy, so a packet is lost only if both copies are.
#[test]
fn duplicated_packets_arrive_once_unless_both_copies_are_lost() {
    let cfg = config(
        r#"
[[wan.policy]]
name = "critical"
classes = ["webrtc"]
duplicate = true
"#,
    );
    let mut l = Link::new(&cfg);
    l.run(1000);
    // Every 4th packet of fibre and every 3rd of lte is lost.
    l.drop_every = [4, 3];
    let sent: Vec<Vec<u8>> = (0..300).map(|i| udp_packet(i, &[7; 100])).collect();
    for p in &sent {
        l.send(9, class("webrtc"), p).unwrap();
    }
    l.run(100);
    let got = l.delivered.clone();
    let mut uniq = got.clone();
    uniq.sort();
    uniq.dedup();
    assert_eq!(uniq.len(), got.len(), "a packet delivered twice");
    // Only packets lost on both paths are missing: far fewer than either
    // path alone loses (1/4, 1/3 of 300).
    assert!(got.len() >= 300 - 40, "delivered {}", got.len());
    let names = counter_names(l.b.config());
    let vals: Vec<std::sync::atomic::AtomicU64> =
        names.iter().map(|_| Default::default()).collect();
    l.b.publish(l.now, &vals);
    let get = |n: &str| {
        let i = names.iter().position(|x| x == n).unwrap();
        vals[i].load(std::sync::atomic::Ordering::Relaxed)
    };
    assert!(
        get("wan.dup_dropped") > 100,
        "second copies dropped: {}",
        get("wan.dup_dropped")
    );
    l.a.publish(l.now, &vals);
    assert_eq!(get("wan.dup_sent"), 300);
    // Duplication and FEC exclude each other.
    let e = EngineConfig::parse(&text(
        "[[wan.policy]]\nname = \"x\"\nclasses = [\"dns\"]\nduplicate = true\nfec = \"on\"",
    ))
    .and_then(|c| c.validate())
    .unwrap_err()
    .to_string();
    assert!(e.contains("wan.policy[0].duplicate"), "{e}");
}
