//! BGP in the control process (issue 9): the desired state the operator
//! sets through the API ([`model`]: global settings, neighbors, policies,
//! originated networks; kept by the store, published to the speaker as a
//! `BgpDesired` snapshot) and what the API asks the running speaker
//! ([`status`]: session state, counters, RIB pages).

pub mod model;
pub mod status;
