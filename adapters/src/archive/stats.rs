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
    /// The share of each conjoined tenant, by name; empty without them.
    pub tenants: Vec<TenantArchiveStats>,
}

/// One conjoined tenant's part of the archive figures.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TenantArchiveStats {
    /// The tenant.
    pub tenant: String,
    /// Its streams marked archived.
    pub streams_marked: u64,
    /// Its streams reactivated.
    pub streams_reactivated: u64,
    /// Its events moved cold.
    pub events_moved: u64,
    /// Its archived streams with events still hot.
    pub streams_awaiting_move: i64,
}

/// Every tenant with counters or a backlog, by name in byte order.
const PER_TENANT: &str = "
WITH waiting AS (
    SELECT tenant_id, count(*) AS streams FROM rf_streams
     WHERE archived_at IS NOT NULL AND retention_class = 'hot' AND tenant_id IS NOT NULL
     GROUP BY tenant_id)
SELECT coalesce(t.tenant_id, w.tenant_id), coalesce(t.streams_marked, 0),
       coalesce(t.streams_reactivated, 0), coalesce(t.events_moved, 0), coalesce(w.streams, 0)
  FROM rf_archive_tenant_stats t
  FULL JOIN waiting w ON w.tenant_id = t.tenant_id
 ORDER BY coalesce(t.tenant_id, w.tenant_id) COLLATE \"C\"";

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
            tenants: sqlx::query_as::<_, (String, i64, i64, i64, i64)>(PER_TENANT)
                .fetch_all(pool)
                .await?
                .into_iter()
                .map(
                    |(tenant, marked, reactivated, moved, waiting)| TenantArchiveStats {
                        tenant,
                        streams_marked: count(marked),
                        streams_reactivated: count(reactivated),
                        events_moved: count(moved),
                        streams_awaiting_move: waiting,
                    },
                )
                .collect(),
        })
    }
}
