//! A standby that projections and tails read the log from.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rillflow_core::{GlobalCursor, PartitionSpec};
use sqlx::PgPool;

use super::conflicts::retry_conflicts;
use super::{ReplicaError, ReplicaLag, WalPosition};
use crate::store::{EventStore, PartitionRead};
use crate::StoreError;

/// Who a server is: the same system identifier means a physical copy of
/// the same cluster; the postmaster's start time tells two servers of that
/// cluster apart; a copy holds the same databases under the same names.
const IDENTITY: &str = "SELECT (SELECT system_identifier FROM pg_control_system()),
                               pg_is_in_recovery(), pg_postmaster_start_time()::text,
                               current_database()::text";

/// The primary's WAL insert position. Insert, not write or flush: with
/// `synchronous_commit = off` a commit is visible before its WAL is
/// written, and everything visible must be waited for.
const PRIMARY_POSITION: &str = "SELECT pg_wal_lsn_diff(
         CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn()
              ELSE pg_current_wal_insert_lsn() END, '0/0')::bigint";

/// How far the read server has replayed, whether replay is paused, and
/// how old the newest replayed commit is.
const REPLAY_STATE: &str = "SELECT pg_is_in_recovery(),
         coalesce(pg_wal_lsn_diff(
             CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn()
                  ELSE pg_current_wal_insert_lsn() END, '0/0')::bigint, 0),
         CASE WHEN pg_is_in_recovery() THEN pg_is_wal_replay_paused() ELSE false END,
         extract(epoch FROM now() - pg_last_xact_replay_timestamp())::float8";

/// How often a wait for replay looks again.
const REPLAY_POLL: Duration = Duration::from_millis(10);

/// A pool on a hot standby of the primary (or on the primary itself),
/// checked to hold the same log, and the count of reads it cancelled.
#[derive(Debug, Clone)]
pub struct ReadReplica {
    pool: PgPool,
    conflicts: Arc<AtomicU64>,
}

impl ReadReplica {
    /// Reads through `read`, once it is shown to be a standby of `primary`
    /// (or `primary`'s own server), on the same database: a server of
    /// another cluster, another database of the right one, or a server
    /// that left recovery and took writes of its own, is refused, since
    /// its log is not the one the checkpoints on `primary` count in.
    pub async fn open(read: PgPool, primary: &PgPool) -> Result<Self, ReplicaError> {
        let (read_id, in_recovery, read_started, read_db): (i64, bool, String, String) =
            sqlx::query_as(IDENTITY).fetch_one(&read).await?;
        let (primary_id, _, primary_started, primary_db): (i64, bool, String, String) =
            sqlx::query_as(IDENTITY).fetch_one(primary).await?;
        if read_id != primary_id {
            return Err(ReplicaError::NotACopy {
                read: read_id,
                primary: primary_id,
            });
        }
        if read_db != primary_db {
            return Err(ReplicaError::OtherDatabase {
                read: read_db,
                primary: primary_db,
            });
        }
        if !in_recovery && read_started != primary_started {
            return Err(ReplicaError::Diverged);
        }
        Ok(ReadReplica {
            pool: read,
            conflicts: Arc::default(),
        })
    }

    /// The pool on the read server.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Reads the read server cancelled for recovery so far.
    pub fn conflicts(&self) -> u64 {
        self.conflicts.load(Ordering::Relaxed)
    }

    /// [`EventStore::read_partition_in`] on the read server; a read the
    /// standby cancels for recovery is read again from the same cursor.
    pub async fn read_partition(
        &self,
        after: GlobalCursor,
        limit: i64,
        partition: PartitionSpec,
    ) -> Result<PartitionRead, StoreError> {
        retry_conflicts(
            || async {
                let mut conn = self.pool.acquire().await?;
                EventStore::read_partition_in(&mut conn, after, limit, partition).await
            },
            || {
                self.conflicts.fetch_add(1, Ordering::Relaxed);
            },
        )
        .await
    }

    /// The WAL position everything committed on `primary` so far ends at.
    pub async fn primary_position(primary: &PgPool) -> Result<WalPosition, sqlx::Error> {
        let at: i64 = sqlx::query_scalar(PRIMARY_POSITION)
            .fetch_one(primary)
            .await?;
        Ok(WalPosition(at.max(0) as u64))
    }

    /// The read server's lag behind `primary` now.
    pub async fn lag(&self, primary: &PgPool) -> Result<ReplicaLag, sqlx::Error> {
        // The primary first: a standby position read before it could only
        // make the lag look larger, never smaller than it was.
        let target = Self::primary_position(primary).await?;
        let state = self.replay_state().await?;
        if !state.standby {
            return Ok(ReplicaLag::NONE);
        }
        let bytes = target.0.saturating_sub(state.replayed.0);
        Ok(ReplicaLag {
            bytes,
            seconds: if bytes == 0 {
                0.0
            } else {
                state.age.unwrap_or(0.0).max(0.0)
            },
            paused: state.paused,
            standby: true,
        })
    }

    /// Waits until the read server has replayed up to `target`, at most
    /// `within`. Reads started after this returns see every transaction
    /// that had committed on the primary when `target` was taken.
    pub async fn wait_replayed(
        &self,
        target: WalPosition,
        within: Duration,
    ) -> Result<(), ReplicaError> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let state = self.replay_state().await?;
            if state.replayed >= target {
                return Ok(());
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(ReplicaError::ReplayTimeout {
                    target,
                    replayed: state.replayed,
                    within,
                    paused: state.paused,
                });
            }
            tokio::time::sleep(REPLAY_POLL).await;
        }
    }

    async fn replay_state(&self) -> Result<ReplayState, sqlx::Error> {
        let (standby, replayed, paused, age): (bool, i64, bool, Option<f64>) =
            sqlx::query_as(REPLAY_STATE).fetch_one(&self.pool).await?;
        Ok(ReplayState {
            standby,
            replayed: WalPosition(replayed.max(0) as u64),
            paused,
            age,
        })
    }
}

struct ReplayState {
    standby: bool,
    replayed: WalPosition,
    paused: bool,
    age: Option<f64>,
}
