//! Waiting for a hot/cold cluster, as the database sees it, to reach a state.

use std::time::{Duration, Instant};

use rillflow_adapters::daemon::PgLeaseStore;
use rillflow_core::lease::ClusterView;

/// Polls the view of `cluster` every `every` until `done` holds; returns the
/// view that satisfied it and how long that took. Panics after `limit`,
/// naming `what` and showing the last view.
pub async fn wait_for_view(
    store: &PgLeaseStore,
    cluster: &str,
    what: &str,
    limit: Duration,
    every: Duration,
    done: impl Fn(&ClusterView) -> bool,
) -> (ClusterView, Duration) {
    let start = Instant::now();
    loop {
        let view = store.cluster_view(cluster).await.ok().flatten();
        if let Some(v) = view.as_ref().filter(|v| done(v)) {
            return (v.clone(), start.elapsed());
        }
        assert!(
            start.elapsed() < limit,
            "{what}: not within {limit:?}; last view: {view:?}"
        );
        tokio::time::sleep(every).await;
    }
}
