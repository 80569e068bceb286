//! The lease store contract for leases bound to the holder's session
//! (sql/0017), written once and run against Postgres
//! (`tests/lease_contract.rs`) and the simulation's model database
//! (`sim/tests/contract.rs`), like [`contract`](super::contract).
//!
//! Each daemon has a lease session of its own, so the checks need a store
//! per node and a way to end a node's session from outside, as
//! `pg_terminate_backend` does: a [`SessionHarness`]. Leases here last a
//! minute, so only a session can free one within a check.

use std::time::Duration;

use async_trait::async_trait;
use rillflow_core::lease::{AcquireOutcome, ClusterView, LeaseSession, NodeRole, RenewOutcome};
use tokio::time::sleep;

use super::contract::join;
use super::lease_store::{FencedWrites, LeaseStore, NodeIdentity};

const LONG: Duration = Duration::from_secs(60);
const GRACE: Duration = Duration::from_millis(500);
/// How long the end of a session may take to show.
const WAIT: Duration = Duration::from_secs(5);

/// What the session checks run on.
#[async_trait]
pub trait SessionHarness: Send + Sync {
    /// A lease store of either kind.
    type Store: LeaseStore + FencedWrites;

    /// A store whose grants and renewals run on a lease session of its own
    /// (a daemon with `--session-leases on`).
    fn session_store(&self, node: &str) -> Self::Store;

    /// A store without a lease session: its grants are judged by their
    /// ttl alone (`--session-leases off`).
    fn plain_store(&self) -> Self::Store;

    /// Ends the database session that holds the lock `key`, as
    /// `pg_terminate_backend` of its backend does.
    async fn end_session(&self, key: i64);
}

/// Every session check, by name.
pub const SESSION_CHECKS: &[&str] = &[
    "a_grant_on_a_session_is_bound_to_its_lock",
    "a_lease_is_free_the_moment_its_session_ends",
    "a_bound_lease_is_renewed_only_on_its_session",
    "a_release_clears_the_session",
    "a_grant_without_a_session_keeps_the_ttl_rule",
];

/// Declares one `#[test]` per session check, each calling `$run(name)`,
/// and a test that the list matches [`SESSION_CHECKS`].
#[macro_export]
macro_rules! lease_session_contract_tests {
    ($run:path) => {
        $crate::lease_session_contract_tests!(
            @each $run;
            a_grant_on_a_session_is_bound_to_its_lock,
            a_lease_is_free_the_moment_its_session_ends,
            a_bound_lease_is_renewed_only_on_its_session,
            a_release_clears_the_session,
            a_grant_without_a_session_keeps_the_ttl_rule,
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
        fn every_session_check_is_run() {
            let here: &[&str] = &[$(stringify!($name)),*];
            assert_eq!(here, $crate::daemon::contract_sessions::SESSION_CHECKS);
        }
    };
}

/// Runs the session check called `name` on `harness`, in `cluster`.
pub async fn run<H: SessionHarness>(name: &str, harness: &H, cluster: &str) {
    match name {
        "a_grant_on_a_session_is_bound_to_its_lock" => bound(harness, cluster).await,
        "a_lease_is_free_the_moment_its_session_ends" => freed(harness, cluster).await,
        "a_bound_lease_is_renewed_only_on_its_session" => renewed(harness, cluster).await,
        "a_release_clears_the_session" => released(harness, cluster).await,
        "a_grant_without_a_session_keeps_the_ttl_rule" => ttl_only(harness, cluster).await,
        other => panic!("no session check named {other:?}"),
    }
}

async fn epoch_of<S: LeaseStore>(store: &S, node: &NodeIdentity) -> u64 {
    match store
        .try_acquire(node, LONG, GRACE)
        .await
        .expect("try_acquire")
    {
        AcquireOutcome::Granted(g) => g.epoch,
        AcquireOutcome::Denied => panic!("{} was denied a free lease", node.node),
    }
}

async fn denied<S: LeaseStore>(store: &S, node: &NodeIdentity, why: &str) {
    let outcome = store
        .try_acquire(node, LONG, GRACE)
        .await
        .expect("try_acquire");
    assert_eq!(outcome, AcquireOutcome::Denied, "{why}");
}

/// The cluster as `observer`, a standby, sees it.
async fn view<S: LeaseStore>(store: &S, observer: &NodeIdentity) -> ClusterView {
    store
        .heartbeat(observer, NodeRole::Cold, 0)
        .await
        .expect("heartbeat")
}

fn session_of(v: &ClusterView) -> LeaseSession {
    v.lease_session
        .unwrap_or_else(|| panic!("the lease names a session: {v:?}"))
}

/// Polls until the view shows the leader's session ended.
async fn ended<S: LeaseStore>(store: &S, observer: &NodeIdentity) -> ClusterView {
    let step = Duration::from_millis(10);
    let mut waited = Duration::ZERO;
    loop {
        let v = view(store, observer).await;
        if v.leader_session_ended() {
            return v;
        }
        assert!(waited < WAIT, "the session still shows alive: {v:?}");
        sleep(step).await;
        waited += step;
    }
}

async fn bound<H: SessionHarness>(h: &H, cluster: &str) {
    let plain = h.plain_store();
    let ids = join(&plain, cluster, &["a", "b", "o"]).await;
    let (a, b, o) = (&ids[0], &ids[1], &ids[2]);
    let (a_store, b_store) = (h.session_store("a"), h.session_store("b"));
    let epoch = epoch_of(&a_store, a).await;
    let v = view(&plain, o).await;
    assert!(session_of(&v).alive, "{v:?}");
    assert_eq!(v.live_leader_session(), Some(session_of(&v).key));
    assert!(v.holds_valid_lease("a"));
    denied(
        &b_store,
        b,
        "a bound lease whose session is alive is not free",
    )
    .await;
    match a_store.renew(a, epoch, LONG).await.expect("renew") {
        RenewOutcome::Renewed { .. } => {}
        RenewOutcome::Lost => panic!("the holder renews on its own session"),
    }
}

async fn freed<H: SessionHarness>(h: &H, cluster: &str) {
    let plain = h.plain_store();
    let ids = join(&plain, cluster, &["a", "b", "o"]).await;
    let (a, b, o) = (&ids[0], &ids[1], &ids[2]);
    let (a_store, b_store) = (h.session_store("a"), h.session_store("b"));
    let first = epoch_of(&a_store, a).await;
    let old = session_of(&view(&plain, o).await);
    h.end_session(old.key).await;
    let v = ended(&plain, o).await;
    assert!(
        v.lease_remaining_ms.is_some_and(|ms| ms > 30_000),
        "the ttl runs on: {v:?}"
    );
    assert!(!v.holds_valid_lease("a"), "{v:?}");
    assert_eq!(v.live_leader_session(), None);
    let second = epoch_of(&b_store, b).await;
    assert!(
        second > first,
        "free at once, without grace, under a new epoch"
    );
    let v = view(&plain, o).await;
    assert!(v.holds_valid_lease("b"));
    assert!(
        v.since_last_failover_ms.is_some(),
        "a takeover is a failover"
    );
    let now = session_of(&v);
    assert!(now.alive && now.key != old.key, "{v:?}");
    assert!(
        !a_store.fenced_write(a, first).await.expect("write"),
        "the old epoch is fenced"
    );
    assert!(b_store.fenced_write(b, second).await.expect("write"));
}

async fn renewed<H: SessionHarness>(h: &H, cluster: &str) {
    let plain = h.plain_store();
    let ids = join(&plain, cluster, &["a", "o"]).await;
    let (a, o) = (&ids[0], &ids[1]);
    let a_store = h.session_store("a");
    let first = epoch_of(&a_store, a).await;
    assert_eq!(
        plain.renew(a, first, LONG).await.expect("renew"),
        RenewOutcome::Lost,
        "a bound lease is not renewed off its session"
    );
    assert!(
        matches!(
            a_store.renew(a, first, LONG).await.expect("renew"),
            RenewOutcome::Renewed { .. }
        ),
        "a refused renewal changes nothing"
    );
    let old = session_of(&view(&plain, o).await);
    h.end_session(old.key).await;
    ended(&plain, o).await;
    // The store finds its session gone and renews on a new one, with a new
    // key: the lease bound to the old one is lost, even unchallenged.
    assert_eq!(
        a_store.renew(a, first, LONG).await.expect("renew"),
        RenewOutcome::Lost
    );
    // Standing by, it may take the lease again at once, on its new session.
    a_store
        .heartbeat(a, NodeRole::Cold, first)
        .await
        .expect("heartbeat");
    let again = epoch_of(&a_store, a).await;
    assert!(again > first);
    let now = session_of(&view(&plain, o).await);
    assert!(now.alive && now.key != old.key, "{now:?}");
    assert!(!a_store.fenced_write(a, first).await.expect("write"));
    assert!(a_store.fenced_write(a, again).await.expect("write"));
}

async fn released<H: SessionHarness>(h: &H, cluster: &str) {
    let plain = h.plain_store();
    let ids = join(&plain, cluster, &["a", "b", "o"]).await;
    let (a, b, o) = (&ids[0], &ids[1], &ids[2]);
    let a_store = h.session_store("a");
    let epoch = epoch_of(&a_store, a).await;
    a_store.release(a, epoch).await.expect("release");
    let v = view(&plain, o).await;
    assert_eq!(
        (v.leader.as_deref(), v.lease_session),
        (None, None),
        "{v:?}"
    );
    assert!(epoch_of(&plain, b).await > epoch, "released: free at once");
}

async fn ttl_only<H: SessionHarness>(h: &H, cluster: &str) {
    let plain = h.plain_store();
    let ids = join(&plain, cluster, &["a", "b", "o"]).await;
    let (a, b, o) = (&ids[0], &ids[1], &ids[2]);
    let b_store = h.session_store("b");
    epoch_of(&plain, a).await;
    let v = view(&plain, o).await;
    assert_eq!(
        v.lease_session, None,
        "granted off a session: no lock named"
    );
    denied(&b_store, b, "a ttl-only lease waits for its ttl").await;
    assert!(view(&plain, o).await.holds_valid_lease("a"));
}
