//! The compiled plan: stable backend slots across plans, lookups of VIPs
//! and reply endpoints, refusal of bad specs, drained and down backends.

use std::sync::Arc;

use crate::lb::counters::BackendCounters;
use crate::lb::plan::{LbPlan, PlanError, SlotMap, MAX_BACKEND_SLOTS};
use crate::lb::spec::{BackendSpec, LbMode, LbSpec, VipSpec};

fn backend(id: u32, last: u8, weight: u16, up: bool) -> BackendSpec {
    BackendSpec {
        id,
        addr: u32::from_be_bytes([10, 2, 0, last]),
        port: 8080,
        weight,
        up,
    }
}

fn vip(id: u32, port: u16, mode: LbMode, backends: Vec<BackendSpec>) -> VipSpec {
    VipSpec {
        id,
        addr: u32::from_be_bytes([10, 9, 0, 1]),
        port,
        proto: 6,
        mode,
        table_size: 0,
        backends,
    }
}

fn build(spec: &LbSpec, slots: &mut SlotMap) -> Result<LbPlan, PlanError> {
    LbPlan::build(spec, slots, Arc::new(BackendCounters::new(1)), 1)
}

#[test]
fn a_backend_keeps_its_slot_while_it_exists_and_freed_slots_are_reused_last() {
    let mut slots = SlotMap::default();
    let (a, fresh) = slots.assign(&[10, 11, 12]).unwrap();
    assert_eq!(fresh.len(), 3);
    let (b, fresh) = slots.assign(&[12, 10, 13]).unwrap();
    assert_eq!((a[&10], a[&12]), (b[&10], b[&12]), "kept");
    // 13 takes a never-used slot before 11's freed one...
    assert_eq!(fresh, vec![3]);
    // ...and only when none is left, the one freed longest ago.
    let mut ids: Vec<u32> = vec![12, 10, 13];
    ids.extend(1000..1000 + MAX_BACKEND_SLOTS as u32 - 4);
    let (c, _) = slots.assign(&ids).unwrap();
    assert_eq!(c.len(), MAX_BACKEND_SLOTS - 1);
    ids.push(77);
    let (d, fresh) = slots.assign(&ids).unwrap();
    assert_eq!((d[&77], fresh), (a[&11], vec![a[&11]]));
    let many: Vec<u32> = (0..=MAX_BACKEND_SLOTS as u32).collect();
    assert_eq!(
        SlotMap::default().assign(&many).unwrap_err(),
        PlanError::TooManyBackends
    );
}

#[test]
fn lookups_find_vips_and_nat_backends_only() {
    let spec = LbSpec {
        vips: vec![
            vip(1, 80, LbMode::Nat, vec![backend(1, 11, 1, true)]),
            vip(
                2,
                53,
                LbMode::Dsr,
                vec![BackendSpec {
                    port: 53,
                    ..backend(2, 12, 1, true)
                }],
            ),
        ],
        ..Default::default()
    };
    let plan = build(&spec, &mut SlotMap::default()).unwrap();
    let vaddr = u32::from_be_bytes([10, 9, 0, 1]);
    assert_eq!(plan.vip(vaddr, 80, 6), Some(0));
    assert_eq!(plan.vip(vaddr, 53, 6), Some(1));
    assert_eq!(plan.vip(vaddr, 81, 6), None);
    assert_eq!(plan.vip(vaddr, 80, 17), None);
    let b1 = u32::from_be_bytes([10, 2, 0, 11]);
    let b2 = u32::from_be_bytes([10, 2, 0, 12]);
    assert_eq!(plan.reply_vip(b1, 8080, 6), Some(0));
    assert_eq!(
        plan.reply_vip(b2, 53, 6),
        None,
        "DSR replies bypass the engine"
    );
    assert!(plan.maybe_vip(vaddr) && !plan.maybe_vip(vaddr + 1));
}

#[test]
fn a_backend_in_two_nat_vips_needs_its_pin_for_replies() {
    let spec = LbSpec {
        vips: vec![
            vip(1, 80, LbMode::Nat, vec![backend(1, 11, 1, true)]),
            vip(2, 81, LbMode::Nat, vec![backend(2, 11, 1, true)]),
        ],
        ..Default::default()
    };
    let plan = build(&spec, &mut SlotMap::default()).unwrap();
    assert_eq!(
        plan.reply_vip(u32::from_be_bytes([10, 2, 0, 11]), 8080, 6),
        Some(u16::MAX)
    );
}

#[test]
fn drained_and_down_backends_take_no_new_flows() {
    let spec = LbSpec {
        vips: vec![vip(
            1,
            80,
            LbMode::Nat,
            vec![
                backend(1, 11, 1, true),
                backend(2, 12, 0, true),
                backend(3, 13, 1, false),
            ],
        )],
        ..Default::default()
    };
    let mut slots = SlotMap::default();
    let plan = build(&spec, &mut slots).unwrap();
    let v = &plan.vips[0];
    let mut chosen = std::collections::HashSet::new();
    for h in 0..10_000u64 {
        let s = v.choose(h.wrapping_mul(0x9e37_79b9_7f4a_7c15)).unwrap();
        chosen.insert(plan.slots[usize::from(s)].id);
    }
    assert_eq!(chosen, [1].into_iter().collect());
    // The drained one's pins stay valid; the down one's do not.
    let slot_of = |id: u32| plan.vips[0].backends[(id - 1) as usize];
    assert!(plan.slot_live(slot_of(2), 2));
    assert!(!plan.slot_live(slot_of(3), 3));
    // Nothing up with a weight: no table, new flows are refused.
    let mut none = spec.clone();
    none.vips[0].backends[0].up = false;
    assert!(build(&none, &mut slots).unwrap().vips[0]
        .choose(7)
        .is_none());
}

#[test]
fn bad_specs_are_refused() {
    let dup = LbSpec {
        vips: vec![
            vip(1, 80, LbMode::Nat, vec![backend(1, 11, 1, true)]),
            vip(2, 80, LbMode::Nat, vec![backend(2, 12, 1, true)]),
        ],
        ..Default::default()
    };
    assert!(matches!(
        build(&dup, &mut SlotMap::default()),
        Err(PlanError::DuplicateVip(_))
    ));
    let dsr = LbSpec {
        vips: vec![vip(1, 80, LbMode::Dsr, vec![backend(1, 11, 1, true)])],
        ..Default::default()
    };
    assert!(matches!(
        build(&dsr, &mut SlotMap::default()),
        Err(PlanError::DsrPort { .. })
    ));
    let same_id = LbSpec {
        vips: vec![vip(
            1,
            80,
            LbMode::Nat,
            vec![backend(1, 11, 1, true), backend(1, 12, 1, true)],
        )],
        ..Default::default()
    };
    assert_eq!(
        build(&same_id, &mut SlotMap::default()).unwrap_err(),
        PlanError::DuplicateBackend(1)
    );
}
