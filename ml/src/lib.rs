//! Patronus flow classification by a model.
//!
//! How the parts fit: [`features::FeatureAcc`] gathers, packet by packet
//! and without allocating, what the model looks at in a flow's first
//! packets (sizes, directions, inter-arrival times, ports, TCP flags, the
//! first payload bytes and their entropy) into a fixed vector of
//! [`features::DIM`] values. [`mlp::Mlp`] is a small multilayer perceptron
//! over ndarray that scores many flows at once (one matrix product per
//! layer per batch: the workers queue flows and score them together).
//! [`train`] fits it (Adam, class-weighted cross-entropy, reproducible
//! from a seed); [`model`] saves and loads it as a versioned file with its
//! SHA-256. [`dataset`] turns the nDPI corpus into labelled feature rows
//! per capture file, and [`evaluate`] scores signatures, the model and
//! both, splitting by capture file, never by flow.

pub mod classifier;
pub mod dataset;
pub mod evaluate;
pub mod features;
pub mod mlp;
pub mod model;
pub mod rng;
pub mod train;
