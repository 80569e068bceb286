//! The database's committed state, one model per domain: the hot/cold
//! lease and its sessions, the event log with the projection over it, and
//! partition ownership. It lives outside the database host, so a host
//! restart keeps it, as a real database keeps what it committed. A request
//! is applied atomically at the database host's time; a hot/cold projection
//! batch spans two domains (the lease's fence, the log's batch), so it is
//! applied here.

use std::time::Duration;

use crate::model::lease::leases::ModelLeases;
use crate::model::lease::sessions::LeaseSessions;
use crate::model::log::archive_requests;
use crate::model::log::event_log::ModelLog;
use crate::model::log::events::Outcome;
use crate::model::ownership::requests::ModelOwnership;
use crate::model::standby::replica::Standby;
use crate::protocol::{
    ArchiveRequest, Caller, LeaseRequest, LogRequest, OwnershipRequest, Reply, Request,
};

/// The database's committed state.
#[derive(Debug, Clone, Default)]
pub struct ModelDb {
    /// The hot/cold lease rows, with the writes and grants made under them.
    pub lease: ModelLeases,
    /// The event log and the projection run over it.
    pub log: ModelLog,
    /// Partition ownership and the partitioned projection (ownership
    /// scenario), reading `log`'s events.
    pub ownership: ModelOwnership,
    /// Lease sessions and the locks they hold.
    pub sessions: LeaseSessions,
    /// A hot standby replaying the lease rows and the log (the `standby`
    /// scenario), which batches may read from and a failover promotes.
    pub standby: Option<Standby>,
}

impl ModelDb {
    /// Applies one request at database time `now`, routed by its domain.
    /// The database host calls the domains' methods itself, around the
    /// waiting each needs; this is the same without the waiting.
    pub fn apply(&mut self, now: Duration, request: Request) -> Reply {
        match request {
            Request::Lease(request) => self.apply_lease(now, request),
            Request::Log(request) => self.apply_log(now, request),
            Request::Archive(request) => self.apply_archive(now, &request),
            Request::Ownership(request) => self.apply_ownership(now, &request),
        }
    }

    /// Applies a request of the lease domain.
    pub fn apply_lease(&mut self, now: Duration, request: LeaseRequest) -> Reply {
        self.lease.apply(now, request, &self.sessions)
    }

    /// Applies a request of the event log domain; a hot/cold projection
    /// batch is fenced by the lease.
    pub fn apply_log(&mut self, now: Duration, request: LogRequest) -> Reply {
        match request {
            LogRequest::AppendBegin { stream, events } => {
                match self.log.begin_append(now, stream, events) {
                    Some(xid) => Reply::AppendStarted { xid },
                    None => Reply::Busy,
                }
            }
            LogRequest::WorkBegin => Reply::AppendStarted {
                xid: self.log.events_mut().begin_work(),
            },
            LogRequest::AppendInWork {
                xid,
                stream,
                events,
            } => match self.log.append_in_work(now, xid, stream, events) {
                Some(Outcome::Started { .. }) => Reply::Done,
                Some(Outcome::Busy) => Reply::Busy,
                Some(Outcome::Passed) => {
                    Reply::Failed("RF007: readers passed this transaction".to_owned())
                }
                other => Reply::Failed(format!("append in {xid}: {other:?}")),
            },
            LogRequest::AppendEnd { xid, commit } => {
                if self.log.end_append(now, xid, commit) {
                    Reply::Done
                } else {
                    Reply::Failed(format!("no open transaction {xid}"))
                }
            }
            LogRequest::ProjectBatch {
                caller,
                epoch,
                limit,
                replica,
            } => self.project_batch(now, &caller, epoch, limit, replica),
        }
    }

    /// Applies a request of the archive domain to the event log.
    pub fn apply_archive(&mut self, now: Duration, request: &ArchiveRequest) -> Reply {
        archive_requests::apply(&mut self.log, now, request)
    }

    /// Applies a request of the ownership domain; batches read the log.
    pub fn apply_ownership(&mut self, now: Duration, request: &OwnershipRequest) -> Reply {
        self.ownership.apply(self.log.events(), now, request)
    }

    /// The primary applied a request at `now`: the standby, if any, gets
    /// the commit, to replay after its lag.
    pub fn replicate(&mut self, now: Duration) {
        if let Some(standby) = &mut self.standby {
            standby.record(now, &self.lease, &self.log);
        }
    }

    /// A projection batch: the fence check (in hot/cold mode), then the
    /// batch, committed with a write record so LEASE-1's check covers it.
    /// With `replica` its events are read from the standby, after the
    /// checkpoint the batch holds on the primary, as
    /// `ProjectionRunner::reading_from` reads them (without a standby,
    /// from the primary).
    fn project_batch(
        &mut self,
        now: Duration,
        caller: &Caller,
        epoch: Option<u64>,
        limit: u32,
        replica: bool,
    ) -> Reply {
        if let Some(epoch) = epoch {
            if !self.lease.fence_admits(now, caller, epoch) {
                return Reply::Fenced;
            }
        }
        let applied = match (&mut self.standby, replica) {
            (Some(standby), true) => {
                let batch = standby.read(now, self.log.checkpoint(), limit as usize);
                self.log.apply_batch(now, &batch)
            }
            _ => self.log.project(now, limit as usize),
        };
        if let (Some(epoch), true) = (epoch, applied > 0) {
            self.lease.commit_write(now, caller, epoch);
        }
        Reply::Batch {
            applied: u32::try_from(applied).unwrap_or(u32::MAX),
        }
    }

    /// The holder of an unexpired lease of `cluster` at `now` whose session,
    /// if the lease is bound to one, is still open, with its epoch.
    pub fn valid_leader(&self, now: Duration, cluster: &str) -> Option<(String, u64)> {
        self.lease.valid_leader(now, cluster, &self.sessions)
    }
}
