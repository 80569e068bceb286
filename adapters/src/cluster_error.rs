//! Failures managing a local cluster.

use std::path::PathBuf;

/// Failures managing a local cluster.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// No server programs were found; the message names what to install.
    #[error("{0}")]
    NoBinaries(String),
    /// `db start` has not been run in this directory.
    #[error("no local database in {0}; run `rillflow db start` first")]
    NotInitialized(PathBuf),
    /// Running as root but there is no `postgres` user to run the server as.
    #[error("running as root needs a `postgres` system user to run the server (install the postgresql package)")]
    NoPostgresUser,
    /// A file operation failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The failure.
        #[source]
        source: std::io::Error,
    },
    /// A server program failed.
    #[error("{program} failed: {detail}")]
    Command {
        /// Which program.
        program: String,
        /// Its exit status and the end of its output or log.
        detail: String,
    },
    /// The cluster's data directory belongs to another major version than
    /// the server binaries found: neither can run it as it is.
    #[error("the local database in {dir} was made by PostgreSQL {made_by}, but the server binaries are PostgreSQL {binaries} ({bin_dir}); stop it and remove {dir}, or set RILLFLOW_PG_BIN to PostgreSQL {made_by} binaries")]
    VersionMismatch {
        /// The cluster directory.
        dir: PathBuf,
        /// The major recorded in the data directory.
        made_by: String,
        /// The major of the binaries.
        binaries: String,
        /// Where the binaries are.
        bin_dir: PathBuf,
    },
    /// `cluster.json` could not be read.
    #[error("{path}: unreadable cluster file: {detail}")]
    BadClusterFile {
        /// The file.
        path: PathBuf,
        /// Why.
        detail: String,
    },
    /// A database name is not a valid identifier.
    #[error("invalid database name: {0}")]
    BadName(#[from] rillflow_core::IdentifierError),
    /// Talking to the started server failed.
    #[error("local database: {0}")]
    Database(#[from] sqlx::Error),
}

/// Wraps an I/O error with what was being done.
pub(crate) fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> ClusterError {
    let context = context.into();
    move |source| ClusterError::Io { context, source }
}
