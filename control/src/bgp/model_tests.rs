//! Validation of BGP requests on their own: defaults, bounds, and the
//! field each error names.

use super::*;

fn field_of(e: Error) -> String {
    match e {
        Error::Invalid { field, .. } => field,
        other => panic!("not an invalid-field error: {other:?}"),
    }
}

fn spec(address: &str, remote_as: u32) -> NeighborSpec {
    NeighborSpec {
        address: address.into(),
        remote_as,
        ..NeighborSpec::default()
    }
}

#[test]
fn global_defaults_and_bounds() {
    let g = GlobalSpec {
        asn: 4_200_000_000,
        router_id: "10.0.0.1".into(),
        listen_port: None,
        enabled: None,
    }
    .validate()
    .unwrap();
    assert_eq!(
        g,
        BgpGlobal {
            asn: 4_200_000_000,
            router_id: Ipv4Addr::new(10, 0, 0, 1),
            listen_port: 179,
            enabled: true
        }
    );
    for (asn, rid, port, field) in [
        (0, "10.0.0.1", None, "asn"),
        (AS_TRANS, "10.0.0.1", None, "asn"),
        (65000, "0.0.0.0", None, "router_id"),
        (65000, "2001:db8::1", None, "router_id"),
        (65000, "10.0.0.1", Some(0), "listen_port"),
    ] {
        let e = GlobalSpec {
            asn,
            router_id: rid.into(),
            listen_port: port,
            enabled: None,
        }
        .validate()
        .unwrap_err();
        assert_eq!(field_of(e), field, "{asn} {rid} {port:?}");
    }
    // The largest 4-octet AS is fine.
    assert!(GlobalSpec {
        asn: u32::MAX,
        router_id: "1.1.1.1".into(),
        listen_port: Some(1179),
        enabled: Some(false)
    }
    .validate()
    .is_ok());
}

#[test]
fn neighbor_defaults() {
    let d = spec("192.0.2.1", 65001).validate().unwrap();
    assert_eq!(
        d,
        NeighborDef {
            address: "192.0.2.1".parse().unwrap(),
            remote_as: 65001,
            description: None,
            local_address: None,
            hold_time_secs: 90,
            connect_retry_secs: 120,
            passive: false,
            families: vec![Family::Ipv4Unicast],
            graceful_restart: false,
            restart_time_secs: 120,
            import_policy: None,
            export_policy: None,
            enabled: true,
        }
    );
    let v6 = spec("2001:db8::2", 65001).validate().unwrap();
    assert_eq!(v6.families, [Family::Ipv6Unicast]);
    // Families come back sorted.
    let mut s = spec("2001:db8::2", 65001);
    s.families = Some(vec![Family::Ipv6Unicast, Family::Ipv4Unicast]);
    assert_eq!(
        s.validate().unwrap().families,
        [Family::Ipv4Unicast, Family::Ipv6Unicast]
    );
}

#[test]
fn neighbor_errors_name_the_field() {
    let cases: Vec<(NeighborSpec, &str)> = vec![
        (spec("not-an-ip", 1), "address"),
        (spec("224.0.0.5", 1), "address"),
        (spec("0.0.0.0", 1), "address"),
        (spec("fe80::1", 1), "address"),
        (spec("192.0.2.1", 0), "remote_as"),
        (spec("192.0.2.1", AS_TRANS), "remote_as"),
        (
            NeighborSpec {
                hold_time_secs: Some(2),
                ..spec("192.0.2.1", 1)
            },
            "hold_time_secs",
        ),
        (
            NeighborSpec {
                connect_retry_secs: Some(0),
                ..spec("192.0.2.1", 1)
            },
            "connect_retry_secs",
        ),
        (
            NeighborSpec {
                restart_time_secs: Some(4096),
                ..spec("192.0.2.1", 1)
            },
            "restart_time_secs",
        ),
        (
            NeighborSpec {
                local_address: Some("2001:db8::1".into()),
                ..spec("192.0.2.1", 1)
            },
            "local_address",
        ),
        (
            NeighborSpec {
                local_address: Some("192.0.2.1".into()),
                ..spec("192.0.2.1", 1)
            },
            "local_address",
        ),
        (
            NeighborSpec {
                families: Some(vec![]),
                ..spec("192.0.2.1", 1)
            },
            "families",
        ),
        (
            NeighborSpec {
                families: Some(vec![Family::Ipv4Unicast, Family::Ipv4Unicast]),
                ..spec("192.0.2.1", 1)
            },
            "families[1]",
        ),
        (
            NeighborSpec {
                description: Some("x".repeat(81)),
                ..spec("192.0.2.1", 1)
            },
            "description",
        ),
        (
            NeighborSpec {
                description: Some("a\nb".into()),
                ..spec("192.0.2.1", 1)
            },
            "description",
        ),
        (
            NeighborSpec {
                import_policy: Some("bad name".into()),
                ..spec("192.0.2.1", 1)
            },
            "import_policy",
        ),
        (
            NeighborSpec {
                export_policy: Some(String::new()),
                ..spec("192.0.2.1", 1)
            },
            "export_policy",
        ),
    ];
    for (s, field) in cases {
        let e = s.validate().unwrap_err();
        assert_eq!(field_of(e), field, "{s:?}");
    }
    // The bounds themselves are fine.
    for hold in [0, 3, 65535] {
        let s = NeighborSpec {
            hold_time_secs: Some(hold),
            restart_time_secs: Some(4095),
            ..spec("192.0.2.1", 1)
        };
        assert!(s.validate().is_ok(), "{hold}");
    }
}

#[test]
fn patch_keeps_absent_fields_and_clears_nulls() {
    let mut s = spec("192.0.2.1", 65001);
    s.description = Some("transit".into());
    s.import_policy = Some("in".into());
    s.export_policy = Some("out".into());
    let cur = s.validate().unwrap();
    let patch: NeighborPatch =
        serde_json::from_str(r#"{"description": null, "import_policy": null, "enabled": false}"#)
            .unwrap();
    let new = patch.apply(&cur).unwrap();
    assert_eq!(new.description, None);
    assert_eq!(new.import_policy, None);
    assert_eq!(new.export_policy.as_deref(), Some("out"), "absent: kept");
    assert!(!new.enabled);
    assert_eq!(
        NeighborDef {
            description: Some("transit".into()),
            import_policy: Some("in".into()),
            enabled: true,
            ..new.clone()
        },
        cur
    );
    // The result is validated as a whole.
    let bad: NeighborPatch = serde_json::from_str(r#"{"hold_time_secs": 1}"#).unwrap();
    assert_eq!(field_of(bad.apply(&cur).unwrap_err()), "hold_time_secs");
    // The address is not a patchable field.
    assert!(serde_json::from_str::<NeighborPatch>(r#"{"address": "192.0.2.9"}"#).is_err());
}

#[test]
fn rfc8212_warnings_for_ebgp_without_policy() {
    let d = spec("192.0.2.1", 65001).validate().unwrap();
    let ebgp = Neighbor {
        def: d.clone(),
        local_as: Some(65000),
    };
    assert_eq!(ebgp.ebgp(), Some(true));
    let w = ebgp.warnings();
    assert_eq!(w.len(), 2, "{w:?}");
    assert!(w.iter().all(|m| m.contains("RFC 8212")), "{w:?}");
    assert!(w[0].contains("import_policy") && w[1].contains("export_policy"));

    let with_import = Neighbor {
        def: NeighborDef {
            import_policy: Some("in".into()),
            ..d.clone()
        },
        local_as: Some(65000),
    };
    assert_eq!(with_import.warnings().len(), 1);

    let ibgp = Neighbor {
        def: d.clone(),
        local_as: Some(65001),
    };
    assert_eq!(ibgp.ebgp(), Some(false));
    assert!(ibgp.warnings().is_empty());

    let unknown = Neighbor {
        def: d,
        local_as: None,
    };
    assert_eq!(unknown.ebgp(), None);
    assert!(unknown.warnings()[0].contains("global settings"));
}

#[test]
fn prefixes_parse_without_host_bits() {
    assert_eq!(
        parse_prefix("prefix", "10.0.0.0/24").unwrap().to_string(),
        "10.0.0.0/24"
    );
    assert_eq!(
        parse_prefix("prefix", "2001:db8::/32").unwrap().to_string(),
        "2001:db8::/32"
    );
    for bad in [
        "10.0.0.1/24",
        "10.0.0.0/33",
        "10.0.0.0",
        "10.0.0.0/",
        "10.0.0.0/+8",
        "x/8",
        "2001:db8::1/32",
        "2001:db8::/129",
    ] {
        assert_eq!(field_of(parse_prefix("prefix", bad).unwrap_err()), "prefix");
    }
    let e = parse_prefix("prefix", "10.0.0.1/24").unwrap_err();
    assert!(e.to_string().contains("10.0.0.0/24"), "{e}");
}

#[test]
fn policies_must_compile_and_match_their_path() {
    let ok: PolicyConfig = serde_json::from_str(
        r#"{"name": "in", "terms": [{"match": {"prefix_list": [{"action": "permit",
            "prefix": "10.0.0.0/8", "le": 24}]}, "then": "accept"}]}"#,
    )
    .unwrap();
    let canonical = validate_policy("in", &ok).unwrap();
    assert_eq!(canonical.name, "in");
    assert_eq!(validate_policy("in", &canonical).unwrap(), canonical);
    assert_eq!(field_of(validate_policy("other", &ok).unwrap_err()), "name");
    assert_eq!(
        field_of(validate_policy("bad/name", &ok).unwrap_err()),
        "name"
    );
    let bad: PolicyConfig = serde_json::from_str(
        r#"{"name": "in", "terms": [{"match": {"prefix_list": [{"action": "permit",
            "prefix": "10.0.0.1/8"}]}, "then": "accept"}]}"#,
    )
    .unwrap();
    assert_eq!(
        field_of(validate_policy("in", &bad).unwrap_err()),
        "terms[0].match.prefix_list[0].prefix"
    );
}
