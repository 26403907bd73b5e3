//! NAT tests: packet builders and checks ([`pkt`]), source NAT and
//! sessions, timeouts, destination NAT, ICMP, fragments, multi-worker
//! ownership, property tests and scapy goldens.

mod dnat;
mod frag;
mod golden;
mod icmp;
mod pkt;
mod prop;
mod snat;
mod timers;
mod workers;
