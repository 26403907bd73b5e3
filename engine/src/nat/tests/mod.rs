//! NAT tests: packet builders and checks ([`pkt`]), source NAT and
//! sessions, timeouts, destination NAT, ICMP, fragments, multi-worker
//! ownership, live reconfiguration, property tests, scapy goldens, and an
//! invariant checker ([`invariants`]).

mod dnat;
mod frag;
mod golden;
mod icmp;
mod invariants;
mod pkt;
mod prop;
mod reconfig;
mod reconfig_prop;
mod snat;
mod timers;
mod workers;
