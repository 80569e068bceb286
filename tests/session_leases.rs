//! Leases bound to the holder's database session (sql/0017) against a real
//! server: a lease granted on a lease session names its lock; when that
//! session ends the lease is free at once, whatever its ttl says; the old
//! epoch is fenced as soon as someone else is granted; the old holder's
//! renewal on a new session reports the lease lost; a waiter on the lock
//! wakes when the session ends; a lease granted without a session keeps
//! today's ttl rule.
//!
//! Every lease here lasts a minute, so only the session can free it within
//! a test.

use std::time::{Duration, Instant};

use rillflow_adapters::daemon::{LeaseStore, PgLeaseStore, PgSessionWatch, SessionWatch};
use rillflow_core::lease::{AcquireOutcome, NodeRole, RenewOutcome};
use rillflow_testkit::lease_fixtures::*;
use rillflow_testkit::session_locks::end_session;

#[tokio::test]
async fn a_lease_is_free_the_moment_its_session_ends() {
    let (mut db, plain) = setup().await;
    let pool = db.pool().await;
    let a_store = PgLeaseStore::with_session_leases(pool.clone());
    let b_store = PgLeaseStore::with_session_leases(pool.clone());
    let [a, b] = join(&plain, ["a", "b"]).await;

    let first = granted(a_store.try_acquire(&a, LONG, GRACE).await.unwrap());
    let v = view(&plain).await;
    let session = v.lease_session.expect("the lease names a session");
    assert!(session.alive, "{v:?}");
    assert!(v.holds_valid_lease("a"));
    // Alive and unexpired: b must wait, as before.
    assert_eq!(
        b_store.try_acquire(&b, LONG, GRACE).await.unwrap(),
        AcquireOutcome::Denied
    );

    end_session(&pool, session.key).await;
    let v = wait_for(&plain, "a's session gone", |v| v.leader_session_ended()).await;
    assert!(
        v.lease_remaining_ms.unwrap() > 30_000,
        "the ttl runs on: {v:?}"
    );
    assert!(!v.holds_valid_lease("a"));

    // Free with no grace, under a new epoch; the old one is fenced.
    let second = granted(b_store.try_acquire(&b, LONG, GRACE).await.unwrap());
    assert!(second.epoch > first.epoch);
    assert!(plain.begin_fenced(C, first.epoch).await.is_err());
    let v = view(&plain).await;
    assert!(v.holds_valid_lease("b"));
    assert!(
        v.since_last_failover_ms.is_some(),
        "a takeover is a failover"
    );

    // a still runs: its store opens a new session, on which the old lease
    // cannot be renewed.
    assert_eq!(
        a_store.renew(&a, first.epoch, LONG).await.unwrap(),
        RenewOutcome::Lost
    );
}

#[tokio::test]
async fn a_holder_whose_session_was_replaced_loses_the_lease_even_unchallenged() {
    let (mut db, plain) = setup().await;
    let pool = db.pool().await;
    let a_store = PgLeaseStore::with_session_leases(pool.clone());
    let [a] = join(&plain, ["a"]).await;
    let first = granted(a_store.try_acquire(&a, LONG, GRACE).await.unwrap());
    let key = view(&plain).await.lease_session.unwrap().key;
    end_session(&pool, key).await;

    // The store finds its session gone and renews on a new one, with a new
    // key: the lease bound to the old one is lost.
    assert_eq!(
        a_store.renew(&a, first.epoch, LONG).await.unwrap(),
        RenewOutcome::Lost
    );

    // Standing by, it may take the lease again at once, on the new session.
    plain
        .heartbeat(&a, NodeRole::Cold, first.epoch)
        .await
        .unwrap();
    let again = granted(a_store.try_acquire(&a, LONG, GRACE).await.unwrap());
    assert!(again.epoch > first.epoch);
    let v = view(&plain).await;
    let session = v.lease_session.unwrap();
    assert!(session.alive && session.key != key, "{v:?}");
    assert!(plain.begin_fenced(C, first.epoch).await.is_err());
    assert!(plain.begin_fenced(C, again.epoch).await.is_ok());
}

#[tokio::test]
async fn a_lease_granted_without_a_session_keeps_the_ttl_rule() {
    let (mut db, plain) = setup().await;
    let pool = db.pool().await;
    let b_store = PgLeaseStore::with_session_leases(pool.clone());
    let [a, b] = join(&plain, ["a", "b"]).await;
    // Granted on the pool (`--session-leases off`): no lock is named.
    granted(plain.try_acquire(&a, LONG, GRACE).await.unwrap());
    let v = view(&plain).await;
    assert_eq!(v.lease_session, None);
    // b, on a session of its own, waits for the ttl as before.
    assert_eq!(
        b_store.try_acquire(&b, LONG, GRACE).await.unwrap(),
        AcquireOutcome::Denied
    );
    assert!(view(&plain).await.holds_valid_lease("a"));
}

#[tokio::test]
async fn a_release_clears_the_session_and_frees_the_lease() {
    let (mut db, plain) = setup().await;
    let pool = db.pool().await;
    let a_store = PgLeaseStore::with_session_leases(pool.clone());
    let [a, b] = join(&plain, ["a", "b"]).await;
    let g = granted(a_store.try_acquire(&a, LONG, GRACE).await.unwrap());
    a_store.release(&a, g.epoch).await.unwrap();
    let v = view(&plain).await;
    assert_eq!((v.leader.as_deref(), v.lease_session), (None, None));
    granted(plain.try_acquire(&b, LONG, GRACE).await.unwrap());
}

#[tokio::test]
async fn a_waiter_wakes_when_the_session_ends_and_not_before() {
    let (mut db, plain) = setup().await;
    let pool = db.pool().await;
    let a_store = PgLeaseStore::with_session_leases(pool.clone());
    let [a] = join(&plain, ["a"]).await;
    granted(a_store.try_acquire(&a, LONG, GRACE).await.unwrap());
    let key = view(&plain).await.lease_session.unwrap().key;

    let watch = PgSessionWatch::new(&pool);
    let mut waiter = watch.open().await.unwrap();
    // Each wait gives up after the session's lock_timeout.
    sqlx::query("SET lock_timeout = '300ms'")
        .execute(&mut waiter)
        .await
        .unwrap();
    assert!(
        !watch.wait_ended(&mut waiter, key).await.unwrap(),
        "the holder is alive"
    );

    let wait = tokio::spawn(async move {
        let start = Instant::now();
        loop {
            if watch.wait_ended(&mut waiter, key).await.unwrap() {
                return start.elapsed();
            }
        }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    end_session(&pool, key).await;
    let took = tokio::time::timeout(WAIT, wait)
        .await
        .expect("the waiter wakes")
        .unwrap();
    eprintln!("woke {took:?} after starting to wait");
    // Nothing is left behind: a new exclusive lock on the key is free.
    let free: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
        .bind(key)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert!(free);
}
