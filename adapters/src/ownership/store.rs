//! Worker heartbeats and per-partition leases, each one statement judged by
//! the database clock.

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;
use rillflow_core::ownership::Holder;
use sqlx::{PgPool, Postgres, Transaction};

use super::contract::OwnershipStore;

/// Channel of ownership changes (a release, a join, a leave, a
/// repartition); the payload is the projection's name.
pub const CHANGES_CHANNEL: &str = "rf_partition_changes";

/// What can go wrong with partition ownership.
#[derive(Debug, thiserror::Error)]
pub enum OwnershipError {
    /// The partition's lease is no longer held under this epoch: another
    /// worker owns it now, or it ran out.
    #[error("partition {partition} of {projection:?} is not held under epoch {epoch}")]
    Fenced {
        /// The projection.
        projection: String,
        /// The partition.
        partition: u32,
        /// The epoch the caller held.
        epoch: u64,
    },
    /// Any database failure.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
}

/// A projection's live workers and the partitions held now, by the
/// database clock.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct OwnershipView {
    /// The projection's partition count (0 when it is not registered).
    pub partitions: u32,
    /// Workers whose last heartbeat is younger than the ttl, by name.
    pub workers: Vec<String>,
    /// Partition → holder, for unexpired leases only.
    pub holders: BTreeMap<u32, Holder>,
}

impl OwnershipView {
    /// Partition → owner name.
    pub fn owners(&self) -> BTreeMap<u32, String> {
        self.holders
            .iter()
            .map(|(p, h)| (*p, h.worker.clone()))
            .collect()
    }
}

/// Registration, leases and fences of partition ownership.
#[derive(Debug, Clone)]
pub struct PgOwnershipStore {
    pool: PgPool,
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

impl PgOwnershipStore {
    /// A store on `pool`.
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }

    /// The pool it runs on.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Records that `worker` of `projection` is alive now and counts as
    /// live for `ttl` (what status and metrics judge it by).
    pub async fn heartbeat(
        &self,
        projection: &str,
        worker: &str,
        ttl: Duration,
    ) -> Result<(), OwnershipError> {
        // A worker that was not registered (or had left) wakes the others:
        // their quotas just fell.
        sqlx::query(
            "WITH w AS (
                INSERT INTO rf_projection_workers (projection, worker, ttl_ms) VALUES ($1, $2, $3)
                ON CONFLICT (projection, worker)
                DO UPDATE SET heartbeat_at = clock_timestamp(), ttl_ms = EXCLUDED.ttl_ms
                RETURNING (xmax = 0) AS joined)
             SELECT pg_notify($4, $1) FROM w WHERE joined",
        )
        .bind(projection)
        .bind(worker)
        .bind(millis(ttl).max(1))
        .bind(CHANGES_CHANNEL)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Removes `worker`'s registration (a graceful leave) and wakes the
    /// others: their quotas just grew.
    pub async fn leave(&self, projection: &str, worker: &str) -> Result<(), OwnershipError> {
        sqlx::query(
            "WITH w AS (DELETE FROM rf_projection_workers WHERE projection = $1 AND worker = $2
                        RETURNING projection)
             SELECT pg_notify($3, projection) FROM w",
        )
        .bind(projection)
        .bind(worker)
        .bind(CHANGES_CHANNEL)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Live workers (heartbeat younger than `ttl`) and unexpired owners.
    pub async fn view(
        &self,
        projection: &str,
        ttl: Duration,
    ) -> Result<OwnershipView, OwnershipError> {
        let workers: Vec<String> = sqlx::query_scalar(
            "SELECT worker FROM rf_projection_workers
              WHERE projection = $1
                AND heartbeat_at > clock_timestamp() - make_interval(secs => $2::float8 / 1000)
              ORDER BY worker",
        )
        .bind(projection)
        .bind(millis(ttl))
        .fetch_all(&self.pool)
        .await?;
        let holders: Vec<(i32, String, i64)> = sqlx::query_as(
            "SELECT partition_key, owner, epoch FROM rf_partition_leases
              WHERE projection = $1 AND owner IS NOT NULL AND expires_at > clock_timestamp()
              ORDER BY partition_key",
        )
        .bind(projection)
        .fetch_all(&self.pool)
        .await?;
        let partitions: Option<i32> =
            sqlx::query_scalar("SELECT total_partitions FROM rf_projections WHERE name = $1")
                .bind(projection)
                .fetch_optional(&self.pool)
                .await?;
        Ok(OwnershipView {
            partitions: partitions.unwrap_or(0).max(0) as u32,
            workers,
            holders: holders
                .into_iter()
                .map(|(p, worker, epoch)| {
                    let holder = Holder {
                        worker,
                        epoch: epoch.max(0) as u64,
                    };
                    (p.max(0) as u32, holder)
                })
                .collect(),
        })
    }

    /// Takes `partition` for `worker` if nobody holds it (or its lease ran
    /// out), for `ttl`; returns the new epoch, one more than any before.
    pub async fn claim(
        &self,
        projection: &str,
        partition: u32,
        worker: &str,
        ttl: Duration,
    ) -> Result<Option<u64>, OwnershipError> {
        let epoch: Option<i64> = sqlx::query_scalar(
            "INSERT INTO rf_partition_leases AS l (projection, partition_key, owner, epoch, expires_at)
             VALUES ($1, $2, $3, 1, clock_timestamp() + make_interval(secs => $4::float8 / 1000))
             ON CONFLICT (projection, partition_key) DO UPDATE
                SET owner = EXCLUDED.owner, epoch = l.epoch + 1, expires_at = EXCLUDED.expires_at,
                    released_at = NULL,
                    unowned_secs = l.unowned_secs + greatest(0, extract(epoch FROM
                        clock_timestamp() - coalesce(l.released_at, l.expires_at, clock_timestamp())))
              WHERE l.owner IS NULL OR l.expires_at <= clock_timestamp()
             RETURNING epoch",
        )
        .bind(projection)
        .bind(partition as i32)
        .bind(worker)
        .bind(millis(ttl))
        .fetch_optional(&self.pool)
        .await?;
        Ok(epoch.map(|e| e as u64))
    }

    /// Extends the lease held under `epoch`; false when it is no longer held.
    pub async fn renew(
        &self,
        projection: &str,
        partition: u32,
        epoch: u64,
        ttl: Duration,
    ) -> Result<bool, OwnershipError> {
        let done = sqlx::query(
            "UPDATE rf_partition_leases
                SET expires_at = clock_timestamp() + make_interval(secs => $4::float8 / 1000)
              WHERE projection = $1 AND partition_key = $2 AND epoch = $3
                AND owner IS NOT NULL AND expires_at > clock_timestamp()",
        )
        .bind(projection)
        .bind(partition as i32)
        .bind(epoch as i64)
        .bind(millis(ttl))
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(done == 1)
    }

    /// Gives up the lease held under `epoch` (no-op when it is not held).
    pub async fn release(
        &self,
        projection: &str,
        partition: u32,
        epoch: u64,
    ) -> Result<(), OwnershipError> {
        // The notice goes out at commit, so a woken worker finds it free.
        sqlx::query(
            "WITH r AS (
                UPDATE rf_partition_leases
                   SET owner = NULL, expires_at = NULL,
                       released_at = least(clock_timestamp(), expires_at)
                 WHERE projection = $1 AND partition_key = $2 AND epoch = $3 AND owner IS NOT NULL
                RETURNING projection)
             SELECT pg_notify($4, projection) FROM r",
        )
        .bind(projection)
        .bind(partition as i32)
        .bind(epoch as i64)
        .bind(CHANGES_CHANNEL)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// A transaction that may commit work for `partition` only while
    /// `epoch` holds it: the lease row is read `FOR SHARE`, so a claim (an
    /// update of that row) waits for the transaction to end, and a lease
    /// that moved or ran out refuses it.
    pub async fn begin_fenced(
        &self,
        projection: &str,
        partition: u32,
        epoch: u64,
    ) -> Result<Transaction<'static, Postgres>, OwnershipError> {
        Self::begin_fenced_on(&self.pool, projection, partition, epoch).await
    }

    /// [`Self::begin_fenced`] on a connection of `pool`, which may log in
    /// as a handler role: `rf_fence_partition` (sql/0012, SECURITY DEFINER)
    /// takes the lock, and refuses a handler role another projection's.
    pub async fn begin_fenced_on(
        pool: &PgPool,
        projection: &str,
        partition: u32,
        epoch: u64,
    ) -> Result<Transaction<'static, Postgres>, OwnershipError> {
        let mut tx = pool.begin().await?;
        let held: bool = sqlx::query_scalar("SELECT rf_fence_partition($1, $2, $3)")
            .bind(projection)
            .bind(partition as i32)
            .bind(epoch as i64)
            .fetch_one(&mut *tx)
            .await?;
        match held {
            true => Ok(tx),
            false => Err(OwnershipError::Fenced {
                projection: projection.to_owned(),
                partition,
                epoch,
            }),
        }
    }
}

#[async_trait]
impl OwnershipStore for PgOwnershipStore {
    async fn sync(
        &self,
        projection: &str,
        worker: &str,
        ttl: Duration,
    ) -> Result<OwnershipView, OwnershipError> {
        self.heartbeat(projection, worker, ttl).await?;
        self.view(projection, ttl).await
    }

    async fn claim(
        &self,
        projection: &str,
        partition: u32,
        worker: &str,
        ttl: Duration,
    ) -> Result<Option<u64>, OwnershipError> {
        PgOwnershipStore::claim(self, projection, partition, worker, ttl).await
    }

    async fn renew(
        &self,
        projection: &str,
        partition: u32,
        epoch: u64,
        ttl: Duration,
    ) -> Result<bool, OwnershipError> {
        PgOwnershipStore::renew(self, projection, partition, epoch, ttl).await
    }

    async fn release(
        &self,
        projection: &str,
        partition: u32,
        epoch: u64,
    ) -> Result<(), OwnershipError> {
        PgOwnershipStore::release(self, projection, partition, epoch).await
    }

    async fn leave(&self, projection: &str, worker: &str) -> Result<(), OwnershipError> {
        PgOwnershipStore::leave(self, projection, worker).await
    }
}
