//! Per-partition leases on Postgres: one owner at a time, epochs that only
//! grow, expiry by the database clock, fences that refuse a stale epoch,
//! and the live-worker view the fair-share rule reads.

use std::time::Duration;

use rillflow_adapters::ownership::{OwnershipError, PgOwnershipStore};
use rillflow_testkit::TestDb;

const TTL: Duration = Duration::from_secs(30);

#[tokio::test]
async fn one_of_many_concurrent_claims_wins() {
    let mut db = TestDb::migrated().await;
    let store = PgOwnershipStore::new(db.pool_of(12).await);
    let claims: Vec<_> = (0..10)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move { store.claim("p", 3, &format!("w{i}"), TTL).await })
        })
        .collect();
    let mut won = Vec::new();
    for c in claims {
        if let Some(epoch) = c.await.unwrap().unwrap() {
            won.push(epoch);
        }
    }
    assert_eq!(won, vec![1], "exactly one claim, epoch 1");
    let view = store.view("p", TTL).await.unwrap();
    assert_eq!(view.owners().len(), 1);
}

#[tokio::test]
async fn epochs_grow_and_a_released_or_expired_lease_moves_on() {
    let mut db = TestDb::migrated().await;
    let store = PgOwnershipStore::new(db.pool().await);
    let e1 = store.claim("p", 0, "a", TTL).await.unwrap().unwrap();
    assert_eq!(store.claim("p", 0, "b", TTL).await.unwrap(), None, "held");
    assert!(store.renew("p", 0, e1, TTL).await.unwrap());
    store.release("p", 0, e1).await.unwrap();
    assert!(!store.renew("p", 0, e1, TTL).await.unwrap(), "released");
    let e2 = store
        .claim("p", 0, "b", Duration::from_millis(200))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(e2, e1 + 1);
    tokio::time::sleep(Duration::from_millis(400)).await;
    // Expired by the database clock: renewing fails, another may claim.
    assert!(!store.renew("p", 0, e2, TTL).await.unwrap());
    assert!(store.view("p", TTL).await.unwrap().owners().is_empty());
    let e3 = store.claim("p", 0, "a", TTL).await.unwrap().unwrap();
    assert_eq!(e3, e2 + 1);
    // The old epoch's release changes nothing.
    store.release("p", 0, e2).await.unwrap();
    assert_eq!(
        store
            .view("p", TTL)
            .await
            .unwrap()
            .owners()
            .get(&0)
            .map(String::as_str),
        Some("a")
    );
}

#[tokio::test]
async fn the_fence_admits_only_the_current_epoch_and_a_claim_waits_for_it() {
    let mut db = TestDb::migrated().await;
    let store = PgOwnershipStore::new(db.pool().await);
    let e1 = store
        .claim("p", 1, "a", Duration::from_millis(300))
        .await
        .unwrap()
        .unwrap();
    let tx = store.begin_fenced("p", 1, e1).await.unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    // Expired, but a's open fenced transaction holds the row: b's claim
    // waits for it rather than overlapping it.
    let claimer = {
        let store = store.clone();
        tokio::spawn(async move { store.claim("p", 1, "b", TTL).await })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !claimer.is_finished(),
        "the claim waits for the fenced transaction"
    );
    tx.commit().await.unwrap();
    let e2 = claimer.await.unwrap().unwrap().unwrap();
    assert_eq!(e2, e1 + 1);
    assert!(matches!(
        store.begin_fenced("p", 1, e1).await,
        Err(OwnershipError::Fenced { epoch, .. }) if epoch == e1
    ));
    store
        .begin_fenced("p", 1, e2)
        .await
        .unwrap()
        .rollback()
        .await
        .unwrap();
}

#[tokio::test]
async fn the_view_shows_live_workers_by_the_database_clock() {
    let mut db = TestDb::migrated().await;
    let store = PgOwnershipStore::new(db.pool().await);
    store.heartbeat("p", "b", TTL).await.unwrap();
    store.heartbeat("p", "a", TTL).await.unwrap();
    store.heartbeat("q", "c", TTL).await.unwrap();
    assert_eq!(store.view("p", TTL).await.unwrap().workers, vec!["a", "b"]);
    tokio::time::sleep(Duration::from_millis(300)).await;
    store.heartbeat("p", "a", TTL).await.unwrap();
    let short = Duration::from_millis(200);
    assert_eq!(
        store.view("p", short).await.unwrap().workers,
        vec!["a"],
        "b's heartbeat is too old"
    );
    store.leave("p", "a").await.unwrap();
    assert!(store.view("p", TTL).await.unwrap().workers == vec!["b"]);
}
