//! The balancer on raw IPv4 packets: TCP state of pins (FIN/RST make a
//! flow closing; a SYN reusing a closing flow's tuple is balanced afresh),
//! closing flows expire sooner, a full pin table still balances.

use std::sync::Arc;

use crate::lb::balancer::{Balancer, Dir, LbVerdict};
use crate::lb::counters::BackendCounters;
use crate::lb::plan::{LbPlan, SlotMap};
use crate::lb::spec::{BackendSpec, LbMode, LbSettings, LbSpec, VipSpec};

const SYN: u8 = 0x02;
const ACK: u8 = 0x10;
const FIN: u8 = 0x01;

fn tcp(sport: u16, flags: u8) -> Vec<u8> {
    let mut p = vec![0u8; 40];
    p[0] = 0x45;
    p[2..4].copy_from_slice(&40u16.to_be_bytes());
    p[8] = 64;
    p[9] = 6;
    p[12..16].copy_from_slice(&[10, 1, 0, 2]);
    p[16..20].copy_from_slice(&[10, 9, 0, 1]);
    p[20..22].copy_from_slice(&sport.to_be_bytes());
    p[22..24].copy_from_slice(&80u16.to_be_bytes());
    p[33] = flags;
    p
}

fn plan(spec: &LbSpec, slots: &mut SlotMap) -> Arc<LbPlan> {
    Arc::new(LbPlan::build(spec, slots, Arc::new(BackendCounters::new(1)), 1).unwrap())
}

fn spec(weights: &[u16], max_flows: usize) -> LbSpec {
    LbSpec {
        settings: LbSettings {
            max_flows,
            ..Default::default()
        },
        vips: vec![VipSpec {
            id: 1,
            addr: u32::from_be_bytes([10, 9, 0, 1]),
            port: 80,
            proto: 6,
            mode: LbMode::Nat,
            table_size: 0,
            backends: weights
                .iter()
                .enumerate()
                .map(|(i, &weight)| BackendSpec {
                    id: i as u32 + 1,
                    addr: u32::from_be_bytes([10, 2, 0, 11 + i as u8]),
                    port: 8080,
                    weight,
                    up: true,
                })
                .collect(),
        }],
    }
}

/// Sends `p` forward; returns the backend's last address byte.
fn send(b: &mut Balancer, mut p: Vec<u8>, now: u64) -> u8 {
    assert_eq!(b.handle(&mut p, Dir::Forward(0), now), LbVerdict::Nat);
    p[19]
}

#[test]
fn a_syn_reusing_a_closing_flow_is_balanced_afresh() {
    let mut slots = SlotMap::default();
    let mut s = spec(&[1, 1], 64);
    let mut b = Balancer::new(plan(&s, &mut slots), 0, 1);
    // Find a client port whose flow lands on the first backend.
    let sport = (1000..2000u16)
        .find(|&p| {
            let mut probe = Balancer::new(plan(&s, &mut SlotMap::default()), 0, 1);
            send(&mut probe, tcp(p, SYN), 1) == 11
        })
        .unwrap();
    assert_eq!(send(&mut b, tcp(sport, SYN), 1), 11);
    // Drain it: the open connection stays, and a retransmitted SYN too.
    s.vips[0].backends[0].weight = 0;
    b.set_plan(plan(&s, &mut slots));
    assert_eq!(send(&mut b, tcp(sport, ACK), 2), 11);
    assert_eq!(send(&mut b, tcp(sport, SYN), 3), 11);
    // The connection closes; a new one from the same port goes elsewhere.
    assert_eq!(send(&mut b, tcp(sport, FIN | ACK), 4), 11);
    assert_eq!(send(&mut b, tcp(sport, SYN), 5), 12);
    assert_eq!(b.pins().len(), 1);
    assert_eq!(b.counters().repinned, 0, "not a backend failure");
}

#[test]
fn closing_flows_expire_after_the_short_timeout() {
    let mut b = Balancer::new(plan(&spec(&[1], 64), &mut SlotMap::default()), 0, 1);
    send(&mut b, tcp(1, SYN), 0);
    send(&mut b, tcp(2, SYN), 0);
    send(&mut b, tcp(2, FIN | ACK), 0);
    let s = 1_000_000_000u64;
    b.expire(11 * s, 64);
    assert_eq!(b.pins().len(), 1, "the closing one went after 10 s");
    b.expire(899 * s, 64);
    assert_eq!(b.pins().len(), 1);
    b.expire(901 * s, 64);
    assert_eq!(b.pins().len(), 0, "the open one after 900 s");
    assert_eq!(b.counters().flows_expired, 2);
}

#[test]
fn a_full_pin_table_still_balances_consistently() {
    let mut b = Balancer::new(plan(&spec(&[1, 1, 1], 4), &mut SlotMap::default()), 0, 1);
    let first: Vec<u8> = (0..20u16).map(|p| send(&mut b, tcp(p, SYN), 1)).collect();
    assert_eq!(b.pins().len(), 4);
    assert_eq!(b.counters().flows_table_full, 16);
    // Unpinned flows keep their backend while the pool is unchanged.
    let again: Vec<u8> = (0..20u16).map(|p| send(&mut b, tcp(p, ACK), 2)).collect();
    assert_eq!(first, again);
}
