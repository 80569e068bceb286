//! Projections run by the `rillflow` daemon: real processes, real signals,
//! real Postgres. A hot node killed mid-batch, again and again, while events
//! keep arriving: the read model still equals the fold of all events, each
//! applied once and in order (PROJ-1, PROJ-3), and nothing is dead-lettered.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rillflow_adapters::daemon::PgLeaseStore;
use rillflow_adapters::projection::ProjectionCatalog;
use rillflow_adapters::{EventStore, NewEvent};
use rillflow_core::ExpectedVersion;
use rillflow_testkit::stream_counts::{assert_fold, fixture, wait_caught_up, writer};
use rillflow_testkit::{fast_hotcold_args, wait_for_view, Process, TestDb};
use serde_json::json;
use uuid::Uuid;

const BIN: &str = env!("CARGO_BIN_EXE_rillflow");

fn log_dir(test: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join("projection-logs")
        .join(test)
}

fn hot_node(db: &TestDb, test: &str, cluster: &str, name: &str, file: &str) -> Process {
    let mut args = fast_hotcold_args(cluster, name);
    args.extend_from_slice(&["--projections", file, "--poll-interval-ms", "200"]);
    Process::spawn(BIN.as_ref(), name, &db.url, &args, &log_dir(test))
}

#[tokio::test]
async fn killing_the_hot_node_mid_batch_keeps_effects_exactly_once() {
    let mut db = TestDb::migrated().await;
    let pool = db.pool().await;
    let leases = PgLeaseStore::new(pool.clone());
    let file = fixture();
    let test = "kill9";
    let mut a = hot_node(&db, test, "proj", "a", &file);
    let mut b = hot_node(&db, test, "proj", "b", &file);

    let streams: Vec<Uuid> = (1..=40)
        .map(|i| Uuid::from_u128(i * 0x0101_0101_0101))
        .collect();
    let stop = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicU64::new(0));
    let w = writer(
        EventStore::new(pool.clone()),
        streams.clone(),
        stop.clone(),
        sent.clone(),
    );

    let mut kills = 0;
    for round in 0..4 {
        let (v, _) = wait_for_view(
            &leases,
            "proj",
            "a hot node",
            Duration::from_secs(15),
            Duration::from_millis(20),
            |v| v.leader.as_deref().is_some_and(|l| v.holds_valid_lease(l)),
        )
        .await;
        let leader = v.leader.clone().unwrap();
        // Let it apply a while, then kill it in the middle of whatever it does.
        tokio::time::sleep(Duration::from_millis(700 + 150 * round)).await;
        let victim = if leader == "a" { &mut a } else { &mut b };
        victim.signal("KILL");
        victim.wait_exit(Duration::from_secs(5)).expect("killed");
        kills += 1;
        *victim = hot_node(&db, test, "proj", &leader, &file);
    }
    stop.store(true, Ordering::SeqCst);
    w.await.unwrap();
    let total = sent.load(Ordering::SeqCst) as i64;
    assert!(total > 500, "the writer kept appending: {total}");
    wait_caught_up(&pool, total, Duration::from_secs(30)).await;
    assert_fold(&pool, &streams).await;
    let status = ProjectionCatalog::new(pool.clone())
        .status("stream_counts")
        .await
        .unwrap();
    assert_eq!(status.processed_total(), total, "after {kills} kills");
    assert!(status.partitions[0].owner_epoch.unwrap() >= 2, "{status:?}");
}

#[tokio::test]
async fn single_mode_workers_split_by_partition_apply_each_event_once() {
    let mut db = TestDb::migrated().await;
    let pool = db.pool().await;
    let file = fixture();
    let test = "partitions";
    let streams: Vec<Uuid> = (1..=30).map(|i| Uuid::from_u128(i << 100 | i)).collect();
    let store = EventStore::new(pool.clone());
    let mut total = 0;
    for (i, s) in streams.iter().enumerate() {
        let batch: Vec<NewEvent> = (0..1 + i % 4)
            .map(|_| NewEvent::new("Counted", json!({})))
            .collect();
        store
            .append(*s, ExpectedVersion::Any, &batch, &Default::default())
            .await
            .unwrap();
        total += batch.len() as i64;
    }
    let workers: Vec<Process> = (0..3)
        .map(|k| {
            let key = k.to_string();
            Process::spawn(
                BIN.as_ref(),
                &format!("worker-{k}"),
                &db.url,
                &[
                    "projections",
                    "run-loop",
                    "--projections",
                    &file,
                    "--partition-key",
                    &key,
                    "--total-partitions",
                    "3",
                    "--node-name",
                    &format!("w{k}"),
                ],
                &log_dir(test),
            )
        })
        .collect();
    wait_caught_up(&pool, total, Duration::from_secs(30)).await;
    assert_fold(&pool, &streams).await;
    let status = ProjectionCatalog::new(pool.clone())
        .status("stream_counts")
        .await
        .unwrap();
    assert_eq!(status.total_partitions, 3);
    assert_eq!(status.partitions.len(), 3);
    assert!(
        status.partitions.iter().all(|p| p.processed_total > 0),
        "{status:?}"
    );
    assert_eq!(status.processed_total(), total);
    drop(workers);
}

/// The health endpoint turns unhealthy (503) when a projection lags beyond
/// `--max-lag`, and healthy again once it caught up; /metrics carries the
/// projection series with one header per family.
#[tokio::test]
async fn health_reports_a_lagging_projection() {
    use rillflow_testkit::{free_port, http_get};

    let mut db = TestDb::migrated().await;
    let pool = db.pool().await;
    let file = fixture();
    let port = free_port();
    let bind = format!("127.0.0.1:{port}");
    let _daemon = Process::spawn(
        BIN.as_ref(),
        "health",
        &db.url,
        &[
            "projections",
            "run-loop",
            "--projections",
            &file,
            "--health-bind",
            &bind,
            "--max-lag",
            "5",
            "--node-name",
            "h",
        ],
        &log_dir("health"),
    );
    // The server answers from figures it refreshes every 2 s: poll until
    // an answer shows what the database holds now.
    let get_until = |path: &str, ready: &dyn Fn(&str, &str) -> bool| {
        let start = Instant::now();
        loop {
            if let Some((status, body)) = http_get(port, path) {
                if ready(&status, &body) {
                    return (status, body);
                }
                assert!(
                    start.elapsed() < Duration::from_secs(10),
                    "GET {path} never answered as expected: {status} {body}"
                );
            }
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "health server never answered"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    let get = |path: &str| get_until(path, &|_, _| true);
    // Started without a token, it keeps the diagnostics bundle to itself.
    let (status, body) = get("/diag/bundle");
    assert!(
        status.contains("404") && body.contains("RILLFLOW_DIAG_TOKEN"),
        "{status} {body}"
    );
    // Wait for the daemon to register the projection.
    let catalog = ProjectionCatalog::new(pool.clone());
    let start = Instant::now();
    while catalog.status("stream_counts").await.is_err() {
        assert!(start.elapsed() < Duration::from_secs(10));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    catalog.pause("stream_counts").await.unwrap();
    let store = EventStore::new(pool.clone());
    let batch: Vec<NewEvent> = (0..8)
        .map(|_| NewEvent::new("Counted", json!({})))
        .collect();
    store
        .append(
            Uuid::from_u128(1),
            ExpectedVersion::Any,
            &batch,
            &Default::default(),
        )
        .await
        .unwrap();

    let (status, body) = get_until("/", &|_, body| body.contains(r#""status":"unhealthy""#));
    assert!(status.contains("503"), "{status} {body}");
    let doc: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(doc["status"], "unhealthy");
    let p = &doc["projections"]["projections"][0];
    assert_eq!(
        (
            p["name"].as_str(),
            p["lag"].as_i64(),
            p["lagging"].as_bool()
        ),
        (Some("stream_counts"), Some(8), Some(true))
    );

    let (_, metrics) = get_until("/metrics", &|_, text| {
        text.contains("rillflow_projection_paused{projection=\"stream_counts\"} 1")
    });
    assert_eq!(
        metrics
            .matches("# TYPE rillflow_projection_lag_events gauge")
            .count(),
        1,
        "{metrics}"
    );
    assert!(
        metrics.contains(
            "rillflow_projection_lag_events{partition=\"0\",projection=\"stream_counts\"} 8"
        ),
        "{metrics}"
    );
    assert!(
        metrics.contains("rillflow_projection_paused{projection=\"stream_counts\"} 1"),
        "{metrics}"
    );

    catalog.resume("stream_counts").await.unwrap();
    wait_caught_up(&pool, 8, Duration::from_secs(10)).await;
    let (status, body) = get_until("/", &|status, _| status.contains("200"));
    assert!(status.contains("200"), "{status} {body}");
    let (_, metrics) = get("/metrics");
    assert!(
        metrics.contains("# TYPE rillflow_projection_batch_duration_seconds histogram"),
        "{metrics}"
    );
}

/// A handler statement longer than a heartbeat (the daemon's session
/// `statement_timeout`) is not cut: a batch has the lease's budget
/// (ttl 10 s here: 3.5 s), and the hot node keeps its lease while it runs.
#[tokio::test]
async fn a_hot_node_applies_handlers_slower_than_a_heartbeat() {
    let mut db = TestDb::migrated().await;
    let pool = db.pool().await;
    let file = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../tests/fixtures/slow_handler.toml"
    );
    let mut args = fast_hotcold_args("slow", "a");
    // Room in the lease: the budget is (ttl - margin - 2 heartbeats) / 2 = 3.5 s.
    let ttl = args.iter().position(|a| *a == "--lease-ttl-secs").unwrap() + 1;
    args[ttl] = "10";
    args.extend_from_slice(&["--projections", file, "--poll-interval-ms", "200"]);
    let _a = Process::spawn(BIN.as_ref(), "a", &db.url, &args, &log_dir("slow"));
    let catalog = ProjectionCatalog::new(pool.clone());
    let start = Instant::now();
    while catalog.status("slow_seen").await.is_err() {
        assert!(
            start.elapsed() < Duration::from_secs(15),
            "never registered"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let batch: Vec<NewEvent> = (0..2).map(|_| NewEvent::new("Slow", json!({}))).collect();
    EventStore::new(pool.clone())
        .append(
            Uuid::from_u128(7),
            ExpectedVersion::Any,
            &batch,
            &Default::default(),
        )
        .await
        .unwrap();
    let status = loop {
        let status = catalog.status("slow_seen").await.unwrap();
        if status.processed_total() + status.dead_letters >= 2 {
            break status;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "never applied: {status:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(status.dead_letters, 0, "{status:?}");
    assert_eq!(status.partitions[0].errors_total, 0, "{status:?}");
    let seen: i64 = sqlx::query_scalar("SELECT count(*) FROM slow_seen")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(seen, 2);
    // The same lease throughout: no renewal was lost to the slow batch.
    let view = PgLeaseStore::new(pool.clone())
        .cluster_view("slow")
        .await
        .unwrap()
        .expect("cluster");
    assert_eq!(view.epoch, 1, "{view:?}");
}
