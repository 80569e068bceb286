//! Cursor tokens of the global log on PostgreSQL: reads that tag each
//! event with a token, and resuming from a token after a lossy failover.
//!
//! The rules (why a surviving token is safe, which checkpoints prove where
//! a diverged reader may rewind to) are in `rillflow_core::log_history`;
//! this module asks the database what they need.

use rillflow_core::log_history::{rewind_bound, survived, trusted_timeline, AtPosition};
use rillflow_core::{GlobalCursor, LogToken};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::error::StoreError;
use crate::event::{ReadAllBatch, RecordedEvent};
use crate::store::EventStore;

/// The timeline WAL is written on (sql/0020); 0 when it cannot be told.
const TIMELINE_SQL: &str = "SELECT rf_wal_timeline()";

/// The id of the event at a key, in either tier: an index lookup.
const AT_KEY_SQL: &str = "
(SELECT event_id FROM events WHERE tx_id = $1 AND position = $2)
UNION ALL
(SELECT event_id FROM events_archive WHERE tx_id = $1 AND position = $2)
LIMIT 1";

/// The event at a position, in either tier (positions are unique across
/// both, and an event moved between them keeps its position). Only asked
/// once a token diverged, to say what holds its position now.
const AT_POSITION_SQL: &str = "
(SELECT tx_id, event_id FROM events WHERE position = $1)
UNION ALL
(SELECT tx_id, event_id FROM events_archive WHERE position = $1)
LIMIT 1";

/// The highest transaction id among checkpoint keys written on the
/// timeline `$1` or before it, current or kept from before the row's last
/// change of timeline (sql/0020); NULL: none. Keys at the start prove
/// nothing.
const PROVEN_SQL: &str = "
SELECT max(tx) FROM (
    SELECT tx_id AS tx FROM rf_checkpoints WHERE timeline <= $1
    UNION ALL
    SELECT prev_tx_id FROM rf_checkpoints WHERE prev_timeline <= $1
) k WHERE tx > 0";

/// The greatest event at or below a key, in either tier: two index walks
/// backwards from the key, one row each.
const LAST_AT_OR_BELOW_SQL: &str = "
SELECT position, tx_id, event_id FROM (
    (SELECT position, tx_id, event_id FROM events
      WHERE (tx_id, position) <= ($1, $2) ORDER BY tx_id DESC, position DESC LIMIT 1)
    UNION ALL
    (SELECT position, tx_id, event_id FROM events_archive
      WHERE (tx_id, position) <= ($1, $2) ORDER BY tx_id DESC, position DESC LIMIT 1)
) e ORDER BY tx_id DESC, position DESC LIMIT 1";

/// Where a reader holding a token continues.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resume {
    /// The token's event is still there: continue after it.
    After(GlobalCursor),
    /// The log no longer holds the token's event there: a failover lost it.
    Diverged(Divergence),
}

/// A token whose event the log no longer holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Divergence {
    /// The reader's token.
    pub token: LogToken,
    /// What the position holds now.
    pub now: AtPosition,
    /// The last event both histories share that the reader may resume
    /// after without skipping anything; None: the start of the log.
    pub last_common: Option<LogToken>,
}

impl Divergence {
    /// Where to continue to give the reader everything it has not seen (and
    /// some of what it has).
    pub fn rewind_to(&self) -> GlobalCursor {
        self.last_common
            .map(|t| t.cursor())
            .unwrap_or(GlobalCursor::START)
    }
}

/// The server's timeline, 0 when unknown.
pub async fn timeline(conn: &mut PgConnection) -> Result<u32, sqlx::Error> {
    let t: Option<i64> = sqlx::query_scalar(TIMELINE_SQL)
        .fetch_one(&mut *conn)
        .await?;
    Ok(t.and_then(|t| u32::try_from(t).ok()).unwrap_or(0))
}

/// Decides where a reader holding `token` continues, on one connection.
pub async fn resume(conn: &mut PgConnection, token: &LogToken) -> Result<Resume, StoreError> {
    let at_key: Option<Uuid> = sqlx::query_scalar(AT_KEY_SQL)
        .bind(token.tx_id)
        .bind(token.position)
        .fetch_optional(&mut *conn)
        .await?;
    if let Some(event_id) = at_key {
        let now = AtPosition::Event {
            tx_id: token.tx_id,
            event_id,
        };
        if survived(token, now) {
            return Ok(Resume::After(token.cursor()));
        }
    }
    let at: Option<(i64, Uuid)> = sqlx::query_as(AT_POSITION_SQL)
        .bind(token.position)
        .fetch_optional(&mut *conn)
        .await?;
    let now = match at {
        Some((tx_id, event_id)) => AtPosition::Event { tx_id, event_id },
        None => AtPosition::Nothing,
    };
    let server = timeline(conn).await?;
    let proven = match trusted_timeline(token, server) {
        Some(t) => {
            sqlx::query_scalar::<_, Option<i64>>(PROVEN_SQL)
                .bind(i64::from(t))
                .fetch_one(&mut *conn)
                .await?
        }
        None => None,
    };
    let last_common = match rewind_bound(token, proven) {
        Some(bound) => sqlx::query_as::<_, (i64, i64, Uuid)>(LAST_AT_OR_BELOW_SQL)
            .bind(bound.tx_id)
            .bind(bound.position)
            .fetch_optional(&mut *conn)
            .await?
            .map(|(position, tx_id, event_id)| LogToken {
                position,
                tx_id,
                event_id,
                // Read before the fork, on the reader's timeline or an
                // older one.
                timeline: token.timeline,
            }),
        None => None,
    };
    Ok(Resume::Diverged(Divergence {
        token: *token,
        now,
        last_common,
    }))
}

/// The token of `event`, read on `timeline`.
pub fn token_of(event: &RecordedEvent, timeline: u32) -> LogToken {
    LogToken {
        position: event.position,
        tx_id: event.tx_id,
        event_id: event.event_id,
        timeline,
    }
}

/// [`EventStore::read_all`], plus the timeline to put in the batch's
/// tokens. It is read first, on the same connection: a server's timeline
/// only grows, so it is never above the one the events were read on, and a
/// token never claims a later history than its event's.
pub async fn read_all_tagged(
    store: &EventStore,
    after: GlobalCursor,
    limit: i64,
) -> Result<(ReadAllBatch, u32), StoreError> {
    let mut conn = store.pool().acquire().await?;
    let line = timeline(&mut conn).await?;
    let batch = store.read_all_on(&mut conn, after, limit).await?;
    Ok((batch, line))
}
