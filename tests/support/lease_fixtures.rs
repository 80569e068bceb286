//! Shared pieces of the Postgres lease store tests (`tests/lease_store.rs`,
//! `tests/lease_fence.rs`): a cluster `C`, short and long leases, and waits
//! that poll the database's own view of the lease.

use std::time::{Duration, Instant};

use rillflow_adapters::daemon::{LeaseStore, NodeIdentity, PgLeaseStore};
use rillflow_core::lease::{AcquireOutcome, ClusterTiming, ClusterView, Grant};
use uuid::Uuid;

use crate::TestDb;

/// The cluster every lease store test uses (each in its own database).
pub const C: &str = "billing";
/// A lease that must run out during the test.
pub const TTL: Duration = Duration::from_millis(200);
/// The grace that goes with it.
pub const GRACE: Duration = Duration::from_millis(100);
/// A lease that outlives any test.
pub const LONG: Duration = Duration::from_secs(60);
/// The longest any wait may take.
pub const WAIT: Duration = Duration::from_secs(5);

/// A migrated database of its own and a store on it.
pub async fn setup() -> (TestDb, PgLeaseStore) {
    let mut db = TestDb::migrated().await;
    let store = PgLeaseStore::new(db.pool().await);
    (db, store)
}

/// A node of `cluster` with daemon id `id`.
pub fn identity(cluster: &str, node: &str, id: u128) -> NodeIdentity {
    NodeIdentity {
        cluster: cluster.to_owned(),
        node: node.to_owned(),
        daemon_id: Uuid::from_u128(id),
    }
}

/// Registers `names` in cluster `C` with daemon ids 1, 2, ...
pub async fn join<const N: usize>(store: &PgLeaseStore, names: [&str; N]) -> [NodeIdentity; N] {
    let ids: [NodeIdentity; N] = std::array::from_fn(|i| identity(C, names[i], i as u128 + 1));
    for id in &ids {
        store
            .register(id, 1, &ClusterTiming::default())
            .await
            .expect("register");
    }
    ids
}

/// The database's view of `C`.
pub async fn view(store: &PgLeaseStore) -> ClusterView {
    store
        .cluster_view(C)
        .await
        .expect("cluster view")
        .expect("cluster exists")
}

/// Polls the database's view of `C` until `done` holds.
pub async fn wait_for(
    store: &PgLeaseStore,
    what: &str,
    done: impl Fn(&ClusterView) -> bool,
) -> ClusterView {
    let start = Instant::now();
    loop {
        let v = view(store).await;
        if done(&v) {
            return v;
        }
        assert!(start.elapsed() < WAIT, "not {what} within {WAIT:?}: {v:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Expired, by the database clock, more than `grace` ago.
pub fn expired_beyond(v: &ClusterView, grace: Duration) -> bool {
    v.lease_remaining_ms
        .is_some_and(|ms| ms < -(grace.as_millis() as i64) - 2)
}

/// The grant, or a panic when denied.
pub fn granted(outcome: AcquireOutcome) -> Grant {
    match outcome {
        AcquireOutcome::Granted(g) => g,
        AcquireOutcome::Denied => panic!("expected a grant, was denied"),
    }
}

/// `d` is `ttl`, less at most 50 ms spent by the statement.
pub fn assert_about(d: Duration, ttl: Duration) {
    assert!(
        d <= ttl && d + Duration::from_millis(50) > ttl,
        "{d:?} is not about {ttl:?}"
    );
}
