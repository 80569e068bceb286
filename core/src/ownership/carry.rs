//! Carrying checkpoints across a change of the partition count.
//!
//! Each partition applies its streams' events in (tx_id, position) order,
//! so for every stream what has been applied is a prefix of its events: all
//! of them up to a per-stream *frontier*. Under one partitioning the
//! frontier of stream `s` is the checkpoint of `s`'s partition.
//!
//! Repartitioning must keep every frontier where it is. The new partitions
//! all start from the lowest old checkpoint, which is at or before every
//! stream's frontier, and carry the old checkpoints along as a [`Layer`]: an
//! event at or before its stream's cursor in some layer was applied already
//! and is skipped. So nothing is skipped that was not applied (no checkpoint
//! moves forward) and nothing is applied twice (every frontier is kept).
//!
//! A layer stays true for as long as the read model is not reset: what was
//! applied stays applied. Resetting a checkpoint or rebuilding drops the
//! layers. Layers a partition has moved past say nothing any more and are
//! pruned.

use serde::{Deserialize, Serialize};

use crate::cursor::GlobalCursor;
use crate::partition::partition_of;

/// What an earlier partitioning had applied: with `total` partitions, every
/// event of a stream in partition `k` up to and including `applied[k]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Layer {
    /// The earlier partition count.
    pub total: u32,
    /// Its checkpoints, by partition key; `total` of them.
    pub applied: Vec<GlobalCursor>,
}

impl Layer {
    /// True when this layer says the event at `at` of a stream with
    /// partition hash `hash` was applied.
    pub fn covers(&self, hash: i32, at: GlobalCursor) -> bool {
        if self.total == 0 {
            return false;
        }
        let key = partition_of(hash, self.total) as usize;
        self.applied.get(key).is_some_and(|upto| at <= *upto)
    }

    /// The furthest cursor in the layer.
    pub fn furthest(&self) -> GlobalCursor {
        self.applied.iter().copied().max().unwrap_or_default()
    }
}

/// The layers a partition carries; empty in the common case.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Carry {
    layers: Vec<Layer>,
}

impl Carry {
    /// No layers: everything after the checkpoint is new.
    pub fn none() -> Self {
        Carry::default()
    }

    /// True when nothing is carried.
    pub fn is_empty(&self) -> bool {
        self.layers.is_empty()
    }

    /// The layers, oldest first.
    pub fn layers(&self) -> &[Layer] {
        &self.layers
    }

    /// True when the event at `at` of a stream with partition hash `hash`
    /// was applied under an earlier partitioning and must be skipped.
    pub fn already_applied(&self, hash: i32, at: GlobalCursor) -> bool {
        self.layers.iter().any(|layer| layer.covers(hash, at))
    }

    /// This carry for a partition whose checkpoint is `checkpoint`: layers
    /// that end at or before it can no longer cover an unread event.
    pub fn pruned(mut self, checkpoint: GlobalCursor) -> Carry {
        self.layers.retain(|layer| layer.furthest() > checkpoint);
        self
    }
}

/// A partition's checkpoint and what it carries.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PartitionState {
    /// Everything of this partition up to here was applied.
    pub checkpoint: GlobalCursor,
    /// What earlier partitionings applied beyond it.
    pub carry: Carry,
}

/// Where every partition of a new partitioning starts when the current one
/// has `old` states, by partition key (a partition that never ran is
/// `PartitionState::default()`). The count of the new partitioning does not
/// matter: each stream's frontier is kept whichever partition it lands in.
pub fn carry_over(old: &[PartitionState]) -> PartitionState {
    let Some(lowest) = old.iter().map(|s| s.checkpoint).min() else {
        return PartitionState::default();
    };
    let mut layers: Vec<Layer> = Vec::new();
    for layer in old.iter().flat_map(|s| s.carry.layers.iter()) {
        if !layers.contains(layer) {
            layers.push(layer.clone());
        }
    }
    layers.push(Layer {
        total: old.len() as u32,
        applied: old.iter().map(|s| s.checkpoint).collect(),
    });
    PartitionState {
        checkpoint: lowest,
        carry: Carry { layers }.pruned(lowest),
    }
}
