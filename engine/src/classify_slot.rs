//! What the link thread shares with the workers about classification: the
//! model generations they adopt between batches ([`PlanSlot`]; none =
//! signatures only) and the flow queries they answer ([`QuerySlot`]).

use std::sync::Arc;
use std::time::Duration;

use patronus_shm::flow_query::FlowRecord;

use crate::classify::infer::Model;
use crate::classify::list::FlowFilter;
use crate::plan_slot::PlanSlot;
use crate::query_slot::QuerySlot;

/// One page request for one worker's flows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FlowQuery {
    pub filter: FlowFilter,
    /// First flow-table slot to look at.
    pub cursor: usize,
    pub limit: usize,
}

/// A worker's page.
#[derive(Clone, Debug, Default)]
pub struct FlowAnswer {
    pub flows: Vec<FlowRecord>,
    /// Slot where the next page starts; None when this worker has no more.
    pub next: Option<usize>,
    /// False when the worker runs no classification.
    pub enabled: bool,
}

/// The model the workers should run and the push that chose it (0: the
/// configuration's, no push adopted yet).
#[derive(Debug)]
pub struct ModelPlan {
    pub push: u64,
    pub model: Option<Arc<Model>>,
}

#[derive(Debug)]
pub struct ClassifySlot {
    models: PlanSlot<ModelPlan>,
    queries: QuerySlot<FlowQuery, FlowAnswer>,
    /// `[classify]` is configured.
    pub enabled: bool,
}

impl ClassifySlot {
    pub fn new(enabled: bool, model: Option<Model>, workers: usize) -> Self {
        ClassifySlot {
            models: PlanSlot::new(
                Some(ModelPlan {
                    push: 0,
                    model: model.map(Arc::new),
                }),
                workers,
            ),
            queries: QuerySlot::new(workers),
            enabled,
        }
    }

    /// Publishes a model (None: signatures only) chosen by model push
    /// `push`; returns the plan's generation.
    pub fn publish(&self, push: u64, model: Option<Model>) -> u64 {
        self.models.publish(Some(ModelPlan {
            push,
            model: model.map(Arc::new),
        }))
    }

    #[inline]
    pub fn generation(&self) -> u64 {
        self.models.generation()
    }

    /// The plan's generation, the push that chose it, and the model.
    pub fn load(&self) -> (u64, u64, Option<Arc<Model>>) {
        let (g, plan) = self.models.load();
        match plan {
            Some(p) => (g, p.push, p.model.clone()),
            None => (g, 0, None),
        }
    }

    pub fn ack(&self, worker: usize, g: u64) {
        self.models.ack(worker, g)
    }

    pub fn min_acked(&self) -> u64 {
        self.models.min_acked()
    }

    #[inline]
    pub fn query_seq(&self) -> u64 {
        self.queries.seq()
    }

    pub fn query_for(&self, worker: usize) -> Option<(u64, FlowQuery)> {
        self.queries.query_for(worker)
    }

    pub fn answer(&self, worker: usize, seq: u64, a: FlowAnswer) {
        self.queries.answer(worker, seq, a)
    }

    pub fn ask(&self, worker: usize, q: FlowQuery, timeout: Duration) -> Option<FlowAnswer> {
        self.queries.ask(worker, q, timeout)
    }
}
