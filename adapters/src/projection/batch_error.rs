//! Why a batch could not run. Handler failures are not errors here: they are
//! retried, dead-lettered or stop the projection, and the batch commits that.

/// Failures of a projection batch; nothing of the batch was committed.
#[derive(Debug, thiserror::Error)]
pub enum BatchError {
    /// The lease moved on: this node must stop writing.
    #[error("epoch {epoch} is fenced: another node holds the lease")]
    Fenced {
        /// The epoch the batch tried to write under.
        epoch: u64,
    },
    /// The projection's partition count changed under this runner.
    #[error("{projection} now has {recorded} partitions; this worker runs {running} (restart it with --total-partitions {recorded}, or use --partitions auto)")]
    Repartitioned {
        /// The projection.
        projection: String,
        /// The count this runner was made for.
        running: u32,
        /// The count recorded now.
        recorded: u32,
    },
    /// The projection has no checkpoint row for this partition.
    #[error("projection {0} is not registered; start it with the runtime first")]
    Unregistered(String),
    /// A statement or lock timed out.
    #[error("database timed out: {0}")]
    Timeout(String),
    /// The event store refused a read (for example, its schema is missing).
    #[error("{0}")]
    Store(String),
    /// The database failed or the connection broke.
    #[error("database error: {0}")]
    Database(#[source] sqlx::Error),
}

impl From<sqlx::Error> for BatchError {
    fn from(err: sqlx::Error) -> Self {
        match err.as_database_error().and_then(|db| db.code()).as_deref() {
            Some("57014") | Some("55P03") => BatchError::Timeout(err.to_string()),
            _ => BatchError::Database(err),
        }
    }
}

impl From<crate::StoreError> for BatchError {
    fn from(err: crate::StoreError) -> Self {
        match err {
            crate::StoreError::Database(e) => e.into(),
            crate::StoreError::Timeout(msg) => BatchError::Timeout(msg),
            other => BatchError::Store(other.to_string()),
        }
    }
}
