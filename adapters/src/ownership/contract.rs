//! What the ownership driver needs from a database: Postgres implements it
//! with [`super::PgOwnershipStore`], the simulation with its model database,
//! so both run the same driver.

use std::time::Duration;

use async_trait::async_trait;

use super::store::{OwnershipError, OwnershipView, WorkerSessions};

/// Registration and per-partition leases, every call judged by the
/// database's clock.
#[async_trait]
pub trait OwnershipStore: Send + Sync {
    /// Records `worker` as alive, then reads the partition count, the live
    /// workers (younger than `ttl`) and the unexpired leases.
    async fn sync(
        &self,
        projection: &str,
        worker: &str,
        ttl: Duration,
    ) -> Result<OwnershipView, OwnershipError>;

    /// Takes `partition` if nobody holds it; the new epoch, one more than
    /// any before, or None.
    async fn claim(
        &self,
        projection: &str,
        partition: u32,
        worker: &str,
        ttl: Duration,
    ) -> Result<Option<u64>, OwnershipError>;

    /// Extends the lease held under `epoch`; false when it is not held.
    async fn renew(
        &self,
        projection: &str,
        partition: u32,
        epoch: u64,
        ttl: Duration,
    ) -> Result<bool, OwnershipError>;

    /// Gives the lease held under `epoch` up, once no batch runs under it.
    async fn release(
        &self,
        projection: &str,
        partition: u32,
        epoch: u64,
    ) -> Result<(), OwnershipError>;

    /// Removes `worker`'s registration.
    async fn leave(&self, projection: &str, worker: &str) -> Result<(), OwnershipError>;

    /// [`Self::sync`], and the sessions workers' registrations are bound to
    /// (sql/0018): live ones, for the workers to watch one another, and
    /// those that ended within the ttl, so that a death nobody was watching
    /// yet is announced too. A store that binds nothing to sessions names
    /// none, which is the default: its workers watch nobody and learn of a
    /// dead peer from its ttl.
    async fn sync_with_sessions(
        &self,
        projection: &str,
        worker: &str,
        ttl: Duration,
    ) -> Result<(OwnershipView, WorkerSessions), OwnershipError> {
        let view = self.sync(projection, worker, ttl).await?;
        Ok((view, WorkerSessions::default()))
    }

    /// Wakes every worker of `projection` to sync now (a watched peer's
    /// session ended, see [`super::announce_session_ends`]). Workers watch
    /// only the sessions [`Self::sync_with_sessions`] names, which a store
    /// binding nothing to sessions never does: the default does nothing.
    async fn announce(&self, projection: &str) -> Result<(), OwnershipError> {
        let _ = projection;
        Ok(())
    }
}
