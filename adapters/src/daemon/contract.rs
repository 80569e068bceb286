//! The lease store contract, written once and run against every store: the
//! Postgres adapter (`tests/lease_contract.rs`) and the simulation's model
//! database (`sim/tests/contract.rs`), so the model cannot drift from what
//! Postgres does (SIM-1). Each check panics with a message on a breach.
//!
//! The checks sleep with `tokio::time`, real time against Postgres and
//! simulated time under turmoil, and use a 1 s lease with a 0.5 s grace.

use std::time::Duration;

use rillflow_core::lease::failover::PromoteRefusal;
use rillflow_core::lease::{
    AcquireOutcome, ClusterTiming, ClusterView, NodeRole, PromoteRequest, RenewOutcome,
};
use tokio::time::sleep;
use uuid::Uuid;

use super::lease_store::{FencedWrites, LeaseError, LeaseStore, NodeIdentity};
use super::operator::{self, ClusterAdmin, OperatorError};

const TTL: Duration = Duration::from_secs(1);
const GRACE: Duration = Duration::from_millis(500);
/// Allowance for the statement's own time when comparing validities.
const SLACK: Duration = Duration::from_millis(150);

/// Every check, by name.
pub const CHECKS: &[&str] = &[
    "grants_follow_expiry_and_grace",
    "renewal_extends_only_the_current_lease",
    "release_frees_the_lease_at_once",
    "the_fence_admits_only_the_current_lease",
    "heartbeats_return_the_cluster",
    "a_restart_replaces_the_old_incarnation",
    "operator_requests_show_until_fulfilled",
    "promote_and_demote_are_judged_by_the_database_view",
];

/// Declares one `#[test]` per contract check, each calling `$run(name)`
/// (a plain function that runs the named check against its store), and a
/// test that the list matches [`CHECKS`]. Both stores' test files use it,
/// so neither can skip a check.
#[macro_export]
macro_rules! lease_contract_tests {
    ($run:path) => {
        $crate::lease_contract_tests!(
            @each $run;
            grants_follow_expiry_and_grace,
            renewal_extends_only_the_current_lease,
            release_frees_the_lease_at_once,
            the_fence_admits_only_the_current_lease,
            heartbeats_return_the_cluster,
            a_restart_replaces_the_old_incarnation,
            operator_requests_show_until_fulfilled,
            promote_and_demote_are_judged_by_the_database_view,
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
            assert_eq!(here, $crate::daemon::contract::CHECKS);
        }
    };
}

/// Runs the check called `name` on `store`, in a cluster of its own.
pub async fn run<S: LeaseStore + FencedWrites + ClusterAdmin>(
    name: &str,
    store: &S,
    cluster: &str,
) {
    match name {
        "grants_follow_expiry_and_grace" => grants_follow_expiry_and_grace(store, cluster).await,
        "renewal_extends_only_the_current_lease" => {
            renewal_extends_only_the_current_lease(store, cluster).await
        }
        "release_frees_the_lease_at_once" => release_frees_the_lease_at_once(store, cluster).await,
        "the_fence_admits_only_the_current_lease" => {
            the_fence_admits_only_the_current_lease(store, cluster).await
        }
        "heartbeats_return_the_cluster" => heartbeats_return_the_cluster(store, cluster).await,
        "a_restart_replaces_the_old_incarnation" => {
            a_restart_replaces_the_old_incarnation(store, cluster).await
        }
        "operator_requests_show_until_fulfilled" => {
            operator_requests_show_until_fulfilled(store, cluster).await
        }
        "promote_and_demote_are_judged_by_the_database_view" => {
            promote_and_demote_are_judged_by_the_database_view(store, cluster).await
        }
        other => panic!("no contract check named {other:?}"),
    }
}

fn timing() -> ClusterTiming {
    ClusterTiming {
        heartbeat_ms: 300,
        lease_ttl_ms: 1_000,
        lease_grace_ms: 500,
    }
}

fn id(cluster: &str, node: &str, n: u128) -> NodeIdentity {
    NodeIdentity {
        cluster: cluster.to_owned(),
        node: node.to_owned(),
        daemon_id: Uuid::from_u128(n),
    }
}

/// Registers `nodes` in `cluster`, with daemon ids of their own.
pub(super) async fn join<S: LeaseStore>(
    store: &S,
    cluster: &str,
    nodes: &[&str],
) -> Vec<NodeIdentity> {
    let mut ids = Vec::new();
    for (i, node) in nodes.iter().enumerate() {
        let me = id(cluster, node, 0xC0_0000 + i as u128);
        store.register(&me, 1, &timing()).await.expect("register");
        ids.push(me);
    }
    ids
}

async fn acquire<S: LeaseStore>(store: &S, node: &NodeIdentity) -> AcquireOutcome {
    store
        .try_acquire(node, TTL, GRACE)
        .await
        .expect("try_acquire")
}

async fn granted<S: LeaseStore>(store: &S, node: &NodeIdentity) -> u64 {
    match acquire(store, node).await {
        AcquireOutcome::Granted(g) => {
            assert!(
                g.valid_for <= TTL && g.valid_for + SLACK >= TTL,
                "a grant runs for the ttl: {g:?}"
            );
            g.epoch
        }
        AcquireOutcome::Denied => panic!("{} was denied a free lease", node.node),
    }
}

async fn grants_follow_expiry_and_grace<S: LeaseStore>(store: &S, cluster: &str) {
    let ids = join(store, cluster, &["a", "b"]).await;
    let (a, b) = (&ids[0], &ids[1]);
    let first = granted(store, a).await;
    assert_eq!(first, 1, "the first grant of a cluster has epoch 1");
    assert_eq!(
        acquire(store, b).await,
        AcquireOutcome::Denied,
        "a valid lease is not granted twice"
    );
    let again = granted(store, a).await;
    assert_eq!(again, first + 1, "the holder re-acquiring gets a new epoch");
    sleep(TTL + GRACE / 4).await;
    assert_eq!(
        acquire(store, b).await,
        AcquireOutcome::Denied,
        "an expired lease stays out of reach during the grace"
    );
    sleep(GRACE).await;
    assert_eq!(
        granted(store, b).await,
        again + 1,
        "after expiry and grace another node takes over"
    );
}

async fn renewal_extends_only_the_current_lease<S: LeaseStore>(store: &S, cluster: &str) {
    let ids = join(store, cluster, &["a", "b"]).await;
    let (a, b) = (&ids[0], &ids[1]);
    let epoch = granted(store, a).await;
    sleep(TTL / 2).await;
    match store.renew(a, epoch, TTL).await.expect("renew") {
        RenewOutcome::Renewed { valid_for } => assert!(
            valid_for + SLACK >= TTL && valid_for <= TTL,
            "{valid_for:?}"
        ),
        RenewOutcome::Lost => panic!("renewing a valid lease failed"),
    }
    assert_eq!(
        store.renew(a, epoch + 1, TTL).await.expect("renew"),
        RenewOutcome::Lost,
        "wrong epoch"
    );
    assert_eq!(
        store.renew(b, epoch, TTL).await.expect("renew"),
        RenewOutcome::Lost,
        "not the holder"
    );
    sleep(TTL + SLACK).await;
    assert_eq!(
        store.renew(a, epoch, TTL).await.expect("renew"),
        RenewOutcome::Lost,
        "an expired lease is not renewed"
    );
}

async fn release_frees_the_lease_at_once<S: LeaseStore>(store: &S, cluster: &str) {
    let ids = join(store, cluster, &["a", "b"]).await;
    let (a, b) = (&ids[0], &ids[1]);
    let epoch = granted(store, a).await;
    store.release(b, epoch).await.expect("release");
    assert_eq!(
        acquire(store, b).await,
        AcquireOutcome::Denied,
        "only the holder can release"
    );
    store.release(a, epoch).await.expect("release");
    assert_eq!(
        granted(store, b).await,
        epoch + 1,
        "a released lease is free at once, without grace"
    );
    store
        .release(a, epoch)
        .await
        .expect("a stale release is a no-op");
    let view = store
        .heartbeat(b, NodeRole::Hot, epoch + 1)
        .await
        .expect("heartbeat");
    assert_eq!(
        view.leader.as_deref(),
        Some("b"),
        "a stale release changes nothing"
    );
}

async fn the_fence_admits_only_the_current_lease<S: LeaseStore + FencedWrites>(
    store: &S,
    cluster: &str,
) {
    let ids = join(store, cluster, &["a"]).await;
    let a = &ids[0];
    let first = granted(store, a).await;
    assert!(
        store.fenced_write(a, first).await.expect("write"),
        "the current epoch writes"
    );
    let second = granted(store, a).await;
    assert!(
        !store.fenced_write(a, first).await.expect("write"),
        "an older epoch is fenced"
    );
    assert!(store.fenced_write(a, second).await.expect("write"));
    sleep(TTL + SLACK).await;
    assert!(
        !store.fenced_write(a, second).await.expect("write"),
        "an expired lease is fenced"
    );
    let third = granted(store, a).await;
    store.release(a, third).await.expect("release");
    assert!(
        !store.fenced_write(a, third).await.expect("write"),
        "a released lease is fenced"
    );
}

async fn heartbeats_return_the_cluster<S: LeaseStore>(store: &S, cluster: &str) {
    let ids = join(store, cluster, &["b", "a"]).await;
    let (b, a) = (&ids[0], &ids[1]);
    let view = store
        .heartbeat(a, NodeRole::Cold, 0)
        .await
        .expect("heartbeat");
    assert_eq!(view.cluster, cluster);
    assert_eq!(view.timing, timing(), "the cluster records its timing");
    assert_eq!(view.min_cold_standbys, 1);
    assert_eq!(
        (view.leader.as_deref(), view.lease_remaining_ms, view.epoch),
        (None, None, 0)
    );
    let names: Vec<&str> = view.nodes.iter().map(|n| n.name.as_str()).collect();
    assert_eq!(names, ["a", "b"], "nodes sorted by name");
    assert!(view
        .nodes
        .iter()
        .all(|n| n.role == NodeRole::Cold && n.heartbeat_age_ms >= 0));
    let epoch = granted(store, a).await;
    sleep(Duration::from_millis(200)).await;
    let view = store
        .heartbeat(b, NodeRole::Cold, 0)
        .await
        .expect("heartbeat");
    assert_eq!((view.leader.as_deref(), view.epoch), (Some("a"), epoch));
    let remaining = view.lease_remaining_ms.expect("a lease");
    assert!(
        (500..=800).contains(&remaining),
        "remaining {remaining} ms by the database clock"
    );
    let a_row = view.node("a").expect("a");
    assert!(
        (150..=400).contains(&a_row.heartbeat_age_ms),
        "age {} ms",
        a_row.heartbeat_age_ms
    );
    store.mark_stopped(b).await.expect("mark stopped");
    let view = store
        .heartbeat(a, NodeRole::Hot, epoch)
        .await
        .expect("heartbeat");
    assert_eq!(view.node("b").map(|n| n.role), Some(NodeRole::Stopped));
    assert_eq!(
        view.node("a").map(|n| (n.role, n.epoch)),
        Some((NodeRole::Hot, epoch))
    );
}

async fn a_restart_replaces_the_old_incarnation<S: LeaseStore>(store: &S, cluster: &str) {
    let old = id(cluster, "a", 1);
    store.register(&old, 1, &timing()).await.expect("register");
    let epoch = granted(store, &old).await;
    let new = id(cluster, "a", 2);
    store
        .register(&new, 1, &timing())
        .await
        .expect("a restart under the same name joins");
    match store.heartbeat(&old, NodeRole::Hot, epoch).await {
        Err(LeaseError::Replaced { by, .. }) => assert_eq!(by, new.daemon_id),
        other => panic!("the old incarnation must learn it was replaced: {other:?}"),
    }
    assert_eq!(
        acquire(store, &old).await,
        AcquireOutcome::Denied,
        "a replaced daemon cannot lead"
    );
    let view = store
        .heartbeat(&new, NodeRole::Cold, 0)
        .await
        .expect("heartbeat");
    assert_eq!(view.nodes.len(), 1, "one row per name");
    assert_eq!(view.node("a").map(|n| n.role), Some(NodeRole::Cold));
}

async fn view_of<S: ClusterAdmin>(store: &S, cluster: &str) -> ClusterView {
    store
        .cluster_view(cluster)
        .await
        .expect("cluster view")
        .expect("the cluster exists")
}

/// The pending requests of a view: (promoted node, force), demoted node.
fn pending(view: &ClusterView) -> (Option<(&str, bool)>, Option<&str>) {
    (
        view.promote.as_ref().map(|p| (p.node.as_str(), p.force)),
        view.demote.as_deref(),
    )
}

async fn operator_requests_show_until_fulfilled<S: LeaseStore + ClusterAdmin>(
    store: &S,
    cluster: &str,
) {
    let ids = join(store, cluster, &["a", "b", "c"]).await;
    let (a, c) = (&ids[0], &ids[2]);
    assert_eq!(pending(&view_of(store, cluster).await), (None, None));
    let missing = format!("{cluster}-missing");
    assert_eq!(
        store.cluster_view(&missing).await.expect("cluster view"),
        None,
        "no view of a cluster that does not exist"
    );
    store
        .request_demote(cluster, None)
        .await
        .expect("demoting nobody");
    assert_eq!(
        pending(&view_of(store, cluster).await),
        (None, None),
        "without a valid lease there is nobody to demote"
    );

    let first = granted(store, a).await;
    store
        .request_promote(cluster, "b", true)
        .await
        .expect("promote");
    store.request_demote(cluster, None).await.expect("demote");
    let view = store
        .heartbeat(c, NodeRole::Cold, 0)
        .await
        .expect("heartbeat");
    assert_eq!(
        view.promote,
        Some(PromoteRequest {
            node: "b".to_owned(),
            force: true
        }),
        "heartbeats carry the pending promotion"
    );
    assert_eq!(view.demote.as_deref(), Some("a"), "None demotes the holder");

    let again = granted(store, a).await;
    assert_eq!(again, first + 1);
    assert_eq!(
        pending(&view_of(store, cluster).await),
        (Some(("b", true)), Some("a")),
        "a grant to the demoted node keeps its demotion"
    );
    store.release(a, again).await.expect("release");
    assert_eq!(
        pending(&view_of(store, cluster).await),
        (Some(("b", true)), None),
        "the demoted node's release clears its demotion, not the promotion"
    );
    let third = granted(store, c).await;
    assert_eq!(
        pending(&view_of(store, cluster).await),
        (Some(("b", true)), None),
        "a grant to another node keeps the promotion"
    );

    store
        .request_promote(cluster, "a", false)
        .await
        .expect("promote");
    store
        .request_demote(cluster, Some("c"))
        .await
        .expect("demote");
    assert_eq!(
        pending(&view_of(store, cluster).await),
        (Some(("a", false)), Some("c")),
        "a later promotion replaces the pending one"
    );
    sleep(TTL + GRACE + SLACK).await;
    assert_eq!(granted(store, a).await, third + 1);
    let view = view_of(store, cluster).await;
    assert_eq!(
        pending(&view),
        (None, None),
        "the promoted node's grant clears its promotion and another's demotion"
    );
    assert!(
        view.since_last_failover_ms.is_some(),
        "a takeover of a lease that ran out is a failover"
    );

    for outcome in [
        store.request_promote(cluster, "ghost", false).await,
        store.request_demote(cluster, Some("ghost")).await,
        store.request_promote(&missing, "a", false).await,
        store.request_demote(&missing, None).await,
    ] {
        assert!(
            matches!(outcome, Err(LeaseError::InvalidName(_))),
            "an unknown cluster or node is refused: {outcome:?}"
        );
    }
    assert_eq!(pending(&view_of(store, cluster).await), (None, None));
}

async fn promote_and_demote_are_judged_by_the_database_view<S: LeaseStore + ClusterAdmin>(
    store: &S,
    cluster: &str,
) {
    let ids = join(store, cluster, &["a", "b", "c"]).await;
    let (a, b, c) = (&ids[0], &ids[1], &ids[2]);
    let epoch = granted(store, a).await;
    store.mark_stopped(c).await.expect("mark stopped");
    let refusal = |r: Result<ClusterView, OperatorError>| match r {
        Err(OperatorError::Refused(refusal)) => refusal,
        other => panic!("expected a refusal, got {other:?}"),
    };
    assert!(matches!(
        refusal(operator::promote(store, cluster, "a", true).await),
        PromoteRefusal::AlreadyHot { .. }
    ));
    assert!(matches!(
        refusal(operator::promote(store, cluster, "c", true).await),
        PromoteRefusal::Stopped { .. }
    ));
    assert!(matches!(
        refusal(operator::promote(store, cluster, "ghost", true).await),
        PromoteRefusal::UnknownNode { .. }
    ));
    assert!(matches!(
        operator::promote(store, &format!("{cluster}-missing"), "b", false).await,
        Err(OperatorError::NoCluster(_))
    ));
    let view = operator::promote(store, cluster, "b", false)
        .await
        .expect("a fresh standby is promoted");
    assert_eq!(view.epoch, epoch, "the view the promotion was judged by");

    // Heartbeat timing 300 ms, ttl 1 s: b lags after 600 ms without a
    // heartbeat and is not running after 1 s, by the database clock.
    store.heartbeat(b, NodeRole::Cold, 0).await.expect("beat");
    sleep(Duration::from_millis(700)).await;
    assert!(matches!(
        refusal(operator::promote(store, cluster, "b", false).await),
        PromoteRefusal::Lagging { .. }
    ));
    operator::promote(store, cluster, "b", true)
        .await
        .expect("--force promotes a lagging node");
    assert_eq!(pending(&view_of(store, cluster).await).0, Some(("b", true)));
    sleep(Duration::from_millis(450)).await;
    assert!(matches!(
        refusal(operator::promote(store, cluster, "b", true).await),
        PromoteRefusal::Unhealthy { .. }
    ));

    // a's lease may have run out meanwhile; the holder takes it back.
    let epoch = granted(store, a).await;

    assert!(matches!(
        operator::demote(store, cluster, Some("b")).await,
        Err(OperatorError::NotHot { .. })
    ));
    assert!(matches!(
        operator::demote(store, cluster, Some("ghost")).await,
        Err(OperatorError::NoNode { .. })
    ));
    assert_eq!(
        operator::demote(store, cluster, None)
            .await
            .expect("demote"),
        "a",
        "None demotes the hot node"
    );
    assert_eq!(pending(&view_of(store, cluster).await).1, Some("a"));
    store.release(a, epoch).await.expect("release");
    assert!(matches!(
        operator::demote(store, cluster, None).await,
        Err(OperatorError::NoHotNode(_))
    ));
    assert!(matches!(
        operator::demote(store, cluster, Some("a")).await,
        Err(OperatorError::NotHot { .. })
    ));
}
