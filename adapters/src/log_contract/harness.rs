//! What the event log contract needs of each side: appends, an append held
//! open, stream reads and reads of the whole log that tell the tiers apart,
//! and the archive operations, on Postgres or on the simulation's model database. Streams
//! are small numbers and events carry one number each, which is all the
//! model's events hold.

use async_trait::async_trait;
use rillflow_core::ExpectedVersion;

/// What an append did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Appended {
    /// Wrote versions `first..=last`.
    Wrote {
        /// First version.
        first: u64,
        /// Last version.
        last: u64,
    },
    /// The key's first append again: its result, nothing written.
    Replayed {
        /// First version.
        first: u64,
        /// Last version.
        last: u64,
    },
    /// The expected version did not hold; nothing written.
    Conflict {
        /// The stream's version.
        actual: u64,
    },
    /// The key stands for another request; nothing written.
    KeyReused,
}

/// One event of a stream read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamEvent {
    /// Its version.
    pub version: u64,
    /// The number it carries.
    pub payload: u64,
    /// Held in cold (archive) storage, not the hot table.
    pub cold: bool,
}

/// One event of a read of the whole log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FeedEvent {
    /// Its place in global order, (transaction id, position): compared
    /// only with other cursors of the same side.
    pub cursor: (u64, u64),
    /// Its stream.
    pub stream: u32,
    /// Its version.
    pub version: u64,
    /// The number it carries.
    pub payload: u64,
    /// Read from cold (archive) storage, not the hot table.
    pub cold: bool,
}

/// One side of the event log contract.
#[async_trait]
pub trait LogHarness: Clone + Send + Sync + 'static {
    /// An append whose transaction is still open.
    type Open: Send;

    /// Appends one event per payload to `stream` in a transaction of its
    /// own, under `key` if given.
    async fn append(
        &self,
        stream: u32,
        expected: ExpectedVersion,
        key: Option<u64>,
        payloads: &[u64],
    ) -> Appended;

    /// Starts such an append and leaves its transaction open, holding the
    /// stream's head; the versions it writes.
    async fn begin_append(&self, stream: u32, payloads: &[u64]) -> (Self::Open, u64, u64);

    /// Commits or rolls back an open append.
    async fn end_append(&self, open: Self::Open, commit: bool);

    /// `stream`'s events by version: hot storage only (nothing of an
    /// archived stream), or every tier.
    async fn read_stream(&self, stream: u32, include_archived: bool) -> Vec<StreamEvent>;

    /// Up to `limit` events after `after` ((0, 0): from the start) in
    /// global order, only below the read horizon (`EventStore::read_all`):
    /// hot storage without archived streams, or every tier.
    async fn read_all(
        &self,
        after: (u64, u64),
        limit: u32,
        include_archived: bool,
    ) -> Vec<FeedEvent>;

    /// `archive mark`: whether anything changed.
    async fn mark(&self, stream: u32) -> bool;

    /// `archive reactivate`: whether anything changed.
    async fn reactivate(&self, stream: u32) -> bool;

    /// `archive redirect`, on or off.
    async fn set_redirect(&self, on: bool);

    /// Moves every archived stream's events to cold storage, as the mover
    /// does in batches; the events moved.
    async fn move_all(&self) -> u64;
}
