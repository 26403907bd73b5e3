//! The control process's view of WAN paths and steering (issue 10), built
//! from the engine's `wan.` counters in `counters.shm`: [`counters`] (the
//! names and how they combine), [`view`] (what `/api/v1/wan/paths` and
//! `/api/v1/wan/policies` answer) and [`metrics`] (the `patronus_wan_*`
//! families the engine collector adds to each scrape).

pub mod counters;
pub mod metrics;
pub mod view;
