//! The statements a projection batch runs inside its transaction.
//!
//! Every value is bound; projection names reach SQL only as values.

use std::time::Duration;

use rillflow_core::ownership::Carry;
use rillflow_core::GlobalCursor;
use sqlx::{PgConnection, Row};

use crate::event::RecordedEvent;

/// A partition's checkpoint row, locked for the rest of the batch.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct LockedCheckpoint {
    pub cursor: GlobalCursor,
    pub paused: bool,
    /// The event that failed before and how often.
    pub retry_position: Option<i64>,
    pub retry_attempts: u32,
    /// Time left until the next attempt of that event (database clock).
    pub retry_wait: Option<Duration>,
    /// The projection's partition count now.
    pub total_partitions: u32,
    /// What earlier partitionings applied beyond the cursor.
    pub carry: Carry,
}

/// Who commits a batch: node name and lease epoch (hot/cold mode).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct BatchOwner {
    /// The node's name.
    pub node: Option<String>,
    /// The lease epoch the batch is fenced by.
    pub epoch: Option<u64>,
}

/// Which checkpoint row: a projection's read-model version and partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Slot<'a> {
    pub projection: &'a str,
    pub version: i32,
    pub key: i32,
}

/// What a batch adds to its checkpoint row when it commits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Progress {
    pub processed: i64,
    pub errors: i64,
    pub dead_lettered: i64,
}

const LOCK: &str = "
SELECT c.tx_id, c.position, p.paused, c.retry_position, c.retry_attempts,
       extract(epoch FROM (c.retry_not_before - clock_timestamp()))::float8 AS retry_wait,
       p.total_partitions, c.carry
FROM rf_checkpoints c JOIN rf_projections p ON p.name = c.projection
WHERE c.projection = $1 AND c.partition_key = $2 AND c.model_version = $3
FOR UPDATE OF c";

/// Locks the checkpoint row of `slot`; None when it does not exist.
pub(crate) async fn lock_checkpoint(
    conn: &mut PgConnection,
    slot: &Slot<'_>,
) -> Result<Option<LockedCheckpoint>, sqlx::Error> {
    let Some(row) = sqlx::query(LOCK)
        .bind(slot.projection)
        .bind(slot.key)
        .bind(slot.version)
        .fetch_optional(&mut *conn)
        .await?
    else {
        return Ok(None);
    };
    let wait: Option<f64> = row.try_get("retry_wait")?;
    let carry: sqlx::types::Json<Carry> = row.try_get("carry")?;
    Ok(Some(LockedCheckpoint {
        cursor: GlobalCursor::new(row.try_get("tx_id")?, row.try_get("position")?),
        paused: row.try_get("paused")?,
        retry_position: row.try_get("retry_position")?,
        retry_attempts: row.try_get::<i32, _>("retry_attempts")?.max(0) as u32,
        retry_wait: wait
            .filter(|w| *w > 0.0 && w.is_finite())
            .map(Duration::from_secs_f64),
        total_partitions: row.try_get::<i32, _>("total_partitions")?.max(1) as u32,
        carry: carry.0,
    }))
}

const ADVANCE: &str = "
UPDATE rf_checkpoints
SET tx_id = $3, position = $4,
    processed_total = processed_total + $5,
    errors_total = errors_total + $6,
    dead_lettered_total = dead_lettered_total + $7,
    last_processed_at = CASE WHEN $5 > 0 THEN clock_timestamp() ELSE last_processed_at END,
    owner_node = coalesce($8, owner_node), owner_epoch = coalesce($9, owner_epoch),
    retry_position = NULL, retry_attempts = 0, retry_not_before = NULL,
    carry = coalesce($11, carry),
    updated_at = clock_timestamp()
WHERE projection = $1 AND partition_key = $2 AND model_version = $10";

/// Moves the checkpoint to `cursor`, adds `progress` and clears retry state;
/// `carry` replaces the carried layers when given (pruned as the checkpoint
/// moved past them).
pub(crate) async fn advance(
    conn: &mut PgConnection,
    slot: &Slot<'_>,
    cursor: GlobalCursor,
    progress: Progress,
    owner: &BatchOwner,
    carry: Option<&Carry>,
) -> Result<(), sqlx::Error> {
    sqlx::query(ADVANCE)
        .bind(slot.projection)
        .bind(slot.key)
        .bind(cursor.tx_id)
        .bind(cursor.position)
        .bind(progress.processed)
        .bind(progress.errors)
        .bind(progress.dead_lettered)
        .bind(owner.node.as_deref())
        .bind(owner.epoch.map(|e| e as i64))
        .bind(slot.version)
        .bind(carry.map(sqlx::types::Json))
        .execute(&mut *conn)
        .await?;
    Ok(())
}

const SCHEDULE_RETRY: &str = "
UPDATE rf_checkpoints
SET retry_position = $3, retry_attempts = $4,
    retry_not_before = clock_timestamp() + make_interval(secs => $5)
WHERE projection = $1 AND partition_key = $2 AND model_version = $6";

/// Records that the event at `position` failed `failures` times and may be
/// tried again after `delay`. Runs after [`advance`] moved the checkpoint to
/// just before it.
pub(crate) async fn schedule_retry(
    conn: &mut PgConnection,
    slot: &Slot<'_>,
    position: i64,
    failures: u32,
    delay: Duration,
) -> Result<(), sqlx::Error> {
    sqlx::query(SCHEDULE_RETRY)
        .bind(slot.projection)
        .bind(slot.key)
        .bind(position)
        .bind(failures as i32)
        .bind(delay.as_secs_f64())
        .bind(slot.version)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

const RECORD_ERROR: &str = "
UPDATE rf_checkpoints SET last_error = $3, last_error_at = clock_timestamp()
WHERE projection = $1 AND partition_key = $2 AND model_version = $4";

/// Keeps the latest handler error on the partition's row.
pub(crate) async fn record_error(
    conn: &mut PgConnection,
    slot: &Slot<'_>,
    error: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(RECORD_ERROR)
        .bind(slot.projection)
        .bind(slot.key)
        .bind(error)
        .bind(slot.version)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

const STOP: &str = "
UPDATE rf_projections SET paused = true, stopped_reason = $2, updated_at = clock_timestamp()
WHERE name = $1";

/// Pauses the projection because an event kept failing (the `stop` policy).
pub(crate) async fn stop_projection(
    conn: &mut PgConnection,
    projection: &str,
    reason: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(STOP)
        .bind(projection)
        .bind(reason)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

const DEAD_LETTER: &str = "
INSERT INTO rf_projection_dlq (projection, partition_key, tx_id, position, stream_id, version,
                               event_id, event_type, error, attempts, model_version)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
ON CONFLICT (projection, model_version, position) DO UPDATE
SET error = EXCLUDED.error, attempts = rf_projection_dlq.attempts + EXCLUDED.attempts,
    status = 'dead', failed_at = clock_timestamp(), requeued_at = NULL";

/// Records `event` as dead-lettered with its last error.
pub(crate) async fn dead_letter(
    conn: &mut PgConnection,
    slot: &Slot<'_>,
    event: &RecordedEvent,
    error: &str,
    attempts: u32,
) -> Result<(), sqlx::Error> {
    sqlx::query(DEAD_LETTER)
        .bind(slot.projection)
        .bind(slot.key)
        .bind(event.tx_id)
        .bind(event.position)
        .bind(event.stream_id)
        .bind(event.version)
        .bind(event.event_id)
        .bind(&event.event_type)
        .bind(error)
        .bind(attempts as i32)
        .bind(slot.version)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Requeued dead letters of a partition with their events, oldest first.
pub(crate) async fn requeued(
    conn: &mut PgConnection,
    slot: &Slot<'_>,
) -> Result<Vec<(i64, RecordedEvent)>, sqlx::Error> {
    let sql = format!(
        "SELECT d.id AS dlq_id, e.* FROM rf_projection_dlq d
         CROSS JOIN LATERAL (
             (SELECT {cols} FROM events WHERE position = d.position AND tx_id = d.tx_id)
             UNION ALL
             (SELECT {cols} FROM events_archive WHERE position = d.position AND tx_id = d.tx_id)
             LIMIT 1
         ) e
         WHERE d.projection = $1 AND d.partition_key = $2 AND d.model_version = $3
           AND d.status = 'requeued'
         ORDER BY d.tx_id, d.position
         FOR UPDATE OF d",
        cols = crate::store::EVENT_COLUMNS
    );
    let rows = sqlx::query(&sql)
        .bind(slot.projection)
        .bind(slot.key)
        .bind(slot.version)
        .fetch_all(&mut *conn)
        .await?;
    rows.iter()
        .map(|row| {
            let id: i64 = row.try_get("dlq_id")?;
            let event = <RecordedEvent as sqlx::FromRow<_>>::from_row(row)?;
            Ok((id, event))
        })
        .collect()
}

/// Removes a dead letter whose event has now been applied.
pub(crate) async fn forget_dead_letter(
    conn: &mut PgConnection,
    id: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM rf_projection_dlq WHERE id = $1")
        .bind(id)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Puts a requeued dead letter back to `dead` after it failed again.
pub(crate) async fn refail_dead_letter(
    conn: &mut PgConnection,
    id: i64,
    error: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE rf_projection_dlq
         SET status = 'dead', error = $2, attempts = attempts + 1,
             failed_at = clock_timestamp(), requeued_at = NULL
         WHERE id = $1",
    )
    .bind(id)
    .bind(error)
    .execute(&mut *conn)
    .await?;
    Ok(())
}
