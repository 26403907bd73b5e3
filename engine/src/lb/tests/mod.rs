//! Tests of the Maglev core: the paper's example and golden hashes
//! (`golden`), build errors (`errors`), shares against the weights and
//! determinism (`shares`), and disruption when the pool changes
//! (`disruption`); the compiled plan (`plan`); the balancer's flow states (`balancer`).

use std::net::{Ipv4Addr, SocketAddrV4};

use super::maglev::{backend_key, MaglevBackend, MaglevTable};

mod disruption;
mod errors;
mod golden;
mod shares;

/// A pool of backends `base+i : 80` with the given weights.
fn pool(base: u32, weights: &[u32]) -> Vec<MaglevBackend<[u8; 6]>> {
    weights
        .iter()
        .enumerate()
        .map(|(i, &weight)| MaglevBackend {
            key: backend_key(SocketAddrV4::new(
                Ipv4Addr::from(base.wrapping_add(i as u32)),
                80,
            )),
            weight,
        })
        .collect()
}

/// Each entry's owner as a key, so tables built from different slices
/// compare by backend identity.
fn owners(table: &MaglevTable, backends: &[MaglevBackend<[u8; 6]>]) -> Vec<[u8; 6]> {
    table.entries().map(|i| backends[i].key).collect()
}
mod balancer;
mod plan;
