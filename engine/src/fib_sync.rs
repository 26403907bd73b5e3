//! Keeps the engine's FIB in step with the control process's table
//! generations, incrementally.
//!
//! A delta generation (a list of route changes) is applied in place to a
//! private copy of the current table, which is then published; building
//! the whole table again (about a second at 1 M routes) happens only when
//! the engine starts or has lost the thread (a full generation after a
//! restart of either process). Two tables take turns, left-right style:
//! after a publication the previous table stays "behind" with the changes
//! it lacks; once every worker has let go of it (its `Arc` is unique again,
//! which happens between two of their batches) it catches up and becomes
//! the spare that takes the next changes. So a single route change costs a
//! few table writes, never a copy of the 64 MiB first-level table, and no
//! worker ever sees a table being written.
//!
//! Pushed interfaces (merged per port with the configured ones, see
//! `pushed_ifaces`) travel in every generation; when they change, the
//! table is built whole on them, and workers rebuild their interface and
//! neighbor state as they adopt it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use patronus_shm::{catch_up, CatchUp, Generation, RouteChange, RouteKind, RuntimeDir, ShmError};

use crate::config::EngineConfig;
use crate::fib::lpm::LpmError;
use crate::fib::{Fib, FibError, PushedChange, RouteAction, StaticRoute};
use crate::pushed_ifaces::effective_interfaces;

/// How long an update waits for the workers to let go of the previous
/// table before it copies the current one instead. Workers let go between
/// two batches, i.e. within microseconds unless one sleeps in poll(2).
const BEHIND_WAIT: Duration = Duration::from_millis(20);

/// Why a generation could not be applied; the engine keeps its table.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error("loading generations: {0}")]
    Shm(#[from] ShmError),
    #[error("building the FIB: {0}")]
    Build(#[from] FibError),
    #[error("applying generation {generation}: {source}")]
    Apply {
        generation: u64,
        #[source]
        source: LpmError,
    },
}

/// A table ready to publish.
#[derive(Debug)]
pub struct Update {
    pub fib: Arc<Fib>,
    /// The shared-memory generation it reflects.
    pub generation: u64,
    /// Built whole (true) or by changes (false).
    pub full: bool,
    /// Route changes applied (or pushed routes built, when full).
    pub changes: usize,
    /// Pushed routes left out: a gateway on no connected subnet.
    pub skipped: usize,
    /// The interfaces changed (workers rebuild their interface state).
    pub interfaces_changed: bool,
    /// Pushed interfaces left out, and why (reported on full builds).
    pub warnings: Vec<String>,
}

/// The FIB's side of the control link.
#[derive(Debug)]
pub struct FibSync {
    cfg: Arc<EngineConfig>,
    /// Shared-memory generation `current` reflects (0 = configuration only).
    have: u64,
    /// The published table.
    current: Arc<Fib>,
    /// The previously published table, possibly still used by workers, and
    /// the changes that bring it to `current`.
    behind: Option<(Arc<Fib>, Vec<PushedChange>)>,
    /// A private table equal to `current`.
    spare: Option<Fib>,
    /// Whole-table copies made (when the previous table was not free).
    copies: u64,
}

/// A change of a delta generation as the FIB takes it; `None` for kinds the
/// engine derives itself (connected and local routes).
pub fn pushed_change(c: &RouteChange) -> Option<PushedChange> {
    let r = &c.route;
    if c.is_withdraw() {
        return Some(PushedChange::Withdraw {
            prefix: r.prefix,
            len: r.prefix_len,
        });
    }
    pushed_route(r).map(PushedChange::Upsert)
}

/// A pushed route as the FIB takes it; `None` for kinds the engine
/// derives itself (connected and local routes).
pub fn pushed_route(r: &patronus_shm::RouteEntry) -> Option<StaticRoute> {
    let action = match r.route_kind() {
        // Into a WireGuard tunnel by its pushed id. A tunnel the engine does
        // not run (not pushed yet, or an id out of range) drops what is
        // routed into it: meant for a tunnel, never sent in clear.
        None => match r.tunnel_id() {
            Some(id) => RouteAction::Tunnel(crate::wg_plan::pushed_tunnel_key(id)),
            None => return None,
        },
        Some(RouteKind::Blackhole) => RouteAction::Blackhole,
        Some(RouteKind::Via) => RouteAction::Via(r.nexthops().map(|(gw, _)| gw).collect()),
        Some(RouteKind::Connected | RouteKind::Local) => return None,
    };
    Some(StaticRoute {
        prefix: r.prefix,
        len: r.prefix_len,
        action,
    })
}

fn changes_of(gens: &[Generation]) -> Vec<PushedChange> {
    gens.iter()
        .flat_map(|g| {
            g.view()
                .route_changes()
                .iter()
                .filter_map(pushed_change)
                .collect::<Vec<_>>()
        })
        .collect()
}

/// Applies `changes` to `fib`; the number skipped.
fn apply_all(fib: &mut Fib, changes: &[PushedChange], generation: u64) -> Result<usize, SyncError> {
    let mut skipped = 0;
    for c in changes {
        if !fib
            .apply(c)
            .map_err(|source| SyncError::Apply { generation, source })?
        {
            skipped += 1;
        }
    }
    Ok(skipped)
}

impl FibSync {
    /// Starts from `current`, the table the workers use (configuration only).
    pub fn new(cfg: Arc<EngineConfig>, current: Arc<Fib>) -> Self {
        FibSync {
            cfg,
            have: 0,
            current,
            behind: None,
            spare: None,
            copies: 0,
        }
    }

    /// The shared-memory generation the current table reflects.
    pub fn have(&self) -> u64 {
        self.have
    }

    /// Brings the table to `newest` (by its deltas when they apply to what
    /// we have, else from the newest full generation) and returns it to
    /// publish. On error nothing changes.
    pub fn update(&mut self, dir: &RuntimeDir, newest: Generation) -> Result<Update, SyncError> {
        let number = newest.number();
        let (interfaces, warnings) = effective_interfaces(&self.cfg, newest.view().interfaces());
        let interfaces_changed = interfaces != **self.current.interfaces();
        // Other interfaces renumber next hops: build whole from the newest
        // full generation, whatever we hold.
        let have = if interfaces_changed { 0 } else { self.have };
        let interfaces = if interfaces_changed {
            Arc::new(interfaces)
        } else {
            self.current.interfaces().clone()
        };
        match catch_up(dir, have, newest)? {
            CatchUp::Deltas(gens) => {
                let changes = changes_of(&gens);
                let mut fib = self.take_spare();
                // On error the half-changed copy is dropped here.
                let skipped = apply_all(&mut fib, &changes, number)?;
                let n = changes.len();
                Ok(self.install(fib, Some(changes), number, n, skipped))
            }
            CatchUp::Full { base, deltas } => {
                let routes: Vec<StaticRoute> = base
                    .view()
                    .routes()
                    .iter()
                    .filter_map(pushed_route)
                    .collect();
                let (mut fib, mut skipped) = Fib::build_on(&self.cfg, interfaces, &routes)?;
                let changes = changes_of(&deltas);
                skipped += apply_all(&mut fib, &changes, number)?;
                let n = routes.len() + changes.len();
                // Neither older table can catch up cheaply: start over.
                self.spare = None;
                let mut up = self.install(fib, None, number, n, skipped);
                up.full = true;
                up.interfaces_changed = interfaces_changed;
                up.warnings = warnings;
                Ok(up)
            }
        }
    }

    /// Idle-time work, between generations: readies the spare table (the
    /// previous one caught up once the workers let go of it, or else a
    /// copy). Returns true when it did something.
    pub fn prepare(&mut self) -> bool {
        if self.spare.is_some() {
            return false;
        }
        match self.behind.take() {
            Some((old, pending)) => match Arc::try_unwrap(old) {
                Ok(fib) => {
                    self.spare = self.catch_up_behind(fib, &pending);
                    true
                }
                Err(old) => {
                    self.behind = Some((old, pending));
                    false
                }
            },
            None => {
                self.spare = Some(self.copy_current());
                true
            }
        }
    }

    fn catch_up_behind(&self, mut fib: Fib, pending: &[PushedChange]) -> Option<Fib> {
        // These changes succeeded on `current`, which was this very table
        // plus them; a failure would mean a bug, so fall back to a copy.
        apply_all(&mut fib, pending, self.have).ok().map(|_| fib)
    }

    /// A private table equal to `current`: the spare, the previous table
    /// caught up (waiting briefly for the workers to let go of it), or a
    /// copy.
    fn take_spare(&mut self) -> Fib {
        if let Some(f) = self.spare.take() {
            return f;
        }
        if let Some((mut old, pending)) = self.behind.take() {
            let deadline = Instant::now() + BEHIND_WAIT;
            loop {
                match Arc::try_unwrap(old) {
                    Ok(fib) => {
                        if let Some(f) = self.catch_up_behind(fib, &pending) {
                            return f;
                        }
                        break;
                    }
                    Err(o) if Instant::now() < deadline => {
                        old = o;
                        std::thread::sleep(Duration::from_micros(20));
                    }
                    Err(_) => break,
                }
            }
        }
        self.copy_current()
    }

    fn copy_current(&mut self) -> Fib {
        self.copies += 1;
        (*self.current).clone()
    }

    /// Whole-table copies made so far (the first spare after a full build,
    /// and whenever the workers held the previous table too long).
    pub fn copies(&self) -> u64 {
        self.copies
    }

    fn install(
        &mut self,
        fib: Fib,
        changes: Option<Vec<PushedChange>>,
        generation: u64,
        n: usize,
        skipped: usize,
    ) -> Update {
        let fib = Arc::new(fib);
        let old = std::mem::replace(&mut self.current, fib.clone());
        self.behind = changes.map(|c| (old, c));
        self.have = generation;
        Update {
            fib,
            generation,
            full: false,
            changes: n,
            skipped,
            interfaces_changed: false,
            warnings: Vec::new(),
        }
    }
}
