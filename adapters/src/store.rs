//! The event store API on PostgreSQL.

use rillflow_core::archive::read_plan;
use rillflow_core::limits;
use rillflow_core::{ExpectedVersion, GlobalCursor, PartitionSpec};
use serde_json::Value;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::error::StoreError;
use crate::event::{AppendOptions, AppendResult, NewEvent, ReadAllBatch, RecordedEvent};

/// Retries of an append whose transaction id lost the race described in
/// [`StoreError::StaleTransaction`]. Each retry runs in a newer transaction,
/// which wins unless yet another writer slipped in, so a handful suffices.
const STALE_RETRIES: usize = 16;

pub(crate) const EVENT_COLUMNS: &str =
    "position, tx_id, stream_id, version, event_id, event_type, \
     schema_version, data, headers, causation_id, correlation_id, partition_hash, created_at";

/// The gap-safe global read: events after a cursor, below the read horizon
/// (`rf_read_horizon()`, sql/0016), in (tx_id, position) order, from hot and cold storage, in one
/// partition ($4 partitions, key $5; one partition means all).
static READ_ALL_SQL: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    format!(
        "WITH horizon AS (SELECT rf_read_horizon() AS upto)
         SELECT {EVENT_COLUMNS} FROM (
             (SELECT {EVENT_COLUMNS} FROM events
               WHERE (tx_id, position) > ($1, $2) AND tx_id < (SELECT upto FROM horizon)
                 AND ($4 = 1 OR partition_hash % $4 = $5)
               ORDER BY tx_id, position LIMIT $3)
             UNION ALL
             (SELECT {EVENT_COLUMNS} FROM events_archive
               WHERE (tx_id, position) > ($1, $2) AND tx_id < (SELECT upto FROM horizon)
                 AND ($4 = 1 OR partition_hash % $4 = $5)
               ORDER BY tx_id, position LIMIT $3)
         ) e ORDER BY tx_id, position LIMIT $3"
    )
});

/// [`READ_ALL_SQL`] plus, in the same statement and so the same snapshot,
/// the furthest cursor below the horizon over every partition: the read
/// has passed everything up to it; and whether committed events wait at or
/// above the horizon (held back by an open transaction). That test compares
/// the newest transaction id with the horizon: `max` is always one step
/// down the index's end, where `EXISTS (… tx_id >= horizon)` left the
/// planner free to expect an early match from a sequential scan and read
/// the whole table when nothing was held back. One row with NULL
/// event columns when nothing of the partition is there.
static READ_PARTITION_SQL: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    format!(
        "WITH horizon AS (SELECT rf_read_horizon() AS upto),
         held AS (
             SELECT coalesce((SELECT max(tx_id) FROM events), 0) >= (SELECT upto FROM horizon)
                 OR coalesce((SELECT max(tx_id) FROM events_archive), 0) >= (SELECT upto FROM horizon)
                 AS held_back),
         tail AS (
             SELECT tx_id AS tail_tx, position AS tail_position FROM (
                 (SELECT tx_id, position FROM events WHERE tx_id < (SELECT upto FROM horizon)
                   ORDER BY tx_id DESC, position DESC LIMIT 1)
                 UNION ALL
                 (SELECT tx_id, position FROM events_archive WHERE tx_id < (SELECT upto FROM horizon)
                   ORDER BY tx_id DESC, position DESC LIMIT 1)
             ) t ORDER BY tx_id DESC, position DESC LIMIT 1),
         ev AS (
             SELECT {EVENT_COLUMNS} FROM (
                 (SELECT {EVENT_COLUMNS} FROM events
                   WHERE (tx_id, position) > ($1, $2) AND tx_id < (SELECT upto FROM horizon)
                     AND ($4 = 1 OR partition_hash % $4 = $5)
                   ORDER BY tx_id, position LIMIT $3)
                 UNION ALL
                 (SELECT {EVENT_COLUMNS} FROM events_archive
                   WHERE (tx_id, position) > ($1, $2) AND tx_id < (SELECT upto FROM horizon)
                     AND ($4 = 1 OR partition_hash % $4 = $5)
                   ORDER BY tx_id, position LIMIT $3)
             ) e ORDER BY tx_id, position LIMIT $3)
         SELECT ev.*, tail.tail_tx, tail.tail_position, held.held_back
           FROM held LEFT JOIN tail ON true LEFT JOIN ev ON true
          ORDER BY ev.tx_id, ev.position"
    )
});

/// What a partition read returned.
#[derive(Debug, Clone, PartialEq)]
pub struct PartitionRead {
    /// The partition's next events, in global order.
    pub events: Vec<RecordedEvent>,
    /// The furthest event below the read's horizon, of any partition. When
    /// fewer events than asked came back, nothing of this partition lies
    /// between the last of them and this cursor: the checkpoint may move
    /// here, so the next read does not walk the same stretch again.
    pub passed: Option<GlobalCursor>,
    /// Whether committed events of any partition wait at or above the
    /// horizon, behind a transaction that is still open. Its end notifies
    /// nobody when it appended nothing, so a reader that stops here must
    /// look again soon rather than wait for the next wake-up.
    pub held_back: bool,
}

/// The global read of hot storage only: events of streams archived now are
/// left out even before the mover takes them (ARCH-3). The retention class
/// filter prunes the scan to the hot partitions.
static READ_HOT_SQL: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    format!(
        "WITH horizon AS (SELECT rf_read_horizon() AS upto)
         SELECT {EVENT_COLUMNS} FROM events e
          WHERE e.retention_class = 'hot'
            AND (tx_id, position) > ($1, $2) AND tx_id < (SELECT upto FROM horizon)
            AND NOT EXISTS (SELECT 1 FROM rf_streams s
                             WHERE s.stream_id = e.stream_id AND s.archived_at IS NOT NULL)
          ORDER BY tx_id, position LIMIT $3"
    )
});

/// One stream from hot storage; nothing while the stream is archived.
static READ_STREAM_HOT_SQL: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    format!(
        "SELECT {EVENT_COLUMNS} FROM events
          WHERE stream_id = $1 AND version >= $2 AND retention_class = 'hot'
            AND NOT EXISTS (SELECT 1 FROM rf_streams s
                             WHERE s.stream_id = $1 AND s.archived_at IS NOT NULL)
          ORDER BY version LIMIT $3"
    )
});

/// One stream from every tier, in version order.
static READ_STREAM_ALL_SQL: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    format!(
        "SELECT {EVENT_COLUMNS} FROM (
             (SELECT {EVENT_COLUMNS} FROM events
               WHERE stream_id = $1 AND version >= $2 ORDER BY version LIMIT $3)
             UNION ALL
             (SELECT {EVENT_COLUMNS} FROM events_archive
               WHERE stream_id = $1 AND version >= $2 ORDER BY version LIMIT $3)
         ) e ORDER BY version LIMIT $3"
    )
});

/// Appends and reads events.
///
/// Every append is one call of the `rf_append` function: one statement, one
/// transaction, one round trip. The stream head row it locks is the
/// authority for versions and idempotency, whichever table the events live
/// in. [`EventStore::append_batch`] runs many appends in one transaction,
/// each judged alone, and [`EventStore::writer`] merges the appends of
/// concurrent tasks into such batches.
///
/// Reads return hot data by default: archived streams are left out and cold
/// storage is not scanned. [`EventStore::with_archived`] gives a store whose
/// reads cover every tier in global order. Projections read every tier
/// whatever this setting (see [`EventStore::read_all_in`]).
#[derive(Debug, Clone)]
pub struct EventStore {
    pool: PgPool,
    include_archived: bool,
}

/// The arguments of `rf_append`, column by column. Optional columns that no
/// event sets travel as NULL instead of an array of defaults: most appends
/// carry only types and payloads, and encoding the rest would cost more than
/// the insert itself.
struct AppendArgs<'a> {
    ids: Option<Vec<Option<Uuid>>>,
    types: Vec<&'a str>,
    schema_versions: Option<Vec<i32>>,
    data: Vec<&'a Value>,
    headers: Option<Vec<&'a Value>>,
    causation: Option<Vec<Option<Uuid>>>,
    correlation: Option<Vec<Option<Uuid>>>,
}

/// Whether an append sends a column: some event has other than the default.
pub(crate) fn sends(events: &[NewEvent], is_default: impl Fn(&NewEvent) -> bool) -> bool {
    !events.iter().all(is_default)
}

/// Headers are sent only when some event has any.
pub(crate) fn empty_headers(e: &NewEvent) -> bool {
    e.headers.as_object().is_some_and(|o| o.is_empty())
}

/// The column of `f` over `events`, or None when every event has the default.
fn column<'a, T>(
    events: &'a [NewEvent],
    is_default: impl Fn(&NewEvent) -> bool,
    f: impl Fn(&'a NewEvent) -> T,
) -> Option<Vec<T>> {
    sends(events, is_default).then(|| events.iter().map(f).collect())
}

impl<'a> AppendArgs<'a> {
    fn new(events: &'a [NewEvent]) -> Self {
        AppendArgs {
            ids: column(events, |e| e.event_id.is_none(), |e| e.event_id),
            types: events.iter().map(|e| e.event_type.as_str()).collect(),
            schema_versions: column(events, |e| e.schema_version == 1, |e| e.schema_version),
            data: events.iter().map(|e| &e.data).collect(),
            headers: column(events, empty_headers, |e| &e.headers),
            causation: column(events, |e| e.causation_id.is_none(), |e| e.causation_id),
            correlation: column(events, |e| e.correlation_id.is_none(), |e| e.correlation_id),
        }
    }
}

impl EventStore {
    /// A store over `pool`, whose schema `Migrations::apply` has created.
    pub fn new(pool: PgPool) -> Self {
        EventStore {
            pool,
            include_archived: false,
        }
    }

    /// The same store, reading archived streams and cold storage too.
    pub fn with_archived(&self) -> Self {
        EventStore {
            pool: self.pool.clone(),
            include_archived: true,
        }
    }

    /// Whether reads include archived data.
    pub fn includes_archived(&self) -> bool {
        self.include_archived
    }

    /// The pool the store uses.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Appends `events` to `stream` in one transaction if `expected` holds.
    ///
    /// With an idempotency key that was used before on this stream, returns
    /// the earlier result with `replayed` set and writes nothing.
    pub async fn append(
        &self,
        stream: Uuid,
        expected: ExpectedVersion,
        events: &[NewEvent],
        options: &AppendOptions,
    ) -> Result<AppendResult, StoreError> {
        validate(events, options)?;
        let args = AppendArgs::new(events);
        let mut attempt = 0;
        loop {
            let mut conn = self.pool.acquire().await?;
            match call_append(&mut conn, stream, expected, &args, options).await {
                Err(StoreError::StaleTransaction { .. }) if attempt < STALE_RETRIES => {
                    attempt += 1;
                    tracing::debug!(%stream, attempt, "append lost the transaction-order race; retrying");
                }
                other => return other,
            }
        }
    }

    /// Appends inside a transaction the caller owns, so the events commit
    /// together with the caller's other writes.
    ///
    /// May fail with [`StoreError::StaleTransaction`] or, when the
    /// transaction wrote other tables first without
    /// [`EventStore::register_appender`], [`StoreError::PassedByReaders`];
    /// the caller then rolls back and retries the whole transaction.
    pub async fn append_in(
        conn: &mut PgConnection,
        stream: Uuid,
        expected: ExpectedVersion,
        events: &[NewEvent],
        options: &AppendOptions,
    ) -> Result<AppendResult, StoreError> {
        validate(events, options)?;
        call_append(conn, stream, expected, &AppendArgs::new(events), options).await
    }

    /// Registers the caller's transaction as one that may append (sql/0016).
    ///
    /// Readers are held back only by transactions that may still commit
    /// events; a transaction is known to when it registers, which every
    /// append does before it takes a transaction id. One that writes other
    /// tables first has its id already and readers may pass it meanwhile;
    /// its appends are then refused ([`StoreError::PassedByReaders`]).
    /// Calling this before the transaction's first write rules that out.
    /// Returns false when it is already too late for this transaction.
    pub async fn register_appender(conn: &mut PgConnection) -> Result<bool, StoreError> {
        Ok(sqlx::query_scalar("SELECT rf_register_appender()")
            .fetch_one(&mut *conn)
            .await?)
    }

    /// The stream's current version (0 when it does not exist).
    pub async fn stream_version(&self, stream: Uuid) -> Result<u64, StoreError> {
        let v: Option<i64> =
            sqlx::query_scalar("SELECT version FROM rf_streams WHERE stream_id = $1")
                .bind(stream)
                .fetch_optional(&self.pool)
                .await?;
        Ok(v.map(|v| v as u64).unwrap_or(0))
    }

    /// Up to `limit` events of `stream` with version ≥ `from_version`, in
    /// order. Hot-only reads return nothing for an archived stream, and for
    /// a reactivated one only the events still hot.
    pub async fn read_stream(
        &self,
        stream: Uuid,
        from_version: u64,
        limit: i64,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        let sql: &str = if read_plan(self.include_archived).cold {
            &READ_STREAM_ALL_SQL
        } else {
            &READ_STREAM_HOT_SQL
        };
        let from = i64::try_from(from_version).unwrap_or(i64::MAX);
        Ok(sqlx::query_as(sql)
            .bind(stream)
            .bind(from)
            .bind(limit)
            .fetch_all(&self.pool)
            .await?)
    }

    /// Up to `limit` events after `after` in global order: hot storage
    /// without archived streams by default, every tier with
    /// [`EventStore::with_archived`].
    ///
    /// Gap safety (PROJ-2): only transactions below this statement's read
    /// horizon (`rf_read_horizon()`, sql/0016) are read. Every transaction
    /// below it that this snapshot does not see has rolled back, or has not
    /// registered as an appender and can no longer append (its appends are
    /// refused), so a reader that continues from `next` can never pass an
    /// event that commits later. An open transaction that appends (or
    /// registered to) holds the horizon back; one that never appends, here
    /// or in another database, does not.
    ///
    /// An event moved between tiers keeps its cursor and moves atomically, so
    /// it is read exactly once whichever table it is in.
    pub async fn read_all(
        &self,
        after: GlobalCursor,
        limit: i64,
    ) -> Result<ReadAllBatch, StoreError> {
        let mut conn = self.pool.acquire().await?;
        self.read_all_on(&mut conn, after, limit).await
    }

    /// [`Self::read_all`] on the caller's connection (a reader that asks
    /// the same server something else first, see `log_history`).
    pub(crate) async fn read_all_on(
        &self,
        conn: &mut PgConnection,
        after: GlobalCursor,
        limit: i64,
    ) -> Result<ReadAllBatch, StoreError> {
        let events = if read_plan(self.include_archived).cold {
            Self::read_all_in(conn, after, limit, PartitionSpec::WHOLE).await?
        } else {
            sqlx::query_as(&READ_HOT_SQL)
                .bind(after.tx_id)
                .bind(after.position)
                .bind(limit)
                .fetch_all(&mut *conn)
                .await?
        };
        let next = events.last().map(RecordedEvent::cursor).unwrap_or(after);
        Ok(ReadAllBatch { events, next })
    }

    /// The global read of every tier on the caller's connection (typically
    /// inside a projection batch's transaction), limited to the streams of
    /// `partition`. Projections read this way so that they never silently
    /// miss an event because its stream was archived or moved (ARCH-3). The partition hash stored on every event lets Postgres
    /// filter rows before they are sent.
    ///
    /// Inside a transaction, each statement still takes a fresh snapshot
    /// (read committed), and the horizon is that statement's, so the reader
    /// never passes a transaction that is still open (PROJ-2).
    pub async fn read_all_in(
        conn: &mut PgConnection,
        after: GlobalCursor,
        limit: i64,
        partition: PartitionSpec,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        Ok(sqlx::query_as(&READ_ALL_SQL)
            .bind(after.tx_id)
            .bind(after.position)
            .bind(limit)
            .bind(partition.total() as i32)
            .bind(partition.key() as i32)
            .fetch_all(&mut *conn)
            .await?)
    }

    /// [`Self::read_all_in`], plus how far the read looked (see
    /// [`PartitionRead::passed`]), from the same snapshot.
    pub async fn read_partition_in(
        conn: &mut PgConnection,
        after: GlobalCursor,
        limit: i64,
        partition: PartitionSpec,
    ) -> Result<PartitionRead, StoreError> {
        use sqlx::{FromRow, Row};
        let rows = sqlx::query(&READ_PARTITION_SQL)
            .bind(after.tx_id)
            .bind(after.position)
            .bind(limit)
            .bind(partition.total() as i32)
            .bind(partition.key() as i32)
            .fetch_all(&mut *conn)
            .await?;
        let mut read = PartitionRead {
            events: Vec::with_capacity(rows.len()),
            passed: None,
            held_back: false,
        };
        for row in &rows {
            read.held_back |= row.try_get::<bool, _>("held_back")?;
            let tail: (Option<i64>, Option<i64>) =
                (row.try_get("tail_tx")?, row.try_get("tail_position")?);
            if let (Some(tx), Some(position)) = tail {
                read.passed = Some(GlobalCursor::new(tx, position));
            }
            if row.try_get::<Option<i64>, _>("position")?.is_some() {
                read.events.push(RecordedEvent::from_row(row)?);
            }
        }
        Ok(read)
    }

    /// The cursor of the event at `position`, to continue reading after it.
    /// Position 0 is the start of the log.
    pub async fn cursor_at(&self, position: i64) -> Result<GlobalCursor, StoreError> {
        if position == 0 {
            return Ok(GlobalCursor::START);
        }
        let tx: Option<i64> = sqlx::query_scalar(
            "SELECT tx_id FROM events WHERE position = $1
             UNION ALL SELECT tx_id FROM events_archive WHERE position = $1 LIMIT 1",
        )
        .bind(position)
        .fetch_optional(&self.pool)
        .await?;
        tx.map(|tx| GlobalCursor::new(tx, position))
            .ok_or(StoreError::UnknownPosition(position))
    }
}

/// Refuses what no append may carry before anything is sent: no events,
/// and types or keys that are empty, too long or hold control characters
/// (`rillflow_core::limits`; messages never repeat the value).
pub(crate) fn validate(events: &[NewEvent], options: &AppendOptions) -> Result<(), StoreError> {
    if events.is_empty() {
        return Err(StoreError::InvalidRequest(
            "an append needs at least one event".into(),
        ));
    }
    let invalid = |e: limits::NameError| StoreError::InvalidRequest(e.to_string());
    for e in events {
        limits::event_type(&e.event_type).map_err(invalid)?;
    }
    if let Some(key) = &options.idempotency_key {
        limits::idempotency_key(key).map_err(invalid)?;
    }
    Ok(())
}

/// The expected version as `rf_append` takes it; refused when it does not
/// fit a bigint.
pub(crate) fn sql_expected_version(expected: ExpectedVersion) -> Result<Option<i64>, StoreError> {
    match expected.sql_version() {
        Some(v) => i64::try_from(v).map(Some).map_err(|_| {
            StoreError::InvalidRequest(format!("expected version {v} is out of range"))
        }),
        None => Ok(None),
    }
}

const APPEND_SQL: &str = "SELECT first_version, last_version, positions, replayed \
    FROM rf_append($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)";
const APPEND_TENANT_SQL: &str = "SELECT first_version, last_version, positions, replayed \
    FROM rf_append($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)";

async fn call_append(
    conn: &mut PgConnection,
    stream: Uuid,
    expected: ExpectedVersion,
    args: &AppendArgs<'_>,
    options: &AppendOptions,
) -> Result<AppendResult, StoreError> {
    let expected_version = sql_expected_version(expected)?;
    // Untenanted appends call the eleven-argument function, which has no
    // tenant check to pay for.
    let tenant = options.tenant.as_ref().map(|t| t.as_str());
    let sql = match tenant {
        None => APPEND_SQL,
        Some(_) => APPEND_TENANT_SQL,
    };
    let mut query = sqlx::query_as::<_, (i64, i64, Vec<i64>, bool)>(sql)
        .bind(stream)
        .bind(expected.sql_kind())
        .bind(expected_version)
        .bind(options.idempotency_key.as_deref())
        .bind(&args.ids)
        .bind(&args.types)
        .bind(&args.schema_versions)
        .bind(&args.data)
        .bind(&args.headers)
        .bind(&args.causation)
        .bind(&args.correlation);
    if let Some(tenant) = tenant {
        query = query.bind(tenant);
    }
    let row = query.fetch_one(&mut *conn).await.map_err(|e| {
        StoreError::from_append(
            stream,
            expected,
            tenant,
            options.idempotency_key.as_deref(),
            e,
        )
    })?;
    Ok(AppendResult {
        stream_id: stream,
        first_version: row.0 as u64,
        last_version: row.1 as u64,
        positions: row.2,
        replayed: row.3,
    })
}
