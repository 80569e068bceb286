//! How a batch's transaction is opened: under the lease or not.

use sqlx::{PgPool, Postgres, Transaction};

use super::batch_error::BatchError;
use crate::daemon::{FenceError, PgLeaseStore};
use crate::ownership::{OwnershipError, PgOwnershipStore};

/// Opens every batch transaction.
#[derive(Debug, Clone)]
pub enum WriteFence {
    /// Single mode: no lease. The checkpoint row lock still serialises any
    /// two writers of one partition, so effects stay exactly once.
    Unfenced(PgPool),
    /// Hot/cold mode: the transaction commits only while `epoch` is the
    /// cluster's current, unexpired lease (LEASE-1).
    Epoch {
        /// The lease store whose fence is checked.
        store: PgLeaseStore,
        /// Where the batch runs: the store's pool, or a handler role's.
        pool: PgPool,
        /// The cluster.
        cluster: String,
        /// The epoch this node writes under.
        epoch: u64,
    },
    /// Dynamic ownership: the transaction commits only while `epoch` is the
    /// partition's current, unexpired lease (PROJ-4).
    Partition {
        /// The ownership store whose fence is checked.
        store: PgOwnershipStore,
        /// Where the batch runs: the store's pool, or a handler role's.
        pool: PgPool,
        /// The projection.
        projection: String,
        /// The partition.
        partition: u32,
        /// The epoch this worker holds the partition under.
        epoch: u64,
    },
}

impl WriteFence {
    /// The lease epoch, if fenced.
    pub fn epoch(&self) -> Option<u64> {
        match self {
            WriteFence::Unfenced(_) => None,
            WriteFence::Epoch { epoch, .. } | WriteFence::Partition { epoch, .. } => Some(*epoch),
        }
    }

    /// The pool batch transactions come from.
    pub fn pool(&self) -> &PgPool {
        match self {
            WriteFence::Unfenced(pool)
            | WriteFence::Epoch { pool, .. }
            | WriteFence::Partition { pool, .. } => pool,
        }
    }

    /// Opens a batch transaction.
    pub async fn begin(&self) -> Result<Transaction<'static, Postgres>, BatchError> {
        match self {
            WriteFence::Unfenced(pool) => Ok(pool.begin().await?),
            WriteFence::Epoch {
                pool,
                cluster,
                epoch,
                ..
            } => PgLeaseStore::begin_fenced_on(pool, cluster, *epoch)
                .await
                .map_err(|e| match e {
                    FenceError::Fenced { epoch } => BatchError::Fenced { epoch },
                    FenceError::Timeout(msg) => BatchError::Timeout(msg),
                    FenceError::Database(err) => BatchError::Database(err),
                }),
            WriteFence::Partition {
                pool,
                projection,
                partition,
                epoch,
                ..
            } => PgOwnershipStore::begin_fenced_on(pool, projection, *partition, *epoch)
                .await
                .map_err(|e| match e {
                    OwnershipError::Fenced { epoch, .. } => BatchError::Fenced { epoch },
                    OwnershipError::Database(err) => BatchError::from(err),
                }),
        }
    }
}
