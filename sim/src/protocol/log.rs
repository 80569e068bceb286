//! Appends to the event log as the projection scenarios' writers make them,
//! and the hot/cold projection's batches over it.

use serde::{Deserialize, Serialize};

use super::Caller;

/// A request of the event log domain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum LogRequest {
    /// Start an append of `events` events to `stream` (the writer host).
    AppendBegin {
        /// Stream number.
        stream: u32,
        /// How many events.
        events: u32,
    },
    /// Open a transaction that writes other tables first (it takes its id
    /// now, unregistered); ended by `AppendEnd`, appended to by
    /// `AppendInWork`. Replies `AppendStarted`.
    WorkBegin,
    /// Append inside a `WorkBegin` transaction: `Done`, `Busy` (the head is
    /// held), or `Failed` when readers have passed it (RF007).
    AppendInWork {
        /// Its transaction id.
        xid: u64,
        /// Stream number.
        stream: u32,
        /// How many events.
        events: u32,
    },
    /// Commit or roll back an append started by `AppendBegin`.
    AppendEnd {
        /// Its transaction id.
        xid: u64,
        /// Commit (true) or roll back.
        commit: bool,
    },
    /// One projection batch, fenced by `epoch` when given.
    ProjectBatch {
        /// Caller.
        caller: Caller,
        /// Epoch written under (hot/cold mode).
        epoch: Option<u64>,
        /// Most events to apply.
        limit: u32,
        /// Read the events from the standby (`ProjectionRunner::reading_from`);
        /// left out on the wire when false, so other runs' messages stay
        /// as they were.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        replica: bool,
    },
}
