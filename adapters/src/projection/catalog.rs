//! Registration and operator actions on projections, all through Postgres.
//!
//! Every action that changes a checkpoint locks the affected checkpoint rows
//! first, the rows each batch locks, so it serialises with running workers
//! instead of racing them: a reset or rebuild lands between two batches.

use rillflow_core::{GlobalCursor, PartitionSpec};
use serde::Serialize;
use sqlx::{PgConnection, PgPool, Row};

use super::handler::{HandlerError, Projection};
use super::ownership_status::OwnershipRows;
use super::status::{PartitionStatus, ProjectionStatus, EXACT_LAG_LIMIT};
use super::versions::{point_views, versions};
use super::wakeup::CONTROL_CHANNEL;
use crate::store::EventStore;
use crate::StoreError;

/// Failures of projection operations; nothing was changed.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    /// No projection of that name has ever run.
    #[error("no projection named {0:?}; `rillflow projections list` shows the known ones")]
    UnknownProjection(String),
    /// Workers with a different partition count ran this projection.
    #[error("projection {name:?} runs with {recorded} partition(s), not {given}; static partitions cannot change while checkpoints exist")]
    PartitionMismatch {
        /// Projection.
        name: String,
        /// The count its checkpoints were made with.
        recorded: i32,
        /// The count asked for.
        given: u32,
    },
    /// The dead-letter id does not belong to the projection.
    #[error("projection {name:?} has no dead letter with id {id}")]
    UnknownDeadLetter {
        /// Projection.
        name: String,
        /// Id asked for.
        id: i64,
    },
    /// A side-by-side rebuild is already under way.
    #[error("projection {name:?} is already rebuilding version {version}; wait for it to switch")]
    RebuildRunning {
        /// Projection.
        name: String,
        /// The version being built.
        version: u32,
    },
    /// The projection declares no reset, so it cannot be rebuilt.
    #[error("projection {0:?} declares no reset; it cannot be rebuilt")]
    NotRebuildable(String),
    /// A projection's own SQL (setup or reset) failed.
    #[error("projection {name:?}: {error}")]
    Handler {
        /// Projection.
        name: String,
        /// Its error.
        error: HandlerError,
    },
    /// The event store refused (for example, an unknown position).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The database failed.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
}

/// Advisory lock key serialising projection setups ("rfsetup" in ASCII).
const SETUP_LOCK: i64 = 0x0072_6673_6574_7570;

/// How a rebuild goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rebuild {
    /// The read model was emptied; workers refill it.
    InPlace,
    /// This version is being built beside the live one.
    Beside {
        /// The version being built.
        version: u32,
    },
}

/// A dead-lettered event.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
pub struct DeadLetter {
    /// Id for requeue and delete.
    pub id: i64,
    /// Partition whose worker failed on it.
    pub partition_key: i32,
    /// The event's position.
    pub position: i64,
    /// Its stream.
    pub stream_id: uuid::Uuid,
    /// Its version in the stream.
    pub version: i64,
    /// Its type.
    pub event_type: String,
    /// The last error.
    pub error: String,
    /// Attempts so far.
    pub attempts: i32,
    /// `dead` or `requeued`.
    pub status: String,
    /// When it was dead-lettered.
    pub failed_at: chrono::DateTime<chrono::Utc>,
}

/// Projection bookkeeping on a pool.
#[derive(Debug, Clone)]
pub struct ProjectionCatalog {
    pool: PgPool,
}

impl ProjectionCatalog {
    /// A catalog on `pool`.
    pub fn new(pool: PgPool) -> Self {
        ProjectionCatalog { pool }
    }

    /// The pool.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Records `name` with `partition`'s count and creates its checkpoint
    /// row; refuses a partition count other than the one it runs with.
    pub async fn register(&self, name: &str, partition: PartitionSpec) -> Result<(), CatalogError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO rf_projections (name, total_partitions) VALUES ($1, $2)
             ON CONFLICT (name) DO NOTHING",
        )
        .bind(name)
        .bind(partition.total() as i32)
        .execute(&mut *tx)
        .await?;
        let recorded: i32 =
            sqlx::query_scalar("SELECT total_partitions FROM rf_projections WHERE name = $1")
                .bind(name)
                .fetch_one(&mut *tx)
                .await?;
        if recorded != partition.total() as i32 {
            return Err(CatalogError::PartitionMismatch {
                name: name.to_owned(),
                recorded,
                given: partition.total(),
            });
        }
        sqlx::query(
            "INSERT INTO rf_checkpoints (projection, partition_key, model_version)
             SELECT $1, $2, v FROM rf_projections p,
                    unnest(ARRAY[p.active_version, p.building_version]) AS v
             WHERE p.name = $1 AND v IS NOT NULL
             ON CONFLICT DO NOTHING",
        )
        .bind(name)
        .bind(partition.key() as i32)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Records `name` for dynamic ownership: with `initial` partitions if it
    /// is new, else with the count already recorded (which wins, since a
    /// repartition may have changed it). Creates a checkpoint row for every
    /// partition and returns the count. The projection row is locked, so
    /// this never interleaves with a repartition.
    pub async fn register_all(&self, name: &str, initial: u32) -> Result<u32, CatalogError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO rf_projections (name, total_partitions) VALUES ($1, $2)
             ON CONFLICT (name) DO NOTHING",
        )
        .bind(name)
        .bind(initial as i32)
        .execute(&mut *tx)
        .await?;
        let recorded: i32 = sqlx::query_scalar(
            "SELECT total_partitions FROM rf_projections WHERE name = $1 FOR SHARE",
        )
        .bind(name)
        .fetch_one(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO rf_checkpoints (projection, partition_key, model_version)
             SELECT $1, k, v FROM rf_projections p,
                    unnest(ARRAY[p.active_version, p.building_version]) AS v,
                    generate_series(0, p.total_partitions - 1) AS k
             WHERE p.name = $1 AND v IS NOT NULL
             ON CONFLICT DO NOTHING",
        )
        .bind(name)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(recorded.max(1) as u32)
    }

    /// Runs a projection's setup SQL (idempotent by contract) in one
    /// transaction. Workers starting together would race on `CREATE TABLE
    /// IF NOT EXISTS` (Postgres checks the catalog before it locks it), so
    /// setups take a transaction-scoped advisory lock and run one at a time.
    pub async fn setup(&self, projection: &dyn Projection) -> Result<(), CatalogError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(SETUP_LOCK)
            .execute(&mut *tx)
            .await?;
        let handler = |error| CatalogError::Handler {
            name: projection.name().to_owned(),
            error,
        };
        let at = versions(&mut tx, projection.name()).await?;
        match projection.at_version(at.active) {
            // Versioned: the live version's tables and the views over them,
            // and a rebuild's tables if one is under way.
            Some(live) => {
                live.setup(&mut tx).await.map_err(handler)?;
                point_views(&mut tx, live.as_ref(), at.active)
                    .await
                    .map_err(handler)?;
                if let Some(building) = at.building.and_then(|v| projection.at_version(v)) {
                    building.setup(&mut tx).await.map_err(handler)?;
                }
            }
            None => projection.setup(&mut tx).await.map_err(handler)?,
        }
        tx.commit().await?;
        Ok(())
    }

    /// Every known projection, by name.
    pub async fn list(&self) -> Result<Vec<ProjectionStatus>, CatalogError> {
        self.load(None).await
    }

    /// One projection.
    pub async fn status(&self, name: &str) -> Result<ProjectionStatus, CatalogError> {
        self.load(Some(name))
            .await?
            .pop()
            .ok_or_else(|| CatalogError::UnknownProjection(name.to_owned()))
    }

    async fn load(&self, name: Option<&str>) -> Result<Vec<ProjectionStatus>, CatalogError> {
        let (heads_sql, parts_sql) = match name {
            Some(_) => (
                load_heads_sql("p.name = $1"),
                load_partitions_sql("c.projection = $1"),
            ),
            None => (
                load_heads_sql("$1::text IS NULL"),
                load_partitions_sql("$1::text IS NULL"),
            ),
        };
        let heads = sqlx::query(&heads_sql)
            .bind(name)
            .fetch_all(&self.pool)
            .await?;
        let parts = sqlx::query(&parts_sql)
            .bind(name)
            .bind(EXACT_LAG_LIMIT as i32)
            .fetch_all(&self.pool)
            .await?;
        let ownership = OwnershipRows::load(&self.pool, name).await?;
        let mut out = Vec::with_capacity(heads.len());
        for head in heads {
            let name: String = head.try_get("name")?;
            let active: i32 = head.try_get("active_version")?;
            let building_version: Option<i32> = head.try_get("building_version")?;
            let mut partitions = Vec::new();
            let mut building = Vec::new();
            for row in parts
                .iter()
                .filter(|r| r.try_get::<String, _>("projection").ok().as_deref() == Some(&name))
            {
                let version: i32 = row.try_get("model_version")?;
                let status = partition_status(row)?;
                if version == active {
                    partitions.push(status);
                } else {
                    building.push(status);
                }
            }
            let ownership = ownership.status(&name)?;
            out.push(ProjectionStatus {
                ownership,
                name,
                paused: head.try_get("paused")?,
                stopped_reason: head.try_get("stopped_reason")?,
                total_partitions: head.try_get("total_partitions")?,
                dead_letters: head.try_get("dead_letters")?,
                active_version: active,
                building_version,
                partitions,
                building,
            });
        }
        Ok(out)
    }

    /// Pauses a projection: workers finish their current batch and then
    /// leave it alone.
    pub async fn pause(&self, name: &str) -> Result<(), CatalogError> {
        self.set_paused(name, true).await
    }

    /// Resumes a paused or stopped projection; an event that was waiting to
    /// be retried is tried again at once, with a fresh retry count.
    pub async fn resume(&self, name: &str) -> Result<(), CatalogError> {
        self.set_paused(name, false).await
    }

    async fn set_paused(&self, name: &str, paused: bool) -> Result<(), CatalogError> {
        let mut tx = self.pool.begin().await?;
        let found = sqlx::query(
            "UPDATE rf_projections SET paused = $2, stopped_reason = NULL, updated_at = clock_timestamp()
             WHERE name = $1",
        )
        .bind(name)
        .bind(paused)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if found == 0 {
            return Err(CatalogError::UnknownProjection(name.to_owned()));
        }
        if !paused {
            sqlx::query(
                "UPDATE rf_checkpoints SET retry_attempts = 0, retry_not_before = NULL
                 WHERE projection = $1",
            )
            .bind(name)
            .execute(&mut *tx)
            .await?;
        }
        notify_control(&mut tx).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Moves every partition's checkpoint to just after the event at
    /// `position` (0: the start of the log), so the next batches continue
    /// from there. Returns the cursor set.
    pub async fn reset_checkpoint(
        &self,
        name: &str,
        position: i64,
    ) -> Result<GlobalCursor, CatalogError> {
        let cursor = EventStore::new(self.pool.clone())
            .cursor_at(position)
            .await?;
        let mut tx = self.pool.begin().await?;
        lock_all(&mut tx, name).await?;
        sqlx::query(
            "UPDATE rf_checkpoints
             SET tx_id = $2, position = $3, retry_position = NULL, retry_attempts = 0,
                 retry_not_before = NULL, carry = '[]', updated_at = clock_timestamp()
             WHERE projection = $1
               AND model_version = (SELECT active_version FROM rf_projections WHERE name = $1)",
        )
        .bind(name)
        .bind(cursor.tx_id)
        .bind(cursor.position)
        .execute(&mut *tx)
        .await?;
        notify_control(&mut tx).await?;
        tx.commit().await?;
        Ok(cursor)
    }

    /// Rebuilds a projection's read model from the first event.
    ///
    /// Versioned projections are rebuilt beside the live version: one
    /// transaction creates the next version's tables and checkpoints at the
    /// start and records it as building; running workers fill it while
    /// readers keep the live version, and switch the views once it caught up
    /// (see `versions.rs`). Others are rebuilt in place: one transaction runs
    /// the reset and setup SQL and moves every checkpoint to the start;
    /// dead letters and counters go too, as they describe the read model
    /// that was thrown away.
    pub async fn rebuild(&self, projection: &dyn Projection) -> Result<Rebuild, CatalogError> {
        let name = projection.name();
        let mut tx = self.pool.begin().await?;
        lock_all(&mut tx, name).await?;
        let handler = |error| CatalogError::Handler {
            name: name.to_owned(),
            error,
        };
        let at = versions(&mut tx, name).await?;
        if let Some(next) = projection.at_version(at.active + 1) {
            if let Some(building) = at.building {
                return Err(CatalogError::RebuildRunning {
                    name: name.to_owned(),
                    version: building,
                });
            }
            let version = at.active + 1;
            next.setup(&mut tx).await.map_err(handler)?;
            sqlx::query(
                "UPDATE rf_projections SET building_version = $2, updated_at = clock_timestamp()
                 WHERE name = $1",
            )
            .bind(name)
            .bind(version as i32)
            .execute(&mut *tx)
            .await?;
            sqlx::query(
                "INSERT INTO rf_checkpoints (projection, partition_key, model_version)
                 SELECT projection, partition_key, $2 FROM rf_checkpoints
                 WHERE projection = $1 AND model_version = $3",
            )
            .bind(name)
            .bind(version as i32)
            .bind(at.active as i32)
            .execute(&mut *tx)
            .await?;
            notify_control(&mut tx).await?;
            tx.commit().await?;
            return Ok(Rebuild::Beside { version });
        }
        if !projection.reset(&mut tx).await.map_err(handler)? {
            return Err(CatalogError::NotRebuildable(name.to_owned()));
        }
        projection.setup(&mut tx).await.map_err(handler)?;
        sqlx::query(
            "UPDATE rf_checkpoints
             SET tx_id = 0, position = 0, processed_total = 0, errors_total = 0,
                 dead_lettered_total = 0, last_processed_at = NULL, last_error = NULL,
                 last_error_at = NULL, retry_position = NULL, retry_attempts = 0,
                 retry_not_before = NULL, carry = '[]', updated_at = clock_timestamp()
             WHERE projection = $1",
        )
        .bind(name)
        .execute(&mut *tx)
        .await?;
        sqlx::query("DELETE FROM rf_projection_dlq WHERE projection = $1")
            .bind(name)
            .execute(&mut *tx)
            .await?;
        notify_control(&mut tx).await?;
        tx.commit().await?;
        Ok(Rebuild::InPlace)
    }

    /// Up to `limit` dead letters of `name`, oldest first.
    pub async fn dead_letters(
        &self,
        name: &str,
        limit: i64,
    ) -> Result<Vec<DeadLetter>, CatalogError> {
        self.status(name).await?;
        Ok(sqlx::query_as(
            "SELECT id, partition_key, position, stream_id, version, event_type, error, attempts,
                    status, failed_at
             FROM rf_projection_dlq WHERE projection = $1 ORDER BY tx_id, position LIMIT $2",
        )
        .bind(name)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?)
    }

    /// Marks a dead letter for one more attempt by its partition's worker.
    pub async fn requeue(&self, name: &str, id: i64) -> Result<(), CatalogError> {
        let mut tx = self.pool.begin().await?;
        let n = sqlx::query(
            "UPDATE rf_projection_dlq SET status = 'requeued', requeued_at = clock_timestamp()
             WHERE projection = $1 AND id = $2",
        )
        .bind(name)
        .bind(id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if n == 0 {
            return Err(self.missing_dead_letter(name, id).await);
        }
        notify_control(&mut tx).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Drops a dead letter for good (the event stays in the log).
    pub async fn delete_dead_letter(&self, name: &str, id: i64) -> Result<(), CatalogError> {
        let n = sqlx::query("DELETE FROM rf_projection_dlq WHERE projection = $1 AND id = $2")
            .bind(name)
            .bind(id)
            .execute(&self.pool)
            .await?
            .rows_affected();
        if n == 0 {
            return Err(self.missing_dead_letter(name, id).await);
        }
        Ok(())
    }

    async fn missing_dead_letter(&self, name: &str, id: i64) -> CatalogError {
        match self.status(name).await {
            Err(e) => e,
            Ok(_) => CatalogError::UnknownDeadLetter {
                name: name.to_owned(),
                id,
            },
        }
    }
}

/// Locks every checkpoint row of `name`; fails if it has none.
async fn lock_all(conn: &mut PgConnection, name: &str) -> Result<(), CatalogError> {
    let rows = sqlx::query(
        "SELECT partition_key FROM rf_checkpoints WHERE projection = $1 ORDER BY partition_key FOR UPDATE",
    )
    .bind(name)
    .fetch_all(&mut *conn)
    .await?;
    if rows.is_empty() {
        return Err(CatalogError::UnknownProjection(name.to_owned()));
    }
    Ok(())
}

async fn notify_control(conn: &mut PgConnection) -> Result<(), sqlx::Error> {
    sqlx::query("SELECT pg_notify($1, current_schema())")
        .bind(CONTROL_CHANNEL)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Checkpoints with their lag (sql/0019 `rf_projection_lag`: counted up to
/// the cap from the index, estimated from positions beyond), for one
/// projection (`WHERE c.projection = $1`) or all (`WHERE $1::text IS NULL`,
/// true there, so that both take the same binds): a statement each, rather
/// than `$1 IS NULL OR`, which a cached generic plan cannot turn into an
/// index lookup.
fn load_partitions_sql(scope: &str) -> String {
    format!(
        "
SELECT c.projection, c.model_version, c.partition_key, c.tx_id, c.position, c.processed_total, c.errors_total,
       c.dead_lettered_total, c.last_processed_at, c.last_error, c.last_error_at, c.owner_node,
       c.owner_epoch, c.retry_position, c.retry_attempts, l.lag, l.exact AS lag_exact
FROM rf_checkpoints c
JOIN rf_projections p ON p.name = c.projection
CROSS JOIN LATERAL rf_projection_lag(c.tx_id, c.position, p.total_partitions, c.partition_key, $2) l
WHERE {scope} AND c.model_version IN (p.active_version, p.building_version)
ORDER BY c.projection, c.model_version, c.partition_key"
    )
}

/// The projections' own rows, one (`p.name = $1`) or all (`true`).
fn load_heads_sql(scope: &str) -> String {
    format!(
        "SELECT p.name, p.paused, p.stopped_reason, p.total_partitions, p.active_version,
                p.building_version,
                (SELECT count(*) FROM rf_projection_dlq d WHERE d.projection = p.name) AS dead_letters
         FROM rf_projections p WHERE {scope} ORDER BY p.name"
    )
}

fn partition_status(row: &sqlx::postgres::PgRow) -> Result<PartitionStatus, sqlx::Error> {
    Ok(PartitionStatus {
        partition: row.try_get("partition_key")?,
        tx_id: row.try_get("tx_id")?,
        position: row.try_get("position")?,
        lag: row.try_get("lag")?,
        lag_exact: row.try_get("lag_exact")?,
        processed_total: row.try_get("processed_total")?,
        errors_total: row.try_get("errors_total")?,
        dead_lettered_total: row.try_get("dead_lettered_total")?,
        last_processed_at: row.try_get("last_processed_at")?,
        last_error: row.try_get("last_error")?,
        last_error_at: row.try_get("last_error_at")?,
        owner_node: row.try_get("owner_node")?,
        owner_epoch: row.try_get("owner_epoch")?,
        retry_position: row.try_get("retry_position")?,
        retry_attempts: row.try_get("retry_attempts")?,
    })
}
