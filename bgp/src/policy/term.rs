//! A policy: ordered terms, each a set of AND-ed conditions, the
//! modifications to apply, and what happens next.

use super::action::Modify;
use super::as_path::{origin_as, AsPathRegex, LengthMatch, PathText};
use super::community::{match_all, match_any, CommunityPattern};
use super::eval::RouteContext;
use super::prefix_list::PrefixList;
use crate::types::{PathAttributes, Prefix};

/// The conditions of a term; all present ones must hold (none = match all).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Match {
    pub prefix_list: Option<PrefixList>,
    pub as_path_length: Option<LengthMatch>,
    pub as_path_regex: Option<AsPathRegex>,
    pub origin_as: Option<u32>,
    /// The first AS of the path (the neighbouring AS that sent it).
    pub neighbor_as: Option<u32>,
    pub contains_as: Option<u32>,
    pub community_any: Vec<CommunityPattern>,
    pub community_all: Vec<CommunityPattern>,
}

/// What follows a matching term's modifications.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Then {
    /// Stop: the route is accepted.
    Accept,
    /// Stop: the route is rejected.
    Reject,
    /// Go on with the next term, keeping the modifications.
    Continue,
}

/// The verdict when no term stops evaluation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DefaultAction {
    Accept,
    Reject,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Term {
    pub name: Option<String>,
    pub matches: Match,
    pub modify: Vec<Modify>,
    pub then: Then,
}

/// A validated, compiled policy (build one from JSON with
/// [`super::Policy::from_json`] or from a [`super::PolicyConfig`]). It
/// (de)serializes as its JSON form, validated on the way in.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "super::PolicyConfig", into = "super::PolicyConfig")]
pub struct Policy {
    pub name: String,
    pub terms: Vec<Term>,
    pub default: DefaultAction,
}

/// The path's text form, rendered on first use and again after a prepend.
/// The stack buffer is only set up when a regex term is reached.
pub(crate) struct LazyPathText {
    text: Option<PathText>,
    fresh: bool,
}

impl LazyPathText {
    pub(crate) fn new() -> LazyPathText {
        LazyPathText {
            text: None,
            fresh: false,
        }
    }

    pub(crate) fn invalidate(&mut self) {
        self.fresh = false;
    }

    fn get(&mut self, attrs: &PathAttributes) -> &str {
        let text = self.text.get_or_insert_with(PathText::new);
        if !self.fresh {
            text.render(&attrs.as_path);
            self.fresh = true;
        }
        text.as_str()
    }
}

impl Match {
    /// True when every condition holds. Cheap conditions go first.
    pub(crate) fn matches(
        &self,
        prefix: &Prefix,
        attrs: &PathAttributes,
        ctx: &RouteContext,
        text: &mut LazyPathText,
    ) -> bool {
        let path = &attrs.as_path;
        self.neighbor_as.is_none_or(|a| path.first_as() == Some(a))
            && self
                .origin_as
                .is_none_or(|a| origin_as(path, ctx.local_as) == Some(a))
            && self.contains_as.is_none_or(|a| path.contains(a))
            && self.as_path_length.is_none_or(|l| l.matches(path))
            && (self.community_any.is_empty() || match_any(&self.community_any, &attrs.communities))
            && match_all(&self.community_all, &attrs.communities)
            && self.prefix_list.as_ref().is_none_or(|l| l.permits(prefix))
            && self
                .as_path_regex
                .as_ref()
                .is_none_or(|r| r.is_match_text(text.get(attrs)))
    }
}
