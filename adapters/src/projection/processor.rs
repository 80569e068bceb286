//! Projections as the work of a hot node.

use std::sync::Arc;

use tokio::sync::{watch, Notify};
use tokio::task::JoinHandle;

use super::worker::{LeaseCheck, ProjectionWorker, WorkerExit};
use crate::daemon::{Processor, WriteGate};

/// Runs the projection worker for each epoch the node is granted, every
/// batch fenced by that epoch. When the fence or the node's own clock says
/// the lease is gone, the work of that epoch ends; the lease machine then
/// stands the node by. The simulation runs this same processor.
pub struct ProjectionProcessor {
    worker: Arc<ProjectionWorker>,
    wake: Arc<Notify>,
}

impl ProjectionProcessor {
    /// Projections of `worker`, woken by `wake`.
    pub fn new(worker: Arc<ProjectionWorker>, wake: Arc<Notify>) -> Self {
        ProjectionProcessor { worker, wake }
    }
}

impl Processor for ProjectionProcessor {
    fn spawn(
        &mut self,
        epoch: u64,
        gate: WriteGate,
        stop: watch::Receiver<bool>,
    ) -> JoinHandle<()> {
        let worker = self.worker.clone();
        let wake = self.wake.clone();
        tokio::spawn(async move {
            let lease = LeaseCheck { epoch, gate };
            let exit = worker.run(Some(&lease), &wake, stop).await;
            if exit == WorkerExit::LeaseLost {
                tracing::warn!(epoch, "lease lost while projecting; standing by");
            } else {
                tracing::info!(epoch, ?exit, "projection work of this epoch ended");
            }
        })
    }
}
