//! The hot/cold daemon as operators run it: real processes, real signals,
//! real Postgres. Timing: heartbeat 1 s, lease ttl 3 s, grace 1 s.

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use rillflow_adapters::daemon::PgLeaseStore;
use rillflow_core::lease::ClusterView;
use rillflow_testkit::{Process, TestDb};

const BIN: &str = env!("CARGO_BIN_EXE_rillflow");
/// ttl + grace + heartbeat, plus a bounded margin for process scheduling.
const CRASH_BOUND: Duration = Duration::from_secs(3 + 1 + 1 + 2);

fn log_dir(test: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join("daemon-logs")
        .join(test)
}

fn node(db: &TestDb, test: &str, cluster: &str, name: &str, extra: &[&str]) -> Process {
    let mut args = vec![
        "projections",
        "run-loop",
        "--cluster-mode",
        "hotcold",
        "--cluster-name",
        cluster,
        "--node-name",
        name,
        "--heartbeat-secs",
        "1",
        "--lease-ttl-secs",
        "3",
        "--lease-grace-secs",
        "1",
    ];
    args.extend_from_slice(extra);
    Process::spawn(BIN.as_ref(), name, &db.url, &args, &log_dir(test))
}

async fn view(store: &PgLeaseStore, cluster: &str) -> Option<ClusterView> {
    store.cluster_view(cluster).await.ok().flatten()
}

/// Waits until `name` holds a valid lease; returns the epoch and how long it took.
async fn wait_hot(
    store: &PgLeaseStore,
    cluster: &str,
    name: &str,
    limit: Duration,
) -> (u64, Duration) {
    let start = Instant::now();
    loop {
        if let Some(v) = view(store, cluster).await {
            if v.holds_valid_lease(name) {
                return (v.epoch, start.elapsed());
            }
        }
        assert!(
            start.elapsed() < limit,
            "{name} not hot within {limit:?}; view: {:?}",
            view(store, cluster).await
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn wait_role(store: &PgLeaseStore, cluster: &str, name: &str, role: &str, limit: Duration) {
    let start = Instant::now();
    loop {
        if let Some(v) = view(store, cluster).await {
            if v.node(name).is_some_and(|n| n.role.as_str() == role) {
                return;
            }
        }
        assert!(
            start.elapsed() < limit,
            "{name} not {role} within {limit:?}; view: {:?}",
            view(store, cluster).await
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn setup() -> (TestDb, PgLeaseStore) {
    let mut db = TestDb::migrated().await;
    let store = PgLeaseStore::new(db.pool().await);
    (db, store)
}

#[tokio::test]
async fn hot_node_failover_promotes_standby() {
    let (db, store) = setup().await;
    let a = node(&db, "failover", "billing", "a", &[]);
    let (first, _) = wait_hot(&store, "billing", "a", Duration::from_secs(10)).await;
    let _b = node(&db, "failover", "billing", "b", &[]);
    wait_role(&store, "billing", "b", "cold", Duration::from_secs(10)).await;

    a.signal("KILL");
    let (second, took) = wait_hot(&store, "billing", "b", CRASH_BOUND).await;
    assert!(second > first, "a takeover increases the epoch");
    eprintln!("crash failover took {took:?}");
}

#[tokio::test]
async fn graceful_handoff_is_fast_and_exits_cleanly() {
    let (db, store) = setup().await;
    let mut a = node(&db, "handoff", "orders", "a", &[]);
    wait_hot(&store, "orders", "a", Duration::from_secs(10)).await;
    let _b = node(&db, "handoff", "orders", "b", &[]);
    wait_role(&store, "orders", "b", "cold", Duration::from_secs(10)).await;

    a.signal("INT");
    let (_, took) = wait_hot(&store, "orders", "b", Duration::from_secs(5)).await;
    assert!(
        took < Duration::from_secs(1),
        "graceful handoff took {took:?}"
    );
    let status = a
        .wait_exit(Duration::from_secs(5))
        .expect("a exits after SIGINT");
    assert!(status.success(), "exit status {status}");
    wait_role(&store, "orders", "a", "stopped", Duration::from_secs(2)).await;
}

#[tokio::test]
async fn a_frozen_leader_is_replaced_and_stands_by_after_resuming() {
    let (db, store) = setup().await;
    let mut a = node(&db, "freeze", "ledger", "a", &[]);
    let (first, _) = wait_hot(&store, "ledger", "a", Duration::from_secs(10)).await;
    let _b = node(&db, "freeze", "ledger", "b", &[]);
    wait_role(&store, "ledger", "b", "cold", Duration::from_secs(10)).await;

    a.signal("STOP");
    let (second, _) = wait_hot(&store, "ledger", "b", CRASH_BOUND).await;
    assert!(second > first);
    a.signal("CONT");
    // The old leader notices at its deadline or first renewal and stands by.
    wait_role(&store, "ledger", "a", "cold", Duration::from_secs(5)).await;
    assert!(a.is_running(), "losing the lease is no reason to exit");
    let v = view(&store, "ledger").await.unwrap();
    assert!(v.holds_valid_lease("b"));
    // Its old epoch cannot write any more.
    let fenced = store.begin_fenced("ledger", first).await;
    assert!(fenced.is_err(), "epoch {first} must be fenced");
}

#[tokio::test]
async fn restart_with_the_same_name_rejoins() {
    let (db, store) = setup().await;
    let mut a = node(&db, "restart", "search", "a", &[]);
    wait_hot(&store, "search", "a", Duration::from_secs(10)).await;
    let _b = node(&db, "restart", "search", "b", &[]);
    wait_role(&store, "search", "b", "cold", Duration::from_secs(10)).await;
    a.signal("KILL");
    a.wait_exit(Duration::from_secs(5));
    let mut again = node(&db, "restart-2", "search", "a", &[]);
    wait_hot(&store, "search", "b", CRASH_BOUND).await;
    wait_role(&store, "search", "a", "cold", Duration::from_secs(10)).await;
    assert!(again.is_running());
    let v = view(&store, "search").await.unwrap();
    assert_eq!(
        v.nodes.iter().filter(|n| n.name == "a").count(),
        1,
        "one row per name"
    );
}

#[tokio::test]
async fn promote_and_demote_from_the_cli() {
    let (db, store) = setup().await;
    let _a = node(&db, "manual", "mail", "a", &[]);
    wait_hot(&store, "mail", "a", Duration::from_secs(10)).await;
    let _b = node(&db, "manual", "mail", "b", &[]);
    wait_role(&store, "mail", "b", "cold", Duration::from_secs(10)).await;

    let cli = |args: &[&str]| {
        Command::new(BIN)
            .args(args)
            .env("DATABASE_URL", &db.url)
            .output()
            .expect("run rillflow")
    };
    let out = cli(&[
        "projections",
        "promote",
        "--cluster",
        "mail",
        "--node",
        "b",
        "--wait-secs",
        "10",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(view(&store, "mail").await.unwrap().holds_valid_lease("b"));

    let out = cli(&[
        "projections",
        "demote",
        "--cluster",
        "mail",
        "--wait-secs",
        "10",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v = view(&store, "mail").await.unwrap();
    assert!(!v.holds_valid_lease("b"));

    let out = cli(&[
        "projections",
        "promote",
        "--cluster",
        "mail",
        "--node",
        "nobody",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr)
            .trim_end()
            .lines()
            .count(),
        1
    );

    let out = cli(&["projections", "run-loop", "--cluster-mode", "hotcold"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--cluster-name"));
}
