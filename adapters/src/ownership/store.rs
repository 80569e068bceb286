//! Worker heartbeats and per-partition leases, each one statement judged by
//! the database clock (the statements are in `store_sql.rs`). With session
//! leases (sql/0018) the worker's heartbeats, claims and renewals run on its
//! lease session, so its registration and leases end with its process.

use std::collections::BTreeMap;
use std::time::Duration;

use std::sync::Arc;

use async_trait::async_trait;
use rillflow_core::ownership::Holder;
use sqlx::postgres::{PgArguments, PgRow};
use sqlx::query::Query;
use sqlx::{PgPool, Postgres, Row, Transaction};

use super::contract::OwnershipStore;
use super::store_sql::*;
use crate::daemon::PgLeaseSession;

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
    /// Workers whose last heartbeat is younger than the ttl (and whose
    /// session, if their registration names one, is open), by name.
    pub workers: Vec<String>,
    /// Partition → holder, for leases held now only: unexpired, and bound
    /// to an open session if bound to one.
    pub holders: BTreeMap<u32, Holder>,
}

/// The sessions of a projection's workers (sql/0018), by worker name.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct WorkerSessions {
    /// Live workers whose registration names a session.
    pub live: BTreeMap<String, i64>,
    /// Workers whose heartbeat is younger than the ttl but whose session
    /// ended: they died since.
    pub ended: BTreeMap<String, i64>,
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
    session: Option<Arc<PgLeaseSession>>,
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

impl PgOwnershipStore {
    /// A store on `pool` whose registrations and leases are judged by their
    /// ttl alone.
    pub fn new(pool: PgPool) -> Self {
        Self {
            pool,
            session: None,
        }
    }

    /// A store whose heartbeats, claims and renewals run on a lease session
    /// of their own (sql/0018), so this worker's registration and leases end
    /// with its process as well as with their ttl. Needs real sessions: not
    /// through a transaction-pooling PgBouncer.
    pub fn with_session_leases(pool: PgPool) -> Self {
        let session = Arc::new(PgLeaseSession::new(&pool));
        Self {
            pool,
            session: Some(session),
        }
    }

    /// The lease session, if registrations and leases are bound to one.
    pub fn lease_session(&self) -> Option<&Arc<PgLeaseSession>> {
        self.session.as_ref()
    }

    /// The pool it runs on.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Runs the statement `make` builds on the lease session, passing its
    /// key and server process id, or on the pool with neither.
    async fn bound<'q>(
        &self,
        make: impl Fn(Option<i64>, Option<i32>) -> Query<'q, Postgres, PgArguments>,
    ) -> Result<Vec<PgRow>, sqlx::Error> {
        match &self.session {
            None => make(None, None).fetch_all(&self.pool).await,
            Some(session) => {
                session
                    .fetch_all(|key, pid| make(Some(key), Some(pid)))
                    .await
            }
        }
    }

    /// Records that `worker` of `projection` is alive now and counts as
    /// live for `ttl` (what status and metrics judge it by), and as long as
    /// its lease session lasts when it has one.
    pub async fn heartbeat(
        &self,
        projection: &str,
        worker: &str,
        ttl: Duration,
    ) -> Result<(), OwnershipError> {
        self.bound(|key, pid| {
            sqlx::query(HEARTBEAT)
                .bind(projection)
                .bind(worker)
                .bind(millis(ttl).max(1))
                .bind(CHANGES_CHANNEL)
                .bind(key)
                .bind(pid)
        })
        .await?;
        Ok(())
    }

    /// Removes `worker`'s registration (a graceful leave) and wakes the
    /// others: their quotas just grew.
    pub async fn leave(&self, projection: &str, worker: &str) -> Result<(), OwnershipError> {
        sqlx::query(LEAVE)
            .bind(projection)
            .bind(worker)
            .bind(CHANGES_CHANNEL)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Live workers (heartbeat younger than `ttl`, session open when they
    /// have one) and the owners of leases held now.
    pub async fn view(
        &self,
        projection: &str,
        ttl: Duration,
    ) -> Result<OwnershipView, OwnershipError> {
        Ok(self.view_with_sessions(projection, ttl).await?.0)
    }

    /// [`Self::view`], and the sessions of live workers and of workers that
    /// died within `ttl`.
    pub async fn view_with_sessions(
        &self,
        projection: &str,
        ttl: Duration,
    ) -> Result<(OwnershipView, WorkerSessions), OwnershipError> {
        type ViewRow = (
            String,
            Option<String>,
            Option<i64>,
            Option<i32>,
            Option<i64>,
        );
        let rows: Vec<ViewRow> = sqlx::query_as(VIEW)
            .bind(projection)
            .bind(millis(ttl))
            .fetch_all(&self.pool)
            .await?;
        let mut view = OwnershipView::default();
        let mut sessions = WorkerSessions::default();
        for (kind, name, key, num, epoch) in rows {
            let num = num.unwrap_or(0).max(0) as u32;
            match (kind.as_str(), name) {
                ("w", Some(worker)) => {
                    if let Some(key) = key {
                        sessions.live.insert(worker.clone(), key);
                    }
                    view.workers.push(worker);
                }
                ("d", Some(worker)) => {
                    if let Some(key) = key {
                        sessions.ended.insert(worker, key);
                    }
                }
                ("l", Some(worker)) => {
                    let epoch = epoch.unwrap_or(0).max(0) as u64;
                    view.holders.insert(num, Holder { worker, epoch });
                }
                ("p", _) => view.partitions = num,
                _ => {}
            }
        }
        Ok((view, sessions))
    }

    /// Takes `partition` for `worker` if nobody holds it (or its lease ran
    /// out, or its holder's session ended), for `ttl`; returns the new
    /// epoch, one more than any before.
    pub async fn claim(
        &self,
        projection: &str,
        partition: u32,
        worker: &str,
        ttl: Duration,
    ) -> Result<Option<u64>, OwnershipError> {
        let rows = self
            .bound(|key, pid| {
                sqlx::query(CLAIM)
                    .bind(projection)
                    .bind(partition as i32)
                    .bind(worker)
                    .bind(millis(ttl))
                    .bind(key)
                    .bind(pid)
            })
            .await?;
        match rows.first() {
            Some(row) => Ok(Some(row.try_get::<i64, _>("epoch")?.max(0) as u64)),
            None => Ok(None),
        }
    }

    /// Extends the lease held under `epoch`; false when it is no longer held
    /// (or is bound to a session other than this store's current one).
    pub async fn renew(
        &self,
        projection: &str,
        partition: u32,
        epoch: u64,
        ttl: Duration,
    ) -> Result<bool, OwnershipError> {
        let rows = self
            .bound(|key, pid| {
                sqlx::query(RENEW)
                    .bind(projection)
                    .bind(partition as i32)
                    .bind(epoch as i64)
                    .bind(millis(ttl))
                    .bind(key)
                    .bind(pid)
            })
            .await?;
        Ok(rows.len() == 1)
    }

    /// Gives up the lease held under `epoch` (no-op when it is not held).
    pub async fn release(
        &self,
        projection: &str,
        partition: u32,
        epoch: u64,
    ) -> Result<(), OwnershipError> {
        // On the pool: a release needs no session, and one whose session
        // broke must still get through.
        sqlx::query(RELEASE)
            .bind(projection)
            .bind(partition as i32)
            .bind(epoch as i64)
            .bind(CHANGES_CHANNEL)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Wakes every worker of `projection`: sync now.
    pub async fn announce(&self, projection: &str) -> Result<(), OwnershipError> {
        sqlx::query(ANNOUNCE)
            .bind(CHANGES_CHANNEL)
            .bind(projection)
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

    async fn sync_with_sessions(
        &self,
        projection: &str,
        worker: &str,
        ttl: Duration,
    ) -> Result<(OwnershipView, WorkerSessions), OwnershipError> {
        self.heartbeat(projection, worker, ttl).await?;
        self.view_with_sessions(projection, ttl).await
    }

    async fn announce(&self, projection: &str) -> Result<(), OwnershipError> {
        PgOwnershipStore::announce(self, projection).await
    }
}
