//! Fuzzes the WAN receive side (what comes out of a path tunnel once
//! decrypted): the input is split into WAN packets (a tunnel byte and a
//! 2-byte length each) fed to a `WanRuntime` — probes, replies, FEC data
//! and parity (recovery with any shape and lengths), compressed blocks —
//! with the clock advancing and the timers running between them, and a
//! few packets encoded on the way out. Nothing may panic; an inner packet
//! delivered is never longer than the largest packet.
#![no_main]

use std::sync::Arc;

use libfuzzer_sys::fuzz_target;
use patronus_engine::config::EngineConfig;
use patronus_engine::wan::runtime::WanRuntime;
use patronus_engine::wan::{AppClass, TenantId};
use patronus_engine::wg_plan::config_tunnel_key;

const CFG: &str = r#"
[[port]]
name = "x"
driver = "mem"
[[port]]
name = "y"
driver = "mem"
[[interface]]
port = "x"
address = "192.0.2.1/24"
[[interface]]
port = "y"
address = "198.51.100.1/24"
[[wireguard]]
name = "wg-x"
private_key = "yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk="
listen_port = 51820
address = "192.0.2.1"
[[wireguard.peer]]
public_key = "xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg="
allowed_ips = ["10.20.0.0/16"]
[[wireguard]]
name = "wg-y"
private_key = "yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk="
listen_port = 51821
address = "198.51.100.1"
[[wireguard.peer]]
public_key = "xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg="
allowed_ips = ["10.20.0.0/16"]
[wan]
flows = 64
[[wan.path]]
name = "x"
tunnel = "wg-x"
[[wan.path]]
name = "y"
tunnel = "wg-y"
kind = "lte"
[[wan.policy]]
name = "default"
fec = "on"
fec_k = 3
fec_m = 2
compress = true
[[wan.policy]]
name = "dup"
classes = ["unknown"]
duplicate = true
"#;

fuzz_target!(|data: &[u8]| {
    let cfg = EngineConfig::parse(CFG).expect("config");
    let wc = cfg.wan.as_ref().expect("wan").resolve(&cfg).expect("resolve");
    let mut rt = WanRuntime::new(Arc::new(wc)).expect("runtime");
    let mut now = 1u64;
    let mut rest = data;
    let mut reply = [0u8; patronus_engine::wan::wire::PROBE_REPLY_LEN];
    let mut out = vec![0u8; 4096];
    while rest.len() >= 3 {
        let t = rest[0];
        let len = usize::from(u16::from_be_bytes([rest[1], rest[2]]));
        rest = &rest[3..];
        let b = &rest[..len.min(rest.len())];
        rest = &rest[b.len()..];
        now += u64::from(t >> 2) * 1_000_000;
        let key = config_tunnel_key(u16::from(t & 1));
        if t & 2 == 0 {
            let _ = rt.input(key, b, now, &mut reply, |ip| assert!(ip.len() <= 2048));
        } else if let Some((path, pol)) = rt.steer(0, u64::from(t) | 1, TenantId(0), AppClass(if t & 4 != 0 { 10 } else { 0 }), now)
        {
            let _ = rt.encode(path, pol, b, now, &mut out, |p| assert!(p.len() <= 4096));
        }
        rt.poll(now, |i| i == 0, |_, p| assert!(!p.is_empty()));
    }
});
