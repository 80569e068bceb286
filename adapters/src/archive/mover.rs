//! The archive mover: events of archived streams from hot to cold storage,
//! in short atomic batches (ARCH-5).

use std::time::Duration;

use chrono::{DateTime, Utc};
use rillflow_core::archive::{Backend, BatchOutcome, BatchRequest, MovePass, TokenBucket};
use rillflow_core::tenant::TenantName;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use super::{ArchiveError, ArchiveSettings};

/// Which events a run moves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MoveFilter {
    /// Only events created before this instant (database clock).
    pub before: DateTime<Utc>,
    /// Only this stream.
    pub stream: Option<Uuid>,
    /// Only streams of this conjoined tenant.
    pub tenant: Option<TenantName>,
}

/// How a run paces itself.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MoveLimits {
    /// Most events per batch (one transaction).
    pub batch_size: u32,
    /// Events per second over the run, if limited.
    pub max_events_per_sec: Option<f64>,
}

/// A stream with events waiting to move (what `--dry-run` lists).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    /// The stream.
    pub stream: Uuid,
    /// Its hot events older than the cutoff.
    pub events: i64,
    /// The oldest of them.
    pub oldest: DateTime<Utc>,
}

/// Where a run stands, reported after every batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MoveProgress {
    /// Batches run so far.
    pub batches: u64,
    /// Events moved so far.
    pub moved: u64,
    /// Events the last batch moved.
    pub last_batch: u64,
    /// Time spent waiting for the rate limit so far.
    pub throttled: Duration,
}

/// Moves events of archived streams to cold storage.
///
/// Each batch is one short transaction that
/// 1. locks the heads of the archived streams that hold the next
///    `batch_size` eligible events, in stream id order (every append locks its stream's head first, so an append and
///    the mover queue on the same row and cannot deadlock, and two movers
///    lock in the same order);
/// 2. moves up to `batch_size` of their oldest eligible events in a single
///    statement: `DELETE … RETURNING` feeding `INSERT INTO events_archive`
///    (dual-table) or an `UPDATE` of the retention class that Postgres
///    carries out as an atomic move between partitions (partitioned). A row
///    is never in both places or in neither, and a concurrent append cannot
///    be deleted unmoved because rows are chosen from the locked streams
///    by key, inside the statement that moves them;
/// 3. marks streams left with no hot event as cold, and counts the batch
///    (events, duration) in `rf_archive_stats`.
///
/// The moved rows keep their position and transaction id, so a projection
/// reading hot and cold storage sees each event exactly once whichever
/// side of a batch its snapshot falls on. A crash rolls back the open batch
/// only; running again continues with what is still hot.
#[derive(Debug, Clone)]
pub struct ArchiveMover {
    pool: PgPool,
}

const CANDIDATES: &str = "
SELECT e.stream_id, count(*) AS events, min(e.created_at) AS oldest
  FROM events e
  JOIN rf_streams s ON s.stream_id = e.stream_id AND s.archived_at IS NOT NULL
 WHERE e.retention_class = 'hot' AND e.created_at < $1
   AND e.stream_id BETWEEN $2 AND $4
   AND ($3::text IS NULL OR s.tenant_id = $3)
 GROUP BY e.stream_id
 ORDER BY e.stream_id";

/// The streams holding the next `$5` eligible events, locked in stream id
/// order. The walk goes through archived streams in id order (their
/// partial index) and takes each one's eligible events by index, lazily, so
/// it stops after the streams that cover one batch instead of locking a
/// batch-size worth of streams. The lock re-checks that each is still
/// archived.
///
/// The walk's bounds ($1, $2) are always bound (from the nil UUID to the
/// max one when unbounded), never `$1 IS NULL OR …`: after five executions
/// Postgres may keep a generic plan, which cannot turn an optional bound
/// into an index range, and every batch would walk again from the first
/// archived stream. It runs under [`BATCH_PLANNER`], which keeps it an
/// ordered walk that stops early. The streams found are then locked by
/// key (`= ANY`), within the same bounds: joined to `rf_streams` instead,
/// the planner liked a merge join that read the archived streams' index
/// from its first entry on every batch.
#[doc(hidden)]
pub const LOCK_STREAMS: &str = "
WITH covering AS (
    SELECT s.stream_id FROM rf_streams s
     CROSS JOIN LATERAL (
         SELECT 1 FROM events e
          WHERE e.stream_id = s.stream_id AND e.retention_class = 'hot'
            AND e.created_at < $3 AND e.position <= $4
          LIMIT $5) e
     WHERE s.archived_at IS NOT NULL
       AND s.stream_id BETWEEN $1 AND $2
       AND ($6::text IS NULL OR s.tenant_id = $6)
     ORDER BY s.stream_id
     LIMIT $5)
SELECT s.stream_id FROM rf_streams s
 WHERE s.stream_id = ANY (ARRAY(SELECT stream_id FROM covering))
   AND s.stream_id BETWEEN $1 AND $2 AND s.archived_at IS NOT NULL
 ORDER BY s.stream_id
 FOR UPDATE OF s";

/// Planner settings for the batch's walk ([`LOCK_STREAMS`]), set for the
/// transaction and put back by [`BATCH_PLANNER_END`] right after it. The
/// walk only stays cheap as an ordered index walk that stops after the
/// streams covering one batch. A generic plan
/// (Postgres switches a prepared statement to one after five executions)
/// estimates the id range at a handful of rows and may instead collect
/// every archived stream of the range with a bitmap scan and sort them, and
/// probe each one's events through the BRIN index on position: every batch
/// then costs as much as the whole archive still ahead of it. With
/// sequential, bitmap and sort plans disabled (and index scans enabled,
/// whatever the session said) the ordered walk is the only plan left, on
/// any statistics; JIT goes too, since the disabled plans' huge costs
/// would otherwise make Postgres compile the statement.
#[doc(hidden)]
pub const BATCH_PLANNER: &str = "
SELECT set_config('enable_seqscan', 'off', true), set_config('enable_bitmapscan', 'off', true),
       set_config('enable_sort', 'off', true), set_config('enable_indexscan', 'on', true),
       set_config('enable_indexonlyscan', 'on', true), set_config('jit', 'off', true)";

/// The session's own planner settings again for the rest of the batch.
/// Those statements find their rows by key (stream ids, then stream and
/// version); the walk's settings are there to take choices away from the
/// planner in one statement, not to second-guess it in the others.
const BATCH_PLANNER_END: &str = "
SELECT set_config(name, reset_val, true) FROM pg_settings
 WHERE name IN ('enable_seqscan', 'enable_bitmapscan', 'enable_sort', 'enable_indexscan',
                'enable_indexonlyscan', 'jit')";

/// The rows a batch moves: oldest first within each locked stream.
const PICKED: &str = "
picked AS (
    SELECT e.stream_id, e.version FROM events e
     WHERE e.stream_id = ANY($1) AND e.retention_class = 'hot'
       AND e.created_at < $2 AND e.position <= $3
     ORDER BY e.stream_id, e.version
     LIMIT $4)";

fn move_sql(backend: Backend) -> String {
    let moved = match backend {
        Backend::DualTable => {
            "moved AS (
    DELETE FROM events e USING picked p
     WHERE e.retention_class = 'hot' AND e.stream_id = p.stream_id AND e.version = p.version
    RETURNING e.*),
stored AS (
    INSERT INTO events_archive (position, tx_id, stream_id, version, event_id, event_type,
                                schema_version, data, headers, causation_id, correlation_id,
                                partition_hash, created_at, archived_by, archive_reason)
    SELECT m.position, m.tx_id, m.stream_id, m.version, m.event_id, m.event_type,
           m.schema_version, m.data, m.headers, m.causation_id, m.correlation_id,
           m.partition_hash, m.created_at, s.archived_by, s.archive_reason
      FROM moved m LEFT JOIN rf_streams s ON s.stream_id = m.stream_id
    RETURNING stream_id, version)"
        }
        Backend::Partitioned => {
            "stored AS (
    UPDATE events e SET retention_class = 'cold' FROM picked p
     WHERE e.retention_class = 'hot' AND e.stream_id = p.stream_id AND e.version = p.version
    RETURNING e.stream_id, e.version)"
        }
    };
    format!(
        "WITH {PICKED},
{moved},
{COUNT_PER_TENANT}
SELECT count(*) AS moved,
       (array_agg(stream_id ORDER BY stream_id DESC, version DESC))[1] AS last_stream
  FROM stored"
    )
}

/// The batch's events counted against their conjoined tenants, in the
/// statement that moves them.
const COUNT_PER_TENANT: &str = "per_tenant AS (
    INSERT INTO rf_archive_tenant_stats AS t (tenant_id, events_moved)
    SELECT s.tenant_id, count(*) FROM stored m JOIN rf_streams s ON s.stream_id = m.stream_id
     WHERE s.tenant_id IS NOT NULL
     GROUP BY s.tenant_id
    ON CONFLICT (tenant_id) DO UPDATE SET events_moved = t.events_moved + EXCLUDED.events_moved)";

const MARK_DRAINED_COLD: &str = "
UPDATE rf_streams s SET retention_class = 'cold'
 WHERE s.stream_id = ANY($1) AND s.retention_class = 'hot'
   AND NOT EXISTS (SELECT 1 FROM events e
                    WHERE e.stream_id = s.stream_id AND e.retention_class = 'hot')";

/// Counts the batch with its duration as the database measured it: from
/// the transaction's start to now.
const COUNT_BATCH: &str = "
UPDATE rf_archive_stats st
   SET events_moved = st.events_moved + $1,
       move_batches = st.move_batches + 1,
       move_seconds_sum = st.move_seconds_sum + d.secs,
       move_seconds_buckets[d.bucket] = st.move_seconds_buckets[d.bucket] + 1
  FROM (SELECT t.secs,
               1 + (SELECT count(*) FROM rf_archive_stats x, unnest(x.move_seconds_bounds) b
                     WHERE b < t.secs)::int AS bucket
          FROM (SELECT extract(epoch FROM clock_timestamp() - now())::float8 AS secs) t) d";

impl ArchiveMover {
    /// A mover on `pool`.
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }

    /// The streams a run with `filter` would move, with their event counts.
    /// One query: a dry run always ends.
    pub async fn candidates(&self, filter: MoveFilter) -> Result<Vec<Candidate>, ArchiveError> {
        self.check_stream(&filter).await?;
        let (low, high) = stream_range(None, filter.stream);
        let rows: Vec<(Uuid, i64, DateTime<Utc>)> = sqlx::query_as(CANDIDATES)
            .bind(filter.before)
            .bind(low)
            .bind(filter.tenant.as_ref().map(TenantName::as_str))
            .bind(high)
            .fetch_all(&self.pool)
            .await?;
        Ok(rows
            .into_iter()
            .map(|(stream, events, oldest)| Candidate {
                stream,
                events,
                oldest,
            })
            .collect())
    }

    /// A named stream must exist, be archived, and belong to the tenant
    /// the run is scoped to.
    async fn check_stream(&self, filter: &MoveFilter) -> Result<(), ArchiveError> {
        let Some(stream) = filter.stream else {
            return Ok(());
        };
        let row: Option<(bool, Option<String>)> = sqlx::query_as(
            "SELECT archived_at IS NOT NULL, tenant_id FROM rf_streams WHERE stream_id = $1",
        )
        .bind(stream)
        .fetch_optional(&self.pool)
        .await?;
        match row {
            None => Err(ArchiveError::UnknownStream(stream)),
            Some((_, owner)) if !owned_by(owner.as_deref(), filter.tenant.as_ref()) => {
                Err(ArchiveError::OtherTenant {
                    stream,
                    tenant: filter
                        .tenant
                        .as_ref()
                        .map(ToString::to_string)
                        .unwrap_or_default(),
                })
            }
            Some((false, _)) => Err(ArchiveError::NotArchived(stream)),
            Some((true, _)) => Ok(()),
        }
    }

    /// Runs one pass: moves every eligible event that existed when it
    /// started, batch by batch, calling `progress` after each batch.
    /// Returns the final progress.
    pub async fn run(
        &self,
        filter: MoveFilter,
        limits: MoveLimits,
        mut progress: impl FnMut(&MoveProgress),
    ) -> Result<MoveProgress, ArchiveError> {
        self.check_stream(&filter).await?;
        let statements = [
            (Backend::DualTable, move_sql(Backend::DualTable)),
            (Backend::Partitioned, move_sql(Backend::Partitioned)),
        ];
        // Events appended after this point are left for the next run, so
        // appenders cannot keep a pass going forever.
        let upto: i64 = sqlx::query_scalar("SELECT last_value FROM rf_events_position_seq")
            .fetch_one(&self.pool)
            .await?;
        // A batch never takes more than a second's worth of the rate, so
        // the limit paces batches instead of allowing bursts of a whole one.
        let batch_size = match limits.max_events_per_sec {
            Some(rate) => limits.batch_size.min(rate.floor().max(1.0) as u32),
            None => limits.batch_size,
        }
        .max(1);
        let started = tokio::time::Instant::now();
        let mut bucket = limits
            .max_events_per_sec
            .map(|rate| TokenBucket::new(Duration::ZERO, rate, rate));
        let mut pass = MovePass::new(batch_size);
        let mut report = MoveProgress {
            batches: 0,
            moved: 0,
            last_batch: 0,
            throttled: Duration::ZERO,
        };
        while let Some(request) = pass.next_batch() {
            let (backend, outcome) = self.batch(&statements, request, &filter, upto).await?;
            pass.handle(&outcome);
            if outcome.locked.is_empty() {
                break;
            }
            report.batches = pass.batches();
            report.moved = pass.moved();
            report.last_batch = outcome.moved;
            tracing::info!(
                streams = outcome.locked.len(),
                moved = outcome.moved,
                total = report.moved,
                %backend,
                tenant = filter.tenant.as_ref().map(TenantName::as_str),
                "archive move batch"
            );
            progress(&report);
            if let Some(bucket) = bucket.as_mut() {
                let wait = bucket.take(started.elapsed(), outcome.moved);
                if !wait.is_zero() {
                    report.throttled += wait;
                    tokio::time::sleep(wait).await;
                }
            }
        }
        Ok(report)
    }

    /// One batch, on the backend the database names now: the settings row
    /// is read with a share lock, so a backend switch waits for the batch
    /// and the next batch follows it.
    async fn batch(
        &self,
        statements: &[(Backend, String); 2],
        request: BatchRequest,
        filter: &MoveFilter,
        upto: i64,
    ) -> Result<(Backend, BatchOutcome), ArchiveError> {
        let mut tx = self.pool.begin().await?;
        let backend = ArchiveSettings::backend_for_batch(&mut tx).await?;
        let move_sql = &statements
            .iter()
            .find(|(b, _)| *b == backend)
            .expect("a statement for every backend")
            .1;
        let (low, high) = stream_range(request.from, filter.stream);
        sqlx::query(BATCH_PLANNER).execute(&mut *tx).await?;
        let locked: Vec<Uuid> = sqlx::query_scalar(LOCK_STREAMS)
            .bind(low)
            .bind(high)
            .bind(filter.before)
            .bind(upto)
            .bind(i64::from(request.max_events))
            .bind(filter.tenant.as_ref().map(TenantName::as_str))
            .fetch_all(&mut *tx)
            .await?;
        sqlx::query(BATCH_PLANNER_END).execute(&mut *tx).await?;
        if locked.is_empty() {
            tx.rollback().await?;
            return Ok((
                backend,
                BatchOutcome {
                    locked,
                    moved: 0,
                    last_moved_stream: None,
                },
            ));
        }
        let (moved, last): (i64, Option<Uuid>) = sqlx::query_as(move_sql)
            .bind(&locked)
            .bind(filter.before)
            .bind(upto)
            .bind(i64::from(request.max_events))
            .fetch_one(&mut *tx)
            .await?;
        finish_batch(&mut tx, &locked, moved).await?;
        tx.commit().await?;
        Ok((
            backend,
            BatchOutcome {
                locked,
                moved: moved.max(0) as u64,
                last_moved_stream: last,
            },
        ))
    }
}

async fn finish_batch(
    conn: &mut PgConnection,
    locked: &[Uuid],
    moved: i64,
) -> Result<(), ArchiveError> {
    sqlx::query(MARK_DRAINED_COLD)
        .bind(locked)
        .execute(&mut *conn)
        .await?;
    sqlx::query(COUNT_BATCH)
        .bind(moved)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// The stream ids a batch may walk, both ends included: from where the
/// pass resumes (or the first id) to the last id, narrowed to one stream
/// when the run names one. An empty range (`low > high`) finds nothing.
fn stream_range(from: Option<Uuid>, only: Option<Uuid>) -> (Uuid, Uuid) {
    let low = from.unwrap_or(Uuid::nil());
    match only {
        Some(stream) => (low.max(stream), stream),
        None => (low, Uuid::max()),
    }
}

/// Whether a stream tagged `owner` is in the scope of `tenant`: without a
/// tenant every stream is; with one, only that tenant's.
pub(crate) fn owned_by(owner: Option<&str>, tenant: Option<&TenantName>) -> bool {
    tenant.is_none_or(|t| owner == Some(t.as_str()))
}
