//! The ownership contract, written once and run against Postgres
//! (`tests/ownership_contract.rs`) and the simulation's model database
//! (`sim/tests/ownership_contract.rs`), so the model of sql/0008's leases
//! cannot drift from what Postgres does. Each check panics on a breach.
//!
//! Checks sleep with `tokio::time`: real time against Postgres, simulated
//! time under turmoil. The model's lock timeout is 0.5 s and its idle
//! transactions end after 1 s, so whatever waits on a lock, or holds a
//! batch open, does so for less.

use std::time::Duration;

use tokio::time::{sleep, timeout};

use super::contract::OwnershipStore;
use super::contract_harness::{Fence, OwnershipHarness, Resize};
use super::notices::ChangeNotices;

const TTL: Duration = Duration::from_secs(30);
/// Long enough for any repartition the checks expect to go through.
const WAIT: Duration = Duration::from_secs(5);
/// Short enough to give up on a batch held open, within the lock timeout.
const SHORT_WAIT: Duration = Duration::from_millis(200);

/// Every check, by name.
pub const CHECKS: &[&str] = &[
    "one_of_many_concurrent_claims_wins",
    "epochs_grow_and_a_released_or_expired_lease_moves_on",
    "the_fence_admits_only_the_current_epoch_and_a_claim_waits_for_it",
    "the_fence_refuses_an_expired_or_released_lease",
    "the_view_shows_live_workers_by_the_database_clock",
    "changes_are_announced_once_each",
    "a_repartition_frees_every_lease_and_epochs_keep_growing",
    "a_repartition_waits_for_a_running_batch_or_changes_nothing",
];

/// Declares one `#[test]` per ownership check, each calling `$run(name)`
/// (a plain function that runs the named check against its side), and a
/// test that the list matches [`CHECKS`]. Both sides' test files use it, so
/// neither can skip a check.
#[macro_export]
macro_rules! ownership_contract_tests {
    ($run:path) => {
        $crate::ownership_contract_tests!(
            @each $run;
            one_of_many_concurrent_claims_wins,
            epochs_grow_and_a_released_or_expired_lease_moves_on,
            the_fence_admits_only_the_current_epoch_and_a_claim_waits_for_it,
            the_fence_refuses_an_expired_or_released_lease,
            the_view_shows_live_workers_by_the_database_clock,
            changes_are_announced_once_each,
            a_repartition_frees_every_lease_and_epochs_keep_growing,
            a_repartition_waits_for_a_running_batch_or_changes_nothing,
        );
    };
    (@each $run:path; $($name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                $run(stringify!($name));
            }
        )*

        #[test]
        fn every_check_is_run() {
            let here: &[&str] = &[$(stringify!($name)),*];
            assert_eq!(here, $crate::ownership::store_contract::CHECKS);
        }
    };
}

/// Runs the check called `name` on `harness`'s side.
pub async fn run<H: OwnershipHarness>(name: &str, harness: &H) {
    match name {
        "one_of_many_concurrent_claims_wins" => one_claim_wins(harness).await,
        "epochs_grow_and_a_released_or_expired_lease_moves_on" => epochs_grow(harness).await,
        "the_fence_admits_only_the_current_epoch_and_a_claim_waits_for_it" => {
            fence_and_claim(harness).await
        }
        "the_fence_refuses_an_expired_or_released_lease" => fence_refuses(harness).await,
        "the_view_shows_live_workers_by_the_database_clock" => live_workers(harness).await,
        "changes_are_announced_once_each" => announced(harness).await,
        "a_repartition_frees_every_lease_and_epochs_keep_growing" => {
            repartition_frees(harness).await
        }
        "a_repartition_waits_for_a_running_batch_or_changes_nothing" => {
            repartition_waits(harness).await
        }
        other => panic!("no ownership check named {other:?}"),
    }
}

async fn claim<S: OwnershipStore>(store: &S, partition: u32, worker: &str, ttl: Duration) -> u64 {
    store
        .claim("p", partition, worker, ttl)
        .await
        .expect("claim")
        .unwrap_or_else(|| panic!("{worker} was refused free partition {partition}"))
}

async fn admitted<H: OwnershipHarness>(h: &H, partition: u32, total: u32, epoch: u64) -> H::Batch {
    match h.begin_fenced("p", partition, total, epoch).await {
        Fence::Admitted(batch) => batch,
        Fence::Refused => panic!("the fence refused p{partition} under its epoch {epoch}"),
    }
}

async fn refused<H: OwnershipHarness>(h: &H, partition: u32, total: u32, epoch: u64, why: &str) {
    match h.begin_fenced("p", partition, total, epoch).await {
        Fence::Refused => {}
        Fence::Admitted(batch) => {
            h.commit(batch).await;
            panic!("the fence admitted p{partition} under epoch {epoch}: {why}");
        }
    }
}

async fn owner<S: OwnershipStore>(store: &S, partition: u32) -> Option<String> {
    let view = store.sync("p", "observer", TTL).await.expect("sync");
    view.owners().get(&partition).cloned()
}

async fn one_claim_wins<H: OwnershipHarness>(h: &H) {
    let claims: Vec<_> = (0..10)
        .map(|i| {
            let store = h.store();
            tokio::spawn(async move { store.claim("p", 3, &format!("w{i}"), TTL).await })
        })
        .collect();
    let mut won = Vec::new();
    for c in claims {
        if let Some(epoch) = c.await.expect("the claim's task").expect("claim") {
            won.push(epoch);
        }
    }
    assert_eq!(won, vec![1], "exactly one claim, epoch 1");
    let view = h.store().sync("p", "observer", TTL).await.expect("sync");
    assert_eq!(view.owners().len(), 1);
}

async fn epochs_grow<H: OwnershipHarness>(h: &H) {
    let store = h.store();
    let e1 = claim(&store, 0, "a", TTL).await;
    assert_eq!(e1, 1, "a partition's first grant has epoch 1");
    let held = store.claim("p", 0, "b", TTL).await.expect("claim");
    assert_eq!(held, None, "a held lease is not granted twice");
    assert!(store.renew("p", 0, e1, TTL).await.expect("renew"));
    assert!(
        !store.renew("p", 0, e1 + 1, TTL).await.expect("renew"),
        "not held under that epoch"
    );
    store.release("p", 0, e1).await.expect("release");
    assert!(
        !store.renew("p", 0, e1, TTL).await.expect("renew"),
        "released"
    );
    let e2 = claim(&store, 0, "b", Duration::from_millis(200)).await;
    assert_eq!(e2, e1 + 1, "a released lease is free at once");
    sleep(Duration::from_millis(400)).await;
    // Expired by the database clock: renewing fails, another may claim.
    assert!(!store.renew("p", 0, e2, TTL).await.expect("renew"));
    assert_eq!(
        owner(&store, 0).await,
        None,
        "an expired lease shows no owner"
    );
    let e3 = claim(&store, 0, "a", TTL).await;
    assert_eq!(e3, e2 + 1);
    store
        .release("p", 0, e2)
        .await
        .expect("a stale release is a no-op");
    assert_eq!(owner(&store, 0).await.as_deref(), Some("a"));
}

async fn fence_and_claim<H: OwnershipHarness>(h: &H) {
    h.register("p", 1).await;
    let store = h.store();
    let e1 = claim(&store, 0, "a", Duration::from_millis(300)).await;
    let batch = admitted(h, 0, 1, e1).await;
    sleep(Duration::from_millis(400)).await;
    // Expired, but a's open batch holds the row: b's claim waits for it
    // rather than overlapping it.
    let claimer = {
        let store = h.store();
        tokio::spawn(async move { store.claim("p", 0, "b", TTL).await })
    };
    sleep(Duration::from_millis(300)).await;
    assert!(!claimer.is_finished(), "the claim waits for the batch");
    h.commit(batch).await;
    let e2 = claimer
        .await
        .expect("the claim's task")
        .expect("claim")
        .expect("the expired lease is free once the batch ends");
    assert_eq!(e2, e1 + 1);
    refused(h, 0, 1, e1, "the lease moved on").await;
    let batch = admitted(h, 0, 1, e2).await;
    h.commit(batch).await;
}

async fn fence_refuses<H: OwnershipHarness>(h: &H) {
    h.register("p", 1).await;
    let store = h.store();
    let ttl = Duration::from_secs(1);
    let e1 = claim(&store, 0, "a", ttl).await;
    refused(h, 0, 1, e1 + 1, "an epoch never granted").await;
    let batch = admitted(h, 0, 1, e1).await;
    h.commit(batch).await;
    sleep(ttl).await;
    refused(h, 0, 1, e1, "the lease ran out by the database clock").await;
    let e2 = claim(&store, 0, "a", TTL).await;
    store.release("p", 0, e2).await.expect("release");
    refused(h, 0, 1, e2, "the lease was released").await;
}

async fn live_workers<H: OwnershipHarness>(h: &H) {
    h.register("p", 1).await;
    let store = h.store();
    store.sync("p", "b", TTL).await.expect("sync");
    store.sync("q", "c", TTL).await.expect("sync");
    let view = store.sync("p", "a", TTL).await.expect("sync");
    assert_eq!(view.workers, vec!["a", "b"], "live workers of p, by name");
    assert_eq!(view.partitions, 1, "the registered count");
    let other = store.sync("q", "c", TTL).await.expect("sync");
    assert_eq!(other.partitions, 0, "q is not registered");
    sleep(Duration::from_millis(300)).await;
    let short = Duration::from_millis(200);
    let view = store.sync("p", "a", short).await.expect("sync");
    assert_eq!(view.workers, vec!["a"], "b's heartbeat is too old");
    store.leave("p", "a").await.expect("leave");
    let view = store.sync("p", "b", TTL).await.expect("sync");
    assert_eq!(view.workers, vec!["b"], "a left; b is back");
}

/// The next notice, which must name `projection`.
async fn next_is<N: ChangeNotices>(
    notices: &N,
    listener: &mut N::Listener,
    projection: &str,
    after: &str,
) {
    let notice = timeout(Duration::from_secs(5), notices.next(listener))
        .await
        .unwrap_or_else(|_| panic!("no notice for {projection:?} after {after}"))
        .expect("a notice");
    assert_eq!(notice, projection, "the notice after {after}");
}

/// Shows that the step just taken announced nothing: a join to `q`, which
/// announces, must be the next notice.
async fn quiet<S: OwnershipStore, N: ChangeNotices>(
    store: &S,
    notices: &N,
    listener: &mut N::Listener,
    joins: &mut u32,
) {
    *joins += 1;
    store
        .sync("q", &format!("q{joins}"), TTL)
        .await
        .expect("sync");
    next_is(notices, listener, "q", "a join to q").await;
}

async fn announced<H: OwnershipHarness>(h: &H) {
    h.register("p", 1).await;
    let store = h.store();
    let notices = h.notices();
    let mut listener = notices.listen().await.expect("listen");
    let mut joins = 0;
    let l = &mut listener;
    let n = &notices;
    store.sync("p", "a", TTL).await.expect("sync");
    next_is(n, l, "p", "a's first heartbeat").await;
    store.sync("p", "a", TTL).await.expect("sync");
    quiet(&store, n, l, &mut joins).await;
    let short = Duration::from_millis(200);
    store.sync("p", "b", short).await.expect("sync");
    next_is(n, l, "p", "b's first heartbeat").await;
    sleep(Duration::from_millis(300)).await;
    store.sync("p", "b", short).await.expect("sync");
    next_is(n, l, "p", "b's heartbeat after it went stale").await;
    let e1 = claim(&store, 0, "a", TTL).await;
    quiet(&store, n, l, &mut joins).await;
    store.release("p", 0, e1 + 1).await.expect("release");
    quiet(&store, n, l, &mut joins).await;
    store.release("p", 0, e1).await.expect("release");
    next_is(n, l, "p", "a release").await;
    store.leave("p", "a").await.expect("leave");
    next_is(n, l, "p", "a leave").await;
    store.leave("p", "a").await.expect("leave");
    quiet(&store, n, l, &mut joins).await;
    let resized = h.repartition("p", 2, WAIT).await;
    assert!(matches!(resized, Resize::Done { changed: true, .. }));
    next_is(n, l, "p", "a repartition").await;
    let same = h.repartition("p", 2, WAIT).await;
    assert!(matches!(same, Resize::Done { changed: false, .. }));
    quiet(&store, n, l, &mut joins).await;
}

async fn repartition_frees<H: OwnershipHarness>(h: &H) {
    h.register("p", 2).await;
    let store = h.store();
    let e0 = claim(&store, 0, "a", TTL).await;
    let e1 = claim(&store, 1, "b", TTL).await;
    let resized = h.repartition("p", 3, WAIT).await;
    assert_eq!(
        resized,
        Resize::Done {
            from: 2,
            to: 3,
            changed: true
        }
    );
    let view = store.sync("p", "a", TTL).await.expect("sync");
    assert_eq!(view.partitions, 3);
    assert!(view.holders.is_empty(), "every lease freed: {view:?}");
    assert!(!store.renew("p", 0, e0, TTL).await.expect("renew"));
    refused(h, 1, 3, e1, "the lease was freed by the repartition").await;
    let again = claim(&store, 0, "b", TTL).await;
    assert_eq!(again, e0 + 1, "epochs keep growing across partition counts");
    assert_eq!(claim(&store, 2, "a", TTL).await, 1, "a new partition");
    let same = h.repartition("p", 3, WAIT).await;
    assert_eq!(
        same,
        Resize::Done {
            from: 3,
            to: 3,
            changed: false
        }
    );
    let view = store.sync("p", "a", TTL).await.expect("sync");
    assert_eq!(
        view.owners().into_iter().collect::<Vec<_>>(),
        vec![(0, "b".to_owned()), (2, "a".to_owned())],
        "an unchanged count frees nothing"
    );
}

async fn repartition_waits<H: OwnershipHarness>(h: &H) {
    h.register("p", 1).await;
    let store = h.store();
    let epoch = claim(&store, 0, "a", TTL).await;
    let batch = admitted(h, 0, 1, epoch).await;
    assert_eq!(h.repartition("p", 2, SHORT_WAIT).await, Resize::Busy);
    let view = store.sync("p", "a", TTL).await.expect("sync");
    assert_eq!(
        view.partitions, 1,
        "a repartition that gave up changed nothing"
    );
    assert_eq!(view.owners().get(&0).map(String::as_str), Some("a"));
    h.commit(batch).await;
    let resized = h.repartition("p", 2, WAIT).await;
    assert_eq!(
        resized,
        Resize::Done {
            from: 1,
            to: 2,
            changed: true
        }
    );
}
