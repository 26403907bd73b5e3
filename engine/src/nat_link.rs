//! The engine's side of NAT through the control plane: turns the NAT file
//! the control process pushes (`nat.bin`, see `patronus_shm::nat`) into a
//! [`NatPlan`] for the workers ([`NatLink`], driven by the link thread),
//! and answers the control process's paged session queries on `nat.sock`
//! ([`spawn_session_server`]) by asking each worker through the
//! [`NatSlot`].
//!
//! Which plan runs: the configuration's `[nat]` until the control process
//! pushes a NAT config; a pushed config replaces it (NAT off included); a
//! pushed "unmanaged" file gives the configuration's back. A pushed config
//! is validated exactly like `[nat]` (`NatSection::to_nat_config`) against
//! the interfaces in effect (configured + pushed); one that does not fit
//! them is refused with a message and the workers keep their plan, and it
//! is tried again whenever the interfaces change.

use std::net::{Ipv4Addr, SocketAddrV4};
use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use patronus_shm::nat::{
    NatTables, FILTERING_ENDPOINT_INDEPENDENT, PROTO_TCP, REFRESH_DEFAULT, REFRESH_ON,
    TIMEOUT_NAMES,
};
use patronus_shm::nat_query::{
    decode_cursor, encode_cursor, QueryErrorCode, SessionRecord, SessionReply, SessionRequest,
    MAX_LIMIT,
};

use crate::config::{
    ConfigError, EngineConfig, FilteringName, ForwardSection, InterfaceConfig, NatSection,
    OneToOneSection, TimeoutsSection,
};
use crate::nat_slot::{NatPlan, NatSlot, SessionQuery};

/// How long one worker may take to answer a session query.
pub const WORKER_ANSWER_TIMEOUT: Duration = Duration::from_secs(1);

/// `[nat]` as the pushed tables say it (`max_sessions`, the preallocated
/// table size, stays the configuration's).
pub fn section_of(cfg: &EngineConfig, t: &NatTables) -> Option<NatSection> {
    let s = t.settings?;
    let timeout = |i: usize| (s.timeouts_secs[i] != 0).then_some(s.timeouts_secs[i]);
    debug_assert_eq!(TIMEOUT_NAMES.len(), 6);
    Some(NatSection {
        outside: s.port().to_string(),
        outside_vlan: s.outside_vlan,
        pool: t.pool.iter().map(|p| Ipv4Addr::from(p.addr)).collect(),
        filtering: if s.filtering == FILTERING_ENDPOINT_INDEPENDENT {
            FilteringName::EndpointIndependent
        } else {
            FilteringName::AddressAndPortDependent
        },
        max_sessions: cfg.nat.as_ref().and_then(|n| n.max_sessions),
        max_sessions_per_host: (s.max_sessions_per_host != 0).then_some(s.max_sessions_per_host),
        inbound_refresh: (s.inbound_refresh != REFRESH_DEFAULT)
            .then_some(s.inbound_refresh == REFRESH_ON),
        timeouts: TimeoutsSection {
            tcp_established: timeout(0),
            tcp_transitory: timeout(1),
            tcp_initial: timeout(2),
            udp: timeout(3),
            icmp_query: timeout(4),
            fragment: timeout(5),
        },
        forwards: t
            .forwards
            .iter()
            .map(|f| ForwardSection {
                proto: if f.proto == PROTO_TCP { "tcp" } else { "udp" }.to_string(),
                outside: SocketAddrV4::new(f.outside_addr.into(), f.outside_port).to_string(),
                inside: SocketAddrV4::new(f.inside_addr.into(), f.inside_port).to_string(),
            })
            .collect(),
        one_to_one: t
            .one_to_one
            .iter()
            .map(|m| OneToOneSection {
                outside: m.outside.into(),
                inside: m.inside.into(),
            })
            .collect(),
    })
}

/// The plan of `section` on the interfaces in effect: validated as
/// `[nat]` is, errors naming the key.
pub fn plan_of(
    cfg: &EngineConfig,
    interfaces: &[InterfaceConfig],
    section: &NatSection,
) -> Result<NatPlan, ConfigError> {
    let mut on = cfg.clone();
    on.interfaces = interfaces.to_vec();
    let config = section.to_nat_config(&on, cfg.engine.workers as u16, 0)?;
    let outside_port = cfg
        .port_index(&section.outside)
        .ok_or_else(|| ConfigError::Invalid {
            key: "nat.outside".into(),
            msg: format!("{:?} is not one of the engine's ports", section.outside),
        })?;
    Ok(NatPlan {
        config,
        outside_port: outside_port as u16,
        outside_vlan: section.outside_vlan,
    })
}

/// What the workers should run: the pushed config when the control
/// process manages NAT, else the configuration's `[nat]`. `Ok(None)`: NAT
/// off.
pub fn desired_plan(
    cfg: &EngineConfig,
    interfaces: &[InterfaceConfig],
    pushed: Option<&NatTables>,
) -> Result<Option<NatPlan>, ConfigError> {
    match pushed.and_then(|t| t.settings.map(|s| (t, s))) {
        Some((_, s)) if s.enabled == 0 => Ok(None),
        Some((t, _)) => match section_of(cfg, t) {
            Some(section) => plan_of(cfg, interfaces, &section).map(Some),
            None => Ok(None),
        },
        None => cfg
            .nat
            .as_ref()
            .map(|n| plan_of(cfg, interfaces, n))
            .transpose(),
    }
}

/// The link thread's NAT state.
#[derive(Debug)]
pub struct NatLink {
    cfg: Arc<EngineConfig>,
    slot: Arc<NatSlot>,
    /// The newest pushed NAT file (None: none seen yet).
    pushed: Option<(u64, NatTables)>,
    interfaces: Arc<Vec<InterfaceConfig>>,
}

/// What an update did.
#[derive(Debug, PartialEq, Eq)]
pub enum NatOutcome {
    /// The plan is already what the workers run.
    Unchanged,
    /// A new plan (None: NAT off) went out as this NatSlot generation.
    Published { generation: u64, enabled: bool },
    /// The wanted config does not fit; the workers keep their plan.
    Refused(String),
}

impl NatLink {
    /// Starts on `interfaces` (the FIB's at start), with whatever plan the
    /// slot holds (the configuration's).
    pub fn new(
        cfg: Arc<EngineConfig>,
        slot: Arc<NatSlot>,
        interfaces: Arc<Vec<InterfaceConfig>>,
    ) -> Self {
        NatLink {
            cfg,
            slot,
            pushed: None,
            interfaces,
        }
    }

    /// A NAT file arrived (number `n`).
    pub fn pushed(&mut self, n: u64, tables: NatTables) -> NatOutcome {
        self.pushed = Some((n, tables));
        self.apply()
    }

    /// The interfaces in effect changed (a new FIB went out).
    pub fn interfaces_changed(&mut self, interfaces: Arc<Vec<InterfaceConfig>>) -> NatOutcome {
        self.interfaces = interfaces;
        self.apply()
    }

    fn apply(&mut self) -> NatOutcome {
        let pushed = self.pushed.as_ref().map(|(_, t)| t);
        match desired_plan(&self.cfg, &self.interfaces, pushed) {
            Ok(plan) => {
                if self.slot.load().1.as_deref() == plan.as_ref() {
                    return NatOutcome::Unchanged;
                }
                let enabled = plan.is_some();
                let generation = self.slot.publish(plan);
                NatOutcome::Published {
                    generation,
                    enabled,
                }
            }
            Err(e) => NatOutcome::Refused(e.to_string()),
        }
    }

    /// Logs an outcome (the link thread's voice).
    pub fn report(&self, what: &str, o: &NatOutcome) {
        let n = self.pushed.as_ref().map_or(0, |(n, _)| *n);
        match o {
            NatOutcome::Unchanged => {}
            NatOutcome::Published {
                generation,
                enabled,
            } => eprintln!(
                "patronus-engine: NAT {} ({what}, NAT file {n}, plan generation {generation})",
                if *enabled { "plan published" } else { "off" }
            ),
            NatOutcome::Refused(e) => eprintln!(
                "patronus-engine: NAT config refused ({what}, NAT file {n}): {e}; workers keep their plan"
            ),
        }
    }
}

/// Answers one session page request by asking the workers in turn.
pub fn answer(
    slot: &NatSlot,
    workers: usize,
    req: &SessionRequest,
    timeout: Duration,
) -> SessionReply {
    let bad = |message: String| SessionReply::Error {
        code: QueryErrorCode::BadRequest,
        message,
    };
    if req.limit == 0 || req.limit > MAX_LIMIT {
        return bad(format!("limit {} is not in 1..={MAX_LIMIT}", req.limit));
    }
    let (mut worker, mut cursor) = match req.cursor.as_deref() {
        None => (0, 0),
        Some(c) => match decode_cursor(c) {
            Some(wc) => wc,
            None => return bad(format!("cursor {c:?} is not one this engine gave out")),
        },
    };
    if slot.load().1.is_none() {
        return SessionReply::Error {
            code: QueryErrorCode::NatDisabled,
            message: "the engine runs no NAT".into(),
        };
    }
    let limit = req.limit as usize;
    let mut sessions = Vec::new();
    while worker < workers {
        let q = SessionQuery {
            worker,
            inside: req.inside,
            cursor,
            limit: limit - sessions.len(),
        };
        let Some(a) = slot.ask(q, timeout) else {
            return SessionReply::Error {
                code: QueryErrorCode::WorkerTimeout,
                message: format!("worker {worker} did not answer within {timeout:?}"),
            };
        };
        sessions.extend(a.sessions.iter().map(|s| SessionRecord {
            worker: worker as u32,
            proto: s.proto.name().to_string(),
            inside: s.inside,
            outside: s.outside,
            remote: s.remote,
            state: s.state.to_string(),
            is_static: s.is_static,
            age_ms: s.age_nanos / 1_000_000,
            expires_in_ms: s.expires_in_nanos / 1_000_000,
        }));
        match a.next {
            // A worker that made no progress would loop forever.
            Some(n) if n > cursor => cursor = n,
            _ => {
                worker += 1;
                cursor = 0;
            }
        }
        if sessions.len() >= limit {
            break;
        }
    }
    SessionReply::Page {
        sessions,
        next_cursor: (worker < workers).then(|| encode_cursor(worker, cursor)),
        workers: workers as u32,
    }
}

/// Answers one request line.
fn reply_line(slot: &NatSlot, workers: usize, line: &str) -> String {
    let reply = match serde_json::from_str::<SessionRequest>(line) {
        Ok(req) => answer(slot, workers, &req, WORKER_ANSWER_TIMEOUT),
        Err(e) => SessionReply::Error {
            code: QueryErrorCode::BadRequest,
            message: format!("request: {e}"),
        },
    };
    serde_json::to_string(&reply).unwrap_or_default()
}

/// Starts the session server on `dir/nat.sock` (see
/// [`crate::line_server`]).
pub fn spawn_session_server(
    dir: &Path,
    slot: Arc<NatSlot>,
    workers: usize,
    stop: Arc<AtomicBool>,
) -> std::io::Result<JoinHandle<()>> {
    crate::line_server::spawn(
        dir,
        patronus_shm::runtime_dir::NAT_SOCKET,
        "patronus-natq",
        stop,
        move |line| reply_line(&slot, workers, line),
    )
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::time::Instant;

    use patronus_shm::nat::{
        NatForwardEntry, NatOneToOneEntry, NatPoolEntry, NatSettingsEntry, PROTO_UDP, REFRESH_OFF,
    };

    use super::*;
    use crate::nat::{Proto, SessionInfo};
    use crate::nat_slot::SessionAnswer;
    use std::io::{BufRead, BufReader, Write};
    use std::os::unix::net::UnixStream;
    use std::path::PathBuf;
    use std::sync::atomic::Ordering;

    const CFG: &str = r#"
[engine]
workers = 2
[[port]]
name = "lan0"
driver = "mem"
[[port]]
name = "wan0"
driver = "mem"
[[interface]]
port = "lan0"
address = "10.10.0.1/24"
[[interface]]
port = "wan0"
address = "198.51.100.1/24"
"#;

    fn cfg(extra: &str) -> Arc<EngineConfig> {
        Arc::new(EngineConfig::parse(&format!("{CFG}{extra}")).unwrap())
    }

    fn ip(s: &str) -> u32 {
        u32::from(s.parse::<Ipv4Addr>().unwrap())
    }

    /// The pushed twin of `TOML_NAT`.
    fn pushed(port: &str, vlan: u16) -> NatTables {
        let mut s = NatSettingsEntry::new(port, vlan).unwrap();
        s.filtering = FILTERING_ENDPOINT_INDEPENDENT;
        s.timeouts_secs[3] = 120;
        s.inbound_refresh = REFRESH_OFF;
        s.max_sessions_per_host = 10;
        NatTables {
            settings: Some(s),
            pool: vec![NatPoolEntry {
                addr: ip("198.51.100.1"),
                reserved: 0,
            }],
            forwards: vec![NatForwardEntry {
                outside_addr: ip("198.51.100.1"),
                inside_addr: ip("10.10.0.2"),
                outside_port: 5353,
                inside_port: 53,
                proto: PROTO_UDP,
                reserved: [0; 3],
            }],
            one_to_one: vec![NatOneToOneEntry {
                outside: ip("198.51.100.10"),
                inside: ip("10.10.0.10"),
            }],
        }
    }

    const TOML_NAT: &str = r#"
[nat]
outside = "wan0"
pool = ["198.51.100.1"]
filtering = "endpoint-independent"
max_sessions_per_host = 10
inbound_refresh = false
[nat.timeouts]
udp = 120
[[nat.forward]]
proto = "udp"
outside = "198.51.100.1:5353"
inside = "10.10.0.2:53"
[[nat.one_to_one]]
outside = "198.51.100.10"
inside = "10.10.0.10"
"#;

    #[test]
    fn a_pushed_config_plans_exactly_like_the_same_toml() {
        let with_toml = cfg(TOML_NAT);
        let want = plan_of(
            &with_toml,
            &with_toml.interfaces,
            with_toml.nat.as_ref().unwrap(),
        )
        .unwrap();
        assert_eq!((want.config.workers, want.outside_port), (2, 1));
        let plain = cfg("");
        let got = desired_plan(&plain, &plain.interfaces, Some(&pushed("wan0", 0)))
            .unwrap()
            .unwrap();
        assert_eq!(got, want);
        assert_eq!(got.config.forwards[0].proto, Proto::Udp);
    }

    #[test]
    fn unmanaged_gives_the_toml_plan_and_disabled_gives_none() {
        let c = cfg(TOML_NAT);
        let toml = desired_plan(&c, &c.interfaces, None).unwrap();
        assert!(toml.is_some());
        assert_eq!(
            desired_plan(&c, &c.interfaces, Some(&NatTables::default())).unwrap(),
            toml
        );
        let mut off = pushed("wan0", 0);
        off.settings.as_mut().unwrap().enabled = 0;
        assert_eq!(desired_plan(&c, &c.interfaces, Some(&off)).unwrap(), None);
        assert_eq!(desired_plan(&cfg(""), &c.interfaces, None).unwrap(), None);
    }

    #[test]
    fn pushed_configs_are_validated_like_toml() {
        let c = cfg("");
        let mut t = pushed("wan0", 0);
        t.pool.push(t.pool[0]);
        let e = desired_plan(&c, &c.interfaces, Some(&t)).unwrap_err();
        assert!(
            e.to_string().contains("nat.pool lists 198.51.100.1 twice"),
            "{e}"
        );
        let e = desired_plan(&c, &c.interfaces, Some(&pushed("wan9", 0))).unwrap_err();
        assert!(e.to_string().starts_with("nat.outside"), "{e}");
    }

    #[test]
    fn link_follows_pushes_and_interfaces_without_republishing_the_same_plan() {
        let c = cfg("");
        let slot = Arc::new(NatSlot::new(None, 2));
        let mut link = NatLink::new(c.clone(), slot.clone(), Arc::new(c.interfaces.clone()));
        // On VLAN 7 of wan0: no such interface yet.
        let o = link.pushed(1, pushed("wan0", 7));
        assert!(
            matches!(&o, NatOutcome::Refused(e) if e.contains("vlan 7")),
            "{o:?}"
        );
        assert_eq!(slot.generation(), 1, "nothing published");
        let mut ifs = c.interfaces.clone();
        ifs.push(InterfaceConfig {
            port: "wan0".into(),
            address: "203.0.113.1/24".into(),
            vlan: Some(7),
        });
        let o = link.interfaces_changed(Arc::new(ifs.clone()));
        assert_eq!(
            o,
            NatOutcome::Published {
                generation: 2,
                enabled: true
            }
        );
        let plan = slot.load().1.unwrap();
        assert_eq!((plan.outside_port, plan.outside_vlan), (1, 7));
        assert_eq!(plan.config.outside_iface, 2);
        // The same config again (a control restart): the workers keep it.
        assert_eq!(link.pushed(2, pushed("wan0", 7)), NatOutcome::Unchanged);
        assert_eq!(
            link.interfaces_changed(Arc::new(ifs)),
            NatOutcome::Unchanged
        );
        assert_eq!(slot.generation(), 2);
        // Unmanaged with no [nat]: off.
        assert_eq!(
            link.pushed(3, NatTables::default()),
            NatOutcome::Published {
                generation: 3,
                enabled: false
            }
        );
        assert!(slot.load().1.is_none());
    }

    fn session(n: u32) -> SessionInfo {
        SessionInfo {
            proto: Proto::Udp,
            inside: SocketAddrV4::new(Ipv4Addr::new(10, 10, 0, (n % 4) as u8 + 2), 1000 + n as u16),
            outside: SocketAddrV4::new(Ipv4Addr::new(198, 51, 100, 1), 20000 + n as u16),
            remote: SocketAddrV4::new(Ipv4Addr::new(192, 0, 2, 1), 53),
            state: "active",
            is_static: false,
            age_nanos: 1_500_000_000,
            expires_in_nanos: 2_000_000,
        }
    }

    /// Worker `w` holding sessions in `slots` (slot -> session), answering
    /// queries as a worker does between batches, until `stop`.
    fn fake_worker(
        slot: Arc<NatSlot>,
        w: usize,
        slots: Vec<(usize, SessionInfo)>,
        stop: Arc<AtomicBool>,
    ) -> JoinHandle<()> {
        std::thread::spawn(move || {
            let mut answered = 0;
            while !stop.load(Ordering::Relaxed) {
                if let Some((seq, q)) = slot.query_for(w) {
                    if seq != answered {
                        answered = seq;
                        let mut it = slots.iter().filter(|(i, s)| {
                            *i >= q.cursor && q.inside.is_none_or(|a| a == *s.inside.ip())
                        });
                        let sessions: Vec<_> = it.by_ref().take(q.limit).map(|(_, s)| *s).collect();
                        let next = it.next().map(|(i, _)| *i);
                        slot.answer(
                            w,
                            SessionAnswer {
                                seq,
                                sessions,
                                next,
                                nat_enabled: true,
                            },
                        );
                    }
                }
                std::thread::sleep(Duration::from_micros(100));
            }
        })
    }

    fn plan_slot(workers: usize) -> Arc<NatSlot> {
        let c = cfg(TOML_NAT);
        let plan = desired_plan(&c, &c.interfaces, None).unwrap();
        Arc::new(NatSlot::new(plan, workers))
    }

    fn page_of(r: SessionReply) -> (Vec<SessionRecord>, Option<String>) {
        match r {
            SessionReply::Page {
                sessions,
                next_cursor,
                workers,
            } => {
                assert_eq!(workers, 2);
                (sessions, next_cursor)
            }
            SessionReply::Error { code, message } => panic!("{code:?}: {message}"),
        }
    }

    #[test]
    fn pages_walk_every_worker_once() {
        let slot = plan_slot(2);
        let stop = Arc::new(AtomicBool::new(false));
        let w0 = (0..5).map(|i| (i * 3, session(i as u32))).collect();
        let w1 = (0..4)
            .map(|i| (i * 2 + 1, session(100 + i as u32)))
            .collect();
        let t0 = fake_worker(slot.clone(), 0, w0, stop.clone());
        let t1 = fake_worker(slot.clone(), 1, w1, stop.clone());
        let timeout = Duration::from_secs(10);
        for limit in [1, 2, 3, 4, 9, 100] {
            let mut seen = BTreeSet::new();
            let mut cursor = None;
            let mut pages = 0;
            loop {
                let req = SessionRequest {
                    inside: None,
                    cursor: cursor.clone(),
                    limit,
                };
                let (sessions, next) = page_of(answer(&slot, 2, &req, timeout));
                assert!(sessions.len() <= limit as usize);
                for s in &sessions {
                    assert!(seen.insert((s.worker, s.outside)), "listed twice: {s:?}");
                }
                pages += 1;
                match next {
                    Some(c) => cursor = Some(c),
                    None => break,
                }
            }
            assert_eq!(seen.len(), 9, "limit {limit}");
            assert!(pages >= 9 / limit as usize, "limit {limit}: {pages} pages");
        }
        // Filtered by inside host: sessions 1 and 101 share 10.10.0.3.
        let req = SessionRequest {
            inside: Some(Ipv4Addr::new(10, 10, 0, 3)),
            cursor: None,
            limit: 100,
        };
        let (sessions, next) = page_of(answer(&slot, 2, &req, timeout));
        assert_eq!(next, None);
        let ports: Vec<_> = sessions.iter().map(|s| s.inside.port()).collect();
        assert_eq!(ports, vec![1001, 1101]);
        assert_eq!(sessions[0].age_ms, 1500);
        stop.store(true, Ordering::Relaxed);
        t0.join().unwrap();
        t1.join().unwrap();
    }

    #[test]
    fn errors_say_why() {
        let req = |cursor: Option<&str>, limit| SessionRequest {
            inside: None,
            cursor: cursor.map(str::to_string),
            limit,
        };
        let code = |r: SessionReply| match r {
            SessionReply::Error { code, .. } => code,
            other => panic!("{other:?}"),
        };
        let off = NatSlot::new(None, 1);
        let t = Duration::from_millis(10);
        assert_eq!(
            code(answer(&off, 1, &req(None, 5), t)),
            QueryErrorCode::NatDisabled
        );
        let on = plan_slot(1);
        assert_eq!(
            code(answer(&on, 1, &req(None, 0), t)),
            QueryErrorCode::BadRequest
        );
        assert_eq!(
            code(answer(&on, 1, &req(None, 1001), t)),
            QueryErrorCode::BadRequest
        );
        assert_eq!(
            code(answer(&on, 1, &req(Some("x"), 5), t)),
            QueryErrorCode::BadRequest
        );
        // Nobody answers for worker 0.
        assert_eq!(
            code(answer(&on, 1, &req(None, 5), t)),
            QueryErrorCode::WorkerTimeout
        );
        // A cursor past the last worker is an empty last page.
        assert_eq!(
            answer(&on, 1, &req(Some("1.0"), 5), t),
            SessionReply::Page {
                sessions: Vec::new(),
                next_cursor: None,
                workers: 1
            }
        );
    }

    fn temp_dir(tag: &str) -> PathBuf {
        let p = std::env::temp_dir().join(format!("patronus-natlink-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        p
    }

    #[test]
    fn the_session_socket_answers_json_lines() {
        let dir = temp_dir("sock");
        let slot = plan_slot(2);
        let stop = Arc::new(AtomicBool::new(false));
        let server = spawn_session_server(&dir, slot.clone(), 2, stop.clone()).unwrap();
        let w0 = fake_worker(slot.clone(), 0, vec![(4, session(1))], stop.clone());
        let w1 = fake_worker(slot.clone(), 1, vec![(0, session(2))], stop.clone());
        let s = UnixStream::connect(dir.join("nat.sock")).unwrap();
        let mut r = BufReader::new(s.try_clone().unwrap());
        let mut w = s;
        let mut ask = move |line: &str| {
            w.write_all(line.as_bytes()).unwrap();
            let mut out = String::new();
            r.read_line(&mut out).unwrap();
            serde_json::from_str::<SessionReply>(&out).unwrap()
        };
        let (sessions, next) = page_of(ask("{\"limit\":1}\n"));
        assert_eq!((sessions.len(), sessions[0].worker), (1, 0));
        let (sessions, next) = page_of(ask(&format!(
            "{{\"limit\":1,\"cursor\":{}}}\n",
            serde_json::to_string(&next.unwrap()).unwrap()
        )));
        assert_eq!((sessions.len(), sessions[0].worker, next), (1, 1, None));
        assert!(matches!(
            ask("not json\n"),
            SessionReply::Error {
                code: QueryErrorCode::BadRequest,
                ..
            }
        ));
        stop.store(true, Ordering::Relaxed);
        // Closing the connection ends the server's read.
        drop(ask);
        server.join().unwrap();
        w0.join().unwrap();
        w1.join().unwrap();
        assert!(!dir.join("nat.sock").exists(), "removed at stop");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn the_link_thread_hands_a_pushed_config_to_the_nat_slot() {
        use crate::counters::WorkerCounters;
        use crate::fib::Fib;
        use crate::tables::TableSlot;
        let dir = temp_dir("link");
        let c = cfg("");
        let tables = Arc::new(TableSlot::new(Arc::new(Fib::build(&c).unwrap()), 2));
        let counters = (0..2)
            .map(|_| Arc::new(WorkerCounters::new(c.ports.len())))
            .collect();
        let slot = Arc::new(NatSlot::new(None, 2));
        let stop = Arc::new(AtomicBool::new(false));
        let link = crate::control_link::spawn(
            c.clone(),
            dir.clone(),
            tables,
            counters,
            slot.clone(),
            Arc::new(crate::wg_plan::WgSlot::new(
                Some(crate::config::wg_plan(&c, 2).unwrap()),
                2,
            )),
            Arc::new(crate::classify_slot::ClassifySlot::new(false, None, 2)),
            Arc::new(crate::lb_link::LbShared::new(&c, 2).unwrap()),
            Arc::default(),
            None,
            stop.clone(),
        )
        .unwrap();
        let mut publisher = patronus_shm::Publisher::open(&dir).unwrap();
        publisher.publish_nat(&pushed("wan0", 0)).unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        while slot.generation() == 1 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(1));
        }
        let want = desired_plan(&c, &c.interfaces, Some(&pushed("wan0", 0))).unwrap();
        assert_eq!(slot.load().1.as_deref(), want.as_ref());
        assert!(dir.join("nat.sock").exists());
        stop.store(true, Ordering::Relaxed);
        link.join().unwrap();
        let _ = std::fs::remove_dir_all(&dir);
    }
}
