//! Reads a standby cancels to replay WAL they stand in the way of.
//!
//! A standby cancels a query whose snapshot still needs rows that replay
//! is removing (vacuum on the primary), or that holds a lock replay needs,
//! once `max_standby_streaming_delay` has passed. Nothing was read then, so
//! reading again from the same cursor (a projection's checkpoint, which
//! did not move) loses nothing.

use std::future::Future;
use std::time::Duration;

/// Reads tried again at once after a recovery conflict, before the error
/// goes to the caller (whose batch then starts over from its checkpoint).
pub const CONFLICT_RETRIES: u32 = 3;

/// Whether `error` is a standby cancelling the statement (or session) for
/// recovery: SQLSTATE 40001 (a read-only read-committed statement meets no
/// serialisation failure otherwise) or 40P01 (a buffer-pin deadlock with
/// the startup process).
pub fn is_recovery_conflict(error: &sqlx::Error) -> bool {
    error
        .as_database_error()
        .and_then(|e| e.code())
        .is_some_and(|code| code == "40001" || code == "40P01")
}

/// Runs `read` until it ends other than in a recovery conflict, at most
/// [`CONFLICT_RETRIES`] more times, with short pauses; `on_conflict` is
/// called for each conflict met (for a metric).
pub async fn retry_conflicts<T, E, F, Fut>(
    mut read: F,
    mut on_conflict: impl FnMut(),
) -> Result<T, E>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
    E: AsSqlx,
{
    let mut pause = Duration::from_millis(5);
    let mut retries = 0;
    loop {
        match read().await {
            Err(e) if e.as_sqlx().is_some_and(is_recovery_conflict) => {
                on_conflict();
                if retries == CONFLICT_RETRIES {
                    return Err(e);
                }
                retries += 1;
                tracing::debug!(
                    retries,
                    "read cancelled by the standby's replay; reading again"
                );
                tokio::time::sleep(pause).await;
                pause *= 4;
            }
            other => return other,
        }
    }
}

/// Errors that may carry a database error.
pub trait AsSqlx {
    /// The database error inside, if any.
    fn as_sqlx(&self) -> Option<&sqlx::Error>;
}

impl AsSqlx for sqlx::Error {
    fn as_sqlx(&self) -> Option<&sqlx::Error> {
        Some(self)
    }
}

impl AsSqlx for crate::StoreError {
    fn as_sqlx(&self) -> Option<&sqlx::Error> {
        match self {
            crate::StoreError::Database(e) => Some(e),
            _ => None,
        }
    }
}
