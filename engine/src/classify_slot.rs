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

#[derive(Debug)]
pub struct ClassifySlot {
    models: PlanSlot<Model>,
    queries: QuerySlot<FlowQuery, FlowAnswer>,
    /// `[classify]` is configured.
    pub enabled: bool,
}

impl ClassifySlot {
    pub fn new(enabled: bool, model: Option<Model>, workers: usize) -> Self {
        ClassifySlot {
            models: PlanSlot::new(model, workers),
            queries: QuerySlot::new(workers),
            enabled,
        }
    }

    /// Publishes a model (None: signatures only); returns its generation.
    pub fn publish(&self, model: Option<Model>) -> u64 {
        self.models.publish(model)
    }

    #[inline]
    pub fn generation(&self) -> u64 {
        self.models.generation()
    }

    pub fn load(&self) -> (u64, Option<Arc<Model>>) {
        self.models.load()
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
