//! Partition leases and worker registrations bound to the worker's session
//! (sql/0018) against a real server: a claim made on a lease session names
//! its lock; when that session ends the worker stops counting as live and
//! its leases are free at once, whatever their ttl says; the old epoch is
//! fenced once someone else claims; the old holder's renewal on a new
//! session reports the lease lost; a worker coming back on a new session
//! wakes the others; claims made without a session keep the ttl rule.
//!
//! Every lease and registration here lasts a minute, so only the session
//! can end one within a test.

use std::time::Duration;

use rillflow_adapters::ownership::{
    OwnershipError, PgOwnershipStore, WorkerSessions, CHANGES_CHANNEL,
};
use rillflow_testkit::session_locks::{end_session, session_pid};
use rillflow_testkit::TestDb;
use sqlx::postgres::PgListener;
use sqlx::PgPool;

const TTL: Duration = Duration::from_secs(60);
const P: &str = "p";

/// The session key a lease row is bound to.
async fn lease_key(pool: &PgPool, partition: i32) -> Option<i64> {
    sqlx::query_scalar(
        "SELECT lease_lock_key FROM rf_partition_leases
          WHERE projection = $1 AND partition_key = $2",
    )
    .bind(P)
    .bind(partition)
    .fetch_one(pool)
    .await
    .expect("lease row")
}

/// The session key a worker's registration is bound to.
async fn worker_key(pool: &PgPool, worker: &str) -> Option<i64> {
    sqlx::query_scalar(
        "SELECT lease_lock_key FROM rf_projection_workers WHERE projection = $1 AND worker = $2",
    )
    .bind(P)
    .bind(worker)
    .fetch_one(pool)
    .await
    .expect("worker row")
}

/// The key of the lease session `store` has open now.
async fn session_key(store: &PgOwnershipStore) -> Option<i64> {
    store
        .lease_session()
        .expect("a store with session leases")
        .key()
        .await
}

/// The next ownership notice's payload (bounded).
async fn next_notice(listener: &mut PgListener) -> String {
    let notice = tokio::time::timeout(Duration::from_secs(5), listener.recv())
        .await
        .expect("a notice")
        .unwrap();
    notice.payload().to_owned()
}

#[tokio::test]
async fn a_claim_on_a_lease_session_is_free_the_moment_the_session_ends() {
    let mut db = TestDb::migrated().await;
    let pool = db.pool().await;
    let plain = PgOwnershipStore::new(pool.clone());
    let a = PgOwnershipStore::with_session_leases(pool.clone());
    let b = PgOwnershipStore::with_session_leases(pool.clone());
    a.heartbeat(P, "a", TTL).await.unwrap();
    b.heartbeat(P, "b", TTL).await.unwrap();
    let e1 = a.claim(P, 0, "a", TTL).await.unwrap().expect("free");

    let key = session_key(&a).await.expect("a's session is open");
    assert_eq!(
        lease_key(&pool, 0).await,
        Some(key),
        "the lease names a's session"
    );
    assert_eq!(
        worker_key(&pool, "a").await,
        Some(key),
        "so does a's registration"
    );
    let (view, sessions) = plain.view_with_sessions(P, TTL).await.unwrap();
    assert_eq!(view.workers, vec!["a", "b"]);
    assert_eq!(sessions.live.get("a"), Some(&key));
    assert_eq!(view.owners().get(&0).map(String::as_str), Some("a"));
    assert_eq!(b.claim(P, 0, "b", TTL).await.unwrap(), None, "held");

    end_session(&pool, key).await;
    // a's registration and lease still have most of a minute to run, but
    // its session is gone: it is not live and holds nothing.
    let (view, sessions) = plain.view_with_sessions(P, TTL).await.unwrap();
    assert_eq!(view.workers, vec!["b"]);
    assert!(view.holders.is_empty(), "{view:?}");
    // Listed as dead (for b, its watcher by name, to announce) until its
    // heartbeat is older than the ttl.
    assert_eq!(sessions.ended.get("a"), Some(&key));
    assert!(!sessions.live.contains_key("a"));
    let short = Duration::from_millis(1);
    assert!(plain
        .view_with_sessions(P, short)
        .await
        .unwrap()
        .1
        .ended
        .is_empty());

    let e2 = b
        .claim(P, 0, "b", TTL)
        .await
        .unwrap()
        .expect("free at once");
    assert!(e2 > e1);
    assert!(matches!(
        plain.begin_fenced(P, 0, e1).await,
        Err(OwnershipError::Fenced { epoch, .. }) if epoch == e1
    ));
    plain
        .begin_fenced(P, 0, e2)
        .await
        .unwrap()
        .rollback()
        .await
        .unwrap();
    // a still runs: its store opens a new session, on which the lease
    // bound to the old one cannot be renewed.
    assert!(!a.renew(P, 0, e1, TTL).await.unwrap());
}

#[tokio::test]
async fn a_worker_whose_session_was_replaced_loses_its_lease_and_claims_again() {
    let mut db = TestDb::migrated().await;
    let pool = db.pool().await;
    let plain = PgOwnershipStore::new(pool.clone());
    let a = PgOwnershipStore::with_session_leases(pool.clone());
    let e1 = a.claim(P, 0, "a", TTL).await.unwrap().unwrap();
    assert!(
        a.renew(P, 0, e1, TTL).await.unwrap(),
        "renewed on its session"
    );
    let old = lease_key(&pool, 0).await.expect("bound");
    end_session(&pool, old).await;

    // Unchallenged, the lease is still lost: renewals of a bound lease
    // only count on the session that holds its lock.
    assert!(!a.renew(P, 0, e1, TTL).await.unwrap());
    let e2 = a.claim(P, 0, "a", TTL).await.unwrap().expect("claimable");
    assert!(e2 > e1);
    let new = lease_key(&pool, 0).await.expect("bound again");
    assert_ne!(new, old);
    assert_eq!(session_key(&a).await, Some(new));
    assert!(a.renew(P, 0, e2, TTL).await.unwrap());
    assert!(plain.begin_fenced(P, 0, e1).await.is_err());
}

#[tokio::test]
async fn claims_and_heartbeats_without_a_session_keep_the_ttl_rule() {
    let mut db = TestDb::migrated().await;
    let pool = db.pool().await;
    let plain = PgOwnershipStore::new(pool.clone());
    let b = PgOwnershipStore::with_session_leases(pool.clone());
    // `--session-leases off`: no lock named.
    plain.heartbeat(P, "a", TTL).await.unwrap();
    let e1 = plain.claim(P, 0, "a", TTL).await.unwrap().unwrap();
    assert_eq!(lease_key(&pool, 0).await, None);
    assert_eq!(worker_key(&pool, "a").await, None);
    // b, on a session of its own, waits for the ttl as before.
    assert_eq!(b.claim(P, 0, "b", TTL).await.unwrap(), None);
    let (view, sessions) = plain.view_with_sessions(P, TTL).await.unwrap();
    assert_eq!(view.workers, vec!["a"]);
    assert_eq!(sessions, WorkerSessions::default(), "nothing to watch");
    assert!(plain.renew(P, 0, e1, TTL).await.unwrap());
    // A release clears a bound lease's session too.
    let e = b.claim(P, 1, "b", TTL).await.unwrap().unwrap();
    assert!(lease_key(&pool, 1).await.is_some());
    b.release(P, 1, e).await.unwrap();
    assert_eq!(lease_key(&pool, 1).await, None);
}

/// The fence is the safety net while a worker's session ends under a
/// running batch: the batch still commits (its epoch is the current one),
/// the next claim waits for it, and from then on the old epoch is refused.
#[tokio::test]
async fn a_batch_under_an_ended_session_commits_only_until_the_partition_moves() {
    let mut db = TestDb::migrated().await;
    let pool = db.pool().await;
    let plain = PgOwnershipStore::new(pool.clone());
    let a = PgOwnershipStore::with_session_leases(pool.clone());
    let b = PgOwnershipStore::with_session_leases(pool.clone());
    let e1 = a.claim(P, 0, "a", TTL).await.unwrap().unwrap();
    // a's batches run on the pool, not on its lease session.
    let batch = a.begin_fenced(P, 0, e1).await.unwrap();
    end_session(&pool, lease_key(&pool, 0).await.unwrap()).await;

    let claimer = {
        let b = b.clone();
        tokio::spawn(async move { b.claim(P, 0, "b", TTL).await })
    };
    // The claim waits for the batch's FOR SHARE lock on the lease row.
    let waiting = wait_until_blocked(&pool).await;
    assert!(waiting, "the claim waits for the fenced batch");
    batch.commit().await.unwrap();
    let e2 = claimer
        .await
        .unwrap()
        .unwrap()
        .expect("free once the batch ended");
    assert!(e2 > e1);
    assert!(matches!(
        plain.begin_fenced(P, 0, e1).await,
        Err(OwnershipError::Fenced { .. })
    ));
}

/// True once some backend of this database waits on a lock (bounded).
async fn wait_until_blocked(pool: &PgPool) -> bool {
    for _ in 0..200 {
        let blocked: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM pg_stat_activity
                             WHERE datname = current_database() AND wait_event_type = 'Lock')",
        )
        .fetch_one(pool)
        .await
        .unwrap();
        if blocked {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    false
}

/// A worker coming back on a new session is a join: the others are woken
/// to rebalance. A heartbeat on the same live session is not.
#[tokio::test]
async fn a_worker_back_on_a_new_session_wakes_the_others() {
    let mut db = TestDb::migrated().await;
    let pool = db.pool().await;
    let a = PgOwnershipStore::with_session_leases(pool.clone());
    let mut listener = PgListener::connect_with(&pool).await.unwrap();
    listener.listen(CHANGES_CHANNEL).await.unwrap();
    a.heartbeat(P, "a", TTL).await.unwrap();
    assert_eq!(next_notice(&mut listener).await, P, "a joined");
    a.heartbeat(P, "a", TTL).await.unwrap();
    // Notices arrive in commit order: a marker sent after the second
    // heartbeat comes next only if that heartbeat sent none.
    a.announce("marker").await.unwrap();
    assert_eq!(
        next_notice(&mut listener).await,
        "marker",
        "a beat again, on the same session"
    );

    let key = worker_key(&pool, "a").await.unwrap();
    end_session(&pool, key).await;
    assert_eq!(session_pid(&pool, key).await, None);
    a.heartbeat(P, "a", TTL).await.unwrap();
    assert_eq!(
        next_notice(&mut listener).await,
        P,
        "a is back on a new session"
    );
    assert_ne!(worker_key(&pool, "a").await, Some(key));
}
