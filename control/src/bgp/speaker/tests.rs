//! The speaker against a scripted peer over an in-memory stream (tokio
//! duplex): OPEN/KEEPALIVE/UPDATE exchange, import policy and RFC 8212,
//! withdrawals, route refresh, RFC 7606 treat-as-withdraw, End-of-RIB.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use patronus_bgp::fsm::State;
use patronus_bgp::policy::Policy;
use patronus_bgp::types::{Afi, AsPath, AsSegment, PathAttributes, Prefix};
use patronus_bgp::wire::{
    decode_message, frame, Capability, Message, MpReach, Open, Received, RouteRefresh,
    SessionContext, Update, UpdateOutcome,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};
use tokio::time::{timeout, Duration};

use super::*;

pub(super) const LOCAL_AS: u32 = 65001;
pub(super) const PEER_AS: u32 = 65002;
/// Generous bound so a broken speaker fails the test instead of hanging it.
pub(super) const WAIT: Duration = Duration::from_secs(10);

pub(super) fn pfx(s: &str) -> Prefix {
    let (a, l) = s.split_once('/').unwrap();
    Prefix::new(a.parse().unwrap(), l.parse().unwrap()).unwrap()
}

pub(super) fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

pub(super) fn accept_all() -> Policy {
    Policy::from_json(r#"{"name":"all","default":"accept"}"#).unwrap()
}

fn reject_203() -> Policy {
    Policy::from_json(
        r#"{"name":"no-203","terms":[{"match":{"prefix_list":[{"action":"permit","prefix":"203.0.113.0/24"}]},"then":"reject"}],"default":"accept"}"#,
    )
    .unwrap()
}

pub(super) fn config(import: Option<Policy>) -> SpeakerConfig {
    let mut cfg = SpeakerConfig::new(LOCAL_AS, Ipv4Addr::new(10, 0, 0, 1));
    cfg.listen = None;
    cfg.networks = vec![pfx("192.0.2.0/24")];
    cfg.connected = vec![pfx("10.0.0.0/24"), pfx("fd00::/64")];
    let mut n = NeighborConfig::new(ip("10.0.0.2"), PEER_AS);
    n.passive = true;
    n.families = Families::BOTH;
    n.import = import;
    n.export = Some(accept_all());
    n.next_hop_v6 = Some("fd00::1".parse().unwrap());
    cfg.neighbors = vec![n];
    cfg
}

/// The scripted neighbour's end of the stream.
pub(super) struct Peer {
    pub(super) io: DuplexStream,
    pub(super) buf: Vec<u8>,
    pub(super) ctx: SessionContext,
}

impl Peer {
    pub(super) async fn recv(&mut self) -> Received {
        loop {
            if let Some(len) = frame(&self.buf).expect("framing") {
                let msg: Vec<u8> = self.buf.drain(..len).collect();
                return decode_message(&msg, &self.ctx).expect("decodes");
            }
            let n = timeout(WAIT, self.io.read_buf(&mut self.buf))
                .await
                .expect("speaker sent in time")
                .expect("read");
            assert!(n > 0, "speaker closed the connection");
        }
    }

    /// The next message that is not a KEEPALIVE.
    async fn recv_non_keepalive(&mut self) -> Received {
        loop {
            match self.recv().await {
                Received::Keepalive => continue,
                m => return m,
            }
        }
    }

    pub(super) async fn send(&mut self, m: Message) {
        let b = m.to_bytes(&self.ctx).unwrap();
        self.send_raw(&b).await;
    }

    async fn send_raw(&mut self, b: &[u8]) {
        self.io.write_all(b).await.unwrap();
    }
}

/// Starts the speaker, connects the peer and brings the session up; the
/// peer has read the speaker's OPEN and KEEPALIVE.
async fn established(cfg: SpeakerConfig) -> (SpeakerHandle, Peer) {
    let h = spawn(cfg).await.unwrap();
    let peer = connect(&h, "10.0.0.2", PEER_AS, true).await;
    (h, peer)
}

/// Connects a peer at `addr` in `asn` and brings its session up.
async fn connect(h: &SpeakerHandle, addr: &str, asn: u32, ipv6: bool) -> Peer {
    let (ours, theirs) = tokio::io::duplex(1 << 16);
    h.incoming(Connection {
        stream: Box::new(ours),
        remote: ip(addr),
        local: Some(ip("10.0.0.1")),
    })
    .await
    .unwrap();
    let mut peer = Peer {
        io: theirs,
        buf: Vec::new(),
        ctx: SessionContext::MODERN,
    };
    let Received::Open(open) = peer.recv().await else {
        panic!("expected OPEN first")
    };
    assert_eq!(open.asn(), LOCAL_AS);
    assert_eq!(open.bgp_id, Ipv4Addr::new(10, 0, 0, 1));
    assert!(open.has(&Capability::unicast(Afi::Ipv4)));
    assert_eq!(open.has(&Capability::unicast(Afi::Ipv6)), ipv6);
    assert!(open.has(&Capability::RouteRefresh));
    let mut caps = vec![
        Capability::unicast(Afi::Ipv4),
        Capability::RouteRefresh,
        Capability::FourOctetAs(asn),
    ];
    if ipv6 {
        caps.push(Capability::unicast(Afi::Ipv6));
    }
    let IpAddr::V4(id) = ip(addr) else { panic!() };
    peer.send(Message::Open(Open::new(asn, 90, id, caps))).await;
    peer.send(Message::Keepalive).await;
    assert_eq!(peer.recv().await, Received::Keepalive);
    peer
}

fn attrs(path: &[u32], nh: &str) -> PathAttributes {
    PathAttributes {
        as_path: AsPath {
            segments: vec![AsSegment::Sequence(path.to_vec())],
        },
        next_hop: Some(ip(nh)),
        ..PathAttributes::default()
    }
}

pub(super) fn announce_v4(prefixes: &[&str], nh: &str) -> Message {
    announce_v4_from(&[PEER_AS], prefixes, nh)
}

fn announce_v4_from(path: &[u32], prefixes: &[&str], nh: &str) -> Message {
    Message::Update(Update {
        attributes: Some(attrs(path, nh)),
        nlri: prefixes.iter().map(|p| pfx(p)).collect(),
        ..Update::default()
    })
}

fn announce_v6(prefixes: &[&str], nh: &str) -> Message {
    let mut a = attrs(&[PEER_AS], nh);
    a.next_hop = None;
    Message::Update(Update {
        attributes: Some(a),
        mp_reach: Some(MpReach {
            afi: Afi::Ipv6,
            next_hop: ip(nh),
            link_local_next_hop: None,
            prefixes: prefixes.iter().map(|p| pfx(p)).collect(),
        }),
        ..Update::default()
    })
}

/// Waits until the selected routes satisfy `ok`.
pub(super) async fn routes_until(
    h: &SpeakerHandle,
    ok: impl Fn(&RouteTable) -> bool,
) -> Arc<RouteTable> {
    let mut rx = h.routes();
    timeout(WAIT, async {
        loop {
            let t = rx.borrow_and_update().clone();
            if ok(&t) {
                return t;
            }
            rx.changed().await.expect("speaker alive");
        }
    })
    .await
    .expect("routes reached the expected state")
}

pub(super) async fn neighbor(h: &SpeakerHandle) -> NeighborStatus {
    h.neighbors().await.unwrap().remove(0)
}

#[tokio::test]
async fn exchange_open_keepalive_update_and_withdraw() {
    let (h, mut peer) = established(config(Some(accept_all()))).await;

    // The initial table: our network, eBGP style, then End-of-RIB v4 and v6.
    let Received::Update(UpdateOutcome::Parsed(u)) = peer.recv_non_keepalive().await else {
        panic!("expected our UPDATE")
    };
    assert_eq!(u.nlri, vec![pfx("192.0.2.0/24")]);
    let a = u.attributes.unwrap();
    assert_eq!(
        a.as_path.segments,
        vec![AsSegment::Sequence(vec![LOCAL_AS])]
    );
    assert_eq!(a.next_hop, Some(ip("10.0.0.1")));
    assert_eq!(a.local_pref, None);
    for afi in [Afi::Ipv4, Afi::Ipv6] {
        let Received::Update(UpdateOutcome::Parsed(eor)) = peer.recv_non_keepalive().await else {
            panic!("expected End-of-RIB")
        };
        assert_eq!(eor.end_of_rib_afi(), Some(afi));
    }

    peer.send(announce_v4(
        &["203.0.113.0/24", "198.51.100.0/24"],
        "10.0.0.2",
    ))
    .await;
    peer.send(announce_v6(&["2001:db8:5::/48"], "fd00::2"))
        .await;
    // A next hop outside the connected subnets does not resolve.
    peer.send(announce_v4(&["198.18.0.0/15"], "172.16.0.9"))
        .await;
    let t = routes_until(&h, |t| t.len() == 3).await;
    assert_eq!(t[&pfx("203.0.113.0/24")], vec![ip("10.0.0.2")]);
    assert_eq!(t[&pfx("198.51.100.0/24")], vec![ip("10.0.0.2")]);
    assert_eq!(t[&pfx("2001:db8:5::/48")], vec![ip("fd00::2")]);
    assert!(!t.contains_key(&pfx("198.18.0.0/15")));
    // Our own network is never a route to forward by.
    assert!(!t.contains_key(&pfx("192.0.2.0/24")));

    let n = neighbor(&h).await;
    assert_eq!(n.state, State::Established);
    assert_eq!(n.router_id, Some(Ipv4Addr::new(10, 0, 0, 2)));
    assert_eq!(n.counters.prefixes_received, 4);
    assert_eq!(n.counters.prefixes_accepted, 4);
    assert_eq!(n.counters.prefixes_advertised, 1);
    assert_eq!(n.counters.updates_in, 3);
    assert_eq!(n.counters.updates_out, 3);

    // Withdraw one of each family.
    peer.send(Message::Update(Update {
        withdrawn: vec![pfx("203.0.113.0/24")],
        ..Update::default()
    }))
    .await;
    peer.send(Message::Update(Update {
        mp_unreach: Some(patronus_bgp::wire::MpUnreach {
            afi: Afi::Ipv6,
            prefixes: vec![pfx("2001:db8:5::/48")],
        }),
        ..Update::default()
    }))
    .await;
    let t = routes_until(&h, |t| t.len() == 1).await;
    assert!(t.contains_key(&pfx("198.51.100.0/24")));

    // The change stream saw the same history.
    h.shutdown().await;
    // The peer gets Cease / administrative shutdown.
    let Received::Notification(n) = peer.recv_non_keepalive().await else {
        panic!("expected NOTIFICATION")
    };
    assert_eq!((n.code, n.subcode), (6, 2));
}

#[tokio::test]
async fn import_policy_rejects_and_rfc8212_denies_without_policy() {
    let (h, mut peer) = established(config(Some(reject_203()))).await;
    peer.send(announce_v4(
        &["203.0.113.0/24", "198.51.100.0/24"],
        "10.0.0.2",
    ))
    .await;
    let t = routes_until(&h, |t| t.contains_key(&pfx("198.51.100.0/24"))).await;
    assert!(!t.contains_key(&pfx("203.0.113.0/24")));
    let n = neighbor(&h).await;
    assert_eq!(n.counters.prefixes_received, 2);
    assert_eq!(n.counters.prefixes_accepted, 1);
    h.shutdown().await;

    // eBGP without an import policy: everything is refused (RFC 8212).
    let (h, mut peer) = established(config(None)).await;
    let mut changes = h.changes();
    peer.send(announce_v4(&["198.51.100.0/24"], "10.0.0.2"))
        .await;
    // A message after it: once it is counted, the UPDATE was processed.
    peer.send(announce_v4(&["198.51.101.0/24"], "10.0.0.2"))
        .await;
    timeout(WAIT, async {
        while neighbor(&h).await.counters.updates_in < 2 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .unwrap();
    let n = neighbor(&h).await;
    assert_eq!(n.counters.prefixes_received, 2);
    assert_eq!(n.counters.prefixes_accepted, 0);
    assert!(h.routes().borrow().is_empty());
    assert!(changes.try_recv().is_err());
    h.shutdown().await;
}

#[tokio::test]
async fn route_refresh_resends_and_malformed_update_is_treated_as_withdraw() {
    let (h, mut peer) = established(config(Some(accept_all()))).await;
    // Initial table + two End-of-RIBs.
    for _ in 0..3 {
        peer.recv_non_keepalive().await;
    }
    peer.send(Message::RouteRefresh(RouteRefresh::unicast(Afi::Ipv4)))
        .await;
    let Received::Update(UpdateOutcome::Parsed(u)) = peer.recv_non_keepalive().await else {
        panic!("expected the Adj-RIB-Out again")
    };
    assert_eq!(u.nlri, vec![pfx("192.0.2.0/24")]);

    peer.send(announce_v4(&["203.0.113.0/24"], "10.0.0.2"))
        .await;
    routes_until(&h, |t| t.contains_key(&pfx("203.0.113.0/24"))).await;
    // The same prefix again with ORIGIN = 5: RFC 7606 treat-as-withdraw.
    let mut bad = announce_v4(&["203.0.113.0/24"], "10.0.0.2")
        .to_bytes(&peer.ctx)
        .unwrap();
    // Attributes start after header (19), withdrawn length (2, = 0) and
    // attribute length (2): ORIGIN is first, its value at +3.
    let origin_value = 19 + 2 + 2 + 3;
    assert_eq!(bad[origin_value - 1], 1, "ORIGIN length");
    bad[origin_value] = 5;
    peer.send_raw(&bad).await;
    routes_until(&h, |t| t.is_empty()).await;
    let n = neighbor(&h).await;
    assert_eq!(n.state, State::Established);
    assert_eq!(n.counters.treat_as_withdraw, 1);
    assert_eq!(n.counters.notifications_out, 0);
    h.shutdown().await;
}

#[tokio::test]
async fn unknown_address_is_refused_and_bad_config_rejected() {
    let mut cfg = config(None);
    cfg.neighbors.push(cfg.neighbors[0].clone());
    assert!(matches!(
        spawn(cfg).await,
        Err(SpawnError::Config(ConfigError::Duplicate(_)))
    ));

    let h = spawn(config(None)).await.unwrap();
    let (ours, mut theirs) = tokio::io::duplex(1024);
    h.incoming(Connection {
        stream: Box::new(ours),
        remote: ip("10.0.0.99"),
        local: None,
    })
    .await
    .unwrap();
    // Closed without a word.
    let mut b = Vec::new();
    let n = timeout(WAIT, theirs.read_to_end(&mut b))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(n, 0);
    h.shutdown().await;
}

/// The next UPDATE that is not an End-of-RIB.
async fn next_update(p: &mut Peer) -> Update {
    loop {
        match p.recv_non_keepalive().await {
            Received::Update(UpdateOutcome::Parsed(u)) if u.end_of_rib_afi().is_none() => return u,
            Received::Update(UpdateOutcome::Parsed(_)) => continue,
            m => panic!("expected an UPDATE, got {m:?}"),
        }
    }
}

#[tokio::test]
async fn ebgp_and_ibgp_export_rules() {
    let mut cfg = config(Some(accept_all()));
    for (addr, asn) in [("10.0.0.3", LOCAL_AS), ("10.0.0.4", LOCAL_AS)] {
        let mut n = NeighborConfig::new(ip(addr), asn);
        n.passive = true;
        cfg.neighbors.push(n);
    }
    let h = spawn(cfg).await.unwrap();
    let mut a = connect(&h, "10.0.0.2", PEER_AS, true).await;
    let mut b = connect(&h, "10.0.0.3", LOCAL_AS, false).await;
    let mut c = connect(&h, "10.0.0.4", LOCAL_AS, false).await;

    // Our network to iBGP: no prepend, next hop self, LOCAL_PREF.
    for p in [&mut b, &mut c] {
        let u = next_update(p).await;
        assert_eq!(u.nlri, vec![pfx("192.0.2.0/24")]);
        let at = u.attributes.unwrap();
        assert!(at.as_path.segments.is_empty());
        assert_eq!(at.next_hop, Some(ip("10.0.0.1")));
        assert_eq!(at.local_pref, Some(100));
    }
    next_update(&mut a).await;

    // eBGP-learned to iBGP: next hop and path unchanged, LOCAL_PREF set.
    a.send(announce_v4(&["203.0.113.0/24"], "10.0.0.2")).await;
    for p in [&mut b, &mut c] {
        let u = next_update(p).await;
        assert_eq!(u.nlri, vec![pfx("203.0.113.0/24")]);
        let at = u.attributes.unwrap();
        assert_eq!(
            at.as_path.segments,
            vec![AsSegment::Sequence(vec![PEER_AS])]
        );
        assert_eq!(at.next_hop, Some(ip("10.0.0.2")));
        assert_eq!(at.local_pref, Some(100));
    }

    // iBGP-learned: to eBGP with our AS and next hop self, not to iBGP.
    let mut m = announce_v4_from(&[], &["198.51.100.0/24"], "10.0.0.3");
    if let Message::Update(u) = &mut m {
        u.attributes.as_mut().unwrap().local_pref = Some(300);
    }
    b.send(m).await;
    let u = next_update(&mut a).await;
    assert_eq!(u.nlri, vec![pfx("198.51.100.0/24")]);
    let at = u.attributes.unwrap();
    assert_eq!(
        at.as_path.segments,
        vec![AsSegment::Sequence(vec![LOCAL_AS])]
    );
    assert_eq!(at.next_hop, Some(ip("10.0.0.1")));
    assert_eq!(at.local_pref, None);
    // C's next UPDATE is the withdrawal below, not 198.51.100.0/24.
    a.send(Message::Update(Update {
        withdrawn: vec![pfx("203.0.113.0/24")],
        ..Update::default()
    }))
    .await;
    let u = next_update(&mut c).await;
    assert_eq!(u.withdrawn, vec![pfx("203.0.113.0/24")]);
    assert!(u.nlri.is_empty());
    // And B, which sent it, does not get it back either.
    let u = next_update(&mut b).await;
    assert_eq!(u.withdrawn, vec![pfx("203.0.113.0/24")]);
    assert!(u.nlri.is_empty());
    h.shutdown().await;
}

/// The published status follows the session and the selected routes
/// without a question to the instance.
#[tokio::test]
async fn published_status_follows_state_and_selection() {
    let (h, mut peer) = established(config(Some(accept_all()))).await;
    peer.send(announce_v4(&["203.0.113.0/24"], "10.0.0.2"))
        .await;
    routes_until(&h, |t| t.len() == 1).await;
    let s = timeout(WAIT, async {
        loop {
            let s = h.status();
            if s.stats.selected_ipv4 == 1 {
                return s;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("status published");
    assert_eq!(s.neighbors.len(), 1);
    assert_eq!(s.neighbors[0].state, State::Established);
    assert_eq!(s.neighbors[0].address, ip("10.0.0.2"));
}
