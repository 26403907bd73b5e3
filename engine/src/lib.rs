//! Patronus engine: the user-space, poll-mode data plane.
//!
//! How the parts fit: [`config`] describes ports, interfaces and routes;
//! [`worker`] starts one pinned thread per core, each owning a
//! [`buffer::PacketPool`], its queue of every [`ports::Port`] and its own
//! pipeline state. A worker receives a [`buffer::Batch`] of up to 256
//! packets, walks it through the [`pipeline`] stages (Ethernet/VLAN, ARP,
//! IPv4 checks, local delivery and ICMP, route lookup in the [`fib`], next-hop
//! resolution by [`neighbor`], rewrite) and transmits. Headers are read and
//! written through the zero-copy views of [`wire`]. Every drop is counted in
//! [`counters`] under a [`counters::DropReason`]. [`nat`] is the per-worker
//! NAT44 core (sessions, per-worker port ranges, in-place translation) that
//! the pipeline calls, handing packets to the worker owning their session.
//! [`control_link`] follows the control process's shared memory: FIB
//! generations into [`tables`], NAT plans ([`nat_link`]) into [`nat_slot`],
//! which also carries session queries to the workers, WireGuard plans
//! ([`wg_link`]) into [`wg_plan`], and models ([`classify_link`]) into
//! [`classify_slot`], which also carries flow queries. [`classify`] is each
//! worker's flow table, signature DPI and batched inference, fed by the
//! pipeline with every forwarded packet. [`lb`] holds the Maglev table of
//! the load balancer (not wired into the pipeline yet). IPv6 takes its own
//! path through the pipeline (`pipeline::ipv6_input`, ND in
//! `neighbor::nd`, [`fib::fib6`]); the IPv4-only stages (fast path, NAT, LB,
//! classification, WireGuard) pass it by.

pub mod buffer;
pub mod classify;
pub mod classify_link;
pub mod classify_slot;
pub mod config;
pub mod control_link;
pub mod counters;
pub mod fib;
pub mod fib_sync;
pub mod lb;
pub mod lb_link;
pub mod line_server;
pub mod nat;
pub mod nat_link;
pub mod nat_slot;
pub mod neighbor;
pub mod pipeline;
pub mod plan_slot;
pub mod ports;
pub mod punt;
pub mod pushed_ifaces;
pub mod query_slot;
pub mod stats;
pub mod tables;
pub mod wan;
pub mod wan_shared;
pub mod wg;
pub mod wg_link;
pub mod wg_plan;
pub mod wire;
pub mod worker;
