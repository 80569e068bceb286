//! Changing a projection's partition count while its workers run.

use std::collections::BTreeMap;
use std::time::Duration;

use rillflow_core::ownership::{carry_over, Carry, PartitionState};
use rillflow_core::{GlobalCursor, PartitionSpec};
use serde::Serialize;
use sqlx::{PgConnection, PgPool, Row};

/// Why a repartition changed nothing.
#[derive(Debug, thiserror::Error)]
pub enum RepartitionError {
    /// No such projection.
    #[error("unknown projection {0:?}")]
    UnknownProjection(String),
    /// The count is out of range.
    #[error("{0}")]
    BadCount(String),
    /// Running batches did not finish within the lock timeout.
    #[error(
        "timed out waiting for running batches of {0:?} to finish; nothing changed, try again"
    )]
    Busy(String),
    /// Any other database failure.
    #[error("database error: {0}")]
    Database(#[source] sqlx::Error),
}

impl From<sqlx::Error> for RepartitionError {
    fn from(err: sqlx::Error) -> Self {
        RepartitionError::Database(err)
    }
}

/// What a repartition did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RepartitionReport {
    /// The projection.
    pub projection: String,
    /// The partition count before.
    pub from: u32,
    /// The partition count now.
    pub to: u32,
    /// False when the count was already `to`.
    pub changed: bool,
    /// Per read-model version: where the new partitions start.
    pub versions: Vec<VersionStart>,
    /// Partition leases freed (their workers re-claim under new epochs).
    pub leases_freed: u64,
    /// Dead letters re-keyed to the new partitions.
    pub dead_letters_rekeyed: u64,
}

/// Where one read-model version's new partitions start.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VersionStart {
    /// The read-model version.
    pub version: i32,
    /// The lowest old checkpoint (`tx_id/position`).
    pub start: String,
    /// Layers of old checkpoints carried beyond it.
    pub layers: usize,
}

/// Splits or merges a projection's partitions in one transaction.
///
/// It waits for running batches (it takes the projection row, then every
/// partition lease, then every checkpoint row, in the order batches take
/// them), frees the partition leases so every worker re-claims under a new
/// epoch, and replaces the checkpoints: each new partition starts at the
/// lowest old checkpoint and carries the old ones, so each stream continues
/// exactly after the last event applied for it (core's
/// `ownership::carry`). Dead letters move to their stream's new partition.
#[derive(Debug, Clone)]
pub struct Repartitioner {
    pool: PgPool,
    lock_timeout: Duration,
}

impl Repartitioner {
    /// A repartitioner on `pool` that waits at most `lock_timeout` for
    /// running batches.
    pub fn new(pool: PgPool, lock_timeout: Duration) -> Self {
        Repartitioner { pool, lock_timeout }
    }

    /// Gives `name` `to` partitions.
    pub async fn run(&self, name: &str, to: u32) -> Result<RepartitionReport, RepartitionError> {
        PartitionSpec::new(0, to.into()).map_err(|e| RepartitionError::BadCount(e.to_string()))?;
        let mut tx = self.pool.begin().await?;
        sqlx::query("SELECT set_config('lock_timeout', $1, true)")
            .bind(format!("{}ms", self.lock_timeout.as_millis().max(1)))
            .execute(&mut *tx)
            .await?;
        let report = match repartition_in(&mut tx, name, to).await {
            Ok(report) => report,
            Err(RepartitionError::Database(e)) if is_lock_timeout(&e) => {
                return Err(RepartitionError::Busy(name.to_owned()))
            }
            Err(e) => return Err(e),
        };
        if report.changed {
            tx.commit().await?;
        }
        Ok(report)
    }
}

fn is_lock_timeout(err: &sqlx::Error) -> bool {
    let code = err.as_database_error().and_then(|db| db.code());
    matches!(
        code.as_deref(),
        Some("55P03") | Some("57014") | Some("40P01")
    )
}

async fn repartition_in(
    conn: &mut PgConnection,
    name: &str,
    to: u32,
) -> Result<RepartitionReport, RepartitionError> {
    let head =
        sqlx::query("SELECT total_partitions FROM rf_projections WHERE name = $1 FOR UPDATE")
            .bind(name)
            .fetch_optional(&mut *conn)
            .await?
            .ok_or_else(|| RepartitionError::UnknownProjection(name.to_owned()))?;
    let from = head.try_get::<i32, _>("total_partitions")?.max(1) as u32;
    let mut report = RepartitionReport {
        projection: name.to_owned(),
        from,
        to,
        changed: from != to,
        versions: Vec::new(),
        leases_freed: 0,
        dead_letters_rekeyed: 0,
    };
    if !report.changed {
        return Ok(report);
    }
    report.leases_freed = sqlx::query(
        "UPDATE rf_partition_leases
            SET owner = NULL, expires_at = NULL, lease_lock_key = NULL,
                released_at = least(clock_timestamp(), expires_at)
          WHERE projection = $1 AND owner IS NOT NULL",
    )
    .bind(name)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    // Partitions beyond the new count stop counting as unowned time.
    sqlx::query(
        "UPDATE rf_partition_leases
            SET unowned_secs = unowned_secs + coalesce(greatest(0,
                    extract(epoch FROM clock_timestamp() - released_at))::float8, 0),
                released_at = NULL
          WHERE projection = $1 AND partition_key >= $2",
    )
    .bind(name)
    .bind(to as i32)
    .execute(&mut *conn)
    .await?;
    let rows = sqlx::query(
        "SELECT model_version, partition_key, tx_id, position, carry,
                processed_total, errors_total, dead_lettered_total
           FROM rf_checkpoints WHERE projection = $1
          ORDER BY model_version, partition_key FOR UPDATE",
    )
    .bind(name)
    .fetch_all(&mut *conn)
    .await?;
    let mut versions: BTreeMap<i32, Old> = BTreeMap::new();
    for row in rows {
        let key: i32 = row.try_get("partition_key")?;
        let old = versions
            .entry(row.try_get("model_version")?)
            .or_insert_with(|| Old {
                states: vec![PartitionState::default(); from as usize],
                totals: [0; 3],
            });
        for (i, column) in ["processed_total", "errors_total", "dead_lettered_total"]
            .iter()
            .enumerate()
        {
            old.totals[i] += row.try_get::<i64, _>(*column)?;
        }
        // Rows beyond the count (left by a static worker started with a
        // wrong count, which the runtime refuses) applied nothing.
        if key < 0 || key as u32 >= from {
            continue;
        }
        let carry: sqlx::types::Json<Carry> = row.try_get("carry")?;
        old.states[key as usize] = PartitionState {
            checkpoint: GlobalCursor::new(row.try_get("tx_id")?, row.try_get("position")?),
            carry: carry.0,
        };
    }
    sqlx::query("DELETE FROM rf_checkpoints WHERE projection = $1")
        .bind(name)
        .execute(&mut *conn)
        .await?;
    for (version, old) in &versions {
        let start = carry_over(&old.states);
        sqlx::query(
            "INSERT INTO rf_checkpoints
                    (projection, model_version, partition_key, tx_id, position, carry,
                     processed_total, errors_total, dead_lettered_total)
             SELECT $1, $2, k, $3, $4, $5,
                    CASE WHEN k = 0 THEN $6 ELSE 0 END,
                    CASE WHEN k = 0 THEN $7 ELSE 0 END,
                    CASE WHEN k = 0 THEN $8 ELSE 0 END
               FROM generate_series(0, $9 - 1) AS k",
        )
        .bind(name)
        .bind(version)
        .bind(start.checkpoint.tx_id)
        .bind(start.checkpoint.position)
        .bind(sqlx::types::Json(&start.carry))
        .bind(old.totals[0])
        .bind(old.totals[1])
        .bind(old.totals[2])
        .bind(to as i32)
        .execute(&mut *conn)
        .await?;
        report.versions.push(VersionStart {
            version: *version,
            start: start.checkpoint.to_string(),
            layers: start.carry.layers().len(),
        });
    }
    report.dead_letters_rekeyed = sqlx::query(
        "UPDATE rf_projection_dlq SET partition_key = rf_partition_hash(stream_id) % $2
          WHERE projection = $1",
    )
    .bind(name)
    .bind(to as i32)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    sqlx::query(
        "UPDATE rf_projections SET total_partitions = $2, updated_at = clock_timestamp()
          WHERE name = $1",
    )
    .bind(name)
    .bind(to as i32)
    .execute(&mut *conn)
    .await?;
    // Workers re-claim at once rather than at their next heartbeat.
    sqlx::query("SELECT pg_notify($1, $2)")
        .bind(super::store::CHANGES_CHANNEL)
        .bind(name)
        .execute(&mut *conn)
        .await?;
    Ok(report)
}

/// One read-model version's old checkpoints and summed counters.
struct Old {
    states: Vec<PartitionState>,
    totals: [i64; 3],
}
