//! Unit tests of check validation and the rise/fall state machine (fake clock).

use super::*;

/// A fake clock: a fixed origin plus seconds.
struct Clock(Instant);

impl Clock {
    fn at(&self, secs: u64) -> Instant {
        self.0 + Duration::from_secs(secs)
    }
}

fn clock() -> Clock {
    Clock(Instant::now())
}

#[test]
fn starts_in_initial_state() {
    let c = clock();
    let down = BackendHealth::new(Health::Down, 2, 3, c.at(0));
    assert_eq!(down.state(), Health::Down);
    assert_eq!(down.since(), c.at(0));
    let up = BackendHealth::new(Health::Up, 2, 3, c.at(5));
    assert_eq!(up.state(), Health::Up);
    assert_eq!(up.since(), c.at(5));
}

#[test]
fn rise_successes_bring_it_up() {
    let c = clock();
    let mut h = BackendHealth::new(Health::Down, 3, 2, c.at(0));
    assert_eq!(h.record(true, c.at(1)), None);
    assert_eq!(h.record(true, c.at(2)), None);
    assert_eq!(h.successes(), 2);
    let t = h.record(true, c.at(3)).expect("third success makes it Up");
    assert_eq!(
        t,
        Transition {
            to: Health::Up,
            at: c.at(3),
            run: 3
        }
    );
    assert_eq!(h.state(), Health::Up);
    assert_eq!(h.since(), c.at(3));
    // More successes: no further transitions.
    assert_eq!(h.record(true, c.at(4)), None);
    assert_eq!(h.since(), c.at(3));
}

#[test]
fn fall_failures_bring_it_down() {
    let c = clock();
    let mut h = BackendHealth::new(Health::Up, 2, 3, c.at(0));
    assert_eq!(h.record(false, c.at(1)), None);
    assert_eq!(h.record(false, c.at(2)), None);
    let t = h
        .record(false, c.at(3))
        .expect("third failure makes it Down");
    assert_eq!((t.to, t.at, t.run), (Health::Down, c.at(3), 3));
    assert_eq!(h.state(), Health::Down);
    assert_eq!(h.record(false, c.at(4)), None);
    assert_eq!(h.failures(), 4);
}

#[test]
fn failures_while_down_and_successes_while_up_change_nothing() {
    let c = clock();
    let mut h = BackendHealth::new(Health::Down, 1, 1, c.at(0));
    for s in 1..10 {
        assert_eq!(h.record(false, c.at(s)), None);
    }
    assert_eq!(h.since(), c.at(0));
    assert!(h.record(true, c.at(10)).is_some());
    for s in 11..20 {
        assert_eq!(h.record(true, c.at(s)), None);
    }
    assert_eq!(h.state(), Health::Up);
}

#[test]
fn flapping_below_thresholds_never_transitions() {
    let c = clock();
    let mut up = BackendHealth::new(Health::Up, 2, 2, c.at(0));
    let mut down = BackendHealth::new(Health::Down, 2, 2, c.at(0));
    // Alternating outcomes never build a run of 2.
    for s in 1..50u64 {
        let ok = s % 2 == 0;
        assert_eq!(up.record(ok, c.at(s)), None, "up flipped at {s}");
        assert_eq!(down.record(ok, c.at(s)), None, "down flipped at {s}");
    }
    assert_eq!(up.state(), Health::Up);
    assert_eq!(down.state(), Health::Down);
}

#[test]
fn interrupted_run_starts_over() {
    let c = clock();
    let mut h = BackendHealth::new(Health::Up, 2, 3, c.at(0));
    h.record(false, c.at(1));
    h.record(false, c.at(2));
    h.record(true, c.at(3)); // breaks the failure run
    assert_eq!(h.failures(), 0);
    assert_eq!(h.record(false, c.at(4)), None);
    assert_eq!(h.record(false, c.at(5)), None);
    assert!(h.record(false, c.at(6)).is_some());
}

#[test]
fn flapping_above_thresholds_reports_every_transition() {
    let c = clock();
    let mut h = BackendHealth::new(Health::Down, 2, 2, c.at(0));
    let pattern = [
        true, true, false, false, true, true, false, true, false, false,
    ];
    let mut seen = Vec::new();
    for (i, ok) in pattern.into_iter().enumerate() {
        if let Some(t) = h.record(ok, c.at(i as u64 + 1)) {
            seen.push((t.to, t.at));
        }
    }
    assert_eq!(
        seen,
        vec![
            (Health::Up, c.at(2)),
            (Health::Down, c.at(4)),
            (Health::Up, c.at(6)),
            (Health::Down, c.at(10)),
        ]
    );
}

#[test]
fn reconfigure_keeps_state_restarts_runs() {
    let c = clock();
    let mut h = BackendHealth::new(Health::Up, 1, 3, c.at(0));
    h.record(false, c.at(1));
    h.record(false, c.at(2));
    h.reconfigure(1, 2);
    assert_eq!(h.state(), Health::Up);
    assert_eq!(h.failures(), 0);
    assert_eq!(h.record(false, c.at(3)), None);
    assert!(h.record(false, c.at(4)).is_some());
}

#[test]
fn zero_thresholds_count_as_one() {
    let c = clock();
    let mut h = BackendHealth::new(Health::Down, 0, 0, c.at(0));
    assert!(h.record(true, c.at(1)).is_some());
    assert!(h.record(false, c.at(2)).is_some());
}

#[test]
fn defaults_validate() {
    HealthCheck::tcp().validate().unwrap();
    HealthCheck::http(HttpCheck::get("/healthz?full=1"))
        .validate()
        .unwrap();
}

#[test]
fn validation_names_the_problem() {
    let mut c = HealthCheck::tcp();
    c.interval = Duration::ZERO;
    assert_eq!(c.validate(), Err(CheckError::ZeroInterval));

    let mut c = HealthCheck::tcp();
    c.timeout = Duration::ZERO;
    assert_eq!(c.validate(), Err(CheckError::ZeroTimeout));

    let mut c = HealthCheck::tcp();
    c.timeout = c.interval + Duration::from_millis(1);
    assert!(matches!(
        c.validate(),
        Err(CheckError::TimeoutOverInterval { .. })
    ));
    let msg = c.validate().unwrap_err().to_string();
    assert!(msg.contains("timeout") && msg.contains("interval"), "{msg}");

    // timeout == interval is allowed.
    let mut c = HealthCheck::tcp();
    c.timeout = c.interval;
    c.validate().unwrap();

    let mut c = HealthCheck::tcp();
    c.rise = 0;
    assert_eq!(c.validate(), Err(CheckError::ZeroRise));
    let mut c = HealthCheck::tcp();
    c.fall = 0;
    assert_eq!(c.validate(), Err(CheckError::ZeroFall));
}

#[test]
fn bad_paths_are_rejected() {
    for path in [
        "",
        "healthz",
        "/a b",
        "/a\r\nX-Evil: 1",
        "/caf\u{e9}",
        "/a#frag",
    ] {
        let c = HealthCheck::http(HttpCheck::get(path));
        let err = c.validate().unwrap_err();
        assert!(matches!(err, CheckError::BadPath { .. }), "{path:?}: {err}");
        assert!(err.to_string().contains("path"), "{err}");
    }
    let long = format!("/{}", "a".repeat(MAX_PATH_LEN));
    assert!(HealthCheck::http(HttpCheck::get(long)).validate().is_err());
    let max = format!("/{}", "a".repeat(MAX_PATH_LEN - 1));
    HealthCheck::http(HttpCheck::get(max)).validate().unwrap();
}

#[test]
fn bad_hosts_and_status_ranges_are_rejected() {
    for host in ["", "a b", "x\r\nY: z"] {
        let mut http = HttpCheck::get("/");
        http.host = Some(host.into());
        let err = HealthCheck::http(http).validate().unwrap_err();
        assert!(matches!(err, CheckError::BadHost { .. }), "{host:?}: {err}");
    }
    let mut http = HttpCheck::get("/");
    http.host = Some("svc.example:8080".into());
    HealthCheck::http(http).validate().unwrap();

    for (lo, hi) in [(99, 200), (200, 600), (300, 200)] {
        let mut http = HttpCheck::get("/");
        http.expect = StatusRange { lo, hi };
        assert_eq!(
            HealthCheck::http(http).validate(),
            Err(CheckError::BadStatusRange { lo, hi })
        );
    }
}

#[test]
fn status_range_contains() {
    let r = StatusRange::default();
    assert!(r.contains(200) && r.contains(399) && !r.contains(404) && !r.contains(199));
    let e = StatusRange::exact(204);
    assert!(e.contains(204) && !e.contains(200));
    assert_eq!(e.to_string(), "204");
    assert_eq!(r.to_string(), "200-399");
}
