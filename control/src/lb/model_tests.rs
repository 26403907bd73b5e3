//! Validation of VIP and backend requests.

use super::*;

fn spec(json: &str) -> VipSpec {
    serde_json::from_str(json).unwrap()
}

fn field_of(r: Result<impl std::fmt::Debug>) -> String {
    match r.unwrap_err() {
        Error::Invalid { field, .. } => field,
        e => panic!("not a 400: {e:?}"),
    }
}

#[test]
fn primes_up_to_the_table_bound() {
    let small: Vec<u32> = (0..30).filter(|&n| is_prime(n)).collect();
    assert_eq!(small, [2, 3, 5, 7, 11, 13, 17, 19, 23, 29]);
    assert!(is_prime(65537));
    assert!(is_prime(4_194_301), "largest prime below 2^22");
    assert!(!is_prime(65536));
    assert!(!is_prime(4_194_303)); // 3 × 1398101
    assert!(!is_prime(10_403)); // 101 × 103: a square of primes' neighbour
    assert!(!is_prime(10_201)); // 101²
}

#[test]
fn a_minimal_vip_takes_the_defaults() {
    let (v, b) = spec(r#"{"name":"web","address":"10.9.0.100","port":80}"#)
        .validate()
        .unwrap();
    assert_eq!(v.protocol, Protocol::Tcp);
    assert_eq!(v.mode, Mode::Nat);
    assert_eq!(v.table_size, DEFAULT_TABLE_SIZE);
    assert_eq!(v.health_check, None);
    assert!(b.is_empty());
    assert_eq!(v.max_backends(), 655);
}

#[test]
fn the_brief_example_validates() {
    let (v, b) = spec(
        r#"{"name":"web","address":"10.9.0.100","port":80,"protocol":"tcp","mode":"nat",
            "table_size":65537,"health_check":{"type":"http","path":"/","port":null,
            "interval_ms":500,"timeout_ms":400,"rise":2,"fall":2},
            "backends":[{"address":"10.2.0.11","port":80,"weight":1}]}"#,
    )
    .validate()
    .unwrap();
    let c = v.health_check.as_ref().unwrap();
    assert_eq!(c.kind, CheckType::Http);
    assert_eq!(c.path.as_deref(), Some("/"));
    let hc = c.health_check();
    assert_eq!(hc.interval, Duration::from_millis(500));
    assert_eq!(hc.timeout, Duration::from_millis(400));
    assert!(hc.validate().is_ok());
    assert_eq!(b.len(), 1);
    assert_eq!(
        c.target(&b[0]),
        "10.2.0.11:80".parse::<SocketAddr>().unwrap()
    );
}

#[test]
fn bad_fields_are_named() {
    let base = r#""address":"10.9.0.100","port":80"#;
    let cases = [
        (
            r#"{"name":"a b","address":"10.9.0.100","port":80}"#.to_owned(),
            "name",
        ),
        (
            r#"{"name":"","address":"10.9.0.100","port":80}"#.to_owned(),
            "name",
        ),
        (
            r#"{"name":"w","address":"10.9.0.256","port":80}"#.to_owned(),
            "address",
        ),
        (
            r#"{"name":"w","address":"224.0.0.1","port":80}"#.to_owned(),
            "address",
        ),
        (
            r#"{"name":"w","address":"10.9.0.1","port":0}"#.to_owned(),
            "port",
        ),
        (
            format!(r#"{{"name":"w",{base},"table_size":65536}}"#),
            "table_size",
        ),
        (
            format!(r#"{{"name":"w",{base},"table_size":97}}"#),
            "table_size",
        ),
        (
            format!(r#"{{"name":"w",{base},"table_size":4194319}}"#),
            "table_size",
        ),
        (
            format!(r#"{{"name":"w",{base},"health_check":{{"type":"tcp","path":"/"}}}}"#),
            "health_check.path",
        ),
        (
            format!(r#"{{"name":"w",{base},"health_check":{{"type":"http","path":"x"}}}}"#),
            "health_check.path",
        ),
        (
            format!(
                r#"{{"name":"w",{base},"health_check":{{"type":"tcp","interval_ms":100,"timeout_ms":200}}}}"#
            ),
            "health_check.timeout_ms",
        ),
        (
            format!(r#"{{"name":"w",{base},"health_check":{{"type":"tcp","interval_ms":0}}}}"#),
            "health_check.interval_ms",
        ),
        (
            format!(r#"{{"name":"w",{base},"health_check":{{"type":"tcp","rise":0}}}}"#),
            "health_check.rise",
        ),
        (
            format!(r#"{{"name":"w",{base},"health_check":{{"type":"tcp","fall":101}}}}"#),
            "health_check.fall",
        ),
        (
            format!(r#"{{"name":"w",{base},"health_check":{{"type":"tcp","port":0}}}}"#),
            "health_check.port",
        ),
        (
            format!(r#"{{"name":"w",{base},"backends":[{{"address":"127.0.0.1"}}]}}"#),
            "backends[0].address",
        ),
        (
            format!(
                r#"{{"name":"w",{base},"backends":[{{"address":"10.2.0.1"}},{{"address":"10.2.0.2","port":0}}]}}"#
            ),
            "backends[1].port",
        ),
        (
            format!(
                r#"{{"name":"w",{base},"backends":[{{"address":"10.2.0.1"}},{{"address":"10.2.0.1","port":80}}]}}"#
            ),
            "backends[1]",
        ),
        (
            format!(
                r#"{{"name":"w",{base},"mode":"dsr","backends":[{{"address":"10.2.0.1","port":8080}}]}}"#
            ),
            "backends[0].port",
        ),
        (
            format!(
                r#"{{"name":"w",{base},"table_size":101,"backends":[{{"address":"10.2.0.1"}},{{"address":"10.2.0.2"}}]}}"#
            ),
            "table_size",
        ),
    ];
    for (json, field) in cases {
        assert_eq!(field_of(spec(&json).validate()), field, "{json}");
    }
}

#[test]
fn dsr_backends_default_to_the_vip_port_and_weights_to_one() {
    let (v, b) = spec(
        r#"{"name":"d","address":"10.9.0.100","port":53,"protocol":"udp","mode":"dsr",
            "table_size":211,"backends":[{"address":"10.2.0.1"},{"address":"10.2.0.2","weight":0}]}"#,
    )
    .validate()
    .unwrap();
    assert_eq!(v.mode, Mode::Dsr);
    assert_eq!(b[0].port, 53);
    assert_eq!((b[0].weight, b[1].weight), (1, 0));
}

#[test]
fn unknown_enum_values_and_fields_do_not_parse() {
    for json in [
        r#"{"name":"w","address":"10.9.0.1","port":80,"protocol":"icmp"}"#,
        r#"{"name":"w","address":"10.9.0.1","port":80,"mode":"tunnel"}"#,
        r#"{"name":"w","address":"10.9.0.1","port":80,"health_check":{"type":"ping"}}"#,
        r#"{"name":"w","address":"10.9.0.1","port":80,"bogus":1}"#,
        r#"{"name":"w","address":"10.9.0.1","port":70000}"#,
    ] {
        assert!(serde_json::from_str::<VipSpec>(json).is_err(), "{json}");
    }
}

#[test]
fn updates_keep_or_change_the_name() {
    let u: VipUpdateSpec =
        serde_json::from_str(r#"{"address":"10.9.0.1","port":443,"mode":"dsr"}"#).unwrap();
    let d = u.validate("web").unwrap();
    assert_eq!((d.name.as_str(), d.port, d.mode), ("web", 443, Mode::Dsr));
    let u: VipUpdateSpec =
        serde_json::from_str(r#"{"name":"www","address":"10.9.0.1","port":443}"#).unwrap();
    assert_eq!(u.validate("web").unwrap().name, "www");
    assert!(serde_json::from_str::<VipUpdateSpec>(
        r#"{"address":"10.9.0.1","port":443,"backends":[]}"#
    )
    .is_err());
}

#[test]
fn backend_keys_parse() {
    assert_eq!(
        parse_backend_key("10.2.0.1:80").unwrap(),
        "10.2.0.1:80".parse().unwrap()
    );
    for bad in ["10.2.0.1", "10.2.0.1:x", "h:80", "10.2.0.1:70000"] {
        assert_eq!(field_of(parse_backend_key(bad)), "backend", "{bad}");
    }
}

#[test]
fn stored_checks_round_trip_through_json() {
    let c = HealthCheckSpec {
        kind: CheckType::Http,
        path: Some("/healthz".into()),
        port: Some(8081),
        interval_ms: Some(2500),
        timeout_ms: None,
        rise: None,
        fall: Some(1),
    }
    .validate()
    .unwrap();
    let text = serde_json::to_string(&c).unwrap();
    assert_eq!(serde_json::from_str::<CheckDef>(&text).unwrap(), c);
    assert!(text.contains(r#""type":"http""#), "{text}");
    assert_eq!(c.timeout_ms, DEFAULT_TIMEOUT_MS);
    assert_eq!(c.rise, DEFAULT_RISE);
}
