//! `rillflow archive ...` as operators run it: real processes, real Postgres,
//! both backends. The spec's smoke test, bad input that changes nothing, a
//! mover killed mid-run and resumed, and the archive metrics a daemon serves.

use std::path::PathBuf;
use std::process::Output;
use std::time::{Duration, Instant};

use rillflow_testkit::{free_port, one_line_failure, wait_for_body, CliRunner, Process, TestDb};
use serde_json::Value;
use sqlx::PgPool;

const BIN: &str = env!("CARGO_BIN_EXE_rillflow");
const FUTURE: &str = "2999-01-01T00:00:00Z";

fn rillflow(db: &TestDb, args: &[&str]) -> Output {
    CliRunner::new(BIN, db).run(args)
}

fn ok(db: &TestDb, args: &[&str]) -> String {
    CliRunner::new(BIN, db).ok(args)
}

fn json(db: &TestDb, args: &[&str]) -> Value {
    CliRunner::new(BIN, db).json(args)
}

fn log_dir(test: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join("archive_cli")
        .join(test)
}

fn append(db: &TestDb, stream: &str, n: usize) {
    for i in 0..n {
        ok(
            db,
            &[
                "events",
                "append",
                "--stream",
                stream,
                "--type",
                "Noted",
                "--data",
                &format!("{{\"i\":{i}}}"),
            ],
        );
    }
}

fn versions(db: &TestDb, stream: &str) -> Vec<i64> {
    json(
        db,
        &[
            "events",
            "read",
            "--stream",
            stream,
            "--with-archived",
            "--output",
            "json",
        ],
    )
    .as_array()
    .expect("array")
    .iter()
    .map(|e| e["version"].as_i64().unwrap())
    .collect()
}

/// The spec's manual smoke test, on each backend: append, mark, dry run,
/// move, verify cold, reactivate, append, verify it lands hot, versions
/// continuous throughout.
#[tokio::test]
async fn smoke_test_on_both_backends() {
    for backend in ["dual-table", "partitioned"] {
        let db = TestDb::migrated().await;
        let stream = "7b0c1c8e-2f41-4a53-9d7e-0c5a1e3b9f20";
        ok(&db, &["archive", "backend", "--set", backend]);
        append(&db, stream, 3);
        let marked = ok(
            &db,
            &[
                "archive",
                "mark",
                stream,
                "--reason",
                "customer closed account",
                "--by",
                "ops",
            ],
        );
        assert!(marked.contains("archived"), "{marked}");

        let dry = ok(&db, &["archive", "move", "--before", FUTURE, "--dry-run"]);
        assert!(
            dry.contains(stream) && dry.contains("3 events in 1 streams"),
            "{dry}"
        );
        let status = json(&db, &["archive", "status", "--output", "json"]);
        assert_eq!(status["events_hot"], 3, "the dry run moved nothing");

        let moved = ok(
            &db,
            &["archive", "move", "--before", FUTURE, "--batch-size", "2"],
        );
        assert!(moved.contains("moved 3 events in 2 batches"), "{moved}");
        let status = json(&db, &["archive", "status", "--output", "json"]);
        let cold = match backend {
            "dual-table" => "events_archive_table",
            _ => "events_cold_partition",
        };
        assert_eq!(status[cold], 3, "{backend}: {status}");
        assert_eq!(status["events_hot"], 0, "{backend}");
        assert_eq!(status["streams_cold"], 1, "{backend}");
        assert_eq!(status["backend"], backend);
        // Hot reads leave the archived stream out.
        let hot = ok(
            &db,
            &["events", "read", "--stream", stream, "--output", "json"],
        );
        assert_eq!(
            serde_json::from_str::<Value>(&hot).unwrap(),
            Value::Array(vec![])
        );

        ok(&db, &["archive", "reactivate", stream]);
        append(&db, stream, 1);
        let status = json(&db, &["archive", "status", "--output", "json"]);
        assert_eq!(
            status["events_hot"], 1,
            "{backend}: the new event lands hot"
        );
        assert_eq!(status[cold], 3, "{backend}: cold events stay cold");
        assert_eq!(status["streams_reactivated"], 1);
        assert_eq!(versions(&db, stream), vec![1, 2, 3, 4], "{backend}");
    }
}

/// Monthly partitions: created idempotently, rows of the month already in
/// the default partition move in, and a foreign table with the name is
/// refused.
#[tokio::test]
async fn monthly_partitions_take_their_rows_from_the_default() {
    let mut db = TestDb::migrated().await;
    let pool = db.pool().await;
    ok(&db, &["archive", "backend", "--set", "partitioned"]);
    let stream = "0d7a9c2e-8f1b-4c3d-a5e6-7f8091a2b3c4";
    append(&db, stream, 4);
    let month: String = sqlx::query_scalar(
        "SELECT to_char(date_trunc('month', now() AT TIME ZONE 'UTC'), 'YYYY-MM-DD')",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    let table = format!("events_hot_{}", month[..7].replace('-', "_"));
    let created = ok(
        &db,
        &[
            "archive",
            "partition",
            "--retention",
            "hot",
            "--month",
            &month,
        ],
    );
    assert!(
        created.contains(&format!("created {table}")) && created.contains("4 rows moved"),
        "{created}"
    );
    let again = ok(
        &db,
        &[
            "archive",
            "partition",
            "--retention",
            "hot",
            "--month",
            &month,
        ],
    );
    assert!(again.contains("already exists"), "{again}");
    append(&db, stream, 1);
    let in_month: i64 = sqlx::query_scalar(&format!("SELECT count(*) FROM \"{table}\""))
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(in_month, 5, "old rows moved in and new appends land there");
    assert_eq!(versions(&db, stream), vec![1, 2, 3, 4, 5]);

    sqlx::query("CREATE TABLE events_cold_2030_01 (x int)")
        .execute(&pool)
        .await
        .unwrap();
    let out = rillflow(
        &db,
        &[
            "archive",
            "partition",
            "--retention",
            "cold",
            "--month",
            "2030-01-01",
        ],
    );
    let err = one_line_failure(&out, Some(1));
    assert!(err.contains("events_cold_2030_01 exists"), "{err}");
    let status = json(&db, &["archive", "status", "--output", "json"]);
    let names: Vec<&str> = status["partitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&table.as_str()) && !names.contains(&"events_cold_2030_01"),
        "{names:?}"
    );
}

/// Everything an archive command could change, as text.
async fn fingerprint(pool: &PgPool) -> String {
    let rows: Vec<(String,)> = sqlx::query_as(
        "SELECT concat_ws('|', 'settings', backend) FROM rf_archive_settings
         UNION ALL SELECT concat_ws('|', 'stats', streams_marked, streams_reactivated,
                                    events_moved, move_batches) FROM rf_archive_stats
         UNION ALL SELECT concat_ws('|', 'stream', stream_id, version, archived_at,
                                    archive_reason, retention_class, reactivated_at) FROM rf_streams
         UNION ALL SELECT concat_ws('|', 'event', tableoid::regclass, stream_id, version) FROM events
         UNION ALL SELECT concat_ws('|', 'archived', stream_id, version) FROM events_archive
         UNION ALL SELECT concat_ws('|', 'table', relname) FROM pg_class
                    WHERE relname LIKE 'events%' AND relkind IN ('r', 'p')
         UNION ALL SELECT concat_ws('|', 'redirect', tgenabled) FROM pg_trigger
                    WHERE tgname = 'rf_events_redirect_archived'
         ORDER BY 1",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    rows.into_iter()
        .map(|(r,)| r)
        .collect::<Vec<_>>()
        .join("\n")
}

/// OPS-1: bad input gets one clear line and a non-zero exit, and changes
/// nothing.
#[tokio::test]
async fn bad_input_is_refused_with_one_line_and_changes_nothing() {
    let mut db = TestDb::migrated().await;
    let pool = db.pool().await;
    let hot = "1a2b3c4d-0000-4000-8000-000000000001";
    let unknown = "1a2b3c4d-0000-4000-8000-00000000dead";
    append(&db, hot, 2);
    let before = fingerprint(&pool).await;
    let cases: &[(&[&str], i32, &str)] = &[
        (
            &["archive", "mark", unknown, "--reason", "x"],
            1,
            "no stream",
        ),
        (
            &["archive", "mark", "not-a-uuid", "--reason", "x"],
            2,
            "STREAM",
        ),
        (
            &["archive", "mark", hot, "--reason", "  "],
            2,
            "must not be empty",
        ),
        (&["archive", "reactivate", unknown], 1, "no stream"),
        (
            &["archive", "move", "--before", FUTURE, "--stream", unknown],
            1,
            "no stream",
        ),
        (
            &["archive", "move", "--before", FUTURE, "--stream", hot],
            1,
            "not archived",
        ),
        (
            &["archive", "move", "--before", "2024-13-01T00:00:00Z"],
            2,
            "RFC 3339",
        ),
        (&["archive", "move", "--before", "yesterday"], 2, "RFC 3339"),
        (
            &["archive", "move", "--before", FUTURE, "--batch-size", "-5"],
            2,
            "--batch-size",
        ),
        (
            &["archive", "move", "--before", FUTURE, "--batch-size", "0"],
            2,
            "--batch-size",
        ),
        (
            &[
                "archive",
                "move",
                "--before",
                FUTURE,
                "--max-events-per-sec",
                "0",
            ],
            2,
            "at least 1",
        ),
        (
            &[
                "archive",
                "move",
                "--before",
                FUTURE,
                "--max-events-per-sec",
                "-3",
            ],
            2,
            "at least 1",
        ),
        (
            &[
                "archive",
                "partition",
                "--retention",
                "hot",
                "--month",
                "2025-01-15",
            ],
            2,
            "first day",
        ),
        (
            &[
                "archive",
                "partition",
                "--retention",
                "hot",
                "--month",
                "2025-02-30",
            ],
            2,
            "not a valid date",
        ),
        (
            &[
                "archive",
                "partition",
                "--retention",
                "warm",
                "--month",
                "2025-01-01",
            ],
            2,
            "hot or cold",
        ),
        (
            &["archive", "backend", "--set", "tape"],
            2,
            "dual-table or partitioned",
        ),
        (&["archive", "redirect", "--enable", "maybe"], 2, "--enable"),
    ];
    for (args, code, needle) in cases {
        let out = rillflow(&db, args);
        let err = one_line_failure(&out, Some(*code));
        assert!(err.contains(needle), "{args:?}: {err}");
        assert_eq!(
            fingerprint(&pool).await,
            before,
            "{args:?} changed something"
        );
    }
    // Refusals that depend on the database's state.
    ok(&db, &["archive", "backend", "--set", "partitioned"]);
    let before = fingerprint(&pool).await;
    let err = one_line_failure(
        &rillflow(&db, &["archive", "redirect", "--enable", "true"]),
        Some(1),
    );
    assert!(err.contains("dual-table backend only"), "{err}");
    assert_eq!(fingerprint(&pool).await, before);
    ok(&db, &["archive", "backend", "--set", "dual-table"]);
    ok(&db, &["archive", "redirect", "--enable", "true"]);
    let before = fingerprint(&pool).await;
    let err = one_line_failure(
        &rillflow(&db, &["archive", "backend", "--set", "partitioned"]),
        Some(1),
    );
    assert!(err.contains("turn redirect off"), "{err}");
    assert_eq!(fingerprint(&pool).await, before);
}

/// ARCH-5: a mover killed with SIGKILL mid-run loses nothing and doubles
/// nothing; running it again finishes the job, and the counters match the
/// rows moved because they commit with them.
#[tokio::test]
async fn a_killed_mover_resumes_without_loss() {
    let mut db = TestDb::migrated().await;
    let pool = db.pool().await;
    let total = 3000i64;
    sqlx::query(
        "SELECT rf_append(gen_random_uuid(), 'no_stream', 0, NULL, NULL,
                          array_fill('Noted'::text, ARRAY[100]), NULL,
                          array_fill('{}'::jsonb, ARRAY[100]), NULL, NULL, NULL)
           FROM generate_series(1, 30)",
    )
    .execute(&pool)
    .await
    .unwrap();
    sqlx::query("UPDATE rf_streams SET archived_at = now(), archive_reason = 'test'")
        .execute(&pool)
        .await
        .unwrap();
    let mut mover = Process::spawn(
        BIN.as_ref(),
        "mover",
        &db.url,
        &[
            "archive",
            "move",
            "--before",
            FUTURE,
            "--batch-size",
            "50",
            "--max-events-per-sec",
            "600",
        ],
        &log_dir("killed"),
    );
    let moved_now = || async {
        let n: i64 = sqlx::query_scalar("SELECT events_moved FROM rf_archive_stats")
            .fetch_one(&pool)
            .await
            .unwrap();
        n
    };
    let start = Instant::now();
    while moved_now().await < 500 {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the mover never got going"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    mover.signal("KILL");
    mover.wait_exit(Duration::from_secs(10)).expect("killed");
    let counts = || async {
        let row: (i64, i64, i64) = sqlx::query_as(
            "SELECT (SELECT count(*) FROM events_hot), (SELECT count(*) FROM events_archive),
                    (SELECT count(DISTINCT (stream_id, version)) FROM
                        (SELECT stream_id, version FROM events
                         UNION ALL SELECT stream_id, version FROM events_archive) t)",
        )
        .fetch_one(&pool)
        .await
        .unwrap();
        row
    };
    let (hot, cold, distinct) = counts().await;
    assert!(
        hot > 0 && cold > 0,
        "killed mid-run: {hot} hot, {cold} cold"
    );
    assert_eq!(hot + cold, total, "nothing lost or doubled by the kill");
    assert_eq!(distinct, total);
    assert_eq!(moved_now().await, cold, "counters commit with the rows");

    let done = ok(
        &db,
        &["archive", "move", "--before", FUTURE, "--batch-size", "500"],
    );
    assert!(done.contains(&format!("moved {hot} events")), "{done}");
    assert_eq!(counts().await, (0, total, total));
    assert_eq!(moved_now().await, total);
}

/// A daemon's /metrics carries the archive families once each, with the
/// figures the database holds (whatever process did the work).
#[tokio::test]
async fn a_daemon_serves_the_archive_metrics_from_the_database() {
    let db = TestDb::migrated().await;
    let stream = "5e6f7a8b-1111-4222-8333-944455556666";
    append(&db, stream, 5);
    ok(&db, &["archive", "mark", stream, "--reason", "metrics"]);
    ok(
        &db,
        &["archive", "move", "--before", FUTURE, "--batch-size", "2"],
    );
    ok(&db, &["archive", "reactivate", stream]);
    // Marked after the move: the one stream in the mover's backlog.
    let waiting = "5e6f7a8b-2222-4222-8333-944455556666";
    append(&db, waiting, 2);
    ok(&db, &["archive", "mark", waiting, "--reason", "metrics"]);
    let port = free_port();
    let bind = format!("127.0.0.1:{port}");
    let _daemon = Process::spawn(
        BIN.as_ref(),
        "daemon",
        &db.url,
        &[
            "projections",
            "run-loop",
            "--health-bind",
            &bind,
            "--node-name",
            "m",
        ],
        &log_dir("metrics"),
    );
    // The archive view is refreshed apart from the others: wait for it.
    let text = wait_for_body(port, "/metrics", Duration::from_secs(15), |t| {
        t.contains("# TYPE archive_events_hot_bytes ")
    });
    for family in [
        "archive_streams_marked_total",
        "archive_streams_reactivated_total",
        "archive_events_moved_total",
        "archive_move_batches_total",
        "archive_move_duration_seconds",
        "archive_events_hot_bytes",
        "archive_streams_awaiting_move",
    ] {
        let types = text
            .lines()
            .filter(|l| l.starts_with(&format!("# TYPE {family} ")))
            .count();
        assert_eq!(types, 1, "{family}: one # TYPE line\n{text}");
    }
    let scrape = prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_owned()))).unwrap();
    let value = |name: &str| {
        scrape
            .samples
            .iter()
            .find(|s| s.metric == name)
            .map(|s| match s.value {
                prometheus_parse::Value::Counter(v)
                | prometheus_parse::Value::Gauge(v)
                | prometheus_parse::Value::Untyped(v) => v,
                _ => f64::NAN,
            })
            .unwrap_or_else(|| panic!("{name} missing"))
    };
    assert_eq!(value("archive_streams_marked_total"), 2.0);
    assert_eq!(value("archive_streams_awaiting_move"), 1.0);
    assert_eq!(value("archive_streams_reactivated_total"), 1.0);
    assert_eq!(value("archive_events_moved_total"), 5.0);
    assert_eq!(value("archive_move_batches_total"), 3.0);
    assert!(value("archive_events_hot_bytes") > 0.0);
    let histogram = scrape
        .samples
        .iter()
        .find(|s| s.metric == "archive_move_duration_seconds")
        .expect("histogram");
    match &histogram.value {
        prometheus_parse::Value::Histogram(buckets) => {
            let inf = buckets
                .iter()
                .find(|b| b.less_than.is_infinite())
                .expect("+Inf");
            assert_eq!(inf.count, 3.0, "three batches observed");
        }
        other => panic!("not a histogram: {other:?}"),
    }
}
