//! `patronusctl` end to end: the real API (in-memory store) served on an
//! ephemeral localhost port from a background runtime, and the built binary
//! run against it, checking output, JSON and exit codes.

mod common;

use std::net::SocketAddr;
use std::process::{Command, Output};
use std::sync::mpsc;

use serde_json::Value;

use common::{TempDir, TOKEN};
use patronus_control::auth::ApiToken;
use patronus_control::state::spawn_store;
use patronus_control::store::Store;
use patronus_control::{app, AppState};

/// Starts the API on 127.0.0.1:0 in a background thread (it lives until the
/// test process exits) and returns its base URL.
fn serve_api() -> String {
    let (tx, rx) = mpsc::channel::<SocketAddr>();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async move {
            let store = spawn_store(Store::open_in_memory().expect("store")).expect("actor");
            let router = app(AppState {
                store,
                token: ApiToken::new(TOKEN).unwrap(),
                engine: None,
                bgp: std::sync::Arc::new(patronus_control::bgp::status::NoSpeaker),
            });
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("bind");
            tx.send(listener.local_addr().unwrap()).unwrap();
            axum::serve(listener, router).await.expect("serve");
        });
    });
    format!("http://{}", rx.recv().expect("API address"))
}

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {}", self.stdout))
    }
    fn ok(self) -> Run {
        assert_eq!(
            self.code, 0,
            "stderr: {}\nstdout: {}",
            self.stderr, self.stdout
        );
        self
    }
}

/// Runs `patronusctl --api API --token TOKEN args...` with a clean environment.
fn ctl(api: &str, args: &[&str]) -> Run {
    ctl_with(&["--api", api, "--token", TOKEN], args)
}

fn ctl_with(global: &[&str], args: &[&str]) -> Run {
    let out: Output = Command::new(env!("CARGO_BIN_EXE_patronusctl"))
        .args(global)
        .args(args)
        .env_remove("PATRONUS_API")
        .env_remove("PATRONUS_TOKEN")
        .output()
        .expect("run patronusctl");
    Run {
        code: out.status.code().expect("exited, not killed"),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// The ids and prefixes `route list --json` reports.
fn route_prefixes(api: &str) -> Vec<(i64, String)> {
    let v = ctl(api, &["route", "list", "--json"]).ok().json();
    v["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|r| {
            (
                r["id"].as_i64().unwrap(),
                r["prefix"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[test]
fn routes_add_list_delete() {
    let api = serve_api();
    let r = ctl(&api, &["interface", "add", "wan0", "10.2.0.1/24"]).ok();
    assert!(
        r.stdout.contains("wan0") && r.stdout.contains("10.2.0.1/24"),
        "{}",
        r.stdout
    );

    ctl(&api, &["route", "add", "0.0.0.0/0", "via", "10.2.0.254"]).ok();
    ctl(
        &api,
        &[
            "route",
            "add",
            "10.8.0.0/16",
            "via",
            "10.2.0.5",
            "via",
            "10.2.0.6",
        ],
    )
    .ok();
    let bh = ctl(
        &api,
        &["--json", "route", "add", "192.0.2.0/24", "blackhole"],
    )
    .ok()
    .json();
    assert_eq!(bh["blackhole"], Value::Bool(true));
    let bh_id = bh["id"].as_i64().expect("created route has an id");

    // The table: a header, one aligned line per route, next hops joined.
    let table = ctl(&api, &["route", "list"]).ok().stdout;
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 4, "{table}");
    assert!(
        lines[0].starts_with("ID") && lines[0].contains("PREFIX"),
        "{table}"
    );
    let prefix_col = lines[0].find("PREFIX").unwrap();
    for (line, prefix) in lines[1..]
        .iter()
        .zip(["0.0.0.0/0", "10.8.0.0/16", "192.0.2.0/24"])
    {
        assert_eq!(line.find(prefix), Some(prefix_col), "{table}");
    }
    assert!(lines[2].contains("10.2.0.5, 10.2.0.6"), "{table}");
    assert!(!lines[0].contains("ORG"), "org column is hidden: {table}");

    // The JSON is the API's own list.
    let listed = route_prefixes(&api);
    let prefixes: Vec<&str> = listed.iter().map(|(_, p)| p.as_str()).collect();
    assert_eq!(prefixes, ["0.0.0.0/0", "10.8.0.0/16", "192.0.2.0/24"]);

    // Delete by prefix, then by id.
    let r = ctl(&api, &["route", "del", "10.8.0.0/16"]).ok();
    assert!(r.stdout.contains("deleted route"), "{}", r.stdout);
    ctl(&api, &["route", "del", &bh_id.to_string()]).ok();
    let left: Vec<String> = route_prefixes(&api).into_iter().map(|(_, p)| p).collect();
    assert_eq!(left, ["0.0.0.0/0"]);

    // A prefix no route has is reported as not found.
    let r = ctl(&api, &["route", "del", "10.8.0.0/16"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stderr.contains("not_found (prefix)"), "{}", r.stderr);
}

#[test]
fn route_replace_from_file_and_interfaces() {
    let api = serve_api();
    ctl(
        &api,
        &["interface", "add", "lan0", "10.1.0.1/24", "--vlan", "7"],
    )
    .ok();
    let ifs = ctl(&api, &["interface", "list", "--json"]).ok().json();
    assert_eq!(ifs["items"][0]["vlan"], 7);

    let dir = TempDir::new("ctl");
    let file = dir.path().join("routes.json");
    std::fs::write(
        &file,
        r#"[{"prefix": "10.9.0.0/16", "next_hops": [{"via": "10.1.0.9"}]},
            {"prefix": "10.10.0.0/16", "blackhole": true}]"#,
    )
    .unwrap();
    let r = ctl(&api, &["route", "replace", file.to_str().unwrap()]).ok();
    assert!(r.stdout.contains("10.10.0.0/16"), "{}", r.stdout);
    let prefixes: Vec<String> = route_prefixes(&api).into_iter().map(|(_, p)| p).collect();
    assert_eq!(prefixes, ["10.9.0.0/16", "10.10.0.0/16"]);

    // A file that is not JSON is a usage error and changes nothing.
    std::fs::write(&file, "not json").unwrap();
    let r = ctl(&api, &["route", "replace", file.to_str().unwrap()]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert_eq!(route_prefixes(&api).len(), 2);

    // Interface delete by address.
    std::fs::write(&file, r#"{"routes": []}"#).unwrap();
    ctl(&api, &["route", "replace", file.to_str().unwrap()]).ok();
    ctl(&api, &["interface", "del", "10.1.0.1/24"]).ok();
    let ifs = ctl(&api, &["interface", "list", "--json"]).ok().json();
    assert_eq!(ifs["items"], serde_json::json!([]));
}

#[test]
fn orgs_and_org_scoping() {
    let api = serve_api();
    ctl(&api, &["org", "add", "acme"]).ok();
    let orgs = ctl(&api, &["org", "list"]).ok().stdout;
    assert!(orgs.lines().any(|l| l.trim() == "acme"), "{orgs}");
    ctl(
        &api,
        &["--org", "acme", "interface", "add", "lan0", "10.5.0.1/24"],
    )
    .ok();
    let acme = ctl(&api, &["--org", "acme", "interface", "list", "--json"])
        .ok()
        .json();
    assert_eq!(acme["items"].as_array().unwrap().len(), 1);
    let default = ctl(&api, &["interface", "list", "--json"]).ok().json();
    assert_eq!(default["items"].as_array().unwrap().len(), 0);
    // Not empty: the API refuses, and the CLI says why.
    let r = ctl(&api, &["org", "del", "acme"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    ctl(&api, &["--org", "acme", "interface", "del", "lan0"]).ok();
    ctl(&api, &["org", "del", "acme"]).ok();
    let r = ctl(&api, &["--org", "acme", "route", "list"]);
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("not_found (org)"), "{}", r.stderr);
}

#[test]
fn status_and_stats() {
    let api = serve_api();
    let s = ctl(&api, &["status", "--json"]).ok().json();
    let gen0 = s["generation"].as_u64().expect("generation");
    ctl(&api, &["interface", "add", "lan0", "10.1.0.1/24"]).ok();
    let text = ctl(&api, &["status"]).ok().stdout;
    assert!(
        text.lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>()
                == ["generation", &(gen0 + 1).to_string()]),
        "{text}"
    );
    assert!(
        text.contains("engine:") && text.contains("attached"),
        "{text}"
    );

    let stats = ctl(&api, &["stats"]).ok().stdout;
    assert!(stats.contains("not attached"), "{stats}");
    let stats = ctl(&api, &["stats", "--json"]).ok().json();
    assert_eq!(stats["attached"], Value::Bool(false));
}

#[test]
fn invalid_prefix_names_the_field() {
    let api = serve_api();
    let r = ctl(&api, &["route", "add", "10.0.0.1/8", "blackhole"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stderr.contains("invalid_field (prefix)"), "{}", r.stderr);
    assert!(r.stdout.is_empty());
    let r = ctl(&api, &["route", "add", "10.0.0.0/8", "via", "nonsense"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stderr.contains("next_hops[0].via"), "{}", r.stderr);
}

#[test]
fn usage_errors_exit_2() {
    let api = serve_api();
    for args in [
        &["route", "add", "10.0.0.0/8", "10.2.0.1"][..],
        &["route", "add", "10.0.0.0/8", "via"],
        &["route", "del", "lan0"],
        &["route", "frobnicate"],
        &["route", "replace", "/nonexistent/routes.json"],
    ] {
        let r = ctl(&api, args);
        assert_eq!(r.code, 2, "{args:?}: {}", r.stderr);
        assert!(!r.stderr.is_empty());
    }
    let r = ctl_with(&["--api", "ftp://x", "--token", TOKEN], &["status"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
}

#[test]
fn wrong_or_missing_token_is_401() {
    let api = serve_api();
    let r = ctl_with(
        &["--api", &api, "--token", "wrong-token-0000000000"],
        &["route", "list"],
    );
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stderr.contains("401"), "{}", r.stderr);
    assert!(r.stderr.contains("unauthorized"), "{}", r.stderr);
    assert!(
        r.stderr.contains("hint: give the API token"),
        "{}",
        r.stderr
    );

    // A token file and PATRONUS_TOKEN work too.
    let dir = TempDir::new("ctl-token");
    let file = dir.path().join("api-token");
    std::fs::write(&file, format!("{TOKEN}\n")).unwrap();
    ctl_with(
        &["--api", &api, "--token-file", file.to_str().unwrap()],
        &["status"],
    )
    .ok();
    let out = Command::new(env!("CARGO_BIN_EXE_patronusctl"))
        .args(["status", "--json"])
        .env("PATRONUS_API", &api)
        .env("PATRONUS_TOKEN", TOKEN)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn unreachable_api_exits_3() {
    // A port that was just free: nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let r = ctl(&format!("http://127.0.0.1:{port}"), &["status"]);
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert!(r.stderr.contains("cannot connect"), "{}", r.stderr);
}

#[test]
fn non_json_answer_is_an_api_error_not_a_panic() {
    // A tiny server that answers every request with HTML.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        use std::io::{Read, Write};
        for mut conn in listener.incoming().flatten() {
            let mut buf = [0u8; 4096];
            let _ = conn.read(&mut buf);
            let body = "<html>hello</html>";
            let _ = write!(
                conn,
                "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    let r = ctl(&format!("http://{addr}"), &["route", "list"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stderr.contains("bad_response"), "{}", r.stderr);
    assert!(!r.stderr.contains("panicked"), "{}", r.stderr);
}

#[test]
fn route_load_from_a_text_file_in_chunks() {
    let api = serve_api();
    ctl(&api, &["interface", "add", "wan0", "10.2.0.1/24"]).ok();
    let dir = TempDir::new("ctl-load");
    let file = dir.path().join("routes.txt");
    let mut text = String::from("# test table\n0.0.0.0/0 via 10.2.0.254\n\n");
    for i in 0..250u32 {
        text.push_str(&format!(
            "10.{}.{}.0/24 via 10.2.0.7,10.2.0.8\n",
            i / 256,
            i % 256
        ));
    }
    text.push_str("192.0.2.0/24 blackhole   # drop\n");
    std::fs::write(&file, &text).unwrap();

    // 252 routes in chunks of 100: three bulk requests.
    let r = ctl(
        &api,
        &[
            "--json",
            "route",
            "load",
            file.to_str().unwrap(),
            "--chunk",
            "100",
        ],
    )
    .ok()
    .json();
    assert_eq!(
        (r["added"].as_u64(), r["requests"].as_u64()),
        (Some(252), Some(3))
    );
    assert!(r["generation"].as_u64().is_some());
    let routes = ctl(&api, &["route", "list", "--json"]).ok().json();
    let items = routes["items"].as_array().unwrap();
    assert_eq!(items.len(), 252);
    assert_eq!(items[1]["next_hops"].as_array().unwrap().len(), 2);
    assert_eq!(items[251]["blackhole"], true);

    // A bad line: named, exit 2, nothing sent.
    let bad = dir.path().join("bad.txt");
    std::fs::write(
        &bad,
        "172.16.0.0/16 via 10.2.0.9\n# fine so far\n172.17.0.0/16 via\n",
    )
    .unwrap();
    let r = ctl(&api, &["route", "load", bad.to_str().unwrap()]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("line 3"), "{}", r.stderr);
    assert_eq!(route_prefixes(&api).len(), 252);

    // A line the API refuses (its prefix exists): exit 1 naming the line;
    // that request changed nothing.
    std::fs::write(&bad, "172.16.0.0/16 via 10.2.0.9\n0.0.0.0/0 blackhole\n").unwrap();
    let r = ctl(&api, &["route", "load", bad.to_str().unwrap()]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stderr.contains("line 2"), "{}", r.stderr);
    assert_eq!(route_prefixes(&api).len(), 252);

    // Plain output.
    std::fs::write(&bad, "172.16.0.0/16 via 10.2.0.9\n").unwrap();
    let r = ctl(&api, &["route", "load", bad.to_str().unwrap()]).ok();
    assert!(
        r.stdout.starts_with("loaded 1 routes in 1 requests"),
        "{}",
        r.stdout
    );
}
