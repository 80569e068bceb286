//! The `db` host's handler of the ownership domain: statements wait for the
//! lease rows an open batch holds `FOR SHARE`, as long as the model says
//! they would in Postgres; a batch's commit ends its connection's
//! transaction; change notices take their connection over.

use std::time::Duration;

use super::host::{lock_timeout, Answer, Channel, OpenTx, Session};
use crate::harness::trace::sim_now;
use crate::model::ownership::requests::ModelOwnership;
use crate::protocol::OwnershipRequest;

impl Session {
    /// Answers a request of the ownership domain.
    pub(super) async fn ownership(&self, request: OwnershipRequest) -> Answer {
        let ends = match &request {
            OwnershipRequest::ListenChanges => return Answer::Subscribe(Channel::Changes),
            OwnershipRequest::PartitionCommit { txn } => Some(OpenTx::Batch(*txn)),
            _ => None,
        };
        let limit = ModelOwnership::wait_limit(&request, self.timeouts.lock);
        let start = tokio::time::Instant::now();
        let reply = self
            .wait_for_locks(limit, |db, now| {
                let events = db.log.events();
                db.ownership.apply(events, now, &request)
            })
            .await;
        let waited = start.elapsed();
        // Claims and repartitions that waited, and anything held up longer
        // than a round trip (a frozen or cut-off batch): the fence's lock at
        // work. Renewals waiting a moment for the owner's own batch are the
        // common case.
        let contended = matches!(
            request,
            OwnershipRequest::OwnerClaim { .. } | OwnershipRequest::Repartition { .. }
        );
        if !waited.is_zero() && (contended || waited >= Duration::from_millis(50)) {
            let what = ModelOwnership::describe(&request);
            let outcome = if reply.is_some() {
                "then ran"
            } else {
                "then timed out"
            };
            self.trace.record(
                sim_now(),
                "db",
                format!("{what} waited {waited:?} for a running batch, {outcome}"),
            );
        }
        let reply = reply.unwrap_or_else(|| {
            self.apply(|db, _| db.ownership.gave_up(&request));
            lock_timeout()
        });
        Answer::Reply { reply, ends }
    }
}
