//! Projections as the work of a hot node.

use std::sync::Arc;

use tokio::sync::{watch, Notify};
use tokio::task::JoinHandle;

use super::fence::WriteFence;
use super::worker::{LeaseCheck, ProjectionWorker, WorkerExit};
use crate::daemon::{PgLeaseStore, Processor, WriteGate};

/// Runs the projection worker for each epoch the node is granted, every
/// batch fenced by that epoch. When the fence or the node's own clock says
/// the lease is gone, the work of that epoch ends; the lease machine then
/// stands the node by.
pub struct ProjectionProcessor {
    worker: Arc<ProjectionWorker>,
    store: PgLeaseStore,
    cluster: String,
    wake: Arc<Notify>,
}

impl ProjectionProcessor {
    /// Projections of `worker` for `cluster`, woken by `wake`.
    pub fn new(
        worker: Arc<ProjectionWorker>,
        store: PgLeaseStore,
        cluster: String,
        wake: Arc<Notify>,
    ) -> Self {
        ProjectionProcessor {
            worker,
            store,
            cluster,
            wake,
        }
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
        let fence = WriteFence::Epoch {
            store: self.store.clone(),
            cluster: self.cluster.clone(),
            epoch,
        };
        tokio::spawn(async move {
            let lease = LeaseCheck { epoch, gate };
            let exit = worker.run(&fence, Some(&lease), &wake, stop, false).await;
            tracing::info!(epoch, ?exit, "projection work of this epoch ended");
            if exit == WorkerExit::LeaseLost {
                tracing::warn!(epoch, "lease lost while projecting; standing by");
            }
        })
    }
}
