//! Worker heartbeats and per-partition leases, each one statement judged by
//! the database clock.

use std::collections::BTreeMap;
use std::time::Duration;

use sqlx::{PgPool, Postgres, Transaction};

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
    /// Workers whose last heartbeat is younger than the ttl, by name.
    pub workers: Vec<String>,
    /// Partition → owner, for unexpired leases only.
    pub owners: BTreeMap<u32, String>,
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

    /// Records that `worker` of `projection` is alive now.
    pub async fn heartbeat(&self, projection: &str, worker: &str) -> Result<(), OwnershipError> {
        sqlx::query(
            "INSERT INTO rf_projection_workers (projection, worker) VALUES ($1, $2)
             ON CONFLICT (projection, worker) DO UPDATE SET heartbeat_at = clock_timestamp()",
        )
        .bind(projection)
        .bind(worker)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Removes `worker`'s registration (a graceful leave).
    pub async fn leave(&self, projection: &str, worker: &str) -> Result<(), OwnershipError> {
        sqlx::query("DELETE FROM rf_projection_workers WHERE projection = $1 AND worker = $2")
            .bind(projection)
            .bind(worker)
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
        let owners: Vec<(i32, String)> = sqlx::query_as(
            "SELECT partition_key, owner FROM rf_partition_leases
              WHERE projection = $1 AND owner IS NOT NULL AND expires_at > clock_timestamp()
              ORDER BY partition_key",
        )
        .bind(projection)
        .fetch_all(&self.pool)
        .await?;
        Ok(OwnershipView {
            workers,
            owners: owners
                .into_iter()
                .map(|(p, o)| (p.max(0) as u32, o))
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
                SET owner = EXCLUDED.owner, epoch = l.epoch + 1, expires_at = EXCLUDED.expires_at
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
        sqlx::query(
            "UPDATE rf_partition_leases SET owner = NULL, expires_at = NULL
              WHERE projection = $1 AND partition_key = $2 AND epoch = $3",
        )
        .bind(projection)
        .bind(partition as i32)
        .bind(epoch as i64)
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
        let mut tx = self.pool.begin().await?;
        let held: Option<i32> = sqlx::query_scalar(
            "SELECT 1 FROM rf_partition_leases
              WHERE projection = $1 AND partition_key = $2 AND epoch = $3
                AND owner IS NOT NULL AND expires_at > clock_timestamp()
              FOR SHARE",
        )
        .bind(projection)
        .bind(partition as i32)
        .bind(epoch as i64)
        .fetch_optional(&mut *tx)
        .await?;
        match held {
            Some(_) => Ok(tx),
            None => Err(OwnershipError::Fenced {
                projection: projection.to_owned(),
                partition,
                epoch,
            }),
        }
    }
}
