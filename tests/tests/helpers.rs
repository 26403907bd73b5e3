//! The test machinery itself: namespaces and their processes disappear even
//! when a test panics, and veth pairs connect namespaces.

use std::time::Duration;

use patronus_e2e::netns::veth;
use patronus_e2e::{Netns, TempDir};

fn netns_exists(name: &str) -> bool {
    let out = patronus_e2e::cmd::run_args("ip", &["netns", "list"]);
    out.lines()
        .any(|l| l.split_whitespace().next() == Some(name))
}

#[test]
fn namespace_and_processes_removed_on_panic() {
    patronus_e2e::require_root();
    let (tx, rx) = std::sync::mpsc::channel();
    let r = std::thread::spawn(move || {
        let dir = TempDir::new("panic");
        let ns = Netns::new("p");
        let p = ns.spawn("sleep", &["600"], dir.path(), "sleep");
        tx.send((ns.name().to_string(), p.pid())).unwrap();
        std::mem::forget(p); // only the namespace guard may clean up
        panic!("deliberate panic inside a test with a namespace");
    })
    .join();
    assert!(r.is_err(), "the thread should have panicked");
    let (name, pid) = rx.recv().unwrap();
    assert!(!netns_exists(&name), "namespace {name} left behind");
    // The sleep was killed with the namespace; reap-less, so check state.
    std::thread::sleep(Duration::from_millis(100));
    let state = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let alive = state
        .rsplit(')')
        .next()
        .and_then(|s| s.split_whitespace().next())
        .is_some_and(|st| st != "Z" && st != "X");
    assert!(!alive, "process {pid} survived its namespace: {state}");
}

#[test]
fn veth_connects_two_namespaces() {
    patronus_e2e::require_root();
    let a = Netns::new("va");
    let b = Netns::new("vb");
    veth(&a, "eth0", &b, "eth0");
    a.addr_add("eth0", "192.168.77.1/24");
    b.addr_add("eth0", "192.168.77.2/24");
    let out = a.exec_output("ping", &["-n", "-c", "1", "-W", "2", "192.168.77.2"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert_ne!(a.mac("eth0"), b.mac("eth0"));
    let name = a.name().to_string();
    drop(a);
    assert!(!netns_exists(&name));
}
