//! `patronusctl model ...` end to end against the real `patronus-control`
//! binary: upload the shipped model and a variant, list, show, promote
//! (model.bin in the runtime directory carries the file, the metrics show
//! `patronus_model_active_info`), rollback, delete refused while active,
//! a bad file refused with the parser's message, and a restart that
//! re-publishes the active model.

mod common;

use std::path::Path;

use common::cli::{ctl_input, start_logged};
use common::TempDir;

fn metrics(url: &str) -> String {
    ureq::get(url).call().unwrap().into_string().unwrap()
}

fn shipped_path() -> String {
    concat!(env!("CARGO_MANIFEST_DIR"), "/../models/flow-mlp.bin").to_owned()
}

/// The payload of model.bin, by its SHA-256 (`none` when empty).
fn pushed(dir: &Path) -> String {
    let bytes = std::fs::read(dir.join("shm").join(patronus_shm::MODEL_FILE)).unwrap();
    let f = patronus_shm::decode_model_file(&bytes).unwrap();
    if f.payload.is_empty() {
        "none".into()
    } else {
        patronus_ml::model::sha256_hex(f.payload).unwrap()
    }
}

#[test]
fn model_commands_against_the_control_binary() {
    let dir = TempDir::new("models-ctl");
    let log = dir.path().join("control.log");
    let c = start_logged(dir.path(), &log);
    assert_eq!(pushed(dir.path()), "none", "no model at first start");

    let up = ctl_input(
        &c.api,
        &[
            "--json",
            "model",
            "upload",
            &shipped_path(),
            "--name",
            "flow-v1",
        ],
        None,
    )
    .ok();
    let first = up.json();
    let a = first["id"].as_i64().unwrap().to_string();
    let sha_a = first["sha256"].as_str().unwrap().to_owned();
    assert_eq!(first["name"], "flow-v1");

    // A second model: one bias changed.
    let mut m = patronus_ml::model::from_bytes(&std::fs::read(shipped_path()).unwrap()).unwrap();
    m.layers[1].b[0] -= 0.5;
    let variant = patronus_ml::model::to_bytes(&m);
    let path_b = dir.path().join("variant.bin");
    std::fs::write(&path_b, &variant).unwrap();
    let b_entry = ctl_input(
        &c.api,
        &["--json", "model", "upload", path_b.to_str().unwrap()],
        None,
    )
    .ok()
    .json();
    let b = b_entry["id"].as_i64().unwrap().to_string();
    let sha_b = b_entry["sha256"].as_str().unwrap().to_owned();

    let list = ctl_input(&c.api, &["model", "list"], None).ok().stdout;
    assert!(
        list.contains("SHA256") && list.contains(&sha_a) && list.contains(&sha_b),
        "{list}"
    );
    let shown = ctl_input(&c.api, &["model", "show", &a], None).ok().stdout;
    assert!(
        shown.contains("flow-v1") && shown.contains("classes"),
        "{shown}"
    );

    ctl_input(&c.api, &["model", "promote", &a], None).ok();
    // The actor answers, then publishes: a second request queues behind it.
    ctl_input(&c.api, &["model", "list"], None).ok();
    assert_eq!(pushed(dir.path()), sha_a);
    ctl_input(&c.api, &["model", "promote", &b], None).ok();
    ctl_input(&c.api, &["model", "list"], None).ok();
    assert_eq!(pushed(dir.path()), sha_b);
    let text = metrics(&c.metrics);
    let want = format!("patronus_model_active_info{{sha256=\"{sha_b}\",version=\"2\"}} 1");
    assert!(text.contains(&want), "{text}");

    let r = ctl_input(&c.api, &["model", "delete", &b], None);
    assert_ne!(r.code, 0);
    assert!(r.stderr.contains("active"), "{}", r.stderr);

    let r = ctl_input(&c.api, &["model", "rollback"], None).ok();
    assert!(
        r.stdout.contains(&format!("active: model {a}")),
        "{}",
        r.stdout
    );
    ctl_input(&c.api, &["model", "list"], None).ok();
    assert_eq!(pushed(dir.path()), sha_a);
    ctl_input(&c.api, &["model", "delete", &b], None).ok();

    let bad = dir.path().join("bad.bin");
    std::fs::write(
        &bad,
        b"PTRNSMLP but nothing else of a model file, not even a digest",
    )
    .unwrap();
    let r = ctl_input(&c.api, &["model", "upload", bad.to_str().unwrap()], None);
    assert_ne!(r.code, 0);
    assert!(r.stderr.contains("not a valid model file"), "{}", r.stderr);
    let r = ctl_input(&c.api, &["model", "promote", "x"], None);
    assert_ne!(r.code, 0);
    assert!(r.stderr.contains("not a model id"), "{}", r.stderr);

    // A restart with model.bin gone writes it again.
    drop(c);
    std::fs::remove_file(dir.path().join("shm").join(patronus_shm::MODEL_FILE)).unwrap();
    let c = start_logged(dir.path(), &log);
    assert_eq!(pushed(dir.path()), sha_a);
    let text = metrics(&c.metrics);
    assert!(
        text.contains(&format!("sha256=\"{sha_a}\",version=\"1\"}} 1")),
        "{text}"
    );
}
