//! The ownership scenario's requests, applied to the model: the
//! `OwnershipStore` statements, partition batches and repartitions. Each is
//! one atomic step; `Busy` tells the database host to wait for a row lock
//! and ask again, up to the lock timeout, as Postgres makes a statement
//! wait for a row an open fenced batch holds `FOR SHARE`.

use std::time::Duration;

use crate::model::log::events::ModelEvents;
use crate::model::ownership::partition_leases::PartitionLeases;
use crate::model::ownership::partitioned_projection::{
    BatchRequest, Begin, PartitionedProjection, Resizing,
};
use crate::protocol::{OwnershipRequest, Reply};

/// Registrations, leases and the partitioned projection.
#[derive(Debug, Clone, Default)]
pub struct ModelOwnership {
    /// Workers and partition leases.
    pub leases: PartitionLeases,
    /// Counts, checkpoints, open batches and their history.
    pub projection: PartitionedProjection,
    /// Off only to show the checks catch batches that skip the fence.
    pub fence_disabled: bool,
    /// Off only to show the checks catch a repartition that drops the
    /// carried layers.
    pub carry_disabled: bool,
    /// Batches the fence refused.
    pub refused_batches: usize,
    /// Claims granted.
    pub claims: usize,
    /// What happened, for the trace (drained by the database host).
    notes: Vec<String>,
    /// Projections whose workers are to be woken (`pg_notify` on
    /// `rf_partition_changes`), drained by the database host.
    changes: Vec<String>,
}

fn us(v: u64) -> Duration {
    Duration::from_micros(v)
}

impl ModelOwnership {
    /// Applies one request at database time `now`.
    pub fn apply(
        &mut self,
        events: &ModelEvents,
        now: Duration,
        request: &OwnershipRequest,
    ) -> Reply {
        let locked = |p: &PartitionedProjection, projection: &str, partition: u32| {
            p.share_locked(projection, partition)
        };
        match request {
            OwnershipRequest::OwnerSync {
                projection,
                worker,
                ttl_us,
            } => {
                if self.leases.heartbeat(now, projection, worker, us(*ttl_us)) {
                    self.changes.push(projection.clone());
                }
                Reply::OwnershipView {
                    partitions: self.projection.count(projection),
                    workers: self.leases.live_workers(now, projection, us(*ttl_us)),
                    holders: self
                        .leases
                        .holders(now, projection)
                        .into_iter()
                        .map(|(p, h)| (p, h.worker, h.epoch))
                        .collect(),
                }
            }
            OwnershipRequest::OwnerClaim {
                projection,
                partition,
                worker,
                ttl_us,
            } => {
                // The upsert locks the conflicting row whatever its WHERE
                // clause then says, so it waits for any fenced batch.
                if locked(&self.projection, projection, *partition) {
                    return Reply::Busy;
                }
                let epoch = self
                    .leases
                    .claim(now, projection, *partition, worker, us(*ttl_us));
                if let Some(e) = epoch {
                    self.claims += 1;
                    self.notes
                        .push(format!("p{partition} claimed by {worker} under epoch {e}"));
                }
                Reply::Claimed { epoch }
            }
            OwnershipRequest::OwnerRenew {
                projection,
                partition,
                epoch,
                ttl_us,
            } => {
                // An UPDATE waits only for rows its WHERE clause matches.
                if locked(&self.projection, projection, *partition)
                    && self.leases.renewable(now, projection, *partition, *epoch)
                {
                    return Reply::Busy;
                }
                let held = self
                    .leases
                    .renew(now, projection, *partition, *epoch, us(*ttl_us));
                Reply::Held { held }
            }
            OwnershipRequest::OwnerRelease {
                projection,
                partition,
                epoch,
            } => {
                if locked(&self.projection, projection, *partition)
                    && self.leases.releasable(projection, *partition, *epoch)
                {
                    return Reply::Busy;
                }
                if self.leases.release(projection, *partition, *epoch) {
                    self.notes
                        .push(format!("p{partition} released under epoch {epoch}"));
                    self.changes.push(projection.clone());
                }
                Reply::Done
            }
            OwnershipRequest::OwnerLeave { projection, worker } => {
                if self.leases.leave(projection, worker) {
                    self.notes.push(format!("{worker} left {projection}"));
                    self.changes.push(projection.clone());
                }
                Reply::Done
            }
            OwnershipRequest::PartitionBegin {
                projection,
                worker,
                partition,
                total,
                epoch,
                limit,
            } => {
                let request = BatchRequest {
                    projection: projection.clone(),
                    worker: worker.clone(),
                    partition: *partition,
                    total: *total,
                    epoch: *epoch,
                    limit: *limit as usize,
                };
                let fence = !self.fence_disabled;
                match self
                    .projection
                    .begin(now, request, &self.leases, fence, events)
                {
                    Begin::Busy => Reply::Busy,
                    Begin::Fenced => {
                        self.refused_batches += 1;
                        self.notes.push(format!(
                            "fence refused {worker}'s batch of p{partition}/{total} under epoch {epoch}"
                        ));
                        Reply::Fenced
                    }
                    Begin::Unregistered => Reply::Unregistered,
                    Begin::CountChanged(recorded) => Reply::CountChanged { recorded },
                    Begin::Idle => Reply::BatchIdle,
                    Begin::HeldBack => Reply::BatchHeldBack,
                    Begin::Opened { txn, read } => Reply::BatchOpened {
                        txn,
                        read: u32::try_from(read).unwrap_or(u32::MAX),
                    },
                }
            }
            OwnershipRequest::PartitionCommit { txn } => {
                match self.projection.commit(now, *txn, &self.leases) {
                    Some(applied) => Reply::Batch {
                        applied: u32::try_from(applied).unwrap_or(u32::MAX),
                    },
                    None => Reply::Failed(format!("no open batch transaction {txn}")),
                }
            }
            OwnershipRequest::Repartition { projection, to, .. } => {
                let carry = !self.carry_disabled;
                let before = self.projection.resizes.len();
                match self
                    .projection
                    .repartition(now, projection, *to, carry, &mut self.leases)
                {
                    Resizing::Busy => Reply::Busy,
                    Resizing::Unknown => {
                        Reply::Failed(format!("unknown projection {projection:?}"))
                    }
                    Resizing::Done { from, to } => {
                        if let Some(r) = self.projection.resizes.get(before) {
                            self.changes.push(projection.clone());
                            self.notes.push(format!(
                                "repartitioned {from} -> {to}: every partition starts at {:?} with {} layers, {} leases freed",
                                r.start, r.layers, r.leases_freed
                            ));
                        }
                        Reply::Resized {
                            from,
                            to,
                            changed: from != to,
                        }
                    }
                }
            }
            // The database host subscribes the connection itself.
            OwnershipRequest::ListenChanges => {
                Reply::Failed("handled by the database host".to_owned())
            }
        }
    }

    /// A request in a few words, for the trace.
    pub fn describe(request: &OwnershipRequest) -> String {
        match request {
            OwnershipRequest::OwnerSync { worker, .. } => format!("{worker}'s sync"),
            OwnershipRequest::OwnerClaim {
                worker, partition, ..
            } => format!("{worker}'s claim of p{partition}"),
            OwnershipRequest::OwnerRenew {
                partition, epoch, ..
            } => format!("the renewal of p{partition} under epoch {epoch}"),
            OwnershipRequest::OwnerRelease {
                partition, epoch, ..
            } => format!("the release of p{partition} under epoch {epoch}"),
            OwnershipRequest::OwnerLeave { worker, .. } => format!("{worker}'s leave"),
            OwnershipRequest::PartitionBegin {
                worker,
                partition,
                total,
                ..
            } => format!("{worker}'s batch of p{partition}/{total}"),
            OwnershipRequest::PartitionCommit { txn } => format!("the commit of batch {txn}"),
            OwnershipRequest::Repartition { to, .. } => format!("the repartition to {to}"),
            OwnershipRequest::ListenChanges => "a subscription to changes".to_owned(),
        }
    }

    /// How long a request may wait for row locks: a repartition as long as
    /// its caller said, the rest the session's lock timeout.
    pub fn wait_limit(request: &OwnershipRequest, lock_timeout: Duration) -> Duration {
        match request {
            OwnershipRequest::Repartition { wait_us, .. } => us(*wait_us),
            _ => lock_timeout,
        }
    }

    /// A request gave up waiting: a repartition stops holding new batches
    /// back.
    pub fn gave_up(&mut self, request: &OwnershipRequest) {
        if let OwnershipRequest::Repartition { projection, .. } = request {
            self.projection.gave_up(projection);
        }
    }

    /// Rolls back a batch whose session ended; false when it was not open.
    pub fn abort(&mut self, txn: u64) -> bool {
        self.projection.abort(txn)
    }

    /// A database restart ends every open transaction.
    pub fn abort_open(&mut self) {
        self.projection.abort_all();
    }

    /// What happened since the last call, for the trace.
    pub fn take_notes(&mut self) -> Vec<String> {
        std::mem::take(&mut self.notes)
    }

    /// Projections changed since the last call, to notify.
    pub fn take_changes(&mut self) -> Vec<String> {
        std::mem::take(&mut self.changes)
    }
}

#[cfg(test)]
mod tests {
    use rillflow_core::ExpectedVersion;

    use super::*;
    use crate::model::log::events::{AppendRequest, Outcome};

    const TTL_US: u64 = 3_000_000;

    fn request(kind: &str, epoch: u64) -> OwnershipRequest {
        let (projection, partition) = ("p".to_owned(), 0);
        match kind {
            "claim" => OwnershipRequest::OwnerClaim {
                projection,
                partition,
                worker: "b".to_owned(),
                ttl_us: TTL_US,
            },
            "renew" => OwnershipRequest::OwnerRenew {
                projection,
                partition,
                epoch,
                ttl_us: TTL_US,
            },
            "release" => OwnershipRequest::OwnerRelease {
                projection,
                partition,
                epoch,
            },
            "sync" => OwnershipRequest::OwnerSync {
                projection,
                worker: "b".to_owned(),
                ttl_us: TTL_US,
            },
            _ => OwnershipRequest::PartitionBegin {
                projection,
                worker: "a".to_owned(),
                partition,
                total: 1,
                epoch,
                limit: 10,
            },
        }
    }

    /// What Postgres makes wait for a row held `FOR SHARE`: the claim's
    /// upsert always, an update only when its WHERE clause matches the
    /// row, a read never.
    #[test]
    fn statements_on_a_lease_row_wait_for_an_open_batch_as_in_postgres() {
        let now = Duration::from_secs(1);
        let mut events = ModelEvents::default();
        let append = AppendRequest {
            stream: 1,
            expected: ExpectedVersion::Any,
            key: None,
            payloads: vec![0],
        };
        let Outcome::Started { xid, .. } = events.begin(now, &append) else {
            panic!("starts");
        };
        events.end(now, xid, true);
        let mut model = ModelOwnership::default();
        model.projection.register("p", 1);
        let e1 = model
            .leases
            .claim(now, "p", 0, "a", Duration::from_secs(3))
            .unwrap();
        let Reply::BatchOpened { txn, .. } = model.apply(&events, now, &request("begin", e1))
        else {
            panic!("the fence admits the current epoch");
        };
        for kind in ["claim", "renew", "release"] {
            assert_eq!(
                model.apply(&events, now, &request(kind, e1)),
                Reply::Busy,
                "{kind}"
            );
        }
        assert_eq!(
            model.apply(&events, now, &request("renew", e1 + 1)),
            Reply::Held { held: false },
            "an update whose WHERE matches nothing does not wait"
        );
        assert!(matches!(
            model.apply(&events, now, &request("sync", 0)),
            Reply::OwnershipView { .. }
        ));
        let commit = OwnershipRequest::PartitionCommit { txn };
        assert_eq!(
            model.apply(&events, now, &commit),
            Reply::Batch { applied: 1 }
        );
        assert_eq!(
            model.apply(&events, now, &request("renew", e1)),
            Reply::Held { held: true }
        );
    }
}
