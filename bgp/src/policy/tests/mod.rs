//! Tests of the policy module, one file per part.

mod actions;
mod as_path;
mod community;
mod eval;
mod json;
mod prefix_list;
mod prefix_list_model;

use super::eval::RouteContext;
use crate::types::{AsPath, AsSegment, PathAttributes, Prefix};

/// `"10.0.0.0/8"` → Prefix (host bits must already be clear).
pub(super) fn pfx(text: &str) -> Prefix {
    let (a, l) = text.split_once('/').expect("addr/len");
    let p = Prefix::new(a.parse().expect("address"), l.parse().expect("length")).expect("prefix");
    assert_eq!(p.to_string(), text, "test prefix with host bits");
    p
}

/// A path from sequences and sets: `path(&[&[1, 2], &[], ...])` is awkward,
/// so: `seq(&[..])` and `set(&[..])` segments.
pub(super) fn path(segments: &[AsSegment]) -> AsPath {
    AsPath {
        segments: segments.to_vec(),
    }
}

pub(super) fn seq(v: &[u32]) -> AsSegment {
    AsSegment::Sequence(v.to_vec())
}

pub(super) fn set(v: &[u32]) -> AsSegment {
    AsSegment::Set(v.to_vec())
}

pub(super) fn attrs_with_path(p: AsPath) -> PathAttributes {
    PathAttributes {
        as_path: p,
        next_hop: Some("192.0.2.1".parse().expect("address")),
        ..PathAttributes::default()
    }
}

pub(super) fn ebgp() -> RouteContext {
    RouteContext {
        peer_as: 65001,
        local_as: 65000,
        ebgp: true,
        local_v4: Some("198.51.100.1".parse().expect("address")),
        local_v6: Some("2001:db8:ffff::1".parse().expect("address")),
    }
}

pub(super) fn ibgp() -> RouteContext {
    RouteContext {
        peer_as: 65000,
        ebgp: false,
        ..ebgp()
    }
}
