//! Import and export policy (issue 9): prefix lists with ge/le, AS-path
//! length, regex and AS conditions, community match and set, LOCAL_PREF,
//! MED, prepend and next hop; RFC 8212's default deny for eBGP without a
//! policy. No I/O; evaluation allocates only when a modification grows a
//! vector (prepend, added communities).
//!
//! - [`config`]: the JSON form; [`PolicyConfig::validate`] /
//!   [`Policy::from_json`] compile it with errors naming the field.
//! - [`term`]: the compiled [`Policy`], its terms and conditions.
//! - [`eval`]: [`apply`], [`without_policy`] (RFC 8212), [`evaluate`].

pub mod action;
pub mod as_path;
pub mod community;
pub mod config;
pub mod error;
pub mod eval;
pub mod prefix_list;
pub mod term;
mod validate;

pub use action::{MedChange, Modify, NextHopChange};
pub use as_path::{AsPathRegex, LengthMatch};
pub use community::CommunityPattern;
pub use config::PolicyConfig;
pub use error::{PolicyError, Problem};
pub use eval::{apply, evaluate, without_policy, DecidedBy, PolicyCounters, RouteContext, Verdict};
pub use prefix_list::{ListAction, PrefixList, PrefixListEntry};
pub use term::{DefaultAction, Match, Policy, Term, Then};

#[cfg(test)]
mod tests;
