//! The `db` host's handler of the lease domain: statements on the cluster
//! row wait for an open fenced transaction's lock, a release wakes the
//! listeners, a frozen writer holds the lock until the idle timeout, and
//! lease sessions and notices take their connection over.

use std::time::Duration;

use super::host::{lock_timeout, Answer, Channel, Session};
use crate::db::sessions;
use crate::harness::trace::sim_now;
use crate::protocol::{Caller, LeaseRequest, Reply};

impl Session {
    /// Answers a request of the lease domain.
    pub(super) async fn lease(&self, request: LeaseRequest) -> Answer {
        let reply = match request {
            LeaseRequest::OpenSession { node } => return Answer::HoldSession(node),
            LeaseRequest::Listen => return Answer::Subscribe(Channel::Releases),
            LeaseRequest::FrozenFencedWrite {
                caller,
                epoch,
                freeze_us,
            } => {
                self.frozen_write(caller, epoch, Duration::from_micros(freeze_us))
                    .await
            }
            // Statements that update the cluster row wait for an open
            // fenced transaction's lock, up to the lock timeout; so do the
            // operator's requests, which update it too.
            LeaseRequest::RequestPromote { ref cluster, .. }
            | LeaseRequest::RequestDemote { ref cluster, .. } => {
                if !self.locks.wait(cluster, self.timeouts.lock).await {
                    return lock_timeout().into();
                }
                self.apply(|db, now| db.apply_lease(now, request))
            }
            LeaseRequest::TryAcquire { ref caller, .. }
            | LeaseRequest::Renew { ref caller, .. }
            | LeaseRequest::Release { ref caller, .. } => {
                if !self.locks.wait(&caller.cluster, self.timeouts.lock).await {
                    return lock_timeout().into();
                }
                let released = match &request {
                    LeaseRequest::Release { caller, .. } => Some(caller.clone()),
                    _ => None,
                };
                let (reply, notify) = self.apply(|db, now| {
                    let before = released.as_ref().and_then(|c| db.lease.leader(&c.cluster));
                    let reply = db.apply_lease(now, request);
                    let notify = released.filter(|c| {
                        before.as_deref() == Some(c.node.as_str())
                            && db.lease.leader(&c.cluster).is_none()
                    });
                    (reply, notify)
                });
                // Delivered after the change is applied, as NOTIFY is on commit.
                if let Some(c) = notify {
                    self.listeners
                        .notify(&Reply::Released { cluster: c.cluster });
                }
                reply
            }
            LeaseRequest::WaitSessionEnd { key } => {
                sessions::wait_ended(&self.db, key, self.timeouts.lock).await
            }
            other => self.apply(|db, now| db.apply_lease(now, other)),
        };
        reply.into()
    }

    /// The fence check takes the row lock; the client then freezes, cut off
    /// the network, and the server ends its transaction once it has been
    /// idle for the idle-in-transaction timeout.
    async fn frozen_write(&self, caller: Caller, epoch: u64, freeze: Duration) -> Reply {
        if !self.apply(|db, now| db.lease.fence_admits(now, &caller, epoch)) {
            return Reply::Fenced;
        }
        self.locks.take(&caller.cluster);
        self.trace.record_freeze(
            &caller.node,
            sim_now(),
            format!("frozen {freeze:?} inside a transaction of epoch {epoch}"),
        );
        turmoil::hold(caller.node.as_str(), "db");
        let node = caller.node.clone();
        tokio::spawn(async move {
            tokio::time::sleep(freeze).await;
            turmoil::release(node.as_str(), "db");
        });
        let idle = self.timeouts.idle_in_transaction;
        tokio::time::sleep(freeze.min(idle)).await;
        if freeze >= idle {
            self.locks.free(&caller.cluster);
            self.trace.record(
                sim_now(),
                "db",
                format!(
                    "ended the idle transaction of {} (epoch {epoch})",
                    caller.node
                ),
            );
            return Reply::Failed(
                "terminating connection due to idle-in-transaction timeout".to_owned(),
            );
        }
        let reply = self.apply(|db, now| {
            db.lease.commit_write(now, &caller, epoch);
            Reply::Done
        });
        self.locks.free(&caller.cluster);
        reply
    }
}
