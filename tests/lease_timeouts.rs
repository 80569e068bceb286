//! LEASE-3 on real Postgres: a writer frozen inside its fenced transaction
//! holds the cluster row's lock. With the daemon's session timeouts the
//! server ends that transaction before the lease's grace is over, so the
//! standby's grant goes through on time and the frozen write can never
//! commit; without them the standby is stuck behind the lock.

use std::time::{Duration, Instant};

use rillflow_adapters::daemon::{
    daemon_pool_config, LeaseError, LeaseStore, NodeIdentity, PgLeaseStore,
};
use rillflow_adapters::{connect, PoolConfig};
use rillflow_core::lease::{AcquireOutcome, ClusterTiming, LeaseConfig};
use rillflow_testkit::TestDb;
use uuid::Uuid;

const CLUSTER: &str = "frozen";

fn lease() -> LeaseConfig {
    LeaseConfig::from_secs(1, 3, 1)
}

fn node(name: &str, id: u128) -> NodeIdentity {
    NodeIdentity {
        cluster: CLUSTER.into(),
        node: name.into(),
        daemon_id: Uuid::from_u128(id),
    }
}

/// Two stores on pools with `config`; `a` holds the lease and has opened a
/// fenced transaction it never finishes. Returns the stores, the open
/// transaction and when the lease runs out plus its grace.
async fn frozen_writer(
    db: &TestDb,
    config: &PoolConfig,
) -> (
    PgLeaseStore,
    sqlx::Transaction<'static, sqlx::Postgres>,
    Instant,
) {
    let a_store = PgLeaseStore::new(connect(&db.url, config).await.unwrap());
    let b_store = PgLeaseStore::new(connect(&db.url, config).await.unwrap());
    let timing = ClusterTiming::from(&lease());
    let (a, b) = (node("a", 1), node("b", 2));
    a_store.register(&a, 1, &timing).await.unwrap();
    b_store.register(&b, 1, &timing).await.unwrap();
    let AcquireOutcome::Granted(grant) = a_store
        .try_acquire(&a, lease().lease_ttl, lease().lease_grace)
        .await
        .unwrap()
    else {
        panic!("a is granted the free lease");
    };
    // Taken once the grant returned: the database granted it no later, so
    // the lease is free (by its clock) by this + ttl + grace, however slow
    // the statement was on a loaded machine.
    let granted_at = Instant::now();
    let frozen = a_store
        .begin_fenced(CLUSTER, grant.epoch)
        .await
        .expect("a's fence admits it");
    // a now "freezes": it neither writes nor commits.
    (
        b_store,
        frozen,
        granted_at + lease().lease_ttl + lease().lease_grace,
    )
}

#[tokio::test]
async fn the_idle_timeout_frees_a_frozen_writers_lock_in_time() {
    let db = TestDb::migrated().await;
    let (b_store, frozen, free_at) = frozen_writer(&db, &daemon_pool_config(&lease())).await;
    tokio::time::sleep_until((free_at + Duration::from_millis(100)).into()).await;

    let asked = Instant::now();
    let outcome = b_store
        .try_acquire(&node("b", 2), lease().lease_ttl, lease().lease_grace)
        .await;
    let waited = asked.elapsed();
    assert!(
        matches!(outcome, Ok(AcquireOutcome::Granted(g)) if g.epoch == 2),
        "{outcome:?}"
    );
    assert!(
        waited < Duration::from_millis(500),
        "the grant waited {waited:?} behind the frozen writer"
    );
    assert!(
        frozen.commit().await.is_err(),
        "the server ended the frozen transaction; it cannot commit"
    );
}

#[tokio::test]
async fn without_the_idle_timeout_a_frozen_writer_blocks_the_takeover() {
    let db = TestDb::migrated().await;
    // The trap: no idle-in-transaction limit; the lock wait gives up after 1 s.
    let config = PoolConfig {
        idle_in_transaction_timeout: Duration::from_secs(600),
        lock_timeout: Duration::from_secs(1),
        ..PoolConfig::default()
    };
    let (b_store, frozen, free_at) = frozen_writer(&db, &config).await;
    tokio::time::sleep_until((free_at + Duration::from_millis(100)).into()).await;

    let outcome = b_store
        .try_acquire(&node("b", 2), lease().lease_ttl, lease().lease_grace)
        .await;
    assert!(
        matches!(outcome, Err(LeaseError::Timeout(_))),
        "{outcome:?}"
    );
    frozen.rollback().await.unwrap();
}
