//! The operator of the ownership scenario: runs `projections repartition`
//! at the planned times while the workers run, trying again (as an operator
//! told "timed out waiting for running batches; try again" would) until it
//! went through or the faults are over.

use std::time::Duration;

use crate::client::db_conn::DbConn;
use crate::client::sim_batches::PROJECTION;
use crate::client::sim_store::micros;
use crate::harness::trace::{sim_now, Trace};
use crate::protocol::{OwnershipRequest, Reply, Request};

/// How long a repartition waits for running batches (`--wait-secs`):
/// within the client's own deadline on a reply.
pub const WAIT: Duration = Duration::from_secs(1);

/// The operator's host name.
pub const OPERATOR: &str = "operator";

/// Repartitions to each count at its time, none from `stop_at` on.
pub async fn run(plan: Vec<(Duration, u32)>, stop_at: Duration, trace: Trace) -> turmoil::Result {
    for (at, to) in plan {
        if let Some(wait) = at.checked_sub(sim_now()) {
            tokio::time::sleep(wait).await;
        }
        let request = Request::Ownership(OwnershipRequest::Repartition {
            projection: PROJECTION.to_owned(),
            to,
            wait_us: micros(WAIT),
        });
        while sim_now() < stop_at {
            let reply = DbConn::once(&request).await;
            trace.record(
                sim_now(),
                OPERATOR,
                format!("repartition to {to}: {reply:?}"),
            );
            if let Ok(Reply::Resized { .. }) = reply {
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    std::future::pending::<()>().await;
    Ok(())
}
