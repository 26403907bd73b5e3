//! What the link thread shares with the workers about load balancing: the
//! compiled plans they adopt between batches ([`PlanSlot`]; none = no
//! balancer), the backend counters they write, and the slot map that keeps
//! each backend's counters and pins valid across plans. Also the `lb.sock`
//! server, which sums the counters per backend for the control process.

use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use patronus_shm::lb::LbTables;
use patronus_shm::lb_query::{LbBackendStats, LbErrorCode, LbReply, LbRequest};

use crate::config::EngineConfig;
use crate::counters::{read, WorkerCounters};
use crate::lb::{BackendCounters, LbPlan, LbSpec, PlanError, SlotMap};
use crate::plan_slot::PlanSlot;

#[derive(Debug)]
pub struct LbShared {
    pub plans: PlanSlot<LbPlan>,
    pub counters: Arc<BackendCounters>,
    slots: Mutex<SlotMap>,
    /// The `[lb]` section's spec: what runs while control manages none.
    configured: Option<LbSpec>,
}

impl LbShared {
    /// The shared state for `workers` workers, running the configuration's
    /// `[lb]` (if any).
    pub fn new(cfg: &EngineConfig, workers: usize) -> Result<Self, PlanError> {
        let counters = Arc::new(BackendCounters::new(workers));
        let mut slots = SlotMap::default();
        let configured = cfg.lb.as_ref().map(|s| s.to_spec());
        let plan = match &configured {
            Some(spec) if !spec.is_empty() => {
                Some(LbPlan::build(spec, &mut slots, counters.clone(), 0)?)
            }
            _ => None,
        };
        Ok(LbShared {
            plans: PlanSlot::new(plan, workers),
            counters,
            slots: Mutex::new(slots),
            configured,
        })
    }

    /// Adopts pushed file `n`: its VIPs, or the configuration's when the
    /// control process manages none. On error the running plan stays.
    pub fn adopt_pushed(&self, n: u64, tables: &LbTables) -> Result<String, String> {
        let defaults = self
            .configured
            .as_ref()
            .map(|c| c.settings)
            .unwrap_or_default();
        let (spec, what) = match LbSpec::from_tables(tables, defaults) {
            Some(s) => (Some(s), format!("pushed file {n}")),
            None => (
                self.configured.clone(),
                "the configuration's [lb]".to_string(),
            ),
        };
        let plan = match spec {
            Some(s) if !s.is_empty() => {
                let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
                Some(
                    LbPlan::build(&s, &mut slots, self.counters.clone(), n)
                        .map_err(|e| e.to_string())?,
                )
            }
            _ => None,
        };
        let desc = match &plan {
            Some(p) => format!(
                "{what}: {} VIPs, {} backends",
                p.vips.len(),
                p.vips.iter().map(|v| v.backends.len()).sum::<usize>()
            ),
            None => format!("{what}: no VIPs"),
        };
        self.plans.publish(plan);
        Ok(desc)
    }

    /// The `lb.sock` reply: every backend of the running plan with its
    /// counters summed over the workers.
    pub fn answer(&self, workers: &[Arc<WorkerCounters>]) -> LbReply {
        let (_, plan) = self.plans.load();
        let active_flows = workers.iter().map(|c| read(&c.lb[0])).sum();
        let Some(plan) = plan else {
            return LbReply::Backends {
                backends: Vec::new(),
                active_flows,
                generation: 0,
                workers: workers.len() as u32,
            };
        };
        let mut backends = Vec::new();
        for v in &plan.vips {
            for &s in &v.backends {
                let b = plan.slots[usize::from(s)];
                let t = self.counters.totals(s);
                backends.push(LbBackendStats {
                    id: b.id,
                    vip_id: v.id,
                    addr: b.addr.into(),
                    port: b.port,
                    weight: b.weight,
                    up: b.live,
                    flows: t.flows,
                    active_flows: t.active_flows,
                    packets: t.packets,
                    bytes: t.bytes,
                });
            }
        }
        LbReply::Backends {
            backends,
            active_flows,
            generation: plan.push,
            workers: workers.len() as u32,
        }
    }
}

/// Starts the balancer query server on `dir/lb.sock`.
pub fn spawn_lb_server(
    dir: &Path,
    shared: Arc<LbShared>,
    workers: Vec<Arc<WorkerCounters>>,
    stop: Arc<AtomicBool>,
) -> std::io::Result<JoinHandle<()>> {
    crate::line_server::spawn(
        dir,
        patronus_shm::runtime_dir::LB_SOCKET,
        "patronus-lbq",
        stop,
        move |line| {
            let reply = match serde_json::from_str::<LbRequest>(line) {
                Ok(_) => shared.answer(&workers),
                Err(e) => LbReply::Error {
                    code: LbErrorCode::BadRequest,
                    message: format!("request: {e}"),
                },
            };
            serde_json::to_string(&reply).unwrap_or_default()
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use patronus_shm::lb::{LbBackendEntry, LbSettingsEntry, LbVipEntry, LB_MODE_NAT};

    const CFG: &str = r#"
[[port]]
name = "a"
driver = "mem"
[lb]
max_flows = 123
[[lb.vip]]
address = "10.9.0.1"
port = 80
[[lb.vip.backend]]
address = "10.2.0.11"
"#;

    fn pushed(backends: &[(u32, u8, u16, u8)]) -> LbTables {
        LbTables {
            settings: Some(LbSettingsEntry {
                max_flows: 0,
                tcp_timeout_secs: 0,
                tcp_closing_timeout_secs: 0,
                udp_timeout_secs: 0,
            }),
            vips: vec![LbVipEntry {
                id: 5,
                addr: u32::from_be_bytes([10, 9, 0, 2]),
                port: 443,
                proto: 6,
                mode: LB_MODE_NAT,
                table_size: 0,
            }],
            backends: backends
                .iter()
                .map(|&(id, last, weight, up)| LbBackendEntry {
                    id,
                    vip_id: 5,
                    addr: u32::from_be_bytes([10, 2, 0, last]),
                    port: 443,
                    weight,
                    up,
                    reserved: [0; 3],
                })
                .collect(),
        }
    }

    fn backends(r: &LbReply) -> Vec<(u32, bool, u16, u64)> {
        match r {
            LbReply::Backends { backends, .. } => backends
                .iter()
                .map(|b| (b.id, b.up, b.weight, b.flows))
                .collect(),
            LbReply::Error { .. } => panic!("{r:?}"),
        }
    }

    #[test]
    fn pushes_replace_the_configuration_and_an_unmanaged_file_brings_it_back() {
        let cfg = EngineConfig::parse(CFG).unwrap();
        let shared = LbShared::new(&cfg, 2).unwrap();
        let workers: Vec<Arc<WorkerCounters>> =
            (0..2).map(|_| Arc::new(WorkerCounters::new(1))).collect();
        let r = shared.answer(&workers);
        assert_eq!(backends(&r).len(), 1, "the configured backend");
        shared
            .adopt_pushed(3, &pushed(&[(7, 11, 1, 1), (8, 12, 0, 0)]))
            .unwrap();
        let r = shared.answer(&workers);
        assert_eq!(backends(&r), vec![(7, true, 1, 0), (8, false, 0, 0)]);
        assert!(matches!(r, LbReply::Backends { generation: 3, .. }));
        // Settings the file leaves at 0 are the engine's [lb] ones.
        assert_eq!(shared.plans.load().1.unwrap().settings.max_flows, 123);
        // Counters follow the backend's slot and are summed over workers.
        let (_, plan) = shared.plans.load();
        let slot = plan.as_ref().unwrap().vips[0].backends[0];
        shared.counters.flow_pinned(0, slot);
        shared.counters.flow_pinned(1, slot);
        assert_eq!(backends(&shared.answer(&workers))[0].3, 2);
        // Unmanaged: back to [lb].
        let what = shared.adopt_pushed(4, &LbTables::default()).unwrap();
        assert!(what.contains("configuration"), "{what}");
        let r = shared.answer(&workers);
        assert_eq!(backends(&r).len(), 1);
        assert!(matches!(r, LbReply::Backends { generation: 4, .. }));
    }

    #[test]
    fn a_bad_push_keeps_the_running_plan() {
        let cfg = EngineConfig::parse(CFG).unwrap();
        let shared = LbShared::new(&cfg, 1).unwrap();
        let g = shared.plans.generation();
        let mut t = pushed(&[(7, 11, 1, 1)]);
        t.vips[0].mode = patronus_shm::lb::LB_MODE_DSR;
        t.backends[0].port = 8443;
        let e = shared.adopt_pushed(9, &t).unwrap_err();
        assert!(e.contains("VIP's port") || e.contains("DSR"), "{e}");
        assert_eq!(shared.plans.generation(), g);
    }
}
