//! The fence on a real server (LEASE-1): only the current, unexpired epoch
//! may write, and a competing grant waits for an open fenced transaction, up
//! to the lock timeout.

use std::time::{Duration, Instant};

use rillflow_adapters::daemon::{FenceError, LeaseError, LeaseStore, NodeIdentity, PgLeaseStore};
use rillflow_adapters::{connect, PoolConfig};
use rillflow_core::lease::Grant;
use rillflow_testkit::lease_fixtures::*;
use sqlx::{Postgres, Transaction};

/// Grants `node` a `ttl` lease and opens its fence, retrying when the
/// machine was too slow to open it before the short lease ran out.
async fn acquire_fenced(
    store: &PgLeaseStore,
    node: &NodeIdentity,
    ttl: Duration,
) -> (Grant, Transaction<'static, Postgres>) {
    let start = Instant::now();
    loop {
        let g = granted(store.try_acquire(node, ttl, GRACE).await.unwrap());
        match store.begin_fenced(&node.cluster, g.epoch).await {
            Ok(tx) => return (g, tx),
            Err(FenceError::Fenced { .. }) => {
                assert!(start.elapsed() < WAIT, "never fenced in time")
            }
            Err(e) => panic!("fence: {e}"),
        }
    }
}

#[tokio::test]
async fn the_fence_admits_only_the_current_unexpired_epoch() {
    let (_db, store) = setup().await;
    let [a, b] = join(&store, ["a", "b"]).await;
    let first = granted(store.try_acquire(&a, LONG, GRACE).await.unwrap());
    let tx = store
        .begin_fenced(C, first.epoch)
        .await
        .expect("current epoch");
    tx.commit().await.unwrap();

    let second = granted(store.try_acquire(&a, LONG, GRACE).await.unwrap());
    assert!(matches!(
        store.begin_fenced(C, first.epoch).await,
        Err(FenceError::Fenced { epoch }) if epoch == first.epoch
    ));
    assert!(matches!(
        store.begin_fenced("elsewhere", second.epoch).await,
        Err(FenceError::Fenced { .. })
    ));
    assert!(matches!(
        store.begin_fenced(C, u64::MAX).await,
        Err(FenceError::Fenced { .. })
    ));
    store
        .begin_fenced(C, second.epoch)
        .await
        .expect("current epoch")
        .rollback()
        .await
        .unwrap();

    // Expired: fenced even before anyone else takes over.
    let (short, tx) = acquire_fenced(&store, &a, TTL).await;
    tx.rollback().await.unwrap();
    wait_for(&store, "expired", |v| {
        v.lease_remaining_ms.is_some_and(|ms| ms < 0)
    })
    .await;
    assert!(matches!(
        store.begin_fenced(C, short.epoch).await,
        Err(FenceError::Fenced { .. })
    ));

    // Released: fenced at once.
    wait_for(&store, "past grace", |v| expired_beyond(v, GRACE)).await;
    let third = granted(store.try_acquire(&b, LONG, GRACE).await.unwrap());
    store
        .begin_fenced(C, third.epoch)
        .await
        .expect("current epoch")
        .rollback()
        .await
        .unwrap();
    store.release(&b, third.epoch).await.unwrap();
    assert!(matches!(
        store.begin_fenced(C, third.epoch).await,
        Err(FenceError::Fenced { .. })
    ));
}

#[tokio::test]
async fn a_grant_waits_for_an_open_fenced_transaction() {
    let (db, store) = setup().await;
    let [a, b] = join(&store, ["a", "b"]).await;
    sqlx::query("CREATE TABLE fenced_writes (epoch bigint NOT NULL)")
        .execute(store.pool())
        .await
        .unwrap();
    let (first, mut tx) = acquire_fenced(&store, &a, TTL).await;
    sqlx::query("INSERT INTO fenced_writes VALUES ($1)")
        .bind(first.epoch as i64)
        .execute(&mut *tx)
        .await
        .unwrap();

    // The writer stalls past its lease and the grace period ...
    wait_for(&store, "past grace", |v| expired_beyond(v, GRACE)).await;

    // ... and a competitor's grant (on a pool without lock timeout) must wait
    // for the writer's transaction.
    let config = PoolConfig {
        max_connections: 2,
        lock_timeout: Duration::ZERO,
        ..PoolConfig::default()
    };
    let competitor = PgLeaseStore::new(connect(&db.url, &config).await.unwrap());
    let grant = tokio::spawn(async move { competitor.try_acquire(&b, TTL, GRACE).await });
    let start = Instant::now();
    loop {
        let waiting: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_stat_activity
             WHERE datname = current_database() AND wait_event_type = 'Lock'",
        )
        .fetch_one(store.pool())
        .await
        .unwrap();
        if waiting > 0 {
            break;
        }
        assert!(
            !grant.is_finished(),
            "the grant did not wait: {:?}",
            grant.await
        );
        assert!(
            start.elapsed() < WAIT,
            "the grant never reached the row lock"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(
        !grant.is_finished(),
        "granted while a fenced transaction was open"
    );

    // The write commits under the old epoch; only then is the grant made.
    tx.commit()
        .await
        .expect("a fenced write commits while it holds the row");
    let outcome = tokio::time::timeout(WAIT, grant)
        .await
        .expect("the grant completes once the writer commits")
        .unwrap()
        .unwrap();
    assert_eq!(granted(outcome).epoch, first.epoch + 1);
    let written: Vec<i64> = sqlx::query_scalar("SELECT epoch FROM fenced_writes")
        .fetch_all(store.pool())
        .await
        .unwrap();
    assert_eq!(written, [first.epoch as i64]);
    assert!(matches!(
        store.begin_fenced(C, first.epoch).await,
        Err(FenceError::Fenced { .. })
    ));
}

#[tokio::test]
async fn a_grant_stuck_behind_a_writer_past_lock_timeout_is_a_timeout() {
    let (db, store) = setup().await;
    let [a, b] = join(&store, ["a", "b"]).await;
    let (first, tx) = acquire_fenced(&store, &a, TTL).await;
    wait_for(&store, "past grace", |v| expired_beyond(v, GRACE)).await;

    let config = PoolConfig {
        max_connections: 1,
        lock_timeout: Duration::from_millis(100),
        ..PoolConfig::default()
    };
    let competitor = PgLeaseStore::new(connect(&db.url, &config).await.unwrap());
    match competitor.try_acquire(&b, TTL, GRACE).await {
        Err(LeaseError::Timeout(msg)) => assert!(!msg.contains('\n'), "{msg}"),
        r => panic!("expected a lock timeout, got {r:?}"),
    }
    tx.rollback().await.unwrap();
    let second = granted(competitor.try_acquire(&b, TTL, GRACE).await.unwrap());
    assert_eq!(
        second.epoch,
        first.epoch + 1,
        "the timed-out attempt granted nothing"
    );
}
