//! What the projection worker runs: batches of one projection partition,
//! whatever the store.

use async_trait::async_trait;
use rillflow_core::PartitionSpec;
use sqlx::PgPool;

use super::batch_error::BatchError;
use super::fence::WriteFence;
use super::runner::{BatchOutcome, ProjectionRunner};
use crate::daemon::PgLeaseStore;

/// One projection partition's batches. Postgres implements it with
/// [`PgBatches`]; the simulation with batches against its model database,
/// so both run the same worker loop and processor.
#[async_trait]
pub trait Batches: Send + Sync {
    /// The projection's name.
    fn name(&self) -> &str;
    /// The partition.
    fn partition(&self) -> PartitionSpec;
    /// Runs one batch; under the lease of `epoch` when given (hot/cold mode),
    /// unfenced otherwise.
    async fn run_batch(&self, epoch: Option<u64>) -> Result<BatchOutcome, BatchError>;
}

/// [`ProjectionRunner`] batches on Postgres, fenced by the cluster's lease
/// when an epoch is given.
pub struct PgBatches {
    runner: ProjectionRunner,
    pool: PgPool,
    lease: Option<(PgLeaseStore, String)>,
}

impl PgBatches {
    /// Batches of `runner` on `pool`; `lease` is the lease store and cluster
    /// whose epochs fence them in hot/cold mode.
    pub fn new(
        runner: ProjectionRunner,
        pool: PgPool,
        lease: Option<(PgLeaseStore, String)>,
    ) -> Self {
        PgBatches {
            runner,
            pool,
            lease,
        }
    }
}

#[async_trait]
impl Batches for PgBatches {
    fn name(&self) -> &str {
        self.runner.projection().name()
    }

    fn partition(&self) -> PartitionSpec {
        self.runner.partition()
    }

    async fn run_batch(&self, epoch: Option<u64>) -> Result<BatchOutcome, BatchError> {
        let fence = match (epoch, &self.lease) {
            (None, _) => WriteFence::Unfenced(self.pool.clone()),
            (Some(epoch), Some((store, cluster))) => WriteFence::Epoch {
                store: store.clone(),
                cluster: cluster.clone(),
                epoch,
            },
            (Some(epoch), None) => {
                return Err(BatchError::Store(format!(
                    "asked to write under epoch {epoch} without a lease store to fence it"
                )))
            }
        };
        self.runner.run_batch(&fence).await
    }
}
