//! Projections and tails that read the log from a hot standby
//! (`--read-database-url`), on a real primary and a pg_basebackup standby.

use std::process::{Command, Output};
use std::time::Duration;

use rillflow_adapters::replica::ReadReplica;
use rillflow_adapters::{EventStore, NewEvent};
use rillflow_core::{ExpectedVersion, GlobalCursor};
use rillflow_testkit::standby::StandbyPair;
use rillflow_testkit::test_db::target_dir;
use rillflow_testkit::{free_port, http_get, one_line_failure, projection_file, Process};
use serde_json::json;
use sqlx::{Acquire, PgPool};
use uuid::Uuid;

const BIN: &str = env!("CARGO_BIN_EXE_rillflow");

/// Every event's position, once: a duplicate breaks the primary key and
/// fails the batch, a gap shows in the comparison with the log.
const SEEN: &str = r#"
[[projections]]
name = "seen"
setup = "CREATE TABLE IF NOT EXISTS seen (position bigint PRIMARY KEY, stream_id uuid NOT NULL)"
reset = "TRUNCATE seen"

[projections.handlers]
Tick = "INSERT INTO seen VALUES (:position, :stream_id)"
"#;

fn rillflow(pair: &StandbyPair, args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .env("DATABASE_URL", pair.primary_url())
        .env("READ_DATABASE_URL", pair.standby_url())
        .env_remove("RUST_LOG")
        .env_remove("RILLFLOW_TENANT")
        .output()
        .expect("run rillflow")
}

fn until_idle(pair: &StandbyPair, file: &str, wait_secs: &str) -> Output {
    rillflow(
        pair,
        &[
            "projections",
            "run-until-idle",
            "--projections",
            file,
            "--replay-wait-secs",
            wait_secs,
        ],
    )
}

async fn append_ticks(pool: &PgPool, n: usize) {
    let store = EventStore::new(pool.clone());
    for i in 0..n {
        store
            .append(
                Uuid::from_u128(i as u128 % 7 + 1),
                ExpectedVersion::Any,
                &[NewEvent::new("Tick", json!({ "i": i }))],
                &Default::default(),
            )
            .await
            .unwrap();
    }
}

async fn log_positions(pool: &PgPool) -> Vec<i64> {
    sqlx::query_scalar("SELECT position FROM events ORDER BY position")
        .fetch_all(pool)
        .await
        .unwrap()
}

async fn seen_positions(pool: &PgPool) -> Vec<i64> {
    sqlx::query_scalar("SELECT position FROM seen ORDER BY position")
        .fetch_all(pool)
        .await
        .unwrap()
}

/// A standby's snapshots list no open transactions, yet their xmin stays
/// right: a read there stops in front of a transaction still open on the
/// primary, and takes its events once it commits.
#[tokio::test]
async fn a_standby_read_stops_in_front_of_a_transaction_open_on_the_primary() {
    let pair = StandbyPair::start("open-tx").await;
    let primary = pair.primary_pool().await;
    let standby = EventStore::new(pair.standby_pool().await);
    let mut conn = primary.acquire().await.unwrap();
    let mut open = conn.begin().await.unwrap();
    EventStore::append_in(
        &mut open,
        Uuid::from_u128(1000),
        ExpectedVersion::Any,
        &[NewEvent::new("Slow", json!({}))],
        &Default::default(),
    )
    .await
    .unwrap();
    append_ticks(&primary, 3).await;
    pair.wait_replayed(Duration::from_secs(30)).await;

    let (xip, xmin, open_xid): (Vec<String>, String, String) = {
        let (xip, xmin): (Vec<String>, String) = sqlx::query_as(
            "SELECT ARRAY(SELECT pg_snapshot_xip(pg_current_snapshot())::text),
                    pg_snapshot_xmin(pg_current_snapshot())::text",
        )
        .fetch_one(standby.pool())
        .await
        .unwrap();
        let id: String = sqlx::query_scalar("SELECT pg_current_xact_id()::text")
            .fetch_one(&mut *open)
            .await
            .unwrap();
        (xip, xmin, id)
    };
    // What a horizon built from the in-progress list would miss.
    assert!(
        xip.is_empty(),
        "a standby lists nothing in progress: {xip:?}"
    );
    assert_eq!(xmin, open_xid, "but its xmin is the open transaction");

    let read = standby.read_all(GlobalCursor::START, 100).await.unwrap();
    assert!(
        read.events.is_empty(),
        "nothing may be read past the open transaction: {:?}",
        read.events
    );
    open.commit().await.unwrap();
    pair.wait_replayed(Duration::from_secs(30)).await;
    let read = standby.read_all(GlobalCursor::START, 100).await.unwrap();
    let types: Vec<&str> = read.events.iter().map(|e| e.event_type.as_str()).collect();
    assert_eq!(types, ["Slow", "Tick", "Tick", "Tick"]);
}

/// Caught up means with the primary: with the standby's replay paused,
/// `run-until-idle` waits for it rather than call a stale standby idle,
/// and says so when the wait runs out.
#[tokio::test]
async fn run_until_idle_waits_for_the_standby_to_replay_the_primary() {
    let pair = StandbyPair::start("paused").await;
    let primary = pair.primary_pool().await;
    let file = projection_file("seen", SEEN);
    let file = file.to_str().unwrap();
    pair.pause_replay(true).await;
    append_ticks(&primary, 100).await;

    let out = until_idle(&pair, file, "1");
    let err = one_line_failure(&out, Some(1));
    assert!(
        err.contains("did not replay") && err.contains("replay is paused"),
        "{err}"
    );
    assert!(seen_positions(&primary).await.is_empty());

    // Both status commands show the standby's lag.
    for args in [
        &["projections", "status", "seen", "--output", "json"][..],
        &["projections", "cluster-status", "--output", "json"][..],
    ] {
        let out = rillflow(&pair, args);
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let replica = &doc["read_replica"];
        assert_eq!(replica["replay_paused"], true, "{args:?}: {doc}");
        assert!(
            replica["lag_bytes"].as_u64().unwrap() > 0,
            "{args:?}: {doc}"
        );
    }

    // Replay resumes while the command waits: it applies all 100.
    let resume = {
        let url = pair.standby_url();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(1500)).await;
            let standby = sqlx::PgPool::connect(&url).await.unwrap();
            sqlx::query("SELECT pg_wal_replay_resume()")
                .execute(&standby)
                .await
                .unwrap();
        })
    };
    let out = tokio::task::spawn_blocking({
        let file = file.to_owned();
        let (p, s) = (pair.primary_url(), pair.standby_url());
        move || {
            Command::new(BIN)
                .args(["projections", "run-until-idle", "--projections", &file])
                .env("DATABASE_URL", p)
                .env("READ_DATABASE_URL", s)
                .env_remove("RUST_LOG")
                .output()
                .unwrap()
        }
    })
    .await
    .unwrap();
    resume.await.unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        seen_positions(&primary).await,
        log_positions(&primary).await
    );
    assert_eq!(seen_positions(&primary).await.len(), 100);
}

/// A read URL that is not a copy of the database (another cluster's, or
/// another database of the standby) is refused before anything is written.
#[tokio::test]
async fn a_read_database_of_another_cluster_is_refused() {
    let pair = StandbyPair::start("other").await;
    let other = StandbyPair::start("other-b").await;
    let file = projection_file("seen", SEEN);
    let out = Command::new(BIN)
        .args([
            "projections",
            "run-until-idle",
            "--projections",
            file.to_str().unwrap(),
        ])
        .env("DATABASE_URL", pair.primary_url())
        .env("READ_DATABASE_URL", other.standby_url())
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    let err = one_line_failure(&out, Some(1));
    assert!(err.contains("not a copy of the primary"), "{err}");
    let primary = pair.primary_pool().await;
    let registered: i64 = sqlx::query_scalar("SELECT count(*) FROM rf_projections")
        .fetch_one(&primary)
        .await
        .unwrap();
    assert_eq!(registered, 0, "nothing registered");

    // The right standby, but another of its databases.
    let other_database = pair.standby.url("postgres");
    let out = Command::new(BIN)
        .args([
            "events",
            "tail",
            "--once",
            "--read-database-url",
            &other_database,
        ])
        .env("DATABASE_URL", pair.primary_url())
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    let err = one_line_failure(&out, Some(1));
    assert!(err.contains("must name the same database"), "{err}");
}

/// The daemon reads from the standby while 8 appenders write and one
/// transaction stays open 3 s on the primary: the read model ends exactly
/// the primary's log.
#[tokio::test]
async fn a_daemon_reading_from_a_standby_applies_every_event_once() {
    let pair = StandbyPair::start("daemon").await;
    let primary = pair.primary_pool().await;
    let file = projection_file("seen", SEEN);
    let port = free_port();
    let (standby_url, port_arg) = (pair.standby_url(), port.to_string());
    let mut daemon = Process::spawn(
        std::path::Path::new(BIN),
        "read-replica-daemon",
        &pair.primary_url(),
        &[
            "projections",
            "run-loop",
            "--projections",
            file.to_str().unwrap(),
            "--read-database-url",
            &standby_url,
            "--health-bind",
            &port_arg,
        ],
        &target_dir().join("tmp").join("read-replica"),
    );

    let holder = {
        let primary = primary.clone();
        tokio::spawn(async move {
            let mut tx = primary.begin().await.unwrap();
            EventStore::append_in(
                &mut tx,
                Uuid::from_u128(99),
                ExpectedVersion::Any,
                &[NewEvent::new("Tick", json!({ "held": true }))],
                &Default::default(),
            )
            .await
            .unwrap();
            tokio::time::sleep(Duration::from_secs(3)).await;
            tx.commit().await.unwrap();
        })
    };
    let appenders: Vec<_> = (0..8)
        .map(|_| {
            let primary = primary.clone();
            tokio::spawn(async move { append_ticks(&primary, 60).await })
        })
        .collect();
    for a in appenders {
        a.await.unwrap();
    }
    holder.await.unwrap();
    let want = log_positions(&primary).await;
    assert_eq!(want.len(), 8 * 60 + 1);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while seen_positions(&primary).await.len() < want.len() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the daemon applied {} of {}",
            seen_positions(&primary).await.len(),
            want.len()
        );
        assert!(daemon.is_running(), "the daemon exited");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Its lag is measured in the background: give it one round.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let (_, metrics) = http_get(port, "/metrics").expect("metrics served");
    assert!(metrics.contains("rillflow_replica_lag_bytes"), "{metrics}");
    assert!(
        metrics.contains("rillflow_replica_read_conflicts_total"),
        "{metrics}"
    );
    let (_, health) = http_get(port, "/").expect("health served");
    let health: serde_json::Value = serde_json::from_str(&health).unwrap();
    assert_eq!(health["node"]["read_replica"]["standby"], true, "{health}");
    drop(daemon);
    assert_eq!(seen_positions(&primary).await, want);
}

/// The replica's view of itself: no lag once replayed, bytes and a
/// paused flag while replay waits.
#[tokio::test]
async fn replica_lag_is_measured_against_the_primary() {
    let pair = StandbyPair::start("lag").await;
    let primary = pair.primary_pool().await;
    let replica = ReadReplica::open(pair.standby_pool().await, &primary)
        .await
        .unwrap();
    pair.wait_replayed(Duration::from_secs(30)).await;
    let target = ReadReplica::primary_position(&primary).await.unwrap();
    replica
        .wait_replayed(target, Duration::from_secs(30))
        .await
        .unwrap();
    pair.pause_replay(true).await;
    append_ticks(&primary, 20).await;
    let lag = replica.lag(&primary).await.unwrap();
    assert!(lag.standby && lag.paused && lag.bytes > 0, "{lag:?}");
    let err = replica
        .wait_replayed(
            ReadReplica::primary_position(&primary).await.unwrap(),
            Duration::from_millis(200),
        )
        .await
        .unwrap_err();
    assert!(err.to_string().contains("replay is paused"), "{err}");
    pair.pause_replay(false).await;
    replica
        .wait_replayed(
            ReadReplica::primary_position(&primary).await.unwrap(),
            Duration::from_secs(30),
        )
        .await
        .unwrap();
    assert!(replica.lag(&primary).await.unwrap().bytes < 1 << 20);
}

/// `events tail` and `events read` need only the standby: every event,
/// each with its cursor, and nothing started locally.
#[tokio::test]
async fn events_are_read_from_the_standby_alone() {
    let pair = StandbyPair::start("tail").await;
    let primary = pair.primary_pool().await;
    append_ticks(&primary, 5).await;
    pair.wait_replayed(Duration::from_secs(30)).await;
    // A directory of its own: a local database would be started in it.
    let here = target_dir()
        .join("tmp")
        .join(format!("tail-{}", std::process::id()));
    std::fs::create_dir_all(&here).unwrap();
    let run = |args: &[&str]| {
        Command::new(BIN)
            .args(args)
            .env("READ_DATABASE_URL", pair.standby_url())
            .env_remove("DATABASE_URL")
            .env_remove("RUST_LOG")
            .env_remove("RILLFLOW_TENANT")
            .current_dir(&here)
            .output()
            .unwrap()
    };
    let out = run(&["events", "tail", "--once"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 5);
    assert!(lines
        .iter()
        .all(|l| l["cursor"].as_str().unwrap().starts_with("rf1.")));
    let stream = Uuid::from_u128(1).to_string();
    let out = run(&["events", "read", "--stream", &stream, "--output", "json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let events: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(events.len(), 1, "ticks 0 of 5 go to stream 1");
    assert!(
        !here.join(".rillflow").exists(),
        "no local database was started"
    );
    std::fs::remove_dir_all(&here).unwrap();
}

/// A read cancelled for recovery (SQLSTATE 40001, as a standby raises it)
/// is read again; past the retries the error reaches the caller, whose
/// batch starts over from its checkpoint. Other errors are not retried.
#[tokio::test]
async fn reads_cancelled_for_recovery_are_read_again() {
    use rillflow_adapters::replica::{retry_conflicts, CONFLICT_RETRIES};
    let mut db = rillflow_testkit::TestDb::empty().await;
    let pool = db.pool().await;
    sqlx::raw_sql(
        "CREATE SEQUENCE tries;
         CREATE FUNCTION cancelled_until(n bigint, code text) RETURNS bigint LANGUAGE plpgsql AS $$
         DECLARE t bigint := nextval('tries');
         BEGIN
             IF t <= n THEN
                 RAISE EXCEPTION 'canceling statement due to conflict with recovery'
                     USING ERRCODE = code;
             END IF;
             RETURN t;
         END $$;",
    )
    .execute(&pool)
    .await
    .unwrap();
    let attempt = |n: i64, code: &'static str| {
        let pool = pool.clone();
        move || {
            let pool = pool.clone();
            async move {
                sqlx::query_scalar::<_, i64>("SELECT cancelled_until($1, $2)")
                    .bind(n)
                    .bind(code)
                    .fetch_one(&pool)
                    .await
            }
        }
    };
    let reset = || async {
        sqlx::query("SELECT setval('tries', 1, false)")
            .execute(&pool)
            .await
            .unwrap();
    };

    let mut conflicts = 0;
    let read = retry_conflicts(attempt(2, "40001"), || conflicts += 1).await;
    assert_eq!(read.unwrap(), 3, "the third try reads");
    assert_eq!(conflicts, 2);

    reset().await;
    let mut conflicts = 0;
    let read = retry_conflicts(attempt(100, "40P01"), || conflicts += 1).await;
    assert!(read.is_err(), "past the retries the conflict is returned");
    assert_eq!(conflicts, CONFLICT_RETRIES + 1);

    reset().await;
    let mut conflicts = 0;
    let read = retry_conflicts(attempt(1, "22012"), || conflicts += 1).await;
    assert!(read.is_err(), "another error is not retried");
    assert_eq!(conflicts, 0);
}
