//! The engine binary's command line: `--check` accepts a good config and
//! names the key at fault in a bad one.

use patronus_e2e::engine::check_config;
use patronus_e2e::topology::router_config;
use patronus_e2e::TempDir;

#[test]
fn check_accepts_the_router_config() {
    let dir = TempDir::new("check-ok");
    let cfg = dir.join("ok.toml");
    std::fs::write(&cfg, router_config("")).unwrap();
    let out = check_config(&cfg);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("config OK"), "{stdout}");
}

#[test]
fn check_names_the_bad_key() {
    let dir = TempDir::new("check-bad");
    let cfg = dir.join("bad.toml");
    let extra = "\n[[route]]\nprefix = \"0.0.0.0/0\"\nvia = \"not-an-address\"\n";
    std::fs::write(&cfg, router_config(extra)).unwrap();
    let out = check_config(&cfg);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.status.code(), Some(2), "{text}");
    assert!(
        text.contains("route[0].via"),
        "error should name route[0].via: {text}"
    );
}
