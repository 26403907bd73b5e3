//! Path choice per flow (or flow group). [`Steering`] holds every path's
//! latest state and window stats; [`Steering::refresh`] (after probe
//! results change, not per packet) works out per policy which paths
//! comply, which may be entered, the best and the least-bad, and starts
//! hold-downs for paths that just breached. [`Steering::steer`] (per
//! packet, no allocation) applies it to a flow's [`FlowSteer`]:
//!
//! - a flow keeps its path while that path is alive and within the SLA;
//!   with `better_hold_ns` set it moves to a path that has been better by
//!   the margin for that long;
//! - when its path dies or breaches, the flow moves to the best path that
//!   is within the SLA less `enter_margin_pct` and not in hold-down
//!   (ordered by the policy's mode);
//! - when no path qualifies, to the least-bad alive path (smallest summed
//!   relative excess over the SLA, then score; hold-downs ignored, since
//!   any path beats none); a flow already on an alive path moves to it
//!   only if its excess is lower by `better_margin_pct` %, so flows do
//!   not hop between paths that all breach;
//! - with no alive path at all, `steer` returns `None`.

use super::policy::{
    score, PathId, PathInfo, Policy, PolicyId, PolicyTable, SteeringMode, MAX_PATHS,
};
use super::probe::PathState;
use super::window::WindowStats;

/// Why steering could not be set up.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SteeringError {
    #[error("at most 16 paths, at least one")]
    PathCount,
    #[error("unknown path index")]
    BadPath,
}

/// A flow's steering state, kept by the caller (e.g. in its flow table).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FlowSteer {
    /// Index of the current path.
    path: Option<u8>,
    /// A better path seen, and since when.
    better: Option<(u8, u64)>,
    /// Path changes of this flow.
    pub moves: u32,
}

impl FlowSteer {
    /// The index of the flow's current path, if any.
    pub fn path_index(&self) -> Option<usize> {
        self.path.map(usize::from)
    }
}

#[derive(Clone, Copy, Debug)]
struct PathEntry {
    info: PathInfo,
    state: PathState,
    stats: WindowStats,
}

/// One policy's view of the paths, rebuilt by `refresh`.
#[derive(Clone, Copy, Debug, Default)]
struct PolicyView {
    /// Alive and within the SLA.
    stay: u16,
    /// Alive, within the SLA less the enter margin, not held down.
    enter: u16,
    held_until: [u64; MAX_PATHS],
    best: Option<u8>,
    least_bad: Option<u8>,
}

/// Path choice for every policy.
#[derive(Debug)]
pub struct Steering {
    paths: Vec<PathEntry>,
    table: PolicyTable,
    views: Vec<PolicyView>,
}

impl Steering {
    /// `paths` in index order (at most [`MAX_PATHS`]); all start Unknown.
    pub fn new(paths: &[PathInfo], table: PolicyTable) -> Result<Self, SteeringError> {
        if paths.is_empty() || paths.len() > MAX_PATHS {
            return Err(SteeringError::PathCount);
        }
        let views = vec![PolicyView::default(); table.len()];
        Ok(Steering {
            paths: paths
                .iter()
                .map(|&info| PathEntry {
                    info,
                    state: PathState::Unknown,
                    stats: WindowStats::default(),
                })
                .collect(),
            table,
            views,
        })
    }

    pub fn policies(&self) -> &PolicyTable {
        &self.table
    }

    /// The path at index `i`.
    pub fn path(&self, i: usize) -> Option<&PathInfo> {
        self.paths.get(i).map(|p| &p.info)
    }

    /// Records path `i`'s latest state and stats (applied at the next
    /// [`refresh`](Self::refresh)).
    pub fn update_path(
        &mut self,
        i: usize,
        state: PathState,
        stats: WindowStats,
    ) -> Result<(), SteeringError> {
        let p = self.paths.get_mut(i).ok_or(SteeringError::BadPath)?;
        p.state = state;
        p.stats = stats;
        Ok(())
    }

    /// Until when path `i` is held down under `policy` (0 = never was).
    pub fn held_until(&self, policy: PolicyId, i: usize) -> u64 {
        self.views
            .get(usize::from(policy.0))
            .and_then(|v| v.held_until.get(i).copied())
            .unwrap_or(0)
    }

    /// Re-evaluates every policy at `now`.
    pub fn refresh(&mut self, now: u64) {
        for (pi, pol) in self.table.policies().iter().enumerate() {
            let v = &mut self.views[pi];
            let mut stay = 0u16;
            let mut enter = 0u16;
            for (i, p) in self.paths.iter().enumerate() {
                let usable = p.state == PathState::Alive && p.stats.has_samples();
                if usable && pol.sla.complies(&p.stats, 0) {
                    stay |= 1 << i;
                }
            }
            // Paths that were compliant and no longer are: hold down.
            let breached = v.stay & !stay;
            for (i, h) in v.held_until.iter_mut().enumerate().take(self.paths.len()) {
                if breached & (1 << i) != 0 {
                    *h = now.saturating_add(pol.hold_down_ns);
                }
            }
            for (i, p) in self.paths.iter().enumerate() {
                if stay & (1 << i) != 0
                    && pol.sla.complies(&p.stats, pol.enter_margin_pct)
                    && now >= v.held_until[i]
                {
                    enter |= 1 << i;
                }
            }
            v.stay = stay;
            v.enter = enter;
            v.best = (0..self.paths.len())
                .filter(|&i| enter & (1 << i) != 0)
                .min_by_key(|&i| key(pol, &self.paths[i], i))
                .map(|i| i as u8);
            v.least_bad = (0..self.paths.len())
                .filter(|&i| self.paths[i].state == PathState::Alive)
                .min_by_key(|&i| {
                    (
                        pol.sla.excess(&self.paths[i].stats),
                        score(&self.paths[i].stats),
                        i,
                    )
                })
                .map(|i| i as u8);
        }
    }

    /// The path for `flow` under `policy` at `now`; updates the flow's
    /// state. `None` when no path is alive (or `policy` is unknown).
    pub fn steer(&self, flow: &mut FlowSteer, policy: PolicyId, now: u64) -> Option<PathId> {
        let pol = self.table.get(policy)?;
        let v = self.views.get(usize::from(policy.0))?;
        let chosen = self.choose(flow, pol, v, now)?;
        if flow.path != Some(chosen) {
            if flow.path.is_some() {
                flow.moves += 1;
            }
            flow.path = Some(chosen);
            flow.better = None;
        }
        Some(self.paths[usize::from(chosen)].info.id)
    }

    fn choose(&self, flow: &mut FlowSteer, pol: &Policy, v: &PolicyView, now: u64) -> Option<u8> {
        let cur = flow.path.filter(|&c| usize::from(c) < self.paths.len());
        if let Some(c) = cur {
            if v.stay & (1 << c) != 0 {
                return Some(self.maybe_better(flow, pol, v, c, now));
            }
        }
        if let Some(b) = v.best {
            return Some(b);
        }
        let lb = v.least_bad?;
        if let Some(c) = cur {
            let cp = &self.paths[usize::from(c)];
            if cp.state == PathState::Alive {
                let ce = u128::from(pol.sla.excess(&cp.stats));
                let le = u128::from(pol.sla.excess(&self.paths[usize::from(lb)].stats));
                if le * 100 > ce * u128::from(100 - pol.better_margin_pct.min(100)) {
                    return Some(c);
                }
            }
        }
        Some(lb)
    }

    /// Current path `c` complies; move only to a path better for the hold.
    fn maybe_better(
        &self,
        flow: &mut FlowSteer,
        pol: &Policy,
        v: &PolicyView,
        c: u8,
        now: u64,
    ) -> u8 {
        let (Some(hold), Some(b)) = (pol.better_hold_ns, v.best) else {
            flow.better = None;
            return c;
        };
        if b == c || !self.better(pol, b, c) {
            flow.better = None;
            return c;
        }
        match flow.better {
            Some((pb, since)) if pb == b => {
                if now.saturating_sub(since) >= hold {
                    b
                } else {
                    c
                }
            }
            _ => {
                flow.better = Some((b, now));
                c
            }
        }
    }

    /// Is path `b` better than `c` under `pol`, by the margin where scores
    /// decide?
    fn better(&self, pol: &Policy, b: u8, c: u8) -> bool {
        let (pb, pc) = (&self.paths[usize::from(b)], &self.paths[usize::from(c)]);
        let score_better = || {
            u128::from(score(&pb.stats)) * 100
                <= u128::from(score(&pc.stats)) * u128::from(100 - pol.better_margin_pct.min(100))
        };
        match pol.mode {
            // A preference order makes tiers: the best score within the
            // most preferred tier ("prefer LTE last": LTE only when no
            // other path complies). Without one, every path ranks alike.
            SteeringMode::BestScore | SteeringMode::PreferredOrder => {
                pol.rank(&pb.info) < pol.rank(&pc.info)
                    || (pol.rank(&pb.info) == pol.rank(&pc.info) && score_better())
            }
            SteeringMode::Cheapest => {
                (pb.info.cost, pol.rank(&pb.info)) < (pc.info.cost, pol.rank(&pc.info))
                    || (pb.info.cost == pc.info.cost
                        && pol.rank(&pb.info) == pol.rank(&pc.info)
                        && score_better())
            }
        }
    }
}

/// Ordering of compliant paths under a policy's mode (smaller first).
fn key(pol: &Policy, p: &PathEntry, i: usize) -> (u64, u64, u64, usize) {
    let rank = pol.rank(&p.info) as u64;
    let s = score(&p.stats);
    let cost = u64::from(p.info.cost);
    match pol.mode {
        SteeringMode::BestScore | SteeringMode::PreferredOrder => (rank, s, cost, i),
        SteeringMode::Cheapest => (cost, rank, s, i),
    }
}
