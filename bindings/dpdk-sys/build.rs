//! Finds the system's DPDK with pkg-config, compiles the C shim for its
//! inline functions and generates the bindings with bindgen.

use std::env;
use std::path::PathBuf;
use std::process::Command;

/// The DPDK major release these bindings were written against.
const DPDK_MIN_VERSION: &str = "22.11";

fn main() {
    println!("cargo:rerun-if-changed=shim/shim.c");
    println!("cargo:rerun-if-changed=shim/shim.h");
    println!("cargo:rerun-if-env-changed=PKG_CONFIG_PATH");

    // Link flags (the rte_* libraries); drivers (PMDs) are plugins that EAL
    // loads at run time from its default directory, so they are not linked.
    let lib = pkg_config::Config::new()
        .atleast_version(DPDK_MIN_VERSION)
        .probe("libdpdk")
        .unwrap_or_else(|e| {
            panic!(
                "patronus-dpdk-sys needs DPDK >= {DPDK_MIN_VERSION} found by `pkg-config libdpdk` \
                 (Debian: apt-get install libdpdk-dev): {e}"
            )
        });

    // The full cflags (-include rte_config.h, -march=...) that the pkg-config
    // crate does not expose, for both the shim and bindgen.
    let out = Command::new("pkg-config")
        .args(["--cflags", "libdpdk"])
        .output()
        .expect("run pkg-config --cflags libdpdk");
    assert!(out.status.success(), "pkg-config --cflags libdpdk failed");
    let cflags: Vec<String> = String::from_utf8(out.stdout)
        .expect("utf-8 cflags")
        .split_whitespace()
        .map(str::to_owned)
        .collect();
    // `-include FILE` is two words; keep the pairs together.
    let mut clang_args = Vec::new();
    let mut it = cflags.iter();
    while let Some(f) = it.next() {
        if f == "-include" {
            if let Some(file) = it.next() {
                clang_args.push(format!("-include{file}"));
            }
        } else {
            clang_args.push(f.clone());
        }
    }

    let mut build = cc::Build::new();
    build.file("shim/shim.c").include("shim").opt_level(3);
    for p in &lib.include_paths {
        build.include(p);
    }
    for f in &clang_args {
        build.flag(f);
    }
    // DPDK's headers trigger these under -Wall; they are not ours to fix.
    build.flag_if_supported("-Wno-unused-parameter");
    build.compile("patronus_dpdk_shim");

    let bindings = bindgen::Builder::default()
        .header("shim/shim.h")
        .clang_args(&clang_args)
        .clang_arg("-Ishim")
        .parse_callbacks(Box::new(bindgen::CargoCallbacks::new()))
        .allowlist_function("patronus_.*")
        .allowlist_function("rte_eal_(init|cleanup|process_type|has_hugepages|get_runtime_dir)")
        .allowlist_function("rte_eth_.*")
        .allowlist_function("rte_pktmbuf_pool_create")
        .allowlist_function("rte_pktmbuf_free_bulk")
        .allowlist_function("rte_mempool_(avail_count|in_use_count|free|lookup)")
        .allowlist_function("rte_ring_lookup")
        .allowlist_function("rte_lcore_count")
        .allowlist_function("rte_thread_(register|unregister)")
        .allowlist_function("rte_strerror")
        .allowlist_function("rte_version")
        .allowlist_type("rte_eth_.*")
        .allowlist_var("RTE_ETH_.*")
        .allowlist_var("RTE_MAX_ETHPORTS")
        .allowlist_var("RTE_MBUF_DEFAULT_.*")
        .allowlist_var("RTE_PKTMBUF_HEADROOM")
        .allowlist_var("RTE_ETHER_ADDR_LEN")
        .allowlist_var("SOCKET_ID_ANY")
        .allowlist_var("LCORE_ID_ANY")
        .allowlist_type("patronus_mbuf_layout")
        // The mbuf and mempool are handled through the shim's accessors:
        // their layouts (cache-line markers, unions) stay opaque to Rust.
        .opaque_type("rte_mbuf")
        .opaque_type("rte_mempool")
        .opaque_type("rte_ring")
        .derive_default(true)
        .derive_debug(true)
        .impl_debug(false)
        .layout_tests(false)
        .generate_comments(false)
        .prepend_enum_name(false)
        .generate()
        .expect("bindgen over DPDK's headers");
    let out = PathBuf::from(env::var("OUT_DIR").expect("OUT_DIR")).join("bindings.rs");
    bindings.write_to_file(out).expect("write bindings.rs");
}
