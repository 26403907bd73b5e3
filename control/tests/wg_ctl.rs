//! `patronusctl wg ...` end to end against the real `patronus-control`
//! binary (file database, runtime directory, trace logging), and the
//! secret-leak check: the tunnel's private key and the peer's preshared
//! key appear nowhere in the process's logs, in any API response or in
//! patronusctl's output, while they do reach the database and wg.bin
//! (both 0600), which shows the search looks at the right bytes.

mod common;

use std::os::unix::fs::PermissionsExt;

use base64::Engine as _;

use common::cli::{ctl_input, start_with};
use common::{TempDir, TOKEN};

const PRIVATE: &str = "dwdtCnMYpX08FsFyUbJmRd9ML4frwJkqsXf7pR25LCo=";
const PUBLIC: &str = "hSDwCYkwp1R0i33ctD73Wg2/Og0mOBr066SpjqqbTmo=";
const BOB: &str = "3p7bfXt9wbTTW2HC7OQ1Nz+DQ8hbeGdNrfx+FG+IK08=";
const PSK: &str = "c2VjcmV0LXByZXNoYXJlZC1rZXktMzItYnl0ZXMhISE=";

fn get(url: &str) -> String {
    ureq::get(url)
        .set("Authorization", &format!("Bearer {TOKEN}"))
        .call()
        .map(|r| r.into_string().unwrap())
        .unwrap_or_else(|e| match e {
            ureq::Error::Status(_, r) => r.into_string().unwrap(),
            other => panic!("GET {url}: {other}"),
        })
}

/// Every form a key could leak in: base64, hex, and the bytes' Debug.
fn forms(b64: &str) -> Vec<String> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .unwrap();
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    let debug = format!("{:?}", &bytes[..8]);
    let debug = debug.trim_end_matches(']').to_owned();
    vec![
        b64.to_owned(),
        b64[..16].to_owned(),
        hex[..24].to_owned(),
        debug,
    ]
}

fn assert_no_secret(what: &str, text: &str) {
    for secret in [PRIVATE, PSK] {
        for form in forms(secret) {
            assert!(
                !text.contains(&form),
                "{what} contains a secret ({form}):\n{text}"
            );
        }
    }
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn wg_commands_end_to_end_and_no_secret_leaks() {
    let dir = TempDir::new("wg-ctl");
    std::fs::create_dir_all(dir.path()).unwrap();
    let log = dir.path().join("control.log");
    // Everything the process can log, to look for keys in it.
    let c = start_with(dir.path(), &log, &[("RUST_LOG", "trace")]);
    let api = c.api.as_str();
    let seen = std::cell::RefCell::new(String::new());
    let run = |args: &[&str], stdin: Option<&str>| {
        let r = ctl_input(api, args, stdin);
        seen.borrow_mut().push_str(&r.stdout);
        seen.borrow_mut().push_str(&r.stderr);
        r
    };

    // Keys come from files or stdin, never from argv.
    let key_file = dir.path().join("wg0.key");
    std::fs::write(&key_file, format!("{PRIVATE}\n")).unwrap();
    let made = run(
        &[
            "--json",
            "wg",
            "tunnel",
            "add",
            "wg0",
            "--listen-port",
            "51820",
            "--private-key-file",
            key_file.to_str().unwrap(),
            "--address",
            "10.99.0.1/24",
        ],
        None,
    )
    .ok()
    .json();
    assert_eq!(made["public_key"], PUBLIC);
    let gen = run(
        &[
            "--json",
            "wg",
            "tunnel",
            "add",
            "wg1",
            "--listen-port",
            "51821",
        ],
        None,
    )
    .ok()
    .json();
    let gen_public = gen["public_key"].as_str().unwrap().to_owned();
    assert_eq!(gen_public.len(), 44);

    let shown = run(&["wg", "tunnel", "show", "wg0"], None).ok().stdout;
    assert!(shown.contains(PUBLIC), "{shown}");
    let listed = run(&["wg", "tunnel", "list"], None).ok().stdout;
    assert!(
        listed.contains("wg0") && listed.contains("wg1") && listed.contains(&gen_public),
        "{listed}"
    );

    let peer = run(
        &[
            "--json",
            "wg",
            "peer",
            "add",
            "wg0",
            BOB,
            "--endpoint",
            "192.0.2.2:51820",
            "--allowed-ip",
            "10.2.0.0/16",
            "--allowed-ip",
            "10.3.0.0/16",
            "--keepalive",
            "25",
            "--preshared-key-file",
            "-",
        ],
        Some(PSK),
    )
    .ok()
    .json();
    assert_eq!(peer["preshared_key"], true);
    assert_eq!(
        peer["allowed_ips"],
        serde_json::json!(["10.2.0.0/16", "10.3.0.0/16"])
    );
    let peers = run(&["wg", "peer", "list", "wg0"], None).ok().stdout;
    assert!(
        peers.contains(BOB) && peers.contains("10.3.0.0/16"),
        "{peers}"
    );

    // Errors: a bad key (exit 1-ish with the field named), an unknown tunnel.
    let bad = run(&["wg", "peer", "add", "wg0", "nope"], None);
    assert_ne!(bad.code, 0);
    assert!(bad.stderr.contains("public_key"), "{}", bad.stderr);
    let missing = run(&["wg", "tunnel", "show", "nope"], None);
    assert_ne!(missing.code, 0);
    assert!(missing.stderr.contains("tunnel"), "{}", missing.stderr);
    // A bad private key given by file is refused without quoting it.
    let bad_key = dir.path().join("bad.key");
    std::fs::write(&bad_key, "c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0!!=").unwrap();
    let r = run(
        &[
            "wg",
            "tunnel",
            "add",
            "wg2",
            "--listen-port",
            "51822",
            "--private-key-file",
            bad_key.to_str().unwrap(),
        ],
        None,
    );
    assert_ne!(r.code, 0);
    assert!(r.stderr.contains("private_key"), "{}", r.stderr);
    assert!(!r.stderr.contains("c2VjcmV0c2Vj"), "{}", r.stderr);

    // A route into the tunnel, through the API, holds the tunnel.
    let route = ureq::post(&format!("{api}/api/v1/routes"))
        .set("Authorization", &format!("Bearer {TOKEN}"))
        .send_json(serde_json::json!({ "prefix": "10.2.0.0/16", "tunnel": "wg0" }))
        .unwrap()
        .into_string()
        .unwrap();
    seen.borrow_mut().push_str(&route);
    let held = run(&["wg", "tunnel", "del", "wg0"], None);
    assert_ne!(held.code, 0);
    assert!(held.stderr.contains("10.2.0.0/16"), "{}", held.stderr);

    // Every API response that could show tunnel state.
    for path in [
        "/api/v1/wg/tunnels",
        "/api/v1/wg/tunnels/wg0",
        "/api/v1/wg/tunnels/wg0/peers",
        &format!("/api/v1/wg/tunnels/wg0/peers/{}", peer["id"]),
        "/api/v1/routes",
        "/api/v1/status",
        "/api/v1/openapi.json",
    ] {
        seen.borrow_mut().push_str(&get(&format!("{api}{path}")));
    }
    seen.borrow_mut().push_str(&get(&c.metrics));

    // Peer deletion by public key, tunnel deletion.
    run(&["wg", "peer", "del", "wg0", BOB], None).ok();
    assert!(!run(&["wg", "peer", "list", "wg0"], None)
        .ok()
        .stdout
        .contains(BOB));
    run(&["wg", "tunnel", "del", "wg1"], None).ok();

    // The secrets are where they belong (so the search below is not
    // vacuous): in the 0600 database and the 0600 wg.bin.
    let b64 = base64::engine::general_purpose::STANDARD;
    let private = b64.decode(PRIVATE).unwrap();
    let wg_bin = dir.path().join("shm/wg.bin");
    assert!(
        contains(&std::fs::read(&wg_bin).unwrap(), &private),
        "wg.bin carries the key"
    );
    let mut db = Vec::new();
    for suffix in ["", "-wal"] {
        if let Ok(b) = std::fs::read(dir.path().join(format!("control.db{suffix}"))) {
            db.extend(b);
        }
    }
    assert!(contains(&db, &private), "the database holds the key");
    for p in [
        "control.db",
        "control.db-wal",
        "control.db-shm",
        "shm/wg.bin",
    ] {
        let mode = std::fs::metadata(dir.path().join(p))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{p} is {mode:o}");
    }

    drop(c);
    let logs = std::fs::read_to_string(&log).unwrap()
        + &std::fs::read_to_string(log.with_extension("out")).unwrap();
    assert!(
        logs.contains("serving /api/v1"),
        "the log was captured: {logs}"
    );
    assert!(
        logs.contains("TRACE") || logs.contains("DEBUG"),
        "trace logging was on"
    );
    assert_no_secret("the control process's log", &logs);
    let seen = seen.into_inner();
    assert_no_secret("patronusctl output and API responses", &seen);
    // The public key is shown, so the responses were looked at.
    assert!(seen.contains(PUBLIC));
}
