//! The Postgres lease store against a real server: registration and restart
//! safety (LEASE-5), grants, expiry and grace judged by the database clock
//! (LEASE-2), epochs (LEASE-1; the fence itself is in `lease_fence.rs`),
//! release notifications (LEASE-3), operator requests and the cluster view.
//!
//! Leases that must run out last a few hundred milliseconds, leases that
//! must stay valid a minute; every wait polls the database's own view of
//! the lease with a deadline, so a slow machine changes no outcome.

use std::time::{Duration, Instant};

use rillflow_adapters::daemon::{LeaseError, LeaseStore, NodeIdentity};
use rillflow_core::lease::{AcquireOutcome, ClusterTiming, NodeRole, PromoteRequest, RenewOutcome};
use rillflow_testkit::lease_fixtures::*;

#[tokio::test]
async fn restart_with_the_same_name_rejoins_cold() {
    let (_db, store) = setup().await;
    let [a] = join(&store, ["a"]).await;
    let g = granted(store.try_acquire(&a, LONG, GRACE).await.unwrap());
    store.heartbeat(&a, NodeRole::Hot, g.epoch).await.unwrap();

    // The same daemon restarts: its leftover hot row is no obstacle (LEASE-5).
    store
        .register(&a, 1, &ClusterTiming::default())
        .await
        .expect("re-register the same daemon");
    let v = view(&store).await;
    assert_eq!(v.nodes.len(), 1);
    assert_eq!((v.nodes[0].role, v.nodes[0].epoch), (NodeRole::Cold, 0));

    // A new process under the same name (a fresh daemon id) takes the row over.
    let again = identity(C, "a", 77);
    store
        .register(&again, 2, &ClusterTiming::default())
        .await
        .expect("restart with a new daemon id");
    let v = view(&store).await;
    assert_eq!(v.nodes.len(), 1, "one row per name: {v:?}");
    assert_eq!((v.nodes[0].role, v.nodes[0].epoch), (NodeRole::Cold, 0));
    assert_eq!(
        v.min_cold_standbys, 2,
        "registration sets min_cold_standbys"
    );
    store
        .heartbeat(&again, NodeRole::Cold, 0)
        .await
        .expect("the new daemon owns the row");
}

/// Pods of a Deployment get a new name on every restart: rows unheard of
/// for a day are dropped when a node registers, except the leader's, and a
/// dropped node that comes back puts its row back.
#[tokio::test]
async fn rows_of_nodes_gone_for_a_day_are_forgotten_at_registration() {
    let (mut db, store) = setup().await;
    let [leader, gone, _fresh] = join(&store, ["leader", "gone", "fresh"]).await;
    granted(store.try_acquire(&leader, LONG, GRACE).await.unwrap());
    let pool = db.pool().await;
    // Not "a day ago" but just past it, and one just short of it.
    sqlx::query(
        "UPDATE rf_daemon_nodes SET heartbeat_at = CASE node_name
             WHEN 'fresh' THEN clock_timestamp() - interval '23 hours'
             ELSE clock_timestamp() - interval '1 day 1 minute' END",
    )
    .execute(&pool)
    .await
    .unwrap();
    let names = |pool: sqlx::PgPool| async move {
        sqlx::query_scalar::<_, String>(
            "SELECT node_name FROM rf_daemon_nodes ORDER BY node_name COLLATE \"C\"",
        )
        .fetch_all(&pool)
        .await
        .unwrap()
    };
    let newcomer = identity(C, "newcomer", 40);
    store
        .register(&newcomer, 1, &ClusterTiming::default())
        .await
        .unwrap();
    assert_eq!(names(pool.clone()).await, ["fresh", "leader", "newcomer"]);
    store.heartbeat(&gone, NodeRole::Cold, 0).await.unwrap();
    assert_eq!(
        names(pool.clone()).await,
        ["fresh", "gone", "leader", "newcomer"]
    );
}

#[tokio::test]
async fn a_daemon_id_reclaims_its_row_under_a_new_name() {
    let (_db, store) = setup().await;
    let [old, other] = join(&store, ["old", "other"]).await;
    store.heartbeat(&old, NodeRole::Hot, 3).await.unwrap();

    let renamed = NodeIdentity {
        node: "new".to_owned(),
        ..old.clone()
    };
    store
        .register(&renamed, 1, &ClusterTiming::default())
        .await
        .expect("rename by daemon id");
    let v = view(&store).await;
    let names: Vec<&str> = v.nodes.iter().map(|n| n.name.as_str()).collect();
    assert_eq!(names, ["new", "other"]);
    let n = v.node("new").unwrap();
    assert_eq!((n.role, n.epoch), (NodeRole::Cold, 0));

    // Taking a name whose row belongs to another daemon id is refused and
    // changes nothing.
    let clash = NodeIdentity {
        node: other.node.clone(),
        ..renamed.clone()
    };
    match store.register(&clash, 5, &ClusterTiming::default()).await {
        Err(LeaseError::InvalidName(msg)) => assert!(msg.contains("other"), "{msg}"),
        r => panic!("expected InvalidName, got {r:?}"),
    }
    let after = view(&store).await;
    assert_eq!(
        after
            .nodes
            .iter()
            .map(|n| n.name.as_str())
            .collect::<Vec<_>>(),
        ["new", "other"]
    );
    assert_eq!(after.min_cold_standbys, 1);
}

#[tokio::test]
async fn bad_names_are_refused() {
    let (_db, store) = setup().await;
    let long = "x".repeat(64);
    for (cluster, node) in [
        ("", "a"),
        (C, ""),
        (C, "a\nb"),
        (C, " a"),
        (long.as_str(), "a"),
        (C, long.as_str()),
    ] {
        let id = identity(cluster, node, 1);
        assert!(
            matches!(
                store.register(&id, 1, &ClusterTiming::default()).await,
                Err(LeaseError::InvalidName(_))
            ),
            "{cluster:?}/{node:?}"
        );
        assert!(matches!(
            store.try_acquire(&id, TTL, GRACE).await,
            Err(LeaseError::InvalidName(_))
        ));
    }
    assert!(matches!(
        store.cluster_view("a\u{7}").await,
        Err(LeaseError::InvalidName(_))
    ));
    assert!(matches!(
        store.request_promote(C, "", false).await,
        Err(LeaseError::InvalidName(_))
    ));
    assert!(
        store.cluster_views().await.unwrap().is_empty(),
        "nothing was written"
    );
}

#[tokio::test]
async fn the_first_grant_has_epoch_one_and_runs_for_the_ttl() {
    let (_db, store) = setup().await;
    let [a, b] = join(&store, ["a", "b"]).await;
    let g = granted(store.try_acquire(&a, LONG, GRACE).await.unwrap());
    assert_eq!(g.epoch, 1);
    assert_about(g.valid_for, LONG);
    assert_eq!(
        store.try_acquire(&b, LONG, GRACE).await.unwrap(),
        AcquireOutcome::Denied
    );

    let v = view(&store).await;
    assert_eq!((v.epoch, v.leader.as_deref()), (1, Some("a")));
    assert!(v.holds_valid_lease("a"));
    assert_eq!(
        v.since_last_failover_ms, None,
        "a first grant is no failover"
    );
}

#[tokio::test]
async fn expiry_and_grace_are_judged_by_the_database() {
    let (_db, store) = setup().await;
    let [a, b] = join(&store, ["a", "b"]).await;
    let first = granted(store.try_acquire(&a, TTL, GRACE).await.unwrap());
    // Grace is a parameter of the request: with a long one, a lease that
    // expired moments ago is still protected.
    wait_for(&store, "expired", |v| {
        v.lease_remaining_ms.is_some_and(|ms| ms < 0)
    })
    .await;
    assert_eq!(
        store.try_acquire(&b, TTL, LONG).await.unwrap(),
        AcquireOutcome::Denied
    );
    assert_eq!(
        view(&store).await.epoch,
        first.epoch,
        "a denial changes nothing"
    );

    // Past expiry and grace: granted with the next epoch, a failover.
    wait_for(&store, "past grace", |v| expired_beyond(v, GRACE)).await;
    let second = granted(store.try_acquire(&b, TTL, GRACE).await.unwrap());
    assert_eq!(second.epoch, 2);
    assert_about(second.valid_for, TTL);
    let v = view(&store).await;
    assert_eq!(v.leader.as_deref(), Some("b"));
    let since = v.since_last_failover_ms.expect("a takeover is a failover");
    assert!((0..5_000).contains(&since), "{since}");
}

#[tokio::test]
async fn another_node_is_granted_only_after_expiry_and_grace() {
    let (_db, store) = setup().await;
    let [a, b] = join(&store, ["a", "b"]).await;
    let first = granted(store.try_acquire(&a, TTL, GRACE).await.unwrap());
    sqlx::query("CREATE TABLE old_lease AS SELECT lease_expires_at FROM rf_daemon_clusters")
        .execute(store.pool())
        .await
        .unwrap();
    let start = Instant::now();
    let second = loop {
        match store.try_acquire(&b, TTL, GRACE).await.unwrap() {
            AcquireOutcome::Granted(g) => break g,
            AcquireOutcome::Denied => assert!(start.elapsed() < WAIT, "never granted"),
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    assert_eq!(second.epoch, first.epoch + 1);
    // b's lease starts at its grant (its expiry minus the ttl), which the
    // database made only once a's expiry plus grace had passed.
    let gap_ms: f64 = sqlx::query_scalar(
        "SELECT (extract(epoch FROM (c.lease_expires_at - $1 * interval '1 microsecond')
                                    - o.lease_expires_at) * 1000)::float8
         FROM rf_daemon_clusters c, old_lease o",
    )
    .bind(TTL.as_micros() as i64)
    .fetch_one(store.pool())
    .await
    .unwrap();
    assert!(
        gap_ms > GRACE.as_millis() as f64,
        "granted {gap_ms} ms after expiry"
    );
}

#[tokio::test]
async fn the_holder_reacquiring_gets_a_new_epoch() {
    let (_db, store) = setup().await;
    let [a] = join(&store, ["a"]).await;
    let mut last = 0;
    for _ in 0..3 {
        let g = granted(store.try_acquire(&a, TTL, GRACE).await.unwrap());
        assert!(
            g.epoch > last,
            "epochs strictly increase: {} after {last}",
            g.epoch
        );
        last = g.epoch;
    }
    assert_eq!(last, 3);
    assert_eq!(view(&store).await.since_last_failover_ms, None);
}

#[tokio::test]
async fn renew_extends_only_the_current_unexpired_lease() {
    let (_db, store) = setup().await;
    let [a, b] = join(&store, ["a", "b"]).await;
    let first = granted(store.try_acquire(&a, LONG, GRACE).await.unwrap());
    match store.renew(&a, first.epoch, LONG).await.unwrap() {
        RenewOutcome::Renewed { valid_for } => assert_about(valid_for, LONG),
        RenewOutcome::Lost => panic!("the holder renews"),
    }
    assert_eq!(
        store.renew(&a, first.epoch + 1, LONG).await.unwrap(),
        RenewOutcome::Lost
    );
    assert_eq!(
        store.renew(&b, first.epoch, LONG).await.unwrap(),
        RenewOutcome::Lost
    );

    // An expired lease is not renewed, even if nobody took it yet.
    let short = granted(store.try_acquire(&a, TTL, GRACE).await.unwrap());
    assert_eq!(
        store.renew(&a, first.epoch, LONG).await.unwrap(),
        RenewOutcome::Lost,
        "a re-grant ends the old epoch"
    );
    wait_for(&store, "expired", |v| {
        v.lease_remaining_ms.is_some_and(|ms| ms < 0)
    })
    .await;
    assert_eq!(
        store.renew(&a, short.epoch, LONG).await.unwrap(),
        RenewOutcome::Lost
    );

    // After a takeover the old leader's renewal is lost; the new one renews.
    wait_for(&store, "past grace", |v| expired_beyond(v, GRACE)).await;
    let taken = granted(store.try_acquire(&b, LONG, GRACE).await.unwrap());
    assert_eq!(
        store.renew(&a, short.epoch, LONG).await.unwrap(),
        RenewOutcome::Lost
    );
    assert!(matches!(
        store.renew(&b, taken.epoch, LONG).await.unwrap(),
        RenewOutcome::Renewed { .. }
    ));
}

#[tokio::test]
async fn release_wakes_listeners_and_frees_the_lease_at_once() {
    let (_db, store) = setup().await;
    let [a, b] = join(&store, ["a", "b"]).await;
    let mut listener = store.listen_releases().await.expect("listen");
    let first = granted(store.try_acquire(&a, LONG, LONG).await.unwrap());
    assert_eq!(
        store.try_acquire(&b, LONG, LONG).await.unwrap(),
        AcquireOutcome::Denied
    );

    // Releases by a non-holder or of an old epoch do nothing.
    store.release(&b, first.epoch).await.unwrap();
    store.release(&a, first.epoch + 1).await.unwrap();
    assert!(view(&store).await.holds_valid_lease("a"));

    store.release(&a, first.epoch).await.unwrap();
    let note = tokio::time::timeout(Duration::from_secs(1), listener.recv())
        .await
        .expect("notified within 1 s")
        .expect("notification");
    assert_eq!((note.channel(), note.payload()), ("rf_daemon_release", C));
    let v = view(&store).await;
    assert_eq!(v.leader, None);
    assert!(
        v.lease_remaining_ms.is_some_and(|ms| ms <= 0),
        "free since the release: {v:?}"
    );

    let second = granted(store.try_acquire(&b, LONG, LONG).await.unwrap());
    assert_eq!(second.epoch, first.epoch + 1);
    assert_eq!(
        view(&store).await.since_last_failover_ms,
        None,
        "a handoff is no failover"
    );
}

#[tokio::test]
async fn heartbeat_returns_the_cluster_with_database_ages() {
    let (_db, store) = setup().await;
    let [a, b] = join(&store, ["a", "b"]).await;
    store.heartbeat(&b, NodeRole::Cold, 0).await.unwrap();
    let pause = Duration::from_millis(50);
    tokio::time::sleep(pause).await; // a lower bound for b's age, not a wait for an event
    let v = store.heartbeat(&a, NodeRole::Cold, 0).await.unwrap();
    assert_eq!(v.cluster, C);
    assert_eq!(
        (v.epoch, v.leader.as_deref(), v.lease_remaining_ms),
        (0, None, None)
    );
    let names: Vec<&str> = v.nodes.iter().map(|n| n.name.as_str()).collect();
    assert_eq!(names, ["a", "b"], "sorted by name");
    assert_eq!(
        v.node("a").unwrap().heartbeat_age_ms,
        0,
        "our own heartbeat is now"
    );
    let age_b = v.node("b").unwrap().heartbeat_age_ms;
    assert!(
        age_b >= pause.as_millis() as i64 - 1 && age_b < 5_000,
        "{age_b}"
    );

    let g = granted(store.try_acquire(&a, LONG, GRACE).await.unwrap());
    let v = store.heartbeat(&a, NodeRole::Hot, g.epoch).await.unwrap();
    let me = v.node("a").unwrap();
    assert_eq!((me.role, me.epoch), (NodeRole::Hot, g.epoch));
    assert_eq!(v.leader.as_deref(), Some("a"));
    let left = v.lease_remaining_ms.unwrap();
    assert!(left > 0 && left <= LONG.as_millis() as i64, "{left}");

    store.mark_stopped(&b).await.unwrap();
    assert_eq!(
        view(&store).await.node("b").unwrap().role,
        NodeRole::Stopped
    );

    // A row deleted under a live node comes back with its next heartbeat.
    sqlx::query("DELETE FROM rf_daemon_nodes WHERE node_name = 'b'")
        .execute(store.pool())
        .await
        .unwrap();
    let v = store.heartbeat(&b, NodeRole::Cold, 0).await.unwrap();
    assert_eq!(v.node("b").map(|n| n.role), Some(NodeRole::Cold));

    // A node of a cluster nobody registered cannot beat.
    let stray = identity("unregistered", "x", 5);
    assert!(matches!(
        store.heartbeat(&stray, NodeRole::Cold, 0).await,
        Err(LeaseError::Unavailable(_))
    ));
}

#[tokio::test]
async fn a_replaced_daemon_learns_it_and_can_no_longer_lead() {
    let (_db, store) = setup().await;
    let [a] = join(&store, ["a"]).await;
    let first = granted(store.try_acquire(&a, LONG, GRACE).await.unwrap());

    // Another process registers under the same name with its own id.
    let newcomer = identity(C, "a", 99);
    store
        .register(&newcomer, 1, &ClusterTiming::default())
        .await
        .unwrap();
    match store.heartbeat(&a, NodeRole::Hot, first.epoch).await {
        Err(LeaseError::Replaced { cluster, node, by }) => {
            assert_eq!(
                (cluster.as_str(), node.as_str(), by),
                (C, "a", newcomer.daemon_id)
            );
        }
        r => panic!("expected Replaced, got {r:?}"),
    }
    assert_eq!(
        store.renew(&a, first.epoch, LONG).await.unwrap(),
        RenewOutcome::Lost
    );
    assert_eq!(
        store.try_acquire(&a, LONG, GRACE).await.unwrap(),
        AcquireOutcome::Denied
    );
    store.mark_stopped(&a).await.unwrap();
    assert_eq!(
        view(&store).await.node("a").unwrap().role,
        NodeRole::Cold,
        "not the old daemon's row"
    );

    // The same daemon id reused under another name takes the row along.
    let moved = NodeIdentity {
        node: "a2".to_owned(),
        ..newcomer.clone()
    };
    store
        .register(&moved, 1, &ClusterTiming::default())
        .await
        .unwrap();
    match store.heartbeat(&newcomer, NodeRole::Cold, 0).await {
        Err(LeaseError::Replaced { by, .. }) => assert_eq!(by, newcomer.daemon_id),
        r => panic!("expected Replaced, got {r:?}"),
    }
}

#[tokio::test]
async fn promote_and_demote_requests_show_until_fulfilled() {
    let (_db, store) = setup().await;
    let [a, b] = join(&store, ["a", "b"]).await;
    let first = granted(store.try_acquire(&a, LONG, LONG).await.unwrap());

    store.request_promote(C, "b", true).await.unwrap();
    store.request_demote(C, None).await.unwrap();
    let v = store.heartbeat(&b, NodeRole::Cold, 0).await.unwrap();
    assert_eq!(
        v.promote,
        Some(PromoteRequest {
            node: "b".to_owned(),
            force: true
        })
    );
    assert_eq!(v.demote.as_deref(), Some("a"), "None demotes the holder");

    // The holder hands off: its release clears the demotion, the grant to
    // the promoted node clears the promotion.
    store.release(&a, first.epoch).await.unwrap();
    let v = view(&store).await;
    assert_eq!((v.demote.as_deref(), v.promote.is_some()), (None, true));
    let second = granted(store.try_acquire(&b, LONG, LONG).await.unwrap());
    let v = view(&store).await;
    assert_eq!((v.promote.as_ref(), v.demote.as_deref()), (None, None));
    assert_eq!(v.epoch, second.epoch);

    store.request_demote(C, Some("b")).await.unwrap();
    assert_eq!(view(&store).await.demote.as_deref(), Some("b"));
    assert!(matches!(
        store.request_promote(C, "ghost", false).await,
        Err(LeaseError::InvalidName(_))
    ));
    assert!(matches!(
        store.request_demote(C, Some("ghost")).await,
        Err(LeaseError::InvalidName(_))
    ));
    assert!(matches!(
        store.request_promote("nope", "a", false).await,
        Err(LeaseError::InvalidName(_))
    ));
    assert!(matches!(
        store.request_demote("nope", None).await,
        Err(LeaseError::InvalidName(_))
    ));
}

#[tokio::test]
async fn cluster_views_lists_every_cluster_by_name() {
    let (_db, store) = setup().await;
    for (cluster, node) in [("zeta", "n2"), ("alpha", "n1"), ("zeta", "n1")] {
        store
            .register(
                &identity(cluster, node, rand::random()),
                1,
                &ClusterTiming::default(),
            )
            .await
            .unwrap();
    }
    let views = store.cluster_views().await.unwrap();
    let shape: Vec<(&str, Vec<&str>)> = views
        .iter()
        .map(|v| {
            (
                v.cluster.as_str(),
                v.nodes.iter().map(|n| n.name.as_str()).collect(),
            )
        })
        .collect();
    assert_eq!(shape, [("alpha", vec!["n1"]), ("zeta", vec!["n1", "n2"])]);
    assert!(views.iter().all(|v| v.epoch == 0 && v.leader.is_none()));
    assert_eq!(store.cluster_view("missing").await.unwrap(), None);

    // Demoting "the leader" of a cluster without one writes nothing.
    store.request_demote("alpha", None).await.unwrap();
    let alpha = store.cluster_view("alpha").await.unwrap().unwrap();
    assert_eq!(alpha.demote, None);
}
