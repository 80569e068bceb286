//! The application appending events while the daemons project them: a few
//! concurrent writers that hold their appends open for a while, so commits
//! land out of position order, and roll some back.

use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::client::sim_store::SimLeaseStore;
use crate::harness::trace::{sim_now, Trace};
use crate::protocol::{LogRequest, Reply, Request};

/// Concurrent writers on the host.
const WRITERS: u64 = 3;
/// Streams they append to.
const STREAMS: u32 = 8;
/// Share of transactions that write other tables first (taking their id
/// before they register as appenders), then append, or not at all.
const WORK_FIRST: f64 = 0.3;

/// Appends to [`STREAMS`] streams until `stop_at`, then idles; every choice
/// comes from `seed`.
pub async fn run(seed: u64, stop_at: Duration, trace: Trace) -> turmoil::Result {
    run_streams(seed, stop_at, STREAMS, trace).await
}

/// Appends to `streams` streams until `stop_at`, then idles.
pub async fn run_streams(
    seed: u64,
    stop_at: Duration,
    streams: u32,
    trace: Trace,
) -> turmoil::Result {
    for w in 0..WRITERS {
        let trace = trace.clone();
        tokio::spawn(async move {
            let store = SimLeaseStore::default();
            let mut rng = StdRng::seed_from_u64(seed ^ (w + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15));
            // Apart from `rng`, so the appends of a seed stay what they were.
            let mut work =
                StdRng::seed_from_u64(seed ^ (w + 1).wrapping_mul(0xC2B2_AE3D_27D4_EB4F));
            while sim_now() < stop_at {
                let stream = rng.random_range(0..streams);
                let events = rng.random_range(1..=3);
                let hold = Duration::from_millis(rng.random_range(0..80));
                let commit = rng.random_bool(0.9);
                let gap = Duration::from_millis(rng.random_range(5..40));
                let begun = if work.random_bool(WORK_FIRST) {
                    // Its other work takes half the time it holds.
                    work_first(&store, &mut work, (stream, events), hold / 2, &trace)
                        .await
                        .map(|(xid, commit)| (xid, commit, hold / 2))
                } else {
                    match store
                        .call(&Request::Log(LogRequest::AppendBegin { stream, events }))
                        .await
                    {
                        Ok(Reply::AppendStarted { xid }) => Some((xid, commit, hold)),
                        _ => None,
                    }
                };
                if let Some((xid, commit, hold)) = begun {
                    tokio::time::sleep(hold).await;
                    let ended = store
                        .call(&Request::Log(LogRequest::AppendEnd { xid, commit }))
                        .await;
                    if !matches!(ended, Ok(Reply::Done)) {
                        trace.record(sim_now(), "writer", format!("append {xid} lost: {ended:?}"));
                    }
                }
                tokio::time::sleep(gap).await;
            }
        });
    }
    std::future::pending::<()>().await;
    Ok(())
}

/// A transaction that does other work first: it takes its id, works a
/// while, then mostly appends. An append readers have passed is refused
/// and the transaction rolls back. Returns the transaction to end and
/// whether to commit it.
async fn work_first(
    store: &SimLeaseStore,
    rng: &mut StdRng,
    (stream, events): (u32, u32),
    working: Duration,
    trace: &Trace,
) -> Option<(u64, bool)> {
    let Ok(Reply::AppendStarted { xid }) = store.call(&Request::Log(LogRequest::WorkBegin)).await
    else {
        return None;
    };
    tokio::time::sleep(working).await;
    if rng.random_bool(0.2) {
        // It never appends: commits its other work only.
        return Some((xid, true));
    }
    let appended = store
        .call(&Request::Log(LogRequest::AppendInWork {
            xid,
            stream,
            events,
        }))
        .await;
    match appended {
        Ok(Reply::Done) => Some((xid, rng.random_bool(0.9))),
        other => {
            trace.record(
                sim_now(),
                "writer",
                format!("append in {xid} refused: {other:?}"),
            );
            Some((xid, false))
        }
    }
}
