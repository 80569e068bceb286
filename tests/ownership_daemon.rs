//! Dynamic partition ownership with real daemons on real Postgres: workers
//! join, leave gracefully, are killed and come back while a writer keeps
//! appending; the projection is repartitioned live. The read model must end
//! equal to the fold of every event, each applied once and in order (PROJ-1,
//! PROJ-4), and shares must settle fair after every change.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rillflow_adapters::ownership::PgOwnershipStore;
use rillflow_adapters::projection::ProjectionCatalog;
use rillflow_adapters::EventStore;
use rillflow_testkit::session_locks::{end_session, session_pid};
use rillflow_testkit::stream_counts::{assert_fold, fixture, wait_caught_up, writer};
use rillflow_testkit::{fast_auto_args, CliRunner, Process, TestDb};
use serde_json::Value;
use sqlx::PgPool;
use uuid::Uuid;

const BIN: &str = env!("CARGO_BIN_EXE_rillflow");

fn log_dir(test: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join("ownership-logs")
        .join(test)
}

/// An auto-mode worker at the fast timing (heartbeat 1 s, ttl 3 s).
fn worker(db: &TestDb, test: &str, name: &str, partitions: &str) -> Process {
    let file = fixture();
    let args = fast_auto_args(&file, name, partitions);
    Process::spawn(BIN.as_ref(), name, &db.url, &args, &log_dir(test))
}

/// Partitions owned per live worker, from `projections owners --output
/// json`; None until a worker registered the projection.
fn shares(cli: &CliRunner) -> Option<BTreeMap<String, u64>> {
    let out = cli.run(&["projections", "owners", "stream_counts", "--output", "json"]);
    if !out.status.success() {
        return None;
    }
    let v: Value = serde_json::from_slice(&out.stdout).expect("json output");
    let mut by_worker = BTreeMap::new();
    for p in v["owners"].as_array().expect("owners") {
        if let Some(owner) = p["owner"].as_str() {
            *by_worker.entry(owner.to_owned()).or_insert(0) += 1;
        }
    }
    Some(by_worker)
}

/// Waits until exactly `expected` owns partitions, with these counts.
fn wait_shares(cli: &CliRunner, expected: &[(&str, u64)], limit: Duration) {
    let want: BTreeMap<String, u64> = expected.iter().map(|(w, n)| (w.to_string(), *n)).collect();
    let start = Instant::now();
    loop {
        let got = shares(cli);
        if got.as_ref() == Some(&want) {
            return;
        }
        assert!(
            start.elapsed() < limit,
            "shares did not settle to {want:?} within {limit:?}: {got:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

struct Load {
    streams: Vec<Uuid>,
    stop: Arc<AtomicBool>,
    sent: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

fn start_writer(store: EventStore) -> Load {
    let streams: Vec<Uuid> = (1..=64u128)
        .map(|i| Uuid::from_u128(i.wrapping_mul(0x9e37_79b9_7f4a_7c15_f39c_c060_5ced_c835)))
        .collect();
    let stop = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicU64::new(0));
    let task = writer(store, streams.clone(), stop.clone(), sent.clone());
    Load {
        streams,
        stop,
        sent,
        task,
    }
}

impl Load {
    async fn finish(self) -> (Vec<Uuid>, i64) {
        self.stop.store(true, Ordering::SeqCst);
        self.task.await.expect("writer");
        (self.streams, self.sent.load(Ordering::SeqCst) as i64)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scaling_1_4_2_3_workers_while_appending_applies_each_event_once() {
    let mut db = TestDb::migrated().await;
    let pool = db.pool().await;
    let cli = CliRunner::new(BIN, &db);
    let test = "scale";
    let settle = Duration::from_secs(20);
    let load = start_writer(EventStore::new(pool.clone()));

    let mut w = BTreeMap::new();
    w.insert("w1", worker(&db, test, "w1", "8"));
    wait_shares(&cli, &[("w1", 8)], settle);

    // 1 -> 4: the newcomers take only what w1 gives up.
    for name in ["w2", "w3", "w4"] {
        w.insert(name, worker(&db, test, name, "8"));
    }
    wait_shares(&cli, &[("w1", 2), ("w2", 2), ("w3", 2), ("w4", 2)], settle);

    // 4 -> 2: w3 leaves gracefully, w4 is killed; its leases run out.
    let mut w3 = w.remove("w3").expect("w3");
    w3.signal("TERM");
    assert!(
        w3.wait_exit(Duration::from_secs(10)).is_some(),
        "w3 stopped"
    );
    let mut w4 = w.remove("w4").expect("w4");
    w4.signal("KILL");
    w4.wait_exit(Duration::from_secs(5)).expect("w4 killed");
    wait_shares(&cli, &[("w1", 4), ("w2", 4)], settle);

    // 2 -> 3: a new worker joins.
    w.insert("w5", worker(&db, test, "w5", "8"));
    wait_shares(&cli, &[("w1", 3), ("w2", 3), ("w5", 2)], settle);

    let (streams, total) = load.finish().await;
    assert!(total > 300, "the writer kept appending: {total}");
    wait_caught_up(&pool, total, Duration::from_secs(30)).await;
    assert_fold(&pool, &streams).await;
    let status = ProjectionCatalog::new(pool.clone())
        .status("stream_counts")
        .await
        .unwrap();
    assert_eq!(status.processed_total(), total);
    assert_eq!(status.errors_total(), 0, "{status:?}");
    assert!(status.ownership.dynamic);
    assert!(
        status.ownership.rebalances_total >= 8 + 6 + 4 + 2,
        "every move is a grant: {:?}",
        status.ownership
    );
    drop(w);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repartitioning_4_8_3_live_applies_each_event_once() {
    let mut db = TestDb::migrated().await;
    let pool = db.pool().await;
    let cli = CliRunner::new(BIN, &db);
    let test = "repartition";
    let settle = Duration::from_secs(20);
    let load = start_writer(EventStore::new(pool.clone()));
    let workers: Vec<Process> = ["r1", "r2", "r3"]
        .iter()
        .map(|n| worker(&db, test, n, "4"))
        .collect();
    wait_shares(&cli, &[("r1", 2), ("r2", 1), ("r3", 1)], settle);
    tokio::time::sleep(Duration::from_millis(800)).await;

    let out = cli.json(&[
        "projections",
        "repartition",
        "stream_counts",
        "--partitions",
        "8",
        "--output",
        "json",
    ]);
    assert_eq!(
        (out["from"].as_u64(), out["to"].as_u64()),
        (Some(4), Some(8))
    );
    assert_eq!(out["changed"], Value::Bool(true));
    wait_shares(&cli, &[("r1", 3), ("r2", 3), ("r3", 2)], settle);
    tokio::time::sleep(Duration::from_millis(800)).await;

    let text = cli.ok(&[
        "projections",
        "repartition",
        "stream_counts",
        "--partitions",
        "3",
    ]);
    assert!(text.contains("8 -> 3 partitions"), "{text}");
    wait_shares(&cli, &[("r1", 1), ("r2", 1), ("r3", 1)], settle);
    let again = cli.ok(&[
        "projections",
        "repartition",
        "stream_counts",
        "--partitions",
        "3",
    ]);
    assert!(again.contains("nothing changed"), "{again}");

    let (streams, total) = load.finish().await;
    assert!(total > 300, "the writer kept appending: {total}");
    wait_caught_up(&pool, total, Duration::from_secs(30)).await;
    assert_fold(&pool, &streams).await;
    let status = ProjectionCatalog::new(pool.clone())
        .status("stream_counts")
        .await
        .unwrap();
    assert_eq!(status.total_partitions, 3);
    assert_eq!(status.partitions.len(), 3);
    assert_eq!(status.processed_total(), total);
    assert_eq!(status.errors_total(), 0, "{status:?}");
    drop(workers);
}

/// A worker frozen (SIGSTOP) while holding partitions loses them when its
/// leases run out; woken up, it must not write under the old epochs, and the
/// read model stays exact. Its /metrics, served from the database's figures
/// (refreshed in the background), show the new owners with one header per
/// family.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frozen_worker_is_fenced_after_its_partitions_move() {
    use rillflow_testkit::{free_port, http_get, http_get_with, wait_for_body};
    const DIAG_TOKEN: &str = "test-diag-token-0123456789";

    let mut db = TestDb::migrated().await;
    let pool = db.pool().await;
    let cli = CliRunner::new(BIN, &db);
    let test = "freeze";
    let settle = Duration::from_secs(20);
    let load = start_writer(EventStore::new(pool.clone()));
    let f1 = worker(&db, test, "f1", "4");
    let port = free_port();
    let bind = format!("127.0.0.1:{port}");
    let file = fixture();
    let mut args = fast_auto_args(&file, "f2", "4");
    args.extend_from_slice(&["--health-bind", &bind, "--diag-token", DIAG_TOKEN]);
    let f2 = Process::spawn(BIN.as_ref(), "f2", &db.url, &args, &log_dir(test));
    wait_shares(&cli, &[("f1", 2), ("f2", 2)], settle);

    f1.signal("STOP");
    let frozen_at = Instant::now();
    wait_shares(&cli, &[("f2", 4)], settle);
    let takeover = frozen_at.elapsed();
    assert!(
        takeover < Duration::from_secs(3 + 1 + 2),
        "partitions moved within ttl + heartbeat (+ slack): {takeover:?}"
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    f1.signal("CONT");
    // Back, it claims its share again through new grants.
    wait_shares(&cli, &[("f1", 2), ("f2", 2)], settle);

    // The health server refreshes its figures every 2 s: wait for them to
    // show the shares the CLI just saw.
    let metrics = wait_for_body(port, "/metrics", Duration::from_secs(10), |t| {
        t.contains(
            r#"rillflow_projection_partitions_owned{projection="stream_counts",worker="f2"} 2"#,
        )
    });
    for family in [
        "rillflow_projection_partitions_owned",
        "rillflow_projection_rebalances_total",
        "rillflow_projection_unowned_partitions",
        "rillflow_projection_unowned_partition_seconds_total",
    ] {
        let header = format!("# TYPE {family} ");
        assert_eq!(metrics.matches(&header).count(), 1, "{family}:\n{metrics}");
    }
    assert!(
        metrics.contains(
            r#"rillflow_projection_partitions_owned{projection="stream_counts",worker="f2"} 2"#
        ),
        "{metrics}"
    );

    // The diagnostics bundle is served too, from the database, to the token
    // only.
    let (status, _) = http_get(port, "/diag/bundle").expect("bundle answered");
    assert!(status.contains("401"), "{status}");
    let bearer = format!("Bearer {DIAG_TOKEN}");
    let (_, bundle) = http_get_with(port, "/diag/bundle", &[("Authorization", &bearer)])
        .expect("bundle answered");
    let bundle: Value = serde_json::from_str(&bundle).expect("bundle is JSON");
    assert_eq!(bundle["config"]["partitions"], "auto");
    assert_eq!(bundle["config"]["diag_over_http"], true);
    assert!(
        !bundle.to_string().contains(DIAG_TOKEN),
        "the token stays out"
    );
    assert_eq!(bundle["process"]["name"], "f2");
    assert_eq!(bundle["projections"][0]["ownership"]["dynamic"], true);

    let (streams, total) = load.finish().await;
    wait_caught_up(&pool, total, Duration::from_secs(30)).await;
    assert_fold(&pool, &streams).await;
    let status = ProjectionCatalog::new(pool.clone())
        .status("stream_counts")
        .await
        .unwrap();
    assert_eq!(status.processed_total(), total);
    assert_eq!(status.errors_total(), 0, "{status:?}");
    drop((f1, f2));
}

/// A worker of the projections in `file` that only wake-ups bring events
/// to: it polls every ten minutes and runs an ownership round (which also
/// wakes it) once a minute, far beyond the bounds these tests wait.
fn quiet_worker(db: &TestDb, test: &str, file: &str) -> Process {
    let mut args = fast_auto_args(file, "solo", "2");
    for (flag, value) in [
        ("--poll-interval-ms", "600000"),
        ("--heartbeat-secs", "60"),
        ("--lease-ttl-secs", "180"),
    ] {
        let at = args.iter().position(|a| *a == flag).unwrap();
        args[at + 1] = value;
    }
    Process::spawn(BIN.as_ref(), "solo", &db.url, &args, &log_dir(test))
}

/// Waits until the quiet worker owns both partitions of `projections`.
async fn wait_claimed(cli: &CliRunner, projections: &[&str]) {
    for name in projections {
        let start = Instant::now();
        loop {
            let out = cli.run(&["projections", "owners", name, "--output", "json"]);
            if out.status.success() {
                let v: Value = serde_json::from_slice(&out.stdout).expect("json output");
                let owned = v["owners"].as_array().expect("owners").iter();
                if owned.filter(|p| p["owner"] == "solo").count() == 2 {
                    break;
                }
            }
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "{name}: partitions never claimed"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// Waits until `name` has applied all `total` events with no lag.
async fn wait_applied(catalog: &ProjectionCatalog, name: &str, total: i64, limit: Duration) {
    let start = Instant::now();
    loop {
        let s = catalog.status(name).await.unwrap();
        if s.processed_total() == total && s.lag() == 0 {
            return;
        }
        assert!(
            start.elapsed() < limit,
            "{name} was not woken: {} of {total} within {limit:?}",
            s.processed_total()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Every projection of an auto-mode worker hears of new events: with
/// polling and rounds all but off, both projections of one file still catch
/// up. Their batches hold each other's reads back while they are open (a
/// batch is a transaction of this database), so this also needs held-back
/// reads to be looked at again without a new wake-up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_projection_of_a_worker_is_woken_by_new_events() {
    let mut db = TestDb::migrated().await;
    let pool = db.pool().await;
    let cli = CliRunner::new(BIN, &db);
    let test = "two-projections";
    let fixture_text = std::fs::read_to_string(fixture()).expect("fixture");
    let twin = fixture_text.replace("stream_counts", "stream_counts_twin");
    let dir = log_dir(test);
    std::fs::create_dir_all(&dir).unwrap();
    // Named for this process: a second run of the suite may write its own.
    let file = dir.join(format!("two-{}.toml", std::process::id()));
    std::fs::write(&file, format!("{fixture_text}\n{twin}")).unwrap();
    let _solo = quiet_worker(&db, test, &file.to_string_lossy());
    wait_claimed(&cli, &["stream_counts", "stream_counts_twin"]).await;
    let load = start_writer(EventStore::new(pool.clone()));
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (_, total) = load.finish().await;
    let catalog = ProjectionCatalog::new(pool.clone());
    for name in ["stream_counts", "stream_counts_twin"] {
        wait_applied(&catalog, name, total, Duration::from_secs(20)).await;
    }
}

/// Events that committed behind a transaction still open in the same
/// database wait for it (PROJ-2); when it ends without appending, nothing
/// notifies the worker, which must look again by itself instead of sleeping
/// until its next poll (ten minutes here).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_held_back_by_an_open_transaction_are_applied_once_it_ends() {
    let mut db = TestDb::migrated().await;
    let pool = db.pool().await;
    let cli = CliRunner::new(BIN, &db);
    let _solo = quiet_worker(&db, "held-back", &fixture());
    wait_claimed(&cli, &["stream_counts"]).await;

    // A transaction with an id, in this database, registered as one that
    // may append (sql/0016), that appends nothing: readers must wait for it.
    let mut blocker = pool.begin().await.unwrap();
    sqlx::query("SELECT rf_register_appender(), pg_current_xact_id()")
        .execute(&mut *blocker)
        .await
        .unwrap();
    let load = start_writer(EventStore::new(pool.clone()));
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (streams, total) = load.finish().await;
    assert!(total > 0);
    // The wake-ups came and found nothing readable yet.
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let catalog = ProjectionCatalog::new(pool.clone());
    let status = catalog.status("stream_counts").await.unwrap();
    assert_eq!(status.processed_total(), 0, "read past an open transaction");

    blocker.commit().await.unwrap();
    wait_applied(&catalog, "stream_counts", total, Duration::from_secs(20)).await;
    assert_fold(&pool, &streams).await;
}

/// The earliest expiry among `worker`'s leases, in seconds since the epoch
/// by the database clock.
async fn earliest_expiry(pool: &PgPool, worker: &str) -> f64 {
    sqlx::query_scalar(
        "SELECT extract(epoch FROM min(expires_at))::float8 FROM rf_partition_leases
          WHERE projection = 'stream_counts' AND owner = $1",
    )
    .bind(worker)
    .fetch_one(pool)
    .await
    .expect("a lease of the worker")
}

/// Waits until exactly `expected` owns partitions, with these counts, as
/// the database's view shows them, looking every 10 ms; the database clock
/// then, in seconds since the epoch.
async fn owned_at(pool: &PgPool, expected: &[(&str, u64)], limit: Duration) -> f64 {
    let want: BTreeMap<String, u64> = expected.iter().map(|(w, n)| (w.to_string(), *n)).collect();
    let store = PgOwnershipStore::new(pool.clone());
    let start = Instant::now();
    loop {
        let view = store
            .view("stream_counts", Duration::from_secs(3))
            .await
            .expect("view");
        let mut got = BTreeMap::new();
        for owner in view.owners().into_values() {
            *got.entry(owner).or_insert(0) += 1;
        }
        if got == want {
            return sqlx::query_scalar("SELECT extract(epoch FROM clock_timestamp())::float8")
                .fetch_one(pool)
                .await
                .unwrap();
        }
        assert!(
            start.elapsed() < limit,
            "shares did not settle to {want:?} within {limit:?}: {got:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// The session key `worker`'s registration is bound to.
async fn registration_key(pool: &PgPool, worker: &str) -> Option<i64> {
    sqlx::query_scalar(
        "SELECT lease_lock_key FROM rf_projection_workers
          WHERE projection = 'stream_counts' AND worker = $1",
    )
    .bind(worker)
    .fetch_one(pool)
    .await
    .expect("a registration")
}

/// True when some survivor's log says it saw the worker it watched die
/// (its waiter woke, or its view showed it gone first) and told the others.
fn announced(test: &str, survivors: &[&str]) -> bool {
    survivors.iter().any(|name| {
        std::fs::read_to_string(log_dir(test).join(format!("{name}.log")))
            .unwrap_or_default()
            .contains("; told the others")
    })
}

/// kill -9 of one of three workers: its registration and leases end with
/// its session (sql/0018), the survivor watching that session tells the
/// others, and they own all partitions while the dead worker's leases are
/// still unexpired by the database clock: the move did not wait for the
/// ttl. The read model stays exact.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_workers_partitions_move_before_its_leases_could_expire() {
    let mut db = TestDb::migrated().await;
    let pool = db.pool().await;
    let cli = CliRunner::new(BIN, &db);
    let test = "kill-session";
    let settle = Duration::from_secs(20);
    let load = start_writer(EventStore::new(pool.clone()));
    let mut w: BTreeMap<&str, Process> = ["k1", "k2", "k3"]
        .into_iter()
        .map(|n| (n, worker(&db, test, n, "8")))
        .collect();
    wait_shares(&cli, &[("k1", 3), ("k2", 3), ("k3", 2)], settle);

    // Read before the kill: renewals only push it later.
    let expiry = earliest_expiry(&pool, "k3").await;
    let mut k3 = w.remove("k3").expect("k3");
    k3.signal("KILL");
    k3.wait_exit(Duration::from_secs(5)).expect("k3 killed");
    // Polled on a pooled connection, not through the CLI: a process per
    // look would delay the observation, and the assertion is about when.
    let now = owned_at(&pool, &[("k1", 4), ("k2", 4)], settle).await;
    assert!(
        now < expiry,
        "the survivors own k3's partitions {:.3} s before its earliest lease expires",
        expiry - now
    );
    assert!(
        announced(test, &["k1", "k2"]),
        "k2 watched k3's session and told the others"
    );

    let (streams, total) = load.finish().await;
    wait_caught_up(&pool, total, Duration::from_secs(30)).await;
    assert_fold(&pool, &streams).await;
    let status = ProjectionCatalog::new(pool.clone())
        .status("stream_counts")
        .await
        .unwrap();
    assert_eq!(status.processed_total(), total);
    assert_eq!(status.errors_total(), 0, "{status:?}");
    drop(w);
}

/// A worker whose lease session the server ends (pg_terminate_backend)
/// while it runs loses its registration and leases at once, keeps running,
/// notices on its next statement, and re-joins on a new session; any batch
/// it had under the old epochs is refused once a partition moved, so the
/// read model stays exact.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_whose_session_is_ended_keeps_running_and_rejoins() {
    let mut db = TestDb::migrated().await;
    let pool = db.pool().await;
    let cli = CliRunner::new(BIN, &db);
    let test = "end-session";
    let settle = Duration::from_secs(20);
    let load = start_writer(EventStore::new(pool.clone()));
    let mut w: BTreeMap<&str, Process> = ["s1", "s2", "s3"]
        .into_iter()
        .map(|n| (n, worker(&db, test, n, "8")))
        .collect();
    wait_shares(&cli, &[("s1", 3), ("s2", 3), ("s3", 2)], settle);

    let old = registration_key(&pool, "s3")
        .await
        .expect("bound to a session");
    end_session(&pool, old).await;
    let start = Instant::now();
    let new = loop {
        let key = registration_key(&pool, "s3").await;
        if let Some(key) = key.filter(|k| *k != old) {
            break key;
        }
        assert!(start.elapsed() < settle, "s3 never came back: {key:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(session_pid(&pool, new).await.is_some(), "on a live session");
    wait_shares(&cli, &[("s1", 3), ("s2", 3), ("s3", 2)], settle);
    let stale: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM rf_partition_leases WHERE owner IS NOT NULL AND lease_lock_key = $1",
    )
    .bind(old)
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(stale, 0, "every lease of the old session was claimed anew");
    assert!(
        w.get_mut("s3").expect("s3").is_running(),
        "s3 stood by and re-joined"
    );

    let (streams, total) = load.finish().await;
    wait_caught_up(&pool, total, Duration::from_secs(30)).await;
    assert_fold(&pool, &streams).await;
    let status = ProjectionCatalog::new(pool.clone())
        .status("stream_counts")
        .await
        .unwrap();
    assert_eq!(status.processed_total(), total);
    assert_eq!(status.errors_total(), 0, "{status:?}");
    drop(w);
}

/// `--session-leases off` (a transaction pooler): registrations and leases
/// name no session and are judged by their ttl alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_session_leases_off_nothing_is_bound_to_a_session() {
    let mut db = TestDb::migrated().await;
    let pool = db.pool().await;
    let cli = CliRunner::new(BIN, &db);
    let file = fixture();
    let mut args = fast_auto_args(&file, "t1", "2");
    args.extend_from_slice(&["--session-leases", "off"]);
    let t1 = Process::spawn(BIN.as_ref(), "t1", &db.url, &args, &log_dir("sessions-off"));
    wait_shares(&cli, &[("t1", 2)], Duration::from_secs(20));
    assert_eq!(registration_key(&pool, "t1").await, None);
    let bound: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM rf_partition_leases WHERE lease_lock_key IS NOT NULL",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(bound, 0);
    drop(t1);
}
