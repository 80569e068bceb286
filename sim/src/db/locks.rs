//! The cluster rows an open fenced transaction holds locked, per incarnation
//! of the database host: a restart forgets them, as a database restart ends
//! every transaction.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Which clusters' rows are locked by an open fenced transaction.
#[derive(Debug, Clone, Default)]
pub(super) struct Locks(Arc<Mutex<BTreeSet<String>>>);

impl Locks {
    fn held(&self, cluster: &str) -> bool {
        self.0.lock().expect("locks").contains(cluster)
    }

    pub(super) fn take(&self, cluster: &str) {
        self.0.lock().expect("locks").insert(cluster.to_owned());
    }

    pub(super) fn free(&self, cluster: &str) {
        self.0.lock().expect("locks").remove(cluster);
    }

    /// Waits up to `limit` for the cluster row to be free.
    pub(super) async fn wait(&self, cluster: &str, limit: Duration) -> bool {
        let start = tokio::time::Instant::now();
        while self.held(cluster) {
            if start.elapsed() >= limit {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        true
    }
}
