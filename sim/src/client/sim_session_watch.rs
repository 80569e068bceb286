//! [`SessionWatch`] on the `db` host: a wait request on a connection of its
//! own, answered when no session holds the key or after the host's lock
//! timeout (half a heartbeat), as `PgSessionWatch` waits for a share lock
//! under `lock_timeout`. The production forwarding loop,
//! `watch_leader_sessions`, runs on top of it.

use async_trait::async_trait;
use rillflow_adapters::daemon::{LeaseError, SessionWatch};

use crate::client::db_conn::DbConn;
use crate::protocol::{LeaseRequest, Reply, Request};

/// Waits on session locks of the model database.
#[derive(Debug, Clone, Copy, Default)]
pub struct SimSessionWatch;

#[async_trait]
impl SessionWatch for SimSessionWatch {
    type Waiter = DbConn;

    async fn open(&self) -> Result<DbConn, LeaseError> {
        DbConn::connect()
            .await
            .map_err(|e| LeaseError::Unavailable(format!("cannot open a session watch: {e}")))
    }

    async fn wait_ended(&self, conn: &mut DbConn, key: i64) -> Result<bool, LeaseError> {
        // The call's own deadline outlasts the host's lock timeout by a
        // round trip; a reply lost in a partition fails the waiter, and
        // the loop opens another (TCP would have resent it).
        match conn
            .call(&Request::Lease(LeaseRequest::WaitSessionEnd { key }))
            .await
        {
            Ok(Reply::Waited { ended }) => Ok(ended),
            Ok(other) => Err(LeaseError::Unavailable(format!(
                "unexpected reply to a wait: {other:?}"
            ))),
            Err(e) => Err(LeaseError::Unavailable(e.to_string())),
        }
    }
}
