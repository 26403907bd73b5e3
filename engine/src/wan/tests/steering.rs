//! Tests of `wan::policy` and `wan::steering` with a fake clock: no
//! flapping around a threshold, failover, hold-down expiry, modes.

use crate::wan::policy::*;
use crate::wan::probe::PathState;
use crate::wan::steering::*;
use crate::wan::window::WindowStats;

const MS: u64 = 1_000_000;

fn stats(rtt_ms: u64, loss_ppm: u32) -> WindowStats {
    WindowStats {
        replied: 10,
        rtt_avg_ns: rtt_ms * MS,
        loss_ppm,
        ..WindowStats::default()
    }
}

fn paths() -> Vec<PathInfo> {
    vec![
        PathInfo {
            id: 10,
            kind: UplinkKind::Fibre,
            cost: 1,
        },
        PathInfo {
            id: 20,
            kind: UplinkKind::Cable,
            cost: 2,
        },
        PathInfo {
            id: 30,
            kind: UplinkKind::Lte,
            cost: 9,
        },
    ]
}

fn voice() -> Policy {
    Policy {
        sla: Sla {
            max_rtt_ns: Some(150 * MS),
            max_jitter_ns: Some(30 * MS),
            max_loss_ppm: Some(10_000),
        },
        mode: SteeringMode::PreferredOrder,
        order: vec![Preference::Any, Preference::Kind(UplinkKind::Lte)],
        hold_down_ns: 10_000 * MS,
        ..Policy::new("voice")
    }
}

fn steering(p: Policy) -> Steering {
    Steering::new(&paths(), PolicyTable::new(vec![p]).unwrap()).unwrap()
}

fn set(s: &mut Steering, i: usize, st: WindowStats, now: u64) {
    s.update_path(i, PathState::Alive, st).unwrap();
    s.refresh(now);
}

#[test]
fn no_flapping_around_the_rtt_threshold() {
    let mut s = steering(voice());
    set(&mut s, 0, stats(100, 0), 0);
    set(&mut s, 1, stats(120, 0), 0);
    set(&mut s, 2, stats(20, 0), 0);
    let mut f = FlowSteer::default();
    assert_eq!(
        s.steer(&mut f, PolicyId(0), 0),
        Some(10),
        "LTE last, fibre within SLA"
    );
    // Fibre oscillates 149/151 ms for a minute, every 100 ms.
    let mut t = 100 * MS;
    for i in 0..600 {
        set(&mut s, 0, stats(if i % 2 == 0 { 151 } else { 149 }, 0), t);
        s.steer(&mut f, PolicyId(0), t);
        t += 100 * MS;
    }
    // One move (to cable at the first breach), and back to fibre only
    // after a hold-down with fibre inside the enter margin... which never
    // happens at 149 ms (needs <= 135 ms).
    assert_eq!(f.moves, 1);
    assert_eq!(s.steer(&mut f, PolicyId(0), t), Some(20));
}

#[test]
fn failover_on_dead_path_and_hold_down_expiry() {
    let mut s = steering(voice());
    set(&mut s, 0, stats(50, 0), 0);
    set(&mut s, 1, stats(80, 0), 0);
    let mut f = FlowSteer::default();
    assert_eq!(s.steer(&mut f, PolicyId(0), 0), Some(10));
    // Fibre dies at 1 s: the very next packet goes to cable.
    s.update_path(0, PathState::Dead, stats(50, 0)).unwrap();
    s.refresh(1_000 * MS);
    assert_eq!(s.steer(&mut f, PolicyId(0), 1_000 * MS), Some(20));
    assert_eq!(s.held_until(PolicyId(0), 0), 11_000 * MS);
    // Fibre back and excellent, but held down (and the flow stays put
    // while cable complies anyway).
    set(&mut s, 0, stats(10, 0), 2_000 * MS);
    let mut g = FlowSteer::default();
    assert_eq!(
        s.steer(&mut g, PolicyId(0), 2_000 * MS),
        Some(20),
        "new flow avoids held path"
    );
    set(&mut s, 0, stats(10, 0), 11_000 * MS - 1);
    assert_eq!(
        s.steer(&mut FlowSteer::default(), PolicyId(0), 11_000 * MS - 1),
        Some(20)
    );
    set(&mut s, 0, stats(10, 0), 11_000 * MS);
    assert_eq!(
        s.steer(&mut FlowSteer::default(), PolicyId(0), 11_000 * MS),
        Some(10),
        "hold-down over"
    );
    assert_eq!(
        s.steer(&mut f, PolicyId(0), 11_000 * MS),
        Some(20),
        "compliant flow keeps its path"
    );
    assert_eq!(f.moves, 1);
}

#[test]
fn better_path_needs_margin_for_the_hold_time() {
    let p = Policy {
        better_hold_ns: Some(5_000 * MS),
        better_margin_pct: 20,
        ..Policy::new("default")
    };
    let mut s = steering(p);
    set(&mut s, 0, stats(100, 0), 0);
    let mut f = FlowSteer::default();
    assert_eq!(s.steer(&mut f, PolicyId(0), 0), Some(10));
    // Cable at 85 ms: better, but not by 20 %.
    set(&mut s, 1, stats(85, 0), 0);
    assert_eq!(s.steer(&mut f, PolicyId(0), 10_000 * MS), Some(10));
    // At 70 ms it is; the flow moves only after 5 s of it.
    set(&mut s, 1, stats(70, 0), 10_000 * MS);
    assert_eq!(s.steer(&mut f, PolicyId(0), 10_000 * MS), Some(10));
    assert_eq!(s.steer(&mut f, PolicyId(0), 15_000 * MS - 1), Some(10));
    assert_eq!(s.steer(&mut f, PolicyId(0), 15_000 * MS), Some(20));
    assert_eq!(f.moves, 1);
}

#[test]
fn least_bad_when_nothing_complies() {
    let mut s = steering(voice());
    set(&mut s, 0, stats(300, 0), 0); // 100 % over on RTT
    set(&mut s, 1, stats(100, 50_000), 0); // 400 % over on loss
    let mut f = FlowSteer::default();
    assert_eq!(s.steer(&mut f, PolicyId(0), 0), Some(10));
    // Cable slightly less bad than fibre: not enough to move.
    set(&mut s, 1, stats(100, 19_000), 0);
    assert_eq!(s.steer(&mut f, PolicyId(0), 0), Some(10));
    // A compliant path appears: move to it.
    set(&mut s, 2, stats(100, 0), 0);
    assert_eq!(s.steer(&mut f, PolicyId(0), 0), Some(30));
}

#[test]
fn no_alive_path_gives_none() {
    let s = steering(voice());
    assert_eq!(s.steer(&mut FlowSteer::default(), PolicyId(0), 0), None);
    assert_eq!(s.steer(&mut FlowSteer::default(), PolicyId(7), 0), None);
}

#[test]
fn modes_order_compliant_paths() {
    let base = Policy::new("p");
    let cheapest = Policy {
        mode: SteeringMode::Cheapest,
        ..base.clone()
    };
    let mut s = Steering::new(&paths(), PolicyTable::new(vec![base, cheapest]).unwrap()).unwrap();
    set(&mut s, 0, stats(80, 0), 0);
    set(&mut s, 1, stats(90, 0), 0);
    set(&mut s, 2, stats(30, 0), 0);
    assert_eq!(
        s.steer(&mut FlowSteer::default(), PolicyId(0), 0),
        Some(30),
        "best score"
    );
    assert_eq!(
        s.steer(&mut FlowSteer::default(), PolicyId(1), 0),
        Some(10),
        "cheapest"
    );
}

#[test]
fn policy_lookup_prefers_the_most_specific_rule() {
    let mut t = PolicyTable::new(vec![
        Policy::new("d"),
        Policy::new("a"),
        Policy::new("b"),
        Policy::new("c"),
    ])
    .unwrap();
    let (voip, bulk) = (AppClass(1), AppClass(2));
    t.assign(None, Some(voip), PolicyId(1)).unwrap();
    t.assign(Some(TenantId(7)), Some(voip), PolicyId(2))
        .unwrap();
    t.assign(Some(TenantId(7)), None, PolicyId(3)).unwrap();
    assert_eq!(t.lookup(TenantId(7), voip), PolicyId(2));
    assert_eq!(t.lookup(TenantId(8), voip), PolicyId(1));
    assert_eq!(t.lookup(TenantId(7), bulk), PolicyId(3));
    assert_eq!(t.lookup(TenantId(8), bulk), PolicyId(0));
    assert_eq!(t.assign(None, None, PolicyId(4)), Err(PolicyError::BadId));
    let p = voice();
    assert_eq!(p.rank(&paths()[0]), 0);
    assert_eq!(p.rank(&paths()[2]), 1);
}

/// "Prefer LTE last" holds in best-score mode too: a better-scoring LTE
/// path is not chosen while another path complies, and is once none does.
#[test]
fn best_score_keeps_lte_last_while_another_path_complies() {
    let mut s = steering(Policy {
        mode: SteeringMode::BestScore,
        ..voice()
    });
    set(&mut s, 0, stats(40, 0), 0);
    set(&mut s, 1, stats(30, 0), 0);
    set(&mut s, 2, stats(5, 0), 0);
    let mut f = FlowSteer::default();
    // Among the non-LTE tier, the best score: cable (30 ms).
    assert_eq!(s.steer(&mut f, PolicyId(0), 0), Some(20));
    // Both non-LTE paths breach the 1 % loss limit: LTE now.
    set(&mut s, 0, stats(40, 50_000), MS);
    set(&mut s, 1, stats(30, 50_000), MS);
    assert_eq!(s.steer(&mut f, PolicyId(0), MS), Some(30));
    // Without an order, best score alone: LTE from the start.
    let mut plain = steering(Policy {
        mode: SteeringMode::BestScore,
        order: Vec::new(),
        ..voice()
    });
    set(&mut plain, 0, stats(40, 0), 0);
    set(&mut plain, 1, stats(30, 0), 0);
    set(&mut plain, 2, stats(5, 0), 0);
    assert_eq!(
        plain.steer(&mut FlowSteer::default(), PolicyId(0), 0),
        Some(30)
    );
}
