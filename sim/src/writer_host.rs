//! The application appending events while the daemons project them: a few
//! concurrent writers that hold their appends open for a while, so commits
//! land out of position order, and roll some back.

use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::protocol::{Reply, Request};
use crate::sim_store::SimLeaseStore;
use crate::trace::{sim_now, Trace};

/// Concurrent writers on the host.
const WRITERS: u64 = 3;
/// Streams they append to.
const STREAMS: u32 = 8;

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
            while sim_now() < stop_at {
                let stream = rng.random_range(0..streams);
                let events = rng.random_range(1..=3);
                let hold = Duration::from_millis(rng.random_range(0..80));
                let commit = rng.random_bool(0.9);
                let gap = Duration::from_millis(rng.random_range(5..40));
                let begun = store.call(&Request::AppendBegin { stream, events }).await;
                if let Ok(Reply::AppendStarted { xid }) = begun {
                    tokio::time::sleep(hold).await;
                    let ended = store.call(&Request::AppendEnd { xid, commit }).await;
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
