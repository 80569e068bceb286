//! The model's partition leases answer as Postgres does: the checks of
//! `tests/ownership_store.rs` (run there against `PgOwnershipStore`), here
//! against `SimOwnershipStore` and the `db` host, in simulated time. The
//! fence is a batch opened on a connection, as the runner opens one.

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rillflow_adapters::ownership::OwnershipStore;
use rillflow_sim::client::db_conn::DbConn;
use rillflow_sim::client::sim_ownership_store::SimOwnershipStore;
use rillflow_sim::db::{self, SessionTimeouts};
use rillflow_sim::harness::trace::Trace;
use rillflow_sim::model::db::ModelDb;
use rillflow_sim::protocol::{LogRequest, OwnershipRequest, Reply, Request};

const TTL: Duration = Duration::from_secs(30);

fn store() -> SimOwnershipStore {
    SimOwnershipStore::new("tester".to_owned(), Trace::default())
}

/// Runs `check` as a client of a `db` host whose projection `p` has one
/// partition and whose log holds one event.
fn in_sim<F: Future<Output = ()> + 'static>(check: impl FnOnce() -> F + 'static) {
    let _alone = rillflow_sim::harness::exclusive::exclusive();
    let mut sim = turmoil::Builder::new()
        .simulation_duration(Duration::from_secs(60))
        .tick_duration(Duration::from_millis(1))
        .rng_seed(1)
        .build();
    let mut model = ModelDb::default();
    model.ownership.projection.register("p", 1);
    let db = Arc::new(Mutex::new(model));
    let timeouts = SessionTimeouts {
        lock: Duration::from_millis(500),
        idle_in_transaction: Duration::from_secs(1),
    };
    sim.host("db", move || {
        db::serve(db.clone(), Trace::default(), timeouts)
    });
    sim.client("tester", async move {
        check().await;
        Ok(())
    });
    sim.run().expect("the checks pass");
}

async fn append() {
    let Ok(Reply::AppendStarted { xid }) = DbConn::once(&Request::Log(LogRequest::AppendBegin {
        stream: 1,
        events: 1,
    }))
    .await
    else {
        panic!("the append starts");
    };
    let ended = DbConn::once(&Request::Log(LogRequest::AppendEnd { xid, commit: true })).await;
    assert_eq!(ended, Ok(Reply::Done));
}

fn begin(epoch: u64) -> Request {
    Request::Ownership(OwnershipRequest::PartitionBegin {
        projection: "p".to_owned(),
        worker: "a".to_owned(),
        partition: 0,
        total: 1,
        epoch,
        limit: 10,
    })
}

#[test]
fn one_of_many_concurrent_claims_wins() {
    in_sim(|| async {
        let claims: Vec<_> = (0..10)
            .map(|i| {
                tokio::spawn(async move { store().claim("p", 3, &format!("w{i}"), TTL).await })
            })
            .collect();
        let mut won = Vec::new();
        for c in claims {
            if let Some(epoch) = c.await.unwrap().unwrap() {
                won.push(epoch);
            }
        }
        assert_eq!(won, vec![1], "exactly one claim, epoch 1");
        let view = store().sync("p", "x", TTL).await.unwrap();
        assert_eq!(view.owners().len(), 1);
    });
}

#[test]
fn epochs_grow_and_a_released_or_expired_lease_moves_on() {
    in_sim(|| async {
        let store = store();
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
        assert!(!store.renew("p", 0, e2, TTL).await.unwrap());
        assert!(store.sync("p", "x", TTL).await.unwrap().owners().is_empty());
        let e3 = store.claim("p", 0, "a", TTL).await.unwrap().unwrap();
        assert_eq!(e3, e2 + 1);
        store.release("p", 0, e2).await.unwrap();
        let owners = store.sync("p", "x", TTL).await.unwrap().owners();
        assert_eq!(owners.get(&0).map(String::as_str), Some("a"));
    });
}

#[test]
fn the_fence_admits_only_the_current_epoch_and_a_claim_waits_for_it() {
    in_sim(|| async {
        append().await;
        let e1 = store()
            .claim("p", 0, "a", Duration::from_millis(300))
            .await
            .unwrap()
            .unwrap();
        let mut batch = DbConn::connect().await.unwrap();
        let Ok(Reply::BatchOpened { txn, .. }) = batch.call(&begin(e1)).await else {
            panic!("the fence admits the current epoch");
        };
        tokio::time::sleep(Duration::from_millis(400)).await;
        // Expired, but the open batch holds the row: b's claim waits for
        // it rather than overlapping it.
        let claimer = tokio::spawn(async { store().claim("p", 0, "b", TTL).await });
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(!claimer.is_finished(), "the claim waits for the batch");
        let committed = batch
            .call(&Request::Ownership(OwnershipRequest::PartitionCommit {
                txn,
            }))
            .await;
        assert_eq!(committed, Ok(Reply::Batch { applied: 1 }));
        let e2 = claimer.await.unwrap().unwrap().unwrap();
        assert_eq!(e2, e1 + 1);
        assert_eq!(DbConn::once(&begin(e1)).await, Ok(Reply::Fenced));
        assert_eq!(DbConn::once(&begin(e2)).await, Ok(Reply::BatchIdle));
    });
}

#[test]
fn the_view_shows_live_workers_by_the_database_clock() {
    in_sim(|| async {
        let store = store();
        store.sync("p", "b", TTL).await.unwrap();
        store.sync("q", "c", TTL).await.unwrap();
        let view = store.sync("p", "a", TTL).await.unwrap();
        assert_eq!(view.workers, vec!["a", "b"]);
        assert_eq!(view.partitions, 1);
        tokio::time::sleep(Duration::from_millis(300)).await;
        let short = Duration::from_millis(200);
        let view = store.sync("p", "a", short).await.unwrap();
        assert_eq!(view.workers, vec!["a"], "b's heartbeat is too old");
        store.leave("p", "a").await.unwrap();
        assert_eq!(store.sync("p", "b", TTL).await.unwrap().workers, vec!["b"]);
    });
}
