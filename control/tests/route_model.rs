//! Property test: random sequences of route creates, deletes and whole-set
//! replacements through the API keep the store equal to a simple model
//! (a map prefix -> next hop), and each call's status matches the model's.

mod common;

use std::collections::BTreeMap;

use axum::http::{Method, StatusCode};
use proptest::prelude::*;
use serde_json::{json, Value};

use common::TestApp;

/// Prefixes the generator picks from (index into this list); some nest.
const PREFIXES: &[&str] = &[
    "0.0.0.0/0",
    "10.0.0.0/8",
    "10.1.0.0/16",
    "10.1.2.0/24",
    "192.168.0.0/16",
    "10.1.2.3/32",
];
/// Next hops: the first three are on wan0's subnet 10.2.0.0/24, the last is not.
const VIAS: &[&str] = &["10.2.0.254", "10.2.0.7", "10.2.0.8", "10.9.0.1"];

#[derive(Debug, Clone)]
enum Op {
    Create {
        prefix: usize,
        via: Option<usize>,
    },
    /// Delete the n-th route in the model (by id order), or a missing id if empty.
    Delete {
        nth: usize,
    },
    ReplaceAll {
        routes: Vec<(usize, Option<usize>)>,
    },
}

fn op() -> impl Strategy<Value = Op> {
    let route = (0..PREFIXES.len(), proptest::option::of(0..VIAS.len()));
    prop_oneof![
        4 => route.clone().prop_map(|(prefix, via)| Op::Create { prefix, via }),
        3 => (0usize..8).prop_map(|nth| Op::Delete { nth }),
        1 => proptest::collection::vec(route, 0..4).prop_map(|routes| Op::ReplaceAll { routes }),
    ]
}

fn spec(prefix: usize, via: Option<usize>) -> Value {
    match via {
        Some(v) => json!({ "prefix": PREFIXES[prefix], "next_hops": [{ "via": VIAS[v] }] }),
        None => json!({ "prefix": PREFIXES[prefix], "blackhole": true }),
    }
}

/// What the model holds per prefix: (id, next hop or blackhole).
type Model = BTreeMap<&'static str, (i64, Option<&'static str>)>;

fn valid_via(via: Option<usize>) -> bool {
    via.is_none_or(|v| v < 3)
}

async fn run(ops: Vec<Op>) -> Result<(), TestCaseError> {
    let t = TestApp::in_memory();
    t.create(
        "/api/v1/interfaces",
        json!({ "port": "wan0", "address": "10.2.0.1/24" }),
    )
    .await;
    let mut model = Model::new();
    let mut next_id = 1i64;
    let mut generation = t.generation().await;
    for op in ops {
        let (expected, r) = match &op {
            Op::Create { prefix, via } => {
                let r = t
                    .call(Method::POST, "/api/v1/routes", Some(spec(*prefix, *via)))
                    .await;
                let p = PREFIXES[*prefix];
                let expected = if model.contains_key(p) {
                    StatusCode::CONFLICT
                } else if !valid_via(*via) {
                    StatusCode::BAD_REQUEST
                } else {
                    model.insert(p, (next_id, via.map(|v| VIAS[v])));
                    next_id += 1;
                    StatusCode::CREATED
                };
                (expected, r)
            }
            Op::Delete { nth } => {
                let mut ids: Vec<i64> = model.values().map(|(id, _)| *id).collect();
                ids.sort_unstable();
                let id = ids.get(*nth).copied().unwrap_or(next_id + 100);
                let r = t
                    .call(Method::DELETE, &format!("/api/v1/routes/{id}"), None)
                    .await;
                let expected =
                    if let Some(p) = model.iter().find(|(_, (i, _))| *i == id).map(|(p, _)| *p) {
                        model.remove(p);
                        StatusCode::NO_CONTENT
                    } else {
                        StatusCode::NOT_FOUND
                    };
                (expected, r)
            }
            Op::ReplaceAll { routes } => {
                let body = json!({ "routes": routes.iter().map(|(p, v)| spec(*p, *v)).collect::<Vec<_>>() });
                let r = t.call(Method::PUT, "/api/v1/routes", Some(body)).await;
                let expected = first_failure(routes);
                if expected == StatusCode::OK {
                    let mut new = Model::new();
                    for (p, v) in routes {
                        let p = PREFIXES[*p];
                        let id = match model.get(p) {
                            Some((id, _)) => *id,
                            None => {
                                next_id += 1;
                                next_id - 1
                            }
                        };
                        new.insert(p, (id, v.map(|v| VIAS[v])));
                    }
                    // Kept prefixes keep their id; new ones get ids in list order.
                    model = new;
                }
                (expected, r)
            }
        };
        prop_assert_eq!(r.status, expected, "{:?}: {}", op, r.body);
        if expected.is_success() {
            generation += 1;
        }
        prop_assert_eq!(t.generation().await, generation);
        // The store equals the model.
        let items = t.get_ok("/api/v1/routes").await["items"].clone();
        let mut stored = Model::new();
        for r in items.as_array().unwrap() {
            let p = PREFIXES
                .iter()
                .find(|p| **p == r["prefix"].as_str().unwrap())
                .unwrap();
            let via = r["next_hops"].as_array().unwrap().first().map(|n| {
                *VIAS
                    .iter()
                    .find(|v| **v == n["via"].as_str().unwrap())
                    .unwrap()
            });
            prop_assert_eq!(r["blackhole"].as_bool().unwrap(), via.is_none());
            stored.insert(p, (r["id"].as_i64().unwrap(), via));
        }
        prop_assert_eq!(&stored, &model, "after {:?}", op);
    }
    Ok(())
}

/// Status of a whole-set replacement: entries are checked in order, each for
/// a duplicate prefix (409) and then an unreachable next hop (400).
fn first_failure(routes: &[(usize, Option<usize>)]) -> StatusCode {
    let mut seen = std::collections::BTreeSet::new();
    for (p, v) in routes {
        if !seen.insert(*p) {
            return StatusCode::CONFLICT;
        }
        if !valid_via(*v) {
            return StatusCode::BAD_REQUEST;
        }
    }
    StatusCode::OK
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn route_changes_match_a_map_model(ops in proptest::collection::vec(op(), 1..24)) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(run(ops))?;
    }
}
