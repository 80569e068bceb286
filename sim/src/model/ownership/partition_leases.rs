//! Worker registrations and per-partition leases, as `rf_projection_workers`
//! and `rf_partition_leases` hold them. Each method is one statement of
//! `adapters/src/ownership/store.rs`, judged by the database clock; which
//! of them wait for an open fenced batch is decided by the caller
//! (`requests.rs`), which knows the row locks.

use std::collections::BTreeMap;
use std::time::Duration;

use rillflow_core::ownership::Holder;

/// One `rf_partition_leases` row. Rows are never deleted: a repartition
/// frees them and the epoch keeps growing across partition counts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseRow {
    /// The holder, None once released or freed by a repartition.
    pub owner: Option<String>,
    /// Raised by every grant.
    pub epoch: u64,
    /// Database time the lease runs out (None while unowned).
    pub expires_at: Option<Duration>,
}

impl LeaseRow {
    /// Held by someone at `now` (`owner IS NOT NULL AND expires_at > now`).
    pub fn valid(&self, now: Duration) -> bool {
        self.owner.is_some() && self.expires_at.is_some_and(|e| e > now)
    }
}

/// Registrations and leases of every projection.
#[derive(Debug, Clone, Default)]
pub struct PartitionLeases {
    /// (projection, worker) → last heartbeat, and the ttl it was sent
    /// with (`heartbeat_at`, `ttl_ms`).
    workers: BTreeMap<(String, String), (Duration, Duration)>,
    /// (projection, partition) → lease.
    rows: BTreeMap<(String, u32), LeaseRow>,
}

fn key(projection: &str, partition: u32) -> (String, u32) {
    (projection.to_owned(), partition)
}

impl PartitionLeases {
    /// `heartbeat`: an upsert of the worker's row, live for `ttl`; true
    /// when the worker was not live before by its own last ttl (it joined,
    /// came back after leaving, or had gone stale), which is when Postgres
    /// wakes the others: their quotas just fell.
    pub fn heartbeat(
        &mut self,
        now: Duration,
        projection: &str,
        worker: &str,
        ttl: Duration,
    ) -> bool {
        let before = self
            .workers
            .insert((projection.to_owned(), worker.to_owned()), (now, ttl));
        before.is_none_or(|(at, ttl)| at + ttl <= now)
    }

    /// `leave`: the worker's row is deleted; true when there was one.
    pub fn leave(&mut self, projection: &str, worker: &str) -> bool {
        self.workers
            .remove(&(projection.to_owned(), worker.to_owned()))
            .is_some()
    }

    /// Workers whose heartbeat is younger than `ttl`, by name.
    pub fn live_workers(&self, now: Duration, projection: &str, ttl: Duration) -> Vec<String> {
        self.workers
            .iter()
            .filter(|((p, _), (at, _))| p == projection && *at + ttl > now)
            .map(|((_, w), _)| w.clone())
            .collect()
    }

    /// Unexpired leases by partition.
    pub fn holders(&self, now: Duration, projection: &str) -> BTreeMap<u32, Holder> {
        self.rows
            .iter()
            .filter(|((p, _), row)| p == projection && row.valid(now))
            .map(|((_, partition), row)| {
                let worker = row.owner.clone().expect("a valid lease has an owner");
                (
                    *partition,
                    Holder {
                        worker,
                        epoch: row.epoch,
                    },
                )
            })
            .collect()
    }

    /// The lease row of a partition, if one was ever claimed.
    pub fn row(&self, projection: &str, partition: u32) -> Option<&LeaseRow> {
        self.rows.get(&key(projection, partition))
    }

    /// `claim`: the insert-or-update that takes a partition nobody holds
    /// (`owner IS NULL OR expires_at <= now`), raising its epoch.
    pub fn claim(
        &mut self,
        now: Duration,
        projection: &str,
        partition: u32,
        worker: &str,
        ttl: Duration,
    ) -> Option<u64> {
        let row = self
            .rows
            .entry(key(projection, partition))
            .or_insert(LeaseRow {
                owner: None,
                epoch: 0,
                expires_at: None,
            });
        if row.valid(now) {
            return None;
        }
        row.owner = Some(worker.to_owned());
        row.epoch += 1;
        row.expires_at = Some(now + ttl);
        Some(row.epoch)
    }

    /// Whether `renew` would update the row (its `WHERE` clause): held
    /// under `epoch` and unexpired.
    pub fn renewable(&self, now: Duration, projection: &str, partition: u32, epoch: u64) -> bool {
        self.row(projection, partition)
            .is_some_and(|r| r.epoch == epoch && r.valid(now))
    }

    /// `renew`: extends the lease held under `epoch`.
    pub fn renew(
        &mut self,
        now: Duration,
        projection: &str,
        partition: u32,
        epoch: u64,
        ttl: Duration,
    ) -> bool {
        if !self.renewable(now, projection, partition, epoch) {
            return false;
        }
        let row = self
            .rows
            .get_mut(&key(projection, partition))
            .expect("a renewable row exists");
        row.expires_at = Some(now + ttl);
        true
    }

    /// Whether `release` would update the row: owned under `epoch`,
    /// expired or not.
    pub fn releasable(&self, projection: &str, partition: u32, epoch: u64) -> bool {
        self.row(projection, partition)
            .is_some_and(|r| r.epoch == epoch && r.owner.is_some())
    }

    /// `release`: frees the lease held under `epoch`; false when there was
    /// nothing to free.
    pub fn release(&mut self, projection: &str, partition: u32, epoch: u64) -> bool {
        if !self.releasable(projection, partition, epoch) {
            return false;
        }
        let row = self
            .rows
            .get_mut(&key(projection, partition))
            .expect("a releasable row exists");
        row.owner = None;
        row.expires_at = None;
        true
    }

    /// The fence of `begin_fenced`: the lease is held under `epoch` and
    /// unexpired.
    pub fn admits(&self, now: Duration, projection: &str, partition: u32, epoch: u64) -> bool {
        self.renewable(now, projection, partition, epoch)
    }

    /// A repartition frees every held lease of the projection; how many.
    pub fn free_all(&mut self, projection: &str) -> usize {
        let mut freed = 0;
        for ((p, _), row) in &mut self.rows {
            if p == projection && row.owner.is_some() {
                row.owner = None;
                row.expires_at = None;
                freed += 1;
            }
        }
        freed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TTL: Duration = Duration::from_secs(3);

    fn s(secs: u64) -> Duration {
        Duration::from_secs(secs)
    }

    #[test]
    fn a_lease_is_claimed_once_until_it_is_released_or_runs_out() {
        let mut leases = PartitionLeases::default();
        assert_eq!(leases.claim(s(0), "p", 0, "a", TTL), Some(1));
        assert_eq!(leases.claim(s(1), "p", 0, "b", TTL), None);
        assert!(leases.renew(s(2), "p", 0, 1, TTL));
        assert!(leases.admits(s(4), "p", 0, 1), "renewed until 5 s");
        assert!(!leases.admits(s(5), "p", 0, 1), "expired at 5 s");
        assert!(!leases.renew(s(5), "p", 0, 1, TTL));
        assert_eq!(leases.claim(s(5), "p", 0, "b", TTL), Some(2));
        assert!(!leases.release("p", 0, 1), "the old epoch frees nothing");
        assert!(leases.release("p", 0, 2));
        assert_eq!(leases.claim(s(5), "p", 0, "a", TTL), Some(3));
        assert_eq!(leases.free_all("p"), 1);
        assert!(leases.holders(s(5), "p").is_empty());
    }

    #[test]
    fn live_workers_are_those_with_a_fresh_heartbeat() {
        let mut leases = PartitionLeases::default();
        assert!(leases.heartbeat(s(0), "p", "b", TTL), "joined");
        assert!(leases.heartbeat(s(2), "p", "a", TTL));
        assert!(
            !leases.heartbeat(s(2), "p", "b", TTL),
            "a heartbeat, not a join"
        );
        leases.heartbeat(s(2), "q", "c", TTL);
        assert_eq!(leases.live_workers(s(2), "p", TTL), vec!["a", "b"]);
        assert_eq!(leases.live_workers(s(5), "p", TTL), Vec::<String>::new());
        assert!(leases.leave("p", "a"));
        assert!(!leases.leave("p", "a"));
        assert!(leases.heartbeat(s(5), "p", "a", TTL), "back after leaving");
        assert!(
            leases.heartbeat(s(5), "p", "b", TTL),
            "back after going stale"
        );
    }
}
