//! Every long-running command stops cleanly on SIGINT and on SIGTERM,
//! whatever its options: each mode of `projections run-loop` and the
//! following `events tail`, started for real and signalled once up.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use rillflow_adapters::daemon::PgLeaseStore;
use rillflow_testkit::stream_counts::fixture;
use rillflow_testkit::{
    fast_auto_args, fast_hotcold_args, free_port, http_get, wait_for_view, Process, TestDb,
};

const BIN: &str = env!("CARGO_BIN_EXE_rillflow");

/// How long a stopped command may take. The idle daemons here stop at
/// once; the bound only tells a slow machine from a command that ignores
/// the signal and runs on forever.
const STOP_BOUND: Duration = Duration::from_secs(10);

/// Per test process: two runs of the suite at once must not write (and
/// read) each other's logs.
fn log_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join("signal-logs")
        .join(std::process::id().to_string())
}

/// Starts `rillflow args --health-bind PORT` and waits until it serves its
/// health endpoint, which happens once its setup is done.
fn started(db: &TestDb, name: &str, args: &[&str]) -> Process {
    let port = free_port();
    let bind = format!("127.0.0.1:{port}");
    let mut full = args.to_vec();
    full.extend_from_slice(&["--health-bind", &bind]);
    let process = Process::spawn(BIN.as_ref(), name, &db.url, &full, &log_dir());
    let start = Instant::now();
    while http_get(port, "/").is_none() {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "{name} never came up"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    process
}

/// Sends `signal` and expects a clean exit within [`STOP_BOUND`].
fn stops_on(mut process: Process, name: &str, signal: &str) {
    process.signal(signal);
    let status = process
        .wait_exit(STOP_BOUND)
        .unwrap_or_else(|| panic!("{name} still runs {STOP_BOUND:?} after SIG{signal}"));
    assert!(status.success(), "{name} after SIG{signal}: {status:?}");
}

#[tokio::test]
async fn single_mode_without_projections_stops() {
    let db = TestDb::migrated().await;
    for signal in ["TERM", "INT"] {
        let name = format!("single-bare-{signal}");
        let p = started(&db, &name, &["projections", "run-loop"]);
        stops_on(p, &name, signal);
    }
}

#[tokio::test]
async fn single_mode_with_projections_stops() {
    let db = TestDb::migrated().await;
    let file = fixture();
    for signal in ["TERM", "INT"] {
        let name = format!("single-{signal}");
        let args = ["projections", "run-loop", "--projections", &file];
        let p = started(&db, &name, &args);
        stops_on(p, &name, signal);
    }
}

#[tokio::test]
async fn hot_cold_nodes_stop_with_and_without_projections() {
    let mut db = TestDb::migrated().await;
    let store = PgLeaseStore::new(db.pool().await);
    let file = fixture();
    for (i, signal) in ["TERM", "INT"].into_iter().enumerate() {
        for with_projections in [false, true] {
            let cluster = format!("sig-{i}-{with_projections}");
            let name = format!("{cluster}-{signal}");
            let mut args = fast_hotcold_args(&cluster, "n1");
            if with_projections {
                args.extend_from_slice(&["--projections", &file]);
            }
            let p = started(&db, &name, &args);
            // Hot, so the stop also hands the lease over.
            wait_for_view(
                &store,
                &cluster,
                "n1 hot",
                Duration::from_secs(15),
                Duration::from_millis(20),
                |v| v.holds_valid_lease("n1"),
            )
            .await;
            stops_on(p, &name, signal);
        }
    }
}

#[tokio::test]
async fn auto_mode_workers_stop() {
    let db = TestDb::migrated().await;
    let file = fixture();
    for signal in ["TERM", "INT"] {
        let name = format!("auto-{signal}");
        let args = fast_auto_args(&file, &name, "2");
        let p = started(&db, &name, &args);
        stops_on(p, &name, signal);
    }
}

#[tokio::test]
async fn following_tail_stops() {
    let mut db = TestDb::migrated().await;
    db.store()
        .await
        .append(
            uuid::Uuid::from_u128(1),
            rillflow_core::ExpectedVersion::Any,
            &[rillflow_adapters::NewEvent::new(
                "Followed",
                serde_json::json!({}),
            )],
            &Default::default(),
        )
        .await
        .unwrap();
    for signal in ["TERM", "INT"] {
        let name = format!("tail-{signal}");
        let p = Process::spawn(
            BIN.as_ref(),
            &name,
            &db.url,
            &["events", "tail"],
            &log_dir(),
        );
        // Up once it has printed the event; then it follows the log.
        let log = log_dir().join(format!("{name}.log"));
        let start = Instant::now();
        while !std::fs::read_to_string(&log).is_ok_and(|t| t.contains("Followed")) {
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "{name} printed nothing"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        stops_on(p, &name, signal);
    }
}

/// Processes whose environment mentions `needle`.
fn processes_with_env(needle: &str) -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        if let Ok(raw) = std::fs::read(entry.path().join("environ")) {
            if String::from_utf8_lossy(&raw).contains(needle) {
                found.push(entry.file_name().to_string_lossy().into_owned());
            }
        }
    }
    found
}

/// Stopped half way, the demo stops its nodes and drops its scratch
/// database, as it does after a full run, and says it was interrupted.
#[tokio::test]
async fn an_interrupted_demo_removes_what_it_started() {
    let mut db = TestDb::migrated().await;
    let pool = db.pool().await;
    let name = "demo-interrupted";
    let mut p = Process::spawn(BIN.as_ref(), name, &db.url, &["demo"], &log_dir());
    let scratch = format!("rillflow_demo_{}", p.pid());
    let log = log_dir().join(format!("{name}.log"));
    let start = Instant::now();
    while !std::fs::read_to_string(&log).is_ok_and(|t| t.contains("[3/7]")) {
        assert!(p.is_running(), "the demo ended early");
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "the demo never got going"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(!processes_with_env(&scratch).is_empty(), "its nodes run");
    p.signal("TERM");
    let status = p.wait_exit(STOP_BOUND).expect("the demo stopped");
    assert!(!status.success(), "an interrupted demo is no success");
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.contains("interrupted"), "{text}");
    assert_eq!(
        processes_with_env(&scratch),
        Vec::<String>::new(),
        "nodes left"
    );
    let left: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
            .bind(&scratch)
            .fetch_one(&pool)
            .await
            .unwrap();
    assert!(!left, "scratch database {scratch} left behind");
}
