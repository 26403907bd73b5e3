//! JSON form ⇄ compiled policy: every check, with the failing field's path
//! in the error; and the way back for showing a policy.

use super::action::{MedChange, Modify, NextHopChange, MAX_PREPEND_COUNT};
use super::as_path::{AsPathRegex, LengthMatch};
use super::community::{community_text, CommunityPattern};
use super::config::{
    ActionConfig, LengthConfig, MatchConfig, MedConfig, PolicyConfig, PrefixEntryConfig,
    PrependConfig, TermConfig,
};
use super::error::{PolicyError, Problem};
use super::prefix_list::{max_len, PrefixList, PrefixListEntry};
use super::term::{Match, Policy, Term};
use crate::types::{Community, Prefix};
use std::net::IpAddr;

/// Longest policy or term name.
pub const MAX_NAME_LEN: usize = 64;

fn err(field: impl Into<String>, problem: Problem) -> PolicyError {
    PolicyError {
        field: field.into(),
        problem,
    }
}

fn check_name(name: &str, field: &str) -> Result<(), PolicyError> {
    let ok = !name.is_empty()
        && name.len() <= MAX_NAME_LEN
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(err(field, Problem::BadName))
    }
}

impl PolicyConfig {
    /// Checks everything and compiles the policy.
    pub fn validate(&self) -> Result<Policy, PolicyError> {
        check_name(&self.name, "name")?;
        let mut terms = Vec::with_capacity(self.terms.len());
        for (i, t) in self.terms.iter().enumerate() {
            let base = format!("terms[{i}]");
            if let Some(name) = &t.name {
                check_name(name, &format!("{base}.name"))?;
                if self.terms[..i]
                    .iter()
                    .any(|o| o.name.as_ref() == Some(name))
                {
                    return Err(err(
                        format!("{base}.name"),
                        Problem::DuplicateTermName(name.clone()),
                    ));
                }
            }
            terms.push(t.validate(&base)?);
        }
        Ok(Policy {
            name: self.name.clone(),
            terms,
            default: self.default,
        })
    }
}

impl TermConfig {
    fn validate(&self, base: &str) -> Result<Term, PolicyError> {
        let matches = self.matches.validate(&format!("{base}.match"))?;
        let modify = self
            .actions
            .iter()
            .enumerate()
            .map(|(i, a)| a.validate(&format!("{base}.actions[{i}]")))
            .collect::<Result<_, _>>()?;
        Ok(Term {
            name: self.name.clone(),
            matches,
            modify,
            then: self.then,
        })
    }
}

impl MatchConfig {
    fn validate(&self, base: &str) -> Result<Match, PolicyError> {
        let prefix_list = match &self.prefix_list {
            None => None,
            Some(entries) => {
                let field = format!("{base}.prefix_list");
                if entries.is_empty() {
                    return Err(err(field, Problem::EmptyPrefixList));
                }
                let entries = entries
                    .iter()
                    .enumerate()
                    .map(|(i, e)| e.validate(&format!("{field}[{i}]")))
                    .collect::<Result<_, _>>()?;
                Some(PrefixList { entries })
            }
        };
        let as_path_length = self
            .as_path_length
            .as_ref()
            .map(|l| l.validate(&format!("{base}.as_path_length")))
            .transpose()?;
        let as_path_regex = self
            .as_path_regex
            .as_deref()
            .map(|r| {
                AsPathRegex::new(r)
                    .map_err(|e| err(format!("{base}.as_path_regex"), Problem::Regex(e)))
            })
            .transpose()?;
        Ok(Match {
            prefix_list,
            as_path_length,
            as_path_regex,
            origin_as: self.origin_as,
            neighbor_as: self.neighbor_as,
            contains_as: self.contains_as,
            community_any: patterns(&self.community_any, &format!("{base}.community_any"))?,
            community_all: patterns(&self.community_all, &format!("{base}.community_all"))?,
        })
    }
}

impl PrefixEntryConfig {
    fn validate(&self, base: &str) -> Result<PrefixListEntry, PolicyError> {
        let prefix =
            parse_exact_prefix(&self.prefix).map_err(|p| err(format!("{base}.prefix"), p))?;
        let len = prefix.prefix_len();
        let max = max_len(&prefix);
        if let Some(ge) = self.ge {
            if ge > max {
                return Err(err(
                    format!("{base}.ge"),
                    Problem::LengthTooLong { value: ge, max },
                ));
            }
            if ge < len {
                return Err(err(
                    format!("{base}.ge"),
                    Problem::GeBelowLength { ge, len },
                ));
            }
        }
        if let Some(le) = self.le {
            if le > max {
                return Err(err(
                    format!("{base}.le"),
                    Problem::LengthTooLong { value: le, max },
                ));
            }
            match self.ge {
                Some(ge) if le < ge => {
                    return Err(err(format!("{base}.le"), Problem::LeBelowGe { le, ge }))
                }
                None if le < len => {
                    return Err(err(
                        format!("{base}.le"),
                        Problem::LeBelowLength { le, len },
                    ))
                }
                _ => {}
            }
        }
        Ok(PrefixListEntry {
            action: self.action,
            prefix,
            ge: self.ge,
            le: self.le,
        })
    }
}

/// `addr/len` whose host bits are clear.
fn parse_exact_prefix(text: &str) -> Result<Prefix, Problem> {
    let bad = || Problem::BadPrefix(text.to_owned());
    let (a, l) = text.split_once('/').ok_or_else(bad)?;
    let addr: IpAddr = a.parse().map_err(|_| bad())?;
    let len: u8 = l.parse().map_err(|_| bad())?;
    let prefix = Prefix::new(addr, len).map_err(|_| bad())?;
    if prefix.addr() != addr {
        return Err(Problem::HostBitsSet(prefix));
    }
    Ok(prefix)
}

impl LengthConfig {
    fn validate(&self, field: &str) -> Result<LengthMatch, PolicyError> {
        match (self.eq, self.ge, self.le) {
            (Some(v), None, None) => Ok(LengthMatch::Eq(v)),
            (Some(_), _, _) => Err(err(field, Problem::EqWithRange)),
            (None, None, None) => Err(err(field, Problem::NoBound)),
            (None, Some(ge), Some(le)) if le < ge => Err(err(
                format!("{field}.le"),
                Problem::RangeInverted { ge, le },
            )),
            (None, ge, le) => Ok(LengthMatch::Range { ge, le }),
        }
    }
}

fn patterns(texts: &[String], field: &str) -> Result<Vec<CommunityPattern>, PolicyError> {
    texts
        .iter()
        .enumerate()
        .map(|(i, t)| {
            CommunityPattern::parse(t)
                .ok_or_else(|| err(format!("{field}[{i}]"), Problem::BadCommunity(t.clone())))
        })
        .collect()
}

fn communities(texts: &[String], field: &str) -> Result<Vec<Community>, PolicyError> {
    patterns(texts, field)?
        .into_iter()
        .enumerate()
        .map(|(i, p)| match p {
            CommunityPattern::Exact(c) => Ok(c),
            _ => Err(err(
                format!("{field}[{i}]"),
                Problem::WildcardNotAllowed(texts[i].clone()),
            )),
        })
        .collect()
}

impl ActionConfig {
    fn validate(&self, base: &str) -> Result<Modify, PolicyError> {
        Ok(match self {
            ActionConfig::SetLocalPref(v) => Modify::SetLocalPref(*v),
            ActionConfig::SetMed(m) => Modify::Med(parse_med(m).ok_or_else(|| {
                let text = match m {
                    MedConfig::Value(v) => v.to_string(),
                    MedConfig::Text(t) => t.clone(),
                };
                err(format!("{base}.set_med"), Problem::BadMed(text))
            })?),
            ActionConfig::Prepend(PrependConfig { asn, count }) => {
                if *count == 0 || *count > MAX_PREPEND_COUNT {
                    return Err(err(
                        format!("{base}.prepend.count"),
                        Problem::PrependCount {
                            count: *count,
                            max: MAX_PREPEND_COUNT,
                        },
                    ));
                }
                Modify::Prepend {
                    asn: *asn,
                    count: *count,
                }
            }
            ActionConfig::SetNextHop(t) => Modify::NextHop(if t == "self" {
                NextHopChange::SelfAddress
            } else {
                NextHopChange::Address(t.parse().map_err(|_| {
                    err(
                        format!("{base}.set_next_hop"),
                        Problem::BadNextHop(t.clone()),
                    )
                })?)
            }),
            ActionConfig::SetCommunities(v) => {
                Modify::SetCommunities(communities(v, &format!("{base}.set_communities"))?)
            }
            ActionConfig::AddCommunities(v) => {
                Modify::AddCommunities(communities(v, &format!("{base}.add_communities"))?)
            }
            ActionConfig::DeleteCommunities(v) => {
                Modify::DeleteCommunities(patterns(v, &format!("{base}.delete_communities"))?)
            }
        })
    }
}

fn parse_med(m: &MedConfig) -> Option<MedChange> {
    match m {
        MedConfig::Value(v) => Some(MedChange::Set(*v)),
        MedConfig::Text(t) => {
            let digits_only = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
            if let Some(rest) = t.strip_prefix('+') {
                digits_only(rest).then(|| rest.parse().ok().map(MedChange::Add))?
            } else if let Some(rest) = t.strip_prefix('-') {
                digits_only(rest).then(|| rest.parse().ok().map(MedChange::Sub))?
            } else {
                digits_only(t).then(|| t.parse().ok().map(MedChange::Set))?
            }
        }
    }
}

impl Policy {
    /// Parses and validates JSON; type errors name their field too.
    pub fn from_json(text: &str) -> Result<Policy, PolicyError> {
        let de = &mut serde_json::Deserializer::from_str(text);
        let config: PolicyConfig = serde_path_to_error::deserialize(de).map_err(|e| {
            let field = e.path().to_string();
            err(field, Problem::Json(e.into_inner().to_string()))
        })?;
        config.validate()
    }

    /// The JSON form (canonical text for prefixes, communities and MED).
    pub fn to_config(&self) -> PolicyConfig {
        PolicyConfig {
            name: self.name.clone(),
            terms: self.terms.iter().map(term_config).collect(),
            default: self.default,
        }
    }

    pub fn to_json(&self) -> String {
        // A PolicyConfig is strings, numbers, vectors and options: it
        // always serializes.
        serde_json::to_string_pretty(&self.to_config()).unwrap_or_default()
    }
}

fn term_config(t: &Term) -> TermConfig {
    let m = &t.matches;
    TermConfig {
        name: t.name.clone(),
        matches: MatchConfig {
            prefix_list: m.prefix_list.as_ref().map(|l| {
                l.entries
                    .iter()
                    .map(|e| PrefixEntryConfig {
                        action: e.action,
                        prefix: e.prefix.to_string(),
                        ge: e.ge,
                        le: e.le,
                    })
                    .collect()
            }),
            as_path_length: m.as_path_length.map(|l| match l {
                LengthMatch::Eq(v) => LengthConfig {
                    eq: Some(v),
                    ..LengthConfig::default()
                },
                LengthMatch::Range { ge, le } => LengthConfig { eq: None, ge, le },
            }),
            as_path_regex: m.as_path_regex.as_ref().map(|r| r.source().to_owned()),
            origin_as: m.origin_as,
            neighbor_as: m.neighbor_as,
            contains_as: m.contains_as,
            community_any: m.community_any.iter().map(|p| p.to_string()).collect(),
            community_all: m.community_all.iter().map(|p| p.to_string()).collect(),
        },
        actions: t.modify.iter().map(action_config).collect(),
        then: t.then,
    }
}

fn action_config(m: &Modify) -> ActionConfig {
    match m {
        Modify::SetLocalPref(v) => ActionConfig::SetLocalPref(*v),
        Modify::Med(MedChange::Set(v)) => ActionConfig::SetMed(MedConfig::Value(*v)),
        Modify::Med(MedChange::Add(v)) => ActionConfig::SetMed(MedConfig::Text(format!("+{v}"))),
        Modify::Med(MedChange::Sub(v)) => ActionConfig::SetMed(MedConfig::Text(format!("-{v}"))),
        Modify::Prepend { asn, count } => ActionConfig::Prepend(PrependConfig {
            asn: *asn,
            count: *count,
        }),
        Modify::NextHop(NextHopChange::SelfAddress) => ActionConfig::SetNextHop("self".into()),
        Modify::NextHop(NextHopChange::Address(a)) => ActionConfig::SetNextHop(a.to_string()),
        Modify::SetCommunities(v) => {
            ActionConfig::SetCommunities(v.iter().map(|c| community_text(*c)).collect())
        }
        Modify::AddCommunities(v) => {
            ActionConfig::AddCommunities(v.iter().map(|c| community_text(*c)).collect())
        }
        Modify::DeleteCommunities(v) => {
            ActionConfig::DeleteCommunities(v.iter().map(|p| p.to_string()).collect())
        }
    }
}

impl TryFrom<PolicyConfig> for Policy {
    type Error = PolicyError;
    fn try_from(c: PolicyConfig) -> Result<Policy, PolicyError> {
        c.validate()
    }
}

impl From<Policy> for PolicyConfig {
    fn from(p: Policy) -> PolicyConfig {
        p.to_config()
    }
}
