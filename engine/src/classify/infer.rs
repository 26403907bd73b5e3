//! Batched inference: flows the signatures could not settle wait in a
//! queue and are scored together, one matrix product per layer per batch
//! ([`patronus_ml::mlp::Mlp::forward`]), when the batch is full or its
//! oldest flow has waited long enough — never per packet, and normally
//! after the burst that filled it has been sent (the worker scores between
//! polls; only a queue that overflows [`SPILL`] more flows is scored on the
//! spot). The input matrix and the network's scratch are allocated when a
//! model is adopted.

use std::sync::Arc;

use ndarray::{s, Array2};
use patronus_ml::features::DIM;
use patronus_ml::mlp::{Mlp, Scratch};

use super::slots::{SlotState, Slots};

/// A model as the workers run it.
#[derive(Debug)]
pub struct Model {
    pub mlp: Mlp,
    pub sha256: String,
}

impl Model {
    /// Parses a model file (`patronus_ml::model` format) and checks it
    /// takes this engine's features.
    pub fn from_bytes(bytes: &[u8]) -> Result<Model, String> {
        let mlp = patronus_ml::model::from_bytes(bytes).map_err(|e| format!("{e:#}"))?;
        if mlp.inputs() != DIM {
            return Err(format!(
                "the model takes {} inputs; this engine's flow features have {DIM}",
                mlp.inputs()
            ));
        }
        let sha256 = patronus_ml::model::sha256_hex(bytes).unwrap_or_default();
        Ok(Model { mlp, sha256 })
    }
}

/// Flows the queue holds beyond a batch before it must be scored at once
/// (two bursts of new flows).
pub const SPILL: usize = 512;

/// The queue and the buffers of one batch.
#[derive(Debug)]
pub struct InferQueue {
    /// (slot, its generation when queued).
    entries: Vec<(u32, u32)>,
    batch: usize,
    /// When the oldest queued flow was queued.
    oldest_ns: u64,
    model: Option<(Arc<Model>, Scratch)>,
    x: Array2<f32>,
    /// The slot of each row of `x`.
    rows: Vec<u32>,
}

impl InferQueue {
    pub fn new(batch: usize) -> InferQueue {
        InferQueue {
            entries: Vec::with_capacity(batch + SPILL),
            batch,
            oldest_ns: 0,
            model: None,
            x: Array2::zeros((batch, DIM)),
            rows: Vec::with_capacity(batch),
        }
    }

    /// Runs `model` from now on (allocates its scratch: a model change is a
    /// rare administrative act, done between batches).
    pub fn set_model(&mut self, model: Option<Arc<Model>>) {
        self.model = model.map(|m| {
            let s = Scratch::new(&m.mlp, self.batch);
            (m, s)
        });
    }

    pub fn model(&self) -> Option<&Arc<Model>> {
        self.model.as_ref().map(|(m, _)| m)
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Queues slot `slot`; true when the queue is full and must be scored
    /// before another push (it never grows past its capacity).
    pub fn push(&mut self, slot: u32, generation: u32, now: u64) -> bool {
        if self.entries.is_empty() {
            self.oldest_ns = now;
        }
        self.entries.push((slot, generation));
        self.entries.len() >= self.batch + SPILL
    }

    /// Whether the queue should be scored now.
    pub fn due(&self, now: u64, wait_ns: u64) -> bool {
        !self.entries.is_empty()
            && (self.entries.len() >= self.batch || now.saturating_sub(self.oldest_ns) >= wait_ns)
    }

    /// Scores the still-valid slots among the oldest `batch` queued ones in
    /// one batch and takes those off the queue. Calls `f(slot, classes,
    /// probabilities)` per scored flow. Returns the flows scored (0:
    /// nothing valid, or no model — the caller decides those without
    /// one).
    pub fn run(
        &mut self,
        slots: &Slots,
        mut f: impl FnMut(u32, &[patronus_classify::Class], &[f32]),
    ) -> usize {
        self.rows.clear();
        let take = self.entries.len().min(self.batch);
        for &(slot, g) in &self.entries[..take] {
            let s = slots.get(slot);
            if s.generation == g && s.state == SlotState::Queued {
                let v = s.features.vector();
                let k = self.rows.len();
                self.x.row_mut(k).assign(&ndarray::ArrayView1::from(&v[..]));
                self.rows.push(slot);
            }
        }
        self.entries.drain(..take);
        let n = self.rows.len();
        let Some((model, scratch)) = self.model.as_mut() else {
            return 0;
        };
        if n == 0 {
            return 0;
        }
        let p = model.mlp.forward(self.x.slice(s![..n, ..]), scratch);
        for (k, slot) in self.rows.iter().enumerate() {
            let row = p.row(k);
            f(
                *slot,
                &model.mlp.classes,
                row.as_slice().expect("rows are contiguous"),
            );
        }
        n
    }

    /// Takes one queued (slot, generation) (for deciding without a model).
    pub fn pop(&mut self) -> Option<(u32, u32)> {
        self.entries.pop()
    }

    /// The slot scored in row `k` of the last [`InferQueue::run`].
    pub fn row_slot(&self, k: usize) -> u32 {
        self.rows[k]
    }
}
