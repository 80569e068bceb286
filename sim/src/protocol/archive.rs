//! The archive scenario's requests: appends with expected versions and
//! keys, stream reads and reads of the whole log, the operator's archive
//! commands and the mover's batches.

use serde::{Deserialize, Serialize};

/// A request of the archive domain; durations in microseconds unless
/// named otherwise.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ArchiveRequest {
    /// An append (`rf_append`) in a transaction bound to this connection:
    /// it stays open, holding the stream's head, until `AppendEnd` on the
    /// same connection, and is rolled back if the connection ends or sits
    /// idle past the idle-in-transaction timeout, as a session's would.
    Append {
        /// Stream number.
        stream: u32,
        /// Expected version as the CLI spells it (`any`, `no-stream`,
        /// `exists` or a number).
        expected: String,
        /// Idempotency key.
        idem_key: Option<u64>,
        /// One payload per event.
        payloads: Vec<u64>,
    },
    /// Read a stream, by version.
    ReadStream {
        /// Stream number.
        stream: u32,
        /// Include archived data (every tier).
        include_archived: bool,
    },
    /// Read the whole log after a cursor, as `EventStore::read_all` does:
    /// only below the read horizon, in (xid, position) order.
    ReadAll {
        /// Read events after this (xid, position).
        after: (u64, u64),
        /// Most events.
        limit: u32,
        /// Include archived data (every tier); else hot storage without
        /// archived streams.
        include_archived: bool,
    },
    /// `archive mark`.
    Mark {
        /// Stream number.
        stream: u32,
    },
    /// `archive reactivate`.
    Reactivate {
        /// Stream number.
        stream: u32,
    },
    /// `archive redirect --enable`.
    SetRedirect {
        /// On or off.
        on: bool,
    },
    /// Start a mover's pass: its cutoff and position bound.
    MoveStart {
        /// Only events older than this.
        older_than_ms: u64,
    },
    /// One batch of a mover's pass, in one transaction.
    MoveBatch {
        /// Lowest stream to consider.
        from: Option<u32>,
        /// Only events created before this database time.
        before_us: u64,
        /// Only events at or below this position.
        upto: u64,
        /// Most events.
        limit: u32,
    },
    /// The copy half of a move batch done as two transactions (only with
    /// `--without atomic-move`).
    CopyBatch {
        /// Lowest stream to consider.
        from: Option<u32>,
        /// Only events created before this database time.
        before_us: u64,
        /// Only events at or below this position.
        upto: u64,
        /// Most events.
        limit: u32,
    },
    /// The delete half: the hot rows the copy wrote cold.
    DeleteCopied {
        /// Their cursors (transaction id, position).
        cursors: Vec<(u64, u64)>,
    },
}
