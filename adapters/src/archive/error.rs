//! Errors of the archive operations.

use uuid::Uuid;

/// What can go wrong when marking, moving or configuring archived storage.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    /// No stream has this id.
    #[error("no stream {0}")]
    UnknownStream(Uuid),
    /// The stream is not the scoped conjoined tenant's.
    #[error("stream {stream} does not belong to tenant {tenant}")]
    OtherTenant {
        /// The stream.
        stream: Uuid,
        /// The tenant in scope.
        tenant: String,
    },
    /// `archive move --stream` named a stream that is not archived.
    #[error("stream {0} is not archived; `rillflow archive mark` it first")]
    NotArchived(Uuid),
    /// The redirect trigger only routes appends on the dual-table backend.
    #[error("redirect applies to the dual-table backend only; this database uses the partitioned backend")]
    RedirectOnPartitioned,
    /// Switching to the partitioned backend while redirect is on would leave
    /// appends split between `events_archive` and the cold partition.
    #[error("turn redirect off (`rillflow archive redirect --enable false`) before switching to the partitioned backend")]
    RedirectStillOn,
    /// A table with the partition's name exists but is not that partition.
    #[error("table {name} exists but is not the {parent} partition for {month}; rename or drop it first")]
    PartitionNameTaken {
        /// The table name.
        name: String,
        /// The intended parent.
        parent: &'static str,
        /// The month it should cover.
        month: String,
    },
    /// A month partition overlaps an existing one.
    #[error("cannot create {name}: {message}")]
    PartitionRejected {
        /// The table name.
        name: String,
        /// What Postgres said.
        message: String,
    },
    /// The database did not answer in time (statement or lock timeout): a
    /// busy stream held its lock longer than the mover waits.
    #[error("database timed out: {0}")]
    Timeout(String),
    /// Any other database failure.
    #[error("database error: {0}")]
    Database(#[source] sqlx::Error),
}

impl From<sqlx::Error> for ArchiveError {
    fn from(err: sqlx::Error) -> Self {
        if let Some(db) = err.as_database_error() {
            if matches!(db.code().as_deref(), Some("57014") | Some("55P03")) {
                return ArchiveError::Timeout(db.message().to_owned());
            }
        }
        ArchiveError::Database(err)
    }
}
