//! Projection batches against the model database: the store side of the
//! production `ProjectionWorker` and `ProjectionProcessor`, which the
//! simulated nodes run unchanged (SIM-1), as `PgBatches` is on Postgres.

use async_trait::async_trait;
use rillflow_adapters::daemon::{LeaseError, NodeIdentity};
use rillflow_adapters::projection::{BatchError, BatchOutcome, Batches};
use rillflow_core::PartitionSpec;

use crate::client::sim_store::{caller, SimLeaseStore};
use crate::harness::trace::sim_now;
use crate::protocol::{LogRequest, Reply, Request};

/// The projection the simulation runs.
pub const PROJECTION: &str = "sim_counts";

/// Events per simulated batch: small, so a catch-up takes many batches and
/// faults land between them.
const LIMIT: u32 = 20;

/// Batches of the simulated projection, sent by `node` over the network.
pub struct SimBatches {
    store: SimLeaseStore,
    node: NodeIdentity,
    replica: bool,
}

impl SimBatches {
    /// Batches of `node` through `store` (whose planned pauses apply).
    pub fn new(store: SimLeaseStore, node: NodeIdentity) -> Self {
        SimBatches {
            store,
            node,
            replica: false,
        }
    }

    /// These batches reading their events from the standby, as
    /// `ProjectionRunner::reading_from` does: the batch still locks and
    /// moves the checkpoint on the primary, in one step there with the
    /// effects and the fence.
    pub fn reading_from_standby(mut self) -> Self {
        self.replica = true;
        self
    }
}

#[async_trait]
impl Batches for SimBatches {
    fn name(&self) -> &str {
        PROJECTION
    }

    fn partition(&self) -> PartitionSpec {
        PartitionSpec::WHOLE
    }

    async fn run_batch(&self, epoch: Option<u64>) -> Result<BatchOutcome, BatchError> {
        // The worker has just checked its permit; a planned pause lands
        // between that check and the batch, as in a stalled process.
        if let Some(length) = self.store.pauses().take(&self.node.node) {
            self.store.trace().record(
                sim_now(),
                &self.node.node,
                format!("paused {length:?} before a batch under epoch {epoch:?}"),
            );
            tokio::time::sleep(length).await;
        }
        let request = Request::Log(LogRequest::ProjectBatch {
            caller: caller(&self.node),
            epoch,
            limit: LIMIT,
            replica: self.replica,
        });
        match self.store.call(&request).await {
            Ok(Reply::Batch { applied: 0 }) => Ok(BatchOutcome::Idle),
            Ok(Reply::Batch { applied }) => Ok(BatchOutcome::Applied {
                read: applied as usize,
                applied: applied as usize,
            }),
            Ok(Reply::Fenced) => Err(BatchError::Fenced {
                epoch: epoch.unwrap_or(0),
            }),
            Ok(other) => Err(BatchError::Store(format!("unexpected reply {other:?}"))),
            Err(LeaseError::Timeout(e)) => Err(BatchError::Timeout(e)),
            Err(e) => Err(BatchError::Store(e.to_string())),
        }
    }
}
