//! Partition batches against the model database: the store side of the
//! production `OwnedWorker`, as `PgBatches::partitioned` is on Postgres.
//! A batch is one transaction on one connection: `PartitionBegin` (fence,
//! checkpoint lock, count check, read), then `PartitionCommit` (apply,
//! advance, prune the carry).

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use rillflow_adapters::ownership::PartitionBatches;
use rillflow_adapters::projection::{BatchError, BatchOutcome, Batches};
use rillflow_core::PartitionSpec;

use crate::client::db_conn::{ConnError, DbConn};
use crate::client::sim_batches::PROJECTION;
use crate::client::sim_store::Pauses;
use crate::harness::trace::{sim_now, Trace};
use crate::protocol::{OwnershipRequest, Reply, Request};

/// Events per batch: small, so catching up takes many batches and faults
/// land between them.
const LIMIT: u32 = 20;

/// Makes the batches of one worker (`PartitionBatches`).
#[derive(Debug, Clone)]
pub struct SimPartitionBatches {
    worker: String,
    pauses: Pauses,
    trace: Trace,
}

impl SimPartitionBatches {
    /// Batches of `worker`, stalled or frozen as the runner plans in
    /// `pauses`.
    pub fn new(worker: String, pauses: Pauses, trace: Trace) -> Self {
        SimPartitionBatches {
            worker,
            pauses,
            trace,
        }
    }
}

impl PartitionBatches for SimPartitionBatches {
    fn name(&self) -> &str {
        PROJECTION
    }

    fn batches(&self, partition: PartitionSpec) -> Arc<dyn Batches> {
        Arc::new(OwnedBatches {
            batch: OneBatch {
                worker: self.worker.clone(),
                partition,
                pauses: self.pauses.clone(),
                trace: self.trace.clone(),
            },
        })
    }
}

/// One partition's batches.
struct OwnedBatches {
    batch: OneBatch,
}

#[async_trait]
impl Batches for OwnedBatches {
    fn name(&self) -> &str {
        PROJECTION
    }

    fn partition(&self) -> PartitionSpec {
        self.batch.partition
    }

    async fn run_batch(&self, epoch: Option<u64>) -> Result<BatchOutcome, BatchError> {
        let Some(epoch) = epoch else {
            return Err(BatchError::Store(
                "a partition lease is needed to run an owned partition".into(),
            ));
        };
        // The worker has just checked that its belief holds; a planned
        // freeze lands between that check and the batch, and lasts until
        // the thaw, as a stopped process's would.
        let Some(thaw) = self.batch.pauses.take_until(&self.batch.worker) else {
            return self.batch.run(epoch).await;
        };
        let length = thaw.saturating_sub(sim_now());
        // A frozen process's batch goes on where it stopped once it thaws,
        // whatever its caller's timeout decided meanwhile, so it runs as a
        // task of its own that the worker's timeout cannot cancel.
        let batch = self.batch.clone();
        let task = tokio::spawn(async move {
            batch.trace.record(
                sim_now(),
                &batch.worker,
                format!(
                    "paused {length:?} before a batch of p{} under epoch {epoch}",
                    batch.partition.key()
                ),
            );
            tokio::time::sleep(length).await;
            batch.run(epoch).await
        });
        task.await
            .unwrap_or_else(|e| Err(BatchError::Store(format!("batch task failed: {e}"))))
    }
}

/// The requests of one batch.
#[derive(Debug, Clone)]
struct OneBatch {
    worker: String,
    partition: PartitionSpec,
    pauses: Pauses,
    trace: Trace,
}

/// A lost connection, as sqlx reports it.
fn broken(e: ConnError) -> BatchError {
    BatchError::Database(sqlx::Error::Io(std::io::Error::new(
        std::io::ErrorKind::ConnectionAborted,
        e.to_string(),
    )))
}

/// A refusal from the database, as the runner maps it.
fn refused(reply: Reply) -> BatchError {
    match reply {
        Reply::Failed(e) if e.contains("lock timeout") => BatchError::Timeout(e),
        Reply::Failed(e) => BatchError::Store(e),
        other => BatchError::Store(format!("unexpected reply {other:?}")),
    }
}

impl OneBatch {
    /// Begins and commits one batch under `epoch`. A planned freeze
    /// inside a transaction lands between the two, holding its locks.
    async fn run(&self, epoch: u64) -> Result<BatchOutcome, BatchError> {
        let (key, total) = (self.partition.key(), self.partition.total());
        let mut conn = DbConn::connect().await.map_err(broken)?;
        let begin = Request::Ownership(OwnershipRequest::PartitionBegin {
            projection: PROJECTION.to_owned(),
            worker: self.worker.clone(),
            partition: key,
            total,
            epoch,
            limit: LIMIT,
        });
        let (txn, read) = match conn.call(&begin).await.map_err(broken)? {
            Reply::BatchOpened { txn, read } => (txn, read),
            Reply::BatchIdle => return Ok(BatchOutcome::Idle),
            Reply::BatchHeldBack => return Ok(BatchOutcome::HeldBack),
            Reply::Fenced => return Err(BatchError::Fenced { epoch }),
            Reply::CountChanged { recorded } => {
                return Err(BatchError::Repartitioned {
                    projection: PROJECTION.to_owned(),
                    running: total,
                    recorded,
                })
            }
            Reply::Unregistered => return Err(BatchError::Unregistered(PROJECTION.to_owned())),
            other => return Err(refused(other)),
        };
        if let Some(length) = self.pauses.take_freeze(&self.worker) {
            self.freeze(length, txn, epoch).await;
        }
        match conn
            .call(&Request::Ownership(OwnershipRequest::PartitionCommit {
                txn,
            }))
            .await
            .map_err(broken)?
        {
            Reply::Batch { applied } => Ok(BatchOutcome::Applied {
                read: read as usize,
                applied: applied as usize,
            }),
            other => Err(refused(other)),
        }
    }

    /// Frozen inside the transaction: cut off the network (held, as a
    /// stopped process's socket is) and stalled, so the database may end
    /// the transaction for sitting idle.
    async fn freeze(&self, length: Duration, txn: u64, epoch: u64) {
        self.trace.record_freeze(
            &self.worker,
            sim_now(),
            format!(
                "frozen {length:?} inside batch {txn} of p{} under epoch {epoch}",
                self.partition.key()
            ),
        );
        turmoil::hold(self.worker.as_str(), "db");
        let worker = self.worker.clone();
        tokio::spawn(async move {
            tokio::time::sleep(length).await;
            turmoil::release(worker.as_str(), "db");
        });
        tokio::time::sleep(length).await;
    }
}
