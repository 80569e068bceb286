//! The operator of the archive scenario: marks streams archived,
//! reactivates them, switches the redirect on and off, and reads streams
//! back with archived data, at random moments, over the simulated network.

use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::client::db_conn::DbConn;
use crate::harness::trace::{sim_now, Trace};
use crate::hosts::archive::ledger::Ledger;
use crate::hosts::archive::writer::STREAMS;
use crate::protocol::{ArchiveRequest, Reply, Request};

/// Issues operations until `stop_at`, then idles; every choice comes from
/// `seed`.
pub async fn run(seed: u64, stop_at: Duration, ledger: Ledger, trace: Trace) -> turmoil::Result {
    let mut rng = StdRng::seed_from_u64(seed ^ 0xA4C1_17E5);
    while sim_now() < stop_at {
        tokio::time::sleep(Duration::from_millis(rng.random_range(100..400))).await;
        let stream = rng.random_range(0..STREAMS);
        let request = match rng.random_range(0..10) {
            0..=3 => ArchiveRequest::Mark { stream },
            4 | 5 => ArchiveRequest::Reactivate { stream },
            6 => ArchiveRequest::SetRedirect {
                on: rng.random_bool(0.6),
            },
            _ => ArchiveRequest::ReadStream {
                stream,
                include_archived: true,
            },
        };
        match DbConn::once(&Request::Archive(request.clone())).await {
            Ok(Reply::Stream { events }) => ledger.check_read(sim_now(), stream, &events),
            Ok(Reply::Changed { .. } | Reply::NoStream) => {}
            // An operator whose command failed or got no answer tries
            // something else later; the checks judge what the database did.
            other => trace.record(sim_now(), "archivist", format!("{request:?}: {other:?}")),
        }
    }
    std::future::pending::<()>().await;
    Ok(())
}
