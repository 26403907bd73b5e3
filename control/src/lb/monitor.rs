//! `HealthMonitor`: an actor task that probes a set of backends, each on its
//! own interval (first probe at a random point of the interval, so a pool is
//! not probed in lock-step), runs their rise/fall state machines and sends a
//! [`HealthEvent`] whenever a backend changes state.

use std::collections::hash_map::RandomState;
use std::collections::HashMap;
use std::hash::BuildHasher;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use tokio::task::{AbortHandle, JoinHandle, JoinSet};
use tokio::time::Instant;

use super::health::{BackendHealth, Health, HealthCheck};
use super::probe::{probe, ProbeFailure, ProbeOk};

/// Shortest interval the monitor schedules, whatever the check says.
pub const MIN_INTERVAL: Duration = Duration::from_millis(10);

/// A backend changed state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthEvent {
    pub backend: SocketAddr,
    pub up: bool,
    /// Why, e.g. `3 consecutive failures, last: connection refused`.
    pub reason: String,
}

/// The monitor task has stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("health monitor has stopped")]
pub struct MonitorClosed;

/// Monitor settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MonitorConfig {
    /// Start each new backend's probes at a random point of its interval
    /// (default) instead of at once, so a pool is not probed in lock-step.
    pub jitter: bool,
}

impl Default for MonitorConfig {
    fn default() -> Self {
        MonitorConfig { jitter: true }
    }
}

enum Command {
    Update(Vec<(SocketAddr, HealthCheck)>, oneshot::Sender<()>),
    Snapshot(oneshot::Sender<Vec<(SocketAddr, Health)>>),
}

/// Handle to the monitor task. Dropping it also stops the task (without
/// waiting); [`HealthMonitor::shutdown`] stops it and waits.
#[derive(Debug)]
pub struct HealthMonitor {
    commands: mpsc::Sender<Command>,
    task: JoinHandle<()>,
}

impl HealthMonitor {
    /// Starts probing `backends`. Checks should have passed
    /// [`HealthCheck::validate`] (intervals below [`MIN_INTERVAL`] are
    /// raised to it); a later entry for the same address wins. State changes go to `events`; a slow
    /// receiver slows the monitor down, a dropped one makes it stop.
    /// Needs a tokio runtime.
    pub fn spawn(
        backends: Vec<(SocketAddr, HealthCheck)>,
        events: mpsc::Sender<HealthEvent>,
    ) -> Self {
        Self::spawn_with(backends, events, MonitorConfig::default())
    }

    /// [`HealthMonitor::spawn`] with explicit settings.
    pub fn spawn_with(
        backends: Vec<(SocketAddr, HealthCheck)>,
        events: mpsc::Sender<HealthEvent>,
        config: MonitorConfig,
    ) -> Self {
        let (commands, rx) = mpsc::channel(16);
        let mut actor = Actor {
            entries: HashMap::new(),
            probes: JoinSet::new(),
            in_flight: HashMap::new(),
            events,
            jitter: config.jitter.then(RandomState::new),
            next_gen: 0,
        };
        actor.apply(backends);
        let task = tokio::spawn(actor.run(rx));
        HealthMonitor { commands, task }
    }

    /// Replaces the set of backends. Backends whose check is unchanged keep
    /// their state and schedule; a changed check keeps the Up/Down state but
    /// restarts the rise/fall count; removed backends are forgotten (no event)
    /// and report nothing after this returns.
    pub async fn update(
        &self,
        backends: Vec<(SocketAddr, HealthCheck)>,
    ) -> Result<(), MonitorClosed> {
        let (tx, rx) = oneshot::channel();
        self.commands
            .send(Command::Update(backends, tx))
            .await
            .map_err(|_| MonitorClosed)?;
        rx.await.map_err(|_| MonitorClosed)
    }

    /// Current state of every monitored backend, sorted by address.
    pub async fn snapshot(&self) -> Result<Vec<(SocketAddr, Health)>, MonitorClosed> {
        let (tx, rx) = oneshot::channel();
        self.commands
            .send(Command::Snapshot(tx))
            .await
            .map_err(|_| MonitorClosed)?;
        rx.await.map_err(|_| MonitorClosed)
    }

    /// Stops the task, cancels probes in flight and waits for it to end.
    pub async fn shutdown(self) {
        drop(self.commands);
        // A panic in the task would already have been the bug to report;
        // nothing to do with it here.
        let _ = self.task.await;
    }
}

struct Entry {
    check: HealthCheck,
    health: BackendHealth,
    /// Identifies this entry's probes: results of a replaced check are stale.
    generation: u64,
    next_due: Instant,
    /// The probe running now, if any.
    running: Option<AbortHandle>,
}

type ProbeResult = (SocketAddr, u64, Result<ProbeOk, ProbeFailure>);

struct Actor {
    entries: HashMap<SocketAddr, Entry>,
    probes: JoinSet<ProbeResult>,
    /// Which backend each running probe task belongs to.
    in_flight: HashMap<tokio::task::Id, SocketAddr>,
    events: mpsc::Sender<HealthEvent>,
    /// Source of first-probe offsets; `None` probes new backends at once.
    jitter: Option<RandomState>,
    next_gen: u64,
}

impl Actor {
    async fn run(mut self, mut commands: mpsc::Receiver<Command>) {
        loop {
            let next_due = self
                .entries
                .values()
                .filter(|e| e.running.is_none())
                .map(|e| e.next_due)
                .min();
            tokio::select! {
                cmd = commands.recv() => match cmd {
                    Some(Command::Update(set, done)) => {
                        self.apply(set);
                        let _ = done.send(());
                    }
                    Some(Command::Snapshot(reply)) => {
                        let _ = reply.send(self.snapshot());
                    }
                    None => break,
                },
                Some(joined) = self.probes.join_next_with_id(), if !self.probes.is_empty() => {
                    if !self.finished(joined).await {
                        break;
                    }
                }
                _ = sleep_until(next_due), if next_due.is_some() => self.start_due(),
            }
        }
        self.probes.shutdown().await;
    }

    /// Applies a new backend set (see [`HealthMonitor::update`]).
    fn apply(&mut self, set: Vec<(SocketAddr, HealthCheck)>) {
        let now = Instant::now();
        let wanted: HashMap<SocketAddr, HealthCheck> = set.into_iter().collect();
        self.entries.retain(|addr, e| {
            let keep = wanted.contains_key(addr);
            if !keep {
                if let Some(h) = e.running.take() {
                    h.abort();
                }
            }
            keep
        });
        for (addr, check) in wanted {
            let first_due = now + self.jitter(addr, check.interval);
            let generation = self.next_gen;
            match self.entries.get_mut(&addr) {
                Some(e) if e.check == check => continue,
                Some(e) => {
                    if let Some(h) = e.running.take() {
                        h.abort();
                    }
                    e.health.reconfigure(check.rise, check.fall);
                    e.check = check;
                    e.generation = generation;
                    e.next_due = first_due;
                }
                None => {
                    let health = BackendHealth::for_check(&check, now.into_std());
                    self.entries.insert(
                        addr,
                        Entry {
                            check,
                            health,
                            generation,
                            next_due: first_due,
                            running: None,
                        },
                    );
                }
            }
            self.next_gen += 1;
        }
    }

    fn jitter(&self, addr: SocketAddr, interval: Duration) -> Duration {
        match &self.jitter {
            Some(random) => first_probe_offset(random, (addr, self.next_gen), interval),
            None => Duration::ZERO,
        }
    }

    fn snapshot(&self) -> Vec<(SocketAddr, Health)> {
        let mut all: Vec<_> = self
            .entries
            .iter()
            .map(|(a, e)| (*a, e.health.state()))
            .collect();
        all.sort_by_key(|(a, _)| *a);
        all
    }

    /// Starts the probes that are due.
    fn start_due(&mut self) {
        let now = Instant::now();
        for (addr, e) in self.entries.iter_mut() {
            if e.running.is_some() || e.next_due > now {
                continue;
            }
            // Probes start every interval from the previous due time; after
            // a stall, skip the missed slots rather than bursting.
            // An unvalidated zero interval must not spin the actor.
            let interval = e.check.interval.max(MIN_INTERVAL);
            e.next_due += interval;
            if e.next_due <= now {
                e.next_due = now + interval;
            }
            let (addr, check, generation) = (*addr, e.check.clone(), e.generation);
            let handle = self
                .probes
                .spawn(async move { (addr, generation, probe(addr, &check).await) });
            self.in_flight.insert(handle.id(), addr);
            e.running = Some(handle);
        }
    }

    /// Handles a finished probe task; false when the event receiver is gone.
    async fn finished(
        &mut self,
        joined: Result<(tokio::task::Id, ProbeResult), tokio::task::JoinError>,
    ) -> bool {
        let (id, outcome) = match joined {
            Ok((id, r)) => (id, Some(r)),
            Err(e) => (e.id(), None), // aborted (stale) or panicked
        };
        let Some(addr) = self.in_flight.remove(&id) else {
            return true;
        };
        let Some(entry) = self.entries.get_mut(&addr) else {
            return true; // removed meanwhile
        };
        let Some((_, generation, result)) = outcome else {
            // A panicked probe counts as a failure; an aborted one belonged to
            // a replaced check and its entry is already rescheduled.
            if entry.running.as_ref().is_some_and(|h| h.id() == id) {
                entry.running = None;
            } else {
                return true;
            }
            return self
                .record(addr, Err(ProbeFailure::Io(std::io::ErrorKind::Other)))
                .await;
        };
        if generation != entry.generation {
            return true;
        }
        entry.running = None;
        self.record(addr, result).await
    }

    async fn record(&mut self, addr: SocketAddr, result: Result<ProbeOk, ProbeFailure>) -> bool {
        let Some(entry) = self.entries.get_mut(&addr) else {
            return true;
        };
        let now = Instant::now().into_std();
        let Some(t) = entry.health.record(result.is_ok(), now) else {
            return true;
        };
        let last = match &result {
            Ok(ok) => ok.to_string(),
            Err(fail) => fail.to_string(),
        };
        let noun = match (result.is_ok(), t.run) {
            (true, 1) => "success",
            (true, _) => "successes",
            (false, 1) => "failure",
            (false, _) => "failures",
        };
        let event = HealthEvent {
            backend: addr,
            up: t.to.is_up(),
            reason: format!("{} consecutive {noun}, last: {last}", t.run),
        };
        self.events.send(event).await.is_ok()
    }
}

/// A random offset in `[0, interval)` for a backend's first probe, drawn by
/// hashing `key` with the monitor's random keys.
fn first_probe_offset(
    random: &RandomState,
    key: (SocketAddr, u64),
    interval: Duration,
) -> Duration {
    let nanos = interval.as_nanos().clamp(1, u128::from(u64::MAX)) as u64;
    Duration::from_nanos(random.hash_one(key) % nanos)
}

async fn sleep_until(at: Option<Instant>) {
    if let Some(at) = at {
        tokio::time::sleep_until(at).await;
    }
}

#[cfg(test)]
#[path = "monitor_tests.rs"]
mod tests;
