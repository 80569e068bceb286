//! The hot/cold daemon as operators run it: real processes, real signals,
//! real Postgres. Timing: heartbeat 1 s, lease ttl 3 s, grace 1 s.

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use rillflow_adapters::daemon::PgLeaseStore;
use rillflow_core::lease::ClusterView;
use rillflow_testkit::session_locks::end_session;
use rillflow_testkit::{fast_hotcold_args, free_port, http_get, wait_for_view, Process, TestDb};

const BIN: &str = env!("CARGO_BIN_EXE_rillflow");
/// ttl + grace + heartbeat, plus a bounded margin for process scheduling.
const CRASH_BOUND: Duration = Duration::from_secs(3 + 1 + 1 + 2);

fn log_dir(test: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join("daemon-logs")
        .join(test)
}

fn node(db: &TestDb, test: &str, cluster: &str, name: &str, extra: &[&str]) -> Process {
    let mut args = fast_hotcold_args(cluster, name);
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
    let what = format!("{name} hot");
    let (v, took) = wait_for_view(
        store,
        cluster,
        &what,
        limit,
        Duration::from_millis(20),
        |v| v.holds_valid_lease(name),
    )
    .await;
    (v.epoch, took)
}

async fn wait_role(store: &PgLeaseStore, cluster: &str, name: &str, role: &str, limit: Duration) {
    let what = format!("{name} {role}");
    wait_for_view(
        store,
        cluster,
        &what,
        limit,
        Duration::from_millis(20),
        |v| v.node(name).is_some_and(|n| n.role.as_str() == role),
    )
    .await;
}

async fn setup() -> (TestDb, PgLeaseStore) {
    let mut db = TestDb::migrated().await;
    let store = PgLeaseStore::new(db.pool().await);
    (db, store)
}

/// `a` hot, then `b` standing by, in `cluster`; returns both and a's epoch.
async fn hot_and_standby(
    db: &TestDb,
    store: &PgLeaseStore,
    test: &str,
    cluster: &str,
) -> (Process, Process, u64) {
    let a = node(db, test, cluster, "a", &[]);
    let (epoch, _) = wait_hot(store, cluster, "a", Duration::from_secs(10)).await;
    let b = node(db, test, cluster, "b", &[]);
    wait_role(store, cluster, "b", "cold", Duration::from_secs(10)).await;
    (a, b, epoch)
}

/// Waits until `node` has committed a fenced write under `epoch`.
async fn wait_fenced_write(store: &PgLeaseStore, cluster: &str, node: &str, epoch: u64) {
    let start = Instant::now();
    loop {
        let wrote: Option<i64> = sqlx::query_scalar(
            "SELECT fenced_epoch FROM rf_daemon_nodes WHERE cluster_name = $1 AND node_name = $2",
        )
        .bind(cluster)
        .bind(node)
        .fetch_optional(store.pool())
        .await
        .unwrap()
        .flatten();
        if wrote == Some(epoch as i64) {
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "{node} never wrote under epoch {epoch}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn hot_node_failover_promotes_standby() {
    let (db, store) = setup().await;
    let (a, _b, first) = hot_and_standby(&db, &store, "failover", "billing").await;

    a.signal("KILL");
    let (second, took) = wait_hot(&store, "billing", "b", CRASH_BOUND).await;
    assert!(second > first, "a takeover increases the epoch");
    eprintln!("crash failover took {took:?}");
}

/// The lease's expiry and grant time by the database clock.
async fn lease_times(
    store: &PgLeaseStore,
    cluster: &str,
) -> (chrono::DateTime<chrono::Utc>, chrono::DateTime<chrono::Utc>) {
    sqlx::query_as(
        "SELECT lease_expires_at, lease_granted_at FROM rf_daemon_clusters WHERE cluster_name = $1",
    )
    .bind(cluster)
    .fetch_one(store.pool())
    .await
    .unwrap()
}

/// With session-bound leases (the default) a crash frees the lease with the
/// dead process's session: the standby is granted it while the dead node's
/// lease is still unexpired by the database clock, instead of after ttl +
/// grace.
#[tokio::test]
async fn a_crash_frees_the_lease_before_its_ttl() {
    let (db, store) = setup().await;
    let (a, _b, first) = hot_and_standby(&db, &store, "crash-session", "payments").await;
    let v = view(&store, "payments").await.unwrap();
    assert!(v.lease_session.is_some_and(|s| s.alive), "{v:?}");

    // Read first: a renewal in between only moves the expiry later.
    let (expires_before_kill, _) = lease_times(&store, "payments").await;
    a.signal("KILL");
    let (second, _) = wait_hot(&store, "payments", "b", CRASH_BOUND).await;
    assert!(second > first);
    let (_, granted) = lease_times(&store, "payments").await;
    assert!(
        granted < expires_before_kill,
        "b was granted at {granted}, after a's lease ran out at {expires_before_kill}"
    );
}

/// The database ends the hot node's lease session while the node runs: its
/// lease is free at once; whoever takes it gets a new epoch, the old one is
/// fenced, and the old holder stands by (or wins again), never exits.
#[tokio::test]
async fn a_live_node_whose_lease_session_ends_is_fenced_and_stands_by() {
    let (db, store) = setup().await;
    let (mut a, mut b, first) = hot_and_standby(&db, &store, "session-ended", "audit").await;
    wait_fenced_write(&store, "audit", "a", first).await;
    let key = view(&store, "audit")
        .await
        .unwrap()
        .lease_session
        .expect("a's lease names its session")
        .key;
    end_session(store.pool(), key).await;

    let (v, _) = wait_for_view(
        &store,
        "audit",
        "a new epoch held by a live session",
        CRASH_BOUND,
        Duration::from_millis(20),
        |v| v.epoch > first && v.leader.as_deref().is_some_and(|l| v.holds_valid_lease(l)),
    )
    .await;
    assert!(
        store.begin_fenced("audit", first).await.is_err(),
        "epoch {first} must be fenced"
    );
    let leader = v.leader.clone().unwrap();
    let other = if leader == "a" { "b" } else { "a" };
    wait_role(&store, "audit", other, "cold", Duration::from_secs(5)).await;
    assert!(a.is_running() && b.is_running(), "nobody exits");
    for p in [&mut a, &mut b] {
        p.signal("INT");
        assert!(p.wait_exit(Duration::from_secs(10)).is_some());
    }
}

/// `--session-leases off` (a transaction-pooling PgBouncer): the lease names
/// no session and is judged by its ttl alone.
#[tokio::test]
async fn with_session_leases_off_the_lease_is_judged_by_its_ttl() {
    let (db, store) = setup().await;
    let off = ["--session-leases", "off"];
    let a = node(&db, "session-off", "reports", "a", &off);
    let (first, _) = wait_hot(&store, "reports", "a", Duration::from_secs(10)).await;
    let _b = node(&db, "session-off", "reports", "b", &off);
    wait_role(&store, "reports", "b", "cold", Duration::from_secs(10)).await;
    assert_eq!(view(&store, "reports").await.unwrap().lease_session, None);

    // Read first: the lease can only run out later than this.
    let (expires_before_kill, _) = lease_times(&store, "reports").await;
    a.signal("KILL");
    let (second, _) = wait_hot(&store, "reports", "b", CRASH_BOUND).await;
    assert!(second > first);
    let (_, granted) = lease_times(&store, "reports").await;
    assert!(
        granted > expires_before_kill,
        "without a session the lease is waited out: granted {granted}, expired {expires_before_kill}"
    );
}

#[tokio::test]
async fn graceful_handoff_is_fast_and_exits_cleanly() {
    let (db, store) = setup().await;
    let (mut a, _b, _) = hot_and_standby(&db, &store, "handoff", "orders").await;

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
    let (mut a, _b, first) = hot_and_standby(&db, &store, "freeze", "ledger").await;
    // Freeze it only after its first fenced write has landed, so the check
    // below has a write of the old epoch to compare with the new grant.
    wait_fenced_write(&store, "ledger", "a", first).await;

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

    // Both ran their write probe through the fence. The new leader's lands
    // under its epoch; the old leader's last write under its epoch committed
    // before the new grant, and none after it (LEASE-1).
    let start = Instant::now();
    loop {
        let rows: Vec<(String, Option<i64>, Option<bool>)> = sqlx::query_as(
            "SELECT n.node_name, n.fenced_epoch, n.fenced_write_at < c.lease_granted_at
             FROM rf_daemon_nodes n JOIN rf_daemon_clusters c USING (cluster_name)
             WHERE cluster_name = 'ledger' ORDER BY n.node_name",
        )
        .fetch_all(store.pool())
        .await
        .unwrap();
        let new_leader_wrote = rows
            .iter()
            .any(|r| r.0 == "b" && r.1 == Some(second as i64));
        if new_leader_wrote {
            let old = rows.iter().find(|r| r.0 == "a").expect("a's row");
            assert_eq!(
                old.1,
                Some(first as i64),
                "a wrote under epoch {first} only"
            );
            assert_eq!(
                old.2,
                Some(true),
                "a's last write precedes the grant of epoch {second}"
            );
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "b never wrote: {rows:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn restart_with_the_same_name_rejoins() {
    let (db, store) = setup().await;
    let (mut a, _b, old_epoch) = hot_and_standby(&db, &store, "restart", "search").await;
    a.signal("KILL");
    a.wait_exit(Duration::from_secs(5));
    // Back before its lease ran out, on its own leftover (hot) row.
    let mut again = node(&db, "restart-2", "search", "a", &[]);
    // Either standby may win the expired lease (the freshest heartbeat is
    // the candidate): the restarted node only through a new grant.
    let (v, _) = wait_for_view(
        &store,
        "search",
        "a new grant",
        CRASH_BOUND,
        Duration::from_millis(20),
        |v| v.epoch > old_epoch && ["a", "b"].iter().any(|n| v.holds_valid_lease(n)),
    )
    .await;
    let other = if v.holds_valid_lease("a") { "b" } else { "a" };
    wait_role(&store, "search", other, "cold", Duration::from_secs(10)).await;
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
    let (_a, _b, _) = hot_and_standby(&db, &store, "manual", "mail").await;

    // Runs the CLI; `ok` asserts success and shows stderr otherwise.
    let ok = |out: &std::process::Output| {
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        )
    };
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
    ok(&out);
    assert!(view(&store, "mail").await.unwrap().holds_valid_lease("b"));

    let out = cli(&[
        "projections",
        "demote",
        "--cluster",
        "mail",
        "--wait-secs",
        "10",
    ]);
    ok(&out);
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

    let out = cli(&[
        "projections",
        "run-loop",
        "--cluster-mode",
        "hotcold",
        "--cluster-name",
        "bad\tname",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    let clusters: Vec<String> =
        sqlx::query_scalar("SELECT cluster_name FROM rf_daemon_clusters ORDER BY 1")
            .fetch_all(store.pool())
            .await
            .unwrap();
    assert_eq!(clusters, ["mail"], "a refused name writes nothing");
}

/// Cluster-level figures as the metrics state them.
fn metric_figures(text: &str, cluster: &str) -> Vec<(String, f64)> {
    let scrape = prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_owned())))
        .expect("valid exposition");
    let mut figures: Vec<(String, f64)> = scrape
        .samples
        .iter()
        .filter(|s| s.labels.get("cluster") == Some(cluster))
        .map(|s| {
            let value = match s.value {
                prometheus_parse::Value::Gauge(v) | prometheus_parse::Value::Untyped(v) => v,
                ref other => panic!("unexpected sample type {other:?}"),
            };
            let node = s
                .labels
                .get("node")
                .map(|n| format!("{{{n}}}"))
                .unwrap_or_default();
            (format!("{}{node}", s.metric), value)
        })
        .filter(|(name, _)| !name.contains("heartbeat_age") && !name.contains("lease_seconds"))
        .collect();
    figures.sort_by(|a, b| a.0.cmp(&b.0));
    figures
}

/// The same figures as `cluster-status --output json` states them.
fn status_figures(doc: &serde_json::Value) -> Vec<(String, f64)> {
    let c = &doc["clusters"][0];
    let cluster = |k: &str| {
        c[k].as_f64()
            .unwrap_or_else(|| if c[k].as_bool().unwrap() { 1.0 } else { 0.0 })
    };
    let mut figures = vec![
        ("daemon_cluster_healthy".to_owned(), cluster("healthy")),
        (
            "daemon_cluster_standby_nodes".to_owned(),
            cluster("standby_nodes"),
        ),
        (
            "daemon_cluster_required_standbys".to_owned(),
            cluster("min_cold_standbys"),
        ),
        ("daemon_cluster_hot_nodes".to_owned(), cluster("hot_nodes")),
        ("daemon_cluster_nodes".to_owned(), cluster("nodes_total")),
        ("daemon_cluster_health_score".to_owned(), cluster("score")),
        ("daemon_cluster_epoch".to_owned(), cluster("epoch")),
    ];
    for n in c["nodes"].as_array().unwrap() {
        let hot = if n["hot"].as_bool().unwrap() {
            1.0
        } else {
            0.0
        };
        figures.push((
            format!("daemon_node_hot{{{}}}", n["name"].as_str().unwrap()),
            hot,
        ));
    }
    figures.sort_by(|a, b| a.0.cmp(&b.0));
    figures
}

#[tokio::test]
async fn cluster_status_and_metrics_agree() {
    let (db, store) = setup().await;
    let port = free_port();
    let bind = format!("127.0.0.1:{port}");
    let _a = node(&db, "metrics", "tax", "a", &["--health-bind", &bind]);
    wait_hot(&store, "tax", "a", Duration::from_secs(10)).await;
    let b = node(&db, "metrics", "tax", "b", &[]);
    wait_role(&store, "tax", "b", "cold", Duration::from_secs(10)).await;

    let status = || {
        let out = Command::new(BIN)
            .args([
                "projections",
                "cluster-status",
                "--cluster",
                "tax",
                "--output",
                "json",
            ])
            .env("DATABASE_URL", &db.url)
            .output()
            .expect("run rillflow");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice::<serde_json::Value>(&out.stdout)
            .expect("cluster-status prints JSON")
    };
    // Both read the database at slightly different moments; retry until a
    // pair of readings agrees.
    let agree = |want_healthy: f64| {
        let start = Instant::now();
        loop {
            let (line, text) = http_get(port, "/metrics").unwrap_or_default();
            let doc = status();
            if line.contains("200") {
                let (m, s) = (metric_figures(&text, "tax"), status_figures(&doc));
                if m == s && m.contains(&("daemon_cluster_healthy".to_owned(), want_healthy)) {
                    return text;
                }
                assert!(
                    start.elapsed() < Duration::from_secs(15),
                    "metrics {m:?} vs status {s:?}"
                );
            }
            assert!(
                start.elapsed() < Duration::from_secs(15),
                "health server not answering: {line}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    };

    let text = agree(1.0);
    let mut types: Vec<&str> = text.lines().filter(|l| l.starts_with("# TYPE ")).collect();
    let total = types.len();
    types.sort();
    types.dedup();
    assert_eq!(types.len(), total, "a # TYPE line repeats:\n{text}");
    for name in [
        "daemon_cluster_healthy",
        "daemon_cluster_standby_nodes",
        "daemon_cluster_required_standbys",
        "daemon_cluster_hot_nodes",
        "daemon_cluster_nodes",
        "daemon_node_hot",
        "daemon_node_heartbeat_age_seconds",
        "daemon_node_lease_seconds",
    ] {
        assert!(
            text.contains(&format!("# TYPE {name} gauge")),
            "{name} missing:\n{text}"
        );
    }
    let (line, body) = http_get(port, "/").expect("GET /");
    assert!(line.contains("200"), "{line}");
    let doc: serde_json::Value = serde_json::from_str(&body).unwrap();
    let tax = doc["hotcold"]["clusters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["cluster"] == "tax")
        .unwrap();
    assert_eq!(tax["healthy"], true);
    assert_eq!(tax["heartbeat_ms"], 1000);
    assert_eq!(doc["node"]["role"], "hot");

    // The only standby dies: once its heartbeat is older than the lease it
    // no longer counts, and both views say the cluster is unhealthy.
    b.signal("KILL");
    agree(0.0);
}

/// A server of the test's own, since restarting the shared one would break
/// every other test. Stopped and removed on drop.
struct OwnServer {
    cluster: rillflow_adapters::LocalCluster,
}

impl OwnServer {
    async fn start(name: &str) -> (OwnServer, String) {
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("{name}-{}", std::process::id()));
        let start_dir = dir.clone();
        let cluster = tokio::task::spawn_blocking(move || {
            rillflow_adapters::LocalCluster::start(
                &start_dir,
                &rillflow_adapters::ClusterSettings::for_tests(),
            )
        })
        .await
        .unwrap()
        .expect("a server of the test's own (needs the PostgreSQL server binaries)");
        cluster.ensure_database("rillflow").await.unwrap();
        let url = cluster.url("rillflow");
        let pool = rillflow_adapters::connect(&url, &Default::default())
            .await
            .unwrap();
        rillflow_adapters::Migrations::apply(&pool).await.unwrap();
        pool.close().await;
        (OwnServer { cluster }, url)
    }

    fn stop(&self) {
        self.cluster.stop().expect("stop the server");
    }

    fn start_again(&self) {
        rillflow_adapters::LocalCluster::start(
            self.cluster.dir(),
            &rillflow_adapters::ClusterSettings::for_tests(),
        )
        .expect("restart the server");
    }
}

impl Drop for OwnServer {
    fn drop(&mut self) {
        let _ = self.cluster.stop();
        let _ = std::fs::remove_dir_all(self.cluster.dir());
    }
}

#[tokio::test]
async fn a_postgres_restart_leaves_one_hot_node() {
    let (server, url) = OwnServer::start("pg-restart").await;
    let db_url = |args: &[&str], name: &str| {
        let mut all = fast_hotcold_args("feeds", name);
        all.extend_from_slice(args);
        Process::spawn(BIN.as_ref(), name, &url, &all, &log_dir("pg-restart"))
    };
    let store = PgLeaseStore::new(
        rillflow_adapters::connect(&url, &Default::default())
            .await
            .unwrap(),
    );
    let mut a = db_url(&[], "a");
    wait_hot(&store, "feeds", "a", Duration::from_secs(10)).await;
    let mut b = db_url(&[], "b");
    wait_role(&store, "feeds", "b", "cold", Duration::from_secs(10)).await;
    let before = view(&store, "feeds").await.unwrap().epoch;

    // Down for longer than the lease: the hot node must give it up on its
    // own clock, and nobody can take it while the database is away.
    server.stop();
    tokio::time::sleep(Duration::from_secs(4)).await;
    server.start_again();

    let start = Instant::now();
    loop {
        if let Some(v) = view(&store, "feeds").await {
            let hot: Vec<&str> = ["a", "b"]
                .into_iter()
                .filter(|n| v.holds_valid_lease(n))
                .collect();
            let both_beating = v
                .nodes
                .iter()
                .filter(|n| n.heartbeat_age_ms < 2_000)
                .count()
                == 2;
            if hot.len() == 1 && both_beating && v.epoch > before {
                break;
            }
        }
        assert!(
            start.elapsed() < CRASH_BOUND * 2,
            "no single hot node after the restart: {:?}",
            view(&store, "feeds").await
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        a.is_running() && b.is_running(),
        "a database restart is no reason to exit"
    );
}
