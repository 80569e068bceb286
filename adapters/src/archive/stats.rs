//! The archive counters, as `rf_archive_stats` holds them.

use sqlx::PgPool;

use super::status::tree_bytes;
use super::ArchiveError;

/// Figures behind the `archive_*` metrics. The counters are kept by the
/// database in the transactions that did the work, so every node's
/// `/metrics` shows the same totals, whichever process marked or moved.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ArchiveStats {
    /// Streams marked archived.
    pub streams_marked: u64,
    /// Streams reactivated.
    pub streams_reactivated: u64,
    /// Events moved cold by the mover.
    pub events_moved: u64,
    /// Mover batches.
    pub move_batches: u64,
    /// Sum of batch durations, seconds.
    pub move_seconds_sum: f64,
    /// Histogram upper bounds, seconds (without +Inf).
    pub move_seconds_bounds: Vec<f64>,
    /// Batches per bucket (not cumulative), one more than the bounds.
    pub move_seconds_buckets: Vec<u64>,
    /// Bytes of hot storage now.
    pub events_hot_bytes: i64,
    /// Archived streams whose events are not all cold yet: the mover's
    /// backlog. Zero once every archived stream is drained.
    pub streams_awaiting_move: i64,
}

impl ArchiveStats {
    /// Reads the counters and the hot storage size.
    pub async fn load(pool: &PgPool) -> Result<Self, ArchiveError> {
        let (marked, reactivated, moved, batches, sum, bounds, buckets): (
            i64,
            i64,
            i64,
            i64,
            f64,
            Vec<f64>,
            Vec<i64>,
        ) = sqlx::query_as(
            "SELECT streams_marked, streams_reactivated, events_moved, move_batches,
                    move_seconds_sum, move_seconds_bounds, move_seconds_buckets
               FROM rf_archive_stats",
        )
        .fetch_one(pool)
        .await?;
        let count = |n: i64| u64::try_from(n).unwrap_or(0);
        Ok(Self {
            streams_marked: count(marked),
            streams_reactivated: count(reactivated),
            events_moved: count(moved),
            move_batches: count(batches),
            move_seconds_sum: sum,
            move_seconds_bounds: bounds,
            move_seconds_buckets: buckets.into_iter().map(count).collect(),
            events_hot_bytes: tree_bytes(pool, "events_hot").await?,
            // The mover marks a drained stream cold; the partial index on
            // archived streams keeps this to the archived ones.
            streams_awaiting_move: sqlx::query_scalar(
                "SELECT count(*) FROM rf_streams
                  WHERE archived_at IS NOT NULL AND retention_class = 'hot'",
            )
            .fetch_one(pool)
            .await?,
        })
    }
}
