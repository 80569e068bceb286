//! What can go wrong with a read replica.

use std::time::Duration;

use super::WalPosition;

/// Failures setting up or waiting for a read replica.
#[derive(Debug, thiserror::Error)]
pub enum ReplicaError {
    /// The read server is not a physical copy of the primary: its events
    /// would be another log's.
    #[error("the read database is not a copy of the primary (system identifier {read} there, {primary} on the primary); --read-database-url must name a streaming standby of --database-url")]
    NotACopy {
        /// The read server's system identifier.
        read: i64,
        /// The primary's.
        primary: i64,
    },
    /// The read URL names another database than the primary's.
    #[error("the read database is {read:?}, but the primary's is {primary:?}; --read-database-url must name the same database on the standby")]
    OtherDatabase {
        /// The read connection's database.
        read: String,
        /// The primary's.
        primary: String,
    },
    /// The read server accepts writes but is not the primary: a promoted
    /// standby, whose history may have left the primary's.
    #[error("the read database is a primary of its own (a promoted standby?), not a standby of --database-url: its log may have diverged")]
    Diverged,
    /// The standby did not replay up to a position in time.
    #[error("the read standby did not replay the primary's WAL up to {target} within {within:?} (replayed up to {replayed}{paused}); is replication running?", paused = if *.paused { ", replay is paused" } else { "" })]
    ReplayTimeout {
        /// The position waited for.
        target: WalPosition,
        /// How far replay got.
        replayed: WalPosition,
        /// The bound.
        within: Duration,
        /// Whether replay was paused.
        paused: bool,
    },
    /// Talking to either server failed.
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}
