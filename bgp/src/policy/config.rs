//! The JSON form of a policy (for the REST API): plain data with text
//! prefixes, communities and next hops; see `validate` for the checks.
//!
//! ```json
//! {"name": "from-transit", "default": "reject", "terms": [
//!   {"name": "no-bogons",
//!    "match": {"prefix_list": [{"action": "permit", "prefix": "10.0.0.0/8", "le": 32}]},
//!    "then": "reject"},
//!   {"match": {"as_path_regex": "^65001_", "community_any": ["65001:*"]},
//!    "actions": [{"set_local_pref": 200}, {"set_med": "+10"},
//!                {"prepend": {"count": 2}}, {"set_next_hop": "self"},
//!                {"add_communities": ["65000:1", "no-export"]}],
//!    "then": "accept"}]}
//! ```

use super::prefix_list::ListAction;
use super::term::{DefaultAction, Then};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyConfig {
    pub name: String,
    #[serde(default)]
    pub terms: Vec<TermConfig>,
    /// When no term accepts or rejects; reject if omitted.
    #[serde(default = "default_reject")]
    pub default: DefaultAction,
}

fn default_reject() -> DefaultAction {
    DefaultAction::Reject
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TermConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(
        rename = "match",
        default,
        skip_serializing_if = "MatchConfig::is_empty"
    )]
    pub matches: MatchConfig,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub actions: Vec<ActionConfig>,
    pub then: Then,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MatchConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix_list: Option<Vec<PrefixEntryConfig>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub as_path_length: Option<LengthConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub as_path_regex: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin_as: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub neighbor_as: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contains_as: Option<u32>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub community_any: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub community_all: Vec<String>,
}

impl MatchConfig {
    pub fn is_empty(&self) -> bool {
        *self == MatchConfig::default()
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrefixEntryConfig {
    pub action: ListAction,
    pub prefix: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ge: Option<u8>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub le: Option<u8>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LengthConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eq: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ge: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub le: Option<u32>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum ActionConfig {
    SetLocalPref(u32),
    /// `100` sets, `"+10"` adds, `"-10"` subtracts.
    SetMed(MedConfig),
    Prepend(PrependConfig),
    /// `"self"` or an address.
    SetNextHop(String),
    SetCommunities(Vec<String>),
    AddCommunities(Vec<String>),
    /// Patterns: wildcards allowed.
    DeleteCommunities(Vec<String>),
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum MedConfig {
    Value(u32),
    Text(String),
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrependConfig {
    /// The local AS when omitted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub asn: Option<u32>,
    pub count: u8,
}
