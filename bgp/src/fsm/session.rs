//! The RFC 4271 section 8 state machine of one BGP connection, with its
//! timers as deadlines (ms on the caller's clock) and the graceful-restart
//! helper side of RFC 4724.

use super::config::{code, SessionConfig, OPEN_HOLD_TIME_SECS};
use super::event::{Action, AfiSet, Event, Negotiated, PeerOpen, SessionDown, State, Timer};

/// Why an Established session ended, for the graceful-restart decision.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum DownCause {
    /// TCP failed: the peer may be restarting.
    Transport,
    /// A NOTIFICATION was sent or received.
    Notification { code: u8, subcode: u8 },
    /// ManualStop: the operator wants the routes gone.
    Admin,
}

/// One BGP connection's state machine. Feed it events with [`Session::handle`]
/// (or let [`Session::poll`] fire due timers) and carry out the actions.
#[derive(Clone, Debug)]
pub struct Session {
    cfg: SessionConfig,
    state: State,
    deadlines: [Option<u64>; Timer::ALL.len()],
    connect_retry_counter: u32,
    /// Consecutive failures, for the idle-hold back-off.
    failures: u32,
    /// Started (manually or automatically) and not stopped: restart after
    /// errors once the idle-hold timer runs out.
    auto_restart: bool,
    passive: bool,
    /// Set from the peer's OPEN (OpenConfirm) and kept while Established.
    negotiated: Option<Negotiated>,
    established_at: Option<u64>,
    /// Families whose routes from this peer are kept stale (RFC 4724).
    stale: AfiSet,
}

fn secs(s: u32) -> u64 {
    u64::from(s) * 1000
}

impl Session {
    /// A session in Idle. The configuration is expected to have passed
    /// [`SessionConfig::validate`].
    pub fn new(cfg: SessionConfig) -> Session {
        Session {
            cfg,
            state: State::Idle,
            deadlines: [None; Timer::ALL.len()],
            connect_retry_counter: 0,
            failures: 0,
            auto_restart: false,
            passive: cfg.passive,
            negotiated: None,
            established_at: None,
            stale: AfiSet::EMPTY,
        }
    }

    pub fn state(&self) -> State {
        self.state
    }

    pub fn config(&self) -> &SessionConfig {
        &self.cfg
    }

    /// What was agreed with the peer (from its OPEN until the session ends).
    pub fn negotiated(&self) -> Option<&Negotiated> {
        self.negotiated.as_ref()
    }

    pub fn connect_retry_counter(&self) -> u32 {
        self.connect_retry_counter
    }

    /// Families whose routes from this peer are currently stale.
    pub fn stale_families(&self) -> AfiSet {
        self.stale
    }

    pub fn deadline(&self, timer: Timer) -> Option<u64> {
        self.deadlines[timer.index()]
    }

    /// The earliest armed timer.
    pub fn next_deadline(&self) -> Option<(Timer, u64)> {
        Timer::ALL
            .iter()
            .filter_map(|t| self.deadline(*t).map(|d| (*t, d)))
            .min_by_key(|&(t, d)| (d, t))
    }

    /// Fires every timer due at `now`, earliest first.
    pub fn poll(&mut self, now: u64, out: &mut Vec<Action>) {
        while let Some((timer, deadline)) = self.next_deadline() {
            if deadline > now {
                break;
            }
            let event = match timer {
                Timer::ConnectRetry => Event::ConnectRetryTimerExpires,
                Timer::Hold => Event::HoldTimerExpires,
                Timer::Keepalive => Event::KeepaliveTimerExpires,
                Timer::IdleHold => Event::IdleHoldTimerExpires,
                Timer::GracefulRestart => Event::GracefulRestartTimerExpires,
                Timer::StalePath => Event::StalePathTimerExpires,
            };
            self.handle(event, now, out);
        }
    }

    /// The caller sent an UPDATE: the keepalive timer starts over
    /// (RFC 4271 10).
    pub fn update_sent(&mut self, now: u64, out: &mut Vec<Action>) {
        if self.state == State::Established {
            if let Some(ka) = self.keepalive_ms() {
                self.start_timer(Timer::Keepalive, now + ka, out);
            }
        }
    }

    /// Processes one event at time `now` (ms), appending the actions.
    /// A timer event for a timer that is not armed or not yet due (it was
    /// stopped or restarted meanwhile) is ignored.
    pub fn handle(&mut self, event: Event, now: u64, out: &mut Vec<Action>) {
        if let Some(timer) = timer_of(&event) {
            match self.deadline(timer) {
                Some(d) if d <= now => self.deadlines[timer.index()] = None,
                _ => return,
            }
        }
        match event {
            Event::ManualStop => return self.manual_stop(now, out),
            Event::AdoptNewConnection => return self.adopt_new_connection(now, out),
            Event::GracefulRestartTimerExpires | Event::StalePathTimerExpires => {
                return self.sweep_all(out)
            }
            _ => {}
        }
        match self.state {
            State::Idle => self.in_idle(event, now, out),
            State::Connect => self.in_connect(event, now, out),
            State::Active => self.in_active(event, now, out),
            State::OpenSent => self.in_open_sent(event, now, out),
            State::OpenConfirm => self.in_open_confirm(event, now, out),
            State::Established => self.in_established(event, now, out),
        }
    }

    fn in_idle(&mut self, event: Event, now: u64, out: &mut Vec<Action>) {
        match event {
            Event::ManualStart | Event::ManualStartPassive => {
                // The operator asked: no back-off.
                self.auto_restart = true;
                self.failures = 0;
                self.stop_timer(Timer::IdleHold, out);
                self.start(event == Event::ManualStartPassive, now, out);
            }
            // Damped: an automatic start waits for the idle-hold timer.
            Event::AutomaticStart { passive } if self.deadline(Timer::IdleHold).is_none() => {
                self.auto_restart = true;
                self.start(passive, now, out);
            }
            Event::IdleHoldTimerExpires => self.start(self.passive, now, out),
            // Idle refuses connections.
            Event::TcpConnectionAcknowledged | Event::TcpConnectionConfirmed => {
                out.push(Action::Disconnect)
            }
            _ => {}
        }
    }

    fn start(&mut self, passive: bool, now: u64, out: &mut Vec<Action>) {
        self.passive = passive || self.cfg.passive;
        self.connect_retry_counter = 0;
        self.start_timer(
            Timer::ConnectRetry,
            now + secs(self.cfg.connect_retry_secs),
            out,
        );
        if self.passive {
            self.set_state(State::Active, out);
        } else {
            out.push(Action::Connect);
            self.set_state(State::Connect, out);
        }
    }

    fn in_connect(&mut self, event: Event, now: u64, out: &mut Vec<Action>) {
        match event {
            Event::ManualStart | Event::ManualStartPassive | Event::AutomaticStart { .. } => {}
            Event::ConnectRetryTimerExpires => {
                out.push(Action::Disconnect);
                self.start_timer(
                    Timer::ConnectRetry,
                    now + secs(self.cfg.connect_retry_secs),
                    out,
                );
                out.push(Action::Connect);
            }
            Event::TcpConnectionAcknowledged | Event::TcpConnectionConfirmed => {
                self.send_open(now, out)
            }
            _ => self.fail(None, DownCause::Transport, now, out),
        }
    }

    fn in_active(&mut self, event: Event, now: u64, out: &mut Vec<Action>) {
        match event {
            Event::ManualStart | Event::ManualStartPassive | Event::AutomaticStart { .. } => {}
            Event::ConnectRetryTimerExpires => {
                self.start_timer(
                    Timer::ConnectRetry,
                    now + secs(self.cfg.connect_retry_secs),
                    out,
                );
                // A passive session keeps listening and never connects out.
                if !self.passive {
                    out.push(Action::Connect);
                    self.set_state(State::Connect, out);
                }
            }
            Event::TcpConnectionAcknowledged | Event::TcpConnectionConfirmed => {
                self.send_open(now, out)
            }
            _ => self.fail(None, DownCause::Transport, now, out),
        }
    }

    fn send_open(&mut self, now: u64, out: &mut Vec<Action>) {
        self.stop_timer(Timer::ConnectRetry, out);
        out.push(Action::SendOpen);
        self.start_timer(Timer::Hold, now + secs(OPEN_HOLD_TIME_SECS), out);
        self.set_state(State::OpenSent, out);
    }

    fn in_open_sent(&mut self, event: Event, now: u64, out: &mut Vec<Action>) {
        match event {
            Event::ManualStart
            | Event::ManualStartPassive
            | Event::AutomaticStart { .. }
            | Event::TcpConnectionAcknowledged
            | Event::TcpConnectionConfirmed => {}
            Event::HoldTimerExpires => self.fail(
                Some((code::HOLD_TIMER_EXPIRED, 0)),
                DownCause::Transport,
                now,
                out,
            ),
            Event::TcpConnectionFails => {
                // Back to listening (RFC 4271 8.2.2, OpenSent).
                out.push(Action::Disconnect);
                self.stop_timer(Timer::Hold, out);
                self.start_timer(
                    Timer::ConnectRetry,
                    now + secs(self.cfg.connect_retry_secs),
                    out,
                );
                self.set_state(State::Active, out);
            }
            Event::BgpOpen(open) => match self.check_open(&open) {
                Err(subcode) => self.fail(
                    Some((code::OPEN_MESSAGE, subcode)),
                    DownCause::Transport,
                    now,
                    out,
                ),
                Ok(()) => self.accept_open(open, now, out),
            },
            _ => self.common_errors(event, code::FSM_UNEXPECTED_IN_OPENSENT, now, out),
        }
    }

    /// RFC 4271 6.2 checks the codec cannot make: they need the
    /// configuration.
    fn check_open(&self, open: &PeerOpen) -> Result<(), u8> {
        if open.asn != self.cfg.peer_as {
            return Err(code::BAD_PEER_AS);
        }
        let id = open.bgp_id;
        // RFC 6286: the same identifier is refused only within one AS.
        if id.is_unspecified()
            || id.is_broadcast()
            || id.is_multicast()
            || (id == self.cfg.local_id && self.cfg.is_ibgp())
        {
            return Err(code::BAD_BGP_IDENTIFIER);
        }
        if matches!(open.hold_time_secs, 1 | 2) {
            return Err(code::UNACCEPTABLE_HOLD_TIME);
        }
        Ok(())
    }

    fn accept_open(&mut self, open: PeerOpen, now: u64, out: &mut Vec<Action>) {
        let hold = self.cfg.hold_time_secs.min(open.hold_time_secs);
        let caps = open.capabilities;
        let families = self.cfg.families.intersection(caps.families());
        let graceful_restart = match (self.cfg.graceful_restart, caps.graceful_restart) {
            (Some(_), Some(gr)) => gr.afis.intersection(families),
            _ => AfiSet::EMPTY,
        };
        // RFC 4724 4.2: families the peer did not preserve lose their stale
        // routes as soon as its new OPEN says so.
        let preserved = match caps.graceful_restart {
            Some(gr) => graceful_restart.intersection(gr.forwarding_preserved),
            None => AfiSet::EMPTY,
        };
        for afi in self.stale.difference(preserved).iter() {
            out.push(Action::SweepStale(afi));
        }
        self.stale = self.stale.intersection(preserved);
        self.negotiated = Some(Negotiated {
            peer: open,
            hold_time_secs: hold,
            keepalive_ms: u64::from(hold) * 1000 / 3,
            families,
            four_octet_as: caps.four_octet_as,
            route_refresh: caps.route_refresh,
            graceful_restart,
        });
        self.stop_timer(Timer::ConnectRetry, out);
        out.push(Action::SendKeepalive);
        match self.keepalive_ms() {
            Some(ka) => {
                self.start_timer(Timer::Keepalive, now + ka, out);
                self.start_timer(Timer::Hold, now + u64::from(hold) * 1000, out);
            }
            // Hold time 0: neither timer runs (RFC 4271 4.4).
            None => self.stop_timer(Timer::Hold, out),
        }
        self.set_state(State::OpenConfirm, out);
    }

    fn in_open_confirm(&mut self, event: Event, now: u64, out: &mut Vec<Action>) {
        match event {
            Event::ManualStart
            | Event::ManualStartPassive
            | Event::AutomaticStart { .. }
            | Event::TcpConnectionAcknowledged
            | Event::TcpConnectionConfirmed => {}
            Event::HoldTimerExpires => self.fail(
                Some((code::HOLD_TIMER_EXPIRED, 0)),
                DownCause::Transport,
                now,
                out,
            ),
            Event::KeepaliveTimerExpires => self.send_keepalive(now, out),
            Event::TcpConnectionFails => self.fail(None, DownCause::Transport, now, out),
            Event::KeepAliveMsg => {
                self.restart_hold(now, out);
                self.established_at = Some(now);
                self.set_state(State::Established, out);
                if let Some(n) = self.negotiated {
                    out.push(Action::SessionUp(n));
                }
                self.stop_timer(Timer::GracefulRestart, out);
                if !self.stale.is_empty() {
                    let wait = self.cfg.graceful_restart.map_or(0, |g| g.stale_path_secs);
                    self.start_timer(Timer::StalePath, now + secs(wait), out);
                }
            }
            _ => self.common_errors(event, code::FSM_UNEXPECTED_IN_OPENCONFIRM, now, out),
        }
    }

    fn in_established(&mut self, event: Event, now: u64, out: &mut Vec<Action>) {
        match event {
            Event::ManualStart
            | Event::ManualStartPassive
            | Event::AutomaticStart { .. }
            | Event::TcpConnectionAcknowledged
            | Event::TcpConnectionConfirmed => {}
            Event::HoldTimerExpires => self.fail(
                Some((code::HOLD_TIMER_EXPIRED, 0)),
                DownCause::Notification {
                    code: code::HOLD_TIMER_EXPIRED,
                    subcode: 0,
                },
                now,
                out,
            ),
            Event::KeepaliveTimerExpires => self.send_keepalive(now, out),
            Event::TcpConnectionFails => self.fail(None, DownCause::Transport, now, out),
            Event::KeepAliveMsg | Event::UpdateMsg => self.restart_hold(now, out),
            Event::EndOfRib(afi) => {
                self.restart_hold(now, out);
                if self.stale.contains(afi) {
                    self.stale.remove(afi);
                    out.push(Action::SweepStale(afi));
                    if self.stale.is_empty() {
                        self.stop_timer(Timer::StalePath, out);
                    }
                }
            }
            Event::UpdateMsgErr { subcode } => self.fail(
                Some((code::UPDATE_MESSAGE, subcode)),
                DownCause::Notification {
                    code: code::UPDATE_MESSAGE,
                    subcode,
                },
                now,
                out,
            ),
            _ => self.common_errors(event, code::FSM_UNEXPECTED_IN_ESTABLISHED, now, out),
        }
    }

    /// Message errors, collision dumps, received NOTIFICATIONs, and
    /// otherwise an FSM error NOTIFICATION with `fsm_subcode`.
    fn common_errors(&mut self, event: Event, fsm_subcode: u8, now: u64, out: &mut Vec<Action>) {
        let sent = match event {
            // A NOTIFICATION is not answered with another.
            Event::NotifMsg { code, subcode } => {
                return self.fail(None, DownCause::Notification { code, subcode }, now, out)
            }
            Event::BgpHeaderErr { subcode } => (code::MESSAGE_HEADER, subcode),
            Event::BgpOpenMsgErr { subcode } => (code::OPEN_MESSAGE, subcode),
            Event::OpenCollisionDump => (code::CEASE, code::CEASE_CONNECTION_COLLISION),
            _ => (code::FSM, fsm_subcode),
        };
        self.fail(
            Some(sent),
            DownCause::Notification {
                code: sent.0,
                subcode: sent.1,
            },
            now,
            out,
        );
    }

    fn send_keepalive(&mut self, now: u64, out: &mut Vec<Action>) {
        out.push(Action::SendKeepalive);
        if let Some(ka) = self.keepalive_ms() {
            self.start_timer(Timer::Keepalive, now + ka, out);
        }
    }

    fn restart_hold(&mut self, now: u64, out: &mut Vec<Action>) {
        if let Some(n) = self.negotiated {
            if n.hold_time_secs > 0 {
                self.start_timer(Timer::Hold, now + u64::from(n.hold_time_secs) * 1000, out);
            }
        }
    }

    /// Keepalive interval, None when the negotiated hold time is 0.
    fn keepalive_ms(&self) -> Option<u64> {
        self.negotiated
            .filter(|n| n.hold_time_secs > 0)
            .map(|n| n.keepalive_ms)
    }

    /// Ends the connection after an error: optional NOTIFICATION, close,
    /// session down if it was up, Idle with the back-off.
    fn fail(
        &mut self,
        notification: Option<(u8, u8)>,
        cause: DownCause,
        now: u64,
        out: &mut Vec<Action>,
    ) {
        if let Some((code, subcode)) = notification {
            out.push(Action::SendNotification { code, subcode });
        }
        out.push(Action::Disconnect);
        if self.state == State::Established {
            self.session_down(cause, now, out);
        }
        self.connect_retry_counter += 1;
        let stable = self
            .established_at
            .is_some_and(|t| now.saturating_sub(t) >= secs(self.cfg.idle_hold_stable_secs));
        if stable {
            self.failures = 0;
        }
        self.failures = self.failures.saturating_add(1);
        self.enter_idle(out);
        if self.auto_restart {
            let backoff = self.idle_hold_ms();
            self.start_timer(Timer::IdleHold, now + backoff, out);
        }
    }

    /// Back-off for the current run of failures: initial × 2^(n-1), capped.
    fn idle_hold_ms(&self) -> u64 {
        let shift = self.failures.saturating_sub(1).min(20);
        let ms = secs(self.cfg.idle_hold_initial_secs) << shift;
        ms.min(secs(self.cfg.idle_hold_max_secs))
    }

    fn session_down(&mut self, cause: DownCause, now: u64, out: &mut Vec<Action>) {
        let Some(n) = self.negotiated else { return };
        let peer_gr = n.peer.capabilities.graceful_restart;
        let restart_secs = peer_gr.map_or(0, |g| g.restart_time_secs);
        let notification_ok = self.cfg.graceful_restart.is_some_and(|g| g.notification)
            && peer_gr.is_some_and(|g| g.notification);
        let eligible = match cause {
            DownCause::Transport => true,
            // RFC 8538: with the N bit any NOTIFICATION but Hard Reset.
            DownCause::Notification { code, subcode } => {
                notification_ok && !(code == code::CEASE && subcode == code::CEASE_HARD_RESET)
            }
            DownCause::Admin => false,
        };
        let keep = if eligible && restart_secs > 0 {
            n.graceful_restart
        } else {
            AfiSet::EMPTY
        };
        let withdraw = n.families.union(self.stale).difference(keep);
        self.stale = keep;
        out.push(Action::SessionDown(SessionDown {
            keep_stale: keep,
            withdraw,
        }));
        self.stop_timer(Timer::StalePath, out);
        if !keep.is_empty() {
            self.start_timer(
                Timer::GracefulRestart,
                now + secs(u32::from(restart_secs)),
                out,
            );
        }
    }

    fn manual_stop(&mut self, now: u64, out: &mut Vec<Action>) {
        match self.state {
            State::Idle => {}
            State::Connect | State::Active => out.push(Action::Disconnect),
            State::OpenSent | State::OpenConfirm | State::Established => {
                out.push(Action::SendNotification {
                    code: code::CEASE,
                    subcode: code::CEASE_ADMIN_SHUTDOWN,
                });
                out.push(Action::Disconnect);
                if self.state == State::Established {
                    self.session_down(DownCause::Admin, now, out);
                }
            }
        }
        self.sweep_all(out);
        self.auto_restart = false;
        self.connect_retry_counter = 0;
        self.failures = 0;
        self.stop_timer(Timer::IdleHold, out);
        self.enter_idle(out);
    }

    fn adopt_new_connection(&mut self, now: u64, out: &mut Vec<Action>) {
        match self.state {
            State::Idle => out.push(Action::Disconnect),
            State::Connect | State::Active => {
                out.push(Action::ReplaceConnection);
                self.send_open(now, out);
            }
            State::OpenSent | State::OpenConfirm | State::Established => {
                if self.state == State::Established {
                    // The peer restarted: the old connection is dead.
                    self.session_down(DownCause::Transport, now, out);
                } else {
                    out.push(Action::SendNotification {
                        code: code::CEASE,
                        subcode: code::CEASE_CONNECTION_COLLISION,
                    });
                }
                out.push(Action::ReplaceConnection);
                self.stop_timer(Timer::Keepalive, out);
                self.negotiated = None;
                self.established_at = None;
                self.send_open(now, out);
            }
        }
    }

    fn sweep_all(&mut self, out: &mut Vec<Action>) {
        for afi in self.stale.iter() {
            out.push(Action::SweepStale(afi));
        }
        self.stale = AfiSet::EMPTY;
        self.stop_timer(Timer::GracefulRestart, out);
        self.stop_timer(Timer::StalePath, out);
    }

    fn enter_idle(&mut self, out: &mut Vec<Action>) {
        for t in [Timer::ConnectRetry, Timer::Hold, Timer::Keepalive] {
            self.stop_timer(t, out);
        }
        self.negotiated = None;
        self.established_at = None;
        self.set_state(State::Idle, out);
    }

    fn set_state(&mut self, to: State, out: &mut Vec<Action>) {
        if self.state != to {
            out.push(Action::StateChange {
                from: self.state,
                to,
            });
            self.state = to;
        }
    }

    fn start_timer(&mut self, timer: Timer, deadline_ms: u64, out: &mut Vec<Action>) {
        self.deadlines[timer.index()] = Some(deadline_ms);
        out.push(Action::StartTimer { timer, deadline_ms });
    }

    fn stop_timer(&mut self, timer: Timer, out: &mut Vec<Action>) {
        if self.deadlines[timer.index()].take().is_some() {
            out.push(Action::StopTimer(timer));
        }
    }
}

fn timer_of(event: &Event) -> Option<Timer> {
    match event {
        Event::ConnectRetryTimerExpires => Some(Timer::ConnectRetry),
        Event::HoldTimerExpires => Some(Timer::Hold),
        Event::KeepaliveTimerExpires => Some(Timer::Keepalive),
        Event::IdleHoldTimerExpires => Some(Timer::IdleHold),
        Event::GracefulRestartTimerExpires => Some(Timer::GracefulRestart),
        Event::StalePathTimerExpires => Some(Timer::StalePath),
        _ => None,
    }
}
