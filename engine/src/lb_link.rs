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
        let (spec, what) = match LbSpec::from_tables(tables) {
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
