//! The [`OwnershipStore`] the simulated workers' production `OwnerDriver`
//! runs against: each call is one request to the `db` host over turmoil's
//! network, so partitions, held links and lost replies reach the driver as
//! a flaky Postgres connection would.

use std::collections::BTreeMap;
use std::io;
use std::time::Duration;

use async_trait::async_trait;
use rillflow_adapters::ownership::{OwnershipError, OwnershipStore, OwnershipView};
use rillflow_core::ownership::Holder;

use crate::client::db_conn::DbConn;
use crate::client::sim_store::micros;
use crate::harness::trace::{sim_now, Trace};
use crate::protocol::{OwnershipRequest, Reply, Request};

/// A worker's store on the `db` host.
#[derive(Debug, Clone)]
pub struct SimOwnershipStore {
    worker: String,
    trace: Trace,
}

/// What the driver sees of a failed call: a database error, its outcome
/// unknown, as sqlx reports a broken connection.
fn failed(what: String) -> OwnershipError {
    OwnershipError::Database(sqlx::Error::Io(io::Error::new(
        io::ErrorKind::ConnectionAborted,
        what,
    )))
}

impl SimOwnershipStore {
    /// The store of `worker`, which traces its failed calls.
    pub fn new(worker: String, trace: Trace) -> Self {
        SimOwnershipStore { worker, trace }
    }

    /// One request on a connection of its own. Every call has a deadline
    /// ([`crate::client::db_conn::CALL_TIMEOUT`]); see the README on why the
    /// production driver needs one too.
    async fn call(&self, what: &str, request: &Request) -> Result<Reply, OwnershipError> {
        let error = match DbConn::once(request).await {
            Ok(Reply::Failed(e)) => e,
            Ok(reply) => return Ok(reply),
            Err(e) => e.to_string(),
        };
        self.trace
            .record(sim_now(), &self.worker, format!("{what} failed: {error}"));
        Err(failed(error))
    }
}

fn unexpected(reply: Reply) -> OwnershipError {
    failed(format!("unexpected reply {reply:?}"))
}

#[async_trait]
impl OwnershipStore for SimOwnershipStore {
    async fn sync(
        &self,
        projection: &str,
        worker: &str,
        ttl: Duration,
    ) -> Result<OwnershipView, OwnershipError> {
        let request = Request::Ownership(OwnershipRequest::OwnerSync {
            projection: projection.to_owned(),
            worker: worker.to_owned(),
            ttl_us: micros(ttl),
        });
        match self.call("sync", &request).await? {
            Reply::OwnershipView {
                partitions,
                workers,
                holders,
            } => Ok(OwnershipView {
                partitions,
                workers,
                holders: holders
                    .into_iter()
                    .map(|(p, worker, epoch)| (p, Holder { worker, epoch }))
                    .collect::<BTreeMap<_, _>>(),
            }),
            other => Err(unexpected(other)),
        }
    }

    async fn claim(
        &self,
        projection: &str,
        partition: u32,
        worker: &str,
        ttl: Duration,
    ) -> Result<Option<u64>, OwnershipError> {
        let request = Request::Ownership(OwnershipRequest::OwnerClaim {
            projection: projection.to_owned(),
            partition,
            worker: worker.to_owned(),
            ttl_us: micros(ttl),
        });
        match self.call("claim", &request).await? {
            Reply::Claimed { epoch } => Ok(epoch),
            other => Err(unexpected(other)),
        }
    }

    async fn renew(
        &self,
        projection: &str,
        partition: u32,
        epoch: u64,
        ttl: Duration,
    ) -> Result<bool, OwnershipError> {
        let request = Request::Ownership(OwnershipRequest::OwnerRenew {
            projection: projection.to_owned(),
            partition,
            epoch,
            ttl_us: micros(ttl),
        });
        match self.call("renew", &request).await? {
            Reply::Held { held } => Ok(held),
            other => Err(unexpected(other)),
        }
    }

    async fn release(
        &self,
        projection: &str,
        partition: u32,
        epoch: u64,
    ) -> Result<(), OwnershipError> {
        let request = Request::Ownership(OwnershipRequest::OwnerRelease {
            projection: projection.to_owned(),
            partition,
            epoch,
        });
        match self.call("release", &request).await? {
            Reply::Done => Ok(()),
            other => Err(unexpected(other)),
        }
    }

    async fn leave(&self, projection: &str, worker: &str) -> Result<(), OwnershipError> {
        let request = Request::Ownership(OwnershipRequest::OwnerLeave {
            projection: projection.to_owned(),
            worker: worker.to_owned(),
        });
        match self.call("leave", &request).await? {
            Reply::Done => Ok(()),
            other => Err(unexpected(other)),
        }
    }
}
