//! `patronusctl bgp ...` end to end against the real `patronus-control`
//! binary (file database): global settings, policies from a file,
//! neighbors (with RFC 8212 warnings), networks; errors exit non-zero
//! naming the field; the RIB and session state answer 503 without a
//! speaker; the state survives a restart of the control process.

mod common;

use serde_json::{json, Value};

use common::cli::{ctl, start};
use common::TempDir;

#[test]
fn bgp_from_the_command_line() {
    let tmp = TempDir::new("bgp-ctl");
    let c = start(tmp.path());
    let api = c.api.as_str();

    // Not configured yet: exit 1 naming the field.
    let r = ctl(api, &["bgp", "show"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stderr.contains("bgp"), "{}", r.stderr);
    let g = ctl(
        api,
        &[
            "--json",
            "bgp",
            "set",
            "--asn",
            "65000",
            "--router-id",
            "10.0.0.1",
        ],
    )
    .ok()
    .json();
    assert_eq!(
        g,
        json!({ "asn": 65000, "router_id": "10.0.0.1", "listen_port": 179, "enabled": true })
    );
    let text = ctl(api, &["bgp", "show"]).ok().stdout;
    assert!(
        text.contains("65000") && text.contains("10.0.0.1"),
        "{text}"
    );

    // A policy from a file (its name taken from the command line).
    let file = tmp.path().join("in.json");
    std::fs::write(
        &file,
        r#"{"terms": [{"match": {"prefix_list": [{"action": "permit", "prefix": "10.0.0.0/8", "le": 24}]},
            "then": "accept"}]}"#,
    )
    .unwrap();
    let p = ctl(api, &["bgp", "policy", "set", "in", file.to_str().unwrap()])
        .ok()
        .json();
    assert_eq!(p["name"], "in");
    let list = ctl(api, &["bgp", "policy", "list"]).ok().stdout;
    assert!(list.lines().any(|l| l.starts_with("in ")), "{list}");
    let shown = ctl(api, &["bgp", "policy", "show", "in"]).ok().json();
    assert_eq!(shown, p);
    // A bad policy: exit 1, the field inside the document named.
    std::fs::write(
        &file,
        r#"{"terms": [{"match": {"prefix_list": [{"action": "permit", "prefix": "10.0.0.1/8"}]}, "then": "accept"}]}"#,
    )
    .unwrap();
    let r = ctl(api, &["bgp", "policy", "set", "in", file.to_str().unwrap()]);
    assert_eq!(r.code, 1);
    assert!(
        r.stderr.contains("terms[0].match.prefix_list[0].prefix"),
        "{}",
        r.stderr
    );

    // Neighbors: an eBGP one without export policy warns; options reach the API.
    let r = ctl(
        api,
        &[
            "bgp",
            "neighbor",
            "add",
            "192.0.2.1",
            "--remote-as",
            "65001",
            "--import",
            "in",
            "--hold",
            "30",
            "--family",
            "ipv4,ipv6",
            "--graceful-restart",
            "--passive",
            "--description",
            "transit",
        ],
    )
    .ok();
    assert!(
        r.stdout
            .contains("warning: eBGP neighbor without export_policy: RFC 8212"),
        "{}",
        r.stdout
    );
    let n = ctl(api, &["--json", "bgp", "neighbor", "show", "192.0.2.1"])
        .ok()
        .json();
    assert_eq!(n["hold_time_secs"], 30);
    assert_eq!(n["families"], json!(["ipv4-unicast", "ipv6-unicast"]));
    assert_eq!(
        (
            &n["passive"],
            &n["graceful_restart"],
            &n["import_policy"],
            &n["description"]
        ),
        (&json!(true), &json!(true), &json!("in"), &json!("transit"))
    );
    ctl(
        api,
        &[
            "bgp",
            "neighbor",
            "add",
            "2001:db8::2",
            "--remote-as",
            "65000",
        ],
    )
    .ok();
    let list = ctl(api, &["bgp", "neighbor", "list"]).ok().stdout;
    let header: Vec<&str> = list.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(&header[..3], ["ADDRESS", "REMOTE_AS", "EBGP"], "{list}");
    assert!(list.contains("2001:db8::2"), "{list}");
    assert!(
        list.contains("warning: 192.0.2.1: eBGP neighbor without export_policy"),
        "{list}"
    );

    // set: disable, drop the import policy; a bad value names the field.
    let n = ctl(
        api,
        &[
            "--json",
            "bgp",
            "neighbor",
            "set",
            "192.0.2.1",
            "--enabled",
            "false",
            "--no-import",
        ],
    )
    .ok()
    .json();
    assert_eq!(
        (&n["enabled"], &n["import_policy"]),
        (&json!(false), &Value::Null)
    );
    assert_eq!(n["hold_time_secs"], 30, "what is not given stays");
    let r = ctl(api, &["bgp", "neighbor", "set", "192.0.2.1", "--hold", "2"]);
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("hold_time_secs"), "{}", r.stderr);
    let r = ctl(api, &["bgp", "neighbor", "set", "192.0.2.1"]);
    assert_eq!(r.code, 2, "nothing to change is a usage error");
    let r = ctl(
        api,
        &[
            "bgp",
            "neighbor",
            "add",
            "192.0.2.7",
            "--remote-as",
            "65001",
            "--family",
            "vpnv4",
        ],
    );
    assert_eq!(r.code, 2);
    // The policy is in use (export is unset, import was dropped: not any more).
    ctl(
        api,
        &["bgp", "neighbor", "set", "192.0.2.1", "--export", "in"],
    )
    .ok();
    let r = ctl(api, &["bgp", "policy", "delete", "in"]);
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("192.0.2.1"), "{}", r.stderr);

    // Networks, IPv4 and IPv6.
    ctl(api, &["bgp", "network", "add", "10.1.0.0/24"]).ok();
    ctl(api, &["bgp", "network", "add", "2001:db8:1::/48"]).ok();
    let r = ctl(api, &["bgp", "network", "add", "10.1.0.0/24"]);
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("prefix"), "{}", r.stderr);
    let nets = ctl(api, &["--json", "bgp", "network", "list"]).ok().json();
    assert_eq!(
        nets,
        json!({ "networks": [{ "prefix": "10.1.0.0/24" }, { "prefix": "2001:db8:1::/48" }] })
    );
    ctl(api, &["bgp", "network", "delete", "2001:db8:1::/48"]).ok();

    // No speaker runs in this binary yet: 503, said plainly.
    for args in [
        &["bgp", "rib", "--prefix", "10.0.0.0/8"][..],
        &["bgp", "neighbor", "state", "192.0.2.1"],
    ] {
        let r = ctl(api, args);
        assert_eq!(r.code, 1, "{args:?}");
        assert!(
            r.stderr.contains("BGP speaker not running"),
            "{args:?}: {}",
            r.stderr
        );
    }

    // A restart keeps everything.
    let before = ctl(api, &["--json", "bgp", "neighbor", "list"]).ok().json();
    drop(c);
    let c = start(tmp.path());
    let api = c.api.as_str();
    assert_eq!(
        ctl(api, &["--json", "bgp", "neighbor", "list"]).ok().json(),
        before
    );
    assert_eq!(
        ctl(api, &["--json", "bgp", "network", "list"]).ok().json()["networks"],
        json!([{ "prefix": "10.1.0.0/24" }])
    );

    ctl(api, &["bgp", "neighbor", "delete", "192.0.2.1"]).ok();
    ctl(api, &["bgp", "policy", "delete", "in"]).ok();
    let r = ctl(api, &["bgp", "neighbor", "show", "192.0.2.1"]);
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("address"), "{}", r.stderr);
}
