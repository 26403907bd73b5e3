//! One neighbour's session task: owns the TCP connection(s) and the
//! RFC 4271 state machine, arms the FSM's next deadline with
//! `sleep_until`, frames and decodes messages, resolves connection
//! collisions, and reports to the instance (session up/down, UPDATEs,
//! route refresh); the instance sends it encoded UPDATEs to write.

use std::future::Future;
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::pin::Pin;

use patronus_bgp::fsm::{
    resolve_collision, Action, CollisionVerdict, Event, Initiator, Session, State,
};
use patronus_bgp::wire::{
    cease_subcode, code, decode_message, frame, Message, Notification, Open, Received,
    SessionContext, UpdateOutcome,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpSocket;
use tokio::sync::mpsc;
use tokio::time::{sleep_until, Duration, Instant};

use super::messages::{BgpStream, Connection, InstanceMsg, NeighborIndex, SessionCmd};
use super::open::{local_open, peer_open};

/// Read buffer grows by at least this much per read.
const READ_CHUNK: usize = 16 * 1024;

/// How long a connection that arrives while Established (with graceful
/// restart) waits for the probe of the old one: a restarted peer's host
/// answers the probe with a reset within a round trip.
const RESTART_PROBE: Duration = Duration::from_secs(2);

/// A live connection and what has been read from it but not framed yet.
struct Conn {
    stream: Box<dyn BgpStream>,
    rbuf: Vec<u8>,
    initiator: Initiator,
    local: Option<IpAddr>,
}

impl Conn {
    fn new(c: Connection, initiator: Initiator) -> Conn {
        Conn {
            stream: c.stream,
            rbuf: Vec::new(),
            initiator,
            local: c.local.map(|a| a.to_canonical()),
        }
    }

    async fn write(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.stream.write_all(bytes).await?;
        self.stream.flush().await
    }

    /// Closes this connection as the loser of a collision (a Cease; the
    /// caller drops it).
    async fn refuse_collision(&mut self, ctx: &SessionContext) {
        let n = Notification::new(
            code::CEASE,
            cease_subcode::CONNECTION_COLLISION_RESOLUTION,
            Vec::new(),
        );
        if let Ok(b) = Message::Notification(n).to_bytes(ctx) {
            let _ = self.write(&b).await;
        }
    }
}

type Connecting = Pin<Box<dyn Future<Output = io::Result<Conn>> + Send>>;

/// Where and how to reach the neighbour.
pub struct SessionParams {
    pub peer: NeighborIndex,
    pub address: IpAddr,
    pub port: u16,
    pub local_address: Option<IpAddr>,
    pub fsm: Session,
}

pub struct SessionTask {
    peer: NeighborIndex,
    address: IpAddr,
    port: u16,
    local_address: Option<IpAddr>,
    local_id: Ipv4Addr,
    fsm: Session,
    local_open: Open,
    ctx: SessionContext,
    conn: Option<Conn>,
    /// An incoming connection while one is in OpenSent/OpenConfirm: kept
    /// until its OPEN tells who wins the collision.
    pending: Option<Conn>,
    /// Set when `pending` arrived while Established with graceful restart:
    /// either the peer restarted (its old connection is dead, RFC 4724
    /// 4.2) or its connect crossed ours as the session came up (a
    /// collision, RFC 4271 6.8). The old connection is probed with a
    /// KEEPALIVE: if it fails before this deadline the new one is adopted
    /// as the restart, else the new one is closed.
    restart_probe: Option<Instant>,
    /// The pending connection's OPEN, held while the probe decides.
    held_open: Option<Open>,
    connecting: Option<Connecting>,
    /// Counts sessions that reached Established.
    epoch: u64,
    /// The NOTIFICATION (with its data) the codec asked for, sent when
    /// the FSM says to send one with the same code.
    stash: Option<Notification>,
    io_failed: bool,
    instance_gone: bool,
    actions: Vec<Action>,
    cmds: mpsc::Receiver<SessionCmd>,
    instance: mpsc::Sender<InstanceMsg>,
    clock: Instant,
}

async fn read_opt(c: Option<&mut Conn>) -> io::Result<usize> {
    match c {
        Some(c) => {
            c.rbuf.reserve(READ_CHUNK);
            c.stream.read_buf(&mut c.rbuf).await
        }
        None => std::future::pending().await,
    }
}

async fn connect_opt(c: &mut Option<Connecting>) -> io::Result<Conn> {
    match c {
        Some(f) => f.await,
        None => std::future::pending().await,
    }
}

async fn sleep_opt(deadline: Option<Instant>) {
    match deadline {
        Some(d) => sleep_until(d).await,
        None => std::future::pending().await,
    }
}

impl SessionTask {
    pub fn new(
        p: SessionParams,
        cmds: mpsc::Receiver<SessionCmd>,
        instance: mpsc::Sender<InstanceMsg>,
    ) -> SessionTask {
        let cfg = *p.fsm.config();
        SessionTask {
            peer: p.peer,
            address: p.address,
            port: p.port,
            local_address: p.local_address,
            local_id: cfg.local_id,
            local_open: local_open(&cfg),
            fsm: p.fsm,
            ctx: SessionContext::CLASSIC,
            conn: None,
            pending: None,
            restart_probe: None,
            held_open: None,
            connecting: None,
            epoch: 0,
            stash: None,
            io_failed: false,
            instance_gone: false,
            actions: Vec::new(),
            cmds,
            instance,
            clock: Instant::now(),
        }
    }

    fn now(&self) -> u64 {
        u64::try_from(self.clock.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn event(&mut self, e: Event) {
        let now = self.now();
        self.fsm.handle(e, now, &mut self.actions);
    }

    async fn tell(&mut self, m: InstanceMsg) {
        if self.instance.send(m).await.is_err() {
            self.instance_gone = true;
        }
    }

    /// Runs the session until told to stop (or the instance is gone).
    pub async fn run(mut self) {
        let passive = self.fsm.config().passive;
        self.event(if passive {
            Event::ManualStartPassive
        } else {
            Event::ManualStart
        });
        loop {
            self.execute().await;
            self.replay_held_open().await;
            if self.instance_gone {
                break;
            }
            let deadline = self
                .fsm
                .next_deadline()
                .map(|(_, d)| self.clock + Duration::from_millis(d));
            tokio::select! {
                cmd = self.cmds.recv() => match cmd {
                    None | Some(SessionCmd::Stop) => {
                        self.event(Event::ManualStop);
                        self.execute().await;
                        break;
                    }
                    Some(SessionCmd::Send { epoch, messages }) => self.send_updates(epoch, messages).await,
                    Some(SessionCmd::Incoming(c)) => self.incoming(c).await,
                },
                r = read_opt(self.conn.as_mut()) => self.on_read(r).await,
                r = read_opt(self.pending.as_mut()) => self.on_pending_read(r).await,
                r = connect_opt(&mut self.connecting) => {
                    self.connecting = None;
                    match r {
                        Ok(c) if self.conn.is_none() => {
                            self.conn = Some(c);
                            self.event(Event::TcpConnectionAcknowledged);
                        }
                        Ok(_) => {}
                        Err(e) => {
                            tracing::debug!(peer = %self.address, error = %e, "BGP: connect failed");
                            self.event(Event::TcpConnectionFails);
                        }
                    }
                }
                () = sleep_opt(deadline) => {
                    let now = self.now();
                    self.fsm.poll(now, &mut self.actions);
                }
                () = sleep_opt(self.restart_probe) => self.probe_expired().await,
            }
        }
    }

    /// Carries out the FSM's actions (and those of the events they cause).
    async fn execute(&mut self) {
        while !self.actions.is_empty() {
            let actions = std::mem::take(&mut self.actions);
            for a in actions {
                self.act(a).await;
            }
            if std::mem::take(&mut self.io_failed) && self.conn.is_some() {
                self.conn_failed();
            }
        }
    }

    async fn act(&mut self, a: Action) {
        match a {
            Action::Connect => self.start_connect(),
            Action::Disconnect => {
                self.conn = None;
                self.connecting = None;
            }
            Action::ReplaceConnection => self.conn = self.pending.take(),
            Action::SendOpen => {
                let open = Message::Open(self.local_open.clone());
                self.send(&open).await;
            }
            Action::SendKeepalive => self.send(&Message::Keepalive).await,
            Action::SendNotification { code, subcode } => {
                let n = match self.stash.take() {
                    Some(n) if n.code == code && n.subcode == subcode => n,
                    _ => Notification::new(code, subcode, Vec::new()),
                };
                self.send(&Message::Notification(n.clone())).await;
                self.tell(InstanceMsg::Notification {
                    peer: self.peer,
                    sent: true,
                    notification: n,
                })
                .await;
            }
            Action::StartTimer { .. } | Action::StopTimer(_) => {}
            Action::StateChange { from, to } => {
                tracing::info!(peer = %self.address, ?from, ?to, "BGP session state");
                self.tell(InstanceMsg::State {
                    peer: self.peer,
                    state: to,
                })
                .await;
            }
            Action::SessionUp(negotiated) => {
                self.epoch += 1;
                let local = self.conn.as_ref().and_then(|c| c.local);
                self.tell(InstanceMsg::SessionUp {
                    peer: self.peer,
                    epoch: self.epoch,
                    negotiated,
                    local,
                })
                .await;
            }
            Action::SessionDown(down) => {
                self.tell(InstanceMsg::SessionDown {
                    peer: self.peer,
                    down,
                })
                .await
            }
            Action::SweepStale(afi) => {
                self.tell(InstanceMsg::SweepStale {
                    peer: self.peer,
                    afi,
                })
                .await
            }
        }
    }

    fn start_connect(&mut self) {
        let remote = SocketAddr::new(self.address, self.port);
        let bind = self.local_address;
        self.connecting = Some(Box::pin(async move {
            let sock = if remote.is_ipv4() {
                TcpSocket::new_v4()?
            } else {
                TcpSocket::new_v6()?
            };
            if let Some(l) = bind {
                sock.bind(SocketAddr::new(l, 0))?;
            }
            let s = sock.connect(remote).await?;
            s.set_nodelay(true)?;
            let local = s.local_addr().ok().map(|a| a.ip());
            Ok(Conn::new(
                Connection {
                    stream: Box::new(s),
                    remote: remote.ip(),
                    local,
                },
                Initiator::Local,
            ))
        }));
    }

    async fn send(&mut self, m: &Message) {
        let Some(c) = self.conn.as_mut() else { return };
        let mut buf = Vec::new();
        if let Err(e) = m.encode(&self.ctx, &mut buf) {
            tracing::warn!(peer = %self.address, error = %e, "BGP: message not encodable");
            return;
        }
        if c.write(&buf).await.is_err() {
            self.io_failed = true;
        }
    }

    async fn send_updates(&mut self, epoch: u64, messages: Vec<Vec<u8>>) {
        if epoch != self.epoch || self.fsm.state() != State::Established {
            return;
        }
        let Some(c) = self.conn.as_mut() else { return };
        for m in &messages {
            if c.stream.write_all(m).await.is_err() {
                self.io_failed = true;
                break;
            }
        }
        if !self.io_failed && c.stream.flush().await.is_err() {
            self.io_failed = true;
        }
        let now = self.now();
        self.fsm.update_sent(now, &mut self.actions);
        if std::mem::take(&mut self.io_failed) {
            self.conn_failed();
        }
    }

    async fn on_read(&mut self, r: io::Result<usize>) {
        if !matches!(r, Ok(n) if n > 0) {
            self.conn_failed();
            return;
        }
        self.process_buffer().await;
    }

    /// The current connection failed. If a restart probe is out, the peer
    /// restarted: its new connection replaces the old one (the FSM keeps
    /// the routes stale) and the OPEN it sent meanwhile is replayed.
    fn conn_failed(&mut self) {
        let probing = self.restart_probe.take().is_some();
        if probing && self.pending.is_some() && self.fsm.state() == State::Established {
            tracing::info!(peer = %self.address, "BGP: the old connection failed the probe: the peer restarted, adopting its new connection");
            self.event(Event::AdoptNewConnection);
            return;
        }
        if probing {
            // The session left Established another way meanwhile: close the
            // held connection (its OPEN is gone) so that the peer retries.
            self.pending = None;
        }
        self.held_open = None;
        self.event(Event::TcpConnectionFails);
    }

    /// After an adoption by [`Self::conn_failed`]: the new connection's
    /// OPEN that arrived while the probe was out.
    async fn replay_held_open(&mut self) {
        if self.restart_probe.is_some() || self.conn.is_none() {
            return;
        }
        let Some(open) = self.held_open.take() else {
            return;
        };
        self.on_message(Ok(Received::Open(open))).await;
        self.execute().await;
        self.process_buffer().await;
    }

    /// The old connection survived the probe: the new one was a collision
    /// with an Established session, closed (RFC 4271 6.8).
    async fn probe_expired(&mut self) {
        self.restart_probe = None;
        self.held_open = None;
        let Some(mut p) = self.pending.take() else {
            return;
        };
        tracing::info!(peer = %self.address, "BGP: the old connection is alive: the new one was a collision, closed");
        p.refuse_collision(&self.ctx).await;
    }

    /// Handles every whole message read so far.
    async fn process_buffer(&mut self) {
        while let Some(c) = self.conn.as_mut() {
            let len = match frame(&c.rbuf) {
                Ok(Some(len)) => len,
                Ok(None) => break,
                Err(n) => {
                    let subcode = n.subcode;
                    self.stash = Some(n);
                    self.event(Event::BgpHeaderErr { subcode });
                    break;
                }
            };
            let msg: Vec<u8> = c.rbuf.drain(..len).collect();
            let received = decode_message(&msg, &self.ctx);
            self.on_message(received).await;
            self.execute().await;
        }
    }

    async fn on_message(&mut self, received: Result<Received, Notification>) {
        match received {
            Err(n) => {
                let ev = match n.code {
                    code::MESSAGE_HEADER => Some(Event::BgpHeaderErr { subcode: n.subcode }),
                    code::OPEN_MESSAGE => Some(Event::BgpOpenMsgErr { subcode: n.subcode }),
                    _ => None,
                };
                match ev {
                    Some(ev) => {
                        self.stash = Some(n);
                        self.event(ev);
                    }
                    // A malformed ROUTE-REFRESH (RFC 7313): its own code.
                    None => {
                        self.send(&Message::Notification(n.clone())).await;
                        self.tell(InstanceMsg::Notification {
                            peer: self.peer,
                            sent: true,
                            notification: n,
                        })
                        .await;
                        self.event(Event::TcpConnectionFails);
                    }
                }
            }
            Ok(Received::Open(o)) => {
                self.ctx = SessionContext::negotiated(&self.local_open, &o);
                self.event(Event::BgpOpen(peer_open(&o)));
            }
            Ok(Received::Keepalive) => self.event(Event::KeepAliveMsg),
            Ok(Received::Notification(n)) => {
                tracing::info!(peer = %self.address, notification = %n, "BGP: NOTIFICATION received");
                let (code, subcode) = (n.code, n.subcode);
                self.tell(InstanceMsg::Notification {
                    peer: self.peer,
                    sent: false,
                    notification: n,
                })
                .await;
                self.event(Event::NotifMsg { code, subcode });
            }
            Ok(Received::RouteRefresh(rr)) => {
                if self.fsm.state() == State::Established && rr.subtype == 0 {
                    if let Some(afi) = rr.afi() {
                        self.tell(InstanceMsg::RouteRefresh {
                            peer: self.peer,
                            epoch: self.epoch,
                            afi,
                        })
                        .await;
                    }
                }
            }
            Ok(Received::Update(outcome)) => self.on_update(outcome).await,
        }
    }

    async fn on_update(&mut self, outcome: UpdateOutcome) {
        if self.fsm.state() != State::Established {
            // An FSM error in any other state.
            self.event(Event::UpdateMsg);
            return;
        }
        match outcome {
            UpdateOutcome::SessionReset(n) => {
                tracing::warn!(peer = %self.address, notification = %n, "BGP: UPDATE error resets the session");
                let subcode = n.subcode;
                self.stash = Some(n);
                self.event(Event::UpdateMsgErr { subcode });
            }
            UpdateOutcome::Parsed(u) if u.end_of_rib_afi().is_some() => {
                let afi = u.end_of_rib_afi().expect("checked");
                self.event(Event::EndOfRib(afi));
                self.tell(InstanceMsg::EndOfRib {
                    peer: self.peer,
                    afi,
                })
                .await;
            }
            outcome => {
                self.event(Event::UpdateMsg);
                self.tell(InstanceMsg::Update {
                    peer: self.peer,
                    epoch: self.epoch,
                    outcome,
                })
                .await;
            }
        }
    }

    /// A connection from the neighbour (RFC 4271 6.8 for collisions).
    async fn incoming(&mut self, c: Connection) {
        let mut conn = Conn::new(c, Initiator::Remote);
        match self.fsm.state() {
            State::Connect | State::Active if self.conn.is_none() => {
                self.connecting = None;
                self.conn = Some(conn);
                self.event(Event::TcpConnectionConfirmed);
            }
            State::OpenSent | State::OpenConfirm => self.pending = Some(conn),
            State::Established
                if self.pending.is_none()
                    && self
                        .fsm
                        .negotiated()
                        .is_some_and(|n| !n.graceful_restart.is_empty()) =>
            {
                // A restart or a collision: the probe of the old
                // connection tells (see `restart_probe`).
                tracing::info!(peer = %self.address, "BGP: new connection while established: probing the old one");
                self.pending = Some(conn);
                self.restart_probe = Some(Instant::now() + RESTART_PROBE);
                self.send(&Message::Keepalive).await;
                if std::mem::take(&mut self.io_failed) {
                    self.conn_failed();
                }
            }
            State::Established => conn.refuse_collision(&self.ctx).await,
            // Idle refuses connections (and a second one while connected
            // without an OPEN sent cannot happen).
            _ => {}
        }
    }

    async fn on_pending_read(&mut self, r: io::Result<usize>) {
        if !matches!(r, Ok(n) if n > 0) {
            self.pending = None;
            self.restart_probe = None;
            self.held_open = None;
            return;
        }
        let Some(p) = self.pending.as_mut() else {
            return;
        };
        let len = match frame(&p.rbuf) {
            Ok(Some(len)) => len,
            Ok(None) => return,
            Err(_) => {
                self.pending = None;
                return;
            }
        };
        let msg: Vec<u8> = p.rbuf.drain(..len).collect();
        let open = match decode_message(&msg, &self.ctx) {
            Ok(Received::Open(o)) => o,
            _ => {
                self.pending = None;
                self.restart_probe = None;
                self.held_open = None;
                return;
            }
        };
        if self.restart_probe.is_some() {
            self.held_open = Some(open);
            return;
        }
        let initiator = self.conn.as_ref().map_or(Initiator::Local, |c| c.initiator);
        match resolve_collision(self.fsm.state(), initiator, self.local_id, open.bgp_id) {
            CollisionVerdict::CloseNew => {
                if let Some(mut p) = self.pending.take() {
                    p.refuse_collision(&self.ctx).await;
                }
            }
            CollisionVerdict::CloseExisting => {
                tracing::info!(peer = %self.address, "BGP: collision, keeping the new connection");
                self.event(Event::AdoptNewConnection);
                self.execute().await;
                self.on_message(Ok(Received::Open(open))).await;
                self.execute().await;
                self.process_buffer().await;
            }
            CollisionVerdict::NoCollision => {
                // The old connection is gone meanwhile.
                if self.fsm.state() == State::Idle || self.conn.is_some() {
                    self.pending = None;
                    return;
                }
                self.connecting = None;
                self.conn = self.pending.take();
                self.event(Event::TcpConnectionConfirmed);
                self.execute().await;
                self.on_message(Ok(Received::Open(open))).await;
                self.execute().await;
                self.process_buffer().await;
            }
        }
    }
}
