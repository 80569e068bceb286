//! Errors of the event store, mapped from SQLSTATEs to domain errors.

use rillflow_core::{ExpectedVersion, VersionConflict};
use uuid::Uuid;

/// What can go wrong when reading or writing events.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The stream was not at the version the writer expected; nothing was written.
    #[error("stream {stream}: {conflict}")]
    WrongExpectedVersion {
        /// The stream appended to.
        stream: Uuid,
        /// Expected and actual versions.
        conflict: VersionConflict,
    },
    /// Inside a caller's transaction, the append's transaction id is older than
    /// the stream's last writer. Retrying in a new transaction succeeds; the
    /// store does that itself for appends it owns.
    #[error("stream {stream}: transaction started before the stream's last append committed; retry in a new transaction")]
    StaleTransaction {
        /// The stream appended to.
        stream: Uuid,
    },
    /// Inside a caller's transaction that wrote other tables before its
    /// first append: readers have passed its transaction id since (it held
    /// no one back, PROJ-2), so it may no longer append. Nothing was
    /// written; retry in a new transaction, and call
    /// [`EventStore::register_appender`](crate::EventStore::register_appender)
    /// before its first write so that it is never refused.
    #[error("stream {stream}: the transaction wrote other tables before its first append and readers have passed it; retry in a new transaction that registers as an appender first")]
    PassedByReaders {
        /// The stream appended to.
        stream: Uuid,
    },
    /// The stream belongs to another tenant (or to none); nothing was written.
    #[error("stream {stream} does not belong to tenant {tenant}")]
    WrongTenant {
        /// The stream appended to.
        stream: Uuid,
        /// The tenant that tried.
        tenant: String,
    },
    /// The idempotency key already stands for another request: other
    /// events (types, data, headers, ids, links) on this stream, or any
    /// append on another stream. Nothing was written.
    #[error("{0}; nothing was written")]
    IdempotencyConflict(String),
    /// An event id the caller chose was already used for other events (on
    /// this or another stream); nothing was written.
    #[error(
        "stream {stream}: event id {id} was already used for other events; nothing was written"
    )]
    EventIdReused {
        /// The stream appended to.
        stream: Uuid,
        /// The id.
        id: Uuid,
    },
    /// The request itself is malformed (for example, no events).
    #[error("invalid append: {0}")]
    InvalidRequest(String),
    /// A position given to start reading from names no event.
    #[error("no event at position {0}")]
    UnknownPosition(i64),
    /// The database did not answer in time (statement or lock timeout).
    #[error("database timed out: {0}")]
    Timeout(String),
    /// The database could not be reached (no connection from the pool);
    /// nothing was sent, so nothing was written.
    #[error("database unavailable: {0}; nothing was written")]
    Unavailable(String),
    /// The connection failed while the append was in flight, before its
    /// commit was confirmed: it may or may not have been written. Retry
    /// with the same idempotency key (or event ids) to learn which without
    /// writing twice.
    #[error("append outcome unknown: {0}")]
    OutcomeUnknown(String),
    /// The schema is missing or older than this binary expects.
    #[error("event store schema is missing; run `rillflow migrate`")]
    SchemaMissing,
    /// Any other database failure.
    #[error("database error: {0}")]
    Database(#[source] sqlx::Error),
}

impl StoreError {
    /// Maps a database error raised by an append on `stream` (under
    /// idempotency key `key`).
    pub(crate) fn from_append(
        stream: Uuid,
        expected: ExpectedVersion,
        tenant: Option<&str>,
        key: Option<&str>,
        err: sqlx::Error,
    ) -> Self {
        if let Some(db) = err.as_database_error() {
            let detail = db
                .try_downcast_ref::<sqlx::postgres::PgDatabaseError>()
                .and_then(|pg| pg.detail());
            let code = db.code();
            let verdict = Verdict {
                code: code.as_deref().unwrap_or_default(),
                message: db.message(),
                detail,
            };
            if let Some(mapped) = verdict.judged(stream, expected, tenant) {
                return mapped;
            }
            match db.code().as_deref() {
                // Two appends reusing one key or event id at once: the
                // second waited for the first and found it taken.
                Some("23505") if db.constraint() == Some("rf_event_ids_pkey") => {
                    let id = detail
                        .and_then(|d| d.split(['(', ')']).nth(3))
                        .and_then(|d| d.parse::<Uuid>().ok())
                        .unwrap_or_default();
                    return StoreError::EventIdReused { stream, id };
                }
                Some("23505") if db.constraint() == Some("rf_idempotency_key_once") => {
                    return StoreError::IdempotencyConflict(format!(
                        "idempotency key {} was used for another stream at the same moment",
                        key.unwrap_or_default()
                    ))
                }
                _ => {}
            }
        }
        StoreError::from(err)
    }

    /// True when retrying the same call in a fresh transaction may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            StoreError::StaleTransaction { .. } | StoreError::PassedByReaders { .. }
        )
    }
}

impl From<sqlx::Error> for StoreError {
    fn from(err: sqlx::Error) -> Self {
        if let Some(db) = err.as_database_error() {
            match db.code().as_deref() {
                // query_canceled (statement_timeout) and lock_not_available (lock_timeout)
                Some("57014") | Some("55P03") => {
                    return StoreError::Timeout(db.message().to_owned())
                }
                // undefined_table / undefined_function: migrations never ran
                Some("42P01") | Some("42883") => return StoreError::SchemaMissing,
                _ => {}
            }
        }
        StoreError::Database(err)
    }
}

/// A judgement `rf_append_core` (sql/0015, sql/0016) made of one append: an RFxxx
/// SQLSTATE with its message and detail, raised by `rf_append` or returned
/// per append by `rf_append_batch`.
pub(crate) struct Verdict<'a> {
    pub code: &'a str,
    pub message: &'a str,
    pub detail: Option<&'a str>,
}

impl Verdict<'_> {
    /// The domain error of a refused append; None for codes that are not
    /// a judgement of the append.
    pub(crate) fn judged(
        &self,
        stream: Uuid,
        expected: ExpectedVersion,
        tenant: Option<&str>,
    ) -> Option<StoreError> {
        Some(match self.code {
            "RF001" => StoreError::WrongExpectedVersion {
                stream,
                conflict: VersionConflict {
                    expected,
                    actual: self.detail.and_then(|d| d.parse().ok()).unwrap_or(0),
                },
            },
            "RF002" => StoreError::InvalidRequest(self.message.to_owned()),
            "RF003" => StoreError::StaleTransaction { stream },
            "RF004" => StoreError::WrongTenant {
                stream,
                tenant: tenant.unwrap_or_default().to_owned(),
            },
            "RF005" => StoreError::IdempotencyConflict(self.message.to_owned()),
            "RF006" => StoreError::EventIdReused {
                stream,
                id: self.detail.and_then(|d| d.parse().ok()).unwrap_or_default(),
            },
            "RF007" => StoreError::PassedByReaders { stream },
            _ => return None,
        })
    }
}
