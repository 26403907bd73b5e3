//! Patronus application classification.
//!
//! How the parts fit: a flow's packets, each seen as a [`PacketView`] (L4
//! payload, direction, ports, TCP sequence), go through [`Dpi::inspect`],
//! which runs the signature dissectors of [`dissect`] that have not ruled
//! themselves out, over the flow's first packets only, keeping their small
//! per-flow state in a [`FlowDpi`]. The first dissector sure of its
//! protocol gives the flow's [`Verdict`]: a [`Class`] and, where the
//! protocol carries one, an application name ([`AppName`]: TLS/QUIC SNI,
//! HTTP Host, DNS query name). Everything on that path is allocation-free
//! so the engine's workers can run it.
//!
//! Offline, [`pcap`] reads captures (pcap and pcapng, the link types of the
//! nDPI corpus), [`flows`] groups their packets into bidirectional flows
//! the way the engine's flow table does, and [`labels`] reads nDPI's
//! results (`result/*.out`) as the ground truth. The `patronus` binary
//! (`patronus classify FILE.pcap`) runs the same code on a capture.

pub mod class;
pub mod corpus;
pub mod dissect;
pub mod dpi;
pub mod eval;
pub mod flows;
pub mod labels;
pub mod offline;
pub mod pcap;
pub mod view;

pub use class::Class;
pub use dpi::{Dpi, FlowDpi, MAX_DPI_PACKETS};
pub use view::{AppName, Dir, PacketView, Step, Verdict, L4};
