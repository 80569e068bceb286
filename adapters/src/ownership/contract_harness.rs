//! What the ownership contract ([`super::store_contract`]) needs beyond the
//! [`OwnershipStore`] itself: the parts that differ between Postgres and the
//! simulation's model database, namely registering a projection, a fenced
//! batch held open, a repartition and the change notices.

use std::time::Duration;

use async_trait::async_trait;

use super::contract::OwnershipStore;
use super::notices::ChangeNotices;

/// The answer to opening a fenced batch.
#[derive(Debug)]
pub enum Fence<B> {
    /// The fence admitted the epoch; the batch's transaction stays open,
    /// holding the lease row `FOR SHARE`, until it is committed.
    Admitted(B),
    /// The lease is not held under that epoch.
    Refused,
}

/// The answer to a repartition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resize {
    /// It ran: the count before and now, and whether it changed.
    Done {
        /// The count before.
        from: u32,
        /// The count now.
        to: u32,
        /// False when the count already was `to`.
        changed: bool,
    },
    /// Running batches did not finish within the wait; nothing changed.
    Busy,
}

/// One side of the ownership contract: Postgres or the model database.
#[async_trait]
pub trait OwnershipHarness: Send + Sync {
    /// The store under test.
    type Store: OwnershipStore + Clone + 'static;
    /// Its change notices.
    type Notices: ChangeNotices;
    /// An open fenced batch.
    type Batch: Send;

    /// A store; every call is judged by the database's clock.
    fn store(&self) -> Self::Store;

    /// The notices of this database's ownership changes.
    fn notices(&self) -> Self::Notices;

    /// Registers `projection` with `partitions` partitions, so that its
    /// batches can run and it can be repartitioned.
    async fn register(&self, projection: &str, partitions: u32);

    /// Opens a batch of partition `partition` of `total` under `epoch`,
    /// fenced as the runner's are, with work to do, so its transaction
    /// stays open.
    async fn begin_fenced(
        &self,
        projection: &str,
        partition: u32,
        total: u32,
        epoch: u64,
    ) -> Fence<Self::Batch>;

    /// Commits an open batch.
    async fn commit(&self, batch: Self::Batch);

    /// Gives `projection` `to` partitions, waiting at most `wait` for
    /// running batches, as `projections repartition` does.
    async fn repartition(&self, projection: &str, to: u32, wait: Duration) -> Resize;
}
