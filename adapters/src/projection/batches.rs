//! What the projection worker runs: batches of one projection partition,
//! whatever the store.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use rillflow_core::PartitionSpec;
use sqlx::PgPool;

use super::batch_error::BatchError;
use super::fence::WriteFence;
use super::runner::{BatchOutcome, ProjectionRunner};
use super::versions::{switch_if_caught_up, versions};
use crate::daemon::PgLeaseStore;
use crate::ownership::PgOwnershipStore;

/// Where the epochs that fence a [`PgBatches`] come from.
#[derive(Debug, Clone)]
enum Fences {
    /// None: batches run unfenced.
    Unfenced,
    /// The cluster lease of hot/cold mode.
    Cluster(PgLeaseStore, String),
    /// The partition's own lease under dynamic ownership.
    Partition(PgOwnershipStore),
}

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
/// when an epoch is given. For a versioned projection each call runs a
/// batch of the live version and, while a rebuild is under way, one of the
/// version being built, and switches readers over once it caught up.
pub struct PgBatches {
    runner: ProjectionRunner,
    pool: PgPool,
    fences: Fences,
    /// Runners of other read-model versions, made on first use.
    at_versions: Mutex<BTreeMap<u32, Arc<ProjectionRunner>>>,
}

impl PgBatches {
    /// Batches of `runner` on `pool`; `lease` is the lease store and cluster
    /// whose epochs fence them in hot/cold mode.
    pub fn new(
        runner: ProjectionRunner,
        pool: PgPool,
        lease: Option<(PgLeaseStore, String)>,
    ) -> Self {
        let fences = match lease {
            Some((store, cluster)) => Fences::Cluster(store, cluster),
            None => Fences::Unfenced,
        };
        PgBatches {
            runner,
            pool,
            fences,
            at_versions: Mutex::new(BTreeMap::new()),
        }
    }

    /// Batches of `runner` on `pool` fenced by the partition's own lease in
    /// `store` (dynamic ownership): the epoch given to `run_batch` is the
    /// one this worker holds the partition under.
    pub fn partitioned(runner: ProjectionRunner, pool: PgPool, store: PgOwnershipStore) -> Self {
        PgBatches {
            runner,
            pool,
            fences: Fences::Partition(store),
            at_versions: Mutex::new(BTreeMap::new()),
        }
    }

    fn fence(&self, epoch: Option<u64>) -> Result<WriteFence, BatchError> {
        match (epoch, &self.fences) {
            (None, Fences::Partition(_)) => Err(BatchError::Store(
                "a partition lease is needed to run an owned partition".into(),
            )),
            (None, _) => Ok(WriteFence::Unfenced(self.pool.clone())),
            (Some(epoch), Fences::Cluster(store, cluster)) => Ok(WriteFence::Epoch {
                store: store.clone(),
                pool: self.pool.clone(),
                cluster: cluster.clone(),
                epoch,
            }),
            (Some(epoch), Fences::Partition(store)) => Ok(WriteFence::Partition {
                store: store.clone(),
                pool: self.pool.clone(),
                projection: self.runner.projection().name().to_owned(),
                partition: self.runner.partition().key(),
                epoch,
            }),
            (Some(epoch), Fences::Unfenced) => Err(BatchError::Store(format!(
                "asked to write under epoch {epoch} without a lease store to fence it"
            ))),
        }
    }

    fn runner_at(&self, version: u32) -> Result<Arc<ProjectionRunner>, BatchError> {
        let mut cache = self.at_versions.lock().expect("runner cache lock");
        if let Some(r) = cache.get(&version) {
            return Ok(r.clone());
        }
        let projection = self
            .runner
            .projection()
            .at_version(version)
            .ok_or_else(|| {
                BatchError::Store(format!(
                    "{} is not versioned",
                    self.runner.projection().name()
                ))
            })?;
        let runner = Arc::new(self.runner.at_version(projection, version));
        cache.insert(version, runner.clone());
        Ok(runner)
    }

    async fn run_versioned(&self, fence: &WriteFence) -> Result<BatchOutcome, BatchError> {
        let mut conn = self.pool.acquire().await?;
        let at = versions(&mut conn, self.runner.projection().name()).await?;
        drop(conn);
        let live = self.runner_at(at.active)?.run_batch(fence).await?;
        let Some(version) = at.building else {
            return Ok(live);
        };
        let building = self.runner_at(version)?;
        let outcome = building.run_batch(fence).await?;
        if outcome == BatchOutcome::Idle {
            let mut tx = fence.begin().await?;
            match switch_if_caught_up(&mut tx, building.projection().as_ref(), version).await {
                Ok(true) => tx.commit().await?,
                Ok(false) => tx.rollback().await?,
                Err(e) => {
                    tx.rollback().await?;
                    return Err(BatchError::Store(format!(
                        "switching to version {version}: {e}"
                    )));
                }
            }
        }
        Ok(combine(live, outcome))
    }
}

/// One outcome for the worker: work done on either version counts, then
/// the soonest retry, then events held back on either, then the live
/// version's state.
fn combine(live: BatchOutcome, building: BatchOutcome) -> BatchOutcome {
    match (live, building) {
        (
            BatchOutcome::Applied { read, applied },
            BatchOutcome::Applied {
                read: r,
                applied: a,
            },
        ) => BatchOutcome::Applied {
            read: read + r,
            applied: applied + a,
        },
        (a @ BatchOutcome::Applied { .. }, _) | (_, a @ BatchOutcome::Applied { .. }) => a,
        (BatchOutcome::RetryIn(x), BatchOutcome::RetryIn(y)) => BatchOutcome::RetryIn(x.min(y)),
        (_, r @ BatchOutcome::RetryIn(_)) => r,
        (BatchOutcome::Idle, BatchOutcome::HeldBack) => BatchOutcome::HeldBack,
        (live, _) => live,
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
        let fence = self.fence(epoch)?;
        if self.runner.projection().versioned_tables().is_empty() {
            return self.runner.run_batch(&fence).await;
        }
        self.run_versioned(&fence).await
    }
}
