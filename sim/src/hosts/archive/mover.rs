//! The mover of the archive scenario: a separate client running passes of
//! the production pass logic (`rillflow_core::archive::MovePass`), each
//! batch one request (one transaction) to the database, as `ArchiveMover`
//! runs them. It keeps nothing between passes, so a crash at any point
//! needs no recovery: the restarted mover starts a new pass, which finds
//! what is still hot.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rillflow_core::archive::{BatchOutcome, BatchRequest, MovePass};
use uuid::Uuid;

use crate::client::db_conn::DbConn;
use crate::harness::trace::{sim_now, Trace};
use crate::protocol::{ArchiveRequest, Reply, Request};

/// What the mover runs with.
#[derive(Debug, Clone)]
pub struct MoverSpec {
    /// Seed of its choices.
    pub seed: u64,
    /// No passes from here on.
    pub stop_at: Duration,
    /// Incarnations so far: a restarted mover draws new choices.
    pub boots: Arc<AtomicU64>,
    /// Move as two transactions, a copy then a delete (only to show the
    /// checks catch it).
    pub two_step: bool,
}

/// The pass logic names streams by UUID; the simulation's are numbers.
fn stream_id(stream: u32) -> Uuid {
    Uuid::from_u128(u128::from(stream))
}

/// Where a batch starts: None when the pass has gone past every stream
/// number the simulation uses.
fn from_stream(request: &BatchRequest) -> Option<Option<u32>> {
    match request.from {
        None => Some(None),
        Some(id) => u32::try_from(id.as_u128()).ok().map(Some),
    }
}

/// The cutoff and position bound of a pass, fixed when it starts.
#[derive(Debug, Clone, Copy)]
struct Plan {
    before_us: u64,
    upto: u64,
}

/// Runs passes until `stop_at`, then idles.
pub async fn run(spec: MoverSpec, trace: Trace) -> turmoil::Result {
    let boot = spec.boots.fetch_add(1, Ordering::SeqCst);
    let mut rng = StdRng::seed_from_u64(spec.seed ^ 0x0B0E_5EED ^ (boot << 32));
    trace.record(sim_now(), "mover", format!("boot {boot}"));
    while sim_now() < spec.stop_at {
        tokio::time::sleep(Duration::from_millis(rng.random_range(50..400))).await;
        let older_than_ms = rng.random_range(0..1_500);
        let plan = match DbConn::once(&Request::Archive(ArchiveRequest::MoveStart {
            older_than_ms,
        }))
        .await
        {
            Ok(Reply::MovePlan { before_us, upto }) => Plan { before_us, upto },
            other => {
                trace.record(sim_now(), "mover", format!("pass not started: {other:?}"));
                continue;
            }
        };
        let mut pass = MovePass::new(rng.random_range(1..=8));
        while let Some(request) = pass.next_batch() {
            let Some(from) = from_stream(&request) else {
                break;
            };
            let batch = if spec.two_step {
                two_step(&mut rng, plan, from, request.max_events).await
            } else {
                one_step(plan, from, request.max_events).await
            };
            match batch {
                Ok(outcome) => pass.handle(&outcome),
                // The batch's transaction committed or not; either way the
                // next pass finds what is still hot.
                Err(e) => {
                    trace.record(sim_now(), "mover", format!("pass ended: {e}"));
                    break;
                }
            }
            // Other work between batches, where appends and the operator
            // get in.
            tokio::time::sleep(Duration::from_millis(rng.random_range(0..40))).await;
        }
    }
    std::future::pending::<()>().await;
    Ok(())
}

fn outcome(locked: &[u32], moved: u32, last_stream: Option<u32>) -> BatchOutcome {
    BatchOutcome {
        locked: locked.iter().copied().map(stream_id).collect(),
        moved: u64::from(moved),
        last_moved_stream: last_stream.map(stream_id),
    }
}

async fn one_step(plan: Plan, from: Option<u32>, limit: u32) -> Result<BatchOutcome, String> {
    let request = Request::Archive(ArchiveRequest::MoveBatch {
        from,
        before_us: plan.before_us,
        upto: plan.upto,
        limit,
    });
    match DbConn::once(&request).await.map_err(|e| e.to_string())? {
        Reply::Moved {
            locked,
            events,
            last_stream,
            ..
        } => Ok(outcome(&locked, events, last_stream)),
        other => Err(format!("{other:?}")),
    }
}

/// The broken mover: copies a batch in one transaction and deletes the hot
/// rows in a second one, doing other work in between.
async fn two_step(
    rng: &mut StdRng,
    plan: Plan,
    from: Option<u32>,
    limit: u32,
) -> Result<BatchOutcome, String> {
    let request = Request::Archive(ArchiveRequest::CopyBatch {
        from,
        before_us: plan.before_us,
        upto: plan.upto,
        limit,
    });
    let (locked, cursors, last_stream) =
        match DbConn::once(&request).await.map_err(|e| e.to_string())? {
            Reply::Copied {
                locked,
                cursors,
                last_stream,
            } => (locked, cursors, last_stream),
            other => return Err(format!("{other:?}")),
        };
    if cursors.is_empty() {
        return Ok(outcome(&locked, 0, None));
    }
    tokio::time::sleep(Duration::from_millis(rng.random_range(0..30))).await;
    match DbConn::once(&Request::Archive(ArchiveRequest::DeleteCopied { cursors }))
        .await
        .map_err(|e| e.to_string())?
    {
        Reply::Moved { events, .. } => Ok(outcome(&locked, events, last_stream)),
        other => Err(format!("{other:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_numbers_survive_the_pass_logic() {
        let mut pass = MovePass::new(2);
        assert_eq!(from_stream(&pass.next_batch().unwrap()), Some(None));
        pass.handle(&outcome(&[3, 5], 2, Some(5)));
        assert_eq!(from_stream(&pass.next_batch().unwrap()), Some(Some(5)));
        pass.handle(&outcome(&[5], 1, Some(5)));
        assert_eq!(from_stream(&pass.next_batch().unwrap()), Some(Some(6)));
        pass.handle(&outcome(&[], 0, None));
        assert!(pass.next_batch().is_none());
        let beyond = BatchRequest {
            from: Some(Uuid::from_u128(u128::from(u32::MAX) + 1)),
            max_events: 1,
        };
        assert_eq!(from_stream(&beyond), None);
    }
}
